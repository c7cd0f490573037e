#!/usr/bin/env bash
# The README's main command: installs dependencies, builds accellm and runs
# the main job. Until the simulator lands (issue 4) the main job is the cost
# model table: prefill and decode step times of Llama-2-70B at TP 8 on every
# simulated device.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh

bash deploy/install-deps.sh
configure_release
step "build accellm"
cmake --build build/release -j "$(nproc)" --target accellm
step "accellm selftest"
build/release/cli/accellm selftest
step "accellm model --model llama2-70b --device all --tp 8"
build/release/cli/accellm model --model llama2-70b --device all --tp 8
