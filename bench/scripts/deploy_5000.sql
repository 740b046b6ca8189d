-- a new deployment of the 5,000-column version big-1 per transaction
SELECT rollguard.deploy('wide-site-' || n, 'big-1') FROM pg_catalog.nextval('public.bench_wide_seq') n;
