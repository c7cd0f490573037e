// bench_gpu_ceilings helper: how fast the GPU reads memory in the pattern
// decode attention reads the paged KV pool, against plain streaming reads.
// A KV block holds, per layer, 16 token rows of kv_width elements; a decode
// block for one KV head reads a 2 * head_dim-byte segment of each row, so
// consecutive reads are a row apart (8 KB for Llama-2-7B, 2 KB for
// Llama-3-8B's GQA). If this pattern reads markedly slower than contiguous
// reads, a head-major pool layout (each head's 16 rows contiguous) is worth
// building; if not, it is not. Reads only: no write per byte read, unlike the
// copy ceiling.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace accellm::bench {

/// Reads `bytes` of `base` (16-byte aligned; a multiple of `row_bytes`) as
/// rows of `row_bytes`, each cut into segments of `segment_bytes` (a
/// multiple of 256 that divides row_bytes): one warp per segment column
/// reads that segment of consecutive rows; `segment_bytes == row_bytes` is
/// a contiguous stream. Writes one word per warp to `sink` (at least
/// read_pattern_sink_words words). Queues one pass on `s`; returns the
/// launch's error.
cudaError_t read_pattern(const void* base, std::size_t bytes, std::uint32_t row_bytes,
                         std::uint32_t segment_bytes, std::uint32_t* sink, cudaStream_t s);

/// How many words read_pattern writes to `sink` for these arguments.
std::size_t read_pattern_sink_words(std::size_t bytes, std::uint32_t row_bytes,
                                    std::uint32_t segment_bytes);

}  // namespace accellm::bench
