#!/usr/bin/env bash
# bench/gpu/targets.sh: issue 8's two targets read off a model CSV that
# bench_gpu_model wrote (run.sh prints this at its end):
#   decode at batch >= 64, single-GPU models: >= 80% of HBM peak, counted on
#     weights plus KV read (the CSV's hbm_frac_h100: of 3.35 TB/s);
#   prefill of 2048 tokens: >= 65% of bf16 peak (flop_frac_h100: of 989 TFLOP/s).
#
#   bash bench/gpu/targets.sh bench/results/<gpu>-model.csv
#
# One line per model and target; exit 2 when the file is missing or is not
# bench_gpu_model's CSV.
set -euo pipefail
csv=${1:-}
[ -n "$csv" ] || { echo "targets.sh: usage: targets.sh MODEL_CSV" >&2; exit 2; }
[ -f "$csv" ] || { echo "targets.sh: $csv: no such file" >&2; exit 2; }
header="gpu,model,tp,kind,batch,context,tokens,median_ms,allreduce_ms,hbm_bytes,flops,tb_per_s,hbm_frac_h100,tflop_per_s,flop_frac_h100"
[ "$(head -1 "$csv")" = "$header" ] ||
  { echo "targets.sh: $csv: not bench_gpu_model's CSV (its first line is not the header: $header)" >&2; exit 2; }
awk -F, 'NR > 1 && $3 == 1 && $4 == "decode" && $5 >= 64 {
           k = $2; f = $13 * 100; n[k]++
           if (!(k in lo) || f < lo[k]) lo[k] = f
           if (!(k in hi) || f > hi[k]) hi[k] = f
           if (f >= 80) ok[k]++ }
         NR > 1 && $4 == "prefill" && $7 == 2048 {
           printf "prefill 2048  %-11s tp%-2s %8.2f ms  %5.1f%% of bf16 peak  %s\n", $2, $3, $8, $15 * 100, ($15 >= 0.65 ? "met" : "missed") }
         END { for (k in n) printf "decode b>=64  %-11s tp1  %5.1f-%5.1f%% of HBM peak, %d of %d points >= 80%%\n", k, lo[k], hi[k], ok[k] + 0, n[k] }' "$csv" | sort
