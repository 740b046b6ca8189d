// The table every knex scenario starts from (test/clients/knex/test_knex.js),
// created by knex's schema builder before any deployment is registered:
//   create table "orders" ("id" serial primary key,
//     "status" varchar(20) not null default 'new', "code" varchar(20) not null,
//     "note" varchar(20))
exports.up = function (knex) {
  return knex.schema.createTable('orders', (t) => {
    t.increments('id');
    t.string('status', 20).notNullable().defaultTo('new');
    t.string('code', 20).notNullable();
    t.string('note', 20);
  });
};

exports.down = function (knex) {
  return knex.schema.dropTable('orders');
};
