#!/bin/sh
# replicate-chaos.sh [N] [SEED] -- the chaos soak of replication (SPEC.md
# 15.4).
#
# N replicated runs (default 50) of a small simulated domain with a running
# workload and outputs, draft-B or Xen dialect, each ended by one fault at
# a random point: the primary SIGKILLed after a random number of epochs and
# a random delay (so often mid-epoch), or the link cut or stalled through
# tests/faultproxy at a random stream offset (inside the first epoch, the
# live copy, as well as inside later ones).  Everything is deterministic
# from SEED (default 1) except the timing of the processes themselves.
#
# After each run:
#  (a) the backup runs exactly one copy, at the last committed epoch: its
#      report says "failover" with that epoch and its state= file "gone
#      running"; or, when the fault came before the first CHECKPOINT, it
#      reports "failed" and no copy of it runs;
#  (b) its memory digest equals the one the primary logged for that epoch
#      (--epoch-digests), and it committed at least every epoch the
#      primary saw acknowledged;
#  (c) the output invariant: outputs_in_state >= the last outputs_released,
#      and it is the count the primary logged for that epoch;
#  (d) a primary that was not killed runs on: unprotected (exit 4), or
#      failed before its first epoch (exit 1), its domain "gone running";
#  (e) no process of the run is left.
#
# One line per run, then "runs N, failovers N, refused N, violations N".
# Exit status 0 when there was no violation.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/e2e.sh"
FP=$B/tests/faultproxy

N=${1:-50}
SEED=${2:-1}
case $N$SEED in *[!0-9]*)
	echo "usage: replicate-chaos.sh [N] [SEED]" >&2; exit 2 ;;
esac
LIMIT=$(big 60 180)	# seconds a run may take at most
MEM=4M			# the first epoch is about this many octets

RNG=$(( (SEED * 2654435761 + 12345) % 2147483648 ))
rnd() {	# rnd N: R in [0, N)
	RNG=$(( (RNG * 1103515245 + 12345) % 2147483648 ))
	R=$(( (RNG / 256) % $1 ))
}

# alive PID: running, not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	read -r _st <"/proc/$1/stat" 2>/dev/null || return 1
	case $_st in *") Z "* | *") X "*) return 1 ;; esac
	return 0
}
ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

cat >"$T/judge.py" <<'PY'
import json, os, sys
pre, kind = sys.argv[1], sys.argv[2]
src = int(sys.argv[3]) if sys.argv[3] else None
rrc = int(sys.argv[4]) if sys.argv[4] else None
v = []
def lines(path, want):
    out = []
    try:
        for l in open(path):
            l = l.strip()
            if l.startswith("{"):
                try:
                    d = json.loads(l)
                except ValueError:
                    continue
                if want(d):
                    out.append(d)
    except OSError:
        pass
    return out
def state(path):
    try:
        return open(path).read().strip()
    except OSError:
        return "none"
r = lines(pre + ".recv.json", lambda d: "role" in d)
r = r[0] if r else None
s = lines(pre + ".send.json", lambda d: "role" in d)
s = s[0] if s else None
epochs = {d["epoch"]: d for d in lines(pre + ".send.json",
          lambda d: d.get("event") == "epoch")}
acks = lines(pre + ".send.json", lambda d: d.get("event") == "checkpoint")
acked = acks[-1]["epoch"] if acks else 0
released = acks[-1]["outputs_released"] if acks else 0
rst, sst = state(pre + ".rstate"), state(pre + ".sstate")
outcome = "?"
if r is None:
    v.append("no backup report (exit %s)" % rrc)
elif r["status"] == "failover":
    outcome = "failover@%s" % r.get("epoch")
    e = r.get("epoch")
    if rrc != 0:
        v.append("backup failed over but exited %s" % rrc)
    if rst != "gone running":
        v.append("backup failed over but its domain is '%s'" % rst)
    if not e or e < 1:
        v.append("failover without a committed epoch (%s)" % e)
    elif e not in epochs:
        v.append("failover to epoch %s the primary never logged" % e)
    else:
        if r.get("memory_digest") != epochs[e]["memory_digest"]:
            v.append("epoch %s: backup memory %s, primary logged %s" %
                     (e, r.get("memory_digest"), epochs[e]["memory_digest"]))
        ois = r.get("outputs_in_state")
        if ois is None or ois < released:
            v.append("outputs_in_state %s < last released %s" %
                     (ois, released))
        if ois != epochs[e]["outputs"]:
            v.append("outputs_in_state %s, epoch %s had %s" %
                     (ois, e, epochs[e]["outputs"]))
    if e is not None and e < acked:
        v.append("backup at epoch %s but epoch %s was acknowledged" %
                 (e, acked))
elif r["status"] == "failed":
    outcome = "refused"
    if rst in ("running", "gone running"):
        v.append("backup failed but its domain runs ('%s')" % rst)
    if acked > 0 and kind != "corrupt":
        v.append("backup failed after %s acknowledged epochs: %s" %
                 (acked, r.get("error")))
else:
    v.append("backup status %s" % r["status"])
if kind != "kill":
    if src not in (1, 4):
        v.append("primary exit %s, expected 4 (unprotected) or 1" % src)
    if sst != "gone running":
        v.append("primary's domain is '%s', not gone running" % sst)
    if src == 4 and (s is None or s["status"] != "unprotected"):
        v.append("primary exit 4 without status unprotected")
    if src == 1 and acked > 0:
        v.append("primary exit 1 after acknowledged epochs")
print(("VIOLATION " + "; ".join(v)) if v else "ok " + outcome)
sys.exit(1 if v else 0)
PY

runs=0 failovers=0 refused=0 bad=0
i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	pre=$T/r$i
	rm -f "$pre".*
	rnd 2; if [ $R -eq 0 ]; then dialect=draftb; else dialect=xen; fi
	rnd 3; case $R in 0) kind=kill ;; 1) kind=cut ;; 2) kind=stall ;; esac
	rnd 3; iv=$((20 + R * 15))		# interval 20, 35 or 50 ms
	rnd 1000; seed=$((R + 1))
	ITER=
	"$RECV" --report json --once --failover-timeout 250 --timeout 3 \
	    --backend "sim:state=$pre.rstate" tcp:127.0.0.1:0 \
	    >"$pre.recv.json" 2>"$pre.recv.err" &
	rpid=$!
	ITER="$ITER $rpid"
	wait_for "$pre.recv.err" 'listening on' 10 || { echo "run $i: no receiver"; bad=$((bad + 1)); continue; }
	dest=$(sed -n 's/.*listening on //p' "$pre.recv.err" | head -1)
	what=
	if [ $kind != kill ]; then
		# Anywhere in the first epoch (the 4 MiB live copy) or in
		# the ones after it, up to about 1.5 MiB further.
		rnd 5800; off=$(( (R + 1) * 1024 ))
		"$FP" --count 1 --log "$pre.plog" --$kind-at $off 0 \
		    "${dest#tcp:}" 2>"$pre.perr" &
		fpid=$!
		ITER="$ITER $fpid"
		wait_for "$pre.perr" 'listening on' 10 || { echo "run $i: no proxy"; bad=$((bad + 1)); continue; }
		dest=tcp:127.0.0.1:$(sed -n 's/^faultproxy: listening on 127\.0\.0\.1://p' "$pre.perr")
		what="$kind at octet $off"
	fi
	"$SEND" --replicate=$iv --epoch-digests --report json --format $dialect --timeout 3 \
	    "sim:mem=$MEM,dirty=2M,hot=1M,outputs=300,seed=$seed,state=$pre.sstate" \
	    "$dest" >"$pre.send.json" 2>"$pre.send.err" &
	spid=$!
	ITER="$ITER $spid"
	if [ $kind = kill ]; then
		rnd 8; k=$((R + 1)); rnd 40; d=$R
		wait_for "$pre.send.json" "\"event\":\"checkpoint\",\"epoch\":$k," 60
		sleep "$(ms $d)"
		kill -KILL $spid 2>/dev/null
		what="primary killed ${d} ms after epoch $k"
	fi
	src= rrc=
	wait_pid $spid $LIMIT; src=$?
	[ $kind = kill ] && src=
	wait_pid $rpid $LIMIT; rrc=$?
	[ $kind != kill ] && wait_pid $fpid 10
	left=
	for p in $ITER; do alive $p && left="$left $p" && kill -9 $p 2>/dev/null; done
	runs=$((runs + 1))
	verdict=$(python3 "$T/judge.py" "$pre" $kind "$src" "$rrc")
	vrc=$?
	if [ -n "$left" ]; then
		verdict="VIOLATION processes left:$left; $verdict"
		vrc=1
	fi
	case $verdict in
	*failover*) failovers=$((failovers + 1)) ;;
	*refused*) refused=$((refused + 1)) ;;
	esac
	[ $vrc -eq 0 ] || bad=$((bad + 1))
	echo "run $i: $dialect, interval $iv ms, $what: $verdict"
	if [ $vrc -ne 0 ]; then
		tail -3 "$pre.send.err" "$pre.recv.err" 2>/dev/null | sed 's/^/    /'
	fi
done
echo "runs $runs, failovers $failovers, refused $refused, violations $bad"
[ $bad -eq 0 ]
