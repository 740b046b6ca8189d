"""Helpers for rollguard's end-to-end tests with real clients (Django, Alembic, deploy scripts).

The tests run against a throwaway cluster that test/clients/run.sh starts
(PGHOST, PGPORT, PGUSER in the environment) and generate everything else:
Django projects in temporary directories (RG_TEST_TMP), their migrations
(with manage.py makemigrations, alembic revision --autogenerate), one
database per test.

Output: one "ok - ..." or "not ok - ..." line per step and per test, the
reason of a failure as "# " lines, a closing "# N tests, N failed" line; the
exit status is 1 if anything failed.
"""
import contextlib
import copy
import os
import shutil
import subprocess
import sys
import textwrap
import time
import traceback
import unittest

import psycopg2

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = os.environ.get("RG_PYTHON", sys.executable)
TMP = os.environ.get("RG_TEST_TMP") or os.environ["PGHOST"]
COMMAND_TIMEOUT = 120


def database_url(dbname, user=None):
    """A libpq URI for the test cluster (Unix socket), as a deploy pipeline has it."""
    return "postgresql:///%s?host=%s&port=%s&user=%s" % (
        dbname, os.environ["PGHOST"], os.environ.get("PGPORT", "5432"),
        user or os.environ.get("PGUSER", "postgres"))


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def sql(dbname, query, params=None):
    """Runs one statement in its own connection; returns the rows (or None)."""
    conn = connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def create_database(name, template=None, extension=True):
    conn = connect("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE "%s"%s' % (name, ' TEMPLATE "%s"' % template if template else ""))
    finally:
        conn.close()
    if extension and not template:
        sql(name, "CREATE EXTENSION rollguard")


class Result:
    def __init__(self, argv, cwd, proc):
        self.argv, self.cwd = argv, cwd
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def __str__(self):
        def tail(text, n=40):
            lines = text.rstrip("\n").splitlines()
            return "\n".join(("    " + l) for l in lines[-n:]) or "    (nothing)"
        return "$ (cd %s && %s)  -> exit %s\n  stdout:\n%s\n  stderr:\n%s" % (
            self.cwd, " ".join(self.argv), self.rc, tail(self.out), tail(self.err))


def pythonpath():
    """contrib/django and contrib/sqlalchemy, then RG_EXTRA_PYTHONPATH: a
    Django release unpacked from a newer Debian suite
    (test/clients/django_debs.sh), if the run asked for one (RG_DJANGO=5.2
    sh test/clients/run.sh ...)."""
    extra = os.environ.get("RG_EXTRA_PYTHONPATH")
    base = os.pathsep.join(os.path.join(REPO, "contrib", d) for d in ("django", "sqlalchemy"))
    return base + (os.pathsep + extra if extra else "")


def django_version():
    """(major, minor) of the Django the tests run (bookworm's, or RG_DJANGO's)."""
    out = run([PYTHON, "-c", "import django; print(django.VERSION[0], django.VERSION[1])"]).out
    return tuple(int(x) for x in out.split())


def run(argv, cwd=None, env=None, input=None, ok=True):
    """Runs a command; with ok=True (False) it must exit 0 (non-zero), with
    ok=None it may do either.  Python writes no bytecode into the checkout."""
    full_env = dict(os.environ)
    full_env.update(PYTHONPATH=pythonpath(), PYTHONDONTWRITEBYTECODE="1")
    full_env.update(env or {})
    proc = subprocess.run(argv, cwd=cwd, env=full_env, text=True,
                          input=input if input is not None else "",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=COMMAND_TIMEOUT)
    result = Result(argv, cwd, proc)
    if ok is True and result.rc != 0:
        raise AssertionError("command failed:\n%s" % result)
    if ok is False and result.rc == 0:
        raise AssertionError("command should have failed:\n%s" % result)
    return result


def psql(db, script, ok=True, as_user=None, **variables):
    """Runs a psql script (stdin) on database db, as a deploy pipeline does:
    psql variables from keyword arguments, stop at the first error."""
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url(db, as_user)]
    for name, value in variables.items():
        argv += ["-v", "%s=%s" % (name, value)]
    return run(argv, input=textwrap.dedent(script), ok=ok)


SETTINGS = '''\
"""Settings of a generated test project: the database comes from DATABASE_URL."""
import os
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_KEY = "rollguard-test"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rollguard_django",
    "shop",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
SITE_ID = int(os.environ.get("SITE_ID", "1"))

_url = urlsplit(os.environ["DATABASE_URL"])
_query = {k: v[-1] for k, v in parse_qs(_url.query).items()}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or "") or _query.get("user", ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or _query.get("host", ""),
        "PORT": str(_url.port or _query.get("port", "")),
    }
}
'''

MANAGE = '''\
#!/usr/bin/env python3
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
'''


class CodeVersion:
    """One version of a generated application: a directory."""

    models_file = None

    def __init__(self, path):
        self.path = path

    def write(self, name, text):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(text)

    def read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def derive(self, path, models=None, replace=()):
        """The next code version: a copy, with new models (or edits of these)."""
        shutil.copytree(self.path, path)
        project = copy.copy(self)
        project.path = path
        text = models if models is not None else self.read(self.models_file)
        for old, new in replace:
            if old not in text:
                raise AssertionError("%r not in %s" % (old, self.models_file))
            text = text.replace(old, new)
        project.write(self.models_file, text)
        return project


class Project(CodeVersion):
    """One code version of a generated Django project: settings, the app
    "shop" with its models.py and migrations."""

    models_file = "shop/models.py"

    @classmethod
    def create(cls, path, models):
        os.makedirs(os.path.join(path, "shop", "migrations"))
        project = cls(path)
        project.write("settings.py", SETTINGS)
        project.write("manage.py", MANAGE)
        project.write("shop/__init__.py", "")
        project.write("shop/migrations/__init__.py", "")
        project.write("shop/models.py", models)
        return project

    def migrations(self):
        d = os.path.join(self.path, "shop", "migrations")
        return sorted(n[:-3] for n in os.listdir(d) if n[0].isdigit() and n.endswith(".py"))

    def manage(self, db, *args, input=None, ok=True, env=None):
        env = dict({"DATABASE_URL": database_url(db)}, **(env or {}))
        return run([PYTHON, "manage.py"] + list(args), cwd=self.path, env=env,
                   input=input, ok=ok)

    def makemigrations(self, db, *args, answers=""):
        """manage.py makemigrations shop, answering its questions ("y\\n" ...)."""
        before = set(self.migrations())
        self.manage(db, "makemigrations", "shop", *args, input=answers)
        new = sorted(set(self.migrations()) - before)
        if len(new) != 1:
            raise AssertionError("expected one new migration, got %r" % new)
        return new[0]

    def orm(self, db, code, ok=True):
        """Runs Python code with this version's models (manage.py shell -c;
        -v 0: Django 5.2's shell would first say what it imported)."""
        return self.manage(db, "shell", "-v", "0", "-c", textwrap.dedent(code), ok=ok)

    def rollguard_deploy(self, db, deployment, version, *args, ok=True):
        return self.manage(db, "rollguard_deploy", "--deployment", deployment,
                           "--version", version, *args, ok=ok)


def expect_in(test, needles, text, what="output"):
    """Each needle is in text; else fail showing text's last lines (where a
    Django traceback ends with the server's message)."""
    for needle in needles:
        if needle not in text:
            last = "\n".join(text.rstrip("\n").splitlines()[-15:])
            test.fail("%r not in %s, which ends:\n%s" % (needle, what, last))


class StepsTestCase(unittest.TestCase):
    """A scenario is a test method; each of its steps prints ok / not ok."""

    scenario = None

    @contextlib.contextmanager
    def step(self, what):
        name = "%s: %s" % (self.scenario or self.id().split(".")[-1], what)
        try:
            yield
        except BaseException:
            print("not ok - %s" % name, flush=True)
            raise
        print("ok - %s" % name, flush=True)


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.started = {}

    @staticmethod
    def describe(test):
        doc = test.shortDescription()
        return "%s%s" % (test.id().split(".", 1)[-1], (": " + doc) if doc else "")

    def startTest(self, test):
        super().startTest(test)
        self.started[test] = time.monotonic()
        print("# %s" % self.describe(test), flush=True)

    def elapsed(self, test):
        if test not in self.started:  # a module or class fixture
            return ""
        return " (%.1f s)" % (time.monotonic() - self.started[test])

    def addSuccess(self, test):
        super().addSuccess(test)
        print("ok - %s%s" % (self.describe(test), self.elapsed(test)), flush=True)

    def _bad(self, test, err):
        print("not ok - %s%s" % (self.describe(test), self.elapsed(test)))
        for line in "".join(traceback.format_exception(*err)).splitlines():
            print("#   " + line)
        sys.stdout.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bad(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._bad(test, err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print("ok - %s # SKIP %s" % (self.describe(test), reason), flush=True)


def main(module_name):
    """Runs the tests of a module (all, or those named on the command line)."""
    loader = unittest.TestLoader()
    module = sys.modules[module_name]
    names = sys.argv[1:]
    suite = (loader.loadTestsFromNames(names, module) if names
             else loader.loadTestsFromModule(module))
    result = TapResult()
    suite.run(result)
    bad = len(result.failures) + len(result.errors)
    print("# %d tests, %d failed, %d skipped" % (result.testsRun, bad, len(result.skipped)))
    sys.exit(1 if bad or not result.testsRun else 0)
