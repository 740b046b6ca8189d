#!/bin/sh
# Runs one Python test module of test/clients/ against a throwaway cluster:
#     sh test/clients/run.sh test_django [test_django.RemoveField ...]
# as root (PostgreSQL runs as the postgres OS user; the tests connect over
# its Unix socket as the database user postgres).  Uses Debian's python3
# (/usr/bin/python3, where python3-django and python3-psycopg2 live; set
# RG_PYTHON to use another), installing the packages a module needs if they
# are missing; it skips only when they cannot be installed.  Everything it makes lives in one temporary
# directory, removed at the end.  Exit status: that of the tests.
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
RG_PYTHON=${RG_PYTHON:-/usr/bin/python3}
export RG_PYTHON

module=$1
shift

# The Python modules the tests need, and the Debian packages that have them.
case $module in
test_django | test_deploy_scripts | test_procedure)
	imports="django, psycopg2"
	packages="python3 python3-django python3-psycopg2"
	;;
test_alembic)
	imports="alembic, sqlalchemy, psycopg2"
	packages="python3 python3-alembic python3-psycopg2"
	;;
*)
	echo "not ok - unknown test module $module" >&2
	exit 1
	;;
esac
if ! "$RG_PYTHON" -c "import $imports" 2>/dev/null; then
	echo "# installing $packages"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages >/dev/null; } ||
		true
	if ! "$RG_PYTHON" -c "import $imports" 2>/dev/null; then
		echo "ok - $module # SKIP $packages cannot be installed on this machine ($RG_PYTHON cannot import $imports)"
		exit 0
	fi
fi

# newer_debs SERIES WHAT: the packages test/clients/django_debs.sh SERIES
# unpacks from a newer Debian suite (cached under test/cache/), added to
# RG_EXTRA_PYTHONPATH (rgtest.py puts it on the tests' PYTHONPATH); their
# directory in $debs_dir.  Not fetched: "not ok", exit 1.
newer_debs() {
	debs_dir=$(sh test/clients/django_debs.sh "$1") || {
		echo "not ok - $2 cannot be fetched"
		exit 1
	}
	RG_EXTRA_PYTHONPATH=${RG_EXTRA_PYTHONPATH:+$RG_EXTRA_PYTHONPATH:}$debs_dir
	export RG_EXTRA_PYTHONPATH
}
# what MODULE says its version is, with the packages of $debs_dir
debs_version() {
	PYTHONPATH=$debs_dir "$RG_PYTHON" -c "import $1; print($1.__version__)"
}

# RG_DJANGO=4.2 or 5.2: that Django release first on PYTHONPATH.  Without
# it: bookworm's python3-django (3.2).
if [ -n "${RG_DJANGO:-}" ]; then
	newer_debs "$RG_DJANGO" "Django $RG_DJANGO"
	echo "# Django $(debs_version django) from $debs_dir"
fi
# RG_PSYCOPG=3: psycopg 3 as well, which Django 4.2 and later then use
# instead of psycopg2 (the tests' own queries keep psycopg2).
if [ "${RG_PSYCOPG:-}" = 3 ]; then
	newer_debs psycopg3 "psycopg 3"
	echo "# psycopg $(debs_version psycopg) from $debs_dir"
fi
# RG_SQLALCHEMY=2: SQLAlchemy 2 and the Alembic release built for it,
# instead of bookworm's 1.4 and 1.8 (Mako, which Alembic needs, stays
# bookworm's).
if [ "${RG_SQLALCHEMY:-}" = 2 ]; then
	newer_debs sqlalchemy2 "SQLAlchemy 2"
	echo "# SQLAlchemy $(debs_version sqlalchemy), Alembic $(debs_version alembic) from $debs_dir"
fi

dir=$(mktemp -d "/tmp/rollguard-$module.XXXXXX")
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
rg_start_cluster "$dir"
mkdir "$dir/tmp"
RG_TEST_TMP="$dir/tmp" PYTHONDONTWRITEBYTECODE=1 \
	"$RG_PYTHON" -B "test/clients/$module.py" "$@"
