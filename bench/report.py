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
            m = re.match(r"blocks read, hit: (\d+) (\d+)", line)
            if m:
                out["blks_read"], out["blks_hit"] = int(m.group(1)), int(m.group(2))
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


def tsv_rows(path, header=False):
    """The fields of each line of a tab-separated file ([] if it is not there)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    return [l.split("\t") for l in (lines[1:] if header else lines)]


def rounds(prefix):
    """{round: {cluster: run}} for raw files prefix-rN-cluster."""
    out = {}
    for name, r in runs.items():
        m = re.match(re.escape(prefix) + r"-r(\d+)-(rglock|rg|stock)$", name)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = r
    return out


def fmt(x, nd=2):
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return x
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


def fmt_int(x):
    try:
        return f"{int(float(x)):,}"
    except (TypeError, ValueError, OverflowError):
        return "n/a"


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
md.append("The previous run (commit fd244bb, extension 1.2, before the counters of live use) is in git: "
          "`git show 13d52e0:bench/results/results.md`.\n")
md.append("## Machine\n")
md.append("| | |\n|---|---|")
for k in ["date", "nproc", "cpu", "memory", "kernel", "postgres", "pgbench", "settings", "rollguard",
          "extension", "scale", "params", "tag", "warning"]:
    if k in machine:
        md.append(f"| {k} | {machine[k]} |")
md.append("")

summary = []      # (what, ratio, target, verdict)
ratio_rows = []   # for the plot

# --- DML --------------------------------------------------------------------
ARMS = ("stock", "rg", "rgtag")
ARM_LABEL = {"stock": "stock", "rg": "rollguard", "rgtag": "rollguard, tagged"}
md.append("## DML: pgbench, rollguard preloaded with a large registry vs not loaded\n")
md.append("Registry: 200 versions x 2,000 columns, 1,000 deployments. "
          f"`pgbench -M prepared -c {machine.get('params', '').split('CLIENTS=')[-1]}`, "
          "scale " + machine.get("scale", "?") + ". Three arms: *stock* (no rollguard), *rollguard* "
          "(preloaded, sessions untagged) and *rollguard, tagged* (the same cluster, every pgbench "
          "connection tagged as a live session: " + machine.get("tag", "?") + "; whatever rollguard "
          "does for a tagged session's statements -- recording the columns they use, in builds with "
          "observed usage -- is in this arm). Each round runs ABCCBA (stock rg tagged tagged rg stock, "
          "or the reverse), so drift within a round cancels and every round has an A/A pair per arm: "
          "the A/A columns (second run / first run of the same arm) show how much the machine alone "
          "moves the numbers. Two ratios: transactions per second (wall clock), and server CPU per "
          "transaction (CPU time of all the cluster's processes, from /proc, divided by the "
          "transactions; stock / rollguard, so that higher is better as for tps).\n")
for k, label in [("tag_check", "tag check (a connection with the tag options: deployment@version, "
                               "its rows in rollguard.sessions -- 1 expected)"),
                 ("observed_before", "observed uses of v1 before the DML runs"),
                 ("observed_after", "observed uses of v1 after them (the tagged runs' tables and columns)")]:
    if k in machine:
        md.append(f"- {label}: {machine[k]}")
md.append("")
md.append("| workload | round | stock tps | rollguard tps | tagged tps | tps ratio | tagged tps ratio | "
          "stock CPU us/tx | rollguard CPU us/tx | tagged CPU us/tx | CPU ratio | tagged CPU ratio | "
          "A/A tps stock, rollguard, tagged | load avg |")
md.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def rounds_ab(prefix):
    out = {}
    for name, r in runs.items():
        m = re.match(re.escape(prefix) + r"-r(\d+)-(rgtag|rg|stock)-([ab])$", name)
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


def med_range(xs, nd=3):
    if not xs:
        return "n/a"
    return f"**{statistics.median(xs):.{nd}f}** ({min(xs):.{nd}f}-{max(xs):.{nd}f})"


aa_all = []
notes = []
for key, label in [("dml-select", "select-only (-S)"), ("dml-tpcb", "TPC-B-like")]:
    rs = rounds_ab(key)
    ratio = {a: [] for a in ARMS}      # tps ratio vs stock
    cratio = {a: [] for a in ARMS}     # CPU ratio stock / arm
    tag_vs_rg = []
    for rnd in sorted(rs):
        pair = rs[rnd]
        if "stock" not in pair:
            continue
        tps, cpu = {}, {}
        for a in ARMS:
            if a in pair:
                tps[a], cpu[a] = combine(pair[a])
        if not tps.get("stock"):
            continue
        row_r, row_c = {}, {}
        for a in ("rg", "rgtag"):
            if tps.get(a):
                row_r[a] = tps[a] / tps["stock"]
                ratio[a].append(row_r[a])
            if cpu.get(a) and cpu.get("stock"):
                row_c[a] = cpu["stock"] / cpu[a]
                cratio[a].append(row_c[a])
        if tps.get("rg") and tps.get("rgtag"):
            tag_vs_rg.append(tps["rgtag"] / tps["rg"])
        aa = []
        for a in ARMS:
            ab = pair.get(a, {})
            if "a" in ab and "b" in ab and ab["a"]["tps"] and ab["b"]["tps"]:
                aa.append(ab["b"]["tps"] / ab["a"]["tps"])
        aa_all.extend(aa)
        loads = [r["load"] for a in ARMS for r in pair.get(a, {}).values() if r["load"] is not None]
        md.append(f"| {label} | {rnd} | {fmt(tps.get('stock'))} | {fmt(tps.get('rg'))} | {fmt(tps.get('rgtag'))} | "
                  f"{fmt(row_r.get('rg'), 3)} | {fmt(row_r.get('rgtag'), 3)} | {fmt(cpu.get('stock'))} | "
                  f"{fmt(cpu.get('rg'))} | {fmt(cpu.get('rgtag'))} | {fmt(row_c.get('rg'), 3)} | "
                  f"{fmt(row_c.get('rgtag'), 3)} | {', '.join(f'{x:.3f}' for x in aa)} | "
                  f"{fmt(min(loads)) if loads else 'n/a'}-{fmt(max(loads)) if loads else 'n/a'} |")
    if ratio["rg"] or ratio["rgtag"]:
        md.append(f"| **{label}** | **median** | | | | {med_range(ratio['rg'])} | {med_range(ratio['rgtag'])} | | | | "
                  f"{med_range(cratio['rg'])} | {med_range(cratio['rgtag'])} | | |")
    short = "select-only" if "select" in label else "TPC-B"
    for a, target, what in [("rg", 0.99, ""), ("rgtag", 0.98, ", every session tagged")]:
        if ratio[a]:
            med = statistics.median(ratio[a])
            summary.append((f"DML {label}{what}, tps", med, target))
            ratio_rows.append((short + (" tagged" if a == "rgtag" else "") + " tps", med, target))
        if cratio[a]:
            cmed = statistics.median(cratio[a])
            summary.append((f"DML {label}{what}, server CPU per transaction", cmed, target))
            ratio_rows.append((short + (" tagged" if a == "rgtag" else "") + " CPU/tx", cmed, target))
    # blocks each arm read from outside shared buffers (a system call each)
    br = {}
    for rnd, pair in rs.items():
        for a in ARMS:
            for r in pair.get(a, {}).values():
                if r.get("blks_read") is not None and r["processed"]:
                    t = br.setdefault(a, [0, 0, 0])
                    t[0] += r["blks_read"]
                    t[1] += r["blks_hit"]
                    t[2] += r["processed"]
    if br:
        notes.append(f"{label}: blocks per transaction read from outside shared buffers (the kernel's page cache: "
                     "a system call and an 8 kB copy each, CPU time that instructions counted in user space do "
                     "not see) / found in them, all rounds (`pg_stat_database`): " +
                     "; ".join(f"{ {'stock': 'stock', 'rg': 'rollguard', 'rgtag': 'tagged'}[a]} "
                               f"{br[a][0] / br[a][2]:.3f} / {br[a][1] / br[a][2]:.2f}" for a in ARMS if a in br) + ".\n")
    if tag_vs_rg:
        notes.append(f"{label}: tagged / untagged rollguard tps, per round: "
                     f"{', '.join(f'{x:.3f}' for x in tag_vs_rg)} (median {statistics.median(tag_vs_rg):.3f}): "
                     "what tagging (and observing) costs on top of rollguard being loaded.\n")
md.append("")
md.extend(notes)
if aa_all:
    dev = [abs(x - 1) for x in aa_all]
    md.append(f"A/A noise of this machine during the run (same arm, same workload, minutes apart): "
              f"median |1 - ratio| = {statistics.median(dev):.3f}, max {max(dev):.3f} over {len(aa_all)} pairs.\n")
pd = os.path.join(res, "profile", "perf-dml.txt")
if os.path.exists(pd):
    md.append("rollguard's share of the rollguard cluster's backend CPU during DML, untagged and tagged "
              "(`perf record`, `bench/results/profile/perf-dml.txt`):\n")
    md.append("```")
    with open(pd) as f:
        md.append("".join(l for l in f if l.startswith("##") or "rollguard" in l or "Hook" in l or "postgres " in l).rstrip())
    md.append("```\n")

# --- DML in instructions -------------------------------------------------------
dml_instr = {}
for v in tsv_rows(os.path.join(res, "instructions_dml.tsv"), header=True):
    if len(v) == 5 and v[2]:
        # each arm runs twice (ABCCBA): the sums
        i, n, e = dml_instr.get((v[0], v[1]), (0, 0, 0))
        dml_instr[(v[0], v[1])] = (i + int(v[2]), n + int(v[3]), e + int(v[4] or 0))
if dml_instr:
    md.append("The same workloads counted in instructions (valgrind's callgrind; the machine's noise does not "
              "move these): one backend of the rg cluster in single-user mode running pgbench's transactions "
              "as plain statements (select-only: one SELECT each; TPC-B-like: BEGIN, three UPDATEs, a SELECT, "
              "an INSERT, END), the same random keys for every arm, after one run that is not counted, in the "
              "order ABCCBA (the sums of each arm's two runs), the server started without rollguard "
              "(`-c shared_preload_libraries=''`), with it (and the registry), and with the session tagged "
              "(observing); less what starting the backend costs (an empty run per arm: `_PG_init` and shared "
              "memory, which a server's postmaster does once for all its backends). Ratios: without / with, "
              "as for tps. The *tagged* arm is not in effect here: a single-user backend has no session "
              "slot, so its tag is not taken and it observes nothing (what tagging costs is in the served "
              "counts below).\n")
    md.append("| workload | transactions (two runs) | instructions without rollguard | with | tagged | ratio | tagged ratio | errors |\n|---|---|---|---|---|---|---|---|")
    for w, label, short in (("select", "select-only (-S)", "select"), ("tpcb", "TPC-B-like", "TPC-B")):
        if all((w, a) in dml_instr for a in ("stock", "rg", "rgtag")):
            # less twice (two runs per arm) what starting the backend costs
            st, rg, tg = [(dml_instr[(w, a)][0] - 2 * dml_instr.get(("startup", a), (0,))[0],) + dml_instr[(w, a)][1:]
                          for a in ("stock", "rg", "rgtag")]
            r, rt = st[0] / rg[0], st[0] / tg[0]
            md.append(f"| {label} | {st[1]:,} | {st[0]:,} | {rg[0]:,} | {tg[0]:,} | {r:.4f} | {rt:.4f} | "
                      f"{st[2]}, {rg[2]}, {tg[2]} |")
            summary.append((f"DML {label}, instructions per transaction (callgrind)", r, 0.99))
            ratio_rows.append((f"{short} instr.", r, 0.99))
    md.append("")

# --- DML in instructions, served by a real server ------------------------------
served = {}
served_runs = {}   # (workload, arm): instructions per transaction of each run, in order
for v in tsv_rows(os.path.join(res, "instructions_served.tsv"), header=True):
    if len(v) == 6 and v[3]:
        b, i, n, e = served.get((v[0], v[1]), (0, 0, 0, 0))
        served[(v[0], v[1])] = (b + int(v[2]), i + int(float(v[3])), n + int(v[4] or 0), e + int(v[5] or 0))
        if int(v[4] or 0):
            served_runs.setdefault((v[0], v[1]), []).append(int(float(v[3])) / int(v[4]))
if served:
    md.append("The same workloads counted in instructions **as a real server serves them**: the rg cluster's "
              "postmaster run under callgrind with `--trace-children=yes` (each backend it forks is counted from "
              "its start, `InitPostmasterChild`, to its exit), pgbench's own transactions over its own "
              "connections (`-M prepared`, 2 clients; the same `--random-seed` in every arm): the protocol, "
              "the connection's start (authentication, `rollguard.sessions` slot, the settings' check hooks) "
              "and end, and every statement -- everything single-user mode leaves out. Arms: the server "
              "started without rollguard (`-c shared_preload_libraries=''`), with it, and with every "
              "connection tagged (`PGOPTIONS`); ABCCBA, the sums of each arm's two runs; per transaction: "
              "the backends' instructions / transactions. *select-only, a connection per transaction*: "
              "pgbench `-C`, the worst case for what a connection's start costs (shown, not held to a "
              "target: the DML targets are for pgbench's workloads). Ratios: without / with.\n")
    md.append("| workload | transactions (two runs) | backends | instructions per transaction: without rollguard "
              "| with | tagged | ratio | tagged ratio | A/A: second / first run of each arm | failed |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    for w, label, short, t, tt in (("select", "select-only (-S)", "select", 0.99, 0.98),
                                   ("tpcb", "TPC-B-like", "TPC-B", 0.99, 0.98),
                                   ("select-connect", "select-only, a connection per transaction (-C)", "select -C",
                                    0.99, 0.98)):
        if all((w, a) in served and served[(w, a)][2] for a in ("stock", "rg", "rgtag")):
            per = {a: served[(w, a)][1] / served[(w, a)][2] for a in ("stock", "rg", "rgtag")}
            r, rt = per["stock"] / per["rg"], per["stock"] / per["rgtag"]
            md.append(f"| {label} | {served[(w, 'stock')][2]:,} | {served[(w, 'stock')][0]}, {served[(w, 'rg')][0]}, "
                      f"{served[(w, 'rgtag')][0]} | {per['stock']:,.0f} | {per['rg']:,.0f} | {per['rgtag']:,.0f} | "
                      f"{r:.4f} | {rt:.4f} | "
                      f"{', '.join(f'{x[1] / x[0]:.4f}' for x in (served_runs.get((w, a)) for a in ('stock', 'rg', 'rgtag')) if x and len(x) == 2) or '-'} | "
                      f"{served[(w, 'stock')][3]}, {served[(w, 'rg')][3]}, {served[(w, 'rgtag')][3]} |")
            if w == "select-connect":
                # the worst case of a connection's start, shown for what it is: no target
                continue
            summary.append((f"DML {label}, served connections, instructions per transaction", r, t))
            summary.append((f"DML {label}, every session tagged, served connections, instructions per transaction", rt, tt))
            ratio_rows.append((f"{short} served", r, t))
            ratio_rows.append((f"{short} tagged served", rt, tt))
    md.append("")

# --- DDL mix ----------------------------------------------------------------
md.append("## DDL mix at registry scale (1,000 deployments, 200 versions x 2,000 columns)\n")
md.append("`bench/scripts/ddl_mix.sql`, one client: ADD/DROP COLUMN, SET/DROP NOT NULL, RENAME "
          "on tables no version uses, and allowed changes on tables every version uses. "
          "Every statement is allowed; the ratio is transactions per second.\n")
rs = rounds("ddl-mix")
if any("rglock" in p for p in rs.values()):
    md.append("On the rollguard cluster two arms, each running half the transactions (so that its tables take as "
              "many DROP COLUMNs per round as stock's): *rollguard* with `rollguard.lock_checks = off` (the "
              "compatibility guard alone) and *lock_checks on* (the downtime guard too: it looks at every "
              "ALTER TABLE and measures the table when a subcommand could rewrite or scan it; the tables are "
              "small, so nothing is refused).\n")
md.append("| round | stock tps | rollguard tps | tps ratio | stock CPU ms/tx | rollguard CPU ms/tx | CPU ratio |\n|---|---|---|---|---|---|---|")
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
# the downtime guard on: stock / rglock, and rg (off) / rglock (what the family adds)
lk = [(rnd, p) for rnd, p in sorted(rs.items()) if "rglock" in p and "stock" in p and "rg" in p
      and p["rglock"]["tps"] and p["stock"]["tps"] and p["rg"]["tps"]]
if lk:
    md.append("With the downtime guard on (`rollguard.lock_checks = on`):\n")
    md.append("| round | lock_checks on tps | tps ratio (stock / on) | lock_checks on CPU ms/tx | CPU ratio (stock / on) "
              "| off / on tps | off / on CPU |\n|---|---|---|---|---|---|---|")
    lr, lc, fr, fc = [], [], [], []
    for rnd, p in lk:
        r1 = p["rglock"]["tps"] / p["stock"]["tps"]
        r2 = p["rglock"]["tps"] / p["rg"]["tps"]
        sc, oc, lcpu = p["stock"]["cpu_per_tx_us"], p["rg"]["cpu_per_tx_us"], p["rglock"]["cpu_per_tx_us"]
        c1 = sc / lcpu if sc and lcpu else None
        c2 = oc / lcpu if oc and lcpu else None
        lr.append(r1)
        fr.append(r2)
        if c1:
            lc.append(c1)
        if c2:
            fc.append(c2)
        md.append(f"| {rnd} | {fmt(p['rglock']['tps'])} | {r1:.4f} | {fmt(lcpu / 1000 if lcpu else None, 3)} | "
                  f"{fmt(c1, 4)} | {r2:.4f} | {fmt(c2, 4)} |")
    md.append(f"| **median** | | **{statistics.median(lr):.4f}** | | **{fmt(statistics.median(lc) if lc else None, 4)}** "
              f"| **{statistics.median(fr):.4f}** | **{fmt(statistics.median(fc) if fc else None, 4)}** |")
    md.append("")
    summary.append(("DDL mix (1,000 deployments), rollguard.lock_checks = on, tps", statistics.median(lr), 0.9))
    if lc:
        summary.append(("DDL mix (1,000 deployments), rollguard.lock_checks = on, server CPU per transaction",
                        statistics.median(lc), 0.9))
    ratio_rows.append(("DDL lock_checks on tps", statistics.median(lr), 0.9))

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

# the same statements in instructions (callgrind), with and without the extension
it = os.path.join(res, "instructions.tsv")
if os.path.exists(it):
    rows = {v[0]: (int(v[1]), int(v[2]), int(v[3] or 0))
            for v in tsv_rows(it, header=True) if len(v) == 4 and v[1]}
    parts = {(v[0], v[1]): int(v[2])
             for v in tsv_rows(os.path.join(res, "instructions_parts.tsv")) if len(v) == 3}
    if "ddl_ext" in rows and "ddl_noext" in rows:
        (ie, n, ee), (io, _, eo) = rows["ddl_ext"], rows["ddl_noext"]
        ratio = io / ie
        md.append("The same statements counted in instructions (valgrind's callgrind; the machine's noise "
                  "does not move these): one backend in single-user mode, on the rg cluster's binaries, "
                  f"running {n} transactions of the mix ({n * 14:,} statements, one transaction each, the same "
                  "random tables in the same order) in a fresh database with the extension and the registry "
                  "(200 versions x 2,000 columns, 1,000 deployments) and in a fresh one without the extension. "
                  "Fresh databases, because every DROP COLUMN leaves a dropped column behind, and a table's "
                  "dropped columns make each later ALTER TABLE of it dearer. "
                  "Profiles: `bench/results/profile/callgrind-ddl.txt`.\n")
        md.append("| database | instructions | per transaction | errors |\n|---|---|---|---|")
        for d, label in (("ddl_noext", "without the extension"), ("ddl_ext", "with the extension and the registry")):
            i, t, e = rows[d]
            md.append(f"| {label} | {i:,} | {i / t:,.0f} | {e} |")
        md.append(f"| **ratio** (without / with) | **{ratio:.4f}** | | |\n")
        if parts:
            std_o = parts.get(("ddl_noext", "standard_ProcessUtility"))
            std_e = parts.get(("ddl_ext", "standard_ProcessUtility"))
            md.append("Where the difference goes, per transaction (inclusive instructions):\n")
            md.append("| part | per transaction |\n|---|---|")
            for key, label in (("rg_analyze_statement", "rollguard: reading the statement (resolving and locking the table, looking up the column)"),
                               ("rg_enforce_changes", "rollguard: the check (registry lock, counters, sessions, observed uses)"),
                               ("rg_record_removals", "rollguard: recording removals a contract names (after the statement)")):
                if ("ddl_ext", key) in parts:
                    md.append(f"| {label} | {parts[('ddl_ext', key)] / n:,.0f} |")
            if std_o and std_e:
                md.append(f"| PostgreSQL's own ALTER TABLE, with minus without (the table lock and the catalog "
                          f"lookups rollguard made first are not made again) | {(std_e - std_o) / n:+,.0f} |")
            md.append(f"| total, with minus without | {(ie - io) / n:+,.0f} |\n")
        summary.append(("DDL mix (1,000 deployments), instructions per transaction (callgrind)", ratio, 0.9))
        ratio_rows.append(("DDL mix instr.", ratio, 0.9))

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
if os.path.exists(os.path.join(res, "curve.tsv")):   # PARTS without curve: none
    with open(os.path.join(res, "curve.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            vals = line.rstrip("\n").split("\t")
            if len(vals) == len(header):
                curve.append(dict(zip(header, vals)))

CHECKED = re.compile(r"SET NOT NULL|RENAME COLUMN")


def checked_latency(run):
    """mean latency of the statements the guard checks against the registry."""
    if not run:
        return None
    lats = [lat for s, lat in run["stmts"] if CHECKED.search(s)]
    return statistics.mean(lats) if lats else None


def stmt_latency(run, pattern):
    if not run:
        return None
    lats = [lat for s, lat in run["stmts"] if re.search(pattern, s)]
    return statistics.mean(lats) if lats else None


def num(c, k):
    try:
        return float(c[k])
    except (KeyError, ValueError, TypeError):
        return float("nan")


def ok(x):
    return x is not None and x == x


def ratio_or_none(a, b):
    return a / b if ok(a) and ok(b) and b else None


def curve_rows(axis):
    out = []
    for c in curve:
        if c["axis"] != axis:
            continue
        n, live = int(c["deployments"]), int(c["live_versions"])
        # the raw files are named by the requested live versions (200 on the deployments axis)
        key = f"curve-{axis}-{n}-{200 if axis == 'deployments' else live}"
        st, rg = runs.get(key + "-stock"), runs.get(key + "-rg")
        out.append({
            "x": n if axis == "deployments" else live, "n": n, "live": live, "c": c,
            "st": checked_latency(st), "rg": checked_latency(rg),
            "st_snn": stmt_latency(st, "SET NOT NULL"), "rg_snn": stmt_latency(rg, "SET NOT NULL"),
            "st_ren": stmt_latency(st, "RENAME COLUMN"), "rg_ren": stmt_latency(rg, "RENAME COLUMN"),
        })
    return out


def allowed_table(rows):
    md.append("| deployments | live versions | set up s | counters drift | SET NOT NULL ms (stock / rollguard) | "
              "RENAME COLUMN ms (stock / rollguard) | checked statements: stock ms | rollguard ms | "
              "rollguard - stock ms | ratio | counters query by hand ms (planning) |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["c"]
        ratio = ratio_or_none(r["st"], r["rg"])
        excess = r["rg"] - r["st"] if r["rg"] is not None and r["st"] is not None else None
        drift = c.get("drift", "n/a")
        md.append(f"| {r['n']:,} | {r['live']} | {fmt(num(c, 'setup_ms') / 1000, 2)} | "
                  f"{drift if drift == '0' else '**' + drift + '**'} | "
                  f"{fmt(r['st_snn'], 3)} / {fmt(r['rg_snn'], 3)} | {fmt(r['st_ren'], 3)} / {fmt(r['rg_ren'], 3)} | "
                  f"{fmt(r['st'], 3)} | {fmt(r['rg'], 3)} | {fmt(excess, 3)} | {fmt(ratio, 3)} | "
                  f"{fmt(num(c, 'counts_ms'), 3)} ({fmt(num(c, 'counts_plan_ms'), 3)}) |")
    md.append("")


def refused_table(rows):
    md.append("| deployments | live versions | deployments named | DETAIL KB | DROP COLUMN ms: refused (stock) | "
              "per named deployment us | SET NOT NULL ms: refused (stock) | RENAME TABLE ms: refused (stock) | "
              "by hand: column query ms | NOT NULL query ms (rows) | relation query ms (rows) |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["c"]
        blockers = num(c, "blockers")
        per = ((num(c, "refuse_drop_column_ms") - num(c, "stock_drop_column_ms")) / blockers * 1000
               if ok(blockers) and blockers else None)
        md.append(f"| {r['n']:,} | {r['live']} | {fmt_int(blockers)} | {fmt(num(c, 'refusal_bytes') / 1024, 1)} | "
                  f"{fmt(num(c, 'refuse_drop_column_ms'), 3)} ({fmt(num(c, 'stock_drop_column_ms'), 3)}) | {fmt(per, 1)} | "
                  f"{fmt(num(c, 'refuse_set_not_null_ms'), 3)} ({fmt(num(c, 'stock_set_not_null_ms'), 3)}) | "
                  f"{fmt(num(c, 'refuse_rename_table_ms'), 3)} ({fmt(num(c, 'stock_rename_table_ms'), 3)}) | "
                  f"{fmt(num(c, 'column_query_ms'), 3)} | {fmt(num(c, 'not_null_query_ms'), 3)} ({fmt_int(num(c, 'not_null_rows'))}) | "
                  f"{fmt(num(c, 'relation_query_ms'), 3)} ({fmt_int(num(c, 'relation_rows'))}) |")
    md.append("")


md.append("## The cost of one check: allowed DDL vs deployments\n")
md.append("`bench/scripts/ddl_guarded.sql`, one client, on tables every version uses: `SET NOT NULL` "
          "of a column every live version writes non-NULL and two `RENAME COLUMN` of a column no "
          "version uses -- checked by the guard and allowed on the counters of live use alone, the "
          "common case. Per statement: `pgbench -r` mean latency; *checked statements*: the mean of "
          "those three, *ratio* stock / rollguard. 200 registered versions, mirror-i on v(i mod 200 + 1). "
          "*Set up*: `bench_proto.set_deployments()` writing `rollguard.deployment_state` directly, "
          "rollguard's triggers keeping the counters (a version entering or leaving them is the cost). "
          "*Counters drift*: rows of `rollguard._live_drift()` (the counters against a recount: 0 "
          "expected). *Counters query by hand*: the guard's first query (`counts_plan` in "
          "`src/registry.c`, extracted by `bench/guard_sql.py`), PREPAREd and run as the generic plan "
          "the guard uses, EXPLAIN ANALYZE median.\n")
dep_rows = curve_rows("deployments")
allowed_table(dep_rows)
if len(dep_rows) >= 2:
    md.append("Growth per step of deployments (a logarithmic cost grows by a constant amount per "
              "decade; a linear one is multiplied by 10):\n")
    md.append("| from | to | checked statements x | SET NOT NULL x | RENAME COLUMN x | rollguard - stock: ms -> ms | counters query x |")
    md.append("|---|---|---|---|---|---|---|")
    for a, b in zip(dep_rows, dep_rows[1:]):
        ea = a["rg"] - a["st"] if a["rg"] is not None and a["st"] is not None else None
        eb = b["rg"] - b["st"] if b["rg"] is not None and b["st"] is not None else None
        md.append(f"| {a['n']:,} | {b['n']:,} | {fmt(ratio_or_none(b['rg'], a['rg']), 2)} | "
                  f"{fmt(ratio_or_none(b['rg_snn'], a['rg_snn']), 2)} | {fmt(ratio_or_none(b['rg_ren'], a['rg_ren']), 2)} | "
                  f"{fmt(ea, 3)} -> {fmt(eb, 3)} | "
                  f"{fmt(ratio_or_none(num(b['c'], 'counts_ms'), num(a['c'], 'counts_ms')), 2)} |")
    md.append("")

md.append("## The cost of one check vs live versions (1,000 deployments)\n")
ver_rows = sorted(curve_rows("versions"), key=lambda r: r["x"])
allowed_table(ver_rows)
cb = os.path.join(res, "profile", "counters-bloat.txt")
if os.path.exists(cb):
    with open(cb) as f:
        lines = [l.rstrip("\n") for l in f if re.match(r"(before|after) VACUUM|live_column", l)]
    if lines:
        md.append("The counters query right after the versions axis put 199 versions back into the counters, "
                  "and after VACUUM (`bench/results/profile/counters-bloat.txt`, with the plan): "
                  "ms, rows, planning ms; `live_column` size, live rows, dead rows:\n")
        md.append("```")
        md.extend(lines)
        md.append("```\n")

md.append("## The cost of a refused statement\n")
md.append("A refusal names every live deployment the change breaks (one DETAIL line each), so it reads "
          "them all: its cost is linear in the deployments it names, by nature. It is paid once, by a "
          "statement that fails; allowed statements (above) never pay it. Timed as a client sees it: "
          "`psql \\timing` of the statement inside BEGIN ... ROLLBACK, one warm-up then the median; on "
          "stock (in parentheses) the same statement succeeds and is rolled back. Statements on "
          "`public.used_7`, used by every version: `DROP COLUMN c002`, `ALTER COLUMN c002 SET NOT NULL` "
          "(every version may write NULL), `RENAME TO` (every column of every live deployment is read). "
          "*Deployments named*: rows of `rollguard.check()` for the DROP COLUMN; *DETAIL KB*: the error "
          "psql printed; *per named deployment*: (refused - stock) / deployments named. *By hand*: the "
          "guard's per-deployment queries alone, generic plans, EXPLAIN ANALYZE median.\n")
md.append("Against deployments (200 versions):\n")
refused_table(dep_rows)
md.append("Against live versions (1,000 deployments):\n")
refused_table(ver_rows)
pr = os.path.join(res, "profile", "perf-refused.txt")
if os.path.exists(pr):
    md.append("Where a refused DROP COLUMN spends its time at 1,000 deployments: "
              "`bench/results/profile/perf-refused.txt`.\n")

# --- deploy API ---------------------------------------------------------------
md.append("## Deploy API\n")
md.append("Every deploy step (and registration) takes the counters' global lock first "
          "(`rollguard._lock_live()`) and holds it until it commits: deploy steps are serialized. The "
          "1,000 mirrors move onto one version (the 200 versions they ran leave the counters, one by "
          "one) and back over 200 versions (200 versions enter them), each with 50 clients and with one "
          "client, the serial reference doing the same work; each move starts from a vacuumed "
          "registry.\n")


def line(label, key):
    r = runs.get(key)
    if not r:
        return
    good = "yes" if r["exit"] == 0 and not r["aborted"] and (r["failed"] or 0) == 0 else "**NO**"
    proc = f"{r['processed']}/{r['expected']}" if r["expected"] else f"{r['processed']}"
    md.append(f"| {label} | {fmt(r['lat'])} | {fmt(r['tps'])} | {proc} | {good} |")


md.append("| operation | latency ms (mean) | per second | transactions | no errors (pgbench) |\n|---|---|---|---|---|")
line("register_version, 2,000-column manifest (200 versions, 1 client)", "setup-register-2000")
line("register_version, 5,000-column manifest (1 client)", "deploy-register-5000")
line("deploy: 1,000 new mirrors onto 2,000-column versions (1 client)", "setup-deploy-1000")
line("deploy: new deployments of a 5,000-column version (1 client)", "deploy-deploy-5000")
line("deploy: 1,000 mirrors from 200 versions onto v201 (50 clients)", "deploy-mirrors-c50")
line("deploy: 1,000 mirrors from 200 versions onto v202 (1 client, reference)", "deploy-mirrors-c1")
line("deploy: 1,000 mirrors back over 200 versions (50 clients)", "deploy-mirrors-spread-c50")
line("deploy: 1,000 mirrors back over 200 versions (1 client, reference)", "deploy-mirrors-spread-c1")
md.append("")
first = {}
fp = os.path.join(res, "deploy_first.tsv")
if os.path.exists(fp):
    with open(fp) as f:
        for l in f:
            k, _, v = l.rstrip("\n").partition("\t")
            first[k] = v
    series = [float(x) for x in first.get("deploy-5000-first-series", "").split()]
    if series:
        md.append(f"First deploys of a 5,000-column version, each in a new connection, each from the same "
                  f"counters (its columns not in them; the deployment removed and the counters vacuumed after "
                  f"each): {', '.join(f'{x:.1f}' for x in series)} ms, median "
                  f"{statistics.median(series):.1f} ms.\n")
    if first.get("deploy-5000-first"):
        md.append(f"New deployments of the 5,000-column version big-1: the first (which makes it live again) "
                  f"{fmt(first['deploy-5000-first'])} ms, the others (median, the version already live) "
                  f"{fmt(first.get('deploy-5000-others-median'))} ms.\n")
r = runs.get("deploy-register-5000")
if r and r["lat"]:
    summary.append(("register_version, 5,000-column manifest", r["lat"], "< 50 ms", f"{r['lat']:.1f} ms", r["lat"] < 50))
series = [float(x) for x in first.get("deploy-5000-first-series", "").split()]
if series:
    v = statistics.median(series)
    summary.append(("first deploy of a 5,000-column version (its columns enter the counters)", v, "< 50 ms",
                    f"{v:.1f} ms (median of {len(series)}; {min(series):.1f}-{max(series):.1f})", v < 50))
elif first.get("deploy-5000-first"):
    v = float(first["deploy-5000-first"])
    summary.append(("first deploy of a 5,000-column version (its columns enter the counters)", v, "< 50 ms",
                    f"{v:.1f} ms", v < 50))
bt = os.path.join(res, "deploy_batches.tsv")
if os.path.exists(bt):
    with open(bt) as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    if rows:
        md.append("The 1,000 initial deploys (one session, right after the 200 registrations), "
                  "mean latency per batch of 100 (the first 200 each make a version live):\n")
        md.append("| " + " | ".join(f"{int(r[1]):,}-{int(r[1]) + 99:,}" for r in rows) + " |")
        md.append("|" + "---|" * len(rows))
        md.append("| " + " | ".join(f"{float(r[2]):.1f} ms" for r in rows) + " |")
        md.append("")
chk = os.path.join(res, "deploy_check.tsv")
checks = {parts[0]: parts[1:] for parts in tsv_rows(chk)}
if os.path.exists(chk):
    md.append("After each move: mirrors on the expected version / distinct mirrors / mirror rows (1,000 each "
              "expected), ERROR/FATAL/deadlock lines in the server log during it, rows of "
              "`rollguard._live_drift()` afterwards (0 expected), and `rollguard.live_column` afterwards "
              "(size, live rows, dead rows: each version entering or leaving the counters updates a row "
              "per column of its contract; every move starts vacuumed):\n")
    md.append("| move | on the expected version | distinct mirrors | mirror rows | server log errors | counters drift | live_column: size, live, dead |")
    md.append("|---|---|---|---|---|---|---|")
    for name in ["mirrors-c50", "mirrors-c1", "mirrors-spread-c50", "mirrors-spread-c1"]:
        if name in checks:
            v = checks[name] + ["", "", ""]
            md.append(f"| {name} | {v[0]} | {v[1]} | {v[2]} | {(checks.get(name + '-server-errors') or ['?'])[0]} | "
                      f"{(checks.get(name + '-live-drift') or ['?'])[0]} | "
                      f"{', '.join(checks.get(name + '-live_column') or ['?'])} |")
    md.append("")
wt = os.path.join(res, "deploy_waits.tsv")
if os.path.exists(wt):
    with open(wt) as f:
        wrows = [l.rstrip("\n").split("\t") for l in f][1:]
    if wrows:
        md.append("What the 50 concurrent deploy sessions were doing (pg_stat_activity sampled every 0.25 s, "
                  "session-samples; a lock waited for is named: its relation, or an advisory lock's key):\n")
        md.append("| move | wait event | samples | share |\n|---|---|---|---|")
        tot = {}
        for r in wrows:
            if len(r) == 3:
                tot[r[0]] = tot.get(r[0], 0) + int(r[2])
        for r in wrows:
            if len(r) == 3:
                md.append(f"| {r[0]} | {r[1]} | {r[2]} | {int(r[2]) / tot[r[0]]:.0%} |")
        md.append("")
conc = []
for one, ref, what in [("deploy-mirrors-c50", "deploy-mirrors-c1", "onto one version"),
                       ("deploy-mirrors-spread-c50", "deploy-mirrors-spread-c1", "over 200 versions")]:
    a, b = runs.get(one), runs.get(ref)
    if a and b and a["tps"] and b["tps"]:
        conc.append(f"{what}: 50 clients {a['tps']:.0f}/s, one client {b['tps']:.0f}/s (x{a['tps'] / b['tps']:.2f})")
if conc:
    md.append("Concurrency: " + "; ".join(conc) + ".\n")

# --- summary ------------------------------------------------------------------
# the method of each row: how the measure was taken (it decides how far to trust it)
METHODS = [
    ("served connections, instructions", "callgrind on the postmaster with --trace-children: every backend of a real server, connection start to exit, per transaction"),
    ("instructions per transaction (callgrind)", "callgrind, one backend in single-user mode: the statements only"),
    ("server CPU per transaction", "CPU time of all the cluster's processes (/proc) per transaction, median of rounds"),
    (", tps", "pgbench transactions per second, median of rounds (wall clock: the machine's load moves it)"),
    ("register_version", "pgbench -r mean latency, one client (wall clock)"),
    ("first deploy", "pgbench -l: five first deploys, each in a new connection from the same counters, median (wall clock)"),
    ("latency", "pgbench -r mean latency per statement (wall clock)"),
    ("counters of live use", "rows of rollguard._live_drift() (a recount)"),
    ("mirrors deploying", "pgbench, 50 clients; server log, counters recount, placement check"),
    ("refused", "psql \\timing, median"),
]


def method(what):
    return next((m for key, m in METHODS if key in what), "")


summ = ["## Summary\n", "| target | measured | target | met | method |", "|---|---|---|---|---|"]
for row in summary:
    what, value, target = row[:3]
    if len(row) > 3:   # (what, value, target, text, met): a measure that is not a ratio
        summ.append(f"| {what} | {row[3]} | {target} | {'yes' if row[4] else '**no**'} | {method(what)} |")
    else:
        summ.append(f"| {what} | {value:.4f} | >= {target} | {'yes' if value >= target else '**no**'} | {method(what)} |")
if len(dep_rows) >= 2:
    import math
    a, b = dep_rows[0], dep_rows[-1]
    bound = math.log(b["n"]) / math.log(a["n"]) if a["n"] > 1 else float("inf")   # c*log(N) grows at most this much
    for label, ka in [("allowed checked DDL latency (rollguard, pgbench -r)", "rg"),
                      ("the guard's counters query (by hand)", None)]:
        va = a[ka] if ka else num(a["c"], "counts_ms")
        vb = b[ka] if ka else num(b["c"], "counts_ms")
        if ok(va) and ok(vb) and va:
            grow = vb / va
            summ.append(f"| {label}, {a['n']:,} -> {b['n']:,} deployments | {va:.3f} ms -> {vb:.3f} ms (x{grow:.2f}; "
                        f"deployments x{b['n'] / a['n']:,.0f}) | at most logarithmic (x{bound:.1f}) | "
                        f"{'yes' if grow <= bound else '**no**'} | {method(label + ' latency')} |")
    ra, rb = num(a["c"], "refuse_drop_column_ms"), num(b["c"], "refuse_drop_column_ms")
    if ok(ra) and ok(rb) and ra:
        summ.append(f"| refused DROP COLUMN (names every deployment), {a['n']:,} -> {b['n']:,} deployments | "
                    f"{ra:.2f} ms -> {rb:.2f} ms (x{rb / ra:.0f}) | none: linear by nature, reported apart | - | {method('refused')} |")
    drifts = [r["c"].get("drift") for r in dep_rows + ver_rows]
    summ.append(f"| counters of live use at every curve point (rows of rollguard._live_drift()) | "
                f"{', '.join(str(d) for d in drifts)} | 0 | {'yes' if all(d == '0' for d in drifts) else '**no**'} | "
                f"{method('counters of live use')} |")
for label, key, name in [("1,000 mirrors deploying onto one version, 50 clients", "deploy-mirrors-c50", "mirrors-c50"),
                         ("1,000 mirrors deploying over 200 versions, 50 clients", "deploy-mirrors-spread-c50", "mirrors-spread-c50")]:
    r = runs.get(key)
    if r:
        errs = (checks.get(name + "-server-errors") or ["?"])[0]
        drift = (checks.get(name + "-live-drift") or ["?"])[0]
        placed = (checks.get(name) or ["?"])[0]
        good = (r["exit"] == 0 and not r["aborted"] and (r["failed"] or 0) == 0
                and r["processed"] == (r["expected"] or r["processed"]) and errs == "0" and drift == "0"
                and placed == "1000")
        summ.append(f"| {label} | {fmt(r['tps'])}/s, {r['processed']} done, {errs} server errors, "
                    f"{placed} placed right, drift {drift} | no errors | {'yes' if good else '**no**'} | "
                    f"{method('mirrors deploying')} |")
ref = runs.get("setup-register-2000")
if ref and ref["lat"]:
    # the same work on the same state at the start of every run: how fast the
    # machine ran, for reading the wall-clock rows above against other runs
    summ.append("")
    summ.append(f"Wall-clock rows move with the machine.  Its speed in this run: the 200 registrations of "
                f"2,000-column manifests that start every run (the same work on the same fresh registry) took "
                f"{ref['lat']:.1f} ms each (mean): compare it with other runs' before comparing their "
                f"wall-clock rows.")
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
COLS = ["x", "stock_checked_ms", "rollguard_checked_ms", "counts_ms", "rg_set_not_null_ms", "rg_rename_ms",
        "refuse_drop_column_ms", "refuse_set_not_null_ms", "refuse_rename_table_ms", "stock_set_not_null_ms",
        "stock_rename_ms", "blockers", "stock_drop_column_ms"]
for name, data in [("curve_deployments.dat", dep_rows), ("curve_versions.dat", ver_rows)]:
    with open(os.path.join(res, name), "w") as f:
        f.write("# " + " ".join(COLS) + "\n")
        for r in data:
            c = r["c"]
            vals = [r["x"], r["st"], r["rg"], num(c, "counts_ms"), r["rg_snn"], r["rg_ren"],
                    num(c, "refuse_drop_column_ms"), num(c, "refuse_set_not_null_ms"),
                    num(c, "refuse_rename_table_ms"), r["st_snn"], r["st_ren"], num(c, "blockers"),
                    num(c, "stock_drop_column_ms")]
            f.write(" ".join("NaN" if v is None or v != v else str(v) for v in vals) + "\n")
with open(os.path.join(res, "deploy.dat"), "w") as f:
    f.write("# label latency_ms per_second\n")
    for label, key in [("register 2,000 cols", "setup-register-2000"), ("register 5,000 cols", "deploy-register-5000"),
                       ("deploy 2,000 cols", "setup-deploy-1000"), ("deploy 5,000 cols", "deploy-deploy-5000"),
                       ("onto 1 version, 50 clients", "deploy-mirrors-c50"), ("onto 1 version, 1 client", "deploy-mirrors-c1"),
                       ("over 200 versions, 50 clients", "deploy-mirrors-spread-c50"),
                       ("over 200 versions, 1 client", "deploy-mirrors-spread-c1")]:
        r = runs.get(key)
        if r and r["lat"]:
            f.write(f"\"{label}\" {r['lat']} {r['tps'] or 0}\n")
# one screen: the summary, then where the rest is
print("\n".join(l for l in summ if l))
print(f"\nEverything else: {os.path.join(res, 'results.md')}")
