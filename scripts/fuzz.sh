#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/) for SECONDS each (default 600) and prints executions
# and findings per target. Installs clang-16 and its sanitizer runtime when missing (apt).
# New corpus entries go to build-fuzz/corpus/<target>; crashing inputs to build-fuzz/findings/<target>
# (copy a finding into tests/fuzz/corpus/<target>/ once fixed, so every test run replays it).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(json_body settings chat_import sse_parser text_stream uploads card_import stt_audio)

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
if ! command -v clang++-16 >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-16-dev 2>/dev/null | grep -q "ok installed"; then
  echo "fuzz: installing clang-16 and libclang-rt-16-dev (libFuzzer, sanitizers)"
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends clang-16 libclang-rt-16-dev
fi
cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz
printf '%-12s %10s %12s %9s %s\n' target seconds executions findings corpus
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/findings/$t"
  log="build-fuzz/fuzz_$t.log"
  set +e
  # The allocator returning memory to the OS can stall for seconds on a loaded machine: not a finding.
  ASAN_OPTIONS="allocator_release_to_os_interval_ms=-1:${ASAN_OPTIONS:-}" \
  "build-fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="build-fuzz/findings/$t/" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  findings=$(find "build-fuzz/findings/$t" -type f | wc -l)
  corpus=$(find "build-fuzz/corpus/$t" -type f | wc -l)
  printf '%-12s %10s %12s %9s %s\n' "$t" "$seconds" "${execs:-0}" "$findings" "$corpus"
  if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
    status=1
    echo "fuzz: $t found a problem (exit $rc); see $log and build-fuzz/findings/$t/" >&2
  fi
done
exit $status
