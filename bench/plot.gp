# bench/plot.gp: run in bench/results/ after report.py (bench/run.sh does both).
set terminal pngcairo size 1600,1300 font "DejaVu Sans,11" noenhanced
set output "rollguard-bench.png"
set multiplot layout 2,2 title "rollguard benchmarks (rollguard / stock PostgreSQL 15, same binaries, same run)" font ",14"

# 1. ratios against their targets
set title "Throughput ratio rollguard / stock (higher is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set yrange [0:1.2]
set ylabel "ratio"
set grid ytics
set key top right
set xtics nomirror rotate by -25
set bmargin 5
plot "ratios.dat" using 2:xtic(1) title "measured" lc rgb "#4472c4", \
     "" using 3 title "target" lc rgb "#a9d18e", \
     "" using ($0 - 0.2):($2 + 0.04):(sprintf("%.3f", $2)) with labels notitle font ",10"
unset style
set style data linespoints
set xtics norotate
set bmargin

# 2. the curve: deployments
set title "Latency of one guarded DDL statement vs deployments (200 versions)"
set logscale xy
set xrange [5:20000]
set autoscale y
set xlabel "deployments" offset 0,0.5
set ylabel "ms (log)"
set format y "%g"
set key below horizontal maxcols 2 font ",10" spacing 1.1
set grid xtics ytics mxtics mytics
stats "curve_deployments.dat" using 1:8 nooutput
lin(x) = STATS_max_y * x / STATS_max_x
plot "curve_deployments.dat" using 1:8 with linespoints lw 2 pt 7 lc rgb "#c00000" title "rollguard: SET NOT NULL (pgbench -r)", \
     "" using 1:9 with linespoints lw 2 pt 9 lc rgb "#e377c2" title "rollguard: RENAME COLUMN (pgbench -r)", \
     "" using 1:2 with linespoints lw 2 pt 5 lc rgb "#404040" title "stock: same DDL (mean)", \
     lin(x) with lines dt 3 lc rgb "#999999" title "proportional to deployments (reference)", \
     "" using 1:4 with linespoints dt 2 pt 6 lc rgb "#ff7f0e" title "the guard's SET NOT NULL query alone (EXPLAIN ANALYZE)", \
     "" using 1:5 with linespoints dt 3 pt 8 lc rgb "#2ca02c" title "proposed tier 1 query", \
     "" using 1:6 with linespoints dt 4 pt 4 lc rgb "#1f77b4" title "proposed tier 2 lookup"

# 3. the curve: live versions
set title "Latency of one guarded DDL statement vs live versions (1,000 deployments)"
set xrange [0.7:300]
set xlabel "live versions" offset 0,0.5
plot "curve_versions.dat" using 1:8 with linespoints lw 2 pt 7 lc rgb "#c00000" title "rollguard: SET NOT NULL", \
     "" using 1:9 with linespoints lw 2 pt 9 lc rgb "#e377c2" title "rollguard: RENAME COLUMN", \
     "" using 1:2 with linespoints lw 2 pt 5 lc rgb "#404040" title "stock: same DDL (mean)", \
     "" using 1:4 with linespoints dt 2 pt 6 lc rgb "#ff7f0e" title "the guard's SET NOT NULL query alone", \
     "" using 1:5 with linespoints dt 3 pt 8 lc rgb "#2ca02c" title "proposed tier 1 query", \
     "" using 1:6 with linespoints dt 4 pt 4 lc rgb "#1f77b4" title "proposed tier 2 lookup"

# 4. deploy API
unset logscale
set logscale y
set title "Deploy API: mean latency per call (labels: calls per second; the last three: 1,000 mirrors deploying)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xrange [*:*]
set autoscale x
set yrange [1:*]
set xlabel ""
set ylabel "ms (log)"
set xtics rotate by -25 nomirror font ",10"
set bmargin 7
set rmargin 8
set key off
plot "deploy.dat" using 2:xtic(1) lc rgb "#7f6000", \
     "" using 0:($2 * 1.4):(sprintf("%.0f/s", $3)) with labels notitle

unset multiplot
