#!/usr/bin/env bash
# A live cluster across "hosts": one coordinator and four cpu workers, each in
# its own network namespace, joined by a bridge in a switch namespace:
#
#   switch ns: bridge br0 ── veth ── coord ns (10.77.0.1:  coordinator, CAF 7600, HTTP 8080)
#                          ├─ veth ── w0 ns    (10.77.0.11: worker w0, KV receiver 7610)
#                          ├─ veth ── w1 ns    (10.77.0.12: worker w1)
#                          ├─ veth ── w2 ns    (10.77.0.13: worker w2)
#                          └─ veth ── w3 ns    (10.77.0.14: worker w3)
#
# Nothing touches the host's own network: the veth pairs are created inside
# the namespaces, and deleting the namespaces removes them.
#
# Checks: the four workers join over the bridge; GTest External.* (in
# tests/daemon/live_cluster_test.cpp), run in the coordinator's namespace,
# drives 200 requests through the coordinator and compares every one with a
# single in-process cpu instance; every worker has direct TCP connections to
# other workers' namespaces (KV rows go worker to worker, not through the
# coordinator), and those connections carried at least the KV bytes the
# workers report. Then, with the manifest this script writes, `accellm chaos
# partition w1` cuts a worker's host off while External.LosesNoRequestWhile-
# AWorkerIsCutOff drives 200 more requests, and `chaos heal` restores it:
# every request completes with the same tokens, the coordinator declared w1
# lost, and w1 (the same process) joins again as a new instance. `chaos slow`
# shapes a link (tbf; netem where the kernel has it) and `heal` unshapes it.
# Every daemon stops with exit 0 on SIGTERM. Every daemon runs with --trace:
# `accellm trace summary` merges the five logs (one kernel, one clock: no
# offset), finds KV copies from worker host to worker host and the cut-off
# worker's two memberships, and every log closed in order.
#
# Every wait is bounded (listen 30 s, join 60 s, each test 90 s, rejoin 30 s,
# each stop 10 s: under ctest's 420 s). A trap on EXIT stops the daemons and
# deletes the namespaces, on success and failure alike.
#
# Usage: netns_cluster.sh ACCELLM_BINARY INTEGRATION_DAEMONS_BINARY
# Exit: 0 passed, 1 failed, 2 bad arguments, 77 skipped (needs root and
# network namespaces).
set -uo pipefail

say() { echo "netns_cluster: $*"; }
skip() {
  say "SKIP: $*"
  exit 77
}
die() {
  say "FAIL: $*"
  exit 1
}

if [[ $# -ne 2 ]]; then
  echo "usage: $0 ACCELLM_BINARY INTEGRATION_DAEMONS_BINARY" >&2
  exit 2
fi
accellm=$(realpath -e "$1" 2>/dev/null) || { echo "$0: no such binary: $1" >&2; exit 2; }
tests_bin=$(realpath -e "$2" 2>/dev/null) || { echo "$0: no such binary: $2" >&2; exit 2; }
[[ -x $accellm && -x $tests_bin ]] || { echo "$0: $1 or $2 is not executable" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"
command -v ss >/dev/null || skip "no 'ss' command (iproute2)"
command -v tc >/dev/null || skip "no 'tc' command (iproute2)"
command -v timeout >/dev/null || skip "no 'timeout' command (coreutils)"

# Children get SIGTERM if this script is killed outright (SIGKILL, e.g. by a
# ctest timeout), so no daemon outlives it; setpriv execs, keeping the PID.
orphan_guard=()
if setpriv --pdeathsig TERM true 2>/dev/null; then orphan_guard=(setpriv --pdeathsig TERM --); fi

# Namespaces left by a run that was killed outright (its PID is gone).
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^accellm[0-9]+-/ { print $1 }'); do
  owner=${ns#accellm}
  owner=${owner%%-*}
  if ! kill -0 "$owner" 2>/dev/null; then
    say "removing $ns, left by an earlier run"
    ip netns del "$ns" 2>/dev/null
  fi
done

# Namespace names carry the PID, so concurrent runs do not collide.
prefix="accellm$$"
ns_switch="$prefix-sw"
ns_coord="$prefix-coord"
workers=(w0 w1 w2 w3)
declare -A addr=([coord]=10.77.0.1 [w0]=10.77.0.11 [w1]=10.77.0.12 [w2]=10.77.0.13 [w3]=10.77.0.14)
caf_port=7600
http_port=8080
kv_port=7610
ns_of() { [[ $1 == coord ]] && echo "$ns_coord" || echo "$prefix-$1"; }

created=()      # namespaces to delete
declare -A pid  # daemon PIDs by host name
work=$(mktemp -d "${TMPDIR:-/tmp}/accellm-netns-XXXXXX")
passed=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for h in "${!pid[@]}"; do
    kill -TERM "${pid[$h]}" 2>/dev/null
  done
  for h in "${!pid[@]}"; do
    for _ in $(seq 50); do kill -0 "${pid[$h]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pid[$h]}" 2>/dev/null
    wait "${pid[$h]}" 2>/dev/null
  done
  if [[ $passed -ne 1 ]]; then
    for f in "$work"/*.log; do
      [[ -f $f ]] || continue
      say "---- $(basename "$f") (last 40 lines)"
      tail -n 40 "$f"
    done
  fi
  for ns in "${created[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$work"
  say "cleaned up (namespaces ${created[*]:-none})"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the network ---------------------------------------------------------------

say "creating namespaces $ns_switch, $ns_coord, $prefix-w0..w3"
ip netns add "$ns_switch" 2>"$work/netns.err" || skip "'ip netns add' failed: $(cat "$work/netns.err")"
created+=("$ns_switch")
ip -n "$ns_switch" link set lo up || die "cannot bring up lo in $ns_switch"
ip -n "$ns_switch" link add br0 type bridge || die "cannot create a bridge in $ns_switch"
ip -n "$ns_switch" link set br0 up || die "cannot bring up br0"

for h in coord "${workers[@]}"; do
  ns=$(ns_of "$h")
  ip netns add "$ns" || die "cannot create namespace $ns"
  created+=("$ns")
  ip -n "$ns" link set lo up || die "cannot bring up lo in $ns"
  # Both ends are created inside namespaces: nothing appears on the host.
  ip -n "$ns" link add eth0 type veth peer name "p-$h" netns "$ns_switch" ||
    die "cannot create the veth pair of $h"
  ip -n "$ns_switch" link set "p-$h" master br0 up || die "cannot attach p-$h to br0"
  ip -n "$ns" addr add "${addr[$h]}/24" dev eth0 || die "cannot address $h"
  ip -n "$ns" link set eth0 up || die "cannot bring up eth0 in $ns"
  say "  $h: $ns, ${addr[$h]}/24"
done

# --- the cluster file --------------------------------------------------------------

config="$work/cluster.toml"
cat >"$config" <<EOF
# Written by tests/integration/netns_cluster.sh.
[cluster]
name = "netns"
model = "cpu-tiny"
device = "cpu"
tp = 1
instances = 4
[batching]
max_batch_size = 64
[coordinator]
host = "${addr[coord]}"
port = $caf_port
http_host = "${addr[coord]}"
http_port = $http_port
policy = "accellm"
[worker]
device = "cpu"
# Each worker overrides this with --host, its own namespace's address.
host = "127.0.0.1"
kv_port = $kv_port
[log]
level = "info"
EOF
ACCELLM_CLUSTER_TOKEN="netns-$$-$RANDOM$RANDOM"
export ACCELLM_CLUSTER_TOKEN

# --- helpers ------------------------------------------------------------------------

# GET http://coord:8080$1 from inside the coordinator's namespace; prints the body.
http_get() {
  if command -v curl >/dev/null; then
    ip netns exec "$ns_coord" curl -s --max-time 3 "http://${addr[coord]}:$http_port$1"
  else
    # shellcheck disable=SC2016  # expanded by the inner bash, from its arguments
    ip netns exec "$ns_coord" timeout 3 bash -c '
      exec 3<>"/dev/tcp/$0/$1" || exit 1
      printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
      sed "1,/^\r\{0,1\}$/d" <&3' "${addr[coord]}" "$http_port" "$1"
  fi
}

alive() { kill -0 "${pid[$1]}" 2>/dev/null; }

# The sum of the samples on /metrics whose line starts with $1 (a metric
# name, with its labels or without), as an integer.
metric() { http_get /metrics | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d", s }'; }

# Fails when a daemon has exited.
check_alive() {
  for h in "${!pid[@]}"; do
    alive "$h" || die "$h exited early (log: $h.log)"
  done
}

# --- the daemons ---------------------------------------------------------------------

say "starting the coordinator in $ns_coord (CAF ${addr[coord]}:$caf_port, HTTP :$http_port)"
ip netns exec "$ns_coord" "${orphan_guard[@]}" "$accellm" coordinator --config "$config" \
  --ready-file "$work/ready" --trace "$work/coord.trace" 2>"$work/coord.log" &
pid[coord]=$!
for _ in $(seq 300); do
  [[ -s $work/ready ]] && break
  check_alive
  sleep 0.1
done
[[ -s $work/ready ]] || die "the coordinator did not listen within 30 s"
say "  coordinator listening (pid ${pid[coord]}): ports $(cat "$work/ready")"

for h in "${workers[@]}"; do
  say "starting worker $h in $(ns_of "$h") (--host ${addr[$h]}, KV receiver :$kv_port)"
  ip netns exec "$(ns_of "$h")" "${orphan_guard[@]}" "$accellm" worker --coordinator "${addr[coord]}:$caf_port" \
    --instance "$h" --config "$config" --host "${addr[$h]}" --trace "$work/$h.trace" \
    2>"$work/$h.log" &
  pid[$h]=$!
done

say "waiting (60 s at most) until /health counts 4 instances"
health=""
for _ in $(seq 120); do
  health=$(http_get /health 2>/dev/null)
  [[ $health == *'"instances":4'* ]] && break
  check_alive
  sleep 0.5
done
[[ $health == *'"instances":4'* ]] || die "the workers did not all join within 60 s (last /health: '$health')"
say "  /health: $health"

# --- 200 requests from the coordinator's host ---------------------------------------------

# Runs GTest External.$1 of the test binary in the coordinator's namespace,
# $2 seconds at most; fails unless exactly that test ran and passed. In the
# background and waited for, so that a signal reaches the trap at once.
run_external() {
  local test=$1 limit=$2 log="$work/gtest-$1.log" rc
  ip netns exec "$ns_coord" "${orphan_guard[@]}" env \
    ACCELLM_EXTERNAL_COORDINATOR="${addr[coord]}:$caf_port" \
    ACCELLM_EXTERNAL_HTTP="${addr[coord]}:$http_port" \
    timeout "$limit" "$tests_bin" --gtest_filter="External.$test" >"$log" 2>&1 &
  pid[gtest]=$!
  wait "${pid[gtest]}"
  rc=$?
  unset "pid[gtest]"
  cat "$log"
  [[ $rc -eq 0 ]] || die "External.$test failed (exit $rc)"
  grep -q '^\[  PASSED  \] 1 test' "$log" || die "External.$test did not run exactly one test"
  ! grep -q '^\[  SKIPPED \]' "$log" || die "External.$test skipped"
}

say "running External.ServesTwoHundredRequestsLikeOneInstance in $ns_coord (90 s at most)"
run_external ServesTwoHundredRequestsLikeOneInstance 90
check_alive

# --- KV rows went worker to worker ---------------------------------------------------------

is_worker_addr() {
  for w in "${workers[@]}"; do [[ $1 == "${addr[$w]}" ]] && return 0; done
  return 1
}

# Established TCP connections of a namespace: "local_addr peer_addr bytes_sent bytes_received".
connections() {
  ip netns exec "$(ns_of "$1")" ss -tniH state established | awk '
    /^[0-9]/ { split($3, l, ":"); split($4, p, ":"); local = l[1]; peer = p[1]; next }
    local != "" {
      sent = 0; received = 0
      for (i = 1; i <= NF; ++i) {
        if ($i ~ /^bytes_sent:/) { sub(/bytes_sent:/, "", $i); sent = $i }
        if ($i ~ /^bytes_received:/) { sub(/bytes_received:/, "", $i); received = $i }
      }
      print local, peer, sent, received; local = ""
    }'
}

say "direct worker-to-worker connections (ss in each worker namespace):"
mesh_bytes=0
for h in "${workers[@]}"; do
  n=0
  while read -r local peer sent received; do
    if is_worker_addr "$peer"; then
      n=$((n + 1))
      mesh_bytes=$((mesh_bytes + sent))
      say "  $h: $local -> $peer  sent $sent B, received $received B"
    fi
  done < <(connections "$h")
  [[ $n -ge 1 ]] || die "$h has no established connection to another worker's address"
done

# The coordinator's joins name the pairs: instance i pairs with i ^ 1.
declare -A by_id
while read -r id name; do by_id[$id]=$name; done < <(
  sed -n "s/.*instance \([0-9]*\) '\([^']*\)' joined.*/\1 \2/p" "$work/coord.log")
for id in 0 2; do
  a=${by_id[$id]:-} b=${by_id[$((id + 1))]:-}
  [[ -n $a && -n $b ]] || die "the coordinator's log does not show instances $id and $((id + 1)) joining"
  connections "$a" | awk -v p="${addr[$b]}" '$2 == p { found = 1 } END { exit !found }' ||
    die "partners $a and $b have no direct connection"
  say "  partners $a (${addr[$a]}) <-> $b (${addr[$b]}): connected directly"
done

kv_sent=$(metric accellm_instance_kv_sent_bytes_total)
say "KV bytes the workers report sent: $kv_sent; bytes sent on worker-to-worker connections: $mesh_bytes"
[[ $kv_sent -gt 0 ]] || die "the workers report no KV bytes sent"
[[ $mesh_bytes -ge $kv_sent ]] ||
  die "worker-to-worker connections carried $mesh_bytes bytes, fewer than the $kv_sent KV bytes sent"

# --- a worker cut off under load, then healed (accellm chaos) ------------------------------

# The manifest `accellm chaos` acts on: each daemon's PID, namespace and link.
manifest="$work/manifest.toml"
{
  echo "cluster = \"netns\""
  echo "started_unix_s = $(date +%s.%N)"
  for h in coord "${workers[@]}"; do
    name=$h
    [[ $h == coord ]] && name=coordinator
    printf '\n[[process]]\nname = "%s"\npid = %s\nnetns = "%s"\ndev = "eth0"\n' \
      "$name" "${pid[$h]}" "$(ns_of "$h")"
  done
} >"$manifest"

victim=w1
lost_before=$(metric accellm_instances_lost_total)

say "External.LosesNoRequestWhileAWorkerIsCutOff in $ns_coord (90 s at most); cutting $victim off meanwhile"
(
  # Once the victim is decoding (10 s at most), its link goes down; once the
  # coordinator has declared it lost (10 s at most) and a second more, it heals.
  for _ in $(seq 200); do
    [[ $(metric "accellm_instance_batch_decode_requests{instance=\"$victim\"}") -gt 0 ]] && break
    sleep 0.05
  done
  "$accellm" chaos partition "$victim" --manifest "$manifest" || exit 1
  for _ in $(seq 100); do
    [[ $(metric accellm_instances_lost_total) -gt $lost_before ]] && break
    sleep 0.1
  done
  sleep 1
  "$accellm" chaos heal "$victim" --manifest "$manifest" || exit 1
) >"$work/chaos.log" 2>&1 &
chaos_pid=$!
run_external LosesNoRequestWhileAWorkerIsCutOff 90
wait "$chaos_pid" || die "accellm chaos failed: $(cat "$work/chaos.log")"
cat "$work/chaos.log"
grep -q "chaos: partitioned $victim" "$work/chaos.log" || die "the partition was not made"
grep -q "chaos: healed $victim" "$work/chaos.log" || die "the partition was not healed"
[[ $(metric accellm_instances_lost_total) -gt $lost_before ]] ||
  die "the coordinator never declared $victim lost"

say "waiting (30 s at most) until $victim joins again as a new instance"
for _ in $(seq 60); do
  health=$(http_get /health 2>/dev/null)
  [[ $health == *'"instances":4'* ]] && grep -q "'$victim' joined" <(sed -n '/lost/,$p' "$work/coord.log") && break
  sleep 0.5
done
[[ $health == *'"instances":4'* ]] || die "$victim did not join again (last /health: '$health')"
grep -q "dropping this instance's state and joining the cluster again" "$work/$victim.log" ||
  die "$victim did not drop its state before joining again"
rejoined=$(sed -n "s/.*instance \([0-9]*\) '$victim' joined.*/\1/p" "$work/coord.log" | tail -n 1)
[[ ${rejoined:-0} -ge 4 ]] || die "$victim joined again with id '${rejoined:-}', not as a new instance"
alive "$victim" || die "$victim exited instead of joining again"
say "  $victim is instance $rejoined now (same process, pid ${pid[$victim]})"
grep -E "'$victim' (lost|joined)|'$victim': .* taken over|chaos" "$work/coord.log" | sed 's/^/  coordinator: /'
takeovers=$(metric accellm_takeovers_total)
say "  takeovers: $takeovers (replica $(metric 'accellm_takeovers_total{resumed_from="replica"}')," \
  "recompute $(metric 'accellm_takeovers_total{resumed_from="recompute"}')," \
  "prompt $(metric 'accellm_takeovers_total{resumed_from="prompt"}')); fenced messages" \
  "$(metric accellm_fenced_messages_total)"
[[ $takeovers -gt 0 ]] || die "$victim held no request when it was cut off"
check_alive

# slow: a token bucket (tc tbf) on a link, removed by heal; netem delay where
# the kernel has sch_netem, else a clear refusal.
say "accellm chaos slow w2 --rate 10mbit, then heal"
"$accellm" chaos slow w2 --rate 10mbit --manifest "$manifest" || die "chaos slow --rate failed"
ip -n "$(ns_of w2)" link show eth0 >/dev/null || die "w2's link is gone"
tc -n "$(ns_of w2)" qdisc show dev eth0 | grep -q tbf || die "no tbf qdisc on w2's link after slow"
if "$accellm" chaos slow w2 --delay-ms 20 --manifest "$manifest" >"$work/netem.log" 2>&1; then
  tc -n "$(ns_of w2)" qdisc show dev eth0 | grep -q netem || die "no netem qdisc after slow --delay-ms"
else
  grep -q "sch_netem" "$work/netem.log" || die "slow --delay-ms failed unclearly: $(cat "$work/netem.log")"
  say "  (this kernel has no sch_netem: $(cat "$work/netem.log"))"
fi
"$accellm" chaos heal w2 --manifest "$manifest" || die "chaos heal failed"
! tc -n "$(ns_of w2)" qdisc show dev eth0 | grep -qE "tbf|netem" || die "heal left w2's link shaped"
check_alive

# --- clean stop -------------------------------------------------------------------------------

# Waits (10 s at most) for daemon $1; sets `code` to its exit code, or
# "still running". (Not in a $(...) subshell: only this shell can wait.)
await_exit() {
  for _ in $(seq 100); do alive "$1" || break; sleep 0.1; done
  if alive "$1"; then code="still running"; return; fi
  wait "${pid[$1]}"
  code=$?
}

say "stopping the workers, then the coordinator (SIGTERM; each must exit 0)"
for h in "${workers[@]}" coord; do
  kill -TERM "${pid[$h]}"
  await_exit "$h"
  [[ $code == 0 ]] || die "$h: '$code' after SIGTERM"
  unset "pid[$h]"
  say "  $h exited 0"
done

# --- the five traces, merged ----------------------------------------------------------------

say "merging the daemons' traces"
logs=("$work/coord.trace")
for h in "${workers[@]}"; do logs+=("$work/$h.trace"); done
"$accellm" trace summary "${logs[@]}" >"$work/trace-summary.txt" 2>&1 ||
  die "accellm trace summary failed: $(cat "$work/trace-summary.txt")"
grep -q "logs without log_end: 0" "$work/trace-summary.txt" || die "a daemon's trace was not closed"
grep -q "dropped events: 0" "$work/trace-summary.txt" || die "the tracer dropped events"
[[ $(grep -c "offset +0 ns" "$work/trace-summary.txt") == 5 ]] ||
  die "the five logs are not all at offset 0: $(head -8 "$work/trace-summary.txt")"
kv_pairs=$(awk '/^messages by node pair/ { on = 1; next } on && /^$/ { on = 0 }
                on && $1 ~ /^w[0-3]$/ && $3 ~ /^w[0-3]$/ && $1 != $3 { n++ } END { print n + 0 }' \
  "$work/trace-summary.txt")
(( kv_pairs >= 2 )) || die "fewer than 2 worker-to-worker pairs in the merged trace: $(cat "$work/trace-summary.txt")"
say "  $(grep -E '^[0-9]+ events' "$work/trace-summary.txt"); $kv_pairs worker-to-worker pairs"

passed=1
say "PASS"
