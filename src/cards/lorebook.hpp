// cards/lorebook: lorebooks (world info) — reading SillyTavern world-info JSON, the V2
// `character_book` shape and V3 `lorebook_v3` into one stored shape (the V2 `character_book`
// object; SillyTavern's extra entry options live in each entry's `extensions` under the names
// SillyTavern itself writes there), checking it against limits, and activation: which entries a
// turn's recent messages fire, and why.
// Activation rules (SillyTavern's): primary keys (any one), secondary keys with selective logic
// (extensions.selectiveLogic: 0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL), case sensitivity,
// whole words, regex keys `/pattern/flags` on RE2 (linear time: no catastrophic backtracking),
// constant entries, enabled/disabled, the book's scan_depth (messages scanned, newest first), its
// token_budget (lower `priority` dropped first), recursive scanning of fired entries' content
// (up to kMaxRecursion levels; extensions.exclude_recursion / prevent_recursion honoured), and the
// V3 content decorators @@depth N, @@position before…/after…, @@exclude_keys a,b, @@activate,
// @@dont_activate (others, such as @@role or @@activate_only_after, are removed and ignored).
// Thread safety: pure functions; a CompiledBook is immutable and may be shared between threads.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace mc::cards {

using Json = nlohmann::json;

inline constexpr size_t kMaxLoreEntries = 5000;
inline constexpr size_t kMaxLoreKeys = 100;            // Per entry, primary and secondary each.
inline constexpr size_t kMaxLoreKeyBytes = 1024;
inline constexpr size_t kMaxLoreContentBytes = 64 * 1024;
inline constexpr size_t kMaxLoreBookBytes = 4u << 20;  // The whole book as JSON.
inline constexpr int kMaxRecursion = 3;
inline constexpr int kDefaultScanDepth = 2;

// Any accepted lorebook file or object -> the stored shape, checked. `field` prefixes error
// fields ("character_book." for a card's book).
Result<Json> normalize_lorebook(const Json& in, const std::string& field = "");

enum class LorePosition { BeforeChar, AfterChar, AtDepth };

struct FiredEntry {
    std::string lorebook_id;
    size_t entry = 0;       // Index in the book's entries.
    std::string name;       // Entry name or comment.
    std::string content;
    std::string reason;     // "constant", "key 'x'", "key 'x' + secondary 'y' (AND ANY)", "recursion: key 'x'".
    LorePosition position = LorePosition::BeforeChar;
    int depth = 0;          // For AtDepth.
    int64_t order = 100;    // insertion_order.
    bool constant = false;
    int tokens = 0;
};

struct CompiledEntry;
// A book ready to scan: keys lower-cased, regexes compiled.
struct CompiledBook {
    std::string id;
    std::string name;
    int scan_depth = kDefaultScanDepth;
    std::optional<int> token_budget;
    bool recursive = false;
    std::vector<std::shared_ptr<const CompiledEntry>> entries;
};
// Fails (naming entries[i].keys[j]) when a regex key does not compile on RE2.
Result<std::shared_ptr<const CompiledBook>> compile_lorebook(const std::string& id, const Json& book);

struct Activation {
    std::vector<FiredEntry> fired;    // In insertion order (ascending insertion_order).
    std::vector<FiredEntry> dropped;  // Matched, but over the token budget.
};
// `recent` holds the chat's messages newest first. `default_budget` applies to books without a
// token_budget and caps all books together.
Activation activate(const std::vector<std::shared_ptr<const CompiledBook>>& books, const std::vector<std::string>& recent,
                    int default_budget, const std::function<int(const std::string&)>& count_tokens);

}  // namespace mc::cards
