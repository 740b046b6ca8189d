'use strict';
// Two statements, as sequelize-cli and umzug run a migration by default:
// outside a transaction, each queryInterface call committed on its own.
// addColumn goes through and stays; removeColumn is refused while a
// deployment runs version 41: the migration is left half applied (remark
// added, note kept, SequelizeMeta without it), and running it again fails on
// addColumn (column "remark" already exists).
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('orders', 'remark', { type: Sequelize.STRING(20) });
    await queryInterface.removeColumn('orders', 'note');
  },
  async down(queryInterface, Sequelize) {
    await queryInterface.addColumn('orders', 'note', { type: Sequelize.STRING(20) });
    await queryInterface.removeColumn('orders', 'remark');
  },
};
