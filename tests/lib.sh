# lib.sh -- what the shell tests share.  Source it:
#	. "${top_srcdir:-.}/tests/lib.sh"
#
# Sourcing only defines things and clobbers nothing a caller may have:
# $XMIG_IMAGE and $MKIMAGE (the built programs), and xen_verifier /
# xen_verify to run Xen's own stream verifier (verify-stream-v2 from
# Debian's xen-utils-4.17, unpacked, not installed).  A test that wants the
# rest calls lib_begin, which makes $T (a fresh temporary directory,
# removed on exit by an EXIT trap) and defines pass, fail, check, check_rc,
# need and done_testing ("N passed, N failed", exit 1 if any failed).
# Safe under set -u.

top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
XMIG_IMAGE=$top_builddir/xmig-image
MKIMAGE=$top_builddir/tests/mkimage

lib_begin() {
	lib_passed=0
	lib_failed=0
	T=$(mktemp -d "${TMPDIR:-/tmp}/xmig-test.XXXXXX") || exit 1
	trap 'rm -rf "$T"' EXIT
	trap 'exit 1' HUP INT TERM

	pass() {
		lib_passed=$((lib_passed + 1))
	}

	# fail DESCRIPTION [DETAIL...]
	fail() {
		lib_failed=$((lib_failed + 1))
		echo "FAIL: $*" >&2
	}

	# check DESCRIPTION COMMAND [ARGS...]: pass if the command exits 0.
	check() {
		_d=$1
		shift
		if "$@"; then
			pass
		else
			fail "$_d (exit $?)"
		fi
	}

	# check_rc DESCRIPTION WANT COMMAND [ARGS...]: pass if it exits WANT.
	check_rc() {
		_d=$1
		_want=$2
		shift 2
		"$@"
		_rc=$?
		if [ "$_rc" -eq "$_want" ]; then
			pass
		else
			fail "$_d: exit $_rc, expected $_want"
		fi
	}

	# need PROGRAM...: fail the whole test at once if one is not built.
	need() {
		for _p in "$@"; do
			if [ ! -x "$_p" ]; then
				echo "$_p is not built (make $_p)" >&2
				echo "0 passed, 1 failed"
				exit 1
			fi
		done
	}

	# Print the closing line; exit 1 if anything failed.
	done_testing() {
		echo "$lib_passed passed, $lib_failed failed"
		[ "$lib_failed" -eq 0 ]
		exit $?
	}
}

# Print the root of an unpacked xen-utils-4.17 (the directory holding
# usr/lib/xen-4.17/...).  $XMIG_XEN_VERIFIER names one that is already
# unpacked; otherwise it is fetched once with apt-get download into
# ${XMIG_XENUTILS:-$top_builddir/tests/.xen-utils} and unpacked there with
# dpkg -x.  Returns 1 with a reason on stderr if it cannot be had.
xen_verifier() {
	if [ -n "${XMIG_XEN_VERIFIER:-}" ]; then
		if ! ls "$XMIG_XEN_VERIFIER"/usr/lib/xen-*/bin/verify-stream-v2 \
		    >/dev/null 2>&1; then
			echo "XMIG_XEN_VERIFIER=$XMIG_XEN_VERIFIER: no" \
			    "usr/lib/xen-*/bin/verify-stream-v2 there" >&2
			return 1
		fi
		echo "$XMIG_XEN_VERIFIER"
		return 0
	fi
	_xu=${XMIG_XENUTILS:-$top_builddir/tests/.xen-utils}
	if ls "$_xu"/root/usr/lib/xen-*/bin/verify-stream-v2 \
	    >/dev/null 2>&1; then
		echo "$_xu/root"
		return 0
	fi
	mkdir -p "$_xu" || return 1
	_xt=$(mktemp -d "$_xu/fetch.XXXXXX") || return 1
	if ! (cd "$_xt" && apt-get download xen-utils-4.17) \
	    >"$_xu/download.log" 2>&1; then
		echo "xen_verifier: 'apt-get download xen-utils-4.17' failed" \
		    "(see $_xu/download.log; are the apt lists there? try" \
		    "apt-get update), and XMIG_XEN_VERIFIER does not name an" \
		    "unpacked copy" >&2
		rm -rf "$_xt"
		return 1
	fi
	if ! dpkg -x "$_xt"/xen-utils-4.17_*.deb "$_xt/root"; then
		echo "xen_verifier: dpkg -x of the xen-utils-4.17 package" \
		    "failed" >&2
		rm -rf "$_xt"
		return 1
	fi
	# Another test may have won the race; either copy will do.
	mv -T "$_xt/root" "$_xu/root" 2>/dev/null
	rm -rf "$_xt"
	if ! ls "$_xu"/root/usr/lib/xen-*/bin/verify-stream-v2 \
	    >/dev/null 2>&1; then
		echo "xen_verifier: the xen-utils-4.17 package has no" \
		    "usr/lib/xen-*/bin/verify-stream-v2" >&2
		return 1
	fi
	echo "$_xu/root"
}

# xen_verify FILE: run Xen's verify-stream-v2 on a libxc stream (its own
# exit status: 0 valid, 1 stream error, 2 script error; 3 if the verifier
# cannot be had).  Its messages go to stderr.
xen_verify() {
	if [ -z "${lib_xen_root:-}" ]; then
		lib_xen_root=$(xen_verifier) || return 3
	fi
	set -- "$1" "$lib_xen_root"/usr/lib/xen-*/bin/verify-stream-v2
	# The verifier takes an all-digit argument for a file descriptor.
	case $1 in
	*[!0-9]*) ;;
	*) set -- "./$1" "$2" ;;
	esac
	PYTHONPATH=${2%/bin/verify-stream-v2}/lib/python python3 "$2" -i "$1" \
	    >&2
}
