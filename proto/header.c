/*
 * header.c -- the image header (24 octets, big-endian) and the domain
 * header (8 octets draft-B, 16 octets Xen, stream byte order).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto-int.h"

#define IHDR_MARKER_LEN	8

static void
header_legacy_why(char *why, size_t len)
{
	snprintf(why, len, "image header: legacy (pre-v2 Xen) image: the "
	    "first 8 octets are not all ones; convert it first (Xen's "
	    "convert-legacy-stream)");
}

/*
 * Write the image header.  Only the byte order bit and the back-channel
 * bit of st->ihdr_options are written; the other option bits and the
 * reserved octets are zero.
 */
void
header_image_put(const struct xp_stream *st, uint8_t out[WIRE_IHDR_SIZE])
{
	uint16_t	options = 0;

	if (st->big_endian)
		options |= WIRE_IHDR_OPT_BIG_ENDIAN;
	options |= st->ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL;

	xp_put64(1, out, WIRE_MARKER);
	xp_put32(1, out + 8, WIRE_ID);
	xp_put32(1, out + 12, st->version);
	xp_put16(1, out + 16, options);
	memset(out + 18, 0, 6);
}

/*
 * Check the first n (< 24) octets of an image header that is still
 * arriving, so that a legacy image is refused as soon as it shows.
 */
int
header_image_partial(const uint8_t *in, size_t n, char *why, size_t len)
{
	size_t	i;

	for (i = 0; i < n && i < IHDR_MARKER_LEN; i++) {
		if (in[i] != 0xFF) {
			header_legacy_why(why, len);
			return -XP_ELEGACY;
		}
	}
	return 0;
}

/* Decode the image header into st (which is reset). */
int
header_image_get(struct xp_stream *st, const uint8_t *in, char *why,
    size_t len)
{
	uint32_t	id, version;
	uint16_t	options;
	int		rv;

	if ((rv = header_image_partial(in, IHDR_MARKER_LEN, why, len)) != 0)
		return rv;

	id = xp_get32(1, in + 8);
	if (id != WIRE_ID) {
		snprintf(why, len, "image header: id 0x%08x is not 0x%08x "
		    "(\"XENF\")", id, WIRE_ID);
		return -XP_EHEADER;
	}

	version = xp_get32(1, in + 12);
	options = xp_get16(1, in + 16);
	memset(st, 0, sizeof *st);
	if (version == WIRE_VERSION_DRAFTB)
		st->dialect = XP_DRAFTB;
	else if (version >= WIRE_VERSION_XEN_MIN && version <= WIRE_VERSION_XEN)
		st->dialect = XP_XEN;
	else {
		snprintf(why, len, "image header: version %u is not supported "
		    "(this reader takes %u, %u and %u)", version,
		    WIRE_VERSION_DRAFTB, WIRE_VERSION_XEN_MIN, WIRE_VERSION_XEN);
		return -XP_EVERSION;
	}
	st->version = version;
	st->ihdr_options = options;
	st->big_endian = (options & WIRE_IHDR_OPT_BIG_ENDIAN) != 0;

	if (st->dialect == XP_XEN && st->big_endian) {
		snprintf(why, len, "image header: big-endian Xen streams are "
		    "not supported (Xen writes only little-endian)");
		return -XP_EHEADER;
	}
	return 0;
}

size_t
header_domain_size(const struct xp_stream *st)
{
	return st->dialect == XP_XEN ? WIRE_DHDR_SIZE_XEN :
	    WIRE_DHDR_SIZE_DRAFTB;
}

/* Write the domain header; the reserved field is zero. */
size_t
header_domain_put(const struct xp_stream *st, uint8_t *out)
{
	int		be = st->big_endian;
	uint32_t	type = st->dom_type;

	if (st->dialect == XP_XEN) {
		if (type == WIRE_DOM_X86_PVH)
			type = WIRE_DOM_X86_HVM;
		xp_put32(be, out, type);
		xp_put16(be, out + 4, st->page_shift);
		xp_put16(be, out + 6, 0);
		xp_put32(be, out + 8, st->xen_major);
		xp_put32(be, out + 12, st->xen_minor);
		return WIRE_DHDR_SIZE_XEN;
	}
	xp_put16(be, out, st->arch);
	xp_put16(be, out + 2, st->dom_type);
	xp_put16(be, out + 4, st->page_shift);
	xp_put16(be, out + 6, 0);
	return WIRE_DHDR_SIZE_DRAFTB;
}

/*
 * Decode the domain header into st, whose dialect and byte order come from
 * the image header, and check it.  The reserved field is ignored.
 */
int
header_domain_get(struct xp_stream *st, const uint8_t *in, char *why,
    size_t len)
{
	int		be = st->big_endian;
	uint32_t	type;

	if (st->dialect == XP_XEN) {
		type = xp_get32(be, in);
		if (type != WIRE_DOM_X86_PV && type != WIRE_DOM_X86_HVM) {
			snprintf(why, len, "domain header: Xen domain type %u "
			    "is not PV (1) or HVM (2)", type);
			return -XP_EHEADER;
		}
		st->arch = WIRE_ARCH_X86;
		st->dom_type = (uint16_t)type;
		st->page_shift = xp_get16(be, in + 4);
		st->xen_major = xp_get32(be, in + 8);
		st->xen_minor = xp_get32(be, in + 12);
	} else {
		st->arch = xp_get16(be, in);
		st->dom_type = xp_get16(be, in + 2);
		st->page_shift = xp_get16(be, in + 4);
		st->xen_major = st->xen_minor = 0;
	}
	return stream_why(st, why, len);
}
