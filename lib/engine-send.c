/*
 * engine-send.c -- the sending side of a migration or save.
 *
 * A linear driver in the manner of libxenguest's save(): headers and static
 * records, live pre-copy passes over the dirty set, stop-and-copy, the vcpu
 * and platform records, END.  Records are produced into the output evbuffer
 * only while it holds less than SEND_HIGH_WATER octets; the write callback
 * (fired below SEND_LOW_WATER) produces more.  So the sender never holds
 * more than a few batches in flight, whatever the domain size.
 *
 * Sinks: a socket or pipe goes through a bufferevent; a regular file is
 * written synchronously (epoll cannot wait on one) to a temporary name and
 * renamed into place once complete.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <zlib.h>

#include "xmig.h"

#define SEND_HIGH_WATER		(16u << 20)
#define SEND_LOW_WATER		(4u << 20)
#define SEND_CONFIRM_TIMEOUT	120		/* seconds for the receiver's close */
#define SEND_PROGRESS_MS	250

enum send_phase {
	SP_HEADERS,	/* image/domain headers, static records */
	SP_LIVE,	/* pre-copy pass, domain running */
	SP_PREPAUSE,	/* last live pass queued: let it drain, then pause */
	SP_FINAL,	/* stop-and-copy pass, domain paused */
	SP_TAIL,	/* vcpu/platform records and END */
	SP_FLUSH,	/* everything queued; waiting for it to leave */
	SP_CONFIRM,	/* write side shut; waiting for the receiver's close */
	SP_DONE,
};

static const char *const send_phase_name[] = {
	"headers", "live", "draining", "stop-and-copy", "tail", "flush", "confirm", "done"
};

/* A mapping shared by the evbuffer references made from it. */
struct send_map {
	struct backend	*b;
	void		*cookie;
	unsigned	 n;
	unsigned	 refs;
};

struct sender {
	struct backend		*b;
	const struct send_opts	*o;
	struct xmig_report	*r;
	struct domain_info	 info;
	struct xp_stream	 st;
	uint16_t		 recopt;
	unsigned		 page_size;
	size_t			 nr_words;
	uint64_t		*pass_set;	/* pages still to send this pass */
	uint64_t		*dirty;		/* gathered by read_dirty */
	uint64_t		 cursor;
	uint64_t		 pass_left;	/* pages left in this pass */
	unsigned		 iteration;
	enum send_phase		 phase;
	int			 paused;
	int			 tracking;

	struct event_base	*base;
	struct bufferevent	*bev;
	struct evbuffer		*out;
	struct event		*timer;
	struct event		*confirm_timer;
	int			 fd;
	int			 sync_file;
	int			 is_socket;
	char			 path[PATH_MAX];
	char			 tmppath[PATH_MAX];

	uint64_t		 queued;	/* octets produced */
	uint64_t		 drained;	/* octets that left the buffer */
	uint64_t		 t_start, t_pause, t_end;
	uint64_t		 pass_t0, pass_drained0;
	double			 bw;		/* octets/s measured */
	double			 dirty_rate;	/* octets/s found dirty */
	uint64_t		 pages_sent;
	uint64_t		 remaining;	/* dirty octets at the last check */
	uint64_t		 prev_remaining;	/* ... at the one before */

	struct digest_state	*dstate;
	struct progress		*prog;
	pthread_t		 digest_thr;
	int			 digest_started;
	int			 digest_rc;

	int			 rc;
	char			 err[512];
};

void
send_opts_default(struct send_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->dialect = XP_DRAFTB;
	o->checksum = 1;
	o->live = 1;
	o->downtime_limit_ms = 300;
	o->max_iterations = 30;
	o->progress = PROGRESS_AUTO;
}

static void
send_fail(struct sender *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
send_fail(struct sender *s, int rc, const char *fmt, ...)
{
	va_list ap;

	if (s->rc != 0)
		return;		/* the first reason is the one that counts */
	s->rc = rc < 0 ? rc : -EIO;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (s->base != NULL)
		event_base_loopbreak(s->base);
}

static void
send_progress(struct sender *s, int force)
{
	struct progress_info pi;
	uint64_t el = now_ns() - s->t_start;

	memset(&pi, 0, sizeof(pi));
	pi.role = "send";
	pi.phase = send_phase_name[s->phase];
	pi.pass = s->iteration;
	pi.bytes = s->drained;
	pi.pages = s->pages_sent;
	pi.remaining = s->pass_left * s->page_size;
	pi.dirty_rate = s->dirty_rate;
	pi.throughput = s->bw > 0 ? s->bw :
	    (el > 0 ? (double)s->drained * 1e9 / (double)el : 0);
	pi.expected_downtime_ms = pi.throughput > 0 ?
	    (double)(pi.remaining + (s->queued - s->drained)) * 1000.0 /
	    pi.throughput : 0;
	progress_update(s->prog, &pi, force);
}

/* ---- producing records ------------------------------------------------ */

static int
send_record(struct sender *s, uint32_t type, const uint8_t *body_le,
    uint32_t len)
{
	struct xp_buf buf = { 0 };
	uint8_t *tmp = NULL;
	const uint8_t *body = body_le;
	int rc;

	if (s->st.big_endian && len > 0) {
		if ((tmp = malloc(len)) == NULL)
			return -ENOMEM;
		if (body_reorder(type, body_le, len, 0, 1, tmp) != 0) {
			free(tmp);
			return -EINVAL;
		}
		body = tmp;
	}
	rc = record_encode(&s->st, &buf, type, body, len, s->recopt);
	free(tmp);
	if (rc < 0) {
		buf_free(&buf);
		return -ENOMEM;
	}
	rc = evbuffer_add(s->out, buf.data, buf.len);
	s->queued += buf.len;
	buf_free(&buf);
	return rc == 0 ? 0 : -ENOMEM;
}

static void
send_map_release(const void *data, size_t len, void *arg)
{
	struct send_map *m = arg;

	(void)data;
	(void)len;
	if (--m->refs == 0) {
		m->b->ops->unmap(m->b, m->cookie, m->n);
		free(m);
	}
}

/*
 * One PAGE_DATA record for n pages.  While the domain runs and checksums
 * are on, the pages are copied first (the checksum must match what is
 * sent); otherwise they are queued by reference, which is safe: a page
 * written after read_dirty() is sent again in a later pass, and in the
 * final pass the domain is paused.
 */
static int
send_pages(struct sender *s, const uint64_t *pfns, unsigned n)
{
	uint8_t pre[WIRE_RHDR_SIZE_DRAFTB + 8 + 8 * WIRE_PAGE_DATA_MAX];
	uint64_t entries[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	uint8_t foot[WIRE_FOOTER_SIZE + WIRE_REC_ALIGN];
	struct send_map *m;
	size_t hs = record_hdr_size(&s->st), prelen, ps = s->page_size;
	uint32_t body_len = 8 + 8 * n + (uint32_t)(n * ps);
	int checksum = (s->recopt & WIRE_REC_OPT_CHECKSUM) != 0;
	uLong crc = 0;
	unsigned i, j;
	void *cookie = NULL;
	int rc;

	rc = s->b->ops->map(s->b, pfns, n, 0, pages, &cookie);
	if (rc != 0)
		return rc;
	for (i = 0; i < n; i++)
		entries[i] = body_pfn_entry(pfns[i], PT_NOTAB);
	record_hdr_put(&s->st, pre, REC_PAGE_DATA, body_len, s->recopt);
	body_page_data_prefix_put(s->st.big_endian, pre + hs, n, entries);
	prelen = hs + 8 + 8 * (size_t)n;
	if (checksum)
		crc = crc32(0, pre, (uInt)prelen);
	if (evbuffer_add(s->out, pre, prelen) != 0)
		goto nomem;

	if (checksum && !s->paused) {
		struct evbuffer_iovec v;

		if (evbuffer_reserve_space(s->out, n * ps, &v, 1) != 1 ||
		    v.iov_len < n * ps)
			goto nomem;
		for (i = 0; i < n; i++)
			memcpy((uint8_t *)v.iov_base + i * ps, pages[i], ps);
		crc = crc32(crc, v.iov_base, (uInt)(n * ps));
		v.iov_len = n * ps;
		if (evbuffer_commit_space(s->out, &v, 1) != 0)
			goto nomem;
		s->b->ops->unmap(s->b, cookie, n);
	} else {
		if ((m = calloc(1, sizeof(*m))) == NULL)
			goto nomem;
		m->b = s->b;
		m->cookie = cookie;
		m->n = n;
		m->refs = 1;	/* held until the loop below is done */
		for (i = 0; i < n; i = j) {
			/* Coalesce pages that are adjacent in memory. */
			for (j = i + 1; j < n && (uint8_t *)pages[j] ==
			    (uint8_t *)pages[j - 1] + ps; j++)
				;
			if (checksum)
				crc = crc32(crc, pages[i], (uInt)((j - i) * ps));
			m->refs++;
			if (evbuffer_add_reference(s->out, pages[i],
			    (j - i) * ps, send_map_release, m) != 0) {
				m->refs--;
				send_map_release(NULL, 0, m);
				return -ENOMEM;
			}
		}
		send_map_release(NULL, 0, m);
	}
	record_trailer_put(&s->st, foot, body_len, s->recopt, (uint32_t)crc);
	if (evbuffer_add(s->out, foot, record_trailer_size(&s->st, body_len)))
		return -ENOMEM;
	s->queued += record_wire_size(&s->st, body_len);
	s->pages_sent += n;
	return 0;
nomem:
	s->b->ops->unmap(s->b, cookie, n);
	return -ENOMEM;
}

static int
send_state_list(struct sender *s, struct state_list *l)
{
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++) {
		rc = send_record(s, l->recs[i].type, l->recs[i].body,
		    l->recs[i].len);
		if (rc != 0)
			return rc;
		digest_state_add(s->dstate, l->recs[i].type, l->recs[i].body,
		    l->recs[i].len);
	}
	return 0;
}

static int
send_headers(struct sender *s)
{
	uint8_t hdr[WIRE_IHDR_SIZE + WIRE_DHDR_SIZE_XEN];
	struct state_list sl = { 0 };
	size_t n;
	int rc;

	header_image_put(&s->st, hdr);
	n = header_domain_put(&s->st, hdr + WIRE_IHDR_SIZE);
	if (evbuffer_add(s->out, hdr, WIRE_IHDR_SIZE + n) != 0)
		return -ENOMEM;
	s->queued += WIRE_IHDR_SIZE + n;
	if ((rc = s->b->ops->static_state(s->b, &sl)) != 0) {
		send_fail(s, rc, "reading static state: %s",
		    backend_errmsg(s->b));
		state_list_free(&sl);
		return rc;
	}
	rc = send_state_list(s, &sl);
	state_list_free(&sl);
	if (rc != 0)
		return rc;
	return send_record(s, REC_STATIC_DATA_END, NULL, 0);
}

static void
bitmap_fill(uint64_t *bm, uint64_t nbits)
{
	size_t words = (size_t)((nbits + 63) / 64);

	memset(bm, 0xff, words * 8);
	if (nbits % 64)
		bm[words - 1] = (1ULL << (nbits % 64)) - 1;
}

static uint64_t
bitmap_count(const uint64_t *bm, size_t words)
{
	uint64_t c = 0;
	size_t i;

	for (i = 0; i < words; i++)
		c += (uint64_t)__builtin_popcountll(bm[i]);
	return c;
}

static int
send_pause(struct sender *s)
{
	int rc;

	if ((rc = s->b->ops->pause(s->b)) != 0) {
		send_fail(s, rc, "pausing the domain: %s",
		    backend_errmsg(s->b));
		return rc;
	}
	s->paused = 1;
	s->t_pause = now_ns();
	return 0;
}

/* Make s->dirty the set the next pass sends. */
static void
send_next_pass(struct sender *s)
{
	uint64_t *tmp = s->pass_set;

	s->pass_set = s->dirty;
	s->dirty = tmp;
	memset(s->dirty, 0, s->nr_words * 8);
	s->pass_left = bitmap_count(s->pass_set, s->nr_words);
	s->cursor = 0;
	s->iteration++;
	s->pass_t0 = now_ns();
	s->pass_drained0 = s->drained;
}

/* Pause the domain, collect the last dirty pages, start the final pass. */
static int
send_stop_and_copy(struct sender *s)
{
	int64_t nd;
	int rc;

	if ((rc = send_pause(s)) != 0)
		return rc;
	nd = s->b->ops->read_dirty(s->b, s->dirty);
	if (nd < 0) {
		send_fail(s, (int)nd, "reading dirty pages: %s",
		    backend_errmsg(s->b));
		return (int)nd;
	}
	s->phase = SP_FINAL;
	send_next_pass(s);
	return 0;
}

/*
 * A live pass is queued: gather what was dirtied meanwhile and either go
 * round again or stop and copy.  Before pausing, let what is queued drain
 * (SP_PREPAUSE): those octets would otherwise count as downtime.
 */
static int
send_end_of_pass(struct sender *s)
{
	uint64_t t = now_ns();
	double el = (double)(t - s->pass_t0) / 1e9;
	double expected_ms;
	int64_t nd;
	int converged;

	if (el > 0 && s->drained > s->pass_drained0)
		s->bw = (double)(s->drained - s->pass_drained0) / el;
	nd = s->b->ops->read_dirty(s->b, s->dirty);
	if (nd < 0) {
		send_fail(s, (int)nd, "reading dirty pages: %s",
		    backend_errmsg(s->b));
		return (int)nd;
	}
	nd = (int64_t)bitmap_count(s->dirty, s->nr_words);
	s->remaining = (uint64_t)nd * s->page_size;
	s->dirty_rate = el > 0 ? (double)s->remaining / el : 0;
	expected_ms = s->bw > 0 ? (double)s->remaining * 1000.0 / s->bw : 1e9;

	/*
	 * Go round again while the expected downtime is above the limit, or
	 * while passes still halve what is left: a short pass now is cheaper
	 * than the same octets sent with the domain paused.
	 */
	converged = s->remaining == 0 || s->remaining * 2 > s->prev_remaining;
	s->prev_remaining = s->remaining;
	if ((expected_ms > s->o->downtime_limit_ms || !converged) &&
	    s->iteration < s->o->max_iterations) {
		send_next_pass(s);
		return 0;
	}
	if (s->bev != NULL && evbuffer_get_length(s->out) > 0) {
		s->phase = SP_PREPAUSE;
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		return 0;
	}
	return send_stop_and_copy(s);
}

static void *
send_digest_main(void *arg)
{
	struct sender *s = arg;

	s->digest_rc = digest_memory(s->b, s->info.nr_pages, s->page_size,
	    s->r->memory_sha256);
	return NULL;
}

static int
send_tail(struct sender *s)
{
	struct state_list sl = { 0 };
	int rc;

	if ((rc = s->b->ops->save_state(s->b, &sl)) != 0) {
		send_fail(s, rc, "reading vcpu state: %s",
		    backend_errmsg(s->b));
		state_list_free(&sl);
		return rc;
	}
	rc = send_state_list(s, &sl);
	state_list_free(&sl);
	if (rc == 0)
		rc = send_record(s, REC_END, NULL, 0);
	if (rc != 0)
		return rc;
	if (s->tracking) {
		s->b->ops->disable_dirty(s->b);
		s->tracking = 0;
	}
	/* Memory is stable from here on: digest it beside the flush. */
	if (pthread_create(&s->digest_thr, NULL, send_digest_main, s) == 0)
		s->digest_started = 1;
	else
		send_digest_main(s);
	s->phase = SP_FLUSH;
	return 0;
}

/*
 * Produce records until the output holds SEND_HIGH_WATER octets or the
 * stream is fully queued.
 */
static int
send_produce(struct sender *s)
{
	uint64_t pfns[WIRE_PAGE_DATA_MAX];
	unsigned n;
	int rc;

	while (s->rc == 0 && evbuffer_get_length(s->out) < SEND_HIGH_WATER) {
		switch (s->phase) {
		case SP_HEADERS:
			if ((rc = send_headers(s)) != 0)
				return rc;
			if (s->o->live) {
				if ((rc = s->b->ops->enable_dirty(s->b)) != 0) {
					send_fail(s, rc, "enabling dirty "
					    "tracking: %s",
					    backend_errmsg(s->b));
					return rc;
				}
				s->tracking = 1;
				s->phase = SP_LIVE;
			} else {
				if ((rc = send_pause(s)) != 0)
					return rc;
				s->phase = SP_FINAL;
			}
			bitmap_fill(s->pass_set, s->info.nr_pages);
			s->pass_left = s->info.nr_pages;
			s->iteration = 1;
			s->pass_t0 = now_ns();
			s->pass_drained0 = s->drained;
			break;
		case SP_LIVE:
		case SP_FINAL:
			n = 0;
			while (n < WIRE_PAGE_DATA_MAX && s->cursor <
			    s->info.nr_pages) {
				size_t w = (size_t)(s->cursor / 64);
				uint64_t bits = s->pass_set[w] &
				    (~0ULL << (s->cursor % 64));

				if (bits == 0) {
					s->cursor = (uint64_t)(w + 1) * 64;
					continue;
				}
				s->cursor = (uint64_t)w * 64 +
				    (uint64_t)__builtin_ctzll(bits);
				s->pass_set[w] &= ~(1ULL << (s->cursor % 64));
				pfns[n++] = s->cursor++;
			}
			if (n > 0) {
				if ((rc = send_pages(s, pfns, n)) != 0) {
					send_fail(s, rc, "sending pages: %s",
					    rc == -ENOMEM ? strerror(ENOMEM) :
					    backend_errmsg(s->b));
					return rc;
				}
				s->pass_left -= n < s->pass_left ? n :
				    s->pass_left;
				break;
			}
			if (s->phase == SP_LIVE) {
				if ((rc = send_end_of_pass(s)) != 0)
					return rc;
			} else
				s->phase = SP_TAIL;
			break;
		case SP_PREPAUSE:
			return 0;
		case SP_TAIL:
			if ((rc = send_tail(s)) != 0) {
				send_fail(s, rc, "queueing the tail: %s",
				    strerror(-rc));
				return rc;
			}
			return 0;
		default:
			return 0;
		}
		send_progress(s, 0);
	}
	return 0;
}

/* ---- the event-driven sink -------------------------------------------- */

static void
send_drain_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct sender *s = arg;

	(void)buf;
	s->drained += info->n_deleted;
}

static void
send_confirm_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct sender *s = arg;

	send_fail(s, -ETIMEDOUT, "the receiver did not confirm within %d s",
	    SEND_CONFIRM_TIMEOUT);
}

static void
send_flushed(struct sender *s)
{
	struct timeval tv = { SEND_CONFIRM_TIMEOUT, 0 };

	if (!s->is_socket) {
		s->t_end = now_ns();
		s->phase = SP_DONE;
		event_base_loopexit(s->base, NULL);
		return;
	}
	/*
	 * One-way stream over TCP: half-close and wait.  The receiver
	 * closes in order once it has restored the domain, and resets the
	 * connection if it rejected the stream (SPEC.md, "Confirmation").
	 */
	if (shutdown(s->fd, SHUT_WR) != 0) {
		send_fail(s, -errno, "shutdown: %s", strerror(errno));
		return;
	}
	s->phase = SP_CONFIRM;
	bufferevent_enable(s->bev, EV_READ);
	s->confirm_timer = evtimer_new(s->base, send_confirm_timeout, s);
	if (s->confirm_timer != NULL)
		evtimer_add(s->confirm_timer, &tv);
}

static void
send_write_cb(struct bufferevent *bev, void *arg)
{
	struct sender *s = arg;

	if (s->phase == SP_PREPAUSE && evbuffer_get_length(s->out) == 0) {
		bufferevent_setwatermark(bev, EV_WRITE, SEND_LOW_WATER, 0);
		if (send_stop_and_copy(s) != 0)
			return;
	}
	if (s->phase < SP_FLUSH && s->phase != SP_PREPAUSE)
		send_produce(s);
	if (s->rc != 0)
		return;
	if (s->phase == SP_FLUSH) {
		if (evbuffer_get_length(s->out) == 0)
			send_flushed(s);
		else
			bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	}
}

static void
send_read_cb(struct bufferevent *bev, void *arg)
{
	/* Nothing is expected from a one-way receiver: discard it. */
	evbuffer_drain(bufferevent_get_input(bev),
	    evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
send_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sender *s = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (s->phase == SP_CONFIRM && (what & BEV_EVENT_EOF)) {
		s->t_end = now_ns();
		s->phase = SP_DONE;
		event_base_loopexit(s->base, NULL);
		return;
	}
	if (what & BEV_EVENT_EOF)
		send_fail(s, -EPIPE, "the receiver closed the connection "
		    "before the stream was complete");
	else if (err == ECONNRESET || err == EPIPE)
		send_fail(s, -ECONNRESET, "the receiver %s the connection "
		    "(it rejected the stream or failed: see its log)",
		    s->phase == SP_CONFIRM ? "reset" : "dropped");
	else
		send_fail(s, -(err ? err : EIO), "connection: %s",
		    err ? strerror(err) : "error");
}

static void
send_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	send_progress(arg, 0);
}

static int
send_run_events(struct sender *s)
{
	struct timeval tv = { 0, SEND_PROGRESS_MS * 1000 };
	struct ev_token_bucket_cfg *rl = NULL;

	if ((s->base = event_base_new()) == NULL)
		return -ENOMEM;
	s->bev = xport_bev_new(s->base, s->fd, NULL, 0, NULL, s->err,
	    sizeof(s->err));
	if (s->bev == NULL)
		return s->rc = -ENOMEM;
	s->out = bufferevent_get_output(s->bev);
	evbuffer_add_cb(s->out, send_drain_cb, s);
	bufferevent_setcb(s->bev, send_read_cb, send_write_cb, send_event_cb,
	    s);
	bufferevent_setwatermark(s->bev, EV_WRITE, SEND_LOW_WATER, 0);
	if (s->o->bandwidth > 0) {
		size_t per_tick = (size_t)(s->o->bandwidth / 100);
		struct timeval tick = { 0, 10000 };

		if (per_tick < 4096)
			per_tick = 4096;
		rl = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX,
		    EV_RATE_LIMIT_MAX, per_tick, per_tick, &tick);
		if (rl == NULL || bufferevent_set_rate_limit(s->bev, rl) != 0)
			return -ENOMEM;
	}
	bufferevent_enable(s->bev, EV_WRITE);
	if (s->is_socket)
		bufferevent_enable(s->bev, EV_READ);
	s->timer = event_new(s->base, -1, EV_PERSIST, send_timer_cb, s);
	if (s->timer != NULL)
		evtimer_add(s->timer, &tv);

	send_produce(s);
	if (s->rc == 0)
		event_base_dispatch(s->base);
	if (s->rc == 0 && s->phase != SP_DONE)
		send_fail(s, -EIO, "event loop ended early");

	if (s->timer != NULL)
		event_free(s->timer);
	if (s->confirm_timer != NULL)
		event_free(s->confirm_timer);
	if (s->rc != 0 && s->is_socket)
		xport_abort(s->fd);
	bufferevent_free(s->bev);	/* drops queued page references */
	s->bev = NULL;
	s->fd = -1;			/* closed with the bufferevent */
	s->out = NULL;
	if (rl != NULL)
		ev_token_bucket_cfg_free(rl);
	event_base_free(s->base);
	s->base = NULL;
	return s->rc;
}

/* ---- the synchronous file sink ------------------------------------------ */

static int
send_run_file(struct sender *s)
{
	if ((s->out = evbuffer_new()) == NULL)
		return -ENOMEM;
	evbuffer_add_cb(s->out, send_drain_cb, s);
	while (s->rc == 0 && s->phase != SP_DONE) {
		send_produce(s);
		while (s->rc == 0 && evbuffer_get_length(s->out) > 0) {
			int n = evbuffer_write(s->out, s->fd);

			if (n < 0 && errno != EINTR && errno != EAGAIN)
				send_fail(s, -errno, "write: %s",
				    strerror(errno));
		}
		if (s->phase == SP_FLUSH) {
			if (fsync(s->fd) != 0 && errno != EINVAL)
				send_fail(s, -errno, "fsync: %s",
				    strerror(errno));
			s->t_end = now_ns();
			s->phase = SP_DONE;
		}
		send_progress(s, 0);
	}
	evbuffer_free(s->out);
	s->out = NULL;
	return s->rc;
}

/* ---- the driver ------------------------------------------------------- */

static int
send_open_dest(struct sender *s, const char *dest)
{
	struct xport_uri u;
	struct stat sb;
	int rc, fd;

	if ((rc = xport_parse(dest, &u, s->err, sizeof(s->err))) != 0)
		return s->rc = rc;
	switch (u.kind) {
	case XPORT_TCP:
		if ((fd = xport_connect(&u, s->err, sizeof(s->err))) < 0)
			return s->rc = fd;
		s->fd = fd;
		s->is_socket = 1;
		return 0;
	case XPORT_FILE:
		if (stat(u.path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
			/*
			 * A device or a fifo: write to it as it is.  Only a
			 * regular file gets a temporary name and a rename.
			 */
			if ((fd = open(u.path, O_WRONLY | O_CLOEXEC)) < 0) {
				snprintf(s->err, sizeof(s->err), "%.400s: %s",
				    u.path, strerror(errno));
				return s->rc = -errno;
			}
			s->fd = fd;
			s->sync_file = xport_is_regular(fd) ||
			    !S_ISFIFO(sb.st_mode);
			return 0;
		}
		if (snprintf(s->tmppath, sizeof(s->tmppath), "%s.xmig-XXXXXX",
		    u.path) >= (int)sizeof(s->tmppath)) {
			snprintf(s->err, sizeof(s->err), "%.400s: path too long",
			    u.path);
			return s->rc = -ENAMETOOLONG;
		}
		if ((fd = mkstemp(s->tmppath)) < 0) {
			snprintf(s->err, sizeof(s->err), "%.400s: %s", s->tmppath,
			    strerror(errno));
			s->tmppath[0] = '\0';
			return s->rc = -errno;
		}
		fchmod(fd, 0600);
		strcpy(s->path, u.path);
		s->fd = fd;
		s->sync_file = 1;
		return 0;
	case XPORT_STDIO:
		s->fd = STDOUT_FILENO;
		if (isatty(s->fd)) {
			snprintf(s->err, sizeof(s->err), "refusing to write "
			    "a binary stream to a terminal");
			return s->rc = -EINVAL;
		}
		s->sync_file = xport_is_regular(s->fd);
		if (!s->sync_file)
			fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) |
			    O_NONBLOCK);
		return 0;
	case XPORT_TLS:
	case XPORT_EXEC:
		snprintf(s->err, sizeof(s->err), "%s: this transport is not "
		    "implemented yet", dest);
		return s->rc = -ENOTSUP;
	}
	return s->rc = -EINVAL;
}

static void
send_close_dest(struct sender *s)
{
	if (s->fd > STDERR_FILENO)
		close(s->fd);
	s->fd = -1;
	if (s->tmppath[0] == '\0')
		return;
	if (s->rc == 0 && rename(s->tmppath, s->path) != 0) {
		s->rc = -errno;
		snprintf(s->err, sizeof(s->err), "rename %.200s to %.200s: %s",
		    s->tmppath, s->path, strerror(errno));
	}
	if (s->rc != 0)
		unlink(s->tmppath);
}

int
send_domain(struct backend *b, const char *dest, const struct send_opts *o,
    struct xmig_report *r)
{
	struct sender s;
	uint8_t dummy[32];
	int rc;

	memset(&s, 0, sizeof(s));
	memset(r, 0, sizeof(*r));
	r->role = "send";
	r->status = "failed";
	s.b = b;
	s.o = o;
	s.r = r;
	s.fd = -1;
	s.t_start = now_ns();
	s.prev_remaining = UINT64_MAX;

	if ((rc = b->ops->describe(b, &s.info)) != 0) {
		snprintf(r->error, sizeof(r->error), "describing the domain: "
		    "%s", backend_errmsg(b));
		return rc;
	}
	s.page_size = 1u << s.info.page_shift;
	r->nr_pages = s.info.nr_pages;
	r->dialect = o->dialect == XP_XEN ? "xen" : "draftb";
	stream_init(&s.st, o->dialect, o->dialect == XP_DRAFTB &&
	    o->big_endian, s.info.arch, s.info.type, s.info.page_shift);
	if (o->dialect == XP_XEN) {
		/* The sim presents itself as saved by Xen 4.17. */
		s.st.xen_major = 4;
		s.st.xen_minor = 17;
	}
	s.recopt = o->dialect == XP_DRAFTB && o->checksum ?
	    WIRE_REC_OPT_CHECKSUM : 0;
	s.nr_words = (size_t)((s.info.nr_pages + 63) / 64);
	s.pass_set = calloc(s.nr_words ? s.nr_words : 1, 8);
	s.dirty = calloc(s.nr_words ? s.nr_words : 1, 8);
	s.dstate = digest_state_new();
	s.prog = progress_new(o->progress, stderr);
	if (s.pass_set == NULL || s.dirty == NULL || s.dstate == NULL) {
		s.rc = -ENOMEM;
		snprintf(s.err, sizeof(s.err), "out of memory");
		goto out;
	}

	if (send_open_dest(&s, dest) != 0)
		goto out;
	/* A regular file is written as fast as it goes: --bandwidth paces
	 * sockets and pipes only (migrate-send --help says so). */
	if (s.sync_file)
		send_run_file(&s);
	else
		send_run_events(&s);
	send_close_dest(&s);

out:
	if (s.digest_started) {
		pthread_join(s.digest_thr, NULL);
		if (s.digest_rc == 0)
			r->have_memory = 1;
	}
	if (s.tracking)
		b->ops->disable_dirty(b);
	if (s.rc != 0 && s.paused) {
		/* Never leave a failed source paused. */
		if (b->ops->resume(b) == 0)
			s.paused = 0;
	}
	progress_end(s.prog);
	if (s.rc == 0)
		send_progress(&s, 1), progress_end(s.prog);
	if (s.t_end == 0)
		s.t_end = now_ns();
	r->bytes = s.drained;
	r->pages_sent = s.pages_sent;
	r->iterations = s.iteration;
	r->duration_ms = (double)(s.t_end - s.t_start) / 1e6;
	if (s.t_pause != 0 && s.rc == 0) {
		r->have_downtime = 1;
		r->downtime_ms = (double)(s.t_end - s.t_pause) / 1e6;
	}
	r->throughput_mbps = r->duration_ms > 0 ?
	    (double)s.drained * 8.0 / 1e6 / (r->duration_ms / 1000.0) : 0;
	if (s.dstate != NULL) {
		digest_state_final(s.dstate, s.rc == 0 ? r->vcpu_sha256 : dummy);
		r->have_vcpu = s.rc == 0;
	}
	if (s.rc == 0)
		r->status = s.is_socket || s.tmppath[0] ? "completed" : "sent";
	else
		snprintf(r->error, sizeof(r->error), "%s", s.err);
	digest_state_free(s.dstate);
	progress_free(s.prog);
	free(s.pass_set);
	free(s.dirty);
	return s.rc;
}

void
report_print_json(const struct xmig_report *r, FILE *out)
{
	char mem[65], vcpu[65], err[1100];

	hex_encode(r->memory_sha256, 32, mem);
	hex_encode(r->vcpu_sha256, 32, vcpu);
	json_escape(r->error, err, sizeof(err));
	fprintf(out, "{\"role\":\"%s\",\"status\":\"%s\"", r->role, r->status);
	if (r->error[0])
		fprintf(out, ",\"error\":\"%s\"", err);
	if (r->dialect)
		fprintf(out, ",\"dialect\":\"%s\"", r->dialect);
	if (r->have_memory)
		fprintf(out, ",\"memory_sha256\":\"%s\"", mem);
	else
		fprintf(out, ",\"memory_sha256\":null");
	if (r->have_vcpu)
		fprintf(out, ",\"vcpu_sha256\":\"%s\"", vcpu);
	else
		fprintf(out, ",\"vcpu_sha256\":null");
	fprintf(out, ",\"nr_pages\":%llu,\"bytes\":%llu,\"pages_sent\":%llu",
	    (unsigned long long)r->nr_pages, (unsigned long long)r->bytes,
	    (unsigned long long)r->pages_sent);
	if (r->iterations)
		fprintf(out, ",\"iterations\":%u", r->iterations);
	else
		fprintf(out, ",\"iterations\":null");
	if (r->have_downtime)
		fprintf(out, ",\"downtime_ms\":%.3f", r->downtime_ms);
	else
		fprintf(out, ",\"downtime_ms\":null");
	fprintf(out, ",\"duration_ms\":%.3f,\"throughput_mbps\":%.1f}\n",
	    r->duration_ms, r->throughput_mbps);
	fflush(out);
}
