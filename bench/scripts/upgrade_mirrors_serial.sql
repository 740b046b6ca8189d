-- every mirror moves on to v202, one client (the serial reference)
SELECT rollguard.deploy('mirror-' || n, 'v202') FROM pg_catalog.nextval('public.bench_upgrade2_seq') n;
