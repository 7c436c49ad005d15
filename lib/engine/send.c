/*
 * engine/send.c -- the sending side of a migration or save.
 *
 * A linear driver in the manner of libxenguest's save(): headers and static
 * records, live pre-copy passes over the dirty set, stop-and-copy, the vcpu
 * and platform records, END.  Records are produced into the output evbuffer
 * only while it holds less than SEND_HIGH_WATER octets; the write callback
 * (fired below SEND_LOW_WATER) produces more.  So the sender never holds
 * more than a few batches in flight, whatever the domain size.
 *
 * A session (struct xmig_send) runs on the caller's event_base and ends
 * with one result callback, from the loop (send_finish_soon: never from
 * deep inside a callback of its own).  Sinks: a socket or pipe goes
 * through a bufferevent; a regular file is written synchronously (epoll
 * cannot wait on one), a batch per loop turn, to a temporary name and
 * renamed into place once complete.  tcp: and tls: connect on the loop.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "xmig.h"
#include "delta.h"
#include "streams.h"

#define SEND_HIGH_WATER		(16u << 20)
#define SEND_LOW_WATER		(4u << 20)
/* While a threaded pause runs and nothing is queued: look this often. */
#define SEND_PAUSE_POLL_MS	10
/* Waits for the receiver, in seconds: --timeout, default 60. */
#define SEND_TIMEOUT(s)		((s)->o->timeout_s > 0 ? (s)->o->timeout_s : 60.0)
#define SEND_PROGRESS_MS	250
/* A session's debug line, with the function it comes from. */
#define send_debug(s, ...)	xmig_cbs_debug((s)->cbs, __VA_ARGS__)

enum send_handover {
	HO_NONE,		/* one-way, or not there yet */
	HO_WAIT_RESTORED,	/* END queued, waiting for STATUS RESTORED */
	HO_WAIT_RUNNING,	/* GO written: the narrow window */
	HO_WAIT_DIGESTS,	/* RUNNING received */
	HO_DONE,
};

/* A sender that gave up waiting for XMIG_REPLY (SPEC 13.4). */
enum send_late {
	LATE_NO = 0,		/* answered in time, or never offered */
	LATE_WAITING,		/* one-way, but a late REPLY is still welcome */
	LATE_GRACE,		/* END is out: one last wait for it */
};

enum send_phase {
	SP_HEADERS,	/* image and domain headers (and XMIG_NEGOTIATE) */
	SP_NEGOTIATE,	/* waiting for the receiver's XMIG_REPLY */
	SP_STATIC,	/* static records, STATIC_DATA_END */
	SP_LIVE,	/* pre-copy pass, domain running */
	SP_PREPAUSE,	/* last live pass queued: let it drain, then pause */
	SP_FINAL,	/* stop-and-copy pass, domain paused */
	SP_EPOCH,	/* replication: a staged epoch being queued */
	SP_PROTECT,	/* replication: waiting for the next interval */
	SP_TAIL,	/* vcpu/platform records and END */
	SP_FLUSH,	/* everything queued; waiting for it to leave */
	SP_HANDOVER,	/* END queued; ready / go / running / digests */
	SP_STOPPING,	/* replication stopped: END out, the backup closes */
	SP_DONE,
};

static const char *const send_phase_name[] = {
	"headers", "negotiate", "static", "live", "draining", "stop-and-copy",
	"epoch", "protected", "tail", "flush", "handover", "stopping", "done"
};

/* Epochs taken and not yet acknowledged, at most (then the next waits). */
#define SEND_EPOCHS_MAX		64
/* Intervals an epoch schedule may fall behind before it starts afresh. */
#define SEND_CATCH_UP		4
/* After an orderly stop: wait this long for the backup to close. */
#define SEND_STOP_WAIT_MS	5000

/* One epoch of a replicated stream (SPEC 15.4), until it is acked. */
struct send_epoch {
	uint64_t	epoch;
	uint64_t	outputs;	/* outputs its state has produced */
	uint64_t	dirty;		/* pages it carries */
	uint64_t	octets;		/* stream octets through its CHECKPOINT */
	double		pause_ms;
	double		t_ms;		/* taken, since the start */
	int64_t		workload;	/* backend stats then, -1 if none */
};

/* A mapping shared by the evbuffer references made from it. */
struct send_map {
	struct backend	*b;
	void		*cookie;
	unsigned	 n;
	unsigned	 refs;
};

struct xmig_send {
	struct backend		*b;
	const struct send_opts	*o;
	const struct xmig_cbs	*cbs;
	struct xmig_report	*r;		/* &report */
	struct xmig_report	 report;
	int			 started;
	int			 finished;	/* the result is given */
	int			 fd_given;	/* xmig_send_new_fd */
	char			 dest[4200];
	struct xport_connecting	*connecting;
	struct event		*done_ev;	/* runs send_finish */
	struct event		*step_ev;	/* the file sink's next batch */
	struct ev_token_bucket_cfg *rl;
	uint64_t		 last_progress;
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
	/*
	 * A pause on a thread of its own (backend pause_threaded), begun
	 * while the last live pass drains: 1 while it runs, 2 once its
	 * result is in pause_rc (read after the join).
	 */
	int			 pause_busy;
	int			 pause_rc;
	uint64_t		 pause_t;	/* when it returned */
	pthread_t		 pause_thr;
	int			 pause_pipe[2];
	struct event		*pause_ev;
	struct event		*pause_poll;	/* idle: look for dirty pages */

	struct event_base	*base;
	struct bufferevent	*bev;
	struct evbuffer		*out;
	struct event		*timer;
	struct event		*cancel;	/* o->cancel_fd readable */
	int			 fd;
	int			 sync_file;
	char			 path[PATH_MAX];
	char			 tmppath[PATH_MAX];

	uint64_t		 queued;	/* octets produced */
	uint64_t		 drained;	/* octets that left the buffer */
	uint64_t		 t_start, t_pause, t_end;
	uint64_t		 pass_t0, pass_drained0;
	uint64_t		 pass_pages0;	/* pages_sent at the pass start */
	double			 bw;		/* octets/s measured */
	double			 dirty_rate;	/* octets/s found dirty */
	uint64_t		 pages_sent;
	uint64_t		 remaining;	/* dirty octets at the last check */
	uint64_t		 prev_remaining;	/* ... at the one before */

	struct digest_state	*dstate;
	pthread_t		 digest_thr;
	int			 digest_started;
	int			 digest_done;	/* the thread ended (atomic) */
	int			 torn_down;	/* the sink is closed */
	int			 digest_rc;

	/* Connection, back-channel and handover (SPEC.md section 13). */
	int			 conn;		/* tcp, tls or exec: two-way */
	int			 offered;	/* XMIG_NEGOTIATE written */
	int			 answered;	/* a query's REPLY came */
	uint32_t		 features;	/* agreed with the receiver */
	struct xp_parser	*bc;		/* parses the back-channel */
	struct event		*wait_timer;	/* negotiation and handover */
	enum send_handover	 ho;
	uint64_t		 acked;		/* stream octets applied there */
	uint8_t			 peer_mem[32];
	uint8_t			 peer_vcpu[32];
	int			 have_peer_digests;
	int			 unconfirmed;	/* source must stay paused */
	void			*tls_ctx;
	char			 host[256];
	uint64_t		 session_id;
	uint64_t		 needed;	/* mandatory types we will write */
	uint64_t		 end_offset;	/* stream octets up to END */
	int			 anon;		/* fd is an O_TMPFILE */
	enum send_late		 late;		/* one-way after the wait: a late
						   REPLY may still come */

	/* Page encoding. */
	uint16_t		 zcodec;	/* WIRE_REC_OPT_DEFLATE / _ZSTD, 0 */
	struct send_zpolicy {
		int		 on;		/* compress the next batches */
		int		 probing;	/* trying the other way */
		unsigned	 left;		/* windows before the next probe */
		/* Batches in the output, oldest first (a ring). */
		struct send_zrec {
			uint64_t end;		/* s->queued after it */
			uint32_t raw;		/* its page octets */
			uint8_t	 on;		/* sent compressed */
		}		 ring[512];
		unsigned	 head, n;
		uint64_t	 t_last;	/* ns, the last delivery */
		int		 win_on;	/* the window's way */
		uint64_t	 win_raw;	/* page octets delivered in it */
		uint64_t	 win_t0;	/* ns, the window's start */
		double		 rate[2];	/* octets/s plain [0], compressed */
		uint64_t	 block_t0;	/* ns: the output filled up */
		uint64_t	 blocked_ns;	/* time the output stayed full */
		uint64_t	 win_blocked0;	/* blocked_ns at the window's start */
		uint64_t	 skipped;	/* batches sent plain: no gain */
		unsigned	 switches;	/* on/off changes */
	}			 zp;
	uint64_t		 page_compressed; /* page octets sent compressed */
	unsigned		 throttle;	/* auto-converge: % taken now */
	unsigned		 throttle_max;
	int			 zero_elide;
	struct xp_buf		 zbuf;		/* compression scratch */
	uint8_t			*raw;		/* a batch of pages, copied */
	uint64_t		 zero_pages;	/* sent as XMIG_ZERO_PAGES */
	uint64_t		 page_octets;	/* page data octets before compression */
	uint64_t		 page_wire;	/* ... and as sent */
	struct send_dcache	*dc;		/* delta cache, when agreed */

	int			 tls_closing;	/* close_notify queued */
	int			 rc;
	char			 err[512];

	/* Replication (SPEC 15.4). */
	int			 repl;		/* o->replicate_ms > 0 */
	int			 repl_on;	/* the first epoch is taken */
	int			 stopping;	/* orderly stop asked */
	int			 ckpt_due;	/* the interval is over */
	int			 outputs_held;
	uint64_t		 epoch;		/* epochs taken */
	uint64_t		 epoch_acked;
	uint64_t		*stage_pfn;	/* the epoch's dirty pages ... */
	uint8_t			*stage_data;	/* ... and their contents */
	size_t			 stage_cap;	/* pages */
	size_t			 stage_n, stage_cur;
	struct state_list	 stage_state;
	struct send_epoch	 ring[SEND_EPOCHS_MAX];
	struct event		*ckpt_timer;
	uint64_t		 ckpt_t0;	/* when the last epoch was taken */
	uint64_t		 ckpt_due_ns;	/* when the next one is due */

	/* Data streams (SPEC 13.6): streams.c writes the pages. */
	struct streams_tx	*tx;
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
	o->backchannel = 1;
	o->negotiate_timeout_ms = 2000;
	o->compress = 0;
	o->compress_level = 1;
	o->zero_pages = -1;
	o->cancel_fd = -1;
}

/* Milliseconds since the migration started, for the debug lines. */
static double
send_ms(const struct xmig_send *s)
{
	return (double)(now_ns() - s->t_start) / 1e6;
}

static void
send_fail(struct xmig_send *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_finish_soon(struct xmig_send *s, int delay_ms);

static void
send_fail(struct xmig_send *s, int rc, const char *fmt, ...)
{
	va_list ap;

	if (s->rc != 0 || s->answered)
		return;		/* the first reason is the one that counts */
	if (s->ho == HO_WAIT_DIGESTS) {
		/* RUNNING came: handed over, whatever fails now. */
		if (xmig_cbs_log_on(s->cbs, XMIG_LOG_DEBUG)) {
			char m[512];

			va_start(ap, fmt);
			vsnprintf(m, sizeof(m), fmt, ap);
			va_end(ap);
			send_debug(s, "+%.1f ms: after RUNNING, ignored: %s",
			    send_ms(s), m);
		}
		s->phase = SP_DONE;
		send_finish_soon(s, 0);
		return;
	}
	if (s->ho == HO_WAIT_RUNNING)
		s->unconfirmed = 1;	/* GO is out: keep the source paused */
	s->rc = rc < 0 ? rc : -EIO;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	send_finish_soon(s, 0);
}

static void
send_progress(struct xmig_send *s, int force)
{
	struct progress_info pi;
	uint64_t now = now_ns(), el = now - s->t_start;

	if (s->cbs == NULL || s->cbs->progress == NULL)
		return;
	if (!force && now - s->last_progress < SEND_PROGRESS_MS * 1000000ULL)
		return;
	s->last_progress = now;
	memset(&pi, 0, sizeof(pi));
	pi.final = force;
	pi.role = "send";
	pi.phase = send_phase_name[s->phase];
	pi.pass = s->iteration;
	pi.bytes = s->drained;
	pi.pages = s->pages_sent;
	pi.remaining = s->pass_left * s->page_size;
	pi.dirty_rate = s->dirty_rate;
	pi.throughput = s->bw > 0 ? s->bw :
	    (el > 0 ? (double)s->drained * 1e9 / (double)el : 0);
	/* Control records after END leave too: drained can pass queued. */
	pi.expected_downtime_ms = pi.throughput > 0 ?
	    (double)(pi.remaining + (s->queued > s->drained ?
	    s->queued - s->drained : 0)) * 1000.0 / pi.throughput : 0;
	s->cbs->progress(s->cbs->arg, &pi);
}

/* ---- producing records ------------------------------------------------ */

static int
send_record(struct xmig_send *s, uint32_t type, const uint8_t *body_le,
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

/* n pages that are all zero, as one XMIG_ZERO_PAGES record (SPEC 12.1). */
static int
send_zero_pages(struct xmig_send *s, const uint64_t *pfns, unsigned n)
{
	uint8_t body[8 + 8 * WIRE_PAGE_DATA_MAX];
	uint64_t entries[WIRE_PAGE_DATA_MAX];
	struct xp_buf buf = { 0 };
	unsigned i;
	int rc;

	for (i = 0; i < n; i++)
		entries[i] = body_pfn_entry(pfns[i], PT_NOTAB);
	body_page_data_prefix_put(s->st.big_endian, body, n, entries);
	rc = record_encode(&s->st, &buf, REC_XMIG_ZERO_PAGES, body,
	    8 + 8 * n, s->recopt);
	if (rc >= 0)
		rc = evbuffer_add(s->out, buf.data, buf.len) == 0 ? 0 : -ENOMEM;
	else
		rc = -ENOMEM;
	s->queued += buf.len;
	s->zero_pages += n;
	buf_free(&buf);
	return rc;
}

/*
 * n pfns the backend has no data for (Xen: XTAB, BROKEN, XALLOC), as one
 * PAGE_DATA record of XTAB entries without data, which is what libxc
 * writes for them; receivers populate nothing for them.
 */
static int
send_pages_absent(struct xmig_send *s, const uint64_t *pfns, unsigned n)
{
	uint8_t body[8 + 8 * WIRE_PAGE_DATA_MAX];
	uint64_t entries[WIRE_PAGE_DATA_MAX];
	unsigned i;

	for (i = 0; i < n; i++)
		entries[i] = body_pfn_entry(pfns[i], PT_XTAB);
	/* send_record puts the little-endian body in stream order. */
	body_page_data_prefix_put(0, body, n, entries);
	return send_record(s, REC_PAGE_DATA, body, 8 + 8 * n);
}

/*
 * Adaptive compression.  Each batch of pages is remembered with where its
 * record ends in the stream; when the transport has taken it, its page
 * octets count as delivered.  A window is SEND_ZP_WINDOW page octets
 * delivered one way (plain or compressed); its rate, page octets per
 * second from the first delivery to the last, is that way's rate, what
 * the link and the CPU together achieve, whatever the buffer holds.
 * Every SEND_ZP_PERIOD windows the sender tries the other way for one
 * window, then keeps it if it was a tenth faster: compression pays on a
 * slow link and backs off while the CPU, not the link, limits the rate
 * (loopback).  While compressed windows keep the output full half of
 * their time, the link is the limit and no plain window is tried.
 */
#define SEND_ZP_WINDOW	(16u << 20)
#define SEND_ZP_PERIOD	8u
#define SEND_ZP_RING	(sizeof(((struct xmig_send *)0)->zp.ring) / \
			    sizeof(((struct xmig_send *)0)->zp.ring[0]))

/* A batch queued: remember it (when the ring is full, it goes uncounted). */
static void
send_zp_queued(struct xmig_send *s, uint64_t raw, int on)
{
	struct send_zpolicy *zp = &s->zp;
	struct send_zrec *r;

	if (zp->n == 0)
		zp->t_last = now_ns();	/* the link starts on it now */
	if (zp->n == SEND_ZP_RING)
		return;
	r = &zp->ring[(zp->head + zp->n++) % SEND_ZP_RING];
	r->end = s->queued;
	r->raw = (uint32_t)raw;
	r->on = (uint8_t)on;
}

/* A window ended: its rate, and maybe another way. */
static void
send_zp_window(struct xmig_send *s, uint64_t now)
{
	struct send_zpolicy *zp = &s->zp;
	int best;

	uint64_t blocked = zp->blocked_ns - zp->win_blocked0;

	if (zp->block_t0 != 0 && now > zp->block_t0)
		blocked += now - zp->block_t0;
	/*
	 * The old way's last batches leave the buffer at the link's pace
	 * whatever it cost to make them: not a measure of that way.
	 */
	if (zp->win_on != zp->on)
		return;
	zp->rate[zp->win_on] = now > zp->win_t0 ? (double)zp->win_raw * 1e9 /
	    (double)(now - zp->win_t0) : 0;
	if (!zp->probing) {
		if (zp->on && now > zp->win_t0 &&
		    blocked * 2 >= now - zp->win_t0) {
			zp->left = SEND_ZP_PERIOD;	/* the link limits */
			return;
		}
		if (zp->left != 0 && --zp->left != 0)
			return;
		zp->on = !zp->on;	/* try the other way for a window */
		zp->probing = 1;
		return;
	}
	zp->probing = 0;
	zp->left = SEND_ZP_PERIOD;
	/* The tried way must be a tenth faster to stay. */
	best = zp->rate[zp->on] > zp->rate[!zp->on] * 1.1 ? zp->on : !zp->on;
	if (best != zp->on)
		zp->on = best;		/* the try lost: back */
	else {
		zp->switches++;		/* the try won: it stays */
		send_debug(s, "+%.1f ms: compression %s: %.0f MiB/s of pages "
		    "plain, %.0f MiB/s compressed", send_ms(s), zp->on ? "on" :
		    "off", zp->rate[0] / 1048576.0, zp->rate[1] / 1048576.0);
	}
}

/* The transport took octets up to s->drained: count what was delivered. */
static void
send_zp_drained(struct xmig_send *s)
{
	struct send_zpolicy *zp = &s->zp;
	uint64_t now = 0;

	while (zp->n > 0 && zp->ring[zp->head].end <= s->drained) {
		struct send_zrec *r = &zp->ring[zp->head];

		if (now == 0)
			now = now_ns();
		if (zp->win_raw > 0 && r->on != zp->win_on)
			zp->win_raw = 0;	/* a mixed window: not measured */
		if (zp->win_raw == 0) {
			zp->win_on = r->on;
			zp->win_t0 = zp->t_last;
			zp->win_blocked0 = zp->blocked_ns;
			if (zp->block_t0 != 0 && zp->t_last > zp->block_t0)
				zp->win_blocked0 += zp->t_last - zp->block_t0;
		}
		zp->win_raw += r->raw;
		zp->t_last = now;
		zp->head = (zp->head + 1) % SEND_ZP_RING;
		zp->n--;
		if (zp->win_raw >= SEND_ZP_WINDOW && !s->o->compress_fixed) {
			send_zp_window(s, now);
			zp->win_raw = 0;
		}
	}
}

/*
 * A PAGE_DATA record whose page data is compressed (SPEC 12.2, 12.6), or
 * plain when compressing did not save a 32nd of it.
 */
static int
send_pages_compressed(struct xmig_send *s, const uint64_t *pfns, void **pages,
    const uint8_t *types, unsigned n)
{
	uint8_t pre[WIRE_RHDR_SIZE_DRAFTB + 8 + 8 * WIRE_PAGE_DATA_MAX];
	uint64_t entries[WIRE_PAGE_DATA_MAX];
	uint8_t foot[WIRE_FOOTER_SIZE + WIRE_REC_ALIGN];
	size_t hs = record_hdr_size(&s->st), prelen, ps = s->page_size;
	size_t raw = n * ps;
	uint16_t opt = s->recopt | s->zcodec;
	const uint8_t *data;
	uint32_t body_len, crc = 0;
	size_t dlen;
	unsigned i;
	int rc;

	for (i = 0; i < n; i++) {
		memcpy(s->raw + i * ps, pages[i], ps);
		entries[i] = body_pfn_entry(pfns[i], types[i]);
	}
	s->zbuf.len = 0;
	rc = body_page_data_compress(s->st.big_endian, s->zcodec,
	    s->o->compress_level, s->raw, raw, &s->zbuf);
	if (rc != 0)
		return rc == -XP_ENOMEM ? -ENOMEM : -EINVAL;
	if (s->zbuf.len >= raw - raw / 32) {
		/* Not worth it: the pages as they are (already copied). */
		opt = s->recopt;
		data = s->raw;
		dlen = raw;
		s->zp.skipped++;
	} else {
		data = s->zbuf.data;
		dlen = s->zbuf.len;
		s->page_compressed += raw;
	}
	body_len = (uint32_t)(8 + 8 * (size_t)n + dlen);
	record_hdr_put(&s->st, pre, REC_PAGE_DATA, body_len, opt);
	body_page_data_prefix_put(s->st.big_endian, pre + hs, n, entries);
	prelen = hs + 8 + 8 * (size_t)n;
	if (opt & WIRE_REC_OPT_CHECKSUM) {
		crc = xp_crc32(0, pre, prelen);
		crc = xp_crc32(crc, data, dlen);
	}
	record_trailer_put(&s->st, foot, body_len, opt, crc);
	if (evbuffer_add(s->out, pre, prelen) != 0 ||
	    evbuffer_add(s->out, data, dlen) != 0 ||
	    evbuffer_add(s->out, foot, record_trailer_size(&s->st, body_len)))
		return -ENOMEM;
	s->queued += record_wire_size(&s->st, body_len);
	s->page_octets += raw;
	s->page_wire += dlen;
	return 0;
}

/*
 * One PAGE_DATA record for n pages that carry data.  While the domain
 * runs and checksums are on, the pages are copied first (the checksum must
 * match what is sent); otherwise they are queued by reference, which is
 * safe: a page written after read_dirty() is sent again in a later pass,
 * and in the final pass the domain is paused.  The mapping is released
 * when the last reference has left the buffer.
 */
static int
send_pages_plain(struct xmig_send *s, const uint64_t *pfns, void **pages,
    const uint8_t *types, unsigned n, struct send_map *m)
{
	uint8_t pre[WIRE_RHDR_SIZE_DRAFTB + 8 + 8 * WIRE_PAGE_DATA_MAX];
	uint64_t entries[WIRE_PAGE_DATA_MAX];
	uint8_t foot[WIRE_FOOTER_SIZE + WIRE_REC_ALIGN];
	size_t hs = record_hdr_size(&s->st), prelen, ps = s->page_size;
	uint32_t body_len = 8 + 8 * n + (uint32_t)(n * ps);
	int checksum = (s->recopt & WIRE_REC_OPT_CHECKSUM) != 0;
	uint32_t crc = 0;
	unsigned i, j;

	for (i = 0; i < n; i++)
		entries[i] = body_pfn_entry(pfns[i], types[i]);
	record_hdr_put(&s->st, pre, REC_PAGE_DATA, body_len, s->recopt);
	body_page_data_prefix_put(s->st.big_endian, pre + hs, n, entries);
	prelen = hs + 8 + 8 * (size_t)n;
	if (checksum)
		crc = xp_crc32(0, pre, prelen);
	if (evbuffer_add(s->out, pre, prelen) != 0)
		return -ENOMEM;

	if ((checksum && !s->paused) || s->repl || m == NULL) {
		/*
		 * Replication copies every page when it is queued: an epoch
		 * must carry the contents it was taken with, never newer.
		 */
		struct evbuffer_iovec v;

		if (evbuffer_reserve_space(s->out, n * ps, &v, 1) != 1 ||
		    v.iov_len < n * ps)
			return -ENOMEM;
		for (i = 0; i < n; i++)
			memcpy((uint8_t *)v.iov_base + i * ps, pages[i], ps);
		if (checksum)
			crc = xp_crc32(crc, v.iov_base, n * ps);
		v.iov_len = n * ps;
		if (evbuffer_commit_space(s->out, &v, 1) != 0)
			return -ENOMEM;
	} else {
		for (i = 0; i < n; i = j) {
			/* Coalesce pages that are adjacent in memory. */
			for (j = i + 1; j < n && (uint8_t *)pages[j] ==
			    (uint8_t *)pages[j - 1] + ps; j++)
				;
			if (checksum)
				crc = xp_crc32(crc, pages[i], (j - i) * ps);
			m->refs++;
			if (evbuffer_add_reference(s->out, pages[i],
			    (j - i) * ps, send_map_release, m) != 0) {
				m->refs--;
				return -ENOMEM;
			}
		}
	}
	record_trailer_put(&s->st, foot, body_len, s->recopt, crc);
	if (evbuffer_add(s->out, foot, record_trailer_size(&s->st, body_len)))
		return -ENOMEM;
	s->queued += record_wire_size(&s->st, body_len);
	s->page_octets += n * ps;
	s->page_wire += n * ps;
	return 0;
}

/* ---- delta-encoded pages (SPEC 12.7) ---------------------------------- */

/*
 * The delta cache: what the receiver holds of the pages sent last, so
 * that a page sent again can go as a delta against it.  Direct-mapped:
 * pfn % nslots names the one slot a pfn may occupy, and a page sent in
 * full takes it over; a slot holds exactly the octets sent for its pfn
 * (zeros for an XMIG_ZERO_PAGES entry).  Pages are read once into
 * stable[], encoded and sent from there, and cached from there: a guest
 * writing a page meanwhile changes neither what was sent nor the copy.
 */
#define SEND_DELTA_CACHE_DEFAULT	(64ULL << 20)
#define SEND_DELTA_EMPTY		UINT64_MAX

struct send_dcache {
	size_t		 nslots;
	uint64_t	*pfn;		/* per slot; SEND_DELTA_EMPTY */
	uint8_t		*data;		/* nslots pages */
	uint8_t		*stable;	/* WIRE_PAGE_DATA_MAX pages */
	uint8_t		*deltas;	/* a record's deltas, concatenated */
	uint8_t		*body;		/* the record body */
	uint64_t	 pages;		/* sent as deltas */
	uint64_t	 octets;	/* their delta octets */
};

static void
send_delta_free(struct xmig_send *s)
{
	if (s->dc == NULL)
		return;
	free(s->dc->pfn);
	free(s->dc->data);
	free(s->dc->stable);
	free(s->dc->deltas);
	free(s->dc->body);
	free(s->dc);
	s->dc = NULL;
}

/* DELTA was agreed: make the cache.  0, or -ENOMEM (then no deltas). */
static int
send_delta_start(struct xmig_send *s)
{
	struct send_dcache *dc;
	uint64_t bytes = s->o->delta_cache != 0 ? s->o->delta_cache :
	    SEND_DELTA_CACHE_DEFAULT;
	size_t ps = s->page_size, i, half = ps / 2;

	if (s->dc != NULL)
		return 0;
	if ((dc = calloc(1, sizeof(*dc))) == NULL)
		return -ENOMEM;
	s->dc = dc;
	dc->nslots = (size_t)(bytes / ps);
	if (dc->nslots == 0)
		dc->nslots = 1;
	if (s->info.nr_pages != 0 && dc->nslots > s->info.nr_pages)
		dc->nslots = (size_t)s->info.nr_pages;
	dc->pfn = malloc(dc->nslots * sizeof(uint64_t));
	dc->data = malloc(dc->nslots * ps);
	dc->stable = malloc(WIRE_PAGE_DATA_MAX * ps);
	dc->deltas = malloc(WIRE_PAGE_DATA_MAX * half);
	dc->body = malloc(DELTA_REC_HDR + WIRE_PAGE_DATA_MAX *
	    (DELTA_ENTRY_SIZE + half));
	if (dc->pfn == NULL || dc->data == NULL || dc->stable == NULL ||
	    dc->deltas == NULL || dc->body == NULL) {
		send_delta_free(s);
		return -ENOMEM;
	}
	for (i = 0; i < dc->nslots; i++)
		dc->pfn[i] = SEND_DELTA_EMPTY;
	send_debug(s, "+%.1f ms: delta cache of %zu pages (%zu MiB)",
	    send_ms(s), dc->nslots, dc->nslots * ps >> 20);
	return 0;
}

/* pfns sent without data (holes): no base for a delta any more. */
static void
send_delta_forget(struct xmig_send *s, const uint64_t *pfns, unsigned n)
{
	struct send_dcache *dc = s->dc;
	unsigned i;

	for (i = 0; i < n; i++)
		if (dc->pfn[pfns[i] % dc->nslots] == pfns[i])
			dc->pfn[pfns[i] % dc->nslots] = SEND_DELTA_EMPTY;
}

/* pfns sent as XMIG_ZERO_PAGES: the receiver holds zeros. */
static void
send_delta_zero(struct xmig_send *s, const uint64_t *pfns, unsigned n)
{
	struct send_dcache *dc = s->dc;
	size_t slot;
	unsigned i;

	for (i = 0; i < n; i++) {
		slot = pfns[i] % dc->nslots;
		dc->pfn[slot] = pfns[i];
		memset(dc->data + slot * s->page_size, 0, s->page_size);
	}
}

/*
 * The n data pages at pages[]: each read once into stable[]; a plain page
 * whose last sent copy is cached and whose delta against it is below half
 * a page goes into one XMIG_DELTA_PAGES record, written here; the others
 * are left in pfns[], pages[] (now pointing at their stable copies) and
 * types[], *n of them, to go in full, and take their cache slots.
 */
static int
send_delta_split(struct xmig_send *s, uint64_t *pfns, void **pages,
    uint8_t *types, unsigned *n)
{
	struct send_dcache *dc = s->dc;
	size_t ps = s->page_size, slot, off = 0;
	uint64_t dpfn[WIRE_PAGE_DATA_MAX];
	uint32_t dlen[WIRE_PAGE_DATA_MAX], len;
	struct xp_buf buf = { 0 };
	unsigned i, nf = 0, ndl = 0;
	uint8_t *st, *cached;
	int dl, rc;

	for (i = 0; i < *n; i++) {
		st = dc->stable + (size_t)i * ps;
		memcpy(st, pages[i], ps);
		slot = pfns[i] % dc->nslots;
		cached = dc->data + slot * ps;
		if (types[i] == PT_NOTAB && dc->pfn[slot] == pfns[i] &&
		    (dl = delta_encode(cached, st, (uint32_t)ps,
		    dc->deltas + off, (uint32_t)(ps / 2 - 1))) >= 0) {
			memcpy(cached, st, ps);
			dpfn[ndl] = pfns[i];
			dlen[ndl++] = (uint32_t)dl;
			off += (size_t)dl;
			continue;
		}
		if (types[i] == PT_NOTAB) {
			dc->pfn[slot] = pfns[i];
			memcpy(cached, st, ps);
		} else if (dc->pfn[slot] == pfns[i]) {
			dc->pfn[slot] = SEND_DELTA_EMPTY;	/* a table */
		}
		pfns[nf] = pfns[i];
		types[nf] = types[i];
		pages[nf++] = st;
	}
	*n = nf;
	if (ndl == 0)
		return 0;
	len = DELTA_REC_HDR + ndl * DELTA_ENTRY_SIZE;
	if (delta_pages_put(s->st.big_endian, dc->body, ndl, dpfn, dlen) != 0)
		return -EINVAL;
	memcpy(dc->body + len, dc->deltas, off);
	len += (uint32_t)off;
	rc = record_encode(&s->st, &buf, REC_XMIG_DELTA_PAGES, dc->body, len,
	    s->recopt);
	if (rc >= 0)
		rc = evbuffer_add(s->out, buf.data, buf.len) == 0 ? 0 : -ENOMEM;
	else
		rc = -ENOMEM;
	s->queued += buf.len;
	buf_free(&buf);
	dc->pages += ndl;
	dc->octets += off;
	return rc;
}

static void
send_delta_report(const struct xmig_send *s, struct xmig_report *r)
{
	if (s->dc == NULL)
		return;
	r->delta = 1;
	r->delta_pages = s->dc->pages;
	r->delta_octets = s->dc->octets;
	r->delta_saved_octets = s->dc->pages * s->page_size - s->dc->octets;
}

/*
 * n pages at pages[] (NULL: no data) of types[] (NULL: all PT_NOTAB): zero
 * plain ones as XMIG_ZERO_PAGES when agreed, the rest as data; m is the
 * mapping they come from (NULL: a buffer of ours, copied).
 */
static int
send_page_ptrs(struct xmig_send *s, const uint64_t *pfns, void **pages,
    const uint8_t *types, unsigned n, struct send_map *m)
{
	uint64_t zpfn[WIRE_PAGE_DATA_MAX], dpfn[WIRE_PAGE_DATA_MAX];
	uint64_t xpfn[WIRE_PAGE_DATA_MAX];
	void *dpages[WIRE_PAGE_DATA_MAX];
	uint8_t dtypes[WIRE_PAGE_DATA_MAX], t;
	unsigned i, nz = 0, nd = 0, nx = 0;
	int rc = 0;

	for (i = 0; i < n; i++) {
		t = types != NULL ? types[i] : PT_NOTAB;
		if (pages[i] == NULL) {
			/* No data (a p2m hole): sent as XTAB, as libxc does. */
			xpfn[nx++] = pfns[i];
		} else if (s->zero_elide && t == PT_NOTAB &&
		    page_is_zero(pages[i], s->page_size)) {
			/* Only plain pages: XMIG_ZERO_PAGES has no type. */
			zpfn[nz++] = pfns[i];
		} else {
			dpfn[nd] = pfns[i];
			dtypes[nd] = t;
			dpages[nd++] = pages[i];
		}
	}
	if (nx > 0)
		rc = send_pages_absent(s, xpfn, nx);
	if (rc == 0 && nz > 0)
		rc = send_zero_pages(s, zpfn, nz);
	if (rc == 0 && s->dc != NULL) {
		/* SPEC 12.7: some pages as deltas, the rest from copies. */
		send_delta_forget(s, xpfn, nx);
		send_delta_zero(s, zpfn, nz);
		rc = send_delta_split(s, dpfn, dpages, dtypes, &nd);
		m = NULL;
	}
	if (rc == 0 && nd > 0) {
		if (s->zcodec != 0 && (s->zp.on || s->o->compress_fixed))
			rc = send_pages_compressed(s, dpfn, dpages, dtypes,
			    nd);
		else
			rc = send_pages_plain(s, dpfn, dpages, dtypes, nd,
			    m);
		if (rc == 0 && s->zcodec != 0)
			send_zp_queued(s, (uint64_t)nd * s->page_size,
			    s->zp.on || s->o->compress_fixed);
	}
	s->pages_sent += n - nx;	/* holes carry no page */
	return rc;
}

/* Send n pages of the domain, mapped for the time they are queued. */
static int
send_pages(struct xmig_send *s, const uint64_t *pfns, unsigned n)
{
	void *pages[WIRE_PAGE_DATA_MAX];
	uint8_t types[WIRE_PAGE_DATA_MAX];
	struct send_map *m;
	void *cookie = NULL;
	int rc;

	rc = s->b->ops->map(s->b, pfns, n, 0, pages, &cookie);
	if (rc != 0)
		return rc;
	memset(types, PT_NOTAB, n);
	if (s->b->ops->map_types != NULL &&
	    (rc = s->b->ops->map_types(s->b, cookie, n, types)) != 0) {
		s->b->ops->unmap(s->b, cookie, n);
		return rc;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		s->b->ops->unmap(s->b, cookie, n);
		return -ENOMEM;
	}
	m->b = s->b;
	m->cookie = cookie;
	m->n = n;
	m->refs = 1;	/* ours, until the records are queued */
	rc = send_page_ptrs(s, pfns, pages, types, n, m);
	send_map_release(NULL, 0, m);
	return rc;
}

static int
send_state_list(struct xmig_send *s, struct state_list *l)
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

/* ---- data streams (SPEC 13.6): the hooks; streams.c does the I/O ---- */

static void send_wait(struct xmig_send *s, double ms);

static int send_produce(struct xmig_send *s);
static int send_stop_and_copy(struct xmig_send *s);
static uint32_t send_offer(const struct xmig_send *s);

/* A TCP connection (tcp:, tls:) whose backend lets workers in. */
static int
send_streams_possible(const struct xmig_send *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (s->o->streams < 2 || !s->conn || s->repl || s->o->query ||
	    !(s->b->ops->caps & BACKEND_CAP_WORKERS))
		return 0;
	return getpeername(s->fd, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

/* A worker made room or failed: on with the pass, or fail. */
static void
send_streams_wake(void *arg)
{
	struct xmig_send *s = arg;
	char err[300];
	int rc;

	if (s->tx == NULL || s->finished)
		return;
	s->drained += streams_tx_take_sent(s->tx);
	if ((rc = streams_tx_error(s->tx, err, sizeof(err))) != 0) {
		if (s->rc == 0)
			send_fail(s, rc, "%s", err);
		return;
	}
	if (s->rc == 0 && s->phase == SP_PREPAUSE && s->pause_busy == 0 &&
	    evbuffer_get_length(s->out) == 0 && streams_tx_idle(s->tx)) {
		/* What the last live pass queued is out: pause now. */
		if (send_stop_and_copy(s) != 0)
			return;
	}
	if (s->rc == 0 && (s->phase == SP_LIVE || s->phase == SP_FINAL))
		send_produce(s);
}

/* XMIG_STREAMS: connect the data streams, then the stream goes on. */
static int
send_bc_streams(struct xmig_send *s, const struct xp_record *rec)
{
	struct streams_tx_cfg c;
	struct xp_streams x;
	int rc;

	if (s->phase != SP_NEGOTIATE && (s->features & XMIG_F_PARALLEL) == 0 &&
	    (s->r->backchannel)) {
		/* A late REPLY (13.4): the stream already went plain. */
		send_debug(s, "+%.1f ms: XMIG_STREAMS after a late REPLY: "
		    "the pages stay on this connection", send_ms(s));
		return 0;
	}
	if (s->phase != SP_NEGOTIATE || !(s->features & XMIG_F_PARALLEL) ||
	    control_streams_get(rec, &x) != 0 || x.streams > s->o->streams) {
		send_fail(s, -EPROTO, "back-channel: unexpected XMIG_STREAMS");
		return -XP_ECALLBACK;
	}
	if (s->wait_timer != NULL)
		evtimer_del(s->wait_timer);	/* armed by send_streams_reply */
	memset(&c, 0, sizeof(c));
	c.base = s->base;
	c.b = s->b;
	c.st = s->st;
	c.recopt = s->recopt & WIRE_REC_OPT_CHECKSUM;
	c.zero_elide = s->zero_elide;
	c.n = x.streams;
	c.addrlen = sizeof(c.addr);
	if (getpeername(s->fd, (struct sockaddr *)&c.addr, &c.addrlen) != 0) {
		send_fail(s, -errno, "data streams: %s", strerror(errno));
		return -XP_ECALLBACK;
	}
	if (c.addr.ss_family == AF_INET)
		((struct sockaddr_in *)&c.addr)->sin_port = htons(x.port);
	else
		((struct sockaddr_in6 *)&c.addr)->sin6_port = htons(x.port);
	memcpy(c.token, x.token, sizeof(c.token));
	c.tls_ctx = s->tls_ctx;
	c.host = s->host;
	c.timeout_s = SEND_TIMEOUT(s);
	c.wake = send_streams_wake;
	c.arg = s;
	if ((rc = streams_tx_start(&c, &s->tx)) != 0) {
		send_fail(s, rc, "data streams: %s", strerror(-rc));
		return -XP_ECALLBACK;
	}
	s->r->streams = x.streams;
	send_debug(s, "+%.1f ms: %u data streams to port %u", send_ms(s),
	    x.streams, x.port);
	s->phase = SP_STATIC;
	return 0;
}

/* The REPLY is in: 1 while XMIG_STREAMS is still to come. */
static int
send_streams_reply(struct xmig_send *s)
{
	if (s->features & XMIG_F_PARALLEL) {
		/* As long again for XMIG_STREAMS as for the REPLY. */
		send_wait(s, s->o->negotiate_timeout_ms);
		return 1;
	}
	if (send_offer(s) & XMIG_F_PARALLEL)
		xmig_cbs_log(s->cbs, XMIG_LOG_WARN, "the receiver declined "
		    "--streams %u: the pages go over the one connection",
		    s->o->streams);
	return 0;
}

/* Pass `pass` is queued whole (last: the stop-and-copy pass). */
static void
send_streams_pass_end(struct xmig_send *s, unsigned pass, int last)
{
	int rc;

	if (s->tx != NULL && pass > 0 &&
	    (rc = streams_tx_pass_end(s->tx, pass, last)) != 0)
		send_fail(s, rc, "data streams: %s", strerror(-rc));
}

static int
send_streams_pages(struct xmig_send *s, const uint64_t *pfns, unsigned n)
{
	int rc = streams_tx_submit(s->tx, s->iteration, pfns, n);

	if (rc == 0)
		s->pages_sent += n;
	return rc;
}

/* The end: what went over the data streams counted, every worker joined. */
static void
send_streams_report(struct xmig_send *s)
{
	uint64_t pages, zero, octets;

	if (s->r->streams == 0)
		s->r->streams = 1;
	if (s->tx == NULL)
		return;
	s->drained += streams_tx_take_sent(s->tx);
	streams_tx_counts(s->tx, &pages, &zero, &octets);
	s->zero_pages += zero;
	s->page_octets += octets;
	s->page_wire += octets;
	streams_tx_free(s->tx);
	s->tx = NULL;
}

/* The features this sender offers, given its options and dialect. */
static uint32_t
send_offer(const struct xmig_send *s)
{
	uint32_t f = XMIG_F_ACKS | XMIG_F_HANDOVER;

	if (s->recopt & WIRE_REC_OPT_CHECKSUM)
		f |= XMIG_F_CHECKSUM;
	if (s->o->compress == WIRE_REC_OPT_DEFLATE && s->st.dialect == XP_DRAFTB)
		f |= XMIG_F_DEFLATE;
	if (s->o->compress == WIRE_REC_OPT_ZSTD && s->st.dialect == XP_DRAFTB)
		f |= XMIG_F_ZSTD;
	if (s->o->zero_pages != 0)
		f |= XMIG_F_ZERO_PAGES;
	if (!s->o->no_digest && s->o->digest == XMIG_DIGEST_XXH3)
		f |= XMIG_F_XXH3;
	if (s->repl)
		f = (f & ~XMIG_F_HANDOVER) | XMIG_F_CHECKPOINTS;
	if (send_streams_possible(s))
		f |= XMIG_F_PARALLEL;
	else if (s->o->delta && !s->repl)
		f |= XMIG_F_DELTA;	/* SPEC 12.7: not with CHECKPOINTS */
	return f;
}


/*
 * XMIG_DOMAIN_CONFIG (SPEC 12.4), right after the headers or the offer:
 * a Xen-dialect file must stay readable by Xen's own tools, so it only
 * goes there when an xmig receiver may be on the other end.
 */
static int
send_config(struct xmig_send *s)
{
	struct xp_buf buf = { 0 };
	uint8_t *body;
	size_t n = s->o->domain_config_len;

	if (s->o->domain_config == NULL || n == 0)
		return 0;
	if (s->st.dialect == XP_XEN &&
	    !(s->st.ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL)) {
		send_debug(s, "domain configuration not written: a Xen-dialect "
		    "file is for Xen's tools");
		return 0;
	}
	if (n > WIRE_CONFIG_TEXT_MAX || memchr(s->o->domain_config, 0, n))
		return -EINVAL;
	if ((body = malloc(WIRE_CONFIG_HDR_SIZE + n)) == NULL)
		return -ENOMEM;
	body_config_put(s->st.big_endian, body, XMIG_CONFIG_LIBXL_JSON);
	memcpy(body + WIRE_CONFIG_HDR_SIZE, s->o->domain_config, n);
	if (record_encode(&s->st, &buf, REC_XMIG_DOMAIN_CONFIG, body,
	    (uint32_t)(WIRE_CONFIG_HDR_SIZE + n), s->recopt) < 0 ||
	    evbuffer_add(s->out, buf.data, buf.len) != 0) {
		buf_free(&buf);
		free(body);
		return -ENOMEM;
	}
	s->queued += buf.len;
	buf_free(&buf);
	free(body);
	send_debug(s, "domain configuration sent: %zu octets of libxl JSON", n);
	return 0;
}

/* Image and domain headers, and the offer of a back-channel. */
static int
send_headers(struct xmig_send *s)
{
	uint8_t hdr[WIRE_IHDR_SIZE + WIRE_DHDR_SIZE_XEN];
	uint8_t body[WIRE_NEGOTIATE_SIZE];
	struct xp_negotiate n;
	struct xp_buf buf = { 0 };
	size_t len;
	int rc;

	if (s->conn && s->o->backchannel)
		s->st.ihdr_options |= WIRE_IHDR_OPT_BACKCHANNEL;
	if (s->repl && !(s->st.ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL)) {
		send_fail(s, -EINVAL, "--replicate needs a connection with a "
		    "back-channel (tcp:, tls: or exec:; not --no-backchannel): "
		    "the backup acknowledges every epoch");
		return -EINVAL;
	}
	header_image_put(&s->st, hdr);
	len = WIRE_IHDR_SIZE + header_domain_put(&s->st, hdr + WIRE_IHDR_SIZE);
	if (evbuffer_add(s->out, hdr, len) != 0)
		return -ENOMEM;
	s->queued += len;
	if (s->o->query && !(s->st.ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL))
		return -EINVAL;		/* nobody could answer */
	if (!(s->st.ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL)) {
		send_debug(s, "no back-channel offered (%s): one-way",
		    s->conn ? "--no-backchannel" : "a file or pipe");
		s->phase = SP_STATIC;
		return send_config(s);
	}
	memset(&n, 0, sizeof(n));
	n.version = XMIG_NEGOTIATE_VERSION;
	n.features = send_offer(s);
	if (s->o->domain_config != NULL && s->o->domain_config_len > 0)
		n.features |= XMIG_F_CONFIG;	/* SPEC 12.4: it follows */
	if (s->o->query)
		n.features |= XMIG_F_QUERY;	/* SPEC 13.2: only asks */
	n.can_write = XMIG_CAN_DRAFTB_V1 | XMIG_CAN_XEN_V2 | XMIG_CAN_XEN_V3;
	n.max_record_len = record_wire_size(&s->st, 8 + 8 * WIRE_PAGE_DATA_MAX +
	    WIRE_PAGE_DATA_MAX * s->page_size);
	n.arch = s->info.arch;
	n.type = s->info.type;
	n.page_shift = s->info.page_shift;
	n.nr_pages = s->info.nr_pages;
	n.nr_vcpus = s->info.nr_vcpus;
	n.interval_ms = s->repl ? s->o->replicate_ms : 0;
	n.streams = (n.features & XMIG_F_PARALLEL) ? (uint16_t)s->o->streams : 0;
	if (s->o->streams > 1 && !(n.features & XMIG_F_PARALLEL))
		xmig_cbs_log(s->cbs, XMIG_LOG_WARN, "--streams %u: %s; the "
		    "pages go over the one connection", s->o->streams,
		    !(s->b->ops->caps & BACKEND_CAP_WORKERS) ? "this backend "
		    "cannot copy pages on worker threads" :
		    "not on this connection");
	n.session_id = s->session_id;
	body_negotiate_put(s->st.big_endian, body, &n);
	if (record_encode(&s->st, &buf, REC_XMIG_NEGOTIATE, body,
	    WIRE_NEGOTIATE_SIZE, s->recopt) < 0 ||
	    evbuffer_add(s->out, buf.data, buf.len) != 0) {
		buf_free(&buf);
		return -ENOMEM;
	}
	s->queued += buf.len;
	buf_free(&buf);
	if ((rc = send_config(s)) != 0)
		return rc;
	/* The mandatory record types this stream will carry. */
	s->needed = 1ULL << REC_END | 1ULL << REC_PAGE_DATA |
	    1ULL << REC_STATIC_DATA_END | 1ULL << REC_X86_TSC_INFO;
	if (s->info.type == WIRE_DOM_X86_PV)
		s->needed |= 1ULL << REC_X86_PV_INFO |
		    1ULL << REC_X86_PV_P2M_FRAMES | 1ULL << REC_SHARED_INFO |
		    1ULL << REC_X86_PV_VCPU_BASIC;
	else
		s->needed |= 1ULL << REC_HVM_CONTEXT | 1ULL << REC_HVM_PARAMS;
	s->offered = 1;
	if (xmig_cbs_log_on(s->cbs, XMIG_LOG_DEBUG)) {
		char f[128];

		send_debug(s, "+%.1f ms: offer: back-channel with %s; "
		    "compression %s; "
		    "writes draft-B v1, Xen v2, v3; records up to %u octets; "
		    "domain of %llu pages of %u octets, %u vcpus; session "
		    "0x%llx; waiting %.0f ms for the answer", send_ms(s),
		    xmig_features_str(n.features, f, sizeof(f)),
		    (n.features & XMIG_F_ZSTD) ? "zstd" :
		    (n.features & XMIG_F_DEFLATE) ? "zlib" : "none",
		    n.max_record_len, (unsigned long long)n.nr_pages,
		    s->page_size, n.nr_vcpus,
		    (unsigned long long)n.session_id,
		    s->o->negotiate_timeout_ms);
	}
	s->phase = SP_NEGOTIATE;
	send_wait(s, s->o->negotiate_timeout_ms);
	return 0;
}

/*
 * XMIG_EARLY_PARAMS (SPEC 12.5): to an xmig receiver only (one that
 * answered the back-channel), never into a file; not part of the state
 * digest (a receiver that does not use them skips them).
 */
static int
send_early(struct xmig_send *s)
{
	struct state_list sl = { 0 };
	size_t i;
	int rc = 0;

	if (s->b->ops->early_state == NULL || !s->r->backchannel)
		return 0;
	if ((rc = s->b->ops->early_state(s->b, &sl)) != 0)
		send_fail(s, rc, "reading the early state: %s",
		    backend_errmsg(s->b));
	for (i = 0; rc == 0 && i < sl.n; i++)
		rc = send_record(s, sl.recs[i].type, sl.recs[i].body,
		    sl.recs[i].len);
	if (rc == 0 && sl.n > 0)
		send_debug(s, "+%.1f ms: early state sent (%zu record%s)",
		    send_ms(s), sl.n, sl.n == 1 ? "" : "s");
	state_list_free(&sl);
	return rc;
}

static int
send_static(struct xmig_send *s)
{
	struct state_list sl = { 0 };
	int rc;

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
	if ((rc = send_record(s, REC_STATIC_DATA_END, NULL, 0)) != 0)
		return rc;
	if (s->b->ops->memory_state != NULL) {
		/* PV: X86_PV_P2M_FRAMES, before any page (as libxc). */
		if ((rc = s->b->ops->memory_state(s->b, &sl)) != 0) {
			send_fail(s, rc, "reading the state that goes before "
			    "memory: %s", backend_errmsg(s->b));
			state_list_free(&sl);
			return rc;
		}
		rc = send_state_list(s, &sl);
		state_list_free(&sl);
		if (rc != 0)
			return rc;
	}
	return send_early(s);
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
send_pause(struct xmig_send *s)
{
	int rc;

	if ((rc = s->b->ops->pause(s->b)) != 0) {
		send_fail(s, rc, "pausing the domain: %s",
		    backend_errmsg(s->b));
		return rc;
	}
	s->paused = 1;
	s->t_pause = now_ns();
	send_debug(s, "+%.1f ms: source paused", send_ms(s));
	return 0;
}

/*
 * A backend whose pause is slow (Xen: the guest's cooperative suspend)
 * pauses on a thread while the last live pass drains, so the guest's
 * freeze overlaps octets that must leave anyway; the backend's threading
 * rule allows pause beside unmap.  The event loop learns the end through
 * a pipe; send_pause_join collects the thread on every path.
 */
static void *
send_pause_main(void *arg)
{
	struct xmig_send *s = arg;
	char c = 1;

	s->pause_rc = s->b->ops->pause(s->b);
	s->pause_t = now_ns();
	if (write(s->pause_pipe[1], &c, 1) < 0) {
		/* the loop also joins at its end */
	}
	return NULL;
}

static void
send_pause_join(struct xmig_send *s)
{
	if (s->pause_busy != 1)
		return;
	pthread_join(s->pause_thr, NULL);
	s->pause_busy = 2;
	if (s->pause_rc == 0) {
		s->paused = 1;
		s->t_pause = s->pause_t;
	}
}

static int send_stop_and_copy(struct xmig_send *s);
static void send_throttle_up(struct xmig_send *s);
static int send_produce(struct xmig_send *s);
static int send_checkpoint(struct xmig_send *s);
static void send_next_pass(struct xmig_send *s);

static void
send_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;

	(void)fd;
	(void)what;
	send_pause_join(s);
	if (s->pause_poll != NULL)
		evtimer_del(s->pause_poll);
	if (s->rc != 0)
		return;
	if (s->pause_rc != 0) {
		send_fail(s, s->pause_rc, "pausing the domain: %s",
		    backend_errmsg(s->b));
		return;
	}
	send_debug(s, "+%.1f ms: source paused (%llu pages of the pass under "
	    "way not queued yet, %zu octets queued)", send_ms(s),
	    (unsigned long long)s->pass_left, evbuffer_get_length(s->out));
	if (s->phase == SP_LIVE) {
		/* What this pass has not queued yet joins the final pass. */
		size_t w;

		for (w = 0; w < s->nr_words; w++)
			s->dirty[w] |= s->pass_set[w];
		s->phase = SP_PREPAUSE;
	}
	if (s->phase == SP_PREPAUSE) {
		/* Paused: queued octets no longer wait for anything. */
		bufferevent_setwatermark(s->bev, EV_WRITE, SEND_LOW_WATER, 0);
		if (send_stop_and_copy(s) == 0)
			send_produce(s);
	}
}

/*
 * The output drained while the pause still runs: whatever the guest
 * dirtied since the last look goes now, live, as one more pass.
 */
static int
send_pause_more(struct xmig_send *s)
{
	int64_t nd = s->b->ops->read_dirty(s->b, s->dirty);

	if (nd < 0) {
		send_fail(s, (int)nd, "reading dirty pages: %s",
		    backend_errmsg(s->b));
		return (int)nd;
	}
	if (bitmap_count(s->dirty, s->nr_words) == 0) {
		struct timeval tv = { 0, SEND_PAUSE_POLL_MS * 1000 };

		if (s->pause_poll != NULL)	/* look again soon */
			evtimer_add(s->pause_poll, &tv);
		return 0;
	}
	s->phase = SP_LIVE;
	bufferevent_setwatermark(s->bev, EV_WRITE, SEND_LOW_WATER, 0);
	send_next_pass(s);
	return 0;
}

static void
send_pause_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;

	(void)fd;
	(void)what;
	if (s->rc != 0 || s->pause_busy != 1 || s->phase != SP_PREPAUSE ||
	    evbuffer_get_length(s->out) != 0)
		return;
	if (send_pause_more(s) == 0 && s->phase == SP_LIVE)
		send_produce(s);
}

/* Nothing dirty now: look again when drained, or in a moment. */
static void
send_pause_idle(struct xmig_send *s)
{
	struct timeval tv = { 0, SEND_PAUSE_POLL_MS * 1000 };

	s->phase = SP_PREPAUSE;
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	if (s->pause_poll != NULL)
		evtimer_add(s->pause_poll, &tv);
}

/* 0 if the pause runs on its thread now; else the caller pauses later. */
static int
send_pause_begin(struct xmig_send *s)
{
	if (!s->b->pause_threaded || s->base == NULL || s->bev == NULL ||
	    pipe2(s->pause_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	s->pause_ev = event_new(s->base, s->pause_pipe[0], EV_READ,
	    send_pause_cb, s);
	if (s->pause_ev == NULL || event_add(s->pause_ev, NULL) != 0 ||
	    pthread_create(&s->pause_thr, NULL, send_pause_main, s) != 0) {
		if (s->pause_ev != NULL)
			event_free(s->pause_ev);
		s->pause_ev = NULL;
		close(s->pause_pipe[0]);
		close(s->pause_pipe[1]);
		return -1;
	}
	s->pause_busy = 1;
	s->pause_poll = evtimer_new(s->base, send_pause_poll_cb, s);
	send_debug(s, "+%.1f ms: pausing the source while %zu octets drain "
	    "and live passes go on", send_ms(s), evbuffer_get_length(s->out));
	return 0;
}

static void
send_pause_free(struct xmig_send *s)
{
	send_pause_join(s);
	if (s->pause_poll != NULL) {
		event_free(s->pause_poll);
		s->pause_poll = NULL;
	}
	if (s->pause_ev != NULL) {
		event_free(s->pause_ev);
		s->pause_ev = NULL;
		close(s->pause_pipe[0]);
		close(s->pause_pipe[1]);
	}
}

/* Make s->dirty the set the next pass sends. */
static void
send_next_pass(struct xmig_send *s)
{
	uint64_t *tmp = s->pass_set;

	send_streams_pass_end(s, s->iteration, 0);
	s->pass_set = s->dirty;
	s->dirty = tmp;
	memset(s->dirty, 0, s->nr_words * 8);
	s->pass_left = bitmap_count(s->pass_set, s->nr_words);
	s->cursor = 0;
	s->iteration++;
	s->pass_t0 = now_ns();
	s->pass_drained0 = s->drained;
	s->pass_pages0 = s->pages_sent;
	send_debug(s, "pass %u%s: %llu pages to send", s->iteration,
	    s->phase == SP_FINAL ? " (stop-and-copy)" : "",
	    (unsigned long long)s->pass_left);
}

/* Pause the domain, collect the last dirty pages, start the final pass. */
static int
send_stop_and_copy(struct xmig_send *s)
{
	int64_t nd;
	int rc;

	if (!s->paused && (rc = send_pause(s)) != 0)
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
send_end_of_pass(struct xmig_send *s)
{
	uint64_t t = now_ns();
	double el = (double)(t - s->pass_t0) / 1e9;
	double expected_ms;
	int64_t nd;
	int converged, again;

	if (s->tx != NULL)
		s->drained += streams_tx_take_sent(s->tx);
	if (el > 0 && s->drained > s->pass_drained0)
		s->bw = (double)(s->drained - s->pass_drained0) / el;
	nd = s->b->ops->read_dirty(s->b, s->dirty);
	if (nd < 0) {
		send_fail(s, (int)nd, "reading dirty pages: %s",
		    backend_errmsg(s->b));
		return (int)nd;
	}
	nd = (int64_t)bitmap_count(s->dirty, s->nr_words);
	if (s->pause_busy == 1) {
		/*
		 * The guest is being suspended (send_pause_begin): copy what
		 * it dirtied meanwhile, live, until it stops; the final pass
		 * takes only what is left then.
		 */
		send_debug(s, "+%.1f ms: pass %u: %llu pages queued while the "
		    "source pauses; %lld dirty pages found", send_ms(s),
		    s->iteration, (unsigned long long)(s->pages_sent -
		    s->pass_pages0), (long long)nd);
		if (nd > 0)
			send_next_pass(s);
		else
			send_pause_idle(s);	/* send_pause_cb goes on */
		return 0;
	}
	s->remaining = (uint64_t)nd * s->page_size;
	s->dirty_rate = el > 0 ? (double)s->remaining / el : 0;
	expected_ms = s->remaining == 0 ? 0 : s->bw > 0 ?
	    (double)s->remaining * 1000.0 / s->bw : 1e9;

	/*
	 * Go round again while the expected downtime is above the limit, or
	 * while passes still halve what is left: a short pass now is cheaper
	 * than the same octets sent with the domain paused.
	 */
	converged = s->remaining == 0 || s->remaining * 2 > s->prev_remaining;
	s->prev_remaining = s->remaining;
	again = (expected_ms > s->o->downtime_limit_ms || !converged) &&
	    s->iteration < s->o->max_iterations;
	if (again && converged && expected_ms > s->o->downtime_limit_ms &&
	    s->iteration >= 2 && s->o->auto_converge)
		send_throttle_up(s);
	send_debug(s, "+%.1f ms: pass %u: %llu pages queued in %.1f ms (%llu "
	    "octets left meanwhile), throughput %.1f MiB/s; %lld dirty pages "
	    "found (%.1f MiB/s dirtied); expected downtime %.1f ms (limit "
	    "%.0f ms); next: %s", send_ms(s), s->iteration,
	    (unsigned long long)(s->pages_sent - s->pass_pages0), el * 1e3,
	    (unsigned long long)(s->drained - s->pass_drained0),
	    s->bw / 1048576.0, (long long)nd, s->dirty_rate / 1048576.0,
	    expected_ms, s->o->downtime_limit_ms, again ? (converged ?
	    "another pass" : "another pass (the dirty set still halves)") :
	    s->iteration >= s->o->max_iterations && (expected_ms >
	    s->o->downtime_limit_ms || !converged) ? "stop-and-copy "
	    "(--max-iterations reached)" : "stop-and-copy");
	if (again) {
		send_next_pass(s);
		return 0;
	}
	if (s->repl)	/* the first epoch ends the live copy */
		return send_checkpoint(s);
	if (send_pause_begin(s) == 0) {
		/* Live passes go on until the pause is done. */
		if (nd > 0)
			send_next_pass(s);
		else
			send_pause_idle(s);
		return 0;
	}
	if (s->tx != NULL && !streams_tx_idle(s->tx)) {
		/* The data streams drain first: send_streams_wake pauses. */
		s->phase = SP_PREPAUSE;
		return 0;
	}
	if (s->bev != NULL && evbuffer_get_length(s->out) > 0) {
		s->phase = SP_PREPAUSE;
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		return 0;
	}
	return send_stop_and_copy(s);
}

/*
 * Auto-converge: the dirty set no longer halves and the expected downtime
 * is above the limit, so the domain dirties about as fast as the link
 * carries.  Take 20 % of its speed, then 10 % more at each such pass, up
 * to 99 % (as QEMU does).  The throttle is lifted when the session ends,
 * so a source that resumes runs at full speed.
 */
static void
send_throttle_up(struct xmig_send *s)
{
	unsigned pct = s->throttle == 0 ? 20 : s->throttle + 10;

	if (pct > 99)
		pct = 99;
	if (s->b->ops->throttle == NULL || pct == s->throttle)
		return;
	if (s->b->ops->throttle(s->b, pct) != 0) {
		send_debug(s, "auto-converge: cannot throttle the domain: %s",
		    backend_errmsg(s->b));
		return;
	}
	s->throttle = pct;
	if (pct > s->throttle_max)
		s->throttle_max = pct;
	send_debug(s, "+%.1f ms: auto-converge: the domain runs at %u %% of "
	    "its speed", send_ms(s), 100 - pct);
}

static void
send_throttle_off(struct xmig_send *s)
{
	if (s->throttle != 0 && s->b->ops->throttle(s->b, 0) == 0)
		s->throttle = 0;
}

/*
 * The memory digest's hash: the one offered, unless an answer said
 * otherwise (a receiver that takes XMIG_F_XXH3 uses it even when its
 * answer comes late).
 */
static enum xmig_digest
send_digest_alg(const struct xmig_send *s)
{
	return s->r->backchannel && !(s->features & XMIG_F_XXH3) ?
	    XMIG_DIGEST_SHA256 : s->o->digest;
}

static void *
send_digest_main(void *arg)
{
	struct xmig_send *s = arg;

	s->digest_rc = digest_memory(s->b, s->info.nr_pages, s->page_size,
	    s->r->memory_alg, s->r->memory_digest);
	__atomic_store_n(&s->digest_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int
send_tail(struct xmig_send *s)
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
	s->end_offset = s->queued;	/* the whole forward stream */
	send_debug(s, "+%.1f ms: END queued; the stream is %llu octets, %llu "
	    "pages in %u passes", send_ms(s), (unsigned long long)s->queued,
	    (unsigned long long)s->pages_sent, s->iteration);
	/*
	 * Dirty tracking stays on until send_finish: switching it off costs
	 * a Xen source tens of milliseconds (its p2m is walked), which would
	 * delay the answer to RESTORED and so the guest's downtime.  The
	 * domain is paused; nothing is dirtied meanwhile.
	 */
	/*
	 * Memory is stable from here on: digest it beside the flush, with
	 * the hash offered unless an answer said otherwise (a receiver that
	 * takes XMIG_F_XXH3 uses it even when its answer comes late).
	 */
	s->r->memory_alg = send_digest_alg(s);
	if (s->o->no_digest)
		;
	else if (pthread_create(&s->digest_thr, NULL, send_digest_main, s) == 0)
		s->digest_started = 1;
	else
		send_digest_main(s);
	if (s->features & XMIG_F_HANDOVER) {
		s->phase = SP_HANDOVER;
		s->ho = HO_WAIT_RESTORED;
		send_wait(s, SEND_TIMEOUT(s) * 1000.0);
	} else
		s->phase = SP_FLUSH;
	return 0;
}

/* ---- replication (SPEC 15.4) ------------------------------------------ */

static void send_repl_poke(struct xmig_send *s);
static void send_flushed(struct xmig_send *s);

static void
send_ckpt_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;

	(void)fd;
	(void)what;
	s->ckpt_due = 1;
	send_repl_poke(s);
}

/*
 * The next epoch is due an interval after the last one was due, so late
 * wake-ups do not add up: after a stall the epochs missed are taken one
 * after another, up to SEND_CATCH_UP intervals; beyond that the schedule
 * starts again from now.
 */
static void
send_repl_arm(struct xmig_send *s)
{
	uint64_t iv = (uint64_t)s->o->replicate_ms * 1000000ULL;
	uint64_t now = now_ns(), due, left;

	s->ckpt_due_ns = s->ckpt_due_ns == 0 ? s->ckpt_t0 + iv :
	    s->ckpt_due_ns + iv;
	if (s->ckpt_due_ns + SEND_CATCH_UP * iv < now)
		s->ckpt_due_ns = now;
	due = s->ckpt_due_ns;
	left = due > now ? due - now : 0;
	struct timeval tv = { (time_t)(left / 1000000000ULL),
	    (suseconds_t)((left % 1000000000ULL) / 1000) };

	s->ckpt_due = 0;
	if (s->ckpt_timer == NULL && (s->ckpt_timer = evtimer_new(s->base,
	    send_ckpt_timer_cb, s)) == NULL) {
		s->ckpt_due = 1;	/* no timer: go as soon as drained */
		return;
	}
	evtimer_add(s->ckpt_timer, &tv);
}

/* Room in the staging buffer for n pages. */
static int
send_stage_grow(struct xmig_send *s, size_t n)
{
	size_t cap = s->stage_cap ? s->stage_cap : 1024;
	uint64_t *pfn;
	uint8_t *data;

	if (n <= s->stage_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if ((pfn = realloc(s->stage_pfn, cap * 8)) == NULL)
		return -ENOMEM;
	s->stage_pfn = pfn;
	if ((data = realloc(s->stage_data, cap * s->page_size)) == NULL)
		return -ENOMEM;
	s->stage_data = data;
	s->stage_cap = cap;
	return 0;
}

/*
 * Take an epoch: pause the domain, copy the pages dirtied since the last
 * one and the vcpu/platform state aside, resume it at once.  Sending
 * happens afterwards, with the domain running (Remus's speculative
 * execution); log-dirty stays on throughout.
 */
static int
send_checkpoint(struct xmig_send *s)
{
	const struct backend_ops *ops = s->b->ops;
	struct checkpoint_info ci;
	struct send_epoch *e;
	void *pages[WIRE_PAGE_DATA_MAX], *cookie;
	uint64_t t0 = now_ns(), bits;
	size_t nd = 0, i, j, n, w, ps = s->page_size;
	int64_t nr, outs = 0;
	const char *what = "";
	int rc, rrc;

	memset(&ci, 0, sizeof(ci));
	if ((rc = ops->pause(s->b)) != 0) {
		send_fail(s, rc, "pausing the domain for epoch %llu: %s",
		    (unsigned long long)s->epoch + 1, backend_errmsg(s->b));
		return rc;
	}
	if ((nr = ops->read_dirty(s->b, s->dirty)) < 0) {
		rc = (int)nr;
		what = "reading dirty pages";
		goto resume;
	}
	nd = (size_t)bitmap_count(s->dirty, s->nr_words);
	if ((rc = send_stage_grow(s, nd)) != 0) {
		what = "staging the dirty pages";
		goto resume;
	}
	for (w = 0, n = 0; w < s->nr_words; w++)
		for (bits = s->dirty[w]; bits != 0; bits &= bits - 1)
			s->stage_pfn[n++] = (uint64_t)w * 64 +
			    (uint64_t)__builtin_ctzll(bits);
	memset(s->dirty, 0, s->nr_words * 8);
	for (i = 0; i < nd; i += n) {
		n = nd - i < WIRE_PAGE_DATA_MAX ? nd - i : WIRE_PAGE_DATA_MAX;
		cookie = NULL;
		rc = ops->map(s->b, s->stage_pfn + i, (unsigned)n, 0, pages,
		    &cookie);
		if (rc != 0) {
			what = "mapping dirty pages";
			goto resume;
		}
		for (j = 0; j < n; j++) {
			if (pages[j] != NULL)
				memcpy(s->stage_data + (i + j) * ps, pages[j],
				    ps);
			else	/* no data (a hole): digested as zeros too */
				memset(s->stage_data + (i + j) * ps, 0, ps);
		}
		ops->unmap(s->b, cookie, (unsigned)n);
	}
	state_list_free(&s->stage_state);
	if ((rc = ops->save_state(s->b, &s->stage_state)) != 0) {
		what = "reading vcpu state";
		goto resume;
	}
	if (s->outputs_held && (outs = ops->output_count(s->b)) < 0) {
		rc = (int)outs;
		what = "counting outputs";
		goto resume;
	}
	ci.memory_alg = send_digest_alg(s);
	if (s->o->epoch_digests && digest_memory(s->b, s->info.nr_pages,
	    s->page_size, ci.memory_alg, ci.memory_digest) == 0)
		ci.have_digest = 1;
resume:
	rrc = ops->resume(s->b);
	if (rc != 0) {
		send_fail(s, rc, "taking epoch %llu: %s: %s",
		    (unsigned long long)s->epoch + 1, what,
		    rc == -ENOMEM ? strerror(ENOMEM) : backend_errmsg(s->b));
		return rc;
	}
	if (rrc != 0) {
		send_fail(s, rrc, "resuming the domain after epoch %llu: %s",
		    (unsigned long long)s->epoch + 1, backend_errmsg(s->b));
		return rrc;
	}
	s->epoch++;
	e = &s->ring[s->epoch % SEND_EPOCHS_MAX];
	memset(e, 0, sizeof(*e));
	e->epoch = s->epoch;
	e->outputs = (uint64_t)outs;
	e->dirty = nd;
	e->pause_ms = (double)(now_ns() - t0) / 1e6;
	e->t_ms = (double)(t0 - s->t_start) / 1e6;
	e->workload = -1;
	if (ops->stats != NULL) {
		struct backend_stats bs = { 0 };

		ops->stats(s->b, &bs);
		e->workload = (int64_t)bs.pages_written;
	}
	s->stage_n = nd;
	s->stage_cur = 0;
	s->ckpt_t0 = t0;
	s->repl_on = 1;
	s->phase = SP_EPOCH;
	send_debug(s, "+%.1f ms: epoch %llu taken: %zu dirty pages, %llu "
	    "outputs in its state, paused %.2f ms", send_ms(s),
	    (unsigned long long)s->epoch, nd, (unsigned long long)outs,
	    e->pause_ms);
	if (s->cbs != NULL && s->cbs->checkpoint != NULL) {
		ci.event = CKPT_CAPTURED;
		ci.t_ms = e->t_ms;
		ci.workload_pages = e->workload;
		ci.epoch = e->epoch;
		ci.outputs = e->outputs;
		ci.pause_ms = e->pause_ms;
		ci.dirty_pages = e->dirty;
		s->cbs->checkpoint(s->cbs->arg, &ci);
	}
	return 0;
}

/* Replication ends in order: END after the last CHECKPOINT. */
static int
send_repl_end(struct xmig_send *s)
{
	int rc;

	if ((rc = send_record(s, REC_END, NULL, 0)) != 0) {
		send_fail(s, rc, "queueing END: %s", strerror(-rc));
		return rc;
	}
	s->end_offset = s->queued;
	s->phase = SP_FLUSH;
	send_debug(s, "+%.1f ms: replication stopped after epoch %llu (%llu "
	    "acknowledged): END queued", send_ms(s),
	    (unsigned long long)s->epoch,
	    (unsigned long long)s->epoch_acked);
	if (s->bev != NULL) {
		if (evbuffer_get_length(s->out) == 0)
			send_flushed(s);
		else
			bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	}
	return 0;
}

/* The staged epoch's pages are queued: its state, then CHECKPOINT. */
static int
send_epoch_close(struct xmig_send *s)
{
	struct send_epoch *e = &s->ring[s->epoch % SEND_EPOCHS_MAX];
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < s->stage_state.n; i++)
		rc = send_record(s, s->stage_state.recs[i].type,
		    s->stage_state.recs[i].body, s->stage_state.recs[i].len);
	if (rc == 0)
		rc = send_record(s, REC_CHECKPOINT, NULL, 0);
	if (rc != 0) {
		send_fail(s, rc, "queueing epoch %llu: %s",
		    (unsigned long long)s->epoch, strerror(-rc));
		return rc;
	}
	e->octets = s->queued;
	s->iteration++;
	if (s->stopping)
		return send_repl_end(s);
	s->phase = SP_PROTECT;
	send_repl_arm(s);
	return 0;
}

/* In SP_PROTECT: take the next epoch when it is due and there is room. */
static void
send_repl_poke(struct xmig_send *s)
{
	if (s->rc != 0 || s->phase != SP_PROTECT)
		return;
	if (s->stopping) {
		send_repl_end(s);
		return;
	}
	if (!s->ckpt_due || evbuffer_get_length(s->out) > SEND_LOW_WATER ||
	    s->epoch - s->epoch_acked >= SEND_EPOCHS_MAX - 1)
		return;		/* the write callback or an ack comes back */
	s->ckpt_due = 0;
	if (send_checkpoint(s) == 0)
		send_produce(s);
}

/* XMIG_CHECKPOINT_ACK: the backup committed an epoch; release outputs. */
static int
send_repl_ack(struct xmig_send *s, const struct xp_record *rec)
{
	struct xp_checkpoint_ack a;
	struct checkpoint_info ci;
	struct send_epoch *e;
	int64_t rel;

	if (control_checkpoint_ack_get(rec, &a) != 0)
		return -XP_ECALLBACK;
	if (!s->repl || a.epoch != s->epoch_acked + 1 || a.epoch > s->epoch) {
		send_fail(s, -EPROTO, "back-channel: the backup acknowledged "
		    "epoch %llu; expected %llu (%llu taken)",
		    (unsigned long long)a.epoch,
		    (unsigned long long)s->epoch_acked + 1,
		    (unsigned long long)s->epoch);
		return -XP_ECALLBACK;
	}
	e = &s->ring[a.epoch % SEND_EPOCHS_MAX];
	if (e->octets == 0 || a.octets != e->octets) {
		send_fail(s, -EPROTO, "the backup committed epoch %llu at "
		    "stream octet %llu, but its CHECKPOINT ends at octet %llu: "
		    "damaged in transit", (unsigned long long)a.epoch,
		    (unsigned long long)a.octets,
		    (unsigned long long)e->octets);
		return -XP_ECALLBACK;
	}
	s->epoch_acked = a.epoch;
	rel = (int64_t)e->outputs;
	if (s->outputs_held && (rel = s->b->ops->output_release(s->b,
	    e->outputs)) < 0)
		rel = 0;
	s->r->epochs_acked = a.epoch;
	s->r->outputs_released = (uint64_t)rel;
	if (s->cbs != NULL && s->cbs->checkpoint != NULL) {
		memset(&ci, 0, sizeof(ci));
		ci.event = CKPT_ACKED;
		ci.t_ms = e->t_ms;
		ci.workload_pages = e->workload;
		ci.epoch = a.epoch;
		ci.outputs = (uint64_t)rel;
		ci.pause_ms = e->pause_ms;
		ci.dirty_pages = e->dirty;
		ci.octets = e->octets;
		s->cbs->checkpoint(s->cbs->arg, &ci);
	}
	send_repl_poke(s);
	return 0;
}

/*
 * Produce records until the output holds SEND_HIGH_WATER octets or the
 * stream is fully queued.
 */
static int
send_produce(struct xmig_send *s)
{
	uint64_t pfns[WIRE_PAGE_DATA_MAX];
	unsigned n;
	int rc;

	if (s->zp.block_t0 != 0) {
		/* The output drained enough to go on: it was full till now. */
		s->zp.blocked_ns += now_ns() - s->zp.block_t0;
		s->zp.block_t0 = 0;
	}
	while (s->rc == 0 && evbuffer_get_length(s->out) < SEND_HIGH_WATER) {
		switch (s->phase) {
		case SP_HEADERS:
			if ((rc = send_headers(s)) != 0) {
				send_fail(s, rc, "queueing the headers: %s",
				    strerror(-rc));
				return rc;
			}
			break;
		case SP_NEGOTIATE:
		case SP_PREPAUSE:
		case SP_PROTECT:
			return 0;
		case SP_EPOCH:
			if (s->stage_cur < s->stage_n) {
				void *pp[WIRE_PAGE_DATA_MAX];
				unsigned i;

				n = s->stage_n - s->stage_cur <
				    WIRE_PAGE_DATA_MAX ? (unsigned)(s->stage_n -
				    s->stage_cur) : WIRE_PAGE_DATA_MAX;
				for (i = 0; i < n; i++)
					pp[i] = s->stage_data + (s->stage_cur +
					    i) * s->page_size;
				rc = send_page_ptrs(s, s->stage_pfn +
				    s->stage_cur, pp, NULL, n, NULL);
				if (rc != 0) {
					send_fail(s, rc, "sending epoch %llu: "
					    "%s", (unsigned long long)s->epoch,
					    strerror(-rc));
					return rc;
				}
				s->stage_cur += n;
				break;
			}
			if ((rc = send_epoch_close(s)) != 0)
				return rc;
			break;
		case SP_STATIC:
			if ((rc = send_static(s)) != 0)
				return rc;
			if (s->repl && s->b->ops->output_hold != NULL &&
			    s->b->ops->output_count != NULL &&
			    s->b->ops->output_release != NULL) {
				/* Outputs wait for the epoch that made them. */
				if ((rc = s->b->ops->output_hold(s->b, 1)) != 0) {
					send_fail(s, rc, "holding the domain's "
					    "outputs: %s", backend_errmsg(s->b));
					return rc;
				}
				s->outputs_held = 1;
			}
			if (s->o->live || s->repl) {
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
			s->pass_pages0 = s->pages_sent;
			send_debug(s, "pass 1%s: %llu pages to send",
			    s->phase == SP_FINAL ? " (stop-and-copy)" : "",
			    (unsigned long long)s->pass_left);
			break;
		case SP_LIVE:
		case SP_FINAL:
			if (s->tx != NULL && !streams_tx_room(s->tx))
				return 0;	/* send_streams_wake goes on */
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
				if ((rc = s->tx != NULL ?
				    send_streams_pages(s, pfns, n) :
				    send_pages(s, pfns, n)) != 0) {
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
			} else {
				send_debug(s, "+%.1f ms: pass %u (stop-and-copy): "
				    "%llu pages queued in %.1f ms", send_ms(s),
				    s->iteration, (unsigned long long)
				    (s->pages_sent - s->pass_pages0),
				    (double)(now_ns() - s->pass_t0) / 1e6);
				send_streams_pass_end(s, s->iteration, 1);
				s->phase = SP_TAIL;
			}
			break;
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
	if (s->rc == 0 && s->zcodec != 0 &&
	    evbuffer_get_length(s->out) >= SEND_HIGH_WATER)
		s->zp.block_t0 = now_ns();	/* full: the link is behind */
	return 0;
}

/* ---- the event-driven sink -------------------------------------------- */

static void
send_drain_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct xmig_send *s = arg;

	(void)buf;
	s->drained += info->n_deleted;
	if (s->zp.n > 0)
		send_zp_drained(s);
}

/* Arm the one timer that bounds every wait for the receiver. */
static void send_wait_cb(evutil_socket_t fd, short what, void *arg);
static void send_flushed(struct xmig_send *s);

static void
send_wait(struct xmig_send *s, double ms)
{
	struct timeval tv;

	if (s->sync_file)
		return;
	if (s->wait_timer == NULL &&
	    (s->wait_timer = evtimer_new(s->base, send_wait_cb, s)) == NULL)
		return;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms - (double)tv.tv_sec * 1000) * 1000);
	evtimer_add(s->wait_timer, &tv);
}

static void
send_done(struct xmig_send *s)
{
	if (s->t_end == 0)
		s->t_end = now_ns();
	s->phase = SP_DONE;
	if (s->wait_timer != NULL)
		evtimer_del(s->wait_timer);
	send_finish_soon(s, s->tls_closing ? 100 : 0);
}

/* No answer in time: the window of section 13.4 decides what follows. */
static void
send_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;

	if (s->phase == SP_STOPPING) {
		send_done(s);	/* the backup did not close: no matter */
		return;
	}
	if (s->phase == SP_NEGOTIATE && (s->features & XMIG_F_PARALLEL)) {
		send_fail(s, -ETIMEDOUT, "the receiver took --streams %u but "
		    "did not say where to connect them (no XMIG_STREAMS within "
		    "%.0f ms)", s->o->streams, s->o->negotiate_timeout_ms);
		return;
	}
	if (s->phase == SP_NEGOTIATE) {
		if (s->o->query) {
			send_fail(s, -ETIMEDOUT, "the receiver did not answer "
			    "the query within %.0f ms",
			    s->o->negotiate_timeout_ms);
			return;
		}
		if (s->repl) {
			send_fail(s, -ETIMEDOUT, "the receiver did not answer "
			    "the back-channel offer within %.0f ms: replication "
			    "needs a backup that acknowledges epochs",
			    s->o->negotiate_timeout_ms);
			return;
		}
		if (s->o->require_backchannel) {
			send_fail(s, -ETIMEDOUT, "the receiver did not answer "
			    "the back-channel offer within %.0f ms (an older "
			    "receiver, or Xen's own restore?) and "
			    "--require-backchannel was given",
			    s->o->negotiate_timeout_ms);
			return;
		}
		/* One-way: write the plain stream, nothing more. */
		send_debug(s, "+%.1f ms: no XMIG_REPLY within %.0f ms: one-way "
		    "(a late answer still enables the handover)", send_ms(s),
		    s->o->negotiate_timeout_ms);
		s->features = 0;
		s->late = LATE_WAITING;
		s->phase = SP_STATIC;
		send_produce(s);
		return;
	}
	if (s->phase == SP_FLUSH && s->late == LATE_GRACE) {
		send_flushed(s);	/* no late answer either: one-way */
		return;
	}
	switch (s->ho) {
	case HO_WAIT_RESTORED:
		send_fail(s, -ETIMEDOUT, "the receiver did not report the "
		    "domain restored within %.0f s", SEND_TIMEOUT(s));
		break;
	case HO_WAIT_RUNNING:
		s->unconfirmed = 1;
		send_fail(s, -ETIMEDOUT, "GO was sent but the receiver did "
		    "not report the domain running within %.0f s: the source "
		    "stays paused; the receiver's report decides which copy "
		    "to keep", SEND_TIMEOUT(s));
		break;
	case HO_WAIT_DIGESTS:
		send_done(s);		/* handed over; digests not compared */
		break;
	default:
		break;
	}
}

/* XMIG_HANDOVER on the forward direction, after END. */
static int
send_handover(struct xmig_send *s, uint32_t command)
{
	struct xp_handover h = { .command = command };
	struct xp_buf buf = { 0 };
	int rc;

	rc = control_handover_put(&buf, &h);
	if (rc == 0)
		rc = bufferevent_write(s->bev, buf.data, buf.len) == 0 ? 0 :
		    -ENOMEM;
	buf_free(&buf);
	return rc < 0 ? -ENOMEM : 0;
}

static void send_tls_close(struct xmig_send *s);

static int
send_bc_reply(struct xmig_send *s, const struct xp_record *rec)
{
	struct xp_reply r;
	uint32_t offered = send_offer(s);
	char txt[sizeof(s->err)];

	if ((s->phase != SP_NEGOTIATE && s->late == LATE_NO) ||
	    control_reply_get(rec, &r) != 0) {
		send_fail(s, -EPROTO, "back-channel: unexpected XMIG_REPLY");
		return -XP_ECALLBACK;
	}
	if (s->o->query && s->phase == SP_NEGOTIATE) {
		/* Only asked (SPEC 13.2): the answer is the result. */
		if (r.session_id != s->session_id) {
			send_fail(s, -EPROTO, "back-channel: XMIG_REPLY names "
			    "another session");
			return -XP_ECALLBACK;
		}
		s->r->query = 1;
		s->r->peer_result = r.result;
		s->r->peer_max_memory = r.max_memory;
		xp_escape(s->r->error, sizeof(s->r->error), r.message,
		    r.message_len);
		s->answered = 1;
		send_done(s);
		return -XP_ECALLBACK;
	}
	if (r.result != XMIG_REPLY_OK) {
		send_fail(s, -EPROTO, "the receiver cannot take this domain: "
		    "%s", xp_escape(txt, sizeof(txt), r.message,
		    r.message_len));
		return -XP_ECALLBACK;
	}
	if ((r.features & ~offered) != 0) {
		send_fail(s, -EPROTO, "back-channel: the receiver accepted "
		    "features 0x%x that were not offered", r.features);
		return -XP_ECALLBACK;
	}
	if (r.session_id != s->session_id) {
		send_fail(s, -EPROTO, "back-channel: XMIG_REPLY names another "
		    "session (0x%llx, not 0x%llx)",
		    (unsigned long long)r.session_id,
		    (unsigned long long)s->session_id);
		return -XP_ECALLBACK;
	}
	if ((r.restorable & s->needed) != s->needed) {
		uint64_t missing = s->needed & ~r.restorable;

		send_fail(s, -EPROTO, "the receiver cannot restore %s records, "
		    "which this domain needs",
		    record_type_name((uint32_t)__builtin_ctzll(missing)));
		return -XP_ECALLBACK;
	}
	if (s->repl && !(r.features & XMIG_F_CHECKPOINTS)) {
		send_fail(s, -EPROTO, "the receiver does not take checkpointed "
		    "streams: it cannot be a backup for --replicate");
		return -XP_ECALLBACK;
	}
	if (s->wait_timer != NULL)
		evtimer_del(s->wait_timer);
	s->r->backchannel = 1;
	if (s->late != LATE_NO) {
		/*
		 * The answer came after we went one-way: the stream is
		 * plain, but acks and the handover still work.
		 */
		s->late = LATE_NO;
		s->features = r.features & (XMIG_F_ACKS | XMIG_F_HANDOVER |
		    XMIG_F_XXH3);
		send_debug(s, "+%.1f ms: a late XMIG_REPLY: the stream stays "
		    "plain; acks %s, handover %s", send_ms(s),
		    (s->features & XMIG_F_ACKS) ? "on" : "off",
		    (s->features & XMIG_F_HANDOVER) ? "on" : "off");
		if (s->phase == SP_FLUSH && (s->features & XMIG_F_HANDOVER)) {
			/* END is queued or out: go on to the handover. */
			s->phase = SP_HANDOVER;
			s->ho = HO_WAIT_RESTORED;
			send_wait(s, SEND_TIMEOUT(s) * 1000.0);
		}
		return 0;
	}
	s->features = r.features;
	if (!(s->features & XMIG_F_CHECKSUM))
		s->recopt &= (uint16_t)~WIRE_REC_OPT_CHECKSUM;
	if (s->features & XMIG_F_DEFLATE)
		s->zcodec = WIRE_REC_OPT_DEFLATE;
	if (s->features & XMIG_F_ZSTD)
		s->zcodec = WIRE_REC_OPT_ZSTD;
	s->zero_elide = (s->features & XMIG_F_ZERO_PAGES) != 0;
	if ((s->features & XMIG_F_DELTA) && send_delta_start(s) != 0)
		send_debug(s, "no memory for the delta cache: pages go in "
		    "full");
	s->r->backchannel = 1;
	if (xmig_cbs_log_on(s->cbs, XMIG_LOG_DEBUG)) {
		char f[128], o[128], mem[48];

		if (r.max_memory != 0)
			snprintf(mem, sizeof(mem), "%llu MiB",
			    (unsigned long long)(r.max_memory >> 20));
		else
			snprintf(mem, sizeof(mem), "no limit");
		send_debug(s, "+%.1f ms: agreed: back-channel with %s (offered "
		    "%s); compression %s; zero pages %s; checksums %s; the "
		    "receiver reads records up to %u octets, hosts %s",
		    send_ms(s), xmig_features_str(s->features, f, sizeof(f)),
		    xmig_features_str(offered, o, sizeof(o)),
		    s->zcodec == WIRE_REC_OPT_ZSTD ? "zstd" :
		    s->zcodec == WIRE_REC_OPT_DEFLATE ? "zlib" : "none",
		    s->zero_elide ? "without data" : "as data",
		    (s->recopt & WIRE_REC_OPT_CHECKSUM) ? "on" : "off",
		    r.max_record_len, mem);
	}
	if (send_streams_reply(s))
		return 0;	/* XMIG_STREAMS follows: send_bc_streams */
	s->phase = SP_STATIC;
	return 0;
}

static int
send_bc_status(struct xmig_send *s, const struct xp_record *rec)
{
	struct xp_status st;
	char txt[sizeof(s->err)];

	if (control_status_get(rec, &st) != 0)
		return -XP_ECALLBACK;
	if (st.state == XMIG_STATUS_FAILED) {
		send_fail(s, -EPROTO, "the receiver could not restore the "
		    "domain: %s", xp_escape(txt, sizeof(txt), st.message,
		    st.message_len));
		return -XP_ECALLBACK;
	}
	if (st.state == XMIG_STATUS_RESTORED && s->ho == HO_WAIT_RESTORED &&
	    (s->features & XMIG_F_ACKS) && s->acked != s->end_offset) {
		/*
		 * The receiver applied another stream than we sent (octets
		 * lost or added in transit, framing intact): no GO.
		 */
		send_handover(s, XMIG_HANDOVER_ABORT);
		send_fail(s, -EPROTO, "the receiver applied %llu octets of "
		    "stream, %llu were sent: damaged in transit; handover "
		    "aborted", (unsigned long long)s->acked,
		    (unsigned long long)s->end_offset);
		return -XP_ECALLBACK;
	}
	if (st.state == XMIG_STATUS_RESTORED && s->ho == HO_WAIT_RESTORED) {
		/* The point of no return: from here the source waits. */
		if (send_handover(s, XMIG_HANDOVER_GO) != 0) {
			send_fail(s, -ENOMEM, "out of memory");
			return -XP_ECALLBACK;
		}
		send_debug(s, "+%.1f ms: RESTORED (%llu of %llu octets applied "
		    "there); GO sent", send_ms(s),
		    (unsigned long long)s->acked,
		    (unsigned long long)s->end_offset);
		s->ho = HO_WAIT_RUNNING;
		send_wait(s, SEND_TIMEOUT(s) * 1000.0);
		return 0;
	}
	if (st.state == XMIG_STATUS_RUNNING && s->ho == HO_WAIT_RUNNING) {
		s->t_end = now_ns();
		send_debug(s, "+%.1f ms: RUNNING; the domain was paused for "
		    "%.1f ms", send_ms(s), s->t_pause != 0 ?
		    (double)(s->t_end - s->t_pause) / 1e6 : 0.0);
		s->ho = HO_WAIT_DIGESTS;
		send_wait(s, SEND_TIMEOUT(s) * 1000.0);
		return 0;
	}
	send_fail(s, -EPROTO, "back-channel: unexpected status %u", st.state);
	return -XP_ECALLBACK;
}

static int
send_bc_record(void *arg, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xmig_send *s = arg;
	struct xp_ack ack;
	struct xp_error_msg em;
	struct xp_digests dg;
	char txt[sizeof(s->err)];

	(void)st;
	switch (rec->type) {
	case REC_XMIG_REPLY:
		return send_bc_reply(s, rec);
	case REC_XMIG_ACK:
		if (control_ack_get(rec, &ack) == 0)
			s->acked = ack.octets;
		return 0;
	case REC_XMIG_ERROR:
		if (control_error_get(rec, &em) != 0)
			return -XP_ECALLBACK;
		if (em.offset == 0 && em.record_index == 0 &&
		    em.record_type == 0) {
			send_fail(s, -EPROTO, "the receiver refused: %s",
			    xp_escape(txt, sizeof(txt), em.message,
			    em.message_len));
			return -XP_ECALLBACK;
		}
		send_fail(s, -EPROTO, "the receiver rejected the stream: "
		    "record %llu (%s) at offset %llu: %s",
		    (unsigned long long)em.record_index,
		    record_type_name(em.record_type),
		    (unsigned long long)em.offset,
		    xp_escape(txt, sizeof(txt), em.message, em.message_len));
		return -XP_ECALLBACK;
	case REC_XMIG_STATUS:
		return send_bc_status(s, rec);
	case REC_XMIG_CHECKPOINT_ACK:
		return send_repl_ack(s, rec);
	case REC_XMIG_STREAMS:
		return send_bc_streams(s, rec);
	case REC_XMIG_DIGESTS:
		if (s->ho != HO_WAIT_DIGESTS || control_digests_get(rec, &dg))
			return -XP_ECALLBACK;
		memcpy(s->peer_mem, dg.memory_digest, 32);
		memcpy(s->peer_vcpu, dg.vcpu_sha256, 32);
		s->have_peer_digests = 1;
		s->ho = HO_DONE;
		send_debug(s, "+%.1f ms: DIGESTS received (%llu pages)",
		    send_ms(s), (unsigned long long)dg.nr_pages);
		if (s->tls_ctx != NULL)
			send_tls_close(s);
		send_done(s);
		return XP_PAUSE;
	default:
		return -XP_ECALLBACK;
	}
}

/*
 * TLS: the close_notify after the last message; when it is queued,
 * send_done gives it 100 ms on the loop to leave before the end.
 */
static void
send_tls_close(struct xmig_send *s)
{
	char err[128];

	if (xport_tls_shutdown(s->bev, err, sizeof(err)) == 1)
		s->tls_closing = 1;
}

static void
send_flushed(struct xmig_send *s)
{
	/*
	 * One-way: the stream is out, nobody will confirm it.  The source
	 * stays paused (SPEC.md 13.4); close our side in order.  If we
	 * offered a back-channel and gave up waiting, its answer may still
	 * be on its way: wait once more as long, ready for the handover.
	 */
	if (s->late == LATE_WAITING && s->bc != NULL) {
		s->late = LATE_GRACE;
		send_wait(s, s->o->negotiate_timeout_ms);
		return;
	}
	if (s->stopping) {
		/* END is out: the backup discards its copy and closes. */
		if (s->tls_ctx != NULL)
			send_tls_close(s);
		else
			shutdown(s->fd, SHUT_WR);
		s->phase = SP_STOPPING;
		send_wait(s, SEND_STOP_WAIT_MS);
		return;
	}
	send_debug(s, "+%.1f ms: the stream is out, %llu octets; nobody will "
	    "confirm it", send_ms(s), (unsigned long long)s->drained);
	if (s->tls_ctx != NULL)
		send_tls_close(s);
	else if (s->conn)
		shutdown(s->fd, SHUT_WR);
	send_done(s);
}

static void
send_write_cb(struct bufferevent *bev, void *arg)
{
	struct xmig_send *s = arg;

	if (s->phase == SP_PREPAUSE && evbuffer_get_length(s->out) == 0) {
		if (s->pause_busy == 1) {
			if (send_pause_more(s) != 0 || s->phase == SP_PREPAUSE)
				return;	/* send_pause_cb goes on */
		} else {
			bufferevent_setwatermark(bev, EV_WRITE, SEND_LOW_WATER,
			    0);
			if (send_stop_and_copy(s) != 0)
				return;
		}
	}
	if (s->phase < SP_FLUSH)
		send_produce(s);
	if (s->phase == SP_PROTECT)
		send_repl_poke(s);
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
	struct xmig_send *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;

	if (s->bc == NULL) {
		/* Nothing is expected: no back-channel was offered. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (s->rc == 0 && s->phase != SP_DONE &&
	    (len = evbuffer_get_length(in)) > 0) {
		size_t want = parser_want(s->bc);
		ssize_t used;
		uint8_t *p;

		if (want == 0)
			break;
		if (want > len)
			want = len;
		if ((p = evbuffer_pullup(in, (ev_ssize_t)want)) == NULL)
			break;
		used = parser_feed(s->bc, p, want);
		if (used < 0) {
			if (s->rc == 0 && !s->answered)
				send_fail(s, -EPROTO, "back-channel: %s",
				    parser_error(s->bc)->msg);
			break;
		}
		evbuffer_drain(in, (size_t)used);
	}
	if (s->phase == SP_STATIC)
		send_produce(s);	/* the REPLY came: go on */
}

static void
send_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct xmig_send *s = arg;
	char why[256];

	if (what & BEV_EVENT_CONNECTED)
		return;		/* the TLS handshake is done */
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "the receiver stopped reading (no "
		    "progress for %.0f s, --timeout)", SEND_TIMEOUT(s));
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "the receiver closed the "
		    "connection");
	else
		xport_bev_error(bev, why, sizeof(why));
	if (s->phase == SP_DONE)
		return;
	if (s->phase == SP_STOPPING) {
		send_done(s);	/* the backup closed after END */
		return;
	}
	if (s->phase == SP_NEGOTIATE && (what & BEV_EVENT_EOF) &&
	    s->bc != NULL && parser_offset(s->bc) == 0) {
		/*
		 * The peer closed its direction without a word: a receiver
		 * that cannot answer (SPEC 13.2).  Go on one-way.
		 */
		bufferevent_disable(bev, EV_READ);
		if (s->wait_timer != NULL)
			evtimer_del(s->wait_timer);
		send_wait_cb(-1, 0, s);
		return;
	}
	switch (s->ho) {
	case HO_WAIT_DIGESTS:
		send_done(s);		/* handed over; digests not compared */
		return;
	case HO_WAIT_RUNNING:
		s->unconfirmed = 1;
		send_fail(s, -EPIPE, "%s after GO was sent: the source stays "
		    "paused; the receiver's report decides which copy to keep",
		    why);
		return;
	default:
		break;
	}
	if (s->phase == SP_FLUSH && !s->conn)
		send_fail(s, -EPIPE, "%s before the stream was complete", why);
	else
		send_fail(s, -EPIPE, "%s (%s); see its log", why,
		    s->phase < SP_TAIL ? "during the migration" :
		    "before the handover");
}

static void
send_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	send_progress(arg, 0);
}

/* The caller's cancel_fd is readable: stop as on any failure. */
static void
send_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;

	(void)fd;
	(void)what;
	if (s->repl_on && s->rc == 0 && s->phase < SP_FLUSH) {
		/* Replicating: stop in order, the domain runs on here. */
		if (!s->stopping)
			send_debug(s, "+%.1f ms: stop asked: replication ends "
			    "after epoch %llu", send_ms(s),
			    (unsigned long long)s->epoch);
		s->stopping = 1;
		send_repl_poke(s);
		return;
	}
	send_debug(s, "+%.1f ms: cancelled by the caller (phase %s)",
	    send_ms(s), send_phase_name[s->phase]);
	send_fail(s, -ECANCELED, "cancelled");
}

/* Outside the event loop: non-zero if cancel_fd is readable now. */
static int
send_cancelled(const struct xmig_send *s)
{
	struct pollfd p = { .fd = s->o->cancel_fd, .events = POLLIN };

	return s->o->cancel_fd >= 0 && poll(&p, 1, 0) > 0 &&
	    (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

/* Start the event-driven sink on s->fd: 0, or -errno after send_fail. */
static int
send_start_events(struct xmig_send *s)
{
	struct timeval tv = { 0, SEND_PROGRESS_MS * 1000 };

	s->bev = xport_bev_new(s->base, s->fd, s->tls_ctx, 0, s->host, s->err,
	    sizeof(s->err));
	if (s->bev == NULL) {
		close(s->fd);
		s->fd = -1;
		s->rc = -EIO;
		send_finish_soon(s, 0);
		return s->rc;
	}
	if (s->conn && s->o->backchannel) {
		struct xp_limits lim = { 0 };

		s->bc = parser_new_control(&lim, XP_CONTROL_BACK, 1,
		    send_bc_record, s);
		if (s->bc == NULL) {
			send_fail(s, -ENOMEM, "out of memory");
			return s->rc;
		}
	}
	/* libevent's default is 16 KiB per write(2): one call and one loop
	 * turn per 16 KiB.  Up to SEND_LOW_WATER at once instead. */
	bufferevent_set_max_single_write(s->bev, SEND_LOW_WATER);
	s->out = bufferevent_get_output(s->bev);
	evbuffer_add_cb(s->out, send_drain_cb, s);
	bufferevent_setcb(s->bev, send_read_cb, send_write_cb, send_event_cb,
	    s);
	bufferevent_setwatermark(s->bev, EV_WRITE, SEND_LOW_WATER, 0);
	{
		/* A receiver that stops reading must not hold us forever. */
		double t = SEND_TIMEOUT(s);
		struct timeval wt = { (time_t)t,
		    (suseconds_t)((t - (double)(time_t)t) * 1e6) };

		bufferevent_set_timeouts(s->bev, NULL, &wt);
	}
	if (s->o->bandwidth > 0) {
		size_t per_tick = (size_t)(s->o->bandwidth / 100);
		struct timeval tick = { 0, 10000 };

		if (per_tick < 4096)
			per_tick = 4096;
		/*
		 * A bucket of four ticks: a loop that runs a tick late (a
		 * loaded machine) spends the tokens it missed instead of
		 * losing them, so the average holds; a burst stays small.
		 */
		s->rl = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX,
		    EV_RATE_LIMIT_MAX, per_tick, per_tick * 4, &tick);
		if (s->rl == NULL ||
		    bufferevent_set_rate_limit(s->bev, s->rl) != 0) {
			send_fail(s, -ENOMEM, "out of memory");
			return s->rc;
		}
	}
	bufferevent_enable(s->bev, EV_WRITE);
	if (s->conn)
		bufferevent_enable(s->bev, EV_READ);
	s->timer = event_new(s->base, -1, EV_PERSIST, send_timer_cb, s);
	if (s->timer != NULL)
		evtimer_add(s->timer, &tv);
	if (send_cancelled(s))
		send_cancel_cb(-1, 0, s);
	else
		send_produce(s);
	return s->rc;
}

/* After the event-driven sink: what followed the loop. */
static void
send_stop_events(struct xmig_send *s)
{
	if (s->timer != NULL)
		event_free(s->timer);
	s->timer = NULL;
	if (s->rc != 0 && s->conn && s->tls_ctx == NULL && s->bev != NULL) {
		/*
		 * A receiver that has END takes an orderly close as one-way
		 * and starts the domain: after END, say ABORT first (it is
		 * all a socketpair can say), then reset a TCP connection.
		 */
		if (s->end_offset != 0 && !s->unconfirmed &&
		    (s->features & XMIG_F_HANDOVER)) {
			struct xp_handover h = { .command = XMIG_HANDOVER_ABORT };
			struct xp_buf buf = { 0 };

			evbuffer_drain(s->out, evbuffer_get_length(s->out));
			/* Best effort: the reset below says it too. */
			if (control_handover_put(&buf, &h) == 0)
				(void)!write(s->fd, buf.data, buf.len);
			buf_free(&buf);
		}
		xport_abort(s->fd);
	}
	if (s->bev != NULL) {
		bufferevent_free(s->bev);	/* drops queued page references */
		s->fd = -1;			/* closed with the bufferevent */
	}
	s->bev = NULL;
	s->out = NULL;
	if (s->rl != NULL)
		ev_token_bucket_cfg_free(s->rl);
	s->rl = NULL;
}

/* ---- the synchronous file sink ------------------------------------------ */

/*
 * A regular file (epoll cannot wait on one): a batch produced and written
 * per loop turn, so other sessions on the loop go on between batches.
 */
static void
send_file_step(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;
	struct timeval zero = { 0, 0 };

	(void)fd;
	(void)what;
	if (s->rc != 0 || s->phase == SP_DONE)
		return;
	if (send_cancelled(s)) {
		send_cancel_cb(-1, 0, s);
		return;
	}
	send_produce(s);
	while (s->rc == 0 && evbuffer_get_length(s->out) > 0) {
		int n = evbuffer_write(s->out, s->fd);

		if (n < 0 && errno != EINTR && errno != EAGAIN)
			send_fail(s, -errno, "write: %s", strerror(errno));
	}
	if (s->rc == 0 && s->phase == SP_FLUSH) {
		if (fsync(s->fd) != 0 && errno != EINVAL)
			send_fail(s, -errno, "fsync: %s", strerror(errno));
		s->t_end = now_ns();
		s->phase = SP_DONE;
	}
	send_progress(s, 0);
	if (s->rc != 0)
		return;		/* send_fail finishes */
	if (s->phase == SP_DONE)
		send_finish_soon(s, 0);
	else
		evtimer_add(s->step_ev, &zero);
}

static int
send_start_file(struct xmig_send *s)
{
	struct timeval zero = { 0, 0 };

	if ((s->out = evbuffer_new()) == NULL ||
	    (s->step_ev = evtimer_new(s->base, send_file_step, s)) == NULL) {
		send_fail(s, -ENOMEM, "out of memory");
		return s->rc;
	}
	evbuffer_add_cb(s->out, send_drain_cb, s);
	evtimer_add(s->step_ev, &zero);
	return 0;
}

/* ---- the driver ------------------------------------------------------- */

/* The connection to tcp:/tls: is up (or failed): go on. */
static void
send_connected(void *arg, int fd, int err, const char *errbuf)
{
	struct xmig_send *s = arg;

	s->connecting = NULL;
	if (fd < 0) {
		if (s->rc == 0) {
			s->rc = err < 0 ? err : -EIO;
			snprintf(s->err, sizeof(s->err), "%s", errbuf);
		}
		send_finish_soon(s, 0);
		return;
	}
	s->fd = fd;
	send_start_events(s);
}


static int
send_open_dest(struct xmig_send *s, const char *dest)
{
	struct xport_uri u;
	struct stat sb;
	int rc, fd;

	if ((rc = xport_parse(dest, &u, s->err, sizeof(s->err))) != 0)
		return s->rc = rc;
	switch (u.kind) {
	case XPORT_TLS:
		s->tls_ctx = xport_tls_ctx_new(&s->o->tls, 0, s->err,
		    sizeof(s->err));
		if (s->tls_ctx == NULL)
			return s->rc = -EINVAL;
		/* FALLTHROUGH */
	case XPORT_TCP:
		s->conn = 1;
		snprintf(s->host, sizeof(s->host), "%s", u.host);
		s->connecting = xport_connect_start(s->base, &u,
		    send_connected, s);
		if (s->connecting == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return s->rc = -ENOMEM;
		}
		return 0;
	case XPORT_EXEC:
		/* The caller runs the command: xmig_send_new_fd. */
		snprintf(s->err, sizeof(s->err), "%.400s: exec: needs the "
		    "caller to run the command (xmig_send_new_fd)", dest);
		return s->rc = -EINVAL;
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
			/*
			 * A fifo goes through the event loop: never block in
			 * write(), so a stalled reader still lets the timeout
			 * and cancel_fd act.  The open file is our own.
			 */
			if (!s->sync_file)
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) |
				    O_NONBLOCK);
			return 0;
		}
		if (snprintf(s->tmppath, sizeof(s->tmppath), "%s.xmig-XXXXXX",
		    u.path) >= (int)sizeof(s->tmppath)) {
			snprintf(s->err, sizeof(s->err), "%.400s: path too long",
			    u.path);
			return s->rc = -ENAMETOOLONG;
		}
		strcpy(s->path, u.path);
		/*
		 * An unnamed file in the target's directory: if we die, it
		 * dies with us.  It gets a name only once it is complete.
		 */
		{
			char dir[PATH_MAX];
			char *slash;

			strcpy(dir, u.path);
			slash = strrchr(dir, '/');
			if (slash == NULL)
				strcpy(dir, ".");
			else if (slash == dir)
				dir[1] = '\0';
			else
				*slash = '\0';
			fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
			if (fd >= 0) {
				s->anon = 1;
				s->fd = fd;
				s->sync_file = 1;
				return 0;
			}
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
	}
	return s->rc = -EINVAL;
}

static void
send_close_dest(struct xmig_send *s)
{
	if (s->fd > STDERR_FILENO && !s->anon)
		close(s->fd);
	if (!s->anon)
		s->fd = -1;
	if (s->tls_ctx != NULL) {
		xport_tls_ctx_free(s->tls_ctx);
		s->tls_ctx = NULL;
	}
	if (s->tmppath[0] == '\0')
		return;
	if (s->anon) {
		/* Name the finished file, then move the name into place. */
		char proc[64];
		int i, lrc;

		if (s->rc == 0) {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->fd);
			/*
			 * No file there yet: the complete file takes its name
			 * in one step, and nothing is ever left behind.
			 */
			if (linkat(AT_FDCWD, proc, AT_FDCWD, s->path,
			    AT_SYMLINK_FOLLOW) == 0) {
				close(s->fd);
				s->fd = -1;
				return;
			}
			if (errno != EEXIST) {
				s->rc = -errno;
				snprintf(s->err, sizeof(s->err), "naming %.400s: "
				    "%s", s->path, strerror(errno));
				close(s->fd);
				s->fd = -1;
				return;	/* the unnamed file goes with its fd */
			}
			/*
			 * Replacing a file: Linux cannot put an unnamed file
			 * over a name, so it gets a temporary name and is
			 * renamed over the old one at once.  A SIGKILL between
			 * those two calls leaves the complete new image under
			 * PATH.xmig-XXXXXX beside the intact old one (SPEC).
			 */
			for (i = 0, lrc = -1; i < 100 && lrc != 0; i++) {
				snprintf(s->tmppath, sizeof(s->tmppath),
				    "%.4000s.xmig-%06x", s->path,
				    (unsigned)(now_ns() + (uint64_t)i * 7919) &
				    0xffffff);
				lrc = linkat(AT_FDCWD, proc, AT_FDCWD,
				    s->tmppath, AT_SYMLINK_FOLLOW);
				if (lrc != 0 && errno != EEXIST)
					break;
			}
			/* Named: the rename follows with nothing between. */
			if (lrc == 0 && rename(s->tmppath, s->path) != 0) {
				s->rc = -errno;
				snprintf(s->err, sizeof(s->err), "rename %.200s "
				    "to %.200s: %s", s->tmppath, s->path,
				    strerror(errno));
				unlink(s->tmppath);
			} else if (lrc != 0) {
				s->rc = errno != 0 ? -errno : -EEXIST;
				snprintf(s->err, sizeof(s->err), "naming %.400s: "
				    "%s", s->path, strerror(-s->rc));
			}
		}
		close(s->fd);
		s->fd = -1;
		return;		/* renamed, or the unnamed file goes with its fd */
	}
	if (s->rc == 0 && rename(s->tmppath, s->path) != 0) {
		s->rc = -errno;
		snprintf(s->err, sizeof(s->err), "rename %.200s to %.200s: %s",
		    s->tmppath, s->path, strerror(errno));
	}
	if (s->rc != 0)
		unlink(s->tmppath);
}

/* The result, once, from the loop; s may be freed inside it. */
static void
send_result(struct xmig_send *s, int rc)
{
	s->finished = 1;
	if (s->cbs != NULL && s->cbs->result != NULL)
		s->cbs->result(s->cbs->arg, rc, s->r);
}

/*
 * Everything after the stream: the sink closed (the file renamed into
 * place), the digest joined, the source resumed on failure, the report.
 * Returns the session's rc.
 */
static void
send_teardown(struct xmig_send *s)
{
	if (s->torn_down)
		return;
	s->torn_down = 1;
	if (s->connecting != NULL) {
		xport_connect_cancel(s->connecting);
		s->connecting = NULL;
	}
	if (s->wait_timer != NULL)
		event_free(s->wait_timer);
	s->wait_timer = NULL;
	if (s->cancel != NULL)
		event_free(s->cancel);
	s->cancel = NULL;
	if (s->step_ev != NULL)
		event_free(s->step_ev);
	s->step_ev = NULL;
	send_streams_report(s);		/* every worker joined */
	if (s->sync_file) {
		if (s->out != NULL)
			evbuffer_free(s->out);
		s->out = NULL;
	} else
		send_stop_events(s);
	send_close_dest(s);
}

static int
send_finish(struct xmig_send *s)
{
	struct xmig_report *r = s->r;
	uint8_t dummy[32];
	uint64_t t_done;
	int rc;

	send_pause_free(s);	/* a failure resumes what it paused */
	if (s->ckpt_timer != NULL) {
		event_free(s->ckpt_timer);
		s->ckpt_timer = NULL;
	}
	send_teardown(s);
	if (s->outputs_held) {
		/* Replication is over: the domain's outputs flow again. */
		s->b->ops->output_hold(s->b, 0);
		s->outputs_held = 0;
	}
	if (s->digest_started) {
		pthread_join(s->digest_thr, NULL);
		s->digest_started = 0;
		if (s->digest_rc == 0)
			r->have_memory = 1;
	}
	if (s->tracking) {
		s->b->ops->disable_dirty(s->b);
		s->tracking = 0;
	}
	send_throttle_off(s);	/* a resumed source runs at full speed */
	if (s->rc != 0 && s->paused && !s->unconfirmed) {
		/* Never leave a failed source paused... */
		if (s->b->ops->resume(s->b) == 0)
			s->paused = 0;
	}
	/* ... but leave it paused while another copy may run. */
	send_streams_report(s);
	if (s->rc == 0)
		send_progress(s, 1);
	t_done = now_ns();
	if (s->t_end == 0)
		s->t_end = t_done;
	r->bytes = s->drained;
	r->pages_sent = s->pages_sent;
	r->zero_pages = s->zero_pages;
	r->page_octets = s->page_octets;
	r->page_wire = s->page_wire;
	r->page_compressed = s->page_compressed;
	send_delta_report(s, r);
	r->throttle_max = s->throttle_max;
	r->compression = s->zcodec == WIRE_REC_OPT_ZSTD ? "zstd" :
	    s->zcodec == WIRE_REC_OPT_DEFLATE ? "zlib" : NULL;
	r->iterations = s->iteration;
	r->duration_ms = (double)(t_done - s->t_start) / 1e6;
	if (s->t_pause != 0 && s->rc == 0) {
		r->have_downtime = 1;
		r->downtime_ms = (double)(s->t_end - s->t_pause) / 1e6;
	}
	r->throughput_mbps = s->t_end > s->t_start ? (double)s->drained * 8.0 /
	    1e6 / ((double)(s->t_end - s->t_start) / 1e9) : 0;
	if (s->dstate != NULL) {
		digest_state_final(s->dstate, s->rc == 0 || s->unconfirmed ?
		    r->vcpu_sha256 : dummy);
		r->have_vcpu = s->rc == 0 || s->unconfirmed;
		digest_state_free(s->dstate);
		s->dstate = NULL;
	}
	r->verified = -1;
	if (s->have_peer_digests && r->have_memory && r->have_vcpu)
		r->verified = memcmp(s->peer_mem, r->memory_digest, 32) == 0 &&
		    memcmp(s->peer_vcpu, r->vcpu_sha256, 32) == 0;
	if (s->rc == 0 && r->verified == 0) {
		s->rc = -EBADMSG;
		s->unconfirmed = 1;
		snprintf(s->err, sizeof(s->err), "the receiver's digests differ "
		    "from the source's: the source stays paused");
	}
	r->replicated = s->repl;
	r->workload_pages = -1;
	if (s->b->ops->stats != NULL) {
		struct backend_stats bs = { 0 };

		s->b->ops->stats(s->b, &bs);
		r->workload_pages = (int64_t)bs.pages_written;
	}
	if (s->rc == 0 && s->answered) {
		r->status = "answered";		/* a query */
		rc = 0;
	} else if (s->repl_on && s->rc == 0) {
		r->status = "stopped";	/* in order; the domain runs here */
		rc = 0;
	} else if (s->repl_on) {
		char why[sizeof(s->err)];

		snprintf(why, sizeof(why), "%s", s->err);
		snprintf(s->err, sizeof(s->err), "replication ended after "
		    "epoch %llu (%llu acknowledged): %.400s; the domain keeps "
		    "running here, unprotected",
		    (unsigned long long)s->epoch,
		    (unsigned long long)s->epoch_acked, why);
		r->status = "unprotected";
		rc = -ENOTCONN;
	} else if (s->rc == 0 && s->conn && !(s->features & XMIG_F_HANDOVER)) {
		/* One-way: delivered, not confirmed; the source waits. */
		r->status = "unconfirmed";
		rc = -EINPROGRESS;
	} else if (s->rc == 0 && !s->conn && s->tmppath[0] == '\0') {
		r->status = "unconfirmed";	/* a pipe: nobody answers */
		rc = -EINPROGRESS;
	} else if (s->rc == 0) {
		r->status = "completed";
		rc = 0;
	} else {
		r->status = s->unconfirmed ? "unconfirmed" : "failed";
		rc = s->unconfirmed ? -EINPROGRESS : s->rc;
	}
	if (s->rc != 0)
		snprintf(r->error, sizeof(r->error), "%s", s->err);
	return rc;
}

static void
send_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_send *s = arg;

	(void)fd;
	(void)what;
	if (s->finished)
		return;
	send_teardown(s);
	if (s->digest_started &&
	    !__atomic_load_n(&s->digest_done, __ATOMIC_ACQUIRE)) {
		/* The memory digest is still running: look again soon,
		 * without blocking the loop in pthread_join. */
		struct timeval tv = { 0, 5000 };

		evtimer_add(s->done_ev, &tv);
		return;
	}
	send_result(s, send_finish(s));
}

/* End the session from the loop (now, or after delay_ms). */
static void
send_finish_soon(struct xmig_send *s, int delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

	if (s->finished || s->done_ev == NULL)
		return;
	if (delay_ms > 0)
		evtimer_add(s->done_ev, &tv);
	else
		event_active(s->done_ev, EV_TIMEOUT, 0);
}

static struct xmig_send *
send_alloc(struct event_base *base, struct backend *b,
    const struct send_opts *o, const struct xmig_cbs *cbs)
{
	struct xmig_send *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->b = b;
	s->o = o;
	s->cbs = cbs;
	s->r = &s->report;
	s->r->role = "send";
	s->r->status = "failed";
	s->r->verified = -1;
	s->fd = -1;
	s->prev_remaining = UINT64_MAX;
	if ((s->done_ev = evtimer_new(base, send_finish_cb, s)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

struct xmig_send *
xmig_send_new(struct event_base *base, struct backend *b, const char *dest,
    const struct send_opts *o, const struct xmig_cbs *cbs)
{
	struct xmig_send *s = send_alloc(base, b, o, cbs);

	if (s != NULL)
		snprintf(s->dest, sizeof(s->dest), "%s", dest);
	return s;
}

struct xmig_send *
xmig_send_new_fd(struct event_base *base, struct backend *b, int fd,
    int two_way, const struct send_opts *o, const struct xmig_cbs *cbs)
{
	struct xmig_send *s = send_alloc(base, b, o, cbs);

	if (s == NULL)
		return NULL;
	s->fd_given = 1;
	s->fd = fd;
	s->conn = two_way != 0;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return s;
}

int
xmig_send_start(struct xmig_send *s)
{
	const struct send_opts *o = s->o;
	struct backend *b = s->b;
	int rc, to_file;

	if (s->started)
		return -EALREADY;
	s->started = 1;
	s->t_start = now_ns();
	if ((rc = b->ops->describe(b, &s->info)) != 0) {
		s->rc = rc;
		snprintf(s->err, sizeof(s->err), "describing the domain: %s",
		    backend_errmsg(b));
		send_finish_soon(s, 0);
		return 0;
	}
	s->page_size = 1u << s->info.page_shift;
	if (o->auto_converge && b->ops->throttle == NULL)
		xmig_cbs_log(s->cbs, XMIG_LOG_WARN, "auto-converge: the %s "
		    "backend cannot throttle a domain: passes as without it",
		    b->ops->name);
	s->r->nr_pages = s->info.nr_pages;
	s->repl = o->replicate_ms > 0;
	s->r->dialect = o->dialect == XP_XEN ? "xen" : "draftb";
	stream_init(&s->st, o->dialect, o->dialect == XP_DRAFTB &&
	    o->big_endian, s->info.arch, s->info.type, s->info.page_shift);
	if (o->dialect == XP_XEN) {
		/* The sim presents itself as saved by Xen 4.17. */
		s->st.xen_major = 4;
		s->st.xen_minor = 17;
	}
	s->recopt = o->dialect == XP_DRAFTB && o->checksum ?
	    WIRE_REC_OPT_CHECKSUM : 0;
	s->session_id = ((uint64_t)getpid() << 32) ^ now_ns() ^
	    (uint64_t)(uintptr_t)s;
	/* Files get extensions only when asked; connections when agreed. */
	s->zcodec = 0;
	s->zp.on = 1;
	s->zp.left = 1;	/* the first probe after one window */
	s->zero_elide = o->zero_pages == 1 && o->dialect == XP_DRAFTB;
	to_file = s->fd_given ? !s->conn : (strncmp(s->dest, "file:", 5) == 0 ||
	    strcmp(s->dest, "-") == 0);
	if (o->dialect == XP_DRAFTB && to_file)
		s->zcodec = o->compress;
	s->raw = malloc((size_t)WIRE_PAGE_DATA_MAX << s->info.page_shift);
	s->nr_words = (size_t)((s->info.nr_pages + 63) / 64);
	s->pass_set = calloc(s->nr_words ? s->nr_words : 1, 8);
	s->dirty = calloc(s->nr_words ? s->nr_words : 1, 8);
	s->dstate = digest_state_new();
	if (s->pass_set == NULL || s->dirty == NULL || s->dstate == NULL ||
	    s->raw == NULL) {
		send_fail(s, -ENOMEM, "out of memory");
		return 0;
	}
	if (o->cancel_fd >= 0) {
		s->cancel = event_new(s->base, o->cancel_fd, EV_READ,
		    send_cancel_cb, s);
		if (s->cancel == NULL || event_add(s->cancel, NULL) != 0) {
			send_fail(s, -ENOMEM, "out of memory");
			return 0;
		}
	}
	if (s->fd_given) {
		send_start_events(s);
		return 0;
	}
	if (send_open_dest(s, s->dest) != 0) {
		send_finish_soon(s, 0);
		return 0;
	}
	if (s->connecting != NULL)
		return 0;	/* send_connected goes on */
	/* A regular file is written as fast as it goes: --bandwidth paces
	 * sockets and pipes only (migrate-send --help says so). */
	if (s->sync_file)
		send_start_file(s);
	else
		send_start_events(s);
	return 0;
}

void
xmig_send_cancel(struct xmig_send *s)
{
	/*
	 * Too late once the stream is complete (the result is on its way)
	 * or the receiver runs the domain (RUNNING came: handed over; the
	 * digests are awaited as usual, so the result can say verified).
	 */
	if (s == NULL || !s->started || s->finished || s->torn_down ||
	    (s->phase == SP_DONE && s->rc == 0) || s->ho == HO_WAIT_DIGESTS)
		return;
	send_cancel_cb(-1, 0, s);
}

int
xmig_send_set_bandwidth(struct xmig_send *s, uint64_t bandwidth)
{
	struct ev_token_bucket_cfg *rl = NULL;
	struct timeval tick = { 0, 10000 };
	size_t per_tick = (size_t)(bandwidth / 100);

	if (s == NULL || s->bev == NULL || s->finished || s->torn_down)
		return 0;
	if (bandwidth > 0) {
		if (per_tick < 4096)
			per_tick = 4096;
		rl = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX,
		    EV_RATE_LIMIT_MAX, per_tick, per_tick, &tick);
		if (rl == NULL)
			return -ENOMEM;
	}
	if (bufferevent_set_rate_limit(s->bev, rl) != 0) {
		if (rl != NULL)
			ev_token_bucket_cfg_free(rl);
		return -ENOMEM;
	}
	if (s->rl != NULL)
		ev_token_bucket_cfg_free(s->rl);
	s->rl = rl;
	return 0;
}

void
xmig_send_free(struct xmig_send *s)
{
	if (s == NULL)
		return;
	if (s->started && !s->finished) {
		/* Stopped without a result: as a cancel. */
		if (s->rc == 0) {
			s->rc = -ECANCELED;
			snprintf(s->err, sizeof(s->err), "cancelled");
		}
		s->finished = 1;
		(void)send_finish(s);
	}
	if (s->done_ev != NULL)
		event_free(s->done_ev);
	if (s->fd_given && !s->started && s->fd >= 0)
		close(s->fd);
	streams_tx_free(s->tx);
	s->tx = NULL;
	parser_free(s->bc);
	buf_free(&s->zbuf);
	free(s->raw);
	send_delta_free(s);
	digest_state_free(s->dstate);
	free(s->pass_set);
	free(s->dirty);
	free(s->stage_pfn);
	free(s->stage_data);
	state_list_free(&s->stage_state);
	free(s);
}
