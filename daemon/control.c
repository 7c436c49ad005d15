/*
 * control.c -- xmigd's control socket: who may connect (SO_PEERCRED), the
 * line-delimited JSON-RPC 2.0 framing and its limits, and the methods
 * (doc/control-api.md).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
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

/* ---- JSON-RPC output --------------------------------------------------- */

void
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

void
rpc_result(struct client *c, json_object *id, json_object *result)
{
	json_object *o = rpc_head(id);

	json_object_object_add(o, "result", result);
	client_send(c, o);
}

void
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
/* ---- the control socket ------------------------------------------------ */

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
	if (!xd.have_xmig_gid)
		return 0;
	if (cr.gid == xd.xmig_gid)
		return 1;
	if ((pw = getpwuid(cr.uid)) == NULL)
		return 0;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return 0;
	for (i = 0; i < n; i++)
		if (groups[i] == xd.xmig_gid)
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
	if (xd.xen) {
		rpc_error(c, id, RPC_FAILED, "this xmigd runs --backend xen: "
		    "it hosts the Xen guests of this host (xl create makes "
		    "them); create makes sim domains on a --backend sim "
		    "xmigd");
		return;
	}
	if (strncmp(spec, "xen:", 4) == 0 || strcmp(spec, "xen") == 0) {
		rpc_error(c, id, RPC_FAILED, "this xmigd runs --backend sim: "
		    "Xen guests are moved by an xmigd --backend xen (or "
		    "migrate-send xen:NAME)");
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
	if (xd.xen && xd.stopping) {
		rpc_error(c, id, RPC_BUSY, "xmigd is stopping");
		return;
	} else if (xd.xen) {
		if ((d = xenhost_source(name, err, sizeof(err))) == NULL) {
			rpc_error(c, id, RPC_NOT_FOUND, "%s", err);
			return;
		}
	} else if ((d = domain_by_name(name)) == NULL) {
		rpc_error(c, id, RPC_NOT_FOUND, "no domain %s here", name);
		return;
	}
	if (strcmp(d->state, "running") != 0) {
		rpc_error(c, id, RPC_BUSY, "domain %s is %s", name, d->state);
		return;
	}
	if (xd.stopping) {
		rpc_error(c, id, RPC_BUSY, "xmigd is stopping");
		return;
	}
	if ((m = mig_start(d, uri, bw)) == NULL) {
		rpc_error(c, id, RPC_FAILED, "out of memory");
		return;
	}
	r = json_object_new_object();
	json_object_object_add(r, "id", json_object_new_int64(m->id));
	rpc_result(c, id, r);
}

static void
m_metrics(struct client *c, json_object *id)
{
	char *text = metrics_text();

	if (text == NULL) {
		rpc_error(c, id, RPC_FAILED, "out of memory");
		return;
	}
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
	} else if (strcmp(method, "domains") == 0 && xd.xen) {
		char err[256];

		if ((r = xenhost_domains(err, sizeof(err))) == NULL)
			rpc_error(c, id, RPC_FAILED, "%s", err);
		else
			rpc_result(c, id, r);
	} else if (strcmp(method, "domains") == 0) {
		r = json_object_new_array();
		for (d = xd.domains; d != NULL; d = d->next)
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
		for (m = xd.migs; m != NULL; m = m->next)
			json_object_array_add(r, mig_json(m));
		rpc_result(c, id, r);
	} else if (strcmp(method, "status") == 0) {
		if (evac_rpc_status(c, id, params) == 1 &&
		    (m = param_mig(c, id, params)) != NULL)
			rpc_result(c, id, mig_json(m));
	} else if (strcmp(method, "cancel") == 0) {
		if (evac_rpc_cancel(c, id, params) == 1 &&
		    (m = param_mig(c, id, params)) != NULL) {
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
	} else if (xd.xen && strcmp(method, "destroy") == 0) {
		rpc_error(c, id, RPC_FAILED, "destroy is for sim domains: "
		    "xl destroy ends a Xen guest");
#ifdef HAVE_XEN
	} else if (xd.xen && strcmp(method, "resume") == 0) {
		const char *name = param_str(params, "name");
		char err[256];
		int code;

		if (name == NULL)
			rpc_error(c, id, RPC_PARAMS, "params.name (a domain) "
			    "is missing");
		else if ((code = xenhost_resume(name, err, sizeof(err))) != 0)
			rpc_error(c, id, code, "%s", err);
		else {
			r = json_object_new_object();
			json_object_object_add(r, "name",
			    json_object_new_string(name));
			json_object_object_add(r, "state",
			    json_object_new_string("running"));
			json_object_object_add(r, "backend",
			    json_object_new_string("xen"));
			rpc_result(c, id, r);
		}
#endif
	} else if (recover_method(c, id, method, params)) {
		;	/* destroy, resume: recover.c */
	} else if (strcmp(method, "evacuate") == 0) {
		evac_rpc(c, id, params);
	} else
		rpc_error(c, id, RPC_NO_METHOD, "unknown method '%.64s'",
		    method);
	json_object_put(req);
}

void
client_free(struct client *c)
{
	struct client **pp;
	struct domain *d;

	for (pp = &xd.clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	for (d = xd.domains; d != NULL; d = d->next)
		if (d->creator == c) {
			d->creator = NULL;
			json_object_put(d->create_id);
			d->create_id = NULL;
		}
	evac_client_gone(c);
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
	    (c->bev = bufferevent_socket_new(xd.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(c);
		close(fd);
		return;
	}
	/* A slow reader cannot grow our output without bound. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, XMIGD_LINE_MAX * 2);
	bufferevent_setcb(c->bev, client_read, client_write, client_event, c);
	c->next = xd.clients;
	xd.clients = c;
	if (!peer_allowed(fd, who, sizeof(who))) {
		log_warn("control: %s refused (not root, not group xmig)", who);
		rpc_error(c, NULL, RPC_DENIED, "permission denied: %s is not "
		    "root or in group xmig", who);
		client_close_after(c);
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
}

int
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
	if (xd.have_xmig_gid && geteuid() == 0)
		(void)chown(path, 0, xd.xmig_gid);
	xd.control_created = 1;
	return fd;
}

int
control_start(int fd)
{
	xd.control_fd = fd;
	xd.control_ev = event_new(xd.base, fd, EV_READ | EV_PERSIST, on_control,
	    NULL);
	if (xd.control_ev == NULL || event_add(xd.control_ev, NULL) != 0)
		return -1;
	return 0;
}
