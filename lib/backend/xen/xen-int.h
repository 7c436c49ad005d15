/*
 * backend/xen/xen-int.h -- what the files of the Xen backend share: the
 * handle, one map() call, and the functions one file offers the others.
 * Not installed, included by the .c files of lib/backend/xen/ only.
 *
 * The backend by concern (xen.c's comment says what it does, call by call):
 *   xen.c        the ops table; spec, open, describe; pause and resume;
 *                destroy and close
 *   map.c        map, unmap, kept mappings, mapping frames by mfn
 *   dirty.c      log-dirty mode (source)
 *   populate.c   populate and zero pages, the target's pfn bitmaps
 *   state.c      the state records (CPU policy, TSC, HVM context and
 *                params, XMIG_EARLY_PARAMS) and the target's complete
 *   pv-source.c  64-bit PV source: p2m list, page types, vcpu records
 *   pv-target.c  64-bit PV target: localise, vcpus, pin, p2m, complete
 *   diag.c       timing, libxc's messages and xen_fail(), the emergency
 *                clean-up
 *   pvpt.c       PV page-table helpers without Xen headers (pvpt.h)
 *
 * Threading (the rule in backend.h, "Threading" at map): map and unmap
 * may run on a second thread beside the first (the sender's digest, the
 * receiver's verify-mode digest); with b.pause_threaded set (HVM/PVH
 * source, overlap=1) pause may run on a second thread beside map, unmap
 * and read_dirty.  Every other call comes from one thread at a time.  So:
 *   - lock serialises map and unmap; under it they use fmem, kept, where
 *     and nwhere and the timing of XT_TYPES, XT_MAP and XT_UNMAP, and a
 *     writable map clears bits of fresh (writable maps and populate, which
 *     sets them, come from the first thread only).  They read, without
 *     writing, source, domid, pv, paused, suspended, p2m, pv_levels,
 *     pop_bits, early, early_gfn and scratch, which the first thread sets
 *     outside map (a PV source is never pause_threaded: pause takes its
 *     p2m snapshot).
 *   - paused and suspended are stored by pause (perhaps on the second
 *     thread) with release and loaded by read_dirty with acquire; the
 *     suspend hook and XT_SUSPEND are pause's alone.
 *   - xen_last_log (diag.c) is per thread: a failure's libxc message is
 *     the one its own thread captured.  xen_live (diag.c) is changed with
 *     compare-and-swap and read by the fatal-signal handler.
 *   - Everything else belongs to the thread making the call.
 */
#ifndef XMIG_XEN_INT_H
#define XMIG_XEN_INT_H

#include <pthread.h>
#include <stdint.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xentoollog.h>

#include "backend.h"
#include "pvpt.h"

/* Exported by libxenctrl 4.17, declared only in its private header. */
int xc_get_pfn_type_batch(xc_interface *xch, uint32_t dom, unsigned int num,
    xen_pfn_t *arr);

#define XEN_BATCH	1024u
#define XEN_PAGE_SHIFT	12u
#define XEN_PAGE_SIZE	(1u << XEN_PAGE_SHIFT)
#define PV_FPP		(XEN_PAGE_SIZE / 8u)	/* p2m entries per frame */

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

	/* x86 PV guests (pv-source.c, pv-target.c). */
	int			 pv;
	unsigned		 pv_width, pv_levels;	/* 0: not known yet */
	struct pv_p2m		 p2m;		/* pfn -> mfn (+ reverse) */
	uint64_t		*p2m_pfns;	/* pfns of the p2m frames */
	size_t			 n_p2m_pfns;
	/* Source. */
	uint64_t		 max_mfn, max_pfn;
	void			*shinfo;	/* shared info, mapped */
	uint64_t		*leaf_map;	/* the p2m frames, mapped */
	size_t			 nleaves;
	/* Target. */
	uint8_t			*types;		/* PT_* per pfn, pop_bits */
	uint64_t		 p2m_end, max_seen;
	int			 have_p2m_end;
	struct xen_pv_vcpu {
		uint8_t		*blob[4];	/* BASIC, EXTENDED, XSAVE, MSRS */
		uint32_t	 len[4];
	}			*vcpu;
	uint8_t			*shinfo_rec;
	uint32_t		 shinfo_len;
};

/* One map() call. */
struct xen_map {
	void		*addr;
	unsigned	 n;		/* pages mapped at addr */
	int		 kept;		/* left mapped: xen_set_keep_maps */
	uint8_t		*types;		/* PV source: PT_* of each page */
	void		*copies;	/* PV source: normalised page tables */
};

/* xen.c */
int	xen_getinfo(struct xen_backend *x, xc_domaininfo_t *di);

/* map.c */
int	xen_map(struct backend *b, const uint64_t *pfns, unsigned n,
	    int writable, void **pages, void **cookie);
void	xen_unmap(struct backend *b, void *cookie, unsigned n);
int	xen_map_types(struct backend *b, void *cookie, unsigned n,
	    uint8_t *types);
void	*xen_pv_map_mfns(struct xen_backend *x, int prot,
	    const uint64_t *mfns, size_t n);

/* dirty.c */
int	xen_enable_dirty(struct backend *b);
int64_t	xen_read_dirty(struct backend *b, uint64_t *bitmap);
int	xen_disable_dirty(struct backend *b);

/* populate.c */
int	xen_pop_grow(struct xen_backend *x, uint64_t pfn);
int	xen_populate(struct backend *b, const uint64_t *pfns, unsigned n);
int	xen_clear_page(struct xen_backend *x, uint64_t pfn);
int	xen_zero_page(struct backend *b, uint64_t pfn);

/* state.c */
int	xen_static_state_t(struct backend *b, struct state_list *out);
int	xen_save_state_t(struct backend *b, struct state_list *out);
int	xen_early_state(struct backend *b, struct state_list *out);
int	xen_static_end(struct xen_backend *x);
int	xen_keep(struct backend *b, uint8_t **dst, uint32_t *dlen,
	    const uint8_t *body, uint32_t len);
int	xen_load_state(struct backend *b, uint32_t type, const uint8_t *body,
	    uint32_t len);
int	xen_load_early(struct backend *b, uint32_t type, const uint8_t *body,
	    uint32_t len);
int	xen_complete_t(struct backend *b);
void	xen_set_results(const struct xen_backend *x);

/* pv-source.c */
int	xen_pv_open_source(struct xen_backend *x, const xc_domaininfo_t *di);
int	xen_pv_snapshot(struct xen_backend *x);
int	xen_pv_map_source(struct xen_backend *x, const uint64_t *pfns,
	    unsigned n, void **pages, struct xen_map *m);
int	xen_pv_info_rec(struct xen_backend *x, struct state_list *out);
int	xen_pv_memory_state(struct backend *b, struct state_list *out);
int	xen_pv_save_state(struct xen_backend *x, struct state_list *out);

/* pv-target.c */
int	xen_set_types(struct backend *b, const uint64_t *pfns,
	    const uint8_t *types, unsigned n);
int	xen_pv_load(struct xen_backend *x, uint32_t type, const uint8_t *body,
	    uint32_t len);
int	xen_pv_complete(struct xen_backend *x);
void	xen_pv_free(struct xen_backend *x);

/* diag.c */
enum { XT_TYPES, XT_MAP, XT_UNMAP, XT_DIRTY, XT_DIRTY_OFF, XT_POPULATE,
	XT_CLEAR, XT_SUSPEND, XT_STATE, XT_COMPLETE, XT_NR };
extern xentoollog_logger xen_logger;
void	xen_tadd(unsigned k, uint64_t t0, uint64_t pages);
int	xen_fail(struct backend *b, int err, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	xen_log_forget(void);
void	xen_live_add(struct xen_backend *x);
void	xen_live_del(struct xen_backend *x);

#endif
