#!/bin/sh
# fuzz/run.sh BIN NAME SECONDS OUT: runs one libFuzzer target for SECONDS on
# a copy of fuzz/corpus/NAME in OUT/corpus/NAME (fuzz/ is only read; the
# reproducers in fuzz/regressions/NAME are replayed first), and prints one
# line: "NAME: N runs, no crash", or the crash and the sanitizer's first lines.
# Exits 1 on a crash, a leak, a timeout or running out of memory.
set -u
bin=$1 name=$2 seconds=$3 out=$4
work=$out/corpus/$name art=$out/artifacts/$name log=$out/logs/$name.log
mkdir -p "$work" "$art" "$out/logs" "$out/tmp"
[ -d "fuzz/corpus/$name" ] && cp -p "fuzz/corpus/$name"/* "$work"/ 2>/dev/null
regressions=
[ -d "fuzz/regressions/$name" ] && regressions=fuzz/regressions/$name
TMPDIR=$(cd "$out/tmp" && pwd) ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$art/" "$work" $regressions </dev/null >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
[ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ "$rc" = 0 ]; then
  echo "$name: ${runs:-0} runs, no crash"
  exit 0
fi
artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
echo "$name: CRASH after ${runs:-?} runs (exit $rc), reproducer ${artifact:-none}, log $log"
# The verdict (for an escaped exception, its type and what()), then the
# innermost frame in the library, arguments left out.
grep -m 1 -E '^==[0-9]+==ERROR|runtime error:|terminate called|^ALARM|out-of-memory|LeakSanitizer' "$log" | sed 's/^/  /'
grep -m 1 -A 1 '^terminate called' "$log" | sed -n '2s/^/  /p'
grep -m 1 -E '^ *#[0-9]+ .* in pinniped::' "$log" |
  sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in ([^(]*)\(.* ([^ ]*pinniped\.hpp:[0-9:]+)$/  at \1 (\2)/'
exit 1
