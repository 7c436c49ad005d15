# 30-faults: xmig's save helper when a live migration fails half-way.
# Sourced by dom0-run.sh after lib.sh (tests/xen-lab/lib.sh).
#   fault-term-send-helper   xl migrate, xmig helper sending: SIGTERM to the
#                            sending helper once a live pass is under way
#                            (its progress line says so): xl migrate fails,
#                            the helper says "cancelled", the guest stays on
#                            the source (same domid) and keeps ticking, no
#                            xf--incoming is left, log-dirty is off
#   fault-term-recv-helper   stock sender, xmig helper receiving: SIGTERM to
#                            the receiving helper once it has read part of
#                            the stream: it says "cancelled by SIGTERM"; the
#                            same outcome
#   fault-retry-after-cancel after both: a live xl migrate with the xmig
#                            helper on both sides succeeds (checks pass)
#   fault-pv-live-runs       live xl migrate of a PV guest with the xmig
#                            helper sending fails; the PV guest keeps running,
#                            nothing is left
#   fault-pv-live-message    ... and says "PV live migration needs a Xen
#                            built with shadow paging"
#   fault-pv-live-stock      the same with stock xl: fails, the guest runs
#                            on, and libxc's first log-dirty error is
#                            EOPNOTSUPP (95), the errno the xen backend's
#                            enable_dirty turns into that message
# Mid-copy is read from the helpers' JSON progress lines
# (XMIG_HELPER_PROGRESS=1), never from a sleep.
# 2026-11-30, three boots (Xen 4.17.7, 160 MB guests): all PASS but
# fault-pv-live-message, which FAILed while the xen backend refused a PV
# domain when it opened it, before enable_dirty, which says it.  Since the
# backend moves PV guests (non-live, case 60) all PASS (one boot).
# On the code before cancel_fd, fault-term-send-helper FAILed: the
# SIGTERM'd helper finished the migration (412 MB, 6 passes).

H=${XMIG_SAVE_HELPER:-/xmig/bin/xmig-save-helper}
G=xf
P=xfpv
PV_MSG="PV live migration needs a Xen built with shadow paging"
# libxc's enable_logdirty prints the errno of its first try, then of OFF
# and of the second try: "Failed to enable logdirty: 95,22,0"
EOPNOTSUPP_NR=95

if [ ! -x "$H" ]; then
	lab_result fault-term-send-helper FAIL "no $H in dom0"
	return 0 2>/dev/null || exit 0
fi

# f_pid PATTERN: the pid of the one process whose command line matches
# PATTERN (a grep regex that does not match itself, e.g. 'save-domai[n]')
f_pid() {
	grep -l -a -e "$1" /proc/[0-9]*/cmdline 2>/dev/null | head -n 1 | cut -d/ -f3
}

# f_wait_bytes FILE ROLE PHASE MIN PID: wait until FILE has a progress line
# of ROLE in PHASE with at least MIN octets; 0 then (F_BYTES holds them), 1
# if PID exited first or after 150 s (F_WHY says which)
f_wait_bytes() {
	F_BYTES=0; F_WHY=
	fw_end=$(( $(date +%s) + 150 ))
	while :; do
		F_BYTES=$(awk -v r="\"progress\":\"$2\",\"phase\":\"$3\"" '
			index($0, r) { s = $0; sub(/.*"bytes":/, "", s); sub(/,.*/, "", s)
				if (s + 0 > b) b = s + 0 }
			END { print b + 0 }' "$1")
		[ "$F_BYTES" -ge "$4" ] && return 0
		if ! kill -0 "$5" 2>/dev/null; then
			F_WHY="xl ended before a $2 progress line in phase $3 showed $4 octets (last $F_BYTES)"
			return 1
		fi
		if [ "$(date +%s)" -ge "$fw_end" ]; then
			F_WHY="no $2 progress line in phase $3 with $4 octets within 150 s (last $F_BYTES)"
			return 1
		fi
		sleep 0.2
	done
}

# f_wait_exit PID SECONDS: wait for PID (a child of this shell) to end;
# F_RC its status, 0 if it ended in time
f_wait_exit() {
	fe_end=$(( $(date +%s) + $2 ))
	while kill -0 "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$fe_end" ]; then
			kill "$1" 2>/dev/null
			wait "$1" 2>/dev/null
			F_RC=timeout
			return 1
		fi
		sleep 0.5
	done
	wait "$1"
	F_RC=$?
	return 0
}

# f_gone NAME SECONDS: wait until no domain NAME is left (1 if one stays)
f_gone() {
	fg_end=$(( $(date +%s) + $2 ))
	while [ "$(lab__domcount "$1")" != 0 ]; do
		[ "$(date +%s)" -ge "$fg_end" ] && return 1
		sleep 1
	done
	return 0
}

# f_fault NAME SIGNAL KILLPATTERN ROLE PHASE CMD...: run CMD (an xl
# migrate of $G) in the background, wait for a ROLE progress line in
# PHASE with 8 MiB done, send SIGNAL to the process matching KILLPATTERN,
# then check: CMD failed, $G kept its domid and runs on, nothing is left.
f_fault() {
	fn=$1; fsig=$2; fpat=$3; frole=$4; fphase=$5; shift 5
	out=$LAB_DIR/$fn.log
	if [ "$(lab__domcount $G)" != 1 ]; then
		lab_guest_destroy $G
		if ! lab_guest_create $G pvh; then
			lab_result "$fn" FAIL "create: $LAB_WHY"
			return 1
		fi
	fi
	dom0=$(xl domid $G)
	t0=$(lab_now_ms)
	"$@" > "$out" 2>&1 &
	xpid=$!
	if ! f_wait_bytes "$out" "$frole" "$fphase" 8388608 "$xpid"; then
		f_wait_exit "$xpid" 120
		lab_result "$fn" FAIL "$F_WHY; xl: $(tail -n 4 "$out" | tr '\n' ' ' | cut -c1-300)"
		return 1
	fi
	kpid=$(f_pid "$fpat")
	if [ -z "$kpid" ]; then
		f_wait_exit "$xpid" 120
		lab_result "$fn" FAIL "no process matching $fpat at $F_BYTES octets"
		return 1
	fi
	tk=$(lab_now_ms)
	kill -"$fsig" "$kpid"
	lab_log "$fn: SIG$fsig to pid $kpid ($fpat) after $(( tk - t0 )) ms, $F_BYTES octets ($frole)"
	if ! f_wait_exit "$xpid" 150; then
		lab_result "$fn" FAIL "xl migrate still running 150 s after SIG$fsig to the helper: $(tail -n 4 "$out" | tr '\n' ' ' | cut -c1-300)"
		lab_guest_destroy $G
		return 1
	fi
	tx=$(lab_now_ms)
	grep -a 'xmig-save-helper\|migration\|cancel' "$out" | grep -av '"progress"' | tail -n 8 |
		while read -r l; do lab_log "$fn: $(echo "$l" | cut -c1-300)"; done
	if [ "$F_RC" = 0 ]; then
		lab_result "$fn" FAIL "xl migrate succeeded although the helper got SIG$fsig mid-copy (the signal stopped nothing)"
		return 1
	fi
	if ! f_gone "$G--incoming" 60; then
		lab_result "$fn" FAIL "$G--incoming still there 60 s after xl migrate failed"
		return 1
	fi
	dom1=$(xl domid $G 2>/dev/null)
	if [ "$dom1" != "$dom0" ]; then
		lab_result "$fn" FAIL "$G is domid '$dom1' now, was $dom0: it moved or was recreated"
		return 1
	fi
	if ! lab_check_guest $G; then
		lab_result "$fn" FAIL "$LAB_WHY"
		return 1
	fi
	F_DETAIL="xl migrate rc=$F_RC $(( tx - tk )) ms after SIG$fsig at $F_BYTES octets; $LAB_CHECK"
	return 0
}

if ! lab_guest_create $G pvh; then
	lab_result fault-term-send-helper FAIL "create: $LAB_WHY"
else
	# (a) the sending helper gets SIGTERM in a live pass
	if f_fault fault-term-send-helper TERM 'save-domai[n]' send live \
	    env LIBXL_SAVE_HELPER=$H XMIG_HELPER_PROGRESS=1 xl -v migrate -s "" $G \
	    "env -u LIBXL_SAVE_HELPER xl migrate-receive"; then
		if ! grep -aq 'cancelled by SIGTERM' "$LAB_DIR/fault-term-send-helper.log"; then
			lab_result fault-term-send-helper FAIL "no 'cancelled by SIGTERM' from the helper; $F_DETAIL"
		else
			lab_logdirty_off $G
			case $? in
			0) lab_result fault-term-send-helper PASS "$F_DETAIL; log-dirty off" ;;
			1) lab_result fault-term-send-helper FAIL "log-dirty left on: $LAB_WHY; $F_DETAIL" ;;
			*) lab_result fault-term-send-helper PASS "$F_DETAIL; log-dirty not observable: $LAB_WHY" ;;
			esac
		fi
	fi
	# (b) the receiving helper gets SIGTERM while it reads the stream
	if f_fault fault-term-recv-helper TERM 'restore-domai[n]' receive receiving \
	    xl -v migrate -s "" $G \
	    "env LIBXL_SAVE_HELPER=$H XMIG_HELPER_PROGRESS=1 xl -v migrate-receive"; then
		if grep -aq 'restoring domain [0-9]*: cancelled by SIGTERM' "$LAB_DIR/fault-term-recv-helper.log"; then
			lab_result fault-term-recv-helper PASS "$F_DETAIL"
		else
			lab_result fault-term-recv-helper FAIL "no 'cancelled by SIGTERM' from the receiving helper; $F_DETAIL"
		fi
	fi
	# (after) the next migration, xmig on both sides, works
	if [ "$(lab__domcount $G)" = 1 ]; then
		rdom=$(xl domid $G)
		if lab_op env LIBXL_SAVE_HELPER=$H xl -v migrate -s "" $G \
		    "env LIBXL_SAVE_HELPER=$H xl -v migrate-receive"; then
			if lab_check_guest $G; then
				lab_result fault-retry-after-cancel PASS "domid $rdom -> $(xl domid $G) in $OP_MS ms; $LAB_CHECK"
			else
				lab_result fault-retry-after-cancel FAIL "$LAB_WHY"
			fi
		else
			lab_result fault-retry-after-cancel FAIL "xl migrate failed: $(grep -aE 'error|xmig-save-helper' "$LAB_DIR/op.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
		fi
	else
		lab_result fault-retry-after-cancel FAIL "no single $G left after the faults"
	fi
fi
lab_guest_destroy $G

# (c) PV live migration with the xmig helper sending
if ! lab_guest_create $P pv; then
	lab_result fault-pv-live-runs FAIL "create: $LAB_WHY"
else
	pdom=$(xl domid $P)
	lab_op env LIBXL_SAVE_HELPER=$H xl -v migrate -s "" $P "env -u LIBXL_SAVE_HELPER xl migrate-receive"
	prc=$?
	cp "$LAB_DIR/op.log" "$LAB_DIR/fault-pv.log"
	grep -a 'xmig-save-helper' "$LAB_DIR/fault-pv.log" | tail -n 4 |
		while read -r l; do lab_log "fault-pv: $(echo "$l" | cut -c1-300)"; done
	if [ $prc = 0 ]; then
		lab_result fault-pv-live-runs FAIL "the live migration of a PV guest succeeded (domid $pdom -> $(xl domid $P 2>/dev/null))"
	elif ! f_gone "$P--incoming" 60; then
		lab_result fault-pv-live-runs FAIL "$P--incoming still there after the failed migration"
	elif [ "$(xl domid $P 2>/dev/null)" != "$pdom" ]; then
		lab_result fault-pv-live-runs FAIL "$P is domid '$(xl domid $P 2>/dev/null)', was $pdom"
	elif ! lab_check_guest $P; then
		lab_result fault-pv-live-runs FAIL "$LAB_WHY"
	else
		lab_result fault-pv-live-runs PASS "xl migrate rc=$prc in $OP_MS ms; $LAB_CHECK"
	fi
	if grep -aq "$PV_MSG" "$LAB_DIR/fault-pv.log"; then
		lab_result fault-pv-live-message PASS "$(grep -a "$PV_MSG" "$LAB_DIR/fault-pv.log" | head -n 1 | cut -c1-300)"
	else
		lab_result fault-pv-live-message FAIL "no '$PV_MSG'; the helper said: $(grep -a 'xmig-save-helper' "$LAB_DIR/fault-pv.log" | grep -ai 'error\|fail\|PV' | head -n 2 | tr '\n' ' ' | cut -c1-300)"
	fi
	# stock xl: what Xen answers when log-dirty is asked for on PV
	if [ "$(lab__domcount $P)" = 1 ]; then
		pdom=$(xl domid $P)
		lab_op xl -v migrate -s "" $P "xl migrate-receive"
		prc=$?
		cp "$LAB_DIR/op.log" "$LAB_DIR/fault-pv-stock.log"
		grep -ai 'dirty\|shadow\|not supported' "$LAB_DIR/fault-pv-stock.log" | head -n 4 |
			while read -r l; do lab_log "fault-pv-stock: $(echo "$l" | cut -c1-300)"; done
		if [ $prc = 0 ]; then
			lab_result fault-pv-live-stock FAIL "stock live migration of a PV guest succeeded: this Xen has PV log-dirty"
		elif ! f_gone "$P--incoming" 60; then
			lab_result fault-pv-live-stock FAIL "$P--incoming still there"
		elif ! lab_check_guest $P; then
			lab_result fault-pv-live-stock FAIL "$LAB_WHY"
		elif grep -aqE "Failed to enable logdirty: $EOPNOTSUPP_NR[,:]" "$LAB_DIR/fault-pv-stock.log"; then
			lab_result fault-pv-live-stock PASS "$(grep -a 'Failed to enable logdirty' "$LAB_DIR/fault-pv-stock.log" | head -n 1 | cut -c1-200) ($EOPNOTSUPP_NR = EOPNOTSUPP); $LAB_CHECK"
		else
			lab_result fault-pv-live-stock FAIL "guest runs on, but no log-dirty EOPNOTSUPP in xl's output: $(grep -ai 'error' "$LAB_DIR/fault-pv-stock.log" | head -n 3 | tr '\n' ' ' | cut -c1-300)"
		fi
	fi
fi
lab_guest_destroy $P
