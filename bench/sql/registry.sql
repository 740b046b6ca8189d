-- rollguard cluster only: the extension and the manifests the deploy
-- scripts register (registration and deploys themselves are timed by
-- pgbench scripts in bench/scripts/).
CREATE EXTENSION rollguard;

CREATE TABLE public.bench_manifest (name text PRIMARY KEY, j jsonb NOT NULL);

-- 2,000 columns: c001..c040 of used_1..used_50; c001 always written non-NULL,
-- the others written and nullable.
INSERT INTO public.bench_manifest
SELECT 'm2000', jsonb_build_object('relations', jsonb_object_agg(rel, cols))
  FROM (SELECT 'public.used_' || t AS rel,
               jsonb_object_agg('c' || lpad(c::text, 3, '0'),
                                jsonb_build_object('writes', true, 'nullable', c <> 1)) AS cols
          FROM generate_series(1, 50) t, generate_series(1, 40) c
         GROUP BY t) s;

-- 5,000 columns: c001..c100 of wide_1..wide_50.
INSERT INTO public.bench_manifest
SELECT 'm5000', jsonb_build_object('relations', jsonb_object_agg(rel, cols))
  FROM (SELECT 'public.wide_' || t AS rel,
               jsonb_object_agg('c' || lpad(c::text, 3, '0'),
                                jsonb_build_object('writes', true, 'nullable', c <> 1)) AS cols
          FROM generate_series(1, 50) t, generate_series(1, 100) c
         GROUP BY t) s;

CREATE SEQUENCE public.bench_version_seq;   -- v1, v2, ...
CREATE SEQUENCE public.bench_mirror_seq;    -- mirror-1, mirror-2, ...
CREATE SEQUENCE public.bench_upgrade_seq;   -- the concurrent mirror upgrade
CREATE SEQUENCE public.bench_upgrade2_seq;  -- the same, one client
CREATE SEQUENCE public.bench_spread_seq;    -- back to 200 versions, 50 clients
CREATE SEQUENCE public.bench_spread2_seq;   -- the same, one client
CREATE SEQUENCE public.bench_big_seq;       -- big-1, ... (5,000-column versions)
CREATE SEQUENCE public.bench_wide_seq;      -- wide-site-1, ... (deploys of big-1)

SELECT pg_catalog.count(*) AS manifests,
       pg_catalog.sum((SELECT pg_catalog.count(*) FROM jsonb_each(j -> 'relations') r, jsonb_object_keys(r.value))) AS columns
  FROM public.bench_manifest;
