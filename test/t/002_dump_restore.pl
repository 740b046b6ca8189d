# The registry survives pg_dump and pg_restore into a new database: its
# tables are marked with pg_extension_config_dump, so their rows travel with
# the dump.  After the restore the same drop is refused naming the same
# deployments, the forward check still remembers removed columns, and the
# history is the same, row for row, and goes on from where it was.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
));
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');

# Everything the registry holds: declared versions, an inferred one with a
# stop_using declaration, a removed column, a rollout under way, a removed
# deployment, and an override (recorded in the history).
$node->safe_psql('app', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL,
                     weight integer, nickname text, score integer);
CREATE TABLE "Site Settings" (key text PRIMARY KEY, value text);
SELECT rollguard.register_version('40', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {}, "weight": {}, "nickname": {}}}}');
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "weight": {},
         "score": {}}, "public.Site Settings": {"key": {}, "value": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
SELECT rollguard.deploy('mirror-4', '41');
SELECT rollguard.remove_deployment('mirror-4');
SELECT rollguard.begin_rollout('original', '43');
SELECT rollguard.stop_using('person', 'nickname', '43');
ALTER TABLE person DROP COLUMN nickname;
});
$node->safe_psql('app', q{
BEGIN;
SELECT rollguard.override('person', 'score', 'score is recomputed nightly; 41 only reads it');
ALTER TABLE person ALTER COLUMN score TYPE numeric;
COMMIT;
});

# Every row of every registry table, in a stable order.
sub registry
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, q{
SELECT tbl || ': ' || r FROM (
  SELECT 'version_registry' AS tbl, t::text AS r FROM rollguard.version_registry t
  UNION ALL SELECT 'contract', t::text FROM rollguard.contract t
  UNION ALL SELECT 'deployment_state', t::text FROM rollguard.deployment_state t
  UNION ALL SELECT 'declaration', t::text FROM rollguard.declaration t
  UNION ALL SELECT 'removed_column', t::text FROM rollguard.removed_column t
  UNION ALL SELECT 'history', t::text FROM rollguard.history t) s
ORDER BY tbl COLLATE "C", r COLLATE "C"});
}

sub error_of
{
	my ($node, $db, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, $sql);
	return $ret == 0 ? "(no error: it succeeded)" : $err;
}

# (43, being rolled out in original, has an inferred contract: every column
# that existed when it went live)
my $drop_refused = qr/ERROR:  cannot drop column "weight" of table "public.person": 3 deployments still use it
DETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight.
Deployment "mirror-3" runs version "41", which uses public.person.weight.
Deployment "original" is rolling out version "43", which uses public.person.weight./;
my $table_drop_refused = qr/ERROR:  cannot drop table "public.Site Settings": 3 deployments still use it
DETAIL:  Deployment "mirror-2" runs version "41", which uses public.Site Settings \(key, value\).
Deployment "mirror-3" runs version "41", which uses public.Site Settings \(key, value\).
Deployment "original" is rolling out version "43", which uses public.Site Settings \(key, value\)./;
my $rollback_refused = qr/ERROR:  cannot deploy version "40" to deployment "mirror-2": its code uses 1 column that no longer exists
DETAIL:  Column public.person.nickname no longer exists \(drop column\)./;

like(error_of($node, 'app', 'ALTER TABLE person DROP COLUMN weight'),
	$drop_refused, 'source: DROP COLUMN refused, naming every blocker');
like(error_of($node, 'app', 'DROP TABLE "Site Settings"'),
	$table_drop_refused, 'source: DROP TABLE refused');
like(error_of($node, 'app', q{SELECT rollguard.deploy('mirror-2', '40')}),
	$rollback_refused, 'source: forward check refuses a rollback past the migration');
my $source = registry($node, 'app');
like($source, qr/history: .*,"override applied",/, 'source: the override is in the history');

my $dump = $node->basedir . '/app.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $dump ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into a new database, without errors');

is(registry($node, 'restored'), $source,
	'restored: every registry row, history included, is as in the source');
# the counters of live use are not dumped: the triggers recounted them as
# the registry's tables were loaded, in whatever order pg_restore chose
is($node->safe_psql('restored', q{
SELECT string_agg(version || ':' || deployments, ' ' ORDER BY version COLLATE "C")
  FROM rollguard.live_version}),
	'41:2 42:1 43:1', 'restored: the live versions are counted');
is($node->safe_psql('restored', 'SELECT count(*) FROM rollguard._live_drift()'),
	'0', 'restored: the counters of live use agree with a recount from scratch');
is($node->safe_psql('restored', 'SELECT count(*) > 0 FROM rollguard.live_column'),
	't', 'restored: there are counters of live use');

# a data-only restore with --disable-triggers leaves them to _rebuild_live()
$node->safe_psql('postgres', 'CREATE DATABASE data_only');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '--schema-only',
	  '-d', $node->connstr('data_only'), $dump ],
	'data-only restore: the schema (and the extension) first');
$node->command_ok(
	[ 'pg_restore', '--exit-on-error', '--data-only', '--disable-triggers',
	  '-d', $node->connstr('data_only'), $dump ],
	'data-only restore of everything, the registry included, with --disable-triggers');
isnt($node->safe_psql('data_only', 'SELECT count(*) FROM rollguard._live_drift()'),
	'0', 'data-only restore with --disable-triggers: the counters are not kept');
$node->safe_psql('data_only', 'SELECT rollguard._rebuild_live()');
is($node->safe_psql('data_only', 'SELECT count(*) FROM rollguard._live_drift()'),
	'0', 'after rollguard._rebuild_live(): the counters agree with a recount');

is($node->safe_psql('restored', q{
SELECT string_agg(format('%s=%s (%s)', deployment, version, state), ', '
                  ORDER BY deployment COLLATE "C", version COLLATE "C")
  FROM rollguard.deployments}),
	'mirror-2=41 (running), mirror-3=41 (running), original=42 (running), original=43 (rolling out)',
	'restored: the same deployments, the rollout still under way');
like(error_of($node, 'restored', 'ALTER TABLE person DROP COLUMN weight'),
	$drop_refused, 'restored: DROP COLUMN still refused, naming the same deployments');
like(error_of($node, 'restored', 'DROP TABLE "Site Settings"'),
	$table_drop_refused, 'restored: DROP TABLE still refused');
like(error_of($node, 'restored', q{SELECT rollguard.deploy('mirror-2', '40')}),
	$rollback_refused, 'restored: the forward check still remembers the dropped column');
is($node->safe_psql('restored', q{
SELECT count(*) FROM rollguard.effective_contract WHERE version = '43' AND attname = 'nickname'}),
	'0', 'restored: the stop_using declaration still amends the inferred contract');

# the history goes on from where it was: no id reused
my $last_id = $node->safe_psql('app', 'SELECT max(id) FROM rollguard.history');
$node->safe_psql('restored', q{SELECT rollguard.finish_rollout('original', '43')});
is($node->safe_psql('restored', q{
SELECT id || ' ' || action || ' ' || deployment || ' ' || version
  FROM rollguard.history ORDER BY id DESC LIMIT 1}),
	($last_id + 1) . ' finish_rollout original 43',
	'restored: the next history row follows the restored ones');

# the guard lets through what no live version needs, in the restored database
$node->safe_psql('restored', q{
SELECT rollguard.deploy('mirror-2', '42');
SELECT rollguard.deploy('mirror-3', '42');
});
like(error_of($node, 'restored', 'ALTER TABLE person DROP COLUMN weight'),
	qr/ERROR:  cannot drop column "weight" of table "public.person": 1 deployment still uses it
DETAIL:  Deployment "original" runs version "43", which uses public.person.weight./,
	'restored: after the mirrors moved on, only the inferred contract of 43 blocks the drop');

$node->stop;
done_testing();
