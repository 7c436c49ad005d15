# e2e.sh -- helpers for the end-to-end tests: real processes on loopback.
# Sourced by tests/migrate*.test.  Needs $top_builddir / $top_srcdir.
set -u
: "${top_builddir:=.}" "${top_srcdir:=.}"
# Digest comparison (same_digest) and Xen's verifier (xen_verify, xen_skip).
. "$top_srcdir/tests/lib.sh"
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
	sm=$(json "$1" memory_digest); rm_=$(json "$2" memory_digest "${3:-1}")
	sv=$(json "$1" vcpu_sha256); rv=$(json "$2" vcpu_sha256 "${3:-1}")
	if [ "$ss" = completed ] && [ "$rs" = completed ] &&
	    same_digest "$sm" "$rm_" && same_digest "$sv" "$rv"; then
		return 0
	fi
	echo "  sender:   $ss $sm $sv" >&2
	echo "  receiver: $rs $rm_ $rv" >&2
	return 1
}

# wait_pid PID SECONDS: PID's exit status, or 124 once it has been killed
# for outliving SECONDS.
wait_pid() {
	_w=0
	while kill -0 "$1" 2>/dev/null; do
		_w=$((_w + 1))
		if [ $_w -gt $(($2 * 20)) ]; then
			kill "$1" 2>/dev/null
			wait "$1"
			return 124
		fi
		sleep 0.05
	done
	wait "$1"
}

# wait_for FILE PATTERN [SECONDS]: until FILE has a line matching the
# extended regular expression PATTERN (default 60 s; 1 if it never does).
wait_for() {
	_w=0
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		_w=$((_w + 1))
		[ $_w -lt $((${3:-60} * 20)) ] || return 1
		sleep 0.05
	done
}

# free_listener NAME PYTHON-SCRIPT [ARGS...]: a Python listener on
# 127.0.0.1, port 0 (no port picked, freed and bound again): its socket is
# bound and listening, then its port is written to $T/NAME.port (temporary
# file and rename), then PYTHON-SCRIPT runs with that socket as `sock` and
# ARGS in sys.argv[1:].  Returns once the port file is there (a connection
# is then queued until the script accepts it); sets LPID and LPORT.
free_listener() {
	_n=$1; _py=$2; shift 2
	python3 - "$T/$_n.port" "$@" >"$T/$_n.lout" 2>"$T/$_n.lerr" <<PY &
import socket, sys, os
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(1)
portfile = sys.argv.pop(1)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % sock.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
$_py
PY
	LPID=$!
	PIDS="$PIDS $LPID"
	_w=0
	while [ ! -s "$T/$_n.port" ]; do
		_w=$((_w + 1))
		if [ $_w -gt 1200 ] || ! kill -0 "$LPID" 2>/dev/null; then
			cat "$T/$_n.lerr" >&2
			return 1
		fi
		sleep 0.05
	done
	LPORT=$(cat "$T/$_n.port")
}

# wait_reports FILE N: until FILE holds N report lines (10 s at most).
wait_reports() {
	_w=0
	while [ "$(grep -c '"role"' "$1" 2>/dev/null)" -lt "$2" ]; do
		_w=$((_w + 1)); [ $_w -lt 200 ] || return 1
		sleep 0.05
	done
}
