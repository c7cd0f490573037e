#include "workload/metrics/writers.hpp"

#include "workload/metrics/detail/number_format.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>

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
  std::string idle;
  if (makespan > nanos::zero()) {
    const double busy = static_cast<double>(i.busy.count()) / static_cast<double>(makespan.count());
    idle = fixed(std::clamp(1.0 - busy, 0.0, 1.0), 4);
  }
  return std::to_string(i.id) + ',' + csv_field(i.name) + ',' + csv_field(i.pool) + ',' +
         seconds(i.busy) + ',' + idle + ',' + seconds(i.time_in_role[0]) + ',' +
         seconds(i.time_in_role[1]) + ',' + seconds(i.time_in_role[2]) + ',' +
         std::to_string(i.iterations) + ',' + std::to_string(i.kv_bytes_sent) + ',' +
         std::to_string(peak_primary) + ',' + std::to_string(peak_replica) + ',' +
         std::to_string(i.total_blocks) + ',' + std::to_string(i.replicas_evicted) + ',' +
         std::to_string(i.preemptions) + ',' + std::to_string(i.rejected_messages) + '\n';
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

}  // namespace accellm::metrics
