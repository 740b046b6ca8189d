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
# The order -- migrate under the old version, then record the new one:
# 1. Migrate (MIGRATE_CMD).  While it runs, this mirror's old containers
#    still serve, and so do the other mirrors: rollguard checks the
#    migration against every version they run, this mirror's old one
#    included, and refuses one that would break any of them.  Then the
#    script stops: nothing is recorded, the mirror keeps its old version.
# 2. Register VERSION with its manifest and record that the mirror runs it,
#    in one transaction (rollguard_step.sh deploy: manage.py rollguard_deploy,
#    or psql).  rollguard refuses a build whose code uses columns that no
#    longer exist -- a rollback past a contract migration -- before it serves.
#
# Removing a field therefore takes two releases (README, "The procedure";
# doc/django.md):
#   release N    the code stops using the field; its migration removes the
#                field from Django's state only (rollguard_django.operations.
#                StopUsingField instead of RemoveField), so migrate changes
#                nothing that older code needs, and makemigrations --check
#                stays green.  Released to every mirror.
#   release N+1  its migration drops the column (DropColumn); every mirror
#                runs N by then, and N does not use it.
# A release whose migration drops what its own code just stopped using is
# refused on every mirror: each one still runs the old code while it migrates.
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
#   ROLLGUARD_KEY  this mirror's own secret, when every mirror connects as one
#                  database role: see rollguard_step.sh
#
# The migration runs with ROLLGUARD_OBSERVE=off in its environment:
# rollguard_django.tags.tag_databases() then turns observed usage off for its
# connection, so what a data migration reads is not counted as a use by the
# new version.
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

# The new version is registered first (nothing runs it yet): a migration
# that drops what this very release stops using is then refused with a hint
# that says so, instead of one that asks for the rollout it blocks.
say "releasing version $VERSION to $DEPLOYMENT: register it"
if ! sh "$here/rollguard_step.sh" register; then
	say "rollguard refused to register version $VERSION: nothing migrated" >&2
	exit 1
fi
say "releasing version $VERSION to $DEPLOYMENT: migrate"
if ! ROLLGUARD_OBSERVE=off sh -c "$MIGRATE_CMD"; then
	say "the migration failed; nothing recorded: $DEPLOYMENT keeps running its old version" >&2
	exit 1
fi

say "recording that $DEPLOYMENT runs version $VERSION"
if ! sh "$here/rollguard_step.sh" deploy; then
	say "rollguard refused version $VERSION for $DEPLOYMENT: do not switch to this build" >&2
	exit 1
fi
