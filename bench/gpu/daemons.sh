#!/usr/bin/env bash
# bench/gpu/daemons.sh: the daemons on a GPU machine that has no Debian
# packages (run.sh builds only device/ there: no CAF). Two steps:
#
#   bash bench/gpu/daemons.sh bundle DIR   # here: DIR gets build/release's accellm
#                                          # (stripped), the shared libraries it
#                                          # needs beside libc/libstdc++/CUDA,
#                                          # deploy/examples/local.toml and this script
#   bash DIR/daemons.sh run                # there: `accellm up` with two worker
#                                          # processes on one GPU (one AcceLLM pair)
#
# run's environment: MODEL (cpu-small), DEVICES ("cuda:0 cpu"), RINGS (256:
# [worker] kv_ring_mib of each run, 0 sends all KV over loopback TCP),
# FRACTION ([worker] gpu_memory_fraction, 0.4: two workers share the GPU),
# WINDOW and QUEUE ([worker] kv_window_mib and kv_queue_mib, 64 and 1024:
# the KV flow control over the network), RATE (8), DURATION (10),
# MAX_PROMPT (256), MAX_OUTPUT (32).
# Each run prints its report and the coordinator's /metrics lines (KV sent,
# how much of it went through the same-node ring, copies dropped) and copies its
# summary.json to $OUT (or DIR/out) as DEVICE-MODEL-ringMIB-summary.json.
set -euo pipefail
die() { echo "daemons.sh: $*" >&2; exit 1; }
mode=${1:-}
case "$mode" in
  bundle)
    dir=${2:-}
    [ -n "$dir" ] || die "usage: daemons.sh bundle DIR"
    root=$(cd "$(dirname "$0")/../.." && pwd)
    bin=$root/build/release/cli/accellm
    [ -x "$bin" ] || die "$bin not built (bash deploy/test.sh, or cmake --build build/release)"
    mkdir -p "$dir/lib"
    cp "$bin" "$dir/accellm"
    strip "$dir/accellm"
    ldd "$bin" | awk '/=>/ { print $3 }' |
      grep -v -E 'libstdc\+\+|libc\.so|libm\.so|libgcc_s|librt|libpthread|libdl|cuda|cublas' |
      while read -r lib; do cp -L "$lib" "$dir/lib/"; done
    cp "$root/deploy/examples/local.toml" "$dir/local.toml"
    cp "$0" "$dir/daemons.sh"
    echo "daemons.sh: bundled in $dir ($(du -sh "$dir" | cut -f1))"
    ;;
  run)
    cd "$(dirname "$0")"
    out=${OUT:-$PWD/out}
    mkdir -p "$out"
    export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    if ldd ./accellm | grep "not found"; then die "missing libraries"; fi
    model=${MODEL:-cpu-small}
    for dev in ${DEVICES:-cuda:0 cpu}; do
      for ring in ${RINGS:-256}; do
        tag=${dev/:/}-$model-ring$ring
        sed -e "s/^model = .*/model = \"$model\"/" \
          -e "s/^\[worker\]/[worker]\nkv_ring_mib = $ring\ngpu_memory_fraction = ${FRACTION:-0.4}\nkv_window_mib = ${WINDOW:-64}\nkv_queue_mib = ${QUEUE:-1024}/" \
          local.toml >"/tmp/$tag.toml"
        echo "== accellm up: $model, 2 workers on $dev, kv_ring_mib $ring"
        timeout 150 ./accellm up --config "/tmp/$tag.toml" --workers 2 --device "$dev" \
          --workload conv --rate "${RATE:-8}" --duration "${DURATION:-10}" \
          --max-prompt "${MAX_PROMPT:-256}" --max-output "${MAX_OUTPUT:-32}" \
          --out "/tmp/up-$tag" --no-report 2>&1 |
          grep -v '\[info\] \(request\|instance [0-9]* .*joined\)' | tail -60 || true
        if [ -f "/tmp/up-$tag/summary.json" ]; then cp "/tmp/up-$tag/summary.json" "$out/$tag-summary.json"; fi
      done
    done
    ;;
  *) die "usage: daemons.sh bundle DIR | run" ;;
esac
