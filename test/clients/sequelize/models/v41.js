'use strict';
// Version 41's models, for rollguard-node --models (see define.js).
module.exports = require('./define')({});
