/*
 * test-delta.c -- delta-encoded pages (proto/delta.c, SPEC 12.7): round
 * trips of the encoder and the applier on random, sparse-change and
 * all-change pages; every rejection of a malformed delta; the
 * XMIG_DELTA_PAGES record through the parser (accepted, refused naming the
 * record), its byte-order conversion and its head writer.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "delta.h"
#include "tap.h"

#define PAGE	4096u

static uint64_t rs = 0x243F6A8885A308D3ULL;

static uint32_t
rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs >> 16);
}

static void
fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* Encode nw against old, apply it to a copy of old: must give nw. */
static int
round_trip(const uint8_t *old, const uint8_t *nw, uint32_t max, int *len)
{
	static uint8_t d[2 * PAGE + 64], page[PAGE];
	char why[200];

	*len = delta_encode(old, nw, PAGE, d, max);
	if (*len < 0)
		return -1;
	if (delta_check(d, (uint32_t)*len, PAGE, why, sizeof why) != 0) {
		fprintf(stderr, "check: %s\n", why);
		return 0;
	}
	memcpy(page, old, PAGE);
	if (delta_apply(page, PAGE, d, (uint32_t)*len, why, sizeof why) != 0) {
		fprintf(stderr, "apply: %s\n", why);
		return 0;
	}
	return memcmp(page, nw, PAGE) == 0;
}

static void
test_round_trips(void)
{
	static uint8_t old[PAGE], nw[PAGE];
	unsigned i, k, ok = 0, sparse_small = 0;
	int len;

	/* Equal pages: the empty delta. */
	fill(old, PAGE);
	memcpy(nw, old, PAGE);
	CHECK(round_trip(old, nw, PAGE, &len) == 1 && len == 0,
	    "equal pages: length %d", len);

	/* Random against random: everything changed. */
	for (i = 0; i < 50; i++) {
		fill(old, PAGE);
		fill(nw, PAGE);
		if (round_trip(old, nw, 2 * PAGE, &len) == 1 &&
		    len <= (int)PAGE + 8)
			ok++;
	}
	CHECK(ok == 50, "random pages: %u of 50 round trips", ok);

	/* All octets changed (old xor 0xff): one pair, page + 4 octets. */
	fill(old, PAGE);
	for (i = 0; i < PAGE; i++)
		nw[i] = old[i] ^ 0xff;
	CHECK(round_trip(old, nw, 2 * PAGE, &len) == 1 && len == PAGE + 3,
	    "all-change page: length %d (want 4099: varints 1 + 2)", len);
	/* ... which does not fit half a page. */
	CHECK(delta_encode(old, nw, PAGE, (uint8_t[PAGE]){ 0 }, PAGE / 2 - 1)
	    == -1, "all-change page does not fit half a page");

	/* Sparse changes: a few runs, as a guest writing a few octets. */
	ok = 0;
	for (i = 0; i < 200; i++) {
		unsigned runs = 1 + rnd() % 6;

		fill(old, PAGE);
		memcpy(nw, old, PAGE);
		for (k = 0; k < runs; k++) {
			unsigned at = rnd() % PAGE, n = 1 + rnd() % 64;

			if (at + n > PAGE)
				n = PAGE - at;
			fill(nw + at, n);
		}
		if (round_trip(old, nw, PAGE / 2 - 1, &len) == 1) {
			ok++;
			if (len < 6 * 70)
				sparse_small++;
		}
	}
	CHECK(ok == 200, "sparse pages: %u of 200 round trips", ok);
	CHECK(sparse_small == 200, "sparse deltas are small: %u of 200",
	    sparse_small);

	/* The first and the last octet, and short gaps inside a run. */
	fill(old, PAGE);
	memcpy(nw, old, PAGE);
	nw[0] ^= 1;
	nw[PAGE - 1] ^= 1;
	CHECK(round_trip(old, nw, PAGE, &len) == 1 && len == 7,
	    "first and last octet: length %d (want 7: 0,1,x and 4094,1,y)", len);
	memcpy(nw, old, PAGE);
	nw[100] ^= 1;
	nw[102] ^= 1;	/* a gap of one octet: one literal run of 3 */
	CHECK(round_trip(old, nw, PAGE, &len) == 1 && len == 1 + 1 + 3,
	    "a short gap inside a run: length %d (want 5)", len);

	/* A limit the delta reaches exactly, and one octet below it. */
	CHECK(delta_encode(old, nw, PAGE, (uint8_t[8]){ 0 }, 5) == 5 &&
	    delta_encode(old, nw, PAGE, (uint8_t[8]){ 0 }, 4) == -1,
	    "max is honoured to the octet");
}

/* A malformed delta: check and apply refuse it and leave the page. */
static void
reject(const char *what, const uint8_t *d, uint32_t len, const char *needle)
{
	static uint8_t page[PAGE], copy[PAGE];
	char why[200] = "";
	int rc;

	fill(page, PAGE);
	memcpy(copy, page, PAGE);
	rc = delta_check(d, len, PAGE, why, sizeof why);
	CHECK(rc == -XP_EBODY && strstr(why, needle) != NULL,
	    "%s: check %d '%s' (want '%s')", what, rc, why, needle);
	why[0] = '\0';
	rc = delta_apply(page, PAGE, d, len, why, sizeof why);
	CHECK(rc == -XP_EBODY && strstr(why, needle) != NULL &&
	    memcmp(page, copy, PAGE) == 0,
	    "%s: apply %d '%s', page untouched", what, rc, why);
}

static void
test_malformed(void)
{
	/* skip 4095, copy 2: one octet beyond the page. */
	static const uint8_t over[] = { 0xff, 0x1f, 0x02, 0xaa, 0xbb };
	/* skip 4097. */
	static const uint8_t skip_over[] = { 0x81, 0x20, 0x01, 0xaa };
	/* the copy varint stops in the middle */
	static const uint8_t trunc1[] = { 0x05, 0x80 };
	/* a skip and no copy varint at all */
	static const uint8_t trunc2[] = { 0x05 };
	/* copy 3, two literal octets */
	static const uint8_t short_lit[] = { 0x00, 0x03, 0x01, 0x02 };
	/* skip 4094, copy 2 (to the end), then more */
	static const uint8_t trailing[] = { 0xfe, 0x1f, 0x02, 0x01, 0x02,
	    0x00 };
	/* copy 0 */
	static const uint8_t copy0[] = { 0x10, 0x00 };
	/* four-octet varint */
	static const uint8_t long_vi[] = { 0x81, 0x80, 0x80, 0x00, 0x01, 0x01 };
	/* 0x81 0x00 is 1, not minimal */
	static const uint8_t not_min[] = { 0x81, 0x00, 0x01, 0x01 };
	/* two good pairs, then a pair past the end */
	static const uint8_t later[] = { 0x01, 0x01, 0xaa, 0x02, 0x01, 0xbb,
	    0xff, 0x1f, 0x01, 0xcc };

	reject("overrun", over, sizeof over, "run beyond the page's 4096");
	reject("skip overrun", skip_over, sizeof skip_over,
	    "skips 4097 octets");
	reject("truncated varint", trunc1, sizeof trunc1,
	    "truncated varint at delta octet 1");
	reject("missing varint", trunc2, sizeof trunc2,
	    "truncated varint at delta octet 1");
	reject("short literal", short_lit, sizeof short_lit,
	    "3 literal octets, but only 2 remain");
	reject("trailing octets", trailing, sizeof trailing,
	    "1 trailing octets");
	reject("copy 0", copy0, sizeof copy0, "copies no octet");
	reject("long varint", long_vi, sizeof long_vi, "longer than 3");
	reject("non-minimal varint", not_min, sizeof not_min, "not minimal");
	reject("a later pair overruns", later, sizeof later,
	    "pair at delta octet 6");
}

/* ---- the record through the parser -------------------------------------- */

struct img {
	struct xp_stream st;
	struct xp_buf	 b;
};

static void
img_begin(struct img *im, enum xp_dialect d, int be)
{
	uint8_t cpuid[24] = { 0 };
	uint8_t *p;

	memset(im, 0, sizeof *im);
	stream_init(&im->st, d, be, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	p = buf_extend(&im->b, WIRE_IHDR_SIZE);
	header_image_put(&im->st, p);
	p = buf_extend(&im->b, header_domain_size(&im->st));
	header_domain_put(&im->st, p);
	CHECK(record_encode(&im->st, &im->b, REC_X86_CPUID_POLICY, cpuid,
	    sizeof cpuid, d == XP_DRAFTB ? WIRE_REC_OPT_CHECKSUM : 0) == 0,
	    "cpuid");
	CHECK(record_encode(&im->st, &im->b, REC_STATIC_DATA_END, NULL, 0,
	    d == XP_DRAFTB ? WIRE_REC_OPT_CHECKSUM : 0) == 0, "sde");
}

static void
img_put(struct img *im, uint32_t type, const uint8_t *body, uint32_t len)
{
	CHECK(record_encode(&im->st, &im->b, type, body, len,
	    im->st.dialect == XP_DRAFTB ? WIRE_REC_OPT_CHECKSUM : 0) == 0,
	    "record_encode %s", record_type_name(type));
}

struct got {
	unsigned	 n;
	struct delta_view v;
	uint8_t		 body[16384];
	struct xp_record rec;
};

static int
got_record(void *arg, const struct xp_stream *st, const struct xp_record *r)
{
	struct got *g = arg;

	if (r->type != REC_XMIG_DELTA_PAGES || r->length > sizeof g->body)
		return 0;
	g->n++;
	memcpy(g->body, r->body, r->length);
	g->rec = *r;
	g->rec.body = g->body;
	return delta_pages_view(st, &g->rec, &g->v) == 0 ? 0 : -XP_EBODY;
}

/* Parse the image with END appended: 0 or the error code; msg filled. */
static int
parse(struct img *im, struct got *g, char *msg, size_t msglen)
{
	struct xp_parser *p = parser_new(NULL, NULL, got_record, g);
	ssize_t r;
	int rc;

	img_put(im, REC_END, NULL, 0);
	r = parser_feed(p, im->b.data, im->b.len);
	rc = r < 0 ? (int)-r : parser_finish(p);
	if (rc < 0)
		rc = -rc;
	snprintf(msg, msglen, "%s", rc ? parser_error(p)->msg : "");
	parser_free(p);
	return rc;
}

/* A body of two deltas for pfns 5 and 9 (the second one empty). */
static uint32_t
two_deltas(int be, uint8_t *b, const uint8_t *d0, uint32_t l0)
{
	uint64_t pfns[2] = { 5, 9 };
	uint32_t lens[2] = { l0, 0 };

	CHECK(delta_pages_put(be, b, 2, pfns, lens) == 0, "put");
	memcpy(b + 8 + 24, d0, l0);
	return 8 + 24 + l0;
}

static void
test_record(void)
{
	static const uint8_t good[] = { 0x10, 0x02, 0xaa, 0xbb };
	static const uint8_t bad[] = { 0xff, 0x1f, 0x02, 0xaa, 0xbb };
	uint8_t b[256], x[256], y[256];
	struct got g;
	struct img im;
	char msg[400];
	uint32_t len;
	int be, rc;
	enum xp_dialect d;

	CHECK(strcmp(record_type_name(REC_XMIG_DELTA_PAGES),
	    "XMIG_DELTA_PAGES") == 0, "the record is named");
	for (d = XP_DRAFTB; d <= XP_XEN; d++) {
		for (be = 0; be <= (d == XP_DRAFTB); be++) {
			memset(&g, 0, sizeof g);
			img_begin(&im, d, be);
			len = two_deltas(be, b, good, sizeof good);
			img_put(&im, REC_XMIG_DELTA_PAGES, b, len);
			rc = parse(&im, &g, msg, sizeof msg);
			CHECK(rc == 0 && g.n == 1 && g.v.count == 2 &&
			    delta_view_pfn(&g.v, 0) == 5 &&
			    delta_view_pfn(&g.v, 1) == 9 &&
			    delta_view_len(&g.v, 0) == sizeof good &&
			    delta_view_len(&g.v, 1) == 0 &&
			    g.v.data_len == sizeof good &&
			    memcmp(g.v.data, good, sizeof good) == 0,
			    "dialect %d be %d: accepted and viewed (%d %s)",
			    d, be, rc, msg);
			buf_free(&im.b);
		}
	}

	/* A malformed delta: XP_EBODY naming the record, entry and pfn. */
	memset(&g, 0, sizeof g);
	img_begin(&im, XP_DRAFTB, 0);
	len = two_deltas(0, b, bad, sizeof bad);
	img_put(&im, REC_XMIG_DELTA_PAGES, b, len);
	rc = parse(&im, &g, msg, sizeof msg);
	CHECK(rc == XP_EBODY && strstr(msg, "record 2 (XMIG_DELTA_PAGES)") &&
	    strstr(msg, "delta 0 (pfn 0x5)") && strstr(msg, "beyond"),
	    "overrun refused: %d %s", rc, msg);
	buf_free(&im.b);

	/* Lengths that do not add up; reserved; count; pfn bits; order. */
	{
		static const struct {
			const char *what;
			unsigned at, size;
			uint32_t val;
			int code;
			const char *needle;
		} cases[] = {
			{ "count 0", 0, 4, 0, XP_EBODY, "count is 0" },
			{ "reserved", 4, 4, 1, XP_EBODY, "reserved field" },
			{ "pfn type bits", 8 + 4, 4, 0x10000000u, XP_EBODY,
			    "bits 63-52" },
			{ "delta_length too long", 8 + 16, 4, 5, XP_EBODY,
			    "is not" },
			{ "delta_length above a page", 8 + 16, 4, 5000,
			    XP_EBODY, "above the page size" },
		};
		size_t i;

		for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			memset(&g, 0, sizeof g);
			img_begin(&im, XP_DRAFTB, 0);
			len = two_deltas(0, b, good, sizeof good);
			if (cases[i].size == 4)
				xp_put32(0, b + cases[i].at, cases[i].val);
			img_put(&im, REC_XMIG_DELTA_PAGES, b, len);
			rc = parse(&im, &g, msg, sizeof msg);
			CHECK(rc == cases[i].code && strstr(msg,
			    "XMIG_DELTA_PAGES") && strstr(msg,
			    cases[i].needle), "%s: %d %s", cases[i].what, rc,
			    msg);
			buf_free(&im.b);
		}
	}

	/* Before STATIC_DATA_END: out of order. */
	{
		uint8_t *p;

		memset(&im, 0, sizeof im);
		stream_init(&im.st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM,
		    12);
		p = buf_extend(&im.b, WIRE_IHDR_SIZE);
		header_image_put(&im.st, p);
		p = buf_extend(&im.b, header_domain_size(&im.st));
		header_domain_put(&im.st, p);
		len = two_deltas(0, b, good, sizeof good);
		img_put(&im, REC_XMIG_DELTA_PAGES, b, len);
		memset(&g, 0, sizeof g);
		rc = parse(&im, &g, msg, sizeof msg);
		CHECK(rc == XP_EORDER && strstr(msg, "XMIG_DELTA_PAGES"),
		    "before STATIC_DATA_END: %d %s", rc, msg);
		buf_free(&im.b);
	}

	/* Byte order: both ways, deltas untouched. */
	len = two_deltas(0, b, good, sizeof good);
	CHECK(body_reorder(REC_XMIG_DELTA_PAGES, b, len, 0, 1, x) == 0 &&
	    xp_get32(1, x) == 2 && xp_get64(1, x + 8) == 5 &&
	    xp_get64(1, x + 16) == 9 && xp_get32(1, x + 24) == sizeof good &&
	    memcmp(x + 32, good, sizeof good) == 0 &&
	    body_reorder(REC_XMIG_DELTA_PAGES, x, len, 1, 0, y) == 0 &&
	    memcmp(y, b, len) == 0, "reorder round trip");
	CHECK(body_reorder(REC_XMIG_DELTA_PAGES, b, 8 + 12, 0, 1, x) ==
	    -XP_EBODY, "reorder: too short for the count");

	/* The head writer's refusals. */
	{
		uint64_t pfns[1] = { 1ULL << 52 };
		uint32_t lens[1] = { 0 };

		CHECK(delta_pages_put(0, b, 0, pfns, lens) == -XP_EINVAL,
		    "count 0");
		CHECK(delta_pages_put(0, b, 1, pfns, lens) == -XP_EINVAL,
		    "pfn too big");
		CHECK(delta_pages_put(0, b, WIRE_PAGE_DATA_MAX + 1, pfns,
		    lens) == -XP_EINVAL, "count too big");
	}
}

int
main(void)
{
	test_round_trips();
	test_malformed();
	test_record();
	return tap_done();
}
