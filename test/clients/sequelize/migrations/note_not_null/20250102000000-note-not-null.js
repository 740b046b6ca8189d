'use strict';
// queryInterface.changeColumn to allowNull: false.  Sequelize sends, in one
// query string: SET NOT NULL; DROP DEFAULT; TYPE varchar(20).  Refused while
// a deployment runs version 41, which may insert orders without a note.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.changeColumn('orders', 'note', { type: Sequelize.STRING(20), allowNull: false });
  },
  async down(queryInterface, Sequelize) {
    await queryInterface.changeColumn('orders', 'note', { type: Sequelize.STRING(20), allowNull: true });
  },
};
