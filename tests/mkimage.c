/*
 * mkimage.c -- write sample saved-domain images for the tests, through the
 * proto encoders only.  Test-only: not installed.
 *
 * The images are complete and valid: an x86 PV image carries X86_PV_INFO
 * (64-bit, 4 levels), the CPUID and MSR policies and STATIC_DATA_END
 * (neither in Xen v2), X86_PV_P2M_FRAMES for the pfn range, PAGE_DATA
 * batches of mixed page types, X86_TSC_INFO, SHARED_INFO and the four
 * records of every vcpu; an HVM (or PVH) image the policies,
 * STATIC_DATA_END, PAGE_DATA, X86_TSC_INFO, HVM_CONTEXT and HVM_PARAMS, in
 * the order Xen's own saver writes them.  Everything is derived from the
 * seed, so the same arguments give the same octets.  xmig's extensions
 * (--zero-pages, --deflate, --negotiate) change how the memory is carried,
 * never what it is.
 */
#include "config.h"

#include <err.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MK_PAGE_SHIFT	12
#define MK_PAGE_SIZE	(1u << MK_PAGE_SHIFT)
#define MK_OPTIONAL	0x80001234u	/* an optional type nobody knows */

struct gen {
	struct xp_stream st;
	struct xp_buf	 buf;
	FILE		*f;
	const char	*path;
	uint16_t	 opts;		/* record options (draft-B) */
	uint64_t	 rng;
	int		 zero_pages;	/* zero NOTAB pages as XMIG_ZERO_PAGES */
	int		 deflate;	/* -2: no; else the zlib level */
	int		 zstd;		/* -1: no; else the zstd level */

	int		 pv;		/* x86 PV, else HVM/PVH or ARM */
	int		 arm;		/* ARM: pages only */
	uint32_t	 pages;
	uint32_t	 vcpus;
	unsigned	*types;		/* page type of each pfn */
};

static void
usage(void)
{
	fprintf(stderr,
"usage: mkimage [--dialect draftb|xen] [--version 2|3] [--big-endian]\n"
"               [--no-checksum] [--type pv|hvm|pvh] [--pages N] [--vcpus N]\n"
"               [--arch x86|arm] [--seed S] [--checkpoints K] [--optional]\n"
"               [--zero-pages] [--deflate[=LEVEL] | --zstd[=LEVEL]]\n"
"               [--negotiate] OUT\n"
"\n"
"Write a complete, valid sample image to OUT (- for standard output).\n"
"  --dialect      draftb (image version 1, the default) or xen\n"
"  --version      Xen dialect: 3 (default) or 2 (no policies, no\n"
"                 STATIC_DATA_END)\n"
"  --big-endian   draft-B: records in big-endian byte order\n"
"  --no-checksum  draft-B: records without the CRC-32 (Xen has none)\n"
"  --type         pv (default), hvm or pvh (Xen dialect: written as HVM)\n"
"  --arch         x86 (default) or arm (draft-B only: STATIC_DATA_END,\n"
"                 PAGE_DATA and END; domain type 0)\n"
"  --pages N      pfns 0..N-1, N >= 1 (default 64)\n"
"  --vcpus N      PV: vcpus with their four records each (default 2)\n"
"  --seed S       seed for everything random (default 1)\n"
"  --checkpoints K  K epochs that end with CHECKPOINT before END; the\n"
"                 first sends all pages, the others a dirty subset\n"
"  --optional     add an unknown optional record (type 0x%08x)\n"
"  --zero-pages   write normal pages that are all zero as XMIG_ZERO_PAGES\n"
"                 records instead of page data (the memory is the same)\n"
"  --deflate[=L]  draft-B: PAGE_DATA with deflated page data (zlib level\n"
"                 L, 0-9, default 6)\n"
"  --zstd[=L]     draft-B: PAGE_DATA in zstd frames (level L, 0-19,\n"
"                 default 3)\n"
"  --negotiate    draft-B: offer a back-channel (image header bit 1) and\n"
"                 write XMIG_NEGOTIATE first, as a sender on a connection\n"
"                 does\n"
"The same seed gives the same memory whatever the last three options.\n",
	    MK_OPTIONAL);
	exit(2);
}

/* splitmix64 */
static uint64_t
rnd(struct gen *g)
{
	uint64_t	z = (g->rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint32_t
rnd_below(struct gen *g, uint32_t n)
{
	return n == 0 ? 0 : (uint32_t)(rnd(g) % n);
}

static void
emit(struct gen *g, uint32_t type, const void *body, uint32_t len)
{
	int	rc;

	g->buf.len = 0;
	if ((rc = record_encode(&g->st, &g->buf, type, body, len,
	    g->opts)) < 0)
		errx(1, "encoding %s: %s", record_type_name(type),
		    xp_strerror(rc));
	if (fwrite(g->buf.data, 1, g->buf.len, g->f) != g->buf.len)
		err(1, "%s", g->path);
}

static void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size)) == NULL)
		err(1, "calloc");
	return p;
}

/* A PAGE_DATA record, deflated or zstd-compressed when asked for. */
static void
emit_page_data(struct gen *g, uint32_t count, const uint64_t *entries,
    const uint8_t *pages, size_t len)
{
	int	rc;

	g->buf.len = 0;
	if ((rc = record_encode_pages(&g->st, &g->buf, count, entries, pages,
	    len, g->opts | (g->deflate != -2 ? WIRE_REC_OPT_DEFLATE :
	    g->zstd != -1 ? WIRE_REC_OPT_ZSTD : 0), g->deflate != -2 ?
	    g->deflate : g->zstd != -1 ? g->zstd : 0)) < 0)
		errx(1, "encoding PAGE_DATA: %s", xp_strerror(rc));
	if (fwrite(g->buf.data, 1, g->buf.len, g->f) != g->buf.len)
		err(1, "%s", g->path);
}

static int
page_is_zero(const uint8_t *p)
{
	size_t	i;

	for (i = 0; i < MK_PAGE_SIZE; i++) {
		if (p[i] != 0)
			return 0;
	}
	return 1;
}

/* ---- page contents ------------------------------------------------------ */

static void
fill_text(struct gen *g, uint8_t *p)
{
	static const char *const words[] = {
		"domain", "save", "image", "record", "xen", "migrate", "page",
		"the", "of", "and", "checkpoint", "vcpu", "kernel", "memory",
		"error:", "0x0000", "/var/log", "\n", "root", "boot",
	};
	size_t		 off = 0, n;
	const char	*w;

	while (off < MK_PAGE_SIZE) {
		w = words[rnd_below(g, sizeof words / sizeof words[0])];
		n = strlen(w);
		if (n > MK_PAGE_SIZE - off)
			n = MK_PAGE_SIZE - off;
		memcpy(p + off, w, n);
		off += n;
		if (off < MK_PAGE_SIZE)
			p[off++] = ' ';
	}
}

static void
fill_random(struct gen *g, uint8_t *p)
{
	uint64_t	v;
	size_t		i;

	for (i = 0; i < MK_PAGE_SIZE; i += 8) {
		v = rnd(g);
		memcpy(p + i, &v, 8);
	}
}

/* A (normalised) page table: some present entries naming pfns. */
static void
fill_pagetable(struct gen *g, uint8_t *p)
{
	size_t	i;

	memset(p, 0, MK_PAGE_SIZE);
	for (i = 0; i < MK_PAGE_SIZE / 8; i++) {
		if (rnd_below(g, 4) == 0)
			xp_put64(g->st.big_endian, p + i * 8,
			    (uint64_t)rnd_below(g, g->pages) << 12 | 0x67);
	}
}

static void
fill_page(struct gen *g, unsigned type, uint8_t *p)
{
	if (type != PT_NOTAB) {
		fill_pagetable(g, p);
		return;
	}
	switch (rnd_below(g, 3)) {
	case 0:
		memset(p, 0, MK_PAGE_SIZE);
		break;
	case 1:
		fill_text(g, p);
		break;
	default:
		fill_random(g, p);
		break;
	}
}

/* Page types: every kind early on, then mostly normal pages. */
static void
choose_types(struct gen *g)
{
	static const unsigned pv_all[] = {
		PT_NOTAB, PT_L1TAB, PT_L2TAB, PT_L3TAB, PT_L4TAB, PT_L1PIN,
		PT_L2PIN, PT_L3PIN, PT_L4PIN, PT_XTAB, PT_XALLOC, PT_BROKEN,
	};
	static const unsigned hvm_all[] = {
		PT_NOTAB, PT_XTAB, PT_XALLOC, PT_BROKEN,
	};
	const unsigned	*all = g->pv ? pv_all : hvm_all;
	size_t		 nall = g->pv ? sizeof pv_all / sizeof pv_all[0] :
			    sizeof hvm_all / sizeof hvm_all[0];
	uint32_t	 pfn, r;

	g->types = xcalloc(g->pages, sizeof *g->types);
	for (pfn = 0; pfn < g->pages; pfn++) {
		/* Spread the first of each kind over the range. */
		if (g->pages >= 2 * nall && pfn % 2 == 1 && pfn / 2 < nall) {
			g->types[pfn] = all[pfn / 2];
			continue;
		}
		r = rnd_below(g, 100);
		if (r < 80)
			g->types[pfn] = PT_NOTAB;
		else
			g->types[pfn] = all[rnd_below(g, (uint32_t)nall)];
	}
}

/*
 * PAGE_DATA records for the listed pfns, in batches of random size.  The
 * pages are filled the same way whatever the options, so that the memory
 * is the same: --zero-pages only moves the all-zero normal pages of a
 * batch into an XMIG_ZERO_PAGES record before its PAGE_DATA (left out if
 * nothing remains), --deflate only changes how PAGE_DATA is framed.
 */
static void
emit_pages(struct gen *g, const uint32_t *pfns, uint32_t n)
{
	uint64_t	*entries, *zpfns;
	uint8_t		*pages, *zbody;
	uint32_t	 done = 0, batch, i, max, nent, nzero;
	size_t		 off, page;
	unsigned	 t;

	entries = xcalloc(WIRE_PAGE_DATA_MAX, sizeof *entries);
	zpfns = xcalloc(WIRE_PAGE_DATA_MAX, sizeof *zpfns);
	zbody = xcalloc(8 + 8 * WIRE_PAGE_DATA_MAX, 1);
	pages = xcalloc(WIRE_PAGE_DATA_MAX, MK_PAGE_SIZE);
	while (done < n) {
		max = n - done < WIRE_PAGE_DATA_MAX ? n - done :
		    WIRE_PAGE_DATA_MAX;
		/* Mostly full batches, sometimes short ones. */
		batch = rnd_below(g, 2) == 0 ? 1 + rnd_below(g, max) : max;
		if (batch > 64 && rnd_below(g, 2) == 0)
			batch = 1 + rnd_below(g, 64);
		off = 0;
		nent = nzero = 0;
		for (i = 0; i < batch; i++) {
			t = g->types[pfns[done + i]];
			if (!body_page_type_has_data(t)) {
				entries[nent++] = body_pfn_entry(pfns[done + i],
				    t);
				continue;
			}
			page = off;
			fill_page(g, t, pages + page);
			if (g->zero_pages && t == PT_NOTAB &&
			    page_is_zero(pages + page)) {
				zpfns[nzero++] = pfns[done + i];
				continue;
			}
			entries[nent++] = body_pfn_entry(pfns[done + i], t);
			off += MK_PAGE_SIZE;
		}
		if (nzero != 0) {
			if (body_zero_pages_put(g->st.big_endian, zbody, nzero,
			    zpfns) != 0)
				errx(1, "XMIG_ZERO_PAGES of %u pfns", nzero);
			emit(g, REC_XMIG_ZERO_PAGES, zbody, 8 + 8 * nzero);
		}
		if (nent != 0)
			emit_page_data(g, nent, entries, pages, off);
		done += batch;
	}
	free(pages);
	free(zbody);
	free(zpfns);
	free(entries);
}

/* XMIG_NEGOTIATE, as a sender that offers everything would write it. */
static void
emit_negotiate(struct gen *g, uint64_t seed)
{
	struct xp_negotiate	n;
	uint8_t			body[WIRE_NEGOTIATE_SIZE];

	memset(&n, 0, sizeof n);
	n.version = XMIG_NEGOTIATE_VERSION;
	n.features = XMIG_F_ACKS | XMIG_F_HANDOVER;
	if (g->opts & WIRE_REC_OPT_CHECKSUM)
		n.features |= XMIG_F_CHECKSUM;
	if (g->deflate != -2)
		n.features |= XMIG_F_DEFLATE;
	if (g->zstd != -1)
		n.features |= XMIG_F_ZSTD;
	if (g->zero_pages)
		n.features |= XMIG_F_ZERO_PAGES;
	n.can_write = XMIG_CAN_DRAFTB_V1 | XMIG_CAN_XEN_V2 | XMIG_CAN_XEN_V3;
	n.max_record_len = WIRE_REC_LENGTH_MAX;
	n.arch = g->st.arch;
	n.type = g->st.dom_type;
	n.page_shift = g->st.page_shift;
	n.nr_pages = g->pages;
	n.nr_vcpus = g->pv ? g->vcpus : 1;
	/* From the seed, without drawing from the generator. */
	n.session_id = seed * 0x9E3779B97F4A7C15ULL + 0x786D6967;
	body_negotiate_put(g->st.big_endian, body, &n);
	emit(g, REC_XMIG_NEGOTIATE, body, sizeof body);
}

/* ---- the other records ------------------------------------------------ */

static void
emit_policies(struct gen *g)
{
	static const uint32_t leaves[][2] = {
		{ 0x0, 0xffffffff }, { 0x1, 0xffffffff }, { 0x7, 0x0 },
		{ 0xd, 0x1 }, { 0x80000001, 0xffffffff },
	};
	static const uint32_t msrs[] = { 0xce, 0x10a };
	uint8_t		 body[sizeof leaves / sizeof leaves[0] * 24];
	uint8_t		 mbody[sizeof msrs / sizeof msrs[0] * 16];
	int		 be = g->st.big_endian;
	size_t		 i, j;

	for (i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
		xp_put32(be, body + i * 24, leaves[i][0]);
		xp_put32(be, body + i * 24 + 4, leaves[i][1]);
		for (j = 0; j < 4; j++)
			xp_put32(be, body + i * 24 + 8 + j * 4,
			    (uint32_t)rnd(g));
	}
	emit(g, REC_X86_CPUID_POLICY, body, sizeof body);
	for (i = 0; i < sizeof msrs / sizeof msrs[0]; i++) {
		xp_put32(be, mbody + i * 16, msrs[i]);
		xp_put32(be, mbody + i * 16 + 4, 0);
		xp_put64(be, mbody + i * 16 + 8, rnd(g) & 0xffff);
	}
	emit(g, REC_X86_MSR_POLICY, mbody, sizeof mbody);
}

static void
emit_pv_info(struct gen *g)
{
	uint8_t	body[WIRE_X86_PV_INFO_SIZE] = { 8, 4 };

	emit(g, REC_X86_PV_INFO, body, sizeof body);
}

static void
emit_p2m_frames(struct gen *g)
{
	uint32_t	 end = g->pages - 1, fpp = MK_PAGE_SIZE / 8;
	uint32_t	 frames = end / fpp + 1, i, len = 8 + 8 * frames;
	uint8_t		*body = xcalloc(len, 1);

	xp_put32(g->st.big_endian, body, 0);
	xp_put32(g->st.big_endian, body + 4, end);
	for (i = 0; i < frames; i++)
		xp_put64(g->st.big_endian, body + 8 + 8 * i,
		    (uint64_t)(g->pages - 1 - i % g->pages));
	emit(g, REC_X86_PV_P2M_FRAMES, body, len);
	free(body);
}

static void
emit_tsc(struct gen *g, uint32_t epoch)
{
	uint8_t	body[WIRE_TSC_INFO_SIZE];
	int	be = g->st.big_endian;

	memset(body, 0, sizeof body);
	xp_put32(be, body, 0);				/* mode: default */
	xp_put32(be, body + 4, 2893000 + rnd_below(g, 1000));	/* kHz */
	xp_put64(be, body + 8, 1000000000ULL * (epoch + 1) + rnd_below(g,
	    1000000));
	xp_put32(be, body + 16, 1 + epoch);		/* incarnation */
	emit(g, REC_X86_TSC_INFO, body, sizeof body);
}

static void
emit_shared_info(struct gen *g)
{
	uint8_t	body[MK_PAGE_SIZE];
	size_t	i;

	memset(body, 0, sizeof body);
	for (i = 0; i < 16; i++)
		body[rnd_below(g, sizeof body)] = (uint8_t)rnd(g);
	emit(g, REC_SHARED_INFO, body, sizeof body);
}

/* A vcpu record: u32 vcpu_id, u32 reserved, then blob_len octets. */
static void
emit_vcpu(struct gen *g, uint32_t type, uint32_t id, uint32_t blob_len)
{
	uint32_t	 len = WIRE_VCPU_HDR_SIZE + blob_len, i;
	uint8_t		*body = xcalloc(len, 1);
	uint8_t		*blob = body + WIRE_VCPU_HDR_SIZE;

	/*
	 * The vcpu header is in the stream byte order; the blob is the
	 * hypervisor's own structure, opaque to the format, so it is written
	 * as an x86 host has it (little-endian) whatever the stream order.
	 */
	xp_put32(g->st.big_endian, body, id);
	switch (type) {
	case REC_X86_PV_VCPU_XSAVE:
		xp_put64(0, blob, 0x7);				/* xfeature mask */
		xp_put64(0, blob + 8, blob_len - 16);		/* size */
		for (i = 16; i < blob_len; i++)
			blob[i] = (uint8_t)rnd_below(g, 256);
		break;
	case REC_X86_PV_VCPU_MSRS:
		for (i = 0; i + 16 <= blob_len; i += 16) {
			xp_put32(0, blob + i, 0xc0000080 + i / 16);
			xp_put64(0, blob + i + 8, rnd(g));
		}
		break;
	default:
		/* Mostly zero, as a real context is. */
		for (i = 0; i < blob_len; i++)
			blob[i] = rnd_below(g, 8) == 0 ? (uint8_t)rnd(g) : 0;
		break;
	}
	emit(g, type, body, len);
	free(body);
}

static void
emit_hvm_context(struct gen *g)
{
	uint32_t	 len = 1000 + rnd_below(g, 300), i;
	uint8_t		*body = xcalloc(len, 1);

	for (i = 0; i < len; i++)
		body[i] = (uint8_t)rnd(g);
	emit(g, REC_HVM_CONTEXT, body, len);
	free(body);
}

static void
emit_hvm_params(struct gen *g)
{
	/* The non-zero ones of the params Xen's saver sends. */
	static const uint64_t params[][2] = {
		{ 1, 0xfeffc },		/* STORE_PFN */
		{ 5, 0xfeff0 },		/* IOREQ_PFN */
		{ 6, 0xfeff1 },		/* BUFIOREQ_PFN */
		{ 12, 0xfeffd000 },	/* IDENT_PT */
		{ 17, 0xfefff },	/* CONSOLE_PFN */
		{ 19, 1 },		/* ACPI_IOPORTS_LOCATION */
	};
	uint8_t	body[8 + sizeof params / sizeof params[0] * 16];
	size_t	i, n = sizeof params / sizeof params[0];
	int	be = g->st.big_endian;

	memset(body, 0, sizeof body);
	xp_put32(be, body, (uint32_t)n);
	for (i = 0; i < n; i++) {
		xp_put64(be, body + 8 + 16 * i, params[i][0]);
		xp_put64(be, body + 8 + 16 * i + 8, params[i][1]);
	}
	emit(g, REC_HVM_PARAMS, body, sizeof body);
}

/* The records that close every epoch, as Xen's saver orders them. */
static void
emit_tail(struct gen *g, uint32_t epoch)
{
	uint32_t	v;

	if (g->arm)
		return;
	emit_tsc(g, epoch);
	if (!g->pv) {
		emit_hvm_context(g);
		emit_hvm_params(g);
		return;
	}
	emit_shared_info(g);
	for (v = 0; v < g->vcpus; v++) {
		emit_vcpu(g, REC_X86_PV_VCPU_BASIC, v, WIRE_VCPU_BASIC_64);
		emit_vcpu(g, REC_X86_PV_VCPU_EXTENDED, v, WIRE_VCPU_EXT_MAX);
		emit_vcpu(g, REC_X86_PV_VCPU_XSAVE, v, 16 + 576 + 64);
		emit_vcpu(g, REC_X86_PV_VCPU_MSRS, v, 3 * WIRE_VCPU_MSR_SIZE);
	}
}

static uint32_t
parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max)
{
	char		*end;
	unsigned long	 v;

	v = strtoul(s, &end, 0);
	if (*s == '\0' || *end != '\0' || v < min || v > max)
		errx(2, "%s %s: expected a number from %u to %u", opt, s, min,
		    max);
	return (uint32_t)v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dialect", required_argument, NULL, 'd' },
		{ "version", required_argument, NULL, 'v' },
		{ "big-endian", no_argument, NULL, 'b' },
		{ "no-checksum", no_argument, NULL, 'n' },
		{ "type", required_argument, NULL, 't' },
		{ "arch", required_argument, NULL, 'a' },
		{ "pages", required_argument, NULL, 'p' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "checkpoints", required_argument, NULL, 'k' },
		{ "optional", no_argument, NULL, 'o' },
		{ "zero-pages", no_argument, NULL, 'z' },
		{ "deflate", optional_argument, NULL, 'D' },
		{ "zstd", optional_argument, NULL, 'Z' },
		{ "negotiate", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct gen	 g;
	enum xp_dialect	 dialect = XP_DRAFTB;
	uint8_t		 hdr[WIRE_IHDR_SIZE + WIRE_DHDR_SIZE_XEN];
	uint32_t	 version = WIRE_VERSION_XEN, checkpoints = 0, e, i, n;
	uint32_t	*pfns;
	uint16_t	 dom_type = WIRE_DOM_X86_PV;
	int		 ch, be = 0, nock = 0, optional = 0, v3, negotiate = 0;
	size_t		 hlen;
	const char	*body = "xmig optional";
	char		*end;

	memset(&g, 0, sizeof g);
	g.pages = 64;
	g.vcpus = 2;
	g.rng = 1;
	g.deflate = -2;
	g.zstd = -1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			if (strcmp(optarg, "draftb") == 0)
				dialect = XP_DRAFTB;
			else if (strcmp(optarg, "xen") == 0)
				dialect = XP_XEN;
			else
				errx(2, "--dialect %s: draftb or xen", optarg);
			break;
		case 'v':
			version = parse_u32("--version", optarg, 2, 3);
			break;
		case 'b':
			be = 1;
			break;
		case 'n':
			nock = 1;
			break;
		case 't':
			if (strcmp(optarg, "pv") == 0)
				dom_type = WIRE_DOM_X86_PV;
			else if (strcmp(optarg, "hvm") == 0)
				dom_type = WIRE_DOM_X86_HVM;
			else if (strcmp(optarg, "pvh") == 0)
				dom_type = WIRE_DOM_X86_PVH;
			else
				errx(2, "--type %s: pv, hvm or pvh", optarg);
			break;
		case 'a':
			if (strcmp(optarg, "x86") == 0)
				g.arm = 0;
			else if (strcmp(optarg, "arm") == 0)
				g.arm = 1;
			else
				errx(2, "--arch %s: x86 or arm", optarg);
			break;
		case 'p':
			g.pages = parse_u32("--pages", optarg, 1, 1u << 24);
			break;
		case 'c':
			g.vcpus = parse_u32("--vcpus", optarg, 1, 64);
			break;
		case 's':
			g.rng = strtoull(optarg, &end, 0);
			if (*optarg == '\0' || *end != '\0')
				errx(2, "--seed %s: not a number", optarg);
			break;
		case 'k':
			checkpoints = parse_u32("--checkpoints", optarg, 0,
			    1000);
			break;
		case 'o':
			optional = 1;
			break;
		case 'z':
			g.zero_pages = 1;
			break;
		case 'D':
			g.deflate = optarg == NULL ? 6 :
			    (int)parse_u32("--deflate", optarg, 0, 9);
			break;
		case 'Z':
			g.zstd = optarg == NULL ? 3 :
			    (int)parse_u32("--zstd", optarg, 0, 19);
			break;
		case 'N':
			negotiate = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	g.path = argv[optind];
	if (g.arm && dialect == XP_XEN)
		errx(2, "--arch arm: the Xen dialect is x86 only");
	if (be && dialect == XP_XEN)
		errx(2, "--big-endian: Xen streams are little-endian only");
	if ((g.deflate != -2 || g.zstd != -1) && dialect == XP_XEN)
		errx(2, "--deflate, --zstd: draft-B only (Xen records have no "
		    "options)");
	if (g.deflate != -2 && g.zstd != -1)
		errx(2, "--deflate or --zstd, not both");
	if (negotiate && dialect == XP_XEN)
		errx(2, "--negotiate: draft-B only (the Xen dialect never "
		    "offers a back-channel)");
	if (g.arm)
		dom_type = 0;
	g.pv = !g.arm && dom_type == WIRE_DOM_X86_PV;
	if (dialect == XP_XEN && dom_type == WIRE_DOM_X86_PVH)
		dom_type = WIRE_DOM_X86_HVM;
	if (dialect == XP_DRAFTB)
		version = WIRE_VERSION_DRAFTB;
	/* Draft-B has the policies and STATIC_DATA_END, like Xen v3. */
	v3 = dialect == XP_DRAFTB || version >= 3;

	stream_init(&g.st, dialect, be, g.arm ? WIRE_ARCH_ARM : WIRE_ARCH_X86,
	    dom_type, MK_PAGE_SHIFT);
	g.st.version = version;
	g.st.ihdr_options = be ? WIRE_IHDR_OPT_BIG_ENDIAN : 0;
	if (negotiate)
		g.st.ihdr_options |= WIRE_IHDR_OPT_BACKCHANNEL;
	if (dialect == XP_XEN) {
		g.st.xen_major = 4;
		g.st.xen_minor = 17;
	} else if (!nock)
		g.opts = WIRE_REC_OPT_CHECKSUM;

	if (strcmp(g.path, "-") == 0)
		g.f = stdout;
	else if ((g.f = fopen(g.path, "wb")) == NULL)
		err(1, "%s", g.path);

	header_image_put(&g.st, hdr);
	hlen = header_domain_put(&g.st, hdr + WIRE_IHDR_SIZE);
	if (fwrite(hdr, 1, WIRE_IHDR_SIZE + hlen, g.f) != WIRE_IHDR_SIZE + hlen)
		err(1, "%s", g.path);

	if (negotiate)
		emit_negotiate(&g, g.rng);
	choose_types(&g);
	pfns = xcalloc(g.pages, sizeof *pfns);

	/* Static data. */
	if (g.pv)
		emit_pv_info(&g);
	if (v3 && !g.arm)
		emit_policies(&g);
	if (optional)
		emit(&g, MK_OPTIONAL, body, (uint32_t)strlen(body));
	if (v3)
		emit(&g, REC_STATIC_DATA_END, NULL, 0);
	if (g.pv)
		emit_p2m_frames(&g);

	/* Epoch 0 sends every page; later ones a dirty subset. */
	for (e = 0; e == 0 || e < checkpoints; e++) {
		n = 0;
		for (i = 0; i < g.pages; i++) {
			if (e == 0 || rnd_below(&g, 8) == 0)
				pfns[n++] = i;
		}
		if (n == 0)
			pfns[n++] = rnd_below(&g, g.pages);
		emit_pages(&g, pfns, n);
		emit_tail(&g, e);
		if (checkpoints != 0)
			emit(&g, REC_CHECKPOINT, NULL, 0);
	}
	emit(&g, REC_END, NULL, 0);

	if (fflush(g.f) != 0 || ferror(g.f))
		err(1, "%s", g.path);
	if (g.f != stdout && fclose(g.f) != 0)
		err(1, "%s", g.path);
	buf_free(&g.buf);
	free(pfns);
	free(g.types);
	return 0;
}
