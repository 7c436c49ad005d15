/*
 * metrics.c -- xmigd's metrics in Prometheus text format (version 0.0.4):
 * the text the control API's `metrics` method returns, and the same on a
 * loopback TCP port of its own (--metrics tcp:127.0.0.1:PORT, plain HTTP
 * GET /metrics through libevent's evhttp).
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon.h"
#include "xmig.h"
#include "xmigd.h"

static struct evhttp *metrics_http;

/* The metrics into b (appended). */
static void
metrics_add(struct evbuffer *b)
{
	unsigned in, out = active_migrations(&in), i;
	unsigned long cum = 0, ndom = 0;
	uint64_t hosted = 0;
	struct domain *d;

	for (d = xd.domains; d != NULL; d = d->next) {
		if (strcmp(d->state, "running") == 0 ||
		    strcmp(d->state, "migrating") == 0 ||
		    strcmp(d->state, "paused") == 0)
			ndom++;
		if (strcmp(d->state, "refusing") != 0 &&
		    strcmp(d->state, "gone") != 0)
			hosted += d->memory;
	}
	evbuffer_add_printf(b, "# HELP xmigd_migrations_total Outgoing "
	    "migrations that ended, by status.\n# TYPE xmigd_migrations_total "
	    "counter\n");
	for (i = 0; i < 4; i++)
		evbuffer_add_printf(b, "xmigd_migrations_total{status=\"%s\"} "
		    "%lu\n", xmigd_status_names[i], xd.by_status[i]);
	evbuffer_add_printf(b, "# HELP xmigd_incoming_total Incoming "
	    "migrations by result.\n# TYPE xmigd_incoming_total counter\n"
	    "xmigd_incoming_total{status=\"completed\"} %lu\n"
	    "xmigd_incoming_total{status=\"failed\"} %lu\n",
	    xd.incoming_total, xd.incoming_failed);
	evbuffer_add_printf(b, "# HELP xmigd_sent_bytes_total Octets sent by "
	    "outgoing migrations that ended.\n# TYPE xmigd_sent_bytes_total "
	    "counter\nxmigd_sent_bytes_total %llu\n",
	    (unsigned long long)xd.bytes_total);
	evbuffer_add_printf(b, "# HELP xmigd_downtime_ms Downtime of outgoing "
	    "migrations.\n# TYPE xmigd_downtime_ms histogram\n");
	for (i = 0; i < 7; i++) {
		cum += xd.dt_bucket[i];
		if (i < 6)
			evbuffer_add_printf(b, "xmigd_downtime_ms_bucket{le=\""
			    "%g\"} %lu\n", xmigd_dt_bounds[i], cum);
		else
			evbuffer_add_printf(b, "xmigd_downtime_ms_bucket{le=\""
			    "+Inf\"} %lu\n", cum);
	}
	evbuffer_add_printf(b, "xmigd_downtime_ms_sum %g\n"
	    "xmigd_downtime_ms_count %lu\n", xd.dt_sum, xd.dt_count);
	evbuffer_add_printf(b, "# HELP xmigd_active_sessions Migrations in "
	    "progress.\n# TYPE xmigd_active_sessions gauge\n"
	    "xmigd_active_sessions{direction=\"outgoing\"} %u\n"
	    "xmigd_active_sessions{direction=\"incoming\"} %u\n"
	    "# HELP xmigd_domains Domains hosted.\n# TYPE xmigd_domains gauge\n"
	    "xmigd_domains %lu\n", out, in, ndom);
	evbuffer_add_printf(b, "# HELP xmigd_memory_bytes Guest memory hosted "
	    "here or admitted for incoming domains.\n# TYPE xmigd_memory_bytes "
	    "gauge\nxmigd_memory_bytes %llu\n"
	    "# HELP xmigd_memory_budget_bytes The host memory budget (0: "
	    "none).\n# TYPE xmigd_memory_budget_bytes gauge\n"
	    "xmigd_memory_budget_bytes %llu\n", (unsigned long long)hosted,
	    (unsigned long long)xd.memory_budget);
}

/* The metrics as one string (the caller frees), NULL when out of memory. */
char *
metrics_text(void)
{
	struct evbuffer *b = evbuffer_new();
	char *text = NULL;
	size_t n;

	if (b == NULL)
		return NULL;
	metrics_add(b);
	n = evbuffer_get_length(b);
	if ((text = malloc(n + 1)) != NULL) {
		evbuffer_remove(b, text, n);
		text[n] = '\0';
	}
	evbuffer_free(b);
	return text;
}

/* ---- the HTTP endpoint ------------------------------------------------- */

static void
metrics_get(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		metrics_add(b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
metrics_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics here");
}

/*
 * Serve GET /metrics on uri, "tcp:ADDR:PORT" with a loopback ADDR (the
 * metrics are for this host's collector; anything further goes through
 * it).  0, or -1 after logging why.
 */
int
metrics_listen(const char *uri)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	struct in6_addr a6;
	struct in_addr a4;
	socklen_t len = sizeof(ss);
	char host[128], *colon, *end;
	unsigned long port;
	unsigned p;

	if (metrics_http != NULL) {
		log_err("--metrics: given twice");
		return -1;
	}
	if (strncmp(uri, "tcp:", 4) != 0 || strlen(uri + 4) >= sizeof(host)) {
		log_err("--metrics %s: expected tcp:127.0.0.1:PORT", uri);
		return -1;
	}
	snprintf(host, sizeof(host), "%s", uri + 4);
	if ((colon = strrchr(host, ':')) == NULL) {
		log_err("--metrics %s: expected tcp:127.0.0.1:PORT", uri);
		return -1;
	}
	*colon = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port > 65535) {
		log_err("--metrics %s: bad port", uri);
		return -1;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (!((inet_pton(AF_INET, host, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127) ||
	    (inet_pton(AF_INET6, host, &a6) == 1 &&
	    IN6_IS_ADDR_LOOPBACK(&a6)))) {
		log_err("--metrics %s: the metrics are served on a loopback "
		    "address only (127.0.0.1, ::1)", uri);
		return -1;
	}
	if ((metrics_http = evhttp_new(xd.base)) == NULL) {
		log_err("--metrics: out of memory");
		return -1;
	}
	evhttp_set_allowed_methods(metrics_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(metrics_http, 8192);
	evhttp_set_max_body_size(metrics_http, 0);
	evhttp_set_timeout(metrics_http, 10);
	evhttp_set_cb(metrics_http, "/metrics", metrics_get, NULL);
	evhttp_set_gencb(metrics_http, metrics_other, NULL);
	if ((bs = evhttp_bind_socket_with_handle(metrics_http, host,
	    (uint16_t)port)) == NULL) {
		log_err("--metrics %s: cannot listen: %s", uri,
		    strerror(errno));
		evhttp_free(metrics_http);
		metrics_http = NULL;
		return -1;
	}
	p = (unsigned)port;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	    &len) == 0)
		p = ntohs(ss.ss_family == AF_INET ?
		    ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port);
	log_info("metrics on http://%s%s%s:%u/metrics",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	    p);
	return 0;
}

void
metrics_close(void)
{
	if (metrics_http != NULL)
		evhttp_free(metrics_http);
	metrics_http = NULL;
}
