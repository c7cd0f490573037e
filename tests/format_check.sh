#!/usr/bin/env bash
# Fails when a tracked C++/CUDA source differs from what clang-format makes
# of it with the committed .clang-format. Skips (exit 77) without clang-format
# or outside a git checkout.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
files=$(git ls-files '*.hpp' '*.cpp' '*.cu' '*.cuh' 2>/dev/null) || { echo "not a git checkout: skipped"; exit 77; }
bad=0
for f in $files; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run clang-format -i $f)"
    bad=1
  fi
done
exit $bad
