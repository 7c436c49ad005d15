#!/bin/sh
# run.sh BUILD_DIR SECONDS -- run the parser fuzzer for a bounded time.
#
# BUILD_DIR was configured with CC=clang ./configure --enable-fuzzing and
# has run make tests/fuzz/fuzz-parser.  The committed corpus is copied to a
# temporary directory first, so the run never grows it.  The inputs in
# regress/ (earlier crashes) are replayed before fuzzing.  Exits non-zero if
# any input crashes, leaks or times out; the offending inputs are kept in
# ${FUZZ_ARTIFACTS:-BUILD_DIR/fuzz-artifacts}.
#
# Corpus inputs are two octets that choose the chunking (see
# fuzz-parser.c) followed by an image from tests/mkimage, e.g.
#	{ printf '\003\027'; tests/mkimage --type hvm --pages 2 -; } >corpus/x
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
fuzzer=$build/tests/fuzz/fuzz-parser
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}

if [ ! -x "$fuzzer" ]; then
	echo "$0: $fuzzer is not built (CC=clang ./configure" \
	    "--enable-fuzzing && make tests/fuzz/fuzz-parser)" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/xmig-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
trap 'exit 2' HUP INT TERM
mkdir "$work/corpus" "$work/out"
cp "$here"/corpus/* "$work/corpus/" || exit 2

rc=0
if ls "$here"/regress/* >/dev/null 2>&1; then
	# Given files, libFuzzer runs each once and stops at a crash.
	"$fuzzer" -artifact_prefix="$work/out/" "$here"/regress/* ||
	    rc=1
fi
if [ $rc -eq 0 ]; then
	"$fuzzer" -max_total_time="$secs" -max_len=65536 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix="$work/out/" \
	    "$work/corpus" || rc=1
fi

if ls "$work"/out/* >/dev/null 2>&1; then
	mkdir -p "$artifacts" && cp "$work"/out/* "$artifacts/"
	echo "$0: inputs that failed, kept in $artifacts:" >&2
	ls "$work/out" >&2
	rc=1
fi
exit $rc
