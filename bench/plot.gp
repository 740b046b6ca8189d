# bench/plot.gp: run in bench/results/ after report.py (bench/run.sh does both).
set terminal pngcairo size 1700,1400 font "DejaVu Sans,11" noenhanced
set output "rollguard-bench.png"
set multiplot layout 2,2 title "rollguard benchmarks (rollguard / stock PostgreSQL 15, same binaries, same run)" font ",14"

# 1. ratios against their targets
set title "Throughput ratio rollguard / stock (higher is better; tagged: every session tagged)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set yrange [0:1.2]
set ylabel "ratio"
set grid ytics
set key top right
set xtics nomirror rotate by -30 font ",10"
set bmargin 6
plot "ratios.dat" using 2:xtic(1) title "measured" lc rgb "#4472c4", \
     "" using 3 title "target" lc rgb "#a9d18e", \
     "" using ($0 - 0.2):($2 + 0.04):(sprintf("%.3f", $2)) with labels notitle font ",9"
unset style
set style data linespoints
set xtics norotate font ",11"
set bmargin

# columns of curve_*.dat (report.py): 1 x, 2 stock checked ms, 3 rollguard checked ms,
# 4 counters query ms, 5 rollguard SET NOT NULL, 6 rollguard RENAME COLUMN,
# 7 refused DROP COLUMN, 8 refused SET NOT NULL, 9 refused RENAME TABLE,
# 10 stock SET NOT NULL, 11 stock RENAME COLUMN, 12 deployments named, 13 stock DROP COLUMN

# 2. the curve: deployments
set title "One statement vs deployments (200 versions): allowed (solid), refused (dashed)"
set logscale xy
set xrange [5:20000]
set autoscale y
set xlabel "deployments" offset 0,0.5
set ylabel "ms (log)"
set format y "%g"
set key below horizontal maxcols 2 font ",10" spacing 1.1
set grid xtics ytics mxtics mytics
stats "curve_deployments.dat" using 1 nooutput name "X"
stats "curve_deployments.dat" using 7 nooutput name "Y"
lin(x) = Y_max * x / X_max
plot "curve_deployments.dat" using 1:5 with linespoints lw 2 pt 7 lc rgb "#c00000" title "rollguard: SET NOT NULL, allowed (pgbench -r)", \
     "" using 1:6 with linespoints lw 2 pt 9 lc rgb "#e377c2" title "rollguard: RENAME COLUMN, allowed (pgbench -r)", \
     "" using 1:2 with linespoints lw 2 pt 5 lc rgb "#404040" title "stock: the same statements (mean)", \
     "" using 1:4 with linespoints lw 1 pt 6 lc rgb "#1f77b4" title "the guard's counters query alone (by hand)", \
     "" using 1:7 with linespoints dt 2 pt 4 lc rgb "#ff7f0e" title "refused DROP COLUMN (psql, names every deployment)", \
     "" using 1:8 with linespoints dt 2 pt 8 lc rgb "#2ca02c" title "refused SET NOT NULL", \
     "" using 1:9 with linespoints dt 2 pt 10 lc rgb "#9467bd" title "refused RENAME TABLE (every column of every deployment)", \
     lin(x) with lines dt 3 lc rgb "#999999" title "proportional to deployments (reference)"

# 3. the curve: live versions
set title "One statement vs live versions (1,000 deployments): allowed (solid), refused (dashed)"
set xrange [0.7:300]
set xlabel "live versions" offset 0,0.5
plot "curve_versions.dat" using 1:5 with linespoints lw 2 pt 7 lc rgb "#c00000" title "rollguard: SET NOT NULL, allowed", \
     "" using 1:6 with linespoints lw 2 pt 9 lc rgb "#e377c2" title "rollguard: RENAME COLUMN, allowed", \
     "" using 1:2 with linespoints lw 2 pt 5 lc rgb "#404040" title "stock: the same statements (mean)", \
     "" using 1:4 with linespoints lw 1 pt 6 lc rgb "#1f77b4" title "the guard's counters query alone", \
     "" using 1:7 with linespoints dt 2 pt 4 lc rgb "#ff7f0e" title "refused DROP COLUMN", \
     "" using 1:8 with linespoints dt 2 pt 8 lc rgb "#2ca02c" title "refused SET NOT NULL", \
     "" using 1:9 with linespoints dt 2 pt 10 lc rgb "#9467bd" title "refused RENAME TABLE"

# 4. deploy API
unset logscale
set logscale y
set title "Deploy API: mean latency per call (labels: calls per second; the last four: 1,000 mirrors deploying)"
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
set rmargin 12
set key off
plot "deploy.dat" using 2:xtic(1) lc rgb "#7f6000", \
     "" using 0:($2 * 1.4):(sprintf("%.0f/s", $3)) with labels notitle

unset multiplot
