#!/bin/sh
# xen-lab.sh BUILD_DIR | --log FILE -- stock `xl migrate` against xmig's
# save helper, on one PVH guest in one boot of the Xen lab.
#
# Runs the lab once: tests/xen-lab/run.sh BUILD_DIR bench (the case
# tests/xen-lab/cases/bench-helper.sh, which runs only when named): one
# 160 MB PVH guest, guest-work rewriting 64 MiB at 64 pages per 10 ms, is
# moved by stock xl, then with LIBXL_SAVE_HELPER=xmig-save-helper on the
# sending side, the receiving side and both, on both sides with
# XMIG_HELPER_KEEP_MAPS=0 (xmig-both-unmap) and =1 (xmig-both-keep), by
# migrate-send xen:NAME to migrate-receive --backend xen over tcp
# (xmig-standalone: no xl in the path), then by stock xl again; each
# move is checked (every stamped page verified).  Prints, per move:
#
#   total      ms of the whole `xl migrate` command
#   toolstk    the downtime on dom0's clock: libxl's suspend request to the
#              new domain unpaused; split into
#     susp     request -> guest suspended (libxl and the guest's own freeze)
#     copy     -> the receiving helper done: last pass, vcpu state, applying
#              it (the only part the helper owns)
#     rest     -> receiving libxl done (its records, xenstore, devices)
#     hand     -> xl's ready/go handshake done
#     unp      -> unpaused
#   mono       the guest's CLOCK_MONOTONIC gap (stops while suspended: only
#              the guest's own suspend and resume work; case 20's downtime_ms)
#   boot       the guest's CLOCK_BOOTTIME gap at the suspend (suspended time
#              included, as Linux accounts it on resume)
#   stall      the guest's longest gap outside the suspend (no CPU while the
#              copy ran; the lab has one CPU)
#   ratios     total and toolstk against the best (lowest) of the two xl runs
#
# --log FILE prints the table from the output of an earlier run instead
# (case 20's helper-migrate-* figures are read too, without the phases).
# Environment: XMIG_LAB_RUN, the command that runs the lab (default
# tests/xen-lab/run.sh; e.g. a wrapper that queues for a lab slot), called
# as "$XMIG_LAB_RUN BUILD_DIR bench"; its output is kept in
# BUILD_DIR/xen-lab-bench.log.  Needs what run.sh needs (root, Debian 12).
# run.sh's environment passes through: XMIG_LAB_SMP=2 XMIG_LAB_TCG_THREAD=multi
# gives dom0 two CPUs (sender and receiver no longer share one): xmig's
# RESTORED->GO and unpause shrank (46->8 ms, 40->1 ms), but on the shared
# 2-core host the guest itself crawled (xl's moves 65-94 s, its freeze and
# thaw 1.3-2.7 s) and one of two runs failed a move (2026-11-30), so one
# CPU stays the default.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
--log)
	[ -r "${2:-}" ] || { echo "usage: $0 BUILD_DIR | --log FILE" >&2; exit 2; }
	LOG=$2 ;;
'' | -h | --help)
	sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'
	[ -n "${1:-}" ] && exit 0 || exit 2 ;;
*)
	[ -d "$1" ] || { echo "$0: no build directory $1" >&2; exit 2; }
	LOG=$1/xen-lab-bench.log
	rc=0
	${XMIG_LAB_RUN:-"$top/tests/xen-lab/run.sh"} "$1" bench > "$LOG" 2>&1 || rc=$?
	grep -a 'XMIG-LAB-RESULT' "$LOG" | sed 's/^ *//' | cut -c1-200
	[ $rc = 0 ] || echo "$0: the lab run failed (exit $rc); log: $LOG" >&2
	;;
esac

awk '
function v(k) { return (k in F) ? F[k] : "-" }
/XMIG-LAB-FIGURE (bench|helper-migrate)-/ {
	delete F
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^bench-/) name = substr($i, 7)
		else if ($i ~ /^helper-migrate-/) name = substr($i, 16)
		else if (split($i, kv, "=") == 2) F[kv[1]] = (kv[2] < 0 ? "-" : kv[2])
	}
	if (!("total_ms" in F)) next
	T[name] = v("total_ms"); M[name] = v("downtime_ms")
	B[name] = v("boot_downtime_ms"); S[name] = v("stall_ms")
	K[name] = v("toolstack_ms"); P1[name] = v("suspend_ms")
	P2[name] = v("copy_ms"); P3[name] = v("restore_ms")
	P4[name] = v("handshake_ms"); P5[name] = v("unpause_ms")
	n++
}
END {
	if (n == 0) { print "no figures in the log"; exit 1 }
	# the reference: the best (lowest) of the xl runs, per figure
	xt = xk = -1; k = 0
	for (nm in T) if (nm == "xl" || nm == "xl-again") {
		k++
		if (xt < 0 || T[nm] + 0 < xt) xt = T[nm] + 0
		if (K[nm] != "-" && (xk < 0 || K[nm] + 0 < xk)) xk = K[nm] + 0
	}
	printf "%-10s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s  %8s %10s\n",
	    "move", "total", "toolstk", "susp", "copy", "rest", "hand", "unp",
	    "mono", "boot", "stall", "total/xl", "toolstk/xl"
	nw = split("xl xmig-send xmig-recv xmig-both xmig-standalone xl-again", want, " ")
	for (nm in T) {
		for (w = 1; w <= nw; w++) if (want[w] == nm) break
		if (w > nw) want[++nw] = nm	# other moves last
	}
	for (w = 1; w <= nw; w++) {
		nm = want[w]
		if (!(nm in T)) { printf "%-10s %7s\n", nm, "(none)"; continue }
		rt = xt > 0 ? sprintf("%.2f", T[nm] / xt) : "-"
		rk = (xk > 0 && K[nm] != "-") ? sprintf("%.2f", K[nm] / xk) : "-"
		printf "%-10s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s  %8s %10s\n",
		    nm, T[nm], K[nm], P1[nm], P2[nm], P3[nm], P4[nm], P5[nm],
		    M[nm], B[nm], S[nm], rt, rk
	}
	printf "ms; ratios against the best of %d xl run(s): total %s, " \
	    "toolstk %s\n", k, xt, (xk >= 0 ? xk : "-")
}' "$LOG"
