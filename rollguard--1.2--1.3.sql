/* rollguard--1.2--1.3.sql: the guard's verdict from counters of live use,
 * and observed usage of tagged sessions */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.3'" to load this file. \quit

------------------------------------------------------------------------------
-- Counters of live use (the guard's fast verdict)
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Observed usage
------------------------------------------------------------------------------
