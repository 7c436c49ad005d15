/*
 * domproc.c -- a domain process of xmigd: one hosted sim domain, in a
 * process of its own (as a QEMU process per VM), and its outgoing
 * migration.  It talks to the daemon over a socket pair in the line
 * protocol of proto/SPEC.md ("xmigd internal protocol").
 *
 * A domain comes from `create` (a sim source, workload running) or from an
 * incoming migration (a receiver session with a small toolstack).  The sim
 * backend's target handle ends with the session, so a received domain is
 * re-hosted: its memory is copied out when the stream completes (the
 * toolstack's finish), and once it runs, a sim source with the spec the
 * sender gave (XMIG_DOMAIN_CONFIG) takes that memory, paused, and runs on.
 * Its vcpu state records are the spec's again (the sim's are synthetic).
 */
#include "config.h"

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
	int			 ctl;
	struct bufferevent	*cbev;
	char			 name[XMIGD_NAME_MAX + 1];
	char			 spec[512];	/* sim spec, after "sim:" */
	char			*config;	/* XMIG_DOMAIN_CONFIG text */
	struct backend		*b;
	int			 paused;	/* left paused (unconfirmed) */
	struct xmig_send	*send;
	struct send_opts	 so;
	struct xmig_cbs		 cbs;		/* outlives the session */
	int			 quit;
	/* Receiving: */
	struct xmig_recv	*rv;
	int			 recv_done, recv_rc, recv_query;
	char			 recv_err[512];
	uint8_t			*mem;		/* the restored pages */
	uint64_t		 nr_pages;
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

/* One line to the daemon; newlines in the text become spaces. */
static void
dom_say(struct dom *d, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t i, n;

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

static void __attribute__((noreturn))
dom_exit(struct dom *d, int rc)
{
	if (d->send != NULL)
		xmig_send_free(d->send);
	if (d->b != NULL) {
		d->b->ops->destroy(d->b);
		d->b->ops->close(d->b);
	}
	_exit(rc);
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
	if ((d->send = xmig_send_new(d->base, d->b, uri, &d->so, cbs)) ==
	    NULL) {
		dom_say(d, "result failed 0 -1 -1 out of memory");
		return;
	}
	xmig_send_start(d->send);
}

/* ---- the daemon's commands --------------------------------------------- */

static void
dom_command(struct dom *d, char *line)
{
	char *uri, *bw, *save = NULL;
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
	} else if (strcmp(cmd, "cancel") == 0) {
		if (d->send != NULL)
			xmig_send_cancel(d->send);
	} else if (strcmp(cmd, "quit") == 0) {
		d->quit = 1;
		if (d->rv != NULL && !d->recv_done)
			xmig_recv_cancel(d->rv);	/* nothing half-received */
		else if (d->send != NULL)
			xmig_send_cancel(d->send);	/* the result ends us */
		else
			event_base_loopbreak(d->base);
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
	}
}

/* The daemon went away: as quit. */
static void
dom_ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct dom *d = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	d->quit = 1;
	if (d->rv != NULL && !d->recv_done)
		xmig_recv_cancel(d->rv);
	else if (d->send != NULL)
		xmig_send_cancel(d->send);
	else
		event_base_loopbreak(d->base);
}

/* Commands from the daemon from now on. */
static int
dom_ctl_start(struct dom *d)
{
	if (d->cbev != NULL)
		return 0;
	if ((d->cbev = bufferevent_socket_new(d->base, d->ctl, 0)) == NULL)
		return -ENOMEM;
	bufferevent_setcb(d->cbev, dom_ctl_read, NULL, dom_ctl_event, d);
	bufferevent_enable(d->cbev, EV_READ);
	return 0;
}

static int
dom_setup(struct dom *d, int ctl)
{
	memset(d, 0, sizeof(*d));
	d->ctl = ctl;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* The daemon stops us with "quit"; a signal to the group is its. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if ((d->base = event_base_new()) == NULL)
		return -ENOMEM;
	return 0;
}

/* Host the running domain d->b until quit or a completed migration. */
static void __attribute__((noreturn))
dom_serve(struct dom *d)
{
	struct domain_info info;

	if (d->b->ops->describe(d->b, &info) != 0)
		memset(&info, 0, sizeof(info));
	if (dom_config_make(d) != 0) {
		dom_say(d, "failed out of memory");
		dom_exit(d, 1);
	}
	if (dom_ctl_start(d) != 0) {
		dom_say(d, "failed out of memory");
		dom_exit(d, 1);
	}
	if (d->quit)	/* quit during the receive: nothing more to do */
		dom_exit(d, 0);
	dom_say(d, "running %s %llu %s", d->name, (unsigned long long)
	    (info.nr_pages << info.page_shift), d->spec[0] ? d->spec : "-");
	while (!d->quit && event_base_dispatch(d->base) == 0)
		;
	dom_exit(d, 0);
}

void
domproc_create(int ctl, const char *name, const char *spec)
{
	const struct backend_ops *ops = backend_find("sim");
	struct dom d;
	int rc;

	if (dom_setup(&d, ctl) != 0 || ops == NULL) {
		dom_say(&d, "failed out of memory");
		_exit(1);
	}
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.spec, sizeof(d.spec), "%s", spec);
	if ((rc = ops->open_source(spec, &d.b)) != 0) {
		dom_say(&d, "failed sim:%s: %s", spec, backend_errmsg(d.b));
		if (d.b != NULL)
			ops->close(d.b);
		d.b = NULL;
		_exit(1);
	}
	dom_serve(&d);
}

/* ---- an incoming migration --------------------------------------------- */

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

static int
dom_ts_create(void *arg, const struct domain_info *info, char *spec,
    size_t speclen, char *msg, size_t msglen)
{
	(void)arg;
	(void)info;
	(void)msg;
	(void)msglen;
	snprintf(spec, speclen, "%s", "");	/* an empty sim target */
	return 0;
}

/* The stream is complete: copy the pages out (the handle ends with it). */
static int
dom_ts_finish(void *arg, struct backend *b, char *msg, size_t msglen)
{
	struct dom *d = arg;
	struct domain_info info;
	uint64_t pfn;
	size_t psz;
	void *page, *cookie;

	if (b->ops->describe(b, &info) != 0) {
		snprintf(msg, msglen, "%s", backend_errmsg(b));
		return -EIO;
	}
	psz = (size_t)1 << info.page_shift;
	free(d->mem);
	if ((d->mem = calloc(info.nr_pages ? info.nr_pages : 1, psz)) ==
	    NULL) {
		snprintf(msg, msglen, "out of memory for %llu pages",
		    (unsigned long long)info.nr_pages);
		return -ENOMEM;
	}
	d->nr_pages = info.nr_pages;
	for (pfn = 0; pfn < info.nr_pages; pfn++) {
		/* A pfn never populated stays zero. */
		if (b->ops->map(b, &pfn, 1, 0, &page, &cookie) != 0)
			continue;
		memcpy(d->mem + pfn * psz, page, psz);
		b->ops->unmap(b, cookie, 1);
	}
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
	struct dom *d = arg;

	free(d->mem);
	d->mem = NULL;
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

/* The received pages into a new sim source from the sender's spec. */
static int
dom_rehost(struct dom *d, char *err, size_t errlen)
{
	const struct backend_ops *ops = backend_find("sim");
	struct domain_info info;
	uint64_t pfn;
	void *page, *cookie;
	size_t psz;
	int rc;

	if ((rc = ops->open_source(d->spec, &d->b)) != 0) {
		snprintf(err, errlen, "sim:%s: %s", d->spec,
		    backend_errmsg(d->b));
		if (d->b != NULL)
			ops->close(d->b);
		d->b = NULL;
		return rc;
	}
	if ((rc = d->b->ops->describe(d->b, &info)) != 0 ||
	    info.nr_pages != d->nr_pages) {
		snprintf(err, errlen, "sim:%s has %llu pages, the stream %llu",
		    d->spec, (unsigned long long)info.nr_pages,
		    (unsigned long long)d->nr_pages);
		return -EINVAL;
	}
	psz = (size_t)1 << info.page_shift;
	if ((rc = d->b->ops->pause(d->b)) != 0) {
		snprintf(err, errlen, "%s", backend_errmsg(d->b));
		return rc;
	}
	/*
	 * Paused, nothing else writes: the sim's pages are the handle's
	 * own memory (a source maps them for reading; this is the one
	 * writer, as a restore is).
	 */
	for (pfn = 0; pfn < info.nr_pages; pfn++) {
		if ((rc = d->b->ops->map(d->b, &pfn, 1, 0, &page,
		    &cookie)) != 0) {
			snprintf(err, errlen, "%s", backend_errmsg(d->b));
			return rc;
		}
		memcpy(page, d->mem + pfn * psz, psz);
		d->b->ops->unmap(d->b, cookie, 1);
	}
	free(d->mem);
	d->mem = NULL;
	if ((rc = d->b->ops->resume(d->b)) != 0) {
		snprintf(err, errlen, "%s", backend_errmsg(d->b));
		return rc;
	}
	return 0;
}

void
domproc_receive(int ctl, int fd, void *tls_ctx, const struct recv_opts *o,
    const char *busy)
{
	struct recv_toolstack ts;
	struct recv_opts ro = *o;
	struct xmig_cbs cbs;
	struct dom d;
	char err[600];

	if (dom_setup(&d, ctl) != 0) {
		dom_say(&d, "failed out of memory");
		_exit(1);
	}
	memset(&ts, 0, sizeof(ts));
	ts.arg = &d;
	ts.config = dom_ts_config;
	ts.create = dom_ts_create;
	ts.finish = dom_ts_finish;
	ts.start = dom_ts_start;
	ts.abort = dom_ts_abort;
	ts.admit = dom_ts_admit;
	ro.toolstack = &ts;
	ro.backend = "sim";
	memset(&cbs, 0, sizeof(cbs));
	cbs.arg = &d;
	cbs.result = dom_recv_result;
	if ((d.rv = xmig_recv_new(d.base, fd, tls_ctx, &ro, &cbs)) == NULL) {
		dom_say(&d, "failed out of memory");
		_exit(1);
	}
	if (busy != NULL)
		xmig_recv_refuse(d.rv, busy);
	if (dom_ctl_start(&d) != 0) {
		dom_say(&d, "failed out of memory");
		_exit(1);
	}
	xmig_recv_start(d.rv);
	while (!d.recv_done && event_base_dispatch(d.base) == 0)
		;
	xmig_recv_free(d.rv);
	d.rv = NULL;
	if (d.quit) {
		/* xmigd stops: cancelled, or (past GO) ended with it. */
		dom_say(&d, "failed xmigd is stopping");
		_exit(1);
	}
	if (d.recv_done && d.recv_query) {
		dom_say(&d, "asked");	/* a query, answered (SPEC 13.2) */
		_exit(0);
	}
	if (!d.recv_done || d.recv_rc != 0) {
		dom_say(&d, "failed %s", d.recv_done ? d.recv_err :
		    "event loop ended early");
		_exit(1);
	}
	if (dom_rehost(&d, err, sizeof(err)) != 0) {
		dom_say(&d, "failed re-hosting the received domain: %s", err);
		dom_exit(&d, 1);
	}
	dom_serve(&d);
}
