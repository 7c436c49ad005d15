#!/bin/sh
# compress.sh [BUILD_DIR] -- what compression buys on a capped link and
# costs on an open one, in one run: the same live migration of a MEM sim
# domain of the realistic mix (about 1/4 zero pages, elided in every case,
# 1/4 text, 1/2 random) with --compress none, zstd (adaptive), zstd with
# --compress-always and zlib, first on a link capped with --bandwidth
# (default 125M, 1 Gbit/s), then on open loopback.
#
# Columns: time (the sender's duration_ms), wire MiB (page data as sent),
# compressed (the share of page data sent compressed) and time / time
# without compression on the same link.  With half the pages random, no
# compressor can go below about 0.69 of the uncompressed time on the capped
# link (the random half must cross it as it is).
#
# Environment: MEM (default 1G), BW (default 125M).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
BW=${BW:-125M}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive

run() { # run NAME [sender options...]
	_r=$1; shift
	bench_migrate "$_r" "sim:mem=$MEM,mix=realistic,seed=7" \
	    "--backend sim:prefault=1" "$@"
	[ "$(bench_field "$T/$_r.send" verified)" = True ] ||
	    { echo "compress: $_r: not verified" >&2; exit 1; }
	echo "$_r $(bench_field "$T/$_r.send" duration_ms) $(bench_field "$T/$_r.send" page_wire_octets) $(bench_field "$T/$_r.send" page_compressed_octets) $(bench_field "$T/$_r.send" page_octets)" >>"$T/runs"
}

echo "compress: $MEM of the realistic mix, link capped at $BW/s, then open loopback ($(nproc) CPUs)"
: >"$T/runs"
for link in capped open; do
	bw=""
	[ $link = capped ] && bw="--bandwidth $BW"
	# shellcheck disable=SC2086
	{
		run "$link-none" $bw
		run "$link-zstd" $bw --compress zstd
		run "$link-zstd-always" $bw --compress zstd --compress-always
		run "$link-zlib" $bw --compress zlib
	}
done
python3 - "$T/runs" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
base = {r[0].split("-")[0]: float(r[1]) for r in rows if r[0].endswith("-none")}
print("%-20s %9s %9s %11s %8s" % ("run", "time ms", "wire MiB", "compressed", "vs none"))
for name, t, wire, comp, raw in rows:
    t, wire, comp, raw = float(t), float(wire), float(comp), float(raw)
    print("%-20s %9.0f %9.1f %10.0f%% %8.2f" % (name, t, wire / 2**20,
          100 * comp / raw if raw else 0, t / base[name.split("-")[0]]))
PY
