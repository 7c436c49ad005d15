/*
 * backend/xen/xen.c -- real Xen PVH/HVM domains through libxenctrl,
 * libxenforeignmemory and libxenguest (Xen 4.17's libraries).
 *
 * Built only when configure finds the Xen libraries (HAVE_XEN).  What it
 * does, call by call (the same calls libxc's save/restore makes for an
 * x86 HVM guest; PVH is HVM to the hypervisor):
 *
 * Only with toolstack=1: libxl suspends the guest and creates the target
 * domain with its devices, either around this process (xmig-save-helper,
 * which libxl runs) or from it (migrate-send xen:NAME and migrate-receive
 * --backend xen, daemon/xen-toolstack.c).  A bare "xen:domid=N" is
 * refused.
 *
 * Source ("xen:domid=N,toolstack=1"):
 *   describe      xc_domain_getinfolist; nr_pages is the p2m size,
 *                 xc_domain_nr_gpfns (special pages sit below 0xff000, so
 *                 this is about 1M pfns even for a small guest).
 *   enable_dirty  xc_shadow_control(ENABLE_LOGDIRTY); if that fails, OFF
 *                 then ENABLE once more (a previous saver may have died
 *                 with log-dirty on).
 *   read_dirty    xc_logdirty_control(CLEAN) into a hypercall buffer; the
 *                 call made while the domain is paused carries
 *                 XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL.
 *   disable_dirty xc_shadow_control(OFF).  close() turns log-dirty off
 *                 too, and xen_emergency_cleanup() does it from a fatal
 *                 signal handler.
 *   map           xc_get_pfn_type_batch on each batch (at most 1024): pfns
 *                 typed XTAB, BROKEN or XALLOC have no data and get a NULL
 *                 page; the rest are mapped with one xenforeignmemory_map
 *                 whose per-page error array is checked.
 *   pause         xc_domain_pause, or, with toolstack=1, the suspend hook
 *                 (xen_set_suspend_hook: libxl suspends the guest).
 *   resume        xc_domain_unpause if this handle paused it; a domain the
 *                 toolstack suspended is left to the toolstack (libxl
 *                 resumes it when the save fails).
 *   static_state  X86_CPUID_POLICY and X86_MSR_POLICY from
 *                 xc_cpu_policy_get_domain + xc_cpu_policy_serialise.
 *   save_state    X86_TSC_INFO (xc_domain_get_tsc_info), HVM_CONTEXT
 *                 (xc_domain_hvm_getcontext), HVM_PARAMS (the 16 params
 *                 libxc saves, non-zero ones only; no record if none).
 *   destroy       xc_domain_destroy (never with toolstack=1).
 *
 * Target ("xen:domid=N,store_port=P,store_domid=D,console_port=P,
 * console_domid=D,toolstack=1"): the domain must exist, empty and paused
 * (libxl creates it).
 *   populate      xc_domain_populate_physmap_exact for pfns not yet
 *                 populated (a bitmap remembers which are).
 *   map           xenforeignmemory_map(PROT_READ|PROT_WRITE); any page
 *                 error fails the call.
 *   load_state    CPUID/MSR policy kept and applied with
 *                 xc_set_domain_cpu_policy once static data ends (before
 *                 the first page or tail record; then the static-data hook
 *                 runs, as libxc's static_data_done callback); TSC_INFO
 *                 with xc_domain_set_tsc_info; HVM_CONTEXT kept for
 *                 complete; HVM_PARAMS set one by one, except that
 *                 STORE_PFN and CONSOLE_PFN are recorded and their page
 *                 cleared, IOREQ/BUFIOREQ pages are cleared, PAE_ENABLED
 *                 is dropped.
 *   complete      STORE_EVTCHN / CONSOLE_EVTCHN set to the new ports,
 *                 xc_domain_hvm_setcontext, xc_dom_gnttab_seed; the store
 *                 and console gfns are then available through
 *                 xen_restore_results().  The domain stays paused.
 *   resume        xc_domain_unpause, but not with toolstack=1 (libxl
 *                 unpauses when it is ready).
 *   destroy       xc_domain_destroy, but not with toolstack=1.
 *
 * PV guests are refused (they need page-table normalisation).  Nothing is
 * printed: libxc's own log messages are captured and the last error one is
 * added to the reason backend_errmsg() gives.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xentoollog.h>
#include <xen/hvm/params.h>

#include "backend.h"
#include "xmig.h"

/* Exported by libxenctrl 4.17, declared only in its private header. */
int xc_get_pfn_type_batch(xc_interface *xch, uint32_t dom, unsigned int num,
    xen_pfn_t *arr);

#define XEN_BATCH	1024u
#define XEN_PAGE_SHIFT	12u
#define XEN_PAGE_SIZE	(1u << XEN_PAGE_SHIFT)

/* The params libxc saves for an HVM guest (xg_sr_save_x86_hvm.c). */
static const uint32_t xen_saved_params[] = {
	HVM_PARAM_STORE_PFN, HVM_PARAM_IOREQ_PFN, HVM_PARAM_BUFIOREQ_PFN,
	HVM_PARAM_PAGING_RING_PFN, HVM_PARAM_MONITOR_RING_PFN,
	HVM_PARAM_SHARING_RING_PFN, HVM_PARAM_VM86_TSS_SIZED,
	HVM_PARAM_CONSOLE_PFN, HVM_PARAM_ACPI_IOPORTS_LOCATION,
	HVM_PARAM_VIRIDIAN, HVM_PARAM_IDENT_PT,
	HVM_PARAM_VM_GENERATION_ID_ADDR, HVM_PARAM_IOREQ_SERVER_PFN,
	HVM_PARAM_NR_IOREQ_SERVER_PAGES, HVM_PARAM_X87_FIP_WIDTH,
	HVM_PARAM_MCA_CAP,
};
#define XEN_NPARAMS	(sizeof xen_saved_params / sizeof xen_saved_params[0])

struct xen_backend {
	struct backend		 b;
	xc_interface		*xch;
	xenforeignmemory_handle	*fmem;
	pthread_mutex_t		 lock;		/* map/unmap from two threads */
	uint32_t		 domid;
	int			 source;
	int			 toolstack;	/* libxl owns the lifecycle */
	uint64_t		 p2m_size;
	uint32_t		 nr_vcpus;
	uint64_t		 kept;		/* pages left mapped */
	uint8_t			***where;	/* target: pfn -> kept page */
	size_t			 nwhere;	/* leaves in where */

	/* Source. */
	xc_hypercall_buffer_t	 dirty_hbuf;
	size_t			 dirty_pages;	/* pages of dirty_hbuf */
	int			 logdirty;
	int			 paused;	/* by xc_domain_pause */
	int			 suspended;	/* by the suspend hook */
	int			 (*suspend)(void *);
	void			*suspend_arg;

	/* Target. */
	uint64_t		*populated;	/* bitmap */
	/*
	 * Populated by us and not written since (Xen hands a domain only
	 * scrubbed pages): zero_page has nothing to do for these.  Cleared
	 * by a writable map.  Same size as populated.
	 */
	uint64_t		*fresh;
	uint64_t		 pop_bits;
	uint32_t		 store_port, console_port;
	uint32_t		 store_domid, console_domid;
	uint64_t		 store_gfn, console_gfn;
	uint8_t			*cpuid;		/* X86_CPUID_POLICY body */
	uint32_t		 cpuid_len;
	uint8_t			*msr;		/* X86_MSR_POLICY body */
	uint32_t		 msr_len;
	int			 have_cpuid, have_msr, static_done;
	int			 (*static_hook)(void *, unsigned);
	void			*static_arg;
	uint8_t			*hvm_ctx;
	uint32_t		 hvm_ctx_len;
	int			 completed;
	/*
	 * XMIG_EARLY_PARAMS taken (load_early): the store and console pages
	 * were set up before the memory came; page data for them goes to
	 * scratch from then on (xenstored and xenconsoled may have them
	 * mapped: their rings stay as libxc leaves them, cleared).
	 */
	int			 early;
	uint64_t		 early_gfn[2];	/* store, console; ~0: none */
	uint8_t			*scratch;	/* one page */
};

/* One map() call. */
struct xen_map {
	void		*addr;
	unsigned	 n;		/* pages mapped at addr */
	int		 kept;		/* left mapped: xen_set_keep_maps */
};

/*
 * Kept mappings (xen_set_keep_maps): at most XEN_KEEP_MAX pages per handle;
 * a target remembers where each pfn below XEN_KEEP_PFNS is mapped, in
 * leaves of XEN_KEEP_LEAF pointers, and maps it once.
 */
#define XEN_KEEP_MAX	(1u << 20)
#define XEN_KEEP_PFNS	(1ULL << 30)
#define XEN_KEEP_LEAF	1024u
static int xen_keep_maps;

void
xen_set_keep_maps(int on)
{
	xen_keep_maps = on;
}

/* ---- where the time goes ------------------------------------------------ */

/*
 * Per process (the helper has one handle per side): calls, pages and
 * nanoseconds of each kind of libxc call, for xen_timing().  map and
 * unmap update them under the handle's lock; the rest run on one thread.
 */
enum { XT_TYPES, XT_MAP, XT_UNMAP, XT_DIRTY, XT_DIRTY_OFF, XT_POPULATE,
	XT_CLEAR, XT_SUSPEND, XT_STATE, XT_COMPLETE, XT_NR };
static const char *const xen_tname[XT_NR] = {
	"types", "map", "unmap", "logdirty", "logdirty-off", "populate",
	"clear", "suspend", "state", "complete",
};
static struct { uint64_t n, pages, ns; } xen_t[XT_NR];

static void
xen_tadd(unsigned k, uint64_t t0, uint64_t pages)
{
	xen_t[k].n++;
	xen_t[k].pages += pages;
	xen_t[k].ns += now_ns() - t0;
}

void
xen_timing(char *buf, size_t len)
{
	size_t o = 0;
	unsigned k;
	int w;

	buf[0] = '\0';
	for (k = 0; k < XT_NR && o < len; k++) {
		if (xen_t[k].n == 0)
			continue;
		w = snprintf(buf + o, len - o, "%s%s %" PRIu64 "x/%" PRIu64
		    "p %.1f ms", o ? ", " : "", xen_tname[k], xen_t[k].n,
		    xen_t[k].pages, (double)xen_t[k].ns / 1e6);
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* ---- libxc's messages, captured --------------------------------------- */

static _Thread_local char xen_last_log[192];

static void
xen_log_vmessage(struct xentoollog_logger *l, xentoollog_level level,
    int errnoval, const char *context, const char *fmt, va_list ap)
{
	(void)l;
	(void)context;
	if (level < XTL_ERROR)
		return;
	vsnprintf(xen_last_log, sizeof(xen_last_log), fmt, ap);
	if (errnoval > 0) {
		size_t n = strlen(xen_last_log);

		snprintf(xen_last_log + n, sizeof(xen_last_log) - n, " (%s)",
		    strerror(errnoval));
	}
}

static void
xen_log_destroy(struct xentoollog_logger *l)
{
	(void)l;
}

static xentoollog_logger xen_logger = {
	.vmessage = xen_log_vmessage,
	.progress = NULL,
	.destroy = xen_log_destroy,
};

/* Set b's reason from fmt and errno (and libxc's last word, if any). */
static int
xen_fail(struct backend *b, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
xen_fail(struct backend *b, int err, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (err <= 0)
		err = EIO;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (xen_last_log[0] != '\0')
		backend_seterr(b, "xen: %s: %s [libxc: %s]", msg,
		    strerror(err), xen_last_log);
	else
		backend_seterr(b, "xen: %s: %s", msg, strerror(err));
	xen_last_log[0] = '\0';
	return -err;
}

/* ---- emergency clean-up ------------------------------------------------ */

/* Domains with log-dirty on, for xen_emergency_cleanup(). */
#define XEN_MAX_LIVE	8
static struct xen_backend *volatile xen_live[XEN_MAX_LIVE];

static void
xen_live_add(struct xen_backend *x)
{
	unsigned i;

	for (i = 0; i < XEN_MAX_LIVE; i++)
		if (__sync_bool_compare_and_swap(&xen_live[i], NULL, x))
			return;
}

static void
xen_live_del(struct xen_backend *x)
{
	unsigned i;

	for (i = 0; i < XEN_MAX_LIVE; i++)
		__sync_bool_compare_and_swap(&xen_live[i], x, NULL);
}

void
xen_emergency_cleanup(void)
{
	unsigned i;

	for (i = 0; i < XEN_MAX_LIVE; i++) {
		struct xen_backend *x = xen_live[i];

		if (x != NULL && x->logdirty)
			xc_shadow_control(x->xch, x->domid,
			    XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
	}
}

/* The static-data hook for targets opened later (recv_serve opens its own). */
static int (*xen_static_fn)(void *, unsigned);
static void *xen_static_arg;

/* ---- spec --------------------------------------------------------------- */

enum { XK_DOMID, XK_STORE_PORT, XK_STORE_DOMID, XK_CONSOLE_PORT,
	XK_CONSOLE_DOMID, XK_TOOLSTACK, XK_OVERLAP, XK_NR };
static const char *const xen_keys[XK_NR] = {
	"domid", "store_port", "store_domid", "console_port",
	"console_domid", "toolstack", "overlap",
};

static int
xen_spec_parse(const char *spec, int target, uint64_t v[XK_NR],
    int seen[XK_NR])
{
	const char *p = spec != NULL ? spec : "", *end;
	char item[64], *eq, *ep;
	size_t len;
	unsigned k;

	memset(seen, 0, XK_NR * sizeof(int));
	memset(v, 0, XK_NR * sizeof(uint64_t));
	if (*p >= '0' && *p <= '9' && strchr(p, '=') == NULL) {
		/* "xen:7" */
		errno = 0;
		v[XK_DOMID] = strtoull(p, &ep, 10);
		if (errno != 0 || *ep != '\0' || v[XK_DOMID] >= DOMID_FIRST_RESERVED) {
			backend_seterr(NULL, "xen: '%.60s' is not a domain id", p);
			return -EINVAL;
		}
		seen[XK_DOMID] = 1;
		return 0;
	}
	while (*p != '\0') {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len >= sizeof(item)) {
			backend_seterr(NULL, "xen: bad item in spec '%.100s'",
			    spec);
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if ((eq = strchr(item, '=')) == NULL) {
			backend_seterr(NULL, "xen: '%s' in spec is not "
			    "key=value", item);
			return -EINVAL;
		}
		*eq++ = '\0';
		for (k = 0; k < XK_NR; k++)
			if (strcmp(item, xen_keys[k]) == 0)
				break;
		if (k == XK_NR || (!target && k != XK_DOMID &&
		    k != XK_TOOLSTACK && k != XK_OVERLAP) ||
		    (target && k == XK_OVERLAP)) {
			backend_seterr(NULL, "xen: unknown key '%s' in %s spec",
			    item, target ? "target" : "source");
			return -EINVAL;
		}
		if (seen[k]) {
			backend_seterr(NULL, "xen: key '%s' given twice", item);
			return -EINVAL;
		}
		errno = 0;
		v[k] = strtoull(eq, &ep, 0);
		if (errno != 0 || *eq == '\0' || *ep != '\0' ||
		    v[k] > UINT32_MAX || ((k == XK_TOOLSTACK ||
		    k == XK_OVERLAP) && v[k] > 1) ||
		    ((k == XK_DOMID || k == XK_STORE_DOMID ||
		    k == XK_CONSOLE_DOMID) && v[k] >= DOMID_FIRST_RESERVED)) {
			backend_seterr(NULL, "xen: bad value '%s' for %s", eq,
			    item);
			return -EINVAL;
		}
		seen[k] = 1;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!seen[XK_DOMID]) {
		backend_seterr(NULL, "xen: the spec names no domain "
		    "(xen:DOMID or xen:domid=N)");
		return -EINVAL;
	}
	return 0;
}

/* ---- open / describe / close ------------------------------------------- */

static int
xen_getinfo(struct xen_backend *x, xc_domaininfo_t *di)
{
	int n;

	n = xc_domain_getinfolist(x->xch, x->domid, 1, di);
	if (n < 0)
		return xen_fail(&x->b, errno, "getting domain %u's info",
		    x->domid);
	if (n != 1 || di->domain != x->domid)
		return xen_fail(&x->b, ESRCH, "domain %u", x->domid);
	return 0;
}

static int
xen_open(const char *spec, int target, struct xen_backend **out,
    uint64_t v[XK_NR])
{
	struct xen_backend *x;
	xc_domaininfo_t di;
	xen_pfn_t gpfns = 0;
	int seen[XK_NR], rc;

	*out = NULL;
	if ((rc = xen_spec_parse(spec, target, v, seen)) != 0)
		return rc;
	if (v[XK_TOOLSTACK] == 0) {
		/*
		 * A guest must be suspended cooperatively (xenstore control/
		 * shutdown, the suspend event channel) and a target domain
		 * created with its devices: libxl's work.  Without it a
		 * "migrated" guest would lose its xenstore and console.
		 */
		backend_seterr(NULL, "xen: a domain is moved with libxl doing "
		    "the toolstack's part (suspend, devices, names): give "
		    "xen:NAME or xen:DOMID, not key=value settings without "
		    "toolstack=1");
		return -EOPNOTSUPP;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		backend_seterr(NULL, "xen: out of memory");
		return -ENOMEM;
	}
	x->b.ops = &xen_ops;
	x->domid = (uint32_t)v[XK_DOMID];
	x->toolstack = (int)v[XK_TOOLSTACK];
	x->source = !target;
	pthread_mutex_init(&x->lock, NULL);
	x->dirty_hbuf.hbuf = NULL;
	x->dirty_hbuf.param_shadow = NULL;
	x->dirty_hbuf.sz = 0;
	x->dirty_hbuf.dir = 0;
	x->dirty_hbuf.ubuf = (void *)-1;
	x->xch = xc_interface_open(&xen_logger, &xen_logger, 0);
	if (x->xch == NULL) {
		rc = -(errno ? errno : EIO);
		backend_seterr(NULL, "xen: cannot open the hypervisor "
		    "interface: %s (is this dom0 with privcmd loaded?)",
		    strerror(-rc));
		free(x);
		return rc;
	}
	x->fmem = xenforeignmemory_open(&xen_logger, 0);
	if (x->fmem == NULL) {
		rc = -(errno ? errno : EIO);
		backend_seterr(NULL, "xen: cannot open foreign memory: %s",
		    strerror(-rc));
		xc_interface_close(x->xch);
		free(x);
		return rc;
	}
	if ((rc = xen_getinfo(x, &di)) != 0)
		goto fail;
	if (!(di.flags & XEN_DOMINF_hvm_guest)) {
		int nold = 0, on;

		/*
		 * Say the first thing that stands in the way.  A PV guest's
		 * log-dirty mode is shadow paging: ask Xen (and switch it
		 * straight off again if it said yes).
		 */
		if (!target) {
			on = xc_shadow_control(x->xch, x->domid,
			    XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0);
			if (on < 0 && errno == EOPNOTSUPP)
				nold = 1;
			else if (on == 0)	/* ours: off again */
				xc_shadow_control(x->xch, x->domid,
				    XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
		}
		xen_last_log[0] = '\0';
		rc = -EOPNOTSUPP;
		backend_seterr(&x->b, "xen: domain %u is a PV guest: %sthe xen "
		    "backend moves PVH and HVM guests only (PV save/restore "
		    "works through xl and its own save helper)", x->domid,
		    nold ? "PV live migration needs a Xen built with shadow "
		    "paging (this one refuses PV log-dirty: Operation not "
		    "supported), and " : "");
		goto fail;
	}
	x->nr_vcpus = di.max_vcpu_id + 1;
	if (!target) {
		if (xc_domain_nr_gpfns(x->xch, x->domid, &gpfns) < 0) {
			rc = xen_fail(&x->b, errno, "getting domain %u's p2m "
			    "size", x->domid);
			goto fail;
		}
		x->p2m_size = gpfns;
		/*
		 * A toolstack's suspend is the guest freezing itself: it can
		 * overlap the copy (b.pause_threaded) when the host has CPUs
		 * for both.  With one (the QEMU lab) the copy would only slow
		 * the guest's freeze down.  Only when asked (overlap=1): it
		 * has not run on real Xen yet.
		 */
		if (x->toolstack && v[XK_OVERLAP]) {
			xc_physinfo_t pi;

			memset(&pi, 0, sizeof(pi));
			if (xc_physinfo(x->xch, &pi) == 0 && pi.nr_cpus > 1)
				x->b.pause_threaded = 1;
		}
	}
	if (target) {
		x->static_hook = xen_static_fn;
		x->static_arg = xen_static_arg;
	}
	x->store_port = (uint32_t)v[XK_STORE_PORT];
	x->store_domid = (uint32_t)v[XK_STORE_DOMID];
	x->console_port = (uint32_t)v[XK_CONSOLE_PORT];
	x->console_domid = (uint32_t)v[XK_CONSOLE_DOMID];
	*out = x;
	return 0;
fail:
	backend_seterr(NULL, "%s", backend_errmsg(&x->b));
	xenforeignmemory_close(x->fmem);
	xc_interface_close(x->xch);
	free(x);
	return rc;
}

static int
xen_open_source(const char *spec, struct backend **out)
{
	struct xen_backend *x;
	uint64_t v[XK_NR];
	int rc;

	*out = NULL;
	if ((rc = xen_open(spec, 0, &x, v)) != 0)
		return rc;
	*out = &x->b;
	return 0;
}

static int
xen_open_target(const char *spec, const struct domain_info *info,
    struct backend **out)
{
	struct xen_backend *x;
	uint64_t v[XK_NR];
	int rc;

	*out = NULL;
	if (info != NULL && (info->arch != WIRE_ARCH_X86 ||
	    info->type == WIRE_DOM_X86_PV || info->page_shift !=
	    XEN_PAGE_SHIFT)) {
		backend_seterr(NULL, "xen: the stream is %s; the xen backend "
		    "restores x86 HVM/PVH guests with 4 KiB pages only",
		    info->type == WIRE_DOM_X86_PV ? "an x86 PV guest" :
		    "not an x86 HVM guest with 4 KiB pages");
		return -EOPNOTSUPP;
	}
	if ((rc = xen_open(spec, 1, &x, v)) != 0)
		return rc;
	*out = &x->b;
	return 0;
}

static int
xen_describe(struct backend *b, struct domain_info *info)
{
	struct xen_backend *x = (struct xen_backend *)b;
	xen_pfn_t gpfns;

	if (!x->source) {
		if (xc_domain_nr_gpfns(x->xch, x->domid, &gpfns) == 0)
			x->p2m_size = gpfns;
		if (x->pop_bits > x->p2m_size)
			x->p2m_size = x->pop_bits;
	}
	memset(info, 0, sizeof(*info));
	info->arch = WIRE_ARCH_X86;
	info->type = WIRE_DOM_X86_HVM;
	info->page_shift = XEN_PAGE_SHIFT;
	info->nr_pages = x->p2m_size;
	info->nr_vcpus = x->nr_vcpus;
	return 0;
}

/* ---- map / unmap --------------------------------------------------------- */

/* Where a target's pfn is kept mapped, or NULL. */
static void *
xen_where(const struct xen_backend *x, uint64_t pfn)
{
	size_t leaf = (size_t)(pfn / XEN_KEEP_LEAF);

	if (pfn >= XEN_KEEP_PFNS || leaf >= x->nwhere || x->where[leaf] == NULL)
		return NULL;
	return x->where[leaf][pfn % XEN_KEEP_LEAF];
}

static int
xen_where_set(struct xen_backend *x, uint64_t pfn, void *page)
{
	size_t leaf = (size_t)(pfn / XEN_KEEP_LEAF), n;
	uint8_t ***w;

	if (pfn >= XEN_KEEP_PFNS)
		return -ERANGE;
	if (leaf >= x->nwhere) {
		n = leaf + 1 > 2 * x->nwhere ? leaf + 1 : 2 * x->nwhere;
		if ((w = realloc(x->where, n * sizeof(*w))) == NULL)
			return -ENOMEM;
		memset(w + x->nwhere, 0, (n - x->nwhere) * sizeof(*w));
		x->where = w;
		x->nwhere = n;
	}
	if (x->where[leaf] == NULL &&
	    (x->where[leaf] = calloc(XEN_KEEP_LEAF, sizeof(uint8_t *))) ==
	    NULL)
		return -ENOMEM;
	x->where[leaf][pfn % XEN_KEEP_LEAF] = page;
	return 0;
}

static int
xen_map(struct backend *b, const uint64_t *pfns, unsigned n, int writable,
    void **pages, void **cookie)
{
	struct xen_backend *x = (struct xen_backend *)b;
	xen_pfn_t types[XEN_BATCH], gfns[XEN_BATCH];
	int err[XEN_BATCH];
	unsigned idx[XEN_BATCH];
	struct xen_map *m;
	unsigned i, nm = 0;
	uint64_t t0;
	int rc = 0, keep;

	*cookie = NULL;
	if (n > XEN_BATCH) {
		backend_seterr(b, "xen: map of %u pages; at most %u at once",
		    n, XEN_BATCH);
		return -E2BIG;
	}
	if (n == 0)
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		backend_seterr(b, "xen: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&x->lock);
	for (i = 0; i < n; i++) {
		pages[i] = NULL;
		types[i] = pfns[i];
	}
	if (x->source) {
		/* Which pfns have data (libxc: xc_get_pfn_type_batch). */
		t0 = now_ns();
		rc = xc_get_pfn_type_batch(x->xch, x->domid, n, types);
		xen_tadd(XT_TYPES, t0, n);
		if (rc != 0) {
			rc = xen_fail(b, errno, "getting the types of %u pages "
			    "from pfn %#" PRIx64, n, pfns[0]);
			goto out;
		}
		for (i = 0; i < n; i++) {
			xen_pfn_t t = types[i] & XEN_DOMCTL_PFINFO_LTAB_MASK;

			if (t == XEN_DOMCTL_PFINFO_XTAB ||
			    t == XEN_DOMCTL_PFINFO_BROKEN ||
			    t == XEN_DOMCTL_PFINFO_XALLOC)
				continue;
			idx[nm] = i;
			gfns[nm++] = pfns[i];
		}
	} else {
		for (i = 0; i < n && writable; i++)
			if (pfns[i] < x->pop_bits)
				x->fresh[pfns[i] / 64] &= ~(1ULL << (pfns[i] % 64));
		for (i = 0; i < n; i++) {
			if (x->early && (pfns[i] == x->early_gfn[0] ||
			    pfns[i] == x->early_gfn[1])) {
				pages[i] = x->scratch;	/* set up early */
				continue;
			}
			if ((pages[i] = xen_where(x, pfns[i])) != NULL)
				continue;	/* kept from an earlier map */
			idx[nm] = i;
			gfns[nm++] = pfns[i];
		}
	}
	if (nm == 0)
		goto out;
	t0 = now_ns();
	m->addr = xenforeignmemory_map(x->fmem, x->domid, writable ?
	    PROT_READ | PROT_WRITE : PROT_READ, nm, gfns, err);
	xen_tadd(XT_MAP, t0, nm);
	if (m->addr == NULL) {
		rc = xen_fail(b, errno, "mapping %u pages from pfn %#" PRIx64,
		    nm, gfns[0]);
		goto out;
	}
	m->n = nm;
	for (i = 0; i < nm; i++) {
		if (err[i] != 0) {
			if (writable || !x->source) {
				rc = xen_fail(b, -err[i], "mapping pfn %#"
				    PRIx64, gfns[i]);
				xenforeignmemory_unmap(x->fmem, m->addr, m->n);
				goto out;
			}
			/* Gone since its type was read: no data. */
			continue;
		}
		pages[idx[i]] = (uint8_t *)m->addr +
		    ((size_t)i << XEN_PAGE_SHIFT);
	}
	/* A target's writable mappings are remembered, a source's never
	 * reused (its p2m may change while it runs). */
	keep = xen_keep_maps && x->kept + nm <= XEN_KEEP_MAX &&
	    (x->source || writable);
	for (i = 0; keep && !x->source && i < nm; i++)
		if (xen_where_set(x, gfns[i], pages[idx[i]]) != 0) {
			while (i-- > 0)	/* no room: forget, unmap as usual */
				xen_where_set(x, gfns[i], NULL);
			keep = 0;
		}
	if (keep) {
		m->kept = 1;
		x->kept += nm;
	}
out:
	pthread_mutex_unlock(&x->lock);
	if (rc != 0 || m->addr == NULL) {
		free(m);
		for (i = 0; rc != 0 && i < n; i++)
			pages[i] = NULL;
		return rc;
	}
	*cookie = m;
	return 0;
}

static void
xen_unmap(struct backend *b, void *cookie, unsigned n)
{
	struct xen_backend *x = (struct xen_backend *)b;
	struct xen_map *m = cookie;
	uint64_t t0;

	(void)n;
	if (m == NULL)
		return;
	if (m->kept) {
		free(m);
		return;
	}
	pthread_mutex_lock(&x->lock);
	t0 = now_ns();
	xenforeignmemory_unmap(x->fmem, m->addr, m->n);
	xen_tadd(XT_UNMAP, t0, m->n);
	pthread_mutex_unlock(&x->lock);
	free(m);
}

/* ---- dirty tracking ------------------------------------------------------ */

static int
xen_enable_dirty(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;
	size_t bytes;

	if (!x->source) {
		backend_seterr(b, "xen: enable_dirty on a target");
		return -EINVAL;
	}
	if (x->dirty_hbuf.hbuf == NULL) {
		DECLARE_HYPERCALL_BUFFER_SHADOW(unsigned long, bm,
		    &x->dirty_hbuf);

		bytes = (size_t)((x->p2m_size + 63) / 64) * 8;
		x->dirty_pages = (bytes + XEN_PAGE_SIZE - 1) / XEN_PAGE_SIZE;
		if (x->dirty_pages == 0)
			x->dirty_pages = 1;
		bm = xc_hypercall_buffer_alloc_pages(x->xch, bm,
		    x->dirty_pages);
		if (bm == NULL)
			return xen_fail(b, errno ? errno : ENOMEM,
			    "allocating the dirty bitmap");
		memset(bm, 0, x->dirty_pages * XEN_PAGE_SIZE);
	}
	if (xc_shadow_control(x->xch, x->domid,
	    XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0) < 0) {
		int err = errno;
		xc_domaininfo_t di;

		/*
		 * A PV guest's log-dirty mode is shadow paging, which a Xen
		 * built without it (Debian's) refuses: nothing was switched
		 * on, so nothing is switched off either; the guest runs on.
		 */
		if (err == EOPNOTSUPP && xen_getinfo(x, &di) == 0 &&
		    !(di.flags & XEN_DOMINF_hvm_guest)) {
			xen_last_log[0] = '\0';
			backend_seterr(b, "PV live migration needs a Xen built "
			    "with shadow paging (domain %u, enabling "
			    "log-dirty: %s)", x->domid, strerror(err));
			return -err;
		}
		/* Perhaps left on by a saver that died: off, then on. */
		xen_last_log[0] = '\0';
		if (xc_shadow_control(x->xch, x->domid,
		    XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0) < 0 ||
		    xc_shadow_control(x->xch, x->domid,
		    XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0) < 0)
			return xen_fail(b, errno, "enabling log-dirty mode "
			    "on domain %u", x->domid);
	}
	x->logdirty = 1;
	xen_live_add(x);
	return 0;
}

static int64_t
xen_read_dirty(struct backend *b, uint64_t *bitmap)
{
	struct xen_backend *x = (struct xen_backend *)b;
	DECLARE_HYPERCALL_BUFFER_SHADOW(unsigned long, bm, &x->dirty_hbuf);
	const uint64_t *w;
	size_t words = (size_t)((x->p2m_size + 63) / 64), i;
	xc_shadow_op_stats_t stats;
	long long r;
	int64_t count = 0;
	uint64_t t0;

	if (!x->logdirty) {
		backend_seterr(b, "xen: read_dirty without log-dirty mode");
		return -EINVAL;
	}
	t0 = now_ns();
	r = xc_logdirty_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
	    HYPERCALL_BUFFER(bm), x->p2m_size,
	    (__atomic_load_n(&x->paused, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&x->suspended, __ATOMIC_ACQUIRE)) ?
	    XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL : 0,
	    &stats);
	xen_tadd(XT_DIRTY, t0, 0);
	if (r < 0 || (uint64_t)r != x->p2m_size)
		return xen_fail(b, r < 0 ? errno : EIO, "reading the dirty "
		    "bitmap of domain %u (%lld of %" PRIu64 " pfns)",
		    x->domid, r, x->p2m_size);
	w = (const uint64_t *)bm;
	for (i = 0; i < words; i++) {
		uint64_t v = w[i];

		if (i == words - 1 && x->p2m_size % 64)
			v &= (1ULL << (x->p2m_size % 64)) - 1;
		bitmap[i] |= v;
		count += __builtin_popcountll(v);
	}
	return count;
}

static int
xen_disable_dirty(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;
	uint64_t t0 = now_ns();
	int rc;

	if (!x->logdirty)
		return 0;
	/* Forgotten only once off: close() and the crash path try again. */
	rc = xc_shadow_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_OFF,
	    NULL, 0);
	xen_tadd(XT_DIRTY_OFF, t0, 0);
	if (rc < 0)
		return xen_fail(b, errno, "turning log-dirty mode off on "
		    "domain %u", x->domid);
	x->logdirty = 0;
	xen_live_del(x);
	return 0;
}

/* ---- pause / resume ------------------------------------------------------ */

void
xen_set_suspend_hook(struct backend *b, int (*fn)(void *), void *arg)
{
	struct xen_backend *x = (struct xen_backend *)b;

	x->suspend = fn;
	x->suspend_arg = arg;
}

void
xen_set_static_hook(int (*fn)(void *, unsigned), void *arg)
{
	xen_static_fn = fn;
	xen_static_arg = arg;
}

static int
xen_pause(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;
	xc_domaininfo_t di;
	uint64_t t0;
	int rc;

	if (x->paused || x->suspended)
		return 0;
	if (x->toolstack && x->source) {
		if (x->suspend == NULL) {
			backend_seterr(b, "xen: toolstack=1 but nobody to ask "
			    "for the suspend");
			return -EINVAL;
		}
		t0 = now_ns();
		rc = x->suspend(x->suspend_arg);
		xen_tadd(XT_SUSPEND, t0, 0);
		if (rc != 0) {
			backend_seterr(b, "xen: the toolstack could not "
			    "suspend domain %u", x->domid);
			return rc < 0 ? rc : -EIO;
		}
		/* As libxc checks: really shut down for suspend. */
		if ((rc = xen_getinfo(x, &di)) != 0)
			return rc;
		if (!(di.flags & XEN_DOMINF_shutdown) ||
		    ((di.flags >> XEN_DOMINF_shutdownshift) &
		    XEN_DOMINF_shutdownmask) != SHUTDOWN_suspend) {
			backend_seterr(b, "xen: domain %u is not suspended "
			    "after the toolstack's suspend", x->domid);
			return -EIO;
		}
		__atomic_store_n(&x->suspended, 1, __ATOMIC_RELEASE);
		return 0;
	}
	if (x->toolstack) {
		backend_seterr(b, "xen: the toolstack owns domain %u",
		    x->domid);
		return -EPERM;
	}
	if (xc_domain_pause(x->xch, x->domid) != 0)
		return xen_fail(b, errno, "pausing domain %u", x->domid);
	__atomic_store_n(&x->paused, 1, __ATOMIC_RELEASE);
	return 0;
}

static int
xen_resume(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;

	if (x->toolstack)
		return 0;	/* libxl resumes or unpauses it */
	if (!x->source && !x->completed) {
		backend_seterr(b, "xen: domain %u is not restored", x->domid);
		return -EINVAL;
	}
	if (!x->source || x->paused) {
		if (xc_domain_unpause(x->xch, x->domid) != 0)
			return xen_fail(b, errno, "unpausing domain %u",
			    x->domid);
		x->paused = 0;
	}
	return 0;
}

/* ---- source state -------------------------------------------------------- */

static int
xen_static_state(struct backend *b, struct state_list *out)
{
	struct xen_backend *x = (struct xen_backend *)b;
	xc_cpu_policy_t *pol;
	xen_cpuid_leaf_t *leaves = NULL;
	xen_msr_entry_t *msrs = NULL;
	uint32_t nl = 0, nm = 0;
	int rc = 0;

	if ((pol = xc_cpu_policy_init()) == NULL)
		return xen_fail(b, ENOMEM, "allocating a cpu policy");
	if (xc_cpu_policy_get_size(x->xch, &nl, &nm) != 0) {
		rc = xen_fail(b, errno, "getting the cpu policy size");
		goto out;
	}
	leaves = calloc(nl ? nl : 1, sizeof(*leaves));
	msrs = calloc(nm ? nm : 1, sizeof(*msrs));
	if (leaves == NULL || msrs == NULL) {
		rc = xen_fail(b, ENOMEM, "allocating the cpu policy");
		goto out;
	}
	if (xc_cpu_policy_get_domain(x->xch, x->domid, pol) != 0) {
		rc = xen_fail(b, errno, "getting domain %u's cpu policy",
		    x->domid);
		goto out;
	}
	if (xc_cpu_policy_serialise(x->xch, pol, leaves, &nl, msrs, &nm)
	    != 0) {
		rc = xen_fail(b, errno, "serialising domain %u's cpu policy",
		    x->domid);
		goto out;
	}
	_Static_assert(sizeof(xen_cpuid_leaf_t) == 24, "cpuid leaf on wire");
	_Static_assert(sizeof(xen_msr_entry_t) == 16, "msr entry on wire");
	if (nl > 0 && (rc = state_list_add(out, REC_X86_CPUID_POLICY, leaves,
	    nl * (uint32_t)sizeof(*leaves))) != 0)
		goto out;
	if (nm > 0)
		rc = state_list_add(out, REC_X86_MSR_POLICY, msrs,
		    nm * (uint32_t)sizeof(*msrs));
out:
	free(leaves);
	free(msrs);
	xc_cpu_policy_destroy(pol);
	return rc;
}

/*
 * A record of HVM_PARAMS' layout (u32 count, u32 reserved, count x {u64
 * index, u64 value}) holding the params of idx[0..n) that are not zero,
 * as libxc writes it; none: no record.
 */
static int
xen_params_rec(struct xen_backend *x, uint32_t type, const uint32_t *idx,
    unsigned n, struct state_list *out)
{
	uint8_t body[8 + 16 * XEN_NPARAMS];
	uint64_t val;
	unsigned i, np = 0;

	memset(body, 0, sizeof(body));
	for (i = 0; i < n && i < XEN_NPARAMS; i++) {
		if (xc_hvm_param_get(x->xch, x->domid, idx[i], &val) != 0)
			return xen_fail(&x->b, errno, "getting HVM param %u of "
			    "domain %u", idx[i], x->domid);
		if (val == 0)
			continue;
		xp_put64(0, body + 8 + 16 * np, idx[i]);
		xp_put64(0, body + 16 + 16 * np, val);
		np++;
	}
	if (np == 0)
		return 0;
	xp_put32(0, body, np);
	return state_list_add(out, type, body, 8 + 16 * np);
}

static int
xen_save_state(struct backend *b, struct state_list *out)
{
	struct xen_backend *x = (struct xen_backend *)b;
	uint8_t tsc[24], *ctx = NULL;
	uint32_t mode, khz, inc;
	uint64_t nsec;
	int size, rc;

	if (xc_domain_get_tsc_info(x->xch, x->domid, &mode, &nsec, &khz,
	    &inc) != 0)
		return xen_fail(b, errno, "getting domain %u's TSC info",
		    x->domid);
	memset(tsc, 0, sizeof(tsc));
	xp_put32(0, tsc, mode);
	xp_put32(0, tsc + 4, khz);
	xp_put64(0, tsc + 8, nsec);
	xp_put32(0, tsc + 16, inc);
	if ((rc = state_list_add(out, REC_X86_TSC_INFO, tsc, 24)) != 0)
		return rc;

	size = xc_domain_hvm_getcontext(x->xch, x->domid, NULL, 0);
	if (size <= 0)
		return xen_fail(b, errno, "getting domain %u's HVM context "
		    "size", x->domid);
	if ((ctx = malloc((size_t)size)) == NULL)
		return xen_fail(b, ENOMEM, "allocating the HVM context");
	size = xc_domain_hvm_getcontext(x->xch, x->domid, ctx,
	    (uint32_t)size);
	if (size <= 0) {
		free(ctx);
		return xen_fail(b, errno, "getting domain %u's HVM context",
		    x->domid);
	}
	rc = state_list_add(out, REC_HVM_CONTEXT, ctx, (uint32_t)size);
	free(ctx);
	if (rc != 0)
		return rc;

	return xen_params_rec(x, REC_HVM_PARAMS, xen_saved_params, XEN_NPARAMS,
	    out);
}

/* ---- target -------------------------------------------------------------- */

/* A bitmap of from bits made one of to bits, the new ones clear. */
static int
xen_bits_grow(uint64_t **bm, uint64_t from, uint64_t to)
{
	uint64_t *n = realloc(*bm, (size_t)(to / 8));

	if (n == NULL)
		return -ENOMEM;
	memset((uint8_t *)n + from / 8, 0, (size_t)((to - from) / 8));
	*bm = n;
	return 0;
}

static int
xen_pop_grow(struct xen_backend *x, uint64_t pfn)
{
	uint64_t bits;

	if (pfn < x->pop_bits)
		return 0;
	if (pfn >= (1ULL << 40)) {
		backend_seterr(&x->b, "xen: pfn %#" PRIx64 " is out of range",
		    pfn);
		return -ERANGE;
	}
	bits = x->pop_bits ? x->pop_bits : 1ULL << 20;
	while (bits <= pfn)
		bits *= 2;
	if (xen_bits_grow(&x->populated, x->pop_bits, bits) != 0 ||
	    xen_bits_grow(&x->fresh, x->pop_bits, bits) != 0) {
		backend_seterr(&x->b, "xen: out of memory");
		return -ENOMEM;
	}
	x->pop_bits = bits;
	return 0;
}

/* Apply the static data (cpu policy), once, as libxc does at its end. */
static int
xen_static_end(struct xen_backend *x)
{
	uint32_t el = ~0u, es = ~0u, em = ~0u;
	unsigned missing = 0;
	int rc;

	if (x->static_done)
		return 0;
	x->static_done = 1;
	if (!x->have_cpuid)
		missing |= 1;	/* XGR_SDD_MISSING_CPUID */
	if (!x->have_msr)
		missing |= 2;	/* XGR_SDD_MISSING_MSR */
	if ((x->have_cpuid || x->have_msr) &&
	    xc_set_domain_cpu_policy(x->xch, x->domid,
	    x->cpuid_len / 24, (xen_cpuid_leaf_t *)x->cpuid,
	    x->msr_len / 16, (xen_msr_entry_t *)x->msr, &el, &es, &em) != 0)
		return xen_fail(&x->b, errno, "setting domain %u's cpu policy "
		    "(leaf %#x subleaf %#x msr %#x)", x->domid, el, es, em);
	if (x->static_hook != NULL &&
	    (rc = x->static_hook(x->static_arg, missing)) != 0) {
		backend_seterr(&x->b, "xen: the toolstack refused the static "
		    "data (missing %#x)", missing);
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

/*
 * Xen populated fewer pages than asked (libxc then says EBUSY): say what
 * the domain may hold, which is the usual reason (a stream with more
 * pages than the domain's configured memory).
 */
static int
xen_pop_fail(struct xen_backend *x, int err, unsigned nt, uint64_t pfn)
{
	xc_domaininfo_t di;

	if (err == EBUSY && xen_getinfo(x, &di) == 0)
		return xen_fail(&x->b, err, "populating %u pages of domain %u "
		    "from pfn %#" PRIx64 ": Xen gave fewer: the domain holds "
		    "%" PRIu64 " pages and may hold %" PRIu64 " (its "
		    "configured memory)", nt, x->domid, pfn,
		    (uint64_t)di.tot_pages, (uint64_t)di.max_pages);
	return xen_fail(&x->b, err, "populating %u pages of domain %u from "
	    "pfn %#" PRIx64, nt, x->domid, pfn);
}

static int
xen_populate_exact(struct xen_backend *x, unsigned nt, xen_pfn_t *todo)
{
	uint64_t t0 = now_ns();
	int rc;

	rc = xc_domain_populate_physmap_exact(x->xch, x->domid, nt, 0, 0,
	    todo);
	xen_tadd(XT_POPULATE, t0, nt);
	return rc;
}

static int
xen_populate(struct backend *b, const uint64_t *pfns, unsigned n)
{
	struct xen_backend *x = (struct xen_backend *)b;
	xen_pfn_t todo[XEN_BATCH];
	unsigned i, nt = 0;
	int rc;

	if (x->source) {
		backend_seterr(b, "xen: populate on a source");
		return -EINVAL;
	}
	if ((rc = xen_static_end(x)) != 0)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = xen_pop_grow(x, pfns[i])) != 0)
			return rc;
		if (x->populated[pfns[i] / 64] & (1ULL << (pfns[i] % 64)))
			continue;
		todo[nt++] = pfns[i];
		if (nt == XEN_BATCH || i + 1 == n) {
			if (xen_populate_exact(x, nt, todo) != 0)
				return xen_pop_fail(x, errno, nt, todo[0]);
			nt = 0;
		}
		x->populated[pfns[i] / 64] |= 1ULL << (pfns[i] % 64);
		x->fresh[pfns[i] / 64] |= 1ULL << (pfns[i] % 64);
	}
	if (nt > 0 && xen_populate_exact(x, nt, todo) != 0)
		return xen_pop_fail(x, errno, nt, todo[0]);
	return 0;
}

static int
xen_clear_page(struct xen_backend *x, uint64_t pfn)
{
	void *page, *cookie;
	uint64_t t0 = now_ns();
	int rc;

	if ((rc = xen_map(&x->b, &pfn, 1, 1, &page, &cookie)) != 0)
		return rc;
	memset(page, 0, XEN_PAGE_SIZE);
	xen_unmap(&x->b, cookie, 1);
	xen_tadd(XT_CLEAR, t0, 1);
	return 0;
}

static int
xen_zero_page(struct backend *b, uint64_t pfn)
{
	struct xen_backend *x = (struct xen_backend *)b;
	int rc;

	if ((rc = xen_populate(b, &pfn, 1)) != 0)
		return rc;
	if (x->early && (pfn == x->early_gfn[0] || pfn == x->early_gfn[1]))
		return 0;	/* set up early: left alone */
	if (x->fresh[pfn / 64] & (1ULL << (pfn % 64)))
		return 0;	/* as Xen gave it: zero */
	return xen_clear_page(x, pfn);
}

static int
xen_keep(struct backend *b, uint8_t **dst, uint32_t *dlen,
    const uint8_t *body, uint32_t len)
{
	uint8_t *n = malloc(len ? len : 1);

	if (n == NULL) {
		backend_seterr(b, "xen: out of memory");
		return -ENOMEM;
	}
	if (len)
		memcpy(n, body, len);
	free(*dst);
	*dst = n;
	*dlen = len;
	return 0;
}

static int
xen_load_params(struct xen_backend *x, const uint8_t *body, uint32_t len)
{
	uint32_t count, i;
	uint64_t idx, val;
	int rc;

	if (len < 8 || (count = xp_get32(0, body), len != 8 + 16ULL * count)) {
		backend_seterr(&x->b, "xen: HVM_PARAMS of %u octets is not a "
		    "count and its entries", len);
		return -EINVAL;
	}
	for (i = 0; i < count; i++) {
		idx = xp_get64(0, body + 8 + 16 * i);
		val = xp_get64(0, body + 16 + 16 * i);
		if (x->early && (idx == HVM_PARAM_STORE_PFN ||
		    idx == HVM_PARAM_CONSOLE_PFN)) {
			uint64_t e = x->early_gfn[idx == HVM_PARAM_CONSOLE_PFN];

			if (val != e) {
				backend_seterr(&x->b, "xen: HVM_PARAMS: the %s "
				    "pfn is %#" PRIx64 ", but XMIG_EARLY_PARAMS "
				    "said %#" PRIx64, idx == HVM_PARAM_STORE_PFN ?
				    "store" : "console", val, e);
				return -EPROTO;
			}
			continue;	/* set up early, in use by now */
		}
		switch (idx) {
		case HVM_PARAM_CONSOLE_PFN:
			x->console_gfn = val;
			if ((rc = xen_clear_page(x, val)) != 0)
				return rc;
			break;
		case HVM_PARAM_STORE_PFN:
			x->store_gfn = val;
			if ((rc = xen_clear_page(x, val)) != 0)
				return rc;
			break;
		case HVM_PARAM_IOREQ_PFN:
		case HVM_PARAM_BUFIOREQ_PFN:
			if ((rc = xen_clear_page(x, val)) != 0)
				return rc;
			break;
		case HVM_PARAM_PAE_ENABLED:
			continue;	/* obsolete: dropped */
		}
		if (idx > UINT32_MAX || xc_hvm_param_set(x->xch, x->domid,
		    (uint32_t)idx, val) != 0)
			return xen_fail(&x->b, errno, "setting HVM param %"
			    PRIu64 " = %#" PRIx64 " on domain %u", idx, val,
			    x->domid);
	}
	return 0;
}

/*
 * HVM_CONTEXT before Xen sees it: Xen's hvm_save descriptors (u16
 * typecode, u16 instance, u32 length, then the data) must tile the body,
 * and a CPU record (typecode 2) must be for a vcpu the domain has, so the
 * error names the vcpu instead of Xen's bare EINVAL.
 */
static int
xen_check_context(struct xen_backend *x, const uint8_t *body, uint32_t len)
{
	uint32_t off = 0, dlen;
	uint16_t code, inst;

	while (off < len) {
		if (len - off < 8) {
			backend_seterr(&x->b, "xen: HVM_CONTEXT: a descriptor "
			    "cut short at octet %u of %u", off, len);
			return -EINVAL;
		}
		code = xp_get16(0, body + off);
		inst = xp_get16(0, body + off + 2);
		dlen = xp_get32(0, body + off + 4);
		if (dlen > len - off - 8) {
			backend_seterr(&x->b, "xen: HVM_CONTEXT: descriptor %u "
			    "at octet %u claims %u octets, beyond the record",
			    code, off, dlen);
			return -EINVAL;
		}
		if (code == 2 && inst >= x->nr_vcpus) {
			backend_seterr(&x->b, "xen: HVM_CONTEXT: CPU state for "
			    "vcpu %u, but domain %u has %u vcpu%s (max_vcpus)",
			    inst, x->domid, x->nr_vcpus,
			    x->nr_vcpus == 1 ? "" : "s");
			return -EINVAL;
		}
		off += 8 + dlen;
		if (code == 0)		/* END descriptor */
			break;
	}
	return 0;
}

static int
xen_load_state(struct backend *b, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	struct xen_backend *x = (struct xen_backend *)b;
	int rc;

	if (x->source) {
		backend_seterr(b, "xen: load_state on a source");
		return -EINVAL;
	}
	switch (type) {
	case REC_X86_CPUID_POLICY:
		if (len % 24 != 0) {
			backend_seterr(b, "xen: X86_CPUID_POLICY of %u octets "
			    "is not whole leaves", len);
			return -EINVAL;
		}
		x->have_cpuid = 1;
		return xen_keep(b, &x->cpuid, &x->cpuid_len, body, len);
	case REC_X86_MSR_POLICY:
		if (len % 16 != 0) {
			backend_seterr(b, "xen: X86_MSR_POLICY of %u octets "
			    "is not whole entries", len);
			return -EINVAL;
		}
		x->have_msr = 1;
		return xen_keep(b, &x->msr, &x->msr_len, body, len);
	default:
		break;
	}
	if ((rc = xen_static_end(x)) != 0)
		return rc;
	switch (type) {
	case REC_X86_TSC_INFO:
		if (len != 24) {
			backend_seterr(b, "xen: X86_TSC_INFO of %u octets; "
			    "24 expected", len);
			return -EINVAL;
		}
		if (xc_domain_set_tsc_info(x->xch, x->domid,
		    xp_get32(0, body), xp_get64(0, body + 8),
		    xp_get32(0, body + 4), xp_get32(0, body + 16)) != 0)
			return xen_fail(b, errno, "setting domain %u's TSC "
			    "info", x->domid);
		return 0;
	case REC_HVM_CONTEXT:
		if ((rc = xen_check_context(x, body, len)) != 0)
			return rc;
		return xen_keep(b, &x->hvm_ctx, &x->hvm_ctx_len, body, len);
	case REC_HVM_PARAMS:
		return xen_load_params(x, body, len);
	default:
		backend_seterr(b, "xen: record type %#x (%s) is not for an "
		    "HVM guest", type, record_type_name(type));
		return -EOPNOTSUPP;
	}
}

/* What the last successful complete() in this process found. */
static uint64_t xen_res_store, xen_res_console;
static int xen_res_valid;

int
xen_restore_results(uint64_t *store_gfn, uint64_t *console_gfn)
{
	if (!xen_res_valid)
		return -ENOENT;
	*store_gfn = xen_res_store;
	*console_gfn = xen_res_console;
	return 0;
}

/* The store and console event channels libxl allocated, as params. */
static int
xen_set_evtchns(struct xen_backend *x)
{
	if (xc_hvm_param_set(x->xch, x->domid, HVM_PARAM_STORE_EVTCHN,
	    x->store_port) != 0)
		return xen_fail(&x->b, errno, "setting the store event channel");
	if (xc_hvm_param_set(x->xch, x->domid, HVM_PARAM_CONSOLE_EVTCHN,
	    x->console_port) != 0)
		return xen_fail(&x->b, errno, "setting the console event "
		    "channel");
	return 0;
}

/* The grant table's console and xenstore entries; then the results. */
static int
xen_seed(struct xen_backend *x)
{
	if (xc_dom_gnttab_seed(x->xch, x->domid, true, x->console_gfn,
	    x->store_gfn, x->console_domid, x->store_domid) != 0)
		return xen_fail(&x->b, errno, "seeding domain %u's grant table",
		    x->domid);
	xen_res_store = x->store_gfn;
	xen_res_console = x->console_gfn;
	xen_res_valid = 1;
	return 0;
}

static int
xen_complete(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;
	int rc;

	if (x->source) {
		backend_seterr(b, "xen: complete on a source");
		return -EINVAL;
	}
	if ((rc = xen_static_end(x)) != 0)
		return rc;
	if (x->hvm_ctx == NULL) {
		backend_seterr(b, "xen: the stream ended without an "
		    "HVM_CONTEXT record");
		return -EPROTO;
	}
	if ((rc = xen_set_evtchns(x)) != 0)
		return rc;
	if (xc_domain_hvm_setcontext(x->xch, x->domid, x->hvm_ctx,
	    x->hvm_ctx_len) != 0)
		return xen_fail(b, errno, "HVM_CONTEXT: Xen refused domain %u's "
		    "HVM context (xc_domain_hvm_setcontext, %u octets)",
		    x->domid, x->hvm_ctx_len);
	if (!x->early && (rc = xen_seed(x)) != 0)
		return rc;
	x->completed = 1;
	return 0;
}

/*
 * Source: XMIG_EARLY_PARAMS (SPEC 12.5), the store and console pfns.  Xen
 * lets only the toolstack set them, so they hold for the whole migration.
 */
static int
xen_early_state(struct backend *b, struct state_list *out)
{
	struct xen_backend *x = (struct xen_backend *)b;
	static const uint32_t idx[2] = { HVM_PARAM_STORE_PFN,
	    HVM_PARAM_CONSOLE_PFN };

	if (!x->source) {
		backend_seterr(b, "xen: early_state on a target");
		return -EINVAL;
	}
	return xen_params_rec(x, REC_XMIG_EARLY_PARAMS, idx, 2, out);
}

/*
 * Target: what libxc does for these two params when HVM_PARAMS comes at
 * the end (clear the page, set the param), and what complete() does with
 * them (event channels, grant-table seed), now, so that the toolstack can
 * introduce the domain to xenstored and xenconsoled while memory arrives.
 */
static int
xen_load_early(struct backend *b, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	struct xen_backend *x = (struct xen_backend *)b;
	uint32_t count, i;
	uint64_t idx, val;
	int rc;

	if (x->source || type != REC_XMIG_EARLY_PARAMS) {
		backend_seterr(b, "xen: load_early of record %#x", type);
		return -EINVAL;
	}
	if (x->early || x->completed) {
		backend_seterr(b, "xen: a second XMIG_EARLY_PARAMS");
		return -EPROTO;
	}
	if (len < 8 || (count = xp_get32(0, body), len != 8 + 16ULL * count)) {
		backend_seterr(b, "xen: XMIG_EARLY_PARAMS of %u octets", len);
		return -EINVAL;
	}
	if ((rc = xen_static_end(x)) != 0)
		return rc;
	if (x->scratch == NULL && (x->scratch = malloc(XEN_PAGE_SIZE)) == NULL) {
		backend_seterr(b, "xen: out of memory");
		return -ENOMEM;
	}
	x->early_gfn[0] = x->early_gfn[1] = ~0ULL;
	for (i = 0; i < count; i++) {
		idx = xp_get64(0, body + 8 + 16 * i);
		val = xp_get64(0, body + 16 + 16 * i);
		if (idx != HVM_PARAM_STORE_PFN && idx != HVM_PARAM_CONSOLE_PFN) {
			backend_seterr(b, "xen: XMIG_EARLY_PARAMS: param %"
			    PRIu64 " is not the store or console pfn", idx);
			return -EPROTO;
		}
		if ((rc = xen_populate(b, &val, 1)) != 0 ||
		    (rc = xen_clear_page(x, val)) != 0)
			return rc;
		if (xc_hvm_param_set(x->xch, x->domid, (uint32_t)idx, val) != 0)
			return xen_fail(b, errno, "setting HVM param %" PRIu64
			    " = %#" PRIx64 " on domain %u", idx, val, x->domid);
		if (idx == HVM_PARAM_STORE_PFN)
			x->store_gfn = x->early_gfn[0] = val;
		else
			x->console_gfn = x->early_gfn[1] = val;
	}
	if ((rc = xen_set_evtchns(x)) != 0)
		return rc;
	if ((rc = xen_seed(x)) != 0)
		return rc;
	x->early = 1;
	return 0;
}

/* The state calls, timed for xen_timing(). */
static int
xen_static_state_t(struct backend *b, struct state_list *out)
{
	uint64_t t0 = now_ns();
	int rc = xen_static_state(b, out);

	xen_tadd(XT_STATE, t0, 0);
	return rc;
}

static int
xen_save_state_t(struct backend *b, struct state_list *out)
{
	uint64_t t0 = now_ns();
	int rc = xen_save_state(b, out);

	xen_tadd(XT_STATE, t0, 0);
	return rc;
}

static int
xen_complete_t(struct backend *b)
{
	uint64_t t0 = now_ns();
	int rc = xen_complete(b);

	xen_tadd(XT_COMPLETE, t0, 0);
	return rc;
}

static int
xen_destroy(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;

	if (x->toolstack)
		return 0;	/* libxl destroys what it created */
	xen_disable_dirty(b);
	if (xc_domain_destroy(x->xch, x->domid) != 0)
		return xen_fail(b, errno, "destroying domain %u", x->domid);
	return 0;
}

static void
xen_close(struct backend *b)
{
	struct xen_backend *x = (struct xen_backend *)b;

	if (x == NULL)
		return;
	xen_disable_dirty(b);
	if (x->dirty_hbuf.hbuf != NULL) {
		DECLARE_HYPERCALL_BUFFER_SHADOW(unsigned long, bm,
		    &x->dirty_hbuf);

		xc_hypercall_buffer_free_pages(x->xch, bm, x->dirty_pages);
	}
	xenforeignmemory_close(x->fmem);
	xc_interface_close(x->xch);
	pthread_mutex_destroy(&x->lock);
	/* Kept mappings go with the process (xen_set_keep_maps). */
	while (x->nwhere > 0)
		free(x->where[--x->nwhere]);
	free(x->where);
	free(x->populated);
	free(x->fresh);
	free(x->cpuid);
	free(x->msr);
	free(x->hvm_ctx);
	free(x->scratch);
	free(x);
}

const struct backend_ops xen_ops = {
	.name = "xen",
	.open_source = xen_open_source,
	.open_target = xen_open_target,
	.describe = xen_describe,
	.map = xen_map,
	.unmap = xen_unmap,
	.enable_dirty = xen_enable_dirty,
	.read_dirty = xen_read_dirty,
	.disable_dirty = xen_disable_dirty,
	.pause = xen_pause,
	.resume = xen_resume,
	.static_state = xen_static_state_t,
	.save_state = xen_save_state_t,
	.populate = xen_populate,
	.zero_page = xen_zero_page,
	.load_state = xen_load_state,
	.complete = xen_complete_t,
	.destroy = xen_destroy,
	.close = xen_close,
	.stats = NULL,
	.early_state = xen_early_state,
	.load_early = xen_load_early,
};
