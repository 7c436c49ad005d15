#!/bin/sh
# /init of the lab's dom0 (tests/xen-lab): brings up the Xen userspace, runs
# every case in /xmig/cases in order, then powers the machine off.
#
# Console protocol read by run.sh on the host:
#   XMIG-LAB-DOM0 up                 dom0 userspace and the Xen daemons are up
#   XMIG-LAB-INFRA <why>             the lab itself could not be set up
#   XMIG-LAB-CASE-BEGIN <case>       / XMIG-LAB-CASE-END <case> rc=<rc>
#   XMIG-LAB-RESULT <name> PASS|FAIL <detail>     (lab_result in lib.sh)
#   XMIG-LAB-FIGURE <name> k=v ...                (lab_figure in lib.sh)
#   XMIG-LAB-KMSG <kernel line>      crash-like kernel messages (segfaults...)
#   XMIG-LAB-HB <uptime>             heartbeat every 10 s (watchdog)
#   XMIG-LAB-DONE                    all cases ran; powering off
export PATH=/xmig/bin:/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C LC_ALL=C

up() { cut -d' ' -f1 /proc/uptime; }
infra() { echo "XMIG-LAB-INFRA $*"; off; }
off() {
	sync
	echo o > /proc/sysrq-trigger
	sleep 10
	busybox poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/lock /var/lib/xen /var/log/xen/console /var/lib/xenstored /run/xmig-lab
echo "XMIG-LAB: dom0 kernel $(uname -r) userspace at $(up) s"

# crash-like kernel messages (segfaults of any dom0 process) onto the console
dmesg --follow --notime 2>/dev/null | grep --line-buffered -E \
	'segfault at|general protection|traps:|Out of memory|oom-kill|BUG:|invalid opcode|Call Trace' |
	sed -u 's/^/XMIG-LAB-KMSG /' &

for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback xen-netback loop; do
	modprobe $m 2>/dev/null || echo "XMIG-LAB: modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen || infra "cannot mount xenfs"
xenstored --pid-file /run/xen/xenstored.pid || infra "xenstored did not start"
xen-init-dom0 >/dev/null || infra "xen-init-dom0 failed"
# guest consoles to /var/log/xen/console/guest-NAME.log, each line prefixed
# with dom0's wall clock (lab_downtime reads those stamps)
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest --timestamp=guest \
	--log-dir=/var/log/xen/console || infra "xenconsoled did not start"
xl info > /run/xmig-lab/xl-info 2>&1 || infra "xl info failed: $(tail -n 2 /run/xmig-lab/xl-info)"
echo "XMIG-LAB: $(grep -E '^(xen_version|virt_caps|free_memory)' /run/xmig-lab/xl-info | tr -s ' ' | tr '\n' ' ')"
echo "XMIG-LAB-DOM0 up at $(up) s"
xl dmesg -c > /dev/null 2>&1	# from now on, Xen's errors are the cases' doing

( while :; do sleep 10; echo "XMIG-LAB-HB $(up)"; done ) &

CASE_TIMEOUT=$(sed -n 's/.*xmig_lab\.case_timeout=\([0-9]*\).*/\1/p' /proc/cmdline)
CASE_TIMEOUT=${CASE_TIMEOUT:-360}
[ -x /xmig/bin/xmig-save-helper ] && export XMIG_SAVE_HELPER=/xmig/bin/xmig-save-helper
export LAB_RESULTS=/run/xmig-lab/results

for c in /xmig/cases/*.sh; do
	[ -e "$c" ] || continue
	name=$(basename "$c" .sh)
	before=$(cat "$LAB_RESULTS" 2>/dev/null | wc -l)
	echo "XMIG-LAB-CASE-BEGIN $name"
	start=$(up)
	# each case is sourced, with lib.sh, by a shell of its own under a timeout
	timeout -k 10 "$CASE_TIMEOUT" sh -c '. /xmig/lib.sh && LAB_CASE=$1 && . "$2"' sh "$name" "$c" 2>&1
	rc=$?
	after=$(cat "$LAB_RESULTS" 2>/dev/null | wc -l)
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo "XMIG-LAB-RESULT $name FAIL case timed out after $CASE_TIMEOUT s"
		echo "$name FAIL" >> "$LAB_RESULTS"
	elif [ "$after" = "$before" ]; then
		echo "XMIG-LAB-RESULT $name FAIL case reported no result (rc=$rc)"
		echo "$name FAIL" >> "$LAB_RESULTS"
	fi
	echo "XMIG-LAB-CASE-END $name rc=$rc elapsed=$(awk -v a="$start" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}')s"
	# leave no guest behind for the next case
	for d in $(xl list 2>/dev/null | awk 'NR>1 && $2!=0 {print $2}'); do
		xl destroy "$d" >/dev/null 2>&1
	done
done

if [ -n "$(xl list 2>/dev/null | awk 'NR>1 && $2!=0')" ]; then
	echo "XMIG-LAB: domains left over:"; xl list
fi
# (lab_logdirty_off clears Xen's ring too: this is what came after)
xl dmesg 2>/dev/null | grep -iE 'crash|error|fail' | tail -n 10 | sed 's/^/XMIG-LAB: xen: /'
echo "XMIG-LAB-DONE at $(up) s"
off
