// Scenario 1: widen orders.status with .alter(), keeping NOT NULL and the
// default 'new' that version 41's code relies on ("writes": false).  knex
// sends DROP DEFAULT, DROP NOT NULL, TYPE varchar(40), SET DEFAULT, SET NOT
// NULL in one transaction; its net effect breaks nothing, so rollguard must
// let it through.
exports.up = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('status', 40).notNullable().defaultTo('new').alter();
  });
};

exports.down = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('status', 20).notNullable().defaultTo('new').alter();
  });
};
