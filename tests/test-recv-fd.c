/*
 * test-recv-fd.c -- recv_fd(), the receiver for a stream that others read
 * on after END (libxl's records follow the libxc stream on the fd it gives
 * its save helper).  A sim domain is saved (Xen dialect and draft B, pages
 * in records of 1024 pages, larger than the receiver's first read buffer),
 * the stream is put between a prefix and a trailer in a file and in a
 * pipe fed in odd-sized pieces; recv_fd must restore it (the memory digest
 * equals the sender's), leave the fd just after END (the trailer still
 * there to read) and fail, not hang, on a stream cut short.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig.h"
#include "run.h"
#include "tap.h"
#include "report-digest.h"

static const char prefix[] = "libxl's records before the stream";
static const char trailer[] = "LIBXL RECORDS AFTER END";

/* The whole file into a malloc'd buffer. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb) != 0 || (b = malloc((size_t)sb.st_size))
	    == NULL || read(fd, b, (size_t)sb.st_size) != sb.st_size) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	*len = (size_t)sb.st_size;
	return b;
}


static int
receive(int fd, const char *rpath)
{
	struct recv_opts o;
	FILE *rf = fopen(rpath, "w");
	int rc;

	recv_opts_default(&o);
	o.progress = PROGRESS_NONE;
	o.keep_paused = 1;
	o.report_json = 1;
	o.report_out = rf;
	rc = recv_fd(fd, &o);
	if (rf != NULL)
		fclose(rf);
	return rc;
}

static void
run(enum xp_dialect d, const char *dir)
{
	const char *dn = d == XP_XEN ? "xen" : "draftb";
	char spath[600], fpath[600], rpath[600], dest[700], want[65], got[65];
	char tail[sizeof(trailer)];
	struct backend *b = NULL;
	struct send_opts so;
	struct xmig_report r;
	uint8_t *s = NULL;
	size_t slen = 0;
	int fd, rc, pfd[2], status;
	pid_t pid;
	off_t at;

	snprintf(spath, sizeof(spath), "%s/stream-%s", dir, dn);
	snprintf(fpath, sizeof(fpath), "%s/framed-%s", dir, dn);
	snprintf(rpath, sizeof(rpath), "%s/report-%s", dir, dn);
	rc = sim_ops.open_source("mem=8M,vcpus=1,mix=realistic", &b);
	CHECK(rc == 0, "sim source: %s", backend_errmsg(NULL));
	if (rc != 0)
		return;
	send_opts_default(&so);
	so.dialect = d;
	so.live = 0;
	so.progress = PROGRESS_NONE;
	snprintf(dest, sizeof(dest), "file:%s", spath);
	rc = send_domain(b, dest, &so, &r);
	CHECK(rc == 0 && r.have_memory, "%s: send_domain: %d %s", dn, rc,
	    r.error);
	sim_ops.close(b);
	hex_encode(r.memory_sha256, 32, want);
	s = slurp(spath, &slen);
	CHECK(s != NULL && slen > (8u << 20), "%s: a stream of %zu octets",
	    dn, slen);
	if (s == NULL)
		return;

	/* A file, read from the offset the caller left it at. */
	fd = open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, prefix, sizeof(prefix)) ==
	    (ssize_t)sizeof(prefix) && write(fd, s, slen) == (ssize_t)slen &&
	    write(fd, trailer, sizeof(trailer)) == (ssize_t)sizeof(trailer),
	    "%s: writing the framed file", dn);
	lseek(fd, (off_t)sizeof(prefix), SEEK_SET);
	rc = receive(fd, rpath);
	CHECK(rc == 0, "%s: recv_fd from a file: %d", dn, rc);
	at = lseek(fd, 0, SEEK_CUR);
	CHECK(at == (off_t)(sizeof(prefix) + slen), "%s: file offset %lld "
	    "after END, want %zu", dn, (long long)at, sizeof(prefix) + slen);
	memset(tail, 0, sizeof(tail));
	CHECK(read(fd, tail, sizeof(tail)) == (ssize_t)sizeof(tail) &&
	    memcmp(tail, trailer, sizeof(trailer)) == 0,
	    "%s: the trailer is still there to read", dn);
	close(fd);
	report_digest(rpath, got);
	CHECK(strcmp(got, want) == 0, "%s: file: memory digest %s, the "
	    "sender's %s", dn, got, want);

	/* A pipe fed in odd pieces; the trailer stays in the pipe. */
	CHECK(pipe(pfd) == 0, "pipe");
	if ((pid = fork()) == 0) {
		size_t o = 0, n;

		close(pfd[0]);
		while (o < slen) {
			n = slen - o < 7777 ? slen - o : 7777;
			if (write(pfd[1], s + o, n) != (ssize_t)n)
				_exit(1);
			o += n;
		}
		if (write(pfd[1], trailer, sizeof(trailer)) !=
		    (ssize_t)sizeof(trailer))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	rc = receive(pfd[0], rpath);
	CHECK(rc == 0, "%s: recv_fd from a pipe: %d", dn, rc);
	memset(tail, 0, sizeof(tail));
	CHECK(read(pfd[0], tail, sizeof(tail)) == (ssize_t)sizeof(tail) &&
	    memcmp(tail, trailer, sizeof(trailer)) == 0,
	    "%s: the trailer is still in the pipe", dn);
	close(pfd[0]);
	waitpid(pid, &status, 0);
	report_digest(rpath, got);
	CHECK(strcmp(got, want) == 0, "%s: pipe: memory digest %s, the "
	    "sender's %s", dn, got, want);

	/* Cut in the middle of a page record: an error, not a hang. */
	fd = open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, s, slen / 2) == (ssize_t)(slen / 2),
	    "%s: writing half a stream", dn);
	lseek(fd, 0, SEEK_SET);
	rc = receive(fd, rpath);
	CHECK(rc != 0, "%s: half a stream is refused (%d)", dn, rc);
	close(fd);

	free(s);
	unlink(spath);
	unlink(fpath);
	unlink(rpath);
}

int
main(void)
{
	char dir[] = "/tmp/xmig-recvfd-XXXXXX";

	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return tap_done();
	}
	run(XP_XEN, dir);
	run(XP_DRAFTB, dir);
	rmdir(dir);
	return tap_done();
}
