/*
 * backend/xen/pvpt.c -- page-table translation and record checks for x86
 * PV guests, without the hypervisor (pvpt.h says what each one does).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvpt.h"
#include "wire.h"

static int
pv_rev_cmp(const void *a, const void *b)
{
	const struct pv_rev *x = a, *y = b;

	return x->mfn < y->mfn ? -1 : x->mfn > y->mfn;
}

int
pv_p2m_index(struct pv_p2m *p)
{
	struct pv_rev *r;
	uint64_t i;
	size_t n = 0;

	free(p->rev);
	p->rev = NULL;
	p->nrev = 0;
	for (i = 0; i < p->n; i++)
		if (p->mfn[i] != PV_INVALID)
			n++;
	if ((r = malloc((n ? n : 1) * sizeof(*r))) == NULL)
		return -ENOMEM;
	for (i = 0, n = 0; i < p->n; i++)
		if (p->mfn[i] != PV_INVALID) {
			r[n].mfn = p->mfn[i];
			r[n++].pfn = i;
		}
	qsort(r, n, sizeof(*r), pv_rev_cmp);
	p->rev = r;
	p->nrev = n;
	return 0;
}

uint64_t
pv_mfn_to_pfn(const struct pv_p2m *p, uint64_t mfn)
{
	size_t lo = 0, hi = p->nrev, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (p->rev[mid].mfn < mfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->nrev && p->rev[lo].mfn == mfn)
		return p->rev[lo].pfn;
	return PV_INVALID;
}

uint64_t
pv_pfn_to_mfn(const struct pv_p2m *p, uint64_t pfn)
{
	return pfn < p->n ? p->mfn[pfn] : PV_INVALID;
}

void
pv_p2m_free(struct pv_p2m *p)
{
	free(p->mfn);
	free(p->rev);
	memset(p, 0, sizeof(*p));
}

unsigned
pv_pt_level(unsigned type)
{
	if (type >= PT_L1TAB && type <= PT_L4TAB)
		return type;
	if (type >= PT_L1PIN && type <= PT_L4PIN)
		return type - PT_L1PIN + 1;
	return 0;
}

int
pv_type_pinned(unsigned type)
{
	return type >= PT_L1PIN && type <= PT_L4PIN;
}

int
pv_info_check(unsigned width, unsigned levels, char *msg, size_t len)
{
	if (width != 4 && width != 8) {
		snprintf(msg, len, "X86_PV_INFO: guest width %u; a PV guest's "
		    "is 4 (32-bit) or 8 (64-bit)", width);
		return -EINVAL;
	}
	if (levels != (width == 8 ? 4u : 3u)) {
		snprintf(msg, len, "X86_PV_INFO: a %u-bit guest with %u paging "
		    "levels; it has %u", width * 8, levels, width == 8 ? 4 : 3);
		return -EINVAL;
	}
	return 0;
}

int
pv_type_check(unsigned type, unsigned levels, uint64_t pfn, char *msg,
    size_t len)
{
	unsigned l = pv_pt_level(type);

	if (l > levels) {
		snprintf(msg, len, "PAGE_DATA: an L%u page table at pfn 0x%"
		    PRIx64 " in a guest with %u paging levels", l, pfn, levels);
		return -EINVAL;
	}
	return 0;
}

int
pv_normalise(const struct pv_p2m *p, unsigned levels, unsigned type,
    uint64_t pfn, const uint64_t *src, uint64_t *dst, char *msg, size_t len)
{
	unsigned l = pv_pt_level(type), i;
	uint64_t pte, f;
	int rc;

	if ((rc = pv_type_check(type, levels, pfn, msg, len)) != 0)
		return rc;
	if (levels != 4) {
		snprintf(msg, len, "page table at pfn 0x%" PRIx64 ": only 64-bit "
		    "(4-level) PV guests are supported", pfn);
		return -EOPNOTSUPP;
	}
	for (i = 0; i < PV_PTES; i++) {
		pte = src[i];
		if (l == 4 && i >= PV_L4_XEN_FIRST && i <= PV_L4_XEN_LAST)
			pte = 0;	/* Xen's: rebuilt on the target */
		if (pte & PV_PTE_PRESENT) {
			if (l > 1 && (pte & PV_PTE_PSE)) {
				snprintf(msg, len, "L%u table at pfn 0x%" PRIx64
				    ", entry %u: a superpage (0x%" PRIx64 ") "
				    "cannot be moved", l, pfn, i, pte);
				return -E2BIG;
			}
			f = pv_mfn_to_pfn(p, (uint64_t)((pte & PV_PTE_FRAME) >>
			    12));
			if (f == PV_INVALID) {
				snprintf(msg, len, "L%u table at pfn 0x%" PRIx64
				    ", entry %u: frame 0x%" PRIx64 " is not "
				    "the guest's", l, pfn, i,
				    (uint64_t)((pte & PV_PTE_FRAME) >> 12));
				return -ERANGE;
			}
			pte = (pte & ~PV_PTE_FRAME) | (f << 12);
		}
		dst[i] = pte;
	}
	return 0;
}

int
pv_localise(const struct pv_p2m *p, unsigned levels, unsigned type,
    uint64_t pfn, uint64_t *table, char *msg, size_t len)
{
	unsigned l = pv_pt_level(type), i;
	uint64_t pte, f, m;
	int rc;

	if ((rc = pv_type_check(type, levels, pfn, msg, len)) != 0)
		return rc;
	for (i = 0; i < PV_PTES; i++) {
		pte = table[i];
		if (!(pte & PV_PTE_PRESENT))
			continue;
		f = (pte & PV_PTE_FRAME) >> 12;
		if ((m = pv_pfn_to_mfn(p, f)) == PV_INVALID) {
			snprintf(msg, len, "PAGE_DATA: L%u table at pfn 0x%"
			    PRIx64 ", entry %u: refers to pfn 0x%" PRIx64
			    ", which is absent from the stream", l, pfn, i, f);
			return -ENOENT;
		}
		table[i] = (pte & ~PV_PTE_FRAME) | (m << 12);
	}
	return 0;
}

int
pv_p2m_cover_check(const uint64_t *frames, size_t nframes, unsigned fpp,
    uint64_t p2m_end, uint64_t max_pfn, uint64_t limit, char *msg,
    size_t len)
{
	size_t need, i;

	if (nframes == 0 || fpp == 0) {
		snprintf(msg, len, "the stream has no X86_PV_P2M_FRAMES");
		return -EPROTO;
	}
	if (max_pfn != PV_INVALID && max_pfn > p2m_end) {
		snprintf(msg, len, "X86_PV_P2M_FRAMES covers pfns 0 to 0x%"
		    PRIx64 ", but the stream has a page at pfn 0x%" PRIx64,
		    p2m_end, max_pfn);
		return -EPROTO;
	}
	need = (size_t)(p2m_end / fpp) + 1;
	if (need > nframes) {
		snprintf(msg, len, "X86_PV_P2M_FRAMES: %zu frames for pfns 0 "
		    "to 0x%" PRIx64 "; %zu needed", nframes, p2m_end, need);
		return -EPROTO;
	}
	for (i = 0; i < need; i++) {
		if (frames[i] == PV_INVALID) {
			snprintf(msg, len, "X86_PV_P2M_FRAMES: no frame for "
			    "pfns 0x%zx to 0x%zx (the records start above 0 or "
			    "leave a gap)", i * fpp, (i + 1) * fpp - 1);
			return -EPROTO;
		}
		if (frames[i] >= limit) {
			snprintf(msg, len, "X86_PV_P2M_FRAMES: frame %zu is pfn "
			    "0x%" PRIx64 ", beyond the guest's 0x%" PRIx64
			    " pfns", i, frames[i], limit);
			return -EPROTO;
		}
	}
	return 0;
}

int
pv_cr3_check(unsigned type, unsigned levels, unsigned vcpu, uint64_t pfn,
    int in_stream, char *msg, size_t len)
{
	if (!in_stream) {
		snprintf(msg, len, "X86_PV_VCPU_BASIC: vcpu %u's CR3 is pfn 0x%"
		    PRIx64 ", which is absent from the stream", vcpu, pfn);
		return -EINVAL;
	}
	if (pv_pt_level(type) != levels || !pv_type_pinned(type)) {
		snprintf(msg, len, "X86_PV_VCPU_BASIC: vcpu %u's CR3 is pfn 0x%"
		    PRIx64 ", which is %s, not a pinned L%u table", vcpu, pfn,
		    pv_pt_level(type) == 0 ? "not a page table" :
		    pv_type_pinned(type) ? "a pinned lower-level table" :
		    "an unpinned table", levels);
		return -EINVAL;
	}
	return 0;
}
