'use strict';
// The same two statements in one transaction, the way Sequelize documents
// it for migrations: queryInterface.sequelize.transaction() and
// {transaction} on each call.  Refused while a deployment runs version 41,
// and nothing stays: remark is not added.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.sequelize.transaction(async (transaction) => {
      await queryInterface.addColumn('orders', 'remark', { type: Sequelize.STRING(20) }, { transaction });
      await queryInterface.removeColumn('orders', 'note', { transaction });
    });
  },
  async down(queryInterface, Sequelize) {
    await queryInterface.sequelize.transaction(async (transaction) => {
      await queryInterface.addColumn('orders', 'note', { type: Sequelize.STRING(20) }, { transaction });
      await queryInterface.removeColumn('orders', 'remark', { transaction });
    });
  },
};
