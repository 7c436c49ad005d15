/*
 * test-pause.c -- the sender's threaded pause (b->pause_threaded):
 * a backend whose pause is slow (Xen: the guest's cooperative suspend) is
 * paused on a thread of its own while the last live pass drains.  A sim
 * domain with a running workload, wrapped so that its pause takes 400 ms
 * and says it may run on another thread, is sent live through a pipe to
 * recv_fd in a child.  Checked: the pause ran on another thread and began
 * with octets still queued, live passes went on beside it; the target's
 * memory equals the source's (no page dirtied during the overlap is lost,
 * nor any page the pass under way had not queued when the pause ended);
 * a pause that fails, and a
 * cancel that arrives while the pause runs, leave the source running and
 * the thread collected.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xmig.h"
#include "run.h"
#include "tap.h"
#include "report-digest.h"

static struct backend_ops slow_ops;
static pthread_t main_thr;
static int pause_other_thread;	/* a pause ran off the main thread */
static int pause_fail;		/* the next pause fails */
static int cancel_wfd = -1;	/* written from inside the pause */
static long queued_at_pause = -1;
static int passes_while_pausing;	/* live passes beside the pause */

static int
slow_pause(struct backend *b)
{
	struct timespec ts = { 0, 400 * 1000000L };

	if (!pthread_equal(pthread_self(), main_thr))
		pause_other_thread = 1;
	if (cancel_wfd >= 0 && write(cancel_wfd, "c", 1) != 1)
		return -EIO;
	nanosleep(&ts, NULL);
	if (pause_fail) {
		backend_seterr(b, "the test's pause fails");
		return -EIO;
	}
	return sim_ops.pause(b);
}

/* The sender's debug line "pausing the source while N octets drain". */
static void
log_cb(int level, const char *msg)
{
	const char *p = strstr(msg, "pausing the source while ");

	(void)level;
	if (getenv("XMIG_TEST_DEBUG") != NULL)
		fprintf(stderr, "# %s\n", msg);
	if (p != NULL)
		queued_at_pause = strtol(p + 25, NULL, 10);
	if (strstr(msg, "queued while the source pauses") != NULL)
		passes_while_pausing++;
}


/* A child restores from the pipe into a sim target; report to rpath. */
static pid_t
receiver(int rfd, int wfd, const char *rpath)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct recv_opts o;
		FILE *rf = fopen(rpath, "w");

		close(wfd);

		recv_opts_default(&o);
		o.progress = PROGRESS_NONE;
		o.keep_paused = 1;
		o.report_json = 1;
		o.report_out = rf;
		_exit(recv_fd(rfd, &o) == 0 ? 0 : 1);
	}
	return pid;
}

/*
 * Collect the receiver; one that has not ended within a minute of the
 * sender's end is stuck, and is killed so that the test fails instead of
 * hanging.
 */
static void
reap(pid_t pid, int *status)
{
	struct timespec ts = { 0, 10 * 1000000L };
	int i;

	for (i = 0; i < 6000; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return;
		nanosleep(&ts, NULL);
	}
	CHECK(0, "the receiver (pid %d) is stuck; killed", (int)pid);
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
}

static int
send_once(const char *rpath, int cancel_rfd, struct xmig_report *r,
    struct backend **bp, pid_t *pidp)
{
	struct send_opts so;
	struct backend *b = NULL;
	char dest[64];
	int pfd[2], rc;

	/*
	 * The receiver forks before the source exists: the sim's workload
	 * threads could hold a lock (the sanitizers' allocator, OpenSSL's)
	 * at fork time, which the child would then wait for forever.
	 */
	if (pipe(pfd) != 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	*pidp = receiver(pfd[0], pfd[1], rpath);
	close(pfd[0]);
	rc = sim_ops.open_source("mem=32M,vcpus=2,dirty=16M,hot=8M,"
	    "mix=realistic", &b);
	CHECK(rc == 0, "sim source: %s", backend_errmsg(NULL));
	if (rc != 0) {
		close(pfd[1]);
		return rc;
	}
	b->ops = &slow_ops;
	b->pause_threaded = 1;
	send_opts_default(&so);
	so.progress = PROGRESS_NONE;
	so.dialect = XP_XEN;
	so.checksum = 0;
	so.max_iterations = 3;
	so.downtime_limit_ms = 1;
	so.cancel_fd = cancel_rfd;
	snprintf(dest, sizeof(dest), "file:/proc/self/fd/%d", pfd[1]);
	rc = send_domain(b, dest, &so, r);
	close(pfd[1]);
	b->ops = &sim_ops;
	*bp = b;
	/* A pipe: delivered, and nobody can confirm it. */
	return rc == -EINPROGRESS && strcmp(r->status, "unconfirmed") == 0 ?
	    0 : rc;
}

int
main(void)
{
	char dir[] = "/tmp/xmig-pause-XXXXXX", rpath[600], want[65], got[65];
	const char *st;
	struct xmig_report r;
	struct backend *b;
	int rc, status, cp[2];
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	main_thr = pthread_self();
	slow_ops = sim_ops;
	slow_ops.pause = slow_pause;
	xmig_log_set(log_cb, XMIG_LOG_DEBUG);
	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return tap_done();
	}
	snprintf(rpath, sizeof(rpath), "%s/report", dir);

	/* A live migration: the pause overlaps the drain, nothing lost. */
	memset(&r, 0, sizeof(r));
	rc = send_once(rpath, -1, &r, &b, &pid);
	CHECK(rc == 0, "send_domain: %d %s", rc, r.error);
	CHECK(pause_other_thread, "the pause ran on a thread of its own");
	CHECK(queued_at_pause > 0, "the pause began with %ld octets still "
	    "queued", queued_at_pause);
	CHECK(r.have_downtime && r.iterations >= 2, "live: %u passes, "
	    "downtime measured", r.iterations);
	CHECK(passes_while_pausing > 0, "%d live pass(es) ended while the "
	    "source paused", passes_while_pausing);
	reap(pid, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the receiver "
	    "restored the domain");
	hex_encode(r.memory_digest, digest_len(r.memory_alg), want);
	report_digest(rpath, got);
	CHECK(r.have_memory && strcmp(got, want) == 0, "memory digest %s, "
	    "the sender's %s", got, want);
	sim_ops.close(b);

	/* The pause fails: the sender fails and the source runs on. */
	pause_fail = 1;
	pause_other_thread = 0;
	memset(&r, 0, sizeof(r));
	rc = send_once(rpath, -1, &r, &b, &pid);
	CHECK(rc != 0 && strstr(r.error, "pausing the domain: the test's "
	    "pause fails") != NULL, "a failed pause fails the migration: %d "
	    "%s", rc, r.error);
	CHECK(pause_other_thread, "that pause ran on its thread too");
	st = sim_run_state(b);
	CHECK(st != NULL && strcmp(st, "running") == 0, "the source runs "
	    "(%s)", st ? st : "?");
	sim_ops.close(b);
	reap(pid, &status);
	CHECK(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "the receiver "
	    "did not complete");
	pause_fail = 0;

	/* Cancelled while the pause runs: resumed once the pause is over. */
	CHECK(pipe(cp) == 0, "pipe");
	cancel_wfd = cp[1];
	memset(&r, 0, sizeof(r));
	rc = send_once(rpath, cp[0], &r, &b, &pid);
	CHECK(rc == -ECANCELED, "cancelled during the pause: %d %s", rc,
	    r.error);
	st = sim_run_state(b);
	CHECK(st != NULL && strcmp(st, "running") == 0, "the source runs "
	    "after the cancel (%s)", st ? st : "?");
	sim_ops.close(b);
	reap(pid, &status);
	cancel_wfd = -1;
	close(cp[0]);
	close(cp[1]);

	unlink(rpath);
	rmdir(dir);
	return tap_done();
}
