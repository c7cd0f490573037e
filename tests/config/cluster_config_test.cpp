#include "config/cluster_config.hpp"

#include "device/hardware_spec.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace accellm::config {
namespace {

using namespace std::chrono_literals;

// Parses `text` as "x.toml" and expects a config error whose message
// contains every one of `parts`.
void expect_error(std::string_view text, std::initializer_list<std::string_view> parts) {
  auto r = parse_cluster_config(text, "x.toml");
  ASSERT_FALSE(r.ok()) << "parsed: " << text;
  EXPECT_EQ(r.err().code(), errc::config) << r.err().what();
  for (std::string_view p : parts) {
    EXPECT_NE(r.err().message().find(p), std::string::npos)
        << "'" << p << "' not in: " << r.err().message();
  }
}

TEST(ClusterConfig, StructDefaults) {
  const cluster_config c;
  EXPECT_EQ(c.model, "llama2-70b");
  EXPECT_EQ(c.device, "sim:h100");
  EXPECT_EQ(c.tp, 8u);
  EXPECT_EQ(c.instances, 8u);
  EXPECT_EQ(c.batching.max_batch_tokens, 2048u);
  EXPECT_EQ(c.batching.max_batch_size, 512u);
  EXPECT_EQ(c.batching.block_tokens, 16u);
  EXPECT_EQ(c.batching.chunk_tokens, 512u);
  EXPECT_EQ(c.batching.decode_steps, 16u);
  EXPECT_EQ(c.policy.vllm, vllm_chunking::best);
  EXPECT_TRUE(c.policy.splitwise_prompt_instances.empty());
  EXPECT_EQ(c.policy.splitwise_prompt_max_pending_tokens, 8192u);
  EXPECT_TRUE(c.policy.accellm_sync_decode_kv);
  EXPECT_EQ(c.slo.ttft_ms, 0.0);
  EXPECT_EQ(c.slo.tbt_ms, 0.0);
}

TEST(ClusterConfig, EmptyFileTakesDefaultsAndHardwareFigures) {
  auto r = parse_cluster_config("", "dir/x.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  const cluster_config& c = *r;
  const device::hardware_spec& h100 = *device::find_hardware("h100");
  EXPECT_EQ(c.name, "x");
  EXPECT_EQ(c.source, "dir/x.toml");
  EXPECT_EQ(c.model, "llama2-70b");
  EXPECT_EQ(c.device, "sim:h100");
  EXPECT_EQ(c.tp, 8u);
  EXPECT_EQ(c.instances, 8u);
  EXPECT_DOUBLE_EQ(c.link.bandwidth, h100.inter_node.bandwidth);
  EXPECT_EQ(c.link.latency, h100.inter_node.latency);
  EXPECT_DOUBLE_EQ(c.price_per_hour, 8 * h100.price_per_hour);
  EXPECT_DOUBLE_EQ(c.power_watts, 8 * h100.tdp_watts);
  EXPECT_EQ(c.batching.max_batch_tokens, 2048u);
  EXPECT_EQ(c.policy.vllm, vllm_chunking::best);
  EXPECT_TRUE(c.policy.splitwise_prompt_instances.empty());
}

TEST(ClusterConfig, EveryFieldRoundTrips) {
  constexpr std::string_view text = R"(
[cluster]
name = "full"
model = "llama3-8b"
device = "sim:a100"
tp = 2
instances = 6
price_per_hour = 9.5
power_watts = 1234.5
[link]
bandwidth_gb_per_s = 12.5
latency_us = 3.5
[batching]
max_batch_tokens = 4096
max_batch_size = 256
block_tokens = 32
chunk_tokens = 1024
decode_steps = 1
[policy.vllm]
chunked = "off"
[policy.splitwise]
prompt_instances = [1, 3, 5]
prompt_max_pending_tokens = 4096
[policy.accellm]
sync_decode_kv = false
[slo]
ttft_ms = 500
tbt_ms = 50.5
)";
  auto r = parse_cluster_config(text, "full.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  const cluster_config& c = *r;
  EXPECT_EQ(c.name, "full");
  EXPECT_EQ(c.model, "llama3-8b");
  EXPECT_EQ(c.device, "sim:a100");
  EXPECT_EQ(c.tp, 2u);
  EXPECT_EQ(c.instances, 6u);
  EXPECT_DOUBLE_EQ(c.price_per_hour, 9.5);
  EXPECT_DOUBLE_EQ(c.power_watts, 1234.5);
  EXPECT_DOUBLE_EQ(c.link.bandwidth, 12.5e9);
  EXPECT_EQ(c.link.latency, 3500ns);
  EXPECT_EQ(c.batching.max_batch_tokens, 4096u);
  EXPECT_EQ(c.batching.max_batch_size, 256u);
  EXPECT_EQ(c.batching.block_tokens, 32u);
  EXPECT_EQ(c.batching.chunk_tokens, 1024u);
  EXPECT_EQ(c.batching.decode_steps, 1u);
  EXPECT_EQ(c.policy.vllm, vllm_chunking::off);
  EXPECT_EQ(c.policy.splitwise_prompt_instances, (std::vector<std::uint32_t>{1, 3, 5}));
  EXPECT_EQ(c.policy.splitwise_prompt_max_pending_tokens, 4096u);
  EXPECT_FALSE(c.policy.accellm_sync_decode_kv);
  EXPECT_DOUBLE_EQ(c.slo.ttft_ms, 500.0);
  EXPECT_DOUBLE_EQ(c.slo.tbt_ms, 50.5);
  EXPECT_EQ(c.source, "full.toml");
  EXPECT_EQ(sim_options_of(c).block_tokens, 32u);
  EXPECT_EQ(describe(c), "6 x sim:a100 tp2 llama3-8b, link 12.5 GB/s 3.5 us");
}

TEST(ClusterConfig, ChunkingNames) {
  for (vllm_chunking v : {vllm_chunking::best, vllm_chunking::on, vllm_chunking::off}) {
    const std::string text = "[policy.vllm]\nchunked = \"" + std::string{to_string(v)} + "\"\n";
    auto r = parse_cluster_config(text, "x.toml");
    ASSERT_TRUE(r.ok()) << r.err().what();
    EXPECT_EQ(r->policy.vllm, v);
  }
}

TEST(ClusterConfig, DescribeDefaults) {
  auto r = parse_cluster_config("", "x.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(describe(*r), "8 x sim:h100 tp8 llama2-70b, link 43.5 GB/s 10 us");
}

TEST(ClusterConfig, UnknownKeysAndTables) {
  expect_error("[cluster]\ntp = 8\ntpp = 8\n",
               {"x.toml:3:", "unknown key 'cluster.tpp'",
                "(known: name, model, device, tp, instances, price_per_hour, power_watts)"});
  expect_error("[cluster]\n[foo]\nx = 1\n", {"x.toml:2:", "unknown table 'foo'", "slo"});
  expect_error("tp = 8\n", {"x.toml:1:", "unknown key 'tp'"});
  expect_error("[policy.vllm]\nchunked = \"on\"\n[policy.orca]\n", {"unknown table 'policy.orca'"});
  expect_error("[link]\nbandwidth = 50\n", {"x.toml:2:", "unknown key 'link.bandwidth'"});
  expect_error("[slo]\nttft = 1\n", {"'slo.ttft'", "ttft_ms, tbt_ms"});
}

TEST(ClusterConfig, WrongTypes) {
  expect_error("[cluster]\n\ntp = \"8\"\n",
               {"x.toml:3:", "'cluster.tp' must be an integer, got string"});
  expect_error("cluster = 3\n", {"x.toml:1:", "'cluster' must be a table, got integer"});
  expect_error("[policy]\nvllm = \"on\"\n", {"'policy.vllm' must be a table, got string"});
  expect_error("[link]\nbandwidth_gb_per_s = \"fast\"\n",
               {"x.toml:2:", "'link.bandwidth_gb_per_s' must be a number, got string"});
  expect_error("[policy.accellm]\nsync_decode_kv = 1\n",
               {"'policy.accellm.sync_decode_kv' must be a boolean, got integer"});
  expect_error("[cluster]\nname = 7\n", {"'cluster.name' must be a string"});
  expect_error("[batching]\nmax_batch_tokens = 2048.0\n",
               {"'batching.max_batch_tokens' must be an integer, got floating-point"});
  expect_error("[policy.splitwise]\nprompt_instances = 2\n",
               {"'policy.splitwise.prompt_instances' must be an array of integers"});
  expect_error("[policy.splitwise]\nprompt_instances = [1, \"2\"]\n",
               {"x.toml:2:", "'policy.splitwise.prompt_instances[1]' must be an integer"});
}

TEST(ClusterConfig, OutOfRange) {
  expect_error("[cluster]\ntp = 0\n", {"x.toml:2:", "'cluster.tp'", "got 0"});
  expect_error("[cluster]\ntp = -1\n", {"'cluster.tp'", "got -1"});
  expect_error("[cluster]\ntp = 8589934592\n", {"'cluster.tp'", "got 8589934592"});
  expect_error("[cluster]\ninstances = 7\n", {"x.toml:2:", "'cluster.instances' must be even"});
  expect_error("[cluster]\ninstances = 1\n", {"'cluster.instances' must be between 2"});
  expect_error("[cluster]\nprice_per_hour = -1\n", {"'cluster.price_per_hour'", ">= 0"});
  expect_error("[batching]\nmax_batch_tokens = 0\n", {"'batching.max_batch_tokens'", "got 0"});
  expect_error("[batching]\nmax_batch_size = 0\n", {"'batching.max_batch_size'"});
  expect_error("[batching]\nblock_tokens = 0\n", {"'batching.block_tokens'"});
  expect_error("[batching]\ndecode_steps = 0\n", {"x.toml:2:", "'batching.decode_steps'", "got 0"});
  expect_error("[batching]\ndecode_steps = 65\n",
               {"x.toml:2:", "'batching.decode_steps' must be at most 64, got 65"});
  expect_error("[batching]\nmax_batch_tokens = 256\nchunk_tokens = 512\n",
               {"x.toml:3:", "'batching.chunk_tokens' must not exceed max_batch_tokens (256)"});
  expect_error("[link]\nbandwidth_gb_per_s = -5\n",
               {"x.toml:2:", "'link.bandwidth_gb_per_s' must be a finite number >= 0, got -5"});
  expect_error("[link]\nbandwidth_gb_per_s = 0\n", {"'link.bandwidth_gb_per_s' must be > 0"});
  expect_error("[link]\nlatency_us = -0.5\n", {"'link.latency_us'", "got -0.5"});
  expect_error("[slo]\nttft_ms = nan\n", {"'slo.ttft_ms' must be a finite number"});
  expect_error("[slo]\ntbt_ms = inf\n", {"'slo.tbt_ms' must be a finite number"});
  expect_error("[policy.vllm]\nchunked = \"maybe\"\n",
               {"x.toml:2:", "'policy.vllm.chunked' must be \"best\", \"on\" or \"off\""});
  expect_error("[policy.splitwise]\nprompt_max_pending_tokens = 0\n",
               {"'policy.splitwise.prompt_max_pending_tokens'"});
}

TEST(ClusterConfig, PromptPoolSizesInsideTheCluster) {
  expect_error("[cluster]\ninstances = 8\n[policy.splitwise]\nprompt_instances = [2,\n 8]\n",
               {"x.toml:5:", "'policy.splitwise.prompt_instances[1]'",
                "between 1 and instances - 1 = 7, got 8"});
  expect_error("[policy.splitwise]\nprompt_instances = [0]\n",
               {"'policy.splitwise.prompt_instances[0]'", "got 0"});
  expect_error("[policy.splitwise]\nprompt_instances = [3, 4, 3]\n",
               {"'policy.splitwise.prompt_instances[2]' repeats 3"});
  auto r = parse_cluster_config(
      "[cluster]\ninstances = 4\n[policy.splitwise]\nprompt_instances = "
      "[1, 2, 3]\n",
      "x.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
}

TEST(ClusterConfig, UnknownModelListsKnownOnes) {
  expect_error("[cluster]\nmodel = \"llama9\"\n",
               {"x.toml:2:", "'cluster.model'", "llama9", "llama2-70b", "llama3-8b"});
}

TEST(ClusterConfig, DeviceProblemsSurface) {
  expect_error("[cluster]\ndevice = \"sim:tpu\"\n",
               {"x.toml:2:", "'cluster.device'", "sim:tpu", "sim:h100", "sim:ascend910b2"});
  expect_error("[cluster]\ndevice = \"h100\"\n", {"'cluster.device' unknown device 'h100'"});
  // 70B in bf16 does not fit one 80 GB H100: the error names the device key.
  expect_error("[cluster]\ndevice = \"sim:h100\"\ntp = 1\n",
               {"x.toml:2:", "'cluster.device'", "at tp 1", "out_of_memory"});
  // Without a device key the tp key carries the blame.
  expect_error("[cluster]\ntp = 1\n", {"x.toml:2:", "'cluster.tp'", "out_of_memory"});
  expect_error("[cluster]\ntp = 16\n", {"'cluster.tp'", "at tp 16"});
}

TEST(ClusterConfig, SyntaxErrorsCarryLineAndColumn) {
  expect_error("[cluster]\ntp = [1,\n", {"x.toml:", "TOML syntax error"});
  expect_error("[cluster\n", {"x.toml:1:", "TOML syntax error"});
  expect_error("[cluster]\ntp = 8\ntp = 4\n", {"x.toml:3:", "TOML syntax error"});
}

TEST(ClusterConfig, EmptySourceNameStillNamesSomething) {
  auto r = parse_cluster_config("[cluster]\ntp = 0\n", "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message().find("<cluster config>:2:"), std::string::npos) << r.err().message();
}

class ClusterFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path{::testing::TempDir()} /
           ("accellm_config_" +
            std::string{::testing::UnitTest::GetInstance()->current_test_info()->name()});
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path write(const std::string& name, std::string_view text) const {
    const auto path = dir_ / name;
    std::ofstream{path} << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ClusterFile, LoadsAndNamesTheFile) {
  const auto path = write("pairs.toml", "[cluster]\ninstances = 4\n");
  auto r = load_cluster_config(path);
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->name, "pairs");
  EXPECT_EQ(r->source, path.string());
  EXPECT_EQ(r->instances, 4u);

  const auto bad = write("bad.toml", "[cluster]\ninstances = 3\n");
  auto e = load_cluster_config(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.err().code(), errc::config);
  EXPECT_NE(e.err().message().find(bad.string() + ":2:"), std::string::npos) << e.err().message();
}

TEST_F(ClusterFile, UnreadableIsAnIoFailure) {
  auto missing = load_cluster_config(dir_ / "absent.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code(), errc::io_failure);
  EXPECT_NE(missing.err().message().find("absent.toml"), std::string::npos);
  auto directory = load_cluster_config(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.err().code(), errc::io_failure);
}

TEST_F(ClusterFile, RelativeProfilePathIsRelativeToTheFile) {
  std::ifstream shipped{ACCELLM_SOURCE_DIR "/device/profiles/h100-splitwise2023.csv"};
  ASSERT_TRUE(shipped.good());
  std::ostringstream csv;
  csv << shipped.rdbuf();
  write("profile.csv", csv.str());
  const auto path = write("prof.toml", "[cluster]\ndevice = \"sim:file:profile.csv\"\ntp = 2\n");
  auto r = load_cluster_config(path);
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->device, "sim:file:" + (dir_ / "profile.csv").string());

  const auto broken = write("broken.toml", "[cluster]\ndevice = \"sim:file:nope.csv\"\n");
  auto e = load_cluster_config(broken);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().message().find("'cluster.device'"), std::string::npos) << e.err().message();
}

// The daemon tables: every key read, defaults where absent.
TEST(ClusterConfig, DaemonTablesRoundTrip) {
  constexpr std::string_view text = R"(
[cluster]
model = "cpu-tiny"
device = "cpu"
tp = 1
instances = 2
[coordinator]
host = "10.0.0.1"
port = 7700
http_host = "0.0.0.0"
http_port = 9090
policy = "splitwise"
http_threads = 4
request_timeout_s = 30
max_body_kib = 64
[worker]
host = "10.0.0.2"
kv_port = 7801
device = "sim:h100"
cpu_compute = "idle"
kv_ring_mib = 64
gpu_memory_fraction = 0.45
kv_window_mib = 16
kv_queue_mib = 256
kv_pinned_mib = 0
[cuda]
graphs = false
prefill_attention = "wgmma128"
skinny_gemm = false
cublaslt_split_k = false
programmatic_launch = false
decode_attention_tile = "64x2"
[security]
token = "s3cret"
tls = false
[network]
heartbeat_ms = 50
timeout_ms = 300
max_message_mib = 64
[log]
level = "debug"
)";
  auto r = parse_cluster_config(text, "d.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  const daemon_config& d = r->daemon;
  EXPECT_EQ(d.coordinator_host, "10.0.0.1");
  EXPECT_EQ(d.coordinator_port, 7700u);
  EXPECT_EQ(d.http_host, "0.0.0.0");
  EXPECT_EQ(d.http_port, 9090u);
  EXPECT_EQ(d.policy, "splitwise");
  EXPECT_EQ(d.http_threads, 4u);
  EXPECT_EQ(d.request_timeout_s, 30u);
  EXPECT_EQ(d.max_body_kib, 64u);
  EXPECT_EQ(d.worker_host, "10.0.0.2");
  EXPECT_EQ(d.worker_kv_port, 7801u);
  EXPECT_EQ(d.worker_device, "sim:h100");
  EXPECT_EQ(d.worker_cpu_compute, "idle");
  EXPECT_EQ(d.worker_kv_ring_mib, 64u);
  EXPECT_DOUBLE_EQ(d.worker_gpu_memory_fraction, 0.45);
  EXPECT_EQ(d.worker_kv_window_mib, 16u);
  EXPECT_EQ(d.worker_kv_queue_mib, 256u);
  EXPECT_EQ(d.worker_kv_pinned_mib, 0u);
  EXPECT_EQ(d.cuda, (cuda_config{.graphs = false,
                                 .prefill_attention = "wgmma128",
                                 .skinny_gemm = false,
                                 .cublaslt_split_k = false,
                                 .programmatic_launch = false,
                                 .decode_attention_tile = "64x2"}));
  EXPECT_EQ(d.token, "s3cret");
  EXPECT_FALSE(d.tls);
  EXPECT_EQ(d.heartbeat_ms, 50u);
  EXPECT_EQ(d.timeout_ms, 300u);
  EXPECT_EQ(d.max_message_mib, 64u);
  EXPECT_EQ(d.log_level, "debug");
  EXPECT_TRUE(is_real_device(r->device));
  const daemon_config defaults = parse_cluster_config("", "e.toml")->daemon;
  EXPECT_EQ(defaults.coordinator_port, 7600u);
  EXPECT_EQ(defaults.heartbeat_ms, 100u);
  EXPECT_EQ(defaults.timeout_ms, 500u);
  EXPECT_EQ(defaults.max_message_mib, 1025u);
  EXPECT_EQ(defaults.worker_cpu_compute, "normal");
  EXPECT_EQ(defaults.worker_kv_ring_mib, 256u);
  EXPECT_DOUBLE_EQ(defaults.worker_gpu_memory_fraction, 0.9);
  EXPECT_EQ(defaults.worker_kv_window_mib, 64u);
  EXPECT_EQ(defaults.worker_kv_queue_mib, 1024u);
  EXPECT_EQ(defaults.worker_kv_pinned_mib, 2432u);  // 2 x (64 + 1024 + 2 x 64)
  EXPECT_EQ(defaults.cuda, cuda_config{});
  EXPECT_TRUE(defaults.cuda.graphs && defaults.cuda.skinny_gemm && defaults.cuda.cublaslt_split_k &&
              defaults.cuda.programmatic_launch);
  EXPECT_EQ(defaults.cuda.prefill_attention, "timed");
  EXPECT_EQ(defaults.cuda.decode_attention_tile, "timed");
}

// Every name [cuda] admits is read back as written.
TEST(ClusterConfig, CudaTableTakesEveryKernelName) {
  for (std::string_view k : cuda_prefill_attention_kernels) {
    auto r =
        parse_cluster_config("[cuda]\nprefill_attention = \"" + std::string{k} + "\"\n", "c.toml");
    ASSERT_TRUE(r.ok()) << r.err().what();
    EXPECT_EQ(r->daemon.cuda.prefill_attention, k);
  }
  for (std::string_view t : cuda_decode_attention_tiles) {
    auto r = parse_cluster_config("[cuda]\ndecode_attention_tile = \"" + std::string{t} + "\"\n",
                                  "c.toml");
    ASSERT_TRUE(r.ok()) << r.err().what();
    EXPECT_EQ(r->daemon.cuda.decode_attention_tile, t);
  }
}

// Unset, the pinned pool follows the flow control's window and queue, so
// that the flow control, not a full pool, decides which copies go; set, it
// is what the file says, 0 included.
TEST(ClusterConfig, PinnedPoolFollowsTheFlowControlUnlessSet) {
  const auto small =
      parse_cluster_config("[worker]\nkv_window_mib = 16\nkv_queue_mib = 256\n", "p.toml");
  ASSERT_TRUE(small) << small.err().what();
  EXPECT_EQ(small->daemon.worker_kv_pinned_mib, 2u * (16 + 256 + 128));
  const auto huge = parse_cluster_config("[worker]\nkv_queue_mib = 65536\n", "p.toml");
  ASSERT_TRUE(huge) << huge.err().what();
  EXPECT_EQ(huge->daemon.worker_kv_pinned_mib, 65536u);  // the cap
  const auto set =
      parse_cluster_config("[worker]\nkv_queue_mib = 256\nkv_pinned_mib = 100\n", "p.toml");
  ASSERT_TRUE(set) << set.err().what();
  EXPECT_EQ(set->daemon.worker_kv_pinned_mib, 100u);
  const auto off = parse_cluster_config("[worker]\nkv_pinned_mib = 0\n", "p.toml");
  ASSERT_TRUE(off) << off.err().what();
  EXPECT_EQ(off->daemon.worker_kv_pinned_mib, 0u);
  EXPECT_EQ(default_kv_pinned_mib(64, 1024), daemon_config{}.worker_kv_pinned_mib);
}

TEST(ClusterConfig, DaemonTableErrorsNameTheKey) {
  expect_error("[coordinator]\npolicy = \"fifo\"\n", {"x.toml", "coordinator.policy", "fifo"});
  expect_error("[coordinator]\nport = 70000\n", {"coordinator.port", "70000"});
  expect_error("[worker]\nkv_port = 65536\n", {"worker.kv_port"});
  expect_error("[network]\nheartbeat_ms = 500\ntimeout_ms = 500\n",
               {"network.timeout_ms", "must exceed heartbeat_ms"});
  expect_error("[log]\nlevel = \"loud\"\n", {"log.level", "loud"});
  expect_error("[network]\nmax_message_mib = 4096\n", {"network.max_message_mib", "4096"});
  expect_error("[network]\nmax_message_mib = 0\n", {"network.max_message_mib"});
  expect_error("[worker]\ncpu_compute = \"realtime\"\n", {"worker.cpu_compute", "realtime"});
  expect_error("[worker]\nkv_ring_mib = 70000\n", {"worker.kv_ring_mib", "70000"});
  expect_error("[worker]\nkv_ring_mib = -1\n", {"worker.kv_ring_mib"});
  expect_error("[worker]\ngpu_memory_fraction = 0\n", {"worker.gpu_memory_fraction", "(0, 1]"});
  expect_error("[worker]\ngpu_memory_fraction = 1.5\n", {"worker.gpu_memory_fraction", "1.5"});
  expect_error("[worker]\ngpu_memory_fraction = \"all\"\n", {"worker.gpu_memory_fraction"});
  expect_error("[worker]\nkv_window_mib = 0\n", {"worker.kv_window_mib", "1..65536"});
  expect_error("[worker]\nkv_queue_mib = 100000\n", {"worker.kv_queue_mib", "100000"});
  expect_error("[worker]\nkv_queue_mib = \"lots\"\n", {"worker.kv_queue_mib"});
  expect_error("[worker]\nkv_pinned_mib = 65537\n", {"worker.kv_pinned_mib", "0..65536"});
  expect_error("[worker]\nkv_pinned_mib = -4\n", {"worker.kv_pinned_mib"});
  expect_error("[cuda]\nprefill_attention = \"flash\"\n",
               {"x.toml", "cuda.prefill_attention", "\"flash\"", "\"timed\", \"rows64\""});
  expect_error("[cuda]\ndecode_attention_tile = \"128x1\"\n",
               {"cuda.decode_attention_tile", "128x1", "\"64x2\""});
  expect_error("[cuda]\ndecode_attention_tile = 32\n", {"cuda.decode_attention_tile"});
  expect_error("[cuda]\ngraphs = \"yes\"\n", {"cuda.graphs"});
  expect_error("[cuda]\ncublaslt_split_k = 1\n", {"cuda.cublaslt_split_k"});
  expect_error("[cuda]\npdl = false\n", {"cuda.pdl", "programmatic_launch"});
  expect_error("cuda = 1\n", {"cuda"});
  expect_error("[security]\ntls = true\n", {"security.certificate", "required when tls = true"});
  expect_error("[security]\ntls = true\ncertificate = \"/nonexistent.pem\"\n",
               {"security.certificate", "/nonexistent.pem", "not a readable file"});
  expect_error("[coordinator]\nhttp_threads = 0\n", {"coordinator.http_threads"});
  expect_error("[gateway]\nport = 1\n", {"gateway"});
}

}  // namespace
}  // namespace accellm::config

namespace accellm::config {
namespace {

// [[faults]]: what `simulate` injects; checked like every other table.
TEST(ClusterConfig, FaultsAreReadInOrder) {
  auto r = parse_cluster_config(
      "[cluster]\ninstances = 4\n"
      "[[faults]]\nkind = \"kill\"\ninstance = 3\nat_s = 10\n"
      "[[faults]]\nkind = \"stop\"\ninstance = 0\nat_s = 2.5\n",
      "f.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  ASSERT_EQ(r->faults.size(), 2u);
  EXPECT_EQ(r->faults[0],
            (fault_config{.what = fault_config::kind::kill, .instance = 3, .at = 10s}));
  EXPECT_EQ(r->faults[1],
            (fault_config{.what = fault_config::kind::stop, .instance = 0, .at = 2500ms}));
  EXPECT_TRUE(parse_cluster_config("", "x.toml")->faults.empty());
}

TEST(ClusterConfig, BadFaultsNameTheEntryAndTheProblem) {
  const std::string four = "[cluster]\ninstances = 4\n";
  expect_error(four + "[[faults]]\nkind = \"crash\"\ninstance = 1\nat_s = 1\n",
               {"x.toml:4:", "'faults[0].kind'", "\"kill\" or \"stop\"", "'crash'"});
  expect_error(four + "[[faults]]\nkind = \"kill\"\nat_s = 1\n",
               {"'faults[0].instance' is missing"});
  expect_error(four + "[[faults]]\nkind = \"kill\"\ninstance = 1\n",
               {"'faults[0].at_s' is missing"});
  expect_error(four + "[[faults]]\nkind = \"kill\"\ninstance = 1\nat_s = -3\n",
               {"'faults[0].at_s'", ">= 0"});
  expect_error(four + "[[faults]]\nkind = \"kill\"\ninstance = 4\nat_s = 1\n",
               {"'faults[0]'", "instance 4, outside the cluster (4 instances)"});
  expect_error(four + "[[faults]]\nkind = \"kill\"\ninstance = 1\nat_s = 1\n" +
                   "[[faults]]\nkind = \"stop\"\ninstance = 1\nat_s = 2\n",
               {"'faults[1]'", "fails instance 1 again"});
  expect_error(four + "[[faults]]\nkind = \"kill\"\ninstance = 1\nat_s = 1\nwhen = 3\n",
               {"unknown key 'faults[0].when'"});
  expect_error("faults = 3\n" + four, {"'faults' must be [[faults]] tables"});
}

}  // namespace
}  // namespace accellm::config
