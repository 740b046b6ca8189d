"""rollguard with real Django: manage.py migrate against deployments of older code.

Every scenario starts from version 41 of a generated project (migrated into a
template database before any deployment is registered), derives version 42
with one model change, lets manage.py makemigrations write the migration, and
plays it against deployments still running 41: refused with rollguard's
error, nothing recorded, nothing lost, version 41's ORM still working; then
allowed once every deployment runs 42 (manage.py rollguard_deploy).

Run by test/scenario/django.sh (which starts the cluster); by hand:
    sh test/clients/run.sh test_django [RemoveField ...]
"""
import json
import os
import tempfile

import psycopg2

from rgtest import (PYTHON, TMP, Project, StepsTestCase, connect, create_database, database_url,
                    django_version, expect_in, main, run, sql)

MODELS_41 = '''\
from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=30)


class Person(models.Model):
    name = models.CharField(max_length=100)
    weight = models.FloatField(null=True)
    height = models.FloatField(null=True)
    nickname = models.CharField(max_length=50, null=True)
    tags = models.ManyToManyField(Tag, blank=True)


class PersonName(models.Model):
    """A second, read-only model on Person's table."""
    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100, null=True)

    class Meta:
        managed = False
        db_table = "shop_person"


class VipPerson(Person):
    class Meta:
        proxy = True


class Employee(Person):
    staff_no = models.IntegerField()


class Coupon(models.Model):
    code = models.CharField(max_length=20)


class Invoice(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE)
    amount = models.DecimalField(max_digits=10, decimal_places=2)


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)


class PersonStats(models.Model):
    """A reporting table that the code reads but migrations do not manage."""
    person = models.ForeignKey(Person, on_delete=models.DO_NOTHING)
    total = models.IntegerField()

    class Meta:
        managed = False
        db_table = '"reporting"."person_stats"'
'''

# The CI dry run of contrib/README-integrations.md, word for word (but the
# migration's name and the python).
CI_DRY_RUN = """
%s manage.py sqlmigrate shop %s > pending.sql
psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 -v file=pending.sql <<'SQL' > blockers.txt
\\set ddl `cat :'file'`
SELECT deployment, version, change, relation, "column", reason FROM rollguard.check(:'ddl');
SQL
if [ -s blockers.txt ]; then cat blockers.txt; exit 1; fi
"""

TEMPLATE_DB = "shop_41"
base = None         # Project: version 41
manifest_41 = None  # its manifest (manage.py rollguard_manifest)
DJANGO = None       # (major, minor) of the Django under test
counter = 0


def setUpModule():
    """Version 41, migrated into a template database while nothing is registered."""
    global base, manifest_41, DJANGO
    DJANGO = django_version()
    root = tempfile.mkdtemp(prefix="django-", dir=TMP)
    base = Project.create(os.path.join(root, "v41"), MODELS_41)
    create_database(TEMPLATE_DB)
    base.makemigrations(TEMPLATE_DB)
    base.manage(TEMPLATE_DB, "migrate", "--noinput", "-v", "0")
    manifest_41 = base.manage(TEMPLATE_DB, "rollguard_manifest").out
    # the driver Django uses: psycopg 3 where the run asked for it (RG_PSYCOPG=3)
    driver = base.orm(TEMPLATE_DB, "from django.db import connection;"
                                   " print(connection.Database.__name__)").out.strip()
    print("# Django %d.%d with %s" % (DJANGO + (driver,)), flush=True)
    if os.environ.get("RG_PSYCOPG") == "3" and driver != "psycopg":
        raise AssertionError("RG_PSYCOPG=3, but Django uses %s" % driver)


class DjangoTestCase(StepsTestCase):
    """One database (a copy of version 41's) and a directory per test."""

    def setUp(self):
        global counter
        counter += 1
        self.db = "shop_%d_%s" % (counter, type(self).__name__.lower())
        create_database(self.db, template=TEMPLATE_DB)
        self.root = tempfile.mkdtemp(prefix=type(self).__name__ + "-", dir=TMP)
        self.v41 = base
        self.sqlmigrated = {}

    def sql(self, query, params=None):
        return sql(self.db, query, params)

    def derive(self, name, **kw):
        return self.v41.derive(os.path.join(self.root, name), **kw)

    def deploy(self, project, deployment, version, *args, ok=True):
        return project.rollguard_deploy(self.db, deployment, version, *args, ok=ok)

    def deploy_41(self, *deployments):
        """What rollguard_deploy --version 41 does, with SQL (faster than a
        manage.py each; RemoveField and DeployCommand use the command)."""
        self.sql("SELECT rollguard.register_version('41', %s::jsonb)", [manifest_41])
        for deployment in deployments:
            self.sql("SELECT rollguard.deploy(%s, '41')", [deployment])

    def live(self):
        return sorted(self.sql("SELECT deployment, version, state FROM rollguard.deployments"))

    def recorded(self, migration):
        return bool(self.sql("SELECT 1 FROM django_migrations WHERE app = 'shop' AND name = %s",
                             [migration]))

    def columns(self, table):
        return [r[0] for r in self.sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [table])]

    def table_exists(self, table):
        return self.sql("SELECT to_regclass(%s) IS NOT NULL", [table])[0][0]

    def migrate(self, project, ok=True):
        return project.manage(self.db, "migrate", "--noinput", ok=ok)

    def sqlmigrate(self, project, migration):
        key = (project.path, migration)
        if key not in self.sqlmigrated:
            self.sqlmigrated[key] = project.manage(self.db, "sqlmigrate", "shop", migration).out
        return self.sqlmigrated[key]

    def check(self, project, migration):
        """The CI dry run: manage.py sqlmigrate into rollguard.check()."""
        return self.sql('SELECT change, relation, "column", deployment, version'
                        " FROM rollguard.check(%s) ORDER BY deployment",
                        [self.sqlmigrate(project, migration)])

    def refused_then_allowed(self, v42, migration, blocker, refusal, old_code_works, after):
        """The common shape: original and mirror-2 run 41; the original moves
        to 42 and migrates: refused (mirror-2 named); mirror-2 moves to 42:
        allowed.  blocker: (change, relation, column) as rollguard.check()
        reports it."""
        with self.step("deployments original and mirror-2 run version 41"):
            self.deploy_41("original", "mirror-2")
        with self.step("the original runs 42; CI: sqlmigrate into rollguard.check() names mirror-2"):
            self.deploy(v42, "original", "42")
            self.assertEqual(self.check(v42, migration), [blocker + ("mirror-2", "41")])
        with self.step("its migrate is refused while mirror-2 runs 41"):
            r = self.migrate(v42, ok=False)
            expect_in(self, refusal + ['Deployment "mirror-2" runs version "41"', "HINT:  "],
                      r.err, "migrate's stderr")
            self.assertNotIn('Deployment "original"', r.err)
        with self.step("%s is not recorded in django_migrations" % migration):
            self.assertFalse(self.recorded(migration))
        with self.step("version 41's ORM keeps working"):
            old_code_works()
        with self.step("mirror-2 runs 42 (manage.py rollguard_deploy): check() is empty, migrate goes through"):
            self.deploy(v42, "mirror-2", "42")
            self.assertEqual(self.check(v42, migration), [])
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
            after()


class Manifest(DjangoTestCase):
    """manage.py rollguard_manifest: the columns the installed models use."""

    scenario = "manifest"

    def test_manifest(self):
        with self.step("the output is sorted, indented JSON, the same every time"):
            out = self.v41.manage(self.db, "rollguard_manifest").out
            manifest = json.loads(out)
            self.assertEqual(out.rstrip("\n"), json.dumps(manifest, sort_keys=True, indent=2))
            self.assertEqual(out, self.v41.manage(self.db, "rollguard_manifest").out)
            self.assertEqual(list(manifest), ["relations"])
            rel = manifest["relations"]
        with self.step("every column says both writes and nullable (a left-out writes would count as true)"):
            for name, cols in rel.items():
                for col, props in cols.items():
                    self.assertEqual(sorted(props), ["nullable", "writes"], f"{name}.{col}")
        with self.step("columns, writes and nullable of a model (and of a second one on its table)"):
            self.assertEqual(rel["public.shop_person"], {
                # Person's AutoField leaves id to the database; PersonName's
                # IntegerField would write it: written only if both write
                "id": {"writes": False, "nullable": False},
                "name": {"writes": True, "nullable": True},   # PersonName may write NULL
                "weight": {"writes": True, "nullable": True},
                "height": {"writes": True, "nullable": True},
                "nickname": {"writes": True, "nullable": True},
            })
            self.assertEqual(rel["public.shop_invoice"]["person_id"],
                             {"writes": True, "nullable": False})
        with self.step("auto-created many-to-many table, multi-table inheritance child"):
            self.assertEqual(set(rel["public.shop_person_tags"]), {"id", "person_id", "tag_id"})
            self.assertEqual(rel["public.shop_employee"], {
                "person_ptr_id": {"writes": True, "nullable": False},
                "staff_no": {"writes": True, "nullable": False},
            })
        with self.step("unmanaged model with a schema in db_table; no proxy table"):
            self.assertEqual(set(rel["reporting.person_stats"]), {"id", "person_id", "total"})
            self.assertFalse([k for k in rel if "vip" in k])
        with self.step("every installed app's models: auth, contenttypes (and their m2m tables)"):
            for table in ("public.auth_user", "public.auth_user_groups", "public.auth_group",
                          "public.auth_permission", "public.django_content_type"):
                self.assertIn(table, rel)
            self.assertEqual(rel["public.auth_user"]["last_login"],
                             {"writes": True, "nullable": True})
        with self.step("every table the models name exists, with every column"):
            for key, cols in rel.items():
                if key.startswith("reporting."):
                    continue
                self.assertEqual(sorted(cols), sorted(self.columns(key)), key)
        with self.step("the extension takes it as it is"):
            self.sql("SELECT rollguard.register_version('41', %s::jsonb)", [out])
            count = self.sql("SELECT columns FROM rollguard.versions WHERE version = '41'")[0][0]
            self.assertEqual(count, sum(len(c) for c in rel.values()))

    def test_schema(self):
        """plain table names get the connection's schema, or --schema's"""
        with self.step("--schema names the schema without asking the database"):
            rel = json.loads(self.v41.manage(self.db, "rollguard_manifest", "--schema", "app").out)
            self.assertIn("app.shop_person", rel["relations"])
            self.assertIn("reporting.person_stats", rel["relations"])
        with self.step("without it, current_schema() of the connection's search_path"):
            db = self.db + "_app"
            create_database(db, extension=False)
            sql(db, "CREATE SCHEMA app")
            sql(db, 'ALTER DATABASE "%s" SET search_path = app, public' % db)
            rel = json.loads(self.v41.manage(db, "rollguard_manifest").out)["relations"]
            self.assertIn("app.shop_person", rel)
            self.assertFalse([k for k in rel if k.startswith("public.")])


class Additive(DjangoTestCase):
    """Expand migrations go through while old code runs; narrowing a type does not."""

    scenario = "additive"

    def test_additive(self):
        v42 = self.derive("v42", replace=[
            ("    tags = ", "    score = models.IntegerField(null=True, default=0)\n"
                          "    email = models.EmailField(null=True, db_index=True)\n    tags = "),
            ("name = models.CharField(max_length=100)",
             "name = models.CharField(max_length=200, db_index=True)"),
            ("staff_no = models.IntegerField()", "staff_no = models.BigIntegerField()"),
            ("    code = models.CharField(max_length=20)\n",
             "    code = models.CharField(max_length=20, unique=True)\n"
             "    note = models.TextField(null=True)\n\n\n"
             "class Shipment(models.Model):\n"
             "    person = models.ForeignKey(Person, on_delete=models.CASCADE)\n"),
        ])
        with self.step("one migration: nullable fields (one with a Python default), indexes, "
                       "varchar(100) -> varchar(200), integer -> bigint, UNIQUE, a new model"):
            migration = v42.makemigrations(self.db)
            sqltext = self.sqlmigrate(v42, migration)
            expect_in(self, ['ADD COLUMN "score" integer DEFAULT 0 NULL',
                             'ALTER COLUMN "score" DROP DEFAULT',
                             'ALTER COLUMN "name" TYPE varchar(200)',
                             'ALTER COLUMN "staff_no" TYPE bigint USING "staff_no"::bigint',
                             'CREATE TABLE "shop_shipment"'], sqltext, "sqlmigrate")
        with self.step("goes through while original and mirror-2 run 41"):
            self.deploy_41("original", "mirror-2")
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
            self.v41.orm(self.db, "from shop.models import Person; Person.objects.create(name='Ada')")
        v43 = v42.derive(os.path.join(self.root, "v43"), replace=[
            ("max_length=200, db_index=True", "max_length=50, db_index=True")])
        with self.step("AlterField max_length 200 -> 50 is refused while code uses the column"):
            migration = v43.makemigrations(self.db)
            r = self.migrate(v43, ok=False)
            expect_in(self, ['cannot change the type of column "name" of table "public.shop_person"',
                             'Deployment "mirror-2" runs version "41"'], r.err)
            self.assertFalse(self.recorded(migration))


class RemoveField(DjangoTestCase):
    """RemoveField: refused while a mirror runs the old version."""

    scenario = "RemoveField"

    def test_remove_field(self):
        v42 = self.derive("v42", replace=[("    weight = models.FloatField(null=True)\n", "")])
        with self.step("makemigrations writes a RemoveField"):
            migration = v42.makemigrations(self.db)
            self.assertIn("migrations.RemoveField", v42.read("shop/migrations/%s.py" % migration))
            sqltext = self.sqlmigrate(v42, migration)
            self.assertIn('ALTER TABLE "shop_person" DROP COLUMN "weight" CASCADE', sqltext)
        with self.step("original, mirror-2 and mirror-3 run version 41"):
            for d in ("original", "mirror-2", "mirror-3"):
                r = self.deploy(self.v41, d, "41")
                self.assertEqual(len(r.out.strip().splitlines()), 1, r.out)
                self.assertIn('rollguard: deployment "%s" runs "41" (running)' % d, r.out)
            self.v41.orm(self.db, "from shop.models import Person;"
                         " Person.objects.create(name='Ada', weight=61.5)")
        with self.step("the original runs 42; CI: sqlmigrate into rollguard.check() names the mirrors"):
            self.deploy(v42, "original", "42")
            r = v42.manage(self.db, "rollguard_status")
            lines = r.out.splitlines()
            self.assertEqual(lines[0], "3 deployments live:")
            expect_in(self, ["mirror-2 runs 41 since", "mirror-3 runs 41 since", "original runs 42 since",
                             "no tagged session connected", " refused, "], r.out)
            self.assertEqual(self.check(v42, migration), [
                ("drop column", "public.shop_person", "weight", "mirror-2", "41"),
                ("drop column", "public.shop_person", "weight", "mirror-3", "41")])
        with self.step("the README's CI dry run fails the build, naming the mirrors"):
            r = run(["sh", "-c", CI_DRY_RUN % (PYTHON, migration)], cwd=v42.path, ok=False,
                    env={"DATABASE_URL": database_url(self.db)})
            self.assertEqual(r.out.splitlines(), [
                "mirror-2|41|drop column|public.shop_person|weight|uses public.shop_person.weight",
                "mirror-3|41|drop column|public.shop_person|weight|uses public.shop_person.weight"])
        with self.step("manage.py rollguard_check: the same dry run as a command, exit status 1"):
            r = v42.manage(self.db, "rollguard_check", ok=False)
            self.assertEqual(r.out.splitlines(), [
                "shop.%s: would be refused: 2 deployments would break (mirror-2, mirror-3)" % migration,
                '  drop column public.shop_person.weight: deployment "mirror-2" runs version "41",'
                " which uses public.shop_person.weight",
                '  drop column public.shop_person.weight: deployment "mirror-3" runs version "41",'
                " which uses public.shop_person.weight"])
            expect_in(self, ["1 of 1 migrations would be refused"], r.err)
            self.assertFalse(self.recorded(migration))
        with self.step("migrate is refused, naming mirror-2 and mirror-3"):
            r = self.migrate(v42, ok=False)
            expect_in(self, [
                'cannot drop column "weight" of table "public.shop_person": 2 deployments still use it',
                'Deployment "mirror-2" runs version "41", which uses public.shop_person.weight.',
                'Deployment "mirror-3" runs version "41", which uses public.shop_person.weight.',
                # 42 is registered and no longer uses it: ship the drop later
                'HINT:  Version "42" and later no longer use it, but the deployments above still run older versions',
            ], r.err, "migrate's stderr")
        with self.step("django_migrations does not record the migration"):
            self.assertFalse(self.recorded(migration))
            plan = v42.manage(self.db, "showmigrations", "shop").out
            self.assertIn("[ ] %s" % migration, plan)
        with self.step("the column and its data are intact"):
            self.assertIn("weight", self.columns("shop_person"))
            self.assertEqual(self.sql("SELECT name, weight FROM shop_person"), [("Ada", 61.5)])
        with self.step("version 41's ORM keeps inserting and reading"):
            out = self.v41.orm(self.db, """
                from shop.models import Person
                Person.objects.create(name='Grace', weight=70.2)
                print(sorted(Person.objects.values_list('name', 'weight')))
            """).out
            self.assertIn("[('Ada', 61.5), ('Grace', 70.2)]", out)
        with self.step("mirror-2 runs 42: still refused, naming only mirror-3"):
            self.deploy(v42, "mirror-2", "42")
            r = self.migrate(v42, ok=False)
            expect_in(self, ["1 deployment still uses it", 'Deployment "mirror-3"'], r.err)
            self.assertNotIn('Deployment "mirror-2"', r.err)
        with self.step("mirror-3 runs 42: the CI dry run passes, migrate goes through"):
            self.deploy(v42, "mirror-3", "42")
            run(["sh", "-c", CI_DRY_RUN % (PYTHON, migration)], cwd=v42.path,
                env={"DATABASE_URL": database_url(self.db)})
            r = v42.manage(self.db, "rollguard_check")
            self.assertEqual(r.out.splitlines(), ["shop.%s: passes" % migration,
                                                  "rollguard: 1 migration would pass"])
            self.migrate(v42)
            r = v42.manage(self.db, "rollguard_check")
            self.assertEqual(r.out.splitlines(), ["rollguard: no migrations to apply"])
            self.assertTrue(self.recorded(migration))
            self.assertNotIn("weight", self.columns("shop_person"))
            out = v42.orm(self.db, """
                from shop.models import Person
                Person.objects.create(name='Hedy')
                print(Person.objects.count())
            """).out
            self.assertEqual(out.strip(), "3")
        with self.step("rolling mirror-2 back to 41 is refused by rollguard_deploy (exit 1)"):
            r = self.deploy(self.v41, "mirror-2", "41", ok=False)
            self.assertEqual(r.rc, 1)
            expect_in(self, [
                'cannot deploy version "41" to deployment "mirror-2": its code uses 1 column that no longer exists',
                "DETAIL:  Column public.shop_person.weight no longer exists (drop column).",
                "HINT:  A contract migration has run since this version was current",
                "(SQLSTATE 55000)",
            ], r.err, "rollguard_deploy's stderr")
            self.assertNotIn("Traceback", r.err)
            self.assertEqual(self.live(), [("mirror-2", "42", "running"), ("mirror-3", "42", "running"),
                                           ("original", "42", "running")])


class AddFieldNotNull(DjangoTestCase):
    """AddField NOT NULL with a Python default: refused while old code inserts; the safe path."""

    scenario = "AddField NOT NULL"

    def test_add_field_not_null(self):
        field = "    gdpr_accepted = models.BooleanField(default=False)\n"
        v42 = self.derive("v42", replace=[("    tags = ", field + "    tags = ")])
        with self.step("makemigrations writes an AddField; Django sends ADD ... DEFAULT + DROP DEFAULT"):
            migration = v42.makemigrations(self.db)
            sqltext = self.sqlmigrate(v42, migration)
            expect_in(self, [
                'ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL',
                'ALTER COLUMN "gdpr_accepted" DROP DEFAULT',
            ], sqltext, "sqlmigrate")
        with self.step("original and mirror-2 run version 41"):
            self.deploy_41("original", "mirror-2")
        with self.step("the original runs 42; CI: rollguard.check() follows ADD COLUMN to DROP DEFAULT"):
            self.deploy(v42, "original", "42")
            self.assertEqual(self.check(v42, migration),
                             [("drop default", "public.shop_person", "gdpr_accepted", "mirror-2", "41")])
        with self.step("migrate is refused at DROP DEFAULT"):
            r = self.migrate(v42, ok=False)
            expect_in(self, [
                'cannot drop the default of NOT NULL column "gdpr_accepted" of table '
                '"public.shop_person": 1 deployment still inserts rows without it',
                'Deployment "mirror-2" runs version "41", which inserts into public.shop_person '
                'without writing gdpr_accepted.',
                "HINT:  Keep the database default",
            ], r.err, "migrate's stderr")
        with self.step("nothing happened: no column, no record; version 41 inserts"):
            self.assertFalse(self.recorded(migration))
            self.assertNotIn("gdpr_accepted", self.columns("shop_person"))
            self.v41.orm(self.db, "from shop.models import Person;"
                         " Person.objects.create(name='Ada')")

        # The safe path on Django 3.2 (no db_default): the same state change,
        # but the database keeps the default.
        safe = v42.read("shop/migrations/%s.py" % migration)
        start = safe.index("    operations = [")
        safe = safe[:start] + '''    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="person",
                    name="gdpr_accepted",
                    field=models.BooleanField(default=False),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "shop_person" ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL',
                    reverse_sql='ALTER TABLE "shop_person" DROP COLUMN "gdpr_accepted"',
                ),
            ],
        ),
    ]
'''
        with self.step("safe path: SeparateDatabaseAndState keeps the default; models and state agree"):
            v42.write("shop/migrations/%s.py" % migration, safe)
            self.sqlmigrated.clear()
            r = v42.manage(self.db, "makemigrations", "shop", "--check", "--dry-run")
            self.assertIn("No changes detected", r.out)
        with self.step("safe path: migrate goes through while mirror-2 runs 41"):
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
        with self.step("safe path: version 41 inserts (the default fills in), 42 writes the field"):
            self.v41.orm(self.db, "from shop.models import Person;"
                         " Person.objects.create(name='Grace')")
            v42.orm(self.db, "from shop.models import Person;"
                    " Person.objects.create(name='Hedy', gdpr_accepted=True)")
            self.assertEqual(self.sql("SELECT name, gdpr_accepted FROM shop_person ORDER BY id"),
                             [("Ada", False), ("Grace", False), ("Hedy", True)])

        v43 = v42.derive(os.path.join(self.root, "v43"))
        with self.step("version 43 drops the default in a migration of its own"):
            drop = v43.makemigrations(self.db, "--empty", "-n", "drop_gdpr_accepted_default")
            text = v43.read("shop/migrations/%s.py" % drop)
            text = text.replace("    operations = [\n", '''    operations = [
        migrations.RunSQL(
            'ALTER TABLE "shop_person" ALTER COLUMN "gdpr_accepted" DROP DEFAULT',
            reverse_sql='ALTER TABLE "shop_person" ALTER COLUMN "gdpr_accepted" SET DEFAULT false',
        ),
''')
            v43.write("shop/migrations/%s.py" % drop, text)
        with self.step("version 43's migrate is refused while mirror-2 runs 41"):
            self.deploy(v43, "original", "43")
            r = self.migrate(v43, ok=False)
            expect_in(self, ['cannot drop the default of NOT NULL column "gdpr_accepted"',
                             'Deployment "mirror-2" runs version "41"'], r.err)
            self.assertFalse(self.recorded(drop))
        with self.step("once mirror-2 runs 42 (which writes the field), it goes through"):
            self.deploy(v42, "mirror-2", "42")
            self.migrate(v43)
            self.assertTrue(self.recorded(drop))
            self.assertEqual(self.sql(
                "SELECT column_default FROM information_schema.columns"
                " WHERE table_name = 'shop_person' AND column_name = 'gdpr_accepted'"), [(None,)])


class AlterFieldNotNull(DjangoTestCase):
    """AlterField null=True -> null=False: refused while old code may write NULL."""

    scenario = "AlterField NOT NULL"

    def test_alter_field_not_null(self):
        v42 = self.derive("v42", replace=[
            ("nickname = models.CharField(max_length=50, null=True)",
             "nickname = models.CharField(max_length=50, default='')")])
        with self.step("makemigrations writes an AlterField; Django sends SET NOT NULL"):
            migration = v42.makemigrations(self.db)
            self.assertIn("migrations.AlterField", v42.read("shop/migrations/%s.py" % migration))
            self.assertIn('ALTER COLUMN "nickname" SET NOT NULL', self.sqlmigrate(v42, migration))
        self.v41.orm(self.db, "from shop.models import Person;"
                     " Person.objects.create(name='Ada', nickname=None)")

        def old_code_works():
            out = self.v41.orm(self.db, """
                from shop.models import Person
                Person.objects.create(name='Grace', nickname=None)
                print(Person.objects.filter(nickname__isnull=True).count())
            """).out
            self.assertEqual(out.strip(), "2")

        def after():
            self.assertEqual(self.sql(
                "SELECT is_nullable FROM information_schema.columns"
                " WHERE table_name = 'shop_person' AND column_name = 'nickname'"), [("NO",)])
            self.assertEqual(self.sql("SELECT count(*) FROM shop_person WHERE nickname = ''"), [(2,)])

        self.refused_then_allowed(v42, migration, ("set not null", "public.shop_person", "nickname"), [
            'column "nickname" of table "public.shop_person"',
            "may still write NULL to it",
        ], old_code_works, after)


class RenameField(DjangoTestCase):
    """RenameField: refused while old code uses the old name."""

    scenario = "RenameField"

    def test_rename_field(self):
        v42 = self.derive("v42", replace=[("    height = models", "    height_cm = models")])
        with self.step("makemigrations asks, and writes a RenameField"):
            migration = v42.makemigrations(self.db, answers="y\n")
            self.assertIn("migrations.RenameField", v42.read("shop/migrations/%s.py" % migration))

        def old_code_works():
            out = self.v41.orm(self.db, """
                from shop.models import Person
                Person.objects.create(name='Ada', height=1.7)
                print(Person.objects.get(name='Ada').height)
            """).out
            self.assertEqual(out.strip(), "1.7")

        def after():
            self.assertIn("height_cm", self.columns("shop_person"))
            self.assertNotIn("height", self.columns("shop_person"))

        self.refused_then_allowed(v42, migration, ("rename column", "public.shop_person", "height"), [
            'cannot rename column "height" of table "public.shop_person": 1 deployment still uses it',
        ], old_code_works, after)


class RenameModel(DjangoTestCase):
    """RenameModel: refused while old code uses the old table."""

    scenario = "RenameModel"

    def test_rename_model(self):
        v42 = self.derive("v42", replace=[("class Invoice(", "class Bill("),
                                          ("ForeignKey(Invoice,", "ForeignKey(Bill,")])
        with self.step("makemigrations asks, and writes a RenameModel"):
            migration = v42.makemigrations(self.db, answers="y\ny\n")
            self.assertIn("migrations.RenameModel", v42.read("shop/migrations/%s.py" % migration))

        def old_code_works():
            out = self.v41.orm(self.db, """
                from shop.models import Invoice, InvoiceLine, Person
                i = Invoice.objects.create(person=Person.objects.create(name='Ada'), amount='9.50')
                InvoiceLine.objects.create(invoice=i, text='tea')
                print(InvoiceLine.objects.select_related('invoice').get().invoice.amount)
            """).out
            self.assertEqual(out.strip(), "9.50")

        def after():
            self.assertTrue(self.table_exists("shop_bill"))
            self.assertFalse(self.table_exists("shop_invoice"))

        self.refused_then_allowed(v42, migration, ("rename relation", "public.shop_invoice", None), [
            'cannot rename table "public.shop_invoice": 1 deployment still uses it',
        ], old_code_works, after)


class SafeRenames(DjangoTestCase):
    """Renaming in code only: pin the column / table name first, then rename."""

    scenario = "safe renames"

    def test_safe_renames(self):
        self.deploy_41("original", "mirror-2")
        v42 = self.derive("v42", replace=[
            ("    height = models.FloatField(null=True)",
             "    height = models.FloatField(null=True, db_column='height')"),
            ("class Invoice(models.Model):\n",
             "class Invoice(models.Model):\n    class Meta:\n        db_table = 'shop_invoice'\n\n")])
        with self.step("pin db_column and db_table (makemigrations): no SQL"):
            pin = v42.makemigrations(self.db)
            sqltext = self.sqlmigrate(v42, pin)
            self.assertEqual([l for l in sqltext.splitlines()
                              if l and not l.startswith(("--", "BEGIN;", "COMMIT;"))], [], sqltext)
        v42b = v42.derive(os.path.join(self.root, "v42b"), replace=[
            ("    height = models.FloatField(null=True, db_column='height')",
             "    height_cm = models.FloatField(null=True, db_column='height')"),
            ("class Invoice(models.Model):\n", "class Bill(models.Model):\n"),
            ("ForeignKey(Invoice,", "ForeignKey(Bill,")])
        with self.step("then rename the field and the model (makemigrations): RenameField, RenameModel"):
            rename = v42b.makemigrations(self.db, answers="y\ny\ny\n")
            text = v42b.read("shop/migrations/%s.py" % rename)
            self.assertIn("migrations.RenameField", text)
            self.assertIn("migrations.RenameModel", text)
            self.assertEqual(self.check(v42b, pin) + self.check(v42b, rename), [])
        with self.step("both go through while mirror-2 runs 41, which keeps working"):
            self.deploy(v42b, "original", "42")
            self.migrate(v42b)
            self.assertTrue(self.recorded(rename))
            self.assertIn("height", self.columns("shop_person"))
            self.assertTrue(self.table_exists("shop_invoice"))
            out = self.v41.orm(self.db, """
                from shop.models import Invoice, Person
                p = Person.objects.create(name='Ada', height=1.7)
                Invoice.objects.create(person=p, amount=1)
                print(Invoice.objects.get().person.height)
            """).out
            self.assertEqual(out.strip(), "1.7")
            out = v42b.orm(self.db, "from shop.models import Bill; print(Bill.objects.get().person.height_cm)").out
            self.assertEqual(out.strip(), "1.7")


class RenameAndBack(DjangoTestCase):
    """Rename the field and pin db_column in one step: Django 3.2 renames the
    column and back in one migration, judged on what it leaves (net effect);
    Django 4.0 and later see that the column stays and send nothing."""

    scenario = "rename and back"

    def test_rename_and_back(self):
        v42 = self.derive("v42", replace=[
            ("    height = models.FloatField(null=True)",
             "    height_cm = models.FloatField(null=True, db_column='height')")])
        with self.step("one makemigrations: RenameField and AlterField db_column; "
                       "sqlmigrate renames the column and back (3.2) or sends nothing (4.0+)"):
            migration = v42.makemigrations(self.db, answers="y\n")
            text = v42.read("shop/migrations/%s.py" % migration)
            self.assertIn("migrations.RenameField", text)
            self.assertIn("migrations.AlterField", text)
            sqltext = self.sqlmigrate(v42, migration)
            statements = [l for l in sqltext.splitlines()
                          if l and not l.startswith(("--", "BEGIN;", "COMMIT;"))]
            for line in statements:
                print("# " + line)
            if django_version() < (4, 0):
                self.assertEqual(statements, [
                    'ALTER TABLE "shop_person" RENAME COLUMN "height" TO "height_cm";',
                    'ALTER TABLE "shop_person" RENAME COLUMN "height_cm" TO "height";'], sqltext)
            else:
                self.assertEqual(statements, [], sqltext)
        with self.step("original and mirror-2 run 41; a real RenameField (no db_column) is still refused"):
            self.deploy_41("original", "mirror-2")
            renamed = self.derive("v42-renamed", replace=[("    height = models", "    height_cm = models")])
            real = renamed.makemigrations(self.db, answers="y\n")
            r = self.migrate(renamed, ok=False)
            expect_in(self, ['cannot rename column "height" of table "public.shop_person"',
                             'Deployment "mirror-2" runs version "41"'], r.err, "migrate's stderr")
            self.assertFalse(self.recorded(real))
        with self.step("the original runs 42; the rename and back goes through while mirror-2 runs 41"):
            self.deploy(v42, "original", "42")
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
            self.assertIn("height", self.columns("shop_person"))
            self.assertNotIn("height_cm", self.columns("shop_person"))
        with self.step("version 41's ORM writes and reads height, 42's reads it as height_cm"):
            out = self.v41.orm(self.db, """
                from shop.models import Person
                Person.objects.create(name='Ada', height=1.7)
                print(Person.objects.get(name='Ada').height)
            """).out
            self.assertEqual(out.strip(), "1.7")
            out = v42.orm(self.db, "from shop.models import Person;"
                          " print(Person.objects.get(name='Ada').height_cm)").out
            self.assertEqual(out.strip(), "1.7")


class DeleteModel(DjangoTestCase):
    """DeleteModel: refused while old code uses the table."""

    scenario = "DeleteModel"

    def test_delete_model(self):
        start = MODELS_41.index("class Coupon(")
        end = MODELS_41.index("class Invoice(")
        v42 = self.derive("v42", models=MODELS_41[:start] + MODELS_41[end:])
        with self.step("makemigrations writes a DeleteModel"):
            migration = v42.makemigrations(self.db)
            self.assertIn("migrations.DeleteModel", v42.read("shop/migrations/%s.py" % migration))

        def old_code_works():
            out = self.v41.orm(self.db, """
                from shop.models import Coupon
                Coupon.objects.create(code='SPRING')
                print(Coupon.objects.get().code)
            """).out
            self.assertEqual(out.strip(), "SPRING")

        def after():
            self.assertFalse(self.table_exists("shop_coupon"))

        self.refused_then_allowed(v42, migration, ("drop relation", "public.shop_coupon", None), [
            'cannot drop table "public.shop_coupon": 1 deployment still uses it',
        ], old_code_works, after)


class RemoveForeignKey(DjangoTestCase):
    """RemoveField of a ForeignKey: Django drops the constraint, then the column."""

    scenario = "RemoveField (ForeignKey)"

    def test_remove_foreign_key(self):
        v42 = self.derive("v42", replace=[
            ("    person = models.ForeignKey(Person, on_delete=models.CASCADE)\n    amount", "    amount")])
        migration = v42.makemigrations(self.db)

        def old_code_works():
            self.v41.orm(self.db, """
                from shop.models import Invoice, Person
                Invoice.objects.create(person=Person.objects.create(name='Ada'), amount=1)
            """)
            self.assertEqual(self.sql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop_invoice'::regclass"
                                      " AND contype = 'f'"), [(1,)])

        def after():
            self.assertNotIn("person_id", self.columns("shop_invoice"))

        # person_id is NOT NULL without a default: version 42, which no
        # longer writes it, would fail on every insert.  The forward check
        # for writes refuses it until an earlier release has made the column
        # nullable (what Django's AlterField(null=True) runs).
        with self.step("while person_id is NOT NULL, 42 cannot be deployed: its inserts would fail"):
            self.deploy_41("original", "mirror-2")
            r = self.deploy(v42, "original", "42", ok=False)
            expect_in(self, ['cannot deploy version "42" to deployment "original": its inserts would fail on 1 NOT NULL column',
                             "Column public.shop_invoice.person_id is NOT NULL without a default", "HINT:  "],
                      r.err, "rollguard_deploy's stderr")
        with self.step("an earlier release makes person_id nullable (AlterField(null=True))"):
            self.sql("ALTER TABLE shop_invoice ALTER COLUMN person_id DROP NOT NULL")
        self.refused_then_allowed(v42, migration, ("drop column", "public.shop_invoice", "person_id"), [
            'cannot drop column "person_id" of table "public.shop_invoice": 1 deployment still uses it',
        ], old_code_works, after)


class RemoveManyToMany(DjangoTestCase):
    """RemoveField of a ManyToManyField: Django drops the through table."""

    scenario = "RemoveField (ManyToManyField)"

    def test_remove_many_to_many(self):
        v42 = self.derive("v42", replace=[("    tags = models.ManyToManyField(Tag, blank=True)\n", "")])
        migration = v42.makemigrations(self.db)

        def old_code_works():
            out = self.v41.orm(self.db, """
                from shop.models import Person, Tag
                p = Person.objects.create(name='Ada')
                p.tags.add(Tag.objects.create(name='vip'))
                print(list(p.tags.values_list('name', flat=True)))
            """).out
            self.assertEqual(out.strip(), "['vip']")

        def after():
            self.assertFalse(self.table_exists("shop_person_tags"))

        self.refused_then_allowed(v42, migration, ("drop relation", "public.shop_person_tags", None), [
            'cannot drop table "public.shop_person_tags": 1 deployment still uses it',
        ], old_code_works, after)


class DeployCommand(DjangoTestCase):
    """manage.py rollguard_deploy: rollouts, one transaction, errors."""

    scenario = "rollguard_deploy"

    def test_rollout_steps(self):
        v42 = self.derive("v42", replace=[("    weight = models.FloatField(null=True)\n", "")])
        with self.step("--rollout begin: both versions live"):
            self.deploy(self.v41, "web", "41")
            r = self.deploy(v42, "web", "42", "--rollout", "begin")
            self.assertIn('rollguard: deployment "web" runs "41" (running), "42" (rolling out)', r.out)
            self.assertEqual(self.live(), [("web", "41", "running"), ("web", "42", "rolling out")])
        with self.step("--rollout abort: 42 is gone again"):
            r = self.deploy(v42, "web", "42", "--rollout", "abort")
            self.assertIn('runs "41" (running)', r.out)
            self.assertEqual(self.live(), [("web", "41", "running")])
        with self.step("--rollout begin, then finish: only 42 remains"):
            self.deploy(v42, "web", "42", "--rollout", "begin")
            self.deploy(v42, "web", "42", "--rollout", "finish")
            self.assertEqual(self.live(), [("web", "42", "running")])
        with self.step("--manifest FILE registers that file"):
            path = os.path.join(self.root, "manifest.json")
            with open(path, "w") as f:
                f.write(self.v41.manage(self.db, "rollguard_manifest").out)
            self.deploy(v42, "blue", "41", "--manifest", path)   # the same as 41's own
            self.assertIn(("blue", "41", "running"), self.live())

    def test_deploy_role(self):
        """a role granted rollguard_deploy (not a superuser) runs the command"""
        self.sql("""DO $$ BEGIN
                        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'deployer') THEN
                            CREATE ROLE deployer LOGIN;
                        END IF;
                    END $$""")
        self.sql("GRANT rollguard_deploy TO deployer")
        as_deployer = {"DATABASE_URL": database_url(self.db, user="deployer")}
        with self.step("GRANT rollguard_deploy TO deployer: it registers and deploys"):
            r = self.v41.manage(self.db, "rollguard_deploy", "--deployment", "web", "--version", "41",
                                env=as_deployer)
            self.assertIn('rollguard: deployment "web" runs "41" (running)', r.out)
            self.assertEqual(self.sql("SELECT registered_by FROM rollguard.versions"), [("deployer",)])
        with self.step("without the grant: refused, nothing recorded"):
            self.sql("REVOKE rollguard_deploy FROM deployer")
            r = self.v41.manage(self.db, "rollguard_deploy", "--deployment", "web-2", "--version", "41",
                                env=as_deployer, ok=False)
            expect_in(self, ["permission denied", "(SQLSTATE 42501)"], r.err)
            self.assertEqual(self.live(), [("web", "41", "running")])

    def test_errors(self):
        v42 = self.derive("v42", replace=[("    weight = models.FloatField(null=True)\n", "")])
        self.deploy(self.v41, "web", "41")
        with self.step("another build under a known label: refused, nothing recorded"):
            r = self.deploy(v42, "mirror-2", "41", ok=False)
            self.assertEqual(r.rc, 1)
            expect_in(self, ['CommandError: version "41" is already registered with a different manifest',
                             "DETAIL:  Column public.shop_person.weight is no longer listed.",
                             "HINT:  A build does not change", "(SQLSTATE 42710)"], r.err)
            self.assertEqual(self.live(), [("web", "41", "running")])
        with self.step("finishing a rollout that was never begun: refused"):
            r = self.deploy(v42, "web", "42", "--rollout", "finish", ok=False)
            expect_in(self, ['deployment "web" is not rolling out version "42"', "(SQLSTATE 55000)"], r.err)
        with self.step("--rollout begin on a deployment that does not exist: refused, "
                       "and the registration rolled back with it"):
            r = self.deploy(v42, "nobody", "42", "--rollout", "begin", ok=False)
            expect_in(self, ['deployment "nobody" does not exist', "(SQLSTATE 42704)"], r.err)
            self.assertEqual(self.sql("SELECT count(*) FROM rollguard.versions WHERE version = '42'"),
                             [(0,)])
        with self.step("a bad label: the server's error, exit 1"):
            r = self.deploy(v42, "web", " 42", ok=False)
            expect_in(self, ['version label " 42" has leading or trailing white space',
                             "(SQLSTATE 22023)"], r.err)
        with self.step("a database without the extension: a hint to create it"):
            db = self.db + "_plain"
            create_database(db, extension=False)
            r = v42.rollguard_deploy(db, "web", "42", ok=False)
            expect_in(self, ['HINT:  Is the rollguard extension created in database "default"?'], r.err)
        with self.step("--version LABEL is the build, not Django's --version"):
            self.assertIn("--version LABEL", v42.manage(self.db, "rollguard_deploy", "--help").out)


class AddIndexLock(DjangoTestCase):
    """The downtime guard: Django's own AddIndex (a plain CREATE INDEX) is
    refused on a large table and goes through on a small one; the
    AddIndexConcurrently the hint names goes through on the large one."""

    scenario = "AddIndex (downtime guard)"

    def test_add_index(self):
        meta = ("    tags = models.ManyToManyField(Tag, blank=True)\n\n"
                "    class Meta:\n"
                "        indexes = [models.Index(fields=['nickname'], name='person_nick_idx')]\n")
        v42 = self.derive("v42", replace=[("    tags = models.ManyToManyField(Tag, blank=True)\n", meta)])
        with self.step("makemigrations writes an AddIndex: a CREATE INDEX without CONCURRENTLY"):
            migration = v42.makemigrations(self.db)
            text = v42.read("shop/migrations/%s.py" % migration)
            self.assertIn("migrations.AddIndex(", text)
            self.assertNotIn("Concurrently", text)
            sqltext = self.sqlmigrate(v42, migration)
            self.assertIn('CREATE INDEX "person_nick_idx" ON "shop_person" ("nickname")', sqltext)
        with self.step("the database refuses what would stall (lock_checks = on, 512kB)"):
            for db in (self.db, self.db + "_small"):
                if db != self.db:
                    create_database(db, template=TEMPLATE_DB)
                self.sql('ALTER DATABASE "%s" SET rollguard.lock_checks = on' % db)
                self.sql('ALTER DATABASE "%s" SET rollguard.lock_checks_min_size = \'512kB\'' % db)
        with self.step("shop_person is large: 20000 rows, ANALYZEd"):
            self.sql("INSERT INTO shop_person (name, weight, nickname)"
                     " SELECT 'person ' || g, g / 100.0, 'nick ' || g FROM generate_series(1, 20000) g")
            self.sql("ANALYZE shop_person")
            self.assertGreater(self.sql("SELECT pg_relation_size('shop_person')")[0][0], 512 * 1024)
        with self.step("CI: sqlmigrate into rollguard.check() reports the index build, family downtime"):
            self.assertEqual(self.check(v42, migration),
                             [("index build", "public.shop_person", None, None, None)])
            family = self.sql("SELECT family, reason FROM rollguard.check(%s)",
                              [self.sqlmigrate(v42, migration)])
            self.assertEqual(family[0][0], "downtime")
            self.assertIn("20000 rows", family[0][1])
        with self.step("migrate is refused (SQLSTATE 55000), teaching CREATE INDEX CONCURRENTLY"):
            r = self.migrate(v42, ok=False)
            expect_in(self, [
                'CREATE INDEX without CONCURRENTLY would block writes to table "public.shop_person"',
                "about 20000 rows",
                'HINT:  Build it concurrently',
                'CREATE INDEX CONCURRENTLY "person_nick_idx" ON "shop_person" ("nickname")',
                "AddIndexConcurrently",
            ], r.err, "migrate's stderr")
            self.assertFalse(self.recorded(migration))
            self.assertFalse(self.sql("SELECT to_regclass('person_nick_idx') IS NOT NULL")[0][0])
            conn = connect(self.db)
            try:
                with self.assertRaises(psycopg2.Error) as refused:
                    conn.cursor().execute('CREATE INDEX "person_nick_idx" ON "shop_person" ("nickname")')
                self.assertEqual(refused.exception.pgcode, "55000")
            finally:
                conn.close()
        with self.step("the same migration goes through where shop_person is small"):
            small = self.db + "_small"
            self.assertEqual(sql(small, "SELECT count(*) FROM shop_person"), [(0,)])
            v42.manage(small, "migrate", "--noinput")
            self.assertTrue(sql(small, "SELECT to_regclass('person_nick_idx') IS NOT NULL")[0][0])
        with self.step("the safe form on the large table: AddIndexConcurrently, atomic = False"):
            text = text.replace("migrations.AddIndex(", "AddIndexConcurrently(")
            text = text.replace("class Migration(migrations.Migration):\n",
                                "class Migration(migrations.Migration):\n    atomic = False\n")
            text = text.replace("from django.db import migrations",
                                "from django.contrib.postgres.operations import AddIndexConcurrently\n"
                                "from django.db import migrations")
            v42.write("shop/migrations/%s.py" % migration, text)
            self.sqlmigrated.clear()
            self.assertIn("CREATE INDEX CONCURRENTLY", self.sqlmigrate(v42, migration))
            self.assertEqual(self.check(v42, migration), [])
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
            self.assertEqual(self.sql("SELECT indisvalid FROM pg_index"
                                      " WHERE indexrelid = 'person_nick_idx'::regclass"), [(True,)])


class NewDjangoTestCase(DjangoTestCase):
    """A scenario for a feature of a later Django: skipped on older ones."""

    since = (5, 0)

    def setUp(self):
        if DJANGO < self.since:
            self.skipTest("Django %d.%d+" % self.since)
        super().setUp()

    def manifest_of(self, project, table):
        """The columns of `table` in the manifest of `project`'s code."""
        return json.loads(project.manage(self.db, "rollguard_manifest").out)["relations"][table]

    def refused_then_allowed_later(self, new, label, migration, old_label, refusal):
        """The original runs `new` (label) and migrates: refused while
        mirror-2 runs old_label; mirror-2 moves to `new`: allowed."""
        with self.step("the original runs %s: migrate is refused while mirror-2 runs %s"
                       % (label, old_label)):
            self.deploy(new, "original", label)
            r = self.migrate(new, ok=False)
            expect_in(self, refusal + ['Deployment "mirror-2" runs version "%s"' % old_label],
                      r.err, "migrate's stderr")
            self.assertNotIn('Deployment "original"', r.err)
            self.assertFalse(self.recorded(migration))
        with self.step("mirror-2 runs %s: migrate goes through" % label):
            self.deploy(new, "mirror-2", label)
            self.assertEqual(self.check(new, migration), [])
            self.migrate(new)
            self.assertTrue(self.recorded(migration))


class AddFieldDbDefault(NewDjangoTestCase):
    """AddField NOT NULL with db_default= (Django 5.0+): the database keeps
    the default, so it goes through while old code inserts; removing the
    db_default later is refused while a live version relies on it."""

    scenario = "AddField db_default"

    def test_add_field_db_default(self):
        field = "    gdpr_accepted = models.BooleanField(db_default=False)\n"
        v42 = self.derive("v42", replace=[("    tags = ", field + "    tags = ")])
        with self.step("makemigrations writes an AddField; Django sends ADD ... DEFAULT and no DROP DEFAULT"):
            migration = v42.makemigrations(self.db)
            sqltext = self.sqlmigrate(v42, migration)
            self.assertIn('ADD COLUMN "gdpr_accepted" boolean DEFAULT false NOT NULL', sqltext)
            self.assertNotIn("DROP DEFAULT", sqltext)
        with self.step("version 42's manifest: the ORM leaves gdpr_accepted to the database"):
            self.assertEqual(self.manifest_of(v42, "public.shop_person")["gdpr_accepted"],
                             {"writes": False, "nullable": False})
        with self.step("original and mirror-2 run 41, the original 42: check() is empty, migrate goes through"):
            self.deploy_41("original", "mirror-2")
            self.deploy(v42, "original", "42")
            self.assertEqual(self.check(v42, migration), [])
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
        with self.step("version 41 inserts (the default fills in); 42 leaves it to the database or sets it"):
            self.v41.orm(self.db, "from shop.models import Person; Person.objects.create(name='Ada')")
            v42.orm(self.db, "from shop.models import Person; Person.objects.create(name='Grace');"
                             " Person.objects.create(name='Hedy', gdpr_accepted=True)")
            self.assertEqual(self.sql("SELECT name, gdpr_accepted FROM shop_person ORDER BY id"),
                             [("Ada", False), ("Grace", False), ("Hedy", True)])

        v43 = v42.derive(os.path.join(self.root, "v43"), replace=[
            (field, "    gdpr_accepted = models.BooleanField(default=False)\n")])
        with self.step("version 43 trades db_default for default=: Django sends DROP DEFAULT"):
            drop = v43.makemigrations(self.db)
            self.assertIn('ALTER COLUMN "gdpr_accepted" DROP DEFAULT', self.sqlmigrate(v43, drop))
            self.assertEqual(self.manifest_of(v43, "public.shop_person")["gdpr_accepted"],
                             {"writes": True, "nullable": False})
        with self.step("mirror-2 runs 42 too, which relies on the default: CI names both"):
            self.deploy(v42, "mirror-2", "42")
            self.assertEqual(self.check(v43, drop),
                             [("drop default", "public.shop_person", "gdpr_accepted", d, "42")
                              for d in ("mirror-2", "original")])
        self.refused_then_allowed_later(v43, "43", drop, "42", [
            'cannot drop the default of NOT NULL column "gdpr_accepted" of table "public.shop_person"'])
        with self.step("version 43 writes the column itself"):
            v43.orm(self.db, "from shop.models import Person; Person.objects.create(name='Ida')")
            self.assertEqual(self.sql("SELECT gdpr_accepted FROM shop_person WHERE name = 'Ida'"),
                             [(False,)])


class AddGeneratedField(NewDjangoTestCase):
    """GeneratedField (Django 5.0+): added while old code runs, never written
    by the ORM; removing it is refused while a live version reads it."""

    scenario = "GeneratedField"

    def test_generated_field(self):
        field = ("    bmi = models.GeneratedField(\n"
                 "        expression=models.F('weight') / (models.F('height') * models.F('height')),\n"
                 "        output_field=models.FloatField(), db_persist=True)\n")
        v42 = self.derive("v42", replace=[("    tags = ", field + "    tags = ")])
        with self.step("makemigrations writes an AddField: a stored generated column"):
            migration = v42.makemigrations(self.db)
            sqltext = self.sqlmigrate(v42, migration)
            expect_in(self, ['ADD COLUMN "bmi" double precision GENERATED ALWAYS AS', "STORED"],
                      sqltext, "sqlmigrate")
        with self.step("version 42's manifest: the ORM never writes bmi"):
            self.assertEqual(self.manifest_of(v42, "public.shop_person")["bmi"],
                             {"writes": False, "nullable": False})
        with self.step("original and mirror-2 run 41, the original 42: migrate goes through"):
            self.deploy_41("original", "mirror-2")
            self.deploy(v42, "original", "42")
            self.assertEqual(self.check(v42, migration), [])
            self.migrate(v42)
            self.assertTrue(self.recorded(migration))
        with self.step("versions 41 and 42 insert; the database computes bmi"):
            self.v41.orm(self.db, "from shop.models import Person;"
                                  " Person.objects.create(name='Ada', weight=60, height=2)")
            out = v42.orm(self.db, """
                from shop.models import Person
                Person.objects.create(name='Grace', weight=80, height=2)
                print(sorted(Person.objects.values_list('name', 'bmi')))
            """).out
            self.assertEqual(out.strip(), "[('Ada', 15.0), ('Grace', 20.0)]")
        v43 = v42.derive(os.path.join(self.root, "v43"), replace=[(field, "")])
        with self.step("version 43 removes it: RemoveField drops the column"):
            drop = v43.makemigrations(self.db)
            self.assertIn('DROP COLUMN "bmi"', self.sqlmigrate(v43, drop))
        with self.step("mirror-2 runs 42, which reads bmi"):
            self.deploy(v42, "mirror-2", "42")
        self.refused_then_allowed_later(v43, "43", drop, "42", [
            'cannot drop column "bmi" of table "public.shop_person": 1 deployment still uses it'])
        with self.step("bmi is gone"):
            self.assertNotIn("bmi", self.columns("shop_person"))


STOCK = """

class Stock(models.Model):
    pk = models.CompositePrimaryKey("warehouse", "sku")
    warehouse = models.IntegerField()
    sku = models.CharField(max_length=20)
    qty = models.IntegerField(null=True)
"""


class CompositePrimaryKey(NewDjangoTestCase):
    """A model with a composite primary key (Django 5.2+): its manifest lists
    the key's columns as written by the code; RemoveField on it refused
    while a live version uses the column."""

    scenario = "CompositePrimaryKey"
    since = (5, 2)

    def test_composite_primary_key(self):
        v42 = self.derive("v42", models=MODELS_41 + STOCK)
        with self.step("makemigrations writes a CreateModel; the table's key is (warehouse, sku)"):
            migration = v42.makemigrations(self.db)
            self.assertIn("models.CompositePrimaryKey", v42.read("shop/migrations/%s.py" % migration))
            self.assertIn('PRIMARY KEY ("warehouse", "sku")', self.sqlmigrate(v42, migration))
        with self.step("version 42's manifest: the key's columns, written, NOT NULL; no id"):
            self.assertEqual(self.manifest_of(v42, "public.shop_stock"), {
                "warehouse": {"writes": True, "nullable": False},
                "sku": {"writes": True, "nullable": False},
                "qty": {"writes": True, "nullable": True},
            })
        with self.step("original and mirror-2 run 42 (CreateModel goes through); the ORM uses the key"):
            self.deploy_41("original", "mirror-2")
            self.migrate(v42)
            self.deploy(v42, "original", "42")
            self.deploy(v42, "mirror-2", "42")
            out = v42.orm(self.db, """
                from shop.models import Stock
                Stock.objects.create(warehouse=1, sku='tea', qty=3)
                print(Stock.objects.get(pk=(1, 'tea')).qty)
            """).out
            self.assertEqual(out.strip(), "3")
        v43 = v42.derive(os.path.join(self.root, "v43"), replace=[
            ("    qty = models.IntegerField(null=True)\n", "")])
        with self.step("version 43 removes qty: RemoveField"):
            drop = v43.makemigrations(self.db)
            self.assertIn('DROP COLUMN "qty"', self.sqlmigrate(v43, drop))
        self.refused_then_allowed_later(v43, "43", drop, "42", [
            'cannot drop column "qty" of table "public.shop_stock": 1 deployment still uses it'])
        with self.step("qty is gone; version 43 inserts by the key"):
            self.assertEqual(self.columns("shop_stock"), ["warehouse", "sku"])
            v43.orm(self.db, "from shop.models import Stock; Stock.objects.create(warehouse=2, sku='tea')")
            self.assertEqual(self.sql("SELECT count(*) FROM shop_stock"), [(2,)])


if __name__ == "__main__":
    main(__name__)
