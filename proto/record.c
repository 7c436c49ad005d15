/*
 * record.c -- the record type registry, record framing (header, padding,
 * draft-B footer and CRC-32), and the per-record rules that depend on the
 * stream: lengths, domain kinds and ordering.  Body layouts are checked by
 * the body_check_* functions in body.c, which the registry points to.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto-int.h"

/*
 * The catalogue, indexed by type.  min_len and max_len are checked as soon
 * as a record header arrives, before its body is buffered; the check
 * function sees the whole body once its checksum (draft-B) has been
 * verified.
 */
static const struct record_type record_types[REC_NR_MANDATORY] = {
	[REC_END] = {
		.type = REC_END,
		.name = "END",
		.min_len = 0, .max_len = 0,
		.doms = REC_DOM_ALL,
	},
	[REC_PAGE_DATA] = {
		.type = REC_PAGE_DATA,
		.name = "PAGE_DATA",
		.min_len = 16, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_ALL,
		.flags = REC_F_NEEDS_SDE,
		.check = body_check_page_data,
	},
	[REC_X86_PV_INFO] = {
		.type = REC_X86_PV_INFO,
		.name = "X86_PV_INFO",
		.min_len = WIRE_X86_PV_INFO_SIZE,
		.max_len = WIRE_X86_PV_INFO_SIZE,
		.doms = REC_DOM_PV,
		.flags = REC_F_ONCE,
		.check = body_check_pv_info,
	},
	[REC_X86_PV_P2M_FRAMES] = {
		.type = REC_X86_PV_P2M_FRAMES,
		.name = "X86_PV_P2M_FRAMES",
		.min_len = 16, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_PV,
		.flags = REC_F_NEEDS_SDE | REC_F_NEEDS_PV_INFO,
		.check = body_check_p2m_frames,
	},
	[REC_X86_PV_VCPU_BASIC] = {
		.type = REC_X86_PV_VCPU_BASIC,
		.name = "X86_PV_VCPU_BASIC",
		.min_len = WIRE_VCPU_HDR_SIZE + WIRE_VCPU_BASIC_32,
		.max_len = WIRE_VCPU_HDR_SIZE + WIRE_VCPU_BASIC_64,
		.doms = REC_DOM_PV,
		.check = body_check_vcpu_basic,
	},
	[REC_X86_PV_VCPU_EXTENDED] = {
		.type = REC_X86_PV_VCPU_EXTENDED,
		.name = "X86_PV_VCPU_EXTENDED",
		.min_len = WIRE_VCPU_HDR_SIZE,
		.max_len = WIRE_VCPU_HDR_SIZE + WIRE_VCPU_EXT_MAX,
		.doms = REC_DOM_PV,
		.check = body_check_vcpu_extended,
	},
	[REC_X86_PV_VCPU_XSAVE] = {
		.type = REC_X86_PV_VCPU_XSAVE,
		.name = "X86_PV_VCPU_XSAVE",
		.min_len = WIRE_VCPU_HDR_SIZE, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_PV,
		.check = body_check_vcpu_xsave,
	},
	[REC_SHARED_INFO] = {
		.type = REC_SHARED_INFO,
		.name = "SHARED_INFO",
		.min_len = 0, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_PV,
		.flags = REC_F_PAGE_SIZED | REC_F_NEEDS_PV_INFO,
	},
	[REC_X86_TSC_INFO] = {
		.type = REC_X86_TSC_INFO,
		.name = "X86_TSC_INFO",
		.min_len = WIRE_TSC_INFO_SIZE, .max_len = WIRE_TSC_INFO_SIZE,
		.doms = REC_DOM_X86,
		.check = body_check_tsc_info,
	},
	[REC_HVM_CONTEXT] = {
		.type = REC_HVM_CONTEXT,
		.name = "HVM_CONTEXT",
		.min_len = 1, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_HVM | REC_DOM_PVH,
	},
	[REC_HVM_PARAMS] = {
		.type = REC_HVM_PARAMS,
		.name = "HVM_PARAMS",
		.min_len = 8, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_HVM | REC_DOM_PVH,
		.check = body_check_hvm_params,
	},
	[REC_TOOLSTACK] = {
		.type = REC_TOOLSTACK,
		.name = "TOOLSTACK",
		.min_len = 0, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_ALL,
		.flags = REC_F_NO_WRITE,
	},
	[REC_X86_PV_VCPU_MSRS] = {
		.type = REC_X86_PV_VCPU_MSRS,
		.name = "X86_PV_VCPU_MSRS",
		.min_len = WIRE_VCPU_HDR_SIZE, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_PV,
		.check = body_check_vcpu_msrs,
	},
	[REC_VERIFY] = {
		.type = REC_VERIFY,
		.name = "VERIFY",
		.min_len = 0, .max_len = 0,
		.doms = REC_DOM_ALL,
	},
	[REC_CHECKPOINT] = {
		.type = REC_CHECKPOINT,
		.name = "CHECKPOINT",
		.min_len = 0, .max_len = 0,
		.doms = REC_DOM_ALL,
	},
	[REC_CHECKPOINT_DIRTY_PFN_LIST] = {
		.type = REC_CHECKPOINT_DIRTY_PFN_LIST,
		.name = "CHECKPOINT_DIRTY_PFN_LIST",
		.min_len = 0, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL,
		.check = body_check_dirty_pfns,
	},
	[REC_STATIC_DATA_END] = {
		.type = REC_STATIC_DATA_END,
		.name = "STATIC_DATA_END",
		.min_len = 0, .max_len = 0,
		.doms = REC_DOM_ALL,
		.flags = REC_F_ONCE | REC_F_NOT_V2,
	},
	[REC_X86_CPUID_POLICY] = {
		.type = REC_X86_CPUID_POLICY,
		.name = "X86_CPUID_POLICY",
		.min_len = WIRE_CPUID_LEAF_SIZE, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_X86,
		.flags = REC_F_STATIC | REC_F_NOT_V2,
		.check = body_check_cpuid_policy,
	},
	[REC_X86_MSR_POLICY] = {
		.type = REC_X86_MSR_POLICY,
		.name = "X86_MSR_POLICY",
		.min_len = WIRE_MSR_ENTRY_SIZE, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_X86,
		.flags = REC_F_STATIC | REC_F_NOT_V2,
		.check = body_check_msr_policy,
	},
};

/*
 * Project extensions: optional types (bit 31 set) that xmig defines, SPEC
 * sections 12 and 13.  A reader that does not know them skips them; this
 * one checks them.  The back-channel and control records are refused in
 * a forward stream before END; the control parser (control.c) takes them.
 * The list ends with an entry without a name.
 */
static const struct record_type record_ext[] = {
	{
		.type = REC_XMIG_NEGOTIATE,
		.name = "XMIG_NEGOTIATE",
		.min_len = WIRE_NEGOTIATE_SIZE, .max_len = WIRE_NEGOTIATE_SIZE,
		.doms = REC_DOM_ALL,
		.flags = REC_F_FIRST,
		.check = body_check_negotiate,
	},
	{
		.type = REC_XMIG_ZERO_PAGES,
		.name = "XMIG_ZERO_PAGES",
		.min_len = 16, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_ALL,
		.flags = REC_F_NEEDS_SDE,
		.check = body_check_zero_pages,
	},
	{
		.type = REC_XMIG_DELTA_PAGES,
		.name = "XMIG_DELTA_PAGES",
		.min_len = 8 + 12, .max_len = REC_LEN_ANY,
		.doms = REC_DOM_ALL,
		.flags = REC_F_NEEDS_SDE,
		.check = delta_check_pages,
	},
	{
		.type = REC_XMIG_DOMAIN_CONFIG,
		.name = "XMIG_DOMAIN_CONFIG",
		.min_len = WIRE_CONFIG_HDR_SIZE + 1,
		.max_len = WIRE_CONFIG_HDR_SIZE + WIRE_CONFIG_TEXT_MAX,
		.doms = REC_DOM_ALL,
		.flags = REC_F_EARLY,
		.check = body_check_config,
	},
	{
		.type = REC_XMIG_EARLY_PARAMS,
		.name = "XMIG_EARLY_PARAMS",
		.min_len = 8 + 16,
		.max_len = 8 + 16 * WIRE_EARLY_PARAMS_MAX,
		.doms = REC_DOM_HVM | REC_DOM_PVH,
		.flags = REC_F_NEEDS_SDE,
		.check = body_check_early_params,
	},
	{
		.type = REC_XMIG_HANDOVER,
		.name = "XMIG_HANDOVER",
		.min_len = WIRE_HANDOVER_SIZE, .max_len = WIRE_HANDOVER_SIZE,
		.doms = REC_DOM_ALL,
		.flags = REC_F_CONTROL,
		.check = control_check_handover,
	},
	{
		.type = REC_XMIG_REPLY,
		.name = "XMIG_REPLY",
		.min_len = WIRE_REPLY_MIN,
		.max_len = WIRE_REPLY_MIN + WIRE_MESSAGE_MAX,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_reply,
	},
	{
		.type = REC_XMIG_ACK,
		.name = "XMIG_ACK",
		.min_len = WIRE_ACK_SIZE, .max_len = WIRE_ACK_SIZE,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_ack,
	},
	{
		.type = REC_XMIG_ERROR,
		.name = "XMIG_ERROR",
		.min_len = WIRE_ERROR_MIN,
		.max_len = WIRE_ERROR_MIN + WIRE_MESSAGE_MAX,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_error,
	},
	{
		.type = REC_XMIG_STATUS,
		.name = "XMIG_STATUS",
		.min_len = WIRE_STATUS_MIN,
		.max_len = WIRE_STATUS_MIN + WIRE_MESSAGE_MAX,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_status,
	},
	{
		.type = REC_XMIG_DIGESTS,
		.name = "XMIG_DIGESTS",
		.min_len = WIRE_DIGESTS_SIZE, .max_len = WIRE_DIGESTS_SIZE,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_digests,
	},
	{
		.type = REC_XMIG_CHECKPOINT_ACK,
		.name = "XMIG_CHECKPOINT_ACK",
		.min_len = WIRE_CHECKPOINT_ACK_SIZE,
		.max_len = WIRE_CHECKPOINT_ACK_SIZE,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_checkpoint_ack,
	},
	{
		.type = REC_XMIG_STREAMS,
		.name = "XMIG_STREAMS",
		.min_len = WIRE_STREAMS_SIZE, .max_len = WIRE_STREAMS_SIZE,
		.doms = REC_DOM_ALL,
		.flags = REC_F_BACKCHANNEL | REC_F_BACK,
		.check = control_check_streams,
	},
	{ .name = NULL },
};

const struct record_type *
record_type_find(uint32_t type)
{
	const struct record_type	*rt;

	if (type < REC_NR_MANDATORY)
		return &record_types[type];
	for (rt = record_ext; rt->name != NULL; rt++) {
		if (rt->type == type)
			return rt;
	}
	return NULL;
}

const char *
record_type_name(uint32_t type)
{
	static _Thread_local char	 name[32];
	const struct record_type	*rt;

	if ((rt = record_type_find(type)) != NULL)
		return rt->name;
	if (type & WIRE_REC_OPTIONAL)
		snprintf(name, sizeof name, "OPTIONAL_0x%08x", type);
	else
		snprintf(name, sizeof name, "UNKNOWN_0x%x", type);
	return name;
}

int
record_type_known(uint32_t type)
{
	return record_type_find(type) != NULL;
}

/* ---- framing ------------------------------------------------------------ */

size_t
record_hdr_size(const struct xp_stream *st)
{
	return st->dialect == XP_XEN ? WIRE_RHDR_SIZE_XEN :
	    WIRE_RHDR_SIZE_DRAFTB;
}

static size_t
record_pad(uint32_t len)
{
	return (WIRE_REC_ALIGN - len % WIRE_REC_ALIGN) % WIRE_REC_ALIGN;
}

size_t
record_trailer_size(const struct xp_stream *st, uint32_t len)
{
	return record_pad(len) +
	    (st->dialect == XP_XEN ? 0 : WIRE_FOOTER_SIZE);
}

size_t
record_wire_size(const struct xp_stream *st, uint32_t len)
{
	return record_hdr_size(st) + (size_t)len + record_trailer_size(st, len);
}

void
record_hdr_put(const struct xp_stream *st, uint8_t *out, uint32_t type,
    uint32_t len, uint16_t options)
{
	int	be = st->big_endian;

	xp_put32(be, out, type);
	xp_put32(be, out + 4, len);
	if (st->dialect == XP_XEN)
		return;
	xp_put16(be, out + 8, options);
	memset(out + 10, 0, 6);
}

void
record_trailer_put(const struct xp_stream *st, uint8_t *out, uint32_t len,
    uint16_t options, uint32_t crc)
{
	size_t	pad = record_pad(len);

	memset(out, 0, pad);
	if (st->dialect == XP_XEN)
		return;
	if (pad != 0)
		crc = xp_crc32(crc, out, pad);
	xp_put32(st->big_endian, out + pad,
	    (options & WIRE_REC_OPT_CHECKSUM) ? crc : 0);
	xp_put32(st->big_endian, out + pad + 4, 0);
}

/*
 * Append one whole record to out.  Refuses (-XP_EINVAL) option bits this
 * version does not know and types that are never written (TOOLSTACK).
 */
int
record_encode(const struct xp_stream *st, struct xp_buf *out, uint32_t type,
    const void *body, uint32_t len, uint16_t options)
{
	const struct record_type	*rt;
	size_t				 hs, ts;
	uint8_t				*p;
	uint32_t			 crc = 0;
	int				 rv;

	if (len > WIRE_REC_LENGTH_MAX)
		return -XP_ETOOBIG;
	if (len != 0 && body == NULL)
		return -XP_EINVAL;
	if (st->dialect == XP_XEN) {
		if (options & WIRE_REC_OPT_COMPRESSED)
			return -XP_EINVAL;	/* no options to carry it */
		options = 0;
	} else if (options & ~WIRE_REC_OPT_KNOWN)
		return -XP_EINVAL;
	if ((options & WIRE_REC_OPT_COMPRESSED) && (type != REC_PAGE_DATA ||
	    (options & WIRE_REC_OPT_COMPRESSED) == WIRE_REC_OPT_COMPRESSED))
		return -XP_EINVAL;
	rt = record_type_find(type);
	if (rt != NULL && (rt->flags & REC_F_NO_WRITE))
		return -XP_EINVAL;

	hs = record_hdr_size(st);
	ts = record_trailer_size(st, len);
	if ((rv = buf_reserve(out, hs + len + ts)) != 0)
		return rv;
	p = out->data + out->len;
	record_hdr_put(st, p, type, len, options);
	if (len != 0)
		memcpy(p + hs, body, len);
	if (options & WIRE_REC_OPT_CHECKSUM)
		crc = xp_crc32(0, p, hs + len);
	record_trailer_put(st, p + hs + len, len, options, crc);
	out->len += hs + len + ts;
	return 0;
}

/*
 * A whole PAGE_DATA record, its page data deflated when options has
 * WIRE_REC_OPT_DEFLATE, in a zstd frame with WIRE_REC_OPT_ZSTD.  Built in
 * place at the end of out.
 */
int
record_encode_pages(const struct xp_stream *st, struct xp_buf *out,
    uint32_t count, const uint64_t *entries, const uint8_t *pages,
    size_t pages_len, uint16_t options, int level)
{
	size_t		 hs = record_hdr_size(st), ts, start = out->len, body;
	uint64_t	 ndata = 0;
	uint32_t	 i, crc = 0;
	uint8_t		*p;
	uint16_t	 codec = options & WIRE_REC_OPT_COMPRESSED;
	int		 rv, deflate = codec != 0;

	if (count == 0 || count > WIRE_REC_LENGTH_MAX / 8 || entries == NULL ||
	    codec == WIRE_REC_OPT_COMPRESSED)
		return -XP_EINVAL;
	if (st->dialect == XP_XEN) {
		if (deflate)
			return -XP_EINVAL;	/* no options to carry it */
		options = 0;
	} else if (options & ~WIRE_REC_OPT_KNOWN)
		return -XP_EINVAL;
	for (i = 0; i < count; i++) {
		if (body_page_type_has_data((unsigned)(entries[i] >>
		    WIRE_PFN_TYPE_SHIFT)))
			ndata++;
	}
	if (pages_len != ndata << st->page_shift ||
	    (pages_len != 0 && pages == NULL))
		return -XP_EINVAL;
	if (!deflate && 8 + (uint64_t)count * 8 + pages_len >
	    WIRE_REC_LENGTH_MAX)
		return -XP_ETOOBIG;

	if ((p = buf_extend(out, hs + 8 + (size_t)count * 8)) == NULL)
		return -XP_ENOMEM;
	body_page_data_prefix_put(st->big_endian, p + hs, count, entries);
	if (deflate)
		rv = body_page_data_compress(st->big_endian, codec, level,
		    pages, pages_len, out);
	else
		rv = buf_append(out, pages, pages_len);
	body = out->len - start - hs;
	if (rv == 0 && body > WIRE_REC_LENGTH_MAX)
		rv = -XP_ETOOBIG;
	ts = record_trailer_size(st, (uint32_t)body);
	if (rv == 0 && buf_extend(out, ts) == NULL)
		rv = -XP_ENOMEM;
	if (rv != 0) {
		out->len = start;
		return rv;
	}
	p = out->data + start;
	record_hdr_put(st, p, REC_PAGE_DATA, (uint32_t)body, options);
	if (options & WIRE_REC_OPT_CHECKSUM)
		crc = xp_crc32(0, p, hs + body);
	record_trailer_put(st, p + hs + body, (uint32_t)body, options, crc);
	return 0;
}

/* ---- per-stream rules --------------------------------------------------- */

/* Record a rejection reason in ck->why; returns code (negative). */
int
record_why(struct xp_check *ck, int code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(ck->why, sizeof ck->why, fmt, ap);
	va_end(ap);
	return code;
}

static const char *
record_dom_name(unsigned dom)
{
	switch (dom) {
	case REC_DOM_PV:
		return "x86 PV";
	case REC_DOM_HVM:
		return "x86 HVM";
	case REC_DOM_PVH:
		return "x86 PVH";
	default:
		return "ARM";
	}
}

static int
record_seen(const struct xp_check *ck, uint32_t type)
{
	return type < REC_NR_MANDATORY &&
	    (ck->seen[type / 64] & (1ULL << (type % 64))) != 0;
}

void
record_check_init(struct xp_check *ck, const struct xp_stream *st,
    const struct xp_limits *lim)
{
	memset(ck, 0, sizeof *ck);
	ck->st = st;
	ck->max_record_len = WIRE_REC_LENGTH_MAX;
	ck->max_pfn = XP_DEFAULT_MAX_PFN;
	ck->max_vcpus = XP_DEFAULT_MAX_VCPUS;
	if (lim != NULL) {
		if (lim->max_record_len != 0 &&
		    lim->max_record_len < WIRE_REC_LENGTH_MAX)
			ck->max_record_len = lim->max_record_len;
		if (lim->max_pfn != 0 && lim->max_pfn < XP_DEFAULT_MAX_PFN)
			ck->max_pfn = lim->max_pfn;
		if (lim->max_vcpus != 0)
			ck->max_vcpus = lim->max_vcpus;
	}
	ck->page_size = 1u << st->page_shift;
	if (st->arch == WIRE_ARCH_ARM)
		ck->dom = REC_DOM_ARM;
	else if (st->dom_type == WIRE_DOM_X86_PV)
		ck->dom = REC_DOM_PV;
	else if (st->dom_type == WIRE_DOM_X86_PVH)
		ck->dom = REC_DOM_PVH;
	else
		ck->dom = REC_DOM_HVM;
}

/*
 * The checks a record header allows, before the body is buffered: type,
 * options, length and place in the stream.  *known is set to 0 for an
 * unknown optional record (which is then only held to the length maximum).
 */
int
record_check_hdr(struct xp_check *ck, uint32_t type, uint32_t len,
    uint16_t options, int *known)
{
	const struct record_type	*rt;
	const struct xp_stream		*st = ck->st;

	*known = 0;
	rt = record_type_find(type);
	if (rt == NULL && (type & WIRE_REC_OPTIONAL) == 0)
		return record_why(ck, -XP_ETYPE, "unknown mandatory record "
		    "type 0x%08x", type);
	if (st->dialect == XP_DRAFTB && (options & ~WIRE_REC_OPT_KNOWN))
		return record_why(ck, -XP_EOPTIONS, "unknown option bits "
		    "0x%04x", options & ~WIRE_REC_OPT_KNOWN);
	if (st->dialect == XP_DRAFTB && (options & WIRE_REC_OPT_COMPRESSED) &&
	    type != REC_PAGE_DATA)
		return record_why(ck, -XP_EOPTIONS, "option bit %s is only "
		    "valid on PAGE_DATA", (options & WIRE_REC_OPT_DEFLATE) ?
		    "1 (DEFLATE)" : "2 (ZSTD)");
	if (st->dialect == XP_DRAFTB && (options & WIRE_REC_OPT_COMPRESSED) ==
	    WIRE_REC_OPT_COMPRESSED)
		return record_why(ck, -XP_EOPTIONS, "option bits 1 (DEFLATE) "
		    "and 2 (ZSTD) exclude each other");
	if (len > ck->max_record_len)
		return record_why(ck, -XP_ETOOBIG, "length %u is above the "
		    "record maximum %u", len, ck->max_record_len);
	if (rt == NULL)
		return 0;
	*known = 1;

	if (len < rt->min_len)
		return record_why(ck, -XP_EBODY, "length %u is below the "
		    "minimum %u", len, rt->min_len);
	if (rt->max_len != REC_LEN_ANY && len > rt->max_len)
		return record_why(ck, -XP_EBODY, "length %u is above the "
		    "maximum %u", len, rt->max_len);
	if ((rt->flags & REC_F_PAGE_SIZED) && len != ck->page_size)
		return record_why(ck, -XP_EBODY, "length %u is not the page "
		    "size %u", len, ck->page_size);

	if ((rt->doms & ck->dom) == 0)
		return record_why(ck, -XP_EORDER, "not allowed in an %s "
		    "stream", record_dom_name(ck->dom));
	if (rt->flags & REC_F_BACKCHANNEL)
		return record_why(ck, -XP_EORDER, "only valid on a "
		    "back-channel, not in a forward stream");
	if (rt->flags & REC_F_CONTROL)
		return record_why(ck, -XP_EORDER, "only valid on the control "
		    "channel after END, not in the stream before it");
	if ((rt->flags & REC_F_FIRST) &&
	    !(st->ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL))
		return record_why(ck, -XP_EORDER, "only valid when the image "
		    "header offers a back-channel (options bit 1)");
	if ((rt->flags & REC_F_FIRST) && ck->index != 0)
		return record_why(ck, -XP_EORDER, "only valid as the first "
		    "record after the domain header");
	if ((rt->flags & REC_F_EARLY) && ck->index != 0 &&
	    !(ck->index == 1 && ck->negotiate))
		return record_why(ck, -XP_EORDER, "only valid as the first "
		    "record after the domain header, or the second after "
		    "XMIG_NEGOTIATE");
	if ((rt->flags & REC_F_NOT_V2) && st->dialect == XP_XEN &&
	    st->version < 3)
		return record_why(ck, -XP_EORDER, "not allowed in a Xen v2 "
		    "stream");
	if ((rt->flags & REC_F_ONCE) && record_seen(ck, type))
		return record_why(ck, -XP_EORDER, "second %s record",
		    rt->name);
	if ((rt->flags & REC_F_STATIC) && ck->sde)
		return record_why(ck, -XP_EORDER, "static data after "
		    "STATIC_DATA_END");
	if ((rt->flags & REC_F_NEEDS_SDE) && !ck->sde &&
	    !(st->dialect == XP_XEN && st->version < 3))
		return record_why(ck, -XP_EORDER, "no STATIC_DATA_END seen");
	if ((rt->flags & REC_F_NEEDS_PV_INFO) &&
	    !record_seen(ck, REC_X86_PV_INFO))
		return record_why(ck, -XP_EORDER, "no X86_PV_INFO seen");
	return 0;
}

/* Body rules of a known type; the header checks have passed. */
int
record_check_body(struct xp_check *ck, uint32_t type, uint16_t options,
    const uint8_t *body, uint32_t len)
{
	const struct record_type	*rt;

	ck->options = options;
	if ((rt = record_type_find(type)) == NULL || rt->check == NULL)
		return 0;
	return rt->check(ck, body, len);
}

/*
 * A record of a known type has passed every check: note what later
 * records depend on.  Returns XP_REC_* flags for the record.
 */
uint32_t
record_commit(struct xp_check *ck, uint32_t type, const uint8_t *body,
    uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	flags = 0, end;

	if (type < REC_NR_MANDATORY)
		ck->seen[type / 64] |= 1ULL << (type % 64);

	switch (type) {
	case REC_XMIG_NEGOTIATE:
		ck->negotiate = 1;
		break;
	case REC_STATIC_DATA_END:
		ck->sde = 1;
		break;
	case REC_X86_PV_INFO:
		ck->guest_width = body[0];
		break;
	case REC_X86_PV_P2M_FRAMES:
		end = xp_get32(be, body + 4);
		if (!ck->p2m || end > ck->p2m_end_pfn)
			ck->p2m_end_pfn = end;
		ck->p2m = 1;
		/* FALLTHROUGH */
	case REC_PAGE_DATA:
	case REC_XMIG_ZERO_PAGES:
	case REC_XMIG_DELTA_PAGES:
		if (!ck->sde) {
			/* Xen v2: static data ends before this record. */
			ck->sde = 1;
			flags |= XP_REC_SDE_INFERRED;
		}
		break;
	}
	(void)len;
	return flags;
}
