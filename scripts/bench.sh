#!/usr/bin/env bash
# The benchmark harness: generate realistic dumps once (cached), then time every subcommand.
#
#   scripts/bench.sh [GIB] [RUNS]        e.g. scripts/bench.sh 2 5   (defaults: 2 GiB, 5 runs)
#
# For each subcommand it reports the median wall time of RUNS runs, its ratio to one sequential
# read of the same file from the page cache (the floor: heapdiag cannot be faster than reading
# what it needs), the peak resident set (which includes the mapped dump's pages) and the peak heap
# memory heapdiag allocated (HEAPDIAG_MEMSTATS). The table is Markdown, for docs/performance.md.
# Environment: BENCH_CACHE (default target/bench-dumps) holds the generated dumps.
set -euo pipefail
cd "$(dirname "$0")/.."

GIB=${1:-2}
RUNS=${2:-5}
CACHE=${BENCH_CACHE:-target/bench-dumps}
mkdir -p "$CACHE"

cargo build --release --quiet -p heapdiag --bins
cargo build --release --quiet -p dumpwriter --examples
BIN=target/release/heapdiag
GEN=target/release/examples/benchdump

# A large real PDB for the symbol-loading figure, when clang and lld are installed.
PE=""
if command -v clang > /dev/null && command -v lld-link > /dev/null; then
  if [ ! -s "$CACHE/pdb/big.pdb" ]; then
    echo "building a ~30 MB PDB with clang and lld" >&2
    scripts/make-big-pdb.sh "$CACHE/pdb" >&2
  fi
  PE="$CACHE/pdb/big.exe"
else
  echo "clang/lld not installed: no symbol-loading figure (apt-get install clang lld)" >&2
fi

A="$CACHE/bench-v3-${GIB}g.dmp"
B="$CACHE/bench-v3-${GIB}g-later.dmp"
if [ ! -s "$A" ]; then
  echo "generating $A" >&2
  /usr/bin/time -f "  generated in %e s" "$GEN" "$A" "$GIB" 0 20000 $PE >&2
fi
if [ ! -s "$B" ]; then
  echo "generating $B (the same process, later, with a leak)" >&2
  /usr/bin/time -f "  generated in %e s" "$GEN" "$B" "$GIB" 50000 20000 $PE >&2
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The floor: one sequential read of the file from the page cache (warmed first).
cat "$A" > /dev/null
floor=$(for _ in $(seq "$RUNS"); do /usr/bin/time -f "%e" cat "$A" 2>&1 >/dev/null; done | median)

size=$(stat -c %s "$A")
echo "Dump: $A, $((size / 1048576)) MiB; sequential read from page cache: ${floor} s (median of $RUNS)"
echo
echo "| command | median wall (s) | × sequential read | peak RSS (MiB) | peak heap memory (MiB) |"
echo "|---|---|---|---|---|"

measure() {
  local label=$1; shift
  local times=() rss=0 heap=0
  for _ in $(seq "$RUNS"); do
    local out
    out=$( { HEAPDIAG_MEMSTATS=1 /usr/bin/time -f "TIME %e %M" "$BIN" "$@" > /dev/null; } 2>&1 )
    times+=("$(echo "$out" | awk '/^TIME/ {print $2}')")
    rss=$(echo "$out" | awk '/^TIME/ {print $3}')
    heap=$(echo "$out" | awk '/peak heap memory/ {print $5}')
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | median)
  awk -v l="$label" -v m="$med" -v f="$floor" -v r="$rss" -v h="$heap" 'BEGIN {
    ratio = (f > 0) ? m / f : 0;
    printf "| `%s` | %.2f | %.1f | %.0f | %.0f |\n", l, m, ratio, r / 1024, h / 1048576 }'
}

measure "info" info "$A"
measure "address" address "$A"
measure "address --regions --json" address "$A" --regions --json
measure "heaps" heaps "$A"
measure "heaps --stat" heaps "$A" --stat
measure "blocks --json" blocks "$A" --json
measure "blocks --format jsonl" blocks "$A" --format jsonl
measure "blocks --csv" blocks "$A" --csv
measure "top --by stack" top "$A" --by stack
measure "top --by function" top "$A" --by function
if [ -n "$PE" ]; then
  pdb_size=$(( $(stat -c %s "$CACHE/pdb/big.pdb") / 1048576 ))
  measure "top --by function --symbols (${pdb_size} MB PDB)" top "$A" --by function --symbols "$CACHE/pdb"
fi
if "$BIN" help diff > /dev/null 2>&1; then
  measure "diff" diff "$A" "$B"
fi
if "$BIN" help leaks > /dev/null 2>&1; then
  measure "leaks" leaks "$A"
  measure "leaks (the later dump: +50,000 leaked blocks)" leaks "$B"
fi
if "$BIN" help analyze > /dev/null 2>&1; then
  measure "analyze" analyze "$A"
  measure "analyze --baseline --html" analyze "$B" --baseline "$A" --html "$CACHE/report.html"
  echo
  echo "HTML report of the 2-dump analyze: $(( $(stat -c %s "$CACHE/report.html") / 1024 )) KiB ($CACHE/report.html)"
  # Time to open it: the page's load event (its flamegraphs drawn), which the page itself
  # records in <body data-load-ms>, in headless Chromium when installed.
  if command -v chromium > /dev/null; then
    page="file://$(realpath "$CACHE/report.html")"
    loads=$(for _ in $(seq "$RUNS"); do
      timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "$page" 2> /dev/null |
        grep -o 'data-load-ms="[0-9]*"' | grep -o '[0-9]*'
    done | median)
    echo "Opened in headless Chromium: load event after ${loads} ms (median of $RUNS; browser start not included)"
  else
    echo "chromium not installed: no figure for opening the report"
  fi
fi
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
