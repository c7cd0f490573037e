#!/usr/bin/env bash
# bench/gpu/run.sh: build the CUDA-only part of accellm with nothing but
# CMake and nvcc (ACCELLM_CUDA_ONLY: common/, device/, tests/device/cuda,
# bench/gpu), run the CUDA tests, then the model benchmarks, and write CSV to
# bench/results/ named after the GPU.
#
#   bash bench/gpu/run.sh [quick]
#
# Environment: NVCC (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc),
# GTEST_SRC (googletest source tree, when GTest is not installed; default
# ./.gtest-src or /usr/src/googletest), BUILD (default build/gpu),
# JOBS (default: nproc), KEEP_GOING=1 (run the benchmarks even when a test
# fails; the exit status still says so), MIRROR (a folder this run's results
# so far are copied into at every phase, so that a run cut short still leaves
# them there), DEADLINE_S (seconds from the start after which the remaining
# model runs are skipped, each said in the log, so that the run ends inside
# a time limit with its summary), NCU=1 (after the benchmarks, Nsight
# Compute reports of one decode step's and one prefill's first kernels, into
# bench/results/<gpu>-ncu-*.txt; NCU_BIN names ncu when it is not on PATH
# or beside nvcc). `quick` runs a reduced sweep.
# Exits non-zero at once when the build fails, or the tests without
# KEEP_GOING; a failing benchmark is reported and the others still run.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
die() { echo "run.sh: $*" >&2; exit 1; }

[[ -z "${DEADLINE_S:-}" || "$DEADLINE_S" =~ ^[0-9]+$ ]] ||
  die "DEADLINE_S must be a whole number of seconds, not '$DEADLINE_S'"

NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || die "nvcc not found (set NVCC)"
BUILD=${BUILD:-build/gpu}
JOBS=${JOBS:-$(nproc)}
MODE=${1:-full}
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ -z "${GTEST_SRC:-}" ]; then
  for d in .gtest-src /usr/src/googletest; do
    [ -f "$d/CMakeLists.txt" ] && { GTEST_SRC=$d; break; }
  done
fi

echo "== environment"
nvidia-smi || die "nvidia-smi failed: no GPU driver here"
"$NVCC" --version | tail -2
cmake --version | head -1
echo "cuBLAS: $(ls "$(dirname "$NVCC")"/../lib64/libcublas*.so* 2>/dev/null | head -3 | tr '\n' ' ')"
echo "googletest source: ${GTEST_SRC:-none (GTest must be installed)}"

echo "== configure + build ($BUILD)"
cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DACCELLM_CUDA_ONLY=ON \
  -DCMAKE_CUDA_COMPILER="$NVCC" ${GTEST_SRC:+-DACCELLM_GTEST_SOURCE="$(realpath "$GTEST_SRC")"} \
  || die "configure failed"
cmake --build "$BUILD" -j "$JOBS" || die "build failed"

echo "== tests"
tests_ok=1
# Bounded at three times what the tests take on an H100 (40 s), so that a
# kernel that never ends (a new candidate's barriers) costs a lent GPU two
# minutes, not the session.
timeout 120 ctest --test-dir "$BUILD" --output-on-failure -j 4 || tests_ok=0
# A test the timeout cut short (a kernel that never ends) may outlive ctest:
# it must not hold the GPU through what follows.
if command -v pkill >/dev/null; then pkill -f "$BUILD/tests/" 2>/dev/null || true; fi
[ "$tests_ok" = 1 ] || [ "${KEEP_GOING:-0}" = 1 ] || die "CUDA tests failed"
# Show the model-vs-cpu agreement figures the test prints.
timeout 60 "$BUILD"/tests/device/cuda/unit_device_cuda_backend --gtest_filter='*greedy*' |
  grep -E "identical|OK|FAILED" || true

echo "== benchmarks"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
slug=$(echo "$gpu" | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-')
mkdir -p bench/results
outputs=()
for f in ceilings clocks model stream model-pdl-off model-blocks; do
  outputs+=("bench/results/$slug-$f.csv")
done
[ "$MODE" = quick ] || for m in llama2-7b llama3-8b llama2-70b-tp8; do
  outputs+=("bench/results/$slug-$m-profile.csv")
done
rm -f "${outputs[@]}"  # a run cut short leaves none of an earlier run's figures as its own
# The SM clock, power and what holds the clock down, every 200 ms while the
# benchmarks run: sustained load can lower the clock, which the figures then
# carry (docs/cuda.md). Phase marks go to the log with the same clock.
clocks=bench/results/$slug-clocks.csv
fields=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active
nvidia-smi --query-gpu=$fields --format=csv,noheader >/dev/null 2>&1 ||
  fields=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu
echo "$fields" >"$clocks"
nvidia-smi --query-gpu=$fields --format=csv,noheader,nounits -lms 200 >>"$clocks" 2>/dev/null &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
# Mirrored: this run's files only, not the results of other runs committed
# beside them (the daemons' logs), which would crowd them out where what
# comes back is limited by count.
mirror() {
  [ -n "${MIRROR:-}" ] || return 0
  mkdir -p "$MIRROR" || return 0
  for f in "${outputs[@]}"; do [ -f "$f" ] && cp -f "$f" "$MIRROR"/; done
  return 0
}
phase() {
  mirror
  echo "== $(date '+%Y/%m/%d %H:%M:%S.%3N') $*"
}
model_header=gpu,model,tp,kind,batch,context,tokens,median_ms,allreduce_ms,hbm_bytes,flops,tb_per_s,hbm_frac_h100,tflop_per_s,flop_frac_h100
csv=bench/results/$slug-model.csv
echo "$model_header" >"$csv"
stream_csv=bench/results/$slug-stream.csv
echo "gpu,model,tp,tokens,prefill_ms,streamed_ms,first_layer_ms,last_layer_ms,kv_bytes,ring_ms,ring_first_layer_ms,ring_last_layer_ms,host_groups_no_room,pinned_mib" >"$stream_csv"
B="timeout 300 $BUILD/bench/gpu/bench_gpu_model"
# Canaries: the candidate kernels the timed rules probe, forced on (tma128pp;
# tma128n, which has not run on a GPU yet; skinny_gemm_wgmma, skinny_gemm_tma
# at its split counts and cuBLASLt's split-K variants; the decode attention
# tiles other than 32x2),
# forced on in short Llama-2-7B runs of their own.
# One that faults (an illegal address is sticky: it ends its process's CUDA
# context, and backends run every candidate when created) is then left out
# of the benchmarks instead of failing each of them.
phase "canaries"
canary() {
  local log=$BUILD/canary.log
  # A canary takes a few seconds; one that hangs is cut at a minute.
  if timeout 60 "$BUILD"/bench/gpu/bench_gpu_model --model llama2-7b --batches 64 --contexts 512 \
    --prefill 512 --steps 2 "$@" >"$log" 2>&1; then
    grep -E "prefill attention kernel|decode attention tile|gemm planner" "$log" | head -4
    return 0
  fi
  tail -5 "$log"
  return 1
}
skip=()
left_out=""  # the model runs' flags that leave out what a canary failed
if ! canary --prefill-kernel tma128pp --skinny off --lt-split-k off --decode-tile 32x2; then
  echo "run.sh: the tma128pp canary failed: the benchmarks choose tma128 (--prefill-kernel tma128)"
  left_out="$left_out --prefill-kernel tma128"
  skip+=(tma128pp)
fi
if ! canary --prefill-kernel tma128n --skinny off --lt-split-k off --decode-tile 32x2; then
  echo "run.sh: the tma128n canary failed: the benchmarks choose tma128 (--prefill-kernel tma128)"
  [[ "$left_out" == *"--prefill-kernel tma128"* ]] || left_out="$left_out --prefill-kernel tma128"
  skip+=(tma128n)
fi
if ! canary --prefill-kernel rows64 --skinny on --lt-split-k on --decode-tile 32x2; then
  echo "run.sh: the decode products canary failed: the benchmarks leave the skinny kernels and" \
    "cuBLASLt's split-K variants out (--skinny off --lt-split-k off)"
  left_out="$left_out --skinny off --lt-split-k off"
  skip+=(skinny_wgmma skinny_tma skinny_stream lt_split_k)
fi
if ! canary --prefill-kernel rows64 --skinny off --lt-split-k off --decode-tile timed; then
  echo "run.sh: the decode tile canary failed: the benchmarks keep 32x2 (--decode-tile 32x2)"
  left_out="$left_out --decode-tile 32x2"
  skip+=(decode_tiles)
fi
B="$B$left_out"
benches_ok=1
phase "ceilings"
skip_list=$(IFS=,; echo "${skip[*]:-}")
timeout 60 "$BUILD"/bench/gpu/bench_gpu_ceilings --csv "bench/results/$slug-ceilings.csv" \
  ${skip_list:+--skip "$skip_list"} || { echo "run.sh: bench_gpu_ceilings failed (exit $?)"; benches_ok=0; }
phase "model benchmarks"
# Each model on: one that fails (a timeout, a fault) is reported at the end.
late() { [ -n "${DEADLINE_S:-}" ] && [ $((SECONDS - started)) -ge "$DEADLINE_S" ]; }
model() {
  if late; then
    echo "run.sh: bench_gpu_model $1 $2 skipped: past DEADLINE_S=$DEADLINE_S s"
    benches_ok=0
    return 0
  fi
  $B "$@" || { echo "run.sh: bench_gpu_model $1 $2 failed (exit $?)"; benches_ok=0; }
  mirror
}
if [ "$MODE" = quick ]; then
  model --model llama2-7b --batches 1,64 --contexts 512,2048 --prefill 512,2048 --csv "$csv" \
    --stream 2048 --stream-csv "$stream_csv" --breakdown on
  # The decode target's weakest single-GPU points (GQA, a vocabulary 4x
  # longer) and its prefill of 2048 tokens.
  model --model llama3-8b --batches 64 --contexts 512,4096 --prefill 2048 --csv "$csv"
else
  model --model llama2-7b --batches 1,8,16,32,64,128,256 --contexts 512,1024,2048,4096 \
    --prefill 128,256,384,512,768,1024,1536,2048,3072,4096 --csv "$csv" --profile "bench/results/$slug-llama2-7b-profile.csv" \
    --stream 512,2048,4096 --stream-csv "$stream_csv" --breakdown on
  model --model llama3-8b --batches 1,8,16,32,64,128,256 --contexts 512,1024,2048,4096,8192 \
    --prefill 128,256,384,512,768,1024,1536,2048,3072,4096,6144,8192 --csv "$csv" --profile "bench/results/$slug-llama3-8b-profile.csv"
  model --model llama2-13b --batches 1,16,64,128 --contexts 512,2048 --prefill 512,2048 --csv "$csv"
  model --model llama2-70b --tp 8 --batches 1,16,64,128,256 --contexts 512,2048,4096 \
    --prefill 512,1024,2048,4096 --csv "$csv" --profile "bench/results/$slug-llama2-70b-tp8-profile.csv"
  # A prompt's KV past the pinned pool (2.15 GB into 1 GiB): its last groups
  # are dropped, their copies given up, instead of copied out on the device
  # thread (which took the prefill 3.6x as long).
  model --model llama2-7b --batches 1 --contexts 512 --prefill 128 --steps 2 --stream 4096 \
    --stream-csv "$stream_csv" --pinned-mib 1024
fi
# What programmatic dependent launch buys: the same decode points without it
# (its own CSV; the main one has it on, the default).
phase "without programmatic launch"
pdl_csv=bench/results/$slug-model-pdl-off.csv
echo "$model_header" >"$pdl_csv"
model --model llama2-7b --batches 1,64 --contexts 1024 --prefill 2048 --pdl off --csv "$pdl_csv"
# The decode points of the targets with each step's context split by the
# blocks it makes, the rule before waves (its own CSV; the main one splits
# by the waves of resident blocks, the default since 2026-11-27).
phase "decode splits by blocks"
blocks_csv=bench/results/$slug-model-blocks.csv
echo "$model_header" >"$blocks_csv"
model --model llama2-7b --batches 64,128 --contexts 512,1024 --prefill 128 --decode-splits blocks \
  --csv "$blocks_csv"
model --model llama3-8b --batches 64 --contexts 512,4096 --prefill 128 --decode-splits blocks \
  --csv "$blocks_csv"
# Nsight Compute (NCU=1): the first kernels of one decode step (an
# iteration's embedding and its first layer and a half: every product, the
# attention, the small kernels) of the decode targets' weakest models, and
# of one 2048-token prefill (tma128 and the prefill products), each in a
# report of its own. --profiler-range leaves the probes, the planner and the
# warm-up out; --kv-blocks keeps the pool small enough that ncu backs the
# device's memory up on the device (a full pool made it copy to the host).
# Under ncu every launch is slower, so the timed choices choose otherwise
# (on the H100: 32x2 and rows64, and the mma.sync skinny kernel for some
# products): the runs pin what the model runs chose (tma16x3, tma128) and
# leave the skinny kernels out, so that the products are cuBLAS(Lt)'s; a
# canary's fallback, after them, still wins.
if [ "${NCU:-0}" = 1 ]; then
  phase "Nsight Compute"
  NCU_BIN=${NCU_BIN:-$(command -v ncu || echo "$(dirname "$NVCC")/ncu")}
  if [ -x "$NCU_BIN" ]; then
    ncu_run() {
      local name=$1 count=$2
      shift 2
      local out=bench/results/$slug-ncu-$name.txt
      if late; then
        echo "run.sh: ncu $name skipped: past DEADLINE_S=$DEADLINE_S s"
        benches_ok=0
        return 0
      fi
      outputs+=("$out")
      timeout 300 "$NCU_BIN" --clock-control none --profile-from-start off \
        --kernel-name-base demangled --launch-count "$count" --section SpeedOfLight \
        --section Occupancy --section WarpStateStats --section LaunchStats \
        --section MemoryWorkloadAnalysis --section SchedulerStats \
        --section ComputeWorkloadAnalysis "$BUILD"/bench/gpu/bench_gpu_model "$@" $left_out \
        >"$out" 2>&1 || { echo "run.sh: ncu $name failed (exit $?)"; benches_ok=0; }
      mirror
    }
    pinned=(--decode-tile tma16x3 --prefill-kernel tma128 --skinny off)
    ncu_run decode-llama2-7b 14 --model llama2-7b --batches 64 --contexts 512 --prefill 128 \
      --steps 2 --kv-blocks 2400 --profiler-range decode "${pinned[@]}"
    ncu_run decode-llama3-8b 14 --model llama3-8b --batches 64 --contexts 512 --prefill 128 \
      --steps 2 --kv-blocks 2400 --profiler-range decode "${pinned[@]}"
    ncu_run prefill-llama2-7b 12 --model llama2-7b --batches 1 --contexts 512 --prefill 2048 \
      --steps 2 --kv-blocks 2400 --profiler-range prefill "${pinned[@]}"
  else
    echo "run.sh: NCU=1 but no ncu at $NCU_BIN: the profiles are skipped"
    benches_ok=0
  fi
fi
phase "done"
kill $sampler 2>/dev/null || true
mirror
echo "== wrote $csv, $stream_csv, $pdl_csv, $blocks_csv and $clocks"
# SM clock (MHz) and power (W) over the whole run: min / median / max.
spread() {
  awk -F', *' -v c="$1" 'NR > 1 && $c + 0 > 0 { print $c + 0 }' "$clocks" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%g / %g / %g (%d samples)", v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}
echo "== SM clock $(spread 2) MHz, power $(spread 4) W: min / median / max"
echo "== targets (decode >= 80% of HBM peak at batch >= 64; prefill 2048 >= 65% of bf16 peak)"
bash bench/gpu/targets.sh "$csv"
[ "$tests_ok" = 1 ] || die "CUDA tests failed (benchmarks ran because KEEP_GOING=1)"
[ "$benches_ok" = 1 ] || die "a benchmark failed or was skipped (above); the others ran"
