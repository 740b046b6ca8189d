#!/usr/bin/env python3
"""Turns bench/results/raw/*.txt (pgbench output), curve.tsv, machine.tsv and
deploy_check.tsv into results.md and the .dat files plot.gp draws.

    report.py RESULTS_DIR
"""
import glob
import os
import re
import statistics
import sys

res = sys.argv[1]
raw_dir = os.path.join(res, "raw")


def parse(path):
    """tps, latency, per-statement latencies, processed/expected, failures."""
    out = {"tps": None, "lat": None, "stmts": [], "processed": None,
           "expected": None, "failed": None, "exit": None, "aborted": False,
           "lat_stddev": None, "load": None, "cpu": None}
    in_stmts = False
    with open(path) as f:
        for line in f:
            m = re.match(r"tps = ([\d.]+)", line)
            if m:
                out["tps"] = float(m.group(1))
            m = re.match(r"latency average = ([\d.]+) ms", line)
            if m:
                out["lat"] = float(m.group(1))
            m = re.match(r"latency stddev = ([\d.]+) ms", line)
            if m:
                out["lat_stddev"] = float(m.group(1))
            m = re.match(r"number of transactions actually processed: (\d+)(?:/(\d+))?", line)
            if m:
                out["processed"] = int(m.group(1))
                out["expected"] = int(m.group(2)) if m.group(2) else None
            m = re.match(r"number of failed transactions: (\d+)", line)
            if m:
                out["failed"] = int(m.group(1))
            m = re.match(r"exit status: (\d+)", line)
            if m:
                out["exit"] = int(m.group(1))
            m = re.match(r"server cpu seconds: ([\d.]+)", line)
            if m:
                out["cpu"] = float(m.group(1))
            m = re.match(r"loadavg before: ([\d.]+)", line)
            if m:
                out["load"] = float(m.group(1))
            if "aborted" in line:
                out["aborted"] = True
            if line.startswith("statement latencies"):
                in_stmts = True
                continue
            if in_stmts:
                m = re.match(r"\s+([\d.]+)\s+(\d+)\s+(.*)$", line)
                if m:
                    out["stmts"].append((m.group(3).strip(), float(m.group(1))))
                else:
                    in_stmts = False
    if out["cpu"] is not None and out["processed"]:
        out["cpu_per_tx_us"] = out["cpu"] / out["processed"] * 1e6
    else:
        out["cpu_per_tx_us"] = None
    return out


runs = {os.path.basename(p)[:-4]: parse(p) for p in glob.glob(os.path.join(raw_dir, "*.txt"))}


def rounds(prefix):
    """{round: {cluster: run}} for raw files prefix-rN-cluster."""
    out = {}
    for name, r in runs.items():
        m = re.match(re.escape(prefix) + r"-r(\d+)-(rg|stock)$", name)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = r
    return out


def fmt(x, nd=2):
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


machine = {}
with open(os.path.join(res, "machine.tsv")) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("\t")
        machine[k] = v

md = []
md.append("# rollguard benchmark results\n")
md.append("Written by `bench/run.sh` (see `bench/README.md` for what each workload does, "
          "how to read this, and the analysis). Ratios are rollguard / stock PostgreSQL: the same "
          "server binaries and settings, in the same run, with/without runs interleaved.\n")
if os.path.isdir(os.path.join(res, "baseline-6600047")):
    md.append("The same benchmark on commit 6600047 (before the guard queried by change): "
              "[baseline-6600047/results.md](baseline-6600047/results.md).\n")
md.append("## Machine\n")
md.append("| | |\n|---|---|")
for k in ["date", "nproc", "cpu", "memory", "kernel", "postgres", "pgbench", "settings", "scale", "params"]:
    if k in machine:
        md.append(f"| {k} | {machine[k]} |")
md.append("")

summary = []      # (what, ratio, target, verdict)
ratio_rows = []   # for the plot

# --- DML --------------------------------------------------------------------
md.append("## DML: pgbench, rollguard preloaded with a large registry vs not loaded\n")
md.append("Registry: 200 versions x 2,000 columns, 1,000 deployments. "
          f"`pgbench -M prepared -c {machine.get('params', '').split('CLIENTS=')[-1]}`, "
          "scale " + machine.get("scale", "?") + ". Each round runs ABBA (stock rg rg stock, or rg stock stock rg), "
          "so drift within a round cancels and every round has an A/A pair per cluster: the A/A columns "
          "(second run / first run of the same cluster) show how much the machine alone moves the numbers. "
          "Two ratios: transactions per second (wall clock), and server CPU per transaction (CPU time of all "
          "the cluster's processes, from /proc, divided by the transactions; stock / rollguard, so that "
          "higher is better as for tps).\n")
md.append("| workload | round | stock tps | rollguard tps | tps ratio | stock CPU us/tx | rollguard CPU us/tx | CPU ratio | A/A tps stock, rollguard | load avg |")
md.append("|---|---|---|---|---|---|---|---|---|---|")


def rounds_ab(prefix):
    out = {}
    for name, r in runs.items():
        m = re.match(re.escape(prefix) + r"-r(\d+)-(rg|stock)-([ab])$", name)
        if m:
            out.setdefault(int(m.group(1)), {}).setdefault(m.group(2), {})[m.group(3)] = r
    return out


def combine(ab):
    """tps: mean of the two runs; CPU per transaction: total CPU / total transactions."""
    runs2 = [ab[k] for k in ("a", "b") if k in ab and ab[k]["tps"]]
    if not runs2:
        return None, None
    tps = statistics.mean(r["tps"] for r in runs2)
    cpu = sum(r["cpu"] or 0 for r in runs2)
    n = sum(r["processed"] or 0 for r in runs2)
    return tps, (cpu / n * 1e6 if n and cpu else None)


aa_all = []
for key, label in [("dml-select", "select-only (-S)"), ("dml-tpcb", "TPC-B-like")]:
    rs = rounds_ab(key)
    ratios, cratios = [], []
    for rnd in sorted(rs):
        pair = rs[rnd]
        if "rg" not in pair or "stock" not in pair:
            continue
        st_tps, st_cpu = combine(pair["stock"])
        rg_tps, rg_cpu = combine(pair["rg"])
        if not st_tps or not rg_tps:
            continue
        ratio = rg_tps / st_tps
        ratios.append(ratio)
        cratio = st_cpu / rg_cpu if st_cpu and rg_cpu else None
        if cratio:
            cratios.append(cratio)
        aa = []
        for c in ("stock", "rg"):
            ab = pair[c]
            if "a" in ab and "b" in ab and ab["a"]["tps"] and ab["b"]["tps"]:
                aa.append(ab["b"]["tps"] / ab["a"]["tps"])
        aa_all.extend(aa)
        loads = [r["load"] for c in ("stock", "rg") for r in pair[c].values() if r["load"] is not None]
        md.append(f"| {label} | {rnd} | {fmt(st_tps)} | {fmt(rg_tps)} | {ratio:.3f} | {fmt(st_cpu)} | {fmt(rg_cpu)} | "
                  f"{fmt(cratio, 3)} | {', '.join(f'{x:.3f}' for x in aa)} | "
                  f"{fmt(min(loads)) if loads else 'n/a'}-{fmt(max(loads)) if loads else 'n/a'} |")
    if ratios:
        med = statistics.median(ratios)
        cmed = statistics.median(cratios) if cratios else None
        md.append(f"| **{label}** | **median** | | | **{med:.3f}** ({min(ratios):.3f}-{max(ratios):.3f}) | | | "
                  + (f"**{cmed:.3f}** ({min(cratios):.3f}-{max(cratios):.3f})" if cmed else "n/a") + " | | |")
        summary.append((f"DML {label}, tps", med, 0.99))
        if cmed:
            summary.append((f"DML {label}, server CPU per transaction", cmed, 0.99))
        short = "select-only" if "select" in label else "TPC-B"
        ratio_rows.append((short + " tps", med, 0.99))
        if cmed:
            ratio_rows.append((short + " CPU/tx", cmed, 0.99))
md.append("")
if aa_all:
    dev = [abs(x - 1) for x in aa_all]
    md.append(f"A/A noise of this machine during the run (same cluster, same workload, minutes apart): "
              f"median |1 - ratio| = {statistics.median(dev):.3f}, max {max(dev):.3f} over {len(aa_all)} pairs.\n")
pd = os.path.join(res, "profile", "perf-dml.txt")
if os.path.exists(pd):
    md.append("rollguard's share of the rollguard cluster's backend CPU during DML (`perf record`, "
              "`bench/results/profile/perf-dml.txt`):\n")
    md.append("```")
    with open(pd) as f:
        md.append("".join(l for l in f if l.startswith("##") or "rollguard" in l or "Hook" in l or "postgres " in l).rstrip())
    md.append("```\n")

# --- DDL mix ----------------------------------------------------------------
md.append("## DDL mix at registry scale (1,000 deployments, 200 versions x 2,000 columns)\n")
md.append("`bench/scripts/ddl_mix.sql`, one client: ADD/DROP COLUMN, SET/DROP NOT NULL, RENAME "
          "on tables no version uses, and allowed changes on tables every version uses. "
          "Every statement is allowed; the ratio is transactions per second.\n")
md.append("| round | stock tps | rollguard tps | tps ratio | stock CPU ms/tx | rollguard CPU ms/tx | CPU ratio |\n|---|---|---|---|---|---|---|")
rs = rounds("ddl-mix")
ratios, cratios = [], []
for rnd in sorted(rs):
    pair = rs[rnd]
    if "rg" in pair and "stock" in pair and pair["rg"]["tps"] and pair["stock"]["tps"]:
        ratio = pair["rg"]["tps"] / pair["stock"]["tps"]
        ratios.append(ratio)
        sc, rc = pair["stock"]["cpu_per_tx_us"], pair["rg"]["cpu_per_tx_us"]
        cratio = sc / rc if sc and rc else None
        if cratio:
            cratios.append(cratio)
        md.append(f"| {rnd} | {fmt(pair['stock']['tps'])} | {fmt(pair['rg']['tps'], 3)} | {ratio:.4f} | "
                  f"{fmt(sc / 1000 if sc else None, 3)} | {fmt(rc / 1000 if rc else None, 3)} | {fmt(cratio, 4)} |")
if ratios:
    med = statistics.median(ratios)
    cmed = statistics.median(cratios) if cratios else None
    md.append(f"| **median** | | | **{med:.4f}** | | | **{fmt(cmed, 4)}** |")
    summary.append(("DDL mix (1,000 deployments), tps", med, 0.9))
    ratio_rows.append(("DDL mix tps", med, 0.9))
    if cmed:
        summary.append(("DDL mix (1,000 deployments), server CPU per transaction", cmed, 0.9))
        ratio_rows.append(("DDL mix CPU/tx", cmed, 0.9))
md.append("")

# per statement, averaged over rounds
stmt_lat = {}
for rnd, pair in rs.items():
    for c in ("stock", "rg"):
        if c in pair:
            for i, (s, lat) in enumerate(pair[c]["stmts"]):
                stmt_lat.setdefault((i, s), {}).setdefault(c, []).append(lat)
if stmt_lat:
    md.append("Per statement (ms, mean over rounds; `pgbench -r`):\n")
    md.append("| statement | stock ms | rollguard ms | rollguard - stock | checked against the registry |\n|---|---|---|---|---|")
    for (i, s), d in sorted(stmt_lat.items()):
        if s.startswith("\\set"):
            continue
        st = statistics.mean(d.get("stock", [0]))
        rg = statistics.mean(d.get("rg", [0]))
        checked = "yes" if re.search(r"RENAME|DROP COLUMN|SET NOT NULL", s) else "no (no rule applies)"
        md.append(f"| `{s}` | {st:.3f} | {rg:.3f} | {rg - st:+.3f} | {checked} |")
    md.append("")

pf = os.path.join(res, "profile", "perf-floor.txt")
if os.path.exists(pf):
    md.append("Where a checked statement on a table no version uses spends its time "
              "(`perf record` of one backend, `bench/results/profile/perf-floor.txt`; inclusive shares):\n")
    md.append("```")
    with open(pf) as f:
        md.append("".join(l for l in f if not l.startswith("#") and l.strip()).rstrip())
    md.append("```\n")

# --- curves -----------------------------------------------------------------
curve = []
with open(os.path.join(res, "curve.tsv")) as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        vals = line.rstrip("\n").split("\t")
        if len(vals) == len(header):
            curve.append(dict(zip(header, vals)))

CHECKED = re.compile(r"SET NOT NULL|RENAME COLUMN")


def guarded_latency(run):
    """mean latency of the statements the guard checks against the registry."""
    lats = [lat for s, lat in run["stmts"] if CHECKED.search(s)]
    return statistics.mean(lats) if lats else None


def stmt_latency(run, pattern):
    lats = [lat for s, lat in run["stmts"] if re.search(pattern, s)]
    return statistics.mean(lats) if lats else None


def num(c, k):
    try:
        return float(c[k])
    except (KeyError, ValueError):
        return float("nan")


def curve_table(axis, xlabel):
    rows = [c for c in curve if c["axis"] == axis]
    if not rows:
        return []
    out = []
    md.append("| deployments | live versions | stock ms | rollguard ms | ratio | "
              "SET NOT NULL ms (stock / rollguard) | RENAME COLUMN ms (stock / rollguard) | "
              "SET NOT NULL query by hand: ms (rows) | column query by hand ms | tier 1 ms | tier 2 ms |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in rows:
        n, live = int(c["deployments"]), int(c["live_versions"])
        key_live = 200 if axis == "deployments" else live
        st = runs.get(f"curve-{axis}-{n}-{key_live}-stock")
        rg = runs.get(f"curve-{axis}-{n}-{key_live}-rg")
        st_l = guarded_latency(st) if st else None
        rg_l = guarded_latency(rg) if rg else None
        ratio = st_l / rg_l if st_l and rg_l else None
        x = n if axis == "deployments" else live
        nn_rows = c.get("not_null_rows") or ""
        nn = f"{fmt(num(c, 'not_null_ms'), 3)} ({int(nn_rows):,} rows)" if nn_rows else "n/a"
        snn = (f"{fmt(stmt_latency(st, 'SET NOT NULL') if st else None, 3)} / "
               f"{fmt(stmt_latency(rg, 'SET NOT NULL') if rg else None, 3)}")
        ren = (f"{fmt(stmt_latency(st, 'RENAME COLUMN') if st else None, 3)} / "
               f"{fmt(stmt_latency(rg, 'RENAME COLUMN') if rg else None, 3)}")
        md.append(f"| {n:,} | {live} | {fmt(st_l, 3)} | {fmt(rg_l, 3)} | {fmt(ratio, 4)} | {snn} | {ren} | {nn} | "
                  f"{fmt(num(c, 'column_ms'), 3)} | {fmt(num(c, 'tier1_ms'), 3)} | {fmt(num(c, 'tier2_ms'), 3)} |")
        out.append((x, st_l, rg_l, num(c, "not_null_ms"), num(c, "tier1_ms"), num(c, "tier2_ms"),
                    int(nn_rows) if nn_rows else 0,
                    stmt_latency(rg, "SET NOT NULL") if rg else None,
                    stmt_latency(rg, "RENAME COLUMN") if rg else None))
    md.append("")
    return out


md.append("## The cost of one check: guarded DDL latency vs deployments\n")
md.append("`bench/scripts/ddl_guarded.sql`, one client, on tables every version uses: "
          "`SET NOT NULL` (allowed: every live version writes the column non-NULL) and two "
          "`RENAME COLUMN` (allowed: no version uses the column); *stock ms* and *rollguard ms* are the "
          "mean latency of those three statements (`pgbench -r`), *ratio* stock / rollguard. 200 registered "
          "versions, deployments spread evenly over them. *By hand*: the guard's registry queries as "
          "`src/registry.c` has them (extracted by `bench/guard_sql.py`), timed with EXPLAIN ANALYZE "
          "(median; rows returned); *tier 1* and *tier 2* are the proposed rewrites (`bench/sql/proto.sql`, README).\n")
dep_curve = curve_table("deployments", "deployments")
if len(dep_curve) >= 2:
    md.append("Growth per decade of deployments (a logarithmic cost grows by a constant "
              "amount per decade; a linear one is multiplied by 10):\n")
    md.append("| from | to | guarded DDL latency x | SET NOT NULL x | RENAME COLUMN x | SET NOT NULL query x | its rows x |\n|---|---|---|---|---|---|---|")
    for a, b in zip(dep_curve, dep_curve[1:]):
        if a[2] and b[2]:
            md.append(f"| {a[0]:,} | {b[0]:,} | {b[2] / a[2]:.1f} | {fmt(b[7] / a[7] if a[7] and b[7] else None, 1)} | "
                      f"{fmt(b[8] / a[8] if a[8] and b[8] else None, 1)} | {b[3] / a[3]:.1f} | {b[6] / max(a[6], 1):.1f} |")
    md.append("")

md.append("## The cost of one check vs live versions (1,000 deployments)\n")
ver_curve = curve_table("versions", "live versions")

# --- deploy API ---------------------------------------------------------------
md.append("## Deploy API\n")


def line(label, key, what="latency"):
    r = runs.get(key)
    if not r:
        return
    ok = "yes" if r["exit"] == 0 and not r["aborted"] and (r["failed"] or 0) == 0 else "**NO**"
    proc = f"{r['processed']}/{r['expected']}" if r["expected"] else f"{r['processed']}"
    md.append(f"| {label} | {fmt(r['lat'])} | {fmt(r['lat_stddev'])} | {fmt(r['tps'])} | {proc} | {ok} |")


md.append("| operation | latency ms (mean) | stddev ms | per second | transactions | no errors |\n|---|---|---|---|---|---|")
line("register_version, 2,000-column manifest (200 versions, 1 client)", "setup-register-2000")
line("register_version, 5,000-column manifest (1 client)", "deploy-register-5000")
line("deploy: 1,000 new mirrors onto 2,000-column versions (1 client)", "setup-deploy-1000")
line("deploy: new deployments of a 5,000-column version (1 client)", "deploy-deploy-5000")
line("deploy: 1,000 mirrors move to v201 at once (50 clients)", "deploy-mirrors-c50")
line("deploy: 1,000 mirrors move to v202 (1 client, reference)", "deploy-mirrors-c1")
line("deploy: 1,000 mirrors back to 200 different versions (50 clients)", "deploy-mirrors-spread-c50")
md.append("")
bt = os.path.join(res, "deploy_batches.tsv")
if os.path.exists(bt):
    with open(bt) as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    if rows:
        md.append("The 1,000 initial deploys (one session, right after the 200 registrations), "
                  "mean latency per batch of 100:\n")
        md.append("| " + " | ".join(f"{int(r[1]):,}-{int(r[1]) + 99:,}" for r in rows) + " |")
        md.append("|" + "---|" * len(rows))
        md.append("| " + " | ".join(f"{float(r[2]):.1f} ms" for r in rows) + " |")
        md.append("")
chk = os.path.join(res, "deploy_check.tsv")
if os.path.exists(chk):
    md.append("Registry after the mirror upgrades (mirrors on the new version / distinct mirrors / "
              "mirror rows), and ERROR/FATAL/deadlock lines in the server log during them:\n")
    md.append("```")
    with open(chk) as f:
        md.append(f.read().rstrip())
    md.append("```\n")
wt = os.path.join(res, "deploy_waits.tsv")
if os.path.exists(wt):
    md.append("What the 50 concurrent deploy sessions were doing (pg_stat_activity sampled every 0.25 s; "
              "session-samples):\n")
    md.append("| wait event | samples |\n|---|---|")
    with open(wt) as f:
        for line in f:
            ev, _, n = line.rstrip("\n").partition("\t")
            md.append(f"| {ev} | {n} |")
    md.append("")
c50 = runs.get("deploy-mirrors-c50")
c1 = runs.get("deploy-mirrors-c1")
if c50 and c1 and c50["tps"] and c1["tps"]:
    sp = runs.get("deploy-mirrors-spread-c50")
    md.append(f"Concurrency: 50 clients deploying one version {c50['tps']:.0f}/s, one client {c1['tps']:.0f}/s "
              f"(x{c50['tps'] / c1['tps']:.2f})"
              + (f"; 50 clients deploying 200 different versions {sp['tps']:.0f}/s (x{sp['tps'] / c1['tps']:.2f})" if sp and sp['tps'] else "")
              + ".\n")

# --- summary ------------------------------------------------------------------
md.insert(md.index("## Machine\n"), "")
summ = ["## Summary\n", "| target | measured | target | met |", "|---|---|---|---|"]
for what, ratio, target in summary:
    summ.append(f"| {what} | {ratio:.4f} | >= {target} | {'yes' if ratio >= target else '**no**'} |")
if dep_curve and len(dep_curve) >= 2 and dep_curve[0][2] and dep_curve[-1][2]:
    a, b = dep_curve[0], dep_curve[-1]
    import math
    grow = b[2] / a[2]
    bound = math.log(b[0]) / math.log(a[0])   # c*log(N) at most grows this much
    summ.append(f"| guarded DDL latency, {a[0]:,} -> {b[0]:,} deployments | {a[2]:.2f} ms -> {b[2]:.2f} ms (x{grow:.0f}; "
                f"deployments x{b[0] / a[0]:,.0f}) | at most logarithmic (x{bound:.1f}) | "
                f"{'yes' if grow <= bound else '**no** (about linear)'} |")
for label, key in [("1,000 mirrors deploying at once, 50 clients", "deploy-mirrors-c50")]:
    r = runs.get(key)
    if r:
        ok = r["exit"] == 0 and not r["aborted"] and (r["failed"] or 0) == 0 and r["processed"] == (r["expected"] or r["processed"])
        summ.append(f"| {label} | {fmt(r['tps'])}/s, {r['processed']} done | no errors | {'yes' if ok else '**no**'} |")
summ.append("")
pos = md.index("## Machine\n")
md[pos:pos] = summ

with open(os.path.join(res, "results.md"), "w") as f:
    f.write("\n".join(md) + "\n")

# --- data for gnuplot -----------------------------------------------------------
with open(os.path.join(res, "ratios.dat"), "w") as f:
    f.write("# label ratio target\n")
    for label, ratio, target in ratio_rows:
        f.write(f"\"{label}\" {ratio:.5f} {target}\n")
for name, data in [("curve_deployments.dat", dep_curve), ("curve_versions.dat", ver_curve)]:
    with open(os.path.join(res, name), "w") as f:
        f.write("# x stock_ms rollguard_ms not_null_query_ms tier1_ms tier2_ms rows set_not_null_ms rename_ms\n")
        for row in data:
            f.write(" ".join("NaN" if v is None else str(v) for v in row) + "\n")
with open(os.path.join(res, "deploy.dat"), "w") as f:
    f.write("# label latency_ms\n")
    for label, key in [("register 2,000 cols", "setup-register-2000"), ("register 5,000 cols", "deploy-register-5000"),
                       ("deploy 2,000 cols", "setup-deploy-1000"), ("deploy 5,000 cols", "deploy-deploy-5000"),
                       ("1 version, 50 clients", "deploy-mirrors-c50"), ("1 version, 1 client", "deploy-mirrors-c1"),
                       ("200 versions, 50 clients", "deploy-mirrors-spread-c50")]:
        r = runs.get(key)
        if r and r["lat"]:
            f.write(f"\"{label}\" {r['lat']} {r['tps'] or 0}\n")
print(open(os.path.join(res, "results.md")).read())
