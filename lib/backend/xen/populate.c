/*
 * backend/xen/populate.c -- a target's memory: populate pfns not yet
 * populated (the populated bitmap; a PV domain's new mfns go into its
 * p2m), zero pages (the fresh bitmap says which Xen gave scrubbed and
 * nobody has written since), clear a page.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"
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

int
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
	if (x->pv) {
		uint64_t *mf = realloc(x->p2m.mfn, bits * sizeof(uint64_t));
		uint8_t *ty = mf == NULL ? NULL : realloc(x->types, bits);

		if (mf != NULL)
			x->p2m.mfn = mf;
		if (ty == NULL) {
			backend_seterr(&x->b, "xen: out of memory");
			return -ENOMEM;
		}
		x->types = ty;
		memset(mf + x->pop_bits, 0xff, (bits - x->pop_bits) * 8);
		memset(ty + x->pop_bits, PT_XTAB, bits - x->pop_bits);
		x->p2m.n = bits;
	}
	x->pop_bits = bits;
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

/*
 * For a PV domain Xen writes the frame it gave each pfn back into todo[]
 * (its p2m is ours to keep: libxc's populate_pfns).
 */
static int
xen_populate_exact(struct xen_backend *x, unsigned nt, xen_pfn_t *todo)
{
	xen_pfn_t pfn[XEN_BATCH];
	uint64_t t0 = now_ns();
	unsigned i;
	int rc;

	if (x->pv)
		memcpy(pfn, todo, nt * sizeof(*todo));
	rc = xc_domain_populate_physmap_exact(x->xch, x->domid, nt, 0, 0,
	    todo);
	xen_tadd(XT_POPULATE, t0, nt);
	for (i = 0; rc == 0 && x->pv && i < nt; i++) {
		if (todo[i] == INVALID_MFN) {
			errno = EIO;
			return -1;
		}
		x->p2m.mfn[pfn[i]] = todo[i];
		if (x->max_seen == PV_INVALID || pfn[i] > x->max_seen)
			x->max_seen = pfn[i];
	}
	return rc;
}

int
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

int
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

int
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
