#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything with
# warnings as errors, runs every test, then builds the unit tests (only
# them) once more under AddressSanitizer + UndefinedBehaviorSanitizer and
# runs them.
# CUDA code is compiled when nvcc exists (sm_90a); GPU tests skip without a GPU.
# The sanitizer build leaves nvcc out but keeps the host emulator's tests of
# the kernels' source (unit_device_cuda_emu) where the CUDA headers are.
#
#   bash deploy/test.sh             all of the above
#   ACCELLM_SKIP_SANITIZERS=1 bash deploy/test.sh   only the release build
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh

bash deploy/install-deps.sh
configure_release
step "build (release, -Werror)"
cmake --build build/release -j "$(nproc)"
step "tests (release)"
ctest --test-dir build/release --output-on-failure -j "$(nproc)"

if [ "${ACCELLM_SKIP_SANITIZERS:-0}" != 1 ]; then
  step "build (ASan + UBSan)"
  # -O0 and line tables only (-g1): the sanitizers' reports still name file
  # and line, and on the 2-core box the unit tests build in 301 s against
  # 568 s at -O1 (-O2 -g took twice -O1's), while they run in 26 s against
  # 16. The release build above is the optimised one, warnings included.
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -g1 -DNDEBUG" \
    -DACCELLM_WERROR=ON -DACCELLM_SANITIZE=ON -DACCELLM_CUDA=OFF -DACCELLM_BENCH=OFF >/dev/null
  # Only the unit tests run under the sanitizers, so only their executables
  # (unit_*) are built: not the accellm binary, the integration tests or
  # what only those use.
  mapfile -t unit_targets < <(ninja -C build/asan -t targets all |
    sed -n 's/^\(unit_[A-Za-z0-9_]*\): phony$/\1/p')
  [ "${#unit_targets[@]}" -gt 0 ] || { echo "test.sh: no unit_* targets in build/asan" >&2; exit 1; }
  cmake --build build/asan -j "$(nproc)" --target "${unit_targets[@]}"
  step "unit tests (ASan + UBSan)"
  ctest --test-dir build/asan -L unit --output-on-failure -j "$(nproc)"
fi
step "all tests passed ($(elapsed))"
