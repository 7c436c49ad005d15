# 10-xl-baseline: the harness proven with stock Xen tools, and the baseline
# xmig must beat. Sourced by dom0-run.sh after lib.sh.
#   xl-pvh-create        PVH guest with guest-work up, ticking, writing xenstore
#   xl-pvh-save-restore  xl save + xl restore; lab_check_guest passes
#   xl-pvh-migrate       live xl migrate to localhost over a pipe; checks pass;
#                        XMIG-LAB-FIGURE xl-migrate total_ms=... downtime_ms=...
#   xl-logdirty-off      log-dirty is off on the migrated guest (if observable)
#   xl-logdirty-observable  lab_logdirty_off does see log_dirty on the source
#                        during a second live migration
#   checks-can-fail      negative control: lab_check_guest says FAIL on a
#                        destroyed guest, on a rebooted one (new nonce) and
#                        on one that drops a page write (gw.selftest=1)
#   xl-pv-save-restore   PV guest xl save + xl restore; checks pass
#                        (PV live migration cannot work: Debian's Xen has no
#                        shadow paging, hence no PV log-dirty)

G=xlbase
if lab_guest_create $G pvh; then
	lab_result xl-pvh-create PASS "tick and nonce: $(lab_guest_ticks $G)"
	pvh=1
else
	lab_result xl-pvh-create FAIL "$LAB_WHY"
	pvh=0
fi

if [ $pvh = 1 ]; then
	if lab_op xl save $G "$LAB_DIR/$G.save"; then
		save_ms=$OP_MS
		size=$(stat -c %s "$LAB_DIR/$G.save")
		if lab_op xl restore "$LAB_DIR/$G.save"; then
			if lab_check_guest $G; then
				lab_result xl-pvh-save-restore PASS "save ${save_ms} ms ($size bytes), restore ${OP_MS} ms; $LAB_CHECK"
				lab_figure xl-pvh-save-restore save_ms=$save_ms restore_ms=$OP_MS bytes=$size
			else
				lab_result xl-pvh-save-restore FAIL "$LAB_WHY"
			fi
		else
			lab_result xl-pvh-save-restore FAIL "xl restore failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ')"
		fi
	else
		lab_result xl-pvh-save-restore FAIL "xl save failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ')"
	fi
	rm -f "$LAB_DIR/$G.save"
fi

if [ $pvh = 1 ] && [ "$(lab__domcount $G)" = 1 ]; then
	before=$(lab_guest_ticks $G); before=${before%% *}
	if lab_op xl migrate -s "" $G "xl migrate-receive"; then
		total=$OP_MS
		if lab_check_guest $G; then
			set -- $(lab_downtime $G "$before")
			lab_result xl-pvh-migrate PASS "total ${total} ms, downtime ${1} ms (before tick $2; $3 $4); $LAB_CHECK"
			lab_figure xl-migrate total_ms=$total downtime_ms=$1 $3 $4
		else
			lab_result xl-pvh-migrate FAIL "$LAB_WHY"
		fi
	else
		lab_result xl-pvh-migrate FAIL "xl migrate failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ')"
	fi
	lab_logdirty_off $G
	case $? in
	0) lab_result xl-logdirty-off PASS "no log_dirty in Xen's paging mode for $G after the migration" ;;
	1) lab_result xl-logdirty-off FAIL "$LAB_WHY" ;;
	*) lab_log "log-dirty state not observable: $LAB_WHY" ;;
	esac
	# can lab_logdirty_off see log-dirty at all? Poll it during a second
	# migration (not timed: the polls slow the migration down)
	if [ "$(lab__domcount $G)" = 1 ]; then
		xl migrate -s "" $G "xl migrate-receive" > "$LAB_DIR/mig2.log" 2>&1 &
		mig=$!
		seen=
		while kill -0 $mig 2>/dev/null; do
			lab_logdirty_off $G
			[ $? = 1 ] && seen=$LAB_WHY && break
			sleep 1
		done
		wait $mig; rc=$?
		if [ -n "$seen" ]; then
			lab_result xl-logdirty-observable PASS "seen during a migration: $seen"
		else
			lab_result xl-logdirty-observable FAIL "log_dirty never seen during a live migration (migrate rc=$rc)"
		fi
		lab_check_guest $G || lab_result xl-pvh-migrate-2 FAIL "$LAB_WHY"
	fi
fi

# negative control: the checks must be able to fail
if [ $pvh = 1 ]; then
	lab_guest_destroy $G
	if lab_check_guest $G; then
		neg1="PASSED on a destroyed guest"
	else
		neg1=ok; why1=$LAB_WHY
	fi
	# the same name booted afresh: a new nonce in the same console log
	if xl create "$LAB_DIR/$G.cfg" > /dev/null 2>&1; then
		i=0
		while [ $i -lt 120 ] && [ "$(lab__scan $G | cut -d' ' -f3)" -lt 2 ]; do
			sleep 1; i=$((i + 1))
		done
		if lab_check_guest $G; then
			neg2="PASSED on a rebooted guest"
		else
			neg2=ok; why2=$LAB_WHY
		fi
	else
		neg2="could not recreate $G"
	fi
	lab_guest_destroy $G
	# a guest that loses one page write (gw.selftest=1) must be caught
	# (an 8 MiB buffer: a full pass takes 33 ticks, so the dropped write is
	# checked within a second)
	if LAB_GUEST_MB=8 LAB_GUEST_ARGS=gw.selftest=1 lab_guest_create xlneg pvh; then
		if lab_check_guest xlneg; then
			neg3="PASSED on a guest with a stale page"
		else
			neg3=ok; why3=$LAB_WHY
		fi
	else
		neg3="could not create xlneg: $LAB_WHY"
	fi
	lab_guest_destroy xlneg
	if [ "$neg1" = ok ] && [ "$neg2" = ok ] && [ "$neg3" = ok ]; then
		lab_result checks-can-fail PASS "destroyed: $why1; rebooted: $(echo "$why2" | cut -c1-100); stale page: $(echo "$why3" | cut -c1-100)"
	else
		lab_result checks-can-fail FAIL "destroyed: $neg1; rebooted: $neg2; stale page: $neg3"
	fi
fi

P=xlpv
if lab_guest_create $P pv; then
	if lab_op xl save $P "$LAB_DIR/$P.save"; then
		save_ms=$OP_MS
		if lab_op xl restore "$LAB_DIR/$P.save"; then
			if lab_check_guest $P; then
				lab_result xl-pv-save-restore PASS "save ${save_ms} ms, restore ${OP_MS} ms; $LAB_CHECK"
			else
				lab_result xl-pv-save-restore FAIL "$LAB_WHY"
			fi
		else
			lab_result xl-pv-save-restore FAIL "xl restore failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ')"
		fi
	else
		lab_result xl-pv-save-restore FAIL "xl save failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ')"
	fi
	rm -f "$LAB_DIR/$P.save"
	lab_guest_destroy $P
else
	lab_result xl-pv-save-restore FAIL "create: $LAB_WHY"
fi
