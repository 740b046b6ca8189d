-- the 1,000 mirrors go back to their own versions v(N mod 200 + 1) with 50
-- clients: concurrent deploys of different versions (5 mirrors per version),
-- what the per-version serialization of deploy() allows at best
SELECT rollguard.deploy('mirror-' || n, 'v' || (n % 200 + 1)) FROM pg_catalog.nextval('public.bench_spread_seq') n;
