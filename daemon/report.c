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

#include <json-c/json.h>

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

/* v with that many decimals, in the JSON as printf writes it. */
static json_object *
json_fixed(int decimals, double v)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

void
report_print_json(const struct xmig_report *r, FILE *out)
{
	json_object *o = json_object_new_object();
	char mem[65], vcpu[65];
	struct rusage ru;

	hex_encode(r->memory_digest, digest_len(r->memory_alg), mem);
	hex_encode(r->vcpu_sha256, 32, vcpu);
	json_object_object_add(o, "role", json_object_new_string(r->role));
	json_object_object_add(o, "status", json_object_new_string(r->status));
	if (r->error[0])
		json_object_object_add(o, "error",
		    json_object_new_string(r->error));
	if (r->dialect)
		json_object_object_add(o, "dialect",
		    json_object_new_string(r->dialect));
	json_object_object_add(o, "digest", r->have_memory ?
	    json_object_new_string(digest_name(r->memory_alg)) : NULL);
	json_object_object_add(o, "memory_digest", r->have_memory ?
	    json_object_new_string(mem) : NULL);
	json_object_object_add(o, "vcpu_sha256", r->have_vcpu ?
	    json_object_new_string(vcpu) : NULL);
	json_object_object_add(o, "nr_pages", json_object_new_uint64(
	    r->nr_pages));
	json_object_object_add(o, "bytes", json_object_new_uint64(r->bytes));
	json_object_object_add(o, "pages_sent", json_object_new_uint64(
	    r->pages_sent));
	json_object_object_add(o, "iterations", r->iterations ?
	    json_object_new_uint64(r->iterations) : NULL);
	json_object_object_add(o, "downtime_ms", r->have_downtime ?
	    json_fixed(3, r->downtime_ms) : NULL);
	json_object_object_add(o, "backchannel", json_object_new_boolean(
	    r->backchannel));
	if (r->streams > 0)
		json_object_object_add(o, "streams",
		    json_object_new_uint64(r->streams));
	if (r->verified >= 0)
		json_object_object_add(o, "verified",
		    json_object_new_boolean(r->verified));
	json_object_object_add(o, "zero_pages", json_object_new_uint64(
	    r->zero_pages));
	json_object_object_add(o, "page_octets", json_object_new_uint64(
	    r->page_octets));
	json_object_object_add(o, "page_wire_octets", json_object_new_uint64(
	    r->page_wire));
	if (r->throttle_max != 0)
		json_object_object_add(o, "throttle_max_pct",
		    json_object_new_uint64(r->throttle_max));
	if (r->compression != NULL) {
		json_object_object_add(o, "compression",
		    json_object_new_string(r->compression));
		json_object_object_add(o, "page_compressed_octets",
		    json_object_new_uint64(r->page_compressed));
	}
	if (r->delta) {
		json_object_object_add(o, "delta_pages",
		    json_object_new_uint64(r->delta_pages));
		json_object_object_add(o, "delta_octets",
		    json_object_new_uint64(r->delta_octets));
		if (strcmp(r->role, "send") == 0)
			json_object_object_add(o, "delta_saved_octets",
			    json_object_new_uint64(r->delta_saved_octets));
	}
	if (r->replicated)
		json_object_object_add(o, "replicated",
		    json_object_new_boolean(1));
	if (r->replicated && strcmp(r->role, "send") == 0) {
		json_object_object_add(o, "epochs_acked",
		    json_object_new_uint64(r->epochs_acked));
		json_object_object_add(o, "outputs_released",
		    json_object_new_uint64(r->outputs_released));
	}
	if (r->have_epoch)
		json_object_object_add(o, "epoch",
		    json_object_new_uint64(r->epoch));
	if (r->have_epoch && r->outputs_in_state >= 0)
		json_object_object_add(o, "outputs_in_state",
		    json_object_new_int64(r->outputs_in_state));
	if (r->replicated && r->workload_pages >= 0 &&
	    strcmp(r->role, "send") == 0)
		json_object_object_add(o, "workload_pages",
		    json_object_new_int64(r->workload_pages));
	if (r->failover_at_ms > 0) {
		json_object_object_add(o, "failover_at_ms",
		    json_fixed(3, r->failover_at_ms));
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		json_object_object_add(o, "peak_rss_kb",
		    json_object_new_int64(ru.ru_maxrss));
	json_object_object_add(o, "duration_ms", json_fixed(3,
	    r->duration_ms));
	json_object_object_add(o, "throughput_mbps", json_fixed(1,
	    r->throughput_mbps));
	fprintf(out, "%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
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
		hex_encode(ci->memory_digest, digest_len(ci->memory_alg), mem);
		fprintf(out, "{\"event\":\"epoch\",\"epoch\":%llu,"
		    "\"outputs\":%llu,\"pause_ms\":%.3f,\"dirty_pages\":%llu,"
		    "\"digest\":\"%s\",\"memory_digest\":\"%s\"}\n",
		    (unsigned long long)ci->epoch,
		    (unsigned long long)ci->outputs, ci->pause_ms,
		    (unsigned long long)ci->dirty_pages,
		    digest_name(ci->memory_alg), mem);
	} else
		return;
	fflush(out);
}
