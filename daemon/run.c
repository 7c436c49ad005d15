/*
 * run.c -- one sender session run to completion on a loop of its own, for
 * migrate-send and xmig-save-helper; exec: destinations run here.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "xmig.h"
#include "run.h"

/*
 * Run "sh -c COMMAND" with its stdin and stdout on one end of a socket
 * pair (its stderr is ours); returns our end and the pid.
 */
static int
run_exec(const char *command, pid_t *pid, char *errbuf, size_t errlen)
{
	int sv[2];
	pid_t p;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(errbuf, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	fflush(NULL);
	if ((p = fork()) < 0) {
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (p == 0) {
		if (dup2(sv[1], STDIN_FILENO) < 0 ||
		    dup2(sv[1], STDOUT_FILENO) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	*pid = p;
	return sv[0];
}

/* The far end exits once the connection is closed: 5 s, then SIGTERM. */
static void
run_reap(pid_t child)
{
	int status, i;

	for (i = 0; i < 100; i++) {
		if (waitpid(child, &status, WNOHANG) != 0)
			return;
		usleep(50000);
	}
	kill(child, SIGTERM);
	waitpid(child, &status, 0);
}

struct run_send {
	struct event_base	*base;
	struct progress		*prog;
	struct xmig_report	*r;
	int			 rc;
	int			 done;
};

static void
run_send_progress(void *arg, const struct progress_info *pi)
{
	struct run_send *rs = arg;

	progress_cb(rs->prog, pi);
}

static FILE *run_ckpt_out;

void
send_domain_checkpoints(FILE *out)
{
	run_ckpt_out = out;
}

static void
run_send_checkpoint(void *arg, const struct checkpoint_info *ci)
{
	(void)arg;
	if (run_ckpt_out != NULL)
		report_checkpoint_json(ci, run_ckpt_out);
}

static void
run_send_result(void *arg, int rc, const struct xmig_report *r)
{
	struct run_send *rs = arg;

	progress_end(rs->prog);

	rs->rc = rc;
	*rs->r = *r;
	rs->done = 1;
	event_base_loopbreak(rs->base);
}

int
send_domain(struct backend *b, const char *dest, const struct send_opts *o,
    struct xmig_report *r)
{
	struct run_send rs;
	struct xmig_cbs cbs;
	struct xmig_send *s = NULL;
	struct progress *prog;
	pid_t child = 0;
	int fd;

	memset(r, 0, sizeof(*r));
	r->role = "send";
	r->status = "failed";
	r->verified = -1;
	memset(&rs, 0, sizeof(rs));
	rs.r = r;
	rs.rc = -EIO;
	if ((rs.base = event_base_new()) == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -ENOMEM;
	}
	prog = progress_new(o->progress, stderr);
	rs.prog = prog;
	memset(&cbs, 0, sizeof(cbs));
	cbs.arg = &rs;
	cbs.result = run_send_result;
	cbs.checkpoint = run_send_checkpoint;
	if (prog != NULL)
		cbs.progress = run_send_progress;
	if (strncmp(dest, "exec:", 5) == 0 && dest[5] != '\0') {
		fd = run_exec(dest + 5, &child, r->error, sizeof(r->error));
		if (fd < 0) {
			progress_free(prog);
			event_base_free(rs.base);
			return fd;
		}
		s = xmig_send_new_fd(rs.base, b, fd, 1, o, &cbs);
		if (s == NULL)
			close(fd);
	} else
		s = xmig_send_new(rs.base, b, dest, o, &cbs);
	if (s == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		rs.rc = -ENOMEM;
	} else {
		xmig_send_start(s);
		while (!rs.done && event_base_dispatch(rs.base) == 0)
			;
		if (!rs.done) {
			snprintf(r->error, sizeof(r->error), "event loop ended "
			    "early");
			rs.rc = -EIO;
		}
		xmig_send_free(s);	/* stops it if the loop failed */
	}
	if (r->verified != -1 && xmig_log_on(XMIG_LOG_DEBUG)) {
		char mh[65];

		hex_encode(r->memory_digest, digest_len(r->memory_alg), mh);
		xmig_debug("+%.1f ms: the receiver's digests %s ours (memory "
		    "%.16s...)", r->duration_ms, r->verified ? "equal" :
		    "DIFFER from", mh);
	}
	progress_free(prog);
	event_base_free(rs.base);
	if (child > 0)
		run_reap(child);
	return rs.rc;
}
