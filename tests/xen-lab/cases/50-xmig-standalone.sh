# 50-xmig-standalone: migrate-send xen:NAME and migrate-receive --backend xen
# move a real PVH guest on their own (libxl does the toolstack's part in
# each process; xmig's engine and Xen backend move memory and vcpu state).
# Sourced by dom0-run.sh after lib.sh (its sa_* functions); run: tests/xen-lab/run.sh BUILD_DIR 50.
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

sa_move sa-migrate-tcp tcp
sa_move sa-migrate-tls tls

if [ "$(lab__domcount $G)" = 1 ]; then
	lab_logdirty_off $G
	case $? in
	0) lab_result sa-logdirty-off PASS "no log_dirty in Xen's paging mode for $G after the moves" ;;
	1) lab_result sa-logdirty-off FAIL "$LAB_WHY" ;;
	*) lab_log "log-dirty state not observable: $LAB_WHY" ;;
	esac
fi
lab_guest_destroy $G
