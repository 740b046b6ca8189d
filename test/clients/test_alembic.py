"""rollguard with Alembic, as a team without Django uses it.

SQLAlchemy models; migrations written by `alembic revision --autogenerate`;
manifests derived from the models and deploy steps recorded by
contrib/sqlalchemy (python3 -m rollguard_sqlalchemy deploy ...); the CI dry
run by its check command (alembic upgrade --sql through rollguard.check()).

The mirror scenario: an original and two mirrors run version 1.  Five
releases each change one thing, with the revision autogenerate writes: drop
a column, rename one (op.alter_column: autogenerate sees a drop and an add),
nullable -> NOT NULL, drop a server default, drop a table.  Each time the
original moves first and its alembic upgrade head is refused while a mirror
runs the version before (alembic_version and the schema untouched, the old
code working), and goes through once both mirrors moved on.

Also: the generator's "writes" checked against the INSERTs the ORM really
sends; the commands' output and errors; the same drop without any manifest
(an inferred contract amended by rollguard.stop_using()).

Run by test/scenario/alembic.sh (which starts the cluster); by hand:
    sh test/clients/run.sh test_alembic [Alembic.test_mirrors ...]
"""
import json
import os
import tempfile

from rgtest import (PYTHON, TMP, CodeVersion, StepsTestCase, create_database, database_url,
                    expect_in, main, psql, run, sql)

MODELS_1 = """\
from sqlalchemy import Column, DateTime, Float, Integer, String, func
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Person(Base):
    __tablename__ = "person"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    weight = Column(Float)
    height = Column(Float)
    nickname = Column(String(50))
    joined = Column(DateTime, nullable=False, server_default=func.now())


class Coupon(Base):
    __tablename__ = "coupon"
    id = Column(Integer, primary_key=True)
    code = Column(String(20), nullable=False)
"""

# The application code of a version: adds a person (and a coupon, while the
# version has them), prints how many there are.
APP = """\
import json
import os
import sys

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

import models

engine = create_engine(os.environ["APP_DATABASE_URL"])
with Session(engine) as session:
    session.add(models.Person(**json.loads(sys.argv[1])))
    if hasattr(models, "Coupon"):
        session.add(models.Coupon(code="SPRING"))
    session.commit()
    print(json.dumps([session.query(models.Person).count(),
                      session.query(models.Coupon).count() if hasattr(models, "Coupon") else None]))
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
        # The database URL comes from the environment, as in most
        # deployments; autogenerate compares server defaults too (Alembic
        # leaves that off unless asked).
        env_py = project.read("migrations/env.py")
        env_py = env_py.replace(
            "config = context.config\n",
            'config = context.config\nconfig.set_main_option("sqlalchemy.url", '
            'os.environ["APP_DATABASE_URL"])\n', 1)
        env_py = env_py.replace("target_metadata = None\n",
                                "from models import Base\ntarget_metadata = Base.metadata\n", 1)
        env_py = env_py.replace("target_metadata=target_metadata",
                                "target_metadata=target_metadata, compare_server_default=True")
        project.write("migrations/env.py", "import os\n" + env_py)
        project.write("models.py", models)
        project.write("app.py", APP)
        return project

    def alembic(self, *args, ok=True):
        return run([PYTHON, "-m", "alembic"] + list(args), cwd=self.path, env=self.env, ok=ok)

    def rollguard(self, *args, ok=True):
        """python3 -m rollguard_sqlalchemy, as the deploy pipeline runs it."""
        return run([PYTHON, "-m", "rollguard_sqlalchemy"] + list(args), cwd=self.path,
                   env=dict(self.env, DATABASE_URL=database_url(self.db)), ok=ok)

    def revision(self, message):
        """alembic revision --autogenerate: (the new revision's path, its text)."""
        out = self.alembic("revision", "--autogenerate", "-m", message).out
        path = out.split("Generating ", 1)[1].split(" ...", 1)[0]
        with open(path) as f:
            return path, f.read()

    def app(self, **person):
        return json.loads(run([PYTHON, "app.py", json.dumps(person)], cwd=self.path,
                              env=self.env).out.strip().splitlines()[-1])

    def deploy(self, deployment, version, ok=True):
        return self.rollguard("deploy", "--metadata", "models:Base", "--deployment", deployment,
                              "--version", version, ok=ok)

    def manifest(self):
        return json.loads(self.rollguard("manifest", "--metadata", "models:Base",
                                         "--schema", "public").out)["relations"]


def schema(db):
    """{table: {column: (is_nullable, column_default)}} of the application's tables."""
    found = {}
    for table, column, nullable, default in sql(db, """
            SELECT table_name, column_name, is_nullable, column_default
              FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name IN ('person', 'coupon')
             ORDER BY 1, ordinal_position"""):
        found.setdefault(table, {})[column] = (nullable, default)
    return found


def head(db):
    return sql(db, "SELECT version_num FROM alembic_version")


# The five releases after version 1: (label, what, edit of the models,
# what autogenerate writes, the statement, rollguard.check()'s change,
# relation and column, the refusal, the schema afterwards).
RELEASES = [
    ("2", "drop a column",
     [("    weight = Column(Float)\n", "")],
     ["op.drop_column('person', 'weight')"], "ALTER TABLE person DROP COLUMN weight",
     ("drop column", "public.person", "weight"),
     'cannot drop column "weight" of table "public.person": 2 deployments still use it',
     lambda s: "weight" not in s["person"]),
    ("3", "rename a column",
     [("    height = Column(Float)\n", "    height_cm = Column(Float)\n")],
     # autogenerate cannot tell a rename from a drop and an add
     ["op.add_column('person', sa.Column('height_cm'", "op.drop_column('person', 'height')"],
     "ALTER TABLE person RENAME height TO height_cm",
     ("rename column", "public.person", "height"),
     'cannot rename column "height" of table "public.person": 2 deployments still use it',
     lambda s: "height" not in s["person"] and "height_cm" in s["person"]),
    ("4", "nullable -> NOT NULL",
     [("    nickname = Column(String(50))\n", "    nickname = Column(String(50), nullable=False)\n")],
     ["op.alter_column('person', 'nickname',", "nullable=False"],
     "ALTER TABLE person ALTER COLUMN nickname SET NOT NULL",
     ("set not null", "public.person", "nickname"),
     'column "nickname" of table "public.person"',
     lambda s: s["person"]["nickname"][0] == "NO"),
    ("5", "drop a server default (the code writes the column instead)",
     [("from sqlalchemy import Column,", "import datetime\n\nfrom sqlalchemy import Column,"),
      ("server_default=func.now())", "default=datetime.datetime.now)")],
     ["op.alter_column('person', 'joined',", "server_default=None"],
     "ALTER TABLE person ALTER COLUMN joined DROP DEFAULT",
     ("drop default", "public.person", "joined"),
     'cannot drop the default of NOT NULL column "joined" of table "public.person"',
     lambda s: s["person"]["joined"] == ("NO", None)),
    ("6", "drop a table",
     [("\n\nclass Coupon(Base):\n    __tablename__ = \"coupon\"\n    id = Column(Integer, primary_key=True)\n"
       "    code = Column(String(20), nullable=False)\n", "")],
     ["op.drop_table('coupon')"], "DROP TABLE coupon",
     ("drop relation", "public.coupon", None),
     'cannot drop table "public.coupon": 2 deployments still use it',
     lambda s: "coupon" not in s),
]

RENAME = """def upgrade() -> None:
    op.alter_column('person', 'height', new_column_name='height_cm')


def downgrade() -> None:
    op.alter_column('person', 'height_cm', new_column_name='height')
"""


class Alembic(StepsTestCase):
    """the original and two mirrors; five autogenerated contract revisions"""

    scenario = "Alembic"

    def test_mirrors(self):
        db = "people"
        create_database(db)
        root = tempfile.mkdtemp(prefix="alembic-", dir=TMP)
        old = AlembicProject.create(os.path.join(root, "v1"), db, MODELS_1)
        with self.step("version 1: alembic revision --autogenerate, upgrade head"):
            old.revision("create person, coupon")
            old.alembic("upgrade", "head")
        with self.step("version 1's manifest, from the models: server default, SERIAL key"):
            rel = old.manifest()
            self.assertEqual(rel["public.person"], {
                "id": {"writes": False, "nullable": False},
                "name": {"writes": True, "nullable": False},
                "weight": {"writes": True, "nullable": True},
                "height": {"writes": True, "nullable": True},
                "nickname": {"writes": True, "nullable": True},
                "joined": {"writes": False, "nullable": False},
            })
            self.assertEqual(set(rel), {"public.person", "public.coupon"})
        with self.step("original, mirror-2 and mirror-3 run version 1 (rollguard_sqlalchemy deploy)"):
            for d in ("original", "mirror-2", "mirror-3"):
                r = old.deploy(d, "1")
                self.assertEqual(r.out.strip(), 'rollguard: deployment "%s" runs "1" (running)'
                                                ' [version "1": 2 relations, 8 columns]' % d)
            self.assertEqual(old.app(name="Ada", weight=61.5, height=1.7, nickname="ada"), [1, 1])

        people = 1
        for (label, what, edit, autogenerated, ddl, blocker, refusal, after) in RELEASES:
            new = old.derive(os.path.join(root, "v" + label), replace=edit)
            name = "version %s, %s" % (label, what)
            with self.step("%s: autogenerate writes %s" % (name, ", ".join(autogenerated))):
                path, text = new.revision(what)
                for needle in autogenerated:
                    self.assertIn(needle, text)
                if label == "3":
                    # what Alembic's documentation says to do for a rename
                    text = text[:text.index("def upgrade()")] + RENAME
                    with open(path, "w") as f:
                        f.write(text)
            if label == "4":
                with self.step("%s: an earlier release filled nickname in" % name):
                    sql(db, "UPDATE person SET nickname = '' WHERE nickname IS NULL")
            before, rev_before = schema(db), head(db)
            with self.step("%s: the original runs it; the CI check names both mirrors (exit 1)" % name):
                new.deploy("original", label)
                pending = os.path.join(new.path, "pending.sql")
                r = new.rollguard("check", "--sql-file", pending, ok=False)
                self.assertEqual(r.rc, 1)
                span = "%s:head" % rev_before[0][0]
                old_label = str(int(label) - 1)
                what = blocker[1] + ("." + blocker[2] if blocker[2] else "")
                lines = r.out.splitlines()
                self.assertEqual(lines[0], "alembic upgrade %s: would be refused: 2 deployments"
                                           " would break (mirror-2, mirror-3)" % span)
                self.assertTrue(lines[1].startswith('  %s %s: deployment "mirror-2" runs version "%s", which '
                                                    % (blocker[0], what, old_label)), lines[1])
                # the SQL it judged: alembic upgrade CURRENT:head --sql
                with open(pending) as f:
                    script = f.read()
                self.assertIn(ddl, script)
                self.assertIn("UPDATE alembic_version", script)
                rows = sql(db, 'SELECT change, relation, "column", deployment, version'
                               " FROM rollguard.check(%s) ORDER BY deployment", [script])
                self.assertEqual(rows, [blocker + (d, old_label) for d in ("mirror-2", "mirror-3")])
            with self.step("%s: alembic upgrade head is refused, naming both mirrors" % name):
                r = new.alembic("upgrade", "head", ok=False)
                expect_in(self, [refusal, 'Deployment "mirror-2" runs version "%s"' % old_label,
                                 'Deployment "mirror-3" runs version "%s"' % old_label, "HINT:  "],
                          r.err, "alembic's stderr")
                if label == "2":
                    # version 2 is registered and no longer uses the column:
                    # ship the drop later, not roll out first
                    expect_in(self, ['HINT:  Version "2" and later no longer use it'], r.err)
                self.assertNotIn('Deployment "original"', r.err)
            with self.step("%s: alembic_version and the schema unchanged; version %s's code works"
                           % (name, old_label)):
                self.assertEqual(head(db), rev_before)
                self.assertEqual(schema(db), before)
                people += 1
                self.assertEqual(old.app(name="Grace", nickname="g")[0], people)
            if label == "2":
                with self.step("%s: mirror-2 runs it: still refused, naming mirror-3 only" % name):
                    new.deploy("mirror-2", label)
                    r = new.alembic("upgrade", "head", ok=False)
                    expect_in(self, ['Deployment "mirror-3" runs version "%s"' % old_label], r.err)
                    self.assertNotIn('Deployment "mirror-2"', r.err)
                    self.assertEqual(head(db), rev_before)
                    self.assertEqual(schema(db), before)
            with self.step("%s: both mirrors run it: the check passes, alembic upgrade head goes through"
                           % name):
                for d in ("mirror-2", "mirror-3") if label != "2" else ("mirror-3",):
                    new.deploy(d, label)
                self.assertEqual(new.rollguard("check").out.splitlines(),
                                 ["alembic upgrade %s: passes" % span])
                new.alembic("upgrade", "head")
                self.assertNotEqual(head(db), rev_before)
                self.assertTrue(after(schema(db)), schema(db))
                people += 1
                self.assertEqual(new.app(name="Hedy", nickname="h")[0], people)
            old = new
        with self.step("the check: nothing left to apply"):
            self.assertEqual(old.rollguard("check").out.splitlines(),
                             ["rollguard: no migrations to apply"])
        with self.step("version 6's manifest: joined is written by the code now"):
            self.assertEqual(old.manifest()["public.person"]["joined"],
                             {"writes": True, "nullable": False})
        with self.step("rolling mirror-2 back to version 5 is refused (coupon is gone)"):
            v5 = AlembicProject(os.path.join(root, "v5"), db)
            r = v5.deploy("mirror-2", "5", ok=False)
            expect_in(self, ['cannot deploy version "5" to deployment "mirror-2"',
                             "public.coupon"], r.err, "stderr")
            self.assertEqual(sql(db, "SELECT version FROM rollguard.deployments"
                                     " WHERE deployment = 'mirror-2'"), [("6",)])

# Every kind of column the generator tells apart, and what the ORM sends.
KINDS = """\
from sqlalchemy import (JSON, Column, Computed, DateTime, FetchedValue, ForeignKey, Identity,
                        Integer, Sequence, String, Table, func, text)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()

tag_link = Table("tag_link", Base.metadata,
                 Column("thing_id", ForeignKey("thing.id"), primary_key=True),
                 Column("tag_id", ForeignKey("tag.id"), primary_key=True),
                 Column("note", String),
                 Column("created", DateTime, server_default=func.now()))


class Tag(Base):
    __tablename__ = "tag"
    id = Column(Integer, Identity(), primary_key=True)
    name = Column(String, nullable=False)


class Thing(Base):
    __tablename__ = "thing"
    id = Column(Integer, primary_key=True)
    name = Column(String, nullable=False)
    note = Column(String)
    state = Column(String, nullable=False, server_default="new")
    flag = Column(String, server_default=FetchedValue())
    py = Column(Integer, default=5)
    both = Column(Integer, default=5, server_default="5")
    made = Column(DateTime, default=func.now())
    counter = Column(Integer, Sequence("thing_counter"))
    doubled = Column(Integer, Computed("py * 2"))
    doc = Column(JSON)
    tags = relationship(Tag, secondary=tag_link)


class Pair(Base):
    __tablename__ = "pair"
    k = Column(String, primary_key=True)
    n = Column(Integer, primary_key=True)
    v = Column(String)


class Numbered(Base):
    __tablename__ = "numbered"
    id = Column(Integer, Sequence("numbered_id"), primary_key=True)
    v = Column(String)


class Partial(Base):
    __tablename__ = "partial"
    __mapper_args__ = {"exclude_properties": ["hidden"]}
    id = Column(Integer, primary_key=True)
    hidden = Column(String)


class Animal(Base):
    __tablename__ = "animal"
    id = Column(Integer, primary_key=True)
    kind = Column(String(10), nullable=False)
    name = Column(String)
    __mapper_args__ = {"polymorphic_on": kind, "polymorphic_identity": "animal"}


class Dog(Animal):
    barks = Column(Integer)
    __mapper_args__ = {"polymorphic_identity": "dog"}
"""

# Creates the tables, inserts with the ORM (each object once with only what
# it must set, once with every optional attribute set to None), prints the
# columns each INSERT named.
INSERTS = """\
import json
import os
import re

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from kinds import Animal, Base, Dog, Numbered, Pair, Partial, Tag, Thing

engine = create_engine(os.environ["APP_DATABASE_URL"])
Base.metadata.create_all(engine)
named = {}


@event.listens_for(engine, "before_cursor_execute")
def record(conn, cursor, statement, parameters, context, executemany):
    m = re.match(r"INSERT INTO (\\w+) (?:\\(([^)]*)\\) VALUES|DEFAULT VALUES)", statement)
    if m:
        cols = [c.strip().strip('"') for c in (m.group(2) or "").split(",") if c.strip()]
        named.setdefault(m.group(1), []).append(sorted(cols))


nones = dict(note=None, state=None, flag=None, py=None, both=None, made=None, doc=None)
with Session(engine) as session:
    for obj in (Thing(name="a", tags=[Tag(name="t")]), Thing(name="b", **nones),
                Pair(k="a", n=1), Pair(k="b", n=2, v=None), Numbered(), Numbered(v=None),
                Partial(), Partial(), Animal(), Dog(barks=None)):
        session.add(obj)
        session.flush()
    session.commit()
print(json.dumps(named))
"""


class ManifestKinds(StepsTestCase):
    """the generator's "writes" is what the ORM's INSERTs name"""

    scenario = "manifest"

    def test_kinds(self):
        db = "kinds"
        create_database(db)
        project = AlembicProject(tempfile.mkdtemp(prefix="kinds-", dir=TMP), db)
        project.write("kinds.py", KINDS)
        project.write("inserts.py", INSERTS)
        with self.step("the manifest: sorted, indented JSON, writes and nullable for every column"):
            out = project.rollguard("manifest", "--metadata", "kinds:Base").out
            self.assertEqual(out.rstrip("\n"), json.dumps(json.loads(out), sort_keys=True, indent=2))
            rel = json.loads(out)["relations"]
            for table, columns in rel.items():
                for column, props in columns.items():
                    self.assertEqual(sorted(props), ["nullable", "writes"], (table, column))
            # bare names without --schema: the server resolves them
            self.assertEqual(sorted(rel), ["animal", "numbered", "pair", "partial", "tag", "tag_link",
                                           "thing"])
            self.assertEqual(rel["thing"], {
                "id": {"writes": False, "nullable": False},       # SERIAL
                "name": {"writes": True, "nullable": False},
                "note": {"writes": True, "nullable": True},       # sent as NULL when unset
                "state": {"writes": False, "nullable": False},    # server_default only
                "flag": {"writes": False, "nullable": True},      # FetchedValue
                "py": {"writes": True, "nullable": True},         # Python default
                "both": {"writes": True, "nullable": True},       # Python and server default
                "made": {"writes": True, "nullable": True},       # SQL expression default
                "counter": {"writes": True, "nullable": True},    # Sequence: nextval() in the INSERT
                "doubled": {"writes": False, "nullable": False},  # Computed
                "doc": {"writes": False, "nullable": True},       # JSON: unset is left out
            })
            self.assertEqual(rel["tag"]["id"], {"writes": False, "nullable": False})    # Identity
            self.assertEqual(rel["numbered"]["id"], {"writes": True, "nullable": False})
            self.assertEqual(rel["pair"], {"k": {"writes": True, "nullable": False},
                                           "n": {"writes": True, "nullable": False},
                                           "v": {"writes": True, "nullable": True}})
            self.assertEqual(rel["tag_link"], {                  # a Core table (secondary)
                "thing_id": {"writes": True, "nullable": False},
                "tag_id": {"writes": True, "nullable": False},
                "note": {"writes": False, "nullable": True},
                "created": {"writes": False, "nullable": True}})
            self.assertEqual(rel["partial"]["hidden"], {"writes": False, "nullable": True})
            # single-table inheritance: Animal's INSERTs leave Dog's column out
            self.assertEqual(rel["animal"]["barks"], {"writes": False, "nullable": True})
            self.assertEqual(rel["animal"]["name"], {"writes": True, "nullable": True})
        with self.step("the ORM's INSERTs: one that sets only what it must names exactly the "
                       "columns marked written; one that sets the rest to None names them too"):
            named = json.loads(run([PYTHON, "inserts.py"], cwd=project.path, env=project.env)
                               .out.strip().splitlines()[-1])
            self.assertEqual(sorted(named), sorted(rel))
            for table, inserts in named.items():
                written = sorted(c for c, p in rel[table].items() if p["writes"])
                self.assertEqual(inserts[0], written, table)
                for cols in inserts[1:]:
                    self.assertLessEqual(set(written), set(cols), table)
            # an explicit None: a server default still fills in, JSON sends 'null'
            self.assertNotIn("state", named["thing"][1])
            self.assertIn("doc", named["thing"][1])
        with self.step("--schema names the schema; the extension takes the manifest as it is"):
            rel = json.loads(project.rollguard("manifest", "--metadata", "kinds:Base.metadata",
                                               "--schema", "public").out)["relations"]
            self.assertIn("public.thing", rel)
            r = project.rollguard("register", "--metadata", "kinds:Base", "--version", "1")
            self.assertEqual(r.out.strip(), 'rollguard: version "1" registered: 7 relations, 28 columns')
            self.assertEqual(sql(db, "SELECT columns FROM rollguard.versions WHERE version = '1'"), [(28,)])


class Commands(StepsTestCase):
    """python3 -m rollguard_sqlalchemy: rollouts, errors"""

    scenario = "commands"

    def test_commands(self):
        db = "commands"
        create_database(db)
        root = tempfile.mkdtemp(prefix="alembic-commands-", dir=TMP)
        v1 = AlembicProject.create(os.path.join(root, "v1"), db, MODELS_1)
        v2 = v1.derive(os.path.join(root, "v2"), replace=[("    weight = Column(Float)\n", "")])
        with self.step("deploy --rollout begin, abort, begin, finish"):
            v1.deploy("web", "1")
            r = v2.rollguard("deploy", "--metadata", "models:Base", "--deployment", "web",
                             "--version", "2", "--rollout", "begin")
            self.assertIn('runs "1" (running), "2" (rolling out)', r.out)
            r = v1.rollguard("deploy", "--deployment", "web", "--version", "2", "--rollout", "abort")
            self.assertEqual(r.out.strip(), 'rollguard: deployment "web" runs "1" (running)')
            v2.rollguard("deploy", "--metadata", "models:Base", "--deployment", "web",
                         "--version", "2", "--rollout", "begin")
            r = v2.rollguard("deploy", "--deployment", "web", "--version", "2", "--rollout", "finish")
            self.assertEqual(r.out.strip(), 'rollguard: deployment "web" runs "2" (running)')
        with self.step("another build under a known label: the server's error, exit 1, nothing recorded"):
            r = v1.deploy("blue", "2", ok=False)
            self.assertEqual(r.rc, 1)
            expect_in(self, ['version "2" is already registered with a different manifest',
                             "DETAIL:  ", "HINT:  ", "(SQLSTATE 42710)"], r.err)
            self.assertNotIn("Traceback", r.err)
            self.assertEqual(sql(db, "SELECT count(*) FROM rollguard.deployments WHERE deployment = 'blue'"),
                             [(0,)])
        with self.step("--manifest FILE registers that file"):
            path = os.path.join(root, "manifest.json")
            with open(path, "w") as f:
                f.write(v1.rollguard("manifest", "--metadata", "models:Base").out)
            r = v2.rollguard("deploy", "--manifest", path, "--deployment", "blue", "--version", "1")
            self.assertIn('rollguard: deployment "blue" runs "1" (running)', r.out)
        with self.step("bad --metadata, no database: a message, exit 1, no traceback"):
            for args, message in [
                    (["manifest", "--metadata", "models"], "expected module:attribute"),
                    (["manifest", "--metadata", "nosuch:Base"], "cannot import nosuch"),
                    (["manifest", "--metadata", "models:Nope"], "models has no attribute Nope"),
                    (["manifest", "--metadata", "models:Person"], "is a mapped class"),
                    (["manifest", "--metadata", "models:Column"], "neither a MetaData")]:
                r = v1.rollguard(*args, ok=False)
                self.assertEqual(r.rc, 1)
                self.assertIn(message, r.err)
                self.assertNotIn("Traceback", r.err)
            r = run([PYTHON, "-m", "rollguard_sqlalchemy", "register", "--metadata", "models:Base",
                     "--version", "9"], cwd=v1.path, env={"DATABASE_URL": "", "ROLLGUARD_DATABASE_URL": ""},
                    ok=False)
            self.assertIn("no database: give --url", r.err)
        with self.step("check: no alembic.ini, or a revision in the database the scripts lack: "
                       "a message, exit 1"):
            r = v1.rollguard("check", "-c", "nosuch.ini", ok=False)
            self.assertIn("no Alembic configuration nosuch.ini", r.err)
            sql(db, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
                    " INSERT INTO alembic_version VALUES ('deadbeef')")
            r = v1.rollguard("check", ok=False)
            self.assertEqual(r.rc, 1)
            self.assertIn("alembic: Can't locate revision identified by 'deadbeef'", r.err)
            self.assertNotIn("Traceback", r.err)
        with self.step("a database without the extension: a hint to create it"):
            plain = "commands_plain"
            create_database(plain, extension=False)
            r = v1.rollguard("register", "--metadata", "models:Base", "--version", "1",
                             "--url", database_url(plain), ok=False)
            expect_in(self, ["HINT:  Is the rollguard extension created in this database?"], r.err)



class WithoutManifest(StepsTestCase):
    """no manifest: an inferred contract, amended by stop_using"""

    scenario = "Alembic without a manifest"

    def test_without_manifest(self):
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
            # person's six, coupon's two, and alembic_version.version_num
            self.assertEqual(sql(db, "SELECT contract, columns FROM rollguard.versions"),
                             [("inferred", 9)])
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
