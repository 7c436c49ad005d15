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
#include "sim-wrap.h"
#include "tap.h"

#define NPAGES	256u
#define HOLE(pfn)	((pfn) % 5 == 2)

static struct backend_ops holes_ops;	/* the sim's, but for map */

static int
h_map(struct backend *b, const uint64_t *pfns, unsigned n, int w,
    void **pages, void **cookie)
{
	unsigned i;
	int rc = sim_ops.map(b, pfns, n, w, pages, cookie);

	for (i = 0; rc == 0 && i < n; i++)
		if (HOLE(pfns[i]))
			pages[i] = NULL;
	return rc;
}

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
	struct backend *b;
	struct send_opts o;
	struct xmig_report r;
	struct xp_limits lim = { 0 };
	struct xp_parser *p;
	struct count c = { 0 };
	char dest[600];
	uint8_t buf[65536];
	ssize_t n;
	int fd, rc;

	rc = sim_ops.open_source("mem=1M,vcpus=1", &b);
	CHECK(rc == 0, "sim source: %s", backend_errmsg(NULL));
	if (rc != 0)
		return;
	b->ops = &holes_ops;
	send_opts_default(&o);
	o.dialect = d;
	o.digest = alg;
	o.live = 0;
	o.progress = PROGRESS_NONE;
	snprintf(dest, sizeof(dest), "file:%s", path);
	rc = send_domain(b, dest, &o, &r);
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
		XXH128_canonical_t canon;

		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		XXH3_128bits_reset(xs);
		for (pfn = 0; pfn < NPAGES; pfn++) {
			uint64_t q = pfn;
			void *page, *cookie;
			const void *data = zero;

			rc = 0;
			if (!HOLE(pfn) && (rc = sim_ops.map(b, &q, 1, 0,
			    &page, &cookie)) == 0)
				data = page;
			CHECK(rc == 0, "map pfn %u", pfn);
			if (rc != 0)
				break;
			EVP_DigestUpdate(ctx, data, sizeof(zero));
			XXH3_128bits_update(xs, data, sizeof(zero));
			if (data != zero)
				sim_ops.unmap(b, cookie, 1);
		}
		if (alg == XMIG_DIGEST_SHA256)
			EVP_DigestFinal_ex(ctx, want, &len);
		else {
			XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(xs));
			memcpy(want, canon.digest, 16);
			len = 16;
		}
		EVP_MD_CTX_free(ctx);
		XXH3_freeState(xs);
		CHECK(r.memory_alg == alg && len == digest_len(alg) &&
		    memcmp(want, r.memory_digest, 32) == 0,
		    "the %s memory digest counts the holes as zeros",
		    digest_name(alg));
	}
	sim_ops.close(b);

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
	sim_wrap_ops(&holes_ops, "holes");
	holes_ops.map = h_map;
	run(XP_XEN, XMIG_DIGEST_XXH3, path);
	run(XP_DRAFTB, XMIG_DIGEST_SHA256, path);
	return tap_done();
}
