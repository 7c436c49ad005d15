#!/bin/sh
# streams.sh [BUILD_DIR] -- what data streams (migrate-send --streams N,
# SPEC 13.6) buy, in one run: the same live migration of an idle MEM sim
# domain of random pages (nothing to elide), on loopback, over tcp: and
# over tls:, with N = 1, 2 and 4 connections, REPS times each (the best
# time kept: the machine is shared).
#
# Columns: time (the sender's duration_ms, best of REPS), MiB/s of guest
# memory, and the time of N = 1 over this time (the speed-up).  The extra
# connections only help when there are idle CPUs for their threads: on
# loopback both ends share the machine's CPUs, so with C CPUs the sender's
# and the receiver's workers compete for them (the figure printed says
# how many there are).
#
# Environment: MEM (default 1G), REPS (default 3), STREAMS (default "1 2 4").
set -eu
B=${1:-build}
MEM=${MEM:-1G}
REPS=${REPS:-3}
STREAMS=${STREAMS:-1 2 4}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive

P=$T/pki
sh "$(dirname "$0")/../tests/tls-certs.sh" "$P" >"$T/pki.log" 2>&1 ||
    { cat "$T/pki.log" >&2; exit 1; }
RTLS="--tls-cert $P/server.pem --tls-key $P/server.key --tls-ca $P/ca1.pem"
STLS="--tls-cert $P/client.pem --tls-key $P/client.key --tls-ca $P/ca1.pem"

# one NAME PROTO N: a migration; its time in $T/runs.
one() {
	_n=$1 _proto=$2 _s=$3
	_ro="" _so=""
	[ "$_proto" = tls ] && { _ro=$RTLS; _so=$STLS; }
	# shellcheck disable=SC2086
	BENCH_SCHEME=$_proto bench_migrate "$_n" \
	    "sim:mem=$MEM,mix=random,seed=3" "--backend sim:prefault=1 $_ro" \
	    $_so --streams "$_s"
	[ "$(bench_field "$T/$_n.send" verified)" = True ] ||
	    { echo "streams: $_n: not verified" >&2; exit 1; }
	[ "$(bench_field "$T/$_n.send" streams)" = "$_s" ] ||
	    { echo "streams: $_n: ran on $(bench_field "$T/$_n.send" streams) streams, not $_s" >&2; exit 1; }
	echo "$_proto $_s $(bench_field "$T/$_n.send" duration_ms)" >>"$T/runs"
}

echo "streams: live migration of an idle $MEM sim domain (random pages), loopback, $(nproc) CPUs, best of $REPS"
: >"$T/runs"
r=1
while [ "$r" -le "$REPS" ]; do
	for proto in tcp tls; do
		for s in $STREAMS; do
			one "$proto-$s-$r" "$proto" "$s"
		done
	done
	r=$((r + 1))
done
python3 - "$T/runs" "$MEM" <<'PY'
import sys
best = {}
for proto, n, t in (l.split() for l in open(sys.argv[1])):
    k = (proto, int(n))
    best[k] = min(best.get(k, float("inf")), float(t))
units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
m = sys.argv[2]
mem = float(m[:-1]) * units[m[-1]] if m[-1] in units else float(m)
print("%-6s %8s %9s %9s %10s" % ("proto", "streams", "time ms", "MiB/s", "vs 1"))
for (proto, n), t in sorted(best.items()):
    base = best.get((proto, 1))
    print("%-6s %8d %9.0f %9.0f %10s" % (proto, n, t, mem / 2**20 / (t / 1e3),
          "%.2fx" % (base / t) if base else "-"))
PY
