/*
 * test-proto.c -- unit tests of the wire-format codec in proto/: round
 * trips of every record type in both dialects and byte orders, one test
 * per rejection path, truncation at every offset, every single-bit flip of
 * a checksummed image, chunking, pausing and error messages.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <zlib.h>

#include "proto.h"
#include "tap.h"

#define PAGE		4096u
#define MAXREC		64

/* ---- building images ---------------------------------------------------- */

struct img {
	struct xp_stream st;
	struct xp_buf	 b;
	uint16_t	 opts;		/* draft-B record options */
	size_t		 nrec;
	uint64_t	 roff[MAXREC];	/* offset of each record header */
	uint32_t	 rtype[MAXREC];
};

static void
img_begin_v(struct img *im, enum xp_dialect d, int be, uint32_t version,
    uint16_t arch, uint16_t type, uint16_t shift)
{
	uint8_t	*p;

	memset(im, 0, sizeof *im);
	stream_init(&im->st, d, be, arch, type, shift);
	if (version != 0)
		im->st.version = version;
	im->opts = d == XP_DRAFTB ? WIRE_REC_OPT_CHECKSUM : 0;
	p = buf_extend(&im->b, WIRE_IHDR_SIZE);
	header_image_put(&im->st, p);
	p = buf_extend(&im->b, header_domain_size(&im->st));
	header_domain_put(&im->st, p);
}

static void
img_begin(struct img *im, enum xp_dialect d, int be, uint16_t type)
{
	img_begin_v(im, d, be, 0, WIRE_ARCH_X86, type, 12);
}

static void
img_note(struct img *im, uint32_t type)
{
	if (im->nrec < MAXREC) {
		im->roff[im->nrec] = im->b.len;
		im->rtype[im->nrec] = type;
	}
	im->nrec++;
}

static void
img_put(struct img *im, uint32_t type, const void *body, uint32_t len)
{
	int	rv;

	img_note(im, type);
	rv = record_encode(&im->st, &im->b, type, body, len, im->opts);
	CHECK(rv == 0, "record_encode(%s, %u): %d", record_type_name(type),
	    len, rv);
}

static void
img_put_empty(struct img *im, uint32_t type)
{
	img_put(im, type, NULL, 0);
}

/* Forge a record: options as given, checksum good (crc = 0), bad (1),
 * zero (2); hres/pad: value of the header reserved octets / padding. */
static void
img_raw(struct img *im, uint32_t type, const void *body, uint32_t len,
    uint16_t opts, int crc, uint8_t hres, uint8_t pad)
{
	size_t		 hs = record_hdr_size(&im->st);
	size_t		 ts = record_trailer_size(&im->st, len);
	size_t		 padn = ts - (im->st.dialect == XP_XEN ? 0 : 8);
	uint8_t		*p;
	uint32_t	 sum;

	img_note(im, type);
	p = buf_extend(&im->b, hs + len + ts);
	record_hdr_put(&im->st, p, type, len, opts);
	if (im->st.dialect == XP_DRAFTB)
		memset(p + 10, hres, 6);
	if (len)
		memcpy(p + hs, body, len);
	memset(p + hs + len, pad, padn);
	if (im->st.dialect == XP_XEN)
		return;
	sum = crc32(0, p, (uInt)(hs + len + padn));
	if (crc == 1)
		sum ^= 0x10000;
	if (crc == 2)
		sum = 0;
	xp_put32(im->st.big_endian, p + hs + len + padn, sum);
}

static void
img_free(struct img *im)
{
	buf_free(&im->b);
}

/* ---- bodies ------------------------------------------------------------- */

static uint8_t *
body_new(struct xp_buf *b, size_t n)
{
	b->len = 0;
	return buf_extend(b, n);
}

static void
mk_pv_info(struct xp_buf *b, unsigned width, unsigned levels)
{
	uint8_t	*p = body_new(b, 8);

	p[0] = width;
	p[1] = levels;
}

static void
mk_p2m(struct xp_buf *b, int be, uint32_t start, uint32_t end, unsigned width)
{
	uint32_t	 fpp = PAGE / width, n = (end / fpp + 1) - start / fpp, i;
	uint8_t		*p = body_new(b, 8 + (size_t)n * 8);

	xp_put32(be, p, start);
	xp_put32(be, p + 4, end);
	for (i = 0; i < n; i++)
		xp_put64(be, p + 8 + i * 8, 0x100 + i);
}

static void
mk_vcpu(struct xp_buf *b, int be, uint32_t id, uint32_t blob)
{
	uint8_t		*p = body_new(b, 8 + (size_t)blob);
	uint32_t	 i;

	xp_put32(be, p, id);
	for (i = 0; i < blob; i++)
		p[8 + i] = (uint8_t)(i * 7 + id);
}

static void
mk_tsc(struct xp_buf *b, int be, uint32_t mode, uint32_t khz, uint64_t nsec,
    uint32_t inc)
{
	uint8_t	*p = body_new(b, 24);

	xp_put32(be, p, mode);
	xp_put32(be, p + 4, khz);
	xp_put64(be, p + 8, nsec);
	xp_put32(be, p + 16, inc);
}

static void
mk_hvm_params(struct xp_buf *b, int be, uint32_t count)
{
	uint8_t		*p = body_new(b, 8 + (size_t)count * 16);
	uint32_t	 i;

	xp_put32(be, p, count);
	for (i = 0; i < count; i++) {
		xp_put64(be, p + 8 + i * 16, i + 1);
		xp_put64(be, p + 16 + i * 16, 0x1000000000ULL * (i + 1) + 7);
	}
}

static void
mk_cpuid(struct xp_buf *b, int be, uint32_t n)
{
	uint8_t		*p = body_new(b, (size_t)n * 24);
	uint32_t	 i;

	for (i = 0; i < n * 6; i++)
		xp_put32(be, p + i * 4, 0x80000000u + i);
}

static void
mk_msr(struct xp_buf *b, int be, uint32_t n)
{
	uint8_t		*p = body_new(b, (size_t)n * 16);
	uint32_t	 i;

	for (i = 0; i < n; i++) {
		xp_put32(be, p + i * 16, 0xC0000080u + i);
		xp_put32(be, p + i * 16 + 4, i);
		xp_put64(be, p + i * 16 + 8, 0x0123456789ABCDEFULL + i);
	}
}

static void
mk_blob(struct xp_buf *b, uint32_t len, unsigned seed)
{
	uint8_t		*p = body_new(b, len);
	uint32_t	 i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed);
}

/* PAGE_DATA with count entries of the given types, pfns first_pfn + i. */
static void
mk_pages(struct xp_buf *b, int be, uint32_t count, const unsigned *types,
    uint64_t first_pfn, uint32_t page_size)
{
	uint64_t	 e[64];
	uint32_t	 i, ndata = 0;
	uint8_t		*p, *d;

	for (i = 0; i < count && i < 64; i++) {
		e[i] = body_pfn_entry(first_pfn + i, types ? types[i] : 0);
		if (body_page_type_has_data(types ? types[i] : 0))
			ndata++;
	}
	p = body_new(b, 8 + (size_t)count * 8 + (size_t)ndata * page_size);
	body_page_data_prefix_put(be, p, count, e);
	d = p + 8 + (size_t)count * 8;
	for (i = 0; i < ndata; i++)
		memset(d + (size_t)i * page_size, 0x30 + i, page_size);
}

/* Typical streams, every record type of their kind. */
static void
img_pv(struct img *im, enum xp_dialect d, int be, uint32_t version)
{
	static const unsigned	 types[6] = { PT_NOTAB, PT_L1TAB, PT_XTAB,
	    PT_L4PIN, PT_BROKEN, PT_XALLOC };
	struct xp_buf		 b = { 0 };

	img_begin_v(im, d, be, version, WIRE_ARCH_X86, WIRE_DOM_X86_PV, 12);
	mk_pv_info(&b, 8, 4);
	img_put(im, REC_X86_PV_INFO, b.data, b.len);
	if (version != 2) {
		mk_cpuid(&b, be, 3);
		img_put(im, REC_X86_CPUID_POLICY, b.data, b.len);
		mk_msr(&b, be, 2);
		img_put(im, REC_X86_MSR_POLICY, b.data, b.len);
		img_put_empty(im, REC_STATIC_DATA_END);
	}
	mk_p2m(&b, be, 0, 1023, 8);
	img_put(im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	mk_pages(&b, be, 6, types, 1000, PAGE);
	img_put(im, REC_PAGE_DATA, b.data, b.len);
	mk_pages(&b, be, 1, NULL, 1023, PAGE);
	img_put(im, REC_PAGE_DATA, b.data, b.len);
	mk_tsc(&b, be, 1, 2400000, 0x123456789ULL, 5);
	img_put(im, REC_X86_TSC_INFO, b.data, b.len);
	mk_blob(&b, PAGE, 1);
	img_put(im, REC_SHARED_INFO, b.data, b.len);
	mk_vcpu(&b, be, 0, WIRE_VCPU_BASIC_64);
	img_put(im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	mk_vcpu(&b, be, 0, 80);
	img_put(im, REC_X86_PV_VCPU_EXTENDED, b.data, b.len);
	mk_vcpu(&b, be, 0, 836);
	img_put(im, REC_X86_PV_VCPU_XSAVE, b.data, b.len);
	mk_vcpu(&b, be, 0, 48);
	img_put(im, REC_X86_PV_VCPU_MSRS, b.data, b.len);
	mk_vcpu(&b, be, 1, 0);		/* empty blobs: tolerated */
	img_put(im, REC_X86_PV_VCPU_EXTENDED, b.data, b.len);
	img_put(im, REC_X86_PV_VCPU_XSAVE, b.data, b.len);
	img_put(im, REC_X86_PV_VCPU_MSRS, b.data, b.len);
	img_put_empty(im, REC_VERIFY);
	mk_pages(&b, be, 1, NULL, 5, PAGE);
	img_put(im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(im, REC_END);
	buf_free(&b);
}

static void
img_hvm(struct img *im, enum xp_dialect d, int be, uint32_t version,
    uint16_t type)
{
	static const unsigned	 types[4] = { PT_NOTAB, PT_XTAB, PT_NOTAB,
	    PT_XALLOC };
	struct xp_buf		 b = { 0 };

	img_begin_v(im, d, be, version, WIRE_ARCH_X86, type, 12);
	if (version != 2) {
		mk_cpuid(&b, be, 4);
		img_put(im, REC_X86_CPUID_POLICY, b.data, b.len);
		mk_msr(&b, be, 3);
		img_put(im, REC_X86_MSR_POLICY, b.data, b.len);
		img_put_empty(im, REC_STATIC_DATA_END);
	}
	mk_pages(&b, be, 4, types, 0x12345, PAGE);
	img_put(im, REC_PAGE_DATA, b.data, b.len);
	mk_tsc(&b, be, 0, 3000000, 77, 1);
	img_put(im, REC_X86_TSC_INFO, b.data, b.len);
	mk_blob(&b, 1237, 3);
	img_put(im, REC_HVM_CONTEXT, b.data, b.len);
	mk_hvm_params(&b, be, 5);
	img_put(im, REC_HVM_PARAMS, b.data, b.len);
	img_put_empty(im, REC_CHECKPOINT);
	mk_pages(&b, be, 1, NULL, 7, PAGE);
	img_put(im, REC_PAGE_DATA, b.data, b.len);
	mk_hvm_params(&b, be, 0);	/* empty: tolerated */
	img_put(im, REC_HVM_PARAMS, b.data, b.len);
	mk_blob(&b, 9, 4);		/* context after params: accepted */
	img_put(im, REC_HVM_CONTEXT, b.data, b.len);
	img_put_empty(im, REC_CHECKPOINT);
	img_put_empty(im, REC_END);
	buf_free(&b);
}

/* ---- running the parser ------------------------------------------------- */

struct seen {
	uint64_t	 index, offset;
	uint32_t	 type, length, checksum, flags;
	uint16_t	 options;
	int		 known;
	size_t		 wire_len;
	uint8_t		*body;
	const uint8_t	*body_ptr;
	const uint8_t	*hdr_ptr;
};

struct collect {
	struct seen	*v;
	size_t		 n;
	int		 hdr_calls;
	struct xp_stream st;
	int		 pause;		/* XP_PAUSE after every record */
	int		 hpause;	/* XP_PAUSE from the header callback */
	int64_t		 fail_at;	/* index to fail at, or -1 */
	int		 fail_rv;
	int		 hfail_rv;
};

static void
collect_init(struct collect *c)
{
	memset(c, 0, sizeof *c);
	c->fail_at = -1;
}

static void
collect_free(struct collect *c)
{
	size_t	i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].body);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

static int
cb_header(void *arg, const struct xp_stream *st)
{
	struct collect	*c = arg;

	if (c == NULL)
		return 0;
	c->hdr_calls++;
	c->st = *st;
	if (c->hfail_rv)
		return c->hfail_rv;
	return c->hpause ? XP_PAUSE : 0;
}

static int
cb_record(void *arg, const struct xp_stream *st, const struct xp_record *r)
{
	struct collect	*c = arg;
	struct seen	*s;

	if (c == NULL)
		return 0;
	c->v = realloc(c->v, (c->n + 1) * sizeof *c->v);
	s = &c->v[c->n++];
	memset(s, 0, sizeof *s);
	s->index = r->index;
	s->offset = r->offset;
	s->type = r->type;
	s->length = r->length;
	s->checksum = r->checksum;
	s->flags = r->flags;
	s->options = r->options;
	s->known = r->known;
	s->wire_len = r->wire_len;
	s->body_ptr = r->body;
	s->hdr_ptr = r->hdr;
	s->body = malloc(r->length + 1);
	memcpy(s->body, r->body, r->length);
	if (c->fail_at >= 0 && (uint64_t)c->fail_at == r->index)
		return c->fail_rv;
	return c->pause ? XP_PAUSE : 0;
}

static uint32_t rnd_state = 0x2545F491;

static uint32_t
rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

#define CHUNK_WHOLE	0
#define CHUNK_RANDOM	((size_t)-1)

/* The next piece to feed of the `left` octets still to go. */
static size_t
chunk_len(size_t chunk, size_t left)
{
	size_t k;

	if (chunk == CHUNK_WHOLE)
		k = left;
	else if (chunk == CHUNK_RANDOM)
		k = (rnd() % 4) ? 1 + rnd() % 40 : 1 + rnd() % 9000;
	else
		k = chunk;
	return k < left ? k : left;
}

/*
 * Parse d[0..n) fed in chunks (CHUNK_WHOLE, a size, or CHUNK_RANDOM),
 * then finish.  Returns 0 or the negative error; *err gets the parser's.
 */
static int
run(const uint8_t *d, size_t n, size_t chunk, const struct xp_limits *lim,
    struct collect *c, struct xp_error *err)
{
	struct xp_parser	*p;
	size_t			 off = 0, k;
	ssize_t			 r;
	int			 rv = 0;

	p = parser_new(lim, cb_header, cb_record, c);
	if (p == NULL)
		return -XP_ENOMEM;
	while (off < n) {
		k = chunk_len(chunk, n - off);
		r = parser_feed(p, d + off, k);
		if (r < 0) {
			rv = (int)r;
			goto out;
		}
		if (r == 0) {
			rv = -XP_EINVAL;	/* no progress: a test bug */
			goto out;
		}
		off += (size_t)r;
	}
	rv = parser_finish(p);
out:
	if (err != NULL)
		*err = *parser_error(p);
	parser_free(p);
	return rv;
}

static int
same_seq(const struct collect *a, const struct collect *b)
{
	size_t	i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++) {
		const struct seen *x = &a->v[i], *y = &b->v[i];

		if (x->index != y->index || x->offset != y->offset ||
		    x->type != y->type || x->length != y->length ||
		    x->checksum != y->checksum || x->flags != y->flags ||
		    x->options != y->options || x->known != y->known ||
		    x->wire_len != y->wire_len ||
		    memcmp(x->body, y->body, x->length) != 0)
			return 0;
	}
	return 1;
}

/* Expect a rejection with code, and msg containing needle (printf). */
static void
reject_lim(const char *what, const struct img *im,
    const struct xp_limits *lim, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
reject_lim(const char *what, const struct img *im,
    const struct xp_limits *lim, int code, const char *fmt, ...)
{
	struct xp_error	e0, e1;
	char		needle[256] = "";
	va_list		ap;
	int		rv0, rv1;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(needle, sizeof needle, fmt, ap);
		va_end(ap);
	}
	rv0 = run(im->b.data, im->b.len, CHUNK_WHOLE, lim, NULL, &e0);
	CHECK(rv0 == -code && e0.code == code, "%s: got %d (%s), want -%d "
	    "(%s)", what, rv0, e0.msg, code, xp_strerror(code));
	CHECK(strstr(e0.msg, needle) != NULL, "%s: message \"%s\" lacks "
	    "\"%s\"", what, e0.msg, needle);
	rv1 = run(im->b.data, im->b.len, 1, lim, NULL, &e1);
	CHECK(rv1 == rv0 && strcmp(e0.msg, e1.msg) == 0 &&
	    e0.index == e1.index && e0.offset == e1.offset &&
	    e0.type == e1.type, "%s: 1-octet chunks: %d \"%s\" vs %d \"%s\"",
	    what, rv1, e1.msg, rv0, e0.msg);
}

#define reject(what, im, code, ...) \
	reject_lim(what, im, NULL, code, __VA_ARGS__)

static void
accept_lim(const char *what, const struct img *im,
    const struct xp_limits *lim)
{
	struct xp_error	e;
	int		rv;

	rv = run(im->b.data, im->b.len, CHUNK_WHOLE, lim, NULL, &e);
	CHECK(rv == 0, "%s: rejected: %d %s", what, rv, e.msg);
	rv = run(im->b.data, im->b.len, 1, lim, NULL, &e);
	CHECK(rv == 0, "%s: 1-octet chunks: rejected: %d %s", what, rv, e.msg);
}

#define accept(what, im) accept_lim(what, im, NULL)

/* Prefix naming record k of an image: "record K (TYPE) at offset X: ". */
static const char *
where(const struct img *im, size_t k)
{
	static char	s[128];

	snprintf(s, sizeof s, "record %zu (%s) at offset %" PRIu64 ": ", k,
	    record_type_name(im->rtype[k]), im->roff[k]);
	return s;
}

/* ---- tests: primitives -------------------------------------------------- */

static void
test_primitives(void)
{
	struct xp_stream	 st;
	struct xp_error		 e;
	struct xp_buf		 b = { 0 };
	uint8_t			 h[24], d[16], *p;
	int			 i;
	const char		*s;

	/* Byte-order helpers. */
	xp_put64(1, h, 0x0102030405060708ULL);
	CHECK(h[0] == 1 && h[7] == 8, "put64 be");
	CHECK(xp_get64(1, h) == 0x0102030405060708ULL, "get64 be");
	xp_put64(0, h, 0x0102030405060708ULL);
	CHECK(h[0] == 8 && h[7] == 1, "put64 le");
	CHECK(xp_get64(0, h) == 0x0102030405060708ULL, "get64 le");
	xp_put16(1, h, 0xA1B2);
	CHECK(h[0] == 0xA1 && xp_get16(1, h) == 0xA1B2, "16 be");
	xp_put16(0, h, 0xA1B2);
	CHECK(h[0] == 0xB2 && xp_get16(0, h) == 0xA1B2, "16 le");

	/* Buffers. */
	CHECK(buf_append(&b, "abc", 3) == 0 && b.len == 3, "append");
	p = buf_extend(&b, 1000);
	CHECK(p != NULL && b.len == 1003 && p[999] == 0, "extend");
	CHECK(memcmp(b.data, "abc", 3) == 0, "content kept");
	CHECK(buf_reserve(&b, SIZE_MAX) == -XP_ENOMEM, "overflow refused");
	buf_free(&b);
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0, "freed");
	p = buf_extend(&b, 0);
	CHECK(p != NULL && b.len == 0, "extend 0 on empty");
	buf_free(&b);

	/* Error strings. */
	for (i = 0; i < XP_E_MAX; i++) {
		s = xp_strerror(-i);
		CHECK(s != NULL && strcmp(s, "unknown error") != 0,
		    "strerror(%d)", i);
		CHECK(strcmp(s, xp_strerror(i)) == 0, "sign of %d", i);
	}
	CHECK(strcmp(xp_strerror(XP_E_MAX), "unknown error") == 0, "max");
	CHECK(strcmp(xp_strerror(-1000), "unknown error") == 0, "-1000");
	CHECK(strcmp(xp_strerror(-2147483647 - 1), "unknown error") == 0,
	    "INT_MIN");

	/* Type names. */
	CHECK(strcmp(record_type_name(REC_PAGE_DATA), "PAGE_DATA") == 0, "n");
	CHECK(strcmp(record_type_name(REC_X86_MSR_POLICY),
	    "X86_MSR_POLICY") == 0, "msr name");
	CHECK(strcmp(record_type_name(0x13), "UNKNOWN_0x13") == 0, "unk");
	CHECK(strcmp(record_type_name(0x80001234), "OPTIONAL_0x80001234") ==
	    0, "opt");
	for (i = 0; i < REC_NR_MANDATORY; i++)
		CHECK(record_type_known((uint32_t)i), "known %d", i);
	CHECK(!record_type_known(0x13) && !record_type_known(0x80000000),
	    "unknown types");

	/* Framing sizes. */
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_PV, 12);
	CHECK(record_hdr_size(&st) == 16, "draft-B header");
	CHECK(record_trailer_size(&st, 0) == 8, "t0");
	CHECK(record_trailer_size(&st, 1) == 15, "t1");
	CHECK(record_trailer_size(&st, 8) == 8, "t8");
	CHECK(record_wire_size(&st, 12) == 16 + 12 + 4 + 8, "w12");
	stream_init(&st, XP_XEN, 1, WIRE_ARCH_X86, WIRE_DOM_X86_PVH, 12);
	CHECK(st.version == 3 && !st.big_endian, "Xen: v3 LE");
	CHECK(st.dom_type == WIRE_DOM_X86_HVM, "PVH is HVM in Xen");
	CHECK(record_hdr_size(&st) == 8, "Xen header");
	CHECK(record_trailer_size(&st, 0) == 0 && record_trailer_size(&st, 3)
	    == 5, "Xen padding");
	CHECK(record_wire_size(&st, 4096) == 4104, "Xen wire");

	/* Headers. */
	st.xen_major = 4;
	st.xen_minor = 17;
	header_image_put(&st, h);
	CHECK(memcmp(h, "\xff\xff\xff\xff\xff\xff\xff\xff" "XENF"
	    "\0\0\0\3\0\0\0\0\0\0\0\0", 24) == 0, "Xen image header");
	CHECK(header_domain_size(&st) == 16, "Xen dhdr size");
	CHECK(header_domain_put(&st, d) == 16, "dhdr put");
	CHECK(memcmp(d, "\2\0\0\0\x0c\0\0\0\4\0\0\0\x11\0\0\0", 16) == 0,
	    "Xen domain header (PVH as HVM, 4.17)");
	st.dom_type = WIRE_DOM_X86_PVH;	/* by hand: still written as HVM */
	header_domain_put(&st, d);
	CHECK(d[0] == 2, "PVH mapped by header_domain_put");

	stream_init(&st, XP_DRAFTB, 1, WIRE_ARCH_X86, WIRE_DOM_X86_PVH, 12);
	st.ihdr_options |= WIRE_IHDR_OPT_BACKCHANNEL | 0x8000;
	header_image_put(&st, h);
	CHECK(memcmp(h + 8, "XENF\0\0\0\1\0\3\0\0\0\0\0\0", 16) == 0,
	    "draft-B BE image header, back-channel, reserved bits dropped");
	CHECK(header_domain_put(&st, d) == 8, "draft-B dhdr");
	CHECK(memcmp(d, "\0\1\0\3\0\x0c\0\0", 8) == 0, "draft-B BE PVH");

	/* stream_check */
	stream_init(&st, XP_XEN, 0, WIRE_ARCH_ARM, 0, 12);
	CHECK(stream_check(&st, &e) == -XP_EHEADER && e.code == XP_EHEADER &&
	    strstr(e.msg, "Xen dialect") != NULL, "ARM in Xen: %s", e.msg);
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_ARM, 0, 16);
	CHECK(stream_check(&st, NULL) == 0, "ARM 64K draft-B");
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_ARM, 0, 13);
	CHECK(stream_check(&st, NULL) == -XP_EHEADER, "ARM shift 13");
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_PV, 16);
	CHECK(stream_check(&st, NULL) == -XP_EHEADER, "x86 shift 16");
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_PVH, 12);
	CHECK(stream_check(&st, NULL) == 0, "PVH draft-B");

	/* Encoder refusals. */
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_PV, 12);
	CHECK(record_encode(&st, &b, REC_TOOLSTACK, "x", 1, 0) ==
	    -XP_EINVAL, "TOOLSTACK is never written");
	CHECK(record_encode(&st, &b, REC_END, NULL, 0, 0x0002) == -XP_EINVAL,
	    "unknown option bit refused");
	CHECK(record_encode(&st, &b, REC_HVM_CONTEXT, NULL, 4, 0) ==
	    -XP_EINVAL, "NULL body");
	CHECK(record_encode(&st, &b, REC_HVM_CONTEXT, h, WIRE_REC_LENGTH_MAX +
	    1, 0) == -XP_ETOOBIG, "too long");
	CHECK(b.len == 0, "nothing written on refusal");

	/* Draft-B framing and checksum, by hand. */
	CHECK(record_encode(&st, &b, REC_HVM_CONTEXT, "hello", 5,
	    WIRE_REC_OPT_CHECKSUM) == 0, "encode");
	CHECK(b.len == 16 + 5 + 3 + 8, "size %zu", b.len);
	CHECK(xp_get32(0, b.data) == REC_HVM_CONTEXT &&
	    xp_get32(0, b.data + 4) == 5 && xp_get16(0, b.data + 8) == 1,
	    "header fields");
	CHECK(memcmp(b.data + 16, "hello\0\0\0", 8) == 0, "body + padding");
	CHECK(xp_get32(0, b.data + 24) == crc32(0, b.data, 24),
	    "CRC over header, body and padding");
	CHECK(xp_get32(0, b.data + 28) == 0, "footer reserved");
	b.len = 0;
	CHECK(record_encode(&st, &b, REC_HVM_CONTEXT, "hello", 5, 0) == 0 &&
	    xp_get32(0, b.data + 24) == 0, "no checksum: 0");
	buf_free(&b);

	/* PAGE_DATA helpers. */
	CHECK(body_pfn_entry(0x123, PT_L2PIN) == 0xA000000000000123ULL, "pfn");
	CHECK(body_pfn_entry(~0ULL, PT_NOTAB) == WIRE_PFN_MASK, "pfn mask");
	for (i = 0; i < 16; i++)
		CHECK(body_page_type_has_data((unsigned)i) ==
		    (i <= 4 || (i >= 9 && i <= 12)), "has_data %d", i);
}

/* ---- tests: round trips ------------------------------------------------- */

/* Fields of a parsed record decoded and compared with the builders'. */
static void
check_fields(const char *what, const struct xp_stream *st,
    const struct seen *s)
{
	int		 be = st->big_endian;
	const uint8_t	*b = s->body;
	uint32_t	 i, n;

	switch (s->type) {
	case REC_X86_PV_INFO:
		CHECK(b[0] == 8 && b[1] == 4, "%s: pv_info", what);
		break;
	case REC_X86_PV_P2M_FRAMES:
		CHECK(xp_get32(be, b) == 0 && xp_get32(be, b + 4) == 1023,
		    "%s: p2m range", what);
		CHECK(xp_get64(be, b + 8) == 0x100 && xp_get64(be, b + 16) ==
		    0x101, "%s: p2m pfns", what);
		break;
	case REC_X86_TSC_INFO:
		if (st->dom_type == WIRE_DOM_X86_PV)
			CHECK(xp_get32(be, b) == 1 && xp_get32(be, b + 4) ==
			    2400000 && xp_get64(be, b + 8) == 0x123456789ULL &&
			    xp_get32(be, b + 16) == 5, "%s: tsc", what);
		else
			CHECK(xp_get32(be, b) == 0 && xp_get32(be, b + 4) ==
			    3000000 && xp_get64(be, b + 8) == 77 &&
			    xp_get32(be, b + 16) == 1, "%s: tsc", what);
		break;
	case REC_HVM_PARAMS:
		n = xp_get32(be, b);
		CHECK(s->length == 8 + n * 16, "%s: params length", what);
		for (i = 0; i < n; i++)
			CHECK(xp_get64(be, b + 8 + i * 16) == i + 1 &&
			    xp_get64(be, b + 16 + i * 16) ==
			    0x1000000000ULL * (i + 1) + 7, "%s: param %u",
			    what, i);
		break;
	case REC_X86_CPUID_POLICY:
		for (i = 0; i < s->length / 4; i++)
			CHECK(xp_get32(be, b + i * 4) == 0x80000000u + i,
			    "%s: cpuid word %u", what, i);
		break;
	case REC_X86_MSR_POLICY:
		for (i = 0; i < s->length / 16; i++)
			CHECK(xp_get32(be, b + i * 16) == 0xC0000080u + i &&
			    xp_get32(be, b + i * 16 + 4) == i &&
			    xp_get64(be, b + i * 16 + 8) ==
			    0x0123456789ABCDEFULL + i, "%s: msr %u", what, i);
		break;
	case REC_X86_PV_VCPU_BASIC:
	case REC_X86_PV_VCPU_EXTENDED:
	case REC_X86_PV_VCPU_XSAVE:
	case REC_X86_PV_VCPU_MSRS:
		CHECK(xp_get32(be, b) <= 1 && xp_get32(be, b + 4) == 0,
		    "%s: vcpu header", what);
		break;
	case REC_PAGE_DATA:
		n = xp_get32(be, b);
		CHECK(n >= 1 && xp_get32(be, b + 4) == 0, "%s: count", what);
		if (n == 6) {
			CHECK(xp_get64(be, b + 8) == body_pfn_entry(1000,
			    PT_NOTAB) && xp_get64(be, b + 8 + 3 * 8) ==
			    body_pfn_entry(1003, PT_L4PIN), "%s: pfns", what);
			CHECK(s->length == 8 + 6 * 8 + 3 * PAGE, "%s: 3 pages",
			    what);
		}
		break;
	}
}

/* Canonical (little-endian) form of a body, for cross-order comparison. */
static uint8_t *
canon(const struct xp_stream *st, const struct seen *s)
{
	uint8_t	*o = malloc(s->length + 1);
	int	 rv;

	rv = body_reorder(s->type, s->body, s->length, st->big_endian, 0, o);
	CHECK(rv == 0, "reorder %s: %d", record_type_name(s->type), rv);
	return o;
}

static void
test_roundtrip(void)
{
	struct {
		const char	*name;
		enum xp_dialect	 d;
		int		 be;
		uint32_t	 version;
		uint16_t	 type;
	} const cases[] = {
		{ "PV draft-B LE", XP_DRAFTB, 0, 0, WIRE_DOM_X86_PV },
		{ "PV draft-B BE", XP_DRAFTB, 1, 0, WIRE_DOM_X86_PV },
		{ "PV Xen v3", XP_XEN, 0, 0, WIRE_DOM_X86_PV },
		{ "PV Xen v2", XP_XEN, 0, 2, WIRE_DOM_X86_PV },
		{ "HVM draft-B LE", XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM },
		{ "HVM draft-B BE", XP_DRAFTB, 1, 0, WIRE_DOM_X86_HVM },
		{ "PVH draft-B BE", XP_DRAFTB, 1, 0, WIRE_DOM_X86_PVH },
		{ "HVM Xen v3", XP_XEN, 0, 0, WIRE_DOM_X86_HVM },
		{ "HVM Xen v2", XP_XEN, 0, 2, WIRE_DOM_X86_HVM },
	};
	struct collect	ref[2];
	size_t		c, i, j;
	int		kind;

	for (kind = 0; kind < 2; kind++) {
		collect_init(&ref[kind]);
	}
	for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct img	im;
		struct collect	col;
		struct xp_error	e;
		const char	*what = cases[c].name;
		int		 rv;

		if (cases[c].type == WIRE_DOM_X86_PV)
			img_pv(&im, cases[c].d, cases[c].be, cases[c].version);
		else
			img_hvm(&im, cases[c].d, cases[c].be,
			    cases[c].version, cases[c].type);
		collect_init(&col);
		rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &col, &e);
		CHECK(rv == 0, "%s: %d %s", what, rv, e.msg);
		CHECK(col.hdr_calls == 1, "%s: header callback once", what);
		CHECK(col.st.dialect == cases[c].d && col.st.big_endian ==
		    cases[c].be && col.st.version == (cases[c].version ?
		    cases[c].version : cases[c].d == XP_XEN ? 3u : 1u),
		    "%s: stream", what);
		CHECK(col.st.arch == WIRE_ARCH_X86 && col.st.page_shift == 12,
		    "%s: arch", what);
		CHECK(col.st.dom_type == (cases[c].d == XP_XEN &&
		    cases[c].type == WIRE_DOM_X86_PVH ? WIRE_DOM_X86_HVM :
		    cases[c].type), "%s: dom type", what);
		CHECK(col.n == im.nrec, "%s: %zu records, want %zu", what,
		    col.n, im.nrec);
		for (i = 0; i < col.n && i < im.nrec; i++) {
			const struct seen *s = &col.v[i];

			CHECK(s->index == i && s->offset == im.roff[i] &&
			    s->type == im.rtype[i] && s->known,
			    "%s: record %zu", what, i);
			CHECK(s->wire_len == record_wire_size(&col.st,
			    s->length), "%s: wire_len", what);
			CHECK(s->options == (cases[c].d == XP_DRAFTB ?
			    WIRE_REC_OPT_CHECKSUM : 0), "%s: options", what);
			CHECK(cases[c].d == XP_XEN ? s->checksum == 0 :
			    s->checksum == xp_get32(cases[c].be, im.b.data +
			    im.roff[i] + s->wire_len - 8), "%s: checksum",
			    what);
			CHECK(memcmp(s->body, im.b.data + im.roff[i] +
			    record_hdr_size(&col.st), s->length) == 0,
			    "%s: body", what);
			check_fields(what, &col.st, s);
			/* SDE inferred exactly at the first P2M/PAGE_DATA. */
			j = cases[c].type == WIRE_DOM_X86_PV ? 1 : 0;
			CHECK(s->flags == ((cases[c].version == 2 && i == j) ?
			    XP_REC_SDE_INFERRED : 0u), "%s: flags of %zu",
			    what, i);
		}

		/* Same logical content whatever the byte order. */
		kind = cases[c].type == WIRE_DOM_X86_PV ? 0 : 1;
		if (cases[c].d == XP_DRAFTB && cases[c].type !=
		    WIRE_DOM_X86_PVH) {
			if (ref[kind].n == 0) {
				ref[kind] = col;
				for (i = 0; i < col.n; i++) {
					uint8_t *o = canon(&col.st, &col.v[i]);

					free(col.v[i].body);
					ref[kind].v[i].body = o;
				}
				img_free(&im);
				continue;
			}
			CHECK(ref[kind].n == col.n, "%s: count vs LE", what);
			for (i = 0; i < col.n && i < ref[kind].n; i++) {
				uint8_t *o = canon(&col.st, &col.v[i]);

				CHECK(memcmp(o, ref[kind].v[i].body,
				    col.v[i].length) == 0 && col.v[i].length ==
				    ref[kind].v[i].length,
				    "%s: record %zu differs from LE", what, i);
				free(o);
			}
		}
		collect_free(&col);
		img_free(&im);
	}
	collect_free(&ref[0]);
	collect_free(&ref[1]);
}

/* Every structured body: LE -> BE -> LE is the identity, in place too. */
static void
test_reorder(void)
{
	struct xp_buf	 b = { 0 };
	uint8_t		*x, *y;
	uint32_t	 t;
	int		 rv;

	for (t = 0; t < REC_NR_MANDATORY + 1; t++) {
		uint32_t type = t == REC_NR_MANDATORY ? 0x80000123u : t;

		switch (type) {
		case REC_PAGE_DATA:
			mk_pages(&b, 0, 2, NULL, 9, PAGE);
			break;
		case REC_X86_PV_P2M_FRAMES:
			mk_p2m(&b, 0, 0, 2047, 8);
			break;
		case REC_X86_PV_VCPU_BASIC:
		case REC_X86_PV_VCPU_EXTENDED:
		case REC_X86_PV_VCPU_XSAVE:
		case REC_X86_PV_VCPU_MSRS:
			mk_vcpu(&b, 0, 3, 64);
			break;
		case REC_X86_TSC_INFO:
			mk_tsc(&b, 0, 1, 2, 3, 4);
			break;
		case REC_HVM_PARAMS:
			mk_hvm_params(&b, 0, 3);
			break;
		case REC_X86_CPUID_POLICY:
			mk_cpuid(&b, 0, 2);
			break;
		case REC_X86_MSR_POLICY:
			mk_msr(&b, 0, 2);
			break;
		case REC_CHECKPOINT_DIRTY_PFN_LIST:
			mk_blob(&b, 64, 9);
			break;
		default:
			mk_blob(&b, 40, (unsigned)t);
			break;
		}
		x = malloc(b.len + 1);
		y = malloc(b.len + 1);
		rv = body_reorder(type, b.data, (uint32_t)b.len, 0, 1, x);
		CHECK(rv == 0, "reorder %s", record_type_name(type));
		rv = body_reorder(type, x, (uint32_t)b.len, 1, 0, y);
		CHECK(rv == 0 && memcmp(y, b.data, b.len) == 0,
		    "reorder back %s", record_type_name(type));
		rv = body_reorder(type, y, (uint32_t)b.len, 0, 1, y);
		CHECK(rv == 0 && memcmp(y, x, b.len) == 0, "in place %s",
		    record_type_name(type));
		free(x);
		free(y);
	}

	/* Specific fields really swapped. */
	mk_tsc(&b, 0, 0x01020304, 0x05060708, 0x1122334455667788ULL,
	    0x0A0B0C0D);
	x = malloc(24);
	body_reorder(REC_X86_TSC_INFO, b.data, 24, 0, 1, x);
	CHECK(xp_get32(1, x) == 0x01020304 && xp_get32(1, x + 4) ==
	    0x05060708 && xp_get64(1, x + 8) == 0x1122334455667788ULL &&
	    xp_get32(1, x + 16) == 0x0A0B0C0D, "tsc swapped");
	free(x);
	mk_pages(&b, 0, 2, NULL, 9, PAGE);
	x = malloc(b.len);
	body_reorder(REC_PAGE_DATA, b.data, (uint32_t)b.len, 0, 1, x);
	CHECK(xp_get32(1, x) == 2 && xp_get64(1, x + 16) == 10 &&
	    memcmp(x + 24, b.data + 24, b.len - 24) == 0,
	    "page data: header swapped, pages untouched");
	free(x);
	mk_pv_info(&b, 8, 4);
	x = malloc(8);
	body_reorder(REC_X86_PV_INFO, b.data, 8, 0, 1, x);
	CHECK(memcmp(x, b.data, 8) == 0, "pv_info: octets");
	free(x);

	/* Layout mismatches refused, output untouched. */
	x = malloc(64);
	memset(x, 0xEE, 64);
	CHECK(body_reorder(REC_X86_TSC_INFO, b.data, 8, 0, 1, x) == -XP_EBODY &&
	    x[0] == 0xEE, "tsc 8");
	CHECK(body_reorder(REC_PAGE_DATA, b.data, 4, 0, 1, x) == -XP_EBODY,
	    "page data 4");
	mk_pages(&b, 0, 2, NULL, 9, PAGE);
	CHECK(body_reorder(REC_PAGE_DATA, b.data, 20, 0, 1, x) == -XP_EBODY,
	    "page data short of its entries");
	CHECK(body_reorder(REC_X86_CPUID_POLICY, b.data, 25, 0, 1, x) ==
	    -XP_EBODY, "cpuid 25");
	CHECK(body_reorder(REC_X86_MSR_POLICY, b.data, 24, 0, 1, x) ==
	    -XP_EBODY, "msr 24");
	CHECK(body_reorder(REC_HVM_PARAMS, b.data, 24, 0, 1, x) == -XP_EBODY,
	    "params count mismatch");
	CHECK(body_reorder(REC_X86_PV_VCPU_BASIC, b.data, 4, 0, 1, x) ==
	    -XP_EBODY, "vcpu 4");
	CHECK(body_reorder(REC_X86_PV_P2M_FRAMES, b.data, 12, 0, 1, x) ==
	    -XP_EBODY, "p2m 12");
	CHECK(body_reorder(REC_CHECKPOINT_DIRTY_PFN_LIST, b.data, 12, 0, 1, x)
	    == -XP_EBODY, "dirty 12");
	free(x);
	buf_free(&b);
}

/*
 * Re-frame an image into another dialect/byte order with the primitives,
 * the way a converter would: bodies reordered, Xen gets no optional or
 * TOOLSTACK records, a v2 input gets STATIC_DATA_END where inferred.
 */
struct reframe {
	struct xp_stream	 out;
	struct xp_buf		 b;
	uint8_t			*tmp;
	int			 rv;
};

static int
reframe_hdr(void *arg, const struct xp_stream *st)
{
	struct reframe	*rf = arg;
	uint8_t		*p;

	rf->out.arch = st->arch;
	rf->out.dom_type = rf->out.dialect == XP_XEN &&
	    st->dom_type == WIRE_DOM_X86_PVH ? WIRE_DOM_X86_HVM : st->dom_type;
	rf->out.page_shift = st->page_shift;
	if (stream_check(&rf->out, NULL) != 0)
		return -XP_EHEADER;
	p = buf_extend(&rf->b, WIRE_IHDR_SIZE);
	header_image_put(&rf->out, p);
	p = buf_extend(&rf->b, header_domain_size(&rf->out));
	header_domain_put(&rf->out, p);
	return 0;
}

static int
reframe_rec(void *arg, const struct xp_stream *st, const struct xp_record *r)
{
	struct reframe	*rf = arg;
	uint16_t	 opts = rf->out.dialect == XP_DRAFTB ?
			    WIRE_REC_OPT_CHECKSUM : 0;
	int		 rv;

	if (rf->out.dialect == XP_XEN && (!r->known ||
	    (r->type & WIRE_REC_OPTIONAL) || r->type == REC_TOOLSTACK))
		return 0;
	if (r->flags & XP_REC_SDE_INFERRED) {
		rv = record_encode(&rf->out, &rf->b, REC_STATIC_DATA_END, NULL,
		    0, opts);
		if (rv != 0)
			return rv;
	}
	free(rf->tmp);
	rf->tmp = malloc(r->length + 1);
	rv = body_reorder(r->type, r->body, r->length, st->big_endian,
	    rf->out.big_endian, rf->tmp);
	if (rv != 0)
		return rv;
	return record_encode(&rf->out, &rf->b, r->type, rf->tmp, r->length,
	    opts);
}

static int
reframe(const struct xp_buf *in, enum xp_dialect d, int be,
    struct xp_buf *out)
{
	struct reframe		 rf;
	struct xp_parser	*p;
	ssize_t			 r;
	int			 rv;

	memset(&rf, 0, sizeof rf);
	stream_init(&rf.out, d, be, 0, 0, 0);
	p = parser_new(NULL, reframe_hdr, reframe_rec, &rf);
	r = parser_feed(p, in->data, in->len);
	rv = r < 0 ? (int)r : (size_t)r != in->len ? -XP_ETRAILING :
	    parser_finish(p);
	parser_free(p);
	free(rf.tmp);
	*out = rf.b;
	return rv;
}

static void
test_conversion(void)
{
	struct img	im;
	struct xp_buf	x = { 0 }, y = { 0 }, z = { 0 };
	struct xp_error	e;
	struct collect	col;
	size_t		i;
	int		rv, be, k;

	for (k = 0; k < 4; k++) {
		be = k & 1;
		if (k < 2)
			img_pv(&im, XP_DRAFTB, be, 0);
		else
			img_hvm(&im, XP_DRAFTB, be, 0, WIRE_DOM_X86_HVM);
		rv = reframe(&im.b, XP_XEN, 0, &x);
		CHECK(rv == 0, "draft-B -> Xen %d: %d", k, rv);
		CHECK(run(x.data, x.len, 7, NULL, NULL, &e) == 0,
		    "Xen output parses: %s", e.msg);
		rv = reframe(&x, XP_DRAFTB, be, &y);
		CHECK(rv == 0, "Xen -> draft-B %d: %d", k, rv);
		CHECK(y.len == im.b.len && memcmp(y.data, im.b.data, y.len) ==
		    0, "draft-B -> Xen -> draft-B is byte-identical (%d)", k);
		buf_free(&x);
		buf_free(&y);
		img_free(&im);
	}

	/* Xen v2 -> v3 gets STATIC_DATA_END where it was inferred. */
	for (k = 0; k < 2; k++) {
		if (k == 0)
			img_pv(&im, XP_XEN, 0, 2);
		else
			img_hvm(&im, XP_XEN, 0, 2, WIRE_DOM_X86_HVM);
		rv = reframe(&im.b, XP_XEN, 0, &x);
		CHECK(rv == 0, "v2 -> v3: %d", rv);
		collect_init(&col);
		rv = run(x.data, x.len, CHUNK_WHOLE, NULL, &col, &e);
		CHECK(rv == 0 && col.st.version == 3, "v3 output: %s", e.msg);
		for (i = 0; i < col.n; i++) {
			if (col.v[i].type == REC_STATIC_DATA_END)
				break;
		}
		CHECK(i < col.n && i + 1 < col.n && col.v[i + 1].type ==
		    (k == 0 ? REC_X86_PV_P2M_FRAMES : REC_PAGE_DATA),
		    "SDE inserted before the first %s",
		    k == 0 ? "P2M_FRAMES" : "PAGE_DATA");
		/* And back to draft-B, then Xen again: stable. */
		rv = reframe(&x, XP_DRAFTB, 1, &y);
		CHECK(rv == 0, "v3 -> draft-B BE: %d", rv);
		rv = reframe(&y, XP_XEN, 0, &z);
		CHECK(rv == 0 && z.len == x.len && memcmp(z.data, x.data,
		    x.len) == 0, "Xen -> draft-B BE -> Xen is stable");
		collect_free(&col);
		buf_free(&x);
		buf_free(&y);
		buf_free(&z);
		img_free(&im);
	}
}

/* ---- tests: accepted oddities ------------------------------------------- */

static void
test_accepted(void)
{
	struct img	 im;
	struct xp_buf	 b = { 0 };
	struct collect	 col;
	struct xp_error	 e;
	struct xp_limits lim;
	int		 rv;
	uint8_t		 blob[40];

	/* Smallest images. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_END);
	accept("draft-B: headers + END", &im);
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	im.st.xen_major = 4;
	im.st.xen_minor = 17;
	header_domain_put(&im.st, im.b.data + 24);
	img_put_empty(&im, REC_STATIC_DATA_END);
	img_put_empty(&im, REC_END);
	CHECK(im.b.len == 56 && memcmp(im.b.data + 24,
	    "\2\0\0\0\x0c\0\0\0\4\0\0\0\x11\0\0\0\x10\0\0\0\0\0\0\0"
	    "\0\0\0\0\0\0\0\0", 32) == 0, "Xen's minimal v3 stream");
	accept("Xen: minimal v3", &im);
	img_free(&im);

	/* Unknown optional records are yielded with known = 0. */
	memset(blob, 0xAB, sizeof blob);
	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_HVM);
	img_put(&im, 0x80000042u, blob, 13);
	img_put_empty(&im, 0xFFFFFFFFu);
	img_put_empty(&im, REC_END);
	collect_init(&col);
	rv = run(im.b.data, im.b.len, 3, NULL, &col, &e);
	CHECK(rv == 0 && col.n == 3 && !col.v[0].known && !col.v[1].known &&
	    col.v[0].length == 13 && col.v[2].known, "optional: %s", e.msg);
	collect_free(&col);
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_PV);
	img_put(&im, 0x80000042u, blob, 40);
	img_put_empty(&im, REC_END);
	accept("Xen: optional record", &im);
	img_free(&im);

	/* TOOLSTACK is read in both dialects, any length. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PV);
	img_raw(&im, REC_TOOLSTACK, blob, 0, 1, 0, 0, 0);
	img_raw(&im, REC_TOOLSTACK, blob, 37, 1, 0, 0, 0);
	img_put_empty(&im, REC_END);
	accept("draft-B: TOOLSTACK", &im);
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_TOOLSTACK, blob, 11, 0, 0, 0, 0);
	img_put_empty(&im, REC_END);
	accept("Xen: TOOLSTACK", &im);
	img_free(&im);

	/* Reserved header octets, padding and footer word are ignored. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	im.b.data[18] = 0x55;		/* image header reserved */
	im.b.data[23] = 0x66;
	im.b.data[17] |= 0xFC;		/* image header reserved option bits */
	im.b.data[24 + 6] = 0x77;	/* domain header reserved */
	img_raw(&im, REC_HVM_CONTEXT, blob, 5, 1, 0, 0x88, 0x99);
	im.b.data[im.b.len - 1] = 0xAA;	/* footer reserved */
	img_put_empty(&im, REC_END);
	accept("draft-B: reserved header octets, padding, footer word", &im);
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	im.b.data[19] = 1;
	img_raw(&im, REC_HVM_CONTEXT, blob, 5, 0, 0, 0, 0xBB);
	img_put_empty(&im, REC_END);
	accept("Xen: reserved octets and padding", &im);
	img_free(&im);

	/* Records without checksums (option bit clear, checksum 0). */
	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_HVM);
	im.opts = 0;
	img_put(&im, REC_HVM_CONTEXT, blob, 3);
	img_put_empty(&im, REC_END);
	collect_init(&col);
	rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &col, &e);
	CHECK(rv == 0 && col.n == 2 && col.v[0].options == 0 &&
	    col.v[0].checksum == 0, "no checksum: %s", e.msg);
	collect_free(&col);
	img_free(&im);

	/* The back-channel bit is exposed. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	im.b.data[17] |= WIRE_IHDR_OPT_BACKCHANNEL;
	img_put_empty(&im, REC_END);
	collect_init(&col);
	rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &col, &e);
	CHECK(rv == 0 && (col.st.ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL),
	    "back-channel bit: %s", e.msg);
	collect_free(&col);
	img_free(&im);

	/* 32-bit PV guest: fpp 1024, 2800-octet contexts. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 4, 3);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_p2m(&b, 0, 1000, 5000, 4);
	CHECK(b.len == 8 + 5 * 8, "p2m 1000-5000 at 1024 a frame: 5 frames");
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	mk_pages(&b, 0, 1, NULL, 5000, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	mk_vcpu(&b, 0, 7, WIRE_VCPU_BASIC_32);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	mk_vcpu(&b, 0, 7, 16);
	img_put(&im, REC_X86_PV_VCPU_XSAVE, b.data, b.len);
	mk_vcpu(&b, 0, 7, 128);
	img_put(&im, REC_X86_PV_VCPU_EXTENDED, b.data, b.len);
	img_put_empty(&im, REC_END);
	accept("32-bit PV", &im);
	img_free(&im);

	/* Without X86_PV_INFO either context size is taken. */
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_PV);
	mk_vcpu(&b, 0, 0, WIRE_VCPU_BASIC_32);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	mk_vcpu(&b, 0, 1, WIRE_VCPU_BASIC_64);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	img_put_empty(&im, REC_END);
	accept("vcpu contexts without PV_INFO", &im);
	img_free(&im);

	/* Limits: pfn max_pfn - 1, vcpu max_vcpus - 1. */
	memset(&lim, 0, sizeof lim);
	lim.max_pfn = 0x10000;
	lim.max_vcpus = 4;
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, 0, 1, NULL, 0xFFFF, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	mk_vcpu(&b, 0, 3, 0);
	img_put(&im, REC_X86_PV_VCPU_MSRS, b.data, b.len);
	img_put_empty(&im, REC_END);
	accept_lim("at the limits", &im, &lim);
	img_free(&im);

	/* ARM: arch-neutral records, 64 KiB pages. */
	img_begin_v(&im, XP_DRAFTB, 1, 0, WIRE_ARCH_ARM, 0, 16);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, 1, 2, NULL, 0x40000, 65536);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_CHECKPOINT);
	img_put_empty(&im, REC_END);
	accept("ARM 64K", &im);
	img_free(&im);

	/* A record of the whole allowed length. */
	memset(&lim, 0, sizeof lim);
	lim.max_record_len = 20000;
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	mk_blob(&b, 20000, 1);
	img_put(&im, REC_HVM_CONTEXT, b.data, b.len);
	img_put_empty(&im, REC_END);
	accept_lim("length == max_record_len", &im, &lim);
	img_free(&im);

	buf_free(&b);
}

/* ---- tests: rejections -------------------------------------------------- */

static void
test_reject_headers(void)
{
	struct img	 im;
	struct xp_error	 e;
	struct xp_parser *p;
	uint8_t		 legacy[64];
	int		 i, rv;

	/* Legacy: any zero bit in the first 8 octets. */
	memset(legacy, 0, sizeof legacy);
	legacy[0] = 0x00;
	legacy[1] = 0x10;
	rv = run(legacy, sizeof legacy, CHUNK_WHOLE, NULL, NULL, &e);
	CHECK(rv == -XP_ELEGACY && strstr(e.msg, "image header: legacy "
	    "(pre-v2 Xen) image") != NULL && strstr(e.msg, "convert") !=
	    NULL, "legacy: %s", e.msg);
	for (i = 0; i < 8; i++) {
		img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		img_put_empty(&im, REC_END);
		im.b.data[i] = 0xEF;
		reject("legacy marker", &im, XP_ELEGACY, "image header: legacy");
		img_free(&im);
	}
	/* Refused as soon as the first octet shows it. */
	p = parser_new(NULL, NULL, NULL, NULL);
	CHECK(parser_feed(p, legacy, 1) == -XP_ELEGACY, "1 legacy octet");
	CHECK(parser_feed(p, legacy, 1) == -XP_ELEGACY, "stays failed");
	CHECK(parser_finish(p) == -XP_ELEGACY, "finish: same error");
	parser_free(p);

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_END);
	im.b.data[11] = 'G';
	reject("wrong id", &im, XP_EHEADER, "image header: id 0x58454e47 is "
	    "not 0x58454e46");
	im.b.data[11] = 'F';
	im.b.data[15] = 4;
	reject("version 4", &im, XP_EVERSION, "image header: version 4 is not "
	    "supported");
	im.b.data[15] = 0;
	reject("version 0", &im, XP_EVERSION, "version 0");
	im.b.data[12] = 1;
	im.b.data[15] = 1;
	reject("version 0x01000001", &im, XP_EVERSION, "version 16777217");
	img_free(&im);

	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_END);
	im.b.data[17] |= WIRE_IHDR_OPT_BIG_ENDIAN;
	reject("Xen big-endian", &im, XP_EHEADER, "big-endian Xen");
	img_free(&im);

	/* Domain headers. */
	img_begin_v(&im, XP_DRAFTB, 0, 0, 3, 1, 12);
	img_put_empty(&im, REC_END);
	reject("arch 3", &im, XP_EHEADER, "domain header: arch 3");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 1, 0, 0, 1, 12);
	img_put_empty(&im, REC_END);
	reject("arch 0", &im, XP_EHEADER, "domain header: arch 0");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_ARCH_X86, 4, 12);
	img_put_empty(&im, REC_END);
	reject("x86 type 4", &im, XP_EHEADER, "x86 domain type 4");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_ARCH_X86, 0, 12);
	img_put_empty(&im, REC_END);
	reject("x86 type 0", &im, XP_EHEADER, "x86 domain type 0");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_ARCH_X86, 1, 16);
	img_put_empty(&im, REC_END);
	reject("x86 page_shift 16", &im, XP_EHEADER, "page_shift 16");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_ARCH_ARM, 1, 12);
	img_put_empty(&im, REC_END);
	reject("ARM type 1", &im, XP_EHEADER, "ARM domain type 1");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_ARCH_ARM, 0, 13);
	img_put_empty(&im, REC_END);
	reject("ARM page_shift 13", &im, XP_EHEADER, "page_shift 13");
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	im.b.data[24] = 3;
	img_put_empty(&im, REC_END);
	reject("Xen type 3 (no PVH)", &im, XP_EHEADER, "Xen domain type 3");
	im.b.data[24] = 0;
	reject("Xen type 0", &im, XP_EHEADER, "Xen domain type 0");
	im.b.data[24] = 1;
	im.b.data[28] = 16;
	reject("Xen page_shift 16", &im, XP_EHEADER, "page_shift 16");
	img_free(&im);
}

static void
test_reject_framing(void)
{
	struct img		 im;
	struct xp_limits	 lim;
	struct xp_parser	*p;
	struct xp_error		 e;
	uint8_t			 blob[64], hdr[16];
	ssize_t			 r;

	memset(blob, 0x5A, sizeof blob);

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, 0x13);
	img_put_empty(&im, REC_END);
	reject("unknown mandatory", &im, XP_ETYPE, "%sunknown mandatory "
	    "record type 0x00000013", where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	img_put(&im, 0x7FFFFFFF, blob, 8);
	img_put_empty(&im, REC_END);
	reject("unknown mandatory (Xen)", &im, XP_ETYPE, "type 0x7fffffff");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_HVM_CONTEXT, blob, 4, 0x0009, 0, 0, 0);
	img_put_empty(&im, REC_END);
	reject("unknown option bit", &im, XP_EOPTIONS, "%sunknown option bits "
	    "0x0008", where(&im, 0));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_HVM_CONTEXT, blob, 4, 1, 1, 0, 0);
	img_put_empty(&im, REC_END);
	reject("checksum mismatch", &im, XP_ECHECKSUM, "%schecksum 0x",
	    where(&im, 0));
	reject("checksum message", &im, XP_ECHECKSUM, "does not match the "
	    "CRC-32 0x");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_HVM_CONTEXT, blob, 4, 0, 0, 0, 0);
	img_put_empty(&im, REC_END);
	reject("checksum without bit 0", &im, XP_ECHECKSUM, "option bit 0 "
	    "(checksum valid) is clear");
	img_free(&im);

	/* Record header reserved octets and padding are under the CRC. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_HVM_CONTEXT, blob, 5, 1, 0, 0, 0);
	im.b.data[im.roff[0] + 12] = 1;
	img_put_empty(&im, REC_END);
	reject("reserved header octet changed", &im, XP_ECHECKSUM, "checksum");
	im.b.data[im.roff[0] + 12] = 0;
	im.b.data[im.roff[0] + 16 + 6] = 1;
	reject("padding changed", &im, XP_ECHECKSUM, "checksum");
	img_free(&im);

	/* Huge lengths are refused from the header, before any body. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	record_hdr_put(&im.st, hdr, REC_HVM_CONTEXT, 0xFFFFFFF0u, 1);
	p = parser_new(NULL, NULL, NULL, NULL);
	r = parser_feed(p, im.b.data, im.b.len);
	CHECK(r == (ssize_t)im.b.len, "headers");
	r = parser_feed(p, hdr, sizeof hdr);
	CHECK(r == -XP_ETOOBIG, "huge length: %zd", r);
	e = *parser_error(p);
	CHECK(strstr(e.msg, "record 0 (HVM_CONTEXT) at offset 32: length "
	    "4294967280 is above the record maximum 134217728") != NULL,
	    "huge length message: %s", e.msg);
	parser_free(p);
	img_free(&im);

	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	record_hdr_put(&im.st, hdr, 0x80000007u, WIRE_REC_LENGTH_MAX + 1, 0);
	p = parser_new(NULL, NULL, NULL, NULL);
	parser_feed(p, im.b.data, im.b.len);
	r = parser_feed(p, hdr, 8);
	CHECK(r == -XP_ETOOBIG, "huge optional record: %zd", r);
	parser_free(p);
	img_free(&im);

	memset(&lim, 0, sizeof lim);
	lim.max_record_len = 4096;
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	{
		struct xp_buf b = { 0 };

		mk_blob(&b, 4097, 0);
		img_put(&im, REC_HVM_CONTEXT, b.data, b.len);
		buf_free(&b);
	}
	img_put_empty(&im, REC_END);
	reject_lim("above max_record_len", &im, &lim, XP_ETOOBIG,
	    "length 4097 is above the record maximum 4096");
	img_free(&im);

	/* Ends and trailers. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put(&im, REC_END, blob, 8);
	reject("END with a body", &im, XP_EBODY, "%slength 8 is above the "
	    "maximum 0", where(&im, 0));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_CHECKPOINT);
	reject("END missing", &im, XP_ETRUNCATED, "record 1 at offset 56: "
	    "stream ends without an END record");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_END);
	buf_append(&im.b, "x", 1);
	p = parser_new(NULL, NULL, NULL, NULL);
	r = parser_feed(p, im.b.data, im.b.len);
	CHECK(r == (ssize_t)im.b.len - 1 && parser_done(p),
	    "feed stops after END: %zd", r);
	CHECK(parser_want(p) == 0, "nothing wanted after END");
	r = parser_feed(p, im.b.data + im.b.len - 1, 1);
	CHECK(r == -XP_ETRAILING, "data after END: %zd", r);
	e = *parser_error(p);
	CHECK(e.code == XP_ETRAILING && strstr(e.msg, "record 1 at offset 56: "
	    "data after END") != NULL, "trailing message: %s", e.msg);
	CHECK(parser_finish(p) == -XP_ETRAILING, "finish after trailing");
	parser_free(p);
	p = parser_new(NULL, NULL, NULL, NULL);
	r = parser_feed(p, im.b.data, im.b.len - 1);
	CHECK(r == (ssize_t)im.b.len - 1, "exact");
	CHECK(parser_feed(p, im.b.data, 0) == 0, "empty feed after END");
	CHECK(parser_finish(p) == 0, "finish after END");
	parser_free(p);
	img_free(&im);
}

static void
test_reject_bodies(void)
{
	struct img		 im;
	struct xp_buf		 b = { 0 };
	struct xp_limits	 lim;
	static const unsigned	 xtab[1] = { PT_XTAB };
	unsigned		 t;
	char			 what[64];
	int			 be;

	for (be = 0; be < 2; be++) {
	/* PAGE_DATA. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 1, xtab, 1, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, 12);
	img_put_empty(&im, REC_END);
	reject("page data too short", &im, XP_EBODY, "record 1 (PAGE_DATA) at "
	    "offset %" PRIu64 ": length 12 is below the minimum 16",
	    im.roff[1]);
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 1, xtab, 1, PAGE);
	xp_put32(be, b.data, 0);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("page data count 0", &im, XP_EBODY, "%scount is 0",
	    where(&im, 1));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 1, xtab, 1, PAGE);
	xp_put32(be, b.data, 0x7FFFFFFF);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("page data count huge", &im, XP_EBODY, "count 2147483647 is "
	    "above the maximum 16777216");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 2, NULL, 1, PAGE);
	xp_put32(be, b.data, 3);
	img_put(&im, REC_PAGE_DATA, b.data, 16 + 8);
	img_put_empty(&im, REC_END);
	reject("page data count beyond length", &im, XP_EBODY, "length 24 is "
	    "too short for 3 pfn entries");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 1, xtab, 1, PAGE);
	xp_put32(be, b.data + 4, 1);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("page data reserved", &im, XP_EBODY, "reserved field is "
	    "0x00000001, not 0");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 2, NULL, 1, PAGE);
	xp_put64(be, b.data + 16, body_pfn_entry(2, 0) | (1ULL << 52));
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("pfn reserved bits", &im, XP_EBODY, "pfn entry 1 "
	    "(0x0010000000000002): reserved bits 59-52 are set");
	img_free(&im);

	for (t = 5; t <= 8; t++) {
		img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
		img_put_empty(&im, REC_STATIC_DATA_END);
		mk_pages(&b, be, 1, NULL, 1, PAGE);
		xp_put64(be, b.data + 8, body_pfn_entry(1, t));
		img_put(&im, REC_PAGE_DATA, b.data, b.len);
		img_put_empty(&im, REC_END);
		snprintf(what, sizeof what, "page type %u", t);
		reject(what, &im, XP_EBODY, "page type 0x%x is reserved", t);
		img_free(&im);
	}

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 2, NULL, 1, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len - PAGE);
	img_put_empty(&im, REC_END);
	reject("page data one page short", &im, XP_EBODY, "length 4120 is not "
	    "8216 (2 pfn entries, 2 of them with page data)");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 1, xtab, 1, PAGE);
	buf_extend(&b, 8);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("page data too long", &im, XP_EBODY, "length 24 is not 16");
	img_free(&im);

	memset(&lim, 0, sizeof lim);
	lim.max_pfn = 0x1000;
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_pages(&b, be, 3, NULL, 0xFFE, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject_lim("pfn beyond max_pfn", &im, &lim, XP_ELIMIT, "%spfn entry 2: "
	    "pfn 0x1000 is beyond the limit 0xfff", where(&im, 1));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_pages(&b, be, 1, NULL, 1, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("draft-B page data before STATIC_DATA_END", &im, XP_EORDER,
	    "%sno STATIC_DATA_END seen", where(&im, 0));
	img_free(&im);

	/* X86_PV_INFO. */
	{
		static const unsigned combo[][2] = { { 4, 4 }, { 8, 3 },
		    { 2, 3 }, { 0, 0 }, { 16, 4 } };
		size_t k;

		for (k = 0; k < sizeof combo / sizeof combo[0]; k++) {
			img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
			mk_pv_info(&b, combo[k][0], combo[k][1]);
			img_put(&im, REC_X86_PV_INFO, b.data, b.len);
			img_put_empty(&im, REC_END);
			snprintf(what, sizeof what, "pv_info %u/%u",
			    combo[k][0], combo[k][1]);
			reject(what, &im, XP_EBODY, "guest_width %u with "
			    "pt_levels %u", combo[k][0], combo[k][1]);
			img_free(&im);
		}
	}
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	b.data[7] = 1;
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("pv_info reserved", &im, XP_EBODY, "reserved octet 7 is 0x01");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, 7);
	img_put_empty(&im, REC_END);
	reject("pv_info short", &im, XP_EBODY, "length 7 is below the "
	    "minimum 8");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	buf_extend(&b, 1);
	img_put(&im, REC_X86_PV_INFO, b.data, 9);
	img_put_empty(&im, REC_END);
	reject("pv_info long", &im, XP_EBODY, "length 9 is above the maximum "
	    "8");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("pv_info twice", &im, XP_EORDER, "%ssecond X86_PV_INFO record",
	    where(&im, 1));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("pv_info in HVM", &im, XP_EORDER, "%snot allowed in an x86 HVM "
	    "stream", where(&im, 0));
	img_free(&im);

	/* X86_PV_P2M_FRAMES. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_p2m(&b, be, 0, 511, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("p2m before pv_info", &im, XP_EORDER, "%sno X86_PV_INFO seen",
	    where(&im, 1));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	mk_p2m(&b, be, 0, 511, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("p2m before SDE", &im, XP_EORDER, "no STATIC_DATA_END seen");
	img_free(&im);

#define PV_PREFIX(im) do {						\
	img_begin(im, XP_DRAFTB, be, WIRE_DOM_X86_PV);			\
	mk_pv_info(&b, 8, 4);						\
	img_put(im, REC_X86_PV_INFO, b.data, b.len);			\
	img_put_empty(im, REC_STATIC_DATA_END);				\
} while (0)

	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1023, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, 20);
	img_put_empty(&im, REC_END);
	reject("p2m not multiple of 8", &im, XP_EBODY, "length 20 is not a "
	    "multiple of 8");
	img_free(&im);

	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1023, 8);
	xp_put32(be, b.data, 1024);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("p2m start > end", &im, XP_EBODY, "p2m_start_pfn 0x400 is above "
	    "p2m_end_pfn 0x3ff");
	img_free(&im);

	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1023, 8);
	xp_put32(be, b.data + 4, 1024);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("p2m length vs range", &im, XP_EBODY, "length 24 is not 32 (3 "
	    "frames for pfns 0x0-0x400 at 512 entries a frame)");
	img_free(&im);

	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1023, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, 8);
	img_put_empty(&im, REC_END);
	reject("p2m too short", &im, XP_EBODY, "length 8 is below the minimum "
	    "16");
	img_free(&im);

	memset(&lim, 0, sizeof lim);
	lim.max_pfn = 1024;
	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1024, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject_lim("p2m end beyond max_pfn", &im, &lim, XP_ELIMIT,
	    "p2m_end_pfn 0x400 is beyond the limit 0x3ff");
	img_free(&im);

	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1023, 8);
	xp_put64(be, b.data + 16, 5000);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject_lim("p2m frame pfn beyond max_pfn", &im, &lim, XP_ELIMIT,
	    "p2m_pfn[1] 0x1388 is beyond the limit 0x3ff");
	img_free(&im);

	PV_PREFIX(&im);
	mk_p2m(&b, be, 0, 1023, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	mk_pages(&b, be, 2, NULL, 1023, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("PV pfn beyond p2m_end_pfn", &im, XP_ELIMIT, "%spfn entry 1: "
	    "pfn 0x400 is beyond p2m_end_pfn 0x3ff", where(&im, 3));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_p2m(&b, be, 0, 511, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("p2m in HVM", &im, XP_EORDER, "not allowed in an x86 HVM");
	img_free(&im);

	/* Vcpu records. */
	memset(&lim, 0, sizeof lim);
	lim.max_vcpus = 4;
	PV_PREFIX(&im);
	mk_vcpu(&b, be, 4, 16);
	img_put(&im, REC_X86_PV_VCPU_XSAVE, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject_lim("vcpu id beyond max", &im, &lim, XP_ELIMIT, "%svcpu_id 4 is "
	    "beyond the limit 3", where(&im, 2));
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 1024, 0);
	img_put(&im, REC_X86_PV_VCPU_MSRS, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("vcpu id beyond default max", &im, XP_ELIMIT, "vcpu_id 1024 is "
	    "beyond the limit 1023");
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 0, 16);
	xp_put32(be, b.data + 4, 0x100);
	img_put(&im, REC_X86_PV_VCPU_MSRS, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("vcpu reserved", &im, XP_EBODY, "reserved field is 0x00000100");
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 0, WIRE_VCPU_BASIC_32);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("32-bit context in a 64-bit guest", &im, XP_EBODY, "context of "
	    "2800 octets is not 5168 (64-bit guest)");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 4, 3);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	mk_vcpu(&b, be, 0, WIRE_VCPU_BASIC_64);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("64-bit context in a 32-bit guest", &im, XP_EBODY, "context of "
	    "5168 octets is not 2800 (32-bit guest)");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_vcpu(&b, be, 0, 3000);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("context of neither size", &im, XP_EBODY, "context of 3000 "
	    "octets is neither 5168 nor 2800");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_vcpu(&b, be, 0, 0);
	img_put(&im, REC_X86_PV_VCPU_BASIC, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("empty basic context", &im, XP_EBODY, "length 8 is below the "
	    "minimum 2808");
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 0, 129);
	img_put(&im, REC_X86_PV_VCPU_EXTENDED, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("extended 129", &im, XP_EBODY, "length 137 is above the maximum "
	    "136");
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 0, 15);
	img_put(&im, REC_X86_PV_VCPU_XSAVE, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("xsave 15", &im, XP_EBODY, "xsave area of 15 octets is below "
	    "the minimum 16");
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 0, 24);
	img_put(&im, REC_X86_PV_VCPU_MSRS, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("msrs 24", &im, XP_EBODY, "msr list of 24 octets is not a "
	    "multiple of 16");
	img_free(&im);

	PV_PREFIX(&im);
	mk_vcpu(&b, be, 0, 0);
	img_put(&im, REC_X86_PV_VCPU_MSRS, b.data, 4);
	img_put_empty(&im, REC_END);
	reject("vcpu record too short", &im, XP_EBODY, "length 4 is below the "
	    "minimum 8");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PVH);
	mk_vcpu(&b, be, 0, 16);
	img_put(&im, REC_X86_PV_VCPU_XSAVE, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("vcpu in PVH", &im, XP_EORDER, "not allowed in an x86 PVH "
	    "stream");
	img_free(&im);

	/* SHARED_INFO. */
	PV_PREFIX(&im);
	mk_blob(&b, PAGE - 8, 0);
	img_put(&im, REC_SHARED_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("shared info short", &im, XP_EBODY, "length 4088 is not the "
	    "page size 4096");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_blob(&b, PAGE, 0);
	img_put(&im, REC_SHARED_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("shared info before pv_info", &im, XP_EORDER, "no X86_PV_INFO "
	    "seen");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_blob(&b, PAGE, 0);
	img_put(&im, REC_SHARED_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("shared info in HVM", &im, XP_EORDER, "not allowed in an x86 "
	    "HVM");
	img_free(&im);

	/* X86_TSC_INFO. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_tsc(&b, be, 1, 2, 3, 4);
	img_put(&im, REC_X86_TSC_INFO, b.data, 16);
	img_put_empty(&im, REC_END);
	reject("tsc short", &im, XP_EBODY, "length 16 is below the minimum 24");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_tsc(&b, be, 1, 2, 3, 4);
	xp_put32(be, b.data + 20, 9);
	img_put(&im, REC_X86_TSC_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("tsc reserved", &im, XP_EBODY, "reserved field is 0x00000009");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, be, 0, WIRE_ARCH_ARM, 0, 12);
	mk_tsc(&b, be, 1, 2, 3, 4);
	img_put(&im, REC_X86_TSC_INFO, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("tsc in ARM", &im, XP_EORDER, "not allowed in an ARM stream");
	img_free(&im);

	/* HVM_CONTEXT, HVM_PARAMS. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_HVM_CONTEXT);
	img_put_empty(&im, REC_END);
	reject("empty hvm context", &im, XP_EBODY, "length 0 is below the "
	    "minimum 1");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_blob(&b, 10, 0);
	img_put(&im, REC_HVM_CONTEXT, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("hvm context in PV", &im, XP_EORDER, "not allowed in an x86 PV "
	    "stream");
	img_free(&im);

	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_hvm_params(&b, be, 2);
	xp_put32(be, b.data + 4, 1);
	img_put(&im, REC_HVM_PARAMS, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("params reserved", &im, XP_EBODY, "reserved field is "
	    "0x00000001");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_hvm_params(&b, be, 2);
	img_put(&im, REC_HVM_PARAMS, b.data, b.len - 8);
	img_put_empty(&im, REC_END);
	reject("params length", &im, XP_EBODY, "length 32 is not 40 (2 "
	    "parameters)");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_hvm_params(&b, be, 2);
	xp_put32(be, b.data, 0x10000001);
	img_put(&im, REC_HVM_PARAMS, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("params count huge", &im, XP_EBODY, "count 268435457 is above "
	    "the maximum 8388607");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_hvm_params(&b, be, 0);
	img_put(&im, REC_HVM_PARAMS, b.data, 4);
	img_put_empty(&im, REC_END);
	reject("params too short", &im, XP_EBODY, "length 4 is below the "
	    "minimum 8");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_PV);
	mk_hvm_params(&b, be, 1);
	img_put(&im, REC_HVM_PARAMS, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("params in PV", &im, XP_EORDER, "not allowed in an x86 PV");
	img_free(&im);

	/* Empty-bodied records with a body. */
	{
		static const uint32_t empty[] = { REC_VERIFY, REC_CHECKPOINT,
		    REC_STATIC_DATA_END };
		size_t k;

		for (k = 0; k < 3; k++) {
			img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
			mk_blob(&b, 8, 0);
			img_put(&im, empty[k], b.data, 1);
			img_put_empty(&im, REC_END);
			snprintf(what, sizeof what, "%s with a body",
			    record_type_name(empty[k]));
			reject(what, &im, XP_EBODY, "length 1 is above the "
			    "maximum 0");
			img_free(&im);
		}
	}

	/* Back-channel record in a forward stream. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_blob(&b, 16, 0);
	img_put(&im, REC_CHECKPOINT_DIRTY_PFN_LIST, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("dirty pfn list", &im, XP_EORDER, "%sonly valid on a "
	    "back-channel", where(&im, 0));
	img_free(&im);

	/* CPU policy records. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_cpuid(&b, be, 2);
	img_put(&im, REC_X86_CPUID_POLICY, b.data, 36);
	img_put_empty(&im, REC_END);
	reject("cpuid 36", &im, XP_EBODY, "length 36 is not a multiple of 24");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_X86_CPUID_POLICY);
	img_put_empty(&im, REC_END);
	reject("cpuid empty", &im, XP_EBODY, "length 0 is below the minimum "
	    "24");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	mk_msr(&b, be, 2);
	img_put(&im, REC_X86_MSR_POLICY, b.data, 24);
	img_put_empty(&im, REC_END);
	reject("msr 24", &im, XP_EBODY, "length 24 is not a multiple of 16");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_X86_MSR_POLICY);
	img_put_empty(&im, REC_END);
	reject("msr empty", &im, XP_EBODY, "length 0 is below the minimum 16");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_cpuid(&b, be, 1);
	img_put(&im, REC_X86_CPUID_POLICY, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("cpuid after SDE", &im, XP_EORDER, "%sstatic data after "
	    "STATIC_DATA_END", where(&im, 1));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_msr(&b, be, 1);
	img_put(&im, REC_X86_MSR_POLICY, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("msr after SDE", &im, XP_EORDER, "static data after "
	    "STATIC_DATA_END");
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, be, 0, WIRE_ARCH_ARM, 0, 14);
	mk_msr(&b, be, 1);
	img_put(&im, REC_X86_MSR_POLICY, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("msr in ARM", &im, XP_EORDER, "not allowed in an ARM");
	img_free(&im);

	/* STATIC_DATA_END. */
	img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_STATIC_DATA_END);
	img_put_empty(&im, REC_STATIC_DATA_END);
	img_put_empty(&im, REC_END);
	reject("second SDE", &im, XP_EORDER, "%ssecond STATIC_DATA_END",
	    where(&im, 1));
	img_free(&im);
	}

	/* Xen v3 / v2 ordering. */
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	mk_pages(&b, 0, 1, NULL, 1, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("v3 page data before SDE", &im, XP_EORDER, "record 0 "
	    "(PAGE_DATA) at offset 40: no STATIC_DATA_END seen");
	img_free(&im);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	mk_p2m(&b, 0, 0, 511, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("v3 p2m before SDE", &im, XP_EORDER, "%sno STATIC_DATA_END seen",
	    where(&im, 1));
	img_free(&im);
	img_begin_v(&im, XP_XEN, 0, 2, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	img_put_empty(&im, REC_STATIC_DATA_END);
	img_put_empty(&im, REC_END);
	reject("SDE in v2", &im, XP_EORDER, "%snot allowed in a Xen v2 stream",
	    where(&im, 0));
	img_free(&im);
	img_begin_v(&im, XP_XEN, 0, 2, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	mk_cpuid(&b, 0, 1);
	img_put(&im, REC_X86_CPUID_POLICY, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("cpuid in v2", &im, XP_EORDER, "not allowed in a Xen v2");
	img_free(&im);
	img_begin_v(&im, XP_XEN, 0, 2, WIRE_ARCH_X86, WIRE_DOM_X86_PV, 12);
	mk_msr(&b, 0, 1);
	img_put(&im, REC_X86_MSR_POLICY, b.data, b.len);
	img_put_empty(&im, REC_END);
	reject("msr in v2", &im, XP_EORDER, "not allowed in a Xen v2");
	img_free(&im);
	/* v2: after the inferred SDE, static data is late. */
	img_begin_v(&im, XP_XEN, 0, 2, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	mk_pages(&b, 0, 1, NULL, 1, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	img_put_empty(&im, REC_END);
	accept("v2 page data, SDE inferred", &im);
	img_free(&im);

	buf_free(&b);
}

/* ---- tests: parser behaviour -------------------------------------------- */

static void
test_callbacks(void)
{
	struct img		 im;
	struct collect		 col, ref;
	struct xp_parser	*p;
	struct xp_error		 e;
	size_t			 off, i, nrec;
	ssize_t			 r;
	int			 rv;

	img_pv(&im, XP_DRAFTB, 0, 0);
	collect_init(&ref);
	rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &ref, &e);
	CHECK(rv == 0, "reference: %s", e.msg);

	/* Zero copy when the record is whole in the chunk. */
	for (i = 0; i < ref.n; i++)
		CHECK(ref.v[i].hdr_ptr == im.b.data + im.roff[i] &&
		    ref.v[i].body_ptr == ref.v[i].hdr_ptr + 16,
		    "record %zu handed on in place", i);
	collect_init(&col);
	rv = run(im.b.data, im.b.len, 1, NULL, &col, &e);
	CHECK(rv == 0 && same_seq(&col, &ref), "1-octet chunks: %s", e.msg);
	for (i = 0; i < col.n; i++)
		CHECK(col.v[i].body_ptr < im.b.data || col.v[i].body_ptr >=
		    im.b.data + im.b.len, "gathered record %zu copied", i);
	collect_free(&col);

	/* XP_PAUSE: feed returns right after each record. */
	collect_init(&col);
	col.pause = 1;
	col.hpause = 1;
	p = parser_new(NULL, cb_header, cb_record, &col);
	r = parser_feed(p, im.b.data, im.b.len);
	CHECK(r == 32 && col.hdr_calls == 1 && col.n == 0,
	    "header pause: %zd", r);
	CHECK(parser_stream(p) != NULL, "stream known after the headers");
	off = (size_t)r;
	nrec = 0;
	while (off < im.b.len) {
		r = parser_feed(p, im.b.data + off, im.b.len - off);
		CHECK(r > 0 && col.n == nrec + 1 && (size_t)r ==
		    col.v[nrec].wire_len, "pause after record %zu: %zd", nrec,
		    r);
		if (r <= 0)
			break;
		off += (size_t)r;
		nrec++;
	}
	CHECK(parser_done(p) && parser_finish(p) == 0 && nrec == ref.n,
	    "paused run complete");
	parser_free(p);
	collect_free(&col);

	/* Pause while gathering: two-octet feeds. */
	collect_init(&col);
	col.pause = 1;
	rv = run(im.b.data, im.b.len, 2, NULL, &col, &e);
	CHECK(rv == 0 && same_seq(&col, &ref), "pause with 2-octet chunks");
	collect_free(&col);

	/* A failing callback: its own XP_E code is kept. */
	collect_init(&col);
	col.fail_at = 3;
	col.fail_rv = -XP_ELIMIT;
	rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &col, &e);
	CHECK(rv == -XP_ELIMIT && e.code == XP_ELIMIT && e.index == 3 &&
	    e.offset == im.roff[3] && e.type == im.rtype[3] &&
	    strstr(e.msg, where(&im, 3)) != NULL && strstr(e.msg, "callback") !=
	    NULL, "callback error kept: %s", e.msg);
	collect_free(&col);
	collect_init(&col);
	col.fail_at = 0;
	col.fail_rv = -1000;
	rv = run(im.b.data, im.b.len, 5, NULL, &col, &e);
	CHECK(rv == -XP_ECALLBACK && e.code == XP_ECALLBACK,
	    "other negative: ECALLBACK: %s", e.msg);
	collect_free(&col);
	collect_init(&col);
	col.fail_at = 2;
	col.fail_rv = 7;
	rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &col, &e);
	CHECK(rv == -XP_ECALLBACK, "positive non-pause: ECALLBACK");
	collect_free(&col);
	collect_init(&col);
	col.hfail_rv = -XP_EHEADER;
	rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &col, &e);
	CHECK(rv == -XP_EHEADER && col.n == 0 && strstr(e.msg, "domain "
	    "header: the header callback failed") != NULL,
	    "header callback failure: %s", e.msg);
	collect_free(&col);

	/* parser_want and the stream, step by step. */
	p = parser_new(NULL, NULL, NULL, NULL);
	CHECK(parser_want(p) == 24 && parser_stream(p) == NULL &&
	    parser_offset(p) == 0, "fresh parser");
	CHECK(parser_feed(p, im.b.data, 10) == 10 && parser_want(p) == 14,
	    "want after 10");
	CHECK(parser_feed(p, im.b.data + 10, 14) == 14 && parser_want(p) == 8 &&
	    parser_stream(p) == NULL, "want the domain header");
	CHECK(parser_feed(p, im.b.data + 24, 8) == 8 && parser_want(p) == 16 &&
	    parser_stream(p) != NULL, "want a record header");
	CHECK(parser_feed(p, im.b.data + 32, 16) == 16 && parser_want(p) ==
	    record_wire_size(parser_stream(p), 8) - 16,
	    "want the rest of the record: %zu", parser_want(p));
	for (off = 48; off < im.b.len; off++) {
		if (parser_want(p) < 1)
			break;
		if (parser_feed(p, im.b.data + off, 1) != 1)
			break;
	}
	CHECK(off == im.b.len && parser_done(p) && parser_want(p) == 0 &&
	    parser_offset(p) == im.b.len, "want >= 1 until END");
	parser_free(p);

	collect_free(&ref);
	img_free(&im);
}

static void
test_chunking(void)
{
	struct img	im;
	struct collect	ref, col;
	struct xp_error	e;
	int		k, seed, rv;

	for (k = 0; k < 5; k++) {
		switch (k) {
		case 0: img_pv(&im, XP_DRAFTB, 0, 0); break;
		case 1: img_pv(&im, XP_DRAFTB, 1, 0); break;
		case 2: img_hvm(&im, XP_XEN, 0, 3, WIRE_DOM_X86_HVM); break;
		case 3: img_hvm(&im, XP_XEN, 0, 2, WIRE_DOM_X86_HVM); break;
		default: img_pv(&im, XP_XEN, 0, 3); break;
		}
		collect_init(&ref);
		rv = run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, &ref, &e);
		CHECK(rv == 0 && ref.n == im.nrec, "image %d: %s", k, e.msg);
		collect_init(&col);
		rv = run(im.b.data, im.b.len, 1, NULL, &col, &e);
		CHECK(rv == 0 && same_seq(&ref, &col), "image %d: 1-octet", k);
		collect_free(&col);
		for (seed = 0; seed < 20; seed++) {
			rnd_state = 0x9E3779B9u * (seed + 1) + k;
			collect_init(&col);
			rv = run(im.b.data, im.b.len, CHUNK_RANDOM, NULL, &col,
			    &e);
			CHECK(rv == 0 && same_seq(&ref, &col),
			    "image %d: random chunks, seed %d", k, seed);
			collect_free(&col);
		}
		collect_free(&ref);
		img_free(&im);
	}
}

/*
 * A record header reserves nothing by itself: the octets the parser holds
 * for a split record grow with what arrived (at most 64 KiB, or twice
 * that), in both dialects and for the largest length allowed; the record
 * still comes out whole and right, and a record whole in the caller's
 * buffer is still handed on in place.
 */
static void
test_gather_bound(void)
{
	struct xp_parser	*p;
	struct xp_stream	 st;
	struct collect		 col;
	struct img		 im;
	uint8_t			 h[64], *big;
	const uint32_t		 len = 3u << 20;	/* a 3 MiB HVM_CONTEXT */
	size_t			 hs, off, fed, k, most;
	ssize_t			 r;
	uint32_t		 i;
	int			 d, ok;

	for (d = 0; d < 2; d++) {
		enum xp_dialect dl = d ? XP_XEN : XP_DRAFTB;

		/* The maximum announced, a few octets sent. */
		stream_init(&st, dl, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
		header_image_put(&st, h);
		off = WIRE_IHDR_SIZE;
		header_domain_put(&st, h + off);
		off += header_domain_size(&st);
		record_hdr_put(&st, h + off, REC_TOOLSTACK,
		    WIRE_REC_LENGTH_MAX, 0);
		off += record_hdr_size(&st);
		memset(h + off, 0xA5, 16);
		off += 16;
		p = parser_new(NULL, NULL, NULL, NULL);
		r = parser_feed(p, h, off);
		CHECK(r == (ssize_t)off, "%s: header of a 128 MiB record: %zd "
		    "%s", d ? "xen" : "draftb", r, parser_error(p)->msg);
		CHECK(parser_buffered(p) <= (64u << 10), "%s: a 128 MiB "
		    "record announced, 16 octets of it sent: %zu octets held",
		    d ? "xen" : "draftb", parser_buffered(p));
		/* One octet at a time does not add up either. */
		for (i = 0; i < 100; i++)
			parser_feed(p, h + off - 1, 1);
		CHECK(parser_buffered(p) <= (64u << 10), "%s: 116 octets "
		    "sent: %zu octets held", d ? "xen" : "draftb",
		    parser_buffered(p));
		parser_free(p);
	}

	/* A 3 MiB record in chunks of 4000: bounded all along, and whole. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	big = malloc(len);
	for (i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 7u + (i >> 13));
	img_put(&im, REC_HVM_CONTEXT, big, len);
	img_put_empty(&im, REC_END);
	hs = im.roff[0];
	collect_init(&col);
	p = parser_new(NULL, cb_header, cb_record, &col);
	r = parser_feed(p, im.b.data, hs + 100);
	CHECK(r == (ssize_t)(hs + 100), "3 MiB record: first chunk");
	fed = hs + 100;
	ok = 1;
	most = 0;
	while (fed < im.b.len && ok) {
		k = im.b.len - fed < 4000 ? im.b.len - fed : 4000;
		r = parser_feed(p, im.b.data + fed, k);
		ok = r == (ssize_t)k;
		fed += k;
		/* Held: the current record's part, at most doubled. */
		if (col.n == 0) {
			size_t got = fed - im.roff[0];

			if (parser_buffered(p) > most)
				most = parser_buffered(p);
			if (parser_buffered(p) > 2 * got &&
			    parser_buffered(p) > (64u << 10))
				ok = 0;
		}
	}
	CHECK(ok, "3 MiB record in 4000-octet chunks: %zu octets held after "
	    "%zu fed (%s)", parser_buffered(p), fed, parser_error(p)->msg);
	CHECK(most >= len && most < len + 64, "3 MiB record: the buffer grew "
	    "to the record (%zu)", most);
	CHECK(parser_finish(p) == 0 && col.n == 2 && col.v[0].length == len &&
	    memcmp(col.v[0].body, big, len) == 0, "3 MiB record gathered "
	    "whole and right");
	parser_free(p);
	collect_free(&col);

	/* Whole in the caller's buffer: handed on in place, nothing held. */
	collect_init(&col);
	p = parser_new(NULL, cb_header, cb_record, &col);
	r = parser_feed(p, im.b.data, im.b.len);
	CHECK(r == (ssize_t)im.b.len && col.n == 2 &&
	    col.v[0].body_ptr == im.b.data + hs + 16 &&
	    parser_buffered(p) == 0, "whole record: zero copy, %zu held",
	    parser_buffered(p));
	parser_free(p);
	collect_free(&col);
	free(big);
	img_free(&im);
}

/* A small image of each dialect: every proper prefix is refused. */
static void
test_truncation(void)
{
	struct img	 im;
	struct xp_buf	 b = { 0 };
	struct xp_error	 e;
	size_t		 n, bad;
	int		 k, rv;

	for (k = 0; k < 3; k++) {
		img_begin(&im, k == 2 ? XP_XEN : XP_DRAFTB, k == 1,
		    WIRE_DOM_X86_PV);
		mk_pv_info(&b, 8, 4);
		img_put(&im, REC_X86_PV_INFO, b.data, b.len);
		img_put_empty(&im, REC_STATIC_DATA_END);
		mk_tsc(&b, k == 1, 1, 2, 3, 4);
		img_put(&im, REC_X86_TSC_INFO, b.data, b.len);
		mk_vcpu(&b, k == 1, 0, 5);
		img_put(&im, REC_X86_PV_VCPU_EXTENDED, b.data, b.len);
		img_put_empty(&im, REC_END);
		CHECK(run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, NULL, &e) ==
		    0, "whole image %d: %s", k, e.msg);
		bad = 0;
		for (n = 0; n < im.b.len; n++) {
			rv = run(im.b.data, n, CHUNK_WHOLE, NULL, NULL, &e);
			if (rv != -XP_ETRUNCATED || e.code != XP_ETRUNCATED)
				bad++;
			rv = run(im.b.data, n, 1, NULL, NULL, &e);
			if (rv != -XP_ETRUNCATED)
				bad++;
		}
		CHECK(bad == 0, "image %d: %zu prefixes not refused as truncated",
		    k, bad);

		/* The messages say where. */
		run(im.b.data, 10, CHUNK_WHOLE, NULL, NULL, &e);
		CHECK(strstr(e.msg, "image header: stream ends after 10 of 24 "
		    "octets") != NULL, "%s", e.msg);
		run(im.b.data, 27, CHUNK_WHOLE, NULL, NULL, &e);
		CHECK(strstr(e.msg, "domain header: stream ends after 3 of") !=
		    NULL && e.index == UINT64_MAX, "%s", e.msg);
		run(im.b.data, im.roff[2] + 3, CHUNK_WHOLE, NULL, NULL, &e);
		CHECK(strstr(e.msg, "record 2 at offset") != NULL &&
		    strstr(e.msg, "after 3 of") != NULL && e.index == 2,
		    "%s", e.msg);
		run(im.b.data, im.roff[2] + 20, 3, NULL, NULL, &e);
		CHECK(strstr(e.msg, where(&im, 2)) != NULL && strstr(e.msg,
		    "stream ends after 20 of") != NULL && e.type ==
		    REC_X86_TSC_INFO && e.offset == im.roff[2], "%s", e.msg);
		img_free(&im);
	}
	buf_free(&b);
}

/* Every single-bit flip inside any record of a checksummed image fails. */
static void
test_bitflips(void)
{
	struct img	 im;
	struct xp_buf	 b = { 0 };
	struct xp_error	 e;
	size_t		 r, pos, end, flips = 0, passed = 0, reserved;
	int		 bit, rv;

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PV);
	mk_pv_info(&b, 8, 4);
	img_put(&im, REC_X86_PV_INFO, b.data, b.len);
	img_put_empty(&im, REC_STATIC_DATA_END);
	mk_p2m(&b, 0, 0, 511, 8);
	img_put(&im, REC_X86_PV_P2M_FRAMES, b.data, b.len);
	mk_pages(&b, 0, 1, NULL, 17, PAGE);
	img_put(&im, REC_PAGE_DATA, b.data, b.len);
	mk_tsc(&b, 0, 1, 2, 3, 4);
	img_put(&im, REC_X86_TSC_INFO, b.data, b.len);
	mk_vcpu(&b, 0, 0, 5);
	img_put(&im, REC_X86_PV_VCPU_EXTENDED, b.data, b.len);
	img_put_empty(&im, REC_END);
	CHECK(run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, NULL, &e) == 0,
	    "bit-flip image valid: %s", e.msg);

	for (r = 0; r < im.nrec; r++) {
		end = r + 1 < im.nrec ? im.roff[r + 1] : im.b.len;
		reserved = end - 4;	/* the footer's reserved word */
		for (pos = im.roff[r]; pos < end; pos++) {
			if (pos >= reserved)
				continue;
			for (bit = 0; bit < 8; bit++) {
				im.b.data[pos] ^= 1u << bit;
				rv = run(im.b.data, im.b.len, CHUNK_WHOLE,
				    NULL, NULL, &e);
				im.b.data[pos] ^= 1u << bit;
				flips++;
				if (rv == 0) {
					passed++;
					fprintf(stderr, "flip at %zu bit %d "
					    "accepted\n", pos, bit);
				}
			}
		}
	}
	CHECK(passed == 0, "%zu of %zu bit flips accepted", passed, flips);
	CHECK(flips > 30000, "%zu flips", flips);
	printf("# %zu single-bit flips, all rejected\n", flips);

	/* The footer's reserved word is not covered. */
	im.b.data[im.b.len - 1] ^= 0x80;
	CHECK(run(im.b.data, im.b.len, CHUNK_WHOLE, NULL, NULL, &e) == 0,
	    "footer reserved word ignored");
	buf_free(&b);
	img_free(&im);
}

/* Random damage: never a crash, always a clean verdict with a message. */
static void
test_mutations(void)
{
	struct img	 im[3];
	struct xp_buf	 m = { 0 };
	struct xp_error	 e;
	size_t		 n, pos;
	int		 i, j, k, rv, odd = 0, ok = 0;

	img_pv(&im[0], XP_XEN, 0, 3);		/* no checksums to stop damage */
	img_hvm(&im[1], XP_XEN, 0, 2, WIRE_DOM_X86_HVM);
	img_pv(&im[2], XP_DRAFTB, 1, 0);
	rnd_state = 12345;
	for (i = 0; i < 3000; i++) {
		k = i % 3;
		m.len = 0;
		buf_append(&m, im[k].b.data, im[k].b.len);
		for (j = 1 + (int)(rnd() % 4); j > 0; j--) {
			pos = rnd() % m.len;
			if (rnd() % 2)
				pos = rnd() % 64 + (rnd() % 2 ? 24 : 0);
			m.data[pos % m.len] = (uint8_t)rnd();
		}
		n = rnd() % 8 ? m.len : rnd() % m.len;
		rv = run(m.data, n, (rnd() % 2) ? CHUNK_RANDOM : CHUNK_WHOLE,
		    NULL, NULL, &e);
		if (rv == 0)
			ok++;
		else if (rv >= 0 || e.code != -rv || e.msg[0] == '\0')
			odd++;
	}
	CHECK(odd == 0, "%d mutated images without a clean verdict", odd);
	printf("# 3000 mutated images: %d still valid, the rest refused\n", ok);
	buf_free(&m);
	for (k = 0; k < 3; k++)
		img_free(&im[k]);
}

/*
 * Allocation failures, in a child process whose address space is capped
 * just above what it uses (not under ASan, which needs far more).
 */
#if !defined(__SANITIZE_ADDRESS__) && defined(__linux__)
static int
enomem_child(void)
{
	struct xp_parser	*p;
	struct xp_stream	 st;
	struct xp_buf		 b = { 0 };
	struct rlimit		 rl;
	unsigned long		 pages = 0;
	uint8_t			 h[64];
	static uint8_t		 chunk[1u << 16];
	size_t			 fed;
	FILE			*f;
	ssize_t			 r;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 2;
	if (fscanf(f, "%lu", &pages) != 1)
		pages = 0;
	fclose(f);
	if (pages == 0)
		return 2;
	rl.rlim_cur = rl.rlim_max = pages * 4096 + (32u << 20);
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 2;

	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	if (buf_reserve(&b, 100u << 20) != -XP_ENOMEM || b.data != NULL)
		return 3;
	if (buf_extend(&b, 100u << 20) != NULL)
		return 4;
	if (record_encode(&st, &b, REC_HVM_CONTEXT, h, 100u << 20, 0) !=
	    -XP_ENOMEM)
		return 5;

	header_image_put(&st, h);
	header_domain_put(&st, h + 24);
	record_hdr_put(&st, h + 32, REC_HVM_CONTEXT, 100u << 20, 0);
	memset(h + 48, 0, 16);
	if ((p = parser_new(NULL, NULL, NULL, NULL)) == NULL)
		return 6;
	/* The buffer grows with the data: feed until it cannot. */
	r = parser_feed(p, h, sizeof h);
	for (fed = 0; r > 0 && fed < (100u << 20); fed += sizeof chunk)
		r = parser_feed(p, chunk, sizeof chunk);
	if (r != -XP_ENOMEM || parser_error(p)->code != XP_ENOMEM ||
	    strstr(parser_error(p)->msg, "record 0 (HVM_CONTEXT) at offset 32: "
	    "cannot allocate ") == NULL)
		return 7;
	if (parser_feed(p, h, 1) != -XP_ENOMEM)
		return 8;
	parser_free(p);
	return 0;
}
#endif

static void
test_enomem(void)
{
#if defined(__SANITIZE_ADDRESS__) || !defined(__linux__)
	printf("# allocation failure test skipped (sanitizer or not Linux)\n");
#else
	pid_t	pid;
	int	status = -1;

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == 0)
		_exit(enomem_child());
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "allocation failures: child status 0x%x", status);
#endif
}

/* Bad arguments, allocation-free paths. */
static void
test_misc(void)
{
	struct xp_parser	*p;
	struct img		 im;

	p = parser_new(NULL, NULL, NULL, NULL);
	CHECK(parser_feed(p, NULL, 4) == -XP_EINVAL, "NULL buffer");
	CHECK(parser_error(p)->code == 0, "NULL buffer does not fail the "
	    "parser");
	CHECK(parser_finish(p) == -XP_ETRUNCATED &&
	    strstr(parser_error(p)->msg, "after 0 of 24") != NULL,
	    "empty stream: %s", parser_error(p)->msg);
	parser_free(p);
	parser_free(NULL);

	/* The parser without callbacks still validates everything. */
	img_hvm(&im, XP_DRAFTB, 1, 0, WIRE_DOM_X86_PVH);
	p = parser_new(NULL, NULL, NULL, NULL);
	CHECK(parser_feed(p, im.b.data, im.b.len) == (ssize_t)im.b.len &&
	    parser_finish(p) == 0 && parser_stream(p)->dom_type ==
	    WIRE_DOM_X86_PVH, "PVH draft-B without callbacks");
	parser_free(p);
	img_free(&im);
}

/* ---- page data taken direct (parser_set_direct) --------------------------- */

#define DIR_PAGES	40

struct dircol {
	uint8_t		*arena;		/* where begin puts page i: i * PAGE */
	int		 begins, ends, end_rv, decline;
	uint32_t	 ndata;
	size_t		 records;	/* record callback calls */
	uint32_t	 rec_len[8];
};

static int
dir_begin(void *arg, const struct xp_stream *st, const struct xp_record *r,
    uint8_t **dst)
{
	struct dircol	*c = arg;
	uint32_t	 count = xp_get32(st->big_endian, r->body), i, nd = 0;

	c->begins++;
	if (c->decline)
		return XP_DIRECT_DECLINE;
	for (i = 0; i < count; i++)
		if (body_page_type_has_data((unsigned)(xp_get64(
		    st->big_endian, r->body + 8 + 8 * i) >>
		    WIRE_PFN_TYPE_SHIFT)))
			dst[nd] = c->arena + (size_t)nd * PAGE, nd++;
	c->ndata = nd;
	return 0;
}

static int
dir_end(void *arg, const struct xp_stream *st, const struct xp_record *r,
    int rv)
{
	struct dircol	*c = arg;

	(void)st;
	(void)r;
	c->ends++;
	c->end_rv = rv;
	return 0;
}

static int
dir_record(void *arg, const struct xp_stream *st, const struct xp_record *r)
{
	struct dircol	*c = arg;

	(void)st;
	if (c->records < 8)
		c->rec_len[c->records] = r->length;
	c->records++;
	return 0;
}

/* Feed d[0..n) in chunks as run() does, with direct data at min_data. */
static int
run_direct(const uint8_t *d, size_t n, size_t chunk, size_t min_data,
    struct dircol *c, struct xp_error *err)
{
	struct xp_direct	 xd = { .min_data = min_data,
	    .begin = dir_begin, .end = dir_end };
	struct xp_parser	*p;
	size_t			 off = 0, k;
	ssize_t			 r;
	int			 rv = 0, saw_active = 0;

	if ((p = parser_new(NULL, NULL, dir_record, c)) == NULL)
		return -XP_ENOMEM;
	parser_set_direct(p, &xd);
	while (off < n) {
		k = chunk_len(chunk, n - off);
		if ((r = parser_feed(p, d + off, k)) < 0) {
			rv = (int)r;
			goto out;
		}
		if (r == 0) {
			rv = -XP_EINVAL;
			goto out;
		}
		off += (size_t)r;
		saw_active |= parser_direct_active(p);
	}
	rv = parser_finish(p);
	/* A record taken direct is active between pieces of its data. */
	if (rv == 0 && c->ends > 0 && chunk != CHUNK_WHOLE && !saw_active)
		rv = -XP_EINVAL;
out:
	if (err != NULL)
		*err = *parser_error(p);
	parser_free(p);
	return rv;
}

static void
test_direct(void)
{
	static const size_t	 chunks[] = { CHUNK_WHOLE, 1, 7, 4097,
	    CHUNK_RANDOM };
	static const char	*cname[] = { "whole", "1", "7", "4097",
	    "random" };
	enum xp_dialect		 dl[2] = { XP_DRAFTB, XP_XEN };
	unsigned		 types[DIR_PAGES + 4];
	struct xp_buf		 b = { 0 };
	struct img		 im;
	struct dircol		 c;
	struct xp_error		 e, e0;
	uint8_t			*want, *data, *bad;
	uint64_t		 off4;
	size_t			 i, k, hs, dlen = (size_t)DIR_PAGES * PAGE;
	int			 rv, d, be;

	want = malloc(dlen);
	for (i = 0; i < dlen; i++)
		want[i] = (uint8_t)rnd();
	for (i = 0; i < DIR_PAGES + 4; i++)
		types[i] = (i % 11 == 5) ? PT_XTAB : PT_NOTAB;
	for (d = 0; d < 2; d++)
	for (be = 0; be < (dl[d] == XP_DRAFTB ? 2 : 1); be++) {
		const char *dn = dl[d] == XP_XEN ? "xen" : be ? "draftb-be" :
		    "draftb";

		img_begin(&im, dl[d], be, WIRE_DOM_X86_HVM);
		mk_cpuid(&b, be, 4);
		img_put(&im, REC_X86_CPUID_POLICY, b.data, b.len);
		mk_msr(&b, be, 3);
		img_put(&im, REC_X86_MSR_POLICY, b.data, b.len);
		img_put_empty(&im, REC_STATIC_DATA_END);
		/* 44 entries, 4 of them XTAB: 40 pages of data. */
		mk_pages(&b, be, DIR_PAGES + 4, types, 100, PAGE);
		data = b.data + 8 + (size_t)(DIR_PAGES + 4) * 8;
		memcpy(data, want, dlen);
		img_put(&im, REC_PAGE_DATA, b.data, b.len);
		mk_pages(&b, be, 1, NULL, 7, PAGE);	/* small: gathered */
		img_put(&im, REC_PAGE_DATA, b.data, b.len);
		img_put_empty(&im, REC_END);
		off4 = im.roff[3];
		hs = record_hdr_size(&im.st);

		for (k = 0; k < sizeof chunks / sizeof *chunks; k++) {
			memset(&c, 0, sizeof c);
			c.arena = calloc(DIR_PAGES, PAGE);
			rv = run_direct(im.b.data, im.b.len, chunks[k],
			    64u << 10, &c, &e);
			CHECK(rv == 0 && c.begins == 1 && c.ends == 1 &&
			    c.end_rv == 0 && c.ndata == DIR_PAGES,
			    "direct %s, chunks %s: rv %d (%s), %d begin, "
			    "%d end (%d), %u pages", dn, cname[k], rv, e.msg,
			    c.begins, c.ends, c.end_rv, c.ndata);
			CHECK(memcmp(c.arena, want, dlen) == 0, "direct %s, "
			    "chunks %s: the data landed in its pages", dn,
			    cname[k]);
			/* The other records, and only they, as usual. */
			CHECK(c.records == 5 && c.rec_len[3] == 8 + 8 + PAGE,
			    "direct %s, chunks %s: %zu records to the record "
			    "callback", dn, cname[k], c.records);
			free(c.arena);
		}

		/*
		 * The caller reads the data in place itself: feed up to the
		 * data, then parser_direct_space / _commit in odd pieces.
		 */
		for (k = 0; k < 2; k++) {
			struct xp_direct xd = { .min_data = 64u << 10,
			    .begin = dir_begin, .end = dir_end };
			struct xp_parser *p;
			uint8_t *to, *src = malloc(im.b.len);
			size_t off = 0, room, n, piece = 0;
			ssize_t r = 0;

			memcpy(src, im.b.data, im.b.len);
			if (k == 1)	/* one octet of data flipped */
				src[off4 + hs + 8 + 8 * (DIR_PAGES + 4) +
				    17 * PAGE + 5] ^= 0x80;
			memset(&c, 0, sizeof c);
			c.arena = calloc(DIR_PAGES, PAGE);
			p = parser_new(NULL, NULL, dir_record, &c);
			parser_set_direct(p, &xd);
			while (off < im.b.len && r >= 0) {
				n = 1 + (piece++ * 7919) % 6000;
				if (n > im.b.len - off)
					n = im.b.len - off;
				if ((room = parser_direct_space(p, &to)) > 0) {
					if (n > room)
						n = room;
					memcpy(to, src + off, n);
					r = parser_direct_commit(p, n);
				} else
					r = parser_feed(p, src + off, n);
				if (r > 0)
					off += (size_t)r;
			}
			if (r >= 0)
				r = parser_finish(p);
			if (k == 0)
				CHECK(r == 0 && c.ends == 1 && c.end_rv == 0 &&
				    memcmp(c.arena, want, dlen) == 0 &&
				    c.records == 5, "direct %s, read in place: "
				    "%zd (%s), %d end, %zu records", dn, r,
				    parser_error(p)->msg, c.ends, c.records);
			else if (dl[d] == XP_DRAFTB)
				CHECK(r == -XP_ECHECKSUM && c.ends == 1 &&
				    c.end_rv == -XP_ECHECKSUM && strstr(
				    parser_error(p)->msg, "record 3 (PAGE_DATA)"),
				    "direct %s, read in place, flipped: %zd "
				    "\"%s\"", dn, r, parser_error(p)->msg);
			parser_free(p);
			free(c.arena);
			free(src);
		}

		/* Declined: the record callback gets it whole. */
		memset(&c, 0, sizeof c);
		c.decline = 1;
		rv = run_direct(im.b.data, im.b.len, CHUNK_RANDOM, 64u << 10,
		    &c, &e);
		CHECK(rv == 0 && c.begins == 1 && c.ends == 0 &&
		    c.records == 6 && c.rec_len[3] == 8 + 8 * (DIR_PAGES + 4) +
		    dlen, "direct %s declined: rv %d (%s), %zu records", dn,
		    rv, e.msg, c.records);
		/* Above the threshold: gathered, never begun. */
		memset(&c, 0, sizeof c);
		rv = run_direct(im.b.data, im.b.len, 7, dlen + 1, &c, &e);
		CHECK(rv == 0 && c.begins == 0 && c.records == 6,
		    "direct %s, data below min_data: gathered (%d, %d begin)",
		    dn, rv, c.begins);

		/* One octet of data flipped: the checksum fails. */
		bad = malloc(im.b.len);
		memcpy(bad, im.b.data, im.b.len);
		bad[off4 + hs + 8 + 8 * (DIR_PAGES + 4) + 3 * PAGE + 77] ^= 1;
		for (k = 0; k < sizeof chunks / sizeof *chunks; k++) {
			memset(&c, 0, sizeof c);
			c.arena = calloc(DIR_PAGES, PAGE);
			rv = run_direct(bad, im.b.len, chunks[k], 64u << 10,
			    &c, &e);
			if (dl[d] == XP_XEN) {
				/* No checksum: the flipped octet lands. */
				CHECK(rv == 0 && c.arena[3 * PAGE + 77] ==
				    (want[3 * PAGE + 77] ^ 1), "direct xen: "
				    "no checksum to fail (%d)", rv);
			} else {
				char needle[96];

				snprintf(needle, sizeof needle, "record 3 "
				    "(PAGE_DATA) at offset %" PRIu64 ": "
				    "checksum 0x", off4);
				CHECK(rv == -XP_ECHECKSUM && e.code ==
				    XP_ECHECKSUM && strstr(e.msg, needle) &&
				    strstr(e.msg, "does not match") &&
				    c.ends == 1 && c.end_rv == -XP_ECHECKSUM &&
				    c.records == 3, "direct %s, chunks %s, "
				    "flipped data: %d \"%s\", end %d (%d), %zu "
				    "records", dn, cname[k], rv, e.msg,
				    c.ends, c.end_rv, c.records);
				/* The same message as without direct. */
				rv = run(bad, im.b.len, chunks[k], NULL, NULL,
				    &e0);
				CHECK(strcmp(e.msg, e0.msg) == 0, "direct %s: "
				    "\"%s\" is \"%s\"", dn, e.msg, e0.msg);
			}
			free(c.arena);
		}
		/* Cut inside the data: truncated, no end. */
		memset(&c, 0, sizeof c);
		c.arena = calloc(DIR_PAGES, PAGE);
		rv = run_direct(im.b.data, off4 + hs + 8 + 8 * (DIR_PAGES + 4) +
		    5 * PAGE + 3, 1000, 64u << 10, &c, &e);
		rv = run(im.b.data, off4 + hs + 8 + 8 * (DIR_PAGES + 4) +
		    5 * PAGE + 3, 1000, NULL, NULL, &e0) == rv ? rv : 12345;
		CHECK(rv == -XP_ETRUNCATED && c.begins == 1 && c.ends == 0 &&
		    strcmp(e.msg, e0.msg) == 0, "direct %s cut inside the "
		    "data: %d \"%s\" (without direct: \"%s\")", dn, rv,
		    e.msg, e0.msg);
		free(c.arena);
		/* A pfn list that does not fit the length: as usual. */
		memcpy(bad, im.b.data, im.b.len);
		xp_put32(be, bad + off4 + hs, DIR_PAGES + 5);
		memset(&c, 0, sizeof c);
		rv = run_direct(bad, im.b.len, 3, 64u << 10, &c, &e);
		run(bad, im.b.len, 3, NULL, NULL, &e0);
		CHECK(rv == -e0.code && c.begins == 0 &&
		    strcmp(e.msg, e0.msg) == 0, "direct %s, count off by one: "
		    "\"%s\" (without direct: \"%s\")", dn, e.msg, e0.msg);
		free(bad);
		img_free(&im);
	}
	buf_free(&b);
	free(want);
}

int
main(void)
{
	test_primitives();
	test_roundtrip();
	test_reorder();
	test_conversion();
	test_accepted();
	test_reject_headers();
	test_reject_framing();
	test_reject_bodies();
	test_callbacks();
	test_chunking();
	test_gather_bound();
	test_truncation();
	test_bitflips();
	test_mutations();
	test_enomem();
	test_misc();
	test_direct();
	return tap_done();
}
