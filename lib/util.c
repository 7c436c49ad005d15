/*
 * util.c -- small helpers the engine and the commands share.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmig.h"

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mult = 1;

	if (s == NULL || *s == '\0' || *s == '-' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mult = 1ULL << 10; end++;
		break;
	case 'm': case 'M':
		mult = 1ULL << 20; end++;
		break;
	case 'g': case 'G':
		mult = 1ULL << 30; end++;
		break;
	case 't': case 'T':
		mult = 1ULL << 40; end++;
		break;
	default:
		return -1;
	}
	if (*end == 'i' && mult > 1)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	if (v * (double)mult >= 18446744073709551615.0)
		return -1;
	*out = (uint64_t)(v * (double)mult);
	return 0;
}

void
hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void
json_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return;
	for (; *in != '\0' && o + 7 < outlen; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}
