// Scenario 2: widen orders.code (NOT NULL, no default) with .alter().  knex
// sends DROP DEFAULT, DROP NOT NULL, TYPE varchar(40), SET NOT NULL in one
// transaction; version 41's manifest leaves "nullable" at its default (true),
// but the column was NOT NULL before and is after, so nothing breaks and
// rollguard must let it through.
exports.up = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('code', 40).notNullable().alter();
  });
};

exports.down = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('code', 20).notNullable().alter();
  });
};
