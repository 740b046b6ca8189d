#!/bin/sh
# "rollguard breaks nothing": PostgreSQL 15's own regression suite
# (src/test/regress, parallel_schedule: about 215 tests) run twice on the
# installed server binaries (/usr/lib/postgresql/15/bin), on two fresh
# clusters configured alike:
#
#   plain      without rollguard;
#   rollguard  with shared_preload_libraries = 'rollguard', the extension
#              created in the suite's database "regression", and a live
#              registry: schema "app" with tables app_person and app_site,
#              declared versions 41 and 42, an inferred version, three
#              deployments, one of them rolling out (so every DDL statement
#              of the suite goes through the guard's full check, against
#              versions that use none of the suite's tables).
#
# The two runs must fail the same tests (ideally none) and produce identical
# results/ trees; both server logs must be free of crashes and hold as many
# internal errors (the suite provokes some on purpose); and after the suite,
# the registry must be intact and the guard still armed.  Exits non-zero
# otherwise.  One difference is explained rather than refused: opr_sanity's
# catalog-wide queries ("no function is SECURITY DEFINER", "every immutable
# function is PARALLEL SAFE") list every function of the database, so they
# list the extension's own functions too, as they would for any installed
# extension; the comparison accepts exactly those rows (checked by OID).  The
# same for event_trigger's listing of every event trigger, which names the
# extension's rollguard_require_preload.
#
# Where the database comes from: pg_regress creates "regression" from
# template0 (never template1), so an extension put into template1 would not
# reach it.  Both runs therefore use pg_regress --use-existing and create the
# database exactly as pg_regress would (same CREATE DATABASE and ALTER
# DATABASE ... SET); the rollguard run then adds the extension and registry.
#
# The test files come from Debian's postgresql-15 source package, fetched
# with a private apt configuration (a deb-src list in the cache directory;
# the machine's own sources are not touched).  The version matching the
# installed server is tried first; if the archive no longer serves it (the
# security archive drops superseded sources: 15.20 is installed, only 15.18
# can be fetched), the newest other 15.x source is used, with its own psql
# (configure + make of src/bin/psql, once): psql's behaviour is part of what
# the expected files record.  The server changes between the two minor
# releases then fail a test or two (15.18 files on 15.20: alter_table,
# rules), identically in both runs.  Besides that psql, only regress.so,
# autoinc.so and refint.so are built (PGXS, from the same source);
# pg_regress is the one installed with postgresql-server-dev-15.
#
# Usage, as root, from a fresh Debian bookworm machine (installs what it
# needs; builds and installs rollguard only if it is not installed yet):
#
#     test/pg_regress_suite.sh          # RG_KEEP=1 keeps the work directory
#
# Time, on 2 cores: 1.5 to 2.5 minutes (each run of the suite 40 to 75 s),
# plus about 2 minutes the first time (download, unpack, build psql), whose
# results are cached in $RG_PG_REGRESS_CACHE (default
# /var/tmp/rollguard-pg-regress).
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh

CACHE=${RG_PG_REGRESS_CACHE:-/var/tmp/rollguard-pg-regress}
PG_MAJOR=$RG_PG_MAJOR

rg_need_root
RG_PACKAGES="$RG_PACKAGES dpkg-dev bzip2 xz-utils"
rg_install_deps
PKGLIBDIR=$(pg_config --pkglibdir)
PG_REGRESS=$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress
if [ ! -f "$PKGLIBDIR/rollguard.so" ] ||
	[ ! -f "$(pg_config --sharedir)/extension/rollguard.control" ]; then
	rg_build_install
fi

# -------------------------------------------------------------------------
# The suite's files: src/test/regress and contrib/spi of Debian's source
# package, cached; and, when that source is not the installed version, its
# own psql (psql's behaviour is part of what the expected files record: the
# psql of 15.20 reads the lines after a failed "COPY ... FROM stdin" as COPY
# data, that of 15.18 as SQL, so a 15.18 suite run by a 15.20 psql loses
# whole stretches of seven test files).
# -------------------------------------------------------------------------
fetch_regress_source() {
	if [ -f "$CACHE/VERSION" ] && [ -f "$CACHE/regress/parallel_schedule" ] && [ -d "$CACHE/spi" ] &&
		{ [ "$(cat "$CACHE/VERSION")" = "$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")" ] ||
			[ -x "$CACHE/bin/psql" ]; }; then
		return 0
	fi
	rg_log "fetching the postgresql-$PG_MAJOR source package (private apt configuration in $CACHE/apt)"
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	mkdir -p "$CACHE/apt/lists/partial"
	archive=$(rg_apt_uri "")
	security=$(rg_apt_uri -security)
	if [ -z "$archive" ]; then
		echo "   the machine's apt sources name no Debian archive"
		return 1
	fi
	{
		echo "deb-src $archive $codename main"
		echo "deb-src $archive $codename-updates main"
		[ -z "$security" ] || echo "deb-src $security $codename-security main"
	} >"$CACHE/apt/sources.list"
	set -- -o Dir::Etc::SourceList="$CACHE/apt/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$CACHE/apt/lists" \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
		-o APT::Sandbox::User=root
	apt-get "$@" -qq update
	want=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")
	others=$(apt-cache "$@" showsrc "postgresql-$PG_MAJOR" |
		awk '/^Version:/ {print $2}' | sort -u -V -r | grep -vxF "$want" || true)
	tmp=$(mktemp -d /tmp/rollguard-pgsrc.XXXXXX)
	got=""
	for v in $want $others; do
		if (cd "$tmp" && apt-get "$@" -qq source "postgresql-$PG_MAJOR=$v" >/dev/null 2>&1); then
			got=$v
			break
		fi
		echo "   the source of postgresql-$PG_MAJOR $v is not available from the archive"
		rm -rf "${tmp:?}"/*
	done
	if [ -z "$got" ]; then
		echo "no postgresql-$PG_MAJOR source package could be fetched" >&2
		rm -rf "$tmp"
		exit 1
	fi
	rm -rf "$CACHE/regress" "$CACHE/spi" "$CACHE/bin" "$CACHE/VERSION"
	srcdir=$(echo "$tmp"/postgresql-"$PG_MAJOR"-*)
	cp -a "$srcdir/src/test/regress" "$CACHE/regress"
	cp -a "$srcdir/contrib/spi" "$CACHE/spi"
	if [ "$got" != "$want" ]; then
		rg_log "building psql $got (configure and make: about 2 minutes, once)"
		(cd "$srcdir" &&
			./configure --without-readline --without-zlib --without-icu --without-llvm \
				--disable-rpath >configure.log 2>&1 &&
			make -s -j"$(nproc)" -C src/backend generated-headers >make.log 2>&1 &&
			make -s -j"$(nproc)" -C src/bin/psql >>make.log 2>&1) || {
			echo "building psql failed:" >&2
			tail -20 "$srcdir/configure.log" "$srcdir/make.log" >&2
			rm -rf "$tmp"
			exit 1
		}
		mkdir -p "$CACHE/bin"
		cp "$srcdir/src/bin/psql/psql" "$CACHE/bin/psql"
	fi
	echo "$got" >"$CACHE/VERSION"
	rm -rf "$tmp"
}
fetch_regress_source
SRC_VERSION=$(cat "$CACHE/VERSION")
BIN_VERSION=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")
if [ "$SRC_VERSION" = "$BIN_VERSION" ]; then
	PSQL_BINDIR=$RG_BINDIR
else
	PSQL_BINDIR=$CACHE/bin
fi
rg_log "suite files from postgresql-$PG_MAJOR $SRC_VERSION, server binaries $BIN_VERSION"
if [ "$SRC_VERSION" != "$BIN_VERSION" ]; then
	echo "   (the archive no longer serves the source of $BIN_VERSION: the suite of $SRC_VERSION,"
	echo "    run by its own psql, may fail a test or two on server changes between the two"
	echo "    minor releases, in both runs alike)"
fi

# -------------------------------------------------------------------------
# Work directory: the suite, regress.so, the two clusters.
# -------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/rollguard-pg-regress.XXXXXX)
cleanup() {
	for m in plain rollguard; do
		[ -f "$WORK/$m/data/postmaster.pid" ] && rg_stop_cluster "$WORK/$m"
	done
	if [ "${RG_KEEP:-0}" = 1 ]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp -a "$CACHE/regress" "$WORK/src"
mkdir "$WORK/lib"
cp "$WORK/src/regress.c" "$WORK/lib/"
cat >"$WORK/lib/Makefile" <<'MAKE'
MODULES = regress
# no JIT bitcode (needs clang)
override with_llvm = no
PG_CONFIG = pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
MAKE
cp -a "$CACHE/spi" "$WORK/spi"
rg_log "building regress.so, autoinc.so and refint.so (PGXS)"
make -s -C "$WORK/lib" >/dev/null
make -s -C "$WORK/spi" USE_PGXS=1 with_llvm=no autoinc.so refint.so >/dev/null
cp "$WORK/spi/autoinc.so" "$WORK/spi/refint.so" "$WORK/lib/"
chown -R postgres:postgres "$WORK"

# psql_sql DB SQL [psql options]: runs SQL (any quoting) from a file.
psql_sql() {
	printf '%s\n' "$2" >"$WORK/query.sql"
	chown postgres "$WORK/query.sql"
	rg_as_postgres "psql -X -q -v ON_ERROR_STOP=1 -h '$PGHOST' -p 5432 -U postgres -d '$1' ${3:-} -f '$WORK/query.sql'"
}

# The registry the rollguard run carries through the whole suite.
ROLLGUARD_SETUP=$(cat <<'SQL'
CREATE EXTENSION rollguard;
CREATE SCHEMA app;
CREATE TABLE app.app_person (
    id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name   text NOT NULL,
    weight numeric,
    email  text
);
CREATE TABLE app.app_site (id serial PRIMARY KEY, domain text NOT NULL);
SELECT rollguard.register_version('41', '{"relations": {
    "app.app_person": {"id": {"writes": false, "nullable": false},
                       "name": {"nullable": false}, "weight": {}, "email": {}},
    "app.app_site": {"id": {"writes": false}, "domain": {"nullable": false}}}}');
SELECT rollguard.register_version('42', '{"relations": {
    "app.app_person": {"id": {"writes": false, "nullable": false},
                       "name": {"nullable": false}, "email": {}},
    "app.app_site": {"id": {"writes": false}, "domain": {"nullable": false}}}}');
SELECT rollguard.deploy('mirror-1', '41');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.begin_rollout('mirror-2', '42');
-- inferred: every column of every user relation now (app.* only)
SELECT rollguard.deploy('site-3', '2026.11.20-3');
SELECT rollguard.stop_using('app.app_person', 'weight', '2026.11.20-3');
SQL
)

# Everything the suite must leave alone, in one line.
REGISTRY_SNAPSHOT="SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (
    SELECT 'v:' || version || declared || coalesce(manifest::text, '') AS t FROM rollguard.version_registry
    UNION ALL SELECT 'c:' || concat_ws(',', nspname, relname, attname, version, writes, nullable) FROM rollguard.contract
    UNION ALL SELECT 'd:' || concat_ws(',', deployment, version, state) FROM rollguard.deployment_state
    UNION ALL SELECT 'n:' || concat_ws(',', nspname, relname, attname, kind, since_version) FROM rollguard.declaration
    UNION ALL SELECT 'h:' || concat_ws(',', id, action, deployment, version, relation, \"column\") FROM rollguard.history
    UNION ALL SELECT 'a:' || concat_ws(',', table_name, column_name, data_type, is_nullable)
      FROM information_schema.columns WHERE table_schema = 'app') s"

failures=0
problem() {
	echo "PROBLEM: $*"
	failures=$((failures + 1))
}

run_suite() {
	mode=$1
	dir=$WORK/$mode
	mkdir "$dir"
	chown postgres:postgres "$dir"
	rg_log "run '$mode': initdb, start, create database \"regression\""
	rg_as_postgres "$RG_BINDIR/initdb -D '$dir/data' -A trust -U postgres -E UTF8 --locale=C --no-sync >'$dir/initdb.log' 2>&1"
	# as pg_regress configures a temporary instance, plus the socket; the
	# two runs differ only in shared_preload_libraries
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
fsync = off
lc_messages = 'C'
log_autovacuum_min_duration = 0
log_checkpoints = on
log_line_prefix = '%m %e %b[%p] %q%a '
log_lock_waits = on
log_temp_files = 128kB
max_prepared_transactions = 2
CONF
	if [ "$mode" = rollguard ]; then
		echo "shared_preload_libraries = 'rollguard'" >>"$dir/data/postgresql.conf"
	fi
	rg_as_postgres "$RG_BINDIR/pg_ctl -D '$dir/data' -l '$dir/server.log' -w start >/dev/null"
	PGHOST=$dir
	export PGHOST

	# what pg_regress's create_database() sends
	psql_sql postgres 'CREATE DATABASE "regression" TEMPLATE=template0'
	psql_sql postgres "ALTER DATABASE \"regression\" SET lc_messages TO 'C';
ALTER DATABASE \"regression\" SET lc_monetary TO 'C';
ALTER DATABASE \"regression\" SET lc_numeric TO 'C';
ALTER DATABASE \"regression\" SET lc_time TO 'C';
ALTER DATABASE \"regression\" SET bytea_output TO 'hex';
ALTER DATABASE \"regression\" SET timezone_abbreviations TO 'Default';"

	if [ "$mode" = rollguard ]; then
		psql_sql regression "$ROLLGUARD_SETUP" >/dev/null
		psql_sql regression 'SELECT deployment, version, state FROM rollguard.deployments ORDER BY 1, 2' -At |
			sed 's/^/   live: /'
		before=$(psql_sql regression "$REGISTRY_SNAPSHOT" -At)
		n=$(psql_sql regression "SELECT count(*) FROM rollguard.check('ALTER TABLE app.app_person DROP COLUMN name')" -At)
		[ "$n" = 4 ] || problem "the guard is not armed before the suite (check() found $n blockers, expected 4)"
	fi

	rg_log "run '$mode': pg_regress, parallel_schedule"
	start=$(date +%s)
	rg_as_postgres "cd '$dir' && '$PG_REGRESS' --use-existing --bindir='$PSQL_BINDIR' \
		--host='$dir' --port=5432 --dbname=regression \
		--inputdir='$WORK/src' --outputdir='$dir/out' --dlpath='$WORK/lib' \
		--schedule='$WORK/src/parallel_schedule' --max-concurrent-tests=20 \
		>'$dir/pg_regress.log' 2>&1" || true
	end=$(date +%s)
	echo "   $(grep -E '^( All [0-9]+ tests passed| [0-9]+ of [0-9]+ tests failed)' "$dir/pg_regress.log" || tail -1 "$dir/pg_regress.log") ($((end - start)) s)"

	if [ "$mode" = rollguard ]; then
		after=$(psql_sql regression "$REGISTRY_SNAPSHOT" -At)
		[ "$before" = "$after" ] || problem "the suite changed the registry or the app schema"
		echo "   the guard recorded $(psql_sql regression 'SELECT count(*) FROM rollguard.removed_column' -At)" \
			"dropped or renamed columns and relations of the suite in rollguard.removed_column"
		psql_sql regression "SELECT oid FROM pg_proc WHERE pronamespace = 'rollguard'::regnamespace" -At \
			>"$WORK/rollguard.oids"
		out=$(psql_sql regression 'ALTER TABLE app.app_person DROP COLUMN name' 2>&1 || true)
		case $out in
		*'cannot drop column "name" of table "app.app_person": 3 deployments still use it'*) echo "   guard still armed after the suite" ;;
		*) problem "the guard did not refuse a breaking change after the suite: $out" ;;
		esac
	fi

	if grep -E 'terminated by signal|PANIC|was terminated|server process .* exited with exit code' "$dir/server.log" >"$dir/crashes" 2>/dev/null; then
		problem "run '$mode': backend crash in the server log:"
		head -5 "$dir/crashes"
	fi
	rg_as_postgres "$RG_BINDIR/pg_isready -q -h '$dir' -p 5432" || problem "run '$mode': the server is down"
	rg_stop_cluster "$dir"
}

# The failing tests of a run, sorted: "name" for every "... FAILED" / "... failed (ignored)".
failing_tests() {
	sed -n 's/^ *\(test \)\{0,1\}\([^ ]*\)  *\.\.\. \(FAILED\|failed\).*/\2/p' "$1" | sort
}

t0=$(date +%s)
run_suite plain
run_suite rollguard
t1=$(date +%s)

rg_log "comparing the two runs"
failing_tests "$WORK/plain/pg_regress.log" >"$WORK/plain.failing"
failing_tests "$WORK/rollguard/pg_regress.log" >"$WORK/rollguard.failing"
echo "   failing without rollguard: $(tr '\n' ' ' <"$WORK/plain.failing")"
echo "   failing with rollguard:    $(tr '\n' ' ' <"$WORK/rollguard.failing")"
ntests=$(ls "$WORK/plain/out/results" 2>/dev/null | wc -l)
[ "$ntests" -ge 200 ] || problem "pg_regress ran only $ntests tests (see $WORK/plain/pg_regress.log)"

# Every results/ file must be identical, with one kind of exception that is
# explained, not attributable to rollguard's behaviour: catalog-wide sanity
# queries (opr_sanity: "no built-in function is SECURITY DEFINER", "every
# immutable function is PARALLEL SAFE") list every function of the
# database, so they list the extension's own functions too -- as they would
# for any installed extension.  A differing line is explained only if it is
# a row naming a function of the rollguard schema (by OID), a header of such
# a listing, or its row count.  Likewise event_trigger's listing of every
# event trigger of the database names the extension's own
# (rollguard_require_preload, which fails closed without the preload): a
# file is explained if it is the same without that row, up to the
# listing's padding and row count.
cat >"$WORK/compare.py" <<'PY'
import difflib, os, re, sys

plain_dir, rg_dir, oid_file = sys.argv[1:4]
oids = set(open(oid_file).read().split())
row = re.compile(r"^\s*(\d+)\s*\|\s*\S+\s*$")
explainable = [re.compile(p) for p in (r"^\s*\(\d+ rows?\)$", r"^\s*oid\s*\|\s*proname\s*$", r"^-+\+-+$")]
unexplained = explained = 0


def norm_event_triggers(lines):
    """The lines without those naming rollguard's event trigger, with a
    listing's padding, separator and row count normalized (the longer name
    widens the whole listing)."""
    out = []
    for line in lines:
        if "rollguard_require_preload" in line:
            continue
        line = re.sub(r"\s*\|\s*", "|", line.strip())
        if re.fullmatch(r"[-+]+", line):
            line = "-+-"
        elif re.fullmatch(r"\(\d+ rows?\)", line):
            line = "(rows)"
        out.append(line)
    return out

names = sorted(set(os.listdir(plain_dir)) | set(os.listdir(rg_dir)))
for name in names:
    a, b = os.path.join(plain_dir, name), os.path.join(rg_dir, name)
    if not (os.path.exists(a) and os.path.exists(b)):
        print(f"   {name}: only in one run")
        unexplained += 1
        continue
    la, lb = open(a, errors="replace").read().splitlines(), open(b, errors="replace").read().splitlines()
    if la == lb:
        continue
    if norm_event_triggers(la) == norm_event_triggers(lb):
        explained += 1
        print(f"   {name}: differs only by listing rollguard's event trigger rollguard_require_preload")
        continue
    bad, extra = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for side, line in [("-", l) for l in la[i1:i2]] + [("+", l) for l in lb[j1:j2]]:
            m = row.match(line)
            if side == "+" and m and m.group(1) in oids:
                extra.append(line.strip())
            elif not any(p.match(line) for p in explainable):
                bad.append(f"{side}{line}")
    if bad:
        unexplained += 1
        print(f"   {name}: DIFFERS")
        for line in bad[:40]:
            print(f"      {line}")
    else:
        explained += 1
        print(f"   {name}: differs only by listing rollguard's own functions: {', '.join(extra)}")
print(f"   results/: {len(names)} files, {len(names) - explained - unexplained} identical, "
      f"{explained} explained, {unexplained} unexplained differences")
sys.exit(1 if unexplained else 0)
PY
diff -r "$WORK/plain/out/results" "$WORK/rollguard/out/results" >"$WORK/results.diff" || true
if python3 "$WORK/compare.py" "$WORK/plain/out/results" "$WORK/rollguard/out/results" "$WORK/rollguard.oids" \
	>"$WORK/compare.log"; then
	cat "$WORK/compare.log"
	explained_tests=$(sed -n 's/^   \([^ ]*\)\.out: differs only by listing.*/\1/p' "$WORK/compare.log")
else
	cat "$WORK/compare.log"
	problem "results/ differ (diff -r: $WORK/results.diff)"
	explained_tests=""
fi
# The sets of failing tests: equal, but for tests whose only difference is explained above.
printf '%s\n' $explained_tests | sed '/^$/d' >"$WORK/explained"
only_plain=$(comm -23 "$WORK/plain.failing" "$WORK/rollguard.failing")
only_rg=$(comm -13 "$WORK/plain.failing" "$WORK/rollguard.failing" | grep -vxF -f "$WORK/explained" || true)
if [ -n "$only_plain$only_rg" ]; then
	problem "the sets of failing tests differ: only without rollguard: ${only_plain:-none}; only with: ${only_rg:-none}"
fi
# Internal errors (XX000) the suite provokes on purpose must be the same.
xx_plain=$(grep -c ' XX000 ' "$WORK/plain/server.log" || true)
xx_rg=$(grep -c ' XX000 ' "$WORK/rollguard/server.log" || true)
echo "   internal errors (XX000) in the server logs: $xx_plain without, $xx_rg with rollguard"
[ "$xx_plain" = "$xx_rg" ] || problem "the server logs differ in the number of internal errors"
if [ -s "$WORK/plain.failing" ] && [ "${RG_KEEP:-0}" != 1 ]; then
	echo "   (the tests failing in both runs fail without rollguard too: RG_KEEP=1 keeps $WORK/plain/out/regression.diffs)"
fi

echo
echo "pg_regress suite: $ntests tests, $(wc -l <"$WORK/rollguard.failing") failing with rollguard," \
	"$(wc -l <"$WORK/plain.failing") without; $failures problems; $((t1 - t0)) s"
[ "$failures" = 0 ]
