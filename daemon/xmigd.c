/*
 * xmigd -- one migration daemon per host (issue 10, first version): the
 * migration listeners, the JSON-RPC control socket (doc/control-api.md),
 * a table of hosted domains, each in a domain process of its own
 * (domproc.c), and the migrations they run; sd_notify and socket
 * activation for systemd.  One process, one event_base.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
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

#include "daemon.h"
#include "xmig.h"
#include "xmigd.h"

#define XMIGD_CONTROL_DEFAULT	"/run/xmig/xmigd.sock"
#define XMIGD_CONFIG_DEFAULT	"/etc/xmig/xmigd.conf"
#define XMIGD_LINE_MAX		(64u * 1024u)
#define XMIGD_LISTEN_MAX	16
#define XMIGD_REFUSERS_MAX	4u
#define XMIGD_MIGRATIONS_KEPT	256u

/* JSON-RPC error codes (2.0's own, then xmigd's). */
#define RPC_PARSE	(-32700)
#define RPC_INVALID	(-32600)
#define RPC_NO_METHOD	(-32601)
#define RPC_PARAMS	(-32602)
#define RPC_FAILED	(-32000)
#define RPC_DENIED	(-32001)
#define RPC_TOO_LONG	(-32002)
#define RPC_NOT_FOUND	(-32003)
#define RPC_BUSY	(-32004)

struct client;

struct migration {
	struct migration	*next;
	unsigned		 id;
	char			 domain[XMIGD_NAME_MAX + 8];
	char			 uri[512];
	char			 status[16];	/* running, completed, ... */
	char			 phase[32];
	unsigned		 pass;
	uint64_t		 bytes, remaining, bandwidth;
	double			 downtime_ms;	/* -1: not known */
	int			 verified;	/* -1 unknown, 0 differ, 1 equal */
	char			 error[512];
	uint64_t		 started, ended;	/* now_ns */
	struct domain		*dom;		/* while running */
};

struct domain {
	struct domain		*next;
	pid_t			 pid;
	struct bufferevent	*bev;		/* our end of the pair */
	char			 name[XMIGD_NAME_MAX + 8];
	char			 state[16];	/* starting, incoming, running,
						   migrating, paused, refusing */
	char			 origin[16];	/* created, received */
	char			 spec[512];
	uint64_t		 memory;
	char			 failure[512];	/* from "failed" */
	struct migration	*mig;
	struct client		*creator;	/* waits for "running" */
	json_object		*create_id;
};

struct client {
	struct client		*next;
	struct bufferevent	*bev;
	int			 closing;
	struct migration	*watch;
	json_object		*watch_id;
};

struct listener {
	char			 uri[300];
	struct event		*ev;
	int			 fd;
	void			*tls_ctx;
};

static struct {
	struct event_base	*base;
	const char		*control_path;
	int			 control_created;	/* unlink it at the end */
	int			 control_fd;
	struct event		*control_ev;
	struct listener		 lis[XMIGD_LISTEN_MAX];
	unsigned		 nlis;
	const char		*config_path;
	int			 config_given;
	unsigned		 max_sessions;
	uint64_t		 max_memory;
	int			 cli_max_sessions, cli_max_memory;
	struct cmd_common	 cc;
	struct domain		*domains;
	struct migration	*migs;
	unsigned		 next_mig;
	struct client		*clients;
	int			 stopping;
	gid_t			 xmig_gid;
	int			 have_xmig_gid;
	/* Metrics. */
	unsigned long		 by_status[5];	/* completed failed cancelled
						   unconfirmed running(unused) */
	uint64_t		 bytes_total;
	unsigned long		 dt_bucket[7];	/* le 10 50 100 300 1000 5000 +Inf */
	double			 dt_sum;
	unsigned long		 dt_count;
	unsigned long		 incoming_total, incoming_failed;
} X;

static const double dt_bounds[6] = { 10, 50, 100, 300, 1000, 5000 };
static const char *const status_names[4] = {
	"completed", "failed", "cancelled", "unconfirmed"
};

/* ---- systemd ---------------------------------------------------------------- */

/* sd_notify of our own: one datagram to $NOTIFY_SOCKET, if set. */
static void
notify(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	char msg[256];
	socklen_t len;
	va_list ap;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sa.sun_path))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa, len);
	close(fd);
}

static unsigned
active_migrations(unsigned *incoming)
{
	struct domain *d;
	unsigned out = 0, in = 0;

	for (d = X.domains; d != NULL; d = d->next) {
		if (strcmp(d->state, "migrating") == 0)
			out++;
		else if (strcmp(d->state, "incoming") == 0)
			in++;
	}
	if (incoming != NULL)
		*incoming = in;
	return out;
}

static void
notify_status(void)
{
	unsigned in, out = active_migrations(&in);

	notify("STATUS=%u outgoing and %u incoming migrations", out, in);
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}

/* ---- JSON-RPC output ------------------------------------------------------- */

static void client_free(struct client *c);

static void
client_send(struct client *c, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN);

	bufferevent_write(c->bev, s, strlen(s));
	bufferevent_write(c->bev, "\n", 1);
	json_object_put(o);
}

static json_object *
rpc_head(json_object *id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", id != NULL ? json_object_get(id) :
	    NULL);
	return o;
}

static void
rpc_result(struct client *c, json_object *id, json_object *result)
{
	json_object *o = rpc_head(id);

	json_object_object_add(o, "result", result);
	client_send(c, o);
}

static void
rpc_error(struct client *c, json_object *id, int code, const char *fmt, ...)
{
	json_object *o = rpc_head(id), *e = json_object_new_object();
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	client_send(c, o);
}

/*
 * Answer, then close: our side is shut once the answer has left, and what
 * the client still sends is read and dropped until it closes (5 s at most;
 * closing with its request unread would reset the connection, and the
 * client might never read the answer).
 */
static void
client_close_after(struct client *c)
{
	struct timeval tv = { 5, 0 };

	c->closing = 1;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		shutdown(bufferevent_getfd(c->bev), SHUT_WR);
}

/* ---- the tables ------------------------------------------------------------- */

static struct domain *
domain_by_name(const char *name)
{
	struct domain *d;

	for (d = X.domains; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0 &&
		    strcmp(d->state, "incoming") != 0 &&
		    strcmp(d->state, "refusing") != 0)
			return d;
	return NULL;
}

static struct migration *
mig_by_id(unsigned id)
{
	struct migration *m;

	for (m = X.migs; m != NULL; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

static json_object *
mig_json(const struct migration *m)
{
	json_object *o = json_object_new_object();
	uint64_t end = m->ended ? m->ended : now_ns();

	json_object_object_add(o, "id", json_object_new_int64(m->id));
	json_object_object_add(o, "domain", json_object_new_string(m->domain));
	json_object_object_add(o, "uri", json_object_new_string(m->uri));
	json_object_object_add(o, "status", json_object_new_string(m->status));
	json_object_object_add(o, "phase", json_object_new_string(m->phase));
	json_object_object_add(o, "pass", json_object_new_int64(m->pass));
	json_object_object_add(o, "bytes", json_object_new_int64(
	    (int64_t)m->bytes));
	json_object_object_add(o, "remaining_bytes", json_object_new_int64(
	    (int64_t)m->remaining));
	json_object_object_add(o, "elapsed_ms", json_object_new_double(
	    (double)(end - m->started) / 1e6));
	if (m->downtime_ms >= 0)
		json_object_object_add(o, "downtime_ms",
		    json_object_new_double(m->downtime_ms));
	if (m->verified >= 0)
		json_object_object_add(o, "verified",
		    json_object_new_boolean(m->verified));
	if (m->error[0] != '\0')
		json_object_object_add(o, "error",
		    json_object_new_string(m->error));
	return o;
}

/* Progress or the end of m to the clients that watch it. */
static void
mig_notify(struct migration *m, int final)
{
	struct client *c, *next;
	json_object *n;

	for (c = X.clients; c != NULL; c = next) {
		next = c->next;
		if (c->watch != m)
			continue;
		if (final) {
			rpc_result(c, c->watch_id, mig_json(m));
			c->watch = NULL;
			json_object_put(c->watch_id);
			c->watch_id = NULL;
			continue;
		}
		n = json_object_new_object();
		json_object_object_add(n, "jsonrpc",
		    json_object_new_string("2.0"));
		json_object_object_add(n, "method",
		    json_object_new_string("progress"));
		json_object_object_add(n, "params", mig_json(m));
		client_send(c, n);
	}
}

static void
mig_end(struct migration *m, const char *status, uint64_t bytes, double dt,
    const char *error)
{
	unsigned i;

	snprintf(m->status, sizeof(m->status), "%s", status);
	if (bytes > m->bytes)
		m->bytes = bytes;
	m->downtime_ms = dt;
	if (error != NULL && strcmp(error, "-") != 0)
		snprintf(m->error, sizeof(m->error), "%s", error);
	m->ended = now_ns();
	m->dom = NULL;
	for (i = 0; i < 4; i++)
		if (strcmp(status, status_names[i]) == 0)
			X.by_status[i]++;
	X.bytes_total += m->bytes;
	if (dt >= 0) {
		for (i = 0; i < 6 && dt > dt_bounds[i]; i++)
			;
		X.dt_bucket[i]++;
		X.dt_sum += dt;
		X.dt_count++;
	}
	log_info("migration %u of %s to %s: %s%s%s", m->id, m->domain, m->uri,
	    status, m->error[0] ? ": " : "", m->error);
	mig_notify(m, 1);
	notify_status();
}

/* Keep the last XMIGD_MIGRATIONS_KEPT migrations that ended. */
static void
mig_prune(void)
{
	struct migration **pp, *m;
	unsigned n = 0;

	for (pp = &X.migs; (m = *pp) != NULL;) {
		if (m->ended && ++n > XMIGD_MIGRATIONS_KEPT) {
			struct client *c;

			for (c = X.clients; c != NULL; c = c->next)
				if (c->watch == m)
					c->watch = NULL;
			*pp = m->next;
			free(m);
			continue;
		}
		pp = &m->next;
	}
}

static void
domain_send(struct domain *d, const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	bufferevent_write(d->bev, line, strlen(line));
}

static json_object *
domain_json(const struct domain *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "state", json_object_new_string(d->state));
	json_object_object_add(o, "backend", json_object_new_string("sim"));
	json_object_object_add(o, "spec", json_object_new_string(d->spec));
	json_object_object_add(o, "memory", json_object_new_int64(
	    (int64_t)d->memory));
	json_object_object_add(o, "origin", json_object_new_string(d->origin));
	json_object_object_add(o, "pid", json_object_new_int(d->pid));
	if (d->mig != NULL)
		json_object_object_add(o, "migration",
		    json_object_new_int64(d->mig->id));
	return o;
}

/* A name not in use: NAME, else NAME-2, NAME-3, ... */
static void
domain_unique_name(struct domain *self, const char *want)
{
	unsigned i;

	snprintf(self->name, sizeof(self->name), "%s", want);
	for (i = 2; i < 100000; i++) {
		struct domain *o = domain_by_name(self->name);

		if (o == NULL || o == self)
			return;
		snprintf(self->name, sizeof(self->name), "%s-%u", want, i);
	}
}

/* One line from a domain process (SPEC: xmigd internal protocol). */
static void
domain_line(struct domain *d, char *line)
{
	char *save = NULL, *w = strtok_r(line, " ", &save);
	char *rest;

	if (w == NULL)
		return;
	if (strcmp(w, "running") == 0) {
		char *name = strtok_r(NULL, " ", &save);
		char *mem = strtok_r(NULL, " ", &save);
		char *spec = strtok_r(NULL, " ", &save);

		if (name == NULL || mem == NULL || spec == NULL ||
		    !xmigd_name_ok(name))
			return;
		snprintf(d->state, sizeof(d->state), "running");
		d->memory = strtoull(mem, NULL, 10);
		snprintf(d->spec, sizeof(d->spec), "sim:%s", spec);
		if (strcmp(d->origin, "received") == 0) {
			domain_unique_name(d, name);
			X.incoming_total++;
			log_info("received domain %s (%llu octets)", d->name,
			    (unsigned long long)d->memory);
		}
		if (d->creator != NULL) {
			rpc_result(d->creator, d->create_id, domain_json(d));
			d->creator = NULL;
			json_object_put(d->create_id);
			d->create_id = NULL;
		}
		notify_status();
	} else if (strcmp(w, "failed") == 0) {
		rest = save != NULL ? save : "";
		snprintf(d->failure, sizeof(d->failure), "%s", rest);
	} else if (strcmp(w, "progress") == 0 && d->mig != NULL) {
		char *phase = strtok_r(NULL, " ", &save);
		char *pass = strtok_r(NULL, " ", &save);
		char *bytes = strtok_r(NULL, " ", &save);
		char *rem = strtok_r(NULL, " ", &save);

		if (phase == NULL || rem == NULL)
			return;
		snprintf(d->mig->phase, sizeof(d->mig->phase), "%s", phase);
		d->mig->pass = (unsigned)strtoul(pass, NULL, 10);
		d->mig->bytes = strtoull(bytes, NULL, 10);
		d->mig->remaining = strtoull(rem, NULL, 10);
		mig_notify(d->mig, 0);
	} else if (strcmp(w, "result") == 0 && d->mig != NULL) {
		char *status = strtok_r(NULL, " ", &save);
		char *bytes = strtok_r(NULL, " ", &save);
		char *dt = strtok_r(NULL, " ", &save);
		char *ver = strtok_r(NULL, " ", &save);
		struct migration *m = d->mig;

		if (status == NULL || dt == NULL || ver == NULL)
			return;
		m->verified = atoi(ver);
		rest = save != NULL ? save : "-";
		d->mig = NULL;
		if (strcmp(status, "completed") == 0)
			snprintf(d->state, sizeof(d->state), "gone");
		else if (strcmp(status, "unconfirmed") == 0)
			snprintf(d->state, sizeof(d->state), "paused");
		else
			snprintf(d->state, sizeof(d->state), "running");
		snprintf(m->phase, sizeof(m->phase), "done");
		mig_end(m, status, strtoull(bytes, NULL, 10),
		    strtod(dt, NULL), rest);
	}
}

static void
domain_free(struct domain *d)
{
	struct domain **pp;

	for (pp = &X.domains; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	if (d->mig != NULL)
		mig_end(d->mig, "failed", 0, -1, "the domain process ended");
	if (d->creator != NULL) {
		rpc_error(d->creator, d->create_id, RPC_FAILED, "%s",
		    d->failure[0] ? d->failure : "the domain process ended");
		json_object_put(d->create_id);
	}
	if (strcmp(d->state, "incoming") == 0) {
		X.incoming_failed++;
		if (d->failure[0])
			log_warn("incoming migration failed: %s", d->failure);
	}
	bufferevent_free(d->bev);
	free(d);
	notify_status();
	if (X.stopping && X.domains == NULL)
		event_base_loopexit(X.base, NULL);
}

static void
domain_read(struct bufferevent *bev, void *arg)
{
	struct domain *d = arg;
	char *line;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL,
	    EVBUFFER_EOL_LF)) != NULL) {
		domain_line(d, line);
		free(line);
	}
}

/* The domain process ended (its end of the pair closed). */
static void
domain_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		domain_read(bev, arg);
		domain_free(arg);
	}
}

/* In a new child: every descriptor of the daemon's closed but keep. */
static void
child_close_fds(int keep1, int keep2)
{
	long fd, max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = 3; fd < max; fd++)
		if (fd != keep1 && fd != keep2)
			close((int)fd);
	signal(SIGCHLD, SIG_DFL);
}

/*
 * A domain process: created (spec) or receiving (fd).  Returns the new
 * entry, or NULL with errno.
 */
static struct domain *
domain_spawn(const char *name, const char *spec, int fd, void *tls_ctx,
    const char *busy)
{
	struct domain *d;
	struct recv_opts o;
	int sv[2];
	pid_t pid;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		free(d);
		return NULL;
	}
	recv_opts_default(&o);
	o.max_memory = X.max_memory;
	if (X.cc.timeout_s > 0)
		o.timeout_s = X.cc.timeout_s;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		free(d);
		errno = e;
		return NULL;
	}
	if (pid == 0) {
		child_close_fds(sv[1], fd);
		if (spec != NULL)
			domproc_create(sv[1], name, spec);
		domproc_receive(sv[1], fd, tls_ctx, &o, busy);
	}
	close(sv[1]);
	evutil_make_socket_nonblocking(sv[0]);
	d->pid = pid;
	d->bev = bufferevent_socket_new(X.base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	if (d->bev == NULL) {
		close(sv[0]);
		kill(pid, SIGKILL);
		free(d);
		errno = ENOMEM;
		return NULL;
	}
	bufferevent_setcb(d->bev, domain_read, NULL, domain_event, d);
	bufferevent_enable(d->bev, EV_READ);
	if (spec != NULL) {
		snprintf(d->name, sizeof(d->name), "%s", name);
		snprintf(d->state, sizeof(d->state), "starting");
		snprintf(d->origin, sizeof(d->origin), "created");
		snprintf(d->spec, sizeof(d->spec), "sim:%s", spec);
	} else {
		snprintf(d->name, sizeof(d->name), "(incoming)");
		snprintf(d->state, sizeof(d->state), busy ? "refusing" :
		    "incoming");
		snprintf(d->origin, sizeof(d->origin), "received");
	}
	d->next = X.domains;
	X.domains = d;
	return d;
}

/* ---- migration listeners ----------------------------------------------------- */

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct domain *d;
	unsigned in, refusers = 0;
	char busy[160];
	int fd, admit;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (X.stopping) {
		xport_abort(fd);
		close(fd);
		return;
	}
	active_migrations(&in);
	for (d = X.domains; d != NULL; d = d->next)
		if (strcmp(d->state, "refusing") == 0)
			refusers++;
	admit = in < X.max_sessions;
	if (!admit && refusers >= XMIGD_REFUSERS_MAX) {
		xport_abort(fd);
		close(fd);
		return;
	}
	snprintf(busy, sizeof(busy), "busy: %u migrations in progress "
	    "(max-sessions %u); try again later", in, X.max_sessions);
	if (domain_spawn(NULL, NULL, fd, l->tls_ctx, admit ? NULL : busy) ==
	    NULL)
		log_err("fork for a connection on %s: %s", l->uri,
		    strerror(errno));
	close(fd);
	notify_status();
}

static int
listener_add_fd(const char *uri, int fd, int tls)
{
	struct listener *l;
	char err[512];

	if (X.nlis >= XMIGD_LISTEN_MAX) {
		log_err("at most %d listeners", XMIGD_LISTEN_MAX);
		return -1;
	}
	l = &X.lis[X.nlis];
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	l->fd = fd;
	if (tls && (l->tls_ctx = xport_tls_ctx_new(&X.cc.tls, 1, err,
	    sizeof(err))) == NULL) {
		log_err("%s: %s", uri, err);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	l->ev = event_new(X.base, fd, EV_READ | EV_PERSIST, on_accept, l);
	if (l->ev == NULL || event_add(l->ev, NULL) != 0)
		return -1;
	X.nlis++;
	if (xport_bound(fd, err, sizeof(err)) == 0)
		log_info("listening on %s%s", err, tls ? " (tls)" : "");
	return 0;
}

static int
listener_open(const char *uri)
{
	struct xport_uri u;
	char err[512];
	int fd;

	if (xport_parse(uri, &u, err, sizeof(err)) != 0) {
		log_err("--listen %s: %s", uri, err);
		return -1;
	}
	if (u.kind != XPORT_TCP && u.kind != XPORT_TLS) {
		log_err("--listen %s: only tcp:HOST:PORT and tls:HOST:PORT", uri);
		return -1;
	}
	if ((fd = xport_listen(&u, 0, err, sizeof(err))) < 0) {
		log_err("--listen %s: %s", uri, err);
		return -1;
	}
	return listener_add_fd(uri, fd, u.kind == XPORT_TLS);
}

/* ---- the control socket ------------------------------------------------------ */

/* root, our own uid, or group xmig (primary or supplementary). */
static int
peer_allowed(int fd, char *who, size_t wholen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct passwd *pw;
	gid_t groups[256];
	int n = 256, i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
		snprintf(who, wholen, "unknown peer");
		return 0;
	}
	snprintf(who, wholen, "uid %u gid %u", (unsigned)cr.uid,
	    (unsigned)cr.gid);
	if (cr.uid == 0 || cr.uid == geteuid())
		return 1;
	if (!X.have_xmig_gid)
		return 0;
	if (cr.gid == X.xmig_gid)
		return 1;
	if ((pw = getpwuid(cr.uid)) == NULL)
		return 0;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return 0;
	for (i = 0; i < n; i++)
		if (groups[i] == X.xmig_gid)
			return 1;
	return 0;
}

static const char *
param_str(json_object *params, const char *key)
{
	json_object *v;

	if (params == NULL || !json_object_object_get_ex(params, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A migration id: an integer >= 1, given as a number or a string. */
static struct migration *
param_mig(struct client *c, json_object *id, json_object *params)
{
	json_object *v;
	struct migration *m;
	long long n;
	char *end;

	if (params == NULL || !json_object_object_get_ex(params, "id", &v)) {
		rpc_error(c, id, RPC_PARAMS, "params.id (a migration id) is "
		    "missing");
		return NULL;
	}
	if (json_object_is_type(v, json_type_int))
		n = json_object_get_int64(v);
	else if (json_object_is_type(v, json_type_string)) {
		n = strtoll(json_object_get_string(v), &end, 10);
		if (*end != '\0')
			n = -1;
	} else
		n = -1;
	if (n < 1 || n > 0xffffffffLL) {
		rpc_error(c, id, RPC_PARAMS, "params.id: not a migration id");
		return NULL;
	}
	if ((m = mig_by_id((unsigned)n)) == NULL)
		rpc_error(c, id, RPC_NOT_FOUND, "no migration %lld", n);
	return m;
}

static void
m_create(struct client *c, json_object *id, json_object *params)
{
	const char *spec = param_str(params, "spec");
	const char *name = param_str(params, "name");
	const struct backend_ops *ops;
	struct domain *d;
	char auto_name[32];
	static unsigned seq;

	if (spec == NULL) {
		rpc_error(c, id, RPC_PARAMS, "params.spec (sim:KEY=VALUE,...) "
		    "is missing");
		return;
	}
	if (strncmp(spec, "xen:", 4) == 0 || strcmp(spec, "xen") == 0) {
		rpc_error(c, id, RPC_FAILED, "xen domains are not yet in "
		    "xmigd (use migrate-send xen:NAME)");
		return;
	}
	if ((ops = backend_lookup(spec, &spec)) == NULL ||
	    strcmp(ops->name, "sim") != 0) {
		rpc_error(c, id, RPC_PARAMS, "params.spec: expected "
		    "sim:KEY=VALUE,...");
		return;
	}
	if (strlen(spec) > 400 || strpbrk(spec, " \t\n") != NULL) {
		rpc_error(c, id, RPC_PARAMS, "params.spec: too long or has "
		    "blanks");
		return;
	}
	if (name == NULL) {
		do
			snprintf(auto_name, sizeof(auto_name), "sim%u", ++seq);
		while (domain_by_name(auto_name) != NULL);
		name = auto_name;
	}
	if (!xmigd_name_ok(name)) {
		rpc_error(c, id, RPC_PARAMS, "params.name: 1-64 of "
		    "[A-Za-z0-9._-]");
		return;
	}
	if (domain_by_name(name) != NULL) {
		rpc_error(c, id, RPC_FAILED, "a domain %s exists", name);
		return;
	}
	if ((d = domain_spawn(name, spec, -1, NULL, NULL)) == NULL) {
		rpc_error(c, id, RPC_FAILED, "fork: %s", strerror(errno));
		return;
	}
	d->creator = c;
	d->create_id = id != NULL ? json_object_get(id) : NULL;
}

static void
m_migrate(struct client *c, json_object *id, json_object *params)
{
	const char *name = param_str(params, "name");
	const char *uri = param_str(params, "uri");
	struct xport_uri u;
	struct migration *m;
	struct domain *d;
	json_object *v, *r;
	uint64_t bw = 0;
	char err[512];

	if (name == NULL || uri == NULL) {
		rpc_error(c, id, RPC_PARAMS, "params.name and params.uri are "
		    "required");
		return;
	}
	if (params != NULL && json_object_object_get_ex(params, "bandwidth",
	    &v)) {
		if (json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) >= 0)
			bw = (uint64_t)json_object_get_int64(v);
		else if (!json_object_is_type(v, json_type_string) ||
		    parse_size(json_object_get_string(v), &bw) != 0) {
			rpc_error(c, id, RPC_PARAMS, "params.bandwidth: bytes "
			    "per second (a number, or a string with K/M/G)");
			return;
		}
	}
	if (xport_parse(uri, &u, err, sizeof(err)) != 0 ||
	    (u.kind != XPORT_TCP && u.kind != XPORT_TLS) ||
	    strpbrk(uri, " \n") != NULL) {
		rpc_error(c, id, RPC_PARAMS, "params.uri: %s", u.kind != 0 &&
		    u.kind != XPORT_TCP && u.kind != XPORT_TLS ?
		    "xmigd migrates to tcp:HOST:PORT or tls:HOST:PORT" : err);
		return;
	}
	if ((d = domain_by_name(name)) == NULL) {
		rpc_error(c, id, RPC_NOT_FOUND, "no domain %s here", name);
		return;
	}
	if (strcmp(d->state, "running") != 0) {
		rpc_error(c, id, RPC_BUSY, "domain %s is %s", name, d->state);
		return;
	}
	if (X.stopping) {
		rpc_error(c, id, RPC_BUSY, "xmigd is stopping");
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		rpc_error(c, id, RPC_FAILED, "out of memory");
		return;
	}
	m->id = ++X.next_mig;
	snprintf(m->domain, sizeof(m->domain), "%s", d->name);
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	snprintf(m->status, sizeof(m->status), "running");
	snprintf(m->phase, sizeof(m->phase), "connecting");
	m->downtime_ms = -1;
	m->verified = -1;
	m->bandwidth = bw;
	m->started = now_ns();
	m->dom = d;
	m->next = X.migs;
	X.migs = m;
	d->mig = m;
	snprintf(d->state, sizeof(d->state), "migrating");
	domain_send(d, "migrate %s %llu", uri, (unsigned long long)bw);
	mig_prune();
	notify_status();
	r = json_object_new_object();
	json_object_object_add(r, "id", json_object_new_int64(m->id));
	rpc_result(c, id, r);
}

static void
m_metrics(struct client *c, json_object *id)
{
	struct evbuffer *b = evbuffer_new();
	unsigned in, out = active_migrations(&in), i;
	unsigned long cum = 0, ndom = 0;
	struct domain *d;
	char *text;
	size_t n;

	for (d = X.domains; d != NULL; d = d->next)
		if (strcmp(d->state, "running") == 0 ||
		    strcmp(d->state, "migrating") == 0 ||
		    strcmp(d->state, "paused") == 0)
			ndom++;
	evbuffer_add_printf(b, "# HELP xmigd_migrations_total Outgoing "
	    "migrations that ended, by status.\n# TYPE xmigd_migrations_total "
	    "counter\n");
	for (i = 0; i < 4; i++)
		evbuffer_add_printf(b, "xmigd_migrations_total{status=\"%s\"} "
		    "%lu\n", status_names[i], X.by_status[i]);
	evbuffer_add_printf(b, "# HELP xmigd_incoming_total Incoming "
	    "migrations by result.\n# TYPE xmigd_incoming_total counter\n"
	    "xmigd_incoming_total{status=\"completed\"} %lu\n"
	    "xmigd_incoming_total{status=\"failed\"} %lu\n",
	    X.incoming_total, X.incoming_failed);
	evbuffer_add_printf(b, "# HELP xmigd_sent_bytes_total Octets sent by "
	    "outgoing migrations that ended.\n# TYPE xmigd_sent_bytes_total "
	    "counter\nxmigd_sent_bytes_total %llu\n",
	    (unsigned long long)X.bytes_total);
	evbuffer_add_printf(b, "# HELP xmigd_downtime_ms Downtime of outgoing "
	    "migrations.\n# TYPE xmigd_downtime_ms histogram\n");
	for (i = 0; i < 7; i++) {
		cum += X.dt_bucket[i];
		if (i < 6)
			evbuffer_add_printf(b, "xmigd_downtime_ms_bucket{le=\""
			    "%g\"} %lu\n", dt_bounds[i], cum);
		else
			evbuffer_add_printf(b, "xmigd_downtime_ms_bucket{le=\""
			    "+Inf\"} %lu\n", cum);
	}
	evbuffer_add_printf(b, "xmigd_downtime_ms_sum %g\n"
	    "xmigd_downtime_ms_count %lu\n", X.dt_sum, X.dt_count);
	evbuffer_add_printf(b, "# HELP xmigd_active_sessions Migrations in "
	    "progress.\n# TYPE xmigd_active_sessions gauge\n"
	    "xmigd_active_sessions{direction=\"outgoing\"} %u\n"
	    "xmigd_active_sessions{direction=\"incoming\"} %u\n"
	    "# HELP xmigd_domains Domains hosted.\n# TYPE xmigd_domains gauge\n"
	    "xmigd_domains %lu\n", out, in, ndom);
	n = evbuffer_get_length(b);
	text = malloc(n + 1);
	if (text == NULL) {
		evbuffer_free(b);
		rpc_error(c, id, RPC_FAILED, "out of memory");
		return;
	}
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	evbuffer_free(b);
	rpc_result(c, id, json_object_new_string(text));
	free(text);
}

static void
client_request(struct client *c, const char *line, size_t len)
{
	json_tokener *tok;
	json_object *req, *id = NULL, *mo, *params = NULL, *r;
	enum json_tokener_error jerr;
	const char *method;
	struct migration *m;
	struct domain *d;

	if ((tok = json_tokener_new()) == NULL) {
		rpc_error(c, NULL, RPC_FAILED, "out of memory");
		return;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	if (req == NULL || jerr != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		rpc_error(c, NULL, RPC_PARSE, "parse error: %s",
		    jerr == json_tokener_continue ? "the JSON text is "
		    "incomplete" : jerr != json_tokener_success ?
		    json_tokener_error_desc(jerr) : "text after the request");
		json_object_put(req);
		json_tokener_free(tok);
		return;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(req, json_type_object)) {
		rpc_error(c, NULL, RPC_INVALID, "a request is a JSON object");
		json_object_put(req);
		return;
	}
	json_object_object_get_ex(req, "id", &id);
	if (!json_object_object_get_ex(req, "jsonrpc", &mo) ||
	    !json_object_is_type(mo, json_type_string) ||
	    strcmp(json_object_get_string(mo), "2.0") != 0 ||
	    !json_object_object_get_ex(req, "method", &mo) ||
	    !json_object_is_type(mo, json_type_string)) {
		rpc_error(c, id, RPC_INVALID, "expected {\"jsonrpc\":\"2.0\","
		    "\"id\":...,\"method\":\"...\",\"params\":{...}}");
		json_object_put(req);
		return;
	}
	method = json_object_get_string(mo);
	if (json_object_object_get_ex(req, "params", &params) &&
	    params != NULL && !json_object_is_type(params, json_type_object)) {
		rpc_error(c, id, RPC_PARAMS, "params must be an object");
		json_object_put(req);
		return;
	}
	if (strcmp(method, "version") == 0) {
		r = json_object_new_object();
		json_object_object_add(r, "version",
		    json_object_new_string(PACKAGE_VERSION));
		json_object_object_add(r, "api", json_object_new_int(1));
		rpc_result(c, id, r);
	} else if (strcmp(method, "domains") == 0) {
		r = json_object_new_array();
		for (d = X.domains; d != NULL; d = d->next)
			if (strcmp(d->state, "refusing") != 0 &&
			    strcmp(d->state, "gone") != 0)
				json_object_array_add(r, domain_json(d));
		rpc_result(c, id, r);
	} else if (strcmp(method, "create") == 0) {
		m_create(c, id, params);
	} else if (strcmp(method, "migrate") == 0) {
		m_migrate(c, id, params);
	} else if (strcmp(method, "list") == 0) {
		r = json_object_new_array();
		for (m = X.migs; m != NULL; m = m->next)
			json_object_array_add(r, mig_json(m));
		rpc_result(c, id, r);
	} else if (strcmp(method, "status") == 0) {
		if ((m = param_mig(c, id, params)) != NULL)
			rpc_result(c, id, mig_json(m));
	} else if (strcmp(method, "cancel") == 0) {
		if ((m = param_mig(c, id, params)) != NULL) {
			if (m->dom == NULL)
				rpc_error(c, id, RPC_FAILED, "migration %u "
				    "has ended (%s)", m->id, m->status);
			else {
				domain_send(m->dom, "cancel");
				rpc_result(c, id, mig_json(m));
			}
		}
	} else if (strcmp(method, "watch") == 0) {
		if ((m = param_mig(c, id, params)) != NULL) {
			if (m->ended)
				rpc_result(c, id, mig_json(m));
			else if (c->watch != NULL)
				rpc_error(c, id, RPC_BUSY, "this connection "
				    "already watches a migration");
			else {
				c->watch = m;
				c->watch_id = id != NULL ?
				    json_object_get(id) : NULL;
				mig_notify(m, 0);
			}
		}
	} else if (strcmp(method, "metrics") == 0) {
		m_metrics(c, id);
	} else if (strcmp(method, "evacuate") == 0) {
		rpc_error(c, id, RPC_NO_METHOD, "evacuate is not implemented "
		    "yet");
	} else
		rpc_error(c, id, RPC_NO_METHOD, "unknown method '%.64s'",
		    method);
	json_object_put(req);
}

static void
client_free(struct client *c)
{
	struct client **pp;
	struct domain *d;

	for (pp = &X.clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	for (d = X.domains; d != NULL; d = d->next)
		if (d->creator == c) {
			d->creator = NULL;
			json_object_put(d->create_id);
			d->create_id = NULL;
		}
	json_object_put(c->watch_id);
	bufferevent_free(c->bev);
	free(c);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	for (;;) {
		if (c->closing) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > XMIGD_LINE_MAX) {
				rpc_error(c, NULL, RPC_TOO_LONG, "request "
				    "longer than %u octets", XMIGD_LINE_MAX);
				client_close_after(c);
			}
			return;
		}
		if (n > XMIGD_LINE_MAX) {
			rpc_error(c, NULL, RPC_TOO_LONG, "request longer than "
			    "%u octets", XMIGD_LINE_MAX);
			free(line);
			client_close_after(c);
			return;
		}
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n > 0)
			client_request(c, line, n);
		free(line);
	}
}

static void
client_write(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->closing &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(arg);
}

static void
on_control(evutil_socket_t lfd, short what, void *arg)
{
	struct client *c;
	char who[64];
	int fd;

	(void)what;
	(void)arg;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->bev = bufferevent_socket_new(X.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(c);
		close(fd);
		return;
	}
	/* A slow reader cannot grow our output without bound. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, XMIGD_LINE_MAX * 2);
	bufferevent_setcb(c->bev, client_read, client_write, client_event, c);
	c->next = X.clients;
	X.clients = c;
	if (!peer_allowed(fd, who, sizeof(who))) {
		log_warn("control: %s refused (not root, not group xmig)", who);
		rpc_error(c, NULL, RPC_DENIED, "permission denied: %s is not "
		    "root or in group xmig", who);
		client_close_after(c);
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
}

static int
control_open(const char *path)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("--control %s: path too long", path);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0) {
		log_err("socket: %s", strerror(errno));
		return -1;
	}
	/* A socket file left by a daemon that is gone: replace it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	    errno == EAGAIN) {
		log_err("--control %s: another xmigd answers there", path);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0117);	/* 0660 */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, SOMAXCONN) != 0) {
		umask(old);
		log_err("--control %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	if (X.have_xmig_gid && geteuid() == 0)
		(void)chown(path, 0, X.xmig_gid);
	X.control_created = 1;
	return fd;
}

static int
control_start(int fd)
{
	X.control_fd = fd;
	X.control_ev = event_new(X.base, fd, EV_READ | EV_PERSIST, on_control,
	    NULL);
	if (X.control_ev == NULL || event_add(X.control_ev, NULL) != 0)
		return -1;
	return 0;
}

/* ---- configuration ------------------------------------------------------------- */

/*
 * key = value lines, '#' comments.  limits_only: SIGHUP (max-sessions and
 * max-memory; the command line still wins).  Returns 0, or -1 after
 * printing why.
 */
static int
config_read(int limits_only)
{
	FILE *f;
	char line[1024], *k, *v, *e, *end;
	unsigned lineno = 0;
	unsigned long n;
	uint64_t sz;

	if ((f = fopen(X.config_path, "r")) == NULL) {
		if (errno == ENOENT && !X.config_given)
			return 0;
		log_err("%s: %s", X.config_path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if ((e = strchr(line, '#')) != NULL)
			*e = '\0';
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		e = k + strlen(k);
		while (e > k && (e[-1] == '\n' || e[-1] == ' ' ||
		    e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (*k == '\0')
			continue;
		if ((v = strchr(k, '=')) == NULL) {
			log_err("%s:%u: expected key = value", X.config_path,
			    lineno);
			goto bad;
		}
		for (e = v; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
		if (strcmp(k, "max-sessions") == 0) {
			n = strtoul(v, &end, 10);
			if (*end != '\0' || end == v || n < 1 || n > 1024) {
				log_err("%s:%u: max-sessions: a count from 1 "
				    "to 1024", X.config_path, lineno);
				goto bad;
			}
			if (!X.cli_max_sessions)
				X.max_sessions = (unsigned)n;
		} else if (strcmp(k, "max-memory") == 0) {
			if (parse_size(v, &sz) != 0) {
				log_err("%s:%u: max-memory: a size",
				    X.config_path, lineno);
				goto bad;
			}
			if (!X.cli_max_memory)
				X.max_memory = sz;
		} else if (strcmp(k, "listen") == 0) {
			if (!limits_only && listener_open(v) != 0)
				goto bad;
		} else if (strcmp(k, "control") == 0) {
			if (!limits_only && X.control_path == NULL &&
			    (X.control_path = strdup(v)) == NULL)
				goto bad;
		} else {
			log_err("%s:%u: unknown key '%s' (max-sessions, "
			    "max-memory, listen, control)", X.config_path,
			    lineno, k);
			goto bad;
		}
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	return -1;
}

/* ---- signals --------------------------------------------------------------------- */

/* Domain processes that have not ended XMIGD_STOP_S after quit: killed. */
#define XMIGD_STOP_S	60

static void
on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct domain *d;

	(void)fd;
	(void)what;
	(void)arg;
	for (d = X.domains; d != NULL; d = d->next) {
		log_warn("domain process %ld (%s) did not end in %d s: killed",
		    (long)d->pid, d->name, XMIGD_STOP_S);
		kill(d->pid, SIGKILL);
	}
	event_base_loopexit(X.base, NULL);
}

static void
stop_begin(void)
{
	static struct event *t;
	struct timeval tv = { XMIGD_STOP_S, 0 };

	struct domain *d;
	unsigned i;

	if (X.stopping)
		return;
	X.stopping = 1;
	notify("STOPPING=1");
	log_info("stopping: cancelling outgoing migrations, ending domain "
	    "processes");
	for (i = 0; i < X.nlis; i++)
		event_del(X.lis[i].ev);
	for (d = X.domains; d != NULL; d = d->next)
		domain_send(d, "quit");
	if (X.domains == NULL)
		event_base_loopexit(X.base, NULL);
	else if ((t = evtimer_new(X.base, on_stop_timeout, NULL)) != NULL)
		evtimer_add(t, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	int status;

	(void)what;
	(void)arg;
	if (sig == SIGCHLD) {
		/* Domains leave the table when their pair closes. */
		pid_t pid;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (WIFSIGNALED(status))
				log_warn("domain process %ld killed by "
				    "signal %d", (long)pid, WTERMSIG(status));
	} else if (sig == SIGHUP) {
		if (config_read(1) == 0)
			log_info("reloaded %s: max-sessions %u, max-memory "
			    "%llu", X.config_path, X.max_sessions,
			    (unsigned long long)X.max_memory);
		notify("READY=1");
	} else
		stop_begin();
}

/* ---- main -------------------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: xmigd [options]\n"
"\n"
"The xmig migration daemon: receives migrations on its listeners, hosts\n"
"(sim) domains, each in a process of its own, and migrates them as its\n"
"control socket asks (xmigctl; doc/control-api.md).\n"
"\n"
"Options:\n"
"  --listen URI          tcp:HOST:PORT or tls:HOST:PORT (repeatable); a\n"
"                        plain tcp: listener binds loopback addresses only\n"
"  --control PATH        the control socket (default " XMIGD_CONTROL_DEFAULT ",\n"
"                        mode 0660, group xmig when it exists)\n"
"  --backend sim         where domains live (xen is not yet in xmigd)\n"
"  --config FILE         key = value lines: max-sessions, max-memory,\n"
"                        listen, control (default " XMIGD_CONFIG_DEFAULT ";\n"
"                        only that default may be missing); SIGHUP\n"
"                        re-reads max-sessions and max-memory\n"
"  --max-sessions N      incoming migrations at once (default 8); beyond,\n"
"                        a sender is answered \"busy\"\n"
"  --max-memory SIZE     refuse incoming domains larger than SIZE\n"
"  --timeout SEC         give up on a stalled sender (default 60)\n"
"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
"                        this host's certificate and key, and the CA that\n"
"                        signs the peers' (PEM): for the tls: listeners and\n"
"                        for outgoing tls: migrations (which check the\n"
"                        HOST of tls:HOST:PORT in the receiver's)\n"
"  --tls-peer NAME, --tls-allow FILE\n"
"                        as migrate-receive's: who may send to a tls:\n"
"                        listener\n"
"  -v, --verbose         debug lines too\n"
"  -V, --version, -h, --help\n"
"\n"
"Who may use the control socket: root, the daemon's own user, and members\n"
"of group xmig (SO_PEERCRED); others are refused.  Under systemd: READY=1\n"
"once listening, STATUS= and WATCHDOG=1 through $NOTIFY_SOCKET, and the\n"
"sockets of LISTEN_FDS (a unix socket is the control socket, an inet one a\n"
"migration listener).  SIGTERM or SIGINT: outgoing and incoming\n"
"migrations are cancelled (each source resumes), then the domain processes\n"
"end, and their domains with them (this version does not keep domains\n"
"across a restart); processes still there after 60 s are killed.\n");
}

enum { OPT_LISTEN = 256, OPT_CONTROL, OPT_BACKEND, OPT_CONFIG,
	OPT_MAX_SESSIONS, OPT_MAX_MEMORY };

static const struct option longopts[] = {
	{ "listen",	required_argument,	NULL, OPT_LISTEN },
	{ "control",	required_argument,	NULL, OPT_CONTROL },
	{ "backend",	required_argument,	NULL, OPT_BACKEND },
	{ "config",	required_argument,	NULL, OPT_CONFIG },
	{ "max-sessions", required_argument,	NULL, OPT_MAX_SESSIONS },
	{ "max-memory",	required_argument,	NULL, OPT_MAX_MEMORY },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	CMD_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

#define bad_usage(...) cmd_usage_error("xmigd", __VA_ARGS__)

/* LISTEN_FDS: the sockets systemd passes; 0, or -1 after printing. */
static int
socket_activation(void)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	struct sockaddr_storage ss;
	socklen_t len;
	int i, count, fd;
	char uri[64];

	if (pid == NULL || n == NULL || atol(pid) != (long)getpid())
		return 0;
	count = atoi(n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (i = 0; i < count; i++) {
		fd = 3 + i;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
			log_err("LISTEN_FDS: fd %d: %s", fd, strerror(errno));
			return -1;
		}
		if (ss.ss_family == AF_UNIX) {
			if (X.control_ev != NULL) {
				log_err("LISTEN_FDS: two unix sockets");
				return -1;
			}
			evutil_make_socket_nonblocking(fd);
			if (control_start(fd) != 0)
				return -1;
		} else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
			snprintf(uri, sizeof(uri), "tcp:(fd %d)", fd);
			if (listener_add_fd(uri, fd, 0) != 0)
				return -1;
		} else {
			log_err("LISTEN_FDS: fd %d: not a unix or inet socket",
			    fd);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *listens[XMIGD_LISTEN_MAX];
	unsigned nlisten = 0, i;
	struct event *sigs[4], *wd = NULL;
	static const int signos[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct group *gr;
	const char *w;
	char *end;
	unsigned long v;
	int c, verbose = LOG_LVL_INFO, fd;

	log_init("xmigd", verbose);
	X.max_sessions = 8;
	X.config_path = XMIGD_CONFIG_DEFAULT;
	while ((c = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		if (c == OPT_PROGRESS || c == OPT_REPORT)
			return bad_usage("%s", "--progress and --report are "
			    "migrate-send's and migrate-receive's: xmigd "
			    "reports through its control socket");
		if (c >= OPT_PROGRESS && c < OPT_COMMON_END) {
			if (cmd_common_option("xmigd", c, optarg, &X.cc) != 0)
				return 2;
			continue;
		}
		switch (c) {
		case OPT_LISTEN:
			if (nlisten >= XMIGD_LISTEN_MAX)
				return bad_usage("--listen: at most %d",
				    XMIGD_LISTEN_MAX);
			listens[nlisten++] = optarg;
			break;
		case OPT_CONTROL:
			X.control_path = optarg;
			break;
		case OPT_BACKEND:
			if (strcmp(optarg, "sim") == 0)
				break;
			if (strcmp(optarg, "xen") == 0) {
				fprintf(stderr, "xmigd: --backend xen: not yet "
				    "in xmigd (use migrate-send and "
				    "migrate-receive --backend xen)\n");
				return 1;
			}
			return bad_usage("--backend: '%s' is not sim", optarg);
		case OPT_CONFIG:
			X.config_path = optarg;
			X.config_given = 1;
			break;
		case OPT_MAX_SESSIONS:
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 || v > 1024)
				return bad_usage("--max-sessions: '%s' is not "
				    "a count from 1 to 1024", optarg);
			X.max_sessions = (unsigned)v;
			X.cli_max_sessions = 1;
			break;
		case OPT_MAX_MEMORY:
			if (parse_size(optarg, &X.max_memory) != 0 ||
			    X.max_memory < 4096)
				return bad_usage("--max-memory: '%s' is not a "
				    "size", optarg);
			X.cli_max_memory = 1;
			break;
		case 'v':
			verbose = LOG_LVL_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			version_print();
			return 0;
		default:
			fprintf(stderr, "Try 'xmigd --help'.\n");
			return 2;
		}
	}
	if (optind != argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	domproc_set_tls(&X.cc.tls);
	log_init("xmigd", verbose);
	log_route_lib();
	signal(SIGPIPE, SIG_IGN);
	if ((gr = getgrnam("xmig")) != NULL) {
		X.xmig_gid = gr->gr_gid;
		X.have_xmig_gid = 1;
	}
	if ((X.base = event_base_new()) == NULL) {
		log_err("out of memory");
		return 1;
	}
	X.control_fd = -1;
	if (socket_activation() != 0)
		return 1;
	for (i = 0; i < nlisten; i++)
		if (listener_open(listens[i]) != 0)
			return 1;
	if (config_read(0) != 0)
		return 1;
	if (X.control_ev == NULL) {
		if (X.control_path == NULL)
			X.control_path = XMIGD_CONTROL_DEFAULT;
		if ((fd = control_open(X.control_path)) < 0 ||
		    control_start(fd) != 0)
			return 1;
	}
	for (i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(X.base, signos[i], on_signal, NULL);
		if (sigs[i] == NULL || event_add(sigs[i], NULL) != 0) {
			log_err("signals: out of memory");
			return 1;
		}
	}
	if ((w = getenv("WATCHDOG_USEC")) != NULL && atoll(w) > 0 &&
	    (getenv("WATCHDOG_PID") == NULL ||
	    atol(getenv("WATCHDOG_PID")) == (long)getpid())) {
		long long us = atoll(w) / 2;
		struct timeval tv = { (time_t)(us / 1000000),
		    (suseconds_t)(us % 1000000) };

		wd = event_new(X.base, -1, EV_PERSIST, on_watchdog, NULL);
		if (wd != NULL)
			event_add(wd, &tv);
	}
	log_info("ready: control %s, %u listener%s, max-sessions %u",
	    X.control_path ? X.control_path : "(from systemd)", X.nlis,
	    X.nlis == 1 ? "" : "s", X.max_sessions);
	fflush(stderr);
	notify("READY=1");
	notify_status();
	event_base_dispatch(X.base);
	while (X.clients != NULL)
		client_free(X.clients);
	if (X.control_created)
		unlink(X.control_path);
	for (i = 0; i < X.nlis; i++) {
		event_free(X.lis[i].ev);
		close(X.lis[i].fd);
		xport_tls_ctx_free(X.lis[i].tls_ctx);
	}
	if (wd != NULL)
		event_free(wd);
	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	log_info("stopped");
	return 0;
}
