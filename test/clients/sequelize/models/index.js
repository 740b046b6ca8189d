'use strict';
// Version 41's models the way sequelize-cli's generated models/index.js
// exports them: {sequelize, Sequelize, Order, Tag}, on a Sequelize instance
// of the application's own configuration (here the PG* variables).  For
// rollguard-node --models models/index.js (test_sequelize.js).
const { Sequelize } = require('sequelize');

const sequelize = new Sequelize(process.env.PGDATABASE, process.env.PGUSER || 'postgres', process.env.PGPASSWORD || null, {
  host: process.env.PGHOST,
  port: Number(process.env.PGPORT || 5432),
  dialect: 'postgres',
  logging: false,
});
require('./define')({})(sequelize);

module.exports = { sequelize, Sequelize, ...sequelize.models };
