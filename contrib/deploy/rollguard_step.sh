#!/bin/sh
# rollguard_step.sh STEP -- one rollguard deploy step, for deploy scripts.
#
#     DEPLOYMENT=mirror-2 VERSION=42 contrib/deploy/rollguard_step.sh deploy
#
# STEP is one of
#   deploy   the deployment now runs VERSION          rollguard.deploy()
#   begin    VERSION starts beside what it runs       rollguard.begin_rollout()
#   finish   only VERSION remains                     rollguard.finish_rollout()
#   abort    VERSION is gone again                    rollguard.abort_rollout()
#   register VERSION is registered, no step recorded  rollguard.register_version()
#            (before the migration runs: a refusal then knows what this
#            release no longer uses; with ROLLGUARD_VIA=psql and no
#            MANIFEST, nothing: the contract is inferred at deploy)
#
# deploy and begin register VERSION with its manifest first, in the same
# transaction.  A refusal (a rollback past a contract migration, another
# build under a known label, ...) records nothing: the server's message goes
# to stderr and the exit status is 1.  On success, one line says what the
# deployment runs now.
#
# Environment:
#   DEPLOYMENT     the running copy: web, mirror-2, eu-blue, ...      (required)
#   VERSION        the build's label: 42, 2.3.1, 2026.11.20-3, ...    (required)
#   ROLLGUARD_VIA  django (default): "$MANAGE rollguard_deploy", the manifest
#                  from the models (or from MANIFEST); the database is the
#                  one Django's settings name.
#                  rails: "$RAILS rollguard:deploy" (rollguard:register,
#                  rollguard:rollout:begin, ...) of contrib/rails, the
#                  manifest from MANIFEST (or from the models); the database
#                  is the app's.  VERSION goes to it as ROLLGUARD_VERSION and
#                  is removed from its environment (it is db:migrate's target
#                  version: with Rails, run migrations with
#                  MIGRATE_CMD='env -u VERSION bin/rails db:migrate').
#                  psql: psql "$DATABASE_URL", the manifest from MANIFEST --
#                  without one, rollguard infers the contract from the schema.
#   MANIFEST       a manifest file (from "manage.py rollguard_manifest" at build
#                  time, or written by hand)
#   DATABASE_URL   psql: the database, as a libpq URI or connection string
#   MANAGE         django: how to run manage.py (default: python3 manage.py)
#   RAILS          rails: how to run the app's tasks (default: bin/rails)
#   ROLLGUARD_KEY  this deployment's key, if it has one: presented with
#                  rollguard.use_key() before the step (the first time, it
#                  binds the deployment to the key; see doc/safety.md,
#                  "One role for every deployment")
#
# The role it connects as needs rollguard's deploy functions:
#   GRANT rollguard_deploy TO deployer;
set -eu

usage() {
	echo "usage: DEPLOYMENT=NAME VERSION=LABEL $0 deploy|begin|finish|abort|register" >&2
	exit 2
}
[ $# = 1 ] || usage
step=$1
case $step in
deploy) fn=deploy ;;
begin) fn=begin_rollout ;;
finish) fn=finish_rollout ;;
abort) fn=abort_rollout ;;
register) fn=register_version ;;
*) usage ;;
esac
: "${DEPLOYMENT:?DEPLOYMENT must name the deployment}"
: "${VERSION:?VERSION must name the build}"
MANIFEST=${MANIFEST:-}

case ${ROLLGUARD_VIA:-django} in
django)
	if [ "$step" = register ]; then
		set -- --version "$VERSION" --register-only
	else
		set -- --deployment "$DEPLOYMENT" --version "$VERSION"
		[ "$step" = deploy ] || set -- "$@" --rollout "$step"
	fi
	[ -z "$MANIFEST" ] || set -- "$@" --manifest "$MANIFEST"
	# shellcheck disable=SC2086 # MANAGE is a command line
	exec ${MANAGE:-python3 manage.py} rollguard_deploy "$@"
	;;
rails)
	case $step in
	deploy | register) task=rollguard:$step ;;
	*) task=rollguard:rollout:$step ;;
	esac
	set -- "$task" "ROLLGUARD_VERSION=$VERSION"
	[ "$step" = register ] || set -- "$@" "DEPLOYMENT=$DEPLOYMENT"
	[ -z "$MANIFEST" ] || set -- "$@" "MANIFEST=$MANIFEST"
	# shellcheck disable=SC2086 # RAILS is a command line
	exec env -u VERSION ${RAILS:-bin/rails} "$@"
	;;
psql)
	: "${DATABASE_URL:?DATABASE_URL must name the database}"
	register=off
	case $step in deploy | begin | register) [ -z "$MANIFEST" ] || register=on ;; esac
	if [ "$step" = register ] && [ "$register" = off ]; then
		echo "rollguard: no MANIFEST: version \"$VERSION\" is registered at deploy, its contract inferred"
		exit 0
	fi
	if [ "$register" = on ] && [ ! -r "$MANIFEST" ]; then
		echo "$0: cannot read manifest $MANIFEST" >&2
		exit 1
	fi
	# Values travel as psql variables (:'name' quotes them), never spliced
	# into SQL; the manifest is read by psql itself (any size).
	usekey=off
	[ -z "${ROLLGUARD_KEY:-}" ] || usekey=on
	exec psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 \
		-v deployment="$DEPLOYMENT" -v version="$VERSION" -v fn="$fn" \
		-v register="$register" -v manifest_file="$MANIFEST" -v usekey="$usekey" \
		-v step_only_register="$([ "$step" = register ] && echo on || echo off)" <<'SQL'
\o /dev/null
BEGIN;
\if :usekey
\set key `printf '%s' "$ROLLGUARD_KEY"`
SELECT rollguard.use_key(:'deployment', :'key');
\endif
\if :register
\set manifest `cat :'manifest_file'`
SELECT rollguard.register_version(:'version', :'manifest');
\endif
\if :step_only_register
\else
SELECT rollguard.:fn(:'deployment', :'version');
\endif
COMMIT;
\o
SELECT format('rollguard: deployment "%s" runs %s', :'deployment',
              coalesce(string_agg(format('"%s" (%s)', version, state), ', '
                                  ORDER BY state = 'rolling out', since), 'nothing'))
  FROM rollguard.deployments WHERE deployment = :'deployment';
SQL
	;;
*)
	echo "$0: ROLLGUARD_VIA must be django, rails or psql" >&2
	exit 2
	;;
esac
