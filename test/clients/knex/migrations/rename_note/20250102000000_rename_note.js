// Scenarios 3 and 4: t.renameColumn('note', 'remark').  Refused while a
// deployment runs version 41 (which uses orders.note); allowed once every
// one runs 42.
exports.up = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.renameColumn('note', 'remark');
  });
};

exports.down = function (knex) {
  return knex.schema.alterTable('orders', (t) => {
    t.renameColumn('remark', 'note');
  });
};
