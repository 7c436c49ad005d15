/*
 * backend/xen/pvpt.h -- the parts of moving an x86 PV guest that need no
 * hypervisor: the pfn <-> mfn translation of page tables (what libxc calls
 * normalising on the source and localising on the target) and the checks
 * a restore makes on the PV records.  Pure functions: they are built
 * without the Xen libraries too, so tests/test-pvpt runs anywhere.
 *
 * Page types are the PAGE_DATA nibble (SPEC 7.2, PT_* in wire.h).  Every
 * function returns 0 or a negative errno value and, on failure, writes one
 * line naming what is wrong into msg.
 */
#ifndef XMIG_PVPT_H
#define XMIG_PVPT_H

#include <stddef.h>
#include <stdint.h>

#define PV_INVALID	(~0ULL)
#define PV_PTES		512u		/* 8-octet entries in a 4 KiB table */

/* Bits of an x86 page-table entry. */
#define PV_PTE_PRESENT	0x001ULL
#define PV_PTE_PSE	0x080ULL
#define PV_PTE_FRAME	0x000ffffffffff000ULL

/*
 * The L4 slots Xen owns in a 64-bit PV guest (0xffff800000000000 to
 * 0xffff87ffffffffff): zero in the stream, Xen fills them when the table
 * is validated on the target.
 */
#define PV_L4_XEN_FIRST	256u
#define PV_L4_XEN_LAST	271u

struct pv_rev {
	uint64_t	mfn, pfn;
};

/* A guest's pseudo-physical map: pfn -> mfn, and the reverse. */
struct pv_p2m {
	uint64_t	*mfn;		/* [n]; PV_INVALID: no frame */
	uint64_t	 n;
	struct pv_rev	*rev;		/* sorted by mfn (pv_p2m_index) */
	size_t		 nrev;
};

/* Make (or remake) the reverse index from p->mfn.  -ENOMEM. */
int	pv_p2m_index(struct pv_p2m *p);
/* The pfn whose frame mfn is, or PV_INVALID (not this guest's frame). */
uint64_t pv_mfn_to_pfn(const struct pv_p2m *p, uint64_t mfn);
/* The frame of pfn, or PV_INVALID. */
uint64_t pv_pfn_to_mfn(const struct pv_p2m *p, uint64_t pfn);
void	pv_p2m_free(struct pv_p2m *p);

/* 1..4 for a page-table type (pinned or not), else 0. */
unsigned pv_pt_level(unsigned type);
int	pv_type_pinned(unsigned type);

/*
 * X86_PV_INFO: guest width 4 with 3 levels or 8 with 4 levels (-EINVAL
 * otherwise, naming the width when it is neither 4 nor 8).
 */
int	pv_info_check(unsigned width, unsigned levels, char *msg, size_t len);

/*
 * A page table of the given type at pfn whose level the guest cannot
 * have (an L4 table in a 3-level guest): -EINVAL.
 */
int	pv_type_check(unsigned type, unsigned levels, uint64_t pfn, char *msg,
	    size_t len);

/*
 * Source: copy the table src (of type, at pfn) to dst with every present
 * entry's frame turned from an mfn into the guest's pfn; Xen's own L4
 * slots become zero.  A superpage entry above L1 is -E2BIG (libxc cannot
 * move those either); a frame that is not the guest's is -ERANGE.
 */
int	pv_normalise(const struct pv_p2m *p, unsigned levels, unsigned type,
	    uint64_t pfn, const uint64_t *src, uint64_t *dst, char *msg,
	    size_t len);

/*
 * Target: turn every present entry of table (of type, at pfn) from a pfn
 * into the frame the target gave that pfn, in place.  An entry naming a
 * pfn the target has no frame for (absent from the stream) is -ENOENT.
 */
int	pv_localise(const struct pv_p2m *p, unsigned levels, unsigned type,
	    uint64_t pfn, uint64_t *table, char *msg, size_t len);

/*
 * X86_PV_P2M_FRAMES against the stream: frames[0 .. nframes) are the pfns
 * of the guest's p2m frames (PV_INVALID where the stream gave none), each
 * holding fpp entries; p2m_end is the last pfn they cover; max_pfn the
 * highest pfn with a page in the stream.  -EPROTO unless the frames cover
 * 0 .. max_pfn, every one is given and below limit (the pfns the stream
 * carries, 0 .. limit-1).
 */
int	pv_p2m_cover_check(const uint64_t *frames, size_t nframes,
	    unsigned fpp, uint64_t p2m_end, uint64_t max_pfn, uint64_t limit,
	    char *msg, size_t len);

/*
 * A vcpu's CR3 (as a pfn) must be a pinned top-level table: type is that
 * pfn's type in the stream.  -EINVAL otherwise.
 */
int	pv_cr3_check(unsigned type, unsigned levels, unsigned vcpu,
	    uint64_t pfn, int in_stream, char *msg, size_t len);

#endif
