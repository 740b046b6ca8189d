# An extension upgrade keeps the registry and the guard's decisions:
# CREATE EXTENSION rollguard VERSION '1.0', register and deploy, then
# ALTER EXTENSION rollguard UPDATE TO '1.1'.  Nothing registered changes, the
# same changes are refused with the same words, and what 1.1 adds (the
# rollguard_deploy and rollguard_admin roles, rollguard.override()) is there.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
));
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION rollguard VERSION '1.0';
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL,
                     weight integer, nickname text, email text);
SELECT rollguard.register_version('40', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {}, "nickname": {}}}}');
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "weight": {},
         "email": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "email": {}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
ALTER TABLE person DROP COLUMN nickname;
SELECT rollguard.deploy('cron', '2026.1');
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'rollguard'}),
	'1.0', 'installed as 1.0');
is($node->safe_psql('postgres', q{SELECT to_regprocedure('rollguard.override(regclass, name, text)') IS NULL}),
	't', '1.0 has no override()');

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

sub error_of
{
	my ($node, $sql, %opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, %opts);
	return $ret == 0 ? "(no error: it succeeded)" : $err;
}

# Statements whose refusal must not change across the upgrade.
my @decisions = (
	'ALTER TABLE person DROP COLUMN weight',
	'ALTER TABLE person ALTER COLUMN email SET NOT NULL',
	'ALTER TABLE person RENAME TO people',
	q{SELECT rollguard.deploy('mirror-2', '40')},
	'SELECT * FROM rollguard.check($$ALTER TABLE person DROP COLUMN weight$$)',
);
my %before;
$before{$_} = error_of($node, $_) for @decisions;
like($before{ $decisions[0] },
	qr/ERROR:  cannot drop column "weight" of table "public.person": 3 deployments still use it
DETAIL:  Deployment "cron" runs version "2026.1", which uses public.person.weight.
Deployment "mirror-2" runs version "41", which uses public.person.weight.
Deployment "mirror-3" runs version "41", which uses public.person.weight./,
	'1.0: DROP COLUMN refused, naming every blocker');
like($before{ $decisions[3] }, qr/ERROR:  cannot deploy version "40" to deployment "mirror-2"/,
	'1.0: forward check refuses a rollback past the migration');
my $check_before = $node->safe_psql('postgres',
	'SELECT * FROM rollguard.check($$ALTER TABLE person DROP COLUMN weight$$) ORDER BY deployment');
my $registry_before = registry($node);

$node->safe_psql('postgres', q{ALTER EXTENSION rollguard UPDATE TO '1.1'});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'rollguard'}),
	'1.1', 'updated to 1.1');
is(registry($node), $registry_before, '1.1: every registry row is unchanged');
for my $sql (@decisions[0 .. 3])
{
	is(error_of($node, $sql), $before{$sql}, "1.1: same refusal, same words: $sql");
}
is($node->safe_psql('postgres',
	'SELECT * FROM rollguard.check($$ALTER TABLE person DROP COLUMN weight$$) ORDER BY deployment'),
	$check_before, '1.1: rollguard.check() lists the same blockers');

# what 1.1 adds
is($node->safe_psql('postgres', q{
SELECT string_agg(rolname || ' ' || rolcanlogin, ', ' ORDER BY rolname) FROM pg_roles
 WHERE rolname IN ('rollguard_deploy', 'rollguard_admin')}),
	'rollguard_admin false, rollguard_deploy false', '1.1: the two NOLOGIN roles exist');
$node->safe_psql('postgres', q{
CREATE ROLE deployer LOGIN IN ROLE rollguard_deploy;
CREATE ROLE migrator LOGIN;
CREATE ROLE dba LOGIN IN ROLE rollguard_admin, migrator;
CREATE ROLE app LOGIN;
ALTER TABLE person OWNER TO migrator;
GRANT SELECT, INSERT, UPDATE, DELETE ON person TO app;
});
$node->safe_psql('postgres', q{SELECT rollguard.deploy('mirror-3', '42')},
	extra_params => [ '-U', 'deployer' ]);
pass('1.1: a member of rollguard_deploy records a deploy step');
like(error_of($node, q{SELECT rollguard.override('person', 'weight', 'because')},
		extra_params => [ '-U', 'app' ]),
	qr/ERROR:  permission denied for function override/,
	'1.1: the application role may not override');

# the override, as an administrator: the refused drop goes through in the
# transaction that asked for it, and both are in the history
my ($ret, $out, $err) = $node->psql('postgres', q{
BEGIN;
SELECT rollguard.override('person', 'weight', 'cron and mirror-2 read weight only behind a feature flag that is off');
ALTER TABLE person DROP COLUMN weight;
COMMIT;
}, extra_params => [ '-U', 'dba' ]);
is($ret, 0, '1.1: override() lets the refused DROP COLUMN through');
like($err, qr/NOTICE:  override lets drop column on public.person.weight through, although .*\nDETAIL:  Reason given: cron and mirror-2 read weight/,
	'1.1: with a notice that says what it let through');
is($node->safe_psql('postgres', q{
SELECT string_agg(action || ' ' || who || ' ' || relation || '.' || "column", ', ' ORDER BY id)
  FROM rollguard.history WHERE action LIKE 'override%'}),
	'override dba public.person.weight, override applied dba public.person.weight',
	'1.1: the override and what it let through are in the history, with who');
like(error_of($node, q{SELECT rollguard.deploy('mirror-3', '41')}),
	qr/ERROR:  cannot deploy version "41" to deployment "mirror-3": its code uses 1 column that no longer exists
DETAIL:  Column public.person.weight no longer exists \(drop column\)./,
	'1.1: the forward check knows the column dropped under the override');

$node->stop;
done_testing();
