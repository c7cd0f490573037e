// cuda_backend's same-node KV path: two backends on one GPU stand in for two
// worker processes (the region is shared through its fd as between
// processes). KV packed into a cuda_region by one and unpacked by the other
// must decode the same greedy tokens (the takeover invariant), also when it
// was streamed layer group by layer group into a kv_ring, and also after the
// sender and its region are gone.
#include "device/cuda/cuda_backend.hpp"
#include "device/cuda/shared_memory.hpp"
#include "device/kv_ring.hpp"
#include "tests/device/cuda/backend_test_util.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

constexpr std::uint32_t decode_steps = 16;

// `region` shared as between two processes and mapped by `dev`.
std::unique_ptr<shared_region> open_in(backend& dev, const shared_region& region) {
  auto fd = region.share();
  EXPECT_TRUE(fd.ok()) << fd.err().what();
  if (!fd.ok()) return nullptr;
  auto r = dev.open_shared(region_kind::cuda, std::move(*fd), region.bytes());
  EXPECT_TRUE(r.ok()) << r.err().what();
  return r.ok() ? std::move(*r) : nullptr;
}

TEST(cuda_kv_shared, exported_into_a_region_decodes_the_same_elsewhere) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(5);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::uint32_t n = 37, layers = (*a)->model().layers, half = layers / 2;
  auto first = (*a)->run(batch{{batch_item{7, phase::prefill, 0, n, prompt(n, 512, 4), true}}});
  ASSERT_TRUE(first.ok());
  const std::uint64_t lo = (*a)->slice_bytes({0, half}, {0, n});
  const std::uint64_t hi = (*a)->slice_bytes({half, layers}, {0, n});
  auto region = (*a)->create_shared(16 + lo + hi);
  ASSERT_TRUE(region.ok()) << region.err().what();
  EXPECT_EQ((*region)->kind(), region_kind::cuda);
  auto mapped = open_in(**b, **region);
  ASSERT_NE(mapped, nullptr);

  // Two layer ranges at two offsets, as a layer-wise copy would place them.
  auto c0 = (*a)->export_kv_to(**region, 16, 7, {0, half}, {0, n});
  auto c1 = (*a)->export_kv_to(**region, 16 + lo, 7, {half, layers}, {0, n});
  ASSERT_TRUE(c0.ok() && c1.ok());
  EXPECT_TRUE(c0->data.empty());
  EXPECT_EQ(c0->bytes, lo);
  EXPECT_EQ(c1->bytes, hi);
  ASSERT_TRUE((*b)->import_kv_from(*mapped, 16 + lo, *c1).ok());
  EXPECT_EQ((*b)->cached_tokens(7), 0u);  // a gap below layer `half`
  ASSERT_TRUE((*b)->import_kv_from(*mapped, 16, *c0).ok());
  EXPECT_EQ((*b)->cached_tokens(7), n);
  auto whole_a = (*a)->export_kv(7, {0, layers}, {0, n});
  auto whole_b = (*b)->export_kv(7, {0, layers}, {0, n});
  ASSERT_TRUE(whole_a.ok() && whole_b.ok());
  EXPECT_TRUE(whole_a->data == whole_b->data);
  expect_same_decodes(**a, **b, 7, n, first->next_tokens[0], first->next_tokens[0], decode_steps);
}

TEST(cuda_kv_shared, bad_places_and_regions_are_refused) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(5);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::uint32_t n = 20, layers = (*a)->model().layers;
  ASSERT_TRUE(
      (*a)->run(batch{{batch_item{3, phase::prefill, 0, n, prompt(n, 512, 2), true}}}).ok());
  const std::uint64_t bytes = (*a)->slice_bytes({0, layers}, {0, n});
  auto zero = (*a)->create_shared(0);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.err().code(), errc::invalid_argument);
  auto region = (*a)->create_shared(bytes);
  ASSERT_TRUE(region.ok()) << region.err().what();
  auto mapped = open_in(**b, **region);
  ASSERT_NE(mapped, nullptr);

  auto past = (*a)->export_kv_to(**region, 16, 3, {0, layers}, {0, n});
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.err().code(), errc::out_of_range);
  auto odd = (*a)->export_kv_to(**region, 8, 3, {0, 1}, {0, n});
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.err().code(), errc::misaligned);
  auto unknown = (*a)->export_kv_to(**region, 0, 99, {0, 1}, {0, n});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code(), errc::not_found);
  auto c = (*a)->export_kv_to(**region, 0, 3, {0, layers}, {0, n});
  ASSERT_TRUE(c.ok()) << c.err().what();

  auto st = (*b)->import_kv_from(*mapped, 16, *c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code(), errc::out_of_range);
  kv_chunk lying = *c;
  lying.bytes -= 16;
  st = (*b)->import_kv_from(*mapped, 0, lying);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code(), errc::invalid_argument);
  EXPECT_EQ((*b)->cached_tokens(3), 0u);

  auto no_fd = (*b)->open_shared(region_kind::cuda, unique_fd{}, bytes);
  ASSERT_FALSE(no_fd.ok());
  EXPECT_EQ(no_fd.err().code(), errc::invalid_argument);
  auto host = host_region::create(bytes, "not-a-vmm-handle");
  ASSERT_TRUE(host.ok());
  auto memfd = (*host)->share();
  ASSERT_TRUE(memfd.ok());
  auto not_vmm = (*b)->open_shared(region_kind::cuda, std::move(*memfd), bytes);
  ASSERT_FALSE(not_vmm.ok());
  EXPECT_TRUE(not_vmm.err().code() == errc::invalid_argument ||
              not_vmm.err().code() == errc::device_failure)
      << not_vmm.err().what();
  // A host region still goes the default way (through export_kv/import_kv).
  auto h = (*a)->export_kv_to(**host, 0, 3, {0, layers}, {0, n});
  ASSERT_TRUE(h.ok()) << h.err().what();
  ASSERT_TRUE((*b)->import_kv_from(**host, 0, *h).ok());
  EXPECT_EQ((*b)->cached_tokens(3), n);
}

TEST(cuda_kv_shared, the_mapping_outlives_the_sender) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(8);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  auto ref = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok() && ref.ok());
  const std::uint32_t n = 29, layers = (*a)->model().layers;
  const batch first{{batch_item{4, phase::prefill, 0, n, prompt(n, 512, 6), true}}};
  auto on_a = (*a)->run(first);
  auto on_ref = (*ref)->run(first);
  ASSERT_TRUE(on_a.ok() && on_ref.ok());
  ASSERT_EQ(on_a->next_tokens, on_ref->next_tokens);
  auto region = (*a)->create_shared((*a)->slice_bytes({0, layers}, {0, n}));
  ASSERT_TRUE(region.ok()) << region.err().what();
  auto mapped = open_in(**b, **region);
  ASSERT_NE(mapped, nullptr);
  auto c = (*a)->export_kv_to(**region, 0, 4, {0, layers}, {0, n});
  ASSERT_TRUE(c.ok()) << c.err().what();
  // The sender dies: its region and backend go before the receiver reads.
  region->reset();
  a->reset();
  ASSERT_TRUE((*b)->import_kv_from(*mapped, 0, *c).ok());
  EXPECT_EQ((*b)->cached_tokens(4), n);
  expect_same_decodes(**ref, **b, 4, n, on_ref->next_tokens[0], on_ref->next_tokens[0],
                      decode_steps);
}

// run_streaming with kv_stream::place: request 8's slices go into a kv_ring
// on the GPU, request 7's into kv_chunk::data; the receiver imports both
// kinds and decodes both requests as the sender does.
TEST(cuda_kv_shared, streamed_slices_placed_in_a_ring_decode_the_same_elsewhere) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(6);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::uint32_t layers = (*a)->model().layers;
  const batch first{{batch_item{7, phase::prefill, 0, 40, prompt(40, 512, 1), true},
                     batch_item{8, phase::prefill, 0, 17, prompt(17, 512, 2), true}}};
  const std::uint64_t capacity = (*a)->slice_bytes({0, layers}, {0, 17}) + 4096;
  auto writer = ring_writer::create(**a, capacity, 1);
  ASSERT_TRUE(writer.ok()) << writer.err().what();
  ASSERT_EQ(writer->kind(), region_kind::cuda);
  auto data_fd = writer->data().share();
  auto control_fd = writer->control().share();
  ASSERT_TRUE(data_fd.ok() && control_fd.ok());
  auto reader = ring_reader::open(**b, region_kind::cuda, std::move(*data_fd),
                                  std::move(*control_fd), capacity);
  ASSERT_TRUE(reader.ok()) << reader.err().what();

  std::vector<kv_chunk> got;
  kv_stream s;
  s.requests = {8, 7};
  s.layers_per_chunk = 1;
  s.sink = [&got](std::vector<kv_chunk> c) {
    for (kv_chunk& k : c) got.push_back(std::move(k));
  };
  s.place = [&writer](std::size_t slice, std::uint64_t bytes) -> std::optional<kv_place> {
    if (slice != 0) return std::nullopt;  // request 7: kv_chunk::data
    return writer->reserve(bytes);
  };
  auto r = (*a)->run_streaming(first, s);
  ASSERT_TRUE(r.ok()) << r.err().what();
  ASSERT_EQ(got.size(), 2u * layers);
  std::uint32_t in_ring = 0;
  for (const kv_chunk& c : got) {
    if (c.request == 8) {
      ASSERT_EQ(c.ring, 1u) << "layer " << c.layers.begin;
      EXPECT_TRUE(c.data.empty());
      auto at = reader->offset(c.ring_pos, c.bytes);
      ASSERT_TRUE(at.ok()) << at.err().what();
      ASSERT_TRUE((*b)->import_kv_from(reader->data(), *at, c).ok());
      reader->mark_read(c.ring_pos + c.bytes);
      ++in_ring;
    } else {
      EXPECT_EQ(c.ring, 0u);
      EXPECT_EQ(c.data.size(), c.bytes);
      ASSERT_TRUE((*b)->import_kv(c).ok());
    }
  }
  EXPECT_EQ(in_ring, layers);
  EXPECT_EQ(writer->unread(), 0u);
  for (const request_id q : {7u, 8u}) {
    const std::uint32_t n = q == 7 ? 40 : 17;
    EXPECT_EQ((*b)->cached_tokens(q), n);
    auto on_a = (*a)->export_kv(q, {0, layers}, {0, n});
    auto on_b = (*b)->export_kv(q, {0, layers}, {0, n});
    ASSERT_TRUE(on_a.ok() && on_b.ok());
    EXPECT_TRUE(on_a->data == on_b->data) << "request " << q;
  }
  expect_same_decodes(**a, **b, 7, 40, r->next_tokens[0], r->next_tokens[0], decode_steps);
  expect_same_decodes(**a, **b, 8, 17, r->next_tokens[1], r->next_tokens[1], decode_steps);
}

}  // namespace
}  // namespace accellm::device::cuda
