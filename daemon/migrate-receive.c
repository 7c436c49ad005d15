/*
 * migrate-receive -- restore domains from a listener, a file or stdin.
 */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "xmig.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: migrate-receive [options] SOURCE\n"
"\n"
"Receive and restore domains sent by migrate-send.\n"
"\n"
"SOURCE  tcp:HOST:PORT   listen there (port 0: any free port; the bound\n"
"                        address is printed on stderr); serves one\n"
"                        migration after another unless --once\n"
"        file:PATH       restore an image file\n"
"        -               read the stream on stdin (as at the far end of\n"
"                        an ssh pipe)\n"
"\n"
"Options:\n"
"  --backend sim[:KEY=VALUE,...]\n"
"                        where restored domains live (default sim)\n"
"  --once                serve a single migration, then exit\n"
"  --max-memory SIZE     refuse domains larger than SIZE (K/M/G suffixes)\n"
"  --max-sessions N      serve at most N migrations at once (default 8),\n"
"                        each in a process of its own; one more is\n"
"                        answered \"busy\" (tcp: and tls: without --once)\n"
"  --timeout SEC         give up on a sender that sends nothing for SEC\n"
"                        seconds, or sends no GO (default 60)\n"
"  --insecure            let a plain tcp: listener bind to a non-loopback\n"
"                        address (by default it refuses: use tls:)\n"
"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
"                        this side's certificate and key, and the CA that\n"
"                        signs the peer's (PEM) for tls: sources\n"
"  --tls-peer NAME       require NAME in the sender's certificate\n"
"  --progress auto|none|tty|json\n"
"                        progress on stderr (auto: a line on a terminal)\n"
"  --report json         a JSON report per migration (on stdout, or on\n"
"                        stderr when SOURCE is -)\n"
"  -v, --verbose         more messages\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 when every migration served completed, 1 otherwise,\n"
"2 on bad usage.  A stream that fails validation is rejected naming the\n"
"record and the reason, and nothing of it is kept.\n");
}

enum {
	OPT_BACKEND = 256, OPT_ONCE, OPT_MAX_MEMORY, OPT_PROGRESS, OPT_REPORT,
	OPT_INSECURE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_PEER,
	OPT_TIMEOUT, OPT_MAX_SESSIONS,
};

static const struct option longopts[] = {
	{ "backend",	required_argument,	NULL, OPT_BACKEND },
	{ "once",	no_argument,		NULL, OPT_ONCE },
	{ "max-memory",	required_argument,	NULL, OPT_MAX_MEMORY },
	{ "progress",	required_argument,	NULL, OPT_PROGRESS },
	{ "report",	required_argument,	NULL, OPT_REPORT },
	{ "insecure",	no_argument,		NULL, OPT_INSECURE },
	{ "timeout",	required_argument,	NULL, OPT_TIMEOUT },
	{ "max-sessions", required_argument,	NULL, OPT_MAX_SESSIONS },
	{ "tls-cert",	required_argument,	NULL, OPT_TLS_CERT },
	{ "tls-key",	required_argument,	NULL, OPT_TLS_KEY },
	{ "tls-ca",	required_argument,	NULL, OPT_TLS_CA },
	{ "tls-peer",	required_argument,	NULL, OPT_TLS_PEER },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static int
bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", "migrate-receive");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", "migrate-receive");
	return 2;
}

int
main(int argc, char **argv)
{
	struct recv_opts o;
	const char *spec;
	char *end;
	unsigned long v;
	int c, verbose = LOG_LVL_INFO;

	log_init(argv[0], verbose);
	recv_opts_default(&o);
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_BACKEND:
			if (backend_lookup(optarg, &spec) == NULL)
				return bad_usage("--backend: '%s' is not a "
				    "known backend (sim)", optarg);
			o.backend = optarg;
			break;
		case OPT_ONCE:
			o.once = 1;
			break;
		case OPT_MAX_MEMORY:
			if (parse_size(optarg, &o.max_memory) != 0 ||
			    o.max_memory < 4096)
				return bad_usage("--max-memory: '%s' is not a "
				    "size", optarg);
			break;
		case OPT_PROGRESS:
			if (strcmp(optarg, "auto") == 0)
				o.progress = PROGRESS_AUTO;
			else if (strcmp(optarg, "none") == 0)
				o.progress = PROGRESS_NONE;
			else if (strcmp(optarg, "tty") == 0)
				o.progress = PROGRESS_TTY;
			else if (strcmp(optarg, "json") == 0)
				o.progress = PROGRESS_JSON;
			else
				return bad_usage("--progress: '%s' is not "
				    "auto, none, tty or json", optarg);
			break;
		case OPT_REPORT:
			if (strcmp(optarg, "json") != 0)
				return bad_usage("--report: only 'json' is "
				    "supported, not '%s'", optarg);
			o.report_json = 1;
			break;
		case OPT_INSECURE:
			o.insecure = 1;
			break;
		case OPT_TIMEOUT:
			o.timeout_s = strtod(optarg, &end);
			if (*end != '\0' || end == optarg || o.timeout_s <= 0)
				return bad_usage("--timeout: '%s' is not a "
				    "number of seconds", optarg);
			break;
		case OPT_MAX_SESSIONS:
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 || v > 1024)
				return bad_usage("--max-sessions: '%s' is not "
				    "a count from 1 to 1024", optarg);
			o.max_sessions = (unsigned)v;
			break;
		case OPT_TLS_CERT:
			o.tls.cert = optarg;
			break;
		case OPT_TLS_KEY:
			o.tls.key = optarg;
			break;
		case OPT_TLS_CA:
			o.tls.ca = optarg;
			break;
		case OPT_TLS_PEER:
			o.tls.peer = optarg;
			break;
		case 'v':
			verbose = LOG_LVL_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'migrate-receive --help'.\n");
			return 2;
		}
	}
	if (argc - optind != 1)
		return bad_usage("%s", "expected one SOURCE");
	log_init(argv[0], verbose);
	signal(SIGPIPE, SIG_IGN);
	o.report_out = stdout;
	return recv_serve(argv[optind], &o) == 0 ? 0 : 1;
}
