#!/bin/sh
# quickstart.sh -- the README's two commands.
#
#   sh tests/quickstart.sh demo   install build dependencies, build, and run a
#                                 live migration of a 1 GiB simulated domain
#                                 with a running workload over loopback
#   sh tests/quickstart.sh test   install build dependencies and Xen's stream
#                                 verifier, build, and run the whole suite:
#                                 make check, make distcheck, the sanitizer
#                                 build's make check, the Xen lab (Xen 4.17
#                                 booted under QEMU, tests/xen-lab/) and the
#                                 bounded fuzz run
#
# Both work on a fresh Debian 12 root shell (they apt-get what they need).
# The tests download nothing: Xen's verify-stream-v2 (xen-utils-4.17,
# fetched with apt-get download and unpacked, not installed) is fetched
# here, into $XMIG_XENUTILS (default .xen-utils at the top of the tree,
# where the tests also look when it is not set).
set -eu

mode=${1:-}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

deps() {
	pkgs="build-essential autoconf automake libtool pkg-config
	      libevent-dev libssl-dev zlib1g-dev libxxhash-dev libzstd-dev
	      libjson-c-dev libxen-dev clang
	      libclang-rt-14-dev python3 iperf3 gdb
	      debhelper dpkg-dev debootstrap systemd-container"
	missing=
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "== installing:$missing"
		if [ "$(id -u)" -ne 0 ]; then
			echo "quickstart: need root to apt-get install:$missing" >&2
			exit 1
		fi
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
	fi
}

# Xen's verifier, for the interop checks (tests/xen-verify.test and a few
# in the e2e tests).  Here its absence is an error, and the tests are told
# so (XMIG_REQUIRE_XEN_VERIFIER): they fail instead of skipping.
xen_verifier_deps() {
	XMIG_XENUTILS=${XMIG_XENUTILS:-$top/.xen-utils}
	XMIG_REQUIRE_XEN_VERIFIER=1
	export XMIG_XENUTILS XMIG_REQUIRE_XEN_VERIFIER
	echo "== Xen's verifier (xen-utils-4.17) in $XMIG_XENUTILS"
	if ! (top_srcdir=$top top_builddir=$top/build
	    . "$top/tests/lib.sh" && xen_verifier_fetch); then
		echo "quickstart: cannot fetch Xen's verifier (above); the" \
		    "interop tests need it" >&2
		exit 1
	fi
}

build() {
	dir=$1; shift
	[ -x configure ] || autoreconf -fi
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || "$top/configure" "$@"; } && make -j"$jobs")
}

case "$mode" in
demo)
	deps
	build build
	exec sh tests/demo.sh build
	;;
test)
	deps
	# One download of Xen's verifier for the three builds below.
	xen_verifier_deps
	start=$(date +%s)
	echo "== build and make check"
	build build
	(cd build && XMIG_REPL_CHAOS_N=50 make -j"$jobs" check) ||
	    { cat build/test-suite.log 2>/dev/null; exit 1; }
	echo "== make distcheck"
	(cd build && make -j"$jobs" distcheck >distcheck.log 2>&1) ||
	    { tail -50 build/distcheck.log; exit 1; }
	echo "== sanitizer build (ASan, UBSan, LeakSanitizer) and make check"
	build build-san --enable-sanitizers
	(cd build-san && XMIG_SANITIZED=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    make -j"$jobs" check) ||
	    { cat build-san/test-suite.log 2>/dev/null; exit 1; }
	echo "== Xen lab: Xen 4.17 and a Debian dom0 under QEMU (TCG)"
	bash tests/xen-lab/run.sh build || exit 1
	echo "== fuzzing (bounded)"
	build build-fuzz --enable-fuzzing CC=clang
	sh tests/fuzz/run.sh build-fuzz "${XMIG_FUZZ_SECONDS:-120}"
	echo "== the Debian package booted under systemd (tests/systemd/README)"
	(cd build && make check-systemd) >build/systemd-test.log 2>&1 ||
	    { cat build/systemd-test.log; exit 1; }
	cat build/systemd-test.log
	echo "== all done in $(( $(date +%s) - start )) s"
	# One closing line over both suites (plain and sanitizer builds).
	pass=$(cat build/tests/*.trs build-san/tests/*.trs |
	    grep -c '^:test-result: PASS' || true)
	fail=$(cat build/tests/*.trs build-san/tests/*.trs |
	    grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\)' || true)
	# and the systemd test's own "N passed, N failed"
	sd=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/systemd-test.log | tail -n 1)
	pass=$((pass + ${sd%% *})) fail=$((fail + ${sd##* }))
	echo "$pass passed, $fail failed"
	;;
*)
	echo "usage: sh tests/quickstart.sh demo|test" >&2
	exit 2
	;;
esac
