/*
 * cmdline.c -- what the migration commands' command lines have in common:
 * --progress, --report, --timeout, --digest and the --tls-* options, and
 * the one way a command says its usage was wrong.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

int
cmd_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return 2;
}

static int
cmd_progress_mode(const char *s, enum progress_mode *m)
{
	static const struct {
		const char		*name;
		enum progress_mode	 mode;
	} modes[] = {
		{ "auto", PROGRESS_AUTO }, { "none", PROGRESS_NONE },
		{ "tty", PROGRESS_TTY }, { "json", PROGRESS_JSON },
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(s, modes[i].name) == 0) {
			*m = modes[i].mode;
			return 0;
		}
	return -1;
}

/* --tls-peer at most this many times (more names: --tls-allow FILE). */
#define CMD_TLS_PEERS_MAX	64
static const char *cmd_tls_peers[CMD_TLS_PEERS_MAX - 1];	/* after the first */

int
cmd_common_option(const char *prog, int c, const char *arg,
    struct cmd_common *cc)
{
	char *end;

	switch (c) {
	case OPT_PROGRESS:
		if (cmd_progress_mode(arg, &cc->progress) != 0)
			return -cmd_usage_error(prog, "--progress: '%s' is not "
			    "auto, none, tty or json", arg);
		return 0;
	case OPT_REPORT:
		if (strcmp(arg, "json") != 0)
			return -cmd_usage_error(prog, "--report: only 'json' "
			    "is supported, not '%s'", arg);
		cc->report = 1;
		return 0;
	case OPT_TIMEOUT:
		cc->timeout_s = strtod(arg, &end);
		if (*end != '\0' || end == arg || cc->timeout_s <= 0)
			return -cmd_usage_error(prog, "--timeout: '%s' is not "
			    "a number of seconds", arg);
		return 0;
	case OPT_TLS_CERT:
		cc->tls.cert = arg;
		return 0;
	case OPT_TLS_KEY:
		cc->tls.key = arg;
		return 0;
	case OPT_TLS_CA:
		cc->tls.ca = arg;
		return 0;
	case OPT_TLS_PEER:
		/* The first, then the others (the receiver takes several). */
		if (cc->tls.peer == NULL) {
			cc->tls.peer = arg;
			return 0;
		}
		if (cc->tls.npeers + 1 >= CMD_TLS_PEERS_MAX)
			return -cmd_usage_error(prog, "--tls-peer: at most %d "
			    "times; put more names in a --tls-allow FILE",
			    CMD_TLS_PEERS_MAX);
		cmd_tls_peers[cc->tls.npeers++] = arg;
		cc->tls.peers = cmd_tls_peers;
		return 0;
	case OPT_DIGEST:
		cc->no_digest = strcmp(arg, "none") == 0;
		if (!cc->no_digest && digest_parse(arg, &cc->digest) != 0)
			return -cmd_usage_error(prog, "--digest: '%s' is not "
			    "xxh3-128, sha256 or none", arg);
		return 0;
	case OPT_TLS_ALLOW:
		if (cc->tls.allow_file != NULL)
			return -cmd_usage_error(prog, "--tls-allow: give one "
			    "file (one name a line)");
		cc->tls.allow_file = arg;
		return 0;
	}
	return -cmd_usage_error(prog, "unknown option");
}
