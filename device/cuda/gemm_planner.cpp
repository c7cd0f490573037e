#include "device/cuda/gemm_planner.hpp"

#include "device/cuda/candidate_check.hpp"
#include "device/cuda/check.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/runtime.hpp"

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

namespace accellm::device::cuda {

namespace {

// A sample is 4 back-to-back runs (median_launch_ms): the host's launch
// overhead (cudaFuncSetAttribute, cuBLAS's heuristics) overlaps the
// device's work as it does in a replayed graph.
constexpr int runs_per_sample = 4;

template <class F>
float median_ms(cudaStream_t s, const event& e0, const event& e1, F&& f) {
  return median_launch_ms(s, e0.get(), e1.get(), runs_per_sample, std::forward<F>(f));
}

// |got - ref| <= rtol * max |ref| + 1e-6 everywhere, every value finite. The
// two differ only in the order of fp32 sums of exact bf16 products (and in
// bf16 rounding steps): fp32 y agrees to ~1e-6 of max |ref| in practice,
// bf16 y to an ulp or two (<= 0.8% each); a wrong tile, k range or row is off
// by a sizeable fraction of the typical |ref|.
bool agree(const std::vector<float>& got, const std::vector<float>& ref, double rtol) {
  const deviation d = deviation_of(got, ref);
  return d.finite && d.max_diff <= rtol * d.max_ref + 1e-6;
}

// verify_ holds [x: rows x in bf16][pad to 256 B][y: rows x out, fp32 or bf16].
std::size_t verify_y_at(std::uint32_t rows, std::uint32_t in) {
  return (std::size_t{rows} * in * sizeof(__nv_bfloat16) + 255) / 256 * 256;
}

std::size_t y_bytes_of(std::uint32_t rows, std::uint32_t out, gemm_out type) {
  return std::size_t{rows} * out * (type == gemm_out::fp32 ? sizeof(float) : sizeof(__nv_bfloat16));
}

}  // namespace

result<gemm_planner> gemm_planner::create(cudaStream_t s, void* workspace, std::size_t bytes,
                                          gemm_planner_options o) {
  int dev = 0, sms = 0;
  ACCELLM_CUDA_TRY(cudaGetDevice(&dev));
  ACCELLM_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cublasLtHandle_t lt = nullptr;
  ACCELLM_CUBLAS_TRY(cublasLtCreate(&lt));
  gemm_planner p{s, workspace, bytes, lt, o};
  p.sm_count_ = static_cast<std::uint32_t>(sms);
  if (o.skinny_stream != nullptr) {
    // Allocated once, never moved: CUDA graphs hold its address.
    ACCELLM_TRY_ASSIGN(p.stream_counters_, device_buffer<unsigned>::allocate(stream_counter_count));
    ACCELLM_CUDA_TRY(cudaMemsetAsync(p.stream_counters_.data(), 0, p.stream_counters_.bytes(), s));
    ACCELLM_CUDA_TRY(cudaStreamSynchronize(s));
  }
  return p;
}

gemm_planner::gemm_planner(cudaStream_t s, void* workspace, std::size_t bytes, cublasLtHandle_t lt,
                           gemm_planner_options o)
    : stream_(s), workspace_(workspace), workspace_bytes_(bytes), lt_(lt), options_(o) {}

gemm_planner::gemm_planner(gemm_planner&& o) noexcept
    : stream_(o.stream_),
      workspace_(o.workspace_),
      workspace_bytes_(o.workspace_bytes_),
      lt_(std::exchange(o.lt_, nullptr)),
      options_(o.options_),
      plans_(std::move(o.plans_)),
      timed_(std::move(o.timed_)),
      verify_(std::move(o.verify_)),
      stream_counters_(std::move(o.stream_counters_)),
      sm_count_(o.sm_count_) {}

gemm_planner& gemm_planner::operator=(gemm_planner&& o) noexcept {
  std::swap(stream_, o.stream_);
  std::swap(workspace_, o.workspace_);
  std::swap(workspace_bytes_, o.workspace_bytes_);
  std::swap(lt_, o.lt_);
  std::swap(options_, o.options_);
  std::swap(plans_, o.plans_);
  std::swap(timed_, o.timed_);
  std::swap(verify_, o.verify_);
  std::swap(stream_counters_, o.stream_counters_);
  std::swap(sm_count_, o.sm_count_);
  return *this;
}

gemm_planner::~gemm_planner() {
  timed_.clear();
  plans_.clear();
  if (lt_ != nullptr) cublasLtDestroy(lt_);
}

std::size_t gemm_planner::count(gemm_choice c) const noexcept {
  return static_cast<std::size_t>(std::count_if(
      timed_.begin(), timed_.end(), [c](const auto& kv) { return kv.second->use == c; }));
}

std::size_t gemm_planner::prepared_by_bucket() const noexcept {
  return static_cast<std::size_t>(std::count_if(timed_.begin(), timed_.end(), [](const auto& kv) {
    return std::get<0>(kv.first) > exact_rows;
  }));
}

skinny_fn gemm_planner::skinny_of(gemm_choice c) const noexcept {
  switch (c) {
    case gemm_choice::skinny:
      return options_.skinny;
    case gemm_choice::skinny_wgmma:
      return options_.skinny_wgmma;
    case gemm_choice::skinny_tma:
      return options_.skinny_tma;
    case gemm_choice::cublas:
    case gemm_choice::lt:
    case gemm_choice::skinny_stream:  // run_skinny calls it: it takes a workspace
      break;
  }
  return nullptr;
}

gemm_choice gemm_planner::choice(std::uint32_t rows, std::uint32_t in, std::uint32_t out,
                                 gemm_out type, float beta) const {
  auto it = plans_.find(key{rows, in, out, type, beta != 0.0f});
  return it == plans_.end() ? gemm_choice::cublas : it->second->use;
}

std::size_t gemm_planner::using_lt_variant() const noexcept {
  return static_cast<std::size_t>(std::count_if(timed_.begin(), timed_.end(), [](const auto& kv) {
    return kv.second->use == gemm_choice::lt && !kv.second->lt.proposed;
  }));
}

status gemm_planner::run_skinny(gemm_choice c, std::uint32_t split, const __nv_bfloat16* x,
                                std::uint32_t rows, std::uint32_t in, const __nv_bfloat16* w,
                                std::uint32_t out, void* y, gemm_out type, float beta) const {
  if (c == gemm_choice::skinny_stream) {  // `split` is the tiles' width
    const skinny_stream_space space{static_cast<float*>(workspace_), workspace_bytes_,
                                    stream_counters_.data(),
                                    static_cast<std::uint32_t>(stream_counters_.size())};
    return options_.skinny_stream(x, rows, in, w, out, y, type, beta,
                                  stream_blocks(rows, in, out, split), split, space, stream_);
  }
  if (split != 0)
    return options_.skinny_tma_split(x, rows, in, w, out, y, type, beta, split, stream_);
  return skinny_of(c)(x, rows, in, w, out, y, type, beta, stream_);
}

std::uint32_t gemm_planner::stream_blocks(std::uint32_t rows, std::uint32_t in, std::uint32_t out,
                                          std::uint32_t width) const {
  const std::uint64_t fit = workspace_bytes_ / skinny_stream_partial_bytes(1, rows, width);
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>({sm_count_, skinny_stream_units(in, out, width), fit}));
}

std::size_t gemm_planner::using_skinny_stream_wide() const noexcept {
  return static_cast<std::size_t>(std::count_if(timed_.begin(), timed_.end(), [](const auto& kv) {
    return kv.second->use == gemm_choice::skinny_stream && kv.second->split == 256;
  }));
}

std::size_t gemm_planner::using_skinny_tma_split() const noexcept {
  return static_cast<std::size_t>(std::count_if(timed_.begin(), timed_.end(), [](const auto& kv) {
    return kv.second->use == gemm_choice::skinny_tma && kv.second->split != 0;
  }));
}

result<gemm_planner::reference> gemm_planner::reference_of(cublasHandle_t h, std::uint32_t rows,
                                                           std::uint32_t in, const __nv_bfloat16* w,
                                                           std::uint32_t out, gemm_out type,
                                                           float beta, void* scratch) {
  const std::size_t y_at = verify_y_at(rows, in), y_bytes = y_bytes_of(rows, out, type);
  if (verify_.bytes() < y_at + y_bytes) {
    verify_ = {};  // free first: the old buffer is no use
    ACCELLM_TRY_ASSIGN(verify_, device_buffer<std::uint8_t>::allocate(y_at + y_bytes));
  }
  auto* vx = reinterpret_cast<__nv_bfloat16*>(verify_.data());
  ACCELLM_TRY(fill_uniform(vx, std::size_t{rows} * in, 0x5eed, 1.0f, stream_));
  ACCELLM_CUDA_TRY(cudaMemsetAsync(scratch, 0, y_bytes, stream_));
  // Round 0 from y = 0; round 1 (beta != 0 only) adds beta * round 0's y.
  reference ref;
  ref.count = beta != 0.0f ? 2 : 1;
  for (int round = 0; round < ref.count; ++round) {
    ACCELLM_TRY(gemm(h, vx, rows, in, w, out, scratch, type, beta));
    ACCELLM_TRY_ASSIGN(ref.rounds[round],
                       download_floats(scratch, std::size_t{rows} * out, type, stream_));
  }
  return ref;
}

result<bool> gemm_planner::agrees(const product_fn& product, const reference& ref,
                                  std::uint32_t rows, std::uint32_t in, std::uint32_t out,
                                  gemm_out type) {
  const auto* vx = reinterpret_cast<const __nv_bfloat16*>(verify_.data());
  void* vy = verify_.data() + verify_y_at(rows, in);
  ACCELLM_CUDA_TRY(cudaMemsetAsync(vy, 0, y_bytes_of(rows, out, type), stream_));
  const double rtol = type == gemm_out::fp32 ? 1e-3 : 2e-2;
  for (int round = 0; round < ref.count; ++round) {
    if (!product(vx, vy)) {
      cudaGetLastError();  // a refused launch leaves no sticky error; clear it
      return false;
    }
    std::vector<float> got;
    ACCELLM_TRY_ASSIGN(got, download_floats(vy, std::size_t{rows} * out, type, stream_));
    if (!agree(got, ref.rounds[round], rtol)) return false;
  }
  return true;
}

status gemm_planner::prepare(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows,
                             std::uint32_t in, const __nv_bfloat16* w, std::uint32_t out,
                             gemm_out type, float beta, void* scratch) {
  const key k{rows, in, out, type, beta != 0.0f};
  if (rows == 0 || plans_.count(k) != 0) return {};
  if (lt_ == nullptr) return fail(errc::invalid_argument, "gemm_planner: not created");
  const key bucket{bucket_of(rows), in, out, type, beta != 0.0f};
  if (const auto t = timed_.find(bucket); t != timed_.end()) return share(k, *t->second);
  auto p = std::make_unique<plan>();
  ACCELLM_TRY_ASSIGN(p->product, lt_product::create(rows, in, out, type));
  const auto run_lt = [&](const lt_candidate& c, const __nv_bfloat16* xs, void* ys) {
    return p->product.run(lt_, c.algo, xs, w, ys, beta, workspace_, workspace_bytes_, stream_) ==
           CUBLAS_STATUS_SUCCESS;
  };
  // Past exact_rows only the proposals, which need no verification (above).
  const bool exact = rows <= exact_rows;
  lt_search search = options_.lt;
  if (!exact) search.varied = 0;
  const std::vector<lt_candidate> lts = lt_candidates(lt_, p->product, workspace_bytes_, search);
  // Verified before anything is timed: the reference overwrites `scratch`.
  // The heuristic's proposals are trusted; its variants and the skinny
  // kernels are not.
  std::vector<bool> lt_ok(lts.size());
  // The skinny kernels the options offer, then skinny_gemm_tma at the split
  // counts its own rule does not take, then skinny_gemm_stream at each width.
  struct candidate {
    gemm_choice choice;
    std::uint32_t split = 0;  // as plan::split
    bool verified = false;
  };
  std::vector<candidate> skinny;
  if (exact && skinny_gemm_supports(rows, in, out)) {
    for (const gemm_choice c :
         {gemm_choice::skinny, gemm_choice::skinny_wgmma, gemm_choice::skinny_tma})
      if (skinny_of(c) != nullptr) skinny.push_back({c});
    if (options_.skinny_tma_split != nullptr)
      for (const std::uint32_t n : skinny_split_candidates(in, out))
        skinny.push_back({gemm_choice::skinny_tma, n});
    if (options_.skinny_stream != nullptr)
      for (const std::uint32_t width : skinny_stream_widths)
        if (stream_blocks(rows, in, out, width) != 0 &&
            skinny_stream_counters(out, width) <= stream_counters_.size())
          skinny.push_back({gemm_choice::skinny_stream, width});
  }
  const bool skinny_here = !skinny.empty();
  const bool variants =
      std::any_of(lts.begin(), lts.end(), [](const lt_candidate& c) { return !c.proposed; });
  reference ref;
  if (skinny_here || variants)
    ACCELLM_TRY_ASSIGN(ref, reference_of(h, rows, in, w, out, type, beta, scratch));
  for (std::size_t i = 0; i < lts.size(); ++i) {
    if (lts[i].proposed) {
      lt_ok[i] = true;
      continue;
    }
    bool ok = false;
    ACCELLM_TRY_ASSIGN(
        ok, agrees([&](const __nv_bfloat16* xs, void* ys) { return run_lt(lts[i], xs, ys); }, ref,
                   rows, in, out, type));
    lt_ok[i] = ok;
  }
  for (candidate& c : skinny)
    ACCELLM_TRY_ASSIGN(
        c.verified,
        agrees(
            [&](const __nv_bfloat16* xs, void* ys) {
              return run_skinny(c.choice, c.split, xs, rows, in, w, out, ys, type, beta).ok();
            },
            ref, rows, in, out, type));
  event e0, e1;
  ACCELLM_TRY_ASSIGN(e0, event::create());
  ACCELLM_TRY_ASSIGN(e1, event::create());
  // The baseline: gemm()'s own choice.
  float best = median_ms(stream_, e0, e1,
                         [&] { return gemm(h, x, rows, in, w, out, scratch, type, beta).ok(); });
  for (std::size_t i = 0; i < lts.size(); ++i) {
    if (!lt_ok[i]) continue;
    const float t = median_ms(stream_, e0, e1, [&] { return run_lt(lts[i], x, scratch); });
    if (t > 0.0f && (best <= 0.0f || clear_win(t, best))) {
      best = t;
      p->lt = lts[i];
      p->use = gemm_choice::lt;
    }
  }
  // A verified skinny candidate timed at t is kept by options_.keep.
  const auto keeps = [&](float t) {
    return t > 0.0f &&
           (options_.keep == skinny_rule::if_verified || best <= 0.0f || clear_win(t, best));
  };
  for (const candidate& c : skinny) {
    if (!c.verified) continue;
    const float t = median_ms(stream_, e0, e1, [&] {
      return run_skinny(c.choice, c.split, x, rows, in, w, out, scratch, type, beta).ok();
    });
    if (keeps(t)) {
      best = t;
      p->use = c.choice;
      p->split = c.split;
    }
  }
  ACCELLM_CUDA_TRY(cudaGetLastError());
  timed_.emplace(bucket, p.get());
  plans_.emplace(k, std::move(p));
  return {};
}

status gemm_planner::share(const key& k, const plan& timed) {
  auto p = std::make_unique<plan>();
  ACCELLM_TRY_ASSIGN(p->product, lt_product::create(std::get<0>(k), std::get<1>(k), std::get<2>(k),
                                                    std::get<3>(k)));
  // Only cuBLASLt algorithms are shared: skinny kernels are timed up to
  // exact_rows rows, where a bucket is one row count.
  if (timed.use == gemm_choice::lt &&
      lt_algo_fits(lt_, p->product, timed.lt.algo, workspace_bytes_)) {
    p->use = gemm_choice::lt;
    p->lt = timed.lt;
  }
  plans_.emplace(k, std::move(p));
  return {};
}

status gemm_planner::run(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows,
                         std::uint32_t in, const __nv_bfloat16* w, std::uint32_t out, void* y,
                         gemm_out type, float beta) const {
  auto it = plans_.find(key{rows, in, out, type, beta != 0.0f});
  if (it == plans_.end() || it->second->use == gemm_choice::cublas)
    return gemm(h, x, rows, in, w, out, y, type, beta);
  const plan& p = *it->second;
  if (p.use != gemm_choice::lt)
    return run_skinny(p.use, p.split, x, rows, in, w, out, y, type, beta);
  ACCELLM_CUBLAS_TRY(
      p.product.run(lt_, p.lt.algo, x, w, y, beta, workspace_, workspace_bytes_, stream_));
  return {};
}

}  // namespace accellm::device::cuda
