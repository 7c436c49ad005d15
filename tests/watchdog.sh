#!/bin/sh
# watchdog.sh -- run one test under a deadline (make check's LOG_COMPILER).
#
#   sh tests/watchdog.sh PROGRAM [ARGS...]
#
# A test that hangs would otherwise hold make check until CI's own limit and
# leave nothing to read.  Past XMIG_TEST_TIMEOUT seconds (default 1200) the
# watchdog prints every thread's backtrace of the test's process tree (gdb
# when installed, else each process's wchan), kills the tree (the test exits 137),
# so the test fails by name with its stacks in its log.
set -u

limit=${XMIG_TEST_TIMEOUT:-1200}

# The process tree under $1, parents first.
tree() {
	echo "$1"
	for c in $(pgrep -P "$1"); do
		tree "$c"
	done
}

"$@" &
pid=$!
(
	t=0
	while [ "$t" -lt "$limit" ]; do
		sleep 1
		kill -0 "$pid" 2>/dev/null || exit 0
		t=$((t + 1))
	done
	echo "watchdog: $* still runs after $limit s; stacks follow" >&2
	pids=$(tree "$pid")
	for p in $pids; do
		echo "watchdog: pid $p: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)" >&2
		if command -v gdb >/dev/null 2>&1; then
			gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 |
			    grep -v '^\[New LWP\|^\[Thread debugging\|libthread_db' >&2
		else
			echo "watchdog:   wchan $(cat /proc/"$p"/wchan 2>/dev/null)" >&2
		fi
	done
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
) &
dog=$!
wait "$pid"
rc=$?
kill "$dog" 2>/dev/null
wait "$dog" 2>/dev/null
exit "$rc"
