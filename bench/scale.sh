#!/bin/sh
# scale.sh [BUILD_DIR] -- how xmig scales with the domain: the same live
# migration on loopback (no workload, destination warm: sim:prefault=1) of
# domains of SIZES (default "1G 4G 8G"), every page random so that all of
# a domain's memory is resident on both sides.
#
# Columns: time (the sender's duration_ms), s/GiB and its ratio to the
# first size's, sender overhead (its peak RSS less the domain: buffers,
# bitmaps, everything "in flight") and receiver overhead (the same on the
# receiver), from each side's report (peak_rss_kb).  Needs about twice the
# largest size in free memory (both sides live on this machine).
#
# Environment: SIZES.
set -eu
B=${1:-build}
SIZES=${SIZES:-1G 4G 8G}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive
echo "scale: $SIZES, random pages, loopback, destination warm ($(nproc) CPUs, $(free -g | awk '/Mem:/ {print $7}') GiB available)"
: >"$T/runs"
for m in $SIZES; do
	bench_migrate "$m" "sim:mem=$m,mix=random,seed=7" "--backend sim:prefault=1"
	[ "$(bench_field "$T/$m.send" verified)" = True ] ||
	    { echo "scale: $m: not verified" >&2; exit 1; }
	echo "$m $(bench_field "$T/$m.send" nr_pages) $(bench_field "$T/$m.send" duration_ms) $(bench_field "$T/$m.send" peak_rss_kb) $(bench_field "$T/$m.recv" peak_rss_kb)" >>"$T/runs"
done
python3 - "$T/runs" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print("%-6s %9s %7s %7s %14s %16s" % ("size", "time ms", "s/GiB", "ratio",
      "sender +MiB", "receiver +MiB"))
first = None
for m, pages, t, srss, rrss in rows:
    gib = int(pages) * 4096 / 2**30
    per = float(t) / 1000 / gib
    first = first or per
    dom = int(pages) * 4 # KiB
    print("%-6s %9.0f %7.2f %7.2f %14.0f %16.0f" % (m, float(t), per,
          per / first, (int(srss) - dom) / 1024, (int(rrss) - dom) / 1024))
PY
