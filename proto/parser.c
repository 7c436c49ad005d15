/*
 * parser.c -- the incremental stream parser: the single entry point for
 * sockets, files, the image tool and the fuzzer.
 *
 * The stream is cut into units: the image header, the domain header, then
 * each record (header, body, padding, footer).  A unit that lies whole in
 * the caller's chunk is handed on from the caller's memory; otherwise its
 * octets are gathered in a buffer that grows with the octets that have
 * arrived (doubling, from PARSER_GROW_MIN), never beyond the size of that
 * unit: an announced length reserves nothing by itself.  A record header
 * is checked (type, options, length, place) before any of its body is
 * gathered.
 *
 * A control parser (parser_new_control) runs the same machinery over a
 * back-channel or the forward control records after END: an optional
 * image header, no domain header, records checked by control.c, and no
 * END.
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto-int.h"

/* A gathering buffer larger than this is freed after its record. */
#define PARSER_KEEP_MAX	(8u << 20)
/* The first allocation of a gathering buffer (then it doubles). */
#define PARSER_GROW_MIN	(64u << 10)

enum parser_state {
	PS_IHDR,
	PS_DHDR,
	PS_RECORD,
	PS_DONE,
	PS_FAILED,
};

struct xp_parser {
	struct xp_limits	 lim;
	xp_header_cb		 hcb;
	xp_record_cb		 rcb;
	void			*arg;

	enum parser_state	 state;
	enum xp_control_dir	 control;	/* 0: a forward stream */
	int			 have_st;	/* both headers parsed */
	struct xp_stream	 st;
	struct xp_check		 ck;

	size_t			 unit;		/* octets in the current unit */
	int			 have_rhdr;	/* record header checked */
	struct xp_record	 rec;		/* the record being parsed */

	uint8_t			*acc;		/* gathering buffer */
	size_t			 acc_len;
	size_t			 acc_cap;

	uint64_t		 offset;	/* octets consumed */
	uint64_t		 unit_off;	/* stream offset of the unit */
	uint64_t		 index;		/* of the record being parsed */
	struct xp_error		 err;

	/* Page data taken direct (parser_set_direct). */
	const struct xp_direct	*dir;		/* NULL: never */
	enum {
		DP_OFF,		/* not in a direct record */
		DP_COUNT,	/* gathering header + count, reserved */
		DP_HEAD,	/* gathering the pfn list */
		DP_DATA,	/* copying page data to dst */
		DP_TAIL,	/* gathering padding and footer after acc */
	}			 dphase;
	size_t			 dhead;		/* header + 8 + 8 * count */
	size_t			 dlen;		/* page data octets */
	size_t			 dpos;		/* of them copied */
	uint32_t		 dcrc;		/* CRC-32 so far */
	uint8_t			*dst[XP_DIRECT_PAGES];
};

static void	parser_control_ready(struct xp_parser *);

struct xp_parser *
parser_new(const struct xp_limits *lim, xp_header_cb hcb, xp_record_cb rcb,
    void *arg)
{
	struct xp_parser	*p;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	if (lim != NULL)
		p->lim = *lim;
	p->hcb = hcb;
	p->rcb = rcb;
	p->arg = arg;
	p->state = PS_IHDR;
	p->unit = WIRE_IHDR_SIZE;
	p->err.index = UINT64_MAX;
	return p;
}

struct xp_parser *
parser_new_control(const struct xp_limits *lim, enum xp_control_dir dir,
    int expect_header, xp_record_cb rcb, void *arg)
{
	struct xp_parser	*p;

	if (dir != XP_CONTROL_BACK && dir != XP_CONTROL_FORWARD)
		return NULL;
	if ((p = parser_new(lim, NULL, rcb, arg)) == NULL)
		return NULL;
	p->control = dir;
	stream_init_control(&p->st);
	if (!expect_header)
		parser_control_ready(p);
	return p;
}

void
parser_free(struct xp_parser *p)
{
	if (p == NULL)
		return;
	free(p->acc);
	free(p);
}

/* ---- failures ------------------------------------------------------------ */

/* Fail with a message that already names where (headers). */
static int
parser_fail_msg(struct xp_parser *p, int code, uint64_t index,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
parser_fail_msg(struct xp_parser *p, int code, uint64_t index,
    const char *fmt, ...)
{
	va_list	ap;

	p->state = PS_FAILED;
	p->err.code = -code;
	p->err.index = index;
	p->err.offset = p->unit_off;
	p->err.type = index == UINT64_MAX ? 0 : p->rec.type;
	va_start(ap, fmt);
	vsnprintf(p->err.msg, sizeof p->err.msg, fmt, ap);
	va_end(ap);
	return code;
}

/* Fail in the record whose header has been read; why says what is wrong. */
static int
parser_fail_rec(struct xp_parser *p, int code, const char *why)
{
	return parser_fail_msg(p, code, p->index, "record %" PRIu64 " (%s) "
	    "at offset %" PRIu64 ": %s", p->index,
	    record_type_name(p->rec.type), p->unit_off, why);
}

/* A callback's return value: go on, pause, or fail. */
static int
parser_cb_result(struct xp_parser *p, int rv, int is_record)
{
	char	why[128];
	int	code;

	if (rv == 0 || rv == XP_PAUSE)
		return rv;
	code = (rv < 0 && rv > -XP_E_MAX) ? rv : -XP_ECALLBACK;
	snprintf(why, sizeof why, "the %s callback failed (%d): %s",
	    is_record ? "record" : "header", rv, xp_strerror(code));
	if (is_record)
		return parser_fail_rec(p, code, why);
	return parser_fail_msg(p, code, UINT64_MAX, "domain header: %s", why);
}

/* ---- gathering ----------------------------------------------------------- */

/*
 * Append n octets of the current unit.  The buffer grows with what has
 * arrived, at most doubling, and never beyond the unit: a peer must send
 * about half of what it makes us hold (SPEC 9).
 */
static int
parser_gather(struct xp_parser *p, const uint8_t *src, size_t n)
{
	size_t	 need = p->acc_len + n, cap;
	uint8_t	*acc;

	if (p->acc_cap < need) {
		cap = p->acc_cap < PARSER_GROW_MIN / 2 ? PARSER_GROW_MIN :
		    p->acc_cap * 2;
		if (cap < need)
			cap = need;
		if (cap > p->unit)
			cap = p->unit;
		if ((acc = realloc(p->acc, cap)) == NULL) {
			char	why[96];

			snprintf(why, sizeof why, "cannot allocate %zu octets",
			    cap);
			if (p->state == PS_RECORD && p->have_rhdr)
				return parser_fail_rec(p, -XP_ENOMEM, why);
			if (p->state == PS_RECORD)
				return parser_fail_msg(p, -XP_ENOMEM, p->index,
				    "record %" PRIu64 " at offset %" PRIu64
				    ": %s", p->index, p->unit_off, why);
			return parser_fail_msg(p, -XP_ENOMEM, UINT64_MAX,
			    "%s: %s", p->state == PS_IHDR ? "image header" :
			    "domain header", why);
		}
		p->acc = acc;
		p->acc_cap = cap;
	}
	memcpy(p->acc + p->acc_len, src, n);
	p->acc_len += n;
	return 0;
}

/* A unit is done: the next one starts here. */
static void
parser_unit_done(struct xp_parser *p, int from_acc)
{
	p->unit_off = p->offset;
	p->acc_len = 0;
	if (from_acc && p->acc_cap > PARSER_KEEP_MAX) {
		free(p->acc);
		p->acc = NULL;
		p->acc_cap = 0;
	}
}

/* ---- units --------------------------------------------------------------- */

/* A control channel is ready for its records (after its image header). */
static void
parser_control_ready(struct xp_parser *p)
{
	record_check_init(&p->ck, &p->st, &p->lim);
	p->ck.dir = p->control;
	p->have_st = 1;
	p->state = PS_RECORD;
	p->unit = record_hdr_size(&p->st);
	p->have_rhdr = 0;
	memset(&p->rec, 0, sizeof p->rec);
}

/* The octets of the image header that have arrived so far. */
static int
parser_ihdr_partial(struct xp_parser *p, const uint8_t *u, size_t n,
    int final)
{
	char	why[sizeof p->err.msg];
	int	rv;

	if (p->control)
		rv = control_header_check(p->control, u, n, final, why,
		    sizeof why);
	else
		rv = header_image_partial(u, n, why, sizeof why);
	if (rv != 0)
		return parser_fail_msg(p, rv, UINT64_MAX, "%s", why);
	return 0;
}

static int
parser_ihdr(struct xp_parser *p, const uint8_t *u)
{
	char	why[sizeof p->err.msg];
	int	rv;

	if (p->control) {
		if ((rv = parser_ihdr_partial(p, u, WIRE_IHDR_SIZE, 1)) != 0)
			return rv;
		parser_control_ready(p);
		return 0;
	}
	if ((rv = header_image_get(&p->st, u, why, sizeof why)) != 0)
		return parser_fail_msg(p, rv, UINT64_MAX, "%s", why);
	p->state = PS_DHDR;
	p->unit = header_domain_size(&p->st);
	return 0;
}

static int
parser_dhdr(struct xp_parser *p, const uint8_t *u)
{
	char	why[sizeof p->err.msg];
	int	rv;

	if ((rv = header_domain_get(&p->st, u, why, sizeof why)) != 0)
		return parser_fail_msg(p, rv, UINT64_MAX, "%s", why);
	record_check_init(&p->ck, &p->st, &p->lim);
	p->have_st = 1;
	p->state = PS_RECORD;
	p->unit = record_hdr_size(&p->st);
	p->have_rhdr = 0;
	memset(&p->rec, 0, sizeof p->rec);
	if (p->hcb == NULL)
		return 0;
	return parser_cb_result(p, p->hcb(p->arg, &p->st), 0);
}

/* A record header has arrived: check it and size the whole record. */
static int
parser_rhdr(struct xp_parser *p, const uint8_t *h)
{
	int		be = p->st.big_endian, known, rv;

	memset(&p->rec, 0, sizeof p->rec);
	p->rec.index = p->index;
	p->rec.offset = p->unit_off;
	p->rec.type = xp_get32(be, h);
	p->rec.length = xp_get32(be, h + 4);
	if (p->st.dialect == XP_DRAFTB)
		p->rec.options = xp_get16(be, h + 8);
	p->have_rhdr = 1;

	p->ck.index = p->index;
	if (p->control) {
		rv = control_check_hdr(&p->ck, p->rec.type, p->rec.length,
		    p->rec.options);
		known = 1;
	} else
		rv = record_check_hdr(&p->ck, p->rec.type, p->rec.length,
		    p->rec.options, &known);
	if (rv != 0)
		return parser_fail_rec(p, rv, p->ck.why);
	p->rec.known = known;
	p->rec.wire_len = record_wire_size(&p->st, p->rec.length);
	p->unit = p->rec.wire_len;
	if (p->dir != NULL && !p->control && known &&
	    p->rec.type == REC_PAGE_DATA &&
	    !(p->rec.options & WIRE_REC_OPT_COMPRESSED) &&
	    p->rec.length >= 8 + p->dir->min_data)
		p->dphase = DP_COUNT;
	return 0;
}

/* A whole record has arrived: checksum, body, callback. */
static int
parser_record(struct xp_parser *p, const uint8_t *u)
{
	struct xp_record	*rec = &p->rec;
	int			 be = p->st.big_endian, rv;
	uint32_t		 crc;
	const uint8_t		*foot;
	char			 why[96];

	rec->hdr = u;
	rec->body = u + record_hdr_size(&p->st);

	if (p->st.dialect == XP_DRAFTB) {
		foot = u + rec->wire_len - WIRE_FOOTER_SIZE;
		rec->checksum = xp_get32(be, foot);
		if (rec->options & WIRE_REC_OPT_CHECKSUM) {
			crc = xp_crc32(0, u, rec->wire_len - WIRE_FOOTER_SIZE);
			if (crc != rec->checksum) {
				snprintf(why, sizeof why, "checksum 0x%08x "
				    "does not match the CRC-32 0x%08x of the "
				    "record", rec->checksum, crc);
				return parser_fail_rec(p, -XP_ECHECKSUM, why);
			}
		} else if (rec->checksum != 0) {
			snprintf(why, sizeof why, "checksum 0x%08x is set but "
			    "option bit 0 (checksum valid) is clear",
			    rec->checksum);
			return parser_fail_rec(p, -XP_ECHECKSUM, why);
		}
	}

	if (p->control) {
		rv = control_check_body(&p->ck, rec->type, rec->body,
		    rec->length);
		if (rv != 0)
			return parser_fail_rec(p, rv, p->ck.why);
		control_commit(&p->ck, rec->type, rec->body, rec->length);
	} else if (rec->known) {
		rv = record_check_body(&p->ck, rec->type, rec->options,
		    rec->body, rec->length);
		if (rv != 0)
			return parser_fail_rec(p, rv, p->ck.why);
		rec->flags = record_commit(&p->ck, rec->type, rec->body,
		    rec->length);
	}

	rv = 0;
	if (p->rcb != NULL)
		rv = parser_cb_result(p, p->rcb(p->arg, &p->st, rec), 1);
	if (rv < 0)
		return rv;

	/* Ready for the next record (or done), whether paused or not. */
	if (rec->type == REC_END && !p->control)
		p->state = PS_DONE;
	p->have_rhdr = 0;
	p->unit = record_hdr_size(&p->st);
	p->index++;
	return rv;
}

static int
parser_unit(struct xp_parser *p, const uint8_t *u)
{
	switch (p->state) {
	case PS_IHDR:
		return parser_ihdr(p, u);
	case PS_DHDR:
		return parser_dhdr(p, u);
	default:
		return parser_record(p, u);
	}
}

/* ---- page data taken direct ---------------------------------------------- */

void
parser_set_direct(struct xp_parser *p, const struct xp_direct *d)
{
	p->dir = d;
}

int
parser_direct_active(const struct xp_parser *p)
{
	return p->state == PS_RECORD && p->dphase != DP_OFF;
}

/* Gather the current record up to acc_len == upto; *took octets of buf. */
static int
parser_direct_gather(struct xp_parser *p, const uint8_t *buf, size_t len,
    size_t upto, size_t *took)
{
	size_t	n = upto - p->acc_len;

	if (n > len)
		n = len;
	*took += n;
	p->offset += n;
	return parser_gather(p, buf, n);
}

/* Not direct after all: the record is gathered whole, as usual. */
static int
parser_direct_off(struct xp_parser *p)
{
	int	rv;

	p->dphase = DP_OFF;
	if (p->acc_len < p->unit)
		return 0;
	rv = parser_unit(p, p->acc);
	parser_unit_done(p, 1);
	return rv;
}

/* The record's header and body up to the data are in acc: check, begin. */
static int
parser_direct_begin(struct xp_parser *p)
{
	struct xp_record	*rec = &p->rec;
	size_t			 hs = record_hdr_size(&p->st), ps, i, nd;
	int			 rv;

	rec->hdr = p->acc;
	rec->body = p->acc + hs;
	/*
	 * A body that fails its checks is gathered whole after all, so that
	 * it is refused as it would be without direct data: its checksum
	 * first.
	 */
	if (record_check_body(&p->ck, rec->type, rec->options, rec->body,
	    rec->length) != 0)
		return parser_direct_off(p);
	/* The checks passed: the body is 8 + 8 * count + ndata pages. */
	p->dlen = rec->length - (p->dhead - hs);
	ps = (size_t)1 << p->st.page_shift;
	nd = p->dlen / ps;
	if (p->dlen == 0 || p->dlen < p->dir->min_data || nd > XP_DIRECT_PAGES)
		return parser_direct_off(p);
	for (i = 0; i < nd; i++)
		p->dst[i] = NULL;
	rv = p->dir->begin(p->arg, &p->st, rec, p->dst);
	if (rv == XP_DIRECT_DECLINE)
		return parser_direct_off(p);
	if ((rv = parser_cb_result(p, rv, 1)) != 0)
		return rv < 0 ? rv : parser_fail_rec(p, -XP_ECALLBACK,
		    "the direct begin callback paused");
	for (i = 0; i < nd; i++)
		if (p->dst[i] == NULL)
			return parser_fail_rec(p, -XP_ECALLBACK, "the direct "
			    "begin callback left a page without a place");
	p->dcrc = 0;
	if (rec->options & WIRE_REC_OPT_CHECKSUM)
		p->dcrc = xp_crc32(0, p->acc, p->dhead);
	p->dpos = 0;
	p->dphase = DP_DATA;
	return 0;
}

/* Header, body and trailer are all in: checksum, commit, end. */
static int
parser_direct_end(struct xp_parser *p)
{
	struct xp_record	*rec = &p->rec;
	size_t			 pad = p->acc_len - p->dhead;
	int			 be = p->st.big_endian, r;
	char			 why[96];

	rec->hdr = p->acc;
	rec->body = p->acc + record_hdr_size(&p->st);
	p->dphase = DP_OFF;
	if (p->st.dialect == XP_DRAFTB) {
		pad -= WIRE_FOOTER_SIZE;
		rec->checksum = xp_get32(be, p->acc + p->acc_len -
		    WIRE_FOOTER_SIZE);
		if (rec->options & WIRE_REC_OPT_CHECKSUM) {
			p->dcrc = xp_crc32(p->dcrc, p->acc + p->dhead, pad);
			if (p->dcrc != rec->checksum) {
				snprintf(why, sizeof why, "checksum 0x%08x "
				    "does not match the CRC-32 0x%08x of the "
				    "record", rec->checksum, p->dcrc);
				r = parser_fail_rec(p, -XP_ECHECKSUM, why);
				p->dir->end(p->arg, &p->st, rec, r);
				return r;
			}
		} else if (rec->checksum != 0) {
			snprintf(why, sizeof why, "checksum 0x%08x is set but "
			    "option bit 0 (checksum valid) is clear",
			    rec->checksum);
			r = parser_fail_rec(p, -XP_ECHECKSUM, why);
			p->dir->end(p->arg, &p->st, rec, r);
			return r;
		}
	}
	rec->flags = record_commit(&p->ck, rec->type, rec->body, rec->length);
	r = parser_cb_result(p, p->dir->end(p->arg, &p->st, rec, 0), 1);
	p->dpos = 0;
	parser_unit_done(p, 1);
	if (r < 0)
		return r;
	p->have_rhdr = 0;
	p->unit = record_hdr_size(&p->st);
	p->index++;
	return r;
}

size_t
parser_direct_space(const struct xp_parser *p, uint8_t **dst)
{
	size_t	ps, pi, off, n;

	if (p->state != PS_RECORD || p->dphase != DP_DATA)
		return 0;
	ps = (size_t)1 << p->st.page_shift;
	pi = p->dpos / ps;
	off = p->dpos % ps;
	*dst = p->dst[pi] + off;
	n = ps - off;
	for (pi++; pi * ps < p->dlen && p->dst[pi] == p->dst[pi - 1] + ps;
	    pi++)
		n += ps;
	return n;
}

ssize_t
parser_direct_commit(struct xp_parser *p, size_t n)
{
	uint8_t	*dst;
	size_t	 room;
	int	 rv;

	if (p->state == PS_FAILED)
		return -p->err.code;
	if ((room = parser_direct_space(p, &dst)) == 0 || n > room)
		return -XP_EINVAL;
	if (p->rec.options & WIRE_REC_OPT_CHECKSUM)
		p->dcrc = xp_crc32(p->dcrc, dst, n);
	p->dpos += n;
	p->offset += n;
	if (p->dpos < p->dlen)
		return (ssize_t)n;
	p->dphase = DP_TAIL;
	if (p->unit - p->dlen > p->acc_len)
		return (ssize_t)n;
	if ((rv = parser_direct_end(p)) < 0)
		return rv;
	return (ssize_t)n;
}

/*
 * One step of a record whose data may go direct: *took octets of buf
 * consumed.  Returns as parser_unit does.
 */
static int
parser_direct_step(struct xp_parser *p, const uint8_t *buf, size_t len,
    size_t *took)
{
	size_t	hs = record_hdr_size(&p->st), ps, n, pi, off, c;
	uint32_t count;
	int	rv;

	*took = 0;
	switch (p->dphase) {
	case DP_COUNT:
		if ((rv = parser_direct_gather(p, buf, len, hs + 8,
		    took)) != 0 || p->acc_len < hs + 8)
			return rv;
		count = xp_get32(p->st.big_endian, p->acc + hs);
		if (count == 0 || count > XP_DIRECT_PAGES ||
		    8 + (uint64_t)count * 8 >= p->rec.length)
			return parser_direct_off(p);
		p->dhead = hs + 8 + (size_t)count * 8;
		p->dphase = DP_HEAD;
		return 0;
	case DP_HEAD:
		if ((rv = parser_direct_gather(p, buf, len, p->dhead,
		    took)) != 0 || p->acc_len < p->dhead)
			return rv;
		return parser_direct_begin(p);
	case DP_DATA:
		ps = (size_t)1 << p->st.page_shift;
		n = p->dlen - p->dpos;
		if (n > len)
			n = len;
		while (*took < n) {
			pi = p->dpos / ps;
			off = p->dpos % ps;
			c = ps - off;
			if (c > n - *took)
				c = n - *took;
			memcpy(p->dst[pi] + off, buf + *took, c);
			if (p->rec.options & WIRE_REC_OPT_CHECKSUM)
				p->dcrc = xp_crc32(p->dcrc, p->dst[pi] + off,
				    c);
			p->dpos += c;
			p->offset += c;
			*took += c;
		}
		if (p->dpos == p->dlen)
			p->dphase = DP_TAIL;
		if (p->dpos < p->dlen || p->unit - p->dlen > p->acc_len)
			return 0;
		return parser_direct_end(p);
	case DP_TAIL:
		if ((rv = parser_direct_gather(p, buf, len, p->unit - p->dlen,
		    took)) != 0 || p->acc_len < p->unit - p->dlen)
			return rv;
		return parser_direct_end(p);
	default:
		return 0;
	}
}

/* ---- feeding ------------------------------------------------------------- */

static ssize_t
parser_trailing(struct xp_parser *p)
{
	p->unit_off = p->offset;
	memset(&p->rec, 0, sizeof p->rec);
	p->have_rhdr = 0;
	return parser_fail_msg(p, -XP_ETRAILING, p->index, "record %" PRIu64
	    " at offset %" PRIu64 ": data after END", p->index, p->offset);
}

ssize_t
parser_feed(struct xp_parser *p, const uint8_t *buf, size_t len)
{
	size_t		 used = 0, avail, take;
	const uint8_t	*u;
	int		 rv, from_acc;

	if (p->state == PS_FAILED)
		return -p->err.code;
	if (len == 0)
		return 0;
	if (buf == NULL)
		return -XP_EINVAL;
	if (p->state == PS_DONE)
		return parser_trailing(p);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;

	while (used < len) {
		avail = len - used;
		if (p->dphase != DP_OFF) {
			/* parser_direct_step counts p->offset itself. */
			rv = parser_direct_step(p, buf + used, avail, &take);
			used += take;
			if (rv < 0)
				return rv;
			if (rv == XP_PAUSE || p->state == PS_DONE)
				break;
			continue;
		}
		if (p->acc_len == 0 && avail >= p->unit) {
			/* The unit starts here: hand it on in place. */
			u = buf + used;
			from_acc = 0;
			if (p->state == PS_RECORD && !p->have_rhdr) {
				if ((rv = parser_rhdr(p, u)) != 0)
					return rv;
				if (p->dphase != DP_OFF)
					continue;	/* gathered from u */
				if (avail < p->unit) {
					if ((rv = parser_gather(p, u,
					    avail)) != 0)
						return rv;
					used += avail;
					p->offset += avail;
					break;
				}
			}
			used += p->unit;
			p->offset += p->unit;
		} else {
			take = p->unit - p->acc_len;
			if (take > avail)
				take = avail;
			if ((rv = parser_gather(p, buf + used, take)) != 0)
				return rv;
			used += take;
			p->offset += take;
			if (p->state == PS_IHDR && p->acc_len < p->unit &&
			    (rv = parser_ihdr_partial(p, p->acc, p->acc_len,
			    0)) != 0)
				return rv;
			if (p->acc_len < p->unit)
				break;
			if (p->state == PS_RECORD && !p->have_rhdr) {
				if ((rv = parser_rhdr(p, p->acc)) != 0)
					return rv;
				if (p->acc_len < p->unit)
					continue;
			}
			u = p->acc;
			from_acc = 1;
		}

		rv = parser_unit(p, u);
		parser_unit_done(p, from_acc);
		if (rv < 0)
			return rv;
		if (rv == XP_PAUSE || p->state == PS_DONE)
			break;
	}
	return (ssize_t)used;
}

/* ---- queries ------------------------------------------------------------- */

size_t
parser_want(const struct xp_parser *p)
{
	if (p->state == PS_DONE || p->state == PS_FAILED)
		return 0;
	return p->unit - p->acc_len - p->dpos;
}

int
parser_finish(struct xp_parser *p)
{
	int	rv;

	switch (p->state) {
	case PS_DONE:
		return 0;
	case PS_FAILED:
		return -p->err.code;
	case PS_IHDR:
		if (p->control && p->acc_len == 0)
			return 0;	/* the peer said nothing at all */
		if (p->control && (rv = parser_ihdr_partial(p, p->acc,
		    p->acc_len, 1)) != 0)
			return rv;
		return parser_fail_msg(p, -XP_ETRUNCATED, UINT64_MAX, "%s "
		    "header: stream ends after %zu of %u octets",
		    p->control == XP_CONTROL_BACK ? "back-channel image" :
		    p->control ? "control channel image" : "image", p->acc_len,
		    WIRE_IHDR_SIZE);
	case PS_DHDR:
		return parser_fail_msg(p, -XP_ETRUNCATED, UINT64_MAX, "domain "
		    "header: stream ends after %zu of %zu octets", p->acc_len,
		    p->unit);
	case PS_RECORD:
		break;
	}

	if (!p->have_rhdr && p->acc_len == 0 && p->control)
		return 0;	/* between records: a clean end */
	if (!p->have_rhdr && p->acc_len == 0) {
		memset(&p->rec, 0, sizeof p->rec);
		return parser_fail_msg(p, -XP_ETRUNCATED, p->index, "record %"
		    PRIu64 " at offset %" PRIu64 ": stream ends without an "
		    "END record", p->index, p->unit_off);
	}
	if (!p->have_rhdr) {
		memset(&p->rec, 0, sizeof p->rec);
		return parser_fail_msg(p, -XP_ETRUNCATED, p->index, "record %"
		    PRIu64 " at offset %" PRIu64 ": stream ends after %zu of "
		    "%zu octets of the record header", p->index, p->unit_off,
		    p->acc_len, p->unit);
	}
	return parser_fail_msg(p, -XP_ETRUNCATED, p->index, "record %" PRIu64
	    " (%s) at offset %" PRIu64 ": stream ends after %zu of %zu octets",
	    p->index, record_type_name(p->rec.type), p->unit_off,
	    p->acc_len + p->dpos, p->unit);
}

int
parser_done(const struct xp_parser *p)
{
	return p->state == PS_DONE;
}

const struct xp_stream *
parser_stream(const struct xp_parser *p)
{
	return p->have_st ? &p->st : NULL;
}

const struct xp_error *
parser_error(const struct xp_parser *p)
{
	return &p->err;
}

uint64_t
parser_offset(const struct xp_parser *p)
{
	return p->offset;
}

size_t
parser_buffered(const struct xp_parser *p)
{
	return p->acc_cap;
}
