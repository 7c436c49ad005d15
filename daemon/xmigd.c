/*
 * xmigd -- one migration daemon per host (issue 10, first version): the
 * migration listeners, the JSON-RPC control socket (doc/control-api.md),
 * a table of hosted domains, each in a domain process of its own
 * (domproc.c), and the migrations they run; sd_notify and socket
 * activation for systemd.  One process, one event_base.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "daemon.h"
#include "xmig.h"
#include "xmigd.h"

struct xmigd xd;

/* ---- systemd ----------------------------------------------------------- */

/* sd_notify of our own: one datagram to $NOTIFY_SOCKET, if set. */
void
notify(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	char msg[256];
	socklen_t len;
	va_list ap;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sa.sun_path))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa, len);
	close(fd);
}

void
notify_status(void)
{
	unsigned in, out = active_migrations(&in);

	notify("STATUS=%u outgoing and %u incoming migrations", out, in);
}

static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify("WATCHDOG=1");
}
/* ---- migration listeners ----------------------------------------------- */

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct domain *d;
	unsigned in, refusers = 0;
	char busy[160];
	int fd, admit;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (xd.stopping) {
		xport_abort(fd);
		close(fd);
		return;
	}
	active_migrations(&in);
	for (d = xd.domains; d != NULL; d = d->next)
		if (strcmp(d->state, "refusing") == 0)
			refusers++;
	admit = in < xd.max_sessions;
	if (!admit && refusers >= XMIGD_REFUSERS_MAX) {
		xport_abort(fd);
		close(fd);
		return;
	}
	snprintf(busy, sizeof(busy), "busy: %u migrations in progress "
	    "(max-sessions %u); try again later", in, xd.max_sessions);
	if (domain_spawn(NULL, NULL, fd, l->tls_ctx, admit ? NULL : busy) ==
	    NULL)
		log_err("fork for a connection on %s: %s", l->uri,
		    strerror(errno));
	close(fd);
	notify_status();
}

static int
listener_add_fd(const char *uri, int fd, int tls)
{
	struct listener *l;
	char err[512];

	if (xd.nlis >= XMIGD_LISTEN_MAX) {
		log_err("at most %d listeners", XMIGD_LISTEN_MAX);
		return -1;
	}
	l = &xd.lis[xd.nlis];
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	l->fd = fd;
	if (tls && (l->tls_ctx = xport_tls_ctx_new(&xd.cc.tls, 1, err,
	    sizeof(err))) == NULL) {
		log_err("%s: %s", uri, err);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	l->ev = event_new(xd.base, fd, EV_READ | EV_PERSIST, on_accept, l);
	if (l->ev == NULL || event_add(l->ev, NULL) != 0)
		return -1;
	xd.nlis++;
	if (xport_bound(fd, err, sizeof(err)) == 0)
		log_info("listening on %s%s", err, tls ? " (tls)" : "");
	return 0;
}

static int
listener_open(const char *uri)
{
	struct xport_uri u;
	char err[512];
	int fd;

	if (xport_parse(uri, &u, err, sizeof(err)) != 0) {
		log_err("--listen %s: %s", uri, err);
		return -1;
	}
	if (u.kind != XPORT_TCP && u.kind != XPORT_TLS) {
		log_err("--listen %s: only tcp:HOST:PORT and tls:HOST:PORT", uri);
		return -1;
	}
	if ((fd = xport_listen(&u, 0, err, sizeof(err))) < 0) {
		log_err("--listen %s: %s", uri, err);
		return -1;
	}
	return listener_add_fd(uri, fd, u.kind == XPORT_TLS);
}
/* ---- configuration ----------------------------------------------------- */

/*
 * key = value lines, '#' comments.  limits_only: SIGHUP (max-sessions and
 * max-memory; the command line still wins).  Returns 0, or -1 after
 * printing why.
 */
static int
config_read(int limits_only)
{
	FILE *f;
	char line[1024], *k, *v, *e, *end;
	unsigned lineno = 0;
	unsigned long n;
	uint64_t sz;

	if (!xd.cli_memory_budget)
		xd.memory_budget = 0;	/* a key taken out is gone too */
	if ((f = fopen(xd.config_path, "r")) == NULL) {
		if (errno == ENOENT && !xd.config_given)
			return 0;
		log_err("%s: %s", xd.config_path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if ((e = strchr(line, '#')) != NULL)
			*e = '\0';
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		e = k + strlen(k);
		while (e > k && (e[-1] == '\n' || e[-1] == ' ' ||
		    e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (*k == '\0')
			continue;
		if ((v = strchr(k, '=')) == NULL) {
			log_err("%s:%u: expected key = value", xd.config_path,
			    lineno);
			goto bad;
		}
		for (e = v; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
		if (strcmp(k, "max-sessions") == 0) {
			n = strtoul(v, &end, 10);
			if (*end != '\0' || end == v || n < 1 || n > 1024) {
				log_err("%s:%u: max-sessions: a count from 1 "
				    "to 1024", xd.config_path, lineno);
				goto bad;
			}
			if (!xd.cli_max_sessions)
				xd.max_sessions = (unsigned)n;
		} else if (strcmp(k, "max-memory") == 0) {
			if (parse_size(v, &sz) != 0) {
				log_err("%s:%u: max-memory: a size",
				    xd.config_path, lineno);
				goto bad;
			}
			if (!xd.cli_max_memory)
				xd.max_memory = sz;
		} else if (strcmp(k, "memory-budget") == 0) {
			if (parse_size(v, &sz) != 0) {
				log_err("%s:%u: memory-budget: a size",
				    xd.config_path, lineno);
				goto bad;
			}
			if (!xd.cli_memory_budget)
				xd.memory_budget = sz;
		} else if (strcmp(k, "metrics") == 0) {
			if (!limits_only && !xd.cli_metrics &&
			    metrics_listen(v) != 0)
				goto bad;
		} else if (strcmp(k, "listen") == 0) {
			if (!limits_only && listener_open(v) != 0)
				goto bad;
		} else if (strcmp(k, "control") == 0) {
			if (!limits_only && xd.control_path == NULL &&
			    (xd.control_path = strdup(v)) == NULL)
				goto bad;
		} else if (strcmp(k, "backend") == 0) {
			if (strcmp(v, "sim") != 0 && strcmp(v, "xen") != 0) {
				log_err("%s:%u: backend: sim or xen",
				    xd.config_path, lineno);
				goto bad;
			}
			if (!limits_only && !xd.cli_backend)
				xd.xen = strcmp(v, "xen") == 0;
		} else if (strcmp(k, "state-dir") == 0) {
			if (!limits_only && xd.state_dir == NULL &&
			    (xd.state_dir = strdup(v)) == NULL)
				goto bad;
		} else {
			log_err("%s:%u: unknown key '%s' (max-sessions, "
			    "max-memory, memory-budget, listen, control, "
			    "metrics, state-dir, backend)", xd.config_path, lineno,
			    k);
			goto bad;
		}
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	return -1;
}

/* ---- signals ----------------------------------------------------------- */

/*
 * Migrations that have not ended XMIGD_STOP_S after the detach: xmigd
 * leaves them to the next xmigd's recovery.
 */
#define XMIGD_STOP_S	60

static void
on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct domain *d;

	(void)fd;
	(void)what;
	(void)arg;
	for (d = xd.domains; d != NULL; d = d->next)
		if (strcmp(d->state, "running") != 0 &&
		    strcmp(d->state, "paused") != 0)
			log_warn("domain process %ld (%s) still %s after %d s:"
			    " left to the next xmigd", (long)d->pid, d->name,
			    d->state, XMIGD_STOP_S);
	event_base_loopexit(xd.base, NULL);
}

static void
stop_begin(void)
{
	static struct event *t;
	struct timeval tv = { XMIGD_STOP_S, 0 };

	struct domain *d;
	unsigned i;

	if (xd.stopping)
		return;
	xd.stopping = 1;
	notify("STOPPING=1");
	log_info("stopping: cancelling migrations; the domains run on (the "
	    "next xmigd re-adopts them)");
	for (i = 0; i < xd.nlis; i++)
		event_del(xd.lis[i].ev);
	for (d = xd.domains; d != NULL; d = d->next)
		domain_send(d, "detach");
	if ((t = evtimer_new(xd.base, on_stop_timeout, NULL)) != NULL)
		evtimer_add(t, &tv);
	stop_check();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	int status;

	(void)what;
	(void)arg;
	if (sig == SIGCHLD) {
		/* Domains leave the table when their pair closes. */
		pid_t pid;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (WIFSIGNALED(status))
				log_warn("domain process %ld killed by "
				    "signal %d", (long)pid, WTERMSIG(status));
	} else if (sig == SIGHUP) {
		if (config_read(1) == 0)
			log_info("reloaded %s: max-sessions %u, max-memory "
			    "%llu, memory-budget %llu", xd.config_path,
			    xd.max_sessions, (unsigned long long)xd.max_memory,
			    (unsigned long long)xd.memory_budget);
		notify("READY=1");
	} else
		stop_begin();
}

/* ---- main -------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: xmigd [options]\n"
"\n"
"The xmig migration daemon: receives migrations on its listeners, hosts\n"
"domains (sim ones, each in a process of its own, or this host's Xen\n"
"guests) and migrates them as its control socket asks (xmigctl;\n"
"doc/control-api.md).\n"
"\n"
"Options:\n"
"  --listen URI          tcp:HOST:PORT or tls:HOST:PORT (repeatable); a\n"
"                        plain tcp: listener binds loopback addresses only\n"
"  --control PATH        the control socket (default " XMIGD_CONTROL_DEFAULT ",\n"
"                        mode 0660, group xmig when it exists)\n"
"  --state-dir DIR       where domain processes register (DIR/domains) and\n"
"                        the next xmigd finds them (default " XMIGD_STATE_DEFAULT ");\n"
"                        one xmigd per DIR\n"
"  --backend sim|xen     where domains live (default sim).  xen: the\n"
"                        host's Xen guests (dom0 aside), listed through\n"
"                        libxl; migrate moves one as migrate-send\n"
"                        xen:NAME does, in a process per migration;\n"
"                        incoming migrations are restored into Xen as\n"
"                        migrate-receive --backend xen does; create and\n"
"                        destroy are refused (xl's), resume runs a guest\n"
"                        left suspended.  Needs root in dom0 and\n"
"                        xmig-save-helper beside xmigd\n"
"  --config FILE         key = value lines: max-sessions, max-memory,\n"
"                        memory-budget, listen, control, metrics,\n"
"                        state-dir, backend (default " XMIGD_CONFIG_DEFAULT ";\n"
"                        only that default may be missing); SIGHUP\n"
"                        re-reads max-sessions, max-memory and\n"
"                        memory-budget\n"
"  --max-sessions N      incoming migrations at once (default 8); beyond,\n"
"                        a sender is answered \"busy\"\n"
"  --max-memory SIZE     refuse incoming domains larger than SIZE\n"
"  --memory-budget SIZE  refuse an incoming domain (before its memory is\n"
"                        sent) when it and the domains hosted and being\n"
"                        received here would pass SIZE in all\n"
"  --metrics tcp:127.0.0.1:PORT\n"
"                        also serve the metrics (Prometheus text) as\n"
"                        HTTP GET /metrics there, loopback only (port 0:\n"
"                        any; the log names it)\n"
"  --timeout SEC         give up on a stalled sender (default 60)\n"
"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
"                        this host's certificate and key, and the CA that\n"
"                        signs the peers' (PEM): for the tls: listeners and\n"
"                        for outgoing tls: migrations (which check the\n"
"                        HOST of tls:HOST:PORT in the receiver's)\n"
"  --tls-peer NAME, --tls-allow FILE\n"
"                        as migrate-receive's: who may send to a tls:\n"
"                        listener\n"
"  -v, --verbose         debug lines too\n"
"  -V, --version, -h, --help\n"
"\n"
"Who may use the control socket: root, the daemon's own user, and members\n"
"of group xmig (SO_PEERCRED); others are refused.  Under systemd: READY=1\n"
"once listening, STATUS= and WATCHDOG=1 through $NOTIFY_SOCKET, and the\n"
"sockets of LISTEN_FDS (a unix socket is the control socket, an inet one a\n"
"migration listener).  SIGTERM or SIGINT: outgoing migrations are\n"
"cancelled (each source resumes), incoming ones not past the handover are\n"
"discarded, and xmigd exits (after 60 s at most); the domain processes and\n"
"their domains run on.  At start xmigd re-adopts the domain processes\n"
"registered in --state-dir: running and paused domains are hosted again,\n"
"an outgoing migration in flight is cancelled, a half-received domain is\n"
"discarded, entries of processes that died are removed.  SIGTERM to a\n"
"domain process destroys its domain (xmigctl destroy does the same).\n"
"With --backend xen the guests live in Xen: a migration in flight is\n"
"re-adopted and cancelled like a sim one (the source resumes), and a\n"
"NAME--incoming or NAME--migratedaway left by a migration process that\n"
"died is destroyed, or renamed back and resumed (doc/control-api.md).\n");
}

enum { OPT_LISTEN = 256, OPT_CONTROL, OPT_BACKEND, OPT_CONFIG,
	OPT_MAX_SESSIONS, OPT_MAX_MEMORY, OPT_MEMORY_BUDGET, OPT_METRICS,
	OPT_STATE_DIR };

static const struct option longopts[] = {
	{ "listen",	required_argument,	NULL, OPT_LISTEN },
	{ "control",	required_argument,	NULL, OPT_CONTROL },
	{ "state-dir",	required_argument,	NULL, OPT_STATE_DIR },
	{ "backend",	required_argument,	NULL, OPT_BACKEND },
	{ "config",	required_argument,	NULL, OPT_CONFIG },
	{ "max-sessions", required_argument,	NULL, OPT_MAX_SESSIONS },
	{ "max-memory",	required_argument,	NULL, OPT_MAX_MEMORY },
	{ "memory-budget", required_argument,	NULL, OPT_MEMORY_BUDGET },
	{ "metrics",	required_argument,	NULL, OPT_METRICS },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	CMD_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

#define bad_usage(...) cmd_usage_error("xmigd", __VA_ARGS__)

/* LISTEN_FDS: the sockets systemd passes; 0, or -1 after printing. */
static int
socket_activation(void)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	struct sockaddr_storage ss;
	socklen_t len;
	int i, count, fd;
	char uri[64];

	if (pid == NULL || n == NULL || atol(pid) != (long)getpid())
		return 0;
	count = atoi(n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (i = 0; i < count; i++) {
		fd = 3 + i;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
			log_err("LISTEN_FDS: fd %d: %s", fd, strerror(errno));
			return -1;
		}
		if (ss.ss_family == AF_UNIX) {
			if (xd.control_ev != NULL) {
				log_err("LISTEN_FDS: two unix sockets");
				return -1;
			}
			evutil_make_socket_nonblocking(fd);
			if (control_start(fd) != 0)
				return -1;
		} else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
			snprintf(uri, sizeof(uri), "tcp:(fd %d)", fd);
			if (listener_add_fd(uri, fd, 0) != 0)
				return -1;
		} else {
			log_err("LISTEN_FDS: fd %d: not a unix or inet socket",
			    fd);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *listens[XMIGD_LISTEN_MAX];
	const char *metrics_uri = NULL;
	unsigned nlisten = 0, i;
	struct event *sigs[4], *wd = NULL;
	static const int signos[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct group *gr;
	const char *w;
	char *end;
	unsigned long v;
	int c, verbose = LOG_LVL_INFO, fd;

	log_init("xmigd", verbose);
	xd.max_sessions = 8;
	xd.config_path = XMIGD_CONFIG_DEFAULT;
	while ((c = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		if (c == OPT_PROGRESS || c == OPT_REPORT)
			return bad_usage("%s", "--progress and --report are "
			    "migrate-send's and migrate-receive's: xmigd "
			    "reports through its control socket");
		if (c >= OPT_PROGRESS && c < OPT_COMMON_END) {
			if (cmd_common_option("xmigd", c, optarg, &xd.cc) != 0)
				return 2;
			continue;
		}
		switch (c) {
		case OPT_LISTEN:
			if (nlisten >= XMIGD_LISTEN_MAX)
				return bad_usage("--listen: at most %d",
				    XMIGD_LISTEN_MAX);
			listens[nlisten++] = optarg;
			break;
		case OPT_CONTROL:
			xd.control_path = optarg;
			break;
		case OPT_STATE_DIR:
			if (*optarg == '\0')
				return bad_usage("--state-dir: empty");
			xd.state_dir = optarg;
			break;
		case OPT_BACKEND:
			if (strcmp(optarg, "sim") != 0 &&
			    strcmp(optarg, "xen") != 0)
				return bad_usage("--backend: '%s' is not sim "
				    "or xen", optarg);
			xd.xen = strcmp(optarg, "xen") == 0;
			xd.cli_backend = 1;
			break;
		case OPT_CONFIG:
			xd.config_path = optarg;
			xd.config_given = 1;
			break;
		case OPT_MAX_SESSIONS:
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 || v > 1024)
				return bad_usage("--max-sessions: '%s' is not "
				    "a count from 1 to 1024", optarg);
			xd.max_sessions = (unsigned)v;
			xd.cli_max_sessions = 1;
			break;
		case OPT_MAX_MEMORY:
			if (parse_size(optarg, &xd.max_memory) != 0 ||
			    xd.max_memory < 4096)
				return bad_usage("--max-memory: '%s' is not a "
				    "size", optarg);
			xd.cli_max_memory = 1;
			break;
		case OPT_METRICS:
			metrics_uri = optarg;
			xd.cli_metrics = 1;
			break;
		case OPT_MEMORY_BUDGET:
			if (parse_size(optarg, &xd.memory_budget) != 0 ||
			    xd.memory_budget < 4096)
				return bad_usage("--memory-budget: '%s' is not "
				    "a size", optarg);
			xd.cli_memory_budget = 1;
			break;
		case 'v':
			verbose = LOG_LVL_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			version_print();
			return 0;
		default:
			fprintf(stderr, "Try 'xmigd --help'.\n");
			return 2;
		}
	}
	if (optind != argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	domproc_set_tls(&xd.cc.tls);
#ifdef HAVE_XEN
	xenproc_set_tls(&xd.cc.tls);
#endif
	log_init("xmigd", verbose);
	log_route_lib();
	signal(SIGPIPE, SIG_IGN);
	if ((gr = getgrnam("xmig")) != NULL) {
		xd.xmig_gid = gr->gr_gid;
		xd.have_xmig_gid = 1;
	}
	if ((xd.base = event_base_new()) == NULL) {
		log_err("out of memory");
		return 1;
	}
	xd.control_fd = -1;
	xd.state_lock = -1;
	if (socket_activation() != 0)
		return 1;
	for (i = 0; i < nlisten; i++)
		if (listener_open(listens[i]) != 0)
			return 1;
	if (metrics_uri != NULL && metrics_listen(metrics_uri) != 0)
		return 1;
	if (config_read(0) != 0)
		return 1;
	if (xd.state_dir == NULL)
		xd.state_dir = XMIGD_STATE_DEFAULT;
	if (state_dir_open() != 0)
		return 1;
	if (xd.xen) {
		char err[512];

		if (xenhost_check(err, sizeof(err)) != 0) {
			log_err("%s", err);
			return 1;
		}
	}
	if (xd.control_ev == NULL) {
		if (xd.control_path == NULL)
			xd.control_path = XMIGD_CONTROL_DEFAULT;
		if ((fd = control_open(xd.control_path)) < 0 ||
		    control_start(fd) != 0)
			return 1;
	}
	for (i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(xd.base, signos[i], on_signal, NULL);
		if (sigs[i] == NULL || event_add(sigs[i], NULL) != 0) {
			log_err("signals: out of memory");
			return 1;
		}
	}
	if ((w = getenv("WATCHDOG_USEC")) != NULL && atoll(w) > 0 &&
	    (getenv("WATCHDOG_PID") == NULL ||
	    atol(getenv("WATCHDOG_PID")) == (long)getpid())) {
		long long us = atoll(w) / 2;
		struct timeval tv = { (time_t)(us / 1000000),
		    (suseconds_t)(us % 1000000) };

		wd = event_new(xd.base, -1, EV_PERSIST, on_watchdog, NULL);
		if (wd != NULL)
			event_add(wd, &tv);
	}
	recover_domains();
#ifdef HAVE_XEN
	if (xd.xen)
		xenhost_recover();
#endif
	log_info("ready: control %s, %u listener%s, max-sessions %u, "
	    "backend %s", xd.control_path ? xd.control_path :
	    "(from systemd)", xd.nlis, xd.nlis == 1 ? "" : "s",
	    xd.max_sessions, xd.xen ? "xen" : "sim");
	fflush(stderr);
	notify("READY=1");
	notify_status();
	event_base_dispatch(xd.base);
	while (xd.clients != NULL)
		client_free(xd.clients);
	if (xd.control_created)
		unlink(xd.control_path);
	for (i = 0; i < xd.nlis; i++) {
		event_free(xd.lis[i].ev);
		close(xd.lis[i].fd);
		xport_tls_ctx_free(xd.lis[i].tls_ctx);
	}
	metrics_close();
	if (wd != NULL)
		event_free(wd);
	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	log_info("stopped");
	return 0;
}
