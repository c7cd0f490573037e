// A live cluster in separate processes on loopback (issue 5's invariant):
// a coordinator and four `cpu` workers serve 200 requests, every request
// completes, and with greedy decoding each request's tokens equal those of
// the same request run alone on one in-process cpu instance.
#include "daemon/load_driver.hpp"

#include "actors/system_config.hpp"
#include "actors/transport.hpp"
#include "device/cpu/cpu_backend.hpp"
#include "tests/daemon/daemon_fixture.hpp"
#include "tests/support/documented_metrics.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

namespace accellm::daemon::test {
namespace {

// `spec` alone on a fresh cpu instance: prefill, then greedy decode steps.
std::vector<token_id> alone(device::backend& b, request_id id, const load_request& r) {
  using device::batch_item;
  std::vector<token_id> out;
  auto first = b.run({{batch_item{.request = id,
                                  .kind = device::phase::prefill,
                                  .context = 0,
                                  .num_tokens = static_cast<std::uint32_t>(r.prompt.size()),
                                  .tokens = r.prompt,
                                  .wants_output = true}}});
  if (!first) return {};
  out.push_back(first->next_tokens[0]);
  for (std::uint32_t k = 1; k < r.spec.output_tokens; ++k) {
    auto step = b.run({{batch_item{.request = id,
                                   .kind = device::phase::decode,
                                   .context = static_cast<std::uint32_t>(r.prompt.size()) + k - 1,
                                   .num_tokens = 1,
                                   .tokens = {out.back()},
                                   .wants_output = true}}});
    if (!step) return {};
    out.push_back(step->next_tokens[0]);
  }
  b.release(id);
  return out;
}

// Where `got` first departs from `want` (gtest prints only 32 elements of
// each), and at which context position: what a takeover's logs are read for.
std::string divergence(const load_request& r, const std::vector<token_id>& got,
                       const std::vector<token_id>& want) {
  const auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  if (g == got.end() && w == want.end()) return "same tokens";
  const auto index = static_cast<std::size_t>(g - got.begin());
  std::ostringstream o;
  o << "first difference at output " << index << " of " << got.size() << " (want " << want.size()
    << "), context position " << r.prompt.size() + index << ": got "
    << (g == got.end() ? std::string{"nothing"} : std::to_string(*g)) << ", want "
    << (w == want.end() ? std::string{"nothing"} : std::to_string(*w));
  return o.str();
}

// The requests of a test: 8..64 prompt tokens, 2..max_output output tokens.
struct load_shape {
  std::chrono::milliseconds spacing{10};  ///< between arrivals
  std::uint32_t max_output = 24;
};

// 200 requests, one every shape.spacing (2 s by default).
std::vector<load_request> workload_of(std::uint64_t seed, load_shape shape = {}) {
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<std::uint32_t> prompt{8, 64}, output{2, shape.max_output};
  workload::trace t;
  for (request_id i = 1; i <= 200; ++i) {
    t.push_back({.id = i,
                 .arrival = shape.spacing * static_cast<std::int64_t>(i),
                 .prompt_tokens = prompt(rng),
                 .output_tokens = output(rng)});
  }
  return with_prompts(t, seed);
}

// Drives the 200 requests through the coordinator at host:port (ids from
// `id_base`); every one completes with the tokens of one cpu instance alone.
void drive_and_compare(const std::string& host, std::uint16_t port, request_id id_base,
                       const actors::transport_options& t = {}, std::size_t n = 200,
                       load_shape shape = {}) {
  const std::uint64_t seed = 5;
  SCOPED_TRACE("workload seed " + std::to_string(seed));
  auto requests = workload_of(seed, shape);
  requests.resize(std::min(n, requests.size()));
  load_outcome out;
  {
    actors::system_config cfg;
    ASSERT_TRUE(actors::apply(t, cfg).ok());
    caf::actor_system sys{cfg};
    auto c = actors::connect(sys, host, port, t);
    ASSERT_TRUE(c.ok()) << c.err().what();
    auto r = drive(sys, *c, requests, id_base, std::chrono::seconds{120});
    ASSERT_TRUE(r.ok()) << r.err().what();
    out = std::move(*r);
  }
  EXPECT_TRUE(out.drained) << out.finished << " of " << requests.size() << " ended";
  auto ref =
      device::cpu::make_cpu_backend(*device::find_model("cpu-tiny"),
                                    {.seed = 1, .kv_blocks = 64, .block_tokens = 16, .clock = {}});
  ASSERT_TRUE(ref.ok());
  std::size_t equal = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(out.record.requests[i].completed) << "request " << i + 1 << ": " << out.errors[i];
    const auto want = alone(**ref, 1, requests[i]);
    ASSERT_EQ(want.size(), requests[i].spec.output_tokens);
    EXPECT_EQ(out.tokens[i], want)
        << "request " << i + 1 << ": " << divergence(requests[i], out.tokens[i], want);
    equal += out.tokens[i] == want;
  }
  EXPECT_EQ(equal, requests.size());
}

// The sum of a metric family's samples on the coordinator's /metrics.
double metric_sum(const std::string& host, std::uint16_t http, const std::string& family) {
  httplib::Client cli{host, http};
  auto res = cli.Get("/metrics");
  if (!res) return -1;
  double sum = 0;
  std::istringstream in{res->body};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(family, 0) != 0) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A coordinator and four cpu workers as processes on loopback; `security`
// is appended to the cluster file's [security] table, `worker` to its
// [worker] table.
class live_cluster {
 public:
  explicit live_cluster(const std::string& policy, const std::string& security = {},
                        const std::string& worker = {}) {
    std::string text = local_cluster("s3cret", policy);
    text.insert(text.find("[log]"), security);
    text.insert(text.find("[security]"), worker);
    const fs::path config = dir_.write("cluster.toml", text);
    coord_ = start_coordinator(dir_.path(), config);
    if (coord_.caf_port == 0) return;
    for (int i = 0; i < 4; ++i) {
      workers_.push_back(start_worker(dir_.path(), coord_.at(), "w" + std::to_string(i), config));
    }
    up_ = await_instances(coord_.http_port, 4, 30s);
  }
  /// Stops every process; each must exit 0, but a killed worker. A stopped
  /// one is resumed first: it finds itself cut off, drops its state and
  /// joins again as a new instance (fencing), with the same process.
  void stop() {
    for (const auto& [i, sig] : signalled_) {
      if (sig != SIGSTOP) continue;
      const std::string name = "'w" + std::to_string(i) + "'";
      kill(workers_[i]->pid(), SIGCONT);
      EXPECT_TRUE(await_instances(coord_.http_port, 4, 30s))
          << "the resumed worker did not join again\n"
          << coord_.proc->log() << workers_[i]->log();
      EXPECT_NE(
          workers_[i]->log().find("dropping this instance's state and joining the cluster again"),
          std::string::npos)
          << workers_[i]->log();
      // The coordinator counts the join before the worker hears of it.
      EXPECT_TRUE(workers_[i]->await_log("joined as instance 4", 5s)) << workers_[i]->log();
      EXPECT_TRUE(coord_.proc->await_log("instance 4 " + name + " joined", 5s))
          << coord_.proc->log();
    }
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      const auto sig = signalled_.find(i);
      if (sig == signalled_.end() || sig->second == SIGSTOP) {
        EXPECT_EQ(workers_[i]->stop(), 0) << workers_[i]->log();
      }
    }
    EXPECT_EQ(coord_.proc->stop(), 0) << coord_.proc->log();
  }
  /// Sends worker `i` SIGKILL or SIGSTOP (from any one thread at a time).
  void signal_worker(std::size_t i, int sig) {
    signalled_[i] = sig;
    kill(workers_.at(i)->pid(), sig);
  }
  bool up() const { return up_; }
  /// Two workers (indexes) the coordinator paired, from its join lines
  /// ("instance 3 'w2' joined: ... partner 2"); {0, 0} when none is found.
  std::pair<std::size_t, std::size_t> a_pair() const {
    std::map<std::string, std::size_t> by_id;                   // instance id -> worker index
    std::vector<std::pair<std::size_t, std::string>> partners;  // worker index, partner id
    std::istringstream in{coord_.proc->log()};
    for (std::string line; std::getline(in, line);) {
      const auto at = line.find("instance ");
      const auto name = line.find(" 'w", at);
      const auto joined = line.find("' joined: ", name);
      if (at == std::string::npos || name == std::string::npos || joined == std::string::npos) {
        continue;
      }
      const std::string id = line.substr(at + 9, name - at - 9);
      const std::size_t worker = std::stoul(line.substr(name + 3, joined - name - 3));
      by_id[id] = worker;
      if (const auto p = line.rfind(", partner "); p != std::string::npos) {
        partners.emplace_back(worker, line.substr(p + 10));
      }
    }
    for (const auto& [worker, partner] : partners) {
      if (const auto it = by_id.find(partner); it != by_id.end()) return {worker, it->second};
    }
    return {0, 0};
  }
  /// The coordinator's log, then every worker's.
  std::string log() const {
    std::string out = coord_.proc->log();
    for (const auto& w : workers_) out += w->log();
    return out;
  }
  std::uint16_t caf_port() const { return coord_.caf_port; }
  std::uint16_t http_port() const { return coord_.http_port; }
  std::string at() const { return coord_.at(); }
  const temp_dir& dir() const { return dir_; }

 private:
  temp_dir dir_;
  coordinator_child coord_;
  std::vector<std::unique_ptr<child>> workers_;
  std::map<std::size_t, int> signalled_;  ///< worker -> signal sent
  bool up_ = false;
};

// /metrics of a cluster that served requests holds every metric
// docs/operations.md lists, each with its # TYPE line, and no accellm_ metric
// the page does not list.
void expect_documented_metrics(std::uint16_t http) {
  const std::set<std::string> promised = accellm::test::documented_metrics(ACCELLM_SOURCE_DIR);
  ASSERT_GE(promised.size(), 10u) << "docs/operations.md's metrics table was not found";
  httplib::Client cli{"127.0.0.1", http};
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res && res->status == 200);
  std::set<std::string> served;
  std::istringstream in{res->body};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE accellm_", 0) != 0) continue;
    const std::string name = line.substr(7, line.find(' ', 7) - 7);
    served.insert(name);
  }
  for (const std::string& name : promised) {
    EXPECT_EQ(served.count(name), 1u) << name << " is in docs/operations.md but not on /metrics";
  }
  for (const std::string& name : served) {
    EXPECT_EQ(promised.count(name), 1u) << name << " is on /metrics but not in docs/operations.md";
  }
}

void serve_and_compare(const std::string& policy) {
  live_cluster c{policy};
  ASSERT_TRUE(c.up()) << c.log();
  drive_and_compare("127.0.0.1", c.caf_port(), 1000);
  EXPECT_FALSE(::testing::Test::HasFailure()) << c.log();
  // The KV crossed processes: every prompt's copy went to another instance.
  EXPECT_GT(metric_sum("127.0.0.1", c.http_port(), "accellm_instance_kv_sent_bytes_total"), 0.0);
  // The workers share a node: partners' rows went through shared rings.
  EXPECT_GT(metric_sum("127.0.0.1", c.http_port(), "accellm_instance_kv_shared_bytes_total"), 0.0);
  EXPECT_EQ(metric_sum("127.0.0.1", c.http_port(), "accellm_requests_submitted_total"), 200.0);
  EXPECT_EQ(metric_sum("127.0.0.1", c.http_port(), "accellm_requests_finished_total"), 200.0);
  expect_documented_metrics(c.http_port());
  c.stop();
}

TEST(LiveCluster, AccellmServesTwoHundredRequestsLikeOneInstance) {
  serve_and_compare("accellm");
}

TEST(LiveCluster, SplitwiseServesTwoHundredRequestsLikeOneInstance) {
  serve_and_compare("splitwise");
}

// Issue 6: a worker SIGKILLed (dies) or SIGSTOPped (hangs) at a random
// moment under load loses no request. Each of its requests goes on from the
// copy its partner holds (or, with no token yet, from its prompt), and every
// request ends with the tokens one instance computes alone: none repeated,
// none skipped. (200 requests 2 ms apart with up to 256 output tokens:
// dozens are in flight when it goes.) A hung worker is noticed in under a
// second; resumed, it finds itself cut off and joins again as a new
// instance, in the same process (c.stop() checks that).
// With `worker` config, e.g. no same-node rings: every KV row then crosses
// CAF, through the flow control (each window opened by the partner's KvAck).
void lose_a_worker_under_load(int sig, bool whole_pair = false, const std::string& worker = {}) {
  live_cluster c{"accellm", {}, worker};
  ASSERT_TRUE(c.up()) << c.log();
  const auto seed = static_cast<unsigned>(std::random_device{}());
  std::mt19937 rng{seed};
  const auto delay = std::chrono::milliseconds{100 + rng() % 300};
  std::size_t victim = rng() % 4;
  std::size_t partner = victim;
  if (whole_pair) {
    std::tie(victim, partner) = c.a_pair();
    ASSERT_NE(victim, partner) << "no pair in the coordinator's log\n" << c.log();
  }
  SCOPED_TRACE("seed " + std::to_string(seed) + ": signal " + std::to_string(sig) + " to w" +
               std::to_string(victim) + (whole_pair ? " and w" + std::to_string(partner) : "") +
               " after " + std::to_string(delay.count()) + " ms");
  // After the delay, once the victim is decoding (bounded wait), so that the
  // signal always catches requests in flight; then until /health drops it.
  std::chrono::milliseconds noticed{-1};
  std::thread killer{[&] {
    std::this_thread::sleep_for(delay);
    const std::string busy =
        "accellm_instance_batch_decode_requests{instance=\"w" + std::to_string(victim) + "\"}";
    const auto give_up = std::chrono::steady_clock::now() + 3s;
    while (metric_sum("127.0.0.1", c.http_port(), busy) <= 0 &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(2ms);
    }
    const auto sent = std::chrono::steady_clock::now();
    c.signal_worker(victim, sig);
    if (whole_pair) c.signal_worker(partner, sig);
    if (await_instances(c.http_port(), whole_pair ? 2 : 3, 5s)) {
      noticed = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - sent);
    }
  }};
  drive_and_compare("127.0.0.1", c.caf_port(), 1000, {}, 200,
                    {.spacing = std::chrono::milliseconds{2}, .max_output = 256});
  killer.join();
  EXPECT_FALSE(::testing::Test::HasFailure()) << c.log();
  EXPECT_GE(noticed.count(), 0) << "the coordinator never dropped the victim";
  EXPECT_LT(noticed, 1s) << "a hung worker is noticed in under a second";
  const std::string takeovers = "accellm_takeovers_total{resumed_from=";
  const double replica = metric_sum("127.0.0.1", c.http_port(), takeovers + "\"replica\"}");
  const double recompute = metric_sum("127.0.0.1", c.http_port(), takeovers + "\"recompute\"}");
  const double prompt = metric_sum("127.0.0.1", c.http_port(), takeovers + "\"prompt\"}");
  if (whole_pair) {  // no copy survives: everything is computed again elsewhere
    EXPECT_GT(recompute + prompt, 0.0) << "the pair held no request when it went";
  } else {
    EXPECT_GT(replica + prompt, 0.0) << "the victim held no request when it went";
    EXPECT_EQ(recompute, 0.0) << "every decoding request had its partner's copy";
  }
  if (!worker.empty()) {
    EXPECT_GT(metric_sum("127.0.0.1", c.http_port(), "accellm_instance_kv_sent_bytes_total"), 0.0);
    EXPECT_EQ(metric_sum("127.0.0.1", c.http_port(), "accellm_instance_kv_shared_bytes_total"), 0.0)
        << "no rings: every row went over the network";
  }
  const double resumed =
      metric_sum("127.0.0.1", c.http_port(), "accellm_takeover_resume_seconds_count");
  const double resume_s =
      metric_sum("127.0.0.1", c.http_port(), "accellm_takeover_resume_seconds_sum");
  const double mean_ms = resumed > 0 ? 1000 * resume_s / resumed : 0.0;
  ::testing::Test::RecordProperty("takeovers_from_replica", std::to_string(replica));
  ::testing::Test::RecordProperty("takeovers_from_prompt", std::to_string(prompt));
  ::testing::Test::RecordProperty("noticed_ms", std::to_string(noticed.count()));
  ::testing::Test::RecordProperty("mean_resume_ms", std::to_string(mean_ms));
  std::printf(
      "signal %d to w%zu%s after %lld ms: noticed after %lld ms; %.0f resumed from the replica, "
      "%.0f recomputed, %.0f from the prompt, mean %.1f ms from takeover to the next token\n",
      sig, victim, whole_pair ? (" and w" + std::to_string(partner)).c_str() : "",
      static_cast<long long>(delay.count()), static_cast<long long>(noticed.count()), replica,
      recompute, prompt, mean_ms);
  c.stop();
}

TEST(LiveCluster, AKilledWorkerLosesNoRequest) {
  lose_a_worker_under_load(SIGKILL);
}

// The same with every KV row over the network, under the smallest window
// (1 MiB: dozens of cpu-tiny's messages).
TEST(LiveCluster, AKilledWorkerLosesNoRequestWithKvOverTheNetwork) {
  lose_a_worker_under_load(SIGKILL, false, "kv_ring_mib = 0\nkv_window_mib = 1\n");
}

// Both members of a pair at once: no copy is left, so their requests are
// computed again (prompt and tokens so far) on the other pair, and still end
// with the tokens of one instance alone.
TEST(LiveCluster, KillingAWholePairLosesNoRequest) {
  lose_a_worker_under_load(SIGKILL, true);
}

TEST(LiveCluster, AStoppedWorkerIsNoticedInUnderASecondAndLosesNoRequest) {
  lose_a_worker_under_load(SIGSTOP);
}

// A cluster started elsewhere (tests/integration/netns_cluster.sh: one
// coordinator host and four worker hosts in network namespaces) serves the
// same 200 requests with the same tokens.
TEST(External, ServesTwoHundredRequestsLikeOneInstance) {
  const char* at = std::getenv("ACCELLM_EXTERNAL_COORDINATOR");
  if (at == nullptr || *at == '\0') GTEST_SKIP() << "ACCELLM_EXTERNAL_COORDINATOR is not set";
  auto ep = actors::parse_endpoint(at);
  ASSERT_TRUE(ep.ok()) << ep.err().what();
  drive_and_compare(ep->host, ep->port, 5000);
  if (const char* http = std::getenv("ACCELLM_EXTERNAL_HTTP"); http != nullptr && *http != '\0') {
    auto web = actors::parse_endpoint(http);
    ASSERT_TRUE(web.ok()) << web.err().what();
    EXPECT_GT(metric_sum(web->host, web->port, "accellm_instance_kv_sent_bytes_total"), 0.0);
  }
}

// The netns script cuts a worker's host off the network while this runs
// (accellm chaos partition), and heals it: every request still completes
// with the tokens of one instance alone, each token once. 200 requests 20 ms
// apart with up to 128 output tokens keep every worker busy for seconds.
TEST(External, LosesNoRequestWhileAWorkerIsCutOff) {
  const char* at = std::getenv("ACCELLM_EXTERNAL_COORDINATOR");
  if (at == nullptr || *at == '\0') GTEST_SKIP() << "ACCELLM_EXTERNAL_COORDINATOR is not set";
  auto ep = actors::parse_endpoint(at);
  ASSERT_TRUE(ep.ok()) << ep.err().what();
  drive_and_compare(ep->host, ep->port, 9000, {}, 200,
                    {.spacing = std::chrono::milliseconds{20}, .max_output = 128});
}

// HTTP clients of the same cluster get the tokens one instance computes
// for the prompt's bytes, whole or streamed as server-sent events, and a
// stop token ends the output where it first appears.
TEST(LiveCluster, HttpClientsGetTheTokensOfOneInstance) {
  live_cluster c{"accellm"};
  ASSERT_TRUE(c.up()) << c.log();
  const std::string text = "The pair holds a second copy of every KV cache.";
  load_request r{.spec = {.id = 1, .arrival = {}, .prompt_tokens = 0, .output_tokens = 12},
                 .prompt = {text.begin(), text.end()}};
  auto ref =
      device::cpu::make_cpu_backend(*device::find_model("cpu-tiny"),
                                    {.seed = 1, .kv_blocks = 64, .block_tokens = 16, .clock = {}});
  ASSERT_TRUE(ref.ok());
  const auto want = alone(**ref, 1, r);
  httplib::Client cli{"127.0.0.1", c.http_port()};
  cli.set_read_timeout(30, 0);
  const std::string body = nlohmann::json{{"prompt", text}, {"max_tokens", 12}}.dump();
  auto whole = cli.Post("/v1/requests", body, "application/json");
  ASSERT_TRUE(whole) << c.log();
  ASSERT_EQ(whole->status, 200) << whole->body;
  EXPECT_EQ(nlohmann::json::parse(whole->body).at("tokens").get<std::vector<token_id>>(), want);

  auto streamed = cli.Post(
      "/v1/requests", nlohmann::json{{"prompt", text}, {"max_tokens", 12}, {"stream", true}}.dump(),
      "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  std::vector<token_id> got;
  std::istringstream events{streamed->body};
  bool done = false;
  for (std::string line; std::getline(events, line);) {
    if (line.rfind("data: ", 0) != 0) continue;
    if (line == "data: [DONE]") {
      done = true;
      continue;
    }
    const auto ev = nlohmann::json::parse(line.substr(6));
    if (ev.contains("tokens") && !ev.contains("status")) {
      for (const auto& t : ev.at("tokens")) got.push_back(t.get<token_id>());
    }
  }
  EXPECT_TRUE(done) << streamed->body;
  EXPECT_EQ(got, want) << streamed->body;

  // With one of those tokens as a stop token the output ends right after its
  // first appearance, as finish_reason "stop".
  ASSERT_EQ(want.size(), 12u);
  const token_id stop = want[4];
  const auto end = std::find(want.begin(), want.end(), stop) + 1;
  auto stopped =
      cli.Post("/v1/requests",
               nlohmann::json{{"prompt", text}, {"max_tokens", 12}, {"stop_tokens", {stop}}}.dump(),
               "application/json");
  ASSERT_TRUE(stopped);
  ASSERT_EQ(stopped->status, 200) << stopped->body;
  const auto j = nlohmann::json::parse(stopped->body);
  EXPECT_EQ(j.at("tokens").get<std::vector<token_id>>(), std::vector<token_id>(want.begin(), end));
  EXPECT_EQ(j.at("finish_reason"), "stop") << stopped->body;
  c.stop();
}

// A CA and one certificate all nodes use, made with the openssl CLI; false
// (and the reason in `why`) when that fails.
bool make_certs(const fs::path& dir, std::string& why) {
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  const std::string script =
      "cd " + dir.string() + " && openssl req -x509" + ec +
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=accellm-test-ca && openssl req" + ec +
      "-keyout node.key -out node.csr -subj /CN=node && openssl x509 -req -in node.csr -CA "
      "ca.pem -CAkey ca.key -CAcreateserial -days 2 -out node.pem";
  const std::string log = (dir / "openssl.log").string();
  if (std::system(("(" + script + ") >" + log + " 2>&1").c_str()) == 0) return true;
  std::ifstream in{log};
  why = std::string{std::istreambuf_iterator<char>{in}, {}};
  return false;
}

// [security] tls = true: every connection (workers to the coordinator and to
// their partners, load drivers to the coordinator) runs inside TLS. The
// cluster serves as before, also while clients come and go (each drive is a
// client connecting and leaving), and a node without TLS cannot join.
TEST(LiveCluster, TlsBetweenNodes) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
  temp_dir certs;
  std::string why;
  ASSERT_TRUE(make_certs(certs.path(), why)) << why;
  actors::transport_options t;
  t.tls = true;
  t.certificate = (certs.path() / "node.pem").string();
  t.key = (certs.path() / "node.key").string();
  t.ca_file = (certs.path() / "ca.pem").string();
  live_cluster c{"accellm", "tls = true\ncertificate = \"" + t.certificate + "\"\nkey = \"" +
                                t.key + "\"\nca = \"" + t.ca_file + "\"\n"};
  ASSERT_TRUE(c.up()) << c.log();
  for (request_id base : {1000, 2000, 3000})
    drive_and_compare("127.0.0.1", c.caf_port(), base, t, 40);
  EXPECT_FALSE(::testing::Test::HasFailure()) << c.log();
  EXPECT_GT(metric_sum("127.0.0.1", c.http_port(), "accellm_instance_kv_sent_bytes_total"), 0.0);
  // A plain worker cannot even connect.
  const auto plain = c.dir().write("plain.toml", local_cluster("s3cret"));
  auto w = start_worker(c.dir().path(), c.at(), "plain", plain, {"--connect-wait", "1"});
  EXPECT_EQ(w->wait(30s), 1) << w->log();
  EXPECT_NE(w->log().find("cannot reach the coordinator"), std::string::npos) << w->log();
  EXPECT_EQ(health_instances(c.http_port()), 4);
  c.stop();
}

TEST(LiveCluster, AWorkerWithAWrongTokenIsRefusedAndChangesNothing) {
  temp_dir dir;
  const auto config = dir.write("cluster.toml", local_cluster("right"));
  auto coord = start_coordinator(dir.path(), config);
  ASSERT_NE(coord.caf_port, 0) << coord.proc->log();
  auto wrong =
      start_worker(dir.path(), coord.at(), "w0", config, {}, {"ACCELLM_CLUSTER_TOKEN=wrong"});
  EXPECT_EQ(wrong->wait(30s), 1) << wrong->log();
  EXPECT_NE(wrong->log().find("refused"), std::string::npos) << wrong->log();
  const std::string log = coord.proc->log();
  EXPECT_NE(log.find("refused worker 'w0'"), std::string::npos) << log;
  EXPECT_NE(log.find("wrong cluster token"), std::string::npos) << log;
  EXPECT_EQ(health_instances(coord.http_port), 0);
  // The right token still joins afterwards.
  auto right = start_worker(dir.path(), coord.at(), "w0", config);
  EXPECT_TRUE(await_instances(coord.http_port, 1, 30s)) << right->log();
  EXPECT_EQ(right->stop(), 0);
  EXPECT_EQ(coord.proc->stop(), 0);
}

}  // namespace
}  // namespace accellm::daemon::test
