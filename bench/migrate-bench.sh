#!/bin/sh
# migrate-bench.sh [BUILD_DIR] -- throughput and downtime on loopback, all
# figures from one run so that they can be compared with each other:
#   raw TCP (iperf3) beside xmig with and without checksums, both dialects,
#   receiver memory cold (fresh) and prefaulted (sim prefault=1), and the
#   downtime at dirty rates of 0, 16, 64 and 256 MB/s over a 256 MiB hot set.
# Environment: MEM (default 1G).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM

receiver() { # receiver NAME [backend-spec]
	"$B/migrate-receive" --once --report json --backend "${2:-sim}" \
	    tcp:127.0.0.1:0 >"$T/$1.recv" 2>"$T/$1.rerr" &
	while ! grep -q 'listening on' "$T/$1.rerr" 2>/dev/null; do sleep 0.05; done
	sed -n 's/.*listening on //p' "$T/$1.rerr" | head -1
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# -- raw TCP ---------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
sleep 0.5
bytes=$(python3 -c "
import sys
u={'K':1<<10,'M':1<<20,'G':1<<30}; s='$MEM'
print(int(float(s[:-1])*u[s[-1]]) if s[-1] in u else int(s))")
raw=$(iperf3 -c 127.0.0.1 -p "$port" -n "$bytes" -J | python3 -c '
import json,sys; j=json.load(sys.stdin); print("%.0f" % (j["end"]["sum_received"]["bits_per_second"]/1e6))')
echo "raw TCP (iperf3, $MEM):                    $raw Mbit/s"

run() { # run NAME BACKEND-SPEC DOMAIN [send options...]
	rn=$1; rspec=$2; rdom=$3; shift 3
	dest=$(receiver "$rn" "$rspec")
	"$B/migrate-send" --progress none --report json "$@" "$rdom" "$dest" >"$T/$rn.send"
	wait
	if [ "$(field "$T/$rn.send" memory_sha256)" != "$(field "$T/$rn.recv" memory_sha256)" ]; then
		echo "$rn: DIGEST MISMATCH" >&2; exit 1
	fi
}
ratio() { python3 -c "print('%.0f%%' % (100.0*$1/$2))"; }

for mode in cold warm; do
	spec=sim
	[ $mode = warm ] && spec=sim:prefault=1
	for v in "draftb-crc" "draftb-nocrc --no-checksum" "xen --format xen"; do
		set -- $v
		name=$1; shift
		run "$mode-$name" "$spec" "sim:mem=$MEM,seed=3" "$@"
		tp=$(field "$T/$mode-$name.send" throughput_mbps)
		printf 'xmig %-12s receiver %-4s %8.0f Mbit/s  (%s of raw TCP)\n' \
		    "$name" "$mode" "$tp" "$(ratio "$tp" "$raw")"
	done
done

echo "downtime, $MEM domain, 256 MiB hot set, limit 300 ms (default):"
for rate in 0 16M 64M 256M; do
	run "dirty-$rate" sim "sim:mem=$MEM,vcpus=4,dirty=$rate,hot=256M,seed=5"
	printf '  dirty %-5s  passes %-3s downtime %8.1f ms  total %7.0f ms  pages sent %s\n' \
	    "$rate" "$(field "$T/dirty-$rate.send" iterations)" \
	    "$(field "$T/dirty-$rate.send" downtime_ms)" \
	    "$(field "$T/dirty-$rate.send" duration_ms)" \
	    "$(field "$T/dirty-$rate.send" pages_sent)"
done
