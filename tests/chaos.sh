#!/bin/sh
# chaos.sh [N] [SEED] -- the chaos soak.
#
# N migrations (default 50) of small simulated domains with running
# workloads, each with one fault at a random point: the connection cut, a
# direction stalled past --timeout, one corrupted octet, a duplicated or
# dropped chunk (through tests/faultproxy), the receiver or the sender killed
# with SIGKILL, or the sender killed while it saves over a good image.
# Everything is deterministic from SEED (default 1) except the timing of the
# processes themselves.
#
# After each migration (SPEC.md 13.4 and 15.2):
#  (a) exactly one copy runs: a failed sender resumed its source, a completed
#      receiver runs its copy, an unconfirmed sender keeps its source paused
#      (acceptable when the receiver completed, and in the narrow window of
#      13.4: GO written, the receiver never got it; one intact copy, the
#      receiver's report decides).  A SIGKILLed sender takes its source with
#      it: the receiver then discarded (no GO) or runs (GO came first).  A
#      SIGKILLed receiver takes its copy: the sender resumed, or, after GO,
#      kept its source paused (or completed, when RUNNING had reached it);
#  (b) a receiver that completed has the sender's memory and vcpu digests;
#  (c) no migrate-send, migrate-receive or faultproxy of the iteration is
#      left running, and no port of it still listens;
#  (d) a save killed half-way leaves the good image at its path as it was
#      and no temporary file (PATH.xmig-*) behind.
#
# One line per iteration, then "faults injected N, survived N, failed N".
# Exit status 0 when there was no violation, 1 otherwise.
# The sanitizer builds are slower: XMIG_SANITIZED=1 (as e2e.sh's big()).
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/e2e.sh"
FP=$B/tests/faultproxy

N=${1:-50}
SEED=${2:-1}
case $N$SEED in *[!0-9]*)
	echo "usage: chaos.sh [N] [SEED]" >&2; exit 2 ;;
esac
TMO=3			# --timeout on both sides: a stall ends fast
LIMIT=$(big 30 90)	# seconds an iteration may take at most

# ---- a tiny PRNG (an LCG; the shell's arithmetic is 64-bit) --------------
RNG=$(( (SEED * 2654435761 + 12345) % 2147483648 ))
rnd() {	# rnd N: R in [0, N)
	RNG=$(( (RNG * 1103515245 + 12345) % 2147483648 ))
	R=$(( (RNG / 256) % $1 ))
}
pick() { # pick WORD...: P is one of them
	rnd $#
	shift "$R"
	P=$1
}

# ---- processes --------------------------------------------------------------
# alive PID: running (a child that exited is a zombie until it is reaped).
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	read -r _st <"/proc/$1/stat" 2>/dev/null || return 1
	case $_st in *") Z "* | *") X "*) return 1 ;; esac
	return 0
}
now_cs() { # NOW: centiseconds since boot
	read -r _up _idle </proc/uptime
	NOW=$(( ${_up%.*} * 100 + 1${_up#*.} - 100 ))
}
ms() { # ms MS: MS as seconds for sleep
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}
ITER_PIDS=
chaos_cleanup() {
	for _p in $ITER_PIDS; do kill -9 "$_p" 2>/dev/null; done
	cleanup
}
trap chaos_cleanup EXIT

# start_proxy PREFIX TARGETPORT FAULT...: FPID, PPORT
start_proxy() {
	_n=$1 _t=$2; shift 2
	"$FP" --count 1 --log "$_n.plog" "$@" 0 "127.0.0.1:$_t" 2>"$_n.perr" &
	FPID=$!
	ITER_PIDS="$ITER_PIDS $FPID"
	_w=0
	while ! grep -q 'listening on' "$_n.perr" 2>/dev/null; do
		_w=$((_w + 1))
		[ $_w -lt 200 ] && alive "$FPID" || return 1
		sleep 0.02
	done
	PPORT=$(sed -n 's/^faultproxy: listening on 127\.0\.0\.1://p' "$_n.perr")
}

# ---- the judge: reports, ports, files -> one verdict -----------------------
cat >"$T/judge.py" <<'PY'
import glob, hashlib, json, os, re, socket, subprocess, sys

e = os.environ
pre = e["J_PRE"]
kind = e["J_KIND"]
killed = e.get("J_KILLED", "")            # send, recv or ""
src = int(e["J_SRC"]) if e.get("J_SRC") else None
rrc = int(e["J_RRC"]) if e.get("J_RRC") else None
via_proxy = e.get("J_PROXY") == "1"
hung = e.get("J_HUNG", "").strip()
ports = [int(p) for p in e.get("J_PORTS", "").split()]
v = []        # violations
notes = []

def report(path):
    try:
        for line in open(path):
            line = line.strip()
            if line.startswith("{") and '"role"' in line:
                return json.loads(line)
    except (OSError, ValueError):
        pass
    return None

def tail(path, n=3):
    try:
        return " | ".join(l.strip() for l in open(path).readlines()[-n:])
    except OSError:
        return "(none)"

s = report(pre + ".send.json")
r = report(pre + ".recv.json") if kind != "kill-send-file" else None
ss = s["status"] if s else None
rs = r["status"] if r else None

# Was the fault injected?
injected = True
if via_proxy:
    try:
        log = open(pre + ".plog").read().splitlines()
    except OSError:
        log = []
    injected = any(l.split(" ", 1)[1].startswith("fault=")
                   for l in log if " " in l)
if killed == "send":
    injected = injected and src == 137
elif killed == "recv":
    injected = injected and rrc == 137
sk = killed == "send" and src == 137
rk = killed == "recv" and rrc == 137

if hung:
    v.append("left running after %s s: %s" % (e["J_LIMIT"], hung))

# Exit statuses agree with the reports.
want_s = {"completed": 0, "unconfirmed": 3, "failed": 1}
if not sk:
    if s is None:
        v.append("sender: no report (exit %s)" % src)
    elif ss not in want_s:
        v.append("sender: status %r" % ss)
    elif src != want_s[ss]:
        v.append("sender: status %s but exit %s" % (ss, src))
if kind != "kill-send-file" and not rk:
    if r is None:
        v.append("receiver: no report (exit %s)" % rrc)
    elif rs not in ("completed", "failed"):
        v.append("receiver: status %r" % rs)
    elif rrc != (0 if rs == "completed" else 1):
        v.append("receiver: status %s but exit %s" % (rs, rrc))
serr = (s or {}).get("error") or ""
rerr = (r or {}).get("error") or ""

# (a) who runs.
outcome = "sender %s%s, receiver %s%s" % (
    "KILLED" if sk else ss, "" if sk else "(%s)" % src,
    "KILLED" if rk else rs, "" if rk else "(%s)" % rrc)
if kind == "kill-send-file":
    outcome = "sender %s" % ("KILLED" if sk else "%s(%s)" % (ss, src))
elif sk:
    # The source went with its process; the receiver discarded (no GO)
    # or runs (GO came first).  Either way at most one copy.
    notes.append("source gone; receiver %s" %
                 ("runs (it had GO)" if rs == "completed" else "discarded"))
elif rk:
    if ss == "failed":
        notes.append("source resumed")
    elif ss == "unconfirmed":
        if "GO" not in serr:
            v.append("sender unconfirmed but not after GO: %s" % serr)
        notes.append("after GO: source paused, receiver gone")
    elif ss == "completed":
        notes.append("killed after the handover")
elif s is not None and r is not None:
    running = (ss == "failed") + (rs == "completed")
    if ss == "unconfirmed" and rs == "failed":
        if "GO was sent" in serr or "after GO" in serr:
            notes.append("the window of SPEC 13.4: GO lost, source paused "
                         "and intact, receiver discarded")
        else:
            v.append("no running copy: the sender left its source paused "
                     "(unconfirmed: %s) and the receiver discarded its "
                     "copy (%s)" % (serr or "no confirmation", rerr))
    elif running != 1:
        if running == 2:
            v.append("TWO running copies by the status accounting: the "
                     "sender failed (exit 1: its source resumed: %s) and "
                     "the receiver completed (its copy runs)" % serr)
        else:
            v.append("NO running copy: sender %s (%s), receiver %s (%s)"
                     % (ss, serr, rs, rerr))

# (b) digests.
if rs == "completed" and s is not None and not sk:
    for k in ("memory_digest", "vcpu_sha256"):
        # A failed sender may have no digest (then it is a violation
        # already); the others must have one.
        if ss == "failed" and not s.get(k):
            continue
        # A digest is 32 or 64 hex digits (is_digest in tests/lib.sh).
        if not isinstance(r.get(k), str) or \
                not re.fullmatch(r"[0-9a-f]{32}([0-9a-f]{32})?", r[k]) or r[k] != s.get(k):
            v.append("%s differs: sender %s, receiver %s" %
                     (k, (s.get(k) or "null")[:16], (r.get(k) or "null")[:16]))
if ss == "completed" and s.get("verified") is False:
    v.append("sender completed with digests that differ")

# Without a fault, the migration just works.
if not injected and not sk and not rk and kind != "kill-send-file":
    if ss != "completed" or rs != "completed":
        v.append("no fault reached, yet sender %s (%s), receiver %s (%s)"
                 % (ss, serr, rs, rerr))

# (c) no listener left.  A port that still accepts is ours only when one
# of this iteration's processes (or a child of one) holds it: on a busy
# machine another test may have been given the same port since.
ours = set(int(x) for x in e.get("J_PIDS", "").split())

def holders(port):
    """The pids listening on 127.0.0.1:port, or None if ss cannot say."""
    try:
        out = subprocess.run(["ss", "-Hltnp", "sport = :%d" % port],
                             capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    pids = set(int(x) for x in re.findall(r"pid=(\d+)", out))
    return pids if out.strip() else set()

def ppid(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None

for p in ports:
    c = socket.socket()
    c.settimeout(1)
    try:
        c.connect(("127.0.0.1", p))
        h = holders(p)
        if h is None or not h or any(x in ours or ppid(x) in ours
                                     for x in h):
            v.append("port %d still accepts connections" % p)
        else:
            notes.append("port %d reused by another process (%s)" %
                         (p, ",".join(map(str, sorted(h)))))
    except OSError:
        pass
    finally:
        c.close()

# (d) a save killed half-way.
if kind == "kill-send-file":
    path = e["J_FILE"]
    left = glob.glob(glob.escape(path) + ".xmig-*")
    for t in left:
        # Linux cannot put an unnamed file over an existing name: a save
        # that replaces a file names the complete image PATH.xmig-XXXXXX
        # and renames it at once (SPEC 15.2).  A kill between those two
        # calls may leave that complete image; anything else is a bug.
        if os.system("'%s' verify '%s' >/dev/null 2>&1" %
                     (e["J_IMG"], t)) == 0:
            notes.append("a complete image was left under its temporary "
                         "name (killed between naming and rename)")
        else:
            v.append("temporary file left: %s (%d octets)" %
                     (os.path.basename(t), os.path.getsize(t)))
    try:
        h = hashlib.sha256(open(path, "rb").read()).hexdigest()
    except OSError as x:
        h = None
        v.append("the image is gone: %s" % x)
    if h is not None and h != e["J_GOOD"]:
        # Replaced: only by a complete image, renamed into place after
        # END (the kill may come between the rename and the exit).
        if sk or ss == "completed":
            notes.append("the save was complete before the kill: the new "
                         "image replaced the old")
            if os.system("'%s' verify '%s' >/dev/null 2>&1" %
                         (e["J_IMG"], path)) != 0:
                v.append("the good image was replaced by one that does "
                         "not verify")
        else:
            v.append("the good image changed though the save %s" % ss)
    elif h is not None and ss == "completed":
        v.append("the save completed, yet the old image is still there")
    if h == e["J_GOOD"]:
        notes.append("good image intact")

line = "%s %s -> %s" % (e["J_TAG"], e["J_DESC"], outcome)
if notes:
    line += "; " + "; ".join(notes)
if not injected:
    line += " [fault not reached]"
if v:
    print(line + ": FAIL")
    for x in v:
        print("      violation: " + x)
    for f in ("send.err", "recv.err", "plog"):
        if os.path.exists(pre + "." + f):
            print("      %s: %s" % (f, tail(pre + "." + f)))
else:
    print(line + ": ok")
sys.exit((0 if injected else 3) + (1 if v else 0))
PY

# ---- the run --------------------------------------------------------------
"$SEND" --zero-pages "sim:mem=4M,seed=99" "file:$T/good.img" 2>/dev/null ||
    { echo "chaos: cannot make the good image" >&2; exit 1; }
GOOD=$(sha256sum "$T/good.img" | cut -d' ' -f1)
# Where the page data starts on a connection: the headers and static
# records of a saved image, plus XMIG_NEGOTIATE (16 + 48 + 8 octets).  A
# domain of random memory has no zero page, so every PAGE_DATA of the first
# pass is a full one of 1024 pages.
"$SEND" "sim:mem=4M,mix=random,seed=5" "file:$T/layout.img" 2>/dev/null
eval "$("$IMG" dump "$T/layout.img" | sed -n \
    's/^record index=[0-9]* offset=\([0-9]*\) type=PAGE_DATA .* wire_length=\([0-9]*\) .*/PD_OFF=\1 PD_LEN=\2/p' |
    head -1)"
PD_OFF=$((PD_OFF + 72))

KINDS="cut stall corrupt dup drop kill-recv kill-send kill-send-file"
NK=8
rnd $NK; KOFF=$R
inj=0 surv=0 nfail=0 unreached=0
for k in $KINDS; do eval "inj_$(echo $k | tr - _)=0 ok_$(echo $k | tr - _)=0"; done
now_cs; T0=$NOW
echo "chaos: $N migrations, seed $SEED, --timeout $TMO on both sides"

i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	tag=$(printf '#%02d' $i)
	pre=$T/i$i
	# The kinds in turn (from a random start), every point at random.
	set -- $KINDS; shift $(( (i - 1 + KOFF) % NK )); kind=$1
	pick 16 24 32 40 48; mem=$P
	pick 4 8 12 16; dirty=$P
	pick 2M 8M ""; hot=$P		# "": the whole memory
	pick 1 2 4; vcpus=$P
	pick realistic realistic random; mix=$P
	rnd 100000; dseed=$R
	pick "" "" "--compress zlib" "--big-endian" "--no-zero-pages"; sopt=$P
	fault= via=1 killed= kmode= delay=0 rec=0
	case $kind in
	cut | stall | corrupt)
		pick fwd-offset fwd-record back-record back-offset; var=$P
		case $var in
		fwd-offset)	rnd $((mem * 512 * 1024)); fault="--$kind-at $R" ;;
		fwd-record)	rnd $((mem / 4 + 9)); fault="--$kind-at-record $R" ;;
		back-record)	rnd 7; fault="--dir back --$kind-at-record $R" ;;
		back-offset)	rnd 340; fault="--dir back --$kind-at $R" ;;
		esac
		[ "$kind" = corrupt ] && fault=$(echo "$fault" |
		    sed 's/corrupt-at-record/corrupt-record/')
		desc="$kind $var: $fault"
		;;
	dup | drop)
		pick fwd-chunk fwd-chunk fwd-record back-chunk; var=$P
		case $var in
		fwd-chunk)
			rnd $((mem * 512 * 1024)); at=$R
			pick 1 8 16 24 100 4096 65536 1000000; len=$P
			fault="--$kind-at $at $len" ;;
		fwd-record)
			# A whole PAGE_DATA of the first pass, beyond the
			# pages the workload dirties: random memory, a small
			# hot set, no option that changes the framing.
			mix=random hot=1M sopt=
			rnd $((mem / 4 - 1)); rec=$((R + 1))
			fault="--$kind-at $((PD_OFF + rec * PD_LEN)) $PD_LEN" ;;
		back-chunk)
			rnd 340; at=$R
			pick 1 8 16 40; len=$P
			fault="--dir back --$kind-at $at $len" ;;
		esac
		desc="$kind $var: $fault"
		;;
	kill-recv | kill-send)
		killed=${kind#kill-}
		pick time time stall-fwd stall-back; kmode=$P
		case $kmode in
		time)
			# Direct, paced so that the migration lasts about a
			# second; the kill at a random moment of it.
			via=0
			sopt="$sopt --bandwidth 32M"
			rnd $((mem * 1000 * 8 / 10 / 32 + 200)); delay=$((R + 20))
			desc="$kind after ${delay} ms"
			;;
		stall-fwd)
			rnd $((mem * 512 * 1024)); fault="--stall-at $R"
			rnd 100; delay=$R
			desc="$kind ${delay} ms into a standstill: $fault" ;;
		stall-back)
			rnd 7; fault="--dir back --stall-at-record $R"
			rnd 100; delay=$R
			desc="$kind ${delay} ms into a standstill: $fault" ;;
		esac
		;;
	kill-send-file)
		killed=send via=0 mem=48 dirty=16
		rnd 260; delay=$((R + 5))
		cp "$T/good.img" "$pre.img"
		desc="kill-send during a save over a good image, after ${delay} ms"
		;;
	esac
	dom="sim:mem=${mem}M,dirty=${dirty}M,${hot:+hot=$hot,}vcpus=$vcpus,mix=$mix,seed=$dseed"
	desc="$desc; $dom${sopt:+ $sopt}"
	# XMIG_CHAOS_ONLY=I runs iteration I alone (the same choices).
	[ -n "${XMIG_CHAOS_ONLY:-}" ] && [ "$XMIG_CHAOS_ONLY" != $i ] && continue
	now_cs; t_start=$NOW

	ITER_PIDS= RPID= FPID= SPID= ports=
	if [ "$kind" = kill-send-file ]; then
		dest=file:$pre.img
	else
		if ! start_receiver "i$i" --once --timeout $TMO; then
			echo "$tag $desc -> the receiver did not start: FAIL"
			nfail=$((nfail + 1)); continue
		fi
		ITER_PIDS=$RPID
		rport=${DEST##*:}
		ports=$rport
		dest=$DEST
		if [ $via = 1 ]; then
			# shellcheck disable=SC2086
			if ! start_proxy "$pre" "$rport" $fault; then
				echo "$tag $desc -> the proxy did not start: FAIL"
				nfail=$((nfail + 1)); kill -9 $ITER_PIDS 2>/dev/null
				continue
			fi
			dest=tcp:127.0.0.1:$PPORT
			ports="$ports $PPORT"
		fi
	fi
	# shellcheck disable=SC2086
	"$SEND" --report json --timeout $TMO $sopt "$dom" "$dest" \
	    >"$pre.send.json" 2>"$pre.send.err" &
	SPID=$!
	ITER_PIDS="$ITER_PIDS $SPID"
	case $killed in send) victim=$SPID ;; recv) victim=$RPID ;; *) victim= ;; esac

	# The kill: at a random moment, or once the proxy holds the stream
	# still at the random point.
	if [ -n "$victim" ]; then
		if [ "$kmode" = stall-fwd ] || [ "$kmode" = stall-back ]; then
			while ! grep -q '^conn=[0-9]* fault=' "$pre.plog" 2>/dev/null; do
				alive "$SPID" || break
				now_cs; [ $((NOW - t_start)) -lt $((LIMIT * 100)) ] || break
				sleep 0.02
			done
			if grep -q '^conn=[0-9]* fault=' "$pre.plog" 2>/dev/null; then
				sleep "$(ms $delay)"
				kill -9 "$victim" 2>/dev/null
			fi
		else
			sleep "$(ms $delay)"
			kill -9 "$victim" 2>/dev/null
		fi
	fi

	# Everything of this iteration ends by itself, within LIMIT.
	hung= ended= gone=
	while :; do
		left=
		for p in $ITER_PIDS; do alive "$p" && left="$left $p"; done
		now_cs
		for p in $ITER_PIDS; do
			case " $left $gone " in *" $p "*) continue ;; esac
			gone="$gone $p"
			case $p in $SPID) _n=send ;; $RPID) _n=recv ;; *) _n=proxy ;; esac
			ended="$ended $_n@$(( (NOW - t_start) / 10 ))"
		done
		[ -z "$left" ] && break
		if [ $((NOW - t_start)) -ge $((LIMIT * 100)) ]; then
			for p in $left; do
				hung="$hung $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | cut -c1-60)[pid $p]"
				kill -9 "$p" 2>/dev/null
			done
			break
		fi
		sleep 0.05
	done
	wait "$SPID"; src=$?
	rrc=
	if [ -n "$RPID" ]; then wait "$RPID"; rrc=$?; fi
	if [ -n "$FPID" ]; then wait "$FPID"; fi
	for p in $ITER_PIDS; do
		kill -0 "$p" 2>/dev/null && hung="$hung still-there[pid $p]"
	done
	now_cs; el=$((NOW - t_start))
	# A slow iteration says who ended when (tenths of a second).
	[ $el -le $(( (TMO + 2) * 100 )) ] || desc="$desc [ended:$ended]"

	J_PRE=$pre J_KIND=$kind J_KILLED=$killed J_SRC=$src J_RRC=$rrc \
	J_PROXY=$via J_HUNG=$hung J_PORTS=$ports J_LIMIT=$LIMIT \
	J_PIDS="$ITER_PIDS" \
	J_FILE=$pre.img J_GOOD=$GOOD J_IMG=$IMG \
	J_TAG="$tag" J_DESC="$desc ($((el / 100)).$((el / 10 % 10)) s)" \
	    python3 "$T/judge.py"
	verdict=$?
	kv=$(echo $kind | tr - _)
	case $verdict in
	0) inj=$((inj + 1)); surv=$((surv + 1))
	   eval "inj_$kv=\$((inj_$kv + 1)) ok_$kv=\$((ok_$kv + 1))" ;;
	1) inj=$((inj + 1)); nfail=$((nfail + 1)); eval "inj_$kv=\$((inj_$kv + 1))" ;;
	3) unreached=$((unreached + 1)) ;;
	*) unreached=$((unreached + 1)); nfail=$((nfail + 1)) ;;
	esac
	# XMIG_CHAOS_KEEP=DIR keeps every iteration's reports, logs and
	# stderr there.
	if [ -n "${XMIG_CHAOS_KEEP:-}" ]; then
		mkdir -p "$XMIG_CHAOS_KEEP" && cp "$pre".* "$XMIG_CHAOS_KEEP/" 2>/dev/null
	fi
	rm -f "$pre".*
done

now_cs
by=
for k in $KINDS; do
	kv=$(echo $k | tr - _)
	eval "by=\"\$by \$k \$ok_$kv/\$inj_$kv,\""
done
echo "by kind (survived/injected):${by%,}"
[ $unreached -eq 0 ] || echo "faults not reached (the migration ended first): $unreached"
echo "chaos: $N migrations in $(( (NOW - T0) / 100 )) s (seed $SEED)"
echo "faults injected $inj, survived $surv, failed $nfail"
[ $nfail -eq 0 ]
