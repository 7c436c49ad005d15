/*
 * body.c -- record bodies: the layout rules of each structured type, the
 * field-by-field byte-order conversion, and PAGE_DATA helpers.
 *
 * Bodies are in the stream byte order (ck->st->big_endian).  Every check
 * returns 0 or a negative XP_E* code with the reason in ck->why.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

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

/*
 * u32 count, u32 reserved, u64 pfn[count], then page_size octets for each
 * entry whose type carries data.
 */
int
body_check_page_data(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	count, res, i, ndata = 0;
	uint64_t	e, pfn, want;
	unsigned	type;

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
		if (pfn >= ck->max_pfn)
			return record_why(ck, -XP_ELIMIT, "pfn entry %u: pfn "
			    "0x%" PRIx64 " is beyond the limit 0x%" PRIx64,
			    i, pfn, ck->max_pfn - 1);
		if (ck->dom == REC_DOM_PV && ck->p2m && pfn > ck->p2m_end_pfn)
			return record_why(ck, -XP_ELIMIT, "pfn entry %u: pfn "
			    "0x%" PRIx64 " is beyond p2m_end_pfn 0x%x", i, pfn,
			    ck->p2m_end_pfn);
		if (body_page_type_has_data(type))
			ndata++;
	}

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

/* ---- byte order --------------------------------------------------------- */

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
	uint32_t	count = 0, i;

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
		body_re32(out, 2, from_be, to_be);
		body_re64(out + 8, count, from_be, to_be);
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
