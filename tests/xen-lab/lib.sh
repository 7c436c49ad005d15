# tests/xen-lab/lib.sh: functions for lab cases, sourced (with the case) by
# dom0-run.sh inside dom0. POSIX sh (dash). These names are a stable API for
# cases/NN-*.sh; add new functions rather than change these.
#
#   lab_log MSG...                     progress line on the console
#   lab_result NAME PASS|FAIL DETAIL   the verdict line run.sh collects:
#                                      "XMIG-LAB-RESULT NAME PASS|FAIL DETAIL"
#   lab_figure NAME k=v...             "XMIG-LAB-FIGURE NAME k=v ..." (measurements)
#   lab_now_ms                         dom0 wall clock in ms
#   lab_op CMD...                      run CMD, output to $LAB_DIR/op.log, log rc
#                                      and time; sets OP_MS; returns CMD's status
#   lab_guest_create NAME [pvh|pv] [memMB]
#                                      start a guest running guest-work and wait
#                                      until it ticks and wrote xenstore data/tick;
#                                      returns 0, or 1 with LAB_WHY set
#   lab_guest_ticks NAME               prints "<last tick> <nonce>" from the guest's
#                                      console log(s) (all of guest-NAME*.log)
#   lab_check_guest NAME               after an event (restore, migration): the guest
#                                      is the same boot (one nonce, the one seen at
#                                      create), its tick moves on, a full page
#                                      verification pass completed after the check
#                                      began, no MISMATCH ever, xenstore
#                                      /local/domain/<domid>/data/tick is written
#                                      by the guest under its current domid, and
#                                      exactly one domain has that name (no
#                                      NAME--incoming left). Returns 0, or 1 with
#                                      LAB_WHY set; LAB_CHECK holds a summary.
#   lab_downtime NAME [FROM [TO]]      prints "<ms> <tick> guest_ms=G console_ms=C
#                                      boot_ms=B wall=W stall_ms=S":
#                                      the largest gap between consecutive ticks
#                                      FROM..TO and the tick after it. G: as the
#                                      guest's own clock saw it ("GW: GAP" lines,
#                                      ms resolution, -1 if no gap > 3 ticks);
#                                      C: from the dom0 console log stamps, which
#                                      xenconsoled writes in whole seconds (so C
#                                      is whole seconds, good to about 1 s). <ms>
#                                      is G when there is one, else C. G is the
#                                      guest's CLOCK_MONOTONIC, which stops while
#                                      the domain is suspended. B is the
#                                      CLOCK_BOOTTIME gap (suspended time
#                                      included) of the suspend FROM..TO: the
#                                      gap where that clock ran furthest ahead
#                                      of CLOCK_MONOTONIC (-1 if none); W the
#                                      guest's wall clock (s.ms) when it saw it.
#                                      S is the largest gap without a suspend
#                                      (both clocks agree): the guest got no
#                                      CPU, e.g. while dom0 was busy (-1: none).
#   lab_logdirty_off NAME|DOMID        0 if Xen's domain dump shows no log-dirty
#                                      paging for the domain, 1 if it does, 2 if
#                                      it cannot be observed (LAB_WHY says why);
#                                      uses `xl debug-keys q` and clears Xen's
#                                      console ring (xl dmesg -c)
#   lab_guest_destroy NAME             destroy every domain called NAME or
#                                      NAME--incoming
#
# lab__* functions are internal and may change.
#
# Environment: LAB_CASE (the case's file name), LAB_GUEST_MB (guest-work buffer,
# default 64), LAB_GUEST_RATE (pages rewritten per 10 ms tick, default 64),
# LAB_CHECK_TIMEOUT (seconds lab_check_guest waits, default 90), LAB_GUEST_ARGS
# (more guest kernel arguments, e.g. gw.selftest=1: see guest-work.c),
# LAB_GUEST_VCPUS (the guest's vcpus, default 1).
# Guests: kernel /guest/vmlinux (dom0's, uncompressed), ramdisk /guest/guest.cpio.gz, config
# in /run/xmig-lab/NAME.cfg, console log /var/log/xen/console/guest-NAME*.log.

LAB_DIR=/run/xmig-lab
LAB_CONSOLE=/var/log/xen/console
LAB_RESULTS=${LAB_RESULTS:-$LAB_DIR/results}
LAB_WHY=
LAB_CHECK=

lab_log() { echo "XMIG-LAB: [$(cut -d' ' -f1 /proc/uptime)] $*"; }

lab_result() {
	case $2 in
	PASS | FAIL) ;;
	*) echo "lab_result: bad verdict '$2' for $1" >&2; set -- "$1" FAIL "bad verdict '$2': $3" ;;
	esac
	echo "XMIG-LAB-RESULT $1 $2 $3"
	echo "$1 $2" >> "$LAB_RESULTS"
}

lab_figure() { echo "XMIG-LAB-FIGURE $*"; }

lab_now_ms() { date +%s%3N; }

lab_op() {
	_s=$(lab_now_ms)
	"$@" > "$LAB_DIR/op.log" 2>&1
	_rc=$?
	OP_MS=$(( $(lab_now_ms) - _s ))
	lab_log "rc=$_rc ${OP_MS} ms: $*"
	[ $_rc = 0 ] || lab_log "output: $(tail -n 5 "$LAB_DIR/op.log" | tr '\n' ' ' | cut -c1-400)"
	return $_rc
}

# the console lines of a guest, across its log files (after a migration the
# receiving domain logs to guest-NAME--incoming.log), timestamp prefix kept
lab__console() { cat "$LAB_CONSOLE/guest-$1.log" "$LAB_CONSOLE/guest-$1--incoming.log" 2>/dev/null | tr -d '\r'; }

lab__ticklines() { lab__console "$1" | grep -aE 'TICK [0-9a-f]{16} [0-9]+$'; }

# lab__scan NAME [T0 PASSLEN]: one pass over the guest's console logs (few
# processes: forks are slow under TCG). Prints
#   <max tick> <its nonce> <distinct nonces> <MISMATCH lines> <first PASS-DONE
#   tick above T0+PASSLEN or -1> <xenstore-written 0|1> <nonces,comma,list>
lab__scan() {
	set -- "$1" "${2:--1}" "${3:-0}" "$LAB_CONSOLE/guest-$1.log" "$LAB_CONSOLE/guest-$1--incoming.log"
	[ -e "$5" ] || set -- "$1" "$2" "$3" "$4"
	[ -e "$4" ] || set -- "$1" "$2" "$3" /dev/null ${5:+"$5"}
	awk -v t0="$2" -v per="$3" '
		{ sub(/\r$/, "") }
		/TICK [0-9a-f]+ [0-9]+$/ && length($(NF-1)) == 16 {
			n = $NF + 0
			if (!seen || n > max) { seen = 1; max = n; nonce = $(NF-1) }
			if (!($(NF-1) in ns)) { ns[$(NF-1)] = 1; nn++; list = list (nn > 1 ? "," : "") $(NF-1) }
		}
		/MISMATCH/ { mm++ }
		/GW: xenstore data\/tick written/ { xs = 1 }
		/GW: PASS-DONE tick=/ && pd < 0 {
			v = $0; sub(/.*PASS-DONE tick=/, "", v); v += 0
			if (t0 >= 0 && v > t0 + per) pd = v
		}
		BEGIN { pd = -1 }
		END { if (!seen) { max = -1; nonce = "none" }
			print max, nonce, nn + 0, mm + 0, pd, xs + 0, (list == "" ? "-" : list) }' "$4" ${5:+"$5"}
}

lab_guest_ticks() { set -- $(lab__scan "$1"); echo "$1 $2"; }

lab__domcount() { xl list 2>/dev/null | awk -v n="$1" '$1 == n' | wc -l; }

lab_guest_destroy() {
	for d in $(xl list 2>/dev/null | awk -v n="$1" '$1 == n || $1 == n "--incoming" {print $2}'); do
		xl destroy "$d" >/dev/null 2>&1
	done
}

lab_guest_create() {
	name=$1; type=${2:-pvh}; mem=${3:-160}
	LAB_WHY=
	mkdir -p "$LAB_DIR"
	lab_guest_destroy "$name"
	rm -f "$LAB_CONSOLE/guest-$name.log" "$LAB_CONSOLE/guest-$name--incoming.log" "$LAB_DIR/$name.nonce"
	cat > "$LAB_DIR/$name.cfg" <<EOF
name = "$name"
type = "$type"
kernel = "/guest/vmlinux"
ramdisk = "/guest/guest.cpio.gz"
extra = "console=hvc0 rdinit=/init quiet gw.mb=${LAB_GUEST_MB:-64} gw.rate=${LAB_GUEST_RATE:-64} ${LAB_GUEST_ARGS:-}"
memory = $mem
vcpus = ${LAB_GUEST_VCPUS:-1}
on_crash = "preserve"
on_poweroff = "destroy"
tsc_mode = "native"
EOF
	t0=$(lab_now_ms)
	if ! xl create "$LAB_DIR/$name.cfg" > "$LAB_DIR/$name.create.log" 2>&1; then
		LAB_WHY="xl create $type failed: $(tail -n 3 "$LAB_DIR/$name.create.log" | tr '\n' ' ')"
		return 1
	fi
	domid=$(xl domid "$name" 2>/dev/null)
	i=0
	while [ $i -lt 120 ]; do
		set -- $(lab__scan "$name")
		if [ "$1" -ge 50 ] && [ "$6" = 1 ]; then
			echo "$2" > "$LAB_DIR/$name.nonce"
			lab_log "$name: $type ${mem}MB domid $domid up and ticking (tick $1) after $(( $(lab_now_ms) - t0 )) ms"
			return 0
		fi
		t="$1 $2"
		if lab__console "$name" | grep -aqE 'GW: FATAL|Kernel panic'; then break; fi
		sleep 1; i=$((i + 1))
	done
	LAB_WHY="$name ($type, domid $domid) did not start ticking with xenstore: last tick '${t:-}'; console tail: $(lab__console "$name" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"
	return 1
}

lab_check_guest() {
	name=$1
	LAB_WHY=; LAB_CHECK=
	n=$(lab__domcount "$name")
	if [ "$n" != 1 ]; then LAB_WHY="$n domains named $name"; return 1; fi
	n=$(lab__domcount "$name--incoming")
	if [ "$n" != 0 ]; then LAB_WHY="$name--incoming still exists"; return 1; fi
	domid=$(xl domid "$name" 2>/dev/null)
	state=$(xl list "$name" 2>/dev/null | awk 'NR == 2 {print $5}')
	case $state in *c*) LAB_WHY="$name (domid $domid) has crashed (state $state)"; return 1 ;; esac
	want=$(cat "$LAB_DIR/$name.nonce" 2>/dev/null)
	# ticks per full page pass, from the guest's own START line
	per=$(lab__console "$name" | sed -n 's/.*GW: START .* pages=\([0-9]*\) rate=\([0-9]*\).*/\1 \2/p' |
		awk 'END { print ($2 > 0 ? int($1 / $2) + 1 : 0) }')
	[ "${per:-0}" -gt 0 ] || per=$(( ${LAB_GUEST_MB:-64} * 256 / ${LAB_GUEST_RATE:-64} ))
	set -- $(lab__scan "$name")
	t0=$1
	deadline=$(( $(date +%s) + ${LAB_CHECK_TIMEOUT:-90} ))
	ok_tick=; ok_pass=; ok_xs=; v=
	while :; do
		set -- $(lab__scan "$name" "$t0" "$per")
		if [ "$7" != "$want" ]; then
			LAB_WHY="boot nonces seen: $7, want only $want (the guest rebooted or is another one)"
			return 1
		fi
		if [ "$4" != 0 ]; then
			LAB_WHY="guest found $4 stale pages: $(lab__console "$name" | grep -a MISMATCH | head -n 3 | tr '\n' ' ')"
			return 1
		fi
		[ "$1" -ge $((t0 + 100)) ] && ok_tick=$1
		[ "$5" -ge 0 ] && ok_pass=$5
		t=$1
		if [ -z "$ok_xs" ]; then
			v=$(xenstore-read "/local/domain/$domid/data/tick" 2>/dev/null)
			case $v in '' | *[!0-9]*) ;; *) [ "$v" -ge "$t0" ] && ok_xs=$v ;; esac
		fi
		[ -n "$ok_tick" ] && [ -n "$ok_pass" ] && [ -n "$ok_xs" ] && break
		if [ "$(date +%s)" -ge "$deadline" ]; then
			LAB_WHY="after ${LAB_CHECK_TIMEOUT:-90} s: tick $t0 -> $t (want +100)${ok_pass:+, page pass ok}${ok_pass:-, no full page pass after tick $t0}, xenstore data/tick of domid $domid: '${v:-}'${ok_xs:+ ok}"
			return 1
		fi
		sleep 1
	done
	LAB_CHECK="domid $domid nonce $want tick $t0->$ok_tick pass@$ok_pass xs=$ok_xs"
	lab_log "check $name ok: $LAB_CHECK"
	return 0
}

lab_downtime() {
	lab__console "$1" | python3 -c '
import re, sys
lo = int(sys.argv[1]); hi = int(sys.argv[2])
ts = re.compile(r"\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?\]")
tick = re.compile(r"TICK [0-9a-f]{16} (\d+)$")
gap = re.compile(r"GW: GAP (\d+) tick=(\d+)")
bgap = re.compile(r"GW: GAP (\d+) tick=(\d+) boot_ms=(\d+) wall=([0-9.]+)")
first = {}; guest = (-1, -1); boot = (-1, "-", -1); stall = -1
for line in sys.stdin:
    line = line.rstrip("\n")
    g = gap.search(line)
    if g and lo < int(g.group(2)) <= hi and int(g.group(1)) > guest[0]:
        guest = (int(g.group(1)), int(g.group(2)))
    b = bgap.search(line)
    if b and lo < int(b.group(2)) <= hi:
        m, bt = int(b.group(1)), int(b.group(3))
        if bt - m > 2 and bt - m > boot[2]:
            boot = (bt, b.group(4), bt - m)
        if bt - m <= 2 and bt > stall:
            stall = bt
    m = tick.search(line); s = ts.search(line)
    if not m or not s:
        continue
    n = int(m.group(1))
    if n < lo or n > hi or n in first:
        continue
    d, H, M, S, frac = int(s.group(3)), int(s.group(4)), int(s.group(5)), int(s.group(6)), s.group(7) or "0"
    first[n] = (((d * 24 + H) * 60 + M) * 60 + S) * 1000 + int((frac + "000")[:3])
prev = None; con = (-1, -1)
for n in sorted(first):
    if prev is not None and first[n] - first[prev] > con[0]:
        con = (first[n] - first[prev], n)
    prev = n
# the guest clock has ms; the console stamps only whole seconds
best = guest if guest[0] >= 0 else con
print(best[0], best[1], "guest_ms=%d console_ms=%d boot_ms=%d wall=%s stall_ms=%d" % (guest[0], con[0], boot[0], boot[1], stall))
' "${2:-0}" "${3:-999999999}"
}

lab_logdirty_off() {
	LAB_WHY=
	case $1 in *[!0-9]*) d=$(xl domid "$1" 2>/dev/null) ;; *) d=$1 ;; esac
	if [ -z "$d" ]; then LAB_WHY="no domain $1"; return 2; fi
	xl dmesg -c > /dev/null 2>&1
	xl debug-keys q > /dev/null 2>&1 || { LAB_WHY="xl debug-keys failed"; return 2; }
	sleep 1
	line=$(xl dmesg 2>/dev/null | awk -v d="$d" '
		/General information for domain/ { cur = ($0 ~ ("domain " d ":")) }
		cur && /paging assistance/ { print; exit }')
	if [ -z "$line" ]; then LAB_WHY="no 'paging assistance' line for domain $d in Xen's 'q' dump"; return 2; fi
	case $line in *log_dirty*) LAB_WHY="domain $d: $line"; return 1 ;; esac
	return 0
}

# ---- migrate-send xen:NAME / migrate-receive --backend xen (cases 50, 55) ----
# sa_listen LOG ARGS...   start migrate-receive --backend xen --once ARGS in the
#                         background; SA_RPID, SA_PORT (from "listening on")
# sa_wait PID SECONDS     wait for a background process (SIGKILL after SECONDS);
#                         its status in SA_RC
# sa_tail FILE [N]        the last N lines of FILE on one line
# sa_dump FILE [N]        the last N lines of FILE on the console
# sa_check NAME BEFORE MS lab_check_guest $G and the verdict with the downtime
# sa_move NAME tcp|tls    a live migration of $G to a receiver on this host
# (they use G, BIN=/xmig/bin, CERTS=/xmig/certs and W, a scratch folder)

# sa_listen LOG ARGS...: start migrate-receive --backend xen --once on an
# ephemeral loopback port in the background; sets SA_RPID and SA_PORT
# (from its "listening on" line).  Returns 1 if it never listens.
sa_listen() {
	_log=$1; shift
	# dom0's init brings up no interface: loopback is ours to raise
	ip link show lo 2>/dev/null | grep -q 'state UNKNOWN\|UP' || ip link set lo up
	"$BIN/migrate-receive" --backend xen --once "$@" > "$_log" 2>&1 &
	SA_RPID=$!
	SA_PORT=
	_i=0
	while [ $_i -lt 300 ]; do
		SA_PORT=$(sed -n 's/.*listening on [a-z]*:[^ ]*:\([0-9][0-9]*\).*/\1/p' "$_log" | head -n 1)
		[ -n "$SA_PORT" ] && return 0
		kill -0 $SA_RPID 2>/dev/null || break
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# sa_wait PID SECONDS: wait for a background process, killing it after
# SECONDS; its status in SA_RC.
sa_wait() {
	_n=0
	while kill -0 "$1" 2>/dev/null && [ $_n -lt $(($2 * 10)) ]; do
		sleep 0.1
		_n=$((_n + 1))
	done
	kill -0 "$1" 2>/dev/null && kill -9 "$1" 2>/dev/null
	wait "$1"
	SA_RC=$?
}

sa_tail() { tail -n "${2:-3}" "$1" | tr '\n' ' ' | tr -s ' ' | cut -c1-400; }

# sa_dump FILE [N]: the last N lines of a log on the console (on failures)
sa_dump() {
	tail -n "${2:-12}" "$1" | while IFS= read -r l; do lab_log "  $(basename "$1"): $(echo "$l" | cut -c1-300)"; done
}

# sa_check NAME BEFORE TOTAL: after a move, the guest is whole; verdict.
sa_check() {
	if ! lab_check_guest $G; then
		lab_result "$1" FAIL "$LAB_WHY"
		return 1
	fi
	set -- "$1" "$2" "$3" $(lab_downtime $G "$2")
	lab_result "$1" PASS "total $3 ms, guest downtime $4 ms; $LAB_CHECK"
	lab_figure "$1" total_ms=$3 downtime_ms=$4
	return 0
}

# sa_move NAME DEST [RECEIVER-ARGS...]: a live migration to a receiver
# on this host; DEST is tcp or tls.
sa_move() {
	_name=$1; _kind=$2; shift 2
	if [ "$(lab__domcount $G)" != 1 ]; then
		lab_result "$_name" FAIL "no single running $G before the move"
		return 1
	fi
	_tls_r= _tls_s=
	if [ "$_kind" = tls ]; then
		_tls_r="--tls-cert $CERTS/server.pem --tls-key $CERTS/server.key --tls-ca $CERTS/ca1.pem"
		_tls_s="--tls-cert $CERTS/client.pem --tls-key $CERTS/client.key --tls-ca $CERTS/ca1.pem --tls-peer localhost"
	fi
	if ! sa_listen "$W/$_name.recv.log" -v --report json $_tls_r "$_kind:127.0.0.1:0"; then
		lab_result "$_name" FAIL "receiver did not listen: $(sa_tail "$W/$_name.recv.log")"
		return 1
	fi
	_before=$(lab_guest_ticks $G); _before=${_before%% *}
	_s=$(lab_now_ms)
	timeout 200 "$BIN/migrate-send" -v --progress json --report json $_tls_s "xen:$G" "$_kind:127.0.0.1:$SA_PORT" \
		> "$W/$_name.send.log" 2>&1
	_src=$?
	_total=$(( $(lab_now_ms) - _s ))
	if [ $_src = 0 ]; then sa_wait $SA_RPID 120; else sa_wait $SA_RPID 15; fi
	lab_log "$_name: send rc=$_src recv rc=$SA_RC ${_total} ms"
	grep -aE 'downtime|passes|iterations|"status"' "$W/$_name.send.log" | tail -n 3 | while read -r l; do lab_log "$_name: $(echo "$l" | cut -c1-300)"; done
	if [ $_src != 0 ] || [ $SA_RC != 0 ]; then
		sa_dump "$W/$_name.send.log"; sa_dump "$W/$_name.recv.log" 20
		lab_result "$_name" FAIL "send rc=$_src: $(sa_tail "$W/$_name.send.log"); receive rc=$SA_RC: $(sa_tail "$W/$_name.recv.log")"
		return 1
	fi
	grep -q '"status":"completed"' "$W/$_name.send.log" ||
		{ lab_result "$_name" FAIL "the sender's report is not completed: $(sa_tail "$W/$_name.send.log")"; return 1; }
	sa_check "$_name" "$_before" "$_total"
}
