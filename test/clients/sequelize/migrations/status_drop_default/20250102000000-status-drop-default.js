'use strict';
// queryInterface.changeColumn without the defaultValue the column had:
// Sequelize sends SET NOT NULL; DROP DEFAULT; TYPE varchar(20).  Refused
// while a deployment runs version 41, whose model leaves status to the
// database's DEFAULT 'new'; goes through once every one runs 42, whose model
// has defaultValue: 'new' (Sequelize sends it on every create).
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.changeColumn('orders', 'status', { type: Sequelize.STRING(20), allowNull: false });
  },
  async down(queryInterface, Sequelize) {
    await queryInterface.changeColumn('orders', 'status', { type: Sequelize.STRING(20), allowNull: false, defaultValue: 'new' });
  },
};
