# Observed usage across restarts and crashes: the columns tagged sessions
# used are kept in shared memory, saved to pg_stat/rollguard_observed.dat
# by a background worker (every rollguard.observed_save_interval seconds,
# when they changed) and by the postmaster at shutdown, and read back when
# the server starts.
# (a) uses recorded by a tagged session are listed in rollguard.observed;
# (b) a clean restart keeps them, timestamps and all;
# (c) a crash (a backend killed, shared memory reinitialized) after the
#     save interval keeps them; so does an immediate stop;
# (d) a corrupt or truncated file is logged and ignored: the server starts
#     with none, and the next save replaces the file;
# (e) rollguard.max_observed reached: new uses are not recorded, counted in
#     rollguard.observed_stats, logged once per backend; nothing crashes;
#     the guard fails closed: while the version is live, breaking changes
#     to a relation whose uses could not all be recorded are refused, saying
#     why and what to do, until an administrator forgets the loss (which
#     survives a restart); a version may fill only its share
#     (rollguard.max_observed_per_version); a file with more entries than
#     the limit loads what fits, and what does not fit is a loss;
# (f) a dropped database's uses go with the next clear_observed().
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('observed');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'rollguard'
lc_messages = 'C'
restart_after_crash = on
rollguard.observed_save_interval = 1
));
$node->start;

my $file = $node->data_dir . '/pg_stat/rollguard_observed.dat';
my $tag = "SET rollguard.deployment = 'mirror-2'; SET rollguard.version = '41';";

$node->safe_psql('postgres', q{
CREATE EXTENSION rollguard;
CREATE TABLE person (id serial PRIMARY KEY, name text NOT NULL, weight integer, nickname text);
});

sub uses
{
	return $node->safe_psql('postgres', q{
SELECT string_agg(format('%s %s.%s %s%s', version, relation, "column",
                         CASE WHEN reads THEN 'r' ELSE '' END,
                         CASE WHEN writes THEN 'w' ELSE '' END), ', '
                  ORDER BY version, relation, "column")
  FROM rollguard.observed});
}

sub stamps
{
	return $node->safe_psql('postgres', q{
SELECT string_agg(format('%s %s %s', "column", first_seen, last_seen), ', ' ORDER BY "column")
  FROM rollguard.observed});
}

# Waits until the background worker has saved everything seen so far.
sub wait_saved
{
	$node->poll_query_until('postgres', q{
SELECT s.saved_at >= (SELECT max(last_seen) FROM rollguard.observed)
  FROM rollguard.observed_stats s})
	  or die 'observed uses were not saved';
}

# (a) A tagged session's statements are recorded.
$node->safe_psql('postgres', "$tag
INSERT INTO person (name, weight) VALUES ('Ada', 60);
SELECT name FROM person WHERE weight > 50;");
# (the INSERT also on the relation itself: it inserts rows)
my $recorded = '41 public.person.name rw, 41 public.person.weight rw, 41 public.person. w';
is(uses(), $recorded, 'a tagged session\'s uses are recorded');

# (b) A clean restart keeps them, with their timestamps.
my $before = stamps();
$node->restart;
is(uses(), $recorded, 'clean restart: uses kept');
is(stamps(), $before, 'clean restart: first_seen and last_seen kept');

# (c) A crash after the save interval keeps them.
$node->safe_psql('postgres', "$tag SELECT nickname FROM person");
wait_saved();
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(
	qr/all server processes terminated; reinitializing.*database system is ready to accept connections/s,
	$offset);
eval { $bg->quit };
$recorded = '41 public.person.name rw, 41 public.person.nickname r, 41 public.person.weight rw, 41 public.person. w';
is(uses(), $recorded, 'crash: uses saved before it are kept');

$node->safe_psql('postgres', "SET application_name = 'rollguard:mirror-3\@42'; SELECT id FROM person");
wait_saved();
$node->stop('immediate');
$node->start;
$recorded = '41 public.person.name rw, 41 public.person.nickname r, 41 public.person.weight rw, 41 public.person. w, 42 public.person.id r';
is(uses(), $recorded, 'immediate stop: uses kept');

# The uses kept count as used: 41's manifest lists only id and name, yet
# weight, seen used by its sessions before the restart and the crash,
# blocks its drop while a deployment runs 41; the refusal says so.
$node->safe_psql('postgres', q{
SELECT rollguard.register_version('41', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.register_version('43', '{"relations": {"public.person": {"id": {"writes": false}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('mirror-2', '41');
});
my ($ret, $out, $err) = $node->psql('postgres', 'ALTER TABLE person DROP COLUMN weight');
like($err,
	qr/ERROR:  cannot drop column "weight" of table "public.person": 1 deployment still uses it\nDETAIL:  Deployment "mirror-2" runs version "41", which uses public.person.weight \(observed, last at \d{4}-\d\d-\d\d [^)]+\)\./,
	'after restart and crash: a use the manifest missed blocks the drop, and the refusal says it was observed');
# once mirror-2 runs 43, which no session was seen with, nothing blocks
$node->safe_psql('postgres', q{SELECT rollguard.deploy('mirror-2', '43')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM rollguard.check('ALTER TABLE person DROP COLUMN weight')}),
	'0', 'when the observing version is no longer live, its uses no longer block');
$node->safe_psql('postgres', q{SELECT rollguard.remove_deployment('mirror-2')});

# (d) A corrupt file is logged and ignored; so is a truncated one.
$node->stop;
my $size = -s $file;
ok($size > 0, 'the file exists after a clean stop');
{
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	seek($fh, 40, 0);
	print $fh 'garbage';
	close $fh;
}
$offset = -s $node->logfile;
$node->start;
like(slurp_file($node->logfile, $offset),
	qr/LOG:  ignoring corrupt file "pg_stat\/rollguard_observed.dat"\n[^\n]*DETAIL:  Its checksum does not match its contents./,
	'corrupt file: logged');
is(uses(), '', 'corrupt file: ignored, no uses');
$node->safe_psql('postgres', "$tag SELECT weight FROM person");
wait_saved();
$node->restart;
is(uses(), '41 public.person.weight r', 'the next save replaced the corrupt file');

$node->stop;
truncate($file, 30) or die "truncate $file: $!";
$offset = -s $node->logfile;
$node->start;
like(slurp_file($node->logfile, $offset),
	qr/LOG:  ignoring corrupt file "pg_stat\/rollguard_observed.dat"\n[^\n]*DETAIL:  Its size does not match/,
	'truncated file: logged');
is(uses(), '', 'truncated file: ignored');

$node->stop;
truncate($file, 0) or die "truncate $file: $!";
$node->start;
is(uses(), '', 'empty file: ignored');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server runs');

# (e) rollguard.max_observed reached.  A table of 150 columns, read whole
# by one tagged statement: 100 fit, 50 are not recorded.
$node->append_conf('postgresql.conf', 'rollguard.max_observed = 100');
$node->restart;
$node->safe_psql('postgres',
	'CREATE TABLE wide (' . join(', ', map { "c$_ integer" } 1 .. 150) . ')');
$offset = -s $node->logfile;
$node->safe_psql('postgres', "$tag SELECT w FROM wide w");
is($node->safe_psql('postgres', 'SELECT entries, max_entries, dropped FROM rollguard.observed_stats'),
	'100|100|50', 'full: 100 entries kept, 50 uses not recorded and counted');
my $log = slurp_file($node->logfile, $offset);
like($log, qr/LOG:  rollguard cannot record more observed uses: "rollguard.max_observed" is 100/,
	'full: logged');
is(scalar(() = $log =~ /cannot record more observed uses/g), 1, 'full: logged once per backend');
is($node->safe_psql('postgres', "$tag SELECT count(*) FROM wide"), '0', 'full: statements still run');

# Fails closed.  Version 41 is live (mirror-2 runs it); its manifest lists
# person only.  Of wide, its uses of c1..c100 were recorded, the others
# were not: a change to any column of wide is refused while 41 is live.
$node->safe_psql('postgres', q{
SELECT rollguard.deploy('mirror-2', '41');
});
sub try_ddl
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"DO \$try\$ BEGIN EXECUTE \$ddl\$$sql\$ddl\$; RAISE EXCEPTION 'rolled back'; END \$try\$;");
	return $err =~ /ERROR:  rolled back/ ? 'allowed' : $err;
}
is($node->safe_psql('postgres', 'SELECT version, relation, cause FROM rollguard.unrecorded'),
	'41|public.wide|rollguard.max_observed', 'full: the loss is listed');
like(try_ddl('ALTER TABLE wide DROP COLUMN c150'),
	qr/ERROR:  cannot drop column "c150" of table "public.wide": 1 deployment still uses it
DETAIL:  Deployment "mirror-2" runs version "41", which may use public.wide.c150 in ways that were not recorded \("rollguard.max_observed" was reached, last at [^)]+\).
The statement ran outside a transaction block: statements that ran before it in the same migration, if any, are committed and stay applied.
HINT:  Version "43" and later no longer use it, but the deployments above still run older versions. Ship this migration in a release that comes after every deployment runs "43" or newer \(with Django: StopUsingField or StopUsingModel in one release, DropColumn or DropTable in the next; with other tools: "Removing a column or a table in two releases" in doc\/rules.md\); remove a deployment that no longer runs with rollguard.remove_deployment\(\). Run migrations in one transaction \(BEGIN ... COMMIT, psql --single-transaction, or the tool\'s own setting: see "Migrations outside a transaction" in doc\/other-tools.md\), and check them with rollguard.check\(\) before they run. Uses that could not be recorded count as uses of every column: raise the setting named, let the version's sessions run again, then forget the loss with rollguard.forget_unrecorded\(\) \(rollguard.unrecorded lists the losses\)./,
	'full: a drop of a column whose use was lost is refused, saying why and what to do');
like(try_ddl('ALTER TABLE wide ALTER COLUMN c1 SET NOT NULL'), qr/which may use public.wide.c1 in ways that were not recorded/,
	'full: so is SET NOT NULL of a column whose use was recorded (the lost ones may insert)');
like(try_ddl('DROP TABLE wide'), qr/which may use public.wide in ways that were not recorded/,
	'full: and DROP TABLE');
like($node->safe_psql('postgres', q{SELECT reason FROM rollguard.check('ALTER TABLE wide DROP COLUMN c150')}),
	qr/^may use public.wide.c150 in ways that were not recorded/, 'full: the dry run says the same');
is(try_ddl('ALTER TABLE person DROP COLUMN nickname'), 'allowed',
	'full: other relations are judged as ever');
$node->safe_psql('postgres', q{SELECT rollguard.deploy('mirror-2', '43')});
is(try_ddl('ALTER TABLE wide DROP COLUMN c150'), 'allowed',
	'full: once the version is no longer live, its losses block nothing');
$node->safe_psql('postgres', q{SELECT rollguard.deploy('mirror-2', '41')});

# A loss survives a restart (it is saved with the uses).
$node->restart;
is($node->safe_psql('postgres', 'SELECT version, relation, cause FROM rollguard.unrecorded'),
	'41|public.wide|rollguard.max_observed', 'full: the loss survives a restart');

# Nothing was evicted: clearing makes room, and new uses are recorded again.
$node->safe_psql('postgres', q{SELECT rollguard.clear_observed(relation => 'wide')});
$node->safe_psql('postgres', "$tag SELECT c150 FROM wide");
is($node->safe_psql('postgres', q{SELECT "column" FROM rollguard.observed WHERE relation = 'public.wide'}),
	'c150', 'cleared: room again');
like(try_ddl('ALTER TABLE wide DROP COLUMN c149'), qr/in ways that were not recorded/,
	'cleared: the loss still blocks until it is forgotten');
is($node->safe_psql('postgres', q{SELECT rollguard.forget_unrecorded('41', 'wide')}), '1',
	'an administrator forgets the loss');
is($node->safe_psql('postgres', q{SELECT action, version, relation, detail FROM rollguard.history
                                    WHERE action = 'forget_unrecorded'}),
	'forget_unrecorded|41|public.wide|{"removed": 1}', 'forgetting is recorded in the history');
is(try_ddl('ALTER TABLE wide DROP COLUMN c149'), 'allowed', 'forgotten: an unused column may go');
like(try_ddl('ALTER TABLE wide DROP COLUMN c150'), qr/which uses public.wide.c150 \(observed, last at/,
	'forgotten: a column seen in use since still blocks, as observed');

# rollguard.max_observed_per_version: a version that fills its share (a
# tag made up by a role allowed to tag, say) loses its own uses only;
# other versions still record theirs.
$node->safe_psql('postgres', q{SELECT rollguard.clear_observed()});
$node->append_conf('postgresql.conf', 'rollguard.max_observed_per_version = 10');
$node->reload;
$node->safe_psql('postgres', q{
SELECT rollguard.register_version('42', '{"relations": {"public.person": {"id": {}, "name": {"nullable": false}}}}');
SELECT rollguard.deploy('mirror-3', '42');
});
$offset = -s $node->logfile;
$node->safe_psql('postgres', "SET rollguard.deployment = 'mirror-3'; SET rollguard.version = '42';"
	. ' SELECT ' . join(', ', map { "c$_" } 1 .. 20) . ' FROM wide');
$node->safe_psql('postgres', "$tag SELECT c1, c2, c3 FROM wide");
is($node->safe_psql('postgres', q{SELECT version, count(*) FROM rollguard.observed GROUP BY 1 ORDER BY 1}),
	"41|3
42|10", 'per version: 42 kept 10 uses, 41 still records');
is($node->safe_psql('postgres', 'SELECT version, relation, cause FROM rollguard.unrecorded'),
	'42|public.wide|rollguard.max_observed_per_version', 'per version: the loss is 42\'s');
like(slurp_file($node->logfile, $offset),
	qr/LOG:  rollguard cannot record more observed uses of version "42": "rollguard.max_observed_per_version" is 10/,
	'per version: logged');
like(try_ddl('ALTER TABLE wide DROP COLUMN c20'),
	qr/Deployment "mirror-3" runs version "42", which may use public.wide.c20 in ways that were not recorded \("rollguard.max_observed_per_version" was reached/,
	'per version: the relation of the lost uses is held, naming the setting');
$node->safe_psql('postgres', q{SELECT rollguard.remove_deployment('mirror-3')});
is(try_ddl('ALTER TABLE wide DROP COLUMN c20'), 'allowed', 'per version: not once 42 is no longer live');
$node->safe_psql('postgres', q{SELECT rollguard.forget_unrecorded()});
$node->append_conf('postgresql.conf', 'rollguard.max_observed_per_version = 5000');
$node->reload;

# The table of losses holds 100 here (a tenth of rollguard.max_observed, at
# least 100).  With the table of uses full, a statement that reads 101 more
# relations loses uses of 101 relations: the last loss cannot be noted,
# and then no change to any relation can be judged -- every check is an
# error -- until an administrator forgets the losses.
$node->safe_psql('postgres', "$tag SELECT w FROM wide w");
$node->safe_psql('postgres', join("\n", map { "CREATE TABLE t$_ (a integer);" } 1 .. 100));
$node->safe_psql('postgres', "$tag SELECT count(*) FROM " . join(', ', map { "t$_" } 1 .. 100));
is($node->safe_psql('postgres', q{SELECT count(*), count(*) FILTER (WHERE version IS NULL AND cause = 'losses not noted')
                                    FROM rollguard.unrecorded}),
	'101|1', 'losses not noted: 100 losses, and the mark that more went unnoted');
like(try_ddl('ALTER TABLE person DROP COLUMN nickname'),
	qr/ERROR:  cannot check changes to public.person: observed uses were lost, and of which relations is not known
DETAIL:  The table of observed uses and the table of its losses were both full at [^\n]+.
HINT:  Raise "rollguard.max_observed" and restart the server, then call rollguard.forget_unrecorded\(\)./,
	'losses not noted: any change to any relation is refused');
is($node->safe_psql('postgres', q{SELECT rollguard.forget_unrecorded()}), '101',
	'losses not noted: an administrator forgets them all');
is(try_ddl('ALTER TABLE person DROP COLUMN nickname'), 'allowed', 'forgotten: changes are judged again');
$node->safe_psql('postgres', join("\n", map { "DROP TABLE t$_;" } 1 .. 100));

# A file with more entries than the limit: what fits is loaded.
$node->safe_psql('postgres', q{SELECT rollguard.clear_observed()});
$node->append_conf('postgresql.conf', 'rollguard.max_observed = 200');
$node->restart;
$node->safe_psql('postgres', "$tag SELECT w FROM wide w");
is($node->safe_psql('postgres', 'SELECT entries FROM rollguard.observed_stats'), '150', '150 recorded');
$node->append_conf('postgresql.conf', 'rollguard.max_observed = 100');
$offset = -s $node->logfile;
$node->restart;
like(slurp_file($node->logfile, $offset),
	qr/could not load 50 of 150 observed uses from file "pg_stat\/rollguard_observed.dat": "rollguard.max_observed" is 100/,
	'a bigger file than the limit: logged');
is($node->safe_psql('postgres', 'SELECT entries, dropped FROM rollguard.observed_stats'),
	'100|50', 'a bigger file than the limit: what fits is loaded, the rest counted');
is($node->safe_psql('postgres', 'SELECT version, relation, cause FROM rollguard.unrecorded'),
	'41|public.wide|rollguard.max_observed', 'a bigger file than the limit: what did not fit is a loss');
$node->safe_psql('postgres', q{SELECT rollguard.forget_unrecorded()});

# (f) Uses recorded in a database that is dropped since: clear_observed()
# in any database takes them away (no database could name them), and
# counts only its own.
$node->safe_psql('postgres', q{SELECT rollguard.clear_observed()});
$node->safe_psql('postgres', 'CREATE DATABASE shortlived');
$node->safe_psql('shortlived', q{
CREATE EXTENSION rollguard;
CREATE TABLE t (a integer, b integer);
});
$node->safe_psql('shortlived', "$tag SELECT a, b FROM t");
$node->safe_psql('postgres', "$tag SELECT id FROM person");
is($node->safe_psql('postgres', 'SELECT entries FROM rollguard.observed_stats'), '3',
	'two databases: their uses are kept');
$node->safe_psql('postgres', 'DROP DATABASE shortlived');
is($node->safe_psql('postgres', q{SELECT rollguard.clear_observed("column" => 'nickname')}), '0',
	'a clear counts only its own database\'s uses');
is($node->safe_psql('postgres', 'SELECT entries FROM rollguard.observed_stats'), '1',
	'the dropped database\'s uses are gone, the others kept');

$node->stop;
done_testing();
