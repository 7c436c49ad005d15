/*
 * fuzz-parser.c -- libFuzzer target for the incremental parser, the one
 * entry point every reader of xmig streams goes through.
 *
 * Input: two octets that choose how the rest is cut into parser_feed()
 * calls (so the chunking is fuzzed too), then the stream.  A chunked pass
 * must reach the same verdict (records, error code, index and offset) as a
 * pass that feeds everything at once.  Every record
 * the parser yields is re-encoded in the other byte order with
 * body_reorder_opt() (converting back must give the same octets) and
 * framed again with record_encode() in both dialects.  The extension
 * decoders must take every record the parser accepted: the page view of
 * PAGE_DATA and XMIG_ZERO_PAGES, XMIG_NEGOTIATE's fields, every delta of
 * XMIG_DELTA_PAGES (applied to a scratch page); DEFLATE page
 * data is inflated (it may fail, but only as a malformed body, and never
 * to more than the record maximum).  A third pass takes the page data of
 * every uncompressed PAGE_DATA direct (parser_set_direct, min_data 1) into
 * buffers of exactly the pages begin was asked for (ASan sees a write
 * beyond them): it must reach the same verdict as the others, and put the
 * same octets in the pages as the records held.
 * Build with ./configure CC=clang --enable-fuzzing; run with
 * tests/fuzz/run.sh.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "delta.h"

#define FZ_MAX_RECORD	(1u << 20)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz {
	struct xp_buf	 out;
	uint8_t		*scratch;	/* the body in the other byte order */
	uint8_t		*back;		/* and converted back */
	size_t		 cap;
	uint8_t		*raw;		/* inflated page data */
	uint32_t	 sum;		/* keeps the body reads alive */
	uint64_t	 records;
	uint64_t	 types;
	uint64_t	 data_hash;	/* uncompressed PAGE_DATA data, in order */
	uint8_t		*dst;		/* direct: the pages begin gave */
	size_t		 dst_len;
	int		 direct;	/* a record is being taken direct */
};

static uint64_t
fz_hash(uint64_t h, const uint8_t *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static int
fz_header(void *arg, const struct xp_stream *st)
{
	uint8_t	hdr[WIRE_IHDR_SIZE + WIRE_DHDR_SIZE_XEN];

	header_image_put(st, hdr);
	if (header_domain_put(st, hdr + WIRE_IHDR_SIZE) > WIRE_DHDR_SIZE_XEN)
		abort();
	return 0;
}

/* The extension decoders take what the parser took. */
static void
fz_ext(struct fz *fz, const struct xp_stream *st, const struct xp_record *rec)
{
	struct xp_page_view	v;
	struct xp_negotiate	n;
	uint32_t		i;
	int			rv;

	if (rec->type == REC_XMIG_NEGOTIATE &&
	    body_negotiate_get(st, rec, &n) != 0)
		abort();
	if (rec->type == REC_XMIG_DELTA_PAGES) {
		/* Every delta the parser took applies to a page. */
		static uint8_t page[1u << 16];
		struct delta_view dv;
		const uint8_t *d;
		uint32_t len;

		if (delta_pages_view(st, rec, &dv) != 0 ||
		    dv.page_size > sizeof(page))
			abort();
		for (i = 0, d = dv.data; i < dv.count; i++, d += len) {
			len = delta_view_len(&dv, i);
			if (delta_apply(page, dv.page_size, d, len, NULL,
			    0) != 0)
				abort();
		}
		fz->sum += page[0];
		return;
	}
	if (rec->type != REC_PAGE_DATA && rec->type != REC_XMIG_ZERO_PAGES)
		return;
	if (body_page_data_view(st, rec, &v) != 0)
		abort();
	for (i = 0; i < v.count; i++)
		fz->sum += (uint32_t)xp_page_view_entry(&v, i);
	if (!v.zero && !v.deflated)
		fz->data_hash = fz_hash(fz->data_hash, v.data, v.raw_length);
	if (!v.deflated)
		return;
	if (8 + (uint64_t)v.count * 8 + v.raw_length > FZ_MAX_RECORD)
		abort();	/* inflated, it would pass the maximum */
	if (fz->raw == NULL && (fz->raw = malloc(FZ_MAX_RECORD)) == NULL)
		abort();
	rv = body_page_data_inflate(st, rec, fz->raw, FZ_MAX_RECORD);
	if (rv != 0 && rv != -XP_EBODY && rv != -XP_ENOMEM)
		abort();
	if (rv == 0 && v.raw_length != 0)
		fz->sum += fz->raw[v.raw_length - 1];
}

static int
fz_record(void *arg, const struct xp_stream *st, const struct xp_record *rec)
{
	struct fz		*fz = arg;
	struct xp_stream	 other;
	uint8_t			*p;
	uint32_t		 i;
	uint16_t		 deflate;

	if (rec->length > FZ_MAX_RECORD)
		abort();		/* the limit was not enforced */
	fz->records++;
	fz->types += rec->type;
	for (i = 0; i < rec->length; i++)
		fz->sum += rec->body[i];
	(void)record_type_name(rec->type);
	if (rec->known)
		fz_ext(fz, st, rec);
	deflate = rec->type == REC_PAGE_DATA ?
	    rec->options & WIRE_REC_OPT_COMPRESSED : 0;

	if (rec->length > fz->cap) {
		if ((p = realloc(fz->scratch, rec->length)) == NULL)
			return -XP_ENOMEM;
		fz->scratch = p;
		if ((p = realloc(fz->back, rec->length)) == NULL)
			return -XP_ENOMEM;
		fz->back = p;
		fz->cap = rec->length;
	}
	if (body_reorder_opt(rec->type, deflate, rec->body, rec->length,
	    st->big_endian, !st->big_endian, fz->scratch) != 0)
		return 0;
	/* Converting back gives the same octets (convert round trips). */
	if (body_reorder_opt(rec->type, deflate, fz->scratch, rec->length,
	    !st->big_endian, st->big_endian, fz->back) != 0 ||
	    (rec->length != 0 &&
	    memcmp(fz->back, rec->body, rec->length) != 0))
		abort();

	/* Frame the reordered body in the other byte order, both dialects. */
	other = *st;
	other.big_endian = !st->big_endian;
	fz->out.len = 0;
	if (record_encode(&other, &fz->out, rec->type, fz->scratch,
	    rec->length, WIRE_REC_OPT_CHECKSUM | deflate) < 0)
		return 0;	/* e.g. TOOLSTACK, which is never written */
	if (fz->out.len != record_wire_size(&other, rec->length))
		abort();
	other.dialect = other.dialect == XP_DRAFTB ? XP_XEN : XP_DRAFTB;
	fz->out.len = 0;
	if (record_encode(&other, &fz->out, rec->type, fz->scratch,
	    rec->length, 0) < 0)
		return 0;
	if (fz->out.len != record_wire_size(&other, rec->length))
		abort();
	return 0;
}

/* Direct: exactly ndata pages, each a slice of one allocation. */
static int
fz_direct_begin(void *arg, const struct xp_stream *st,
    const struct xp_record *rec, uint8_t **dst)
{
	struct fz	*fz = arg;
	uint32_t	 count, i, nd = 0;
	size_t		 ps = (size_t)1 << st->page_shift;

	if (fz->direct || rec->type != REC_PAGE_DATA ||
	    (rec->options & WIRE_REC_OPT_COMPRESSED))
		abort();
	count = xp_get32(st->big_endian, rec->body);
	for (i = 0; i < count; i++)
		nd += body_page_type_has_data((unsigned)(xp_get64(
		    st->big_endian, rec->body + 8 + (size_t)i * 8) >>
		    WIRE_PFN_TYPE_SHIFT));
	if (nd == 0 || nd > XP_DIRECT_PAGES ||
	    8 + (uint64_t)count * 8 + (uint64_t)nd * ps != rec->length)
		abort();	/* begin for a body that is not checked */
	if ((fz->dst = malloc((size_t)nd * ps)) == NULL)
		return -XP_ENOMEM;
	fz->dst_len = (size_t)nd * ps;
	for (i = 0; i < nd; i++)
		dst[i] = fz->dst + (size_t)i * ps;
	fz->direct = 1;
	return 0;
}

static int
fz_direct_end(void *arg, const struct xp_stream *st,
    const struct xp_record *rec, int rv)
{
	struct fz	*fz = arg;

	(void)st;
	if (!fz->direct)
		abort();
	if (rv == 0) {
		fz->records++;
		fz->types += rec->type;
		fz->data_hash = fz_hash(fz->data_hash, fz->dst, fz->dst_len);
	}
	free(fz->dst);
	fz->dst = NULL;
	fz->direct = 0;
	return 0;
}

static const struct xp_direct fz_direct = {
	.min_data = 1,
	.begin = fz_direct_begin,
	.end = fz_direct_end,
};

/* What one pass of the parser made of an input. */
struct fz_result {
	uint64_t	records;
	uint64_t	types;		/* sum of the record types */
	uint64_t	data_hash;
	int		code;		/* final error code, 0 if valid */
	uint64_t	err_index;
	uint64_t	err_offset;
};

/*
 * Feed data in chunks of 1..max octets (max 0: all at once), sizes drawn
 * from r, then finish.
 */
static void
fz_pass(const uint8_t *data, size_t size, size_t max, uint32_t r,
    int direct, struct fz_result *res)
{
	struct xp_limits	 lim;
	struct xp_parser	*p;
	const struct xp_error	*e;
	struct fz		 fz;
	size_t			 off = 0, n;
	ssize_t			 used = 0;

	memset(res, 0, sizeof *res);
	memset(&lim, 0, sizeof lim);
	lim.max_record_len = FZ_MAX_RECORD;
	lim.max_pfn = 1u << 20;
	lim.max_vcpus = 64;
	memset(&fz, 0, sizeof fz);
	if ((p = parser_new(&lim, fz_header, fz_record, &fz)) == NULL)
		abort();
	if (direct)
		parser_set_direct(p, &fz_direct);

	while (off < size) {
		if (max == 0)
			n = size - off;
		else {
			r = r * 1103515245u + 12345u;
			n = 1 + (r >> 8) % max;
			if (n > size - off)
				n = size - off;
		}
		used = parser_feed(p, data + off, n);
		if (used < 0)
			break;
		if (used == 0 || (size_t)used > n)
			abort();	/* stalled, or took more than given */
		off += (size_t)used;
	}
	if (used >= 0)
		(void)parser_finish(p);
	(void)parser_want(p);
	(void)parser_stream(p);
	if ((e = parser_error(p)) != NULL && e->code != 0) {
		res->code = e->code;
		res->err_index = e->index;
		res->err_offset = e->offset;
		if (memchr(e->msg, '\0', sizeof e->msg) == NULL)
			abort();	/* message not terminated */
	}
	res->records = fz.records;
	res->types = fz.types;
	res->data_hash = fz.data_hash;
	parser_free(p);
	free(fz.dst);	/* cut inside a direct record: no end */
	buf_free(&fz.out);
	free(fz.scratch);
	free(fz.back);
	free(fz.raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 maxchunk[] = { 0, 1, 7, 64, 4096, 65536 };
	struct fz_result	 chunked, whole, direct;
	uint32_t		 r;
	size_t			 max;

	if (size < 2)
		return 0;
	/* Octet 0 picks the largest chunk, 0 and 1 seed the sizes. */
	max = maxchunk[data[0] % (sizeof maxchunk / sizeof maxchunk[0])];
	r = (uint32_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;

	/* How the input is cut must not change what the parser decides. */
	fz_pass(data, size, max, r, 0, &chunked);
	/* Nor taking page data direct (with the same chunking). */
	fz_pass(data, size, max, r, 1, &direct);
	if (chunked.records != direct.records || chunked.types != direct.types ||
	    chunked.data_hash != direct.data_hash ||
	    chunked.code != direct.code ||
	    chunked.err_index != direct.err_index ||
	    chunked.err_offset != direct.err_offset)
		abort();
	if (max == 0)
		return 0;
	fz_pass(data, size, 0, 0, 0, &whole);
	if (chunked.records != whole.records || chunked.types != whole.types ||
	    chunked.code != whole.code ||
	    chunked.err_index != whole.err_index ||
	    chunked.err_offset != whole.err_offset)
		abort();
	return 0;
}
