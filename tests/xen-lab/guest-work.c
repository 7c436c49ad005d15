/*
 * guest-work: the workload inside a lab guest (tests/xen-lab).
 *
 * Built with `gcc -static`, exec'd by the guest initramfs's /init. It does
 * three things at once, in one thread, so that a migration that loses
 * anything shows up on the guest console:
 *
 *   - every 10 ms it prints "TICK <nonce> <n>" on stdout (hvc0), n strictly
 *     increasing from 0; the nonce is random per boot, so a guest that was
 *     rebooted instead of moved is told apart from the original;
 *   - it rewrites a buffer of pages (gw.mb= MiB, default 64) at gw.rate=
 *     pages per tick (default 64), each page stamped with (index, generation,
 *     nonce) every 64 bytes; before a page is rewritten it is checked, and a
 *     page that does not hold what was written last prints
 *       MISMATCH page=<i> want=<gen> got=<gen> word=<w>
 *     and each completed pass over all pages prints
 *       GW: PASS-DONE tick=<n> gen=<gen> mismatches=<count>
 *     (a lost dirty page during migration);
 *   - when its own CLOCK_MONOTONIC or CLOCK_BOOTTIME shows that more than 3
 *     ticks' worth of time passed between two ticks (the guest was paused,
 *     e.g. for the last copy of a migration) it prints
 *       GW: GAP <ms> tick=<n> boot_ms=<b> wall=<s.ms>
 *     before tick n (the dom0 console log's timestamps only have whole
 *     seconds).  <ms> is CLOCK_MONOTONIC's gap, which Linux stops while the
 *     domain is suspended (a Xen save/restore or migration suspends it):
 *     only the guest's own suspend and resume work shows there.  <b> is
 *     CLOCK_BOOTTIME's gap, which includes the suspended time (Linux adds
 *     it on resume from Xen's wall clock): the downtime the guest lived
 *     through.  wall= is CLOCK_REALTIME when the gap was seen, to line it up
 *     with dom0's clock;
 *   - every 10 ticks it writes the tick to its own xenstore node data/tick
 *     (relative path, i.e. /local/domain/<domid>/data/tick) over
 *     /dev/xen/xenbus, speaking the xenstore wire protocol: a header of four
 *     little-endian u32 (type, req_id, tx_id, len) then len payload bytes.
 *     XS_WRITE (11) carries "path\0value"; the reply is XS_WRITE "OK\0" or
 *     XS_ERROR (16) "<errno name>\0".
 *
 * gw.selftest=1 makes it lose one page write on purpose (after the first
 * full pass, page 1 gets its previous contents back), to prove that the
 * check and everything reading its MISMATCH lines can fail.
 *
 * Parameters are read from /proc/cmdline (gw.mb=, gw.rate=, gw.tick_ms=);
 * the kernel ignores dotted parameters it does not know.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define STRIDE 64u			/* bytes between stamped words */
#define XS_WRITE 11u
#define XS_ERROR 16u
#define XS_HDR 16u

struct cfg {
	unsigned long mb;
	unsigned long rate;
	unsigned long tick_ms;
	unsigned long selftest;
};

static uint64_t nonce;
static unsigned char *buf;
static uint32_t *gen;			/* generation last written, per page */
static size_t npages;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* one write per line, so lines never interleave */
	(void)!write(1, line, (size_t)n);
}

static unsigned long cmdline_ul(const char *cmdline, const char *key,
    unsigned long def, unsigned long lo, unsigned long hi)
{
	const char *p = cmdline;
	size_t kl = strlen(key);
	char *end;
	unsigned long v;

	while ((p = strstr(p, key)) != NULL) {
		if (p == cmdline || p[-1] == ' ') {
			errno = 0;
			v = strtoul(p + kl, &end, 10);
			if (errno == 0 && end != p + kl && v >= lo && v <= hi)
				return v;
			say("GW: ignoring bad %s (want %lu..%lu)\n", key, lo, hi);
			return def;
		}
		p += kl;
	}
	return def;
}

static void read_cfg(struct cfg *c)
{
	char cmdline[4096] = "";
	int fd = open("/proc/cmdline", O_RDONLY);

	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
		if (n > 0)
			cmdline[n] = '\0';
		close(fd);
	}
	c->mb = cmdline_ul(cmdline, "gw.mb=", 64, 1, 4096);
	c->rate = cmdline_ul(cmdline, "gw.rate=", 64, 1, 1u << 20);
	c->tick_ms = cmdline_ul(cmdline, "gw.tick_ms=", 10, 1, 10000);
	c->selftest = cmdline_ul(cmdline, "gw.selftest=", 0, 0, 1);
}

static uint64_t make_nonce(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY);

	if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
		    ((uint64_t)getpid() << 48);
	}
	if (fd >= 0)
		close(fd);
	return v ? v : 1;
}

/* The word stored at offset w*STRIDE of page i in generation g. */
static uint64_t stamp(size_t i, uint32_t g, unsigned w)
{
	return ((uint64_t)g << 32 | (uint64_t)i) ^ (nonce * (w + 1));
}

static void page_write(size_t i, uint32_t g)
{
	unsigned char *p = buf + i * PAGE;
	unsigned w;

	for (w = 0; w < PAGE / STRIDE; w++) {
		uint64_t v = stamp(i, g, w);
		memcpy(p + w * STRIDE, &v, sizeof(v));
	}
}

/* Returns 0 if page i holds generation g, else reports and returns -1. */
static int page_check(size_t i, uint32_t g)
{
	const unsigned char *p = buf + i * PAGE;
	unsigned w;

	for (w = 0; w < PAGE / STRIDE; w++) {
		uint64_t v;
		memcpy(&v, p + w * STRIDE, sizeof(v));
		if (v != stamp(i, g, w)) {
			/* decode the generation we did find, if it is ours */
			uint64_t raw = v ^ (nonce * (w + 1));
			if ((raw & 0xffffffffu) == i)
				say("MISMATCH page=%zu want=%u got=%u word=%u\n",
				    i, g, (unsigned)(raw >> 32), w);
			else
				say("MISMATCH page=%zu want=%u got=garbage:%016llx word=%u\n",
				    i, g, (unsigned long long)v, w);
			return -1;
		}
	}
	return 0;
}

/* ---- xenstore over /dev/xen/xenbus ------------------------------------ */

static int xs_fd = -1;
static uint32_t xs_req;
static unsigned xs_errors;

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static int xs_open(void)
{
	static const char *const paths[] = { "/dev/xen/xenbus", "/proc/xen/xenbus" };
	unsigned k;

	for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		xs_fd = open(paths[k], O_RDWR | O_CLOEXEC);
		if (xs_fd >= 0)
			return 0;
	}
	return -errno;
}

/* Write value at relative path; returns 0 or a negative errno. */
static int xs_write(const char *path, const char *value)
{
	unsigned char msg[XS_HDR + 256], reply[XS_HDR + 128];
	size_t pl = strlen(path) + 1, vl = strlen(value), got = 0;
	uint32_t id = ++xs_req, len;
	ssize_t n;

	if (pl + vl > sizeof(msg) - XS_HDR)
		return -EMSGSIZE;
	if (xs_fd < 0 && xs_open() < 0)
		return -ENODEV;
	put32(msg, XS_WRITE);
	put32(msg + 4, id);
	put32(msg + 8, 0);		/* no transaction */
	put32(msg + 12, (uint32_t)(pl + vl));
	memcpy(msg + XS_HDR, path, pl);
	memcpy(msg + XS_HDR + pl, value, vl);
	/* the device takes one whole message per write */
	n = write(xs_fd, msg, XS_HDR + pl + vl);
	if (n != (ssize_t)(XS_HDR + pl + vl))
		goto reset;
	while (got < XS_HDR) {
		n = read(xs_fd, reply + got, XS_HDR - got);
		if (n <= 0)
			goto reset;
		got += (size_t)n;
	}
	len = get32(reply + 12);
	if (len > sizeof(reply) - XS_HDR - 1)
		goto reset;
	while (got < XS_HDR + len) {
		n = read(xs_fd, reply + got, XS_HDR + len - got);
		if (n <= 0)
			goto reset;
		got += (size_t)n;
	}
	reply[got] = '\0';
	if (get32(reply + 4) != id)
		goto reset;
	if (get32(reply) == XS_ERROR) {
		if (xs_errors++ < 5)
			say("GW: xenstore write %s: %s\n", path,
			    (const char *)reply + XS_HDR);
		return -EIO;
	}
	return get32(reply) == XS_WRITE ? 0 : -EPROTO;
reset:
	/* lost sync with the device: reopen next time */
	if (xs_errors++ < 5)
		say("GW: xenstore device error (%s), reopening\n",
		    n < 0 ? strerror(errno) : "short or odd reply");
	close(xs_fd);
	xs_fd = -1;
	return -EIO;
}

/* ---- main loop ------------------------------------------------------------ */

int main(void)
{
	struct cfg c;
	struct timespec dt, last, lastb;
	size_t next = 0;
	uint64_t n;
	unsigned long bad = 0;
	int xs_ok = 0;

	read_cfg(&c);
	nonce = make_nonce();
	npages = (size_t)c.mb * 1024 * 1024 / PAGE;
	buf = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	if (buf == MAP_FAILED || gen == NULL) {
		say("GW: FATAL cannot allocate %lu MiB\n", c.mb);
		return 1;
	}
	for (size_t i = 0; i < npages; i++)
		page_write(i, 0);
	say("GW: START nonce=%016llx mb=%lu pages=%zu rate=%lu tick_ms=%lu\n",
	    (unsigned long long)nonce, c.mb, npages, c.rate, c.tick_ms);
	if (xs_open() < 0)
		say("GW: no xenbus device yet (%s)\n", strerror(errno));

	dt.tv_sec = (time_t)(c.tick_ms / 1000);
	dt.tv_nsec = (long)(c.tick_ms % 1000) * 1000000L;
	clock_gettime(CLOCK_MONOTONIC, &last);
	clock_gettime(CLOCK_BOOTTIME, &lastb);
	for (n = 0;; n++) {
		unsigned long k;
		struct timespec now, nowb, wall;
		long long ms, bms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		clock_gettime(CLOCK_BOOTTIME, &nowb);
		ms = (long long)(now.tv_sec - last.tv_sec) * 1000 +
		    (now.tv_nsec - last.tv_nsec) / 1000000;
		bms = (long long)(nowb.tv_sec - lastb.tv_sec) * 1000 +
		    (nowb.tv_nsec - lastb.tv_nsec) / 1000000;
		last = now;
		lastb = nowb;
		if (n > 0 && (ms > 3 * (long long)c.tick_ms ||
		    bms > 3 * (long long)c.tick_ms)) {
			clock_gettime(CLOCK_REALTIME, &wall);
			say("GW: GAP %lld tick=%llu boot_ms=%lld wall=%lld.%03ld\n",
			    ms, (unsigned long long)n, bms,
			    (long long)wall.tv_sec, wall.tv_nsec / 1000000);
		}
		say("TICK %016llx %llu\n", (unsigned long long)nonce,
		    (unsigned long long)n);
		for (k = 0; k < c.rate; k++) {
			if (page_check(next, gen[next]) < 0)
				bad++;
			gen[next]++;
			if (c.selftest && next == 1 && gen[next] == 2)
				/* a lost write: the page keeps generation 1 */
				say("GW: SELFTEST dropping the write of page 1 gen 2\n");
			else
				page_write(next, gen[next]);
			if (++next == npages) {
				next = 0;
				say("GW: PASS-DONE tick=%llu gen=%u mismatches=%lu\n",
				    (unsigned long long)n, gen[0], bad);
			}
		}
		if (n % 10 == 0) {
			char v[32];
			snprintf(v, sizeof(v), "%llu", (unsigned long long)n);
			if (xs_write("data/tick", v) == 0 && !xs_ok) {
				xs_ok = 1;
				say("GW: xenstore data/tick written\n");
			}
		}
		/* relative sleep: after a pause the count simply goes on */
		nanosleep(&dt, NULL);
	}
}
