# 56-xmig-bad-streams: migrate-receive --backend xen handed streams that real
# Xen (or xmig before it) must refuse.  Each names the record and the error,
# and leaves nothing: no domain, no xenstore entries.  Sourced by dom0-run.sh
# after lib.sh (its sa_* functions); run: tests/xen-lab/run.sh BUILD_DIR 56.
#   bad-save              a PVH guest saved by migrate-send (draft-B, not
#                         live, zero pages without data, no checksums, so
#                         that the records below can be edited)
#   bad-hvm-context       HVM_CONTEXT's header with a wrong magic: Xen's
#                         xc_domain_hvm_setcontext refuses it (EINVAL)
#   bad-vcpu              HVM_CONTEXT with a CPU record for vcpu 9 of a
#                         1-vcpu domain
#   bad-extra-pages       512 pages beyond the domain's memory in one
#                         PAGE_DATA: Xen refuses to populate them
#   bad-pv-stream         the domain header says PV (this receiver restores
#                         PVH only)
#   bad-then-good         the unedited file restores, and the guest is whole

G=sa3
BIN=/xmig/bin
W=$LAB_DIR/bad
mkdir -p "$W"

# mut.py IN OUT WHAT: edit a little-endian draft-B file without checksums
cat > "$W/mut.py" <<'EOF'
# Streams: dom0 has 1 GiB and /run is in RAM, so never hold the file.
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
def copy(out, start, end):
    f.seek(start)
    left = end - start
    while left > 0:
        b = f.read(min(left, 1 << 20))
        out.write(b)
        left -= len(b)
out = open(dst, 'wb')
if what == 'extra-pages':
    o = first(0x08)[0]
    n = 512
    body = struct.pack('<II', n, 0) + b''.join(
        struct.pack('<Q', 0x80000 + i) for i in range(n)) + bytes(4096 * n)
    copy(out, 0, o)
    out.write(struct.pack('<IIHHI', 1, len(body), 0, 0, 0) + body +
              bytes((8 - len(body) % 8) % 8) + bytes(8))
    f.seek(o)
    shutil.copyfileobj(f, out, 1 << 20)
    out.close()
    sys.exit(0)
f.seek(0)
shutil.copyfileobj(f, out, 1 << 20)
out.close()
g = open(dst, 'r+b')
if what == 'hvm-magic':
    g.seek(first(0x09)[0] + 16 + 8)
    g.write(struct.pack('<I', 0xdeadbeef))
elif what == 'vcpu':
    o, _, ln = first(0x09)
    p = o + 16
    while p < o + 16 + ln:
        g.seek(p)
        code, inst, length = struct.unpack('<HHI', g.read(8))
        if code == 2:
            g.seek(p + 2)
            g.write(struct.pack('<H', 9))
            break
        p += 8 + length
    else:
        sys.exit('no CPU descriptor')
elif what == 'pv':
    g.seek(24 + 2)
    g.write(struct.pack('<H', 1))
else:
    sys.exit('unknown edit ' + what)
g.close()
EOF

domains() { xenstore-list /local/domain 2>/dev/null | sort | tr '\n' ' '; }

if ! lab_guest_create $G pvh; then
	lab_result bad-save FAIL "create: $LAB_WHY"
	return 0 2>/dev/null || exit 0
fi
F=$W/$G.xmig
_before=$(lab_guest_ticks $G); _before=${_before%% *}
_s=$(lab_now_ms)
if ! timeout 200 "$BIN/migrate-send" --no-live --zero-pages --no-checksum "xen:$G" "file:$F" > "$W/save.log" 2>&1; then
	sa_dump "$W/save.log"
	lab_result bad-save FAIL "save: $(sa_tail "$W/save.log")"
	lab_guest_destroy $G
	return 0 2>/dev/null || exit 0
fi
lab_result bad-save PASS "$(stat -c %s "$F") octets"
base=$(domains)

# bad NAME EDIT NEEDLE...: the edited stream fails naming every NEEDLE
bad() {
	_n=$1; _e=$2; shift 2
	if ! python3 "$W/mut.py" "$F" "$W/$_n.xmig" "$_e" > "$W/$_n.mut.log" 2>&1; then
		lab_result "$_n" FAIL "cannot edit the file: $(sa_tail "$W/$_n.mut.log")"
		return 1
	fi
	timeout 200 "$BIN/migrate-receive" --backend xen "file:$W/$_n.xmig" > "$W/$_n.log" 2>&1
	_rc=$?
	rm -f "$W/$_n.xmig"
	if [ $_rc != 1 ]; then
		sa_dump "$W/$_n.log"
		lab_result "$_n" FAIL "exit status $_rc, not 1: $(sa_tail "$W/$_n.log")"
		return 1
	fi
	for _needle in "$@"; do
		if ! grep -q -- "$_needle" "$W/$_n.log"; then
			sa_dump "$W/$_n.log"
			lab_result "$_n" FAIL "no '$_needle' in: $(sa_tail "$W/$_n.log" 2)"
			return 1
		fi
	done
	if [ "$(lab__domcount $G)" != 0 ] || [ "$(lab__domcount $G--incoming)" != 0 ]; then
		lab_result "$_n" FAIL "a domain was left: $(xl list | tail -n +2 | awk '{print $1}' | tr '\n' ' ')"
		return 1
	fi
	if [ "$(domains)" != "$base" ]; then
		lab_result "$_n" FAIL "xenstore /local/domain was '$base', now '$(domains)'"
		return 1
	fi
	lab_result "$_n" PASS "$(grep -a 'error' "$W/$_n.log" | tail -n 1 | cut -c1-300)"
}

bad bad-hvm-context hvm-magic "HVM_CONTEXT" "Invalid argument"
bad bad-vcpu vcpu "HVM_CONTEXT" "vcpu 9"
bad bad-extra-pages extra-pages "PAGE_DATA" "its configured memory"
bad bad-pv-stream pv "PV"

if timeout 200 "$BIN/migrate-receive" --backend xen "file:$F" > "$W/good.log" 2>&1; then
	sa_check bad-then-good "$_before" "$(( $(lab_now_ms) - _s ))"
else
	sa_dump "$W/good.log"
	lab_result bad-then-good FAIL "$(sa_tail "$W/good.log")"
fi
rm -f "$F"
lab_guest_destroy $G
