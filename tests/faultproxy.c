/*
 * faultproxy.c -- a fault-injecting TCP proxy for the xmig tests.
 * Test-only: not installed.
 *
 *	faultproxy [options] LISTEN_PORT TARGET_HOST:TARGET_PORT
 *
 * It listens on 127.0.0.1 only, connects each client it accepts to the one
 * target it was given, and forwards both directions (client to target is
 * "fwd", target to client "back") through libevent bufferevents, applying at
 * most one fault in one direction.  Every offset is a stream offset in that
 * direction, counted in octets read from the sending peer, and holds however
 * the octets arrive: chunks are split at the fault offset.
 *
 * Record faults count records with a framing parser of its own (image header,
 * domain header, record headers, padding, footers: nothing else).  It does not
 * use proto/ on purpose, so that it cannot share a bug with what it tests.
 *
 * Buffering is bounded: a direction stops reading from its sender while more
 * than FP_HIGH octets wait for its receiver, so a stalled receiver backs up
 * into the sender's socket instead of into memory.
 *
 * A cut stops both directions, waits until the peer has acknowledged every
 * octet before the cut (SIOCOUTQ), then closes both sockets with SO_LINGER 0.
 * A stall stops reading one direction and waits for a peer to give up: a
 * reset from either (a keepalive probe draws one from a peer that has gone),
 * or the other direction's EOF, which is passed on before both are reset.
 * EOFs are passed on as half-closes, resets as resets.
 *
 * --log lines are "conn=N EVENT key=value ...": connect, connected,
 * connect-failed, fault=NAME (dir, offset, record and type, octet), eof,
 * error, framing, incomplete, not-reached, close (how, octets each way).
 *
 * Exit status: 0 when the connections were served (whatever the peers did),
 * 1 on an error (the target refused, out of memory), 2 on bad usage.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#define FP_HIGH		(1024 * 1024)	/* octets queued per direction at most */
#define FP_LOW		(256 * 1024)	/* resume reading at or below this */
#define FP_DRAIN_POLL_MS 1		/* how often a cut checks delivery */
#define FP_DRAIN_WAIT_MS 5000		/* and how long it waits for it */
#define FP_STALL_POLL_MS 50		/* how often a stall looks at its sender */
#define FP_UNKNOWN	UINT64_MAX	/* a record fault's offset, not yet known */

#define FP_IHDR_LEN	24		/* image header, both dialects */
#define FP_MARKER_LEN	8
#define FP_IHDR_ID	0x58454E46u	/* "XENF" */

enum { DIR_FWD, DIR_BACK };
static const char *const dir_name[] = { "fwd", "back" };
static const char *const side_name[] = { "client", "server" };

/* ---- faults ------------------------------------------------------------ */

enum fault_kind {
	F_NONE,
	F_CUT, F_CUT_REC, F_CUT_AFTER,
	F_STALL, F_STALL_REC,
	F_CORRUPT, F_CORRUPT_REC,
	F_DROP, F_DUP,
	F_DELAY,
};

enum fault_action { A_NONE, A_CUT, A_STALL, A_CORRUPT, A_DROP, A_DUP, A_DELAY };

static const struct fault_def {
	const char		*name;
	enum fault_action	 action;
	int			 by_record;	/* the argument is a record index */
	int			 nargs;		/* arguments after the option */
	const char		*args;		/* their names, for usage() */
} fault_defs[] = {
	[F_CUT]		= { "cut-at", A_CUT, 0, 1, "N" },
	[F_CUT_REC]	= { "cut-at-record", A_CUT, 1, 1, "K" },
	[F_CUT_AFTER]	= { "cut-after-record", A_CUT, 1, 1, "K" },
	[F_STALL]	= { "stall-at", A_STALL, 0, 1, "N" },
	[F_STALL_REC]	= { "stall-at-record", A_STALL, 1, 1, "K" },
	[F_CORRUPT]	= { "corrupt-at", A_CORRUPT, 0, 1, "N" },
	[F_CORRUPT_REC]	= { "corrupt-record", A_CORRUPT, 1, 1, "K" },
	[F_DROP]	= { "drop-at", A_DROP, 0, 2, "N LEN" },
	[F_DUP]		= { "dup-at", A_DUP, 0, 2, "N LEN" },
	[F_DELAY]	= { "delay-ms", A_DELAY, 0, 1, "MS" },
};
#define NFAULTS (sizeof(fault_defs) / sizeof(fault_defs[0]))

static struct config {
	enum fault_kind		 fault;
	int			 dir;		/* DIR_FWD or DIR_BACK */
	uint64_t		 arg;		/* offset, record index or ms */
	uint64_t		 len;		/* drop-at, dup-at */
	unsigned		 count;		/* connections to serve */
	const char		*log_path;
	struct sockaddr_storage	 target;
	socklen_t		 target_len;
	char			 target_name[300];
} cfg = { .count = 1 };

/* ---- framing: just enough to count records ----------------------------- */

enum unit { U_IHDR, U_DHDR, U_REC, U_OFF };

struct framing {
	enum unit	unit;	/* what starts at pos; U_OFF: not parsing */
	uint64_t	pos;	/* stream offset of the next unit */
	uint64_t	nrec;	/* index of the record at pos */
	int		back;	/* back-channel: no domain header, draft-B LE */
	int		xen;	/* Xen dialect: 8-octet header, no footer */
	int		be;	/* big-endian after the image header */
};

struct rec {
	uint64_t	index;
	uint64_t	start;		/* offset of the record header */
	uint64_t	end;		/* offset just after the record */
	uint32_t	type;
	uint32_t	body_len;
	unsigned	hdr_len;
};

static size_t
framing_need(const struct framing *f)
{
	switch (f->unit) {
	case U_IHDR:	return FP_IHDR_LEN;
	case U_DHDR:	return f->xen ? 16 : 8;
	case U_REC:	return f->xen ? 8 : 16;
	default:	return 0;
	}
}

static uint32_t
get32(const uint8_t *p, int be)
{
	if (be)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

/*
 * Consume the unit at f->pos, whose framing_need() octets are in p.
 * Returns 1 with *r filled for a record header, 0 for a stream header,
 * -1 with a reason in err when the framing is not one we know (parsing
 * stops there).
 */
static int
framing_step(struct framing *f, const uint8_t *p, struct rec *r,
    char *err, size_t errlen)
{
	size_t need = framing_need(f);
	uint32_t version, len;
	uint16_t options;
	int i;

	switch (f->unit) {
	case U_IHDR:
		for (i = 0; i < FP_MARKER_LEN; i++)
			if (p[i] != 0xff) {
				snprintf(err, errlen, "image header: no marker "
				    "(a legacy image?)");
				return -1;
			}
		if (get32(p + 8, 1) != FP_IHDR_ID) {
			snprintf(err, errlen, "image header: id 0x%08" PRIx32
			    " is not XENF", get32(p + 8, 1));
			return -1;
		}
		version = get32(p + 12, 1);
		options = (uint16_t)(p[16] << 8 | p[17]);
		if (f->back) {
			/* SPEC 13.1: always little-endian, draft-B framing */
			f->xen = 0;
			f->be = 0;
			f->unit = U_REC;
		} else if (version == 1 || version == 2 || version == 3) {
			f->xen = version != 1;
			f->be = options & 1;
			f->unit = U_DHDR;
		} else {
			snprintf(err, errlen, "image header: version %" PRIu32
			    " is neither 1 (draft-B) nor 2/3 (Xen)", version);
			return -1;
		}
		f->pos += need;
		return 0;
	case U_DHDR:
		f->unit = U_REC;
		f->pos += need;
		return 0;
	case U_REC:
		len = get32(p + 4, f->be);
		r->index = f->nrec++;
		r->start = f->pos;
		r->type = get32(p, f->be);
		r->body_len = len;
		r->hdr_len = (unsigned)need;
		r->end = f->pos + need + len + (8 - len % 8) % 8 +
		    (f->xen ? 0 : 8);
		f->pos = r->end;
		return 1;
	default:
		return -1;
	}
}

/* ---- sessions ---------------------------------------------------------- */

struct chunk {
	TAILQ_ENTRY(chunk)	 link;
	struct evbuffer		*buf;
	struct timespec		 due;
};

struct session;

/* One direction: octets read from src are written to dst. */
struct dir {
	struct session		*s;
	int			 idx;		/* DIR_FWD, DIR_BACK */
	struct bufferevent	*src, *dst;
	uint64_t		 in;		/* octets taken from src */
	uint64_t		 out;		/* octets queued towards dst */
	int			 eof;		/* src has closed its side */
	int			 shut;		/* ... and that was passed on */
	int			 paused;	/* reading src paused: dst is full */
	int			 stopped;	/* cut or stall: nothing more moves */

	int			 has_fault;
	enum { FS_ARMED, FS_ACTIVE, FS_DONE } fstate;
	uint64_t		 at;		/* where the fault applies */
	uint64_t		 left;		/* drop/dup octets still to go */
	struct evbuffer		*dup;		/* the octets to send again */
	char			 what[160];	/* the record, for the log */

	int			 parse;
	struct framing		 fr;

	TAILQ_HEAD(, chunk)	 delayq;	/* --delay-ms */
	size_t			 delayed;	/* octets in delayq */
	struct event		*delay_ev;
};

struct session {
	unsigned		 id;
	struct bufferevent	*bev[2];	/* client, server */
	struct dir		 d[2];
	struct side {
		struct session	*s;
		int		 i;	/* 0 client, 1 server */
	}			 side[2];
	int			 connected;
	struct event		*timer;		/* draining before a reset, or
						   watching a stall */
	int			 draining;	/* the direction to drain, -1 */
	struct timespec		 drain_start;
	int			 stall;		/* the stalled direction, -1 */
	int			 end;		/* settle(): end the session */
	int			 end_reset;	/* ... with RST on both sides */
	char			 how[160];
	LIST_ENTRY(session)	 link;
};

static struct event_base *base;
static struct evconnlistener *listener;
static LIST_HEAD(, session) sessions = LIST_HEAD_INITIALIZER(sessions);
static unsigned accepted;
static int status;
static FILE *logfp;

static void settle(struct session *);
static void pump(struct dir *);

static void
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "faultproxy: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 2, 3)))
logev(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (logfp == NULL)
		return;
	fprintf(logfp, "conn=%u ", s->id);
	va_start(ap, fmt);
	vfprintf(logfp, fmt, ap);
	va_end(ap);
	fputc('\n', logfp);
	fflush(logfp);
}

static void
now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	now(&t);
	return (t.tv_sec - t0->tv_sec) * 1000L +
	    (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

static void
addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?", port[16] = "?";

	getnameinfo(sa, sa->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
	    host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, port);
}

/* Octets taken from src that dst's peer has not been handed yet. */
static size_t
pending(const struct dir *d)
{
	return evbuffer_get_length(bufferevent_get_output(d->dst)) +
	    d->delayed;
}

/* Octets written to dst's socket that its peer has not acknowledged. */
static int
unacked(const struct dir *d)
{
	int n = 0;
#ifdef SIOCOUTQ
	evutil_socket_t fd = bufferevent_getfd(d->dst);

	if (fd < 0 || ioctl(fd, SIOCOUTQ, &n) == -1)
		n = 0;
#endif
	return n;
}

static void
linger0(struct bufferevent *bev)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/*
 * Probe a stalled connection's peers every second: a peer that has gone
 * away answers a probe with a reset, which the stall's timer sees.
 */
static void
keepalive(struct bufferevent *bev)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	int one = 1, cnt = 5;

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
#ifdef TCP_KEEPIDLE
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
}

static void
session_end(struct session *s)
{
	struct chunk *c;
	unsigned i;
	uint64_t out[2];

	for (i = 0; i < 2; i++) {
		struct dir *d = &s->d[i];

		out[i] = d->out - pending(d);
		if (d->has_fault && d->fstate == FS_ARMED)
			logev(s, "not-reached fault=%s dir=%s",
			    fault_defs[cfg.fault].name, dir_name[i]);
	}
	logev(s, "close how=%s fwd_in=%" PRIu64 " fwd_out=%" PRIu64
	    " back_in=%" PRIu64 " back_out=%" PRIu64, s->how,
	    s->d[0].in, out[0], s->d[1].in, out[1]);

	for (i = 0; i < 2; i++) {
		struct dir *d = &s->d[i];

		while ((c = TAILQ_FIRST(&d->delayq)) != NULL) {
			TAILQ_REMOVE(&d->delayq, c, link);
			evbuffer_free(c->buf);
			free(c);
		}
		if (d->delay_ev != NULL)
			event_free(d->delay_ev);
		if (d->dup != NULL)
			evbuffer_free(d->dup);
		if (s->end_reset)
			linger0(s->bev[i]);
		bufferevent_free(s->bev[i]);
	}
	if (s->timer != NULL)
		event_free(s->timer);
	LIST_REMOVE(s, link);
	free(s);

	if (accepted >= cfg.count && LIST_EMPTY(&sessions))
		event_base_loopbreak(base);
}

/* Ask settle() to end the session (reset: RST both sides). */
static void
session_stop(struct session *s, int reset, const char *fmt, ...)
{
	va_list ap;

	if (s->end)
		return;
	s->end = 1;
	s->end_reset = reset;
	va_start(ap, fmt);
	vsnprintf(s->how, sizeof(s->how), fmt, ap);
	va_end(ap);
}

/* Called at the end of every callback: the only place a session is freed. */
static void
settle(struct session *s)
{
	if (s->end)
		session_end(s);
	else if (s->d[0].shut && s->d[1].shut) {
		snprintf(s->how, sizeof(s->how), "normal");
		session_end(s);
	}
}

/* ---- the timer: a cut waits for delivery, a stall watches its sender ---- */

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct pollfd pfd;

	if (s->draining >= 0) {
		struct dir *d = &s->d[s->draining];
		size_t p = pending(d);
		int u = unacked(d);

		if (p == 0 && u == 0)
			session_stop(s, 1, "reset");
		else if (ms_since(&s->drain_start) > FP_DRAIN_WAIT_MS)
			session_stop(s, 1, "reset undelivered=%zu",
			    p + (size_t)u);
	} else if (s->stall >= 0) {
		/*
		 * The stalled sender is not read, so its reset can only be
		 * seen here; so can the reset a keepalive probe draws from a
		 * peer that has gone.  (A FIN from the stalled sender is
		 * not the end: it may be waiting for an answer.  The other
		 * peer's FIN is read as usual, see pass_eof().)
		 */
		int i;

		for (i = 0; i < 2; i++) {
			pfd.fd = bufferevent_getfd(s->bev[i]);
			pfd.events = 0;
			pfd.revents = 0;
			if (pfd.fd >= 0 && poll(&pfd, 1, 0) > 0 &&
			    (pfd.revents & (POLLHUP | POLLERR))) {
				session_stop(s, 1, "reset by=%s during the "
				    "stall", side_name[i]);
				break;
			}
		}
	}
	settle(s);
}

static void
timer_start(struct session *s, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (s->timer == NULL) {
		s->timer = event_new(base, -1, EV_PERSIST, timer_cb, s);
		if (s->timer == NULL) {
			session_stop(s, 1, "reset out of memory");
			status = 1;
			return;
		}
	} else
		event_del(s->timer);
	event_add(s->timer, &tv);
}

/* Deliver what direction d has queued, then reset both sides. */
static void
drain_then_reset(struct dir *d)
{
	struct session *s = d->s;

	if (s->draining >= 0)
		return;
	s->draining = d->idx;
	now(&s->drain_start);
	timer_start(s, FP_DRAIN_POLL_MS);
}

/* ---- moving octets ----------------------------------------------------- */

static void delay_cb(evutil_socket_t, short, void *);
static void pass_eof(struct dir *);

static void
delay_arm(struct dir *d)
{
	struct chunk *c = TAILQ_FIRST(&d->delayq);
	struct timespec t;
	struct timeval tv;
	long ms;

	if (c == NULL || evtimer_pending(d->delay_ev, NULL))
		return;
	now(&t);
	ms = (c->due.tv_sec - t.tv_sec) * 1000L +
	    (c->due.tv_nsec - t.tv_nsec) / 1000000L;
	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->delay_ev, &tv);
}

static void
delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;
	struct evbuffer *out = bufferevent_get_output(d->dst);
	struct chunk *c;
	struct timespec t;

	now(&t);
	while ((c = TAILQ_FIRST(&d->delayq)) != NULL &&
	    (c->due.tv_sec < t.tv_sec ||
	    (c->due.tv_sec == t.tv_sec && c->due.tv_nsec <= t.tv_nsec))) {
		TAILQ_REMOVE(&d->delayq, c, link);
		d->delayed -= evbuffer_get_length(c->buf);
		evbuffer_add_buffer(out, c->buf);
		evbuffer_free(c->buf);
		free(c);
	}
	delay_arm(d);
	pump(d);
	pass_eof(d);
	settle(d->s);
}

/*
 * Queue n octets towards dst: from the evbuffer src (moved) or from the
 * memory p (copied).  With --delay-ms in this direction they wait in the
 * delay line first.  Returns -1 when out of memory.
 */
static int
put(struct dir *d, struct evbuffer *src, const void *p, size_t n)
{
	struct evbuffer *to = bufferevent_get_output(d->dst);
	struct chunk *c = NULL;

	if (n == 0)
		return 0;
	if (d->delay_ev != NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL ||
		    (c->buf = evbuffer_new()) == NULL) {
			free(c);
			return -1;
		}
		to = c->buf;
	}
	if (src != NULL) {
		if (evbuffer_remove_buffer(src, to, n) != (int)n)
			goto fail;
	} else if (evbuffer_add(to, p, n) == -1)
		goto fail;
	if (c != NULL) {
		now(&c->due);
		c->due.tv_sec += (time_t)(cfg.arg / 1000);
		c->due.tv_nsec += (long)(cfg.arg % 1000) * 1000000L;
		if (c->due.tv_nsec >= 1000000000L) {
			c->due.tv_sec++;
			c->due.tv_nsec -= 1000000000L;
		}
		TAILQ_INSERT_TAIL(&d->delayq, c, link);
		d->delayed += n;
		delay_arm(d);
	}
	d->out += n;
	return 0;
fail:
	if (c != NULL) {
		evbuffer_free(c->buf);
		free(c);
	}
	return -1;
}

/* The fault of direction d has reached its offset: apply it. */
static void
fault_apply(struct dir *d, struct evbuffer *in)
{
	struct session *s = d->s;
	const struct fault_def *f = &fault_defs[cfg.fault];
	uint8_t c;

	switch (f->action) {
	case A_CUT:
		logev(s, "fault=%s dir=%s offset=%" PRIu64 "%s", f->name,
		    dir_name[d->idx], d->at, d->what);
		/* nothing more moves either way */
		s->d[0].stopped = s->d[1].stopped = 1;
		d->fstate = FS_DONE;
		bufferevent_disable(s->bev[0], EV_READ);
		bufferevent_disable(s->bev[1], EV_READ);
		drain_then_reset(d);
		break;
	case A_STALL:
		logev(s, "fault=%s dir=%s offset=%" PRIu64 "%s", f->name,
		    dir_name[d->idx], d->at, d->what);
		d->stopped = 1;
		d->fstate = FS_DONE;
		bufferevent_disable(d->src, EV_READ);
		s->stall = d->idx;
		keepalive(s->bev[0]);
		keepalive(s->bev[1]);
		if (s->draining < 0)
			timer_start(s, FP_STALL_POLL_MS);
		break;
	case A_CORRUPT:
		evbuffer_remove(in, &c, 1);
		d->in++;
		logev(s, "fault=%s dir=%s offset=%" PRIu64 "%s octet=0x%02x"
		    "->0x%02x", f->name, dir_name[d->idx], d->at, d->what,
		    c, c ^ 1u);
		c ^= 1u;
		d->fstate = FS_DONE;
		if (put(d, NULL, &c, 1) == -1) {
			session_stop(s, 1, "reset out of memory");
			status = 1;
		}
		break;
	case A_DROP:
	case A_DUP:
		logev(s, "fault=%s dir=%s offset=%" PRIu64 " length=%" PRIu64,
		    f->name, dir_name[d->idx], d->at, cfg.len);
		d->left = cfg.len;
		d->fstate = cfg.len > 0 ? FS_ACTIVE : FS_DONE;
		break;
	default:
		d->fstate = FS_DONE;
		break;
	}
}

/* A record header has been parsed: does the fault key on it? */
static void
fault_record(struct dir *d, const struct rec *r)
{
	if (!d->has_fault || d->fstate != FS_ARMED ||
	    !fault_defs[cfg.fault].by_record || r->index != cfg.arg)
		return;
	switch (cfg.fault) {
	case F_CUT_AFTER:
		d->at = r->end;
		break;
	case F_CORRUPT_REC:
		d->at = r->body_len > 0 ? r->start + r->hdr_len : r->start;
		break;
	default:
		d->at = r->start;
		break;
	}
	snprintf(d->what, sizeof(d->what), " record=%" PRIu64 " type=0x%08"
	    PRIx32 " record_offset=%" PRIu64 " body_length=%" PRIu32 "%s",
	    r->index, r->type, r->start, r->body_len,
	    cfg.fault != F_CORRUPT_REC ? "" :
	    r->body_len > 0 ? " field=body" : " field=type");
}

/* Pass src's octets on to dst, as far as the fault and the buffers allow. */
static void
pump(struct dir *d)
{
	struct session *s = d->s;
	struct evbuffer *in = bufferevent_get_input(d->src);
	uint8_t hdr[FP_IHDR_LEN];
	char err[160];
	struct rec r;
	size_t avail, n, k;
	uint8_t tmp[16384];

	if (s->end || d->stopped)
		return;
	if (d->paused && pending(d) <= FP_LOW) {
		d->paused = 0;
		if (!d->eof)
			bufferevent_enable(d->src, EV_READ);
	}
	while (!s->end && !d->stopped) {
		avail = evbuffer_get_length(in);

		if (d->has_fault && d->fstate == FS_ARMED && d->at == d->in) {
			if (fault_defs[cfg.fault].action == A_CORRUPT &&
			    avail == 0)
				break;
			fault_apply(d, in);
			continue;
		}
		if (d->parse && d->fr.unit != U_OFF && d->fr.pos == d->in) {
			size_t need = framing_need(&d->fr);

			if (avail < need) {
				if (!d->eof)
					break;	/* wait for the whole header */
				logev(s, "framing dir=%s offset=%" PRIu64
				    ": the stream ends inside a header",
				    dir_name[d->idx], d->in);
				d->fr.unit = U_OFF;
				continue;
			}
			evbuffer_copyout(in, hdr, need);
			switch (framing_step(&d->fr, hdr, &r, err,
			    sizeof(err))) {
			case 1:
				fault_record(d, &r);
				break;
			case -1:
				logev(s, "framing dir=%s offset=%" PRIu64
				    ": %s", dir_name[d->idx], d->in, err);
				d->fr.unit = U_OFF;
				break;
			}
			continue;
		}
		if (avail == 0)
			break;
		if (pending(d) >= FP_HIGH) {
			if (!d->paused) {
				d->paused = 1;
				bufferevent_disable(d->src, EV_READ);
			}
			break;
		}

		n = avail;
		if (d->parse && d->fr.unit != U_OFF && d->fr.pos - d->in < n)
			n = (size_t)(d->fr.pos - d->in);
		if (d->has_fault && d->fstate == FS_ARMED &&
		    d->at != FP_UNKNOWN && d->at - d->in < n)
			n = (size_t)(d->at - d->in);
		if (d->fstate == FS_ACTIVE && d->left < n)
			n = (size_t)d->left;

		if (d->fstate == FS_ACTIVE && cfg.fault == F_DROP) {
			evbuffer_drain(in, n);
		} else {
			if (d->fstate == FS_ACTIVE && cfg.fault == F_DUP) {
				struct evbuffer_ptr ptr;

				for (k = 0; k < n; k += sizeof(tmp)) {
					size_t m = n - k < sizeof(tmp) ?
					    n - k : sizeof(tmp);

					evbuffer_ptr_set(in, &ptr, k,
					    EVBUFFER_PTR_SET);
					if (evbuffer_copyout_from(in, &ptr, tmp,
					    m) != (ev_ssize_t)m ||
					    evbuffer_add(d->dup, tmp, m) == -1)
						break;
				}
				if (k < n) {
					session_stop(s, 1,
					    "reset out of memory");
					status = 1;
					break;
				}
			}
			if (put(d, in, NULL, n) == -1) {
				session_stop(s, 1, "reset out of memory");
				status = 1;
				break;
			}
		}
		d->in += n;
		if (d->fstate == FS_ACTIVE) {
			d->left -= n;
			if (d->left == 0) {
				d->fstate = FS_DONE;
				if (cfg.fault == F_DUP && put(d, d->dup, NULL,
				    evbuffer_get_length(d->dup)) == -1) {
					session_stop(s, 1,
					    "reset out of memory");
					status = 1;
				}
			}
		}
	}
}

/* src has closed and everything it sent has gone: pass the EOF on. */
static void
pass_eof(struct dir *d)
{
	struct session *s = d->s;

	if (s->end || d->stopped || !d->eof || d->shut ||
	    evbuffer_get_length(bufferevent_get_input(d->src)) > 0)
		return;
	if (d->fstate == FS_ACTIVE) {
		logev(s, "incomplete fault=%s dir=%s left=%" PRIu64,
		    fault_defs[cfg.fault].name, dir_name[d->idx], d->left);
		d->fstate = FS_DONE;
		if (cfg.fault == F_DUP && put(d, d->dup, NULL,
		    evbuffer_get_length(d->dup)) == -1) {
			session_stop(s, 1, "reset out of memory");
			status = 1;
			return;
		}
	}
	if (pending(d) > 0)
		return;		/* the write callback calls again */
	shutdown(bufferevent_getfd(d->dst), SHUT_WR);
	d->shut = 1;
	logev(s, "eof dir=%s offset=%" PRIu64, dir_name[d->idx], d->in);
	/*
	 * A stall ends when a peer gives up: once the flowing direction has
	 * ended and its octets have been delivered, reset both sides.
	 */
	if (s->stall >= 0 && s->stall != d->idx)
		drain_then_reset(d);
}

/* ---- bufferevent callbacks --------------------------------------------- */

static void
side_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = ((struct side *)arg)->s;
	int i = ((struct side *)arg)->i;

	pump(&s->d[i]);		/* bev i is the source of direction i */
	pass_eof(&s->d[i]);
	settle(s);
}

static void
side_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = ((struct side *)arg)->s;
	int i = ((struct side *)arg)->i;

	pump(&s->d[1 - i]);	/* ... and the destination of the other */
	pass_eof(&s->d[1 - i]);
	settle(s);
}

static void
side_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = ((struct side *)arg)->s;
	int i = ((struct side *)arg)->i;
	int err = EVUTIL_SOCKET_ERROR();
	struct dir *d = &s->d[i];
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		s->connected = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
		logev(s, "connected to=%s", cfg.target_name);
		bufferevent_enable(s->bev[0], EV_READ | EV_WRITE);
		bufferevent_enable(s->bev[1], EV_READ | EV_WRITE);
		/* a fault at offset 0 applies now */
		pump(&s->d[DIR_FWD]);
		pump(&s->d[DIR_BACK]);
		settle(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		if (!s->connected && i == 1) {
			warnx_("connecting to %s: %s", cfg.target_name,
			    evutil_socket_error_to_string(err));
			logev(s, "connect-failed to=%s error=\"%s\"",
			    cfg.target_name,
			    evutil_socket_error_to_string(err));
			status = 1;
		} else
			logev(s, "error side=%s while=%s error=\"%s\"",
			    side_name[i], what & BEV_EVENT_WRITING ?
			    "writing" : "reading",
			    evutil_socket_error_to_string(err));
		/* A reset (or worse) is passed on as a reset. */
		session_stop(s, 1, "reset by=%s", side_name[i]);
	} else if (what & BEV_EVENT_EOF) {
		d->eof = 1;
		pump(d);
		pass_eof(d);
	}
	settle(s);
}

/* ---- accepting --------------------------------------------------------- */

/* A session for the client on fd, its target connection not yet made. */
static struct session *
session_new(evutil_socket_t fd)
{
	const struct fault_def *f = &fault_defs[cfg.fault];
	struct session *s;
	int i, one = 1;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->id = accepted;
	s->draining = -1;
	s->stall = -1;
	s->bev[0] = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->bev[1] = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev[0] == NULL || s->bev[1] == NULL)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	for (i = 0; i < 2; i++) {
		struct dir *d = &s->d[i];

		d->s = s;
		d->idx = i;
		d->src = s->bev[i];
		d->dst = s->bev[1 - i];
		d->at = FP_UNKNOWN;
		d->fstate = FS_DONE;
		TAILQ_INIT(&d->delayq);
		s->side[i].s = s;
		s->side[i].i = i;
		bufferevent_setcb(s->bev[i], side_read_cb, side_write_cb,
		    side_event_cb, &s->side[i]);
		bufferevent_setwatermark(s->bev[i], EV_READ, 0, FP_HIGH);
		bufferevent_setwatermark(s->bev[i], EV_WRITE, FP_LOW, 0);
	}

	if (cfg.fault != F_NONE) {
		struct dir *d = &s->d[cfg.dir];

		d->has_fault = 1;
		switch (f->action) {
		case A_DELAY:
			d->delay_ev = evtimer_new(base, delay_cb, d);
			if (d->delay_ev == NULL)
				goto fail;
			break;
		case A_DUP:
			if ((d->dup = evbuffer_new()) == NULL)
				goto fail;
			/* FALLTHROUGH */
		default:
			d->fstate = FS_ARMED;
			if (f->by_record) {
				d->parse = 1;
				d->fr.unit = U_IHDR;
				d->fr.back = cfg.dir == DIR_BACK;
			} else
				d->at = cfg.arg;
			break;
		}
	}
	return s;

fail:
	for (i = 0; i < 2; i++) {
		if (s->d[i].delay_ev != NULL)
			event_free(s->d[i].delay_ev);
		if (s->d[i].dup != NULL)
			evbuffer_free(s->d[i].dup);
		if (s->bev[i] != NULL)
			bufferevent_free(s->bev[i]);
	}
	if (s->bev[0] == NULL)
		evutil_closesocket(fd);
	free(s);
	return NULL;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct session *s;
	char from[80];
	int err;

	accepted++;
	if (accepted >= cfg.count)
		evconnlistener_disable(l);
	if ((s = session_new(fd)) == NULL) {
		warnx_("out of memory");
		status = 1;
		if (accepted >= cfg.count && LIST_EMPTY(&sessions))
			event_base_loopbreak(base);
		return;
	}
	LIST_INSERT_HEAD(&sessions, s, link);

	addr_str(sa, from, sizeof(from));
	logev(s, "connect from=%s to=%s", from, cfg.target_name);
	if (cfg.fault == F_DELAY)
		logev(s, "fault=delay-ms dir=%s ms=%" PRIu64,
		    dir_name[cfg.dir], cfg.arg);
	if (bufferevent_socket_connect(s->bev[1],
	    (struct sockaddr *)&cfg.target, (int)cfg.target_len) == -1) {
		err = EVUTIL_SOCKET_ERROR();
		warnx_("connecting to %s: %s", cfg.target_name,
		    evutil_socket_error_to_string(err));
		logev(s, "connect-failed to=%s error=\"%s\"", cfg.target_name,
		    evutil_socket_error_to_string(err));
		status = 1;
		session_stop(s, 1, "reset connect failed");
		settle(s);
	}
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	warnx_("accept: %s", evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		status = 1;
		event_base_loopbreak(base);
	}
}

/* ---- command line ------------------------------------------------------ */

static void
usage(void)
{
	size_t i;

	printf(
"usage: faultproxy [options] LISTEN_PORT TARGET_HOST:TARGET_PORT\n"
"\n"
"Listen on 127.0.0.1:LISTEN_PORT (0: any free port; the address is printed\n"
"on stderr as \"faultproxy: listening on 127.0.0.1:PORT\"), connect each\n"
"client to the target and forward both ways, applying at most one fault.\n"
"Offsets count the octets read from the sending peer in that direction;\n"
"records are counted from 0 after the stream headers.\n"
"\n"
"Faults (one at most; each connection gets it):\n");
	for (i = 1; i < NFAULTS; i++)
		printf( "  --%s %s\n", fault_defs[i].name,
		    fault_defs[i].args);
	printf(
"\n"
"  cut: stop both ways, deliver exactly the octets before the point, then\n"
"  reset (RST) both sides.  stall: forward nothing more that way (sockets\n"
"  stay open, the other way flows) until a peer gives up: a reset from\n"
"  either, or the end of the other direction; then both sides are reset.\n"
"  corrupt: flip the low bit of octet N, or of the first body octet of\n"
"  record K (the first type octet when the body is empty).  drop: leave\n"
"  out LEN octets from N.  dup: send the LEN octets from N twice.\n"
"  delay-ms: hold every chunk back MS milliseconds.\n"
"\n"
"Options:\n"
"  --dir fwd|back   the direction of the fault: fwd is client to target\n"
"                   (default), back is target to client\n"
"  --count N        serve N connections, then exit (default 1)\n"
"  --log FILE       append a line per event (connect, fault, eof, close)\n"
"  -h, --help       this text\n"
"\n"
"Record faults parse the framing of the stream: fwd from its image header\n"
"(version 1 draft-B, 2/3 Xen); back as a back-channel (image header, then\n"
"draft-B records, little-endian).\n"
"\n"
"Exit status: 0 when the connections were served, 1 on an error, 2 on bad\n"
"usage.\n");
}

static void
short_usage(void)
{
	fprintf(stderr, "usage: faultproxy [options] LISTEN_PORT "
	    "TARGET_HOST:TARGET_PORT\n(faultproxy --help for more)\n");
}

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = x;
	return 0;
}

static int
parse_target(const char *arg)
{
	char host[256];
	const char *colon, *h;
	struct addrinfo hints, *ai;
	size_t hl;
	int rc;

	if (strncmp(arg, "tcp:", 4) == 0)
		arg += 4;
	colon = strrchr(arg, ':');
	if (colon == NULL || colon == arg || colon[1] == '\0')
		return -1;
	h = arg;
	hl = (size_t)(colon - arg);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
		warnx_("%s: %s", arg, gai_strerror(rc));
		return -1;
	}
	memcpy(&cfg.target, ai->ai_addr, ai->ai_addrlen);
	cfg.target_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	addr_str((struct sockaddr *)&cfg.target, cfg.target_name,
	    sizeof(cfg.target_name));
	return 0;
}

enum { OPT_DIR = 1000, OPT_COUNT, OPT_LOG };

int
main(int argc, char **argv)
{
	struct option longopts[NFAULTS + 5];
	struct sockaddr_in sin;
	socklen_t slen;
	uint64_t port, v;
	size_t i, n = 0;
	int ch;

	for (i = 1; i < NFAULTS; i++)
		longopts[n++] = (struct option){ fault_defs[i].name,
		    required_argument, NULL, (int)i };
	longopts[n++] = (struct option){ "dir", required_argument, NULL,
	    OPT_DIR };
	longopts[n++] = (struct option){ "count", required_argument, NULL,
	    OPT_COUNT };
	longopts[n++] = (struct option){ "log", required_argument, NULL,
	    OPT_LOG };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (ch > 0 && (size_t)ch < NFAULTS) {
			const struct fault_def *f = &fault_defs[ch];

			if (cfg.fault != F_NONE) {
				warnx_("one fault at most (--%s and --%s)",
				    fault_defs[cfg.fault].name, f->name);
				return 2;
			}
			cfg.fault = (enum fault_kind)ch;
			if (parse_u64(optarg, &cfg.arg) == -1) {
				warnx_("--%s: %s is not a number", f->name,
				    optarg);
				return 2;
			}
			if (f->nargs == 2) {
				if (optind >= argc ||
				    parse_u64(argv[optind], &cfg.len) == -1) {
					warnx_("--%s needs %s", f->name,
					    f->args);
					return 2;
				}
				optind++;
			}
			continue;
		}
		switch (ch) {
		case OPT_DIR:
			if (strcmp(optarg, "fwd") == 0)
				cfg.dir = DIR_FWD;
			else if (strcmp(optarg, "back") == 0)
				cfg.dir = DIR_BACK;
			else {
				warnx_("--dir: fwd or back, not %s", optarg);
				return 2;
			}
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, &v) == -1 || v == 0 ||
			    v > UINT_MAX) {
				warnx_("--count: %s is not a positive number",
				    optarg);
				return 2;
			}
			cfg.count = (unsigned)v;
			break;
		case OPT_LOG:
			cfg.log_path = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			short_usage();
			return 2;
		}
	}
	if (argc - optind != 2) {
		short_usage();
		return 2;
	}
	if (parse_u64(argv[optind], &port) == -1 || port > 65535) {
		warnx_("%s: not a port number", argv[optind]);
		return 2;
	}
	if (parse_target(argv[optind + 1]) == -1) {
		warnx_("%s: expected HOST:PORT", argv[optind + 1]);
		return 2;
	}
	if (cfg.fault == F_DELAY && cfg.arg > 3600 * 1000) {
		warnx_("--delay-ms: %" PRIu64 " is more than an hour", cfg.arg);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	if (cfg.log_path != NULL &&
	    (logfp = fopen(cfg.log_path, "a")) == NULL) {
		warnx_("%s: %s", cfg.log_path, strerror(errno));
		return 1;
	}
	if ((base = event_base_new()) == NULL) {
		warnx_("event_base_new failed");
		return 1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	listener = evconnlistener_new_bind(base, accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    16, (struct sockaddr *)&sin, sizeof(sin));
	if (listener == NULL) {
		warnx_("listening on 127.0.0.1:%" PRIu64 ": %s", port,
		    strerror(errno));
		return 1;
	}
	evconnlistener_set_error_cb(listener, accept_error_cb);
	slen = sizeof(sin);
	if (getsockname(evconnlistener_get_fd(listener),
	    (struct sockaddr *)&sin, &slen) == -1) {
		warnx_("getsockname: %s", strerror(errno));
		return 1;
	}
	fprintf(stderr, "faultproxy: listening on 127.0.0.1:%u\n",
	    ntohs(sin.sin_port));
	fflush(stderr);

	event_base_dispatch(base);

	evconnlistener_free(listener);
	event_base_free(base);
	if (logfp != NULL)
		fclose(logfp);
	return status;
}
