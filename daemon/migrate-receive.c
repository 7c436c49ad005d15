/*
 * migrate-receive -- restore domains from a listener, a file or stdin.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "xmig.h"
#include "run.h"
#ifdef HAVE_XEN
#include "xen-toolstack.h"
#endif

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
"                        where restored domains live (default sim); of\n"
"                        the keys (README): prefault=1 touches memory\n"
"                        during the migration, prealloc=SIZE touches SIZE\n"
"                        at start, before listening (one domain: --once,\n"
"                        file: or stdin)\n"
"  --backend xen         a real Xen PVH or 64-bit PV domain, created by\n"
"                        libxl on this host (dom0) from the configuration\n"
"                        the sender\n"
"                        sends, named NAME--incoming until it runs, then\n"
"                        NAME; one migration per process (a listener\n"
"                        needs --once); needs xmig-save-helper beside\n"
"                        this program\n"
"  --once                serve a single migration, then exit\n"
"  --max-memory SIZE     refuse domains larger than SIZE (K/M/G suffixes)\n"
"  --max-sessions N      serve at most N migrations at once (default 8),\n"
"                        each in a process of its own (tcp: and tls:\n"
"                        without --once); any connection beyond them is\n"
"                        refused: a sender that negotiates is answered\n"
"                        \"busy\", any other stream is closed, and\n"
"                        nothing of it is restored\n"
"  --max-streams N       take at most N data streams (0-16, default 8)\n"
"                        from a migrate-send --streams (tcp: and tls:;\n"
"                        each on a port of its own, on the address the\n"
"                        migration came in on); 0 or 1: decline them, the\n"
"                        pages then come on the one connection\n"
"  --max-epoch-bytes SIZE\n"
"                        replication backup: buffer at most SIZE octets of\n"
"                        one epoch (default 256M); a larger epoch stops\n"
"                        replication with an error\n"
"  --failover-timeout MS replication backup: fail over when nothing comes\n"
"                        from the primary for MS (default 3 checkpoint\n"
"                        intervals, at least 200)\n"
"  --no-delta            decline delta-encoded pages (migrate-send --delta),\n"
"                        as a receiver without them would\n"
"  --timeout SEC         give up on a sender that sends nothing for SEC\n"
"                        seconds, or sends no GO (default 60)\n"
"  --insecure            let a plain tcp: listener bind to a non-loopback\n"
"                        address (by default it refuses: use tls:)\n"
"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
"                        this side's certificate and key, and the CA that\n"
"                        signs the peer's (PEM) for tls: sources\n"
"  --tls-peer NAME       let in only senders whose certificate carries\n"
"                        NAME (repeatable: any of them); without it and\n"
"                        --tls-allow, any certificate the CA signed\n"
"  --tls-allow FILE      the same for each name in FILE (one a line,\n"
"                        '#' comments), read at start\n"
"  --progress auto|none|tty|json\n"
"                        progress on stderr (auto: a line on a terminal)\n"
"  --report json         a JSON report per migration (on stdout, or on\n"
"                        stderr when SOURCE is -)\n"
"  --digest xxh3-128|sha256|none\n"
"                        the memory digest's hash on a one-way stream\n"
"                        (default xxh3-128; with a back-channel the\n"
"                        sender's choice); none: no digests\n"
"  -v, --verbose         debug lines too: what was offered and agreed,\n"
"                        the stream's figures, the handover steps in ms\n"
"  -V, --version         the version, dialects, backends, transports\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 when every migration served completed, 1 otherwise,\n"
"2 on bad usage.  A stream that fails validation is rejected naming the\n"
"record and the reason, and nothing of it is kept.\n"
"\n"
"A replicated stream (a replicating migrate-send) is known from its\n"
"negotiation: each epoch is buffered and applied whole once its CHECKPOINT\n"
"has arrived and verified, then acknowledged.  If the primary's stream\n"
"ends without an orderly stop, or is silent for --failover-timeout, the\n"
"last committed epoch runs here (report status \"failover\", exit 0); an\n"
"orderly stop discards this copy (\"stopped\", exit 0); a damaged or\n"
"oversized epoch is refused whole and replication ends with an error\n"
"(exit 1, the copy is not run: the primary still runs).\n");
}

enum {
	OPT_BACKEND = 256, OPT_ONCE, OPT_MAX_MEMORY, OPT_INSECURE,
	OPT_MAX_SESSIONS, OPT_MAX_EPOCH, OPT_FAILOVER_TIMEOUT, OPT_NO_DELTA,
	OPT_MAX_STREAMS,
};

static const struct option longopts[] = {
	{ "backend",	required_argument,	NULL, OPT_BACKEND },
	{ "once",	no_argument,		NULL, OPT_ONCE },
	{ "max-memory",	required_argument,	NULL, OPT_MAX_MEMORY },
	{ "insecure",	no_argument,		NULL, OPT_INSECURE },
	{ "max-sessions", required_argument,	NULL, OPT_MAX_SESSIONS },
	{ "max-epoch-bytes", required_argument,	NULL, OPT_MAX_EPOCH },
	{ "failover-timeout", required_argument, NULL, OPT_FAILOVER_TIMEOUT },
	{ "no-delta",	no_argument,		NULL, OPT_NO_DELTA },
	{ "max-streams", required_argument,	NULL, OPT_MAX_STREAMS },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	CMD_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

#define bad_usage(...) cmd_usage_error("migrate-receive", __VA_ARGS__)

int
main(int argc, char **argv)
{
	struct recv_opts o;
	struct cmd_common cc = { .progress = PROGRESS_AUTO };
	const char *spec;
	char *end, bk[128];
	unsigned long v;
	int c, verbose = LOG_LVL_INFO;

	log_init(argv[0], verbose);
	recv_opts_default(&o);
	o.max_streams = 8;
	while ((c = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		if (c >= OPT_PROGRESS && c < OPT_COMMON_END) {
			if (cmd_common_option("migrate-receive", c, optarg, &cc) != 0)
				return 2;
			continue;
		}
		switch (c) {
		case OPT_BACKEND:
			if (backend_lookup(optarg, &spec) == NULL &&
			    backend_known_but_missing(optarg))
				return bad_usage("--backend: '%s': this xmig "
				    "was built without that backend (it has "
				    "%s)", optarg, version_backends_built(bk,
				    sizeof(bk)));
			if (backend_lookup(optarg, &spec) == NULL)
				return bad_usage("--backend: '%s' is not a "
				    "known backend (%s)", optarg,
				    version_backends_built(bk, sizeof(bk)));
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
		case OPT_INSECURE:
			o.insecure = 1;
			break;
		case OPT_NO_DELTA:
			o.no_delta = 1;
			break;
		case OPT_MAX_STREAMS:
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg ||
			    v > XMIG_STREAMS_MAX)
				return bad_usage("--max-streams: '%s' is not "
				    "a count from 0 to %u", optarg,
				    XMIG_STREAMS_MAX);
			o.max_streams = (unsigned)v;
			break;
		case OPT_MAX_SESSIONS:
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 || v > 1024)
				return bad_usage("--max-sessions: '%s' is not "
				    "a count from 1 to 1024", optarg);
			o.max_sessions = (unsigned)v;
			break;
		case OPT_MAX_EPOCH:
			if (parse_size(optarg, &o.max_epoch_bytes) != 0 ||
			    o.max_epoch_bytes < 4096)
				return bad_usage("--max-epoch-bytes: '%s' is not "
				    "a size of 4K or more", optarg);
			break;
		case OPT_FAILOVER_TIMEOUT:
			o.failover_timeout_ms = strtod(optarg, &end);
			if (*end != '\0' || end == optarg ||
			    o.failover_timeout_ms < 1)
				return bad_usage("--failover-timeout: '%s' is not "
				    "a number of milliseconds", optarg);
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
			fprintf(stderr, "Try 'migrate-receive --help'.\n");
			return 2;
		}
	}
	o.progress = cc.progress;
	o.timeout_s = cc.timeout_s;
	o.digest = cc.digest;
	o.no_digest = cc.no_digest;
	o.tls = cc.tls;
	o.report_json = cc.report;
	if (argc - optind != 1)
		return bad_usage("%s", "expected one SOURCE");
	log_init(argv[0], verbose);
	log_route_lib();
	signal(SIGPIPE, SIG_IGN);
	o.report_out = stdout;
	if (strcmp(o.backend, "xen") == 0) {
#ifdef HAVE_XEN
		struct xts_target *xt = NULL;
		struct recv_toolstack ts;
		char helper[4096], err[512];
		int rc;

		if (!o.once && (strncmp(argv[optind], "tcp:", 4) == 0 ||
		    strncmp(argv[optind], "tls:", 4) == 0))
			return bad_usage("%s", "--backend xen serves one "
			    "migration per process: add --once");
		if ((rc = xts_sibling("xmig-save-helper", helper,
		    sizeof(helper))) != 0) {
			log_err("--backend xen needs xmig-save-helper beside "
			    "this program: %s", strerror(-rc));
			return 1;
		}
		if (xts_target_new(helper, verbose >= LOG_LVL_DEBUG, &xt, &ts,
		    err, sizeof(err)) != 0) {
			log_err("%s", err);
			return 1;
		}
		o.toolstack = &ts;
		/*
		 * A digest reads the whole p2m range (about 1M pfns for any
		 * PVH guest) after the guest runs: Xen's tools do not pay
		 * for it, and neither does the helper.
		 */
		o.no_digest = 1;
		/*
		 * The new domain stays paused until it is complete, so its
		 * p2m cannot change under a kept mapping: map each page once
		 * (the unmapping happens at the end, after it runs).
		 */
		xen_set_keep_maps(1);
		rc = recv_serve(argv[optind], &o);
		xts_target_free(xt);
		return rc == 0 ? 0 : 1;
#endif
	}
	/*
	 * Before listening or reading: the backend's preparations (sim:
	 * prealloc=, the destination's memory touched now, outside the
	 * migration's clock, as QEMU's prealloc=on).  One domain in this
	 * process: --once, or a file or stdin, which serve one migration
	 * without forking.
	 */
	{
		const struct backend_ops *ops = backend_lookup(o.backend,
		    &spec);
		const char *src = argv[optind];
		unsigned pf = 0;
		int rc;

		if (o.once || (strncmp(src, "tcp:", 4) != 0 &&
		    strncmp(src, "tls:", 4) != 0))
			pf = BACKEND_PREPARE_ONE;
		if (ops != NULL && ops->prepare != NULL &&
		    (rc = ops->prepare(spec, pf)) != 0) {
			log_err("--backend %s: %s", o.backend,
			    backend_errmsg(NULL));
			return rc == -EINVAL ? 2 : 1;
		}
	}
	return recv_serve(argv[optind], &o) == 0 ? 0 : 1;
}
