/*
 * backend/xen/pv-source.c -- saving a 64-bit x86 PV guest: its p2m list,
 * its pages with their types (page tables as normalised copies), the
 * X86_PV_* records, SHARED_INFO and the vcpus.  pv-target.c restores.
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
 * A PV guest's memory is machine frames the guest itself maps: its page
 * tables hold mfns, its p2m (a list of frames the guest keeps and
 * advertises in its shared info) says which mfn backs each pfn.  The
 * stream carries pfns only (SPEC 7.2-7.6): the source turns every frame
 * number in a page table, a vcpu's CR3 and GDT frames and the start-info
 * reference into a pfn; the target populates pfns (Xen tells it the new
 * mfns), turns them back, pins the tables, rewrites the guest's p2m with
 * the new mfns and seeds the grant table, as libxc's xg_sr_*_x86_pv.c do.
 * Only 64-bit guests (4 paging levels), only non-live: a PV guest's
 * log-dirty mode needs shadow paging.
 */

/*
 * Source: walk the guest's page tables from p2m_cr3 to the frames that hold
 * its virtually mapped p2m list (shared info's p2m_vaddr, max_pfn + 1
 * entries); the frame count follows libxc: max_pfn may shrink where the
 * trailing L2 entries all name one L1 (a guest does not share p2m frames
 * for memory it has).  Leaves the frames' mfns in *leaves.
 */
static int
xen_pv_p2m_walk(struct xen_backend *x, uint64_t p2m_cr3, uint64_t vaddr,
    uint64_t **leaves, size_t *nleaves)
{
	const uint64_t mask = 0x0000ffffffffffffULL;
	uint64_t *mfns = NULL, *next, end, off = 0, mfn, last = 0, newmax;
	uint64_t *ptes;
	size_t n = 1, idx0, idx1, i, lastpos = 0;
	unsigned level, shift;

	*leaves = NULL;
	end = vaddr + (x->max_pfn / PV_FPP + 1) * XEN_PAGE_SIZE - 1;
	if (((int64_t)vaddr >> 47) != ((int64_t)vaddr >> 63) ||
	    ((int64_t)end >> 47) != ((int64_t)end >> 63) || end < vaddr ||
	    (vaddr <= 0xffff87ffffffffffULL && end > 0xffff800000000000ULL))
		return xen_fail(&x->b, ERANGE, "domain %u's p2m list is at "
		    "%#" PRIx64 "-%#" PRIx64 ", not a guest address range",
		    x->domid, vaddr, end);
	if ((mfns = malloc(sizeof(*mfns))) == NULL)
		return xen_fail(&x->b, ENOMEM, "walking the p2m list");
	mfns[0] = p2m_cr3 >> 12;
	for (level = 4; level > 0; level--) {
		if ((ptes = xen_pv_map_mfns(x, PROT_READ, mfns, n)) == NULL) {
			free(mfns);
			return xen_fail(&x->b, errno, "mapping %zu L%u page "
			    "tables of domain %u's p2m list", n, level,
			    x->domid);
		}
		shift = level * 9 + 3;
		idx0 = (size_t)(((vaddr - off) & mask) >> shift);
		idx1 = (size_t)(((end - off) & mask) >> shift);
		if (idx1 >= n * PV_PTES || (next = malloc((idx1 - idx0 + 1) *
		    sizeof(*next))) == NULL) {
			xenforeignmemory_unmap(x->fmem, ptes, n);
			free(mfns);
			return xen_fail(&x->b, idx1 >= n * PV_PTES ? ERANGE :
			    ENOMEM, "walking domain %u's p2m list", x->domid);
		}
		for (i = idx0; i <= idx1; i++) {
			mfn = (ptes[i] & PV_PTE_FRAME) >> 12;
			if (!(ptes[i] & PV_PTE_PRESENT) || mfn == 0 ||
			    mfn > x->max_mfn) {
				xenforeignmemory_unmap(x->fmem, ptes, n);
				free(mfns);
				free(next);
				return xen_fail(&x->b, ERANGE, "domain %u's "
				    "p2m list: L%u entry %zu for %#" PRIx64
				    " is %#" PRIx64, x->domid, level, i,
				    vaddr, ptes[i]);
			}
			next[i - idx0] = mfn;
			if (level == 2 && mfn != last) {
				last = mfn;
				lastpos = i - idx0;
			}
		}
		xenforeignmemory_unmap(x->fmem, ptes, n);
		free(mfns);
		mfns = next;
		n = idx1 - idx0 + 1;
		if (level == 2 && lastpos + 1 < n) {
			/* Trailing L2 entries share one L1: fewer pfns. */
			newmax = (uint64_t)(lastpos + 1) * PV_PTES * PV_FPP - 1;
			if (newmax < x->max_pfn) {
				x->max_pfn = newmax;
				end = vaddr + (x->max_pfn / PV_FPP + 1) *
				    XEN_PAGE_SIZE - 1;
				n = lastpos + 1;
			}
		}
		off = vaddr & ((mask >> shift) << shift);
	}
	*leaves = mfns;
	*nleaves = n;
	return 0;
}

/* Source: the p2m as the guest has it now, and its reverse. */
int
xen_pv_snapshot(struct xen_backend *x)
{
	uint64_t i, m;

	for (i = 0; i <= x->max_pfn; i++) {
		m = x->leaf_map[i];
		x->p2m.mfn[i] = m > x->max_mfn ? PV_INVALID : m;
	}
	if (pv_p2m_index(&x->p2m) != 0)
		return xen_fail(&x->b, ENOMEM, "indexing domain %u's p2m",
		    x->domid);
	return 0;
}

int
xen_pv_open_source(struct xen_backend *x, const xc_domaininfo_t *di)
{
	const shared_info_t *sh;
	unsigned int width = 0;
	unsigned long maxm = 0;
	uint64_t cr3, vaddr, *leaves = NULL, sif;
	size_t nleaves = 0, i;
	int rc;

	if (xc_domain_get_guest_width(x->xch, x->domid, &width) != 0)
		return xen_fail(&x->b, errno, "getting domain %u's guest width",
		    x->domid);
	if (width != 8)
		return xen_fail(&x->b, EOPNOTSUPP, "domain %u is a %u-bit PV "
		    "guest; xmig moves 64-bit PV guests only", x->domid,
		    width * 8);
	x->pv_width = 8;
	x->pv_levels = 4;
	if (xc_maximum_ram_page(x->xch, &maxm) != 0)
		return xen_fail(&x->b, errno, "getting the host's highest "
		    "frame");
	x->max_mfn = maxm;
	sif = di->shared_info_frame;
	if ((x->shinfo = xen_pv_map_mfns(x, PROT_READ, &sif, 1)) == NULL)
		return xen_fail(&x->b, errno, "mapping domain %u's shared "
		    "info", x->domid);
	sh = x->shinfo;
	if (sh->arch.max_pfn == 0 || sh->arch.max_pfn > (1ULL << 40))
		return xen_fail(&x->b, EINVAL, "domain %u's shared info gives "
		    "max_pfn %#lx (has the guest booted?)", x->domid,
		    sh->arch.max_pfn);
	x->max_pfn = sh->arch.max_pfn - 1;
	cr3 = sh->arch.p2m_cr3;
	vaddr = sh->arch.p2m_vaddr;
	if (cr3 == 0)
		return xen_fail(&x->b, EOPNOTSUPP, "domain %u publishes no "
		    "virtually mapped p2m list (p2m_cr3 is 0); xmig reads "
		    "that form only, not the 3-level p2m tree", x->domid);
	if ((cr3 >> 12) > x->max_mfn)
		return xen_fail(&x->b, ERANGE, "domain %u's p2m_cr3 %#" PRIx64
		    " is beyond the host's frames", x->domid, cr3);
	if ((rc = xen_pv_p2m_walk(x, cr3, vaddr, &leaves, &nleaves)) != 0)
		return rc;
	x->leaf_map = xen_pv_map_mfns(x, PROT_READ, leaves, nleaves);
	if (x->leaf_map == NULL) {
		free(leaves);
		return xen_fail(&x->b, errno, "mapping domain %u's %zu p2m "
		    "frames", x->domid, nleaves);
	}
	x->nleaves = nleaves;
	x->p2m.n = x->max_pfn + 1;
	x->p2m.mfn = malloc(x->p2m.n * sizeof(uint64_t));
	x->p2m_pfns = malloc(nleaves * sizeof(uint64_t));
	if (x->p2m.mfn == NULL || x->p2m_pfns == NULL) {
		free(leaves);
		return xen_fail(&x->b, ENOMEM, "allocating domain %u's p2m",
		    x->domid);
	}
	if ((rc = xen_pv_snapshot(x)) != 0) {
		free(leaves);
		return rc;
	}
	for (i = 0; i < nleaves; i++) {
		x->p2m_pfns[i] = pv_mfn_to_pfn(&x->p2m, leaves[i]);
		if (x->p2m_pfns[i] == PV_INVALID) {
			rc = xen_fail(&x->b, ERANGE, "domain %u's p2m frame %zu "
			    "(mfn %#" PRIx64 ") is not in its own p2m",
			    x->domid, i, leaves[i]);
			free(leaves);
			return rc;
		}
	}
	free(leaves);
	x->n_p2m_pfns = nleaves;
	x->p2m_size = x->max_pfn + 1;
	return 0;
}

/* Source: X86_PV_INFO, the first static record (libxc's order). */
int
xen_pv_info_rec(struct xen_backend *x, struct state_list *out)
{
	uint8_t body[WIRE_X86_PV_INFO_SIZE];

	memset(body, 0, sizeof(body));
	body[0] = (uint8_t)x->pv_width;
	body[1] = (uint8_t)x->pv_levels;
	return state_list_add(out, REC_X86_PV_INFO, body, sizeof(body));
}

/* Source: X86_PV_P2M_FRAMES, right after STATIC_DATA_END. */
int
xen_pv_memory_state(struct backend *b, struct state_list *out)
{
	struct xen_backend *x = (struct xen_backend *)b;
	uint8_t *body;
	size_t i, len;
	int rc;

	if (!x->pv || !x->source)
		return 0;
	len = 8 + 8 * x->n_p2m_pfns;
	if ((body = malloc(len)) == NULL)
		return xen_fail(b, ENOMEM, "building X86_PV_P2M_FRAMES");
	xp_put32(0, body, 0);
	xp_put32(0, body + 4, (uint32_t)x->max_pfn);
	for (i = 0; i < x->n_p2m_pfns; i++)
		xp_put64(0, body + 8 + 8 * i, x->p2m_pfns[i]);
	rc = state_list_add(out, REC_X86_PV_P2M_FRAMES, body, (uint32_t)len);
	free(body);
	return rc;
}

/* Source: one vcpu record: u32 vcpu, u32 0, then blob. */
static int
xen_pv_vcpu_rec(struct state_list *out, uint32_t type, uint32_t id,
    const void *blob, size_t len)
{
	uint8_t *body = malloc(8 + len);
	int rc;

	if (body == NULL)
		return -ENOMEM;
	xp_put32(0, body, id);
	xp_put32(0, body + 4, 0);
	memcpy(body + 8, blob, len);
	rc = state_list_add(out, type, body, (uint32_t)(8 + len));
	free(body);
	return rc;
}

static uint64_t
xen_pv_to_pfn(struct xen_backend *x, uint64_t mfn, const char *what,
    uint32_t id, int *rc)
{
	uint64_t pfn = pv_mfn_to_pfn(&x->p2m, mfn);

	if (pfn == PV_INVALID)
		*rc = xen_fail(&x->b, ERANGE, "vcpu %u's %s is frame %#"
		    PRIx64 ", not one of domain %u's", id, what, mfn,
		    x->domid);
	return pfn;
}

/* X86_PV_VCPU_BASIC with its frames as pfns (libxc: write_one_vcpu_basic). */
static int
xen_pv_vcpu_basic(struct xen_backend *x, uint32_t id, struct state_list *out)
{
	vcpu_guest_context_any_t c;
	vcpu_guest_context_x86_64_t *v = &c.x64;
	unsigned i, ng;
	uint64_t pfn;
	int rc = 0;

	_Static_assert(sizeof(*v) == WIRE_VCPU_BASIC_64, "vcpu basic size");
	memset(&c, 0, sizeof(c));
	if (xc_vcpu_getcontext(x->xch, x->domid, id, &c) != 0)
		return xen_fail(&x->b, errno, "getting vcpu %u of domain %u",
		    id, x->domid);
	if (id == 0) {
		/* The suspend record: rdx holds the start info's frame. */
		pfn = xen_pv_to_pfn(x, v->user_regs.rdx, "start info", id, &rc);
		if (rc != 0)
			return rc;
		v->user_regs.rdx = pfn;
	}
	if (v->gdt_ents > FIRST_RESERVED_GDT_ENTRY)
		return xen_fail(&x->b, ERANGE, "vcpu %u has %u GDT entries; "
		    "at most %u", id, (unsigned)v->gdt_ents,
		    FIRST_RESERVED_GDT_ENTRY);
	ng = (unsigned)((v->gdt_ents + 511) / 512);
	for (i = 0; i < ng; i++) {
		pfn = xen_pv_to_pfn(x, v->gdt_frames[i], "GDT frame", id, &rc);
		if (rc != 0)
			return rc;
		v->gdt_frames[i] = pfn;
	}
	pfn = xen_pv_to_pfn(x, xen_cr3_to_pfn(v->ctrlreg[3]), "CR3", id, &rc);
	if (rc != 0)
		return rc;
	v->ctrlreg[3] = xen_pfn_to_cr3(pfn);
	if (v->ctrlreg[1] != 0) {
		/* The user page tables; bit 0 says "present" on the wire. */
		pfn = xen_pv_to_pfn(x, v->ctrlreg[1] >> 12, "user CR3 (CR1)",
		    id, &rc);
		if (rc != 0)
			return rc;
		v->ctrlreg[1] = 1 | (pfn << 12);
	}
	return xen_pv_vcpu_rec(out, REC_X86_PV_VCPU_BASIC, id, v, sizeof(*v));
}

/*
 * The three domctl-read blobs: EXTENDED (ext_vcpucontext), XSAVE
 * (getvcpuextstate), MSRS (get_vcpu_msrs); none when Xen has none.
 */
static int
xen_pv_vcpu_more(struct xen_backend *x, uint32_t id, struct state_list *out)
{
	struct xen_domctl d;
	size_t sz;
	int rc;
	DECLARE_HYPERCALL_BUFFER(void, buf);

	memset(&d, 0, sizeof(d));
	d.cmd = XEN_DOMCTL_get_ext_vcpucontext;
	d.domain = x->domid;
	d.u.ext_vcpucontext.vcpu = id;
	if (xc_domctl(x->xch, &d) != 0)
		return xen_fail(&x->b, errno, "getting vcpu %u's extended "
		    "context", id);
	if (d.u.ext_vcpucontext.size > WIRE_VCPU_EXT_MAX)
		return xen_fail(&x->b, E2BIG, "vcpu %u's extended context is "
		    "%u octets", id, d.u.ext_vcpucontext.size);
	if (d.u.ext_vcpucontext.size > 0 && (rc = xen_pv_vcpu_rec(out,
	    REC_X86_PV_VCPU_EXTENDED, id, &d.u.ext_vcpucontext,
	    d.u.ext_vcpucontext.size)) != 0)
		return rc;

	memset(&d, 0, sizeof(d));
	d.cmd = XEN_DOMCTL_getvcpuextstate;
	d.domain = x->domid;
	d.u.vcpuextstate.vcpu = id;
	if (xc_domctl(x->xch, &d) != 0)
		return xen_fail(&x->b, errno, "getting vcpu %u's xsave size",
		    id);
	if (d.u.vcpuextstate.xfeature_mask != 0 && d.u.vcpuextstate.size) {
		sz = d.u.vcpuextstate.size;
		if ((buf = xc_hypercall_buffer_alloc(x->xch, buf, sz)) == NULL)
			return xen_fail(&x->b, ENOMEM, "allocating vcpu %u's "
			    "xsave buffer", id);
		set_xen_guest_handle(d.u.vcpuextstate.buffer, buf);
		if (xc_domctl(x->xch, &d) != 0) {
			rc = xen_fail(&x->b, errno, "getting vcpu %u's xsave "
			    "state", id);
			xc_hypercall_buffer_free(x->xch, buf);
			return rc;
		}
		rc = d.u.vcpuextstate.size == 0 ? 0 : xen_pv_vcpu_rec(out,
		    REC_X86_PV_VCPU_XSAVE, id, buf, d.u.vcpuextstate.size);
		xc_hypercall_buffer_free(x->xch, buf);
		if (rc != 0)
			return rc;
	}

	memset(&d, 0, sizeof(d));
	d.cmd = XEN_DOMCTL_get_vcpu_msrs;
	d.domain = x->domid;
	d.u.vcpu_msrs.vcpu = id;
	if (xc_domctl(x->xch, &d) != 0)
		return xen_fail(&x->b, errno, "getting vcpu %u's MSR count", id);
	if (d.u.vcpu_msrs.msr_count == 0)
		return 0;
	sz = d.u.vcpu_msrs.msr_count * sizeof(xen_domctl_vcpu_msr_t);
	if ((buf = xc_hypercall_buffer_alloc(x->xch, buf, sz)) == NULL)
		return xen_fail(&x->b, ENOMEM, "allocating vcpu %u's MSRs", id);
	set_xen_guest_handle(d.u.vcpu_msrs.msrs, buf);
	if (xc_domctl(x->xch, &d) != 0) {
		rc = xen_fail(&x->b, errno, "getting vcpu %u's MSRs", id);
		xc_hypercall_buffer_free(x->xch, buf);
		return rc;
	}
	rc = d.u.vcpu_msrs.msr_count == 0 ? 0 : xen_pv_vcpu_rec(out,
	    REC_X86_PV_VCPU_MSRS, id, buf, d.u.vcpu_msrs.msr_count *
	    sizeof(xen_domctl_vcpu_msr_t));
	xc_hypercall_buffer_free(x->xch, buf);
	return rc;
}

/* Source, paused: SHARED_INFO and the vcpus (after X86_TSC_INFO). */
int
xen_pv_save_state(struct xen_backend *x, struct state_list *out)
{
	xc_vcpuinfo_t vi;
	uint32_t id;
	int rc;

	if ((rc = state_list_add(out, REC_SHARED_INFO, x->shinfo,
	    XEN_PAGE_SIZE)) != 0)
		return rc;
	for (id = 0; id < x->nr_vcpus; id++) {
		if (xc_vcpu_getinfo(x->xch, x->domid, id, &vi) != 0)
			return xen_fail(&x->b, errno, "getting vcpu %u's "
			    "info", id);
		if (!vi.online)
			continue;
		if ((rc = xen_pv_vcpu_basic(x, id, out)) != 0 ||
		    (rc = xen_pv_vcpu_more(x, id, out)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Source map, domain paused: pfns to mfns through the p2m, types from
 * Xen; page tables are given as normalised copies.
 */
int
xen_pv_map_source(struct xen_backend *x, const uint64_t *pfns, unsigned n,
    void **pages, struct xen_map *m)
{
	xen_pfn_t types[XEN_BATCH], mfns[XEN_BATCH];
	unsigned idx[XEN_BATCH], i, nm = 0, t;
	int err[XEN_BATCH], rc;
	char msg[200];
	uint64_t t0;

	if (!x->paused && !x->suspended) {
		backend_seterr(&x->b, "xen: PV domain %u: pages are read only "
		    "once it is paused (no live PV migration here)", x->domid);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		pages[i] = NULL;
		m->types[i] = PT_XTAB;
		mfns[i] = pv_pfn_to_mfn(&x->p2m, pfns[i]);
		if (mfns[i] != PV_INVALID) {
			idx[nm] = i;
			types[nm++] = mfns[i];
		}
	}
	if (nm == 0)
		return 0;	/* all holes: XTAB */
	t0 = now_ns();
	rc = xc_get_pfn_type_batch(x->xch, x->domid, nm, types);
	xen_tadd(XT_TYPES, t0, nm);
	if (rc != 0)
		return xen_fail(&x->b, errno, "getting the types of %u pages "
		    "from pfn %#" PRIx64, nm, pfns[idx[0]]);
	for (i = 0; i < nm; i++)
		m->types[idx[i]] = (uint8_t)((types[i] &
		    XEN_DOMCTL_PFINFO_LTAB_MASK) >> XEN_DOMCTL_PFINFO_LTAB_SHIFT);
	nm = 0;
	for (i = 0; i < n; i++) {
		t = m->types[i];
		if (mfns[i] == PV_INVALID || t == PT_XTAB || t == PT_BROKEN ||
		    t == PT_XALLOC)
			continue;
		idx[nm] = i;
		mfns[nm++] = mfns[i];
	}
	if (nm == 0)
		return 0;
	t0 = now_ns();
	m->addr = xenforeignmemory_map(x->fmem, x->domid, PROT_READ, nm, mfns,
	    err);
	xen_tadd(XT_MAP, t0, nm);
	if (m->addr == NULL)
		return xen_fail(&x->b, errno, "mapping %u pages from pfn %#"
		    PRIx64, nm, pfns[idx[0]]);
	m->n = nm;
	for (i = 0; i < nm; i++) {
		uint8_t *pg = (uint8_t *)m->addr + ((size_t)i << XEN_PAGE_SHIFT);
		unsigned k = idx[i];

		if (err[i] != 0) {
			rc = xen_fail(&x->b, -err[i], "mapping pfn %#" PRIx64
			    " (mfn %#" PRIx64 ") of paused domain %u",
			    pfns[k], mfns[i], x->domid);
			goto fail;
		}
		pages[k] = pg;
		if (pv_pt_level(m->types[k]) == 0)
			continue;
		if (m->copies == NULL && (m->copies = malloc((size_t)n *
		    XEN_PAGE_SIZE)) == NULL) {
			rc = xen_fail(&x->b, ENOMEM, "copying page tables");
			goto fail;
		}
		pages[k] = (uint8_t *)m->copies + ((size_t)k << XEN_PAGE_SHIFT);
		if ((rc = pv_normalise(&x->p2m, x->pv_levels, m->types[k],
		    pfns[k], (const uint64_t *)pg, pages[k], msg,
		    sizeof(msg))) != 0) {
			backend_seterr(&x->b, "xen: domain %u: %s", x->domid,
			    msg);
			goto fail;
		}
	}
	return 0;
fail:
	xenforeignmemory_unmap(x->fmem, m->addr, m->n);
	m->addr = NULL;
	for (i = 0; i < n; i++)
		pages[i] = NULL;
	return rc;
}
