# 40-files: xl save files through xmig-image, and a guest saved and
# restored by xmig on both sides (20-xmig-helper covers xmig against stock
# xl in each direction; this case does not repeat those).
# Sourced by dom0-run.sh after lib.sh (tests/xen-lab/lib.sh).
#   xl-file-verify         xmig-image verify on a stock `xl save` file of a
#                          running PVH guest: valid, and it names the xl
#                          header, the libxl stream and where the libxc
#                          stream lies (offset, length)
#   xl-file-damaged        its first 64 KiB are refused (the libxc stream
#                          is cut, the message says where it starts), and
#                          with the byte order mark flipped too (offset 32)
#   libxc-extract          xmig-image libxc writes exactly those octets of
#                          the file (cmp against tail|head of the file),
#                          and they verify as a Xen v3 image
#   libxc-draftb-roundtrip the libxc stream converted to draft-B verifies,
#                          and converted back to Xen is byte-identical (cmp)
#   stock-restore-after    xl restore of the same file still works:
#                          lab_check_guest passes
#   xmig-file-verify       LIBXL_SAVE_HELPER=xmig xl save: the file verifies
#                          (the draft-B round trip is not repeated for it:
#                          on a loaded host it took 50 s of the case's 360)
#   xmig-save-xmig-restore that file restored with LIBXL_SAVE_HELPER=xmig:
#                          lab_check_guest passes
# Nothing is kept beside the save file: streams go through pipes and FIFOs
# (dom0's /run is a tmpfs in 1 GiB).  Figures:
#   XMIG-LAB-FIGURE files-<name> ms=... octets=...

H=${XMIG_SAVE_HELPER:-/xmig/bin/xmig-save-helper}
G=xf
S=$LAB_DIR/$G.save
F1=$LAB_DIR/$G.fifo1
F2=$LAB_DIR/$G.fifo2
FO=$LAB_DIR/$G.files

# files_span FILE: "OFFSET LENGTH" of the libxc stream, from xmig-image
# verify FILE (its line is kept in $FO.verify); returns verify's status
files_span() {
	xmig-image verify "$1" > "$FO.verify" 2>&1
	_vrc=$?
	sed -n 's/.*libxc stream at offset \([0-9]*\) (\([0-9]*\) octets).*/\1 \2/p' "$FO.verify" | head -n 1
	return $_vrc
}

# files_roundtrip NAME FILE OFF LEN: the libxc stream of FILE to draft-B
# (verified on the way) and back to Xen, compared with the libxc stream
# as xmig-image libxc writes it; a result NAME
files_roundtrip() {
	rm -f "$F1" "$F2"; mkfifo "$F1" "$F2" || { lab_result "$1" FAIL "mkfifo failed"; return 1; }
	_t0=$(lab_now_ms)
	xmig-image libxc "$2" - > "$F1" 2> "$FO.ref.err" &
	_ref=$!
	xmig-image verify "$F2" > "$FO.bverify" 2>&1 &
	_bv=$!
	xmig-image libxc "$2" - 2> "$FO.lx.err" | xmig-image convert --to draftb - - 2> "$FO.tob.err" |
		tee "$F2" | xmig-image convert --to xen - - 2> "$FO.tox.err" | cmp - "$F1" > "$FO.cmp" 2>&1
	_crc=$?
	wait $_bv; _bvrc=$?
	wait $_ref
	_ms=$(( $(lab_now_ms) - _t0 ))
	rm -f "$F1" "$F2"
	_errs=$(cat "$FO.lx.err" "$FO.tob.err" "$FO.tox.err" "$FO.ref.err" | grep -a 'error' | head -n 3 | tr '\n' ' ')
	if [ $_crc != 0 ]; then
		lab_result "$1" FAIL "not byte-identical: $(head -c 200 "$FO.cmp") ${_errs}"
		return 1
	fi
	if [ $_bvrc != 0 ] || ! grep -q '^valid draft-B v1 image' "$FO.bverify"; then
		lab_result "$1" FAIL "draft-B did not verify: $(head -c 300 "$FO.bverify")"
		return 1
	fi
	lab_result "$1" PASS "$4 octets of libxc stream to draft-B and back byte-identical in $_ms ms; draft-B: $(head -c 200 "$FO.bverify")"
	lab_figure "files-$1" ms=$_ms octets=$4
	return 0
}

if ! lab_guest_create $G pvh; then
	lab_result xl-file-verify FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi

# ---- a stock xl save file ------------------------------------------------
rm -f "$S"
if ! lab_op xl save $G "$S"; then
	lab_result xl-file-verify FAIL "xl save failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ' | cut -c1-300)"
	lab_guest_destroy $G
	return 0 2>/dev/null || exit 0
fi
size=$(stat -c %s "$S")
lab_log "xl save file: $size octets; first 64: $(od -A n -t x1 -N 64 "$S" | tr -s ' \n' ' ')"

t0=$(lab_now_ms)
span=$(files_span "$S"); vrc=$?
vms=$(( $(lab_now_ms) - t0 ))
set -- $span
off=${1:-}; len=${2:-}
if [ $vrc != 0 ] || [ -z "$len" ]; then
	lab_result xl-file-verify FAIL "rc $vrc: $(head -c 400 "$FO.verify" | tr '\n' ' ')"
else
	lab_result xl-file-verify PASS "$(head -c 400 "$FO.verify")"
	lab_figure files-verify ms=$vms octets=$size
fi

# ---- the same file damaged: refused, naming the offset ---------------------
# (its first 64 KiB: xl header, config, libxl header, the start of libxc)
head -c 65536 "$S" > "$FO.head"
out=$(xmig-image verify "$FO.head" 2>&1); r1=$?
printf '\001\002\003\004' | dd of="$FO.head" bs=1 seek=32 conv=notrunc 2>/dev/null
out2=$(xmig-image verify "$FO.head" 2>&1); r2=$?
rm -f "$FO.head"
case "$r1:$out" in
1:*"libxc stream at offset ${off:-?} of the xl save file"*"truncated"* | 1:*"libxc stream at offset ${off:-?} of the xl save file"*"ends"*)
	case "$r2:$out2" in
	1:*"xl header at offset 32: byte order mark 01 02 03 04"*)
		lab_result xl-file-damaged PASS "cut: $(echo "$out" | cut -c1-160); byte order: $(echo "$out2" | cut -c1-120)" ;;
	*) lab_result xl-file-damaged FAIL "byte order flipped: rc $r2: $(echo "$out2" | cut -c1-300)" ;;
	esac ;;
*) lab_result xl-file-damaged FAIL "cut at 64 KiB: rc $r1: $(echo "$out" | cut -c1-300)" ;;
esac

# ---- the libxc stream, exactly those octets -------------------------------
if [ -n "$len" ]; then
	rm -f "$F1"; mkfifo "$F1"
	( tail -c +$((off + 1)) "$S" | head -c "$len" | cmp - "$F1" > "$FO.cmp" 2>&1; echo $? > "$FO.cmprc" ) &
	cp=$!
	t0=$(lab_now_ms)
	xmig-image libxc "$S" - 2> "$FO.lx.err" | tee "$F1" | xmig-image verify - > "$FO.xverify" 2>&1
	xrc=$?
	wait $cp
	xms=$(( $(lab_now_ms) - t0 ))
	rm -f "$F1"
	crc=$(cat "$FO.cmprc" 2>/dev/null)
	if [ "$crc" != 0 ]; then
		lab_result libxc-extract FAIL "differs from octets $off+$len of the file: $(head -c 200 "$FO.cmp") $(head -c 200 "$FO.lx.err")"
	elif [ $xrc != 0 ] || ! grep -q '^valid Xen v3 image' "$FO.xverify"; then
		lab_result libxc-extract FAIL "extracted stream: $(head -c 300 "$FO.xverify")"
	else
		lab_result libxc-extract PASS "$len octets at $off of $size, same as the file's; $(head -c 200 "$FO.lx.err" | tr '\n' ' ')$(head -c 200 "$FO.xverify")"
		lab_figure files-libxc ms=$xms octets=$len
	fi
	files_roundtrip libxc-draftb-roundtrip "$S" "$off" "$len"
else
	lab_result libxc-extract FAIL "no libxc span from verify"
	lab_result libxc-draftb-roundtrip FAIL "no libxc span from verify"
fi

# ---- stock restore of the same file ----------------------------------------
if lab_op xl restore "$S" && lab_check_guest $G; then
	lab_result stock-restore-after PASS "restore ${OP_MS} ms; $LAB_CHECK"
else
	lab_result stock-restore-after FAIL "${LAB_WHY:-xl restore failed: $(tail -n 3 "$LAB_DIR/op.log" | tr '\n' ' ' | cut -c1-300)}"
fi
rm -f "$S"

# ---- xmig saves, xmig restores -------------------------------------------------
if [ ! -x "$H" ]; then
	lab_result xmig-save-xmig-restore FAIL "no $H in dom0 (built without the Xen backend?)"
elif [ "$(lab__domcount $G)" != 1 ]; then
	lab_result xmig-save-xmig-restore FAIL "no single running $G before the save"
elif ! lab_op env LIBXL_SAVE_HELPER=$H xl -v save $G "$S"; then
	lab_result xmig-save-xmig-restore FAIL "xmig save: $(grep -aE 'error|xmig-save-helper' "$LAB_DIR/op.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)"
else
	sms=$OP_MS
	size=$(stat -c %s "$S")
	span=$(files_span "$S"); vrc=$?
	set -- $span
	if [ $vrc != 0 ] || [ -z "${2:-}" ]; then
		lab_result xmig-file-verify FAIL "rc $vrc: $(head -c 400 "$FO.verify" | tr '\n' ' ')"
	else
		lab_result xmig-file-verify PASS "$(head -c 400 "$FO.verify")"
	fi
	if lab_op env LIBXL_SAVE_HELPER=$H xl -v restore "$S" && lab_check_guest $G; then
		lab_result xmig-save-xmig-restore PASS "save ${sms} ms ($size octets), restore ${OP_MS} ms; $LAB_CHECK"
		lab_figure files-xmig-both save_ms=$sms restore_ms=$OP_MS octets=$size
	else
		lab_result xmig-save-xmig-restore FAIL "${LAB_WHY:-xmig restore failed: $(grep -aE 'error|xmig-save-helper' "$LAB_DIR/op.log" | tail -n 4 | tr '\n' ' ' | cut -c1-400)}"
	fi
fi
rm -f "$S" "$F1" "$F2"
lab_guest_destroy $G
