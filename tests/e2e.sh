# e2e.sh -- helpers for the end-to-end tests: real processes on loopback.
# Sourced by tests/migrate*.test.  Needs $top_builddir / $top_srcdir.
set -u
: "${top_builddir:=.}" "${top_srcdir:=.}"
B=$top_builddir
SEND=$B/migrate-send
RECV=$B/migrate-receive
IMG=$B/xmig-image
T=$(mktemp -d "${TMPDIR:-/tmp}/xmig-e2e.XXXXXX")
PIDS=
cleanup() {
	pkill -P "$WATCHDOG" 2>/dev/null
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "not ok - interrupted (timeout?)"; exit 1' INT TERM
# A watchdog: no test may hang CI.  XMIG_TEST_TIMEOUT seconds (default 900).
( sleep "${XMIG_TEST_TIMEOUT:-900}" && echo "not ok - timed out" >&2 &&
    kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!
PIDS="$PIDS $WATCHDOG"
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok - $*"; }
fail() { nfail=$((nfail + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}
finish() {
	echo "$npass passed, $nfail failed"
	[ "$nfail" -eq 0 ]
}
# Sizes shrink under the sanitizers, which run 3-10x slower.
big() { if [ -n "${XMIG_SANITIZED:-}" ]; then echo "$2"; else echo "$1"; fi; }

# start_receiver NAME [options...]: listen on a free loopback port; sets
# DEST to tcp:127.0.0.1:PORT and RPID.
start_receiver() {
	name=$1; shift
	"$RECV" --report json "$@" tcp:127.0.0.1:0 >"$T/$name.recv.json" \
	    2>"$T/$name.recv.err" &
	RPID=$!
	PIDS="$PIDS $RPID"
	_w=0
	while ! grep -q 'listening on' "$T/$name.recv.err" 2>/dev/null; do
		_w=$((_w + 1))
		if [ $_w -gt 200 ] || ! kill -0 "$RPID" 2>/dev/null; then
			cat "$T/$name.recv.err" >&2
			return 1
		fi
		sleep 0.05
	done
	DEST=$(sed -n 's/.*listening on //p' "$T/$name.recv.err" | head -1)
}

# json FILE KEY [LINE]: a value from a JSON report (line LINE, default 1).
json() {
	python3 -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith("{") and "\"role\"" in l]
v = json.loads(lines[int(sys.argv[3]) - 1]).get(sys.argv[2])
print("null" if v is None else v)' "$1" "$2" "${3:-1}"
}

# same_digests SENDJSON RECVJSON [RECVLINE]: status completed on both sides
# and equal memory and vcpu digests.
same_digests() {
	ss=$(json "$1" status); rs=$(json "$2" status "${3:-1}")
	sm=$(json "$1" memory_sha256); rm_=$(json "$2" memory_sha256 "${3:-1}")
	sv=$(json "$1" vcpu_sha256); rv=$(json "$2" vcpu_sha256 "${3:-1}")
	if [ "$ss" = completed ] && [ "$rs" = completed ] &&
	    [ "$sm" = "$rm_" ] && [ "$sv" = "$rv" ] && [ "$sm" != null ] &&
	    [ "$sv" != null ]; then
		return 0
	fi
	echo "  sender:   $ss $sm $sv" >&2
	echo "  receiver: $rs $rm_ $rv" >&2
	return 1
}

# wait_reports FILE N: until FILE holds N report lines (10 s at most).
wait_reports() {
	_w=0
	while [ "$(grep -c '"role"' "$1" 2>/dev/null)" -lt "$2" ]; do
		_w=$((_w + 1)); [ $_w -lt 200 ] || return 1
		sleep 0.05
	done
}

# The Xen verifier, when tests/lib.sh provides it.
if [ -f "$top_srcdir/tests/lib.sh" ]; then
	. "$top_srcdir/tests/lib.sh"
fi
