#!/usr/bin/env bash
# bench/gpu/daemons.sh, which takes the daemons to a GPU machine without
# Debian packages: its bad arguments are refused with the usage, and a
# bundle of this build's accellm runs from the bundle's libraries alone
# (besides libc, libstdc++ and CUDA): `accellm --help` answers with
# LD_LIBRARY_PATH set to the bundle. Skips (77) without build/release's
# accellm.
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
echo "PASS"
