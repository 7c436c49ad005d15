# lib.sh -- what the shell tests share.  Source it:
#	. "${top_srcdir:-.}/tests/lib.sh"
#
# Sourcing only defines things and clobbers nothing a caller may have:
# $XMIG_IMAGE and $MKIMAGE (the built programs); is_digest, same_digest
# and other_digest to compare digests; xen_verify, to run Xen's own stream
# verifier (verify-stream-v2 from Debian's xen-utils-4.17, unpacked, not
# installed), defined only when that verifier is there (tests/quickstart.sh
# fetches it; this file never downloads anything), with xen_verifier_fetch
# for quickstart and xen_skip for the checks that need it.  A test that
# wants the rest calls lib_begin, which makes $T (a fresh temporary
# directory, removed on exit by an EXIT trap) and defines pass, fail,
# check, check_rc, need and done_testing ("N passed, N failed", exit 1 if
# any failed).  Safe under set -u.

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

# ---- digests -----------------------------------------------------------

# is_digest VALUE: VALUE is a digest as xmig prints it: exactly 32
# (XXH3-128) or 64 (SHA-256) lower-case hex digits (not "null", not empty,
# not an error message).
is_digest() {
	case $1 in
	''|*[!0-9a-f]*) return 1 ;;
	esac
	[ ${#1} -eq 32 ] || [ ${#1} -eq 64 ]
}

# same_digest A B: both are digests and equal.  Two missing digests are not
# the same digest: any comparison of digests goes through here.
same_digest() {
	if ! is_digest "$1" || ! is_digest "$2"; then
		echo "  not a digest: '$1' / '$2'" >&2
		return 1
	fi
	if [ "$1" != "$2" ]; then
		echo "  digests differ: $1 / $2" >&2
		return 1
	fi
}

# other_digest A B: both are digests and they differ.
other_digest() {
	if ! is_digest "$1" || ! is_digest "$2"; then
		echo "  not a digest: '$1' / '$2'" >&2
		return 1
	fi
	[ "$1" != "$2" ]
}

# ---- Xen's verifier -------------------------------------------------------
#
# Where it is looked for: $XMIG_XEN_VERIFIER, the root of an unpacked
# xen-utils-4.17 (holding usr/lib/xen-*/bin/verify-stream-v2); else
# ${XMIG_XENUTILS:-$top_srcdir/.xen-utils}/root, where xen_verifier_fetch
# (called by tests/quickstart.sh) unpacks it.

lib_xen_dir=${XMIG_XENUTILS:-$top_srcdir/.xen-utils}

# xen_verifier: print the root of the unpacked verifier; return 1 with the
# reason on stderr if it is not there.  Never downloads.
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
	if ! ls "$lib_xen_dir"/root/usr/lib/xen-*/bin/verify-stream-v2 \
	    >/dev/null 2>&1; then
		echo "Xen's verifier (verify-stream-v2 of xen-utils-4.17) is" \
		    "not in $lib_xen_dir/root: 'sh tests/quickstart.sh test'" \
		    "fetches it there (XMIG_XENUTILS names another place)," \
		    "or set XMIG_XEN_VERIFIER to an unpacked xen-utils-4.17" >&2
		return 1
	fi
	echo "$lib_xen_dir/root"
}

# xen_verifier_fetch: make sure the verifier is there, fetching it once
# with apt-get download into $lib_xen_dir and unpacking it with dpkg -x
# (as root, an apt-get update first when the lists do not have it).  For
# tests/quickstart.sh, the install step; the tests never call it.
xen_verifier_fetch() {
	if xen_verifier >/dev/null 2>&1; then
		return 0
	fi
	mkdir -p "$lib_xen_dir" || return 1
	_xt=$(mktemp -d "$lib_xen_dir/fetch.XXXXXX") || return 1
	if ! (cd "$_xt" && apt-get download xen-utils-4.17) \
	    >"$lib_xen_dir/download.log" 2>&1; then
		if [ "$(id -u)" -eq 0 ]; then
			apt-get update -q >>"$lib_xen_dir/download.log" 2>&1
			(cd "$_xt" && apt-get download xen-utils-4.17) \
			    >>"$lib_xen_dir/download.log" 2>&1
		fi
	fi
	if ! ls "$_xt"/xen-utils-4.17_*.deb >/dev/null 2>&1; then
		echo "xen_verifier_fetch: 'apt-get download xen-utils-4.17'" \
		    "failed (see $lib_xen_dir/download.log)" >&2
		rm -rf "$_xt"
		return 1
	fi
	if ! dpkg -x "$_xt"/xen-utils-4.17_*.deb "$_xt/root"; then
		echo "xen_verifier_fetch: dpkg -x of the xen-utils-4.17" \
		    "package failed" >&2
		rm -rf "$_xt"
		return 1
	fi
	rm -rf "$lib_xen_dir/root"
	mv -T "$_xt/root" "$lib_xen_dir/root"
	rm -rf "$_xt"
	xen_verifier >/dev/null
}

# xen_skip DESCRIPTION: for a check that needs the verifier when it is not
# there: says on stdout that it is skipped and why, and returns 0.  When
# XMIG_REQUIRE_XEN_VERIFIER is set (tests/quickstart.sh sets it: where the
# verifier was fetched, its absence is a failure) it says why on stderr
# and returns 1: the caller fails the check.
xen_skip() {
	if [ -n "${XMIG_REQUIRE_XEN_VERIFIER:-}" ]; then
		echo "$1: required (XMIG_REQUIRE_XEN_VERIFIER): $lib_xen_missing" >&2
		return 1
	fi
	echo "skip - $1: $lib_xen_missing"
}

# xen_verify FILE: run Xen's verify-stream-v2 on a libxc stream (its own
# exit status: 0 valid, 1 stream error, 2 script error).  Its messages go
# to stderr.  Defined only if the verifier is there, so that
# "command -v xen_verify" tells whether it can run.
unset -f xen_verify 2>/dev/null || true
lib_xen_missing=
if lib_xen_root=$(xen_verifier 2>/dev/null); then
	xen_verify() {
		set -- "$1" "$lib_xen_root"/usr/lib/xen-*/bin/verify-stream-v2
		# The verifier takes an all-digit argument for a file
		# descriptor.
		case $1 in
		*[!0-9]*) ;;
		*) set -- "./$1" "$2" ;;
		esac
		PYTHONPATH=${2%/bin/verify-stream-v2}/lib/python python3 "$2" \
		    -i "$1" >&2
	}
else
	lib_xen_root=
	lib_xen_missing=$(xen_verifier 2>&1 >/dev/null || true)
fi
