#!/bin/sh
# divio_mirror.sh -- release one mirror of a Divio-style setup, guarded by rollguard.
#
# Divio "mirrors" are copies of one project: one codebase, one database
# (DATABASE_URL) shared by all of them, a SITE_ID each.  Run this as the
# release command of each mirror, in the new build's directory, before the
# platform switches the mirror's traffic to the new containers:
#
#     SITE_ID=2 VERSION=42 contrib/deploy/divio_mirror.sh
#
# 1. Migrate (MIGRATE_CMD).  While it runs, this mirror's old containers
#    still serve, and so do the other mirrors: rollguard refuses a migration
#    that would break any version they run.  Then the script stops: nothing
#    is recorded, and the mirror keeps running its old version.
# 2. Register VERSION with its manifest and record that the mirror runs it,
#    in one transaction (rollguard_step.sh deploy: manage.py rollguard_deploy,
#    or psql).  rollguard refuses a build whose code uses columns that no
#    longer exist -- a rollback past a contract migration -- before it serves.
#
# Expand/contract: a release that stops using a column cannot carry the
# migration that drops it, or every mirror's migrate is refused (each one
# still runs code that uses the column).  Release the code first, to every
# mirror; the drop comes in a later release.  With Django: remove the field
# from the model in release N, and commit the RemoveField migration that
# makemigrations writes in release N+1.
#
# Environment:
#   SITE_ID        this mirror's Django SITE_ID                       (required)
#   VERSION        the label of the build being released              (required)
#   DEPLOYMENT     rollguard's name for the mirror (default: mirror-$SITE_ID)
#   MIGRATE_CMD    the migration step, a shell command
#                  (default: $MANAGE migrate --noinput)
#   MANAGE         how to run manage.py (default: python3 manage.py)
#   DATABASE_URL   the shared database (Django's settings read it; psql uses it)
#   ROLLGUARD_VIA, MANIFEST   how to register: see rollguard_step.sh
#                  (default: manage.py rollguard_deploy, manifest from the models)
#
# Exit status: 0 when the mirror is recorded as running VERSION; 1 when the
# migration failed (or was refused) or rollguard refused the deploy step.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

: "${SITE_ID:?SITE_ID must name the mirror}"
: "${VERSION:?VERSION must name the build}"
DEPLOYMENT=${DEPLOYMENT:-mirror-$SITE_ID}
MANAGE=${MANAGE:-python3 manage.py}
MIGRATE_CMD=${MIGRATE_CMD:-$MANAGE migrate --noinput}
export SITE_ID VERSION DEPLOYMENT MANAGE

say() { printf 'divio_mirror.sh: %s\n' "$*"; }

say "releasing version $VERSION to $DEPLOYMENT: migrate"
if ! sh -c "$MIGRATE_CMD"; then
	say "the migration failed; nothing recorded: $DEPLOYMENT keeps running its old version" >&2
	exit 1
fi

say "recording that $DEPLOYMENT runs version $VERSION"
if ! sh "$here/rollguard_step.sh" deploy; then
	say "rollguard refused version $VERSION for $DEPLOYMENT: do not switch to this build" >&2
	exit 1
fi
