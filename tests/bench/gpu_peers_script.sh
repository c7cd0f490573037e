#!/usr/bin/env bash
# bench/gpu/peers.py off the GPU machine: what it says when PyTorch or a GPU
# is missing and when a flag is wrong (each exit 2, naming the problem),
# with stand-in torch modules on PYTHONPATH. Exit 77 (skipped) without python3.
set -uo pipefail
root=$1
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
script="$root/bench/gpu/peers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. No PyTorch at all (an empty path first, and -S keeps site-packages out).
out=$(PYTHONPATH="$tmp/none" python3 -S "$script" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "peers.py: PyTorch is needed" <<<"$out" || fail "no torch: rc $rc, '$out'"

# 2. A PyTorch that sees no GPU.
mkdir -p "$tmp/fake/torch/nn"
cat >"$tmp/fake/torch/__init__.py" <<'PY'
class cuda:
    @staticmethod
    def is_available():
        return False
PY
: >"$tmp/fake/torch/nn/__init__.py"
: >"$tmp/fake/torch/nn/functional.py"
cat >"$tmp/fake/torch/nn/attention.py" <<'PY'
class SDPBackend:
    FLASH_ATTENTION = CUDNN_ATTENTION = EFFICIENT_ATTENTION = None
def sdpa_kernel(backend):
    raise AssertionError("no kernel may run without a GPU")
PY
out=$(PYTHONPATH="$tmp/fake" python3 -S "$script" --csv "$tmp/peers.csv" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "peers.py: no CUDA GPU visible to PyTorch" <<<"$out" || fail "no GPU: rc $rc, '$out'"
[ -e "$tmp/peers.csv" ] && fail "a CSV was written without a GPU"

# 3. A flag it does not know.
out=$(PYTHONPATH="$tmp/fake" python3 -S "$script" --rows 64 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "unrecognized arguments: --rows 64" <<<"$out" || fail "bad flag: rc $rc, '$out'"
echo "PASS"
