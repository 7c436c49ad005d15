# 71-xmigd-resume: an unconfirmed handover from xmigd --backend xen, and
# xmigctl resume.  The receiver is a sink (python3 reads the stream and
# answers nothing): the sender goes one-way after the negotiation timeout,
# delivers the stream and nobody confirms it, so the source must stay
# suspended under its own name (SPEC 13.4, 18.6) until xmigctl resume runs
# it again.  Sourced by dom0-run.sh after lib.sh; run:
# tests/xen-lab/run.sh BUILD_DIR 71.
#   xd-unconfirmed     watch ends "unconfirmed" (exit 3); the guest keeps
#                      its name and domid, suspended (xmigctl domains); no
#                      G--migratedaway
#   xd-resume          xmigctl resume: the same guest runs on
#                      (lab_check_guest); a second resume is refused
#   xd-vs-standalone   the same guest moved by migrate-send/migrate-receive
#                      (sa_move) and then by xmigd A to an xmigd B, in one
#                      boot: both pass lab_check_guest; figure with both
#                      totals, and dom0's top 15 s into each (diagnostics)

G=xd2
BIN=/xmig/bin
W=$LAB_DIR/xd71
mkdir -p "$W"

if [ ! -x "$BIN/xmigd" ] || [ ! -x "$BIN/xmigctl" ]; then
	lab_result xd-unconfirmed FAIL "no xmigd or xmigctl in dom0"
	return 0 2>/dev/null || exit 0
fi
ip link show lo 2>/dev/null | grep -q 'state UNKNOWN\|UP' || ip link set lo up

"$BIN/xmigd" -v --backend xen --listen tcp:127.0.0.1:0 --control "$W/A.sock" \
	--state-dir "$W/A.state" > "$W/A.log" 2>&1 &
XPID=$!
_i=0
while [ $_i -lt 300 ] && ! grep -q 'ready: control' "$W/A.log"; do
	kill -0 $XPID 2>/dev/null || break
	sleep 0.1; _i=$((_i + 1))
done
if ! grep -q 'ready: control' "$W/A.log"; then
	sa_dump "$W/A.log"
	lab_result xd-unconfirmed FAIL "xmigd did not start"
	return 0 2>/dev/null || exit 0
fi
ctl() { "$BIN/xmigctl" --socket "$W/A.sock" "$@"; }

# the sink: accepts one connection and reads it to its end, silent
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    n += len(b)
print("read", n, flush=True)
' > "$W/sink.out" 2>&1 &
SINK=$!
_i=0
while [ $_i -lt 100 ] && [ ! -s "$W/sink.out" ]; do sleep 0.1; _i=$((_i + 1)); done
PORT=$(head -n 1 "$W/sink.out")

if ! lab_guest_create $G pvh; then
	lab_result xd-unconfirmed FAIL "create: $LAB_WHY"
	kill $XPID $SINK
	return 0 2>/dev/null || exit 0
fi
domid=$(xl domid $G)
_before=$(lab_guest_ticks $G); _before=${_before%% *}
_id=$(ctl migrate $G "tcp:127.0.0.1:$PORT" 2>"$W/mig.err")
if [ -z "$_id" ]; then
	lab_result xd-unconfirmed FAIL "xmigctl migrate: $(sa_tail "$W/mig.err")"
else
	timeout 200 "$BIN/xmigctl" --socket "$W/A.sock" watch "$_id" > "$W/watch.out" 2>&1
	_rc=$?
	_last=$(tail -n 1 "$W/watch.out")
	ctl domains > "$W/domains.txt" 2>&1
	lab_log "xd-unconfirmed: watch rc=$_rc $(echo "$_last" | cut -c1-250)"
	lab_log "xd-unconfirmed: $(sa_tail "$W/domains.txt")"
	if [ $_rc != 3 ] || ! echo "$_last" | grep -q '"status":"unconfirmed"'; then
		sa_dump "$W/A.log" 20
		lab_result xd-unconfirmed FAIL "watch rc=$_rc: $(echo "$_last" | cut -c1-300)"
	elif [ "$(xl domid $G 2>/dev/null)" != "$domid" ]; then
		lab_result xd-unconfirmed FAIL "$G is not domain $domid: $(xl list | tr '\n' ' ')"
	elif [ "$(lab__domcount $G--migratedaway)" != 0 ]; then
		lab_result xd-unconfirmed FAIL "$G--migratedaway left"
	elif ! grep -qE "^$G +suspended " "$W/domains.txt"; then
		lab_result xd-unconfirmed FAIL "$G not listed suspended: $(sa_tail "$W/domains.txt")"
	else
		lab_result xd-unconfirmed PASS "watch exit 3, unconfirmed; $G stays suspended as domain $domid"
		if ! ctl resume $G > "$W/resume.out" 2>&1; then
			lab_result xd-resume FAIL "xmigctl resume: $(sa_tail "$W/resume.out")"
		elif ! lab_check_guest $G; then
			lab_result xd-resume FAIL "$LAB_WHY"
		elif [ "$(xl domid $G)" != "$domid" ]; then
			lab_result xd-resume FAIL "$G is not domain $domid any more"
		elif ctl resume $G > "$W/resume2.out" 2>&1; then
			lab_result xd-resume FAIL "a second resume was accepted"
		elif ! grep -q 'not suspended' "$W/resume2.out"; then
			lab_result xd-resume FAIL "the second resume's refusal: $(sa_tail "$W/resume2.out")"
		else
			lab_result xd-resume PASS "$(sa_tail "$W/resume.out" 1); runs on as domain $domid; $LAB_CHECK"
		fi
	fi
fi

# ---- the same guest, standalone and through xmigd, in one boot --------------------
# top_later NAME: dom0's busiest processes 15 s into a move (diagnostics only)
top_later() { ( sleep 15; top -b -n 1 -w 160 2>/dev/null | sed -n '8,13p' > "$W/$1.top" ) & }
top_show() { [ -s "$W/$1.top" ] && while read -r l; do lab_log "$1: top: $(echo "$l" | tr -s ' ' | cut -c1-150)"; done < "$W/$1.top"; }
CERTS=/xmig/certs
if [ "$(lab__domcount $G)" = 1 ]; then
	top_later sa; _tp=$!
	sa_move xd-standalone tcp && SA_TOTAL=$_total
	wait $_tp 2>/dev/null; top_show sa
	"$BIN/xmigd" -v --backend xen --listen tcp:127.0.0.1:0 --control "$W/B.sock" \
		--state-dir "$W/B.state" > "$W/B.log" 2>&1 &
	XPIDB=$!
	_i=0
	while [ $_i -lt 300 ] && ! grep -q 'ready: control' "$W/B.log"; do sleep 0.1; _i=$((_i + 1)); done
	PB=$(sed -n 's/.*listening on [a-z]*:[^ ]*:\([0-9][0-9]*\).*/\1/p' "$W/B.log" | head -n 1)
	_before=$(lab_guest_ticks $G); _before=${_before%% *}
	_s=$(lab_now_ms)
	top_later xd; _tp=$!
	_id=$(ctl migrate $G "tcp:127.0.0.1:$PB" 2>"$W/mig2.err")
	timeout 200 "$BIN/xmigctl" --socket "$W/A.sock" watch "$_id" > "$W/watch2.out" 2>&1
	_rc=$?
	_total=$(( $(lab_now_ms) - _s ))
	wait $_tp 2>/dev/null; top_show xd
	grep -a 'END queued' "$W/A.log" | tail -n 1 | while read -r l; do lab_log "xd: $(echo "$l" | cut -c1-250)"; done
	if [ -z "$_id" ] || [ $_rc != 0 ]; then
		lab_result xd-vs-standalone FAIL "xmigd move: rc=$_rc $(sa_tail "$W/watch2.out" 1) $(sa_tail "$W/mig2.err")"
	elif ! lab_check_guest $G; then
		lab_result xd-vs-standalone FAIL "after the xmigd move: $LAB_WHY"
	elif [ -z "${SA_TOTAL:-}" ]; then
		lab_result xd-vs-standalone FAIL "the standalone move failed"
	else
		lab_result xd-vs-standalone PASS "standalone ${SA_TOTAL} ms, xmigd ${_total} ms; $LAB_CHECK"
		lab_figure xd-vs-standalone standalone_ms=$SA_TOTAL xmigd_ms=$_total
	fi
	kill $XPIDB 2>/dev/null
	sa_wait $XPIDB 60
fi

kill $XPID $SINK 2>/dev/null
sa_wait $XPID 60
lab_guest_destroy $G
