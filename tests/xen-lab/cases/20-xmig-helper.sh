# 20-xmig-helper: xmig's libxl save helper (xmig-save-helper) moves a real
# PVH guest, against stock xl on the other side and on both sides.
# Sourced by dom0-run.sh after lib.sh (tests/xen-lab/lib.sh: lab_result,
# lab_guest_create, lab_check_guest, lab_downtime, lab_logdirty_off, ...).
#   helper-self-test           xmig-save-helper --self-test in dom0
#   helper-refuses-remus       a Remus stream type is refused, naming it
#   helper-refuses-no-libxl    run outside libxl, it refuses to start
#   xmig-save-stock-restore    LIBXL_SAVE_HELPER=xmig xl save; stock xl restore
#   stock-save-xmig-restore    stock xl save; LIBXL_SAVE_HELPER=xmig xl restore
#   migrate-xl                 stock live migration (the baseline figure)
#   migrate-xmig-send          xmig helper on the sending side only
#   migrate-xmig-recv          xmig helper on the receiving side only
#   migrate-xmig-both          xmig helper on both sides
#   migrate-xl-again           stock live migration once more (the baseline
#                              again, after the xmig runs: the host's load
#                              drifts)
#   xmig-logdirty-off          no log-dirty left on the guest afterwards
# Runs in the lab harness (tests/xen-lab/run.sh, lib.sh, guest-work.c,
# dom0-run.sh); run: tests/xen-lab/run.sh BUILD_DIR 20.  2026-11-30: two
# whole boots, 10 of 10 PASS each (XEN 4.17.7, 160 MB PVH guest-work).
# Each move is followed by lab_check_guest (same boot, ticking, every
# stamped page verified, xenstore written from the new domid).  Figures:
#   XMIG-LAB-FIGURE helper-<name> total_ms=... downtime_ms=... boot_downtime_ms=... stall_ms=...
# downtime_ms is the guest's largest CLOCK_MONOTONIC gap, a clock Linux
# stops while the domain is suspended (only the guest's own suspend and
# resume work shows); boot_downtime_ms is the CLOCK_BOOTTIME gap of the
# suspend, the time the guest did not run, suspended time included;
# stall_ms the largest gap outside the suspend (the guest got no CPU while
# the copy ran).  See lab_downtime in lib.sh.

H=${XMIG_SAVE_HELPER:-/xmig/bin/xmig-save-helper}
G=xh

if [ ! -x "$H" ]; then
	lab_result helper-self-test FAIL "no $H in dom0 (built without the Xen backend?)"
	return 0 2>/dev/null || exit 0
fi

if out=$("$H" --self-test 2>&1); then
	lab_result helper-self-test PASS "$(echo "$out" | tr '\n' ';' | cut -c1-200)"
else
	lab_result helper-self-test FAIL "$(echo "$out" | tr '\n' ';' | cut -c1-300)"
fi

# Refusals: the helper writes its log message (binary protocol) to stdout.
out=$("$H" --save-domain 0 -1 1 1 136 1 < /dev/null 2>&1 | tr -c '[:print:]' ' ')
case $out in
*"stream type 1 (Remus) is not supported"*) lab_result helper-refuses-remus PASS "$(echo "$out" | tr -s ' ' | cut -c1-160)" ;;
*) lab_result helper-refuses-remus FAIL "got: $(echo "$out" | tr -s ' ' | cut -c1-200)" ;;
esac
out=$("$H" --restore-domain 0 -1 1 1 0 2 0 768 0 < /dev/null 2>&1 | tr -c '[:print:]' ' ')
case $out in
*"no libxenlight loaded"*) lab_result helper-refuses-no-libxl PASS "$(echo "$out" | tr -s ' ' | cut -c1-160)" ;;
*) lab_result helper-refuses-no-libxl FAIL "got: $(echo "$out" | tr -s ' ' | cut -c1-200)" ;;
esac

# move NAME CMD...: run a move of guest $G, then check the guest; figures
helper_move() {
	hm=$1; shift
	if [ "$(lab__domcount $G)" != 1 ]; then
		lab_result "$hm" FAIL "no single running $G before the move"
		return 1
	fi
	before=$(lab_guest_ticks $G); before=${before%% *}
	lab_op "$@"
	hm_rc=$?
	# the engine's last progress lines (XMIG_HELPER_PROGRESS=1)
	grep -a '"phase"' "$LAB_DIR/op.log" | tail -n 2 | while read -r l; do lab_log "$hm: $(echo "$l" | cut -c1-300)"; done
	if [ $hm_rc != 0 ]; then
		lab_result "$hm" FAIL "failed: $(grep -aE 'error|xmig-save-helper' "$LAB_DIR/op.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	total=$OP_MS
	grep -a 'xmig-save-helper: info' "$LAB_DIR/op.log" | head -n 6 | while read -r l; do lab_log "$hm: $l"; done
	if ! lab_check_guest $G; then
		lab_result "$hm" FAIL "$LAB_WHY"
		return 1
	fi
	set -- $(lab_downtime $G "$before")
	hb=${5#boot_ms=}
	hs=${7#stall_ms=}
	lab_result "$hm" PASS "total ${total} ms, guest downtime ${1} ms (${hb} ms with the suspended time; longest stall ${hs} ms); $LAB_CHECK"
	lab_figure "helper-$hm" total_ms=$total downtime_ms=$1 boot_downtime_ms=$hb stall_ms=$hs
	eval "T_$(echo "$hm" | tr -c 'a-z0-9\n' '_')=$total D_$(echo "$hm" | tr -c 'a-z0-9\n' '_')=$1 B_$(echo "$hm" | tr -c 'a-z0-9\n' '_')=$hb"
	return 0
}

if ! lab_guest_create $G pvh; then
	lab_result xmig-save-stock-restore FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi

S=$LAB_DIR/$G.save
helper_move xmig-save-stock-restore sh -c "LIBXL_SAVE_HELPER=$H xl -v save $G $S && xl restore $S"
rm -f "$S"
helper_move stock-save-xmig-restore sh -c "xl save $G $S && LIBXL_SAVE_HELPER=$H xl -v restore $S"
rm -f "$S"
helper_move migrate-xl xl migrate -s "" $G "xl migrate-receive"
# the receiving command inherits the sender's environment: unset it there
helper_move migrate-xmig-send env LIBXL_SAVE_HELPER=$H XMIG_HELPER_PROGRESS=1 xl -v migrate -s "" $G "env -u LIBXL_SAVE_HELPER xl migrate-receive"
helper_move migrate-xmig-recv xl migrate -s "" $G "env LIBXL_SAVE_HELPER=$H XMIG_HELPER_PROGRESS=1 xl -v migrate-receive"
helper_move migrate-xmig-both env LIBXL_SAVE_HELPER=$H XMIG_HELPER_PROGRESS=1 xl -v migrate -s "" $G "env LIBXL_SAVE_HELPER=$H XMIG_HELPER_PROGRESS=1 xl -v migrate-receive"
helper_move migrate-xl-again xl migrate -s "" $G "xl migrate-receive"

# xl's own helper against xmig's, same guest, same boot
if [ -n "${T_migrate_xl:-}" ] && [ -n "${T_migrate_xmig_both:-}" ]; then
	lab_figure helper-vs-xl xl_total_ms=$T_migrate_xl xl_downtime_ms=$D_migrate_xl \
		xmig_total_ms=$T_migrate_xmig_both xmig_downtime_ms=$D_migrate_xmig_both \
		xmig_send_total_ms=${T_migrate_xmig_send:--1} xmig_send_downtime_ms=${D_migrate_xmig_send:--1} \
		xl_boot_downtime_ms=${B_migrate_xl:--1} xmig_boot_downtime_ms=${B_migrate_xmig_both:--1}
fi

if [ "$(lab__domcount $G)" = 1 ]; then
	lab_logdirty_off $G
	case $? in
	0) lab_result xmig-logdirty-off PASS "no log_dirty in Xen's paging mode for $G after xmig's moves" ;;
	1) lab_result xmig-logdirty-off FAIL "$LAB_WHY" ;;
	*) lab_log "log-dirty state not observable: $LAB_WHY" ;;
	esac
fi
lab_guest_destroy $G
