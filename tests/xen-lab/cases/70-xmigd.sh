# 70-xmigd: two xmigd --backend xen in dom0 (A and B: their own listeners,
# control sockets and state directories; one hypervisor) move a real PVH
# guest with xmigctl.  Sourced by dom0-run.sh after lib.sh; run:
# tests/xen-lab/run.sh BUILD_DIR 70.
#   xd-domains         xmigctl domains lists the guest (xen, PVH, its domid,
#                      memory, vcpus, running), not dom0
#   xd-create-refused  create sim:... on a xen xmigd is refused, saying why
#   xd-migrate-ab      xmigctl migrate G to B's listener; watch says
#                      completed; lab_check_guest (nonce, ticks, pages,
#                      xenstore, one copy)
#   xd-migrate-ba      and back, driven by B
#   xd-cancel          a slow migration cancelled mid-copy: watch says
#                      cancelled, the guest runs at the source under its
#                      domid, no G--incoming left
#   xd-kill-restart    xmigd A SIGKILLed mid-copy, then started again on
#                      its state directory: its recovery cancels the
#                      migration and exactly one G runs (lab_check_guest)
#   xd-kill-receiver   the same with the receiving xmigd B once G--incoming
#                      is built: B's recovery discards it, the migration
#                      fails at A and G runs on there under its domid
# Figures: xd-migrate-ab, xd-migrate-ba total_ms/downtime_ms.

G=xd1
BIN=/xmig/bin
W=$LAB_DIR/xd
mkdir -p "$W"

if [ ! -x "$BIN/xmigd" ] || [ ! -x "$BIN/xmigctl" ]; then
	lab_result xd-domains FAIL "no xmigd or xmigctl in dom0"
	return 0 2>/dev/null || exit 0
fi
ip link show lo 2>/dev/null | grep -q 'state UNKNOWN\|UP' || ip link set lo up

# xd_start A|B: xmigd --backend xen in the background, until "ready";
# sets XD_PID_<X> and XD_PORT_<X>.  Returns 1 if it never gets ready.
xd_start() {
	"$BIN/xmigd" -v --backend xen --listen tcp:127.0.0.1:0 \
		--control "$W/$1.sock" --state-dir "$W/$1.state" >> "$W/$1.log" 2>&1 &
	eval "XD_PID_$1=$!"
	_n=$(grep -c 'ready: control' "$W/$1.log")
	_i=0
	while [ $_i -lt 300 ]; do
		if [ "$(grep -c 'ready: control' "$W/$1.log")" -gt "$_n" ]; then
			_p=$(sed -n 's/.*listening on [a-z]*:[^ ]*:\([0-9][0-9]*\).*/\1/p' "$W/$1.log" | tail -n 1)
			eval "XD_PORT_$1=$_p"
			return 0
		fi
		eval "kill -0 \$XD_PID_$1" 2>/dev/null || return 1
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}

xd_ctl() { _s=$1; shift; "$BIN/xmigctl" --socket "$W/$_s.sock" "$@"; }

# xd_watch X ID FILE: follow migration ID on xmigd X to its end (200 s at
# most); its last line (the final JSON) in FILE.
xd_watch() { timeout 200 "$BIN/xmigctl" --socket "$W/$1.sock" watch "$2" > "$3" 2>&1; }

# xd_under_way X ID: wait until migration ID has sent pages in its live
# phase (its progress, never a sleep); 1 if it never did.
xd_under_way() {
	_i=0
	while [ $_i -lt 600 ]; do
		_st=$(xd_ctl "$1" --json status "$2" 2>/dev/null)
		case $_st in
		*'"status":"running"'*'"phase":"live"'*) echo "$_st" | grep -q '"bytes":[1-9]' && return 0 ;;
		*'"status":"running"'*) ;;
		*) return 1 ;;
		esac
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}

# xd_move NAME FROM TO: xmigctl migrate G from xmigd FROM to TO's listener.
xd_move() {
	_name=$1; _from=$2; _to=$3
	if [ "$(lab__domcount $G)" != 1 ]; then
		lab_result "$_name" FAIL "no single running $G before the move"
		return 1
	fi
	eval "_port=\$XD_PORT_$_to"
	_before=$(lab_guest_ticks $G); _before=${_before%% *}
	_s=$(lab_now_ms)
	if ! _id=$(xd_ctl "$_from" migrate $G "tcp:127.0.0.1:$_port" 2>"$W/$_name.err"); then
		lab_result "$_name" FAIL "xmigctl migrate: $(sa_tail "$W/$_name.err")"
		return 1
	fi
	# where dom0's CPU goes while the copy runs (for the figures)
	( xd_under_way "$_from" "$_id" && top -b -n 1 -w 160 2>/dev/null | sed -n '7,14p' > "$W/$_name.top" ) &
	_top=$!
	xd_watch "$_from" "$_id" "$W/$_name.watch"
	_rc=$?
	_total=$(( $(lab_now_ms) - _s ))
	wait $_top 2>/dev/null
	[ -s "$W/$_name.top" ] && while read -r l; do lab_log "$_name: top: $(echo "$l" | tr -s ' ' | cut -c1-150)"; done < "$W/$_name.top"
	grep -a 'END queued' "$W/$_from.log" | tail -n 1 | while read -r l; do lab_log "$_name: $(echo "$l" | cut -c1-250)"; done
	_last=$(tail -n 1 "$W/$_name.watch")
	lab_log "$_name: migration $_id watch rc=$_rc ${_total} ms: $(echo "$_last" | cut -c1-300)"
	if [ $_rc != 0 ] || ! echo "$_last" | grep -q '"status":"completed"'; then
		sa_dump "$W/$_from.log" 20; sa_dump "$W/$_to.log" 20
		lab_result "$_name" FAIL "watch rc=$_rc: $(echo "$_last" | cut -c1-300)"
		return 1
	fi
	grep -q "received domain $G" "$W/$_to.log" ||
		{ lab_result "$_name" FAIL "xmigd $_to did not log the arrival of $G"; return 1; }
	sa_check "$_name" "$_before" "$_total"
}

if ! xd_start A || ! xd_start B; then
	sa_dump "$W/A.log"; [ -f "$W/B.log" ] && sa_dump "$W/B.log"
	lab_result xd-domains FAIL "xmigd did not start"
	return 0 2>/dev/null || exit 0
fi
lab_log "xmigd A on port $XD_PORT_A, B on port $XD_PORT_B"

if ! lab_guest_create $G pvh; then
	lab_result xd-domains FAIL "create: $LAB_WHY"
	kill $XD_PID_A $XD_PID_B
	return 0 2>/dev/null || exit 0
fi

# ---- domains -----------------------------------------------------------------
domid=$(xl domid $G 2>/dev/null)
xd_ctl A domains > "$W/domains.txt" 2>&1
xd_ctl A --json domains > "$W/domains.json" 2>&1
lab_log "xmigctl domains: $(sa_tail "$W/domains.txt")"
if ! grep -qE "^$G +running .* MiB +xen PVH +domid $domid, 1 vcpus" "$W/domains.txt"; then
	lab_result xd-domains FAIL "$G (domid $domid) not listed as a running PVH guest: $(sa_tail "$W/domains.txt")"
elif grep -q 'Domain-0' "$W/domains.txt"; then
	lab_result xd-domains FAIL "dom0 is listed"
elif ! grep -q "\"domid\":$domid" "$W/domains.json" ||
    ! grep -q '"memory":1[0-9]\{8\}' "$W/domains.json"; then
	lab_result xd-domains FAIL "--json lacks the domid or a memory of 160 MB: $(sa_tail "$W/domains.json")"
else
	lab_result xd-domains PASS "$(grep "^$G " "$W/domains.txt" | tr -s ' ')"
fi

# ---- create refused ------------------------------------------------------------
if xd_ctl A create sim:mem=16M > "$W/create.txt" 2>&1; then
	lab_result xd-create-refused FAIL "create was accepted: $(sa_tail "$W/create.txt")"
elif ! grep -q 'backend xen' "$W/create.txt"; then
	lab_result xd-create-refused FAIL "unclear refusal: $(sa_tail "$W/create.txt")"
else
	lab_result xd-create-refused PASS "$(sa_tail "$W/create.txt" 1)"
fi

# ---- there and back ---------------------------------------------------------------
xd_move xd-migrate-ab A B
xd_move xd-migrate-ba B A

# ---- cancel ---------------------------------------------------------------------
if [ "$(lab__domcount $G)" = 1 ]; then
	domid=$(xl domid $G)
	_id=$(xd_ctl A migrate $G "tcp:127.0.0.1:$XD_PORT_B" --bandwidth 8M 2>"$W/cancel.err")
	if [ -z "$_id" ]; then
		lab_result xd-cancel FAIL "xmigctl migrate: $(sa_tail "$W/cancel.err")"
	elif ! xd_under_way A "$_id"; then
		lab_result xd-cancel FAIL "never saw the copy under way: $(xd_ctl A --json status "$_id" | cut -c1-300)"
	else
		xd_ctl A cancel "$_id" > "$W/cancel.txt" 2>&1
		xd_watch A "$_id" "$W/cancel.watch"
		_last=$(tail -n 1 "$W/cancel.watch")
		_i=0
		while [ $_i -lt 300 ] && [ "$(lab__domcount $G--incoming)" != 0 ]; do sleep 0.1; _i=$((_i + 1)); done
		if ! echo "$_last" | grep -q '"status":"cancelled"'; then
			lab_result xd-cancel FAIL "not cancelled: $(echo "$_last" | cut -c1-300)"
		elif [ "$(xl domid $G 2>/dev/null)" != "$domid" ]; then
			lab_result xd-cancel FAIL "$G is not domain $domid any more ($(xl domid $G 2>&1))"
		elif [ "$(lab__domcount $G--incoming)" != 0 ]; then
			lab_result xd-cancel FAIL "$G--incoming left on the target"
		elif ! lab_check_guest $G; then
			lab_result xd-cancel FAIL "$LAB_WHY"
		else
			lab_result xd-cancel PASS "cancelled mid-copy, runs on as domain $domid; $LAB_CHECK"
		fi
	fi
fi

# ---- xmigd killed mid-migration, then started again -----------------------------
if [ "$(lab__domcount $G)" = 1 ]; then
	_id=$(xd_ctl A migrate $G "tcp:127.0.0.1:$XD_PORT_B" --bandwidth 8M 2>"$W/kill.err")
	if [ -z "$_id" ]; then
		lab_result xd-kill-restart FAIL "xmigctl migrate: $(sa_tail "$W/kill.err")"
	elif ! xd_under_way A "$_id"; then
		lab_result xd-kill-restart FAIL "never saw the copy under way"
	else
		kill -9 $XD_PID_A
		wait $XD_PID_A 2>/dev/null
		lab_log "xd-kill-restart: xmigd A killed during migration $_id"
		if ! xd_start A; then
			sa_dump "$W/A.log"
			lab_result xd-kill-restart FAIL "xmigd A did not start again"
		else
			# the ends of the migration settle: no G--incoming, no G--migratedaway
			_i=0
			while [ $_i -lt 600 ] && [ "$(lab__domcount $G--incoming)$(lab__domcount $G--migratedaway)" != 00 ]; do
				sleep 0.1; _i=$((_i + 1))
			done
			grep 'recovery' "$W/A.log" | tail -n 3 | while read -r l; do lab_log "xd-kill-restart: $(echo "$l" | cut -c1-300)"; done
			_all=$(xl list | awk -v n=$G '$1 == n || $1 == n "--incoming" || $1 == n "--migratedaway"' | wc -l)
			if [ "$_all" != 1 ]; then
				lab_result xd-kill-restart FAIL "$_all domains named $G* after the restart: $(xl list | tr '\n' ' ')"
			elif ! grep -q "recovery: domain $G .* was migrating" "$W/A.log"; then
				lab_result xd-kill-restart FAIL "xmigd A's recovery did not find the migration: $(grep recovery "$W/A.log" | tail -n 2 | tr '\n' ' ')"
			elif ! lab_check_guest $G; then
				lab_result xd-kill-restart FAIL "$LAB_WHY"
			else
				lab_result xd-kill-restart PASS "recovery cancelled the migration, one $G runs; $LAB_CHECK"
			fi
		fi
	fi
fi

# ---- the receiving xmigd killed mid-migration, then started again ---------------
if [ "$(lab__domcount $G)" = 1 ]; then
	domid=$(xl domid $G)
	_id=$(xd_ctl A migrate $G "tcp:127.0.0.1:$XD_PORT_B" --bandwidth 8M 2>"$W/killb.err")
	_i=0
	while [ -n "$_id" ] && [ $_i -lt 600 ] && [ "$(lab__domcount $G--incoming)" != 1 ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	if [ -z "$_id" ]; then
		lab_result xd-kill-receiver FAIL "xmigctl migrate: $(sa_tail "$W/killb.err")"
	elif ! xd_under_way A "$_id" || [ "$(lab__domcount $G--incoming)" != 1 ]; then
		lab_result xd-kill-receiver FAIL "never saw the copy under way with $G--incoming built"
	else
		kill -9 $XD_PID_B
		wait $XD_PID_B 2>/dev/null
		lab_log "xd-kill-receiver: xmigd B killed during migration $_id"
		if ! xd_start B; then
			sa_dump "$W/B.log"
			lab_result xd-kill-receiver FAIL "xmigd B did not start again"
		else
			xd_watch A "$_id" "$W/killb.watch"
			_last=$(tail -n 1 "$W/killb.watch")
			_i=0
			while [ $_i -lt 600 ] && [ "$(lab__domcount $G--incoming)$(lab__domcount $G--migratedaway)" != 00 ]; do
				sleep 0.1; _i=$((_i + 1))
			done
			grep 'recovery' "$W/B.log" | tail -n 2 | while read -r l; do lab_log "xd-kill-receiver: $(echo "$l" | cut -c1-300)"; done
			_all=$(xl list | awk -v n=$G '$1 == n || $1 == n "--incoming" || $1 == n "--migratedaway"' | wc -l)
			if [ "$_all" != 1 ]; then
				lab_result xd-kill-receiver FAIL "$_all domains named $G* after the restart: $(xl list | tr '\n' ' ')"
			elif ! echo "$_last" | grep -q '"status":"\(failed\|cancelled\)"'; then
				lab_result xd-kill-receiver FAIL "the migration did not fail: $(echo "$_last" | cut -c1-300)"
			elif [ "$(xl domid $G 2>/dev/null)" != "$domid" ]; then
				lab_result xd-kill-receiver FAIL "$G is not domain $domid any more"
			elif ! grep -q 'recovery: a half-received domain' "$W/B.log"; then
				lab_result xd-kill-receiver FAIL "xmigd B's recovery did not find the incoming migration: $(grep recovery "$W/B.log" | tail -n 2 | tr '\n' ' ')"
			elif ! lab_check_guest $G; then
				lab_result xd-kill-receiver FAIL "$LAB_WHY"
			else
				lab_result xd-kill-receiver PASS "B's recovery discarded $G--incoming, the source runs on as domain $domid ($(echo "$_last" | grep -o '"error":"[^"]*"' | cut -c1-120)); $LAB_CHECK"
			fi
		fi
	fi
fi

kill $XD_PID_A $XD_PID_B 2>/dev/null
sa_wait $XD_PID_A 60; sa_wait $XD_PID_B 60
lab_guest_destroy $G
