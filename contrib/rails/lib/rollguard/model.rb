# frozen_string_literal: true

# rollguard_writes: a model's declaration that every INSERT of this code
# carries a column.
#
#     class Order < ApplicationRecord
#       rollguard_writes :status                    # always sent on INSERT
#       rollguard_writes :code, nullable: false     # ... and never NULL
#     end
#
# ActiveRecord's partial inserts (partial_writes, the default in 6.1;
# partial_inserts in 7.0+) leave out of the INSERT every attribute whose
# value equals the default the process read from the schema when it
# booted: Order.create!(status: "new") sends no status when the column's
# default was 'new'.  Such code relies on the database default, whatever
# it assigns.  rollguard_writes makes the declaration true: the declared
# columns are added to every INSERT this model sends through save/create
# (not insert_all/upsert_all, which send what they are given), so rollguard
# may let DROP DEFAULT (or SET NOT NULL, ADD COLUMN ... NOT NULL) through
# once every deployment runs such a version.  "nullable: false" is a
# promise of the code (a value is always assigned); a presence validation
# without conditions says the same by itself.
module Rollguard
  module Model
    def self.included(base)
      base.extend(ClassMethods)
      base.class_attribute :rollguard_written_columns, instance_writer: false, default: {}
    end

    module ClassMethods
      def rollguard_writes(*columns, nullable: true)
        raise ArgumentError, "rollguard_writes: name at least one column" if columns.empty?

        declared = rollguard_written_columns.dup
        columns.each { |c| declared[c.to_s] = { nullable: nullable ? true : false } }
        self.rollguard_written_columns = declared.freeze
      end
    end

    private

    # ActiveRecord 6.1 (partial_writes; also used for updates there)
    def attribute_names_for_partial_writes
      rollguard_with_declared(super)
    end

    # ActiveRecord 7.0+
    def attribute_names_for_partial_inserts
      rollguard_with_declared(super)
    end

    def rollguard_with_declared(names)
      return names unless new_record?

      declared = rollguard_written_columns.keys & self.class.column_names
      declared.empty? ? names : (names | declared)
    end
  end
end
