#!/bin/bash
# rollguard benchmarks: pgbench with and without rollguard, in one run.
#
#     bench/run.sh            (as root; about 10 minutes on 2 cores)
#     QUICK=1 bench/run.sh    (a smoke run of a minute or two; numbers are noise)
#
# Starts two throwaway clusters as the postgres OS user, on Unix sockets in a
# temporary directory, from the same binaries with the same settings:
#   rg     shared_preload_libraries = 'rollguard', CREATE EXTENSION, and a
#          registry of 200 versions x 2,000-column manifests, 1,000 deployments
#   stock  no rollguard at all
# runs every workload on both, interleaved round by round (A B / B A ...) so
# that drift cancels, and writes bench/results/results.md (tables),
# bench/results/rollguard-bench.png (plot), the raw pgbench output
# (bench/results/raw/) and the profile of the guarded DDL
# (bench/results/profile/).  Nothing is left running.  See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD
RESULTS=$BENCH/results
RAW=$RESULTS/raw
PROFILE=$RESULTS/profile

BINDIR=${BINDIR:-/usr/lib/postgresql/15/bin}
if [ "${QUICK:-0}" = 1 ]; then
	ROUNDS=${ROUNDS:-1} DML_SECONDS=${DML_SECONDS:-3} DDL_SECONDS=${DDL_SECONDS:-3}
	CURVE_SECONDS=${CURVE_SECONDS:-2} SCALE=${SCALE:-2}
	CURVE_POINTS=${CURVE_POINTS:-"10 100 1000"} VERSION_POINTS=${VERSION_POINTS:-"1 200"}
fi
ROUNDS=${ROUNDS:-4}                 # rounds per workload (DML: ABBA, DDL: AB / BA)
DML_SECONDS=${DML_SECONDS:-8}       # per pgbench run
DDL_SECONDS=${DDL_SECONDS:-10}
CURVE_SECONDS=${CURVE_SECONDS:-10}  # per point of the curves
SCALE=${SCALE:-10}                  # pgbench scale factor (1,000,000 accounts)
CLIENTS=${CLIENTS:-2}               # DML clients (= cores here)
CURVE_POINTS=${CURVE_POINTS:-"10 100 1000 10000"}
VERSION_POINTS=${VERSION_POINTS:-"1 10 100 200"}

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

as_postgres() { su postgres -s /bin/sh -c "$*"; }

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
start_cluster() {
	local name=$1 preload=$2 dir=$WORK/$1
	mkdir -p "$dir" && chown postgres: "$dir"
	as_postgres "'$BINDIR/initdb' -D '$dir/data' -A trust -U postgres >'$dir/initdb.log' 2>&1"
	cat >>"$dir/data/postgresql.conf" <<CONF
# bench/run.sh: the same on both clusters but for shared_preload_libraries
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
lc_messages = 'C'
fsync = off
shared_buffers = 256MB
max_connections = 120
max_wal_size = 4GB
checkpoint_timeout = 30min
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
	[ "$preload" = yes ] && echo "shared_preload_libraries = 'rollguard'" >>"$dir/data/postgresql.conf"
	as_postgres "'$BINDIR/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w start >/dev/null"
}
q() {	# q CLUSTER SQL...: psql -At on database bench
	local c=$1
	shift
	PGHOST=$WORK/$c PGPORT=5432 PGUSER=postgres "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d bench "$@"
}
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
bench_run() {	# bench_run NAME CLUSTER pgbench-args...: raw output in results/raw/NAME.txt
	local name=$1 c=$2 rc=0 cpu0 cpu1
	shift 2
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$RAW/$name.load"
	cpu0=$(cluster_cpu "$c")
	PGHOST=$WORK/$c PGPORT=5432 PGUSER=postgres "$BINDIR/pgbench" -n "$@" bench \
		>"$RAW/$name.txt" 2>&1 || rc=$?
	sleep 0.3	# let the postmaster reap the backends
	cpu1=$(cluster_cpu "$c")
	echo "exit status: $rc" >>"$RAW/$name.txt"
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
	echo "rollguard	commit $(git -C "$BENCH/.." rev-parse --short HEAD 2>/dev/null || echo '?') ($(git -C "$BENCH/.." log -1 --format=%cd --date=iso 2>/dev/null)), library md5 $LIBMD5 installed $(stat -c %y "$LIBSO" | cut -d. -f1)"
	echo "scale	$SCALE"
	echo "params	ROUNDS=$ROUNDS DML_SECONDS=$DML_SECONDS DDL_SECONDS=$DDL_SECONDS CURVE_SECONDS=$CURVE_SECONDS CLIENTS=$CLIENTS"
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
"$PYTHON" "$BENCH/guard_sql.py" "$BENCH/../src/registry.c" >"$WORK/guard_sql.sql"
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
# ABBA within each round (stock rg rg stock, then rg stock stock rg): drift
# cancels within the round, and each round has an A/A pair per cluster that
# shows how much the machine itself moves the numbers.
abba() { if [ $(($1 % 2)) = 1 ]; then echo "stock-a rg-a rg-b stock-b"; else echo "rg-a stock-a stock-b rg-b"; fi; }
log "DML: select-only and TPC-B-like, $ROUNDS rounds (ABBA) x ${DML_SECONDS}s, $CLIENTS clients"
for r in $(seq 1 "$ROUNDS"); do
	for run in $(abba "$r"); do
		bench_run "dml-select-r$r-$run" "${run%-?}" -M prepared -S -c "$CLIENTS" -j "$CLIENTS" -T "$DML_SECONDS"
	done
	for run in $(abba $((r + 1))); do
		bench_run "dml-tpcb-r$r-$run" "${run%-?}" -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$DML_SECONDS"
	done
done

# --- DDL mix ---------------------------------------------------------------
log "DDL mix: $ROUNDS rounds x ${DDL_SECONDS}s, 1 client, 1,000 deployments"
for r in $(seq 1 "$ROUNDS"); do
	for c in $(order "$r"); do
		bench_run "ddl-mix-r$r-$c" $c -c 1 -T "$DDL_SECONDS" -r -f "$BENCH/scripts/ddl_mix.sql"
	done
done

# --- the curves --------------------------------------------------------------
# Latency of the guarded DDL at 10 .. 10,000 deployments (200 versions), then
# at 1,000 deployments over 1 .. 200 live versions; at each point also the
# guard's registry query timed by hand, and the two proposed rewrites.
echo -e "axis\tdeployments\tlive_versions\tnot_null_rows\tnot_null_ms\tcolumn_ms\ttier1_ms\ttier2_ms\trebuild_ms" >"$RESULTS/curve.tsv"
curve_point() {	# curve_point AXIS N LIVE
	local axis=$1 n=$2 live=$3
	q rg -c "SELECT bench_proto.set_deployments($n, $live)" >/dev/null
	for c in stock rg; do
		bench_run "curve-$axis-$n-$live-$c" $c -c 1 -T "$CURVE_SECONDS" -r -f "$BENCH/scripts/ddl_guarded.sql"
	done
	q rg -F $'\t' -c "SELECT '$axis', * FROM bench_proto.measure()" >>"$RESULTS/curve.tsv"
	tail -1 "$RESULTS/curve.tsv" | sed 's/^/    measured: /'
}
log "curve: deployments $CURVE_POINTS (200 versions)"
for n in $CURVE_POINTS; do curve_point deployments "$n" 200; done
log "curve: live versions $VERSION_POINTS (1,000 deployments)"
for v in $VERSION_POINTS; do curve_point versions 1000 "$v"; done
q rg -c "SELECT bench_proto.set_deployments(1000, 200)" >/dev/null

# --- profile of the guarded DDL at 1,000 deployments -------------------------
log "profile: EXPLAIN ANALYZE of the guard's queries and of the rewrites"
gq() { q rg -c "SELECT bench_proto.guard_query($1)"; }
{
	echo "-- the guard's SET NOT NULL query (src/registry.c) for public.used_7.c001, 1,000 deployments, 200 versions"
	q rg -c "EXPLAIN (ANALYZE, BUFFERS) $(gq "'not_null', 'public', 'used_7', 'c001'")"
	echo
	echo "-- the guard's column query (DROP/RENAME COLUMN) for public.used_7.c100, which no version uses"
	q rg -c "EXPLAIN (ANALYZE, BUFFERS) $(gq "'column', 'public', 'used_7', 'c100'")"
	echo
	echo "-- the guard's relation query (DROP/RENAME TABLE) for public.used_7"
	q rg -c "EXPLAIN (ANALYZE, BUFFERS) $(gq "'relation', 'public', 'used_7', NULL")"
	echo
	echo "-- tier 1: per distinct live version, the changed column only"
	q rg -c "EXPLAIN (ANALYZE, BUFFERS) $(q rg -c "SELECT bench_proto.tier1_query('public', 'used_7', 'c001')")"
	echo
	echo "-- tier 2: counters over the live versions"
	q rg -c "SELECT bench_proto.rebuild_live_counters()" >/dev/null
	q rg -c "EXPLAIN (ANALYZE, BUFFERS) $(q rg -c "SELECT bench_proto.tier2_query('public', 'used_7', 'c001')")"
	echo
	echo "-- where the time goes (median, EXPLAIN ANALYZE TIMING OFF): variant, execution ms, rows, planning ms"
	q rg -F $'\t' -c "SELECT * FROM bench_proto.breakdown('public', 'used_7')"
	echo
	echo "-- tier 2: keeping the counters when one 2,000-column version becomes live and stops being live (ms)"
	q rg -c "SELECT bench_proto.counter_maintenance_ms('v7')"
	echo
	echo "-- tier 2 verdicts against rollguard.check()"
	q rg -F $'\t' -c "SELECT * FROM bench_proto.tier2_agrees()"
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
	log "profile: perf record of one backend running guarded SET NOT NULL"
	{
		echo "SELECT pg_sleep(1);"
		for _ in $(seq 1 20); do
			echo "ALTER TABLE used_7 ALTER COLUMN c001 DROP NOT NULL;"
			echo "ALTER TABLE used_7 ALTER COLUMN c001 SET NOT NULL;"
		done
	} >"$WORK/perf.sql"
	if perf_backend "$WORK/perf.sql" "$WORK/perf.data"; then
		{
			echo "# perf record -e cpu-clock --call-graph dwarf of one backend running 20 x (ALTER TABLE used_7"
			echo "# ALTER COLUMN c001 DROP NOT NULL; ... SET NOT NULL), 1,000 deployments over 200 versions."
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
		for _ in $(seq 1 150); do
			echo "ALTER TABLE free_7 RENAME COLUMN c040 TO c040_renamed;"
			echo "ALTER TABLE free_7 RENAME COLUMN c040_renamed TO c040;"
		done
	} >"$WORK/perf-floor.sql"
	if perf_backend "$WORK/perf-floor.sql" "$WORK/perf-floor.data"; then
		{
			echo "# perf record of one backend running 300 x ALTER TABLE free_7 RENAME COLUMN ... (a table no"
			echo "# version uses): what a check costs when the registry has nothing to say."
			echo
			echo "## inclusive (children): rollguard, SPI, planner, executor, and the statement itself (renameatt)"
			perf report -i "$WORK/perf-floor.data" --children --sort symbol --stdio -g none 2>/dev/null |
				grep -E '^ +[0-9]' | grep -vE '0x0000|\[k\]' |
				grep -E 'rg_|SPI|GetCachedPlan|pg_plan|planner|Executor|renameatt|standard_ProcessUtility|CommitTransaction|PortalRun|pgstat' |
				head -40 || true
		} >"$PROFILE/perf-floor.txt"
	fi
else
	log "profile: perf cannot sample here; skipped (EXPLAIN ANALYZE only)"
	echo "perf record -e cpu-clock did not work on this machine" >"$PROFILE/perf.txt"
fi

# perf of the DML backends: how much of their CPU is rollguard's code at all
if [ "$PERF_OK" = 1 ]; then
	log "profile: perf record of the rg backends during select-only and TPC-B"
	: >"$PROFILE/perf-dml.txt"
	for wl in select tpcb; do
		flag=""
		[ $wl = select ] && flag=-S
		PGHOST=$WORK/rg PGUSER=postgres "$BINDIR/pgbench" -n -M prepared $flag -c 2 -j 2 -T 7 bench >"$WORK/perf-$wl.log" 2>&1 &
		bp=$!
		sleep 1.5
		pids=$(q rg -c "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
		perf record -q -e cpu-clock -F 4000 -p "$pids" -o "$WORK/perf-$wl.data" -- sleep 4 >/dev/null 2>&1 || true
		wait "$bp" || true
		{
			echo "## $wl: rg backends $pids, 4 s, share of CPU samples per shared object"
			perf report -i "$WORK/perf-$wl.data" --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' || true
			echo "## $wl: rollguard's functions, and the server's hook dispatchers that run because a hook is installed"
			perf report -i "$WORK/perf-$wl.data" --sort dso,symbol --stdio 2>/dev/null | grep -E 'rollguard|Run[A-Za-z]*Hook' || true
			echo
		} >>"$PROFILE/perf-dml.txt"
	done
fi

# --- deploy API ------------------------------------------------------------
log "deploy API: register_version with 5,000 columns, deploy latency, 1,000 mirrors at once"
bench_run deploy-register-v201-v202 rg -c 1 -t 2 -f "$BENCH/scripts/register_2000.sql" >/dev/null
bench_run deploy-register-5000 rg -c 1 -t 5 -r -f "$BENCH/scripts/register_5000.sql"
bench_run deploy-deploy-5000 rg -c 1 -t 20 -r -f "$BENCH/scripts/deploy_5000.sql"
logsize=$(stat -c %s "$WORK/rg/server.log")
# sample what the 50 deploying sessions wait on, every 0.25 s, while they run
touch "$WORK/sampling"
(
	while [ -e "$WORK/sampling" ]; do
		q rg -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') FROM pg_stat_activity WHERE query LIKE '%rollguard.deploy(%' AND state = 'active' AND pid <> pg_backend_pid()" || true
		sleep 0.25
	done
) >"$WORK/waits.txt" 2>/dev/null &
sampler=$!
bench_run deploy-mirrors-c50 rg -c 50 -j 2 -t 20 -f "$BENCH/scripts/upgrade_mirrors.sql"
rm -f "$WORK/sampling"
wait "$sampler" || true
sort "$WORK/waits.txt" | uniq -c | sort -rn | awk '{n=$1; $1=""; printf "%s\t%d\n", substr($0,2), n}' >"$RESULTS/deploy_waits.tsv"
sed 's/^/    waits: /' "$RESULTS/deploy_waits.tsv" | head -5
q rg -F $'\t' -c "SELECT 'mirrors-c50', count(*) FILTER (WHERE version = 'v201'), count(DISTINCT deployment) FILTER (WHERE deployment LIKE 'mirror-%'), count(*) FILTER (WHERE deployment LIKE 'mirror-%') FROM rollguard.deployment_state" >"$RESULTS/deploy_check.tsv"
echo -e "mirrors-c50-server-errors\t$(tail -c +$((logsize + 1)) "$WORK/rg/server.log" | grep -cE 'ERROR|FATAL|deadlock' || true)" >>"$RESULTS/deploy_check.tsv"
logsize=$(stat -c %s "$WORK/rg/server.log")
bench_run deploy-mirrors-c1 rg -c 1 -t 1000 -f "$BENCH/scripts/upgrade_mirrors_serial.sql"
q rg -F $'\t' -c "SELECT 'mirrors-c1', count(*) FILTER (WHERE version = 'v202'), count(DISTINCT deployment) FILTER (WHERE deployment LIKE 'mirror-%'), count(*) FILTER (WHERE deployment LIKE 'mirror-%') FROM rollguard.deployment_state" >>"$RESULTS/deploy_check.tsv"
echo -e "mirrors-c1-server-errors\t$(tail -c +$((logsize + 1)) "$WORK/rg/server.log" | grep -cE 'ERROR|FATAL|deadlock' || true)" >>"$RESULTS/deploy_check.tsv"
logsize=$(stat -c %s "$WORK/rg/server.log")
bench_run deploy-mirrors-spread-c50 rg -c 50 -j 2 -t 20 -f "$BENCH/scripts/upgrade_mirrors_spread.sql"
q rg -F $'\t' -c "SELECT 'mirrors-spread-c50', count(*) FILTER (WHERE CASE WHEN deployment LIKE 'mirror-%' THEN version = 'v' || (substr(deployment, 8)::int % 200 + 1) END), count(DISTINCT deployment) FILTER (WHERE deployment LIKE 'mirror-%'), count(*) FILTER (WHERE deployment LIKE 'mirror-%') FROM rollguard.deployment_state" >>"$RESULTS/deploy_check.tsv"
echo -e "mirrors-spread-c50-server-errors\t$(tail -c +$((logsize + 1)) "$WORK/rg/server.log" | grep -cE 'ERROR|FATAL|deadlock' || true)" >>"$RESULTS/deploy_check.tsv"

# --- report ----------------------------------------------------------------
if [ "$(md5sum "$LIBSO" | cut -c1-12)" != "$LIBMD5" ]; then
	log "WARNING: $LIBSO was replaced during the run; the clusters ran the library of the start ($LIBMD5)"
	echo "warning	$LIBSO was replaced during the run (now $(md5sum "$LIBSO" | cut -c1-12)); the clusters ran the one installed at the start" >>"$RESULTS/machine.tsv"
fi
log "report: $RESULTS/results.md, $RESULTS/rollguard-bench.png"
"$PYTHON" "$BENCH/report.py" "$RESULTS"
(cd "$RESULTS" && gnuplot "$BENCH/plot.gp")
log "done in $(($(date +%s) - T0))s"
