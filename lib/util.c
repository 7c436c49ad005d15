/*
 * util.c -- small helpers the engine and the commands share.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- messages: lib/ hands them to the program ---------------------------- */

static xmig_log_fn	log_fn;
static int		log_max = -1;

void
xmig_log_set(xmig_log_fn fn, int max_level)
{
	log_fn = fn;
	log_max = fn != NULL ? max_level : -1;
}

int
xmig_log_on(int level)
{
	return log_fn != NULL && level <= log_max;
}

void
xmig_log(int level, const char *fmt, ...)
{
	char	msg[1024];
	va_list	ap;

	if (!xmig_log_on(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_fn(level, msg);
}

int
xmig_cbs_log_on(const struct xmig_cbs *cbs, int level)
{
	if (cbs != NULL && cbs->log != NULL)
		return level <= cbs->log_level;
	return xmig_log_on(level);
}

void
xmig_cbs_log(const struct xmig_cbs *cbs, int level, const char *fmt, ...)
{
	char	msg[1024];
	va_list	ap;

	if (!xmig_cbs_log_on(cbs, level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cbs != NULL && cbs->log != NULL)
		cbs->log(cbs->arg, level, msg);
	else
		log_fn(level, msg);
}

const char *
xmig_features_str(uint32_t f, char *buf, size_t len)
{
	static const struct {
		uint32_t	 bit;
		const char	*name;
	} names[] = {
		{ XMIG_F_CHECKSUM, "checksum" },
		{ XMIG_F_DEFLATE, "deflate" },
		{ XMIG_F_ZERO_PAGES, "zero-pages" },
		{ XMIG_F_ACKS, "acks" },
		{ XMIG_F_HANDOVER, "handover" },
		{ XMIG_F_CHECKPOINTS, "checkpoints" },
		{ XMIG_F_PARALLEL, "parallel" },
		{ XMIG_F_CONFIG, "config" },
		{ XMIG_F_XXH3, "xxh3" },
		{ XMIG_F_ZSTD, "zstd" },
		{ XMIG_F_QUERY, "query" },
		{ XMIG_F_DELTA, "delta" },
	};
	size_t	i, o = 0;
	int	n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(f & names[i].bit))
			continue;
		f &= ~names[i].bit;
		n = snprintf(buf + o, len - o, "%s%s", o ? "," : "",
		    names[i].name);
		if (n < 0 || (size_t)n >= len - o)
			return buf;
		o += (size_t)n;
	}
	if (f != 0)
		snprintf(buf + o, len - o, "%s0x%x", o ? "," : "", f);
	else if (o == 0)
		snprintf(buf, len, "none");
	return buf;
}

int
page_is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i += 4)
		if ((w[i] | w[i + 1] | w[i + 2] | w[i + 3]) != 0)
			return 0;
	return 1;
}

int
write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
