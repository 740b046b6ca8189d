# Shared by test/run-tests.sh and test/demo.sh: installs what is missing,
# builds and installs rollguard, and runs things as the postgres OS user
# (PostgreSQL refuses to run as root).
#
# Source it; do not run it.

RG_PG_MAJOR=${RG_PG_MAJOR:-15}
RG_PACKAGES="make gcc pkg-config postgresql-$RG_PG_MAJOR postgresql-server-dev-$RG_PG_MAJOR
             postgresql-contrib libicu-dev libkrb5-dev libipc-run-perl python3 python3-django
             python3-psycopg2 python3-alembic"

rg_log() { printf '\n==> %s\n' "$*"; }

# The machine's own Debian archive, as its apt sources name it (deb822
# .sources or one-line .list files): rg_apt_uri "" for the archive,
# rg_apt_uri -security for the security archive.  Empty if there is none.
rg_apt_uri() {
	{
		grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
			sed 's/^URIs:[[:space:]]*//' | tr ' ' '\n'
		grep -hE '^deb(-src)?[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -E 's/^deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{print $1}'
	} | sed 's#/*$##' | grep -E "/debian$1\$" | head -1
}

rg_need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "run this as root: it installs packages and switches to the postgres user" >&2
		exit 1
	fi
}

# apt-get only what is missing, so that a second run is fast and offline.
rg_install_deps() {
	missing=""
	for p in $RG_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
			|| missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		rg_log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
	RG_BINDIR=$(pg_config --bindir)
	export RG_BINDIR
	export PATH="$RG_BINDIR:$PATH"
}

# Warning-free or nothing: CI builds with -Werror.
rg_build_install() {
	rg_log "building rollguard (-Wall -Wextra -Werror) and installing it"
	make -s clean >/dev/null
	make -s COPT="-Werror" >/dev/null
	make -s install >/dev/null
}

# A copy of the source tree that the postgres user may write into.
rg_workdir() {
	RG_WORK=$(mktemp -d /tmp/rollguard-test.XXXXXX)
	tar --exclude=.git --exclude=./test/cache -cf - . | tar -C "$RG_WORK" -xf -
	chown -R postgres:postgres "$RG_WORK"
	export RG_WORK
}

rg_as_postgres() {
	su postgres -s /bin/sh -c "$*"
}

# A throwaway cluster in DIR, on a Unix socket in DIR, preloading rollguard.
rg_start_cluster() {
	dir=$1
	rg_as_postgres "$RG_BINDIR/initdb -D '$dir/data' -A trust -U postgres >'$dir/initdb.log' 2>&1"
	cat >>"$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'rollguard'
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
lc_messages = 'C'
fsync = off
CONF
	rg_as_postgres "$RG_BINDIR/pg_ctl -D '$dir/data' -l '$dir/server.log' -w start >/dev/null"
	export PGHOST="$dir" PGPORT=5432 PGUSER=postgres
}

rg_stop_cluster() {
	rg_as_postgres "$RG_BINDIR/pg_ctl -D '$1/data' -m fast -w stop >/dev/null" || true
}

# The npm packages of a real-client test, pinned by DIR/package-lock.json:
# Debian's nodejs and npm if node is missing, node MIN_MAJOR or later
# (WHAT needs it), then npm ci into DIR/node_modules -- skipped when that
# already matches the lock file and node, so a second run is offline.
#     rg_npm_ci NAME DIR MIN_MAJOR WHAT
# Prints "not ok - NAME: ..." and returns 1 when it cannot.
rg_npm_ci() {
	name=$1 npm_dir=$2 min_major=$3 what=$4
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "# installing nodejs npm"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null 2>&1 ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; } ||
			true
	fi
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "not ok - $name: node and npm missing, and Debian's nodejs npm could not be installed"
		return 1
	fi
	if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt "$min_major" ]; then
		echo "not ok - $name: $what needs node $min_major or later, this is $(node --version)"
		return 1
	fi
	stamp="$npm_dir/node_modules/.rollguard-installed"
	want="$(sha256sum "$npm_dir/package-lock.json" | cut -d' ' -f1) node $(node --version)"
	if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
		echo "# npm ci in $npm_dir (npm $(npm --version), node $(node --version))"
		if ! (cd "$npm_dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
			echo "not ok - $name: npm ci failed"
			return 1
		fi
		printf '%s\n' "$want" >"$stamp"
	fi
}
