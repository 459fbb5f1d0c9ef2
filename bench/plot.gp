#   bench/plot.gp: the figures of one `make bench`, from bench/report.py's data.
#   gnuplot -e "prefix='bench/results/bench-STAMP'" bench/plot.gp
#   -> PREFIX.png: throughput against sender/recipient pairs, and latency
#   percentiles (p50, p99, p99.9) per workload, log scale.
if (!exists("prefix")) prefix = 'bench/results/bench'
set terminal pngcairo size 1400,1000 font ",10" noenhanced
set output prefix.'.png'
set multiplot layout 2,2 title "bulkhead vs. baseline (bare CURVE hop) vs. NATS JetStream vs. Redis Streams (loopback, medians over rounds)"

set style line 1 lc rgb '#4477aa' lw 2 pt 7
set style line 2 lc rgb '#cc3311' lw 2 pt 5
set style line 3 lc rgb '#228833' lw 2 pt 9
set style line 4 lc rgb '#aa3377' lw 2 pt 11
set key top left
set grid ytics

set title "Throughput, closed loop"
set xlabel "sender -> recipient pairs"
set ylabel "messages/s delivered"
set xtics (1, 2, 4)
set xrange [0.5:4.5]
set yrange [0:*]
set format y "%.0s%c"
plot prefix.'-tput.dat' index 0 using 1:2 with linespoints ls 1 title "baseline 256 B", \
     ''                 index 0 using 1:3 with linespoints ls 2 title "bulkhead 256 B", \
     ''                 index 0 using 1:4 with linespoints ls 3 title "nats 256 B", \
     ''                 index 0 using 1:5 with linespoints ls 4 title "redis 256 B", \
     ''                 index 1 using 1:2 with linespoints ls 1 dt 2 title "baseline 4 KiB", \
     ''                 index 1 using 1:3 with linespoints ls 2 dt 2 title "bulkhead 4 KiB", \
     ''                 index 1 using 1:4 with linespoints ls 3 dt 2 title "nats 4 KiB", \
     ''                 index 1 using 1:5 with linespoints ls 4 dt 2 title "redis 4 KiB"

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
unset xtics
set xtics rotate by -30 nomirror
set xlabel "payload x pairs, offered rate" noenhanced
set ylabel "ms, send to delivery (log)"
set logscale y
set yrange [0.01:*]
set format y "%g"
set xrange [*:*]
set key top left

set title "Latency p50, open loop"
plot prefix.'-lat.dat' using 2:xtic(1) ls 1 title "baseline", '' using 5 ls 2 title "bulkhead", \
     '' using 8 ls 3 title "nats", '' using 11 ls 4 title "redis"
set title "Latency p99, open loop"
plot prefix.'-lat.dat' using 3:xtic(1) ls 1 title "baseline", '' using 6 ls 2 title "bulkhead", \
     '' using 9 ls 3 title "nats", '' using 12 ls 4 title "redis"
set title "Latency p99.9, open loop"
plot prefix.'-lat.dat' using 4:xtic(1) ls 1 title "baseline", '' using 7 ls 2 title "bulkhead", \
     '' using 10 ls 3 title "nats", '' using 13 ls 4 title "redis"
unset multiplot
