#!/bin/sh
# Runs each Catch2 test binary with its XML reporter, prints failures, and
# ends with one line "N passed, N failed" counted from Catch2's own results
# (test cases). A binary that crashes or writes no results counts as one
# failed case. Exits non-zero on any failure.
# TEST_RUNNER (e.g. qemu-aarch64-static) starts each binary; TEST_LABEL names
# the set in its lines; with TEST_TALLY=FILE the counts are added to FILE as
# "P F" and the closing line is left to the caller (tools/test.sh).
# Each binary gets SUITE_TIMEOUT seconds (default 900, several times the
# slowest suite under qemu): then it and its process group get SIGTERM (and
# SIGKILL 20 s later), and the suite counts as failed, so that a hang costs
# one suite and not the whole run.
set -u
limit=${SUITE_TIMEOUT:-900}
out=$(realpath -m "${TEST_RESULTS:-build/test-results}")
mkdir -p "$out"
passed=0
failed=0
label=${TEST_LABEL:+$TEST_LABEL/}
for entry in "$@"; do
  # "netns:NS:BIN" runs BIN inside network namespace NS; "suite:BIN:NAME"
  # runs only suite NAME (the test cases of NAME.cpp) of the multi-suite
  # binary BIN (tools/unity.sh); "missing:WHY" is a suite that could not run.
  prefix=${TEST_RUNNER:-}
  bin=$entry
  set --
  case $entry in
    netns:*) rest=${entry#netns:}; prefix="ip netns exec ${rest%%:*}"; bin=${rest#*:} ;;
    suite:*) rest=${entry#suite:}; bin=${rest%:*}; set -- --filenames-as-tags "[#${rest##*:}]" ;;
    missing:*) echo "${label}${entry#missing:}: could not run"; failed=$((failed + 1)); continue ;;
  esac
  name=$(basename "$bin")
  case $entry in suite:*) name=${entry##*:} ;; esac
  xml="$out/$name.xml"
  rm -f "$xml"
  start=$(date +%s)
  timeout --kill-after=20 "$limit" $prefix "$bin" "$@" -r xml -o "$xml" >"$out/$name.out" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  # 124: timeout's SIGTERM ended it; 137 at the limit: its SIGKILL (a
  # SIGKILL from elsewhere, earlier, is reported as a crash below).
  if [ "$rc" = 124 ] || { [ "$rc" = 137 ] && [ "$secs" -ge "$limit" ]; }; then
    echo "$label$name: timed out after ${limit}s (exit $rc); output:"
    tail -n 40 "$out/$name.out"
    counts=$(python3 tools/catch-results.py "$xml" 2>/dev/null)
    counts=${counts:-0 0}  # Catch2 reports the case SIGTERM stopped, if it could
    f=${counts#* }
    [ "$f" = 0 ] && f=1
    passed=$((passed + ${counts% *}))
    failed=$((failed + f))
    continue
  fi
  counts=$(python3 tools/catch-results.py "$xml" 2>>"$out/$name.out")
  if [ -z "$counts" ]; then
    echo "$label$name: no results (exit $rc); output:"
    tail -n 40 "$out/$name.out"
    failed=$((failed + 1))
    continue
  fi
  p=${counts% *}
  f=${counts#* }
  if [ "$((p + f))" = 0 ]; then
    echo "$label$name: no test case ran (exit $rc)"
    failed=$((failed + 1))
    continue
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  echo "$label$name: $p passed, $f failed (${secs}s)"
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    python3 tools/catch-results.py --failures "$xml"
    if [ "$f" = 0 ]; then
      echo "$label$name: exited $rc; output:"; tail -n 40 "$out/$name.out"
      failed=$((failed + 1))
    fi
  fi
done
if [ -n "${TEST_TALLY:-}" ]; then
  echo "$passed $failed" >>"$TEST_TALLY"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
