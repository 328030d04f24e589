// cards/card: Tavern character cards V1/V2/V3 in and out. A card file (PNG with `chara`/`ccv3`
// tEXt chunks, JSON, or CHARX zip) is decided by its bytes and read into the API's character
// fields (the V2/V3 `data` names, plus our `voice` and `appearance`, which travel in
// `extensions.mycandy`), its lorebook (stored shape, see lorebook.hpp) and its image. Export
// writes V2 and V3 cards from the same fields. Every spec field is kept; unknown keys inside
// `extensions` are kept verbatim.
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace mc::cards {

using Json = nlohmann::json;

inline constexpr size_t kMaxCardJsonBytes = 4u << 20;    // The card's JSON text (a 5 MB card is refused).
inline constexpr size_t kMaxImportBytes = 32u << 20;     // Any card file.
inline constexpr size_t kMaxCharxEntries = 1000;
inline constexpr size_t kMaxCharxUnpackedBytes = 64u << 20;  // All entries together, as declared and as read.

struct CardImport {
    Json fields = Json::object();     // API character fields (name, description, ..., extensions, voice, appearance).
    std::optional<Json> book;         // The card's character_book, normalized.
    std::optional<std::string> image; // The card's picture (PNG without card chunks, or a CHARX icon).
    std::string format;               // "png", "json", "charx"
    int spec = 1;                     // 1, 2 or 3.
};

// A card from a parsed JSON object (V1, V2 or V3).
Result<CardImport> card_from_json(const Json& card);
// Any card file, decided by its bytes.
Result<CardImport> import_card(std::string_view bytes);

// Cards from the API's character JSON (character_to_json) and its lorebook.
Json card_v3(const Json& character, const std::optional<Json>& book);
Json card_v2(const Json& character, const std::optional<Json>& book);
// The PNG card: `image` (a PNG, or nullopt for the generated placeholder) with `chara` (V2) and
// `ccv3` (V3) chunks before IEND.
Result<std::string> card_png(const Json& character, const std::optional<Json>& book, const std::optional<std::string>& image);

}  // namespace mc::cards
