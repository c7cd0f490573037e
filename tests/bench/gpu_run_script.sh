#!/usr/bin/env bash
# bench/gpu/run.sh without a GPU: nvidia-smi, nvcc, cmake, ctest, ncu and the two
# benchmarks are stand-ins that log how they were called, so that what the
# script does around them is checked: the canaries, what a failed canary
# leaves out of the ceilings and the model runs, a failed benchmark reported
# while the others still run, and the clock log and its summary.
set -uo pipefail
root=$1
tmp=$(mktemp -d)
# run.sh stops its own clock sampler; pkill is for a run cut short by the timeout.
trap 'command -v pkill >/dev/null && pkill -f "$tmp/bin/nvidia-smi"; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/out" ] && cat "$tmp/out"; exit 1; }

mkdir -p "$tmp/bin" "$tmp/build/bench/gpu" "$tmp/build/tests/device/cuda" "$tmp/repo/bench/gpu"
cp "$root/bench/gpu/run.sh" "$root/bench/gpu/targets.sh" "$tmp/repo/bench/gpu/"
cat >"$tmp/bin/nvidia-smi" <<'SH'
#!/usr/bin/env bash
case "$*" in
  *--query-gpu=name*) echo "Stand In GPU" ;;
  *-lms*) while :; do echo "2026/11/27 10:00:00.000, 1755, 2619, 690.5, 61, 0x4"; sleep 0.1; done ;;
  *--query-gpu*) echo "2026/11/27 10:00:00.000, 1980, 2619, 80.0, 40, 0x0" ;;
  *) echo "stand-in nvidia-smi" ;;
esac
SH
printf '#!/usr/bin/env bash\necho "release 13.0"\necho stand-in\n' >"$tmp/bin/nvcc"
printf '#!/usr/bin/env bash\necho "cmake $*"\n' >"$tmp/bin/cmake"
printf '#!/usr/bin/env bash\necho "ctest $*"\n' >"$tmp/bin/ctest"
printf '#!/usr/bin/env bash\necho OK\n' >"$tmp/build/tests/device/cuda/unit_device_cuda_backend"
# ncu: logs the call, prints a report.
printf '#!/usr/bin/env bash\necho "ncu $*" >>"%s/calls"\necho "stand-in ncu report"\n' "$tmp" >"$tmp/bin/ncu"
# The benchmarks: log the call; fail when the call matches $FAIL_ON.
for b in bench_gpu_model bench_gpu_ceilings; do
  cat >"$tmp/build/bench/gpu/$b" <<SH
#!/usr/bin/env bash
echo "$b \$*" >>"$tmp/calls"
if [ -n "\${FAIL_ON:-}" ] && [[ "$b \$*" == *\$FAIL_ON* ]]; then echo "an illegal memory access"; exit 1; fi
echo "prefill attention kernel: stand-in"
SH
done
chmod +x "$tmp"/bin/* "$tmp"/build/bench/gpu/* "$tmp"/build/tests/device/cuda/*

# run FAIL_ON [VAR=value...]: run.sh quick with the stand-ins and those
# variables; sets $rc, leaves $tmp/out and $tmp/calls.
run() {
  rm -f "$tmp/calls"
  local fail_on=$1
  shift
  (cd "$tmp/repo" && env FAIL_ON="$fail_on" PATH="$tmp/bin:$PATH" NVCC="$tmp/bin/nvcc" \
    BUILD="$tmp/build" KEEP_GOING=1 "$@" timeout 60 bash bench/gpu/run.sh quick >"$tmp/out" 2>&1)
  rc=$?
}
calls() { grep -c -- "$1" "$tmp/calls"; }

# 1. Everything runs: four canaries, the ceilings with nothing skipped, the model.
run ""
[ "$rc" = 0 ] || fail "a clean run exits $rc"
[ "$(calls 'bench_gpu_model --model llama2-7b --batches 64 --contexts 512 --prefill 512 --steps 2')" = 4 ] ||
  fail "four canaries expected"
grep -q -- "--skip" "$tmp/calls" && fail "nothing to skip in a clean run"
grep -q "^bench_gpu_model --model llama2-7b --batches 1,64" "$tmp/calls" || fail "quick sweep not run"
grep -q "^bench_gpu_model --model llama3-8b --batches 64 --contexts 512,4096 --prefill 2048" \
  "$tmp/calls" || fail "quick sweep without llama3-8b"
[ "$(calls '--decode-splits blocks --csv bench/results/stand-in-gpu-model-blocks.csv')" = 2 ] ||
  fail "the decode points with splits by blocks, into their own CSV"
grep -q "^bench_gpu_model --model llama2-7b --batches 1,64 --contexts 1024 --prefill 2048 --pdl off --csv .*-model-pdl-off.csv$" \
  "$tmp/calls" || fail "no run without programmatic launch"
clocks="$tmp/repo/bench/results/stand-in-gpu-clocks.csv"
[ -f "$clocks" ] || fail "no clock log"
head -1 "$clocks" | grep -q "^timestamp,clocks.sm,clocks.mem,power.draw" || fail "clock log header"
grep -q "== SM clock 1755 / 1755 / 1755 (.* samples) MHz, power 690.5 / 690.5 / 690.5" "$tmp/out" ||
  fail "clock summary"
grep -Eq "^== [0-9/]+ [0-9:.]+ (canaries|ceilings|model benchmarks|done)$" "$tmp/out" || fail "phase marks"

# 2. The tma128pp canary faults: the ceilings skip it, the model runs choose tma128.
run "--prefill-kernel tma128pp"
[ "$rc" = 0 ] || fail "a failed canary alone must not fail the run (exit $rc)"
grep -q "the tma128pp canary failed" "$tmp/out" || fail "canary failure not reported"
grep -q "^bench_gpu_ceilings --csv .* --skip tma128pp$" "$tmp/calls" || fail "ceilings not told to skip"
grep -q "^bench_gpu_model --prefill-kernel tma128 --model llama2-7b --batches 1,64" "$tmp/calls" ||
  fail "model run without the tma128 fallback"

# 2a. The tma128n canary faults: the ceilings skip it, the model runs choose tma128.
run "--prefill-kernel tma128n"
[ "$rc" = 0 ] || fail "a failed tma128n canary alone must not fail the run (exit $rc)"
grep -q "the tma128n canary failed" "$tmp/out" || fail "tma128n canary failure not reported"
grep -q "the tma128pp canary failed" "$tmp/out" && fail "the tma128pp canary did not fail"
grep -q "^bench_gpu_ceilings --csv .* --skip tma128n$" "$tmp/calls" || fail "ceilings not told to skip tma128n"
grep -q "^bench_gpu_model --prefill-kernel tma128 --model llama2-7b --batches 1,64" "$tmp/calls" ||
  fail "model run without the tma128 fallback for tma128n"

# 3. Every canary faults: all are skipped, each with its fallback (tma128 once).
run "--steps 2 --prefill-kernel"
grep -q "^bench_gpu_ceilings --csv .* --skip tma128pp,tma128n,skinny_wgmma,skinny_tma,skinny_stream,lt_split_k,decode_tiles$" \
  "$tmp/calls" || fail "every skip"
grep -q "^bench_gpu_model --prefill-kernel tma128 --skinny off --lt-split-k off --decode-tile 32x2 --model" \
  "$tmp/calls" || fail "every fallback"

# 3a. Only the decode products canary faults: the skinny kernels and the
# split-K variants are left out, nothing else.
run "--skinny on"
[ "$rc" = 0 ] || fail "a failed products canary alone must not fail the run (exit $rc)"
grep -q "the decode products canary failed" "$tmp/out" || fail "products canary failure not reported"
grep -q "^bench_gpu_ceilings --csv .* --skip skinny_wgmma,skinny_tma,skinny_stream,lt_split_k$" "$tmp/calls" ||
  fail "ceilings not told to skip the products' candidates"
grep -q "^bench_gpu_model --skinny off --lt-split-k off --model llama2-7b --batches 1,64" \
  "$tmp/calls" || fail "model run without the products' fallbacks"

# 3b. Only the decode tile canary faults: the ceilings skip the tiles, the
# model runs keep 32x2.
run "--decode-tile timed"
[ "$rc" = 0 ] || fail "a failed decode tile canary alone must not fail the run (exit $rc)"
grep -q "the decode tile canary failed" "$tmp/out" || fail "decode tile canary failure not reported"
grep -q "^bench_gpu_ceilings --csv .* --skip decode_tiles$" "$tmp/calls" ||
  fail "ceilings not told to skip the tiles"
grep -q "^bench_gpu_model --decode-tile 32x2 --model llama2-7b --batches 1,64" "$tmp/calls" ||
  fail "model run without the 32x2 fallback"

# 4. A benchmark fails: reported, the rest still runs, the exit status says so.
run "bench_gpu_ceilings"
[ "$rc" = 1 ] || fail "a failed benchmark must fail the run (exit $rc)"
grep -q "run.sh: bench_gpu_ceilings failed (exit 1)" "$tmp/out" || fail "ceilings failure not reported"
grep -q "^bench_gpu_model --model llama2-7b --batches 1,64" "$tmp/calls" || fail "model not run after it"
grep -q "a benchmark failed or was skipped (above); the others ran" "$tmp/out" ||
  fail "closing line"

# 5. Past the deadline: the model runs are skipped and said so, and what was
# written is mirrored, but not an earlier run's file beside it.
mkdir -p "$tmp/repo/bench/results"
echo "an earlier run" >"$tmp/repo/bench/results/stand-in-gpu-daemons.log"
touch -d '2026-11-01' "$tmp/repo/bench/results/stand-in-gpu-daemons.log"
run "" DEADLINE_S=0 MIRROR="$tmp/mirror"
[ "$rc" = 1 ] || fail "skipped runs must fail the run (exit $rc)"
grep -q "run.sh: bench_gpu_model --model llama2-7b skipped: past DEADLINE_S=0 s" "$tmp/out" ||
  fail "skip not reported"
grep -q "run.sh: bench_gpu_model --model llama3-8b skipped: past DEADLINE_S=0 s" "$tmp/out" ||
  fail "second skip not reported"
grep -q "^bench_gpu_model --model llama2-7b --batches 1,64" "$tmp/calls" && fail "a model run ran"
for f in clocks.csv model.csv model-pdl-off.csv model-blocks.csv stream.csv; do
  [ -f "$tmp/mirror/stand-in-gpu-$f" ] || fail "$f not mirrored"
done
grep -q "^timestamp,clocks.sm" "$tmp/mirror/stand-in-gpu-clocks.csv" || fail "mirrored clock log"
[ -f "$tmp/mirror/stand-in-gpu-daemons.log" ] && fail "an earlier run's file was mirrored"

# 6. A deadline that is not a number is refused before anything runs.
run "" DEADLINE_S=soon
[ "$rc" = 1 ] || fail "a bad DEADLINE_S must fail the run (exit $rc)"
grep -q "run.sh: DEADLINE_S must be a whole number of seconds, not 'soon'" "$tmp/out" ||
  fail "bad DEADLINE_S not named"
[ -f "$tmp/calls" ] && fail "something ran with a bad DEADLINE_S"
# 7. NCU=1: three Nsight Compute reports, each of one profiled iteration of
# a small pool, with a failed canary's fallback, written and mirrored;
# without NCU none; an ncu that is not there is said and fails the run.
run "" MIRROR="$tmp/mirror"
grep -q "^ncu" "$tmp/calls" && fail "ncu ran without NCU=1"
run "--decode-tile timed" NCU=1 MIRROR="$tmp/mirror"
[ "$(calls '^ncu --clock-control none --profile-from-start off')" = 3 ] || fail "three ncu runs"
grep -q "^ncu .* --launch-count 14 .* --model llama3-8b --batches 64 --contexts 512 .* --kv-blocks 2400 --profiler-range decode --decode-tile tma16x3 --prefill-kernel tma128 --skinny off --decode-tile 32x2$" \
  "$tmp/calls" || fail "the Llama-3-8B decode profile, pinned, with the tile canary's fallback last"
grep -q "^ncu .* --launch-count 12 .* --prefill 2048 .* --profiler-range prefill .* --decode-tile 32x2$" \
  "$tmp/calls" || fail "the prefill profile"
for f in decode-llama2-7b decode-llama3-8b prefill-llama2-7b; do
  grep -q "stand-in ncu report" "$tmp/repo/bench/results/stand-in-gpu-ncu-$f.txt" || fail "$f report"
  [ -f "$tmp/mirror/stand-in-gpu-ncu-$f.txt" ] || fail "$f report not mirrored"
done
run "" NCU=1 NCU_BIN="$tmp/none/ncu"
[ "$rc" = 1 ] || fail "NCU=1 without ncu must fail the run (exit $rc)"
grep -q "run.sh: NCU=1 but no ncu at $tmp/none/ncu: the profiles are skipped" "$tmp/out" ||
  fail "missing ncu not said"
run "" NCU=1 DEADLINE_S=0
grep -q "run.sh: ncu decode-llama2-7b skipped: past DEADLINE_S=0 s" "$tmp/out" ||
  fail "ncu past the deadline not skipped"
grep -q "^ncu" "$tmp/calls" && fail "ncu ran past the deadline"
echo "run.sh: canaries, skips, fallbacks and failures as expected"
