/*
 * domproc.c -- a domain process of xmigd: one hosted sim domain, in a
 * process of its own (as a QEMU process per VM), and its outgoing
 * migration.  It talks to xmigd in the line protocol of proto/SPEC.md
 * ("xmigd internal protocol"): first over the socket pair it was forked
 * with, later over its registration socket in the state directory, where
 * an xmigd started after the one that forked it finds it (SPEC 18.4).
 * The process does not depend on xmigd: without one it hosts its domain,
 * and a migration in flight goes on, until an xmigd connects again.
 *
 * A domain comes from `create` (a sim source, workload running) or from an
 * incoming migration (a receiver session with a small toolstack).  A
 * received domain is the receiver's own sim target, handed to this process
 * by the toolstack's adopt once the session succeeded: it runs on as it
 * was handed over, and its workload (dirty=, hot=, seed= of the spec the
 * sender gave in XMIG_DOMAIN_CONFIG) starts once the digests are taken
 * (SPEC 18.3).
 */
#include "config.h"

#include <sys/signalfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "xmig.h"
#include "xmigd.h"

struct dom {
	struct event_base	*base;
	int			 ctl;		/* xmigd's connection, or -1 */
	struct bufferevent	*cbev;
	int			 lfd;		/* the registration socket */
	const char		*lpath;
	struct event		*lev, *tev;	/* its accepts, SIGTERM */
	int			 tfd;		/* signalfd of SIGTERM */
	char			 name[XMIGD_NAME_MAX + 1];
	char			 spec[512];	/* sim spec, after "sim:" */
	const char		*origin;	/* created, received */
	char			*config;	/* XMIG_DOMAIN_CONFIG text */
	struct backend		*b;
	int			 paused;	/* left paused (unconfirmed) */
	struct xmig_send	*send;
	struct send_opts	 so;
	struct xmig_cbs		 cbs;		/* outlives the session */
	char			 uri[512];	/* of the outgoing migration */
	int			 quit;		/* destroy and exit */
	/* Receiving: */
	struct xmig_recv	*rv;
	int			 recv_done, recv_rc, recv_query;
	char			 recv_err[512];
	char			 tspec[512];	/* the target's sim spec */
	uint64_t		 dirty;		/* its workload, started late */
};

static struct xport_tls domproc_tls;

void
domproc_set_tls(const struct xport_tls *t)
{
	memset(&domproc_tls, 0, sizeof(domproc_tls));
	domproc_tls.cert = t->cert;
	domproc_tls.key = t->key;
	domproc_tls.ca = t->ca;
}

int
xmigd_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > XMIGD_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '.' || name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}

/* One line to xmigd, if one listens; newlines in the text become spaces. */
static void
dom_say(struct dom *d, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t i, n;

	if (d->ctl < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	for (i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)write_all(d->ctl, line, n);
}

/* The process ends: its registration goes with it. */
static void __attribute__((noreturn))
dom_leave(struct dom *d, int rc)
{
	if (d->lpath != NULL)
		unlink(d->lpath);
	_exit(rc);
}

static void __attribute__((noreturn))
dom_exit(struct dom *d, int rc)
{
	if (d->send != NULL)
		xmig_send_free(d->send);
	if (d->b != NULL) {
		d->b->ops->destroy(d->b);
		d->b->ops->close(d->b);
	}
	dom_leave(d, rc);
}

/* The configuration that travels with the domain: name and sim spec. */
static int
dom_config_make(struct dom *d)
{
	json_object *o = json_object_new_object(), *x = json_object_new_object();

	free(d->config);
	json_object_object_add(x, "name", json_object_new_string(d->name));
	json_object_object_add(x, "spec", json_object_new_string(d->spec));
	json_object_object_add(o, "xmigd", x);
	d->config = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return d->config == NULL ? -ENOMEM : 0;
}

/* "running NAME MEMORY SPEC": the domain runs here (or runs again). */
static void
dom_say_running(struct dom *d)
{
	struct domain_info info;

	if (d->b->ops->describe(d->b, &info) != 0)
		memset(&info, 0, sizeof(info));
	dom_say(d, "running %s %llu %s", d->name, (unsigned long long)
	    (info.nr_pages << info.page_shift), d->spec[0] ? d->spec : "-");
}

/*
 * "state PID STATE NAME MEMORY SPEC ORIGIN URI" to an xmigd that has
 * just connected (SPEC 18.4).
 */
static void
dom_say_state(struct dom *d)
{
	struct domain_info info;
	const char *state;

	memset(&info, 0, sizeof(info));
	if (d->b != NULL && d->b->ops->describe(d->b, &info) != 0)
		memset(&info, 0, sizeof(info));
	if (d->rv != NULL && !d->recv_done)
		state = "incoming";
	else if (d->send != NULL)
		state = "migrating";
	else if (d->paused)
		state = "paused";
	else
		state = "running";
	dom_say(d, "state %ld %s %s %llu %s %s %s", (long)getpid(), state,
	    d->name[0] ? d->name : "-", (unsigned long long)
	    (info.nr_pages << info.page_shift), d->spec[0] ? d->spec : "-",
	    d->origin, d->send != NULL ? d->uri : "-");
}

/* ---- an outgoing migration --------------------------------------------- */

static void
dom_send_progress(void *arg, const struct progress_info *pi)
{
	struct dom *d = arg;

	dom_say(d, "progress %s %u %llu %llu", pi->phase, pi->pass,
	    (unsigned long long)pi->bytes, (unsigned long long)pi->remaining);
}

static void
dom_send_result(void *arg, int rc, const struct xmig_report *r)
{
	struct dom *d = arg;
	const char *status = rc == 0 ? "completed" : rc == -EINPROGRESS ?
	    "unconfirmed" : rc == -ECANCELED ? "cancelled" : "failed";

	dom_say(d, "result %s %llu %.3f %d %s", status,
	    (unsigned long long)r->bytes, r->have_downtime ? r->downtime_ms :
	    -1.0, r->verified, rc == 0 ? "-" : r->error[0] ? r->error :
	    "failed");
	xmig_send_free(d->send);
	d->send = NULL;
	if (rc == 0) {
		/* Handed over: this copy goes away, and so does the process. */
		d->b->ops->destroy(d->b);
		d->b->ops->close(d->b);
		d->b = NULL;
		d->quit = 1;
	} else if (rc == -EINPROGRESS)
		d->paused = 1;
	if (d->quit)
		event_base_loopbreak(d->base);
}

static void
dom_migrate(struct dom *d, const char *uri, uint64_t bandwidth)
{
	struct xmig_cbs *cbs = &d->cbs;

	if (d->send != NULL || d->paused || d->b == NULL) {
		dom_say(d, "result failed 0 -1 -1 %s", d->paused ? "the domain "
		    "is paused after an unconfirmed handover" : "a migration "
		    "is already running");
		return;
	}
	if (dom_config_make(d) != 0) {
		dom_say(d, "result failed 0 -1 -1 out of memory");
		return;
	}
	send_opts_default(&d->so);
	d->so.bandwidth = bandwidth;
	d->so.progress = PROGRESS_NONE;
	d->so.tls = domproc_tls;
	d->so.domain_config = d->config;
	d->so.domain_config_len = strlen(d->config);
	memset(cbs, 0, sizeof(*cbs));
	cbs->arg = d;
	cbs->progress = dom_send_progress;
	cbs->result = dom_send_result;
	snprintf(d->uri, sizeof(d->uri), "%s", uri);
	if ((d->send = xmig_send_new(d->base, d->b, uri, &d->so, cbs)) ==
	    NULL) {
		dom_say(d, "result failed 0 -1 -1 out of memory");
		return;
	}
	xmig_send_start(d->send);
}

/* ---- xmigd's commands --------------------------------------------------- */

/*
 * Cancel what runs: an outgoing migration (the source resumes, unless it
 * is past GO) or an incoming one (discarded, unless it is past GO).
 * Their results follow.  Non-zero if there was one.
 */
static int
dom_cancel(struct dom *d)
{
	if (d->rv != NULL && !d->recv_done) {
		xmig_recv_cancel(d->rv);
		return 1;
	}
	if (d->send != NULL) {
		xmig_send_cancel(d->send);
		return 1;
	}
	return 0;
}

/* quit, or SIGTERM: cancel what runs, then destroy the domain and exit. */
static void
dom_quit(struct dom *d)
{
	d->quit = 1;
	if (!dom_cancel(d))
		event_base_loopbreak(d->base);
}

static void
dom_command(struct dom *d, char *line)
{
	char *uri, *bw, *arg, *save = NULL;
	char *cmd = strtok_r(line, " ", &save);
	unsigned long long v;

	if (cmd == NULL)
		return;
	if (strcmp(cmd, "migrate") == 0) {
		uri = strtok_r(NULL, " ", &save);
		bw = strtok_r(NULL, " ", &save);
		v = bw != NULL ? strtoull(bw, NULL, 10) : 0;
		if (uri == NULL)
			dom_say(d, "result failed 0 -1 -1 no URI");
		else
			dom_migrate(d, uri, v);
	} else if (strcmp(cmd, "query") == 0) {
		uri = strtok_r(NULL, " ", &save);
		/* The configuration as a migration would send it now. */
		if (d->send == NULL)
			(void)dom_config_make(d);
		if (uri != NULL)
			domq_query(d->base, d->b, d->config, &domproc_tls,
			    &d->ctl, uri);
	} else if (strcmp(cmd, "bandwidth") == 0) {
		bw = strtok_r(NULL, " ", &save);
		d->so.bandwidth = bw != NULL ? strtoull(bw, NULL, 10) : 0;
		if (d->send != NULL)
			(void)xmig_send_set_bandwidth(d->send,
			    d->so.bandwidth);
	} else if (strcmp(cmd, "cancel") == 0 || strcmp(cmd, "detach") == 0) {
		/* detach: xmigd stops; this process and its domain stay. */
		(void)dom_cancel(d);
	} else if (strcmp(cmd, "quit") == 0) {
		dom_quit(d);
	} else if (strcmp(cmd, "resume") == 0) {
		if (!d->paused || d->send != NULL || d->b == NULL)
			dom_say(d, "log resume: the domain is not paused");
		else if (d->b->ops->resume(d->b) != 0)
			dom_say(d, "log resume: %s", backend_errmsg(d->b));
		else {
			d->paused = 0;
			dom_say_running(d);
		}
	} else if (strcmp(cmd, "name") == 0) {
		arg = strtok_r(NULL, " ", &save);
		if (arg != NULL && xmigd_name_ok(arg))
			snprintf(d->name, sizeof(d->name), "%s", arg);
	}
}

static void dom_ctl_event(struct bufferevent *, short, void *);

static void
dom_ctl_read(struct bufferevent *bev, void *arg)
{
	struct dom *d = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;

	while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF)) != NULL) {
		dom_command(d, line);
		free(line);
		if (d->cbev != bev)
			return;		/* replaced meanwhile */
	}
}

static void
dom_ctl_drop(struct dom *d)
{
	if (d->cbev != NULL)
		bufferevent_free(d->cbev);	/* closes d->ctl */
	else if (d->ctl >= 0)
		close(d->ctl);
	d->cbev = NULL;
	d->ctl = -1;
}

/*
 * xmigd went away (stopped, or died): this process goes on alone, its
 * migration too, until an xmigd connects to the registration socket.
 */
static void
dom_ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct dom *d = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		dom_ctl_drop(d);
}

/* Commands from xmigd on fd from now on. */
static int
dom_ctl_start(struct dom *d, int fd)
{
	dom_ctl_drop(d);
	evutil_make_socket_nonblocking(fd);
	if ((d->cbev = bufferevent_socket_new(d->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	d->ctl = fd;
	bufferevent_setcb(d->cbev, dom_ctl_read, NULL, dom_ctl_event, d);
	bufferevent_enable(d->cbev, EV_READ);
	return 0;
}

/*
 * An xmigd connects to the registration socket: it replaces the one we
 * had (there is one xmigd per state directory, and a new one means the
 * old one is gone) and learns our state.  Root or our own uid only.
 */
static void
dom_on_register(evutil_socket_t lfd, short what, void *arg)
{
	struct dom *d = arg;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		close(fd);
		return;
	}
	if (dom_ctl_start(d, fd) == 0)
		dom_say_state(d);
}

/*
 * SIGTERM, through a signalfd: libevent's own signal handling belongs to
 * the daemon's loop this process was forked from.
 */
static void
dom_on_term(evutil_socket_t fd, short what, void *arg)
{
	struct signalfd_siginfo si;

	(void)what;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		dom_quit(arg);
}

static int
dom_setup(struct dom *d, int ctl, int lfd, const char *lpath)
{
	sigset_t set;

	memset(d, 0, sizeof(*d));
	d->ctl = -1;
	d->lfd = lfd;
	d->lpath = lpath;
	/* Apart from xmigd's session: its terminal's signals are not ours. */
	(void)setsid();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (d->tfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return -errno;
	if ((d->base = event_base_new()) == NULL)
		return -ENOMEM;
	if (dom_ctl_start(d, ctl) != 0)
		return -ENOMEM;
	evutil_make_socket_nonblocking(lfd);
	d->lev = event_new(d->base, lfd, EV_READ | EV_PERSIST,
	    dom_on_register, d);
	d->tev = event_new(d->base, d->tfd, EV_READ | EV_PERSIST, dom_on_term,
	    d);
	if (d->lev == NULL || event_add(d->lev, NULL) != 0 ||
	    d->tev == NULL || event_add(d->tev, NULL) != 0)
		return -ENOMEM;
	return 0;
}

/* Host the running domain d->b until quit or a completed migration. */
static void __attribute__((noreturn))
dom_serve(struct dom *d)
{
	if (d->quit)	/* quit during the receive: nothing more to do */
		dom_exit(d, 0);
	dom_say_running(d);
	while (!d->quit && event_base_dispatch(d->base) == 0)
		;
	dom_exit(d, 0);
}

void
domproc_create(int ctl, int lfd, const char *lpath, const char *name,
    const char *spec)
{
	const struct backend_ops *ops = backend_find("sim");
	struct dom d;
	int rc;

	if (dom_setup(&d, ctl, lfd, lpath) != 0 || ops == NULL) {
		dom_say(&d, "failed out of memory");
		dom_leave(&d, 1);
	}
	d.origin = "created";
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.spec, sizeof(d.spec), "%s", spec);
	if ((rc = ops->open_source(spec, &d.b)) != 0) {
		dom_say(&d, "failed sim:%s: %s", spec, backend_errmsg(d.b));
		if (d.b != NULL)
			ops->close(d.b);
		d.b = NULL;
		dom_leave(&d, 1);
	}
	dom_serve(&d);
}

/* ---- an incoming migration --------------------------------------------- */

/*
 * The workload keys of the sender's sim spec that a target takes: hot=
 * and seed= into d->tspec, dirty= into d->dirty (started after the
 * digests, 18.3).  0, or -EINVAL with msg.
 */
static int
dom_workload(struct dom *d, char *msg, size_t msglen)
{
	const char *p = d->spec, *comma;
	char item[128];
	size_t len, used = 0;

	d->tspec[0] = '\0';
	d->dirty = 0;
	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len >= sizeof(item)) {
			snprintf(msg, msglen, "sim spec item too long");
			return -EINVAL;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (strncmp(item, "dirty=", 6) == 0) {
			if (parse_size(item + 6, &d->dirty) != 0) {
				snprintf(msg, msglen, "sim spec: %s: not a "
				    "size", item);
				return -EINVAL;
			}
		} else if (strncmp(item, "hot=", 4) == 0 ||
		    strncmp(item, "seed=", 5) == 0) {
			used += (size_t)snprintf(d->tspec + used,
			    sizeof(d->tspec) - used, "%s%s", used ? "," : "",
			    item);
			if (used >= sizeof(d->tspec)) {
				snprintf(msg, msglen, "sim spec too long");
				return -EINVAL;
			}
		}
		p += len + (comma != NULL);
	}
	return 0;
}

static int
dom_ts_config(void *arg, uint32_t kind, const char *text, size_t len,
    char *msg, size_t msglen)
{
	struct dom *d = arg;
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *x, *n, *s;
	int rc = -EOPNOTSUPP;

	(void)kind;
	if (tok != NULL)
		o = json_tokener_parse_ex(tok, text, (int)len);
	if (o != NULL && json_object_object_get_ex(o, "xmigd", &x) &&
	    json_object_object_get_ex(x, "name", &n) &&
	    json_object_object_get_ex(x, "spec", &s) &&
	    json_object_is_type(n, json_type_string) &&
	    json_object_is_type(s, json_type_string) &&
	    xmigd_name_ok(json_object_get_string(n)) &&
	    strlen(json_object_get_string(s)) < sizeof(d->spec) &&
	    strpbrk(json_object_get_string(s), " \n") == NULL) {
		snprintf(d->name, sizeof(d->name), "%s",
		    json_object_get_string(n));
		snprintf(d->spec, sizeof(d->spec), "%s",
		    json_object_get_string(s));
		if (dom_workload(d, msg, msglen) == 0)
			rc = 0;
	} else
		snprintf(msg, msglen, "xmigd hosts only sim domains sent by "
		    "another xmigd (a configuration {\"xmigd\":{\"name\","
		    "\"spec\"}})");
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

/* The empty sim target, with the workload's hot= and seed= (not dirty=). */
static int
dom_ts_create(void *arg, const struct domain_info *info, char *spec,
    size_t speclen, char *msg, size_t msglen)
{
	struct dom *d = arg;

	(void)info;
	(void)msg;
	(void)msglen;
	snprintf(spec, speclen, "%s", d->tspec);
	return 0;
}

static int
dom_ts_finish(void *arg, struct backend *b, char *msg, size_t msglen)
{
	(void)arg;
	(void)b;
	(void)msg;
	(void)msglen;
	return 0;
}

static int
dom_ts_start(void *arg, char *msg, size_t msglen)
{
	(void)arg;
	(void)msg;
	(void)msglen;
	return 0;
}

/* The host memory budget: the daemon decides (SPEC 18.5). */
static int
dom_ts_admit(void *arg, uint64_t bytes, int query, char *msg, size_t msglen)
{
	struct dom *d = arg;

	return domq_admit(d->ctl, d->cbev, bytes, query, msg, msglen);
}

static void
dom_ts_abort(void *arg)
{
	(void)arg;
}

/* The session succeeded: the domain it restored is this process's now. */
static void
dom_ts_adopt(void *arg, struct backend *b)
{
	struct dom *d = arg;

	d->b = b;
}

static void
dom_recv_result(void *arg, int rc, const struct xmig_report *r)
{
	struct dom *d = arg;

	d->recv_done = 1;
	d->recv_rc = rc;
	d->recv_query = r->query;
	snprintf(d->recv_err, sizeof(d->recv_err), "%s", r->error);
	event_base_loopbreak(d->base);
}

void
domproc_receive(int ctl, int lfd, const char *lpath, int fd, void *tls_ctx,
    const struct recv_opts *o, const char *busy)
{
	struct recv_toolstack ts;
	struct recv_opts ro = *o;
	struct xmig_cbs cbs;
	struct dom d;

	if (dom_setup(&d, ctl, lfd, lpath) != 0) {
		dom_say(&d, "failed out of memory");
		dom_leave(&d, 1);
	}
	d.origin = "received";
	memset(&ts, 0, sizeof(ts));
	ts.arg = &d;
	ts.config = dom_ts_config;
	ts.create = dom_ts_create;
	ts.finish = dom_ts_finish;
	ts.start = dom_ts_start;
	ts.abort = dom_ts_abort;
	ts.admit = dom_ts_admit;
	ts.adopt = dom_ts_adopt;
	ro.toolstack = &ts;
	ro.backend = "sim";
	memset(&cbs, 0, sizeof(cbs));
	cbs.arg = &d;
	cbs.result = dom_recv_result;
	if ((d.rv = xmig_recv_new(d.base, fd, tls_ctx, &ro, &cbs)) == NULL) {
		dom_say(&d, "failed out of memory");
		dom_leave(&d, 1);
	}
	if (busy != NULL)
		xmig_recv_refuse(d.rv, busy);
	xmig_recv_start(d.rv);
	while (!d.recv_done && event_base_dispatch(d.base) == 0)
		;
	xmig_recv_free(d.rv);
	d.rv = NULL;
	if (d.recv_done && d.recv_query) {
		dom_say(&d, "asked");	/* a query, answered (SPEC 13.2) */
		_exit(0);
	}
	/*
	 * A session that succeeded has handed its domain over (past GO it
	 * cannot be cancelled): it runs here, unless quit asked to destroy
	 * it (dom_serve).
	 */
	if (!d.recv_done || d.recv_rc != 0 || d.b == NULL) {
		dom_say(&d, "failed %s", d.recv_done ? d.recv_err :
		    "event loop ended early");
		dom_exit(&d, 1);
	}
	/* It runs without its workload if that cannot start: say so. */
	if (d.dirty != 0 && sim_start_workload(d.b, d.dirty) != 0)
		dom_say(&d, "log %s", backend_errmsg(d.b));
	dom_serve(&d);
}
