/*
 * test-libxl.c -- unit tests of proto/libxl.c (SPEC section 16): the
 * encoders byte for byte, detection, the wrapper reader over synthetic xl
 * save files and libxl streams around a real libxc stream (fed whole, one
 * octet at a time and in odd chunks, with the libxc part read by the
 * parser as xmig-image does), one test per rejection path with the offset
 * the message must name, truncation at every offset, and trailing data.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "libxl.h"
#include "tap.h"

static const char config[] = "{\"c_info\":{\"name\":\"t\"}}";

/* ---- building inputs ---------------------------------------------------- */

/* A small valid libxc stream: Xen v3 HVM, STATIC_DATA_END, a page, END. */
static void
put_libxc(struct xp_buf *b)
{
	struct xp_stream	st;
	uint8_t			*p, page[8 + 8 + 4096];
	uint64_t		 ent = body_pfn_entry(5, 0);
	int			 rv;

	stream_init(&st, XP_XEN, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	p = buf_extend(b, WIRE_IHDR_SIZE);
	header_image_put(&st, p);
	p = buf_extend(b, header_domain_size(&st));
	header_domain_put(&st, p);
	rv = record_encode(&st, b, REC_STATIC_DATA_END, NULL, 0, 0);
	CHECK(rv == 0, "SDE: %d", rv);
	body_page_data_prefix_put(0, page, 1, &ent);
	memset(page + 16, 0xa5, 4096);
	rv = record_encode(&st, b, REC_PAGE_DATA, page, sizeof page, 0);
	CHECK(rv == 0, "PAGE_DATA: %d", rv);
	rv = record_encode(&st, b, REC_END, NULL, 0, 0);
	CHECK(rv == 0, "END: %d", rv);
}

static void
put_rec(struct xp_buf *b, uint32_t type, const void *body, uint32_t len)
{
	int	rv = xp_libxl_record_encode(b, type, body, len);

	CHECK(rv == 0, "xp_libxl_record_encode(%u, %u): %d", type, len, rv);
}

static void
put_libxl_hdr(struct xp_buf *b, uint32_t options)
{
	xp_libxl_header_encode(buf_extend(b, XP_LIBXL_HDR_SIZE), options);
}

/* An emulator record body: id, index, then data. */
static uint32_t
emu_body(uint8_t *out, uint32_t id, uint32_t index, const void *data,
    uint32_t len)
{
	xp_put32(0, out, id);
	xp_put32(0, out + 4, index);
	memcpy(out + 8, data, len);
	return 8 + len;
}

struct layout {
	uint64_t	libxl_hdr;	/* offsets in the built input */
	uint64_t	libxc;
	uint64_t	libxc_len;
	uint64_t	after;		/* first libxl record after libxc */
	uint64_t	end;		/* libxl END */
};

/*
 * A whole xl save file (xl != 0) or libxl stream: header(s),
 * LIBXC_CONTEXT, the libxc stream, EMULATOR_XENSTORE_DATA (2 pairs),
 * EMULATOR_CONTEXT (5 octets of blob), END.
 */
static void
build(struct xp_buf *b, int xl, int emu, struct layout *lo)
{
	static const char	xs[] = "physmap/1/start\0" "f0000\0" "a\0" "b";
	uint8_t			 body[64];
	uint32_t		 n;
	int			 rv;

	memset(b, 0, sizeof *b);
	if (xl) {
		rv = xp_xl_header_encode(b, config, sizeof config);
		CHECK(rv == 0, "xp_xl_header_encode: %d", rv);
	}
	lo->libxl_hdr = b->len;
	put_libxl_hdr(b, 0);
	put_rec(b, XP_LIBXL_LIBXC_CONTEXT, NULL, 0);
	lo->libxc = b->len;
	put_libxc(b);
	lo->libxc_len = b->len - lo->libxc;
	lo->after = b->len;
	if (emu) {
		n = emu_body(body, 2, 0, xs, sizeof xs);
		put_rec(b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n);
		n = emu_body(body, 2, 0, "qemu!", 5);
		put_rec(b, XP_LIBXL_EMULATOR_CONTEXT, body, n);
	}
	lo->end = b->len;
	put_rec(b, XP_LIBXL_END, NULL, 0);
}

/* ---- reading them back -------------------------------------------------- */

struct seen {
	int		 xl;
	uint32_t	 config_len;
	int		 config_ok;
	int		 libxl;
	uint32_t	 options;
	uint32_t	 types[16];
	uint64_t	 offsets[16];
	uint32_t	 pairs[16];
	uint32_t	 emu_id[16];
	size_t		 nrec;
};

/* The libxl record index whose callback fails, or -1. */
static int	fail_at = -1;

static int
seen_cb(void *arg, const struct xp_wrap_item *it)
{
	struct seen	*s = arg;

	switch (it->kind) {
	case XP_WI_XL_HEADER:
		s->xl++;
		s->config_len = it->config_len;
		s->config_ok = it->config_len == sizeof config &&
		    memcmp(it->config, config, sizeof config) == 0;
		break;
	case XP_WI_LIBXL_HEADER:
		s->libxl++;
		s->options = it->options;
		break;
	case XP_WI_RECORD:
		if ((int)it->index == fail_at)
			return -XP_EBODY;
		if (s->nrec < 16) {
			s->types[s->nrec] = it->type;
			s->offsets[s->nrec] = it->offset;
			s->pairs[s->nrec] = it->xs_pairs;
			s->emu_id[s->nrec] = it->emulator_id;
		}
		s->nrec++;
		break;
	}
	return 0;
}

struct result {
	int	code;		/* 0, or the positive XP_E* code */
	int	in_libxc;	/* the error came from the libxc parser */
	char	msg[400];
	uint64_t libxc_offset;
	uint64_t libxc_len;
};

/*
 * Read buf in chunks of chunk octets (0: whole) as xmig-image does: the
 * wrapper reader, and the libxc parser for the octets after LIBXC_CONTEXT.
 */
static void
run(enum xp_wrap_kind kind, const uint8_t *buf, size_t len, size_t chunk,
    struct seen *s, struct result *r)
{
	struct xp_limits	 lim;
	struct xp_wrap		*w;
	struct xp_parser	*p;
	size_t			 off = 0, n, k;
	ssize_t			 used;
	int			 rc;

	memset(r, 0, sizeof *r);
	memset(s, 0, sizeof *s);
	memset(&lim, 0, sizeof lim);
	w = xp_wrap_new(kind, seen_cb, s);
	p = parser_new(&lim, NULL, NULL, NULL);
	if (w == NULL || p == NULL) {
		CHECK(0, "out of memory");
		exit(1);
	}
	while (off < len) {
		n = chunk == 0 || chunk > len - off ? len - off : chunk;
		k = 0;
		while (k < n) {
			if (!xp_wrap_in_libxc(w)) {
				used = xp_wrap_feed(w, buf + off + k, n - k);
				if (used < 0) {
					r->code = (int)-used;
					snprintf(r->msg, sizeof r->msg, "%s",
					    xp_wrap_error(w)->msg);
					goto out;
				}
			} else {
				used = parser_feed(p, buf + off + k, n - k);
				if (used < 0) {
					r->code = (int)-used;
					r->in_libxc = 1;
					snprintf(r->msg, sizeof r->msg, "%s",
					    parser_error(p)->msg);
					goto out;
				}
				if (parser_done(p)) {
					r->libxc_len = parser_offset(p);
					xp_wrap_libxc_end(w, parser_offset(p));
				}
			}
			k += (size_t)used;
		}
		off += n;
	}
	if (xp_wrap_in_libxc(w)) {
		rc = parser_finish(p);
		r->code = rc < 0 ? -rc : rc;
		r->in_libxc = 1;
		snprintf(r->msg, sizeof r->msg, "%s", parser_error(p)->msg);
		if (r->code == 0) {
			r->code = -1;
			snprintf(r->msg, sizeof r->msg, "libxc part ended "
			    "without END, yet parser_finish gave 0");
		}
		goto out;
	}
	rc = xp_wrap_finish(w);
	r->code = rc < 0 ? -rc : rc;
	if (rc != 0)
		snprintf(r->msg, sizeof r->msg, "%s", xp_wrap_error(w)->msg);
out:
	r->libxc_offset = xp_wrap_libxc_offset(w);
	xp_wrap_free(w);
	parser_free(p);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_encoders(void)
{
	struct xp_buf	 b;
	uint8_t		 h[XP_LIBXL_HDR_SIZE];
	static const uint8_t want_h[16] = { 'L', 'i', 'b', 'x', 'l', 'F', 'm',
	    't', 0, 0, 0, 2, 0, 0, 0, 2 };
	static const uint8_t want_r[16] = { 3, 0, 0, 0, 5, 0, 0, 0, 'a', 'b',
	    'c', 'd', 'e', 0, 0, 0 };
	int		 rv;

	xp_libxl_header_encode(h, XP_LIBXL_OPT_LEGACY);
	CHECK(memcmp(h, want_h, 16) == 0, "libxl header bytes");

	memset(&b, 0, sizeof b);
	put_rec(&b, 3, "abcde", 5);
	CHECK(b.len == 16 && memcmp(b.data, want_r, 16) == 0,
	    "record bytes: len %zu", b.len);
	put_rec(&b, XP_LIBXL_END, NULL, 0);
	CHECK(b.len == 24 && memcmp(b.data + 16, "\0\0\0\0\0\0\0\0", 8) == 0,
	    "END bytes");
	rv = xp_libxl_record_encode(&b, 1, NULL, XP_LIBXL_REC_MAX + 1);
	CHECK(rv == -XP_EINVAL && b.len == 24, "too long: %d, len %zu", rv,
	    b.len);
	rv = xp_libxl_record_encode(&b, 1, NULL, 3);
	CHECK(rv == -XP_EINVAL && b.len == 24, "NULL body: %d", rv);
	buf_free(&b);

	/* xl header: magic, 04 03 02 01, flags 3, 0, 4 + n, n, config. */
	memset(&b, 0, sizeof b);
	rv = xp_xl_header_encode(&b, config, sizeof config);
	CHECK(rv == 0 && b.len == 48 + 4 + sizeof config, "xl header: %d %zu",
	    rv, b.len);
	CHECK(memcmp(b.data, "Xen saved domain, xl format\n \0 \r", 32) == 0,
	    "xl magic");
	CHECK(memcmp(b.data + 32, "\x04\x03\x02\x01\x03\0\0\0\0\0\0\0", 12) ==
	    0, "xl byte order and flags");
	CHECK(xp_get32(0, b.data + 44) == 4 + sizeof config &&
	    xp_get32(0, b.data + 48) == sizeof config &&
	    memcmp(b.data + 52, config, sizeof config) == 0, "xl optional data");
	buf_free(&b);
	memset(&b, 0, sizeof b);
	rv = xp_xl_header_encode(&b, NULL, 0);
	CHECK(rv == 0 && b.len == 52 && xp_get32(0, b.data + 36) == 2 &&
	    xp_get32(0, b.data + 44) == 4 && xp_get32(0, b.data + 48) == 0,
	    "xl header without config");
	buf_free(&b);

	CHECK(strcmp(xp_libxl_rec_name(1), "LIBXC_CONTEXT") == 0, "name 1");
	CHECK(strcmp(xp_libxl_rec_name(6), "UNKNOWN_0x6") == 0, "name 6");
	CHECK(strcmp(xp_libxl_rec_name(0x80000001u), "OPTIONAL_0x80000001") ==
	    0, "name optional");
}

static void
test_detect(void)
{
	static const uint8_t bare[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff };

	CHECK(xp_wrap_detect((const uint8_t *)XP_XL_MAGIC, 32) == XP_WRAP_XL,
	    "xl");
	CHECK(xp_wrap_detect((const uint8_t *)XP_XL_MAGIC, 31) == -1, "xl 31");
	CHECK(xp_wrap_detect((const uint8_t *)"LibxlFmt", 8) == XP_WRAP_LIBXL,
	    "libxl");
	CHECK(xp_wrap_detect((const uint8_t *)"Libx", 4) == -1, "libxl 4");
	CHECK(xp_wrap_detect(bare, 8) == XP_WRAP_NONE, "bare");
	CHECK(xp_wrap_detect(bare, 1) == XP_WRAP_NONE, "bare 1");
	CHECK(xp_wrap_detect((const uint8_t *)"Xen saved domain, xl formaT", 27)
	    == XP_WRAP_NONE, "near miss");
	CHECK(xp_wrap_new(XP_WRAP_NONE, NULL, NULL) == NULL, "new NONE");
}

static void
test_roundtrip(void)
{
	static const size_t	 chunks[] = { 0, 1, 3, 7, 8, 13, 4096 };
	struct xp_buf		 b;
	struct layout		 lo;
	struct seen		 s;
	struct result		 r;
	size_t			 i;
	int			 xl, emu;

	for (xl = 0; xl <= 1; xl++) {
		for (emu = 0; emu <= 1; emu++) {
			build(&b, xl, emu, &lo);
			for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
				run(xl ? XP_WRAP_XL : XP_WRAP_LIBXL, b.data,
				    b.len, chunks[i], &s, &r);
				CHECK(r.code == 0, "xl %d emu %d chunk %zu: %d %s",
				    xl, emu, chunks[i], r.code, r.msg);
				CHECK(s.xl == xl && s.config_ok == xl &&
				    s.libxl == 1, "headers seen: %d %d %d",
				    s.xl, s.config_ok, s.libxl);
				CHECK(r.libxc_offset == lo.libxc &&
				    r.libxc_len == lo.libxc_len,
				    "libxc at %" PRIu64 "+%" PRIu64 ", want %"
				    PRIu64 "+%" PRIu64, r.libxc_offset,
				    r.libxc_len, lo.libxc, lo.libxc_len);
				CHECK(s.nrec == (emu ? 4u : 2u) &&
				    s.types[0] == XP_LIBXL_LIBXC_CONTEXT &&
				    s.types[s.nrec - 1] == XP_LIBXL_END &&
				    s.offsets[s.nrec - 1] == lo.end,
				    "records: %zu", s.nrec);
				if (emu)
					CHECK(s.types[1] ==
					    XP_LIBXL_EMULATOR_XENSTORE_DATA &&
					    s.pairs[1] == 2 && s.emu_id[1] == 2 &&
					    s.offsets[1] == lo.after &&
					    s.types[2] ==
					    XP_LIBXL_EMULATOR_CONTEXT,
					    "emulator records");
			}
			buf_free(&b);
		}
	}

	/* The legacy option bit is accepted and reported. */
	build(&b, 1, 0, &lo);
	xp_put32(1, b.data + lo.libxl_hdr + 12, XP_LIBXL_OPT_LEGACY);
	run(XP_WRAP_XL, b.data, b.len, 0, &s, &r);
	CHECK(r.code == 0 && s.options == XP_LIBXL_OPT_LEGACY, "legacy bit: %d"
	    " %s", r.code, r.msg);
	buf_free(&b);
}

/* Expect code, and "offset N" in the message (N < 0: not checked). */
static void
expect(const char *what, enum xp_wrap_kind kind, const struct xp_buf *b,
    int code, long long offset, const char *text)
{
	static const size_t	chunks[] = { 0, 1, 5 };
	struct seen		s;
	struct result		r;
	char			off[40];
	size_t			i;

	for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		run(kind, b->data, b->len, chunks[i], &s, &r);
		CHECK(r.code == code, "%s (chunk %zu): code %d (%s), want %d",
		    what, chunks[i], r.code, r.msg, code);
		if (offset >= 0) {
			snprintf(off, sizeof off, "offset %lld", offset);
			CHECK(strstr(r.msg, off) != NULL, "%s: \"%s\" lacks \"%s\"",
			    what, r.msg, off);
		}
		if (text != NULL)
			CHECK(strstr(r.msg, text) != NULL, "%s: \"%s\" lacks \"%s\"",
			    what, r.msg, text);
	}
}

/* An xl file whose xl header is patched: u32 at off set to v. */
static void
xl_patched(struct xp_buf *b, size_t off, uint32_t v)
{
	struct layout	lo;

	build(b, 1, 0, &lo);
	xp_put32(0, b->data + off, v);
}

static void
test_xl_header_refusals(void)
{
	struct xp_buf	b;
	struct layout	lo;

	build(&b, 1, 0, &lo);
	b.data[5] ^= 0x20;
	expect("bad magic", XP_WRAP_XL, &b, XP_EHEADER, 0, "magic");
	buf_free(&b);

	xl_patched(&b, 32, 0x04030201u);
	expect("big-endian xl", XP_WRAP_XL, &b, XP_EHEADER, 32, "big-endian");
	buf_free(&b);
	xl_patched(&b, 32, 0x01020305u);
	expect("bad byte order", XP_WRAP_XL, &b, XP_EHEADER, 32, "0x01020305");
	buf_free(&b);
	xl_patched(&b, 36, 0x7u);
	expect("unknown flag", XP_WRAP_XL, &b, XP_EHEADER, 36, "unknown bits 0x4");
	buf_free(&b);
	xl_patched(&b, 36, 0x1u);
	expect("no STREAMv2", XP_WRAP_XL, &b, XP_ELEGACY, 36, "legacy");
	buf_free(&b);
	xl_patched(&b, 40, 0x1u);
	expect("optional flags", XP_WRAP_XL, &b, XP_EHEADER, 40, "optional flags");
	buf_free(&b);
	xl_patched(&b, 44, 0x7fffffffu);
	expect("optional data too long", XP_WRAP_XL, &b, XP_ETOOBIG, 44, NULL);
	buf_free(&b);
	xl_patched(&b, 48, 4 + sizeof config);
	expect("config beyond optional data", XP_WRAP_XL, &b, XP_EHEADER, 48,
	    "config length");
	buf_free(&b);

	/* Optional data of 2 octets: too short for the config length. */
	memset(&b, 0, sizeof b);
	xp_xl_header_encode(&b, NULL, 0);
	xp_put32(0, b.data + 44, 2);
	b.len = 50;
	put_libxl_hdr(&b, 0);
	expect("optional data of 2", XP_WRAP_XL, &b, XP_EHEADER, 48, "cannot hold");
	buf_free(&b);

	/* A JSON config without its NUL. */
	build(&b, 1, 0, &lo);
	b.data[52 + sizeof config - 1] = '}';
	expect("JSON without NUL", XP_WRAP_XL, &b, XP_EHEADER, 52, "NUL");
	buf_free(&b);
	/* Not JSON: no NUL needed. */
	build(&b, 1, 0, &lo);
	b.data[52 + sizeof config - 1] = '}';
	xp_put32(0, b.data + 36, XP_XL_FLAG_STREAMV2);
	expect("text config", XP_WRAP_XL, &b, 0, -1, NULL);
	buf_free(&b);
}

static void
test_libxl_header_refusals(void)
{
	struct xp_buf	b;
	struct layout	lo;
	long long	h;

	build(&b, 1, 0, &lo);
	h = (long long)lo.libxl_hdr;
	b.data[h + 2] = 'X';
	expect("bad ident", XP_WRAP_XL, &b, XP_EHEADER, h, "ident");
	memset(b.data + h, 0xff, 8);
	expect("libxc where libxl belongs", XP_WRAP_XL, &b, XP_EHEADER, h,
	    "libxc image header");
	buf_free(&b);

	build(&b, 1, 0, &lo);
	xp_put32(1, b.data + h + 8, 3);
	expect("version 3", XP_WRAP_XL, &b, XP_EVERSION, h + 8, "version 3");
	xp_put32(1, b.data + h + 8, 2);
	xp_put32(1, b.data + h + 12, XP_LIBXL_OPT_BIG_ENDIAN);
	expect("big-endian libxl", XP_WRAP_XL, &b, XP_EHEADER, h + 12,
	    "big-endian");
	xp_put32(1, b.data + h + 12, 0x100);
	expect("reserved option", XP_WRAP_XL, &b, XP_EHEADER, h + 12,
	    "reserved bits 0x100");
	buf_free(&b);
}

/* libxl stream: header, then the records given, then maybe libxc. */
static void
libxl_with(struct xp_buf *b, uint32_t type, const void *body, uint32_t len)
{
	memset(b, 0, sizeof *b);
	put_libxl_hdr(b, 0);
	put_rec(b, type, body, len);
}

static void
test_record_refusals(void)
{
	struct xp_buf	b;
	struct layout	lo;
	uint8_t		body[64];
	uint32_t	n;

	libxl_with(&b, XP_LIBXL_END, NULL, 0);
	expect("END first", XP_WRAP_LIBXL, &b, XP_EORDER, 16, "no libxc part");
	buf_free(&b);
	n = emu_body(body, 2, 0, "", 0);
	libxl_with(&b, XP_LIBXL_EMULATOR_CONTEXT, body, n);
	expect("emulator first", XP_WRAP_LIBXL, &b, XP_EORDER, 16,
	    "before LIBXC_CONTEXT");
	buf_free(&b);
	libxl_with(&b, XP_LIBXL_LIBXC_CONTEXT, "12345678", 8);
	expect("LIBXC_CONTEXT with a body", XP_WRAP_LIBXL, &b, XP_EBODY, 16,
	    "must be 0");
	buf_free(&b);
	libxl_with(&b, XP_LIBXL_CHECKPOINT_END, NULL, 0);
	expect("CHECKPOINT_END", XP_WRAP_LIBXL, &b, XP_EORDER, 16, "Remus");
	buf_free(&b);
	libxl_with(&b, XP_LIBXL_CHECKPOINT_STATE, "\0\0\0\0", 4);
	expect("CHECKPOINT_STATE", XP_WRAP_LIBXL, &b, XP_EORDER, 16, "Remus");
	buf_free(&b);
	libxl_with(&b, 6, NULL, 0);
	expect("type 6", XP_WRAP_LIBXL, &b, XP_ETYPE, 16, "UNKNOWN_0x6");
	buf_free(&b);
	libxl_with(&b, 0x80000001u, NULL, 0);
	expect("optional type", XP_WRAP_LIBXL, &b, XP_ETYPE, 16, "optional");
	buf_free(&b);
	memset(&b, 0, sizeof b);
	put_libxl_hdr(&b, 0);
	xp_put32(0, buf_extend(&b, 4), XP_LIBXL_EMULATOR_CONTEXT);
	xp_put32(0, buf_extend(&b, 4), XP_LIBXL_REC_MAX + 1);
	expect("too long", XP_WRAP_LIBXL, &b, XP_ETOOBIG, 16, "maximum");
	buf_free(&b);

	/* Records after the libxc part: build a good stream, patch its tail. */
#define TAIL(what, code, text, ...) do {				\
	build(&b, 0, 0, &lo);						\
	b.len = lo.end;							\
	__VA_ARGS__;							\
	expect(what, XP_WRAP_LIBXL, &b, code, (long long)lo.end, text);	\
	buf_free(&b);							\
} while (0)

	TAIL("second LIBXC_CONTEXT", XP_EORDER, "second LIBXC_CONTEXT",
	    put_rec(&b, XP_LIBXL_LIBXC_CONTEXT, NULL, 0));
	TAIL("END with a body", XP_EBODY, "must be 0",
	    put_rec(&b, XP_LIBXL_END, "x", 1));
	TAIL("short emulator record", XP_EBODY, "emulator header",
	    put_rec(&b, XP_LIBXL_EMULATOR_CONTEXT, "abcd", 4));
	n = emu_body(body, 3, 0, "x", 1);
	TAIL("emulator id 3", XP_EBODY, "emulator id 3",
	    put_rec(&b, XP_LIBXL_EMULATOR_CONTEXT, body, n));
	n = emu_body(body, 1, 0, "key\0val", 7);
	TAIL("xenstore value without NUL", XP_EBODY, "not NUL-terminated",
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	n = emu_body(body, 1, 0, "key", 3);
	TAIL("xenstore key without NUL", XP_EBODY, "key not NUL-terminated",
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	n = emu_body(body, 1, 0, "key\0", 4);
	TAIL("xenstore key without value", XP_EBODY, "value missing",
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	n = emu_body(body, 1, 0, "\0v\0", 3);
	TAIL("xenstore empty key", XP_EBODY, "empty key",
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	n = emu_body(body, 1, 0, "k y\0v\0", 6);
	TAIL("xenstore key with a space", XP_EBODY, "0x20",
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	n = emu_body(body, 1, 0, "k\0v\0", 4);
	TAIL("two xenstore records", XP_EORDER, "second one",
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n);
	    lo.end = b.len;
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	TAIL("xenstore after context", XP_EORDER, "after EMULATOR_CONTEXT",
	    put_rec(&b, XP_LIBXL_EMULATOR_CONTEXT, body, n);
	    lo.end = b.len;
	    put_rec(&b, XP_LIBXL_EMULATOR_XENSTORE_DATA, body, n));
	TAIL("two contexts", XP_EORDER, "second one",
	    put_rec(&b, XP_LIBXL_EMULATOR_CONTEXT, body, n);
	    lo.end = b.len;
	    put_rec(&b, XP_LIBXL_EMULATOR_CONTEXT, body, n));
	n = emu_body(body, 1, 0, "abcde", 5);
	TAIL("padding not zero", XP_EBODY, "padding octet 1",
	    put_rec(&b, XP_LIBXL_EMULATOR_CONTEXT, body, n);
	    b.data[b.len - 2] = 7);
#undef TAIL

	/* After END: trailing octets. */
	build(&b, 1, 1, &lo);
	memcpy(buf_extend(&b, 3), "abc", 3);
	expect("trailing", XP_WRAP_XL, &b, XP_ETRAILING, (long long)lo.end + 8,
	    "after libxl's END");
	buf_free(&b);

	/* A draft-B image or garbage where libxc belongs: the parser says. */
	build(&b, 0, 0, &lo);
	b.data[lo.libxc + 3] = 0;
	expect("bad libxc marker", XP_WRAP_LIBXL, &b, XP_ELEGACY, -1, NULL);
	buf_free(&b);
}

static void
test_truncation(void)
{
	struct xp_buf	 b;
	struct layout	 lo;
	struct seen	 s;
	struct result	 r;
	size_t		 cut, bad = 0;
	char		 off[40];

	build(&b, 1, 1, &lo);
	for (cut = 0; cut < b.len; cut++) {
		run(XP_WRAP_XL, b.data, cut, 0, &s, &r);
		if (r.code != XP_ETRUNCATED) {
			if (bad++ < 5)
				CHECK(0, "cut at %zu: code %d (%s)", cut, r.code,
				    r.msg);
			continue;
		}
		/* The wrapper names the offset where the input ends. */
		if (!r.in_libxc && cut > 0) {
			snprintf(off, sizeof off, "offset %zu", cut);
			if (strstr(r.msg, off) == NULL && bad++ < 5)
				CHECK(0, "cut at %zu: \"%s\" lacks \"%s\"", cut,
				    r.msg, off);
		}
	}
	CHECK(bad == 0, "%zu of %zu cuts wrong", bad, b.len);
	buf_free(&b);
}

static void
test_misuse(void)
{
	struct xp_buf	 b;
	struct layout	 lo;
	struct xp_wrap	*w;
	struct seen	 s;
	struct result	 r;
	ssize_t		 used;

	build(&b, 1, 0, &lo);
	memset(&s, 0, sizeof s);
	w = xp_wrap_new(XP_WRAP_XL, seen_cb, &s);
	used = xp_wrap_feed(w, b.data, b.len);
	CHECK(used == (ssize_t)lo.libxc && xp_wrap_in_libxc(w),
	    "stops after LIBXC_CONTEXT: %zd", used);
	used = xp_wrap_feed(w, b.data + lo.libxc, 8);
	CHECK(used == -XP_EINVAL, "fed inside libxc: %zd", used);
	CHECK(xp_wrap_finish(w) == -XP_ETRUNCATED, "finish inside libxc");
	CHECK(xp_wrap_libxc_end(w, 1) == -XP_EINVAL, "libxc_end after fail");
	xp_wrap_free(w);

	/* A callback's error stops the reader with that code. */
	fail_at = 1;
	run(XP_WRAP_XL, b.data, b.len, 0, &s, &r);
	fail_at = -1;
	CHECK(r.code == XP_EBODY && strstr(r.msg, "stopped by the caller"),
	    "callback error: %d %s", r.code, r.msg);
	buf_free(&b);
}

int
main(void)
{
	test_encoders();
	test_detect();
	test_roundtrip();
	test_xl_header_refusals();
	test_libxl_header_refusals();
	test_record_refusals();
	test_truncation();
	test_misuse();
	return tap_done();
}
