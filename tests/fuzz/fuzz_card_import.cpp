// Fuzz target: a character card file (PNG, JSON, CHARX) and a lorebook file. A card that is read
// must export and read back to the same fields; a lorebook that is read must compile and scan.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cards/card.hpp"
#include "cards/lorebook.hpp"
#include "core/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    if (auto card = mc::cards::import_card(bytes)) {
        if (!card->fields.contains("name") || !card->fields["name"].is_string()) std::abort();
        auto again = mc::cards::card_from_json(mc::cards::card_v3(card->fields, card->book));
        if (!again) std::abort();
        // V1 cards gain V3's empty group_only_greetings; everything they had comes back.
        for (auto it = card->fields.begin(); it != card->fields.end(); ++it) {
            if (again->fields[it.key()] != it.value()) std::abort();
        }
        if (card->book.has_value() != again->book.has_value()) std::abort();
        if (card->book && *card->book != *again->book) std::abort();
    }
    auto doc = mc::parse_json(bytes, "lorebook", "file");
    if (!doc) return 0;
    auto book = mc::cards::normalize_lorebook(*doc);
    if (!book) return 0;
    if ((*book)["entries"].size() > mc::cards::kMaxLoreEntries) std::abort();
    auto compiled = mc::cards::compile_lorebook("f", *book);
    if (!compiled) std::abort();  // normalize_lorebook already compiled it.
    (void)mc::cards::activate({*compiled}, {"a dragon", "castle"}, 1000, [](const std::string& s) { return static_cast<int>(s.size()); });
    return 0;
}
