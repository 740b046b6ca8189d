#!/bin/bash
# rollguard benchmarks: pgbench with and without rollguard, in one run.
#
#     bench/run.sh            (as root; about 25 minutes on 2 cores)
#     QUICK=1 bench/run.sh    (a smoke run of about 4 minutes, into
#                              bench/results-quick/; the numbers are noise)
#
# Starts two throwaway clusters as the postgres OS user, on Unix sockets in a
# temporary directory, from the same binaries with the same settings:
#   rg     shared_preload_libraries = 'rollguard', CREATE EXTENSION, and a
#          registry of 200 versions x 2,000-column manifests, 1,000 deployments
#   stock  no rollguard at all
# runs every workload on both, interleaved round by round (A B / B A ...) so
# that drift cancels -- DML also on rg with every session tagged
# (rollguard.deployment / rollguard.version), a third arm of the same
# rounds -- and writes bench/results/results.md (tables),
# bench/results/rollguard-bench.png (plot), the raw pgbench output
# (bench/results/raw/) and the profile of the guarded DDL
# (bench/results/profile/).  Nothing is left running.  See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD
if [ "${QUICK:-0}" = 1 ]; then
	RESULTS=${RESULTS:-$BENCH/results-quick}   # never over the committed results
fi
RESULTS=${RESULTS:-$BENCH/results}
RAW=$RESULTS/raw
PROFILE=$RESULTS/profile

BINDIR=${BINDIR:-/usr/lib/postgresql/15/bin}
if [ "${QUICK:-0}" = 1 ]; then
	# for iterating, not for quoting: every part once, as small as it goes
	ROUNDS=${ROUNDS:-1} DML_SECONDS=${DML_SECONDS:-2} DDL_TRANSACTIONS=${DDL_TRANSACTIONS:-100}
	CURVE_SECONDS=${CURVE_SECONDS:-2} SCALE=${SCALE:-1}
	CURVE_POINTS=${CURVE_POINTS:-"1000"} VERSION_POINTS=${VERSION_POINTS:-"200"}
	REFUSE_REPS=${REFUSE_REPS:-1} DEPLOY_MOVES=${DEPLOY_MOVES-}
	PARTS=${PARTS:-"dml ddl deploy served"}
fi
# the parts to run (all by default): dml ddl curve profile deploy instructions served
PARTS=${PARTS:-"dml ddl curve profile deploy instructions served"}
part() { [[ " $PARTS " == *" $1 "* ]]; }
ROUNDS=${ROUNDS:-4}                 # rounds per workload (DML: ABBA, DDL: AB / BA)
DML_SECONDS=${DML_SECONDS:-8}       # per pgbench run
DDL_TRANSACTIONS=${DDL_TRANSACTIONS:-1500}
CURVE_SECONDS=${CURVE_SECONDS:-10}  # per point of the curves
SCALE=${SCALE:-10}                  # pgbench scale factor (1,000,000 accounts)
CLIENTS=${CLIENTS:-2}               # DML clients (= cores here)
CURVE_POINTS=${CURVE_POINTS:-"10 100 1000 10000"}
VERSION_POINTS=${VERSION_POINTS:-"200 100 10 1"}  # descending: versions only leave the counters
REFUSE_REPS=${REFUSE_REPS:-5}       # refused statements timed per point (after one warm-up)
# the moves of the 1,000 mirrors (deploy API), in this order
DEPLOY_MOVES=${DEPLOY_MOVES-"mirrors-c50 mirrors-spread-c50 mirrors-c1 mirrors-spread-c1"}
# the tag of every session in the tagged DML runs: v1 is registered and live
TAG_OPTIONS=${TAG_OPTIONS:-"-c rollguard.deployment=bench-mirror -c rollguard.version=v1"}

T0=$(date +%s)
log() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }

if [ "$(id -u)" != 0 ]; then
	echo "run this as root: it starts PostgreSQL as the postgres OS user" >&2
	exit 1
fi
for b in initdb pg_ctl psql pgbench postgres; do
	[ -x "$BINDIR/$b" ] || { echo "missing $BINDIR/$b (set BINDIR)" >&2; exit 1; }
done
if ! [ -e "$("$BINDIR/pg_config" --pkglibdir)/rollguard.so" ]; then
	echo "rollguard is not installed for $BINDIR (make && make install first)" >&2
	exit 1
fi
if ! command -v gnuplot >/dev/null; then
	log "installing gnuplot-nox"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; }
fi
PYTHON=$(command -v python3)
LIBSO=$("$BINDIR/pg_config" --pkglibdir)/rollguard.so
LIBMD5=$(md5sum "$LIBSO" | cut -c1-12)

WORK=$(mktemp -d /tmp/rollguard-bench.XXXXXX)
chown postgres: "$WORK"
rm -rf "$RAW" "$PROFILE"
mkdir -p "$RAW" "$PROFILE"

# as_postgres, start_cluster, q
. "$BENCH/lib.sh"
# served_count: instructions of a real server's backends (callgrind)
. "$BENCH/served.sh"

cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then
		echo "KEEP=1: clusters left running: PGHOST=$WORK/rg or $WORK/stock, PGUSER=postgres, database bench"
		return
	fi
	for c in rg stock; do
		[ -f "$WORK/$c/data/postmaster.pid" ] &&
			as_postgres "'$BINDIR/pg_ctl' -D '$WORK/$c/data' -m immediate -w stop >/dev/null 2>&1" || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# --- the two clusters ------------------------------------------------------
# CPU seconds a cluster has used so far: the postmaster, the children it has
# reaped (cutime, cstime) and those still running.  Other tenants of the
# machine slow the wall clock (tps) but not this: server CPU per transaction
# is the steadier measure of what rollguard adds.
CLK_TCK=$(getconf CLK_TCK)
cluster_cpu() {
	local pm
	pm=$(head -1 "$WORK/$1/data/postmaster.pid")
	{
		awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
		for p in $(pgrep -P "$pm"); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true; done
	} | awk -v hz="$CLK_TCK" '{s += $1} END {printf "%.2f\n", s / hz}'
}
# bench_run NAME CLUSTER pgbench-args...: raw output in results/raw/NAME.txt.
# CLUSTER rgtag: the rg cluster, every connection tagged with $TAG_OPTIONS.
bench_run() {
	local name=$1 c=$2 rc=0 cpu0 cpu1 opts=""
	shift 2
	case $c in
		rgtag) c=rg opts=$TAG_OPTIONS ;;
		# the downtime guard (rollguard.lock_checks, default warn) on or off
		rglock) c=rg opts="-c rollguard.lock_checks=on" ;;
		rgnolock) c=rg opts="-c rollguard.lock_checks=off" ;;
	esac
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$RAW/$name.load"
	# blocks found in shared buffers or read from outside them (the
	# kernel's page cache: a system call each, CPU that instructions
	# counted in user space do not show)
	blk0=$(q "$c" -F ' ' -c "SELECT pg_stat_force_next_flush(); SELECT blks_read, blks_hit FROM pg_stat_database WHERE datname = 'bench'" | tail -1)
	cpu0=$(cluster_cpu "$c")
	PGOPTIONS="$opts" PGHOST=$WORK/$c PGPORT=5432 PGUSER=postgres "$BINDIR/pgbench" -n "$@" bench \
		>"$RAW/$name.txt" 2>&1 || rc=$?
	sleep 0.3	# let the postmaster reap the backends
	cpu1=$(cluster_cpu "$c")
	blk1=$(q "$c" -F ' ' -c "SELECT blks_read, blks_hit FROM pg_stat_database WHERE datname = 'bench'")
	echo "exit status: $rc" >>"$RAW/$name.txt"
	echo "blocks read, hit: $(awk -v a="$blk0" -v b="$blk1" 'BEGIN {split(a, x, " "); split(b, y, " "); printf "%d %d", y[1] - x[1], y[2] - x[2]}')" >>"$RAW/$name.txt"
	echo "server cpu seconds: $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}')" >>"$RAW/$name.txt"
	echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/$name.load"
	cat "$RAW/$name.load" >>"$RAW/$name.txt" && rm "$RAW/$name.load"
	printf '    %-34s %s\n' "$name" "$(grep -E '^(tps|latency average|server cpu)' "$RAW/$name.txt" | sed 's/ (without initial connection time)//' | tr '\n' ' ')"
}

log "starting clusters in $WORK (rg: rollguard preloaded; stock: not)"
start_cluster rg yes
start_cluster stock no
for c in rg stock; do
	PGHOST=$WORK/$c PGUSER=postgres "$BINDIR/createdb" bench
	q $c -f "$BENCH/sql/schema.sql"
done

# --- the machine -----------------------------------------------------------
{
	echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc	$(nproc)"
	echo "cpu	$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory	$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel	$(uname -sr)"
	echo "postgres	$(q rg -c 'SELECT version()')"
	echo "pgbench	$("$BINDIR/pgbench" --version)"
	echo "settings	$(q rg -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers','work_mem','fsync','synchronous_commit','max_wal_size','checkpoint_timeout','autovacuum','jit','max_connections')")"
	echo "rollguard	working tree at commit $(git -C "$BENCH/.." rev-parse --short HEAD 2>/dev/null || echo '?') ($(git -C "$BENCH/.." log -1 --format=%cd --date=iso 2>/dev/null)$(git -C "$BENCH/.." diff --quiet HEAD -- src 'rollguard--*.sql' rollguard.control 2>/dev/null || echo ', with uncommitted changes')); installed library md5 $LIBMD5 ($(stat -c %y "$LIBSO" | cut -d. -f1)), $( [ "$(md5sum "$BENCH/../rollguard.so" 2>/dev/null | cut -c1-12)" = "$LIBMD5" ] && echo "the working tree's build" || echo "not the working tree's build")$(for f in "$BENCH"/../rollguard--*.sql; do cmp -s "$f" "$("$BINDIR/pg_config" --sharedir)/extension/$(basename "$f")" || { echo ", installed extension scripts differ from the working tree's"; break; }; done)"
	echo "scale	$SCALE"
	echo "params	ROUNDS=$ROUNDS DML_SECONDS=$DML_SECONDS DDL_TRANSACTIONS=$DDL_TRANSACTIONS CURVE_SECONDS=$CURVE_SECONDS REFUSE_REPS=$REFUSE_REPS CLIENTS=$CLIENTS PARTS='$PARTS'$([ "${QUICK:-0}" = 1 ] && echo ' QUICK=1')"
	echo "tag	PGOPTIONS='$TAG_OPTIONS' (the tagged DML runs)"
} >"$RESULTS/machine.tsv"

# --- the registry (rg) -----------------------------------------------------
log "rg: CREATE EXTENSION rollguard, manifests"
q rg -f "$BENCH/sql/registry.sql" >/dev/null
echo "extension	rollguard $(q rg -c "SELECT extversion FROM pg_extension WHERE extname = 'rollguard'") (CREATE EXTENSION in a fresh database)" >>"$RESULTS/machine.tsv"
log "rg: registering 200 versions with 2,000-column manifests (rollguard.register_version)"
bench_run setup-register-2000 rg -c 1 -t 200 -r -f "$BENCH/scripts/register_2000.sql"
log "rg: deploying 1,000 mirrors over them (rollguard.deploy, one client)"
bench_run setup-deploy-1000 rg -c 1 -t 1000 -r -l --log-prefix="$WORK/deploylog" -f "$BENCH/scripts/deploy_initial.sql"
# latency by batch of 100 deploys: does a deploy get slower as deployments grow?
cat "$WORK"/deploylog.* | awk '{b = int(n / 100); n++; s[b] += $3; c[b]++}
	END {print "batch\tdeployments_before\tmean_ms"; for (i = 0; i in c; i++) printf "%d\t%d\t%.2f\n", i + 1, i * 100, s[i] / c[i] / 1000}' \
	>"$RESULTS/deploy_batches.tsv"
q rg -c "SELECT count(*), count(DISTINCT version) FROM rollguard.deployment_state" |
	{ IFS='|' read -r d v; log "rg: $d deployments, $v live versions, $(q rg -c 'SELECT count(*) FROM rollguard.contract') contract rows"; }
q rg -f "$BENCH/sql/proto.sql" >/dev/null
# the guard's queries, as src/registry.c has them, for timing them by hand
"$PYTHON" "$BENCH/guard_sql.py" "$BENCH/../src/registry.c" >"$WORK/guard_sql.sql" 2>"$WORK/guard_sql.log"
log "guard_sql.py: $(tr '\n' ' ' <"$WORK/guard_sql.log")"
q rg -f "$WORK/guard_sql.sql" >/dev/null
[ -n "$(q rg -c "SELECT bench_proto.guard_sql('not_null')")" ] ||
	log "WARNING: could not extract the guard's queries from src/registry.c: by-hand timings will read n/a"

log "pgbench -i -s $SCALE on both"
for c in rg stock; do
	PGHOST=$WORK/$c PGUSER=postgres "$BINDIR/pgbench" -i -q -s "$SCALE" bench >"$WORK/init-$c.log" 2>&1 &
done
wait
for c in rg stock; do q $c -c 'VACUUM ANALYZE' -c 'CHECKPOINT'; done

# the order of the pair in round r: stock first in odd rounds, rg first in even
order() { if [ $(($1 % 2)) = 1 ]; then echo "stock rg"; else echo "rg stock"; fi; }

# --- DML -------------------------------------------------------------------
if part dml; then
# Three arms: stock, rg (untagged sessions), rgtag (rg, every session tagged
# with $TAG_OPTIONS: a live session of a registered version, and whatever
# rollguard does for tagged sessions' statements -- observing the columns
# they use, where the build has that).  ABCCBA within each round (stock rg
# rgtag rgtag rg stock, then the reverse): every arm has the same mean
# position, so linear drift cancels, and each round has an A/A pair per arm
# that shows how much the machine itself moves the numbers.
abba() {
	if [ $(($1 % 2)) = 1 ]; then echo "stock-a rg-a rgtag-a rgtag-b rg-b stock-b"
	else echo "rgtag-a rg-a stock-a stock-b rg-b rgtag-b"; fi
}
# Is the tag taken?  One tagged connection must see itself in rollguard.sessions.
tagcheck=$(PGOPTIONS="$TAG_OPTIONS" q rg -F ' ' -c "SELECT current_setting('rollguard.deployment', true) || '@' || current_setting('rollguard.version', true), (SELECT count(*) FROM rollguard.sessions WHERE pid = pg_backend_pid())")
echo "tag_check	$tagcheck (deployment@version, rows of this backend in rollguard.sessions)" >>"$RESULTS/machine.tsv"
[ "${tagcheck##* }" = 1 ] || log "WARNING: a session connected with PGOPTIONS='$TAG_OPTIONS' is not tagged: $tagcheck"
observed_v1() {	# observed uses of the tag's version, or n/a before observed usage
	q rg -c "SELECT CASE WHEN to_regclass('rollguard.observed') IS NULL THEN 'n/a (no rollguard.observed in this build)'
	         ELSE (SELECT count(*)::text FROM rollguard.observed WHERE version = 'v1') END"
}
echo "observed_before	$(observed_v1)" >>"$RESULTS/machine.tsv"
log "DML: select-only and TPC-B-like, $ROUNDS rounds (ABCCBA: stock, rg, rg tagged) x ${DML_SECONDS}s, $CLIENTS clients"
for r in $(seq 1 "$ROUNDS"); do
	for run in $(abba "$r"); do
		bench_run "dml-select-r$r-$run" "${run%-?}" -M prepared -S -c "$CLIENTS" -j "$CLIENTS" -T "$DML_SECONDS"
	done
	for run in $(abba $((r + 1))); do
		bench_run "dml-tpcb-r$r-$run" "${run%-?}" -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$DML_SECONDS"
	done
done
# what the tagged runs left: observed uses of v1 (pgbench's tables and columns)
echo "observed_after	$(observed_v1)" >>"$RESULTS/machine.tsv"
log "tagged runs: $tagcheck; observed uses of v1 before/after: $(grep -E '^observed_(before|after)' "$RESULTS/machine.tsv" | cut -f2 | tr '\n' ' ')"

fi  # dml
# --- DDL mix ---------------------------------------------------------------
if part ddl; then
# A fixed number of transactions per run, not a fixed time: every DROP
# COLUMN leaves a dropped column's slot in pg_attribute for good, and the
# more a table has, the more every later ALTER TABLE of it costs.  Run for
# a fixed time, the faster cluster would make its own tables slower; with
# the same count, both clusters' tables are alike at every round.
# Two arms on rg: rollguard.lock_checks = off (the compatibility guard
# alone: "rg") and on (the downtime guard too: "rglock"), each running half
# the transactions, so that the rg cluster's tables take as many DROP
# COLUMNs per round as stock's.
log "DDL mix: $ROUNDS rounds x $DDL_TRANSACTIONS transactions, 1 client, 1,000 deployments (rg: lock_checks off, then on)"
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then arms="stock rg rglock"; else arms="rglock rg stock"; fi
	for c in $arms; do
		case $c in
			stock) bench_run "ddl-mix-r$r-stock" stock -c 1 -t "$DDL_TRANSACTIONS" -r -f "$BENCH/scripts/ddl_mix.sql" ;;
			rg) bench_run "ddl-mix-r$r-rg" rgnolock -c 1 -t $((DDL_TRANSACTIONS / 2)) -r -f "$BENCH/scripts/ddl_mix.sql" ;;
			rglock) bench_run "ddl-mix-r$r-rglock" rglock -c 1 -t $((DDL_TRANSACTIONS / 2)) -r -f "$BENCH/scripts/ddl_mix.sql" ;;
		esac
	done
done
# is the family on in the rglock arm?  (a connection with its options)
echo "lock_checks	$(PGOPTIONS='-c rollguard.lock_checks=on' q rg -c "SHOW rollguard.lock_checks") in the DDL mix's rglock arm, $(PGOPTIONS='-c rollguard.lock_checks=off' q rg -c "SHOW rollguard.lock_checks") in its rg arm" >>"$RESULTS/machine.tsv"

fi  # ddl
# --- the curves --------------------------------------------------------------
if part curve; then
# At 10 .. 10,000 deployments (200 versions), then at 1,000 deployments over
# 200 .. 1 live versions, each point:
#  - setting the deployments up (bench_proto.set_deployments: direct writes,
#    rollguard's triggers keep the counters), timed;
#  - scripts/ddl_guarded.sql by pgbench on both clusters: allowed DDL on
#    tables every version uses, checked by the real guard (the counters say
#    allowed: the common case, which must not grow with the registry);
#  - bench_proto.measure(): the guard's queries by hand (generic plans, as
#    the guard runs them), the blockers a refusal names, and
#    rollguard._live_drift() (the counters against a recount: must be 0);
#  - refused statements, as a client sees them (psql \timing, one warm-up,
#    then the median of REFUSE_REPS; on stock the same statement succeeds
#    and is rolled back): a refusal reads every live deployment using the
#    column or relation, to name each one in its DETAIL -- linear by nature.
REFUSED_STMTS=(
	"ALTER TABLE public.used_7 DROP COLUMN c002"
	"ALTER TABLE public.used_7 ALTER COLUMN c002 SET NOT NULL"
	"ALTER TABLE public.used_7 RENAME TO used_7_renamed"
)
# ddl_ms CLUSTER STATEMENT: "median_ms error_bytes" of the statement run in
# BEGIN ... ROLLBACK, REFUSE_REPS times after one warm-up (error_bytes: what
# psql printed on stderr per run: the refusal with its DETAIL, 0 on stock)
ddl_ms() {
	local c=$1 stmt=$2 f=$WORK/ddl_ms.sql
	{
		echo '\timing on'
		for _ in $(seq 0 "$REFUSE_REPS"); do printf 'BEGIN;\n%s;\nROLLBACK;\n' "$stmt"; done
	} >"$f"
	chmod 644 "$f"
	PGHOST=$WORK/$c PGPORT=5432 PGUSER=postgres "$BINDIR/psql" -X -q -At -d bench -f "$f" \
		2>"$WORK/ddl_ms.err" >"$WORK/ddl_ms.out" || true
	# Time: lines come in threes (BEGIN, the statement, ROLLBACK); skip the warm-up
	awk -v bytes="$(($(stat -c %s "$WORK/ddl_ms.err") / (REFUSE_REPS + 1)))" '
		/^Time:/ { n++; if (n % 3 == 2 && n > 3) t[++k] = $2 }
		END { if (k == 0) { print "NaN", bytes; exit }
		      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
		      m = (k % 2) ? t[(k + 1) / 2] : (t[k / 2] + t[k / 2 + 1]) / 2
		      printf "%.3f %d\n", m, bytes }' "$WORK/ddl_ms.out"
}
echo -e "axis\tdeployments\tlive_versions\tsetup_ms\tdrift\tcounts_ms\tcounts_plan_ms\tblockers\tcolumn_query_ms\tnot_null_query_ms\tnot_null_rows\trelation_query_ms\trelation_rows\trefuse_drop_column_ms\trefuse_set_not_null_ms\trefuse_rename_table_ms\tstock_drop_column_ms\tstock_set_not_null_ms\tstock_rename_table_ms\trefusal_bytes" >"$RESULTS/curve.tsv"
curve_point() {	# curve_point AXIS N LIVE
	local axis=$1 n=$2 live=$3 setup m rg_ms="" st_ms="" bytes="" stmt out
	setup=$(q rg -c "SELECT round(bench_proto.set_deployments($n, $live)::numeric, 1)")
	# steady state: what autovacuum leaves (each version entering or leaving
	# the counters updates a row per column of its contract)
	q rg -c "VACUUM ANALYZE rollguard.deployment_state, rollguard.live_version, rollguard.live_column, rollguard.live_relation"
	log "  $n deployments over $live versions: set up in $setup ms"
	for c in stock rg; do
		bench_run "curve-$axis-$n-$live-$c" $c -c 1 -T "$CURVE_SECONDS" -r -f "$BENCH/scripts/ddl_guarded.sql"
	done
	m=$(q rg -F $'\t' -c "SELECT * FROM bench_proto.measure()")
	for stmt in "${REFUSED_STMTS[@]}"; do
		out=$(ddl_ms rg "$stmt")
		rg_ms+=$'\t'${out% *}
		[ -z "$bytes" ] && bytes=${out#* }
		out=$(ddl_ms stock "$stmt")
		st_ms+=$'\t'${out% *}
	done
	# measure() starts with deployments, live_versions
	printf '%s\t%s\t%s\t%s%s%s\t%s\n' "$axis" "$(cut -f1-2 <<<"$m")" "$setup" \
		"$(cut -f3- <<<"$m")" "$rg_ms" "$st_ms" "$bytes" >>"$RESULTS/curve.tsv"
	tail -1 "$RESULTS/curve.tsv" | sed 's/^/    measured: /'
	[ "$(cut -f5 <(tail -1 "$RESULTS/curve.tsv"))" = 0 ] ||
		log "WARNING: the counters of live use differ from a recount (rollguard._live_drift())"
}
log "curve: deployments $CURVE_POINTS (200 versions)"
for n in $CURVE_POINTS; do curve_point deployments "$n" 200; done
log "curve: live versions $VERSION_POINTS (1,000 deployments)"
for v in $VERSION_POINTS; do curve_point versions 1000 "$v"; done
log "  back to 1,000 deployments over 200 versions: $(q rg -c "SELECT round(bench_proto.set_deployments(1000, 200)::numeric, 1)") ms"
# the guard's counters query right after that burst of counter updates, then vacuumed
{
	echo "-- the counters query (public.used_7.c001) right after the versions axis put versions back into the"
	echo "-- counters (each update of a counter row leaves a dead version of it until VACUUM): ms, rows, planning ms"
	q rg -F $'\t' -c "SELECT 'before VACUUM', * FROM bench_proto.guard_ms('counts', 'public', 'used_7', 'c001', 9)"
	q rg -F $'\t' -c "SELECT 'live_column', pg_size_pretty(pg_total_relation_size('rollguard.live_column')), n_live_tup, n_dead_tup FROM pg_stat_all_tables WHERE relid = 'rollguard.live_column'::regclass"
	q rg -c "SELECT * FROM bench_proto.guard_explain('counts', 'public', 'used_7', 'c001')"
	q rg -c "VACUUM ANALYZE rollguard.deployment_state, rollguard.live_version, rollguard.live_column, rollguard.live_relation"
	q rg -F $'\t' -c "SELECT 'after VACUUM', * FROM bench_proto.guard_ms('counts', 'public', 'used_7', 'c001', 9)"
	q rg -F $'\t' -c "SELECT 'live_column', pg_size_pretty(pg_total_relation_size('rollguard.live_column')), n_live_tup, n_dead_tup FROM pg_stat_all_tables WHERE relid = 'rollguard.live_column'::regclass"
} >"$PROFILE/counters-bloat.txt" 2>&1

fi  # curve
# --- profile of the guard at 1,000 deployments -------------------------------
if part profile; then
log "profile: EXPLAIN ANALYZE of the guard's queries (generic plans, as the guard runs them)"
gx() { q rg -c "SELECT * FROM bench_proto.guard_explain($1)"; }
{
	echo "-- 1,000 deployments over 200 versions (2,000-column contracts).  Each query is PREPAREd with"
	echo "-- the parameter types src/registry.c gives it and run as a generic plan, as the guard runs it."
	echo
	echo "-- the counters of live use: every checked change runs this first; for an allowed change, only this"
	echo "-- (public.used_7.c001: SET NOT NULL allowed, every version writes it non-NULL)"
	gx "'counts', 'public', 'used_7', 'c001'"
	echo
	echo "-- refusal, DROP/RENAME/retype COLUMN: the live deployments using public.used_7.c002 (all of them)"
	gx "'column', 'public', 'used_7', 'c002'"
	echo
	echo "-- refusal, the NOT NULL rules: public.used_7.c002 SET NOT NULL (every version may write NULL)"
	gx "'not_null', 'public', 'used_7', 'c002'"
	echo
	echo "-- refusal, DROP/RENAME TABLE public.used_7: every column of every live deployment"
	gx "'relation', 'public', 'used_7', NULL"
	echo
	echo "-- where the time goes (median, EXPLAIN ANALYZE TIMING OFF): variant, execution ms, rows, planning ms"
	q rg -F $'\t' -c "SELECT * FROM bench_proto.breakdown('public', 'used_7')"
	echo
	echo "-- keeping the counters: rollguard._count_version() when one version becomes live and when it"
	echo "-- stops being live (run and rolled back): columns of its contract, add ms, remove ms"
	q rg -F $'\t' -c "SELECT 'v7 (live)', * FROM bench_proto.counter_maintenance_ms('v7')"
	echo
	echo "-- the counters against a recount from scratch (rollguard._live_drift(): no rows expected)"
	q rg -F $'\t' -c "SELECT count(*) AS drift_rows FROM rollguard._live_drift()"
} >"$PROFILE/explain.txt" 2>&1

# perf, if this machine lets us sample (cpu-clock works in most VMs)
PERF_OK=0
if command -v perf >/dev/null && perf record -e cpu-clock -o "$WORK/perf-probe.data" true >/dev/null 2>&1; then
	PERF_OK=1
	# perf_backend SQLFILE DATAFILE: sample the backend that runs SQLFILE
	# (which starts with SELECT pg_sleep(1), so that we can find it)
	perf_backend() {
		local ppid pid=""
		PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/psql" -X -q -d bench -f "$1" >/dev/null 2>&1 &
		ppid=$!
		for _ in $(seq 1 50); do
			pid=$(q rg -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1)%' AND pid <> pg_backend_pid()")
			[ -n "$pid" ] && break
			sleep 0.05
		done
		[ -n "$pid" ] && perf record -q -e cpu-clock -F 2000 --call-graph dwarf,32768 -p "$pid" -o "$2" >/dev/null 2>&1
		wait "$ppid" || true
		[ -n "$pid" ]
	}
	log "profile: perf record of one backend running guarded SET NOT NULL (allowed by the counters)"
	{
		echo "SELECT pg_sleep(1);"
		for _ in $(seq 1 500); do
			echo "ALTER TABLE used_7 ALTER COLUMN c001 DROP NOT NULL;"
			echo "ALTER TABLE used_7 ALTER COLUMN c001 SET NOT NULL;"
		done
	} >"$WORK/perf.sql"
	if perf_backend "$WORK/perf.sql" "$WORK/perf.data"; then
		{
			echo "# perf record -e cpu-clock --call-graph dwarf of one backend running 500 x (ALTER TABLE used_7"
			echo "# ALTER COLUMN c001 DROP NOT NULL; ... SET NOT NULL), 1,000 deployments over 200 versions:"
			echo "# checked, and allowed by the counters of live use alone (every version writes c001 non-NULL)."
			echo "# postgres is stripped of its static symbols: hex addresses are static functions of the server."
			echo
			echo "## inclusive (children), rollguard and the executor stages"
			perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
				grep -E '^ +[0-9]' | grep -vE '0x0000|\[k\]' | head -45 || true
			echo
			echo "## self time, top 25"
			perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
				grep -E '^ +[0-9]' | head -25 || true
		} >"$PROFILE/perf.txt"
	else
		echo "could not find the backend to profile" >"$PROFILE/perf.txt"
	fi
	log "profile: perf record of one backend running checked DDL on a table no version uses"
	{
		echo "SELECT pg_sleep(1);"
		for _ in $(seq 1 500); do
			echo "ALTER TABLE free_7 RENAME COLUMN c040 TO c040_renamed;"
			echo "ALTER TABLE free_7 RENAME COLUMN c040_renamed TO c040;"
		done
	} >"$WORK/perf-floor.sql"
	if perf_backend "$WORK/perf-floor.sql" "$WORK/perf-floor.data"; then
		{
			echo "# perf record of one backend running 1,000 x ALTER TABLE free_7 RENAME COLUMN ... (a table no"
			echo "# version uses): what a check costs when the registry has nothing to say."
			echo
			echo "## inclusive (children): rollguard, SPI, planner, executor, and the statement itself (renameatt)"
			perf report -i "$WORK/perf-floor.data" --children --sort symbol --stdio -g none 2>/dev/null |
				grep -E '^ +[0-9]' | grep -vE '0x0000|\[k\]' |
				grep -E 'rg_|SPI|GetCachedPlan|pg_plan|planner|Executor|renameatt|standard_ProcessUtility|CommitTransaction|PortalRun|pgstat' |
				head -40 || true
		} >"$PROFILE/perf-floor.txt"
	fi
	log "profile: perf record of one backend running refused DROP COLUMN"
	{
		echo "SELECT pg_sleep(1);"
		for _ in $(seq 1 50); do echo "ALTER TABLE used_7 DROP COLUMN c002;"; done
	} >"$WORK/perf-refused.sql"
	if perf_backend "$WORK/perf-refused.sql" "$WORK/perf-refused.data"; then
		{
			echo "# perf record of one backend running 50 x ALTER TABLE used_7 DROP COLUMN c002, refused: every"
			echo "# live deployment uses c002; 1,000 deployments over 200 versions.  The refusal reads and names"
			echo "# each one (its DETAIL has a line per deployment)."
			echo
			echo "## inclusive (children), rollguard, SPI and the executor, error reporting"
			perf report -i "$WORK/perf-refused.data" --children --sort symbol --stdio -g none 2>/dev/null |
				grep -E '^ +[0-9]' | grep -vE '0x0000|\[k\]' | head -45 || true
			echo
			echo "## self time, top 25"
			perf report -i "$WORK/perf-refused.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
				grep -E '^ +[0-9]' | head -25 || true
		} >"$PROFILE/perf-refused.txt"
	fi
else
	log "profile: perf cannot sample here; skipped (EXPLAIN ANALYZE only)"
	echo "perf record -e cpu-clock did not work on this machine" >"$PROFILE/perf.txt"
fi

# perf of the DML backends: how much of their CPU is rollguard's code at all
if [ "$PERF_OK" = 1 ]; then
	log "profile: perf record of the rg backends during select-only and TPC-B, untagged and tagged"
	: >"$PROFILE/perf-dml.txt"
	for wl in select select-tagged tpcb tpcb-tagged; do
		flag="" opts=""
		[ "${wl%-tagged}" = select ] && flag=-S
		[ "${wl%-tagged}" != "$wl" ] && opts=$TAG_OPTIONS
		PGOPTIONS="$opts" PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/pgbench" -n -M prepared $flag -c 2 -j 2 -T 7 bench >"$WORK/perf-$wl.log" 2>&1 &
		bp=$!
		sleep 1.5
		pids=$(q rg -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
		perf record -q -e cpu-clock -F 4000 -p "$pids" -o "$WORK/perf-$wl.data" -- sleep 4 >/dev/null 2>&1 || true
		wait "$bp" || true
		{
			echo "## $wl: rg backends $pids, 4 s, share of CPU samples per shared object"
			perf report -i "$WORK/perf-$wl.data" --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' || true
			echo "## $wl: rollguard's functions, and the server's hook dispatchers that run because a hook is installed"
			perf report -i "$WORK/perf-$wl.data" --sort dso,symbol --stdio 2>/dev/null | grep -E 'rollguard|Run[A-Za-z]*Hook' | head -15 || true
			echo
		} >>"$PROFILE/perf-dml.txt"
	done
fi

fi  # profile
# --- deploy API ------------------------------------------------------------
if part deploy; then
# Every deploy step (and registration) takes the counters' global lock
# first (rollguard._lock_live(), held until commit): deploy steps are
# serialized.  The 1,000 mirrors move, each move once with 50 clients and
# once with one (the same work, the serial reference; DEPLOY_MOVES):
#   onto one version      200 versions -> v201 (50 clients), -> v202 (1):
#                         200 versions leave the counters, 1 enters
#   over 200 versions     back to v(N mod 200 + 1) (50 clients, then 1):
#                         200 versions enter the counters, 1 leaves
# Each from a vacuumed registry: pgbench's errors and exit status,
# ERROR/FATAL/deadlock lines in the server log, the registry afterwards, the
# counters against a recount, the counters' table size, and (50 clients)
# what the sessions wait on.
log "deploy API: register_version with 5,000 columns, deploy latency, 1,000 mirrors at once"
# Single operations timed by the wall clock start from settled clusters: the
# DML and DDL parts leave both with autovacuum work and dirty buffers, which
# would otherwise run on this 2-core machine while they are timed.  VACUUM
# and CHECKPOINT both, then wait (at most a minute) until no autovacuum
# worker runs on either.
for c in rg stock; do q $c -c 'VACUUM' -c 'CHECKPOINT'; done
for i in $(seq 60); do
	busy=0
	for c in rg stock; do
		busy=$((busy + $(q $c -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")))
	done
	[ "$busy" = 0 ] && break
	sleep 1
done
log "settled: $busy autovacuum workers running, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
bench_run deploy-register-v201-v202 rg -c 1 -t 2 -f "$BENCH/scripts/register_2000.sql" >/dev/null
bench_run deploy-register-5000 rg -c 1 -t 5 -r -f "$BENCH/scripts/register_5000.sql"
# the first deploy of a 5,000-column version, five times: big-K made live by
# a new deployment, in a new connection (what a deploy script's psql is), its
# 5,000 columns entering the counters; then (not timed) the deployment
# removed and the counters vacuumed, so that each starts where the first did
for k in 1 2 3 4 5; do
	bench_run deploy-first-5000-$k rg -c 1 -t 1 -l --log-prefix="$WORK/first5000-$k" -D k=$k \
		-f "$BENCH/scripts/deploy_5000_first.sql" >/dev/null
	q rg -c "SELECT rollguard.remove_deployment('wide-first-$k')" >/dev/null
	q rg -c "VACUUM rollguard.live_column, rollguard.live_relation"
done
# new deployments of big-1: the first makes it live again, the others not
bench_run deploy-deploy-5000 rg -c 1 -t 20 -r -l --log-prefix="$WORK/deploy5000log" -f "$BENCH/scripts/deploy_5000.sql"
{
	printf 'deploy-5000-first\t%s\n' "$(cat "$WORK"/deploy5000log.* | head -1 | awk '{printf "%.2f", $3 / 1000}')"
	printf 'deploy-5000-others-median\t%s\n' "$(cat "$WORK"/deploy5000log.* | tail -n +2 | awk '{print $3 / 1000}' | sort -n |
		awk '{v[NR] = $1} END {if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
	printf 'deploy-5000-first-series\t%s\n' "$(for k in 1 2 3 4 5; do
		awk '{printf "%.2f\n", $3 / 1000}' "$WORK"/first5000-$k.*; done | paste -sd ' ')"
} >"$RESULTS/deploy_first.tsv"
# sample what the deploying sessions wait on, every 0.25 s; a heavyweight
# lock waited for is named: its relation, or an advisory lock's key (a
# version's, rollguard.live of 1.3 before its table lock, or other)
WAIT_SQL="SELECT coalesce(a.wait_event_type || ':' || a.wait_event, 'on CPU')
       || coalesce(' (' || (SELECT CASE
            WHEN l.locktype = 'relation' THEN l.relation::regclass::text
            WHEN l.locktype <> 'advisory' THEN l.locktype
            WHEN l.objid::bigint = (hashtext('rollguard.live')::bigint & 4294967295) THEN 'advisory rollguard.live'
            WHEN EXISTS (SELECT 1 FROM rollguard.version_registry v
                          WHERE l.objid::bigint = (hashtext('rollguard.version:' || v.version)::bigint & 4294967295))
            THEN 'advisory rollguard.version:...'
            ELSE 'advisory rollguard.deployment:... or other' END
          FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) || ')', '')
  FROM pg_stat_activity a
 WHERE a.query LIKE '%rollguard.deploy(%' AND a.state = 'active' AND a.pid <> pg_backend_pid()"
echo -e "run\twait\tsamples" >"$RESULTS/deploy_waits.tsv"
: >"$RESULTS/deploy_check.tsv"
# mirrors_run NAME CLIENTS SCRIPT EXPECTED_VERSION_SQL
mirrors_run() {
	local name=$1 clients=$2 script=$3 expect=$4 logsize sampler=""
	# each move from the same steady state: what autovacuum would leave
	q rg -c "VACUUM ANALYZE rollguard.deployment_state, rollguard.live_version, rollguard.live_column, rollguard.live_relation"
	logsize=$(stat -c %s "$WORK/rg/server.log")
	if [ "$clients" -gt 1 ]; then
		touch "$WORK/sampling"
		(
			while [ -e "$WORK/sampling" ]; do
				q rg -c "$WAIT_SQL" || true
				sleep 0.25
			done
		) >"$WORK/waits-$name.txt" 2>/dev/null &
		sampler=$!
	fi
	bench_run "deploy-$name" rg -c "$clients" -j "$((clients > 1 ? 2 : 1))" -t "$((1000 / clients))" -f "$BENCH/scripts/$script"
	if [ -n "$sampler" ]; then
		rm -f "$WORK/sampling"
		wait "$sampler" || true
		sort "$WORK/waits-$name.txt" | uniq -c | sort -rn |
			awk -v run="$name" '{n = $1; $1 = ""; printf "%s\t%s\t%d\n", run, substr($0, 2), n}' >>"$RESULTS/deploy_waits.tsv"
		grep "^$name" "$RESULTS/deploy_waits.tsv" | cut -f2- | head -4 | sed 's/^/    waits: /'
	fi
	q rg -F $'\t' -c "SELECT '$name', count(*) FILTER (WHERE $expect), count(DISTINCT deployment) FILTER (WHERE deployment LIKE 'mirror-%'), count(*) FILTER (WHERE deployment LIKE 'mirror-%') FROM rollguard.deployment_state" >>"$RESULTS/deploy_check.tsv"
	echo -e "$name-server-errors\t$(tail -c +$((logsize + 1)) "$WORK/rg/server.log" | grep -cE 'ERROR|FATAL|deadlock' || true)" >>"$RESULTS/deploy_check.tsv"
	echo -e "$name-live-drift\t$(q rg -c 'SELECT count(*) FROM rollguard._live_drift()')" >>"$RESULTS/deploy_check.tsv"
	# the counters' table after the move: size, live and dead rows (each
	# version entering or leaving updates a row per column of its contract)
	q rg -F $'\t' -c "SELECT '$name-live_column', pg_size_pretty(pg_total_relation_size(relid)), n_live_tup, n_dead_tup FROM pg_stat_all_tables WHERE relid = 'rollguard.live_column'::regclass" >>"$RESULTS/deploy_check.tsv"
}
SPREAD="CASE WHEN deployment LIKE 'mirror-%' THEN version = 'v' || (substr(deployment, 8)::int % 200 + 1) END"
for move in $DEPLOY_MOVES; do
	case $move in
		mirrors-c50) mirrors_run mirrors-c50 50 upgrade_mirrors.sql "version = 'v201'" ;;
		mirrors-spread-c50) mirrors_run mirrors-spread-c50 50 upgrade_mirrors_spread.sql "$SPREAD" ;;
		mirrors-c1) mirrors_run mirrors-c1 1 upgrade_mirrors_serial.sql "version = 'v202'" ;;
		mirrors-spread-c1) mirrors_run mirrors-spread-c1 1 upgrade_mirrors_spread_serial.sql "$SPREAD" ;;
		*) log "WARNING: unknown move $move in DEPLOY_MOVES" ;;
	esac
done

fi  # deploy
# --- DDL mix, instructions ---------------------------------------------------
if part instructions; then
# The same statements, counted in instructions (valgrind's callgrind), which
# this machine's noise does not move: on the rg cluster's binaries, a fresh
# database with the extension and the registry (200 versions x 2,000
# columns, 1,000 deployments) against a fresh one without it, each running
# the DDL mix's statements in single-user mode (a transaction each), the
# same random tables in the same order.  Fresh databases, because a
# table's dropped columns make every ALTER TABLE of it cost more.
if [ "${SKIP_INSTRUCTIONS:-0}" != 1 ]; then
	if ! command -v valgrind >/dev/null; then
		log "installing valgrind"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null 2>&1 ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null 2>&1; } || true
	fi
fi
if [ "${SKIP_INSTRUCTIONS:-0}" != 1 ] && command -v valgrind >/dev/null; then
	ITER=$([ "${QUICK:-0}" = 1 ] && echo 30 || echo 150)
	log "DDL mix in instructions: $ITER transactions under callgrind, with and without the extension"
	for d in ddl_ext ddl_noext; do
		PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/createdb" "$d"
		PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$d" -f "$BENCH/sql/schema.sql" >/dev/null
	done
	PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d ddl_ext -f "$BENCH/sql/registry.sql" >/dev/null
	PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/pgbench" -n -c 1 -t 200 -f "$BENCH/scripts/register_2000.sql" ddl_ext >/dev/null 2>&1
	PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/pgbench" -n -c 1 -t 1000 -f "$BENCH/scripts/deploy_initial.sql" ddl_ext >/dev/null 2>&1
	for d in ddl_ext ddl_noext; do
		PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/psql" -X -q -d "$d" -c 'VACUUM ANALYZE'
	done
	"$PYTHON" - "$BENCH/scripts/ddl_mix.sql" "$ITER" >"$WORK/ddl_mix_fixed.sql" <<'PY'
import random, sys
random.seed(7)
stmts = [l for l in open(sys.argv[1]).read().splitlines() if l.startswith('ALTER')]
for _ in range(int(sys.argv[2])):
    f, u = random.randint(1, 50), random.randint(1, 50)
    for l in stmts:
        print(l.replace(':f', str(f)).replace(':u', str(u)))
PY
	chmod 644 "$WORK/ddl_mix_fixed.sql"
	as_postgres "'$BINDIR/pg_ctl' -D '$WORK/rg/data' -w stop >/dev/null"
	echo -e "database\tinstructions\ttransactions\terrors" >"$RESULTS/instructions.tsv"
	for d in ddl_noext ddl_ext; do
		as_postgres "valgrind --tool=callgrind --callgrind-out-file='$WORK/callgrind.$d' '$BINDIR/postgres' --single -D '$WORK/rg/data' $d <'$WORK/ddl_mix_fixed.sql' >'$WORK/single-$d.log' 2>&1" || true
		echo -e "$d\t$(grep 'I   refs' "$WORK/single-$d.log" | awk '{gsub(",", "", $NF); print $NF}')\t$ITER\t$(grep -c ERROR "$WORK/single-$d.log" || true)" >>"$RESULTS/instructions.tsv"
		{
			echo "## $d: callgrind_annotate --inclusive=yes (top 60)"
			callgrind_annotate --inclusive=yes "$WORK/callgrind.$d" 2>/dev/null | head -80 | tail -62 || true
			echo
		} >>"$PROFILE/callgrind-ddl.txt"
	done
	callgrind_annotate --inclusive=yes "$WORK/callgrind.ddl_ext" 2>/dev/null |
		grep -E '(standard_ProcessUtility|rg_ProcessUtility|rg_analyze_statement|rg_enforce_changes|rg_record_removals|rg_sessions_note_appname) \[' |
		awk '{n = $1; gsub(",", "", n); f = $NF; for (i = 1; i <= NF; i++) if ($i ~ /:[A-Za-z_]+$/) f = $i; sub(/.*:/, "", f); print "ddl_ext\t" f "\t" n}' >"$RESULTS/instructions_parts.tsv" || true
	callgrind_annotate --inclusive=yes "$WORK/callgrind.ddl_noext" 2>/dev/null |
		grep -E 'standard_ProcessUtility \[' |
		awk '{n = $1; gsub(",", "", n); print "ddl_noext\tstandard_ProcessUtility\t" n}' >>"$RESULTS/instructions_parts.tsv" || true
	# DML the same way: pgbench's select-only and TPC-B-like transactions
	# as plain statements on the rg cluster's pgbench tables (scale
	# $SCALE), the server started without rollguard, with it, and with
	# the session tagged (observing).
	DML_N=$([ "${QUICK:-0}" = 1 ] && echo 300 || echo 2000)
	"$PYTHON" - "$SCALE" "$DML_N" "$WORK" <<'PY'
import random, sys
scale, n, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
random.seed(11)
with open(work + "/dml_select.sql", "w") as f:
    for _ in range(n):
        f.write(f"SELECT abalance FROM pgbench_accounts WHERE aid = {random.randint(1, 100000 * scale)};\n")
with open(work + "/dml_tpcb.sql", "w") as f:
    for _ in range(n // 4):
        a, t, b, d = random.randint(1, 100000 * scale), random.randint(1, 10 * scale), random.randint(1, scale), random.randint(-5000, 5000)
        f.write("BEGIN;\n"
                f"UPDATE pgbench_accounts SET abalance = abalance + {d} WHERE aid = {a};\n"
                f"SELECT abalance FROM pgbench_accounts WHERE aid = {a};\n"
                f"UPDATE pgbench_tellers SET tbalance = tbalance + {d} WHERE tid = {t};\n"
                f"UPDATE pgbench_branches SET bbalance = bbalance + {d} WHERE bid = {b};\n"
                f"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({t}, {b}, {a}, {d}, CURRENT_TIMESTAMP);\n"
                "END;\n")
PY
	chmod 644 "$WORK"/dml_*.sql
	dml_opts() {
		case $1 in
			stock) echo "-c shared_preload_libraries=''" ;;
			rg) echo "" ;;
			rgtag) echo "$TAG_OPTIONS" ;;
		esac
	}
	echo -e "workload\tarm\tinstructions\ttransactions\terrors" >"$RESULTS/instructions_dml.tsv"
	for w in select tpcb; do
		n=$([ $w = select ] && echo "$DML_N" || echo $((DML_N / 4)))
		# a run first that is not counted (it sets the hint bits of the
		# rows pgbench left, which would cost the first counted run
		# alone), then ABCCBA: each arm's two runs average out what the
		# runs before leave (TPC-B's updates)
		as_postgres "'$BINDIR/postgres' --single -D '$WORK/rg/data' bench <'$WORK/dml_$w.sql' >/dev/null 2>&1" || true
		for arm in stock rg rgtag rgtag rg stock; do
			as_postgres "valgrind --tool=callgrind --callgrind-out-file=/dev/null '$BINDIR/postgres' --single $(dml_opts $arm) -D '$WORK/rg/data' bench <'$WORK/dml_$w.sql' >'$WORK/single-dml-$w-$arm.log' 2>&1" || true
			echo -e "$w\t$arm\t$(grep 'I   refs' "$WORK/single-dml-$w-$arm.log" | awk '{gsub(",", "", $NF); print $NF}')\t$n\t$(grep -c ERROR "$WORK/single-dml-$w-$arm.log" || true)" >>"$RESULTS/instructions_dml.tsv"
		done
	done
	# what starting and stopping the backend costs (once per process in
	# single-user mode: _PG_init, shared memory), to subtract: a server's
	# backends are forked from a postmaster that did that once
	for arm in stock rg rgtag; do
		as_postgres "valgrind --tool=callgrind --callgrind-out-file=/dev/null '$BINDIR/postgres' --single $(dml_opts $arm) -D '$WORK/rg/data' bench </dev/null >'$WORK/single-dml-empty-$arm.log' 2>&1" || true
		echo -e "startup\t$arm\t$(grep 'I   refs' "$WORK/single-dml-empty-$arm.log" | awk '{gsub(",", "", $NF); print $NF}')\t0\t0" >>"$RESULTS/instructions_dml.tsv"
	done
	as_postgres "'$BINDIR/pg_ctl' -D '$WORK/rg/data' -l '$WORK/rg/server.log' -w start >/dev/null"
else
	log "DDL mix in instructions: skipped (no valgrind, or SKIP_INSTRUCTIONS=1)"
fi

fi  # instructions
# --- DML in instructions, served by a real server -----------------------------
if part served && command -v valgrind >/dev/null; then
	as_postgres "'$BINDIR/pg_ctl' -D '$WORK/rg/data' -m fast -w stop >/dev/null"
	# DML counted for a real server: the same cluster's postmaster under
	# callgrind (--trace-children), pgbench's own transactions over its
	# own connections (the protocol, prepared statements, the connection's
	# start and end, the shared-memory session slot of a tagged session:
	# everything single-user mode leaves out), the same random keys
	# (--random-seed) in every arm, ABCCBA (sums of each arm's two runs),
	# after VACUUM and one run of the same that is not counted.  Select-only
	# also with a connection per transaction (-C): what starting a
	# connection costs.
	SERVED_N=$([ "${QUICK:-0}" = 1 ] && echo 200 || echo 1000)
	SERVED_C=$([ "${QUICK:-0}" = 1 ] && echo 20 || echo 100)
	# ABCCBA (QUICK: ABC, each server start under valgrind takes seconds)
	SERVED_ARMS=$([ "${QUICK:-0}" = 1 ] && echo "stock rg rgtag" || echo "stock rg rgtag rgtag rg stock")
	# every counted run starts from vacuumed tables (TPC-B's updates leave
	# dead rows that the next run would prune: an order effect of 1-2%)
	export SERVED_PREPARE="VACUUM pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
	log "DML in instructions, served: the rg cluster's postmaster under callgrind, stock / rollguard / tagged"
	echo -e "workload\tarm\tbackends\tinstructions\ttransactions\tfailed" >"$RESULTS/instructions_served.tsv"
	for w in select tpcb select-connect; do
		case $w in
			select) args="-M prepared -S -c 2 -j 2 -t $SERVED_N" ;;
			tpcb) args="-M prepared -c 2 -j 2 -t $((SERVED_N / 4))" ;;
			select-connect) args="-C -S -c 1 -t $SERVED_C" ;;
		esac
		# not counted: VACUUM (no page left to prune: the first arm
		# would pay for the others), then the same run once (caches,
		# hint bits)
		as_postgres "'$BINDIR/pg_ctl' -D '$WORK/rg/data' -l '$WORK/rg/server.log' -w start >/dev/null"
		q rg -c "VACUUM pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history"
		# shellcheck disable=SC2086
		PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/pgbench" -n $args --random-seed=11 bench >/dev/null 2>&1 || true
		as_postgres "'$BINDIR/pg_ctl' -D '$WORK/rg/data' -m fast -w stop >/dev/null"
		for arm in $SERVED_ARMS; do
			sopts="" popts=""
			[ $arm = stock ] && sopts="-c shared_preload_libraries=''"
			[ $arm = rgtag ] && popts=$TAG_OPTIONS
			# shellcheck disable=SC2086
			echo -e "$w\t$arm\t$(served_count "$WORK/rg/data" "$WORK/rg" "$w-$arm" "$sopts" "$popts" $args --random-seed=11)" \
				>>"$RESULTS/instructions_served.tsv"
			tail -1 "$RESULTS/instructions_served.tsv" | sed 's/^/    /'
		done
	done
	as_postgres "'$BINDIR/pg_ctl' -D '$WORK/rg/data' -l '$WORK/rg/server.log' -w start >/dev/null"
fi  # served
# --- report ----------------------------------------------------------------
if [ "$(md5sum "$LIBSO" | cut -c1-12)" != "$LIBMD5" ]; then
	log "WARNING: $LIBSO was replaced during the run; the clusters ran the library of the start ($LIBMD5)"
	echo "warning	$LIBSO was replaced during the run (now $(md5sum "$LIBSO" | cut -c1-12)); the clusters ran the one installed at the start" >>"$RESULTS/machine.tsv"
fi
log "report: $RESULTS/results.md, $RESULTS/rollguard-bench.png"
"$PYTHON" "$BENCH/report.py" "$RESULTS"
(cd "$RESULTS" && gnuplot "$BENCH/plot.gp" 2>"$WORK/gnuplot.log") || log "plot: gnuplot failed (parts left out?): $(tail -1 "$WORK/gnuplot.log")"
log "done in $(($(date +%s) - T0))s"
