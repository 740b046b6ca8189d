# frozen_string_literal: true

# rollguard's rake tasks (loaded by rollguard/rails's Railtie):
#
#   bin/rails rollguard:manifest > manifest.json                # at build time, migrated database
#   bin/rails rollguard:register ROLLGUARD_VERSION=42 MANIFEST=manifest.json   # before db:migrate
#   bin/rails rollguard:deploy DEPLOYMENT=mirror-2 ROLLGUARD_VERSION=42 MANIFEST=manifest.json
#   bin/rails rollguard:rollout:begin|finish|abort DEPLOYMENT=web ROLLGUARD_VERSION=43 [MANIFEST=...]
#   bin/rails rollguard:status
#   bin/rails rollguard:check                                   # CI: would db:migrate be refused?
#
# ROLLGUARD_VERSION, not VERSION: VERSION is db:migrate's target version,
# and a deploy script that exports VERSION=42 for rollguard would make
# db:migrate migrate to version 42.  Without MANIFEST, the manifest is
# derived from the models now (refused while migrations are pending: the
# columns would be the database's, not this build's).  With ROLLGUARD_KEY,
# the deployment's key is presented first (rollguard.use_key()).  A refusal
# prints the server's message, DETAIL and HINT and exits with status 1;
# nothing is recorded then.
require "rollguard/manifest"
require "rollguard/deploy"
require "rollguard/check"

module Rollguard
  module Tasks
    module_function

    def load_models
      Rails.application.eager_load! if defined?(Rails) && Rails.respond_to?(:application) && Rails.application
    end

    def env(name, what)
      value = ENV[name].to_s
      if value.empty?
        extra = name == "ROLLGUARD_VERSION" && ENV["VERSION"] ? " (VERSION is db:migrate's target version, not rollguard's)" : ""
        abort "rollguard: #{name} must name #{what}#{extra}"
      end
      value
    end

    def deployment
      ENV["DEPLOYMENT"].to_s.empty? ? env("ROLLGUARD_DEPLOYMENT", "the deployment (DEPLOYMENT or ROLLGUARD_DEPLOYMENT)") : ENV["DEPLOYMENT"]
    end

    def manifest
      path = ENV["MANIFEST"].to_s
      return Manifest.load_file(path) unless path.empty?

      load_models
      manifest, warnings = Manifest.build
      warnings.each { |w| warn "rollguard: warning: #{w}" }
      manifest
    end

    def run
      puts yield
    rescue Manifest::Error, Deploy::Refused => e
      abort e.message
    end

    def step(name, register)
      run do
        Deploy.step(name, deployment: deployment, version: env("ROLLGUARD_VERSION", "the build"),
                          manifest: register ? manifest : nil, key: ENV["ROLLGUARD_KEY"].to_s.then { |k| k.empty? ? nil : k })
      end
    end
  end
end

namespace :rollguard do
  desc "Print this build's manifest (the columns its models use) as JSON"
  task manifest: :environment do
    Rollguard::Tasks.run do
      Rollguard::Tasks.load_models
      manifest, warnings = Rollguard::Manifest.build
      warnings.each { |w| warn "rollguard: warning: #{w}" }
      Rollguard::Manifest.to_json(manifest)
    end
  end

  desc "Register ROLLGUARD_VERSION with its manifest, record no step (before db:migrate)"
  task register: :environment do
    Rollguard::Tasks.run do
      Rollguard::Deploy.register(version: Rollguard::Tasks.env("ROLLGUARD_VERSION", "the build"),
                                 manifest: Rollguard::Tasks.manifest)
    end
  end

  desc "DEPLOYMENT now runs ROLLGUARD_VERSION (registered with its manifest, one transaction)"
  task deploy: :environment do
    Rollguard::Tasks.step("deploy", true)
  end

  namespace :rollout do
    desc "ROLLGUARD_VERSION starts beside what DEPLOYMENT runs (registered with its manifest)"
    task begin: :environment do
      Rollguard::Tasks.step("begin", true)
    end

    desc "Only ROLLGUARD_VERSION remains on DEPLOYMENT"
    task finish: :environment do
      Rollguard::Tasks.step("finish", false)
    end

    desc "ROLLGUARD_VERSION is gone again from DEPLOYMENT"
    task abort: :environment do
      Rollguard::Tasks.step("abort", false)
    end
  end

  desc "Dry run: the SQL of each pending migration through rollguard.check(); exit 1 if any would be refused"
  task check: :environment do
    begin
      lines, blocked = Rollguard::Check.run
    rescue Rollguard::Deploy::Refused => e
      abort e.message
    end
    puts lines
    exit 1 if blocked.positive?
  end

  desc "A short report of the fleet (rollguard.status())"
  task status: :environment do
    Rollguard::Tasks.run do
      conn = ActiveRecord::Base.connection
      Rollguard::Deploy.guarded(conn) { conn.select_values("SELECT * FROM rollguard.status()") }.join("\n")
    end
  end
end
