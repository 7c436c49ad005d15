#!/bin/bash
# tests/xen-lab/run.sh BUILD_DIR [CASE...]
#
# Boots Xen 4.17 with a Debian 12 dom0 under QEMU (TCG) and runs the lab cases
# (tests/xen-lab/cases/NN-name.sh) inside dom0 against xmig's binaries from
# BUILD_DIR and real guests. Needs root on Debian 12 (bookworm); installs its
# host packages with apt-get when missing. See tests/xen-lab/README.
#
# CASE selects cases by file name or prefix ("10", "10-xl-baseline"); default all.
# Exit status: 0 only if at least one result was reported and every result
# passed; 1 on any FAIL or when no boot completed; 2 on usage or setup errors.
#
# Environment:
#   XMIG_LAB_CACHE         artifact cache (default BUILD_DIR/xen-lab-cache)
#   XMIG_LAB_OUT           logs of this run (default BUILD_DIR/xen-lab-out)
#   XMIG_LAB_BOOT_TIMEOUT  watchdog: seconds for a whole boot
#                          (default 180 + cases * (case timeout + 30))
#   XMIG_LAB_UP_TIMEOUT    watchdog: seconds until dom0 userspace (default 180)
#   XMIG_LAB_SILENCE       watchdog: seconds without console output (default 150)
#   XMIG_LAB_CASE_TIMEOUT  seconds per case inside dom0 (default 360)
#   XMIG_LAB_EXTRA_PKGS    more Debian packages for the dom0 rootfs
#   XMIG_LAB_MIRROR        Debian mirror for debootstrap (default: apt's)
#   XMIG_LAB_XEN_ARGS      Xen command line additions
#   XMIG_LAB_SMP           virtual CPUs of the machine (default 1, see README)
#   XMIG_LAB_CPU           QEMU -cpu model (see README before changing it)
#   XMIG_LAB_TCG_THREAD    single (default) or multi: QEMU's TCG threading
#   XMIG_LAB_BENCH_MOVES   the bench case's moves, e.g. "xl xmig-standalone-xen
#                          xl-again" (default all; see cases/bench-helper.sh)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=${EPOCHREALTIME/./}

say() { printf 'xen-lab: %s\n' "$*"; }
die() { printf 'xen-lab: error: %s\n' "$*" >&2; exit 2; }
elapsed() { local t=${EPOCHREALTIME/./}; echo $(( (t - T0) / 1000000 )); }

[ $# -ge 1 ] || die "usage: $0 BUILD_DIR [CASE...]"
[ "$1" != -h ] && [ "$1" != --help ] || { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
[ -d "$1" ] || die "BUILD_DIR '$1' is not a directory"
BUILD=$(cd "$1" && pwd); shift
CACHE=${XMIG_LAB_CACHE:-$BUILD/xen-lab-cache}
OUT=${XMIG_LAB_OUT:-$BUILD/xen-lab-out}
BOOT_TIMEOUT=${XMIG_LAB_BOOT_TIMEOUT:-}
UP_TIMEOUT=${XMIG_LAB_UP_TIMEOUT:-180}
SILENCE=${XMIG_LAB_SILENCE:-150}
CASE_TIMEOUT=${XMIG_LAB_CASE_TIMEOUT:-360}
TCG_THREAD=${XMIG_LAB_TCG_THREAD:-single}
SMP=${XMIG_LAB_SMP:-1}
# no SMAP (PV dom0 faults), no MONITOR (Xen's mwait idle dies); no XSAVE/AVX:
# see README (dom0 memory corruption under QEMU 7.2's TCG)
CPU=${XMIG_LAB_CPU:-EPYC,-smap,-monitor,-xsave,-xsavec,-xsaveopt,-xsaves,-avx,-avx2,-fma,-f16c}
XEN_ARGS=${XMIG_LAB_XEN_ARGS:-}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, device nodes in the rootfs)"
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null ||
	say "warning: not Debian 12 (bookworm); the dom0 rootfs is bookworm anyway"

# ---- cases -------------------------------------------------------------------
CASEFILES=()
if [ $# -eq 0 ]; then
	for f in "$HERE"/cases/[0-9]*.sh; do [ -e "$f" ] && CASEFILES+=("$f"); done
else
	for c in "$@"; do
		m=0
		for f in "$HERE"/cases/"${c%.sh}"*.sh; do
			[ -e "$f" ] || continue
			case " ${CASEFILES[*]-} " in *" $f "*) ;; *) CASEFILES+=("$f") ;; esac
			m=1
		done
		[ $m = 1 ] || die "no case matches '$c' in $HERE/cases"
	done
fi
[ ${#CASEFILES[@]} -gt 0 ] || die "no cases in $HERE/cases"
# a last resort: hung cases hit their own timeout, a frozen machine the silence
BOOT_TIMEOUT=${BOOT_TIMEOUT:-$(( UP_TIMEOUT + ${#CASEFILES[@]} * (CASE_TIMEOUT + 30) ))}

# ---- xmig binaries -------------------------------------------------------------
BINS=()
for b in migrate-send migrate-receive xmig-image xmig-save-helper xmigd xmigctl; do
	f=$BUILD/$b
	if [ ! -e "$f" ]; then
		case $b in xmig-save-helper | xmigd | xmigctl) continue ;; esac
		die "$f is missing: build xmig in BUILD_DIR first (make)"
	fi
	# libtool leaves a shell wrapper when it links against a shared libxmig
	[ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] ||
		die "$f is not an ELF executable (a libtool wrapper?); build with static convenience libraries"
	BINS+=("$f")
done

# ---- host packages ---------------------------------------------------------------
HOSTPKGS="qemu-system-x86 debootstrap busybox-static cpio kmod gcc libc6-dev openssl"
missing=
for p in $HOSTPKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing host packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; } ||
		die "apt-get install$missing failed"
fi

# ---- artifact cache ---------------------------------------------------------------
# Packages of the dom0 rootfs: Xen's toolstack, what the driver uses, and the
# runtime libraries of xmig's binaries (checked with ldd below).
DOM0PKGS="xen-utils-4.17,xen-utils-common,kmod,busybox,iproute2,procps,util-linux,python3-minimal,\
libevent-2.1-7,libevent-openssl-2.1-7,libevent-pthreads-2.1-7,libssl3,zlib1g,\
libzstd1,libxxhash0,libjson-c5"
[ -z "${XMIG_LAB_EXTRA_PKGS:-}" ] || DOM0PKGS="$DOM0PKGS,$(echo "$XMIG_LAB_EXTRA_PKGS" | tr ' ' ',')"
RECIPE=5	# bump when the way the cache is built changes

kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kpkg)
if [ -z "$KPKG" ]; then
	apt-get update -q >/dev/null || true
	KPKG=$(kpkg)
fi
[ -n "$KPKG" ] || die "cannot resolve the kernel package behind linux-image-amd64 (apt-cache depends)"
KV=${KPKG#linux-image-}
candidate() { apt-cache policy "$1" | awk '/Candidate:/{print $2; exit}'; }
XPKG=xen-hypervisor-4.17-amd64
KEY="recipe=$RECIPE kernel=$KPKG:$(candidate "$KPKG") xen=$XPKG:$(candidate $XPKG) dom0=$DOM0PKGS"

# vmlinux BZIMAGE: the ELF kernel inside a bzImage, on stdout
vmlinux() {
	local off magic tool
	for magic in '\xfd\x37\x7a\x58\x5a\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -dcq' '\x1f\x8b\x08:gzip -dc'; do
		tool=${magic#*:}; magic=${magic%%:*}
		for off in $(LC_ALL=C grep -obUaP "$magic" "$1" | head -n 4 | cut -d: -f1); do
			# trailing bytes after the stream make the tools complain: ignore that
			tail -c +$((off + 1)) "$1" | $tool 2>/dev/null > "$CACHE/vmlinux.try" || true
			if [ "$(head -c4 "$CACHE/vmlinux.try" | od -An -c | tr -d ' ')" = '177ELF' ]; then
				cat "$CACHE/vmlinux.try"; rm -f "$CACHE/vmlinux.try"; return 0
			fi
		done
	done
	rm -f "$CACHE/vmlinux.try"; return 1
}

build_cache() {
	local w=$CACHE/work m
	rm -rf "$CACHE"; mkdir -p "$w/debs" "$w/x"
	say "cache: downloading $XPKG $KPKG"
	# (apt warns when its _apt user cannot write the folder: harmless as root)
	(cd "$w/debs" && apt-get download -q "$XPKG" "$KPKG" >"$w/download.log" 2>&1) ||
		{ apt-get update -q >/dev/null; (cd "$w/debs" && apt-get download -q "$XPKG" "$KPKG" >"$w/download.log" 2>&1); } ||
		{ cat "$w/download.log" >&2; false; } ||
		die "apt-get download $XPKG $KPKG failed"
	dpkg-deb -x "$w"/debs/${XPKG}_*.deb "$w/x/xen"
	dpkg-deb -x "$w"/debs/${KPKG}_*.deb "$w/x/linux"
	zcat "$w"/x/xen/boot/xen-4.17-amd64.gz > "$w/xen"
	cp "$w/x/linux/boot/vmlinuz-$KV" "$w/vmlinuz"

	m=${XMIG_LAB_MIRROR:-}
	[ -n "$m" ] || m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$m" ] || m=http://deb.debian.org/debian
	say "cache: debootstrap bookworm from $m (about a minute)"
	debootstrap --variant=minbase --include="$DOM0PKGS" bookworm "$w/root" "$m" \
		> "$w/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$w/debootstrap.log" >&2; die "debootstrap failed (log: $w/debootstrap.log)"; }

	say "cache: dom0 initramfs"
	local r=$w/root km=$w/x/linux/lib/modules/$KV d
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
		"$r"/usr/share/locale/* "$r"/var/cache/apt/*.bin \
		"$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
	mkdir -p "$r/lib/modules/$KV/kernel"
	cp "$km"/modules.order "$km"/modules.builtin* "$r/lib/modules/$KV/"
	for d in drivers/xen drivers/block/xen-blkback drivers/net/xen-netback \
		drivers/block/loop.ko drivers/net/tun.ko net/bridge net/802 net/llc; do
		[ -e "$km/kernel/$d" ] || continue
		mkdir -p "$r/lib/modules/$KV/kernel/$(dirname $d)"
		cp -a "$km/kernel/$d" "$r/lib/modules/$KV/kernel/$d"
	done
	depmod -b "$r" "$KV"
	# guests boot the kernel as a plain ELF: decompressing a bzImage in libxc
	# took most of a minute per xl create under TCG
	mkdir -p "$r/guest"
	vmlinux "$w/vmlinuz" > "$r/guest/vmlinux" || die "cannot extract vmlinux from $KPKG"
	rm -f "$r/init"
	# the shared libraries present, for the ldd check of xmig's binaries
	(cd "$r" && find . -name '*.so*' \( -type f -o -type l \) | sed 's|.*/||' | sort -u) > "$w/dom0-libs.txt"
	# gzip -1 as in the lab recipe (a plain cpio was tried while hunting the
	# memory corruption described in the README; it was not the cause)
	(cd "$r" && find . -print0 | cpio -o -0 -H newc --quiet | gzip -1) > "$w/dom0.cpio.gz"
	mv "$w/xen" "$w/vmlinuz" "$w/dom0.cpio.gz" "$w/dom0-libs.txt" "$CACHE/"
	rm -rf "$w"
	echo "$KEY" > "$CACHE/complete"
	say "cache: complete ($(du -sh "$CACHE" | cut -f1)) at $(elapsed) s"
}

if [ -f "$CACHE/complete" ] && [ "$(cat "$CACHE/complete")" = "$KEY" ] &&
	[ -s "$CACHE/xen" ] && [ -s "$CACHE/vmlinuz" ] && [ -s "$CACHE/dom0.cpio.gz" ]; then
	say "cache: reusing $CACHE"
else
	[ -f "$CACHE/complete" ] && say "cache: stale ($(cat "$CACHE/complete")), rebuilding"
	build_cache
fi

# ---- ldd check: every library of xmig's binaries must be in the dom0 rootfs ------
for b in "${BINS[@]}"; do
	while read -r lib; do
		[ -n "$lib" ] || continue
		grep -qxF "$lib" "$CACHE/dom0-libs.txt" && continue
		hp=$(ldd "$b" | awk -v l="$lib" '$1==l{print $3}')
		pkg=$( (dpkg -S "$(readlink -f "$hp")" 2>/dev/null || dpkg -S "$hp" 2>/dev/null) | head -n1 | cut -d: -f1)
		die "$(basename "$b") needs $lib, which the dom0 rootfs lacks: add its package (${pkg:-unknown}) to XMIG_LAB_EXTRA_PKGS or to DOM0PKGS in $0"
	done < <(ldd "$b" | awk '$2=="=>"{print $1} $1 ~ /^\// {n=split($1,p,"/"); print p[n]}' | grep -v '^linux-vdso')
	if ldd "$b" | grep -q 'not found'; then die "$(basename "$b"): ldd reports missing libraries on the host"; fi
done

# ---- per-run cpio: driver, cases, binaries, guest initramfs ------------------------
rm -rf "$OUT"; mkdir -p "$OUT"
S=$OUT/stage; G=$OUT/guest
mkdir -p "$S/xmig/bin" "$S/xmig/cases" "$S/guest" "$G/bin" "$G/proc" "$G/sys" "$G/dev"
gcc -static -O2 -Wall -Wextra -Werror -o "$G/bin/guest-work" "$HERE/guest-work.c" ||
	die "cannot build guest-work (gcc -static needs libc6-dev)"
cp /bin/busybox "$G/bin/busybox"
for a in sh mount mkdir cat echo sleep; do ln -s busybox "$G/bin/$a"; done
cat > "$G/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec /bin/guest-work
EOF
chmod +x "$G/init"
(cd "$G" && find . | cpio -o -H newc --quiet | gzip -1) > "$S/guest/guest.cpio.gz"
install -m 0755 "$HERE/dom0-run.sh" "$S/init"
install -m 0644 "$HERE/lib.sh" "$S/xmig/lib.sh"
for f in "${CASEFILES[@]}"; do install -m 0644 "$f" "$S/xmig/cases/"; done
for b in "${BINS[@]}"; do install -m 0755 "$b" "$S/xmig/bin/"; done
# the bench case's moves (bench-helper.sh), when not all
[ -z "${XMIG_LAB_BENCH_MOVES:-}" ] || echo "$XMIG_LAB_BENCH_MOVES" > "$S/xmig/bench-moves"
# a throwaway PKI for the cases that use tls: (server: localhost/127.0.0.1)
command -v openssl >/dev/null || die "openssl (the command) is needed for the lab's TLS certificates"
sh "$HERE/../tls-certs.sh" "$S/xmig/certs" > "$OUT/certs.log" 2>&1 ||
	die "tests/tls-certs.sh failed: $(tail -n 3 "$OUT/certs.log")"
(cd "$S" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/lab.cpio.gz"
# the kernel unpacks concatenated archives in order: ours adds /init and /xmig
cat "$CACHE/dom0.cpio.gz" "$OUT/lab.cpio.gz" > "$OUT/dom0-run.cpio.gz"
rm -rf "$S" "$G"

NAMES=$(for f in "${CASEFILES[@]}"; do basename "$f" .sh; done | tr '\n' ' ')
say "cases: $NAMES; binaries: $(for b in "${BINS[@]}"; do basename "$b"; done | tr '\n' ' ')"
say "ready to boot at $(elapsed) s"

# ---- one boot ----------------------------------------------------------------
# boot N: runs QEMU under the watchdog, writes $OUT/boot-N.log (console, with
# host seconds) and sets VERDICT (done|infra|fail) and WHY.
crash_re='segfault at|general protection fault|traps: .* trap|malloc\(\): |free\(\): |double free|corrupted (size|double-linked|top size)|stack smashing|Aborted|core dumped|Out of memory|oom-kill|BUG: |Kernel panic|Xen BUG|FATAL PAGE FAULT|Panic on CPU'

boot() {
	local n=$1 log=$OUT/boot-$1.log pidf=$OUT/qemu-$1.pid qpid='' why='' start now last size lastsize=0
	rm -f "$pidf"
	start=${EPOCHREALTIME/./}
	(
		qemu-system-x86_64 -accel tcg,thread=$TCG_THREAD -cpu "$CPU" -M pc \
			-m 3072 -smp "$SMP" -display none -monitor none -serial stdio -parallel none \
			-no-reboot -nic none -pidfile "$pidf" \
			-kernel "$CACHE/xen" \
			-append "dom0_mem=1024M,max:1024M dom0_max_vcpus=$SMP console=com1 com1=115200,8n1 noreboot $XEN_ARGS" \
			-initrd "$CACHE/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init xmig_lab.case_timeout=$CASE_TIMEOUT,$OUT/dom0-run.cpio.gz" \
			</dev/null 2>&1
		echo "XMIG-LAB-HOST qemu exited rc=$?"
	) | while IFS= read -r l; do
		l=${l%$'\r'}
		t=${EPOCHREALTIME/./}
		printf '%6d.%d %s\n' $(( (t - start) / 1000000 )) $(( (t - start) / 100000 % 10 )) "$l"
		case $l in
		*XMIG-LAB-HB*) ;;
		*XMIG-LAB*) printf '  [%s] XMIG-LAB%s\n' "$(date +%T)" "${l#*XMIG-LAB}" >&3 ;;
		esac
	done > "$log" &
	local reader=$!
	# wait for QEMU's pid
	for _ in $(seq 1 100); do [ -s "$pidf" ] && break; sleep 0.1; done
	qpid=$(cat "$pidf" 2>/dev/null || true)
	QPID=$qpid
	last=${EPOCHREALTIME/./}
	while kill -0 "$reader" 2>/dev/null; do
		sleep 2
		now=${EPOCHREALTIME/./}
		size=$(stat -c %s "$log")
		if [ "$size" != "$lastsize" ]; then lastsize=$size; last=$now; fi
		if grep -aq 'XMIG-LAB-DONE' "$log"; then
			# powering off; give QEMU a moment, then stop it
			sleep 3; why=; break
		fi
		if [ $(( (now - start) / 1000000 )) -ge "$BOOT_TIMEOUT" ]; then
			why="watchdog: boot not finished after $BOOT_TIMEOUT s"; break
		fi
		if ! grep -aq 'XMIG-LAB-DOM0 up' "$log" && [ $(( (now - start) / 1000000 )) -ge "$UP_TIMEOUT" ]; then
			why="watchdog: no dom0 userspace after $UP_TIMEOUT s"; break
		fi
		if [ $(( (now - last) / 1000000 )) -ge "$SILENCE" ]; then
			why="watchdog: console silent for $SILENCE s (dom0 heartbeat lost)"; break
		fi
	done
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		[ -z "$why" ] || echo "XMIG-LAB-HOST killing QEMU: $why" >> "$log"
		kill "$qpid" 2>/dev/null || true
		sleep 1; kill -0 "$qpid" 2>/dev/null && kill -9 "$qpid" 2>/dev/null || true
	fi
	wait "$reader" 2>/dev/null || true
	[ -z "$why" ] || echo "XMIG-LAB-HOST $why" >> "$log"

	# classify
	local fails crashes
	fails=$(grep -ac 'XMIG-LAB-RESULT [^ ]* FAIL' "$log" || true)
	# crashes: note where they happened (inside a case or outside)
	crashes=$(awk -v re="$crash_re" '
		/XMIG-LAB-CASE-BEGIN/ { incase = $NF }
		/XMIG-LAB-CASE-END/ { incase = "" }
		/XMIG-LAB-(RESULT|FIGURE|CHECK)/ { next }
		$0 ~ re {
			l = substr($0, index($0, $2))
			sub(/^XMIG-LAB-KMSG /, "", l); sub(/^\[ *[0-9.]+\] /, "", l)
			if (l == prev) next	# the kernel line and its XMIG-LAB-KMSG copy
			prev = l
			print (incase == "" ? "outside-cases" : "in-case:" incase) " :: " l }' "$log")
	printf '%s\n' "$crashes" | grep . > "$OUT/crashes-$n.txt" || true
	VERDICT='done'; WHY=''
	if ! grep -aq 'XMIG-LAB-DOM0 up' "$log"; then
		VERDICT=infra; WHY=${why:-"no dom0 userspace (QEMU exited: $(grep -a 'qemu exited' "$log" | tail -n1 | sed 's/.*exited //'))"}
		grep -a 'XMIG-LAB-INFRA' "$log" | tail -n1 | grep -q . && WHY="$WHY; $(grep -a 'XMIG-LAB-INFRA' "$log" | tail -n1 | sed 's/.*XMIG-LAB-INFRA //')"
	elif [ -n "$why" ]; then
		VERDICT=infra; WHY=$why
	elif ! grep -aq 'XMIG-LAB-DONE' "$log"; then
		VERDICT=infra; WHY="QEMU exited before the driver finished ($(grep -a 'qemu exited' "$log" | tail -n1 | sed 's/.*XMIG-LAB-HOST //'))"
	elif grep -aE 'outside-cases| in-case:[^ ]* :: .*(xenstored|xenconsoled)\[' "$OUT/crashes-$n.txt" | grep -q .; then
		VERDICT=infra; WHY="crash in dom0 outside the tests: $(grep -aE 'outside-cases|xenstored|xenconsoled' "$OUT/crashes-$n.txt" | head -n1 | cut -c1-200)"
	fi
	if [ "$VERDICT" = infra ]; then
		local running
		running=$(awk '/XMIG-LAB-CASE-BEGIN/{c=$NF} /XMIG-LAB-CASE-END/{c=""} END{print c}' "$log")
		[ -z "$running" ] || WHY="$WHY (while case $running was running)"
		# a real FAIL already reported stays a FAIL: no retry can wash it out
		[ "$fails" = 0 ] || VERDICT=fail
	fi
	say "boot $n: $(( (${EPOCHREALTIME/./} - start) / 1000000 )) s, ${VERDICT}${WHY:+: $WHY}; console log $log"
}

# interrupted: stop our QEMU (by its pid) and do not retry
QPID=
stop() {
	trap - INT TERM
	[ -z "$QPID" ] || kill "$QPID" 2>/dev/null || true
	say "interrupted"; exit 130
}
trap stop INT TERM
exec 3>&1
VERDICT=; WHY=; INCIDENTS=
for n in 1 2; do
	say "boot $n: QEMU TCG, Xen + dom0 (watchdog ${BOOT_TIMEOUT} s)"
	boot $n
	FINAL=$n
	[ "$VERDICT" = infra ] || break
	INCIDENTS="$INCIDENTS boot $n: $WHY;"
	[ $n = 1 ] && say "infrastructure failure, retrying the whole boot once"
done

# ---- summary ---------------------------------------------------------------------
log=$OUT/boot-$FINAL.log
echo
say "results (boot $FINAL, log $log):"
grep -ao 'XMIG-LAB-RESULT .*' "$log" | tee "$OUT/results.txt" | sed 's/^/  /' || true
grep -ao 'XMIG-LAB-FIGURE .*' "$log" | sed 's/^/  /' || true
if [ -s "$OUT/crashes-$FINAL.txt" ]; then
	say "userspace/kernel crashes seen on the console (boot $FINAL):"
	sed 's/^/  /' "$OUT/crashes-$FINAL.txt"
fi
[ -z "$INCIDENTS" ] || say "infrastructure incidents:$INCIDENTS"
[ "$VERDICT" != fail ] || say "boot $FINAL ended early after a FAIL (no retry): $WHY"
pass=$(grep -c ' PASS' "$OUT/results.txt" || true)
fail=$(grep -c ' FAIL' "$OUT/results.txt" || true)
# a crash of one of xmig's own programs is a failure even if its case passed
xcrash=$(grep -aE 'migrate-send|migrate-receive|xmig-' "$OUT/crashes-$FINAL.txt" 2>/dev/null | grep -c . || true)
rc=0
if [ "$VERDICT" = infra ]; then
	say "FAILED: no boot completed ($WHY)"; rc=1
elif [ "$fail" != 0 ] || [ "$pass" = 0 ]; then
	rc=1
elif [ "$xcrash" != 0 ]; then
	say "FAILED: an xmig program crashed although its case passed"; rc=1
fi
say "$pass passed, $fail failed, total $(elapsed) s; exit $rc"
exit $rc
