/*
 * daemon.h -- what the commands share: logging and small helpers.
 */
#ifndef XMIG_DAEMON_H
#define XMIG_DAEMON_H

#include <stdarg.h>
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

#endif
