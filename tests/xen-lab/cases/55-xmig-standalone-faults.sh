# 55-xmig-standalone-faults: failures of migrate-send xen:NAME and
# migrate-receive --backend xen on a real PVH guest: nothing lost, nothing
# left.  Sourced by dom0-run.sh after lib.sh (its sa_* functions); run:
# tests/xen-lab/run.sh BUILD_DIR 55.
#   sa-kill-sender        migrate-send SIGKILLed mid-copy: the source ticks
#                         on, no G--incoming is left
#   sa-kill-receiver      migrate-receive SIGKILLed mid-copy: the same (the
#                         orphaned save helper destroys the half-built domain)
#   sa-no-memory          a target without the memory refuses in its REPLY,
#                         before any page: the source is untouched
#   sa-faults-logdirty-off       no log-dirty on the guest afterwards

G=sa2
BIN=/xmig/bin
CERTS=/xmig/certs
W=$LAB_DIR/sa
mkdir -p "$W"

if [ ! -x "$BIN/xmig-save-helper" ]; then
	lab_result sa-kill-sender FAIL "no xmig-save-helper in dom0 (built without the Xen backend?)"
	return 0 2>/dev/null || exit 0
fi

# sa_kill NAME WHO: kill WHO (send|receive) with SIGKILL once the first
# pre-copy pass is under way, then check nothing is lost or left.
sa_kill() {
	_name=$1; _who=$2
	if ! sa_listen "$W/$_name.recv.log" -v "tcp:127.0.0.1:0"; then
		lab_result "$_name" FAIL "receiver did not listen: $(sa_tail "$W/$_name.recv.log")"
		return 1
	fi
	"$BIN/migrate-send" --progress json --bandwidth 8M "xen:$G" "tcp:127.0.0.1:$SA_PORT" \
		> "$W/$_name.send.log" 2>&1 &
	_spid=$!
	# mid-copy: the first progress line of the live phase with pages sent
	_i=0
	while [ $_i -lt 600 ] && ! grep -q '"phase":"live".*"pages":[1-9]' "$W/$_name.send.log"; do
		kill -0 $_spid 2>/dev/null || break
		sleep 0.1; _i=$((_i + 1))
	done
	if ! grep -q '"phase":"live".*"pages":[1-9]' "$W/$_name.send.log"; then
		kill -9 $_spid $SA_RPID 2>/dev/null
		lab_result "$_name" FAIL "never saw the copy under way: $(sa_tail "$W/$_name.send.log")"
		return 1
	fi
	# the half-built target must exist, or nothing is tested by its absence
	# (libxl builds it while the first pages are already on their way)
	_i=0
	while [ $_i -lt 600 ] && [ "$(lab__domcount $G--incoming)" != 1 ]; do
		kill -0 $_spid 2>/dev/null || break
		sleep 0.1; _i=$((_i + 1))
	done
	if [ "$(lab__domcount $G--incoming)" != 1 ]; then
		kill -9 $_spid $SA_RPID 2>/dev/null
		lab_result "$_name" FAIL "no $G--incoming while the copy ran"
		return 1
	fi
	if [ "$_who" = send ]; then
		kill -9 $_spid
		sa_wait $SA_RPID 60
		wait $_spid 2>/dev/null
		[ $SA_RC != 0 ] || { lab_result "$_name" FAIL "the receiver reported success"; return 1; }
	else
		kill -9 $SA_RPID
		sa_wait $_spid 60
		wait $SA_RPID 2>/dev/null
		[ $SA_RC = 1 ] || { lab_result "$_name" FAIL "migrate-send exited $SA_RC, not 1: $(sa_tail "$W/$_name.send.log")"; return 1; }
		grep -q 'resumed on this host' "$W/$_name.send.log" ||
			lab_log "$_name: (the source was never suspended: nothing to resume)"
		# the orphaned helper cleans up after its dead parent
		_i=0
		while [ $_i -lt 300 ] && [ "$(lab__domcount $G--incoming)" != 0 ]; do sleep 0.1; _i=$((_i + 1)); done
	fi
	if ! lab_check_guest $G; then
		lab_result "$_name" FAIL "$LAB_WHY; receiver: $(sa_tail "$W/$_name.recv.log" 2)"
		return 1
	fi
	lab_result "$_name" PASS "killed mid-copy; $LAB_CHECK"
}

if ! lab_guest_create $G pvh; then
	lab_result sa-kill-sender FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi

sa_kill sa-kill-sender send
sa_kill sa-kill-receiver receive

# no memory on the target: fill the host with a paused domain first
if [ "$(lab__domcount $G)" = 1 ]; then
	free=$(xl info free_memory 2>/dev/null)
	hog=$(( ${free:-0} - 64 ))
	cat > "$W/hog.cfg" <<EOF
name = "sahog"
type = "pvh"
kernel = "/guest/vmlinux"
ramdisk = "/guest/guest.cpio.gz"
memory = $hog
vcpus = 1
EOF
	if [ $hog -lt 256 ] || ! xl create -p "$W/hog.cfg" > "$W/hog.log" 2>&1; then
		lab_result sa-no-memory FAIL "cannot fill the host (free ${free:-?} MiB): $(sa_tail "$W/hog.log")"
	elif ! sa_listen "$W/nomem.recv.log" "tcp:127.0.0.1:0"; then
		lab_result sa-no-memory FAIL "receiver did not listen"
	else
		timeout 120 "$BIN/migrate-send" -v --report json "xen:$G" "tcp:127.0.0.1:$SA_PORT" > "$W/nomem.send.log" 2>&1
		_src=$?
		sa_wait $SA_RPID 60
		if [ $_src != 1 ]; then
			lab_result sa-no-memory FAIL "migrate-send exited $_src: $(sa_tail "$W/nomem.send.log")"
		elif ! grep -q 'MiB free' "$W/nomem.send.log"; then
			lab_result sa-no-memory FAIL "no memory refusal in: $(sa_tail "$W/nomem.send.log")"
		elif ! grep -q '"pages_sent":0,' "$W/nomem.send.log"; then
			lab_result sa-no-memory FAIL "memory was sent before the refusal"
		elif ! lab_check_guest $G; then
			lab_result sa-no-memory FAIL "$LAB_WHY"
		else
			lab_result sa-no-memory PASS "$(grep -o 'domain [^ ]* needs [0-9]* MiB; this host has [0-9]* MiB free' "$W/nomem.send.log" | head -n 1); $LAB_CHECK"
		fi
	fi
	xl destroy sahog > /dev/null 2>&1
fi

if [ "$(lab__domcount $G)" = 1 ]; then
	lab_logdirty_off $G
	case $? in
	0) lab_result sa-faults-logdirty-off PASS "no log_dirty in Xen's paging mode for $G after the moves" ;;
	1) lab_result sa-faults-logdirty-off FAIL "$LAB_WHY" ;;
	*) lab_log "log-dirty state not observable: $LAB_WHY" ;;
	esac
fi
lab_guest_destroy $G
