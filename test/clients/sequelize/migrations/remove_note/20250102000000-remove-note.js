'use strict';
// queryInterface.removeColumn('orders', 'note'): refused while a deployment
// runs version 41 (which uses orders.note); goes through once every one runs 42.
module.exports = {
  async up(queryInterface) {
    await queryInterface.removeColumn('orders', 'note');
  },
  async down(queryInterface, Sequelize) {
    await queryInterface.addColumn('orders', 'note', { type: Sequelize.STRING(20) });
  },
};
