/*
 * xmigd.h -- what xmigd.c (the daemon: listeners, control API, the table
 * of domains and migrations) and domproc.c (a domain process: one hosted
 * domain and its outgoing migration) share.  The line protocol between
 * them is proto/SPEC.md's "xmigd internal protocol".
 */
#ifndef XMIG_XMIGD_H
#define XMIG_XMIGD_H

#include "xmig.h"

/* A domain's name: 1-64 of [A-Za-z0-9._-]. */
#define XMIGD_NAME_MAX	64
int	xmigd_name_ok(const char *name);

/*
 * The two ways a domain process starts, in a child of xmigd that has
 * closed the daemon's descriptors; both end with _exit.  ctl is the
 * child's end of its socket pair with the daemon; lfd the listening unix
 * socket at lpath in the state directory by which a later xmigd finds the
 * process (SPEC 18.4; the process unlinks lpath when it ends).
 *
 * domproc_create: a new sim domain from spec (the part after "sim:"),
 * its workload running.  domproc_receive: one incoming migration on the
 * accepted socket fd (refused with busy when busy is not NULL); the
 * domain it restores is then hosted by this process.
 */
/*
 * The daemon's --tls-cert, --tls-key and --tls-ca, for the outgoing tls:
 * migrations of the domain processes forked after it (the peer's name is
 * the HOST of tls:HOST:PORT).
 */
void	domproc_set_tls(const struct xport_tls *t);
void	domproc_create(int ctl, int lfd, const char *lpath, const char *name,
	    const char *spec) __attribute__((noreturn));
void	domproc_receive(int ctl, int lfd, const char *lpath, int fd,
	    void *tls_ctx, const struct recv_opts *o, const char *busy)
	    __attribute__((noreturn));

struct event_base;
/* domquery.c: a QUERY to uri (SPEC 13.2), answered by an "answer" line;
 * the budget check of an incoming domain (SPEC 18.5). */
struct bufferevent;
void	domq_query(struct event_base *base, struct backend *b,
	    const char *config, const struct xport_tls *tls, const int *ctlp,
	    const char *uri);
int	domq_admit(int ctl, struct bufferevent *cbev, uint64_t bytes,
	    int query, char *msg, size_t msglen);

/* ---- xmigd.c, table.c, control.c: the daemon ---------------------------- */

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "daemon.h"

#define XMIGD_CONTROL_DEFAULT	"/run/xmig/xmigd.sock"
#define XMIGD_CONFIG_DEFAULT	"/etc/xmig/xmigd.conf"
#define XMIGD_STATE_DEFAULT	"/run/xmig"
#define XMIGD_LINE_MAX		(64u * 1024u)
#define XMIGD_LISTEN_MAX	16
#define XMIGD_REFUSERS_MAX	4u
#define XMIGD_MIGRATIONS_KEPT	256u

/* JSON-RPC error codes (2.0's own, then xmigd's). */
#define RPC_PARSE	(-32700)
#define RPC_INVALID	(-32600)
#define RPC_NO_METHOD	(-32601)
#define RPC_PARAMS	(-32602)
#define RPC_FAILED	(-32000)
#define RPC_DENIED	(-32001)
#define RPC_TOO_LONG	(-32002)
#define RPC_NOT_FOUND	(-32003)
#define RPC_BUSY	(-32004)

struct client;
struct domain;

struct migration {
	struct migration	*next;
	unsigned		 id;
	char			 domain[XMIGD_NAME_MAX + 8];
	char			 uri[512];
	char			 status[16];	/* running, completed, ... */
	char			 phase[32];
	unsigned		 pass;
	uint64_t		 bytes, remaining, bandwidth;
	double			 downtime_ms;	/* -1: not known */
	int			 verified;	/* -1 unknown, 0 differ, 1 equal */
	char			 error[512];
	uint64_t		 started, ended;	/* now_ns */
	struct domain		*dom;		/* while running */
};

struct domain {
	struct domain		*next;
	pid_t			 pid;
	struct bufferevent	*bev;		/* our end of the pair */
	char			 name[XMIGD_NAME_MAX + 8];
	char			 state[16];	/* starting, incoming, running,
						   migrating, paused, refusing */
	char			 origin[16];	/* created, received */
	char			 spec[512];
	uint64_t		 memory;
	char			 failure[512];	/* from "failed" */
	struct migration	*mig;
	struct client		*creator;	/* waits for "running" (create,
						   resume) or the end (destroy) */
	json_object		*create_id;
	int			 asked;		/* an incoming QUERY, answered */
	int			 destroying;	/* quit sent for destroy */
};

struct client {
	struct client		*next;
	struct bufferevent	*bev;
	int			 closing;
	struct migration	*watch;
	json_object		*watch_id;
};

struct listener {
	char			 uri[300];
	struct event		*ev;
	int			 fd;
	void			*tls_ctx;
};

/* The daemon's one state (xmigd.c). */
struct xmigd {
	struct event_base	*base;
	const char		*control_path;
	int			 control_created;	/* unlink it at the end */
	int			 control_fd;
	struct event		*control_ev;
	struct listener		 lis[XMIGD_LISTEN_MAX];
	unsigned		 nlis;
	const char		*config_path;
	int			 config_given;
	unsigned		 max_sessions;
	uint64_t		 max_memory;
	int			 cli_max_sessions, cli_max_memory;
	uint64_t		 memory_budget;	/* 0: none (SPEC 18.5) */
	int			 cli_memory_budget, cli_metrics;
	struct cmd_common	 cc;
	struct domain		*domains;
	struct migration	*migs;
	unsigned		 next_mig;
	struct client		*clients;
	int			 stopping;
	const char		*state_dir;	/* --state-dir (recover.c) */
	int			 xen;		/* --backend xen (xenhost.c) */
	int			 cli_backend;
	int			 state_lock;
	gid_t			 xmig_gid;
	int			 have_xmig_gid;
	/* Metrics. */
	unsigned long		 by_status[5];	/* completed failed cancelled
						   unconfirmed running(unused) */
	uint64_t		 bytes_total;
	unsigned long		 dt_bucket[7];	/* le 10 50 100 300 1000 5000 +Inf */
	double			 dt_sum;
	unsigned long		 dt_count;
	unsigned long		 incoming_total, incoming_failed;
};
extern struct xmigd xd;

extern const double xmigd_dt_bounds[6];		/* downtime histogram, ms */
extern const char *const xmigd_status_names[4];	/* the ends of a migration */

/* xmigd.c: sd_notify of our own ($NOTIFY_SOCKET); STATUS= from the table. */
void	notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	notify_status(void);

/* table.c */
unsigned active_migrations(unsigned *incoming);
struct domain *domain_by_name(const char *name);
/*
 * A domain process: created from spec (the part after "sim:"), or
 * receiving on the accepted fd (refused with busy when not NULL).  NULL
 * with errno if it could not be forked.
 */
struct domain *domain_spawn(const char *name, const char *spec, int fd,
	    void *tls_ctx, const char *busy);
void	domain_send(struct domain *d, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
json_object *domain_json(const struct domain *d);
struct migration *mig_by_id(unsigned id);
json_object *mig_json(const struct migration *m);
/* Progress (final 0) or the end of m to the clients that watch it. */
void	mig_notify(struct migration *m, int final);
void	mig_end(struct migration *m, const char *status, uint64_t bytes,
	    double dt, const char *error);
void	mig_prune(void);
struct migration *mig_start(struct domain *d, const char *uri, uint64_t bw);
/*
 * A domain process's line to xmigd on ctl (nothing when ctl < 0): LF and
 * CR in the text become spaces, at most about 1 KiB (domproc.c).
 */
void	dom_vsay(int ctl, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));
/*
 * A domain process found in the state directory (recover.c): fd is
 * connected to its registration socket, line its "state" line (SPEC
 * 18.4).  The entry, or NULL if the line does not parse.
 */
struct domain *domain_attach(int fd, char *line);
/* Stopping, and no domain is in a state that still changes: exit. */
void	stop_check(void);

/* recover.c: the state directory, re-adoption at start, destroy, resume */
/* Create and lock it (one xmigd per state directory); 0 or -1. */
int	state_dir_open(void);
/*
 * A new domain process's registration socket: listening, mode 0600, its
 * path in path; the fd, or -1 with errno.
 */
int	state_dir_listen(char *path, size_t len);
/* Re-adopt the domain processes a previous xmigd left; clean the rest. */
void	recover_domains(void);
/* The methods destroy and resume; 0 if method is neither. */
int	recover_method(struct client *c, json_object *id, const char *method,
	    json_object *params);

/*
 * xenhost.c: --backend xen (SPEC 18.6).  xenhost_check: libxl opens and
 * xmig-save-helper is beside xmigd (0, or -1 with err).  xenhost_domains:
 * the host's guests but dom0 (NULL with err).  xenhost_source: a Xen
 * process for migrating guest NAME (NULL with err).  xenhost_recover: the
 * ends of migrations whose Xen process died.  xenproc_*: the child's side
 * (domain_spawn), ending with _exit.
 */
int	xenhost_check(char *err, size_t len);
json_object *xenhost_domains(char *err, size_t len);
struct domain *xenhost_source(const char *name, char *err, size_t len);
void	xenhost_recover(void);
int	xenhost_resume(const char *name, char *err, size_t len);
void	xenproc_set_tls(const struct xport_tls *t);
void	xenproc_source(int ctl, int lfd, const char *lpath, const char *name)
	    __attribute__((noreturn));
void	xenproc_receive(int ctl, int lfd, const char *lpath, int fd,
	    void *tls_ctx, const struct recv_opts *o, const char *busy)
	    __attribute__((noreturn));

/* evacuate.c: host evacuation and the memory budget */
void	evac_rpc(struct client *c, json_object *id, json_object *params);
/* An "evac-N" id in params: 0 answered, 1 not an evacuation id, -1 error. */
int	evac_rpc_status(struct client *c, json_object *id,
	    json_object *params);
int	evac_rpc_cancel(struct client *c, json_object *id,
	    json_object *params);
void	evac_answer(struct domain *d, char *rest);
void	evac_mig_end(const struct migration *m);
void	evac_client_gone(struct client *c);
/* recv_opts.max_memory for a new incoming domain process. */
uint64_t budget_max_memory(void);
void	budget_admit(struct domain *d, char *rest);

/* metrics.c: Prometheus text; --metrics tcp:127.0.0.1:PORT (0 or -1). */
char	*metrics_text(void);
int	metrics_listen(const char *uri);
void	metrics_close(void);

/* control.c */
void	client_send(struct client *c, json_object *o);
void	rpc_result(struct client *c, json_object *id, json_object *result);
void	rpc_error(struct client *c, json_object *id, int code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	client_free(struct client *c);
/* Bind PATH (mode 0660, group xmig when it exists): the fd, or -1. */
int	control_open(const char *path);
/* Serve the control API on the listening unix socket fd. */
int	control_start(int fd);

#endif
