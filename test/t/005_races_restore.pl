# Races and restores that once went wrong: a deploy step at REPEATABLE READ
# waiting for a migration, two migrations judged on a catalog that changed
# while they waited, and pg_restore of a constraint that was let through by
# an override.  Each scenario is checked to happen the way the old bug needed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('bugs');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
));
$node->start;

# Sends SQL to a background session and returns at once (the last statement
# may block); its output is collected by the next query on that session.
sub send_blocking
{
	my ($session, $sql) = @_;
	$session->query_until(qr/sent/, "\\echo sent\n$sql\n");
}

sub wait_for_lock_wait
{
	my ($node, $db, $like) = @_;
	$node->poll_query_until($db, qq{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND query LIKE '$like'})
	  or die "no session waits on a lock running $like";
}

# Live versions whose contract uses a column that no longer exists.
my $broken = q{
SELECT count(*) FROM rollguard.deployment_state d
  JOIN rollguard.effective_contract c ON c.version = d.version
 WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = to_regclass(format('%I.%I', c.nspname, c.relname))
                      AND a.attname = c.attname AND a.attnum > 0 AND NOT a.attisdropped)};

#
# 1. deploy() in a REPEATABLE READ (or SERIALIZABLE) transaction -- or with
# default_transaction_isolation set so -- used to wait for a DROP COLUMN in
# flight, then run its forward check in the snapshot it took before
# waiting: it did not see the column gone and put version 41 live on a
# dropped column.  Deploy steps now refuse anything but READ COMMITTED
# before they take the counters' lock (the one a checked migration's lock
# conflicts with), so the step is refused at once, without waiting.
# (READ COMMITTED, what psql -c gives by default, waits and then sees the
# column gone: specs/race_drop_column_deploy.spec.)
#
$node->safe_psql('postgres', q{
CREATE DATABASE rr;
});
$node->safe_psql('rr', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '42');
});
my $migration = $node->background_psql('rr', on_error_stop => 0);
my $deploy = $node->background_psql('rr', on_error_stop => 0);
$migration->query_safe('BEGIN');
$migration->query_safe('ALTER TABLE person DROP COLUMN weight');
$deploy->{stderr} = '';
$deploy->query(q{BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT rollguard.deploy('mirror-2', '41');});
my $deploy_err = $deploy->{stderr};
$deploy->query('ROLLBACK');
$migration->query_safe('COMMIT');
$migration->quit;
$deploy->quit;
is($node->safe_psql('rr', q{SELECT count(*) FROM pg_attribute
   WHERE attrelid = 'person'::regclass AND attname = 'weight' AND NOT attisdropped}),
	'0', 'repeatable read: the migration committed');
# Its snapshot could predate the migration, so the step refuses to decide.
like($deploy_err, qr/ERROR:  deploy steps must run at isolation level READ COMMITTED/,
	'repeatable read: the deploy step is refused, without waiting for the migration');
is($node->safe_psql('rr', $broken), '0',
	'repeatable read: no live version uses a dropped column');

#
# 2. A dump that holds a NOT VALID CHECK (c IS NOT NULL) added under an
# override (or with rollguard.enforce = warn/off) while a live version may
# write NULL to c: pg_dump emits the constraint after the registry's rows, so
# the guard refuses it during a plain restore, as it would refuse the same
# DDL from anyone.  The documented way: restore with rollguard.enforce = off.
#
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, email text);
SELECT rollguard.register_version('1', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {}, "email": {}}}}');
SELECT rollguard.deploy('web', '1');
BEGIN;
SELECT rollguard.override('person', 'email', 'old rows only; version 1 always sends an email');
ALTER TABLE person ADD CONSTRAINT email_given CHECK (email IS NOT NULL) NOT VALID;
COMMIT;
});
my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
my ($out, $err) = run_command([ 'pg_restore', '-d', $node->connstr('dst'), $dump ]);
like($err, qr/cannot add a CHECK constraint that rejects NULL in column "email" to table "public.person"/,
	'a plain pg_restore meets the guard at the overridden constraint');
$node->safe_psql('postgres', 'CREATE DATABASE dst2');
{
	local $ENV{PGOPTIONS} = '-c rollguard.enforce=off';
	($out, $err) = run_command([ 'pg_restore', '-d', $node->connstr('dst2'), $dump ]);
}
is($err, '', 'pg_restore with rollguard.enforce = off restores everything');
is($node->safe_psql('dst2', q{SELECT count(*) FROM pg_constraint WHERE conname = 'email_given'}),
	'1', 'the restored database has the constraint');
is($node->safe_psql('dst2', q{SELECT string_agg(deployment || '=' || version, ', ') FROM rollguard.deployments}),
	'web=1', 'the registry itself was restored');

#
# 3. Two migrations, each harmless alone, together break version 1, which
# inserts into t without writing flag: DROP DEFAULT of the nullable flag, and
# SET NOT NULL of flag while it still has its default.  The guard analyzes a
# statement before the statement locks its table, so SET NOT NULL, waiting
# behind the DROP DEFAULT, is judged on the default that is gone by the time
# it runs.  In either serial order one of the two is refused.
#
$node->safe_psql('postgres', 'CREATE DATABASE mig');
$node->safe_psql('mig', q{
CREATE EXTENSION rollguard;
CREATE TABLE t (id serial PRIMARY KEY, name text, flag boolean DEFAULT false);
SELECT rollguard.register_version('1', '{"relations": {"public.t": {
         "id": {"writes": false}, "name": {}}}}');
SELECT rollguard.deploy('web', '1');
});
my $m1 = $node->background_psql('mig', on_error_stop => 0);
my $m2 = $node->background_psql('mig', on_error_stop => 0);
$m1->query_safe('BEGIN');
$m1->query_safe('ALTER TABLE t ALTER COLUMN flag DROP DEFAULT');
send_blocking($m2, "BEGIN;\nALTER TABLE t ALTER COLUMN flag SET NOT NULL;");
wait_for_lock_wait($node, 'mig', 'ALTER TABLE t ALTER COLUMN flag SET NOT NULL%');
pass('SET NOT NULL waits for the DROP DEFAULT in flight');
$m1->query_safe('COMMIT');
$m2->query('COMMIT');
$m1->quit;
$m2->quit;
# the guard locks the table before it judges, so SET NOT NULL is judged on
# the catalog without the default, and refused
is($node->safe_psql('mig', q{SELECT attnotnull AND NOT atthasdef FROM pg_attribute
   WHERE attrelid = 't'::regclass AND attname = 'flag'}),
	'f', 'flag is not left NOT NULL without a default while version 1 inserts without it');

$node->stop;
done_testing();
