#!/bin/sh
# rollguard with ActiveRecord (Debian bookworm's ruby-activerecord 6.1 and
# ruby-pg, then ActiveRecord 7.2) and contrib/rails's rake tasks: real ActiveRecord::Migration
# classes run by ActiveRecord's migrator, manifests derived from the models
# (rollguard:manifest), deploy steps by rollguard:register / rollguard:deploy.
# The mirror scenario for remove_column, rename_column, change_column_null,
# change_column_default nil, drop_table, rename_table and a
# disable_ddl_transaction! migration (refused while a deployment runs the
# old version, schema_migrations and the schema unchanged; through once
# every deployment moved on); add_column null: false with and without a
# default; add_index and the downtime guard; what ActiveRecord's partial
# writes leave out of an INSERT.  See test/clients/rails/test_rails.rb.
#     sh test/scenario/rails.sh [SUBSTRING ...]   # only the matching scenarios
# As root, with rollguard installed.  Installs Debian's ruby-activerecord,
# ruby-pg and rake when ActiveRecord cannot be loaded.
set -eu
cd "$(dirname "$0")/../.."
. test/lib.sh
rg_need_root
RG_BINDIR=${RG_BINDIR:-$(pg_config --bindir)}

have_ar() {
	command -v ruby >/dev/null 2>&1 && command -v rake >/dev/null 2>&1 &&
		ruby -e 'require "active_record"; require "pg"' >/dev/null 2>&1
}
if ! have_ar; then
	echo "# installing ruby-activerecord ruby-pg rake"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends ruby-activerecord ruby-pg rake >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends ruby-activerecord ruby-pg rake >/dev/null; } ||
		true
fi
if ! have_ar; then
	echo "not ok - rails: ruby-activerecord, ruby-pg and rake cannot be installed"
	exit 1
fi

dir=$(mktemp -d /tmp/rollguard-rails.XXXXXX)
chown postgres "$dir"
trap 'rg_stop_cluster "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
rg_start_cluster "$dir"
echo "# ActiveRecord $(ruby -e 'require "active_record"; print ActiveRecord.version') (bookworm)"
status=0
timeout 600 ruby test/clients/rails/test_rails.rb "$@" || status=1
# Then ActiveRecord 7.2, from a newer Debian suite (test/clients/django_debs.sh
# rails7.2: unpacked under test/cache/, first on RUBYLIB; the rest, ruby-pg
# among it, stays bookworm's).
if rubylib=$(sh test/clients/django_debs.sh rails7.2); then
	echo "# ActiveRecord $(RUBYLIB=$rubylib ruby -e 'require "active_record"; print ActiveRecord.version') (newer Debian suite)"
	RUBYLIB=$rubylib timeout 600 ruby test/clients/rails/test_rails.rb "$@" || status=1
else
	echo "not ok - rails: ActiveRecord 7.2 cannot be fetched"
	status=1
fi
exit $status
