# frozen_string_literal: true

# rollguard's Rails integration.  In a Rails app, an initializer
# (config/initializers/rollguard.rb) loads it:
#
#     $LOAD_PATH.unshift "/path/to/rollguard/contrib/rails/lib"   # or vendor it into lib/
#     require "rollguard/rails"
#
# It gives every model rollguard_writes (lib/rollguard/model.rb) and, through
# a Railtie, the rake tasks of lib/tasks/rollguard.rake.  Outside Rails
# (ActiveRecord alone), load those tasks from the Rakefile after this
# require, and define an :environment task that connects and loads the
# models.
require "active_record"
require "rollguard/model"
require "rollguard/manifest"
require "rollguard/deploy"
require "rollguard/check"

ActiveSupport.on_load(:active_record) { include Rollguard::Model }

if defined?(Rails::Railtie)
  module Rollguard
    class Railtie < Rails::Railtie
      rake_tasks { load File.expand_path("../tasks/rollguard.rake", __dir__) }
    end
  end
end
