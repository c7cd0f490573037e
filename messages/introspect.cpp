// default_fields(): which schema fields of a blob hold their default value,
// through Cap'n Proto's reflection (dynamic API). Used by the tests to prove
// that encode writes every field of the schema.
#include "messages/codec.hpp"
#include "messages/detail/wire.hpp"

#include <capnp/dynamic.h>
#include <capnp/schema.h>

#include <map>
#include <utility>

namespace accellm::messages {
namespace {

namespace w = accellm::wire;

capnp::StructSchema schema_of(msg_type t) {
  switch (t) {
    case msg_type::submit_request:
      return capnp::Schema::from<w::SubmitRequest>();
    case msg_type::assign_prefill:
      return capnp::Schema::from<w::AssignPrefill>();
    case msg_type::start_decode:
      return capnp::Schema::from<w::StartDecode>();
    case msg_type::move_decode:
      return capnp::Schema::from<w::MoveDecode>();
    case msg_type::set_role:
      return capnp::Schema::from<w::SetRole>();
    case msg_type::evict_replica:
      return capnp::Schema::from<w::EvictReplica>();
    case msg_type::cancel:
      return capnp::Schema::from<w::Cancel>();
    case msg_type::execute:
      return capnp::Schema::from<w::Execute>();
    case msg_type::iteration_done:
      return capnp::Schema::from<w::IterationDone>();
    case msg_type::kv_layer:
      return capnp::Schema::from<w::KvLayer>();
    case msg_type::kv_delta:
      return capnp::Schema::from<w::KvDelta>();
    case msg_type::token_batch:
      return capnp::Schema::from<w::TokenBatch>();
    case msg_type::request_done:
      return capnp::Schema::from<w::RequestDone>();
    case msg_type::instance_report:
      return capnp::Schema::from<w::InstanceReport>();
    case msg_type::register_worker:
      return capnp::Schema::from<w::RegisterWorker>();
    case msg_type::heartbeat:
      return capnp::Schema::from<w::Heartbeat>();
    case msg_type::trace_event:
      return capnp::Schema::from<w::TraceEvent>();
    case msg_type::kv_delta_batch:
      return capnp::Schema::from<w::KvDeltaBatch>();
    case msg_type::iteration_report:
      return capnp::Schema::from<w::IterationReport>();
    case msg_type::kv_ack:
      return capnp::Schema::from<w::KvAck>();
  }
  return capnp::Schema::from<w::Heartbeat>();  // unreachable: callers check the type
}

bool is_struct_list(capnp::StructSchema::Field f) {
  const auto t = f.getType();
  return t.isList() && t.asList().getElementType().isStruct();
}

// Path -> "some element sets it"; every schema path is present.
using field_map = std::map<std::string, bool>;

void mark(capnp::DynamicStruct::Reader r, const std::string& prefix, field_map& out) {
  for (const auto f : r.getSchema().getFields()) {
    const std::string path = prefix + "." + f.getProto().getName().cStr();
    bool& set = out[path];
    set = set || r.has(f, capnp::HasMode::NON_DEFAULT);
    if (!is_struct_list(f)) continue;
    const auto element = f.getType().asList().getElementType().asStruct();
    for (const auto sub : element.getFields())
      out.try_emplace(path + "." + sub.getProto().getName().cStr(), false);
    for (const auto item : r.get(f).as<capnp::DynamicList>()) {
      mark(item.as<capnp::DynamicStruct>(), path, out);
    }
  }
}

}  // namespace

result<std::vector<std::string>> default_fields(const capnp_blob& blob) {
  if (auto s = validate(blob); !s) return std::move(s).err();
  const auto t = *to_msg_type(blob.type);
  try {
    detail::aligned_words words{blob.bytes};
    capnp::FlatArrayMessageReader reader{words.words(),
                                         detail::reader_options(decode_limits{}.max_bytes(t))};
    field_map fields;
    mark(reader.getRoot<capnp::DynamicStruct>(schema_of(t)), std::string{to_string(t)}, fields);
    std::vector<std::string> out;
    for (const auto& [path, set] : fields) {
      if (!set) out.push_back(path);
    }
    return out;
  } catch (const kj::Exception& e) {
    return detail::malformed(t, e);
  }
}

}  // namespace accellm::messages
