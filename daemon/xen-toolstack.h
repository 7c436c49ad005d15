/*
 * xen-toolstack.h -- libxl's part of moving a Xen domain with
 * migrate-send xen:DOMAIN and migrate-receive --backend xen: what xl does
 * around libxc's save and restore (daemon/xen-toolstack.c; built with the
 * Xen backend only).
 */
#ifndef XMIG_XEN_TOOLSTACK_H
#define XMIG_XEN_TOOLSTACK_H

#include <stddef.h>
#include <stdint.h>

#include "xmig.h"

/* ---- source ------------------------------------------------------------ */

struct xts_source;

/*
 * Attach to the domain dom (a name or a domid): its id, name and libxl
 * configuration (JSON, for XMIG_DOMAIN_CONFIG).  0, or -errno with err.
 */
int	xts_source_open(const char *dom, int verbose, struct xts_source **out,
	    char *err, size_t errlen);
uint32_t xts_source_domid(const struct xts_source *s);
const char *xts_source_config(const struct xts_source *s, size_t *len);
/*
 * The Xen backend's suspend hook (xen_set_suspend_hook, arg = s): libxl
 * suspends the guest cooperatively, then the domain is renamed
 * NAME--migratedaway so that the target may take NAME.
 */
int	xts_source_suspend(void *arg);
/*
 * After send_domain: outcome 0 (handed over or saved: the domain is
 * destroyed), 1 (delivered, unconfirmed: it keeps its name and stays
 * suspended), -1 (failed: its name back, and resumed).  0 or -errno.
 */
int	xts_source_finish(struct xts_source *s, int outcome, char *err,
	    size_t errlen);
void	xts_source_free(struct xts_source *s);

/* ---- target ------------------------------------------------------------ */

struct xts_target;

/*
 * A target toolstack for the engine (recv_opts.toolstack): libxl creates
 * the domain as NAME--incoming from the stream's configuration, with
 * helper (xmig-save-helper) as its LIBXL_SAVE_HELPER in delegate mode, so
 * that memory and vcpu state go straight from the stream into the domain
 * through the Xen backend in this process.  One migration per handle.
 */
int	xts_target_new(const char *helper, int verbose, struct xts_target **out,
	    struct recv_toolstack *ts, char *err, size_t errlen);
void	xts_target_free(struct xts_target *t);

/* The path of a program next to this executable (for xmig-save-helper). */
int	xts_sibling(const char *prog, char *out, size_t len);

#endif
