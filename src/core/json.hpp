// core/json: parsing JSON from outside (request bodies, chat files, settings) with a nesting
// limit. nlohmann parses deep nesting without trouble but copies, compares and dumps values
// recursively, so 100,000 '[' in a 1 MB body would later overflow a worker thread's stack.
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace mc {

using Json = nlohmann::json;

constexpr int kMaxJsonDepth = 64;

// What a JSON value is, in words ("a string", "an integer", ...), for error messages.
const char* json_kind(const Json& v);
// The same without the article ("string", "integer", ...), for clients that translate it.
const char* json_type_word(const Json& v);

// A member of stored data that may have come from a file we did not write (an imported chat's
// `media`): the value when `obj` is an object holding `key` with the right type, else `fallback`.
// Never throws, unlike nlohmann's value().
std::string json_string_or(const Json& obj, const char* key, const std::string& fallback);
int64_t json_int_or(const Json& obj, const char* key, int64_t fallback);
double json_number_or(const Json& obj, const char* key, double fallback);

// The parsed value, or InvalidInput naming `what` ("request body", "line 3") with the parser's
// position ("parse error at line 1, column 2: ...") or the depth limit.
Result<Json> parse_json(std::string_view text, const std::string& what, const std::string& field,
                        int max_depth = kMaxJsonDepth);

}  // namespace mc
