// Scenarios 3 and 4: t.string('note', 40).notNullable().alter() on the
// nullable orders.note: widened, but left NOT NULL.  knex sends DROP DEFAULT,
// DROP NOT NULL, TYPE varchar(40), SET NOT NULL; the transaction as a whole
// tightens the column, so it is refused (at the statement or at commit)
// while a deployment runs version 41, which may write NULL to it; allowed
// once every one runs 42, which always writes a value.
exports.up = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('note', 40).notNullable().alter();
  });
};

exports.down = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.string('note', 20).nullable().alter();
  });
};
