/*
 * backend.h -- the domain backend interface: one ops table per kind of
 * domain (sim, xen), chosen once by name, in the manner of libxenguest's
 * split between common save/restore code and per-guest-type hooks.
 *
 * All functions return 0 (or a count) on success and a negative errno value
 * on failure, and leave a one-line reason in backend_errmsg(b).  None of
 * them print or exit.  Page size is 1 << info.page_shift; pfns are 0-based.
 *
 * Call order on the source:
 *   open_source -> describe -> static_state -> enable_dirty
 *   -> { map/unmap, read_dirty }* -> pause -> read_dirty -> map/unmap
 *   -> save_state -> disable_dirty -> (destroy on success | resume on failure)
 *   -> close
 * On the target:
 *   open_target -> { load_state (static) }* -> { populate, map/unmap }*
 *   -> { load_state (tail) }* -> complete -> resume (or destroy) -> close
 */
#ifndef XMIG_BACKEND_H
#define XMIG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct backend;

struct domain_info {
	uint16_t	arch;		/* WIRE_ARCH_* */
	uint16_t	type;		/* WIRE_DOM_* */
	uint16_t	page_shift;
	uint64_t	nr_pages;	/* pfns 0 .. nr_pages-1 */
	uint32_t	nr_vcpus;
};

/* A record body produced or consumed by save_state / load_state. */
struct state_rec {
	uint32_t	 type;		/* REC_* */
	uint32_t	 len;
	uint8_t		*body;		/* little-endian body, malloc'd */
};

struct state_list {
	struct state_rec *recs;
	size_t		  n, cap;
};
int	state_list_add(struct state_list *l, uint32_t type, const void *body,
	    uint32_t len);
void	state_list_free(struct state_list *l);

/* Counters a backend may keep for reports (all optional, zero if unused). */
struct backend_stats {
	uint64_t	pages_written;	/* workload writes since open */
	uint64_t	dirty_rate;	/* bytes per second asked for */
};

struct backend_ops {
	const char *name;

	/*
	 * Source: attach to (sim: create and start) the domain named by spec,
	 * the part after "name:" ("mem=1G,vcpus=4" or "7").  On success *out
	 * is a new handle the caller must close().
	 */
	int (*open_source)(const char *spec, struct backend **out);

	/*
	 * Target: make an empty domain ready to receive one described by
	 * info (nr_pages may be 0 when the stream does not say; then pfns
	 * arrive unannounced and the backend grows as populate() asks).
	 * spec is the --backend argument after "name:" (may be "").
	 */
	int (*open_target)(const char *spec, const struct domain_info *info,
	    struct backend **out);

	/*
	 * Optional (NULL: nothing to prepare), target: called once by a
	 * receiver at start, before it listens or reads, with the same
	 * spec open_target will get; flags BACKEND_PREPARE_*.  sim:
	 * prealloc=SIZE maps and touches SIZE of memory now, as QEMU's
	 * prealloc=on does before -incoming, and the first target that fits
	 * takes it.  Errors go to backend_errmsg(NULL).
	 */
	int (*prepare)(const char *spec, unsigned flags);

	/* Fill info. Valid any time after open. */
	int (*describe)(struct backend *b, struct domain_info *info);

	/*
	 * Map n pages for reading (source) or writing (target, after
	 * populate).  pages[i] receives the address of pfns[i]'s page.
	 * *cookie is what unmap needs (may be NULL).  The mapping stays
	 * valid until unmap; the page contents may change under a running
	 * source domain (dirty tracking catches that).  On a source, a pfn
	 * that has no data (a hole in the p2m, a broken or allocate-only
	 * page: Xen's XTAB/BROKEN/XALLOC) gets pages[i] == NULL and the call
	 * still succeeds; callers send such a pfn as XTAB and digest it as
	 * zeros.  A target never returns NULL pages.
	 *
	 * Threading: map and unmap (only these) may be called from a second
	 * thread while the first thread uses the handle; backends make
	 * those two safe for that (the sender digests memory beside the
	 * flush).  The one other exception: with b->pause_threaded set, pause
	 * may run on a second thread while the first goes on copying (map,
	 * unmap, read_dirty).  Every other call comes from one thread at a
	 * time.
	 */
	int (*map)(struct backend *b, const uint64_t *pfns, unsigned n,
	    int writable, void **pages, void **cookie);
	void (*unmap)(struct backend *b, void *cookie, unsigned n);

	/* Source: start exact dirty tracking (all pages start clean). */
	int (*enable_dirty)(struct backend *b);
	/*
	 * Source: atomically read and clear the dirty bitmap (nr_pages bits,
	 * bit i of word i/64 is pfn i) into bitmap, OR-ing into it.  Returns
	 * the number of dirty pages found.  A page written after this call
	 * is reported dirty by the next one.
	 */
	int64_t (*read_dirty)(struct backend *b, uint64_t *bitmap);
	int (*disable_dirty)(struct backend *b);

	/* Stop / restart the vcpus (sim: the workload threads). Idempotent. */
	int (*pause)(struct backend *b);
	int (*resume)(struct backend *b);

	/*
	 * Source, domain paused: append the vcpu and platform records
	 * (little-endian bodies) in stream order to out.  static_state gives
	 * the records that go before STATIC_DATA_END (may add none).
	 */
	int (*static_state)(struct backend *b, struct state_list *out);
	int (*save_state)(struct backend *b, struct state_list *out);

	/* Target: make pfns[0..n) exist (allocate backing). */
	int (*populate)(struct backend *b, const uint64_t *pfns, unsigned n);
	/* Target: zero one page that the stream says is now zero. */
	int (*zero_page)(struct backend *b, uint64_t pfn);
	/* Target: take one vcpu/platform record (little-endian body). */
	int (*load_state)(struct backend *b, uint32_t type, const uint8_t *body,
	    uint32_t len);
	/* Target: the stream is complete; apply state, domain stays paused. */
	int (*complete)(struct backend *b);

	/* Source after a confirmed handover, or target after failure. */
	int (*destroy)(struct backend *b);
	/* Release the handle (does not destroy the domain). */
	void (*close)(struct backend *b);

	/* Optional: counters for reports (may be NULL). */
	void (*stats)(struct backend *b, struct backend_stats *st);

	/*
	 * Optional (NULL: the backend has none), for a toolstack that can
	 * finish the target domain while its memory is still on the way
	 * (SPEC 12.5).  early_state, source, domain running: append the
	 * records a receiver may use before the memory (XMIG_EARLY_PARAMS);
	 * the engine writes them right after STATIC_DATA_END, only to a
	 * receiver that answered the back-channel.  load_early, target,
	 * after the static data: take one such record and set up what it
	 * names at once (Xen: the store and console pages, cleared, their
	 * params and the grant-table seed); page data for those pfns is
	 * dropped from then on, and complete() checks that the final
	 * records agree.  The toolstack reads the results as after
	 * complete() (xen_restore_results).
	 */
	int (*early_state)(struct backend *b, struct state_list *out);
	int (*load_early)(struct backend *b, uint32_t type,
	    const uint8_t *body, uint32_t len);

	/*
	 * Optional (NULL: every page is a plain page, PT_NOTAB), for x86 PV
	 * guests, whose page tables travel typed (SPEC 7.2).
	 * memory_state, source: append the records that go right after
	 * STATIC_DATA_END, before any memory (X86_PV_P2M_FRAMES).
	 * map_types, source: the PAGE_DATA type nibble (PT_*) of each of
	 * the n pages of the map() that gave cookie, valid until its unmap;
	 * a page-table page map() returned is already in stream form.
	 * set_types, target: the types of pfns[0..n) as the stream gives
	 * them, called before their populate and map (the last call for a
	 * pfn wins); the backend turns typed pages into page tables at
	 * complete().
	 */
	int (*memory_state)(struct backend *b, struct state_list *out);
	int (*map_types)(struct backend *b, void *cookie, unsigned n,
	    uint8_t *types);
	int (*set_types)(struct backend *b, const uint64_t *pfns,
	    const uint8_t *types, unsigned n);

	/*
	 * Optional (NULL: the backend cannot), source, domain running:
	 * take pct percent (0..99) of the domain's speed away until told
	 * otherwise, 0 giving it all back; for auto-converge, when the
	 * domain dirties memory faster than the link carries it.  sim: its
	 * workload writes at (100 - pct) % of dirty=.  Called from the
	 * engine's thread.
	 */
	int (*throttle)(struct backend *b, unsigned pct);
	/*
	 * Optional (NULL: the domain has no external outputs to hold), for
	 * output commit under replication (SPEC 15.4), Remus's network
	 * buffering.  output_count: a source, paused: the outputs its
	 * state has produced so far; a target: the count its memory holds
	 * (-ENOENT if it holds none).  output_hold, source: on, outputs
	 * produced from now on stay inside until released; off, every
	 * output produced leaves, and so do all held ones.
	 * output_release, source: let outputs 1..upto leave (never beyond
	 * those produced); returns how many have left in all.
	 */
	int64_t (*output_count)(struct backend *b);
	int (*output_hold)(struct backend *b, int on);
	int64_t (*output_release)(struct backend *b, uint64_t upto);

	/*
	 * What the backend allows, BACKEND_CAP_*.  BACKEND_CAP_WORKERS: the
	 * data streams' worker threads (SPEC 13.6) may call map, unmap,
	 * map_types, populate and set_types while the main thread goes on
	 * with the handle's other calls; the engine lets one worker at a
	 * time into the backend (a lock of its own) and touches the mapped
	 * pages outside it.  Without it, a sender offers no data streams and
	 * a receiver takes none.
	 */
	unsigned caps;
};
#define BACKEND_CAP_WORKERS	0x1u
/*
 * prepare(): this process restores at most one domain, here, and forks
 * nothing before it (migrate-receive --once, or a file or stdin source).
 */
#define BACKEND_PREPARE_ONE	0x1u

/* The registry: "sim", "xen" (when built). NULL if unknown. */
const struct backend_ops *backend_find(const char *name);
/*
 * Split "sim:mem=1G" into ops and the spec after ':' ("sim" alone gives
 * spec "").  spec may be NULL.  NULL if the name is unknown or its backend
 * was not built; tell those apart with backend_known_but_missing().
 */
const struct backend_ops *backend_lookup(const char *uri, const char **spec);
/*
 * Non-zero if name (or the name part of a "name:spec" uri) is a backend
 * xmig knows but this build does not contain ("xen" when configured
 * without the Xen libraries), so a caller can say "xmig was built without
 * the Xen backend" rather than "unknown backend".
 */
int	backend_known_but_missing(const char *name);
/*
 * Call fn for every backend xmig knows, in registry order, with built
 * non-zero if this build contains it; stops at the first non-zero return
 * of fn and returns it (0 after the last).  For --version and messages
 * that list the backends.
 */
int	backend_foreach(int (*fn)(const char *name, int built, void *arg),
	    void *arg);

/* Every backend struct starts with this. */
struct backend {
	const struct backend_ops *ops;
	char errmsg[256];
	/*
	 * Set by the backend when it opens a source whose pause takes long
	 * (a guest's cooperative suspend, Xen), is safe on another thread
	 * beside map, unmap and read_dirty, and does not compete for the
	 * CPUs the copy uses (the guest freezes itself on CPUs of its own):
	 * the sender then begins the pause as soon as it decides to stop
	 * and goes on copying live (what is queued, then the pages dirtied
	 * meanwhile, pass after pass) until the domain is paused, so the
	 * final pass holds only what was dirtied last.  Zero (the
	 * default): the sender lets its output drain, then pauses.
	 */
	int pause_threaded;
};
/*
 * The reason for the last failure on b.  open_source and open_target have
 * no handle to put it in when they fail (*out is then NULL): their reason
 * is kept per thread and backend_errmsg(NULL) returns it.  Likewise
 * backend_seterr(NULL, ...) sets that per-thread message.
 */
const char *backend_errmsg(const struct backend *b);
void	backend_seterr(struct backend *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

extern const struct backend_ops sim_ops;

/*
 * The sim backend (backend/sim/sim.c): a simulated x86 HVM domain (page_shift
 * 12) living in the calling process.  Spec keys, comma separated, all
 * optional, each at most once; sizes take a binary K/M/G/T suffix:
 *
 *   mem=SIZE	 source: guest memory, a non-zero multiple of 4096 (256M)
 *   vcpus=N	 source: 1..128 (2); the workload runs min(N, 4) threads
 *   dirty=SIZE	 bytes per second the workload writes, 0 = none (0)
 *   hot=SIZE	 writes go to pfns [0, hot/4096); at least one page and at
 *		 most mem (min(mem, 256M)); on a target clamped to its size
 *   seed=N	 content and workload seed, decimal or 0x hex (1)
 *   mix=M	 source content: zero, random, realistic (about 1/4 zero,
 *		 1/4 text-like, 1/2 pseudo-random pages) or text (all
 *		 text-like: compressible)
 *   max=SIZE	 target: room reserved when the stream does not announce
 *		 the domain size (64G of MAP_NORESERVE address space)
 *   prefault=B	 target: 0 or 1 (0); 1 touches guest memory in a background
 *		 thread (MADV_POPULATE_WRITE, else one atomic no-op write per
 *		 page) as soon as nr_pages is known or grows, so receiving
 *		 does not pay the page faults
 *   prealloc=SIZE target: map and touch SIZE of guest memory when the
 *		 receiver starts (prepare(), before it listens), as QEMU's
 *		 memory-backend-ram,prealloc=on before -incoming, so the
 *		 migration neither faults nor zeroes; only for a receiver that
 *		 restores one domain in its own process (migrate-receive
 *		 --once, file or stdin; refused otherwise: a fork would make
 *		 the touched pages copy-on-write).  The first target takes it
 *		 if its announced size fits (a larger domain is refused at
 *		 NEGOTIATE, before any page; a second one too); a domain of
 *		 unannounced size grows within it (not with max=)
 *   outputs=N	 source: the workload produces N external outputs a second
 *		 (0), counted in the last page of guest memory (kept out
 *		 of the hot set); see output_count in struct backend_ops
 *   state=PATH	 source and target: write the run state to PATH (no
 *		 commas), one line, through a temporary file beside it and a
 *		 rename, at open and at every transition: "running" (a
 *		 source at open, any domain after resume), "paused" (a
 *		 target at open, any domain after pause), "destroyed".
 *		 close() of a domain not destroyed writes "gone running" or
 *		 "gone paused": a sim domain lives in its process and ends
 *		 with the handle, and the second word is the state it had
 *		 then (a Xen domain in that state would go on).  A process
 *		 killed before close leaves the last state it wrote.  A
 *		 failed write fails open, pause, resume or destroy with the
 *		 message "sim: state=PATH: ..."; at close it is lost.
 *
 * A source starts running (workload active if dirty > 0).  A target runs
 * a workload after complete + resume only if its spec says dirty=.  A
 * restored target can be used as a source again: its save_state returns
 * the records it loaded.  Pages from map() are the live guest memory: a
 * running workload changes them at any moment, as a guest would, and
 * dirty tracking reports every such change.  Handle calls must come from
 * one thread at a time; the workload threads are internal.
 *
 * sim_run_state: "running", "paused" (also a target not yet resumed) or
 * "destroyed"; NULL if b is not a sim handle.
 */
const char *sim_run_state(struct backend *b);
/*
 * sim_start_workload: a restored target whose spec had no dirty= (or 0)
 * starts the workload of its spec's hot= and seed= now at dirty octets
 * per second (at its next resume if paused), as if its spec had said
 * dirty=; for a receiver that must digest the memory it got before the
 * workload changes it (xmigd's domain processes).  -EBUSY if a workload
 * is set already, -EINVAL if b is not a complete sim target.
 */
int	sim_start_workload(struct backend *b, uint64_t dirty);

#ifdef HAVE_XEN
extern const struct backend_ops xen_ops;

/*
 * The xen backend (backend/xen/xen.c; its top comment says which libxc call
 * each op makes).  Spec: source "DOMID" or "domid=N[,toolstack=1
 * [,overlap=1]]" (overlap: b->pause_threaded on a host with more than one
 * CPU; experimental);
 * target "domid=N[,store_port=P,store_domid=D,console_port=P,
 * console_domid=D,toolstack=1]" (the domain exists, empty and paused).
 * toolstack=1: libxl owns the domain; pause calls the suspend hook, and
 * resume and destroy leave the domain to the toolstack.
 *
 * xen_set_suspend_hook: pause() calls fn(arg) to have the guest suspended
 * (0 when done).  xen_set_static_hook: for the targets opened after it, called once when the
 * static data has ended and the cpu policy is applied, with the
 * XGR_SDD_MISSING_* bits (1 cpuid, 2 msr) of what the stream lacked.
 * xen_restore_results: the store and console gfns the last successful
 * complete() in this process found (-ENOENT if none).
 * xen_emergency_cleanup: turns log-dirty off on every domain a handle has
 * it on; for a fatal-signal handler just before the process dies.
 * xen_timing: one line for a person: calls, pages and milliseconds spent
 * in each kind of libxc call by this process so far.
 * xen_set_keep_maps: while non-zero, unmap() leaves foreign mappings (up
 * to 4 GiB per handle) mapped until the process exits, and a target maps
 * each page once (a source maps afresh every time: its p2m may change
 * while it runs).  For a process that exits right after the migration
 * (xmig-save-helper): a Xen PV dom0 pays a trapped page-table write for
 * every page it unmaps, much less when the process exits.
 */
void	xen_set_suspend_hook(struct backend *b, int (*fn)(void *), void *arg);
void	xen_set_static_hook(int (*fn)(void *, unsigned), void *arg);
int	xen_restore_results(uint64_t *store_gfn, uint64_t *console_gfn);
void	xen_emergency_cleanup(void);
void	xen_timing(char *buf, size_t len);
void	xen_set_keep_maps(int on);
#endif

#endif
