/*
 * fuzz-control.c -- libFuzzer target for the control parser
 * (parser_new_control): the back-channel a receiver answers on, and the
 * sender's control records after END.
 *
 * Input: octet 0 chooses the channel (bits 0-1: back-channel with its
 * image header, forward control records without one, and the two other
 * combinations) and the largest chunk (bits 2-4); octet 1 seeds the chunk
 * sizes; the rest is the channel's octets.  A chunked pass must reach the
 * same verdict (records, error code, index, offset and message) as a pass
 * that feeds everything at once.  Every record the parser yields must
 * decode with its control_*_get(), and encoding the decoded fields again
 * with control_*_put() must give the same body octets.
 * Build with ./configure CC=clang --enable-fuzzing; run with
 * tests/fuzz/run.sh.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz {
	struct xp_buf	 out;
	uint64_t	 records;
	uint64_t	 types;
};

/* The body that encoding the decoded record again gives equals its own. */
static void
fz_same(struct fz *fz, const struct xp_record *rec, int rv)
{
	if (rv != 0)
		abort();
	if (fz->out.len < WIRE_RHDR_SIZE_DRAFTB ||
	    xp_get32(0, fz->out.data) != rec->type ||
	    xp_get32(0, fz->out.data + 4) != rec->length ||
	    (rec->length != 0 && memcmp(fz->out.data + WIRE_RHDR_SIZE_DRAFTB,
	    rec->body, rec->length) != 0))
		abort();
}

static int
fz_record(void *arg, const struct xp_stream *st, const struct xp_record *rec)
{
	struct fz		*fz = arg;
	struct xp_reply		 r;
	struct xp_ack		 a;
	struct xp_error_msg	 e;
	struct xp_status	 s;
	struct xp_handover	 h;
	struct xp_digests	 d;

	if (!rec->known || !(rec->options & WIRE_REC_OPT_CHECKSUM) ||
	    st->big_endian || st->dialect != XP_DRAFTB)
		abort();
	fz->records++;
	fz->types += rec->type;
	fz->out.len = 0;
	switch (rec->type) {
	case REC_XMIG_REPLY:
		if (control_reply_get(rec, &r) != 0)
			abort();
		fz_same(fz, rec, control_reply_put(&fz->out, &r));
		break;
	case REC_XMIG_ACK:
		if (control_ack_get(rec, &a) != 0)
			abort();
		fz_same(fz, rec, control_ack_put(&fz->out, &a));
		break;
	case REC_XMIG_ERROR:
		if (control_error_get(rec, &e) != 0)
			abort();
		fz_same(fz, rec, control_error_put(&fz->out, &e));
		break;
	case REC_XMIG_STATUS:
		if (control_status_get(rec, &s) != 0)
			abort();
		fz_same(fz, rec, control_status_put(&fz->out, &s));
		break;
	case REC_XMIG_HANDOVER:
		if (control_handover_get(rec, &h) != 0)
			abort();
		fz_same(fz, rec, control_handover_put(&fz->out, &h));
		break;
	case REC_XMIG_DIGESTS:
		if (control_digests_get(rec, &d) != 0)
			abort();
		fz_same(fz, rec, control_digests_put(&fz->out, &d));
		break;
	default:
		abort();	/* not a control record */
	}
	return 0;
}

struct fz_result {
	uint64_t	records;
	uint64_t	types;
	int		code;
	uint64_t	err_index;
	uint64_t	err_offset;
	char		msg[sizeof ((struct xp_error *)0)->msg];
};

static void
fz_pass(const uint8_t *data, size_t size, enum xp_control_dir dir,
    int header, size_t max, uint32_t r, struct fz_result *res)
{
	struct xp_limits	 lim;
	struct xp_parser	*p;
	const struct xp_error	*e;
	struct fz		 fz;
	size_t			 off = 0, n;
	ssize_t			 used = 0;

	memset(res, 0, sizeof *res);
	memset(&lim, 0, sizeof lim);
	lim.max_record_len = 8192;
	memset(&fz, 0, sizeof fz);
	if ((p = parser_new_control(&lim, dir, header, fz_record, &fz)) ==
	    NULL)
		abort();
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
	if (used >= 0 && parser_finish(p) == 0 && parser_want(p) == 0)
		abort();		/* a control channel never ends */
	(void)parser_stream(p);
	if (parser_done(p))
		abort();
	if ((e = parser_error(p)) != NULL && e->code != 0) {
		res->code = e->code;
		res->err_index = e->index;
		res->err_offset = e->offset;
		if (memchr(e->msg, '\0', sizeof e->msg) == NULL)
			abort();	/* message not terminated */
		memcpy(res->msg, e->msg, sizeof res->msg);
	}
	res->records = fz.records;
	res->types = fz.types;
	parser_free(p);
	buf_free(&fz.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 maxchunk[] = { 0, 1, 2, 7, 16, 64, 4096, 0 };
	struct fz_result	 chunked, whole;
	enum xp_control_dir	 dir;
	uint32_t		 r;
	size_t			 max;
	int			 header;

	if (size < 2)
		return 0;
	/* Octet 0: channel and largest chunk; 0 and 1 seed the sizes. */
	dir = (data[0] & 1) ? XP_CONTROL_FORWARD : XP_CONTROL_BACK;
	header = ((data[0] >> 1) & 1) == (data[0] & 1);
	max = maxchunk[(data[0] >> 2) & 7];
	r = (uint32_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;

	fz_pass(data, size, dir, header, max, r, &chunked);
	if (max == 0)
		return 0;
	fz_pass(data, size, dir, header, 0, 0, &whole);
	if (chunked.records != whole.records || chunked.types != whole.types ||
	    chunked.code != whole.code ||
	    chunked.err_index != whole.err_index ||
	    chunked.err_offset != whole.err_offset ||
	    strcmp(chunked.msg, whole.msg) != 0)
		abort();
	return 0;
}
