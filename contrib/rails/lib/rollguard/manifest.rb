# frozen_string_literal: true

require "json"

module Rollguard
  # The manifest of this code version, from its ActiveRecord models:
  #
  #   {"relations": {"public.orders": {"id":     {"writes": false, "nullable": false},
  #                                    "status": {"writes": false, "nullable": true}, ...}}}
  #
  # Columns: Model.columns, i.e. the model's table as the connected database
  # shows it, minus ignored_columns (how Rails code stops using a column
  # before a migration drops it).  Run it against a database migrated to
  # this build's schema (CI's, or a scratch one after db:schema:load): it
  # refuses to run while migrations of this build are pending.
  #
  # "writes" (every INSERT of this code carries the column) is not read off
  # the schema's defaults (an identity column counts as one with a default).  ActiveRecord's partial inserts (partial_writes,
  # the 6.1 default; partial_inserts in 7.0+) send only the attributes whose
  # value differs from the default the process read when it booted:
  # Order.create!(status: "new") sends no status while the column defaults
  # to 'new'.  So a column is written only when every INSERT must carry it:
  #   - a NOT NULL column without a default (an INSERT without it fails),
  #   - created_at/updated_at (record_timestamps: set on create),
  #   - the optimistic locking column (always added to the INSERT),
  #   - columns declared with rollguard_writes (added to every INSERT),
  #   - with partial inserts off (partial_writes = false in 6.1,
  #     partial_inserts = false in 7.0+): columns with a presence
  #     validation without conditions (always assigned, always sent).
  # Everything else, a column with a default above all, is "writes": false,
  # the side that refuses DROP DEFAULT while this version runs.  The
  # primary key and generated columns: false.
  #
  # "nullable" (the code may write NULL) is false for the primary key,
  # generated columns, NOT NULL columns, timestamps, the locking column,
  # columns with a presence validation without conditions (also the foreign
  # key of a required belongs_to) and rollguard_writes ..., nullable: false;
  # true otherwise.  Both keys are always written, for every column.
  #
  # The schema must be exactly this build's: the manifest is refused while
  # a migration of this build is pending or when the database has run one
  # this build does not have (a later build's schema, where a default this
  # build's code relies on may be gone).
  #
  # Models on one table (STI): a column is written only if every model
  # writes it, and nullable if any model may write NULL.
  module Manifest
    INTERNAL = %w[ActiveRecord::SchemaMigration ActiveRecord::InternalMetadata].freeze

    class Error < StandardError; end

    module_function

    # Concrete models whose table the code uses.
    def models(base = ActiveRecord::Base)
      base.descendants.reject do |m|
        m.abstract_class? || m.name.nil? || INTERNAL.include?(m.name) || m.table_name.nil?
      end.sort_by(&:name)
    end

    def partial_inserts?(model)
      if model.respond_to?(:partial_inserts)
        model.partial_inserts
      else
        model.partial_writes
      end
    end

    # A presence validation without conditions: every saved record has a
    # value (not NULL, not blank).
    def unconditional_presence?(model, attribute)
      model.validators_on(attribute.to_sym).any? do |v|
        v.is_a?(ActiveModel::Validations::PresenceValidator) &&
          (v.options.keys & %i[if unless on allow_nil allow_blank]).empty?
      end
    end

    # Foreign keys of belongs_to associations that must be present.
    def required_foreign_keys(model)
      model.reflect_on_all_associations(:belongs_to).select do |r|
        !r.polymorphic? && unconditional_presence?(model, r.name)
      end.map { |r| r.foreign_key.to_s }
    end

    # Columns the database fills on its own that ActiveRecord 6.1 does not
    # see as such: identity columns (a default of their own, not in
    # Column#default_function) and generated columns.
    # {name => :identity | :generated}
    def filled_by_database(connection, table_name)
      connection.select_rows(<<~SQL).to_h { |name, identity| [name, identity == "t" || identity == true ? :identity : :generated] }
        SELECT attname, attidentity <> ''
          FROM pg_catalog.pg_attribute
         WHERE attrelid = pg_catalog.to_regclass(#{connection.quote(table_name)})
           AND attnum > 0 AND NOT attisdropped AND (attidentity <> '' OR attgenerated <> '')
      SQL
    end

    def model_columns(model, filled = {})
      pk = Array(model.primary_key).map(&:to_s)
      partial = partial_inserts?(model)
      stamps = model.record_timestamps ? model.all_timestamp_attributes_in_model.map(&:to_s) : []
      lock = model.locking_enabled? ? [model.locking_column.to_s] : []
      declared = model.respond_to?(:rollguard_written_columns) ? model.rollguard_written_columns : {}
      required = required_foreign_keys(model)
      model.columns.each_with_object({}) do |col, out|
        name = col.name
        generated = (col.respond_to?(:virtual?) && col.virtual?) || filled[name] == :generated
        if pk.include?(name) || generated
          out[name] = { "writes" => false, "nullable" => false }
          next
        end
        present = unconditional_presence?(model, name) || required.include?(name)
        must = !col.null && col.default.nil? && col.default_function.nil? && !filled.key?(name)
        always = must || stamps.include?(name) || lock.include?(name)
        writes = always || declared.key?(name) || (!partial && present)
        nullable = !(always || !col.null || present ||
                     (declared.key?(name) && declared[name][:nullable] == false))
        out[name] = { "writes" => writes, "nullable" => nullable }
      end
    end

    # [schema, table] of a model's table_name; schema nil for a bare name.
    def split_table_name(name)
      parts = name.to_s.split(".", 2).map { |p| p.delete_prefix('"').delete_suffix('"') }
      parts.size == 2 ? parts : [nil, parts[0]]
    end

    # {name => schema} of bare table names, as PostgreSQL resolves them at
    # run time against the connection's search_path.
    def resolve_schemas(connection, names)
      return {} if names.empty?

      list = names.map { |n| connection.quote(n) }.join(", ")
      rows = connection.select_rows(<<~SQL)
        SELECT t.name,
               COALESCE((SELECT n.nspname
                           FROM pg_catalog.pg_class c
                           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(t.name))),
                        pg_catalog.current_schema())
          FROM pg_catalog.unnest(ARRAY[#{list}]::text[]) AS t(name)
      SQL
      missing = rows.find { |_, nsp| nsp.nil? }
      raise Error, "cannot tell the schema of table #{missing[0]}: the search_path names no existing schema" if missing

      rows.to_h
    end

    # The app's migrations and the versions the database has run: the
    # connection pool's MigrationContext from ActiveRecord 7.1 (7.2 removed
    # the connection's), the connection's in 6.1 and 7.0.
    def migration_context(connection)
      pool = connection.pool
      pool.respond_to?(:migration_context) ? pool.migration_context : connection.migration_context
    end

    # Why the database's schema is not this build's: its pending migrations
    # (Model.columns would be an older schema), or migrations it has run
    # that this build does not have (a later build's schema).  nil if none.
    def schema_mismatch(connection)
      context = migration_context(connection)
      pending = context.open.pending_migrations.map { |m| "#{m.version}_#{m.name.underscore}" }
      unless pending.empty?
        return "#{pending.size} migration#{pending.size == 1 ? '' : 's'} of this build " \
               "#{pending.size == 1 ? 'is' : 'are'} pending (#{pending.first}" \
               "#{pending.size > 1 ? ', ...' : ''}): the models' columns would be an older schema's"
      end
      known = context.migrations.map(&:version)
      unknown = context.get_all_versions - known
      return nil if unknown.empty?

      "the database has run #{unknown.size} migration#{unknown.size == 1 ? '' : 's'} this build " \
        "does not have (#{unknown.min}#{unknown.size > 1 ? ', ...' : ''}): the models' columns " \
        "would be a later build's schema"
    end

    # The manifest (a Hash) and warnings (Strings).
    def build(models: self.models, connection: ActiveRecord::Base.connection, check_pending: true)
      if check_pending && (why = schema_mismatch(connection))
        raise Error, "rollguard: cannot derive this build's manifest here: #{why}. Derive it " \
                     "where exactly this build's migrations have run (bin/rails rollguard:manifest " \
                     "> manifest.json in CI) and pass MANIFEST=manifest.json"
      end
      tables = models.map do |m|
        raise Error, "model #{m.name}: table #{m.table_name} does not exist" unless m.table_exists?

        [split_table_name(m.table_name), model_columns(m, filled_by_database(connection, m.table_name)), m]
      end
      bare = tables.filter_map { |(nsp, name), _, _| name if nsp.nil? }.uniq.sort
      resolved = resolve_schemas(connection, bare)
      relations = {}
      writers = {}
      tables.each do |(nsp, name), columns, model|
        rel = "#{nsp || resolved.fetch(name)}.#{name}"
        relation = relations[rel] ||= {}
        columns.each do |column, props|
          if (old = relation[column])
            props = { "writes" => old["writes"] && props["writes"],
                      "nullable" => old["nullable"] || props["nullable"] }
          end
          relation[column] = props
        end
        (writers[rel] ||= []) << model.name
      end
      warnings = relations.filter_map do |rel, columns|
        next if columns.values.any? { |p| p["writes"] }

        "#{rel} (#{writers[rel].join(', ')}): no column is on every INSERT, so rollguard " \
          "counts this version as not inserting into it (ADD COLUMN ... NOT NULL without a " \
          "default would not be refused on its account); add timestamps or declare one with " \
          "rollguard_writes if the code inserts rows"
      end
      [{ "relations" => relations.sort.to_h.transform_values { |c| c.sort.to_h } }, warnings]
    end

    def to_json(manifest)
      JSON.pretty_generate(manifest)
    end

    def count_columns(manifest)
      manifest["relations"].values.sum(&:size)
    end

    def load_file(path)
      manifest = JSON.parse(File.read(path))
      unless manifest.is_a?(Hash) && manifest["relations"].is_a?(Hash)
        raise Error, "manifest #{path} is not {\"relations\": {...}}"
      end

      manifest
    rescue SystemCallError, JSON::ParserError => e
      raise Error, "cannot read manifest #{path}: #{e.message}"
    end
  end
end
