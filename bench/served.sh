# Instructions counted for the backends of a real server (sourced by
# bench/run.sh; needs BINDIR, WORK, as_postgres from lib.sh).
#
# served_count DATADIR SOCKDIR NAME SERVER_OPTS PGOPTIONS PGBENCH-ARGS...
#
# Starts the cluster's postmaster under valgrind's callgrind
# (--trace-children=yes: the backends it forks are counted too, each into a
# file of its own when it exits), runs pgbench against it, and prints
#
#     backends  instructions  transactions  failed
#
# where instructions is the sum over the backends that exited during the
# pgbench run (pgbench's connections: their start, authentication, every
# statement, their exit), transactions what pgbench processed.  Unlike
# single-user mode, this is everything a served connection runs: the
# postmaster's fork, the backend's initialization (shared-memory session
# slots included), the protocol, the end of the connection.  Autovacuum is
# off for the run, so that no other process exits meanwhile.  The cluster
# must be stopped; it is left stopped.
served_count() {
	local data=$1 sock=$2 name=$3 sopts=$4 popts=$5 out=$WORK/served.$3 pm n before log
	shift 5
	rm -rf "$out" && mkdir -p "$out" && chown postgres: "$out"
	log=$out/server.log
	as_postgres "valgrind --tool=callgrind --trace-children=yes --zero-before=InitPostmasterChild \
		--callgrind-out-file='$out/cg.%p' \
		'$BINDIR/postgres' -D '$data' -c autovacuum=off -c unix_socket_directories='$sock' $sopts \
		>'$log' 2>&1 &"
	for n in $(seq 1 600); do
		PGHOST=$sock "$BINDIR/pg_isready" -q -U postgres -d bench && break
		sleep 0.2
	done
	# not counted: $SERVED_PREPARE (SQL, e.g. VACUUM: every arm starts from
	# the same tables), before the stock is taken
	if [ -n "${SERVED_PREPARE:-}" ]; then
		PGHOST=$sock PGUSER=postgres "$BINDIR/psql" -X -q -d bench -c "$SERVED_PREPARE" >/dev/null 2>&1 || true
	fi
	# pg_isready's own connection attempt exits too: wait, then take stock
	sleep 1
	before=$(ls "$out" | grep -c '^cg\.' || true)
	ls "$out" | grep '^cg\.' | sort >"$out/files.before"
	PGOPTIONS="$popts" PGHOST=$sock PGUSER=postgres "$BINDIR/pgbench" -n "$@" bench >"$out/pgbench.txt" 2>&1 || true
	# the backends write their files as they exit
	sleep 2
	ls "$out" | grep '^cg\.' | sort >"$out/files.after"
	pm=$(head -1 "$data/postmaster.pid")
	as_postgres "'$BINDIR/pg_ctl' -D '$data' -m fast -w -t 600 stop >/dev/null 2>&1" || true
	# the server's other processes write their files as they exit, after
	# the postmaster: let them finish before the next run starts
	for n in $(seq 1 600); do
		pgrep -f "callgrind-out-file=$out/" >/dev/null || break
		sleep 0.2
	done
	comm -13 "$out/files.before" "$out/files.after" | grep -v "^cg\.$pm\$" |
		while read -r f; do
			awk '/^(summary|totals):/ {print $2; exit}' "$out/$f"
		done | awk -v tx="$(awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}' "$out/pgbench.txt")" \
		      -v failed="$(grep -c 'error' "$out/pgbench.txt" || true)" \
		      '{s += $1; n++} END {printf "%d\t%.0f\t%d\t%d\n", n, s, tx, failed}'
}
