/*
 * backend/xen/xen.c -- real Xen PVH/HVM and 64-bit PV domains through
 * libxenctrl, libxenforeignmemory and libxenguest (Xen 4.17's libraries).
 * This file holds the ops table, the spec, open, describe, pause, resume,
 * destroy and close; xen-int.h says which file holds the rest.
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
 * 64-bit PV guests (pv-source.c, pv-target.c): non-live only; the source reads
 * the guest's p2m list and sends typed, normalised page tables, the target
 * localises, pins and rewrites the guest's p2m at complete().  Nothing is
 * printed: libxc's own log messages are captured and the last error one is
 * added to the reason backend_errmsg() gives.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"

static void	xen_close(struct backend *b);

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

/* ---- open / describe ---------------------------------------------------- */

int
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
	x->pv = !(di.flags & XEN_DOMINF_hvm_guest);
	x->nr_vcpus = di.max_vcpu_id + 1;
	x->max_seen = PV_INVALID;
	if (x->pv && target && (x->vcpu = calloc(x->nr_vcpus,
	    sizeof(*x->vcpu))) == NULL) {
		rc = xen_fail(&x->b, ENOMEM, "allocating vcpu state");
		goto fail;
	}
	if (x->pv && !target) {
		if ((rc = xen_pv_open_source(x, &di)) != 0)
			goto fail;
	} else if (!target) {
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
	xen_pv_free(x);
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
	    info->page_shift != XEN_PAGE_SHIFT)) {
		backend_seterr(NULL, "xen: the stream is not an x86 guest with "
		    "4 KiB pages; the xen backend restores those only");
		return -EOPNOTSUPP;
	}
	if ((rc = xen_open(spec, 1, &x, v)) != 0)
		return rc;
	if (info != NULL && (info->type == WIRE_DOM_X86_PV) != x->pv) {
		backend_seterr(NULL, "xen: the stream is %s guest but domain %u "
		    "is %s one", info->type == WIRE_DOM_X86_PV ? "a PV" :
		    "an HVM/PVH", x->domid, x->pv ? "a PV" : "an HVM/PVH");
		xen_close(&x->b);
		return -EINVAL;
	}
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
	info->type = x->pv ? WIRE_DOM_X86_PV : WIRE_DOM_X86_HVM;
	info->page_shift = XEN_PAGE_SHIFT;
	info->nr_pages = x->p2m_size;
	info->nr_vcpus = x->nr_vcpus;
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
		/* PV: the p2m as the suspended guest left it. */
		return x->pv ? xen_pv_snapshot(x) : 0;
	}
	if (x->toolstack) {
		backend_seterr(b, "xen: the toolstack owns domain %u",
		    x->domid);
		return -EPERM;
	}
	if (xc_domain_pause(x->xch, x->domid) != 0)
		return xen_fail(b, errno, "pausing domain %u", x->domid);
	__atomic_store_n(&x->paused, 1, __ATOMIC_RELEASE);
	return x->pv ? xen_pv_snapshot(x) : 0;
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

/* ---- destroy / close ----------------------------------------------------- */

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
	xen_pv_free(x);
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
	.memory_state = xen_pv_memory_state,
	.map_types = xen_map_types,
	.set_types = xen_set_types,
};
