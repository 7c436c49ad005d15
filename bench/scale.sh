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
for p in migrate-send migrate-receive; do
	[ -x "$B/$p" ] || { echo "scale: no $B/$p (build first)" >&2; exit 2; }
done
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(0 if v is None else v)' "$1" "$2"; }
echo "scale: $SIZES, random pages, loopback, destination warm ($(nproc) CPUs, $(free -g | awk '/Mem:/ {print $7}') GiB available)"
: >"$T/runs"
for m in $SIZES; do
	"$B/migrate-receive" --once --report json --backend sim:prefault=1 \
	    tcp:127.0.0.1:0 >"$T/$m.recv" 2>"$T/$m.rerr" &
	p=$!
	while ! grep -q 'listening on' "$T/$m.rerr" 2>/dev/null; do
		kill -0 $p 2>/dev/null || { cat "$T/$m.rerr" >&2; exit 1; }
		sleep 0.05
	done
	d=$(sed -n 's/.*listening on tcp:\(.*\)/\1/p' "$T/$m.rerr" | head -1)
	"$B/migrate-send" --progress none --report json \
	    "sim:mem=$m,mix=random,seed=7" "tcp:$d" >"$T/$m.send" \
	    2>"$T/$m.serr" || { cat "$T/$m.serr" >&2; exit 1; }
	wait $p || { cat "$T/$m.rerr" >&2; exit 1; }
	[ "$(field "$T/$m.send" verified)" = True ] ||
	    { echo "scale: $m: not verified" >&2; exit 1; }
	echo "$m $(field "$T/$m.send" nr_pages) $(field "$T/$m.send" duration_ms) $(field "$T/$m.send" peak_rss_kb) $(field "$T/$m.recv" peak_rss_kb)" >>"$T/runs"
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
