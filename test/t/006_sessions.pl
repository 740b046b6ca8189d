# Live tagged sessions, with several sessions at once: while an application
# session that says which deployment and version it runs is connected, that
# version is live for that deployment, registered or not.
# (a) untagged sessions change nothing;
# (b) tagged by connection options: a drop its version's contract uses is
#     refused, naming the session ("connected now, pid N"); once it
#     disconnects, or resets its tag, the drop is allowed;
# (c) tagged by SET, and by ALTER ROLE ... SET;
# (d) tagged by application_name 'rollguard:<deployment>@<version>' with a
#     version the registry does not know: it counts as using every column;
# (e) what the registry already says is not said twice; several sessions
#     of one tag are named once; another database's sessions do not count;
# (f) bad tag values refuse the connection, with an SQLSTATE;
# (g) a backend that ends (terminated, crashed, server restarted) leaves no
#     tag behind;
# (h) only sessions of roles granted rollguard_tag (and superusers) are
#     evidence: anyone else's tag -- any form, any version, known or not --
#     blocks nothing, and is listed as not trusted; GRANT and REVOKE take
#     effect at the next check, without reconnecting.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sessions');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
log_error_verbosity = verbose
restart_after_crash = on
));
$node->start;

# 41 uses person.weight, 42 no longer does; "original" runs 42.  "40" is
# registered without a manifest and never deployed: it has no contract yet.
$node->safe_psql('postgres', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer, nickname text);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {
         "id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.register_version('40');
SELECT rollguard.deploy('original', '42');
CREATE ROLE app LOGIN;
CREATE DATABASE other;
});
$node->safe_psql('other', 'CREATE EXTENSION rollguard');

# Runs DDL and undoes it: 'allowed', or the error.  (In a DO block outside
# a transaction block, each statement is judged as it comes, as an
# autocommit statement is; the block then rolls everything back.)
sub try_ddl
{
	my ($sql, $db) = @_;
	my ($ret, $out, $err) = $node->psql($db // 'postgres',
		"DO \$try\$ BEGIN EXECUTE \$ddl\$$sql\$ddl\$; RAISE EXCEPTION 'rolled back'; END \$try\$;");
	return $err =~ /ERROR:  rolled back/ ? 'allowed' : $err;
}

# A background session with these connection options / application_name;
# returns it and its pid.
sub session
{
	my (%opts) = @_;
	local $ENV{PGOPTIONS} = $opts{options} if defined $opts{options};
	local $ENV{PGAPPNAME} = $opts{appname} if defined $opts{appname};
	my $s = $node->background_psql($opts{db} // 'postgres', on_error_stop => 0,
		extra_params => $opts{user} ? [ '-U', $opts{user} ] : []);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	return ($s, $pid);
}

# Ends a background session and waits until its backend is gone.
sub disconnect
{
	my ($s, $pid) = @_;
	$s->quit;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
	  or die "backend $pid did not exit";
}

sub sessions_view
{
	return $node->safe_psql('postgres', q{
SELECT string_agg(format('%s@%s %s %s %s', deployment, version, pid, source, registered), ', '
                  ORDER BY deployment, version, source, pid)
  FROM rollguard.sessions});
}

my $drop_weight = 'ALTER TABLE person DROP COLUMN weight';
my $drop_nickname = 'ALTER TABLE person DROP COLUMN nickname';

# (a) Untagged sessions change nothing.
my ($plain, $plain_pid) = session();
is(sessions_view(), '', 'an untagged session is not listed');
is(try_ddl($drop_weight), 'allowed', 'untagged: the drop goes through (42 no longer uses weight)');
is($node->safe_psql('postgres', "SELECT count(*) FROM rollguard.check('$drop_weight')"),
	'0', 'untagged: the dry run finds no blocker');
disconnect($plain, $plain_pid);

# (b) Tagged by connection options: mirror-2 still runs 41, which no deploy
# script recorded.
my ($m2, $m2_pid) = session(options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
is(sessions_view(), "mirror-2\@41 $m2_pid setting t", 'the tagged session is listed');
like(try_ddl($drop_weight),
	qr/ERROR:  cannot drop column "weight" of table "public.person": 1 deployment still uses it
DETAIL:  Deployment "mirror-2" runs version "41" \(connected now, pid $m2_pid\), which uses public.person.weight.
The statement ran outside a transaction block: statements that ran before it in the same migration, if any, are committed and stay applied.
HINT:  Version "42" and later no longer use it, but the deployments above still run older versions. Ship this migration in a release that comes after every deployment runs "42" or newer \(with Django: StopUsingField or StopUsingModel in one release, DropColumn or DropTable in the next; with other tools: "Removing a column or a table in two releases" in doc\/rules.md\); remove a deployment that no longer runs with rollguard.remove_deployment\(\)./,
	'options tag: the drop is refused, naming the session');
like(try_ddl('ALTER TABLE person DROP COLUMN name'),
	qr/2 deployments still use it
DETAIL:  Deployment "mirror-2" runs version "41" \(connected now, pid $m2_pid\), which uses public.person.name.
Deployment "original" runs version "42", which uses public.person.name./,
	'options tag: named beside the registry\'s deployments, in order');
is($node->safe_psql('postgres', "SELECT deployment || ' ' || version || ': ' || reason FROM rollguard.check('$drop_weight')"),
	"mirror-2 41: uses public.person.weight (connected now, pid $m2_pid)",
	'options tag: the dry run names it too');
is(try_ddl($drop_nickname), 'allowed', 'options tag: a column 41 does not use may go');
disconnect($m2, $m2_pid);
is(sessions_view(), '', 'disconnected: no longer listed');
is(try_ddl($drop_weight), 'allowed', 'disconnected: the drop goes through');

# (c) Tagged by SET, untagged by RESET, in a session that stays connected.
my ($s, $s_pid) = session();
$s->query_safe(q{SET rollguard.deployment = 'mirror-2'});
is(try_ddl($drop_weight), 'allowed', 'SET: half a tag is no tag');
$s->query_safe(q{SET rollguard.version = '41'});
like(try_ddl($drop_weight), qr/Deployment "mirror-2" runs version "41" \(connected now, pid $s_pid\)/,
	'SET: tagged, the drop is refused');
$s->query_safe('RESET rollguard.version');
is(try_ddl($drop_weight), 'allowed', 'RESET: untagged, the drop goes through');
$s->query_safe(q{BEGIN; SET LOCAL rollguard.version = '41'});
like(try_ddl($drop_weight), qr/\(connected now, pid $s_pid\)/, 'SET LOCAL: tagged within the transaction');
$s->query_safe('COMMIT');
is(try_ddl($drop_weight), 'allowed', 'SET LOCAL: untagged after it');
disconnect($s, $s_pid);

# ALTER ROLE ... SET: every session of the role is tagged.  The role may
# provide evidence once it is granted rollguard_tag (see (h)).
$node->safe_psql('postgres', q{
ALTER ROLE app SET rollguard.deployment = 'mirror-4';
ALTER ROLE app SET rollguard.version = '41';
GRANT rollguard_tag TO app;
});
my ($app, $app_pid) = session(user => 'app');
is(sessions_view(), "mirror-4\@41 $app_pid setting t", 'ALTER ROLE SET: sessions of the role are tagged');
like(try_ddl($drop_weight), qr/Deployment "mirror-4" runs version "41" \(connected now, pid $app_pid\)/,
	'ALTER ROLE SET: the drop is refused');
disconnect($app, $app_pid);
$node->safe_psql('postgres', 'REVOKE rollguard_tag FROM app');
$node->safe_psql('postgres', 'ALTER ROLE app RESET ALL');

# (d) application_name, with a version the registry does not know.
my ($m3, $m3_pid) = session(appname => 'rollguard:mirror-3@43');
is(sessions_view(), "mirror-3\@43 $m3_pid application_name f", 'application_name: listed, not registered');
my $unknown = qr/Deployment "mirror-3" runs version "43" \(connected now, pid $m3_pid; not registered, so it counts as using every column\)/;
like(try_ddl($drop_nickname), qr/cannot drop column "nickname".*\nDETAIL:  $unknown, which uses public.person.nickname./,
	'application_name, unknown version: every column counts as used');
like(try_ddl('ALTER TABLE person ALTER COLUMN nickname SET NOT NULL'),
	qr/$unknown, which may write NULL to public.person.nickname./,
	'unknown version: SET NOT NULL is refused');
like(try_ddl('ALTER TABLE person ADD COLUMN flag boolean NOT NULL'),
	qr/$unknown, which may insert into public.person without writing flag./,
	'unknown version: ADD COLUMN NOT NULL without a default is refused');
like(try_ddl('CREATE TABLE audit (id int, note text); ALTER TABLE audit DROP COLUMN note'),
	qr/$unknown, which uses public.audit.note./,
	'unknown version: even a table created now counts as used');
like(try_ddl('DROP TABLE person'), qr/$unknown, which uses public.person./,
	'unknown version: DROP TABLE is refused');
is(try_ddl('ALTER TABLE person ADD COLUMN flag boolean NOT NULL DEFAULT false'), 'allowed',
	'unknown version: additive changes go through');
$m3->query_safe(q{SET application_name = 'psql'});
is(try_ddl($drop_nickname), 'allowed', 'application_name changed: no longer a tag');
$m3->query_safe(q{SET application_name = 'rollguard:mirror-3@40'});
like(try_ddl($drop_nickname),
	qr/Deployment "mirror-3" runs version "40" \(connected now, pid $m3_pid; not registered, so it counts as using every column\)/,
	'a version registered without a manifest and never deployed has no contract yet: counts as unknown');
disconnect($m3, $m3_pid);

# A session tagged by application_name counts from the moment it connects,
# before it runs any statement (the guard looks at other sessions'
# application_name only while some backend has the tag's prefix there,
# which each backend notes when it connects and at each statement).
{
	my $idle;
	{
		local $ENV{PGAPPNAME} = 'rollguard:mirror-9@43';
		$idle = $node->background_psql('postgres', on_error_stop => 0, wait => 0);
	}
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'rollguard:mirror-9@43'})
	  or die 'the idle session did not connect';
	like(try_ddl($drop_nickname), qr/Deployment "mirror-9" runs version "43" \(connected now, pid \d+; not registered/,
		'application_name: counted from connection, before any statement');
	$idle->quit;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'rollguard:mirror-9@43'});
}
is(try_ddl($drop_nickname), 'allowed', 'and no longer once it is gone');

# (e) The registry and the sessions agree: said once, as the registry says it.
($m2, $m2_pid) = session(options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
my ($m2b, $m2b_pid) = session(appname => 'rollguard:mirror-2@41');
my $lowest = $m2_pid < $m2b_pid ? $m2_pid : $m2b_pid;
like(try_ddl($drop_weight),
	qr/DETAIL:  Deployment "mirror-2" runs version "41" \(connected now, pid $lowest and 1 more session\), which uses public.person.weight.\nThe statement ran outside a transaction block: statements that ran before it in the same migration, if any, are committed and stay applied.\nHINT/,
	'two sessions of one tag: one line, naming the lowest pid');
$node->safe_psql('postgres', q{SELECT rollguard.deploy('mirror-2', '41')});
like(try_ddl($drop_weight),
	qr/DETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight.\nThe statement ran outside a transaction block: statements that ran before it in the same migration, if any, are committed and stay applied.\nHINT/,
	'registered and connected: the registry\'s line alone');
$node->safe_psql('postgres', q{SELECT rollguard.remove_deployment('mirror-2')});
disconnect($m2b, $m2b_pid);
like(try_ddl($drop_weight), qr/\(connected now, pid $m2_pid\)/,
	'removed from the registry, still connected: still live');
disconnect($m2, $m2_pid);

my ($elsewhere, $elsewhere_pid) =
  session(db => 'other', options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
is(sessions_view(), '', 'a session of another database is not listed');
is(try_ddl($drop_weight), 'allowed', 'a session of another database does not count');
$elsewhere->quit;

# (f) Bad tag values refuse the connection, with an SQLSTATE (in the log:
# log_error_verbosity = verbose).
my %bad = (
	'-c rollguard.version=' => [ '22023', 'A version label must not be empty.' ],
	'-c rollguard.version=' . ('9' x 201) => [ '42622', 'It is 201 bytes long; the limit is 200 bytes.' ],
	"-c rollguard.deployment=mirror-\x{e2}\x{80}\x{ae}2" => [ '22023', 'It contains a control character: U+202E at position 8.' ],
	'-c rollguard.deployment=mirror-2\ ' => [ '22023', 'A deployment name must not begin or end with white space.' ]);
for my $options (sort keys %bad)
{
	my ($code, $detail) = @{ $bad{$options} };
	my $offset = -s $node->logfile;
	local $ENV{PGOPTIONS} = $options;
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT 1');
	like($err, qr/FATAL:  invalid value for parameter "rollguard\.(deployment|version)"\nDETAIL:  \Q$detail\E/,
		"bad option refused: $detail");
	like(slurp_file($node->logfile, $offset), qr/FATAL:  $code: invalid value for parameter/,
		"bad option: SQLSTATE $code");
}
is(sessions_view(), '', 'refused connections leave no tag');

# (h) Who may provide evidence.  "intruder" may connect, nothing more; "web"
# is the application's role, granted rollguard_tag.  A tag of the
# intruder's -- by options, by application_name, of a registered version or
# of one nobody knows -- is listed (trusted f) and blocks nothing; the same
# tags from web's sessions do.
$node->safe_psql('postgres', q{
CREATE ROLE intruder LOGIN;
CREATE ROLE web LOGIN IN ROLE rollguard_tag;
});
sub trusted_view
{
	return $node->safe_psql('postgres', q{
SELECT string_agg(format('%s@%s %s %s', deployment, version, source, trusted), ', '
                  ORDER BY deployment, version, source, pid)
  FROM rollguard.sessions});
}
my ($i1, $i1_pid) = session(user => 'intruder', options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
my ($i2, $i2_pid) = session(user => 'intruder', appname => 'rollguard:forged@999');
is(trusted_view(), 'forged@999 application_name f, mirror-2@41 setting f',
	'forged tags are listed, as not trusted');
is(try_ddl($drop_weight), 'allowed', 'forged tag of a registered version: the drop goes through');
is(try_ddl($drop_nickname), 'allowed', 'forged tag of an unknown version: does not block every change');
is(try_ddl('CREATE TABLE audit (id int, note text); ALTER TABLE audit DROP COLUMN note'), 'allowed',
	'forged tag of an unknown version: a table nobody uses is nobody\'s');
is($node->safe_psql('postgres', "SELECT count(*) FROM rollguard.check('$drop_weight; $drop_nickname')"),
	'0', 'forged tags: the dry run finds no blocker either');

# Granting the role makes the same sessions evidence at the next check;
# revoking it undoes that.
$node->safe_psql('postgres', 'GRANT rollguard_tag TO intruder');
like(try_ddl($drop_weight), qr/Deployment "mirror-2" runs version "41" \(connected now, pid $i1_pid\)/,
	'granted: the same session now blocks');
like(try_ddl($drop_nickname),
	qr/Deployment "forged" runs version "999" \(connected now, pid $i2_pid; not registered, so it counts as using every column\)/,
	'granted: an unknown version counts as using every column');
$node->safe_psql('postgres', 'REVOKE rollguard_tag FROM intruder');
is(try_ddl($drop_weight), 'allowed', 'revoked: no longer evidence');
disconnect($i1, $i1_pid);
disconnect($i2, $i2_pid);

# The application's role: its tags are evidence, by either form.
my ($w1, $w1_pid) = session(user => 'web', options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
my ($w2, $w2_pid) = session(user => 'web', appname => 'rollguard:mirror-5@44');
is(trusted_view(), 'mirror-2@41 setting t, mirror-5@44 application_name t', 'the application role\'s tags are trusted');
like(try_ddl($drop_weight), qr/Deployment "mirror-2" runs version "41" \(connected now, pid $w1_pid\)/,
	'rollguard_tag member, options tag: the drop is refused');
like(try_ddl($drop_nickname), qr/Deployment "mirror-5" runs version "44" \(connected now, pid $w2_pid; not registered/,
	'rollguard_tag member, application_name tag of an unknown version: every column counts as used');
disconnect($w1, $w1_pid);
disconnect($w2, $w2_pid);

# SET SESSION AUTHORIZATION changes whose tag it is, at the next statement.
my ($su, $su_pid) = session(options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
like(try_ddl($drop_weight), qr/\(connected now, pid $su_pid\)/, 'a superuser\'s tag is evidence');
$su->query_safe('SET SESSION AUTHORIZATION intruder');
is(try_ddl($drop_weight), 'allowed', 'SET SESSION AUTHORIZATION to a role without rollguard_tag: no longer evidence');
disconnect($su, $su_pid);


# (g) A backend that ends leaves no tag: terminated, crashed, restarted.
($m2, $m2_pid) = session(options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($m2_pid)");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $m2_pid");
is(sessions_view(), '', 'terminated: no tag left');
is(try_ddl($drop_weight), 'allowed', 'terminated: the drop goes through');
eval { $m2->quit };

($m2, $m2_pid) = session(options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
my $offset = -s $node->logfile;
kill 'KILL', $m2_pid;
$node->wait_for_log(
	qr/all server processes terminated; reinitializing.*database system is ready to accept connections/s,
	$offset);
eval { $m2->quit };
is(sessions_view(), '', 'crashed (shared memory reinitialized): no tag left');

($m2, $m2_pid) = session(options => '-c rollguard.deployment=mirror-2 -c rollguard.version=41');
$node->stop('immediate');
$node->start;
eval { $m2->quit };
is(sessions_view(), '', 'restarted: no tag left');
is(try_ddl($drop_weight), 'allowed', 'restarted: the drop goes through');

$node->stop;
done_testing();
