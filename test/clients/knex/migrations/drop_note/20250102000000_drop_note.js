// Scenarios 3 and 4: t.dropColumn('note').  Refused while a deployment runs
// version 41 (which uses orders.note); allowed once every one runs 42.
exports.up = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.dropColumn('note');
  });
};

exports.down = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('note', 20);
  });
};
