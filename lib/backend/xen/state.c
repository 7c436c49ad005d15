/*
 * backend/xen/state.c -- the state records of x86 guests and what a target
 * does with them.  Source: X86_CPUID_POLICY and X86_MSR_POLICY (static
 * state), X86_TSC_INFO, HVM_CONTEXT and HVM_PARAMS (save_state; a PV
 * guest's records come from pv-source.c), XMIG_EARLY_PARAMS.  Target: the
 * cpu policy applied once static data ends, TSC info, the HVM context
 * checked and kept, params set; complete() (event channels, HVM context,
 * grant-table seed) and the results xen_restore_results() gives.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"

#include <xen/hvm/params.h>
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

	if (x->pv && (rc = xen_pv_info_rec(x, out)) != 0)
		return rc;
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
	if (x->pv)
		return xen_pv_save_state(x, out);

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

/* Apply the static data (cpu policy), once, as libxc does at its end. */
int
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

int
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

int
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
	case REC_X86_PV_INFO:	/* static data too (libxc's order) */
		if (!x->pv)
			break;
		return xen_pv_load(x, type, body, len);
	default:
		break;
	}
	if ((rc = xen_static_end(x)) != 0)
		return rc;
	if (x->pv && type != REC_X86_TSC_INFO)
		return xen_pv_load(x, type, body, len);
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

void
xen_set_results(const struct xen_backend *x)
{
	xen_res_store = x->store_gfn;
	xen_res_console = x->console_gfn;
	xen_res_valid = 1;
}

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
	xen_set_results(x);
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
	if (x->pv)
		return xen_pv_complete(x);
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
int
xen_early_state(struct backend *b, struct state_list *out)
{
	struct xen_backend *x = (struct xen_backend *)b;
	static const uint32_t idx[2] = { HVM_PARAM_STORE_PFN,
	    HVM_PARAM_CONSOLE_PFN };

	if (!x->source) {
		backend_seterr(b, "xen: early_state on a target");
		return -EINVAL;
	}
	if (x->pv)
		return 0;	/* a PV guest's are in its start info */
	return xen_params_rec(x, REC_XMIG_EARLY_PARAMS, idx, 2, out);
}

/*
 * Target: what libxc does for these two params when HVM_PARAMS comes at
 * the end (clear the page, set the param), and what complete() does with
 * them (event channels, grant-table seed), now, so that the toolstack can
 * introduce the domain to xenstored and xenconsoled while memory arrives.
 */
int
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
int
xen_static_state_t(struct backend *b, struct state_list *out)
{
	uint64_t t0 = now_ns();
	int rc = xen_static_state(b, out);

	xen_tadd(XT_STATE, t0, 0);
	return rc;
}

int
xen_save_state_t(struct backend *b, struct state_list *out)
{
	uint64_t t0 = now_ns();
	int rc = xen_save_state(b, out);

	xen_tadd(XT_STATE, t0, 0);
	return rc;
}

int
xen_complete_t(struct backend *b)
{
	uint64_t t0 = now_ns();
	int rc = xen_complete(b);

	xen_tadd(XT_COMPLETE, t0, 0);
	return rc;
}
