#!/usr/bin/env bash
# trace_live.sh ACCELLM LOCAL_CLUSTER SIM_CLUSTER DIR
# A live local cluster traced end to end: `accellm up --trace` makes each of
# its five processes write its own log (DIR/live-coordinator.trace,
# DIR/live-w0.trace, ...); `accellm trace` merges them onto one clock (one
# host: no offset), counts messages between the processes, follows a request
# across them and exports them for Perfetto. Then --trace at its boundary:
# an unwritable path stops simulate and the coordinator at once (exit 2),
# naming the path.
set -u
accellm=$1; cluster=$2; sim_cluster=$3; dir=$4
rm -rf "$dir"; mkdir -p "$dir"
fail() { echo "FAIL: $*"; exit 1; }
# Any free ports: other live tests may run at the same time.
sed -e 's/^port = .*/port = 0/' -e 's/^http_port = .*/http_port = 0/' "$cluster" >"$dir/cluster.toml"
grep -q "^http_port = 0" "$dir/cluster.toml" || fail "$cluster has no http_port to free"
cluster=$dir/cluster.toml

timeout 150 "$accellm" up --config "$cluster" --log-level warn --workload conv --rate 4 \
  --duration 3 --trace "$dir/live.trace" >"$dir/up.log" 2>&1 ||
  { cat "$dir/up.log"; fail "accellm up --trace"; }
for node in coordinator w0 w1 w2 w3; do
  [ -s "$dir/live-$node.trace" ] || fail "up --trace wrote no $dir/live-$node.trace"
done

"$accellm" trace summary "$dir"/live-*.trace >"$dir/summary.txt" 2>&1 ||
  { cat "$dir/summary.txt"; fail "trace summary of the live logs"; }
grep -q "logs (steady clock)" "$dir/summary.txt" || fail "the logs are not on the steady clock"
grep -Eq "live-w3.trace: node w3, .*offset \+0 ns \(same host" "$dir/summary.txt" ||
  { cat "$dir/summary.txt"; fail "a worker on this host is not at offset 0"; }
grep -q "logs without log_end: 0" "$dir/summary.txt" ||
  fail "a daemon stopped by up did not close its log"
grep -q "dropped events: 0" "$dir/summary.txt" || fail "events were dropped"
for pair in "client -> coordinator" "coordinator -> w0" "w1 -> coordinator"; do
  grep -Eq "^ +$pair +[1-9]" "$dir/summary.txt" ||
    { cat "$dir/summary.txt"; fail "no messages $pair"; }
done
# KV copies between partners, across processes.
grep -Eq "^ +KvDeltaBatch +[1-9]" "$dir/summary.txt" || fail "no KV copy traced"

# The slowest request, followed through the logs of several processes.
id=$(awk '/^slowest requests/ { getline; getline; print $1; exit }' "$dir/summary.txt")
[ -n "$id" ] || { cat "$dir/summary.txt"; fail "no request in the summary"; }
"$accellm" trace follow "$dir"/live-*.trace --request "$id" >"$dir/follow.txt" 2>&1 ||
  { cat "$dir/follow.txt"; fail "trace follow --request $id"; }
for what in SubmitRequest AssignPrefill Execute RequestDone; do
  grep -q "$what" "$dir/follow.txt" || { cat "$dir/follow.txt"; fail "request $id has no $what"; }
done

"$accellm" trace export "$dir"/live-*.trace --format perfetto -o "$dir/live.json" \
  >"$dir/export.txt" 2>&1 || { cat "$dir/export.txt"; fail "trace export"; }
grep -q '"traceEvents"' "$dir/live.json" || fail "live.json has no traceEvents"
grep -q '"cat":"request"' "$dir/live.json" || fail "live.json has no request span"

# --trace at its boundary: nothing runs, the path is named, exit 2.
out=$("$accellm" simulate --cluster "$sim_cluster" --workload conv --rate 1 --duration 1 \
  --policy accellm --trace /nonexistent/dir/run.trace 2>&1); code=$?
[ "$code" = 2 ] || { echo "$out"; fail "simulate --trace to a missing directory: exit $code"; }
grep -q "/nonexistent/dir/run.trace" <<<"$out" || { echo "$out"; fail "the path is not named"; }
out=$(ACCELLM_CLUSTER_TOKEN=t timeout 30 "$accellm" coordinator --config "$cluster" --port 0 --http-port 0 \
  --trace /nonexistent/dir/c.trace 2>&1); code=$?
[ "$code" = 2 ] || { echo "$out"; fail "coordinator --trace to a missing directory: exit $code"; }
grep -q "/nonexistent/dir/c.trace" <<<"$out" || { echo "$out"; fail "the path is not named"; }
echo "ok: $(grep -c . "$dir/follow.txt") lines for request $id"
