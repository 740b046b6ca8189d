--
-- version_order: how rollguard orders version labels.
--
-- "From since_version on" (stop_using, never_null) means "in this order".
-- It is ICU's root collation with numeric ordering on: runs of digits
-- compare as numbers, everything else as text.  It is not semver.
-- rollguard.version_cmp(a, b) returns -1, 0 or 1;
-- rollguard.version_sort_key(label) returns a bytea key for ORDER BY.
--
CREATE EXTENSION rollguard;

-- Digits compare as numbers, not character by character: 1.9 < 1.10 < 2.0,
-- release-9 < release-10, 9 < 41 < 2026, and numbers longer than 64 bits
-- still compare correctly.
SELECT a, b, rollguard.version_cmp(a, b) AS cmp
  FROM (VALUES ('1.9', '1.10'),
               ('1.10', '2.0'),
               ('1.9', '2.0'),
               ('9', '41'),
               ('41', '2026'),
               ('release-9', 'release-10'),
               ('2.0-rc9', '2.0-rc10'),
               ('99999999999999999999', '100000000000000000000')) AS t(a, b);

-- The order is antisymmetric: swapping the arguments flips the sign.
SELECT a, b, rollguard.version_cmp(a, b) AS cmp, rollguard.version_cmp(b, a) AS swapped
  FROM (VALUES ('1.10', '1.9'),
               ('release-10', 'release-9'),
               ('2.0', '2.0')) AS t(a, b);

-- Leading zeros do not count: 1.01 and 1.1 are the same position in the
-- order (cmp returns 0, and the sort keys are equal), although they remain
-- two different labels.
SELECT rollguard.version_cmp('1.01', '1.1') AS "1.01 vs 1.1",
       rollguard.version_cmp('2026.01.05', '2026.1.5') AS "2026.01.05 vs 2026.1.5",
       rollguard.version_sort_key('1.01') = rollguard.version_sort_key('1.1') AS same_key,
       '1.01' = '1.1' AS same_label;

-- Not semver: a pre-release suffix makes a label sort AFTER the release
-- ("2.0-rc1" is "2.0" followed by more text), and a trailing ".0" counts.
SELECT rollguard.version_cmp('2.0-rc1', '2.0') AS "2.0-rc1 vs 2.0",
       rollguard.version_cmp('2.0', '2.0.0') AS "2.0 vs 2.0.0",
       rollguard.version_cmp('1.0-alpha', '1.0-beta') AS "alpha vs beta";

-- Letter case only breaks ties: v2 < V2 (lower case first), but V2 < v3.
SELECT rollguard.version_cmp('v2', 'V2') AS "v2 vs V2",
       rollguard.version_cmp('V2', 'v3') AS "V2 vs v3",
       rollguard.version_cmp('v10', 'V9') AS "v10 vs V9";

-- Git commit hashes have no meaningful order: their digit runs are compared
-- as numbers, so 9fceb02 < 10a4b7c.  Versions named by commit should not be
-- used as since_version in stop_using / never_null.
SELECT rollguard.version_cmp('9fceb02', '10a4b7c') AS "9fceb02 vs 10a4b7c",
       rollguard.version_cmp('a1b2c3d', 'a1b2c3e') AS "a1b2c3d vs a1b2c3e",
       rollguard.version_cmp('0f3e9a1', '0f3e9a1') AS same_hash;

-- Date-based labels with a build counter: the counter compares as a number.
SELECT rollguard.version_cmp('2026.11.20-3', '2026.11.20-10') AS same_day,
       rollguard.version_cmp('2026.11.20-10', '2026.11.21-1') AS next_day,
       rollguard.version_cmp('2026.9.30-1', '2026.10.1-1') AS next_month;

-- ORDER BY rollguard.version_sort_key(v) sorts a list the same way.  Labels
-- that tie (1.01 and 1.1) need a second key for a stable order.
SELECT v
  FROM (VALUES ('2.0'), ('1.10'), ('1.9'), ('2.0-rc1'), ('10.0'), ('1.9.1'),
               ('1.0'), ('1.1'), ('1.01'), ('v2'), ('V2'), ('V10'),
               ('release-10'), ('release-9'), ('2026.11.20-10'),
               ('2026.11.20-3'), ('41')) AS t(v)
 ORDER BY rollguard.version_sort_key(v), v COLLATE "C";

-- The sort key agrees with version_cmp on every pair of those labels.
WITH l(v) AS (
    VALUES ('2.0'), ('1.10'), ('1.9'), ('2.0-rc1'), ('10.0'), ('1.9.1'),
           ('1.0'), ('1.1'), ('1.01'), ('v2'), ('V2'), ('V10'),
           ('release-10'), ('release-9'), ('2026.11.20-10'),
           ('2026.11.20-3'), ('41'), ('9fceb02'), ('10a4b7c'))
SELECT count(*) AS pairs,
       count(*) FILTER (
           WHERE rollguard.version_cmp(a.v, b.v)
                 <> CASE WHEN rollguard.version_sort_key(a.v) < rollguard.version_sort_key(b.v) THEN -1
                         WHEN rollguard.version_sort_key(a.v) > rollguard.version_sort_key(b.v) THEN 1
                         ELSE 0 END) AS disagreements
  FROM l a CROSS JOIN l b;

-- Both functions are IMMUTABLE and STRICT: a NULL label gives NULL, not an
-- error, and anyone may call them.
SELECT rollguard.version_cmp(NULL, '1.0') IS NULL AS cmp_null_a,
       rollguard.version_cmp('1.0', NULL) IS NULL AS cmp_null_b,
       rollguard.version_sort_key(NULL) IS NULL AS key_null;
SELECT p.proname, p.provolatile, p.proisstrict,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'rollguard'::regnamespace
   AND p.proname IN ('version_cmp', 'version_sort_key')
 ORDER BY 1;

DROP EXTENSION rollguard;
