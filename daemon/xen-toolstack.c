/*
 * xen-toolstack.c -- libxl's part of moving a Xen domain: what xl does
 * around libxc's save and restore, for migrate-send xen:DOMAIN and
 * migrate-receive --backend xen.  Memory and vcpu state move through
 * xmig's engine and the Xen backend (lib/backend/xen/xen.c) in this
 * process; libxl suspends, names, creates, starts and destroys.
 *
 * Source, as xl migrate does it:
 *   libxl_retrieve_domain_configuration + libxl_domain_config_to_json
 *       the configuration, sent as XMIG_DOMAIN_CONFIG;
 *   libxl_domain_suspend_only          the cooperative suspend, when the
 *       engine stops the domain for its last pass (the backend's hook);
 *   libxl_domain_rename NAME -> NAME--migratedaway, so the target can take
 *       NAME before this copy is gone;
 *   libxl_domain_destroy once the target reported RUNNING (or the file is
 *       saved), or on failure the name back and libxl_domain_resume with
 *       suspend_cancel (the guest carries on where it stopped).
 *
 * Target: libxl_domain_create_restore builds the domain NAME--incoming
 * from the configuration, with its devices, reading a libxl stream from a
 * pipe.  That stream is only a header, LIBXC_CONTEXT and END (SPEC 17.1):
 * at LIBXC_CONTEXT libxl starts its save helper, xmig-save-helper (through
 * LIBXL_SAVE_HELPER), which in delegate mode reads nothing from the pipe
 * but connects back to this process and says which domain libxl made and
 * with which event channels (SPEC 17.2).  The engine then fills that
 * domain from the network with the Xen backend; when the stream is
 * complete, the store and console gfns go back through the helper to
 * libxl, which reads END and finishes the domain (xenstore, console,
 * devices), paused.  On GO: NAME--incoming -> NAME and unpause.  On any
 * failure the helper fails, libxl tears down what it built, and a domain
 * that had been completed is destroyed.
 *
 * libxl's calls are synchronous (ao_how NULL); create_restore runs in a
 * thread of its own because it only returns once the engine is done.
 * libxl owns SIGCHLD only for its own children (always_selective_reap).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxl.h>
#include <libxl_utils.h>
#include <xenctrl.h>
#include <xentoollog.h>

#include "daemon.h"
#include "libxl.h"
#include "xen-toolstack.h"

#define XTS_INCOMING	"--incoming"
#define XTS_AWAY	"--migratedaway"
#define XTS_HELLO_MS	120000	/* libxl's domain build up to the helper */

/* ---- libxl's log --------------------------------------------------------- */

/*
 * libxl's messages: errors are kept (the last one explains a failure) and
 * printed as warnings; with -v, informational ones too.  Called from the
 * create thread as well, hence the lock.
 */
struct xts_log {
	xentoollog_logger	vt;
	pthread_mutex_t		lock;
	int			verbose;
	char			last[400];
};

static void
xts_vmessage(struct xentoollog_logger *lg, xentoollog_level level,
    int errnoval, const char *context, const char *fmt, va_list al)
{
	struct xts_log *l = (struct xts_log *)lg;
	char buf[400];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, al);
	n = strlen(buf);
	if (errnoval >= 0 && n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(errnoval));
	if (level >= XTL_ERROR) {
		pthread_mutex_lock(&l->lock);
		snprintf(l->last, sizeof(l->last), "%s", buf);
		pthread_mutex_unlock(&l->lock);
	}
	if (level >= XTL_WARN || (l->verbose && level >= XTL_INFO))
		log_msg(level >= XTL_WARN ? LOG_LVL_WARN : LOG_LVL_DEBUG,
		    "%s: %s", context ? context : "libxl", buf);
}

static void
xts_log_destroy(struct xentoollog_logger *lg)
{
	(void)lg;
}

static void
xts_log_init(struct xts_log *l, int verbose)
{
	memset(l, 0, sizeof(*l));
	l->vt.vmessage = xts_vmessage;
	l->vt.progress = NULL;
	l->vt.destroy = xts_log_destroy;
	l->verbose = verbose;
	pthread_mutex_init(&l->lock, NULL);
}

/* libxl's last error, or what, into buf. */
static const char *
xts_log_last(struct xts_log *l, const char *what, char *buf, size_t len)
{
	pthread_mutex_lock(&l->lock);
	if (l->last[0] != '\0')
		snprintf(buf, len, "%s (libxl: %s)", what, l->last);
	else
		snprintf(buf, len, "%s", what);
	pthread_mutex_unlock(&l->lock);
	return buf;
}

static const libxl_childproc_hooks xts_child_hooks = {
	.chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
};

static int
xts_ctx(libxl_ctx **ctx, struct xts_log *l, char *err, size_t len)
{
	if (libxl_ctx_alloc(ctx, LIBXL_VERSION, 0, &l->vt) != 0) {
		*ctx = NULL;
		snprintf(err, len, "cannot open libxl (is this dom0 with "
		    "xenstored running?)");
		return -EIO;
	}
	libxl_childproc_setmode(*ctx, &xts_child_hooks, NULL);
	return 0;
}

/* libxl's ERROR_* as an errno (roughly: the message says more). */
static int
xts_errno(int lrc)
{
	switch (lrc) {
	case ERROR_NOMEM:		return -ENOMEM;
	case ERROR_NOPARAVIRT:
	case ERROR_NOT_READY:		return -EAGAIN;
	case ERROR_DOMAIN_NOTFOUND:	return -ESRCH;
	case ERROR_INVAL:		return -EINVAL;
	default:			return -EIO;
	}
}

int
xts_sibling(const char *prog, char *out, size_t len)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(out, len, "%s/%s", self, prog) >= len)
		return -ENAMETOOLONG;
	return access(out, X_OK) == 0 ? 0 : -errno;
}

/* ---- source -------------------------------------------------------------- */

struct xts_source {
	struct xts_log	 log;
	libxl_ctx	*ctx;
	uint32_t	 domid;
	char		*name;
	char		 away[512];
	char		*json;
	int		 suspended;
	int		 renamed;
};

int
xts_source_open(const char *dom, int verbose, struct xts_source **out,
    char *err, size_t errlen)
{
	struct xts_source *s;
	libxl_domain_config dc;
	char *end, why[512];
	unsigned long v;
	int lrc, rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	xts_log_init(&s->log, verbose);
	if ((rc = xts_ctx(&s->ctx, &s->log, err, errlen)) != 0)
		goto fail;
	errno = 0;
	v = strtoul(dom, &end, 10);
	if (*dom != '\0' && *end == '\0' && errno == 0 && v < 0x7ff0) {
		s->domid = (uint32_t)v;
		s->name = libxl_domid_to_name(s->ctx, s->domid);
	} else if (libxl_name_to_domid(s->ctx, dom, &s->domid) == 0) {
		s->name = libxl_domid_to_name(s->ctx, s->domid);
	}
	if (s->name == NULL) {
		snprintf(err, errlen, "no domain %s on this host", dom);
		rc = -ESRCH;
		goto fail;
	}
	if (s->domid == 0) {
		snprintf(err, errlen, "domain 0 is the control domain: it "
		    "cannot be migrated");
		rc = -EINVAL;
		goto fail;
	}
	libxl_domain_config_init(&dc);
	lrc = libxl_retrieve_domain_configuration(s->ctx, s->domid, &dc, NULL);
	if (lrc == 0)
		s->json = libxl_domain_config_to_json(s->ctx, &dc);
	libxl_domain_config_dispose(&dc);
	if (lrc != 0 || s->json == NULL) {
		snprintf(err, errlen, "%s", xts_log_last(&s->log, "cannot "
		    "read the domain's configuration from libxl", why,
		    sizeof(why)));
		rc = -EIO;
		goto fail;
	}
	snprintf(s->away, sizeof(s->away), "%s" XTS_AWAY, s->name);
	*out = s;
	return 0;
fail:
	xts_source_free(s);
	return rc;
}

uint32_t
xts_source_domid(const struct xts_source *s)
{
	return s->domid;
}

const char *
xts_source_config(const struct xts_source *s, size_t *len)
{
	*len = strlen(s->json);
	return s->json;
}

static double
xts_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * The rename comes first, while the guest still runs: it is a xenstore
 * transaction after a scan of every domain's name (tens of milliseconds
 * on a busy dom0), and done after the suspend it delayed the last pass
 * and so the guest's downtime.  The guest does not see its name go; on
 * any failure xts_source_finish gives the name back.
 */
int
xts_source_suspend(void *arg)
{
	struct xts_source *s = arg;
	double t0, t1;
	int lrc;

	t0 = xts_ms();
	lrc = libxl_domain_rename(s->ctx, s->domid, s->name, s->away);
	if (lrc != 0) {
		char why[512];

		log_err("%s", xts_log_last(&s->log, "cannot rename the "
		    "source domain", why, sizeof(why)));
		return xts_errno(lrc);
	}
	s->renamed = 1;
	t1 = xts_ms();
	log_debug("domain %u renamed %s in %.1f ms; asking libxl to suspend "
	    "it", s->domid, s->away, t1 - t0);
	lrc = libxl_domain_suspend_only(s->ctx, s->domid, NULL);
	if (lrc != 0) {
		char why[512];

		log_err("%s", xts_log_last(&s->log, "libxl could not suspend "
		    "the guest", why, sizeof(why)));
		return xts_errno(lrc);
	}
	s->suspended = 1;
	log_debug("domain %u suspended by libxl in %.1f ms", s->domid,
	    xts_ms() - t1);
	return 0;
}

int
xts_source_finish(struct xts_source *s, int outcome, char *err,
    size_t errlen)
{
	char why[512];
	int lrc, rc = 0;

	if (outcome == 0) {
		lrc = libxl_domain_destroy(s->ctx, s->domid, NULL);
		if (lrc != 0) {
			snprintf(err, errlen, "%s", xts_log_last(&s->log,
			    "cannot destroy the source domain", why,
			    sizeof(why)));
			return xts_errno(lrc);
		}
		log_debug("source domain %u destroyed", s->domid);
		return 0;
	}
	if (s->renamed) {
		lrc = libxl_domain_rename(s->ctx, s->domid, s->away, s->name);
		if (lrc != 0) {
			snprintf(err, errlen, "%s", xts_log_last(&s->log,
			    "cannot give the source domain its name back",
			    why, sizeof(why)));
			rc = xts_errno(lrc);
		} else {
			s->renamed = 0;
		}
	}
	if (outcome < 0 && s->suspended) {
		lrc = libxl_domain_resume(s->ctx, s->domid, 1, NULL);
		if (lrc != 0) {
			snprintf(err, errlen, "%s", xts_log_last(&s->log,
			    "cannot resume the source domain", why,
			    sizeof(why)));
			return xts_errno(lrc);
		}
		s->suspended = 0;
		log_info("domain %s (%u) resumed on this host", s->name,
		    s->domid);
	}
	return rc;
}

/* With -v: where this process spent its time (libxc calls, CPU). */
static void
xts_log_timing(const char *what)
{
	char xt[512];
	struct rusage ru;

	if (!xmig_log_on(XMIG_LOG_DEBUG) || getrusage(RUSAGE_SELF, &ru) != 0)
		return;
	xen_timing(xt, sizeof(xt));
	log_debug("%s timing: cpu user %.0f ms sys %.0f ms; %s", what,
	    (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec /
	    1e3, (double)ru.ru_stime.tv_sec * 1e3 +
	    (double)ru.ru_stime.tv_usec / 1e3, xt);
}

void
xts_source_free(struct xts_source *s)
{
	if (s == NULL)
		return;
	xts_log_timing("send");
	free(s->json);
	free(s->name);
	libxl_ctx_free(s->ctx);
	free(s);
}

/* ---- target -------------------------------------------------------------- */

enum xts_state {
	XT_NONE,	/* no configuration yet */
	XT_CONFIG,	/* configuration accepted */
	XT_CREATING,	/* the create thread runs; helper connected */
	XT_DONE,	/* the helper was told; the thread has ended */
	XT_STARTED,
};

struct xts_target {
	struct xts_log		 log;
	libxl_ctx		*ctx;
	xc_interface		*xch;		/* the unpause; NULL: libxl's */
	char			 helper[PATH_MAX];
	enum xts_state		 state;
	libxl_domain_config	 dc;
	int			 have_dc;
	char			*name;		/* the domain's own name */
	char			 incoming[512];

	int			 lfd;		/* listening for the helper */
	int			 hfd;		/* the helper's connection */
	int			 sfd[2];	/* the libxl stream pipe */
	int			 donefd[2];	/* the thread says it ended */
	pthread_t		 thr;
	int			 thr_started;
	int			 thr_rc;	/* libxl's */
	uint32_t		 domid;
	int			 told;		/* DONE, EARLY or FAIL sent */
	int			 early;		/* EARLY sent: libxl finishes now */
};

/*
 * The libxl stream migrate-receive writes (SPEC 17.1): the header, then
 * LIBXC_CONTEXT and END with no libxc stream between them.
 */
static int
xts_libxl_stream(struct xp_buf *b)
{
	uint8_t hdr[XP_LIBXL_HDR_SIZE];

	xp_libxl_header_encode(hdr, 0);
	if (buf_append(b, hdr, sizeof(hdr)) != 0 ||
	    xp_libxl_record_encode(b, XP_LIBXL_LIBXC_CONTEXT, NULL, 0) ||
	    xp_libxl_record_encode(b, XP_LIBXL_END, NULL, 0))
		return -ENOMEM;
	return 0;
}

static int
xts_config(void *arg, uint32_t kind, const char *text, size_t len,
    char *msg, size_t msglen)
{
	struct xts_target *t = arg;
	uint64_t need = 0, freekb = 0;
	char *json, why[512];
	int rc;

	if (t->state != XT_NONE) {
		snprintf(msg, msglen, "a second domain configuration");
		return -EPROTO;
	}
	if (kind != XMIG_CONFIG_LIBXL_JSON) {
		snprintf(msg, msglen, "configuration kind %u is not libxl "
		    "JSON", kind);
		return -EPROTO;
	}
	if (t->ctx == NULL && (rc = xts_ctx(&t->ctx, &t->log, msg,
	    msglen)) != 0)
		return rc;
	if ((json = strndup(text, len)) == NULL)
		return -ENOMEM;
	libxl_domain_config_init(&t->dc);
	t->have_dc = 1;
	rc = libxl_domain_config_from_json(t->ctx, &t->dc, json);
	free(json);
	if (rc != 0) {
		snprintf(msg, msglen, "%s", xts_log_last(&t->log, "the domain "
		    "configuration is not libxl JSON this libxl reads", why,
		    sizeof(why)));
		return -EPROTO;
	}
	if (t->dc.c_info.name == NULL || t->dc.c_info.name[0] == '\0') {
		snprintf(msg, msglen, "the domain configuration has no name");
		return -EPROTO;
	}
	if (t->dc.c_info.type != LIBXL_DOMAIN_TYPE_PVH &&
	    t->dc.c_info.type != LIBXL_DOMAIN_TYPE_PV) {
		snprintf(msg, msglen, "domain %s is an HVM guest: "
		    "migrate-receive --backend xen restores PVH and PV guests "
		    "(HVM needs the device model's state, which does not "
		    "travel yet; xl save/restore can move it)",
		    t->dc.c_info.name);
		return -EOPNOTSUPP;
	}
	/* As xl's freemem(), without ballooning dom0. */
	if (libxl_domain_need_memory(t->ctx, &t->dc, INVALID_DOMID,
	    &need) == 0 && libxl_get_free_memory(t->ctx, &freekb) == 0 &&
	    need > freekb) {
		snprintf(msg, msglen, "domain %s needs %" PRIu64 " MiB; this "
		    "host has %" PRIu64 " MiB free", t->dc.c_info.name,
		    need >> 10, freekb >> 10);
		return -ENOMEM;
	}
	if ((t->name = strdup(t->dc.c_info.name)) == NULL)
		return -ENOMEM;
	snprintf(t->incoming, sizeof(t->incoming), "%s" XTS_INCOMING,
	    t->name);
	free(t->dc.c_info.name);
	if ((t->dc.c_info.name = strdup(t->incoming)) == NULL)
		return -ENOMEM;
	/*
	 * For a PV or PVH guest libxl's unpause is Xen's after reading the
	 * domain's type (only HVM has a device model to resume): the start
	 * calls Xen directly, inside the downtime, through a handle opened
	 * now.  Without one it goes through libxl.
	 */
	if (t->xch == NULL)
		t->xch = xc_interface_open(NULL, NULL, 0);
	t->state = XT_CONFIG;
	log_debug("configuration of %s accepted (%" PRIu64 " MiB needed, %"
	    PRIu64 " MiB free)", t->name, need >> 10, freekb >> 10);
	return 0;
}

static void *
xts_create_thread(void *arg)
{
	struct xts_target *t = arg;
	libxl_domain_restore_params params;
	uint32_t domid = INVALID_DOMID;
	char c = 1;

	libxl_domain_restore_params_init(&params);
	params.checkpointed_stream = LIBXL_CHECKPOINTED_STREAM_NONE;
	params.stream_version = 2;
	t->thr_rc = libxl_domain_create_restore(t->ctx, &t->dc, &domid,
	    t->sfd[0], -1, &params, NULL, NULL);
	libxl_domain_restore_params_dispose(&params);
	if (t->thr_rc == 0)
		t->domid = domid;
	if (write(t->donefd[1], &c, 1) < 0) {
		/* the reader polls; nothing else to do */
	}
	return NULL;
}

/* Read one line (without its newline) from fd within ms. */
static int
xts_read_line(int fd, char *buf, size_t len, int ms)
{
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (n + 1 < len) {
		ssize_t r;

		if (poll(&p, 1, ms) <= 0)
			return -ETIMEDOUT;
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -EOVERFLOW;
}

static int
xts_say(struct xts_target *t, const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EOVERFLOW;
	return write_all(t->hfd, buf, (size_t)n) == 0 ? 0 : -errno;
}

/* The Xen backend's static-data hook: libxl's static_data_done. */
static int
xts_static(void *arg, unsigned missing)
{
	struct xts_target *t = arg;
	char line[64];
	int rc, reply;

	if (t->hfd < 0)
		return -EPIPE;
	if ((rc = xts_say(t, "STATIC %u\n", missing)) != 0)
		return rc;
	if ((rc = xts_read_line(t->hfd, line, sizeof(line), 60000)) != 0)
		return rc;
	if (sscanf(line, "OK %d", &reply) != 1)
		return -EPROTO;
	return reply == 0 ? 0 : -EIO;
}

/* Wait for the create thread and collect libxl's verdict. */
static int
xts_join(struct xts_target *t)
{
	if (!t->thr_started)
		return 0;
	pthread_join(t->thr, NULL);
	t->thr_started = 0;
	return t->thr_rc;
}

static int
xts_create(void *arg, const struct domain_info *info, char *spec,
    size_t speclen, char *msg, size_t msglen)
{
	struct xts_target *t = arg;
	struct sockaddr_un sa;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct pollfd p[2];
	unsigned domid, sport, sdom, cport, cdom;
	char name[80], line[256], why[512];
	uint64_t rnd;
	size_t nlen;
	int rc;

	(void)info;
	if (t->state != XT_CONFIG) {
		snprintf(msg, msglen, "no domain configuration");
		return -EPROTO;
	}
	/* Where the helper finds us: an abstract socket, owner checked. */
	rnd = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
	nlen = (size_t)snprintf(name, sizeof(name), "xmig-restore-%ld-%016"
	    PRIx64, (long)getpid(), rnd);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, nlen);
	t->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen)) <
	    0 || listen(t->lfd, 1) < 0) {
		rc = -errno;
		snprintf(msg, msglen, "cannot listen for the save helper: %s",
		    strerror(errno));
		return rc;
	}
	if (pipe2(t->sfd, O_CLOEXEC) != 0 || pipe2(t->donefd, O_CLOEXEC) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		return rc;
	}
	{
		struct xp_buf b = { 0 };

		rc = xts_libxl_stream(&b);
		if (rc == 0 && write_all(t->sfd[1], b.data, b.len) != 0)
			rc = -errno;
		buf_free(&b);
		if (rc != 0) {
			snprintf(msg, msglen, "writing libxl's stream: %s",
			    strerror(-rc));
			return rc;
		}
	}
	close(t->sfd[1]);
	t->sfd[1] = -1;
	setenv("LIBXL_SAVE_HELPER", t->helper, 1);
	setenv("XMIG_RESTORE_DELEGATE", name, 1);
	xen_set_static_hook(xts_static, t);
	if (pthread_create(&t->thr, NULL, xts_create_thread, t) != 0) {
		snprintf(msg, msglen, "cannot start libxl's thread");
		return -EAGAIN;
	}
	t->thr_started = 1;
	t->state = XT_CREATING;
	log_debug("libxl creates %s; waiting for its save helper",
	    t->incoming);

	p[0].fd = t->lfd;
	p[0].events = POLLIN;
	p[1].fd = t->donefd[0];
	p[1].events = POLLIN;
	rc = poll(p, 2, XTS_HELLO_MS);
	if (rc <= 0 || !(p[0].revents & POLLIN)) {
		/* libxl gave up before starting the helper, or hung. */
		if (rc > 0) {
			xts_join(t);
			snprintf(msg, msglen, "%s", xts_log_last(&t->log,
			    "libxl could not create the domain", why,
			    sizeof(why)));
			return -EIO;
		}
		snprintf(msg, msglen, "libxl did not start the save helper "
		    "within %d s", XTS_HELLO_MS / 1000);
		return -ETIMEDOUT;
	}
	t->hfd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
	close(t->lfd);
	t->lfd = -1;
	if (t->hfd < 0 || getsockopt(t->hfd, SOL_SOCKET, SO_PEERCRED, &cred,
	    &cl) != 0 || cred.uid != geteuid()) {
		snprintf(msg, msglen, "the save helper's connection failed or "
		    "came from another user");
		return -EPERM;
	}
	if ((rc = xts_read_line(t->hfd, line, sizeof(line), 30000)) != 0 ||
	    sscanf(line, "HELLO %u %u %u %u %u", &domid, &sport, &sdom,
	    &cport, &cdom) != 5) {
		snprintf(msg, msglen, "the save helper did not say which "
		    "domain libxl built (%s)", rc ? strerror(-rc) : line);
		return -EPROTO;
	}
	t->domid = domid;
	snprintf(spec, speclen, "domid=%u,store_port=%u,store_domid=%u,"
	    "console_port=%u,console_domid=%u,toolstack=1", domid, sport,
	    sdom, cport, cdom);
	log_debug("libxl built domain %u (%s); restoring into it", domid,
	    t->incoming);
	return 0;
}

/*
 * XMIG_EARLY_PARAMS came (SPEC 12.5): the store and console pages are set
 * up, so libxl can finish the domain (xenstore, console, devices) while
 * the memory comes.  The helper leaves a watchdog on our connection that
 * destroys the domain if this process dies before saying STARTED or GONE
 * (SPEC 17.2).
 */
static int
xts_prepared(void *arg, struct backend *b, char *msg, size_t msglen)
{
	struct xts_target *t = arg;
	uint64_t store = 0, console = 0;
	int rc;

	(void)b;
	if (t->state != XT_CREATING || t->hfd < 0 || t->told) {
		snprintf(msg, msglen, "no domain being created");
		return -EPROTO;
	}
	if ((rc = xen_restore_results(&store, &console)) != 0) {
		snprintf(msg, msglen, "the early state gave no store/console "
		    "pages");
		return rc;
	}
	rc = xts_say(t, "EARLY 0 %" PRIu64 " %" PRIu64 "\n", store, console);
	t->told = 1;
	if (rc != 0) {
		snprintf(msg, msglen, "cannot reach the save helper: %s",
		    strerror(-rc));
		return rc;
	}
	t->early = 1;
	log_debug("domain %u's store and console are set up; libxl completes "
	    "it while the memory comes", t->domid);
	return 0;
}

static int
xts_finish(void *arg, struct backend *b, char *msg, size_t msglen)
{
	struct xts_target *t = arg;
	uint64_t store = 0, console = 0;
	char why[512];
	int lrc, rc;

	(void)b;
	if (t->state != XT_CREATING || t->hfd < 0) {
		snprintf(msg, msglen, "no domain being created");
		return -EPROTO;
	}
	if (t->early)	/* EARLY went out: libxl is at it already */
		log_debug("domain %u restored; waiting for libxl", t->domid);
	else {
		if ((rc = xen_restore_results(&store, &console)) != 0) {
			snprintf(msg, msglen, "the restore gave no "
			    "store/console pages");
			return rc;
		}
		log_debug("domain %u restored; libxl completes it", t->domid);
		rc = xts_say(t, "DONE 0 %" PRIu64 " %" PRIu64 "\n", store,
		    console);
		t->told = 1;
		if (rc != 0) {
			snprintf(msg, msglen, "cannot reach the save helper: "
			    "%s", strerror(-rc));
			return rc;
		}
	}
	lrc = xts_join(t);
	t->state = XT_DONE;
	if (lrc != 0) {
		snprintf(msg, msglen, "%s", xts_log_last(&t->log, "libxl could "
		    "not complete the domain", why, sizeof(why)));
		return xts_errno(lrc);
	}
	log_debug("libxl completed domain %u (%s), paused", t->domid,
	    t->incoming);
	return 0;
}

static int
xts_start(void *arg, char *msg, size_t msglen)
{
	struct xts_target *t = arg;
	char why[512];
	double t0;
	int lrc;

	if (t->state != XT_DONE) {
		snprintf(msg, msglen, "the domain is not complete");
		return -EPROTO;
	}
	/*
	 * Unpause first: the guest's downtime ends here, and the rename
	 * (a xenstore transaction after a scan of every domain's name) can
	 * follow.  Once the guest runs this cannot fail any more: the source
	 * must not be resumed beside it, so a failed rename is only said.
	 */
	t0 = xts_ms();
	if (t->xch != NULL && xc_domain_unpause(t->xch, t->domid) == 0)
		lrc = 0;
	else
		lrc = libxl_domain_unpause(t->ctx, t->domid, NULL);
	if (lrc != 0) {
		snprintf(msg, msglen, "%s", xts_log_last(&t->log, "cannot "
		    "unpause the new domain", why, sizeof(why)));
		return xts_errno(lrc);
	}
	t->state = XT_STARTED;
	log_debug("domain %u (%s) unpaused in %.1f ms", t->domid, t->incoming,
	    xts_ms() - t0);
	lrc = libxl_domain_rename(t->ctx, t->domid, t->incoming, t->name);
	if (lrc != 0)
		log_err("domain %u runs, but as %s: %s", t->domid, t->incoming,
		    xts_log_last(&t->log, "cannot rename it", why,
		    sizeof(why)));
	if (t->early && t->hfd >= 0) {	/* the helper's watchdog goes */
		xts_say(t, "STARTED\n");
		close(t->hfd);
		t->hfd = -1;
	}
	log_info("domain %s runs here as domain %u", t->name, t->domid);
	return 0;
}

static void
xts_abort(void *arg)
{
	struct xts_target *t = arg;
	int lrc;

	if (t->state == XT_STARTED || t->state == XT_NONE ||
	    t->state == XT_CONFIG)
		return;
	if (t->lfd >= 0) {	/* the helper cannot reach us: it fails */
		close(t->lfd);
		t->lfd = -1;
	}
	if (t->hfd >= 0 && !t->told) {
		xts_say(t, "FAIL %d the migration failed on the receiving "
		    "side\n", EIO);
		t->told = 1;
	}
	lrc = xts_join(t);
	if (lrc == 0 && t->domid != (uint32_t)INVALID_DOMID && t->state >= XT_CREATING) {
		/* libxl finished the domain: it goes. */
		if (libxl_domain_destroy(t->ctx, t->domid, NULL) != 0)
			log_err("cannot destroy the half-migrated domain %u "
			    "(%s)", t->domid, t->incoming);
		else {
			log_info("half-migrated domain %u (%s) destroyed",
			    t->domid, t->incoming);
			if (t->early && t->hfd >= 0)
				xts_say(t, "GONE\n");	/* watchdog */
		}
	}
	if (t->hfd >= 0) {
		close(t->hfd);
		t->hfd = -1;
	}
	t->state = XT_NONE;
}

int
xts_target_new(const char *helper, int verbose, struct xts_target **out,
    struct recv_toolstack *ts, char *err, size_t errlen)
{
	struct xts_target *t;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -ENOMEM;
	xts_log_init(&t->log, verbose);
	if ((size_t)snprintf(t->helper, sizeof(t->helper), "%s", helper) >=
	    sizeof(t->helper)) {
		snprintf(err, errlen, "%s: path too long", helper);
		free(t);
		return -ENAMETOOLONG;
	}
	t->lfd = t->hfd = -1;
	t->sfd[0] = t->sfd[1] = t->donefd[0] = t->donefd[1] = -1;
	t->domid = INVALID_DOMID;
	memset(ts, 0, sizeof(*ts));
	ts->arg = t;
	ts->config = xts_config;
	ts->create = xts_create;
	ts->finish = xts_finish;
	ts->prepared = xts_prepared;
	ts->start = xts_start;
	ts->abort = xts_abort;
	*out = t;
	return 0;
}

void
xts_target_free(struct xts_target *t)
{
	int i;

	if (t == NULL)
		return;
	xts_abort(t);
	xts_log_timing("receive");
	for (i = 0; i < 2; i++) {
		if (t->sfd[i] >= 0)
			close(t->sfd[i]);
		if (t->donefd[i] >= 0)
			close(t->donefd[i]);
	}
	if (t->lfd >= 0)
		close(t->lfd);
	if (t->hfd >= 0)
		close(t->hfd);
	if (t->have_dc)
		libxl_domain_config_dispose(&t->dc);
	free(t->name);
	if (t->xch != NULL)
		xc_interface_close(t->xch);
	libxl_ctx_free(t->ctx);
	free(t);
}
