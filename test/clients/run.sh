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

# RG_DJANGO=4.2 or 5.2: that Django release, unpacked from a newer Debian
# suite (test/clients/django_debs.sh, cached under test/cache/), first on
# PYTHONPATH.  Without it: bookworm's python3-django (3.2).
if [ -n "${RG_DJANGO:-}" ]; then
	RG_EXTRA_PYTHONPATH=$(sh test/clients/django_debs.sh "$RG_DJANGO") || {
		echo "not ok - Django $RG_DJANGO cannot be fetched"
		exit 1
	}
	export RG_EXTRA_PYTHONPATH
	echo "# Django $(PYTHONPATH=$RG_EXTRA_PYTHONPATH "$RG_PYTHON" -c 'import django; print(django.get_version())') from $RG_EXTRA_PYTHONPATH"
fi
# RG_PSYCOPG=3: psycopg 3 from a newer Debian suite as well, which Django
# 4.2 and later then use instead of psycopg2 (the tests' own queries keep
# psycopg2).
if [ "${RG_PSYCOPG:-}" = 3 ]; then
	psycopg_dir=$(sh test/clients/django_debs.sh psycopg3) || {
		echo "not ok - psycopg 3 cannot be fetched"
		exit 1
	}
	RG_EXTRA_PYTHONPATH=${RG_EXTRA_PYTHONPATH:+$RG_EXTRA_PYTHONPATH:}$psycopg_dir
	export RG_EXTRA_PYTHONPATH
	echo "# psycopg $(PYTHONPATH=$psycopg_dir "$RG_PYTHON" -c 'import psycopg; print(psycopg.__version__)') from $psycopg_dir"
fi

# RG_SQLALCHEMY=2: SQLAlchemy 2 and the Alembic release built for it, from a
# newer Debian suite as well, instead of bookworm's 1.4 and 1.8 (Mako,
# which Alembic needs, stays bookworm's).
if [ "${RG_SQLALCHEMY:-}" = 2 ]; then
	sqlalchemy_dir=$(sh test/clients/django_debs.sh sqlalchemy2) || {
		echo "not ok - SQLAlchemy 2 cannot be fetched"
		exit 1
	}
	RG_EXTRA_PYTHONPATH=${RG_EXTRA_PYTHONPATH:+$RG_EXTRA_PYTHONPATH:}$sqlalchemy_dir
	export RG_EXTRA_PYTHONPATH
	echo "# SQLAlchemy $(PYTHONPATH=$sqlalchemy_dir "$RG_PYTHON" -c 'import sqlalchemy; print(sqlalchemy.__version__)'), Alembic $(PYTHONPATH=$sqlalchemy_dir "$RG_PYTHON" -c 'import alembic; print(alembic.__version__)') from $sqlalchemy_dir"
fi

dir=$(mktemp -d "/tmp/rollguard-$module.XXXXXX")
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
rg_start_cluster "$dir"
mkdir "$dir/tmp"
RG_TEST_TMP="$dir/tmp" PYTHONDONTWRITEBYTECODE=1 \
	"$RG_PYTHON" -B "test/clients/$module.py" "$@"
