/*
 * backend/xen/diag.c -- what the Xen backend tells about itself: where the
 * time goes (xen_timing), libxc's messages captured for the reasons
 * xen_fail() sets (nothing is printed), and the emergency clean-up that
 * turns log-dirty mode off from a fatal signal handler.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xen-int.h"
#include "xmig.h"
/* ---- where the time goes ------------------------------------------------ */

/*
 * Per process (the helper has one handle per side): calls, pages and
 * nanoseconds of each kind of libxc call, for xen_timing().  map and
 * unmap update them under the handle's lock; the rest run on one thread.
 */
static const char *const xen_tname[XT_NR] = {
	"types", "map", "unmap", "logdirty", "logdirty-off", "populate",
	"clear", "suspend", "state", "complete",
};
static struct { uint64_t n, pages, ns; } xen_t[XT_NR];

void
xen_tadd(unsigned k, uint64_t t0, uint64_t pages)
{
	xen_t[k].n++;
	xen_t[k].pages += pages;
	xen_t[k].ns += now_ns() - t0;
}

void
xen_timing(char *buf, size_t len)
{
	size_t o = 0;
	unsigned k;
	int w;

	buf[0] = '\0';
	for (k = 0; k < XT_NR && o < len; k++) {
		if (xen_t[k].n == 0)
			continue;
		w = snprintf(buf + o, len - o, "%s%s %" PRIu64 "x/%" PRIu64
		    "p %.1f ms", o ? ", " : "", xen_tname[k], xen_t[k].n,
		    xen_t[k].pages, (double)xen_t[k].ns / 1e6);
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* ---- libxc's messages, captured --------------------------------------- */

static _Thread_local char xen_last_log[192];

static void
xen_log_vmessage(struct xentoollog_logger *l, xentoollog_level level,
    int errnoval, const char *context, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void
xen_log_vmessage(struct xentoollog_logger *l, xentoollog_level level,
    int errnoval, const char *context, const char *fmt, va_list ap)
{
	(void)l;
	(void)context;
	if (level < XTL_ERROR)
		return;
	vsnprintf(xen_last_log, sizeof(xen_last_log), fmt, ap);
	if (errnoval > 0) {
		size_t n = strlen(xen_last_log);

		snprintf(xen_last_log + n, sizeof(xen_last_log) - n, " (%s)",
		    strerror(errnoval));
	}
}

static void
xen_log_destroy(struct xentoollog_logger *l)
{
	(void)l;
}

xentoollog_logger xen_logger = {
	.vmessage = xen_log_vmessage,
	.progress = NULL,
	.destroy = xen_log_destroy,
};

/* Set b's reason from fmt and errno (and libxc's last word, if any). */
int
xen_fail(struct backend *b, int err, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (err <= 0)
		err = EIO;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (xen_last_log[0] != '\0')
		backend_seterr(b, "xen: %s: %s [libxc: %s]", msg,
		    strerror(err), xen_last_log);
	else
		backend_seterr(b, "xen: %s: %s", msg, strerror(err));
	xen_last_log[0] = '\0';
	return -err;
}

/* Forget libxc's last word (a failure handled, or told otherwise). */
void
xen_log_forget(void)
{
	xen_last_log[0] = '\0';
}

/* ---- emergency clean-up ------------------------------------------------ */

/* Domains with log-dirty on, for xen_emergency_cleanup(). */
#define XEN_MAX_LIVE	8
static struct xen_backend *volatile xen_live[XEN_MAX_LIVE];

void
xen_live_add(struct xen_backend *x)
{
	unsigned i;

	for (i = 0; i < XEN_MAX_LIVE; i++)
		if (__sync_bool_compare_and_swap(&xen_live[i], NULL, x))
			return;
}

void
xen_live_del(struct xen_backend *x)
{
	unsigned i;

	for (i = 0; i < XEN_MAX_LIVE; i++)
		__sync_bool_compare_and_swap(&xen_live[i], x, NULL);
}

void
xen_emergency_cleanup(void)
{
	unsigned i;

	for (i = 0; i < XEN_MAX_LIVE; i++) {
		struct xen_backend *x = xen_live[i];

		if (x != NULL && x->logdirty)
			xc_shadow_control(x->xch, x->domid,
			    XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
	}
}
