# frozen_string_literal: true

module Rollguard
  # The CI dry run: the SQL of every pending migration, in order, through
  # rollguard.check(), which judges it against the deployments live now and
  # executes nothing.
  #
  # ActiveRecord has no offline SQL mode, so each migration's `up` runs with
  # the connection's execute() recording the statements that write
  # (ActiveRecord's write_query?: DDL, DML) instead of sending them; what
  # reads (schema look-ups, SELECTs) runs, inside a transaction rolled back
  # at the end.  A migration that reads what an earlier pending one would
  # have created sees the schema as it is, and may record other statements
  # than the real run sends.
  module Check
    module Recorder
      def execute(sql, name = nil)
        recording = Thread.current[:rollguard_recording]
        return super if recording.nil?
        return read { super } unless write_query?(sql)

        recording << sql.strip.sub(/;\s*\z/, "")
        nil
      end

      def query(sql, name = nil)
        Thread.current[:rollguard_recording] ? read { super } : super
      end

      def exec_query(sql, name = "SQL", binds = [], prepare: false)
        Thread.current[:rollguard_recording] ? read { super } : super
      end

      private

      # A read in a savepoint of its own: one that fails (rename_table looks
      # up the new name, which does not exist since nothing ran) and is
      # rescued by ActiveRecord leaves the transaction usable.
      def read(&block)
        return yield if Thread.current[:rollguard_reading]

        begin
          Thread.current[:rollguard_reading] = true
          transaction(requires_new: true, &block)
        ensure
          Thread.current[:rollguard_reading] = nil
        end
      end
    end

    Finding = Struct.new(:change, :relation, :column, :deployment, :version, :reason, :downtime)

    module_function

    # The statements one pending migration (a MigrationProxy) sends going up.
    def migration_sql(connection, proxy)
      connection.singleton_class.prepend(Recorder) unless connection.singleton_class <= Recorder
      statements = []
      verbose = ActiveRecord::Migration.verbose
      connection.transaction(requires_new: true) do
        ActiveRecord::Migration.verbose = false
        Thread.current[:rollguard_recording] = statements
        begin
          proxy.send(:migration).exec_migration(connection, :up)
        ensure
          Thread.current[:rollguard_recording] = nil
          ActiveRecord::Migration.verbose = verbose
        end
        raise ActiveRecord::Rollback
      end
      statements
    end

    def findings(connection, script)
      connection.select_rows(
        "SELECT change, relation, \"column\", deployment, version, reason, family = 'downtime' " \
        "FROM rollguard.check(#{connection.quote(script)})"
      ).map { |r| Finding.new(*r[0, 6], [true, "t"].include?(r[6])) }
    end

    # [report lines, number of migrations that would be refused]
    def run(connection = ActiveRecord::Base.connection)
      pending = Manifest.migration_context(connection).open.pending_migrations
      return [["rollguard: no migrations to apply"], 0] if pending.empty?

      blocked = 0
      lines = []
      pending.each do |proxy|
        name = "#{proxy.version}_#{proxy.name.underscore}"
        script = migration_sql(connection, proxy).map { |s| "#{s};" }.join("\n")
        found = Deploy.guarded(connection) { findings(connection, script) }
        rows = found.reject(&:downtime)
        stalls = found.select(&:downtime).map { |f| "  would stall: #{f.reason}" }
        if rows.empty?
          lines << "#{name}: passes"
        else
          blocked += 1
          deployments = rows.map(&:deployment).uniq.sort
          lines << "#{name}: would be refused: #{deployments.size} deployment" \
                   "#{deployments.size == 1 ? '' : 's'} would break (#{deployments.join(', ')})"
          rows.each do |f|
            what = f.column ? "#{f.relation}.#{f.column}" : f.relation
            lines << "  #{f.change} #{what}: deployment \"#{f.deployment}\" runs version \"#{f.version}\", which #{f.reason}"
          end
        end
        lines.concat(stalls)
      end
      [lines, blocked]
    end
  end
end
