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
for p in migrate-send migrate-receive; do
	[ -x "$B/$p" ] || { echo "digest-cost: no $B/$p (build first)" >&2; exit 2; }
done

now_ms() { date +%s%3N; }
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("null" if v is None else v)' "$1" "$2"; }

run() { # run NAME DIGEST
	_n=$1 _dg=$2
	"$B/migrate-receive" --once --report json --digest "$_dg" \
	    --backend "sim:prefault=1" tcp:127.0.0.1:0 \
	    >"$T/$_n.recv" 2>"$T/$_n.rerr" &
	_p=$!
	while ! grep -q 'listening on' "$T/$_n.rerr" 2>/dev/null; do
		kill -0 $_p 2>/dev/null || { cat "$T/$_n.rerr" >&2; exit 1; }
		sleep 0.05
	done
	_d=$(sed -n 's/.*listening on tcp:\(.*\)/\1/p' "$T/$_n.rerr" | head -1)
	_t0=$(now_ms)
	"$B/migrate-send" --progress none --report json --digest "$_dg" \
	    "sim:mem=$MEM,mix=realistic,seed=7" "tcp:$_d" >"$T/$_n.send" \
	    2>"$T/$_n.serr" || { cat "$T/$_n.serr" >&2; exit 1; }
	wait $_p || { cat "$T/$_n.rerr" >&2; exit 1; }
	_t1=$(now_ms)
	_v=$(field "$T/$_n.send" verified)
	_h=$(field "$T/$_n.send" digest)
	case $_dg in
	none) [ "$_v" = null ] && [ "$_h" = null ] ;;
	*) [ "$_v" = True ] && [ "$_h" = "$_dg" ] ;;
	esac || { echo "digest-cost: $_n: verified=$_v digest=$_h" >&2; exit 1; }
	echo "$_dg $(field "$T/$_n.send" duration_ms) $((_t1 - _t0))" >>"$T/runs"
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
