#!/bin/sh
# Shipped the way PostgreSQL extensions ship:
#  1. the licence (LICENSE, README, the control file, every package's
#     metadata say the PostgreSQL License);
#  2. META.json has every key the PGXN meta spec requires, and its versions
#     are the extension's;
#  3. the Django app and the SQLAlchemy package are packages: pip installs
#     them without network access (Debian's python3, setuptools), at the
#     extension's version;
#  4. the Debian package: built with dpkg-buildpackage (pg_buildext, for
#     every version debian/pgversions names that the machine has),
#     debian/control as pg_buildext would write it, installed on its own
#     (the files `make install` put there removed first), and the
#     regression suites run against the installed package with `make
#     installcheck` on a running server named by PGHOST/PGPORT, as PGXS
#     users run them; then the source build is installed again for the
#     suites that follow.
# As root.  About 2 minutes (apt-get the first time: debhelper,
# postgresql-server-dev-all, python3-pip).
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}
export DEBIAN_FRONTEND=noninteractive

need=""
for p in debhelper dpkg-dev postgresql-server-dev-all python3-pip python3-setuptools python3-wheel; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
	echo "# installing:$need"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null; }
fi

fail=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fail=1; }

version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" rollguard.control)

# 1. the licence
grep -q "PostgreSQL License" LICENSE 2>/dev/null || grep -q "Permission to use, copy, modify, and distribute" LICENSE &&
	ok "LICENSE" || notok "LICENSE"
grep -q "PostgreSQL License" README.md && ok "README states the licence" || notok "README states the licence"
grep -q "PostgreSQL License" rollguard.control && ok "the control file states the licence" ||
	notok "the control file states the licence"
grep -q "^License: PostgreSQL" debian/copyright && ok "debian/copyright" || notok "debian/copyright"

# 2. META.json against the PGXN meta spec (1.0.0): required keys, their
# shapes, and the versions
/usr/bin/python3 - "$version" <<'PY' && ok "META.json: the PGXN meta spec's required keys, versions $version.0" || notok "META.json"
import json, os, re, sys
version = sys.argv[1] + ".0"
m = json.load(open("META.json"))
semver = re.compile(r"^\d+\.\d+\.\d+$")
problems = []
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
    if key not in m:
        problems.append(f"missing {key}")
if m.get("meta-spec", {}).get("version") != "1.0.0":
    problems.append("meta-spec.version is not 1.0.0")
if not semver.match(m.get("version", "")):
    problems.append("version is not a semantic version")
if m.get("version") != version:
    problems.append(f"version {m.get('version')} is not the extension's {version}")
if m.get("license") != "postgresql":
    problems.append("license is not postgresql")
if not isinstance(m.get("maintainer"), (str, list)) or not m.get("maintainer"):
    problems.append("maintainer is empty")
for ext, p in m.get("provides", {}).items():
    if not semver.match(p.get("version", "")) or p.get("version") != version:
        problems.append(f"provides.{ext}.version")
    if not p.get("file") or not os.path.exists(p["file"]):
        problems.append(f"provides.{ext}.file does not exist")
if "rollguard" not in m.get("provides", {}):
    problems.append("provides has no rollguard")
print("\n".join("# " + p for p in problems))
sys.exit(1 if problems else 0)
PY

# 3. the Django app, pip-installed offline into a directory of its own
tmp=$(mktemp -d /tmp/rollguard-packaging.XXXXXX)
# (from a copy: setuptools writes build/ and *.egg-info/ beside the sources)
cp -r contrib/django "$tmp/django"
if /usr/bin/python3 -m pip install -q --no-build-isolation --no-index --no-deps --target "$tmp/site" "$tmp/django" \
	>"$tmp/pip.log" 2>&1 &&
	got=$(PYTHONPATH="$tmp/site" /usr/bin/python3 -c \
		"import importlib.metadata as m, rollguard_django, rollguard_django.management.commands.rollguard_deploy; print(m.version('rollguard-django'))") &&
	[ "$got" = "$version.0" ]; then
	ok "pip installs contrib/django offline, version $version.0"
else
	cat "$tmp/pip.log"
	notok "pip installs contrib/django offline (got: ${got:-nothing})"
fi
cp -r contrib/sqlalchemy "$tmp/sqlalchemy"
if /usr/bin/python3 -m pip install -q --no-build-isolation --no-index --no-deps --target "$tmp/site-sa" "$tmp/sqlalchemy" \
	>"$tmp/pip-sa.log" 2>&1 &&
	got=$(PYTHONPATH="$tmp/site-sa" /usr/bin/python3 -c \
		"import importlib.metadata as m, rollguard_sqlalchemy, rollguard_sqlalchemy.cli; print(m.version('rollguard-sqlalchemy'))") &&
	[ "$got" = "$version.0" ] && [ -x "$tmp/site-sa/bin/rollguard-sqlalchemy" ]; then
	ok "pip installs contrib/sqlalchemy offline, version $version.0, with its rollguard-sqlalchemy command"
else
	cat "$tmp/pip-sa.log"
	notok "pip installs contrib/sqlalchemy offline (got: ${got:-nothing})"
fi

# 4. the Debian package
mkdir -p "$tmp/src"
tar --exclude=.git --exclude=test/cache -cf - . | tar -C "$tmp/src" -xf -
(cd "$tmp/src" && cp debian/control debian/control.committed && pg_buildext updatecontrol >/dev/null 2>&1 &&
	cmp -s debian/control debian/control.committed) &&
	ok "debian/control is what pg_buildext updatecontrol writes" ||
	notok "debian/control is out of date: run pg_buildext updatecontrol"
if (cd "$tmp/src" && dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1); then
	ok "dpkg-buildpackage"
else
	tail -30 "$tmp/build.log"
	notok "dpkg-buildpackage"
fi
deb=$(ls "$tmp"/postgresql-*-rollguard_"$version".0_*.deb 2>/dev/null | head -1)
restore() {
	[ ! -d "$tmp/server/data" ] || rg_stop_cluster "$tmp/server"
	dpkg -r postgresql-15-rollguard >/dev/null 2>&1 || true
	make -s install >/dev/null
	rm -rf "$tmp"
}
trap restore EXIT
if [ -n "$deb" ]; then
	make -s uninstall >/dev/null
	if dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 &&
		dpkg -S "$(pg_config --pkglibdir)/rollguard.so" | grep -q postgresql-15-rollguard; then
		ok "the package installs, and owns rollguard.so"
	else
		cat "$tmp/dpkg.log"
		notok "the package installs"
	fi
	dpkg -L postgresql-15-rollguard | grep -q "extension/rollguard--$version.sql" &&
		ok "the package has rollguard--$version.sql" || notok "the package has rollguard--$version.sql"
	# the suites, against the installed package (nothing built in the copy),
	# the way PGXS users run them: make installcheck against a running
	# server that PGHOST/PGPORT name (one that preloads rollguard, without
	# prepared transactions: the suites' expected output for that)
	chown -R postgres "$tmp"
	mkdir "$tmp/server"
	chown postgres "$tmp/server"
	rg_start_cluster "$tmp/server"
	if rg_as_postgres "cd '$tmp/src' && PGHOST='$tmp/server' PGPORT=5432 PG_TEST_TIMEOUT_DEFAULT=15 timeout 600 make -s installcheck" \
		>"$tmp/installcheck.log" 2>&1; then
		ok "make installcheck (PGHOST, a running server) against the installed package: $(grep -h 'tests passed' "$tmp/installcheck.log" | tr -s ' ' | tr '\n' ' ')"
	else
		tail -20 "$tmp/installcheck.log"
		cat "$tmp/src/regression.diffs" 2>/dev/null | head -100
		notok "make installcheck against the installed package"
	fi
else
	notok "no package was built"
fi
exit $fail
