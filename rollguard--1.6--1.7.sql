/* rollguard--1.6--1.7.sql: day two and every stack */

\echo Use "ALTER EXTENSION rollguard UPDATE TO '1.7'" to load this file. \quit

-- Each section below says what it changes and why; the full script
-- rollguard--1.7.sql holds the same definitions.
