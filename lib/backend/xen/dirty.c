/*
 * backend/xen/dirty.c -- a source's log-dirty mode: enable (off and on
 * again if a saver died with it on), read and clear the dirty bitmap
 * through a hypercall buffer (the final read, paused, says so), disable.
 * Domains with log-dirty on are listed for xen_emergency_cleanup().
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"
int
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
			xen_log_forget();
			backend_seterr(b, "PV live migration needs a Xen built "
			    "with shadow paging (domain %u, enabling "
			    "log-dirty: %s)", x->domid, strerror(err));
			return -err;
		}
		/* Perhaps left on by a saver that died: off, then on. */
		xen_log_forget();
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

int64_t
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

int
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
