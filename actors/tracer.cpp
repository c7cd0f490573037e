#include "actors/tracer.hpp"

#include "messages/codec.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>

namespace accellm::actors {

namespace {

using messages::trace_event;
using messages::trace_kind;

std::uint64_t nanos(duration d) {
  const auto n = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return n > 0 ? static_cast<std::uint64_t>(n) : 0;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// Rows of one KV message: the modelled or real payload plus a small envelope.
template <class Rows>
std::uint64_t kv_bytes(const Rows& rows) {
  std::uint64_t total = 0;
  for (const auto& r : rows) total += std::max<std::uint64_t>(r.size_bytes, r.data.size()) + 64;
  return total;
}

// The wire size of a packed message: its encoding, except that KV payloads are
// counted, not copied (on simulated devices they are only sizes).
std::uint64_t wire_size(const messages::any_message& m) {
  if (const auto* k = std::get_if<messages::kv_layer>(&m)) return kv_bytes(std::span{k, 1});
  if (const auto* k = std::get_if<messages::kv_delta>(&m)) return kv_bytes(std::span{k, 1});
  if (const auto* k = std::get_if<messages::kv_delta_batch>(&m)) return kv_bytes(k->rows) + 64;
  return messages::encode(m).bytes.size();
}

// The one request a message concerns; 0 for none or a batch of several.
template <class List, class Id>
request_id only(const List& list, Id id) {
  return list.size() == 1 ? id(list.front()) : 0;
}

request_id request_of(const messages::any_message& m) {
  return std::visit(
      [](const auto& v) -> request_id {
        using T = std::decay_t<decltype(v)>;
        if constexpr (requires { v.request; }) {
          return v.request;
        } else if constexpr (std::is_same_v<T, messages::execute>) {
          return only(v.items, [](const auto& i) { return i.request; });
        } else if constexpr (std::is_same_v<T, messages::kv_delta_batch>) {
          return only(v.rows, [](const auto& r) { return r.request; });
        } else if constexpr (std::is_same_v<T, messages::iteration_report>) {
          return only(v.runs, [](const auto& r) { return r.request; });
        } else if constexpr (std::is_same_v<T, messages::evict_replica>) {
          return only(v.requests, [](auto r) { return r; });
        } else {
          return 0;
        }
      },
      m);
}

// What the envelope alone does not say: why a decode starts or moves, the
// role a SetRole gives, why replicas go, how a request ended.
std::string note_of(const messages::any_message& m) {
  if (const auto* v = std::get_if<messages::start_decode>(&m)) {
    return v->takeover ? "takeover" : v->from_replica ? "from_replica" : "";
  }
  if (const auto* v = std::get_if<messages::move_decode>(&m))
    return std::string{to_string(v->reason)};
  if (const auto* v = std::get_if<messages::set_role>(&m)) {
    return std::string{to_string(v->role)} + (v->fenced ? " fenced" : "");
  }
  if (const auto* v = std::get_if<messages::evict_replica>(&m)) {
    return std::string{to_string(v->reason)};
  }
  if (const auto* v = std::get_if<messages::request_done>(&m)) {
    return std::string{to_string(v->status)};
  }
  return {};
}

// A record about the log itself: its kind, this node, a note.
trace_event log_record(trace_kind kind, const std::string& node, std::string note) {
  trace_event e;
  e.kind = kind;
  e.sender_node = node;
  e.note = std::move(note);
  return e;
}

trace_event to_event(tracer::pending& p) {
  trace_event e{.epoch = p.epoch,
                .time_ns = p.time_ns,
                .kind = p.kind,
                .sender = std::move(p.sender),
                .receiver = std::move(p.receiver),
                .sender_node = std::move(p.sender_node),
                .receiver_node = std::move(p.receiver_node),
                .message_type = p.blob.type,
                .bytes = p.wire_bytes,
                .request = 0,
                .duration_ns = p.duration_ns,
                .prefill_tokens = p.prefill_tokens,
                .decode_requests = p.decode_requests,
                .role = p.role,
                .instance = p.instance,
                .peer_time_ns = p.peer_time_ns,
                .note = {},
                .dropped = 0};
  if (p.blob.local) {
    const auto& m = p.blob.local->message;
    e.bytes = wire_size(m);
    e.request = request_of(m);
    e.note = note_of(m);
    e.epoch = std::visit(
        [](const auto& v) -> epoch_t {
          if constexpr (requires { v.epoch; }) {
            return v.epoch;
          } else {
            return 0;
          }
        },
        m);
  }
  return e;
}

}  // namespace

// --- trace_point ---------------------------------------------------------

namespace {

tracer::pending envelope(tracer& sink, std::string_view from, std::string_view from_node,
                         std::string_view to, std::string_view to_node,
                         const messages::capnp_blob& m, time_point sent, duration transit) {
  // A packed message is shared, not copied; of encoded bytes (a message that
  // came from another process and is passed on) only the size is kept.
  return {.kind = trace_kind::message,
          .time_ns = sink.since_origin(sent),
          .duration_ns = nanos(transit),
          .peer_time_ns = 0,
          .sender = std::string{from},
          .receiver = std::string{to},
          .sender_node = std::string{from_node},
          .receiver_node = std::string{to_node},
          .blob = {.type = m.type, .bytes = {}, .local = m.local},
          .wire_bytes = m.bytes.size(),
          .epoch = 0,
          .instance = no_instance,
          .role = messages::role::mixed,
          .prefill_tokens = 0,
          .decode_requests = 0};
}

}  // namespace

void trace_point::message(std::string_view to, std::string_view to_node,
                          const messages::capnp_blob& m, time_point sent, duration transit) const {
  if (sink != nullptr) sink->push(envelope(*sink, actor, node, to, to_node, m, sent, transit));
}

void trace_point::received(std::string_view from, std::string_view from_node,
                           const messages::capnp_blob& m, time_point received) const {
  if (sink != nullptr) sink->push(envelope(*sink, from, from_node, actor, node, m, received, {}));
}

void trace_point::span(instance_id instance, messages::role role, epoch_t epoch, time_point start,
                       duration length, std::uint32_t prefill_tokens,
                       std::uint32_t decode_requests) const {
  if (sink == nullptr) return;
  sink->push({.kind = trace_kind::iteration_span,
              .time_ns = sink->since_origin(start),
              .duration_ns = nanos(length),
              .peer_time_ns = 0,
              .sender = actor,
              .receiver = {},
              .sender_node = node,
              .receiver_node = {},
              .blob = {},
              .wire_bytes = 0,
              .epoch = epoch,
              .instance = instance,
              .role = role,
              .prefill_tokens = prefill_tokens,
              .decode_requests = decode_requests});
}

void trace_point::clock_sample(std::string_view peer_node, time_point received,
                               std::uint64_t peer_time_ns) const {
  if (sink == nullptr) return;
  sink->push({.kind = trace_kind::clock_sample,
              .time_ns = sink->since_origin(received),
              .duration_ns = 0,
              .peer_time_ns = peer_time_ns,
              .sender = {},
              .receiver = actor,
              .sender_node = std::string{peer_node},
              .receiver_node = node,
              .blob = {},
              .wire_bytes = 0,
              .epoch = 0,
              .instance = no_instance,
              .role = messages::role::mixed,
              .prefill_tokens = 0,
              .decode_requests = 0});
}

// --- tracer --------------------------------------------------------------

result<std::unique_ptr<tracer>> tracer::open(tracer_options opts) {
  if (opts.path.empty()) return error{errc::invalid_argument, "trace: the log path is empty"};
  if (opts.node.empty()) return error{errc::invalid_argument, "trace: the node name is empty"};
  if (opts.clock != "steady" && opts.clock != "virtual") {
    return error{errc::invalid_argument,
                 "trace: clock '" + opts.clock + "' is neither 'steady' nor 'virtual'"};
  }
  if (opts.queue_limit == 0) opts.queue_limit = 1;
  std::FILE* f = std::fopen(opts.path.c_str(), "wb");
  if (f == nullptr) {
    return error{errc::io_failure,
                 "trace: cannot create '" + opts.path + "': " + std::strerror(errno)};
  }
  std::unique_ptr<tracer> t{new tracer(std::move(opts), f)};
  // log_start pairs one reading of the actor clock with one of the wall
  // clock (this runs before any actor, on the opening thread).
  const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  trace_event start = log_record(trace_kind::log_start, t->opts_.node, t->opts_.clock);
  start.time_ns = t->since_origin(t->opts_.opened);
  start.receiver_node = host_name();
  start.peer_time_ns = static_cast<std::uint64_t>(std::max<std::int64_t>(wall, 0));
  const bool ok = std::fwrite(trace_magic.data(), 1, trace_magic.size(), f) == trace_magic.size() &&
                  t->write_frame(start, t->counts_.bytes);  // no writer thread yet
  if (!ok) {
    auto why = t->write_error_;
    (void)t->close();
    return error{errc::io_failure, why};
  }
  t->writer_ = std::thread([p = t.get()] { p->run(); });
  return t;
}

tracer::tracer(tracer_options opts, std::FILE* file) : opts_(std::move(opts)), file_(file) {
  // Large buffered writes: the writer flushes once per batch it takes.
  std::setvbuf(file_, nullptr, _IOFBF, std::size_t{1} << 20);
  counts_.bytes = trace_magic.size();
  // The queue and the writer's batch trade storage at every swap: with room
  // for a batch reserved up front, a sender rarely grows (and moves) it.
  queue_.reserve(std::min(writer_batch * 2, opts_.queue_limit));
}

tracer::~tracer() {
  (void)close();
}

std::uint64_t tracer::since_origin(time_point t) const noexcept {
  const auto n = nanos_since(opts_.origin, t);
  return n > 0 ? static_cast<std::uint64_t>(n) : 0;
}

void tracer::push(pending&& p) {
  std::unique_lock lk{mu_};
  if (closing_) {
    ++counts_.dropped;
    return;
  }
  if (queue_.size() >= opts_.queue_limit) {
    if (!opts_.block_when_full) {
      ++counts_.dropped;
      return;
    }
    wake_.notify_one();  // a full queue is a batch, whatever its size
    room_.wait(lk, [&] { return queue_.size() < opts_.queue_limit || closing_; });
    if (closing_) {
      ++counts_.dropped;
      return;
    }
  }
  queue_.push_back(std::move(p));
  // The writer wakes by itself every writer_period: a sender wakes it only
  // when a batch is ready, not once per event (a futex call each).
  if (queue_.size() == writer_batch) wake_.notify_one();
}

bool tracer::write_frame(const trace_event& e, std::uint64_t& bytes) {
  const auto blob = messages::encode(e);
  std::uint8_t len[8];
  std::uint64_t n = blob.bytes.size();
  for (auto& b : len) {
    b = static_cast<std::uint8_t>(n & 0xff);
    n >>= 8;
  }
  if (std::fwrite(len, 1, sizeof len, file_) != sizeof len ||
      std::fwrite(blob.bytes.data(), 1, blob.bytes.size(), file_) != blob.bytes.size()) {
    if (!write_failed_) {
      write_failed_ = true;
      write_error_ = "trace: writing '" + opts_.path + "' failed: " + std::strerror(errno);
    }
    return false;
  }
  bytes += sizeof len + blob.bytes.size();
  return true;
}

void tracer::run() {
  std::vector<pending> batch;
  batch.reserve(std::min(writer_batch * 2, opts_.queue_limit));
  for (;;) {
    bool last = false;
    {
      std::unique_lock lk{mu_};
      wake_.wait_for(lk, writer_period, [&] {
        return closing_ || queue_.size() >= std::min(writer_batch, opts_.queue_limit);
      });
      batch.swap(queue_);
      last = closing_ && batch.empty();
    }
    room_.notify_all();
    if (last) return;
    if (batch.empty()) continue;
    std::uint64_t written = 0, bytes = 0;
    bool ok = true;
    for (auto& p : batch) {
      // Encoding happens here, with the lock released; only this thread
      // touches file_ and the write_* fields until close() joins it.
      ok = ok && write_frame(to_event(p), bytes);
      written += ok ? 1 : 0;
    }
    batch.clear();
    if (std::fflush(file_) != 0 && !write_failed_) {
      write_failed_ = true;
      write_error_ = "trace: writing '" + opts_.path + "' failed: " + std::strerror(errno);
    }
    std::lock_guard lk{mu_};
    counts_.events += written;
    counts_.bytes += bytes;
  }
}

status tracer::close(std::string_view why) {
  {
    std::lock_guard lk{mu_};
    if (closed_) return write_failed_ ? status{error{errc::io_failure, write_error_}} : status{};
    closing_ = true;
  }
  wake_.notify_all();
  room_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::uint64_t dropped = 0;
  {
    std::lock_guard lk{mu_};
    closed_ = true;
    dropped = counts_.dropped;
  }
  std::uint64_t bytes = 0;
  if (!write_failed_) {
    trace_event end = log_record(trace_kind::log_end, opts_.node, std::string{why});
    end.dropped = dropped;
    write_frame(end, bytes);
  }
  if (std::fclose(file_) != 0 && !write_failed_) {
    write_failed_ = true;
    write_error_ = "trace: closing '" + opts_.path + "' failed: " + std::strerror(errno);
  }
  file_ = nullptr;
  {
    std::lock_guard lk{mu_};
    counts_.bytes += bytes;
  }
  if (write_failed_) return error{errc::io_failure, write_error_};
  return {};
}

tracer::counts tracer::totals() const {
  std::lock_guard lk{mu_};
  return counts_;
}

std::string trace_file_for(const std::string& file, std::string_view part) {
  const std::filesystem::path p{file};
  auto name = p.stem().string() + "-" + std::string{part} + p.extension().string();
  return (p.parent_path() / name).string();
}

// --- reading -------------------------------------------------------------

result<trace_log> read_trace_log(const std::string& path, const trace_read_options& opts) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return error{errc::io_failure, path + ": is a directory, not a trace log"};
  }
  std::ifstream in{path, std::ios::binary | std::ios::ate};
  if (!in) return error{errc::io_failure, path + ": cannot open: " + std::strerror(errno)};
  const auto end = in.tellg();
  if (end < 0) return error{errc::io_failure, path + ": cannot tell its size"};
  const auto size = static_cast<std::size_t>(end);
  // Read straight into word-aligned storage, so that frames decode in place.
  std::vector<std::uint64_t> words((size + 7) / 8);
  in.seekg(0);
  if (size > 0 &&
      !in.read(reinterpret_cast<char*>(words.data()), static_cast<std::streamsize>(size))) {
    return error{errc::io_failure, path + ": read failed"};
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(words.data());

  if (size < trace_magic.size() ||
      std::memcmp(bytes, trace_magic.data(), trace_magic.size()) != 0) {
    return error{errc::malformed, path + ": not an accellm trace log (it does not start with \"" +
                                      std::string{trace_magic} + "\")"};
  }
  trace_log log;
  log.path = path;
  std::size_t at = trace_magic.size();
  std::uint64_t record = 0;
  bool ended = false;
  while (at < size) {
    ++record;
    const auto where = [&] {
      return path + ": record " + std::to_string(record) + " at byte " + std::to_string(at) + ": ";
    };
    const auto torn = [&](std::string what) -> result<bool> {
      if (opts.salvage && !ended && record > 1) {
        log.salvaged = true;
        return false;
      }
      return error{errc::truncated,
                   where() + what +
                       (record > 1 && !ended ? " (a process killed while writing? --salvage "
                                               "drops the torn record)"
                                             : "")};
    };
    if (ended) {
      return error{errc::malformed, where() + "data after the log_end record"};
    }
    if (size - at < 8) {
      auto t = torn("a frame header needs 8 bytes, " + std::to_string(size - at) + " left");
      if (!t) return std::move(t).err();
      break;
    }
    std::uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | bytes[at + static_cast<std::size_t>(i)];
    if (len == 0 || len > trace_frame_limit || len % 8 != 0) {
      return error{errc::malformed, where() + "frame length " + std::to_string(len) +
                                        " is not a multiple of 8 in 8.." +
                                        std::to_string(trace_frame_limit)};
    }
    if (len > size - at - 8) {
      auto t = torn("frame of " + std::to_string(len) + " bytes runs past the end of the file (" +
                    std::to_string(size - at - 8) + " bytes left)");
      if (!t) return std::move(t).err();
      break;
    }
    auto e = messages::decode<trace_event>(
        messages::blob_view{static_cast<std::uint16_t>(messages::msg_type::trace_event),
                            std::span{bytes + at + 8, static_cast<std::size_t>(len)}});
    if (!e) {
      return error{e.err().code(), where() + e.err().message()};
    }
    at += 8 + len;
    if (record == 1) {
      if (e->kind != trace_kind::log_start) {
        return error{errc::malformed, where() + "the first record is a " +
                                          std::string{to_string(e->kind)} + ", not log_start"};
      }
      if (e->note != "steady" && e->note != "virtual") {
        return error{errc::out_of_range,
                     where() + "log_start names clock '" + e->note + "', not steady or virtual"};
      }
      log.node = e->sender_node;
      log.host = e->receiver_node;
      log.clock = e->note;
      log.start_ns = e->time_ns;
      log.wall_ns = e->peer_time_ns;
      continue;
    }
    if (e->kind == trace_kind::log_start) {
      return error{errc::malformed, where() + "a second log_start (two logs concatenated?)"};
    }
    if (e->kind == trace_kind::log_end) {
      ended = true;
      log.complete = true;
      log.dropped = e->dropped;
      log.end_note = e->note;
      continue;
    }
    log.events.push_back(std::move(*e));
  }
  if (record == 0) {
    return error{errc::truncated, path + ": the log holds no record (not even log_start)"};
  }
  return log;
}

}  // namespace accellm::actors
