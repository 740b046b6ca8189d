-- the first deploy of the 5,000-column version big-K (pgbench -D k=K), in a
-- new connection: a new deployment makes it live, its 5,000 columns enter
-- the counters of live use
SELECT rollguard.deploy('wide-first-' || :k, 'big-' || :k);
