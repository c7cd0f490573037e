// Byte-level tokenizer of the HTTP front end: every byte of the UTF-8 text is
// one token whose id is the byte's value (0..255). The small CPU models have
// vocabularies of 256 and 512 ids, so every id this produces is in range, and
// decoding is exact for ids below 256.
//
// Contract: encode never fails (any byte string is valid input); decode
// renders each id outside 0..255 as U+FFFD (the replacement character, 3
// bytes), so a model with a larger vocabulary still yields readable text and
// the number of visible symbols matches the number of tokens. Decoded bytes
// are not checked for UTF-8 validity: a multi-byte character split across
// two token batches decodes as two broken halves (JSON rendering replaces
// invalid sequences, api_request.hpp).
//
// Thread contract: free functions without state; safe from any thread.
#pragma once

#include "common/types.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::coordinator::http {

/// Number of ids the byte tokenizer produces (0..255).
inline constexpr token_id byte_vocab = 256;

/// What decode writes for an id it cannot render: U+FFFD in UTF-8.
inline constexpr std::string_view replacement_char = "\xEF\xBF\xBD";

/// One token per byte of `text`, in order.
std::vector<token_id> encode_bytes(std::string_view text);

/// The bytes of `ids`; an id outside 0..255 becomes replacement_char.
std::string decode_bytes(std::span<const token_id> ids);

}  // namespace accellm::coordinator::http
