# 50-xmig-standalone: migrate-send xen:NAME and migrate-receive --backend xen
# move a real PVH guest on their own (libxl does the toolstack's part in
# each process; xmig's engine and Xen backend move memory and vcpu state).
# Sourced by dom0-run.sh after lib.sh (its sa_* functions); run: tests/xen-lab/run.sh BUILD_DIR 50.
#   sa-xl-baseline        stock xl migrate of the same guest, for the figures
#   sa-migrate-tcp        live, tcp on dom0's loopback, back-channel handover
#   sa-migrate-tls        the same over TLS (tests/tls-certs.sh's PKI)
#   sa-logdirty-off       no log-dirty on the guest afterwards
# Figures: XMIG-LAB-FIGURE sa-<name> total_ms=... downtime_ms=...

G=sa1
BIN=/xmig/bin
CERTS=/xmig/certs
W=$LAB_DIR/sa
mkdir -p "$W"

if [ ! -x "$BIN/xmig-save-helper" ]; then
	lab_result sa-migrate-tcp FAIL "no xmig-save-helper in dom0 (built without the Xen backend?)"
	return 0 2>/dev/null || exit 0
fi

if ! lab_guest_create $G pvh; then
	lab_result sa-migrate-tcp FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi

# the baseline on the same guest, same boot: stock xl migrate (a pipe)
if [ "$(lab__domcount $G)" = 1 ]; then
	_before=$(lab_guest_ticks $G); _before=${_before%% *}
	lab_op xl migrate -s "" $G "xl migrate-receive"
	_rc=$?; _total=$OP_MS
	if [ $_rc != 0 ]; then
		lab_result sa-xl-baseline FAIL "xl migrate rc=$_rc: $(sa_tail "$LAB_DIR/op.log")"
	elif sa_check sa-xl-baseline "$_before" "$_total"; then
		XL_T=$_total; XL_D=$(lab_downtime $G "$_before" | cut -d' ' -f1)
	fi
fi

sa_move sa-migrate-tcp tcp && { SA_T=$_total; SA_D=$(lab_downtime $G "$_before" | cut -d' ' -f1); }
sa_move sa-migrate-tls tls
if [ -n "${XL_T:-}" ] && [ -n "${SA_T:-}" ]; then
	lab_figure sa-vs-xl xl_total_ms=$XL_T xl_downtime_ms=$XL_D \
		xmig_total_ms=$SA_T xmig_downtime_ms=$SA_D
fi

if [ "$(lab__domcount $G)" = 1 ]; then
	lab_logdirty_off $G
	case $? in
	0) lab_result sa-logdirty-off PASS "no log_dirty in Xen's paging mode for $G after the moves" ;;
	1) lab_result sa-logdirty-off FAIL "$LAB_WHY" ;;
	*) lab_log "log-dirty state not observable: $LAB_WHY" ;;
	esac
fi
lab_guest_destroy $G
