/*
 * log.c -- one place where the commands talk to a person: stderr lines
 * prefixed with the program name.  libevent's own messages are routed here
 * by the commands that use libevent, and lib/'s through log_route_lib().
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "xmig.h"

static const char *log_name = "xmig";
static int log_verbosity = LOG_LVL_INFO;

void
log_init(const char *progname, int verbosity)
{
	const char *slash = strrchr(progname, '/');

	log_name = slash ? slash + 1 : progname;
	log_verbosity = verbosity;
}

const char *
log_progname(void)
{
	return log_name;
}

static void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *const tag[] = { "error: ", "warning: ", "", "debug: " };

	if ((int)lvl > log_verbosity)
		return;
	fprintf(stderr, "%s: %s", log_name, tag[lvl]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: fatal: ", log_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* What lib/ says (xmig_log), at the same levels as our own lines. */
static void
log_from_lib(int level, const char *msg)
{
	static const enum log_level lvl[] = {
		[XMIG_LOG_ERR] = LOG_LVL_ERR, [XMIG_LOG_WARN] = LOG_LVL_WARN,
		[XMIG_LOG_INFO] = LOG_LVL_INFO, [XMIG_LOG_DEBUG] = LOG_LVL_DEBUG,
	};

	if (level < XMIG_LOG_ERR)
		level = XMIG_LOG_ERR;
	if (level > XMIG_LOG_DEBUG)
		level = XMIG_LOG_DEBUG;
	log_msg(lvl[level], "%s", msg);
}

void
log_route_lib(void)
{
	xmig_log_set(log_from_lib, log_verbosity >= LOG_LVL_DEBUG ?
	    XMIG_LOG_DEBUG : XMIG_LOG_INFO);
}
