/*
 * test-crc.c -- xp_crc32() against zlib's crc32(): the constants it
 * derives, every length 0..4096 at every alignment 0..63 (at the start and
 * at the very end of an allocation, so that ASan sees any over-read), the
 * running value across random splits, 64 MiB and more than 4 GiB in one
 * call.  Each implementation the CPU can run is tested by itself.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include <zlib.h>

#include "proto.h"
#include "proto-int.h"
#include "tap.h"

#define MAXLEN		4096u
#define MAXALIGN	64u
#define BIG		(64u << 20)

static const char *const impls[] = { "vpclmulqdq-avx512", "pclmulqdq", "zlib" };

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
fill(uint8_t *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 32);
}

/* The test's own multiplication by x modulo P, bit-reflected. */
static uint32_t
mulx(uint32_t v)
{
	return (v >> 1) ^ ((v & 1) ? 0xEDB88320u : 0);
}

/* Natural-order carry-less product of a (33 bits) and b (33 bits). */
static uint64_t
clmul33(uint64_t a, uint64_t b)
{
	uint64_t	r = 0;
	int		i;

	for (i = 0; i < 33; i++)
		if ((b >> i) & 1)
			r ^= a << i;
	return r;
}

static uint64_t
rev(uint64_t v, unsigned n)
{
	uint64_t	r = 0;
	unsigned	i;

	for (i = 0; i < n; i++)
		r |= ((v >> i) & 1) << (n - 1 - i);
	return r;
}

/*
 * x^k mod P from zlib alone: a state of x^0 (running value ~0x80000000)
 * carried over k/8 zero octets is x^k mod P.  For the k that are not a
 * multiple of 8, x^k times x^r (r < 8, by mulx()) must be x^(k+r).
 */
static void
test_constants(void)
{
	static const uint8_t	zero[MAXLEN / 8 + 1];
	uint32_t		v, z;
	uint64_t		mu, prod;
	unsigned		k, r, bad = 0;

	for (k = 0; k <= MAXLEN; k++) {
		v = xp_crc32_xpow(k);
		for (r = 0; (k + r) % 8 != 0; r++)
			v = mulx(v);
		z = ~(uint32_t)crc32(~0x80000000u, zero, (k + r) / 8);
		if (v != z && bad++ < 5)
			CHECK(v == z, "x^%u mod P: 0x%08" PRIx32
			    " (times x^%u) vs zlib 0x%08" PRIx32, k, v, r, z);
	}
	CHECK(bad == 0, "%u of the x^k mod P, k = 0..%u, differ from zlib",
	    bad, MAXLEN);

	/* mu = floor(x^64 / P): x^64 - mu*P has degree below 32. */
	mu = rev(xp_crc32_mu(), 33);
	prod = clmul33(mu, 0x104C11DB7ull);	/* degree 64: bit 64 is lost */
	CHECK((mu >> 32) == 1, "mu 0x%" PRIx64 " is not of degree 32", mu);
	CHECK((prod >> 32) == 0, "x^64 - mu*P = 0x%" PRIx64 " (bit 64 aside) "
	    "is not below x^32", prod);
}

static void
test_basics(const char *name)
{
	static const char	check[] = "123456789";
	uint8_t			one = 0x5a;

	CHECK(xp_crc32(0, check, 9) == 0xCBF43926u, "%s: \"123456789\" -> "
	    "0x%08" PRIx32, name, xp_crc32(0, check, 9));
	CHECK(xp_crc32(0, check, 0) == 0, "%s: empty", name);
	CHECK(xp_crc32(0x12345678u, check, 0) == 0x12345678u,
	    "%s: empty keeps the running value", name);
	CHECK(xp_crc32(0x12345678u, NULL, 0) == (uint32_t)crc32(0x12345678u,
	    NULL, 0), "%s: NULL as zlib", name);
	CHECK(xp_crc32(0x12345678u, &one, 1) == (uint32_t)crc32(0x12345678u,
	    &one, 1), "%s: one octet", name);
}

/*
 * Every length at every alignment, with the data at the start of a block
 * of exactly align + MAXLEN octets and again at its end.
 */
static void
test_lengths(const char *name, const uint8_t *data, const uint32_t *head,
    const uint32_t *tail)
{
	uint8_t		*blk;
	size_t		 a, n, bad = 0;
	uint32_t	 c;

	for (a = 0; a < MAXALIGN; a++) {
		if ((blk = malloc(a + MAXLEN)) == NULL)
			abort();
		memcpy(blk + a, data, MAXLEN);
		for (n = 0; n <= MAXLEN; n++) {
			c = xp_crc32(0, blk + a, n);
			if (c != head[n] && bad++ < 5)
				CHECK(c == head[n], "%s: align %zu length %zu: "
				    "0x%08" PRIx32 " vs zlib 0x%08" PRIx32,
				    name, a, n, c, head[n]);
			c = xp_crc32(0, blk + a + MAXLEN - n, n);
			if (c != tail[n] && bad++ < 5)
				CHECK(c == tail[n], "%s: align %zu last %zu: "
				    "0x%08" PRIx32 " vs zlib 0x%08" PRIx32,
				    name, a, n, c, tail[n]);
		}
		free(blk);
	}
	CHECK(bad == 0, "%s: %zu of %u lengths x alignments differ", name,
	    bad, 2 * MAXALIGN * (MAXLEN + 1));
}

/* A buffer cut at random places, the running value carried over. */
static void
test_splits(const char *name, const uint8_t *big, uint32_t want)
{
	size_t		off, n, cuts, bad = 0;
	uint32_t	c, z;
	int		round;

	for (round = 0; round < 200; round++) {
		/* Short pieces over a short prefix, a random start value. */
		c = z = (uint32_t)rnd();
		for (off = 0; off < 3 * MAXLEN; off += n) {
			n = rnd() % 700;
			if (n > 3 * MAXLEN - off)
				n = 3 * MAXLEN - off;
			c = xp_crc32(c, big + off, n);
			z = (uint32_t)crc32(z, big + off, (uInt)n);
		}
		if (c != z)
			bad++;
	}
	CHECK(bad == 0, "%s: %zu of 200 short split runs differ", name, bad);

	/* The whole big buffer in a few long pieces. */
	for (round = 0; round < 3; round++) {
		c = 0;
		cuts = 0;
		for (off = 0; off < BIG; off += n, cuts++) {
			n = (size_t)(rnd() % (BIG / 4));
			if (n > BIG - off)
				n = BIG - off;
			c = xp_crc32(c, big + off, n);
		}
		CHECK(c == want, "%s: 64 MiB in %zu pieces: 0x%08" PRIx32
		    " vs 0x%08" PRIx32, name, cuts, c, want);
	}
	c = xp_crc32(0, big, BIG);
	CHECK(c == want, "%s: 64 MiB at once: 0x%08" PRIx32 " vs zlib 0x%08"
	    PRIx32, name, c, want);
	c = xp_crc32(0, big + 1, BIG - 1);
	CHECK(c == (uint32_t)crc32(0, big + 1, BIG - 1), "%s: 64 MiB - 1 at "
	    "offset 1", name);
}

/*
 * More than 4 GiB in one call: a mapping that is all zero pages but for
 * random octets in its first and last pages.  The expected value comes
 * from zlib's crc32() over the two pages and crc32_combine() for the zeros
 * between them (zeros of 2n octets: the zeros of n combined with
 * themselves).
 */
#define HUGE_LEN	((4ull << 30) + 4096 * 3 + 123)

static uint8_t	*huge;
static uint32_t	 huge_want;

static void
huge_setup(void)
{
	uLong		zc, part;
	uint64_t	mid, bit;
	size_t		pg = 4096;

	huge = mmap(NULL, HUGE_LEN, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (huge == MAP_FAILED) {
		huge = NULL;
		printf("# skipped the > 4 GiB test: cannot map %llu octets\n",
		    (unsigned long long)HUGE_LEN);
		return;
	}
	fill(huge, pg);
	fill(huge + HUGE_LEN - pg, pg);

	/* Zeros of mid octets by binary doubling. */
	mid = HUGE_LEN - 2 * pg;
	zc = 0;				/* crc of no octets */
	part = crc32(0, huge + pg, 1);	/* crc of one zero octet */
	for (bit = 1; bit <= mid; bit <<= 1) {
		if (mid & bit)
			zc = crc32_combine(zc, part, (z_off_t)bit);
		part = crc32_combine(part, part, (z_off_t)bit);
	}
	huge_want = (uint32_t)crc32(crc32_combine(crc32(0, huge, (uInt)pg),
	    zc, (z_off_t)mid), huge + HUGE_LEN - pg, (uInt)pg);
}

static void
test_huge(const char *name)
{
	uint32_t	c;

	if (huge == NULL)
		return;
	c = xp_crc32(0, huge, HUGE_LEN);
	CHECK(c == huge_want, "%s: %llu octets at once: 0x%08" PRIx32
	    " vs 0x%08" PRIx32, name, (unsigned long long)HUGE_LEN, c,
	    huge_want);
}

int
main(void)
{
	uint8_t		*data, *big;
	uint32_t	*head, *tail, want;
	size_t		 n, i;
	int		 tested = 0;

	printf("# best implementation: %s\n", xp_crc32_impl());
	test_constants();

	data = malloc(MAXLEN);
	head = malloc((MAXLEN + 1) * sizeof *head);
	tail = malloc((MAXLEN + 1) * sizeof *tail);
	big = malloc(BIG);
	if (data == NULL || head == NULL || tail == NULL || big == NULL)
		abort();
	fill(data, MAXLEN);
	for (n = 0; n <= MAXLEN; n++) {
		head[n] = (uint32_t)crc32(0, data, (uInt)n);
		tail[n] = (uint32_t)crc32(0, data + MAXLEN - n, (uInt)n);
	}
	fill(big, BIG);
	want = (uint32_t)crc32(0, big, BIG);
	huge_setup();

	CHECK(xp_crc32_force("no-such-crc") == -XP_EINVAL, "unknown name");
	for (i = 0; i < sizeof impls / sizeof impls[0]; i++) {
		if (xp_crc32_force(impls[i]) != 0) {
			printf("# %s: not in this build or not on this CPU, "
			    "skipped\n", impls[i]);
			continue;
		}
		CHECK(strcmp(xp_crc32_impl(), impls[i]) == 0, "forced %s, "
		    "got %s", impls[i], xp_crc32_impl());
		tested++;
		test_basics(impls[i]);
		test_lengths(impls[i], data, head, tail);
		test_splits(impls[i], big, want);
		test_huge(impls[i]);
		printf("# %s: tested\n", impls[i]);
	}
	CHECK(tested >= 1, "no implementation could be tested");
	CHECK(xp_crc32_force("zlib") == 0, "zlib is always there");
	CHECK(xp_crc32_force(NULL) == 0, "back to the best");
	test_basics(xp_crc32_impl());

	if (huge != NULL)
		munmap(huge, HUGE_LEN);
	free(big);
	free(tail);
	free(head);
	free(data);
	return tap_done();
}
