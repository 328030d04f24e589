// core/text: small helpers shared by every module — UTF-8 checks, ids, clock.
// Thread safety: all functions are reentrant (random_hex uses a thread-local generator).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mc {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates).
bool utf8_valid(std::string_view s);
// `s` with every invalid UTF-8 byte replaced by U+FFFD (model output can be any bytes).
std::string sanitize_utf8(std::string_view s);
// `s` without leading and trailing whitespace (space, tab, CR, LF).
std::string trim(std::string_view s);
// Number of code points in well-formed UTF-8.
size_t utf8_length(std::string_view s);
// At most `max_bytes` of `s`, cut at a code point boundary (previews, snippets).
std::string utf8_prefix(std::string_view s, size_t max_bytes);
// `bytes` random bytes as lowercase hex (ids, file names).
std::string random_hex(size_t bytes);
// Milliseconds since the unix epoch.
int64_t now_ms();

}  // namespace mc
