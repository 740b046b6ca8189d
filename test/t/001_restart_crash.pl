# The registry and the guard's decisions survive a clean restart, and a crash
# (immediate stop) followed by crash recovery: committed deploy steps are
# replayed from WAL, a deploy step in flight at the crash is gone, and a
# migration in flight at the crash left nothing behind.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
));
$node->start;

# The mirror scenario: 41 uses person.weight, 42 no longer does; 40 used
# person.nickname, which a migration has dropped since.
$node->safe_psql('postgres', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL,
                     weight integer, nickname text);
SELECT rollguard.register_version('40', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {}, "weight": {}, "nickname": {}}}}');
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
ALTER TABLE person DROP COLUMN nickname;
});

# Every row of every registry table, in a stable order.
sub registry
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
SELECT tbl || ': ' || r FROM (
  SELECT 'version_registry' AS tbl, t::text AS r FROM rollguard.version_registry t
  UNION ALL SELECT 'contract', t::text FROM rollguard.contract t
  UNION ALL SELECT 'deployment_state', t::text FROM rollguard.deployment_state t
  UNION ALL SELECT 'declaration', t::text FROM rollguard.declaration t
  UNION ALL SELECT 'removed_column', t::text FROM rollguard.removed_column t
  UNION ALL SELECT 'history', t::text FROM rollguard.history t) s
ORDER BY tbl COLLATE "C", r COLLATE "C"});
}

# The psql error output of a statement expected to fail.
sub error_of
{
	my ($node, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $ret == 0 ? "(no error: it succeeded)" : $err;
}

my $drop_refused_by_both = qr/ERROR:  cannot drop column "weight" of table "public.person": 2 deployments still use it
DETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight.
Deployment "mirror-3" runs version "41", which uses public.person.weight./;
my $rollback_refused = qr/ERROR:  cannot deploy version "40" to deployment "mirror-2": its code uses 1 column that no longer exists
DETAIL:  Column public.person.nickname no longer exists \(drop column\)./;

like(error_of($node, 'ALTER TABLE person DROP COLUMN weight'),
	$drop_refused_by_both, 'before restart: DROP COLUMN refused, naming both mirrors');
like(error_of($node, q{SELECT rollguard.deploy('mirror-2', '40')}),
	$rollback_refused, 'before restart: deploy of a version past a contract migration refused');

# (a) a clean restart
my $before = registry($node);
$node->restart;
is(registry($node), $before, 'restart: every registry row is unchanged');
like(error_of($node, 'ALTER TABLE person DROP COLUMN weight'),
	$drop_refused_by_both, 'restart: DROP COLUMN still refused, naming both mirrors');
like(error_of($node, q{SELECT rollguard.deploy('mirror-2', '40')}),
	$rollback_refused, 'restart: the dropped column is still remembered by the forward check');
$node->safe_psql('postgres',
	'ALTER TABLE person ADD COLUMN scratch integer; ALTER TABLE person DROP COLUMN scratch');
pass('restart: a change no live version cares about still goes through');

# (b) a crash.  After a checkpoint, so that recovery must replay them: a
# committed deploy step (mirror-2 moves to 42) and a committed declaration;
# in flight at the crash: a deploy step (mirror-3 to 42) and, in another
# session, a migration that dropped a column nobody uses (holding SHARE on
# the registry, which the deploy step waits for).
$node->safe_psql('postgres', 'CHECKPOINT');
$node->safe_psql('postgres', q{
SELECT rollguard.deploy('mirror-2', '42');
SELECT rollguard.deploy('cron', '2026.1');
SELECT rollguard.stop_using('person', 'weight', '2026.2');
});
my $committed = registry($node);

my $migration = $node->background_psql('postgres');
$migration->query_safe('BEGIN');
$migration->query_safe('ALTER TABLE person ADD COLUMN temp_col integer');
my $deploy = $node->background_psql('postgres');
$deploy->query_safe('BEGIN');
$deploy->query_safe(q{SELECT rollguard.deploy('mirror-3', '42')});
# the migration's checked statement now waits for the deploy step in flight
$migration->query_until(qr/sent/, "\\echo sent\nALTER TABLE person DROP COLUMN weight;\n");
$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE person DROP COLUMN weight%'})
  or die 'the migration never waited for the deploy step';

my $log_offset = -s $node->logfile;
$node->stop('immediate');
eval { $deploy->quit };
eval { $migration->quit };
$node->start;
ok($node->log_contains('database system was not properly shut down; automatic recovery in progress', $log_offset),
	'crash: the server went through crash recovery');

is(registry($node), $committed,
	'crash: committed registry changes replayed, the deploy step in flight gone');
is($node->safe_psql('postgres', q{
SELECT string_agg(deployment || '=' || version, ', ' ORDER BY deployment COLLATE "C")
  FROM rollguard.deployments}),
	'cron=2026.1, mirror-2=42, mirror-3=41, original=42',
	'crash: mirror-2 runs 42 (committed), mirror-3 still 41 (its step was in flight)');
is($node->safe_psql('postgres', q{
SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = 'person'::regclass AND attnum > 0 AND NOT attisdropped}),
	'id, name, weight', 'crash: the migration in flight left nothing behind');
like(error_of($node, 'ALTER TABLE person DROP COLUMN weight'),
	qr/ERROR:  cannot drop column "weight" of table "public.person": 2 deployments still use it
DETAIL:  Deployment "cron" runs version "2026.1", which uses public.person.weight.
Deployment "mirror-3" runs version "41", which uses public.person.weight./,
	'crash: DROP COLUMN refused by what is live after recovery (the inferred contract of cron, mirror-3)');
like(error_of($node, q{SELECT rollguard.deploy('mirror-2', '40')}),
	$rollback_refused, 'crash: the forward check still refuses a rollback past the migration');

# after recovery, deploy steps and migrations work as before
$node->safe_psql('postgres', q{
SELECT rollguard.deploy('mirror-3', '42');
SELECT rollguard.deploy('cron', '2026.2');
});
$node->safe_psql('postgres', 'ALTER TABLE person DROP COLUMN weight');
pass('crash: once every deployment moved past it, the DROP COLUMN goes through');

$node->stop;
done_testing();
