// cards/png: the PNG container as character cards use it — tEXt chunks read (with CRC and size
// checks) and card chunks written before IEND, base64, and a small generated placeholder image.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace mc::cards {

inline constexpr size_t kMaxPngBytes = 32u << 20;       // A card file as a whole.
inline constexpr size_t kMaxCardChunkBytes = 8u << 20;  // One tEXt chunk (base64 of the card JSON).

bool is_png(std::string_view bytes);
// The tEXt chunks of a PNG, keyword -> text (the first chunk of each keyword wins). Fails on a
// broken signature, a chunk past the end, a bad CRC, or a chunk over kMaxCardChunkBytes.
Result<std::map<std::string, std::string>> png_text_chunks(std::string_view png);
// The PNG without any `chara`/`ccv3` tEXt chunk.
Result<std::string> png_strip_card_chunks(std::string_view png);
// The PNG with old `chara`/`ccv3` chunks removed and `chunks` (keyword -> text, in map order)
// written as tEXt chunks just before IEND.
Result<std::string> png_with_text_chunks(std::string_view png, const std::map<std::string, std::string>& chunks);
// A 256x256 one-colour PNG (for exporting a character that has no avatar).
std::string placeholder_png();

std::string base64_encode(std::string_view bytes);
// Strict base64 (standard alphabet, padding optional, whitespace ignored); nullopt when invalid.
std::optional<std::string> base64_decode(std::string_view text);

uint32_t crc32(std::string_view data, uint32_t crc = 0);

}  // namespace mc::cards
