/*
 * serve.c -- migrate-receive's side of the engine: a listener that serves
 * each migration in a process of its own (at most --max-sessions at once,
 * the others refused "busy"), a file or stdin read with xmig_recv_fd, and
 * the "migrate-receive: ..." lines and reports about them.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "xmig.h"
#include "run.h"

/*
 * Connections beyond --max-sessions: at most SERVE_REFUSERS_MAX processes
 * answer them ("busy", xmig_recv_refuse); beyond those, a connection is
 * closed unread.
 */
#define SERVE_REFUSERS_MAX	4u

/* A session's messages: as migrate-receive's own, debug through xmig_log. */
static void
serve_log(void *arg, int level, const char *msg)
{
	static const char *const tag[] = { "error: ", "warning: ", "", "" };

	(void)arg;
	if (level >= XMIG_LOG_DEBUG) {
		xmig_log(XMIG_LOG_DEBUG, "%s", msg);
		return;
	}
	fprintf(stderr, "migrate-receive: %s%s\n", tag[level < 0 ? 0 : level],
	    msg);
}

struct serve_one {
	struct event_base	*base;
	struct progress		*prog;
	struct xmig_report	 r;
	int			 rc;
	int			 done;
};

static void
serve_progress(void *arg, const struct progress_info *pi)
{
	struct serve_one *so = arg;

	progress_cb(so->prog, pi);
}

static void
serve_result(void *arg, int rc, const struct xmig_report *r)
{
	struct serve_one *so = arg;

	so->rc = rc;
	so->r = *r;
	so->done = 1;
	if (so->base != NULL)
		event_base_loopbreak(so->base);
}

static void
serve_cbs(struct serve_one *so, struct xmig_cbs *cbs)
{
	memset(cbs, 0, sizeof(*cbs));
	cbs->arg = so;
	cbs->progress = serve_progress;
	cbs->log = serve_log;
	cbs->log_level = xmig_log_on(XMIG_LOG_DEBUG) ? XMIG_LOG_DEBUG :
	    XMIG_LOG_INFO;
	cbs->result = serve_result;
}

/* What follows every migration: the report asked for, the error. */
static int
serve_report(const struct recv_opts *o, struct serve_one *so, FILE *out)
{
	progress_end(so->prog);
	progress_free(so->prog);
	so->prog = NULL;
	if (o->report_json)
		report_print_json(&so->r, out);
	if (so->rc != 0)
		fprintf(stderr, "migrate-receive: error: %s\n", so->r.error);
	return so->rc;
}

/* One migration read from fd without an event loop (xmig_recv_fd). */
static int
serve_fd(const struct recv_opts *o, int fd, int out_fd, int exact,
    FILE *out)
{
	struct serve_one so;
	struct xmig_cbs cbs;

	memset(&so, 0, sizeof(so));
	so.prog = progress_new(o->progress, stderr);
	serve_cbs(&so, &cbs);
	so.rc = xmig_recv_fd(fd, out_fd, exact, o, &cbs, &so.r);
	return serve_report(o, &so, out);
}

/*
 * Data streams (SPEC 13.6): when the session takes some, a listener on an
 * ephemeral port of the address the migration came in on; what it accepts
 * goes to the session, which checks each hello's token and closes the
 * rest.  Closed once the session wants no more, or with the session.
 */
struct serve_data {
	struct event_base	*base;
	struct xmig_recv	*rv;
	int			 mainfd;
	int			 lfd;
	struct event		*ev;
};

static void
serve_data_close(struct serve_data *d)
{
	if (d->ev != NULL)
		event_free(d->ev);
	d->ev = NULL;
	if (d->lfd >= 0)
		close(d->lfd);
	d->lfd = -1;
}

static void
serve_data_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct serve_data *d = arg;
	int fd;

	(void)what;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		if (xmig_recv_stream_fd(d->rv, fd) == -ENOSPC) {
			serve_data_close(d);
			return;
		}
	}
}

static int
serve_data_listen(void *arg, uint16_t *port, char *err, size_t errlen)
{
	struct serve_data *d = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int rc;

	if (d->lfd >= 0)
		return -EALREADY;
	if (getsockname(d->mainfd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		snprintf(err, errlen, "the migration's connection has no "
		    "address for data streams");
		return -EAFNOSUPPORT;
	}
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	d->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (d->lfd < 0 || bind(d->lfd, (struct sockaddr *)&ss, len) != 0 ||
	    listen(d->lfd, XMIG_STREAMS_MAX) != 0 ||
	    getsockname(d->lfd, (struct sockaddr *)&ss, &len) != 0) {
		rc = -errno;
		snprintf(err, errlen, "listening for data streams: %s",
		    strerror(errno));
		serve_data_close(d);
		return rc;
	}
	d->ev = event_new(d->base, d->lfd, EV_READ | EV_PERSIST,
	    serve_data_accept, d);
	if (d->ev == NULL || event_add(d->ev, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		serve_data_close(d);
		return -ENOMEM;
	}
	*port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* One migration on an accepted socket, a session on a loop of its own. */
static int
serve_socket(const struct recv_opts *o, int fd, void *tls_ctx,
    const char *busy, FILE *out)
{
	struct serve_one so;
	struct serve_data data = { .lfd = -1, .mainfd = fd };
	struct xmig_cbs cbs;
	struct xmig_recv *rv;

	memset(&so, 0, sizeof(so));
	so.r.role = "receive";
	so.r.status = "failed";
	so.r.verified = -1;
	so.rc = -ENOMEM;
	snprintf(so.r.error, sizeof(so.r.error), "out of memory");
	so.prog = progress_new(o->progress, stderr);
	serve_cbs(&so, &cbs);
	if ((so.base = event_base_new()) == NULL ||
	    (rv = xmig_recv_new(so.base, fd, tls_ctx, o, &cbs)) == NULL) {
		close(fd);
		if (so.base != NULL)
			event_base_free(so.base);
		return serve_report(o, &so, out);
	}
	if (busy != NULL)
		xmig_recv_refuse(rv, busy);
	else if (o->max_streams > 1) {
		data.base = so.base;
		data.rv = rv;
		xmig_recv_allow_streams(rv, o->max_streams, serve_data_listen,
		    &data);
	}
	xmig_recv_start(rv);
	while (!so.done && event_base_dispatch(so.base) == 0)
		;
	if (!so.done) {
		so.rc = -EIO;
		snprintf(so.r.error, sizeof(so.r.error), "event loop ended "
		    "early");
	}
	serve_data_close(&data);
	xmig_recv_free(rv);
	event_base_free(so.base);
	return serve_report(o, &so, out);
}

/*
 * The processes of a listener: at most max restoring sessions, at most
 * SERVE_REFUSERS_MAX refusers.  Admission is decided here, before the
 * fork, so a connection over the limit never reaches a restoring process.
 */
struct serve_children {
	pid_t		*pid;		/* [max + SERVE_REFUSERS_MAX] */
	unsigned char	*admitted;	/* a session, else a refuser */
	unsigned	 n;
	unsigned	 sessions;	/* admitted among them */
	unsigned	 refusers;
	int		 failures;	/* sessions that did not complete */
	unsigned long	 dropped;	/* closed unread since the last note */
	uint64_t	 dropped_note;	/* when that note was printed */
};

static void
serve_children_reap(struct serve_children *c)
{
	unsigned i;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < c->n; i++) {
			if (c->pid[i] != pid)
				continue;
			if (c->admitted[i]) {
				c->sessions--;
				if (!WIFEXITED(status) ||
				    WEXITSTATUS(status) != 0)
					c->failures++;
			} else
				c->refusers--;
			c->n--;
			c->pid[i] = c->pid[c->n];
			c->admitted[i] = c->admitted[c->n];
			break;
		}
	}
}

/* A connection beyond every limit: closed unread, noted once a second. */
static void
serve_children_drop(struct serve_children *c, int fd, unsigned max)
{
	uint64_t t = now_ns();

	xport_abort(fd);
	close(fd);
	c->dropped++;
	if (t - c->dropped_note >= 1000000000ULL) {
		fprintf(stderr, "migrate-receive: busy: %u migrations in "
		    "progress (--max-sessions %u) and %u refusals: closed "
		    "%lu connection%s unread\n", c->sessions, max, c->refusers,
		    c->dropped, c->dropped == 1 ? "" : "s");
		c->dropped = 0;
		c->dropped_note = t;
	}
}

int
recv_serve(const char *source, const struct recv_opts *o)
{
	struct xport_uri u;
	struct serve_children ch;
	char err[512];
	FILE *rout = o->report_out ? o->report_out : stdout;
	void *tls_ctx = NULL;
	unsigned max = o->max_sessions ? o->max_sessions : 8;
	int fd, lfd, rc = 0;

	if ((rc = xport_parse(source, &u, err, sizeof(err))) != 0) {
		fprintf(stderr, "migrate-receive: error: %s\n", err);
		return rc;
	}
	switch (u.kind) {
	case XPORT_STDIO:
		/* stdout carries the back-channel when one is offered. */
		return serve_fd(o, STDIN_FILENO, STDOUT_FILENO, 0, stderr);
	case XPORT_FILE:
		if ((fd = open(u.path, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = -errno;
			fprintf(stderr, "migrate-receive: error: %s: %s\n",
			    u.path, strerror(errno));
			return rc;
		}
		rc = serve_fd(o, fd, -1, 0, rout);
		close(fd);
		return rc;
	case XPORT_TLS:
		tls_ctx = xport_tls_ctx_new(&o->tls, 1, err, sizeof(err));
		if (tls_ctx == NULL) {
			fprintf(stderr, "migrate-receive: error: %s\n", err);
			return -EINVAL;
		}
		break;
	case XPORT_TCP:
		break;
	case XPORT_EXEC:
		fprintf(stderr, "migrate-receive: error: %s: exec: is for "
		    "migrate-send (run migrate-receive - at the far end)\n",
		    source);
		return -EINVAL;
	}
	if ((lfd = xport_listen(&u, o->insecure, err, sizeof(err))) < 0) {
		fprintf(stderr, "migrate-receive: error: %s\n", err);
		xport_tls_ctx_free(tls_ctx);
		return lfd;
	}
	memset(&ch, 0, sizeof(ch));
	ch.pid = calloc(max + SERVE_REFUSERS_MAX, sizeof(*ch.pid));
	ch.admitted = calloc(max + SERVE_REFUSERS_MAX, 1);
	if (ch.pid == NULL || ch.admitted == NULL) {
		free(ch.pid);
		free(ch.admitted);
		close(lfd);
		xport_tls_ctx_free(tls_ctx);
		return -ENOMEM;
	}
	if (xport_bound(lfd, err, sizeof(err)) == 0) {
		fprintf(stderr, "migrate-receive: listening on %s\n", err);
		fflush(stderr);
	}
	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		char busy[160];
		int admit;
		pid_t pid;

		/* Reap finished sessions and refusals. */
		serve_children_reap(&ch);
		if ((rc = poll(&pfd, 1, 200)) < 0 && errno != EINTR) {
			rc = -errno;
			fprintf(stderr, "migrate-receive: error: poll: %s\n",
			    strerror(errno));
			break;
		}
		rc = 0;
		if (!(pfd.revents & POLLIN))
			continue;
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
		if (o->once && o->toolstack != NULL && tls_ctx == NULL) {
			/*
			 * A target with a toolstack (a real Xen domain):
			 * read the socket as a pipe is read, into one flat
			 * buffer fed to the parser (xmig_recv_fd), with the
			 * back-channel on the same socket.  In the Xen lab
			 * (emulated dom0) this took a 160 MB guest's live
			 * migration from 57-60 s to 25 s: the bufferevent
			 * path's chains, pullups and small callbacks cost
			 * more than the copy into the guest.
			 */
			rc = serve_fd(o, fd, fd, 0, rout);
			close(fd);
			break;
		}
		if (o->once) {
			rc = serve_socket(o, fd, tls_ctx, NULL, rout);
			break;
		}
		/*
		 * Each migration in a process of its own, at most max at
		 * once.  Beyond that a short-lived process answers "busy" (a
		 * refusing XMIG_REPLY to a sender that negotiates, a close
		 * to any other) and restores nothing; beyond
		 * SERVE_REFUSERS_MAX of those, the connection is closed here.
		 */
		serve_children_reap(&ch);
		admit = ch.sessions < max;
		if (!admit && ch.refusers >= SERVE_REFUSERS_MAX) {
			serve_children_drop(&ch, fd, max);
			continue;
		}
		snprintf(busy, sizeof(busy), "busy: %u migrations in progress "
		    "(--max-sessions %u); try again later", ch.sessions, max);
		fflush(NULL);
		if ((pid = fork()) < 0) {
			fprintf(stderr, "migrate-receive: error: fork: %s\n",
			    strerror(errno));
			xport_abort(fd);
			close(fd);
			continue;
		}
		if (pid == 0) {
			close(lfd);
			rc = serve_socket(o, fd, tls_ctx, admit ? NULL : busy,
			    rout);
			fflush(NULL);
			_exit(rc == 0 ? 0 : 1);
		}
		close(fd);
		ch.pid[ch.n] = pid;
		ch.admitted[ch.n] = (unsigned char)admit;
		ch.n++;
		if (admit)
			ch.sessions++;
		else
			ch.refusers++;
	}
	close(lfd);
	free(ch.pid);
	free(ch.admitted);
	xport_tls_ctx_free(tls_ctx);
	return o->once ? rc : (ch.failures ? -EIO : rc);
}

int
recv_fd(int fd, const struct recv_opts *o)
{
	return serve_fd(o, fd, -1, 1, o->report_out ? o->report_out : stdout);
}
