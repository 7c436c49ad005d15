/*
 * test-sim.c -- the backend registry and the simulated domain: spec
 * parsing, content, dirty tracking, pause, pacing, state records and the
 * target side.
 */
#include "config.h"

#include <sys/mman.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "proto.h"
#include "wire.h"
#include "tap.h"

#define PAGE	4096u

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static void
sleep_ms(unsigned ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * The workload threads are scheduled by a machine that may be busy with
 * other work (make -j4 check on two cores): tests wait for a number of
 * writes, not for a span of time.  WAIT_MS bounds each such wait; it is
 * far beyond anything a working sim needs and only ends a broken one.
 */
#define WAIT_MS		20000u

/* Until b's workload has written more than `above' pages in all; returns
 * the count then, or what it was at the deadline. */
static uint64_t
wait_written(struct backend *b, uint64_t above)
{
	struct backend_stats	st;
	uint64_t		t0 = now_ns();

	for (;;) {
		b->ops->stats(b, &st);
		if (st.pages_written > above ||
		    now_ns() - t0 > WAIT_MS * 1000000ULL)
			return (st.pages_written);
		sleep_ms(2);
	}
}

static struct backend *
open_src(const char *spec)
{
	struct backend	*b = NULL;
	int		 rc;

	rc = sim_ops.open_source(spec, &b);
	CHECK(rc == 0 && b != NULL, "open_source(%s): %d %s", spec, rc,
	    backend_errmsg(NULL));
	return (rc == 0 ? b : NULL);
}

static uint8_t *
page_of(struct backend *b, uint64_t pfn)
{
	void	*page = NULL, *cookie;

	if (b->ops->map(b, &pfn, 1, 0, &page, &cookie) != 0)
		return (NULL);
	b->ops->unmap(b, cookie, 1);
	return (page);
}

static int
is_zero(const uint8_t *p)
{
	const uint64_t	*w = (const uint64_t *)p;
	unsigned	 i;

	for (i = 0; i < PAGE / 8; i++) {
		if (w[i] != 0)
			return (0);
	}
	return (1);
}

static int
is_text(const uint8_t *p)
{
	unsigned	i;

	for (i = 0; i < PAGE; i++) {
		if (p[i] != '\n' && (p[i] < 0x20 || p[i] > 0x7e))
			return (0);
	}
	return (1);
}

static uint64_t
checksum(struct backend *b, uint64_t npages)
{
	uint64_t	 h = 1469598103934665603ULL, pfn, i;
	const uint64_t	*w;

	for (pfn = 0; pfn < npages; pfn++) {
		w = (const uint64_t *)page_of(b, pfn);
		for (i = 0; i < PAGE / 8; i++)
			h = (h ^ w[i]) * 1099511628211ULL;
	}
	return (h);
}

static int
bit(const uint64_t *bm, uint64_t pfn)
{
	return ((bm[pfn / 64] >> (pfn % 64)) & 1);
}

/* ---- registry and helpers ------------------------------------------- */

static void
test_registry(void)
{
	const struct backend_ops	*ops;
	const char			*spec = NULL;
	struct state_list		 l = { 0 };
	struct backend			*b = (struct backend *)1;
	int				 rc;

	CHECK(backend_find("sim") == &sim_ops, "find sim");
	CHECK(backend_find("simx") == NULL, "find simx");
	CHECK(backend_find("") == NULL, "find empty");
	ops = backend_lookup("sim:mem=1G,vcpus=4", &spec);
	CHECK(ops == &sim_ops && strcmp(spec, "mem=1G,vcpus=4") == 0,
	    "lookup sim:...");
	ops = backend_lookup("sim", &spec);
	CHECK(ops == &sim_ops && strcmp(spec, "") == 0, "lookup sim");
	CHECK(backend_lookup("si:x", &spec) == NULL, "lookup si:");
	CHECK(backend_lookup("bogus:1", NULL) == NULL, "lookup bogus");
	CHECK(!backend_known_but_missing("bogus:1"), "bogus not known");
	CHECK(!backend_known_but_missing("sim:mem=1M"), "sim is built");
#ifdef HAVE_XEN
	CHECK(backend_lookup("xen:7", &spec) == &xen_ops &&
	    strcmp(spec, "7") == 0, "lookup xen");
	CHECK(!backend_known_but_missing("xen:7"), "xen is built");
	/* Outside dom0 (or with a bad spec) opening fails with a reason. */
	rc = xen_ops.open_source("7", &b);
	CHECK(rc < 0 && b == NULL, "xen open_source: %d", rc);
	CHECK(rc == -EOPNOTSUPP && strstr(backend_errmsg(NULL),
	    "give xen:NAME or xen:DOMID") != NULL, "xen msg: %s", backend_errmsg(NULL));
	rc = xen_ops.open_source("domid=7,toolstack=1", &b);
	CHECK(rc < 0 && b == NULL && strncmp(backend_errmsg(NULL), "xen: ", 5)
	    == 0, "xen toolstack open outside dom0: %d %s", rc,
	    backend_errmsg(NULL));
	b = (struct backend *)1;
	rc = xen_ops.open_target("", NULL, &b);
	CHECK(rc == -EINVAL && b == NULL, "xen open_target: %d", rc);
	CHECK(strstr(backend_errmsg(NULL), "names no domain") != NULL,
	    "xen target msg: %s", backend_errmsg(NULL));
	rc = xen_ops.open_source("domid=7,store_port=3", &b);
	CHECK(rc == -EINVAL && strstr(backend_errmsg(NULL), "store_port"),
	    "xen source refuses target keys: %s", backend_errmsg(NULL));
	rc = xen_ops.open_target("domid=70000", NULL, &b);
	CHECK(rc == -EINVAL && strstr(backend_errmsg(NULL), "bad value"),
	    "xen domid range: %s", backend_errmsg(NULL));
#else
	CHECK(backend_lookup("xen:7", &spec) == NULL, "lookup xen");
	CHECK(backend_known_but_missing("xen:7"), "xen known, missing");
	CHECK(backend_known_but_missing("xen"), "xen known, missing");
	(void)rc;
	(void)b;
#endif

	CHECK(state_list_add(&l, REC_X86_TSC_INFO, "abc", 3) == 0, "add");
	CHECK(state_list_add(&l, REC_END, NULL, 0) == 0, "add empty");
	for (rc = 0; rc < 20; rc++)
		state_list_add(&l, REC_HVM_PARAMS, &rc, sizeof rc);
	CHECK(l.n == 22 && l.recs[0].len == 3 &&
	    memcmp(l.recs[0].body, "abc", 3) == 0 && l.recs[1].len == 0 &&
	    l.recs[21].len == sizeof rc, "state list contents");
	state_list_free(&l);
	CHECK(l.n == 0 && l.recs == NULL, "state list freed");
}

/* ---- spec parsing ------------------------------------------------------ */

static void
test_spec(void)
{
	static const char *bad[] = {
		"mem=0", "mem=1000", "mem=12Q", "mem=1GG", "mem=", "mem",
		"vcpus=0", "vcpus=129", "hot=512M", "mem=1M,hot=2M",
		"hot=100", "foo=1", "mix=weird", "seed=abc", "seed=0x",
		"mem=1G,mem=2M", "max=1G", "prefault=1", ",", "mem=1M,",
		"mem=99999999999999999999", "mem=16777216T", "dirty=-1",
		"=5", "vcpus=4,dirty=1M,hot=0",
	};
	struct domain_info	 info;
	struct backend_stats	 st;
	struct backend		*b;
	size_t			 i;
	int			 rc;

	b = open_src("");
	if (b != NULL) {
		sim_ops.describe(b, &info);
		CHECK(info.arch == WIRE_ARCH_X86 &&
		    info.type == WIRE_DOM_X86_HVM && info.page_shift == 12 &&
		    info.nr_pages == (256u << 20) / PAGE && info.nr_vcpus == 2,
		    "defaults: %" PRIu64 " pages, %u vcpus", info.nr_pages,
		    info.nr_vcpus);
		sim_ops.stats(b, &st);
		CHECK(st.dirty_rate == 0 && st.pages_written == 0,
		    "no workload");
		CHECK(strcmp(sim_run_state(b), "running") == 0,
		    "a source starts running");
		sim_ops.close(b);
	}

	b = open_src("mem=1M,vcpus=4,dirty=64K,hot=512K,seed=0x10,mix=zero");
	if (b != NULL) {
		sim_ops.describe(b, &info);
		CHECK(info.nr_pages == 256 && info.nr_vcpus == 4, "full spec");
		sim_ops.stats(b, &st);
		CHECK(st.dirty_rate == 65536, "dirty rate %" PRIu64,
		    st.dirty_rate);
		sim_ops.close(b);
	}
	b = open_src("mem=4k,vcpus=128");
	if (b != NULL) {
		sim_ops.describe(b, &info);
		CHECK(info.nr_pages == 1 && info.nr_vcpus == 128, "tiny");
		sim_ops.close(b);
	}

	for (i = 0; i < sizeof bad / sizeof *bad; i++) {
		b = (struct backend *)1;
		backend_seterr(NULL, "%s", "");
		rc = sim_ops.open_source(bad[i], &b);
		CHECK(rc == -EINVAL && b == NULL, "bad spec '%s': %d", bad[i],
		    rc);
		CHECK(strncmp(backend_errmsg(NULL), "sim: ", 5) == 0 &&
		    strlen(backend_errmsg(NULL)) > 10,
		    "message for '%s': '%s'", bad[i], backend_errmsg(NULL));
		if (rc == 0 && b != NULL)
			sim_ops.close(b);
	}
}

/* ---- content ------------------------------------------------------------ */

static void
test_content(void)
{
	struct backend	*b, *c;
	uint64_t	 pfn, n, zero = 0, text = 0, differ = 0;
	uint8_t		*p, *q;

	b = open_src("mem=64M,seed=7");
	if (b == NULL)
		return;
	n = (64u << 20) / PAGE;
	for (pfn = 0; pfn < n; pfn++) {
		p = page_of(b, pfn);
		if (is_zero(p))
			zero++;
		else if (is_text(p))
			text++;
	}
	CHECK(zero * 100 >= n * 20 && zero * 100 <= n * 30,
	    "zero pages %" PRIu64 " of %" PRIu64, zero, n);
	CHECK(text * 100 >= n * 20 && text * 100 <= n * 30,
	    "text pages %" PRIu64 " of %" PRIu64, text, n);
	printf("# realistic mix over 64 MiB: %.1f%% zero, %.1f%% text, "
	    "%.1f%% random\n", 100.0 * zero / n, 100.0 * text / n,
	    100.0 * (n - zero - text) / n);

	/* Same seed, same content; another seed, other content. */
	c = open_src("mem=64M,seed=7");
	if (c != NULL) {
		CHECK(memcmp(page_of(b, 0), page_of(c, 0), (64u << 20)) == 0,
		    "seed 7 twice");
		sim_ops.close(c);
	}
	c = open_src("mem=64M,seed=8");
	if (c != NULL) {
		for (pfn = 0; pfn < n; pfn++) {
			p = page_of(b, pfn);
			q = page_of(c, pfn);
			if (memcmp(p, q, PAGE) != 0)
				differ++;
		}
		CHECK(differ * 100 > n * 60, "seed 8 differs in %" PRIu64
		    " pages", differ);
		sim_ops.close(c);
	}
	sim_ops.close(b);

	b = open_src("mem=4M,mix=zero");
	if (b != NULL) {
		for (pfn = 0, zero = 0; pfn < 1024; pfn++)
			zero += is_zero(page_of(b, pfn));
		CHECK(zero == 1024, "mix=zero: %" PRIu64, zero);
		sim_ops.close(b);
	}
	b = open_src("mem=4M,mix=random");
	if (b != NULL) {
		for (pfn = 0, zero = 0, text = 0; pfn < 1024; pfn++) {
			zero += is_zero(page_of(b, pfn));
			text += is_text(page_of(b, pfn));
		}
		CHECK(zero == 0 && text == 0, "mix=random: %" PRIu64 " zero",
		    zero);
		sim_ops.close(b);
	}
}

/* ---- dirty tracking --------------------------------------------------- */

static void
test_dirty(void)
{
	const uint64_t	 hot = (16u << 20) / PAGE;
	const uint64_t	 words = (64u << 20) / PAGE / 64;
	struct backend_stats	 st;
	struct backend	*b;
	uint64_t	*bm, *reported, pfn;
	uint64_t	 changed = 0, missed = 0, outside = 0;
	uint64_t	 t0, pop = 0, i;
	uint8_t		*snap;
	int64_t		 n, sum = 0;
	int		 reads = 0;

	b = open_src("mem=64M,vcpus=4,dirty=512M,hot=16M,seed=3");
	bm = calloc(words, 8);
	reported = calloc(words, 8);
	snap = malloc((size_t)hot * PAGE);
	if (b == NULL || bm == NULL || reported == NULL || snap == NULL)
		goto out;

	CHECK(sim_ops.read_dirty(b, bm) == -EINVAL, "read_dirty before enable");
	/* Writes before enable_dirty are not tracked. */
	sleep_ms(20);
	sim_ops.pause(b);
	CHECK(sim_ops.enable_dirty(b) == 0, "enable_dirty");
	n = sim_ops.read_dirty(b, bm);
	CHECK(n == 0, "paused, tracking just enabled: %" PRId64 " dirty", n);
	sim_ops.resume(b);

	wait_written(b, 0);
	sim_ops.read_dirty(b, bm);
	/* The sender's copy, taken while the guest writes. */
	memcpy(snap, page_of(b, 0), (size_t)hot * PAGE);
	sim_ops.stats(b, &st);
	/* At least 200 ms of reads, and until the workload has written five
	 * times the hot set (so "changed > 1000" below does not depend on
	 * how much CPU the writers got meanwhile). */
	t0 = now_ns();
	while ((now_ns() - t0 < 200000000ULL ||
	    wait_written(b, 0) < st.pages_written + 5 * hot) &&
	    now_ns() - t0 < WAIT_MS * 1000000ULL) {
		sleep_ms(7);
		n = sim_ops.read_dirty(b, reported);
		CHECK(n >= 0, "read_dirty %" PRId64, n);
		sum += n;
		reads++;
	}
	CHECK(sim_ops.pause(b) == 0, "pause");
	n = sim_ops.read_dirty(b, reported);
	sum += n;
	CHECK(sim_ops.read_dirty(b, bm) == 0, "paused: nothing more");

	for (pfn = 0; pfn < hot; pfn++) {
		if (memcmp(snap + pfn * PAGE, page_of(b, pfn), PAGE) == 0)
			continue;
		changed++;
		if (!bit(reported, pfn))
			missed++;
	}
	for (i = 0; i < words; i++)
		pop += (uint64_t)__builtin_popcountll(reported[i]);
	for (pfn = hot; pfn < words * 64; pfn++)
		outside += bit(reported, pfn);
	CHECK(changed > 1000, "workload changed %" PRIu64 " pages", changed);
	CHECK(missed == 0, "%" PRIu64 " of %" PRIu64 " changed pages never "
	    "reported dirty", missed, changed);
	CHECK(outside == 0, "%" PRIu64 " dirty pages outside the hot set",
	    outside);
	CHECK((uint64_t)sum >= pop && pop >= changed, "counts: sum %" PRId64
	    ", bits %" PRIu64 ", changed %" PRIu64, sum, pop, changed);
	printf("# dirty: %d reads, %" PRIu64 " pages changed, all reported\n",
	    reads + 1, changed);

	CHECK(sim_ops.disable_dirty(b) == 0, "disable_dirty");
	CHECK(sim_ops.read_dirty(b, bm) == -EINVAL, "read_dirty after disable");
out:
	free(snap);
	free(reported);
	free(bm);
	if (b != NULL)
		sim_ops.close(b);
}

/* ---- pause, resume, rate --------------------------------------------- */

static void
test_pause(void)
{
	const uint64_t		 hot = (8u << 20) / PAGE;
	struct backend_stats	 st1, st2;
	struct backend		*b;
	uint64_t		 c1, c2;
	uint8_t			*snap = NULL;
	int			 i, late = 0;

	b = open_src("mem=32M,vcpus=3,dirty=256M,hot=8M");
	if (b == NULL)
		return;
	wait_written(b, 0);
	CHECK(sim_ops.pause(b) == 0 && sim_ops.pause(b) == 0, "pause twice");
	CHECK(strcmp(sim_run_state(b), "paused") == 0, "paused");
	sim_ops.stats(b, &st1);
	c1 = checksum(b, hot);
	sleep_ms(100);
	c2 = checksum(b, hot);
	sim_ops.stats(b, &st2);
	CHECK(c1 == c2, "memory changed while paused");
	CHECK(st1.pages_written == st2.pages_written && st1.pages_written > 0,
	    "pages_written %" PRIu64 " -> %" PRIu64, st1.pages_written,
	    st2.pages_written);

	CHECK(sim_ops.resume(b) == 0 && sim_ops.resume(b) == 0, "resume twice");
	CHECK(strcmp(sim_run_state(b), "running") == 0, "running");
	wait_written(b, st1.pages_written);
	sim_ops.pause(b);
	sim_ops.stats(b, &st2);
	CHECK(st2.pages_written > st1.pages_written, "writes resumed");
	CHECK(checksum(b, hot) != c1, "memory changed after resume");
	sim_ops.close(b);

	/* Many quick pauses: no burst may still be writing afterwards. */
	b = open_src("mem=8M,vcpus=4,dirty=64G,hot=8M");
	snap = malloc(8u << 20);
	if (b == NULL || snap == NULL)
		goto out;
	for (i = 0; i < 40; i++) {
		sim_ops.resume(b);
		sleep_ms(2);
		sim_ops.pause(b);
		sim_ops.stats(b, &st1);
		memcpy(snap, page_of(b, 0), 8u << 20);
		sleep_ms(1);
		sim_ops.stats(b, &st2);
		if (memcmp(snap, page_of(b, 0), 8u << 20) != 0 ||
		    st1.pages_written != st2.pages_written)
			late++;
	}
	CHECK(late == 0, "memory changed after pause returned, %d of 40 times",
	    late);
out:
	free(snap);
	if (b != NULL)
		sim_ops.close(b);
}

static void
test_rate(void)
{
	struct backend_stats	 st1, st2;
	struct backend		*b;
	uint64_t		 t0, t1;
	double			 want, got;

	b = open_src("mem=64M,vcpus=2,dirty=64M");
	if (b == NULL)
		return;
	wait_written(b, 0);
	sim_ops.stats(b, &st1);
	t0 = now_ns();
	sleep_ms(1000);
	sim_ops.stats(b, &st2);
	t1 = now_ns();
	want = (64u << 20) / PAGE * ((double)(t1 - t0) / 1e9);
	got = (double)(st2.pages_written - st1.pages_written);
	/*
	 * The pacing's promise is an upper one: never faster than dirty=
	 * (beyond a catch-up of at most SIM_LAG_SEC, 50 ms, plus a burst
	 * per thread, about 8 % here).  Slower is what a busy machine does
	 * to sleeping threads (a backlog beyond 50 ms is dropped by
	 * design), so the lower bound only says the workload ran at all at
	 * a useful pace: half the rate, not 80 %, which a loaded two-core
	 * machine missed.
	 */
	CHECK(got >= want * 0.5 && got <= want * 1.2,
	    "rate: %.0f pages, wanted %.0f", got, want);
	printf("# rate: dirty=64M wrote %.0f pages in %.3f s, %+.1f%%\n",
	    got, (double)(t1 - t0) / 1e9, 100.0 * (got - want) / want);
	sim_ops.close(b);
}

/* ---- state records ------------------------------------------------------ */

static int
hvm_context_ok(const uint8_t *body, uint32_t len, uint32_t vcpus)
{
	uint32_t	off = 0, dlen, cpus = 0;
	uint16_t	code;
	int		first = 1;

	for (;;) {
		if (len - off < 8)
			return (0);
		code = xp_get16(0, body + off);
		dlen = xp_get32(0, body + off + 4);
		off += 8;
		if (dlen > len - off)
			return (0);
		if (first) {
			if (code != 1 || dlen != 24 ||
			    xp_get32(0, body + off) != 0x54381286u ||
			    xp_get32(0, body + off + 4) != 1)
				return (0);
			first = 0;
		} else if (code == 2) {
			if (dlen != 1032 || xp_get16(0, body + off - 6) != cpus)
				return (0);
			cpus++;
		} else if (code == 0)
			return (dlen == 0 && off == len && cpus == vcpus);
		else
			return (0);
		off += dlen;
	}
}

/* Records from index i on are the same. */
static int
same_list_from(const struct state_list *a, const struct state_list *b,
    size_t from)
{
	size_t	i;

	if (a->n != b->n)
		return (0);
	for (i = from; i < a->n; i++) {
		if (a->recs[i].type != b->recs[i].type ||
		    a->recs[i].len != b->recs[i].len ||
		    memcmp(a->recs[i].body, b->recs[i].body,
		    a->recs[i].len) != 0)
			return (0);
	}
	return (1);
}

static int
same_list(const struct state_list *a, const struct state_list *b)
{
	return (same_list_from(a, b, 0));
}

static void
test_save_state(void)
{
	struct state_list	 st = { 0 }, st2 = { 0 }, sl = { 0 };
	struct domain_info	 info;
	struct backend		*b;
	const struct state_rec	*r;
	uint32_t		 count, i;
	uint64_t		 v;
	int			 ok;

	b = open_src("mem=8M,vcpus=3,dirty=16M,seed=5");
	if (b == NULL)
		return;
	sim_ops.describe(b, &info);
	CHECK(sim_ops.save_state(b, &st) == -EBUSY && st.n == 0,
	    "save_state while running");
	CHECK(strstr(backend_errmsg(b), "paused") != NULL, "msg: %s",
	    backend_errmsg(b));

	CHECK(sim_ops.static_state(b, &sl) == 0 && sl.n == 2, "static_state");
	if (sl.n == 2) {
		CHECK(sl.recs[0].type == REC_X86_CPUID_POLICY &&
		    sl.recs[0].len > 0 &&
		    sl.recs[0].len % WIRE_CPUID_LEAF_SIZE == 0, "CPUID policy");
		CHECK(sl.recs[1].type == REC_X86_MSR_POLICY &&
		    sl.recs[1].len > 0 &&
		    sl.recs[1].len % WIRE_MSR_ENTRY_SIZE == 0, "MSR policy");
		for (i = 0, ok = 1; i < sl.recs[1].len / 16; i++)
			ok &= xp_get32(0, sl.recs[1].body + 16 * i + 4) == 0;
		CHECK(ok, "MSR flags 0");
	}

	sleep_ms(20);
	sim_ops.pause(b);
	CHECK(sim_ops.save_state(b, &st) == 0 && st.n == 3, "save_state");
	if (st.n != 3)
		goto out;
	r = &st.recs[0];
	CHECK(r->type == REC_X86_TSC_INFO && r->len == 24 &&
	    xp_get32(0, r->body + 4) != 0 && xp_get64(0, r->body + 8) != 0 &&
	    xp_get32(0, r->body + 20) == 0, "TSC_INFO");
	r = &st.recs[1];
	CHECK(r->type == REC_HVM_CONTEXT &&
	    r->len == 8 + 24 + 3 * (8 + 1032) + 8 &&
	    hvm_context_ok(r->body, r->len, 3), "HVM_CONTEXT (%u octets)",
	    r->len);
	r = &st.recs[2];
	count = r->len >= 8 ? xp_get32(0, r->body) : 0;
	CHECK(r->type == REC_HVM_PARAMS && count >= 4 &&
	    r->len == 8 + 16 * count && xp_get32(0, r->body + 4) == 0,
	    "HVM_PARAMS: %u params, %u octets", count, r->len);
	for (i = 0, ok = 1; i < count && r->len == 8 + 16 * count; i++) {
		v = xp_get64(0, r->body + 16 + 16 * i);
		ok &= v != 0;
		if (xp_get64(0, r->body + 8 + 16 * i) == 1)	/* STORE_PFN */
			ok &= v < info.nr_pages && v > info.nr_pages / 2;
	}
	CHECK(ok, "HVM params non-zero, STORE_PFN high in the domain");

	/* Fixed while paused... */
	sleep_ms(20);
	CHECK(sim_ops.save_state(b, &st2) == 0 && same_list(&st, &st2),
	    "save_state stable while paused");
	state_list_free(&st2);
	/* ...and moves on when the domain runs. */
	sim_ops.resume(b);
	sleep_ms(20);
	sim_ops.pause(b);
	CHECK(sim_ops.save_state(b, &st2) == 0 && st2.n == 3, "save again");
	if (st2.n == 3) {
		CHECK(memcmp(st.recs[1].body, st2.recs[1].body,
		    st.recs[1].len) != 0, "HVM_CONTEXT moved on");
		CHECK(xp_get64(0, st2.recs[0].body + 8) >
		    xp_get64(0, st.recs[0].body + 8), "TSC clock moved on");
	}
out:
	state_list_free(&st);
	state_list_free(&st2);
	state_list_free(&sl);
	sim_ops.close(b);
}

/* ---- target ---------------------------------------------------------- */

static int
open_tgt(const char *spec, const struct domain_info *info,
    struct backend **out)
{
	int	rc;

	*out = (struct backend *)1;
	rc = sim_ops.open_target(spec, info, out);
	if (rc != 0)
		CHECK(*out == NULL, "failed open_target leaves *out NULL");
	return (rc);
}

static void
test_target_errors(void)
{
	struct domain_info	 info = { WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12,
	    256, 1 };
	struct backend		*t, *s;
	uint64_t		 pfn = 0;
	void			*page, *cookie;
	uint8_t			 body[64] = { 0 };
	int			 rc;

	info.type = WIRE_DOM_X86_PV;
	CHECK(open_tgt("", &info, &t) == -EOPNOTSUPP &&
	    strstr(backend_errmsg(NULL), "PV") != NULL, "PV target: %s",
	    backend_errmsg(NULL));
	info.type = WIRE_DOM_X86_HVM;
	info.page_shift = 16;
	CHECK(open_tgt("", &info, &t) == -EOPNOTSUPP, "page_shift 16");
	info.page_shift = 12;
	info.arch = WIRE_ARCH_ARM;
	CHECK(open_tgt("", &info, &t) == -EOPNOTSUPP, "ARM");
	info.arch = WIRE_ARCH_X86;
	CHECK(open_tgt("mem=1G", &info, &t) == -EINVAL &&
	    strstr(backend_errmsg(NULL), "mem") != NULL, "mem on a target: %s",
	    backend_errmsg(NULL));
	CHECK(open_tgt("max=5000", &info, &t) == -EINVAL, "max=5000");
	CHECK(open_tgt("prefault=2", &info, &t) == -EINVAL, "prefault=2");
	CHECK(open_tgt("thp=2", &info, &t) == -EINVAL, "thp=2");

	/* Target-only operations on a source and the reverse. */
	if ((s = open_src("mem=1M")) != NULL) {
		CHECK(sim_ops.populate(s, &pfn, 1) == -EINVAL, "populate src");
		CHECK(sim_ops.zero_page(s, 0) == -EINVAL, "zero_page src");
		CHECK(sim_ops.load_state(s, REC_X86_TSC_INFO, body, 24) ==
		    -EINVAL, "load_state src");
		CHECK(sim_ops.complete(s) == -EINVAL, "complete src");
		CHECK(sim_ops.map(s, &pfn, 1, 1, &page, &cookie) == -EPERM,
		    "source mapped writable");
		pfn = 256;
		CHECK(sim_ops.map(s, &pfn, 1, 0, &page, &cookie) == -EINVAL &&
		    strstr(backend_errmsg(s), "0x100") != NULL,
		    "map beyond: %s", backend_errmsg(s));
		sim_ops.close(s);
	}

	if (open_tgt("", &info, &t) != 0)
		return;
	pfn = 5;
	CHECK(sim_ops.map(t, &pfn, 1, 1, &page, &cookie) == -EINVAL,
	    "map before populate");
	pfn = 256;
	rc = sim_ops.populate(t, &pfn, 1);
	CHECK(rc == -ENOSPC && strstr(backend_errmsg(t), "256") != NULL,
	    "populate beyond: %d %s", rc, backend_errmsg(t));
	CHECK(sim_ops.zero_page(t, 256) == -ENOSPC, "zero beyond");
	CHECK(sim_ops.enable_dirty(t) == -EINVAL, "enable_dirty mid-stream");
	CHECK(sim_ops.resume(t) == -EINVAL, "resume before complete");
	CHECK(sim_ops.complete(t) == -EPROTO &&
	    strcmp(backend_errmsg(t), "sim: stream ended without HVM_CONTEXT")
	    == 0, "complete without state: %s", backend_errmsg(t));

	CHECK(sim_ops.load_state(t, REC_X86_TSC_INFO, body, 23) == -EINVAL,
	    "TSC 23 octets");
	xp_put32(0, body, 2);
	CHECK(sim_ops.load_state(t, REC_HVM_PARAMS, body, 8 + 16) == -EINVAL,
	    "HVM_PARAMS count 2, one entry");
	CHECK(sim_ops.load_state(t, REC_HVM_PARAMS, body, 4) == -EINVAL,
	    "HVM_PARAMS 4 octets");
	CHECK(sim_ops.load_state(t, REC_HVM_CONTEXT, body, 40) == -EINVAL,
	    "HVM_CONTEXT without a header");
	CHECK(sim_ops.load_state(t, REC_HVM_CONTEXT, body, 0) == -EINVAL,
	    "empty HVM_CONTEXT");
	CHECK(sim_ops.load_state(t, REC_X86_CPUID_POLICY, body, 25) == -EINVAL,
	    "CPUID 25 octets");
	CHECK(sim_ops.load_state(t, REC_X86_MSR_POLICY, body, 17) == -EINVAL,
	    "MSR 17 octets");
	CHECK(sim_ops.load_state(t, REC_X86_PV_VCPU_BASIC, body, 16) ==
	    -EOPNOTSUPP && strstr(backend_errmsg(t), "X86_PV_VCPU_BASIC"),
	    "PV vcpu record: %s", backend_errmsg(t));
	/* An HVM context whose descriptor overruns the blob. */
	memset(body, 0, sizeof body);
	xp_put16(0, body, 1);
	xp_put32(0, body + 4, 24);
	xp_put32(0, body + 8, 0x54381286u);
	xp_put16(0, body + 32, 2);
	xp_put32(0, body + 36, 1032);
	CHECK(sim_ops.load_state(t, REC_HVM_CONTEXT, body, 48) == -EINVAL,
	    "HVM_CONTEXT overrun: %s", backend_errmsg(t));
	CHECK(sim_ops.load_state(t, REC_HVM_PARAMS, NULL, 0) == 0,
	    "empty HVM_PARAMS tolerated");
	CHECK(sim_ops.complete(t) == -EPROTO &&
	    strstr(backend_errmsg(t), "HVM_CONTEXT") != NULL, "still no ctx");
	sim_ops.close(t);

	/* A domain of unannounced size grows up to max=. */
	info.nr_pages = 0;
	if (open_tgt("max=1M", &info, &t) == 0) {
		struct domain_info	d;

		pfn = 10;
		CHECK(sim_ops.populate(t, &pfn, 1) == 0, "populate 10");
		sim_ops.describe(t, &d);
		CHECK(d.nr_pages == 11, "grew to %" PRIu64, d.nr_pages);
		CHECK(sim_ops.zero_page(t, 100) == 0, "zero_page populates");
		sim_ops.describe(t, &d);
		CHECK(d.nr_pages == 101, "grew to %" PRIu64, d.nr_pages);
		pfn = 256;
		CHECK(sim_ops.populate(t, &pfn, 1) == -ENOSPC &&
		    strstr(backend_errmsg(t), "max=") != NULL,
		    "beyond max: %s", backend_errmsg(t));
		sim_ops.close(t);
	}
}

/* Copy src into a fresh target the way the engine would. */
static struct backend *
migrate(struct backend *src, const char *spec, int announce)
{
	struct state_list	 sl = { 0 }, tl = { 0 };
	struct domain_info	 info, tinfo;
	struct backend		*t;
	uint64_t		 pfn, pfns[64];
	void			*sp[64], *tp[64], *sc, *tc;
	size_t			 i;
	unsigned		 j;
	int			 ok = 1;

	sim_ops.describe(src, &info);
	tinfo = info;
	if (!announce) {
		tinfo.nr_pages = 0;
		tinfo.nr_vcpus = 0;
	}
	if (open_tgt(spec, &tinfo, &t) != 0) {
		CHECK(0, "open_target(%s): %s", spec, backend_errmsg(NULL));
		return (NULL);
	}
	CHECK(strcmp(sim_run_state(t), "paused") == 0, "target paused");
	sim_ops.static_state(src, &sl);
	for (i = 0; i < sl.n; i++)
		ok &= sim_ops.load_state(t, sl.recs[i].type, sl.recs[i].body,
		    sl.recs[i].len) == 0;
	sim_ops.pause(src);
	for (pfn = 0; pfn < info.nr_pages; pfn += 64) {
		for (j = 0; j < 64 && pfn + j < info.nr_pages; j++)
			pfns[j] = pfn + j;
		ok &= sim_ops.map(src, pfns, j, 0, sp, &sc) == 0;
		ok &= sim_ops.populate(t, pfns, j) == 0;
		ok &= sim_ops.map(t, pfns, j, 1, tp, &tc) == 0;
		while (j-- > 0) {
			if (is_zero(sp[j]))
				ok &= sim_ops.zero_page(t, pfns[j]) == 0;
			else
				memcpy(tp[j], sp[j], PAGE);
		}
		sim_ops.unmap(t, tc, 64);
		sim_ops.unmap(src, sc, 64);
	}
	CHECK(ok, "pages and static state into the target");
	CHECK(sim_ops.save_state(src, &tl) == 0, "source save_state");
	for (i = 0; i < tl.n; i++)
		ok &= sim_ops.load_state(t, tl.recs[i].type, tl.recs[i].body,
		    tl.recs[i].len) == 0;
	CHECK(ok && sim_ops.complete(t) == 0, "complete: %s",
	    backend_errmsg(t));
	state_list_free(&sl);
	state_list_free(&tl);
	return (t);
}

static int
same_memory(struct backend *a, struct backend *b, uint64_t n)
{
	uint64_t	pfn;

	for (pfn = 0; pfn < n; pfn++) {
		if (memcmp(page_of(a, pfn), page_of(b, pfn), PAGE) != 0)
			return (0);
	}
	return (1);
}

static void
test_target_flow(void)
{
	struct state_list	 s1 = { 0 }, s2 = { 0 }, t1 = { 0 }, t2 = { 0 };
	struct backend_stats	 st;
	struct domain_info	 di, ti;
	struct backend		*src, *t, *t2b;
	uint64_t		*bm, pfn = 0;
	uint8_t			 tsc[24], *p;
	void			*page, *cookie;

	src = open_src("mem=4M,vcpus=3,dirty=8M,seed=11");
	if (src == NULL)
		return;
	t = migrate(src, "", 1);
	if (t == NULL)
		goto out;
	sim_ops.describe(src, &di);
	sim_ops.describe(t, &ti);
	CHECK(ti.nr_pages == di.nr_pages && ti.nr_vcpus == 3 &&
	    ti.type == WIRE_DOM_X86_HVM, "target describe");
	CHECK(same_memory(src, t, di.nr_pages), "memory arrived");
	CHECK(strcmp(sim_run_state(t), "paused") == 0, "complete: paused");

	/* The restored domain gives its state back, in source order. */
	sim_ops.static_state(src, &s1);
	sim_ops.save_state(src, &s2);
	CHECK(sim_ops.static_state(t, &t1) == 0 && same_list(&s1, &t1),
	    "target static_state = source's");
	CHECK(sim_ops.save_state(t, &t2) == 0 && same_list(&s2, &t2),
	    "target save_state = source's");
	state_list_free(&t2);

	/* A later record of a type replaces the earlier one. */
	memcpy(tsc, s2.recs[0].body, 24);
	xp_put64(0, tsc + 8, 12345);
	CHECK(sim_ops.load_state(t, REC_X86_TSC_INFO, tsc, 24) == 0, "TSC 2");
	CHECK(sim_ops.save_state(t, &t2) == 0 && t2.n == 3 &&
	    t2.recs[0].type == REC_X86_TSC_INFO &&
	    xp_get64(0, t2.recs[0].body + 8) == 12345, "TSC replaced");
	state_list_free(&t2);

	CHECK(sim_ops.resume(t) == 0 && strcmp(sim_run_state(t), "running")
	    == 0, "target resumed");
	CHECK(sim_ops.save_state(t, &t2) == -EBUSY, "save while running");
	CHECK(sim_ops.pause(t) == 0, "target pause");

	/* It migrates again, with dirty tracking. */
	bm = calloc(di.nr_pages / 64 + 1, 8);
	CHECK(sim_ops.enable_dirty(t) == 0 && bm != NULL &&
	    sim_ops.read_dirty(t, bm) == 0, "restored: tracking");
	free(bm);
	t2b = migrate(t, "", 0);
	if (t2b != NULL) {
		sim_ops.describe(t2b, &ti);
		CHECK(ti.nr_pages == di.nr_pages && ti.nr_vcpus == 3,
		    "second hop, unannounced: %" PRIu64 " pages, %u vcpus",
		    ti.nr_pages, ti.nr_vcpus);
		CHECK(same_memory(src, t2b, di.nr_pages), "second hop memory");
		CHECK(sim_ops.save_state(t2b, &t2) == 0 && t2.n == 3 &&
		    xp_get64(0, t2.recs[0].body + 8) == 12345 &&
		    same_list_from(&s2, &t2, 1), "second hop state");
		sim_ops.close(t2b);
	}

	CHECK(sim_ops.destroy(t) == 0 && sim_ops.destroy(t) == 0,
	    "destroy twice");
	CHECK(strcmp(sim_run_state(t), "destroyed") == 0, "destroyed");
	CHECK(sim_ops.map(t, &pfn, 1, 0, &page, &cookie) == -ESRCH, "map gone");
	CHECK(sim_ops.resume(t) == -ESRCH, "resume gone");
	CHECK(sim_ops.populate(t, &pfn, 1) == -ESRCH, "populate gone");
	sim_ops.close(t);

	/* A target with its own workload and prefaulting. */
	sim_ops.resume(src);
	t = migrate(src, "dirty=16M,hot=64M,prefault=1", 1);
	if (t != NULL) {
		CHECK(same_memory(src, t, di.nr_pages), "prefault: memory");
		CHECK(sim_ops.resume(t) == 0, "resume with a workload");
		wait_written(t, 0);
		sim_ops.pause(t);
		sim_ops.stats(t, &st);
		CHECK(st.pages_written > 0 && st.dirty_rate == 16u << 20,
		    "target workload wrote %" PRIu64, st.pages_written);
		p = page_of(t, 0);
		CHECK(p != NULL, "map after run");
		sim_ops.close(t);
	}
	t = migrate(src, "prefault=1,max=8M", 0);
	if (t != NULL) {
		CHECK(same_memory(src, t, di.nr_pages), "prefault, grown");
		sim_ops.close(t);
	}
	/* Huge pages asked for: a hint, the memory the same. */
	t = migrate(src, "prefault=1,thp=1", 1);
	if (t != NULL) {
		CHECK(same_memory(src, t, di.nr_pages), "thp: memory");
		sim_ops.close(t);
	}

	/* A workload started late (xmigd: after the receiver's digests). */
	CHECK(sim_start_workload(src, 1u << 20) == -EINVAL,
	    "start_workload on a source: -EINVAL");
	t = migrate(src, "hot=64K,seed=5", 1);
	if (t != NULL) {
		CHECK(sim_ops.resume(t) == 0, "resume without a workload");
		sleep_ms(50);
		sim_ops.stats(t, &st);
		CHECK(st.pages_written == 0 && st.dirty_rate == 0,
		    "no workload yet: %" PRIu64 " written", st.pages_written);
		CHECK(same_memory(src, t, di.nr_pages), "late: memory intact");
		CHECK(sim_start_workload(t, 16u << 20) == 0,
		    "start_workload: %s", backend_errmsg(t));
		wait_written(t, 0);
		sim_ops.pause(t);
		sim_ops.stats(t, &st);
		CHECK(st.pages_written > 0 && st.dirty_rate == 16u << 20,
		    "late workload wrote %" PRIu64, st.pages_written);
		CHECK(sim_start_workload(t, 1u << 20) == -EBUSY,
		    "a second start_workload: -EBUSY");
		sim_ops.close(t);
	}
out:
	state_list_free(&s1);
	state_list_free(&s2);
	state_list_free(&t1);
	state_list_free(&t2);
	sim_ops.close(src);
}

/* ---- state=PATH ------------------------------------------------------- */

/* The one line in path, without its newline; "" if none. */
static const char *
state_of(const char *path)
{
	static char	 line[64];
	FILE		*f;
	size_t		 n;

	line[0] = '\0';
	if ((f = fopen(path, "r")) == NULL)
		return (line);
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return (line);
}

/* Entries in dir besides . and .. (temporary files left over). */
static int
entries(const char *dir)
{
	struct dirent	*e;
	DIR		*d;
	int		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return (n);
}

#define STATE_IS(path, want, what)					\
	CHECK(strcmp(state_of(path), want) == 0, "state=: %s: '%s', "	\
	    "expected '%s'", what, state_of(path), want)

static void
test_state_file(void)
{
	char		 dir[] = "/tmp/xmig-test-sim.XXXXXX";
	char		 a[64], t[64], spec[128];
	struct backend	*b, *tb;
	int		 rc;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(a, sizeof a, "%s/a", dir);
	snprintf(t, sizeof t, "%s/t", dir);

	/* A source: opens running; pause, resume; close while running. */
	snprintf(spec, sizeof spec, "mem=1M,dirty=1M,state=%s", a);
	if ((b = open_src(spec)) != NULL) {
		STATE_IS(a, "running", "a source at open");
		sim_ops.pause(b);
		STATE_IS(a, "paused", "after pause");
		sim_ops.pause(b);
		STATE_IS(a, "paused", "after a second pause");
		sim_ops.resume(b);
		STATE_IS(a, "running", "after resume");
		sim_ops.close(b);
		STATE_IS(a, "gone running", "closed while running");
	}
	/* Closed while paused. */
	if ((b = open_src(spec)) != NULL) {
		sim_ops.pause(b);
		sim_ops.close(b);
		STATE_IS(a, "gone paused", "closed while paused");
	}

	/* A target: paused from open to resume, then destroyed; a
	 * destroyed domain stays "destroyed" after close. */
	snprintf(spec, sizeof spec, "state=%s", t);
	if ((b = open_src("mem=1M,seed=4")) != NULL) {
		if ((tb = migrate(b, spec, 1)) != NULL) {
			STATE_IS(t, "paused", "a complete target");
			CHECK(sim_ops.resume(tb) == 0, "target resume");
			STATE_IS(t, "running", "a resumed target");
			CHECK(sim_ops.destroy(tb) == 0, "target destroy");
			STATE_IS(t, "destroyed", "a destroyed target");
			sim_ops.close(tb);
			STATE_IS(t, "destroyed", "destroyed, then closed");
		}
		sim_ops.close(b);
	}
	CHECK(entries(dir) == 2, "state=: %d files in %s, expected 2 (no "
	    "temporary file left)", entries(dir), dir);

	/* A file that cannot be written fails open, naming it. */
	snprintf(spec, sizeof spec, "mem=1M,state=%s/none/a", dir);
	b = (struct backend *)1;
	rc = sim_ops.open_source(spec, &b);
	CHECK(rc == -ENOENT && b == NULL, "state= in a missing directory: %d",
	    rc);
	CHECK(strstr(backend_errmsg(NULL), "state=") != NULL &&
	    strstr(backend_errmsg(NULL), "/none/a") != NULL,
	    "state= failure message: '%s'", backend_errmsg(NULL));
	CHECK(open_tgt("state=", NULL, &tb) == -EINVAL, "state= empty");

	unlink(a);
	unlink(t);
	CHECK(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

/* Pages of t, pfns [0, n), all resident (mincore). */
static int
all_resident(struct backend *t, uint64_t n)
{
	unsigned char	vec;
	uint64_t	pfn;
	uint8_t		*p;

	for (pfn = 0; pfn < n; pfn++) {
		if ((p = page_of(t, pfn)) == NULL ||
		    mincore(p, PAGE, &vec) != 0 || !(vec & 1))
			return (0);
	}
	return (1);
}

/* prealloc=: memory touched by prepare(), taken by one target that fits. */
static void
test_prealloc(void)
{
	struct domain_info	 info = { WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12,
	    256, 1 };
	struct backend		*src, *t, *t2;
	uint64_t		 pfns[256];
	unsigned		 i;

	for (i = 0; i < 256; i++)
		pfns[i] = i;
	CHECK(sim_ops.prepare != NULL, "sim has prepare");
	CHECK(sim_ops.prepare("", 0) == 0, "prepare without prealloc=: none");
	CHECK(sim_ops.prepare("prealloc=1M", 0) == -EINVAL &&
	    strstr(backend_errmsg(NULL), "one domain") != NULL,
	    "prealloc= without BACKEND_PREPARE_ONE: %s", backend_errmsg(NULL));
	CHECK(open_tgt("prealloc=1M", &info, &t) == -ENOMEM &&
	    strstr(backend_errmsg(NULL), "no memory was preallocated") != NULL,
	    "open_target with nothing prepared: %s", backend_errmsg(NULL));
	CHECK(open_tgt("prealloc=0", &info, &t) == -EINVAL, "prealloc=0");
	CHECK(open_tgt("prealloc=1M,max=1M", &info, &t) == -EINVAL,
	    "prealloc= with max=");

	/* A fresh target's pages are not resident before they are written... */
	if (open_tgt("", &info, &t) == 0) {
		CHECK(sim_ops.populate(t, pfns, 256) == 0, "populate plain");
		CHECK(!all_resident(t, 256), "plain target: not resident");
		sim_ops.close(t);
	}
	/* ...a prealloc'd one's are, and a larger domain is refused. */
	CHECK(sim_ops.prepare("prealloc=1M", BACKEND_PREPARE_ONE) == 0,
	    "prepare prealloc=1M: %s", backend_errmsg(NULL));
	info.nr_pages = 257;
	CHECK(open_tgt("prealloc=1M", &info, &t) == -ENOMEM &&
	    strstr(backend_errmsg(NULL), "1028 KiB do not fit the 1024 KiB")
	    != NULL, "a larger domain refused: %s", backend_errmsg(NULL));
	info.nr_pages = 256;
	if (open_tgt("prealloc=1M", &info, &t) == 0) {
		CHECK(sim_ops.populate(t, pfns, 256) == 0, "populate prealloc");
		CHECK(all_resident(t, 256), "prealloc'd target: resident");
		CHECK(is_zero(page_of(t, 0)) && is_zero(page_of(t, 255)),
		    "prealloc'd pages read zero");
		CHECK(open_tgt("prealloc=1M", &info, &t2) == -ENOMEM &&
		    strstr(backend_errmsg(NULL), "earlier domain") != NULL,
		    "a second target: %s", backend_errmsg(NULL));
		sim_ops.close(t);
	}

	/* Migrations into it: announced and unannounced sizes. */
	if ((src = open_src("mem=1M,mix=realistic,seed=9")) == NULL)
		return;
	CHECK(sim_ops.prepare("prealloc=1M", BACKEND_PREPARE_ONE) == 0,
	    "prepare again after the first was taken");
	t = migrate(src, "prealloc=1M", 1);
	if (t != NULL) {
		CHECK(same_memory(src, t, 256), "prealloc: memory");
		sim_ops.close(t);
	}
	CHECK(sim_ops.prepare("prealloc=2M,thp=1", BACKEND_PREPARE_ONE) == 0,
	    "prepare prealloc=2M,thp=1");
	t = migrate(src, "prealloc=2M,thp=1", 0);
	if (t != NULL) {
		CHECK(same_memory(src, t, 256), "prealloc, grown: memory");
		sim_ops.close(t);
	}
	sim_ops.close(src);
}

int
main(void)
{
	test_registry();
	test_spec();
	test_content();
	test_dirty();
	test_pause();
	test_rate();
	test_save_state();
	test_target_errors();
	test_target_flow();
	test_state_file();
	test_prealloc();
	return (tap_done());
}
