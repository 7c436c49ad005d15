/*
 * control.c -- the back-channel and the sender's control records after
 * END (SPEC.md section 13): the back-channel's image header, the rules a
 * control record's header must pass (type for the direction, checksum,
 * length, order), the bodies of XMIG_REPLY, _ACK, _ERROR, _STATUS,
 * _HANDOVER and _DIGESTS, and their encoders and decoders.
 *
 * Control records are draft-B records, little-endian, always with a
 * checksum, whatever the forward stream is.  The incremental parser
 * (parser_new_control) calls the checks here; the registry in record.c
 * points to the body checks so that a forward stream can name and refuse
 * these types.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto-int.h"

/* The shortest prefix that names xl's "migration receiver ready" banner. */
#define CONTROL_XL_BANNER	"xl migration receiver"

static const char *
control_dir_name(enum xp_control_dir dir)
{
	return dir == XP_CONTROL_BACK ? "back-channel" :
	    "control channel after END";
}

/* ---- the back-channel's image header ------------------------------------ */

void
control_header_put(uint8_t out[WIRE_IHDR_SIZE])
{
	struct xp_stream	st;

	stream_init_control(&st);
	header_image_put(&st, out);
}

/* Octets that text (a banner, an error line) is made of. */
static int
control_text_octet(uint8_t c)
{
	return (c >= 0x20 && c < 0x7F) || c == '\t' || c == '\r' ||
	    c == '\n';
}

/* The peer answered with text: say what it said. */
static int
control_header_text(const char *what, const uint8_t *in, size_t n, int cut,
    char *why, size_t len)
{
	char	text[XP_ESCAPE_SIZE(WIRE_IHDR_SIZE)];

	xp_escape(text, sizeof text, in, n);
	if (n >= sizeof CONTROL_XL_BANNER - 1 &&
	    memcmp(in, CONTROL_XL_BANNER, sizeof CONTROL_XL_BANNER - 1) == 0)
		snprintf(why, len, "%s image header: the peer sent xl's "
		    "migration banner (\"%s%s\"): it is xl's own migration "
		    "receiver, which has no back-channel", what, text,
		    cut ? "..." : "");
	else
		snprintf(why, len, "%s image header: the peer sent text "
		    "(\"%s%s\") where the image header was expected: it is not "
		    "an xmig receiver", what, text, cut ? "..." : "");
	return -XP_EHEADER;
}

/*
 * Check the first n octets of a control channel's image header.  final:
 * no more octets will come.  Returns 0 while nothing is wrong yet (or the
 * whole header is right), else a negative XP_E* code with why filled in.
 * The verdict depends only on the octets, never on how they were cut:
 * text is judged at its first newline or other non-text octet, or at 24
 * octets, or at the end of the input.
 */
int
control_header_check(enum xp_control_dir dir, const uint8_t *in, size_t n,
    int final, char *why, size_t len)
{
	const char	*what = control_dir_name(dir);
	uint32_t	 id, version;
	uint16_t	 options;
	size_t		 i;

	if (n == 0)
		return 0;
	if (in[0] != 0xFF && control_text_octet(in[0])) {
		for (i = 0; i < n; i++) {
			if (in[i] == '\n' || !control_text_octet(in[i]))
				break;
		}
		if (i < n)
			return control_header_text(what, in, in[i] == '\n' ?
			    i + 1 : i, 0, why, len);
		if (n < WIRE_IHDR_SIZE && !final)
			return 0;
		return control_header_text(what, in, n, n == WIRE_IHDR_SIZE,
		    why, len);
	}
	for (i = 0; i < n && i < 8; i++) {
		if (in[i] != 0xFF) {
			snprintf(why, len, "%s image header: octet %zu is 0x%02x "
			    "where the marker (8 octets 0xFF) was expected: the "
			    "peer is not an xmig receiver answering on a "
			    "back-channel (a legacy image or another protocol?)",
			    what, i, in[i]);
			return -XP_EHEADER;
		}
	}
	if (n < WIRE_IHDR_SIZE)
		return 0;

	id = xp_get32(1, in + 8);
	version = xp_get32(1, in + 12);
	options = xp_get16(1, in + 16);
	if (id != WIRE_ID) {
		snprintf(why, len, "%s image header: id 0x%08x is not 0x%08x "
		    "(\"XENF\")", what, id, WIRE_ID);
		return -XP_EHEADER;
	}
	if (version != WIRE_VERSION_DRAFTB) {
		snprintf(why, len, "%s image header: version %u is not %u (a "
		    "back-channel is framed as draft-B)", what, version,
		    WIRE_VERSION_DRAFTB);
		return -XP_EVERSION;
	}
	if (!(options & WIRE_IHDR_OPT_BACKCHANNEL)) {
		snprintf(why, len, "%s image header: options 0x%04x lack bit 1 "
		    "(back-channel): this is a forward stream, not a "
		    "back-channel", what, options);
		return -XP_EHEADER;
	}
	if (options & WIRE_IHDR_OPT_BIG_ENDIAN) {
		snprintf(why, len, "%s image header: options 0x%04x have bit 0 "
		    "set: a back-channel is always little-endian", what,
		    options);
		return -XP_EHEADER;
	}
	return 0;
}

/* ---- header and order rules ---------------------------------------------- */

static const char *
control_closed_by(uint32_t type)
{
	switch (type) {
	case REC_XMIG_ERROR:
		return "XMIG_ERROR, the last record of a back-channel";
	case REC_XMIG_REPLY:
		return "an XMIG_REPLY that refused the stream (result not 0), "
		    "the last record of its back-channel";
	case REC_XMIG_STATUS:
		return "XMIG_STATUS FAILED, the last record of a back-channel";
	case REC_XMIG_DIGESTS:
		return "XMIG_DIGESTS, the last record of a back-channel";
	default:
		return "XMIG_HANDOVER, the only command after END";
	}
}

/*
 * The checks a control record's header allows: its type is one of the
 * direction's (ck->dir), it carries a checksum and no other option, its
 * length fits, and it comes in an order SPEC 13.1 allows.
 */
int
control_check_hdr(struct xp_check *ck, uint32_t type, uint32_t len,
    uint16_t options)
{
	const struct record_type	*rt;
	unsigned			 need;

	need = ck->dir == XP_CONTROL_BACK ? REC_F_BACK : REC_F_CONTROL;
	rt = record_type_find(type);
	if (rt == NULL)
		return record_why(ck, -XP_ETYPE, "record type 0x%08x is not "
		    "valid on the %s", type, control_dir_name(ck->dir));
	if ((rt->flags & need) == 0)
		return record_why(ck, -XP_EORDER, "not valid on the %s (%s)",
		    control_dir_name(ck->dir), ck->dir == XP_CONTROL_BACK ?
		    "it carries XMIG_REPLY, XMIG_ACK, XMIG_ERROR, XMIG_STATUS, "
		    "XMIG_DIGESTS and XMIG_CHECKPOINT_ACK" : "it carries XMIG_HANDOVER");
	if (options & ~WIRE_REC_OPT_KNOWN)
		return record_why(ck, -XP_EOPTIONS, "unknown option bits "
		    "0x%04x", options & ~WIRE_REC_OPT_KNOWN);
	if (options & WIRE_REC_OPT_COMPRESSED)
		return record_why(ck, -XP_EOPTIONS, "option bit %s is only "
		    "valid on PAGE_DATA", (options & WIRE_REC_OPT_DEFLATE) ?
		    "1 (DEFLATE)" : "2 (ZSTD)");
	if (!(options & WIRE_REC_OPT_CHECKSUM))
		return record_why(ck, -XP_ECHECKSUM, "option bit 0 (checksum "
		    "valid) is clear: control records always carry a "
		    "checksum");
	if (len > ck->max_record_len)
		return record_why(ck, -XP_ETOOBIG, "length %u is above the "
		    "record maximum %u", len, ck->max_record_len);
	if (len < rt->min_len)
		return record_why(ck, -XP_EBODY, "length %u is below the "
		    "minimum %u", len, rt->min_len);
	if (rt->max_len != REC_LEN_ANY && len > rt->max_len)
		return record_why(ck, -XP_EBODY, "length %u is above the "
		    "maximum %u", len, rt->max_len);

	if (ck->ctl_last != 0)
		return record_why(ck, -XP_EORDER, "no record may follow %s",
		    control_closed_by(ck->ctl_last));
	switch (type) {
	case REC_XMIG_REPLY:
		if (ck->index != 0)
			return record_why(ck, -XP_EORDER, "only valid as the "
			    "first record of the back-channel");
		break;
	case REC_XMIG_ACK:
	case REC_XMIG_STATUS:
	case REC_XMIG_CHECKPOINT_ACK:
		if (ck->ctl_reply != 1)
			return record_why(ck, -XP_EORDER, "only valid after an "
			    "XMIG_REPLY that accepted the stream");
		break;
	case REC_XMIG_STREAMS:
		if (ck->ctl_reply != 1 || ck->index != 1)
			return record_why(ck, -XP_EORDER, "only valid right "
			    "after an XMIG_REPLY that accepted the stream");
		break;
	case REC_XMIG_DIGESTS:
		if (!ck->ctl_running)
			return record_why(ck, -XP_EORDER, "only valid after "
			    "XMIG_STATUS RUNNING");
		break;
	}
	return 0;
}

int
control_check_body(struct xp_check *ck, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	const struct record_type	*rt;

	if ((rt = record_type_find(type)) == NULL || rt->check == NULL)
		return 0;
	return rt->check(ck, body, len);
}

/* A control record has passed every check: note what the order needs. */
void
control_commit(struct xp_check *ck, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	uint32_t	v;

	switch (type) {
	case REC_XMIG_REPLY:
		v = xp_get32(0, body + 8);
		ck->ctl_reply = v == XMIG_REPLY_OK ? 1 : 2;
		if (v != XMIG_REPLY_OK)
			ck->ctl_last = type;
		break;
	case REC_XMIG_STATUS:
		v = xp_get32(0, body);
		if (v == XMIG_STATUS_RUNNING)
			ck->ctl_running = 1;
		else if (v == XMIG_STATUS_FAILED)
			ck->ctl_last = type;
		break;
	case REC_XMIG_ERROR:
	case REC_XMIG_DIGESTS:
	case REC_XMIG_HANDOVER:
		ck->ctl_last = type;
		break;
	}
	(void)len;
}

/* ---- message text ---------------------------------------------------------- */

/* Octets of the UTF-8 character at p (n octets left), 0 if not one. */
static size_t
control_utf8(const uint8_t *p, size_t n)
{
	uint8_t	c = p[0];
	size_t	k, i;

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;		/* continuation, or overlong */
	k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
	if (k == 0 || n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	if ((c == 0xE0 && p[1] < 0xA0) ||	/* overlong */
	    (c == 0xED && p[1] >= 0xA0) ||	/* surrogate */
	    (c == 0xF0 && p[1] < 0x90) ||	/* overlong */
	    (c == 0xF4 && p[1] >= 0x90))	/* above U+10FFFF */
		return 0;
	return k;
}

/* A message[]: at most WIRE_MESSAGE_MAX octets of UTF-8 without NUL. */
static int
control_check_text(struct xp_check *ck, const uint8_t *p, uint32_t n)
{
	uint32_t	i = 0;
	size_t		k;

	if (n > WIRE_MESSAGE_MAX)
		return record_why(ck, -XP_EBODY, "message of %u octets is "
		    "above the maximum %u", n, WIRE_MESSAGE_MAX);
	while (i < n) {
		if (p[i] == 0)
			return record_why(ck, -XP_EBODY, "message octet %u is "
			    "NUL", i);
		if ((k = control_utf8(p + i, n - i)) == 0)
			return record_why(ck, -XP_EBODY, "message is not UTF-8 "
			    "at octet %u (0x%02x)", i, p[i]);
		i += (uint32_t)k;
	}
	return 0;
}

/*
 * Copy text into out (room for WIRE_MESSAGE_MAX octets), cut at its
 * first NUL and at WIRE_MESSAGE_MAX on a character boundary, octets that
 * are not UTF-8 replaced by '?'.  Returns the octets written.
 */
static uint32_t
control_text_put(uint8_t *out, const char *text, size_t len)
{
	const uint8_t	*p = (const uint8_t *)text;
	size_t		 i = 0, k;
	uint32_t	 o = 0;

	if (p == NULL)
		return 0;
	while (i < len && p[i] != 0) {
		if ((k = control_utf8(p + i, len - i)) == 0) {
			if (o + 1 > WIRE_MESSAGE_MAX)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + k > WIRE_MESSAGE_MAX)
			break;
		memcpy(out + o, p + i, k);
		o += (uint32_t)k;
		i += k;
	}
	return o;
}

/* ---- bodies (little-endian) ------------------------------------------------ */

/*
 * XMIG_REPLY: u32 negotiate_version, u32 features, u32 result,
 * u32 can_read, u32 max_record_len, u32 reserved, u64 max_memory,
 * u64 restorable, u64 session_id, u8 message[].
 */
int
control_check_reply(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	v;

	if ((v = xp_get32(0, b)) != XMIG_NEGOTIATE_VERSION)
		return record_why(ck, -XP_EBODY, "negotiate_version %u is not "
		    "%u", v, XMIG_NEGOTIATE_VERSION);
	if ((v = xp_get32(0, b + 20)) != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", v);
	if ((v = xp_get32(0, b + 4)) & ~XMIG_F_KNOWN)
		return record_why(ck, -XP_EBODY, "unknown feature bits 0x%08x",
		    v & ~XMIG_F_KNOWN);
	if ((v = xp_get32(0, b + 8)) > XMIG_REPLY_MAX)
		return record_why(ck, -XP_EBODY, "result %u is not one of 0-%u",
		    v, XMIG_REPLY_MAX);
	if ((v = xp_get32(0, b + 12)) & ~XMIG_CAN_KNOWN)
		return record_why(ck, -XP_EBODY, "unknown can_read bits 0x%08x",
		    v & ~XMIG_CAN_KNOWN);
	return control_check_text(ck, b + WIRE_REPLY_MIN,
	    len - WIRE_REPLY_MIN);
}

/* XMIG_CHECKPOINT_ACK: u64 epoch (> 0), u64 octets (length checked). */
int
control_check_checkpoint_ack(struct xp_check *ck, const uint8_t *b,
    uint32_t len)
{
	(void)len;
	if (xp_get64(0, b) == 0)
		return record_why(ck, -XP_EBODY, "epoch 0: epochs count from 1");
	return 0;
}

/* XMIG_ACK: u64 records, u64 octets, u64 pages (length checked). */
int
control_check_ack(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	return 0;
}

/*
 * XMIG_ERROR: u64 record_index, u64 offset, u32 record_type, u32 code,
 * u8 message[].
 */
int
control_check_error(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	return control_check_text(ck, b + WIRE_ERROR_MIN,
	    len - WIRE_ERROR_MIN);
}

/* XMIG_STATUS: u32 state, u32 reserved, u8 message[]. */
int
control_check_status(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	state = xp_get32(0, b), res = xp_get32(0, b + 4);

	if (state < XMIG_STATUS_RESTORED || state > XMIG_STATUS_FAILED)
		return record_why(ck, -XP_EBODY, "state %u is not RESTORED "
		    "(1), RUNNING (2) or FAILED (3)", state);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	return control_check_text(ck, b + WIRE_STATUS_MIN,
	    len - WIRE_STATUS_MIN);
}

/* XMIG_HANDOVER: u32 command, u32 reserved. */
int
control_check_handover(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	cmd = xp_get32(0, b), res = xp_get32(0, b + 4);

	if (cmd != XMIG_HANDOVER_GO && cmd != XMIG_HANDOVER_ABORT)
		return record_why(ck, -XP_EBODY, "command %u is not GO (1) or "
		    "ABORT (2)", cmd);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	return 0;
}

/* XMIG_DIGESTS: u8 memory_digest[32], u8 vcpu_sha256[32], u64 nr_pages. */
int
control_check_digests(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	return 0;
}

/*
 * XMIG_STREAMS: u16 streams (2 .. XMIG_STREAMS_MAX), u16 port (not 0),
 * u32 reserved (0), u8 token[16].
 */
int
control_check_streams(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint16_t	n = xp_get16(0, b), port = xp_get16(0, b + 2);
	uint32_t	res = xp_get32(0, b + 4);

	(void)len;
	if (n < 2 || n > XMIG_STREAMS_MAX)
		return record_why(ck, -XP_EBODY, "streams %u is not from 2 to "
		    "%u", n, XMIG_STREAMS_MAX);
	if (port == 0)
		return record_why(ck, -XP_EBODY, "port 0");
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	return 0;
}

/* ---- encoding -------------------------------------------------------------- */

int
control_encode(struct xp_buf *out, uint32_t type, const void *body,
    uint32_t len)
{
	const struct record_type	*rt;
	struct xp_stream		 st;

	rt = record_type_find(type);
	if (rt == NULL || !(rt->flags & (REC_F_BACK | REC_F_CONTROL)))
		return -XP_EINVAL;
	stream_init_control(&st);
	return record_encode(&st, out, type, body, len,
	    WIRE_REC_OPT_CHECKSUM);
}

int
control_reply_put(struct xp_buf *out, const struct xp_reply *r)
{
	uint8_t		b[WIRE_REPLY_MIN + WIRE_MESSAGE_MAX];
	uint32_t	n;

	memset(b, 0, WIRE_REPLY_MIN);
	xp_put32(0, b, XMIG_NEGOTIATE_VERSION);
	xp_put32(0, b + 4, r->features);
	xp_put32(0, b + 8, r->result);
	xp_put32(0, b + 12, r->can_read);
	xp_put32(0, b + 16, r->max_record_len);
	xp_put64(0, b + 24, r->max_memory);
	xp_put64(0, b + 32, r->restorable);
	xp_put64(0, b + 40, r->session_id);
	n = control_text_put(b + WIRE_REPLY_MIN, r->message, r->message_len);
	return control_encode(out, REC_XMIG_REPLY, b, WIRE_REPLY_MIN + n);
}

static int control_get(const struct xp_record *rec, uint32_t type);

int
control_streams_put(struct xp_buf *out, const struct xp_streams *x)
{
	uint8_t	b[WIRE_STREAMS_SIZE];

	xp_put16(0, b, x->streams);
	xp_put16(0, b + 2, x->port);
	xp_put32(0, b + 4, 0);
	memcpy(b + 8, x->token, WIRE_STREAM_TOKEN_SIZE);
	return control_encode(out, REC_XMIG_STREAMS, b, sizeof b);
}

int
control_streams_get(const struct xp_record *rec, struct xp_streams *x)
{
	int	rv;

	if ((rv = control_get(rec, REC_XMIG_STREAMS)) != 0)
		return rv;
	x->streams = xp_get16(0, rec->body);
	x->port = xp_get16(0, rec->body + 2);
	memcpy(x->token, rec->body + 8, WIRE_STREAM_TOKEN_SIZE);
	return 0;
}

int
control_ack_put(struct xp_buf *out, const struct xp_ack *a)
{
	uint8_t	b[WIRE_ACK_SIZE];

	xp_put64(0, b, a->records);
	xp_put64(0, b + 8, a->octets);
	xp_put64(0, b + 16, a->pages);
	return control_encode(out, REC_XMIG_ACK, b, sizeof b);
}

int
control_error_put(struct xp_buf *out, const struct xp_error_msg *e)
{
	uint8_t		b[WIRE_ERROR_MIN + WIRE_MESSAGE_MAX];
	uint32_t	n;

	xp_put64(0, b, e->record_index);
	xp_put64(0, b + 8, e->offset);
	xp_put32(0, b + 16, e->record_type);
	xp_put32(0, b + 20, e->code);
	n = control_text_put(b + WIRE_ERROR_MIN, e->message, e->message_len);
	return control_encode(out, REC_XMIG_ERROR, b, WIRE_ERROR_MIN + n);
}

int
control_status_put(struct xp_buf *out, const struct xp_status *s)
{
	uint8_t		b[WIRE_STATUS_MIN + WIRE_MESSAGE_MAX];
	uint32_t	n;

	xp_put32(0, b, s->state);
	xp_put32(0, b + 4, 0);
	n = control_text_put(b + WIRE_STATUS_MIN, s->message, s->message_len);
	return control_encode(out, REC_XMIG_STATUS, b, WIRE_STATUS_MIN + n);
}

int
control_handover_put(struct xp_buf *out, const struct xp_handover *h)
{
	uint8_t	b[WIRE_HANDOVER_SIZE];

	xp_put32(0, b, h->command);
	xp_put32(0, b + 4, 0);
	return control_encode(out, REC_XMIG_HANDOVER, b, sizeof b);
}

int
control_digests_put(struct xp_buf *out, const struct xp_digests *d)
{
	uint8_t	b[WIRE_DIGESTS_SIZE];

	memcpy(b, d->memory_digest, 32);
	memcpy(b + 32, d->vcpu_sha256, 32);
	xp_put64(0, b + 64, d->nr_pages);
	return control_encode(out, REC_XMIG_DIGESTS, b, sizeof b);
}

/* ---- decoding -------------------------------------------------------------- */

/* The type, length and body rules of a record handed to a _get. */
static int
control_get(const struct xp_record *rec, uint32_t type)
{
	const struct record_type	*rt;
	struct xp_check			 ck;

	if (rec->type != type || (rt = record_type_find(type)) == NULL)
		return -XP_EINVAL;
	if (rec->length < rt->min_len || rec->length > rt->max_len ||
	    (rec->length != 0 && rec->body == NULL))
		return -XP_EBODY;
	memset(&ck, 0, sizeof ck);
	if (rt->check != NULL && rt->check(&ck, rec->body, rec->length) != 0)
		return -XP_EBODY;
	return 0;
}

int
control_reply_get(const struct xp_record *rec, struct xp_reply *r)
{
	const uint8_t	*b = rec->body;
	int		 rv;

	if ((rv = control_get(rec, REC_XMIG_REPLY)) != 0)
		return rv;
	memset(r, 0, sizeof *r);
	r->version = xp_get32(0, b);
	r->features = xp_get32(0, b + 4);
	r->result = xp_get32(0, b + 8);
	r->can_read = xp_get32(0, b + 12);
	r->max_record_len = xp_get32(0, b + 16);
	r->max_memory = xp_get64(0, b + 24);
	r->restorable = xp_get64(0, b + 32);
	r->session_id = xp_get64(0, b + 40);
	r->message = (const char *)b + WIRE_REPLY_MIN;
	r->message_len = rec->length - WIRE_REPLY_MIN;
	return 0;
}

int
control_checkpoint_ack_put(struct xp_buf *out,
    const struct xp_checkpoint_ack *a)
{
	uint8_t	b[WIRE_CHECKPOINT_ACK_SIZE];

	xp_put64(0, b, a->epoch);
	xp_put64(0, b + 8, a->octets);
	return control_encode(out, REC_XMIG_CHECKPOINT_ACK, b, sizeof b);
}

int
control_checkpoint_ack_get(const struct xp_record *rec,
    struct xp_checkpoint_ack *a)
{
	const uint8_t	*b = rec->body;
	int		 rv;

	if ((rv = control_get(rec, REC_XMIG_CHECKPOINT_ACK)) != 0)
		return rv;
	a->epoch = xp_get64(0, b);
	a->octets = xp_get64(0, b + 8);
	return 0;
}

int
control_ack_get(const struct xp_record *rec, struct xp_ack *a)
{
	const uint8_t	*b = rec->body;
	int		 rv;

	if ((rv = control_get(rec, REC_XMIG_ACK)) != 0)
		return rv;
	a->records = xp_get64(0, b);
	a->octets = xp_get64(0, b + 8);
	a->pages = xp_get64(0, b + 16);
	return 0;
}

int
control_error_get(const struct xp_record *rec, struct xp_error_msg *e)
{
	const uint8_t	*b = rec->body;
	int		 rv;

	if ((rv = control_get(rec, REC_XMIG_ERROR)) != 0)
		return rv;
	e->record_index = xp_get64(0, b);
	e->offset = xp_get64(0, b + 8);
	e->record_type = xp_get32(0, b + 16);
	e->code = xp_get32(0, b + 20);
	e->message = (const char *)b + WIRE_ERROR_MIN;
	e->message_len = rec->length - WIRE_ERROR_MIN;
	return 0;
}

int
control_status_get(const struct xp_record *rec, struct xp_status *s)
{
	const uint8_t	*b = rec->body;
	int		 rv;

	if ((rv = control_get(rec, REC_XMIG_STATUS)) != 0)
		return rv;
	s->state = xp_get32(0, b);
	s->message = (const char *)b + WIRE_STATUS_MIN;
	s->message_len = rec->length - WIRE_STATUS_MIN;
	return 0;
}

int
control_handover_get(const struct xp_record *rec, struct xp_handover *h)
{
	int	rv;

	if ((rv = control_get(rec, REC_XMIG_HANDOVER)) != 0)
		return rv;
	h->command = xp_get32(0, rec->body);
	return 0;
}

int
control_digests_get(const struct xp_record *rec, struct xp_digests *d)
{
	const uint8_t	*b = rec->body;
	int		 rv;

	if ((rv = control_get(rec, REC_XMIG_DIGESTS)) != 0)
		return rv;
	memcpy(d->memory_digest, b, 32);
	memcpy(d->vcpu_sha256, b + 32, 32);
	d->nr_pages = xp_get64(0, b + 64);
	return 0;
}
