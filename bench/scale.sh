#!/bin/sh
# scale.sh [BUILD_DIR [SIZE...]] -- how xmig scales with the domain: the
# same live migration on loopback (one stream, checksums on, no workload)
# of domains of SIZE (default "1G 4G 8G", or SIZES), every page random so
# that all of a domain's memory is resident on both sides, with the
# destination warm (sim:prefault=1: the receiver touches the domain's
# memory on a thread from NEGOTIATE on, ahead of the data) and cold (plain
# sim: fresh memory, faulted in by the copy), MODES (default "warm cold").
#
# Columns, one row per size and mode:
#   time ms     the sender's duration_ms (connect to the receiver's RUNNING)
#   s/GiB       time per GiB of domain; "x first" its ratio to the first
#               size's in the same mode (the target: <= 1.1 at 8 GiB)
#   CPU s/GiB   the CPU time (user + system) per GiB that the migration took
#               in the sender (from its connect on: the fill of its memory
#               before it is left out) and in the receiver (all of it, the
#               prefault thread included).  On a shared machine wall time
#               follows the load; CPU time per GiB does not, and says
#               whether the work per GiB grows with the size.
#   send +MiB   the sender's peak RSS less the domain: everything it holds
#               besides the guest's memory, its output buffer (the memory
#               in flight, bounded by the engine at 16 MiB plus one record)
#               included.  The target: <= 64 MiB.
#   recv +MiB   the same for the receiver (the target: <= 64 MiB).
#   load        the 1-minute load average when the run started.
# Needs about twice the largest size in free memory (both sides live on
# this machine); 1+4+8 GiB warm and cold take 3-6 minutes on 2 loaded cores.
#
# Environment: SIZES, MODES, SIM (extra sim: options for both sides, e.g.
# thp=1).
set -eu
B=${1:-build}
[ $# -gt 0 ] && shift
SIZES=${*:-${SIZES:-1G 4G 8G}}
MODES=${MODES:-warm cold}
SIM=${SIM:-}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
bench_need migrate-send migrate-receive
command -v /usr/bin/time >/dev/null 2>&1 ||
    { echo "scale: needs /usr/bin/time (GNU time)" >&2; exit 2; }
echo "scale: $SIZES ($MODES), random pages, loopback, one stream, checksums" \
    "on; $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $7}') GiB available," \
    "THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"

# cpu_ticks PID: user + system clock ticks of PID so far (0 if gone).
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# run NAME MEM RECEIVER_SIM: one migration; appends a row to $T/runs.
run() {
	_n=$1 _m=$2 _rs=$3
	_load=$(cut -d' ' -f1 /proc/loadavg)
	/usr/bin/time -f "%U %S" -o "$T/$_n.rcpu" "$B/migrate-receive" \
	    --once --report json -v --backend "sim${_rs:+:$_rs}" tcp:127.0.0.1:0 \
	    >"$T/$_n.recv" 2>"$T/$_n.rerr" &
	_rp=$!
	while ! grep -q 'listening on' "$T/$_n.rerr" 2>/dev/null; do
		kill -0 $_rp 2>/dev/null || { cat "$T/$_n.rerr" >&2; exit 1; }
		sleep 0.05
	done
	_d=$(sed -n 's/.*listening on tcp:\(.*\)/\1/p' "$T/$_n.rerr" | head -1)
	/usr/bin/time -f "%U %S" -o "$T/$_n.scpu" "$B/migrate-send" \
	    --progress none --report json \
	    "sim:mem=$_m,mix=random,seed=7${SIM:+,$SIM}" "tcp:$_d" \
	    >"$T/$_n.send" 2>"$T/$_n.serr" &
	_sp=$!
	# The sender's CPU before it connects (filling its memory): sampled
	# when the receiver reads its header, to within a poll.
	_fill=0 _c=
	while kill -0 $_sp 2>/dev/null; do
		[ -n "$_c" ] || _c=$(pgrep -P $_sp migrate-send || true)
		if [ -n "$_c" ] && grep -q recv_header_cb "$T/$_n.rerr"; then
			_fill=$(cpu_ticks "$_c")
			break
		fi
		sleep 0.05
	done
	wait $_sp || { cat "$T/$_n.serr" "$T/$_n.rerr" >&2; exit 1; }
	wait $_rp || { cat "$T/$_n.rerr" >&2; exit 1; }
	[ "$(bench_field "$T/$_n.send" verified)" = True ] ||
	    { echo "scale: $_n: not verified" >&2; exit 1; }
	echo "$_n $(bench_field "$T/$_n.send" nr_pages)" \
	    "$(bench_field "$T/$_n.send" duration_ms)" \
	    "$(bench_field "$T/$_n.send" peak_rss_kb)" \
	    "$(bench_field "$T/$_n.recv" peak_rss_kb)" \
	    "$(cat "$T/$_n.scpu" | tail -1) $_fill $(getconf CLK_TCK)" \
	    "$(cat "$T/$_n.rcpu" | tail -1) $_load" >>"$T/runs"
}

: >"$T/runs"
for m in $SIZES; do
	for mode in $MODES; do
		case $mode in
		warm)	run "$m-warm" "$m" "prefault=1${SIM:+,$SIM}" ;;
		cold)	run "$m-cold" "$m" "${SIM:-}" ;;
		*)	echo "scale: mode $mode: warm or cold" >&2; exit 2 ;;
		esac
	done
done
python3 - "$T/runs" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print("%-9s %8s %6s %7s %10s %10s %9s %9s %5s" % ("size", "time ms",
      "s/GiB", "x first", "CPU send", "CPU recv", "send +MiB", "recv +MiB",
      "load"))
print("%-9s %8s %6s %7s %10s %10s %9s %9s %5s" % ("", "", "", "",
      "s/GiB", "s/GiB", "", "", ""))
first = {}
for (name, pages, t, srss, rrss, su, ss, fill, hz, ru, rs, load) in rows:
    mode = name.split("-")[1]
    gib = int(pages) * 4096 / 2**30
    per = float(t) / 1000 / gib
    first.setdefault(mode, per)
    dom = int(pages) * 4  # KiB
    scpu = (float(su) + float(ss) - int(fill) / int(hz)) / gib
    rcpu = (float(ru) + float(rs)) / gib
    print("%-9s %8.0f %6.2f %7.2f %10.2f %10.2f %9.0f %9.0f %5s" % (name,
          float(t), per, per / first[mode], scpu, rcpu,
          (int(srss) - dom) / 1024, (int(rrss) - dom) / 1024, load))
PY
