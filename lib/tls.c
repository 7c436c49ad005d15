/*
 * tls.c -- TLS for tls: URIs on bufferevent_openssl.
 *
 * Not implemented yet: every entry point refuses with a clear message, so
 * a tls: URI fails before anything is sent.
 */
#include "config.h"

#include <stdio.h>

#include "xmig.h"

void *
xport_tls_ctx_new(const struct xport_tls *t, int server, char *errbuf,
    size_t errlen)
{
	(void)t;
	(void)server;
	snprintf(errbuf, errlen, "tls: is not implemented yet");
	return NULL;
}

void
xport_tls_ctx_free(void *ctx)
{
	(void)ctx;
}

struct bufferevent *
xport_tls_bev_new(struct event_base *base, int fd, void *ctx, int server,
    const char *host, char *errbuf, size_t errlen)
{
	snprintf(errbuf, errlen, "tls: is not implemented yet");
	return NULL;
}

int
xport_tls_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
	return 0;
}
