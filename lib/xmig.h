/*
 * xmig.h -- the engine's internal header: one section per lib/ file.
 *
 * The engine moves a domain through a stream: engine/send.c drives a source
 * backend and writes records, engine/recv.c feeds received bytes through the
 * proto/ parser into a target backend.  All libevent glue lives in those two
 * files and transport.c.  Nothing here prints, forks, exits or runs an
 * event loop: a migration is a session on the caller's event_base that
 * reports through callbacks (struct xmig_cbs); failures come back as a
 * negative errno value with a one-line reason in the report.  The blocking
 * helpers the commands use (send_domain, recv_serve, recv_fd), the printers
 * and the processes live in daemon/ (daemon/run.h).  tests/lib-silent.test
 * keeps it so.
 */
#ifndef XMIG_XMIG_H
#define XMIG_XMIG_H

#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "backend.h"

/* ---- util.c ---------------------------------------------------------- */

uint64_t now_ns(void);				/* CLOCK_MONOTONIC */
/* "64M", "1G", "4096", "1.5G" -> bytes; -1 on error. */
int	parse_size(const char *s, uint64_t *out);
void	hex_encode(const uint8_t *in, size_t n, char *out);	/* out: 2n+1 */
/* Non-zero if len octets (a multiple of 32) at p are all zero. */
int	page_is_zero(const void *p, size_t len);
/*
 * Write all n octets to fd, through EINTR and (waiting in poll) EAGAIN;
 * 0, or -1 with errno set.
 */
int	write_all(int fd, const void *buf, size_t n);

/*
 * Messages for a person.  lib/ prints nothing itself: what it has to say
 * goes to the one callback the program sets, and only at levels up to the
 * one it asked for.  By default there is none and nothing is formatted.
 * Set it once, before any migration starts (it is read without locking).
 * Lines come without a newline; the program adds its prefix.
 */
enum xmig_log_level {
	XMIG_LOG_ERR, XMIG_LOG_WARN, XMIG_LOG_INFO, XMIG_LOG_DEBUG
};
typedef void (*xmig_log_fn)(int level, const char *msg);
void	xmig_log_set(xmig_log_fn fn, int max_level);
int	xmig_log_on(int level);		/* would xmig_log(level) reach fn? */
void	xmig_log(int level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A debug line naming the function it comes from; free when not wanted. */
#define xmig_debug(fmt, ...) do {					\
	if (xmig_log_on(XMIG_LOG_DEBUG))				\
		xmig_log(XMIG_LOG_DEBUG, "%s: " fmt, __func__,		\
		    ##__VA_ARGS__);					\
} while (0)
/* XMIG_F_* bits as "checksum,deflate,..." ("none" for 0) into buf. */
const char *xmig_features_str(uint32_t f, char *buf, size_t len);

/*
 * A session's own messages: through cbs->log when the caller set one (at
 * levels up to cbs->log_level), else through xmig_log above.  cbs may be
 * NULL.
 */
struct xmig_cbs;
int	xmig_cbs_log_on(const struct xmig_cbs *cbs, int level);
void	xmig_cbs_log(const struct xmig_cbs *cbs, int level, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
#define xmig_cbs_debug(cbs, fmt, ...) do {				\
	if (xmig_cbs_log_on((cbs), XMIG_LOG_DEBUG))			\
		xmig_cbs_log((cbs), XMIG_LOG_DEBUG, "%s: " fmt,		\
		    __func__, ##__VA_ARGS__);				\
} while (0)

/* ---- digest.c ---------------------------------------------------------- */

/*
 * The memory digest: a hash over pfns 0..nr_pages-1 in order, page_size
 * octets each, pages that cannot be mapped or were never populated counted
 * as zeros.  Reads through the backend's map().  XXH3-128 (the default: a
 * tenth of SHA-256's cost) fills out[0..15] with its canonical big-endian
 * form and zeros the rest; SHA-256 fills all 32 octets (SPEC 13.4).
 */
enum xmig_digest {
	XMIG_DIGEST_XXH3 = 0,	/* XXH3-128 */
	XMIG_DIGEST_SHA256,
};
const char *digest_name(enum xmig_digest alg);	/* "xxh3-128", "sha256" */
unsigned digest_len(enum xmig_digest alg);	/* 16, 32 */
/* "xxh3-128" (or "xxh3"), "sha256": 0 and *alg; -EINVAL otherwise. */
int	digest_parse(const char *s, enum xmig_digest *alg);
int	digest_memory(struct backend *b, uint64_t nr_pages, unsigned page_size,
	    enum xmig_digest alg, uint8_t out[32]);
/* The same hash over any octets: NULL when out of memory. */
struct mhash;
struct mhash *mhash_new(enum xmig_digest alg);
void	mhash_update(struct mhash *h, const void *p, size_t len);
void	mhash_final(struct mhash *h, uint8_t out[32]);	/* as digest_memory */
void	mhash_free(struct mhash *h);

/* vcpu_sha256: running SHA-256 over the state records a stream carried. */
struct digest_state;
struct digest_state *digest_state_new(void);
/* Adds u32 type (LE), u32 len (LE), body (LE form). */
void	digest_state_add(struct digest_state *d, uint32_t type,
	    const uint8_t *body_le, uint32_t len);
void	digest_state_final(struct digest_state *d, uint8_t out[32]);
void	digest_state_free(struct digest_state *d);

/* ---- transport.c ------------------------------------------------------- */

enum xport_kind { XPORT_TCP = 1, XPORT_FILE, XPORT_STDIO, XPORT_TLS, XPORT_EXEC };

struct xport_uri {
	enum xport_kind	kind;
	char		host[256];
	char		port[16];
	char		path[4096];	/* file: path, exec: command */
};

/* TLS settings of one side (PEM files; see migrate-send --help). */
struct xport_tls {
	const char	*cert;
	const char	*key;
	const char	*ca;
	/*
	 * Client: the name the receiver's certificate must carry.  Server:
	 * with peers[] and the names in allow_file, who may connect; with
	 * none of them, any certificate the CA signed.
	 */
	const char	*peer;
	const char	**peers;	/* server: more names (--tls-peer) */
	size_t		 npeers;
	const char	*allow_file;	/* server: one name a line (--tls-allow) */
};

/*
 * Parse "tcp:HOST:PORT", "tls:HOST:PORT", "exec:COMMAND", "file:PATH" or
 * "-".  errbuf gets the reason.
 */
int	xport_parse(const char *uri, struct xport_uri *u, char *errbuf,
	    size_t errlen);
/*
 * Blocking connect, returns a connected non-blocking socket or -errno.
 * For tools and tests only: the sessions connect with xport_connect_start.
 */
int	xport_connect(const struct xport_uri *u, char *errbuf, size_t errlen);
/*
 * Connect without blocking the caller's loop: the name is resolved with
 * evdns (numeric addresses and /etc/hosts at once), each address tried in
 * turn with a non-blocking connect.  done gets a connected non-blocking
 * socket (TCP_NODELAY) or fd -1 with a negative errno and the reason in
 * errbuf; it is called from the loop, never from xport_connect_start, and
 * the handle is freed after it returns.  NULL (ENOMEM) if nothing started.
 * xport_connect_cancel stops one that has not called done.
 */
struct xport_connecting;
struct event_base;
typedef void (*xport_connect_fn)(void *arg, int fd, int err,
	    const char *errbuf);
struct xport_connecting *xport_connect_start(struct event_base *base,
	    const struct xport_uri *u, xport_connect_fn done, void *arg);
void	xport_connect_cancel(struct xport_connecting *c);
/*
 * Bound, listening non-blocking socket or -errno.  A plain tcp: listener
 * binds only to loopback addresses unless insecure is set.
 */
int	xport_listen(const struct xport_uri *u, int insecure, char *errbuf,
	    size_t errlen);

/*
 * TLS: a context for the client (server = 0) or server side, verifying
 * the peer against t->ca.  A client checks t->peer, or without it the host
 * it connects to (subjectAltName DNS, then CN; IP literals against
 * subjectAltName IP).  A server with names (t->peer, t->peers, the lines
 * of t->allow_file, read now) lets in only a client whose certificate
 * carries one of them (subjectAltName DNS or IP; the CN only when the
 * certificate has neither; no wildcards).  NULL with the reason in errbuf
 * on failure.
 */
void	*xport_tls_ctx_new(const struct xport_tls *t, int server, char *errbuf,
	    size_t errlen);
void	 xport_tls_ctx_free(void *ctx);
/*
 * The bufferevent for a connected fd: plain when tls_ctx is NULL, else TLS
 * (connecting as a client to host, or accepting as a server).  The fd is
 * closed when the bufferevent is freed.
 */
struct bufferevent;
struct bufferevent *xport_bev_new(struct event_base *base, int fd,
	    void *tls_ctx, int server, const char *host, char *errbuf,
	    size_t errlen);
/* Why a bufferevent failed (errno or TLS errors), after BEV_EVENT_ERROR. */
void	xport_bev_error(struct bufferevent *bev, char *buf, size_t len);

/* ---- tls.c (used by transport.c) ---------------------------------------- */

struct bufferevent *xport_tls_bev_new(struct event_base *base, int fd,
	    void *ctx, int server, const char *host, char *errbuf,
	    size_t errlen);
/*
 * A blocking TLS connection's SSL (an OpenSSL SSL *) on fd, verified as
 * xport_tls_bev_new's: the caller runs SSL_connect / SSL_accept, and
 * SSL_free.  NULL with errbuf on failure.  (Data streams, SPEC 13.6.)
 */
void	*xport_tls_ssl_new(int fd, void *ctx, int server, const char *host,
	    char *errbuf, size_t errlen);
/* Why the last TLS call on ssl (this thread's) failed, into buf. */
void	xport_tls_ssl_err(void *ssl, char *buf, size_t len);
/*
 * After the final message, with the output empty: send the close_notify.
 * 0 sent, 1 queued until the socket drains, or -errno with errbuf.
 */
int	xport_tls_shutdown(struct bufferevent *bev, char *errbuf, size_t errlen);
/* Non-zero, with buf filled, if bev is a TLS bufferevent with an error. */
int	xport_tls_bev_error(struct bufferevent *bev, char *buf, size_t len);
/*
 * After the handshake: which directions of a TLS bufferevent the kernel
 * encrypts (kTLS): XPORT_KTLS_SEND | XPORT_KTLS_RECV, 0 for neither (user
 * space), -1 if bev is not TLS.
 */
#define XPORT_KTLS_SEND	0x1
#define XPORT_KTLS_RECV	0x2
int	xport_tls_ktls(struct bufferevent *bev);
/* Reset (not close orderly) a socket: the peer sees ECONNRESET. */
void	xport_abort(int fd);
int	xport_is_regular(int fd);
/* "tcp:ADDR:PORT" (the bound address and port of lfd) into buf. */
int	xport_bound(int lfd, char *buf, size_t len);

/* ---- progress (engine/send.c, engine/recv.c) --------------------------- */

/* How the caller shows progress; the engine only hands it the figures. */
enum progress_mode { PROGRESS_AUTO = 0, PROGRESS_NONE, PROGRESS_TTY, PROGRESS_JSON };

/*
 * A session's progress, given to cbs->progress at most every 250 ms while
 * it runs, and once more with final set just before a successful result.
 */
struct progress_info {
	const char	*role;		/* "send" / "receive" */
	const char	*phase;		/* "live", "stop-and-copy", "tail", ... */
	unsigned	 pass;
	uint64_t	 bytes;		/* octets on the wire so far */
	uint64_t	 pages;		/* pages sent or received */
	uint64_t	 remaining;	/* dirty octets still to send */
	double		 dirty_rate;	/* octets per second */
	double		 throughput;	/* octets per second */
	double		 expected_downtime_ms;
	int		 final;		/* the last figures of a success */
};

/* ---- reports (engine/send.c / engine/recv.c) ---------------------------- */

struct xmig_report {
	const char	*role;
	const char	*status;	/* "completed", "unconfirmed", "failed" */
	int		 verified;	/* -1 unknown, 0 digests differ, 1 equal */
	int		 backchannel;	/* a back-channel was agreed */
	uint64_t	 zero_pages;	/* pages sent or received without data */
	uint64_t	 page_octets;	/* page data before compression */
	uint64_t	 page_wire;	/* page data as sent */
	const char	*compression;	/* "zlib", "zstd" or NULL: none */
	unsigned	 throttle_max;	/* auto-converge: the most taken, % */
	uint64_t	 page_compressed; /* page octets sent compressed */
	/*
	 * Delta-encoded pages (SPEC 12.7): pages sent or applied as deltas
	 * (XMIG_DELTA_PAGES), the delta octets, and the page octets those
	 * pages would have been in full minus the delta octets (sender).
	 */
	int		 delta;		/* the feature was agreed */
	uint64_t	 delta_pages;
	uint64_t	 delta_octets;
	uint64_t	 delta_saved_octets;
	char		 error[512];
	int		 have_memory, have_vcpu;
	enum xmig_digest memory_alg;	/* what memory_digest is */
	uint8_t		 memory_digest[32];	/* digest_len(memory_alg) used */
	uint8_t		 vcpu_sha256[32];
	uint64_t	 bytes;
	uint64_t	 pages_sent;
	unsigned	 iterations;
	int		 have_downtime;
	double		 downtime_ms;
	double		 duration_ms;
	double		 throughput_mbps;
	uint64_t	 nr_pages;
	const char	*dialect;
	/*
	 * A query (send_opts.query; a receiver that was asked, SPEC 13.2):
	 * query is 1, peer_result the REPLY's result (0: it would take the
	 * domain now), peer_max_memory its max_memory (octets it can host
	 * now, 0: no limit); the reason of a refusal is in error.
	 */
	int		 query;
	unsigned	 peer_result;
	uint64_t	 peer_max_memory;
	/*
	 * Replication (send_opts.replicate_ms; SPEC 15.4).  Sender: epochs
	 * acknowledged, outputs released with the last one.  Receiver: the
	 * last committed epoch (have_epoch), and after a failover the
	 * outputs its restored memory counts (-1: unknown).
	 */
	int		 replicated;
	int		 have_epoch;
	uint64_t	 epoch;
	uint64_t	 epochs_acked;
	uint64_t	 outputs_released;
	int64_t		 outputs_in_state;
	/* Sender: pages the domain's workload wrote meanwhile (sim), -1. */
	int64_t		 workload_pages;
	/* Receiver after a failover: when it resumed, wall clock (ms). */
	double		 failover_at_ms;
	/* Connections that carried the pages: 1, or the data streams. */
	unsigned	 streams;
};

/*
 * One epoch of a replicated sender (xmig_cbs.checkpoint).  CKPT_CAPTURED
 * when the epoch is taken (domain paused and resumed; memory_digest with
 * send_opts.epoch_digests), CKPT_ACKED when the backup committed it and
 * its outputs were released.
 */
enum checkpoint_event { CKPT_CAPTURED = 1, CKPT_ACKED };

struct checkpoint_info {
	enum checkpoint_event event;
	uint64_t	 epoch;
	uint64_t	 outputs;	/* in the epoch's state / released */
	double		 pause_ms;	/* the domain was paused this long */
	uint64_t	 dirty_pages;	/* pages the epoch carries */
	uint64_t	 octets;	/* stream octets through its CHECKPOINT */
	double		 t_ms;		/* when it was taken, since the start */
	int64_t		 workload_pages; /* backend stats then, -1 if none */
	int		 have_digest;
	enum xmig_digest memory_alg;
	uint8_t		 memory_digest[32];
};

/*
 * What a session tells its caller.  Every member may be NULL.  progress and
 * log are called from the caller's loop while the session runs; result
 * exactly once per started session, from the loop (never from inside
 * xmig_*_start or xmig_*_cancel), with the session's rc (as send_domain's
 * / recv_fd's) and its report, valid during the call.  The caller may
 * cancel a session anywhere, and free it inside result or outside the
 * session's callbacks (not inside its progress or log).
 */
struct xmig_cbs {
	void	*arg;
	void	(*progress)(void *arg, const struct progress_info *pi);
	void	(*log)(void *arg, int level, const char *msg);
	int	 log_level;	/* the most verbose level log wants */
	void	(*result)(void *arg, int rc, const struct xmig_report *r);
	/* A replicating sender's epochs (may be NULL). */
	void	(*checkpoint)(void *arg, const struct checkpoint_info *ci);
};

/* ---- engine/send.c ----------------------------------------------------- */

struct send_opts {
	enum xp_dialect	dialect;
	int		checksum;
	int		live;
	double		downtime_limit_ms;	/* default 300 */
	unsigned	max_iterations;		/* default 30 */
	uint64_t	bandwidth;		/* octets/s, 0: unlimited */
	enum progress_mode progress;	/* for the caller's printer */
	int		big_endian;		/* draft-B only */
	struct xport_tls tls;
	int		backchannel;		/* offer one on a connection */
	int		require_backchannel;	/* fail rather than go one-way */
	double		negotiate_timeout_ms;	/* wait for XMIG_REPLY (2000) */
	uint16_t	compress;		/* 0 none, WIRE_REC_OPT_DEFLATE
						   (zlib) or WIRE_REC_OPT_ZSTD */
	int		compress_level;		/* zlib -1..9, zstd 0..19 */
	int		compress_fixed;		/* compress every record, never
						   back off (tests) */
	int		auto_converge;		/* throttle a domain that dirties
						   faster than the link carries
						   (backend's throttle op) */
	int		zero_pages;		/* -1 when agreed, 0 never, 1 also files */
	double		timeout_s;		/* stalled receiver (60) */
	int		no_digest;		/* no memory digest after END */
	enum xmig_digest digest;		/* offered; SHA-256 unless agreed */
	/*
	 * The toolstack's configuration of the domain (libxl JSON), sent
	 * as XMIG_DOMAIN_CONFIG right after the offer (SPEC 12.4): on a
	 * connection in either dialect, into a draft-B file or pipe; never
	 * into a Xen-dialect file or pipe.  NULL: none.
	 */
	const char	*domain_config;
	size_t		 domain_config_len;
	/*
	 * -1 (the default), or a descriptor that becomes readable when the
	 * caller wants the migration stopped (a signal handler writes to a
	 * self-pipe).  The engine then fails with -ECANCELED and the error
	 * "cancelled", as on any other failure: dirty tracking off, the
	 * source resumed (or left paused once GO is out, SPEC 13.4).  The
	 * engine never reads or closes it.
	 */
	int		cancel_fd;
	/*
	 * Only ask (SPEC 13.2, feature QUERY): offer a back-channel, send
	 * the configuration, read the receiver's REPLY and close; no page is
	 * sent and the source is never paused.  The result's rc is 0 when a
	 * REPLY came (its figures in the report's query fields), else a
	 * negative errno (no answer in the negotiation wait: -ETIMEDOUT).
	 */
	int		query;
	/*
	 * Data streams (SPEC 13.6): 0 or 1 none; 2 .. XMIG_STREAMS_MAX: offer
	 * that many data connections for the pages (tcp: and tls: with the
	 * back-channel, a backend with BACKEND_CAP_WORKERS, not with
	 * replication).  The receiver may take fewer or none (the report's
	 * streams says how many carried the pages; a decline is a warning).
	 */
	unsigned	streams;
	/*
	 * Replication (SPEC 15.4): 0 off; else the checkpoint interval in
	 * ms.  After the first live copy the domain keeps running here and
	 * every interval an epoch is taken (pause, dirty pages and state
	 * copied aside, resume) and sent; cancel_fd then stops replication
	 * in order (END; the result's status "stopped", rc 0) and a lost
	 * backup ends it with status "unprotected" (rc -ENOTCONN).  Either
	 * way the domain runs on here.  Needs a back-channel.
	 */
	unsigned	replicate_ms;
	int		epoch_digests;	/* digest memory at each epoch (tests) */
	/*
	 * Delta-encoded re-sent pages (SPEC 12.7, feature DELTA): offered
	 * on a connection when set (never with replicate_ms); once agreed,
	 * a page sent again whose last sent copy is in the delta cache goes
	 * as a delta against it when that is below half a page.  The cache
	 * holds delta_cache octets of page copies (0: the default, 64 MiB).
	 */
	int		delta;
	uint64_t	delta_cache;
};

void	send_opts_default(struct send_opts *o);

/*
 * A sender session: migrates (or saves) the open source domain b on the
 * caller's event_base.  o, b and cbs must outlive it.
 *
 * xmig_send_new: dest is "tcp:HOST:PORT", "tls:HOST:PORT" (connected on
 * the loop, without blocking it), "file:PATH" or "-" (stdout).  "exec:"
 * is the caller's: it runs the command and passes its socket to
 * xmig_send_new_fd.  xmig_send_new_fd takes a connected socket or pipe fd
 * (the session owns and closes it); two_way: a back-channel can come back
 * on it (a socket pair, a TCP connection), else a one-way pipe.  Both
 * return NULL only when out of memory; every other failure, including a
 * bad dest, comes as the result.
 *
 * xmig_send_start: begins; 0, or -EALREADY.  The result's rc: 0 handed
 * over (or saved): the source stays paused, the caller destroys it;
 * -EINPROGRESS delivered but unconfirmed: the source stays paused;
 * any other negative errno: failed, the source resumed (-ECANCELED:
 * cancelled).  A regular file (or a socket given as file:/proc/self/fd/N)
 * is written synchronously a batch (16 MiB at most) per loop turn.
 *
 * xmig_send_cancel: fail with -ECANCELED and the error "cancelled", as on
 * any failure (dirty tracking off, the source resumed, or left paused
 * once GO is out, SPEC 13.4); the result follows from the loop.  Once
 * the receiver has reported the domain running (handed over) it does
 * nothing: the session ends as it would, with the digests compared.  o's
 * cancel_fd does the same when it becomes readable (and there, ends the
 * session at once, without the digests).  A replicating session past its
 * first epoch stops in order instead (replicate_ms).
 *
 * xmig_send_free: frees it; a session still running is stopped as by
 * cancel first, without a result.
 */
struct xmig_send;
struct xmig_send *xmig_send_new(struct event_base *base, struct backend *b,
	    const char *dest, const struct send_opts *o,
	    const struct xmig_cbs *cbs);
struct xmig_send *xmig_send_new_fd(struct event_base *base, struct backend *b,
	    int fd, int two_way, const struct send_opts *o,
	    const struct xmig_cbs *cbs);
int	xmig_send_start(struct xmig_send *s);
void	xmig_send_cancel(struct xmig_send *s);
void	xmig_send_free(struct xmig_send *s);
/*
 * Change the bandwidth cap of a running session (octets/s, 0: none) from
 * now on; o->bandwidth stays as given.  0, or -ENOMEM.
 */
int	xmig_send_set_bandwidth(struct xmig_send *s, uint64_t bandwidth);

/* ---- engine/recv.c ----------------------------------------------------- */

/*
 * A toolstack on the target (daemon/xen-toolstack.c for Xen): it creates
 * the empty domain the backend fills, then completes, starts or destroys
 * it.  The engine calls these from its own thread, in this order: config
 * (XMIG_DOMAIN_CONFIG; before the REPLY on a back-channel, so it must be
 * quick), create (when the first record needs the domain), prepared (when
 * it has one, after XMIG_EARLY_PARAMS, SPEC 12.5), finish (after
 * the backend's complete(), before RESTORED), start (on GO, or at the end
 * of a one-way stream), abort (on any failure before start, whatever was
 * done).  Each returns 0 or a negative errno with a one-line reason in
 * msg; config's -ENOMEM/-ENOSPC and -EOPNOTSUPP become the REPLY results
 * MEMORY and DOMAIN.
 */
struct recv_toolstack {
	void	*arg;
	int	(*config)(void *arg, uint32_t kind, const char *text,
		    size_t len, char *msg, size_t msglen);
	int	(*create)(void *arg, const struct domain_info *info,
		    char *spec, size_t speclen, char *msg, size_t msglen);
	int	(*finish)(void *arg, struct backend *b, char *msg,
		    size_t msglen);
	int	(*start)(void *arg, char *msg, size_t msglen);
	void	(*abort)(void *arg);
	/*
	 * Optional: the backend took XMIG_EARLY_PARAMS (SPEC 12.5), so the
	 * toolstack may finish the domain now, in the background, while
	 * its memory comes; finish then only waits for that.  It must not
	 * block for long (the stream waits).
	 */
	int	(*prepared)(void *arg, struct backend *b, char *msg,
		    size_t msglen);
	/*
	 * Optional: the handle of a domain that runs here at the end of a
	 * successful session (GO applied, or a one-way stream started, or
	 * left paused with o->keep_paused) passes to the caller: adopt
	 * gets it after the digests, just before the result, and the
	 * engine neither destroys nor closes it (the caller does, when it
	 * is done with the domain).  Without adopt the engine closes the
	 * handle, which leaves a Xen domain running and ends a sim one.
	 */
	void	(*adopt)(void *arg, struct backend *b);
	/*
	 * Optional: after config accepted the domain, before an OK REPLY:
	 * may this host take a domain of bytes octets of memory now?  0 (a
	 * migration, not a query: the memory is now reserved for it), or
	 * -ENOSPC (the REPLY result MEMORY) or another negative errno
	 * (OTHER), with the reason in msg.  query: the sender only asks
	 * (SPEC 13.2); nothing is to be reserved.
	 */
	int	(*admit)(void *arg, uint64_t bytes, int query, char *msg,
		    size_t msglen);
};

struct recv_opts {
	const char	*backend;	/* "sim" or "sim:spec" */
	enum progress_mode progress;	/* for the caller's printer */
	/* For recv_serve (daemon/): the sessions do not read these. */
	int		once;
	int		report_json;
	void		*report_out;	/* FILE *: NULL stdout */
	uint64_t	max_memory;	/* octets a target may host; 0: no limit */
	const char	*max_memory_why;	/* where it comes from, for the
					   refusal (NULL: "--max-memory") */
	int		insecure;	/* plain tcp on a non-loopback address */
	double		timeout_s;	/* stalled sender (60) */
	unsigned	max_sessions;	/* concurrent migrations (tcp/tls) */
	struct xport_tls tls;		/* recv_serve's listener */
	int		no_digest;	/* no digests: none in the report, no
					   DIGESTS after RUNNING */
	enum xmig_digest digest;	/* a one-way stream's; a negotiated
					   one uses what was agreed */
	int		no_delta;	/* decline delta-encoded pages
					   (SPEC 12.7), as an older receiver */
	int		keep_paused;	/* one-way: leave the restored domain
					   to the caller (no resume) */
	const struct recv_toolstack *toolstack;	/* NULL: none */
	/* Checkpointed streams (SPEC 15.4). */
	uint64_t	max_epoch_bytes;	/* bound of one epoch buffered */
	double		failover_timeout_ms;	/* 0: 3 intervals, >= 200 */
	/* Data streams taken at most (SPEC 13.6); below 2: none. */
	unsigned	max_streams;
};

void	recv_opts_default(struct recv_opts *o);

/*
 * A receiver session: one migration from a connected socket fd (accepted;
 * the session owns and closes it), plain or, with tls_ctx (a server
 * context from xport_tls_ctx_new), TLS, on the caller's event_base, with
 * the back-channel on the same socket.  o and cbs must outlive it.  NULL
 * only when out of memory.
 *
 * xmig_recv_refuse, before start: refuse this migration with why (a
 * refusing XMIG_REPLY to a sender that negotiates, a close otherwise),
 * reading at most one small record within a second; nothing is restored.
 * xmig_recv_start: 0, or -EALREADY.  The result's rc: 0 when the domain
 * runs here (or was left to the toolstack, o->keep_paused), else a
 * negative errno; a domain that does not run here has been destroyed.
 * xmig_recv_cancel: fail with -ECANCELED ("cancelled"); the result
 * follows from the loop.  xmig_recv_free: as xmig_send_free.
 */
struct xmig_recv;
struct xmig_recv *xmig_recv_new(struct event_base *base, int fd,
	    void *tls_ctx, const struct recv_opts *o,
	    const struct xmig_cbs *cbs);
void	xmig_recv_refuse(struct xmig_recv *rv, const char *why);
/*
 * Data streams (SPEC 13.6), before start: a sender that offers them gets
 * up to max (o->max_streams bounds it too).  When the session takes some
 * it calls listen(arg, &port, err, errlen) once, before answering: the
 * caller opens a listening socket (on the address the main connection
 * arrived on) and gives every connection it accepts there to
 * xmig_recv_stream_fd (which takes the fd; 0, or -ENOSPC when no more
 * are wanted: the caller may close the listener).  listen returns 0 with
 * *port set, or -errno (the session then declines the streams).
 */
typedef int (*xmig_streams_listen_fn)(void *arg, uint16_t *port, char *err,
	    size_t errlen);
void	xmig_recv_allow_streams(struct xmig_recv *rv, unsigned max,
	    xmig_streams_listen_fn listen, void *arg);
int	xmig_recv_stream_fd(struct xmig_recv *rv, int fd);
int	xmig_recv_start(struct xmig_recv *rv);
void	xmig_recv_cancel(struct xmig_recv *rv);
void	xmig_recv_free(struct xmig_recv *rv);

/*
 * The same without an event loop, synchronous (no event_base: the Xen
 * paths read a socket or pipe faster into one flat buffer): one
 * migration read from fd, already open (a file at its current offset, a
 * pipe or a socket), with the back-channel written to out_fd (-1: none,
 * one-way; it may be fd itself).  exact: read not one octet past END,
 * one-way (the caller reads on from fd: libxl's records follow the libxc
 * stream on its helper's fd).  Blocks up to o->timeout_s for each read.
 * cbs' progress and log are called; result is not: r is filled and rc
 * returned as the result's.  Neither prints nor forks.
 */
int	xmig_recv_fd(int fd, int out_fd, int exact, const struct recv_opts *o,
	    const struct xmig_cbs *cbs, struct xmig_report *r);

#endif
