# frozen_string_literal: true

# rollguard with ActiveRecord (Debian's ruby-activerecord 6.1 and ruby-pg),
# as a Rails team uses it: real ActiveRecord::Migration classes run by
# ActiveRecord's migrator (rake db:migrate of test/clients/rails/Rakefile:
# each migration in its own transaction, recorded in schema_migrations),
# models whose manifest contrib/rails's rake tasks derive
# (rollguard:manifest, rollguard:register, rollguard:deploy).
#
# The mirror scenario, for every migration kind that breaks deployed code
# (remove_column, rename_column, change_column_null, change_column_default
# nil, drop_table, rename_table, and a disable_ddl_transaction! migration):
# one database, three deployments (original, mirror-2, mirror-3) on version
# 41. Release 43 carries the migration; release 42 changes only the models
# (ignored_columns, rollguard_writes, a presence validation, a model
# removed). The original registers 43 and migrates first: refused while
# any deployment runs 41 (naming them; schema_migrations and the schema
# unchanged), still refused while mirror-3 runs 41, through once every
# deployment runs 42; then 43 is deployed everywhere (the mirrors' migrate
# finds it applied).  add_column null: false goes through with a default
# and is refused without one.  The downtime guard (issue 13): add_index on
# a large table is flagged (WARNING by default, refused with lock_checks =
# on), silent on a small one, and the algorithm: :concurrently form passes.
# And what ActiveRecord's INSERTs carry (partial writes): the reason the
# manifest's "writes" is not read off the schema.
#
# Run by test/scenario/rails.sh (cluster started, PGHOST/PGPORT/PGUSER set).
# Output: "ok - ..." / "not ok - ..." per step, "# N tests, N failed" at the
# end; exit status 1 on any failure.
#     ruby test_rails.rb [SUBSTRING ...]     # only the matching scenarios

require "fileutils"
require "json"
require "open3"
require "pg"
require "tmpdir"

$LOAD_PATH.unshift File.expand_path("../../../contrib/rails/lib", __dir__)
require "rollguard/rails"

RAKEFILE = File.expand_path("Rakefile", __dir__)
REPO = File.expand_path("../../..", __dir__)
TMP = Dir.mktmpdir("rollguard-rails-", ENV["RG_TEST_TMP"] || ENV.fetch("PGHOST"))
DEPLOYMENTS = %w[original mirror-2 mirror-3].freeze
STARTED = Time.now

# ------------------------------------------------------------------ output

$tests = 0
$failures = 0

def diag(text)
  text.to_s.each_line { |l| puts "# #{l.chomp}" }
end

def ok(cond, name, why = nil)
  $tests += 1
  if cond
    puts "ok - #{name}"
  else
    $failures += 1
    puts "not ok - #{name}"
    diag(why.to_s.gsub(/^/, "  ")) if why
  end
  $stdout.flush
  cond
end

# ------------------------------------------------------------------ databases

def database_url(db)
  "postgresql:///#{db}" # host, port, user: PGHOST, PGPORT, PGUSER
end

def admin_sql(sql)
  conn = PG.connect(dbname: "postgres")
  conn.set_notice_receiver { |_| nil }
  conn.exec(sql)
ensure
  conn&.close
end

def sql(db, query, params = [])
  conn = PG.connect(dbname: db)
  conn.set_notice_receiver { |_| nil }
  conn.exec_params(query, params).values
ensure
  conn&.close
end

def create_database(db, extension: true)
  admin_sql(%(DROP DATABASE IF EXISTS "#{db}"))
  admin_sql(%(CREATE DATABASE "#{db}"))
  sql(db, "CREATE EXTENSION rollguard") if extension
end

def connect_ar(db)
  ActiveRecord::Base.remove_connection
  ActiveRecord::Base.establish_connection(database_url(db))
  ActiveRecord::Base.descendants.each(&:reset_column_information)
end

# orders and customers (or clients): columns with type, NOT NULL, default;
# the rows; schema_migrations.
def snapshot(db)
  cols = sql(db, <<~SQL)
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid)
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relname IN ('orders', 'customers', 'clients') AND c.relkind = 'r'
       AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum
  SQL
  { "columns" => cols.map { |r| r.compact.join(" ") },
    "orders" => sql(db, "SELECT id, status, code, note, created_at FROM orders ORDER BY id"),
    "indexes" => sql(db, "SELECT indexname FROM pg_indexes WHERE tablename = 'orders' ORDER BY 1").flatten,
    "schema_migrations" => migrations(db) }
end

def migrations(db)
  sql(db, "SELECT version FROM schema_migrations ORDER BY version").flatten
end

def columns_of(db, table)
  sql(db, <<~SQL, [table]).to_h
    SELECT a.attname, concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                                CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                                'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid))
      FROM pg_attribute a
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
  SQL
end

# ------------------------------------------------------------------ apps

BASE_MIGRATION = <<~RUBY
  class CreateBase < ActiveRecord::Migration[6.1]
    def change
      create_table :orders do |t|
        t.string :status, null: false, default: "new"
        t.string :code, null: false
        t.string :note
        t.timestamps
      end
      create_table :customers do |t|
        t.string :name, null: false
        t.timestamps
      end
    end
  end
RUBY
BASE_VERSION = "20250101000000"
MIGRATION_VERSION = "20250301000000"

# Version 41's models: they use every column.
MODELS_41 = {
  "Order" => "",
  "Customer" => "",
}.freeze

# An application directory: models.rb (classes in module V<version>, so
# that the test may load several versions) and db/migrate/.
def write_app(dir, version, models, migration = nil)
  FileUtils.mkdir_p(File.join(dir, "db/migrate"))
  src = +"module V#{version}\n"
  models.each do |name, body|
    table = { "Order" => "orders", "Customer" => "customers", "Client" => "clients" }.fetch(name)
    src << "  class #{name} < ActiveRecord::Base\n    self.table_name = #{table.inspect}\n"
    body.each_line { |l| src << "    #{l}" }
    src << "  end\n"
  end
  src << "end\n"
  File.write(File.join(dir, "models.rb"), src)
  File.write(File.join(dir, "db/migrate/#{BASE_VERSION}_create_base.rb"), BASE_MIGRATION)
  if migration
    name, body = migration
    File.write(File.join(dir, "db/migrate/#{MIGRATION_VERSION}_#{name}.rb"), body)
  end
  dir
end

# Loads an app's models into this process (module V<version>).
def load_models(dir)
  load File.join(dir, "models.rb")
end

Run = Struct.new(:argv, :status, :out, :err) do
  def ok? = status.success?
  def to_s = "$ #{argv.join(' ')} -> exit #{status.exitstatus}\n  stdout:\n#{out.gsub(/^/, '    ')}\n  stderr:\n#{err.lines.first(30).join.gsub(/^/, '    ')}"
end

# rake TASK in the app, against database db, as a deploy script runs it.
def rake(app, db, task, env = {})
  argv = ["rake", "-f", RAKEFILE, task]
  full = { "APP" => app, "DATABASE_URL" => database_url(db) }.merge(env)
  out, err, status = Open3.capture3(full, *argv)
  Run.new(argv + env.map { |k, v| "#{k}=#{v}" }, status, out, err)
end

def migrate(app, db, label)
  r = rake(app, db, "db:migrate")
  diag("#{label}: rake db:migrate #{r.ok? ? 'went through' : 'failed'}")
  shown = r.err.lines.grep(/ERROR|DETAIL|HINT|WARNING|Deployment "|PG::/).first(12)
  shown.each { |l| diag("    #{l.chomp}") }
  r
end

def deploy_in_process(db, deployment, version, manifest)
  connect_ar(db)
  Rollguard::Deploy.step("deploy", deployment: deployment, version: version, manifest: manifest)
end

# ------------------------------------------------------------------ scenarios

# Release 42 changes the models so that release 43's migration breaks
# nothing; release 43 = 42's models + the migration.
MIRROR = [
  {
    name: "remove_column :orders, :note",
    slug: "remove_column",
    models42: { "Order" => "self.ignored_columns = [\"note\"]\n", "Customer" => "" },
    migration: ["remove_note", <<~RUBY],
      class RemoveNote < ActiveRecord::Migration[6.1]
        def change
          remove_column :orders, :note, :string
        end
      end
    RUBY
    refusal: 'cannot drop column "note" of table "public.orders"',
    after: ->(db) { !columns_of(db, "orders").key?("note") },
    after_text: "orders.note is gone",
  },
  {
    name: "rename_column :orders, :note, :remark",
    slug: "rename_column",
    models42: { "Order" => "self.ignored_columns = [\"note\"]\n", "Customer" => "" },
    migration: ["rename_note", <<~RUBY],
      class RenameNote < ActiveRecord::Migration[6.1]
        def change
          rename_column :orders, :note, :remark
        end
      end
    RUBY
    refusal: 'cannot rename column "note" of table "public.orders"',
    after: ->(db) { c = columns_of(db, "orders"); !c.key?("note") && c["remark"] == "character varying" },
    after_text: "orders.note is now remark",
  },
  {
    name: "change_column_null :orders, :note, false",
    slug: "change_column_null",
    models42: { "Order" => "rollguard_writes :note\nvalidates :note, presence: true\n", "Customer" => "" },
    migration: ["note_not_null", <<~RUBY],
      class NoteNotNull < ActiveRecord::Migration[6.1]
        def change
          change_column_null :orders, :note, false
        end
      end
    RUBY
    refusal: 'column "note" of table "public.orders"',
    after: ->(db) { columns_of(db, "orders")["note"] == "character varying NOT NULL" },
    after_text: "orders.note is NOT NULL",
  },
  {
    name: "change_column_default :orders, :status, from: \"new\", to: nil",
    slug: "change_column_default",
    models42: { "Order" => "rollguard_writes :status\nvalidates :status, presence: true\n", "Customer" => "" },
    migration: ["status_no_default", <<~RUBY],
      class StatusNoDefault < ActiveRecord::Migration[6.1]
        def change
          change_column_default :orders, :status, from: "new", to: nil
        end
      end
    RUBY
    refusal: 'cannot drop the default of NOT NULL column "status" of table "public.orders"',
    after: ->(db) { columns_of(db, "orders")["status"] == "character varying NOT NULL" },
    after_text: "orders.status is NOT NULL without a default",
  },
  {
    name: "drop_table :customers",
    slug: "drop_table",
    models42: { "Order" => "" },
    migration: ["drop_customers", <<~RUBY],
      class DropCustomers < ActiveRecord::Migration[6.1]
        def change
          drop_table :customers do |t|
            t.string :name, null: false
            t.timestamps
          end
        end
      end
    RUBY
    refusal: 'cannot drop table "public.customers"',
    after: ->(db) { sql(db, "SELECT to_regclass('customers')") == [[nil]] },
    after_text: "customers is gone",
  },
  {
    name: "rename_table :customers, :clients",
    slug: "rename_table",
    models42: { "Order" => "" },
    migration: ["rename_customers", <<~RUBY],
      class RenameCustomers < ActiveRecord::Migration[6.1]
        def change
          rename_table :customers, :clients
        end
      end
    RUBY
    refusal: 'cannot rename table "public.customers"',
    after: ->(db) { sql(db, "SELECT to_regclass('customers'), to_regclass('clients')") == [[nil, "clients"]] },
    after_text: "customers is now clients",
  },
  {
    name: "disable_ddl_transaction!: add_column :orders, :flag, then remove_column :orders, :note",
    slug: "no_transaction",
    models42: { "Order" => "self.ignored_columns = [\"note\"]\n", "Customer" => "" },
    migration: ["flag_and_drop_note", <<~RUBY],
      class FlagAndDropNote < ActiveRecord::Migration[6.1]
        disable_ddl_transaction!

        def change
          add_column :orders, :flag, :boolean, if_not_exists: true
          remove_column :orders, :note, :string
        end
      end
    RUBY
    refusal: 'cannot drop column "note" of table "public.orders"',
    outside_transaction: true,
    after: ->(db) { c = columns_of(db, "orders"); !c.key?("note") && c["flag"] == "boolean" },
    after_text: "orders.flag added, orders.note gone",
  },
].freeze

# Version 41's manifest, the same for every scenario (same schema, same
# models): derived once, by rake rollguard:manifest.
$manifest41 = nil

def setup_database(db, app41)
  create_database(db)
  r = rake(app41, db, "db:migrate")
  raise "base migration failed:\n#{r}" unless r.ok?

  connect_ar(db)
  load_models(app41)
  V41::Order.create!(code: "A-1", note: "fragile")
  V41::Order.create!(code: "A-2", note: "ring twice")
  V41::Customer.create!(name: "Ada")
end

def manifest_of(app, db, label)
  r = rake(app, db, "rollguard:manifest")
  ok(r.ok?, "#{label}: rake rollguard:manifest", r) or return nil
  JSON.parse(r.out)
end

def mirror(s)
  db = "rails_#{s[:slug]}"
  dir = File.join(TMP, s[:slug])
  app41 = write_app(File.join(dir, "v41"), 41, MODELS_41)
  app42 = write_app(File.join(dir, "v42"), 42, s[:models42])
  app43 = write_app(File.join(dir, "v43"), 43, s[:models42], s[:migration])
  setup_database(db, app41)
  $manifest41 ||= manifest_of(app41, db, "version 41")
  DEPLOYMENTS.each { |d| deploy_in_process(db, d, "41", $manifest41) }

  # Build time: 43's manifest, where 43's migrations have run (CI's database).
  build = "#{db}_build"
  create_database(build)
  r = rake(app43, build, "db:migrate")
  ok(r.ok?, "#{s[:name]}: build: 43's migrations run on a scratch database", r)
  m43 = manifest_of(app43, build, "#{s[:name]}: build")
  admin_sql(%(DROP DATABASE "#{build}"))
  file43 = File.join(dir, "manifest-43.json")
  File.write(file43, JSON.generate(m43))
  m42 = manifest_of(app42, db, "#{s[:name]}: version 42")
  file42 = File.join(dir, "manifest-42.json")
  File.write(file42, JSON.generate(m42))
  if s.equal?(MIRROR.first)
    r = rake(app43, db, "rollguard:manifest")
    ok(!r.ok? && r.err.include?("1 migration of this build is pending (#{MIGRATION_VERSION}_"),
       "#{s[:name]}: rollguard:manifest refuses to derive 43's manifest while its migration is pending", r)
  end

  # 0. the original registers 43 (what it stops using) before it migrates
  r = rake(app43, db, "rollguard:register", "ROLLGUARD_VERSION" => "43", "MANIFEST" => file43)
  ok(r.ok? && r.out.include?('rollguard: version "43" registered'),
     "#{s[:name]}: rake rollguard:register ROLLGUARD_VERSION=43 MANIFEST=...", r)

  # CI: the dry run names the deployments, executing nothing
  before = snapshot(db)
  r = rake(app43, db, "rollguard:check")
  diag("rake rollguard:check (exit #{r.status.exitstatus}):")
  r.out.each_line { |l| diag("    #{l.chomp}") }
  ok(r.status.exitstatus == 1 &&
     r.out.include?("#{MIGRATION_VERSION}_#{s[:migration][0]}: would be refused: 3 deployments would break " \
                    "(mirror-2, mirror-3, original)"),
     "#{s[:name]}: rake rollguard:check: would be refused, naming the three deployments (exit 1)", r)
  ok(snapshot(db) == before, "#{s[:name]}: rollguard:check changed nothing", snapshot(db))
  blocked = lambda do |label, blockers|
    r = migrate(app43, db, label)
    ok(!r.ok? && r.err.include?("PG::ObjectInUse") && r.err.include?(s[:refusal]),
       "#{s[:name]}: rake db:migrate refused (55006) (#{label})", r)
    ok(DEPLOYMENTS.all? { |d| r.err.include?(%(Deployment "#{d}" runs)) == blockers.include?(d) },
       "#{s[:name]}: the refusal names #{blockers.join(' and ')}, no other deployment (#{label})", r)
    now = snapshot(db)
    if s[:outside_transaction]
      ok(r.err.include?("The statement ran outside a transaction block: statements that ran before it " \
                        "in the same migration, if any, are committed and stay applied.") &&
         r.err.include?("Run migrations in one transaction"),
         "#{s[:name]}: the refusal says it ran outside a transaction block, what stays applied (#{label})", r)
      ok(columns_of(db, "orders")["flag"] == "boolean" && columns_of(db, "orders").key?("note"),
         "#{s[:name]}: the earlier add_column stays applied, note intact (#{label})", columns_of(db, "orders"))
      now["columns"] -= ["orders flag boolean f"]
    end
    ok(now == before, "#{s[:name]}: schema, rows and schema_migrations unchanged (#{label})",
       "before #{before}\nafter  #{now}")
  end

  # 1. everyone runs 41: the original's migrate is refused
  blocked.call("every deployment runs 41", DEPLOYMENTS)
  # 2. release 42 on the original (through the rake task) and mirror-2
  r = rake(app42, db, "rollguard:deploy", "DEPLOYMENT" => "original", "ROLLGUARD_VERSION" => "42",
                                         "MANIFEST" => file42)
  ok(r.ok? && r.out.include?('rollguard: deployment "original" runs "42" (running)'),
     "#{s[:name]}: rake rollguard:deploy DEPLOYMENT=original ROLLGUARD_VERSION=42 MANIFEST=...", r)
  deploy_in_process(db, "mirror-2", "42", m42)
  blocked.call("mirror-3 still runs 41", ["mirror-3"])
  # 3. every deployment runs 42: through
  deploy_in_process(db, "mirror-3", "42", m42)
  if s.equal?(MIRROR.first)
    r = rake(app43, db, "rollguard:check")
    ok(r.ok? && r.out.include?("#{MIGRATION_VERSION}_#{s[:migration][0]}: passes"),
       "#{s[:name]}: rake rollguard:check passes once every deployment runs 42", r)
  end
  r = migrate(app43, db, "every deployment runs 42")
  ok(r.ok? && !r.err.include?("WARNING"), "#{s[:name]}: rake db:migrate goes through once every deployment runs 42", r)
  ok(s[:after].call(db), "#{s[:name]}: #{s[:after_text]}", columns_of(db, "orders"))
  ok(migrations(db).include?(MIGRATION_VERSION), "#{s[:name]}: schema_migrations records #{MIGRATION_VERSION}",
     migrations(db))
  # 4. 43 everywhere: the original derives its manifest now (the same as the
  # build's: register_version accepts it), the mirrors' migrate finds it applied
  r = rake(app43, db, "rollguard:deploy", "DEPLOYMENT" => "original", "ROLLGUARD_VERSION" => "43")
  ok(r.ok? && r.out.include?('runs "43" (running)'),
     "#{s[:name]}: rake rollguard:deploy ROLLGUARD_VERSION=43 (manifest derived now = the build's)", r)
  # mirror-2's release of 43: register, migrate (finds it applied), deploy;
  # in the first scenario through contrib/deploy/divio_mirror.sh with
  # ROLLGUARD_VIA=rails, in the others with the same steps, shorter
  if s.equal?(MIRROR.first)
    env = { "APP" => app43, "DATABASE_URL" => database_url(db), "SITE_ID" => "2", "VERSION" => "43",
            "ROLLGUARD_VIA" => "rails", "RAILS" => "rake -f #{RAKEFILE}", "MANIFEST" => file43,
            "MIGRATE_CMD" => "env -u VERSION rake -f #{RAKEFILE} db:migrate" }
    out, err, status = Open3.capture3(env, "sh", File.join(REPO, "contrib/deploy/divio_mirror.sh"))
    ok(status.success? && out.include?('rollguard: deployment "mirror-2" runs "43" (running)') &&
       migrations(db).include?(MIGRATION_VERSION),
       "#{s[:name]}: mirror-2: divio_mirror.sh with ROLLGUARD_VIA=rails releases 43 (its migrate finds it applied)",
       "exit #{status.exitstatus}\n#{out}\n#{err}")
  else
    r = migrate(app43, db, "mirror-2's release")
    ok(r.ok?, "#{s[:name]}: a mirror's db:migrate finds it applied", r)
    deploy_in_process(db, "mirror-2", "43", m43)
  end
  deploy_in_process(db, "mirror-3", "43", m43)
  yield db, app41, app42, app43, m42, m43 if block_given?
ensure
  ActiveRecord::Base.remove_connection
end

# What ActiveRecord's INSERTs carry (partial writes, the 6.1 default), and
# what the manifest says about it.  Run inside the change_column_default
# scenario: version 41's and 42's models were loaded while status had its
# default 'new'.
def partial_writes(db, app41, m42, m43)
  name = "change_column_default"
  orders = ->(m) { m["relations"]["public.orders"] }
  ok(orders[$manifest41]["status"] == { "writes" => false, "nullable" => false } &&
     orders[$manifest41]["code"] == { "writes" => true, "nullable" => false } &&
     orders[$manifest41]["note"] == { "writes" => false, "nullable" => true },
     "#{name}: 41's manifest: status (NOT NULL, default 'new') not written, code (NOT NULL, no default) " \
     "written, note (nullable) not written", $manifest41)
  ok(orders[m42]["status"] == { "writes" => true, "nullable" => false },
     "#{name}: 42's manifest: status written (rollguard_writes), never NULL", m42)
  ok(orders[m43]["status"] == { "writes" => true, "nullable" => false },
     "#{name}: 43's manifest (its schema: status NOT NULL without a default): written", m43)
  ok([$manifest41, m42, m43].all? { |m| m["relations"].values.flat_map(&:values).all? { |p| p.keys.sort == %w[nullable writes] } },
     "#{name}: every column of every manifest has both \"writes\" and \"nullable\"")
  # The incident: 41's models against a later schema (status without its
  # default) would claim status written.  Refused: not this build's schema.
  r = rake(app41, db, "rollguard:manifest")
  ok(!r.ok? && r.err.include?("the database has run 1 migration this build does not have (#{MIGRATION_VERSION})"),
     "#{name}: 41's manifest is not derived from 43's schema (where status has no default)", r)
end

def insert_probe(db, app41, app42)
  name = "change_column_default"
  # Processes that booted while status had its default 'new' (the schema
  # cache of a running server), then the migration dropped it.
  sent = []
  sub = ActiveSupport::Notifications.subscribe("sql.active_record") do |*, p|
    sent << p[:sql] if p[:sql].start_with?("INSERT")
  end
  connect_ar(db)
  load_models(app41)
  load_models(app42)
  # Simulate processes that booted before the migration: schema as it was.
  sql(db, "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new'")
  [V41::Order, V42::Order].each { |m| m.reset_column_information; m.columns }
  sql(db, "ALTER TABLE orders ALTER COLUMN status DROP DEFAULT") # 43's migration again: every deployment writes it
  diag("#{name}: INSERTs of processes that booted while status defaulted to 'new':")
  err41 = nil
  begin
    V41::Order.create!(code: "B-1", status: "new")
  rescue ActiveRecord::NotNullViolation => e
    err41 = e
  end
  row = V42::Order.create!(code: "B-2", status: "new")
  sent.each { |s| diag("    #{s}") }
  ok(sent[0] && !sent[0].include?('"status"'),
     "#{name}: 41's Order.create!(status: \"new\") leaves status out of the INSERT (partial writes)", sent[0])
  ok(err41&.message&.include?('null value in column "status"'),
     "#{name}: ... and fails once the default is gone: what the refusal protected 41 from", err41&.message)
  ok(sent[1]&.include?('"status"') && row.reload.status == "new",
     "#{name}: 42's Order.create!(status: \"new\") sends status (rollguard_writes) and works", sent[1])
ensure
  ActiveSupport::Notifications.unsubscribe(sub) if sub
end

def add_column_null(with_default)
  slug = with_default ? "add_column_default" : "add_column_no_default"
  name = "add_column :customers, :email, :string, null: false#{with_default ? ', default: ""' : ''}"
  db = "rails_#{slug}"
  dir = File.join(TMP, slug)
  app41 = write_app(File.join(dir, "v41"), 41, MODELS_41)
  cls = with_default ? "AddEmailDefault" : "AddEmail"
  app43 = write_app(File.join(dir, "v43"), 43, MODELS_41, [cls.underscore, <<~RUBY])
    class #{cls} < ActiveRecord::Migration[6.1]
      def change
        add_column :customers, :email, :string, null: false#{with_default ? ', default: ""' : ''}
      end
    end
  RUBY
  setup_database(db, app41)
  V41::Customer.delete_all # PostgreSQL itself refuses NOT NULL without a default on rows
  $manifest41 ||= manifest_of(app41, db, "version 41")
  DEPLOYMENTS.each { |d| deploy_in_process(db, d, "41", $manifest41) }
  before = snapshot(db)
  r = migrate(app43, db, "every deployment runs 41 (it inserts customers)")
  if with_default
    ok(r.ok?, "#{name}: goes through while every deployment runs 41", r)
    ok(columns_of(db, "customers")["email"] == "character varying NOT NULL DEFAULT ''::character varying",
       "#{name}: customers.email added", columns_of(db, "customers"))
    connect_ar(db)
    V41::Customer.reset_column_information
    c = V41::Customer.create!(name: "Grace")
    ok(c.reload.name == "Grace", "#{name}: 41's Customer.create! still works")
  else
    ok(!r.ok? && r.err.include?("PG::ObjectInUse") &&
       r.err.include?('cannot add NOT NULL column "email" without a default to table "public.customers"') &&
       DEPLOYMENTS.all? { |d| r.err.include?(%(Deployment "#{d}" runs version "41", which inserts into public.customers without writing email)) },
       "#{name}: refused while every deployment runs 41, naming them", r)
    ok(snapshot(db) == before, "#{name}: schema and schema_migrations unchanged", snapshot(db))
    # A release that writes email cannot come first: its processes boot
    # before the column exists, and ActiveRecord leaves out what its schema
    # cache does not know (rollguard_writes included).  Its manifest, from
    # its own schema, has no email; still refused.
    app42 = write_app(File.join(dir, "v42"), 42, { "Order" => "", "Customer" => "rollguard_writes :email\n" })
    m42 = manifest_of(app42, db, "#{name}: version 42")
    ok(m42 && !m42["relations"]["public.customers"].key?("email"),
       "#{name}: 42's manifest (rollguard_writes :email, no such column yet) does not list email", m42)
    DEPLOYMENTS.each { |d| deploy_in_process(db, d, "42", m42) }
    r = migrate(app43, db, "every deployment runs 42")
    ok(!r.ok? && r.err.include?('Deployment "original" runs version "42", which inserts into public.customers without writing email'),
       "#{name}: still refused once every deployment runs 42: add it with a default instead", r)
    ok(snapshot(db) == before, "#{name}: schema and schema_migrations unchanged (42)", snapshot(db))
  end
ensure
  ActiveRecord::Base.remove_connection
end

# Issue 13: the downtime guard and ActiveRecord's add_index.
def add_index_scenario
  name = "add_index (downtime guard)"
  dir = File.join(TMP, "add_index")
  app41 = write_app(File.join(dir, "v41"), 41, MODELS_41)
  index_migration = lambda do |cls, column, concurrently|
    ["index_#{column}", <<~RUBY]
      class #{cls} < ActiveRecord::Migration[6.1]
        #{concurrently ? 'disable_ddl_transaction!' : ''}
        def change
          add_index :orders, :#{column}#{concurrently ? ', algorithm: :concurrently' : ''}
        end
      end
    RUBY
  end
  plain = write_app(File.join(dir, "plain"), 43, MODELS_41, index_migration.call("IndexCode", "code", false))
  conc = write_app(File.join(dir, "concurrent"), 43, MODELS_41, index_migration.call("IndexCode", "code", true))
  large = "rails_add_index_large"
  small = "rails_add_index_small"
  [large, small].each do |db|
    setup_database(db, app41)
    admin_sql(%(ALTER DATABASE "#{db}" SET rollguard.lock_checks_min_size = '512kB'))
  end
  sql(large, "INSERT INTO orders (code, note, created_at, updated_at) " \
             "SELECT 'C-' || g, 'note ' || g, now(), now() FROM generate_series(1, 20000) g")
  sql(large, "ANALYZE orders")
  # CI: the dry run reports the index build (downtime), which does not fail it
  r = rake(plain, large, "rollguard:check")
  ok(r.ok? && r.out.include?("#{MIGRATION_VERSION}_index_code: passes") &&
     r.out.include?("  would stall: ") && r.out.include?("20002 rows"),
     "#{name}: rake rollguard:check: passes, and says the index build would stall orders", r)
  # default (warn): flagged on the large table, silent on the small one
  r = migrate(plain, large, "large orders, lock_checks = warn (default)")
  ok(r.ok? && r.err.include?('WARNING:  CREATE INDEX without CONCURRENTLY would block writes to table "public.orders"') &&
     r.err.include?("about 20002 rows"),
     "#{name}: add_index on the large table: a WARNING naming the table and its size, migrated", r)
  r = migrate(plain, small, "small orders, lock_checks = warn (default)")
  ok(r.ok? && !r.err.include?("WARNING"), "#{name}: add_index on the small table: silent, migrated", r)
  # lock_checks = on: refused on the large table; the concurrent form passes
  sql(large, "DELETE FROM schema_migrations WHERE version = $1", [MIGRATION_VERSION])
  sql(large, "DROP INDEX IF EXISTS index_orders_on_code")
  admin_sql(%(ALTER DATABASE "#{large}" SET rollguard.lock_checks = on))
  before = snapshot(large)
  r = migrate(plain, large, "large orders, lock_checks = on")
  ok(!r.ok? && r.err.include?("ERROR:  CREATE INDEX without CONCURRENTLY would block writes") &&
     r.err.include?("HINT:  Build it concurrently"),
     "#{name}: lock_checks = on: add_index refused (55000), teaching CREATE INDEX CONCURRENTLY", r)
  ok(snapshot(large) == before, "#{name}: no index, schema_migrations unchanged", snapshot(large))
  r = migrate(conc, large, "algorithm: :concurrently + disable_ddl_transaction!")
  ok(r.ok? && !r.err.include?("WARNING") && !r.err.include?("ERROR"),
     "#{name}: add_index algorithm: :concurrently with disable_ddl_transaction! passes", r)
  ok(sql(large, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'index_orders_on_code'::regclass") == [["t"]] &&
     migrations(large).include?(MIGRATION_VERSION),
     "#{name}: the index is valid, schema_migrations records it")
end

# The rake tasks' own errors.
def task_errors
  name = "rake tasks"
  dir = File.join(TMP, "tasks")
  app41 = write_app(File.join(dir, "v41"), 41, MODELS_41)
  db = "rails_tasks"
  setup_database(db, app41)
  r = rake(app41, db, "rollguard:deploy", "DEPLOYMENT" => "web", "VERSION" => "41")
  ok(!r.ok? && r.err.include?("ROLLGUARD_VERSION must name the build (VERSION is db:migrate's target version"),
     "#{name}: VERSION alone is refused (it is db:migrate's target version)", r)
  r = rake(app41, db, "rollguard:deploy", "DEPLOYMENT" => "web", "ROLLGUARD_VERSION" => "41")
  ok(r.ok? && r.out.include?('rollguard: deployment "web" runs "41" (running) [version "41": 2 relations, 10 columns]'),
     "#{name}: rollguard:deploy derives the manifest from the models", r)
  bad = File.join(dir, "other.json")
  File.write(bad, JSON.generate("relations" => { "public.orders" => { "code" => { "writes" => true, "nullable" => false } } }))
  r = rake(app41, db, "rollguard:deploy", "DEPLOYMENT" => "web", "ROLLGUARD_VERSION" => "41", "MANIFEST" => bad)
  ok(!r.ok? && r.err.include?("ERROR:  ") && r.err.include?("(SQLSTATE "),
     "#{name}: another manifest under a known version: the server's refusal, exit status 1", r)
  r = rake(app41, db, "rollguard:rollout:begin", "DEPLOYMENT" => "web", "ROLLGUARD_VERSION" => "42")
  ok(r.ok? && r.out.include?('"41" (running), "42" (rolling out)'), "#{name}: rollguard:rollout:begin", r)
  r = rake(app41, db, "rollguard:rollout:abort", "DEPLOYMENT" => "web", "ROLLGUARD_VERSION" => "42")
  ok(r.ok? && r.out.include?('runs "41" (running)') && !r.out.include?('"42"'), "#{name}: rollguard:rollout:abort", r)
  r = rake(app41, db, "rollguard:status")
  ok(r.ok? && r.out.include?("web"), "#{name}: rollguard:status", r)
  # Columns the database fills (identity, generated), a declared column
  sql(db, "CREATE TABLE gadgets (id bigserial PRIMARY KEY, n int NOT NULL GENERATED BY DEFAULT AS IDENTITY, " \
          "w int, twice int GENERATED ALWAYS AS (w * 2) STORED, label text NOT NULL, kind text NOT NULL DEFAULT 'x')")
  connect_ar(db)
  gadget = Class.new(ActiveRecord::Base) do
    self.table_name = "gadgets"
    rollguard_writes :kind
  end
  Object.const_set(:RgGadget, gadget) unless defined?(RgGadget)
  m, = Rollguard::Manifest.build(models: [RgGadget], check_pending: false)
  want = { "id" => [false, false], "n" => [false, false], "twice" => [false, false], "w" => [false, true],
           "label" => [true, false], "kind" => [true, false] }
  ok(m["relations"]["public.gadgets"].transform_values { |p| [p["writes"], p["nullable"]] } == want,
     "#{name}: manifest: identity and generated columns not written, NOT NULL without a default written, " \
     "rollguard_writes :kind written", m)
  sent = []
  sub = ActiveSupport::Notifications.subscribe("sql.active_record") { |*, p| sent << p[:sql] if p[:sql].start_with?("INSERT") }
  RgGadget.create!(label: "a", kind: "x")
  ActiveSupport::Notifications.unsubscribe(sub)
  # (the INSERT's column list: from ActiveRecord 7.1 its RETURNING names
  # the columns the database fills, n among them)
  cols = sent.size == 1 ? sent[0][/\A\s*INSERT INTO\s+\S+\s*\(([^)]*)\)/, 1].to_s : ""
  ok(cols.include?('"kind"') && !cols.include?('"n"'),
     "#{name}: rollguard_writes :kind sends kind even when it equals the default", sent)
  ActiveRecord::Base.remove_connection
  create_database("rails_plain", extension: false)
  system({ "APP" => app41, "DATABASE_URL" => database_url("rails_plain") }, "rake", "-f", RAKEFILE, "db:migrate",
         out: File::NULL, err: File::NULL)
  r = rake(app41, "rails_plain", "rollguard:deploy", "DEPLOYMENT" => "web", "ROLLGUARD_VERSION" => "41")
  ok(!r.ok? && r.err.include?('HINT:  Is the rollguard extension created in database "rails_plain"?'),
     "#{name}: a database without the extension: a hint to create it", r)
end

def main
  only = ARGV
  wanted = ->(n) { only.empty? || only.any? { |o| n.include?(o) } }
  diag("ActiveRecord #{ActiveRecord.version}, pg #{PG::VERSION}, ruby #{RUBY_VERSION}")
  run = lambda do |n, &body|
    return unless wanted.call(n)

    diag("scenario #{n}")
    t0 = Time.now
    begin
      body.call
    rescue StandardError, ScriptError => e
      ok(false, "#{n}: unexpected error", "#{e.class}: #{e.message}\n#{e.backtrace.first(8).join("\n")}")
    end
    diag(format("(%.1f s)", Time.now - t0))
  end
  MIRROR.each do |s|
    run.call(s[:name]) do
      mirror(s) do |db, app41, app42, _app43, m42, m43|
        if s[:slug] == "change_column_default"
          partial_writes(db, app41, m42, m43)
          insert_probe(db, app41, app42)
        end
      end
    end
  end
  run.call("add_column null: false, default") { add_column_null(true) }
  run.call("add_column null: false without default") { add_column_null(false) }
  run.call("add_index (downtime guard)") { add_index_scenario }
  run.call("rake tasks") { task_errors }
rescue StandardError, ScriptError => e
  ok(false, "unexpected error", "#{e.class}: #{e.message}\n#{e.backtrace.first(8).join("\n")}")
ensure
  FileUtils.rm_rf(TMP)
  puts format("# %d tests, %d failed (%.1f s)", $tests, $failures, Time.now - STARTED)
  $stdout.flush
  exit($failures.zero? && $tests.positive? ? 0 : 1)
end

main
