// Scenarios 3 and 4: t.dropNullable('note') (SET NOT NULL).  Refused while a
// deployment runs version 41, which may write NULL to orders.note; allowed
// once every one runs 42, which always writes a value.
exports.up = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.dropNullable('note');
  });
};

exports.down = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.setNullable('note');
  });
};
