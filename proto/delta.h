/*
 * delta.h -- delta-encoded pages (SPEC 12.7, XMIG_DELTA_PAGES): the page
 * delta encoding and the record body around it.  Pure functions: bytes in,
 * bytes out, no I/O.
 *
 * A delta turns the copy of a page the receiver holds into the page's new
 * content.  It is a sequence of pairs
 *
 *     varint skip, varint copy, copy literal octets
 *
 * read from octet 0 of the page: skip octets stay as they are, the next
 * copy octets are replaced by the literal ones.  A varint is unsigned
 * LEB128 (7 bits a octet, least significant group first, bit 7 set on
 * every octet but the last), at most DELTA_VARINT_MAX octets, minimal (a
 * varint of more than one octet does not end in 0x00).  Every pair copies
 * at least one octet; the pairs never reach beyond the page, and nothing
 * follows the pair that reaches its last octet.  Octets after the last pair
 * are unchanged; the empty delta is an unchanged page.
 */
#ifndef XMIG_DELTA_H
#define XMIG_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define DELTA_VARINT_MAX	3u	/* values up to 2^21 - 1 */

/*
 * XMIG_DELTA_PAGES body (stream byte order):
 *   u32 count, u32 reserved 0, u64 pfn[count], u32 delta_length[count],
 *   then the deltas, one after the other.
 */
#define DELTA_REC_HDR		8u
#define DELTA_ENTRY_SIZE	12u	/* pfn and delta_length */

/*
 * The delta of page nw against page old (size octets each) into out, at
 * most max octets.  Returns its length (0: the pages are equal), or -1 if
 * it would be longer than max (out then holds garbage).
 */
int	delta_encode(const uint8_t *old, const uint8_t *nw, uint32_t size,
	    uint8_t *out, uint32_t max);

/*
 * Check delta d (len octets) for a page of size octets: 0, or -XP_EBODY
 * with the reason in why ("literal at octet 4090 of 20 octets runs beyond
 * the page's 4096", "truncated varint at delta octet 7", ...).
 */
int	delta_check(const uint8_t *d, uint32_t len, uint32_t size, char *why,
	    size_t whylen);

/*
 * Apply delta d to page (size octets) in place.  The delta is checked
 * first: on -XP_EBODY the page is untouched and why says what is wrong.
 */
int	delta_apply(uint8_t *page, uint32_t size, const uint8_t *d,
	    uint32_t len, char *why, size_t whylen);

/*
 * Write the head of an XMIG_DELTA_PAGES body into out[8 + 12 * count]:
 * count, reserved 0, the pfns, the delta lengths.  -XP_EINVAL if count is
 * 0 or above WIRE_PAGE_DATA_MAX or a pfn does not fit WIRE_PFN_MASK.
 */
int	delta_pages_put(int be, uint8_t *out, uint32_t count,
	    const uint64_t *pfns, const uint32_t *lens);

/* One XMIG_DELTA_PAGES record, decoded. */
struct delta_view {
	int		 be;
	uint32_t	 page_size;
	uint32_t	 count;
	const uint8_t	*pfns;		/* count u64 */
	const uint8_t	*lens;		/* count u32 */
	const uint8_t	*data;		/* the deltas, concatenated */
	uint32_t	 data_len;
};

static inline uint64_t
delta_view_pfn(const struct delta_view *v, uint32_t i)
{
	return xp_get64(v->be, v->pfns + (size_t)i * 8);
}

static inline uint32_t
delta_view_len(const struct delta_view *v, uint32_t i)
{
	return xp_get32(v->be, v->lens + (size_t)i * 4);
}

/*
 * Fill v from an XMIG_DELTA_PAGES record of stream st (as the parser
 * yielded it).  The layout is checked again (not each delta): 0,
 * -XP_EINVAL (another type) or -XP_EBODY.
 */
int	delta_pages_view(const struct xp_stream *st,
	    const struct xp_record *rec, struct delta_view *v);

#endif /* XMIG_DELTA_H */
