#!/usr/bin/env bash
# report.sh ACCELLM CLUSTER DIR
# accellm simulate writes DIR/report.html naming every policy (not with
# --no-report); accellm report rebuilds the same page from the outputs; a
# sweep gets latency against rate; a malformed CSV exits 2 naming the file
# and line, and writes no report.
set -u
accellm=$1; cluster=$2; dir=$3
rm -rf "$dir"; mkdir -p "$dir"
fail() { echo "FAIL: $*"; exit 1; }
simulate() {  # simulate OUT ARGS...
  local out=$1; shift
  "$accellm" simulate --cluster "$cluster" --workload conv --duration 5 --seed 3 \
    --out "$dir/$out" "$@" >"$dir/$out.log" 2>&1 || { cat "$dir/$out.log"; fail "simulate $*"; }
}

simulate run --rate 2 --policy all
[ -f "$dir/run/report.html" ] || fail "simulate --out wrote no report.html"
for p in vllm splitwise accellm; do
  grep -q "<td>$p</td>" "$dir/run/report.html" || fail "report.html does not name $p"
  grep -q "<title>$p: instance roles and utilisation</title>" "$dir/run/report.html" ||
    fail "report.html has no timeline of $p"
done
[ "$(grep -c '<svg ' "$dir/run/report.html")" -ge 9 ] || fail "report.html has fewer than 9 plots"

simulate bare --rate 2 --policy all --no-report
[ -e "$dir/bare/report.html" ] && fail "--no-report wrote report.html"
out=$("$accellm" report "$dir/bare" 2>&1) || { echo "$out"; fail "accellm report on good outputs"; }
cmp -s "$dir/run/report.html" "$dir/bare/report.html" ||
  fail "accellm report differs from the report simulate wrote"

simulate sweep --sweep-rates 1,2 --policy accellm
grep -q "<title>TTFT against offered rate</title>" "$dir/sweep/report.html" ||
  fail "a sweep's report has no latency against rate"

cp -r "$dir/bare" "$dir/bad" && rm -f "$dir/bad/report.html"
sed -i '3s/^\([^,]*,[^,]*,[^,]*,[^,]*,[^,]*,\)[^,]*/\1oops/' "$dir/bad/accellm-requests.csv"
out=$("$accellm" report "$dir/bad" 2>&1); code=$?
[ "$code" = 2 ] || { echo "$out"; fail "malformed CSV: exit $code, not 2"; }
grep -q "accellm-requests.csv:3: column ttft_ms: 'oops' is not a number" <<<"$out" ||
  { echo "$out"; fail "the message does not name the file, line and column"; }
[ -e "$dir/bad/report.html" ] && fail "a failed report left report.html"
echo "report: simulate writes it, report rebuilds it byte for byte, sweeps and bad input checked"
