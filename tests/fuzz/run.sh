#!/bin/sh
# run.sh BUILD_DIR SECONDS -- run every fuzz target for a bounded time,
# SECONDS split evenly between them (at least 1 s each).
#
# The targets and their seed corpora:
#	fuzz-parser	corpus/		the stream parser (parser_new)
#	fuzz-control	corpus-control/	the control parser (parser_new_control)
#	fuzz-libxl	corpus-libxl/	xl save files and libxl streams (xp_wrap_*)
#
# BUILD_DIR was configured with CC=clang ./configure --enable-fuzzing and
# has run make tests/fuzz/fuzz-parser tests/fuzz/fuzz-control
# tests/fuzz/fuzz-libxl.  Each
# committed corpus is copied to a temporary directory first, so the run
# never grows it.  The inputs in regress/ (fuzz-parser) and
# regress-control/ (fuzz-control), earlier crashes, are replayed before
# fuzzing.  Exits non-zero if any input crashes, leaks or times out; the
# offending inputs are kept in ${FUZZ_ARTIFACTS:-BUILD_DIR/fuzz-artifacts},
# their names prefixed with the target's.
#
# fuzz-parser inputs are two octets that choose the chunking (see
# fuzz-parser.c) followed by an image from tests/mkimage, e.g.
#	{ printf '\003\027'; tests/mkimage --type hvm --pages 2 -; } >corpus/x
# fuzz-control inputs are two octets that choose the channel and the
# chunking (see fuzz-control.c) followed by the channel's octets.
# fuzz-libxl inputs are one octet that chooses the chunking followed by an
# xl save file or a libxl stream (see fuzz-libxl.c).
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
targets="fuzz-parser fuzz-control fuzz-libxl"

case $secs in
''|*[!0-9]*)
	echo "$0: SECONDS must be a number" >&2
	exit 2
	;;
esac
ntargets=0
for t in $targets; do
	if [ ! -x "$build/tests/fuzz/$t" ]; then
		echo "$0: $build/tests/fuzz/$t is not built (CC=clang" \
		    "./configure --enable-fuzzing && make tests/fuzz/$t)" >&2
		exit 2
	fi
	ntargets=$((ntargets + 1))
done
each=$((secs / ntargets))
[ "$each" -ge 1 ] || each=1

work=$(mktemp -d "${TMPDIR:-/tmp}/xmig-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
trap 'exit 2' HUP INT TERM

rc=0
for t in $targets; do
	case $t in
	fuzz-parser)
		corpus=$here/corpus
		regress=$here/regress
		;;
	*)
		corpus=$here/corpus-${t#fuzz-}
		regress=$here/regress-${t#fuzz-}
		;;
	esac
	fuzzer=$build/tests/fuzz/$t
	mkdir "$work/$t" "$work/$t.out"
	cp "$corpus"/* "$work/$t/" || exit 2

	trc=0
	if ls "$regress"/* >/dev/null 2>&1; then
		# Given files, libFuzzer runs each once and stops at a crash.
		"$fuzzer" -artifact_prefix="$work/$t.out/" "$regress"/* ||
		    trc=1
	fi
	if [ $trc -eq 0 ]; then
		echo "$0: $t for $each s" >&2
		"$fuzzer" -max_total_time="$each" -max_len=65536 -timeout=10 \
		    -print_final_stats=1 -artifact_prefix="$work/$t.out/" \
		    "$work/$t" || trc=1
	fi
	if ls "$work/$t.out"/* >/dev/null 2>&1; then
		mkdir -p "$artifacts" || exit 2
		for f in "$work/$t.out"/*; do
			cp "$f" "$artifacts/$t-${f##*/}"
		done
		echo "$0: $t: inputs that failed, kept in $artifacts:" >&2
		ls "$work/$t.out" >&2
		trc=1
	fi
	[ $trc -eq 0 ] || rc=1
done
exit $rc
