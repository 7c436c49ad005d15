/*
 * xmig-save-helper -- a drop-in for libxl's libxl-save-helper (Xen 4.17)
 * that saves and restores PVH/HVM guests with xmig's engine.
 *
 * libxl runs the program named by $LIBXL_SAVE_HELPER in place of its own
 * helper.  The helper speaks libxl's private protocol: on stdout, messages
 * of a host-endian u16 length, then a u16 message number and the
 * arguments (native integers; STRING = u32 length including the NUL, then
 * the bytes); on stdin, one native int per reply to a message that needs
 * one.  The message numbers are those of libxl 4.17's
 * libxl_save_msgs_gen.pl (log 1, progress 2, suspend 3, postcopy 4,
 * checkpoint 5, wait_checkpoint 6, switch_qemu_logdirty 7,
 * static_data_done 8, restore_results 9, complete 10); they are private
 * to libxl, so the helper refuses to run under another libxenlight.
 *
 * The stream fd carries one libxc stream (image header, domain header,
 * records up to END) between libxl's own records: the helper writes or
 * reads exactly that much.  Saving lets the engine write a pipe itself and
 * pumps its output to a file or socket; restoring lets the engine read
 * the fd itself, each record whole and never past END (recv_fd), so libxl
 * finds its own records where it expects them.  Pipes are grown to 4 MiB.
 *
 * Delegate mode (restore only, $XMIG_RESTORE_DELEGATE set by
 * migrate-receive --backend xen, whose libxl started us): the domain is
 * filled by migrate-receive itself, from the network.  The helper reads
 * nothing from the stream fd; it connects to the abstract unix socket so
 * named, says which domain libxl built (HELLO), passes static_data_done
 * on (STATIC / OK), and reports migrate-receive's outcome (DONE or FAIL)
 * to libxl as its own (SPEC 17.2).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmig.h"
#include "run.h"

#define PROG		"xmig-save-helper"

/* libxl 4.17's message numbers (libxl_save_msgs_gen.pl, in order). */
enum helper_msg {
	HM_LOG = 1, HM_PROGRESS, HM_SUSPEND, HM_POSTCOPY, HM_CHECKPOINT,
	HM_WAIT_CHECKPOINT, HM_SWITCH_QEMU_LOGDIRTY, HM_STATIC_DATA_DONE,
	HM_RESTORE_RESULTS, HM_COMPLETE,
};
/* xentoollog levels (xentoollog.h): DEBUG 1 .. ERROR 8. */
#define HL_DEBUG	1
#define HL_INFO		5
#define HL_ERROR	8

/* The libxenlight this protocol belongs to. */
#define HELPER_LIBXL_SONAME	"libxenlight.so.4.17"

static int msg_fd = STDOUT_FILENO;	/* to libxl */
static int reply_fd = STDIN_FILENO;	/* from libxl */
static int stream_fd = -1;
static int null_fd = -1;
static uint32_t cbflags;
/* The self-pipe SIGTERM/SIGINT write to; its read end is the engine's
 * cancel_fd.  term_sig: the first such signal (0: none yet). */
static int cancel_pipe[2] = { -1, -1 };
static volatile sig_atomic_t term_sig;

/* ---- the protocol --------------------------------------------------------- */

struct hmsg {
	uint8_t	 buf[4096];
	size_t	 len;
	int	 overflow;
};

static void
hmsg_start(struct hmsg *m, enum helper_msg num)
{
	uint16_t n = (uint16_t)num;

	m->len = 2;	/* the length, filled in by hmsg_send */
	m->overflow = 0;
	memcpy(m->buf + m->len, &n, 2);
	m->len += 2;
}

static void
hmsg_put(struct hmsg *m, const void *p, size_t n)
{
	if (m->len + n > sizeof(m->buf)) {
		m->overflow = 1;
		return;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

static void
hmsg_u32(struct hmsg *m, uint32_t v)
{
	hmsg_put(m, &v, sizeof(v));
}

static void
hmsg_int(struct hmsg *m, int v)
{
	hmsg_put(m, &v, sizeof(v));
}

static void
hmsg_ulong(struct hmsg *m, unsigned long v)
{
	hmsg_put(m, &v, sizeof(v));
}

static void
hmsg_string(struct hmsg *m, const char *s)
{
	size_t n = strlen(s) + 1;

	if (n > 2000)
		n = 2000;
	hmsg_u32(m, (uint32_t)n);
	hmsg_put(m, s, n - 1);
	hmsg_put(m, "", 1);
}

static int
read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	ssize_t r;

	while (n > 0) {
		r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static pthread_mutex_t msg_lock = PTHREAD_MUTEX_INITIALIZER;

static int
hmsg_send(struct hmsg *m)
{
	uint16_t len;
	int rc;

	if (m->overflow)
		return -EMSGSIZE;
	len = (uint16_t)(m->len - 2);
	memcpy(m->buf, &len, 2);
	pthread_mutex_lock(&msg_lock);
	rc = write_all(msg_fd, m->buf, m->len);
	pthread_mutex_unlock(&msg_lock);
	return rc;
}

/* A message that needs libxl's answer: send it, read one int. */
static int
hmsg_call(struct hmsg *m, int *reply)
{
	int rc;

	if ((rc = hmsg_send(m)) != 0)
		return rc;
	return read_all(reply_fd, reply, sizeof(*reply));
}

static void helper_log(int level, int errnoval, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
helper_log(int level, int errnoval, const char *fmt, ...)
{
	struct hmsg m;
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	hmsg_start(&m, HM_LOG);
	hmsg_u32(&m, (uint32_t)level);
	hmsg_u32(&m, (uint32_t)errnoval);
	hmsg_string(&m, PROG);
	hmsg_string(&m, text);
	if (hmsg_send(&m) != 0)
		fprintf(stderr, "%s: %s\n", PROG, text);
}

/* complete(retval, errnoval), wait for the ack, and exit. */
static void __attribute__((noreturn))
helper_complete(int retval, int errnoval)
{
	struct hmsg m;
	int reply;

	hmsg_start(&m, HM_COMPLETE);
	hmsg_int(&m, retval);
	hmsg_int(&m, retval != 0 ? errnoval : 0);
	if (hmsg_call(&m, &reply) != 0)
		exit(2);
	exit(0);
}

/* ---- the libxenlight we serve ----------------------------------------- */

/*
 * Which libxenlight the process that started us has loaded, from its
 * /proc maps: "" if none is visible.  The basename goes into out.
 */
static void
parent_libxl(char *out, size_t len)
{
	char path[64], line[512];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)getppid());
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strstr(line, "libxenlight.so");
		char *nl;

		if (p == NULL)
			continue;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl = '\0';
		snprintf(out, len, "%s", p);
		break;
	}
	fclose(f);
}

/*
 * 0 if the protocol we speak is the caller's: the parent's libxenlight
 * is 4.17, or (no parent using one: a test, a shell) the installed one
 * is.  Else -1 with why.
 */
static int
check_libxl(char *why, size_t len, int need_parent)
{
	char lib[256];
	void *h;

	parent_libxl(lib, sizeof(lib));
	if (lib[0] != '\0') {
		if (strcmp(lib, HELPER_LIBXL_SONAME) == 0 ||
		    strncmp(lib, HELPER_LIBXL_SONAME ".",
		    strlen(HELPER_LIBXL_SONAME) + 1) == 0)
			return 0;
		snprintf(why, len, "the calling toolstack uses %s; this "
		    "helper speaks the protocol of %s (Xen 4.17) only", lib,
		    HELPER_LIBXL_SONAME);
		return -1;
	}
	if (need_parent) {
		snprintf(why, len, "the calling process has no libxenlight "
		    "loaded: run me only as LIBXL_SAVE_HELPER under xl/libxl "
		    "4.17");
		return -1;
	}
	if ((h = dlopen(HELPER_LIBXL_SONAME, RTLD_LAZY | RTLD_LOCAL)) == NULL) {
		snprintf(why, len, "%s is not installed (this helper speaks "
		    "Xen 4.17's libxl protocol only)", HELPER_LIBXL_SONAME);
		return -1;
	}
	if (dlsym(h, "libxl_domain_suspend") == NULL ||
	    dlsym(h, "libxl_domain_create_restore") == NULL) {
		snprintf(why, len, "%s lacks libxl_domain_suspend: not the "
		    "library this helper was written for", HELPER_LIBXL_SONAME);
		dlclose(h);
		return -1;
	}
	dlclose(h);
	return 0;
}

/* ---- signals ------------------------------------------------------------- */

/* A crash: log-dirty off before dying, then die as the signal says. */
static void
on_fatal(int sig)
{
	xen_emergency_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * SIGTERM (libxl's way to interrupt a save) and SIGINT: one octet into
 * the self-pipe, whose read end is the engine's cancel_fd.  The engine
 * stops at once with -ECANCELED, takes its failure path (log-dirty off,
 * the source left to libxl, which resumes it) and the helper completes
 * with failure.  The stream fd is also made unreadable and unwritable
 * (/dev/null opened read-only over it, as libxl's own helper does), so a
 * pump thread stops too.  A second signal is taken as fatal.
 */
static void
on_term(int sig)
{
	int e = errno;

	if (term_sig != 0) {
		on_fatal(sig);
		return;
	}
	term_sig = sig;
	if (cancel_pipe[1] >= 0)
		(void)!write(cancel_pipe[1], "x", 1);
	if (stream_fd >= 0 && null_fd >= 0)
		dup2(null_fd, stream_fd);
	errno = e;
}

static void
setup_signals(void)
{
	struct sigaction sa;
	static const int fatal_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE,
	    SIGABRT, SIGHUP, SIGQUIT };
	sigset_t set;
	size_t i;

	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		cancel_pipe[0] = cancel_pipe[1] = -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* libxl may have started us with them blocked (its own helper
	 * unblocks SIGTERM too). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	for (i = 0; i < sizeof(fatal_sigs) / sizeof(fatal_sigs[0]); i++)
		sigaction(fatal_sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the stream pumps ---------------------------------------------------- */

struct pump {
	int		 in, out;
	int		 rc;		/* 0 or -errno */
	char		 err[256];
	uint64_t	 octets;
	pthread_t	 thr;
};

/* Save: whatever the engine writes, to the fd, until the engine closes. */
static void *
pump_plain(void *arg)
{
	struct pump *p = arg;
	uint8_t buf[65536];
	ssize_t r;

	for (;;) {
		r = read(p->in, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			p->rc = -errno;
			snprintf(p->err, sizeof(p->err), "reading the engine's "
			    "output: %s", strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (write_all(p->out, buf, (size_t)r) != 0) {
			p->rc = -errno;
			snprintf(p->err, sizeof(p->err), "writing the stream: "
			    "%s", strerror(errno));
			break;
		}
		p->octets += (uint64_t)r;
	}
	close(p->in);	/* the engine's next write fails: EPIPE */
	return NULL;
}

/* ---- measurements ---------------------------------------------------------- */

/* Wall-clock milliseconds, to line events up with the guest's own clock. */
static double
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * XMIG_HELPER_DEBUG=1: the engine's debug lines on stderr, stamped; and
 * XMIG_HELPER_KEEP_MAPS (below).
 */
static void
debug_line(int level, const char *msg)
{
	(void)level;
	fprintf(stderr, PROG " [%.3f]: %s\n", wall_ms() / 1e3, msg);
}

static void
setup_debug(int keep_maps)
{
	const char *e = getenv("XMIG_HELPER_DEBUG");

	if (e != NULL && strcmp(e, "1") == 0)
		xmig_log_set(debug_line, XMIG_LOG_DEBUG);
	/*
	 * Guest pages left mapped until the helper exits: on a PV dom0 each
	 * page unmapped costs a trapped page-table write (in the lab, under
	 * TCG: 1.0-1.9 s of a 7-11 s save or restore of 160 MB), the exit
	 * much less, but the exit is inside the downtime (libxl waits for
	 * it): +75-180 ms with both sides keeping, in four lab runs.  A
	 * target maps each page once, the last pass included, so restoring
	 * keeps them by default and saving does not (the sender has more
	 * pages to let go).  XMIG_HELPER_KEEP_MAPS=0 or 1 decides.
	 */
	e = getenv("XMIG_HELPER_KEEP_MAPS");
	if (e != NULL && (strcmp(e, "0") == 0 || strcmp(e, "1") == 0))
		keep_maps = e[0] == '1';
	xen_set_keep_maps(keep_maps);
}

/* One line: where this process spent its time (libxc calls, CPU). */
static void
log_timing(const char *what, double t0_ms)
{
	char xt[512];
	struct rusage ru;
	double u = 0, sy = 0;

	xen_timing(xt, sizeof(xt));
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		u = (double)ru.ru_utime.tv_sec * 1e3 +
		    (double)ru.ru_utime.tv_usec / 1e3;
		sy = (double)ru.ru_stime.tv_sec * 1e3 +
		    (double)ru.ru_stime.tv_usec / 1e3;
	}
	helper_log(HL_INFO, -1, "%s timing: wall %.0f ms, cpu user %.0f ms "
	    "sys %.0f ms; %s; ended at %.3f", what, wall_ms() - t0_ms, u, sy,
	    xt, wall_ms() / 1e3);
}

/*
 * A larger pipe: fewer wake-ups of the far end per octet, which is what a
 * stream costs most on a loaded (or emulated) CPU.  Best effort.
 */
#define HELPER_PIPE_SIZE	(4 << 20)

static void
grow_pipe(int fd)
{
	int sz;

	for (sz = HELPER_PIPE_SIZE; sz >= (1 << 20); sz /= 2)
		if (fcntl(fd, F_SETPIPE_SZ, sz) >= 0)
			return;
}

/* ---- save ------------------------------------------------------------------ */

/* The backend's pause: libxl suspends the guest (reply 1 = done). */
static int
hook_suspend(void *arg)
{
	struct hmsg m;
	int reply;

	(void)arg;
	xmig_log(XMIG_LOG_DEBUG, "asking libxl to suspend the guest");
	hmsg_start(&m, HM_SUSPEND);
	if (hmsg_call(&m, &reply) != 0)
		return -EPIPE;
	xmig_log(XMIG_LOG_DEBUG, "libxl's suspend answered %d", reply);
	return reply == 1 ? 0 : -EIO;
}

static int
qemu_logdirty(uint32_t domid, unsigned enable)
{
	struct hmsg m;
	int reply;

	if (!(cbflags & (1u << HM_SWITCH_QEMU_LOGDIRTY)))
		return 0;
	hmsg_start(&m, HM_SWITCH_QEMU_LOGDIRTY);
	hmsg_u32(&m, domid);
	hmsg_put(&m, &enable, sizeof(enable));
	if (hmsg_call(&m, &reply) != 0)
		return -EPIPE;
	return reply == 0 ? 0 : -EIO;
}

static int
parse_u32(const char *s, uint32_t *v, int allow_neg1)
{
	char *ep;
	long long x;

	errno = 0;
	x = strtoll(s, &ep, 10);
	if (errno != 0 || *s == '\0' || *ep != '\0' ||
	    (x < 0 && !(allow_neg1 && x == -1)) || x > UINT32_MAX)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

static void __attribute__((noreturn))
do_save(char **argv)
{
	uint32_t sfd, bfd, domid, xcflags, stype;
	struct send_opts o;
	struct xmig_report r;
	struct backend *b = NULL;
	struct pump p;
	const struct backend_ops *ops = &xen_ops;
	const char *test_src = getenv("XMIG_HELPER_TEST_SOURCE");
	char spec[64], dest[64], why[512];
	struct stat sb;
	double t0 = wall_ms();
	struct domain_info di;
	int pfd[2], rc, direct, qemu_ld = 0;

	if (parse_u32(argv[0], &sfd, 0) || parse_u32(argv[1], &bfd, 1) ||
	    parse_u32(argv[2], &domid, 0) || parse_u32(argv[3], &xcflags, 0) ||
	    parse_u32(argv[4], &cbflags, 0) || parse_u32(argv[5], &stype, 0)) {
		helper_log(HL_ERROR, EINVAL, "--save-domain: bad arguments");
		helper_complete(-1, EINVAL);
	}
	stream_fd = (int)sfd;
	if (stype != 0) {
		helper_log(HL_ERROR, EOPNOTSUPP, "stream type %u (%s) is not "
		    "supported: xmig's helper does plain saves and "
		    "migrations only; unset LIBXL_SAVE_HELPER for Remus/COLO",
		    stype, stype == 1 ? "Remus" : stype == 2 ? "COLO" : "?");
		helper_complete(-1, EOPNOTSUPP);
	}
	if (check_libxl(why, sizeof(why), 1) != 0) {
		helper_log(HL_ERROR, EPROTO, "%s", why);
		helper_complete(-1, EPROTO);
	}
	setup_signals();
	setup_debug(0);
	snprintf(spec, sizeof(spec), "domid=%u,toolstack=1", domid);
	if (test_src != NULL && test_src[0] != '\0') {
		/*
		 * Tests without Xen: a sim domain in place of DOMID, so the
		 * engine's side of the protocol (and of SIGTERM) can run.
		 */
		const char *sp;

		if ((ops = backend_lookup(test_src, &sp)) == NULL ||
		    strcmp(ops->name, "sim") != 0) {
			helper_log(HL_ERROR, EINVAL, "XMIG_HELPER_TEST_SOURCE="
			    "%s: only sim:SPEC is accepted", test_src);
			helper_complete(-1, EINVAL);
		}
		snprintf(spec, sizeof(spec), "%s", sp);
	}
	if ((rc = ops->open_source(spec, &b)) != 0) {
		helper_log(HL_ERROR, -rc, "saving domain %u: %s", domid,
		    backend_errmsg(NULL));
		helper_complete(-1, -rc);
	}
	if (ops == &xen_ops)
		xen_set_suspend_hook(b, hook_suspend, NULL);
	/*
	 * Only a live save tracks dirty pages (libxc asks libxl to switch
	 * qemu's log-dirty mode in enable_logdirty, live saves only), and
	 * only of a guest with a device model: libxl refuses it for a PV
	 * guest, whose live save the engine refuses anyway, naming why.
	 */
	memset(&di, 0, sizeof(di));
	if ((xcflags & 1) && b->ops->describe(b, &di) == 0 &&
	    di.type != WIRE_DOM_X86_PV)
		qemu_ld = 1;
	if (qemu_ld && (rc = qemu_logdirty(domid, 1)) != 0) {
		helper_log(HL_ERROR, EIO, "libxl could not switch qemu's "
		    "log-dirty mode on");
		b->ops->close(b);
		helper_complete(-1, EIO);
	}
	memset(&p, 0, sizeof(p));
	direct = fstat(stream_fd, &sb) == 0 && S_ISFIFO(sb.st_mode);
	if (direct) {
		/*
		 * A pipe (xl migrate, over ssh or sh): the engine writes it
		 * itself through a new open file of its own, so its flags do
		 * not touch libxl's.  Files (xl save) and sockets go through
		 * the pump: the engine would rename a file into place, and a
		 * socket cannot be reopened.
		 */
		pfd[0] = pfd[1] = -1;
		grow_pipe(stream_fd);
		snprintf(dest, sizeof(dest), "file:/proc/self/fd/%d", stream_fd);
	} else {
		if (pipe2(pfd, O_CLOEXEC) != 0) {
			rc = -errno;
			goto out;
		}
		p.in = pfd[0];
		p.out = stream_fd;
		if (pthread_create(&p.thr, NULL, pump_plain, &p) != 0) {
			rc = -EAGAIN;
			close(pfd[0]);
			close(pfd[1]);
			goto out;
		}
		snprintf(dest, sizeof(dest), "file:/proc/self/fd/%d", pfd[1]);
	}
	send_opts_default(&o);
	o.dialect = XP_XEN;
	o.checksum = 0;
	o.live = (xcflags & 1) != 0;	/* XCFLAGS_LIVE */
	/* XMIG_HELPER_PROGRESS=1: the engine's JSON progress on stderr. */
	o.progress = getenv("XMIG_HELPER_PROGRESS") != NULL &&
	    strcmp(getenv("XMIG_HELPER_PROGRESS"), "1") == 0 ?
	    PROGRESS_JSON : PROGRESS_NONE;
	o.backchannel = 0;
	o.zero_pages = 0;
	o.compress = 0;
	o.no_digest = 1;
	/*
	 * xmig's pass policy (downtime limit, passes that halve the dirty
	 * set), capped at the 5 live passes libxl's own helper allows: a
	 * guest that dirties memory faster than the stream drains never
	 * converges, and 30 passes of its hot set only add total time.
	 */
	o.max_iterations = 5;
	o.cancel_fd = cancel_pipe[0];
	helper_log(HL_INFO, -1, "saving domain %u with xmig's engine (%s)",
	    domid, o.live ? "live" : "not live");
	rc = send_domain(b, dest, &o, &r);
	if (!direct) {
		close(pfd[1]);
		/*
		 * Cancelled: the pump may sit in a write to a reader that
		 * stopped reading; the process exits soon, leave it.
		 */
		if (rc == -ECANCELED)
			pthread_detach(p.thr);
		else
			pthread_join(p.thr, NULL);
	} else
		p.octets = r.bytes;
	if (rc == -EINPROGRESS)
		rc = 0;		/* a pipe: delivered, nobody answers */
	if (rc == 0 && p.rc != 0)
		rc = p.rc;
	if (rc == -ECANCELED)
		helper_log(HL_ERROR, ECANCELED, "saving domain %u: cancelled "
		    "by %s after %" PRIu64 " octets; %sthe domain is left to "
		    "libxl", domid, term_sig == SIGINT ? "SIGINT" : "SIGTERM",
		    r.bytes, o.live ? "log-dirty is off, " : "");
	else if (rc != 0)
		helper_log(HL_ERROR, -rc, "saving domain %u: %s", domid,
		    p.rc != 0 ? p.err : r.error[0] ? r.error :
		    strerror(-rc));
	else
		helper_log(HL_INFO, -1, "domain %u saved: %" PRIu64 " octets, "
		    "%u passes, %.1f ms, downtime %.1f ms", domid, p.octets,
		    r.iterations, r.duration_ms, r.downtime_ms);
	log_timing("save", t0);
out:
	if (qemu_ld && qemu_logdirty(domid, 0) != 0 && rc == 0)
		helper_log(HL_ERROR, EIO, "libxl could not switch qemu's "
		    "log-dirty mode off");
	b->ops->close(b);
	helper_complete(rc == 0 ? 0 : -1, -rc);
}

/* ---- restore --------------------------------------------------------------- */

static int
hook_static_done(void *arg, unsigned missing)
{
	struct hmsg m;
	int reply;

	(void)arg;
	if (!(cbflags & (1u << HM_STATIC_DATA_DONE)))
		return 0;
	hmsg_start(&m, HM_STATIC_DATA_DONE);
	hmsg_put(&m, &missing, sizeof(missing));
	if (hmsg_call(&m, &reply) != 0)
		return -EPIPE;
	return reply == 0 ? 0 : -EIO;
}

/* A line from migrate-receive, without its newline; -1 on EOF/error. */
static int
delegate_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

/*
 * migrate-receive died (SIGKILL, a crash) with its libxl: nobody is left
 * to tear down the half-built domain but us.  xl destroy does all of it
 * (domain, xenstore, devices); its output goes to stderr, never into the
 * protocol on stdout.
 */
static void
delegate_orphan(uint32_t domid)
{
	char id[16];
	pid_t pid;
	int st;

	snprintf(id, sizeof(id), "%u", domid);
	pid = fork();
	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execlp("xl", "xl", "destroy", id, (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0)
		fprintf(stderr, "%s: migrate-receive died: half-built domain "
		    "%u destroyed\n", PROG, domid);
	else
		fprintf(stderr, "%s: migrate-receive died and 'xl destroy %u' "
		    "failed: the half-built domain may be left\n", PROG,
		    domid);
}

/*
 * Non-zero if domain domid still carries a name ending in "--incoming"
 * (xl domname): a domain migrate-receive has not started yet.
 */
static int
delegate_unstarted(uint32_t domid)
{
	char id[16], name[256];
	const char *suf = "--incoming";
	size_t n = 0, sl = strlen(suf);
	ssize_t r;
	int p[2], st;
	pid_t pid;

	snprintf(id, sizeof(id), "%u", domid);
	if (pipe(p) != 0)
		return 0;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execlp("xl", "xl", "domname", id, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (pid > 0 && n + 1 < sizeof(name) &&
	    (r = read(p[0], name + n, sizeof(name) - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	close(p[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return 0;
	while (n > 0 && (name[n - 1] == '\n' || name[n - 1] == ' '))
		n--;
	name[n] = '\0';
	return n > sl && strcmp(name + n - sl, suf) == 0;
}

/*
 * EARLY (SPEC 17.2): libxl finishes the domain now, so this helper must
 * exit now, and nobody would be left to destroy the domain if
 * migrate-receive died before starting it.  A child stays behind on the
 * connection, out of libxl's way (its own session, libxl's pipes closed):
 * STARTED or GONE end it quietly; the connection closing without either
 * means migrate-receive died, and a domain still named NAME--incoming is
 * destroyed.  Returns in the parent; never in the child.
 */
static void
delegate_watchdog(int fd, uint32_t domid)
{
	char line[64];
	pid_t pid;
	int i, nfd;

	if ((pid = fork()) != 0) {
		if (pid < 0)
			helper_log(HL_ERROR, errno, "no watchdog for domain %u: "
			    "if migrate-receive dies it is left", domid);
		return;
	}
	setsid();
	nfd = open("/dev/null", O_RDWR);
	for (i = 0; i < 1024; i++)
		if (i != fd && i != STDERR_FILENO && i != nfd)
			close(i);
	if (nfd >= 0) {
		dup2(nfd, STDIN_FILENO);
		dup2(nfd, STDOUT_FILENO);
	}
	for (;;) {
		if (delegate_line(fd, line, sizeof(line)) != 0)
			break;
		if (strcmp(line, "STARTED") == 0 || strcmp(line, "GONE") == 0)
			_exit(0);
	}
	if (delegate_unstarted(domid))
		delegate_orphan(domid);
	_exit(0);
}

static void __attribute__((noreturn))
do_delegate(const char *name, uint32_t domid, uint32_t sport, uint32_t sdom,
    uint32_t cport, uint32_t cdom)
{
	struct sockaddr_un sa;
	struct hmsg m;
	unsigned long store, console;
	size_t nlen = strlen(name);
	char line[600];
	int fd, rc, err;
	unsigned missing;
	pid_t parent = getppid();

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (nlen == 0 || nlen >= sizeof(sa.sun_path) - 1) {
		helper_log(HL_ERROR, EINVAL, "XMIG_RESTORE_DELEGATE: bad name");
		helper_complete(-1, EINVAL);
	}
	memcpy(sa.sun_path + 1, name, nlen);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen)) !=
	    0) {
		err = errno;
		helper_log(HL_ERROR, err, "cannot reach migrate-receive "
		    "(XMIG_RESTORE_DELEGATE=%s): it gave up", name);
		helper_complete(-1, err);
	}
	snprintf(line, sizeof(line), "HELLO %u %u %u %u %u\n", domid, sport,
	    sdom, cport, cdom);
	if (write_all(fd, line, strlen(line)) != 0) {
		err = errno;
		helper_log(HL_ERROR, err, "cannot talk to migrate-receive");
		helper_complete(-1, err);
	}
	helper_log(HL_INFO, -1, "domain %u is restored by migrate-receive "
	    "(delegate mode)", domid);
	for (;;) {
		if (delegate_line(fd, line, sizeof(line)) != 0) {
			/*
			 * A dying parent closes its files before its
			 * children are given to init: wait for that (2 s).
			 */
			for (rc = 0; rc < 200 && getppid() == parent; rc++)
				usleep(10000);
			if (getppid() != parent)
				delegate_orphan(domid);
			helper_log(HL_ERROR, EPIPE, "migrate-receive went away "
			    "before the restore of domain %u ended", domid);
			helper_complete(-1, EPIPE);
		}
		if (sscanf(line, "STATIC %u", &missing) == 1) {
			rc = hook_static_done(NULL, missing);
			snprintf(line, sizeof(line), "OK %d\n", rc);
			if (write_all(fd, line, strlen(line)) != 0)
				helper_complete(-1, EPIPE);
			continue;
		}
		if (sscanf(line, "EARLY 0 %lu %lu", &store, &console) == 2 ||
		    sscanf(line, "DONE 0 %lu %lu", &store, &console) == 2) {
			if (line[0] == 'E')
				delegate_watchdog(fd, domid);
			if (cbflags & (1u << HM_RESTORE_RESULTS)) {
				hmsg_start(&m, HM_RESTORE_RESULTS);
				hmsg_ulong(&m, store);
				hmsg_ulong(&m, console);
				hmsg_send(&m);
			}
			helper_log(HL_INFO, -1, "domain %u restored by "
			    "migrate-receive: store gfn %#lx, console gfn "
			    "%#lx", domid, store, console);
			helper_complete(0, 0);
		}
		if (sscanf(line, "FAIL %d", &err) == 1) {
			const char *why = strchr(line + 5, ' ');

			helper_log(HL_ERROR, err, "migrate-receive: %s",
			    why ? why + 1 : "the restore failed");
			helper_complete(-1, err > 0 ? err : EIO);
		}
		helper_log(HL_ERROR, EPROTO, "migrate-receive said something "
		    "this helper does not know");
		helper_complete(-1, EPROTO);
	}
}

static void __attribute__((noreturn))
do_restore(char **argv)
{
	uint32_t sfd, bfd, domid, sport, sdom, cport, cdom, stype;
	struct recv_opts o;
	struct hmsg m;
	uint64_t store = 0, console = 0;
	char spec[256], why[512];
	double t0 = wall_ms();
	int rc;

	if (parse_u32(argv[0], &sfd, 0) || parse_u32(argv[1], &bfd, 1) ||
	    parse_u32(argv[2], &domid, 0) || parse_u32(argv[3], &sport, 0) ||
	    parse_u32(argv[4], &sdom, 0) || parse_u32(argv[5], &cport, 0) ||
	    parse_u32(argv[6], &cdom, 0) || parse_u32(argv[7], &cbflags, 0) ||
	    parse_u32(argv[8], &stype, 0)) {
		helper_log(HL_ERROR, EINVAL, "--restore-domain: bad arguments");
		helper_complete(-1, EINVAL);
	}
	stream_fd = (int)sfd;
	if (stype != 0) {
		helper_log(HL_ERROR, EOPNOTSUPP, "stream type %u (%s) is not "
		    "supported: xmig's helper does plain restores only; unset "
		    "LIBXL_SAVE_HELPER for Remus/COLO", stype,
		    stype == 1 ? "Remus" : stype == 2 ? "COLO" : "?");
		helper_complete(-1, EOPNOTSUPP);
	}
	if (check_libxl(why, sizeof(why), 1) != 0) {
		helper_log(HL_ERROR, EPROTO, "%s", why);
		helper_complete(-1, EPROTO);
	}
	if (getenv("XMIG_RESTORE_DELEGATE") != NULL)
		do_delegate(getenv("XMIG_RESTORE_DELEGATE"), domid, sport, sdom,
		    cport, cdom);
	setup_signals();
	setup_debug(1);
	grow_pipe(stream_fd);
	xen_set_static_hook(hook_static_done, NULL);
	snprintf(spec, sizeof(spec), "xen:domid=%u,store_port=%u,"
	    "store_domid=%u,console_port=%u,console_domid=%u,toolstack=1",
	    domid, sport, sdom, cport, cdom);
	recv_opts_default(&o);
	o.backend = spec;
	o.progress = getenv("XMIG_HELPER_PROGRESS") != NULL &&
	    strcmp(getenv("XMIG_HELPER_PROGRESS"), "1") == 0 ?
	    PROGRESS_JSON : PROGRESS_NONE;
	o.once = 1;
	o.no_digest = 1;
	o.keep_paused = 1;
	helper_log(HL_INFO, -1, "restoring domain %u with xmig's engine",
	    domid);
	/* The engine reads the fd itself, never past END: libxl reads on. */
	rc = recv_fd(stream_fd, &o);
	if (rc == 0 && xen_restore_results(&store, &console) != 0)
		rc = -EPROTO;
	if (rc != 0 && term_sig != 0) {
		/* on_term put /dev/null over the stream: it "ended early". */
		rc = -ECANCELED;
		helper_log(HL_ERROR, ECANCELED, "restoring domain %u: "
		    "cancelled by %s", domid,
		    term_sig == SIGINT ? "SIGINT" : "SIGTERM");
	} else if (rc != 0)
		helper_log(HL_ERROR, -rc, "restoring domain %u failed (see "
		    "the engine's message above)", domid);
	else
		helper_log(HL_INFO, -1, "domain %u restored: store gfn %#"
		    PRIx64 ", console gfn %#" PRIx64, domid, store, console);
	log_timing("restore", t0);
	if (cbflags & (1u << HM_RESTORE_RESULTS)) {
		hmsg_start(&m, HM_RESTORE_RESULTS);
		hmsg_ulong(&m, (unsigned long)store);
		hmsg_ulong(&m, (unsigned long)console);
		hmsg_send(&m);
	}
	helper_complete(rc == 0 ? 0 : -1, -rc);
}

/* ---- self-test ------------------------------------------------------------ */

/* The encoding of two messages, checked against their 4.17 layout. */
static int
self_test(void)
{
	static const uint8_t want_complete[] = {
		10, 0,			/* length */
		HM_COMPLETE, 0,		/* message number */
		0xff, 0xff, 0xff, 0xff,	/* retval -1 */
		5, 0, 0, 0,		/* errnoval 5 */
	};
	struct hmsg m;
	char why[512];
	int fails = 0;

	hmsg_start(&m, HM_COMPLETE);
	hmsg_int(&m, -1);
	hmsg_int(&m, 5);
	memcpy(m.buf, &(uint16_t){ (uint16_t)(m.len - 2) }, 2);
	if (m.len != sizeof(want_complete) ||
	    memcmp(m.buf, want_complete, m.len) != 0) {
		printf("FAIL complete message layout\n");
		fails++;
	} else
		printf("ok   complete message: 12 octets, number 10\n");
	hmsg_start(&m, HM_LOG);
	hmsg_u32(&m, HL_ERROR);
	hmsg_u32(&m, 0);
	hmsg_string(&m, "ab");
	hmsg_string(&m, "");
	if (m.len != 4 + 8 + 4 + 3 + 4 + 1) {
		printf("FAIL log message layout (%zu octets)\n", m.len);
		fails++;
	} else
		printf("ok   log message: STRING = u32 length with NUL\n");
	if (sizeof(unsigned long) != 8) {
		printf("FAIL xen_pfn_t is not 8 octets here\n");
		fails++;
	}
	if (check_libxl(why, sizeof(why), 0) != 0) {
		printf("FAIL %s\n", why);
		fails++;
	} else
		printf("ok   %s is installed\n", HELPER_LIBXL_SONAME);
	return fails == 0 ? 0 : 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --save-domain STREAM_FD BACK_FD DOMID XCFLAGS CBFLAGS "
"STREAM_TYPE\n"
"       " PROG " --restore-domain STREAM_FD BACK_FD DOMID STORE_PORT "
"STORE_DOMID\n"
"                 CONSOLE_PORT CONSOLE_DOMID CBFLAGS STREAM_TYPE\n"
"       " PROG " --self-test | --help | --version\n"
"\n"
"A replacement for libxl's libxl-save-helper (Xen 4.17 only) that moves\n"
"PVH and HVM guests, and 64-bit PV guests when not live, with xmig's\n"
"engine: live pre-copy with xmig's pass policy on save, xmig's receiver\n"
"on restore; the stream is Xen's own (libxc stream version 3), so either\n"
"side may be the stock helper.\n"
"libxl runs it, not you:\n"
"  LIBXL_SAVE_HELPER=%s xl save|restore|migrate ...\n"
"It speaks libxl's private helper protocol on stdin/stdout and refuses\n"
"to run under another libxenlight than %s.  Live PV saves\n"
"(PV live migration needs a Xen built with shadow paging), 32-bit PV\n"
"guests and Remus/COLO streams (STREAM_TYPE 1, 2) are refused.\n"
"Messages go to libxl's log (xl -v shows them).\n"
"  --self-test  check the message encoding and the installed libxenlight\n"
"SIGTERM or SIGINT (libxl sends SIGTERM to give up) stops a save at\n"
"once: log-dirty goes off, the domain is left to libxl (which resumes\n"
"it) and the helper completes with failure (ECANCELED); a second signal\n"
"ends it at once.\n"
"Environment: XMIG_HELPER_PROGRESS=1 prints the engine's progress (JSON\n"
"lines) on stderr while saving or restoring; XMIG_HELPER_DEBUG=1 its\n"
"steps, stamped with the wall clock; XMIG_HELPER_KEEP_MAPS=1 leaves guest\n"
"pages mapped until the helper exits (default when restoring), 0 unmaps\n"
"them after each batch (default when saving).\n"
"XMIG_HELPER_TEST_SOURCE=sim:SPEC saves a simulated domain in place of\n"
"DOMID (for tests without Xen).\n",
	    "/path/to/" PROG, HELPER_LIBXL_SONAME);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf(PROG " (xmig) %s, libxl helper protocol of Xen 4.17\n",
		    PACKAGE_VERSION);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
		return self_test();
	if (argc == 8 && strcmp(argv[1], "--save-domain") == 0)
		do_save(argv + 2);
	if (argc == 11 && strcmp(argv[1], "--restore-domain") == 0)
		do_restore(argv + 2);
	fprintf(stderr, PROG ": libxl runs this helper with --save-domain "
	    "(6 arguments) or --restore-domain (9 arguments)\n");
	usage(stderr);
	return 2;
}
