/*
 * proto.h -- the xmig wire-format codec: bytes in, validated records out,
 * and back.  No I/O, no libevent, no Xen headers.  Functions return 0 or a
 * positive count on success and a negative XP_E* code on failure; they never
 * print and never exit.
 *
 * Byte order: record bodies handed out by the parser are in the *stream*
 * byte order (st->big_endian).  Use the get/put helpers below, never a cast.
 */
#ifndef XMIG_PROTO_H
#define XMIG_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

/* Error codes (negative when returned). */
enum {
	XP_OK = 0,
	XP_ENOMEM = 1,		/* allocation failed */
	XP_EINVAL,		/* bad argument from the caller */
	XP_ELEGACY,		/* legacy (pre-v2 Xen) image */
	XP_EHEADER,		/* bad image or domain header */
	XP_EVERSION,		/* unsupported version */
	XP_ETOOBIG,		/* a length above its maximum */
	XP_ETYPE,		/* unknown mandatory record type */
	XP_EOPTIONS,		/* unknown record option bits */
	XP_ECHECKSUM,		/* CRC-32 mismatch or checksum without bit 0 */
	XP_EBODY,		/* malformed record body */
	XP_EORDER,		/* record out of order / not allowed here */
	XP_ELIMIT,		/* pfn / vcpu beyond the receiver's limits */
	XP_ETRUNCATED,		/* stream ended early */
	XP_ETRAILING,		/* data after END */
	XP_ECALLBACK,		/* a callback asked to stop with an error */
	XP_E_MAX
};

/* Human text for an XP_E* code (positive or negative). */
const char *xp_strerror(int code);

/*
 * Text that came from a peer (back-channel messages, certificate names),
 * made safe to print: every octet outside printable ASCII becomes \xNN
 * (tab, newline and carriage return \t, \n, \r), a backslash \\ and a
 * double quote \", as in a C string literal, so that no octet of it reaches
 * a terminal as a control character and the text can stand between
 * quotes.  NUL octets are text like the others (in[inlen] is not read).
 * out gets at most outlen octets with the terminating NUL; a text that does
 * not fit is cut between two escapes and ends in "...".  Returns out.
 * Every message that quotes a peer goes through this one function.
 */
#define XP_ESCAPE_SIZE(n)	(4 * (size_t)(n) + 1)	/* never cut */
const char *xp_escape(char *out, size_t outlen, const void *in, size_t inlen);

enum xp_dialect {
	XP_DRAFTB = 1,		/* image version 1, 16-octet record headers, footer */
	XP_XEN = 2,		/* image versions 2 and 3, libxc migration v2/v3 */
};

/* What the image and domain headers said; fixed for a whole stream. */
struct xp_stream {
	enum xp_dialect	dialect;
	uint32_t	version;	/* 1 (draft-B), 2 or 3 (Xen) */
	int		big_endian;	/* stream byte order after the ihdr */
	uint16_t	ihdr_options;	/* raw image header options */
	uint16_t	arch;		/* WIRE_ARCH_* (Xen dialect: always x86) */
	uint16_t	dom_type;	/* WIRE_DOM_* */
	uint16_t	page_shift;
	uint32_t	xen_major;	/* Xen dialect only; 0 in draft-B */
	uint32_t	xen_minor;
};

/* Initialise a stream description for writing. */
void stream_init(struct xp_stream *st, enum xp_dialect d, int big_endian,
    uint16_t arch, uint16_t dom_type, uint16_t page_shift);
/*
 * Check a stream description against its dialect's rules (the ones the
 * parser applies to the headers): 0, or -XP_EVERSION / -XP_EHEADER with err
 * (may be NULL) filled in.  Writers call it before header_image_put(), e.g.
 * to refuse an ARM domain in the Xen dialect.  (stream.c)
 */
struct xp_error;
int stream_check(const struct xp_stream *st, struct xp_error *err);

/* ---- byte order helpers (wire.c) ------------------------------------ */

static inline uint16_t
xp_get16(int be, const uint8_t *p)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static inline uint32_t
xp_get32(int be, const uint8_t *p)
{
	return be ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]) :
	    ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0]);
}

static inline uint64_t
xp_get64(int be, const uint8_t *p)
{
	return be ? ((uint64_t)xp_get32(1, p) << 32 | xp_get32(1, p + 4)) :
	    ((uint64_t)xp_get32(0, p + 4) << 32 | xp_get32(0, p));
}

static inline void
xp_put16(int be, uint8_t *p, uint16_t v)
{
	if (be) { p[0] = v >> 8; p[1] = v; } else { p[0] = v; p[1] = v >> 8; }
}

static inline void
xp_put32(int be, uint8_t *p, uint32_t v)
{
	if (be) {
		p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
	} else {
		p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
	}
}

static inline void
xp_put64(int be, uint8_t *p, uint64_t v)
{
	if (be) {
		xp_put32(1, p, v >> 32); xp_put32(1, p + 4, (uint32_t)v);
	} else {
		xp_put32(0, p, (uint32_t)v); xp_put32(0, p + 4, v >> 32);
	}
}

/* ---- growable byte buffer (buf.c) ------------------------------------ */

struct xp_buf {
	uint8_t	*data;
	size_t	 len;
	size_t	 cap;
};

int	 buf_reserve(struct xp_buf *b, size_t extra);	/* 0 or -XP_ENOMEM */
int	 buf_append(struct xp_buf *b, const void *p, size_t n);
uint8_t	*buf_extend(struct xp_buf *b, size_t n);	/* n zeroed octets or NULL */
void	 buf_free(struct xp_buf *b);

/* ---- record type registry (record.c) --------------------------------- */

/* "PAGE_DATA"; "OPTIONAL_0x80001234" / "UNKNOWN_0x13" for others. */
const char *record_type_name(uint32_t type);
/* Non-zero if the type is in the catalogue (mandatory or project extension). */
int record_type_known(uint32_t type);

/* ---- headers (header.c) ---------------------------------------------- */

/* Write the 24-octet image header for st (version from st). */
void	header_image_put(const struct xp_stream *st, uint8_t out[WIRE_IHDR_SIZE]);
/* Write the domain header; returns its size (8 or 16). */
size_t	header_domain_put(const struct xp_stream *st, uint8_t *out);
size_t	header_domain_size(const struct xp_stream *st);

/* ---- record framing (record.c) --------------------------------------- */

size_t	record_hdr_size(const struct xp_stream *st);	/* 16 or 8 */
/* Padding plus, in draft-B, the footer, for a body of len octets. */
size_t	record_trailer_size(const struct xp_stream *st, uint32_t len);
size_t	record_wire_size(const struct xp_stream *st, uint32_t len);

/* Record header into out[record_hdr_size()]; options ignored for Xen. */
void	record_hdr_put(const struct xp_stream *st, uint8_t *out, uint32_t type,
	    uint32_t len, uint16_t options);
/*
 * Padding and footer into out[record_trailer_size()].  crc is the running
 * CRC-32 over the record header and body (zlib crc32, start value 0); the
 * function adds the padding to it.  If options lacks WIRE_REC_OPT_CHECKSUM
 * the checksum field is written as 0.  Xen dialect: padding only.
 */
void	record_trailer_put(const struct xp_stream *st, uint8_t *out,
	    uint32_t len, uint16_t options, uint32_t crc);
/* A whole record appended to out, checksum computed when asked for. */
int	record_encode(const struct xp_stream *st, struct xp_buf *out,
	    uint32_t type, const void *body, uint32_t len, uint16_t options);

/* ---- bodies (body.c) -------------------------------------------------- */

/*
 * Re-encode a body from one byte order to another, field by field, for the
 * types whose layout is known (opaque blobs are copied as they are).
 * out must hold len octets.  Returns 0 or -XP_EBODY.
 */
int	body_reorder(uint32_t type, const uint8_t *in, uint32_t len,
	    int from_be, int to_be, uint8_t *out);

/* PAGE_DATA: u32 count, u32 res, u64 pfn[count], page data. */
static inline uint64_t
body_pfn_entry(uint64_t pfn, unsigned type)
{
	return (uint64_t)type << WIRE_PFN_TYPE_SHIFT | (pfn & WIRE_PFN_MASK);
}
/* Non-zero if a page of this type carries page_size octets of data. */
int	body_page_type_has_data(unsigned type);
/* Write count, res and pfn entries (body_pfn_entry) into out[8 + 8*count]. */
void	body_page_data_prefix_put(int be, uint8_t *out, uint32_t count,
	    const uint64_t *entries);

/*
 * body_reorder() that knows the record options: a PAGE_DATA body with
 * WIRE_REC_OPT_DEFLATE has count, reserved, pfn[], raw_length and
 * deflated_length converted and its zlib stream copied as it is.
 * body_reorder() is body_reorder_opt() with options 0.  Besides the types
 * of SPEC section 10 it converts XMIG_NEGOTIATE (48 octets) and
 * XMIG_ZERO_PAGES (u32, u32, u64[]); the back-channel records are always
 * little-endian and are copied.
 */
int	body_reorder_opt(uint32_t type, uint16_t options, const uint8_t *in,
	    uint32_t len, int from_be, int to_be, uint8_t *out);

/* ---- extension records of the forward stream (body.c) ---------------- */

struct xp_record;

/* XMIG_NEGOTIATE (SPEC 13.2), stream byte order. */
struct xp_negotiate {
	uint32_t	version;	/* XMIG_NEGOTIATE_VERSION */
	uint32_t	features;	/* XMIG_F_* offered */
	uint32_t	can_write;	/* XMIG_CAN_* */
	uint32_t	max_record_len;	/* 1 .. WIRE_REC_LENGTH_MAX */
	uint16_t	arch;		/* the domain header's, repeated */
	uint16_t	type;
	uint16_t	page_shift;
	/* With XMIG_F_PARALLEL: data streams offered, 2 .. XMIG_STREAMS_MAX. */
	uint16_t	streams;
	uint64_t	nr_pages;
	uint32_t	nr_vcpus;
	/*
	 * With XMIG_F_CHECKPOINTS offered: the checkpoint interval in ms
	 * (1 .. WIRE_CHECKPOINT_INTERVAL_MAX); otherwise 0 (SPEC 13.2).
	 */
	uint32_t	interval_ms;
	uint64_t	session_id;
};

/*
 * Write the 48-octet body; version is always written as
 * XMIG_NEGOTIATE_VERSION and the reserved fields as zero.  Frame it with
 * record_encode(st, out, REC_XMIG_NEGOTIATE, body, WIRE_NEGOTIATE_SIZE,
 * options) right after the domain header, with st->ihdr_options having
 * WIRE_IHDR_OPT_BACKCHANNEL (draft-B only).
 */
void	body_negotiate_put(int be, uint8_t out[WIRE_NEGOTIATE_SIZE],
	    const struct xp_negotiate *n);
/*
 * Decode an XMIG_NEGOTIATE record of stream st, checking it as the parser
 * does: 0, -XP_EINVAL (another type) or -XP_EBODY.
 */
int	body_negotiate_get(const struct xp_stream *st,
	    const struct xp_record *rec, struct xp_negotiate *n);

/*
 * XMIG_DOMAIN_CONFIG (SPEC 12.4): the toolstack's description of the
 * domain, as text of the given kind (XMIG_CONFIG_LIBXL_JSON).
 * body_config_put writes the 8-octet head into out; the text follows it
 * in the record body (record_encode of head + text, at most
 * WIRE_CONFIG_TEXT_MAX octets, no NUL).  body_config_get checks the
 * record as the parser does and points *text into the record body:
 * 0, -XP_EINVAL (another type) or -XP_EBODY.
 */
void	body_config_put(int be, uint8_t out[WIRE_CONFIG_HDR_SIZE],
	    uint32_t kind);
int	body_config_get(const struct xp_stream *st,
	    const struct xp_record *rec, uint32_t *kind, const char **text,
	    size_t *len);

/*
 * XMIG_ZERO_PAGES body into out[8 + 8*count]: count, reserved 0, then the
 * pfns (type NOTAB).  -XP_EINVAL if count is 0 or above
 * WIRE_PAGE_DATA_MAX or a pfn does not fit WIRE_PFN_MASK; 0 otherwise.
 */
int	body_zero_pages_put(int be, uint8_t *out, uint32_t count,
	    const uint64_t *pfns);

/*
 * The pages of one PAGE_DATA (plain or DEFLATE) or XMIG_ZERO_PAGES record,
 * decoded the same way for all three.
 */
struct xp_page_view {
	int		 be;		/* byte order of entries[] */
	uint32_t	 page_size;
	uint32_t	 count;		/* pfn entries */
	const uint8_t	*entries;	/* count u64: xp_page_view_entry() */
	uint32_t	 ndata;		/* entries whose type carries a page */
	int		 zero;		/* XMIG_ZERO_PAGES: each entry is a page
					   of zeros, NOTAB, no data follows */
	int		 deflated;	/* page data is in zdata, compressed */
	uint16_t	 codec;		/* WIRE_REC_OPT_DEFLATE or _ZSTD */
	const uint8_t	*data;		/* plain: ndata pages, in entry order */
	uint32_t	 raw_length;	/* ndata * page_size */
	const uint8_t	*zdata;		/* the zlib stream or zstd frame ... */
	uint32_t	 zlength;	/* ... and its length */
};

static inline uint64_t
xp_page_view_entry(const struct xp_page_view *v, uint32_t i)
{
	return xp_get64(v->be, v->entries + (size_t)i * 8);
}

/*
 * Fill v from a PAGE_DATA or XMIG_ZERO_PAGES record of stream st (as the
 * parser yielded it).  The layout is checked again (not the limits):
 * 0, -XP_EINVAL (another type) or -XP_EBODY.
 */
int	body_page_data_view(const struct xp_stream *st,
	    const struct xp_record *rec, struct xp_page_view *v);
/*
 * Inflate the page data of a DEFLATE (or decompress that of a ZSTD)
 * PAGE_DATA record into out, which must hold raw_length octets (out_len >=
 * raw_length; exactly raw_length are written).  0; -XP_EINVAL (not a
 * compressed PAGE_DATA, out too short); -XP_ENOMEM; -XP_EBODY if the zlib
 * stream or zstd frame is corrupt, holds more or fewer than raw_length
 * octets, or has octets after its end.  The _err form also fills err (if
 * not NULL) with "record N (PAGE_DATA) at offset X: deflated page data:
 * ..." (or "zstd page data: ...").
 */
int	body_page_data_inflate(const struct xp_stream *st,
	    const struct xp_record *rec, uint8_t *out, size_t out_len);
int	body_page_data_inflate_err(const struct xp_stream *st,
	    const struct xp_record *rec, uint8_t *out, size_t out_len,
	    struct xp_error *err);
/*
 * Deflate raw_len octets of page data (zlib format, level -1 for zlib's
 * default or 0-9) and append to out what follows pfn[] in a DEFLATE
 * PAGE_DATA body: u32 raw_length, u32 deflated_length (byte order be),
 * then the zlib stream.  A record is then header (body length 8 +
 * 8*count + the octets appended, options | WIRE_REC_OPT_DEFLATE), prefix
 * (body_page_data_prefix_put), these octets, trailer.  0, -XP_EINVAL (bad
 * level, raw_len above WIRE_REC_LENGTH_MAX) or -XP_ENOMEM; out is
 * unchanged on failure.
 */
int	body_page_data_deflate(int be, int level, const uint8_t *raw,
	    size_t raw_len, struct xp_buf *out);
/*
 * The same for codec WIRE_REC_OPT_DEFLATE (level -1..9) or
 * WIRE_REC_OPT_ZSTD (a zstd frame with its content size, level 0..19):
 * u32 raw_length, u32 compressed length, the octets.
 */
int	body_page_data_compress(int be, uint16_t codec, int level,
	    const uint8_t *raw, size_t raw_len, struct xp_buf *out);
/*
 * A whole PAGE_DATA record appended to out: count entries
 * (body_pfn_entry) and pages_len octets of page data, which must be
 * page_size times the entries that carry data.  With WIRE_REC_OPT_DEFLATE
 * or WIRE_REC_OPT_ZSTD in options (draft-B only) the data is compressed
 * at level.  0,
 * -XP_EINVAL, -XP_ETOOBIG or -XP_ENOMEM; out is unchanged on failure.
 * (record.c)
 */
int	record_encode_pages(const struct xp_stream *st, struct xp_buf *out,
	    uint32_t count, const uint64_t *entries, const uint8_t *pages,
	    size_t pages_len, uint16_t options, int level);

/* ---- back-channel and control records (control.c) --------------------- */

/*
 * The back-channel (receiver to sender) and the sender's control records
 * after END share one framing: draft-B records, little-endian, always
 * with a checksum (SPEC 13.1).  The back-channel starts with an image
 * header (control_header_put); the forward control records follow END
 * directly.
 */
enum xp_control_dir {
	XP_CONTROL_BACK = 1,	/* REPLY, ACK, ERROR, STATUS, DIGESTS */
	XP_CONTROL_FORWARD = 2,	/* HANDOVER, after END */
};

/* The stream description of the control framing: draft-B, LE, arch 0. */
void	stream_init_control(struct xp_stream *st);	/* (stream.c) */
/* The back-channel's image header: version 1, options 0x0002. */
void	control_header_put(uint8_t out[WIRE_IHDR_SIZE]);

/*
 * Message text (REPLY, ERROR, STATUS) points into the record body: valid
 * only while the record is, not NUL-terminated, UTF-8 without NUL, at
 * most WIRE_MESSAGE_MAX octets.  On writing, text is cut at its first NUL
 * and at WIRE_MESSAGE_MAX octets (on a character boundary), and octets
 * that are not UTF-8 become '?'.  Read text is the peer's: it may hold
 * control characters (ESC is UTF-8 too), so it goes through xp_escape()
 * before it is printed or put into a message.
 */
struct xp_reply {
	uint32_t	 version;	/* XMIG_NEGOTIATE_VERSION */
	uint32_t	 features;	/* XMIG_F_* accepted */
	uint32_t	 result;	/* XMIG_REPLY_* */
	uint32_t	 can_read;	/* XMIG_CAN_* */
	uint32_t	 max_record_len;
	uint64_t	 max_memory;	/* octets; 0: no limit */
	uint64_t	 restorable;	/* bit n: mandatory type n */
	uint64_t	 session_id;	/* echoed */
	const char	*message;
	size_t		 message_len;
};

struct xp_ack {
	uint64_t	records;	/* forward records parsed and applied */
	uint64_t	octets;		/* forward stream octets */
	uint64_t	pages;
};

/* XMIG_CHECKPOINT_ACK (SPEC 13.5): epoch committed, octets up to its end. */
struct xp_checkpoint_ack {
	uint64_t	epoch;		/* 1 for the first CHECKPOINT */
	uint64_t	octets;		/* forward stream octets through it */
};

/* XMIG_ERROR (struct xp_error is the parser's). */
struct xp_error_msg {
	uint64_t	 record_index;
	uint64_t	 offset;
	uint32_t	 record_type;
	uint32_t	 code;		/* XP_E* or an errno */
	const char	*message;
	size_t		 message_len;
};

struct xp_status {
	uint32_t	 state;		/* XMIG_STATUS_* */
	const char	*message;
	size_t		 message_len;
};

struct xp_handover {
	uint32_t	command;	/* XMIG_HANDOVER_* */
};

struct xp_digests {
	uint8_t		memory_digest[32];
	uint8_t		vcpu_sha256[32];
	uint64_t	nr_pages;
};

/*
 * Append one whole control record (header, body, padding, footer with its
 * CRC-32) to out.  The _put functions write the version as
 * XMIG_NEGOTIATE_VERSION and reserved fields as zero; they do not check
 * the values (a result, state or command this revision does not define
 * is written as given, and a reader refuses it).  0, -XP_EINVAL (a type
 * that is not a control record, for control_encode) or -XP_ENOMEM; out is
 * unchanged on failure.
 */
int	control_encode(struct xp_buf *out, uint32_t type, const void *body,
	    uint32_t len);
int	control_reply_put(struct xp_buf *out, const struct xp_reply *r);

/* XMIG_STREAMS (SPEC 13.6): the data streams a receiver takes. */
struct xp_streams {
	uint16_t	streams;	/* 2 .. XMIG_STREAMS_MAX */
	uint16_t	port;		/* TCP port of the data connections */
	uint8_t		token[WIRE_STREAM_TOKEN_SIZE];
};
int	control_streams_put(struct xp_buf *out, const struct xp_streams *x);
int	control_streams_get(const struct xp_record *rec, struct xp_streams *x);
int	control_ack_put(struct xp_buf *out, const struct xp_ack *a);
int	control_error_put(struct xp_buf *out, const struct xp_error_msg *e);
int	control_status_put(struct xp_buf *out, const struct xp_status *s);
int	control_handover_put(struct xp_buf *out, const struct xp_handover *h);
int	control_digests_put(struct xp_buf *out, const struct xp_digests *d);
int	control_checkpoint_ack_put(struct xp_buf *out,
	    const struct xp_checkpoint_ack *a);

/*
 * Decode a record the control parser yielded, checking its body again as
 * the parser does: 0, -XP_EINVAL (another type) or -XP_EBODY.
 */
int	control_reply_get(const struct xp_record *rec, struct xp_reply *r);
int	control_ack_get(const struct xp_record *rec, struct xp_ack *a);
int	control_error_get(const struct xp_record *rec, struct xp_error_msg *e);
int	control_status_get(const struct xp_record *rec, struct xp_status *s);
int	control_handover_get(const struct xp_record *rec,
	    struct xp_handover *h);
int	control_digests_get(const struct xp_record *rec, struct xp_digests *d);
int	control_checkpoint_ack_get(const struct xp_record *rec,
	    struct xp_checkpoint_ack *a);

/* ---- incremental parser (parser.c) ----------------------------------- */

struct xp_record {
	uint64_t	 index;		/* 0 for the first record after the headers */
	uint64_t	 offset;	/* stream offset of the record header */
	uint32_t	 type;
	uint32_t	 length;	/* body octets, without padding */
	uint16_t	 options;	/* draft-B record options; 0 for Xen */
	uint32_t	 checksum;	/* draft-B footer checksum; 0 for Xen */
	int		 known;		/* 0: unknown optional type, skip it */
	const uint8_t	*hdr;		/* the raw record header octets */
	const uint8_t	*body;		/* length octets in stream byte order */
	size_t		 wire_len;	/* header + body + padding + footer */
	uint32_t	 flags;		/* XP_REC_* */
};

/*
 * Xen v2 stream: static data ended just before this record (the first
 * X86_PV_P2M_FRAMES or PAGE_DATA), where a v3 stream has STATIC_DATA_END.
 */
#define XP_REC_SDE_INFERRED	0x1u

/* Where and why a stream was rejected. */
struct xp_error {
	int		code;		/* XP_E* (positive) or 0 */
	uint64_t	index;		/* record index, or UINT64_MAX: headers */
	uint32_t	type;
	uint64_t	offset;
	char		msg[320];	/* "record 17 (PAGE_DATA) at offset 69664: ..." */
};

struct xp_limits {
	uint32_t	max_record_len;	/* 0: WIRE_REC_LENGTH_MAX */
	uint64_t	max_pfn;	/* highest pfn accepted + 1; 0: 2^52 */
	uint32_t	max_vcpus;	/* vcpu_id must be < this; 0: 1024 */
};

/*
 * Return 0 to go on, XP_PAUSE to stop after this record, <0 to fail.  A
 * negative XP_E* code is kept as the parser's error; any other value
 * (negative or positive) fails with XP_ECALLBACK.  rec->hdr and rec->body
 * are valid only during the call.
 */
#define XP_PAUSE 1
typedef int (*xp_header_cb)(void *arg, const struct xp_stream *st);
typedef int (*xp_record_cb)(void *arg, const struct xp_stream *st,
    const struct xp_record *rec);

struct xp_parser;

struct xp_parser *parser_new(const struct xp_limits *lim, xp_header_cb hcb,
	    xp_record_cb rcb, void *arg);
/*
 * A parser for a control channel (SPEC 13.1), fed through the same
 * parser_feed/parser_want/parser_finish/parser_error calls.  With
 * expect_header it first reads the back-channel's image header (24
 * octets: marker, "XENF", version 1, options bit 1 set, bit 0 clear);
 * then records, draft-B framed, little-endian, each with a checksum, of
 * the types of direction dir only (XP_CONTROL_BACK: XMIG_REPLY, _ACK,
 * _ERROR, _STATUS, _DIGESTS; XP_CONTROL_FORWARD: XMIG_HANDOVER), in the
 * order SPEC 13.1 allows, their bodies checked.  There is no END:
 * parser_finish() returns 0 when the input stopped between records (or
 * before the first octet), XP_ETRUNCATED inside one.  Offsets and record
 * indexes count from the start of the control stream.
 */
struct xp_parser *parser_new_control(const struct xp_limits *lim,
	    enum xp_control_dir dir, int expect_header, xp_record_cb rcb,
	    void *arg);
void	parser_free(struct xp_parser *p);
/*
 * Feed bytes as they arrive.  Returns how many were consumed (all of them
 * unless a callback paused or END was reached), or a negative XP_E* code;
 * the error stays readable with parser_error().  After END, feeding any
 * further octet is XP_ETRAILING.  Records whole in buf are handed to the
 * callback without a copy; only a record split across calls is buffered.
 */
ssize_t	parser_feed(struct xp_parser *p, const uint8_t *buf, size_t len);
/*
 * Octets still needed to complete the unit being parsed (header or record):
 * at least 1 until END, 0 once done or failed.
 */
size_t	parser_want(const struct xp_parser *p);
/* At end of input: 0 if END was seen and nothing is pending, else an error. */
int	parser_finish(struct xp_parser *p);
int	parser_done(const struct xp_parser *p);		/* END seen */
const struct xp_stream *parser_stream(const struct xp_parser *p);	/* NULL before headers */
const struct xp_error *parser_error(const struct xp_parser *p);
uint64_t parser_offset(const struct xp_parser *p);	/* octets consumed */
/*
 * Octets the parser holds for a unit split across calls (its gathering
 * buffer): at most max(64 KiB, twice the octets of the unit gathered so
 * far), never more than the unit, and at most 8 MiB between units.
 */
size_t	parser_buffered(const struct xp_parser *p);

/*
 * Page data read straight into its destination, with no gathering.  For an
 * uncompressed PAGE_DATA record of at least min_data octets of page data
 * and at most XP_DIRECT_PAGES pages of it, once the record header and the
 * body up to the data (count, reserved, the pfn list: 8 + 8 * count
 * octets) have arrived and passed every check that does not need the data
 * (the same checks, the same messages), begin(arg, st, rec, dst) is called
 * with rec->body holding only those octets (rec->length is the whole
 * body's).  It returns 0 having set dst[0..ndata-1] to where each page of
 * the data goes (page-sized, writable), XP_DIRECT_DECLINE to have the
 * record gathered and handed to the record callback as usual, or fails as
 * a record callback does.  The data is then copied there as it is fed; the
 * draft-B CRC-32 is computed over the destination after each copy.  When
 * the record is complete, end(arg, st, rec, rv) is called once instead of
 * the record callback: rv 0 when the checksum matched (end's return value
 * counts as the record callback's), or the negative XP_E* code the record
 * failed with (dst then holds octets that were not accepted; the return
 * value is ignored, and parser_error() names the record as it would
 * without this).  If the input stops inside the data, end is not called:
 * parser_finish() fails as usual and the caller releases dst itself.
 * parser_direct_active() is nonzero while such a record is read (from its
 * header until end, or until it is gathered after all): feed it the pieces
 * as they are, there is nothing to gain from making them contiguous.
 */
#define XP_DIRECT_PAGES		1024u
#define XP_DIRECT_DECLINE	2
struct xp_direct {
	size_t	min_data;
	int	(*begin)(void *arg, const struct xp_stream *st,
		    const struct xp_record *rec, uint8_t **dst);
	int	(*end)(void *arg, const struct xp_stream *st,
		    const struct xp_record *rec, int rv);
};
/* d (kept, not copied) or NULL to stop taking data direct. */
void	parser_set_direct(struct xp_parser *p, const struct xp_direct *d);
int	parser_direct_active(const struct xp_parser *p);
/*
 * Inside the data of a record taken direct: *dst and the return value say
 * where the next octets of data go (at most that many, contiguous: pages
 * that lie one after the other are one run), so that the caller can read
 * them there itself, from a socket or a pipe, with no copy at all; 0 when
 * not inside the data (then feed as usual).  parser_direct_commit(p, n)
 * then takes the n octets (n at most what parser_direct_space returned)
 * put there: the CRC-32 goes over them, and if they end the record's data
 * and nothing follows them in the record (Xen dialect), the record ends
 * there.  It returns n, or a negative XP_E* code as parser_feed does.
 */
size_t	parser_direct_space(const struct xp_parser *p, uint8_t **dst);
ssize_t	parser_direct_commit(struct xp_parser *p, size_t n);

/* ---- CRC-32 (crc.c) -------------------------------------------------- */

/*
 * CRC-32 (IEEE 802.3, bit-reflected), the same value as zlib's
 * crc32(crc, buf, len): start with 0 and pass the running value back in;
 * any length and alignment.  As in zlib, a NULL buf returns 0.  Uses
 * carry-less multiplication where the CPU has it, zlib otherwise; the
 * choice is made once, at the first call, and is thread-safe.
 */
uint32_t xp_crc32(uint32_t crc, const void *buf, size_t len);
/* The implementation in use: "vpclmulqdq-avx512", "pclmulqdq" or "zlib". */
const char *xp_crc32_impl(void);

#endif
