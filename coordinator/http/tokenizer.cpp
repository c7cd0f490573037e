#include "coordinator/http/tokenizer.hpp"

namespace accellm::coordinator::http {

std::vector<token_id> encode_bytes(std::string_view text) {
  std::vector<token_id> ids;
  ids.reserve(text.size());
  for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

std::string decode_bytes(std::span<const token_id> ids) {
  std::string text;
  text.reserve(ids.size());
  for (const token_id id : ids) {
    if (id >= 0 && id < byte_vocab) {
      text.push_back(static_cast<char>(static_cast<unsigned char>(id)));
    } else {
      text += replacement_char;
    }
  }
  return text;
}

}  // namespace accellm::coordinator::http
