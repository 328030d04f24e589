// api/character_json: Character <-> JSON (API.md field names, Tavern card V2 `data` names),
// with validation that names the field at fault.
// Thread safety: pure functions.
#pragma once

#include "api/json_io.hpp"
#include "store/types.hpp"

namespace mc::api {

inline constexpr size_t kMaxNameChars = 100;
inline constexpr size_t kMaxTextBytes = 256 * 1024;
inline constexpr size_t kMaxListItems = 256;

Json character_to_json(const Character& c);
// Applies the fields present in `body` to `c`. Read-only fields (id, urls, voice_status, times)
// are ignored so a client may send back what it got; any other unknown field is an error.
Result<void> apply_character_fields(Character& c, const Json& body, bool creating);

}  // namespace mc::api
