# Cluster DNS load and pod success over time, one line per system.
# Called by fleet.sh: gnuplot -e "out='...'; files='a.series.tsv b.series.tsv';
# names='a b'; timeline='steady:20,down:25,...'" plot.gp
set terminal pngcairo size 1100,760 font "DejaVu Sans,10"
set output out
set datafile separator "\t"
set multiplot layout 2,1

# Phase boundaries and names from the timeline.
phases = timeline
at = 0
n = 0
do for [i=1:20] {
  comma = strstrt(phases, ",")
  item = comma > 0 ? phases[1:comma-1] : phases
  if (strlen(item) > 0) {
    colon = strstrt(item, ":")
    name = item[1:colon-1]
    len = real(item[colon+1:])
    n = n + 1
    set arrow n from at, graph 0 to at, graph 1 nohead dt 3 lc rgb "#888888"
    set label n name at at + len / 2, graph 0.95 center textcolor rgb "#555555"
    at = at + len
  }
  phases = comma > 0 ? phases[comma+1:] : ""
}
set xrange [0:at]
set grid ytics
set key outside right top
# The same margins for both plots, so their time axes line up.
set lmargin 10
set rmargin 16

set title "Queries reaching the cluster DNS (per second)"
set ylabel "queries/s"
set logscale y
set yrange [1:*]
plot for [i=1:words(files)] word(files, i) using 1:($2 > 0 ? $2 : 1) with steps lw 2 title word(names, i), \
     word(files, 1) using 1:6 with steps lw 1 dt 2 lc rgb "black" title "capacity"

unset logscale y
set title "Pod lookups answered correctly (% of the lookups started in that second)"
set ylabel "%"
set xlabel "seconds"
set yrange [0:105]
plot for [i=1:words(files)] word(files, i) using 1:($7 > 0 ? $9 : 1/0) with steps lw 2 title word(names, i)
unset multiplot
