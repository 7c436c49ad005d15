#!/bin/sh
# digest-cost.sh [BUILD_DIR] -- what end-to-end verification costs: the same
# live migration of a MEM sim domain (realistic mix, no workload) on
# loopback, destination memory warm (sim:prefault=1), with --digest none,
# xxh3-128 and sha256, ROUNDS times each, interleaved so that the machine's
# noise falls on all three alike.
#
# For each run: the sender's duration_ms (connect to the end, the receiver's
# DIGESTS included: the sender waits for them to compare) and the wall time
# of the whole pair (sender start to receiver exit, the receiver's digest
# included).  The table gives the medians, and the cost of each hash as
# (median time with it / median time with none) - 1.
#
# Environment: MEM (default 1G), ROUNDS (default 3).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
ROUNDS=${ROUNDS:-3}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive
now_ms() { date +%s%3N; }

run() { # run NAME DIGEST
	_r=$1 _dg=$2
	_t0=$(now_ms)
	bench_migrate "$_r" "sim:mem=$MEM,mix=realistic,seed=7" \
	    "--digest $_dg --backend sim:prefault=1" --digest "$_dg"
	_t1=$(now_ms)
	_v=$(bench_field "$T/$_r.send" verified)
	_h=$(bench_field "$T/$_r.send" digest)
	case $_dg in
	none) [ "$_v" = 0 ] && [ "$_h" = 0 ] ;;
	*) [ "$_v" = True ] && [ "$_h" = "$_dg" ] ;;
	esac || { echo "digest-cost: $_r: verified=$_v digest=$_h" >&2; exit 1; }
	echo "$_dg $(bench_field "$T/$_r.send" duration_ms) $((_t1 - _t0))" >>"$T/runs"
}

echo "digest-cost: $MEM, $ROUNDS rounds of none / xxh3-128 / sha256 ($(nproc) CPUs)"
: >"$T/runs"
i=1
while [ $i -le "$ROUNDS" ]; do
	for dg in none xxh3-128 sha256; do
		run "r$i-$dg" "$dg"
	done
	i=$((i + 1))
done
python3 - "$T/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    dg, dur, wall = line.split()
    runs.setdefault(dg, []).append((float(dur), float(wall)))
base = [statistics.median(x[i] for x in runs["none"]) for i in (0, 1)]
print("%-9s %12s %12s %10s %10s" % ("digest", "sender ms", "pair ms",
                                     "cost send", "cost pair"))
for dg in ("none", "xxh3-128", "sha256"):
    m = [statistics.median(x[i] for x in runs[dg]) for i in (0, 1)]
    print("%-9s %12.0f %12.0f %9.1f%% %9.1f%%" % (dg, m[0], m[1],
          100 * (m[0] / base[0] - 1), 100 * (m[1] / base[1] - 1)))
PY
