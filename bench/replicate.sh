#!/bin/sh
# replicate.sh [BUILD_DIR] -- Remus-style replication on loopback (SPEC.md
# 15.4, issue 11).  All figures come from one run on this machine; say how
# loaded it was when you quote them (uptime is printed first).
#
#   rate       acknowledged checkpoints per second at a 25 ms interval,
#              sustained for DURATION seconds (default 60) after the first
#              epoch, draft-B with checksums
#   pause      how long the domain was paused per checkpoint (median, p99,
#              max), from the primary's checkpoint lines
#   progress   the workload's writes per second while replicated, against
#              the same domain with replication idle (an interval of 60 s:
#              the first epoch, then nothing), same phase and length
#   backup     its peak RSS against the domain plus two of the largest
#              epochs
#   failover   from the connection dropping (a relay between primary and
#              backup SIGKILLed) to the backup running its copy (its
#              failover_at_ms against the kill's wall clock); the same from
#              a SIGKILL of the primary itself (whose socket closes only
#              once the kernel has freed its memory); and for a SIGSTOPped
#              primary, against --failover-timeout
#
# The domain: MEM (default 1G) of sim memory, the workload writing DIRTY
# (default 16M) bytes a second over a HOT (default 64M) hot set, 200
# outputs a second.  Environment: MEM, DIRTY, HOT, DURATION, BASE (the
# baseline's seconds, default 20), FO (the backup's --failover-timeout in
# the rate and failover runs, default 200 ms: the default for a 25 ms
# interval).
set -eu
B=${1:-build}
MEM=${MEM:-1G}
DIRTY=${DIRTY:-16M}
HOT=${HOT:-64M}
DURATION=${DURATION:-60}
BASE=${BASE:-20}
FO=${FO:-200}
T=$(mktemp -d)
# KEEP=1: leave the logs in $T (with -v on both sides) for a post-mortem.
V=
if [ -n "${KEEP:-}" ]; then
	V=-v
	echo "logs in $T"
	trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM
else
	trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
fi
DOM="sim:mem=$MEM,dirty=$DIRTY,hot=$HOT,outputs=200,seed=3"

echo "machine: $(nproc) CPUs; $(uptime | sed 's/.*load/load/')"

receiver() { # receiver NAME [options]: prints the port
	_n=$1; shift
	rm -f "$T/$_n.rerr" "$T/$_n.recv"	# not the last run's
	"$B/migrate-receive" $V --once --report json "$@" tcp:127.0.0.1:0 \
	    >"$T/$_n.recv" 2>"$T/$_n.rerr" &
	_port=
	while [ -z "$_port" ]; do
		sleep 0.05
		_port=$(sed -n 's/.*listening on tcp:127.0.0.1:\([0-9][0-9]*\)$/\1/p' \
		    "$T/$_n.rerr" 2>/dev/null | head -1)
	done
	echo "$_port"
}
# wait_epoch FILE N: until the primary saw epoch N acknowledged.
wait_epoch() {
	while ! grep -q "\"event\":\"checkpoint\",\"epoch\":$2," "$1" 2>/dev/null; do
		sleep 0.1
	done
}
# replicate NAME INTERVAL SECONDS: replicate for SECONDS after epoch 1 is
# acknowledged, then stop in order.
replicate() {
	_n=$1 _iv=$2 _s=$3
	# Idle replication sends nothing for its 60 s interval: no failover.
	_fo=$FO
	[ "$_iv" -lt 10000 ] || _fo=$((3 * _iv))
	_p=$(receiver "$_n" --failover-timeout "$_fo")
	"$B/migrate-send" $V --replicate="$_iv" --report json "$DOM" \
	    "tcp:127.0.0.1:$_p" >"$T/$_n.send" 2>"$T/$_n.serr" &
	_pid=$!
	wait_epoch "$T/$_n.send" 1
	sleep "$_s"
	kill -INT $_pid 2>/dev/null || true
	wait $_pid || { echo "$_n: the primary failed:"; cat "$T/$_n.serr" \
	    "$T/$_n.rerr"; exit 1; }
	wait
}

echo "== baseline: replication idle (interval 60 s), $BASE s after the first epoch"
replicate base 60000 "$BASE"
echo "== replicated: 25 ms interval, $DURATION s after the first epoch"
replicate repl 25 "$DURATION"

# relay PORT: a small TCP relay on loopback to 127.0.0.1:PORT (RELAY is
# its pid, RPORT its port), so that the connection can be dropped by a
# process that goes away at once: a SIGKILLed primary holding a 1 GiB
# domain closes its sockets only after the kernel has freed its memory.
relay() {
	python3 -c '
import os, socket, sys, threading
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
open(sys.argv[2] + ".tmp", "w").write("%d\n" % l.getsockname()[1])
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
c, _ = l.accept()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def pump(a, b):
    while True:
        d = a.recv(1 << 20)
        if not d:
            break
        b.sendall(d)
    b.shutdown(socket.SHUT_WR)
t = threading.Thread(target=pump, args=(s, c), daemon=True); t.start()
pump(c, s); t.join()' "$1" "$T/relay.port" &
	RELAY=$!
	while [ ! -s "$T/relay.port" ]; do sleep 0.05; done
	RPORT=$(cat "$T/relay.port")
	rm -f "$T/relay.port"
}

# failover KIND: SIGKILL or SIGSTOP the primary 5 s into replication, or
# (drop) SIGKILL the relay between them.
failover() {
	_n=$1
	rm -f "$T/$_n.send" "$T/$_n.serr" "$T/$_n.t0"
	_p=$(receiver "$_n" --failover-timeout "$FO")
	_victim=
	if [ "$_n" = drop ]; then
		relay "$_p"
		_p=$RPORT
		_victim=$RELAY
	fi
	"$B/migrate-send" --replicate=25 --report json "$DOM" \
	    "tcp:127.0.0.1:$_p" >"$T/$_n.send" 2>"$T/$_n.serr" &
	_pid=$!
	[ -n "$_victim" ] || _victim=$_pid
	wait_epoch "$T/$_n.send" 1
	sleep 5
	python3 -c '
import os, signal, sys, time
t = time.time() * 1000.0
os.kill(int(sys.argv[1]), signal.SIGSTOP if sys.argv[2] == "stop" else signal.SIGKILL)
print("%.3f" % t)' $_victim $_n >"$T/$_n.t0" || {
		echo "$_n: the primary ended before the fault:"
		cat "$T/$_n.serr" "$T/$_n.rerr"
		exit 1
	}
	while ! grep -q '"role"' "$T/$_n.recv" 2>/dev/null; do sleep 0.05; done
	if [ "$_n" = stop ]; then
		kill -CONT $_pid
	fi
	wait $_pid 2>/dev/null || true
	wait 2>/dev/null || true
}
echo "== failover: the primary SIGKILLed (three times), SIGSTOPped, the link dropped (three times)"
failover kill
mv "$T/kill.recv" "$T/kill1.recv"; mv "$T/kill.t0" "$T/kill1.t0"
failover kill
mv "$T/kill.recv" "$T/kill2.recv"; mv "$T/kill.t0" "$T/kill2.t0"
failover kill
mv "$T/kill.recv" "$T/kill3.recv"; mv "$T/kill.t0" "$T/kill3.t0"
failover stop
for k in 1 2 3; do
	failover drop
	mv "$T/drop.recv" "$T/drop$k.recv"; mv "$T/drop.t0" "$T/drop$k.t0"
done

python3 - "$T" "$MEM" "$FO" <<'PY'
import json, sys
T, mem = sys.argv[1], sys.argv[2]
u = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
mem_b = int(float(mem[:-1]) * u[mem[-1]]) if mem[-1] in u else int(mem)
def lines(path):
    out = []
    for l in open(path):
        l = l.strip()
        if l.startswith("{"):
            out.append(json.loads(l))
    return out
def report(path):
    return [d for d in lines(path) if "role" in d][0]
def ck(path):
    return [d for d in lines(path) if d.get("event") == "checkpoint"]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]
ok = True
def verdict(cond):
    global ok
    ok = ok and cond
    return "ok" if cond else "MISSED"

base_ck, base_rep = ck(T + "/base.send"), report(T + "/base.send")
c, rep = ck(T + "/repl.send"), report(T + "/repl.send")
later = [d for d in c if d["epoch"] >= 2]
span = (later[-1]["t_ms"] - later[0]["t_ms"]) / 1000.0
rate = round((len(later) - 1) / span, 1)
print("rate: %d epochs acknowledged in %.1f s after the first: %.1f "
      "checkpoints/s (goal >= 40; a 25 ms interval allows at most 40) %s" % (len(later), span, rate,
      verdict(rate >= 40)))
p = [d["pause_ms"] for d in later]
print("pause: median %.3f ms (goal <= 3) %s, p99 %.3f ms (goal <= 10) %s, "
      "max %.3f ms" % (pct(p, 0.5), verdict(pct(p, 0.5) <= 3),
      pct(p, 0.99), verdict(pct(p, 0.99) <= 10), max(p)))
dirty = [d["dirty_pages"] for d in later]
print("       dirty pages per epoch: median %d, max %d; octets per epoch: "
      "max %d" % (pct(dirty, 0.5), max(dirty),
      max(b["octets"] - a["octets"] for a, b in zip(c, c[1:]))))
# progress: workload pages per second from epoch 1 to the end
def wl_rate(cks, r):
    e1 = cks[0]
    return (r["workload_pages"] - e1["workload_pages"]) / \
        ((r["duration_ms"] - e1["t_ms"]) / 1000.0)
wr, wb = wl_rate(c, rep), wl_rate(base_ck, base_rep)
print("progress: %.0f pages/s replicated, %.0f pages/s idle: %.1f%% "
      "(goal >= 80%%) %s" % (wr, wb, 100 * wr / wb, verdict(wr >= 0.8 * wb)))
rr = report(T + "/repl.recv")
ep_max = max(b["octets"] - a["octets"] for a, b in zip(c, c[1:]))
rss = rr["peak_rss_kb"] * 1024
bound = mem_b + 2 * ep_max
print("backup: status %s; peak RSS %.1f MiB; domain %.0f MiB + 2 x largest "
      "epoch %.2f MiB = %.1f MiB; beyond it: %.1f MiB of process (code, "
      "libevent and socket buffers)" % (rr["status"], rss / 2**20,
      mem_b / 2**20, ep_max / 2**20, bound / 2**20,
      max(0, rss - bound) / 2**20))
for n, goal in (("kill1", None), ("kill2", None), ("kill3", None),
                ("stop", None), ("drop1", 50.0), ("drop2", 50.0),
                ("drop3", 50.0)):
    r = report(T + "/%s.recv" % n)
    t0 = float(open(T + "/%s.t0" % n).read())
    if r["status"] != "failover":
        print("failover (%s): status %s: %s" % (n, r["status"],
              r.get("error")))
        ok = False
        continue
    dt = r["failover_at_ms"] - t0
    if n == "stop":
        fo = float(sys.argv[3])
        print("failover (primary SIGSTOPped): %.1f ms after the stop, "
              "epoch %d (goal <= --failover-timeout %.0f + 50 ms) %s" %
              (dt, r["epoch"], fo, verdict(dt <= fo + 50)))
    elif n.startswith("kill"):
        print("failover (primary SIGKILLed, %s): %.1f ms after the kill, "
              "epoch %d (the kernel frees the primary's memory before its "
              "socket closes)" % (n[-1], dt, r["epoch"]))
    else:
        print("failover (connection dropped, %s): %.1f ms after the drop, "
              "epoch %d (goal <= 50 ms) %s" % (n[-1], dt, r["epoch"],
              verdict(dt <= goal)))
print("all goals met" if ok else "some goals MISSED")
PY
