/*
 * table.c -- xmigd's tables: the hosted domains (each a domain process,
 * forked here, domproc.c) and the outgoing migrations, the lines from the
 * domain processes that change them (SPEC 18), and who is told.
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

const double xmigd_dt_bounds[6] = { 10, 50, 100, 300, 1000, 5000 };
const char *const xmigd_status_names[4] = {
	"completed", "failed", "cancelled", "unconfirmed"
};

unsigned
active_migrations(unsigned *incoming)
{
	struct domain *d;
	unsigned out = 0, in = 0;

	for (d = xd.domains; d != NULL; d = d->next) {
		if (strcmp(d->state, "migrating") == 0)
			out++;
		else if (strcmp(d->state, "incoming") == 0)
			in++;
	}
	if (incoming != NULL)
		*incoming = in;
	return out;
}

/* ---- the tables -------------------------------------------------------- */

struct domain *
domain_by_name(const char *name)
{
	struct domain *d;

	for (d = xd.domains; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0 &&
		    strcmp(d->state, "incoming") != 0 &&
		    strcmp(d->state, "refusing") != 0)
			return d;
	return NULL;
}

struct migration *
mig_by_id(unsigned id)
{
	struct migration *m;

	for (m = xd.migs; m != NULL; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

json_object *
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
void
mig_notify(struct migration *m, int final)
{
	struct client *c, *next;
	json_object *n;

	for (c = xd.clients; c != NULL; c = next) {
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

void
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
		if (strcmp(status, xmigd_status_names[i]) == 0)
			xd.by_status[i]++;
	xd.bytes_total += m->bytes;
	if (dt >= 0) {
		for (i = 0; i < 6 && dt > xmigd_dt_bounds[i]; i++)
			;
		xd.dt_bucket[i]++;
		xd.dt_sum += dt;
		xd.dt_count++;
	}
	log_info("migration %u of %s to %s: %s%s%s", m->id, m->domain, m->uri,
	    status, m->error[0] ? ": " : "", m->error);
	mig_notify(m, 1);
	notify_status();
	evac_mig_end(m);
}

/*
 * Start a migration of d to uri at bw octets/s (0: no cap): the table's
 * entry, and the domain process told; NULL when out of memory.
 */
struct migration *
mig_start(struct domain *d, const char *uri, uint64_t bw)
{
	struct migration *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->id = ++xd.next_mig;
	snprintf(m->domain, sizeof(m->domain), "%s", d->name);
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	snprintf(m->status, sizeof(m->status), "running");
	snprintf(m->phase, sizeof(m->phase), "connecting");
	m->downtime_ms = -1;
	m->verified = -1;
	m->bandwidth = bw;
	m->started = now_ns();
	m->dom = d;
	m->next = xd.migs;
	xd.migs = m;
	d->mig = m;
	snprintf(d->state, sizeof(d->state), "migrating");
	domain_send(d, "migrate %s %llu", uri, (unsigned long long)bw);
	mig_prune();
	notify_status();
	return m;
}

/* Keep the last XMIGD_MIGRATIONS_KEPT migrations that ended. */
void
mig_prune(void)
{
	struct migration **pp, *m;
	unsigned n = 0;

	for (pp = &xd.migs; (m = *pp) != NULL;) {
		if (m->ended && ++n > XMIGD_MIGRATIONS_KEPT) {
			struct client *c;

			for (c = xd.clients; c != NULL; c = c->next)
				if (c->watch == m)
					c->watch = NULL;
			*pp = m->next;
			free(m);
			continue;
		}
		pp = &m->next;
	}
}

void
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

json_object *
domain_json(const struct domain *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "state", json_object_new_string(d->state));
	json_object_object_add(o, "backend", json_object_new_string(
	    xd.xen ? "xen" : "sim"));
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

		int arrived;

		if (name == NULL || mem == NULL || spec == NULL ||
		    !xmigd_name_ok(name))
			return;
		arrived = strcmp(d->state, "incoming") == 0;
		snprintf(d->state, sizeof(d->state), "running");
		d->memory = strtoull(mem, NULL, 10);
		snprintf(d->spec, sizeof(d->spec), "%s:%s",
		    xd.xen ? "xen" : "sim", xd.xen ? name : spec);
		if (arrived) {
			domain_unique_name(d, name);
			if (strcmp(d->name, name) != 0)
				domain_send(d, "name %s", d->name);
			xd.incoming_total++;
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
		stop_check();
	} else if (strcmp(w, "answer") == 0) {
		evac_answer(d, save != NULL ? save : "");
	} else if (strcmp(w, "admit") == 0) {
		budget_admit(d, save != NULL ? save : "");
	} else if (strcmp(w, "asked") == 0) {
		d->asked = 1;
	} else if (strcmp(w, "log") == 0) {
		log_warn("domain %s (process %ld): %s", d->name, (long)d->pid,
		    save != NULL ? save : "");
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
		stop_check();
	}
}

static void
domain_free(struct domain *d)
{
	struct domain **pp;

	for (pp = &xd.domains; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	if (d->mig != NULL)
		mig_end(d->mig, "failed", 0, -1, "the domain process ended");
	if (d->creator != NULL && d->destroying) {
		json_object *r = json_object_new_object();

		json_object_object_add(r, "name",
		    json_object_new_string(d->name));
		json_object_object_add(r, "destroyed",
		    json_object_new_boolean(1));
		rpc_result(d->creator, d->create_id, r);
		json_object_put(d->create_id);
	} else if (d->creator != NULL) {
		rpc_error(d->creator, d->create_id, RPC_FAILED, "%s",
		    d->failure[0] ? d->failure : "the domain process ended");
		json_object_put(d->create_id);
	}
	if (d->destroying)
		log_info("domain %s (process %ld) destroyed", d->name,
		    (long)d->pid);
	if (strcmp(d->state, "incoming") == 0 && !d->asked) {
		xd.incoming_failed++;
		if (d->failure[0])
			log_warn("incoming migration failed: %s", d->failure);
	}
	bufferevent_free(d->bev);
	free(d);
	notify_status();
	stop_check();
}

void
stop_check(void)
{
	static const char *const moving[] = { "starting", "incoming",
	    "refusing", "migrating" };
	struct domain *d;
	unsigned i;

	if (!xd.stopping)
		return;
	for (d = xd.domains; d != NULL; d = d->next)
		for (i = 0; i < sizeof(moving) / sizeof(moving[0]); i++)
			if (strcmp(d->state, moving[i]) == 0)
				return;
	event_base_loopexit(xd.base, NULL);
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
child_close_fds(int keep1, int keep2, int keep3)
{
	long fd, max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = 3; fd < max; fd++)
		if (fd != keep1 && fd != keep2 && fd != keep3)
			close((int)fd);
	signal(SIGCHLD, SIG_DFL);
}

/*
 * A domain process: created (spec) or receiving (fd).  Returns the new
 * entry, or NULL with errno.
 */
struct domain *
domain_spawn(const char *name, const char *spec, int fd, void *tls_ctx,
    const char *busy)
{
	struct domain *d;
	struct recv_opts o;
	char lpath[256];
	int sv[2], lfd, e;
	pid_t pid;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	if ((lfd = state_dir_listen(lpath, sizeof(lpath))) < 0) {
		e = errno;
		free(d);
		errno = e;
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		e = errno;
		close(lfd);
		unlink(lpath);
		free(d);
		errno = e;
		return NULL;
	}
	recv_opts_default(&o);
	o.max_memory = budget_max_memory();
	if (xd.memory_budget != 0)
		o.max_memory_why = "--max-memory, or what --memory-budget has "
		    "free now";
	if (xd.cc.timeout_s > 0)
		o.timeout_s = xd.cc.timeout_s;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		e = errno;
		close(sv[0]);
		close(sv[1]);
		close(lfd);
		unlink(lpath);
		free(d);
		errno = e;
		return NULL;
	}
	if (pid == 0) {
		child_close_fds(sv[1], fd, lfd);
#ifdef HAVE_XEN
		if (xd.xen && spec != NULL)
			xenproc_source(sv[1], lfd, lpath, spec);
		if (xd.xen)
			xenproc_receive(sv[1], lfd, lpath, fd, tls_ctx, &o,
			    busy);
#endif
		if (spec != NULL)
			domproc_create(sv[1], lfd, lpath, name, spec);
		domproc_receive(sv[1], lfd, lpath, fd, tls_ctx, &o, busy);
	}
	close(sv[1]);
	close(lfd);
	evutil_make_socket_nonblocking(sv[0]);
	d->pid = pid;
	d->bev = bufferevent_socket_new(xd.base, sv[0], BEV_OPT_CLOSE_ON_FREE);
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
		snprintf(d->spec, sizeof(d->spec), "%s:%s",
		    xd.xen ? "xen" : "sim", spec);
	} else {
		snprintf(d->name, sizeof(d->name), "(incoming)");
		snprintf(d->state, sizeof(d->state), busy ? "refusing" :
		    "incoming");
		snprintf(d->origin, sizeof(d->origin), "received");
	}
	d->next = xd.domains;
	xd.domains = d;
	return d;
}

/*
 * A domain process a previous xmigd left (recover.c has connected to it
 * and read its line): "state PID STATE NAME MEMORY SPEC ORIGIN URI".
 */
struct domain *
domain_attach(int fd, char *line)
{
	char *save = NULL, *w[8];
	struct migration *m;
	struct domain *d;
	unsigned i;

	for (i = 0; i < 8; i++)
		if ((w[i] = strtok_r(i == 0 ? line : NULL, " ", &save)) ==
		    NULL)
			return NULL;
	if (strcmp(w[0], "state") != 0 || atol(w[1]) <= 0 ||
	    (strcmp(w[2], "running") != 0 && strcmp(w[2], "migrating") != 0 &&
	    strcmp(w[2], "paused") != 0 && strcmp(w[2], "incoming") != 0) ||
	    (strcmp(w[3], "-") != 0 && !xmigd_name_ok(w[3])))
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	evutil_make_socket_nonblocking(fd);
	if ((d->bev = bufferevent_socket_new(xd.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(d);
		return NULL;
	}
	d->pid = (pid_t)atol(w[1]);
	snprintf(d->state, sizeof(d->state), "%s", w[2]);
	d->memory = strtoull(w[4], NULL, 10);
	if (strcmp(w[5], "-") != 0)
		snprintf(d->spec, sizeof(d->spec), "sim:%s", w[5]);
	snprintf(d->origin, sizeof(d->origin), "%s",
	    strcmp(w[6], "received") == 0 ? "received" : "created");
	if (strcmp(w[2], "incoming") == 0)
		snprintf(d->name, sizeof(d->name), "(incoming)");
	else {
		domain_unique_name(d, w[3]);
		if (strcmp(d->name, w[3]) != 0)
			domain_send(d, "name %s", d->name);
	}
	if (strcmp(w[2], "migrating") == 0 &&
	    (m = calloc(1, sizeof(*m))) != NULL) {
		/* Its record went with the previous xmigd: a new one. */
		m->id = ++xd.next_mig;
		snprintf(m->domain, sizeof(m->domain), "%s", d->name);
		snprintf(m->uri, sizeof(m->uri), "%s", w[7]);
		snprintf(m->status, sizeof(m->status), "running");
		snprintf(m->phase, sizeof(m->phase), "recovered");
		m->downtime_ms = -1;
		m->verified = -1;
		m->started = now_ns();
		m->dom = d;
		m->next = xd.migs;
		xd.migs = m;
		d->mig = m;
	}
	bufferevent_setcb(d->bev, domain_read, NULL, domain_event, d);
	bufferevent_enable(d->bev, EV_READ);
	d->next = xd.domains;
	xd.domains = d;
	return d;
}
