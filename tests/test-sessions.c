/*
 * test-sessions.c -- the engine as a library of sessions: senders and
 * receivers created on one event_base of the test's own, reporting
 * through callbacks.  Two migrations run at once over socket pairs and
 * both complete with matching digests; a cancelled one resumes its source
 * while the other completes; a sender connects to tcp:localhost:PORT on
 * the loop (the receiver accepted on the same loop); a QUERY is answered
 * and moves nothing.  Each result callback fires exactly once.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "xmig.h"
#include "tap.h"

struct side {
	const char		*name;
	struct xmig_cbs		 cbs;
	struct xmig_send	*s;
	struct xmig_recv	*rv;
	struct backend		*b;	/* the sender's source */
	int			 results;
	int			 rc;
	struct xmig_report	 r;
	uint64_t		 bytes;	/* the last progress figure */
	unsigned		 progress;
	int			 cancel_at_progress;
	int			 cancelled;
	int			 paused_at_cancel;
	unsigned		 logs;		/* debug lines through cbs.log */
	int			 saw_agreed;
	struct side		*other;	/* the other migration's sender */
	uint64_t		 other_bytes_at_result;
	int			*pending;
	struct event_base	*base;
};

static void
on_progress(void *arg, const struct progress_info *pi)
{
	struct side *sd = arg;

	sd->progress++;
	sd->bytes = pi->bytes;
	if (sd->cancel_at_progress && !sd->cancelled && sd->s != NULL &&
	    strcmp(pi->phase, "stop-and-copy") == 0) {
		sd->cancelled = 1;
		sd->paused_at_cancel = strcmp(sim_run_state(sd->b),
		    "paused") == 0;
		xmig_send_cancel(sd->s);
	}
}

static void
on_log(void *arg, int level, const char *msg)
{
	struct side *sd = arg;

	CHECK(level <= sd->cbs.log_level, "level %d above %d", level,
	    sd->cbs.log_level);
	sd->logs++;
	if (strstr(msg, "agreed: back-channel") != NULL)
		sd->saw_agreed = 1;
}

static void
on_result(void *arg, int rc, const struct xmig_report *r)
{
	struct side *sd = arg;

	sd->results++;
	sd->rc = rc;
	sd->r = *r;
	if (sd->other != NULL)
		sd->other_bytes_at_result = sd->other->bytes;
	if (--*sd->pending == 0)
		event_base_loopexit(sd->base, NULL);
}

static void
side_init(struct side *sd, const char *name, struct event_base *base,
    int *pending)
{
	memset(sd, 0, sizeof(*sd));
	sd->name = name;
	sd->base = base;
	sd->pending = pending;
	sd->rc = 1;
	sd->cbs.arg = sd;
	sd->cbs.progress = on_progress;
	sd->cbs.result = on_result;
	sd->cbs.log_level = XMIG_LOG_WARN;
}

static struct backend *
sim_source(const char *spec_in)
{
	const struct backend_ops *ops;
	struct backend *b = NULL;
	const char *spec;

	ops = backend_lookup(spec_in, &spec);
	if (ops == NULL || ops->open_source(spec, &b) != 0)
		return NULL;
	return b;
}

/* Run base until every result came, then 200 ms more: no late result. */
static void
run(struct event_base *base, int *pending)
{
	struct timeval tv = { 0, 200000 };

	event_base_dispatch(base);
	CHECK(*pending == 0, "%d results missing", *pending);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
pair(struct event_base *base, struct side *snd, struct side *rcv,
    const char *spec, const struct send_opts *so, const struct recv_opts *ro)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
	    "socketpair: %s", strerror(errno));
	snd->b = sim_source(spec);
	CHECK(snd->b != NULL, "%s: opening %s", snd->name, spec);
	snd->s = xmig_send_new_fd(base, snd->b, sv[0], 1, so, &snd->cbs);
	rcv->rv = xmig_recv_new(base, sv[1], NULL, ro, &rcv->cbs);
	CHECK(snd->s != NULL && rcv->rv != NULL, "%s: new", snd->name);
	CHECK(xmig_recv_start(rcv->rv) == 0, "%s: recv start", rcv->name);
	CHECK(xmig_send_start(snd->s) == 0, "%s: send start", snd->name);
	CHECK(xmig_send_start(snd->s) == -EALREADY, "%s: started twice",
	    snd->name);
}

static void
check_completed(struct side *snd, struct side *rcv)
{
	CHECK(snd->results == 1, "%s: %d results", snd->name, snd->results);
	CHECK(rcv->results == 1, "%s: %d results", rcv->name, rcv->results);
	CHECK(snd->rc == 0, "%s: rc %d (%s)", snd->name, snd->rc,
	    snd->r.error);
	CHECK(rcv->rc == 0, "%s: rc %d (%s)", rcv->name, rcv->rc,
	    rcv->r.error);
	CHECK(strcmp(snd->r.status, "completed") == 0 &&
	    strcmp(rcv->r.status, "completed") == 0, "%s: status %s / %s",
	    snd->name, snd->r.status, rcv->r.status);
	CHECK(snd->r.have_memory && rcv->r.have_memory &&
	    memcmp(snd->r.memory_digest, rcv->r.memory_digest, 32) == 0,
	    "%s: memory digests differ", snd->name);
	CHECK(snd->r.have_vcpu && rcv->r.have_vcpu &&
	    memcmp(snd->r.vcpu_sha256, rcv->r.vcpu_sha256, 32) == 0,
	    "%s: vcpu digests differ", snd->name);
	CHECK(snd->r.verified == 1 && snd->r.backchannel,
	    "%s: verified %d, back-channel %d", snd->name, snd->r.verified,
	    snd->r.backchannel);
	CHECK(snd->progress > 0 && rcv->progress > 0,
	    "%s: no progress callback", snd->name);
	CHECK(snd->r.bytes == rcv->r.bytes || snd->r.bytes > rcv->r.bytes,
	    "%s: %llu octets sent, %llu received", snd->name,
	    (unsigned long long)snd->r.bytes,
	    (unsigned long long)rcv->r.bytes);
}

static void
free_pair(struct side *snd, struct side *rcv)
{
	xmig_send_free(snd->s);
	xmig_recv_free(rcv->rv);
	if (snd->b != NULL)
		snd->b->ops->close(snd->b);
}

/* Two migrations at once on one loop: both complete. */
static void
two_at_once(struct event_base *base)
{
	struct side s1, r1, s2, r2;
	struct send_opts so;
	struct recv_opts ro;
	int pending = 4;

	send_opts_default(&so);
	so.progress = PROGRESS_NONE;
	so.negotiate_timeout_ms = 30000;	/* a loaded machine */
	so.require_backchannel = 1;
	recv_opts_default(&ro);
	side_init(&s1, "send 1", base, &pending);
	side_init(&r1, "receive 1", base, &pending);
	side_init(&s2, "send 2", base, &pending);
	side_init(&r2, "receive 2", base, &pending);
	s1.other = &s2;
	s2.other = &s1;
	/* Session 1's own log at debug level; session 2 has none. */
	s1.cbs.log = on_log;
	s1.cbs.log_level = XMIG_LOG_DEBUG;
	pair(base, &s1, &r1, "sim:mem=48M,vcpus=2,dirty=0,seed=1", &so, &ro);
	pair(base, &s2, &r2, "sim:mem=48M,vcpus=1,dirty=0,seed=2", &so, &ro);
	run(base, &pending);
	check_completed(&s1, &r1);
	check_completed(&s2, &r2);
	CHECK(s1.logs > 0 && s1.saw_agreed && s2.logs == 0,
	    "per-session log: %u lines (agreed %d), the other %u", s1.logs,
	    s1.saw_agreed, s2.logs);
	CHECK(memcmp(s1.r.memory_digest, s2.r.memory_digest, 32) != 0,
	    "two different domains, one digest");
	/* Interleaved: whichever ended first, the other had sent by then. */
	CHECK(s1.other_bytes_at_result > 0 || s2.other_bytes_at_result > 0,
	    "one migration ran to its end before the other sent anything");
	CHECK(strcmp(sim_run_state(s1.b), "paused") == 0 &&
	    strcmp(sim_run_state(s2.b), "paused") == 0,
	    "handed-over sources stay paused (%s, %s)", sim_run_state(s1.b),
	    sim_run_state(s2.b));
	free_pair(&s1, &r1);
	free_pair(&s2, &r2);
}

/* One cancelled (while its source is paused), the other completes. */
static void
one_cancelled(struct event_base *base)
{
	struct side s1, r1, s2, r2;
	struct send_opts so1, so2;
	struct recv_opts ro;
	int pending = 4;

	send_opts_default(&so1);
	so1.progress = PROGRESS_NONE;
	so1.negotiate_timeout_ms = 30000;
	so1.live = 0;		/* paused from the first page on */
	so1.bandwidth = 16u << 20;	/* 4 s: cancelled after 250 ms */
	send_opts_default(&so2);
	so2.progress = PROGRESS_NONE;
	so2.negotiate_timeout_ms = 30000;
	so2.require_backchannel = 1;
	recv_opts_default(&ro);
	side_init(&s1, "cancelled send", base, &pending);
	side_init(&r1, "cancelled receive", base, &pending);
	side_init(&s2, "other send", base, &pending);
	side_init(&r2, "other receive", base, &pending);
	s1.cancel_at_progress = 1;
	pair(base, &s1, &r1, "sim:mem=64M,vcpus=1,dirty=0,seed=3", &so1, &ro);
	pair(base, &s2, &r2, "sim:mem=32M,vcpus=1,dirty=1M,seed=4", &so2,
	    &ro);
	run(base, &pending);
	CHECK(s1.cancelled && s1.paused_at_cancel, "the cancel was never "
	    "made, or not while the source was paused");
	CHECK(s1.results == 1 && r1.results == 1, "cancelled: %d / %d "
	    "results", s1.results, r1.results);
	CHECK(s1.rc == -ECANCELED && strcmp(s1.r.error, "cancelled") == 0,
	    "cancelled send: rc %d (%s)", s1.rc, s1.r.error);
	CHECK(strcmp(s1.r.status, "failed") == 0, "cancelled: status %s",
	    s1.r.status);
	CHECK(strcmp(sim_run_state(s1.b), "running") == 0,
	    "the cancelled source is %s, not running", sim_run_state(s1.b));
	CHECK(r1.rc != 0 && strcmp(r1.r.status, "failed") == 0,
	    "its receiver: rc %d status %s", r1.rc, r1.r.status);
	check_completed(&s2, &r2);
	free_pair(&s1, &r1);
	free_pair(&s2, &r2);
}

/* tcp:localhost:PORT, connected on the loop; accepted on the same loop. */
struct acceptor {
	struct event_base	*base;
	const struct recv_opts	*ro;
	struct side		*rcv;
	int			 lfd;
};

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct acceptor *a = arg;
	int fd;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(fd >= 0, "accept: %s", strerror(errno));
	if (fd < 0)
		return;
	a->rcv->rv = xmig_recv_new(a->base, fd, NULL, a->ro, &a->rcv->cbs);
	CHECK(a->rcv->rv != NULL && xmig_recv_start(a->rcv->rv) == 0,
	    "receiver on the accepted socket");
}

static void
over_tcp(struct event_base *base)
{
	struct side s1, r1;
	struct send_opts so;
	struct recv_opts ro;
	struct xport_uri u;
	struct acceptor a;
	struct event *ev;
	char err[256], bound[300], dest[320];
	const char *port;
	int pending = 2, lfd;

	send_opts_default(&so);
	so.progress = PROGRESS_NONE;
	so.negotiate_timeout_ms = 30000;
	so.require_backchannel = 1;
	recv_opts_default(&ro);
	CHECK(xport_parse("tcp:127.0.0.1:0", &u, err, sizeof(err)) == 0,
	    "%s", err);
	lfd = xport_listen(&u, 0, err, sizeof(err));
	CHECK(lfd >= 0, "listen: %s", err);
	if (lfd < 0)
		return;
	CHECK(xport_bound(lfd, bound, sizeof(bound)) == 0, "bound");
	port = strrchr(bound, ':') + 1;
	snprintf(dest, sizeof(dest), "tcp:localhost:%s", port);
	side_init(&s1, "tcp send", base, &pending);
	side_init(&r1, "tcp receive", base, &pending);
	a.base = base;
	a.ro = &ro;
	a.rcv = &r1;
	a.lfd = lfd;
	ev = event_new(base, lfd, EV_READ, on_accept, &a);
	event_add(ev, NULL);
	s1.b = sim_source("sim:mem=16M,vcpus=1,dirty=0,seed=5");
	s1.s = xmig_send_new(base, s1.b, dest, &so, &s1.cbs);
	CHECK(s1.s != NULL && xmig_send_start(s1.s) == 0, "tcp: start");
	run(base, &pending);
	check_completed(&s1, &r1);
	event_free(ev);
	close(lfd);
	free_pair(&s1, &r1);

	/* Nobody listening: the failure comes as the result, once. */
	pending = 1;
	side_init(&s1, "refused send", base, &pending);
	s1.b = sim_source("sim:mem=4M,vcpus=1,dirty=0,seed=6");
	s1.s = xmig_send_new(base, s1.b, dest, &so, &s1.cbs);
	CHECK(s1.s != NULL && xmig_send_start(s1.s) == 0, "refused: start");
	run(base, &pending);
	CHECK(s1.results == 1 && s1.rc == -ECONNREFUSED &&
	    strstr(s1.r.error, "connect to localhost:") != NULL,
	    "refused: %d results, rc %d (%s)", s1.results, s1.rc, s1.r.error);
	CHECK(strcmp(sim_run_state(s1.b), "running") == 0, "refused: source "
	    "%s", sim_run_state(s1.b));
	xmig_send_free(s1.s);
	s1.b->ops->close(s1.b);

	/* Cancelled while it connects: once, -ECANCELED, source running. */
	lfd = xport_listen(&u, 0, err, sizeof(err));
	CHECK(lfd >= 0 && xport_bound(lfd, bound, sizeof(bound)) == 0,
	    "listen: %s", err);
	snprintf(dest, sizeof(dest), "tcp:localhost:%s",
	    strrchr(bound, ':') + 1);
	pending = 1;
	side_init(&s1, "cancelled connect", base, &pending);
	s1.b = sim_source("sim:mem=4M,vcpus=1,dirty=0,seed=8");
	s1.s = xmig_send_new(base, s1.b, dest, &so, &s1.cbs);
	CHECK(s1.s != NULL && xmig_send_start(s1.s) == 0, "connect: start");
	xmig_send_cancel(s1.s);
	run(base, &pending);
	CHECK(s1.results == 1 && s1.rc == -ECANCELED, "cancelled connect: "
	    "%d results, rc %d (%s)", s1.results, s1.rc, s1.r.error);
	CHECK(strcmp(sim_run_state(s1.b), "running") == 0, "cancelled "
	    "connect: source %s", sim_run_state(s1.b));
	xmig_send_free(s1.s);
	s1.b->ops->close(s1.b);
	close(lfd);

	/* Freed before its result: no result, nothing left behind. */
	side_init(&s1, "freed", base, &pending);
	s1.b = sim_source("sim:mem=4M,vcpus=1,dirty=0,seed=9");
	s1.s = xmig_send_new(base, s1.b, dest, &so, &s1.cbs);
	CHECK(s1.s != NULL && xmig_send_start(s1.s) == 0, "freed: start");
	xmig_send_free(s1.s);
	{
		struct timeval tv = { 0, 100000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	CHECK(s1.results == 0, "freed: %d results", s1.results);
	CHECK(strcmp(sim_run_state(s1.b), "running") == 0, "freed: source "
	    "%s", sim_run_state(s1.b));
	s1.b->ops->close(s1.b);

	/* exec: is the caller's: a clear error, as a result. */
	pending = 1;
	side_init(&s1, "exec send", base, &pending);
	s1.b = sim_source("sim:mem=4M,vcpus=1,dirty=0,seed=7");
	s1.s = xmig_send_new(base, s1.b, "exec:cat", &so, &s1.cbs);
	CHECK(s1.s != NULL && xmig_send_start(s1.s) == 0, "exec: start");
	run(base, &pending);
	CHECK(s1.results == 1 && s1.rc == -EINVAL &&
	    strstr(s1.r.error, "exec:") != NULL, "exec: rc %d (%s)", s1.rc,
	    s1.r.error);
	xmig_send_free(s1.s);
	s1.b->ops->close(s1.b);
}

/*
 * A QUERY (SPEC 13.2): the receiver answers with what it can host and
 * opens nothing; the sender sends no page and never pauses its source.
 * Then one refused for memory, its REPLY's figures in the report too.
 */
static void
query(struct event_base *base)
{
	static const struct {
		const char	*spec;
		uint64_t	 max_memory;
		unsigned	 result;
	} c[] = {
		{ "sim:mem=16M,dirty=1M", 64u << 20, 0 },
		{ "sim:mem=32M,dirty=1M", 16u << 20, 4 },	/* MEMORY */
	};
	struct side snd, rcv;
	struct send_opts so;
	struct recv_opts ro;
	unsigned i;
	int pending;

	for (i = 0; i < 2; i++) {
		pending = 2;
		send_opts_default(&so);
		so.progress = PROGRESS_NONE;
		so.negotiate_timeout_ms = 30000;
		so.query = 1;
		recv_opts_default(&ro);
		ro.max_memory = c[i].max_memory;
		side_init(&snd, "query", base, &pending);
		side_init(&rcv, "asked", base, &pending);
		pair(base, &snd, &rcv, c[i].spec, &so, &ro);
		run(base, &pending);
		CHECK(snd.results == 1 && snd.rc == 0 &&
		    strcmp(snd.r.status, "answered") == 0, "query %u: rc %d, "
		    "status %s (%s)", i, snd.rc, snd.r.status, snd.r.error);
		CHECK(snd.r.query && snd.r.peer_result == c[i].result &&
		    snd.r.peer_max_memory == c[i].max_memory, "query %u: "
		    "result %u, max_memory %llu", i, snd.r.peer_result,
		    (unsigned long long)snd.r.peer_max_memory);
		CHECK(c[i].result == 0 || strstr(snd.r.error, "at most 16 MiB")
		    != NULL, "query %u: the refusal's reason: %s", i,
		    snd.r.error);
		CHECK(snd.r.pages_sent == 0 && snd.r.bytes < 4096 &&
		    !snd.r.have_downtime, "query %u: %llu pages, %llu octets "
		    "sent", i, (unsigned long long)snd.r.pages_sent,
		    (unsigned long long)snd.r.bytes);
		CHECK(strcmp(sim_run_state(snd.b), "running") == 0,
		    "query %u: the source is %s", i, sim_run_state(snd.b));
		CHECK(rcv.results == 1 && rcv.rc == -ENOMSG && rcv.r.query &&
		    rcv.r.peer_result == c[i].result && rcv.r.nr_pages == 0,
		    "query %u: receiver rc %d, query %d, %llu pages", i,
		    rcv.rc, rcv.r.query, (unsigned long long)rcv.r.nr_pages);
		free_pair(&snd, &rcv);
	}
}

int
main(void)
{
	struct event_base *base = event_base_new();

	signal(SIGPIPE, SIG_IGN);	/* a peer that fails closes mid-write */

	CHECK(base != NULL, "event_base_new");
	if (base == NULL)
		return tap_done();
	two_at_once(base);
	one_cancelled(base);
	over_tcp(base);
	query(base);
	event_base_free(base);
	return tap_done();
}
