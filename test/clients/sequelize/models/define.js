'use strict';
// The application's Sequelize models, as versions 41 and 42 of its code
// define them (test_sequelize.js).  define(variant) returns the function
// (sequelize) => {...} that defines them; rollguard-node's --models takes a
// module exporting such a function (models/v41.js).
//
// Version 41 (variant {}):
//   Order (orders): status without a defaultValue in the model (the code
//     leaves it to the database's DEFAULT 'new' of the migration), code
//     (allowNull: false: create() refuses to send it without one), note
//     (optional), createdAt/updatedAt;
//   Tag (tags): name (allowNull: false).
// Version 42 changes one thing, per scenario:
//   {note: 'gone'}       the code no longer uses orders.note
//   {note: 'required'}   note: allowNull: false (always written, never NULL)
//   {statusDefault: true} status: allowNull: false, defaultValue: 'new'
//                        (Sequelize sends it itself on create)
//   {tags: false}        no Tag model any more
const { DataTypes } = require('sequelize');

module.exports = function define(variant = {}) {
  return function defineModels(sequelize) {
    const order = {
      status: variant.statusDefault
        ? { type: DataTypes.STRING(20), allowNull: false, defaultValue: 'new' }
        : { type: DataTypes.STRING(20) },
      code: { type: DataTypes.STRING(20), allowNull: false },
    };
    if (variant.note === 'required') order.note = { type: DataTypes.STRING(20), allowNull: false };
    else if (variant.note !== 'gone') order.note = { type: DataTypes.STRING(20) };
    sequelize.define('Order', order, { tableName: 'orders' });
    if (variant.tags !== false) {
      sequelize.define('Tag', { name: { type: DataTypes.STRING(40), allowNull: false } }, { tableName: 'tags' });
    }
    return sequelize;
  };
};
