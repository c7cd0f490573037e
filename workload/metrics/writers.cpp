#include "workload/metrics/writers.hpp"

#include "workload/metrics/detail/number_format.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>

namespace accellm::metrics {
namespace {

using detail::csv_field;
using detail::fixed;

std::string seconds(nanos d) {
  return fixed(std::chrono::duration<double>(d).count(), 6);
}
std::string millis(nanos d) {
  return fixed(std::chrono::duration<double, std::milli>(d).count(), 3);
}
std::string instance(instance_id i) {
  return i == no_instance ? "" : std::to_string(i);
}

// The whole file is built in memory first, so a failed write leaves no
// half-formatted row behind a successful status.
status write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return fail(errc::io_failure, "cannot open " + path.string() + " for writing");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return fail(errc::io_failure, "cannot write " + path.string());
  return {};
}

std::string request_row(const request_record& r) {
  const std::size_t tokens = output_tokens(r);
  std::string ttft, tpot, max_tbt, jct;
  if (r.first_token != never) ttft = millis(r.first_token - r.arrival);
  if (finished(r)) {
    jct = millis(r.finish - r.arrival);
    if (tokens > 1 && r.first_token != never) {
      tpot = fixed(std::chrono::duration<double, std::milli>(r.finish - r.first_token).count() /
                       static_cast<double>(tokens - 1),
                   3);
    }
  }
  nanos gap_max{-1};
  for (std::size_t i = 1; i < r.token_times.size(); ++i) {
    gap_max = std::max(gap_max, r.token_times[i] - r.token_times[i - 1]);
  }
  if (gap_max >= nanos::zero()) max_tbt = millis(gap_max);
  std::string row = std::to_string(r.id) + ',' + std::to_string(r.prompt_tokens) + ',' +
                    std::to_string(r.max_tokens) + ',' + std::to_string(tokens) + ',' +
                    seconds(r.arrival) + ',' + ttft + ',' + tpot + ',' + max_tbt + ',' + jct + ',' +
                    instance(r.prefill_instance) + ',' + instance(r.decode_instance) + ',' +
                    std::to_string(r.moves) + ',' + std::to_string(r.preemptions) + ',' +
                    (r.completed ? "1" : "0") + '\n';
  return row;
}

std::string instance_row(const instance_record& i, nanos makespan) {
  std::uint64_t peak_primary = 0, peak_replica = 0;
  for (const memory_sample& m : i.memory) {
    peak_primary = std::max(peak_primary, m.primary_blocks);
    peak_replica = std::max(peak_replica, m.replica_blocks);
  }
  // Iterations without busy time: the recorder could not time them (a live
  // run against a coordinator whose /metrics has no busy counter), so both
  // fields stay empty rather than claiming 100% idle.
  const bool timed = i.busy > nanos::zero() || i.iterations == 0;
  std::string idle;
  if (timed && makespan > nanos::zero()) {
    const double busy = static_cast<double>(i.busy.count()) / static_cast<double>(makespan.count());
    idle = fixed(std::clamp(1.0 - busy, 0.0, 1.0), 4);
  }
  return std::to_string(i.id) + ',' + csv_field(i.name) + ',' + csv_field(i.pool) + ',' +
         (timed ? seconds(i.busy) : std::string{}) + ',' + idle + ',' + seconds(i.time_in_role[0]) +
         ',' + seconds(i.time_in_role[1]) + ',' + seconds(i.time_in_role[2]) + ',' +
         std::to_string(i.iterations) + ',' + std::to_string(i.kv_bytes_sent) + ',' +
         std::to_string(peak_primary) + ',' + std::to_string(peak_replica) + ',' +
         std::to_string(i.total_blocks) + ',' + std::to_string(i.replicas_evicted) + ',' +
         std::to_string(i.preemptions) + ',' + std::to_string(i.rejected_messages) + '\n';
}

// The TBT bin of a gap and its lower edge (see tbt_bins_per_decade); -1 is
// [0, 0.001) ms.
constexpr double tbt_first_edge_ms = 0.001;
double tbt_edge_ms(int bin) {
  return bin < 0 ? 0.0 : tbt_first_edge_ms * std::pow(10.0, bin / double{tbt_bins_per_decade});
}
int tbt_bin(nanos gap) {
  const double ms = std::chrono::duration<double, std::milli>(gap).count();
  if (ms < tbt_first_edge_ms) return -1;
  auto bin = static_cast<int>(std::floor(tbt_bins_per_decade * std::log10(ms / tbt_first_edge_ms)));
  // log10 may land a hair off at an exact edge; the edges decide.
  if (ms < tbt_edge_ms(bin)) --bin;
  if (ms >= tbt_edge_ms(bin + 1)) ++bin;
  return bin;
}

}  // namespace

status write_requests_csv(const std::filesystem::path& path, const run_record& run) {
  std::string text =
      "id,prompt_tokens,max_tokens,output_tokens,arrival_s,ttft_ms,tpot_ms,max_tbt_ms,jct_ms,"
      "prefill_instance,decode_instance,moves,preemptions,completed\n";
  for (const request_record& r : run.requests) text += request_row(r);
  return write_file(path, text);
}

status write_instances_csv(const std::filesystem::path& path, const run_record& run) {
  std::string text =
      "id,name,pool,busy_s,idle_fraction,prefill_s,decode_s,mixed_s,iterations,kv_bytes_sent,"
      "peak_primary_blocks,peak_replica_blocks,total_blocks,replicas_evicted,preemptions,"
      "rejected_messages\n";
  for (const instance_record& i : run.instances) text += instance_row(i, run.makespan);
  return write_file(path, text);
}

status write_memory_csv(const std::filesystem::path& path, const run_record& run) {
  std::string text = "time_s,instance,primary_blocks,replica_blocks\n";
  for (const instance_record& i : run.instances) {
    for (const memory_sample& m : i.memory) {
      text += seconds(m.time) + ',' + std::to_string(i.id) + ',' +
              std::to_string(m.primary_blocks) + ',' + std::to_string(m.replica_blocks) + '\n';
    }
  }
  return write_file(path, text);
}

status write_roles_csv(const std::filesystem::path& path, const run_record& run) {
  std::string text = "instance,start_s,end_s,role,pool\n";
  for (const instance_record& i : run.instances) {
    for (const role_span& r : i.roles) {
      text += std::to_string(i.id) + ',' + seconds(r.start) + ',' + seconds(r.end) + ',' +
              std::string{messages::to_string(r.role)} + ',' + csv_field(r.pool) + '\n';
    }
  }
  return write_file(path, text);
}

status write_utilisation_csv(const std::filesystem::path& path, const run_record& run) {
  std::string text = "instance,start_s,end_s,busy_fraction\n";
  const nanos w = run.busy_window;
  if (w <= nanos::zero()) return write_file(path, text);
  for (const instance_record& i : run.instances) {
    for (nanos start{0}; start < run.makespan; start += w) {
      const auto k = static_cast<std::size_t>(start / w);
      const nanos busy = k < i.busy_windows.size() ? i.busy_windows[k] : nanos::zero();
      const nanos end = std::min(start + w, run.makespan);
      const double fraction =
          static_cast<double>(busy.count()) / static_cast<double>((end - start).count());
      text += std::to_string(i.id) + ',' + seconds(start) + ',' + seconds(end) + ',' +
              fixed(std::clamp(fraction, 0.0, 1.0), 4) + '\n';
    }
  }
  return write_file(path, text);
}

status write_tbt_histogram_csv(const std::filesystem::path& path, const run_record& run) {
  std::map<int, std::uint64_t> bins;
  for (const request_record& r : run.requests) {
    for (std::size_t k = 1; k < r.token_times.size(); ++k) {
      ++bins[tbt_bin(r.token_times[k] - r.token_times[k - 1])];
    }
  }
  std::string text = "lo_ms,hi_ms,count\n";
  for (const auto& [bin, count] : bins) {
    text += fixed(tbt_edge_ms(bin), 6) + ',' + fixed(tbt_edge_ms(bin + 1), 6) + ',' +
            std::to_string(count) + '\n';
  }
  return write_file(path, text);
}

}  // namespace accellm::metrics
