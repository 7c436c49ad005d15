/*
 * test-streams.c -- the receiver's ordering rule (SPEC 13.6) on its own:
 * the per-pass barrier of lib/engine/streams.c.  Two "streams" write one
 * page: stream 0 carries the pass-2 copy, stream 1 is late with its
 * pass-1 copy.  The newest copy must win; without the barrier the old
 * copy would land last.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "streams.h"

static struct streams_bar bar;
static int page;			/* the one page both streams write */
static int s0_at_barrier;		/* stream 0 closed pass 1 */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void
msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Stream 0: nothing in pass 1, closes it, then the pass-2 copy. */
static void *
stream0(void *arg)
{
	int rc;

	(void)arg;
	pthread_mutex_lock(&mu);
	s0_at_barrier = 1;
	pthread_mutex_unlock(&mu);
	rc = streams_bar_close(&bar, 0, 1);
	if (rc == 0) {
		pthread_mutex_lock(&mu);
		page = 2;		/* pass 2's copy */
		pthread_mutex_unlock(&mu);
	}
	return (void *)(long)rc;
}

/* Stream 1: its pass-1 copy arrives only after stream 0 is waiting. */
static void *
stream1(void *arg)
{
	int at = 0;

	(void)arg;
	while (!at) {
		pthread_mutex_lock(&mu);
		at = s0_at_barrier;
		pthread_mutex_unlock(&mu);
		msleep(1);
	}
	msleep(50);			/* stream 0 would run ahead here */
	pthread_mutex_lock(&mu);
	page = 1;			/* pass 1's (older) copy */
	pthread_mutex_unlock(&mu);
	streams_bar_close(&bar, 1, 1);
	streams_bar_end(&bar, 1);
	return NULL;
}

static void *
closer(void *arg)
{
	return (void *)(long)streams_bar_close(&bar, 0, (unsigned)(long)arg);
}

int
main(void)
{
	pthread_t t0, t1;
	void *r0;

	/* The newest copy wins whatever the timing. */
	streams_bar_init(&bar, 2);
	pthread_create(&t0, NULL, stream0, NULL);
	pthread_create(&t1, NULL, stream1, NULL);
	pthread_join(t0, &r0);
	pthread_join(t1, NULL);
	CHECK((long)r0 == 0, "stream 0 passed its barrier (rc %ld)", (long)r0);
	CHECK(page == 2, "the page holds pass %d's copy, not pass 2's", page);
	streams_bar_destroy(&bar);

	/* A stream that ended releases the others. */
	streams_bar_init(&bar, 3);
	streams_bar_end(&bar, 1);
	streams_bar_end(&bar, 2);
	CHECK(streams_bar_close(&bar, 0, 7) == 0, "ended streams hold no one");
	streams_bar_destroy(&bar);

	/* A stream ahead passes at once once the others closed that pass. */
	streams_bar_init(&bar, 2);
	pthread_create(&t0, NULL, closer, (void *)3L);
	msleep(20);
	CHECK(streams_bar_close(&bar, 1, 3) == 0, "both closed pass 3");
	pthread_join(t0, &r0);
	CHECK((long)r0 == 0, "stream 0 released (rc %ld)", (long)r0);
	streams_bar_destroy(&bar);

	/* A failure (cancel) releases a waiting stream with -ECANCELED. */
	streams_bar_init(&bar, 2);
	pthread_create(&t0, NULL, closer, (void *)1L);
	msleep(20);
	streams_bar_cancel(&bar);
	pthread_join(t0, &r0);
	CHECK((long)r0 == -ECANCELED, "cancel: rc %ld", (long)r0);
	streams_bar_destroy(&bar);
	return tap_done();
}
