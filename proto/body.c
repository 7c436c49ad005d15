/*
 * body.c -- record bodies: the layout rules of each structured type, the
 * field-by-field byte-order conversion, PAGE_DATA helpers (including the
 * DEFLATE option: structure, inflation and deflation), and the bodies of
 * the forward extension records XMIG_NEGOTIATE and XMIG_ZERO_PAGES.
 *
 * Bodies are in the stream byte order (ck->st->big_endian).  Every check
 * returns 0 or a negative XP_E* code with the reason in ck->why.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "proto.h"
#include "proto-int.h"

/* ---- PAGE_DATA ---------------------------------------------------------- */

int
body_page_type_has_data(unsigned type)
{
	switch (type) {
	case PT_NOTAB:
	case PT_L1TAB:
	case PT_L2TAB:
	case PT_L3TAB:
	case PT_L4TAB:
	case PT_L1PIN:
	case PT_L2PIN:
	case PT_L3PIN:
	case PT_L4PIN:
		return 1;
	default:
		return 0;	/* BROKEN, XALLOC, XTAB; 0x5-0x8 are invalid */
	}
}

static int
body_page_type_valid(unsigned type)
{
	return type < 0x5 || type > 0x8;
}

void
body_page_data_prefix_put(int be, uint8_t *out, uint32_t count,
    const uint64_t *entries)
{
	uint32_t	i;

	xp_put32(be, out, count);
	xp_put32(be, out + 4, 0);
	for (i = 0; i < count; i++)
		xp_put64(be, out + 8 + (size_t)i * 8, entries[i]);
}

/* The receiver's limits on the pfn of entry i (PAGE_DATA, ZERO_PAGES, DELTA_PAGES). */
int
body_check_pfn(struct xp_check *ck, uint32_t i, uint64_t pfn)
{
	if (pfn >= ck->max_pfn)
		return record_why(ck, -XP_ELIMIT, "pfn entry %u: pfn "
		    "0x%" PRIx64 " is beyond the limit 0x%" PRIx64,
		    i, pfn, ck->max_pfn - 1);
	if (ck->dom == REC_DOM_PV && ck->p2m && pfn > ck->p2m_end_pfn)
		return record_why(ck, -XP_ELIMIT, "pfn entry %u: pfn "
		    "0x%" PRIx64 " is beyond p2m_end_pfn 0x%x", i, pfn,
		    ck->p2m_end_pfn);
	return 0;
}

/*
 * count bare pfns (type NOTAB, reserved bits zero) at p, each within the
 * receiver's limits (XMIG_ZERO_PAGES, XMIG_DELTA_PAGES).
 */
int
body_check_bare_pfns(struct xp_check *ck, const uint8_t *p, uint32_t count)
{
	uint32_t	i;
	uint64_t	e;
	int		rv;

	for (i = 0; i < count; i++) {
		e = xp_get64(ck->st->big_endian, p + (size_t)i * 8);
		if (e & ~WIRE_PFN_MASK)
			return record_why(ck, -XP_EBODY, "pfn entry %u "
			    "(0x%016" PRIx64 "): bits 63-52 are set (type and "
			    "reserved bits must be 0)", i, e);
		if ((rv = body_check_pfn(ck, i, e)) != 0)
			return rv;
	}
	return 0;
}

/*
 * DEFLATE (SPEC 12.2) and ZSTD (12.6): after the pfn entries, u32
 * raw_length and u32 deflated_length (ZSTD: compressed_length), then the
 * zlib stream or zstd frame.  That is decompressed by
 * body_page_data_inflate(), not here.
 */
static int
body_check_deflate(struct xp_check *ck, const uint8_t *b, uint32_t len,
    uint32_t count, uint32_t ndata)
{
	int		be = ck->st->big_endian;
	uint64_t	pre = 8 + (uint64_t)count * 8, raw, want;
	uint32_t	raw_length, zlen;
	const char	*zname = (ck->options & WIRE_REC_OPT_ZSTD) ?
			    "compressed_length" : "deflated_length";

	if (len < pre + WIRE_DEFLATE_HDR_SIZE)
		return record_why(ck, -XP_EBODY, "length %u is too short for "
		    "%u pfn entries, raw_length and %s", len, count, zname);
	raw_length = xp_get32(be, b + pre);
	zlen = xp_get32(be, b + pre + 4);
	raw = (uint64_t)ndata * ck->page_size;
	if (raw_length != raw)
		return record_why(ck, -XP_EBODY, "raw_length %u is not %"
		    PRIu64 " (%u pfn entries with page data)", raw_length, raw,
		    ndata);
	if (pre + raw > ck->max_record_len)
		return record_why(ck, -XP_ETOOBIG, "inflated, the body would "
		    "be %" PRIu64 " octets, above the record maximum %u",
		    pre + raw, ck->max_record_len);
	want = pre + WIRE_DEFLATE_HDR_SIZE + zlen;
	if (len != want)
		return record_why(ck, -XP_EBODY, "length %u is not %" PRIu64
		    " (%u pfn entries and %s %u)", len, want, count, zname,
		    zlen);
	return 0;
}

/*
 * u32 count, u32 reserved, u64 pfn[count], then page_size octets for each
 * entry whose type carries data (or, with the DEFLATE option, the lengths
 * and the zlib stream of that data).
 */
int
body_check_page_data(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	count, res, i, ndata = 0;
	uint64_t	e, pfn, want;
	unsigned	type;
	int		rv;

	count = xp_get32(be, b);
	res = xp_get32(be, b + 4);
	if (count == 0)
		return record_why(ck, -XP_EBODY, "count is 0");
	if (count > ck->max_record_len / 8)
		return record_why(ck, -XP_EBODY, "count %u is above the "
		    "maximum %u", count, ck->max_record_len / 8);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	if (len < 8 + (uint64_t)count * 8)
		return record_why(ck, -XP_EBODY, "length %u is too short for "
		    "%u pfn entries", len, count);

	for (i = 0; i < count; i++) {
		e = xp_get64(be, b + 8 + (size_t)i * 8);
		type = (unsigned)(e >> WIRE_PFN_TYPE_SHIFT);
		pfn = e & WIRE_PFN_MASK;
		if (e & WIRE_PFN_RES_MASK)
			return record_why(ck, -XP_EBODY, "pfn entry %u "
			    "(0x%016" PRIx64 "): reserved bits 59-52 are set",
			    i, e);
		if (!body_page_type_valid(type))
			return record_why(ck, -XP_EBODY, "pfn entry %u "
			    "(0x%016" PRIx64 "): page type 0x%x is reserved",
			    i, e, type);
		if ((rv = body_check_pfn(ck, i, pfn)) != 0)
			return rv;
		if (body_page_type_has_data(type))
			ndata++;
	}

	if (ck->options & WIRE_REC_OPT_COMPRESSED)
		return body_check_deflate(ck, b, len, count, ndata);
	want = 8 + (uint64_t)count * 8 + (uint64_t)ndata * ck->page_size;
	if (len != want)
		return record_why(ck, -XP_EBODY, "length %u is not %" PRIu64
		    " (%u pfn entries, %u of them with page data)", len, want,
		    count, ndata);
	return 0;
}

/* ---- x86 PV ------------------------------------------------------------- */

/* u8 guest_width, u8 pt_levels, 6 reserved: 8 octets (checked by length). */
int
body_check_pv_info(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	unsigned	width = b[0], levels = b[1];
	uint32_t	i;

	if (!(width == 4 && levels == 3) && !(width == 8 && levels == 4))
		return record_why(ck, -XP_EBODY, "guest_width %u with "
		    "pt_levels %u is neither 4 with 3 nor 8 with 4", width,
		    levels);
	for (i = 2; i < len; i++) {
		if (b[i] != 0)
			return record_why(ck, -XP_EBODY, "reserved octet %u is "
			    "0x%02x, not 0", i, b[i]);
	}
	return 0;
}

/*
 * u32 p2m_start_pfn, u32 p2m_end_pfn, u64 p2m_pfn[]: one entry per frame of
 * the guest's p2m that covers start..end, fpp = page_size / guest_width
 * entries to a frame.
 */
int
body_check_p2m_frames(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	start, end, fpp, i, n;
	uint64_t	frames, want, pfn;

	if (len % 8 != 0)
		return record_why(ck, -XP_EBODY, "length %u is not a multiple "
		    "of 8", len);
	start = xp_get32(be, b);
	end = xp_get32(be, b + 4);
	if (start > end)
		return record_why(ck, -XP_EBODY, "p2m_start_pfn 0x%x is above "
		    "p2m_end_pfn 0x%x", start, end);
	if (end >= ck->max_pfn)
		return record_why(ck, -XP_ELIMIT, "p2m_end_pfn 0x%x is beyond "
		    "the limit 0x%" PRIx64, end, ck->max_pfn - 1);

	fpp = ck->page_size / (ck->guest_width ? ck->guest_width : 8);
	frames = ((uint64_t)end / fpp + 1) - start / fpp;
	want = 8 + frames * 8;
	if (len != want)
		return record_why(ck, -XP_EBODY, "length %u is not %" PRIu64
		    " (%" PRIu64 " frames for pfns 0x%x-0x%x at %u entries a "
		    "frame)", len, want, frames, start, end, fpp);

	n = (len - 8) / 8;
	for (i = 0; i < n; i++) {
		pfn = xp_get64(be, b + 8 + (size_t)i * 8);
		if (pfn >= ck->max_pfn)
			return record_why(ck, -XP_ELIMIT, "p2m_pfn[%u] 0x%"
			    PRIx64 " is beyond the limit 0x%" PRIx64, i, pfn,
			    ck->max_pfn - 1);
	}
	return 0;
}

/* u32 vcpu_id, u32 reserved, then the blob (length checked >= 8). */
static int
body_check_vcpu_hdr(struct xp_check *ck, const uint8_t *b)
{
	int		be = ck->st->big_endian;
	uint32_t	id, res;

	id = xp_get32(be, b);
	res = xp_get32(be, b + 4);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	if (id >= ck->max_vcpus)
		return record_why(ck, -XP_ELIMIT, "vcpu_id %u is beyond the "
		    "limit %u", id, ck->max_vcpus - 1);
	return 0;
}

int
body_check_vcpu_basic(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	blob = len - WIRE_VCPU_HDR_SIZE;
	int		rv;

	if ((rv = body_check_vcpu_hdr(ck, b)) != 0)
		return rv;
	switch (ck->guest_width) {
	case 8:
		if (blob != WIRE_VCPU_BASIC_64)
			return record_why(ck, -XP_EBODY, "context of %u "
			    "octets is not %u (64-bit guest)", blob,
			    WIRE_VCPU_BASIC_64);
		break;
	case 4:
		if (blob != WIRE_VCPU_BASIC_32)
			return record_why(ck, -XP_EBODY, "context of %u "
			    "octets is not %u (32-bit guest)", blob,
			    WIRE_VCPU_BASIC_32);
		break;
	default:
		if (blob != WIRE_VCPU_BASIC_64 && blob != WIRE_VCPU_BASIC_32)
			return record_why(ck, -XP_EBODY, "context of %u "
			    "octets is neither %u nor %u", blob,
			    WIRE_VCPU_BASIC_64, WIRE_VCPU_BASIC_32);
		break;
	}
	return 0;
}

int
body_check_vcpu_extended(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	/* The registry's maximum already holds the blob to 128 octets. */
	return body_check_vcpu_hdr(ck, b);
}

int
body_check_vcpu_xsave(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	blob = len - WIRE_VCPU_HDR_SIZE;
	int		rv;

	if ((rv = body_check_vcpu_hdr(ck, b)) != 0)
		return rv;
	if (blob != 0 && blob < WIRE_VCPU_XSAVE_MIN)
		return record_why(ck, -XP_EBODY, "xsave area of %u octets is "
		    "below the minimum %u", blob, WIRE_VCPU_XSAVE_MIN);
	return 0;
}

int
body_check_vcpu_msrs(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	blob = len - WIRE_VCPU_HDR_SIZE;
	int		rv;

	if ((rv = body_check_vcpu_hdr(ck, b)) != 0)
		return rv;
	if (blob % WIRE_VCPU_MSR_SIZE != 0)
		return record_why(ck, -XP_EBODY, "msr list of %u octets is "
		    "not a multiple of %u", blob, WIRE_VCPU_MSR_SIZE);
	return 0;
}

/* ---- x86 common --------------------------------------------------------- */

/* u32 mode, u32 khz, u64 nsec, u32 incarnation, u32 reserved. */
int
body_check_tsc_info(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	uint32_t	res = xp_get32(ck->st->big_endian, b + 20);

	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	return 0;
}

/*
 * XMIG_EARLY_PARAMS (SPEC 12.5): HVM_PARAMS' layout, 1 or 2 entries, the
 * store and console pfns only, each at most once.
 */
int
body_check_early_params(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	count, i;
	uint64_t	idx, seen = 0;
	int		rc;

	if ((rc = body_check_hvm_params(ck, b, len)) != 0)
		return rc;
	count = xp_get32(be, b);
	for (i = 0; i < count; i++) {
		idx = xp_get64(be, b + 8 + 16 * (size_t)i);
		if (idx != WIRE_HVM_PARAM_STORE_PFN &&
		    idx != WIRE_HVM_PARAM_CONSOLE_PFN)
			return record_why(ck, -XP_EBODY, "entry %u: param %llu "
			    "is not the store (1) or console (17) pfn", i,
			    (unsigned long long)idx);
		if (seen & (1ULL << idx))
			return record_why(ck, -XP_EBODY, "entry %u: param %llu "
			    "a second time", i, (unsigned long long)idx);
		seen |= 1ULL << idx;
	}
	return 0;
}

/* u32 count, u32 reserved, count x { u64 index, u64 value }. */
int
body_check_hvm_params(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	count, res;

	count = xp_get32(be, b);
	res = xp_get32(be, b + 4);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	if (count > (ck->max_record_len - 8) / 16)
		return record_why(ck, -XP_EBODY, "count %u is above the "
		    "maximum %u", count, (ck->max_record_len - 8) / 16);
	if (len != 8 + count * 16)
		return record_why(ck, -XP_EBODY, "length %u is not %u (%u "
		    "parameters)", len, 8 + count * 16, count);
	return 0;
}

int
body_check_cpuid_policy(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	if (len % WIRE_CPUID_LEAF_SIZE != 0)
		return record_why(ck, -XP_EBODY, "length %u is not a multiple "
		    "of %u", len, WIRE_CPUID_LEAF_SIZE);
	return 0;
}

int
body_check_msr_policy(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	if (len % WIRE_MSR_ENTRY_SIZE != 0)
		return record_why(ck, -XP_EBODY, "length %u is not a multiple "
		    "of %u", len, WIRE_MSR_ENTRY_SIZE);
	return 0;
}

/* Back-channel only: u64 pfn[]. */
int
body_check_dirty_pfns(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	if (len % 8 != 0)
		return record_why(ck, -XP_EBODY, "length %u is not a multiple "
		    "of 8", len);
	return 0;
}

/* ---- forward extension records ------------------------------------------ */

/*
 * XMIG_NEGOTIATE, 48 octets (length checked): u32 negotiate_version,
 * u32 features, u32 can_write, u32 max_record_len, u16 arch, u16 type,
 * u16 page_shift, u16 streams (2 .. XMIG_STREAMS_MAX with PARALLEL,
 * else 0), u64 nr_pages, u32 nr_vcpus, u32 interval_ms
 * (0 unless CHECKPOINTS is offered, then 1 .. WIRE_CHECKPOINT_INTERVAL_MAX),
 * u64 session_id.
 */
int
body_check_negotiate(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	const struct xp_stream	*st = ck->st;
	int			 be = st->big_endian;
	uint32_t		 v, features, can, maxlen, res32;
	uint16_t		 arch, type, shift, res16;

	v = xp_get32(be, b);
	if (v != XMIG_NEGOTIATE_VERSION)
		return record_why(ck, -XP_EBODY, "negotiate_version %u is not "
		    "%u", v, XMIG_NEGOTIATE_VERSION);
	res16 = xp_get16(be, b + 22);
	features = xp_get32(be, b + 4);
	if (!(features & XMIG_F_PARALLEL) && res16 != 0)
		return record_why(ck, -XP_EBODY, "streams is %u without the "
		    "PARALLEL feature (must be 0)", res16);
	if ((features & XMIG_F_PARALLEL) &&
	    (res16 < 2 || res16 > XMIG_STREAMS_MAX))
		return record_why(ck, -XP_EBODY, "streams %u is not from 2 to "
		    "%u", res16, XMIG_STREAMS_MAX);
	res32 = xp_get32(be, b + 36);
	if (!(features & XMIG_F_CHECKPOINTS) && res32 != 0)
		return record_why(ck, -XP_EBODY, "interval_ms is %u without "
		    "the CHECKPOINTS feature (must be 0)", res32);
	if ((features & XMIG_F_CHECKPOINTS) &&
	    (res32 == 0 || res32 > WIRE_CHECKPOINT_INTERVAL_MAX))
		return record_why(ck, -XP_EBODY, "interval_ms %u is not from 1 "
		    "to %u", res32, WIRE_CHECKPOINT_INTERVAL_MAX);
	if (features & ~XMIG_F_KNOWN)
		return record_why(ck, -XP_EBODY, "unknown feature bits 0x%08x",
		    features & ~XMIG_F_KNOWN);
	can = xp_get32(be, b + 8);
	if (can & ~XMIG_CAN_KNOWN)
		return record_why(ck, -XP_EBODY, "unknown can_write bits "
		    "0x%08x", can & ~XMIG_CAN_KNOWN);
	maxlen = xp_get32(be, b + 12);
	if (maxlen == 0 || maxlen > WIRE_REC_LENGTH_MAX)
		return record_why(ck, -XP_EBODY, "max_record_len %u is not "
		    "from 1 to %u", maxlen, WIRE_REC_LENGTH_MAX);
	arch = xp_get16(be, b + 16);
	type = xp_get16(be, b + 18);
	shift = xp_get16(be, b + 20);
	if (arch != st->arch || type != st->dom_type ||
	    shift != st->page_shift)
		return record_why(ck, -XP_EBODY, "domain %u/%u/%u (arch/type/"
		    "page_shift) is not the domain header's %u/%u/%u", arch,
		    type, shift, st->arch, st->dom_type, st->page_shift);
	return 0;
}

void
body_negotiate_put(int be, uint8_t out[WIRE_NEGOTIATE_SIZE],
    const struct xp_negotiate *n)
{
	memset(out, 0, WIRE_NEGOTIATE_SIZE);
	xp_put32(be, out, XMIG_NEGOTIATE_VERSION);
	xp_put32(be, out + 4, n->features);
	xp_put32(be, out + 8, n->can_write);
	xp_put32(be, out + 12, n->max_record_len);
	xp_put16(be, out + 16, n->arch);
	xp_put16(be, out + 18, n->type);
	xp_put16(be, out + 20, n->page_shift);
	xp_put16(be, out + 22, n->streams);
	xp_put64(be, out + 24, n->nr_pages);
	xp_put32(be, out + 32, n->nr_vcpus);
	xp_put32(be, out + 36, n->interval_ms);
	xp_put64(be, out + 40, n->session_id);
}

int
body_negotiate_get(const struct xp_stream *st, const struct xp_record *rec,
    struct xp_negotiate *n)
{
	struct xp_check	 ck;
	const uint8_t	*b = rec->body;
	int		 be = st->big_endian;

	if (rec->type != REC_XMIG_NEGOTIATE)
		return -XP_EINVAL;
	if (rec->length != WIRE_NEGOTIATE_SIZE)
		return -XP_EBODY;
	memset(&ck, 0, sizeof ck);
	ck.st = st;
	if (body_check_negotiate(&ck, b, rec->length) != 0)
		return -XP_EBODY;
	memset(n, 0, sizeof *n);
	n->version = xp_get32(be, b);
	n->features = xp_get32(be, b + 4);
	n->can_write = xp_get32(be, b + 8);
	n->max_record_len = xp_get32(be, b + 12);
	n->arch = xp_get16(be, b + 16);
	n->type = xp_get16(be, b + 18);
	n->page_shift = xp_get16(be, b + 20);
	n->streams = xp_get16(be, b + 22);
	n->nr_pages = xp_get64(be, b + 24);
	n->nr_vcpus = xp_get32(be, b + 32);
	n->interval_ms = xp_get32(be, b + 36);
	n->session_id = xp_get64(be, b + 40);
	return 0;
}

/*
 * XMIG_DOMAIN_CONFIG (SPEC 12.4): u32 kind, u32 reserved, then 1 to
 * WIRE_CONFIG_TEXT_MAX octets of text without NUL (length checked by the
 * registry).
 */
int
body_check_config(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	kind, res;

	kind = xp_get32(be, b);
	res = xp_get32(be, b + 4);
	if (kind != XMIG_CONFIG_LIBXL_JSON)
		return record_why(ck, -XP_EBODY, "configuration kind %u is "
		    "unknown (1: libxl JSON)", kind);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is %#x, not "
		    "zero", res);
	if (memchr(b + WIRE_CONFIG_HDR_SIZE, 0, len - WIRE_CONFIG_HDR_SIZE))
		return record_why(ck, -XP_EBODY, "the configuration text "
		    "contains a NUL octet");
	return 0;
}

void
body_config_put(int be, uint8_t out[WIRE_CONFIG_HDR_SIZE], uint32_t kind)
{
	xp_put32(be, out, kind);
	xp_put32(be, out + 4, 0);
}

int
body_config_get(const struct xp_stream *st, const struct xp_record *rec,
    uint32_t *kind, const char **text, size_t *len)
{
	struct xp_check	ck;

	if (rec->type != REC_XMIG_DOMAIN_CONFIG)
		return -XP_EINVAL;
	if (rec->length <= WIRE_CONFIG_HDR_SIZE ||
	    rec->length > WIRE_CONFIG_HDR_SIZE + WIRE_CONFIG_TEXT_MAX)
		return -XP_EBODY;
	memset(&ck, 0, sizeof ck);
	ck.st = st;
	if (body_check_config(&ck, rec->body, rec->length) != 0)
		return -XP_EBODY;
	*kind = xp_get32(st->big_endian, rec->body);
	*text = (const char *)rec->body + WIRE_CONFIG_HDR_SIZE;
	*len = rec->length - WIRE_CONFIG_HDR_SIZE;
	return 0;
}

/*
 * XMIG_ZERO_PAGES (SPEC 12.1): u32 count, u32 reserved, u64 pfn[count],
 * each entry a bare pfn (type NOTAB, reserved bits zero).
 */
int
body_check_zero_pages(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	count, res;

	count = xp_get32(be, b);
	res = xp_get32(be, b + 4);
	if (count == 0)
		return record_why(ck, -XP_EBODY, "count is 0");
	if (count > ck->max_record_len / 8)
		return record_why(ck, -XP_EBODY, "count %u is above the "
		    "maximum %u", count, ck->max_record_len / 8);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	if (len != 8 + (uint64_t)count * 8)
		return record_why(ck, -XP_EBODY, "length %u is not %" PRIu64
		    " (%u pfns)", len, 8 + (uint64_t)count * 8, count);
	return body_check_bare_pfns(ck, b + 8, count);
}

int
body_zero_pages_put(int be, uint8_t *out, uint32_t count,
    const uint64_t *pfns)
{
	uint32_t	i;

	if (count == 0 || count > WIRE_PAGE_DATA_MAX)
		return -XP_EINVAL;
	for (i = 0; i < count; i++) {
		if (pfns[i] & ~WIRE_PFN_MASK)
			return -XP_EINVAL;
	}
	xp_put32(be, out, count);
	xp_put32(be, out + 4, 0);
	for (i = 0; i < count; i++)
		xp_put64(be, out + 8 + (size_t)i * 8, pfns[i]);
	return 0;
}

/* ---- PAGE_DATA and ZERO_PAGES, decoded -------------------------------- */

int
body_page_data_view(const struct xp_stream *st, const struct xp_record *rec,
    struct xp_page_view *v)
{
	const uint8_t	*b = rec->body;
	uint32_t	 len = rec->length, i;
	uint64_t	 pre;
	int		 be = st->big_endian;

	memset(v, 0, sizeof *v);
	if ((rec->type != REC_PAGE_DATA && rec->type != REC_XMIG_ZERO_PAGES) ||
	    st->page_shift > 24)
		return -XP_EINVAL;
	v->be = be;
	v->page_size = 1u << st->page_shift;
	if (len < 8)
		return -XP_EBODY;
	v->count = xp_get32(be, b);
	pre = 8 + (uint64_t)v->count * 8;
	if (v->count == 0 || pre > len)
		return -XP_EBODY;
	v->entries = b + 8;
	if (rec->type == REC_XMIG_ZERO_PAGES) {
		v->zero = 1;
		return pre == len ? 0 : -XP_EBODY;
	}
	for (i = 0; i < v->count; i++) {
		if (body_page_type_has_data((unsigned)(xp_page_view_entry(v, i)
		    >> WIRE_PFN_TYPE_SHIFT)))
			v->ndata++;
	}
	if ((uint64_t)v->ndata * v->page_size > UINT32_MAX)
		return -XP_EBODY;
	v->raw_length = v->ndata * v->page_size;
	if (!(rec->options & WIRE_REC_OPT_COMPRESSED)) {
		if (pre + v->raw_length != len)
			return -XP_EBODY;
		v->data = b + pre;
		return 0;
	}
	if (pre + WIRE_DEFLATE_HDR_SIZE > len ||
	    xp_get32(be, b + pre) != v->raw_length)
		return -XP_EBODY;
	v->deflated = 1;
	v->codec = rec->options & WIRE_REC_OPT_COMPRESSED;
	v->zlength = xp_get32(be, b + pre + 4);
	v->zdata = b + pre + WIRE_DEFLATE_HDR_SIZE;
	if (pre + WIRE_DEFLATE_HDR_SIZE + v->zlength != len)
		return -XP_EBODY;
	return 0;
}

/* Inflate z into exactly raw octets of out; why says what went wrong. */
static int
body_inflate(const uint8_t *z, uint32_t zlen, uint8_t *out, uint32_t raw,
    char *why, size_t whylen)
{
	z_stream	zs;
	uint8_t		spare;
	int		zr, rv = 0;

	memset(&zs, 0, sizeof zs);
	if ((zr = inflateInit(&zs)) != Z_OK) {
		snprintf(why, whylen, "zlib cannot start (%d)", zr);
		return zr == Z_MEM_ERROR ? -XP_ENOMEM : -XP_EINVAL;
	}
	zs.next_in = (Bytef *)(uintptr_t)z;
	zs.avail_in = zlen;
	zs.next_out = raw != 0 ? out : &spare;
	zs.avail_out = raw;
	do {
		zr = inflate(&zs, Z_FINISH);
	} while (zr == Z_OK && zs.avail_in != 0 && zs.avail_out != 0);
	if ((zr == Z_OK || zr == Z_BUF_ERROR) && zs.avail_out == 0) {
		/* raw octets out: the stream must end without more. */
		zs.next_out = &spare;
		zs.avail_out = 1;
		zr = inflate(&zs, Z_FINISH);
		if (zs.avail_out == 0) {
			snprintf(why, whylen, "inflates to more than raw_length "
			    "%u octets", raw);
			rv = -XP_EBODY;
			goto out;
		}
	}

	switch (zr) {
	case Z_STREAM_END:
		if (zs.total_out != raw) {
			snprintf(why, whylen, "inflates to %lu octets, not "
			    "raw_length %u", zs.total_out, raw);
			rv = -XP_EBODY;
		} else if (zs.avail_in != 0) {
			snprintf(why, whylen, "%u octets follow the end of the "
			    "zlib stream", zs.avail_in);
			rv = -XP_EBODY;
		}
		break;
	case Z_OK:
	case Z_BUF_ERROR:
		snprintf(why, whylen, "the zlib stream ends early, after %lu "
		    "of raw_length %u octets", zs.total_out, raw);
		rv = -XP_EBODY;
		break;
	case Z_MEM_ERROR:
		snprintf(why, whylen, "zlib: out of memory");
		rv = -XP_ENOMEM;
		break;
	case Z_NEED_DICT:
		snprintf(why, whylen, "the zlib stream needs a preset "
		    "dictionary");
		rv = -XP_EBODY;
		break;
	default:
		snprintf(why, whylen, "the zlib stream is corrupt after %lu "
		    "octets (%s)", zs.total_out, zs.msg != NULL ? zs.msg :
		    "data error");
		rv = -XP_EBODY;
		break;
	}
out:
	inflateEnd(&zs);
	return rv;
}

/* The zstd counterpart: exactly one frame, exactly raw octets. */
static int
body_unzstd(const uint8_t *z, uint32_t zlen, uint8_t *out, uint32_t raw,
    char *why, size_t whylen)
{
	unsigned long long	 content;
	size_t			 fsz, n;
	uint8_t			 spare;

	fsz = ZSTD_findFrameCompressedSize(z, zlen);
	if (ZSTD_isError(fsz)) {
		snprintf(why, whylen, "not one whole zstd frame (%s)",
		    ZSTD_getErrorName(fsz));
		return -XP_EBODY;
	}
	if (fsz != zlen) {
		snprintf(why, whylen, "%zu octets follow the end of the zstd "
		    "frame", (size_t)zlen - fsz);
		return -XP_EBODY;
	}
	content = ZSTD_getFrameContentSize(z, zlen);
	if (content != ZSTD_CONTENTSIZE_UNKNOWN &&
	    content != ZSTD_CONTENTSIZE_ERROR && content != raw) {
		snprintf(why, whylen, "the zstd frame says %llu octets, not "
		    "raw_length %u", content, raw);
		return -XP_EBODY;
	}
	n = ZSTD_decompress(raw != 0 ? out : &spare, raw, z, zlen);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation) {
			snprintf(why, whylen, "zstd: out of memory");
			return -XP_ENOMEM;
		}
		snprintf(why, whylen, "the zstd frame is corrupt or holds more "
		    "than raw_length %u octets (%s)", raw,
		    ZSTD_getErrorName(n));
		return -XP_EBODY;
	}
	if (n != raw) {
		snprintf(why, whylen, "the zstd frame holds %zu octets, not "
		    "raw_length %u", n, raw);
		return -XP_EBODY;
	}
	return 0;
}

int
body_page_data_inflate_err(const struct xp_stream *st,
    const struct xp_record *rec, uint8_t *out, size_t out_len,
    struct xp_error *err)
{
	struct xp_page_view	v;
	char			why[160];
	int			rv;

	rv = body_page_data_view(st, rec, &v);
	if (rv == 0 && !v.deflated)
		rv = -XP_EINVAL;
	if (rv == 0 && (out_len < v.raw_length ||
	    (out == NULL && v.raw_length != 0)))
		rv = -XP_EINVAL;
	if (rv != 0)
		snprintf(why, sizeof why, "%s", rv == -XP_EINVAL ? "not a "
		    "compressed PAGE_DATA record, or no room for its pages" :
		    "the body does not add up");
	else if (v.codec == WIRE_REC_OPT_ZSTD)
		rv = body_unzstd(v.zdata, v.zlength, out, v.raw_length, why,
		    sizeof why);
	else
		rv = body_inflate(v.zdata, v.zlength, out, v.raw_length, why,
		    sizeof why);
	if (rv != 0 && err != NULL) {
		memset(err, 0, sizeof *err);
		err->code = -rv;
		err->index = rec->index;
		err->type = rec->type;
		err->offset = rec->offset;
		snprintf(err->msg, sizeof err->msg, "record %" PRIu64 " (%s) at "
		    "offset %" PRIu64 ": %s page data: %s", rec->index,
		    record_type_name(rec->type), rec->offset,
		    rv == -XP_EINVAL || v.codec != WIRE_REC_OPT_ZSTD ?
		    "deflated" : "zstd", why);
	}
	return rv;
}

int
body_page_data_inflate(const struct xp_stream *st,
    const struct xp_record *rec, uint8_t *out, size_t out_len)
{
	return body_page_data_inflate_err(st, rec, out, out_len, NULL);
}

int
body_page_data_deflate(int be, int level, const uint8_t *raw, size_t raw_len,
    struct xp_buf *out)
{
	static const uint8_t	 none;
	z_stream		 zs;
	uLong			 bound;
	uint8_t			*p;
	int			 zr, rv;

	if (level < -1 || level > 9 || raw_len > WIRE_REC_LENGTH_MAX ||
	    (raw == NULL && raw_len != 0))
		return -XP_EINVAL;
	memset(&zs, 0, sizeof zs);
	if ((zr = deflateInit(&zs, level)) != Z_OK)
		return zr == Z_MEM_ERROR ? -XP_ENOMEM : -XP_EINVAL;
	bound = deflateBound(&zs, (uLong)raw_len);
	if ((rv = buf_reserve(out, WIRE_DEFLATE_HDR_SIZE + bound)) != 0) {
		deflateEnd(&zs);
		return rv;
	}
	p = out->data + out->len;
	zs.next_in = (Bytef *)(uintptr_t)(raw != NULL ? raw : &none);
	zs.avail_in = (uInt)raw_len;
	zs.next_out = p + WIRE_DEFLATE_HDR_SIZE;
	zs.avail_out = (uInt)bound;
	zr = deflate(&zs, Z_FINISH);
	if (zr != Z_STREAM_END) {
		deflateEnd(&zs);
		return zr == Z_MEM_ERROR ? -XP_ENOMEM : -XP_EINVAL;
	}
	xp_put32(be, p, (uint32_t)raw_len);
	xp_put32(be, p + 4, (uint32_t)zs.total_out);
	out->len += WIRE_DEFLATE_HDR_SIZE + zs.total_out;
	deflateEnd(&zs);
	return 0;
}

/* The zstd counterpart of body_page_data_deflate (level 1-19, 0: 3). */
static int
body_page_data_zstd(int be, int level, const uint8_t *raw, size_t raw_len,
    struct xp_buf *out)
{
	static const uint8_t	 none;
	size_t			 bound, n;
	uint8_t			*p;
	int			 rv;

	if (level < 0 || level > ZSTD_maxCLevel() ||
	    raw_len > WIRE_REC_LENGTH_MAX || (raw == NULL && raw_len != 0))
		return -XP_EINVAL;
	bound = ZSTD_compressBound(raw_len);
	if ((rv = buf_reserve(out, WIRE_DEFLATE_HDR_SIZE + bound)) != 0)
		return rv;
	p = out->data + out->len;
	n = ZSTD_compress(p + WIRE_DEFLATE_HDR_SIZE, bound,
	    raw != NULL ? raw : &none, raw_len, level);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ?
		    -XP_ENOMEM : -XP_EINVAL;
	xp_put32(be, p, (uint32_t)raw_len);
	xp_put32(be, p + 4, (uint32_t)n);
	out->len += WIRE_DEFLATE_HDR_SIZE + n;
	return 0;
}

int
body_page_data_compress(int be, uint16_t codec, int level, const uint8_t *raw,
    size_t raw_len, struct xp_buf *out)
{
	if (codec == WIRE_REC_OPT_DEFLATE)
		return body_page_data_deflate(be, level, raw, raw_len, out);
	if (codec == WIRE_REC_OPT_ZSTD)
		return body_page_data_zstd(be, level, raw, raw_len, out);
	return -XP_EINVAL;
}

/* ---- byte order --------------------------------------------------------- */

static void
body_re16(uint8_t *p, uint32_t n, int from, int to)
{
	uint32_t	i;

	for (i = 0; i < n; i++, p += 2)
		xp_put16(to, p, xp_get16(from, p));
}

static void
body_re32(uint8_t *p, uint32_t n, int from, int to)
{
	uint32_t	i;

	for (i = 0; i < n; i++, p += 4)
		xp_put32(to, p, xp_get32(from, p));
}

static void
body_re64(uint8_t *p, uint32_t n, int from, int to)
{
	uint32_t	i;

	for (i = 0; i < n; i++, p += 8)
		xp_put64(to, p, xp_get64(from, p));
}

/*
 * Convert a body between byte orders, field by field.  in and out may be
 * the same buffer.  Fails (-XP_EBODY, out untouched) if the body does not
 * fit its type's layout.
 */
int
body_reorder(uint32_t type, const uint8_t *in, uint32_t len, int from_be,
    int to_be, uint8_t *out)
{
	return body_reorder_opt(type, 0, in, len, from_be, to_be, out);
}

int
body_reorder_opt(uint32_t type, uint16_t options, const uint8_t *in,
    uint32_t len, int from_be, int to_be, uint8_t *out)
{
	uint32_t	count = 0, i;
	int		deflate = 0;

	from_be = from_be != 0;
	to_be = to_be != 0;

	/* Check the layout first, so that a failure writes nothing. */
	switch (type) {
	case REC_PAGE_DATA:
		if (len < 8)
			return -XP_EBODY;
		count = xp_get32(from_be, in);
		if (8 + (uint64_t)count * 8 > len)
			return -XP_EBODY;
		if (options & WIRE_REC_OPT_COMPRESSED) {
			if (8 + (uint64_t)count * 8 + WIRE_DEFLATE_HDR_SIZE >
			    len)
				return -XP_EBODY;
			deflate = 1;
		}
		break;
	case REC_XMIG_ZERO_PAGES:
		if (len < 8)
			return -XP_EBODY;
		count = xp_get32(from_be, in);
		if (8 + (uint64_t)count * 8 != len)
			return -XP_EBODY;
		break;
	case REC_XMIG_DELTA_PAGES:
		if (len < 8)
			return -XP_EBODY;
		count = xp_get32(from_be, in);
		if (8 + (uint64_t)count * 12 > len)
			return -XP_EBODY;
		break;
	case REC_XMIG_NEGOTIATE:
		if (len != WIRE_NEGOTIATE_SIZE)
			return -XP_EBODY;
		break;
	case REC_XMIG_DOMAIN_CONFIG:
		if (len < WIRE_CONFIG_HDR_SIZE)
			return -XP_EBODY;
		break;
	case REC_X86_PV_P2M_FRAMES:
		if (len < 8 || len % 8 != 0)
			return -XP_EBODY;
		break;
	case REC_X86_PV_VCPU_BASIC:
	case REC_X86_PV_VCPU_EXTENDED:
	case REC_X86_PV_VCPU_XSAVE:
	case REC_X86_PV_VCPU_MSRS:
		if (len < WIRE_VCPU_HDR_SIZE)
			return -XP_EBODY;
		break;
	case REC_X86_TSC_INFO:
		if (len != WIRE_TSC_INFO_SIZE)
			return -XP_EBODY;
		break;
	case REC_HVM_PARAMS:
	case REC_XMIG_EARLY_PARAMS:
		if (len < 8)
			return -XP_EBODY;
		count = xp_get32(from_be, in);
		if (8 + (uint64_t)count * 16 != len)
			return -XP_EBODY;
		break;
	case REC_X86_CPUID_POLICY:
		if (len % WIRE_CPUID_LEAF_SIZE != 0)
			return -XP_EBODY;
		break;
	case REC_X86_MSR_POLICY:
		if (len % WIRE_MSR_ENTRY_SIZE != 0)
			return -XP_EBODY;
		break;
	case REC_CHECKPOINT_DIRTY_PFN_LIST:
		if (len % 8 != 0)
			return -XP_EBODY;
		break;
	default:
		break;		/* opaque */
	}

	if (in != out && len != 0)
		memmove(out, in, len);
	if (from_be == to_be)
		return 0;

	switch (type) {
	case REC_PAGE_DATA:
	case REC_XMIG_ZERO_PAGES:
		body_re32(out, 2, from_be, to_be);
		body_re64(out + 8, count, from_be, to_be);
		if (deflate)
			body_re32(out + 8 + (size_t)count * 8, 2, from_be,
			    to_be);
		break;
	case REC_XMIG_DELTA_PAGES:
		/* count, reserved, pfn[], delta_length[]; deltas are octets */
		body_re32(out, 2, from_be, to_be);
		body_re64(out + 8, count, from_be, to_be);
		body_re32(out + 8 + (size_t)count * 8, count, from_be, to_be);
		break;
	case REC_XMIG_DOMAIN_CONFIG:
		body_re32(out, 2, from_be, to_be);
		break;
	case REC_XMIG_NEGOTIATE:
		body_re32(out, 4, from_be, to_be);
		body_re16(out + 16, 4, from_be, to_be);
		body_re64(out + 24, 1, from_be, to_be);
		body_re32(out + 32, 2, from_be, to_be);
		body_re64(out + 40, 1, from_be, to_be);
		break;
	case REC_X86_PV_P2M_FRAMES:
		body_re32(out, 2, from_be, to_be);
		body_re64(out + 8, (len - 8) / 8, from_be, to_be);
		break;
	case REC_X86_PV_VCPU_BASIC:
	case REC_X86_PV_VCPU_EXTENDED:
	case REC_X86_PV_VCPU_XSAVE:
	case REC_X86_PV_VCPU_MSRS:
		body_re32(out, 2, from_be, to_be);
		break;
	case REC_X86_TSC_INFO:
		body_re32(out, 2, from_be, to_be);
		body_re64(out + 8, 1, from_be, to_be);
		body_re32(out + 16, 2, from_be, to_be);
		break;
	case REC_HVM_PARAMS:
	case REC_XMIG_EARLY_PARAMS:
		body_re32(out, 2, from_be, to_be);
		body_re64(out + 8, count * 2, from_be, to_be);
		break;
	case REC_X86_CPUID_POLICY:
		body_re32(out, len / 4, from_be, to_be);
		break;
	case REC_X86_MSR_POLICY:
		for (i = 0; i < len / WIRE_MSR_ENTRY_SIZE; i++) {
			body_re32(out + i * 16, 2, from_be, to_be);
			body_re64(out + i * 16 + 8, 1, from_be, to_be);
		}
		break;
	case REC_CHECKPOINT_DIRTY_PFN_LIST:
		body_re64(out, len / 8, from_be, to_be);
		break;
	default:
		break;
	}
	return 0;
}
