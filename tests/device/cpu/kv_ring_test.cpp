// Same-node KV rings on the cpu backend (device/kv_ring.hpp,
// shared_region.hpp): a slice packed into a ring by one backend and read by
// another through its own mapping decodes to the same tokens, also after the
// sender and its ring are gone; the writer reuses only what the reader has
// marked read; every bad size, offset and descriptor is refused by name.
#include "device/kv_ring.hpp"

#include "device/cpu/cpu_backend.hpp"
#include "tests/device/cpu/cpu_test_util.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <string>

namespace accellm::device::cpu {
namespace {

using test::decode_alone;
using test::make;
using test::prefill;
using test::prompt;
using test::run_ok;

// The receiving side of `w`, mapped through `dev` as a peer process would.
ring_reader reader_of(backend& dev, const ring_writer& w) {
  auto data = w.data().share();
  auto control = w.control().share();
  EXPECT_TRUE(data.ok() && control.ok());
  auto r = ring_reader::open(dev, w.kind(), std::move(*data), std::move(*control), w.capacity());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().what());
  return std::move(*r);
}

TEST(KvRing, ASliceThroughTheRingDecodesLikeThePrimaryAfterTheSenderIsGone) {
  const auto spec = test::small_spec();
  auto a = make(spec);
  auto b = make(spec);
  const auto p = prompt(11, 45, spec.vocab);
  const token_id first = run_ok(*a, batch{{prefill(1, 0, p)}})[0];
  std::optional<ring_reader> r;
  {
    auto w = ring_writer::create(*a, 1 << 20, 7);
    ASSERT_TRUE(w.ok()) << w.err().what();
    r.emplace(reader_of(*b, *w));
    for (std::uint32_t l = 0; l < spec.layers; ++l) {
      const index_range layers{l, l + 1}, tokens{0, 45};
      const auto at = w->reserve(a->slice_bytes(layers, tokens));
      ASSERT_TRUE(at.has_value()) << "layer " << l;
      auto header = a->export_kv_to(*at->region, at->offset, 1, layers, tokens);
      ASSERT_TRUE(header.ok()) << header.err().what();
      EXPECT_TRUE(header->data.empty());
      EXPECT_EQ(header->bytes, a->slice_bytes(layers, tokens));
      // Read on B only after A's ring is gone below, except the first layer.
      if (l == 0) {
        auto off = r->offset(at->pos, header->bytes);
        ASSERT_TRUE(off.ok());
        ASSERT_TRUE(b->import_kv_from(r->data(), *off, *header).ok());
      }
    }
  }  // the writer (A's region and control block) is gone; B's mapping stays
  std::uint64_t pos = 0;
  for (std::uint32_t l = 0; l < spec.layers; ++l) {
    const index_range layers{l, l + 1}, tokens{0, 45};
    kv_chunk header{.request = 1,
                    .layers = layers,
                    .tokens = tokens,
                    .bytes = a->slice_bytes(layers, tokens),
                    .data = {}};
    if (l > 0) {
      auto off = r->offset(pos, header.bytes);
      ASSERT_TRUE(off.ok());
      const status st = b->import_kv_from(r->data(), *off, header);
      ASSERT_TRUE(st.ok()) << st.err().what();
    }
    pos += header.bytes;
    r->mark_read(pos);
  }
  EXPECT_EQ(b->cached_tokens(1), 45u);
  EXPECT_EQ(test::all_kv(*b, 1), test::all_kv(*a, 1));
  EXPECT_EQ(decode_alone(*b, 1, 45, first, 32), decode_alone(*a, 1, 45, first, 32));
}

TEST(KvRing, TheWriterReusesOnlyWhatTheReaderMarkedRead) {
  auto dev = make(test::tiny_spec());
  auto w = ring_writer::create(*dev, 1000, 1);
  ASSERT_TRUE(w.ok());
  ring_reader r = reader_of(*dev, *w);
  const auto a = w->reserve(400), b = w->reserve(400);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(b->offset, 400u);
  EXPECT_EQ(w->unread(), 800u);
  EXPECT_FALSE(w->reserve(400)) << "200 bytes left before the end, and a chunk never wraps";
  EXPECT_FALSE(w->reserve(1001)) << "larger than the ring";
  r.mark_read(400);
  const auto c = w->reserve(400);  // the lap's tail is skipped: 200 + 400 <= 1000 - 400
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 0u);
  EXPECT_EQ(c->pos, 1000u);
  EXPECT_FALSE(w->reserve(1)) << "[400, 800) is still unread";
  r.mark_read(300);  // never moves back
  EXPECT_FALSE(w->reserve(1));
  r.mark_read(1400);
  EXPECT_EQ(w->unread(), 0u);
  const auto d = w->reserve(1000);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pos, 2000u);
  r.mark_read(1u << 30);  // a reader claiming more than was written frees nothing unwritten
  EXPECT_EQ(w->unread(), 0u);
  const auto e = w->reserve(1);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->pos, 3000u) << "the head does not jump to the claim";
}

TEST(KvRing, ChunksStartAtSixteenByteOffsets) {
  auto dev = make(test::tiny_spec());
  auto w = ring_writer::create(*dev, 100, 1);
  ASSERT_TRUE(w.ok());
  const auto a = w->reserve(10), b = w->reserve(10), c = w->reserve(70);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->offset, 16u);
  EXPECT_FALSE(c) << "at 32, 70 bytes would run past 100; the next lap is still unread";
  ring_reader r = reader_of(*dev, *w);
  r.mark_read(b->pos + 10);
  const auto d = w->reserve(70);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->offset, 0u);
  EXPECT_EQ(d->pos, 100u);
  EXPECT_FALSE(w->reserve(40)) << "at 176 it would pass the end, and [100, 170) is unread";
}

TEST(KvRing, BadSizesOffsetsAndDescriptorsAreRefused) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  auto b = make(spec);
  run_ok(*a, batch{{prefill(1, 0, prompt(1, 10, spec.vocab))}});
  auto w = ring_writer::create(*a, 4096, 1);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(ring_writer::create(*a, 0, 1).err().code(), errc::invalid_argument);
  EXPECT_EQ(ring_writer::create(*a, 64, 0).err().code(), errc::invalid_argument);

  const index_range layers{0, 1}, tokens{0, 10};
  const std::uint64_t bytes = a->slice_bytes(layers, tokens);
  ASSERT_LT(bytes, 4096u);
  auto past = a->export_kv_to(w->data(), 4096 - bytes + 1, 1, layers, tokens);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.err().code(), errc::out_of_range);
  EXPECT_NE(past.err().what().find("run past the region"), std::string::npos) << past.err().what();
  EXPECT_EQ(a->export_kv_to(w->data(), 0, 99, layers, tokens).err().code(), errc::not_found);

  ring_reader r = reader_of(*b, *w);
  const kv_chunk header{
      .request = 1, .layers = layers, .tokens = tokens, .bytes = bytes, .data = {}};
  EXPECT_EQ(b->import_kv_from(r.data(), 4096, header).err().code(), errc::out_of_range);
  kv_chunk wrong = header;
  wrong.bytes = bytes - 4;  // a size that is not the slice's
  EXPECT_EQ(b->import_kv_from(r.data(), 0, wrong).err().code(), errc::invalid_argument);
  auto wraps = r.offset(4000, 200);
  ASSERT_FALSE(wraps.ok());
  EXPECT_EQ(wraps.err().code(), errc::out_of_range);

  // A control block that is not a ring's, or announces another capacity.
  auto data = w->data().share(), control = w->control().share();
  ASSERT_TRUE(data.ok() && control.ok());
  auto other =
      ring_reader::open(*b, region_kind::host, std::move(*data), std::move(*control), 8192);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.err().what().find("says 4096 bytes"), std::string::npos) << other.err().what();
  auto not_ring = host_region::create(ring_control_bytes, "x");
  ASSERT_TRUE(not_ring.ok());
  auto junk = ring_reader::open(*b, region_kind::host, w->data().share().value(),
                                (*not_ring)->share().value(), 4096);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.err().what().find("not a ring's"), std::string::npos) << junk.err().what();
  // The cpu backend reads host memory only; a peer claiming more bytes than
  // its file holds, or a descriptor that is no file, cannot map.
  auto cuda = b->open_shared(region_kind::cuda, w->data().share().value(), 4096);
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.err().code(), errc::unsupported);
  auto bigger = b->open_shared(region_kind::host, w->data().share().value(), 1 << 20);
  ASSERT_FALSE(bigger.ok());
  EXPECT_EQ(bigger.err().code(), errc::invalid_argument);
  EXPECT_NE(bigger.err().what().find("holds 4096 bytes"), std::string::npos) << bigger.err().what();
  std::array<int, 2> pipe_fds{};
  ASSERT_EQ(::pipe2(pipe_fds.data(), O_CLOEXEC), 0);
  unique_fd keep_write{pipe_fds[1]};
  auto pipe = b->open_shared(region_kind::host, unique_fd{pipe_fds[0]}, 4096);
  ASSERT_FALSE(pipe.ok());
  EXPECT_NE(pipe.err().what().find("not a memory file"), std::string::npos) << pipe.err().what();
  EXPECT_EQ(b->open_shared(region_kind::host, unique_fd{}, 4096).err().code(),
            errc::invalid_argument);
  EXPECT_EQ(host_region::create(0, "x").err().code(), errc::invalid_argument);
}

}  // namespace
}  // namespace accellm::device::cpu
