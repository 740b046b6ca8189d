#!/bin/bash
# What judging a migration by what its transaction leaves costs, with and
# without rollguard, in one run (pgbench, interleaved rounds).
#
#     bench/net_effect.sh          (as root; about 4 minutes on 2 cores)
#     QUICK=1 bench/net_effect.sh  (a smoke run of about a minute)
#
# Two throwaway clusters from the same binaries with the same settings:
#   rg     rollguard preloaded and created, 100 deployments on 2 versions
#          whose manifests use bench_t (and pgbench's tables)
#   stock  no rollguard
# Workloads, each on both clusters, in rounds ordered A B / B A:
#   txn_dml        BEGIN; SELECT; UPDATE; COMMIT (explicit transaction
#                  blocks, no DDL): a transaction that changes nothing
#                  guarded does nothing at commit
#   txn_dml_after  the same in sessions that first ran one migration whose
#                  change waited for its COMMIT (the commit callbacks are
#                  registered in the backend from then on)
#   rename_back    BEGIN; RENAME COLUMN a TO b; RENAME COLUMN b TO a;
#                  COMMIT on bench_t, which every live version uses: two
#                  changes kept, both found undone at COMMIT, no registry
#                  read (allowed; refused statement by statement before)
#   type_back      BEGIN; TYPE narrowed; TYPE widened back; COMMIT, the same
#   rename_unused  BEGIN; RENAME COLUMN; COMMIT on bench_u, which no version
#                  uses: judged at COMMIT, one registry read (the counters)
#   rename_unused_autocommit  the same rename outside a transaction block
#                  (judged at the statement, as before), renamed back
# Writes bench/results-net/results.md (or $RESULTS) and the raw pgbench
# output; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD
if [ "${QUICK:-0}" = 1 ]; then
	RESULTS=${RESULTS:-$BENCH/results-net-quick}
	ROUNDS=${ROUNDS:-2} SECONDS_DML=${SECONDS_DML:-3} SECONDS_DDL=${SECONDS_DDL:-3}
fi
RESULTS=${RESULTS:-$BENCH/results-net}
ROUNDS=${ROUNDS:-4}
SECONDS_DML=${SECONDS_DML:-8}
SECONDS_DDL=${SECONDS_DDL:-6}
SCALE=${SCALE:-5}
CLIENTS=${CLIENTS:-2}
BINDIR=${BINDIR:-/usr/lib/postgresql/15/bin}
RAW=$RESULTS/raw

if [ "$(id -u)" != 0 ]; then
	echo "run this as root: it starts PostgreSQL as the postgres OS user" >&2
	exit 1
fi
[ -e "$("$BINDIR/pg_config" --pkglibdir)/rollguard.so" ] ||
	{ echo "rollguard is not installed for $BINDIR (make && make install first)" >&2; exit 1; }

T0=$(date +%s)
log() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
# as_postgres, start_cluster, q
. "$BENCH/lib.sh"

WORK=$(mktemp -d /tmp/rollguard-bench-net.XXXXXX)
chown postgres: "$WORK"
rm -rf "$RAW"
mkdir -p "$RAW"
cleanup() {
	for c in rg stock; do
		[ -f "$WORK/$c/data/postmaster.pid" ] &&
			as_postgres "'$BINDIR/pg_ctl' -D '$WORK/$c/data' -m immediate -w stop >/dev/null 2>&1" || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

log "starting clusters in $WORK (rg: rollguard preloaded; stock: not)"
start_cluster rg yes
start_cluster stock no
for c in rg stock; do
	PGHOST=$WORK/$c PGUSER=postgres "$BINDIR/createdb" bench
	PGHOST=$WORK/$c PGUSER=postgres "$BINDIR/pgbench" -i -q -s "$SCALE" bench >"$WORK/init-$c.log" 2>&1
	q $c -c "CREATE TABLE bench_t (id int PRIMARY KEY, a integer, note text)" \
		-c "CREATE TABLE bench_u (id int PRIMARY KEY, a integer)" \
		-c "VACUUM ANALYZE" -c "CHECKPOINT"
done
q rg >/dev/null <<'SQL'
CREATE EXTENSION rollguard;
SELECT rollguard.register_version(v, '{"relations": {
    "public.bench_t": {"id": {}, "a": {}, "note": {}},
    "public.pgbench_accounts": {"aid": {}, "bid": {}, "abalance": {}, "filler": {}}}}')
  FROM unnest(ARRAY['41', '42']) v;
SELECT rollguard.deploy('mirror-' || i, CASE WHEN i % 2 = 0 THEN '41' ELSE '42' END)
  FROM generate_series(1, 100) i;
SQL
log "rg: $(q rg -c 'SELECT count(*) FROM rollguard.deployment_state') deployments live"

# the pgbench scripts
cat >"$WORK/txn_dml.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
COMMIT;
SQL
# pgbench keeps a client's variables from one transaction to the next (and
# -D warm=0 starts them at 0): the first transaction of each client is one
# migration, the rest DML
{
	echo '\if :warm = 0'
	echo 'BEGIN;'
	echo 'ALTER TABLE bench_u RENAME COLUMN a TO a_:client_id;'
	echo 'ALTER TABLE bench_u RENAME COLUMN a_:client_id TO a;'
	echo 'COMMIT;'
	echo '\set warm 1'
	echo '\endif'
	cat "$WORK/txn_dml.sql"
} >"$WORK/txn_dml_after.sql"
cat >"$WORK/rename_back.sql" <<'SQL'
BEGIN;
ALTER TABLE bench_t RENAME COLUMN a TO b;
ALTER TABLE bench_t RENAME COLUMN b TO a;
COMMIT;
SQL
cat >"$WORK/type_back.sql" <<'SQL'
BEGIN;
ALTER TABLE bench_t ALTER COLUMN a TYPE smallint;
ALTER TABLE bench_t ALTER COLUMN a TYPE integer;
COMMIT;
SQL
cat >"$WORK/rename_unused.sql" <<'SQL'
BEGIN;
ALTER TABLE bench_u RENAME COLUMN a TO b;
COMMIT;
BEGIN;
ALTER TABLE bench_u RENAME COLUMN b TO a;
COMMIT;
SQL
cat >"$WORK/rename_unused_autocommit.sql" <<'SQL'
ALTER TABLE bench_u RENAME COLUMN a TO b;
ALTER TABLE bench_u RENAME COLUMN b TO a;
SQL

# run NAME CLUSTER CLIENTS SECONDS: raw output in raw/NAME-CLUSTER-rROUND.txt
run() {
	local name=$1 c=$2 clients=$3 secs=$4 out
	out=$RAW/$name-$c-r$round.txt
	PGHOST=$WORK/$c PGPORT=5432 PGUSER=postgres "$BINDIR/pgbench" -n -c "$clients" -T "$secs" -D warm=0 \
		-f "$WORK/$name.sql" bench >"$out" 2>&1 || { echo "pgbench failed:"; cat "$out"; exit 1; }
	printf '    %-26s %-5s round %d  %s\n' "$name" "$c" "$round" "$(grep -E '^tps' "$out" | sed 's/ (without initial connection time)//')"
}

WORKLOADS="txn_dml:$CLIENTS:$SECONDS_DML txn_dml_after:$CLIENTS:$SECONDS_DML rename_back:1:$SECONDS_DDL type_back:1:$SECONDS_DDL rename_unused:1:$SECONDS_DDL rename_unused_autocommit:1:$SECONDS_DDL"
for w in $WORKLOADS; do
	IFS=: read -r name clients secs <<<"$w"
	log "$name ($clients clients, ${secs} s, $ROUNDS rounds)"
	for round in $(seq 1 "$ROUNDS"); do
		if [ $((round % 2)) = 1 ]; then order="stock rg"; else order="rg stock"; fi
		for c in $order; do run "$name" "$c" "$clients" "$secs"; done
	done
done

# every refusal would have failed pgbench; the schema is as it began
[ "$(q rg -c "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'bench_t'::regclass AND attnum > 0")" = "id,a,note" ] ||
	{ echo "bench_t changed" >&2; exit 1; }

# --- results.md ------------------------------------------------------------
tps() { grep -E '^tps' "$1" | sed 's/tps = \([0-9.]*\).*/\1/'; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
{
	echo "# rollguard: the net effect's cost (bench/net_effect.sh)"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(q rg -c 'SELECT version()' | cut -d, -f1);"
	echo "rollguard at commit $(git -C "$BENCH/.." rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$BENCH/.." diff --quiet HEAD -- src 2>/dev/null || echo ' (with uncommitted changes)'),"
	echo "$(q rg -c 'SELECT count(*) FROM rollguard.deployment_state') deployments on 2 versions that use bench_t; pgbench scale $SCALE;"
	echo "$ROUNDS rounds per workload, stock and rg in alternating order; median tps of the rounds."
	echo
	echo "| workload | clients | stock tps | rollguard tps | ratio |"
	echo "|---|---|---|---|---|"
	for w in $WORKLOADS; do
		IFS=: read -r name clients secs <<<"$w"
		s=$(for f in "$RAW/$name"-stock-r*.txt; do tps "$f"; done | median)
		r=$(for f in "$RAW/$name"-rg-r*.txt; do tps "$f"; done | median)
		echo "| $name | $clients | $s | $r | $(awk -v a="$r" -v b="$s" 'BEGIN {printf "%.3f", a / b}') |"
	done
	echo
	echo "What each workload is: see the header of bench/net_effect.sh."
} >"$RESULTS/results.md"
cat "$RESULTS/results.md"
log "done: $RESULTS/results.md"
