'use strict';
// queryInterface.renameColumn('orders', 'note', 'remark'): refused while a
// deployment runs version 41 (which uses orders.note).
module.exports = {
  async up(queryInterface) {
    await queryInterface.renameColumn('orders', 'note', 'remark');
  },
  async down(queryInterface) {
    await queryInterface.renameColumn('orders', 'remark', 'note');
  },
};
