# 61-pv-bad: migrate-receive --backend xen handed PV streams it must refuse.
# A PV guest is saved by migrate-send (draft-B, not live, no checksums) and
# the file edited in dom0 with python3; each edit must fail (exit status 1)
# naming the record and the error, and leave no domain and no
# /local/domain entry behind.
#   pv-bad-save        the save itself
#   pv-bad-p2m-short   X86_PV_P2M_FRAMES cut to cover pfns 0-511 only: the
#                      first page above is "beyond p2m_end_pfn"
#   pv-bad-pt-absent   an L1 table's first present entry pointed at pfn
#                      0xfffff: "absent from the stream"
#   pv-bad-l4-on-3     X86_PV_INFO says 32-bit, 3 levels (P2M_FRAMES made to
#                      match): the first L4 table is refused
#   pv-bad-cr3         vcpu 0's CR3 pointed at pfn 0 (a plain page): "not a
#                      pinned L4 table"
#   pv-bad-width       X86_PV_INFO guest width 5: "guest_width 5"
#   pv-bad-then-good   the unedited file restores and the guest is whole
# Run: tests/xen-lab/run.sh BUILD_DIR 61.

G=xpvb
BIN=/xmig/bin
W=$LAB_DIR/pvbad
mkdir -p "$W"

# pvmut.py IN OUT WHAT: edit a little-endian draft-B file without checksums
# (record: u32 type, u32 length, u16 options, u16 0, u32 0, body padded to
# 8, 8-octet footer; vcpu_guest_context_x86_64_t's ctrlreg[3] is at 5008)
cat > "$W/pvmut.py" <<'EOF'
import shutil, struct, sys
src, dst, what = sys.argv[1:4]
f = open(src, 'rb')
off, recs = 32, []
while True:
    f.seek(off)
    h = f.read(8)
    if len(h) < 8:
        break
    t, ln = struct.unpack('<II', h)
    recs.append((off, t, ln))
    off += 16 + ln + (8 - ln % 8) % 8 + 8
    if t == 0:
        break
def first(t):
    return next(r for r in recs if r[1] == t)
def body(r):
    f.seek(r[0] + 16)
    return f.read(r[2])
def record(t, b):
    return struct.pack('<IIHHI', t, len(b), 0, 0, 0) + b + \
        bytes((8 - len(b) % 8) % 8) + bytes(8)
def copy(out, start, end):
    f.seek(start)
    left = end - start
    while left > 0:
        b = f.read(min(left, 1 << 20))
        out.write(b)
        left -= len(b)
def replace(r, new):
    out = open(dst, 'wb')
    copy(out, 0, r[0])
    out.write(new)
    f.seek(r[0] + 16 + r[2] + (8 - r[2] % 8) % 8 + 8)
    shutil.copyfileobj(f, out, 1 << 20)
    out.close()
p2m = first(0x03)
pb = body(p2m)
start, end = struct.unpack('<II', pb[:8])
if what == 'p2m-short':
    replace(p2m, record(0x03, struct.pack('<II', 0, 511) + pb[8:16]))
    sys.exit(0)
if what == 'l4-on-3':
    # fpp 1024 for a 32-bit guest: the frame list of the right length
    n = end // 1024 + 1
    out = open(dst, 'wb')
    info = first(0x02)
    copy(out, 0, info[0])
    out.write(record(0x02, struct.pack('<BB6x', 4, 3)))
    copy(out, info[0] + 16 + 8 + 8, p2m[0])
    out.write(record(0x03, struct.pack('<II', 0, end) + pb[8:8 + 8 * n]))
    f.seek(p2m[0] + 16 + p2m[2] + (8 - p2m[2] % 8) % 8 + 8)
    shutil.copyfileobj(f, out, 1 << 20)
    out.close()
    sys.exit(0)
f.seek(0)
out = open(dst, 'wb')
shutil.copyfileobj(f, out, 1 << 20)
out.close()
g = open(dst, 'r+b')
if what == 'width':
    g.seek(first(0x02)[0] + 16)
    g.write(struct.pack('<B', 5))
elif what == 'cr3':
    g.seek(first(0x04)[0] + 16 + 8 + 5008)
    g.write(struct.pack('<Q', 0))
elif what == 'pt-absent':
    for (o, t, ln) in recs:
        if t != 0x01:
            continue
        f.seek(o + 16)
        count, = struct.unpack('<I', f.read(4))
        f.seek(o + 24)
        ents = struct.unpack('<%dQ' % count, f.read(8 * count))
        k = 0
        for e in ents:
            ty = e >> 60
            if ty in (1, 9):
                p = o + 24 + 8 * count + 4096 * k
                g.seek(p)
                ptes = struct.unpack('<512Q', g.read(4096))
                i = next(i for i, v in enumerate(ptes) if v & 1)
                v = (ptes[i] & ~0x000ffffffffff000) | (0xfffff << 12)
                g.seek(p + 8 * i)
                g.write(struct.pack('<Q', v))
                print('pfn %#x entry %d' % (e & 0xfffffffffffff, i))
                sys.exit(0)
            if ty <= 4 or 9 <= ty <= 12:
                k += 1
    sys.exit('no L1 table in the stream')
else:
    sys.exit('unknown edit ' + what)
g.close()
EOF

domains() { xenstore-list /local/domain 2>/dev/null | sort | tr '\n' ' '; }

if ! lab_guest_create $G pv; then
	lab_result pv-bad-save FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi
F=$W/$G.xmig
_before=$(lab_guest_ticks $G); _before=${_before%% *}
_s=$(lab_now_ms)
if ! timeout 200 "$BIN/migrate-send" --no-live --zero-pages --no-checksum "xen:$G" "file:$F" > "$W/save.log" 2>&1; then
	sa_dump "$W/save.log"
	lab_result pv-bad-save FAIL "save: $(sa_tail "$W/save.log")"
	lab_guest_destroy $G
	return 0 2>/dev/null || exit 0
fi
lab_result pv-bad-save PASS "$(stat -c %s "$F") octets"
base=$(domains)

# bad NAME EDIT NEEDLE...: the edited stream fails naming every NEEDLE
bad() {
	_n=$1; _e=$2; shift 2
	if ! python3 "$W/pvmut.py" "$F" "$W/$_n.xmig" "$_e" > "$W/$_n.mut.log" 2>&1; then
		lab_result "$_n" FAIL "cannot edit the file: $(sa_tail "$W/$_n.mut.log")"
		rm -f "$W/$_n.xmig"
		return 1
	fi
	timeout 200 "$BIN/migrate-receive" --backend xen "file:$W/$_n.xmig" > "$W/$_n.log" 2>&1
	_rc=$?
	rm -f "$W/$_n.xmig"
	if [ $_rc != 1 ]; then
		sa_dump "$W/$_n.log"
		lab_result "$_n" FAIL "exit status $_rc, not 1: $(sa_tail "$W/$_n.log")"
		lab_guest_destroy $G
		return 1
	fi
	for _needle in "$@"; do
		if ! grep -q -- "$_needle" "$W/$_n.log"; then
			sa_dump "$W/$_n.log"
			lab_result "$_n" FAIL "no '$_needle' in: $(sa_tail "$W/$_n.log" 2)"
			lab_guest_destroy $G
			return 1
		fi
	done
	if [ "$(lab__domcount $G)" != 0 ] || [ "$(lab__domcount $G--incoming)" != 0 ]; then
		lab_result "$_n" FAIL "a domain was left: $(xl list | tail -n +2 | awk '{print $1}' | tr '\n' ' ')"
		lab_guest_destroy $G
		return 1
	fi
	if [ "$(domains)" != "$base" ]; then
		lab_result "$_n" FAIL "xenstore /local/domain was '$base', now '$(domains)'"
		return 1
	fi
	lab_result "$_n" PASS "$(cat "$W/$_n.mut.log" | tr '\n' ' ')$(grep -a 'error' "$W/$_n.log" | tail -n 1 | cut -c1-300)"
}

bad pv-bad-p2m-short p2m-short "invalid stream: record" "pfn 0x200 is beyond p2m_end_pfn 0x1ff"
bad pv-bad-pt-absent pt-absent "L1 table at pfn" "which is absent from the stream"
bad pv-bad-l4-on-3 l4-on-3 "an L4 page table at pfn" "3 paging levels"
bad pv-bad-cr3 cr3 "vcpu 0's CR3 is pfn 0x0" "not a pinned L4 table"
bad pv-bad-width width "X86_PV_INFO" "guest_width 5"

if timeout 200 "$BIN/migrate-receive" --backend xen "file:$F" > "$W/good.log" 2>&1; then
	if lab_check_guest $G; then
		lab_result pv-bad-then-good PASS "$(( $(lab_now_ms) - _s )) ms; $LAB_CHECK"
	else
		lab_result pv-bad-then-good FAIL "$LAB_WHY"
	fi
else
	sa_dump "$W/good.log"
	lab_result pv-bad-then-good FAIL "$(sa_tail "$W/good.log")"
fi
rm -f "$F"
lab_guest_destroy $G
