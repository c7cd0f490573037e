#!/usr/bin/env bash
# bench/gpu/targets.sh, the summary run.sh ends with: on a synthetic CSV
# whose verdicts are known (one decode point on each side of 80%, one
# prefill on each side of 65%, rows the targets do not count, an H200's
# points also against its own 4.8 TB/s), on the committed H100 table, and on
# bad input.
set -uo pipefail
root=$1
script="$root/bench/gpu/targets.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat >"$tmp/model.csv" <<'CSV'
gpu,model,tp,kind,batch,context,tokens,median_ms,allreduce_ms,hbm_bytes,flops,tb_per_s,hbm_frac_h100,tflop_per_s,flop_frac_h100
G,m1,1,decode,64,512,64,10,0,1,1,2.8,0.84,1,0.01
G,m1,1,decode,128,512,128,10,0,1,1,2.5,0.75,1,0.01
G,m1,1,decode,32,512,32,10,0,1,1,3.3,0.99,1,0.01
G,m1,8,decode,64,512,64,10,0,1,1,3.3,0.99,1,0.01
G,m1,1,prefill,1,0,2048,40,0,1,1,1,0.01,660,0.667
G,m2,1,prefill,1,0,2048,50,0,1,1,1,0.01,600,0.607
G,m2,1,prefill,1,0,1024,20,0,1,1,1,0.01,700,0.707
NVIDIA H200,m3,1,decode,64,512,64,10,0,1,1,3.6,1.0746,1,0.01
NVIDIA H200,m3,1,decode,64,2048,64,10,0,1,1,4.0,1.1940,1,0.01
CSV
out=$(bash "$script" "$tmp/model.csv") || fail "exit $? on a good CSV"
echo "$out"
grep -q "decode b>=64  m1          tp1   75.0- 84.0% of H100 SXM HBM peak (3.35 TB/s), 1 of 2 points >= 80%" <<<"$out" ||
  fail "decode line: batch 32 and tp 8 rows must not count, 84% meets and 75% misses"
[ "$(grep -c '^decode.*m1 .*NVIDIA' <<<"$out")" = 0 ] || fail "an unknown GPU gets no line of its own peak"
grep -q "decode b>=64  m3          tp1  107.5-119.4% of H100 SXM HBM peak (3.35 TB/s), 2 of 2 points >= 80%" <<<"$out" ||
  fail "H200 rows against the H100's peak"
grep -q "decode b>=64  m3          tp1   75.0- 83.3% of NVIDIA H200 HBM peak (4.80 TB/s), 1 of 2 points >= 80%" <<<"$out" ||
  fail "H200 rows against the H200's own peak: 3.6 and 4.0 TB/s of 4.8"
grep -q "prefill 2048  m1          tp1     40.00 ms   66.7% of bf16 peak  met" <<<"$out" || fail "m1 prefill"
grep -q "prefill 2048  m2          tp1     50.00 ms   60.7% of bf16 peak  missed" <<<"$out" || fail "m2 prefill"
[ "$(grep -c '^prefill' <<<"$out")" = 2 ] || fail "only 2048-token prefills count"

h100=$(bash "$script" "$root/bench/results/nvidia-h100-80gb-hbm3-model.csv") || fail "the H100 table"
grep -q "prefill 2048  llama2-7b   tp1     46.42 ms   60.2% of bf16 peak  missed" <<<"$h100" ||
  fail "the H100 table's Llama-2-7B prefill"

err=$(bash "$script" "$tmp/none.csv" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "none.csv: no such file" <<<"$err" || fail "missing file: rc $rc, '$err'"
printf 'model,batch\nm1,64\n' >"$tmp/other.csv"
err=$(bash "$script" "$tmp/other.csv" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "not bench_gpu_model's CSV" <<<"$err" || fail "wrong header: rc $rc, '$err'"
err=$(bash "$script" 2>&1); rc=$?
[ "$rc" = 2 ] && grep -q "usage" <<<"$err" || fail "no argument: rc $rc, '$err'"
echo "PASS"
