/*
 * backend/xen/map.c -- map and unmap: a source's pages typed by Xen (no
 * data for XTAB, BROKEN and XALLOC) and mapped read-only, a target's
 * mapped by pfn (a PV target's through its p2m), each batch with one
 * xenforeignmemory_map whose per-page error array is checked; mappings
 * kept for reuse (xen_set_keep_maps); mapping a PV domain's frames by mfn.
 * map and unmap may run on two threads: see xen-int.h.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"

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

int
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
	if (x->pv && x->source) {
		if ((m->types = malloc(n)) == NULL)
			rc = xen_fail(b, ENOMEM, "mapping %u pages", n);
		else
			rc = xen_pv_map_source(x, pfns, n, pages, m);
		goto out;
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
			if (x->pv && (gfns[nm - 1] = pv_pfn_to_mfn(&x->p2m,
			    pfns[i])) == PV_INVALID) {
				rc = xen_fail(b, ENOENT, "pfn %#" PRIx64 " of "
				    "PV domain %u is not populated", pfns[i],
				    x->domid);
				goto out;
			}
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
	/*
	 * Never for a PV target: Xen pins a page table only while nobody
	 * maps it writable.
	 */
	keep = xen_keep_maps && x->kept + nm <= XEN_KEEP_MAX &&
	    (x->source || writable) && !(x->pv && !x->source);
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
		free(m->types);
		free(m->copies);
		free(m);
		for (i = 0; rc != 0 && i < n; i++)
			pages[i] = NULL;
		return rc;
	}
	*cookie = m;
	return 0;
}

void
xen_unmap(struct backend *b, void *cookie, unsigned n)
{
	struct xen_backend *x = (struct xen_backend *)b;
	struct xen_map *m = cookie;
	uint64_t t0;

	(void)n;
	if (m == NULL)
		return;
	free(m->types);
	free(m->copies);
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

/* Map n frames of the domain (by mfn, as a PV guest's "gfns" are). */
void *
xen_pv_map_mfns(struct xen_backend *x, int prot, const uint64_t *mfns,
    size_t n)
{
	xen_pfn_t *f;
	int *err;
	void *p;
	size_t i;

	f = calloc(n ? n : 1, sizeof(*f));
	err = calloc(n ? n : 1, sizeof(*err));
	if (f == NULL || err == NULL) {
		free(f);
		free(err);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < n; i++)
		f[i] = mfns[i];
	p = xenforeignmemory_map(x->fmem, x->domid, prot, n, f, err);
	for (i = 0; p != NULL && i < n; i++)
		if (err[i] != 0) {
			xenforeignmemory_unmap(x->fmem, p, n);
			errno = -err[i];
			p = NULL;
		}
	free(f);
	free(err);
	return p;
}

int
xen_map_types(struct backend *b, void *cookie, unsigned n, uint8_t *types)
{
	struct xen_map *m = cookie;

	(void)b;
	if (m == NULL || m->types == NULL)
		memset(types, PT_NOTAB, n);
	else
		memcpy(types, m->types, n);
	return 0;
}
