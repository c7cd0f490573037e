#!/usr/bin/env bash
# expect.sh CODE REGEX -- COMMAND...
# Runs COMMAND, and passes when it exits with CODE and its combined output
# matches the extended regular expression REGEX.
set -u
want_code=$1; want_text=$2; shift 3
out=$("$@" 2>&1); code=$?
if [ "$code" != "$want_code" ]; then
  printf 'expected exit %s, got %s\n--- output ---\n%s\n' "$want_code" "$code" "$out"; exit 1
fi
if ! grep -Eq -- "$want_text" <<<"$out"; then
  printf 'output does not match /%s/\n--- output ---\n%s\n' "$want_text" "$out"; exit 1
fi
