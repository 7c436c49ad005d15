/*
 * xmigctl -- xmigd's control client: one JSON-RPC request on the control
 * socket (doc/control-api.md), its answer printed for a person or, with
 * --json, as the raw result.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define DEFAULT_SOCKET	"/run/xmig/xmigd.sock"

static int opt_json;

static void
usage(FILE *f)
{
	fprintf(f,
"usage: xmigctl [--socket PATH] [--json] COMMAND [ARGS]\n"
"\n"
"Drive xmigd through its control socket (--socket, else $XMIG_SOCKET,\n"
"else " DEFAULT_SOCKET ").\n"
"\n"
"Commands:\n"
"  create sim:SPEC [--name NAME]   host a new sim domain (workload running;\n"
"                                  SPEC as migrate-send's sim:...)\n"
"  domains                         the domains this host runs (with\n"
"                                  xmigd --backend xen: its Xen guests,\n"
"                                  name, state, memory, type, domid, vcpus)\n"
"  migrate NAME URI [--bandwidth BYTES/s]\n"
"                                  migrate NAME to an xmigd (or migrate-\n"
"                                  receive) at tcp:HOST:PORT or tls:...;\n"
"                                  prints the migration's id\n"
"  list                            the migrations (running and recent)\n"
"  status ID                       one migration\n"
"  watch ID                        follow it to its end: a progress line on\n"
"                                  a terminal, JSON lines otherwise\n"
"  cancel ID                       cancel it: the domain runs on here\n"
"  destroy NAME                    end a domain (its migration cancelled\n"
"                                  first); answered once it is gone\n"
"  resume NAME                     run a domain left paused by an\n"
"                                  unconfirmed handover (only once sure\n"
"                                  that the target does not run it)\n"
"  metrics                         Prometheus text\n"
"  version                         xmigd's version\n"
"  evacuate --to URI[,URI...] [--parallel N] [--bandwidth BYTES/s]\n"
"           [--dry-run]            move every domain off this host: planned\n"
"                                  from the targets' free memory, biggest\n"
"                                  first; at most N migrations at once\n"
"                                  (default 2) sharing BYTES/s in all; a\n"
"                                  failed domain is tried once more on\n"
"                                  another target; prints the plan, each\n"
"                                  domain as it ends, and the summary\n"
"                                  (--dry-run: the plan only, nothing moves)\n"
"  status evac-N, cancel evac-N    an evacuation; cancel stops it: what has\n"
"                                  not moved runs on here\n"
"\n"
"Options:\n"
"  --socket PATH     the control socket\n"
"  --json            print the raw JSON result\n"
"  -h, --help        this text\n"
"\n"
"Exit status (as migrate-send's): 0 done (watch: the migration completed;\n"
"evacuate: every domain moved); 1 failed (an error from xmigd, or watch: the\n"
"migration failed or was cancelled; evacuate: a domain did not move); 2 bad\n"
"usage; 3 watch, evacuate: delivered but unconfirmed (a source is left\n"
"paused).\n");
}

static int
bad_usage(const char *msg)
{
	fprintf(stderr, "xmigctl: %s\nTry 'xmigctl --help'.\n", msg);
	return 2;
}

static FILE *
ctl_connect(const char *path)
{
	struct sockaddr_un sa;
	FILE *f;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "xmigctl: error: %s: path too long\n", path);
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "xmigctl: error: %s: %s (is xmigd running?)\n",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r+")) == NULL)
		close(fd);
	return f;
}

/* One line from xmigd, parsed; NULL (after printing) on EOF or garbage. */
static json_object *
ctl_read(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	json_object *o;

	if (getline(&line, &cap, f) < 0) {
		fprintf(stderr, "xmigctl: error: xmigd closed the connection\n");
		free(line);
		return NULL;
	}
	o = json_tokener_parse(line);
	free(line);
	if (o == NULL)
		fprintf(stderr, "xmigctl: error: xmigd's answer is not JSON\n");
	return o;
}

/*
 * Send method(params); the answer's result (caller puts) or NULL after
 * printing xmigd's error.
 */
/* Write one request (id 1) with params (taken). */
static void
ctl_send(FILE *f, const char *method, json_object *params)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(req, "id", json_object_new_int(1));
	json_object_object_add(req, "method", json_object_new_string(method));
	json_object_object_add(req, "params", params);
	fprintf(f, "%s\n", json_object_to_json_string_ext(req,
	    JSON_C_TO_STRING_PLAIN));
	fflush(f);
	json_object_put(req);
}

/* An answer that is an error: print xmigd's message, non-zero. */
static int
ctl_error(json_object *resp)
{
	json_object *e, *m;

	if (!json_object_object_get_ex(resp, "error", &e))
		return 0;
	fprintf(stderr, "xmigctl: error: %s\n",
	    json_object_object_get_ex(e, "message", &m) ?
	    json_object_get_string(m) : "(no message)");
	return 1;
}

static json_object *
ctl_call(FILE *f, const char *method, json_object *params, json_object **resp)
{
	json_object *r;

	ctl_send(f, method, params);
	for (;;) {
		if ((*resp = ctl_read(f)) == NULL)
			return NULL;
		if (json_object_object_get_ex(*resp, "id", NULL))
			break;
		json_object_put(*resp);	/* a notification: not ours here */
	}
	if (ctl_error(*resp))
		return NULL;
	if (!json_object_object_get_ex(*resp, "result", &r)) {
		fprintf(stderr, "xmigctl: error: no result in xmigd's answer\n");
		return NULL;
	}
	return r;
}

static const char *
jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "";
	return json_object_get_string(v);
}

static long long
jint(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	return json_object_get_int64(v);
}

static void
print_raw(json_object *r)
{
	printf("%s\n", json_object_to_json_string_ext(r,
	    JSON_C_TO_STRING_PLAIN));
}

static void
print_mig(json_object *m)
{
	printf("%lld %s %s %s %s pass %lld, %.1f MiB sent, %.1f MiB "
	    "remaining", jint(m, "id"), jstr(m, "domain"), jstr(m, "uri"),
	    jstr(m, "status"), jstr(m, "phase"), jint(m, "pass"),
	    (double)jint(m, "bytes") / 1048576.0,
	    (double)jint(m, "remaining_bytes") / 1048576.0);
	if (json_object_object_get_ex(m, "downtime_ms", NULL))
		printf(", downtime %s ms", jstr(m, "downtime_ms"));
	if (json_object_object_get_ex(m, "error", NULL))
		printf(": %s", jstr(m, "error"));
	printf("\n");
}

static int
status_exit(json_object *m)
{
	const char *s = jstr(m, "status");

	if (strcmp(s, "completed") == 0)
		return 0;
	if (strcmp(s, "unconfirmed") == 0)
		return 3;
	return 1;
}

/* watch: notifications until the response. */
static int
do_watch(FILE *f, json_object *id)
{
	json_object *params = json_object_new_object(), *o, *p;
	int tty = isatty(STDOUT_FILENO) && !opt_json, rc;

	json_object_object_add(params, "id", id);
	ctl_send(f, "watch", params);
	for (;;) {
		if ((o = ctl_read(f)) == NULL)
			return 1;
		if (ctl_error(o)) {
			json_object_put(o);
			return 1;
		}
		if (json_object_object_get_ex(o, "result", &p)) {
			if (tty)
				printf("\r\033[K");
			if (tty)
				print_mig(p);
			else
				print_raw(p);
			rc = status_exit(p);
			json_object_put(o);
			return rc;
		}
		if (json_object_object_get_ex(o, "params", &p)) {
			if (tty) {
				printf("\r%s: %s pass %lld, %.1f MiB sent, "
				    "%.1f MiB remaining\033[K",
				    jstr(p, "domain"), jstr(p, "phase"),
				    jint(p, "pass"),
				    (double)jint(p, "bytes") / 1048576.0,
				    (double)jint(p, "remaining_bytes") /
				    1048576.0);
			} else
				print_raw(p);
			fflush(stdout);
		}
		json_object_put(o);
	}
}

static void
print_evac_domain(json_object *x)
{
	json_object *v;
	char t[32] = "-", dt[32] = "-";

	if (json_object_object_get_ex(x, "elapsed_ms", &v))
		snprintf(t, sizeof(t), "%.2f s", json_object_get_double(v) /
		    1000.0);
	if (json_object_object_get_ex(x, "downtime_ms", &v))
		snprintf(dt, sizeof(dt), "%.1f ms", json_object_get_double(v));
	printf("%-16s %8.1f MiB  %-24s %-11s %9s %10s  %s%s%s\n",
	    jstr(x, "domain"), (double)jint(x, "memory") / 1048576.0,
	    jstr(x, "target")[0] ? jstr(x, "target") : "-", jstr(x, "status"),
	    t, dt, !json_object_object_get_ex(x, "verified", &v) || v == NULL ?
	    "-" : json_object_get_boolean(v) ? "yes" : "NO",
	    json_object_object_get_ex(x, "error", NULL) ? "  " : "",
	    jstr(x, "error"));
}

static void
print_evac(json_object *e, int full)
{
	json_object *a, *x;
	size_t i, n;

	printf("evacuation %s: %s, %.1f MiB sent in %.2f s\n", jstr(e, "id"),
	    jstr(e, "state"), (double)jint(e, "bytes") / 1048576.0,
	    json_object_object_get_ex(e, "elapsed_ms", &x) ?
	    json_object_get_double(x) / 1000.0 : 0.0);
	if (json_object_object_get_ex(e, "targets", &a)) {
		n = json_object_array_length(a);
		for (i = 0; i < n; i++) {
			x = json_object_array_get_idx(a, i);
			printf("  target %s: %s", jstr(x, "uri"),
			    json_object_get_boolean(json_object_object_get(x,
			    "up")) ? "up" : "down");
			if (json_object_object_get_ex(x, "free_memory", NULL))
				printf(", %s", json_object_object_get(x,
				    "free_memory") == NULL ? "no memory limit" :
				    "");
			if (json_object_object_get(x, "free_memory") != NULL)
				printf("%.1f MiB free",
				    (double)jint(x, "free_memory") / 1048576.0);
			printf(", %.1f MiB planned%s%s\n",
			    (double)jint(x, "planned_memory") / 1048576.0,
			    json_object_object_get_ex(x, "error", NULL) ?
			    ": " : "", jstr(x, "error"));
		}
	}
	if (!full || !json_object_object_get_ex(e, "domains", &a))
		return;
	printf("%-16s %12s  %-24s %-11s %9s %10s  %s\n", "DOMAIN", "MEMORY",
	    "TARGET", "STATUS", "TIME", "DOWNTIME", "VERIFIED");
	n = json_object_array_length(a);
	for (i = 0; i < n; i++)
		print_evac_domain(json_object_array_get_idx(a, i));
}

/* 0 every domain moved, 3 one is left paused, 1 otherwise. */
static int
evac_exit(json_object *e)
{
	json_object *a;
	size_t i, n;
	int rc = 0;

	if (strcmp(jstr(e, "state"), "planned") == 0)
		return 0;
	if (strcmp(jstr(e, "state"), "done") != 0)
		rc = 1;
	if (!json_object_object_get_ex(e, "domains", &a))
		return 1;
	n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		const char *s = jstr(json_object_array_get_idx(a, i), "status");

		if (strcmp(s, "unconfirmed") == 0 && rc == 0)
			rc = 3;
		else if (strcmp(s, "completed") != 0)
			rc = 1;
	}
	return rc;
}

/*
 * evacuate: notifications (the plan once the targets answered, then each
 * domain as it ends) until the response, the summary.
 */
static int
do_evacuate(FILE *f, json_object *params)
{
	json_object *o, *p, *a;
	static char printed[1024];	/* a domain's end printed */
	size_t i, n;
	int planned = 0, rc;

	ctl_send(f, "evacuate", params);
	for (;;) {
		if ((o = ctl_read(f)) == NULL)
			return 1;
		if (ctl_error(o)) {
			json_object_put(o);
			return 1;
		}
		if (json_object_object_get_ex(o, "result", &p)) {
			if (opt_json)
				print_raw(p);
			else
				print_evac(p, 1);
			rc = evac_exit(p);
			json_object_put(o);
			return rc;
		}
		if (!json_object_object_get_ex(o, "params", &p)) {
			json_object_put(o);
			continue;
		}
		if (opt_json) {
			print_raw(p);
		} else if (strcmp(jstr(p, "state"), "querying") == 0) {
			printf("evacuation %s: asking the targets\n",
			    jstr(p, "id"));
		} else if (!planned) {
			planned = 1;
			print_evac(p, 1);	/* the plan */
		} else if (json_object_object_get_ex(p, "domains", &a)) {
			/* One line per domain that ended since. */
			n = json_object_array_length(a);
			for (i = 0; i < n; i++) {
				const char *s = jstr(json_object_array_get_idx(
				    a, i), "status");

				if (i >= sizeof(printed) || printed[i] ||
				    strcmp(s, "planned") == 0 ||
				    strcmp(s, "migrating") == 0)
					continue;
				printed[i] = 1;
				print_evac_domain(json_object_array_get_idx(a,
				    i));
			}
		}
		fflush(stdout);
		json_object_put(o);
	}
}

static json_object *
id_param(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*end != '\0' || end == s || v < 1)
		return NULL;
	return json_object_new_int64(v);
}

enum { OPT_SOCKET = 256, OPT_JSON, OPT_NAME, OPT_BANDWIDTH, OPT_TO,
	OPT_PARALLEL, OPT_DRY_RUN };

static const struct option longopts[] = {
	{ "socket",	required_argument,	NULL, OPT_SOCKET },
	{ "json",	no_argument,		NULL, OPT_JSON },
	{ "name",	required_argument,	NULL, OPT_NAME },
	{ "bandwidth",	required_argument,	NULL, OPT_BANDWIDTH },
	{ "to",		required_argument,	NULL, OPT_TO },
	{ "parallel",	required_argument,	NULL, OPT_PARALLEL },
	{ "dry-run",	no_argument,		NULL, OPT_DRY_RUN },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

int
main(int argc, char **argv)
{
	const char *sock = getenv("XMIG_SOCKET"), *cmd, *name = NULL;
	const char *bandwidth = NULL, *to = NULL, *parallel = NULL;
	int dry_run = 0;
	json_object *params, *r, *resp = NULL, *id;
	size_t i, n;
	int c, nargs, rc = 0;
	FILE *f;

	/* xmigd may refuse and close before our request is out: read why. */
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			sock = optarg;
			break;
		case OPT_JSON:
			opt_json = 1;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_BANDWIDTH:
			bandwidth = optarg;
			break;
		case OPT_TO:
			to = optarg;
			break;
		case OPT_PARALLEL:
			parallel = optarg;
			break;
		case OPT_DRY_RUN:
			dry_run = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'xmigctl --help'.\n");
			return 2;
		}
	}
	if (sock == NULL || *sock == '\0')
		sock = DEFAULT_SOCKET;
	if (optind >= argc)
		return bad_usage("expected a COMMAND");
	cmd = argv[optind];
	nargs = argc - optind - 1;
	params = json_object_new_object();
#define NEED(k, what) do { if (nargs != (k)) { json_object_put(params); \
	return bad_usage(cmd_usage(what)); } } while (0)
#define cmd_usage(what) (what)
	if (strcmp(cmd, "evacuate") == 0) {
		char *end;
		long pn;

		NEED(0, "evacuate: expected --to URI[,URI...] [--parallel N] "
		    "[--bandwidth BYTES/s] [--dry-run]");
		if (to == NULL) {
			json_object_put(params);
			return bad_usage("evacuate: --to URI[,URI...] is "
			    "required");
		}
		json_object_object_add(params, "to",
		    json_object_new_string(to));
		if (parallel != NULL) {
			pn = strtol(parallel, &end, 10);
			if (*end != '\0' || end == parallel || pn < 1 ||
			    pn > 64) {
				json_object_put(params);
				return bad_usage("--parallel: a count from 1 "
				    "to 64");
			}
			json_object_object_add(params, "parallel",
			    json_object_new_int64(pn));
		}
		if (bandwidth != NULL)
			json_object_object_add(params, "bandwidth",
			    json_object_new_string(bandwidth));
		if (dry_run)
			json_object_object_add(params, "dry_run",
			    json_object_new_boolean(1));
	} else if (strcmp(cmd, "create") == 0) {
		NEED(1, "create: expected sim:SPEC [--name NAME]");
		json_object_object_add(params, "spec",
		    json_object_new_string(argv[optind + 1]));
		if (name != NULL)
			json_object_object_add(params, "name",
			    json_object_new_string(name));
	} else if (strcmp(cmd, "migrate") == 0) {
		NEED(2, "migrate: expected NAME URI");
		json_object_object_add(params, "name",
		    json_object_new_string(argv[optind + 1]));
		json_object_object_add(params, "uri",
		    json_object_new_string(argv[optind + 2]));
		if (bandwidth != NULL)
			json_object_object_add(params, "bandwidth",
			    json_object_new_string(bandwidth));
	} else if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "cancel") == 0) &&
	    nargs == 1 && strncmp(argv[optind + 1], "evac-", 5) == 0) {
		json_object_object_add(params, "id",
		    json_object_new_string(argv[optind + 1]));
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "watch") == 0 ||
	    strcmp(cmd, "cancel") == 0) {
		NEED(1, "expected a migration ID");
		if ((id = id_param(argv[optind + 1])) == NULL) {
			json_object_put(params);
			return bad_usage("a migration ID is a number from 1");
		}
		json_object_object_add(params, "id", id);
	} else if (strcmp(cmd, "destroy") == 0 || strcmp(cmd, "resume") == 0) {
		NEED(1, "expected a domain NAME");
		json_object_object_add(params, "name",
		    json_object_new_string(argv[optind + 1]));
	} else if (strcmp(cmd, "domains") == 0 || strcmp(cmd, "list") == 0 ||
	    strcmp(cmd, "metrics") == 0 || strcmp(cmd, "version") == 0) {
		NEED(0, "this command takes no argument");
	} else {
		json_object_put(params);
		return bad_usage("unknown command");
	}
	if ((name != NULL && strcmp(cmd, "create") != 0) ||
	    (bandwidth != NULL && strcmp(cmd, "migrate") != 0 &&
	    strcmp(cmd, "evacuate") != 0) ||
	    ((to != NULL || parallel != NULL || dry_run) &&
	    strcmp(cmd, "evacuate") != 0)) {
		json_object_put(params);
		return bad_usage("--name is for create, --bandwidth for "
		    "migrate and evacuate, --to, --parallel and --dry-run for "
		    "evacuate");
	}
	if ((f = ctl_connect(sock)) == NULL) {
		json_object_put(params);
		return 1;
	}
	if (strcmp(cmd, "evacuate") == 0) {
		rc = do_evacuate(f, params);
		fclose(f);
		return rc;
	}
	if (strcmp(cmd, "watch") == 0) {
		json_object_object_get_ex(params, "id", &id);
		rc = do_watch(f, json_object_get(id));
		json_object_put(params);
		fclose(f);
		return rc;
	}
	if ((r = ctl_call(f, cmd, params, &resp)) == NULL) {
		json_object_put(resp);
		fclose(f);
		return 1;
	}
	if (opt_json)
		print_raw(r);
	else if (strcmp(cmd, "create") == 0)
		printf("created %s (%s, %.1f MiB)\n", jstr(r, "name"),
		    jstr(r, "spec"), (double)jint(r, "memory") / 1048576.0);
	else if (strcmp(cmd, "domains") == 0) {
		n = json_object_array_length(r);
		for (i = 0; i < n; i++) {
			json_object *d = json_object_array_get_idx(r, i);

			if (strcmp(jstr(d, "backend"), "xen") == 0 &&
			    json_object_object_get_ex(d, "domid", NULL)) {
				/* A Xen guest (xmigd --backend xen). */
				printf("%-16s %-10s %8.1f MiB  xen %-4s "
				    "domid %lld, %lld vcpus\n",
				    jstr(d, "name"), jstr(d, "state"),
				    (double)jint(d, "memory") / 1048576.0,
				    jstr(d, "type"), jint(d, "domid"),
				    jint(d, "vcpus"));
				continue;
			}
			printf("%-16s %-10s %8.1f MiB  %-8s %s\n",
			    jstr(d, "name"), jstr(d, "state"),
			    (double)jint(d, "memory") / 1048576.0,
			    jstr(d, "origin"), jstr(d, "spec"));
		}
	} else if (strcmp(cmd, "migrate") == 0)
		printf("%lld\n", jint(r, "id"));
	else if (strcmp(cmd, "list") == 0) {
		n = json_object_array_length(r);
		for (i = 0; i < n; i++)
			print_mig(json_object_array_get_idx(r, i));
	} else if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "cancel") == 0) &&
	    json_object_object_get_ex(r, "targets", NULL)) {
		print_evac(r, 1);
	} else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "cancel") == 0)
		print_mig(r);
	else if (strcmp(cmd, "metrics") == 0)
		fputs(json_object_get_string(r), stdout);
	else if (strcmp(cmd, "destroy") == 0)
		printf("destroyed %s\n", jstr(r, "name"));
	else if (strcmp(cmd, "resume") == 0)
		printf("resumed %s\n", jstr(r, "name"));
	else if (strcmp(cmd, "version") == 0)
		printf("xmigd %s (control API %s)\n", jstr(r, "version"),
		    jstr(r, "api"));
	json_object_put(resp);
	fclose(f);
	return rc;
}
