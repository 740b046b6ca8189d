-- every mirror moves to v201 (run with -c 50 -t 20: 1,000 mirrors at once);
-- the 200 versions they ran stop being live, one by one
SELECT rollguard.deploy('mirror-' || n, 'v201') FROM pg_catalog.nextval('public.bench_upgrade_seq') n;
