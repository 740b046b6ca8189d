"""The procedure of README and contrib/deploy/divio_mirror.sh, with real Django.

Three Divio mirrors share one database and one database role (the only one
Divio gives: it holds rollguard_deploy), each with its own ROLLGUARD_KEY, and
settings that tag every connection (rollguard_django.tags.tag_databases).
Every release goes through contrib/deploy/divio_mirror.sh, and every build
passes `makemigrations --check --dry-run` first, as CI would:

  41  Person(name, weight NOT NULL)
  42  the code stops using weight and the model Coupon: makemigrations
      writes RemoveField and DeleteModel, which would be refused on every
      mirror (shown); made StopUsingField and StopUsingModel, the release
      goes through everywhere, weight (now nullable) and shop_coupon stay,
      42 inserts
  43  DropColumn and DropTable: go through once every mirror runs 42 -- but
      not while a container of 41 is still connected (its tagged session)
  a stale mirror is removed with its own key; another mirror's key, or none,
  cannot remove it or record a deploy step for it.

Run on Debian's Django 3.2 and on 5.2 unpacked from a newer suite
(test/scenario/procedure.sh); by hand:
    sh test/clients/run.sh test_procedure
    RG_DJANGO=5.2 sh test/clients/run.sh test_procedure
"""
import json
import os
import subprocess
import tempfile
import time

from rgtest import (PYTHON, REPO, SETTINGS, TMP, Project, StepsTestCase, connect, database_url,
                    django_version,
                    expect_in, main, psql, pythonpath, run, sql)

ROLE = "divio_app"
DB = "divio"

MODELS_41 = '''\
from django.db import models


class Person(models.Model):
    name = models.CharField(max_length=100)
    weight = models.FloatField()


class Coupon(models.Model):
    code = models.CharField(max_length=20)
'''
NO_WEIGHT = [("    weight = models.FloatField()\n", ""),
             ("\n\nclass Coupon(models.Model):\n    code = models.CharField(max_length=20)\n", "")]

TAGGED_SETTINGS = SETTINGS + '''
# Every connection says which mirror and build it is (DEPLOYMENT or
# mirror-$SITE_ID, and VERSION): doc/django.md, "Tagging connections".
from rollguard_django.tags import tag_databases
tag_databases(DATABASES)
'''

KEYS = {1: "key-of-mirror-1-5b1f0c3a9e", 2: "key-of-mirror-2-77d2e41c08", 3: "key-of-mirror-3-c9a04be613"}


class Procedure(StepsTestCase):
    """Remove a field in two releases through divio_mirror.sh, one role, keyed mirrors"""

    scenario = "procedure"

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="procedure-", dir=TMP)
        conn = connect("postgres")
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE %s LOGIN" % ROLE)
            cur.execute("CREATE DATABASE %s OWNER %s" % (DB, ROLE))
        conn.close()
        # The platform's DBA (a superuser) creates the extension once and
        # makes the one application role a deployer.
        sql(DB, "CREATE EXTENSION rollguard")
        sql(DB, "GRANT rollguard_deploy, rollguard_tag TO %s" % ROLE)

    def project(self, name, base=None, **kw):
        path = os.path.join(self.root, name)
        if base is not None:
            return base.derive(path, **kw)
        project = Project.create(path, MODELS_41)
        project.write("settings.py", TAGGED_SETTINGS)
        return project

    def env(self, site=None, **extra):
        env = {"DATABASE_URL": database_url(DB, ROLE), "MANAGE": "%s manage.py" % PYTHON}
        if site is not None:
            env.update(SITE_ID=str(site), ROLLGUARD_KEY=KEYS[site])
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def divio(self, project, site, version, ok=True, **extra):
        return run(["sh", os.path.join(REPO, "contrib", "deploy", "divio_mirror.sh")],
                   cwd=project.path, env=self.env(site, VERSION=version, **extra), ok=ok)

    def manage(self, project, *args, ok=True, **extra):
        return run([PYTHON, "manage.py"] + list(args), cwd=project.path, env=self.env(**extra), ok=ok)

    def ci_check(self, project):
        """The CI gate: the models and the migrations agree."""
        r = self.manage(project, "makemigrations", "--check", "--dry-run")
        self.assertIn("No changes detected", r.out)

    def live(self):
        return sorted(sql(DB, "SELECT deployment, version, state FROM rollguard.deployments"))

    def weight(self):
        """(exists, nullable) of shop_person.weight."""
        rows = sql(DB, "SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = 'shop_person'::regclass"
                       " AND attname = 'weight' AND NOT attisdropped")
        return (True, rows[0][0]) if rows else (False, None)

    def table_exists(self, table):
        return sql(DB, "SELECT to_regclass(%s) IS NOT NULL", [table])[0][0]

    def test_procedure(self):
        v41 = self.project("v41")
        self.manage(v41, "makemigrations", "shop")
        with self.step("41: CI gate green; divio_mirror.sh to mirrors 1, 2, 3 (each binds its key)"):
            self.ci_check(v41)
            for site in (1, 2, 3):
                r = self.divio(v41, site, "41")
                self.assertIn('rollguard: deployment "mirror-%d" runs "41" (running)' % site, r.out)
            self.assertEqual(self.live(), [("mirror-%d" % s, "41", "running") for s in (1, 2, 3)])
            self.assertEqual(sorted(r[0] for r in sql(DB, "SELECT deployment FROM rollguard.deployment_keys")),
                             ["mirror-1", "mirror-2", "mirror-3"])

        with self.step("tags: a mirror's connections carry its deployment and build, observing off for migrate"):
            code = ("from django.db import connection\n"
                    "with connection.cursor() as c:\n"
                    "    c.execute(\"SELECT current_setting('rollguard.deployment'), current_setting('rollguard.version'),"
                    " current_setting('rollguard.observe')\")\n"
                    "    print('|'.join(c.fetchone()))\n")
            r = self.manage(v41, "shell", "-c", code, SITE_ID=2, VERSION="41")
            self.assertEqual(r.out.strip().splitlines()[-1], "mirror-2|41|on")
            r = self.manage(v41, "shell", "-c", code, SITE_ID=2, VERSION="41", ROLLGUARD_OBSERVE="off")
            self.assertEqual(r.out.strip().splitlines()[-1], "mirror-2|41|off")

        # Release 42: the code stops using weight.
        v42 = self.project("v42", v41, replace=NO_WEIGHT)
        self.manage(v42, "makemigrations", "shop")
        migration = [n for n in os.listdir(os.path.join(v42.path, "shop", "migrations"))
                     if n.startswith("0002")][0]
        generated = v42.read("shop/migrations/" + migration)
        with self.step("42 as makemigrations wrote it (RemoveField, DeleteModel): refused on mirror-1, its own 41 among the blockers"):
            self.assertIn("migrations.RemoveField(", generated)
            self.assertIn("migrations.DeleteModel(", generated)
            r = self.divio(v42, 1, "42", ok=False)
            expect_in(self, ["3 deployments still use it",
                             'Deployment "mirror-1" runs version "41"',
                             # the hint knows the situation (issue 16): never "roll out first"
                             'HINT:  Version "42" and later no longer use it, but the deployments above still run '
                             'older versions.',
                             "StopUsingField or StopUsingModel in one release",
                             "mirror-1 keeps running its old version"], r.err)
            self.assertNotIn("Roll out a version that no longer uses", r.err)
            self.assertTrue(self.table_exists("shop_coupon"))
            self.assertEqual(self.weight(), (True, False))
            self.assertEqual(self.live(), [("mirror-%d" % s, "41", "running") for s in (1, 2, 3)])

        with self.step("the recipe: RemoveField, DeleteModel become StopUsingField, StopUsingModel; CI gate still green; "
                       "sqlmigrate drops only NOT NULL"):
            v42.write("shop/migrations/" + migration, generated.replace(
                "from django.db import migrations",
                "from django.db import migrations\n"
                "from rollguard_django.operations import StopUsingField, StopUsingModel",
            ).replace("migrations.RemoveField(", "StopUsingField(").replace(
                "migrations.DeleteModel(", "StopUsingModel("))
            self.ci_check(v42)
            r = self.manage(v42, "sqlmigrate", "shop", migration[:-3])
            self.assertIn('ALTER TABLE "shop_person" ALTER COLUMN "weight" DROP NOT NULL', r.out)
            self.assertNotIn("DROP COLUMN", r.out)
            self.assertNotIn("DROP TABLE", r.out)

        with self.step("42 to mirror-1: migrate goes through, weight stays (nullable), 42 inserts without it"):
            r = self.divio(v42, 1, "42")
            self.assertIn('rollguard: deployment "mirror-1" runs "42" (running)', r.out)
            self.assertEqual(self.weight(), (True, True))
            self.assertTrue(self.table_exists("shop_coupon"))
            self.manage(v42, "shell", "-c", "from shop.models import Person; Person.objects.create(name='Ada')")
        with self.step("41 on mirrors 2 and 3 keeps reading and writing weight"):
            self.manage(v41, "shell", "-c",
                        "from shop.models import Person\n"
                        "Person.objects.create(name='Grace', weight=70.2)\n"
                        "print(sorted((p.name, p.weight) for p in Person.objects.all()))")
        with self.step("42 to mirrors 2 and 3"):
            self.divio(v42, 2, "42")
            self.divio(v42, 3, "42")
            self.assertEqual(self.live(), [("mirror-%d" % s, "42", "running") for s in (1, 2, 3)])

        # Release 43: the drop.
        v43 = self.project("v43", v42)
        self.manage(v43, "makemigrations", "shop", "--empty", "-n", "drop_person_weight")
        path = "shop/migrations/0003_drop_person_weight.py"
        text = v43.read(path)
        v43.write(path, text.replace(
            "from django.db import migrations",
            "from django.db import migrations\nfrom rollguard_django.operations import DropColumn, DropTable",
        ).replace("operations = [\n    ]",
                  'operations = [\n        DropColumn(model_name="person", column="weight"),\n'
                  '        DropTable(table="shop_coupon"),\n    ]'))
        with self.step("43 carries DropColumn, DropTable; CI gate green; sqlmigrate shows Django's own DROP COLUMN, DROP TABLE"):
            self.ci_check(v43)
            r = self.manage(v43, "sqlmigrate", "shop", "0003_drop_person_weight")
            self.assertIn('ALTER TABLE "shop_person" DROP COLUMN "weight" CASCADE', r.out)
            self.assertIn('DROP TABLE "shop_coupon" CASCADE', r.out)

        with self.step("a container of 41 still connected (tagged mirror-3@41): 43's drop is refused"):
            old = subprocess.Popen(
                [PYTHON, "manage.py", "shell", "-c",
                 "import sys, time\nfrom django.db import connection\nconnection.ensure_connection()\n"
                 "print('connected', flush=True)\nsys.stdin.readline()"],
                cwd=v41.path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env=dict(os.environ, PYTHONPATH=pythonpath(), PYTHONDONTWRITEBYTECODE="1",
                         **self.env(SITE_ID=3, VERSION="41")))
            try:
                line = ""
                while line.strip() != "connected" and old.poll() is None:  # Django 5.2's shell
                    line = old.stdout.readline()                           # says more first
                self.assertEqual(line.strip(), "connected")
                r = self.divio(v43, 1, "43", ok=False)
                expect_in(self, ['cannot drop column "weight"',
                                 'Deployment "mirror-3" runs version "41" (connected now'], r.err)
                self.assertEqual(self.weight(), (True, True))
            finally:
                old.stdin.close()
                old.wait(timeout=30)
        with self.step("once it is gone, 43 goes through on mirror-1: the column and the table are dropped"):
            for _ in range(50):   # the backend exits a moment after the client
                if not sql(DB, "SELECT 1 FROM rollguard.sessions WHERE version = '41'"):
                    break
                time.sleep(0.1)
            self.divio(v43, 1, "43")
            self.assertEqual(self.weight(), (False, None))
            self.assertFalse(self.table_exists("shop_coupon"))
            self.divio(v43, 2, "43")
            self.ci_check(v43)

        with self.step("the stale mirror-3: nobody without its key can remove it or record a step for it"):
            r = psql(DB, "SELECT rollguard.remove_deployment('mirror-3');", ok=False, as_user=ROLE)
            expect_in(self, ['deployment "mirror-3" is bound to a key', "rollguard.use_key('mirror-3'"], r.err)
            r = self.divio(v43, 3, "43", ok=False, ROLLGUARD_KEY=KEYS[1])
            expect_in(self, ['wrong key for deployment "mirror-3"'], r.err)
            r = psql(DB, """
                BEGIN;
                SELECT rollguard.use_key('mirror-1', :'key');
                SELECT rollguard.remove_deployment('mirror-3');
                COMMIT;""", ok=False, as_user=ROLE, key=KEYS[1])
            expect_in(self, ['deployment "mirror-3" is bound to a key'], r.err)
            self.assertIn(("mirror-3", "42", "running"), self.live())
        with self.step("with its own key, mirror-3 is removed (remove_deployment)"):
            psql(DB, """
                BEGIN;
                SELECT rollguard.use_key('mirror-3', :'key');
                SELECT rollguard.remove_deployment('mirror-3');
                COMMIT;""", as_user=ROLE, key=KEYS[3])
            self.assertEqual(self.live(), [("mirror-1", "43", "running"), ("mirror-2", "43", "running")])
        with self.step("a rollback of mirror-2 to 41 is refused before it serves"):
            r = self.divio(v41, 2, "41", ok=False)
            expect_in(self, ['cannot deploy version "41" to deployment "mirror-2"',
                             "Column public.shop_person.weight no longer exists"], r.err)

FORM_SETTINGS = SETTINGS + '''
from rollguard_django.tags import tag_databases
tag_databases(DATABASES, form=os.environ.get("TAG_FORM", "options"),
              required=bool(os.environ.get("TAG_REQUIRED")))
'''

SHOW_TAGS = ("from django.db import connection\n"
             "with connection.cursor() as c:\n"
             "    c.execute(\"SELECT current_setting('rollguard.deployment'), current_setting('rollguard.version'),"
             " current_setting('application_name')\")\n"
             "    print('|'.join(c.fetchone()))\n"
             "    c.execute('SELECT deployment, version, source FROM rollguard.sessions WHERE pid = pg_backend_pid()')\n"
             "    print('sessions: ' + ';'.join('|'.join(r) for r in c.fetchall()))\n")


class Tags(StepsTestCase):
    """rollguard_django.tags.tag_databases(): both forms, escaping, limits"""

    scenario = "tags"

    def test_tags(self):
        db = "tags"
        conn = connect("postgres")
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % db)
        conn.close()
        sql(db, "CREATE EXTENSION rollguard")
        project = Project.create(tempfile.mkdtemp(prefix="tags-", dir=TMP), MODELS_41)
        project.write("settings.py", FORM_SETTINGS)

        def show(ok=True, **env):
            env = dict({"DATABASE_URL": database_url(db)}, **{k: str(v) for k, v in env.items()})
            r = run([PYTHON, "manage.py", "shell", "-c", SHOW_TAGS], cwd=project.path, env=env, ok=ok)
            return r if not ok else r.out.strip().splitlines()[-2:]

        with self.step("options form: a label with spaces and a backslash arrives intact"):
            self.assertEqual(show(DEPLOYMENT="eu blue", VERSION="2026.11 \\3"),
                             ["eu blue|2026.11 \\3|", "sessions: eu blue|2026.11 \\3|setting"])
        with self.step("SITE_ID names the mirror when DEPLOYMENT is not set"):
            self.assertEqual(show(SITE_ID=7, VERSION="42")[0], "mirror-7|42|")
        with self.step("application_name form: rollguard:DEPLOYMENT@VERSION, seen as a tag"):
            self.assertEqual(show(SITE_ID=2, VERSION="42", TAG_FORM="application_name"),
                             ["||rollguard:mirror-2@42", "sessions: mirror-2|42|application_name"])
        with self.step("application_name form refuses what PostgreSQL would cut (63 bytes) or change"):
            r = show(ok=False, DEPLOYMENT="d" * 50, VERSION="2026.11.20-3", TAG_FORM="application_name")
            expect_in(self, ["ImproperlyConfigured", "longer than 63 bytes"], r.err)
            r = show(ok=False, DEPLOYMENT="m\u00fcnchen", VERSION="42", TAG_FORM="application_name")
            expect_in(self, ["not printable ASCII"], r.err)
        with self.step("no VERSION: untagged, or ImproperlyConfigured with required=True"):
            self.assertEqual(show(SITE_ID=2), ["||", "sessions:"])
            r = show(ok=False, SITE_ID=2, TAG_REQUIRED=1)
            expect_in(self, ["set DEPLOYMENT (or SITE_ID) and VERSION"], r.err)
        with self.step("a bad label is refused in settings, before any connection"):
            r = show(ok=False, DEPLOYMENT=" mirror-2", VERSION="42")
            expect_in(self, ["leading or trailing white space"], r.err)


DEFAULTS_MODELS = """
from django.db import models
from django.db.models.functions import Now


class Ticket(models.Model):
    title = models.CharField(max_length=100)
    state = models.CharField(max_length=10, db_default="open")
    priority = models.IntegerField(default=3, db_default=3)
    opened = models.DateTimeField(db_default=Now())
"""

SHOW_MANIFEST = """
import json
from rollguard_django.manifest import build_manifest
print(json.dumps(build_manifest(schema="public")["relations"]["public.shop_ticket"], sort_keys=True))
"""


class ManifestDefaults(StepsTestCase):
    """The manifest's "writes" for Django 5's db_default: a column the ORM
    leaves to the database default is not written; one with a Python
    default= as well is (the ORM sends that value on every INSERT), so a
    later DROP DEFAULT is not refused for nothing."""

    scenario = "manifest_defaults"

    def test_manifest_defaults(self):
        if django_version() < (5, 0):
            self.skipTest("db_default is Django 5.0+")
        project = Project.create(tempfile.mkdtemp(prefix="defaults-", dir=TMP), DEFAULTS_MODELS)
        r = run([PYTHON, "manage.py", "shell", "-v", "0", "-c", SHOW_MANIFEST], cwd=project.path,
                env={"DATABASE_URL": database_url("postgres")})
        columns = json.loads(r.out.strip().splitlines()[-1])
        with self.step("db_default only: the database writes it"):
            self.assertEqual(columns["state"], {"writes": False, "nullable": False})
            self.assertEqual(columns["opened"], {"writes": False, "nullable": False})
        with self.step("default= and db_default=: the ORM writes it"):
            self.assertEqual(columns["priority"], {"writes": True, "nullable": False})
        with self.step("a plain field: written"):
            self.assertEqual(columns["title"], {"writes": True, "nullable": False})


if __name__ == "__main__":
    main(__name__)
