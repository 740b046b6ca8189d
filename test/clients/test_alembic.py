"""rollguard with Alembic, as a team without Django uses it.

SQLAlchemy models; migrations written by `alembic revision --autogenerate`;
manifests written by hand; deploy steps with psql.  The drop scenario: app-a
and app-b run version 1, which uses person.weight; version 2 no longer does,
and its migration (op.drop_column) is refused until both run version 2.
Then the same without any manifest: an inferred contract amended by
rollguard.stop_using().

Run by test/scenario/alembic.sh (which starts the cluster); by hand:
    sh test/clients/run.sh test_alembic
"""
import json
import os
import tempfile

from rgtest import (PYTHON, TMP, CodeVersion, StepsTestCase, create_database, expect_in, main,
                    psql, run, sql)

MODELS_1 = '''\
from sqlalchemy import Column, Float, Integer, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Person(Base):
    __tablename__ = "person"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    weight = Column(Float)
'''

# The application code of a version: adds a person, prints everybody.
APP = '''\
import json
import os
import sys

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from models import Person

engine = create_engine(os.environ["APP_DATABASE_URL"])
with Session(engine) as session:
    session.add(Person(**json.loads(sys.argv[1])))
    session.commit()
    people = session.query(Person).order_by(Person.id)
    print([{k: getattr(p, k) for k in sorted(Person.__table__.columns.keys()) if k != "id"}
           for p in people])
'''

# What the team writes by hand: the columns each version's code uses.
MANIFEST_1 = {"relations": {"public.person": {
    "id": {"writes": False, "nullable": False},
    "name": {"nullable": False},
    "weight": {},
}}}
MANIFEST_2 = {"relations": {"public.person": {
    "id": {"writes": False, "nullable": False},
    "name": {"nullable": False},
}}}

# One deploy step, as the pipeline runs it: register the build with its
# manifest and record the deployment, in one transaction.
DEPLOY = r"""
    \set manifest `cat :'manifest_file'`
    BEGIN;
    SELECT rollguard.register_version(:'version', :'manifest');
    SELECT rollguard.deploy(:'deployment', :'version');
    COMMIT;
"""


class AlembicProject(CodeVersion):
    """One code version: SQLAlchemy models, the app, Alembic's migrations."""

    models_file = "models.py"

    def __init__(self, path, db):
        super().__init__(path)
        self.db = db

    @property
    def env(self):
        return {"APP_DATABASE_URL": "postgresql+psycopg2://%s@/%s?host=%s&port=%s" % (
            os.environ.get("PGUSER", "postgres"), self.db, os.environ["PGHOST"],
            os.environ.get("PGPORT", "5432"))}

    @classmethod
    def create(cls, path, db, models):
        os.makedirs(path)
        project = cls(path, db)
        project.alembic("init", "migrations")
        # The database URL comes from the environment, as in most deployments.
        env_py = project.read("migrations/env.py")
        env_py = env_py.replace(
            "config = context.config\n",
            'config = context.config\nconfig.set_main_option("sqlalchemy.url", '
            'os.environ["APP_DATABASE_URL"])\n', 1)
        env_py = env_py.replace("target_metadata = None\n",
                                "from models import Base\ntarget_metadata = Base.metadata\n", 1)
        project.write("migrations/env.py", "import os\n" + env_py)
        project.write("models.py", models)
        project.write("app.py", APP)
        return project

    def alembic(self, *args, ok=True):
        return run([PYTHON, "-m", "alembic"] + list(args), cwd=self.path, env=self.env, ok=ok)

    def revision(self, message):
        """alembic revision --autogenerate: the new revision's file text."""
        out = self.alembic("revision", "--autogenerate", "-m", message).out
        path = out.split("Generating ", 1)[1].split(" ...", 1)[0]
        with open(path) as f:
            return f.read()

    def app(self, **person):
        return run([PYTHON, "app.py", json.dumps(person)], cwd=self.path, env=self.env).out.strip()

    def manifest(self, manifest):
        path = os.path.join(self.path, "manifest.json")
        with open(path, "w") as f:
            json.dump(manifest, f, indent=2)
        return path


class Alembic(StepsTestCase):
    """op.drop_column refused while app-b runs version 1"""

    scenario = "Alembic"

    def deploy(self, project, deployment, version, manifest, ok=True):
        return psql(project.db, DEPLOY, ok=ok, deployment=deployment, version=version,
                    manifest_file=project.manifest(manifest))

    def test_drop_column(self):
        db = "people"
        create_database(db)
        root = tempfile.mkdtemp(prefix="alembic-", dir=TMP)
        v1 = AlembicProject.create(os.path.join(root, "v1"), db, MODELS_1)
        with self.step("version 1: alembic revision --autogenerate, upgrade head"):
            v1.revision("create person")
            v1.alembic("upgrade", "head")
            rev1 = sql(db, "SELECT version_num FROM alembic_version")[0][0]
        with self.step("app-a and app-b run version 1 (manifest written by hand, psql)"):
            self.deploy(v1, "app-a", "1", MANIFEST_1)
            self.deploy(v1, "app-b", "1", MANIFEST_1)
            self.assertEqual(sql(db, "SELECT deployment, version FROM rollguard.deployments ORDER BY 1"),
                             [("app-a", "1"), ("app-b", "1")])
            v1.app(name="Ada", weight=61.5)

        v2 = v1.derive(os.path.join(root, "v2"), replace=[("    weight = Column(Float)\n", "")])
        with self.step("version 2: autogenerate writes op.drop_column"):
            self.assertIn("op.drop_column('person', 'weight')", v2.revision("drop weight"))
        with self.step("app-a runs version 2"):
            self.deploy(v2, "app-a", "2", MANIFEST_2)
        with self.step("CI dry run: alembic upgrade --sql into rollguard.check() names app-b"):
            # the README's: alembic upgrade "$(alembic current | cut -d' ' -f1):head" --sql
            current = v2.alembic("current").out.split(" ")[0].strip()
            self.assertEqual(current, rev1)
            ddl = v2.alembic("upgrade", "%s:head" % current, "--sql").out
            self.assertIn("ALTER TABLE person DROP COLUMN weight", ddl)
            rows = sql(db, 'SELECT deployment, version, change, relation, "column"'
                           " FROM rollguard.check(%s)", [ddl])
            self.assertEqual(rows, [("app-b", "1", "drop column", "public.person", "weight")])
        with self.step("alembic upgrade head is refused while app-b runs version 1"):
            r = v2.alembic("upgrade", "head", ok=False)
            expect_in(self, [
                'cannot drop column "weight" of table "public.person": 1 deployment still uses it',
                'Deployment "app-b" runs version "1", which uses public.person.weight.',
                # version 2 is registered and no longer uses it: the hint says
                # to ship the drop later, not to roll out first
                'HINT:  Version "2" and later no longer use it, but the deployments above still run older versions',
            ], r.err, "alembic's stderr")
        with self.step("alembic_version unchanged; the column and its data intact"):
            self.assertEqual(sql(db, "SELECT version_num FROM alembic_version"), [(rev1,)])
            self.assertEqual(sql(db, "SELECT name, weight FROM person"), [("Ada", 61.5)])
        with self.step("version 1's code keeps inserting and reading"):
            self.assertEqual(v1.app(name="Grace", weight=70.2),
                             "[{'name': 'Ada', 'weight': 61.5}, {'name': 'Grace', 'weight': 70.2}]")
        with self.step("app-b runs version 2: alembic upgrade head goes through"):
            self.deploy(v2, "app-b", "2", MANIFEST_2)
            v2.alembic("upgrade", "head")
            self.assertNotEqual(sql(db, "SELECT version_num FROM alembic_version"), [(rev1,)])
            self.assertEqual(sql(db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'person'::regclass"
                                     " AND attname = 'weight' AND NOT attisdropped"), [(0,)])
            self.assertIn("{'name': 'Hedy'}", v2.app(name="Hedy"))
        with self.step("rolling app-b back to version 1 is refused"):
            r = self.deploy(v1, "app-b", "1", MANIFEST_1, ok=False)
            expect_in(self, ['ERROR:  cannot deploy version "1" to deployment "app-b"',
                             "Column public.person.weight no longer exists"], r.err, "psql's stderr")
            self.assertEqual(sql(db, "SELECT version FROM rollguard.deployments WHERE deployment = 'app-b'"),
                             [("2",)])

    def test_without_manifest(self):
        """an inferred contract, amended by stop_using"""
        db = "people_inferred"
        create_database(db)
        root = tempfile.mkdtemp(prefix="alembic-inferred-", dir=TMP)
        v1 = AlembicProject.create(os.path.join(root, "v1"), db, MODELS_1)
        v1.revision("create person")
        v1.alembic("upgrade", "head")
        v2 = v1.derive(os.path.join(root, "v2"), replace=[("    weight = Column(Float)\n", "")])
        v2.revision("drop weight")
        with self.step("without a manifest, version 1's contract is every column there is"):
            psql(db, "SELECT rollguard.deploy('app', '1');")
            # person's three, and alembic_version.version_num
            self.assertEqual(sql(db, "SELECT contract, columns FROM rollguard.versions"),
                             [("inferred", 4)])
        with self.step("alembic upgrade head is refused"):
            r = v2.alembic("upgrade", "head", ok=False)
            expect_in(self, ['cannot drop column "weight" of table "public.person"',
                             'Deployment "app" runs version "1"'], r.err, "alembic's stderr")
        with self.step("stop_using(person, weight, '2'), deploy 2: upgrade goes through"):
            psql(db, """
                SELECT rollguard.stop_using('person', 'weight', '2');
                SELECT rollguard.deploy('app', '2');
            """)
            v2.alembic("upgrade", "head")
            self.assertEqual(sql(db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'person'::regclass"
                                     " AND attname = 'weight' AND NOT attisdropped"), [(0,)])


if __name__ == "__main__":
    main(__name__)
