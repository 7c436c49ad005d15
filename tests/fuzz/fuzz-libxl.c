/*
 * fuzz-libxl.c -- libFuzzer target for the xl/libxl framing reader
 * (proto/libxl.c), driven as xmig-image drives it: the wrapper reader,
 * and the stream parser for the libxc stream after LIBXC_CONTEXT.
 *
 * Input: one octet that chooses the chunking, then an xl save file or a
 * libxl stream (the kind is detected with xp_wrap_detect(); anything else
 * is skipped).  A chunked pass must reach the same verdict (error code,
 * message, libxc offset and length) as a pass that feeds everything at
 * once (the message too, for a refusal of the framing).  An accepted input is written again with the encoders
 * (xp_xl_header_encode, xp_libxl_header_encode, xp_libxl_record_encode)
 * around the libxc octets, which must give the input back octet for octet
 * (for xl files whose optional data is exactly {config_len, config}).
 * Build with ./configure CC=clang --enable-fuzzing; run with
 * tests/fuzz/run.sh.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "libxl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz {
	struct xp_buf	 out;		/* the input, encoded again */
	int		 exact;		/* the re-encoding must match */
	uint64_t	 items;
};

static int
fz_item(void *arg, const struct xp_wrap_item *it)
{
	struct fz	*fz = arg;
	uint8_t		 h[XP_LIBXL_HDR_SIZE];

	fz->items++;
	switch (it->kind) {
	case XP_WI_XL_HEADER:
		if (it->optional_data_len != 4 + it->config_len ||
		    !!(it->mandatory_flags & XP_XL_FLAG_JSON) !=
		    (it->config_len != 0)) {
			fz->exact = 0;
			break;
		}
		if (xp_xl_header_encode(&fz->out, it->config,
		    it->config_len) != 0)
			abort();
		break;
	case XP_WI_LIBXL_HEADER:
		xp_libxl_header_encode(h, it->options);
		if (buf_append(&fz->out, h, sizeof h) != 0)
			abort();
		break;
	case XP_WI_RECORD:
		if (it->size != XP_LIBXL_RHDR_SIZE + it->length +
		    (8 - it->length % 8) % 8)
			abort();
		if (xp_libxl_record_encode(&fz->out, it->type, it->body,
		    it->length) != 0)
			abort();
		break;
	}
	return 0;
}

struct verdict {
	int		code;
	char		msg[320];
	uint64_t	libxc_offset;
	uint64_t	libxc_len;
};

static void
fz_run(enum xp_wrap_kind kind, const uint8_t *buf, size_t len, size_t chunk,
    struct fz *fz, struct verdict *v)
{
	struct xp_limits	 lim;
	struct xp_wrap		*w;
	struct xp_parser	*p;
	size_t			 off = 0, n, k;
	ssize_t			 used;
	int			 rc;

	memset(v, 0, sizeof *v);
	memset(&lim, 0, sizeof lim);
	lim.max_record_len = 1u << 20;
	if ((w = xp_wrap_new(kind, fz_item, fz)) == NULL ||
	    (p = parser_new(&lim, NULL, NULL, NULL)) == NULL)
		abort();
	while (off < len) {
		n = chunk == 0 || chunk > len - off ? len - off : chunk;
		for (k = 0; k < n; k += (size_t)used) {
			if (!xp_wrap_in_libxc(w)) {
				used = xp_wrap_feed(w, buf + off + k, n - k);
				if (used < 0) {
					v->code = (int)-used;
					snprintf(v->msg, sizeof v->msg, "%s",
					    xp_wrap_error(w)->msg);
					goto out;
				}
				if (used == 0)
					abort();	/* no progress */
				continue;
			}
			used = parser_feed(p, buf + off + k, n - k);
			if (used < 0) {
				v->code = 1000 + (int)-used;
				snprintf(v->msg, sizeof v->msg, "%s",
				    parser_error(p)->msg);
				goto out;
			}
			if (buf_append(&fz->out, buf + off + k, (size_t)used))
				abort();
			if (parser_done(p)) {
				v->libxc_len = parser_offset(p);
				if (xp_wrap_libxc_end(w, parser_offset(p)) != 0)
					abort();
			} else if (used == 0)
				abort();
		}
		off += n;
	}
	if (xp_wrap_in_libxc(w)) {
		rc = parser_finish(p);
		if (rc == 0)
			abort();	/* no END, yet finished */
		v->code = 1000 + (rc < 0 ? -rc : rc);
		snprintf(v->msg, sizeof v->msg, "%s", parser_error(p)->msg);
	} else if ((rc = xp_wrap_finish(w)) != 0) {
		v->code = -rc;
		snprintf(v->msg, sizeof v->msg, "%s", xp_wrap_error(w)->msg);
		if (v->msg[0] == '\0')
			abort();	/* every refusal says why */
	} else if (!xp_wrap_done(w) || !parser_done(p))
		abort();
out:
	v->libxc_offset = xp_wrap_libxc_offset(w);
	if (v->code != 0 && v->code < 1000 && v->msg[0] == '\0')
		abort();
	xp_wrap_free(w);
	parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 chunks[] = { 1, 2, 3, 5, 7, 8, 13, 64, 4096 };
	struct fz		 a, b;
	struct verdict		 va, vb;
	int			 kind;

	if (size < 2)
		return 0;
	kind = xp_wrap_detect(data + 1, size - 1);
	if (kind != XP_WRAP_XL && kind != XP_WRAP_LIBXL)
		return 0;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.exact = b.exact = 1;
	fz_run((enum xp_wrap_kind)kind, data + 1, size - 1, 0, &a, &va);
	fz_run((enum xp_wrap_kind)kind, data + 1, size - 1,
	    chunks[data[0] % (sizeof chunks / sizeof chunks[0])], &b, &vb);
	if (va.code != vb.code ||
	    (va.code < 1000 && strcmp(va.msg, vb.msg) != 0) ||
	    va.libxc_offset != vb.libxc_offset ||
	    va.libxc_len != vb.libxc_len || a.items != b.items)
		abort();
	if (va.code == 0 && a.exact &&
	    (a.out.len != size - 1 || memcmp(a.out.data, data + 1,
	    size - 1) != 0))
		abort();	/* accepted, but not what the encoders write */
	buf_free(&a.out);
	buf_free(&b.out);
	return 0;
}
