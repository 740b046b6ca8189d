# frozen_string_literal: true

module Rollguard
  # Deploy steps through ActiveRecord's connection, each in one transaction:
  # register the version with its manifest (deploy and rollout begin), then
  # rollguard.deploy / begin_rollout / finish_rollout / abort_rollout.
  module Deploy
    STEPS = {
      "deploy" => "rollguard.deploy",
      "begin" => "rollguard.begin_rollout",
      "finish" => "rollguard.finish_rollout",
      "abort" => "rollguard.abort_rollout",
    }.freeze

    class Refused < StandardError; end

    module_function

    # Registers the version; records no step (before the migration runs, so
    # that a refusal knows what this release no longer uses).
    def register(version:, manifest:, connection: ActiveRecord::Base.connection)
      guarded(connection) do
        connection.transaction do
          connection.execute("SELECT rollguard.register_version(#{connection.quote(version)}, " \
                             "#{connection.quote(JSON.generate(manifest))}::jsonb)")
        end
      end
      "rollguard: version \"#{version}\" registered: #{manifest['relations'].size} relations, " \
        "#{Manifest.count_columns(manifest)} columns"
    end

    # A deploy step: "deploy", "begin", "finish" or "abort".  deploy and
    # begin register the version with `manifest` first, in the same
    # transaction.  With `key`, rollguard.use_key() first.
    def step(step, deployment:, version:, manifest: nil, key: nil,
             connection: ActiveRecord::Base.connection)
      fn = STEPS.fetch(step)
      q = ->(v) { connection.quote(v) }
      live = guarded(connection) do
        connection.transaction do
          connection.execute("SELECT rollguard.use_key(#{q[deployment]}, #{q[key]})") if key
          if manifest && %w[deploy begin].include?(step)
            connection.execute("SELECT rollguard.register_version(#{q[version]}, " \
                               "#{q[JSON.generate(manifest)]}::jsonb)")
          end
          connection.execute("SELECT #{fn}(#{q[deployment]}, #{q[version]})")
          connection.select_rows("SELECT version, state FROM rollguard.deployments " \
                                 "WHERE deployment = #{q[deployment]} ORDER BY state = 'rolling out', since")
        end
      end
      state = live.map { |v, s| "\"#{v}\" (#{s})" }.join(", ")
      state = "nothing" if state.empty?
      line = "rollguard: deployment \"#{deployment}\" runs #{state}"
      if manifest && %w[deploy begin].include?(step)
        line += " [version \"#{version}\": #{manifest['relations'].size} relations, " \
                "#{Manifest.count_columns(manifest)} columns]"
      end
      line
    end

    # The server's refusal as psql prints it: message, DETAIL, HINT, SQLSTATE.
    def describe(error, connection = nil)
      pg = error.respond_to?(:cause) && error.cause.respond_to?(:result) ? error.cause : nil
      return error.message unless pg&.result

      r = pg.result
      field = ->(f) { r.error_field(f) }
      lines = ["ERROR:  #{field[PG::PG_DIAG_MESSAGE_PRIMARY]}"]
      lines << "DETAIL:  #{field[PG::PG_DIAG_MESSAGE_DETAIL]}" if field[PG::PG_DIAG_MESSAGE_DETAIL]
      lines << "HINT:  #{field[PG::PG_DIAG_MESSAGE_HINT]}" if field[PG::PG_DIAG_MESSAGE_HINT]
      code = field[PG::PG_DIAG_SQLSTATE]
      if %w[3F000 42883].include?(code) && connection
        lines << "HINT:  Is the rollguard extension created in database " \
                 "\"#{connection.current_database}\"?"
      end
      lines << "(SQLSTATE #{code})"
      lines.join("\n")
    end

    def guarded(connection)
      yield
    rescue ActiveRecord::StatementInvalid => e
      raise Refused, describe(e, connection)
    end
  end
end
