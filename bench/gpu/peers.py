#!/usr/bin/env python3
"""bench/gpu/peers.py: what PyTorch's own kernels do with the shapes our
CUDA backend is measured on, on the same GPU, for comparison with
bench_gpu_ceilings (docs/cuda-runs.md "Peers on the same GPU").

  python3 bench/gpu/peers.py [--csv FILE]

- Prefill attention, causal, bf16, one prompt of 2048 tokens: Llama-2-7B's
  shape (32 heads, head_dim 128) and Llama-3-8B's (32 query heads over 8 KV
  heads), through scaled_dot_product_attention with each backend this
  PyTorch has (FlashAttention-2, cuDNN, memory-efficient), in TFLOP/s
  counted as bench_gpu_ceilings counts them (causal: half of 4 n^2 d per
  head).
- Decode attention, one query row per request, batch 64, Llama-2-7B's
  shape at contexts 512 and 1024 over contiguous K/V (ours is paged), in
  TB/s of K and V read.
- The decode products of Llama-2-7B at 64 rows through torch.matmul
  (cuBLAS), in TB/s of weights read.

Operands cycle through copies of at least 256 MB in all, so that no call
finds the last one's in L2, and each figure is a median over batches of
back-to-back calls, so that the host's launch overhead is hidden as it is
in a model's stream.

Prints one line per figure; --csv also writes them (name, ms, value, unit).
Needs a CUDA GPU and PyTorch; exits 2 naming what is missing.
"""
import argparse
import statistics
import sys
import warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", help="also write the figures to this CSV file")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as e:
        print(f"peers.py: PyTorch is needed: {e}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("peers.py: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 2
    out = open(args.csv, "w") if args.csv else None
    if out:
        out.write("gpu,figure,ms,value,unit\n")
    gpu = torch.cuda.get_device_name(0)
    print(f"{gpu}, PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")

    # Median over `reps` batches of `inner` back-to-back calls, per call: a
    # call timed alone would also count the host's launch (Python and
    # PyTorch's dispatch, ~10-20 us), which the queue hides when calls
    # follow each other, as a model's kernels do.
    def median_ms(fn, reps=7, inner=20, warmup=3):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / inner)
        return statistics.median(times)

    def report(figure, ms, value, unit):
        print(f"  {figure}: {ms:.3f} ms, {value:.2f} {unit}")
        if out:
            out.write(f"{gpu},{figure},{ms:.5f},{value:.4f},{unit}\n")

    warnings.filterwarnings("ignore", category=UserWarning)  # a backend's reasons for refusing
    # Operands are cycled through copies that hold at least 256 MB in all,
    # five times the H100's L2 (50 MB), as a model's layers have weights of
    # their own: back-to-back calls on one copy of Wo (32 MB) would read it
    # from L2.
    def copies_of(make, nbytes):
        return [make() for _ in range(max(1, -(-(256 << 20) // nbytes)))]

    def cycled(ops):
        state = {"i": 0}

        def next_op():
            state["i"] = (state["i"] + 1) % len(ops)
            return ops[state["i"]]
        return next_op

    torch.manual_seed(1)
    dev, bf16 = "cuda", torch.bfloat16
    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    n, d = 2048, 128
    for model, heads, kv_heads in (("llama2-7b", 32, 32), ("llama3-8b", 32, 8)):
        nbytes = (heads + 2 * kv_heads) * n * d * 2
        op = cycled(copies_of(lambda: (torch.randn(1, heads, n, d, device=dev, dtype=bf16),
                                       torch.randn(1, kv_heads, n, d, device=dev, dtype=bf16),
                                       torch.randn(1, kv_heads, n, d, device=dev, dtype=bf16)),
                              nbytes))
        flops = heads * 4.0 * n * n * d / 2
        for name, backend in backends:
            try:
                with sdpa_kernel(backend):
                    ms = median_ms(lambda: F.scaled_dot_product_attention(
                        *op(), is_causal=True, enable_gqa=kv_heads != heads))
            except RuntimeError as e:
                print(f"  prefill attention {model} {n} tokens {name}: not run ({str(e).splitlines()[0]})")
                continue
            report(f"prefill attention {model} {n} tokens {name}", ms, flops / ms / 1e9, "TFLOP/s")

    batch, heads = 64, 32
    for ctx in (512, 1024):
        q = torch.randn(batch, heads, 1, d, device=dev, dtype=bf16)
        k = torch.randn(batch, heads, ctx, d, device=dev, dtype=bf16)
        v = torch.randn(batch, heads, ctx, d, device=dev, dtype=bf16)
        kv_bytes = 2.0 * k.numel() * 2
        for name, backend in backends:
            try:
                with sdpa_kernel(backend):
                    ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v))
            except RuntimeError as e:
                print(f"  decode attention llama2-7b batch {batch} ctx {ctx} {name}: not run ({str(e).splitlines()[0]})")
                continue
            report(f"decode attention llama2-7b batch {batch} ctx {ctx} {name}", ms, kv_bytes / ms / 1e9,
                   "TB/s")

    rows, hidden, ffn = 64, 4096, 11008
    for name, outs, ins in (("qkv", 3 * hidden, hidden), ("wo", hidden, hidden),
                            ("gate_up", 2 * ffn, hidden), ("down", hidden, ffn)):
        x = torch.randn(rows, ins, device=dev, dtype=bf16)
        w = cycled(copies_of(lambda: torch.randn(outs, ins, device=dev, dtype=bf16), outs * ins * 2))
        ms = median_ms(lambda: torch.matmul(x, w().t()))
        report(f"decode product {name} {rows} rows torch.matmul", ms, outs * ins * 2 / ms / 1e9, "TB/s")
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
