#!/bin/sh
# datapath.sh [BUILD_DIR...] -- the cost of moving page data, in one run: a
# migration of a MEM sim domain of random pages (nothing to elide or
# compress) over open loopback into a prefaulted destination (sim:
# prefault=1, a warm target), live (dirty=0: one pass) and --no-live, with
# draft-B checksums on, RUNS times each; with several build directories
# (e.g. a build before and after a change), their runs alternate.
#
# Columns: the sender's duration_ms, the CPU seconds (user + system) of
# each process as /usr/bin/time measured them, and the page throughput.
# The receiver mostly waits for the sender on loopback (the sim source
# fills its memory first): its CPU time is the figure to compare.
#
# With PERF=DIR set, each side of one more live run per build directory is
# recorded with `perf record -g` into DIR/N-send.data and DIR/N-recv.data
# (N: the build's position), and the top symbols of each (perf report
# --no-children, 2% and more) are printed.
#
# Environment: MEM (default 1G), RUNS (default 3), PERF (unset).
set -eu
[ $# -gt 0 ] || set -- build
MEM=${MEM:-1G}
RUNS=${RUNS:-3}
PERF=${PERF:-}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
[ -x /usr/bin/time ] || { echo "$0: needs /usr/bin/time" >&2; exit 2; }

# wrap N DIR [perf]: $T/wN/ holds migrate-send and migrate-receive that
# run DIR's under /usr/bin/time (into $T/$RUN.{send,recv}.cpu), or perf.
wrap() {
	mkdir -p "$T/w$1"
	for _p in migrate-send migrate-receive; do
		_s=send; [ $_p = migrate-receive ] && _s=recv
		if [ "${3:-}" = perf ]; then
			printf '#!/bin/sh\nexec perf record -q -g -o %s/%s-%s.data %s/%s "$@"\n' \
			    "$PERF" "$1" $_s "$2" $_p >"$T/w$1/$_p"
		else
			printf '#!/bin/sh\nexec /usr/bin/time -o "%s/$RUN.%s.cpu" -f "%%U %%S" %s/%s "$@"\n' \
			    "$T" $_s "$2" $_p >"$T/w$1/$_p"
		fi
		chmod +x "$T/w$1/$_p"
	done
}

run() { # run NAME [sender options...]
	RUN=$1; export RUN; shift
	bench_migrate "$RUN" "sim:mem=$MEM,mix=random,dirty=0,seed=7" \
	    "--backend sim:prefault=1" "$@"
	[ "$(bench_field "$T/$RUN.send" verified)" = True ] ||
	    { echo "datapath: $RUN: not verified" >&2; exit 1; }
	[ -f "$T/$RUN.send.cpu" ] || return 0
	echo "$RUN $(bench_field "$T/$RUN.send" duration_ms) $(tail -1 "$T/$RUN.send.cpu") $(tail -1 "$T/$RUN.recv.cpu") $(bench_field "$T/$RUN.send" page_octets)" >>"$T/runs"
}

echo "datapath: $MEM of random pages, open loopback, $RUNS runs each ($(nproc) CPUs)"
n=0
for d in "$@"; do
	n=$((n + 1))
	B=$d; bench_need migrate-send migrate-receive
	wrap $n "$(cd "$d" && pwd)"
	echo "build $n: $d"
done
: >"$T/runs"
if [ -n "$PERF" ]; then
	mkdir -p "$PERF"
	n=0
	for d in "$@"; do
		n=$((n + 1))
		wrap "p$n" "$(cd "$d" && pwd)" perf
		B=$T/wp$n; run "$n-perf"
		for _s in send recv; do
			echo "--- build $n, top symbols of migrate-$_s"
			perf report -i "$PERF/p$n-$_s.data" --no-children \
			    --percent-limit 2 --stdio -g none 2>/dev/null |
			    grep -v '^#' | grep -v '^$' | head -12
		done
	done
fi
i=1
while [ "$i" -le "$RUNS" ]; do
	n=0
	for d in "$@"; do
		n=$((n + 1))
		B=$T/w$n
		run "$n-live-$i"
		run "$n-nolive-$i" --no-live
	done
	i=$((i + 1))
done
python3 - "$T/runs" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print("%-12s %8s %9s %9s %8s" % ("run", "send ms", "send cpu", "recv cpu", "MiB/s"))
tot = {}
for name, ms, su, ss, ru, rs, raw in rows:
    ms, raw = float(ms), float(raw)
    sc, rc = float(su) + float(ss), float(ru) + float(rs)
    print("%-12s %8.0f %8.2fs %8.2fs %8.0f" % (name, ms, sc, rc, raw / 2**20 / (ms / 1e3)))
    k = (name.split("-")[0], name.split("-")[1])
    t = tot.setdefault(k, [0, 0, 0, 0])
    t[0] += ms; t[1] += sc; t[2] += rc; t[3] += 1
print("mean per build and mode:")
for (b, mode), (ms, sc, rc, n) in sorted(tot.items()):
    print("  build %s %-7s send %6.0f ms, send cpu %5.2f s, recv cpu %5.2f s" % (b, mode, ms / n, sc / n, rc / n))
PY
