-- mirror-N starts running version v(N mod 200 + 1): 1,000 transactions give
-- 1,000 deployments spread evenly over the 200 registered versions.
SELECT rollguard.deploy('mirror-' || n, 'v' || (n % 200 + 1)) FROM pg_catalog.nextval('public.bench_mirror_seq') n;
