# (e) A refused migration reaches the server log with its blockers: the
# ERROR line and the DETAIL lines that name each deployment, the HINT, and
# the statement; in rollguard.enforce = 'warn' the same as a WARNING.
# (f) An override belongs to the session and the transaction that asked for
# it: another session running the same DDL meanwhile is still refused, and
# so is the same session once the transaction is over.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('logs');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
));
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
CREATE ROLE migrator LOGIN;
ALTER TABLE person OWNER TO migrator;
});

sub error_of
{
	my ($node, $sql, %opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql, %opts);
	return $ret == 0 ? "(no error: it succeeded)" : $err;
}

my $refusal = qr/ERROR:  cannot drop column "weight" of table "public.person": 2 deployments still use it
DETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight.
Deployment "mirror-3" runs version "41", which uses public.person.weight./;

# (e) the server log.  log_line_prefix is '%m [%p] %q%a '; a DETAIL's second
# line is continued with a tab.
my $offset = -s $node->logfile;
like(error_of($node, 'ALTER TABLE person DROP COLUMN weight', extra_params => [ '-U', 'migrator' ]),
	$refusal, 'the migration (run by the table owner, not a superuser) is refused');
my $log = slurp_file($node->logfile, $offset);
like($log,
	qr/^\S+ \S+ \S+ \[(\d+)\] \S+ ERROR:  cannot drop column "weight" of table "public.person": 2 deployments still use it$/m,
	'log: the ERROR line');
my ($pid) = $log =~ /\[(\d+)\] \S+ ERROR:  cannot drop column "weight"/;
like($log,
	qr/^\S+ \S+ \S+ \[$pid\] \S+ DETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight.\n\tDeployment "mirror-3" runs version "41", which uses public.person.weight.$/m,
	'log: the DETAIL lines name every blocking deployment and version');
like($log,
	qr/^\S+ \S+ \S+ \[$pid\] \S+ HINT:  Version "42" and later no longer use it, but the deployments above still run older versions. Ship this migration in a release that comes after every deployment runs "42" or newer \(with Django: StopUsingField or StopUsingModel in one release, DropColumn or DropTable in the next; with other tools: "Removing a column or a table in two releases" in doc\/rules.md\); remove a deployment that no longer runs with rollguard.remove_deployment\(\). Run migrations in one transaction \(BEGIN ... COMMIT, psql --single-transaction, or the tool's own setting: see "Migrations outside a transaction" in doc\/other-tools.md\), and check them with rollguard.check\(\) before they run.$/m,
	'log: the HINT');
like($log, qr/^\S+ \S+ \S+ \[$pid\] \S+ STATEMENT:  ALTER TABLE person DROP COLUMN weight$/m,
	'log: the statement');

# a refused deploy step is logged the same way (40, registered while
# nickname existed, is rolled back past its drop)
$node->safe_psql('postgres', 'ALTER TABLE person ADD COLUMN nickname text');
$node->safe_psql('postgres', q{SELECT rollguard.register_version('40', '{"relations": {"public.person": {"nickname": {}}}}')});
$node->safe_psql('postgres', 'ALTER TABLE person DROP COLUMN nickname');
$offset = -s $node->logfile;
error_of($node, q{SELECT rollguard.deploy('mirror-2', '40')});
$log = slurp_file($node->logfile, $offset);
like($log, qr/ERROR:  cannot deploy version "40" to deployment "mirror-2": its code uses 1 column that no longer exists\n\S+ \S+ \S+ \[\d+\] \S+ DETAIL:  Column public.person.nickname no longer exists \(drop column\).$/m,
	'log: a refused deploy step, with the missing column');

# rollguard.enforce = warn: the change goes through, the WARNING is logged
# (an autocommit statement, judged at the statement; renamed back after)
$offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', q{
SET rollguard.enforce = warn;
ALTER TABLE person RENAME COLUMN weight TO weight_kg;
ALTER TABLE person RENAME COLUMN weight_kg TO weight;
});
like($err, qr/WARNING:  cannot rename column "weight" of table "public.person": 2 deployments still use it/,
	'warn: the client gets a WARNING and the statement runs');
$log = slurp_file($node->logfile, $offset);
like($log,
	qr/ WARNING:  cannot rename column "weight" of table "public.person": 2 deployments still use it\n\S+ \S+ \S+ \[\d+\] \S+ DETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight.\n\tDeployment "mirror-3" runs version "41", which uses public.person.weight./,
	'log: the WARNING and its DETAIL in warn mode');

like($log,
	qr/ WARNING:  cannot rename column "weight"[^\n]*\n[^\n]*DETAIL:  [^\n]*\n\t[^\n]*\n\tStatement: ALTER TABLE person RENAME COLUMN weight TO weight_kg;$/m,
	'log: the WARNING carries its statement');

# rollguard.enforce = off: nothing reaches the client, the server log has
# the change let through, with its statement, and so has rollguard.history
$offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', q{
SET rollguard.enforce = off;
ALTER TABLE person RENAME COLUMN weight TO weight_kg;
ALTER TABLE person RENAME COLUMN weight_kg TO weight;
});
is($err, '', 'off: the client hears nothing');
$log = slurp_file($node->logfile, $offset);
like($log,
	qr/ LOG:  rollguard.enforce = off lets rename column on public.person.weight through, although it breaks 2 deployments\n\S+ \S+ \S+ \[\d+\] \S+ DETAIL:  Statement: ALTER TABLE person RENAME COLUMN weight TO weight_kg;$/m,
	'log: off logs the change it lets through, with the statement');
is($node->safe_psql('postgres', q{SELECT action || ' ' || "column" || ' ' || (detail->'blockers')::text
  FROM rollguard.history WHERE action LIKE 'let through%' ORDER BY id DESC LIMIT 1}),
	'let through (enforce = off) weight [{"reason": "uses public.person.weight", "version": "41", "deployment": "mirror-2"}, {"reason": "uses public.person.weight", "version": "41", "deployment": "mirror-3"}]',
	'history: who broke which deployments, with enforce = off');

# (f) an override stays in the session and the transaction that asked for it
$node->safe_psql('postgres', 'CREATE ROLE dba LOGIN IN ROLE rollguard_admin; GRANT migrator TO dba');
my $admin = $node->background_psql('postgres', on_error_stop => 0,
	extra_params => [ '-U', 'dba' ]);

# Runs SQL in the background session: (stdout, stderr) of that query alone.
sub in_admin
{
	my ($sql) = @_;
	$admin->{stderr} = '';
	my ($o) = $admin->query($sql);
	return ($o, $admin->{stderr});
}

in_admin('BEGIN');
my ($o, $e) = in_admin(q{SELECT rollguard.override('person', 'weight', 'mirror-2 and mirror-3 are retired tonight')});
is($e, '', 'the administrator session gets an override for person.weight');

like(error_of($node, 'ALTER TABLE person DROP COLUMN weight'),
	$refusal, 'another session (a superuser) is still refused meanwhile');
like(error_of($node, 'ALTER TABLE person DROP COLUMN weight', extra_params => [ '-U', 'dba' ]),
	$refusal, 'another session of the same administrator is still refused meanwhile');
like(error_of($node, q{
BEGIN;
SELECT rollguard.override('person', 'name', 'another column');
ALTER TABLE person DROP COLUMN weight;
COMMIT;
}, extra_params => [ '-U', 'dba' ]),
	$refusal, 'an override for another column does not cover it');

($o, $e) = in_admin('ALTER TABLE person DROP COLUMN weight');
like($e, qr/NOTICE:  override lets drop column on public.person.weight through, although .*\nDETAIL:  Reason given: mirror-2 and mirror-3 are retired tonight/,
	'the session that holds the override drops the column');
in_admin('ROLLBACK');

($o, $e) = in_admin('ALTER TABLE person DROP COLUMN weight');
like($e, $refusal, 'the same session, after its transaction ended: refused again');

# granted and committed: gone with the transaction, in every session
in_admin(q{SELECT rollguard.override('person', 'weight', 'granted in a transaction of its own')});
($o, $e) = in_admin('ALTER TABLE person DROP COLUMN weight');
like($e, $refusal, 'an override granted in an autocommit statement covers nothing after it');
$admin->quit;
is($node->safe_psql('postgres', q{
SELECT string_agg(action || ' ' || who || ' ' || reason, ', ' ORDER BY id)
  FROM rollguard.history WHERE action LIKE 'override%'}),
	'override dba granted in a transaction of its own',
	'history: only the committed override is recorded, none applied');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_attribute WHERE attrelid = 'person'::regclass AND attname = 'weight' AND NOT attisdropped}),
	'1', 'the column is still there');

$node->stop;
done_testing();
