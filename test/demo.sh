#!/bin/sh
# The demo, from a fresh Debian bookworm machine, as root:
#     test/demo.sh
# Installs PostgreSQL 15, the build dependencies and Debian's Django if
# missing, builds and installs rollguard, starts a throwaway cluster (as the
# postgres user, on a Unix socket in a temporary directory), and plays the
# mirror scenario with a generated Django project: an original and two
# mirrors released with contrib/deploy/divio_mirror.sh (manage.py migrate,
# then manage.py rollguard_deploy), a field removed in two releases, a mirror
# deleted without notice that blocks the drop, said by the refusal not to
# have been seen, found in rollguard.deployments and removed, after which
# rollguard.contractible lists the column -- printing what the team and the
# DBA see.
# Everything is removed at the end.
set -eu
cd "$(dirname "$0")/.."
. test/lib.sh

rg_need_root
rg_install_deps
rg_build_install
repo=$(pwd)
dir=$(mktemp -d /tmp/rollguard-demo.XXXXXX)
chown postgres "$dir"
containers=""
cleanup() {
	for pid in $containers; do kill "$pid" 2>/dev/null || true; done
	rg_stop_cluster "$dir"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
rg_log "starting a throwaway cluster with shared_preload_libraries = 'rollguard'"
rg_start_cluster "$dir" >/dev/null

PY=/usr/bin/python3
export PYTHONPATH="$repo/contrib/django" PYTHONDONTWRITEBYTECODE=1
export DATABASE_URL="postgresql:///shop?host=$dir&port=5432&user=shop"
export MANAGE="$PY manage.py"
app=$dir/app

say() {
	echo
	for line in "$@"; do printf '### %s\n' "$line"; done
}

# A Django traceback ends with the server's message; the frames before it
# say nothing a DBA needs.
untrace() {
	awk '
	t == "" && /Traceback \(most recent call last\):$/ {
		# "Applying shop.0002...Traceback": keep what comes before it
		sub(/Traceback \(most recent call last\):$/, "")
		if ($0 != "") line[n++] = $0
		t = n
		line[n++] = ""
		next
	}
	{ line[n++] = $0 }
	/^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*\.[A-Z][A-Za-z0-9_]*: / && t != "" { e = n - 1 }
	END {
		if (t == "" || e == "") { for (i = 0; i < n; i++) print line[i]; exit }
		for (i = 0; i < t; i++) print line[i]
		print "    (Django'"'"'s traceback cut; the server'"'"'s message:)"
		for (i = e; i < n; i++) print line[i]
	}'
}

# run DIR COMMAND...: shows the command as the release pipeline runs it.
run() {
	wd=$1
	shift
	printf '\n%s$ %s\n' "${wd#"$app"/}" "$*"
	status=0
	(cd "$wd" && "$@") >"$dir/out" 2>&1 || status=$?
	untrace <"$dir/out"
	[ "$status" = 0 ] || printf '(exit status %s)\n' "$status"
}

# release DIR DEPLOYMENT SITE VERSION: the mirror's release command.
release() {
	printf '\n%s$ DEPLOYMENT=%s SITE_ID=%s VERSION=%s contrib/deploy/divio_mirror.sh\n' \
		"${1#"$app"/}" "$2" "$3" "$4"
	status=0
	(cd "$1" && DEPLOYMENT=$2 SITE_ID=$3 VERSION=$4 sh "$repo/contrib/deploy/divio_mirror.sh") \
		>"$dir/out" 2>&1 || status=$?
	untrace <"$dir/out"
	[ "$status" = 0 ] || printf '(exit status %s)\n' "$status"
	return 0
}

# The DBA's psql: statements echoed, no footers, no PL/pgSQL CONTEXT lines.
dba() {
	printf '\\pset footer off\n\\set SHOW_CONTEXT never\n%s\n' "$1" >"$dir/dba.sql"
	chown postgres "$dir/dba.sql"
	echo
	rg_as_postgres "psql -h '$dir' -p 5432 -d shop -X -q -e -f '$dir/dba.sql' 2>&1" | sed 's/^psql:[^:]*:[0-9]*: //'
}

# A web container of DEPLOYMENT running the build in DIR: one tagged
# connection that stays open (tag_databases() in the settings).
start_container() {
	(cd "$1" && DEPLOYMENT=$2 SITE_ID=$3 VERSION=$4 exec $PY manage.py shell -c \
		"import time; from django.db import connection; connection.ensure_connection(); time.sleep(3600)") \
		>/dev/null 2>&1 &
	eval "container_$3=$!"
	containers="$containers $!"
	# until the session shows
	n=0
	while [ $n -lt 100 ] && [ -z "$(rg_as_postgres "psql -h '$dir' -d shop -XAtc \"SELECT 1 FROM rollguard.sessions WHERE deployment = '$2' AND version = '$4'\"")" ]; do
		sleep 0.1
		n=$((n + 1))
	done
}
stop_container() {
	eval "pid=\$container_$1"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	sleep 0.3
}

# ---------------------------------------------------------------------------
say "The DBA installs rollguard once. Divio gives the mirrors one DATABASE_URL, so the" \
    "application's role \"shop\" runs migrations, records deploy steps (rollguard_deploy)" \
    "and tags its connections (rollguard_tag)."
rg_as_postgres "psql -h '$dir' -XqAtc 'CREATE ROLE shop LOGIN' -c 'CREATE DATABASE shop OWNER shop'"
dba "CREATE EXTENSION rollguard;
GRANT rollguard_deploy, rollguard_tag TO shop;"

# ---------------------------------------------------------------------------
mkdir -p "$app/v41/shop/migrations"
cat >"$app/v41/manage.py" <<'EOF'
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
EOF
cat >"$app/v41/settings.py" <<'EOF'
import os
from urllib.parse import parse_qs, urlsplit

SECRET_KEY = "demo"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rollguard_django", "shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
_url = urlsplit(os.environ["DATABASE_URL"])
_q = {k: v[-1] for k, v in parse_qs(_url.query).items()}
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _url.path.lstrip("/"),
                         "USER": _q.get("user", ""), "HOST": _q.get("host", ""), "PORT": _q.get("port", "")}}

# Tag every connection with the mirror and the build: $DEPLOYMENT (or
# mirror-$SITE_ID) and $VERSION.
from rollguard_django.tags import tag_databases
tag_databases(DATABASES)
EOF
: >"$app/v41/shop/__init__.py"
: >"$app/v41/shop/migrations/__init__.py"
cat >"$app/v41/shop/models.py" <<'EOF'
from django.db import models


class Person(models.Model):
    name = models.CharField(max_length=100)
    weight = models.FloatField()
EOF
say "Version 41 of the application (settings.py ends with rollguard_django.tags.tag_databases):"
run "$app/v41" cat shop/models.py
run "$app/v41" $PY manage.py makemigrations shop

say "Each mirror's release command is contrib/deploy/divio_mirror.sh: manage.py migrate while the" \
    "mirror's old containers still serve, then manage.py rollguard_deploy records the new build." \
    "Each mirror's web containers are tagged connections (tag_databases in settings.py)."
release "$app/v41" original 1 41
start_container "$app/v41" original 1 41
release "$app/v41" mirror-2 2 41
start_container "$app/v41" mirror-2 2 41
release "$app/v41" mirror-3 3 41
start_container "$app/v41" mirror-3 3 41
dba "SELECT deployment, version, state, liveness FROM rollguard.deployments ORDER BY deployment;
SELECT deployment, version, source, registered FROM rollguard.sessions ORDER BY deployment;"
rg_as_postgres "psql -h '$dir' -d shop -XqAtc \"INSERT INTO shop_person (name, weight) VALUES ('Ada', 61.5), ('Grace', 70.2)\""

# ---------------------------------------------------------------------------
cp -a "$app/v41" "$app/v42"
sed -i '/weight = /d' "$app/v42/shop/models.py"
say "Version 42 no longer uses Person.weight. makemigrations writes a RemoveField:"
run "$app/v42" $PY manage.py makemigrations shop
run "$app/v42" $PY manage.py sqlmigrate shop 0002

say "Released as it is, the original's migrate is refused: every deployment still runs 41," \
    "the original's own old containers included. Nothing is recorded; 41 keeps serving."
release "$app/v42" original 1 42

say "The procedure: release 42 stops using the field; release 43 drops the column." \
    "In 0002, RemoveField becomes rollguard_django's StopUsingField: the field leaves Django's" \
    "state now, the column stays (its NOT NULL dropped, so that 42 can insert without it)," \
    "and makemigrations --check (the CI gate) stays green."
sed -i -e 's/^from django.db import migrations$/from django.db import migrations\nfrom rollguard_django.operations import StopUsingField/' \
	-e 's/migrations\.RemoveField(/StopUsingField(/' "$app/v42/shop/migrations/0002_remove_person_weight.py"
run "$app/v42" cat shop/migrations/0002_remove_person_weight.py
run "$app/v42" $PY manage.py makemigrations --check --dry-run
run "$app/v42" $PY manage.py sqlmigrate shop 0002

say "Release 42 to the original and mirror-2 (each container is replaced after its release)."
release "$app/v42" original 1 42
stop_container 1
start_container "$app/v42" original 1 42
release "$app/v42" mirror-2 2 42
stop_container 2
start_container "$app/v42" mirror-2 2 42
say "mirror-3 is deleted on the platform's dashboard but nobody tells rollguard: it stays recorded" \
    "on 41. Its evidence ends: no deploy step, and its last tagged session is gone." \
    "(On this demo's clock a day is three seconds: the DBA sets rollguard.stale_after, the time" \
    "without evidence after which refusals say a deployment has not been seen; default 1 day.)"
dba "ALTER SYSTEM SET rollguard.stale_after = '3s';
SELECT pg_reload_conf() \\gset"
stop_container 3
sleep 4

# ---------------------------------------------------------------------------
cp -a "$app/v42" "$app/v43"
say "Version 43 drops the column: an empty migration with rollguard_django's DropColumn."
run "$app/v43" $PY manage.py makemigrations shop --empty -n drop_person_weight
sed -i -e 's/^from django.db import migrations$/from django.db import migrations\nfrom rollguard_django.operations import DropColumn/' \
	-e 's/^    operations = \[$/    operations = [\n        DropColumn(model_name="person", column="weight"),/' \
	"$app/v43/shop/migrations/0003_drop_person_weight.py"
run "$app/v43" cat shop/migrations/0003_drop_person_weight.py
run "$app/v43" $PY manage.py makemigrations --check --dry-run
run "$app/v43" $PY manage.py sqlmigrate shop 0003

say "The original's release of 43 is refused: mirror-3 is still recorded on 41. The refusal says" \
    "it has not been seen, and how to remove it."
release "$app/v43" original 1 43

say "The DBA looks: rollguard.deployments shows each deployment's evidence. mirror-3 runs 41 by the" \
    "registry, but it is stale: no deploy step and no tagged session for longer than stale_after."
dba "SELECT deployment, version, last_deployed::time(0), last_connected::time(0), liveness
  FROM rollguard.deployments ORDER BY deployment;"
say "mirror-3 is gone for good: the DBA removes it (recorded in rollguard.history). (Or expiry does:" \
    "with rollguard.forget_after = '14 days', a deployment without evidence for that long no" \
    "longer counts, and its expiry is recorded in rollguard.history and the server log.)"
dba "SELECT rollguard.remove_deployment('mirror-3') \\gset
SELECT at::time(0), who, action, deployment, detail FROM rollguard.history WHERE action = 'remove_deployment';"
say "rollguard.contractible now lists the column the next release may drop: the original's release" \
    "of 43 drops it."
dba "SELECT change, relation, \"column\", unused_since, statement FROM rollguard.contractible;"

say "The original's release of 43 now goes through, then mirror-2's."
release "$app/v43" original 1 43
stop_container 1
start_container "$app/v43" original 1 43
release "$app/v43" mirror-2 2 43
stop_container 2
start_container "$app/v43" mirror-2 2 43

say "Rolling mirror-2 back to 41 would break it at once (its code reads weight): refused."
release "$app/v41" mirror-2 2 41

say "What the DBA sees at the end:"
dba "SELECT deployment, version, state, liveness FROM rollguard.deployments ORDER BY deployment;
SELECT deployment, version, source FROM rollguard.sessions ORDER BY deployment;
SELECT at::time(0), who, action, deployment, version FROM rollguard.history ORDER BY id;"
