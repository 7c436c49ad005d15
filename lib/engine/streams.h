/*
 * streams.h -- data streams (SPEC 13.6, "PARALLEL"): page data of a
 * migration over M extra connections, one worker thread each side per
 * connection, while the main connection keeps the control records, the
 * passes' policy, the back-channel and the handover.
 *
 * Sender: streams_tx_start connects the M data connections from worker
 * threads (hello, then TLS for tls:); the main loop hands each batch of
 * pfns to a worker (streams_tx_submit, never blocking: streams_tx_room
 * says whether one has room, and the wake callback comes when one has),
 * and closes each pass on every stream (streams_tx_pass_end).  Workers map
 * the pages, copy them, checksum and write PAGE_DATA / XMIG_ZERO_PAGES.
 *
 * Receiver: streams_rx_new before the XMIG_STREAMS answer; each accepted
 * data connection goes to streams_rx_attach (a thread checks its hello and
 * token, then runs the TLS handshake and reads records); workers apply
 * pages, and at each XMIG_PASS wait for every stream to finish that pass
 * (the ordering rule).  streams_rx_wait_end, at END: every stream ended.
 *
 * The wake and fail callbacks run on the caller's event loop.  Both *_free
 * stop and join every thread and close every descriptor.
 */
#ifndef XMIG_STREAMS_H
#define XMIG_STREAMS_H

#include <sys/socket.h>
#include <pthread.h>
#include <stdint.h>

#include "xmig.h"

struct streams_tx;
struct streams_rx;

struct streams_tx_cfg {
	struct event_base	*base;
	struct backend		*b;
	struct xp_stream	 st;		/* the main stream's (order, pages) */
	uint16_t		 recopt;	/* WIRE_REC_OPT_CHECKSUM or 0 */
	int			 zero_elide;	/* XMIG_ZERO_PAGES agreed */
	unsigned		 n;		/* streams, 2 .. XMIG_STREAMS_MAX */
	struct sockaddr_storage	 addr;		/* the receiver, port set */
	socklen_t		 addrlen;
	uint8_t			 token[WIRE_STREAM_TOKEN_SIZE];
	void			*tls_ctx;	/* client context, NULL: tcp */
	const char		*host;		/* for the certificate check */
	double			 timeout_s;	/* connect, and a stalled write */
	void			(*wake)(void *arg);	/* room, or a failure */
	void			*arg;
};

int	streams_tx_start(const struct streams_tx_cfg *c,
	    struct streams_tx **out);
/* 1 if a batch can be submitted now; 0: the wake callback will come. */
int	streams_tx_room(struct streams_tx *t);
int	streams_tx_submit(struct streams_tx *t, unsigned pass,
	    const uint64_t *pfns, unsigned n);
/* 1 when every batch handed on is written; 0: the wake callback will come. */
int	streams_tx_idle(struct streams_tx *t);
/* Pass `pass` is queued whole: close it on every stream (last: END too). */
int	streams_tx_pass_end(struct streams_tx *t, unsigned pass, int last);
/* 0, or the first worker's failure (-errno) with its message in err. */
int	streams_tx_error(struct streams_tx *t, char *err, size_t len);
/* Octets written on the data streams since the last call. */
uint64_t streams_tx_take_sent(struct streams_tx *t);
void	streams_tx_counts(struct streams_tx *t, uint64_t *pages,
	    uint64_t *zero, uint64_t *page_octets);
void	streams_tx_free(struct streams_tx *t);

struct streams_rx_cfg {
	struct event_base	*base;
	struct xp_stream	 st;		/* the main stream's */
	unsigned		 m;		/* streams taken */
	uint64_t		 max_pfn;	/* pages announced */
	void			*tls_ctx;	/* server context, NULL: tcp */
	double			 timeout_s;
	void			(*fail)(void *arg, int rc, const char *msg);
	void			(*ended)(void *arg);	/* every stream ended */
	void			*arg;
};

int	streams_rx_new(const struct streams_rx_cfg *c, struct streams_rx **out);
/* The target, once open (workers wait for it). */
void	streams_rx_set_backend(struct streams_rx *x, struct backend *b);
void	streams_rx_token(const struct streams_rx *x,
	    uint8_t token[WIRE_STREAM_TOKEN_SIZE]);
/* Takes fd (closed on any outcome); 0, or -ENOSPC: enough connections. */
int	streams_rx_attach(struct streams_rx *x, int fd);
/*
 * END arrived on the main connection: wait until every stream has
 * delivered its last pass and END.  0, or -errno with err.
 */
int	streams_rx_wait_end(struct streams_rx *x, double timeout_s, char *err,
	    size_t len);
/* Data streams whose hello was accepted so far. */
unsigned streams_rx_connected(struct streams_rx *x);
void	streams_rx_counts(struct streams_rx *x, uint64_t *pages,
	    uint64_t *zero, uint64_t *octets);	/* octets: records read */
void	streams_rx_free(struct streams_rx *x);

/*
 * The ordering rule's barrier, on its own for tests: n streams; a stream
 * that closed pass k (streams_bar_close) waits until every stream has
 * closed pass k or ended.  0, or -ECANCELED once streams_bar_cancel ran.
 */
struct streams_bar {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned	 n;
	unsigned	 closed[XMIG_STREAMS_MAX];	/* last pass closed */
	int		 ended[XMIG_STREAMS_MAX];
	int		 cancelled;
};
void	streams_bar_init(struct streams_bar *b, unsigned n);
void	streams_bar_destroy(struct streams_bar *b);
int	streams_bar_close(struct streams_bar *b, unsigned i, unsigned pass);
void	streams_bar_end(struct streams_bar *b, unsigned i);
void	streams_bar_cancel(struct streams_bar *b);

#endif
