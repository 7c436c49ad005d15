/*
 * stream.c -- the description of a stream that the image and domain
 * headers carry: building one for a writer, and checking one.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto-int.h"

/*
 * Fill st for writing.  The Xen dialect is always version 3, little-endian
 * and x86; PVH is carried as HVM there (Xen runs PVH as an HVM container),
 * so dom_type becomes WIRE_DOM_X86_HVM.  An ARM domain cannot be written in
 * the Xen dialect: arch is kept so that stream_check() refuses it.
 */
void
stream_init(struct xp_stream *st, enum xp_dialect d, int big_endian,
    uint16_t arch, uint16_t dom_type, uint16_t page_shift)
{
	memset(st, 0, sizeof *st);
	st->dialect = d;
	st->arch = arch;
	st->dom_type = dom_type;
	st->page_shift = page_shift;
	if (d == XP_XEN) {
		st->version = WIRE_VERSION_XEN;
		st->big_endian = 0;
		if (arch == WIRE_ARCH_X86 && dom_type == WIRE_DOM_X86_PVH)
			st->dom_type = WIRE_DOM_X86_HVM;
	} else {
		st->version = WIRE_VERSION_DRAFTB;
		st->big_endian = big_endian != 0;
	}
	st->ihdr_options = st->big_endian ? WIRE_IHDR_OPT_BIG_ENDIAN : 0;
}

/*
 * The control framing (SPEC 13.1): draft-B records, little-endian, no
 * domain (arch, type and page_shift 0); the image header of a back-channel
 * carries options bit 1.
 */
void
stream_init_control(struct xp_stream *st)
{
	memset(st, 0, sizeof *st);
	st->dialect = XP_DRAFTB;
	st->version = WIRE_VERSION_DRAFTB;
	st->ihdr_options = WIRE_CONTROL_IHDR_OPTIONS;
}

/*
 * Check st against the rules of its dialect; on failure write a message
 * ("image header: ..." or "domain header: ...") into why and return a
 * negative XP_E* code.
 */
int
stream_why(const struct xp_stream *st, char *why, size_t len)
{
	switch (st->dialect) {
	case XP_DRAFTB:
		if (st->version != WIRE_VERSION_DRAFTB) {
			snprintf(why, len, "image header: version %u is not a "
			    "draft-B version", st->version);
			return -XP_EVERSION;
		}
		break;
	case XP_XEN:
		if (st->version < WIRE_VERSION_XEN_MIN ||
		    st->version > WIRE_VERSION_XEN) {
			snprintf(why, len, "image header: version %u is not a "
			    "Xen version", st->version);
			return -XP_EVERSION;
		}
		if (st->big_endian) {
			snprintf(why, len, "image header: big-endian Xen "
			    "streams are not supported (Xen writes only "
			    "little-endian)");
			return -XP_EHEADER;
		}
		if (st->arch != WIRE_ARCH_X86) {
			snprintf(why, len, "domain header: arch %u cannot be "
			    "carried in the Xen dialect (x86 only)", st->arch);
			return -XP_EHEADER;
		}
		break;
	default:
		snprintf(why, len, "image header: unknown dialect %d",
		    (int)st->dialect);
		return -XP_EINVAL;
	}

	switch (st->arch) {
	case WIRE_ARCH_X86:
		if (st->dom_type < WIRE_DOM_X86_PV ||
		    st->dom_type > WIRE_DOM_X86_PVH) {
			snprintf(why, len, "domain header: x86 domain type %u "
			    "is not PV (1), HVM (2) or PVH (3)", st->dom_type);
			return -XP_EHEADER;
		}
		if (st->page_shift != 12) {
			snprintf(why, len, "domain header: page_shift %u is "
			    "not 12 (x86 pages are 4096 octets)",
			    st->page_shift);
			return -XP_EHEADER;
		}
		break;
	case WIRE_ARCH_ARM:
		if (st->dom_type != 0) {
			snprintf(why, len, "domain header: ARM domain type %u "
			    "is not 0 (reserved for ARM)", st->dom_type);
			return -XP_EHEADER;
		}
		if (st->page_shift != 12 && st->page_shift != 14 &&
		    st->page_shift != 16) {
			snprintf(why, len, "domain header: page_shift %u is "
			    "not 12, 14 or 16 (ARM)", st->page_shift);
			return -XP_EHEADER;
		}
		break;
	default:
		snprintf(why, len, "domain header: arch %u is not x86 (1) or "
		    "ARM (2)", st->arch);
		return -XP_EHEADER;
	}
	return 0;
}

/*
 * Check a stream description, as a writer is about to use it or as the
 * parser read it.  Returns 0 or a negative XP_E* code with err (if not
 * NULL) filled in.
 */
int
stream_check(const struct xp_stream *st, struct xp_error *err)
{
	char	why[sizeof err->msg];
	int	rv;

	rv = stream_why(st, why, sizeof why);
	if (rv != 0 && err != NULL) {
		memset(err, 0, sizeof *err);
		err->code = -rv;
		err->index = UINT64_MAX;
		memcpy(err->msg, why, sizeof err->msg);
	}
	return rv;
}
