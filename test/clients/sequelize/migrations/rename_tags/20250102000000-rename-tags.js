'use strict';
// queryInterface.renameTable('tags', 'labels'): refused while a deployment
// runs version 41 (whose Tag model uses tags).
module.exports = {
  async up(queryInterface) {
    await queryInterface.renameTable('tags', 'labels');
  },
  async down(queryInterface) {
    await queryInterface.renameTable('labels', 'tags');
  },
};
