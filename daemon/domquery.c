/*
 * domquery.c -- what a domain process of xmigd does for host evacuation
 * and the host memory budget (SPEC 18.1, 18.5): ask a target whether it
 * would take this domain and how much memory it has free (a QUERY, SPEC
 * 13.2), and, on the receiving side, ask the daemon to admit an incoming
 * domain against the budget before the REPLY goes out.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "xmig.h"
#include "xmigd.h"

struct domq {
	const int		*ctl;		/* the domain process's, now */
	struct xmig_send	*s;
	struct send_opts	 so;
	struct xmig_cbs		 cbs;
	char			 uri[400];
	char			*config;	/* our copy: the session's */
};

/* One line to the daemon; LF and CR in the text become spaces. */
static void
domq_say(int ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
domq_say(int ctl, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	size_t i, n;

	if (ctl < 0)
		return;		/* no daemon now: nobody to tell */
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	for (i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)write_all(ctl, line, n);
}

static void
domq_result(void *arg, int rc, const struct xmig_report *r)
{
	struct domq *q = arg;

	domq_say(*q->ctl, "answer %s %d %u %llu %s", q->uri, rc,
	    r->query ? r->peer_result : 7u,
	    (unsigned long long)(r->query ? r->peer_max_memory : 0),
	    r->error[0] ? r->error : "-");
	xmig_send_free(q->s);
	free(q->config);
	free(q);
}

void
domq_query(struct event_base *base, struct backend *b, const char *config,
    const struct xport_tls *tls, const int *ctlp, const char *uri)
{
	struct domq *q;
	int ctl = *ctlp;

	if (b == NULL || (q = calloc(1, sizeof(*q))) == NULL) {
		domq_say(ctl, "answer %s %d 7 0 %s", uri, -ENOMEM,
		    b == NULL ? "no domain here" : "out of memory");
		return;
	}
	q->ctl = ctlp;
	snprintf(q->uri, sizeof(q->uri), "%s", uri);
	send_opts_default(&q->so);
	q->so.query = 1;
	q->so.progress = PROGRESS_NONE;
	q->so.tls = *tls;
	if (config != NULL && (q->config = strdup(config)) == NULL) {
		domq_say(ctl, "answer %s %d 7 0 out of memory", uri, -ENOMEM);
		free(q);
		return;
	}
	q->so.domain_config = q->config;
	q->so.domain_config_len = q->config != NULL ? strlen(q->config) : 0;
	q->cbs.arg = q;
	q->cbs.result = domq_result;
	if ((q->s = xmig_send_new(base, b, uri, &q->so, &q->cbs)) == NULL) {
		domq_say(ctl, "answer %s %d 7 0 out of memory", uri, -ENOMEM);
		free(q->config);
		free(q);
		return;
	}
	xmig_send_start(q->s);
}

/*
 * The daemon's "admit ok" or "admit no MESSAGE" to our "admit BYTES
 * QUERY", read synchronously (the engine waits for the toolstack's
 * answer; the daemon answers at once).  Other lines that come meanwhile
 * go back into cbev's input for the loop.
 */
static int domq_admit_read(int, struct bufferevent *, char *, size_t,
    int *);

int
domq_admit(int ctl, struct bufferevent *cbev, uint64_t bytes, int query,
    char *msg, size_t msglen)
{
	int kept = 0, rc;

	if (ctl < 0) {
		snprintf(msg, msglen, "xmigd is not there to check its memory "
		    "budget");
		return -EAGAIN;
	}
	domq_say(ctl, "admit %llu %d", (unsigned long long)bytes, query);
	rc = domq_admit_read(ctl, cbev, msg, msglen, &kept);
	if (kept)	/* run what came meanwhile, from the loop */
		bufferevent_trigger(cbev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	return rc;
}

static int
domq_admit_read(int ctl, struct bufferevent *cbev, char *msg, size_t msglen,
    int *kept)
{
	char line[1300];
	size_t n = 0;
	struct pollfd p = { .fd = ctl, .events = POLLIN };
	int waited = 0;

	for (;;) {
		ssize_t r;

		if (poll(&p, 1, 1000) <= 0) {
			if (++waited < 10)
				continue;
			snprintf(msg, msglen, "xmigd did not answer the memory "
			    "budget check");
			return -ETIMEDOUT;
		}
		r = read(ctl, line + n, 1);
		if (r <= 0) {
			snprintf(msg, msglen, "xmigd went away");
			return -EIO;
		}
		if (line[n] != '\n') {
			if (++n >= sizeof(line) - 1)
				n = 0;	/* cannot be ours: drop */
			continue;
		}
		line[n] = '\0';
		if (strcmp(line, "admit ok") == 0)
			return 0;
		if (strncmp(line, "admit no ", 9) == 0) {
			snprintf(msg, msglen, "%s", line + 9);
			return -ENOSPC;
		}
		/* A command for the loop (quit, cancel): keep it for later. */
		line[n] = '\n';
		if (cbev != NULL &&
		    evbuffer_add(bufferevent_get_input(cbev), line, n + 1) == 0)
			*kept = 1;
		n = 0;
	}
}
