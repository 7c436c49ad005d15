/*
 * test-tls.c -- lib/transport/tls.c through the transport API, in one process: a
 * listener on 127.0.0.1 and a client on one event loop, with the throwaway
 * PKI of tests/tls-certs.sh.  Good certificates carry data both ways and
 * close cleanly (each side sees EOF); every refusal gives both sides an
 * error with the message a person needs; bad files are refused when the
 * context is made.
 *
 * Usage: test-tls [PKI-DIR]  (without one, the PKI is made in a temporary
 * directory by $top_srcdir/tests/tls-certs.sh, and removed afterwards).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "xmig.h"
#include "tap.h"

/* lib/transport/tls.c: declared here until xmig.h carries it. */
int	xport_tls_shutdown(struct bufferevent *bev, char *errbuf,
	    size_t errlen);

static char pki_dir[PATH_MAX];

/* The path of a file of the PKI (stays valid: one buffer per name). */
static const char *
pki(const char *name)
{
	static char names[64][32], paths[64][PATH_MAX + 64];
	static unsigned n;
	unsigned i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return paths[i];
	if (n == 64 || strlen(name) >= sizeof(names[0]))
		abort();
	snprintf(names[n], sizeof(names[0]), "%s", name);
	snprintf(paths[n], sizeof(paths[0]), "%s/%s", pki_dir, name);
	return paths[n++];
}

static struct xport_tls
tls(const char *cert, const char *key, const char *ca, const char *peer)
{
	struct xport_tls t = { .cert = cert, .key = key, .ca = ca,
	    .peer = peer };

	return t;
}

/* ---- one connection -------------------------------------------------- */

struct scen {
	const char	*name;
	struct xport_tls srv, cli;
	const char	*host;		/* the client connects "to" it */
	size_t		 up, down;	/* octets client->server, back */
	int		 dirty;		/* client closes without close_notify */
	int		 plain_client, plain_server;
	int		 stall;		/* close_notify into a full socket */
	int		 tls12;		/* the client offers TLS 1.2 at most */
	int		 free_at_once;	/* stall, then free with it queued */
};

struct run;

struct side {
	const char	*role;
	struct run	*run;
	struct bufferevent *bev;
	size_t		 got, expect, sent;
	int		 pattern_bad;
	int		 connected, eof, error, done, closing, shutdown_rc;
	int		 version;	/* negotiated, e.g. TLS1_3_VERSION */
	int		 healthy_err;	/* xport_tls_bev_error() once connected */
	char		 err[512];
};

struct run {
	const struct scen *sc;
	struct event_base *base;
	void		*sctx, *cctx;
	int		 lfd;
	struct event	*accept_ev, *timeout_ev;
	struct side	 cli, srv;
	int		 timed_out, queued;
};

static uint8_t
pattern(size_t i, int seed)
{
	return (uint8_t)((i * 7 + (i >> 11) + (size_t)seed) & 0xff);
}

static void
side_send(struct side *s, size_t n, int seed)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	uint8_t buf[16384];
	size_t off, i, k;

	for (off = 0; off < n; off += k) {
		k = n - off < sizeof(buf) ? n - off : sizeof(buf);
		for (i = 0; i < k; i++)
			buf[i] = pattern(off + i, seed);
		evbuffer_add(out, buf, k);
	}
	s->sent += n;
}

static void
side_done(struct side *s)
{
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->done = 1;
	if (s->run->cli.done && s->run->srv.done)
		event_base_loopexit(s->run->base, NULL);
}

static void
side_close(struct side *s)
{
	char err[256];

	s->closing = 1;
	s->shutdown_rc = xport_tls_shutdown(s->bev, err, sizeof(err));
	if (s->shutdown_rc == 1)
		s->run->queued = 1;
	if (s->shutdown_rc < 0)
		fprintf(stderr, "  %s %s: %s\n", s->run->sc->name, s->role,
		    err);
}

static void
side_read(struct bufferevent *bev, void *arg)
{
	struct side *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	int seed = s == &s->run->srv ? 1 : 2;
	uint8_t buf[16384];
	size_t n, i;

	while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0 &&
	    n != (size_t)-1) {
		for (i = 0; i < n; i++)
			if (buf[i] != pattern(s->got + i, seed))
				s->pattern_bad = 1;
		s->got += n;
	}
	if (s->got != s->expect)
		return;
	if (s == &s->run->srv && s->run->sc->down > 0 && s->sent == 0)
		side_send(s, s->run->sc->down, 2);
	else if (s == &s->run->cli && s->run->sc->down > 0)
		side_close(s);
}

static void
side_write(struct bufferevent *bev, void *arg)
{
	struct side *s = arg;

	/* Client, nothing coming back: close once all went out. */
	if (s != &s->run->cli || s->run->sc->down > 0 || s->sent == 0 ||
	    s->closing || s->run->sc->plain_client ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (s->run->sc->dirty) {
		side_done(s);		/* freed without close_notify */
		return;
	}
	if (s->run->sc->stall) {
		/*
		 * The server is not reading and the data waits in the
		 * socket: shrink it below what it holds, so that the
		 * close_notify cannot go out until the server reads again.
		 */
		int sz = 4096;

		setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_SNDBUF, &sz,
		    sizeof(sz));
	}
	side_close(s);
	if (s->run->sc->stall && s->run->srv.bev != NULL)
		bufferevent_enable(s->run->srv.bev, EV_READ);
	if (s->run->sc->free_at_once)
		side_done(s);		/* the close_notify may never leave */
}

static void
side_event(struct bufferevent *bev, short what, void *arg)
{
	struct side *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->connected = 1;
		s->version = SSL_version(bufferevent_openssl_get_ssl(bev));
		/* Asked on a healthy connection (errno stale): no error. */
		errno = EAGAIN;
		s->healthy_err = xport_tls_bev_error(bev, s->err,
		    sizeof(s->err));
		if (s == &s->run->cli)
			side_send(s, s->run->sc->up, 1);
		else if (s->run->sc->stall)
			bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		s->eof = 1;
		side_read(bev, s);
		if (s == &s->run->srv && !s->run->sc->plain_server)
			side_close(s);	/* confirm, as a receiver does */
	} else if (what & BEV_EVENT_ERROR) {
		s->error = 1;
		xport_bev_error(bev, s->err, sizeof(s->err));
		xport_abort(bufferevent_getfd(bev));
	}
	side_done(s);
}

static void
plain_server_read(struct bufferevent *bev, void *arg)
{
	struct side *s = arg;

	/* A tcp: receiver fed a ClientHello: it rejects the stream. */
	s->error = 1;
	snprintf(s->err, sizeof(s->err), "not a stream");
	xport_abort(bufferevent_getfd(bev));
	side_done(s);
}

static void
server_attach(struct run *r, int fd)
{
	char err[256];

	r->srv.bev = xport_bev_new(r->base, fd, r->sc->plain_server ? NULL :
	    r->sctx, 1, NULL, err, sizeof(err));
	if (r->srv.bev == NULL) {
		fprintf(stderr, "  %s: server: %s\n", r->sc->name, err);
		close(fd);
		r->srv.error = 1;
		side_done(&r->srv);
		return;
	}
	bufferevent_setcb(r->srv.bev, r->sc->plain_server ? plain_server_read :
	    side_read, side_write, side_event, &r->srv);
	bufferevent_enable(r->srv.bev, EV_READ | EV_WRITE);
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	int fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		server_attach(arg, fd);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	r->timed_out = 1;
	event_base_loopexit(r->base, NULL);
}

/* Runs sc; r holds what each side saw.  0, or -1 if it could not start. */
static int
run(const struct scen *sc, struct run *r)
{
	struct xport_uri u;
	struct timeval tv = { 20, 0 };
	char err[512], port[16];
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, rc = -1;

	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->lfd = -1;
	r->cli.role = "client";
	r->srv.role = "server";
	r->cli.run = r->srv.run = r;
	r->srv.expect = sc->up;
	r->cli.expect = sc->down;
	r->base = event_base_new();
	if (!sc->plain_server &&
	    (r->sctx = xport_tls_ctx_new(&sc->srv, 1, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "  %s: server context: %s\n", sc->name, err);
		goto out;
	}
	if (!sc->plain_client &&
	    (r->cctx = xport_tls_ctx_new(&sc->cli, 0, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "  %s: client context: %s\n", sc->name, err);
		goto out;
	}
	/* White box: a context is an SSL_CTX. */
	if (sc->tls12)
		SSL_CTX_set_max_proto_version(r->cctx, TLS1_2_VERSION);
	if (sc->stall) {
		/*
		 * A socket pair: unlike TCP, whose last segment can take a few
		 * more octets whatever SO_SNDBUF says, a unix socket refuses
		 * every write once what the peer has not read exceeds it.
		 */
		int sv[2], sz = 4 << 20;	/* holds all of sc->up */

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
			goto out;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		fd = sv[0];
		server_attach(r, sv[1]);
	} else {
		if (xport_parse("tls:127.0.0.1:0", &u, err, sizeof(err)) != 0 ||
		    (r->lfd = xport_listen(&u, 0, err, sizeof(err))) < 0 ||
		    getsockname(r->lfd, (struct sockaddr *)&sin, &sl) != 0) {
			fprintf(stderr, "  %s: listen: %s\n", sc->name, err);
			goto out;
		}
		snprintf(port, sizeof(port), "%u", ntohs(sin.sin_port));
		strcpy(u.port, port);
		if ((fd = xport_connect(&u, err, sizeof(err))) < 0) {
			fprintf(stderr, "  %s: connect: %s\n", sc->name, err);
			goto out;
		}
		r->accept_ev = event_new(r->base, r->lfd, EV_READ, on_accept,
		    r);
		event_add(r->accept_ev, NULL);
	}
	r->cli.bev = xport_bev_new(r->base, fd, r->cctx, 0, sc->host, err,
	    sizeof(err));
	if (r->cli.bev == NULL) {
		fprintf(stderr, "  %s: client: %s\n", sc->name, err);
		close(fd);
		goto out;
	}
	bufferevent_setcb(r->cli.bev, side_read, side_write, side_event,
	    &r->cli);
	bufferevent_enable(r->cli.bev, EV_READ | EV_WRITE);
	if (sc->plain_client) {
		r->cli.connected = 1;
		side_send(&r->cli, sc->up, 1);
	}
	r->timeout_ev = evtimer_new(r->base, on_timeout, r);
	evtimer_add(r->timeout_ev, &tv);
	event_base_dispatch(r->base);
	rc = 0;
out:
	if (r->cli.bev != NULL)
		bufferevent_free(r->cli.bev);
	if (r->srv.bev != NULL)
		bufferevent_free(r->srv.bev);
	if (r->accept_ev != NULL)
		event_free(r->accept_ev);
	if (r->timeout_ev != NULL)
		event_free(r->timeout_ev);
	if (r->lfd >= 0)
		close(r->lfd);
	xport_tls_ctx_free(r->sctx);
	xport_tls_ctx_free(r->cctx);
	event_base_free(r->base);	/* runs the bufferevents' finalizers */
	if (r->timed_out)
		fprintf(stderr, "  %s: timed out\n", sc->name);
	return rc;
}

static void
show(const struct run *r)
{
	printf("# %-36s client: %s%s%s%s  server: %s%s%s%s\n", r->sc->name,
	    r->cli.connected ? "connected " : "", r->cli.eof ? "EOF " : "",
	    r->cli.error ? "error: " : "", r->cli.err,
	    r->srv.connected ? "connected " : "", r->srv.eof ? "EOF " : "",
	    r->srv.error ? "error: " : "", r->srv.err);
}

/* A clean migration-like exchange: everything arrived, both saw EOF. */
static void
expect_good(const struct scen *sc, struct run *out)
{
	struct run r;

	CHECK(run(sc, &r) == 0, "%s: ran", sc->name);
	show(&r);
	CHECK(!r.timed_out, "%s: finished", sc->name);
	CHECK(r.cli.connected && r.srv.connected, "%s: handshake", sc->name);
	CHECK(r.srv.got == sc->up && !r.srv.pattern_bad,
	    "%s: server got %zu of %zu", sc->name, r.srv.got, sc->up);
	CHECK(r.cli.got == sc->down && !r.cli.pattern_bad,
	    "%s: client got %zu of %zu", sc->name, r.cli.got, sc->down);
	CHECK(r.srv.eof && !r.srv.error, "%s: server saw a clean close (%s)",
	    sc->name, r.srv.err);
	CHECK(r.cli.eof && !r.cli.error, "%s: client saw a clean close (%s)",
	    sc->name, r.cli.err);
	CHECK(r.cli.shutdown_rc >= 0 && r.srv.shutdown_rc >= 0,
	    "%s: close_notify sent", sc->name);
	CHECK(!r.cli.healthy_err && !r.srv.healthy_err,
	    "%s: a healthy connection has no TLS error", sc->name);
	CHECK(r.cli.version == (sc->tls12 ? TLS1_2_VERSION : TLS1_3_VERSION),
	    "%s: TLS version 0x%x", sc->name, (unsigned)r.cli.version);
	if (out != NULL)
		*out = r;
}

/* Refused: both sides fail; each message holds its substring. */
static void
expect_refused(const struct scen *sc, const char *srv_says,
    const char *cli_says)
{
	struct run r;

	CHECK(run(sc, &r) == 0, "%s: ran", sc->name);
	show(&r);
	CHECK(!r.timed_out, "%s: finished", sc->name);
	CHECK(r.srv.error && !r.srv.eof && r.srv.got == 0,
	    "%s: server refused", sc->name);
	CHECK(r.cli.error && !r.cli.eof, "%s: client failed", sc->name);
	if (srv_says != NULL)
		CHECK(strstr(r.srv.err, srv_says) != NULL,
		    "%s: server says \"%s\", not \"%s\"", sc->name, r.srv.err,
		    srv_says);
	if (cli_says != NULL)
		CHECK(strstr(r.cli.err, cli_says) != NULL,
		    "%s: client says \"%s\", not \"%s\"", sc->name, r.cli.err,
		    cli_says);
}

/* Refused senders write this much at once, as the engine does. */
#define BIG	(4u << 20)

/*
 * A scenario with good certificates on both sides (CA1; the receiver is
 * localhost/127.0.0.1, the sender sender.test); callers change what they
 * test.
 */
static struct scen
scen(const char *name, const char *host, size_t up, size_t down)
{
	struct scen sc = {
		.name = name,
		.srv = tls(pki("server.pem"), pki("server.key"),
		    pki("ca1.pem"), NULL),
		.cli = tls(pki("client.pem"), pki("client.key"),
		    pki("ca1.pem"), NULL),
		.host = host,
		.up = up,
		.down = down,
	};

	return sc;
}

static void
test_connections(void)
{
	struct scen sc;
	struct run r;

	/* Good certificates. */
	sc = scen("round trip by address", "127.0.0.1", 300000, 100000);
	expect_good(&sc, NULL);

	sc = scen("by name, sender pinned", "localhost", 1000, 1000);
	sc.srv.peer = "sender.test";
	expect_good(&sc, NULL);

	sc = scen("pinned name in the CN only", "127.0.0.1", 1000, 10);
	sc.srv.peer = "sender.test";
	sc.cli.cert = pki("cnonly.pem");
	sc.cli.key = pki("cnonly.key");
	expect_good(&sc, NULL);

	sc = scen("bulk, then close_notify", "127.0.0.1", 8u << 20, 0);
	expect_good(&sc, NULL);

	sc = scen("close_notify into a full socket", "127.0.0.1", 1u << 20,
	    0);
	sc.stall = 1;
	expect_good(&sc, &r);
	CHECK(r.queued, "close_notify waited for the socket to drain");

	/* Freed with the close_notify still queued: nothing leaks. */
	sc = scen("freed with close_notify queued", "127.0.0.1", 1u << 20, 0);
	sc.stall = sc.free_at_once = 1;
	CHECK(run(&sc, &r) == 0, "%s: ran", sc.name);
	show(&r);
	CHECK(!r.timed_out && r.cli.shutdown_rc == 1 && r.srv.done &&
	    r.srv.got == sc.up, "%s: close_notify %d, server got %zu",
	    sc.name, r.cli.shutdown_rc, r.srv.got);

	sc = scen("round trip over TLS 1.2", "localhost", 300000, 100000);
	sc.tls12 = 1;
	expect_good(&sc, NULL);

	/* Refusals. */
	sc = scen("client certificate from CA2", "127.0.0.1", BIG, 0);
	sc.cli.cert = pki("client-ca2.pem");
	sc.cli.key = pki("client-ca2.key");
	expect_refused(&sc, "TLS: the peer's certificate is not signed by "
	    "the CA in --tls-ca (unable to get local issuer certificate)",
	    "TLS: the peer refused our certificate");

	sc = scen("client certificate from CA2, TLS 1.2", "127.0.0.1", BIG, 0);
	sc.cli.cert = pki("client-ca2.pem");
	sc.cli.key = pki("client-ca2.key");
	sc.tls12 = 1;
	expect_refused(&sc, "TLS: the peer's certificate is not signed by "
	    "the CA in --tls-ca (unable to get local issuer certificate)",
	    "TLS: the peer refused our certificate");

	sc = scen("receiver pins another name", "127.0.0.1", BIG, 0);
	sc.srv.peer = "sender.test";
	sc.cli.cert = pki("other.pem");
	sc.cli.key = pki("other.key");
	expect_refused(&sc, "is not allowed to connect: its certificate "
	    "(CN=other.test) names other.test, none of the names allowed by "
	    "--tls-peer sender.test", "TLS: the peer refused our certificate");

	sc = scen("sender pins another name", "127.0.0.1", BIG, 0);
	sc.cli.peer = "wrong.test";
	expect_refused(&sc, "TLS: the peer refused our certificate",
	    "TLS: the peer's certificate does not name wrong.test");

	sc = scen("receiver certificate for another host", "127.0.0.1", BIG,
	    0);
	sc.srv.cert = pki("other.pem");
	sc.srv.key = pki("other.key");
	expect_refused(&sc, "TLS: the peer refused our certificate",
	    "TLS: the peer's certificate does not name 127.0.0.1 (it names "
	    "other.test)");

	sc = scen("no client certificate", "127.0.0.1", BIG, 0);
	sc.cli.cert = sc.cli.key = NULL;
	expect_refused(&sc, "TLS: the peer sent no certificate",
	    "TLS: the peer requires a certificate from this side");

	sc = scen("no client certificate, TLS 1.2", "127.0.0.1", BIG, 0);
	sc.cli.cert = sc.cli.key = NULL;
	sc.tls12 = 1;
	expect_refused(&sc, "TLS: the peer sent no certificate",
	    "it requires a certificate from this side");

	sc = scen("expired receiver certificate", "127.0.0.1", BIG, 0);
	sc.srv.cert = pki("expired.pem");
	sc.srv.key = pki("expired.key");
	expect_refused(&sc, "TLS: the peer refused our certificate",
	    "TLS: the peer's certificate has expired (CN=localhost, not "
	    "valid after Jan 31 00:00:00 2020 GMT)");

	sc = scen("expired sender certificate", "127.0.0.1", BIG, 0);
	sc.cli.cert = pki("expired.pem");	/* clientAuth too */
	sc.cli.key = pki("expired.key");
	expect_refused(&sc, "TLS: the peer's certificate has expired",
	    "TLS: the peer refused our certificate");

	sc = scen("plain tcp client", "127.0.0.1", 1000, 0);
	sc.plain_client = 1;
	expect_refused(&sc, "TLS: the peer does not speak TLS", NULL);

	sc = scen("plain tcp server", "127.0.0.1", 1000, 0);
	sc.plain_server = 1;
	expect_refused(&sc, NULL, "TLS: the handshake failed");

	/* Closed without close_notify after the data: an error. */
	sc = scen("dirty close", "127.0.0.1", 50000, 0);
	sc.dirty = 1;
	CHECK(run(&sc, &r) == 0, "dirty: ran");
	show(&r);
	CHECK(r.srv.got == sc.up, "dirty: the data arrived");
	CHECK(r.srv.error && !r.srv.eof, "dirty: the server saw an error");
	CHECK(strstr(r.srv.err, "TLS: the peer closed the connection without "
	    "a close_notify") != NULL, "dirty: \"%s\"", r.srv.err);
}

/* ---- certificates the openssl tool cannot make --------------------------- */

/* One subjectAltName entry: a DNS name or an iPAddress of any length. */
struct san {
	int		 type;		/* GEN_DNS, GEN_IPADD */
	const char	*data;
	int		 len;
};

/*
 * NAME.pem and NAME.key in the PKI: a P-256 certificate signed by CA1 for
 * serverAuth and clientAuth, subject CN=cn, with the n subjectAltName
 * entries given (none: no extension), built byte by byte with the OpenSSL
 * API so that they can be malformed.  0, or -1 with the reason printed.
 */
static int
make_cert(const char *name, const char *cn, const struct san *sans, int n)
{
	char path[PATH_MAX + 64];
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *cakey = NULL, *key = NULL;
	GENERAL_NAMES *gens = NULL;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	FILE *f;
	int i, rc = -1;
	static const char *const exts[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "keyUsage", "critical,digitalSignature" },
		{ "extendedKeyUsage", "serverAuth,clientAuth" },
	};

	if ((f = fopen(pki("ca1.pem"), "r")) != NULL) {
		ca = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(pki("ca1.key"), "r")) != NULL) {
		cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (ca == NULL || cakey == NULL ||
	    (key = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0x7000 + (long)n * 16 +
	    (long)strlen(name));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	for (i = 0; i < (int)(sizeof(exts) / sizeof(exts[0])); i++) {
		ext = X509V3_EXT_nconf(NULL, &v3, exts[i][0], exts[i][1]);
		if (ext == NULL || !X509_add_ext(x, ext, -1))
			goto out;
		X509_EXTENSION_free(ext);
	}
	if (n > 0) {
		if ((gens = GENERAL_NAMES_new()) == NULL)
			goto out;
		for (i = 0; i < n; i++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_STRING *str = ASN1_STRING_type_new(
			    sans[i].type == GEN_DNS ? V_ASN1_IA5STRING :
			    V_ASN1_OCTET_STRING);

			if (g == NULL || str == NULL ||
			    !ASN1_STRING_set(str, sans[i].data, sans[i].len)) {
				GENERAL_NAME_free(g);
				ASN1_STRING_free(str);
				goto out;
			}
			GENERAL_NAME_set0_value(g, sans[i].type, str);
			sk_GENERAL_NAME_push(gens, g);
		}
		if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
		    X509V3_ADD_DEFAULT))
			goto out;
	}
	if (!X509_sign(x, cakey, EVP_sha256()))
		goto out;
	snprintf(path, sizeof(path), "%s/%s.pem", pki_dir, name);
	if ((f = fopen(path, "w")) == NULL)
		goto out;
	i = PEM_write_X509(f, x);
	if (fclose(f) != 0 || !i)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.key", pki_dir, name);
	if ((f = fopen(path, "w")) == NULL)
		goto out;
	i = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0 || !i)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "  cannot make %s.pem\n", name);
	GENERAL_NAMES_free(gens);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rc;
}

/*
 * Malformed subjectAltNames, read in the verify callback before the peer
 * is authenticated: an iPAddress of 0, 3, 5 or 17 octets (4 and 16 are the
 * only lengths), a dNSName with a NUL or an ESC in it.  Each is refused
 * for matching, and shown escaped in the message, never read past its end
 * (the sanitizer build checks that).
 */
static void
test_malformed_names(void)
{
	static const struct {
		const char	*name;
		struct san	 san;
		const char	*shown;
	} bad[] = {
#define OCTETS(s)	s, (int)sizeof(s) - 1
		{ "ip0", { GEN_IPADD, OCTETS("") },
		    "(malformed IP address, 0 octets)" },
		{ "ip3", { GEN_IPADD, OCTETS("\x7f\x00\x00") },
		    "(malformed IP address, 3 octets)" },
		{ "ip5", { GEN_IPADD, OCTETS("\x7f\x00\x00\x01\x00") },
		    "(malformed IP address, 5 octets)" },
		{ "ip17", { GEN_IPADD,
		    OCTETS("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x01") },
		    "(malformed IP address, 17 octets)" },
		{ "dnsnul", { GEN_DNS, OCTETS("sender.test\0.evil.test") },
		    "sender.test\\x00.evil.test" },
		{ "dnsesc", { GEN_DNS, OCTETS("\x1b]0;owned\x07.test") },
		    "\\x1b]0;owned\\x07.test" },
	};
	struct san two[2] = {
		{ GEN_IPADD, OCTETS("\x7f\x00\x00") },
		{ GEN_DNS, OCTETS("sender.test") },
	};
#undef OCTETS
	char want[256], what[64];
	const char *cert, *key;
	struct scen sc;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct san one[2] = { bad[i].san, { GEN_DNS, "other.test", 10 } };

		CHECK(bad[i].san.len == atoi(bad[i].name + 2) ||
		    bad[i].san.type == GEN_DNS, "%s: %d octets", bad[i].name,
		    bad[i].san.len);

		CHECK(make_cert(bad[i].name, "sender.test", one, 2) == 0,
		    "%s: made", bad[i].name);
		/* As the sender's certificate, at a receiver that pins a name. */
		snprintf(what, sizeof(what), "%s.pem", bad[i].name);
		cert = pki(what);
		snprintf(what, sizeof(what), "%s.key", bad[i].name);
		key = pki(what);
		snprintf(what, sizeof(what), "%s as the sender's", bad[i].name);
		sc = scen(what, "127.0.0.1", BIG, 0);
		sc.srv.peer = "sender.test";
		sc.cli.cert = cert;
		sc.cli.key = key;
		snprintf(want, sizeof(want), "names %s, other.test",
		    bad[i].shown);
		expect_refused(&sc, want,
		    "TLS: the peer refused our certificate");
		/* As the receiver's, at a sender that checks 127.0.0.1. */
		snprintf(what, sizeof(what), "%s as the receiver's",
		    bad[i].name);
		sc = scen(what, "127.0.0.1", BIG, 0);
		sc.srv.cert = cert;
		sc.srv.key = key;
		snprintf(want, sizeof(want), "TLS: the peer's certificate does "
		    "not name 127.0.0.1 (it names %s, other.test)",
		    bad[i].shown);
		expect_refused(&sc, "TLS: the peer refused our certificate",
		    want);
	}

	/* A malformed entry beside a good one: the good one still counts. */
	CHECK(make_cert("ip3dns", "ip3dns", two, 2) == 0, "ip3dns: made");
	sc = scen("malformed IP beside the pinned name", "127.0.0.1", 1000, 10);
	sc.srv.peer = "sender.test";
	sc.cli.cert = pki("ip3dns.pem");
	sc.cli.key = pki("ip3dns.key");
	expect_good(&sc, NULL);
}

/* ---- who may connect ------------------------------------------------------ */

static void ctx_refused(const char *, struct xport_tls, int, const char *,
    const char *);

/* PKI-DIR/name with text in it; its path. */
static const char *
pki_file(const char *name, const char *text)
{
	const char *path = pki(name);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		fprintf(stderr, "  cannot write %s\n", path);
	return path;
}

static void
test_authz(void)
{
	static const char *two[] = { "b.test", "sender.test" };
	static const char *one_more[] = { "b.test" };
	struct san ipsan[2] = {
		{ GEN_IPADD, "\x7f\x00\x00\x01", 4 },
		{ GEN_DNS, "ip.test", 7 },
	};
	struct san other[1] = { { GEN_DNS, "other.test", 10 } };
	struct san wild[1] = { { GEN_DNS, "*.test", 6 } };
	const char *allow, *cert = pki("client.pem"), *key = pki("client.key");
	const char *ca = pki("ca1.pem");
	struct xport_tls t;
	struct scen sc;

	CHECK(make_cert("ipclient", "ipclient", ipsan, 2) == 0, "made");
	CHECK(make_cert("cnsan", "sender.test", other, 1) == 0, "made");
	CHECK(make_cert("wild", "wild", wild, 1) == 0, "made");

	/* Allowed: one of several names, any case, an IP address. */
	sc = scen("allowed: second of two names", "127.0.0.1", 1000, 10);
	sc.srv.peer = "a.test";
	sc.srv.peers = two;
	sc.srv.npeers = 2;
	expect_good(&sc, NULL);
	sc = scen("allowed: name in another case", "127.0.0.1", 1000, 10);
	sc.srv.peer = "Sender.TEST";
	expect_good(&sc, NULL);
	sc = scen("allowed: by IP address", "127.0.0.1", 1000, 10);
	sc.srv.peer = "127.0.0.1";
	sc.cli.cert = pki("ipclient.pem");
	sc.cli.key = pki("ipclient.key");
	expect_good(&sc, NULL);

	/* Refused. */
	sc = scen("refused: another IP address", "127.0.0.1", BIG, 0);
	sc.srv.peer = "::1";
	sc.cli.cert = pki("ipclient.pem");
	sc.cli.key = pki("ipclient.key");
	expect_refused(&sc, "its certificate (CN=ipclient) names 127.0.0.1, "
	    "ip.test, none of the names allowed by --tls-peer ::1",
	    "TLS: the peer refused our certificate");
	sc = scen("refused: CN moot beside a subjectAltName", "127.0.0.1",
	    BIG, 0);
	sc.srv.peer = "sender.test";
	sc.cli.cert = pki("cnsan.pem");
	sc.cli.key = pki("cnsan.key");
	expect_refused(&sc, "its certificate (CN=sender.test) names "
	    "other.test, none of", "TLS: the peer refused our certificate");
	sc = scen("refused: a wildcard certificate", "127.0.0.1", BIG, 0);
	sc.srv.peer = "sender.test";
	sc.cli.cert = pki("wild.pem");
	sc.cli.key = pki("wild.key");
	expect_refused(&sc, "names *.test, none of the names allowed by "
	    "--tls-peer sender.test", "TLS: the peer refused our certificate");

	sc = scen("refused: not on the list, TLS 1.2", "127.0.0.1", BIG, 0);
	sc.srv.peer = "sender.test";
	sc.cli.cert = pki("other.pem");
	sc.cli.key = pki("other.key");
	sc.tls12 = 1;
	expect_refused(&sc, "names other.test, none of the names allowed by "
	    "--tls-peer sender.test", "TLS: the peer refused our certificate");

	/* --tls-allow FILE: comments, blanks, several names. */
	allow = pki_file("allow", "# who may migrate here\n\n"
	    "  a.test   # the first\n\tsender.test\r\n#other.test\n");
	sc = scen("allowed: --tls-allow", "127.0.0.1", 1000, 10);
	sc.srv.allow_file = allow;
	expect_good(&sc, NULL);
	sc = scen("refused: --tls-allow", "127.0.0.1", BIG, 0);
	sc.srv.peer = "c.test";
	sc.srv.peers = one_more;
	sc.srv.npeers = 1;
	sc.srv.allow_file = allow;
	sc.cli.cert = pki("other.pem");
	sc.cli.key = pki("other.key");
	expect_refused(&sc, "names other.test, none of the names allowed by "
	    "--tls-peer c.test, b.test or --tls-allow ",
	    "TLS: the peer refused our certificate");

	/* Lists a receiver refuses to start with, and the sender's. */
	t = tls(cert, key, ca, NULL);
	t.allow_file = pki_file("allow-bad", "a.test\n\n*.test # all\n");
	ctx_refused("wildcard in --tls-allow", t, 1, "allow-bad line 3: "
	    "\"*.test\" is not a DNS name or an IP address", NULL);
	t.allow_file = pki_file("allow-two", "a.test b.test\n");
	ctx_refused("two names on a line", t, 1, "line 1: \"a.test b.test\"",
	    NULL);
	t.allow_file = pki_file("allow-esc", "a.\x1b[2Jtest\n");
	ctx_refused("escape in --tls-allow", t, 1, "line 1: "
	    "\"a.\\x1b[2Jtest\"", NULL);
	t.allow_file = pki_file("allow-empty", "# nobody yet\n\n");
	ctx_refused("empty --tls-allow", t, 1, "allow-empty: no names in it",
	    NULL);
	t.allow_file = pki("missing.pem");
	ctx_refused("missing --tls-allow", t, 1, "TLS: --tls-allow ",
	    "missing.pem: No such file or directory");
	t = tls(cert, key, ca, "bad name");
	ctx_refused("bad --tls-peer", t, 1, "TLS: --tls-peer \"bad name\": "
	    "not a DNS name or an IP address", NULL);
	t = tls(cert, key, ca, "a.test");
	t.peers = one_more;
	t.npeers = 1;
	ctx_refused("two --tls-peer on the sender", t, 0, "the sender checks "
	    "one name", NULL);
	t = tls(cert, key, ca, NULL);
	t.allow_file = allow;
	ctx_refused("--tls-allow on the sender", t, 0, "--tls-allow: the "
	    "sender checks one name", NULL);
}

/* ---- contexts and bufferevents refused up front ------------------------ */

static void
ctx_refused(const char *what, struct xport_tls t, int server,
    const char *s1, const char *s2)
{
	char err[512] = "";
	void *ctx = xport_tls_ctx_new(&t, server, err, sizeof(err));

	printf("# %-36s %s\n", what, err);
	CHECK(ctx == NULL, "%s: refused", what);
	CHECK(strstr(err, s1) != NULL, "%s: \"%s\" lacks \"%s\"", what, err,
	    s1);
	if (s2 != NULL)
		CHECK(strstr(err, s2) != NULL, "%s: \"%s\" lacks \"%s\"", what,
		    err, s2);
	xport_tls_ctx_free(ctx);
}

static void
test_contexts(void)
{
	const char *cert = pki("server.pem"), *key = pki("server.key");
	const char *ca = pki("ca1.pem"), *missing = pki("missing.pem");
	const char *garbage = pki("garbage.pem");
	char err[512], unreadable[PATH_MAX + 64];
	struct xport_tls t;
	struct event_base *base;
	struct bufferevent *bev;
	void *ctx;
	int sv[2];

	t = tls(cert, key, ca, NULL);
	ctx = xport_tls_ctx_new(&t, 1, err, sizeof(err));
	CHECK(ctx != NULL, "server context: %s", err);
	xport_tls_ctx_free(ctx);
	t = tls(NULL, NULL, ca, NULL);
	ctx = xport_tls_ctx_new(&t, 0, err, sizeof(err));
	CHECK(ctx != NULL, "client context without a certificate: %s", err);

	/* A context used on the wrong side, a client with no name to check. */
	base = event_base_new();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		err[0] = '\0';
		bev = xport_bev_new(base, sv[0], ctx, 1, NULL, err,
		    sizeof(err));
		CHECK(bev == NULL && strstr(err, "client side used on the "
		    "server side"), "wrong side: %s", err);
		bev = xport_bev_new(base, sv[0], ctx, 0, "", err, sizeof(err));
		CHECK(bev == NULL && strstr(err, "give --tls-peer"),
		    "no name: %s", err);
		bev = xport_bev_new(base, sv[0], NULL, 0, NULL, err,
		    sizeof(err));
		CHECK(bev != NULL, "plain bufferevent");
		CHECK(xport_tls_bev_error(bev, err, sizeof(err)) == 0,
		    "a plain bufferevent has no TLS error");
		CHECK(xport_tls_shutdown(bev, err, sizeof(err)) == -EINVAL,
		    "no close_notify on plain tcp");
		bufferevent_free(bev);	/* closes sv[0] */
		close(sv[1]);
	}
	event_base_free(base);
	xport_tls_ctx_free(ctx);

	ctx_refused("missing --tls-cert file", tls(missing, key, ca, NULL), 1,
	    "TLS: --tls-cert ", "missing.pem: No such file or directory");
	ctx_refused("missing --tls-key file", tls(cert, missing, ca, NULL), 1,
	    "TLS: --tls-key ", "missing.pem: No such file or directory");
	ctx_refused("missing --tls-ca file", tls(cert, key, missing, NULL), 0,
	    "TLS: --tls-ca ", "missing.pem: No such file or directory");
	ctx_refused("directory as --tls-ca", tls(cert, key, pki_dir, NULL),
	    1, "TLS: --tls-ca ", "Is a directory");
	ctx_refused("garbage --tls-cert", tls(garbage, key, ca, NULL), 1,
	    "TLS: --tls-cert ", "no certificate could be read");
	ctx_refused("garbage --tls-key", tls(cert, garbage, ca, NULL), 1,
	    "TLS: --tls-key ", "no private key could be read");
	ctx_refused("garbage --tls-ca", tls(cert, key, garbage, NULL), 1,
	    "TLS: --tls-ca ", "no CA certificate could be read");
	ctx_refused("key of another certificate",
	    tls(cert, pki("client.key"), ca, NULL), 0,
	    "does not match the certificate in --tls-cert", "client.key");
	ctx_refused("receiver without a certificate",
	    tls(NULL, NULL, ca, NULL), 1, "needs --tls-cert", NULL);
	ctx_refused("no --tls-ca", tls(cert, key, NULL, NULL), 0,
	    "needs --tls-ca", NULL);
	ctx_refused("--tls-cert without --tls-key",
	    tls(cert, NULL, ca, NULL), 0, "go together", NULL);

	snprintf(unreadable, sizeof(unreadable), "%s/unreadable.key",
	    pki_dir);
	if (geteuid() != 0) {
		FILE *f = fopen(unreadable, "w");

		if (f != NULL)
			fclose(f);
		chmod(unreadable, 0);
		ctx_refused("unreadable --tls-key",
		    tls(cert, unreadable, ca, NULL), 1, "TLS: --tls-key ",
		    "unreadable.key: Permission denied");
		unlink(unreadable);
	} else
		printf("# running as root: no unreadable-file test\n");
}

int
main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir");
	char cmd[3 * PATH_MAX];
	int made = 0;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1) {
		snprintf(pki_dir, sizeof(pki_dir), "%s", argv[1]);
	} else {
		snprintf(pki_dir, sizeof(pki_dir), "%s/xmig-tls.XXXXXX",
		    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (mkdtemp(pki_dir) == NULL) {
			perror(pki_dir);
			return 1;
		}
		made = 1;
		snprintf(cmd, sizeof(cmd), "sh '%s/tests/tls-certs.sh' '%s'",
		    top ? top : ".", pki_dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "%s: failed\n", cmd);
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki_dir);
			(void)!system(cmd);
			return 1;
		}
	}

	test_contexts();
	test_connections();
	test_malformed_names();
	test_authz();

	if (made) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki_dir);
		(void)!system(cmd);
	}
	return tap_done();
}
