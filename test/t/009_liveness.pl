# Liveness evidence across restarts and crashes, and expiry.
# When a tagged session of each deployment was last connected is stamped
# in shared memory when a session tags itself, drops its tag or ends,
# saved to pg_stat/rollguard_seen.dat by the observed saver and by the
# postmaster at shutdown, and read back at startup.
# (a) a tagged session stamps its deployment's last_connected in
#     rollguard.deployments (connected while it is, then seen);
# (b) a clean restart keeps the stamp, to the microsecond;
# (c) a crash after the saver ran keeps a stamp made before it;
# (d) a corrupt file is logged and ignored;
# (e) expiry (rollguard.forget_after, made short here by the setting: six
#     seconds, never minutes of sleep): a deployment without a deploy step
#     or a tagged session for that long no longer counts -- the refusal no
#     longer names it; a connected session keeps its deployment live; each expiry is
#     recorded once in rollguard.history and in the server log; a restart
#     neither forgets nor repeats it; a deploy step reverses it (recorded);
#     a refusal names a deployment not seen for rollguard.stale_after and
#     hints rollguard.remove_deployment().
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('liveness');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
restart_after_crash = on
rollguard.observed_save_interval = 1
));
$node->start;

my $file = $node->data_dir . '/pg_stat/rollguard_seen.dat';

$node->safe_psql('postgres', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text, weight numeric);
SELECT rollguard.register_version('41', '{"relations": {"public.person": {"id": {"writes": false}, "name": {}, "weight": {}}}}');
SELECT rollguard.register_version('42', '{"relations": {"public.person": {"id": {"writes": false}, "name": {}}}}');
SELECT rollguard.deploy('original', '42');
SELECT rollguard.deploy('mirror-2', '41');
SELECT rollguard.deploy('mirror-3', '41');
});

sub liveness
{
	my ($deployment) = @_;
	return $node->safe_psql('postgres', qq{
SELECT format('%s %s', liveness, last_connected IS NOT NULL)
  FROM rollguard.deployments WHERE deployment = '$deployment'});
}

sub last_connected
{
	my ($deployment) = @_;
	return $node->safe_psql('postgres', qq{
SELECT last_connected FROM rollguard.deployments WHERE deployment = '$deployment'});
}

# Waits until no other client backend is left (a session's last stamp is
# made as it ends, before it leaves pg_stat_activity).
sub quiet
{
	$node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'client backend'})
	  or die 'sessions did not end';
}

# The error of a statement, or 'allowed' (then rolled back).
sub try_ddl
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"DO \$try\$ BEGIN EXECUTE \$ddl\$$sql\$ddl\$; RAISE EXCEPTION 'rolled back'; END \$try\$;");
	return $err =~ /ERROR:  rolled back/ ? 'allowed' : $err;
}

# (a) A tagged session stamps its deployment.
is(liveness('mirror-2'), 'seen f', 'before any session: seen by its deploy step only');
my $s = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $s->query_safe('SELECT pg_backend_pid()');
$s->query_safe(q{SET rollguard.deployment = 'mirror-2'; SET rollguard.version = '41'});
is(liveness('mirror-2'), 'connected t', 'a tagged session connected: connected');
$s->quit;
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die "backend $pid did not exit";
is(liveness('mirror-2'), 'seen t', 'its session ended: seen, with when');
my $stamp = last_connected('mirror-2');

# (b) A clean restart keeps it.
$node->restart;
is(last_connected('mirror-2'), $stamp, 'clean restart: last_connected kept');
ok(-f $file, 'the file is there');

# (c) A crash after the saver ran keeps a stamp made before it.
$node->safe_psql('postgres',
	"SET application_name = 'rollguard:mirror-3\@41'; SELECT 1");
quiet();
my $stamp3 = last_connected('mirror-3');
isnt($stamp3, '', 'the application_name form stamps too');
# the saver runs every second (rollguard.observed_save_interval)
sleep(2);
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $bgpid = $bg->query_safe('SELECT pg_backend_pid()');
my $offset = -s $node->logfile;
kill 'KILL', $bgpid;
$node->wait_for_log(
	qr/all server processes terminated; reinitializing.*database system is ready to accept connections/s,
	$offset);
eval { $bg->quit };
is(last_connected('mirror-3'), $stamp3, 'crash: a stamp saved before it is kept');
is(last_connected('mirror-2'), $stamp, 'crash: older stamps too');

# (d) A corrupt file is logged and ignored.
$node->stop;
open(my $fh, '>', $file) or die;
print $fh 'not a file of deployments';
close $fh;
$offset = -s $node->logfile;
$node->start;
ok($node->log_contains(qr/ignoring corrupt file "pg_stat\/rollguard_seen.dat"/, $offset),
	'a corrupt file is logged');
is(liveness('mirror-2'), 'seen f', 'and ignored: the stamps start empty');

# (e) Expiry, made short by the setting.  mirror-2 keeps a tagged session
# connected; mirror-3 has nothing after its deploy step.
$node->safe_psql('postgres', q{
ALTER SYSTEM SET rollguard.forget_after = '6s';
ALTER SYSTEM SET rollguard.stale_after = '1s';
SELECT pg_reload_conf();
});
$s = $node->background_psql('postgres', on_error_stop => 0);
$pid = $s->query_safe('SELECT pg_backend_pid()');
$s->query_safe(q{SET rollguard.deployment = 'mirror-2'; SET rollguard.version = '41'});
# (the other deployments get a deploy step now and then: they stay)
$node->safe_psql('postgres', q{SELECT rollguard.deploy('original', '42'); SELECT rollguard.deploy('mirror-3', '41')});

# not seen for a second: the refusal says so, and hints the removal
$node->poll_query_until('postgres',
	q{SELECT liveness = 'stale' FROM rollguard.deployments WHERE deployment = 'mirror-3'})
  or die 'mirror-3 did not go stale';
$node->safe_psql('postgres', q{SELECT rollguard.deploy('original', '42')});
my $err = try_ddl('ALTER TABLE person DROP COLUMN weight');
like($err, qr/Deployment "mirror-3" runs version "41", which uses public.person.weight. It has not been seen for \d+ seconds?: its last deploy step was/,
	'stale: the DETAIL says when it was last seen');
like($err, qr/HINT:.*remove it: rollguard.remove_deployment\('mirror-3'\)/s,
	'stale: the HINT names rollguard.remove_deployment()');
like($err, qr/Deployment "mirror-2" runs version "41", which uses public.person.weight.\n/,
	'a connected deployment is not said to be stale');

# six seconds: expired
$node->poll_query_until('postgres',
	q{SELECT liveness = 'expired' FROM rollguard.deployments WHERE deployment = 'mirror-3'})
  or die 'mirror-3 did not expire';
$node->safe_psql('postgres', q{SELECT rollguard.deploy('original', '42')});
is($node->safe_psql('postgres', q{SELECT liveness FROM rollguard.deployments WHERE deployment = 'mirror-2'}),
	'connected', 'a connected session keeps its deployment from expiring');
$err = try_ddl('ALTER TABLE person DROP COLUMN weight');
like($err, qr/1 deployment still uses it/, 'the expired deployment no longer blocks');
unlike($err, qr/mirror-3/, '... nor is named');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM rollguard.history WHERE action = 'expire_deployment' AND deployment = 'mirror-3'}),
	'1', 'its expiry is recorded once');
ok($node->log_contains(qr/LOG:  rollguard: deployment "mirror-3" expired: no deploy step and no tagged session for \d+ seconds?/),
	'and in the server log');

# mirror-2's session ends: six seconds later it expires too, and the
# column may go
$s->quit;
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die "backend $pid did not exit";
$node->poll_query_until('postgres',
	q{SELECT liveness = 'expired' FROM rollguard.deployments WHERE deployment = 'mirror-2'})
  or die 'mirror-2 did not expire';
$node->safe_psql('postgres', q{SELECT rollguard.deploy('original', '42')});
is(try_ddl('ALTER TABLE person DROP COLUMN weight'), 'allowed',
	'both expired: the drop goes through');
is($node->safe_psql('postgres', q{SELECT string_agg("column", ',') FROM rollguard.contractible}),
	'weight', 'contractible lists the column');

# A restart neither forgets the expiry nor records it again.
$node->restart;
$node->safe_psql('postgres', q{SELECT rollguard.deploy('original', '42')});
is(try_ddl('ALTER TABLE person DROP COLUMN weight'), 'allowed', 'after a restart: still expired');
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s %s', deployment, n), ', ' ORDER BY deployment)
  FROM (SELECT deployment, count(*) AS n FROM rollguard.history
         WHERE action = 'expire_deployment' GROUP BY 1) h}),
	'mirror-2 1, mirror-3 1', 'each expiry recorded once, restart or not');

# A deploy step reverses it.
$node->safe_psql('postgres', q{SELECT rollguard.deploy('mirror-3', '41')});
is(liveness('mirror-3'), 'seen f', 'a deploy step: seen again');
like(try_ddl('ALTER TABLE person DROP COLUMN weight'),
	qr/Deployment "mirror-3" runs version "41"/, 'and it blocks again');
is($node->safe_psql('postgres', q{
SELECT string_agg(action, ', ' ORDER BY id) FROM rollguard.history
 WHERE deployment = 'mirror-3' AND action LIKE '%_deployment'}),
	'expire_deployment, revive_deployment', 'the reversal is recorded');

$node->stop;
done_testing();
