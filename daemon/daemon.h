/*
 * daemon.h -- what the commands share: logging and small helpers.
 */
#ifndef XMIG_DAEMON_H
#define XMIG_DAEMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* log.c */
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
void	log_init(const char *progname, int verbosity);
void	log_msg(enum log_level lvl, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(fmt, ...) \
	log_msg(LOG_LVL_DEBUG, "%s: " fmt, __func__, ##__VA_ARGS__)
/* Broken invariant: print and abort. Never for bad input. */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
const char *log_progname(void);
/* Send lib/'s messages (xmig_log) here, filtered by log_init's verbosity. */
void	log_route_lib(void);

/* version.c: what --version prints (on stdout). */
void	version_print(void);
/* The backends this build contains, "sim, xen", into buf. */
const char *version_backends_built(char *buf, size_t len);

/* cmdline.c: the options migrate-send and migrate-receive share. */
#include "xmig.h"

enum {
	OPT_PROGRESS = 1000, OPT_REPORT, OPT_TIMEOUT, OPT_TLS_CERT,
	OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_PEER, OPT_TLS_ALLOW, OPT_DIGEST,
	OPT_COMMON_END
};
#define CMD_COMMON_LONGOPTS \
	{ "progress",	required_argument,	NULL, OPT_PROGRESS }, \
	{ "report",	required_argument,	NULL, OPT_REPORT }, \
	{ "timeout",	required_argument,	NULL, OPT_TIMEOUT }, \
	{ "tls-cert",	required_argument,	NULL, OPT_TLS_CERT }, \
	{ "tls-key",	required_argument,	NULL, OPT_TLS_KEY }, \
	{ "tls-ca",	required_argument,	NULL, OPT_TLS_CA }, \
	{ "tls-peer",	required_argument,	NULL, OPT_TLS_PEER }, \
	{ "tls-allow",	required_argument,	NULL, OPT_TLS_ALLOW }, \
	{ "digest",	required_argument,	NULL, OPT_DIGEST }

struct cmd_common {
	enum progress_mode	progress;
	int			report;		/* --report json */
	double			timeout_s;	/* 0: the default */
	struct xport_tls	tls;
	enum xmig_digest	digest;		/* --digest: xxh3-128 default */
	int			no_digest;	/* --digest none */
};
/*
 * 0 if taken, or -2 after printing the usage error.  --tls-peer may be
 * repeated (64 times): the first is tls.peer, the others tls.peers[].
 */
int	cmd_common_option(const char *prog, int c, const char *arg,
	    struct cmd_common *cc);
/* Print "PROG: <message>" and the hint; returns 2, the exit status. */
int	cmd_usage_error(const char *prog, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
