#!/usr/bin/env bash
# same_output.sh ACCELLM CLUSTER DIR
# Runs the same simulation twice and passes when the printed tables and every
# file written (CSV, JSON) are identical byte for byte, then once with another
# seed, which must differ.
set -u
accellm=$1; cluster=$2; dir=$3
rm -rf "$dir"; mkdir -p "$dir"
run() {  # run SEED NAME
  "$accellm" simulate --cluster "$cluster" --workload conv --rate 3 --duration 10 \
    --policy all --seed "$1" --out "$dir/$2" >"$dir/$2.txt" 2>/dev/null ||
    { echo "simulate --seed $1 failed"; cat "$dir/$2.txt"; exit 1; }
}
run 7 a; run 7 b; run 8 c
if ! diff -r "$dir/a" "$dir/b" || ! cmp "$dir/a.txt" "$dir/b.txt"; then
  echo "the same seed gave different output"; exit 1
fi
if [ -z "$(find "$dir/a" -type f)" ]; then echo "no files written"; exit 1; fi
if cmp -s "$dir/a.txt" "$dir/c.txt"; then echo "another seed gave the same output"; exit 1; fi
echo "same seed, same output: $(find "$dir/a" -type f | wc -l) files and the table"
