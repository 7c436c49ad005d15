/*
 * backend.c -- the backend registry, state lists and error messages.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* Every backend xmig knows; ops is NULL when this build lacks it. */
static const struct backend_entry {
	const char			*name;
	const struct backend_ops	*ops;
} backend_table[] = {
	{ .name = "sim", .ops = &sim_ops },
#ifdef HAVE_XEN
	{ .name = "xen", .ops = &xen_ops },
#else
	{ .name = "xen", .ops = NULL },
#endif
};

/* Where open_* failures go: there is no handle yet. */
static _Thread_local char backend_open_err[256];

static const struct backend_entry *
backend_entry(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < sizeof backend_table / sizeof backend_table[0]; i++) {
		if (strlen(backend_table[i].name) == len &&
		    strncmp(backend_table[i].name, name, len) == 0)
			return (&backend_table[i]);
	}
	return (NULL);
}

const struct backend_ops *
backend_find(const char *name)
{
	const struct backend_entry	*e;

	if (name == NULL)
		return (NULL);
	e = backend_entry(name, strlen(name));
	return (e != NULL ? e->ops : NULL);
}

const struct backend_ops *
backend_lookup(const char *uri, const char **spec)
{
	const struct backend_entry	*e;
	const char			*colon;
	size_t				 len;

	if (uri == NULL)
		return (NULL);
	colon = strchr(uri, ':');
	len = colon != NULL ? (size_t)(colon - uri) : strlen(uri);
	e = backend_entry(uri, len);
	if (e == NULL || e->ops == NULL)
		return (NULL);
	if (spec != NULL)
		*spec = colon != NULL ? colon + 1 : "";
	return (e->ops);
}

int
backend_foreach(int (*fn)(const char *name, int built, void *arg),
    void *arg)
{
	size_t	i;
	int	rc;

	for (i = 0; i < sizeof backend_table / sizeof backend_table[0]; i++) {
		rc = fn(backend_table[i].name, backend_table[i].ops != NULL,
		    arg);
		if (rc != 0)
			return (rc);
	}
	return (0);
}

int
backend_known_but_missing(const char *name)
{
	const struct backend_entry	*e;
	const char			*colon;
	size_t				 len;

	if (name == NULL)
		return (0);
	colon = strchr(name, ':');
	len = colon != NULL ? (size_t)(colon - name) : strlen(name);
	e = backend_entry(name, len);
	return (e != NULL && e->ops == NULL);
}

int
state_list_add(struct state_list *l, uint32_t type, const void *body,
    uint32_t len)
{
	struct state_rec	*recs;
	uint8_t			*copy;
	size_t			 cap;

	if (len != 0 && body == NULL)
		return (-EINVAL);
	if (l->n == l->cap) {
		cap = l->cap != 0 ? l->cap * 2 : 8;
		if (cap > SIZE_MAX / sizeof *recs)
			return (-ENOMEM);
		recs = realloc(l->recs, cap * sizeof *recs);
		if (recs == NULL)
			return (-ENOMEM);
		l->recs = recs;
		l->cap = cap;
	}
	copy = malloc(len != 0 ? len : 1);
	if (copy == NULL)
		return (-ENOMEM);
	if (len != 0)
		memcpy(copy, body, len);
	l->recs[l->n].type = type;
	l->recs[l->n].len = len;
	l->recs[l->n].body = copy;
	l->n++;
	return (0);
}

void
state_list_free(struct state_list *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->recs[i].body);
	free(l->recs);
	l->recs = NULL;
	l->n = l->cap = 0;
}

const char *
backend_errmsg(const struct backend *b)
{
	if (b == NULL)
		return (backend_open_err);
	return (b->errmsg);
}

void
backend_seterr(struct backend *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*buf;
	size_t	 len;

	if (b != NULL) {
		buf = b->errmsg;
		len = sizeof b->errmsg;
	} else {
		buf = backend_open_err;
		len = sizeof backend_open_err;
	}
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}
