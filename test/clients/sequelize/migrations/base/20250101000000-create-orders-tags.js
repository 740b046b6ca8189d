'use strict';
// The tables every Sequelize scenario starts from (test_sequelize.js),
// created with queryInterface.createTable before any deployment is
// registered:
//   orders (id serial primary key, status varchar(20) NOT NULL DEFAULT 'new',
//           code varchar(20) NOT NULL, note varchar(20),
//           "createdAt", "updatedAt" timestamptz NOT NULL)
//   tags (id serial primary key, name varchar(40) NOT NULL, "createdAt", "updatedAt")
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.createTable('orders', {
      id: { type: Sequelize.INTEGER, autoIncrement: true, primaryKey: true, allowNull: false },
      status: { type: Sequelize.STRING(20), allowNull: false, defaultValue: 'new' },
      code: { type: Sequelize.STRING(20), allowNull: false },
      note: { type: Sequelize.STRING(20) },
      createdAt: { type: Sequelize.DATE, allowNull: false },
      updatedAt: { type: Sequelize.DATE, allowNull: false },
    });
    await queryInterface.createTable('tags', {
      id: { type: Sequelize.INTEGER, autoIncrement: true, primaryKey: true, allowNull: false },
      name: { type: Sequelize.STRING(40), allowNull: false },
      createdAt: { type: Sequelize.DATE, allowNull: false },
      updatedAt: { type: Sequelize.DATE, allowNull: false },
    });
  },
  async down(queryInterface) {
    await queryInterface.dropTable('tags');
    await queryInterface.dropTable('orders');
  },
};
