/*
 * xenhost.c -- xmigd --backend xen: the host's Xen guests, listed through
 * libxl, and a process per migration (a Xen process) that moves one, out
 * or in, with the machinery of migrate-send xen:NAME and migrate-receive
 * --backend xen (xen-toolstack.c and the Xen backend).  A Xen guest lives
 * in the hypervisor, not in a process of xmigd's: the Xen process exists
 * while its migration runs and speaks SPEC 18.1 to xmigd (18.6), over its
 * socket pair and its registration socket like a domain process, so that a
 * migration survives an xmigd restart and is cancelled by the next xmigd
 * (18.4).  A crash of a Xen process cannot take xmigd down.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
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

#ifdef HAVE_XEN

#include <libxl.h>
#include <libxl_utils.h>

#include "xen-toolstack.h"

#define XH_INCOMING	"--incoming"
#define XH_AWAY		"--migratedaway"

/* ---- libxl in xmigd: the list, and what a previous xmigd left -------- */

static void
xh_log(struct xentoollog_logger *lg, xentoollog_level level, int errnoval,
    const char *context, const char *fmt, va_list al)
{
	char buf[400];

	(void)lg;
	(void)errnoval;
	if (level < XTL_ERROR)
		return;
	vsnprintf(buf, sizeof(buf), fmt, al);
	log_warn("%s: %s", context ? context : "libxl", buf);
}

static void
xh_log_destroy(struct xentoollog_logger *lg)
{
	(void)lg;
}

static struct xentoollog_logger xh_logger = {
	.vmessage = xh_log, .progress = NULL, .destroy = xh_log_destroy
};

static libxl_ctx *
xh_ctx(void)
{
	libxl_ctx *ctx;

	if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, &xh_logger) != 0)
		return NULL;
	return ctx;
}

static int
xh_ends(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/*
 * PV, PVH or HVM.  Xen's own flags (libxl_dominfo) say HVM for a PVH
 * guest too (an HVM container without a device model): libxl's stored
 * configuration tells the two apart.
 */
static const char *
xh_type(libxl_ctx *ctx, const libxl_dominfo *di)
{
	libxl_domain_type t = di->domain_type;
	libxl_domain_config dc;

	if (t == LIBXL_DOMAIN_TYPE_HVM) {
		libxl_domain_config_init(&dc);
		if (libxl_retrieve_domain_configuration(ctx, di->domid, &dc,
		    NULL) == 0)
			t = dc.c_info.type;
		libxl_domain_config_dispose(&dc);
	}
	switch (t) {
	case LIBXL_DOMAIN_TYPE_PVH:	return "PVH";
	case LIBXL_DOMAIN_TYPE_HVM:	return "HVM";
	case LIBXL_DOMAIN_TYPE_PV:	return "PV";
	default:			return "unknown";
	}
}

int
xenhost_check(char *err, size_t len)
{
	char helper[4096];
	libxl_ctx *ctx;
	int rc;

	if ((rc = xts_sibling("xmig-save-helper", helper,
	    sizeof(helper))) != 0) {
		snprintf(err, len, "--backend xen needs xmig-save-helper "
		    "beside xmigd: %s", strerror(-rc));
		return -1;
	}
	if ((ctx = xh_ctx()) == NULL) {
		snprintf(err, len, "--backend xen: cannot open libxl (is this "
		    "dom0 with xenstored running, and xmigd root?)");
		return -1;
	}
	libxl_ctx_free(ctx);
	return 0;
}

json_object *
xenhost_domains(char *err, size_t len)
{
	json_object *arr, *o;
	libxl_dominfo *info;
	struct domain *d;
	libxl_ctx *ctx;
	const char *state;
	char *name;
	int i, n;

	if ((ctx = xh_ctx()) == NULL) {
		snprintf(err, len, "cannot open libxl");
		return NULL;
	}
	if ((info = libxl_list_domain(ctx, &n)) == NULL) {
		snprintf(err, len, "libxl cannot list the domains");
		libxl_ctx_free(ctx);
		return NULL;
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		if (info[i].domid == 0)
			continue;
		name = libxl_domid_to_name(ctx, info[i].domid);
		if (name == NULL)
			continue;
		d = domain_by_name(name);
		if (d != NULL && d->mig != NULL)
			state = "migrating";
		else if (xh_ends(name, XH_INCOMING))
			state = "incoming";
		else if (xh_ends(name, XH_AWAY))
			state = "migrated-away";
		else if (info[i].dying)
			state = "dying";
		else if (info[i].shutdown && info[i].shutdown_reason ==
		    LIBXL_SHUTDOWN_REASON_SUSPEND)
			state = "suspended";
		else if (info[i].shutdown)
			state = "shutdown";
		else if (info[i].paused)
			state = "paused";
		else
			state = "running";
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "state",
		    json_object_new_string(state));
		json_object_object_add(o, "backend",
		    json_object_new_string("xen"));
		json_object_object_add(o, "domid",
		    json_object_new_int((int)info[i].domid));
		json_object_object_add(o, "type", json_object_new_string(
		    xh_type(ctx, &info[i])));
		json_object_object_add(o, "memory", json_object_new_int64(
		    (int64_t)info[i].current_memkb * 1024));
		json_object_object_add(o, "vcpus",
		    json_object_new_int((int)info[i].vcpu_online));
		if (d != NULL && d->mig != NULL)
			json_object_object_add(o, "migration",
			    json_object_new_int64(d->mig->id));
		json_object_array_add(arr, o);
		free(name);
	}
	libxl_dominfo_list_free(info, n);
	libxl_ctx_free(ctx);
	/* Incoming migrations before libxl has a domain for them. */
	for (d = xd.domains; d != NULL; d = d->next)
		if (strcmp(d->state, "incoming") == 0)
			json_object_array_add(arr, domain_json(d));
	return arr;
}

/*
 * resume NAME: a guest left suspended by an unconfirmed handover (its
 * migration process ended; it kept its name) runs again, as a cancelled
 * migration's source does (libxl_domain_resume, suspend cancelled).  0,
 * or an RPC error code with err.
 */
int
xenhost_resume(const char *name, char *err, size_t len)
{
	libxl_dominfo di;
	libxl_ctx *ctx;
	uint32_t domid;
	int rc = RPC_NOT_FOUND;

	if (domain_by_name(name) != NULL) {
		snprintf(err, len, "a migration of %s runs", name);
		return RPC_BUSY;
	}
	if ((ctx = xh_ctx()) == NULL) {
		snprintf(err, len, "cannot open libxl");
		return RPC_FAILED;
	}
	libxl_dominfo_init(&di);
	if (libxl_name_to_domid(ctx, name, &domid) != 0 || domid == 0 ||
	    libxl_domain_info(ctx, &di, domid) != 0)
		snprintf(err, len, "no domain %s here", name);
	else if (!di.shutdown || di.shutdown_reason !=
	    LIBXL_SHUTDOWN_REASON_SUSPEND) {
		snprintf(err, len, "domain %s is not suspended", name);
		rc = RPC_BUSY;
	} else if (libxl_domain_resume(ctx, domid, 1, NULL) != 0) {
		snprintf(err, len, "libxl cannot resume domain %s (%u)", name,
		    domid);
		rc = RPC_FAILED;
	} else {
		log_info("domain %s (%u) resumed (xmigctl resume)", name,
		    domid);
		rc = 0;
	}
	libxl_dominfo_dispose(&di);
	libxl_ctx_free(ctx);
	return rc;
}

/*
 * The guest NAME for migrate: a Xen process for it, in state running
 * (it waits for the migrate line).  NULL with err.
 */
struct domain *
xenhost_source(const char *name, char *err, size_t len)
{
	struct domain *d;
	libxl_ctx *ctx;
	uint32_t domid;
	int found;

	if ((d = domain_by_name(name)) != NULL)
		return d;	/* a migration of it runs: busy */
	if (xh_ends(name, XH_INCOMING) || xh_ends(name, XH_AWAY)) {
		snprintf(err, len, "%s is one end of a migration in progress",
		    name);
		return NULL;
	}
	if ((ctx = xh_ctx()) == NULL) {
		snprintf(err, len, "cannot open libxl");
		return NULL;
	}
	found = libxl_name_to_domid(ctx, name, &domid) == 0;
	libxl_ctx_free(ctx);
	if (!found) {
		snprintf(err, len, "no domain %s here", name);
		return NULL;
	}
	if (domid == 0) {
		snprintf(err, len, "domain 0 is the control domain: it cannot "
		    "be migrated");
		return NULL;
	}
	if ((d = domain_spawn(name, name, -1, NULL, NULL)) == NULL) {
		snprintf(err, len, "fork: %s", strerror(errno));
		return NULL;
	}
	snprintf(d->state, sizeof(d->state), "running");
	return d;
}

/*
 * At start, after the Xen processes that live on were re-adopted: the
 * ends of migrations whose process died (SPEC 18.6).  NAME--incoming
 * with no Xen process of ours receiving it is destroyed; a source left
 * NAME--migratedaway gets its name back and is resumed when no NAME
 * runs on this host, else (the target here took it) destroyed.  Only
 * the names recorded in STATE/xen are touched: another xmigd on the
 * same host (another state directory) keeps its own.
 */
void
xenhost_recover(void)
{
	char dir[512], path[1024], nm[XMIGD_NAME_MAX + 32];
	struct dirent *de;
	struct domain *d;
	libxl_ctx *ctx = NULL;
	uint32_t domid, other;
	DIR *dp;
	FILE *f;
	long pid;
	int in;

	snprintf(dir, sizeof(dir), "%s/xen", xd.state_dir);
	if ((dp = opendir(dir)) == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fscanf(f, "%ld %2s %64s", &pid, nm + XMIGD_NAME_MAX + 20,
		    nm) != 3) {
			fclose(f);
			unlink(path);
			continue;
		}
		fclose(f);
		in = strcmp(nm + XMIGD_NAME_MAX + 20, "in") == 0;
		for (d = xd.domains; d != NULL; d = d->next)
			if ((long)d->pid == pid)
				break;
		if (d != NULL)
			continue;	/* its process lives: re-adopted */
		unlink(path);
		if (!xmigd_name_ok(nm))
			continue;
		if (ctx == NULL && (ctx = xh_ctx()) == NULL) {
			log_err("recovery: cannot open libxl");
			break;
		}
		snprintf(path, sizeof(path), "%s%s", nm, in ? XH_INCOMING :
		    XH_AWAY);
		if (libxl_name_to_domid(ctx, path, &domid) != 0)
			continue;
		if (in) {
			log_warn("recovery: %s (domain %u) was half received "
			    "by a Xen process that died: destroyed", path,
			    domid);
			libxl_domain_destroy(ctx, domid, NULL);
		} else if (libxl_name_to_domid(ctx, nm, &other) == 0) {
			log_warn("recovery: %s (domain %u) was handed over "
			    "and %s runs here as domain %u: the source is "
			    "destroyed", path, domid, nm, other);
			libxl_domain_destroy(ctx, domid, NULL);
		} else if (libxl_domain_rename(ctx, domid, path, nm) != 0 ||
		    libxl_domain_resume(ctx, domid, 1, NULL) != 0) {
			log_err("recovery: %s (domain %u): cannot give it its "
			    "name back and resume it", path, domid);
		} else
			log_warn("recovery: %s (domain %u), left by a Xen "
			    "process that died mid-migration, is %s again "
			    "and resumed", path, domid, nm);
	}
	closedir(dp);
	if (ctx != NULL)
		libxl_ctx_free(ctx);
}

/* ---- a Xen process ------------------------------------------------------ */

struct xp {
	struct event_base	*base;
	int			 ctl;
	struct bufferevent	*cbev;
	int			 lfd;
	const char		*lpath;
	struct event		*lev, *tev;
	int			 tfd;
	char			 name[XMIGD_NAME_MAX + 1];
	char			 uri[512];
	char			 mark[600];	/* STATE/xen/XPID-N */
	int			 quit;
	/* out */
	struct xts_source	*xs;
	struct backend		*b;
	struct xmig_send	*send;
	struct send_opts	 so;
	struct xmig_cbs		 cbs;
	int			 done;
	/* in */
	struct xmig_recv	*rv;
	struct xts_target	*xt;
	struct recv_toolstack	 ts, inner;
	int			 recv_done, recv_rc, recv_query;
	char			 recv_err[512];
	int			 receiving;	/* the synchronous path runs */
};

static struct xport_tls xp_tls;

void
xenproc_set_tls(const struct xport_tls *t)
{
	memset(&xp_tls, 0, sizeof(xp_tls));
	xp_tls.cert = t->cert;
	xp_tls.key = t->key;
	xp_tls.ca = t->ca;
}

/* xp_say's lines whole, from either thread of a receiving process. */
static pthread_mutex_t xp_say_lock = PTHREAD_MUTEX_INITIALIZER;

static void
xp_say(struct xp *p, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t i, n;

	pthread_mutex_lock(&xp_say_lock);
	if (p->ctl < 0) {
		pthread_mutex_unlock(&xp_say_lock);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	for (i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)write_all(p->ctl, line, n);
	pthread_mutex_unlock(&xp_say_lock);
}

/* The guest this process moves, for xenhost_recover (SPEC 18.6). */
static void
xp_mark(struct xp *p, const char *role)
{
	char dir[512];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/xen", xd.state_dir);
	(void)mkdir(dir, 0700);
	snprintf(p->mark, sizeof(p->mark), "%s/%s", dir,
	    strrchr(p->lpath, '/') + 1);
	if ((f = fopen(p->mark, "w")) == NULL) {
		p->mark[0] = '\0';
		return;
	}
	fprintf(f, "%ld %s %s\n", (long)getpid(), role, p->name);
	fclose(f);
}

static void __attribute__((noreturn))
xp_leave(struct xp *p, int rc)
{
	if (p->mark[0] != '\0')
		unlink(p->mark);
	if (p->lpath != NULL)
		unlink(p->lpath);
	_exit(rc);
}

static void
xp_say_state(struct xp *p)
{
	int in = p->rv != NULL || p->receiving;
	const char *state = in ? "incoming" : p->send != NULL ?
	    "migrating" : "running";

	xp_say(p, "state %ld %s %s 0 - %s %s", (long)getpid(), state,
	    p->name[0] && !in ? p->name : "-", in ? "received" : "created",
	    p->send != NULL ? p->uri : "-");
}

/* Cancel what runs; non-zero if there was something. */
static int
xp_cancel(struct xp *p)
{
	if (p->rv != NULL && !p->recv_done) {
		xmig_recv_cancel(p->rv);
		return 1;
	}
	if (p->send != NULL && !p->done) {
		xmig_send_cancel(p->send);
		return 1;
	}
	return 0;
}

static void
xp_quit(struct xp *p)
{
	p->quit = 1;
	if (!xp_cancel(p))
		event_base_loopbreak(p->base);
}

static void
xp_send_progress(void *arg, const struct progress_info *pi)
{
	struct xp *p = arg;

	xp_say(p, "progress %s %u %llu %llu", pi->phase, pi->pass,
	    (unsigned long long)pi->bytes, (unsigned long long)pi->remaining);
}

/*
 * The migration ended: as migrate-send xen:NAME, the source is destroyed
 * (handed over), left suspended (unconfirmed) or resumed, and only then
 * the result goes to xmigd (a cancelled source runs again by then).
 */
static void
xp_send_result(void *arg, int rc, const struct xmig_report *r)
{
	struct xp *p = arg;
	const char *status = rc == 0 ? "completed" : rc == -EINPROGRESS ?
	    "unconfirmed" : rc == -ECANCELED ? "cancelled" : "failed";
	char err[512];

	p->done = 1;
	if (rc == 0)
		p->b->ops->destroy(p->b);
	p->b->ops->close(p->b);
	p->b = NULL;
	err[0] = '\0';
	if (xts_source_finish(p->xs, rc == 0 ? 0 : rc == -EINPROGRESS ? 1 :
	    -1, err, sizeof(err)) != 0) {
		if (rc == 0)
			status = "failed";
		xp_say(p, "log %s", err);
	}
	if (err[0] == '\0' && rc == -EINPROGRESS)
		snprintf(err, sizeof(err), "%s", r->error[0] ? r->error :
		    "delivered, but nobody confirmed the handover: the guest "
		    "stays suspended here (xmigctl resume once the target is "
		    "known not to run it)");
	xp_say(p, "result %s %llu %.3f %d %s", status,
	    (unsigned long long)r->bytes, r->have_downtime ? r->downtime_ms :
	    -1.0, r->verified, strcmp(status, "completed") == 0 ? "-" :
	    err[0] ? err : r->error[0] ? r->error : "failed");
	event_base_loopbreak(p->base);
}

static void
xp_migrate(struct xp *p, const char *uri, uint64_t bw)
{
	const struct backend_ops *ops = backend_find("xen");
	char spec[64], err[512];
	int rc;

	if (p->send != NULL || p->done) {
		xp_say(p, "result failed 0 -1 -1 a migration is already "
		    "running");
		return;
	}
	snprintf(p->uri, sizeof(p->uri), "%s", uri);
	if (ops == NULL || xts_source_open(p->name, 0, &p->xs, err,
	    sizeof(err)) != 0) {
		xp_say(p, "result failed 0 -1 -1 %s", ops == NULL ? "no Xen "
		    "backend" : err);
		xp_leave(p, 1);
	}
	xp_mark(p, "out");
	snprintf(spec, sizeof(spec), "domid=%u,toolstack=1",
	    xts_source_domid(p->xs));
	if ((rc = ops->open_source(spec, &p->b)) != 0) {
		xp_say(p, "result failed 0 -1 -1 %s", backend_errmsg(p->b));
		xts_source_free(p->xs);
		xp_leave(p, 1);
	}
	xen_set_suspend_hook(p->b, xts_source_suspend, p->xs);
	/* As migrate-send xen:NAME. */
	send_opts_default(&p->so);
	p->so.bandwidth = bw;
	p->so.progress = PROGRESS_NONE;
	p->so.tls = xp_tls;
	p->so.domain_config = xts_source_config(p->xs,
	    &p->so.domain_config_len);
	p->so.max_iterations = 5;
	p->so.no_digest = 1;
	if (xd.cc.timeout_s > 0)
		p->so.timeout_s = xd.cc.timeout_s;
	memset(&p->cbs, 0, sizeof(p->cbs));
	p->cbs.arg = p;
	p->cbs.progress = xp_send_progress;
	p->cbs.result = xp_send_result;
	if ((p->send = xmig_send_new(p->base, p->b, uri, &p->so,
	    &p->cbs)) == NULL) {
		xp_say(p, "result failed 0 -1 -1 out of memory");
		p->b->ops->close(p->b);
		xts_source_free(p->xs);
		xp_leave(p, 1);
	}
	xmig_send_start(p->send);
}

static void
xp_command(struct xp *p, char *line)
{
	char *save = NULL, *cmd = strtok_r(line, " ", &save), *uri, *bw;

	if (cmd == NULL)
		return;
	if (strcmp(cmd, "migrate") == 0 && p->rv == NULL) {
		uri = strtok_r(NULL, " ", &save);
		bw = strtok_r(NULL, " ", &save);
		if (uri == NULL)
			xp_say(p, "result failed 0 -1 -1 no URI");
		else
			xp_migrate(p, uri, bw ? strtoull(bw, NULL, 10) : 0);
	} else if (strcmp(cmd, "cancel") == 0 ||
	    strcmp(cmd, "detach") == 0) {
		/* Nothing under way (no migrate yet): nothing to keep. */
		if (!xp_cancel(p) && p->send == NULL && p->rv == NULL)
			xp_quit(p);
	} else if (strcmp(cmd, "quit") == 0)
		xp_quit(p);
	else if (strcmp(cmd, "resume") == 0)
		xp_say(p, "log resume: a Xen guest is resumed with xl "
		    "unpause");
}

static void xp_ctl_event(struct bufferevent *, short, void *);

static void
xp_ctl_read(struct bufferevent *bev, void *arg)
{
	struct xp *p = arg;
	char *line;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL,
	    EVBUFFER_EOL_LF)) != NULL) {
		xp_command(p, line);
		free(line);
		if (p->cbev != bev)
			return;
	}
}

static void
xp_ctl_drop(struct xp *p)
{
	if (p->cbev != NULL)
		bufferevent_free(p->cbev);
	else if (p->ctl >= 0)
		close(p->ctl);
	p->cbev = NULL;
	p->ctl = -1;
}

/* xmigd went away: a migration goes on alone; an idle process ends. */
static void
xp_ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct xp *p = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		xp_ctl_drop(p);
		if (p->send == NULL && p->rv == NULL)
			xp_quit(p);
	}
}

static int
xp_ctl_start(struct xp *p, int fd)
{
	xp_ctl_drop(p);
	evutil_make_socket_nonblocking(fd);
	if ((p->cbev = bufferevent_socket_new(p->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	p->ctl = fd;
	bufferevent_setcb(p->cbev, xp_ctl_read, NULL, xp_ctl_event, p);
	bufferevent_enable(p->cbev, EV_READ);
	return 0;
}

static void
xp_on_register(evutil_socket_t lfd, short what, void *arg)
{
	struct xp *p = arg;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	(void)what;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		close(fd);
		return;
	}
	if (xp_ctl_start(p, fd) == 0)
		xp_say_state(p);
}

/*
 * SIGTERM through a self-pipe (libevent's signal handling belongs to the
 * daemon's loop this process was forked from).  Not a signalfd, which
 * needs SIGTERM blocked: libxl's children (xmig-save-helper) would inherit
 * the blocked mask.
 */
static int xp_term_pipe[2] = { -1, -1 };

static void
xp_term_handler(int sig)
{
	int e = errno;

	(void)sig;
	(void)!write(xp_term_pipe[1], "t", 1);
	errno = e;
}

static void
xp_on_term(evutil_socket_t fd, short what, void *arg)
{
	char c;

	(void)what;
	if (read(fd, &c, 1) == 1)
		xp_quit(arg);
}

static int
xp_setup(struct xp *p, int ctl, int lfd, const char *lpath)
{
	struct sigaction sa;
	sigset_t set;

	memset(p, 0, sizeof(*p));
	p->ctl = -1;
	p->lfd = lfd;
	p->lpath = lpath;
	(void)setsid();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if (pipe2(xp_term_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = xp_term_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	p->tfd = xp_term_pipe[0];
	if ((p->base = event_base_new()) == NULL ||
	    xp_ctl_start(p, ctl) != 0)
		return -ENOMEM;
	evutil_make_socket_nonblocking(lfd);
	p->lev = event_new(p->base, lfd, EV_READ | EV_PERSIST,
	    xp_on_register, p);
	p->tev = event_new(p->base, p->tfd, EV_READ | EV_PERSIST, xp_on_term,
	    p);
	if (p->lev == NULL || event_add(p->lev, NULL) != 0 ||
	    p->tev == NULL || event_add(p->tev, NULL) != 0)
		return -ENOMEM;
	return 0;
}

void
xenproc_source(int ctl, int lfd, const char *lpath, const char *name)
{
	struct xp p;

	if (xp_setup(&p, ctl, lfd, lpath) != 0) {
		xp_say(&p, "result failed 0 -1 -1 out of memory");
		xp_leave(&p, 1);
	}
	snprintf(p.name, sizeof(p.name), "%s", name);
	while (!p.quit && !p.done && event_base_dispatch(p.base) == 0)
		;
	xp_leave(&p, 0);
}

/* ---- an incoming Xen migration ------------------------------------------ */

/* xts_config, and the guest's name recorded for xenhost_recover. */
static struct xp *xp_self;	/* the one migration of this process */

static int
xp_ts_config(void *arg, uint32_t kind, const char *text, size_t len,
    char *msg, size_t msglen)
{
	struct xp *p = xp_self;
	json_tokener *tok;
	json_object *o = NULL, *ci, *n;
	int rc;

	rc = p->inner.config(arg, kind, text, len, msg, msglen);
	if (rc != 0)
		return rc;
	if ((tok = json_tokener_new()) != NULL)
		o = json_tokener_parse_ex(tok, text, (int)len);
	if (o != NULL && json_object_object_get_ex(o, "c_info", &ci) &&
	    json_object_object_get_ex(ci, "name", &n) &&
	    json_object_is_type(n, json_type_string) &&
	    xmigd_name_ok(json_object_get_string(n)))
		snprintf(p->name, sizeof(p->name), "%s",
		    json_object_get_string(n));
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	if (p->name[0] == '\0') {
		snprintf(msg, msglen, "xmigd hosts Xen guests named 1-64 of "
		    "[A-Za-z0-9._-]");
		return -EINVAL;
	}
	xp_mark(p, "in");
	return 0;
}

/* The host memory budget: the daemon decides, as for a sim domain. */
static int
xp_ts_admit(void *arg, uint64_t bytes, int query, char *msg, size_t msglen)
{
	struct xp *p = xp_self;

	(void)arg;
	return domq_admit(p->ctl, p->cbev, bytes, query, msg, msglen);
}

static void
xp_recv_result(void *arg, int rc, const struct xmig_report *r)
{
	struct xp *p = arg;

	p->recv_done = 1;
	p->recv_rc = rc;
	p->recv_query = r->query;
	snprintf(p->recv_err, sizeof(p->recv_err), "%s", r->error);
	event_base_loopbreak(p->base);
}

/*
 * The synchronous receive (xmig_recv_fd), as migrate-receive --backend xen
 * reads a plain tcp: socket: into one flat buffer, several times faster
 * in the Xen lab than the bufferevent path (serve.c says why).  It blocks,
 * so a thread of its own serves xmigd meanwhile: the registration socket
 * (18.4), the lines on the control connection, SIGTERM.  cancel, detach,
 * quit and SIGTERM before GO shut the socket down (the receive fails,
 * the half-built domain is destroyed, the sender resumes its source);
 * after GO the domain is handed over and they wait for the end.  The
 * answers to "admit" go to the receiving thread through a pipe.
 */
struct xr {
	struct xp		*p;
	int			 fd;		/* the migration's socket */
	int			 stop[2];	/* the receive ended */
	int			 admit[2];	/* "admit ..." answers */
	volatile int		 past_go, cancelled;
	char			 buf[1300];
	size_t			 n;
};

static struct xr *xr_self;

static void
xr_cancel(struct xr *x)
{
	if (x->past_go || x->cancelled)
		return;
	x->cancelled = 1;
	(void)shutdown(x->fd, SHUT_RDWR);
}

static void
xr_line(struct xr *x, char *line)
{
	if (strncmp(line, "admit ", 6) == 0) {
		size_t n = strlen(line);

		line[n] = '\n';
		(void)write_all(x->admit[1], line, n + 1);
	} else if (strcmp(line, "cancel") == 0 ||
	    strcmp(line, "detach") == 0 || strcmp(line, "quit") == 0)
		xr_cancel(x);
}

static void *
xr_thread(void *arg)
{
	struct xr *x = arg;
	struct xp *p = x->p;
	struct pollfd pf[4];
	struct ucred cr;
	socklen_t len;
	ssize_t r;
	char c, *nl;
	int nfd, n;

	for (;;) {
		pf[0].fd = x->stop[0];
		pf[1].fd = p->lfd;
		pf[2].fd = xp_term_pipe[0];
		pf[3].fd = p->ctl;
		for (n = 0; n < 4; n++) {
			pf[n].events = POLLIN;
			pf[n].revents = 0;
		}
		if (poll(pf, p->ctl >= 0 ? 4 : 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents)
			break;
		if (pf[2].revents && read(xp_term_pipe[0], &c, 1) == 1)
			xr_cancel(x);
		if (pf[1].revents &&
		    (nfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			len = sizeof(cr);
			if (getsockopt(nfd, SOL_SOCKET, SO_PEERCRED, &cr,
			    &len) != 0 || (cr.uid != 0 && cr.uid != geteuid()))
				close(nfd);
			else {
				/* A new xmigd: it replaces the old one. */
				pthread_mutex_lock(&xp_say_lock);
				if (p->ctl >= 0)
					close(p->ctl);
				p->ctl = nfd;
				pthread_mutex_unlock(&xp_say_lock);
				x->n = 0;
				xp_say_state(p);
				continue;
			}
		}
		if (p->ctl >= 0 && pf[3].revents) {
			r = read(p->ctl, x->buf + x->n, sizeof(x->buf) - 1 -
			    x->n);
			if (r <= 0) {
				if (r < 0 && (errno == EINTR ||
				    errno == EAGAIN))
					continue;
				/* xmigd went away: the receive goes on. */
				pthread_mutex_lock(&xp_say_lock);
				close(p->ctl);
				p->ctl = -1;
				pthread_mutex_unlock(&xp_say_lock);
				continue;
			}
			x->n += (size_t)r;
			x->buf[x->n] = '\0';
			while ((nl = strchr(x->buf, '\n')) != NULL) {
				*nl = '\0';
				xr_line(x, x->buf);
				x->n -= (size_t)(nl + 1 - x->buf);
				memmove(x->buf, nl + 1, x->n + 1);
			}
			if (x->n >= sizeof(x->buf) - 1)
				x->n = 0;	/* not a line of ours */
		}
	}
	return NULL;
}

/* The budget check, asked of xmigd; its answer comes through the pipe. */
static int
xr_admit(void *arg, uint64_t bytes, int query, char *msg, size_t msglen)
{
	struct xr *x = xr_self;
	struct pollfd pf = { .fd = x->admit[0], .events = POLLIN };
	char line[1300];
	size_t n = 0;

	(void)arg;
	if (x->p->ctl < 0) {
		snprintf(msg, msglen, "xmigd is not there to check its memory "
		    "budget");
		return -EAGAIN;
	}
	xp_say(x->p, "admit %llu %d", (unsigned long long)bytes, query);
	for (;;) {
		if (poll(&pf, 1, 10000) <= 0 ||
		    read(x->admit[0], line + n, 1) != 1) {
			snprintf(msg, msglen, "xmigd did not answer the memory "
			    "budget check");
			return -ETIMEDOUT;
		}
		if (line[n] == '\n')
			break;
		if (++n >= sizeof(line) - 1)
			n = 0;
	}
	line[n] = '\0';
	if (strcmp(line, "admit ok") == 0)
		return 0;
	snprintf(msg, msglen, "%s", strncmp(line, "admit no ", 9) == 0 ?
	    line + 9 : line);
	return -ENOSPC;
}

/* GO: from now on the domain runs here, whatever xmigd asks. */
static int
xr_start(void *arg, char *msg, size_t msglen)
{
	xr_self->past_go = 1;
	return xp_self->inner.start(arg, msg, msglen);
}

/* 0 if it ran (p->recv_* filled), -1 if the thread could not start. */
static int
xr_receive(struct xp *p, int fd, struct recv_opts *ro)
{
	struct xmig_report r;
	struct xmig_cbs cbs;
	struct xr x;
	pthread_t thr;
	int nfd, rc;

	memset(&x, 0, sizeof(x));
	x.p = p;
	x.fd = fd;
	if (pipe2(x.stop, O_CLOEXEC) != 0)
		return -1;
	if (pipe2(x.admit, O_CLOEXEC) != 0)
		return -1;
	/* The control connection is the thread's now, a plain fd. */
	if (p->cbev != NULL) {
		if ((nfd = fcntl(p->ctl, F_DUPFD_CLOEXEC, 0)) < 0)
			return -1;
		bufferevent_free(p->cbev);
		p->cbev = NULL;
		p->ctl = nfd;
	}
	xr_self = &x;
	p->ts.admit = xr_admit;
	p->ts.start = xr_start;
	p->receiving = 1;
	if (pthread_create(&thr, NULL, xr_thread, &x) != 0) {
		p->receiving = 0;
		return -1;
	}
	memset(&cbs, 0, sizeof(cbs));
	memset(&r, 0, sizeof(r));
	rc = xmig_recv_fd(fd, fd, 0, ro, &cbs, &r);
	(void)!write(x.stop[1], "s", 1);
	pthread_join(thr, NULL);
	p->receiving = 0;
	p->recv_done = 1;
	p->recv_rc = rc;
	p->recv_query = r.query;
	snprintf(p->recv_err, sizeof(p->recv_err), "%s", x.cancelled &&
	    rc != 0 ? "cancelled" : r.error[0] ? r.error : "failed");
	return 0;
}

void
xenproc_receive(int ctl, int lfd, const char *lpath, int fd, void *tls_ctx,
    const struct recv_opts *o, const char *busy)
{
	struct recv_opts ro = *o;
	struct xmig_cbs cbs;
	char helper[4096], err[512];
	struct xp p;
	uint64_t mem = 0;
	libxl_ctx *ctx;
	libxl_dominfo di;
	uint32_t domid;

	if (xp_setup(&p, ctl, lfd, lpath) != 0) {
		xp_say(&p, "failed out of memory");
		xp_leave(&p, 1);
	}
	if (xts_sibling("xmig-save-helper", helper, sizeof(helper)) != 0 ||
	    xts_target_new(helper, 0, &p.xt, &p.inner, err,
	    sizeof(err)) != 0) {
		xp_say(&p, "failed xmig-save-helper or libxl missing");
		xp_leave(&p, 1);
	}
	/* xts_target's hooks, its config wrapped to learn the name. */
	xp_self = &p;
	p.ts = p.inner;
	p.ts.config = xp_ts_config;
	p.ts.admit = xp_ts_admit;
	ro.toolstack = &p.ts;
	ro.backend = "xen";
	ro.no_digest = 1;
	xen_set_keep_maps(1);
	memset(&cbs, 0, sizeof(cbs));
	cbs.arg = &p;
	cbs.result = xp_recv_result;
	if (tls_ctx == NULL && busy == NULL) {
		/* Plain tcp: the fast path, as migrate-receive's. */
		if (xr_receive(&p, fd, &ro) != 0) {
			xp_say(&p, "failed out of memory");
			xp_leave(&p, 1);
		}
	} else {
		if ((p.rv = xmig_recv_new(p.base, fd, tls_ctx, &ro,
		    &cbs)) == NULL) {
			xp_say(&p, "failed out of memory");
			xp_leave(&p, 1);
		}
		if (busy != NULL)
			xmig_recv_refuse(p.rv, busy);
		xmig_recv_start(p.rv);
		while (!p.recv_done && event_base_dispatch(p.base) == 0)
			;
		xmig_recv_free(p.rv);
		p.rv = NULL;
	}
	xts_target_free(p.xt);
	if (p.recv_done && p.recv_query) {
		xp_say(&p, "asked");	/* a QUERY, answered (SPEC 13.2) */
		xp_leave(&p, 0);
	}
	if (!p.recv_done || p.recv_rc != 0) {
		xp_say(&p, "failed %s", p.recv_done ? p.recv_err :
		    "event loop ended early");
		xp_leave(&p, 1);
	}
	if ((ctx = xh_ctx()) != NULL) {
		libxl_dominfo_init(&di);
		if (libxl_name_to_domid(ctx, p.name, &domid) == 0 &&
		    libxl_domain_info(ctx, &di, domid) == 0)
			mem = di.current_memkb * 1024;
		libxl_dominfo_dispose(&di);
		libxl_ctx_free(ctx);
	}
	xp_say(&p, "running %s %llu -", p.name, (unsigned long long)mem);
	xp_leave(&p, 0);
}

#else /* !HAVE_XEN */

int
xenhost_check(char *err, size_t len)
{
	snprintf(err, len, "--backend xen: this xmigd was built without the "
	    "Xen backend (configure --with-xen)");
	return -1;
}

#endif
