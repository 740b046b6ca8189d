-- the 1,000 mirrors go back to their own versions v(N mod 200 + 1) with 50
-- clients: concurrent deploys of 200 different versions (5 mirrors each);
-- 200 versions become live again (their contracts enter the counters)
SELECT rollguard.deploy('mirror-' || n, 'v' || (n % 200 + 1)) FROM pg_catalog.nextval('public.bench_spread_seq') n;
