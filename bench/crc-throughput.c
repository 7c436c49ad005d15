/*
 * crc-throughput.c -- GB/s of zlib's crc32() and of each xp_crc32()
 * implementation the CPU can run, on a warm 64 MiB buffer and on a 4 KiB
 * and a 64 KiB one (in cache, called over and over, as for one page and
 * one record).  Not built by default; from the top of an in-tree build,
 * after "make libxmigproto.la":
 *
 *	cc -O2 -I. -Iproto bench/crc-throughput.c .libs/libxmigproto.a -lz \
 *	    -lpthread -o crc-throughput && ./crc-throughput
 *
 * Each figure is the best of several timed rounds; 1 GB/s is 10^9 octets
 * per second.  The values are checked against zlib as they go.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "proto.h"
#include "proto-int.h"

#define BENCH_BIG	(64u << 20)
#define BENCH_ROUNDS	7
#define BENCH_BYTES	(1024u << 20)	/* octets per round, all sizes */

static const char *const names[] = { "vpclmulqdq-avx512", "pclmulqdq",
    "zlib" };

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Best GB/s over the rounds; *crc is the value of the last call. */
static double
bench(int use_zlib, const uint8_t *buf, size_t len, uint32_t *crc)
{
	double		best = 0, t, gbs;
	size_t		i, calls = BENCH_BYTES / len;
	uint32_t	c = 0;
	int		r;

	for (r = 0; r < BENCH_ROUNDS; r++) {
		t = now();
		for (i = 0; i < calls; i++)
			c = use_zlib ? (uint32_t)crc32_z(0, buf, len) :
			    xp_crc32(0, buf, len);
		t = now() - t;
		gbs = (double)calls * len / t / 1e9;
		if (gbs > best)
			best = gbs;
	}
	*crc = c;
	return best;
}

int
main(void)
{
	static const size_t	sizes[] = { 4096, 65536, BENCH_BIG };
	uint8_t			*buf;
	uint32_t		 want, got;
	size_t			 i, s;
	double			 gbs;
	int			 rv = 0;

	if ((buf = malloc(BENCH_BIG)) == NULL)
		return 1;
	for (i = 0; i < BENCH_BIG; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);

	printf("best implementation here: %s\n", xp_crc32_impl());
	printf("%-20s %10s %10s %10s\n", "GB/s", "4 KiB", "64 KiB", "64 MiB");
	printf("%-20s", "zlib crc32_z()");
	for (s = 0; s < 3; s++)
		printf(" %10.2f", bench(1, buf, sizes[s], &want));
	printf("\n");
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (xp_crc32_force(names[i]) != 0) {
			printf("%-20s (not on this CPU)\n", names[i]);
			continue;
		}
		printf("%-20s", names[i]);
		for (s = 0; s < 3; s++) {
			gbs = bench(0, buf, sizes[s], &got);
			want = (uint32_t)crc32_z(0, buf, sizes[s]);
			if (got != want) {
				printf(" %10s", "WRONG");
				rv = 1;
			} else
				printf(" %10.2f", gbs);
		}
		printf("\n");
	}
	free(buf);
	return rv;
}
