/*
 * delta.c -- delta-encoded pages (SPEC 12.7): the encoder, the checker
 * and applier of one page's delta, and the XMIG_DELTA_PAGES record body
 * (its parser rule, delta_check_pages(), is in the record registry).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "delta.h"
#include "proto-int.h"

/*
 * An unchanged run shorter than this inside changed octets is sent as
 * literal octets: a new pair costs at least two octets of varints.
 */
#define DELTA_GAP	3u

static int
delta_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
delta_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -XP_EBODY;
}

/* Append varint v at out[*n], at most max octets in all; -1 if full. */
static int
delta_put_varint(uint8_t *out, uint32_t *n, uint32_t max, uint32_t v)
{
	do {
		if (*n >= max)
			return -1;
		out[(*n)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	return 0;
}

/* Octets from p on that are equal in a and b, up to size. */
static uint32_t
delta_same(const uint8_t *a, const uint8_t *b, uint32_t p, uint32_t size)
{
	uint64_t x, y;

	while (p + 8 <= size) {
		memcpy(&x, a + p, 8);
		memcpy(&y, b + p, 8);
		if (x != y)
			break;
		p += 8;
	}
	while (p < size && a[p] == b[p])
		p++;
	return p;
}

int
delta_encode(const uint8_t *old, const uint8_t *nw, uint32_t size,
    uint8_t *out, uint32_t max)
{
	uint32_t p = 0, n = 0, s, lit, q;

	while (p < size) {
		s = p;
		p = delta_same(old, nw, p, size);
		if (p == size)
			break;		/* the rest is unchanged */
		lit = p;
		while (p < size) {
			if (old[p] != nw[p]) {
				p++;
				continue;
			}
			for (q = p; q < size && old[q] == nw[q] &&
			    q - p < DELTA_GAP; q++)
				;
			if (q - p >= DELTA_GAP || q == size)
				break;	/* a gap worth a new pair, or the end */
			p = q;		/* a short gap: literal octets */
		}
		if (delta_put_varint(out, &n, max, lit - s) != 0 ||
		    delta_put_varint(out, &n, max, p - lit) != 0 ||
		    p - lit > max - n)
			return -1;
		memcpy(out + n, nw + lit, p - lit);
		n += p - lit;
	}
	return (int)n;
}

/* Read a varint at d[*i]: 0, or -XP_EBODY naming what is wrong. */
static int
delta_get_varint(const uint8_t *d, uint32_t len, uint32_t *i, uint32_t *v,
    char *why, size_t whylen)
{
	uint32_t start = *i, k;

	*v = 0;
	for (k = 0;; k++) {
		if (*i >= len)
			return delta_why(why, whylen, "truncated varint at "
			    "delta octet %u", start);
		if (k == DELTA_VARINT_MAX)
			return delta_why(why, whylen, "varint at delta octet "
			    "%u is longer than %u octets", start,
			    DELTA_VARINT_MAX);
		*v |= (uint32_t)(d[*i] & 0x7f) << (7 * k);
		if (!(d[(*i)++] & 0x80))
			break;
	}
	if (k > 0 && d[*i - 1] == 0)
		return delta_why(why, whylen, "varint at delta octet %u is "
		    "not minimal (ends in 0x00)", start);
	return 0;
}

/* Walk d; with page != NULL, apply it.  Checked before anything is written. */
static int
delta_walk(uint8_t *page, uint32_t size, const uint8_t *d, uint32_t len,
    char *why, size_t whylen)
{
	uint32_t i = 0, p = 0, skip, copy, at;
	int rc;

	while (i < len) {
		if (p == size)
			return delta_why(why, whylen, "%u trailing octets "
			    "after the pair that reaches the page's end "
			    "(delta octet %u)", len - i, i);
		at = i;
		if ((rc = delta_get_varint(d, len, &i, &skip, why,
		    whylen)) != 0 ||
		    (rc = delta_get_varint(d, len, &i, &copy, why,
		    whylen)) != 0)
			return rc;
		if (skip > size - p)
			return delta_why(why, whylen, "pair at delta octet %u "
			    "skips %u octets from page octet %u, beyond the "
			    "page's %u", at, skip, p, size);
		p += skip;
		if (copy == 0)
			return delta_why(why, whylen, "pair at delta octet %u "
			    "copies no octet", at);
		if (copy > size - p)
			return delta_why(why, whylen, "pair at delta octet %u: "
			    "%u literal octets at page octet %u run beyond "
			    "the page's %u", at, copy, p, size);
		if (copy > len - i)
			return delta_why(why, whylen, "pair at delta octet %u: "
			    "%u literal octets, but only %u remain", at, copy,
			    len - i);
		if (page != NULL)
			memcpy(page + p, d + i, copy);
		p += copy;
		i += copy;
	}
	return 0;
}

int
delta_check(const uint8_t *d, uint32_t len, uint32_t size, char *why,
    size_t whylen)
{
	return delta_walk(NULL, size, d, len, why, whylen);
}

int
delta_apply(uint8_t *page, uint32_t size, const uint8_t *d, uint32_t len,
    char *why, size_t whylen)
{
	int rc;

	if ((rc = delta_walk(NULL, size, d, len, why, whylen)) != 0)
		return rc;
	return delta_walk(page, size, d, len, why, whylen);
}

/* ---- the XMIG_DELTA_PAGES body ----------------------------------------- */

int
delta_pages_put(int be, uint8_t *out, uint32_t count, const uint64_t *pfns,
    const uint32_t *lens)
{
	uint32_t i;

	if (count == 0 || count > WIRE_PAGE_DATA_MAX)
		return -XP_EINVAL;
	for (i = 0; i < count; i++)
		if (pfns[i] & ~WIRE_PFN_MASK)
			return -XP_EINVAL;
	xp_put32(be, out, count);
	xp_put32(be, out + 4, 0);
	for (i = 0; i < count; i++)
		xp_put64(be, out + DELTA_REC_HDR + (size_t)i * 8, pfns[i]);
	for (i = 0; i < count; i++)
		xp_put32(be, out + DELTA_REC_HDR + (size_t)count * 8 +
		    (size_t)i * 4, lens[i]);
	return 0;
}

/*
 * The parser's rule (SPEC 12.7): count, reserved, length, each pfn, each
 * delta_length, their sum, then each delta against the page size.
 */
int
delta_check_pages(struct xp_check *ck, const uint8_t *b, uint32_t len)
{
	int		be = ck->st->big_endian;
	uint32_t	count, res, i, dl;
	uint64_t	pre, sum = 0;
	const uint8_t	*d;
	char		why[160];
	int		rv;

	count = xp_get32(be, b);
	res = xp_get32(be, b + 4);
	if (count == 0)
		return record_why(ck, -XP_EBODY, "count is 0");
	if (count > ck->max_record_len / DELTA_ENTRY_SIZE)
		return record_why(ck, -XP_EBODY, "count %u is above the "
		    "maximum %u", count, ck->max_record_len /
		    DELTA_ENTRY_SIZE);
	if (res != 0)
		return record_why(ck, -XP_EBODY, "reserved field is 0x%08x, "
		    "not 0", res);
	pre = DELTA_REC_HDR + (uint64_t)count * DELTA_ENTRY_SIZE;
	if (len < pre)
		return record_why(ck, -XP_EBODY, "length %u is too short for "
		    "%u pfns and delta lengths (%" PRIu64 ")", len, count,
		    pre);
	if ((rv = body_check_bare_pfns(ck, b + DELTA_REC_HDR, count)) != 0)
		return rv;
	for (i = 0; i < count; i++) {
		dl = xp_get32(be, b + DELTA_REC_HDR + (size_t)count * 8 +
		    (size_t)i * 4);
		if (dl > ck->page_size)
			return record_why(ck, -XP_EBODY, "delta %u: "
			    "delta_length %u is above the page size %u", i, dl,
			    ck->page_size);
		sum += dl;
	}
	if (len != pre + sum)
		return record_why(ck, -XP_EBODY, "length %u is not %" PRIu64
		    " (%u pfns, delta lengths and %" PRIu64 " delta octets)",
		    len, pre + sum, count, sum);
	d = b + pre;
	for (i = 0; i < count; i++) {
		dl = xp_get32(be, b + DELTA_REC_HDR + (size_t)count * 8 +
		    (size_t)i * 4);
		if (delta_check(d, dl, ck->page_size, why, sizeof(why)) != 0)
			return record_why(ck, -XP_EBODY, "delta %u (pfn "
			    "0x%" PRIx64 "): %s", i, xp_get64(be, b +
			    DELTA_REC_HDR + (size_t)i * 8), why);
		d += dl;
	}
	return 0;
}

int
delta_pages_view(const struct xp_stream *st, const struct xp_record *rec,
    struct delta_view *v)
{
	const uint8_t	*b = rec->body;
	uint64_t	 pre, sum = 0;
	uint32_t	 i;

	memset(v, 0, sizeof *v);
	if (rec->type != REC_XMIG_DELTA_PAGES || st->page_shift > 24)
		return -XP_EINVAL;
	v->be = st->big_endian;
	v->page_size = 1u << st->page_shift;
	if (rec->length < DELTA_REC_HDR)
		return -XP_EBODY;
	v->count = xp_get32(v->be, b);
	pre = DELTA_REC_HDR + (uint64_t)v->count * DELTA_ENTRY_SIZE;
	if (v->count == 0 || pre > rec->length)
		return -XP_EBODY;
	v->pfns = b + DELTA_REC_HDR;
	v->lens = v->pfns + (size_t)v->count * 8;
	for (i = 0; i < v->count; i++)
		sum += delta_view_len(v, i);
	if (pre + sum != rec->length)
		return -XP_EBODY;
	v->data = b + pre;
	v->data_len = (uint32_t)sum;
	return 0;
}
