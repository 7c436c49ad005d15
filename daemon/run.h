/*
 * run.h -- the blocking side of the engine for the commands: one session
 * run to completion on a loop of its own (run.c), migrate-receive's
 * listener with a process per migration (serve.c), and the printers
 * (report.c).  Built on the sessions of lib/xmig.h; lib/ itself prints,
 * forks and loops nothing.
 */
#ifndef XMIG_RUN_H
#define XMIG_RUN_H

#include <stdio.h>

#include "xmig.h"

/* ---- report.c ------------------------------------------------------------ */

struct progress;
/* PROGRESS_AUTO: a line on a terminal out, else nothing. */
struct progress *progress_new(enum progress_mode mode, FILE *out);
/* Print if due (rate-limited), or always when force is set. */
void	progress_update(struct progress *p, const struct progress_info *pi,
	    int force);
/* End a rewritten line (a newline if one is open). */
void	progress_end(struct progress *p);
void	progress_free(struct progress *p);
/* struct xmig_cbs' progress for a struct progress as its arg. */
void	progress_cb(void *arg, const struct progress_info *pi);

/* One JSON line describing r. */
void	report_print_json(const struct xmig_report *r, FILE *out);
/*
 * One JSON line for a replicated epoch: "checkpoint" when acknowledged,
 * "epoch" when taken (only with a digest, send_opts.epoch_digests).
 */
void	report_checkpoint_json(const struct checkpoint_info *ci, FILE *out);

/* ---- run.c --------------------------------------------------------------- */

/*
 * Migrate (or save) the open source domain b to dest (also "exec:COMMAND":
 * "sh -c COMMAND" runs with its stdin and stdout on a socket pair, its
 * stderr ours, and is reaped here).  Progress on stderr as o->progress
 * asks.  On success the source stays paused (the caller destroys it); on
 * failure it has been resumed.  Fills r; returns 0 or -errno (-ECANCELED:
 * o->cancel_fd; -EINPROGRESS: delivered, unconfirmed).
 */
int	send_domain(struct backend *b, const char *dest,
	    const struct send_opts *o, struct xmig_report *r);
/* Where send_domain prints replicated epochs (NULL, the default: not). */
void	send_domain_checkpoints(FILE *out);

/* ---- serve.c ------------------------------------------------------------- */

/*
 * Serve source: "tcp:HOST:PORT" / "tls:HOST:PORT" (listen; one migration
 * with o->once, else one after another, each in a process of its own, at
 * most o->max_sessions at once, the others refused "busy"), "file:PATH"
 * or "-".  Prints "migrate-receive: ..." lines on stderr and a report per
 * migration when asked.  Returns 0 if every migration served completed.
 */
int	recv_serve(const char *source, const struct recv_opts *o);
/*
 * One migration read from fd with xmig_recv_fd (exact: not one octet past
 * END), printing as recv_serve.  Returns as recv_serve.
 */
int	recv_fd(int fd, const struct recv_opts *o);

#endif
