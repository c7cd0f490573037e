#!/usr/bin/env bash
# bench/gpu/daemons.sh, which takes the daemons to a GPU machine without
# Debian packages: its bad arguments are refused with the usage, and a
# bundle of this build's accellm runs from the bundle's libraries alone
# (besides libc, libstdc++ and CUDA): `accellm --help` answers with
# LD_LIBRARY_PATH set to the bundle; and `daemons.sh run` drives a
# two-worker cpu cluster from the bundle with its knobs set. Skips (77)
# without build/release's accellm.
set -uo pipefail
root=$1
script="$root/bench/gpu/daemons.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

err=$(bash "$script" 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "usage: daemons.sh bundle DIR | run" <<<"$err" || fail "no mode: rc $rc, '$err'"
err=$(bash "$script" launch 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "usage" <<<"$err" || fail "unknown mode: rc $rc, '$err'"
err=$(bash "$script" bundle 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q "usage: daemons.sh bundle DIR" <<<"$err" || fail "bundle without DIR: rc $rc, '$err'"

[ -x "$root/build/release/cli/accellm" ] || { echo "SKIP: no build/release/cli/accellm"; exit 77; }
bash "$script" bundle "$tmp/b" >/dev/null || fail "bundle"
for f in accellm daemons.sh local.toml; do [ -f "$tmp/b/$f" ] || fail "bundle lacks $f"; done
ls "$tmp/b/lib" | grep -q "libcaf_core" || fail "bundle lacks libcaf_core"
if ls "$tmp/b/lib" | grep -q -E "^lib(c|stdc\+\+|m)\.so"; then fail "bundle carries libc/libstdc++/libm"; fi
LD_LIBRARY_PATH="$tmp/b/lib" "$tmp/b/accellm" --help | grep -q "accellm" || fail "bundled accellm does not run"

# A run on the cpu device, every KV row over loopback under the smallest
# flow-control window: the config it writes is valid and the metrics print.
# (Ports 0: other tests run beside this one.)
sed -i -e 's/^port = .*/port = 0/' -e 's/^http_port = .*/http_port = 0/' "$tmp/b/local.toml"
OUT="$tmp/out" MODEL=cpu-tiny DEVICES=cpu RINGS=0 WINDOW=1 QUEUE=2 RATE=4 DURATION=2 \
  MAX_PROMPT=64 MAX_OUTPUT=8 timeout 120 bash "$tmp/b/daemons.sh" run >"$tmp/run.log" 2>&1 ||
  fail "run: $(tail -20 "$tmp/run.log")"
grep -q "requests ended, 0 failed" "$tmp/run.log" || fail "run: requests failed: $(tail -20 "$tmp/run.log")"
grep -q 'accellm_instance_kv_shared_bytes_total{instance="w0"} 0$' "$tmp/run.log" ||
  fail "run: KV went through a ring with kv_ring_mib = 0"
grep -q "accellm_instance_replicas_dropped_total" "$tmp/run.log" || fail "run: no dropped-copies line"
[ -f "$tmp/out/cpu-cpu-tiny-ring0-summary.json" ] || fail "run: no summary.json in OUT"
echo "PASS"
