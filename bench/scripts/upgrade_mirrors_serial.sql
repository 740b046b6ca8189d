-- every mirror moves to v202, one client: the serial reference for
-- upgrade_mirrors.sql (the same move: from 200 versions onto one)
SELECT rollguard.deploy('mirror-' || n, 'v202') FROM pg_catalog.nextval('public.bench_upgrade2_seq') n;
