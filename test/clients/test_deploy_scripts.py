"""contrib/deploy/: the deploy scripts, driven with a generated Django project.

divio_mirror.sh releases mirrors of one codebase (SITE_ID 1, 2, 3) through
an expand/contract sequence; rolling_update.sh rolls a deployment over to a
new version, and calls the rollout off when the migration is refused, the
new instances do not start or the script is interrupted.  The migrate /
start / stop steps are the scripts' environment variables (MIGRATE_CMD,
START_CMD, STOP_OLD_CMD), driven here.

Run by test/scenario/deploy_scripts.sh (which starts the cluster); by hand:
    sh test/clients/run.sh test_deploy_scripts
"""
import os
import tempfile

from rgtest import (PYTHON, REPO, TMP, Project, StepsTestCase, create_database, database_url,
                    expect_in, main, run, sql)

MODELS_41 = '''\
from django.db import models


class Person(models.Model):
    name = models.CharField(max_length=100)
    weight = models.FloatField(null=True)
'''
NO_WEIGHT = [("    weight = models.FloatField(null=True)\n", "")]


def script(name, project, db, *args, ok=True, **env):
    """Runs contrib/deploy/NAME ARGS... in the project's directory (the build)."""
    full_env = {"DATABASE_URL": database_url(db), "MANAGE": "%s manage.py" % PYTHON}
    full_env.update({k: str(v) for k, v in env.items()})
    return run(["sh", os.path.join(REPO, "contrib", "deploy", name)] + list(args),
               cwd=project.path, env=full_env, ok=ok)


class DeployScriptTestCase(StepsTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix=type(self).__name__ + "-", dir=TMP)

    def live(self):
        return sorted(sql(self.db, "SELECT deployment, version, state FROM rollguard.deployments"))

    def has_weight(self):
        return bool(sql(self.db, "SELECT 1 FROM pg_attribute WHERE attrelid = 'shop_person'::regclass"
                                 " AND attname = 'weight' AND NOT attisdropped"))

    def project(self, name, base=None, **kw):
        path = os.path.join(self.root, name)
        return base.derive(path, **kw) if base else Project.create(path, MODELS_41)


class DivioMirror(DeployScriptTestCase):
    """divio_mirror.sh: three mirrors through expand/contract"""

    scenario = "divio_mirror.sh"

    def divio(self, project, site, version, ok=True, **env):
        return script("divio_mirror.sh", project, self.db, ok=ok, SITE_ID=site, VERSION=version, **env)

    def test_mirrors(self):
        self.db = "divio"
        create_database(self.db)
        v41 = self.project("v41")
        v41.makemigrations(self.db)
        with self.step("version 41 to mirrors 1, 2, 3: the first one's migrate creates the tables"):
            for site in (1, 2, 3):
                r = self.divio(v41, site, "41")
                self.assertIn('rollguard: deployment "mirror-%d" runs "41" (running)' % site, r.out)
            self.assertEqual(self.live(), [("mirror-%d" % s, "41", "running") for s in (1, 2, 3)])
            self.assertTrue(self.has_weight())

        bad = self.project("v42-with-drop", v41, replace=NO_WEIGHT)
        bad.makemigrations(self.db)
        with self.step("a release that stops using weight AND drops it: refused at migrate, nothing recorded"):
            r = self.divio(bad, 1, "42", ok=False)
            self.assertEqual(r.rc, 1)
            expect_in(self, ['cannot drop column "weight" of table "public.shop_person": 3 deployments',
                             'Deployment "mirror-1" runs version "41"',
                             "mirror-1 keeps running its old version"], r.err)
            self.assertEqual(self.live(), [("mirror-%d" % s, "41", "running") for s in (1, 2, 3)])
            self.assertTrue(self.has_weight())

        v42 = self.project("v42", v41, replace=NO_WEIGHT)
        with self.step("expand: 42 stops using weight (no migration yet), to every mirror"):
            self.divio(v42, 1, "42")
            self.divio(v42, 2, "42")
            manifest = os.path.join(self.root, "manifest-42.json")
            with open(manifest, "w") as f:
                f.write(v42.manage(self.db, "rollguard_manifest").out)
            r = self.divio(v42, 3, "42", ROLLGUARD_VIA="psql", MANIFEST=manifest)
            self.assertIn('rollguard: deployment "mirror-3" runs "42" (running)', r.out)
            self.assertEqual(self.live(), [("mirror-%d" % s, "42", "running") for s in (1, 2, 3)])
            self.assertTrue(self.has_weight())

        v43 = self.project("v43", v42)
        v43.makemigrations(self.db)
        with self.step("contract: 43 carries the RemoveField; mirror-1's migrate drops the column"):
            self.divio(v43, 1, "43")
            self.assertFalse(self.has_weight())
        with self.step("mirrors 2 and 3 follow"):
            self.divio(v43, 2, "43")
            self.divio(v43, 3, "43")
            self.assertEqual(self.live(), [("mirror-%d" % s, "43", "running") for s in (1, 2, 3)])
        with self.step("releasing 41 again to mirror-2 is refused before it serves"):
            r = self.divio(v41, 2, "41", ok=False)
            expect_in(self, ['cannot deploy version "41" to deployment "mirror-2"',
                             "Column public.shop_person.weight no longer exists",
                             "do not switch to this build"], r.err)
            self.assertIn(("mirror-2", "43", "running"), self.live())
        with self.step("a failing MIGRATE_CMD records nothing"):
            r = self.divio(v43, 4, "43", ok=False, MIGRATE_CMD="echo migrating; exit 3")
            self.assertIn("migrating", r.out)
            self.assertNotIn("mirror-4", [d for d, _, _ in self.live()])


class RollingUpdate(DeployScriptTestCase):
    """rolling_update.sh: begin, migrate, start, stop, finish -- or abort"""

    scenario = "rolling_update.sh"

    def rolling(self, project, version, ok=True, **env):
        marker = os.path.join(self.root, "started-%s" % version)
        env.setdefault("START_CMD", 'psql "$DATABASE_URL" -XAtc "SELECT version || \':\' || state'
                                    ' FROM rollguard.deployments ORDER BY 1" > %s' % marker)
        env.setdefault("STOP_OLD_CMD", "echo stopping the old instances")
        return script("rolling_update.sh", project, self.db, ok=ok, VERSION=version, **env), marker

    def test_rolling_update(self):
        self.db = "rolling"
        create_database(self.db)
        v41 = self.project("v41")
        v41.makemigrations(self.db)
        v41.manage(self.db, "migrate", "--noinput", "-v", "0")
        with self.step("web runs 41 (rollguard_step.sh deploy)"):
            r = script("rollguard_step.sh", v41, self.db, "deploy", DEPLOYMENT="web", VERSION="41")
            self.assertIn('rollguard: deployment "web" runs "41" (running)', r.out)

        v42 = self.project("v42", v41, replace=[
            ("    weight = ", "    nickname = models.CharField(max_length=50, null=True)\n    weight = ")])
        expand = v42.makemigrations(self.db)
        with self.step("42 rolls out: both live while the new instances start, then only 42"):
            r, marker = self.rolling(v42, "42")
            with open(marker) as f:
                self.assertEqual(f.read().split("\n")[:2], ["41:running", "42:rolling out"])
            self.assertEqual(self.live(), [("web", "42", "running")])
            self.assertTrue(sql(self.db, "SELECT 1 FROM django_migrations WHERE name = %s", [expand]))
            self.assertIn("stopping the old instances", r.out)

        v43 = self.project("v43", v42, replace=NO_WEIGHT)
        v43.makemigrations(self.db)
        with self.step("43's migration drops what 42 uses: refused, rollout aborted, nothing started"):
            r, marker = self.rolling(v43, "43", ok=False)
            self.assertEqual(r.rc, 1)
            expect_in(self, ['cannot drop column "weight"', 'Deployment "web" runs version "42"',
                             "the migration failed: aborting the rollout of version 43"], r.err)
            self.assertFalse(os.path.exists(marker))
            self.assertEqual(self.live(), [("web", "42", "running")])

        v44 = self.project("v44", v42)
        manifest = os.path.join(self.root, "manifest-44.json")
        with open(manifest, "w") as f:
            f.write(v44.manage(self.db, "rollguard_manifest").out)
        psql_env = dict(ROLLGUARD_VIA="psql", MANIFEST=manifest, MIGRATE_CMD=":")
        with self.step("the new instances do not start (psql mode): aborted"):
            r, _ = self.rolling(v44, "44", ok=False, START_CMD="exit 3", **psql_env)
            self.assertIn("the new instances did not start: aborting", r.err)
            self.assertEqual(self.live(), [("web", "42", "running")])
        with self.step("interrupted while starting: aborted"):
            r, _ = self.rolling(v44, "44", ok=False, START_CMD="kill -TERM $PPID", **psql_env)
            self.assertIn("interrupted: aborting", r.err)
            self.assertEqual(self.live(), [("web", "42", "running")])
        with self.step("the old instances do not stop: the rollout stays open"):
            r, _ = self.rolling(v44, "44", ok=False, STOP_OLD_CMD="exit 1", **psql_env)
            self.assertIn("the rollout stays open", r.err)
            self.assertEqual(self.live(), [("web", "42", "running"), ("web", "44", "rolling out")])
        with self.step("finished by hand with rollguard_step.sh finish"):
            r = script("rollguard_step.sh", v44, self.db, "finish", DEPLOYMENT="web", VERSION="44",
                       ROLLGUARD_VIA="psql")
            self.assertIn('rollguard: deployment "web" runs "44" (running)', r.out)
            self.assertEqual(self.live(), [("web", "44", "running")])


if __name__ == "__main__":
    main(__name__)
