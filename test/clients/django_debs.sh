#!/bin/sh
# Releases of Django, psycopg, SQLAlchemy and ActiveRecord that Debian
# bookworm does not have, as Debian packages from the newer suites of the
# machine's own archive, for the tests:
#     dir=$(sh test/clients/django_debs.sh 5.2)
#     PYTHONPATH=$dir python3 -c 'import django'
# prints the directory to put first on PYTHONPATH (the packages unpacked
# with dpkg-deb -x), or fails with a message on stderr.
#
# Nothing on the system changes: apt runs with a private configuration
# (its own sources list naming the archive's trixie and sid suites, its own
# lists, cache and an empty dpkg status) under test/cache/, which git
# ignores.  A second run finds the unpacked packages there and goes offline.
#
# 5.2 comes from sid with asgiref 3.8 from trixie (Django 5.2 needs
# asgiref >= 3.8.1; bookworm has 3.6); bookworm's own sqlparse (0.4.2) and
# psycopg2 (2.9.5) do for it.  4.2 comes from trixie.
#     dir=$(sh test/clients/django_debs.sh psycopg3)
# is psycopg 3 (python3-psycopg, pure Python over the machine's libpq, with
# the typing-extensions it needs) from sid, for Django 4.2 and later,
# which prefer it to psycopg2 when both are importable.
#     RUBYLIB=$(sh test/clients/django_debs.sh rails7.2) ruby ...
# is ActiveRecord 7.2 (bookworm has 6.1), for test_rails (RG_RAILS=7.2).
#     dir=$(sh test/clients/django_debs.sh sqlalchemy2)
# is SQLAlchemy 2 with the Alembic release built for it (bookworm has
# SQLAlchemy 1.4 and Alembic 1.8), for test_alembic (RG_SQLALCHEMY=2).
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh

series=${1:?usage: $0 4.2|5.2|psycopg3|sqlalchemy2|rails7.2}
module=django
case $series in
4.2) pkgs="python3-django=^3:4\.2\." ;;
5.2) pkgs="python3-django=^3:5\.2\. python3-asgiref=^3\.8\." ;;
psycopg3)
	pkgs="python3-psycopg=^3\. python3-typing-extensions=^4\."
	module=psycopg
	;;
sqlalchemy2)
	# (SQLAlchemy 2 needs typing-extensions >= 4.6; bookworm has 4.4)
	pkgs="python3-sqlalchemy=^2\. python3-alembic=^1\. python3-typing-extensions=^4\."
	module=sqlalchemy
	;;
rails7.2)
	# (ActiveSupport 7.2 needs concurrent-ruby >= 1.3.1; bookworm has 1.1.6)
	pkgs="ruby-activerecord=^2:7\.2\. ruby-activesupport=^2:7\.2\. ruby-activemodel=^2:7\.2\. ruby-concurrent=^1\.3\."
	module=active_record
	;;
*)
	echo "$0: no recipe for $series (4.2, 5.2, psycopg3, sqlalchemy2 or rails7.2)" >&2
	exit 2
	;;
esac

cache=$(pwd)/test/cache
dest=$cache/django-$series
[ "$module" = django ] || dest=$cache/$series
# dpkg-deb -x does not run the packages' postinst, which byte-compiles them
# (py3compile): compile once here, or every process of the tests compiles
# Django again (about 0.5 s a process; the tests write no bytecode).
compile() {
	/usr/bin/python3 -m compileall -q "$1" >/dev/null && touch "$2/.compiled"
}
if [ -f "$dest/.complete" ] && [ "$module" = active_record ]; then
	cat "$dest/rubylib"
	exit 0
fi
if [ -f "$dest/.complete" ]; then
	[ -f "$dest/.compiled" ] || compile "$dest/python" "$dest" >&2
	echo "$dest/python"
	exit 0
fi

uri=$(rg_apt_uri "")
if [ -z "$uri" ]; then
	echo "$0: the machine's apt sources name no Debian archive" >&2
	exit 1
fi
apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/sources.list.d" \
	"$apt/preferences.d" "$apt/apt.conf.d" "$apt/debs"
: >"$apt/status"
cat >"$apt/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main
EOF
# Valid-Until: a development suite's Release file may have expired when the
# machine's clock runs ahead; the signature is still checked.
cat >"$apt/apt.conf" <<EOF
Dir::State "$apt";
Dir::State::lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt";
Dir::Cache::archives "$apt/archives";
Dir::Etc::sourcelist "$apt/sources.list";
Dir::Etc::sourceparts "$apt/sources.list.d";
Dir::Etc::preferences "$apt/preferences";
Dir::Etc::preferencesparts "$apt/preferences.d";
Dir::Etc::parts "$apt/apt.conf.d";
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "root";
EOF
export APT_CONFIG="$apt/apt.conf"
mkdir -p "$apt/lists/partial"
if [ ! -s "$apt/updated" ]; then
	apt-get update -qq >&2
	date >"$apt/updated"
fi

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
for spec in $pkgs; do
	pkg=${spec%%=*}
	pattern=${spec#*=}
	version=$(apt-cache madison "$pkg" | awk -v p="$pattern" '$3 ~ p { print $3; exit }')
	if [ -z "$version" ]; then
		echo "$0: no $pkg matching $pattern in trixie or sid" >&2
		exit 1
	fi
	(cd "$apt/debs" && apt-get download -qq "$pkg=$version" >&2)
	deb=$(ls "$apt/debs/${pkg}_"*"$(echo "${version#*:}" | sed 's/+/%2b/g')"*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || deb=$(ls -t "$apt/debs/${pkg}_"*.deb | head -1)
	dpkg-deb -x "$deb" "$dest.tmp/root"
done
# Ruby: the gems' directories, and the RUBYLIB that puts their code first
# (ahead of bookworm's, which stay for the rest: i18n, tzinfo, pg, ...).
if [ "$module" = active_record ]; then
	mv "$dest.tmp/root/usr/share/rubygems-integration/all/gems" "$dest.tmp/gems"
	rm -rf "$dest.tmp/root" "$dest"
	mv "$dest.tmp" "$dest"
	# (concurrent-ruby keeps its code a level down)
	lib=$(for g in "$dest"/gems/*/; do
		if [ -d "${g}lib/concurrent-ruby" ]; then echo "${g}lib/concurrent-ruby"; else echo "${g}lib"; fi
	done | paste -sd:)
	got=$(RUBYLIB=$lib ruby -e 'require "active_record"; print ActiveRecord.version')
	case $got in
	"${series#rails}".*) ;;
	*)
		echo "$0: unpacked ActiveRecord $got, not ${series#rails}" >&2
		rm -rf "$dest"
		exit 1
		;;
	esac
	echo "$lib" >"$dest/rubylib"
	touch "$dest/.complete"
	rm -rf "$apt/lists" "$apt"/*.bin "$apt/updated"
	echo "$lib"
	exit 0
fi
# The Python packages themselves, version-independent (dist-packages).
mv "$dest.tmp/root/usr/lib/python3/dist-packages" "$dest.tmp/site"
rm -rf "$dest.tmp/root"
got=$(PYTHONPATH="$dest.tmp/site" /usr/bin/python3 -c "import $module; print($module.__version__)")
case $module-$got in
django-"$series".* | psycopg-3.* | sqlalchemy-2.*) ;;
*)
	echo "$0: unpacked $module $got, not $series" >&2
	exit 1
	;;
esac
mv "$dest.tmp/site" "$dest.tmp/python"
compile "$dest.tmp/python" "$dest.tmp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
touch "$dest/.complete"
# The package lists (some 100 MB a suite) are not needed any more: the next
# run finds $dest complete; another series updates them again.
rm -rf "$apt/lists" "$apt"/*.bin "$apt/updated"
echo "$dest/python"
