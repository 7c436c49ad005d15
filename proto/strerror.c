/*
 * strerror.c -- text for the XP_E* codes, and text from a peer made safe
 * to print (xp_escape).
 */
#include "config.h"

#include <string.h>

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

/* ---- peer text ------------------------------------------------------------ */

/* One octet as it is printed: 1 to 4 characters into e, returns how many. */
static size_t
xp_escape_one(uint8_t c, char e[4])
{
	static const char	hex[] = "0123456789abcdef";
	const char		*s = NULL;

	switch (c) {
	case '\t':
		s = "\\t";
		break;
	case '\n':
		s = "\\n";
		break;
	case '\r':
		s = "\\r";
		break;
	case '\\':
		s = "\\\\";
		break;
	case '"':
		s = "\\\"";
		break;
	}
	if (s != NULL) {
		memcpy(e, s, 2);
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		e[0] = (char)c;
		return 1;
	}
	e[0] = '\\';
	e[1] = 'x';
	e[2] = hex[c >> 4];
	e[3] = hex[c & 15];
	return 4;
}

const char *
xp_escape(char *out, size_t outlen, const void *in, size_t inlen)
{
	const uint8_t	*p = in;
	size_t		 i, k, o = 0, total = 0, room;
	char		 e[4];

	if (outlen == 0)
		return out;
	for (i = 0; i < inlen; i++)
		total += xp_escape_one(p[i], e);
	/* What fits: all of it, or what leaves room for "...". */
	room = total < outlen ? total : outlen > 4 ? outlen - 4 : 0;
	for (i = 0; i < inlen; i++) {
		k = xp_escape_one(p[i], e);
		if (o + k > room)
			break;
		memcpy(out + o, e, k);
		o += k;
	}
	if (i < inlen && outlen >= 4) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
