# 60-pv: a 64-bit PV guest saved and restored by xmig's own code (page
# tables normalised, P2M frames, PV vcpu state), against stock xl both
# ways.  Non-live only: Debian's Xen has no shadow paging, so no PV
# log-dirty.  The guest has two vcpus.  Every move ends with
# lab_check_guest (same nonce, ticks on, a full stamped-page pass,
# xenstore data/tick under the new domid).
#   pv-xmig-save-xl-restore  LIBXL_SAVE_HELPER=xmig-save-helper xl save (the
#                            Xen dialect written by xmig), which
#                            xmig-image verifies, restored by stock xl
#   pv-records-as-libxc      the two files' records (PAGE_DATA aside): same
#                            types in the same order with the same lengths,
#                            and PAGE_DATA with the same page types
#   pv-xl-save-xmig-restore  stock xl save, restored through xmig's helper
#   pv-xmig-both             xmig's helper on both sides (Xen dialect)
#   pv-draftb-file           migrate-send --no-live xen:NAME file:F (draft-B)
#                            and migrate-receive --backend xen file:F
#   pv-no-live-tcp           migrate-send --no-live xen:NAME tcp:127.0.0.1:P to
#                            migrate-receive --backend xen (back-channel)
#   pv-live-refused          a live migrate-send fails with "PV live migration
#                            needs a Xen built with shadow paging", the guest
#                            runs on under its domid, no NAME--incoming
# Sourced by dom0-run.sh after lib.sh; run: tests/xen-lab/run.sh BUILD_DIR 60.

G=xpv
BIN=/xmig/bin
H=${XMIG_SAVE_HELPER:-$BIN/xmig-save-helper}
W=$LAB_DIR/pv
S=$W/$G.save
mkdir -p "$W"

if [ ! -x "$H" ]; then
	lab_result pv-xmig-save-xl-restore FAIL "no $H in dom0 (built without the Xen backend?)"
	return 0 2>/dev/null || exit 0
fi
# Two vcpus: vcpu 1's records (no start info, its own GDT) travel too.
if ! LAB_GUEST_VCPUS=2 lab_guest_create $G pv; then
	lab_result pv-xmig-save-xl-restore FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi

# pv_records FILE: the records of a save file but PAGE_DATA, "TYPE LENGTH"
# a line, then one line "PAGES type=n ..." with PAGE_DATA's entries per
# page type over the whole file
pv_records() {
	xmig-image dump "$1" | awk '
		$1 == "record" {
			t = ""; l = ""
			for (i = 2; i <= NF; i++) {
				split($i, kv, "=")
				if (kv[1] == "type") t = kv[2]
				else if (kv[1] == "length") l = kv[2]
				else if (t == "PAGE_DATA" && kv[1] ~ /^(NOTAB|L[1-4]|XTAB|XALLOC|BROKEN)/) n[kv[1]] += kv[2]
			}
			if (t != "PAGE_DATA") print t, l
		}
		END { printf "PAGES"; for (k in n) printf " %s=%d", k, n[k]; print "" }'
}

# pv_restore NAME SAVE-DESC RESTORE-CMD...: restore $S, check the guest
pv_restore() {
	_n=$1; _sd=$2; shift 2
	if lab_op "$@" && lab_check_guest $G; then
		lab_result "$_n" PASS "$_sd, restore ${OP_MS} ms; $LAB_CHECK"
	else
		cp "$LAB_DIR/op.log" "$W/$_n.restore.log" 2>/dev/null
		sa_dump "$W/$_n.restore.log" 20
		lab_result "$_n" FAIL "${LAB_WHY:-restore failed: $(grep -aE 'error|xmig' "$W/$_n.restore.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)}"
	fi
	rm -f "$S"
}

# 1. xmig writes (Xen dialect), stock xl reads
rm -f "$S"
if lab_op env LIBXL_SAVE_HELPER=$H xl -v save $G "$S"; then
	sms=$OP_MS
	if ! xmig-image verify "$S" > "$W/verify.log" 2>&1; then
		lab_result pv-xmig-save-xl-restore FAIL "xmig-image verify: $(sa_tail "$W/verify.log")"
	else
		lab_log "verify: $(head -c 300 "$W/verify.log" | tr '\n' ' ')"
		pv_records "$S" > "$W/xmig.recs"
		pv_restore pv-xmig-save-xl-restore "xmig save ${sms} ms ($(stat -c %s "$S") octets)" xl -v restore "$S"
	fi
else
	cp "$LAB_DIR/op.log" "$W/save1.log"; sa_dump "$W/save1.log" 20
	lab_result pv-xmig-save-xl-restore FAIL "xmig save: $(grep -aE 'error|xmig' "$W/save1.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
fi

# 2. stock xl writes, xmig reads
if [ "$(lab__domcount $G)" = 1 ] && lab_op xl save $G "$S"; then
	pv_records "$S" > "$W/xl.recs"
	# the same records as libxc's, in the same order and of the same
	# lengths, and page tables of the same types (their counts may differ:
	# the guest ran between the two saves)
	grep -v '^PAGES' "$W/xmig.recs" > "$W/xmig.seq" 2>/dev/null
	grep -v '^PAGES' "$W/xl.recs" > "$W/xl.seq"
	tx=$(grep '^PAGES' "$W/xmig.recs" 2>/dev/null | tr ' ' '\n' | sed -n 's/=.*//p' | sort | tr '\n' ' ')
	tl=$(grep '^PAGES' "$W/xl.recs" | tr ' ' '\n' | sed -n 's/=.*//p' | sort | tr '\n' ' ')
	if [ ! -s "$W/xmig.seq" ]; then
		lab_result pv-records-as-libxc FAIL "no records of xmig's save to compare"
	elif ! cmp -s "$W/xmig.seq" "$W/xl.seq"; then
		lab_result pv-records-as-libxc FAIL "xmig: $(tr '\n' ',' < "$W/xmig.seq" | cut -c1-250) libxc: $(tr '\n' ',' < "$W/xl.seq" | cut -c1-250)"
	elif [ "$tx" != "$tl" ] || ! echo "$tx" | grep -q 'L4'; then
		lab_result pv-records-as-libxc FAIL "page types: xmig $(grep '^PAGES' "$W/xmig.recs"), libxc $(grep '^PAGES' "$W/xl.recs")"
	else
		lab_result pv-records-as-libxc PASS "$(wc -l < "$W/xl.seq") records as libxc's: $(tr '\n' ',' < "$W/xl.seq" | cut -c1-300); xmig $(grep '^PAGES' "$W/xmig.recs"); libxc $(grep '^PAGES' "$W/xl.recs")"
	fi
	pv_restore pv-xl-save-xmig-restore "stock save ${OP_MS} ms" env LIBXL_SAVE_HELPER=$H xl -v restore "$S"
else
	lab_result pv-xl-save-xmig-restore FAIL "no single $G, or stock xl save failed: $(sa_tail "$LAB_DIR/op.log")"
fi

# 3. xmig on both sides, Xen dialect
if [ "$(lab__domcount $G)" = 1 ] && lab_op env LIBXL_SAVE_HELPER=$H xl -v save $G "$S"; then
	pv_restore pv-xmig-both "xmig save ${OP_MS} ms" env LIBXL_SAVE_HELPER=$H xl -v restore "$S"
else
	lab_result pv-xmig-both FAIL "no single $G, or xmig save failed: $(sa_tail "$LAB_DIR/op.log")"
fi

# 4. draft-B through a file, standalone (no xl)
if [ "$(lab__domcount $G)" = 1 ]; then
	F=$W/$G.xmig
	_s=$(lab_now_ms)
	if ! timeout 200 "$BIN/migrate-send" -v --no-live "xen:$G" "file:$F" > "$W/dsave.log" 2>&1; then
		sa_dump "$W/dsave.log"
		lab_result pv-draftb-file FAIL "save: $(sa_tail "$W/dsave.log")"
	elif [ "$(lab__domcount $G)" != 0 ]; then
		lab_result pv-draftb-file FAIL "the saved domain still exists"
	elif ! "$BIN/xmig-image" verify "$F" > "$W/dverify.log" 2>&1; then
		lab_result pv-draftb-file FAIL "xmig-image verify: $(sa_tail "$W/dverify.log")"
	elif ! timeout 200 "$BIN/migrate-receive" --backend xen -v "file:$F" > "$W/drestore.log" 2>&1; then
		sa_dump "$W/drestore.log" 20
		lab_result pv-draftb-file FAIL "restore: $(sa_tail "$W/drestore.log")"
	elif lab_check_guest $G; then
		lab_result pv-draftb-file PASS "$(stat -c %s "$F") octets, $(( $(lab_now_ms) - _s )) ms; $(head -c 120 "$W/dverify.log" | tr '\n' ' '); $LAB_CHECK"
	else
		lab_result pv-draftb-file FAIL "$LAB_WHY"
	fi
	rm -f "$F"
else
	lab_result pv-draftb-file FAIL "no single running $G"
fi

# 5. non-live over tcp with the back-channel
if [ "$(lab__domcount $G)" = 1 ]; then
	if ! sa_listen "$W/tcp.recv.log" -v --report json "tcp:127.0.0.1:0"; then
		lab_result pv-no-live-tcp FAIL "receiver did not listen: $(sa_tail "$W/tcp.recv.log")"
	else
		_s=$(lab_now_ms)
		timeout 200 "$BIN/migrate-send" -v --no-live --report json "xen:$G" "tcp:127.0.0.1:$SA_PORT" > "$W/tcp.send.log" 2>&1
		_src=$?
		_total=$(( $(lab_now_ms) - _s ))
		if [ $_src = 0 ]; then sa_wait $SA_RPID 120; else sa_wait $SA_RPID 15; fi
		if [ $_src != 0 ] || [ $SA_RC != 0 ]; then
			sa_dump "$W/tcp.send.log"; sa_dump "$W/tcp.recv.log" 20
			lab_result pv-no-live-tcp FAIL "send rc=$_src: $(sa_tail "$W/tcp.send.log"); receive rc=$SA_RC: $(sa_tail "$W/tcp.recv.log")"
		elif ! grep -q '"status":"completed"' "$W/tcp.send.log"; then
			lab_result pv-no-live-tcp FAIL "the sender's report is not completed: $(sa_tail "$W/tcp.send.log")"
		elif lab_check_guest $G; then
			lab_result pv-no-live-tcp PASS "total ${_total} ms; $LAB_CHECK"
			lab_figure pv-no-live-tcp total_ms=$_total
		else
			lab_result pv-no-live-tcp FAIL "$LAB_WHY"
		fi
	fi
else
	lab_result pv-no-live-tcp FAIL "no single running $G"
fi

# 6. live: refused with the reason, the guest runs on
if [ "$(lab__domcount $G)" = 1 ]; then
	d0=$(xl domid $G)
	if ! sa_listen "$W/live.recv.log" -v "tcp:127.0.0.1:0"; then
		lab_result pv-live-refused FAIL "receiver did not listen: $(sa_tail "$W/live.recv.log")"
	else
		timeout 200 "$BIN/migrate-send" -v "xen:$G" "tcp:127.0.0.1:$SA_PORT" > "$W/live.send.log" 2>&1
		_src=$?
		sa_wait $SA_RPID 30
		if [ $_src = 0 ]; then
			lab_result pv-live-refused FAIL "a live PV migration succeeded on a Xen without shadow paging?"
		elif ! grep -q "PV live migration needs a Xen built with shadow paging" "$W/live.send.log"; then
			sa_dump "$W/live.send.log"
			lab_result pv-live-refused FAIL "rc=$_src without the reason: $(sa_tail "$W/live.send.log")"
		elif [ "$(xl domid $G 2>/dev/null)" != "$d0" ]; then
			lab_result pv-live-refused FAIL "$G is no longer domid $d0"
		elif lab_check_guest $G; then
			lab_result pv-live-refused PASS "rc=$_src: $(grep -a 'shadow paging' "$W/live.send.log" | tail -n 1 | cut -c1-200); $LAB_CHECK"
		else
			lab_result pv-live-refused FAIL "$LAB_WHY"
		fi
	fi
else
	lab_result pv-live-refused FAIL "no single running $G"
fi
rm -f "$S"
lab_guest_destroy $G
