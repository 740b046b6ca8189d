'use strict';
// queryInterface.dropTable('tags'): refused while a deployment runs version
// 41 (whose Tag model uses it).
module.exports = {
  async up(queryInterface) {
    await queryInterface.dropTable('tags');
  },
  async down(queryInterface, Sequelize) {
    await queryInterface.createTable('tags', {
      id: { type: Sequelize.INTEGER, autoIncrement: true, primaryKey: true, allowNull: false },
      name: { type: Sequelize.STRING(40), allowNull: false },
      createdAt: { type: Sequelize.DATE, allowNull: false },
      updatedAt: { type: Sequelize.DATE, allowNull: false },
    });
  },
};
