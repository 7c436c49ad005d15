/*
 * parser-throughput.c -- how fast the proto/ parser takes a ~1 GiB
 * in-memory image fed in 64 KiB chunks: draft-B with and without
 * checksums, and the Xen dialect.  Not built by default; from the top of
 * an in-tree build, after "make libxmigproto.la":
 *
 *	cc -O2 -I. -Iproto bench/parser-throughput.c .libs/libxmigproto.a -lz \
 *	    -o parser-throughput && ./parser-throughput
 *
 * It needs about 1.1 GiB of memory.  Records are 1024-page PAGE_DATA, so
 * every one spans many 64 KiB chunks and is gathered (copied) once.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"

#define BENCH_PAGES	1024			/* per PAGE_DATA record */
#define BENCH_TOTAL	(1024ULL << 20)		/* ~1 GiB of image */
#define BENCH_CHUNK	(64u << 10)

static int
bench_record(void *arg, const struct xp_stream *st, const struct xp_record *r)
{
	uint64_t	*n = arg;

	(void)st;
	*n += r->length;
	return 0;
}

static int
bench_build(struct xp_buf *b, enum xp_dialect d, uint16_t opts)
{
	struct xp_stream	 st;
	uint64_t		 entries[BENCH_PAGES], pfn = 0;
	uint32_t		 len = 8 + BENCH_PAGES * 8 + BENCH_PAGES * 4096;
	uint8_t			*body, *p;
	unsigned		 i;
	int			 rv = 0;

	stream_init(&st, d, 0, WIRE_ARCH_X86, WIRE_DOM_X86_HVM, 12);
	if ((body = malloc(len)) == NULL)
		return -XP_ENOMEM;
	for (i = 0; i < len; i++)
		body[i] = (uint8_t)(i * 31 + (i >> 12));
	if ((p = buf_extend(b, WIRE_IHDR_SIZE)) == NULL)
		goto fail;
	header_image_put(&st, p);
	if ((p = buf_extend(b, header_domain_size(&st))) == NULL)
		goto fail;
	header_domain_put(&st, p);
	if ((rv = record_encode(&st, b, REC_STATIC_DATA_END, NULL, 0,
	    opts)) != 0)
		goto out;
	while (b->len < BENCH_TOTAL) {
		for (i = 0; i < BENCH_PAGES; i++)
			entries[i] = body_pfn_entry(pfn++, PT_NOTAB);
		body_page_data_prefix_put(st.big_endian, body, BENCH_PAGES,
		    entries);
		if ((rv = record_encode(&st, b, REC_PAGE_DATA, body, len,
		    opts)) != 0)
			goto out;
	}
	rv = record_encode(&st, b, REC_END, NULL, 0, opts);
	goto out;
fail:
	rv = -XP_ENOMEM;
out:
	free(body);
	return rv;
}

static double
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
bench_run(const char *name, enum xp_dialect d, uint16_t opts)
{
	struct xp_buf		 b = { 0 };
	struct xp_parser	*p;
	uint64_t		 body = 0;
	size_t			 off, k;
	ssize_t			 r;
	double			 t0, t1, best = 0;
	int			 rv, round;

	if ((rv = bench_build(&b, d, opts)) != 0) {
		fprintf(stderr, "%s: build: %s\n", name, xp_strerror(rv));
		return 1;
	}
	for (round = 0; round < 3; round++) {
		p = parser_new(NULL, NULL, bench_record, &body);
		t0 = bench_now();
		for (off = 0; off < b.len; off += (size_t)r) {
			k = b.len - off < BENCH_CHUNK ? b.len - off : BENCH_CHUNK;
			if ((r = parser_feed(p, b.data + off, k)) <= 0)
				break;
		}
		rv = parser_finish(p);
		t1 = bench_now();
		if (rv != 0) {
			fprintf(stderr, "%s: %s\n", name,
			    parser_error(p)->msg);
			parser_free(p);
			buf_free(&b);
			return 1;
		}
		parser_free(p);
		if (best == 0 || t1 - t0 < best)
			best = t1 - t0;
	}
	printf("%-26s %6.0f MiB image  %8.0f MB/s  (best of 3, %u KiB "
	    "chunks)\n", name, b.len / 1048576.0, b.len / best / 1e6,
	    BENCH_CHUNK >> 10);
	buf_free(&b);
	return 0;
}

int
main(void)
{
	int	rv = 0;

	rv |= bench_run("draft-B, checksums", XP_DRAFTB,
	    WIRE_REC_OPT_CHECKSUM);
	rv |= bench_run("draft-B, no checksums", XP_DRAFTB, 0);
	rv |= bench_run("Xen v3", XP_XEN, 0);
	return rv;
}
