#!/bin/sh
# migrate-bench.sh [BUILD_DIR] -- throughput and downtime on loopback; all
# figures come from one run, so compare them with each other, not with
# another run (these machines are noisy).
#
#   raw TCP      iperf3 over loopback (no fresh memory touched), and a plain
#                copy of the same octets into freshly mapped memory (what
#                a receiver pays on this VM the first time memory is touched)
#   xmig         draft-B with and without checksums, Xen dialect, TLS,
#                TLS + zlib; receiver memory cold (fresh) and warm
#                (prefaulted from XMIG_NEGOTIATE's announced size while the
#                sender starts: sim prefault=1)
#   zero pages   the share of pages sent without data and the page octets
#   downtime     at dirty rates of 0, 16, 64 and 256 MB/s over a 256 MiB hot
#                set (default downtime limit, 300 ms)
#
# Environment: MEM (default 1G).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
top=$(cd "$(dirname "$0")/.." && pwd)
sh "$top/tests/tls-certs.sh" "$T/pki" >/dev/null 2>&1
RTLS="--tls-cert $T/pki/server.pem --tls-key $T/pki/server.key --tls-ca $T/pki/ca1.pem"
STLS="--tls-cert $T/pki/client.pem --tls-key $T/pki/client.key --tls-ca $T/pki/ca1.pem --tls-peer localhost"

receiver() { # receiver NAME SCHEME [receiver options...]
	_n=$1; _sch=$2; shift 2
	"$B/migrate-receive" --once --report json "$@" "$_sch:127.0.0.1:0" \
	    >"$T/$_n.recv" 2>"$T/$_n.rerr" &
	while ! grep -q 'listening on' "$T/$_n.rerr" 2>/dev/null; do sleep 0.05; done
	sed -n 's/.*listening on tcp:\(.*\)/\1/p' "$T/$_n.rerr" | head -1
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
ratio() { python3 -c "print('%.0f%%' % (100.0*$1/$2))"; }
bytes=$(python3 -c "
u={'K':1<<10,'M':1<<20,'G':1<<30}; s='$MEM'
print(int(float(s[:-1])*u[s[-1]]) if s[-1] in u else int(s))")

# -- raw TCP -----------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
sleep 0.5
raw=$(iperf3 -c 127.0.0.1 -p "$port" -n "$bytes" -J | python3 -c '
import json,sys; j=json.load(sys.stdin); print("%.0f" % (j["end"]["sum_received"]["bits_per_second"]/1e6))')
wait
copy=$(python3 - "$bytes" <<'PY'
# A plain copy of N octets over loopback into freshly mapped memory.
import mmap, os, socket, sys, time
n = int(sys.argv[1])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
port = ls.getsockname()[1]
if os.fork() == 0:
    s = socket.create_connection(("127.0.0.1", port))
    buf = os.urandom(1 << 20)
    left = n
    while left > 0:
        left -= s.send(buf[: min(left, len(buf))])
    s.close(); os._exit(0)
c, _ = ls.accept()
m = mmap.mmap(-1, n)
mv = memoryview(m)
t0 = time.time(); got = 0
while got < n:
    k = c.recv_into(mv[got:], n - got)
    if k == 0:
        break
    got += k
el = time.time() - t0
os.wait()
print("%.0f" % (got * 8 / el / 1e6))
PY
)
echo "raw TCP, iperf3 ($MEM):                       $raw Mbit/s"
echo "raw TCP, plain copy into fresh memory ($MEM): $copy Mbit/s"

run() { # run NAME SCHEME "RECEIVER-OPTS" DOMAIN [send options...]
	_rn=$1; _rs=$2; _ro=$3; _rd=$4; shift 4
	_dest=$(receiver "$_rn" "$_rs" $_ro)
	"$B/migrate-send" --progress none --report json "$@" "$_rd" "$_rs:$_dest" \
	    >"$T/$_rn.send"
	wait
	if [ "$(field "$T/$_rn.send" verified)" != True ]; then
		echo "$_rn: NOT VERIFIED" >&2; exit 1
	fi
}

for mode in cold warm; do
	bo=""
	[ $mode = warm ] && bo="--backend sim:prefault=1"
	for v in "draftb-crc tcp" "draftb-nocrc tcp --no-checksum" \
	    "xen tcp --format xen" "tls tls" "tls+zlib tls --compress zlib"; do
		set -- $v
		_name=$1; _sch=$2; shift 2
		ro="$bo"; so=""
		[ "$_sch" = tls ] && { ro="$ro $RTLS"; so="$STLS"; }
		run "$mode-$_name" "$_sch" "$ro" "sim:mem=$MEM,seed=3" $so "$@"
		tp=$(field "$T/$mode-$_name.send" throughput_mbps)
		printf 'xmig %-13s receiver %-4s %7.0f Mbit/s  %4s of iperf3  %4s of plain copy\n' \
		    "$_name" "$mode" "$tp" "$(ratio "$tp" "$raw")" "$(ratio "$tp" "$copy")"
	done
done
f=$T/cold-draftb-crc.send
z=$(field "$f" zero_pages); n=$(field "$f" nr_pages)
echo "zero pages: $z of $n sent without data ($(ratio "$z" "$n")); page data octets on the wire $(field "$f" page_wire_octets) for $(( (n - z) * 4096 )) non-zero page octets"
f=$T/cold-tls+zlib.send
echo "zlib (level 1) over TLS: page data $(field "$f" page_octets) -> $(field "$f" page_wire_octets) octets ($(ratio "$(field "$f" page_wire_octets)" "$(field "$f" page_octets)"))"

echo "downtime, $MEM domain, 256 MiB hot set, limit 300 ms (default):"
for rate in 0 16M 64M 256M; do
	run "dirty-$rate" tcp "" "sim:mem=$MEM,vcpus=4,dirty=$rate,hot=256M,seed=5"
	printf '  dirty %-5s  passes %-3s downtime %8.1f ms  total %7.0f ms  pages sent %s\n' \
	    "$rate" "$(field "$T/dirty-$rate.send" iterations)" \
	    "$(field "$T/dirty-$rate.send" downtime_ms)" \
	    "$(field "$T/dirty-$rate.send" duration_ms)" \
	    "$(field "$T/dirty-$rate.send" pages_sent)"
done
