/*
 * transport.c -- URIs and sockets: "tcp:HOST:PORT", "file:PATH", "-".
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "xmig.h"

int
xport_parse(const char *uri, struct xport_uri *u, char *errbuf, size_t errlen)
{
	static const struct {
		const char	*prefix;
		enum xport_kind	 kind;
		const char	*usage;
	} pathlike[] = {
		{ "file:", XPORT_FILE, "file:PATH" },
		{ "exec:", XPORT_EXEC, "exec:COMMAND" },
	};
	const char *hp, *colon;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (strcmp(uri, "-") == 0) {
		u->kind = XPORT_STDIO;
		return 0;
	}
	for (i = 0; i < sizeof(pathlike) / sizeof(pathlike[0]); i++) {
		size_t pl = strlen(pathlike[i].prefix);

		if (strncmp(uri, pathlike[i].prefix, pl) != 0)
			continue;
		if (uri[pl] == '\0' || strlen(uri + pl) >= sizeof(u->path)) {
			snprintf(errbuf, errlen, "%s: expected %s", uri,
			    pathlike[i].usage);
			return -EINVAL;
		}
		u->kind = pathlike[i].kind;
		strcpy(u->path, uri + pl);
		return 0;
	}
	if (strncmp(uri, "tcp:", 4) == 0 || strncmp(uri, "tls:", 4) == 0) {
		hp = uri + 4;
		if ((colon = strrchr(hp, ':')) == NULL || colon[1] == '\0') {
			snprintf(errbuf, errlen, "%s: expected tcp:HOST:PORT",
			    uri);
			return -EINVAL;
		}
		if ((size_t)(colon - hp) >= sizeof(u->host) ||
		    strlen(colon + 1) >= sizeof(u->port)) {
			snprintf(errbuf, errlen, "%s: host or port too long",
			    uri);
			return -EINVAL;
		}
		memcpy(u->host, hp, (size_t)(colon - hp));
		/* [v6addr] */
		if (u->host[0] == '[') {
			size_t l = strlen(u->host);

			if (l < 2 || u->host[l - 1] != ']') {
				snprintf(errbuf, errlen, "%s: bad address",
				    uri);
				return -EINVAL;
			}
			memmove(u->host, u->host + 1, l - 2);
			u->host[l - 2] = '\0';
		}
		strcpy(u->port, colon + 1);
		u->kind = uri[1] == 'c' ? XPORT_TCP : XPORT_TLS;
		return 0;
	}
	snprintf(errbuf, errlen, "%s: unknown URI (expected tcp:HOST:PORT, "
	    "tls:HOST:PORT, exec:COMMAND, file:PATH or -)", uri);
	return -EINVAL;
}

static int
xport_resolve(const struct xport_uri *u, int passive, struct addrinfo **res,
    char *errbuf, size_t errlen)
{
	struct addrinfo hints;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	rc = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints, res);
	if (rc != 0) {
		snprintf(errbuf, errlen, "%s:%s: %s", u->host, u->port,
		    gai_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static void
xport_tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
xport_connect(const struct xport_uri *u, char *errbuf, size_t errlen)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = ECONNREFUSED, rc;

	if ((rc = xport_resolve(u, 0, &res, errbuf, errlen)) != 0)
		return rc;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(errbuf, errlen, "connect to %s:%s: %s", u->host,
		    u->port, strerror(err));
		return -err;
	}
	xport_tune(fd);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static int
xport_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) &&
		    a->s6_addr[12] == 127);
	}
	return 0;
}

int
xport_listen(const struct xport_uri *u, int insecure, char *errbuf,
    size_t errlen)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = EADDRNOTAVAIL, one = 1, rc;

	if ((rc = xport_resolve(u, 1, &res, errbuf, errlen)) != 0)
		return rc;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (u->kind == XPORT_TCP && !insecure &&
		    !xport_is_loopback(ai->ai_addr)) {
			freeaddrinfo(res);
			snprintf(errbuf, errlen, "refusing to listen for plain "
			    "tcp on %s (not a loopback address): use tls:, or "
			    "--insecure on a network you trust",
			    u->host[0] ? u->host : "all addresses");
			return -EPERM;
		}
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 16) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(errbuf, errlen, "listen on %s:%s: %s", u->host,
		    u->port, strerror(err));
		return -err;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

void
xport_abort(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

int
xport_is_regular(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
}

int
xport_bound(int lfd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getsockname(lfd, (struct sockaddr *)&ss, &sl) != 0)
		return -errno;
	if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv,
	    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -EINVAL;
	snprintf(buf, len, "tcp:%s%s%s:%s", strchr(host, ':') ? "[" : "",
	    host, strchr(host, ':') ? "]" : "", serv);
	return 0;
}

/* ---- connecting on the caller's loop ------------------------------------ */

struct xport_connecting {
	struct event_base	*base;
	struct evdns_base	*dns;
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo	*res, *next;
	struct event		*ev;		/* the socket writable, or done */
	int			 fd;
	int			 err;
	int			 resolving;
	int			 cancelled;	/* freed once evdns let go */
	xport_connect_fn	 done;
	void			*arg;
	char			 host[256], port[16];
	char			 errbuf[512];
};

static void
xport_connecting_free(struct xport_connecting *c)
{
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->fd >= 0)
		close(c->fd);
	if (c->res != NULL)
		evutil_freeaddrinfo(c->res);
	if (c->dns != NULL)
		evdns_base_free(c->dns, 0);
	free(c);
}

/* Report from the loop, then free. */
static void
xport_connect_report(evutil_socket_t fd, short what, void *arg)
{
	struct xport_connecting *c = arg;
	int rfd = c->fd;

	(void)fd;
	(void)what;
	if (rfd < 0 && c->errbuf[0] == '\0')
		snprintf(c->errbuf, sizeof(c->errbuf), "connect to %s:%s: %s",
		    c->host, c->port, strerror(c->err));
	c->fd = -1;
	if (c->done != NULL)
		c->done(c->arg, rfd, rfd >= 0 ? 0 : -c->err, c->errbuf);
	else if (rfd >= 0)
		close(rfd);
	xport_connecting_free(c);
}

static void xport_connect_next(struct xport_connecting *c);

static void
xport_connect_writable(evutil_socket_t fd, short what, void *arg)
{
	struct xport_connecting *c = arg;
	int err = 0;
	socklen_t el = sizeof(err);

	(void)what;
	event_free(c->ev);
	c->ev = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		err = errno;
	if (err == 0) {
		xport_tune(c->fd);
		xport_connect_report(-1, 0, c);
		return;
	}
	c->err = err;
	close(c->fd);
	c->fd = -1;
	xport_connect_next(c);
}

/* Try the next address, or report the last failure (from the loop). */
static void
xport_connect_next(struct xport_connecting *c)
{
	struct evutil_addrinfo *ai;

	while ((ai = c->next) != NULL) {
		c->next = ai->ai_next;
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (c->fd < 0) {
			c->err = errno;
			continue;
		}
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    errno == EINPROGRESS) {
			c->ev = event_new(c->base, c->fd, EV_WRITE,
			    xport_connect_writable, c);
			if (c->ev != NULL && event_add(c->ev, NULL) == 0)
				return;
			c->err = ENOMEM;
		} else
			c->err = errno;
		close(c->fd);
		c->fd = -1;
	}
	if (c->ev == NULL)
		c->ev = event_new(c->base, -1, 0, xport_connect_report, c);
	if (c->ev != NULL)
		event_active(c->ev, EV_TIMEOUT, 0);
}

static void
xport_connect_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct xport_connecting *c = arg;

	c->req = NULL;
	c->resolving = 0;
	if (c->cancelled) {
		/* Freed from the loop, not inside evdns' own callback. */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		c->next = NULL;
		c->ev = event_new(c->base, -1, 0, xport_connect_report, c);
		if (c->ev != NULL)
			event_active(c->ev, EV_TIMEOUT, 0);
		return;
	}
	if (result != 0) {
		snprintf(c->errbuf, sizeof(c->errbuf), "%s:%s: %s", c->host,
		    c->port, evutil_gai_strerror(result));
		c->err = EINVAL;
		c->next = NULL;
	} else {
		c->res = res;
		c->next = res;
	}
	xport_connect_next(c);
}

struct xport_connecting *
xport_connect_start(struct event_base *base, const struct xport_uri *u,
    xport_connect_fn done, void *arg)
{
	struct xport_connecting *c;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->fd = -1;
	c->err = ECONNREFUSED;
	c->done = done;
	c->arg = arg;
	snprintf(c->host, sizeof(c->host), "%s", u->host);
	snprintf(c->port, sizeof(c->port), "%s", u->port);
	/* Reads resolv.conf and /etc/hosts (files); asks the network only
	 * for a name they do not have, on the loop. */
	c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (c->dns == NULL)
		c->dns = evdns_base_new(base, 0);
	if (c->dns == NULL) {
		free(c);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* A numeric address or a hosts entry calls back at once. */
	c->resolving = 1;
	req = evdns_getaddrinfo(c->dns, c->host[0] ? c->host : NULL, c->port,
	    &hints, xport_connect_resolved, c);
	if (c->resolving)
		c->req = req;
	return c;
}

void
xport_connect_cancel(struct xport_connecting *c)
{
	struct evdns_getaddrinfo_request *req;

	if (c == NULL)
		return;
	c->done = NULL;
	if (c->req == NULL) {
		xport_connecting_free(c);
		return;
	}
	/* evdns calls back (EVUTIL_EAI_CANCEL), now or later: free then. */
	c->cancelled = 1;
	req = c->req;
	evdns_getaddrinfo_cancel(req);
}

struct bufferevent *
xport_bev_new(struct event_base *base, int fd, void *tls_ctx, int server,
    const char *host, char *errbuf, size_t errlen)
{
	struct bufferevent *bev;

	if (tls_ctx != NULL)
		return xport_tls_bev_new(base, fd, tls_ctx, server, host,
		    errbuf, errlen);
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		snprintf(errbuf, errlen, "out of memory");
	return bev;
}

void
xport_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
	int err = EVUTIL_SOCKET_ERROR();

	if (xport_tls_bev_error(bev, buf, len))
		return;
	snprintf(buf, len, "%s", err ? strerror(err) : "connection error");
}
