// device/cuda start-up checks. Every test that needs a GPU skips cleanly
// without one (cudaGetDeviceCount fails or reports 0); the probe itself must
// work everywhere.
#include "device/cuda/runtime.hpp"

#include "device/cuda/device_query.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/programmatic.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace accellm::device::cuda {
namespace {

#define ACCELLM_REQUIRE_GPU()                                          \
  do {                                                                 \
    auto s_ = probe();                                                 \
    if (!s_.usable()) GTEST_SKIP() << "no CUDA device: " << s_.reason; \
  } while (false)

// No GPU needed: the setting is a per-thread flag.
TEST(programmatic_launch, is_off_unless_a_scope_on_this_thread_turns_it_on) {
  EXPECT_FALSE(programmatic_launch());
  {
    const programmatic_launch_scope on(true);
    EXPECT_TRUE(programmatic_launch());
    bool elsewhere = true;
    std::thread([&] { elsewhere = programmatic_launch(); }).join();
    EXPECT_FALSE(elsewhere);  // another thread's launches stay plain
    {
      const programmatic_launch_scope off(false);
      EXPECT_FALSE(programmatic_launch());
    }
    EXPECT_TRUE(programmatic_launch());  // the inner scope restored it
  }
  EXPECT_FALSE(programmatic_launch());
}

TEST(programmatic_launch, works_on_compute_capability_9_and_is_refused_before) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  const status works = programmatic_launch_works(s->get());
  if (major >= 9) {
    EXPECT_TRUE(works.ok()) << works.err().what();
  } else {
    ASSERT_FALSE(works.ok());
    EXPECT_EQ(works.err().code(), errc::invalid_argument);
  }
  EXPECT_FALSE(programmatic_launch());  // its own scope is gone
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(cuda_probe, answers_with_or_without_a_gpu) {
  auto s = probe();
  EXPECT_GE(s.runtime_version, 13000);
  if (s.usable()) {
    EXPECT_TRUE(s.reason.empty());
    EXPECT_GT(s.driver_version, 0);
  } else {
    EXPECT_FALSE(s.reason.empty());
    auto devices = query_devices();
    ASSERT_FALSE(devices.ok());
    EXPECT_EQ(devices.err().code(), errc::device_failure);
  }
}

TEST(cuda_check, errors_name_the_call_and_the_cause) {
  auto e = cuda_error(cudaErrorMemoryAllocation, "cudaMalloc(&p, n)", "/src/device/cuda/x.cu", 7);
  EXPECT_EQ(e.code(), errc::out_of_memory);
  EXPECT_NE(e.message().find("cudaMalloc(&p, n) failed at x.cu:7"), std::string::npos)
      << e.message();
  EXPECT_NE(e.message().find("cudaErrorMemoryAllocation"), std::string::npos) << e.message();
  auto b = cublas_error(CUBLAS_STATUS_NOT_INITIALIZED, "cublasCreate(&h)", "y.cpp", 3);
  EXPECT_EQ(b.code(), errc::device_failure);
  EXPECT_NE(b.message().find("CUBLAS_STATUS_NOT_INITIALIZED"), std::string::npos) << b.message();
}

TEST(cuda_query, reports_sane_device_properties) {
  ACCELLM_REQUIRE_GPU();
  auto devices = query_devices();
  ASSERT_TRUE(devices.ok()) << devices.err().what();
  ASSERT_FALSE(devices->empty());
  for (const auto& g : *devices) {
    EXPECT_FALSE(g.name.empty());
    EXPECT_GT(g.sm_count, 0);
    EXPECT_GT(g.total_memory, 0u);
    EXPECT_LE(g.free_memory, g.total_memory);
  }
}

TEST(cuda_fill_uniform, matches_the_host_reference) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok()) << s.err().what();
  constexpr std::size_t n = 100'003;  // not a multiple of the block size
  auto buf = device_buffer<float>::allocate(n);
  ASSERT_TRUE(buf.ok()) << buf.err().what();
  ASSERT_TRUE(fill_uniform(buf->data(), n, 1234, 0.02f, s->get()).ok());
  std::vector<float> host(n);
  ASSERT_TRUE(buf->download(host.data(), s->get()).ok());
  ASSERT_TRUE(s->synchronize().ok());
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_NEAR(host[i], uniform_value(1234, i, 0.02f), 1e-7f) << "element " << i;
}

TEST(cuda_cublas, sgemm_matches_a_cpu_reference) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok()) << s.err().what();
  auto h = cublas_handle::create(s->get());
  ASSERT_TRUE(h.ok()) << h.err().what();
  constexpr int m = 33, n = 17, k = 65;  // column-major: C(m,n) = A(m,k) * B(k,n)
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = uniform_value(1, i, 1.0f);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = uniform_value(2, i, 1.0f);
  auto da = device_buffer<float>::allocate(a.size());
  auto db = device_buffer<float>::allocate(b.size());
  auto dc = device_buffer<float>::allocate(c.size());
  ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
  ASSERT_TRUE(da->upload(a.data(), s->get()).ok());
  ASSERT_TRUE(db->upload(b.data(), s->get()).ok());
  const float one = 1.0f, zero = 0.0f;
  ASSERT_EQ(cublasSgemm(h->get(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, da->data(), m,
                        db->data(), k, &zero, dc->data(), m),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_TRUE(dc->download(c.data(), s->get()).ok());
  ASSERT_TRUE(s->synchronize().ok());
  for (int col = 0; col < n; ++col)
    for (int row = 0; row < m; ++row) {
      double ref = 0;
      for (int i = 0; i < k; ++i) ref += double(a[row + i * m]) * b[i + col * k];
      // fp32 with k = 65 terms of magnitude <= 1; TF32 is off by default in cuBLAS sgemm.
      ASSERT_NEAR(c[row + col * m], ref, 1e-4) << "C(" << row << "," << col << ")";
    }
}

}  // namespace
}  // namespace accellm::device::cuda
