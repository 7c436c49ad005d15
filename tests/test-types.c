/*
 * test-types.c -- the engine's hooks for typed pages (x86 PV guests): a
 * wrapper around the sim gives every seventh pfn the type "pinned L1
 * table" through map_types and one record through memory_state.  The
 * stream must carry those pfns with their type and their data even when
 * the page is all zero and zero pages are elided (XMIG_ZERO_PAGES has no
 * type), every other pfn as a plain page, and the memory_state record
 * right after STATIC_DATA_END, before any memory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig.h"
#include "run.h"
#include "sim-wrap.h"
#include "tap.h"

#define NPAGES		256u
#define TYPED(pfn)	((pfn) % 7 == 3)

/* The sim's, but for map (the pfns kept), map_types and memory_state. */
static struct backend_ops typed_ops;
static unsigned typed_maps;	/* map_types calls */

/* The sim's cookie and the pfns of each map, for map_types. */
struct tcookie {
	void		*in;
	uint64_t	 pfns[WIRE_PAGE_DATA_MAX];
};

static int
t_map(struct backend *b, const uint64_t *pfns, unsigned n, int w,
    void **pages, void **cookie)
{
	struct tcookie *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL || n > WIRE_PAGE_DATA_MAX) {
		free(c);
		return -ENOMEM;
	}
	rc = sim_ops.map(b, pfns, n, w, pages, &c->in);
	if (rc != 0) {
		free(c);
		return rc;
	}
	memcpy(c->pfns, pfns, n * sizeof(*pfns));
	*cookie = c;
	return 0;
}

static void
t_unmap(struct backend *b, void *cookie, unsigned n)
{
	struct tcookie *c = cookie;

	sim_ops.unmap(b, c->in, n);
	free(c);
}

static int
t_map_types(struct backend *b, void *cookie, unsigned n, uint8_t *types)
{
	struct tcookie *c = cookie;
	unsigned i;

	(void)b;
	typed_maps++;
	for (i = 0; i < n; i++)
		types[i] = TYPED(c->pfns[i]) ? PT_L1PIN : PT_NOTAB;
	return 0;
}

static int
t_memory_state(struct backend *b, struct state_list *out)
{
	uint8_t tsc[24] = { 0 };

	(void)b;
	tsc[4] = 1;	/* khz 1: tells it from the sim's own TSC_INFO */
	return state_list_add(out, REC_X86_TSC_INFO, tsc, sizeof(tsc));
}

struct seen {
	unsigned idx, sde_idx, mem_idx, first_page_idx;
	unsigned typed, typed_bad, plain, plain_bad, zero;
	unsigned zero_typed;
};

static int
seen_hcb(void *arg, const struct xp_stream *st)
{
	(void)arg;
	(void)st;
	return 0;
}

static int
seen_rcb(void *arg, const struct xp_stream *st, const struct xp_record *rec)
{
	struct seen *s = arg;
	struct xp_page_view v;
	uint32_t i;

	s->idx++;
	if (rec->type == REC_STATIC_DATA_END)
		s->sde_idx = s->idx;
	if (rec->type == REC_X86_TSC_INFO && rec->length == 24 &&
	    rec->body[4] == 1 && s->mem_idx == 0)
		s->mem_idx = s->idx;
	if (rec->type != REC_PAGE_DATA && rec->type != REC_XMIG_ZERO_PAGES)
		return 0;
	if (s->first_page_idx == 0)
		s->first_page_idx = s->idx;
	if (body_page_data_view(st, rec, &v) != 0)
		return -1;
	for (i = 0; i < v.count; i++) {
		uint64_t e = xp_page_view_entry(&v, i);
		uint64_t pfn = e & WIRE_PFN_MASK;
		unsigned type = (unsigned)(e >> WIRE_PFN_TYPE_SHIFT);

		if (v.zero) {
			s->zero++;
			s->zero_typed += TYPED(pfn);
		} else if (type == PT_L1PIN) {
			s->typed++;
			s->typed_bad += !TYPED(pfn);
		} else {
			s->plain++;
			s->plain_bad += TYPED(pfn) || type != PT_NOTAB;
		}
	}
	return 0;
}

static void
run(enum xp_dialect d, const char *spec, int zero_pages, const char *path)
{
	struct backend *b;
	struct send_opts o;
	struct xmig_report r;
	struct xp_limits lim = { 0 };
	struct xp_parser *p;
	struct seen s = { 0 };
	const char *dn = d == XP_XEN ? "xen" : "draftb";
	unsigned ntyped = 0, pfn;
	char dest[600];
	uint8_t buf[65536];
	ssize_t n;
	int fd, rc;

	for (pfn = 0; pfn < NPAGES; pfn++)
		ntyped += TYPED(pfn);
	rc = sim_ops.open_source(spec, &b);
	CHECK(rc == 0, "sim source: %s", backend_errmsg(NULL));
	if (rc != 0)
		return;
	b->ops = &typed_ops;
	typed_maps = 0;
	send_opts_default(&o);
	o.dialect = d;
	o.live = 0;
	o.zero_pages = zero_pages;
	o.progress = PROGRESS_NONE;
	snprintf(dest, sizeof(dest), "file:%s", path);
	rc = send_domain(b, dest, &o, &r);
	CHECK(rc == 0, "%s %s: send_domain: %d %s", dn, spec, rc, r.error);
	CHECK(typed_maps > 0, "%s: map_types was asked", dn);
	sim_ops.close(b);

	p = parser_new(&lim, seen_hcb, seen_rcb, &s);
	fd = open(path, O_RDONLY);
	CHECK(p != NULL && fd >= 0, "reading %s back", path);
	while (p != NULL && fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		CHECK(parser_feed(p, buf, (size_t)n) == n, "parser: %s",
		    parser_error(p)->msg);
	CHECK(p != NULL && parser_finish(p) == 0, "the stream is complete");
	if (fd >= 0)
		close(fd);
	parser_free(p);
	unlink(path);

	CHECK(s.sde_idx > 0 && s.mem_idx == s.sde_idx + 1 &&
	    s.first_page_idx > s.mem_idx, "%s %s: memory_state's record right "
	    "after STATIC_DATA_END (record %u, %u) and before memory (%u)",
	    dn, spec, s.sde_idx, s.mem_idx, s.first_page_idx);
	CHECK(s.typed == ntyped && s.typed_bad == 0, "%s %s: %u pinned L1 "
	    "entries (want %u, %u misplaced)", dn, spec, s.typed, ntyped,
	    s.typed_bad);
	CHECK(s.zero_typed == 0, "%s %s: %u typed pages went as zero pages",
	    dn, spec, s.zero_typed);
	CHECK(s.plain + s.zero == NPAGES - ntyped && s.plain_bad == 0,
	    "%s %s: %u plain and %u zero pages (want %u, %u wrong)", dn, spec,
	    s.plain, s.zero, NPAGES - ntyped, s.plain_bad);
	if (zero_pages == 1 && d == XP_DRAFTB)
		CHECK(s.zero == NPAGES - ntyped, "%s %s: the untyped zero pages "
		    "elided (%u)", dn, spec, s.zero);
}

int
main(void)
{
	char path[] = "/tmp/xmig-types-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp");
	close(fd);
	sim_wrap_ops(&typed_ops, "typed");
	typed_ops.map = t_map;
	typed_ops.unmap = t_unmap;
	typed_ops.map_types = t_map_types;
	typed_ops.memory_state = t_memory_state;
	run(XP_XEN, "mem=1M,vcpus=1", 0, path);
	run(XP_DRAFTB, "mem=1M,vcpus=1", 0, path);
	/* All pages zero, elided: the typed ones must not be. */
	run(XP_DRAFTB, "mem=1M,vcpus=1,mix=zero", 1, path);
	return tap_done();
}
