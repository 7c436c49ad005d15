/*
 * tls.c -- TLS for tls: URIs on bufferevent_openssl.
 *
 * A context (the void * of the API) is an SSL_CTX: TLS 1.2 or 1.3, this
 * side's certificate and key, the CA that must have signed the peer's, and
 * SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT on both sides, so both
 * ends authenticate whichever role they play.
 *
 * A client checks the one name the receiver must carry (--tls-peer, or the
 * host it connects to) by OpenSSL's X509_check_host rules: subjectAltName
 * DNS entries, the CN only when there are none, no partial wildcards; an
 * IP literal is matched against subjectAltName IP entries.
 *
 * A server lets in any client certificate the CA signed, unless it has an
 * authorization list (--tls-peer, repeatable, and --tls-allow FILE): then
 * the client's certificate must carry one of the names, checked in the
 * verify callback once the chain is good, before the handshake completes
 * (a refused client gets an alert).  A DNS name matches a subjectAltName
 * DNS entry, case aside, and never through a wildcard; an IP address
 * matches a subjectAltName IP entry; the CN counts only when the
 * certificate has no subjectAltName DNS or IP entry at all.
 *
 * Everything a message shows from a certificate (names, subject, issuer)
 * is the peer's text: it goes through xp_escape().  An iPAddress entry is
 * 4 or 16 octets; any other length is shown as malformed and matches
 * nothing (OpenSSL's X509_check_ip compares lengths too).
 *
 * What a person needs to read when a connection fails hangs off the
 * SSL_CTX and each SSL as ex_data (struct tls_info, struct tls_conn): the
 * file names, the name the peer must carry, the first certificate error
 * and the certificate it was about, and the message once made.  The
 * bufferevent's callbacks belong to the engine; nothing here sets them.
 *
 * Closing: libevent 2.1 frees an SSL without SSL_shutdown(), so freeing a
 * TLS bufferevent is an unclean close: the peer sees an error.  After the final message, xport_tls_shutdown() sends the
 * close_notify; a peer that receives it sees BEV_EVENT_EOF.  An EOF without
 * it is BEV_EVENT_ERROR (allow_dirty_shutdown off; OpenSSL 3 also reports
 * it as "unexpected eof while reading").
 *
 * Kernel TLS: every context asks OpenSSL 3 for it (SSL_OP_ENABLE_KTLS).
 * OpenSSL then hands the record layer to the kernel once the keys are
 * known, through setsockopt(TCP_ULP, "tls") on the socket BIO that
 * bufferevent_openssl_socket_new() made, when the cipher is one the kernel
 * has (AES-GCM, ChaCha20-Poly1305) and the kernel has the tls module;
 * OpenSSL 3.0 and 3.1 do it for sending only under TLS 1.3.  Where any of
 * that is missing OpenSSL stays in user space, with nothing else changed:
 * that is the fallback.  When the handshake completes, a debug line says
 * which directions the kernel took and, for one it did not, why
 * ("kernel TLS: send off, receive off: the kernel has no tls module ...").
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "xmig.h"

/*
 * (Declared in xmig.h.)
 * Send the close_notify on a TLS bufferevent after the final message, with
 * its output buffer empty (call it from the write callback once
 * evbuffer_get_length(bufferevent_get_output(bev)) is 0).  Returns 0 when
 * it went out, 1 when the socket is full and it goes out from the event
 * loop as soon as the socket drains (keep the loop running; a failure then
 * shows up through xport_bev_error() once the connection fails), or a
 * negative errno value with the reason in errbuf.  Nothing may be written
 * after it; reading goes on, and the peer's close_notify arrives as
 * BEV_EVENT_EOF.
 */
/* Per SSL_CTX. */
struct tls_info {
	int	 server;
	char	*peer;		/* client: --tls-peer, or NULL */
	char	**allow;	/* server: who may connect (nallow names) */
	size_t	 nallow;	/* 0: any certificate the CA signed */
	char	 allow_desc[192];	/* "--tls-peer a.test, b.test", for messages */
};

/* Per SSL (one connection). */
struct tls_conn {
	SSL		*ssl;
	const struct tls_info *ti;	/* its SSL_CTX's (which it holds) */
	int		 server;
	int		 handshake_done;
	int		 authz_done;	/* the authorization list was checked */
	int		 denied;	/* ... and the certificate is not on it */
	char		 addr[64];	/* the peer's address, "" if unknown */
	char		 name[256];	/* the peer's certificate must name it */
	int		 verr;		/* first X509_V_ERR_*, 0: none */
	int		 verr_depth;
	char		 subject[160];	/* of the certificate verr is about */
	char		 issuer[160];
	char		 names[200];	/* what that certificate names */
	char		 when[48];	/* its notAfter (notBefore if not yet) */
	struct event	*shutdown_ev;	/* close_notify waiting for the socket */
	char		 msg[1024];	/* the reason, once made */
};

static int tls_verify_cb(int, X509_STORE_CTX *);
static void tls_info_cb(const SSL *, int, int);

static CRYPTO_ONCE tls_once = CRYPTO_ONCE_STATIC_INIT;
static int tls_info_idx = -1, tls_conn_idx = -1;

static void
tls_info_destroy(struct tls_info *ti)
{
	size_t i;

	if (ti == NULL)
		return;
	for (i = 0; i < ti->nallow; i++)
		free(ti->allow[i]);
	free(ti->allow);
	free(ti->peer);
	free(ti);
}

static void
tls_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	tls_info_destroy(ptr);
}

static void
tls_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct tls_conn *c = ptr;

	if (c == NULL)
		return;
	if (c->shutdown_ev != NULL)
		event_free(c->shutdown_ev);
	free(c);
}

static void
tls_init(void)
{
	tls_info_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_info_free);
	tls_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_conn_free);
}

static int
tls_is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* The reason of the oldest error OpenSSL queued, for a message. */
static const char *
tls_queued_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r != NULL ? r : "no reason given";
}

/* Never prompt for a passphrase on a terminal: encrypted keys just fail. */
static int
tls_no_password(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/* "--tls-key FILE: No such file or directory" before OpenSSL gets to it. */
static int
tls_check_file(const char *opt, const char *path, char *errbuf, size_t errlen)
{
	struct stat sb;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(errbuf, errlen, "TLS: %s %s: %s", opt, path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		close(fd);
		snprintf(errbuf, errlen, "TLS: %s %s: %s", opt, path,
		    strerror(EISDIR));
		return -1;
	}
	close(fd);
	return 0;
}

/* ---- who may connect (a server's authorization list) ------------------- */

/*
 * A name a client certificate can carry: an IP address, or a DNS name of
 * letters, digits, '-', '_' and dots between labels (no wildcard: '*' is
 * refused, and so is anything a certificate could not match).
 */
static int
tls_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (tls_is_ip(s))
		return 1;
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' ||
	    s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.'))
			return 0;
		if (c == '.' && s[i + 1] == '.')
			return 0;
	}
	return 1;
}

/* Appends a copy of name; 0, or -1 out of memory. */
static int
tls_allow_add(struct tls_info *ti, const char *name)
{
	char **a;

	if ((a = realloc(ti->allow, (ti->nallow + 1) * sizeof(*a))) == NULL)
		return -1;
	ti->allow = a;
	if ((a[ti->nallow] = strdup(name)) == NULL)
		return -1;
	ti->nallow++;
	return 0;
}

/*
 * The names of a --tls-allow file: one a line; '#' starts a comment;
 * blanks around a name and empty lines are ignored.  Returns how many
 * names it added, or -1 with the reason in errbuf.
 */
static int
tls_allow_read(struct tls_info *ti, const char *path, char *errbuf,
    size_t errlen)
{
	char *line = NULL, *p, *end, shown[XP_ESCAPE_SIZE(40)];
	size_t cap = 0, before = ti->nallow;
	unsigned lineno = 0;
	ssize_t n;
	FILE *f;

	if (tls_check_file("--tls-allow", path, errbuf, errlen) != 0)
		return -1;
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(errbuf, errlen, "TLS: --tls-allow %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if ((p = memchr(line, '#', (size_t)n)) != NULL)
			n = p - line;
		for (p = line; p < line + n && (*p == ' ' || *p == '\t' ||
		    *p == '\r' || *p == '\n'); p++)
			;
		for (end = line + n; end > p && (end[-1] == ' ' ||
		    end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n');
		    end--)
			;
		if (end == p)
			continue;
		*end = '\0';
		if ((size_t)(end - p) != strlen(p) || !tls_name_ok(p)) {
			snprintf(errbuf, errlen, "TLS: --tls-allow %s line %u: "
			    "\"%s\" is not a DNS name or an IP address (one "
			    "name a line, '#' starts a comment)", path, lineno,
			    xp_escape(shown, sizeof(shown), p,
			    (size_t)(end - p)));
			goto fail;
		}
		if (tls_allow_add(ti, p) != 0) {
			snprintf(errbuf, errlen, "TLS: out of memory");
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(errbuf, errlen, "TLS: --tls-allow %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	free(line);
	fclose(f);
	return (int)(ti->nallow - before);
fail:
	free(line);
	fclose(f);
	return -1;
}

/*
 * The server's authorization list from t, and its description for
 * messages.  0, or -1 with the reason in errbuf.
 */
static int
tls_allow_setup(struct tls_info *ti, const struct xport_tls *t, char *errbuf,
    size_t errlen)
{
	char shown[XP_ESCAPE_SIZE(40)];
	size_t i, n = 0, off = 0, len = sizeof(ti->allow_desc);
	const char *name;
	int got = 0;

	for (i = 0; i < t->npeers + 1; i++) {
		name = i == 0 ? t->peer : t->peers[i - 1];
		if (name == NULL)
			continue;
		if (!tls_name_ok(name)) {
			snprintf(errbuf, errlen, "TLS: --tls-peer \"%s\": not a "
			    "DNS name or an IP address", xp_escape(shown,
			    sizeof(shown), name, strlen(name)));
			return -1;
		}
		if (tls_allow_add(ti, name) != 0) {
			snprintf(errbuf, errlen, "TLS: out of memory");
			return -1;
		}
		if (off < len)
			off += (size_t)snprintf(ti->allow_desc + off, len - off,
			    "%s%s", n++ ? ", " : "--tls-peer ", name);
	}
	if (t->allow_file != NULL) {
		if ((got = tls_allow_read(ti, t->allow_file, errbuf,
		    errlen)) < 0)
			return -1;
		if (got == 0) {
			snprintf(errbuf, errlen, "TLS: --tls-allow %s: no names "
			    "in it, so no sender could connect (without "
			    "--tls-allow and --tls-peer, any certificate the CA "
			    "signed can)", t->allow_file);
			return -1;
		}
		if (off < len)
			snprintf(ti->allow_desc + off, len - off, "%s--tls-allow "
			    "%s (%d name%s)", n ? " or " : "", t->allow_file,
			    got, got == 1 ? "" : "s");
	}
	return 0;
}

/* Whether x has a subjectAltName DNS or IP entry (then the CN is moot). */
static int
tls_has_san(X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	int i, found = 0;

	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS || g->type == GEN_IPADD)
			found = 1;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

/* Whether the client certificate x carries a name of the list. */
static int
tls_allowed(const struct tls_info *ti, X509 *x)
{
	unsigned int flags = X509_CHECK_FLAG_NO_WILDCARDS;
	size_t i;

	if (tls_has_san(x))
		flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
	for (i = 0; i < ti->nallow; i++) {
		if (tls_is_ip(ti->allow[i]) ?
		    X509_check_ip_asc(x, ti->allow[i], 0) == 1 :
		    X509_check_host(x, ti->allow[i], 0, flags, NULL) == 1)
			return 1;
	}
	return 0;
}

void *
xport_tls_ctx_new(const struct xport_tls *t, int server, char *errbuf,
    size_t errlen)
{
	SSL_CTX *ctx = NULL;
	struct tls_info *ti = NULL;
	STACK_OF(X509_NAME) *cas;

	if (!CRYPTO_THREAD_run_once(&tls_once, tls_init) ||
	    tls_info_idx < 0 || tls_conn_idx < 0) {
		snprintf(errbuf, errlen, "TLS: cannot initialise OpenSSL");
		return NULL;
	}
	if (t->ca == NULL) {
		snprintf(errbuf, errlen, "TLS needs --tls-ca FILE: the CA "
		    "certificate that signs the %s's certificate",
		    server ? "sender" : "receiver");
		return NULL;
	}
	if (server && (t->cert == NULL || t->key == NULL)) {
		snprintf(errbuf, errlen, "TLS needs --tls-cert FILE and "
		    "--tls-key FILE: the receiver's certificate and its key");
		return NULL;
	}
	if ((t->cert == NULL) != (t->key == NULL)) {
		snprintf(errbuf, errlen, "TLS: --tls-cert and --tls-key go "
		    "together (%s is missing)", t->cert ? "--tls-key" :
		    "--tls-cert");
		return NULL;
	}
	if (!server && (t->npeers > 0 || t->allow_file != NULL)) {
		snprintf(errbuf, errlen, "TLS: %s: the sender checks one name "
		    "(--tls-allow and a repeated --tls-peer are for the "
		    "receiver)", t->allow_file != NULL ? "--tls-allow" :
		    "--tls-peer given more than once");
		return NULL;
	}
	if ((t->cert != NULL &&
	    tls_check_file("--tls-cert", t->cert, errbuf, errlen) != 0) ||
	    (t->key != NULL &&
	    tls_check_file("--tls-key", t->key, errbuf, errlen) != 0) ||
	    tls_check_file("--tls-ca", t->ca, errbuf, errlen) != 0)
		return NULL;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_method())) == NULL ||
	    (ti = calloc(1, sizeof(*ti))) == NULL ||
	    (!server && t->peer != NULL &&
	    (ti->peer = strdup(t->peer)) == NULL))
		goto oom;
	ti->server = server;
	if (server && tls_allow_setup(ti, t, errbuf, errlen) != 0)
		goto fail;
	if (!SSL_CTX_set_ex_data(ctx, tls_info_idx, ti))
		goto oom;
	ti = NULL;			/* the context owns it now */

	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
#ifdef SSL_OP_ENABLE_KTLS
	/* Only asks: OpenSSL stays in user space where the kernel cannot. */
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
#endif
	SSL_CTX_set_num_tickets(ctx, 0);	/* one connection, no resuming */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_password);

	if (t->cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
			snprintf(errbuf, errlen, "TLS: --tls-cert %s: no "
			    "certificate could be read from it (%s)", t->cert,
			    tls_queued_reason());
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, t->key,
		    SSL_FILETYPE_PEM) != 1) {
			unsigned long e = ERR_peek_error();

			if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
			    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
				goto mismatch;
			snprintf(errbuf, errlen, "TLS: --tls-key %s: no private "
			    "key could be read from it (%s): it must be an "
			    "unencrypted PEM key", t->key, tls_queued_reason());
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
mismatch:
			snprintf(errbuf, errlen, "TLS: the key in --tls-key %s "
			    "does not match the certificate in --tls-cert %s",
			    t->key, t->cert);
			goto fail;
		}
	}
	if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
		snprintf(errbuf, errlen, "TLS: --tls-ca %s: no CA certificate "
		    "could be read from it (%s)", t->ca, tls_queued_reason());
		goto fail;
	}
	/* Tell clients which CA we accept (they may hold several). */
	if (server && (cas = SSL_load_client_CA_file(t->ca)) != NULL)
		SSL_CTX_set_client_CA_list(ctx, cas);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tls_verify_cb);
	SSL_CTX_set_info_callback(ctx, tls_info_cb);
	ERR_clear_error();
	return ctx;

oom:
	snprintf(errbuf, errlen, "TLS: out of memory");
fail:
	tls_info_destroy(ti);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

void
xport_tls_ctx_free(void *ctx)
{
	/* Connections hold their own reference: they may outlive it. */
	SSL_CTX_free(ctx);
}

/* ---- certificate errors ---------------------------------------------- */

/*
 * A distinguished name as RFC 2253 writes it, but with its octets as they
 * are (UTF-8), then escaped: one way of escaping for every peer text.
 */
static void
tls_x509_name(X509_NAME *n, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char raw[256];
	int r = 0;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 &
	    ~(unsigned long)(ASN1_STRFLGS_ESC_CTRL | ASN1_STRFLGS_ESC_MSB)) >= 0)
		r = BIO_read(b, raw, (int)sizeof(raw));
	xp_escape(buf, len, raw, r > 0 ? (size_t)r : 0);
	BIO_free(b);
}

static void
tls_x509_time(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int r = 0;

	buf[0] = '\0';
	if (b == NULL)
		return;
	if (ASN1_TIME_print(b, t))
		r = BIO_read(b, buf, (int)len - 1);
	buf[r > 0 ? r : 0] = '\0';
	BIO_free(b);
}

/*
 * "a.test, 192.0.2.1" from subjectAltName, or "CN=..." when it has no DNS
 * or IP entry, escaped.  The length of an iPAddress is checked before it
 * is read: 4 octets are IPv4, 16 IPv6, anything else is malformed (and
 * matches no name).
 */
static void
tls_x509_names(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[XP_ESCAPE_SIZE(64)];
		const unsigned char *d;
		int l;

		if (g->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(g->d.dNSName);
			l = ASN1_STRING_length(g->d.dNSName);
			xp_escape(one, sizeof(one), d, l > 0 ? (size_t)l : 0);
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			l = ASN1_STRING_length(g->d.iPAddress);
			if ((l != 4 && l != 16) || inet_ntop(l == 4 ? AF_INET :
			    AF_INET6, d, one, sizeof(one)) == NULL)
				snprintf(one, sizeof(one), "(malformed IP "
				    "address, %d octets)", l);
		} else
			continue;
		if (off + 1 >= len)
			break;
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    off ? ", " : "", one);
	}
	GENERAL_NAMES_free(gens);
	if (buf[0] == '\0')
		tls_x509_name(X509_get_subject_name(x), buf, len);
}

/*
 * Records the first certificate error of a connection, for the message;
 * on a server with an authorization list, refuses a good chain whose
 * certificate carries none of its names.
 */
static int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_ex_data(ssl, tls_conn_idx) : NULL;
	X509 *x;

	if (c == NULL)
		return ok;
	if (ok) {
		/* The leaf comes last, once the chain above it is good. */
		if (c->ti == NULL || c->ti->nallow == 0 || c->authz_done ||
		    X509_STORE_CTX_get_error_depth(xs) != 0)
			return ok;
		c->authz_done = 1;
		if ((x = X509_STORE_CTX_get_current_cert(xs)) != NULL &&
		    tls_allowed(c->ti, x))
			return ok;
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		c->denied = 1;
		ok = 0;
	}
	if (c->verr != 0)
		return ok;
	c->verr = X509_STORE_CTX_get_error(xs);
	c->verr_depth = X509_STORE_CTX_get_error_depth(xs);
	if ((x = X509_STORE_CTX_get_current_cert(xs)) != NULL) {
		tls_x509_name(X509_get_subject_name(x), c->subject,
		    sizeof(c->subject));
		tls_x509_name(X509_get_issuer_name(x), c->issuer,
		    sizeof(c->issuer));
		tls_x509_names(x, c->names, sizeof(c->names));
		tls_x509_time(c->verr == X509_V_ERR_CERT_NOT_YET_VALID ?
		    X509_get0_notBefore(x) : X509_get0_notAfter(x), c->when,
		    sizeof(c->when));
	}
	return ok;
}

static void
tls_verify_msg(const struct tls_conn *c, long verr, char *buf, size_t len)
{
	const char *why = X509_verify_cert_error_string(verr);
	const char *what = c->verr_depth > 0 ? "a CA certificate in the "
	    "peer's chain" : "the peer's certificate";

	if (c->denied && verr == X509_V_ERR_CERT_REJECTED) {
		snprintf(buf, len, "TLS: the peer%s%s is not allowed to connect: "
		    "its certificate (%s) names %s, none of the names allowed "
		    "by %s", c->addr[0] ? " at " : "", c->addr, c->subject,
		    c->names, c->ti != NULL ? c->ti->allow_desc : "the list");
		return;
	}
	switch (verr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		snprintf(buf, len, "TLS: the peer's certificate is not signed "
		    "by the CA in --tls-ca (%s): %s, issued by %s", why,
		    c->subject, c->issuer);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(buf, len, "TLS: %s has expired (%s, not valid after "
		    "%s)", what, c->subject, c->when);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(buf, len, "TLS: %s is not valid yet (%s, not valid "
		    "before %s): are the clocks right?", what, c->subject,
		    c->when);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(buf, len, "TLS: the peer's certificate does not name "
		    "%s (it names %s)", c->name, c->names);
		break;
	case X509_V_ERR_INVALID_PURPOSE:
		snprintf(buf, len, "TLS: the peer's certificate is not meant "
		    "for a TLS %s (%s): its extendedKeyUsage lacks %s",
		    c->server ? "client" : "server", why,
		    c->server ? "clientAuth" : "serverAuth");
		break;
	default:
		snprintf(buf, len, "TLS: %s was refused (%s)%s%s", what, why,
		    c->subject[0] ? ": " : "", c->subject);
		break;
	}
}

/* ---- kernel TLS ------------------------------------------------------- */

/*
 * Whether the kernel took this connection's sending (XPORT_KTLS_SEND) and
 * receiving (XPORT_KTLS_RECV) over; 0 for neither.
 */
static int
tls_ktls_state(const SSL *ssl)
{
	int r = 0;

#if defined(BIO_get_ktls_send) && defined(BIO_get_ktls_recv)
	BIO *w = SSL_get_wbio(ssl), *rd = SSL_get_rbio(ssl);

	if (w != NULL && BIO_get_ktls_send(w) > 0)
		r |= XPORT_KTLS_SEND;
	if (rd != NULL && BIO_get_ktls_recv(rd) > 0)
		r |= XPORT_KTLS_RECV;
#else
	(void)ssl;
#endif
	return r;
}

/* Whether the running kernel lists the tls upper-layer protocol. */
static int
tls_kernel_has_ulp(void)
{
	char buf[256], *p, *save;
	size_t n;
	FILE *f;

	if ((f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (p = strtok_r(buf, " \t\n", &save); p != NULL;
	    p = strtok_r(NULL, " \t\n", &save))
		if (strcmp(p, "tls") == 0)
			return 1;
	return 0;
}

/* Why the kernel did not take one direction (send: 1 sending). */
static const char *
tls_ktls_why(const SSL *ssl, int send)
{
#if !defined(SSL_OP_ENABLE_KTLS) || !defined(BIO_get_ktls_send)
	(void)ssl;
	(void)send;
	return "this OpenSSL was built without kTLS";
#else
	const char *cipher = SSL_get_cipher_name(ssl);

	if (cipher == NULL || (strstr(cipher, "GCM") == NULL &&
	    strstr(cipher, "CHACHA20") == NULL))
		return "the cipher is not one the kernel offers (AES-GCM, "
		    "ChaCha20-Poly1305)";
	/* OpenSSL asked the kernel (TCP_ULP loads the module if it can). */
	switch (tls_kernel_has_ulp()) {
	case 0:
		return "the kernel has no tls module (tcp_available_ulp has "
		    "no \"tls\")";
	case -1:
		return "the kernel refused it (has it a tls module? no "
		    "/proc/sys/net/ipv4/tcp_available_ulp to tell)";
	}
	if (!send && SSL_version(ssl) == TLS1_3_VERSION &&
	    OpenSSL_version_num() < 0x30200000UL)
		return "OpenSSL before 3.2 offloads only sending under TLS 1.3";
	return "OpenSSL or the kernel declined it for this connection";
#endif
}

int
xport_tls_ktls(struct bufferevent *bev)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl != NULL ? tls_ktls_state(ssl) : -1;
}

/*
 * The debug line of a completed handshake: version, cipher, and which
 * directions the kernel encrypts, with the reason for one it does not.
 */
static void
tls_ktls_log(const SSL *ssl, const struct tls_conn *c)
{
	int k = tls_ktls_state(ssl);
	char why[256];

	if (!xmig_log_on(XMIG_LOG_DEBUG))
		return;
	why[0] = '\0';
	if ((k & XPORT_KTLS_SEND) == 0)
		snprintf(why, sizeof(why), ": %s", tls_ktls_why(ssl, 1));
	else if ((k & XPORT_KTLS_RECV) == 0)
		snprintf(why, sizeof(why), ": receive: %s",
		    tls_ktls_why(ssl, 0));
	xmig_log(XMIG_LOG_DEBUG, "TLS: %s %s with %s; kernel TLS: send %s, "
	    "receive %s%s%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    c->addr[0] != '\0' ? c->addr : "the peer",
	    (k & XPORT_KTLS_SEND) ? "on" : "off",
	    (k & XPORT_KTLS_RECV) ? "on" : "off", why,
	    k == 0 ? " (encrypting in user space)" : "");
}

/* ---- connection errors --------------------------------------------------- */

/*
 * Whether the handshake completed: SSL_is_init_finished() cannot tell
 * after a failure (OpenSSL puts a failed connection back "in init").  By
 * then OpenSSL has passed both directions' keys to the kernel, or not.
 */
static void
tls_info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_conn *c;

	if ((where & SSL_CB_HANDSHAKE_DONE) &&
	    (c = SSL_get_ex_data(ssl, tls_conn_idx)) != NULL &&
	    !c->handshake_done) {
		c->handshake_done = 1;
		tls_ktls_log(ssl, c);
	}
}

/* The peer's alert (alert is the TLS AlertDescription). */
static void
tls_alert_msg(SSL *ssl, int alert, const char *why, char *buf, size_t len)
{
	switch (alert) {
	case SSL_AD_HANDSHAKE_FAILURE:
		/* What a TLS 1.2 server says when it wants a certificate. */
		if (SSL_get_certificate(ssl) == NULL) {
			snprintf(buf, len, "TLS: the peer ended the handshake "
			    "(%s): it requires a certificate from this side: "
			    "give --tls-cert and --tls-key", why);
			break;
		}
		snprintf(buf, len, "TLS: the peer ended the handshake (%s): "
		    "its log says why", why);
		break;
	case SSL_AD_CERTIFICATE_REQUIRED:
		snprintf(buf, len, "TLS: the peer requires a certificate from "
		    "this side (%s): give --tls-cert and --tls-key", why);
		break;
	case SSL_AD_UNKNOWN_CA:
		snprintf(buf, len, "TLS: the peer refused our certificate "
		    "(%s): it does not trust the CA that signed --tls-cert",
		    why);
		break;
	case SSL_AD_CERTIFICATE_EXPIRED:
		snprintf(buf, len, "TLS: the peer refused our certificate "
		    "(%s): it has expired, or the clocks disagree", why);
		break;
	case SSL_AD_BAD_CERTIFICATE:
	case SSL_AD_UNSUPPORTED_CERTIFICATE:
	case SSL_AD_CERTIFICATE_REVOKED:
	case SSL_AD_CERTIFICATE_UNKNOWN:
	case SSL_AD_ACCESS_DENIED:
		snprintf(buf, len, "TLS: the peer refused our certificate "
		    "(%s): its log says why (a name it requires with "
		    "--tls-peer?)", why);
		break;
	case SSL_AD_PROTOCOL_VERSION:
		snprintf(buf, len, "TLS: no TLS version in common with the "
		    "peer (%s): TLS 1.2 or 1.3 is needed", why);
		break;
	default:
		snprintf(buf, len, "TLS: the peer ended the connection (%s)",
		    why);
		break;
	}
}

/* A message for one error code OpenSSL queued. */
static void
tls_ssl_msg(const struct tls_conn *c, SSL *ssl, unsigned long e, char *buf,
    size_t len)
{
	const char *why = ERR_reason_error_string(e);
	int reason = ERR_GET_REASON(e);
	long v;

	if (why == NULL)
		why = "unknown error";
	if (ERR_GET_LIB(e) != ERR_LIB_SSL) {
		snprintf(buf, len, "TLS: %s", why);
		return;
	}
	if (reason >= SSL_AD_REASON_OFFSET &&
	    reason < SSL_AD_REASON_OFFSET + 256) {
		tls_alert_msg(ssl, reason - SSL_AD_REASON_OFFSET, why, buf,
		    len);
		return;
	}
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		if ((v = SSL_get_verify_result(ssl)) != X509_V_OK &&
		    c != NULL)
			tls_verify_msg(c, v, buf, len);
		else
			snprintf(buf, len, "TLS: the peer's certificate was "
			    "refused (%s)", why);
		break;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		snprintf(buf, len, "TLS: the peer sent no certificate (it needs "
		    "--tls-cert and --tls-key)");
		break;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
		snprintf(buf, len, "TLS: the peer does not speak TLS (%s): is "
		    "it using tcp: instead of tls:?", why);
		break;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
		snprintf(buf, len, "TLS: no TLS version in common with the "
		    "peer (%s): TLS 1.2 or 1.3 is needed", why);
		break;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		if (c != NULL && c->handshake_done)
			snprintf(buf, len, "TLS: the peer closed the connection "
			    "without a close_notify (an unclean shutdown: what "
			    "it sent may be cut short)");
		else
			snprintf(buf, len, "TLS: the peer closed the connection "
			    "during the handshake (did it refuse our "
			    "certificate? its log says why)");
		break;
#endif
	default:
		snprintf(buf, len, "TLS: %s", why);
		break;
	}
}

/*
 * An alert the peer sent just before closing can still be in the socket
 * when a write failed first (EPIPE, ECONNRESET): read what is there.  Only
 * on a connection that already failed; returns the alert's error code or 0.
 */
static unsigned long
tls_pending_alert(SSL *ssl)
{
	char junk[4096];
	unsigned long e = 0;
	int i, r, reason;

	ERR_clear_error();
	for (i = 0; i < 64; i++) {
		if ((r = SSL_read(ssl, junk, sizeof(junk))) > 0)
			continue;
		if (SSL_get_error(ssl, r) == SSL_ERROR_SSL)
			e = ERR_peek_error();
		break;
	}
	ERR_clear_error();
	reason = ERR_GET_REASON(e);
	if (ERR_GET_LIB(e) != ERR_LIB_SSL || reason < SSL_AD_REASON_OFFSET ||
	    reason >= SSL_AD_REASON_OFFSET + 256)
		return 0;
	return e;
}

/* libevent queues SSL_get_error() codes too, beside OpenSSL's errors. */
static int
tls_is_ssl_get_error_code(unsigned long e)
{
	return e < 256;
}

int
xport_tls_bev_error(struct bufferevent *bev, char *buf, size_t len)
{
	int saved = errno, err = errno, syscall = 0;
	unsigned long e, first = 0;
	struct tls_conn *c;
	char msg[sizeof(c->msg)];
	SSL *ssl;

	if (bev == NULL || (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return 0;
	c = SSL_get_ex_data(ssl, tls_conn_idx);
	if (c != NULL && c->msg[0] != '\0') {
		snprintf(buf, len, "%s", c->msg);
		return 1;
	}
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (tls_is_ssl_get_error_code(e)) {
			syscall |= e == SSL_ERROR_SYSCALL;
			continue;
		}
		if (first == 0)
			first = e;
	}
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		err = 0;		/* left over from a read that waited */
	if (c != NULL && c->verr != 0)
		tls_verify_msg(c, c->verr, msg, sizeof(msg));
	else if (first != 0)
		tls_ssl_msg(c, ssl, first, msg, sizeof(msg));
	else if (!syscall) {
		/* TLS saw nothing wrong: not an error of this connection. */
		errno = saved;
		return 0;
	} else if ((e = tls_pending_alert(ssl)) != 0)
		tls_ssl_msg(c, ssl, e, msg, sizeof(msg));
	else if (c != NULL && !c->handshake_done && err != 0)
		snprintf(msg, sizeof(msg), "TLS: the handshake failed: %s (is "
		    "the peer listening with tls:?)", strerror(err));
	else if (c != NULL && !c->handshake_done)
		snprintf(msg, sizeof(msg), "TLS: the peer closed the "
		    "connection during the handshake (did it refuse our "
		    "certificate? its log says why)");
	else if (err == 0)		/* OpenSSL 1.1's dirty EOF */
		snprintf(msg, sizeof(msg), "TLS: the peer closed the "
		    "connection without a close_notify (an unclean shutdown: "
		    "what it sent may be cut short)");
	else {
		/* A plain socket error: the caller names errno. */
		errno = saved;
		return 0;
	}
	if (c != NULL)
		snprintf(c->msg, sizeof(c->msg), "%s", msg);
	snprintf(buf, len, "%s", msg);
	errno = saved;
	return 1;
}

/* ---- connections ------------------------------------------------------ */

/* "192.0.2.1:4711" or "[2001:db8::1]:4711", for messages; "" if not IP. */
static void
tls_peer_addr(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&ss;

		if (inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)) != NULL)
			snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)&ss;

		if (inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a)) !=
		    NULL)
			snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
	}
}

/*
 * An SSL for fd set up as every xmig connection is: the peer verified
 * against the context's CA and names (the client checks the receiver's
 * name, t->peer or host), SNI for names.  NULL with errbuf on failure.
 */
static SSL *
tls_ssl_new(int fd, void *ctx, int server, const char *host, char *errbuf,
    size_t errlen)
{
	SSL_CTX *sctx = ctx;
	const struct tls_info *ti = SSL_CTX_get_ex_data(sctx, tls_info_idx);
	struct tls_conn *c;
	const char *name;
	SSL *ssl;

	if (ti == NULL || !ti->server != !server) {
		snprintf(errbuf, errlen, "TLS: a context for the %s side used "
		    "on the %s side", server ? "client" : "server",
		    server ? "server" : "client");
		return NULL;
	}
	name = server ? NULL : ti->peer != NULL ? ti->peer : host;
	if (!server && (name == NULL || name[0] == '\0')) {
		snprintf(errbuf, errlen, "TLS: no name to check the receiver's "
		    "certificate against: give --tls-peer NAME");
		return NULL;
	}
	if (name != NULL && strlen(name) >= sizeof(c->name)) {
		snprintf(errbuf, errlen, "TLS: %.64s...: name too long", name);
		return NULL;
	}
	if ((ssl = SSL_new(sctx)) == NULL) {
		snprintf(errbuf, errlen, "TLS: out of memory");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    !SSL_set_ex_data(ssl, tls_conn_idx, c)) {
		free(c);
		SSL_free(ssl);
		snprintf(errbuf, errlen, "TLS: out of memory");
		return NULL;
	}
	c->ssl = ssl;
	c->ti = ti;
	c->server = server;
	tls_peer_addr(fd, c->addr, sizeof(c->addr));
	if (name != NULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		int ok;

		strcpy(c->name, name);
		X509_VERIFY_PARAM_set_hostflags(vp,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (tls_is_ip(name))
			ok = X509_VERIFY_PARAM_set1_ip_asc(vp, name);
		else
			ok = X509_VERIFY_PARAM_set1_host(vp, name, 0);
		if (!ok) {
			SSL_free(ssl);
			snprintf(errbuf, errlen, "TLS: %s: not a name a "
			    "certificate can carry", name);
			return NULL;
		}
	}
	/* Server Name Indication, for names only. */
	if (!server && host != NULL && host[0] != '\0' && !tls_is_ip(host))
		SSL_set_tlsext_host_name(ssl, host);
	return ssl;
}

void *
xport_tls_ssl_new(int fd, void *ctx, int server, const char *host,
    char *errbuf, size_t errlen)
{
	SSL *ssl = tls_ssl_new(fd, ctx, server, host, errbuf, errlen);

	if (ssl != NULL && !SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		snprintf(errbuf, errlen, "TLS: out of memory");
		return NULL;
	}
	ERR_clear_error();
	return ssl;
}

/* The first error OpenSSL queued on this thread, for ssl, as a message. */
void
xport_tls_ssl_err(void *ssl, char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();

	if (e == 0) {
		snprintf(buf, len, "TLS: %s", errno ? strerror(errno) :
		    "the connection closed");
		return;
	}
	tls_ssl_msg(SSL_get_ex_data(ssl, tls_conn_idx), ssl, e, buf, len);
	ERR_clear_error();
}

struct bufferevent *
xport_tls_bev_new(struct event_base *base, int fd, void *ctx, int server,
    const char *host, char *errbuf, size_t errlen)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = tls_ssl_new(fd, ctx, server, host, errbuf, errlen)) == NULL)
		return NULL;
	/*
	 * No BEV_OPT_DEFER_CALLBACKS: the engine wants its read and event
	 * callbacks at once (libevent defers an openssl bufferevent's write
	 * callback anyway).  On failure libevent has freed ssl.
	 */
	bev = bufferevent_openssl_socket_new(base, fd, ssl, server ?
	    BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		snprintf(errbuf, errlen, "TLS: out of memory");
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 0);
	ERR_clear_error();
	return bev;
}

/* ---- close_notify ------------------------------------------------------- */

/* 0: sent, 1: the socket is full, or -errno with the reason in buf. */
static int
tls_shutdown_try(SSL *ssl, char *buf, size_t len)
{
	int r, e;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_shutdown(ssl)) >= 0)
		return 0;		/* 1: both sides done, 0: ours sent */
	switch ((e = SSL_get_error(ssl, r))) {
	case SSL_ERROR_WANT_WRITE:
		return 1;
	case SSL_ERROR_WANT_READ:
		return 0;		/* sent; waiting for the peer's */
	case SSL_ERROR_SYSCALL:
		if (errno != 0) {
			e = errno;
			snprintf(buf, len, "TLS: sending close_notify: %s",
			    strerror(e));
			ERR_clear_error();
			return -e;
		}
		/* FALLTHROUGH */
	default:
		snprintf(buf, len, "TLS: sending close_notify: %s",
		    tls_queued_reason());
		ERR_clear_error();
		return -EPROTO;
	}
}

static void
tls_shutdown_retry(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *c = arg;
	char err[256];
	int r;

	if ((r = tls_shutdown_try(c->ssl, err, sizeof(err))) == 1)
		event_add(c->shutdown_ev, NULL);
	else if (r < 0 && c->msg[0] == '\0')
		snprintf(c->msg, sizeof(c->msg), "%s", err);
}

int
xport_tls_shutdown(struct bufferevent *bev, char *errbuf, size_t errlen)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	struct tls_conn *c;
	size_t pending;
	int r;

	if (ssl == NULL || (c = SSL_get_ex_data(ssl, tls_conn_idx)) == NULL) {
		snprintf(errbuf, errlen, "TLS: close_notify on a connection "
		    "that is not TLS");
		return -EINVAL;
	}
	if (c->shutdown_ev != NULL)
		return event_pending(c->shutdown_ev, EV_WRITE, NULL) ? 1 : 0;
	if ((pending = evbuffer_get_length(bufferevent_get_output(bev))) > 0) {
		snprintf(errbuf, errlen, "TLS: close_notify with %zu octets "
		    "still to send", pending);
		return -EINVAL;
	}
	if (!SSL_is_init_finished(ssl)) {
		snprintf(errbuf, errlen, "TLS: close_notify before the "
		    "handshake completed");
		return -EINVAL;
	}
	if ((r = tls_shutdown_try(ssl, errbuf, errlen)) != 1)
		return r;
	c->shutdown_ev = event_new(bufferevent_get_base(bev),
	    bufferevent_getfd(bev), EV_WRITE, tls_shutdown_retry, c);
	if (c->shutdown_ev == NULL || event_add(c->shutdown_ev, NULL) != 0) {
		snprintf(errbuf, errlen, "TLS: out of memory");
		return -ENOMEM;
	}
	return 1;
}
