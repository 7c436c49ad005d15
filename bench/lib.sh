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

# bench_receiver NAME SCHEME RECEIVER_OPTS: migrate-receive --once with
# RECEIVER_OPTS (split on blanks) on a free port of 127.0.0.1 over SCHEME
# (tcp or tls), reporting into $T/NAME.recv, its messages in $T/NAME.rerr;
# returns once it says where it listens, with its pid in BENCH_RPID and
# HOST:PORT in BENCH_DEST.
bench_receiver() {
	# shellcheck disable=SC2086
	"$B/migrate-receive" --once --report json $3 "$2:127.0.0.1:0" \
	    >"$T/$1.recv" 2>"$T/$1.rerr" &
	BENCH_RPID=$!
	while ! grep -q 'listening on' "$T/$1.rerr" 2>/dev/null; do
		kill -0 $BENCH_RPID 2>/dev/null ||
		    { cat "$T/$1.rerr" >&2; exit 1; }
		sleep 0.05
	done
	BENCH_DEST=$(sed -n 's/.*listening on tcp:\(.*\)/\1/p' "$T/$1.rerr" |
	    head -1)
}

# bench_migrate NAME DOMAIN RECEIVER_OPTS [SENDER OPTIONS...]: one live
# migration on loopback: a receiver (bench_receiver, tcp: or, with
# BENCH_SCHEME=tls, tls:), then migrate-send DOMAIN to it.  Reports in
# $T/NAME.send and $T/NAME.recv; exits 1 with both sides' messages if
# either fails.
bench_migrate() {
	_n=$1 _dom=$2 _ro=$3
	shift 3
	bench_receiver "$_n" "${BENCH_SCHEME:-tcp}" "$_ro"
	"$B/migrate-send" --progress none --report json "$@" "$_dom" \
	    "${BENCH_SCHEME:-tcp}:$BENCH_DEST" >"$T/$_n.send" 2>"$T/$_n.serr" ||
	    { cat "$T/$_n.serr" "$T/$_n.rerr" >&2; exit 1; }
	wait $BENCH_RPID || { cat "$T/$_n.rerr" >&2; exit 1; }
}
