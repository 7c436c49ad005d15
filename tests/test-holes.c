/*
 * test-holes.c -- the engine with a backend whose p2m has holes, as a real
 * Xen guest's does: map() gives a NULL page for pfns without data (XTAB,
 * BROKEN, XALLOC).  A wrapper around the sim drops every fifth pfn; the
 * sender must write those as XTAB entries without data (what libxc
 * writes), the others with their data, and the memory digest (XXH3-128
 * and SHA-256, computed here page by page) must count the holes as zeros.  Without that, the sender would read through a NULL
 * page.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "xmig.h"
#include "run.h"
#include "tap.h"

#define NPAGES	256u
#define HOLE(pfn)	((pfn) % 5 == 2)

struct holes {
	struct backend	 b;
	struct backend	*in;
};

static struct backend *
inner(struct backend *b)
{
	return ((struct holes *)b)->in;
}

static int
h_describe(struct backend *b, struct domain_info *i)
{
	return sim_ops.describe(inner(b), i);
}

static int
h_map(struct backend *b, const uint64_t *pfns, unsigned n, int w,
    void **pages, void **cookie)
{
	unsigned i;
	int rc = sim_ops.map(inner(b), pfns, n, w, pages, cookie);

	for (i = 0; rc == 0 && i < n; i++)
		if (HOLE(pfns[i]))
			pages[i] = NULL;
	return rc;
}

static void
h_unmap(struct backend *b, void *c, unsigned n)
{
	sim_ops.unmap(inner(b), c, n);
}

static int h_enable(struct backend *b) { return sim_ops.enable_dirty(inner(b)); }
static int64_t h_read(struct backend *b, uint64_t *bm) { return sim_ops.read_dirty(inner(b), bm); }
static int h_disable(struct backend *b) { return sim_ops.disable_dirty(inner(b)); }
static int h_pause(struct backend *b) { return sim_ops.pause(inner(b)); }
static int h_resume(struct backend *b) { return sim_ops.resume(inner(b)); }
static int h_static(struct backend *b, struct state_list *l) { return sim_ops.static_state(inner(b), l); }
static int h_save(struct backend *b, struct state_list *l) { return sim_ops.save_state(inner(b), l); }

static const struct backend_ops holes_ops = {
	.name = "holes",
	.describe = h_describe,
	.map = h_map,
	.unmap = h_unmap,
	.enable_dirty = h_enable,
	.read_dirty = h_read,
	.disable_dirty = h_disable,
	.pause = h_pause,
	.resume = h_resume,
	.static_state = h_static,
	.save_state = h_save,
};

struct count {
	unsigned xtab, data, bad_xtab, bad_data;
};

static int
count_hcb(void *arg, const struct xp_stream *st)
{
	(void)arg;
	(void)st;
	return 0;
}

static int
count_rcb(void *arg, const struct xp_stream *st, const struct xp_record *rec)
{
	struct count *c = arg;
	struct xp_page_view v;
	uint32_t i;

	if (rec->type != REC_PAGE_DATA)
		return 0;
	if (body_page_data_view(st, rec, &v) != 0)
		return -1;
	for (i = 0; i < v.count; i++) {
		uint64_t e = xp_page_view_entry(&v, i);
		uint64_t pfn = e & WIRE_PFN_MASK;
		unsigned type = (unsigned)(e >> WIRE_PFN_TYPE_SHIFT);

		if (type == PT_XTAB) {
			c->xtab++;
			c->bad_xtab += !HOLE(pfn);
		} else {
			c->data++;
			c->bad_data += HOLE(pfn);
		}
	}
	return 0;
}

static void
run(enum xp_dialect d, enum xmig_digest alg, const char *path)
{
	struct holes h = { .b = { .ops = &holes_ops } };
	struct send_opts o;
	struct xmig_report r;
	struct xp_limits lim = { 0 };
	struct xp_parser *p;
	struct count c = { 0 };
	char dest[600];
	uint8_t buf[65536];
	ssize_t n;
	int fd, rc;

	rc = sim_ops.open_source("mem=1M,vcpus=1", &h.in);
	CHECK(rc == 0, "sim source: %s", backend_errmsg(NULL));
	if (rc != 0)
		return;
	send_opts_default(&o);
	o.dialect = d;
	o.digest = alg;
	o.live = 0;
	o.progress = PROGRESS_NONE;
	snprintf(dest, sizeof(dest), "file:%s", path);
	rc = send_domain(&h.b, dest, &o, &r);
	CHECK(rc == 0, "%s: send_domain: %d %s", d == XP_XEN ? "xen" : "draftb",
	    rc, r.error);
	CHECK(r.have_memory, "memory digest taken over the holes");
	{
		/* What the digest must be: the sim's pages, holes as zeros. */
		static const uint8_t zero[4096];
		uint8_t want[32] = { 0 };
		unsigned pfn, len = 0;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		XXH3_state_t *xs = XXH3_createState();
		XXH128_canonical_t c;

		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		XXH3_128bits_reset(xs);
		for (pfn = 0; pfn < NPAGES; pfn++) {
			uint64_t q = pfn;
			void *page, *cookie;
			const void *data = zero;

			rc = 0;
			if (!HOLE(pfn) && (rc = sim_ops.map(h.in, &q, 1, 0,
			    &page, &cookie)) == 0)
				data = page;
			CHECK(rc == 0, "map pfn %u", pfn);
			if (rc != 0)
				break;
			EVP_DigestUpdate(ctx, data, sizeof(zero));
			XXH3_128bits_update(xs, data, sizeof(zero));
			if (data != zero)
				sim_ops.unmap(h.in, cookie, 1);
		}
		if (alg == XMIG_DIGEST_SHA256)
			EVP_DigestFinal_ex(ctx, want, &len);
		else {
			XXH128_canonicalFromHash(&c, XXH3_128bits_digest(xs));
			memcpy(want, c.digest, 16);
			len = 16;
		}
		EVP_MD_CTX_free(ctx);
		XXH3_freeState(xs);
		CHECK(r.memory_alg == alg && len == digest_len(alg) &&
		    memcmp(want, r.memory_digest, 32) == 0,
		    "the %s memory digest counts the holes as zeros",
		    digest_name(alg));
	}
	sim_ops.close(h.in);

	p = parser_new(&lim, count_hcb, count_rcb, &c);
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
	/* pfns 2, 7, ..., 252: 51 holes; 205 pages with data. */
	CHECK(c.xtab == 51 && c.bad_xtab == 0, "holes sent as XTAB: %u (%u "
	    "wrong)", c.xtab, c.bad_xtab);
	CHECK(c.data == NPAGES - 51 && c.bad_data == 0, "pages with data: %u "
	    "(%u were holes)", c.data, c.bad_data);
}

int
main(void)
{
	char path[] = "/tmp/xmig-holes-XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp");
	close(fd);
	run(XP_XEN, XMIG_DIGEST_XXH3, path);
	run(XP_DRAFTB, XMIG_DIGEST_SHA256, path);
	return tap_done();
}
