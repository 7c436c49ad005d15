/*
 * test-toolstack.c -- the engine's target toolstack (struct recv_toolstack,
 * SPEC 12.4) without Xen: a recording toolstack on a sim target.  It checks
 * the order of the calls (config, create, finish, start; abort on any
 * failure), that XMIG_DOMAIN_CONFIG reaches it intact, and that a refusal
 * from config() comes in the REPLY, before any memory is sent (a failure to
 * create the domain comes later: creating is slow, so it happens after the
 * REPLY, when the first record needs the domain).
 *
 * The receiving side runs in a process of its own through exec: (this
 * program with --recv LOG MODE), as migrate-receive - runs over ssh.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig.h"
#include "run.h"
#include "tap.h"

static const char json[] = "{\"c_info\":{\"name\":\"web1\",\"type\":\"pvh\"}}";

/* ---- the recording toolstack (receiving side) ------------------------- */

struct rec_ts {
	FILE		*log;
	const char	*mode;		/* ok, nomem, failcreate */
};

static int
r_config(void *arg, uint32_t kind, const char *text, size_t len, char *msg,
    size_t msglen)
{
	struct rec_ts *t = arg;

	fprintf(t->log, "config %u %zu %s\n", kind, len,
	    len == sizeof(json) - 1 && memcmp(text, json, len) == 0 ?
	    "same" : "different");
	if (strcmp(t->mode, "nomem") == 0) {
		snprintf(msg, msglen, "domain web1 needs 9 MiB; this host has "
		    "1 MiB free");
		return -ENOMEM;
	}
	return 0;
}

static int
r_create(void *arg, const struct domain_info *info, char *spec,
    size_t speclen, char *msg, size_t msglen)
{
	struct rec_ts *t = arg;

	fprintf(t->log, "create %llu\n", (unsigned long long)info->nr_pages);
	if (strcmp(t->mode, "failcreate") == 0) {
		snprintf(msg, msglen, "no room at the inn");
		return -EIO;
	}
	snprintf(spec, speclen, "%s", "");
	return 0;
}

static int
r_finish(void *arg, struct backend *b, char *msg, size_t msglen)
{
	struct rec_ts *t = arg;

	(void)b, (void)msg, (void)msglen;
	fprintf(t->log, "finish\n");
	return 0;
}

static int
r_start(void *arg, char *msg, size_t msglen)
{
	struct rec_ts *t = arg;

	(void)msg, (void)msglen;
	fprintf(t->log, "start\n");
	return 0;
}

static void
r_abort(void *arg)
{
	struct rec_ts *t = arg;

	fprintf(t->log, "abort\n");
}

static int
receive(const char *source, const char *log, const char *mode)
{
	struct rec_ts t;
	struct recv_toolstack ts = {
		.arg = &t, .config = r_config, .create = r_create,
		.finish = r_finish, .start = r_start, .abort = r_abort,
	};
	struct recv_opts o;
	int rc;

	if ((t.log = fopen(log, "w")) == NULL)
		return 2;
	setvbuf(t.log, NULL, _IOLBF, 0);
	t.mode = mode;
	recv_opts_default(&o);
	o.backend = "sim";
	o.progress = PROGRESS_NONE;
	o.once = 1;
	o.toolstack = &ts;
	rc = recv_serve(source, &o);
	fclose(t.log);
	return rc == 0 ? 0 : 1;
}

/* ---- the sending side ---------------------------------------------------- */

static char self[PATH_MAX], dir[] = "/tmp/xmig-ts.XXXXXX";

static char *
slurp(const char *path)
{
	static char buf[4096];
	FILE *f;
	size_t n;

	buf[0] = '\0';
	if ((f = fopen(path, "r")) == NULL)
		return buf;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Send a 4 MiB sim domain to dest; returns send_domain's rc. */
static int
send_to(const char *dest, int with_config, enum xp_dialect d,
    struct xmig_report *r)
{
	const struct backend_ops *ops;
	struct backend *b = NULL;
	struct send_opts o;
	const char *spec;
	int rc;

	ops = backend_lookup("sim:mem=4M,vcpus=1,dirty=0", &spec);
	if (ops == NULL || ops->open_source(spec, &b) != 0)
		return -EIO;
	send_opts_default(&o);
	o.dialect = d;
	o.progress = PROGRESS_NONE;
	o.negotiate_timeout_ms = 20000;	/* a loaded machine */
	o.require_backchannel = strncmp(dest, "exec:", 5) == 0;
	if (with_config) {
		o.domain_config = json;
		o.domain_config_len = sizeof(json) - 1;
	}
	memset(r, 0, sizeof(*r));
	rc = send_domain(b, dest, &o, r);
	b->ops->close(b);
	return rc;
}

static void
over_exec(const char *what, const char *mode, int with_config, int want_ok,
    const char *want_log, const char *want_err)
{
	struct xmig_report r;
	char dest[PATH_MAX + 128], log[sizeof(dir) + 32];
	const char *got;
	int rc;

	snprintf(log, sizeof(log), "%s/%s.log", dir, mode);
	snprintf(dest, sizeof(dest), "exec:'%s' --recv - '%s' %s", self, log,
	    mode);
	rc = send_to(dest, with_config, XP_DRAFTB, &r);
	CHECK((rc == 0) == want_ok, "%s: send rc %d (%s)", what, rc, r.error);
	got = slurp(log);
	CHECK(strcmp(got, want_log) == 0, "%s: calls\n%s\nwant\n%s", what,
	    got, want_log);
	if (want_err != NULL)
		CHECK(strstr(r.error, want_err) != NULL, "%s: error \"%s\" lacks "
		    "\"%s\"", what, r.error, want_err);
	if (!want_ok && strcmp(mode, "failcreate") != 0)
		CHECK(r.pages_sent == 0, "%s: %llu pages sent before the "
		    "refusal", what, (unsigned long long)r.pages_sent);
}

int
main(int argc, char **argv)
{
	struct xmig_report r;
	char file[sizeof(dir) + 32], log[sizeof(dir) + 32];
	const char *got;
	ssize_t n;

	/* A receiver that fails closes on us mid-write: EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && strcmp(argv[1], "--recv") == 0)
		return receive(argv[2], argv[3], argv[4]);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || mkdtemp(dir) == NULL) {
		perror("test-toolstack");
		return 2;
	}
	self[n] = '\0';

	over_exec("handover", "ok", 1, 1,
	    "config 1 39 same\ncreate 1024\nfinish\nstart\n", NULL);
	over_exec("no memory", "nomem", 1, 0,
	    "config 1 39 same\nabort\n", "needs 9 MiB; this host has 1 MiB "
	    "free");
	over_exec("no configuration", "ok", 0, 0,
	    "abort\n", "sends no domain configuration");
	/*
	 * The sender is mid-stream when creation fails, and over exec: its
	 * write fails (EPIPE) before it reads the receiver's XMIG_ERROR in
	 * about one run in five (known, not fixed: the reason is then
	 * "Broken pipe"), so only the failure and the calls are checked.
	 */
	over_exec("create fails", "failcreate", 1, 0,
	    "config 1 39 same\ncreate 1024\nabort\n", NULL);

	/* One-way through a draft-B file: the same order, started at END. */
	snprintf(file, sizeof(file), "%s/d.xmig", dir);
	snprintf(log, sizeof(log), "%s/file.log", dir);
	{
		char dest[sizeof(file) + 8];

		snprintf(dest, sizeof(dest), "file:%s", file);
		CHECK(send_to(dest, 1, XP_DRAFTB, &r) == 0, "file save: %s",
		    r.error);
		snprintf(dest, sizeof(dest), "file:%s", file);
		CHECK(receive(dest, log, "ok") == 0, "file restore");
		got = slurp(log);
		CHECK(strcmp(got, "config 1 39 same\ncreate 0\nfinish\n"
		    "start\n") == 0, "file: calls\n%s", got);

		/* A Xen-dialect file never carries it: refused, aborted. */
		CHECK(send_to(dest, 1, XP_XEN, &r) == 0, "xen file save: %s",
		    r.error);
		CHECK(receive(dest, log, "ok") != 0, "xen file without "
		    "configuration refused");
		got = slurp(log);
		CHECK(strcmp(got, "abort\n") == 0, "xen file: calls\n%s", got);
	}
	unlink(file);
	snprintf(log, sizeof(log), "rm -rf '%s'", dir);
	if (system(log) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return tap_done();
}
