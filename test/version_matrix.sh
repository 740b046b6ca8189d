#!/bin/sh
# rollguard on other PostgreSQL major versions, from a fresh Debian bookworm
# machine, as root:
#     test/version_matrix.sh              # 17, 18 and 19
#     test/version_matrix.sh 18 19        # just these (15 and 16 work too)
#
# For each major version NN:
#  1. fetches Debian's source package postgresql-NN with apt, through a
#     private apt configuration under $RG_MATRIX_DIR/apt (the machine's own
#     sources are left alone): deb-src trixie for 17, sid for 18,
#     experimental for 19; if a suite lacks the major, the next one is tried
#     (trixie, sid, experimental; bookworm first for 15);
#  2. builds the server from the upstream tarball in it (assertions on, ICU,
#     no readline, no zlib), only what the tests need: the backend, initdb,
#     pg_ctl, psql, PL/pgSQL, pg_regress and PGXS, into
#     $RG_PG_PREFIX/NN (default /opt/rollguard-pg/NN).  A version whose
#     prefix already has bin/pg_config is not fetched or built again;
#  3. builds rollguard against it with -Wall -Wextra -Werror, in a copy of
#     the tree, and installs it into that prefix (never into the system's
#     PostgreSQL);
#  4. runs the pg_regress suites (make installcheck) as the postgres user in
#     a copy it may write to; the Makefile's --temp-instance has pg_regress
#     start its own server from that prefix, on a port of its own.  Then the
#     suites in test/pgMM/{sql,expected} for every MM <= NN: statements that
#     only MM and later accept (test/pg18: ADD CONSTRAINT ... NOT NULL).
# Installs what it needs from Debian (bison, flex, libicu-dev, ...) with the
# machine's own apt sources.
#
# Time, on 2 cores shared with other work: 5 to 9 minutes per server built
# (nice -n 10, make -j2), then about 10 seconds per version for rollguard and
# its suites; a second run (servers cached) takes well under a minute.
# Disk: about 500 MB per server while it builds (removed afterwards), 30 MB
# per prefix, 70 MB of apt lists in $RG_MATRIX_DIR (default
# /var/tmp/rollguard-matrix).  Logs: $RG_MATRIX_DIR/NN/*.log; after a
# failure the suite's regression.diffs is kept there.
#
# Prints one line per version (built / tests passed / failed / skipped / does
# not build) and ends with "N passed, N failed, N skipped".  Exits non-zero
# if a version failed; a pre-release server (beta, rc) that does not build is
# reported but is not a failure.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh
RG_SRC=$(pwd)
RG_MATRIX_DIR=${RG_MATRIX_DIR:-/var/tmp/rollguard-matrix}
RG_PG_PREFIX=${RG_PG_PREFIX:-/opt/rollguard-pg}
WERROR="-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror"
BUILD_DEPS="make gcc libc6-dev perl bison flex pkg-config libicu-dev bzip2 xz-utils ca-certificates"
NICE="nice -n 10"

if [ "$(id -u)" != 0 ]; then
	echo "run this as root: it installs packages and switches to the postgres user" >&2
	exit 1
fi

versions=${*:-17 18 19}

log() { printf '==> %s\n' "$*" >&2; }

# Debian suites to look in for postgresql-NN, in order.
suites_for() {
	case $1 in
		17) echo "trixie sid experimental" ;;
		18) echo "sid experimental" ;;
		19) echo "experimental" ;;
		*) echo "bookworm trixie sid experimental" ;;
	esac
}

# apt-get or apt-cache, with sources, lists and cache of its own for one
# suite: private_apt SUITE apt-get ARGS...
private_apt() {
	suite=$1
	tool=$2
	shift 2
	d=$RG_MATRIX_DIR/apt/$suite
	"$tool" -q -o Dir::Etc::SourceList="$d/sources.list" \
		-o Dir::Etc::SourceParts="$d/sources.list.d" \
		-o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
		-o APT::Sandbox::User=root "$@"
}

private_apt_update() {
	suite=$1
	d=$RG_MATRIX_DIR/apt/$suite
	[ -e "$d/updated" ] && [ -n "$(find "$d/updated" -mmin -360)" ] && return 0
	mkdir -p "$d/sources.list.d" "$d/lists/partial" "$d/cache/archives/partial"
	archive=$(rg_apt_uri "")
	if [ -z "$archive" ]; then
		echo "the machine's apt sources name no Debian archive" >&2
		return 1
	fi
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive $suite main" \
		>"$d/sources.list"
	private_apt "$suite" apt-get update >"$d/update.log" 2>&1 || {
		tail -3 "$d/update.log" >&2
		return 1
	}
	touch "$d/updated"
}

# apt-get only what is missing, with the machine's own sources.
install_build_deps() {
	missing=""
	for p in $BUILD_DEPS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
	id postgres >/dev/null 2>&1 ||
		useradd --system --user-group --home-dir /var/lib/postgresql \
			--shell /bin/sh postgres
}

elapsed() {
	s=$(($(date +%s) - $1))
	printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# The first error in a log, on one line.
first_error() {
	{ grep -E 'error:|Error [0-9]|^configure: error' "$1" || tail -1 "$1"; } |
		head -1 | cut -c1-200
}

# Fetches the source of postgresql-$v and unpacks its upstream tarball:
# sets $srcdir, or $skip_reason.  Tries every version a suite lists, newest
# first, then the next suite.
fetch_source() {
	v=$1
	dl=$RG_MATRIX_DIR/$v/download
	flog=$RG_MATRIX_DIR/$v/fetch.log
	: >"$flog"
	tried=""
	for suite in $(suites_for "$v"); do
		private_apt_update "$suite" || continue
		for pkgver in $(private_apt "$suite" apt-cache showsrc "postgresql-$v" 2>/dev/null |
			sed -n "/^Package: postgresql-$v\$/,/^\$/s/^Version: //p" | sort -r -V); do
			log "PostgreSQL $v: fetching source package $pkgver from $suite"
			tried="$tried $pkgver ($suite)"
			rm -rf "$dl"
			mkdir -p "$dl/src"
			if (cd "$dl" && private_apt "$suite" apt-get source --download-only \
				"postgresql-$v=$pkgver") >>"$flog" 2>&1; then
				for tarball in "$dl"/postgresql-"$v"_*.orig.tar.*; do :; done
				if tar -C "$dl/src" -xf "$tarball" >>"$flog" 2>&1; then
					for srcdir in "$dl"/src/postgresql-*; do :; done
					return 0
				fi
			fi
		done
	done
	if [ -z "$tried" ]; then
		skip_reason="no source package postgresql-$v in $(suites_for "$v" | sed 's/ /, /g')"
	else
		skip_reason="could not download postgresql-$v (tried$tried): $(grep -E '^E: ' "$flog" |
			head -1 | sed -e 's/^E: //' -e 's/ *\[IP:.*//')"
	fi
	return 1
}

# What the tests need, built and installed into the prefix.
SERVER_DIRS="src/common src/port src/timezone src/backend
	src/backend/utils/mb/conversion_procs src/backend/snowball src/include
	src/interfaces/libpq src/fe_utils src/bin/initdb src/bin/pg_ctl
	src/bin/psql src/bin/pg_config src/pl/plpgsql src/makefiles
	src/test/regress config"

build_server() {
	v=$1
	prefix=$2
	blog=$RG_MATRIX_DIR/$v/server.log
	rm -rf "$prefix"
	(
		cd "$srcdir" || exit 1
		$NICE ./configure --prefix="$prefix" --enable-cassert --with-icu \
			--without-readline --without-zlib || exit 1
		for dir in $SERVER_DIRS; do
			echo "--- $dir"
			$NICE make -s -j2 -C "$dir" || exit 1
			$NICE make -s -C "$dir" install || exit 1
		done
		make -s -C src install-local
	) >"$blog" 2>&1
}

# Builds rollguard against the prefix and runs its suites: sets $result.
test_rollguard() {
	v=$1
	prefix=$2
	pgc=$prefix/bin/pg_config
	work=$RG_MATRIX_DIR/$v/rollguard
	rlog=$RG_MATRIX_DIR/$v/rollguard.log
	tlog=$RG_MATRIX_DIR/$v/installcheck.log
	rm -rf "$work" "$RG_MATRIX_DIR/$v/regression.diffs"
	mkdir -p "$work"
	(cd "$RG_SRC" && tar --exclude=.git --exclude='*.o' --exclude='*.so' \
		--exclude=results --exclude=tmp_check --exclude=log -cf - .) |
		tar -C "$work" -xf -
	if ! (cd "$work" && make -s clean PG_CONFIG="$pgc" &&
		$NICE make -s PG_CONFIG="$pgc" PG_CPPFLAGS="$WERROR" &&
		make -s install PG_CONFIG="$pgc") >"$rlog" 2>&1; then
		result="rollguard does not build: $(first_error "$rlog") (log: $rlog)"
		return 1
	fi
	chown -R postgres:postgres "$work"
	if su postgres -s /bin/sh -c "cd '$work' && $NICE make installcheck RG_TEMP_INSTANCE=1 PG_CONFIG='$pgc'" \
		>"$tlog" 2>&1; then
		n="$(grep -Eo '[0-9]+ tests passed' "$tlog" | head -1 | cut -d' ' -f1) suites"
		# suites for statements that only NN and later accept: test/pgNN/
		for dir in "$work"/test/pg[0-9]*; do
			if [ ! -d "$dir/sql" ] || [ "$v" -lt "${dir##*/pg}" ]; then
				continue
			fi
			suites=""
			for f in "$dir"/sql/*.sql; do
				f=${f##*/}
				suites="${suites:+$suites }${f%.sql}"
			done
			rel=${dir#"$work"/}
			if ! su postgres -s /bin/sh -c "cd '$work' && $NICE make installcheck PG_CONFIG='$pgc' \
				REGRESS='$suites' REGRESS_OPTS='--temp-instance=./tmp_check \
				--temp-config=./test/rollguard.conf --inputdir=$rel --outputdir=$rel'" \
				>>"$tlog" 2>&1; then
				cp "$dir/regression.diffs" "$RG_MATRIX_DIR/$v/" 2>/dev/null || true
				result="rollguard built, tests failed: $rel ($suites); diffs: $RG_MATRIX_DIR/$v/regression.diffs"
				return 1
			fi
			n="$n, $(grep -Eo '[0-9]+ tests passed' "$tlog" | tail -1 | cut -d' ' -f1) in $rel"
		done
		result="rollguard built, tests passed: $n"
		return 0
	fi
	cp "$work/regression.diffs" "$RG_MATRIX_DIR/$v/" 2>/dev/null || true
	# "test NAME ... FAILED" (pg_regress up to 16), "not ok N - NAME" (17 on)
	failing=$(sed -n -E 's/^test +([a-z_0-9]+) +\.\.\. FAILED.*/\1/p
		s/^not ok +[0-9]+ +[-+] +([a-z_0-9]+).*/\1/p' "$tlog" | tr '\n' ' ')
	summary=$(grep -Eo '[0-9]+ of [0-9]+ tests failed' "$tlog" | head -1)
	result="rollguard built, tests failed: ${summary:-see $tlog}${failing:+ (${failing% })}; diffs: $RG_MATRIX_DIR/$v/regression.diffs"
	return 1
}

install_build_deps
mkdir -p "$RG_MATRIX_DIR"
# one run at a time: they share the prefixes and the work directories
exec 9>"$RG_MATRIX_DIR/lock"
flock 9
passed=0
failed=0
skipped=0
lines=""
for v in $versions; do
	mkdir -p "$RG_MATRIX_DIR/$v"
	prefix=$RG_PG_PREFIX/$v
	start=$(date +%s)
	skip_reason=""
	status=""
	if [ -x "$prefix/bin/pg_config" ]; then
		built="server cached"
	else
		if ! fetch_source "$v"; then
			status="skipped: $skip_reason"
		else
			log "PostgreSQL $v: building the server from $(basename "$srcdir") into $prefix (log: $RG_MATRIX_DIR/$v/server.log)"
			if build_server "$v" "$prefix"; then
				built="server built in $(elapsed "$start")"
				rm -rf "$RG_MATRIX_DIR/$v/download"
			else
				status="does not build: server: $(first_error "$RG_MATRIX_DIR/$v/server.log") (log: $RG_MATRIX_DIR/$v/server.log)"
				rm -rf "$prefix"
				case $srcdir in
					*beta* | *rc* | *devel*) skipped=$((skipped + 1)) ;;
					*) failed=$((failed + 1)) ;;
				esac
			fi
		fi
	fi
	if [ -z "$status" ]; then
		full=$("$prefix/bin/pg_config" --version)
		log "PostgreSQL $v: $full, $built; testing rollguard (log: $RG_MATRIX_DIR/$v/)"
		start=$(date +%s)
		if test_rollguard "$v" "$prefix"; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
		status="$full: $built, $result, in $(elapsed "$start")"
	else
		case $status in skipped:*) skipped=$((skipped + 1)) ;; esac
		status="PostgreSQL $v: $status"
	fi
	log "$status"
	lines="$lines$status
"
done

echo
printf '%s' "$lines"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
