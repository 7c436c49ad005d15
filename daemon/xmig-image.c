/*
 * xmig-image.c -- offline work on saved domain images: dump, verify,
 * convert between the draft-B and Xen dialects, statistics, and the
 * SHA-256 of the memory an image restores (digest).
 *
 * Every subcommand reads through the one incremental parser in proto/
 * (parser_new, parser_feed, parser_finish), fed in chunks of IMAGE_CHUNK
 * octets, so what this tool accepts is exactly what a receiver accepts.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "proto.h"
#include "libxl.h"
#include "delta.h"
#include "daemon.h"

#define IMAGE_CHUNK		(1024 * 1024)
#define IMAGE_XEN_MAJOR		4	/* written when the input is draft-B */
#define IMAGE_XEN_MINOR		17

#define EXIT_INVALID		1
#define EXIT_USAGE		2

/* One subcommand. */
struct image_cmd {
	const char	*name;
	int		(*exec)(int, char **);
	const char	*usage;		/* one line, after the command name */
	const char	*help;		/* the rest of --help */
};

/* One pass of the parser over an input. */
struct image_run;
typedef int (*run_header_fn)(struct image_run *, const struct xp_stream *);
typedef int (*run_record_fn)(struct image_run *, const struct xp_stream *,
    const struct xp_record *);

typedef int (*run_wrap_fn)(struct image_run *, const struct xp_wrap_item *);

/* What an xl save file or libxl stream held around its libxc stream. */
struct wrap_info {
	enum xp_wrap_kind kind;		/* XP_WRAP_NONE: a bare image */
	uint32_t	 xl_flags;	/* xl header */
	uint32_t	 config_len;
	uint32_t	 optional_data_len;
	uint64_t	 libxl_offset;	/* libxl's header */
	uint32_t	 libxl_options;
	uint64_t	 libxc_offset;	/* the libxc stream: where ... */
	uint64_t	 libxc_length;	/* ... and how long */
	uint64_t	 records;	/* libxl records */
	char		 after[256];	/* libxl records after the libxc part */
	uint64_t	 end_offset;	/* libxl's END record */
	uint64_t	 total;		/* octets of the whole input */
};

struct image_run {
	const char	*path;		/* as given; "-" is standard input */
	run_header_fn	 hcb;		/* may be NULL */
	run_record_fn	 rcb;		/* may be NULL */
	run_wrap_fn	 wcb;		/* xl/libxl framing items; may be NULL */
	void		*ctx;		/* the command's own state */
	int		 libxc_fd;	/* where the libxc octets go, ... */
	const char	*libxc_name;	/* ... if this is not NULL */
	int		 need_wrap;	/* refuse a bare image */
	struct xp_stream st;		/* once the headers have been read */
	struct wrap_info wi;
	char		 err[512];	/* a callback's own reason, if it failed */
	/* Checkpointed images (SPEC 15.4): epochs closed so far. */
	uint64_t	 epochs;	/* CHECKPOINT records seen */
	uint64_t	 ep_records;	/* records after the last one */
	uint64_t	 ckpt_end;	/* offset just after the last one */
	int		 stopped;	/* a callback has all it wants */
};

/* Page counts of one PAGE_DATA or XMIG_ZERO_PAGES body. */
struct page_summary {
	uint32_t	count;		/* pfn entries */
	uint32_t	data_pages;	/* entries carrying page data */
	uint32_t	zero_pages;	/* data pages that are all zero */
	uint32_t	zero_entries;	/* XMIG_ZERO_PAGES entries */
	uint32_t	by_type[16];
	uint64_t	first_pfn;
	uint64_t	last_pfn;
	int		deflated;	/* PAGE_DATA with the DEFLATE or ZSTD
					   option */
	uint16_t	codec;		/* which of the two */
	uint32_t	raw_length;	/* its page data, inflated ... */
	uint32_t	deflated_length; /* ... and as sent */
};

/*
 * Called for each pfn entry with the page's content: its data, all zeros
 * for an XMIG_ZERO_PAGES entry, NULL for a type without data.
 */
typedef int (*page_each_cb)(void *, uint64_t, unsigned, const uint8_t *);

/* Where DEFLATE page data is inflated to. */
struct inflate_buf {
	uint8_t		*p;
	size_t		 cap;
};

/* A page of zeros for XMIG_ZERO_PAGES entries (pages are at most 64K). */
static const uint8_t	zero_page[1u << 16];

static int	cmd_dump(int, char **);
static int	cmd_verify(int, char **);
static int	cmd_convert(int, char **);
static int	cmd_stats(int, char **);
static int	cmd_digest(int, char **);
static int	cmd_libxc(int, char **);

static const struct image_cmd image_cmds[] = {
	{
		.name = "dump",
		.exec = cmd_dump,
		.usage = "[--json] FILE",
		.help =
"Print the image and domain headers on one line, then one line per record:\n"
"index, offset, type, body length, length on the wire (header, body,\n"
"padding and footer), and for draft-B the record options and the footer\n"
"checksum, followed by a short summary of the body (PAGE_DATA:\n"
"pfn entries, data pages, counts by page type, first and last pfn;\n"
"X86_TSC_INFO: its fields; HVM_PARAMS: the count; vcpu records: the vcpu\n"
"id and blob size; and so on).  Records are printed as they are parsed; if\n"
"the image is invalid, the error follows on standard error and the exit\n"
"status is 1.\n"
"\n"
"For an xl save file or a libxl stream, the xl header, the libxl header and\n"
"each libxl record get a line of their own (kind xl-header, libxl-header,\n"
"libxl-record; LIBXC_CONTEXT gives libxc_offset), in the order they come;\n"
"the offsets of the libxc records count from the start of the libxc stream.\n"
"\n"
"  -j, --json   one JSON object per line (JSON Lines); the first object has\n"
"               \"kind\":\"headers\", the others \"kind\":\"record\"\n"
"               (or the wrapper kinds above)\n"
"  -h, --help   this text\n"
"\n"
"FILE may be - for standard input.\n",
	},
	{
		.name = "verify",
		.exec = cmd_verify,
		.usage = "FILE",
		.help =
"Parse the whole image with the receiver's parser.  If it is valid, print a\n"
"one-line summary and exit 0.  Otherwise print the parser's reason, which\n"
"names the first bad record (index, type, offset), and exit 1.  A file that\n"
"ends before the END record, or that has any data after it, is invalid.\n"
"\"pages\" in the summary counts the pfn entries of PAGE_DATA and\n"
"XMIG_ZERO_PAGES records.  The page data of PAGE_DATA records with the\n"
"DEFLATE option is inflated in full: a zlib stream that is corrupt, or\n"
"inflates to more or less than its raw_length, makes the image invalid\n"
"even without checksums.\n"
"\n"
"A checkpointed image (SPEC.md 15.4) counts its CHECKPOINT records, says\n"
"where the last one ends and how many records follow it; one cut off\n"
"before END is invalid, and the reason then says how many epochs were\n"
"complete (the epoch a backup fails over to).  dump marks each CHECKPOINT\n"
"with the epoch it closes and that epoch's record count.\n"
"\n"
"An xl save file or a libxl stream is valid if its framing is (SPEC.md\n"
"section 16) and the libxc stream inside it is; the summary then starts\n"
"with the wrapper: \"valid xl save file (xl header: ...; libxl stream v2 at\n"
"offset N, options 0x0): libxc stream at offset N (M octets), then END at\n"
"N; N octets; libxc stream: Xen v3 image, ...\".  An error in the framing\n"
"names its offset in the file; one in the libxc stream says where that\n"
"stream starts, its own offsets counting from there.\n"
"\n"
"  -h, --help   this text\n"
"\n"
"FILE may be - for standard input.\n",
	},
	{
		.name = "convert",
		.exec = cmd_convert,
		.usage = "--to xen|draftb [--no-checksum] [--big-endian] "
		    "[--expand] IN OUT",
		.help =
"Re-frame IN record by record into the other (or the same) dialect, without\n"
"re-batching pages.  IN is validated completely while it is converted.\n"
"\n"
"  -t, --to xen|draftb  output dialect (required)\n"
"  -n, --no-checksum    draft-B output: write records without the CRC-32\n"
"                       (default: every record carries its checksum)\n"
"  -b, --big-endian     draft-B output: big-endian records (default: little)\n"
"  -x, --expand         draft-B output: write xmig's extensions as plain\n"
"                       records, as --to xen does (see below)\n"
"  -h, --help           this text\n"
"\n"
"Draft-B output is image version 1.  When the byte order changes, the\n"
"integer fields of the bodies whose layout is known are converted one by\n"
"one; opaque blobs (vcpu contexts after their 8-octet header, HVM_CONTEXT,\n"
"SHARED_INFO, page contents, unknown optional records) are copied as they\n"
"are.\n"
"\n"
"Xen output is image version 3, little-endian, for x86 only (an ARM image is\n"
"refused).  The domain type is PV or HVM; PVH is written as HVM.  Xen's\n"
"version in the domain header is copied from a Xen input, and is 4.17 for a\n"
"draft-B input, which does not carry it.  Optional records (type bit 31) are\n"
"dropped, because Xen's own verifier rejects them; their number is reported\n"
"on standard error.  --no-checksum, --big-endian and --expand do not apply.\n"
"\n"
"xmig's extensions (SPEC.md section 12): Xen output, and draft-B output with\n"
"--expand, drops XMIG_NEGOTIATE and clears the image header's back-channel\n"
"bit, writes each XMIG_ZERO_PAGES record as PAGE_DATA records of the same\n"
"pfns (normal pages of zeros, at most 1024 to a record), and each PAGE_DATA\n"
"record with deflated page data as a plain PAGE_DATA record (the data is\n"
"inflated, and must inflate to exactly its raw_length).  Without --expand,\n"
"draft-B output keeps them as they are (the back-channel bit too, so that a\n"
"kept XMIG_NEGOTIATE stays valid), only changing their byte order.\n"
"\n"
"STATIC_DATA_END: a Xen v2 image has none; libxc infers it at the first\n"
"X86_PV_P2M_FRAMES of a PV image or the first PAGE_DATA of an HVM image.\n"
"When the output is Xen, or draft-B from a Xen input, and the input has no\n"
"STATIC_DATA_END before its first record that is not static data (static:\n"
"X86_PV_INFO, X86_CPUID_POLICY, X86_MSR_POLICY, optional records), one is\n"
"inserted there, which for the images Xen writes is where libxc infers it;\n"
"this is reported on standard error.  Draft-B to draft-B conversion copies\n"
"the records as they are.\n"
"\n"
"OUT is written to a temporary file in its directory and renamed into place\n"
"only when the whole input has been converted; on any failure OUT is left\n"
"untouched and the exit status is 1.  IN may be - for standard input and OUT\n"
"- for standard output (written as it goes, so a failure leaves a partial\n"
"stream there).\n",
	},
	{
		.name = "stats",
		.exec = cmd_stats,
		.usage = "FILE",
		.help =
"Print counts and sizes by record type (body octets, and octets on the wire\n"
"including header, padding and footer), then the pages: pfn entries by\n"
"page type, entries carrying data, data pages that are all zero, entries\n"
"of XMIG_ZERO_PAGES records, PAGE_DATA records with deflated page data\n"
"(with their inflated and deflated octets and the ratio), and the number\n"
"of distinct pfns.  A checkpointed image also gets its epochs: the first\n"
"(the live copy), the others' octets and pfn entries (min, median, max),\n"
"and what follows the last CHECKPOINT.  The image must be valid (exit 1\n"
"otherwise).\n"
"\n"
"  -h, --help   this text\n"
"\n"
"FILE may be - for standard input.\n",
	},
	{
		.name = "digest",
		.exec = cmd_digest,
		.usage = "[--pages N] [--epoch N] [--hash xxh3-128|sha256] FILE",
		.help =
"Print the digest of the memory the image restores, in hexadecimal,\n"
"followed by the number of pages, the page size and the hash:\n"
"\n"
"  <32 hex digits>  pages=N page_size=P hash=xxh3-128\n"
"  <64 hex digits>  pages=N page_size=P hash=sha256\n"
"\n"
"The memory is pages 0 to N-1 in pfn order, N being one more than the\n"
"highest pfn of any PAGE_DATA or XMIG_ZERO_PAGES entry (or --pages).  Each\n"
"page holds what the last record that wrote it carried: the data of a\n"
"PAGE_DATA entry (inflated if deflated), zeros for an XMIG_ZERO_PAGES entry,\n"
"the page before with an XMIG_DELTA_PAGES entry's delta applied;\n"
"entries without data (XTAB, XALLOC, BROKEN) and records after VERIFY do\n"
"not change it, and a page no record wrote is zeros.  So an image and its\n"
"conversions (to Xen, --expand) have the same digest, and it is the\n"
"memory_digest a receiver reports, with the same hash, when N is the\n"
"domain's page count.  The image must be valid (exit 1 otherwise).  Pages\n"
"are gathered in an unlinked temporary file in $TMPDIR (or /tmp), sparse\n"
"where unwritten.\n"
"\n"
"  -p, --pages N   digest exactly N pages (default: highest pfn + 1)\n"
"  -e, --epoch N   a checkpointed image (SPEC.md 15.4): the memory as of\n"
"                  its N-th CHECKPOINT (what a backup that committed epoch\n"
"                  N holds); the image may end anywhere after it\n"
"  -H, --hash H    xxh3-128 (default, as migrations use) or sha256\n"
"  -h, --help      this text\n"
"\n"
"FILE may be - for standard input.\n",
	},
	{
		.name = "libxc",
		.exec = cmd_libxc,
		.usage = "IN OUT",
		.help =
"Write the libxc stream inside an xl save file (what `xl save` writes) or a\n"
"libxl migration stream to OUT, octet for octet: from its image header to\n"
"its END record.  Everything is validated on the way: xl's header (magic,\n"
"byte order, flags, the domain config in its optional data), libxl's stream\n"
"header and records (LIBXC_CONTEXT, then after the libxc stream the\n"
"emulator records and END, nothing after END), and the libxc stream itself\n"
"as verify does (SPEC.md section 16).  A bare image (one that starts with\n"
"an image header) is refused.  On standard error: where the libxc stream\n"
"lies in IN (offset and length).\n"
"\n"
"  -h, --help   this text\n"
"\n"
"OUT is written to a temporary file in its directory and renamed into place\n"
"only when the whole of IN is valid; on any failure OUT is left untouched\n"
"and the exit status is 1.  IN may be - for standard input and OUT - for\n"
"standard output (written as it goes).\n",
	},
};
#define IMAGE_NCMDS (sizeof image_cmds / sizeof image_cmds[0])

static const char *const page_type_names[16] = {
	[PT_NOTAB] = "NOTAB",	[PT_L1TAB] = "L1TAB",	[PT_L2TAB] = "L2TAB",
	[PT_L3TAB] = "L3TAB",	[PT_L4TAB] = "L4TAB",	[0x5] = "RES5",
	[0x6] = "RES6",		[0x7] = "RES7",		[0x8] = "RES8",
	[PT_L1PIN] = "L1PIN",	[PT_L2PIN] = "L2PIN",	[PT_L3PIN] = "L3PIN",
	[PT_L4PIN] = "L4PIN",	[PT_BROKEN] = "BROKEN",	[PT_XALLOC] = "XALLOC",
	[PT_XTAB] = "XTAB",
};

/* The temporary output of convert, removed if a signal ends us. */
static char			tmp_path[PATH_MAX];
static volatile sig_atomic_t	tmp_live;

static const struct image_cmd *cur_cmd;

static void
usage(const struct image_cmd *cmd)
{
	size_t	i;

	if (cmd != NULL) {
		fprintf(stderr, "usage: %s %s %s\n", log_progname(), cmd->name,
		    cmd->usage);
		fprintf(stderr, "Try '%s %s --help'.\n", log_progname(),
		    cmd->name);
		return;
	}
	fprintf(stderr, "usage: %s [-h] [-V] COMMAND [ARGS]\n",
	    log_progname());
	for (i = 0; i < IMAGE_NCMDS; i++)
		fprintf(stderr, "       %s %s %s\n", log_progname(),
		    image_cmds[i].name, image_cmds[i].usage);
}

static void
help_main(void)
{
	size_t	i;

	printf("usage: %s [-h] [-V] COMMAND [ARGS]\n\n", log_progname());
	printf("Inspect, check and convert saved Xen domain images in the "
	    "draft-B dialect\n(image version 1) and the Xen dialect "
	    "(libxc migration stream v2/v3).\n\nCommands:\n");
	for (i = 0; i < IMAGE_NCMDS; i++)
		printf("  %s %s\n", image_cmds[i].name, image_cmds[i].usage);
	printf("\nEvery command also reads an xl save file (what `xl save` "
	    "writes) or a libxl\nstream: it checks that framing and works on "
	    "the libxc stream inside.\n");
	printf("\nOptions:\n"
	    "  -h, --help     this text; COMMAND --help describes a command\n"
	    "  -V, --version  the version, dialects, backends, transports\n"
	    "\nExit status: 0 success, 1 invalid image or failure, "
	    "2 bad usage.\n");
}

static void
help_cmd(const struct image_cmd *cmd)
{
	printf("usage: %s %s %s\n\n%s", log_progname(), cmd->name, cmd->usage,
	    cmd->help);
}

static const char *
display_path(const char *path)
{
	return strcmp(path, "-") == 0 ? "standard input" : path;
}

/* ---- describing what the parser saw ----------------------------------- */

static const char *
dialect_name(const struct xp_stream *st)
{
	return st->dialect == XP_DRAFTB ? "draft-B" : "Xen";
}

static const char *
arch_name(const struct xp_stream *st)
{
	switch (st->arch) {
	case WIRE_ARCH_X86:
		return "x86";
	case WIRE_ARCH_ARM:
		return "ARM";
	}
	return "unknown-arch";
}

static const char *
dom_type_name(const struct xp_stream *st)
{
	if (st->arch != WIRE_ARCH_X86)
		return NULL;
	switch (st->dom_type) {
	case WIRE_DOM_X86_PV:
		return "PV";
	case WIRE_DOM_X86_HVM:
		return "HVM";
	case WIRE_DOM_X86_PVH:
		return "PVH";
	}
	return NULL;
}

/* "draft-B v1 image, little-endian, x86 HVM" and the like. */
static void
describe_stream(const struct xp_stream *st, char *buf, size_t len)
{
	const char	*type = dom_type_name(st);
	char		 tbuf[32], xbuf[32] = "";

	if (type == NULL && st->arch == WIRE_ARCH_ARM && st->dom_type == 0)
		type = "";
	else if (type == NULL) {
		snprintf(tbuf, sizeof tbuf, " type %u", st->dom_type);
		type = tbuf;
	} else {
		snprintf(tbuf, sizeof tbuf, " %s", type);
		type = tbuf;
	}
	if (st->dialect == XP_XEN)
		snprintf(xbuf, sizeof xbuf, " (Xen %u.%u)", st->xen_major,
		    st->xen_minor);
	snprintf(buf, len, "%s v%u image, %s-endian, %s%s%s",
	    dialect_name(st), st->version, st->big_endian ? "big" : "little",
	    arch_name(st), type, xbuf);
}

/*
 * Walk a PAGE_DATA or XMIG_ZERO_PAGES body, filling ps and calling each
 * (if not NULL) per pfn entry.  The parser has validated the body; its
 * layout is checked again (body_page_data_view) so that a parser bug
 * cannot make us read past it.  DEFLATE page data is inflated into ib,
 * which verifies it; with ib NULL it is not, and data pages are neither
 * looked at nor passed to each (which then gets NULL).
 *
 * Returns 0; -1 if the body does not add up; -2 if the page data does not
 * inflate or each failed, with the reason in why.
 */
static int
page_data_scan(const struct xp_stream *st, const struct xp_record *rec,
    struct page_summary *ps, page_each_cb each, void *arg,
    struct inflate_buf *ib, char *why, size_t whylen)
{
	struct xp_page_view	 v;
	struct xp_error		 e;
	const uint8_t		*data, *pages;
	uint8_t			*p;
	size_t			 psz, off = 0, j;
	uint64_t		 ent, pfn;
	uint32_t		 i;
	unsigned		 type;
	int			 zero, rc;

	memset(ps, 0, sizeof *ps);
	if (body_page_data_view(st, rec, &v) != 0 ||
	    v.page_size > sizeof zero_page)
		return -1;
	psz = v.page_size;
	ps->count = v.count;
	ps->deflated = v.deflated;
	ps->codec = v.codec;
	if (v.deflated) {
		ps->raw_length = v.raw_length;
		ps->deflated_length = v.zlength;
	}
	pages = v.data;
	if (v.deflated && ib != NULL) {
		if (ib->cap < v.raw_length) {
			if ((p = realloc(ib->p, v.raw_length)) == NULL) {
				snprintf(why, whylen, "record %" PRIu64 " (%s): "
				    "%s", rec->index, record_type_name(
				    rec->type), strerror(errno));
				return -2;
			}
			ib->p = p;
			ib->cap = v.raw_length;
		}
		if (body_page_data_inflate_err(st, rec, ib->p, ib->cap,
		    &e) != 0) {
			snprintf(why, whylen, "%s", e.msg);
			return -2;
		}
		pages = ib->p;
	}

	for (i = 0; i < v.count; i++) {
		ent = xp_page_view_entry(&v, i);
		pfn = ent & WIRE_PFN_MASK;
		type = (unsigned)(ent >> WIRE_PFN_TYPE_SHIFT) & 0xf;
		if (i == 0)
			ps->first_pfn = pfn;
		ps->last_pfn = pfn;
		ps->by_type[type]++;
		data = NULL;
		if (v.zero) {
			data = zero_page;
			ps->zero_entries++;
		} else if (body_page_type_has_data(type)) {
			ps->data_pages++;
			if (pages != NULL) {
				data = pages + off;
				zero = 1;
				for (j = 0; j < psz; j++) {
					if (data[j] != 0) {
						zero = 0;
						break;
					}
				}
				ps->zero_pages += zero;
			}
			off += psz;
		}
		if (each != NULL && (rc = each(arg, pfn, type, data)) != 0) {
			snprintf(why, whylen, "record %" PRIu64 " (%s) at offset "
			    "%" PRIu64 ": pfn 0x%" PRIx64 ": %s", rec->index,
			    record_type_name(rec->type), rec->offset, pfn,
			    strerror(rc));
			return -2;
		}
	}
	return 0;
}

static int
is_page_record(uint32_t type)
{
	return type == REC_PAGE_DATA || type == REC_XMIG_ZERO_PAGES;
}

/* ---- feeding a file through the parser -------------------------------- */

static int	run_fail(struct image_run *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
run_header(void *arg, const struct xp_stream *st)
{
	struct image_run	*run = arg;

	run->st = *st;
	if (run->wi.kind != XP_WRAP_NONE && st->dialect != XP_XEN)
		return run_fail(run, "libxc stream at offset %" PRIu64 " of the "
		    "%s: a draft-B v%u image header; libxl carries Xen streams "
		    "(image version 2 or 3) only", run->wi.libxc_offset,
		    run->wi.kind == XP_WRAP_XL ? "xl save file" : "libxl stream",
		    st->version);
	return run->hcb != NULL ? run->hcb(run, st) : 0;
}

static int
run_record(void *arg, const struct xp_stream *st, const struct xp_record *rec)
{
	struct image_run	*run = arg;
	int			 rc;

	if (run->stopped)
		return 0;	/* the command has what it wanted */
	rc = run->rcb != NULL ? run->rcb(run, st, rec) : 0;
	/* A CHECKPOINT closes the epoch it belongs to (counted after it). */
	if (rec->type == REC_CHECKPOINT) {
		run->epochs++;
		run->ep_records = 0;
		run->ckpt_end = rec->offset + rec->wire_len;
	} else
		run->ep_records++;
	return rc;
}

/*
 * A callback's reason for failing, kept for image_parse to print; returns
 * what the callback returns to the parser.
 */
static int __attribute__((format(printf, 2, 3)))
run_fail(struct image_run *run, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(run->err, sizeof run->err, fmt, ap);
	va_end(ap);
	return -XP_ECALLBACK;
}

/* Record the framing items in run->wi, then pass them on. */
static int
run_wrap(void *arg, const struct xp_wrap_item *it)
{
	struct image_run	*run = arg;
	struct wrap_info	*wi = &run->wi;
	size_t			 n = strlen(wi->after);
	char			 more[96];

	switch (it->kind) {
	case XP_WI_XL_HEADER:
		wi->xl_flags = it->mandatory_flags;
		wi->config_len = it->config_len;
		wi->optional_data_len = it->optional_data_len;
		break;
	case XP_WI_LIBXL_HEADER:
		wi->libxl_offset = it->offset;
		wi->libxl_options = it->options;
		break;
	case XP_WI_RECORD:
		wi->records++;
		if (it->type == XP_LIBXL_LIBXC_CONTEXT) {
			wi->libxc_offset = it->offset + it->size;
			break;
		}
		if (it->type == XP_LIBXL_END)
			wi->end_offset = it->offset;
		if (it->type == XP_LIBXL_EMULATOR_XENSTORE_DATA)
			snprintf(more, sizeof more, " (emulator %u, %u pair%s)",
			    it->emulator_id, it->xs_pairs,
			    it->xs_pairs == 1 ? "" : "s");
		else if (it->type == XP_LIBXL_EMULATOR_CONTEXT)
			snprintf(more, sizeof more, " (emulator %u, %u "
			    "octets)", it->emulator_id,
			    it->length - XP_LIBXL_EMU_HDR_SIZE);
		else
			more[0] = '\0';
		snprintf(wi->after + n, sizeof wi->after - n, "%s%s at %"
		    PRIu64 "%s", n == 0 ? "" : ", ",
		    xp_libxl_rec_name(it->type), it->offset, more);
		break;
	}
	return run->wcb != NULL ? run->wcb(run, it) : 0;
}

/* "xl save file" / "libxl stream" */
static const char *
wrap_kind_name(enum xp_wrap_kind kind)
{
	return kind == XP_WRAP_XL ? "xl save file" : "libxl stream";
}

/*
 * "xl save file (xl header: STREAMv2, JSON config of 1234 octets; libxl
 * stream v2 at offset 1284, options 0x0): libxc stream at offset 1308
 * (176160768 octets), then END at 176162076; 176162084 octets"
 */
static void
describe_wrap(const struct wrap_info *wi, char *buf, size_t len)
{
	char	xl[160] = "";

	if (wi->kind == XP_WRAP_XL)
		snprintf(xl, sizeof xl, "xl header: mandatory flags 0x%x, %s "
		    "config of %u octets, %u octets of optional data; ",
		    wi->xl_flags, wi->xl_flags & XP_XL_FLAG_JSON ? "JSON" :
		    "text", wi->config_len, wi->optional_data_len);
	snprintf(buf, len, "%s (%slibxl stream v%u at offset %" PRIu64
	    ", options 0x%x%s): libxc stream at offset %" PRIu64 " (%" PRIu64
	    " octets), then %s; %" PRIu64 " octets", wrap_kind_name(wi->kind),
	    xl, XP_LIBXL_VERSION, wi->libxl_offset, wi->libxl_options,
	    wi->libxl_options & XP_LIBXL_OPT_LEGACY ? ", converted from the "
	    "legacy format" : "", wi->libxc_offset, wi->libxc_length,
	    wi->after, wi->total);
}

/* The input and what reads it. */
struct image_input {
	struct image_run	*run;
	const char		*name;
	struct xp_parser	*p;	/* the libxc (or draft-B) stream */
	struct xp_wrap		*w;	/* its wrapper, if any */
	int			 detected;
	uint8_t			 head[XP_XL_MAGIC_SIZE];
	size_t			 nhead;
};

/*
 * Feed n octets of input.  Returns 0, or -1 once the reason has been
 * reported.
 */
static int
input_feed(struct image_input *in, const uint8_t *buf, size_t n)
{
	struct image_run	*run = in->run;
	const struct xp_error	*pe;
	ssize_t			 used;
	size_t			 off = 0;
	int			 code;

	while (off < n) {
		if (in->w != NULL && !xp_wrap_in_libxc(in->w)) {
			used = xp_wrap_feed(in->w, buf + off, n - off);
			if (used < 0) {
				pe = xp_wrap_error(in->w);
				if (-used == XP_ECALLBACK && run->err[0] != '\0')
					log_err("%s: %s", in->name, run->err);
				else
					log_err("%s: %s", in->name, pe->msg);
				return -1;
			}
			off += (size_t)used;
			continue;
		}
		used = parser_feed(in->p, buf + off, n - off);
		if (used < 0) {
			code = (int)-used;
			pe = parser_error(in->p);
			if (code == XP_ECALLBACK && run->err[0] != '\0')
				log_err("%s: %s%s", in->name, in->w != NULL ?
				    "libxc stream: " : "", run->err);
			else if (in->w != NULL)
				log_err("%s: libxc stream at offset %" PRIu64
				    " of the %s (offsets below count from "
				    "there): %s", in->name, run->wi.libxc_offset,
				    wrap_kind_name(run->wi.kind),
				    pe != NULL && pe->msg[0] != '\0' ? pe->msg :
				    xp_strerror(code));
			else if (pe != NULL && pe->msg[0] != '\0')
				log_err("%s: %s", in->name, pe->msg);
			else
				log_err("%s: offset %" PRIu64 ": %s", in->name,
				    parser_offset(in->p), xp_strerror(code));
			return -1;
		}
		if (run->libxc_name != NULL && used > 0 &&
		    write_all(run->libxc_fd, buf + off, (size_t)used) != 0) {
			log_err("%s: %s", run->libxc_name, strerror(errno));
			return -1;
		}
		off += (size_t)used;
		if (parser_done(in->p) && in->w != NULL &&
		    xp_wrap_in_libxc(in->w)) {
			run->wi.libxc_length = parser_offset(in->p);
			xp_wrap_libxc_end(in->w, parser_offset(in->p));
			continue;
		}
		if (used == 0) {
			/* Only after END; the parser should say so. */
			log_err("%s: offset %" PRIu64 ": %s", in->name,
			    run->wi.libxc_offset + parser_offset(in->p),
			    parser_done(in->p) ? "data after the END record" :
			    "the parser stopped without a reason");
			return -1;
		}
	}
	return 0;
}

/*
 * Feed octets until the input's kind is known (the first 32 octets, or
 * fewer if they match neither wrapper), then set up its readers.
 */
static int
input_detect(struct image_input *in, const uint8_t *buf, size_t n,
    size_t *used)
{
	struct image_run	*run = in->run;
	size_t			 take;
	int			 kind;

	*used = 0;
	take = sizeof in->head - in->nhead;
	if (take > n)
		take = n;
	memcpy(in->head + in->nhead, buf, take);
	kind = xp_wrap_detect(in->head, in->nhead + take);
	if (kind == -1 && n != 0) {
		in->nhead += take;
		*used = take;
		return 0;
	}
	if (kind == -1) {
		/* The input ends inside a magic: the wrapper says where. */
		if (in->nhead == 0)
			kind = XP_WRAP_NONE;
		else
			kind = in->head[0] == 'X' ? XP_WRAP_XL : XP_WRAP_LIBXL;
	}
	in->detected = 1;
	run->wi.kind = (enum xp_wrap_kind)kind;
	if (kind == XP_WRAP_NONE) {
		if (run->need_wrap) {
			log_err("%s: neither an xl save file (\"Xen saved "
			    "domain, xl format\") nor a libxl stream "
			    "(\"LibxlFmt\")%s", in->name, in->nhead + take >= 8 &&
			    memcmp(in->head, "\xff\xff\xff\xff\xff\xff\xff\xff",
			    8) == 0 ? ": it starts with an image header, so it "
			    "is a bare image already" : "");
			return -1;
		}
	} else if ((in->w = xp_wrap_new((enum xp_wrap_kind)kind, run_wrap,
	    run)) == NULL) {
		log_err("%s: %s", in->name, xp_strerror(XP_ENOMEM));
		return -1;
	}
	/* What was held back, then the rest. */
	return in->nhead != 0 ? input_feed(in, in->head, in->nhead) : 0;
}

/*
 * Run the parser over a whole input, IMAGE_CHUNK octets at a time.  An xl
 * save file or a libxl stream is read through its framing (proto/libxl.h)
 * and the parser gets the libxc stream inside it.  Returns 0 if the image
 * was valid (END seen, nothing after it; in a wrapper, libxl's END too),
 * otherwise reports why and returns -1.
 */
static int
image_parse(struct image_run *run)
{
	struct xp_limits	 lim;
	struct image_input	 in;
	uint8_t			*buf;
	ssize_t			 n;
	size_t			 used;
	int			 fd, rc = -1, code;
	const struct xp_error	*pe;

	memset(&lim, 0, sizeof lim);
	memset(&in, 0, sizeof in);
	memset(&run->wi, 0, sizeof run->wi);
	in.run = run;
	in.name = display_path(run->path);
	run->err[0] = '\0';
	if (strcmp(run->path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(run->path, O_RDONLY)) == -1) {
		log_err("%s: %s", in.name, strerror(errno));
		return -1;
	}
	if ((buf = malloc(IMAGE_CHUNK)) == NULL) {
		log_err("%s: read buffer: %s", in.name, strerror(errno));
		goto out_close;
	}
	if ((in.p = parser_new(&lim, run_header, run_record, run)) == NULL) {
		log_err("%s: parser: %s", in.name, xp_strerror(XP_ENOMEM));
		goto out_free;
	}

	for (;;) {
		n = read(fd, buf, IMAGE_CHUNK);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_err("%s: read at offset %" PRIu64 ": %s", in.name,
			    run->wi.total, strerror(errno));
			goto out_parser;
		}
		if (n == 0)
			break;
		run->wi.total += (uint64_t)n;
		used = 0;
		if (!in.detected && input_detect(&in, buf, (size_t)n,
		    &used) != 0)
			goto out_parser;
		if (in.detected && input_feed(&in, buf + used,
		    (size_t)n - used) != 0)
			goto out_parser;
	}
	if (!in.detected && input_detect(&in, buf, 0, &used) != 0)
		goto out_parser;
	if (in.w != NULL && !xp_wrap_in_libxc(in.w)) {
		if ((code = xp_wrap_finish(in.w)) != 0) {
			log_err("%s: %s", in.name, xp_wrap_error(in.w)->msg);
			goto out_parser;
		}
		if (!xp_wrap_done(in.w) || !parser_done(in.p)) {
			log_err("%s: the %s ends without a libxc stream",
			    in.name, wrap_kind_name(run->wi.kind));
			goto out_parser;
		}
		rc = 0;
		goto out_parser;
	}
	if ((code = parser_finish(in.p)) != 0 && run->stopped) {
		rc = 0;		/* whatever follows did not matter */
		goto out_parser;
	}
	if (code != 0) {
		char	cp[200] = "";

		if (code < 0)
			code = -code;
		pe = parser_error(in.p);
		if (code == XP_ETRUNCATED && run->epochs > 0)
			snprintf(cp, sizeof cp, " (a checkpointed stream cut "
			    "off: %" PRIu64 " complete epoch%s, the last "
			    "CHECKPOINT ending at offset %" PRIu64 ", then %"
			    PRIu64 " record%s of epoch %" PRIu64 ": a backup "
			    "fails over to epoch %" PRIu64 ")", run->epochs,
			    run->epochs == 1 ? "" : "s", run->ckpt_end,
			    run->ep_records, run->ep_records == 1 ? "" : "s",
			    run->epochs + 1, run->epochs);
		if (code == XP_ECALLBACK && run->err[0] != '\0')
			log_err("%s: %s", in.name, run->err);
		else if (in.w != NULL)
			log_err("%s: libxc stream at offset %" PRIu64 " of the "
			    "%s (offsets below count from there): %s",
			    in.name, run->wi.libxc_offset,
			    wrap_kind_name(run->wi.kind), pe != NULL &&
			    pe->msg[0] != '\0' ? pe->msg : xp_strerror(code));
		else if (pe != NULL && pe->msg[0] != '\0')
			log_err("%s: %s%s", in.name, pe->msg, cp);
		else
			log_err("%s: offset %" PRIu64 ": %s%s", in.name,
			    parser_offset(in.p), xp_strerror(code), cp);
		goto out_parser;
	}
	rc = 0;
out_parser:
	parser_free(in.p);
	xp_wrap_free(in.w);
out_free:
	free(buf);
out_close:
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

/* Parse the options of a command that takes no option but --help. */
static int
plain_options(int argc, char **argv, int nargs)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			help_cmd(cur_cmd);
			return 0;
		default:
			usage(cur_cmd);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != nargs) {
		usage(cur_cmd);
		return EXIT_USAGE;
	}
	return -1;
}

/* ---- dump ------------------------------------------------------------- */

/*
 * One output line: "kind key=value ..." or a JSON object (json-c, one
 * object per line, keys in the order written).
 */
struct line {
	FILE		*f;
	int		 json;
	json_object	*o;		/* the line being built (json) */
	const char	*key;		/* line_key's, for the value that follows */
};

/*
 * A string for json-c: text that is not ASCII is taken octet by octet as
 * U+0000-U+00FF (so the output is valid UTF-8 whatever the image holds,
 * and reads back as the same octets, as the \u00XX of before did).
 */
static json_object *
json_octets(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	json_object *o;
	size_t n = 0, i;
	char *t;

	for (i = 0; u[i] != '\0'; i++)
		n += u[i] >= 0x80 ? 2 : 1;
	if (n == i)
		return json_object_new_string(s);
	if ((t = malloc(n + 1)) == NULL)
		return json_object_new_string("?");
	for (i = 0, n = 0; u[i] != '\0'; i++) {
		if (u[i] >= 0x80) {
			t[n++] = (char)(0xc0 | (u[i] >> 6));
			t[n++] = (char)(0x80 | (u[i] & 0x3f));
		} else
			t[n++] = (char)u[i];
	}
	t[n] = '\0';
	o = json_object_new_string(t);
	free(t);
	return o;
}

static void
line_begin(struct line *l, const char *kind)
{
	if (l->json) {
		l->o = json_object_new_object();
		json_object_object_add(l->o, "kind", json_octets(kind));
	} else
		fputs(kind, l->f);
}

/* The key of the value that follows; in text, written now. */
static void
line_key(struct line *l, const char *key)
{
	if (l->json)
		l->key = key;
	else
		fprintf(l->f, " %s=", key);
}

static void
line_value(struct line *l, json_object *v)
{
	json_object_object_add(l->o, l->key, v);
}

static void
line_u64(struct line *l, const char *key, uint64_t v)
{
	line_key(l, key);
	if (l->json)
		line_value(l, json_object_new_uint64(v));
	else
		fprintf(l->f, "%" PRIu64, v);
}

/* Hexadecimal in text, a plain number in JSON (which has no hex). */
static void
line_hex(struct line *l, const char *key, uint64_t v, int width)
{
	line_key(l, key);
	if (l->json)
		line_value(l, json_object_new_uint64(v));
	else
		fprintf(l->f, "0x%0*" PRIx64, width, v);
}

/* A number already formatted (as it is, in text and JSON alike). */
static void
line_num(struct line *l, const char *key, double v, const char *formatted)
{
	line_key(l, key);
	if (l->json)
		line_value(l, json_object_new_double_s(v, formatted));
	else
		fputs(formatted, l->f);
}

static void
line_str(struct line *l, const char *key, const char *s)
{
	line_key(l, key);
	if (l->json)
		line_value(l, json_octets(s));
	else
		fputs(s, l->f);
}

static void
line_end(struct line *l)
{
	if (l->json) {
		fputs(json_object_to_json_string_ext(l->o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
		    l->f);
		json_object_put(l->o);
		l->o = NULL;
	}
	fputc('\n', l->f);
}

static int
dump_header(struct image_run *run, const struct xp_stream *st)
{
	struct line	*l = run->ctx;
	const char	*type = dom_type_name(st);

	line_begin(l, "headers");
	line_str(l, "dialect", st->dialect == XP_DRAFTB ? "draft-B" : "xen");
	line_u64(l, "version", st->version);
	line_str(l, "byte_order", st->big_endian ? "big" : "little");
	line_hex(l, "image_options", st->ihdr_options, 4);
	line_str(l, "arch", arch_name(st));
	if (type != NULL)
		line_str(l, "domain_type", type);
	else
		line_u64(l, "domain_type", st->dom_type);
	line_u64(l, "page_shift", st->page_shift);
	if (st->dialect == XP_XEN) {
		line_u64(l, "xen_major", st->xen_major);
		line_u64(l, "xen_minor", st->xen_minor);
	}
	line_end(l);
	return 0;
}

/* A line per xl header, libxl header and libxl record. */
static int
dump_wrap(struct image_run *run, const struct xp_wrap_item *it)
{
	struct line	*l = run->ctx;

	switch (it->kind) {
	case XP_WI_XL_HEADER:
		line_begin(l, "xl-header");
		line_u64(l, "offset", it->offset);
		line_u64(l, "size", it->size);
		line_hex(l, "mandatory_flags", it->mandatory_flags, 8);
		line_hex(l, "optional_flags", it->optional_flags, 8);
		line_u64(l, "optional_data_len", it->optional_data_len);
		line_u64(l, "config_len", it->config_len);
		line_str(l, "config_format", it->mandatory_flags &
		    XP_XL_FLAG_JSON ? "json" : "text");
		break;
	case XP_WI_LIBXL_HEADER:
		line_begin(l, "libxl-header");
		line_u64(l, "offset", it->offset);
		line_u64(l, "version", it->version);
		line_hex(l, "options", it->options, 8);
		break;
	case XP_WI_RECORD:
		line_begin(l, "libxl-record");
		line_u64(l, "index", it->index);
		line_u64(l, "offset", it->offset);
		line_str(l, "type", xp_libxl_rec_name(it->type));
		line_u64(l, "length", it->length);
		line_u64(l, "wire_length", it->size);
		if (it->type == XP_LIBXL_EMULATOR_XENSTORE_DATA ||
		    it->type == XP_LIBXL_EMULATOR_CONTEXT) {
			line_u64(l, "emulator_id", it->emulator_id);
			line_u64(l, "emulator_index", it->emulator_index);
		}
		if (it->type == XP_LIBXL_EMULATOR_XENSTORE_DATA)
			line_u64(l, "pairs", it->xs_pairs);
		if (it->type == XP_LIBXL_LIBXC_CONTEXT)
			line_u64(l, "libxc_offset", it->offset + it->size);
		break;
	}
	line_end(l);
	if (ferror(l->f))
		return run_fail(run, "standard output: %s", strerror(errno));
	return 0;
}

/* The body summary of one record, after its framing fields. */
static void
dump_body(struct line *l, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct page_summary	 ps;
	struct xp_negotiate	 n;
	const uint8_t		*b = rec->body;
	int			 be = st->big_endian;
	uint32_t		 len = rec->length;
	unsigned		 t;
	char			 why[320], ratio[32];

	if (!rec->known) {
		line_str(l, "note", "unknown optional record, skipped");
		return;
	}
	switch (rec->type) {
	case REC_PAGE_DATA:
	case REC_XMIG_ZERO_PAGES:
		if (page_data_scan(st, rec, &ps, NULL, NULL, NULL, why,
		    sizeof why) != 0) {
			line_str(l, "note", "malformed body");
			break;
		}
		line_u64(l, "count", ps.count);
		if (rec->type == REC_XMIG_ZERO_PAGES)
			line_u64(l, "zero_pages", ps.zero_entries);
		else
			line_u64(l, "data_pages", ps.data_pages);
		for (t = 0; t < 16; t++) {
			if (ps.by_type[t] != 0)
				line_u64(l, page_type_names[t], ps.by_type[t]);
		}
		if (ps.count != 0) {
			line_hex(l, "first_pfn", ps.first_pfn, 1);
			line_hex(l, "last_pfn", ps.last_pfn, 1);
		}
		if (ps.deflated) {
			int z = ps.codec == WIRE_REC_OPT_ZSTD;

			line_u64(l, "raw_length", ps.raw_length);
			line_u64(l, z ? "compressed_length" : "deflated_length",
			    ps.deflated_length);
			snprintf(ratio, sizeof ratio, "%.3f", ps.raw_length ?
			    (double)ps.deflated_length / ps.raw_length : 0.0);
			line_num(l, z ? "zstd_ratio" : "deflate_ratio",
			    strtod(ratio, NULL), ratio);
		}
		break;
	case REC_XMIG_DELTA_PAGES: {
		struct delta_view dv;

		if (delta_pages_view(st, rec, &dv) != 0) {
			line_str(l, "note", "malformed body");
			break;
		}
		line_u64(l, "count", dv.count);
		line_u64(l, "delta_octets", dv.data_len);
		line_hex(l, "first_pfn", delta_view_pfn(&dv, 0), 1);
		line_hex(l, "last_pfn", delta_view_pfn(&dv, dv.count - 1), 1);
		break;
	}
	case REC_XMIG_NEGOTIATE:
		if (body_negotiate_get(st, rec, &n) != 0) {
			line_str(l, "note", "malformed body");
			break;
		}
		line_u64(l, "negotiate_version", n.version);
		line_hex(l, "features", n.features, 8);
		line_hex(l, "can_write", n.can_write, 8);
		line_u64(l, "max_record_len", n.max_record_len);
		line_u64(l, "arch", n.arch);
		line_u64(l, "domain_type", n.type);
		line_u64(l, "page_shift", n.page_shift);
		line_u64(l, "nr_pages", n.nr_pages);
		line_u64(l, "nr_vcpus", n.nr_vcpus);
		line_hex(l, "session_id", n.session_id, 16);
		break;
	case REC_XMIG_DOMAIN_CONFIG: {
		const char *text;
		uint32_t kind;
		size_t tlen;

		if (body_config_get(st, rec, &kind, &text, &tlen) != 0) {
			line_str(l, "note", "malformed body");
			break;
		}
		line_str(l, "config_kind", kind == XMIG_CONFIG_LIBXL_JSON ?
		    "libxl-json" : "?");
		line_u64(l, "config_length", tlen);
		break;
	}
	case REC_X86_PV_INFO:
		if (len >= 2) {
			line_u64(l, "guest_width", b[0]);
			line_u64(l, "pt_levels", b[1]);
		}
		break;
	case REC_X86_PV_P2M_FRAMES:
		if (len >= 8) {
			line_hex(l, "start_pfn", xp_get32(be, b), 1);
			line_hex(l, "end_pfn", xp_get32(be, b + 4), 1);
			line_u64(l, "frames", (len - 8) / 8);
		}
		break;
	case REC_X86_PV_VCPU_BASIC:
	case REC_X86_PV_VCPU_EXTENDED:
	case REC_X86_PV_VCPU_XSAVE:
	case REC_X86_PV_VCPU_MSRS:
		if (len >= WIRE_VCPU_HDR_SIZE) {
			line_u64(l, "vcpu", xp_get32(be, b));
			line_u64(l, "blob", len - WIRE_VCPU_HDR_SIZE);
		}
		break;
	case REC_X86_TSC_INFO:
		if (len >= WIRE_TSC_INFO_SIZE) {
			line_u64(l, "mode", xp_get32(be, b));
			line_u64(l, "khz", xp_get32(be, b + 4));
			line_u64(l, "nsec", xp_get64(be, b + 8));
			line_u64(l, "incarnation", xp_get32(be, b + 16));
		}
		break;
	case REC_HVM_PARAMS:
	case REC_XMIG_EARLY_PARAMS:
		if (len >= 8)
			line_u64(l, "params", xp_get32(be, b));
		break;
	case REC_X86_CPUID_POLICY:
		line_u64(l, "leaves", len / WIRE_CPUID_LEAF_SIZE);
		break;
	case REC_X86_MSR_POLICY:
		line_u64(l, "msrs", len / WIRE_MSR_ENTRY_SIZE);
		break;
	case REC_CHECKPOINT_DIRTY_PFN_LIST:
		line_u64(l, "pfns", len / 8);
		break;
	default:
		break;
	}
}

static int
dump_record(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct line	*l = run->ctx;

	line_begin(l, "record");
	line_u64(l, "index", rec->index);
	line_u64(l, "offset", rec->offset);
	line_str(l, "type", record_type_name(rec->type));
	line_hex(l, "type_id", rec->type, 2);
	line_u64(l, "length", rec->length);
	line_u64(l, "wire_length", rec->wire_len);
	if (st->dialect == XP_DRAFTB) {
		line_hex(l, "options", rec->options, 4);
		line_hex(l, "checksum", rec->checksum, 8);
	}
	if (rec->flags & XP_REC_SDE_INFERRED)
		line_str(l, "static_data_end", "inferred");
	if (rec->type == REC_CHECKPOINT) {
		/* The epoch it closes, and its records (SPEC 15.4). */
		line_u64(l, "epoch", run->epochs + 1);
		line_u64(l, "epoch_records", run->ep_records);
	}
	dump_body(l, st, rec);
	line_end(l);
	if (ferror(l->f))
		return run_fail(run, "standard output: %s", strerror(errno));
	return 0;
}

static int
cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct line		l;
	struct image_run	run;
	int			ch, rc;

	memset(&l, 0, sizeof l);
	l.f = stdout;
	while ((ch = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			l.json = 1;
			break;
		case 'h':
			help_cmd(cur_cmd);
			return 0;
		default:
			usage(cur_cmd);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(cur_cmd);
		return EXIT_USAGE;
	}

	memset(&run, 0, sizeof run);
	run.path = argv[optind];
	run.hcb = dump_header;
	run.rcb = dump_record;
	run.wcb = dump_wrap;
	run.ctx = &l;
	rc = image_parse(&run);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_err("standard output: %s", strerror(errno));
		return EXIT_INVALID;
	}
	return rc == 0 ? 0 : EXIT_INVALID;
}

/* ---- verify ----------------------------------------------------------- */

struct verify_ctx {
	uint64_t		records;
	uint64_t		pages;
	uint64_t		checkpoints;
	struct inflate_buf	ib;
};

/* Scan a page record, inflating DEFLATE data; a failure fails the run. */
static int
scan_or_fail(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec, struct page_summary *ps, page_each_cb each,
    void *arg, struct inflate_buf *ib)
{
	char	why[400];

	switch (page_data_scan(st, rec, ps, each, arg, ib, why, sizeof why)) {
	case 0:
		return 0;
	case -1:
		return run_fail(run, "record %" PRIu64 " (%s) at offset %"
		    PRIu64 ": body does not add up", rec->index,
		    record_type_name(rec->type), rec->offset);
	default:
		return run_fail(run, "%s", why);
	}
}

static int
verify_record(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct verify_ctx	*vc = run->ctx;
	struct page_summary	 ps;
	int			 rc;

	vc->records++;
	if (rec->type == REC_CHECKPOINT)
		vc->checkpoints++;
	if (is_page_record(rec->type)) {
		/* DEFLATE data is inflated in full: a bad stream fails. */
		if ((rc = scan_or_fail(run, st, rec, &ps, NULL, NULL,
		    &vc->ib)) != 0)
			return rc;
		vc->pages += ps.count;
	}
	return 0;
}

static int
cmd_verify(int argc, char **argv)
{
	struct verify_ctx	vc;
	struct image_run	run;
	char			desc[160], cp[200] = "", wdesc[640];
	int			rc;

	if ((rc = plain_options(argc, argv, 1)) != -1)
		return rc;

	memset(&vc, 0, sizeof vc);
	memset(&run, 0, sizeof run);
	run.path = argv[optind];
	run.rcb = verify_record;
	run.ctx = &vc;
	rc = image_parse(&run);
	free(vc.ib.p);
	if (rc != 0)
		return EXIT_INVALID;
	describe_stream(&run.st, desc, sizeof desc);
	if (vc.checkpoints != 0)
		snprintf(cp, sizeof cp, ", %" PRIu64 " checkpoint%s (epoch %"
		    PRIu64 " ends at offset %" PRIu64 ", %" PRIu64 " record%s "
		    "after it)", vc.checkpoints, vc.checkpoints == 1 ? "" : "s",
		    run.epochs, run.ckpt_end, run.ep_records,
		    run.ep_records == 1 ? "" : "s");
	if (run.wi.kind != XP_WRAP_NONE) {
		describe_wrap(&run.wi, wdesc, sizeof wdesc);
		printf("valid %s; libxc stream: ", wdesc);
	} else
		printf("valid ");
	printf("%s, %" PRIu64 " record%s, %" PRIu64 " page%s%s\n", desc,
	    vc.records, vc.records == 1 ? "" : "s", vc.pages,
	    vc.pages == 1 ? "" : "s", cp);
	return 0;
}

/* ---- convert ---------------------------------------------------------- */

struct convert_ctx {
	int		 to_xen;
	int		 expand;	/* extensions into plain records */
	int		 no_checksum;
	int		 big_endian;
	int		 fd;		/* output */
	const char	*out_name;	/* for messages */

	struct xp_stream ost;		/* the output stream */
	struct xp_buf	 buf;		/* one encoded record */
	uint8_t		*scratch;	/* a body in the output byte order */
	size_t		 scratch_len;
	int		 add_sde;	/* insert STATIC_DATA_END if missing */
	int		 sde_done;

	uint64_t	 written;	/* records written */
	uint64_t	 dropped;	/* optional records left out */
	uint64_t	 negotiate;	/* XMIG_NEGOTIATE left out (expand) */
	uint64_t	 zero_expanded;	/* XMIG_ZERO_PAGES written as PAGE_DATA */
	uint64_t	 inflated;	/* DEFLATE PAGE_DATA written plain */
	struct inflate_buf ib;		/* inflated page data */
	uint64_t	*entries;	/* pfn entries of one record */
	size_t		 nentries;
	uint64_t	 sde_inserted_at; /* input index + 1, or 0 */
	uint64_t	 sde_dropped;
};

/* Records that may come before STATIC_DATA_END. */
static int
static_record(uint32_t type)
{
	if (type == REC_XMIG_ZERO_PAGES)
		return 0;	/* memory, like PAGE_DATA */
	return type == REC_X86_PV_INFO || type == REC_X86_CPUID_POLICY ||
	    type == REC_X86_MSR_POLICY || (type & WIRE_REC_OPTIONAL) != 0;
}

static int
convert_header(struct image_run *run, const struct xp_stream *st)
{
	struct convert_ctx	*cc = run->ctx;
	struct xp_stream	*o = &cc->ost;
	uint8_t			 hdr[WIRE_IHDR_SIZE + WIRE_DHDR_SIZE_XEN];
	uint16_t		 type;
	size_t			 n;

	if (cc->to_xen) {
		if (st->arch != WIRE_ARCH_X86)
			return run_fail(run, "%s image: the Xen dialect "
			    "carries x86 domains only", arch_name(st));
		switch (st->dom_type) {
		case WIRE_DOM_X86_PV:
			type = WIRE_DOM_X86_PV;
			break;
		case WIRE_DOM_X86_HVM:
		case WIRE_DOM_X86_PVH:
			type = WIRE_DOM_X86_HVM;
			break;
		default:
			return run_fail(run, "domain type %u has no Xen "
			    "equivalent", st->dom_type);
		}
		stream_init(o, XP_XEN, 0, WIRE_ARCH_X86, type, st->page_shift);
		o->version = WIRE_VERSION_XEN;
		o->ihdr_options = 0;
		if (st->dialect == XP_XEN) {
			o->xen_major = st->xen_major;
			o->xen_minor = st->xen_minor;
		} else {
			o->xen_major = IMAGE_XEN_MAJOR;
			o->xen_minor = IMAGE_XEN_MINOR;
		}
		/* Version 3 needs STATIC_DATA_END; v2 and draft-B may lack it. */
		cc->add_sde = 1;
	} else {
		stream_init(o, XP_DRAFTB, cc->big_endian,
		    st->dialect == XP_XEN ? WIRE_ARCH_X86 : st->arch,
		    st->dom_type, st->page_shift);
		o->version = WIRE_VERSION_DRAFTB;
		o->ihdr_options = cc->big_endian ? WIRE_IHDR_OPT_BIG_ENDIAN : 0;
		o->xen_major = o->xen_minor = 0;
		/* A kept XMIG_NEGOTIATE needs the back-channel bit. */
		if (!cc->expand)
			o->ihdr_options |= st->ihdr_options &
			    WIRE_IHDR_OPT_BACKCHANNEL;
		/* A Xen v2 image has none; draft-B is copied as it is. */
		cc->add_sde = st->dialect == XP_XEN;
	}

	header_image_put(o, hdr);
	n = header_domain_put(o, hdr + WIRE_IHDR_SIZE);
	if (write_all(cc->fd, hdr, WIRE_IHDR_SIZE + n) != 0)
		return run_fail(run, "%s: write: %s", cc->out_name,
		    strerror(errno));
	return 0;
}

/* Write what cc->buf holds. */
static int
convert_flush(struct image_run *run)
{
	struct convert_ctx	*cc = run->ctx;

	if (write_all(cc->fd, cc->buf.data, cc->buf.len) != 0)
		return run_fail(run, "%s: write: %s", cc->out_name,
		    strerror(errno));
	cc->written++;
	return 0;
}

/* Write one record; rec is the input record, NULL for an inserted one. */
static int
convert_emit(struct image_run *run, const struct xp_record *rec,
    uint32_t type, const uint8_t *body, uint32_t len, uint16_t extra)
{
	struct convert_ctx	*cc = run->ctx;
	uint16_t		 opts = extra;
	int			 rc;

	if (cc->ost.dialect == XP_DRAFTB && !cc->no_checksum)
		opts |= WIRE_REC_OPT_CHECKSUM;
	cc->buf.len = 0;
	if ((rc = record_encode(&cc->ost, &cc->buf, type, body, len,
	    opts)) < 0 && rec != NULL)
		return run_fail(run, "record %" PRIu64 " (%s) at offset %"
		    PRIu64 ": cannot be written%s: %s", rec->index,
		    record_type_name(type), rec->offset, type == REC_TOOLSTACK ?
		    " (TOOLSTACK is deprecated and never written)" : "",
		    xp_strerror(rc));
	if (rc < 0)
		return run_fail(run, "%s: writing %s: %s", cc->out_name,
		    record_type_name(type), xp_strerror(rc));
	return convert_flush(run);
}

/*
 * An XMIG_ZERO_PAGES record as PAGE_DATA records of the same pfns (NOTAB,
 * zero data), at most WIRE_PAGE_DATA_MAX to a record; a DEFLATE PAGE_DATA
 * record as a plain one.
 */
static int
convert_expand(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct convert_ctx	*cc = run->ctx;
	struct page_summary	 ps;
	struct xp_page_view	 v;
	struct xp_error		 e;
	uint64_t		*p;
	uint8_t			*zeros = NULL;
	uint32_t		 i, n, done;
	uint16_t		 opts = 0;
	int			 rc;

	if (cc->ost.dialect == XP_DRAFTB && !cc->no_checksum)
		opts = WIRE_REC_OPT_CHECKSUM;
	if (body_page_data_view(st, rec, &v) != 0)
		return scan_or_fail(run, st, rec, &ps, NULL, NULL, NULL);
	if (v.count > cc->nentries) {
		if ((p = reallocarray(cc->entries, v.count, sizeof *p)) ==
		    NULL)
			return run_fail(run, "record %" PRIu64 " (%s): %s",
			    rec->index, record_type_name(rec->type),
			    strerror(errno));
		cc->entries = p;
		cc->nentries = v.count;
	}
	for (i = 0; i < v.count; i++)
		cc->entries[i] = xp_page_view_entry(&v, i);

	if (v.deflated) {
		if (cc->ib.cap < v.raw_length) {
			uint8_t	*q;

			if ((q = realloc(cc->ib.p, v.raw_length)) == NULL)
				return run_fail(run, "record %" PRIu64 ": %s",
				    rec->index, strerror(errno));
			cc->ib.p = q;
			cc->ib.cap = v.raw_length;
		}
		if (body_page_data_inflate_err(st, rec, cc->ib.p, cc->ib.cap,
		    &e) != 0)
			return run_fail(run, "%s", e.msg);
		cc->buf.len = 0;
		rc = record_encode_pages(&cc->ost, &cc->buf, v.count,
		    cc->entries, cc->ib.p, v.raw_length, opts, 0);
		if (rc != 0)
			return run_fail(run, "record %" PRIu64 " (PAGE_DATA) at "
			    "offset %" PRIu64 ": cannot be written inflated: "
			    "%s", rec->index, rec->offset, xp_strerror(rc));
		cc->inflated++;
		return convert_flush(run);
	}

	n = v.count < WIRE_PAGE_DATA_MAX ? v.count : WIRE_PAGE_DATA_MAX;
	if ((zeros = calloc(n, v.page_size)) == NULL)
		return run_fail(run, "record %" PRIu64 ": %s", rec->index,
		    strerror(errno));
	for (done = 0, rc = 0; done < v.count && rc == 0; done += n) {
		if (n > v.count - done)
			n = v.count - done;
		cc->buf.len = 0;
		rc = record_encode_pages(&cc->ost, &cc->buf, n,
		    cc->entries + done, zeros, (size_t)n * v.page_size, opts,
		    0);
		if (rc != 0)
			rc = run_fail(run, "record %" PRIu64 " (%s) at offset %"
			    PRIu64 ": cannot be written as PAGE_DATA: %s",
			    rec->index, record_type_name(rec->type),
			    rec->offset, xp_strerror(rc));
		else
			rc = convert_flush(run);
	}
	free(zeros);
	cc->zero_expanded++;
	return rc;
}

static int
convert_record(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct convert_ctx	*cc = run->ctx;
	const uint8_t		*body = rec->body;
	uint8_t			*p;
	uint16_t		 deflate = 0;
	int			 rc, expand;

	if (rec->type == REC_XMIG_DELTA_PAGES)
		return run_fail(run, "record %" PRIu64 " (XMIG_DELTA_PAGES) at "
		    "offset %" PRIu64 ": cannot be converted: its deltas need "
		    "the pages they apply to, which only the receiver of this "
		    "stream held (SPEC 12.7)", rec->index, rec->offset);
	expand = cc->expand && (rec->type == REC_XMIG_ZERO_PAGES ||
	    (rec->type == REC_PAGE_DATA &&
	    (rec->options & WIRE_REC_OPT_COMPRESSED)));
	if (cc->expand && rec->type == REC_XMIG_NEGOTIATE) {
		cc->negotiate++;
		return 0;
	}
	if (cc->to_xen && (rec->type & WIRE_REC_OPTIONAL) && !expand) {
		cc->dropped++;
		return 0;
	}
	if (rec->type == REC_STATIC_DATA_END) {
		if (cc->sde_done) {
			cc->sde_dropped++;
			return 0;
		}
		cc->sde_done = 1;
	} else if (cc->add_sde && !cc->sde_done && !static_record(rec->type)) {
		if ((rc = convert_emit(run, NULL, REC_STATIC_DATA_END, NULL,
		    0, 0)) != 0)
			return rc;
		cc->sde_done = 1;
		cc->sde_inserted_at = rec->index + 1;
	}
	if (expand)
		return convert_expand(run, st, rec);
	if (rec->type == REC_PAGE_DATA)
		deflate = rec->options & WIRE_REC_OPT_COMPRESSED;
	if (deflate) {
		/* Kept compressed, but checked in full like everything else. */
		struct page_summary	ps;

		if ((rc = scan_or_fail(run, st, rec, &ps, NULL, NULL,
		    &cc->ib)) != 0)
			return rc;
	}

	if (st->big_endian != cc->ost.big_endian && rec->length != 0) {
		if (rec->length > cc->scratch_len) {
			if ((p = realloc(cc->scratch, rec->length)) == NULL)
				return run_fail(run, "record %" PRIu64 " (%s): "
				    "%s", rec->index,
				    record_type_name(rec->type),
				    strerror(errno));
			cc->scratch = p;
			cc->scratch_len = rec->length;
		}
		if (body_reorder_opt(rec->type, deflate, rec->body,
		    rec->length, st->big_endian, cc->ost.big_endian,
		    cc->scratch) != 0)
			return run_fail(run, "record %" PRIu64 " (%s) at offset "
			    "%" PRIu64 ": the body cannot be converted to "
			    "%s-endian", rec->index,
			    record_type_name(rec->type), rec->offset,
			    cc->ost.big_endian ? "big" : "little");
		body = cc->scratch;
	}
	return convert_emit(run, rec, rec->type, body, rec->length, deflate);
}

static void
tmp_signal(int sig)
{
	if (tmp_live)
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Create the temporary file beside path; returns its fd or -1. */
static int
tmp_create(const char *path)
{
	const char	*slash = strrchr(path, '/');
	mode_t		 mask;
	int		 fd, len;

	if (slash == NULL)
		len = snprintf(tmp_path, sizeof tmp_path, ".%s.XXXXXX", path);
	else
		len = snprintf(tmp_path, sizeof tmp_path, "%.*s/.%s.XXXXXX",
		    (int)(slash - path), path, slash + 1);
	if (len < 0 || (size_t)len >= sizeof tmp_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp_path)) == -1)
		return -1;
	tmp_live = 1;
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) == -1) {
		close(fd);
		unlink(tmp_path);
		tmp_live = 0;
		return -1;
	}
	return fd;
}

/*
 * Finish the temporary file of tmp_create: with rc 0 (the writing
 * succeeded) fsync, close and rename it to path; otherwise, or if any of
 * that fails, close and remove it.  Returns 0 or -1 (said on stderr).
 */
static int
tmp_commit(int fd, const char *path, int rc)
{
	if (rc == 0 && fsync(fd) == -1 && errno != EINVAL) {
		log_err("%s: fsync: %s", path, strerror(errno));
		rc = -1;
	}
	if (close(fd) == -1 && rc == 0) {
		log_err("%s: close: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && rename(tmp_path, path) == -1) {
		log_err("%s: rename from %s: %s", path, tmp_path,
		    strerror(errno));
		rc = -1;
	}
	if (rc != 0) {
		unlink(tmp_path);
		log_err("%s: not written", path);
	}
	tmp_live = 0;
	return rc;
}

static int
cmd_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "no-checksum", no_argument, NULL, 'n' },
		{ "big-endian", no_argument, NULL, 'b' },
		{ "expand", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct convert_ctx	 cc;
	struct image_run	 run;
	const char		*in, *out, *to = NULL;
	int			 ch, rc, to_stdout;

	memset(&cc, 0, sizeof cc);
	while ((ch = getopt_long(argc, argv, "t:nbxh", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			to = optarg;
			break;
		case 'n':
			cc.no_checksum = 1;
			break;
		case 'b':
			cc.big_endian = 1;
			break;
		case 'x':
			cc.expand = 1;
			break;
		case 'h':
			help_cmd(cur_cmd);
			return 0;
		default:
			usage(cur_cmd);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2 || to == NULL) {
		usage(cur_cmd);
		return EXIT_USAGE;
	}
	if (strcmp(to, "xen") == 0)
		cc.to_xen = 1;
	else if (strcmp(to, "draftb") != 0 && strcmp(to, "draft-b") != 0) {
		log_err("--to %s: unknown dialect (xen or draftb)", to);
		usage(cur_cmd);
		return EXIT_USAGE;
	}
	if (cc.to_xen && (cc.no_checksum || cc.big_endian || cc.expand)) {
		log_err("--no-checksum, --big-endian and --expand apply to "
		    "draft-B output only (Xen output is always expanded)");
		usage(cur_cmd);
		return EXIT_USAGE;
	}
	if (cc.to_xen)
		cc.expand = 1;
	in = argv[optind];
	out = argv[optind + 1];
	to_stdout = strcmp(out, "-") == 0;

	if (to_stdout) {
		cc.fd = STDOUT_FILENO;
		cc.out_name = "standard output";
	} else {
		signal(SIGINT, tmp_signal);
		signal(SIGTERM, tmp_signal);
		signal(SIGHUP, tmp_signal);
		if ((cc.fd = tmp_create(out)) == -1) {
			log_err("%s: temporary file %s: %s", out, tmp_path,
			    strerror(errno));
			return EXIT_INVALID;
		}
		cc.out_name = out;
	}

	memset(&run, 0, sizeof run);
	run.path = in;
	run.hcb = convert_header;
	run.rcb = convert_record;
	run.ctx = &cc;
	rc = image_parse(&run);
	buf_free(&cc.buf);
	free(cc.scratch);
	free(cc.ib.p);
	free(cc.entries);

	if (!to_stdout)
		rc = tmp_commit(cc.fd, out, rc);
	if (rc != 0)
		return EXIT_INVALID;

	if (run.wi.kind != XP_WRAP_NONE)
		log_info("%s: converted the libxc stream at offset %" PRIu64
		    " (%" PRIu64 " octets) of the %s; its xl header and libxl "
		    "records are not in %s", display_path(in), run.wi.libxc_offset,
		    run.wi.libxc_length, wrap_kind_name(run.wi.kind),
		    cc.out_name);
	if (cc.dropped != 0)
		log_info("dropped %" PRIu64 " optional record%s (Xen's "
		    "verifier rejects optional records)", cc.dropped,
		    cc.dropped == 1 ? "" : "s");
	if (cc.negotiate != 0)
		log_info("dropped XMIG_NEGOTIATE (a file has no back-channel); "
		    "the image header's back-channel bit is cleared");
	if (cc.zero_expanded != 0)
		log_info("wrote %" PRIu64 " XMIG_ZERO_PAGES record%s as "
		    "PAGE_DATA", cc.zero_expanded, cc.zero_expanded == 1 ? "" :
		    "s");
	if (cc.inflated != 0)
		log_info("inflated %" PRIu64 " compressed PAGE_DATA record%s",
		    cc.inflated, cc.inflated == 1 ? "" : "s");
	if (cc.sde_inserted_at != 0)
		log_info("inserted STATIC_DATA_END before input record %"
		    PRIu64, cc.sde_inserted_at - 1);
	if (cc.sde_dropped != 0)
		log_info("dropped %" PRIu64 " late STATIC_DATA_END record%s",
		    cc.sde_dropped, cc.sde_dropped == 1 ? "" : "s");
	return 0;
}

/* ---- stats ------------------------------------------------------------ */

struct type_stat {
	uint32_t	type;
	uint64_t	count;
	uint64_t	body;
	uint64_t	wire;
};

struct stats_ctx {
	struct type_stat *types;	/* sorted by type */
	size_t		 ntypes;
	uint64_t	 records;
	uint64_t	 wire;
	uint64_t	 by_page_type[16];
	uint64_t	 entries;
	uint64_t	 data_pages;
	uint64_t	 zero_pages;
	uint64_t	 zero_entries;	/* XMIG_ZERO_PAGES */
	uint64_t	 deflated[2];	/* DEFLATE, ZSTD PAGE_DATA records */
	uint64_t	 raw_octets[2];	/* their page data, inflated */
	uint64_t	 deflated_octets[2]; /* and as sent */
	uint64_t	 checkpoints;
	uint64_t	*ep_octets;	/* wire octets of each epoch */
	uint64_t	*ep_pages;	/* pfn entries of each epoch */
	size_t		 nep, capep;
	uint64_t	 cur_octets, cur_pages;
	struct inflate_buf ib;

	uint64_t	*pfns;		/* distinct once compacted */
	size_t		 npfns;
	size_t		 cap;
	int		 nomem;
};

static int
pfn_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and remove duplicates. */
static void
pfn_compact(struct stats_ctx *sc)
{
	size_t	i, n = 0;

	qsort(sc->pfns, sc->npfns, sizeof *sc->pfns, pfn_cmp);
	for (i = 0; i < sc->npfns; i++) {
		if (n == 0 || sc->pfns[n - 1] != sc->pfns[i])
			sc->pfns[n++] = sc->pfns[i];
	}
	sc->npfns = n;
}

static int
stats_pfn(void *arg, uint64_t pfn, unsigned type, const uint8_t *data)
{
	struct stats_ctx	*sc = arg;
	uint64_t		*p;
	size_t			 cap;

	if (sc->nomem)
		return 0;
	if (sc->npfns == sc->cap) {
		if (sc->npfns != 0)
			pfn_compact(sc);
		if (sc->cap == 0 || sc->npfns > sc->cap / 2) {
			cap = sc->cap == 0 ? 4096 : sc->cap * 2;
			if ((p = reallocarray(sc->pfns, cap, sizeof *p)) ==
			    NULL) {
				sc->nomem = 1;
				return 0;
			}
			sc->pfns = p;
			sc->cap = cap;
		}
	}
	sc->pfns[sc->npfns++] = pfn;
	return 0;
}

static int
stats_record(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct stats_ctx	*sc = run->ctx;
	struct type_stat	*ts;
	struct page_summary	 ps;
	size_t			 i;
	unsigned		 t;
	int			 rc;

	for (i = 0; i < sc->ntypes && sc->types[i].type < rec->type; i++)
		;
	if (i == sc->ntypes || sc->types[i].type != rec->type) {
		ts = reallocarray(sc->types, sc->ntypes + 1, sizeof *ts);
		if (ts == NULL)
			return run_fail(run, "statistics: %s",
			    strerror(errno));
		sc->types = ts;
		memmove(ts + i + 1, ts + i, (sc->ntypes - i) * sizeof *ts);
		memset(&ts[i], 0, sizeof ts[i]);
		ts[i].type = rec->type;
		sc->ntypes++;
	}
	ts = &sc->types[i];
	ts->count++;
	ts->body += rec->length;
	ts->wire += rec->wire_len;
	sc->records++;
	sc->wire += rec->wire_len;
	sc->cur_octets += rec->wire_len;
	if (rec->type == REC_CHECKPOINT) {
		sc->checkpoints++;
		if (sc->nep == sc->capep) {
			size_t	 cap = sc->capep ? sc->capep * 2 : 64;
			uint64_t *o, *p;

			if ((o = realloc(sc->ep_octets, cap * 8)) == NULL)
				return run_fail(run, "statistics: epochs: %s",
				    strerror(ENOMEM));
			sc->ep_octets = o;
			if ((p = realloc(sc->ep_pages, cap * 8)) == NULL)
				return run_fail(run, "statistics: epochs: %s",
				    strerror(ENOMEM));
			sc->ep_pages = p;
			sc->capep = cap;
		}
		sc->ep_octets[sc->nep] = sc->cur_octets;
		sc->ep_pages[sc->nep++] = sc->cur_pages;
		sc->cur_octets = sc->cur_pages = 0;
	}

	if (is_page_record(rec->type)) {
		if ((rc = scan_or_fail(run, st, rec, &ps, stats_pfn, sc,
		    &sc->ib)) != 0)
			return rc;
		if (sc->nomem)
			return run_fail(run, "statistics: distinct pfns: %s",
			    strerror(ENOMEM));
		for (t = 0; t < 16; t++)
			sc->by_page_type[t] += ps.by_type[t];
		sc->entries += ps.count;
		sc->cur_pages += ps.count;
		sc->data_pages += ps.data_pages;
		sc->zero_pages += ps.zero_pages;
		sc->zero_entries += ps.zero_entries;
		if (ps.deflated) {
			int z = ps.codec == WIRE_REC_OPT_ZSTD;

			sc->deflated[z]++;
			sc->raw_octets[z] += ps.raw_length;
			sc->deflated_octets[z] += ps.deflated_length;
		}
	}
	return 0;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmd_stats(int argc, char **argv)
{
	struct stats_ctx	 sc;
	struct image_run	 run;
	struct type_stat	*ts;
	char			 desc[160];
	uint64_t		 hdrs;
	size_t			 i;
	unsigned		 t;
	int			 rc;

	if ((rc = plain_options(argc, argv, 1)) != -1)
		return rc;

	memset(&sc, 0, sizeof sc);
	memset(&run, 0, sizeof run);
	run.path = argv[optind];
	run.rcb = stats_record;
	run.ctx = &sc;
	rc = image_parse(&run);
	free(sc.ib.p);
	if (rc != 0) {
		free(sc.types);
		free(sc.pfns);
		free(sc.ep_octets);
		free(sc.ep_pages);
		return EXIT_INVALID;
	}
	if (sc.npfns != 0)
		pfn_compact(&sc);

	describe_stream(&run.st, desc, sizeof desc);
	hdrs = WIRE_IHDR_SIZE + header_domain_size(&run.st);
	printf("image: %s\n", desc);
	printf("octets: %" PRIu64 " (headers %" PRIu64 ", records %" PRIu64
	    ")\n", hdrs + sc.wire, hdrs, sc.wire);
	printf("records: %" PRIu64 "\n", sc.records);
	printf("  %-28s %10s %14s %14s\n", "type", "count", "body octets",
	    "wire octets");
	for (i = 0; i < sc.ntypes; i++) {
		ts = &sc.types[i];
		printf("  %-28s %10" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n",
		    record_type_name(ts->type), ts->count, ts->body, ts->wire);
	}
	printf("checkpoints: %" PRIu64 "\n", sc.checkpoints);
	if (sc.nep > 0) {
		/* Per epoch (SPEC 15.4): the first is the whole live copy. */
		printf("  epoch 1: %" PRIu64 " octets, %" PRIu64 " pfn "
		    "entries\n", sc.ep_octets[0], sc.ep_pages[0]);
		if (sc.nep > 1) {
			qsort(sc.ep_octets + 1, sc.nep - 1, 8, u64_cmp);
			qsort(sc.ep_pages + 1, sc.nep - 1, 8, u64_cmp);
			printf("  epochs 2-%zu: octets min %" PRIu64 ", median %"
			    PRIu64 ", max %" PRIu64 "; pfn entries min %"
			    PRIu64 ", median %" PRIu64 ", max %" PRIu64 "\n",
			    sc.nep, sc.ep_octets[1], sc.ep_octets[1 +
			    (sc.nep - 1) / 2], sc.ep_octets[sc.nep - 1],
			    sc.ep_pages[1], sc.ep_pages[1 + (sc.nep - 1) / 2],
			    sc.ep_pages[sc.nep - 1]);
		}
		printf("  after the last checkpoint: %" PRIu64 " octets\n",
		    sc.cur_octets);
	}
	free(sc.ep_octets);
	free(sc.ep_pages);
	printf("pfn entries: %" PRIu64 "\n", sc.entries);
	for (t = 0; t < 16; t++) {
		if (sc.by_page_type[t] != 0)
			printf("  %-28s %10" PRIu64 "\n", page_type_names[t],
			    sc.by_page_type[t]);
	}
	printf("data pages: %" PRIu64 "\n", sc.data_pages);
	printf("zero pages: %" PRIu64 "\n", sc.zero_pages);
	printf("zero-page entries (XMIG_ZERO_PAGES): %" PRIu64 "\n",
	    sc.zero_entries);
	for (i = 0; i < 2; i++) {
		printf("%s records: %" PRIu64, i ? "zstd" : "deflated",
		    sc.deflated[i]);
		if (sc.deflated[i] != 0)
			printf(" (%" PRIu64 " octets of pages in %" PRIu64
			    ", ratio %.3f)", sc.raw_octets[i],
			    sc.deflated_octets[i], sc.raw_octets[i] ?
			    (double)sc.deflated_octets[i] / sc.raw_octets[i] :
			    0.0);
		printf("\n");
	}
	printf("distinct pfns: %zu\n", sc.npfns);
	free(sc.types);
	free(sc.pfns);
	if (fflush(stdout) != 0) {
		log_err("standard output: %s", strerror(errno));
		return EXIT_INVALID;
	}
	return 0;
}

/* ---- digest ----------------------------------------------------------- */

struct digest_ctx {
	int			 fd;		/* the pages, at pfn * page_size */
	size_t			 page_size;
	uint64_t		 npages;	/* highest pfn + 1 */
	int			 verify;	/* VERIFY seen: compare only */
	uint64_t		 epoch;		/* --epoch N: stop after it */
	struct inflate_buf	 ib;
};

static int
digest_pfn(void *arg, uint64_t pfn, unsigned type, const uint8_t *data)
{
	struct digest_ctx	*dc = arg;
	uint64_t		 off;
	size_t			 done;
	ssize_t			 n;

	if (pfn + 1 > dc->npages)
		dc->npages = pfn + 1;
	if (data == NULL)
		return 0;
	if (pfn > (uint64_t)INT64_MAX / dc->page_size - 1)
		return EFBIG;
	off = pfn * dc->page_size;
	for (done = 0; done < dc->page_size; done += (size_t)n) {
		n = pwrite(dc->fd, data + done, dc->page_size - done,
		    (off_t)(off + done));
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			return n == -1 ? errno : EIO;
	}
	return 0;
}

/*
 * XMIG_DELTA_PAGES (SPEC 12.7): each delta applied to the page as the
 * stream left it so far.  A pfn beyond every page given so far is
 * refused; a receiver checks more (each pfn must have come as a plain
 * page), which this reader, keeping no list of pfns, does not.
 */
static int
digest_delta(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct digest_ctx	*dc = run->ctx;
	struct delta_view	 dv;
	const uint8_t		*d;
	static uint8_t		 page[sizeof(zero_page)];
	uint64_t		 pfn;
	uint32_t		 i, len;
	char			 why[200];
	ssize_t			 n;

	dc->page_size = (size_t)1 << st->page_shift;
	if (delta_pages_view(st, rec, &dv) != 0 ||
	    dc->page_size > sizeof(page))
		return run_fail(run, "record %" PRIu64 " (XMIG_DELTA_PAGES) "
		    "at offset %" PRIu64 ": body does not add up", rec->index,
		    rec->offset);
	for (i = 0, d = dv.data; i < dv.count; i++, d += len) {
		pfn = delta_view_pfn(&dv, i);
		len = delta_view_len(&dv, i);
		if (pfn >= dc->npages)
			return run_fail(run, "record %" PRIu64 " (XMIG_DELTA_"
			    "PAGES) at offset %" PRIu64 ": delta %u is for pfn "
			    "%" PRIu64 ", a page the stream never gave",
			    rec->index, rec->offset, i, pfn);
		n = pread(dc->fd, page, dc->page_size,
		    (off_t)(pfn * dc->page_size));
		if (n < 0)
			return run_fail(run, "reading back pfn %" PRIu64 ": %s",
			    pfn, strerror(errno));
		if ((size_t)n < dc->page_size)
			memset(page + n, 0, dc->page_size - (size_t)n);
		if (delta_apply(page, (uint32_t)dc->page_size, d, len, why,
		    sizeof(why)) != 0)
			return run_fail(run, "record %" PRIu64 " (XMIG_DELTA_"
			    "PAGES) at offset %" PRIu64 ": delta %u (pfn %"
			    PRIu64 "): %s", rec->index, rec->offset, i, pfn,
			    why);
		if (digest_pfn(dc, pfn, PT_NOTAB, page) != 0)
			return run_fail(run, "writing pfn %" PRIu64 ": %s",
			    pfn, strerror(errno));
	}
	return 0;
}

static int
digest_record(struct image_run *run, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct digest_ctx	*dc = run->ctx;
	struct page_summary	 ps;

	if (rec->type == REC_CHECKPOINT && dc->epoch != 0 &&
	    run->epochs + 1 == dc->epoch) {
		run->stopped = 1;	/* epoch N is complete */
		return 0;
	}
	if (rec->type == REC_VERIFY)
		dc->verify = 1;
	if (rec->type == REC_XMIG_DELTA_PAGES && !dc->verify)
		return digest_delta(run, st, rec);
	if (!is_page_record(rec->type) || dc->verify)
		return 0;
	dc->page_size = (size_t)1 << st->page_shift;
	return scan_or_fail(run, st, rec, &ps, digest_pfn, dc, &dc->ib);
}

static int
digest_header(struct image_run *run, const struct xp_stream *st)
{
	struct digest_ctx	*dc = run->ctx;

	dc->page_size = (size_t)1 << st->page_shift;
	return 0;
}

/* The digest of pages 0..npages-1 of the file; 0 or an errno. */
static int
digest_file(struct digest_ctx *dc, uint64_t npages, enum xmig_digest alg,
    uint8_t md[32])
{
	struct mhash	*h;
	uint8_t		*buf;
	size_t		 chunk = IMAGE_CHUNK, want;
	uint64_t	 off = 0, total = npages * dc->page_size;
	ssize_t		 n;
	int		 rc = 0;

	if ((buf = malloc(chunk)) == NULL)
		return errno;
	if ((h = mhash_new(alg)) == NULL) {
		free(buf);
		return ENOMEM;
	}
	while (off < total) {
		want = total - off < chunk ? (size_t)(total - off) : chunk;
		n = pread(dc->fd, buf, want, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = errno;
			break;
		}
		if (n == 0) {
			/* Beyond what was written: zeros. */
			memset(buf, 0, want);
			n = (ssize_t)want;
		}
		mhash_update(h, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (rc == 0)
		mhash_final(h, md);
	mhash_free(h);
	free(buf);
	return rc;
}

static int
cmd_digest(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "hash", required_argument, NULL, 'H' },
		{ "epoch", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	enum xmig_digest	 alg = XMIG_DIGEST_XXH3;
	struct digest_ctx	 dc;
	struct image_run	 run;
	char			 path[PATH_MAX], *end;
	const char		*tmp;
	uint8_t			 md[32];
	uint64_t		 npages = 0, epoch = 0;
	int			 ch, rc, given = 0;
	size_t			 i;

	while ((ch = getopt_long(argc, argv, "p:e:H:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			if (digest_parse(optarg, &alg) != 0) {
				log_err("--hash %s: xxh3-128 or sha256", optarg);
				usage(cur_cmd);
				return EXIT_USAGE;
			}
			break;
		case 'e':
			errno = 0;
			epoch = strtoull(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    *optarg == '-' || epoch == 0) {
				log_err("--epoch %s: not an epoch number (from "
				    "1)", optarg);
				usage(cur_cmd);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			errno = 0;
			npages = strtoull(optarg, &end, 0);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    *optarg == '-') {
				log_err("--pages %s: not a number", optarg);
				usage(cur_cmd);
				return EXIT_USAGE;
			}
			given = 1;
			break;
		case 'h':
			help_cmd(cur_cmd);
			return 0;
		default:
			usage(cur_cmd);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(cur_cmd);
		return EXIT_USAGE;
	}

	memset(&dc, 0, sizeof dc);
	dc.epoch = epoch;
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	if (snprintf(path, sizeof path, "%s/xmig-digest.XXXXXX", tmp) >=
	    (int)sizeof path || (dc.fd = mkstemp(path)) == -1) {
		log_err("temporary file in %s: %s", tmp, strerror(errno));
		return EXIT_INVALID;
	}
	unlink(path);

	memset(&run, 0, sizeof run);
	run.path = argv[optind];
	run.hcb = digest_header;
	run.rcb = digest_record;
	run.ctx = &dc;
	rc = image_parse(&run);
	free(dc.ib.p);
	if (rc != 0) {
		close(dc.fd);
		return EXIT_INVALID;
	}
	if (epoch != 0 && !run.stopped) {
		log_err("%s: --epoch %" PRIu64 ": the image has %" PRIu64
		    " complete epoch%s", display_path(run.path), epoch,
		    run.epochs, run.epochs == 1 ? "" : "s");
		close(dc.fd);
		return EXIT_INVALID;
	}
	if (!given)
		npages = dc.npages;
	if (npages > (uint64_t)INT64_MAX / dc.page_size) {
		log_err("--pages %" PRIu64 ": too many pages", npages);
		close(dc.fd);
		return EXIT_INVALID;
	}
	if ((rc = digest_file(&dc, npages, alg, md)) != 0) {
		log_err("%s: digest: %s", display_path(run.path),
		    strerror(rc));
		close(dc.fd);
		return EXIT_INVALID;
	}
	close(dc.fd);
	for (i = 0; i < digest_len(alg); i++)
		printf("%02x", md[i]);
	printf("  pages=%" PRIu64 " page_size=%zu hash=%s\n", npages,
	    dc.page_size, digest_name(alg));
	if (fflush(stdout) != 0) {
		log_err("standard output: %s", strerror(errno));
		return EXIT_INVALID;
	}
	return 0;
}

/* ---- libxc ------------------------------------------------------------ */

static int
cmd_libxc(int argc, char **argv)
{
	struct image_run	 run;
	const char		*in, *out;
	int			 rc, fd, to_stdout;

	if ((rc = plain_options(argc, argv, 2)) != -1)
		return rc;
	in = argv[optind];
	out = argv[optind + 1];
	to_stdout = strcmp(out, "-") == 0;
	if (to_stdout)
		fd = STDOUT_FILENO;
	else {
		signal(SIGINT, tmp_signal);
		signal(SIGTERM, tmp_signal);
		signal(SIGHUP, tmp_signal);
		if ((fd = tmp_create(out)) == -1) {
			log_err("%s: temporary file %s: %s", out, tmp_path,
			    strerror(errno));
			return EXIT_INVALID;
		}
	}

	memset(&run, 0, sizeof run);
	run.path = in;
	run.need_wrap = 1;
	run.libxc_fd = fd;
	run.libxc_name = to_stdout ? "standard output" : out;
	rc = image_parse(&run);

	if (!to_stdout)
		rc = tmp_commit(fd, out, rc);
	if (rc != 0)
		return EXIT_INVALID;
	log_info("%s: libxc stream at offset %" PRIu64 " (%" PRIu64 " octets) "
	    "of the %s, written to %s", display_path(in), run.wi.libxc_offset,
	    run.wi.libxc_length, wrap_kind_name(run.wi.kind), run.libxc_name);
	return 0;
}

/* ---- main ------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	const struct image_cmd	*cmd = NULL;
	static char		 name[64];
	size_t			 i;

	log_init(argv[0], LOG_LVL_INFO);
	if (argc < 2) {
		usage(NULL);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		help_main();
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		version_print();
		return 0;
	}
	for (i = 0; i < IMAGE_NCMDS; i++) {
		if (strcmp(argv[1], image_cmds[i].name) == 0)
			cmd = &image_cmds[i];
	}
	if (cmd == NULL) {
		if (argv[1][0] == '-')
			log_err("unknown option: %s", argv[1]);
		else
			log_err("unknown command: %s", argv[1]);
		usage(NULL);
		return EXIT_USAGE;
	}
	cur_cmd = cmd;

	/* getopt's own messages then start with "xmig-image dump: ". */
	snprintf(name, sizeof name, "%s %s", log_progname(), cmd->name);
	argv[1] = name;
	return cmd->exec(argc - 1, argv + 1);
}
