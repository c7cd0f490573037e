#!/usr/bin/env bash
# The README's main command: installs dependencies, builds accellm and runs
# the main job:
#   1. a live local cluster: a coordinator and four `cpu` worker processes on
#      loopback (deploy/examples/local.toml), a short conversation workload
#      driven through it over the cluster protocol, its metrics table, stop;
#   2. the policy comparison in virtual time (vLLM-style mixed batching,
#      Splitwise, AcceLLM) on 8 instances of 8 H100 serving Llama-2-70B,
#      conversation workload, preceded by the cost-model table it rests on.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh

bash deploy/install-deps.sh
configure_release
step "build accellm"
cmake --build build/release -j "$(nproc)" --target accellm
step "accellm selftest"
build/release/cli/accellm selftest
step "accellm up: coordinator + 4 cpu workers on loopback, conv at 4 req/s for 15 s"
build/release/cli/accellm up --config deploy/examples/local.toml --log-level warn \
  --workload conv --rate 4 --duration 15 --out results/live
step "accellm model --model llama2-70b --device all --tp 8"
build/release/cli/accellm model --model llama2-70b --device all --tp 8
step "accellm simulate: vllm, splitwise, accellm on 8 x 8 H100, conversation, 60 req/s"
build/release/cli/accellm simulate --cluster deploy/examples/h100-llama2-70b.toml \
  --workload conv --rate 60 --duration 120 --seed 1 --policy all --out results/main
