/*
 * engine/recv.c -- the receiving side: bytes from a socket, a pipe or a
 * file go through the one incremental parser in proto/, and each validated
 * record is applied to a target backend.  The dialect comes from the image
 * header; nothing is trusted before the parser has checked it.
 *
 * When the sender offers a back-channel (SPEC.md section 13) and the
 * transport has a way back (a socket, or stdout beside stdin), the
 * receiver answers XMIG_NEGOTIATE, acknowledges progress, reports errors,
 * and hands the domain over: RESTORED, then GO from the sender, then
 * RUNNING and the digests.  Without GO a restored copy is discarded.
 *
 * A socket is read by a session (struct xmig_recv) on the caller's
 * event_base, ending with one result callback from the loop; a file, a
 * pipe or the Xen paths' socket by xmig_recv_fd, synchronously, without a
 * loop.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "xmig.h"
#include "delta.h"
#include "streams.h"

#define RECV_READ_CHUNK		(1u << 20)
#define RECV_ACK_EVERY		(16u << 20)	/* stream octets between ACKs */
/* A stalled sender, and the wait for GO: --timeout, default 60 s. */
#define RECV_TIMEOUT(rv)	((rv)->o->timeout_s > 0 ? (rv)->o->timeout_s : 60.0)
#define RECV_FLUSH_TIMEOUT	5		/* s to flush a last message */
#define RECV_PROGRESS_NS	250000000ULL
/* A session's debug line, with the function it comes from. */
#define recv_debug(rv, ...)	xmig_cbs_debug((rv)->cbs, __VA_ARGS__)
/*
 * A refusing session (xmig_recv_refuse: "busy") reads one record of at
 * most RECV_BUSY_RECORD_MAX octets within RECV_BUSY_DEADLINE_MS, and
 * lingers as long again at most for its answer to leave (SPEC 9).
 */
#define RECV_BUSY_RECORD_MAX	4096u
#define RECV_BUSY_DEADLINE_MS	1000
/* Checkpointed streams (SPEC 15.4): defaults of the epoch bound and wait. */
#define RECV_EPOCH_BYTES_DEFAULT	(256ULL << 20)
#define RECV_FAILOVER_MIN_MS	200.0
/* Page data of at least this many octets goes straight to the pages. */
#define RECV_DIRECT_MIN		(64u << 10)

/* A page of a buffered epoch: its pfn, and where its data is (or none). */
struct recv_epage {
	uint64_t	pfn;
	uint64_t	off;		/* into ep_data; RECV_EPAGE_ZERO: zero */
};
#define RECV_EPAGE_ZERO		UINT64_MAX

enum recv_phase {
	RV_STREAM,	/* parsing the forward stream */
	RV_WAIT_GO,	/* END applied, RESTORED sent, waiting for GO */
	RV_RUNNING,	/* GO applied, RUNNING queued: digests once it left */
	RV_CLOSING,	/* a last message queued: close once it left */
	RV_DRAIN,	/* after a failure: our side closed, theirs drained */
	RV_DONE,
};

struct xmig_recv {
	const struct recv_opts	*o;
	const struct xmig_cbs	*cbs;
	int			 started;
	int			 finished;	/* the result is given */
	struct event		*done_ev;	/* runs recv_finish */
	void			*tls_ctx;
	char			 busy_msg[200];
	uint64_t		 last_progress;
	/* The memory digest after RUNNING, in a thread beside the loop. */
	pthread_t		 dg_thr;
	struct event		*dg_ev;		/* polls dg_done */
	int			 digesting;	/* dg_thr runs */
	int			 dg_done;	/* it ended (atomic) */
	int			 dg_rc;
	int			 mem_done;	/* memory_digest computed */
	int			 digests_done;	/* recv_digests ran */
	struct xmig_report	 r;
	struct xp_parser	*p;
	const struct backend_ops *ops;
	const char		*bspec;
	struct backend		*b;
	struct domain_info	 info;
	struct digest_state	*dstate;
	enum recv_phase		 phase;
	int			 verify_mode;
	int			 ended;		/* END applied */
	int			 running;	/* GO applied: never discard */
	uint64_t		 pages;
	uint64_t		 nrec;		/* records parsed */
	uint64_t		 t_start;
	uint8_t			*tmp;		/* byte-order scratch */
	size_t			 tmp_len;
	uint8_t			*raw;		/* inflated page data */
	void			*d_cookie;	/* pages mapped for direct data */
	uint32_t		 d_n;		/* how many (0: none) */
	uint64_t		 d_records;	/* records taken direct */
	uint64_t		 d_read;	/* octets read(2) into pages */

	/* Back-channel (SPEC 13). */
	int			 bc_possible;	/* the transport has a way back */
	int			 bc_started;	/* its image header is out */
	int			 bc_spoke;	/* something went out on it */
	int			 negotiated;	/* XMIG_NEGOTIATE arrived */
	uint32_t		 features;	/* accepted */
	uint64_t		 neg_pages;	/* pages the sender announced */
	uint64_t		 last_ack;
	struct xp_parser	*ctl;		/* forward control after END */
	int			 out_fd;	/* stdio: where the back-channel goes */
	const char		*busy;		/* refuse every migration: why */

	/* A toolstack on this side (o->toolstack; SPEC 12.4). */
	const struct recv_toolstack *ts;
	int			 config_seen;	/* XMIG_DOMAIN_CONFIG applied */
	int			 reply_pending;	/* REPLY waits for the config */
	struct xp_negotiate	 neg;		/* the offer it answers */
	struct xp_reply		 neg_reply;	/* the answer so far */
	char			 bspec_ts[512];	/* the spec ts->create gave */

	struct event_base	*base;
	struct bufferevent	*bev;
	struct event		*timer;
	int			 fd;
	int			 tls;		/* a close_notify is due */

	int			 rc;
	char			 err[512];
	const struct xp_error	*perr;		/* the parser's, when it failed */

	/* A checkpointed stream (SPEC 15.4). */
	int			 ckpt;		/* XMIG_NEGOTIATE offered it */
	uint32_t		 interval_ms;
	uint64_t		 epoch;		/* epochs committed */
	uint64_t		 ep_octets;	/* record bodies buffered since */
	uint64_t		 ep_records;
	struct recv_epage	*ep_pages;
	size_t			 ep_n, ep_cap;
	uint8_t			*ep_data;
	size_t			 ep_len, ep_data_cap;
	struct state_list	 ep_state;
	int			 stopped;	/* END after a CHECKPOINT */
	int			 failover;	/* resumed the last epoch */

	/* Delta-encoded pages (SPEC 12.7): pfns whose content came in
	 * this stream as a plain page, one bit each (neg_pages bits). */
	uint64_t		*delta_held;
	/* Data streams (SPEC 13.6): streams.c reads and applies the pages. */
	struct streams_rx	*rx;
	unsigned		 max_streams;	/* xmig_recv_allow_streams */
	xmig_streams_listen_fn	 listen;
	void			*listen_arg;
	uint16_t		 streams_port;
	uint64_t		 streams_octets;	/* read on them, at END */
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
recv_fail(struct xmig_recv *rv, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void recv_finish_soon(struct xmig_recv *rv);
static int recv_delta_agree(struct xmig_recv *rv,
    const struct xp_negotiate *n);

static int
recv_fail(struct xmig_recv *rv, int rc, const char *fmt, ...)
{
	va_list ap;

	if (rv->rc == 0) {
		rv->rc = rc < 0 ? rc : -EIO;
		va_start(ap, fmt);
		vsnprintf(rv->err, sizeof(rv->err), fmt, ap);
		va_end(ap);
	}
	return -XP_ECALLBACK;
}

static void
recv_progress(struct xmig_recv *rv, int force)
{
	struct progress_info pi;
	uint64_t now = now_ns(), el = now - rv->t_start;
	uint64_t off = rv->p ? parser_offset(rv->p) : 0;

	if (rv->cbs == NULL || rv->cbs->progress == NULL)
		return;
	if (!force && now - rv->last_progress < RECV_PROGRESS_NS)
		return;
	rv->last_progress = now;
	memset(&pi, 0, sizeof(pi));
	pi.final = force;
	pi.role = "receive";
	pi.phase = rv->ended ? "complete" : "receiving";
	pi.bytes = off;
	pi.pages = rv->pages;
	pi.throughput = el > 0 ? (double)off * 1e9 / (double)el : 0;
	rv->cbs->progress(rv->cbs->arg, &pi);
}

static const char *
recv_where(const struct xp_record *rec, char *buf, size_t len)
{
	snprintf(buf, len, "record %llu (%s) at offset %llu",
	    (unsigned long long)rec->index, record_type_name(rec->type),
	    (unsigned long long)rec->offset);
	return buf;
}

/* ---- the back-channel --------------------------------------------------- */


/* Queue one encoded control record (and the header before the first). */
static int
recv_bc_send(struct xmig_recv *rv, struct xp_buf *rec)
{
	uint8_t hdr[WIRE_IHDR_SIZE];
	int rc = 0;

	if (!rv->bc_possible)
		return 0;
	if (!rv->bc_started) {
		control_header_put(hdr);
		if (rv->bev != NULL)
			rc = bufferevent_write(rv->bev, hdr, sizeof(hdr));
		else
			rc = write_all(rv->out_fd, hdr, sizeof(hdr));
		rv->bc_started = 1;
		rv->bc_spoke = 1;
	}
	if (rc == 0) {
		if (rv->bev != NULL)
			rc = bufferevent_write(rv->bev, rec->data, rec->len);
		else
			rc = write_all(rv->out_fd, rec->data, rec->len);
	}
	buf_free(rec);
	return rc == 0 ? 0 : -EIO;
}

static void
recv_send_ack(struct xmig_recv *rv)
{
	struct xp_ack a;
	struct xp_buf buf = { 0 };

	if (!(rv->features & XMIG_F_ACKS) || rv->p == NULL)
		return;
	a.octets = parser_offset(rv->p);
	a.records = rv->nrec;
	a.pages = rv->pages;
	rv->last_ack = a.octets;
	if (control_ack_put(&buf, &a) == 0)
		recv_bc_send(rv, &buf);
	else
		buf_free(&buf);
}

static void
recv_send_status(struct xmig_recv *rv, uint32_t state, const char *msg)
{
	struct xp_status st = { .state = state, .message = msg,
	    .message_len = msg ? strlen(msg) : 0 };
	struct xp_buf buf = { 0 };

	if (!(rv->features & XMIG_F_HANDOVER))
		return;
	if (control_status_put(&buf, &st) == 0)
		recv_bc_send(rv, &buf);
	else
		buf_free(&buf);
}

/* Tell the sender why the stream was refused (the last record we send). */
static void
recv_send_error(struct xmig_recv *rv)
{
	struct xp_error_msg em;
	struct xp_buf buf = { 0 };

	if (!rv->bc_started)
		return;
	if (rv->ended) {
		recv_send_status(rv, XMIG_STATUS_FAILED, rv->err);
		return;
	}
	memset(&em, 0, sizeof(em));
	if (rv->perr != NULL && rv->perr->code != 0) {
		em.record_index = rv->perr->index;
		em.offset = rv->perr->offset;
		em.record_type = rv->perr->type;
		em.code = (uint32_t)rv->perr->code;
	} else
		em.code = (uint32_t)-rv->rc;
	em.message = rv->err;
	em.message_len = strlen(rv->err);
	if (control_error_put(&buf, &em) == 0)
		recv_bc_send(rv, &buf);
	else
		buf_free(&buf);
}

/* ---- negotiation ------------------------------------------------------- */

/* Milliseconds since this migration started, for the debug lines. */
static double
recv_ms(const struct xmig_recv *rv)
{
	return (double)(now_ns() - rv->t_start) / 1e6;
}

static int
recv_open_target(struct xmig_recv *rv, const struct xp_stream *st)
{
	int rc;

	if (rv->b != NULL)
		return 0;
	rv->info.arch = st->arch;
	rv->info.type = st->dom_type;
	rv->info.page_shift = st->page_shift;
	rv->info.nr_pages = rv->neg_pages;
	if (rv->ts != NULL) {
		char msg[400] = "";

		if (!rv->config_seen)
			return recv_fail(rv, -EPROTO, "the stream carries no "
			    "domain configuration (XMIG_DOMAIN_CONFIG): this "
			    "receiver creates the domain from it");
		rc = rv->ts->create(rv->ts->arg, &rv->info, rv->bspec_ts,
		    sizeof(rv->bspec_ts), msg, sizeof(msg));
		if (rc != 0)
			return recv_fail(rv, rc, "cannot create the domain: %s",
			    msg);
		rv->bspec = rv->bspec_ts;
	}
	rc = rv->ops->open_target(rv->bspec, &rv->info, &rv->b);
	if (rc != 0)
		recv_fail(rv, rc, "cannot host the domain: %s",
		    backend_errmsg(rv->b));
	else if (rv->rx != NULL)
		streams_rx_set_backend(rv->rx, rv->b);
	return rc;
}

static int recv_reply(struct xmig_recv *, const struct xp_negotiate *,
    struct xp_reply *, char *);

static int
recv_negotiate(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xp_negotiate n;
	struct xp_reply r;
	char msg[400] = "";
	uint64_t bytes;
	int rc;

	if (body_negotiate_get(st, rec, &n) != 0)
		return recv_fail(rv, -EPROTO, "XMIG_NEGOTIATE: bad body");
	rv->negotiated = 1;
	if ((n.features & XMIG_F_QUERY) && !rv->bc_possible) {
		char where[128];

		return recv_fail(rv, -EPROTO, "%s: a QUERY (feature bit 10) in "
		    "a one-way stream: nobody could read the answer",
		    recv_where(rec, where, sizeof(where)));
	}
	if (n.features & XMIG_F_CHECKPOINTS) {
		rv->ckpt = 1;
		rv->interval_ms = n.interval_ms;
		rv->r.replicated = 1;
		rv->r.have_epoch = 1;
	}
	memset(&r, 0, sizeof(r));
	r.version = XMIG_NEGOTIATE_VERSION;
	r.result = XMIG_REPLY_OK;
	r.can_read = XMIG_CAN_DRAFTB_V1 | XMIG_CAN_XEN_V2 | XMIG_CAN_XEN_V3;
	r.max_record_len = WIRE_REC_LENGTH_MAX;
	r.max_memory = rv->o->max_memory;
	r.session_id = n.session_id;
	r.restorable = 1ULL << REC_END | 1ULL << REC_PAGE_DATA |
	    1ULL << REC_X86_TSC_INFO | 1ULL << REC_HVM_CONTEXT |
	    1ULL << REC_HVM_PARAMS | 1ULL << REC_TOOLSTACK |
	    1ULL << REC_VERIFY | 1ULL << REC_STATIC_DATA_END |
	    1ULL << REC_X86_CPUID_POLICY | 1ULL << REC_X86_MSR_POLICY;
	if (rv->ops != NULL && rv->ops->set_types != NULL)
		/* A backend that takes typed pages restores PV guests. */
		r.restorable |= 1ULL << REC_X86_PV_INFO |
		    1ULL << REC_X86_PV_P2M_FRAMES |
		    1ULL << REC_X86_PV_VCPU_BASIC |
		    1ULL << REC_X86_PV_VCPU_EXTENDED |
		    1ULL << REC_X86_PV_VCPU_XSAVE |
		    1ULL << REC_X86_PV_VCPU_MSRS | 1ULL << REC_SHARED_INFO;
	bytes = n.page_shift < 32 ? n.nr_pages << n.page_shift : 0;
	if (rv->busy != NULL) {
		r.result = XMIG_REPLY_OTHER;
		snprintf(msg, sizeof(msg), "%s", rv->busy);
	} else if (n.arch != st->arch || n.type != st->dom_type ||
	    n.page_shift != st->page_shift) {
		r.result = XMIG_REPLY_OTHER;
		snprintf(msg, sizeof(msg), "XMIG_NEGOTIATE describes another "
		    "domain than the domain header");
	} else if (n.nr_vcpus == 0 || n.nr_vcpus > 1024) {
		char where[128];

		r.result = XMIG_REPLY_DOMAIN;
		snprintf(msg, sizeof(msg), "%s: the domain has %u vcpus; this "
		    "receiver hosts 1 to 1024",
		    recv_where(rec, where, sizeof(where)), n.nr_vcpus);
	} else if (n.page_shift >= 32 || (rv->o->max_memory > 0 &&
	    (n.nr_pages > (rv->o->max_memory >> n.page_shift)))) {
		r.result = XMIG_REPLY_MEMORY;
		snprintf(msg, sizeof(msg), "the domain has %llu MiB of memory; "
		    "this receiver hosts at most %llu MiB (%s)",
		    (unsigned long long)(bytes >> 20),
		    (unsigned long long)(rv->o->max_memory >> 20),
		    rv->o->max_memory_why != NULL ? rv->o->max_memory_why :
		    "--max-memory");
	} else if (rv->ckpt && rv->ts != NULL) {
		r.result = XMIG_REPLY_OTHER;
		snprintf(msg, sizeof(msg), "this receiver cannot be a backup "
		    "for replication (checkpointed streams): its toolstack "
		    "completes a domain once");
	} else if (rv->ts != NULL && !(n.features & XMIG_F_CONFIG)) {
		r.result = XMIG_REPLY_OTHER;
		snprintf(msg, sizeof(msg), "the sender sends no domain "
		    "configuration (XMIG_DOMAIN_CONFIG): this receiver creates "
		    "the domain from it");
	} else if (rv->ts != NULL) {
		/*
		 * The toolstack decides once it has the configuration, the
		 * record that follows (SPEC 12.4); the domain is created
		 * after the answer, when the first record needs it.
		 */
		rv->neg_pages = n.nr_pages;
		rv->neg = n;
		rv->neg_reply = r;
		rv->reply_pending = 1;
		return 0;
	} else if (n.features & XMIG_F_QUERY) {
		rv->neg_pages = n.nr_pages;	/* only asked: nothing opened */
	} else {
		rv->neg_pages = n.nr_pages;
		rc = recv_open_target(rv, st);
		if (rc != 0) {
			r.result = rc == -EOPNOTSUPP ? XMIG_REPLY_DOMAIN :
			    rc == -ENOSPC || rc == -ENOMEM ?
			    XMIG_REPLY_MEMORY : XMIG_REPLY_OTHER;
			snprintf(msg, sizeof(msg), "%.390s", rv->err);
		}
	}
	return recv_reply(rv, &n, &r, msg);
}

/* ---- data streams (SPEC 13.6): the hooks; streams.c does the I/O ---- */

static void recv_after_input(struct xmig_recv *rv);

static void
recv_streams_fail(void *arg, int rc, const char *msg)
{
	struct xmig_recv *rv = arg;

	if (rv->phase != RV_STREAM || rv->finished)
		return;
	recv_fail(rv, rc, "%s", msg);
	recv_after_input(rv);
}

/* The main connection's read timeout: off while the data streams run. */
static void
recv_streams_timeout(struct xmig_recv *rv, int on)
{
	double t = RECV_TIMEOUT(rv);
	struct timeval rt = { (time_t)t,
	    (suseconds_t)((t - (double)(time_t)t) * 1e6) };

	if (rv->bev != NULL)
		bufferevent_set_timeouts(rv->bev, on ? &rt : NULL, NULL);
}

/*
 * Every data stream ended: END is due on the main connection, which goes
 * quiet no longer (each data stream's reads had the timeout meanwhile).
 */
static void
recv_streams_ended(void *arg)
{
	recv_streams_timeout(arg, 1);
}

/*
 * The offer asks for data streams: take min(offered, our limit) when this
 * side can (a listener, a backend that lets workers in, the handover, no
 * checkpoints), with a listening port; else clear PARALLEL (declined).
 */
static void
recv_streams_offer(struct xmig_recv *rv, const struct xp_negotiate *n,
    struct xp_reply *r)
{
	struct streams_rx_cfg c;
	unsigned m = rv->max_streams;
	char err[256] = "";
	int rc;

	if (!(r->features & XMIG_F_PARALLEL))
		return;
	r->features &= ~XMIG_F_PARALLEL;
	if (rv->o->max_streams < m)
		m = rv->o->max_streams;
	if (n->streams < m)
		m = n->streams;
	if (m < 2 || rv->listen == NULL || rv->ops == NULL ||
	    !(rv->ops->caps & BACKEND_CAP_WORKERS) ||
	    !(n->features & XMIG_F_HANDOVER) || rv->ckpt ||
	    (n->features & XMIG_F_QUERY) || !rv->bc_possible) {
		recv_debug(rv, "data streams: %u offered, none taken (%s)",
		    n->streams, m < 2 ? "--max-streams" :
		    rv->listen == NULL ? "no listener for them" :
		    rv->ops == NULL || !(rv->ops->caps & BACKEND_CAP_WORKERS) ?
		    "the backend copies on one thread" : "not with this "
		    "kind of stream");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.base = rv->base;
	c.m = m;
	c.max_pfn = n->nr_pages;
	c.tls_ctx = rv->tls_ctx;
	c.timeout_s = RECV_TIMEOUT(rv);
	c.fail = recv_streams_fail;
	c.ended = recv_streams_ended;
	c.arg = rv;
	if (parser_stream(rv->p) == NULL)
		return;
	c.st = *parser_stream(rv->p);
	if ((rc = streams_rx_new(&c, &rv->rx)) != 0 ||
	    (rc = rv->listen(rv->listen_arg, &rv->streams_port, err,
	    sizeof(err))) != 0) {
		xmig_cbs_log(rv->cbs, XMIG_LOG_WARN, "data streams declined: "
		    "%s", err[0] ? err : strerror(-rc));
		streams_rx_free(rv->rx);
		rv->rx = NULL;
		return;
	}
	r->features |= XMIG_F_PARALLEL;
	rv->r.streams = m;
	/* The pages come elsewhere: the main connection may stay quiet. */
	recv_streams_timeout(rv, 0);
	if (rv->b != NULL)
		streams_rx_set_backend(rv->rx, rv->b);
}

/* XMIG_STREAMS, right after the REPLY that took them. */
static int
recv_streams_answer(struct xmig_recv *rv)
{
	struct xp_streams x;
	struct xp_buf buf = { 0 };

	x.streams = (uint16_t)rv->r.streams;
	x.port = rv->streams_port;
	streams_rx_token(rv->rx, x.token);
	if (control_streams_put(&buf, &x) != 0 || recv_bc_send(rv, &buf) != 0)
		return recv_fail(rv, -EIO, "cannot answer on the "
		    "back-channel");
	recv_debug(rv, "+%.1f ms: %u data streams, port %u", recv_ms(rv),
	    x.streams, x.port);
	return 0;
}

/* END on the main connection: every data stream must have ended too. */
static int
recv_streams_end(struct xmig_recv *rv)
{
	uint64_t pages, zero, octets;
	char err[300];
	int rc;

	if (rv->rx == NULL)
		return 0;
	if (rv->pages > 0 && streams_rx_connected(rv->rx) == 0) {
		/*
		 * The pages came on this connection: a sender that took our
		 * REPLY as late (13.4) went plain and opens no data stream.
		 */
		recv_debug(rv, "+%.1f ms: the pages came on the main "
		    "connection: no data streams", recv_ms(rv));
		streams_rx_free(rv->rx);
		rv->rx = NULL;
		rv->r.streams = 1;
		return 0;
	}
	if ((rc = streams_rx_wait_end(rv->rx, RECV_TIMEOUT(rv), err,
	    sizeof(err))) != 0)
		return recv_fail(rv, rc, "%s", err);
	streams_rx_counts(rv->rx, &pages, &zero, &octets);
	rv->pages += pages;
	rv->r.zero_pages += zero;
	rv->streams_octets = octets;
	return 0;
}

void
xmig_recv_allow_streams(struct xmig_recv *rv, unsigned max,
    xmig_streams_listen_fn listen, void *arg)
{
	rv->max_streams = max > XMIG_STREAMS_MAX ? XMIG_STREAMS_MAX : max;
	rv->listen = listen;
	rv->listen_arg = arg;
}

int
xmig_recv_stream_fd(struct xmig_recv *rv, int fd)
{
	if (rv->rx == NULL || rv->finished) {
		close(fd);
		return -ENOSPC;
	}
	return streams_rx_attach(rv->rx, fd);
}

/*
 * The answer to the offer n: features agreed when r->result is OK, the
 * REPLY on the back-channel, and the end of the stream when refused.
 */
static int
recv_reply(struct xmig_recv *rv, const struct xp_negotiate *np,
    struct xp_reply *rp, char *msg)
{
	struct xp_negotiate n = *np;
	struct xp_reply r = *rp;
	struct xp_buf buf = { 0 };

	if (r.result == XMIG_REPLY_OK)
		r.features = n.features & (XMIG_F_CHECKSUM | XMIG_F_DEFLATE |
		    XMIG_F_ZERO_PAGES | XMIG_F_ACKS | XMIG_F_HANDOVER |
		    XMIG_F_XXH3 | XMIG_F_ZSTD | XMIG_F_CHECKPOINTS |
		    XMIG_F_PARALLEL);
	if (r.result == XMIG_REPLY_OK)
		recv_streams_offer(rv, &n, &r);
	/* Deltas go on the main connection: never beside data streams. */
	if (r.result == XMIG_REPLY_OK && (n.features & XMIG_F_DELTA) &&
	    (r.features & XMIG_F_PARALLEL) == 0 &&
	    recv_delta_agree(rv, &n) == 0)
		r.features |= XMIG_F_DELTA;
	if (xmig_cbs_log_on(rv->cbs, XMIG_LOG_DEBUG)) {
		char fo[128], fa[128], lim[48] = "none";

		if (r.max_memory != 0)
			snprintf(lim, sizeof(lim), "%llu MiB",
			    (unsigned long long)(r.max_memory >> 20));
		recv_debug(rv, "+%.1f ms: offered: %s; writes%s%s%s; records up "
		    "to %u octets; domain of %llu pages (shift %u), %u vcpus; "
		    "session 0x%llx", recv_ms(rv),
		    xmig_features_str(n.features, fo, sizeof(fo)),
		    (n.can_write & XMIG_CAN_DRAFTB_V1) ? " draft-B-v1" : "",
		    (n.can_write & XMIG_CAN_XEN_V2) ? " xen-v2" : "",
		    (n.can_write & XMIG_CAN_XEN_V3) ? " xen-v3" : "",
		    n.max_record_len, (unsigned long long)n.nr_pages,
		    n.page_shift, n.nr_vcpus,
		    (unsigned long long)n.session_id);
		recv_debug(rv, "answer: %s%s%s; agreed %s; compression %s; zero "
		    "pages %s; records up to %u octets; memory limit %s%s",
		    r.result == XMIG_REPLY_OK ? "OK" :
		    "refused", msg[0] ? ": " : "", msg,
		    xmig_features_str(r.features, fa, sizeof(fa)),
		    (r.features & XMIG_F_ZSTD) ? "zstd" :
		    (r.features & XMIG_F_DEFLATE) ? "zlib" : "none",
		    (r.features & XMIG_F_ZERO_PAGES) ? "without data" :
		    "as data", r.max_record_len, lim, rv->bc_possible ? "" :
		    " (no way back: not sent)");
	}
	r.message = msg;
	r.message_len = strlen(msg);
	if (rv->bc_possible) {
		if (control_reply_put(&buf, &r) != 0 ||
		    recv_bc_send(rv, &buf) != 0)
			return recv_fail(rv, -EIO, "cannot answer on the "
			    "back-channel");
		if ((r.features & XMIG_F_PARALLEL) &&
		    recv_streams_answer(rv) != 0)
			return -XP_ECALLBACK;
		rv->features = r.features;
		rv->r.backchannel = 1;
		rv->r.delta = (r.features & XMIG_F_DELTA) != 0;
	}
	if (n.features & XMIG_F_QUERY) {
		/* Only asked (SPEC 13.2): answered, nothing more comes. */
		rv->r.query = 1;
		rv->r.peer_result = r.result;
		rv->r.peer_max_memory = r.max_memory;
		if (rv->rc == 0)
			recv_fail(rv, -ENOMSG, "a query, answered: %s",
			    r.result == XMIG_REPLY_OK ? "would take the domain"
			    : msg);
		rv->bc_started = 0;
		return -XP_ECALLBACK;
	}
	if (r.result != XMIG_REPLY_OK) {
		if (rv->rc == 0)
			recv_fail(rv, -EPROTO, "incompatible: %s", msg);
		rv->bc_started = 0;	/* the REPLY said it all */
		return -XP_ECALLBACK;
	}
	return 0;
}

/* ---- applying records ------------------------------------------------- */

static int
recv_header_cb(void *arg, const struct xp_stream *st)
{
	struct xmig_recv *rv = arg;

	rv->r.dialect = st->dialect == XP_XEN ? "xen" : "draftb";
	recv_debug(rv, "+%.1f ms: %s stream, version %u, %s-endian, back-channel "
	    "%s", recv_ms(rv), rv->r.dialect, st->version,
	    st->big_endian ? "big" : "little",
	    (st->ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL) ? (rv->bc_possible ?
	    "offered" : "offered, but this transport has no way back") :
	    "not offered");
	if (!(st->ihdr_options & WIRE_IHDR_OPT_BACKCHANNEL))
		rv->bc_possible = 0;
	if (rv->busy != NULL && !rv->bc_possible)
		return recv_fail(rv, -EBUSY, "%s", rv->busy);
	return 0;
}

/*
 * After VERIFY (SPEC 7.11, 12.1): compare, never write.  pfns[i] must
 * hold data + i * ps, or zeros when data is NULL (XMIG_ZERO_PAGES).  The
 * pages are mapped read-only and nothing is populated: a page that was
 * never restored is a difference too.
 */
static int
recv_verify(struct xmig_recv *rv, const struct xp_record *rec,
    const uint64_t *pfns, uint32_t n, const uint8_t *data, size_t ps)
{
	void *pages[WIRE_PAGE_DATA_MAX];
	void *cookie = NULL;
	char where[128];
	uint32_t i;
	int rc;

	if (n == 0)
		return 0;
	rc = rv->b->ops->map(rv->b, pfns, n, 0, pages, &cookie);
	if (rc != 0)
		return recv_fail(rv, -EILSEQ, "%s: verify mode: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	for (i = 0; i < n; i++) {
		const uint8_t *pg = pages[i];
		int same = data != NULL ?
		    memcmp(pg, data + (size_t)i * ps, ps) == 0 :
		    page_is_zero(pg, ps);

		if (!same) {
			rv->b->ops->unmap(rv->b, cookie, n);
			return recv_fail(rv, -EILSEQ, "%s: verify mode: page "
			    "%llu differs from what was restored%s",
			    recv_where(rec, where, sizeof(where)),
			    (unsigned long long)pfns[i], data != NULL ? "" :
			    " (the stream says it is zero)");
		}
	}
	rv->b->ops->unmap(rv->b, cookie, n);
	return 0;
}

/*
 * The page data of a page record: *src points at it in the record, or,
 * when compressed (DEFLATE, ZSTD), at rv->raw where it was decompressed.
 */
static int
recv_page_data(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec, const struct xp_page_view *v,
    const uint8_t **src)
{
	size_t cap = (size_t)WIRE_PAGE_DATA_MAX << st->page_shift;
	struct xp_error e;

	*src = v->data;
	if (!v->deflated)
		return 0;
	if (rv->raw == NULL && (rv->raw = malloc(cap)) == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory");
	if (body_page_data_inflate_err(st, rec, rv->raw, cap, &e) != 0)
		return recv_fail(rv, -EPROTO, "invalid stream: %s", e.msg);
	*src = rv->raw;
	return 0;
}

/* ---- delta-encoded pages (SPEC 12.7) ---------------------------------- */

/*
 * Whether to take DELTA offered in n: not in a checkpointed stream (an
 * epoch's pages are buffered until its CHECKPOINT, and a delta there
 * would have to follow the buffered copy: not supported, so not agreed),
 * not when told not to; the bitmap of held pages is made here.  0: agreed.
 */
static int
recv_delta_agree(struct xmig_recv *rv, const struct xp_negotiate *n)
{
	size_t words;

	if (rv->o->no_delta || (n->features & (XMIG_F_CHECKPOINTS |
	    XMIG_F_QUERY)) || n->nr_pages == 0 ||
	    n->nr_pages > (uint64_t)SIZE_MAX / 2)
		return -1;
	words = (size_t)((n->nr_pages + 63) / 64);
	free(rv->delta_held);
	if ((rv->delta_held = calloc(words, sizeof(uint64_t))) == NULL)
		return -1;	/* declined: full pages it is */
	return 0;
}

/*
 * A page record is being applied: its plain pages (NOTAB, with data or
 * zero) are held from now on, its other entries (page tables, holes) are
 * not a base for a delta.
 */
static void
recv_delta_note(struct xmig_recv *rv, const struct xp_page_view *v)
{
	uint32_t i;

	if (rv->delta_held == NULL)
		return;
	for (i = 0; i < v->count; i++) {
		uint64_t e = xp_page_view_entry(v, i);
		uint64_t pfn = e & WIRE_PFN_MASK;

		if (pfn >= rv->neg_pages)
			continue;	/* refused by recv_pages */
		if ((unsigned)(e >> WIRE_PFN_TYPE_SHIFT) == PT_NOTAB)
			rv->delta_held[pfn / 64] |= 1ULL << (pfn % 64);
		else
			rv->delta_held[pfn / 64] &= ~(1ULL << (pfn % 64));
	}
}

/*
 * XMIG_DELTA_PAGES: each delta applied to the page this receiver holds.
 * The parser has checked every delta; what only the receiver can check is
 * that DELTA was agreed and that it holds each page as a plain page.
 */
static int
recv_delta_pages(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	uint64_t pfns[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	struct delta_view v;
	const uint8_t *d;
	size_t ps = (size_t)1 << st->page_shift;
	char where[128], why[160];
	void *cookie = NULL;
	uint32_t i, len;
	int rc;

	recv_where(rec, where, sizeof(where));
	if (delta_pages_view(st, rec, &v) != 0)
		return recv_fail(rv, -EPROTO, "%s: bad delta list", where);
	if (!(rv->features & XMIG_F_DELTA) || rv->delta_held == NULL)
		return recv_fail(rv, -EPROTO, "%s: delta-encoded pages in a "
		    "stream that did not agree to them (feature DELTA)",
		    where);
	if (rv->verify_mode)
		return recv_fail(rv, -EPROTO, "%s: delta-encoded pages after "
		    "VERIFY", where);
	if (v.count > WIRE_PAGE_DATA_MAX)
		return recv_fail(rv, -E2BIG, "%s: %u pages in one record; "
		    "this receiver takes at most %u", where, v.count,
		    WIRE_PAGE_DATA_MAX);
	for (i = 0; i < v.count; i++) {
		pfns[i] = delta_view_pfn(&v, i);
		if (pfns[i] >= rv->neg_pages)
			return recv_fail(rv, -ERANGE, "%s: pfn %llu is beyond "
			    "the %llu pages XMIG_NEGOTIATE announced", where,
			    (unsigned long long)pfns[i],
			    (unsigned long long)rv->neg_pages);
		if (!(rv->delta_held[pfns[i] / 64] & (1ULL << (pfns[i] % 64))))
			return recv_fail(rv, -EPROTO, "%s: delta %u is for pfn "
			    "%llu, a page this receiver never received in "
			    "full", where, i, (unsigned long long)pfns[i]);
	}
	rc = rv->b->ops->map(rv->b, pfns, v.count, 1, pages, &cookie);
	if (rc != 0)
		return recv_fail(rv, rc, "%s: %s", where,
		    backend_errmsg(rv->b));
	for (i = 0, d = v.data; i < v.count; i++, d += len) {
		len = delta_view_len(&v, i);
		if (delta_apply(pages[i], (uint32_t)ps, d, len, why,
		    sizeof(why)) != 0) {
			rv->b->ops->unmap(rv->b, cookie, v.count);
			return recv_fail(rv, -EPROTO, "%s: delta %u (pfn %llu): "
			    "%s", where, i, (unsigned long long)pfns[i], why);
		}
	}
	rv->b->ops->unmap(rv->b, cookie, v.count);
	rv->pages += v.count;
	rv->r.delta_pages += v.count;
	rv->r.delta_octets += v.data_len;
	return 0;
}


/* The pages a direct record was copied into, unmapped. */
static void
recv_direct_release(struct xmig_recv *rv)
{
	if (rv->d_n == 0)
		return;
	rv->b->ops->unmap(rv->b, rv->d_cookie, rv->d_n);
	rv->d_cookie = NULL;
	rv->d_n = 0;
}

/*
 * A large uncompressed PAGE_DATA record (parser_set_direct): its pages
 * are checked, typed, populated and mapped as recv_pages does, and the
 * parser copies the data straight into them as it arrives, the CRC-32
 * computed over them there.  A record whose checksum then fails has
 * written its pages: the migration fails, and a failed migration's
 * domain is destroyed (recv_finish), never run.  Declined (gathered and
 * applied whole) before the target exists, in verify mode (compare, never
 * write) and in a checkpointed stream, whose epochs must not touch memory
 * before their CHECKPOINT.
 */
static int
recv_direct_begin(void *arg, const struct xp_stream *st,
    const struct xp_record *rec, uint8_t **dst)
{
	struct xmig_recv *rv = arg;
	uint64_t pop[WIRE_PAGE_DATA_MAX], data_pfn[WIRE_PAGE_DATA_MAX];
	uint8_t pop_type[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	struct xp_page_view v;
	uint32_t i, np = 0, nd = 0;
	char where[128];
	int rc;

	if (rv->busy != NULL || rv->reply_pending || rv->b == NULL ||
	    rv->ckpt || rv->verify_mode || rv->d_n != 0 ||
	    rv->phase != RV_STREAM)
		return XP_DIRECT_DECLINE;
	/* rec->body holds the pfn list only: v.data is not read. */
	if (body_page_data_view(st, rec, &v) != 0 || v.deflated ||
	    v.count > WIRE_PAGE_DATA_MAX)
		return XP_DIRECT_DECLINE;	/* recv_pages says why */
	rv->nrec = rec->index + 1;
	for (i = 0; i < v.count; i++) {
		uint64_t e64 = xp_page_view_entry(&v, i);
		unsigned type = (unsigned)(e64 >> WIRE_PFN_TYPE_SHIFT);
		uint64_t pfn = e64 & WIRE_PFN_MASK;

		/* Refused by recv_pages, once the checksum is known. */
		if (rv->negotiated && pfn >= rv->neg_pages)
			return XP_DIRECT_DECLINE;
		if (type == PT_XTAB || type == PT_BROKEN)
			continue;
		pop_type[np] = (uint8_t)type;
		pop[np++] = pfn;
		if (body_page_type_has_data(type))
			data_pfn[nd++] = pfn;
	}
	if (nd != v.ndata || nd == 0)
		return XP_DIRECT_DECLINE;
	if (rv->b->ops->set_types != NULL &&
	    (rc = rv->b->ops->set_types(rv->b, pop, pop_type, np)) != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	if ((rc = rv->b->ops->populate(rv->b, pop, np)) != 0 ||
	    (rc = rv->b->ops->map(rv->b, data_pfn, nd, 1, pages,
	    &rv->d_cookie)) != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	rv->d_n = nd;
	for (i = 0; i < nd; i++) {
		if (pages[i] == NULL) {
			recv_direct_release(rv);
			return XP_DIRECT_DECLINE;
		}
		dst[i] = pages[i];
	}
	recv_delta_note(rv, &v);	/* a base for later deltas */
	return 0;
}

/* A direct record ended: whole and checked (r 0), or failed (r < 0). */
static int
recv_direct_end(void *arg, const struct xp_stream *st,
    const struct xp_record *rec, int r)
{
	struct xmig_recv *rv = arg;
	uint32_t n = rv->d_n;

	(void)st;
	recv_direct_release(rv);
	if (r != 0)
		return 0;	/* the parser's error is the session's */
	rv->pages += n;
	rv->d_records++;
	if ((rv->features & XMIG_F_ACKS) &&
	    rec->offset - rv->last_ack >= RECV_ACK_EVERY)
		recv_send_ack(rv);
	return 0;
}

static const struct xp_direct recv_direct = {
	.min_data = RECV_DIRECT_MIN,
	.begin = recv_direct_begin,
	.end = recv_direct_end,
};

/*
 * Inside a direct record's data with nothing buffered: read(2) from fd
 * straight into the guest pages (sock: recv without waiting), at most
 * RECV_DIRECT_BURST octets.  Returns what was read, 0 when nothing was
 * (no data waiting, the end of input, an error: the caller's own read
 * finds out which), -1 after a failure of the stream.
 */
#define RECV_DIRECT_BURST	(16u << 20)
static ssize_t
recv_direct_read(struct xmig_recv *rv, int fd, int sock)
{
	size_t room, total = 0;
	uint8_t *dst;
	ssize_t n, used;

	while (rv->rc == 0 && rv->phase == RV_STREAM &&
	    total < RECV_DIRECT_BURST &&
	    (room = parser_direct_space(rv->p, &dst)) > 0) {
		n = sock ? recv(fd, dst, room, MSG_DONTWAIT) :
		    read(fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((used = parser_direct_commit(rv->p, (size_t)n)) < 0) {
			const struct xp_error *e = parser_error(rv->p);

			rv->perr = e;
			if (rv->rc == 0) {
				rv->rc = -EPROTO;
				snprintf(rv->err, sizeof(rv->err), "invalid "
				    "stream: %s", e->msg[0] ? e->msg :
				    xp_strerror((int)used));
			}
			return -1;
		}
		total += (size_t)n;
		rv->d_read += (uint64_t)n;
		if (!sock)
			break;	/* one read: the caller waits for more */
	}
	return (ssize_t)total;
}

static int
recv_pages(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	uint64_t pop[WIRE_PAGE_DATA_MAX], data_pfn[WIRE_PAGE_DATA_MAX];
	uint8_t pop_type[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	struct xp_page_view v;
	const uint8_t *src;
	size_t ps = (size_t)1 << st->page_shift;
	uint32_t i, np = 0, nd = 0;
	char where[128];
	void *cookie = NULL;
	int rc;

	if (body_page_data_view(st, rec, &v) != 0)
		return recv_fail(rv, -EPROTO, "%s: bad page list",
		    recv_where(rec, where, sizeof(where)));
	if (v.count > WIRE_PAGE_DATA_MAX)
		return recv_fail(rv, -E2BIG, "%s: %u pages in one record; "
		    "this receiver takes at most %u",
		    recv_where(rec, where, sizeof(where)), v.count,
		    WIRE_PAGE_DATA_MAX);
	for (i = 0; i < v.count; i++) {
		uint64_t e64 = xp_page_view_entry(&v, i);
		unsigned type = (unsigned)(e64 >> WIRE_PFN_TYPE_SHIFT);
		uint64_t pfn = e64 & WIRE_PFN_MASK;

		if (rv->negotiated && pfn >= rv->neg_pages)
			return recv_fail(rv, -ERANGE, "%s: pfn %llu is beyond "
			    "the %llu pages XMIG_NEGOTIATE announced",
			    recv_where(rec, where, sizeof(where)),
			    (unsigned long long)pfn,
			    (unsigned long long)rv->neg_pages);
		if (type == PT_XTAB || type == PT_BROKEN)
			continue;
		pop_type[np] = (uint8_t)type;
		pop[np++] = pfn;
		if (!v.zero && body_page_type_has_data(type))
			data_pfn[nd++] = pfn;
	}
	recv_delta_note(rv, &v);
	if (v.zero && rv->verify_mode) {
		if ((rc = recv_verify(rv, rec, pop, np, NULL, ps)) != 0)
			return rc;
		rv->pages += np;
		rv->r.zero_pages += np;
		return 0;
	}
	if (np > 0 && !rv->verify_mode && rv->b->ops->set_types != NULL &&
	    (rc = rv->b->ops->set_types(rv->b, pop, pop_type, np)) != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	if (v.zero) {
		/* Allocated in one call; a backend skips fresh pages. */
		if (np > 0 && (rc = rv->b->ops->populate(rv->b, pop, np)) != 0)
			return recv_fail(rv, rc, "%s: %s",
			    recv_where(rec, where, sizeof(where)),
			    backend_errmsg(rv->b));
		for (i = 0; i < np; i++)
			if ((rc = rv->b->ops->zero_page(rv->b, pop[i])) != 0)
				return recv_fail(rv, rc, "%s: %s",
				    recv_where(rec, where, sizeof(where)),
				    backend_errmsg(rv->b));
		rv->pages += np;
		rv->r.zero_pages += np;
		return 0;
	}
	if (np > 0 && !rv->verify_mode &&
	    (rc = rv->b->ops->populate(rv->b, pop, np)) != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	if (nd == 0)
		return 0;
	if ((rc = recv_page_data(rv, st, rec, &v, &src)) != 0)
		return rc;
	if (rv->verify_mode) {
		if ((rc = recv_verify(rv, rec, data_pfn, nd, src, ps)) != 0)
			return rc;
		rv->pages += nd;
		return 0;
	}
	rc = rv->b->ops->map(rv->b, data_pfn, nd, 1, pages, &cookie);
	if (rc != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	for (i = 0; i < nd; i++, src += ps)
		memcpy(pages[i], src, ps);
	rv->b->ops->unmap(rv->b, cookie, nd);
	rv->pages += nd;
	return 0;
}

/* A state record's body in little-endian form (rv->tmp if converted). */
static int
recv_body_le(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec, const uint8_t **body)
{
	char where[128];

	*body = rec->body;
	if (!st->big_endian || rec->length == 0)
		return 0;
	if (rec->length > rv->tmp_len) {
		uint8_t *n = realloc(rv->tmp, rec->length);

		if (n == NULL)
			return recv_fail(rv, -ENOMEM, "out of memory");
		rv->tmp = n;
		rv->tmp_len = rec->length;
	}
	if (body_reorder(rec->type, rec->body, rec->length, 1, 0,
	    rv->tmp) != 0)
		return recv_fail(rv, -EINVAL, "%s: cannot convert byte order",
		    recv_where(rec, where, sizeof(where)));
	*body = rv->tmp;
	return 0;
}

static int
recv_state(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	const uint8_t *body = rec->body;
	char where[128];
	int rc;

	if ((rc = recv_body_le(rv, st, rec, &body)) != 0)
		return rc;
	rc = rv->b->ops->load_state(rv->b, rec->type, body, rec->length);
	if (rc != 0)
		return recv_fail(rv, rc, "%s: %s",
		    recv_where(rec, where, sizeof(where)),
		    backend_errmsg(rv->b));
	digest_state_add(rv->dstate, rec->type, body, rec->length);
	return 0;
}

static int recv_control_cb(void *arg, const struct xp_stream *st,
    const struct xp_record *rec);

/*
 * XMIG_EARLY_PARAMS (SPEC 12.5): with a toolstack that finishes domains
 * early and a backend that can set them up, the domain is finished now,
 * while its memory is on the way; otherwise skipped.
 */
static int
recv_early(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	const uint8_t *body = rec->body;
	char where[128], msg[400] = "";
	int rc;

	if (rv->ts == NULL || rv->ts->prepared == NULL ||
	    rv->b->ops->load_early == NULL || rv->verify_mode) {
		recv_debug(rv, "early state skipped: nobody here uses it");
		return 0;
	}
	if ((rc = recv_body_le(rv, st, rec, &body)) != 0)
		return rc;
	rc = rv->b->ops->load_early(rv->b, rec->type, body, rec->length);
	if (rc != 0)
		return recv_fail(rv, rc, "%s: %s", recv_where(rec, where,
		    sizeof(where)), backend_errmsg(rv->b));
	if ((rc = rv->ts->prepared(rv->ts->arg, rv->b, msg, sizeof(msg))) != 0)
		return recv_fail(rv, rc, "finishing the domain early: %s",
		    msg);
	recv_debug(rv, "+%.1f ms: early state applied; the toolstack finishes "
	    "the domain while its memory comes", recv_ms(rv));
	return 0;
}

static int
recv_end(struct xmig_recv *rv)
{
	struct xp_limits lim = { 0 };
	int rc;

	if (recv_streams_end(rv) != 0)
		return -XP_ECALLBACK;
	if ((rc = rv->b->ops->complete(rv->b)) != 0)
		return recv_fail(rv, rc, "completing the restore: %s",
		    backend_errmsg(rv->b));
	if (rv->ts != NULL) {
		char msg[400] = "";

		if ((rc = rv->ts->finish(rv->ts->arg, rv->b, msg,
		    sizeof(msg))) != 0)
			return recv_fail(rv, rc, "completing the domain: %s",
			    msg);
		recv_debug(rv, "+%.1f ms: the toolstack completed the domain",
		    recv_ms(rv));
	}
	rv->ended = 1;
	recv_send_ack(rv);
	recv_debug(rv, "+%.1f ms: END applied: %llu records, %llu pages, %llu "
	    "octets of stream%s", recv_ms(rv),
	    (unsigned long long)rv->nrec, (unsigned long long)rv->pages,
	    (unsigned long long)parser_offset(rv->p),
	    (rv->features & XMIG_F_HANDOVER) ? "" :
	    "; one-way: nobody to ask");
	if (!(rv->features & XMIG_F_HANDOVER)) {
		rv->phase = RV_DONE;	/* one-way: nobody to ask */
		return 0;
	}
	rv->ctl = parser_new_control(&lim, XP_CONTROL_FORWARD, 0,
	    recv_control_cb, rv);
	if (rv->ctl == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory");
	recv_send_status(rv, XMIG_STATUS_RESTORED, NULL);
	recv_debug(rv, "+%.1f ms: RESTORED sent; waiting for GO", recv_ms(rv));
	rv->phase = RV_WAIT_GO;
	if (rv->timer != NULL) {
		struct timeval tv = { (time_t)RECV_TIMEOUT(rv), 0 };

		evtimer_add(rv->timer, &tv);
	}
	return 0;
}

/*
 * XMIG_DOMAIN_CONFIG (SPEC 12.4): for the toolstack, skipped without one.
 * With msg, a refusal is only described there (it goes into the REPLY).
 */
static int
recv_config(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec, char *msg, size_t msglen)
{
	char where[128], why[400] = "";
	const char *text;
	uint32_t kind;
	size_t len;
	int rc;

	if (rv->ts == NULL) {
		recv_debug(rv, "domain configuration skipped: no toolstack here");
		return 0;
	}
	if (body_config_get(st, rec, &kind, &text, &len) != 0)
		rc = -EPROTO, snprintf(why, sizeof(why), "bad body");
	else
		rc = rv->ts->config(rv->ts->arg, kind, text, len, why,
		    sizeof(why));
	if (rc == 0) {
		rv->config_seen = 1;
		recv_debug(rv, "+%.1f ms: domain configuration accepted (%zu "
		    "octets)", recv_ms(rv), len);
		return 0;
	}
	recv_where(rec, where, sizeof(where));
	if (msg != NULL) {
		snprintf(msg, msglen, "%s: %s", where, why);
		return rc;
	}
	return recv_fail(rv, rc, "%s: %s", where, why);
}

/* The record after a deferred XMIG_NEGOTIATE: the configuration, or no. */
static int
recv_config_reply(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xp_reply r = rv->neg_reply;
	char msg[400] = "";
	int rc;

	rv->reply_pending = 0;
	if (rec->type != REC_XMIG_DOMAIN_CONFIG) {
		r.result = XMIG_REPLY_OTHER;
		snprintf(msg, sizeof(msg), "the stream carries no domain "
		    "configuration (XMIG_DOMAIN_CONFIG): this receiver "
		    "creates the domain from it");
	} else if ((rc = recv_config(rv, st, rec, msg, sizeof(msg))) != 0) {
		r.result = rc == -EOPNOTSUPP ? XMIG_REPLY_DOMAIN :
		    rc == -ENOSPC || rc == -ENOMEM ? XMIG_REPLY_MEMORY :
		    XMIG_REPLY_OTHER;
	} else if (rv->ts->admit != NULL && (rc = rv->ts->admit(rv->ts->arg,
	    rv->neg.page_shift < 32 ? rv->neg.nr_pages << rv->neg.page_shift :
	    UINT64_MAX, (rv->neg.features & XMIG_F_QUERY) != 0, msg,
	    sizeof(msg))) != 0) {
		r.result = rc == -ENOSPC || rc == -ENOMEM ?
		    XMIG_REPLY_MEMORY : XMIG_REPLY_OTHER;
	}
	return recv_reply(rv, &rv->neg, &r, msg);
}


/* ---- checkpointed streams (SPEC 15.4) ------------------------------------ */

static double
recv_failover_ms(const struct xmig_recv *rv)
{
	double ms = rv->o->failover_timeout_ms;

	if (ms > 0)
		return ms;
	ms = 3.0 * rv->interval_ms;
	return ms < RECV_FAILOVER_MIN_MS ? RECV_FAILOVER_MIN_MS : ms;
}

static uint64_t
recv_epoch_max(const struct xmig_recv *rv)
{
	return rv->o->max_epoch_bytes > 0 ? rv->o->max_epoch_bytes :
	    RECV_EPOCH_BYTES_DEFAULT;
}

/* Forget the epoch being buffered (a failover, a failure). */
static void
recv_epoch_drop(struct xmig_recv *rv)
{
	rv->ep_n = 0;
	rv->ep_len = 0;
	rv->ep_octets = 0;
	rv->ep_records = 0;
	state_list_free(&rv->ep_state);
}

static void
recv_epoch_free(struct xmig_recv *rv)
{
	recv_epoch_drop(rv);
	free(rv->ep_pages);
	free(rv->ep_data);
	rv->ep_pages = NULL;
	rv->ep_data = NULL;
	rv->ep_cap = rv->ep_data_cap = 0;
}

/* Buffer a page of the epoch (data NULL: a zero page). */
static int
recv_epoch_page(struct xmig_recv *rv, uint64_t pfn, const uint8_t *data,
    size_t ps)
{
	struct recv_epage *pg;

	if (rv->ep_n == rv->ep_cap) {
		size_t cap = rv->ep_cap ? rv->ep_cap * 2 : 1024;

		if ((pg = realloc(rv->ep_pages, cap * sizeof(*pg))) == NULL)
			return -ENOMEM;
		rv->ep_pages = pg;
		rv->ep_cap = cap;
	}
	pg = &rv->ep_pages[rv->ep_n];
	pg->pfn = pfn;
	pg->off = RECV_EPAGE_ZERO;
	if (data != NULL) {
		if (rv->ep_len + ps > rv->ep_data_cap) {
			size_t cap = rv->ep_data_cap ? rv->ep_data_cap * 2 :
			    (size_t)256 * ps;
			uint8_t *d;

			while (cap < rv->ep_len + ps)
				cap *= 2;
			if ((d = realloc(rv->ep_data, cap)) == NULL)
				return -ENOMEM;
			rv->ep_data = d;
			rv->ep_data_cap = cap;
		}
		memcpy(rv->ep_data + rv->ep_len, data, ps);
		pg->off = rv->ep_len;
		rv->ep_len += ps;
	}
	rv->ep_n++;
	return 0;
}

/* PAGE_DATA or XMIG_ZERO_PAGES inside an epoch: buffered, not applied. */
static int
recv_epoch_pages(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xp_page_view v;
	const uint8_t *src;
	size_t ps = (size_t)1 << st->page_shift;
	uint32_t i;
	char where[128];
	int rc;

	if (body_page_data_view(st, rec, &v) != 0 ||
	    v.count > WIRE_PAGE_DATA_MAX)
		return recv_fail(rv, -EPROTO, "%s: bad page list",
		    recv_where(rec, where, sizeof(where)));
	if ((rc = recv_page_data(rv, st, rec, &v, &src)) != 0)
		return rc;
	for (i = 0; i < v.count; i++) {
		uint64_t e64 = xp_page_view_entry(&v, i);
		unsigned type = (unsigned)(e64 >> WIRE_PFN_TYPE_SHIFT);
		uint64_t pfn = e64 & WIRE_PFN_MASK;

		if (rv->negotiated && pfn >= rv->neg_pages)
			return recv_fail(rv, -ERANGE, "%s: pfn %llu is beyond "
			    "the %llu pages XMIG_NEGOTIATE announced",
			    recv_where(rec, where, sizeof(where)),
			    (unsigned long long)pfn,
			    (unsigned long long)rv->neg_pages);
		if (type == PT_XTAB || type == PT_BROKEN)
			continue;
		if (v.zero || !body_page_type_has_data(type))
			rc = recv_epoch_page(rv, pfn, NULL, ps);
		else {
			rc = recv_epoch_page(rv, pfn, src, ps);
			src += ps;
		}
		if (rc != 0)
			return recv_fail(rv, rc, "out of memory buffering "
			    "epoch %llu", (unsigned long long)rv->epoch + 1);
	}
	return 0;
}

/* XMIG_CHECKPOINT_ACK for the epoch just committed (rec: its CHECKPOINT). */
static void
recv_send_ckpt_ack(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xp_checkpoint_ack a;
	struct xp_buf buf = { 0 };

	if (!(rv->features & XMIG_F_CHECKPOINTS))
		return;
	a.epoch = rv->epoch;
	a.octets = rec->offset + record_wire_size(st, rec->length);
	if (control_checkpoint_ack_put(&buf, &a) == 0)
		recv_bc_send(rv, &buf);
	else
		buf_free(&buf);
}

/*
 * CHECKPOINT closed an epoch that arrived whole and verified (every
 * record passed the parser, checksums included): apply it, all of it,
 * now; then acknowledge it.  The first epoch was applied as it came
 * (there was nothing to fall back to): it only completes the domain.
 */
static int
recv_commit(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	const struct backend_ops *ops = rv->b->ops;
	uint64_t pfns[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX], *cookie;
	size_t ps = (size_t)1 << st->page_shift, i, j, n;
	char where[128];
	int rc = 0;

	recv_where(rec, where, sizeof(where));
	for (i = 0; i < rv->ep_n; i += n) {
		n = rv->ep_n - i < WIRE_PAGE_DATA_MAX ? rv->ep_n - i :
		    WIRE_PAGE_DATA_MAX;
		for (j = 0; j < n; j++)
			pfns[j] = rv->ep_pages[i + j].pfn;
		if ((rc = ops->populate(rv->b, pfns, (unsigned)n)) != 0)
			goto fail;
		cookie = NULL;
		if ((rc = ops->map(rv->b, pfns, (unsigned)n, 1, pages,
		    &cookie)) != 0)
			goto fail;
		for (j = 0; j < n; j++) {
			const struct recv_epage *pg = &rv->ep_pages[i + j];

			if (pg->off == RECV_EPAGE_ZERO)
				memset(pages[j], 0, ps);
			else
				memcpy(pages[j], rv->ep_data + pg->off, ps);
		}
		ops->unmap(rv->b, cookie, (unsigned)n);
	}
	if (rv->ep_state.n > 0) {
		/* The vcpu digest is the committed state's. */
		digest_state_free(rv->dstate);
		if ((rv->dstate = digest_state_new()) == NULL)
			return recv_fail(rv, -ENOMEM, "out of memory");
	}
	for (i = 0; i < rv->ep_state.n; i++) {
		const struct state_rec *sr = &rv->ep_state.recs[i];

		if ((rc = ops->load_state(rv->b, sr->type, sr->body,
		    sr->len)) != 0)
			goto fail;
		digest_state_add(rv->dstate, sr->type, sr->body, sr->len);
	}
	if ((rc = ops->complete(rv->b)) != 0)
		goto fail;
	rv->epoch++;
	rv->r.epoch = rv->epoch;
	recv_debug(rv, "+%.1f ms: epoch %llu committed: %zu pages, %zu state "
	    "records, %llu octets", recv_ms(rv),
	    (unsigned long long)rv->epoch, rv->ep_n, rv->ep_state.n,
	    (unsigned long long)rv->ep_octets);
	recv_epoch_drop(rv);
	recv_send_ckpt_ack(rv, st, rec);
	if (rv->epoch == 1 && rv->bev != NULL) {
		/* From now on, silence means the primary is gone. */
		double ms = recv_failover_ms(rv);
		struct timeval tv = { (time_t)(ms / 1000),
		    (suseconds_t)((ms - (double)(time_t)(ms / 1000) * 1000) *
		    1000) };

		bufferevent_set_timeouts(rv->bev, &tv, NULL);
	}
	return 0;
fail:
	/*
	 * Applying failed half-way: the domain holds neither epoch.  Fatal
	 * (a backend fault, not the stream's): nothing is kept.
	 */
	recv_fail(rv, rc, "%s: committing epoch %llu: %s", where,
	    (unsigned long long)rv->epoch + 1, backend_errmsg(rv->b));
	rv->epoch = 0;
	rv->r.have_epoch = 0;
	return -XP_ECALLBACK;
}

/* A record after the first CHECKPOINT: buffered until the next one. */
static int
recv_epoch_record(struct xmig_recv *rv, const struct xp_stream *st,
    const struct xp_record *rec)
{
	const uint8_t *body;
	char where[128];
	int rc;

	if (rec->type == REC_CHECKPOINT)
		return recv_commit(rv, st, rec);
	if (rec->type == REC_END) {
		if (rv->ep_records != 0)
			return recv_fail(rv, -EPROTO, "%s: END inside epoch "
			    "%llu (%llu record%s after CHECKPOINT %llu): a "
			    "checkpointed stream ends right after a "
			    "CHECKPOINT", recv_where(rec, where,
			    sizeof(where)), (unsigned long long)rv->epoch + 1,
			    (unsigned long long)rv->ep_records,
			    rv->ep_records == 1 ? "" : "s",
			    (unsigned long long)rv->epoch);
		rv->stopped = 1;
		rv->phase = RV_DONE;
		xmig_cbs_log(rv->cbs, XMIG_LOG_INFO, "replication stopped in "
		    "order after epoch %llu: the primary runs on; this copy "
		    "is discarded", (unsigned long long)rv->epoch);
		return 0;
	}
	rv->ep_records++;
	rv->ep_octets += rec->length;
	if (rv->ep_octets > recv_epoch_max(rv))
		return recv_fail(rv, -EFBIG, "%s: epoch %llu has grown to "
		    "%llu octets, beyond --max-epoch-bytes %llu: replication "
		    "stopped (the backup keeps epoch %llu and does not run "
		    "it)", recv_where(rec, where, sizeof(where)),
		    (unsigned long long)rv->epoch + 1,
		    (unsigned long long)rv->ep_octets,
		    (unsigned long long)recv_epoch_max(rv),
		    (unsigned long long)rv->epoch);
	switch (rec->type) {
	case REC_PAGE_DATA:
	case REC_XMIG_ZERO_PAGES:
		return recv_epoch_pages(rv, st, rec);
	case REC_TOOLSTACK:
	case REC_XMIG_EARLY_PARAMS:
	case REC_XMIG_DOMAIN_CONFIG:
		return 0;
	case REC_VERIFY:
		return recv_fail(rv, -EPROTO, "%s: VERIFY is not valid in a "
		    "checkpointed stream", recv_where(rec, where,
		    sizeof(where)));
	case REC_XMIG_DELTA_PAGES:
		/* Never agreed in a checkpointed stream (SPEC 12.7). */
		return recv_fail(rv, -EPROTO, "%s: delta-encoded pages in a "
		    "stream that did not agree to them (feature DELTA)",
		    recv_where(rec, where, sizeof(where)));
	default:
		if (!rec->known)
			return 0;
		if ((rc = recv_body_le(rv, st, rec, &body)) != 0)
			return rc;
		if (state_list_add(&rv->ep_state, rec->type, body,
		    rec->length) != 0)
			return recv_fail(rv, -ENOMEM, "out of memory");
		return 0;
	}
}

/*
 * The primary is gone (its connection ended without END, or it was
 * silent for the failover timeout): run the last committed epoch.
 * 0 if this copy now runs, -1 if there was nothing to fail over to.
 */
static int
recv_failover(struct xmig_recv *rv, const char *why)
{
	int64_t outs;
	int rc;

	if (!rv->ckpt || rv->epoch == 0 || rv->stopped || rv->running ||
	    rv->b == NULL)
		return -1;
	if (rv->rc != 0 && rv->rc != -EPIPE && rv->rc != -EIO &&
	    rv->rc != -ETIMEDOUT)
		return -1;	/* the stream was refused: the primary lives */
	recv_epoch_drop(rv);
	rv->r.outputs_in_state = -1;
	if (rv->b->ops->output_count != NULL &&
	    (outs = rv->b->ops->output_count(rv->b)) >= 0)
		rv->r.outputs_in_state = outs;
	if ((rc = rv->b->ops->resume(rv->b)) != 0) {
		rv->rc = 0;
		recv_fail(rv, rc, "failover: starting epoch %llu: %s",
		    (unsigned long long)rv->epoch, backend_errmsg(rv->b));
		return -1;
	}
	rv->rc = 0;
	rv->err[0] = '\0';
	rv->perr = NULL;
	rv->running = 1;
	rv->failover = 1;
	rv->phase = RV_DONE;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		rv->r.failover_at_ms = (double)ts.tv_sec * 1e3 +
		    (double)ts.tv_nsec / 1e6;
	}
	xmig_cbs_log(rv->cbs, XMIG_LOG_INFO, "failover: %s; the domain runs "
	    "here from epoch %llu", why, (unsigned long long)rv->epoch);
	return 0;
}

static int
recv_record_cb(void *arg, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xmig_recv *rv = arg;
	char where[128];
	int rc;

	rv->nrec = rec->index + 1;
	if (rec->type == REC_XMIG_NEGOTIATE)
		return recv_negotiate(rv, st, rec);
	if (rv->busy != NULL)	/* over the limit: never restore */
		return recv_fail(rv, -EBUSY, "%s", rv->busy);
	if (rv->reply_pending)
		return recv_config_reply(rv, st, rec);
	if (rec->type == REC_XMIG_DOMAIN_CONFIG)
		return recv_config(rv, st, rec, NULL, 0);
	if (!rec->known)
		return 0;	/* unknown optional record: skipped */
	if (rv->b == NULL && recv_open_target(rv, st) != 0)
		return -XP_ECALLBACK;
	if (rv->ckpt && rv->epoch > 0)
		return recv_epoch_record(rv, st, rec);
	switch (rec->type) {
	case REC_PAGE_DATA:
	case REC_XMIG_ZERO_PAGES:
		rc = recv_pages(rv, st, rec);
		break;
	case REC_XMIG_DELTA_PAGES:
		rc = recv_delta_pages(rv, st, rec);
		break;
	case REC_END:
		if (rv->ckpt)
			return recv_fail(rv, -EPROTO, "%s: END before the "
			    "first CHECKPOINT of a checkpointed stream",
			    recv_where(rec, where, sizeof(where)));
		return recv_end(rv);
	case REC_VERIFY:
		if (rv->rx != NULL)
			return recv_fail(rv, -EPROTO, "%s: VERIFY with data "
			    "streams (their pages are written, never compared)",
			    recv_where(rec, where, sizeof(where)));
		if (rv->ckpt)
			return recv_fail(rv, -EPROTO, "%s: VERIFY is not valid "
			    "in a checkpointed stream", recv_where(rec, where,
			    sizeof(where)));
		rv->verify_mode = 1;
		return 0;
	case REC_STATIC_DATA_END:
	case REC_TOOLSTACK:
		return 0;
	case REC_XMIG_EARLY_PARAMS:
		rc = recv_early(rv, st, rec);
		break;
	case REC_CHECKPOINT:
		if (!rv->ckpt)
			return recv_fail(rv, -EPROTO, "%s: a CHECKPOINT in a "
			    "stream that is not checkpointed (XMIG_NEGOTIATE "
			    "did not offer CHECKPOINTS)",
			    recv_where(rec, where, sizeof(where)));
		return recv_commit(rv, st, rec);
	default:
		rc = recv_state(rv, st, rec);
		break;
	}
	if (rc == 0 && (rv->features & XMIG_F_ACKS) &&
	    rec->offset - rv->last_ack >= RECV_ACK_EVERY)
		recv_send_ack(rv);
	return rc;
}

/* GO: the domain is ours.  Start it, say so, then send the digests. */
static int
recv_control_cb(void *arg, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct xmig_recv *rv = arg;
	struct xp_handover h;
	int rc;

	(void)st;
	if (rv->phase != RV_WAIT_GO || control_handover_get(rec, &h) != 0)
		return recv_fail(rv, -EPROTO, "unexpected control record");
	recv_debug(rv, "+%.1f ms: %s received", recv_ms(rv),
	    h.command == XMIG_HANDOVER_ABORT ? "ABORT" : "GO");
	if (h.command == XMIG_HANDOVER_ABORT)
		return recv_fail(rv, -ECANCELED, "the sender aborted the "
		    "handover: the restored copy is discarded");
	if ((rc = rv->b->ops->resume(rv->b)) != 0)
		return recv_fail(rv, rc, "starting the restored domain: %s",
		    backend_errmsg(rv->b));
	if (rv->ts != NULL) {
		char msg[400] = "";

		if ((rc = rv->ts->start(rv->ts->arg, msg, sizeof(msg))) != 0)
			return recv_fail(rv, rc, "starting the restored "
			    "domain: %s", msg);
	}
	rv->running = 1;
	recv_send_status(rv, XMIG_STATUS_RUNNING, NULL);
	recv_debug(rv, "+%.1f ms: domain resumed; RUNNING sent", recv_ms(rv));
	rv->phase = RV_RUNNING;
	return XP_PAUSE;
}

/*
 * The memory digest's hash: what the negotiation agreed (XMIG_F_XXH3 or
 * SHA-256), or this receiver's own choice on a one-way stream.
 */
static enum xmig_digest
recv_digest_alg(const struct xmig_recv *rv)
{
	if (rv->r.backchannel)
		return (rv->features & XMIG_F_XXH3) ? XMIG_DIGEST_XXH3 :
		    XMIG_DIGEST_SHA256;
	return rv->o->digest;
}

static void *
recv_digest_main(void *arg)
{
	struct xmig_recv *rv = arg;

	rv->dg_rc = digest_memory(rv->b, rv->info.nr_pages,
	    1u << rv->info.page_shift, rv->r.memory_alg, rv->r.memory_digest);
	__atomic_store_n(&rv->dg_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
recv_digests_join(struct xmig_recv *rv)
{
	if (!rv->digesting)
		return;
	pthread_join(rv->dg_thr, NULL);
	rv->digesting = 0;
	rv->mem_done = 1;
	rv->r.have_memory = rv->dg_rc == 0;
}

static void
recv_digests(struct xmig_recv *rv)
{
	struct xp_digests d;
	struct xp_buf buf = { 0 };

	if (rv->digests_done)
		return;
	rv->digests_done = 1;
	if (rv->o->no_digest) {
		/* No DIGESTS: the sender completes when we close. */
		recv_debug(rv, "+%.1f ms: no digests (not asked for)", recv_ms(rv));
		return;
	}
	if (rv->digesting)
		recv_digests_join(rv);
	if (!rv->mem_done) {
		rv->info.nr_pages = 0;
		rv->b->ops->describe(rv->b, &rv->info);
		rv->r.memory_alg = recv_digest_alg(rv);
		rv->r.have_memory = digest_memory(rv->b, rv->info.nr_pages,
		    1u << rv->info.page_shift, rv->r.memory_alg,
		    rv->r.memory_digest) == 0;
		rv->mem_done = 1;
	}
	digest_state_final(rv->dstate, rv->r.vcpu_sha256);
	rv->r.have_vcpu = 1;
	rv->r.nr_pages = rv->info.nr_pages;
	recv_debug(rv, "+%.1f ms: digests computed over %llu pages", recv_ms(rv),
	    (unsigned long long)rv->info.nr_pages);
	if (rv->phase != RV_RUNNING || !rv->r.have_memory)
		return;
	memcpy(d.memory_digest, rv->r.memory_digest, 32);
	memcpy(d.vcpu_sha256, rv->r.vcpu_sha256, 32);
	d.nr_pages = rv->info.nr_pages;
	if (control_digests_put(&buf, &d) == 0) {
		if (recv_bc_send(rv, &buf) == 0)
			recv_debug(rv, "+%.1f ms: DIGESTS sent", recv_ms(rv));
	} else
		buf_free(&buf);
}

/* Octets after END: name where, as the parser names a bad record. */
static void
recv_after_end(struct xmig_recv *rv)
{
	recv_fail(rv, -EPROTO, "invalid stream: record %llu at offset %llu: "
	    "data after END", (unsigned long long)rv->nrec,
	    (unsigned long long)parser_offset(rv->p));
}

/* Feed n octets to the parser of the current phase. */
static ssize_t
recv_feed(struct xmig_recv *rv, const uint8_t *buf, size_t n)
{
	struct xp_parser *p = rv->phase == RV_STREAM ? rv->p : rv->ctl;
	ssize_t used;

	if (rv->phase == RV_DONE && n > 0) {
		recv_after_end(rv);
		return -1;
	}
	if (p == NULL || rv->phase > RV_WAIT_GO)
		return (ssize_t)n;	/* nothing more is expected: drop */
	used = parser_feed(p, buf, n);
	if (used < 0 && rv->rc == 0 && rv->busy != NULL) {
		rv->perr = parser_error(p);
		recv_fail(rv, -EBUSY, "%s", rv->busy);
	} else if (used < 0 && rv->rc == 0) {
		const struct xp_error *e = parser_error(p);

		rv->perr = e;
		rv->rc = -EPROTO;
		snprintf(rv->err, sizeof(rv->err), "invalid %s: %s",
		    p == rv->p ? "stream" : "control record",
		    e->msg[0] ? e->msg : xp_strerror((int)-used));
	} else if (used < 0 && p == rv->p)
		rv->perr = parser_error(p);
	return used;
}

static void
recv_at_eof(struct xmig_recv *rv)
{
	if (rv->rc != 0)
		return;
	if (rv->phase == RV_STREAM && recv_failover(rv, "the primary's "
	    "stream ended without an orderly stop") == 0)
		return;
	if (rv->phase == RV_STREAM && parser_finish(rv->p) != 0) {
		rv->perr = parser_error(rv->p);
		recv_fail(rv, -EPIPE, "the stream ended early: %s",
		    rv->perr->msg);
	} else if (rv->phase == RV_WAIT_GO) {
		if (parser_finish(rv->ctl) != 0) {
			recv_fail(rv, -EPIPE, "the sender went away in the "
			    "middle of a control record: the restored copy is "
			    "discarded");
			return;
		}
		/*
		 * An orderly close after END and no GO: the sender never
		 * saw our REPLY and went one-way (or died with its copy).
		 * Nobody else will start the domain: start it (SPEC 13.4).
		 * A sender that failed resets the connection or says ABORT.
		 */
		xmig_cbs_log(rv->cbs, XMIG_LOG_INFO, "the sender closed "
		    "without GO after a complete stream: taking the domain "
		    "as one-way");
		rv->features &= ~XMIG_F_HANDOVER;
		rv->phase = RV_DONE;
	}
}

/* ---- socket source (libevent) ------------------------------------------- */

/* How long a refusing ("busy") session may read, and linger after. */
static void
recv_busy_tv(struct timeval *tv)
{
	tv->tv_sec = RECV_BUSY_DEADLINE_MS / 1000;
	tv->tv_usec = (RECV_BUSY_DEADLINE_MS % 1000) * 1000;
}

/* Output empty: after a success over TLS say goodbye properly. */
static void
recv_closed(struct xmig_recv *rv)
{
	char err[128];

	if (rv->tls && rv->rc == 0 &&
	    xport_tls_shutdown(rv->bev, err, sizeof(err)) == 1) {
		struct timeval tv = { 0, 100000 };

		evtimer_add(rv->timer, &tv);	/* let it leave */
		rv->phase = RV_CLOSING;
		rv->tls = 0;
		return;
	}
	if (rv->rc != 0 && rv->bc_spoke) {
		/*
		 * Our last word (ERROR, a refusing REPLY) must reach the
		 * sender: a close with its data unread would reset the
		 * connection and discard it there.  Close our side, read and
		 * drop theirs until they close or the timer ends it.
		 */
		struct timeval tv = { 2, 0 };

		if (rv->busy != NULL)
			recv_busy_tv(&tv);
		if (rv->tls)
			xport_tls_shutdown(rv->bev, err, sizeof(err));
		else
			shutdown(bufferevent_getfd(rv->bev), SHUT_WR);
		rv->tls = 0;
		rv->phase = RV_DRAIN;
		bufferevent_enable(rv->bev, EV_READ);
		evtimer_add(rv->timer, &tv);
		return;
	}
	rv->phase = RV_DONE;
	recv_finish_soon(rv);
}

static void
recv_close_soon(struct xmig_recv *rv)
{
	struct timeval tv = { RECV_FLUSH_TIMEOUT, 0 };

	if (rv->busy != NULL)
		recv_busy_tv(&tv);
	rv->phase = RV_CLOSING;
	if (rv->bev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(rv->bev)) == 0) {
		recv_closed(rv);
		return;
	}
	bufferevent_disable(rv->bev, EV_READ);
	evtimer_add(rv->timer, &tv);
}

static void
recv_after_input(struct xmig_recv *rv)
{
	if (rv->rc != 0) {
		recv_send_error(rv);
		recv_close_soon(rv);
	} else if (rv->phase == RV_DONE) {
		recv_finish_soon(rv);
	} else if (rv->phase == RV_STREAM)
		recv_progress(rv, 0);
}

static void
recv_digests_poll(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_recv *rv = arg;
	struct timeval tv = { 0, 5000 };

	(void)fd;
	(void)what;
	if (!__atomic_load_n(&rv->dg_done, __ATOMIC_ACQUIRE)) {
		evtimer_add(rv->dg_ev, &tv);
		return;
	}
	recv_digests_join(rv);
	if (rv->phase == RV_RUNNING) {
		recv_digests(rv);
		recv_close_soon(rv);
	}
}

/*
 * RUNNING is out: the digests, then close.  The memory digest reads the
 * whole domain: it runs in a thread so that the loop (and the other
 * sessions on it) go on meanwhile.
 */
static void
recv_digests_soon(struct xmig_recv *rv)
{
	struct timeval tv = { 0, 5000 };

	if (rv->digesting)
		return;
	if (rv->o->no_digest || rv->mem_done || rv->digests_done)
		goto now;
	rv->info.nr_pages = 0;
	rv->b->ops->describe(rv->b, &rv->info);
	rv->r.memory_alg = recv_digest_alg(rv);
	if (rv->dg_ev == NULL &&
	    (rv->dg_ev = evtimer_new(rv->base, recv_digests_poll, rv)) == NULL)
		goto now;
	if (pthread_create(&rv->dg_thr, NULL, recv_digest_main, rv) != 0)
		goto now;
	rv->digesting = 1;
	evtimer_add(rv->dg_ev, &tv);
	return;
now:
	recv_digests(rv);
	recv_close_soon(rv);
}

static void
recv_read_cb(struct bufferevent *bev, void *arg)
{
	struct xmig_recv *rv = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;

	if (rv->phase == RV_DRAIN) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (rv->rc == 0 && rv->phase <= RV_WAIT_GO &&
	    (len = evbuffer_get_length(in)) > 0) {
		struct xp_parser *p = rv->phase == RV_STREAM ? rv->p : rv->ctl;
		size_t want = p ? parser_want(p) : len;
		ssize_t used;

		if (want == 0)
			want = len;	/* done: recv_feed decides */
		if (want <= len && !(p != NULL && parser_direct_active(p))) {
			/* The whole unit is here: parse it in place. */
			uint8_t *q = evbuffer_pullup(in, (ev_ssize_t)want);

			if (q == NULL) {
				recv_fail(rv, -ENOMEM, "out of memory");
				break;
			}
			used = recv_feed(rv, q, want);
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
	if (rv->rc == 0 && evbuffer_get_length(in) == 0 && rv->tls_ctx == NULL)
		(void)recv_direct_read(rv, bufferevent_getfd(bev), 1);
	if (rv->rc == 0 && rv->phase == RV_DONE && evbuffer_get_length(in))
		recv_after_end(rv);
	if (rv->rc == 0 && rv->phase == RV_RUNNING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		/* RUNNING is out: the digests do not delay the sender. */
		recv_digests_soon(rv);
		return;
	}
	recv_after_input(rv);
}

static void
recv_write_cb(struct bufferevent *bev, void *arg)
{
	struct xmig_recv *rv = arg;

	if (rv->phase == RV_RUNNING) {
		recv_digests_soon(rv);
	} else if (rv->phase == RV_CLOSING)
		recv_closed(rv);
}

static void
recv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct xmig_recv *rv = arg;
	char why[256];

	if (what & BEV_EVENT_CONNECTED)
		return;		/* the TLS handshake is done */
	if (rv->phase >= RV_CLOSING) {
		rv->phase = RV_DONE;
		recv_finish_soon(rv);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && rv->phase == RV_STREAM &&
	    rv->rc == 0 && rv->ckpt && rv->epoch > 0) {
		int queued = 0;

		/*
		 * libevent reports the timeout alone when its loop itself was
		 * held up past it (a busy machine), even if octets arrived
		 * meanwhile: only a socket with nothing waiting is silence.
		 */
		if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
		    (ioctl(bufferevent_getfd(bev), FIONREAD, &queued) == 0 &&
		    queued > 0)) {
			recv_debug(rv, "+%.1f ms: the failover timeout fired "
			    "with %d octets waiting: the loop was late, not "
			    "the primary", recv_ms(rv), queued);
			bufferevent_enable(bev, EV_READ);
			recv_read_cb(bev, rv);
			return;
		}
		snprintf(why, sizeof(why), "nothing from the primary for %.0f "
		    "ms (--failover-timeout)", recv_failover_ms(rv));
		if (recv_failover(rv, why) == 0) {
			recv_finish_soon(rv);
			return;
		}
	}
	if (what & BEV_EVENT_TIMEOUT) {
		recv_fail(rv, -ETIMEDOUT, "the sender stopped sending: no "
		    "data for %.0f s (--timeout); nothing of it is kept",
		    RECV_TIMEOUT(rv));
		recv_send_error(rv);
		recv_close_soon(rv);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		recv_read_cb(bev, rv);	/* whatever is still buffered */
		recv_at_eof(rv);
	} else if (rv->rc == 0) {
		xport_bev_error(bev, why, sizeof(why));
		if (rv->phase != RV_STREAM || recv_failover(rv, why) != 0)
			recv_fail(rv, -EIO, "connection: %s", why);
	}
	if (rv->phase == RV_RUNNING && rv->rc == 0) {
		recv_digests(rv);	/* the sender left: keep running */
		rv->phase = RV_DONE;
	}
	recv_finish_soon(rv);
}

static void
recv_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_recv *rv = arg;

	if (rv->phase == RV_WAIT_GO)
		recv_fail(rv, -ETIMEDOUT, "no GO from the sender within %.0f s: "
		    "the restored copy is discarded", RECV_TIMEOUT(rv));
	if (rv->phase == RV_STREAM && rv->busy != NULL)
		recv_fail(rv, -EBUSY, "%s", rv->busy);	/* said nothing */
	rv->phase = RV_DONE;	/* or: a last message would not leave */
	recv_finish_soon(rv);
}

static int
recv_start_socket(struct xmig_recv *rv, void *tls_ctx)
{
	if ((rv->timer = evtimer_new(rv->base, recv_timer_cb, rv)) == NULL) {
		close(rv->fd);
		rv->fd = -1;
		recv_fail(rv, -ENOMEM, "out of memory");
		recv_finish_soon(rv);
		return rv->rc;
	}
	rv->bev = xport_bev_new(rv->base, rv->fd, tls_ctx, 1, NULL, rv->err,
	    sizeof(rv->err));
	if (rv->bev == NULL) {
		rv->fd = -1;
		rv->rc = -EIO;
		recv_finish_soon(rv);
		return rv->rc;
	}
	rv->bc_possible = 1;
	rv->tls = tls_ctx != NULL;
	bufferevent_set_max_single_read(rv->bev, RECV_READ_CHUNK);
	{
		double t = RECV_TIMEOUT(rv);
		struct timeval rt = { (time_t)t,
		    (suseconds_t)((t - (double)(time_t)t) * 1e6) };

		bufferevent_set_timeouts(rv->bev, &rt, NULL);
	}
	bufferevent_setcb(rv->bev, recv_read_cb, recv_write_cb, recv_event_cb,
	    rv);
	bufferevent_enable(rv->bev, EV_READ | EV_WRITE);
	if (rv->busy != NULL) {
		struct timeval tv;

		recv_busy_tv(&tv);
		evtimer_add(rv->timer, &tv);	/* refuse within this */
	}
	return 0;
}

/* ---- file and pipe source ------------------------------------------------ */

/*
 * A pipe or socket read without the event loop: wait for data up to
 * --timeout.  0, or -1 after recv_fail (a regular file never waits).
 */
static int
recv_wait_data(struct xmig_recv *rv)
{
	struct pollfd pfd = { .fd = rv->fd, .events = POLLIN };
	double ms = rv->ckpt && rv->epoch > 0 ? recv_failover_ms(rv) :
	    RECV_TIMEOUT(rv) * 1000;
	char why[128];

	if (xport_is_regular(rv->fd) || poll(&pfd, 1, (int)ms) != 0)
		return 0;
	snprintf(why, sizeof(why), "nothing from the primary for %.0f ms "
	    "(--failover-timeout)", ms);
	if (rv->ckpt && rv->epoch > 0 && recv_failover(rv, why) == 0)
		return -1;
	recv_fail(rv, -ETIMEDOUT, "the sender stopped sending: no data for "
	    "%.0f s (--timeout); nothing of it is kept", RECV_TIMEOUT(rv));
	return -1;
}

static int
recv_run_fd(struct xmig_recv *rv)
{
	uint8_t *buf = malloc(RECV_READ_CHUNK);
	ssize_t n, used, off;

	if (buf == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory"), rv->rc;
	while (rv->rc == 0 && rv->phase <= RV_WAIT_GO) {
		if (rv->phase == RV_WAIT_GO) {
			struct pollfd pfd = { .fd = rv->fd, .events = POLLIN };

			if (poll(&pfd, 1, (int)(RECV_TIMEOUT(rv) * 1000)) ==
			    0) {
				recv_fail(rv, -ETIMEDOUT, "no GO from the "
				    "sender within %.0f s: the restored copy "
				    "is discarded", RECV_TIMEOUT(rv));
				break;
			}
		} else if (recv_wait_data(rv) != 0)
			break;
		if (rv->phase == RV_STREAM &&
		    (n = recv_direct_read(rv, rv->fd, 0)) != 0) {
			if (n > 0)
				recv_progress(rv, 0);
			continue;	/* read into guest pages */
		}
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
		for (off = 0; off < n && rv->rc == 0; off += used) {
			if ((used = recv_feed(rv, buf + off,
			    (size_t)(n - off))) < 0)
				break;
			if (rv->phase == RV_RUNNING) {
				recv_digests(rv);
				rv->phase = RV_DONE;
			}
			if (rv->phase == RV_DONE && off + used < n) {
				recv_after_end(rv);
				break;
			}
		}
		recv_progress(rv, 0);
	}
	/* Data after END in a file or pipe is an error too. */
	if (rv->rc == 0 && rv->phase == RV_DONE && !rv->running) {
		n = read(rv->fd, buf, 1);
		if (n > 0)
			recv_after_end(rv);
	}
	if (rv->rc != 0)
		recv_send_error(rv);
	free(buf);
	return rv->rc;
}

/* ---- a stream that others read on after END ------------------------------ */

/* The largest record read whole into one buffer (larger ones are gathered). */
#define RECV_EXACT_MAX		(16u << 20)

/* Read n octets (fewer only at end of input); -1 after recv_fail. */
static ssize_t
recv_read_full(struct xmig_recv *rv, uint8_t *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (recv_wait_data(rv) != 0)
			return -1;
		r = read(rv->fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			recv_fail(rv, -errno, "read: %s", strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * Read no octet past END (the caller reads on from the same fd: libxl's
 * own records follow the libxc stream).  Headers are read as the parser
 * asks; each record is read whole, its header first for its length, into
 * one buffer fed at once, so the parser hands it on in place without a
 * gathering copy.  One-way only: no back-channel on such a stream.
 */
static int
recv_run_exact(struct xmig_recv *rv)
{
	const struct xp_stream *st;
	size_t cap = RECV_READ_CHUNK, want, hs, wire, len;
	uint64_t next = UINT64_MAX;	/* parser offset of the next record */
	uint8_t *buf = malloc(cap), *nb;
	ssize_t got, used, off;

	if (buf == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory"), rv->rc;
	while (rv->rc == 0 && rv->phase == RV_STREAM) {
		if ((want = parser_want(rv->p)) == 0)
			break;
		st = parser_stream(rv->p);
		if (st != NULL && next == UINT64_MAX)
			next = parser_offset(rv->p);	/* the first record */
		len = want < cap ? want : cap;
		hs = st != NULL ? record_hdr_size(st) : 0;
		if (st != NULL && parser_offset(rv->p) == next && want == hs) {
			if ((got = recv_read_full(rv, buf, hs)) < 0)
				break;
			len = hs;
			if (got == (ssize_t)hs) {
				wire = record_wire_size(st,
				    xp_get32(st->big_endian, buf + 4));
				next = parser_offset(rv->p) + wire;
				if (wire > cap && wire <= RECV_EXACT_MAX &&
				    (nb = realloc(buf, wire)) != NULL) {
					buf = nb;
					cap = wire;
				}
				if (wire <= cap) {
					ssize_t more = recv_read_full(rv,
					    buf + hs, wire - hs);

					if (more < 0)
						break;
					got += more;
					len = wire;
				}
			}
		} else if ((got = recv_read_full(rv, buf, len)) < 0)
			break;
		for (off = 0; off < got && rv->rc == 0; off += used)
			if ((used = recv_feed(rv, buf + off,
			    (size_t)(got - off))) < 0)
				break;
		if (rv->rc == 0 && rv->phase == RV_STREAM &&
		    (size_t)got < len) {
			recv_at_eof(rv);
			break;
		}
		recv_progress(rv, 0);
	}
	if (rv->rc != 0)
		recv_send_error(rv);
	free(buf);
	return rv->rc;
}

/* ---- one migration ------------------------------------------------------ */

/* Set up rv for fd; 0, or -errno after recv_fail. */
static int
recv_init(struct xmig_recv *rv, const struct recv_opts *o,
    const struct xmig_cbs *cbs, int fd, int out_fd)
{
	struct xp_limits lim;

	rv->o = o;
	rv->cbs = cbs;
	rv->fd = fd;
	rv->out_fd = out_fd;
	rv->ts = o->toolstack;
	rv->bc_possible = out_fd >= 0;
	rv->r.role = "receive";
	rv->r.status = "failed";
	rv->r.outputs_in_state = -1;
	rv->r.verified = -1;
	rv->t_start = now_ns();
	rv->ops = backend_lookup(o->backend, &rv->bspec);
	if (rv->ops == NULL)
		return recv_fail(rv, -EINVAL, "%s: unknown backend",
		    o->backend), rv->rc;
	memset(&lim, 0, sizeof(lim));
	if (o->max_memory > 0)
		lim.max_pfn = o->max_memory >> 12;
	if (rv->busy != NULL)	/* only an XMIG_NEGOTIATE is read */
		lim.max_record_len = RECV_BUSY_RECORD_MAX;
	rv->dstate = digest_state_new();
	rv->p = parser_new(&lim, recv_header_cb, recv_record_cb, rv);
	if (rv->dstate == NULL || rv->p == NULL)
		return recv_fail(rv, -ENOMEM, "out of memory"), rv->rc;
	parser_set_direct(rv->p, &recv_direct);
	return 0;
}

/*
 * After the stream: a one-way domain started, a failed one destroyed, the
 * report filled.  Returns the session's rc.
 */
static int
recv_finish(struct xmig_recv *rv)
{
	const struct recv_opts *o = rv->o;
	uint64_t t_end;
	int rc;

	streams_rx_free(rv->rx);	/* every worker joined, before a destroy */
	rv->rx = NULL;
	if (rv->ops == NULL || rv->p == NULL)
		goto report;	/* recv_init failed */
	recv_direct_release(rv);	/* a stream cut inside a record */
	recv_debug(rv, "%llu of %llu records read straight into guest pages, "
	    "%llu octets of them by read(2) there", (unsigned long long)
	    rv->d_records, (unsigned long long)rv->nrec,
	    (unsigned long long)rv->d_read);
	if (rv->rc == 0 && rv->phase != RV_DONE)
		recv_fail(rv, -EIO, "the migration ended early");
	if (rv->rc == 0 && rv->stopped) {
		/* Replication ended in order: the primary runs on. */
	} else if (rv->rc == 0 && rv->phase == RV_DONE && !rv->running &&
	    !(rv->features & XMIG_F_HANDOVER) && rv->ts != NULL) {
		/* One-way: the toolstack starts it under its name. */
		char msg[400] = "";

		if ((rc = rv->b->ops->resume(rv->b)) != 0)
			recv_fail(rv, rc, "starting the restored domain: %s",
			    backend_errmsg(rv->b));
		else if ((rc = rv->ts->start(rv->ts->arg, msg,
		    sizeof(msg))) != 0)
			recv_fail(rv, rc, "starting the restored domain: %s",
			    msg);
		else
			rv->running = 1;
	} else if (rv->rc == 0 && rv->phase == RV_DONE && !rv->running &&
	    !(rv->features & XMIG_F_HANDOVER) && o->keep_paused) {
		/* One-way, and the caller starts it (a toolstack). */
		rv->running = 1;
	} else if (rv->rc == 0 && rv->phase == RV_DONE && !rv->running &&
	    !(rv->features & XMIG_F_HANDOVER)) {
		/* One-way: nobody else will start it. */
		if ((rc = rv->b->ops->resume(rv->b)) != 0)
			recv_fail(rv, rc, "starting the restored domain: %s",
			    backend_errmsg(rv->b));
		else
			rv->running = 1;
	}
	t_end = now_ns();
	if (rv->bev != NULL) {
		if (rv->rc != 0 && rv->tls_ctx == NULL && !rv->bc_started)
			xport_abort(rv->fd);	/* no message: a reset says it */
		bufferevent_free(rv->bev);
		rv->bev = NULL;
		rv->fd = -1;
	}
	if (rv->timer != NULL)
		event_free(rv->timer);
	rv->timer = NULL;
	recv_digests_join(rv);
	if (rv->dg_ev != NULL)
		event_free(rv->dg_ev);
	rv->dg_ev = NULL;
	if (rv->b != NULL && rv->ckpt && rv->epoch > 0 && !rv->running &&
	    rv->rc != 0 && !o->no_digest) {
		/* The committed epoch, as it was, for the report. */
		rv->info.nr_pages = 0;
		rv->b->ops->describe(rv->b, &rv->info);
		rv->r.memory_alg = recv_digest_alg(rv);
		rv->r.have_memory = digest_memory(rv->b, rv->info.nr_pages,
		    1u << rv->info.page_shift, rv->r.memory_alg,
		    rv->r.memory_digest) == 0;
		rv->r.nr_pages = rv->info.nr_pages;
	}
	if (rv->rc == 0 && rv->stopped) {
		rv->r.status = "stopped";
		rv->b->ops->destroy(rv->b);
	} else if (rv->running) {
		/* GO received (or one-way): this copy runs, whatever else. */
		if (!rv->digests_done && !o->no_digest)
			recv_digests(rv);
		rv->r.status = rv->failover ? "failover" : "completed";
		if (rv->rc != 0) {
			rv->rc = 0;	/* the last message was lost: no matter */
			rv->err[0] = '\0';
		}
	} else if (rv->b != NULL || rv->ts != NULL) {
		/* Nothing half-restored survives a failure. */
		if (rv->b != NULL)
			rv->b->ops->destroy(rv->b);
		if (rv->ts != NULL)
			rv->ts->abort(rv->ts->arg);
		if (rv->rc == 0)
			recv_fail(rv, -EIO, "the migration did not finish");
	}
	if (rv->rc == 0)
		recv_progress(rv, 1);
	rv->r.bytes = (rv->p ? parser_offset(rv->p) : 0) + rv->streams_octets;
	rv->r.pages_sent = rv->pages;
	rv->r.duration_ms = (double)(t_end - rv->t_start) / 1e6;
	rv->r.throughput_mbps = rv->r.duration_ms > 0 ? (double)rv->r.bytes *
	    8.0 / 1e6 / (rv->r.duration_ms / 1000.0) : 0;
report:
	if (rv->r.streams == 0)
		rv->r.streams = 1;
	if (rv->rc != 0)
		snprintf(rv->r.error, sizeof(rv->r.error), "%s", rv->err);
	if (rv->b != NULL && rv->rc == 0 && rv->running && rv->ts != NULL &&
	    rv->ts->adopt != NULL) {
		/* The domain runs on in the caller's hands. */
		rv->ts->adopt(rv->ts->arg, rv->b);
		rv->b = NULL;
	}
	if (rv->b != NULL)
		rv->b->ops->close(rv->b);
	rv->b = NULL;
	return rv->rc;
}

static void
recv_release(struct xmig_recv *rv)
{
	recv_epoch_free(rv);
	streams_rx_free(rv->rx);
	rv->rx = NULL;
	parser_free(rv->p);
	parser_free(rv->ctl);
	digest_state_free(rv->dstate);
	free(rv->tmp);
	free(rv->raw);
	free(rv->delta_held);
	rv->delta_held = NULL;
	rv->p = rv->ctl = NULL;
	rv->dstate = NULL;
	rv->tmp = rv->raw = NULL;
}

static void
recv_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xmig_recv *rv = arg;
	int rc;

	(void)fd;
	(void)what;
	if (rv->finished)
		return;
	rv->finished = 1;
	rc = recv_finish(rv);
	if (rv->cbs != NULL && rv->cbs->result != NULL)
		rv->cbs->result(rv->cbs->arg, rc, &rv->r);	/* may free rv */
}

static void
recv_finish_soon(struct xmig_recv *rv)
{
	if (!rv->finished && rv->done_ev != NULL)
		event_active(rv->done_ev, EV_TIMEOUT, 0);
}

struct xmig_recv *
xmig_recv_new(struct event_base *base, int fd, void *tls_ctx,
    const struct recv_opts *o, const struct xmig_cbs *cbs)
{
	struct xmig_recv *rv;

	if ((rv = calloc(1, sizeof(*rv))) == NULL)
		return NULL;
	rv->base = base;
	rv->fd = fd;
	rv->tls_ctx = tls_ctx;
	rv->o = o;
	rv->cbs = cbs;
	if ((rv->done_ev = evtimer_new(base, recv_finish_cb, rv)) == NULL) {
		free(rv);
		return NULL;
	}
	return rv;
}

void
xmig_recv_refuse(struct xmig_recv *rv, const char *why)
{
	if (!rv->started)
		snprintf(rv->busy_msg, sizeof(rv->busy_msg), "%s", why);
}

int
xmig_recv_start(struct xmig_recv *rv)
{
	int fd = rv->fd;

	if (rv->started)
		return -EALREADY;
	rv->started = 1;
	if (rv->busy_msg[0] != '\0')
		rv->busy = rv->busy_msg;
	if (recv_init(rv, rv->o, rv->cbs, fd, -1) == 0 && rv->busy != NULL)
		rv->ts = NULL;	/* a refusal restores nothing */
	if (rv->rc != 0) {
		close(fd);
		rv->fd = -1;
		recv_finish_soon(rv);
		return 0;
	}
	recv_start_socket(rv, rv->tls_ctx);
	return 0;
}

void
xmig_recv_cancel(struct xmig_recv *rv)
{
	if (rv == NULL || !rv->started || rv->finished)
		return;
	recv_fail(rv, -ECANCELED, "cancelled");
	recv_finish_soon(rv);
}

void
xmig_recv_free(struct xmig_recv *rv)
{
	if (rv == NULL)
		return;
	if (rv->started && !rv->finished) {
		recv_fail(rv, -ECANCELED, "cancelled");
		rv->finished = 1;
		(void)recv_finish(rv);
	}
	if (!rv->started && rv->fd >= 0)
		close(rv->fd);
	if (rv->bev != NULL)
		bufferevent_free(rv->bev);
	if (rv->timer != NULL)
		event_free(rv->timer);
	if (rv->done_ev != NULL)
		event_free(rv->done_ev);
	recv_release(rv);
	free(rv);
}

int
xmig_recv_fd(int fd, int out_fd, int exact, const struct recv_opts *o,
    const struct xmig_cbs *cbs, struct xmig_report *r)
{
	struct xmig_recv rv;
	int rc;

	memset(&rv, 0, sizeof(rv));
	if (recv_init(&rv, o, cbs, fd, exact ? -1 : out_fd) == 0) {
		if (exact)
			recv_run_exact(&rv);
		else
			recv_run_fd(&rv);
	}
	rc = recv_finish(&rv);
	*r = rv.r;
	recv_release(&rv);
	return rc;
}
