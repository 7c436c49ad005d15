/*
 * backend-xen.c -- real Xen domains through libxenctrl / libxenguest.
 *
 * Built only when configure finds the Xen libraries (HAVE_XEN).  Not
 * implemented yet: opening a domain fails with -ENOSYS and says so, and
 * every other entry point refuses the same way.  The handle layout and the
 * <xenctrl.h> include are here so the build proves it links against Xen.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <xenctrl.h>

#include "backend.h"

/* The stubs ignore most of their arguments. */
#define XEN_UNUSED	__attribute__((unused))

struct xen_backend {
	struct backend	 b;
	xc_interface	*xch;		/* unused until the backend exists */
	char		 spec[128];
};

static int
xen_refuse(struct backend *b, const char *spec)
{
	backend_seterr(b, "the xen backend is not implemented yet (xen:%.200s)",
	    spec != NULL ? spec : "");
	return (-ENOSYS);
}

static int
xen_refuse_handle(struct backend *b)
{
	struct xen_backend	*x = (struct xen_backend *)b;

	return (xen_refuse(b, x->spec));
}

static int
xen_open_source(const char *spec, struct backend **out)
{
	*out = NULL;
	return (xen_refuse(NULL, spec));
}

static int
xen_open_target(const char *spec, const struct domain_info *info XEN_UNUSED,
    struct backend **out)
{
	*out = NULL;
	return (xen_refuse(NULL, spec));
}

static int
xen_describe(struct backend *b, struct domain_info *info XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_map(struct backend *b, const uint64_t *pfns XEN_UNUSED,
    unsigned n XEN_UNUSED, int writable XEN_UNUSED, void **pages XEN_UNUSED,
    void **cookie XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static void
xen_unmap(struct backend *b XEN_UNUSED, void *cookie XEN_UNUSED,
    unsigned n XEN_UNUSED)
{
}

static int
xen_enable_dirty(struct backend *b)
{
	return (xen_refuse_handle(b));
}

static int64_t
xen_read_dirty(struct backend *b, uint64_t *bitmap XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_disable_dirty(struct backend *b)
{
	return (xen_refuse_handle(b));
}

static int
xen_pause(struct backend *b)
{
	return (xen_refuse_handle(b));
}

static int
xen_resume(struct backend *b)
{
	return (xen_refuse_handle(b));
}

static int
xen_static_state(struct backend *b, struct state_list *out XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_save_state(struct backend *b, struct state_list *out XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_populate(struct backend *b, const uint64_t *pfns XEN_UNUSED,
    unsigned n XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_zero_page(struct backend *b, uint64_t pfn XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_load_state(struct backend *b, uint32_t type XEN_UNUSED,
    const uint8_t *body XEN_UNUSED, uint32_t len XEN_UNUSED)
{
	return (xen_refuse_handle(b));
}

static int
xen_complete(struct backend *b)
{
	return (xen_refuse_handle(b));
}

static int
xen_destroy(struct backend *b)
{
	return (xen_refuse_handle(b));
}

static void
xen_close(struct backend *b)
{
	struct xen_backend	*x = (struct xen_backend *)b;

	if (x == NULL)
		return;
	if (x->xch != NULL)
		xc_interface_close(x->xch);
	free(x);
}

const struct backend_ops xen_ops = {
	.name = "xen",
	.open_source = xen_open_source,
	.open_target = xen_open_target,
	.describe = xen_describe,
	.map = xen_map,
	.unmap = xen_unmap,
	.enable_dirty = xen_enable_dirty,
	.read_dirty = xen_read_dirty,
	.disable_dirty = xen_disable_dirty,
	.pause = xen_pause,
	.resume = xen_resume,
	.static_state = xen_static_state,
	.save_state = xen_save_state,
	.populate = xen_populate,
	.zero_page = xen_zero_page,
	.load_state = xen_load_state,
	.complete = xen_complete,
	.destroy = xen_destroy,
	.close = xen_close,
	.stats = NULL,
};
