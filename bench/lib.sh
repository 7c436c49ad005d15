# bench/lib.sh -- what the migration benchmarks share; sourced with B (the
# build directory) and T (a scratch directory) set.

# bench_need PROGRAM...: each is built in $B, or exit 2.
bench_need() {
	for _p in "$@"; do
		[ -x "$B/$_p" ] || { echo "$0: no $B/$_p (build first)" >&2; exit 2; }
	done
}

# bench_field FILE KEY: a key of a JSON report, 0 when absent or null.
bench_field() {
	python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(0 if v is None else v)' "$1" "$2"
}

# bench_migrate NAME DOMAIN RECEIVER_OPTS [SENDER OPTIONS...]: one live
# migration on loopback: migrate-receive --once with RECEIVER_OPTS (split
# on blanks) on a free port, ready when it says where it listens, then
# migrate-send DOMAIN to it.  Reports in $T/NAME.send and $T/NAME.recv;
# exits 1 with both sides' messages if either fails.
bench_migrate() {
	_n=$1 _dom=$2 _ro=$3
	shift 3
	# shellcheck disable=SC2086
	"$B/migrate-receive" --once --report json $_ro tcp:127.0.0.1:0 \
	    >"$T/$_n.recv" 2>"$T/$_n.rerr" &
	_p=$!
	while ! grep -q 'listening on' "$T/$_n.rerr" 2>/dev/null; do
		kill -0 $_p 2>/dev/null || { cat "$T/$_n.rerr" >&2; exit 1; }
		sleep 0.05
	done
	_d=$(sed -n 's/.*listening on tcp:\(.*\)/\1/p' "$T/$_n.rerr" | head -1)
	"$B/migrate-send" --progress none --report json "$@" "$_dom" \
	    "tcp:$_d" >"$T/$_n.send" 2>"$T/$_n.serr" ||
	    { cat "$T/$_n.serr" "$T/$_n.rerr" >&2; exit 1; }
	wait $_p || { cat "$T/$_n.rerr" >&2; exit 1; }
}
