# bench-helper: stock `xl migrate` against xmig's save helper, one PVH guest,
# one boot, with the downtime taken apart on dom0's clock.  Not a numbered
# case: it runs only when named (tests/xen-lab/run.sh BUILD_DIR bench);
# bench/xen-lab.sh runs it and prints its figures as a table.
#
# Moves (each followed by lab_check_guest: same boot, ticking, every stamped
# page verified, xenstore written from the new domid):
#   bench-xl         stock helper on both sides
#   bench-xmig-standalone  migrate-send xen:NAME to migrate-receive --backend
#                    xen over tcp on dom0's loopback (its phases from the
#                    two commands' -v lines: suspend, copy, the receiving
#                    libxl's completion, GO, unpause)
#   bench-xmig-send  LIBXL_SAVE_HELPER=xmig-save-helper on the sending side
#   bench-xmig-recv  ... on the receiving side
#   bench-xmig-both  ... on both sides
#   bench-xmig-both-unmap  ... with XMIG_HELPER_KEEP_MAPS=0 on both sides
#                    (guest pages unmapped after each batch, as libxc does)
#   bench-xmig-both-keep   ... with XMIG_HELPER_KEEP_MAPS=1 on both sides
#                    (left mapped until the helpers exit; the defaults:
#                    the receiving side keeps them, the sending side not)
#   bench-xl-again   stock again (the host's load drifts)
# Every line xl -vvv and the helpers print is stamped with dom0's wall
# clock as it arrives; libxl's own lines mark the phases of the downtime:
#   suspend_ms    "issuing PVH/HVM suspend request" -> "guest has suspended"
#                 (libxl asks, the guest freezes itself, Xen suspends it)
#   copy_ms       -> the receiving helper is done ("Restore successful",
#                 or xmig's "domain N restored"): the last pass, the vcpu
#                 and platform records, the receiver applying them
#   restore_ms    -> "Transfer complete" (receiving libxl: its own records,
#                 xenstore, devices)
#   handshake_ms  -> "Got permission" (xl's ready/go between the two sides)
#   unpause_ms    -> "Domain started" (libxl unpauses the new domain)
#   toolstack_ms  the sum: from the suspend request to the unpause
# plus lab_downtime's guest figures (mono, boot, stall: see lib.sh).
# Figure: XMIG-LAB-FIGURE bench-<move> total_ms=... downtime_ms=...
#   boot_downtime_ms=... stall_ms=... suspend_ms=... copy_ms=...
#   restore_ms=... handshake_ms=... unpause_ms=... toolstack_ms=...
# (-1: the marker line was not seen).

H=${XMIG_SAVE_HELPER:-/xmig/bin/xmig-save-helper}
G=xb
if [ ! -x "$H" ]; then
	lab_result bench-xl FAIL "no $H in dom0"
	return 0 2>/dev/null || exit 0
fi
cat > "$LAB_DIR/stamp.py" <<'PY'
import sys, time
for l in iter(sys.stdin.readline, ''):
    sys.stdout.write("%.3f %s" % (time.time(), l))
    sys.stdout.flush()
PY
cat > "$LAB_DIR/phases.py" <<'PY'
import re, sys
# phases.py xl|sa LOG...: the marks of xl's -vvv lines, or of
# migrate-send / migrate-receive -v (sa: the standalone commands)
xl = [("issued", r"issuing PVH/HVM suspend request"),
      ("suspended", r"guest has suspended"),
      ("restored", r"Restore successful|xmig-save-helper: info: domain \d+ restored"),
      ("transfer", r"migration target: Transfer complete"),
      ("permission", r"migration target: Got permission"),
      ("started", r"migration target: Domain started")]
sa = [("issued", r"asking libxl to suspend"),
      ("suspended", r"suspended by libxl"),
      ("restored", r"restored; (libxl completes it|waiting for libxl)"),
      ("transfer", r"libxl completed domain"),
      ("permission", r"GO received"),
      ("started", r"\) unpaused|runs here as domain")]
marks = sa if sys.argv[1] == "sa" else xl
t = {}
for path in sys.argv[2:]:
    for line in open(path, errors="replace"):
        f = line.split(" ", 1)
        if len(f) < 2:
            continue
        try:
            ts = float(f[0])
        except ValueError:
            continue
        for name, rx in marks:
            if name not in t and re.search(rx, f[1]):
                t[name] = ts
def d(a, b):
    return "%d" % round((t[b] - t[a]) * 1000) if a in t and b in t else "-1"
print("suspend_ms=%s copy_ms=%s restore_ms=%s handshake_ms=%s unpause_ms=%s toolstack_ms=%s" % (
    d("issued", "suspended"), d("suspended", "restored"), d("restored", "transfer"),
    d("transfer", "permission"), d("permission", "started"), d("issued", "started")))
PY

bench_move() {
	bn=$1; shift
	if [ "$(lab__domcount $G)" != 1 ]; then
		lab_result "bench-$bn" FAIL "no single running $G before the move"
		return 1
	fi
	before=$(lab_guest_ticks $G); before=${before%% *}
	# the pipeline's status is python's: xl's own is kept in a file
	lab_op sh -c "{ $*; echo \$? > $LAB_DIR/bench.rc; } 2>&1 | python3 -u $LAB_DIR/stamp.py"
	total=$OP_MS
	rc=$(cat "$LAB_DIR/bench.rc" 2>/dev/null || echo 1)
	if [ "$rc" != 0 ]; then
		lab_result "bench-$bn" FAIL "rc $rc: $(grep -aE 'error|fail' "$LAB_DIR/op.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	grep -a 'xmig-save-helper: info: .*timing' "$LAB_DIR/op.log" | cut -c1-400 | while read -r l; do lab_log "bench-$bn: $l"; done
	# the helpers' own steps from the suspend on (XMIG_HELPER_DEBUG=1)
	sed -n '/asking libxl to suspend/,$p' "$LAB_DIR/op.log" | grep -a 'xmig-save-helper \[' | cut -c1-200 | while read -r l; do lab_log "bench-$bn: $l"; done
	if ! lab_check_guest $G; then
		lab_result "bench-$bn" FAIL "$LAB_WHY"
		return 1
	fi
	set -- $(lab_downtime $G "$before")
	ph=$(python3 "$LAB_DIR/phases.py" xl "$LAB_DIR/op.log")
	lab_result "bench-$bn" PASS "total $total ms; $ph; guest mono ${1} ms ${5} ${7}; $LAB_CHECK"
	lab_figure "bench-$bn" total_ms=$total downtime_ms=$1 boot_downtime_ms=${5#boot_ms=} stall_ms=${7#stall_ms=} $ph
}

# bench_want MOVE: MOVE is among /xmig/bench-moves (run.sh's
# XMIG_LAB_BENCH_MOVES), or that file is absent (all moves)
bench_want() {
	[ -r /xmig/bench-moves ] || return 0
	case " $(cat /xmig/bench-moves) " in *" $1 "*) return 0 ;; esac
	return 1
}

if ! lab_guest_create $G pvh; then
	lab_result bench-xl FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi
D="XMIG_HELPER_DEBUG=1"
bench_want xl && bench_move xl xl -vvv migrate -s "''" $G "'xl -vvv migrate-receive'"
bench_want xmig-send && bench_move xmig-send env LIBXL_SAVE_HELPER=$H $D xl -vvv migrate -s "''" $G "'env -u LIBXL_SAVE_HELPER xl -vvv migrate-receive'"
bench_want xmig-recv && bench_move xmig-recv xl -vvv migrate -s "''" $G "'env LIBXL_SAVE_HELPER=$H $D xl -vvv migrate-receive'"
bench_want xmig-both && bench_move xmig-both env LIBXL_SAVE_HELPER=$H $D xl -vvv migrate -s "''" $G "'env LIBXL_SAVE_HELPER=$H $D xl -vvv migrate-receive'"
K="XMIG_HELPER_KEEP_MAPS=0"
bench_want xmig-both-unmap && bench_move xmig-both-unmap env LIBXL_SAVE_HELPER=$H $D $K xl -vvv migrate -s "''" $G "'env LIBXL_SAVE_HELPER=$H $D $K xl -vvv migrate-receive'"
K="XMIG_HELPER_KEEP_MAPS=1"
bench_want xmig-both-keep && bench_move xmig-both-keep env LIBXL_SAVE_HELPER=$H $D $K xl -vvv migrate -s "''" $G "'env LIBXL_SAVE_HELPER=$H $D $K xl -vvv migrate-receive'"
# migrate-send xen:NAME / migrate-receive --backend xen (no xl in the path)
# bench_sa NAME [MIGRATE-SEND OPTION...]
bench_sa() {
	bn=$1; shift
	if [ "$(lab__domcount $G)" != 1 ]; then
		lab_result "bench-$bn" FAIL "no single running $G before the move"
		return 1
	fi
	ip link set lo up 2>/dev/null
	before=$(lab_guest_ticks $G); before=${before%% *}
	RL=$LAB_DIR/sa-recv.log; SL=$LAB_DIR/sa-send.log
	( /xmig/bin/migrate-receive --backend xen --once -v tcp:127.0.0.1:0 2>&1; echo "rc=$?" ) | python3 -u $LAB_DIR/stamp.py > $RL &
	i=0; port=
	while [ $i -lt 300 ] && [ -z "$port" ]; do
		port=$(sed -n 's/.*listening on tcp:[^ ]*:\([0-9][0-9]*\).*/\1/p' $RL | head -n 1)
		[ -n "$port" ] || sleep 0.1
		i=$((i + 1))
	done
	s=$(lab_now_ms)
	( timeout 300 /xmig/bin/migrate-send -v "$@" xen:$G tcp:127.0.0.1:$port 2>&1; echo "rc=$?" ) | python3 -u $LAB_DIR/stamp.py > $SL
	total=$(( $(lab_now_ms) - s ))
	wait
	if ! grep -q ' rc=0$' $SL || ! grep -q ' rc=0$' $RL; then
		lab_result "bench-$bn" FAIL "$(grep -ahE 'error|rc=' $SL $RL | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	if ! lab_check_guest $G; then
		lab_result "bench-$bn" FAIL "$LAB_WHY"
		return 1
	fi
	# both commands' lines around the downtime, on dom0's clock
	t0=$(sed -n 's/^\([0-9.]*\) .*asking libxl to suspend.*/\1/p' $SL | head -n 1)
	if [ -n "$t0" ]; then
		for f in $SL $RL; do
			awk -v t0="$t0" -v w="${f##*/}" '$1 + 0 >= t0 - 60 && !/"progress"/ {
			    printf "%s %+.3f %s\n", w, $1 - t0, substr($0, index($0, " ") + 1) }' "$f" |
			    cut -c1-220 | while read -r l; do lab_log "bench-$bn: $l"; done
		done
	fi
	set -- $(lab_downtime $G "$before")
	ph=$(python3 "$LAB_DIR/phases.py" sa $SL $RL)
	lab_result "bench-$bn" PASS "total $total ms; $ph; guest mono ${1} ms ${5} ${7}; $LAB_CHECK"
	lab_figure "bench-$bn" total_ms=$total downtime_ms=$1 boot_downtime_ms=${5#boot_ms=} stall_ms=${7#stall_ms=} $ph
}
bench_want xmig-standalone && bench_sa xmig-standalone
bench_want xmig-standalone-xen && bench_sa xmig-standalone-xen --format xen
bench_want xl-again && bench_move xl-again xl -vvv migrate -s "''" $G "'xl -vvv migrate-receive'"
lab_guest_destroy $G
