/*
 * test-ext.c -- unit tests of xmig's extensions in proto/ (SPEC sections
 * 12 and 13): XMIG_NEGOTIATE, XMIG_ZERO_PAGES and DEFLATE PAGE_DATA in the
 * forward stream (round trips, every rejection path, inflation failures),
 * and the control parser of the back-channel and of the sender's records
 * after END (round trips, header and record rejections, order, truncation
 * at every offset, every single-bit flip, 1-octet feeding), and
 * xp_escape(), through which every message shows a peer's text.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "proto.h"
#include "tap.h"

#define PAGE		4096u
#define MAXREC		64

/* ---- building forward images ------------------------------------------ */

struct img {
	struct xp_stream st;
	struct xp_buf	 b;
	uint16_t	 opts;		/* draft-B record options */
	size_t		 nrec;
	uint64_t	 roff[MAXREC];
	uint32_t	 rtype[MAXREC];
};

static void
img_begin_v(struct img *im, enum xp_dialect d, int be, uint32_t version,
    uint16_t type, int backchannel)
{
	uint8_t	*p;

	memset(im, 0, sizeof *im);
	stream_init(&im->st, d, be, WIRE_ARCH_X86, type, 12);
	if (version != 0)
		im->st.version = version;
	if (backchannel)
		im->st.ihdr_options |= WIRE_IHDR_OPT_BACKCHANNEL;
	im->opts = d == XP_DRAFTB ? WIRE_REC_OPT_CHECKSUM : 0;
	p = buf_extend(&im->b, WIRE_IHDR_SIZE);
	header_image_put(&im->st, p);
	if (backchannel && d == XP_XEN)
		p[17] |= WIRE_IHDR_OPT_BACKCHANNEL;	/* forged */
	p = buf_extend(&im->b, header_domain_size(&im->st));
	header_domain_put(&im->st, p);
}

static void
img_begin(struct img *im, enum xp_dialect d, int be, uint16_t type)
{
	img_begin_v(im, d, be, 0, type, 0);
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
img_put_opt(struct img *im, uint32_t type, const void *body, uint32_t len,
    uint16_t opts)
{
	int	rv;

	img_note(im, type);
	rv = record_encode(&im->st, &im->b, type, body, len, opts);
	CHECK(rv == 0, "record_encode(%s, %u): %d", record_type_name(type),
	    len, rv);
}

static void
img_put(struct img *im, uint32_t type, const void *body, uint32_t len)
{
	img_put_opt(im, type, body, len, im->opts);
}

static void
img_put_empty(struct img *im, uint32_t type)
{
	img_put(im, type, NULL, 0);
}

/* A record with any options, checksum computed (draft-B). */
static void
img_raw(struct img *im, uint32_t type, const void *body, uint32_t len,
    uint16_t opts)
{
	size_t		 hs = record_hdr_size(&im->st);
	size_t		 ts = record_trailer_size(&im->st, len);
	uint8_t		*p;

	img_note(im, type);
	p = buf_extend(&im->b, hs + len + ts);
	record_hdr_put(&im->st, p, type, len, opts);
	if (len)
		memcpy(p + hs, body, len);
	record_trailer_put(&im->st, p + hs + len, len, opts,
	    (opts & WIRE_REC_OPT_CHECKSUM) ? xp_crc32(0, p, hs + len) : 0);
}

/* The start of a stream that may carry pages: policies and SDE. */
static void
img_static(struct img *im)
{
	uint8_t	cpuid[24];

	memset(cpuid, 0, sizeof cpuid);
	if (!(im->st.dialect == XP_XEN && im->st.version == 2)) {
		img_put(im, REC_X86_CPUID_POLICY, cpuid, sizeof cpuid);
		img_put_empty(im, REC_STATIC_DATA_END);
	}
}

static void
img_free(struct img *im)
{
	buf_free(&im->b);
}

/* ---- running the parsers ------------------------------------------------ */

struct seen {
	uint32_t	 type, length, flags;
	uint16_t	 options;
	uint64_t	 index, offset;
	int		 known;
	uint8_t		*body;
	struct xp_record rec;		/* body points to the copy */
};

struct collect {
	struct seen	*v;
	size_t		 n;
	struct xp_stream st;
	int		 pause;
};

static void
collect_free(struct collect *c)
{
	size_t	i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].body);
	free(c->v);
	memset(c, 0, sizeof *c);
}

static int
cb_record(void *arg, const struct xp_stream *st, const struct xp_record *r)
{
	struct collect	*c = arg;
	struct seen	*s;

	if (c == NULL)
		return 0;
	c->st = *st;
	c->v = realloc(c->v, (c->n + 1) * sizeof *c->v);
	s = &c->v[c->n++];
	memset(s, 0, sizeof *s);
	s->type = r->type;
	s->length = r->length;
	s->flags = r->flags;
	s->options = r->options;
	s->index = r->index;
	s->offset = r->offset;
	s->known = r->known;
	s->body = malloc(r->length + 1);
	memcpy(s->body, r->body, r->length);
	s->rec = *r;
	s->rec.body = s->body;
	s->rec.hdr = NULL;
	return c->pause ? XP_PAUSE : 0;
}

static uint32_t rnd_state = 0x9E3779B9;

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

/* Which parser a run uses. */
enum kind {
	K_STREAM,		/* parser_new: a forward stream */
	K_BACK,			/* parser_new_control(BACK, header) */
	K_FORWARD,		/* parser_new_control(FORWARD, no header) */
};

static struct xp_parser *
mkparser(enum kind k, const struct xp_limits *lim, struct collect *c)
{
	switch (k) {
	case K_STREAM:
		return parser_new(lim, NULL, cb_record, c);
	case K_BACK:
		return parser_new_control(lim, XP_CONTROL_BACK, 1, cb_record,
		    c);
	default:
		return parser_new_control(lim, XP_CONTROL_FORWARD, 0,
		    cb_record, c);
	}
}

static int
run_k(enum kind k, const uint8_t *d, size_t n, size_t chunk,
    const struct xp_limits *lim, struct collect *c, struct xp_error *err)
{
	struct xp_parser	*p;
	size_t			 off = 0, len;
	ssize_t			 r;
	int			 rv = 0;

	if ((p = mkparser(k, lim, c)) == NULL)
		return -XP_ENOMEM;
	while (off < n) {
		if (chunk == CHUNK_WHOLE)
			len = n - off;
		else if (chunk == CHUNK_RANDOM)
			len = 1 + rnd() % 50;
		else
			len = chunk;
		if (len > n - off)
			len = n - off;
		r = parser_feed(p, d + off, len);
		if (r < 0) {
			rv = (int)r;
			goto out;
		}
		if (r == 0) {
			rv = -XP_EINVAL;
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

static void
reject_k(const char *what, enum kind k, const uint8_t *d, size_t n,
    const struct xp_limits *lim, int code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Expect a rejection with code and a message containing the needle. */
static void
reject_k(const char *what, enum kind k, const uint8_t *d, size_t n,
    const struct xp_limits *lim, int code, const char *fmt, ...)
{
	struct xp_error	e0, e1;
	char		needle[320] = "";
	va_list		ap;
	int		rv0, rv1;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(needle, sizeof needle, fmt, ap);
		va_end(ap);
	}
	rv0 = run_k(k, d, n, CHUNK_WHOLE, lim, NULL, &e0);
	CHECK(rv0 == -code && e0.code == code, "%s: got %d (%s), want -%d "
	    "(%s)", what, rv0, e0.msg, code, xp_strerror(code));
	CHECK(strstr(e0.msg, needle) != NULL, "%s: message \"%s\" lacks "
	    "\"%s\"", what, e0.msg, needle);
	rv1 = run_k(k, d, n, 1, lim, NULL, &e1);
	CHECK(rv1 == rv0 && strcmp(e0.msg, e1.msg) == 0 &&
	    e0.index == e1.index && e0.offset == e1.offset &&
	    e0.type == e1.type, "%s: 1-octet chunks: %d \"%s\" vs %d \"%s\"",
	    what, rv1, e1.msg, rv0, e0.msg);
}

static void
accept_k(const char *what, enum kind k, const uint8_t *d, size_t n,
    const struct xp_limits *lim)
{
	struct xp_error	e;
	int		rv;

	rv = run_k(k, d, n, CHUNK_WHOLE, lim, NULL, &e);
	CHECK(rv == 0, "%s: rejected: %d %s", what, rv, e.msg);
	rv = run_k(k, d, n, 1, lim, NULL, &e);
	CHECK(rv == 0, "%s: 1-octet chunks: rejected: %d %s", what, rv,
	    e.msg);
	rv = run_k(k, d, n, CHUNK_RANDOM, lim, NULL, &e);
	CHECK(rv == 0, "%s: random chunks: rejected: %d %s", what, rv, e.msg);
}

#define reject(what, im, code, ...) \
	reject_k(what, K_STREAM, (im)->b.data, (im)->b.len, NULL, code, \
	    __VA_ARGS__)
#define reject_lim(what, im, lim, code, ...) \
	reject_k(what, K_STREAM, (im)->b.data, (im)->b.len, lim, code, \
	    __VA_ARGS__)
#define accept(what, im) \
	accept_k(what, K_STREAM, (im)->b.data, (im)->b.len, NULL)
#define accept_lim(what, im, lim) \
	accept_k(what, K_STREAM, (im)->b.data, (im)->b.len, lim)

static const char *
where(const struct img *im, size_t k)
{
	static char	s[128];

	snprintf(s, sizeof s, "record %zu (%s) at offset %" PRIu64 ": ", k,
	    record_type_name(im->rtype[k]), im->roff[k]);
	return s;
}

/* ---- bodies ---------------------------------------------------------------- */

static void
mk_negotiate(struct xp_negotiate *n, const struct xp_stream *st)
{
	memset(n, 0, sizeof *n);
	n->version = XMIG_NEGOTIATE_VERSION;
	n->features = XMIG_F_CHECKSUM | XMIG_F_DEFLATE | XMIG_F_ZERO_PAGES |
	    XMIG_F_ACKS | XMIG_F_HANDOVER;
	n->can_write = XMIG_CAN_DRAFTB_V1 | XMIG_CAN_XEN_V3;
	n->max_record_len = WIRE_REC_LENGTH_MAX;
	n->arch = st->arch;
	n->type = st->dom_type;
	n->page_shift = st->page_shift;
	n->nr_pages = 0x123456789ULL;
	n->nr_vcpus = 17;
	n->session_id = 0xFEDCBA9876543210ULL;
}

/* A ZERO_PAGES body: count pfns from first. */
static uint32_t
mk_zero(uint8_t *out, int be, uint32_t count, uint64_t first)
{
	uint64_t	pfns[64];
	uint32_t	i;

	for (i = 0; i < count; i++)
		pfns[i] = first + i * 3;
	CHECK(body_zero_pages_put(be, out, count, pfns) == 0, "zero put");
	return 8 + 8 * count;
}

/* count entries of types[] (NULL: NOTAB), pfns first + i, their pages. */
static size_t
mk_entries(uint64_t *e, uint8_t *pages, uint32_t count,
    const unsigned *types, uint64_t first)
{
	uint32_t	i;
	size_t		n = 0;
	unsigned	t;

	for (i = 0; i < count; i++) {
		t = types != NULL ? types[i] : PT_NOTAB;
		e[i] = body_pfn_entry(first + i, t);
		if (body_page_type_has_data(t)) {
			/* Compressible, not constant, different per page. */
			memset(pages + n, 0, PAGE);
			snprintf((char *)pages + n, PAGE, "page %u of %" PRIu64
			    ": some text", i, first + i);
			pages[n + PAGE - 1] = (uint8_t)(i * 31 + 7);
			n += PAGE;
		}
	}
	return n;
}

/*
 * A DEFLATE PAGE_DATA body, forged: count entries, raw_length field raw,
 * then the zlib stream z of zlen octets, deflated_length field zfield.
 */
static size_t
mk_deflate_body(uint8_t *out, int be, uint32_t count, const uint64_t *e,
    uint32_t raw, const uint8_t *z, uint32_t zlen, uint32_t zfield)
{
	size_t	pre = 8 + 8 * (size_t)count;

	body_page_data_prefix_put(be, out, count, e);
	xp_put32(be, out + pre, raw);
	xp_put32(be, out + pre + 4, zfield);
	memcpy(out + pre + 8, z, zlen);
	return pre + 8 + zlen;
}

static uLong
zcompress(uint8_t *out, size_t cap, const uint8_t *in, size_t len)
{
	uLongf	n = (uLongf)cap;

	CHECK(compress(out, &n, in, (uLong)len) == Z_OK, "compress");
	return n;
}

/* ---- tests: the registry ---------------------------------------------- */

static void
test_registry(void)
{
	static const struct {
		uint32_t	 type;
		const char	*name;
	} names[] = {
		{ REC_XMIG_NEGOTIATE, "XMIG_NEGOTIATE" },
		{ REC_XMIG_ZERO_PAGES, "XMIG_ZERO_PAGES" },
		{ REC_XMIG_HANDOVER, "XMIG_HANDOVER" },
		{ REC_XMIG_DOMAIN_CONFIG, "XMIG_DOMAIN_CONFIG" },
		{ REC_XMIG_EARLY_PARAMS, "XMIG_EARLY_PARAMS" },
		{ REC_XMIG_DELTA_PAGES, "XMIG_DELTA_PAGES" },
		{ REC_XMIG_REPLY, "XMIG_REPLY" },
		{ REC_XMIG_ACK, "XMIG_ACK" },
		{ REC_XMIG_ERROR, "XMIG_ERROR" },
		{ REC_XMIG_STATUS, "XMIG_STATUS" },
		{ REC_XMIG_DIGESTS, "XMIG_DIGESTS" },
		{ REC_XMIG_STREAMS, "XMIG_STREAMS" },
	};
	size_t	i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		CHECK(record_type_known(names[i].type), "%s known",
		    names[i].name);
		CHECK(strcmp(record_type_name(names[i].type), names[i].name) ==
		    0, "%s name", names[i].name);
		CHECK(names[i].type & WIRE_REC_OPTIONAL, "%s optional",
		    names[i].name);
	}
	/* XMIG_PASS (0x80000007) lives on data streams only, unregistered. */
	CHECK(!record_type_known(0x80000007u) &&
	    !record_type_known(0x80000008u) &&
	    !record_type_known(0x80000010u) &&
	    !record_type_known(0x80000018u), "gaps unknown");
	CHECK(WIRE_REC_OPT_KNOWN == 0x0007 && WIRE_REC_OPT_ZSTD == 0x0004,
	    "known options");
	CHECK(XMIG_F_KNOWN == 0xFFF && XMIG_F_DELTA == 0x800 &&
	    XMIG_F_PARALLEL == 0x40 &&
	    XMIG_F_CONFIG == 0x80 && XMIG_F_XXH3 == 0x100 &&
	    XMIG_F_ZSTD == 0x200 && XMIG_F_QUERY == 0x400 &&
	    XMIG_F_HANDOVER == 0x10, "feature bits");
}

/* ---- tests: XMIG_NEGOTIATE ---------------------------------------------- */

static void
test_negotiate(void)
{
	struct xp_negotiate	 n, m;
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	struct xp_record	 rec;
	uint8_t			 b[WIRE_NEGOTIATE_SIZE], x[WIRE_NEGOTIATE_SIZE];
	uint8_t			 y[WIRE_NEGOTIATE_SIZE], cpuid[24];
	int			 be, rv, i;

	memset(cpuid, 0, sizeof cpuid);
	for (be = 0; be < 2; be++) {
		img_begin_v(&im, XP_DRAFTB, be, 0, WIRE_DOM_X86_HVM, 1);
		mk_negotiate(&n, &im.st);
		body_negotiate_put(be, b, &n);
		img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
		img_static(&im);
		img_put_empty(&im, REC_END);
		accept(be ? "NEGOTIATE BE" : "NEGOTIATE LE", &im);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n == 4 && col.v[0].known &&
		    col.v[0].type == REC_XMIG_NEGOTIATE, "negotiate yielded");
		if (col.n > 0) {
			rv = body_negotiate_get(&col.st, &col.v[0].rec, &m);
			CHECK(rv == 0 && memcmp(&n, &m, sizeof n) == 0,
			    "negotiate round trip %d", be);
			/* Reordering to the other byte order and back. */
			CHECK(body_reorder(REC_XMIG_NEGOTIATE, col.v[0].body,
			    WIRE_NEGOTIATE_SIZE, be, !be, x) == 0, "reorder");
			CHECK(xp_get32(!be, x + 4) == n.features &&
			    xp_get16(!be, x + 18) == n.type &&
			    xp_get64(!be, x + 24) == n.nr_pages &&
			    xp_get32(!be, x + 32) == n.nr_vcpus &&
			    xp_get64(!be, x + 40) == n.session_id,
			    "negotiate fields reordered");
			CHECK(body_reorder(REC_XMIG_NEGOTIATE, x,
			    WIRE_NEGOTIATE_SIZE, !be, be, y) == 0 &&
			    memcmp(y, col.v[0].body, sizeof y) == 0,
			    "negotiate reorder back");
			rec = col.v[0].rec;
			rec.type = REC_XMIG_ZERO_PAGES;
			CHECK(body_negotiate_get(&col.st, &rec, &m) ==
			    -XP_EINVAL, "negotiate_get: other type");
			rec = col.v[1].rec;
			CHECK(body_negotiate_get(&col.st, &rec, &m) ==
			    -XP_EINVAL, "negotiate_get: CPUID");
		}
		collect_free(&col);
		img_free(&im);
	}
	CHECK(body_reorder(REC_XMIG_NEGOTIATE, b, 40, 0, 1, x) == -XP_EBODY,
	    "reorder: negotiate of 40 octets");

	/* The version is always written as 1, reserved as 0. */
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_PV, 1);
	mk_negotiate(&n, &im.st);
	n.version = 9;
	body_negotiate_put(0, b, &n);
	CHECK(xp_get32(0, b) == 1 && xp_get16(0, b + 22) == 0 &&
	    xp_get32(0, b + 36) == 0, "negotiate_put: version and reserved");
	img_free(&im);

	/* A stream with bit 1 need not carry it (an older writer). */
	img_begin_v(&im, XP_DRAFTB, 1, 0, WIRE_DOM_X86_HVM, 1);
	img_static(&im);
	img_put_empty(&im, REC_END);
	accept("bit 1 without NEGOTIATE", &im);
	img_free(&im);

	/* A reader holds the Xen dialect to the same rule (bit 1 forged). */
	img_begin_v(&im, XP_XEN, 0, 0, WIRE_DOM_X86_HVM, 1);
	mk_negotiate(&n, &im.st);
	body_negotiate_put(0, b, &n);
	img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
	img_put_empty(&im, REC_END);
	accept("Xen with bit 1 and NEGOTIATE", &im);
	img_free(&im);

	/* Not without bit 1, in either dialect. */
	for (i = 0; i < 2; i++) {
		img_begin(&im, i ? XP_XEN : XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		mk_negotiate(&n, &im.st);
		body_negotiate_put(0, b, &n);
		img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
		img_put_empty(&im, REC_END);
		reject("NEGOTIATE without bit 1", &im, XP_EORDER, "%sonly valid "
		    "when the image header offers a back-channel (options bit "
		    "1)", where(&im, 0));
		img_free(&im);
	}

	/* Not after another record, not twice. */
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
	mk_negotiate(&n, &im.st);
	body_negotiate_put(0, b, &n);
	img_put(&im, REC_X86_CPUID_POLICY, cpuid, sizeof cpuid);
	img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
	img_put_empty(&im, REC_END);
	reject("NEGOTIATE not first", &im, XP_EORDER, "%sonly valid as the "
	    "first record after the domain header", where(&im, 1));
	img_free(&im);
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
	img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
	img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
	img_put_empty(&im, REC_END);
	reject("NEGOTIATE twice", &im, XP_EORDER, "%sonly valid as the first",
	    where(&im, 1));
	img_free(&im);
	/* An unknown optional record before it counts as a record. */
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
	img_put(&im, 0x80000099u, b, 8);
	img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
	img_put_empty(&im, REC_END);
	reject("NEGOTIATE after an unknown record", &im, XP_EORDER, "%sonly "
	    "valid as the first", where(&im, 1));
	img_free(&im);

	/* Lengths. */
	for (i = 0; i < 2; i++) {
		uint8_t	big[56];

		memset(big, 0, sizeof big);
		memcpy(big, b, sizeof b);
		img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
		img_put(&im, REC_XMIG_NEGOTIATE, big, i ? 56 : 40);
		img_put_empty(&im, REC_END);
		reject("NEGOTIATE length", &im, XP_EBODY, "%slength %u is %s",
		    where(&im, 0), i ? 56 : 40, i ? "above the maximum 48" :
		    "below the minimum 48");
		img_free(&im);
	}

	/* Body rules, one field at a time. */
	{
		static const struct {
			const char	*what;
			size_t		 off;
			int		 width;
			uint64_t	 value;
			const char	*needle;
		} bad[] = {
			{ "version 0", 0, 4, 0, "negotiate_version 0 is not 1" },
			{ "version 2", 0, 4, 2, "negotiate_version 2 is not 1" },
			{ "streams without PARALLEL", 22, 2, 1, "streams is 1 "
			    "without the PARALLEL feature (must be 0)" },
			{ "interval without CHECKPOINTS", 36, 4, 0x80000000u,
			    "interval_ms is 2147483648 without the CHECKPOINTS "
			    "feature (must be 0)" },
			{ "feature bit 12", 4, 4, 0x1000,
			    "unknown feature bits 0x00001000" },
			{ "feature bit 31", 4, 4, 0x80000001u,
			    "unknown feature bits 0x80000000" },
			{ "can_write bit 3", 8, 4, 0x9,
			    "unknown can_write bits 0x00000008" },
			{ "max_record_len 0", 12, 4, 0,
			    "max_record_len 0 is not from 1" },
			{ "max_record_len too big", 12, 4,
			    WIRE_REC_LENGTH_MAX + 1, "max_record_len 134217729" },
			{ "arch", 16, 2, WIRE_ARCH_ARM, "domain 2/2/12" },
			{ "type", 18, 2, WIRE_DOM_X86_PV, "domain 1/1/12" },
			{ "page_shift", 20, 2, 16, "domain 1/2/16 (arch/type/"
			    "page_shift) is not the domain header's 1/2/12" },
		};
		size_t	k;

		for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			for (be = 0; be < 2; be++) {
				img_begin_v(&im, XP_DRAFTB, be, 0,
				    WIRE_DOM_X86_HVM, 1);
				mk_negotiate(&n, &im.st);
				body_negotiate_put(be, b, &n);
				if (bad[k].width == 2)
					xp_put16(be, b + bad[k].off,
					    (uint16_t)bad[k].value);
				else
					xp_put32(be, b + bad[k].off,
					    (uint32_t)bad[k].value);
				img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
				img_put_empty(&im, REC_END);
				reject(bad[k].what, &im, XP_EBODY, "%s%s",
				    where(&im, 0), bad[k].needle);
				/* The decoder agrees. */
				memset(&rec, 0, sizeof rec);
				rec.type = REC_XMIG_NEGOTIATE;
				rec.length = WIRE_NEGOTIATE_SIZE;
				rec.body = b;
				CHECK(body_negotiate_get(&im.st, &rec, &m) ==
				    -XP_EBODY, "negotiate_get: %s",
				    bad[k].what);
				img_free(&im);
			}
		}
	}
}

/* ---- tests: XMIG_ZERO_PAGES ----------------------------------------------- */

static void
test_zero_pages(void)
{
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	struct xp_limits	 lim;
	struct xp_page_view	 v;
	uint8_t			 b[8 + 8 * 64], x[8 + 8 * 64], y[8 + 8 * 64];
	uint8_t			 p2m[16], pvinfo[8] = { 8, 4 }, cpuid[24];
	uint64_t		 pfns[2];
	uint32_t		 len, i;
	int			 be, rv, k;

	memset(cpuid, 0, sizeof cpuid);
	/* Accepted in both dialects and byte orders; read back. */
	for (k = 0; k < 4; k++) {
		be = k == 1;
		img_begin_v(&im, k >= 2 ? XP_XEN : XP_DRAFTB, be, k == 3 ? 2 : 0,
		    WIRE_DOM_X86_HVM, 0);
		img_static(&im);
		len = mk_zero(b, be, 5, 0x1000);
		img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
		img_put_empty(&im, REC_END);
		accept("ZERO_PAGES", &im);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n >= 2, "zero pages: %s", e.msg);
		for (i = 0; i < col.n; i++) {
			if (col.v[i].type != REC_XMIG_ZERO_PAGES)
				continue;
			CHECK(col.v[i].known, "zero pages known");
			/* Xen v2: static data ends here, as at PAGE_DATA. */
			CHECK(col.v[i].flags == (k == 3 ?
			    XP_REC_SDE_INFERRED : 0u), "SDE flag (%d)", k);
			rv = body_page_data_view(&col.st, &col.v[i].rec, &v);
			CHECK(rv == 0 && v.zero && !v.deflated && v.count == 5 &&
			    v.ndata == 0 && v.data == NULL &&
			    xp_page_view_entry(&v, 4) == 0x1000 + 12,
			    "zero pages view");
		}
		collect_free(&col);
		img_free(&im);
	}

	/* Reordering. */
	len = mk_zero(b, 0, 3, 77);
	CHECK(body_reorder(REC_XMIG_ZERO_PAGES, b, len, 0, 1, x) == 0 &&
	    xp_get32(1, x) == 3 && xp_get64(1, x + 8 + 16) == 83,
	    "zero pages reordered");
	CHECK(body_reorder(REC_XMIG_ZERO_PAGES, x, len, 1, 0, y) == 0 &&
	    memcmp(y, b, len) == 0, "zero pages reordered back");
	CHECK(body_reorder(REC_XMIG_ZERO_PAGES, b, len - 8, 0, 1, x) ==
	    -XP_EBODY && body_reorder(REC_XMIG_ZERO_PAGES, b, 4, 0, 1, x) ==
	    -XP_EBODY, "zero pages layout refused");

	/* body_zero_pages_put refusals. */
	pfns[0] = 1;
	pfns[1] = WIRE_PFN_MASK + 1;
	CHECK(body_zero_pages_put(0, b, 0, pfns) == -XP_EINVAL, "count 0");
	CHECK(body_zero_pages_put(0, b, WIRE_PAGE_DATA_MAX + 1, pfns) ==
	    -XP_EINVAL, "count 1025");
	CHECK(body_zero_pages_put(0, b, 2, pfns) == -XP_EINVAL, "pfn too big");

	/* Memory: needs STATIC_DATA_END in draft-B and v3. */
	for (k = 0; k < 2; k++) {
		img_begin(&im, k ? XP_XEN : XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		len = mk_zero(b, 0, 1, 3);
		img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
		img_put_empty(&im, REC_END);
		reject("ZERO_PAGES before SDE", &im, XP_EORDER, "%sno "
		    "STATIC_DATA_END seen", where(&im, 0));
		img_free(&im);
	}
	/* Xen v2: static data after it is out of order. */
	img_begin_v(&im, XP_XEN, 0, 2, WIRE_DOM_X86_HVM, 0);
	len = mk_zero(b, 0, 1, 3);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_raw(&im, REC_X86_CPUID_POLICY, cpuid, sizeof cpuid, 0);
	img_put_empty(&im, REC_END);
	reject("v2: policy after ZERO_PAGES", &im, XP_EORDER, "%snot allowed "
	    "in a Xen v2 stream", where(&im, 1));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_put(&im, REC_X86_CPUID_POLICY, cpuid, sizeof cpuid);
	img_put_empty(&im, REC_END);
	reject("policy after ZERO_PAGES", &im, XP_EORDER, "%sstatic data "
	    "after STATIC_DATA_END", where(&im, 3));
	img_free(&im);

	/* Body rules. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	len = mk_zero(b, 0, 1, 3);
	xp_put32(0, b, 0);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, 16);
	img_put_empty(&im, REC_END);
	reject("ZERO_PAGES count 0", &im, XP_EBODY, "%scount is 0",
	    where(&im, 2));
	img_free(&im);

	memset(&lim, 0, sizeof lim);
	lim.max_record_len = 64;
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	len = mk_zero(b, 0, 2, 3);
	xp_put32(0, b, 9);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_put_empty(&im, REC_END);
	reject_lim("ZERO_PAGES count above max", &im, &lim, XP_EBODY, "%scount "
	    "9 is above the maximum 8", where(&im, 2));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_HVM);
	img_static(&im);
	len = mk_zero(b, 1, 2, 3);
	xp_put32(1, b + 4, 0x100);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_put_empty(&im, REC_END);
	reject("ZERO_PAGES reserved", &im, XP_EBODY, "%sreserved field is "
	    "0x00000100, not 0", where(&im, 2));
	img_free(&im);

	for (k = 0; k < 3; k++) {
		img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		img_static(&im);
		len = mk_zero(b, 0, 2, 3);
		if (k == 0)
			len += 8;		/* a third entry, count 2 */
		else if (k == 1)
			xp_put32(0, b, 1);	/* count 1, two entries */
		else
			len = 20;		/* half an entry short */
		img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
		img_put_empty(&im, REC_END);
		reject("ZERO_PAGES length", &im, XP_EBODY, "%slength %u is not",
		    where(&im, 2), len);
		img_free(&im);
	}

	for (k = 0; k < 3; k++) {
		static const uint64_t badent[] = {
			0xF000000000000005ULL,	/* XTAB */
			0x1000000000000005ULL,	/* L1TAB */
			0x0010000000000005ULL,	/* reserved bit 52 */
		};

		img_begin(&im, XP_DRAFTB, k == 1, WIRE_DOM_X86_HVM);
		img_static(&im);
		len = mk_zero(b, k == 1, 3, 3);
		xp_put64(k == 1, b + 8 + 8, badent[k]);
		img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
		img_put_empty(&im, REC_END);
		reject("ZERO_PAGES type bits", &im, XP_EBODY, "%spfn entry 1 "
		    "(0x%016" PRIx64 "): bits 63-52 are set", where(&im, 2),
		    badent[k]);
		img_free(&im);
	}

	/* Limits as for PAGE_DATA. */
	memset(&lim, 0, sizeof lim);
	lim.max_pfn = 0x1000;
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	len = mk_zero(b, 0, 2, 0xFFC);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_put_empty(&im, REC_END);
	accept_lim("ZERO_PAGES at max_pfn - 1", &im, &lim);
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	len = mk_zero(b, 0, 2, 0xFFD);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_put_empty(&im, REC_END);
	reject_lim("ZERO_PAGES beyond max_pfn", &im, &lim, XP_ELIMIT, "%spfn "
	    "entry 1: pfn 0x1000 is beyond the limit 0xfff", where(&im, 2));
	img_free(&im);

	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PV);
	img_put(&im, REC_X86_PV_INFO, pvinfo, sizeof pvinfo);
	img_put_empty(&im, REC_STATIC_DATA_END);
	xp_put32(0, p2m, 0);
	xp_put32(0, p2m + 4, 511);
	xp_put64(0, p2m + 8, 1);
	img_put(&im, REC_X86_PV_P2M_FRAMES, p2m, sizeof p2m);
	len = mk_zero(b, 0, 1, 512);
	img_put(&im, REC_XMIG_ZERO_PAGES, b, len);
	img_put_empty(&im, REC_END);
	reject("ZERO_PAGES beyond p2m_end_pfn", &im, XP_ELIMIT, "%spfn entry 0: "
	    "pfn 0x200 is beyond p2m_end_pfn 0x1ff", where(&im, 3));
	img_free(&im);

	/* Options: DEFLATE is for PAGE_DATA only. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	len = mk_zero(b, 0, 1, 3);
	img_raw(&im, REC_XMIG_ZERO_PAGES, b, len, WIRE_REC_OPT_CHECKSUM |
	    WIRE_REC_OPT_DEFLATE);
	img_put_empty(&im, REC_END);
	reject("ZERO_PAGES with DEFLATE", &im, XP_EOPTIONS, "%soption bit 1 "
	    "(DEFLATE) is only valid on PAGE_DATA", where(&im, 2));
	img_free(&im);
}

/* ---- tests: DEFLATE ---------------------------------------------------------- */

static void
test_deflate(void)
{
	static const unsigned	 types[8] = { PT_NOTAB, PT_XTAB, PT_L1TAB,
	    PT_XALLOC, PT_NOTAB, PT_BROKEN, PT_L4PIN, PT_NOTAB };
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	struct xp_limits	 lim;
	struct xp_page_view	 v;
	struct xp_buf		 w = { 0 }, q = { 0 };
	struct xp_stream	 st;
	uint64_t		 ent[8];
	uint8_t			*pages, *out, *z, *body, *x, *y;
	size_t			 plen, blen, zcap = 9 * PAGE;
	uLong			 zlen;
	uint32_t		 i;
	int			 be, rv, level, k;

	pages = malloc(8 * PAGE);
	out = malloc(9 * PAGE);
	z = malloc(zcap);
	body = malloc(16 * PAGE);
	x = malloc(16 * PAGE);
	y = malloc(16 * PAGE);
	plen = mk_entries(ent, pages, 8, types, 100);
	CHECK(plen == 5 * PAGE, "5 pages with data");

	/* Round trips, both byte orders, with and without checksum. */
	for (k = 0; k < 4; k++) {
		be = k & 1;
		img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
		if (k & 2)
			im.opts = 0;
		img_static(&im);
		img_note(&im, REC_PAGE_DATA);
		rv = record_encode_pages(&im.st, &im.b, 8, ent, pages, plen,
		    im.opts | WIRE_REC_OPT_DEFLATE, 6);
		CHECK(rv == 0, "encode deflated: %d", rv);
		img_note(&im, REC_PAGE_DATA);
		rv = record_encode_pages(&im.st, &im.b, 8, ent, pages, plen,
		    im.opts, 0);
		CHECK(rv == 0, "encode plain: %d", rv);
		img_put_empty(&im, REC_END);
		accept("DEFLATE PAGE_DATA", &im);

		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n == 5, "deflate image: %s", e.msg);
		if (col.n == 5) {
			struct xp_record *dr = &col.v[2].rec;
			struct xp_record *pr = &col.v[3].rec;

			CHECK(dr->options == (im.opts | WIRE_REC_OPT_DEFLATE),
			    "options");
			CHECK(dr->length < pr->length / 4, "it compresses: %u "
			    "vs %u", dr->length, pr->length);
			rv = body_page_data_view(&col.st, dr, &v);
			CHECK(rv == 0 && v.deflated && !v.zero &&
			    v.count == 8 && v.ndata == 5 && v.raw_length ==
			    5 * PAGE && v.data == NULL && v.zdata ==
			    dr->body + 8 + 64 + 8 && v.zlength == dr->length -
			    80, "deflate view");
			CHECK(xp_page_view_entry(&v, 6) == ent[6], "entry");
			memset(out, 0xEE, 9 * PAGE);
			rv = body_page_data_inflate(&col.st, dr, out, 9 * PAGE);
			CHECK(rv == 0 && memcmp(out, pages, plen) == 0 &&
			    out[plen] == 0xEE, "inflated exactly");
			rv = body_page_data_view(&col.st, pr, &v);
			CHECK(rv == 0 && !v.deflated && v.data == pr->body + 72 &&
			    memcmp(v.data, pages, plen) == 0, "plain view");
			CHECK(body_page_data_inflate(&col.st, pr, out, 9 *
			    PAGE) == -XP_EINVAL, "inflate a plain record");
			CHECK(body_page_data_inflate(&col.st, dr, out, plen -
			    1) == -XP_EINVAL, "inflate into too little");
			/* reorder_opt round trip: lengths swapped, zlib not. */
			CHECK(body_reorder_opt(REC_PAGE_DATA, dr->options,
			    dr->body, dr->length, be, !be, x) == 0, "reorder");
			CHECK(xp_get32(!be, x) == 8 && xp_get64(!be, x + 8 +
			    48) == ent[6] && xp_get32(!be, x + 72) == 5 * PAGE &&
			    xp_get32(!be, x + 76) == dr->length - 80 &&
			    memcmp(x + 80, dr->body + 80,
			    dr->length - 80) == 0, "deflate fields reordered");
			CHECK(body_reorder_opt(REC_PAGE_DATA, dr->options, x,
			    dr->length, !be, be, y) == 0 && memcmp(y, dr->body,
			    dr->length) == 0, "deflate reordered back");
			CHECK(body_reorder_opt(REC_PAGE_DATA, dr->options,
			    dr->body, 75, be, !be, x) == -XP_EBODY,
			    "reorder: deflate body without its lengths");
		}
		collect_free(&col);
		img_free(&im);
	}

	/* record_encode_pages plain equals record_encode of the body. */
	stream_init(&st, XP_DRAFTB, 1, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	body_page_data_prefix_put(1, body, 8, ent);
	memcpy(body + 72, pages, plen);
	CHECK(record_encode_pages(&st, &w, 8, ent, pages, plen,
	    WIRE_REC_OPT_CHECKSUM, 0) == 0 && record_encode(&st, &q,
	    REC_PAGE_DATA, body, (uint32_t)(72 + plen),
	    WIRE_REC_OPT_CHECKSUM) == 0 && w.len == q.len &&
	    memcmp(w.data, q.data, w.len) == 0, "encode_pages plain");
	stream_init(&st, XP_XEN, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	w.len = q.len = 0;
	body_page_data_prefix_put(0, body, 8, ent);
	CHECK(record_encode_pages(&st, &w, 8, ent, pages, plen,
	    WIRE_REC_OPT_CHECKSUM, 0) == 0 && record_encode(&st, &q,
	    REC_PAGE_DATA, body, (uint32_t)(72 + plen), 0) == 0 &&
	    w.len == q.len && memcmp(w.data, q.data, w.len) == 0,
	    "encode_pages Xen");
	/* Refusals leave the buffer as it was. */
	w.len = 3;
	CHECK(record_encode_pages(&st, &w, 8, ent, pages, plen,
	    WIRE_REC_OPT_DEFLATE, 6) == -XP_EINVAL, "DEFLATE in Xen");
	CHECK(record_encode(&st, &w, REC_PAGE_DATA, body, 72 + (uint32_t)plen,
	    WIRE_REC_OPT_DEFLATE) == -XP_EINVAL, "record_encode DEFLATE Xen");
	stream_init(&st, XP_DRAFTB, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	CHECK(record_encode_pages(&st, &w, 0, ent, pages, 0, 0, 0) ==
	    -XP_EINVAL, "count 0");
	CHECK(record_encode_pages(&st, &w, 8, ent, pages, plen - 1, 0, 0) ==
	    -XP_EINVAL, "pages_len mismatch");
	CHECK(record_encode_pages(&st, &w, 8, ent, pages, plen,
	    WIRE_REC_OPT_DEFLATE, 10) == -XP_EINVAL, "level 10");
	CHECK(record_encode_pages(&st, &w, 8, ent, pages, plen, 0x0008, 0) ==
	    -XP_EINVAL, "unknown option");
	CHECK(record_encode(&st, &w, REC_HVM_CONTEXT, body, 8,
	    WIRE_REC_OPT_DEFLATE) == -XP_EINVAL, "DEFLATE on HVM_CONTEXT");
	CHECK(record_encode(&st, &w, REC_XMIG_ZERO_PAGES, body, 16,
	    WIRE_REC_OPT_DEFLATE) == -XP_EINVAL, "DEFLATE on ZERO_PAGES");
	CHECK(w.len == 3, "nothing written on refusal");

	/* The deflate helper: every level, and its refusals. */
	for (level = -1; level <= 9; level++) {
		w.len = 0;
		CHECK(body_page_data_deflate(0, level, pages, plen, &w) == 0 &&
		    xp_get32(0, w.data) == plen && xp_get32(0, w.data + 4) ==
		    w.len - 8, "deflate level %d", level);
		zlen = 9 * PAGE;
		CHECK(uncompress(out, &zlen, w.data + 8, (uLong)(w.len - 8)) ==
		    Z_OK && zlen == plen && memcmp(out, pages, plen) == 0,
		    "level %d inflates", level);
	}
	w.len = 0;
	CHECK(body_page_data_deflate(1, 6, NULL, 0, &w) == 0 &&
	    xp_get32(1, w.data) == 0 && w.len > 8, "deflate nothing");
	CHECK(body_page_data_deflate(0, -2, pages, plen, &w) == -XP_EINVAL &&
	    body_page_data_deflate(0, 6, NULL, 5, &w) == -XP_EINVAL &&
	    body_page_data_deflate(0, 6, pages, (size_t)WIRE_REC_LENGTH_MAX + 1,
	    &w) == -XP_EINVAL, "deflate refusals");

	/* DEFLATE on other records, and in the Xen dialect. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_HVM_CONTEXT, body, 8, WIRE_REC_OPT_DEFLATE);
	img_put_empty(&im, REC_END);
	reject("DEFLATE on HVM_CONTEXT", &im, XP_EOPTIONS, "%soption bit 1 "
	    "(DEFLATE) is only valid on PAGE_DATA", where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_HVM);
	img_raw(&im, REC_END, NULL, 0, WIRE_REC_OPT_DEFLATE |
	    WIRE_REC_OPT_CHECKSUM);
	reject("DEFLATE on END", &im, XP_EOPTIONS, "%soption bit 1",
	    where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_raw(&im, 0x80000077u, body, 8, WIRE_REC_OPT_DEFLATE);
	img_put_empty(&im, REC_END);
	reject("DEFLATE on an unknown optional record", &im, XP_EOPTIONS,
	    "%soption bit 1", where(&im, 0));
	img_free(&im);
	/* Xen has no options: a deflated body there is a bad PAGE_DATA. */
	zlen = zcompress(z, zcap, pages, plen);
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	blen = mk_deflate_body(body, 0, 8, ent, (uint32_t)plen, z,
	    (uint32_t)zlen, (uint32_t)zlen);
	img_put(&im, REC_PAGE_DATA, body, (uint32_t)blen);
	img_put_empty(&im, REC_END);
	reject("deflated body in the Xen dialect", &im, XP_EBODY, "%slength %zu "
	    "is not %zu (8 pfn entries, 5 of them with page data)",
	    where(&im, 2), blen, 72 + plen);
	img_free(&im);

	/* Structure: each rule of SPEC 12.2. */
	for (k = 0; k < 6; k++) {
		uint32_t	raw = (uint32_t)plen, zf = (uint32_t)zlen;
		uint32_t	zl = (uint32_t)zlen;
		const char	*needle;

		switch (k) {
		case 0:
			raw += PAGE;
			needle = "raw_length 24576 is not 20480 (5 pfn entries "
			    "with page data)";
			break;
		case 1:
			raw = 0;
			needle = "raw_length 0 is not 20480";
			break;
		case 2:
			zf = zl + 1;
			needle = "length 200 is not 201 (8 pfn entries and "
			    "deflated_length 121)";
			break;
		case 3:
			zf = zl - 1;
			needle = "length 200 is not 199 (8 pfn entries and "
			    "deflated_length 119)";
			break;
		case 4:
			zl = 0;
			zf = 0;
			blen = 0;
			needle = "length 76 is too short for 8 pfn entries, "
			    "raw_length and deflated_length";
			break;
		default:
			zf = 0xFFFFFFFFu;
			needle = "length 200 is not 4294967375 (8 pfn entries "
			    "and deflated_length 4294967295)";
			break;
		}
		img_begin(&im, XP_DRAFTB, k & 1, WIRE_DOM_X86_HVM);
		img_static(&im);
		blen = mk_deflate_body(body, k & 1, 8, ent, raw, z, zl, zf);
		if (k == 4)
			blen = 72 + 4;		/* half of the lengths */
		img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen,
		    WIRE_REC_OPT_CHECKSUM | WIRE_REC_OPT_DEFLATE);
		img_put_empty(&im, REC_END);
		reject("DEFLATE structure", &im, XP_EBODY, "%s%s",
		    where(&im, 2), needle);
		img_free(&im);
	}
	/* The entries are checked as for a plain PAGE_DATA. */
	{
		uint64_t	bad[8];

		memcpy(bad, ent, sizeof bad);
		bad[3] |= 1ULL << 55;
		img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		img_static(&im);
		blen = mk_deflate_body(body, 0, 8, bad, (uint32_t)plen, z,
		    (uint32_t)zlen, (uint32_t)zlen);
		img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen,
		    WIRE_REC_OPT_DEFLATE);
		img_put_empty(&im, REC_END);
		reject("DEFLATE entry reserved bits", &im, XP_EBODY, "%spfn "
		    "entry 3 (0xe080000000000067): reserved bits 59-52 are set",
		    where(&im, 2));
		img_free(&im);
		memset(&lim, 0, sizeof lim);
		lim.max_pfn = 104;
		img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		img_static(&im);
		blen = mk_deflate_body(body, 0, 8, ent, (uint32_t)plen, z,
		    (uint32_t)zlen, (uint32_t)zlen);
		img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen,
		    WIRE_REC_OPT_DEFLATE);
		img_put_empty(&im, REC_END);
		reject_lim("DEFLATE pfn limit", &im, &lim, XP_ELIMIT, "%spfn "
		    "entry 4: pfn 0x68 is beyond the limit 0x67",
		    where(&im, 2));
		/* Inflated, the record must fit the record maximum. */
		lim.max_pfn = 0;
		lim.max_record_len = 72 + (uint32_t)plen - 1;
		reject_lim("DEFLATE inflates above the maximum", &im, &lim,
		    XP_ETOOBIG, "%sinflated, the body would be %zu octets, "
		    "above the record maximum %zu", where(&im, 2), 72 + plen,
		    71 + plen);
		lim.max_record_len = 72 + (uint32_t)plen;
		accept_lim("DEFLATE inflates to the maximum", &im, &lim);
		img_free(&im);
	}

	/*
	 * Inflation: structurally valid records (the parser takes them)
	 * whose zlib stream is wrong.  raw_length is 5 pages each time.
	 */
	for (k = 0; k < 8; k++) {
		const char	*needle;
		uLong		 n;
		uint8_t		*src = malloc(7 * PAGE);

		memcpy(src, pages, plen);
		memset(src + plen, 0x5A, 2 * PAGE);
		switch (k) {
		case 0:		/* four pages inside */
			n = zcompress(z, zcap, src, plen - PAGE);
			needle = "inflates to 16384 octets, not raw_length 20480";
			break;
		case 1:		/* six pages inside */
			n = zcompress(z, zcap, src, plen + PAGE);
			needle = "inflates to more than raw_length 20480 octets";
			break;
		case 2:		/* trailing octets */
			n = zcompress(z, zcap, src, plen);
			memcpy(z + n, "abc", 3);
			n += 3;
			needle = "3 octets follow the end of the zlib stream";
			break;
		case 3:		/* garbage */
			for (i = 0; i < 200; i++)
				z[i] = (uint8_t)(i * 97 + 13);
			n = 200;
			needle = "the zlib stream is corrupt";
			break;
		case 4:		/* the adler-32 trailer cut off */
			n = zcompress(z, zcap, src, plen) - 4;
			needle = "the zlib stream ends early, after 20480 of "
			    "raw_length 20480 octets";
			break;
		case 5:		/* cut in the middle */
			n = zcompress(z, zcap, src, plen) / 2;
			needle = "the zlib stream ends early";
			break;
		case 6:		/* empty */
			n = 0;
			needle = "the zlib stream ends early, after 0 of";
			break;
		default:	/* a flipped bit in the adler-32 */
			n = zcompress(z, zcap, src, plen);
			z[n - 1] ^= 1;
			needle = "the zlib stream is corrupt after 20480 octets "
			    "(incorrect data check)";
			break;
		}
		free(src);
		img_begin(&im, XP_DRAFTB, k & 1, WIRE_DOM_X86_HVM);
		img_static(&im);
		blen = mk_deflate_body(body, k & 1, 8, ent, (uint32_t)plen, z,
		    (uint32_t)n, (uint32_t)n);
		img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen,
		    WIRE_REC_OPT_CHECKSUM | WIRE_REC_OPT_DEFLATE);
		img_put_empty(&im, REC_END);
		accept("structurally valid DEFLATE", &im);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n == 4, "inflate case %d parses", k);
		if (col.n == 4) {
			rv = body_page_data_inflate(&col.st, &col.v[2].rec, out,
			    9 * PAGE);
			CHECK(rv == -XP_EBODY, "inflate case %d: %d", k, rv);
			rv = body_page_data_inflate_err(&col.st,
			    &col.v[2].rec, out, 9 * PAGE, &e);
			CHECK(rv == -XP_EBODY && e.code == XP_EBODY &&
			    e.index == 2 && e.offset == im.roff[2] &&
			    e.type == REC_PAGE_DATA && strstr(e.msg,
			    "record 2 (PAGE_DATA) at offset ") != NULL &&
			    strstr(e.msg, ": deflated page data: ") != NULL &&
			    strstr(e.msg, needle) != NULL, "inflate case %d: "
			    "\"%s\" lacks \"%s\"", k, e.msg, needle);
		}
		collect_free(&col);
		img_free(&im);
	}

	/* Only PAGE_DATA and ZERO_PAGES have a page view. */
	memset(&col, 0, sizeof col);
	{
		struct xp_record	r;

		memset(&r, 0, sizeof r);
		r.type = REC_HVM_CONTEXT;
		r.body = body;
		r.length = 8;
		CHECK(body_page_data_view(&st, &r, &v) == -XP_EINVAL,
		    "view of HVM_CONTEXT");
		r.type = REC_PAGE_DATA;
		r.length = 4;
		CHECK(body_page_data_view(&st, &r, &v) == -XP_EBODY,
		    "view of a 4-octet PAGE_DATA");
	}

	buf_free(&w);
	buf_free(&q);
	free(pages);
	free(out);
	free(z);
	free(body);
	free(x);
	free(y);
}

/* ---- tests: ZSTD (SPEC 12.6) ---------------------------------------------- */

static void
test_zstd(void)
{
	static const unsigned	 types[8] = { PT_NOTAB, PT_XTAB, PT_L1TAB,
	    PT_XALLOC, PT_NOTAB, PT_BROKEN, PT_L4PIN, PT_NOTAB };
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	struct xp_page_view	 v;
	struct xp_buf		 w = { 0 };
	uint64_t		 ent[8];
	uint8_t			*pages, *out, *z, *body, *src;
	size_t			 plen, blen, zcap = 9 * PAGE, n;
	int			 be, rv, k;

	pages = malloc(8 * PAGE);
	out = malloc(9 * PAGE);
	z = malloc(zcap);
	body = malloc(16 * PAGE);
	src = malloc(7 * PAGE);
	plen = mk_entries(ent, pages, 8, types, 100);

	/* Round trips, both byte orders. */
	for (be = 0; be < 2; be++) {
		img_begin(&im, XP_DRAFTB, be, WIRE_DOM_X86_HVM);
		img_static(&im);
		img_note(&im, REC_PAGE_DATA);
		rv = record_encode_pages(&im.st, &im.b, 8, ent, pages, plen,
		    im.opts | WIRE_REC_OPT_ZSTD, 3);
		CHECK(rv == 0, "encode zstd: %d", rv);
		img_put_empty(&im, REC_END);
		accept("ZSTD PAGE_DATA", &im);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n == 4, "zstd image: %s", e.msg);
		if (col.n == 4) {
			rv = body_page_data_view(&col.st, &col.v[2].rec, &v);
			CHECK(rv == 0 && v.deflated && v.codec ==
			    WIRE_REC_OPT_ZSTD && v.raw_length == plen &&
			    v.zlength < plen, "zstd view");
			memset(out, 0, plen);
			CHECK(body_page_data_inflate(&col.st, &col.v[2].rec, out,
			    9 * PAGE) == 0 && memcmp(out, pages, plen) == 0,
			    "zstd pages come back");
		}
		collect_free(&col);
		img_free(&im);
	}

	/* Refusals of the writer. */
	img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
	CHECK(record_encode_pages(&im.st, &im.b, 8, ent, pages, plen,
	    WIRE_REC_OPT_ZSTD, 1) == -XP_EINVAL, "ZSTD in Xen");
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	CHECK(record_encode_pages(&im.st, &im.b, 8, ent, pages, plen,
	    WIRE_REC_OPT_ZSTD | WIRE_REC_OPT_DEFLATE, 1) == -XP_EINVAL,
	    "ZSTD and DEFLATE together");
	CHECK(record_encode(&im.st, &im.b, REC_HVM_CONTEXT, body, 8,
	    WIRE_REC_OPT_ZSTD) == -XP_EINVAL, "ZSTD on HVM_CONTEXT");
	CHECK(body_page_data_compress(0, WIRE_REC_OPT_ZSTD, 23, pages, plen,
	    &w) == -XP_EINVAL && body_page_data_compress(0, 0, 1, pages, plen,
	    &w) == -XP_EINVAL && w.len == 0, "zstd level 23, no codec");
	img_free(&im);

	/* Refusals of the parser: options. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	img_raw(&im, REC_HVM_CONTEXT, body, 8, WIRE_REC_OPT_ZSTD);
	img_put_empty(&im, REC_END);
	reject("ZSTD on HVM_CONTEXT", &im, XP_EOPTIONS, "%soption bit 2 "
	    "(ZSTD) is only valid on PAGE_DATA", where(&im, 2));
	img_free(&im);
	n = ZSTD_compress(z, zcap, pages, plen, 1);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	blen = mk_deflate_body(body, 0, 8, ent, (uint32_t)plen, z,
	    (uint32_t)n, (uint32_t)n);
	img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen, WIRE_REC_OPT_ZSTD |
	    WIRE_REC_OPT_DEFLATE);
	img_put_empty(&im, REC_END);
	reject("ZSTD and DEFLATE", &im, XP_EOPTIONS, "%soption bits 1 "
	    "(DEFLATE) and 2 (ZSTD) exclude each other", where(&im, 2));
	img_free(&im);
	/* Structure, as DEFLATE's, naming compressed_length. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	blen = mk_deflate_body(body, 0, 8, ent, (uint32_t)plen, z,
	    (uint32_t)n, (uint32_t)n + 1);
	img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen, WIRE_REC_OPT_ZSTD);
	img_put_empty(&im, REC_END);
	reject("ZSTD structure", &im, XP_EBODY, "%slength %zu is not %zu (8 "
	    "pfn entries and compressed_length %zu)", where(&im, 2), blen,
	    blen + 1, n + 1);
	img_free(&im);

	/* Decompression: structurally valid records with a wrong frame. */
	memcpy(src, pages, plen);
	memset(src + plen, 0x5A, 2 * PAGE);
	for (k = 0; k < 7; k++) {
		const char	*needle;

		switch (k) {
		case 0:		/* four pages inside */
			n = ZSTD_compress(z, zcap, src, plen - PAGE, 1);
			needle = "the zstd frame says 16384 octets, not "
			    "raw_length 20480";
			break;
		case 1:		/* six pages inside */
			n = ZSTD_compress(z, zcap, src, plen + PAGE, 1);
			needle = "the zstd frame says 24576 octets";
			break;
		case 2:		/* trailing octets */
			n = ZSTD_compress(z, zcap, src, plen, 1);
			memcpy(z + n, "abc", 3);
			n += 3;
			needle = "3 octets follow the end of the zstd frame";
			break;
		case 3:		/* garbage */
			for (n = 0; n < 200; n++)
				z[n] = (uint8_t)(n * 97 + 13);
			needle = "not one whole zstd frame";
			break;
		case 4:		/* cut in the middle */
			n = ZSTD_compress(z, zcap, src, plen, 1) / 2;
			needle = "not one whole zstd frame";
			break;
		case 5:		/* empty */
			n = 0;
			needle = "not one whole zstd frame";
			break;
		default:	/* a flipped octet inside a block */
			n = ZSTD_compress(z, zcap, src, plen, 1);
			z[n / 2] ^= 0xFF;
			needle = "zstd";
			break;
		}
		img_begin(&im, XP_DRAFTB, k & 1, WIRE_DOM_X86_HVM);
		img_static(&im);
		blen = mk_deflate_body(body, k & 1, 8, ent, (uint32_t)plen, z,
		    (uint32_t)n, (uint32_t)n);
		img_raw(&im, REC_PAGE_DATA, body, (uint32_t)blen,
		    WIRE_REC_OPT_CHECKSUM | WIRE_REC_OPT_ZSTD);
		img_put_empty(&im, REC_END);
		accept("structurally valid ZSTD", &im);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n == 4, "zstd case %d parses", k);
		if (col.n == 4) {
			rv = body_page_data_inflate_err(&col.st,
			    &col.v[2].rec, out, 9 * PAGE, &e);
			/* A flipped octet may still decode to other data:
			 * then the record is valid and the checksum (or
			 * the digest) is what catches it. */
			if (k == 6 && rv == 0)
				CHECK(memcmp(out, pages, plen) != 0,
				    "zstd case 6: other data");
			else
				CHECK(rv == -XP_EBODY && strstr(e.msg,
				    ": zstd page data: ") != NULL &&
				    strstr(e.msg, needle) != NULL, "zstd case "
				    "%d: \"%s\" lacks \"%s\"", k, e.msg, needle);
		}
		collect_free(&col);
		img_free(&im);
	}
	buf_free(&w);
	free(pages);
	free(out);
	free(z);
	free(body);
	free(src);
}

/* ---- tests: control records in a forward stream --------------------------- */

static void
test_forward_refusals(void)
{
	static const uint32_t	back[] = { REC_XMIG_REPLY, REC_XMIG_ACK,
	    REC_XMIG_ERROR, REC_XMIG_STATUS, REC_XMIG_DIGESTS };
	static const uint32_t	sizes[] = { 48, 24, 24, 8, 72 };
	struct img		im;
	uint8_t			body[128];
	size_t			i;

	memset(body, 0, sizeof body);
	xp_put32(0, body, 1);
	for (i = 0; i < sizeof back / sizeof back[0]; i++) {
		img_begin(&im, i % 2 ? XP_XEN : XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		img_put(&im, back[i], body, sizeof body < sizes[i] ?
		    sizeof body : sizes[i]);
		img_put_empty(&im, REC_END);
		reject("back record in a forward stream", &im, XP_EORDER,
		    "%sonly valid on a back-channel, not in a forward stream",
		    where(&im, 0));
		img_free(&im);
	}
	img_begin(&im, XP_DRAFTB, 1, WIRE_DOM_X86_PV);
	img_put(&im, REC_XMIG_HANDOVER, body, 8);
	img_put_empty(&im, REC_END);
	reject("HANDOVER before END", &im, XP_EORDER, "%sonly valid on the "
	    "control channel after END, not in the stream before it",
	    where(&im, 0));
	img_free(&im);
	/* After END it is trailing data to the forward parser. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put_empty(&im, REC_END);
	img_put(&im, REC_XMIG_HANDOVER, body, 8);
	reject("HANDOVER to the forward parser", &im, XP_ETRAILING, "data "
	    "after END");
	img_free(&im);
	/* Lengths are checked first, as for every known record. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put(&im, REC_XMIG_DIGESTS, body, 8);
	img_put_empty(&im, REC_END);
	reject("DIGESTS of 8", &im, XP_EBODY, "%slength 8 is below the minimum "
	    "72", where(&im, 0));
	img_free(&im);
}

/* ---- control streams ------------------------------------------------------ */

struct cimg {
	struct xp_buf	 b;
	size_t		 nrec;
	uint64_t	 roff[MAXREC];
	uint32_t	 rtype[MAXREC];
};

static void
cimg_begin(struct cimg *c, int header)
{
	memset(c, 0, sizeof *c);
	if (header)
		control_header_put(buf_extend(&c->b, WIRE_IHDR_SIZE));
}

static void
cimg_note(struct cimg *c, uint32_t type)
{
	if (c->nrec < MAXREC) {
		c->roff[c->nrec] = c->b.len;
		c->rtype[c->nrec] = type;
	}
	c->nrec++;
}

/* A control record through control_encode. */
static void
cimg_put(struct cimg *c, uint32_t type, const void *body, uint32_t len)
{
	cimg_note(c, type);
	CHECK(control_encode(&c->b, type, body, len) == 0, "control_encode "
	    "%s %u", record_type_name(type), len);
}

/* A forged control record: any type, options, checksum good or not. */
static void
cimg_raw(struct cimg *c, uint32_t type, const void *body, uint32_t len,
    uint16_t opts, int badcrc)
{
	struct xp_stream	 st;
	size_t			 hs, ts;
	uint8_t			*p;
	uint32_t		 crc;

	stream_init_control(&st);
	hs = record_hdr_size(&st);
	ts = record_trailer_size(&st, len);
	cimg_note(c, type);
	p = buf_extend(&c->b, hs + len + ts);
	record_hdr_put(&st, p, type, len, opts);
	if (len)
		memcpy(p + hs, body, len);
	crc = xp_crc32(0, p, hs + len);
	record_trailer_put(&st, p + hs + len, len, WIRE_REC_OPT_CHECKSUM,
	    crc);
	if (badcrc)
		p[hs + len + (ts - 8)] ^= 0x01;
	if (!(opts & WIRE_REC_OPT_CHECKSUM) && badcrc == 0)
		memset(p + hs + len + ts - 8, 0, 4);
}

static const char *
cwhere(const struct cimg *c, size_t k)
{
	static char	s[128];

	snprintf(s, sizeof s, "record %zu (%s) at offset %" PRIu64 ": ", k,
	    record_type_name(c->rtype[k]), c->roff[k]);
	return s;
}

#define creject(what, c, code, ...) \
	reject_k(what, K_BACK, (c)->b.data, (c)->b.len, NULL, code, \
	    __VA_ARGS__)
#define fcreject(what, c, code, ...) \
	reject_k(what, K_FORWARD, (c)->b.data, (c)->b.len, NULL, code, \
	    __VA_ARGS__)

static void
mk_reply(struct xp_reply *r, uint32_t result, const char *msg)
{
	memset(r, 0, sizeof *r);
	r->version = XMIG_NEGOTIATE_VERSION;
	r->features = XMIG_F_CHECKSUM | XMIG_F_ACKS | XMIG_F_HANDOVER;
	r->result = result;
	r->can_read = XMIG_CAN_KNOWN;
	r->max_record_len = WIRE_REC_LENGTH_MAX;
	r->max_memory = 1ULL << 40;
	r->restorable = (1ULL << REC_NR_MANDATORY) - 1;
	r->session_id = 0xFEDCBA9876543210ULL;
	r->message = msg;
	r->message_len = msg != NULL ? strlen(msg) : 0;
}

/* The typical back-channel of a migration with handover. */
static void
cimg_back(struct cimg *c)
{
	struct xp_reply		r;
	struct xp_ack		a = { 10, 1 << 20, 200 };
	struct xp_status	s = { XMIG_STATUS_RESTORED, NULL, 0 };
	struct xp_digests	d;

	cimg_begin(c, 1);
	mk_reply(&r, XMIG_REPLY_OK, NULL);
	cimg_note(c, REC_XMIG_REPLY);
	CHECK(control_reply_put(&c->b, &r) == 0, "reply put");
	cimg_note(c, REC_XMIG_ACK);
	CHECK(control_ack_put(&c->b, &a) == 0, "ack put");
	a.records = 42;
	cimg_note(c, REC_XMIG_ACK);
	CHECK(control_ack_put(&c->b, &a) == 0, "ack put");
	cimg_note(c, REC_XMIG_STATUS);
	CHECK(control_status_put(&c->b, &s) == 0, "status put");
	s.state = XMIG_STATUS_RUNNING;
	s.message = "running on host-b";
	s.message_len = strlen(s.message);
	cimg_note(c, REC_XMIG_STATUS);
	CHECK(control_status_put(&c->b, &s) == 0, "status put");
	memset(&d, 0, sizeof d);
	memset(d.memory_digest, 0xAB, 32);
	memset(d.vcpu_sha256, 0xCD, 32);
	d.nr_pages = 200;
	cimg_note(c, REC_XMIG_DIGESTS);
	CHECK(control_digests_put(&c->b, &d) == 0, "digests put");
}

/* ---- tests: the control parser ---------------------------------------------- */

static void
test_control_roundtrip(void)
{
	struct cimg		 c;
	struct collect		 col;
	struct xp_error		 e;
	struct xp_reply		 r, r2;
	struct xp_ack		 a;
	struct xp_status	 s;
	struct xp_digests	 d;
	struct xp_error_msg	 em, em2;
	struct xp_handover	 h;
	struct xp_parser	*p;
	const struct xp_stream	*st;
	size_t			 chunk;
	int			 rv, k;
	static const size_t	 chunks[] = { CHUNK_WHOLE, 1, 7, 16,
	    CHUNK_RANDOM };

	cimg_back(&c);
	CHECK(memcmp(c.b.data, "\xff\xff\xff\xff\xff\xff\xff\xff" "XENF"
	    "\0\0\0\1\0\2\0\0\0\0\0\0", 24) == 0, "back-channel header");
	for (k = 0; k < 5; k++) {
		chunk = chunks[k];
		memset(&col, 0, sizeof col);
		rv = run_k(K_BACK, c.b.data, c.b.len, chunk, NULL, &col, &e);
		CHECK(rv == 0 && col.n == 6, "back-channel chunk %zu: %d %s",
		    chunk, rv, e.msg);
		if (col.n != 6) {
			collect_free(&col);
			continue;
		}
		CHECK(col.st.dialect == XP_DRAFTB && !col.st.big_endian &&
		    col.st.arch == 0, "control stream");
		CHECK(col.v[0].type == REC_XMIG_REPLY && col.v[0].offset == 24 &&
		    col.v[0].index == 0 && col.v[0].known && col.v[0].options ==
		    WIRE_REC_OPT_CHECKSUM, "reply yielded");
		CHECK(control_reply_get(&col.v[0].rec, &r) == 0 &&
		    r.version == 1 && r.result == 0 && r.features ==
		    (XMIG_F_CHECKSUM | XMIG_F_ACKS | XMIG_F_HANDOVER) &&
		    r.can_read == 7 && r.max_memory == 1ULL << 40 &&
		    r.restorable == 0x7FFFF && r.session_id ==
		    0xFEDCBA9876543210ULL && r.message_len == 0 &&
		    r.max_record_len == WIRE_REC_LENGTH_MAX, "reply fields");
		CHECK(control_ack_get(&col.v[2].rec, &a) == 0 && a.records ==
		    42 && a.octets == 1 << 20 && a.pages == 200, "ack fields");
		CHECK(control_status_get(&col.v[3].rec, &s) == 0 && s.state ==
		    XMIG_STATUS_RESTORED && s.message_len == 0, "restored");
		CHECK(control_status_get(&col.v[4].rec, &s) == 0 && s.state ==
		    XMIG_STATUS_RUNNING && s.message_len == 17 &&
		    memcmp(s.message, "running on host-b", 17) == 0,
		    "running");
		CHECK(control_digests_get(&col.v[5].rec, &d) == 0 &&
		    d.memory_digest[31] == 0xAB && d.vcpu_sha256[0] == 0xCD &&
		    d.nr_pages == 200, "digests");
		/* Wrong decoders refuse. */
		CHECK(control_ack_get(&col.v[0].rec, &a) == -XP_EINVAL &&
		    control_reply_get(&col.v[1].rec, &r) == -XP_EINVAL &&
		    control_handover_get(&col.v[1].rec, &h) == -XP_EINVAL &&
		    control_error_get(&col.v[1].rec, &em) == -XP_EINVAL &&
		    control_status_get(&col.v[5].rec, &s) == -XP_EINVAL &&
		    control_digests_get(&col.v[3].rec, &d) == -XP_EINVAL,
		    "decoders check the type");
		collect_free(&col);
	}
	buf_free(&c.b);

	/* A refusing REPLY with its reason, then nothing. */
	cimg_begin(&c, 1);
	mk_reply(&r, XMIG_REPLY_MEMORY, "needs 8 GiB, 4 GiB free");
	cimg_note(&c, REC_XMIG_REPLY);
	CHECK(control_reply_put(&c.b, &r) == 0, "reply put");
	memset(&col, 0, sizeof col);
	rv = run_k(K_BACK, c.b.data, c.b.len, 1, NULL, &col, &e);
	CHECK(rv == 0 && col.n == 1 && control_reply_get(&col.v[0].rec, &r2) ==
	    0 && r2.result == XMIG_REPLY_MEMORY && r2.message_len == 23 &&
	    memcmp(r2.message, "needs 8 GiB, 4 GiB free", 23) == 0,
	    "refusing reply: %s", e.msg);
	collect_free(&col);
	buf_free(&c.b);

	/* ERROR as the first record, and after a REPLY and ACKs. */
	for (k = 0; k < 2; k++) {
		cimg_begin(&c, 1);
		if (k == 1) {
			mk_reply(&r, 0, NULL);
			cimg_note(&c, REC_XMIG_REPLY);
			CHECK(control_reply_put(&c.b, &r) == 0, "reply");
		}
		memset(&em, 0, sizeof em);
		em.record_index = 17;
		em.offset = 69664;
		em.record_type = REC_PAGE_DATA;
		em.code = XP_EBODY;
		em.message = "record 17 (PAGE_DATA) at offset 69664: length 12 "
		    "is below the minimum 16";
		em.message_len = strlen(em.message);
		cimg_note(&c, REC_XMIG_ERROR);
		CHECK(control_error_put(&c.b, &em) == 0, "error put");
		memset(&col, 0, sizeof col);
		rv = run_k(K_BACK, c.b.data, c.b.len, 3, NULL, &col, &e);
		CHECK(rv == 0 && col.n == (size_t)k + 1 &&
		    control_error_get(&col.v[k].rec, &em2) == 0 &&
		    em2.record_index == 17 && em2.offset == 69664 &&
		    em2.record_type == REC_PAGE_DATA && em2.code == XP_EBODY &&
		    em2.message_len == em.message_len &&
		    memcmp(em2.message, em.message, em.message_len) == 0,
		    "error round trip %d: %s", k, e.msg);
		collect_free(&col);
		buf_free(&c.b);
	}

	/* The forward control records after END: no header. */
	for (k = 0; k < 2; k++) {
		cimg_begin(&c, 0);
		h.command = k ? XMIG_HANDOVER_ABORT : XMIG_HANDOVER_GO;
		cimg_note(&c, REC_XMIG_HANDOVER);
		CHECK(control_handover_put(&c.b, &h) == 0, "handover put");
		CHECK(c.b.len == 32, "handover is 32 octets on the wire");
		memset(&col, 0, sizeof col);
		rv = run_k(K_FORWARD, c.b.data, c.b.len, 1, NULL, &col, &e);
		CHECK(rv == 0 && col.n == 1 && col.v[0].offset == 0 &&
		    control_handover_get(&col.v[0].rec, &h) == 0 &&
		    h.command == (k ? 2u : 1u), "handover %d: %s", k, e.msg);
		collect_free(&col);
		buf_free(&c.b);
	}

	/* Nothing at all is a clean end; so is a header alone. */
	CHECK(run_k(K_BACK, NULL, 0, 1, NULL, NULL, &e) == 0, "empty back");
	CHECK(run_k(K_FORWARD, NULL, 0, 1, NULL, NULL, &e) == 0,
	    "empty forward");
	cimg_begin(&c, 1);
	CHECK(run_k(K_BACK, c.b.data, c.b.len, 1, NULL, NULL, &e) == 0,
	    "header alone: %s", e.msg);
	buf_free(&c.b);

	/* The queries, pausing, bad arguments. */
	cimg_back(&c);
	p = parser_new_control(NULL, XP_CONTROL_BACK, 1, NULL, NULL);
	CHECK(parser_want(p) == 24 && parser_stream(p) == NULL,
	    "want the header");
	CHECK(parser_feed(p, c.b.data, 30) == 30 && parser_want(p) == 10 &&
	    (st = parser_stream(p)) != NULL && st->ihdr_options == 2,
	    "header then part of a record header");
	CHECK(parser_feed(p, c.b.data + 30, c.b.len - 30) ==
	    (ssize_t)(c.b.len - 30) && parser_want(p) == 16 &&
	    !parser_done(p) && parser_offset(p) == c.b.len, "between records");
	CHECK(parser_finish(p) == 0, "finish between records");
	parser_free(p);
	memset(&col, 0, sizeof col);
	col.pause = 1;
	p = parser_new_control(NULL, XP_CONTROL_BACK, 1, cb_record, &col);
	CHECK(parser_feed(p, c.b.data, c.b.len) == (ssize_t)c.roff[1] &&
	    col.n == 1, "paused after the first record");
	collect_free(&col);
	parser_free(p);
	CHECK(parser_new_control(NULL, 0, 1, NULL, NULL) == NULL &&
	    parser_new_control(NULL, 3, 0, NULL, NULL) == NULL, "bad dir");
	buf_free(&c.b);

	/* Encoders refuse what is not a control record. */
	memset(&c, 0, sizeof c);
	CHECK(control_encode(&c.b, REC_PAGE_DATA, "12345678", 8) ==
	    -XP_EINVAL && control_encode(&c.b, REC_XMIG_NEGOTIATE, "x", 1) ==
	    -XP_EINVAL && control_encode(&c.b, 0x80000099u, "x", 1) ==
	    -XP_EINVAL && c.b.len == 0, "control_encode refusals");
	buf_free(&c.b);
}

/* Message text: cut at NUL and at 4096 octets, not UTF-8 made '?'. */
static void
test_control_text(void)
{
	struct xp_buf		 b = { 0 };
	struct xp_status	 s, t;
	struct xp_record	 rec;
	char			*big;
	int			 i;

	memset(&rec, 0, sizeof rec);
	rec.type = REC_XMIG_STATUS;
	s.state = XMIG_STATUS_FAILED;

	s.message = "abc\0def";
	s.message_len = 7;
	CHECK(control_status_put(&b, &s) == 0, "put");
	rec.body = b.data + 16;
	rec.length = xp_get32(0, b.data + 4);
	CHECK(control_status_get(&rec, &t) == 0 && t.message_len == 3,
	    "cut at NUL");

	b.len = 0;
	s.message = "caf\xc3\xa9 \xff\xc0\x80 \xed\xa0\x80 \xe2\x82";
	s.message_len = strlen(s.message);
	CHECK(control_status_put(&b, &s) == 0, "put");
	rec.body = b.data + 16;
	rec.length = xp_get32(0, b.data + 4);
	CHECK(control_status_get(&rec, &t) == 0 && t.message_len == 16 &&
	    memcmp(t.message, "caf\xc3\xa9 ??? ??? ??", 16) == 0,
	    "invalid UTF-8 replaced: %.*s", (int)t.message_len, t.message);

	/* 4096 octets at most, on a character boundary. */
	big = malloc(5000);
	memset(big, 'a', 4094);
	for (i = 4094; i + 4 <= 5000; i += 4)
		memcpy(big + i, "\xf0\x9f\x98\x80", 4);	/* U+1F600 */
	b.len = 0;
	s.message = big;
	s.message_len = 4094 + 4 * ((5000 - 4094) / 4);
	CHECK(control_status_put(&b, &s) == 0, "put");
	rec.body = b.data + 16;
	rec.length = xp_get32(0, b.data + 4);
	CHECK(rec.length == 8 + 4094 && control_status_get(&rec, &t) == 0,
	    "cut before a character that does not fit: %u", rec.length);
	memset(big, 'b', 5000);
	b.len = 0;
	s.message_len = 5000;
	CHECK(control_status_put(&b, &s) == 0 && xp_get32(0, b.data + 4) ==
	    8 + 4096, "cut at 4096");
	free(big);
	buf_free(&b);
}

/* No octet of out is a control character or outside ASCII. */
static int
printable(const char *out)
{
	for (; *out != '\0'; out++) {
		if ((unsigned char)*out < 0x20 || (unsigned char)*out > 0x7e)
			return 0;
	}
	return 1;
}

/*
 * xp_escape: every octet outside printable ASCII as \xNN (tab, LF, CR as
 * \t \n \r), backslash and quote escaped, NUL included; cut between
 * escapes with "..." when out is short.  And the way peer text takes: a
 * back-channel message with ESC is valid UTF-8 on the wire, handed out
 * as it came, and printable once escaped.
 */
static void
test_escape(void)
{
	static const char	all[] = "\x1b[31mred\x1b[0m \a\b\t\n\r\x7f"
				    "\\\" caf\xc3\xa9 \x9b" "2J";
	char			 out[256], small[12], every[XP_ESCAPE_SIZE(256)];
	uint8_t			 octets[256];
	struct xp_buf		 b = { 0 };
	struct xp_error_msg	 e, f;
	struct xp_record	 rec;
	size_t			 i, n;

	xp_escape(out, sizeof out, all, sizeof all - 1);
	CHECK(strcmp(out, "\\x1b[31mred\\x1b[0m \\x07\\x08\\t\\n\\r\\x7f"
	    "\\\\\\\" caf\\xc3\\xa9 \\x9b2J") == 0, "escaped: %s", out);
	CHECK(printable(out), "printable: %s", out);
	CHECK(strcmp(xp_escape(out, sizeof out, "plain text, 100%", 16),
	    "plain text, 100%") == 0, "plain text unchanged: %s", out);
	CHECK(strcmp(xp_escape(out, sizeof out, "a\0b", 3), "a\\x00b") == 0,
	    "NUL is text too: %s", out);
	CHECK(strcmp(xp_escape(out, sizeof out, "x", 0), "") == 0, "empty");
	CHECK(xp_escape(out, sizeof out, NULL, 0) == out && out[0] == '\0',
	    "empty, no text");

	/* All 256 octets: printable, and exactly the escaped length. */
	for (i = 0; i < 256; i++)
		octets[i] = (uint8_t)i;
	xp_escape(every, sizeof every, octets, sizeof octets);
	n = 95 - 2 + 2 * 2 + 3 * 2 + (256 - 95 - 3) * 4;
	CHECK(strlen(every) == n && printable(every), "256 octets: %zu of %zu",
	    strlen(every), n);
	CHECK(strncmp(every, "\\x00\\x01", 8) == 0 &&
	    strstr(every, "\\x1f !\\\"#") != NULL &&
	    strstr(every, "[\\\\]") != NULL &&
	    strcmp(every + n - 8, "\\xfe\\xff") == 0, "256 octets: %s", every);

	/* Cut between escapes, "..." at the end, always terminated. */
	xp_escape(small, sizeof small, "abc\x1b\x1b\x1b", 6);
	CHECK(strcmp(small, "abc\\x1b...") == 0, "cut: %s", small);
	xp_escape(small, sizeof small, "abcdefghijk", 11);
	CHECK(strcmp(small, "abcdefghijk") == 0, "fits exactly: %s", small);
	xp_escape(small, sizeof small, "abcdefghijkl", 12);
	CHECK(strcmp(small, "abcdefgh...") == 0, "one too many: %s", small);
	xp_escape(small, 4, "\x1b\x1b", 2);
	CHECK(strcmp(small, "...") == 0, "room for the dots only: %s", small);
	xp_escape(small, 3, "\x1b", 1);
	CHECK(small[0] == '\0', "no room: \"%s\"", small);
	small[0] = 'z';
	xp_escape(small, 0, "a", 1);
	CHECK(small[0] == 'z', "outlen 0 writes nothing");

	/* A back-channel XMIG_ERROR with ESC: the wire takes it as it is. */
	memset(&e, 0, sizeof e);
	e.code = 5;
	e.message = "\x1b]0;owned\x07\x1b[2J gone";
	e.message_len = strlen(e.message);
	CHECK(control_error_put(&b, &e) == 0, "put");
	memset(&rec, 0, sizeof rec);
	rec.type = REC_XMIG_ERROR;
	rec.body = b.data + 16;
	rec.length = xp_get32(0, b.data + 4);
	CHECK(control_error_get(&rec, &f) == 0 &&
	    f.message_len == e.message_len &&
	    memcmp(f.message, e.message, e.message_len) == 0,
	    "control characters are UTF-8: carried as they are");
	xp_escape(out, sizeof out, f.message, f.message_len);
	CHECK(strcmp(out, "\\x1b]0;owned\\x07\\x1b[2J gone") == 0 &&
	    printable(out), "shown: %s", out);
	buf_free(&b);
}

static void
test_control_header(void)
{
	struct cimg	 c;
	struct xp_error	 e;
	uint8_t		 h[64];
	const char	*xl = "xl migration receiver ready, send binary domain "
			    "data.\n";
	int		 i;

	/* xl's banner, other text, short text at EOF. */
	reject_k("xl banner", K_BACK, (const uint8_t *)xl, strlen(xl), NULL,
	    XP_EHEADER, "back-channel image header: the peer sent xl's "
	    "migration banner (\"xl migration receiver re...\"): it is xl's "
	    "own migration receiver, which has no back-channel");
	reject_k("HTTP", K_BACK, (const uint8_t *)"HTTP/1.1 400 Bad\r\n\r\n",
	    20, NULL, XP_EHEADER, "the peer sent text (\"HTTP/1.1 400 "
	    "Bad\\r\\n\") where the image header was expected: it is not an "
	    "xmig receiver");
	reject_k("short text", K_BACK, (const uint8_t *)"ok", 2, NULL,
	    XP_EHEADER, "sent text (\"ok\")");
	reject_k("text, then binary", K_BACK, (const uint8_t *)"ab\001cd", 5,
	    NULL, XP_EHEADER, "sent text (\"ab\")");
	/* Binary garbage, a legacy image, a broken marker. */
	memset(h, 0, sizeof h);
	xp_put64(0, h, 0x40000);
	reject_k("legacy", K_BACK, h, sizeof h, NULL, XP_EHEADER, "back-channel "
	    "image header: octet 0 is 0x00 where the marker (8 octets 0xFF) "
	    "was expected");
	for (i = 1; i < 8; i++) {
		cimg_begin(&c, 1);
		c.b.data[i] = 0x7F;
		reject_k("marker", K_BACK, c.b.data, c.b.len, NULL, XP_EHEADER,
		    "octet %d is 0x7f", i);
		buf_free(&c.b);
	}
	/* id, version, options. */
	cimg_begin(&c, 1);
	c.b.data[8] = 'Y';
	reject_k("id", K_BACK, c.b.data, c.b.len, NULL, XP_EHEADER, "id "
	    "0x59454e46 is not 0x58454e46");
	buf_free(&c.b);
	cimg_begin(&c, 1);
	c.b.data[15] = 3;
	reject_k("version 3", K_BACK, c.b.data, c.b.len, NULL, XP_EVERSION,
	    "back-channel image header: version 3 is not 1");
	c.b.data[15] = 1;
	c.b.data[17] = 0;
	reject_k("options 0", K_BACK, c.b.data, c.b.len, NULL, XP_EHEADER,
	    "options 0x0000 lack bit 1 (back-channel): this is a forward "
	    "stream");
	c.b.data[17] = 3;
	reject_k("big-endian", K_BACK, c.b.data, c.b.len, NULL, XP_EHEADER,
	    "options 0x0003 have bit 0 set: a back-channel is always "
	    "little-endian");
	/* Reserved option bits and octets are ignored, as in section 3. */
	c.b.data[17] = 0xFE;
	c.b.data[16] = 0xFF;
	c.b.data[20] = 0x55;
	accept_k("reserved header bits", K_BACK, c.b.data, c.b.len, NULL);
	/* Truncated. */
	reject_k("truncated header", K_BACK, c.b.data, 10, NULL,
	    XP_ETRUNCATED, "back-channel image header: stream ends after 10 "
	    "of 24 octets");
	buf_free(&c.b);
	/* A forward stream's headers are not a back-channel. */
	{
		struct img	im;

		img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
		img_put_empty(&im, REC_END);
		reject_k("a forward stream", K_BACK, im.b.data, im.b.len, NULL,
		    XP_EHEADER, "lack bit 1");
		img_free(&im);
		img_begin(&im, XP_XEN, 0, WIRE_DOM_X86_HVM);
		img_put_empty(&im, REC_END);
		reject_k("a Xen stream", K_BACK, im.b.data, im.b.len, NULL,
		    XP_EVERSION, "version 3 is not 1");
		img_free(&im);
	}
	/* The forward control channel has no header: one is a bad record. */
	cimg_begin(&c, 1);
	reject_k("header on the forward control channel", K_FORWARD,
	    c.b.data, c.b.len, NULL, XP_ETYPE, "record 0 (OPTIONAL_0xffffffff) "
	    "at offset 0: record type 0xffffffff is not valid on the control "
	    "channel after END");
	buf_free(&c.b);
	(void)e;
}

static void
test_control_records(void)
{
	struct cimg		 c;
	struct xp_reply		 r;
	struct xp_limits	 lim;
	uint8_t			 b[WIRE_REPLY_MIN + WIRE_MESSAGE_MAX + 8];
	uint8_t			 ok[WIRE_REPLY_MIN];
	struct xp_buf		 w = { 0 };
	size_t			 k;

	mk_reply(&r, 0, NULL);
	CHECK(control_reply_put(&w, &r) == 0, "reply");
	memcpy(ok, w.data + 16, WIRE_REPLY_MIN);
	buf_free(&w);
	memset(b, 0, sizeof b);

	/* Checksums and options. */
	cimg_begin(&c, 1);
	cimg_raw(&c, REC_XMIG_REPLY, ok, sizeof ok, 0, 0);
	creject("no checksum", &c, XP_ECHECKSUM, "%soption bit 0 (checksum "
	    "valid) is clear: control records always carry a checksum",
	    cwhere(&c, 0));
	buf_free(&c.b);
	cimg_begin(&c, 1);
	cimg_raw(&c, REC_XMIG_REPLY, ok, sizeof ok, WIRE_REC_OPT_CHECKSUM, 1);
	creject("bad checksum", &c, XP_ECHECKSUM, "%schecksum 0x",
	    cwhere(&c, 0));
	buf_free(&c.b);
	cimg_begin(&c, 1);
	cimg_raw(&c, REC_XMIG_REPLY, ok, sizeof ok, 3, 0);
	creject("DEFLATE", &c, XP_EOPTIONS, "%soption bit 1 (DEFLATE)",
	    cwhere(&c, 0));
	buf_free(&c.b);
	cimg_begin(&c, 1);
	cimg_raw(&c, REC_XMIG_REPLY, ok, sizeof ok, 0x8001, 0);
	creject("unknown option", &c, XP_EOPTIONS, "%sunknown option bits "
	    "0x8000", cwhere(&c, 0));
	buf_free(&c.b);

	/* Types for the direction. */
	{
		static const struct {
			uint32_t	 type;
			int		 code;
		} back_bad[] = {
			{ REC_XMIG_HANDOVER, XP_EORDER },
			{ REC_XMIG_NEGOTIATE, XP_EORDER },
			{ REC_XMIG_ZERO_PAGES, XP_EORDER },
			{ REC_PAGE_DATA, XP_EORDER },
			{ REC_END, XP_EORDER },
			{ REC_CHECKPOINT_DIRTY_PFN_LIST, XP_EORDER },
			{ 0x13, XP_ETYPE },
			{ 0x80000099u, XP_ETYPE },
			{ 0x80000018u, XP_ETYPE },
		}, fwd_bad[] = {
			{ REC_XMIG_REPLY, XP_EORDER },
			{ REC_XMIG_ACK, XP_EORDER },
			{ REC_XMIG_ERROR, XP_EORDER },
			{ REC_XMIG_STATUS, XP_EORDER },
			{ REC_XMIG_DIGESTS, XP_EORDER },
			{ REC_END, XP_EORDER },
			{ REC_XMIG_DOMAIN_CONFIG, XP_EORDER },
			{ REC_XMIG_EARLY_PARAMS, XP_EORDER },
			{ REC_XMIG_DELTA_PAGES, XP_EORDER },
			{ 0x80000007u, XP_ETYPE },
		};

		for (k = 0; k < sizeof back_bad / sizeof back_bad[0]; k++) {
			cimg_begin(&c, 1);
			cimg_raw(&c, back_bad[k].type, b, 8,
			    WIRE_REC_OPT_CHECKSUM, 0);
			creject("wrong type on the back-channel", &c,
			    back_bad[k].code, "%s%s", cwhere(&c, 0),
			    back_bad[k].code == XP_ETYPE ? "record type 0x" :
			    "not valid on the back-channel (it carries "
			    "XMIG_REPLY, XMIG_ACK, XMIG_ERROR, XMIG_STATUS, "
			    "XMIG_DIGESTS and XMIG_CHECKPOINT_ACK)");
			buf_free(&c.b);
		}
		for (k = 0; k < sizeof fwd_bad / sizeof fwd_bad[0]; k++) {
			cimg_begin(&c, 0);
			cimg_raw(&c, fwd_bad[k].type, b, 24,
			    WIRE_REC_OPT_CHECKSUM, 0);
			fcreject("wrong type after END", &c, fwd_bad[k].code,
			    "%s%s", cwhere(&c, 0), fwd_bad[k].code ==
			    XP_ETYPE ? "record type 0x80000007 is not valid on "
			    "the control channel after END" : "not valid on the control channel "
			    "after END (it carries XMIG_HANDOVER)");
			buf_free(&c.b);
		}
	}

	/* Sizes. */
	{
		static const struct {
			uint32_t	 type;
			uint32_t	 len;
			const char	*needle;
		} sizes[] = {
			{ REC_XMIG_REPLY, 40, "length 40 is below the minimum "
			    "48" },
			{ REC_XMIG_REPLY, 48 + 4097, "length 4145 is above the "
			    "maximum 4144" },
			{ REC_XMIG_ACK, 16, "below the minimum 24" },
			{ REC_XMIG_ACK, 32, "above the maximum 24" },
			{ REC_XMIG_ERROR, 23, "below the minimum 24" },
			{ REC_XMIG_ERROR, 24 + 4097, "above the maximum 4120" },
			{ REC_XMIG_STATUS, 4, "below the minimum 8" },
			{ REC_XMIG_STATUS, 8 + 4097, "above the maximum 4104" },
			{ REC_XMIG_DIGESTS, 64, "below the minimum 72" },
			{ REC_XMIG_DIGESTS, 80, "above the maximum 72" },
		};

		for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			cimg_begin(&c, 1);
			/* A REPLY first where the order needs one. */
			if (sizes[k].type != REC_XMIG_REPLY &&
			    sizes[k].type != REC_XMIG_ERROR)
				cimg_put(&c, REC_XMIG_REPLY, ok, sizeof ok);
			memset(b, 'x', sizeof b);
			memcpy(b, ok, sizeof ok);
			if (sizes[k].type == REC_XMIG_STATUS)
				memset(b, 0, 8);
			cimg_raw(&c, sizes[k].type, b, sizes[k].len,
			    WIRE_REC_OPT_CHECKSUM, 0);
			creject("size", &c, XP_EBODY, "%s", sizes[k].needle);
			buf_free(&c.b);
		}
		cimg_begin(&c, 0);
		memset(b, 0, 16);
		cimg_raw(&c, REC_XMIG_HANDOVER, b, 16, WIRE_REC_OPT_CHECKSUM,
		    0);
		fcreject("HANDOVER 16", &c, XP_EBODY, "%slength 16 is above "
		    "the maximum 8", cwhere(&c, 0));
		buf_free(&c.b);
		cimg_begin(&c, 0);
		cimg_raw(&c, REC_XMIG_HANDOVER, b, 4, WIRE_REC_OPT_CHECKSUM, 0);
		fcreject("HANDOVER 4", &c, XP_EBODY, "%slength 4 is below the "
		    "minimum 8", cwhere(&c, 0));
		buf_free(&c.b);
		/* The receiver's record maximum applies. */
		memset(&lim, 0, sizeof lim);
		lim.max_record_len = 100;
		cimg_begin(&c, 1);
		memcpy(b, ok, sizeof ok);
		memset(b + 48, 'm', 60);
		cimg_raw(&c, REC_XMIG_REPLY, b, 108, WIRE_REC_OPT_CHECKSUM, 0);
		reject_k("above max_record_len", K_BACK, c.b.data, c.b.len,
		    &lim, XP_ETOOBIG, "%slength 108 is above the record "
		    "maximum 100", cwhere(&c, 0));
		buf_free(&c.b);
	}

	/* Body fields. */
	{
		static const struct {
			uint32_t	 type;
			uint32_t	 len;
			size_t		 off;
			uint32_t	 value;
			const char	*needle;
		} bad[] = {
			{ REC_XMIG_REPLY, 48, 0, 2, "negotiate_version 2 is not "
			    "1" },
			{ REC_XMIG_REPLY, 48, 0, 0, "negotiate_version 0" },
			{ REC_XMIG_REPLY, 48, 20, 1, "reserved field is "
			    "0x00000001, not 0" },
			{ REC_XMIG_REPLY, 48, 4, 0x1000, "unknown feature bits "
			    "0x00001000" },
			{ REC_XMIG_REPLY, 48, 4, 0x40000000, "unknown feature "
			    "bits 0x40000000" },
			{ REC_XMIG_REPLY, 48, 8, 8, "result 8 is not one of "
			    "0-7" },
			{ REC_XMIG_REPLY, 48, 12, 8, "unknown can_read bits "
			    "0x00000008" },
			{ REC_XMIG_STATUS, 8, 0, 0, "state 0 is not RESTORED "
			    "(1), RUNNING (2) or FAILED (3)" },
			{ REC_XMIG_STATUS, 8, 0, 4, "state 4 is not" },
			{ REC_XMIG_STATUS, 8, 4, 0x10000, "reserved field is "
			    "0x00010000" },
		};

		for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			struct xp_record	rec;
			struct xp_reply		rr;
			struct xp_status	ss;

			cimg_begin(&c, 1);
			if (bad[k].type != REC_XMIG_REPLY)
				cimg_put(&c, REC_XMIG_REPLY, ok, sizeof ok);
			memcpy(b, ok, sizeof ok);
			if (bad[k].type == REC_XMIG_STATUS)
				xp_put32(0, b, XMIG_STATUS_RESTORED);
			xp_put32(0, b + bad[k].off, bad[k].value);
			cimg_raw(&c, bad[k].type, b, bad[k].len,
			    WIRE_REC_OPT_CHECKSUM, 0);
			creject("body field", &c, XP_EBODY, "%s%s",
			    cwhere(&c, c.nrec - 1), bad[k].needle);
			memset(&rec, 0, sizeof rec);
			rec.type = bad[k].type;
			rec.length = bad[k].len;
			rec.body = b;
			CHECK((bad[k].type == REC_XMIG_REPLY ?
			    control_reply_get(&rec, &rr) :
			    control_status_get(&rec, &ss)) == -XP_EBODY,
			    "decoder refuses: %s", bad[k].needle);
			buf_free(&c.b);
		}
		for (k = 0; k < 4; k++) {
			uint32_t	cmd[] = { 0, 3, 1, 2 };
			uint32_t	res[] = { 0, 0, 1, 0x80000000u };

			cimg_begin(&c, 0);
			xp_put32(0, b, cmd[k]);
			xp_put32(0, b + 4, res[k]);
			cimg_raw(&c, REC_XMIG_HANDOVER, b, 8,
			    WIRE_REC_OPT_CHECKSUM, 0);
			fcreject("handover field", &c, XP_EBODY, "%s", k < 2 ?
			    "is not GO (1) or ABORT (2)" : "reserved field is "
			    "0x");
			buf_free(&c.b);
		}
	}

	/* Message text: UTF-8 without NUL. */
	{
		static const struct {
			const char	*text;
			size_t		 len;
			const char	*needle;
		} texts[] = {
			{ "a\0b", 3, "message octet 1 is NUL" },
			{ "ab\xff", 3, "message is not UTF-8 at octet 2 (0xff)" },
			{ "\xc0\x80", 2, "not UTF-8 at octet 0 (0xc0)" },
			{ "x\xed\xa0\x80", 4, "not UTF-8 at octet 1 (0xed)" },
			{ "\xe2\x82", 2, "not UTF-8 at octet 0 (0xe2)" },
			{ "\xf4\x90\x80\x80", 4, "not UTF-8 at octet 0" },
			{ "\xe0\x9f\xbf", 3, "not UTF-8 at octet 0" },
			{ "\xf0\x8f\xbf\xbf", 4, "not UTF-8 at octet 0" },
			{ "\x80", 1, "not UTF-8 at octet 0 (0x80)" },
			{ "\xf5\x80\x80\x80", 4, "not UTF-8 at octet 0" },
		};

		for (k = 0; k < sizeof texts / sizeof texts[0]; k++) {
			cimg_begin(&c, 1);
			memcpy(b, ok, sizeof ok);
			memcpy(b + 48, texts[k].text, texts[k].len);
			cimg_raw(&c, REC_XMIG_REPLY, b, 48 +
			    (uint32_t)texts[k].len, WIRE_REC_OPT_CHECKSUM, 0);
			creject("message", &c, XP_EBODY, "%s", texts[k].needle);
			buf_free(&c.b);
			/* The same in ERROR and STATUS. */
			cimg_begin(&c, 1);
			memset(b, 0, 24);
			memcpy(b + 24, texts[k].text, texts[k].len);
			cimg_raw(&c, REC_XMIG_ERROR, b, 24 +
			    (uint32_t)texts[k].len, WIRE_REC_OPT_CHECKSUM, 0);
			creject("error message", &c, XP_EBODY, "%s",
			    texts[k].needle);
			buf_free(&c.b);
		}
		cimg_begin(&c, 1);
		memcpy(b, ok, sizeof ok);
		memcpy(b + 48, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
		    "\xf4\x8f\xbf\xbf \xed\x9f\xbf", 23);
		cimg_raw(&c, REC_XMIG_REPLY, b, 48 + 23, WIRE_REC_OPT_CHECKSUM,
		    0);
		accept_k("UTF-8 message", K_BACK, c.b.data, c.b.len, NULL);
		buf_free(&c.b);
		cimg_begin(&c, 1);
		memset(b + 48, 'z', 4096);
		cimg_raw(&c, REC_XMIG_REPLY, b, 48 + 4096,
		    WIRE_REC_OPT_CHECKSUM, 0);
		accept_k("message of 4096", K_BACK, c.b.data, c.b.len, NULL);
		buf_free(&c.b);
	}
}

/* The order SPEC 13.1 allows on each channel. */

/* Checkpointed streams: CHECKPOINTS' interval_ms and XMIG_CHECKPOINT_ACK. */
static void
test_checkpoints(void)
{
	struct xp_negotiate	 n, m;
	struct xp_checkpoint_ack a = { 7, 123456 }, a2;
	struct xp_ack		 ack = { 1, 2, 3 };
	struct xp_reply		 r;
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	struct cimg		 c;
	uint8_t			 b[WIRE_NEGOTIATE_SIZE];
	int			 rv, be, k;
	static const uint32_t	 bad_iv[] = { 0, 60001, 0xFFFFFFFFu };

	/* interval_ms round trip, both byte orders. */
	for (be = 0; be < 2; be++) {
		img_begin_v(&im, XP_DRAFTB, be, 0, WIRE_DOM_X86_HVM, 1);
		mk_negotiate(&n, &im.st);
		n.features = (n.features & ~XMIG_F_HANDOVER) |
		    XMIG_F_CHECKPOINTS;
		n.interval_ms = 25;
		body_negotiate_put(be, b, &n);
		CHECK(xp_get32(be, b + 36) == 25, "interval_ms at 36");
		img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
		img_static(&im);
		img_put_empty(&im, REC_CHECKPOINT);
		img_put_empty(&im, REC_CHECKPOINT);
		img_put_empty(&im, REC_END);
		accept("checkpointed NEGOTIATE", &im);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n > 0 && body_negotiate_get(&col.st,
		    &col.v[0].rec, &m) == 0 && m.interval_ms == 25 &&
		    (m.features & XMIG_F_CHECKPOINTS) &&
		    memcmp(&n, &m, sizeof n) == 0, "interval round trip %d", be);
		collect_free(&col);
		img_free(&im);
	}
	/* With CHECKPOINTS, interval_ms from 1 to 60000. */
	for (k = 0; k < 3; k++) {
		img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
		mk_negotiate(&n, &im.st);
		n.features |= XMIG_F_CHECKPOINTS;
		n.interval_ms = bad_iv[k];
		body_negotiate_put(0, b, &n);
		img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
		img_put_empty(&im, REC_END);
		reject("bad interval_ms", &im, XP_EBODY, "%sinterval_ms %u is "
		    "not from 1 to 60000", where(&im, 0), bad_iv[k]);
		img_free(&im);
	}

	/* XMIG_CHECKPOINT_ACK: round trip after an accepting REPLY. */
	cimg_begin(&c, 1);
	mk_reply(&r, XMIG_REPLY_OK, NULL);
	cimg_note(&c, REC_XMIG_REPLY);
	CHECK(control_reply_put(&c.b, &r) == 0, "reply put");
	cimg_note(&c, REC_XMIG_CHECKPOINT_ACK);
	CHECK(control_checkpoint_ack_put(&c.b, &a) == 0, "ckpt ack put");
	memset(&col, 0, sizeof col);
	rv = run_k(K_BACK, c.b.data, c.b.len, 5, NULL, &col, &e);
	CHECK(rv == 0 && col.n == 2 && col.v[1].type ==
	    REC_XMIG_CHECKPOINT_ACK && col.v[1].length == 16,
	    "ckpt ack yielded: %d %s", rv, e.msg);
	if (col.n == 2) {
		CHECK(control_checkpoint_ack_get(&col.v[1].rec, &a2) == 0 &&
		    a2.epoch == 7 && a2.octets == 123456, "ckpt ack fields");
		CHECK(control_checkpoint_ack_get(&col.v[0].rec, &a2) ==
		    -XP_EINVAL && control_ack_get(&col.v[1].rec, &ack) ==
		    -XP_EINVAL, "ckpt ack decoders check the type");
	}
	collect_free(&col);
	buf_free(&c.b);

	/* Not before an accepting REPLY. */
	cimg_begin(&c, 1);
	cimg_note(&c, REC_XMIG_CHECKPOINT_ACK);
	control_checkpoint_ack_put(&c.b, &a);
	creject("ckpt ack before REPLY", &c, XP_EORDER, "%sonly valid after "
	    "an XMIG_REPLY that accepted the stream", cwhere(&c, 0));
	buf_free(&c.b);

	/* Epoch 0 does not exist. */
	cimg_begin(&c, 1);
	cimg_note(&c, REC_XMIG_REPLY);
	control_reply_put(&c.b, &r);
	a.epoch = 0;
	cimg_note(&c, REC_XMIG_CHECKPOINT_ACK);
	control_checkpoint_ack_put(&c.b, &a);
	creject("ckpt ack epoch 0", &c, XP_EBODY, "%sepoch 0: epochs count "
	    "from 1", cwhere(&c, 1));
	buf_free(&c.b);

	/* Not in a forward stream. */
	img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
	img_put(&im, REC_XMIG_CHECKPOINT_ACK, b, 16);
	img_put_empty(&im, REC_END);
	reject("ckpt ack forward", &im, XP_EORDER, "%sonly valid on a "
	    "back-channel", where(&im, 0));
	img_free(&im);
}

/* PARALLEL (SPEC 13.6): XMIG_NEGOTIATE's streams and XMIG_STREAMS. */
static void
test_streams(void)
{
	struct xp_negotiate	 n, m;
	struct xp_streams	 x = { 4, 40123, { 0 } }, x2;
	struct xp_reply		 r;
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	struct cimg		 c;
	uint8_t			 b[WIRE_NEGOTIATE_SIZE];
	int			 rv, be, k;
	static const uint16_t	 bad_n[] = { 1, 17, 0xFFFF };

	/* streams at offset 22, both byte orders, with PARALLEL. */
	for (be = 0; be < 2; be++) {
		img_begin_v(&im, XP_DRAFTB, be, 0, WIRE_DOM_X86_HVM, 1);
		mk_negotiate(&n, &im.st);
		n.features |= XMIG_F_PARALLEL;
		n.streams = 16;
		body_negotiate_put(be, b, &n);
		CHECK(xp_get16(be, b + 22) == 16, "streams at 22");
		img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
		img_put_empty(&im, REC_END);
		memset(&col, 0, sizeof col);
		rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE, NULL,
		    &col, &e);
		CHECK(rv == 0 && col.n > 0 && body_negotiate_get(&col.st,
		    &col.v[0].rec, &m) == 0 && m.streams == 16 &&
		    memcmp(&n, &m, sizeof n) == 0, "streams round trip %d", be);
		collect_free(&col);
		img_free(&im);
	}
	/* With PARALLEL, 2 to 16. */
	for (k = 0; k < 3; k++) {
		img_begin_v(&im, XP_DRAFTB, 0, 0, WIRE_DOM_X86_HVM, 1);
		mk_negotiate(&n, &im.st);
		n.features |= XMIG_F_PARALLEL;
		n.streams = bad_n[k];
		body_negotiate_put(0, b, &n);
		img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
		img_put_empty(&im, REC_END);
		reject("bad streams", &im, XP_EBODY, "%sstreams %u is not "
		    "from 2 to 16", where(&im, 0), bad_n[k]);
		img_free(&im);
	}

	/* XMIG_STREAMS: round trip right after an accepting REPLY. */
	for (k = 0; k < (int)WIRE_STREAM_TOKEN_SIZE; k++)
		x.token[k] = (uint8_t)(0xA0 + k);
	cimg_begin(&c, 1);
	mk_reply(&r, XMIG_REPLY_OK, NULL);
	cimg_note(&c, REC_XMIG_REPLY);
	CHECK(control_reply_put(&c.b, &r) == 0, "reply put");
	cimg_note(&c, REC_XMIG_STREAMS);
	CHECK(control_streams_put(&c.b, &x) == 0, "streams put");
	memset(&col, 0, sizeof col);
	rv = run_k(K_BACK, c.b.data, c.b.len, 5, NULL, &col, &e);
	CHECK(rv == 0 && col.n == 2 && col.v[1].type == REC_XMIG_STREAMS &&
	    col.v[1].length == WIRE_STREAMS_SIZE, "streams yielded: %d %s",
	    rv, e.msg);
	if (col.n == 2) {
		CHECK(control_streams_get(&col.v[1].rec, &x2) == 0 &&
		    x2.streams == 4 && x2.port == 40123 &&
		    memcmp(x2.token, x.token, sizeof x.token) == 0,
		    "streams fields");
		CHECK(control_streams_get(&col.v[0].rec, &x2) == -XP_EINVAL,
		    "streams decoder checks the type");
	}
	collect_free(&col);
	buf_free(&c.b);

	/* Not first, and not after another record. */
	cimg_begin(&c, 1);
	cimg_note(&c, REC_XMIG_STREAMS);
	control_streams_put(&c.b, &x);
	creject("streams before REPLY", &c, XP_EORDER, "%sonly valid right "
	    "after an XMIG_REPLY that accepted the stream", cwhere(&c, 0));
	buf_free(&c.b);
	{
		struct xp_ack a = { 1, 2, 3 };

		cimg_begin(&c, 1);
		cimg_note(&c, REC_XMIG_REPLY);
		control_reply_put(&c.b, &r);
		cimg_note(&c, REC_XMIG_ACK);
		control_ack_put(&c.b, &a);
		cimg_note(&c, REC_XMIG_STREAMS);
		control_streams_put(&c.b, &x);
		creject("streams after an ACK", &c, XP_EORDER, "%sonly valid "
		    "right after an XMIG_REPLY that accepted the stream",
		    cwhere(&c, 2));
		buf_free(&c.b);
	}

	/* Body rules: streams 2..16, port not 0. */
	{
		static const struct {
			uint16_t	 n, port;
			const char	*needle;
		} bad[] = {
			{ 1, 5, "streams 1 is not from 2 to 16" },
			{ 17, 5, "streams 17 is not from 2 to 16" },
			{ 2, 0, "port 0" },
		};

		for (k = 0; k < 3; k++) {
			struct xp_streams y = x;

			y.streams = bad[k].n;
			y.port = bad[k].port;
			cimg_begin(&c, 1);
			cimg_note(&c, REC_XMIG_REPLY);
			control_reply_put(&c.b, &r);
			cimg_note(&c, REC_XMIG_STREAMS);
			control_streams_put(&c.b, &y);
			creject("streams body", &c, XP_EBODY, "%s%s",
			    cwhere(&c, 1), bad[k].needle);
			buf_free(&c.b);
		}
	}
}

static void
test_control_order(void)
{
	struct cimg		c;
	struct xp_reply		r;
	struct xp_ack		a = { 1, 2, 3 };
	struct xp_status	s = { XMIG_STATUS_RESTORED, NULL, 0 };
	struct xp_error_msg	em;
	struct xp_digests	d;
	struct xp_handover	h = { XMIG_HANDOVER_GO };
	int			k;

	memset(&em, 0, sizeof em);
	memset(&d, 0, sizeof d);

	/* REPLY only first. */
	cimg_begin(&c, 1);
	mk_reply(&r, 0, NULL);
	cimg_note(&c, REC_XMIG_REPLY);
	control_reply_put(&c.b, &r);
	cimg_note(&c, REC_XMIG_REPLY);
	control_reply_put(&c.b, &r);
	creject("second REPLY", &c, XP_EORDER, "%sonly valid as the first "
	    "record of the back-channel", cwhere(&c, 1));
	buf_free(&c.b);

	/* ACK and STATUS need an accepting REPLY. */
	for (k = 0; k < 2; k++) {
		cimg_begin(&c, 1);
		cimg_note(&c, k ? REC_XMIG_STATUS : REC_XMIG_ACK);
		if (k)
			control_status_put(&c.b, &s);
		else
			control_ack_put(&c.b, &a);
		creject("before REPLY", &c, XP_EORDER, "%sonly valid after an "
		    "XMIG_REPLY that accepted the stream", cwhere(&c, 0));
		buf_free(&c.b);
	}

	/* A refusing REPLY, ERROR, FAILED and DIGESTS close the channel. */
	for (k = 0; k < 4; k++) {
		const char	*needle;

		cimg_begin(&c, 1);
		mk_reply(&r, k == 0 ? XMIG_REPLY_DOMAIN : 0, "no");
		cimg_note(&c, REC_XMIG_REPLY);
		control_reply_put(&c.b, &r);
		switch (k) {
		case 0:
			needle = "no record may follow an XMIG_REPLY that "
			    "refused the stream";
			break;
		case 1:
			cimg_note(&c, REC_XMIG_ERROR);
			control_error_put(&c.b, &em);
			needle = "no record may follow XMIG_ERROR, the last "
			    "record of a back-channel";
			break;
		case 2:
			s.state = XMIG_STATUS_FAILED;
			cimg_note(&c, REC_XMIG_STATUS);
			control_status_put(&c.b, &s);
			needle = "no record may follow XMIG_STATUS FAILED";
			break;
		default:
			s.state = XMIG_STATUS_RUNNING;
			cimg_note(&c, REC_XMIG_STATUS);
			control_status_put(&c.b, &s);
			cimg_note(&c, REC_XMIG_DIGESTS);
			control_digests_put(&c.b, &d);
			needle = "no record may follow XMIG_DIGESTS";
			break;
		}
		accept_k("closing record", K_BACK, c.b.data, c.b.len, NULL);
		cimg_note(&c, REC_XMIG_ERROR);
		control_error_put(&c.b, &em);
		creject("after the last record", &c, XP_EORDER, "%s%s",
		    cwhere(&c, c.nrec - 1), needle);
		buf_free(&c.b);
	}

	/* DIGESTS only after RUNNING. */
	cimg_begin(&c, 1);
	mk_reply(&r, 0, NULL);
	cimg_note(&c, REC_XMIG_REPLY);
	control_reply_put(&c.b, &r);
	s.state = XMIG_STATUS_RESTORED;
	cimg_note(&c, REC_XMIG_STATUS);
	control_status_put(&c.b, &s);
	cimg_note(&c, REC_XMIG_DIGESTS);
	control_digests_put(&c.b, &d);
	creject("DIGESTS before RUNNING", &c, XP_EORDER, "%sonly valid after "
	    "XMIG_STATUS RUNNING", cwhere(&c, 2));
	buf_free(&c.b);

	/* One HANDOVER. */
	cimg_begin(&c, 0);
	cimg_note(&c, REC_XMIG_HANDOVER);
	control_handover_put(&c.b, &h);
	cimg_note(&c, REC_XMIG_HANDOVER);
	control_handover_put(&c.b, &h);
	fcreject("second HANDOVER", &c, XP_EORDER, "%sno record may follow "
	    "XMIG_HANDOVER, the only command after END", cwhere(&c, 1));
	buf_free(&c.b);
}

/* Every prefix: complete between records, truncated inside one. */
static void
test_control_truncation(void)
{
	struct cimg	 c;
	struct xp_error	 e;
	size_t		 n, r, bad = 0;
	int		 boundary, rv, rv1;

	cimg_back(&c);
	for (n = 0; n <= c.b.len; n++) {
		boundary = n == 0 || n == WIRE_IHDR_SIZE || n == c.b.len;
		for (r = 0; r < c.nrec; r++)
			boundary |= n == c.roff[r];
		rv = run_k(K_BACK, c.b.data, n, CHUNK_WHOLE, NULL, NULL, &e);
		rv1 = run_k(K_BACK, c.b.data, n, 1, NULL, NULL, NULL);
		if (rv != (boundary ? 0 : -XP_ETRUNCATED) || rv1 != rv) {
			bad++;
			fprintf(stderr, "prefix %zu: %d / %d: %s\n", n, rv, rv1,
			    e.msg);
		}
	}
	CHECK(bad == 0, "%zu of %zu prefixes with the wrong verdict", bad,
	    c.b.len + 1);
	run_k(K_BACK, c.b.data, c.roff[2] + 5, 1, NULL, NULL, &e);
	CHECK(strstr(e.msg, "record 2 at offset") != NULL &&
	    strstr(e.msg, "stream ends after 5 of 16 octets of the record "
	    "header") != NULL, "%s", e.msg);
	run_k(K_BACK, c.b.data, c.roff[2] + 20, 3, NULL, NULL, &e);
	CHECK(strstr(e.msg, cwhere(&c, 2)) != NULL && strstr(e.msg,
	    "stream ends after 20 of 48 octets") != NULL && e.type ==
	    REC_XMIG_ACK, "%s", e.msg);
	buf_free(&c.b);
}

/*
 * Every single-bit flip in the records is refused, except in the footer's
 * reserved word; in the image header, the reserved option bits and octets
 * are ignored (as in a forward stream) and every other bit counts.
 */
static void
test_control_bitflips(void)
{
	struct cimg	 c;
	struct xp_error	 e;
	size_t		 r, pos, end, flips = 0, passed = 0;
	int		 bit, rv, ignored;

	cimg_back(&c);
	CHECK(run_k(K_BACK, c.b.data, c.b.len, CHUNK_WHOLE, NULL, NULL, &e) ==
	    0, "flip stream valid: %s", e.msg);
	for (r = 0; r < c.nrec; r++) {
		end = r + 1 < c.nrec ? c.roff[r + 1] : c.b.len;
		for (pos = c.roff[r]; pos < end - 4; pos++) {
			for (bit = 0; bit < 8; bit++) {
				c.b.data[pos] ^= 1u << bit;
				rv = run_k(K_BACK, c.b.data, c.b.len,
				    CHUNK_WHOLE, NULL, NULL, &e);
				c.b.data[pos] ^= 1u << bit;
				flips++;
				if (rv == 0) {
					passed++;
					fprintf(stderr, "flip at %zu bit %d "
					    "accepted\n", pos, bit);
				}
			}
		}
		/* The footer's reserved word is not covered. */
		c.b.data[end - 1] ^= 0x40;
		CHECK(run_k(K_BACK, c.b.data, c.b.len, CHUNK_WHOLE, NULL, NULL,
		    &e) == 0, "footer reserved word of record %zu", r);
		c.b.data[end - 1] ^= 0x40;
	}
	CHECK(passed == 0, "%zu of %zu record bit flips accepted", passed,
	    flips);
	printf("# %zu single-bit flips in back-channel records, all "
	    "rejected\n", flips);

	for (pos = 0; pos < WIRE_IHDR_SIZE; pos++) {
		for (bit = 0; bit < 8; bit++) {
			ignored = pos >= 18 || pos == 16 ||
			    (pos == 17 && bit >= 2);
			c.b.data[pos] ^= 1u << bit;
			rv = run_k(K_BACK, c.b.data, c.b.len, CHUNK_WHOLE, NULL,
			    NULL, &e);
			c.b.data[pos] ^= 1u << bit;
			CHECK((rv == 0) == ignored, "header flip at %zu bit %d: "
			    "%d %s", pos, bit, rv, e.msg);
		}
	}

	/* The forward control channel too. */
	{
		struct xp_handover	h = { XMIG_HANDOVER_GO };

		buf_free(&c.b);
		cimg_begin(&c, 0);
		control_handover_put(&c.b, &h);
		passed = flips = 0;
		for (pos = 0; pos < c.b.len - 4; pos++) {
			for (bit = 0; bit < 8; bit++) {
				c.b.data[pos] ^= 1u << bit;
				rv = run_k(K_FORWARD, c.b.data, c.b.len,
				    CHUNK_WHOLE, NULL, NULL, &e);
				c.b.data[pos] ^= 1u << bit;
				flips++;
				passed += rv == 0;
			}
		}
		CHECK(passed == 0 && flips == 28 * 8, "%zu of %zu HANDOVER "
		    "flips accepted", passed, flips);
	}
	buf_free(&c.b);
}

/* XMIG_DOMAIN_CONFIG (SPEC 12.4): where it may stand, its body. */
static void
test_config(void)
{
	static const char	 json[] = "{\"c_info\":{\"name\":\"web1\"}}";
	struct xp_negotiate	 n;
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	uint8_t			 b[WIRE_NEGOTIATE_SIZE], body[64], x[64];
	const char		*text;
	uint32_t		 kind;
	size_t			 len, jl = sizeof json - 1;
	int			 be, rv, d;

	for (d = 0; d < 2; d++) {
		for (be = 0; be < (d ? 1 : 2); be++) {
			/* Second, after NEGOTIATE; then first, without it. */
			img_begin_v(&im, d ? XP_XEN : XP_DRAFTB, be, 0,
			    WIRE_DOM_X86_HVM, 1);
			mk_negotiate(&n, &im.st);
			body_negotiate_put(be, b, &n);
			img_put(&im, REC_XMIG_NEGOTIATE, b, sizeof b);
			body_config_put(be, body, XMIG_CONFIG_LIBXL_JSON);
			memcpy(body + 8, json, jl);
			img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
			img_static(&im);
			img_put_empty(&im, REC_END);
			accept("CONFIG after NEGOTIATE", &im);
			memset(&col, 0, sizeof col);
			rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE,
			    NULL, &col, &e);
			CHECK(rv == 0 && col.n >= 2 && col.v[1].known &&
			    col.v[1].type == REC_XMIG_DOMAIN_CONFIG,
			    "config yielded (dialect %d, be %d)", d, be);
			if (rv == 0 && col.n >= 2) {
				rv = body_config_get(&col.st, &col.v[1].rec,
				    &kind, &text, &len);
				CHECK(rv == 0 && kind == XMIG_CONFIG_LIBXL_JSON &&
				    len == jl && memcmp(text, json, jl) == 0,
				    "config round trip");
				CHECK(body_config_get(&col.st, &col.v[0].rec,
				    &kind, &text, &len) == -XP_EINVAL,
				    "config_get: NEGOTIATE is another type");
				CHECK(body_reorder(REC_XMIG_DOMAIN_CONFIG,
				    col.v[1].body, 8 + jl, be, !be, x) == 0 &&
				    xp_get32(!be, x) == 1 &&
				    memcmp(x + 8, json, jl) == 0,
				    "config reordered: head only");
			}
			collect_free(&col);
			img_free(&im);
		}
	}
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	body_config_put(0, body, XMIG_CONFIG_LIBXL_JSON);
	memcpy(body + 8, json, jl);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_static(&im);
	img_put_empty(&im, REC_END);
	accept("CONFIG first, one-way", &im);
	img_free(&im);

	/* Not after anything else, not twice. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_put_empty(&im, REC_END);
	reject("CONFIG after static data", &im, XP_EORDER, "%sonly valid as "
	    "the first record after the domain header, or the second after "
	    "XMIG_NEGOTIATE", where(&im, 2));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_put_empty(&im, REC_END);
	reject("CONFIG twice", &im, XP_EORDER, "%sonly valid as the first",
	    where(&im, 1));
	img_free(&im);

	/* Body rules. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	body_config_put(0, body, 7);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_put_empty(&im, REC_END);
	reject("CONFIG kind", &im, XP_EBODY, "%sconfiguration kind 7 is "
	    "unknown", where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	body_config_put(0, body, XMIG_CONFIG_LIBXL_JSON);
	xp_put32(0, body + 4, 1);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_put_empty(&im, REC_END);
	reject("CONFIG reserved", &im, XP_EBODY, "%sreserved field is 0x1",
	    where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	body_config_put(0, body, XMIG_CONFIG_LIBXL_JSON);
	body[12] = '\0';
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8 + jl);
	img_put_empty(&im, REC_END);
	reject("CONFIG NUL", &im, XP_EBODY, "%sthe configuration text "
	    "contains a NUL octet", where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	body_config_put(0, body, XMIG_CONFIG_LIBXL_JSON);
	img_put(&im, REC_XMIG_DOMAIN_CONFIG, body, 8);
	img_put_empty(&im, REC_END);
	reject("CONFIG without text", &im, XP_EBODY, "%slength 8 is below "
	    "the minimum 9", where(&im, 0));
	img_free(&im);
}

/* XMIG_EARLY_PARAMS (SPEC 12.5): where it may stand, its body. */
static void
early_body(uint8_t *b, int be, uint32_t count, const uint64_t *kv)
{
	uint32_t	i;

	memset(b, 0, 8 + 16 * (size_t)count);
	xp_put32(be, b, count);
	for (i = 0; i < 2 * count; i++)
		xp_put64(be, b + 8 + 8 * (size_t)i, kv[i]);
}

static void
early_reject(const char *what, uint32_t count, const uint64_t *kv,
    uint32_t len, uint32_t reserved, const char *msg)
{
	struct img	im;
	uint8_t		b[8 + 16 * 4];

	early_body(b, 0, count, kv);
	xp_put32(0, b + 4, reserved);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	img_static(&im);
	img_put(&im, REC_XMIG_EARLY_PARAMS, b, len);
	img_put_empty(&im, REC_END);
	reject(what, &im, XP_EBODY, "%s%s", where(&im, 2), msg);
	img_free(&im);
}

static void
test_early_params(void)
{
	static const uint64_t	 both[] = { 1, 0xfeffc, 17, 0xfefff };
	static const uint64_t	 bad[] = { 2, 0x1000 };
	static const uint64_t	 twice[] = { 1, 0x1000, 1, 0x2000 };
	static const uint64_t	 three[] = { 1, 0x1000, 17, 0x2000, 1, 0x3000 };
	struct img		 im;
	struct collect		 col;
	struct xp_error		 e;
	uint8_t			 b[8 + 16 * 4], x[8 + 16 * 4];
	int			 be, d, rv;

	for (d = 0; d < 2; d++) {
		for (be = 0; be < (d ? 1 : 2); be++) {
			img_begin(&im, d ? XP_XEN : XP_DRAFTB, be,
			    WIRE_DOM_X86_HVM);
			img_static(&im);
			early_body(b, be, 2, both);
			img_put(&im, REC_XMIG_EARLY_PARAMS, b, 40);
			img_put_empty(&im, REC_END);
			accept("EARLY_PARAMS after STATIC_DATA_END", &im);
			memset(&col, 0, sizeof col);
			rv = run_k(K_STREAM, im.b.data, im.b.len, CHUNK_WHOLE,
			    NULL, &col, &e);
			CHECK(rv == 0 && col.n >= 3 && col.v[2].known &&
			    col.v[2].type == REC_XMIG_EARLY_PARAMS,
			    "early params yielded (dialect %d, be %d)", d, be);
			if (rv == 0 && col.n >= 3)
				CHECK(body_reorder(REC_XMIG_EARLY_PARAMS,
				    col.v[2].body, 40, be, 0, x) == 0 &&
				    xp_get32(0, x) == 2 &&
				    xp_get64(0, x + 8) == 1 &&
				    xp_get64(0, x + 16) == 0xfeffc &&
				    xp_get64(0, x + 24) == 17 &&
				    xp_get64(0, x + 32) == 0xfefff,
				    "early params to little-endian (be %d)",
				    be);
			collect_free(&col);
			img_free(&im);
		}
	}
	/* PVH too; one entry is enough. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PVH);
	img_static(&im);
	early_body(b, 0, 1, both + 2);
	img_put(&im, REC_XMIG_EARLY_PARAMS, b, 24);
	img_put_empty(&im, REC_END);
	accept("EARLY_PARAMS in a PVH stream", &im);
	img_free(&im);

	/* Not before STATIC_DATA_END, not in a PV stream. */
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_HVM);
	early_body(b, 0, 2, both);
	img_put(&im, REC_XMIG_EARLY_PARAMS, b, 40);
	img_static(&im);
	img_put_empty(&im, REC_END);
	reject("EARLY_PARAMS before STATIC_DATA_END", &im, XP_EORDER,
	    "%sno STATIC_DATA_END seen", where(&im, 0));
	img_free(&im);
	img_begin(&im, XP_DRAFTB, 0, WIRE_DOM_X86_PV);
	img_static(&im);
	img_put(&im, REC_XMIG_EARLY_PARAMS, b, 40);
	img_put_empty(&im, REC_END);
	reject("EARLY_PARAMS in a PV stream", &im, XP_EORDER, "%snot allowed "
	    "in an", where(&im, 2));
	img_free(&im);

	/* Body rules. */
	early_reject("EARLY_PARAMS other param", 1, bad, 24, 0, "entry 0: "
	    "param 2 is not the store (1) or console (17) pfn");
	early_reject("EARLY_PARAMS repeated param", 2, twice, 40, 0, "entry "
	    "1: param 1 a second time");
	early_reject("EARLY_PARAMS reserved", 1, both, 24, 3, "reserved field "
	    "is 0x00000003, not 0");
	early_reject("EARLY_PARAMS count", 2, both, 24, 0, "");
	early_reject("EARLY_PARAMS empty", 0, both, 8, 0, "length 8 is below "
	    "the minimum 24");
	early_reject("EARLY_PARAMS three", 3, three, 56, 0, "length 56 is "
	    "above the maximum 40");
}

int
main(void)
{
	test_registry();
	test_negotiate();
	test_config();
	test_early_params();
	test_zero_pages();
	test_deflate();
	test_zstd();
	test_forward_refusals();
	test_control_roundtrip();
	test_control_text();
	test_escape();
	test_control_header();
	test_control_records();
	test_control_order();
	test_checkpoints();
	test_streams();
	test_control_truncation();
	test_control_bitflips();
	return tap_done();
}
