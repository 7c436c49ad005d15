#!/bin/sh
# xen-lab.sh BUILD_DIR | --log FILE -- xl's own live migration against
# xmig's save helper, on one PVH guest in one boot of the Xen lab.
#
# Runs the lab once (tests/xen-lab/run.sh BUILD_DIR 20: case 20 moves one
# 160 MB PVH guest, guest-work rewriting 64 MiB at 64 pages per 10 ms, by
# stock `xl migrate`, then with LIBXL_SAVE_HELPER=xmig-save-helper on the
# sending side, the receiving side and both, then by stock xl again) and
# prints, from case 20's XMIG-LAB-FIGURE lines:
#
#   total ms       the whole `xl migrate` command
#   mono ms        the guest's CLOCK_MONOTONIC gap: Linux stops that clock
#                  while the domain is suspended, so this is only the
#                  guest's own suspend and resume work (the figure case 20
#                  calls downtime_ms)
#   down ms        the guest's CLOCK_BOOTTIME gap at the suspend: the time
#                  it did not run, suspended time included (boot_downtime_ms)
#   stall ms       its longest gap outside the suspend: no CPU for the guest
#                  while the copy ran (stall_ms; the lab has one CPU)
#   ratios         each against xl: the best (lowest) of the two xl runs
#                  for each figure (the host's load drifts; both runs are
#                  printed)
#
# --log FILE prints the table from the output of an earlier run instead.
# Environment: XMIG_LAB_RUN, the command that runs the lab (default
# tests/xen-lab/run.sh; e.g. a wrapper that queues for a lab slot), called
# as "$XMIG_LAB_RUN BUILD_DIR 20"; its output is kept in
# BUILD_DIR/xen-lab-bench.log.  Needs what run.sh needs (root, Debian 12).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
--log)
	[ -r "${2:-}" ] || { echo "usage: $0 BUILD_DIR | --log FILE" >&2; exit 2; }
	LOG=$2 ;;
'' | -h | --help)
	sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
	[ -n "${1:-}" ] && exit 0 || exit 2 ;;
*)
	[ -d "$1" ] || { echo "$0: no build directory $1" >&2; exit 2; }
	LOG=$1/xen-lab-bench.log
	rc=0
	${XMIG_LAB_RUN:-"$top/tests/xen-lab/run.sh"} "$1" 20 > "$LOG" 2>&1 || rc=$?
	grep -a 'XMIG-LAB-RESULT' "$LOG" | sed 's/^ *//' | cut -c1-160
	[ $rc = 0 ] || echo "$0: the lab run failed (exit $rc); log: $LOG" >&2
	;;
esac

awk '
/XMIG-LAB-FIGURE helper-migrate-/ {
	name = ""; t = d = b = st = ""
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^helper-migrate-/) { name = substr($i, 16) }
		else if ($i ~ /^total_ms=/) t = substr($i, 10)
		else if ($i ~ /^downtime_ms=/) d = substr($i, 13)
		else if ($i ~ /^boot_downtime_ms=/) b = substr($i, 18)
		else if ($i ~ /^stall_ms=/) st = substr($i, 10)
	}
	if (name == "" || t == "") next
	T[name] = t; D[name] = d; B[name] = (b == "" ? -1 : b)
	S[name] = (st == "" || st < 0 ? "-" : st)
	if (!(name in seen)) { seen[name] = 1; order[n++] = name }
}
END {
	if (n == 0) { print "no case 20 figures in the log"; exit 1 }
	# the reference: the best (lowest) of the xl runs, per figure
	k = 0; xt = xd = xb = -1
	for (nm in T) if (nm == "xl" || nm == "xl-again") {
		k++
		if (xt < 0 || T[nm] + 0 < xt) xt = T[nm] + 0
		if (D[nm] != "" && (xd < 0 || D[nm] + 0 < xd)) xd = D[nm] + 0
		if (B[nm] >= 0 && (xb < 0 || B[nm] + 0 < xb)) xb = B[nm] + 0
	}
	printf "%-11s %9s %8s %8s %9s   %9s %9s %9s\n", "migration",
	    "total ms", "mono ms", "down ms", "stall ms", "total/xl", "mono/xl",
	    "down/xl"
	split("xl xmig-send xmig-recv xmig-both xl-again", want, " ")
	for (w = 1; w <= 5; w++) {
		nm = want[w]
		if (!(nm in T)) { printf "%-11s %9s\n", nm, "(no figure)"; continue }
		rt = xt > 0 ? sprintf("%.2f", T[nm] / xt) : "-"
		rd = xd > 0 && D[nm] != "" ? sprintf("%.2f", D[nm] / xd) : "-"
		rb = xb > 0 && B[nm] >= 0 ? sprintf("%.2f", B[nm] / xb) : "-"
		printf "%-11s %9s %8s %8s %9s   %9s %9s %9s\n", nm, T[nm], D[nm],
		    (B[nm] >= 0 ? B[nm] : "-"), S[nm], rt, rd, rb
	}
	printf "ratios against the best of %d xl run(s): total %s ms, mono %s " \
	    "ms, down %s ms\n", k, xt, xd, (xb >= 0 ? xb : "-")
}' "$LOG"
