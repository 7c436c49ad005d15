/*
 * progress.c -- the progress line: a rewritten line on a terminal, JSON
 * lines for a toolstack (--progress json), nothing otherwise.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "xmig.h"

#define PROGRESS_INTERVAL_NS	250000000ULL

struct progress {
	enum progress_mode	 mode;
	FILE			*out;
	uint64_t		 last;
	int			 dirty_line;
};

struct progress *
progress_new(enum progress_mode mode, FILE *out)
{
	struct progress *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if (mode == PROGRESS_AUTO)
		mode = isatty(fileno(out)) ? PROGRESS_TTY : PROGRESS_NONE;
	p->mode = mode;
	p->out = out;
	return p;
}

static double
mib(uint64_t v)
{
	return (double)v / (1024.0 * 1024.0);
}

void
progress_update(struct progress *p, const struct progress_info *pi, int force)
{
	uint64_t now;

	if (p == NULL || p->mode == PROGRESS_NONE)
		return;
	now = now_ns();
	if (!force && now - p->last < PROGRESS_INTERVAL_NS)
		return;
	p->last = now;
	if (p->mode == PROGRESS_JSON) {
		fprintf(p->out, "{\"progress\":\"%s\",\"phase\":\"%s\","
		    "\"pass\":%u,\"bytes\":%llu,\"pages\":%llu,"
		    "\"remaining_bytes\":%llu,\"dirty_rate_bps\":%.0f,"
		    "\"throughput_bps\":%.0f,\"expected_downtime_ms\":%.1f}\n",
		    pi->role, pi->phase, pi->pass,
		    (unsigned long long)pi->bytes,
		    (unsigned long long)pi->pages,
		    (unsigned long long)pi->remaining, pi->dirty_rate,
		    pi->throughput, pi->expected_downtime_ms);
		fflush(p->out);
		return;
	}
	if (pi->remaining || pi->dirty_rate > 0 || pi->pass > 0)
		fprintf(p->out, "\r%s: pass %u (%s): sent %.1f MiB, "
		    "remaining %.1f MiB, dirty %.1f MiB/s, %.1f MiB/s, "
		    "expected downtime %.0f ms\033[K", pi->role, pi->pass,
		    pi->phase, mib(pi->bytes), mib(pi->remaining),
		    mib((uint64_t)pi->dirty_rate), mib((uint64_t)pi->throughput),
		    pi->expected_downtime_ms);
	else
		fprintf(p->out, "\r%s: %s: %.1f MiB, %llu pages, %.1f MiB/s"
		    "\033[K", pi->role, pi->phase, mib(pi->bytes),
		    (unsigned long long)pi->pages,
		    mib((uint64_t)pi->throughput));
	fflush(p->out);
	p->dirty_line = 1;
}

void
progress_end(struct progress *p)
{
	if (p != NULL && p->mode == PROGRESS_TTY && p->dirty_line) {
		fputc('\n', p->out);
		fflush(p->out);
		p->dirty_line = 0;
	}
}

void
progress_free(struct progress *p)
{
	progress_end(p);
	free(p);
}
