# Fail closed: with the extension created, a server started without rollguard
# in shared_preload_libraries refuses every schema change in that database
# with the preload error (the event trigger rollguard_require_preload), so
# that nobody is left unguarded without knowing.  rollguard.is_active() says
# so; DROP EXTENSION rollguard, rollguard.enforce = off and ALTER EVENT
# TRIGGER ... DISABLE are the ways out (superuser only).  Restored, the
# preload makes everything as before, and the trigger costs nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
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
SELECT rollguard.deploy('original', '41');
CREATE ROLE app LOGIN;
ALTER TABLE person OWNER TO app;
GRANT CREATE ON SCHEMA public TO app;
CREATE DATABASE other;
});

is($node->safe_psql('postgres', 'SELECT rollguard.is_active()'), 't',
	'preloaded: the guard is active');
like(error_of($node, 'postgres', 'ALTER TABLE person DROP COLUMN weight'),
	qr/cannot drop column "weight" of table "public.person": 1 deployment still uses it/,
	'preloaded: a breaking change is refused by the guard');
$node->safe_psql('postgres', 'CREATE TABLE harmless (id int); DROP TABLE harmless');
pass('preloaded: other schema changes go through (the trigger does nothing)');

# The preload removed, and the server restarted.
set_preload($node, '');
is($node->safe_psql('postgres', 'SELECT rollguard.is_active()'), 'f',
	'not preloaded: rollguard.is_active() says the guard is not active');

my $preload_error = qr/ERROR:  rollguard must be loaded via "shared_preload_libraries"/;
for my $ddl ('ALTER TABLE person DROP COLUMN weight',
	'CREATE TABLE harmless (id int)',
	'ALTER TABLE person ADD COLUMN height integer',
	'CREATE INDEX ON person (name)',
	'DO $$ BEGIN EXECUTE $x$ALTER TABLE person RENAME TO people$x$; END $$')
{
	my $err = error_of($node, 'postgres', $ddl);
	like($err, $preload_error, "not preloaded: refused: $ddl");
	like($err, qr/HINT:  Add rollguard to "shared_preload_libraries" in postgresql.conf and restart the server./,
		"... with the hint");
}
like(error_of($node, 'postgres', 'ALTER TABLE person DROP COLUMN weight', 'app'),
	$preload_error, 'not preloaded: refused for the application role too');
like(error_of($node, 'postgres', 'SET rollguard.enforce = off; ALTER TABLE person DROP COLUMN weight', 'app'),
	qr/permission denied to set parameter "rollguard.enforce"/,
	'... which cannot switch the guard off');
like(error_of($node, 'postgres', 'ALTER EVENT TRIGGER rollguard_require_preload DISABLE', 'app'),
	qr/must be owner of event trigger rollguard_require_preload/,
	'... nor disable the trigger');
is($node->safe_psql('postgres', q{SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
	WHERE attrelid = 'person'::regclass AND attnum > 0 AND NOT attisdropped}),
	'id, name, weight', 'nothing was changed');
like(error_of($node, 'postgres', q{SELECT rollguard.deploy('original', '42')}),
	$preload_error, 'deploy steps refuse as well');

# A database without the extension is not concerned.
$node->safe_psql('other', 'CREATE TABLE t (id int); ALTER TABLE t ADD COLUMN x int; DROP TABLE t');
pass('a database without the extension: schema changes go through');

# Emergency exits, for a superuser: the guard switched off for a session ...
$node->safe_psql('postgres', 'SET rollguard.enforce = off; CREATE TABLE emergency (id int)');
pass('rollguard.enforce = off (superuser): the schema change goes through');
# ... or the trigger disabled (event triggers do not fire for this).
$node->safe_psql('postgres', q{
ALTER EVENT TRIGGER rollguard_require_preload DISABLE;
DROP TABLE emergency;
ALTER EVENT TRIGGER rollguard_require_preload ENABLE;
});
pass('ALTER EVENT TRIGGER ... DISABLE (superuser): schema changes go through');
like(error_of($node, 'postgres', 'CREATE TABLE harmless (id int)'), $preload_error,
	'enabled again: refused again');

# pg_dump works without the preload (it changes no schema), and DROP
# EXTENSION is let through: the way to stop using rollguard.
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $node->basedir . '/dump.sql' ],
	'pg_dump runs without the preload');

# The preload restored: as before.
set_preload($node, 'rollguard');
is($node->safe_psql('postgres', 'SELECT rollguard.is_active()'), 't',
	'preload restored: the guard is active again');
like(error_of($node, 'postgres', 'ALTER TABLE person DROP COLUMN weight'),
	qr/cannot drop column "weight" of table "public.person": 1 deployment still uses it/,
	'preload restored: the guard judges again');
$node->safe_psql('postgres', 'CREATE TABLE harmless (id int); DROP TABLE harmless');
pass('preload restored: other schema changes go through');

# And once more without it: DROP EXTENSION goes through, and then nothing
# is refused any more.
set_preload($node, '');
$node->safe_psql('postgres', 'DROP EXTENSION rollguard');
pass('not preloaded: DROP EXTENSION rollguard goes through');
$node->safe_psql('postgres', 'ALTER TABLE person DROP COLUMN weight');
pass('without the extension, schema changes go through');

$node->stop;
done_testing();

# Restarts the server with shared_preload_libraries set to $libs.
sub set_preload
{
	my ($node, $libs) = @_;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = '$libs'\n");
	$node->restart;
}

# The psql error output of statements expected to fail (as $role, if given).
sub error_of
{
	my ($node, $db, $sql, $role) = @_;
	my $connstr = $node->connstr($db) . (defined $role ? " user=$role" : '');
	my ($ret, $out, $err) = $node->psql($db, $sql, connstr => $connstr,
		extra_params => [ '-v', 'VERBOSITY=default' ]);
	return $ret == 0 ? "(no error: it succeeded)" : $err;
}
