/*
 * strerror.c -- text for the XP_E* codes.
 */
#include "config.h"

#include "proto.h"

static const char *const xp_errors[XP_E_MAX] = {
	[XP_OK]		= "success",
	[XP_ENOMEM]	= "out of memory",
	[XP_EINVAL]	= "invalid argument",
	[XP_ELEGACY]	= "legacy (pre-v2 Xen) image, convert it first",
	[XP_EHEADER]	= "bad image or domain header",
	[XP_EVERSION]	= "unsupported image version",
	[XP_ETOOBIG]	= "length above its maximum",
	[XP_ETYPE]	= "unknown mandatory record type",
	[XP_EOPTIONS]	= "unknown record option bits",
	[XP_ECHECKSUM]	= "record checksum mismatch",
	[XP_EBODY]	= "malformed record body",
	[XP_EORDER]	= "record out of order or not allowed here",
	[XP_ELIMIT]	= "pfn or vcpu beyond the receiver's limits",
	[XP_ETRUNCATED]	= "stream truncated",
	[XP_ETRAILING]	= "data after END",
	[XP_ECALLBACK]	= "stopped by a callback",
};

/* Accepts the code with either sign. */
const char *
xp_strerror(int code)
{
	if (code < 0) {
		if (code <= -XP_E_MAX)
			return "unknown error";
		code = -code;
	}
	if (code >= XP_E_MAX || xp_errors[code] == NULL)
		return "unknown error";
	return xp_errors[code];
}
