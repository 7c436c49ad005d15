/*
 * backend/sim/sim.c -- a simulated x86 HVM domain living in this process.
 *
 * Guest memory is one private anonymous mapping.  A source is filled with
 * deterministic content (from seed and pfn) and, when dirty= asks for it,
 * up to four workload threads ("vcpus") rewrite pages of the hot set at a
 * paced rate.  Each write changes the page first and then sets the page's
 * bit in an atomic dirty bitmap (release); read_dirty swaps each word with
 * zero (acquire).  So a write the sender may have missed is always
 * reported by the next read_dirty.
 *
 * Run control is one mutex: a writer marks itself busy for one burst of
 * pages, and only when the domain is running and nobody holds it.  pause()
 * and the dirty-tracking switches wait until no burst is in flight, so
 * after pause() returns no byte of guest memory changes until resume().
 *
 * A target is an empty mapping that populate() marks present page by page;
 * load_state() keeps the platform records, and save_state() gives them back
 * so a restored domain can be migrated again.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "proto.h"
#include "wire.h"

#define SIM_PAGE_SHIFT		12
#define SIM_PAGE_SIZE		(1u << SIM_PAGE_SHIFT)
#define SIM_PAGE_WORDS		(SIM_PAGE_SIZE / 8)
#define SIM_MAX_VCPUS		128u
#define SIM_MAX_WRITERS		4u
#define SIM_DEFAULT_MEM		(256ULL << 20)
#define SIM_DEFAULT_HOT		(256ULL << 20)
#define SIM_DEFAULT_MAX		(64ULL << 30)
#define SIM_PATH_MAX		4096u		/* state=PATH, with its NUL */

/* Workload pacing. */
#define SIM_BURST_MAX		256u		/* pages per busy section */
#define SIM_SLEEP_MAX_NS	20000000ULL	/* re-check stop this often */
#define SIM_LAG_SEC		0.05		/* drop a backlog beyond this */

/* Prefault granule: 2 MiB. */
#define SIM_PREFAULT_PAGES	512u

/* Text-like content comes from a pool of dictionary words. */
#define SIM_TEXT_POOL		(64u * 1024)

/*
 * External outputs (outputs=N per second): the count lives in the last
 * page of guest memory, "XMIGOUT1" then the u64 count (little-endian), so
 * a restored copy knows how many outputs its state has produced.
 */
#define SIM_OUT_MAGIC		0x3154554f47494d58ULL	/* "XMIGOUT1" LE */
#define SIM_OUT_MAX		100000u	/* outputs per second */

/* Xen's HVM save format (public/arch-x86/hvm/save.h) as the sim fakes it. */
#define SIM_HVM_MAGIC		0x54381286u
#define SIM_HVM_VERSION		1u
#define SIM_HVM_CODE_END	0u
#define SIM_HVM_CODE_HEADER	1u
#define SIM_HVM_CODE_CPU	2u
#define SIM_HVM_DESC_SIZE	8u
#define SIM_HVM_HEADER_SIZE	24u
#define SIM_HVM_CPU_SIZE	1032u

/* HVM_PARAM_* indices the sim reports. */
#define SIM_PARAM_STORE_PFN	1u
#define SIM_PARAM_IOREQ_PFN	5u
#define SIM_PARAM_BUFIOREQ_PFN	6u
#define SIM_PARAM_IDENT_PT	12u
#define SIM_PARAM_CONSOLE_PFN	17u

#define SIM_CPUID_NO_SUBLEAF	0xffffffffu
#define SIM_TSC_MODE_DEFAULT	0u

enum sim_mix {
	SIM_MIX_ZERO,
	SIM_MIX_RANDOM,
	SIM_MIX_REALISTIC,
	SIM_MIX_TEXT,
};

enum sim_state {
	SIM_PAUSED,
	SIM_RUNNING,
	SIM_DESTROYED,
};

/* ---- spec strings ----------------------------------------------------- */

enum sim_key {
	SIM_K_MEM,
	SIM_K_VCPUS,
	SIM_K_DIRTY,
	SIM_K_HOT,
	SIM_K_SEED,
	SIM_K_MIX,
	SIM_K_MAX,
	SIM_K_PREFAULT,
	SIM_K_STATE,
	SIM_K_OUTPUTS,
	SIM_K_THP,
	SIM_K_PREALLOC,
	SIM_NKEYS
};

enum sim_kind {
	SIM_KIND_SIZE,		/* decimal with optional K/M/G/T */
	SIM_KIND_UINT,		/* decimal or 0x hex */
	SIM_KIND_MIX,		/* zero | random | realistic */
	SIM_KIND_PATH,		/* a file name, without commas */
};

#define SIM_SOURCE	0x1
#define SIM_TARGET	0x2

static const struct sim_keydef {
	const char	*name;
	enum sim_kind	 kind;
	int		 where;
} sim_keys[SIM_NKEYS] = {
	[SIM_K_MEM] = { .name = "mem", .kind = SIM_KIND_SIZE,
	    .where = SIM_SOURCE },
	[SIM_K_VCPUS] = { .name = "vcpus", .kind = SIM_KIND_UINT,
	    .where = SIM_SOURCE },
	[SIM_K_DIRTY] = { .name = "dirty", .kind = SIM_KIND_SIZE,
	    .where = SIM_SOURCE | SIM_TARGET },
	[SIM_K_HOT] = { .name = "hot", .kind = SIM_KIND_SIZE,
	    .where = SIM_SOURCE | SIM_TARGET },
	[SIM_K_SEED] = { .name = "seed", .kind = SIM_KIND_UINT,
	    .where = SIM_SOURCE | SIM_TARGET },
	[SIM_K_MIX] = { .name = "mix", .kind = SIM_KIND_MIX,
	    .where = SIM_SOURCE },
	[SIM_K_MAX] = { .name = "max", .kind = SIM_KIND_SIZE,
	    .where = SIM_TARGET },
	[SIM_K_PREFAULT] = { .name = "prefault", .kind = SIM_KIND_UINT,
	    .where = SIM_TARGET },
	[SIM_K_STATE] = { .name = "state", .kind = SIM_KIND_PATH,
	    .where = SIM_SOURCE | SIM_TARGET },
	[SIM_K_OUTPUTS] = { .name = "outputs", .kind = SIM_KIND_UINT,
	    .where = SIM_SOURCE },
	[SIM_K_THP] = { .name = "thp", .kind = SIM_KIND_UINT,
	    .where = SIM_SOURCE | SIM_TARGET },
	[SIM_K_PREALLOC] = { .name = "prealloc", .kind = SIM_KIND_SIZE,
	    .where = SIM_TARGET },
};

static const char *sim_mix_names[] = {
	[SIM_MIX_ZERO] = "zero",
	[SIM_MIX_RANDOM] = "random",
	[SIM_MIX_REALISTIC] = "realistic",
	[SIM_MIX_TEXT] = "text",
};

struct sim_spec {
	uint64_t	v[SIM_NKEYS];
	unsigned	given;		/* 1 << SIM_K_* */
	char		state[SIM_PATH_MAX];	/* state=PATH, "" if none */
};

/* ---- the domain ------------------------------------------------------- */

struct sim;

struct sim_writer {
	struct sim	*s;
	pthread_t	 thread;
	unsigned	 idx;
};

struct sim {
	struct backend		 b;		/* first */
	int			 target;
	struct sim_spec		 spec;

	uint16_t		 type;		/* WIRE_DOM_* */
	uint64_t		 nr_pages;	/* current size */
	uint64_t		 cap_pages;	/* room in the mapping */
	int			 grow;		/* target of unannounced size */
	uint32_t		 nr_vcpus;
	uint64_t		 hot_pages;
	uint32_t		 tsc_khz;

	uint8_t			*mem;
	size_t			 mem_len;
	_Atomic uint64_t	*dirty;		/* cap_pages bits */
	uint64_t		*present;	/* target: populated pfns */
	size_t			 words;		/* of dirty and present */

	/* Target: records from load_state, one per type. */
	struct state_list	 loaded;
	int			 complete;

	/* Run control: everything below is under lock. */
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;		/* writers: may go on */
	pthread_cond_t		 idle;		/* pausers: busy hit 0 */
	pthread_cond_t		 grown;		/* prefault: nr_pages grew */
	enum sim_state		 state;
	unsigned		 hold;		/* quiesce for a switch */
	unsigned		 busy;		/* bursts in flight */
	int			 tracking;
	atomic_int		 stop;
	uint64_t		 run_ns;	/* synthetic clock */
	uint64_t		 run_since;

	struct sim_writer	 writers[SIM_MAX_WRITERS];
	unsigned		 nwriters;

	pthread_t		 prefaulter;
	int			 prefaulting;
	uint64_t		 prefault_done;

	atomic_uint_least64_t	 pages_written;
	atomic_uint		 throttle;	/* % of the write rate taken */

	/* outputs=: produced (in memory), released (outside), held or not. */
	pthread_t		 outputter;
	int			 outputting;
	uint64_t		 out_pfn;
	uint64_t		 out_produced;	/* under lock */
	uint64_t		 out_released;	/* under lock */
	int			 out_hold;	/* under lock */
};

static const char *sim_words[] = {
	"the", "of", "and", "to", "in", "is", "that", "for", "it", "as",
	"was", "with", "be", "by", "on", "not", "he", "this", "are", "or",
	"his", "from", "at", "which", "but", "have", "an", "had", "they",
	"you", "were", "their", "one", "all", "we", "can", "her", "has",
	"there", "been", "if", "more", "when", "will", "would", "who", "so",
	"memory", "page", "domain", "kernel", "buffer", "request", "virtual",
	"migration", "network", "process", "schedule", "interrupt", "device",
	"return", "struct", "static", "const",
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t
sim_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (x ^ (x >> 31));
}

static uint64_t
sim_hash2(uint64_t a, uint64_t b)
{
	return (sim_mix64(a ^ sim_mix64(b)));
}

/* xorshift64*: state must be non-zero. */
#define SIM_XS(x)							\
	((x) ^= (x) >> 12, (x) ^= (x) << 25, (x) ^= (x) >> 27,		\
	(x) * 0x2545f4914f6cdd1dULL)

static uint64_t
sim_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static void	sim_free(struct sim *);

static struct sim *
sim_handle(struct backend *b)
{
	return ((struct sim *)b);
}

/* ---- spec parsing ----------------------------------------------------- */

/* Parse [0-9]+ (or 0x[0-9a-f]+ if hex) with an optional binary suffix. */
static int
sim_parse_number(const char *p, size_t len, enum sim_kind kind,
    uint64_t *out)
{
	uint64_t	v = 0, mult = 1, d;
	unsigned	base = 10;
	size_t		i = 0;

	if (kind == SIM_KIND_SIZE && len > 1) {
		switch (p[len - 1]) {
		case 'k': case 'K':
			mult = 1ULL << 10;
			break;
		case 'm': case 'M':
			mult = 1ULL << 20;
			break;
		case 'g': case 'G':
			mult = 1ULL << 30;
			break;
		case 't': case 'T':
			mult = 1ULL << 40;
			break;
		}
		if (mult != 1)
			len--;
	}
	if (kind == SIM_KIND_UINT && len > 2 && p[0] == '0' &&
	    (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == len)
		return (-1);
	for (; i < len; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = (uint64_t)(p[i] - '0');
		else if (base == 16 && p[i] >= 'a' && p[i] <= 'f')
			d = (uint64_t)(p[i] - 'a' + 10);
		else if (base == 16 && p[i] >= 'A' && p[i] <= 'F')
			d = (uint64_t)(p[i] - 'A' + 10);
		else
			return (-1);
		if (v > (UINT64_MAX - d) / base)
			return (-1);
		v = v * base + d;
	}
	if (v > UINT64_MAX / mult)
		return (-1);
	*out = v * mult;
	return (0);
}

static int
sim_parse_item(const char *item, size_t len, int where, struct sim_spec *sp)
{
	const char	*eq, *val;
	size_t		 klen, vlen;
	unsigned	 k, m;

	if (len == 0) {
		backend_seterr(NULL, "sim: empty item in spec");
		return (-EINVAL);
	}
	eq = memchr(item, '=', len);
	if (eq == NULL) {
		backend_seterr(NULL, "sim: '%.*s' in spec is not key=value",
		    (int)len, item);
		return (-EINVAL);
	}
	klen = (size_t)(eq - item);
	val = eq + 1;
	vlen = len - klen - 1;
	for (k = 0; k < SIM_NKEYS; k++) {
		if (strlen(sim_keys[k].name) == klen &&
		    memcmp(sim_keys[k].name, item, klen) == 0)
			break;
	}
	if (k == SIM_NKEYS) {
		backend_seterr(NULL, "sim: unknown key '%.*s' in spec (known: "
		    "mem, vcpus, dirty, hot, seed, mix, max, prefault, "
		    "state, outputs, thp, prealloc)",
		    (int)klen, item);
		return (-EINVAL);
	}
	if ((sim_keys[k].where & where) == 0) {
		if (where == SIM_TARGET)
			backend_seterr(NULL, "sim: key '%s' applies only to a "
			    "source domain (a target takes its shape from the "
			    "stream)", sim_keys[k].name);
		else
			backend_seterr(NULL, "sim: key '%s' applies only to a "
			    "target domain", sim_keys[k].name);
		return (-EINVAL);
	}
	if (sp->given & (1u << k)) {
		backend_seterr(NULL, "sim: key '%s' given twice in spec",
		    sim_keys[k].name);
		return (-EINVAL);
	}
	if (vlen == 0) {
		backend_seterr(NULL, "sim: key '%s' has no value",
		    sim_keys[k].name);
		return (-EINVAL);
	}
	if (sim_keys[k].kind == SIM_KIND_MIX) {
		for (m = 0; m < sizeof sim_mix_names / sizeof *sim_mix_names;
		    m++) {
			if (strlen(sim_mix_names[m]) == vlen &&
			    memcmp(sim_mix_names[m], val, vlen) == 0)
				break;
		}
		if (m == sizeof sim_mix_names / sizeof *sim_mix_names) {
			backend_seterr(NULL, "sim: mix=%.*s: expected zero, "
			    "random, realistic or text", (int)vlen, val);
			return (-EINVAL);
		}
		sp->v[k] = m;
	} else if (sim_keys[k].kind == SIM_KIND_PATH) {
		if (vlen >= sizeof sp->state) {
			backend_seterr(NULL, "sim: %s=: a path of %zu octets "
			    "(at most %u)", sim_keys[k].name, vlen,
			    SIM_PATH_MAX - 1);
			return (-EINVAL);
		}
		memcpy(sp->state, val, vlen);
		sp->state[vlen] = '\0';
	} else if (sim_parse_number(val, vlen, sim_keys[k].kind,
	    &sp->v[k]) != 0) {
		if (sim_keys[k].kind == SIM_KIND_SIZE)
			backend_seterr(NULL, "sim: %s=%.*s: not a size (a "
			    "number with an optional K, M, G or T suffix)",
			    sim_keys[k].name, (int)vlen, val);
		else
			backend_seterr(NULL, "sim: %s=%.*s: not a number",
			    sim_keys[k].name, (int)vlen, val);
		return (-EINVAL);
	}
	sp->given |= 1u << k;
	return (0);
}

/* Parse and check a spec; errors go to backend_errmsg(NULL). */
static int
sim_spec_parse(const char *spec, int where, struct sim_spec *sp)
{
	const char	*p, *comma;
	uint64_t	*v = sp->v;
	size_t		 len;
	int		 rc;

	memset(sp, 0, sizeof *sp);
	v[SIM_K_MEM] = SIM_DEFAULT_MEM;
	v[SIM_K_VCPUS] = 2;
	v[SIM_K_SEED] = 1;
	v[SIM_K_MIX] = SIM_MIX_REALISTIC;
	v[SIM_K_MAX] = SIM_DEFAULT_MAX;

	if (spec != NULL && *spec != '\0') {
		for (p = spec;; p = comma + 1) {
			comma = strchr(p, ',');
			len = comma != NULL ? (size_t)(comma - p) : strlen(p);
			if ((rc = sim_parse_item(p, len, where, sp)) != 0)
				return (rc);
			if (comma == NULL)
				break;
		}
	}

	if (v[SIM_K_MEM] == 0 || v[SIM_K_MEM] % SIM_PAGE_SIZE != 0) {
		backend_seterr(NULL, "sim: mem=%" PRIu64 " bytes: must be a "
		    "non-zero multiple of %u", v[SIM_K_MEM], SIM_PAGE_SIZE);
		return (-EINVAL);
	}
	if (v[SIM_K_VCPUS] == 0 || v[SIM_K_VCPUS] > SIM_MAX_VCPUS) {
		backend_seterr(NULL, "sim: vcpus=%" PRIu64 ": must be 1 to %u",
		    v[SIM_K_VCPUS], SIM_MAX_VCPUS);
		return (-EINVAL);
	}
	if (sp->given & (1u << SIM_K_HOT)) {
		if (v[SIM_K_HOT] < SIM_PAGE_SIZE) {
			backend_seterr(NULL, "sim: hot=%" PRIu64 " bytes: the "
			    "hot set must be at least one page (%u)",
			    v[SIM_K_HOT], SIM_PAGE_SIZE);
			return (-EINVAL);
		}
		if (where == SIM_SOURCE && v[SIM_K_HOT] > v[SIM_K_MEM]) {
			backend_seterr(NULL, "sim: hot=%" PRIu64 " bytes is "
			    "larger than mem=%" PRIu64, v[SIM_K_HOT],
			    v[SIM_K_MEM]);
			return (-EINVAL);
		}
	} else
		v[SIM_K_HOT] = v[SIM_K_MEM] < SIM_DEFAULT_HOT ?
		    v[SIM_K_MEM] : SIM_DEFAULT_HOT;
	if (v[SIM_K_MAX] == 0 || v[SIM_K_MAX] % SIM_PAGE_SIZE != 0) {
		backend_seterr(NULL, "sim: max=%" PRIu64 " bytes: must be a "
		    "non-zero multiple of %u", v[SIM_K_MAX], SIM_PAGE_SIZE);
		return (-EINVAL);
	}
	if (v[SIM_K_OUTPUTS] > SIM_OUT_MAX) {
		backend_seterr(NULL, "sim: outputs=%" PRIu64 ": at most %u "
		    "per second", v[SIM_K_OUTPUTS], SIM_OUT_MAX);
		return (-EINVAL);
	}
	if (v[SIM_K_OUTPUTS] != 0 && v[SIM_K_MEM] < 2 * SIM_PAGE_SIZE) {
		backend_seterr(NULL, "sim: outputs= needs mem= of two pages at "
		    "least (the last one holds the output count)");
		return (-EINVAL);
	}
	if (v[SIM_K_PREFAULT] > 1) {
		backend_seterr(NULL, "sim: prefault=%" PRIu64 ": must be 0 "
		    "or 1", v[SIM_K_PREFAULT]);
		return (-EINVAL);
	}
	if (v[SIM_K_THP] > 1) {
		backend_seterr(NULL, "sim: thp=%" PRIu64 ": must be 0 or 1",
		    v[SIM_K_THP]);
		return (-EINVAL);
	}
	if (sp->given & (1u << SIM_K_PREALLOC)) {
		if (v[SIM_K_PREALLOC] == 0 ||
		    v[SIM_K_PREALLOC] % SIM_PAGE_SIZE != 0 ||
		    v[SIM_K_PREALLOC] > SIZE_MAX / 2) {
			backend_seterr(NULL, "sim: prealloc=%" PRIu64 " bytes: "
			    "must be a non-zero multiple of %u",
			    v[SIM_K_PREALLOC], SIM_PAGE_SIZE);
			return (-EINVAL);
		}
		if (sp->given & (1u << SIM_K_MAX)) {
			backend_seterr(NULL, "sim: max= and prealloc= together: "
			    "with prealloc= a domain of unannounced size grows "
			    "within the preallocated memory");
			return (-EINVAL);
		}
	}
	return (0);
}

/* ---- guest memory ----------------------------------------------------- */

static int
sim_alloc(struct sim **out, int target)
{
	struct sim	*s;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		backend_seterr(NULL, "sim: out of memory for the handle");
		return (-ENOMEM);
	}
	s->b.ops = &sim_ops;
	s->target = target;
	s->state = SIM_PAUSED;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		backend_seterr(NULL, "sim: cannot create a mutex");
		return (-ENOMEM);
	}
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->idle, NULL);
	pthread_cond_init(&s->grown, NULL);
	*out = s;
	return (0);
}

/* Reserve room for cap pages plus the bitmaps. */
static int
sim_reserve(struct sim *s, uint64_t cap)
{
	void	*p;

	s->cap_pages = cap;
	s->words = (size_t)((cap + 63) / 64);
	if (s->mem != NULL)		/* prealloc=: mapped and touched */
		goto bitmaps;
	s->mem_len = (size_t)cap << SIM_PAGE_SHIFT;
	p = mmap(NULL, s->mem_len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		s->mem_len = 0;
		backend_seterr(&s->b, "sim: cannot reserve %" PRIu64 " MiB of "
		    "guest memory: %s", (uint64_t)(cap >> 8), strerror(errno));
		return (-ENOMEM);
	}
	s->mem = p;
#ifdef MADV_HUGEPAGE
	/*
	 * thp=1: transparent huge pages, one fault per 2 MiB instead of 512
	 * (a hint: where THP is off, or the kernel finds no huge page, the
	 * memory stays in small pages and nothing else changes).
	 */
	if (s->spec.v[SIM_K_THP])
		(void)madvise(p, s->mem_len, MADV_HUGEPAGE);
#endif
bitmaps:
	s->dirty = calloc(s->words, sizeof *s->dirty);
	if (s->target)
		s->present = calloc(s->words, sizeof *s->present);
	if (s->dirty == NULL || (s->target && s->present == NULL)) {
		backend_seterr(&s->b, "sim: out of memory for the bitmaps of "
		    "%" PRIu64 " pages", cap);
		return (-ENOMEM);
	}
	return (0);
}

static void
sim_text_pool(uint64_t seed, char *pool, size_t len)
{
	uint64_t	 x = sim_hash2(seed, 0x74657874ULL) | 1;
	size_t		 i = 0, col = 0, wl;
	const char	*w;

	while (i < len) {
		w = sim_words[SIM_XS(x) %
		    (sizeof sim_words / sizeof *sim_words)];
		wl = strlen(w);
		while (*w != '\0' && i < len)
			pool[i++] = *w++;
		col += wl + 1;
		if (i < len) {
			if (col > 72) {
				pool[i++] = '\n';
				col = 0;
			} else
				pool[i++] = (SIM_XS(x) % 13 == 0) ? ',' : ' ';
		}
	}
}

static void
sim_fill_random(uint64_t *p, uint64_t h)
{
	uint64_t	x = h | 1;
	unsigned	i;

	for (i = 0; i < SIM_PAGE_WORDS; i += 4) {
		p[i] = SIM_XS(x);
		p[i + 1] = SIM_XS(x);
		p[i + 2] = SIM_XS(x);
		p[i + 3] = SIM_XS(x);
	}
}

/* Fill a fresh source with content that depends only on seed and pfn. */
static int
sim_fill(struct sim *s)
{
	enum sim_mix	 mix = (enum sim_mix)s->spec.v[SIM_K_MIX];
	uint64_t	 seed = s->spec.v[SIM_K_SEED], pfn, h;
	uint8_t		*page;
	char		*pool = NULL;
	size_t		 off;
	int		 n;

	if (mix == SIM_MIX_ZERO)
		return (0);
	if (mix == SIM_MIX_REALISTIC || mix == SIM_MIX_TEXT) {
		if ((pool = malloc(SIM_TEXT_POOL + SIM_PAGE_SIZE)) == NULL) {
			backend_seterr(&s->b, "sim: out of memory for the "
			    "text pool");
			return (-ENOMEM);
		}
		sim_text_pool(seed, pool, SIM_TEXT_POOL + SIM_PAGE_SIZE);
	}
	for (pfn = 0; pfn < s->nr_pages; pfn++) {
		page = s->mem + (pfn << SIM_PAGE_SHIFT);
		h = sim_hash2(seed, pfn);
		if (mix == SIM_MIX_RANDOM ||
		    (mix == SIM_MIX_REALISTIC && (h & 3) >= 2)) {
			sim_fill_random((uint64_t *)page, h);
			continue;
		}
		if (mix == SIM_MIX_REALISTIC && (h & 3) == 0)
			continue;	/* zero: leave it untouched */
		off = (size_t)((h >> 8) % (SIM_TEXT_POOL / 8)) * 8;
		memcpy(page, pool + off, SIM_PAGE_SIZE);
		n = snprintf((char *)page, 32, "[pfn %#" PRIx64 "]", pfn);
		if (n > 0 && n < 32)
			page[n] = ' ';
	}
	free(pool);
	return (0);
}

/* ---- workload --------------------------------------------------------- */

/*
 * Change one page as a guest would.  The workload writes guest memory with
 * no synchronisation with whoever maps it (the sender reads it while it
 * changes, by design), so this is kept out of ThreadSanitizer's view; the
 * ordering that matters is the dirty bit's release in the caller.
 */
__attribute__((no_sanitize_thread)) static void
sim_write_page(uint64_t *p, uint64_t stamp, uint64_t x)
{
	uint64_t	*q;
	unsigned	 k, j;

	p[0] = stamp;
	for (k = 0; k < 2; k++) {
		q = p + (SIM_XS(x) % (SIM_PAGE_WORDS / 8)) * 8;
		for (j = 0; j < 8; j++)
			q[j] = SIM_XS(x);
	}
}

static void
sim_sleep_ns(uint64_t ns)
{
	struct timespec	ts;

	ts.tv_sec = (time_t)(ns / 1000000000ULL);
	ts.tv_nsec = (long)(ns % 1000000000ULL);
	nanosleep(&ts, NULL);
}

static void *
sim_writer_main(void *arg)
{
	struct sim_writer	*w = arg;
	struct sim		*s = w->s;
	double			 rate = 0, lag = 0;
	uint64_t		 x, stamp, t0 = 0, now, want, done = 0, n, next;
	uint64_t		 pfn, i, step = 1;
	unsigned		 thr = 100, t;
	int			 track, waited;

	x = sim_hash2(s->spec.v[SIM_K_SEED], 0x7772ULL + w->idx) | 1;
	stamp = (uint64_t)(w->idx + 1) << 56;

	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		t = atomic_load_explicit(&s->throttle, memory_order_relaxed);
		if (t != thr) {
			/* Pages per second for this thread, throttled; pacing
			 * starts afresh at each change. */
			thr = t;
			rate = (double)s->spec.v[SIM_K_DIRTY] / SIM_PAGE_SIZE /
			    s->nwriters * (100 - thr) / 100.0;
			if (rate < 1)
				rate = 1;
			lag = rate * SIM_LAG_SEC;
			if (lag < SIM_BURST_MAX)
				lag = SIM_BURST_MAX;
			step = (uint64_t)(rate / 1000);	/* about every ms */
			if (step == 0)
				step = 1;
			t0 = sim_now_ns();
			done = 0;
		}
		now = sim_now_ns();
		want = (uint64_t)((double)(now - t0) * 1e-9 * rate);
		if (want <= done) {
			next = t0 + (uint64_t)((double)(done + step) * 1e9 /
			    rate);
			if (next <= now)
				next = now + 1000;
			if (next - now > SIM_SLEEP_MAX_NS)
				next = now + SIM_SLEEP_MAX_NS;
			sim_sleep_ns(next - now);
			continue;
		}
		if ((double)(want - done) > lag)
			done = want - (uint64_t)lag;	/* fell behind */
		n = want - done;
		if (n > SIM_BURST_MAX)
			n = SIM_BURST_MAX;

		pthread_mutex_lock(&s->lock);
		waited = 0;
		while (!atomic_load_explicit(&s->stop, memory_order_relaxed) &&
		    (s->state != SIM_RUNNING || s->hold != 0)) {
			pthread_cond_wait(&s->wake, &s->lock);
			waited = 1;
		}
		if (waited) {
			/* Start pacing afresh: no catching up a pause. */
			pthread_mutex_unlock(&s->lock);
			t0 = sim_now_ns();
			done = 0;
			continue;
		}
		s->busy++;
		track = s->tracking;
		pthread_mutex_unlock(&s->lock);

		for (i = 0; i < n; i++) {
			pfn = (uint64_t)(((unsigned __int128)SIM_XS(x) *
			    s->hot_pages) >> 64);
			stamp++;
			sim_write_page((uint64_t *)(s->mem +
			    (pfn << SIM_PAGE_SHIFT)), stamp, SIM_XS(x) | 1);
			if (track)
				atomic_fetch_or_explicit(&s->dirty[pfn / 64],
				    1ULL << (pfn % 64), memory_order_release);
		}
		atomic_fetch_add_explicit(&s->pages_written, n,
		    memory_order_relaxed);

		pthread_mutex_lock(&s->lock);
		if (--s->busy == 0)
			pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
		done += n;
	}
	return (NULL);
}

/*
 * The output workload: outputs=N times a second the guest produces one
 * external output (think of a packet sent).  The count goes into guest
 * memory first, as one burst the pause waits for, then the output leaves
 * unless it is held (output_hold): then only output_release lets it out.
 */
static void *
sim_output_main(void *arg)
{
	struct sim	*s = arg;
	uint64_t	*p, t0, n = 0, next, now;

	t0 = sim_now_ns();
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		next = t0 + (uint64_t)((double)(n + 1) * 1e9 /
		    (double)s->spec.v[SIM_K_OUTPUTS]);
		now = sim_now_ns();
		if (next > now) {
			sim_sleep_ns(next - now > SIM_SLEEP_MAX_NS ?
			    SIM_SLEEP_MAX_NS : next - now);
			continue;
		}
		pthread_mutex_lock(&s->lock);
		while (!atomic_load_explicit(&s->stop, memory_order_relaxed) &&
		    (s->state != SIM_RUNNING || s->hold != 0))
			pthread_cond_wait(&s->wake, &s->lock);
		if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		s->busy++;
		p = (uint64_t *)(s->mem + (s->out_pfn << SIM_PAGE_SHIFT));
		p[0] = SIM_OUT_MAGIC;
		p[1] = ++s->out_produced;
		if (s->tracking)
			atomic_fetch_or_explicit(&s->dirty[s->out_pfn / 64],
			    1ULL << (s->out_pfn % 64), memory_order_release);
		if (!s->out_hold)
			s->out_released = s->out_produced;
		if (--s->busy == 0)
			pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
		n++;
		if (sim_now_ns() - t0 > (uint64_t)((double)n * 1e9 /
		    (double)s->spec.v[SIM_K_OUTPUTS]) + 1000000000ULL) {
			t0 = sim_now_ns();	/* paused long: no catching up */
			n = 0;
		}
	}
	return (NULL);
}

static int
sim_start_writers(struct sim *s)
{
	unsigned	i, n;
	int		rc;

	if (s->spec.v[SIM_K_DIRTY] == 0 || s->hot_pages == 0 ||
	    s->nwriters != 0)
		return (0);
	n = s->nr_vcpus < SIM_MAX_WRITERS ? s->nr_vcpus : SIM_MAX_WRITERS;
	if (n == 0)
		n = 1;
	s->nwriters = n;	/* read by the threads for their share */
	for (i = 0; i < n; i++) {
		s->writers[i].s = s;
		s->writers[i].idx = i;
		rc = pthread_create(&s->writers[i].thread, NULL,
		    sim_writer_main, &s->writers[i]);
		if (rc != 0) {
			s->nwriters = i;
			backend_seterr(&s->b, "sim: cannot start workload "
			    "thread %u: %s", i, strerror(rc));
			return (-rc);
		}
	}
	return (0);
}

/* Wait, with the lock held, until no burst is in flight. */
static void
sim_quiesce_locked(struct sim *s)
{
	while (s->busy != 0)
		pthread_cond_wait(&s->idle, &s->lock);
}

/* ---- prefaulting (target) --------------------------------------------- */

static void
sim_touch(struct sim *s, uint64_t start, uint64_t end, int *use_madvise)
{
	uint8_t		*p = s->mem + (start << SIM_PAGE_SHIFT);
	uint64_t	 i;

#ifdef MADV_POPULATE_WRITE
	if (*use_madvise) {
		if (madvise(p, (size_t)(end - start) << SIM_PAGE_SHIFT,
		    MADV_POPULATE_WRITE) == 0)
			return;
		if (errno != EINVAL)
			return;		/* out of memory: give up quietly */
		*use_madvise = 0;	/* kernel before 5.14 */
	}
#else
	(void)use_madvise;
#endif
	/* An atomic add of zero faults the page in and changes nothing. */
	for (i = start; i < end; i++) {
		__atomic_fetch_add((uint64_t *)(s->mem +
		    (i << SIM_PAGE_SHIFT)), 0, __ATOMIC_RELAXED);
	}
}

static void *
sim_prefault_main(void *arg)
{
	struct sim	*s = arg;
	uint64_t	 start, end;
	int		 use_madvise = 1;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!atomic_load_explicit(&s->stop, memory_order_relaxed) &&
		    s->prefault_done >= s->nr_pages)
			pthread_cond_wait(&s->grown, &s->lock);
		if (atomic_load_explicit(&s->stop, memory_order_relaxed))
			break;
		start = s->prefault_done;
		end = s->nr_pages;
		if (end - start > SIM_PREFAULT_PAGES)
			end = start + SIM_PREFAULT_PAGES;
		pthread_mutex_unlock(&s->lock);
		sim_touch(s, start, end, &use_madvise);
		pthread_mutex_lock(&s->lock);
		s->prefault_done = end;
	}
	pthread_mutex_unlock(&s->lock);
	return (NULL);
}

/* ---- prealloc= (target) ----------------------------------------------- */

/*
 * The memory sim_prepare mapped and touched before the migration, as
 * QEMU's memory-backend-ram,prealloc=on does before -incoming: private
 * anonymous memory of this process, so it is for a receiver that
 * restores one domain here and forks nothing in between (a fork would
 * make every touched page copy-on-write).  The first target whose spec
 * has prealloc= and whose domain fits takes it.
 */
static struct {
	pthread_mutex_t	 lock;
	uint8_t		*mem;
	size_t		 len;
	int		 thp;
	int		 taken;		/* by a target: it serves one */
} sim_pre = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Fault in len octets at p for writing; 0 or a negative errno. */
static int
sim_populate_write(uint8_t *p, size_t len)
{
	size_t	off;

#ifdef MADV_POPULATE_WRITE
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return (0);
	if (errno != EINVAL)
		return (-errno);	/* ENOMEM, EFAULT, ... */
	/* A kernel before 5.14: touch the pages instead. */
#endif
	for (off = 0; off < len; off += SIM_PAGE_SIZE)
		__atomic_fetch_add((uint64_t *)(p + off), 0, __ATOMIC_RELAXED);
	return (0);
}

static int
sim_prepare(const char *spec, unsigned flags)
{
	struct sim_spec	 sp;
	void		*p;
	size_t		 len;
	int		 rc;

	if ((rc = sim_spec_parse(spec, SIM_TARGET, &sp)) != 0)
		return (rc);
	if (!(sp.given & (1u << SIM_K_PREALLOC)))
		return (0);
	if (!(flags & BACKEND_PREPARE_ONE)) {
		backend_seterr(NULL, "sim: prealloc= is for a receiver that "
		    "restores one domain in its own process (migrate-receive "
		    "--once, or a file or stdin source)");
		return (-EINVAL);
	}
	len = (size_t)sp.v[SIM_K_PREALLOC];
	pthread_mutex_lock(&sim_pre.lock);
	if (sim_pre.mem != NULL) {	/* the last prepare wins */
		munmap(sim_pre.mem, sim_pre.len);
		sim_pre.mem = NULL;
		sim_pre.len = 0;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		pthread_mutex_unlock(&sim_pre.lock);
		backend_seterr(NULL, "sim: prealloc=: cannot map %zu MiB: %s",
		    len >> 20, strerror(-rc));
		return (rc);
	}
#ifdef MADV_HUGEPAGE
	if (sp.v[SIM_K_THP])
		(void)madvise(p, len, MADV_HUGEPAGE);
#endif
	if ((rc = sim_populate_write(p, len)) != 0) {
		munmap(p, len);
		pthread_mutex_unlock(&sim_pre.lock);
		backend_seterr(NULL, "sim: prealloc=: cannot fault in %zu MiB: "
		    "%s", len >> 20, strerror(-rc));
		return (rc);
	}
	sim_pre.mem = p;
	sim_pre.len = len;
	sim_pre.thp = (int)sp.v[SIM_K_THP];
	sim_pre.taken = 0;
	pthread_mutex_unlock(&sim_pre.lock);
	return (0);
}

/*
 * open_target with prealloc=: hand s the prepared memory if a domain of
 * nr_pages (0: unannounced) fits it; *cap gets the room.  Refuses (the
 * receiver's answer to NEGOTIATE, before any page) if there is none or
 * it is too small.
 */
static int
sim_take_prealloc(struct sim *s, uint64_t nr_pages, uint64_t *cap)
{
	uint64_t	room;

	pthread_mutex_lock(&sim_pre.lock);
	if (sim_pre.mem == NULL) {
		pthread_mutex_unlock(&sim_pre.lock);
		if (sim_pre.taken)
			backend_seterr(NULL, "sim: prealloc=: the preallocated "
			    "memory went to an earlier domain (it serves one "
			    "migration)");
		else
			backend_seterr(NULL, "sim: prealloc=: no memory was "
			    "preallocated in this process (migrate-receive does "
			    "it at start when it serves one migration: --once, "
			    "a file or stdin)");
		return (-ENOMEM);
	}
	room = sim_pre.len >> SIM_PAGE_SHIFT;
	if (nr_pages > room) {
		pthread_mutex_unlock(&sim_pre.lock);
		backend_seterr(NULL, "sim: the incoming domain's %" PRIu64
		    " KiB do not fit the %" PRIu64 " KiB of prealloc= (raise "
		    "it, or leave prealloc= out)", nr_pages << 2, room << 2);
		return (-ENOMEM);
	}
	s->mem = sim_pre.mem;
	s->mem_len = sim_pre.len;
	sim_pre.mem = NULL;
	sim_pre.len = 0;
	sim_pre.taken = 1;
	pthread_mutex_unlock(&sim_pre.lock);
	*cap = nr_pages != 0 ? nr_pages : room;
	return (0);
}

/* Stop and join every thread of s. */
static void
sim_stop_threads(struct sim *s)
{
	unsigned	i;

	pthread_mutex_lock(&s->lock);
	atomic_store(&s->stop, 1);
	pthread_cond_broadcast(&s->wake);
	pthread_cond_broadcast(&s->grown);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->nwriters; i++)
		pthread_join(s->writers[i].thread, NULL);
	s->nwriters = 0;
	if (s->outputting) {
		pthread_join(s->outputter, NULL);
		s->outputting = 0;
	}
	if (s->prefaulting) {
		pthread_join(s->prefaulter, NULL);
		s->prefaulting = 0;
	}
}

/* ---- state records ---------------------------------------------------- */

static uint64_t
sim_clock_locked(struct sim *s)
{
	if (s->state == SIM_RUNNING)
		return (s->run_ns + (sim_now_ns() - s->run_since));
	return (s->run_ns);
}

static int
sim_add(struct sim *s, struct state_list *out, uint32_t type,
    const void *body, uint32_t len)
{
	if (state_list_add(out, type, body, len) != 0) {
		backend_seterr(&s->b, "sim: out of memory for a %s record "
		    "of %" PRIu32 " octets", record_type_name(type), len);
		return (-ENOMEM);
	}
	return (0);
}

static int
sim_tsc_info(struct sim *s, struct state_list *out)
{
	uint8_t		body[WIRE_TSC_INFO_SIZE];
	uint64_t	nsec;

	pthread_mutex_lock(&s->lock);
	nsec = sim_clock_locked(s);
	pthread_mutex_unlock(&s->lock);

	xp_put32(0, body, SIM_TSC_MODE_DEFAULT);
	xp_put32(0, body + 4, s->tsc_khz);
	xp_put64(0, body + 8, nsec);
	xp_put32(0, body + 16, 0);		/* incarnation */
	xp_put32(0, body + 20, 0);
	return (sim_add(s, out, REC_X86_TSC_INFO, body, sizeof body));
}

static uint8_t *
sim_hvm_desc(uint8_t *p, uint16_t code, uint16_t instance, uint32_t len)
{
	xp_put16(0, p, code);
	xp_put16(0, p + 2, instance);
	xp_put32(0, p + 4, len);
	return (p + SIM_HVM_DESC_SIZE);
}

static int
sim_hvm_context(struct sim *s, struct state_list *out)
{
	uint8_t		*body, *p;
	uint64_t	 ctr, h;
	size_t		 len;
	uint32_t	 v, j;
	int		 rc;

	len = SIM_HVM_DESC_SIZE + SIM_HVM_HEADER_SIZE +
	    (size_t)s->nr_vcpus * (SIM_HVM_DESC_SIZE + SIM_HVM_CPU_SIZE) +
	    SIM_HVM_DESC_SIZE;
	if ((body = malloc(len)) == NULL) {
		backend_seterr(&s->b, "sim: out of memory for HVM_CONTEXT");
		return (-ENOMEM);
	}
	/* Advances only while the workload runs: fixed while paused. */
	ctr = atomic_load_explicit(&s->pages_written, memory_order_relaxed);

	p = sim_hvm_desc(body, SIM_HVM_CODE_HEADER, 0, SIM_HVM_HEADER_SIZE);
	xp_put32(0, p, SIM_HVM_MAGIC);
	xp_put32(0, p + 4, SIM_HVM_VERSION);
	xp_put64(0, p + 8, sim_hash2(s->spec.v[SIM_K_SEED], 0x6373ULL));
	xp_put32(0, p + 16, 0x000806ecu);	/* cpuid 1 eax */
	xp_put32(0, p + 20, s->tsc_khz);
	p += SIM_HVM_HEADER_SIZE;
	for (v = 0; v < s->nr_vcpus; v++) {
		p = sim_hvm_desc(p, SIM_HVM_CODE_CPU, (uint16_t)v,
		    SIM_HVM_CPU_SIZE);
		h = sim_hash2(sim_hash2(s->spec.v[SIM_K_SEED], v), ctr);
		for (j = 0; j < SIM_HVM_CPU_SIZE / 8; j++)
			xp_put64(0, p + 8 * j, sim_hash2(h, j));
		p += SIM_HVM_CPU_SIZE;
	}
	sim_hvm_desc(p, SIM_HVM_CODE_END, 0, 0);
	rc = sim_add(s, out, REC_HVM_CONTEXT, body, (uint32_t)len);
	free(body);
	return (rc);
}

static int
sim_hvm_params(struct sim *s, struct state_list *out)
{
	/* Xen's save order; values: pfns (or an address) near the top. */
	static const struct {
		uint32_t	index;
		uint32_t	below;	/* pfn = nr_pages - below */
		int		addr;	/* value is a byte address */
	} params[] = {
		{ SIM_PARAM_STORE_PFN, 1, 0 },
		{ SIM_PARAM_IOREQ_PFN, 3, 0 },
		{ SIM_PARAM_BUFIOREQ_PFN, 4, 0 },
		{ SIM_PARAM_CONSOLE_PFN, 2, 0 },
		{ SIM_PARAM_IDENT_PT, 5, 1 },
	};
	uint8_t		body[8 + 16 * (sizeof params / sizeof *params)];
	uint64_t	pfn;
	uint32_t	count = 0;
	size_t		i;

	for (i = 0; i < sizeof params / sizeof *params; i++) {
		if (s->nr_pages <= params[i].below)
			continue;	/* would be pfn 0 or below: not sent */
		pfn = s->nr_pages - params[i].below;
		xp_put64(0, body + 8 + 16 * count, params[i].index);
		xp_put64(0, body + 16 + 16 * count,
		    params[i].addr ? pfn << SIM_PAGE_SHIFT : pfn);
		count++;
	}
	xp_put32(0, body, count);
	xp_put32(0, body + 4, 0);
	return (sim_add(s, out, REC_HVM_PARAMS, body, 8 + 16 * count));
}

static int
sim_cpuid_policy(struct sim *s, struct state_list *out)
{
	static const uint32_t leaves[][6] = {
		/* leaf, subleaf, eax, ebx, ecx, edx */
		{ 0x0, SIM_CPUID_NO_SUBLEAF, 0xd, 0x756e6547, 0x6c65746e,
		    0x49656e69 },			/* "GenuineIntel" */
		{ 0x1, SIM_CPUID_NO_SUBLEAF, 0x000806ec, 0x00020800,
		    0xfeda3203, 0x178bfbff },
		{ 0x7, 0, 0, 0x009c27ab, 0, 0 },
		{ 0xd, 0, 0x7, 0x340, 0x340, 0 },
		{ 0xd, 1, 0x1, 0, 0, 0 },
		{ 0x80000000, SIM_CPUID_NO_SUBLEAF, 0x80000008, 0, 0, 0 },
		{ 0x80000001, SIM_CPUID_NO_SUBLEAF, 0, 0, 0x121, 0x2c100800 },
		{ 0x80000008, SIM_CPUID_NO_SUBLEAF, 0x3027, 0, 0, 0 },
	};
	uint8_t	body[sizeof leaves / sizeof *leaves * WIRE_CPUID_LEAF_SIZE];
	size_t	i, j;

	for (i = 0; i < sizeof leaves / sizeof *leaves; i++) {
		for (j = 0; j < 6; j++)
			xp_put32(0, body + i * WIRE_CPUID_LEAF_SIZE + 4 * j,
			    leaves[i][j]);
	}
	return (sim_add(s, out, REC_X86_CPUID_POLICY, body, sizeof body));
}

static int
sim_msr_policy(struct sim *s, struct state_list *out)
{
	static const struct {
		uint32_t	idx;
		uint64_t	val;
	} msrs[] = {
		{ 0x000000ce, 0x0000000080000000ULL },	/* PLATFORM_INFO */
		{ 0x0000010a, 0x000000000000000bULL },	/* ARCH_CAPABILITIES */
	};
	uint8_t	body[sizeof msrs / sizeof *msrs * WIRE_MSR_ENTRY_SIZE];
	size_t	i;

	for (i = 0; i < sizeof msrs / sizeof *msrs; i++) {
		xp_put32(0, body + i * WIRE_MSR_ENTRY_SIZE, msrs[i].idx);
		xp_put32(0, body + i * WIRE_MSR_ENTRY_SIZE + 4, 0);
		xp_put64(0, body + i * WIRE_MSR_ENTRY_SIZE + 8, msrs[i].val);
	}
	return (sim_add(s, out, REC_X86_MSR_POLICY, body, sizeof body));
}

static struct state_rec *
sim_loaded(struct sim *s, uint32_t type)
{
	size_t	i;

	for (i = 0; i < s->loaded.n; i++) {
		if (s->loaded.recs[i].type == type)
			return (&s->loaded.recs[i]);
	}
	return (NULL);
}

static int
sim_emit_loaded(struct sim *s, struct state_list *out, uint32_t type)
{
	struct state_rec	*r;

	if ((r = sim_loaded(s, type)) == NULL)
		return (0);
	return (sim_add(s, out, type, r->body, r->len));
}

/*
 * Check an HVM context blob: descriptors up to an END one, starting with
 * a header.  Returns the number of CPU descriptors or -1.
 */
static int
sim_hvm_check(struct sim *s, const uint8_t *body, uint32_t len)
{
	uint32_t	off = 0, dlen;
	uint16_t	code;
	int		cpus = 0, first = 1;

	for (;;) {
		if (len - off < SIM_HVM_DESC_SIZE) {
			backend_seterr(&s->b, "sim: HVM_CONTEXT: descriptor at "
			    "offset %" PRIu32 " is truncated (no END)", off);
			return (-1);
		}
		code = xp_get16(0, body + off);
		dlen = xp_get32(0, body + off + 4);
		off += SIM_HVM_DESC_SIZE;
		if (dlen > len - off) {
			backend_seterr(&s->b, "sim: HVM_CONTEXT: descriptor "
			    "type %u at offset %" PRIu32 " has length %" PRIu32
			    ", beyond the blob's %" PRIu32 " octets", code,
			    off - SIM_HVM_DESC_SIZE, dlen, len);
			return (-1);
		}
		if (first && (code != SIM_HVM_CODE_HEADER ||
		    dlen < SIM_HVM_HEADER_SIZE ||
		    xp_get32(0, body + off) != SIM_HVM_MAGIC)) {
			backend_seterr(&s->b, "sim: HVM_CONTEXT does not start "
			    "with an HVM save header (magic %#x)",
			    SIM_HVM_MAGIC);
			return (-1);
		}
		first = 0;
		if (code == SIM_HVM_CODE_END)
			return (cpus);
		if (code == SIM_HVM_CODE_CPU) {
			uint16_t inst = xp_get16(0, body + off - 6);

			if (inst >= SIM_MAX_VCPUS || ++cpus > (int)SIM_MAX_VCPUS) {
				backend_seterr(&s->b, "sim: HVM_CONTEXT: CPU "
				    "descriptor for vcpu %u: this backend hosts "
				    "at most %u vcpus", inst, SIM_MAX_VCPUS);
				return (-1);
			}
		}
		off += dlen;
	}
}

/* ---- ops: open and describe ------------------------------------------- */

static int
sim_open_fail(struct sim *s, int rc)
{
	backend_seterr(NULL, "%s", s->b.errmsg);
	sim_free(s);
	return (rc);
}

static void
sim_set_running_locked(struct sim *s)
{
	if (s->state != SIM_RUNNING) {
		s->state = SIM_RUNNING;
		s->run_since = sim_now_ns();
		pthread_cond_broadcast(&s->wake);
	}
}

/*
 * state=PATH: the run state as one line, "running", "paused" or
 * "destroyed", rewritten at every transition; at close, unless destroyed,
 * "gone STATE" with the state the domain had then (a sim domain lives in
 * its process: when the handle is closed, the process is usually about to
 * exit, and the domain ends with it).  Written to a temporary file beside
 * PATH and renamed over it, so a reader sees one whole line, old or new.
 * Returns 0 or a negative errno with the message set.
 */
static int
sim_state_write(struct sim *s, const char *line)
{
	char	 tmp[SIM_PATH_MAX + 8];
	size_t	 len = strlen(line), off = 0;
	ssize_t	 n;
	int	 fd, err;

	if (s->spec.state[0] == '\0')
		return (0);
	(void)snprintf(tmp, sizeof tmp, "%s.XXXXXX", s->spec.state);
	if ((fd = mkstemp(tmp)) == -1) {
		err = errno;
		backend_seterr(&s->b, "sim: state=%s: cannot create %s: %s",
		    s->spec.state, tmp, strerror(err));
		return (-err);
	}
	while (off < len) {
		n = write(fd, line + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	while ((n = write(fd, "\n", 1)) == -1 && errno == EINTR)
		;
	if (n != 1)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, s->spec.state) != 0)
		goto fail;
	return (0);
fail:
	err = errno != 0 ? errno : EIO;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	backend_seterr(&s->b, "sim: state=%s: %s", s->spec.state,
	    strerror(err));
	return (-err);
}

static int
sim_open_source(const char *spec, struct backend **out)
{
	struct sim_spec	 sp;
	struct sim	*s;
	int		 rc;

	*out = NULL;
	if ((rc = sim_spec_parse(spec, SIM_SOURCE, &sp)) != 0)
		return (rc);
	if ((rc = sim_alloc(&s, 0)) != 0)
		return (rc);
	s->spec = sp;
	s->type = WIRE_DOM_X86_HVM;
	s->nr_pages = sp.v[SIM_K_MEM] >> SIM_PAGE_SHIFT;
	s->nr_vcpus = (uint32_t)sp.v[SIM_K_VCPUS];
	s->hot_pages = sp.v[SIM_K_HOT] >> SIM_PAGE_SHIFT;
	if (sp.v[SIM_K_OUTPUTS] != 0) {
		/* The last page holds the output count: not in the hot set. */
		s->out_pfn = s->nr_pages - 1;
		if (s->hot_pages > s->out_pfn)
			s->hot_pages = s->out_pfn;
	}
	s->tsc_khz = 2000000 + (uint32_t)(sp.v[SIM_K_SEED] % 16) * 100000;
	if ((rc = sim_reserve(s, s->nr_pages)) != 0)
		return (sim_open_fail(s, rc));
	if ((rc = sim_fill(s)) != 0)
		return (sim_open_fail(s, rc));
#ifdef MADV_POPULATE_READ
	/*
	 * Zero pages were left untouched: map them now (to the kernel's
	 * shared zero page, no memory used) so that reading them during the
	 * migration does not fault, as a guest's resident memory would not.
	 * Best effort: a kernel before 5.14 faults them on first read.
	 */
	if (s->mem_len != 0 && ((enum sim_mix)sp.v[SIM_K_MIX] ==
	    SIM_MIX_ZERO || (enum sim_mix)sp.v[SIM_K_MIX] == SIM_MIX_REALISTIC))
		(void)madvise(s->mem, s->mem_len, MADV_POPULATE_READ);
#endif

	pthread_mutex_lock(&s->lock);
	sim_set_running_locked(s);
	pthread_mutex_unlock(&s->lock);
	if ((rc = sim_start_writers(s)) != 0 ||
	    (rc = sim_state_write(s, "running")) != 0)
		return (sim_open_fail(s, rc));
	if (sp.v[SIM_K_OUTPUTS] != 0) {
		rc = pthread_create(&s->outputter, NULL, sim_output_main, s);
		if (rc != 0) {
			backend_seterr(&s->b, "sim: cannot start the output "
			    "thread: %s", strerror(rc));
			return (sim_open_fail(s, -rc));
		}
		s->outputting = 1;
	}
	*out = &s->b;
	return (0);
}

static int
sim_open_target(const char *spec, const struct domain_info *info,
    struct backend **out)
{
	struct sim_spec	 sp;
	struct sim	*s;
	uint64_t	 cap;
	int		 rc;

	*out = NULL;
	if ((rc = sim_spec_parse(spec, SIM_TARGET, &sp)) != 0)
		return (rc);
	if (info == NULL) {
		backend_seterr(NULL, "sim: open_target without a domain "
		    "description");
		return (-EINVAL);
	}
	if (info->arch != WIRE_ARCH_X86) {
		backend_seterr(NULL, "sim: the incoming domain is not x86 "
		    "(arch %u); the sim backend simulates x86 HVM only",
		    info->arch);
		return (-EOPNOTSUPP);
	}
	if (info->type != WIRE_DOM_X86_HVM && info->type != WIRE_DOM_X86_PVH) {
		backend_seterr(NULL, "sim: the incoming domain is %s; the sim "
		    "backend simulates x86 HVM only", info->type ==
		    WIRE_DOM_X86_PV ? "x86 PV" : "of an unknown type");
		return (-EOPNOTSUPP);
	}
	if (info->page_shift != SIM_PAGE_SHIFT) {
		backend_seterr(NULL, "sim: the incoming domain has page_shift "
		    "%u; the sim backend uses %u", info->page_shift,
		    SIM_PAGE_SHIFT);
		return (-EOPNOTSUPP);
	}
	if (info->nr_vcpus > SIM_MAX_VCPUS) {
		backend_seterr(NULL, "sim: the incoming domain has %" PRIu32
		    " vcpus; the sim backend allows at most %u",
		    info->nr_vcpus, SIM_MAX_VCPUS);
		return (-EOPNOTSUPP);
	}
	if (info->nr_pages > (SIZE_MAX >> SIM_PAGE_SHIFT)) {
		backend_seterr(NULL, "sim: the incoming domain's %" PRIu64
		    " pages do not fit the address space", info->nr_pages);
		return (-ENOMEM);
	}

	if ((rc = sim_alloc(&s, 1)) != 0)
		return (rc);
	s->spec = sp;
	s->type = info->type;
	s->nr_vcpus = info->nr_vcpus;
	s->tsc_khz = 2000000;
	if (info->nr_pages != 0) {
		s->nr_pages = info->nr_pages;
		cap = info->nr_pages;
	} else {
		s->grow = 1;
		cap = sp.v[SIM_K_MAX] >> SIM_PAGE_SHIFT;
	}
	if ((sp.given & (1u << SIM_K_PREALLOC)) &&
	    (rc = sim_take_prealloc(s, info->nr_pages, &cap)) != 0) {
		sim_free(s);
		return (rc);
	}
	if ((rc = sim_reserve(s, cap)) != 0)
		return (sim_open_fail(s, rc));
	if (sp.v[SIM_K_PREFAULT]) {
		rc = pthread_create(&s->prefaulter, NULL, sim_prefault_main, s);
		if (rc != 0) {
			backend_seterr(&s->b, "sim: cannot start the prefault "
			    "thread: %s", strerror(rc));
			return (sim_open_fail(s, -rc));
		}
		s->prefaulting = 1;
	}
	if ((rc = sim_state_write(s, "paused")) != 0)
		return (sim_open_fail(s, rc));
	*out = &s->b;
	return (0);
}

static int
sim_describe(struct backend *b, struct domain_info *info)
{
	struct sim	*s = sim_handle(b);

	info->arch = WIRE_ARCH_X86;
	info->type = s->type;
	info->page_shift = SIM_PAGE_SHIFT;
	info->nr_pages = s->nr_pages;
	info->nr_vcpus = s->nr_vcpus;
	return (0);
}

static int
sim_gone(struct sim *s)
{
	if (s->state == SIM_DESTROYED) {
		backend_seterr(&s->b, "sim: the domain has been destroyed");
		return (1);
	}
	return (0);
}

static int
sim_target_only(struct sim *s, const char *what)
{
	if (!s->target) {
		backend_seterr(&s->b, "sim: %s is for a target domain; this "
		    "is a source", what);
		return (0);
	}
	return (1);
}

/* ---- ops: memory ------------------------------------------------------ */

static int
sim_is_present(const struct sim *s, uint64_t pfn)
{
	return ((s->present[pfn / 64] >> (pfn % 64)) & 1);
}

static int
sim_map(struct backend *b, const uint64_t *pfns, unsigned n, int writable,
    void **pages, void **cookie)
{
	struct sim	*s = sim_handle(b);
	unsigned	 i;

	*cookie = NULL;
	if (sim_gone(s))
		return (-ESRCH);
	if (writable && !s->target) {
		backend_seterr(b, "sim: a source domain is mapped read-only");
		return (-EPERM);
	}
	for (i = 0; i < n; i++) {
		if (pfns[i] >= s->nr_pages) {
			backend_seterr(b, "sim: pfn %#" PRIx64 " is beyond the "
			    "domain's %" PRIu64 " pages", pfns[i], s->nr_pages);
			return (-EINVAL);
		}
		if (s->target && !sim_is_present(s, pfns[i])) {
			backend_seterr(b, "sim: pfn %#" PRIx64 " is not "
			    "populated", pfns[i]);
			return (-EINVAL);
		}
		pages[i] = s->mem + (pfns[i] << SIM_PAGE_SHIFT);
	}
	return (0);
}

static void
sim_unmap(struct backend *b, void *cookie, unsigned n)
{
	/* Guest memory stays mapped for the domain's life. */
	(void)b;
	(void)cookie;
	(void)n;
}

static int
sim_room(struct sim *s, uint64_t pfn)
{
	if (pfn < s->cap_pages)
		return (0);
	if (s->grow)
		backend_seterr(&s->b, "sim: pfn %#" PRIx64 " lies beyond the "
		    "%" PRIu64 " MiB reserved for a domain of unannounced "
		    "size (raise max=)", pfn, s->cap_pages >> 8);
	else
		backend_seterr(&s->b, "sim: pfn %#" PRIx64 " is beyond the "
		    "announced %" PRIu64 " pages", pfn, s->cap_pages);
	return (-ENOSPC);
}

/* Mark pfn present, growing the domain if its size was not announced. */
static void
sim_make_present(struct sim *s, uint64_t pfn, uint64_t *top)
{
	s->present[pfn / 64] |= 1ULL << (pfn % 64);
	if (pfn >= *top)
		*top = pfn + 1;
}

static void
sim_grow(struct sim *s, uint64_t top)
{
	if (!s->grow || top <= s->nr_pages)
		return;
	pthread_mutex_lock(&s->lock);
	s->nr_pages = top;
	pthread_cond_broadcast(&s->grown);
	pthread_mutex_unlock(&s->lock);
}

static int
sim_populate(struct backend *b, const uint64_t *pfns, unsigned n)
{
	struct sim	*s = sim_handle(b);
	uint64_t	 top = 0;
	unsigned	 i;
	int		 rc;

	if (sim_gone(s))
		return (-ESRCH);
	if (!sim_target_only(s, "populate"))
		return (-EINVAL);
	for (i = 0; i < n; i++) {
		if ((rc = sim_room(s, pfns[i])) != 0)
			return (rc);
	}
	for (i = 0; i < n; i++)
		sim_make_present(s, pfns[i], &top);
	sim_grow(s, top);
	return (0);
}

static int
sim_zero_page(struct backend *b, uint64_t pfn)
{
	struct sim	*s = sim_handle(b);
	uint64_t	 top = 0;
	int		 rc;

	if (sim_gone(s))
		return (-ESRCH);
	if (!sim_target_only(s, "zero_page"))
		return (-EINVAL);
	if ((rc = sim_room(s, pfn)) != 0)
		return (rc);
	if (sim_is_present(s, pfn))
		memset(s->mem + (pfn << SIM_PAGE_SHIFT), 0, SIM_PAGE_SIZE);
	else {
		/* Never written since the mapping was made: already zero. */
		sim_make_present(s, pfn, &top);
		sim_grow(s, top);
	}
	return (0);
}

/* ---- ops: dirty tracking ---------------------------------------------- */

static int
sim_set_tracking(struct sim *s, int on)
{
	size_t	i;

	pthread_mutex_lock(&s->lock);
	/* Hold the writers so that no burst straddles the switch. */
	s->hold++;
	sim_quiesce_locked(s);
	if (on) {
		for (i = 0; i < s->words; i++)
			atomic_store_explicit(&s->dirty[i], 0,
			    memory_order_relaxed);
	}
	s->tracking = on;
	s->hold--;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return (0);
}

static int
sim_enable_dirty(struct backend *b)
{
	struct sim	*s = sim_handle(b);

	if (sim_gone(s))
		return (-ESRCH);
	if (s->target && !s->complete) {
		backend_seterr(b, "sim: dirty tracking needs a restored "
		    "domain; this one is still being received");
		return (-EINVAL);
	}
	return (sim_set_tracking(s, 1));
}

static int64_t
sim_read_dirty(struct backend *b, uint64_t *bitmap)
{
	struct sim	*s = sim_handle(b);
	uint64_t	 v;
	int64_t		 count = 0;
	size_t		 i, words;

	if (sim_gone(s))
		return (-ESRCH);
	if (!s->tracking) {
		backend_seterr(b, "sim: read_dirty without enable_dirty");
		return (-EINVAL);
	}
	words = (size_t)((s->nr_pages + 63) / 64);
	for (i = 0; i < words; i++) {
		if (atomic_load_explicit(&s->dirty[i],
		    memory_order_relaxed) == 0)
			continue;
		v = atomic_exchange_explicit(&s->dirty[i], 0,
		    memory_order_acquire);
		bitmap[i] |= v;
		count += __builtin_popcountll(v);
	}
	return (count);
}

static int
sim_disable_dirty(struct backend *b)
{
	struct sim	*s = sim_handle(b);

	if (sim_gone(s))
		return (-ESRCH);
	return (sim_set_tracking(s, 0));
}

/* ---- ops: run control ------------------------------------------------- */

static int
sim_pause(struct backend *b)
{
	struct sim	*s = sim_handle(b);
	int		 was_running;

	if (sim_gone(s))
		return (-ESRCH);
	pthread_mutex_lock(&s->lock);
	was_running = s->state == SIM_RUNNING;
	if (was_running) {
		s->state = SIM_PAUSED;
		s->run_ns += sim_now_ns() - s->run_since;
	}
	/* Every burst that started before is finished when we return. */
	sim_quiesce_locked(s);
	pthread_mutex_unlock(&s->lock);
	return (was_running ? sim_state_write(s, "paused") : 0);
}

static int
sim_resume(struct backend *b)
{
	struct sim	*s = sim_handle(b);
	uint64_t	 hot;
	int		 was_running, rc = 0;

	if (sim_gone(s))
		return (-ESRCH);
	if (s->target && !s->complete) {
		backend_seterr(b, "sim: cannot resume a domain whose stream "
		    "has not completed");
		return (-EINVAL);
	}
	if (s->target && s->nwriters == 0 && s->spec.v[SIM_K_DIRTY] != 0) {
		/* The workload of a restored domain starts on first run. */
		hot = s->spec.v[SIM_K_HOT] >> SIM_PAGE_SHIFT;
		s->hot_pages = hot < s->nr_pages ? hot : s->nr_pages;
	}
	pthread_mutex_lock(&s->lock);
	was_running = s->state == SIM_RUNNING;
	sim_set_running_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (s->target)
		rc = sim_start_writers(s);
	if (rc == 0 && !was_running)
		rc = sim_state_write(s, "running");
	return (rc);
}

/* ---- ops: state ------------------------------------------------------- */

static int
sim_static_state(struct backend *b, struct state_list *out)
{
	struct sim	*s = sim_handle(b);
	int		 rc;

	if (sim_gone(s))
		return (-ESRCH);
	if (s->target) {
		if ((rc = sim_emit_loaded(s, out, REC_X86_CPUID_POLICY)) != 0)
			return (rc);
		return (sim_emit_loaded(s, out, REC_X86_MSR_POLICY));
	}
	if ((rc = sim_cpuid_policy(s, out)) != 0)
		return (rc);
	return (sim_msr_policy(s, out));
}

static int
sim_save_state(struct backend *b, struct state_list *out)
{
	struct sim	*s = sim_handle(b);
	int		 rc;

	if (sim_gone(s))
		return (-ESRCH);
	if (s->state == SIM_RUNNING) {
		backend_seterr(b, "sim: save_state needs a paused domain");
		return (-EBUSY);
	}
	if (s->target) {
		if (!s->complete) {
			backend_seterr(b, "sim: save_state on a domain that is "
			    "still being received");
			return (-EINVAL);
		}
		if ((rc = sim_emit_loaded(s, out, REC_X86_TSC_INFO)) != 0 ||
		    (rc = sim_emit_loaded(s, out, REC_HVM_CONTEXT)) != 0)
			return (rc);
		return (sim_emit_loaded(s, out, REC_HVM_PARAMS));
	}
	if ((rc = sim_tsc_info(s, out)) != 0 ||
	    (rc = sim_hvm_context(s, out)) != 0)
		return (rc);
	return (sim_hvm_params(s, out));
}

static int
sim_load_check(struct sim *s, uint32_t type, const uint8_t *body,
    uint32_t len, int *cpus)
{
	uint32_t	count;

	switch (type) {
	case REC_X86_TSC_INFO:
		if (len != WIRE_TSC_INFO_SIZE)
			break;
		return (0);
	case REC_HVM_CONTEXT:
		if (len == 0)
			break;
		if ((*cpus = sim_hvm_check(s, body, len)) < 0)
			return (-EINVAL);
		return (0);
	case REC_HVM_PARAMS:
		if (len == 0)
			return (0);	/* Xen 4.6-4.8 erratum: no params */
		if (len < 8)
			break;
		count = xp_get32(0, body);
		if ((uint64_t)len != 8 + 16 * (uint64_t)count)
			break;
		return (0);
	case REC_X86_CPUID_POLICY:
		if (len % WIRE_CPUID_LEAF_SIZE != 0)
			break;
		return (0);
	case REC_X86_MSR_POLICY:
		if (len % WIRE_MSR_ENTRY_SIZE != 0)
			break;
		return (0);
	default:
		backend_seterr(&s->b, "sim: record type %#" PRIx32 " (%s) does "
		    "not apply to a sim x86 HVM domain", type,
		    record_type_name(type));
		return (-EOPNOTSUPP);
	}
	backend_seterr(&s->b, "sim: %s record of %" PRIu32 " octets is "
	    "malformed", record_type_name(type), len);
	return (-EINVAL);
}

static int
sim_load_state(struct backend *b, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	struct sim		*s = sim_handle(b);
	struct state_rec	*r;
	static const uint8_t	 no_params[8];
	uint8_t			*copy;
	int			 rc, cpus = -1;

	if (sim_gone(s))
		return (-ESRCH);
	if (!sim_target_only(s, "load_state"))
		return (-EINVAL);
	if (len != 0 && body == NULL) {
		backend_seterr(b, "sim: load_state with a NULL body");
		return (-EINVAL);
	}
	if ((rc = sim_load_check(s, type, body, len, &cpus)) != 0)
		return (rc);
	if (type == REC_HVM_PARAMS && len == 0) {
		body = no_params;
		len = sizeof no_params;
	}

	if ((r = sim_loaded(s, type)) != NULL) {
		/* A later record of the same type replaces the earlier. */
		if ((copy = malloc(len != 0 ? len : 1)) == NULL) {
			backend_seterr(b, "sim: out of memory for a %s record",
			    record_type_name(type));
			return (-ENOMEM);
		}
		if (len != 0)
			memcpy(copy, body, len);
		free(r->body);
		r->body = copy;
		r->len = len;
	} else if ((rc = sim_add(s, &s->loaded, type, body, len)) != 0)
		return (rc);

	if (type == REC_HVM_CONTEXT && s->nr_vcpus == 0 && cpus > 0)
		s->nr_vcpus = (uint32_t)cpus;
	if (type == REC_X86_TSC_INFO && xp_get32(0, body + 4) != 0)
		s->tsc_khz = xp_get32(0, body + 4);
	return (0);
}

static int
sim_complete(struct backend *b)
{
	struct sim	*s = sim_handle(b);
	static const uint32_t need[] = {
		REC_HVM_CONTEXT, REC_HVM_PARAMS, REC_X86_TSC_INFO
	};
	size_t		i;

	if (sim_gone(s))
		return (-ESRCH);
	if (!sim_target_only(s, "complete"))
		return (-EINVAL);
	for (i = 0; i < sizeof need / sizeof *need; i++) {
		if (sim_loaded(s, need[i]) == NULL) {
			backend_seterr(b, "sim: stream ended without %s",
			    record_type_name(need[i]));
			return (-EPROTO);
		}
	}
	if (s->nr_vcpus == 0)
		s->nr_vcpus = 1;
	s->complete = 1;
	return (0);
}

/* ---- ops: end of life ------------------------------------------------- */

static int
sim_destroy(struct backend *b)
{
	struct sim	*s = sim_handle(b);

	if (s->state == SIM_DESTROYED)
		return (0);
	sim_stop_threads(s);
	if (s->mem != NULL)
		munmap(s->mem, s->mem_len);
	s->mem = NULL;
	s->mem_len = 0;
	pthread_mutex_lock(&s->lock);
	if (s->state == SIM_RUNNING)
		s->run_ns += sim_now_ns() - s->run_since;
	s->state = SIM_DESTROYED;
	pthread_mutex_unlock(&s->lock);
	return (sim_state_write(s, "destroyed"));
}

static void
sim_free(struct sim *s)
{
	sim_stop_threads(s);
	if (s->mem != NULL)
		munmap(s->mem, s->mem_len);
	free(s->dirty);
	free(s->present);
	state_list_free(&s->loaded);
	pthread_cond_destroy(&s->grown);
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void
sim_close(struct backend *b)
{
	struct sim	*s;

	if (b == NULL)
		return;
	s = sim_handle(b);
	/* The rule of sim_state_write: the state at close, after "gone".
	 * Close has no way to report a failure; the file keeps its last
	 * line then. */
	if (s->state != SIM_DESTROYED)
		(void)sim_state_write(s, s->state == SIM_RUNNING ?
		    "gone running" : "gone paused");
	sim_free(s);
}

static void
sim_stats(struct backend *b, struct backend_stats *st)
{
	struct sim	*s = sim_handle(b);

	st->pages_written = atomic_load_explicit(&s->pages_written,
	    memory_order_relaxed);
	st->dirty_rate = s->spec.v[SIM_K_DIRTY];
}

const char *
sim_run_state(struct backend *b)
{
	struct sim	*s;
	const char	*what;

	if (b == NULL || b->ops != &sim_ops)
		return (NULL);
	s = sim_handle(b);
	pthread_mutex_lock(&s->lock);
	switch (s->state) {
	case SIM_RUNNING:
		what = "running";
		break;
	case SIM_DESTROYED:
		what = "destroyed";
		break;
	default:
		what = "paused";
		break;
	}
	pthread_mutex_unlock(&s->lock);
	return (what);
}

static int
sim_throttle(struct backend *b, unsigned pct)
{
	struct sim	*s = sim_handle(b);

	if (pct > 99) {
		backend_seterr(b, "sim: throttle %u%%: at most 99", pct);
		return (-EINVAL);
	}
	atomic_store_explicit(&s->throttle, pct, memory_order_relaxed);
	return (0);
}

int
sim_start_workload(struct backend *b, uint64_t dirty)
{
	struct sim	*s;
	uint64_t	 hot;
	int		 running;

	if (b == NULL || b->ops != &sim_ops)
		return (-EINVAL);
	s = sim_handle(b);
	if (sim_gone(s))
		return (-ESRCH);
	if (!s->target || !s->complete) {
		backend_seterr(b, "sim: a workload starts late only on a "
		    "restored target");
		return (-EINVAL);
	}
	if (s->nwriters != 0 || s->spec.v[SIM_K_DIRTY] != 0) {
		backend_seterr(b, "sim: the domain already has a workload");
		return (-EBUSY);
	}
	if (dirty == 0)
		return (0);
	s->spec.v[SIM_K_DIRTY] = dirty;
	hot = s->spec.v[SIM_K_HOT] >> SIM_PAGE_SHIFT;
	s->hot_pages = hot < s->nr_pages ? hot : s->nr_pages;
	pthread_mutex_lock(&s->lock);
	running = s->state == SIM_RUNNING;
	pthread_mutex_unlock(&s->lock);
	return (running ? sim_start_writers(s) : 0);
}

/* ---- ops: output commit ---------------------------------------------- */

static int64_t
sim_output_count(struct backend *b)
{
	struct sim	*s = sim_handle(b);
	uint64_t	 pfn, v[2];

	if (sim_gone(s))
		return (-ESRCH);
	if (!s->target) {
		pthread_mutex_lock(&s->lock);
		v[1] = s->out_produced;
		pthread_mutex_unlock(&s->lock);
		return ((int64_t)v[1]);
	}
	/* A target: what its memory says, if the page is there. */
	if (s->nr_pages == 0)
		goto none;
	pfn = s->nr_pages - 1;
	if (!sim_is_present(s, pfn))
		goto none;
	memcpy(v, s->mem + (pfn << SIM_PAGE_SHIFT), sizeof v);
	if (v[0] != SIM_OUT_MAGIC)
		goto none;
	return ((int64_t)v[1]);
none:
	backend_seterr(b, "sim: the domain's memory holds no output count");
	return (-ENOENT);
}

static int
sim_output_hold(struct backend *b, int on)
{
	struct sim	*s = sim_handle(b);

	if (sim_gone(s))
		return (-ESRCH);
	pthread_mutex_lock(&s->lock);
	s->out_hold = on != 0;
	if (!on)
		s->out_released = s->out_produced;
	pthread_mutex_unlock(&s->lock);
	return (0);
}

static int64_t
sim_output_release(struct backend *b, uint64_t upto)
{
	struct sim	*s = sim_handle(b);
	uint64_t	 r;

	if (sim_gone(s))
		return (-ESRCH);
	pthread_mutex_lock(&s->lock);
	if (upto > s->out_produced)
		upto = s->out_produced;
	if (upto > s->out_released)
		s->out_released = upto;
	r = s->out_released;
	pthread_mutex_unlock(&s->lock);
	return ((int64_t)r);
}

const struct backend_ops sim_ops = {
	.name = "sim",
	.open_source = sim_open_source,
	.open_target = sim_open_target,
	.prepare = sim_prepare,
	.describe = sim_describe,
	.map = sim_map,
	.unmap = sim_unmap,
	.enable_dirty = sim_enable_dirty,
	.read_dirty = sim_read_dirty,
	.disable_dirty = sim_disable_dirty,
	.pause = sim_pause,
	.resume = sim_resume,
	.static_state = sim_static_state,
	.save_state = sim_save_state,
	.populate = sim_populate,
	.zero_page = sim_zero_page,
	.load_state = sim_load_state,
	.complete = sim_complete,
	.destroy = sim_destroy,
	.close = sim_close,
	.stats = sim_stats,
	.throttle = sim_throttle,
	.output_count = sim_output_count,
	.output_hold = sim_output_hold,
	.output_release = sim_output_release,
	/* map/populate touch the page array and bitmaps, one caller at a time. */
	.caps = BACKEND_CAP_WORKERS,
};
