/*
 * evacuate.c -- host evacuation (doc/control-api.md "evacuate"): every
 * domain this xmigd hosts moves to the given targets, planned from the
 * free memory each target reports to a QUERY (SPEC 13.2), biggest first,
 * at most N migrations at once and a total bandwidth shared among them; a
 * domain that fails is tried once more on another target.  And the host
 * memory budget of incoming domains (SPEC 18.5).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "daemon.h"
#include "xmig.h"
#include "xmigd.h"

#define EVAC_TARGETS_MAX	16
#define EVAC_DOMAINS_MAX	1024
#define EVAC_PARALLEL_MAX	64
#define EVAC_QUERY_S		15	/* a target that has not answered: down */
#define EVAC_UNLIMITED		UINT64_MAX

struct evac_target {
	char		 uri[300];
	int		 asked, answered;
	int		 up;		/* answered and may take domains */
	uint64_t	 free;		/* what it reported; UNLIMITED: no limit */
	uint64_t	 planned;	/* octets planned or sent to it */
	char		 error[300];
};

struct evac_item {
	char		 name[XMIGD_NAME_MAX + 8];
	uint64_t	 memory;
	int		 target;	/* index, -1: none with room */
	int		 tried[2];	/* targets tried, -1 */
	unsigned	 attempts;
	unsigned	 mig;		/* migration id while migrating */
	char		 status[16];	/* planned, migrating, completed,
					   unconfirmed, failed, cancelled,
					   no-room */
	double		 elapsed_ms, downtime_ms;
	int		 verified;
	uint64_t	 bytes;
	char		 error[512];
};

struct evac {
	unsigned		 id;
	char			 state[16];	/* querying, running, cancelling,
						   done, cancelled, stopped,
						   planned (dry run) */
	int			 dry_run;
	unsigned		 parallel;
	uint64_t		 bandwidth;
	struct evac_target	 t[EVAC_TARGETS_MAX];
	unsigned		 nt;
	struct evac_item	*it;
	unsigned		 n;
	uint64_t		 started, ended;
	struct client		*c;
	json_object		*rpc_id;
	struct event		*timer;
};

static struct evac *ev_cur;		/* running, or the last one */
static unsigned ev_seq;

/* ---- JSON -------------------------------------------------------------- */

static json_object *
evac_json(const struct evac *e)
{
	json_object *o = json_object_new_object(), *a, *x;
	uint64_t end = e->ended ? e->ended : now_ns(), bytes = 0;
	char id[32];
	unsigned i;

	snprintf(id, sizeof(id), "evac-%u", e->id);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "state", json_object_new_string(e->state));
	json_object_object_add(o, "dry_run", json_object_new_boolean(
	    e->dry_run));
	json_object_object_add(o, "parallel", json_object_new_int64(
	    e->parallel));
	json_object_object_add(o, "bandwidth", json_object_new_int64(
	    (int64_t)e->bandwidth));
	a = json_object_new_array();
	for (i = 0; i < e->nt; i++) {
		const struct evac_target *t = &e->t[i];

		x = json_object_new_object();
		json_object_object_add(x, "uri", json_object_new_string(
		    t->uri));
		json_object_object_add(x, "up", json_object_new_boolean(
		    t->up));
		if (t->answered && t->free != EVAC_UNLIMITED)
			json_object_object_add(x, "free_memory",
			    json_object_new_int64((int64_t)t->free));
		else if (t->answered)
			json_object_object_add(x, "free_memory", NULL);
		json_object_object_add(x, "planned_memory",
		    json_object_new_int64((int64_t)t->planned));
		if (t->error[0])
			json_object_object_add(x, "error",
			    json_object_new_string(t->error));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "targets", a);
	a = json_object_new_array();
	for (i = 0; i < e->n; i++) {
		const struct evac_item *it = &e->it[i];

		x = json_object_new_object();
		json_object_object_add(x, "domain", json_object_new_string(
		    it->name));
		json_object_object_add(x, "memory", json_object_new_int64(
		    (int64_t)it->memory));
		json_object_object_add(x, "target", it->target >= 0 ?
		    json_object_new_string(e->t[it->target].uri) : NULL);
		json_object_object_add(x, "status", json_object_new_string(
		    it->status));
		json_object_object_add(x, "attempts", json_object_new_int64(
		    it->attempts));
		if (it->mig != 0)
			json_object_object_add(x, "migration",
			    json_object_new_int64(it->mig));
		if (it->attempts > 0) {
			json_object_object_add(x, "elapsed_ms",
			    json_object_new_double(it->elapsed_ms));
			json_object_object_add(x, "bytes",
			    json_object_new_int64((int64_t)it->bytes));
		}
		if (it->downtime_ms >= 0)
			json_object_object_add(x, "downtime_ms",
			    json_object_new_double(it->downtime_ms));
		json_object_object_add(x, "verified", it->verified < 0 ? NULL :
		    json_object_new_boolean(it->verified));
		if (it->error[0])
			json_object_object_add(x, "error",
			    json_object_new_string(it->error));
		bytes += it->bytes;
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "domains", a);
	json_object_object_add(o, "bytes", json_object_new_int64(
	    (int64_t)bytes));
	json_object_object_add(o, "elapsed_ms", json_object_new_double(
	    (double)(end - e->started) / 1e6));
	return o;
}

/* A notification to the client that asked, while it is there. */
static void
evac_notify(struct evac *e)
{
	json_object *n;

	if (e->c == NULL)
		return;
	n = json_object_new_object();
	json_object_object_add(n, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(n, "method", json_object_new_string(
	    "evacuation"));
	json_object_object_add(n, "params", evac_json(e));
	client_send(e->c, n);
}

static void
evac_finish(struct evac *e, const char *state)
{
	snprintf(e->state, sizeof(e->state), "%s", state);
	e->ended = now_ns();
	if (e->timer != NULL) {
		event_free(e->timer);
		e->timer = NULL;
	}
	log_info("evacuation %u: %s", e->id, state);
	if (e->c != NULL)
		rpc_result(e->c, e->rpc_id, evac_json(e));
	json_object_put(e->rpc_id);
	e->rpc_id = NULL;
	e->c = NULL;
}

/* ---- the plan ---------------------------------------------------------- */

static uint64_t
room(const struct evac_target *t)
{
	if (t->free == EVAC_UNLIMITED)
		return EVAC_UNLIMITED;
	return t->free > t->planned ? t->free - t->planned : 0;
}

/*
 * The target for it: among the targets that are up, not tried for it
 * yet, with room for it, the one with the most room left (a target
 * without a limit counts as the most; among those, the one with the
 * fewest octets planned; then the first named).  -1: none.
 */
static int
pick_target(const struct evac *e, const struct evac_item *it)
{
	int best = -1;
	unsigned i;

	for (i = 0; i < e->nt; i++) {
		const struct evac_target *t = &e->t[i];

		if (!t->up || (int)i == it->tried[0] || (int)i == it->tried[1] ||
		    room(t) < it->memory)
			continue;
		if (best < 0 || room(t) > room(&e->t[best]) ||
		    (room(t) == room(&e->t[best]) &&
		    t->planned < e->t[best].planned))
			best = (int)i;
	}
	return best;
}

static void
assign(struct evac *e, struct evac_item *it)
{
	it->target = pick_target(e, it);
	if (it->target >= 0) {
		e->t[it->target].planned += it->memory;
		snprintf(it->status, sizeof(it->status), "planned");
	} else
		snprintf(it->status, sizeof(it->status), "no-room");
}

/* Biggest first: the longest migrations start first, and it packs best. */
static int
item_cmp(const void *a, const void *b)
{
	const struct evac_item *x = a, *y = b;

	if (x->memory != y->memory)
		return x->memory > y->memory ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* ---- running it -------------------------------------------------------- */

/* A migration of d to uri, as the control API's migrate starts one. */
static struct migration *
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

static unsigned
evac_active(const struct evac *e)
{
	unsigned i, n = 0;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->it[i].status, "migrating") == 0)
			n++;
	return n;
}

/* The total bandwidth, split evenly among the migrations that run. */
static uint64_t
evac_share(const struct evac *e, unsigned active)
{
	uint64_t per;

	if (e->bandwidth == 0 || active == 0)
		return 0;
	per = e->bandwidth / active;
	return per > 0 ? per : 1;
}

static void
evac_rebalance(struct evac *e, unsigned active)
{
	uint64_t per = evac_share(e, active);
	struct migration *m;
	unsigned i;

	if (e->bandwidth == 0)
		return;
	for (i = 0; i < e->n; i++) {
		if (strcmp(e->it[i].status, "migrating") != 0 ||
		    (m = mig_by_id(e->it[i].mig)) == NULL || m->dom == NULL ||
		    m->bandwidth == per)
			continue;
		m->bandwidth = per;
		domain_send(m->dom, "bandwidth %llu", (unsigned long long)per);
	}
}

static void
evac_schedule(struct evac *e)
{
	unsigned i, active = evac_active(e);
	struct evac_item *it;
	struct migration *m;
	struct domain *d;

	if (strcmp(e->state, "running") != 0)
		goto check_end;
	if (xd.stopping)
		snprintf(e->state, sizeof(e->state), "stopping");
	for (i = 0; i < e->n && strcmp(e->state, "running") == 0 &&
	    active < e->parallel; i++) {
		it = &e->it[i];
		if (strcmp(it->status, "planned") != 0)
			continue;
		if (!e->t[it->target].up) {
			/* Its target went down: another, if one has room. */
			e->t[it->target].planned -= it->memory;
			it->tried[1] = it->target;
			assign(e, it);
			if (it->target < 0) {
				snprintf(it->error, sizeof(it->error), "its "
				    "target went down and no other has room: "
				    "it stays here");
				continue;
			}
		}
		if ((d = domain_by_name(it->name)) == NULL ||
		    strcmp(d->state, "running") != 0) {
			snprintf(it->status, sizeof(it->status), "failed");
			snprintf(it->error, sizeof(it->error), "%s",
			    d == NULL ? "the domain is gone" :
			    "the domain is no longer running here");
			continue;
		}
		/* Lower the others first: the total never passes the cap. */
		evac_rebalance(e, active + 1);
		if ((m = mig_start(d, e->t[it->target].uri,
		    evac_share(e, active + 1))) == NULL) {
			snprintf(it->status, sizeof(it->status), "failed");
			snprintf(it->error, sizeof(it->error), "out of memory");
			continue;
		}
		it->mig = m->id;
		it->attempts++;
		if (it->tried[0] < 0)
			it->tried[0] = it->target;
		snprintf(it->status, sizeof(it->status), "migrating");
		log_info("evacuation %u: %s (%llu MiB) to %s, attempt %u",
		    e->id, it->name, (unsigned long long)(it->memory >> 20),
		    e->t[it->target].uri, it->attempts);
		active++;
	}
	evac_rebalance(e, active);
check_end:
	if (active > 0)
		return;
	/* Nothing runs: what has not started stays here. */
	for (i = 0; i < e->n; i++) {
		it = &e->it[i];
		if (strcmp(it->status, "planned") != 0)
			continue;
		if (strcmp(e->state, "running") == 0)
			continue;	/* cannot be: it would have started */
		e->t[it->target].planned -= it->memory;
		snprintf(it->status, sizeof(it->status), "cancelled");
		snprintf(it->error, sizeof(it->error), "not started (%s): it "
		    "stays here", xd.stopping ? "xmigd is stopping" :
		    "the evacuation was cancelled");
	}
	evac_finish(e, strcmp(e->state, "running") == 0 ? "done" :
	    strcmp(e->state, "cancelling") == 0 ? "cancelled" : "stopped");
}

/* A migration ended (table.c's mig_end): one of ours? */
void
evac_mig_end(const struct migration *m)
{
	struct evac *e = ev_cur;
	struct evac_item *it = NULL;
	unsigned i;
	int failed_t;

	if (e == NULL || e->ended || strcmp(e->state, "querying") == 0)
		return;
	for (i = 0; i < e->n; i++)
		if (e->it[i].mig == m->id &&
		    strcmp(e->it[i].status, "migrating") == 0)
			it = &e->it[i];
	if (it == NULL)
		return;
	it->elapsed_ms += (double)(m->ended - m->started) / 1e6;
	it->bytes += m->bytes;
	it->downtime_ms = m->downtime_ms;
	it->verified = m->verified;
	snprintf(it->status, sizeof(it->status), "%s", m->status);
	snprintf(it->error, sizeof(it->error), "%s", m->error);
	if (strcmp(m->status, "failed") == 0) {
		/*
		 * The target is taken as down (its other domains go
		 * elsewhere, or stay); this one once more on another.
		 */
		failed_t = it->target;
		e->t[failed_t].up = 0;
		snprintf(e->t[failed_t].error, sizeof(e->t[failed_t].error),
		    "migration %u of %s failed: %.200s", m->id, it->name,
		    m->error);
		e->t[failed_t].planned -= it->memory;
		log_warn("evacuation %u: %s to %s failed (%s)%s", e->id,
		    it->name, e->t[failed_t].uri, m->error, it->attempts < 2 &&
		    strcmp(e->state, "running") == 0 ? "; trying another "
		    "target" : "");
		if (it->attempts < 2 && strcmp(e->state, "running") == 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s", it->error);
			assign(e, it);
			if (it->target < 0) {
				snprintf(it->status, sizeof(it->status),
				    "failed");
				snprintf(it->error, sizeof(it->error), "%.200s; "
				    "no other target has room: it stays here",
				    why);
			}
		} else
			it->target = failed_t;
	}
	evac_notify(e);
	evac_schedule(e);
}

/* ---- the queries ------------------------------------------------------- */

static void
evac_planned(struct evac *e)
{
	unsigned i;

	if (e->timer != NULL) {
		event_free(e->timer);
		e->timer = NULL;
	}
	for (i = 0; i < e->nt; i++)
		if (e->t[i].asked && !e->t[i].answered &&
		    e->t[i].error[0] == '\0')
			snprintf(e->t[i].error, sizeof(e->t[i].error), "no "
			    "answer to the query within %d s", EVAC_QUERY_S);
	qsort(e->it, e->n, sizeof(e->it[0]), item_cmp);
	for (i = 0; i < e->n; i++)
		assign(e, &e->it[i]);
	if (e->dry_run) {
		evac_finish(e, "planned");
		return;
	}
	snprintf(e->state, sizeof(e->state), "running");
	evac_notify(e);
	evac_schedule(e);
}

/* "answer URI RC RESULT MAXMEM MESSAGE" from a domain process. */
void
evac_answer(struct domain *d, char *rest)
{
	struct evac *e = ev_cur;
	char *save = NULL, *uri = strtok_r(rest, " ", &save);
	char *rc = strtok_r(NULL, " ", &save);
	char *res = strtok_r(NULL, " ", &save);
	char *mem = strtok_r(NULL, " ", &save);
	const char *msg = save != NULL && *save ? save : "-";
	struct evac_target *t = NULL;
	unsigned i, result;
	int done = 1;

	(void)d;
	if (e == NULL || strcmp(e->state, "querying") != 0 || mem == NULL)
		return;
	for (i = 0; i < e->nt; i++)
		if (strcmp(e->t[i].uri, uri) == 0 && e->t[i].asked &&
		    !e->t[i].answered)
			t = &e->t[i];
	if (t == NULL)
		return;
	t->answered = 1;
	result = (unsigned)strtoul(res, NULL, 10);
	if (atoi(rc) != 0) {
		snprintf(t->error, sizeof(t->error), "%s", msg);
	} else if (result == 0 || result == 4) {
		/* It answered: what it can host now (MEMORY: less than
		 * the domain that asked, maybe enough for others). */
		t->up = 1;
		t->free = strtoull(mem, NULL, 10);
		if (t->free == 0)
			t->free = EVAC_UNLIMITED;
	} else
		snprintf(t->error, sizeof(t->error), "it refuses: %s", msg);
	log_info("evacuation %u: %s %s%s%s", e->id, t->uri, t->up ? "answers" :
	    "is down", t->error[0] ? ": " : "", t->error);
	for (i = 0; i < e->nt; i++)
		if (!e->t[i].answered)
			done = 0;
	if (done)
		evac_planned(e);
}

static void
evac_query_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evac_planned(arg);
}

/* ---- the control API --------------------------------------------------- */

static int
parse_targets(struct evac *e, json_object *v, char *err, size_t errlen)
{
	struct xport_uri u;
	const char *s;
	char buf[4096], *tok, *save = NULL, xerr[256];
	size_t i, n = 0;

	buf[0] = '\0';
	if (json_object_is_type(v, json_type_string))
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
	else if (json_object_is_type(v, json_type_array)) {
		for (i = 0; i < json_object_array_length(v); i++) {
			json_object *x = json_object_array_get_idx(v, i);

			if (!json_object_is_type(x, json_type_string))
				goto bad;
			n = strlen(buf);
			snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "," : "",
			    json_object_get_string(x));
		}
	} else
		goto bad;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		s = tok;
		if (e->nt >= EVAC_TARGETS_MAX) {
			snprintf(err, errlen, "params.to: at most %d targets",
			    EVAC_TARGETS_MAX);
			return -1;
		}
		if (strlen(s) >= sizeof(e->t[0].uri) ||
		    strpbrk(s, " \t\n") != NULL ||
		    xport_parse(s, &u, xerr, sizeof(xerr)) != 0 ||
		    (u.kind != XPORT_TCP && u.kind != XPORT_TLS)) {
			snprintf(err, errlen, "params.to: '%.100s' is not "
			    "tcp:HOST:PORT or tls:HOST:PORT", s);
			return -1;
		}
		for (i = 0; i < e->nt; i++)
			if (strcmp(e->t[i].uri, s) == 0) {
				snprintf(err, errlen, "params.to: %.100s is "
				    "named twice", s);
				return -1;
			}
		snprintf(e->t[e->nt].uri, sizeof(e->t[0].uri), "%s", s);
		e->t[e->nt].free = EVAC_UNLIMITED;
		e->nt++;
	}
	if (e->nt > 0)
		return 0;
bad:
	snprintf(err, errlen, "params.to: the targets, \"URI,URI\" or an array "
	    "of URIs");
	return -1;
}

static void
evac_free(struct evac *e)
{
	if (e == NULL)
		return;
	if (e->timer != NULL)
		event_free(e->timer);
	json_object_put(e->rpc_id);
	free(e->it);
	free(e);
}

void
evac_rpc(struct client *c, json_object *id, json_object *params)
{
	struct evac *e;
	struct domain *d;
	json_object *v;
	char err[300];
	unsigned i, k;
	struct timeval tv = { EVAC_QUERY_S, 0 };

	if (ev_cur != NULL && ev_cur->ended == 0) {
		rpc_error(c, id, RPC_BUSY, "evacuation evac-%u is running",
		    ev_cur->id);
		return;
	}
	if (xd.stopping) {
		rpc_error(c, id, RPC_BUSY, "xmigd is stopping");
		return;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->it = calloc(EVAC_DOMAINS_MAX, sizeof(*e->it))) == NULL) {
		free(e);
		rpc_error(c, id, RPC_FAILED, "out of memory");
		return;
	}
	e->parallel = 2;
	if (params == NULL || !json_object_object_get_ex(params, "to", &v) ||
	    parse_targets(e, v, err, sizeof(err)) != 0) {
		rpc_error(c, id, RPC_PARAMS, "%s", params == NULL ||
		    !json_object_object_get_ex(params, "to", NULL) ?
		    "params.to (the targets) is missing" : err);
		evac_free(e);
		return;
	}
	if (json_object_object_get_ex(params, "parallel", &v)) {
		if (!json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < 1 ||
		    json_object_get_int64(v) > EVAC_PARALLEL_MAX) {
			rpc_error(c, id, RPC_PARAMS, "params.parallel: 1 to %d",
			    EVAC_PARALLEL_MAX);
			evac_free(e);
			return;
		}
		e->parallel = (unsigned)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(params, "bandwidth", &v)) {
		if (json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) >= 0)
			e->bandwidth = (uint64_t)json_object_get_int64(v);
		else if (!json_object_is_type(v, json_type_string) ||
		    parse_size(json_object_get_string(v), &e->bandwidth) != 0) {
			rpc_error(c, id, RPC_PARAMS, "params.bandwidth: bytes "
			    "per second (a number, or a string with K/M/G)");
			evac_free(e);
			return;
		}
	}
	if (json_object_object_get_ex(params, "dry_run", &v))
		e->dry_run = json_object_get_boolean(v);
	for (d = xd.domains; d != NULL && e->n < EVAC_DOMAINS_MAX;
	    d = d->next) {
		struct evac_item *it;

		if (strcmp(d->state, "running") != 0)
			continue;
		it = &e->it[e->n++];
		snprintf(it->name, sizeof(it->name), "%s", d->name);
		it->memory = d->memory;
		it->target = -1;
		it->tried[0] = it->tried[1] = -1;
		it->downtime_ms = -1;
		it->verified = -1;
		snprintf(it->status, sizeof(it->status), "planned");
	}
	evac_free(ev_cur);
	ev_cur = e;
	e->id = ++ev_seq;
	e->started = now_ns();
	e->c = c;
	e->rpc_id = id != NULL ? json_object_get(id) : NULL;
	snprintf(e->state, sizeof(e->state), "querying");
	log_info("evacuation %u: %u domains to %u targets%s", e->id, e->n,
	    e->nt, e->dry_run ? " (dry run)" : "");
	if (e->n == 0) {
		evac_planned(e);
		return;
	}
	/* One QUERY per target, each from a domain of ours (SPEC 13.2). */
	for (i = 0, k = 0; i < e->nt; i++, k = (k + 1) % e->n) {
		d = domain_by_name(e->it[k].name);
		e->t[i].asked = 1;
		domain_send(d, "query %s", e->t[i].uri);
	}
	e->timer = evtimer_new(xd.base, evac_query_timeout, e);
	if (e->timer != NULL)
		evtimer_add(e->timer, &tv);
	evac_notify(e);
}

/* "evac-N" in params.id: 0 and *e, 1 not an evacuation id, -1 answered. */
static int
evac_param(struct client *c, json_object *id, json_object *params,
    struct evac **ep)
{
	json_object *v;
	const char *s;
	char *end;
	unsigned long n;

	if (params == NULL || !json_object_object_get_ex(params, "id", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strncmp(json_object_get_string(v), "evac-", 5) != 0)
		return 1;
	s = json_object_get_string(v) + 5;
	n = strtoul(s, &end, 10);
	if (*end != '\0' || end == s || ev_cur == NULL || ev_cur->id != n) {
		rpc_error(c, id, RPC_NOT_FOUND, "no evacuation %.40s",
		    json_object_get_string(v));
		return -1;
	}
	*ep = ev_cur;
	return 0;
}

int
evac_rpc_status(struct client *c, json_object *id, json_object *params)
{
	struct evac *e;
	int rc = evac_param(c, id, params, &e);

	if (rc == 0)
		rpc_result(c, id, evac_json(e));
	return rc;
}

int
evac_rpc_cancel(struct client *c, json_object *id, json_object *params)
{
	struct evac *e;
	struct migration *m;
	unsigned i;
	int rc = evac_param(c, id, params, &e);

	if (rc != 0)
		return rc;
	if (e->ended) {
		rpc_error(c, id, RPC_FAILED, "evacuation evac-%u has ended (%s)",
		    e->id, e->state);
		return 0;
	}
	log_info("evacuation %u: cancel asked", e->id);
	if (strcmp(e->state, "querying") == 0) {
		for (i = 0; i < e->n; i++)
			snprintf(e->it[i].status, sizeof(e->it[i].status),
			    "cancelled");
		rpc_result(c, id, evac_json(e));
		evac_finish(e, "cancelled");
		return 0;
	}
	snprintf(e->state, sizeof(e->state), "cancelling");
	for (i = 0; i < e->n; i++)
		if (strcmp(e->it[i].status, "migrating") == 0 &&
		    (m = mig_by_id(e->it[i].mig)) != NULL && m->dom != NULL)
			domain_send(m->dom, "cancel");
	rpc_result(c, id, evac_json(e));
	evac_schedule(e);	/* ends it if nothing runs */
	return 0;
}

void
evac_client_gone(struct client *c)
{
	if (ev_cur != NULL && ev_cur->c == c)
		ev_cur->c = NULL;	/* it goes on: cancel stops it */
}

/* ---- the host memory budget (SPEC 18.5) -------------------------------- */

/* Memory of the domains here and reserved for incoming ones, but d's. */
static uint64_t
budget_used(const struct domain *skip)
{
	const struct domain *d;
	uint64_t used = 0;

	for (d = xd.domains; d != NULL; d = d->next)
		if (d != skip && strcmp(d->state, "refusing") != 0 &&
		    strcmp(d->state, "gone") != 0)
			used += d->memory;
	return used;
}

uint64_t
budget_max_memory(void)
{
	uint64_t used, free;

	if (xd.memory_budget == 0)
		return xd.max_memory;
	used = budget_used(NULL);
	free = used < xd.memory_budget ? xd.memory_budget - used : 0;
	if (free == 0)
		free = 1;	/* 0 would say "no limit" */
	return xd.max_memory != 0 && xd.max_memory < free ? xd.max_memory :
	    free;
}

/* "admit BYTES QUERY" from an incoming domain process. */
void
budget_admit(struct domain *d, char *rest)
{
	char *save = NULL, *b = strtok_r(rest, " ", &save);
	char *q = strtok_r(NULL, " ", &save);
	uint64_t bytes, used;

	if (b == NULL || q == NULL || strcmp(d->state, "incoming") != 0) {
		domain_send(d, "admit no not an incoming migration");
		return;
	}
	bytes = strtoull(b, NULL, 10);
	used = budget_used(d);
	if (xd.memory_budget != 0 && (bytes > xd.memory_budget ||
	    used > xd.memory_budget - bytes)) {
		domain_send(d, "admit no the domain has %llu MiB of memory; "
		    "this host's memory budget (%llu MiB) has %llu MiB free",
		    (unsigned long long)(bytes >> 20),
		    (unsigned long long)(xd.memory_budget >> 20),
		    (unsigned long long)(used < xd.memory_budget ?
		    (xd.memory_budget - used) >> 20 : 0));
		log_info("incoming domain of %llu MiB refused: memory budget "
		    "%llu MiB, %llu MiB in use", (unsigned long long)(bytes >>
		    20), (unsigned long long)(xd.memory_budget >> 20),
		    (unsigned long long)(used >> 20));
		return;
	}
	if (atoi(q) == 0)
		d->memory = bytes;	/* reserved until it runs or fails */
	domain_send(d, "admit ok");
}
