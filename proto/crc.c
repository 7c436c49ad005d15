/*
 * crc.c -- CRC-32 of the draft-B record footers: the IEEE 802.3
 * polynomial, bit-reflected, start value 0, the same numbers as zlib's
 * crc32().  Three implementations; at the first call the fastest of those
 * the CPU offers is chosen by a short measurement (an emulator such as
 * QEMU's TCG runs carry-less multiplication slower than zlib's tables,
 * real hardware several times faster):
 *
 *	"vpclmulqdq-avx512"	512-bit carry-less multiplication, 256 octets
 *				per step (x86-64 with VPCLMULQDQ and
 *				AVX-512 F, VL, BW)
 *	"pclmulqdq"		128-bit carry-less multiplication, 64 octets
 *				per step (x86-64 with PCLMULQDQ, SSE4.1)
 *	"zlib"			zlib's crc32_z(), everywhere else
 *
 * The mathematics.  P = x^32 + x^26 + x^23 + x^22 + x^16 + x^12 + x^11 +
 * x^10 + x^8 + x^7 + x^5 + x^4 + x^2 + x + 1 (0x104C11DB7).  An octet
 * string is the polynomial M whose highest coefficient is bit 0 of the
 * first octet ("reflected").  zlib's running value c is the complement of
 * a state S, and appending n octets B gives S' = S*x^(8n) + B*x^32 mod P;
 * for n >= 4 that is (B + S*x^(8n-32))*x^32 mod P: the state XORed into the
 * first four octets, then the whole message times x^32 modulo P.
 *
 * Loaded little-endian into a 128-bit register, sixteen octets put the
 * coefficient of x^(127-k) in bit k.  Write such a block X = H*x^64 + L:
 * H is in the low quadword, L in the high one.  Moving X forward over D
 * bits of message only needs something congruent to X*x^D modulo P:
 *
 *	X*x^D = H*x^(64+D) + L*x^D == H*(x^(64+D) mod P) + L*(x^D mod P)
 *
 * PCLMULQDQ of a reflected 64-bit a and a reflected 32-bit b (b held in
 * the low 32 bits) yields bit k = coefficient of x^(94-k) of a*b, which
 * read as a 128-bit block is a*b*x^33.  So a fold over D bits is
 *
 *	clmul(lo, rev32(x^(D+31) mod P)) ^ clmul(hi, rev32(x^(D-33) mod P))
 *
 * and the blocks that follow are XORed onto the result.  A rest shorter
 * than a block is folded in as the last 16 octets of the message (see
 * crc_finish128()); a message shorter than a block is taken as a block
 * with zeros in front, or below 8 octets goes through a table.
 * The last block R is reduced to the 32-bit remainder R*x^32 mod P in
 * three steps, each derived the same way (see crc_reduce128()): fold the
 * top 64 coefficients over 96 bits (constant x^95 mod P), fold the top 32
 * of the 96 left over 64 bits (x^63 mod P), then Barrett reduction of the
 * 64-bit rest with mu = floor(x^64 / P).
 *
 * Every constant is computed below by crc_consts_init() at the first call;
 * none is copied from anywhere.  tests/test-crc.c checks them against
 * zlib and checks every implementation against zlib's crc32().
 */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "proto.h"
#include "proto-int.h"

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 9)
#define CRC_X86	1
#include <immintrin.h>
#include <wmmintrin.h>
#endif

#define CRC_POLY_REFL	0xEDB88320u	/* P - x^32, bit-reflected */
#define CRC_POLY33_REFL	0x1DB710641ull	/* P, 33 bits, bit-reflected */

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);

/* Fold distances in bits; crc_k.fold[] holds one constant pair each. */
enum crc_fold {
	FOLD_128, FOLD_256, FOLD_384, FOLD_512, FOLD_1024, FOLD_1536,
	FOLD_2048, FOLD_NR
};
static const unsigned crc_fold_bits[FOLD_NR] = {
	[FOLD_128] = 128, [FOLD_256] = 256, [FOLD_384] = 384,
	[FOLD_512] = 512, [FOLD_1024] = 1024, [FOLD_1536] = 1536,
	[FOLD_2048] = 2048,
};

static struct crc_consts {
	/* {rev32(x^(D+31) mod P), rev32(x^(D-33) mod P)}: low, high quadword */
	uint64_t	fold[FOLD_NR][2];
	uint64_t	k95;		/* rev32(x^95 mod P) */
	uint64_t	k63;		/* rev32(x^63 mod P) */
	uint64_t	mu;		/* rev33(floor(x^64 / P)) */
	uint32_t	table[256];	/* one octet: rev32(b*x^32 mod P) */
} crc_k;

/* ---- constants ----------------------------------------------------------- */

/* x^k mod P, bit-reflected (bit 31 is x^0): k multiplications by x. */
uint32_t
xp_crc32_xpow(unsigned k)
{
	uint32_t	v = 0x80000000u;	/* x^0 */

	while (k-- > 0)
		v = (v >> 1) ^ ((v & 1) ? CRC_POLY_REFL : 0);
	return v;
}

/* Reverse the low n bits of v. */
static uint64_t
crc_rev(uint64_t v, unsigned n)
{
	uint64_t	r = 0;
	unsigned	i;

	for (i = 0; i < n; i++)
		r |= ((v >> i) & 1) << (n - 1 - i);
	return r;
}

/* floor(x^64 / P), 33 bits, bit-reflected (bit 0 is x^32). */
uint64_t
xp_crc32_mu(void)
{
	uint64_t	r = 0, q = 0;
	int		i;

	/*
	 * Long division in natural bit order (P is 0x104C11DB7): bring down
	 * the dividend's coefficients of x^64 .. x^0 one at a time.
	 */
	for (i = 64; i >= 0; i--) {
		r = r << 1 | (i == 64);
		q <<= 1;
		if (r >> 32) {
			r ^= 0x104C11DB7ull;
			q |= 1;
		}
	}
	return crc_rev(q, 33);
}

static void
crc_consts_init(void)
{
	unsigned	i, j, d;
	uint32_t	c;

	for (i = 0; i < FOLD_NR; i++) {
		d = crc_fold_bits[i];
		crc_k.fold[i][0] = xp_crc32_xpow(d + 31);
		crc_k.fold[i][1] = xp_crc32_xpow(d - 33);
	}
	crc_k.k95 = xp_crc32_xpow(95);
	crc_k.k63 = xp_crc32_xpow(63);
	crc_k.mu = xp_crc32_mu();
	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ ((c & 1) ? CRC_POLY_REFL : 0);
		crc_k.table[i] = c;
	}
}

/* The state (not its complement) over n octets, one at a time. */
static inline uint32_t
crc_bytes(uint32_t s, const uint8_t *p, size_t n)
{
	while (n-- > 0)
		s = crc_k.table[(s ^ *p++) & 0xff] ^ (s >> 8);
	return s;
}

/* ---- zlib ---------------------------------------------------------------- */

static uint32_t
crc_zlib(uint32_t crc, const uint8_t *p, size_t len)
{
	return (uint32_t)crc32_z(crc, p, len);
}

#ifdef CRC_X86
/* ---- PCLMULQDQ ----------------------------------------------------------- */

#define CRC_PCLMUL	__attribute__((target("pclmul,sse4.1")))

#define CRC_SHORT_MIN	8	/* below: the table; crc_short128() needs 8 */

static inline CRC_PCLMUL __m128i
crc_k128(enum crc_fold f)
{
	return _mm_loadu_si128((const __m128i *)(const void *)crc_k.fold[f]);
}

/* x moved forward over the distance k was made for. */
static inline CRC_PCLMUL __m128i
crc_fold128(__m128i x, __m128i k)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
	    _mm_clmulepi64_si128(x, k, 0x11));
}

/*
 * The state R*x^32 mod P of a final block R (bit k: x^(127-k)).
 *
 * T = R_hi*x^96 + R_lo*x^32, 96 bits, bit k: x^(95-k).  The product of
 * the low quadword (R_hi) with rev32(x^95) has bit k = x^(94-k) of
 * R_hi*x^95, i.e. x^(95-k) of R_hi*x^96; R_lo*x^32 is the high quadword
 * moved down.
 * U = T_hi*x^64 + T_lo, 64 bits, bit k: x^(63-k); T_hi (32 bits) times
 * rev32(x^63) gives bit k = x^(62-k) of T_hi*x^63 = x^(63-k) of T_hi*x^64.
 * Barrett: q = floor(U_hi*mu / x^32) is the low dword of the product of
 * rev32(U_hi) and rev33(mu) (bit k: x^(63-k)); U + q*P has its remainder
 * in bits 32..63 of the product of rev32(q) and rev33(P) XOR U.
 */
static inline CRC_PCLMUL uint32_t
crc_reduce128(__m128i r)
{
	const __m128i	lo32 = _mm_set_epi32(0, 0, 0, -1);
	__m128i		t, u, q;

	t = _mm_xor_si128(_mm_clmulepi64_si128(r,
	    _mm_cvtsi64_si128((long long)crc_k.k95), 0x00),
	    _mm_srli_si128(r, 8));
	u = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(t, lo32),
	    _mm_cvtsi64_si128((long long)crc_k.k63), 0x00),
	    _mm_srli_si128(t, 4));
	q = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(u, lo32),
	    _mm_cvtsi64_si128((long long)crc_k.mu), 0x00), lo32);
	q = _mm_xor_si128(_mm_clmulepi64_si128(q,
	    _mm_cvtsi64_si128((long long)CRC_POLY33_REFL), 0x00), u);
	return (uint32_t)_mm_extract_epi32(q, 1);
}

/*
 * pshufb masks (bit 7 set: a zero octet, else the octet its low 4 bits
 * name): the 16 octets at crc_shuf + n move a block's first n octets to
 * its end and zero the rest; with bit 7 flipped they move its last 16 - n
 * octets to its start and zero the rest.  Bit 7 is set exactly in the
 * first 16 - n, which blendv uses to pick the octets of the shifted block.
 */
static const uint8_t crc_shuf[32] = {
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
	0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};

/*
 * x is the block that ends at p (at least 16 octets of the buffer lie
 * before p): fold in the blocks from p onwards and the rest, and return
 * the state.  A rest of n < 16 octets is taken as the last 16 octets of
 * the message, which overlap x: x's first n octets (A) come before them,
 * A*x^128 is folded onto them.
 */
static inline CRC_PCLMUL uint32_t
crc_finish128(__m128i x, const uint8_t *p, size_t len)
{
	const __m128i	k128 = crc_k128(FOLD_128);
	__m128i		sh, a, b;

	for (; len >= 16; p += 16, len -= 16)
		x = _mm_xor_si128(crc_fold128(x, k128),
		    _mm_loadu_si128((const __m128i *)(const void *)p));
	if (len > 0) {
		sh = _mm_loadu_si128((const __m128i *)(const void *)
		    (crc_shuf + len));
		a = _mm_shuffle_epi8(x, sh);
		b = _mm_shuffle_epi8(x, _mm_xor_si128(sh,
		    _mm_set1_epi8((char)0x80)));
		b = _mm_blendv_epi8(_mm_loadu_si128((const __m128i *)
		    (const void *)(p + len - 16)), b, sh);
		x = _mm_xor_si128(crc_fold128(a, k128), b);
	}
	return crc_reduce128(x);
}

/*
 * A message of 8 <= n < 16 octets as one block with zeros in front: its
 * first and last 8 octets (they overlap) moved into place, then the state
 * XORed into its first four octets.
 */
static inline CRC_PCLMUL uint32_t
crc_short128(uint32_t s, const uint8_t *p, size_t n)
{
	__m128i		sh, x;
	uint64_t	head, tail;

	memcpy(&head, p, 8);
	memcpy(&tail, p + n - 8, 8);
	sh = _mm_loadu_si128((const __m128i *)(const void *)(crc_shuf + n));
	x = _mm_or_si128(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)head),
	    sh), _mm_slli_si128(_mm_cvtsi64_si128((long long)tail), 8));
	x = _mm_xor_si128(x, _mm_shuffle_epi8(_mm_cvtsi32_si128((int)s), sh));
	return crc_reduce128(x);
}

static CRC_PCLMUL uint32_t
crc_pclmul(uint32_t crc, const uint8_t *p, size_t len)
{
	__m128i		x0, x1, x2, x3, k;
	uint32_t	s = ~crc;

	if (len < CRC_SHORT_MIN)
		return ~crc_bytes(s, p, len);
	if (len < 16)
		return ~crc_short128(s, p, len);
	x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)p),
	    _mm_cvtsi32_si128((int)s));
	if (len < 64)
		return ~crc_finish128(x0, p + 16, len - 16);

	/* Four lanes 16 octets apart, each folded over 512 bits. */
	x1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
	x2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
	x3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
	p += 64;
	len -= 64;
	k = crc_k128(FOLD_512);
	for (; len >= 64; p += 64, len -= 64) {
		x0 = _mm_xor_si128(crc_fold128(x0, k),
		    _mm_loadu_si128((const __m128i *)(const void *)p));
		x1 = _mm_xor_si128(crc_fold128(x1, k),
		    _mm_loadu_si128((const __m128i *)(const void *)(p + 16)));
		x2 = _mm_xor_si128(crc_fold128(x2, k),
		    _mm_loadu_si128((const __m128i *)(const void *)(p + 32)));
		x3 = _mm_xor_si128(crc_fold128(x3, k),
		    _mm_loadu_si128((const __m128i *)(const void *)(p + 48)));
	}
	/* Lanes 0, 1, 2 are 384, 256 and 128 bits before lane 3. */
	x3 = _mm_xor_si128(x3, crc_fold128(x0, crc_k128(FOLD_384)));
	x3 = _mm_xor_si128(x3, crc_fold128(x1, crc_k128(FOLD_256)));
	x3 = _mm_xor_si128(x3, crc_fold128(x2, crc_k128(FOLD_128)));
	return ~crc_finish128(x3, p, len);
}

static int
crc_pclmul_usable(void)
{
	return __builtin_cpu_supports("pclmul") &&
	    __builtin_cpu_supports("sse4.1");
}

/* ---- VPCLMULQDQ + AVX-512 ------------------------------------------------ */

#define CRC_VPCLMUL	__attribute__((target( \
	"vpclmulqdq,avx512f,avx512vl,avx512bw,pclmul,sse4.1")))

static inline CRC_VPCLMUL __m512i
crc_k512(enum crc_fold f)
{
	return _mm512_broadcast_i32x4(crc_k128(f));
}

/* Each 128-bit lane of z moved forward by its lane of k, then XOR d. */
static inline CRC_VPCLMUL __m512i
crc_fold512(__m512i z, __m512i k, __m512i d)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(z, k, 0x00),
	    _mm512_clmulepi64_epi128(z, k, 0x11), d, 0x96);	/* a^b^c */
}

static CRC_VPCLMUL uint32_t
crc_vpclmul(uint32_t crc, const uint8_t *p, size_t len)
{
	__m512i		z0, z1, z2, z3, k;
	__m128i		x;
	uint32_t	s = ~crc;

	if (len < 256)
		return crc_pclmul(crc, p, len);	/* as fast there */

	/* Four registers 64 octets apart, each folded over 2048 bits. */
	z0 = _mm512_xor_si512(_mm512_loadu_si512(p),
	    _mm512_maskz_set1_epi32(0x1, (int)s));
	z1 = _mm512_loadu_si512(p + 64);
	z2 = _mm512_loadu_si512(p + 128);
	z3 = _mm512_loadu_si512(p + 192);
	p += 256;
	len -= 256;
	k = crc_k512(FOLD_2048);
	for (; len >= 256; p += 256, len -= 256) {
		z0 = crc_fold512(z0, k, _mm512_loadu_si512(p));
		z1 = crc_fold512(z1, k, _mm512_loadu_si512(p + 64));
		z2 = crc_fold512(z2, k, _mm512_loadu_si512(p + 128));
		z3 = crc_fold512(z3, k, _mm512_loadu_si512(p + 192));
	}
	z0 = crc_fold512(z0, crc_k512(FOLD_1536),
	    crc_fold512(z1, crc_k512(FOLD_1024),
	    crc_fold512(z2, crc_k512(FOLD_512), z3)));
	/* Then one register, over 512 bits. */
	k = crc_k512(FOLD_512);
	for (; len >= 64; p += 64, len -= 64)
		z0 = crc_fold512(z0, k, _mm512_loadu_si512(p));

	/*
	 * Lanes 0, 1, 2 are 384, 256 and 128 bits before lane 3; lane 3 is
	 * folded too (by the 128-bit pair) but that product is not used.
	 */
	k = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(
	    _mm512_setzero_si512(), crc_k128(FOLD_384), 0),
	    crc_k128(FOLD_256), 1), crc_k128(FOLD_128), 2);
	z1 = _mm512_xor_si512(_mm512_clmulepi64_epi128(z0, k, 0x00),
	    _mm512_clmulepi64_epi128(z0, k, 0x11));
	x = _mm_ternarylogic_epi64(_mm512_extracti32x4_epi32(z0, 3),
	    _mm512_extracti32x4_epi32(z1, 0),
	    _mm512_extracti32x4_epi32(z1, 1), 0x96);
	x = _mm_xor_si128(x, _mm512_extracti32x4_epi32(z1, 2));
	return ~crc_finish128(x, p, len);
}

static int
crc_vpclmul_usable(void)
{
	return crc_pclmul_usable() &&
	    __builtin_cpu_supports("vpclmulqdq") &&
	    __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw");
}
#endif /* CRC_X86 */

/* ---- dispatch ------------------------------------------------------------ */

/* Best first; the last one always works. */
static const struct crc_impl {
	const char	*name;
	crc_fn		 fn;
	int		(*usable)(void);	/* NULL: always */
} crc_impls[] = {
#ifdef CRC_X86
	{ .name = "vpclmulqdq-avx512", .fn = crc_vpclmul,
	  .usable = crc_vpclmul_usable },
	{ .name = "pclmulqdq", .fn = crc_pclmul, .usable = crc_pclmul_usable },
#endif
	{ .name = "zlib", .fn = crc_zlib, .usable = NULL },
};
#define CRC_NIMPLS	(sizeof crc_impls / sizeof crc_impls[0])

static pthread_once_t		 crc_once = PTHREAD_ONCE_INIT;
static const struct crc_impl	*crc_best;	/* chosen by crc_init() */
static const struct crc_impl	*crc_cur;	/* crc_best unless forced */

/* Nanoseconds of the fastest of three CRCs of buf by impl. */
static uint64_t
crc_time(const struct crc_impl *impl, const uint8_t *buf, size_t len)
{
	struct timespec	 a, b;
	uint64_t	 best = UINT64_MAX, ns;
	volatile uint32_t sink = 0;
	int		 r;

	for (r = 0; r < 3; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		sink ^= impl->fn(0, buf, len);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u +
		    (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
		if (ns < best)
			best = ns;
	}
	(void)sink;
	return best;
}

static void
crc_init(void)
{
	static uint8_t	 buf[64 << 10];
	uint64_t	 t, best = UINT64_MAX;
	size_t		 i;

	crc_consts_init();
#ifdef CRC_X86
	__builtin_cpu_init();
#endif
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));
	/*
	 * Every usable implementation, timed on 64 KiB (well under a
	 * millisecond each on hardware): the fastest wins, the first listed
	 * on a tie.
	 */
	for (i = 0; i < CRC_NIMPLS; i++) {
		if (crc_impls[i].usable != NULL && !crc_impls[i].usable())
			continue;
		t = crc_time(&crc_impls[i], buf, sizeof buf);
		if (crc_best == NULL || t < best) {
			crc_best = &crc_impls[i];
			best = t;
		}
	}
	crc_cur = crc_best;
}

uint32_t
xp_crc32(uint32_t crc, const void *buf, size_t len)
{
	if (buf == NULL)
		return 0;	/* as zlib: crc32(c, NULL, n) is 0 */
	pthread_once(&crc_once, crc_init);
	return crc_cur->fn(crc, buf, len);
}

const char *
xp_crc32_impl(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_cur->name;
}

int
xp_crc32_force(const char *name)
{
	size_t	i;

	pthread_once(&crc_once, crc_init);
	if (name == NULL) {
		crc_cur = crc_best;
		return 0;
	}
	for (i = 0; i < CRC_NIMPLS; i++) {
		if (strcmp(crc_impls[i].name, name) != 0)
			continue;
		if (crc_impls[i].usable != NULL && !crc_impls[i].usable())
			return -XP_EINVAL;
		crc_cur = &crc_impls[i];
		return 0;
	}
	return -XP_EINVAL;
}
