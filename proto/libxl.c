/*
 * libxl.c -- the xl save-file header and libxl's migration stream framing
 * around a libxc stream (SPEC.md section 16): an incremental reader that
 * validates them and stops where the libxc stream starts, and encoders.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "libxl.h"

/* xmig's bound on xl's optional data (xl writes 4 + the JSON config). */
#define XL_OPTDATA_MAX	(16u << 20)

enum wrap_state {
	W_XL_HDR,	/* the 48 fixed octets of the xl header */
	W_XL_OPT,	/* its optional data */
	W_LIBXL_HDR,	/* libxl's 16-octet header */
	W_REC_HDR,	/* a record header */
	W_REC_BODY,	/* its body and padding */
	W_LIBXC,	/* the caller is parsing the libxc stream */
	W_DONE,		/* END read */
	W_FAILED,
};

struct xp_wrap {
	enum xp_wrap_kind kind;
	xp_wrap_cb	 cb;
	void		*arg;
	enum wrap_state	 state;
	struct xp_buf	 unit;		/* the unit being gathered */
	size_t		 need;		/* its size */
	uint64_t	 offset;	/* octets consumed */
	uint64_t	 unit_offset;	/* where the unit started */

	uint32_t	 xl_flags;	/* the xl header, kept for its item */
	uint32_t	 xl_oflags;
	uint32_t	 xl_optlen;

	uint64_t	 index;		/* of the next libxl record */
	uint32_t	 rtype;		/* the record being read */
	uint32_t	 rlen;
	uint64_t	 rec_offset;

	int		 libxc_seen;	/* LIBXC_CONTEXT read */
	int		 libxc_done;	/* its stream ended */
	uint64_t	 libxc_offset;
	int		 xs_seen;	/* EMULATOR_XENSTORE_DATA read */
	int		 emu_seen;	/* EMULATOR_CONTEXT read */

	struct xp_error	 err;
};

static const char *const libxl_rec_names[] = {
	[XP_LIBXL_END]			= "END",
	[XP_LIBXL_LIBXC_CONTEXT]	= "LIBXC_CONTEXT",
	[XP_LIBXL_EMULATOR_XENSTORE_DATA] = "EMULATOR_XENSTORE_DATA",
	[XP_LIBXL_EMULATOR_CONTEXT]	= "EMULATOR_CONTEXT",
	[XP_LIBXL_CHECKPOINT_END]	= "CHECKPOINT_END",
	[XP_LIBXL_CHECKPOINT_STATE]	= "CHECKPOINT_STATE",
};

const char *
xp_libxl_rec_name(uint32_t type)
{
	static _Thread_local char	buf[32];

	if (type < sizeof libxl_rec_names / sizeof libxl_rec_names[0])
		return libxl_rec_names[type];
	if (type & WIRE_REC_OPTIONAL)
		snprintf(buf, sizeof buf, "OPTIONAL_0x%08x", type);
	else
		snprintf(buf, sizeof buf, "UNKNOWN_0x%x", type);
	return buf;
}

static size_t
pad8(uint32_t len)
{
	return (WIRE_REC_ALIGN - len % WIRE_REC_ALIGN) % WIRE_REC_ALIGN;
}

/* ---- encoders ------------------------------------------------------------ */

void
xp_libxl_header_encode(uint8_t out[XP_LIBXL_HDR_SIZE], uint32_t options)
{
	xp_put64(1, out, XP_LIBXL_IDENT);
	xp_put32(1, out + 8, XP_LIBXL_VERSION);
	xp_put32(1, out + 12, options);
}

int
xp_libxl_record_encode(struct xp_buf *out, uint32_t type, const void *body,
    uint32_t len)
{
	uint8_t	*p;
	size_t	 total;

	if (len > XP_LIBXL_REC_MAX || (body == NULL && len != 0))
		return -XP_EINVAL;
	total = XP_LIBXL_RHDR_SIZE + (size_t)len + pad8(len);
	if ((p = buf_extend(out, total)) == NULL)
		return -XP_ENOMEM;
	xp_put32(0, p, type);
	xp_put32(0, p + 4, len);
	if (len != 0)
		memcpy(p + XP_LIBXL_RHDR_SIZE, body, len);
	return 0;
}

int
xp_xl_header_encode(struct xp_buf *out, const void *config,
    uint32_t config_len)
{
	uint8_t		*p;
	uint32_t	 flags = XP_XL_FLAG_STREAMV2;

	if (config_len > XL_OPTDATA_MAX - 4 ||
	    (config == NULL && config_len != 0))
		return -XP_EINVAL;
	if (config_len != 0)
		flags |= XP_XL_FLAG_JSON;
	if ((p = buf_extend(out, XP_XL_HDR_SIZE + 4 + (size_t)config_len)) ==
	    NULL)
		return -XP_ENOMEM;
	memcpy(p, XP_XL_MAGIC, XP_XL_MAGIC_SIZE);
	xp_put32(0, p + 32, XP_XL_BYTEORDER);
	xp_put32(0, p + 36, flags);
	xp_put32(0, p + 40, 0);
	xp_put32(0, p + 44, 4 + config_len);
	xp_put32(0, p + 48, config_len);
	if (config_len != 0)
		memcpy(p + 52, config, config_len);
	return 0;
}

/* ---- detection ------------------------------------------------------------ */

int
xp_wrap_detect(const uint8_t *buf, size_t len)
{
	static const uint8_t	libxl_ident[8] = "LibxlFmt";
	size_t			n;

	n = len < XP_XL_MAGIC_SIZE ? len : XP_XL_MAGIC_SIZE;
	if (memcmp(buf, XP_XL_MAGIC, n) == 0)
		return n == XP_XL_MAGIC_SIZE ? XP_WRAP_XL : -1;
	n = len < sizeof libxl_ident ? len : sizeof libxl_ident;
	if (memcmp(buf, libxl_ident, n) == 0)
		return n == sizeof libxl_ident ? XP_WRAP_LIBXL : -1;
	return XP_WRAP_NONE;
}

/* ---- reader ---------------------------------------------------------------- */

static int __attribute__((format(printf, 3, 4)))
wrap_fail(struct xp_wrap *w, int code, const char *fmt, ...)
{
	va_list	ap;

	w->state = W_FAILED;
	w->err.code = code;
	w->err.offset = w->unit_offset;
	va_start(ap, fmt);
	vsnprintf(w->err.msg, sizeof w->err.msg, fmt, ap);
	va_end(ap);
	return -code;
}

/* Start gathering a unit of n octets. */
static void
wrap_expect(struct xp_wrap *w, enum wrap_state s, size_t n)
{
	w->state = s;
	w->need = n;
	w->unit.len = 0;
	w->unit_offset = w->offset;
}

struct xp_wrap *
xp_wrap_new(enum xp_wrap_kind kind, xp_wrap_cb cb, void *arg)
{
	struct xp_wrap	*w;

	if (kind != XP_WRAP_XL && kind != XP_WRAP_LIBXL)
		return NULL;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	w->kind = kind;
	w->cb = cb;
	w->arg = arg;
	w->err.index = UINT64_MAX;
	if (kind == XP_WRAP_XL)
		wrap_expect(w, W_XL_HDR, XP_XL_HDR_SIZE);
	else
		wrap_expect(w, W_LIBXL_HDR, XP_LIBXL_HDR_SIZE);
	return w;
}

void
xp_wrap_free(struct xp_wrap *w)
{
	if (w == NULL)
		return;
	buf_free(&w->unit);
	free(w);
}

static int
wrap_yield(struct xp_wrap *w, struct xp_wrap_item *it)
{
	int	rc;

	if (w->cb == NULL || (rc = w->cb(w->arg, it)) == 0)
		return 0;
	if (rc < 0 && rc > -XP_E_MAX)
		return wrap_fail(w, -rc, "%s at offset %" PRIu64 ": stopped by "
		    "the caller: %s", it->kind == XP_WI_RECORD ? "libxl record" :
		    "header", it->offset, xp_strerror(rc));
	return wrap_fail(w, XP_ECALLBACK, "stopped by the caller at offset %"
	    PRIu64, it->offset);
}

static int
wrap_xl_fixed(struct xp_wrap *w, const uint8_t *p)
{
	uint32_t	order, flags, oflags, optlen;

	if (memcmp(p, XP_XL_MAGIC, XP_XL_MAGIC_SIZE) != 0)
		return wrap_fail(w, XP_EHEADER, "xl header at offset 0: the "
		    "first 32 octets are not xl's magic \"Xen saved domain, "
		    "xl format\\n \\0 \\r\"");
	order = xp_get32(0, p + 32);
	if (order == 0x04030201u)
		return wrap_fail(w, XP_EHEADER, "xl header at offset 32: byte "
		    "order mark 01 02 03 04: the file was written on a "
		    "big-endian host; xmig reads little-endian xl files only");
	if (order != XP_XL_BYTEORDER)
		return wrap_fail(w, XP_EHEADER, "xl header at offset 32: byte "
		    "order mark 0x%08x is not 0x%08x", order, XP_XL_BYTEORDER);
	flags = xp_get32(0, p + 36);
	if (flags & ~XP_XL_FLAGS_KNOWN)
		return wrap_fail(w, XP_EHEADER, "xl header at offset 36: "
		    "mandatory flags 0x%x include unknown bits 0x%x (xl "
		    "refuses such a file too)", flags, flags & ~XP_XL_FLAGS_KNOWN);
	if (!(flags & XP_XL_FLAG_STREAMV2))
		return wrap_fail(w, XP_ELEGACY, "xl header at offset 36: "
		    "mandatory flags 0x%x lack STREAMv2 (0x2): the domain was "
		    "saved in the legacy (pre-v2) format; convert it first "
		    "(Xen's convert-legacy-stream)", flags);
	oflags = xp_get32(0, p + 40);
	if (oflags != 0)
		return wrap_fail(w, XP_EHEADER, "xl header at offset 40: "
		    "optional flags 0x%x: none are defined", oflags);
	optlen = xp_get32(0, p + 44);
	if (optlen > XL_OPTDATA_MAX)
		return wrap_fail(w, XP_ETOOBIG, "xl header at offset 44: "
		    "optional data length %u is above xmig's maximum %u",
		    optlen, XL_OPTDATA_MAX);
	w->xl_flags = flags;
	w->xl_oflags = oflags;
	w->xl_optlen = optlen;
	return 0;
}

static int
wrap_xl_optdata(struct xp_wrap *w, const uint8_t *p)
{
	struct xp_wrap_item	it;
	uint32_t		clen = 0;
	uint64_t		opt = XP_XL_HDR_SIZE;

	memset(&it, 0, sizeof it);
	if (w->xl_optlen != 0) {
		if (w->xl_optlen < 4)
			return wrap_fail(w, XP_EHEADER, "xl header at offset "
			    "%" PRIu64 ": %u octets of optional data cannot "
			    "hold the config length (4 octets)", opt,
			    w->xl_optlen);
		clen = xp_get32(0, p);
		if (clen > w->xl_optlen - 4)
			return wrap_fail(w, XP_EHEADER, "xl header at offset "
			    "%" PRIu64 ": config length %u is beyond the "
			    "optional data (%u octets after the length)", opt,
			    clen, w->xl_optlen - 4);
		if ((w->xl_flags & XP_XL_FLAG_JSON) && clen != 0 &&
		    p[4 + clen - 1] != '\0')
			return wrap_fail(w, XP_EHEADER, "xl header at offset "
			    "%" PRIu64 ": the JSON config (%u octets) does not "
			    "end in a NUL", opt + 4, clen);
		it.config = p + 4;
	}
	it.kind = XP_WI_XL_HEADER;
	it.offset = 0;
	it.size = XP_XL_HDR_SIZE + (uint64_t)w->xl_optlen;
	it.mandatory_flags = w->xl_flags;
	it.optional_flags = w->xl_oflags;
	it.optional_data_len = w->xl_optlen;
	it.config_len = clen;
	return wrap_yield(w, &it);
}

static int
wrap_libxl_hdr(struct xp_wrap *w, const uint8_t *p)
{
	struct xp_wrap_item	it;
	uint64_t		ident = xp_get64(1, p);
	uint32_t		version = xp_get32(1, p + 8);
	uint32_t		options = xp_get32(1, p + 12);
	uint64_t		o = w->unit_offset;

	if (ident != XP_LIBXL_IDENT) {
		if (ident == WIRE_MARKER)
			return wrap_fail(w, XP_EHEADER, "libxl header at "
			    "offset %" PRIu64 ": a libxc image header is here, "
			    "not libxl's \"LibxlFmt\" (xl files since Xen 4.6 "
			    "carry a libxl stream)", o);
		return wrap_fail(w, XP_EHEADER, "libxl header at offset %"
		    PRIu64 ": ident 0x%016" PRIx64 " is not 0x%016" PRIx64
		    " (\"LibxlFmt\")", o, ident, (uint64_t)XP_LIBXL_IDENT);
	}
	if (version != XP_LIBXL_VERSION)
		return wrap_fail(w, XP_EVERSION, "libxl header at offset %"
		    PRIu64 ": version %u, only %u is defined", o + 8, version,
		    XP_LIBXL_VERSION);
	if (options & XP_LIBXL_OPT_BIG_ENDIAN)
		return wrap_fail(w, XP_EHEADER, "libxl header at offset %"
		    PRIu64 ": options 0x%x: a big-endian stream (libxl "
		    "refuses those too)", o + 12, options);
	if (options & ~(XP_LIBXL_OPT_BIG_ENDIAN | XP_LIBXL_OPT_LEGACY))
		return wrap_fail(w, XP_EHEADER, "libxl header at offset %"
		    PRIu64 ": options 0x%x set reserved bits 0x%x", o + 12,
		    options, options & ~(XP_LIBXL_OPT_BIG_ENDIAN |
		    XP_LIBXL_OPT_LEGACY));
	memset(&it, 0, sizeof it);
	it.kind = XP_WI_LIBXL_HEADER;
	it.offset = o;
	it.size = XP_LIBXL_HDR_SIZE;
	it.version = version;
	it.options = options;
	return wrap_yield(w, &it);
}

#define REC_FAIL(w, code, ...)						\
	wrap_rec_fail((w), (code), __VA_ARGS__)

static int __attribute__((format(printf, 3, 4)))
wrap_rec_fail(struct xp_wrap *w, int code, const char *fmt, ...)
{
	char	why[240];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	w->unit_offset = w->rec_offset;
	w->err.index = w->index;
	w->err.type = w->rtype;
	return wrap_fail(w, code, "libxl record %" PRIu64 " (%s) at offset %"
	    PRIu64 ": %s", w->index, xp_libxl_rec_name(w->rtype),
	    w->rec_offset, why);
}

/* Checks that need only the record header: type, length, order. */
static int
wrap_rec_hdr(struct xp_wrap *w, const uint8_t *p)
{
	uint32_t	type = xp_get32(0, p), len = xp_get32(0, p + 4);

	w->rtype = type;
	w->rlen = len;
	w->rec_offset = w->unit_offset;
	if (len > XP_LIBXL_REC_MAX)
		return REC_FAIL(w, XP_ETOOBIG, "length %u is above the maximum "
		    "%u", len, XP_LIBXL_REC_MAX);
	switch (type) {
	case XP_LIBXL_END:
	case XP_LIBXL_LIBXC_CONTEXT:
		if (len != 0)
			return REC_FAIL(w, XP_EBODY, "length %u, must be 0",
			    len);
		break;
	case XP_LIBXL_EMULATOR_XENSTORE_DATA:
	case XP_LIBXL_EMULATOR_CONTEXT:
		if (len < XP_LIBXL_EMU_HDR_SIZE)
			return REC_FAIL(w, XP_EBODY, "length %u is below the "
			    "emulator header (%u)", len, XP_LIBXL_EMU_HDR_SIZE);
		break;
	case XP_LIBXL_CHECKPOINT_END:
	case XP_LIBXL_CHECKPOINT_STATE:
		return REC_FAIL(w, XP_EORDER, "only in a checkpointed "
		    "(Remus/COLO) stream, which xmig does not read");
	default:
		return REC_FAIL(w, XP_ETYPE, "unknown %s record type (libxl "
		    "4.17 refuses every record it does not know)",
		    type & WIRE_REC_OPTIONAL ? "optional" : "mandatory");
	}

	if (!w->libxc_seen && type != XP_LIBXL_LIBXC_CONTEXT)
		return REC_FAIL(w, XP_EORDER, "before LIBXC_CONTEXT%s",
		    type == XP_LIBXL_END ? ": the stream has no libxc part" :
		    "");
	if (type == XP_LIBXL_LIBXC_CONTEXT && w->libxc_seen)
		return REC_FAIL(w, XP_EORDER, "a second LIBXC_CONTEXT");
	if (type == XP_LIBXL_EMULATOR_XENSTORE_DATA && (w->xs_seen ||
	    w->emu_seen))
		return REC_FAIL(w, XP_EORDER, "%s", w->xs_seen ? "a second "
		    "one" : "after EMULATOR_CONTEXT");
	if (type == XP_LIBXL_EMULATOR_CONTEXT && w->emu_seen)
		return REC_FAIL(w, XP_EORDER, "a second one");
	return 0;
}

/* The whole record is in p (body and padding): check it and yield it. */
static int
wrap_rec_body(struct xp_wrap *w, const uint8_t *p)
{
	struct xp_wrap_item	 it;
	const uint8_t		*d, *end;
	uint32_t		 i, len = w->rlen, n;
	size_t			 pad = pad8(len);

	for (i = 0; i < pad; i++) {
		if (p[len + i] != 0)
			return REC_FAIL(w, XP_EBODY, "padding octet %u is 0x%02x,"
			    " not 0", i, p[len + i]);
	}
	memset(&it, 0, sizeof it);
	it.kind = XP_WI_RECORD;
	it.offset = w->rec_offset;
	it.size = XP_LIBXL_RHDR_SIZE + (uint64_t)len + pad;
	it.index = w->index;
	it.type = w->rtype;
	it.length = len;
	it.body = p;

	switch (w->rtype) {
	case XP_LIBXL_EMULATOR_XENSTORE_DATA:
	case XP_LIBXL_EMULATOR_CONTEXT:
		it.emulator_id = xp_get32(0, p);
		it.emulator_index = xp_get32(0, p + 4);
		if (it.emulator_id > XP_LIBXL_EMU_MAX_ID)
			return REC_FAIL(w, XP_EBODY, "emulator id %u (0 unknown,"
			    " 1 qemu-traditional, 2 qemu-upstream)",
			    it.emulator_id);
		if (w->rtype == XP_LIBXL_EMULATOR_CONTEXT) {
			w->emu_seen = 1;
			break;
		}
		/* Packed "key\0value\0" pairs. */
		d = p + XP_LIBXL_EMU_HDR_SIZE;
		end = p + len;
		while (d < end) {
			for (n = 0; d + n < end && d[n] != '\0'; n++) {
				if (!((d[n] >= 'a' && d[n] <= 'z') ||
				    (d[n] >= 'A' && d[n] <= 'Z') ||
				    (d[n] >= '0' && d[n] <= '9') ||
				    strchr("-/_@", d[n]) != NULL))
					return REC_FAIL(w, XP_EBODY, "xenstore "
					    "pair %u: key octet 0x%02x at body "
					    "offset %u is not alphanumeric or "
					    "-/_@", it.xs_pairs, d[n],
					    (unsigned)(d + n - p));
			}
			if (n == 0 || d + n == end)
				return REC_FAIL(w, XP_EBODY, "xenstore pair %u "
				    "at body offset %u: %s", it.xs_pairs,
				    (unsigned)(d - p), n == 0 ? "empty key" :
				    "key not NUL-terminated");
			d += n + 1;
			for (n = 0; d + n < end && d[n] != '\0'; n++)
				;
			if (d + n == end)
				return REC_FAIL(w, XP_EBODY, "xenstore pair %u: "
				    "value %s at body offset %u", it.xs_pairs,
				    d == end ? "missing" : "not NUL-terminated",
				    (unsigned)(d - p));
			d += n + 1;
			it.xs_pairs++;
		}
		w->xs_seen = 1;
		break;
	}
	return wrap_yield(w, &it);
}

/* A whole unit has been gathered (or is whole in the input at p). */
static int
wrap_unit(struct xp_wrap *w, const uint8_t *p)
{
	int	rc;

	switch (w->state) {
	case W_XL_HDR:
		if ((rc = wrap_xl_fixed(w, p)) != 0)
			return rc;
		wrap_expect(w, W_XL_OPT, w->xl_optlen);
		if (w->xl_optlen == 0) {
			if ((rc = wrap_xl_optdata(w, p)) != 0)
				return rc;
			wrap_expect(w, W_LIBXL_HDR, XP_LIBXL_HDR_SIZE);
		}
		return 0;
	case W_XL_OPT:
		if ((rc = wrap_xl_optdata(w, p)) != 0)
			return rc;
		wrap_expect(w, W_LIBXL_HDR, XP_LIBXL_HDR_SIZE);
		return 0;
	case W_LIBXL_HDR:
		if ((rc = wrap_libxl_hdr(w, p)) != 0)
			return rc;
		wrap_expect(w, W_REC_HDR, XP_LIBXL_RHDR_SIZE);
		return 0;
	case W_REC_HDR:
		if ((rc = wrap_rec_hdr(w, p)) != 0)
			return rc;
		if (w->rlen != 0) {
			w->state = W_REC_BODY;
			w->need = (size_t)w->rlen + pad8(w->rlen);
			w->unit.len = 0;
			return 0;
		}
		/* An empty record is complete. */
		/* FALLTHROUGH */
	case W_REC_BODY:
		if ((rc = wrap_rec_body(w, p)) != 0)
			return rc;
		w->index++;
		if (w->rtype == XP_LIBXL_LIBXC_CONTEXT) {
			w->libxc_seen = 1;
			w->libxc_offset = w->offset;
			w->state = W_LIBXC;
			w->need = 0;
		} else if (w->rtype == XP_LIBXL_END) {
			w->state = W_DONE;
			w->need = 0;
		} else
			wrap_expect(w, W_REC_HDR, XP_LIBXL_RHDR_SIZE);
		return 0;
	default:
		return wrap_fail(w, XP_EINVAL, "internal: no unit in state %d",
		    (int)w->state);
	}
}

ssize_t
xp_wrap_feed(struct xp_wrap *w, const uint8_t *buf, size_t len)
{
	size_t	used = 0, take;
	int	rc;

	while (used < len) {
		switch (w->state) {
		case W_FAILED:
			return -w->err.code;
		case W_LIBXC:
			if (used == 0) {
				w->err.code = XP_EINVAL;
				snprintf(w->err.msg, sizeof w->err.msg, "offset %"
				    PRIu64 ": the libxc stream is being read, "
				    "not libxl's records", w->offset);
				return -XP_EINVAL;
			}
			return (ssize_t)used;
		case W_DONE:
			w->unit_offset = w->offset;
			wrap_fail(w, XP_ETRAILING, "offset %" PRIu64 ": data "
			    "after libxl's END record", w->offset);
			return -XP_ETRAILING;
		default:
			break;
		}
		take = w->need - w->unit.len;
		if (take > len - used)
			take = len - used;
		if (w->unit.len == 0 && take == w->need) {
			/* Whole in the input: no copy. */
			w->offset += take;
			used += take;
			if ((rc = wrap_unit(w, buf + used - take)) != 0)
				return rc;
			continue;
		}
		if (buf_append(&w->unit, buf + used, take) != 0)
			return wrap_fail(w, XP_ENOMEM, "offset %" PRIu64 ": out "
			    "of memory for %zu octets", w->offset, w->need);
		w->offset += take;
		used += take;
		if (w->unit.len == w->need && (rc = wrap_unit(w,
		    w->unit.data)) != 0)
			return rc;
	}
	return (ssize_t)used;
}

int
xp_wrap_in_libxc(const struct xp_wrap *w)
{
	return w->state == W_LIBXC;
}

int
xp_wrap_libxc_end(struct xp_wrap *w, uint64_t len)
{
	if (w->state != W_LIBXC)
		return -XP_EINVAL;
	w->offset += len;
	w->libxc_done = 1;
	wrap_expect(w, W_REC_HDR, XP_LIBXL_RHDR_SIZE);
	return 0;
}

int
xp_wrap_finish(struct xp_wrap *w)
{
	const char	*what;

	switch (w->state) {
	case W_DONE:
		return 0;
	case W_FAILED:
		return -w->err.code;
	case W_XL_HDR:
		what = "the xl header";
		break;
	case W_XL_OPT:
		what = "xl's optional data (the domain config)";
		break;
	case W_LIBXL_HDR:
		what = "libxl's stream header";
		break;
	case W_REC_HDR:
		if (w->unit.len == 0) {
			w->unit_offset = w->offset;
			return wrap_fail(w, XP_ETRUNCATED, "offset %" PRIu64
			    ": the input ends before libxl's END record%s",
			    w->offset, w->libxc_done ? " (after the libxc "
			    "stream)" : "");
		}
		what = "a libxl record header";
		break;
	case W_REC_BODY:
		w->unit_offset = w->rec_offset;
		return wrap_fail(w, XP_ETRUNCATED, "libxl record %" PRIu64
		    " (%s) at offset %" PRIu64 ": the input ends at offset %"
		    PRIu64 ", inside its %zu octets of body and padding",
		    w->index, xp_libxl_rec_name(w->rtype), w->rec_offset,
		    w->offset, w->need);
	case W_LIBXC:
		w->unit_offset = w->offset;
		return wrap_fail(w, XP_ETRUNCATED, "offset %" PRIu64 ": the "
		    "input ends where the libxc stream should be", w->offset);
	default:
		what = "?";
		break;
	}
	return wrap_fail(w, XP_ETRUNCATED, "offset %" PRIu64 ": the input ends "
	    "after %zu of the %zu octets of %s (at offset %" PRIu64 ")",
	    w->offset, w->unit.len, w->need, what, w->unit_offset);
}

int
xp_wrap_done(const struct xp_wrap *w)
{
	return w->state == W_DONE;
}

uint64_t
xp_wrap_offset(const struct xp_wrap *w)
{
	return w->offset;
}

uint64_t
xp_wrap_libxc_offset(const struct xp_wrap *w)
{
	return w->libxc_offset;
}

const struct xp_error *
xp_wrap_error(const struct xp_wrap *w)
{
	return &w->err;
}
