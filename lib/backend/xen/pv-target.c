/*
 * backend/xen/pv-target.c -- restoring a 64-bit x86 PV guest (pv-source.c
 * says what the stream carries): page types and the PV records kept as
 * they come; at complete() the page tables localised, shared info, start
 * info and vcpus set, the tables pinned, the guest's p2m rewritten and the
 * grant table seeded.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"
int
xen_set_types(struct backend *b, const uint64_t *pfns, const uint8_t *types,
    unsigned n)
{
	struct xen_backend *x = (struct xen_backend *)b;
	char msg[200];
	unsigned i;
	int rc;

	if (!x->pv)
		return 0;
	for (i = 0; i < n; i++) {
		if ((rc = xen_pop_grow(x, pfns[i])) != 0)
			return rc;
		if ((rc = pv_type_check(types[i], x->pv_levels ? x->pv_levels :
		    4, pfns[i], msg, sizeof(msg))) != 0) {
			backend_seterr(b, "xen: %s", msg);
			return rc;
		}
		x->types[pfns[i]] = types[i];
		if (x->max_seen == PV_INVALID || pfns[i] > x->max_seen)
			x->max_seen = pfns[i];
	}
	return 0;
}

int
xen_pv_load(struct xen_backend *x, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	char msg[200];
	unsigned int w = 0;
	uint32_t id, start, end, i, fpp;
	size_t need;
	int rc, k;

	switch (type) {
	case REC_X86_PV_INFO:
		if (len < 2) {
			backend_seterr(&x->b, "xen: X86_PV_INFO of %u octets",
			    len);
			return -EINVAL;
		}
		if ((rc = pv_info_check(body[0], body[1], msg,
		    sizeof(msg))) != 0) {
			backend_seterr(&x->b, "xen: %s", msg);
			return rc;
		}
		/*
		 * A 32-bit guest is refused at its first vcpu record (or
		 * at the end), so that its page types are checked against
		 * its 3 levels first.
		 */
		x->pv_width = body[0];
		x->pv_levels = body[1];
		if (body[0] != 8)
			return 0;
		if (xc_domain_get_guest_width(x->xch, x->domid, &w) != 0)
			return xen_fail(&x->b, errno, "getting domain %u's "
			    "guest width", x->domid);
		if (w != body[0]) {
			backend_seterr(&x->b, "xen: X86_PV_INFO says %u-bit, "
			    "domain %u is %u-bit", body[0] * 8, x->domid,
			    w * 8);
			return -EINVAL;
		}
		x->pv_width = body[0];
		x->pv_levels = body[1];
		return 0;
	case REC_X86_PV_P2M_FRAMES:
		if (x->pv_width == 0) {
			backend_seterr(&x->b, "xen: X86_PV_P2M_FRAMES before "
			    "X86_PV_INFO");
			return -EPROTO;
		}
		if (len < 16 || (len - 8) % 8 != 0) {
			backend_seterr(&x->b, "xen: X86_PV_P2M_FRAMES of %u "
			    "octets", len);
			return -EINVAL;
		}
		fpp = XEN_PAGE_SIZE / x->pv_width;
		start = xp_get32(0, body);
		end = xp_get32(0, body + 4);
		if (start > end || len != 8 + 8ULL * (end / fpp + 1 -
		    start / fpp)) {
			backend_seterr(&x->b, "xen: X86_PV_P2M_FRAMES for pfns "
			    "%#x-%#x has %u octets", start, end, len);
			return -EINVAL;
		}
		need = end / fpp + 1;
		if (need > x->n_p2m_pfns) {
			uint64_t *f = realloc(x->p2m_pfns, need * 8);

			if (f == NULL)
				return xen_fail(&x->b, ENOMEM, "keeping the "
				    "p2m frames");
			for (i = (uint32_t)x->n_p2m_pfns; i < need; i++)
				f[i] = PV_INVALID;
			x->p2m_pfns = f;
			x->n_p2m_pfns = need;
		}
		for (i = 0; i < end / fpp + 1 - start / fpp; i++)
			x->p2m_pfns[start / fpp + i] =
			    xp_get64(0, body + 8 + 8 * i);
		if (!x->have_p2m_end || end > x->p2m_end)
			x->p2m_end = end;
		x->have_p2m_end = 1;
		return 0;
	case REC_X86_PV_VCPU_BASIC:
	case REC_X86_PV_VCPU_EXTENDED:
	case REC_X86_PV_VCPU_XSAVE:
	case REC_X86_PV_VCPU_MSRS:
		if (len < 8) {
			backend_seterr(&x->b, "xen: %s of %u octets",
			    record_type_name(type), len);
			return -EINVAL;
		}
		id = xp_get32(0, body);
		if (len == 8)
			return 0;	/* the Xen 4.6-4.8 empty record */
		if (id >= x->nr_vcpus) {
			backend_seterr(&x->b, "xen: %s for vcpu %u, but domain "
			    "%u has %u vcpu%s", record_type_name(type), id,
			    x->domid, x->nr_vcpus, x->nr_vcpus == 1 ? "" : "s");
			return -EINVAL;
		}
		if (x->pv_width != 8) {
			backend_seterr(&x->b, "xen: %s: a %u-bit PV guest; xmig "
			    "restores 64-bit PV guests only",
			    record_type_name(type), x->pv_width * 8);
			return -EOPNOTSUPP;
		}
		if (type == REC_X86_PV_VCPU_BASIC &&
		    len != 8 + WIRE_VCPU_BASIC_64) {
			backend_seterr(&x->b, "xen: X86_PV_VCPU_BASIC of %u "
			    "octets for a %u-bit guest", len, x->pv_width * 8);
			return -EINVAL;
		}
		k = type == REC_X86_PV_VCPU_BASIC ? 0 :
		    type == REC_X86_PV_VCPU_EXTENDED ? 1 :
		    type == REC_X86_PV_VCPU_XSAVE ? 2 : 3;
		return xen_keep(&x->b, &x->vcpu[id].blob[k],
		    &x->vcpu[id].len[k], body + 8, len - 8);
	case REC_SHARED_INFO:
		if (x->pv_width == 0 || len != XEN_PAGE_SIZE) {
			backend_seterr(&x->b, "xen: SHARED_INFO of %u octets%s",
			    len, x->pv_width == 0 ? " before X86_PV_INFO" : "");
			return -EPROTO;
		}
		return xen_keep(&x->b, &x->shinfo_rec, &x->shinfo_len, body,
		    len);
	default:
		backend_seterr(&x->b, "xen: record type %#x (%s) is not for a "
		    "PV guest", type, record_type_name(type));
		return -EOPNOTSUPP;
	}
}

/* The target frame of a pfn the stream carried as a plain page. */
static int
xen_pv_plain(struct xen_backend *x, uint64_t pfn, const char *what,
    uint64_t *mfn)
{
	if (pfn >= x->pop_bits || (*mfn = pv_pfn_to_mfn(&x->p2m, pfn)) ==
	    PV_INVALID) {
		backend_seterr(&x->b, "xen: %s is pfn %#" PRIx64 ", which is "
		    "absent from the stream", what, pfn);
		return -EINVAL;
	}
	if (x->types[pfn] != PT_NOTAB) {
		backend_seterr(&x->b, "xen: %s is pfn %#" PRIx64 ", whose type "
		    "in the stream is %#x, not a plain page", what, pfn,
		    x->types[pfn]);
		return -EINVAL;
	}
	return 0;
}

/* Turn the stream's page tables into the target's, batch by batch. */
static int
xen_pv_localise_all(struct xen_backend *x)
{
	uint64_t pfn[XEN_BATCH], mfn[XEN_BATCH], p;
	unsigned n = 0, i;
	char msg[200];
	uint64_t *pg;
	int rc = 0;

	for (p = 0; p <= x->pop_bits; p++) {
		if (p < x->pop_bits && (pv_pt_level(x->types[p]) == 0 ||
		    pv_pfn_to_mfn(&x->p2m, p) == PV_INVALID))
			continue;
		if (p < x->pop_bits) {
			pfn[n] = p;
			mfn[n++] = x->p2m.mfn[p];
			if (n < XEN_BATCH)
				continue;
		}
		if (n == 0)
			break;
		if ((pg = xen_pv_map_mfns(x, PROT_READ | PROT_WRITE, mfn, n)) ==
		    NULL)
			return xen_fail(&x->b, errno, "mapping %u page tables "
			    "from pfn %#" PRIx64, n, pfn[0]);
		for (i = 0; i < n && rc == 0; i++)
			if ((rc = pv_localise(&x->p2m, x->pv_levels,
			    x->types[pfn[i]], pfn[i], pg + (size_t)i * PV_PTES,
			    msg, sizeof(msg))) != 0)
				backend_seterr(&x->b, "xen: %s", msg);
		xenforeignmemory_unmap(x->fmem, pg, n);
		if (rc != 0)
			return rc;
		n = 0;
	}
	return 0;
}

/* Start info (vcpu 0's rdx): its store and console frames, as libxc. */
static int
xen_pv_start_info(struct xen_backend *x, vcpu_guest_context_x86_64_t *v,
    uint64_t shinfo_mfn)
{
	uint64_t mfn, smfn, cmfn;
	start_info_t *si;
	int rc;

	if ((rc = xen_pv_plain(x, v->user_regs.rdx, "vcpu 0's start info",
	    &mfn)) != 0)
		return rc;
	v->user_regs.rdx = mfn;
	if ((si = xen_pv_map_mfns(x, PROT_READ | PROT_WRITE, &mfn, 1)) == NULL)
		return xen_fail(&x->b, errno, "mapping the start info");
	if ((rc = xen_pv_plain(x, si->store_mfn, "the xenstore ring",
	    &smfn)) != 0 || (rc = xen_pv_plain(x, si->console.domU.mfn,
	    "the console ring", &cmfn)) != 0) {
		xenforeignmemory_unmap(x->fmem, si, 1);
		return rc;
	}
	si->store_mfn = smfn;
	si->store_evtchn = x->store_port;
	si->console.domU.mfn = cmfn;
	si->console.domU.evtchn = x->console_port;
	si->nr_pages = x->p2m_end + 1;
	si->shared_info = shinfo_mfn << XEN_PAGE_SHIFT;
	si->flags = 0;
	xenforeignmemory_unmap(x->fmem, si, 1);
	x->store_gfn = smfn;
	x->console_gfn = cmfn;
	return 0;
}

static int
xen_pv_set_vcpu(struct xen_backend *x, uint32_t id, uint64_t shinfo_mfn)
{
	vcpu_guest_context_any_t c;
	vcpu_guest_context_x86_64_t *v = &c.x64;
	struct xen_domctl d;
	uint64_t pfn, mfn;
	char msg[200], what[40];
	unsigned i, ng;
	size_t sz;
	int rc;
	DECLARE_HYPERCALL_BUFFER(void, buf);

	memset(&c, 0, sizeof(c));
	memcpy(v, x->vcpu[id].blob[0], sizeof(*v));
	if (id == 0 && (rc = xen_pv_start_info(x, v, shinfo_mfn)) != 0)
		return rc;
	v->flags |= VGCF_online;
	if (v->gdt_ents > FIRST_RESERVED_GDT_ENTRY) {
		backend_seterr(&x->b, "xen: X86_PV_VCPU_BASIC: vcpu %u has %u "
		    "GDT entries; at most %u", id, (unsigned)v->gdt_ents,
		    FIRST_RESERVED_GDT_ENTRY);
		return -ERANGE;
	}
	ng = (unsigned)((v->gdt_ents + 511) / 512);
	for (i = 0; i < ng; i++) {
		snprintf(what, sizeof(what), "vcpu %u's GDT frame %u", id, i);
		if ((rc = xen_pv_plain(x, v->gdt_frames[i], what, &mfn)) != 0)
			return rc;
		v->gdt_frames[i] = mfn;
	}
	pfn = xen_cr3_to_pfn(v->ctrlreg[3]);
	mfn = pv_pfn_to_mfn(&x->p2m, pfn);
	if ((rc = pv_cr3_check(pfn < x->pop_bits ? x->types[pfn] : PT_XTAB,
	    x->pv_levels, id, pfn, mfn != PV_INVALID, msg, sizeof(msg))) != 0) {
		backend_seterr(&x->b, "xen: %s", msg);
		return rc;
	}
	v->ctrlreg[3] = xen_pfn_to_cr3(mfn);
	if (v->ctrlreg[1] & 1) {
		pfn = v->ctrlreg[1] >> 12;
		mfn = pv_pfn_to_mfn(&x->p2m, pfn);
		if (mfn == PV_INVALID || pfn >= x->pop_bits ||
		    pv_pt_level(x->types[pfn]) != x->pv_levels) {
			backend_seterr(&x->b, "xen: X86_PV_VCPU_BASIC: vcpu "
			    "%u's user page table (CR1) is pfn %#" PRIx64
			    ", not an L%u table in the stream", id, pfn,
			    x->pv_levels);
			return -EINVAL;
		}
		v->ctrlreg[1] = mfn << 12;
	}
	if (xc_vcpu_setcontext(x->xch, x->domid, id, &c) != 0)
		return xen_fail(&x->b, errno, "X86_PV_VCPU_BASIC: Xen refused "
		    "vcpu %u's context", id);
	if (x->vcpu[id].blob[1] != NULL) {
		memset(&d, 0, sizeof(d));
		d.cmd = XEN_DOMCTL_set_ext_vcpucontext;
		d.domain = x->domid;
		memcpy(&d.u.ext_vcpucontext, x->vcpu[id].blob[1],
		    x->vcpu[id].len[1]);
		if (xc_domctl(x->xch, &d) != 0)
			return xen_fail(&x->b, errno, "X86_PV_VCPU_EXTENDED: "
			    "Xen refused vcpu %u's extended context", id);
	}
	for (i = 2; i < 4; i++) {
		if (x->vcpu[id].blob[i] == NULL)
			continue;
		sz = x->vcpu[id].len[i];
		if ((buf = xc_hypercall_buffer_alloc(x->xch, buf, sz)) == NULL)
			return xen_fail(&x->b, ENOMEM, "allocating vcpu %u's "
			    "state", id);
		memcpy(buf, x->vcpu[id].blob[i], sz);
		memset(&d, 0, sizeof(d));
		d.domain = x->domid;
		if (i == 2) {
			d.cmd = XEN_DOMCTL_setvcpuextstate;
			d.u.vcpuextstate.vcpu = id;
			d.u.vcpuextstate.size = sz;
			set_xen_guest_handle(d.u.vcpuextstate.buffer, buf);
		} else {
			d.cmd = XEN_DOMCTL_set_vcpu_msrs;
			d.u.vcpu_msrs.vcpu = id;
			d.u.vcpu_msrs.msr_count = (uint32_t)(sz /
			    sizeof(xen_domctl_vcpu_msr_t));
			set_xen_guest_handle(d.u.vcpu_msrs.msrs, buf);
		}
		rc = xc_domctl(x->xch, &d);
		if (rc != 0)
			rc = xen_fail(&x->b, errno, "%s: Xen refused vcpu %u's "
			    "%s", i == 2 ? "X86_PV_VCPU_XSAVE" :
			    "X86_PV_VCPU_MSRS", id, i == 2 ? "xsave state" :
			    "MSRs");
		xc_hypercall_buffer_free(x->xch, buf);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Pin every table the stream marked pinned (libxc: pin_pagetables). */
static int
xen_pv_pin(struct xen_backend *x)
{
	struct mmuext_op op[XEN_BATCH];
	unsigned n = 0, l;
	uint64_t p;
	static const unsigned cmd[5] = { 0, MMUEXT_PIN_L1_TABLE,
	    MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE };

	for (p = 0; p <= x->pop_bits; p++) {
		if (p < x->pop_bits) {
			if (!pv_type_pinned(x->types[p]) ||
			    x->p2m.mfn[p] == PV_INVALID)
				continue;
			l = pv_pt_level(x->types[p]);
			memset(&op[n], 0, sizeof(op[n]));
			op[n].cmd = cmd[l];
			op[n++].arg1.mfn = x->p2m.mfn[p];
			if (n < XEN_BATCH)
				continue;
		}
		if (n > 0 && xc_mmuext_op(x->xch, op, n, x->domid) != 0)
			return xen_fail(&x->b, errno, "pinning %u page tables "
			    "of domain %u (Xen found one invalid)", n,
			    x->domid);
		n = 0;
	}
	return 0;
}

/* Write the target's p2m into the guest's own p2m frames. */
static int
xen_pv_update_p2m(struct xen_backend *x)
{
	size_t nf = (size_t)(x->p2m_end / PV_FPP) + 1, i;
	uint64_t *mfns, *g, p;
	char what[48];
	int rc;

	if ((mfns = malloc(nf * sizeof(*mfns))) == NULL)
		return xen_fail(&x->b, ENOMEM, "rewriting the p2m");
	for (i = 0; i < nf; i++) {
		snprintf(what, sizeof(what), "p2m frame %zu", i);
		if ((rc = xen_pv_plain(x, x->p2m_pfns[i], what,
		    &mfns[i])) != 0) {
			free(mfns);
			return rc;
		}
	}
	g = xen_pv_map_mfns(x, PROT_READ | PROT_WRITE, mfns, nf);
	free(mfns);
	if (g == NULL)
		return xen_fail(&x->b, errno, "mapping domain %u's p2m frames",
		    x->domid);
	for (p = 0; p <= x->p2m_end; p++)
		g[p] = pv_pfn_to_mfn(&x->p2m, p);
	xenforeignmemory_unmap(x->fmem, g, nf);
	return 0;
}

/* The stream's shared info onto the domain's (libxc: handle_shared_info). */
static int
xen_pv_shared_info(struct xen_backend *x, uint64_t mfn)
{
	const shared_info_t *old = (const shared_info_t *)x->shinfo_rec;
	shared_info_t *sh;
	unsigned i;

	if ((sh = xen_pv_map_mfns(x, PROT_READ | PROT_WRITE, &mfn, 1)) == NULL)
		return xen_fail(&x->b, errno, "mapping domain %u's shared info",
		    x->domid);
	memcpy(sh->vcpu_info, old->vcpu_info, sizeof(sh->vcpu_info));
	memcpy(&sh->arch, &old->arch, sizeof(sh->arch));
	sh->arch.pfn_to_mfn_frame_list_list = 0;
	memset(sh->evtchn_pending, 0, sizeof(sh->evtchn_pending));
	for (i = 0; i < XEN_LEGACY_MAX_VCPUS; i++)
		sh->vcpu_info[i].evtchn_pending_sel = 0;
	memset(sh->evtchn_mask, 0xff, sizeof(sh->evtchn_mask));
	xenforeignmemory_unmap(x->fmem, sh, 1);
	return 0;
}

int
xen_pv_complete(struct xen_backend *x)
{
	xc_domaininfo_t di;
	char msg[200];
	uint32_t id;
	int rc;

	if (x->pv_width == 0) {
		backend_seterr(&x->b, "xen: the PV stream ended without "
		    "X86_PV_INFO");
		return -EPROTO;
	}
	if (x->pv_width != 8) {
		backend_seterr(&x->b, "xen: a %u-bit PV guest; xmig restores "
		    "64-bit PV guests only", x->pv_width * 8);
		return -EOPNOTSUPP;
	}
	if (!x->have_p2m_end) {
		backend_seterr(&x->b, "xen: the PV stream has no "
		    "X86_PV_P2M_FRAMES");
		return -EPROTO;
	}
	if ((rc = pv_p2m_cover_check(x->p2m_pfns, x->n_p2m_pfns, PV_FPP,
	    x->p2m_end, x->max_seen, x->p2m_end + 1, msg, sizeof(msg))) != 0) {
		backend_seterr(&x->b, "xen: %s", msg);
		return rc;
	}
	if (x->vcpu[0].blob[0] == NULL) {
		backend_seterr(&x->b, "xen: the stream has no "
		    "X86_PV_VCPU_BASIC for vcpu 0");
		return -EPROTO;
	}
	if (x->shinfo_rec == NULL) {
		backend_seterr(&x->b, "xen: the PV stream has no SHARED_INFO");
		return -EPROTO;
	}
	if ((rc = xen_getinfo(x, &di)) != 0)
		return rc;
	if ((rc = xen_pv_localise_all(x)) != 0)
		return rc;
	if ((rc = xen_pv_shared_info(x, di.shared_info_frame)) != 0)
		return rc;
	for (id = 0; id < x->nr_vcpus; id++)
		if (x->vcpu[id].blob[0] != NULL &&
		    (rc = xen_pv_set_vcpu(x, id, di.shared_info_frame)) != 0)
			return rc;
	if ((rc = xen_pv_pin(x)) != 0)
		return rc;
	if ((rc = xen_pv_update_p2m(x)) != 0)
		return rc;
	if (xc_dom_gnttab_seed(x->xch, x->domid, false, x->console_gfn,
	    x->store_gfn, x->console_domid, x->store_domid) != 0)
		return xen_fail(&x->b, errno, "seeding domain %u's grant table",
		    x->domid);
	xen_set_results(x);
	x->completed = 1;
	return 0;
}

/* The PV state of a handle (mappings included). */
void
xen_pv_free(struct xen_backend *x)
{
	uint32_t i;
	unsigned k;

	if (x->shinfo != NULL)
		xenforeignmemory_unmap(x->fmem, x->shinfo, 1);
	if (x->leaf_map != NULL)
		xenforeignmemory_unmap(x->fmem, x->leaf_map, x->nleaves);
	x->shinfo = NULL;
	x->leaf_map = NULL;
	pv_p2m_free(&x->p2m);
	free(x->p2m_pfns);
	x->p2m_pfns = NULL;
	free(x->types);
	x->types = NULL;
	for (i = 0; x->vcpu != NULL && i < x->nr_vcpus; i++)
		for (k = 0; k < 4; k++)
			free(x->vcpu[i].blob[k]);
	free(x->vcpu);
	x->vcpu = NULL;
	free(x->shinfo_rec);
	x->shinfo_rec = NULL;
}

