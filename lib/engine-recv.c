/*
 * engine-recv.c -- the receiving side: bytes from a socket, a pipe or a
 * file go through the one incremental parser in proto/, and each validated
 * record is applied to a target backend.  The dialect comes from the image
 * header; nothing is trusted before the parser has checked it.
 *
 * On success a TCP connection is closed in order once the domain is
 * complete and running; on any failure the target is destroyed and the
 * connection reset, so the sender can tell the two apart (SPEC.md,
 * "Confirmation").
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "xmig.h"

#define RECV_READ_CHUNK		(1u << 20)
#define RECV_PROGRESS_MS	250

struct receiver {
	const struct recv_opts	*o;
	struct xmig_report	 r;
	struct xp_parser	*p;
	const struct backend_ops *ops;
	const char		*bspec;
	struct backend		*b;
	struct domain_info	 info;
	struct digest_state	*dstate;
	struct progress		*prog;
	int			 verify_mode;
	int			 done;
	uint64_t		 pages;
	uint64_t		 t_start;
	uint8_t			*tmp;		/* byte-order scratch */
	size_t			 tmp_len;

	struct event_base	*base;
	struct bufferevent	*bev;
	int			 fd;
	int			 is_socket;

	int			 rc;
	char			 err[512];
};

void
recv_opts_default(struct recv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->backend = "sim";
	o->progress = PROGRESS_AUTO;
	o->report_out = stdout;
}

static int
recv_fail(struct receiver *rv, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
recv_fail(struct receiver *rv, int rc, const char *fmt, ...)
{
	va_list ap;

	if (rv->rc == 0) {
		rv->rc = rc < 0 ? rc : -EIO;
		va_start(ap, fmt);
		vsnprintf(rv->err, sizeof(rv->err), fmt, ap);
		va_end(ap);
	}
	if (rv->base != NULL)
		event_base_loopbreak(rv->base);
	return -XP_ECALLBACK;
}

static void
recv_progress(struct receiver *rv, int force)
{
	struct progress_info pi;
	uint64_t el = now_ns() - rv->t_start;
	uint64_t off = rv->p ? parser_offset(rv->p) : 0;

	memset(&pi, 0, sizeof(pi));
	pi.role = "receive";
	pi.phase = rv->done ? "complete" : "receiving";
	pi.bytes = off;
	pi.pages = rv->pages;
	pi.throughput = el > 0 ? (double)off * 1e9 / (double)el : 0;
	progress_update(rv->prog, &pi, force);
}

/* ---- applying records ------------------------------------------------- */

static int
recv_header_cb(void *arg, const struct xp_stream *st)
{
	struct receiver *rv = arg;
	int rc;

	memset(&rv->info, 0, sizeof(rv->info));
	rv->info.arch = st->arch;
	rv->info.type = st->dom_type;
	rv->info.page_shift = st->page_shift;
	rc = rv->ops->open_target(rv->bspec, &rv->info, &rv->b);
	if (rc != 0)
		return recv_fail(rv, rc, "cannot host the domain: %s",
		    backend_errmsg(rv->b));
	rv->r.dialect = st->dialect == XP_XEN ? "xen" : "draftb";
	return 0;
}

static const char *
recv_where(const struct xp_record *rec, char *buf, size_t len)
{
	snprintf(buf, len, "record %llu (%s) at offset %llu",
	    (unsigned long long)rec->index, record_type_name(rec->type),
	    (unsigned long long)rec->offset);
	return buf;
}

static int
recv_page_data(struct receiver *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	uint64_t pop[WIRE_PAGE_DATA_MAX], data_pfn[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	const uint8_t *src;
	size_t ps = (size_t)1 << st->page_shift;
	uint32_t count = xp_get32(st->big_endian, rec->body), i, np = 0, nd = 0;
	char where[128];
	void *cookie = NULL;
	int rc;

	if (count > WIRE_PAGE_DATA_MAX)
		return recv_fail(rv, -E2BIG, "%s: %u pages in one record; "
		    "this receiver takes at most %u",
		    recv_where(rec, where, sizeof(where)), count,
		    WIRE_PAGE_DATA_MAX);
	for (i = 0; i < count; i++) {
		uint64_t e = xp_get64(st->big_endian, rec->body + 8 + 8 * i);
		unsigned type = (unsigned)(e >> WIRE_PFN_TYPE_SHIFT);
		uint64_t pfn = e & WIRE_PFN_MASK;

		if (type == PT_XTAB || type == PT_BROKEN)
			continue;
		pop[np++] = pfn;
		if (body_page_type_has_data(type))
			data_pfn[nd++] = pfn;
	}
	if (np > 0 && (rc = rv->b->ops->populate(rv->b, pop, np)) != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	if (nd == 0)
		return 0;
	rc = rv->b->ops->map(rv->b, data_pfn, nd, 1, pages, &cookie);
	if (rc != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	src = rec->body + 8 + 8 * (size_t)count;
	for (i = 0; i < nd; i++, src += ps) {
		if (!rv->verify_mode) {
			memcpy(pages[i], src, ps);
			continue;
		}
		if (memcmp(pages[i], src, ps) != 0) {
			rv->b->ops->unmap(rv->b, cookie, nd);
			return recv_fail(rv, -EILSEQ, "%s: verify mode: page "
			    "%llu differs from what was restored",
			    recv_where(rec, where, sizeof(where)),
			    (unsigned long long)data_pfn[i]);
		}
	}
	rv->b->ops->unmap(rv->b, cookie, nd);
	rv->pages += nd;
	return 0;
}

static int
recv_state(struct receiver *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	const uint8_t *body = rec->body;
	char where[128];
	int rc;

	if (st->big_endian && rec->length > 0) {
		if (rec->length > rv->tmp_len) {
			uint8_t *n = realloc(rv->tmp, rec->length);

			if (n == NULL)
				return recv_fail(rv, -ENOMEM, "out of memory");
			rv->tmp = n;
			rv->tmp_len = rec->length;
		}
		if (body_reorder(rec->type, rec->body, rec->length, 1, 0,
		    rv->tmp) != 0)
			return recv_fail(rv, -EINVAL, "%s: cannot convert "
			    "byte order", recv_where(rec, where,
			    sizeof(where)));
		body = rv->tmp;
	}
	rc = rv->b->ops->load_state(rv->b, rec->type, body, rec->length);
	if (rc != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	digest_state_add(rv->dstate, rec->type, body, rec->length);
	return 0;
}

static int
recv_record_cb(void *arg, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct receiver *rv = arg;
	char where[128];
	int rc;

	if (!rec->known)
		return 0;	/* unknown optional record: skipped */
	switch (rec->type) {
	case REC_PAGE_DATA:
		return recv_page_data(rv, st, rec);
	case REC_END:
		if ((rc = rv->b->ops->complete(rv->b)) != 0)
			return recv_fail(rv, rc, "completing the restore: %s",
			    backend_errmsg(rv->b));
		rv->done = 1;
		return 0;
	case REC_VERIFY:
		rv->verify_mode = 1;
		return 0;
	case REC_STATIC_DATA_END:
	case REC_TOOLSTACK:
		return 0;
	case REC_CHECKPOINT:
		return recv_fail(rv, -ENOTSUP, "%s: checkpointed (Remus) "
		    "streams are not supported by this receiver yet",
		    recv_where(rec, where, sizeof(where)));
	default:
		return recv_state(rv, st, rec);
	}
}

/* Feed n octets; on a parser error keep its message. */
static ssize_t
recv_feed(struct receiver *rv, const uint8_t *buf, size_t n)
{
	ssize_t used = parser_feed(rv->p, buf, n);

	if (used < 0 && rv->rc == 0) {
		const struct xp_error *e = parser_error(rv->p);

		rv->rc = -EPROTO;
		snprintf(rv->err, sizeof(rv->err), "invalid stream: %s",
		    e->msg[0] ? e->msg : xp_strerror((int)-used));
	}
	return used;
}

static void
recv_at_eof(struct receiver *rv)
{
	if (rv->rc != 0 || rv->done)
		return;
	if (parser_finish(rv->p) != 0) {
		const struct xp_error *e = parser_error(rv->p);

		rv->rc = -EPIPE;
		snprintf(rv->err, sizeof(rv->err), "the stream ended early: "
		    "%s", e->msg);
	}
}

/* ---- socket source (libevent) ------------------------------------------- */

static void
recv_read_cb(struct bufferevent *bev, void *arg)
{
	struct receiver *rv = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;

	while (rv->rc == 0 && !rv->done && (len = evbuffer_get_length(in))) {
		size_t want = parser_want(rv->p);
		ssize_t used;

		if (want <= len) {
			/* The whole unit is here: parse it in place. */
			uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)want);

			if (p == NULL) {
				recv_fail(rv, -ENOMEM, "out of memory");
				break;
			}
			used = recv_feed(rv, p, want);
		} else {
			struct evbuffer_iovec v;

			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			used = recv_feed(rv, v.iov_base, v.iov_len);
		}
		if (used < 0)
			break;
		evbuffer_drain(in, (size_t)used);
	}
	if (rv->rc == 0 && rv->done && evbuffer_get_length(in) > 0)
		recv_fail(rv, -EPROTO, "invalid stream: %zu octets of data "
		    "after END", evbuffer_get_length(in));
	if (rv->rc != 0 || rv->done)
		event_base_loopbreak(rv->base);
	else
		recv_progress(rv, 0);
}

static void
recv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct receiver *rv = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_EOF) {
		recv_read_cb(bev, rv);	/* whatever is still buffered */
		recv_at_eof(rv);
	} else if (rv->rc == 0)
		recv_fail(rv, -(err ? err : EIO), "connection: %s",
		    err ? strerror(err) : "error");
	event_base_loopbreak(rv->base);
}

static int
recv_run_socket(struct receiver *rv)
{
	if ((rv->base = event_base_new()) == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory"), rv->rc;
	rv->bev = xport_bev_new(rv->base, rv->fd, NULL, 1, NULL, rv->err,
	    sizeof(rv->err));
	if (rv->bev == NULL) {
		close(rv->fd);
		rv->fd = -1;
		return recv_fail(rv, -ENOMEM, "out of memory"), rv->rc;
	}
	bufferevent_set_max_single_read(rv->bev, RECV_READ_CHUNK);
	bufferevent_setcb(rv->bev, recv_read_cb, NULL, recv_event_cb, rv);
	bufferevent_enable(rv->bev, EV_READ);
	event_base_dispatch(rv->base);
	if (rv->rc == 0 && !rv->done)
		recv_fail(rv, -EIO, "event loop ended early");
	return rv->rc;
}

/* ---- file and pipe source ------------------------------------------------ */

static int
recv_run_fd(struct receiver *rv)
{
	uint8_t *buf = malloc(RECV_READ_CHUNK);
	ssize_t n, used, off;

	if (buf == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory"), rv->rc;
	while (rv->rc == 0 && !rv->done) {
		n = read(rv->fd, buf, RECV_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			recv_fail(rv, -errno, "read: %s", strerror(errno));
			break;
		}
		if (n == 0) {
			recv_at_eof(rv);
			break;
		}
		for (off = 0; off < n && rv->rc == 0 && !rv->done; off += used)
			if ((used = recv_feed(rv, buf + off, (size_t)(n - off)))
			    < 0)
				break;
		if (rv->rc == 0 && rv->done && off < n)
			recv_fail(rv, -EPROTO, "invalid stream: data after END");
		recv_progress(rv, 0);
	}
	/* Data after END in a file or pipe is an error too. */
	if (rv->rc == 0 && rv->done) {
		n = read(rv->fd, buf, 1);
		if (n > 0)
			recv_fail(rv, -EPROTO, "invalid stream: data after "
			    "END");
	}
	free(buf);
	return rv->rc;
}

/* ---- one migration ------------------------------------------------------ */

static int
recv_one(const struct recv_opts *o, int fd, int is_socket, FILE *report_out)
{
	struct receiver rv;
	struct xp_limits lim;
	uint64_t t_end;
	int rc;

	memset(&rv, 0, sizeof(rv));
	rv.o = o;
	rv.fd = fd;
	rv.is_socket = is_socket;
	rv.r.role = "receive";
	rv.r.status = "failed";
	rv.t_start = now_ns();
	rv.ops = backend_lookup(o->backend, &rv.bspec);
	if (rv.ops == NULL) {
		recv_fail(&rv, -EINVAL, "%s: unknown backend", o->backend);
		goto report;
	}
	memset(&lim, 0, sizeof(lim));
	if (o->max_memory > 0)
		lim.max_pfn = o->max_memory >> 12;
	rv.dstate = digest_state_new();
	rv.prog = progress_new(o->progress, stderr);
	rv.p = parser_new(&lim, recv_header_cb, recv_record_cb, &rv);
	if (rv.dstate == NULL || rv.p == NULL) {
		recv_fail(&rv, -ENOMEM, "out of memory");
		goto report;
	}
	if (is_socket)
		recv_run_socket(&rv);
	else
		recv_run_fd(&rv);

	if (rv.rc == 0 && rv.done) {
		/* Complete: start it, then confirm by closing in order. */
		if ((rc = rv.b->ops->resume(rv.b)) != 0)
			recv_fail(&rv, rc, "starting the restored domain: %s",
			    backend_errmsg(rv.b));
	}
	t_end = now_ns();
	if (rv.bev != NULL) {
		/* Closing the socket is the confirmation (SPEC.md 15.2). */
		if (rv.rc != 0)
			xport_abort(fd);
		bufferevent_free(rv.bev);
		rv.bev = NULL;
	}
	if (rv.base != NULL) {
		event_base_free(rv.base);
		rv.base = NULL;
	}
	if (rv.rc == 0) {
		rv.info.nr_pages = 0;
		rv.b->ops->describe(rv.b, &rv.info);
		rc = digest_memory(rv.b, rv.info.nr_pages,
		    1u << rv.info.page_shift, rv.r.memory_sha256);
		rv.r.have_memory = rc == 0;
		digest_state_final(rv.dstate, rv.r.vcpu_sha256);
		rv.r.have_vcpu = 1;
		rv.r.status = "completed";
		rv.r.nr_pages = rv.info.nr_pages;
	} else if (rv.b != NULL) {
		/* Nothing half-restored survives a failure. */
		rv.b->ops->destroy(rv.b);
	}
	progress_end(rv.prog);
	if (rv.rc == 0)
		recv_progress(&rv, 1), progress_end(rv.prog);
	rv.r.bytes = rv.p ? parser_offset(rv.p) : 0;
	rv.r.pages_sent = rv.pages;
	rv.r.duration_ms = (double)(t_end - rv.t_start) / 1e6;
	rv.r.throughput_mbps = rv.r.duration_ms > 0 ? (double)rv.r.bytes *
	    8.0 / 1e6 / (rv.r.duration_ms / 1000.0) : 0;
report:
	if (rv.rc != 0)
		snprintf(rv.r.error, sizeof(rv.r.error), "%s", rv.err);
	if (o->report_json)
		report_print_json(&rv.r, report_out);
	if (rv.rc != 0)
		fprintf(stderr, "migrate-receive: error: %s\n", rv.err);
	if (rv.b != NULL)
		rv.b->ops->close(rv.b);
	parser_free(rv.p);
	digest_state_free(rv.dstate);
	progress_free(rv.prog);
	free(rv.tmp);
	return rv.rc;
}

int
recv_serve(const char *source, const struct recv_opts *o)
{
	struct xport_uri u;
	char err[512];
	FILE *rout = o->report_out ? o->report_out : stdout;
	int fd, lfd, rc, failures = 0;

	if ((rc = xport_parse(source, &u, err, sizeof(err))) != 0) {
		fprintf(stderr, "migrate-receive: error: %s\n", err);
		return rc;
	}
	switch (u.kind) {
	case XPORT_STDIO:
		return recv_one(o, STDIN_FILENO, 0, stderr);
	case XPORT_FILE:
		if ((fd = open(u.path, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = -errno;
			fprintf(stderr, "migrate-receive: error: %s: %s\n",
			    u.path, strerror(errno));
			return rc;
		}
		rc = recv_one(o, fd, 0, rout);
		close(fd);
		return rc;
	case XPORT_TCP:
		break;
	case XPORT_TLS:
	case XPORT_EXEC:
		fprintf(stderr, "migrate-receive: error: %s: not a source "
		    "this receiver can serve yet\n", source);
		return -ENOTSUP;
	}
	if ((lfd = xport_listen(&u, o->insecure, err, sizeof(err))) < 0) {
		fprintf(stderr, "migrate-receive: error: %s\n", err);
		return lfd;
	}
	xport_announce(lfd, "migrate-receive");
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };

		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == ECONNABORTED)
				continue;
			rc = -errno;
			fprintf(stderr, "migrate-receive: error: accept: %s\n",
			    strerror(errno));
			break;
		}
		rc = recv_one(o, fd, 1, rout);
		if (rc != 0)
			failures++;
		if (o->once)
			break;
	}
	close(lfd);
	return o->once ? rc : (failures ? -EIO : rc);
}
