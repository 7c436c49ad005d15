/*
 * libxl.h -- the framing around a libxc stream in an `xl save` file and in
 * a libxl migration stream (SPEC.md section 16): xl's save-file header with
 * its optional data, libxl's stream header and records.  Bytes in,
 * validated items out, and encoders for writers; no I/O, like the rest of
 * proto/.
 *
 * The libxc stream inside (after the LIBXC_CONTEXT record) is not parsed
 * here: the wrapper reader stops there, the caller hands the octets that
 * follow to parser_new()'s parser until it has seen END, and tells the
 * wrapper reader how many octets that was (xp_wrap_libxc_end).
 */
#ifndef XMIG_LIBXL_H
#define XMIG_LIBXL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

/* xl's save-file header (native byte order; xmig: little-endian only). */
#define XP_XL_MAGIC		"Xen saved domain, xl format\n \0 \r"
#define XP_XL_MAGIC_SIZE	32u
#define XP_XL_HDR_SIZE		48u	/* magic, 4 x u32 */
#define XP_XL_BYTEORDER		0x01020304u
#define XP_XL_FLAG_JSON		0x1u	/* mandatory: the config is JSON */
#define XP_XL_FLAG_STREAMV2	0x2u	/* mandatory: a libxl v2 stream follows */
#define XP_XL_FLAGS_KNOWN	(XP_XL_FLAG_JSON | XP_XL_FLAG_STREAMV2)

/* libxl's stream header (16 octets, big-endian) and records (LE). */
#define XP_LIBXL_IDENT		0x4c6962786c466d74ULL	/* "LibxlFmt" */
#define XP_LIBXL_VERSION	2u
#define XP_LIBXL_HDR_SIZE	16u
#define XP_LIBXL_OPT_BIG_ENDIAN	0x1u
#define XP_LIBXL_OPT_LEGACY	0x2u	/* made by convert-legacy-stream */
#define XP_LIBXL_RHDR_SIZE	8u	/* u32 type, u32 length */
#define XP_LIBXL_REC_MAX	WIRE_REC_LENGTH_MAX	/* xmig's bound */

enum xp_libxl_rec_type {
	XP_LIBXL_END			= 0,
	XP_LIBXL_LIBXC_CONTEXT		= 1,
	XP_LIBXL_EMULATOR_XENSTORE_DATA	= 2,
	XP_LIBXL_EMULATOR_CONTEXT	= 3,
	XP_LIBXL_CHECKPOINT_END		= 4,
	XP_LIBXL_CHECKPOINT_STATE	= 5,
};
#define XP_LIBXL_EMU_HDR_SIZE	8u	/* u32 emulator_id, u32 index */
#define XP_LIBXL_EMU_MAX_ID	2u	/* 0 unknown, 1 qemu-trad, 2 upstream */

/* "LIBXC_CONTEXT"; "UNKNOWN_0x6" / "OPTIONAL_0x80000001" for others. */
const char *xp_libxl_rec_name(uint32_t type);

/* ---- encoders (for writers) ------------------------------------------- */

/* The 16-octet libxl stream header: ident, version 2, options (BE). */
void	xp_libxl_header_encode(uint8_t out[XP_LIBXL_HDR_SIZE],
	    uint32_t options);
/*
 * One libxl record appended to out: type, length (little-endian), body,
 * zero padding to 8 octets.  body may be NULL when len is 0.  0,
 * -XP_EINVAL (len above XP_LIBXL_REC_MAX) or -XP_ENOMEM; out is unchanged
 * on failure.  A minimal stream is the header, a LIBXC_CONTEXT record
 * (len 0), the libxc stream up to its END, and an END record (len 0).
 */
int	xp_libxl_record_encode(struct xp_buf *out, uint32_t type,
	    const void *body, uint32_t len);
/*
 * xl's save-file header appended to out: magic, byte order, mandatory
 * flags STREAMv2 (and JSON when config_len is not 0), optional flags 0,
 * optional data {u32 config_len, config}, all little-endian.  config
 * (config_len octets) should be JSON text ending in its NUL, as xl
 * writes it.  0, -XP_EINVAL, -XP_ENOMEM; out unchanged on failure.
 */
int	xp_xl_header_encode(struct xp_buf *out, const void *config,
	    uint32_t config_len);

/* ---- reader ------------------------------------------------------------ */

enum xp_wrap_kind {
	XP_WRAP_NONE = 0,	/* a bare libxc or draft-B image */
	XP_WRAP_XL = 1,		/* an `xl save` file: xl header, libxl stream */
	XP_WRAP_LIBXL = 2,	/* a libxl stream on its own */
};

/*
 * What the first octets of an input are: XP_WRAP_XL if they start with
 * the 32-octet xl magic, XP_WRAP_LIBXL with "LibxlFmt", XP_WRAP_NONE
 * otherwise; -1 if len is too short to tell (the octets so far are a
 * prefix of one of the two magics).
 */
int	xp_wrap_detect(const uint8_t *buf, size_t len);

/* One item the wrapper reader yields, valid during the callback only. */
enum xp_wrap_item_kind {
	XP_WI_XL_HEADER = 1,	/* xl header and optional data */
	XP_WI_LIBXL_HEADER,	/* libxl stream header */
	XP_WI_RECORD,		/* a libxl record (LIBXC_CONTEXT included) */
};

struct xp_wrap_item {
	enum xp_wrap_item_kind	 kind;
	uint64_t		 offset;	/* of the item in the input */
	uint64_t		 size;		/* octets it takes there */
	/* XP_WI_XL_HEADER */
	uint32_t		 mandatory_flags;
	uint32_t		 optional_flags;
	uint32_t		 optional_data_len;
	uint32_t		 config_len;	/* 0: no config */
	const uint8_t		*config;	/* config_len octets */
	/* XP_WI_LIBXL_HEADER */
	uint32_t		 version;
	uint32_t		 options;
	/* XP_WI_RECORD */
	uint64_t		 index;		/* libxl records, from 0 */
	uint32_t		 type;
	uint32_t		 length;	/* body octets, without padding */
	const uint8_t		*body;
	uint32_t		 emulator_id;	/* EMULATOR_* records */
	uint32_t		 emulator_index;
	uint32_t		 xs_pairs;	/* EMULATOR_XENSTORE_DATA pairs */
};

/* Return 0 to go on, a negative XP_E* code to fail. */
typedef int (*xp_wrap_cb)(void *arg, const struct xp_wrap_item *it);

struct xp_wrap;

/*
 * A reader for kind XP_WRAP_XL or XP_WRAP_LIBXL; NULL if out of memory
 * or kind is neither.
 */
struct xp_wrap *xp_wrap_new(enum xp_wrap_kind kind, xp_wrap_cb cb, void *arg);
void	xp_wrap_free(struct xp_wrap *w);
/*
 * Feed input octets.  Returns how many were consumed or a negative XP_E*
 * code (the reason in xp_wrap_error()).  It stops right after the
 * LIBXC_CONTEXT record (xp_wrap_in_libxc() is then 1): the octets that
 * follow are the libxc stream, which the caller parses; feeding the
 * reader before xp_wrap_libxc_end() is -XP_EINVAL.  Once libxl's END has
 * been read, any further octet is -XP_ETRAILING.
 */
ssize_t	xp_wrap_feed(struct xp_wrap *w, const uint8_t *buf, size_t len);
int	xp_wrap_in_libxc(const struct xp_wrap *w);
/* The libxc stream took len octets (image header to its END record). */
int	xp_wrap_libxc_end(struct xp_wrap *w, uint64_t len);
/*
 * At end of input: 0 if libxl's END record has been read, else
 * -XP_ETRUNCATED with a message naming the offset and what was missing.
 */
int	xp_wrap_finish(struct xp_wrap *w);
int	xp_wrap_done(const struct xp_wrap *w);		/* END read */
uint64_t xp_wrap_offset(const struct xp_wrap *w);	/* octets consumed */
/* Where the libxc stream starts (its image header); 0 before it. */
uint64_t xp_wrap_libxc_offset(const struct xp_wrap *w);
const struct xp_error *xp_wrap_error(const struct xp_wrap *w);

#endif
