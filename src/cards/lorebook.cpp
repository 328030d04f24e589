#include "cards/lorebook.hpp"

#include <algorithm>
#include <cctype>
#include <unordered_map>
#include <re2/re2.h>

#include "core/json.hpp"

namespace mc::cards {

struct CompiledKey {
    std::string text;  // Lower-cased unless case-sensitive.
    std::string shown; // As written, for reasons.
    std::unique_ptr<RE2> re;
};

struct CompiledEntry {
    size_t index = 0;
    std::string name;
    std::string content;
    std::vector<CompiledKey> keys;
    std::vector<CompiledKey> secondary;
    std::vector<CompiledKey> exclude;  // @@exclude_keys: none of these may match.
    bool never = false;                // @@dont_activate.
    bool selective = false;
    int logic = 0;
    bool case_sensitive = false;
    bool whole_words = false;
    bool constant = false;
    bool exclude_recursion = false;
    bool prevent_recursion = false;
    int64_t order = 100;
    int64_t priority = 0;
    LorePosition position = LorePosition::BeforeChar;
    int depth = 4;
};

namespace {

Error bad(const std::string& field, const std::string& message, ErrorCode code = ErrorCode::InvalidInput) {
    return Error{code, "'" + field + "' " + message, field};
}

// Copies `in[key]` into `out[key]` when it has the expected kind; errors name the field.
struct EntryReader {
    const Json& in;
    Json& out;
    std::string prefix;
    std::optional<Error> error;

    void text(const char* key, size_t max, bool required_default = false) {
        if (!in.contains(key) || in[key].is_null()) {
            if (required_default) out[key] = "";
            return;
        }
        if (!in[key].is_string()) return set(bad(prefix + key, "must be a string"));
        if (in[key].get_ref<const std::string&>().size() > max) {
            return set(bad(prefix + key, "is longer than " + std::to_string(max) + " bytes", ErrorCode::TooLarge));
        }
        out[key] = in[key];
    }
    void boolean(const char* key, std::optional<bool> fallback = std::nullopt) {
        if (!in.contains(key) || in[key].is_null()) {
            if (fallback) out[key] = *fallback;
            return;
        }
        if (!in[key].is_boolean()) return set(bad(prefix + key, "must be true or false"));
        out[key] = in[key];
    }
    void integer(const char* key, int64_t min, int64_t max, std::optional<int64_t> fallback = std::nullopt) {
        if (!in.contains(key) || in[key].is_null()) {
            if (fallback) out[key] = *fallback;
            return;
        }
        const Json& v = in[key];
        if (!v.is_number()) return set(bad(prefix + key, "must be a number"));
        const double d = v.get<double>();
        if (!(d >= double(min) && d <= double(max))) {
            return set(bad(prefix + key, "must be between " + std::to_string(min) + " and " + std::to_string(max)));
        }
        out[key] = static_cast<int64_t>(d);
    }
    void strings(const char* key, bool required) {
        if (!in.contains(key) || in[key].is_null()) {
            if (required) out[key] = Json::array();
            return;
        }
        const Json& v = in[key];
        if (!v.is_array()) return set(bad(prefix + key, "must be an array of strings"));
        if (v.size() > kMaxLoreKeys) {
            return set(bad(prefix + key, "has more than " + std::to_string(kMaxLoreKeys) + " keys", ErrorCode::TooLarge));
        }
        Json list = Json::array();
        for (const auto& k : v) {
            if (!k.is_string()) return set(bad(prefix + key, "must be an array of strings"));
            if (k.get_ref<const std::string&>().size() > kMaxLoreKeyBytes) {
                return set(bad(prefix + key, "has a key longer than " + std::to_string(kMaxLoreKeyBytes) + " bytes",
                               ErrorCode::TooLarge));
            }
            list.push_back(k);
        }
        out[key] = std::move(list);
    }
    void object(const char* key) {
        if (!in.contains(key) || in[key].is_null()) {
            out[key] = Json::object();
            return;
        }
        if (!in[key].is_object()) return set(bad(prefix + key, "must be an object"));
        out[key] = in[key];
    }
    void set(Error e) {
        if (!error) error = std::move(e);
    }
};

const char* const kEntryKeys[] = {"keys", "content", "extensions", "enabled", "insertion_order", "case_sensitive", "name",
                                  "priority", "id", "comment", "selective", "secondary_keys", "constant", "position",
                                  "use_regex"};

Result<Json> normalize_entry(const Json& e, const std::string& prefix) {
    if (!e.is_object()) return std::unexpected(bad(prefix.substr(0, prefix.size() - 1), "must be an object"));
    Json out = Json::object();
    EntryReader r{e, out, prefix, std::nullopt};
    r.strings("keys", true);
    r.text("content", kMaxLoreContentBytes, true);
    r.object("extensions");
    r.boolean("enabled", true);
    r.integer("insertion_order", -1000000000, 1000000000, 100);
    r.boolean("case_sensitive");
    r.text("name", kMaxLoreKeyBytes);
    r.integer("priority", -1000000000, 1000000000);
    if (e.contains("id") && !e["id"].is_null()) {
        if (e["id"].is_number() || e["id"].is_string()) out["id"] = e["id"];
        else r.set(bad(prefix + "id", "must be a number or a string"));
    }
    r.text("comment", kMaxLoreContentBytes);
    r.boolean("selective");
    r.strings("secondary_keys", false);
    r.boolean("constant");
    if (e.contains("position") && !e["position"].is_null()) {
        const Json& p = e["position"];
        if (p == "before_char" || p == "after_char" || p == "") out["position"] = p;
        else r.set(bad(prefix + "position", "must be \"before_char\" or \"after_char\""));
    }
    r.boolean("use_regex", false);
    if (r.error) return std::unexpected(*r.error);
    // Keys a newer spec or another app added are kept as they are.
    for (auto it = e.begin(); it != e.end(); ++it) {
        if (!out.contains(it.key()) && std::find(std::begin(kEntryKeys), std::end(kEntryKeys), it.key()) == std::end(kEntryKeys)) {
            out[it.key()] = it.value();
        }
    }
    return out;
}

// SillyTavern world info entry -> V2 character_book entry (as SillyTavern itself converts).
Json from_world_info_entry(const Json& e) {
    Json out = Json::object();
    Json ext = Json::object();
    auto copy = [&](const char* from, Json& to, const char* name) {
        if (e.contains(from) && !e[from].is_null()) to[name] = e[from];
    };
    copy("uid", out, "id");
    copy("key", out, "keys");
    copy("keysecondary", out, "secondary_keys");
    // Older world-info files write keys as one comma-separated string.
    for (const char* k : {"keys", "secondary_keys"}) {
        if (!out.contains(k) || !out[k].is_string()) continue;
        Json list = Json::array();
        const std::string all = out[k].get<std::string>();
        size_t start = 0;
        while (start <= all.size()) {
            const size_t comma = std::min(all.find(',', start), all.size());
            std::string key = all.substr(start, comma - start);
            key.erase(0, key.find_first_not_of(' '));
            key.erase(key.find_last_not_of(' ') + 1);
            if (!key.empty()) list.push_back(key);
            start = comma + 1;
        }
        out[k] = std::move(list);
    }
    copy("comment", out, "comment");
    copy("comment", out, "name");
    copy("content", out, "content");
    copy("constant", out, "constant");
    copy("selective", out, "selective");
    copy("order", out, "insertion_order");
    copy("caseSensitive", out, "case_sensitive");
    copy("useRegex", out, "use_regex");
    if (e.contains("disable") && e["disable"].is_boolean()) out["enabled"] = !e["disable"].get<bool>();
    if (e.contains("position") && e["position"].is_number_integer()) {
        const int p = e["position"].get<int>();
        out["position"] = p == 0 ? "before_char" : "after_char";
        ext["position"] = p;
    }
    static const std::pair<const char*, const char*> kExt[] = {
        {"depth", "depth"}, {"selectiveLogic", "selectiveLogic"}, {"matchWholeWords", "match_whole_words"},
        {"excludeRecursion", "exclude_recursion"}, {"preventRecursion", "prevent_recursion"},
        {"delayUntilRecursion", "delay_until_recursion"}, {"probability", "probability"},
        {"useProbability", "useProbability"}, {"group", "group"}, {"groupOverride", "group_override"},
        {"groupWeight", "group_weight"}, {"scanDepth", "scan_depth"}, {"role", "role"},
        {"displayIndex", "display_index"}, {"sticky", "sticky"}, {"cooldown", "cooldown"}, {"delay", "delay"},
        {"vectorized", "vectorized"}, {"automationId", "automation_id"}, {"useGroupScoring", "use_group_scoring"},
    };
    for (const auto& [from, to] : kExt) copy(from, ext, to);
    static const char* const kMapped[] = {"uid", "key", "keysecondary", "comment", "content", "constant", "selective",
                                          "order", "caseSensitive", "useRegex", "disable", "position", "extensions"};
    for (auto it = e.begin(); it != e.end(); ++it) {
        const bool mapped = std::find(std::begin(kMapped), std::end(kMapped), it.key()) != std::end(kMapped) ||
                            std::any_of(std::begin(kExt), std::end(kExt), [&](const auto& p) { return it.key() == p.first; });
        if (!mapped) ext[it.key()] = it.value();  // Unknown options kept verbatim.
    }
    if (e.contains("extensions") && e["extensions"].is_object()) {
        for (auto it = e["extensions"].begin(); it != e["extensions"].end(); ++it) ext[it.key()] = it.value();
    }
    out["extensions"] = std::move(ext);
    return out;
}

bool word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

std::string lower_ascii(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A key written as /pattern/flags.
std::optional<std::pair<std::string, std::string>> regex_key(const std::string& key) {
    if (key.size() < 3 || key[0] != '/') return std::nullopt;
    const size_t end = key.rfind('/');
    if (end == 0) return std::nullopt;
    const std::string flags = key.substr(end + 1);
    if (flags.find_first_not_of("gimsuy") != std::string::npos) return std::nullopt;
    return std::make_pair(key.substr(1, end - 1), flags);
}

Result<CompiledKey> compile_key(const std::string& key, bool case_sensitive, bool use_regex, const std::string& field) {
    CompiledKey k;
    k.shown = key;
    auto rx = regex_key(key);
    if (!rx && use_regex) rx = std::make_pair(key, std::string(case_sensitive ? "" : "i"));
    if (rx) {
        std::string prefix;
        if (rx->second.find('i') != std::string::npos) prefix += "i";
        if (rx->second.find('s') != std::string::npos) prefix += "s";
        if (rx->second.find('m') != std::string::npos) prefix += "m";
        const std::string pattern = prefix.empty() ? rx->first : "(?" + prefix + ")" + rx->first;
        RE2::Options opt;
        opt.set_log_errors(false);
        opt.set_max_mem(1 << 20);  // Bounds the compiled program; matching time is linear in the text.
        k.re = std::make_unique<RE2>(pattern, opt);
        if (!k.re->ok()) {
            return std::unexpected(bad(field, "is not a regular expression the linear-time engine (RE2) accepts: " +
                                                  k.re->error() + " (lookaround and backreferences are not supported)"));
        }
        return k;
    }
    k.text = case_sensitive ? key : lower_ascii(key);
    return k;
}

struct Buffer {
    std::string text;
    std::string lower;
};

bool key_matches(const CompiledKey& k, const Buffer& b, bool case_sensitive, bool whole_words) {
    if (k.re) return RE2::PartialMatch(b.text, *k.re);
    if (k.text.empty()) return false;
    const std::string& hay = case_sensitive ? b.text : b.lower;
    for (size_t at = hay.find(k.text); at != std::string::npos; at = hay.find(k.text, at + 1)) {
        if (!whole_words) return true;
        const bool left = at == 0 || !word_char(static_cast<unsigned char>(hay[at - 1]));
        const size_t end = at + k.text.size();
        const bool right = end >= hay.size() || !word_char(static_cast<unsigned char>(hay[end]));
        if (left && right) return true;
    }
    return false;
}

const char* logic_name(int logic) {
    switch (logic) {
        case 1: return "NOT ALL";
        case 2: return "NOT ANY";
        case 3: return "AND ALL";
        default: return "AND ANY";
    }
}

// Why the entry fires on `b`, or nullopt.
std::optional<std::string> match(const CompiledEntry& e, const Buffer& b) {
    const CompiledKey* primary = nullptr;
    for (const auto& k : e.keys) {
        if (key_matches(k, b, e.case_sensitive, e.whole_words)) {
            primary = &k;
            break;
        }
    }
    if (!primary) return std::nullopt;
    for (const auto& k : e.exclude) {
        if (key_matches(k, b, e.case_sensitive, e.whole_words)) return std::nullopt;
    }
    std::string reason = "key '" + primary->shown + "'";
    if (!e.selective || e.secondary.empty()) return reason;
    size_t hits = 0;
    const CompiledKey* first_hit = nullptr;
    for (const auto& k : e.secondary) {
        if (key_matches(k, b, e.case_sensitive, e.whole_words)) {
            ++hits;
            if (!first_hit) first_hit = &k;
        }
    }
    const size_t n = e.secondary.size();
    bool ok = false;
    switch (e.logic) {
        case 1: ok = hits < n; break;   // NOT ALL
        case 2: ok = hits == 0; break;  // NOT ANY
        case 3: ok = hits == n; break;  // AND ALL
        default: ok = hits > 0; break;  // AND ANY
    }
    if (!ok) return std::nullopt;
    if (first_hit && (e.logic == 0 || e.logic == 3)) reason += " + secondary '" + first_hit->shown + "'";
    return reason + " (" + logic_name(e.logic) + ")";
}

}  // namespace

Result<Json> normalize_lorebook(const Json& in_raw, const std::string& field) {
    if (!in_raw.is_object()) return std::unexpected(bad(field.empty() ? "lorebook" : field.substr(0, field.size() - 1), "must be a JSON object"));
    const Json* in = &in_raw;
    if (in_raw.contains("spec") && in_raw["spec"] == "lorebook_v3" && in_raw.contains("data")) in = &in_raw["data"];
    if (!in->is_object()) return std::unexpected(bad(field + "data", "must be an object"));
    if (!in->contains("entries")) return std::unexpected(bad(field + "entries", "is required"));
    const Json& entries = (*in)["entries"];
    if (!entries.is_array() && !entries.is_object()) return std::unexpected(bad(field + "entries", "must be an array or an object"));
    if (entries.size() > kMaxLoreEntries) {
        return std::unexpected(bad(field + "entries", "has " + std::to_string(entries.size()) + " entries; at most " +
                                                          std::to_string(kMaxLoreEntries) + " are allowed",
                                   ErrorCode::TooLarge));
    }
    Json out = Json::object();
    EntryReader r{*in, out, field, std::nullopt};
    r.text("name", 1024, true);
    r.text("description", kMaxLoreContentBytes);
    r.integer("scan_depth", 0, 1000);
    r.integer("token_budget", 0, 1000000);
    r.boolean("recursive_scanning");
    r.object("extensions");
    if (r.error) return std::unexpected(*r.error);
    Json list = Json::array();
    if (entries.is_object()) {
        // SillyTavern world info: {"entries":{"0":{uid,key,...}}}; other top-level keys are kept.
        for (auto it = in->begin(); it != in->end(); ++it) {
            if (!out.contains(it.key()) && it.key() != "entries") out["extensions"][it.key()] = it.value();
        }
        std::vector<std::pair<long long, Json>> ordered;
        for (auto it = entries.begin(); it != entries.end(); ++it) {
            long long n = 0;
            try { n = std::stoll(it.key()); } catch (...) { n = static_cast<long long>(ordered.size()); }
            if (!it->is_object()) return std::unexpected(bad(field + "entries." + it.key(), "must be an object"));
            ordered.emplace_back(n, from_world_info_entry(*it));
        }
        std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [n, e] : ordered) list.push_back(std::move(e));
    } else {
        list = entries;
    }
    Json normalized = Json::array();
    for (size_t i = 0; i < list.size(); ++i) {
        auto e = normalize_entry(list[i], field + "entries[" + std::to_string(i) + "].");
        if (!e) return std::unexpected(e.error());
        normalized.push_back(std::move(*e));
    }
    out["entries"] = std::move(normalized);
    if (out.dump().size() > kMaxLoreBookBytes) {
        return std::unexpected(bad(field.empty() ? "lorebook" : field.substr(0, field.size() - 1),
                                   "is larger than " + std::to_string(kMaxLoreBookBytes >> 20) + " MB", ErrorCode::TooLarge));
    }
    // Regex keys must compile on the linear-time engine.
    if (auto compiled = compile_lorebook("", out); !compiled) {
        Error e = compiled.error();
        e.field = field + e.field;
        e.message = "'" + field + e.message.substr(1);
        return std::unexpected(e);
    }
    return out;
}

Result<std::shared_ptr<const CompiledBook>> compile_lorebook(const std::string& id, const Json& book) {
    auto out = std::make_shared<CompiledBook>();
    out->id = id;
    out->name = json_string_or(book, "name", "");
    out->scan_depth = static_cast<int>(json_int_or(book, "scan_depth", kDefaultScanDepth));
    if (book.contains("token_budget") && book["token_budget"].is_number()) out->token_budget = book["token_budget"].get<int>();
    out->recursive = book.contains("recursive_scanning") && book["recursive_scanning"] == true;
    if (!book.contains("entries") || !book["entries"].is_array()) return out;
    const Json& entries = book["entries"];
    for (size_t i = 0; i < entries.size(); ++i) {
        const Json& j = entries[i];
        if (!j.is_object()) continue;
        if (j.contains("enabled") && j["enabled"] == false) continue;
        auto e = std::make_shared<CompiledEntry>();
        e->index = i;
        const Json ext = j.contains("extensions") && j["extensions"].is_object() ? j["extensions"] : Json::object();
        e->name = json_string_or(j, "name", "");
        if (e->name.empty()) e->name = json_string_or(j, "comment", "");
        e->content = json_string_or(j, "content", "");
        e->selective = j.value("selective", false) == true;
        if (j.contains("selective") && !j["selective"].is_boolean()) e->selective = false;
        e->logic = static_cast<int>(json_int_or(ext, "selectiveLogic", 0));
        if (j.contains("case_sensitive") && j["case_sensitive"].is_boolean()) e->case_sensitive = j["case_sensitive"].get<bool>();
        else if (ext.contains("case_sensitive") && ext["case_sensitive"].is_boolean()) e->case_sensitive = ext["case_sensitive"].get<bool>();
        e->whole_words = ext.contains("match_whole_words") && ext["match_whole_words"] == true;
        e->constant = j.contains("constant") && j["constant"] == true;
        e->exclude_recursion = ext.contains("exclude_recursion") && ext["exclude_recursion"] == true;
        e->prevent_recursion = ext.contains("prevent_recursion") && ext["prevent_recursion"] == true;
        e->order = json_int_or(j, "insertion_order", 100);
        e->priority = json_int_or(j, "priority", 0);
        const std::string pos = json_string_or(j, "position", "before_char");
        e->position = pos == "after_char" ? LorePosition::AfterChar : LorePosition::BeforeChar;
        if (json_int_or(ext, "position", -1) == 4) {
            e->position = LorePosition::AtDepth;
            e->depth = static_cast<int>(std::clamp<int64_t>(json_int_or(ext, "depth", 4), 0, 10000));
        }
        // V3 decorators: leading "@@name value" lines of the content (removed from what is inserted).
        std::vector<std::string> exclude_keys;
        while (e->content.starts_with("@@")) {
            const size_t nl = e->content.find('\n');
            const std::string line = e->content.substr(2, nl == std::string::npos ? std::string::npos : nl - 2);
            e->content = nl == std::string::npos ? std::string() : e->content.substr(nl + 1);
            const size_t sp = line.find(' ');
            const std::string name = line.substr(0, sp);
            const std::string value = sp == std::string::npos ? std::string() : line.substr(sp + 1);
            if (name == "depth") {
                e->position = LorePosition::AtDepth;
                try { e->depth = std::clamp(std::stoi(value), 0, 10000); } catch (...) { e->depth = 0; }
            } else if (name == "position") {
                if (value.starts_with("after")) e->position = LorePosition::AfterChar;
                else if (value.starts_with("before")) e->position = LorePosition::BeforeChar;
            } else if (name == "exclude_keys") {
                size_t start = 0;
                while (start <= value.size()) {
                    const size_t comma = std::min(value.find(',', start), value.size());
                    std::string key = value.substr(start, comma - start);
                    key.erase(0, key.find_first_not_of(' '));
                    key.erase(key.find_last_not_of(' ') + 1);
                    if (!key.empty()) exclude_keys.push_back(key);
                    start = comma + 1;
                }
            } else if (name == "dont_activate") {
                e->never = true;
            } else if (name == "activate") {
                e->constant = true;
            }
        }
        for (const auto& key : exclude_keys) {
            auto k = compile_key(key, e->case_sensitive, false, "entries[" + std::to_string(i) + "].content");
            if (!k) return std::unexpected(k.error());
            e->exclude.push_back(std::move(*k));
        }
        const bool use_regex = j.contains("use_regex") && j["use_regex"] == true;
        for (const char* which : {"keys", "secondary_keys"}) {
            if (!j.contains(which) || !j[which].is_array()) continue;
            auto& target = std::string(which) == "keys" ? e->keys : e->secondary;
            for (size_t k = 0; k < j[which].size(); ++k) {
                if (!j[which][k].is_string()) continue;
                auto key = compile_key(j[which][k].get<std::string>(), e->case_sensitive, use_regex,
                                       "entries[" + std::to_string(i) + "]." + which + "[" + std::to_string(k) + "]");
                if (!key) return std::unexpected(key.error());
                target.push_back(std::move(*key));
            }
        }
        out->entries.push_back(std::move(e));
    }
    return std::shared_ptr<const CompiledBook>(std::move(out));
}

Activation activate(const std::vector<std::shared_ptr<const CompiledBook>>& books, const std::vector<std::string>& recent,
                    int default_budget, const std::function<int(const std::string&)>& count_tokens) {
    Activation out;
    std::vector<FiredEntry> matched;
    std::vector<int64_t> priorities;
    std::vector<std::pair<const CompiledBook*, size_t>> owners;  // Book and its first match, for budgets.
    for (const auto& book : books) {
        Buffer b;
        const size_t n = std::min<size_t>(recent.size(), static_cast<size_t>(std::max(0, book->scan_depth)));
        for (size_t i = n; i-- > 0;) {
            b.text += recent[i];
            b.text += '\n';
        }
        b.lower = lower_ascii(b.text);
        std::vector<bool> fired(book->entries.size(), false);
        auto fire = [&](size_t i, std::string reason) {
            const CompiledEntry& e = *book->entries[i];
            fired[i] = true;
            FiredEntry f;
            f.lorebook_id = book->id;
            f.entry = e.index;
            f.name = e.name;
            f.content = e.content;
            f.reason = std::move(reason);
            f.position = e.position;
            f.depth = e.depth;
            f.order = e.order;
            f.constant = e.constant;
            matched.push_back(std::move(f));
            priorities.push_back(e.priority);
            owners.emplace_back(book.get(), 0);
        };
        for (size_t i = 0; i < book->entries.size(); ++i) {
            const CompiledEntry& e = *book->entries[i];
            if (e.never) continue;
            if (e.constant) fire(i, "constant");
            else if (auto why = match(e, b)) fire(i, *why);
        }
        if (book->recursive) {
            size_t from = matched.size() - static_cast<size_t>(std::count(fired.begin(), fired.end(), true));
            for (int level = 1; level <= kMaxRecursion; ++level) {
                Buffer rb;
                for (size_t m = from; m < matched.size(); ++m) {
                    const auto& e = *std::find_if(book->entries.begin(), book->entries.end(),
                                                  [&](const auto& x) { return x->index == matched[m].entry; });
                    if (e->prevent_recursion) continue;
                    rb.text += matched[m].content;
                    rb.text += '\n';
                }
                if (rb.text.empty()) break;
                rb.lower = lower_ascii(rb.text);
                from = matched.size();
                for (size_t i = 0; i < book->entries.size(); ++i) {
                    const CompiledEntry& e = *book->entries[i];
                    if (fired[i] || e.exclude_recursion || e.never) continue;
                    if (auto why = match(e, rb)) fire(i, "recursion " + std::to_string(level) + ": " + *why);
                }
                if (from == matched.size()) break;
            }
        }
    }
    // The token budget: constant entries first, then higher priority, then higher insertion order.
    std::vector<size_t> idx(matched.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        if (matched[a].constant != matched[b].constant) return matched[a].constant;
        if (priorities[a] != priorities[b]) return priorities[a] > priorities[b];
        return matched[a].order > matched[b].order;
    });
    std::unordered_map<const CompiledBook*, int> used;
    int total = 0;
    std::vector<bool> keep(matched.size(), false);
    for (size_t i : idx) {
        FiredEntry& f = matched[i];
        f.tokens = count_tokens(f.content) + 1;
        const CompiledBook* book = owners[i].first;
        const int budget = book->token_budget ? std::min(*book->token_budget, default_budget) : default_budget;
        if (used[book] + f.tokens > budget || total + f.tokens > default_budget) continue;
        used[book] += f.tokens;
        total += f.tokens;
        keep[i] = true;
    }
    for (size_t i = 0; i < matched.size(); ++i) {
        if (keep[i]) out.fired.push_back(std::move(matched[i]));
        else {
            matched[i].reason += "; dropped: over the token budget";
            out.dropped.push_back(std::move(matched[i]));
        }
    }
    std::stable_sort(out.fired.begin(), out.fired.end(), [](const FiredEntry& a, const FiredEntry& b) { return a.order < b.order; });
    return out;
}

}  // namespace mc::cards
