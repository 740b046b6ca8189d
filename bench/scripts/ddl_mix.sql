-- A migration-like mix of DDL that rollguard must let through.  Run with one
-- client; every transaction leaves the schema as it found it (apart from
-- the dropped-column slots ADD/DROP COLUMN leave, as in real life).
\set f random(1, 50)
\set u random(1, 50)
-- tables no version uses
ALTER TABLE free_:f ADD COLUMN bench_tmp integer;
ALTER TABLE free_:f ALTER COLUMN bench_tmp SET NOT NULL;
ALTER TABLE free_:f ALTER COLUMN bench_tmp DROP NOT NULL;
ALTER TABLE free_:f RENAME COLUMN bench_tmp TO bench_tmp2;
ALTER TABLE free_:f DROP COLUMN bench_tmp2;
ALTER TABLE free_:f RENAME TO renamed_free_:f;
ALTER TABLE renamed_free_:f RENAME TO free_:f;
-- tables every version uses, changes no live version breaks on
ALTER TABLE used_:u ADD COLUMN bench_tmp integer;
ALTER TABLE used_:u RENAME COLUMN bench_tmp TO bench_tmp2;
ALTER TABLE used_:u DROP COLUMN bench_tmp2;
ALTER TABLE used_:u ALTER COLUMN c001 DROP NOT NULL;
ALTER TABLE used_:u ALTER COLUMN c001 SET NOT NULL;
ALTER TABLE used_:u RENAME COLUMN c100 TO c100_renamed;
ALTER TABLE used_:u RENAME COLUMN c100_renamed TO c100;
