/*
 * tap.h -- the smallest test harness: CHECK() counts and reports, the
 * program exits non-zero if any check failed and prints
 * "N passed, N failed" as its last line.
 */
#ifndef XMIG_TAP_H
#define XMIG_TAP_H

#include <stdio.h>
#include <stdlib.h>

static unsigned tap_pass, tap_fail;

#define CHECK(cond, ...) do {						\
	if (cond) {							\
		tap_pass++;						\
	} else {							\
		tap_fail++;						\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__,	\
		    #cond);						\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

static inline int
tap_done(void)
{
	printf("%u passed, %u failed\n", tap_pass, tap_fail);
	return tap_fail ? 1 : 0;
}

#endif
