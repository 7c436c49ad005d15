# 51-xmig-standalone-pipes: migrate-send xen:NAME and migrate-receive --backend xen
# move a real PVH guest on their own (libxl does the toolstack's part in
# each process; xmig's engine and Xen backend move memory and vcpu state).
# Sourced by dom0-run.sh after lib.sh (its sa_* functions); run: tests/xen-lab/run.sh BUILD_DIR 51.
#   sa-migrate-exec       exec: a pipe to migrate-receive - (as over ssh)
#   sa-file-draftb        saved (not live, zero pages without data: a save,
#                         as xl save) to a draft-B file (verified by xmig-image),
#                         restored from it by migrate-receive
#   sa-pipes-logdirty-off       no log-dirty on the guest afterwards
# Figures: XMIG-LAB-FIGURE sa-<name> total_ms=... downtime_ms=...

G=sa4
BIN=/xmig/bin
CERTS=/xmig/certs
W=$LAB_DIR/sa
mkdir -p "$W"

if [ ! -x "$BIN/xmig-save-helper" ]; then
	lab_result sa-migrate-exec FAIL "no xmig-save-helper in dom0 (built without the Xen backend?)"
	return 0 2>/dev/null || exit 0
fi

if ! lab_guest_create $G pvh; then
	lab_result sa-migrate-exec FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi

# exec: the receiver at the far end of a pipe (as over ssh), the back-channel on its stdout
if [ "$(lab__domcount $G)" = 1 ]; then
	_before=$(lab_guest_ticks $G); _before=${_before%% *}
	lab_op timeout 200 "$BIN/migrate-send" -v --report json "xen:$G" "exec:$BIN/migrate-receive --backend xen -v -"
	_rc=$?; _total=$OP_MS
	cp "$LAB_DIR/op.log" "$W/sa-migrate-exec.log"
	if [ $_rc != 0 ]; then
		sa_dump "$W/sa-migrate-exec.log" 20
		lab_result sa-migrate-exec FAIL "rc=$_rc: $(sa_tail "$W/sa-migrate-exec.log" 4)"
	else
		sa_check sa-migrate-exec "$_before" "$_total"
	fi
fi

# a draft-B file: save (the source goes), verify, restore
if [ "$(lab__domcount $G)" = 1 ]; then
	F=$W/$G.xmig
	_before=$(lab_guest_ticks $G); _before=${_before%% *}
	_s=$(lab_now_ms)
	if ! timeout 200 "$BIN/migrate-send" -v --no-live --zero-pages "xen:$G" "file:$F" > "$W/save.log" 2>&1; then
		sa_dump "$W/save.log"
		lab_result sa-file-draftb FAIL "save: $(sa_tail "$W/save.log")"
	elif [ "$(lab__domcount $G)" != 0 ]; then
		lab_result sa-file-draftb FAIL "the saved domain still exists"
	elif ! "$BIN/xmig-image" verify "$F" > "$W/verify.log" 2>&1; then
		lab_result sa-file-draftb FAIL "xmig-image verify: $(sa_tail "$W/verify.log")"
	elif ! "$BIN/xmig-image" dump "$F" 2>/dev/null | head -n 4 | grep -q XMIG_DOMAIN_CONFIG; then
		lab_result sa-file-draftb FAIL "no XMIG_DOMAIN_CONFIG record in the file"
	elif ! timeout 200 "$BIN/migrate-receive" --backend xen -v "file:$F" > "$W/restore.log" 2>&1; then
		sa_dump "$W/restore.log" 20
		lab_result sa-file-draftb FAIL "restore: $(sa_tail "$W/restore.log")"
	else
		sa_check sa-file-draftb "$_before" "$(( $(lab_now_ms) - _s ))"
	fi
	rm -f "$F"
fi

if [ "$(lab__domcount $G)" = 1 ]; then
	lab_logdirty_off $G
	case $? in
	0) lab_result sa-pipes-logdirty-off PASS "no log_dirty in Xen's paging mode for $G after the moves" ;;
	1) lab_result sa-pipes-logdirty-off FAIL "$LAB_WHY" ;;
	*) lab_log "log-dirty state not observable: $LAB_WHY" ;;
	esac
fi
lab_guest_destroy $G
