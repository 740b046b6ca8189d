-- The curve: only statements on a table every version uses, three of which
-- make the guard evaluate a change against the registry (all allowed).
\set u random(1, 50)
-- not a change for the rules (no registry query)
ALTER TABLE used_:u ALTER COLUMN c001 DROP NOT NULL;
-- checked: every live version writes c001, never NULL
ALTER TABLE used_:u ALTER COLUMN c001 SET NOT NULL;
-- checked: no version uses c100
ALTER TABLE used_:u RENAME COLUMN c100 TO c100_renamed;
ALTER TABLE used_:u RENAME COLUMN c100_renamed TO c100;
