#!/bin/sh
# datapath.sh [BUILD_DIR] -- the cost of moving page data, in one run: a
# migration of a MEM sim domain of random pages (nothing to elide or
# compress) over open loopback into a prefaulted destination (sim:
# prefault=1, a warm target), RUNS times each of live (dirty=0: one pass)
# and --no-live, with draft-B checksums on.  Prints the sender's and the
# receiver's duration_ms and the page throughput.
#
# With PERF=DIR set, each side of the first live run is recorded with
# `perf record -g` into DIR/send.data and DIR/recv.data, and the top
# symbols of each (perf report --no-children) are printed.
#
# Environment: MEM (default 1G), RUNS (default 3), PERF (unset).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
RUNS=${RUNS:-3}
PERF=${PERF:-}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive

# Under perf the programs are wrapped: bench_migrate runs $B/NAME.
if [ -n "$PERF" ]; then
	mkdir -p "$PERF" "$T/perf"
	for _p in migrate-send migrate-receive; do
		_w=send; [ $_p = migrate-receive ] && _w=recv
		printf '#!/bin/sh\nexec perf record -q -g -o %s/%s.data %s/%s "$@"\n' \
		    "$PERF" "$_w" "$(cd "$B" && pwd)" "$_p" >"$T/perf/$_p"
		chmod +x "$T/perf/$_p"
	done
fi

run() { # run NAME [sender options...]
	_r=$1; shift
	bench_migrate "$_r" "sim:mem=$MEM,mix=random,dirty=0,seed=7" \
	    "--backend sim:prefault=1" "$@"
	[ "$(bench_field "$T/$_r.send" verified)" = True ] ||
	    { echo "datapath: $_r: not verified" >&2; exit 1; }
	echo "$_r $(bench_field "$T/$_r.send" duration_ms) $(bench_field "$T/$_r.recv" duration_ms) $(bench_field "$T/$_r.send" page_octets)" >>"$T/runs"
}

echo "datapath: $MEM of random pages, open loopback, $RUNS runs each ($(nproc) CPUs)"
: >"$T/runs"
if [ -n "$PERF" ]; then
	_b=$B; B=$T/perf
	run perf-live
	B=$_b
	for _w in send recv; do
		echo "--- top symbols, migrate-$_w (perf report --no-children)"
		perf report -i "$PERF/$_w.data" --no-children --percent-limit 2 \
		    --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
		    head -12
	done
fi
i=1
while [ "$i" -le "$RUNS" ]; do
	run "live-$i"
	run "nolive-$i" --no-live
	i=$((i + 1))
done
python3 - "$T/runs" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print("%-12s %9s %9s %9s" % ("run", "send ms", "recv ms", "MiB/s"))
for name, ts, tr, raw in rows:
    ts, tr, raw = float(ts), float(tr), float(raw)
    print("%-12s %9.0f %9.0f %9.0f" % (name, ts, tr, raw / 2**20 / (ts / 1e3)))
PY
