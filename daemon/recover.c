/*
 * recover.c -- domains outlive xmigd (as QEMU processes outlive libvirtd):
 * the state directory where each domain process registers a unix socket
 * (SPEC 18.4), re-adopting at start what a previous xmigd left, and the
 * methods destroy and resume that such long-lived domains need.
 *
 * xmigd stops without ending its domain processes: it cancels their
 * migrations (each source resumes; a half-received domain is discarded)
 * and leaves.  If it dies instead, they go on alone, migrations included.
 * At start it connects to every socket in STATE_DIR/domains; the process
 * says where it is ("state ..."), and xmigd takes it back: a running or
 * paused domain is hosted again as it is, an outgoing migration is
 * cancelled (the domain resumes here unless the handover was past GO), a
 * half-received incoming one is discarded.  A socket nobody answers on is
 * a process that died: its entry is removed.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "daemon.h"
#include "xmig.h"
#include "xmigd.h"

/* How long a found domain process has to say its state. */
#define RECOVER_WAIT_S	20

static int
mkdir_mode(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	log_err("--state-dir: %s: %s", path, strerror(errno));
	return -1;
}

int
state_dir_open(void)
{
	char path[PATH_MAX];
	int fd;

	if (mkdir_mode(xd.state_dir, 0750) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/domains", xd.state_dir);
	if (mkdir_mode(path, 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/xmigd.lock", xd.state_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		log_err("--state-dir: %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_err("--state-dir %s: %s", xd.state_dir, errno ==
		    EWOULDBLOCK ? "another xmigd uses it" : strerror(errno));
		close(fd);
		return -1;
	}
	xd.state_lock = fd;
	return 0;
}

int
state_dir_listen(char *path, size_t len)
{
	static unsigned seq;
	struct sockaddr_un sa;
	mode_t old;
	unsigned tries;
	int fd, rc, e;

	for (tries = 0; tries < 100; tries++) {
		snprintf(path, len, "%s/domains/%ld-%u.sock", xd.state_dir,
		    (long)getpid(), ++seq);
		if (strlen(path) >= sizeof(sa.sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, path, strlen(path));
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return -1;
		old = umask(0177);	/* 0600 */
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
		if (rc == 0 && listen(fd, 4) == 0)
			return fd;
		e = errno;
		close(fd);
		if (rc == 0)
			unlink(path);
		if (e != EADDRINUSE) {
			errno = e;
			return -1;
		}
	}
	errno = EADDRINUSE;
	return -1;
}

/* Connect to a registration socket; -1 (errno) if nobody listens. */
static int
entry_connect(const char *path)
{
	struct sockaddr_un sa;
	struct timeval tv = { RECOVER_WAIT_S, 0 };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* One line, read an octet at a time (nothing after it is consumed). */
static int
entry_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	char ch;

	while (n + 1 < len) {
		r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (ch == '\n') {
			buf[n] = '\0';
			return 0;
		}
		buf[n++] = ch;
	}
	errno = EMSGSIZE;
	return -1;
}

void
recover_domains(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 256], line[1300];
	unsigned adopted = 0, cancelled = 0, discarded = 0, stale = 0;
	struct timeval tv = { 0, 0 };
	struct dirent *de;
	struct domain *d;
	size_t n;
	DIR *dp;
	int fd;

	snprintf(dir, sizeof(dir), "%s/domains", xd.state_dir);
	if ((dp = opendir(dir)) == NULL) {
		log_warn("recovery: %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".sock") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((fd = entry_connect(path)) < 0) {
			if (errno == ECONNREFUSED || errno == ENOENT) {
				unlink(path);
				stale++;
				log_info("recovery: %s: its process is gone; "
				    "entry removed", de->d_name);
			} else
				log_warn("recovery: %s: %s", path,
				    strerror(errno));
			continue;
		}
		errno = 0;
		if (entry_line(fd, line, sizeof(line)) != 0) {
			if (errno == 0 || errno == ECONNRESET) {
				/* Closed at once: the process is ending. */
				unlink(path);
				stale++;
				log_info("recovery: %s: its process is gone; "
				    "entry removed", de->d_name);
			} else
				log_warn("recovery: %s: no state from its "
				    "process (%s); left alone", de->d_name,
				    strerror(errno));
			close(fd);
			continue;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if ((d = domain_attach(fd, line)) == NULL) {
			log_warn("recovery: %s: not a state line; left alone",
			    de->d_name);
			close(fd);
			continue;
		}
		adopted++;
		if (strcmp(d->state, "running") == 0)
			log_info("recovery: domain %s (process %ld) runs: "
			    "re-adopted", d->name, (long)d->pid);
		else if (strcmp(d->state, "paused") == 0)
			log_warn("recovery: domain %s (process %ld) re-adopted "
			    "paused after an unconfirmed handover: it stays "
			    "paused (SPEC 13.4); xmigctl resume %s if the "
			    "target does not run it, else xmigctl destroy %s",
			    d->name, (long)d->pid, d->name, d->name);
		else if (strcmp(d->state, "migrating") == 0) {
			cancelled++;
			domain_send(d, "cancel");
			log_info("recovery: domain %s (process %ld) was "
			    "migrating to %s: cancelled (migration %u; it "
			    "resumes here unless the handover was past GO)",
			    d->name, (long)d->pid, d->mig != NULL ?
			    d->mig->uri : "?", d->mig != NULL ? d->mig->id :
			    0);
		} else {
			discarded++;
			domain_send(d, "cancel");
			log_info("recovery: a half-received domain (process "
			    "%ld): discarded", (long)d->pid);
		}
	}
	closedir(dp);
	log_info("recovery of %s: %u domain process%s found, %u outgoing "
	    "migration%s cancelled, %u half-received discarded, %u stale "
	    "entr%s removed", dir, adopted, adopted == 1 ? "" : "es",
	    cancelled, cancelled == 1 ? "" : "s", discarded, stale,
	    stale == 1 ? "y" : "ies");
}

/* ---- destroy and resume ------------------------------------------------- */

int
recover_method(struct client *c, json_object *id, const char *method,
    json_object *params)
{
	int destroy = strcmp(method, "destroy") == 0;
	struct domain *d;
	const char *name;
	json_object *v;

	if (!destroy && strcmp(method, "resume") != 0)
		return 0;
	if (params == NULL || !json_object_object_get_ex(params, "name", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		rpc_error(c, id, RPC_PARAMS, "params.name (a domain) is "
		    "missing");
		return 1;
	}
	name = json_object_get_string(v);
	if ((d = domain_by_name(name)) == NULL) {
		rpc_error(c, id, RPC_NOT_FOUND, "no domain %s here", name);
		return 1;
	}
	if (d->creator != NULL || strcmp(d->state, "starting") == 0) {
		rpc_error(c, id, RPC_BUSY, "domain %s: another request waits "
		    "for it", d->name);
		return 1;
	}
	if (!destroy && strcmp(d->state, "paused") != 0) {
		rpc_error(c, id, RPC_BUSY, "domain %s is %s, not paused",
		    d->name, d->state);
		return 1;
	}
	d->creator = c;
	d->create_id = id != NULL ? json_object_get(id) : NULL;
	if (destroy) {
		/* An outgoing migration is cancelled first; then it ends. */
		d->destroying = 1;
		domain_send(d, "quit");
		log_info("destroying domain %s (process %ld)", d->name,
		    (long)d->pid);
	} else {
		domain_send(d, "resume");
		log_warn("resuming domain %s (process %ld), paused after an "
		    "unconfirmed handover", d->name, (long)d->pid);
	}
	return 1;
}
