/*
 * migrate-send -- send a running domain to a receiver, a file or stdout.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
"usage: migrate-send [options] DOMAIN DEST\n"
"\n"
"Send the domain DOMAIN live to DEST.\n"
"\n"
"DOMAIN  sim:KEY=VALUE,...   a simulated domain created in this process\n"
"                            (mem=256M vcpus=2 dirty=0 hot=MEM seed=1\n"
"                            mix=realistic|zero|random|text;\n"
"                            dirty in bytes/s)\n"
"        xen:NAME, xen:DOMID a Xen PVH or 64-bit PV domain on this host\n"
"                            (dom0; PV with --no-live only): libxl\n"
"                            suspends it for the last pass, its libxl\n"
"                            configuration travels with the stream (not\n"
"                            into a --format xen file), and it is destroyed\n"
"                            once the receiver runs it (or the file is\n"
"                            saved); on failure it resumes here\n"
"DEST    tcp:HOST:PORT       a migrate-receive listening there\n"
"        tls:HOST:PORT       the same over TLS (see --tls-*)\n"
"        exec:COMMAND        run COMMAND (sh -c) with the stream on its\n"
"                            stdin and its stdout as the back-channel,\n"
"                            e.g. exec:ssh hostB migrate-receive -\n"
"        file:PATH           save an image (written to a temporary name,\n"
"                            renamed into place when complete)\n"
"        -                   write the stream to stdout (one-way)\n"
"\n"
"Options:\n"
"  --format draftb|xen       stream dialect (default draftb: image version 1\n"
"                            with checksums; xen: libxc stream version 3)\n"
"  --no-checksum             draft-B records without CRC-32\n"
"  --big-endian              draft-B stream in big-endian byte order\n"
"  --no-live                 pause first, send everything once, stop\n"
"  --downtime-limit MS       stop-and-copy once the expected downtime is\n"
"                            below MS (default 300)\n"
"  --max-iterations N        at most N pre-copy passes (default 30)\n"
"  --auto-converge           when the domain dirties memory as fast as the\n"
"                            link carries it, slow it down (20 %%, then 10 %%\n"
"                            more each pass, up to 99 %%) so the downtime\n"
"                            limit can be met; sim only for now\n"
"  --bandwidth BYTES/s       cap the send rate (K/M/G suffixes; sockets\n"
"                            and pipes only)\n"
"  --no-backchannel          do not offer a back-channel on a connection\n"
"  --require-backchannel     fail if the receiver does not answer the offer\n"
"  --negotiate-timeout MS    wait that long for the answer (default 2000),\n"
"                            then go one-way\n"
"  --compress zstd[:LEVEL]   compress page data with zstd (level 1 by\n"
"                            default, up to 19), or zlib[:LEVEL] (0-9):\n"
"                            draft-B; on a connection only if the receiver\n"
"                            agrees.  Adaptive: a batch of pages that does\n"
"                            not compress goes plain, and compression backs\n"
"                            off while it, not the link, is the bottleneck\n"
"  --compress-always         never back off (a batch that does not compress\n"
"                            still goes plain)\n"
"  --streams N               carry the pages over N connections (2-16), one\n"
"                            thread each side per connection, control and\n"
"                            ordering on the main one (tcp: or tls: with\n"
"                            the back-channel; not with --compress,\n"
"                            --bandwidth or --replicate).  The receiver\n"
"                            may take fewer (--max-streams) or none (a\n"
"                            warning; one connection).  Default 1\n"
"  --zero-pages              send zero pages without data also to a file\n"
"                            or stdout (on a connection: when agreed)\n"
"  --no-zero-pages           never elide zero pages\n"
"  --delta                   on a connection whose receiver agrees, send a\n"
"                            page dirtied again as a delta against the copy\n"
"                            sent before (XBZRLE-style) when the delta is\n"
"                            below half a page; not with --replicate\n"
"  --delta-cache BYTES       the sent copies kept for --delta (K/M/G\n"
"                            suffixes; default 64M, at least one page)\n"
"  --replicate[=MS]          Remus-style replication (default MS 100): after\n"
"                            the first live copy the domain keeps running\n"
"                            here and every MS it is paused, its dirty pages\n"
"                            and state copied aside, resumed, and the epoch\n"
"                            sent to the backup (a migrate-receive); its\n"
"                            outputs are held until the epoch that made\n"
"                            them is acknowledged.  Runs until SIGINT or\n"
"                            SIGTERM (an orderly stop: exit 0; before the\n"
"                            first epoch a cancel, exit 1) or until the\n"
"                            backup is lost (exit 4); either way the domain\n"
"                            runs on here.  With --report json, one line\n"
"                            per acknowledged epoch.  Needs tcp:, tls: or\n"
"                            exec: with a back-channel\n"
"  --epoch-digests           (tests, small domains) with --replicate and\n"
"                            --report json: a line with the memory digest\n"
"                            of every epoch taken\n"
"  --timeout SEC             give up on a receiver that stops reading or\n"
"                            does not answer for SEC seconds (default 60);\n"
"                            the source resumes (after GO: stays paused)\n"
"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
"                            this side's certificate and key, and the CA\n"
"                            that signs the receiver's (PEM), for tls:\n"
"  --tls-peer NAME           require NAME in the receiver's certificate\n"
"                            (default: the HOST of tls:HOST:PORT)\n"
"  --progress auto|none|tty|json\n"
"                            progress on stderr (auto: a line on a terminal)\n"
"  --report json             print a JSON report at the end (on stdout, or\n"
"                            on stderr when DEST is -)\n"
"  --digest xxh3-128|sha256|none\n"
"                            the hash of the end-to-end memory digest both\n"
"                            sides compare (default xxh3-128; sha256 also\n"
"                            toward receivers older than xxh3-128)\n"
"  -v, --verbose             debug lines too: what was offered and agreed,\n"
"                            each pass (pages, dirty pages, throughput,\n"
"                            expected downtime), the handover steps in ms\n"
"  -V, --version             the version, dialects, backends, transports\n"
"  -h, --help                this text\n"
"\n"
"Exit status: 0 when the receiver confirmed the handover (or the file is\n"
"saved) and the source was destroyed; 3 when the stream was delivered but\n"
"nobody confirmed it (one-way, or the connection broke after GO): the\n"
"source is left paused; 1 on failure (the source is resumed); 2 on bad\n"
"usage.  SIGINT or SIGTERM cancels the migration as a failure (exit 1,\n"
"the source resumed; after GO it stays paused, exit 3); a second one\n"
"ends the program at once.  With --replicate: 0 after an orderly stop,\n"
"4 when the backup was lost (the domain runs here unprotected), 1 when\n"
"replication failed before its first epoch.\n"
"\n"
"Environment: XMIG_OVERLAP_SUSPEND=1 (xen:, experimental, not yet run on\n"
"real Xen): on a host with more than one CPU, keep copying live while\n"
"libxl suspends the guest.\n");
}

/* SIGINT/SIGTERM: one octet into the self-pipe the engine watches. */
static int cancel_pipe[2] = { -1, -1 };
static volatile sig_atomic_t cancel_sig;

static void
on_cancel(int sig)
{
	int e = errno;

	cancel_sig = sig;
	(void)!write(cancel_pipe[1], "x", 1);
	errno = e;
}

/*
 * --compress zstd[:LEVEL] | zlib[:LEVEL] | none into o: 0, or -1 when it
 * is none of these.  Levels: zstd 1-19 (default 1), zlib 0-9 (default 1).
 */
static int
compress_parse(const char *arg, struct send_opts *o)
{
	const char *lv = strchr(arg, ':');
	size_t n = lv != NULL ? (size_t)(lv - arg) : strlen(arg);
	char *end;
	long l = 1;

	if (strcmp(arg, "none") == 0) {
		o->compress = 0;
		return 0;
	}
	if (lv != NULL) {
		errno = 0;
		l = strtol(lv + 1, &end, 10);
		if (lv[1] < '0' || lv[1] > '9' || *end != '\0' || errno != 0)
			return -1;
	}
	if (n == 4 && strncmp(arg, "zstd", 4) == 0 && l >= 1 && l <= 19)
		o->compress = WIRE_REC_OPT_ZSTD;
	else if (n == 4 && strncmp(arg, "zlib", 4) == 0 && l >= 0 && l <= 9)
		o->compress = WIRE_REC_OPT_DEFLATE;
	else
		return -1;
	o->compress_level = (int)l;
	return 0;
}

/* The engine's cancel_fd, or -1 if no pipe could be made. */
static int
cancel_setup(void)
{
	struct sigaction sa;

	if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_cancel;
	sa.sa_flags = SA_RESETHAND;	/* a second signal ends us */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return cancel_pipe[0];
}

enum {
	OPT_FORMAT = 256, OPT_NO_CHECKSUM, OPT_BIG_ENDIAN, OPT_NO_LIVE,
	OPT_DOWNTIME, OPT_MAX_ITER, OPT_BANDWIDTH,
	OPT_NO_BC, OPT_REQUIRE_BC, OPT_NEG_TIMEOUT, OPT_COMPRESS,
	OPT_ZERO_PAGES, OPT_NO_ZERO_PAGES, OPT_COMPRESS_ALWAYS,
	OPT_AUTO_CONVERGE, OPT_REPLICATE, OPT_EPOCH_DIGESTS,
	OPT_DELTA, OPT_DELTA_CACHE, OPT_STREAMS,
};

static const struct option longopts[] = {
	{ "format",		required_argument,	NULL, OPT_FORMAT },
	{ "no-checksum",	no_argument,		NULL, OPT_NO_CHECKSUM },
	{ "big-endian",		no_argument,		NULL, OPT_BIG_ENDIAN },
	{ "no-live",		no_argument,		NULL, OPT_NO_LIVE },
	{ "downtime-limit",	required_argument,	NULL, OPT_DOWNTIME },
	{ "max-iterations",	required_argument,	NULL, OPT_MAX_ITER },
	{ "bandwidth",		required_argument,	NULL, OPT_BANDWIDTH },
	{ "no-backchannel",	no_argument,		NULL, OPT_NO_BC },
	{ "require-backchannel", no_argument,		NULL, OPT_REQUIRE_BC },
	{ "negotiate-timeout",	required_argument,	NULL, OPT_NEG_TIMEOUT },
	{ "compress",		required_argument,	NULL, OPT_COMPRESS },
	{ "compress-always",	no_argument,		NULL, OPT_COMPRESS_ALWAYS },
	{ "auto-converge",	no_argument,		NULL, OPT_AUTO_CONVERGE },
	{ "zero-pages",		no_argument,		NULL, OPT_ZERO_PAGES },
	{ "no-zero-pages",	no_argument,		NULL, OPT_NO_ZERO_PAGES },
	{ "replicate",		optional_argument,	NULL, OPT_REPLICATE },
	{ "epoch-digests",	no_argument,		NULL, OPT_EPOCH_DIGESTS },
	{ "delta",		no_argument,		NULL, OPT_DELTA },
	{ "delta-cache",	required_argument,	NULL, OPT_DELTA_CACHE },
	{ "streams",		required_argument,	NULL, OPT_STREAMS },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, 'V' },
	CMD_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};


#define bad_usage(...) cmd_usage_error("migrate-send", __VA_ARGS__)

int
main(int argc, char **argv)
{
	struct send_opts o;
	struct xmig_report r;
	struct cmd_common cc = { .progress = PROGRESS_AUTO };
	const struct backend_ops *ops;
	struct backend *b = NULL;
	const char *spec, *dom, *dest;
	int c, verbose = LOG_LVL_INFO, report = 0, rc, max_iter_set = 0;
#ifdef HAVE_XEN
	struct xts_source *xs = NULL;
	char xspec[64], xerr[512];
#endif
	uint64_t v;
	char *end;

	log_init(argv[0], verbose);
	send_opts_default(&o);
	while ((c = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		if (c >= OPT_PROGRESS && c < OPT_COMMON_END) {
			if (cmd_common_option("migrate-send", c, optarg, &cc) != 0)
				return 2;
			continue;
		}
		switch (c) {
		case OPT_FORMAT:
			if (strcmp(optarg, "draftb") == 0)
				o.dialect = XP_DRAFTB;
			else if (strcmp(optarg, "xen") == 0)
				o.dialect = XP_XEN;
			else
				return bad_usage("--format: '%s' is not "
				    "draftb or xen", optarg);
			break;
		case OPT_NO_CHECKSUM:
			o.checksum = 0;
			break;
		case OPT_BIG_ENDIAN:
			o.big_endian = 1;
			break;
		case OPT_NO_LIVE:
			o.live = 0;
			break;
		case OPT_DOWNTIME:
			o.downtime_limit_ms = strtod(optarg, &end);
			if (*end != '\0' || end == optarg ||
			    o.downtime_limit_ms < 0)
				return bad_usage("--downtime-limit: '%s' is "
				    "not a number of milliseconds", optarg);
			break;
		case OPT_MAX_ITER:
			v = strtoull(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 ||
			    v > 1000000)
				return bad_usage("--max-iterations: '%s' is "
				    "not a count from 1", optarg);
			o.max_iterations = (unsigned)v;
			max_iter_set = 1;
			break;
		case OPT_BANDWIDTH:
			if (parse_size(optarg, &o.bandwidth) != 0)
				return bad_usage("--bandwidth: '%s' is not a "
				    "rate in bytes per second", optarg);
			break;
		case OPT_STREAMS:
			v = strtoull(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 ||
			    v > XMIG_STREAMS_MAX)
				return bad_usage("--streams: '%s' is not a count "
				    "from 1 to %u", optarg, XMIG_STREAMS_MAX);
			o.streams = (unsigned)v;
			break;
		case OPT_NO_BC:
			o.backchannel = 0;
			break;
		case OPT_REQUIRE_BC:
			o.require_backchannel = 1;
			break;
		case OPT_NEG_TIMEOUT:
			o.negotiate_timeout_ms = strtod(optarg, &end);
			if (*end != '\0' || end == optarg ||
			    o.negotiate_timeout_ms < 0)
				return bad_usage("--negotiate-timeout: '%s' is "
				    "not a number of milliseconds", optarg);
			break;
		case OPT_COMPRESS:
			if (compress_parse(optarg, &o) != 0)
				return bad_usage("--compress: '%s' is not "
				    "zstd, zstd:LEVEL (1-19), zlib, zlib:LEVEL "
				    "(0-9) or none", optarg);
			break;
		case OPT_COMPRESS_ALWAYS:
			o.compress_fixed = 1;
			break;
		case OPT_AUTO_CONVERGE:
			o.auto_converge = 1;
			break;
		case OPT_ZERO_PAGES:
			o.zero_pages = 1;
			break;
		case OPT_NO_ZERO_PAGES:
			o.zero_pages = 0;
			break;
		case OPT_REPLICATE:
			o.replicate_ms = 100;
			if (optarg == NULL)
				break;
			v = strtoull(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 1 ||
			    v > WIRE_CHECKPOINT_INTERVAL_MAX)
				return bad_usage("--replicate=%s: the interval "
				    "is a number of milliseconds from 1 to %u",
				    optarg, WIRE_CHECKPOINT_INTERVAL_MAX);
			o.replicate_ms = (unsigned)v;
			break;
		case OPT_EPOCH_DIGESTS:
			o.epoch_digests = 1;
			break;
		case OPT_DELTA:
			o.delta = 1;
			break;
		case OPT_DELTA_CACHE:
			if (parse_size(optarg, &o.delta_cache) != 0 ||
			    o.delta_cache < 4096)
				return bad_usage("--delta-cache: '%s' is not a "
				    "size of at least one page (4096)", optarg);
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
			fprintf(stderr, "Try 'migrate-send --help'.\n");
			return 2;
		}
	}
	o.progress = cc.progress;
	o.timeout_s = cc.timeout_s;
	o.digest = cc.digest;
	o.no_digest = cc.no_digest;
	o.tls = cc.tls;
	report = cc.report;
	if (argc - optind != 2)
		return bad_usage("%s", "expected DOMAIN and DEST");
	log_init(argv[0], verbose);
	log_route_lib();
	dom = argv[optind];
	dest = argv[optind + 1];
	if (o.delta && o.replicate_ms != 0)
		return bad_usage("%s", "--delta and --replicate exclude each "
		    "other (a backup buffers its epochs: SPEC 12.7)");
	if (o.delta_cache != 0 && !o.delta)
		return bad_usage("%s", "--delta-cache needs --delta");
	if (o.dialect == XP_XEN && o.big_endian)
		return bad_usage("%s", "--big-endian is for the draft-B "
		    "dialect only (Xen streams are little-endian)");
	if (o.streams > 1) {
		if (strncmp(dest, "tcp:", 4) != 0 &&
		    strncmp(dest, "tls:", 4) != 0)
			return bad_usage("--streams %u: data streams are TCP "
			    "connections: DEST must be tcp: or tls:, not %s",
			    o.streams, dest);
		if (!o.backchannel)
			return bad_usage("--streams %u needs the back-channel "
			    "(the receiver answers where the data streams go): "
			    "not with --no-backchannel", o.streams);
		if (o.compress != 0)
			return bad_usage("--streams %u with --compress: pages "
			    "on data streams go uncompressed; choose one",
			    o.streams);
		if (o.replicate_ms > 0)
			return bad_usage("--streams %u with --replicate: "
			    "epochs go over the one connection", o.streams);
		if (o.bandwidth > 0)
			return bad_usage("--streams %u with --bandwidth: the "
			    "cap applies to one connection only", o.streams);
		if (o.delta)
			return bad_usage("--streams %u with --delta: delta "
			    "pages go over the one connection; choose one",
			    o.streams);
	}
	if (o.delta && (strncmp(dest, "file:", 5) == 0 ||
	    strcmp(dest, "-") == 0))
		fprintf(stderr, "migrate-send: warning: --delta needs a "
		    "receiver that agrees on a back-channel; %s has none, so "
		    "every page goes in full\n", dest);

	signal(SIGPIPE, SIG_IGN);
	if ((ops = backend_lookup(dom, &spec)) == NULL) {
		if (backend_known_but_missing(dom))
			log_err("%s: this xmig was built without the Xen "
			    "backend (configure --with-xen)", dom);
		else
			log_err("%s: unknown domain kind (expected sim:... "
			    "or xen:DOMID)", dom);
		return 2;
	}
#ifdef HAVE_XEN
	if (strcmp(ops->name, "xen") == 0 && strchr(spec, '=') == NULL) {
		/* A name or domid: libxl does the toolstack's part. */
		if (xts_source_open(spec, verbose >= LOG_LVL_DEBUG, &xs, xerr,
		    sizeof(xerr)) != 0) {
			log_err("%s: %s", dom, xerr);
			return 1;
		}
		/*
		 * XMIG_OVERLAP_SUSPEND=1 (experimental, not yet run on real
		 * Xen): on a host with more than one CPU, copy live while
		 * libxl suspends the guest (README).
		 */
		snprintf(xspec, sizeof(xspec), "domid=%u,toolstack=1%s",
		    xts_source_domid(xs), getenv("XMIG_OVERLAP_SUSPEND") !=
		    NULL && strcmp(getenv("XMIG_OVERLAP_SUSPEND"), "1") == 0 ?
		    ",overlap=1" : "");
		spec = xspec;
		o.domain_config = xts_source_config(xs,
		    &o.domain_config_len);
		/* libxc's bound: a guest that dirties faster than the
		 * link never converges, and 30 passes only cost time. */
		if (!max_iter_set)
			o.max_iterations = 5;
		/* As migrate-receive --backend xen: no memory digest. */
		o.no_digest = 1;
	}
#endif
	if ((rc = ops->open_source(spec, &b)) != 0) {
		log_err("%s: %s", dom, backend_errmsg(b));
		if (b != NULL)
			ops->close(b);
#ifdef HAVE_XEN
		xts_source_free(xs);
#endif
		return 1;
	}
#ifdef HAVE_XEN
	if (xs != NULL)
		xen_set_suspend_hook(b, xts_source_suspend, xs);
#endif
	o.cancel_fd = cancel_setup();
	if (report && o.replicate_ms > 0)
		send_domain_checkpoints(strcmp(dest, "-") == 0 ? stderr :
		    stdout);
	rc = send_domain(b, dest, &o, &r);
	if (o.replicate_ms > 0) {
		/* Replication never hands the domain over: it runs here. */
		b->ops->close(b);
#ifdef HAVE_XEN
		if (xs != NULL) {
			(void)xts_source_finish(xs, -1, xerr, sizeof(xerr));
			xts_source_free(xs);
		}
#endif
		if (report)
			report_print_json(&r, stdout);
		if (rc == 0) {
			log_info("replication stopped in order after %llu "
			    "acknowledged epochs; the domain runs here",
			    (unsigned long long)r.epochs_acked);
			return 0;
		}
		if (rc == -ENOTCONN) {
			log_warn("%s", r.error);
			return 4;
		}
		log_err("%s", r.error[0] ? r.error : "replication failed");
		return 1;
	}
	if (rc == 0) {
		/* Handed over (or saved): the source copy goes away. */
		b->ops->destroy(b);
	}
	/*
	 * -EINPROGRESS: unconfirmed, the source stays paused.  A Xen
	 * source's log-dirty goes off here, before libxl acts on it.
	 */
	b->ops->close(b);
#ifdef HAVE_XEN
	if (xs != NULL) {
		if (xts_source_finish(xs, rc == 0 ? 0 : rc == -EINPROGRESS ?
		    1 : -1, xerr, sizeof(xerr)) != 0) {
			log_err("%s", xerr);
			if (rc == 0)
				rc = -EIO;
		}
		xts_source_free(xs);
	}
#endif
	if (report)
		report_print_json(&r, strcmp(dest, "-") == 0 ? stderr :
		    stdout);
	if (rc == -EINPROGRESS) {
		log_warn("%s", r.error[0] ? r.error : "the stream was delivered "
		    "but nobody confirmed the handover: the source is left "
		    "paused");
		return 3;
	}
	if (rc == -ECANCELED) {
		log_err("cancelled by %s: the source is running again",
		    cancel_sig == SIGINT ? "SIGINT" : "SIGTERM");
		return 1;
	}
	if (rc != 0) {
		log_err("%s", r.error[0] ? r.error : "migration failed");
		return 1;
	}
	return 0;
}
