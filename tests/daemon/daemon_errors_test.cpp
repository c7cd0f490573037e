// Bad input at the daemons' boundaries: each ends the process with a
// message naming the problem and a non-zero exit (2: configuration or
// flags, 1: run time); a stop signal ends it cleanly with 0.
#include "tests/daemon/daemon_fixture.hpp"
#include "tests/support/raw_basp.hpp"
#include "workload/report/results.hpp"

#include <algorithm>

namespace accellm::daemon::test {
namespace {

// Runs `accellm ARGS...` to its end; returns its exit code and stderr.
std::pair<std::optional<int>, std::string> run(const temp_dir& dir, std::vector<std::string> args,
                                               std::vector<std::string> env = {}) {
  child c{dir.path() / "run.log", std::move(args), std::move(env)};
  auto code = c.wait(30s);
  return {code, c.log()};
}

void expect_failure(const std::pair<std::optional<int>, std::string>& r, int code,
                    std::initializer_list<std::string_view> parts) {
  EXPECT_EQ(r.first, code) << r.second;
  for (auto p : parts)
    EXPECT_NE(r.second.find(p), std::string::npos) << "'" << p << "' not in:\n" << r.second;
}

TEST(DaemonErrors, CoordinatorWithAMissingConfigFile) {
  temp_dir dir;
  expect_failure(run(dir, {"coordinator", "--config", (dir.path() / "nope.toml").string()}), 2,
                 {"nope.toml"});
}

TEST(DaemonErrors, CoordinatorWithAnUnknownKey) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t") + "[network]\nheartbeat = 5\n");
  expect_failure(run(dir, {"coordinator", "--config", f.string()}), 2,
                 {"c.toml", "network.heartbeat"});
}

TEST(DaemonErrors, CoordinatorWithAWrongType) {
  temp_dir dir;
  auto text = local_cluster("t");
  text.replace(text.find("port = 0"), 8, "port = \"seven\"");
  const auto f = dir.write("c.toml", text);
  expect_failure(run(dir, {"coordinator", "--config", f.string()}), 2,
                 {"c.toml", "coordinator.port"});
}

TEST(DaemonErrors, CoordinatorWithAnAddressItCannotListenOn) {
  temp_dir dir;
  auto text = local_cluster("t");
  text.replace(text.find("host = \"127.0.0.1\""), 18, "host = \"256.1.2.3\"");
  const auto f = dir.write("c.toml", text);
  expect_failure(run(dir, {"coordinator", "--config", f.string()}), 1, {"256.1.2.3"});
}

TEST(DaemonErrors, CoordinatorWithoutAToken) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster(""));
  expect_failure(run(dir, {"coordinator", "--config", f.string()}), 2, {"no cluster token"});
}

TEST(DaemonErrors, WorkerWithABadCoordinatorAddress) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  expect_failure(run(dir, {"worker", "--coordinator", "localhost", "--instance", "w0", "--config",
                           f.string()}),
                 2, {"--coordinator"});
}

TEST(DaemonErrors, WorkerWithAnAddressPartnersCannotReach) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  expect_failure(run(dir, {"worker", "--coordinator", "127.0.0.1:1", "--instance", "w0", "--host",
                           "0.0.0.0", "--config", f.string()}),
                 2, {"0.0.0.0", "not an address partners can reach"});
}

TEST(DaemonErrors, WorkerWithAnUnknownDevice) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  expect_failure(run(dir, {"worker", "--coordinator", "127.0.0.1:1", "--instance", "w0", "--device",
                           "tpu:0", "--config", f.string()}),
                 2, {"tpu:0"});
}

// [cuda] reaches a cuda:N worker's backend: a decode attention tile that
// cpu-tiny's head_dim (16) lacks is refused by the backend before it looks
// for a GPU, so this runs without one. A build without CUDA refuses cuda:0.
TEST(DaemonErrors, WorkerWithACudaKernelTheModelLacks) {
  temp_dir dir;
  const auto f =
      dir.write("c.toml", local_cluster("t") + "[cuda]\ndecode_attention_tile = \"16x4\"\n");
  const auto r = run(dir, {"worker", "--coordinator", "127.0.0.1:1", "--instance", "w0", "--device",
                           "cuda:0", "--config", f.string()});
#ifdef ACCELLM_HAVE_CUDA
  expect_failure(r, 2, {"cuda:0", "decode attention tile 16x4 needs head_dim 64 or 128"});
#else
  expect_failure(r, 2, {"cuda:0", "built without CUDA"});
#endif
}

TEST(DaemonErrors, WorkerThatCannotReachTheCoordinator) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  // Port 1 on loopback: nothing listens there.
  expect_failure(run(dir, {"worker", "--coordinator", "127.0.0.1:1", "--instance", "w0",
                           "--connect-wait", "1", "--config", f.string()}),
                 1, {"cannot reach the coordinator at 127.0.0.1:1"});
}

// A second worker under a live instance's name is refused (errc::in_use,
// which only a rejoining worker retries) and changes nothing.
TEST(DaemonErrors, AWorkerNamedLikeALiveInstanceIsRefused) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  auto coord = start_coordinator(dir.path(), f);
  ASSERT_NE(coord.caf_port, 0) << coord.proc->log();
  auto first = start_worker(dir.path(), coord.at(), "w0", f);
  ASSERT_TRUE(await_instances(coord.http_port, 1, 30s)) << first->log();
  child second{dir.path() / "second.log",
               {"worker", "--coordinator", coord.at(), "--instance", "w0", "--config", f.string()}};
  EXPECT_EQ(second.wait(30s), 1) << second.log();
  EXPECT_NE(second.log().find("refused: an instance named 'w0' is already live"), std::string::npos)
      << second.log();
  EXPECT_EQ(second.log().find("retrying"), std::string::npos) << "a first join is not retried";
  EXPECT_EQ(health_instances(coord.http_port), 1);
  EXPECT_EQ(first->stop(), 0) << first->log();
  EXPECT_EQ(coord.proc->stop(), 0) << coord.proc->log();
}

// `accellm up` starts the coordinator and the workers, drives a workload
// through them, writes the outputs and stops every child: exit 0 only when
// every request completed.
TEST(Launcher, UpDrivesAWorkloadThroughALocalClusterAndStopsIt) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  const auto out = dir.path() / "out";
  child up{dir.path() / "up.log",
           {"up", "--config", f.string(), "--workload", "conv", "--rate", "10", "--duration", "2",
            "--max-prompt", "64", "--out", out.string()}};
  EXPECT_EQ(up.wait(120s), 0) << up.log();
  // The outputs `accellm report` reads, the instances from the
  // coordinator's /metrics, and the report itself.
  auto read = report::read_results(out);
  ASSERT_TRUE(read) << read.err().what() << "\n" << up.log();
  const report::run_data& run = read->rates.at(0).runs.at(0);
  EXPECT_EQ(run.policy, "accellm");
  EXPECT_EQ(run.setting, "live");
  EXPECT_GE(run.ttft_ms.size(), 5u) << "the requests";
  EXPECT_EQ(run.instances.size(), 4u) << "w0..w3, scraped from /metrics";
  EXPECT_TRUE(run.has_roles);
  for (const auto& i : run.instances) EXPECT_FALSE(i.roles.empty()) << i.name;
  // Utilisation from accellm_instance_busy_seconds_total: some worker was
  // busy in some window, none more than all of it.
  EXPECT_TRUE(run.has_utilisation);
  double peak = 0;
  for (const auto& i : run.instances) {
    for (const auto& b : i.busy) peak = std::max(peak, b.fraction);
  }
  EXPECT_GT(peak, 0.0) << "no instance was ever busy";
  EXPECT_LE(peak, 1.0);
  EXPECT_TRUE(fs::exists(out / "report.html")) << up.log();
  EXPECT_NE(up.log().find("report: " + (out / "report.html").string()), std::string::npos);
  // Nothing it started is left running.
  // (The bracket keeps pgrep from matching the shell that runs it.)
  const std::string running = "pgrep -f '[w]orker --coordinator .*" + f.string() + "' >/dev/null";
  EXPECT_NE(std::system(running.c_str()), 0);
}

// `accellm chaos` against a cluster `accellm up` started, through the
// manifest up writes: a stopped worker is noticed, a resumed one joins again
// as a new instance (fencing, same process), a killed one is gone; a second
// kill finds nothing to kill. up removes the manifest when it ends.
TEST(Launcher, ChaosStopsResumesAndKillsTheWorkersOfAnUpCluster) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  const auto manifest = dir.path() / "cluster.manifest.toml";
  child up{dir.path() / "up.log",
           {"up", "--config", f.string(), "--workers", "2", "--manifest", manifest.string()}};
  std::uint16_t http = 0;
  const std::string marker = "HTTP http://127.0.0.1:";
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (http == 0 && std::chrono::steady_clock::now() < give_up && !up.wait(50ms)) {
    const std::string log = up.log();
    if (const auto at = log.find(marker); at != std::string::npos) {
      http = static_cast<std::uint16_t>(std::stoi(log.substr(at + marker.size())));
    }
  }
  ASSERT_NE(http, 0) << up.log();
  ASSERT_TRUE(fs::exists(manifest)) << up.log();
  int run = 0;
  auto chaos = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "chaos");
    args.insert(args.end(), {"--manifest", manifest.string()});
    child c{dir.path() / ("chaos" + std::to_string(++run) + ".log"), args};
    const auto code = c.wait(30s);
    return std::pair{code.value_or(-100), c.log()};
  };
  auto [code, out] = chaos({"stop", "w1"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("chaos: stopped w1 (pid "), std::string::npos) << out;
  EXPECT_TRUE(await_instances(http, 1, 5s)) << "the stopped worker was not noticed";
  std::tie(code, out) = chaos({"resume", "w1"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(await_instances(http, 2, 30s)) << "the resumed worker did not join again";
  std::tie(code, out) = chaos({"kill", "w0"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("chaos: killed w0 (pid "), std::string::npos) << out;
  EXPECT_TRUE(await_instances(http, 1, 5s)) << "the killed worker was not noticed";
  std::tie(code, out) = chaos({"kill", "w0"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("w0 (pid "), std::string::npos) << out;
  EXPECT_EQ(up.stop(), 0) << up.log();
  EXPECT_FALSE(fs::exists(manifest)) << "up left its manifest behind";
}

// `accellm load --out` against a running cluster: with --metrics its files
// have the instances and no report with --no-report; without, the report is
// written with notes for the instances it could not see.
TEST(Launcher, LoadWritesTheReportsOutputsWithAndWithoutMetrics) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  auto coord = start_coordinator(dir.path(), f);
  ASSERT_NE(coord.caf_port, 0) << coord.proc->log();
  auto w0 = start_worker(dir.path(), coord.at(), "w0", f);
  auto w1 = start_worker(dir.path(), coord.at(), "w1", f);
  ASSERT_TRUE(await_instances(coord.http_port, 2, 30s)) << w0->log() << w1->log();
  const std::vector<std::string> load{"load",     "--coordinator", coord.at(), "--config",
                                      f.string(), "--workload",    "conv",     "--rate",
                                      "8",        "--duration",    "1.5",      "--max-prompt",
                                      "64"};
  const std::string metrics = "http://127.0.0.1:" + std::to_string(coord.http_port) + "/metrics";
  auto with = load;
  with.insert(with.end(),
              {"--out", (dir.path() / "with").string(), "--metrics", metrics, "--no-report"});
  child a{dir.path() / "with.log", with};
  ASSERT_EQ(a.wait(90s), 0) << a.log();
  EXPECT_FALSE(fs::exists(dir.path() / "with" / "report.html")) << "--no-report";
  auto r1 = report::read_results(dir.path() / "with");
  ASSERT_TRUE(r1) << r1.err().what();
  EXPECT_EQ(r1->rates.at(0).runs.at(0).instances.size(), 2u);
  EXPECT_TRUE(r1->rates.at(0).runs.at(0).has_roles);

  auto without = load;
  without.insert(without.end(), {"--out", (dir.path() / "without").string()});
  child b{dir.path() / "without.log", without};
  ASSERT_EQ(b.wait(90s), 0) << b.log();
  std::ifstream page{dir.path() / "without" / "report.html"};
  const std::string html{std::istreambuf_iterator<char>{page}, {}};
  EXPECT_NE(html.find("<h1>accellm load report</h1>"), std::string::npos) << b.log();
  EXPECT_NE(html.find("no per-instance data in these outputs"), std::string::npos);
  EXPECT_EQ(w0->stop(), 0) << w0->log();
  EXPECT_EQ(w1->stop(), 0) << w1->log();
  EXPECT_EQ(coord.proc->stop(), 0) << coord.proc->log();
}

// A load driver whose coordinator goes away stops at once (exit 1), naming
// why, instead of waiting out its drain time.
TEST(DaemonErrors, LoadStopsWhenTheCoordinatorGoesAway) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  auto coord = start_coordinator(dir.path(), f);
  ASSERT_NE(coord.caf_port, 0) << coord.proc->log();
  auto w = start_worker(dir.path(), coord.at(), "w0", f, {"--connect-wait", "2"});
  ASSERT_TRUE(await_instances(coord.http_port, 1, 30s)) << w->log();
  child load{dir.path() / "load.log",
             {"load", "--coordinator", coord.at(), "--workload", "conv", "--rate", "5",
              "--duration", "60"}};
  std::this_thread::sleep_for(1s);
  kill(coord.proc->pid(), SIGKILL);
  EXPECT_EQ(load.wait(10s), 1) << load.log();
  EXPECT_NE(load.log().find("lost the coordinator"), std::string::npos) << load.log();
  // The worker tries to join again, for its --connect-wait, then leaves too.
  EXPECT_EQ(w->wait(10s), 1) << w->log();
  EXPECT_NE(w->log().find("joining the cluster again"), std::string::npos) << w->log();
  EXPECT_NE(w->log().find("cannot reach the coordinator"), std::string::npos) << w->log();
}

// A worker SIGKILLed under `accellm load`: its requests go on on the other
// worker, and load reports every request ended, none failed.
TEST(DaemonErrors, AKilledWorkersRequestsGoOnElsewhere) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  auto coord = start_coordinator(dir.path(), f);
  ASSERT_NE(coord.caf_port, 0) << coord.proc->log();
  std::vector<std::unique_ptr<child>> workers;
  for (const char* name : {"w0", "w1"})
    workers.push_back(start_worker(dir.path(), coord.at(), name, f));
  ASSERT_TRUE(await_instances(coord.http_port, 2, 30s)) << coord.proc->log();
  child load{dir.path() / "load.log",
             {"load", "--coordinator", coord.at(), "--workload", "conv", "--rate", "40",
              "--duration", "3", "--max-output", "64"}};
  std::this_thread::sleep_for(1s);
  kill(workers[0]->pid(), SIGKILL);
  EXPECT_EQ(load.wait(90s), 0) << load.log() << coord.proc->log();
  // "N of M requests ended, F failed": all ended, none failed.
  std::size_t ended = 0, total = 0, failed = 0;
  const std::string text = load.log();
  const auto line = text.find(" requests ended, ");
  ASSERT_NE(line, std::string::npos) << text;
  const auto start = text.rfind('\n', line) + 1;
  ASSERT_EQ(std::sscanf(text.c_str() + start, "%zu of %zu requests ended, %zu failed", &ended,
                        &total, &failed),
            3)
      << text.substr(start, 80);
  EXPECT_EQ(ended, total);
  EXPECT_EQ(failed, 0u);
  const std::string log = coord.proc->log();
  EXPECT_NE(log.find("'w0' lost"), std::string::npos) << log;
  EXPECT_EQ(health_instances(coord.http_port), 1);
  EXPECT_EQ(workers[1]->stop(), 0) << workers[1]->log();
  EXPECT_EQ(coord.proc->stop(), 0) << coord.proc->log();
}

// A frame over [network] max_message_mib closes its own connection before
// anything is allocated; the daemon logs it and goes on serving.
TEST(DaemonErrors, AnOversizedFrameClosesOnlyItsConnection) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t") + "[network]\nmax_message_mib = 16\n");
  auto coord = start_coordinator(dir.path(), f);
  ASSERT_NE(coord.caf_port, 0) << coord.proc->log();
  auto w0 = start_worker(dir.path(), coord.at(), "w0", f);
  ASSERT_TRUE(await_instances(coord.http_port, 1, 30s)) << coord.proc->log();
  EXPECT_TRUE(testing::closes_after_header(coord.caf_port,
                                           caf::io::basp::message_type::direct_message, 2u << 30));
  const std::string log = coord.proc->log();
  EXPECT_NE(log.find("closing a connection: a BASP frame (direct_message) announces 2147483648 "
                     "bytes, over the limit of 65536 before the handshake"),
            std::string::npos)
      << log;
  auto w1 = start_worker(dir.path(), coord.at(), "w1", f);
  EXPECT_TRUE(await_instances(coord.http_port, 2, 30s)) << coord.proc->log();
  EXPECT_EQ(w1->stop(), 0) << w1->log();
  EXPECT_EQ(w0->stop(), 0) << w0->log();
  EXPECT_EQ(coord.proc->stop(), 0) << coord.proc->log();
}

TEST(DaemonErrors, SigintStopsTheCoordinatorCleanly) {
  temp_dir dir;
  const auto f = dir.write("c.toml", local_cluster("t"));
  auto c = start_coordinator(dir.path(), f);
  ASSERT_NE(c.caf_port, 0) << c.proc->log();
  kill(c.proc->pid(), SIGINT);
  EXPECT_EQ(c.proc->wait(10s), 0) << c.proc->log();
  EXPECT_NE(c.proc->log().find("stopping (SIGINT)"), std::string::npos) << c.proc->log();
}

}  // namespace
}  // namespace accellm::daemon::test
