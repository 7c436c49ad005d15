/*
 * streams.c -- data streams (SPEC 13.6): the sender's and the receiver's
 * worker threads, the hello, and the barrier of the ordering rule.
 * Blocking I/O on each data connection in its own thread; the event loop
 * only hears from them through a pipe (room in a queue, or a failure).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "streams.h"

#define STREAMS_QUEUE		4	/* batches waiting per sender worker */
#define STREAMS_READ_CHUNK	(256u << 10)
#define STREAMS_SLOTS		(2 * XMIG_STREAMS_MAX)	/* connections tried */

/* ---- the barrier of the ordering rule ---------------------------------- */

void
streams_bar_init(struct streams_bar *b, unsigned n)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->n = n;
}

void
streams_bar_destroy(struct streams_bar *b)
{
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
}

static int
bar_all_closed(const struct streams_bar *b, unsigned pass)
{
	unsigned i;

	for (i = 0; i < b->n; i++)
		if (!b->ended[i] && b->closed[i] < pass)
			return 0;
	return 1;
}

int
streams_bar_close(struct streams_bar *b, unsigned i, unsigned pass)
{
	int rc = 0;

	pthread_mutex_lock(&b->mu);
	if (pass > b->closed[i])
		b->closed[i] = pass;
	pthread_cond_broadcast(&b->cv);
	while (!b->cancelled && !bar_all_closed(b, pass))
		pthread_cond_wait(&b->cv, &b->mu);
	if (b->cancelled)
		rc = -ECANCELED;
	pthread_mutex_unlock(&b->mu);
	return rc;
}

void
streams_bar_end(struct streams_bar *b, unsigned i)
{
	pthread_mutex_lock(&b->mu);
	b->ended[i] = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

void
streams_bar_cancel(struct streams_bar *b)
{
	pthread_mutex_lock(&b->mu);
	b->cancelled = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* ---- I/O on one data connection ---------------------------------------- */

struct sconn {
	int	 fd;
	SSL	*ssl;
};

static int
sconn_write(struct sconn *c, const void *p, size_t n, char *err, size_t len)
{
	const uint8_t *q = p;
	ssize_t w;

	while (n > 0) {
		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, q, n > (1u << 30) ?
			    (1 << 30) : (int)n);

			if (r <= 0) {
				xport_tls_ssl_err(c->ssl, err, len);
				return -EPIPE;
			}
			w = r;
		} else if ((w = send(c->fd, q, n, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, len, "%s", errno == EAGAIN ?
			    "write timed out" : strerror(errno));
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Octets read (0 at the end), or -errno with err. */
static ssize_t
sconn_read(struct sconn *c, void *p, size_t n, char *err, size_t len)
{
	ssize_t r;

	for (;;) {
		if (c->ssl != NULL) {
			int k = SSL_read(c->ssl, p, (int)n);

			if (k > 0)
				return k;
			if (SSL_get_error(c->ssl, k) == SSL_ERROR_ZERO_RETURN)
				return 0;	/* close_notify */
			xport_tls_ssl_err(c->ssl, err, len);
			return -EPIPE;
		}
		if ((r = recv(c->fd, p, n, 0)) >= 0)
			return r;
		if (errno == EINTR)
			continue;
		snprintf(err, len, "%s", errno == EAGAIN ? "read timed out" :
		    strerror(errno));
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
}

static int
sconn_read_full(struct sconn *c, void *p, size_t n, char *err, size_t len)
{
	uint8_t *q = p;
	ssize_t r;

	while (n > 0) {
		if ((r = sconn_read(c, q, n, err, len)) < 0)
			return (int)r;
		if (r == 0) {
			snprintf(err, len, "the connection closed");
			return -ECONNRESET;
		}
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
sconn_timeouts(int fd, double s)
{
	struct timeval tv;

	if (s <= 0)
		s = 60;
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void
sconn_close(struct sconn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

/* The hello (SPEC 13.6): 32 octets, little-endian. */
static void
hello_put(uint8_t out[WIRE_HELLO_SIZE], unsigned idx, unsigned n,
    const uint8_t *token)
{
	memcpy(out, WIRE_HELLO_MAGIC, 8);
	xp_put16(0, out + 8, WIRE_HELLO_VERSION);
	xp_put16(0, out + 10, (uint16_t)idx);
	xp_put16(0, out + 12, (uint16_t)n);
	xp_put16(0, out + 14, 0);
	memcpy(out + 16, token, WIRE_STREAM_TOKEN_SIZE);
}

/* ---- a wake pipe: workers to the event loop ----------------------------- */

struct wakeup {
	int		 fd[2];
	struct event	*ev;
};

static int
wakeup_init(struct wakeup *w, struct event_base *base,
    event_callback_fn cb, void *arg)
{
	w->fd[0] = w->fd[1] = -1;
	if (pipe2(w->fd, O_CLOEXEC | O_NONBLOCK) != 0)
		return -errno;
	w->ev = event_new(base, w->fd[0], EV_READ | EV_PERSIST, cb, arg);
	if (w->ev == NULL || event_add(w->ev, NULL) != 0)
		return -ENOMEM;
	return 0;
}

static void
wakeup_poke(struct wakeup *w)
{
	char c = 1;
	ssize_t r;

	r = write(w->fd[1], &c, 1);	/* full: a wake is pending anyway */
	(void)r;
}

static void
wakeup_drain(struct wakeup *w)
{
	char buf[64];

	while (read(w->fd[0], buf, sizeof(buf)) > 0)
		;
}

static void
wakeup_free(struct wakeup *w)
{
	if (w->ev != NULL)
		event_free(w->ev);
	w->ev = NULL;
	if (w->fd[0] >= 0)
		close(w->fd[0]);
	if (w->fd[1] >= 0)
		close(w->fd[1]);
	w->fd[0] = w->fd[1] = -1;
}

/* ---- sender ------------------------------------------------------------- */

enum { TXJ_PAGES = 1, TXJ_PASS };

struct tx_job {
	struct tx_job	*next;
	int		 kind;
	unsigned	 pass;
	int		 last;
	unsigned	 n;
	uint64_t	 pfns[WIRE_PAGE_DATA_MAX];
};

struct tx_worker {
	struct streams_tx	*t;
	unsigned		 idx;
	pthread_t		 thr;
	int			 started;
	struct sconn		 c;
	struct tx_job		*head, *tail;
	unsigned		 nbatches;	/* TXJ_PAGES queued */
	uint64_t		 pass_pages;	/* entries sent in this pass */
	uint64_t		 total;
	uint8_t			*buf;		/* one record, built */
};

struct streams_tx {
	struct streams_tx_cfg	 c;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	pthread_mutex_t		 bmu;		/* one worker in the backend */
	struct wakeup		 wk;
	int			 want_wake;
	int			 stop;
	int			 rc;
	char			 err[300];
	uint64_t		 sent, pages, zero, page_octets;
	unsigned		 next;		/* round robin among equals */
	struct tx_worker	 w[XMIG_STREAMS_MAX];
};

static void
tx_fail(struct tx_worker *w, int rc, const char *fmt, ...)
{
	struct streams_tx *t = w->t;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&t->mu);
	if (t->rc == 0 && !t->stop) {
		t->rc = rc;
		snprintf(t->err, sizeof(t->err), "data stream %u: %s", w->idx,
		    msg);
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	wakeup_poke(&t->wk);
}

static int
tx_connect(struct tx_worker *w)
{
	struct streams_tx *t = w->t;
	uint8_t hello[WIRE_HELLO_SIZE];
	char err[256];
	int fd, one = 1, rc;

	fd = socket(t->c.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		tx_fail(w, rc, "socket: %s", strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&t->mu);
	w->c.fd = fd;		/* streams_tx_free may shut it down now */
	if (t->stop)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&t->mu);
	sconn_timeouts(fd, t->c.timeout_s);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&t->c.addr, t->c.addrlen)
	    != 0) {
		rc = -errno;
		tx_fail(w, rc, "connecting: %s", strerror(-rc));
		return rc;
	}
	hello_put(hello, w->idx, t->c.n, t->c.token);
	if ((rc = sconn_write(&w->c, hello, sizeof(hello), err,
	    sizeof(err))) != 0) {
		tx_fail(w, rc, "sending the hello: %s", err);
		return rc;
	}
	if (t->c.tls_ctx == NULL)
		return 0;
	w->c.ssl = xport_tls_ssl_new(fd, t->c.tls_ctx, 0, t->c.host, err,
	    sizeof(err));
	if (w->c.ssl == NULL) {
		tx_fail(w, -EPROTO, "%s", err);
		return -EPROTO;
	}
	if (SSL_connect(w->c.ssl) != 1) {
		xport_tls_ssl_err(w->c.ssl, err, sizeof(err));
		tx_fail(w, -EPROTO, "%s", err);
		return -EPROTO;
	}
	return 0;
}

/* One record: header, body parts, padding and footer, CRC when agreed. */
static int
tx_record(struct tx_worker *w, uint32_t type, const uint8_t *pre,
    size_t prelen, const uint8_t *data, size_t dlen)
{
	struct streams_tx *t = w->t;
	const struct xp_stream *st = &t->c.st;
	uint32_t body_len = (uint32_t)(prelen + dlen), crc = 0;
	size_t hs = record_hdr_size(st), off;
	uint8_t *b = w->buf;
	char err[256];
	int rc;

	record_hdr_put(st, b, type, body_len, t->c.recopt);
	if (prelen > 0)
		memcpy(b + hs, pre, prelen);
	off = hs + prelen;
	if (dlen > 0 && data != b + off)
		memmove(b + off, data, dlen);
	off += dlen;
	if (t->c.recopt & WIRE_REC_OPT_CHECKSUM)
		crc = xp_crc32(0, b, off);
	record_trailer_put(st, b + off, body_len, t->c.recopt, crc);
	off += record_trailer_size(st, body_len);
	if ((rc = sconn_write(&w->c, b, off, err, sizeof(err))) != 0) {
		tx_fail(w, rc, "%s", err);
		return rc;
	}
	pthread_mutex_lock(&t->mu);
	t->sent += off;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static int
tx_pages(struct tx_worker *w, const struct tx_job *j)
{
	struct streams_tx *t = w->t;
	struct backend *b = t->c.b;
	size_t ps = (size_t)1 << t->c.st.page_shift;
	size_t hs = record_hdr_size(&t->c.st);
	uint8_t pre[8 + 8 * WIRE_PAGE_DATA_MAX];
	uint64_t entries[WIRE_PAGE_DATA_MAX], zpfn[WIRE_PAGE_DATA_MAX];
	uint8_t types[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	void *cookie = NULL;
	unsigned i, ne = 0, nz = 0, nd = 0;
	uint8_t *data = w->buf + hs + 8 + 8 * WIRE_PAGE_DATA_MAX;
	int rc, be = t->c.st.big_endian;

	memset(types, PT_NOTAB, j->n);
	pthread_mutex_lock(&t->bmu);
	rc = b->ops->map(b, j->pfns, j->n, 0, pages, &cookie);
	if (rc == 0 && b->ops->map_types != NULL &&
	    (rc = b->ops->map_types(b, cookie, j->n, types)) != 0)
		b->ops->unmap(b, cookie, j->n);
	pthread_mutex_unlock(&t->bmu);
	if (rc != 0) {
		tx_fail(w, rc, "mapping pages: %s", backend_errmsg(b));
		return rc;
	}
	/*
	 * The pages are copied before the checksum (the domain may run):
	 * a page changed after the copy is dirty and goes again later.
	 */
	for (i = 0; i < j->n; i++) {
		if (pages[i] == NULL) {
			entries[ne++] = body_pfn_entry(j->pfns[i], PT_XTAB);
		} else if (t->c.zero_elide && types[i] == PT_NOTAB &&
		    page_is_zero(pages[i], ps)) {
			zpfn[nz++] = j->pfns[i];
		} else {
			entries[ne++] = body_pfn_entry(j->pfns[i], types[i]);
			memcpy(data + (size_t)nd * ps, pages[i], ps);
			nd++;
		}
	}
	pthread_mutex_lock(&t->bmu);
	b->ops->unmap(b, cookie, j->n);
	pthread_mutex_unlock(&t->bmu);
	if (nz > 0) {
		uint8_t zb[8 + 8 * WIRE_PAGE_DATA_MAX];

		if (body_zero_pages_put(be, zb, nz, zpfn) < 0) {
			tx_fail(w, -EINVAL, "encoding zero pages");
			return -EINVAL;
		}
		if ((rc = tx_record(w, REC_XMIG_ZERO_PAGES, zb,
		    8 + 8 * (size_t)nz, NULL, 0)) != 0)
			return rc;
	}
	if (ne > 0) {
		body_page_data_prefix_put(be, pre, ne, entries);
		/* data already sits where tx_record puts the body's tail. */
		if ((rc = tx_record(w, REC_PAGE_DATA, pre, 8 + 8 * (size_t)ne,
		    data, (size_t)nd * ps)) != 0)
			return rc;
	}
	w->pass_pages += j->n;
	w->total += j->n;
	pthread_mutex_lock(&t->mu);
	t->pages += j->n;
	t->zero += nz;
	t->page_octets += (uint64_t)nd * ps;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

static int
tx_pass(struct tx_worker *w, const struct tx_job *j)
{
	struct streams_tx *t = w->t;
	int be = t->c.st.big_endian, rc;
	uint8_t body[WIRE_PASS_SIZE];
	char err[256];

	xp_put32(be, body, j->pass);
	xp_put32(be, body + 4, j->last ? XMIG_PASS_LAST : 0);
	xp_put64(be, body + 8, w->pass_pages);
	xp_put64(be, body + 16, w->total);
	w->pass_pages = 0;
	if ((rc = tx_record(w, REC_XMIG_PASS, body, sizeof(body), NULL, 0))
	    != 0)
		return rc;
	if (!j->last)
		return 0;
	if ((rc = tx_record(w, REC_END, NULL, 0, NULL, 0)) != 0)
		return rc;
	if (w->c.ssl != NULL && SSL_shutdown(w->c.ssl) < 0) {
		xport_tls_ssl_err(w->c.ssl, err, sizeof(err));
		tx_fail(w, -EPIPE, "%s", err);
		return -EPIPE;
	}
	return 0;
}

static void *
tx_main(void *arg)
{
	struct tx_worker *w = arg;
	struct streams_tx *t = w->t;
	struct tx_job *j;
	int rc = tx_connect(w);

	while (rc == 0) {
		pthread_mutex_lock(&t->mu);
		while (w->head == NULL && !t->stop && t->rc == 0)
			pthread_cond_wait(&t->cv, &t->mu);
		if (t->stop || t->rc != 0) {
			pthread_mutex_unlock(&t->mu);
			break;
		}
		j = w->head;
		pthread_mutex_unlock(&t->mu);

		rc = j->kind == TXJ_PAGES ? tx_pages(w, j) : tx_pass(w, j);

		pthread_mutex_lock(&t->mu);
		w->head = j->next;
		if (w->head == NULL)
			w->tail = NULL;
		if (j->kind == TXJ_PAGES)
			w->nbatches--;
		if (t->want_wake) {
			t->want_wake = 0;
			wakeup_poke(&t->wk);
		}
		pthread_mutex_unlock(&t->mu);
		if (j->kind == TXJ_PASS && j->last) {
			free(j);
			break;
		}
		free(j);
	}
	return NULL;
}

static void
tx_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct streams_tx *t = arg;

	(void)fd;
	(void)what;
	wakeup_drain(&t->wk);
	t->c.wake(t->c.arg);
}

int
streams_tx_start(const struct streams_tx_cfg *c, struct streams_tx **out)
{
	struct streams_tx *t;
	size_t ps = (size_t)1 << c->st.page_shift;
	unsigned i;
	int rc;

	*out = NULL;
	if (c->n < 2 || c->n > XMIG_STREAMS_MAX)
		return -EINVAL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -ENOMEM;
	t->c = *c;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	pthread_mutex_init(&t->bmu, NULL);
	if ((rc = wakeup_init(&t->wk, c->base, tx_wake_cb, t)) != 0)
		goto fail;
	for (i = 0; i < c->n; i++) {
		struct tx_worker *w = &t->w[i];

		w->t = t;
		w->idx = i;
		w->c.fd = -1;
		w->buf = malloc(WIRE_RHDR_SIZE_DRAFTB + 8 +
		    8 * WIRE_PAGE_DATA_MAX + WIRE_PAGE_DATA_MAX * ps +
		    WIRE_FOOTER_SIZE + WIRE_REC_ALIGN);
		if (w->buf == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	for (i = 0; i < c->n; i++) {
		if ((rc = -pthread_create(&t->w[i].thr, NULL, tx_main,
		    &t->w[i])) != 0)
			goto fail;
		t->w[i].started = 1;
	}
	*out = t;
	return 0;
fail:
	streams_tx_free(t);
	return rc;
}

int
streams_tx_room(struct streams_tx *t)
{
	unsigned i;
	int room = 0;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->c.n; i++)
		if (t->w[i].nbatches < STREAMS_QUEUE)
			room = 1;
	if (!room || t->rc != 0)
		t->want_wake = 1;
	pthread_mutex_unlock(&t->mu);
	return room && t->rc == 0;
}

int
streams_tx_idle(struct streams_tx *t)
{
	unsigned i;
	int idle = 1;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->c.n; i++)
		if (t->w[i].head != NULL)
			idle = 0;
	if (!idle)
		t->want_wake = 1;
	pthread_mutex_unlock(&t->mu);
	return idle;
}

static void
tx_enqueue(struct tx_worker *w, struct tx_job *j)
{
	j->next = NULL;
	if (w->tail != NULL)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	if (j->kind == TXJ_PAGES)
		w->nbatches++;
}

int
streams_tx_submit(struct streams_tx *t, unsigned pass, const uint64_t *pfns,
    unsigned n)
{
	struct tx_job *j;
	unsigned i, k, best = 0, min = UINT32_MAX;

	if (n == 0 || n > WIRE_PAGE_DATA_MAX)
		return -EINVAL;
	if ((j = malloc(sizeof(*j))) == NULL)
		return -ENOMEM;
	j->kind = TXJ_PAGES;
	j->pass = pass;
	j->last = 0;
	j->n = n;
	memcpy(j->pfns, pfns, n * sizeof(*pfns));
	pthread_mutex_lock(&t->mu);
	if (t->rc != 0) {
		pthread_mutex_unlock(&t->mu);
		free(j);
		return t->rc;
	}
	/* The shortest queue, round robin among equals. */
	for (k = 0; k < t->c.n; k++) {
		i = (t->next + k) % t->c.n;
		if (t->w[i].nbatches < min) {
			min = t->w[i].nbatches;
			best = i;
		}
	}
	t->next = (best + 1) % t->c.n;
	tx_enqueue(&t->w[best], j);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int
streams_tx_pass_end(struct streams_tx *t, unsigned pass, int last)
{
	struct tx_job *j[XMIG_STREAMS_MAX];
	unsigned i;

	for (i = 0; i < t->c.n; i++) {
		if ((j[i] = malloc(sizeof(*j[i]))) == NULL) {
			while (i-- > 0)
				free(j[i]);
			return -ENOMEM;
		}
		j[i]->kind = TXJ_PASS;
		j[i]->pass = pass;
		j[i]->last = last;
		j[i]->n = 0;
	}
	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->c.n; i++)
		tx_enqueue(&t->w[i], j[i]);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

int
streams_tx_error(struct streams_tx *t, char *err, size_t len)
{
	int rc;

	pthread_mutex_lock(&t->mu);
	rc = t->rc;
	if (rc != 0)
		snprintf(err, len, "%s", t->err);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

uint64_t
streams_tx_take_sent(struct streams_tx *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->mu);
	n = t->sent;
	t->sent = 0;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void
streams_tx_counts(struct streams_tx *t, uint64_t *pages, uint64_t *zero,
    uint64_t *page_octets)
{
	pthread_mutex_lock(&t->mu);
	*pages = t->pages;
	*zero = t->zero;
	*page_octets = t->page_octets;
	pthread_mutex_unlock(&t->mu);
}

void
streams_tx_free(struct streams_tx *t)
{
	struct tx_job *j;
	unsigned i;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	/* A worker blocked in connect, write or a handshake wakes up. */
	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->c.n; i++)
		if (t->w[i].c.fd >= 0)
			shutdown(t->w[i].c.fd, SHUT_RDWR);
	pthread_mutex_unlock(&t->mu);
	for (i = 0; i < t->c.n; i++) {
		struct tx_worker *w = &t->w[i];

		if (w->started)
			pthread_join(w->thr, NULL);
		while ((j = w->head) != NULL) {
			w->head = j->next;
			free(j);
		}
		sconn_close(&w->c);
		free(w->buf);
	}
	wakeup_free(&t->wk);
	pthread_mutex_destroy(&t->bmu);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* ---- receiver ----------------------------------------------------------- */

struct rx_slot {
	struct streams_rx	*x;
	pthread_t		 thr;
	int			 started;
	struct sconn		 c;
	int			 idx;		/* -1 until the hello named it */
	struct xp_parser	*p;
	unsigned		 pass;		/* the pass being read */
	uint64_t		 pass_pages;
	uint64_t		 total;
	int			 last;		/* XMIG_PASS LAST seen */
	int			 ended;		/* END after it */
};

struct streams_rx {
	struct streams_rx_cfg	 c;
	uint8_t			 token[WIRE_STREAM_TOKEN_SIZE];
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	pthread_mutex_t		 bmu;
	struct backend		*b;
	struct streams_bar	 bar;
	struct wakeup		 wk;
	int			 stop;
	int			 rc;
	char			 err[300];
	int			 reported;
	int			 ended_told;
	unsigned		 claimed;	/* indexes taken */
	unsigned		 ended;
	uint64_t		 pages, zero, octets;
	struct rx_slot		 s[STREAMS_SLOTS];
	unsigned		 nslots;
};

static void
rx_fail(struct rx_slot *sl, int rc, const char *fmt, ...)
{
	struct streams_rx *x = sl->x;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&x->mu);
	if (x->rc == 0 && !x->stop) {
		x->rc = rc;
		snprintf(x->err, sizeof(x->err), "data stream %d: %s", sl->idx,
		    msg);
	}
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	streams_bar_cancel(&x->bar);
	wakeup_poke(&x->wk);
}

static int
rx_apply(struct rx_slot *sl, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct streams_rx *x = sl->x;
	struct backend *b = x->b;
	uint64_t pop[WIRE_PAGE_DATA_MAX], dpfn[WIRE_PAGE_DATA_MAX];
	uint8_t ptype[WIRE_PAGE_DATA_MAX];
	void *pages[WIRE_PAGE_DATA_MAX];
	struct xp_page_view v;
	size_t ps = (size_t)1 << st->page_shift;
	void *cookie = NULL;
	uint32_t i, np = 0, nd = 0;
	int rc = 0;

	if (body_page_data_view(st, rec, &v) != 0 || v.deflated)
		return -EPROTO;
	for (i = 0; i < v.count; i++) {
		uint64_t e = xp_page_view_entry(&v, i);
		unsigned type = (unsigned)(e >> WIRE_PFN_TYPE_SHIFT);
		uint64_t pfn = e & WIRE_PFN_MASK;

		if (pfn >= x->c.max_pfn)
			return -ERANGE;
		if (type == PT_XTAB || type == PT_BROKEN)
			continue;
		ptype[np] = (uint8_t)type;
		pop[np++] = pfn;
		if (v.zero || body_page_type_has_data(type))
			dpfn[nd++] = pfn;
	}
	sl->pass_pages += v.count;
	sl->total += v.count;
	if (np == 0)
		return 0;
	pthread_mutex_lock(&x->bmu);
	if (b->ops->set_types != NULL)
		rc = b->ops->set_types(b, pop, ptype, np);
	if (rc == 0)
		rc = b->ops->populate(b, pop, np);
	if (rc == 0 && nd > 0)
		rc = b->ops->map(b, dpfn, nd, 1, pages, &cookie);
	pthread_mutex_unlock(&x->bmu);
	if (rc != 0)
		return rc;
	if (nd == 0)
		return 0;
	/* The copy, outside the lock: the part that runs in parallel. */
	for (i = 0; i < nd; i++) {
		if (v.zero)
			memset(pages[i], 0, ps);
		else
			memcpy(pages[i], v.data + (size_t)i * ps, ps);
	}
	pthread_mutex_lock(&x->bmu);
	b->ops->unmap(b, cookie, nd);
	pthread_mutex_unlock(&x->bmu);
	pthread_mutex_lock(&x->mu);
	x->pages += v.count;
	if (v.zero)
		x->zero += v.count;
	pthread_mutex_unlock(&x->mu);
	return 0;
}

static int
rx_record_cb(void *arg, const struct xp_stream *st,
    const struct xp_record *rec)
{
	struct rx_slot *sl = arg;
	struct streams_rx *x = sl->x;
	int be = st->big_endian, rc;
	uint32_t pass, flags;
	uint64_t pages, total;

	if (sl->last && rec->type != REC_END) {
		rx_fail(sl, -EPROTO, "record 0x%08x after the last XMIG_PASS",
		    rec->type);
		return -XP_ECALLBACK;
	}
	switch (rec->type) {
	case REC_STATIC_DATA_END:
		if (rec->index == 0)
			return 0;	/* the prelude's (SPEC 13.6) */
		break;
	case REC_PAGE_DATA:
	case REC_XMIG_ZERO_PAGES:
		if ((rc = rx_apply(sl, st, rec)) != 0) {
			rx_fail(sl, rc, "record %llu (%s): %s", (unsigned long
			    long)rec->index, record_type_name(rec->type),
			    rc == -ERANGE ? "a pfn beyond the pages announced"
			    : rc == -EPROTO ? "bad page list (or compressed: "
			    "never on a data stream)" : x->b != NULL ?
			    backend_errmsg(x->b) : strerror(-rc));
			return -XP_ECALLBACK;
		}
		return 0;
	case REC_XMIG_PASS:
		if (rec->length != WIRE_PASS_SIZE)
			break;
		pass = xp_get32(be, rec->body);
		flags = xp_get32(be, rec->body + 4);
		pages = xp_get64(be, rec->body + 8);
		total = xp_get64(be, rec->body + 16);
		if (pass < sl->pass || (flags & ~XMIG_PASS_LAST) ||
		    pages != sl->pass_pages || total != sl->total) {
			rx_fail(sl, -EPROTO, "XMIG_PASS %u (flags %#x) counts "
			    "%llu pages in the pass and %llu in all; %llu and "
			    "%llu arrived (pass %u before)", pass, flags,
			    (unsigned long long)pages,
			    (unsigned long long)total,
			    (unsigned long long)sl->pass_pages,
			    (unsigned long long)sl->total, sl->pass);
			return -XP_ECALLBACK;
		}
		sl->pass = pass + 1;
		sl->pass_pages = 0;
		if (flags & XMIG_PASS_LAST) {
			sl->last = 1;
			return 0;
		}
		/* The ordering rule: pass + 1 only once all closed pass. */
		if (streams_bar_close(&x->bar, (unsigned)sl->idx, pass) != 0)
			return -XP_ECALLBACK;
		return 0;
	case REC_END:
		if (!sl->last)
			break;
		sl->ended = 1;
		return 0;
	default:
		break;
	}
	rx_fail(sl, -EPROTO, "record %llu: %s (0x%08x, %u octets) is not "
	    "valid here on a data stream", (unsigned long long)rec->index,
	    record_type_name(rec->type), rec->type, rec->length);
	return -XP_ECALLBACK;
}

/* What a data stream is parsed after (SPEC 13.6): never on the wire. */
static int
rx_prelude(struct rx_slot *sl)
{
	struct xp_stream st = sl->x->c.st;
	struct xp_buf buf = { 0 };
	uint8_t ih[WIRE_IHDR_SIZE], dh[64];
	size_t dl;
	ssize_t r;

	st.dialect = XP_DRAFTB;
	st.version = 1;
	st.ihdr_options = st.big_endian ? WIRE_IHDR_OPT_BIG_ENDIAN : 0;
	header_image_put(&st, ih);
	dl = header_domain_put(&st, dh);
	if (buf_append(&buf, ih, sizeof(ih)) != 0 ||
	    buf_append(&buf, dh, dl) != 0 ||
	    record_encode(&st, &buf, REC_STATIC_DATA_END, NULL, 0,
	    WIRE_REC_OPT_CHECKSUM) != 0) {
		buf_free(&buf);
		return -ENOMEM;
	}
	dl = buf.len;
	r = parser_feed(sl->p, buf.data, buf.len);
	buf_free(&buf);
	return r == (ssize_t)dl ? 0 : -EPROTO;
}

static void *
rx_main(void *arg)
{
	struct rx_slot *sl = arg;
	struct streams_rx *x = sl->x;
	uint8_t hello[WIRE_HELLO_SIZE], *buf = NULL;
	struct xp_limits lim = { 0 };
	char err[256];
	unsigned idx, n;
	ssize_t r, k;

	/* The hello: a wrong one is a stranger, closed and forgotten. */
	if (sconn_read_full(&sl->c, hello, sizeof(hello), err,
	    sizeof(err)) != 0 || memcmp(hello, WIRE_HELLO_MAGIC, 8) != 0 ||
	    xp_get16(0, hello + 8) != WIRE_HELLO_VERSION ||
	    CRYPTO_memcmp(hello + 16, x->token, WIRE_STREAM_TOKEN_SIZE) != 0) {
		/* Closed with the session: the fd stays ours till the join. */
		shutdown(sl->c.fd, SHUT_RDWR);
		return NULL;
	}
	idx = xp_get16(0, hello + 10);
	n = xp_get16(0, hello + 12);
	pthread_mutex_lock(&x->mu);
	if (n != x->c.m || idx >= x->c.m || (x->claimed & (1u << idx))) {
		pthread_mutex_unlock(&x->mu);
		rx_fail(sl, -EPROTO, "hello for stream %u of %u: %s", idx, n,
		    n != x->c.m || idx >= x->c.m ? "not one of the streams "
		    "agreed" : "a second connection for it");
		return NULL;
	}
	x->claimed |= 1u << idx;
	sl->idx = (int)idx;
	pthread_mutex_unlock(&x->mu);

	if (x->c.tls_ctx != NULL) {
		sl->c.ssl = xport_tls_ssl_new(sl->c.fd, x->c.tls_ctx, 1, NULL,
		    err, sizeof(err));
		if (sl->c.ssl == NULL) {
			rx_fail(sl, -EPROTO, "%s", err);
			return NULL;
		}
		if (SSL_accept(sl->c.ssl) != 1) {
			xport_tls_ssl_err(sl->c.ssl, err, sizeof(err));
			rx_fail(sl, -EPROTO, "%s", err);
			return NULL;
		}
	}
	/* Pages go into the target only once it is open. */
	pthread_mutex_lock(&x->mu);
	while (x->b == NULL && !x->stop && x->rc == 0)
		pthread_cond_wait(&x->cv, &x->mu);
	pthread_mutex_unlock(&x->mu);
	lim.max_pfn = x->c.max_pfn;
	if ((sl->p = parser_new(&lim, NULL, rx_record_cb, sl)) == NULL ||
	    (buf = malloc(STREAMS_READ_CHUNK)) == NULL) {
		rx_fail(sl, -ENOMEM, "out of memory");
		goto out;
	}
	if (rx_prelude(sl) != 0) {
		const struct xp_error *e = parser_error(sl->p);

		rx_fail(sl, -EPROTO, "the stream's prelude: %s", e != NULL &&
		    e->code != 0 ? e->msg : "refused");
		goto out;
	}
	while (!sl->ended) {
		if (x->stop || x->rc != 0)
			goto out;
		r = sconn_read(&sl->c, buf, STREAMS_READ_CHUNK, err,
		    sizeof(err));
		if (r < 0) {
			rx_fail(sl, (int)r, "%s", err);
			goto out;
		}
		if (r == 0) {
			rx_fail(sl, -ECONNRESET, "the connection closed before "
			    "its END");
			goto out;
		}
		pthread_mutex_lock(&x->mu);
		x->octets += (uint64_t)r;
		pthread_mutex_unlock(&x->mu);
		k = parser_feed(sl->p, buf, (size_t)r);
		if (k < 0) {
			const struct xp_error *e = parser_error(sl->p);

			if (k != -XP_ECALLBACK)
				rx_fail(sl, -EPROTO, "invalid stream: %s",
				    e != NULL ? e->msg : xp_strerror((int)-k));
			goto out;
		}
	}
	streams_bar_end(&x->bar, (unsigned)sl->idx);
	pthread_mutex_lock(&x->mu);
	x->ended++;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	wakeup_poke(&x->wk);
out:
	free(buf);
	return NULL;
}

static void
rx_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct streams_rx *x = arg;
	char err[300];
	int rc, all;

	(void)fd;
	(void)what;
	wakeup_drain(&x->wk);
	pthread_mutex_lock(&x->mu);
	rc = x->reported ? 0 : x->rc;
	if (rc != 0) {
		x->reported = 1;
		snprintf(err, sizeof(err), "%s", x->err);
	}
	all = x->rc == 0 && x->ended == x->c.m && !x->ended_told;
	if (all)
		x->ended_told = 1;
	pthread_mutex_unlock(&x->mu);
	if (rc != 0)
		x->c.fail(x->c.arg, rc, err);
	else if (all && x->c.ended != NULL)
		x->c.ended(x->c.arg);
}

int
streams_rx_new(const struct streams_rx_cfg *c, struct streams_rx **out)
{
	struct streams_rx *x;
	int rc;

	*out = NULL;
	if (c->m < 2 || c->m > XMIG_STREAMS_MAX)
		return -EINVAL;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return -ENOMEM;
	x->c = *c;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	pthread_mutex_init(&x->bmu, NULL);
	streams_bar_init(&x->bar, c->m);
	if (RAND_bytes(x->token, sizeof(x->token)) != 1) {
		rc = -EIO;
		goto fail;
	}
	if ((rc = wakeup_init(&x->wk, c->base, rx_wake_cb, x)) != 0)
		goto fail;
	*out = x;
	return 0;
fail:
	streams_rx_free(x);
	return rc;
}

void
streams_rx_set_backend(struct streams_rx *x, struct backend *b)
{
	pthread_mutex_lock(&x->mu);
	x->b = b;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

void
streams_rx_token(const struct streams_rx *x,
    uint8_t token[WIRE_STREAM_TOKEN_SIZE])
{
	memcpy(token, x->token, WIRE_STREAM_TOKEN_SIZE);
}

int
streams_rx_attach(struct streams_rx *x, int fd)
{
	struct rx_slot *sl;
	int fl, done;

	pthread_mutex_lock(&x->mu);
	done = x->claimed == (1u << x->c.m) - 1 || x->stop;
	pthread_mutex_unlock(&x->mu);
	if (done || x->nslots == STREAMS_SLOTS) {
		close(fd);
		return -ENOSPC;
	}
	/* Blocking from here, with the session's timeout on each call. */
	if ((fl = fcntl(fd, F_GETFL)) >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	sconn_timeouts(fd, x->c.timeout_s);
	sl = &x->s[x->nslots];
	memset(sl, 0, sizeof(*sl));
	sl->x = x;
	sl->idx = -1;
	sl->c.fd = fd;
	if (pthread_create(&sl->thr, NULL, rx_main, sl) != 0) {
		close(fd);
		return -EAGAIN;
	}
	sl->started = 1;
	x->nslots++;
	return 0;
}

int
streams_rx_wait_end(struct streams_rx *x, double timeout_s, char *err,
    size_t len)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(timeout_s > 0 ? timeout_s : 60);
	pthread_mutex_lock(&x->mu);
	while (x->rc == 0 && x->ended < x->c.m)
		if (pthread_cond_timedwait(&x->cv, &x->mu, &ts) == ETIMEDOUT)
			break;
	if (x->rc != 0) {
		rc = x->rc;
		x->reported = 1;
		snprintf(err, len, "%s", x->err);
	} else if (x->ended < x->c.m) {
		rc = -ETIMEDOUT;
		snprintf(err, len, "END arrived, but %u of the %u data streams "
		    "did not end within %.0f s", x->c.m - x->ended, x->c.m,
		    timeout_s);
	}
	pthread_mutex_unlock(&x->mu);
	return rc;
}

unsigned
streams_rx_connected(struct streams_rx *x)
{
	unsigned n = 0, i;

	pthread_mutex_lock(&x->mu);
	for (i = 0; i < x->c.m; i++)
		if (x->claimed & (1u << i))
			n++;
	pthread_mutex_unlock(&x->mu);
	return n;
}

void
streams_rx_counts(struct streams_rx *x, uint64_t *pages, uint64_t *zero,
    uint64_t *octets)
{
	pthread_mutex_lock(&x->mu);
	*pages = x->pages;
	*zero = x->zero;
	*octets = x->octets;
	pthread_mutex_unlock(&x->mu);
}

void
streams_rx_free(struct streams_rx *x)
{
	unsigned i;

	if (x == NULL)
		return;
	pthread_mutex_lock(&x->mu);
	x->stop = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	streams_bar_cancel(&x->bar);
	for (i = 0; i < x->nslots; i++)
		if (x->s[i].c.fd >= 0)
			shutdown(x->s[i].c.fd, SHUT_RDWR);
	for (i = 0; i < x->nslots; i++) {
		struct rx_slot *sl = &x->s[i];

		if (sl->started)
			pthread_join(sl->thr, NULL);
		if (sl->p != NULL)
			parser_free(sl->p);
		sconn_close(&sl->c);
	}
	wakeup_free(&x->wk);
	streams_bar_destroy(&x->bar);
	pthread_mutex_destroy(&x->bmu);
	pthread_cond_destroy(&x->cv);
	pthread_mutex_destroy(&x->mu);
	free(x);
}
