/*
 * report.c -- what the commands print about a migration: the progress line
 * (a rewritten line on a terminal, JSON lines for a toolstack with
 * --progress json, nothing otherwise) from the figures a session gives,
 * and the JSON report from its struct xmig_report.
 */
#include "config.h"

#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig.h"
#include "run.h"

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

/* The session's progress callback for a struct progress (arg). */
void
progress_cb(void *arg, const struct progress_info *pi)
{
	struct progress *p = arg;

	/* The session gives them at most every 250 ms already. */
	if (pi->final)
		progress_end(p);
	progress_update(p, pi, 1);
	if (pi->final)
		progress_end(p);
}

void
report_print_json(const struct xmig_report *r, FILE *out)
{
	char mem[65], vcpu[65], err[1100];

	hex_encode(r->memory_sha256, 32, mem);
	hex_encode(r->vcpu_sha256, 32, vcpu);
	json_escape(r->error, err, sizeof(err));
	fprintf(out, "{\"role\":\"%s\",\"status\":\"%s\"", r->role, r->status);
	if (r->error[0])
		fprintf(out, ",\"error\":\"%s\"", err);
	if (r->dialect)
		fprintf(out, ",\"dialect\":\"%s\"", r->dialect);
	if (r->have_memory)
		fprintf(out, ",\"memory_sha256\":\"%s\"", mem);
	else
		fprintf(out, ",\"memory_sha256\":null");
	if (r->have_vcpu)
		fprintf(out, ",\"vcpu_sha256\":\"%s\"", vcpu);
	else
		fprintf(out, ",\"vcpu_sha256\":null");
	fprintf(out, ",\"nr_pages\":%llu,\"bytes\":%llu,\"pages_sent\":%llu",
	    (unsigned long long)r->nr_pages, (unsigned long long)r->bytes,
	    (unsigned long long)r->pages_sent);
	if (r->iterations)
		fprintf(out, ",\"iterations\":%u", r->iterations);
	else
		fprintf(out, ",\"iterations\":null");
	if (r->have_downtime)
		fprintf(out, ",\"downtime_ms\":%.3f", r->downtime_ms);
	else
		fprintf(out, ",\"downtime_ms\":null");
	fprintf(out, ",\"backchannel\":%s", r->backchannel ? "true" : "false");
	if (r->verified >= 0)
		fprintf(out, ",\"verified\":%s", r->verified ? "true" : "false");
	fprintf(out, ",\"zero_pages\":%llu,\"page_octets\":%llu,"
	    "\"page_wire_octets\":%llu",
	    (unsigned long long)r->zero_pages,
	    (unsigned long long)r->page_octets,
	    (unsigned long long)r->page_wire);
	if (r->replicated)
		fprintf(out, ",\"replicated\":true");
	if (r->replicated && strcmp(r->role, "send") == 0)
		fprintf(out, ",\"epochs_acked\":%llu,\"outputs_released\":%llu",
		    (unsigned long long)r->epochs_acked,
		    (unsigned long long)r->outputs_released);
	if (r->have_epoch)
		fprintf(out, ",\"epoch\":%llu", (unsigned long long)r->epoch);
	if (r->have_epoch && r->outputs_in_state >= 0)
		fprintf(out, ",\"outputs_in_state\":%lld",
		    (long long)r->outputs_in_state);
	if (r->replicated && r->workload_pages >= 0 &&
	    strcmp(r->role, "send") == 0)
		fprintf(out, ",\"workload_pages\":%lld",
		    (long long)r->workload_pages);
	if (r->failover_at_ms > 0)
		fprintf(out, ",\"failover_at_ms\":%.3f", r->failover_at_ms);
	{
		struct rusage ru;

		if (getrusage(RUSAGE_SELF, &ru) == 0)
			fprintf(out, ",\"peak_rss_kb\":%ld", ru.ru_maxrss);
	}
	fprintf(out, ",\"duration_ms\":%.3f,\"throughput_mbps\":%.1f}\n",
	    r->duration_ms, r->throughput_mbps);
	fflush(out);
}

void
report_checkpoint_json(const struct checkpoint_info *ci, FILE *out)
{
	char mem[65];

	if (ci->event == CKPT_ACKED)
		fprintf(out, "{\"event\":\"checkpoint\",\"epoch\":%llu,"
		    "\"outputs_released\":%llu,\"pause_ms\":%.3f,"
		    "\"dirty_pages\":%llu,\"octets\":%llu,\"t_ms\":%.1f,"
		    "\"workload_pages\":%lld}\n",
		    (unsigned long long)ci->epoch,
		    (unsigned long long)ci->outputs, ci->pause_ms,
		    (unsigned long long)ci->dirty_pages,
		    (unsigned long long)ci->octets, ci->t_ms,
		    (long long)ci->workload_pages);
	else if (ci->have_digest) {
		hex_encode(ci->memory_sha256, 32, mem);
		fprintf(out, "{\"event\":\"epoch\",\"epoch\":%llu,"
		    "\"outputs\":%llu,\"pause_ms\":%.3f,\"dirty_pages\":%llu,"
		    "\"memory_sha256\":\"%s\"}\n", (unsigned long long)ci->epoch,
		    (unsigned long long)ci->outputs, ci->pause_ms,
		    (unsigned long long)ci->dirty_pages, mem);
	} else
		return;
	fflush(out);
}
