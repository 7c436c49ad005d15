#!/bin/sh
# delta.sh [BUILD_DIR] -- what --delta (XBZRLE-style delta pages, SPEC
# 12.7) buys, in one run: the same live migration of a MEM sim domain
# whose workload rewrites HOT of it at DIRTY (each write changes 136 octets
# of a page: an 8-octet stamp and two 64-octet blocks), without and with
# --delta, first on a link capped with --bandwidth (default 125M, 1
# Gbit/s), then on open loopback.  The pre-copy runs to PASSES passes
# (--downtime-limit 0), so both runs send the same passes.
#
# Columns: time (the sender's duration_ms), wire MiB (octets on the wire),
# passes, delta pages, their mean delta in octets, and wire and time as a
# ratio of the run without --delta on the same link.
#
# Environment: MEM (default 1G), HOT (default 128M), DIRTY (default 256M),
# BW (default 125M), PASSES (default 6).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
HOT=${HOT:-128M}
DIRTY=${DIRTY:-256M}
BW=${BW:-125M}
PASSES=${PASSES:-6}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive

run() { # run NAME [sender options...]
	_r=$1; shift
	bench_migrate "$_r" "sim:mem=$MEM,hot=$HOT,dirty=$DIRTY,vcpus=4,seed=7" \
	    "--backend sim:prefault=1" --max-iterations "$PASSES" \
	    --downtime-limit 0 "$@"
	[ "$(bench_field "$T/$_r.send" verified)" = True ] ||
	    { echo "delta: $_r: not verified" >&2; exit 1; }
	echo "$_r $(bench_field "$T/$_r.send" duration_ms) $(bench_field "$T/$_r.send" bytes) $(bench_field "$T/$_r.send" iterations) $(bench_field "$T/$_r.send" delta_pages) $(bench_field "$T/$_r.send" delta_octets)" >>"$T/runs"
}

echo "delta: $MEM sim domain, $HOT hot rewritten at $DIRTY/s in 136-octet writes, $PASSES passes; link capped at $BW/s, then open loopback ($(nproc) CPUs)"
: >"$T/runs"
for link in capped open; do
	bw=""
	[ $link = capped ] && bw="--bandwidth $BW"
	# shellcheck disable=SC2086
	{
		run "$link-full" $bw
		run "$link-delta" $bw --delta
	}
done
python3 - "$T/runs" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
base = {r[0].split("-")[0]: (float(r[1]), float(r[2])) for r in rows
        if r[0].endswith("-full")}
print("%-14s %8s %9s %6s %9s %8s %7s %7s" % ("run", "time ms", "wire MiB",
      "passes", "d.pages", "d.mean", "wire x", "time x"))
for name, t, wire, it, dp, do in rows:
    t, wire, dp, do = float(t), float(wire), int(dp), float(do)
    bt, bw = base[name.split("-")[0]]
    print("%-14s %8.0f %9.1f %6s %9d %8.0f %7.3f %7.3f" % (name, t,
          wire / 2**20, it, dp, do / dp if dp else 0, wire / bw, t / bt))
PY
