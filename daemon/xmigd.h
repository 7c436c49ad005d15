/*
 * xmigd.h -- what xmigd.c (the daemon: listeners, control API, the table
 * of domains and migrations) and domproc.c (a domain process: one hosted
 * domain and its outgoing migration) share.  The line protocol between
 * them is proto/SPEC.md's "xmigd internal protocol".
 */
#ifndef XMIG_XMIGD_H
#define XMIG_XMIGD_H

#include "xmig.h"

/* A domain's name: 1-64 of [A-Za-z0-9._-]. */
#define XMIGD_NAME_MAX	64
int	xmigd_name_ok(const char *name);

/*
 * The two ways a domain process starts, in a child of xmigd that has
 * closed the daemon's descriptors; both end with _exit.  ctl is the
 * child's end of its socket pair with the daemon.
 *
 * domproc_create: a new sim domain from spec (the part after "sim:"),
 * its workload running.  domproc_receive: one incoming migration on the
 * accepted socket fd (refused with busy when busy is not NULL); the
 * domain it restores is then hosted by this process.
 */
/*
 * The daemon's --tls-cert, --tls-key and --tls-ca, for the outgoing tls:
 * migrations of the domain processes forked after it (the peer's name is
 * the HOST of tls:HOST:PORT).
 */
void	domproc_set_tls(const struct xport_tls *t);
void	domproc_create(int ctl, const char *name, const char *spec)
	    __attribute__((noreturn));
void	domproc_receive(int ctl, int fd, void *tls_ctx,
	    const struct recv_opts *o, const char *busy)
	    __attribute__((noreturn));

#endif
