-- the 1,000 mirrors go back to their own versions v(N mod 200 + 1), one
-- client: the serial reference for upgrade_mirrors_spread.sql
SELECT rollguard.deploy('mirror-' || n, 'v' || (n % 200 + 1)) FROM pg_catalog.nextval('public.bench_spread2_seq') n;
