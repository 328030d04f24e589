#include "chat/transfer.hpp"

#include "core/json.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

namespace mc::chat {
namespace {

// An integer member in [lo, hi], `fallback` when absent or null; an error naming `where` otherwise.
Result<int64_t> int_member(const Json& j, const char* key, int64_t lo, int64_t hi, int64_t fallback, const std::string& where) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (it->is_number_unsigned() && hi >= 0 && it->get<uint64_t>() <= static_cast<uint64_t>(hi) &&
        static_cast<int64_t>(it->get<uint64_t>()) >= lo) {
        return static_cast<int64_t>(it->get<uint64_t>());
    }
    if (it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() >= lo && it->get<int64_t>() <= hi) {
        return it->get<int64_t>();
    }
    return fail(ErrorCode::InvalidInput,
                where + ": '" + key + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi), where);
}

Result<std::string> str_member(const Json& j, const char* key, std::string fallback, const std::string& where) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_string()) return fail(ErrorCode::InvalidInput, where + ": '" + key + "' must be a string", where);
    return it->get<std::string>();
}

Result<bool> bool_member(const Json& j, const char* key, bool fallback, const std::string& where) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return fail(ErrorCode::InvalidInput, where + ": '" + key + "' must be true or false", where);
    return it->get<bool>();
}

#define MC_TRY(var, expr)                                  \
    auto var##_r = (expr);                                 \
    if (!var##_r) return std::unexpected(var##_r.error()); \
    auto var = std::move(*var##_r)

Result<ImportedChat> parse_our_json(const Json& doc) {
    ImportedChat out;
    MC_TRY(version, int_member(doc, "version", 0, 1000, 0, "version"));
    if (version != 1) return fail(ErrorCode::InvalidInput, "unsupported mycandy-chat version", "version");
    if (!doc.contains("messages") || !doc["messages"].is_array()) {
        return fail(ErrorCode::InvalidInput, "'messages' must be an array", "messages");
    }
    if (doc["messages"].size() > kMaxImportMessages) {
        return fail(ErrorCode::TooLarge, "the file holds more than " + std::to_string(kMaxImportMessages) + " messages", "messages");
    }
    if (doc.contains("chat") && doc["chat"].is_object()) {
        const Json& c = doc["chat"];
        MC_TRY(title, str_member(c, "title", "", "chat"));
        MC_TRY(created, int_member(c, "created_at", 0, kMaxDateMs, 0, "chat"));
        MC_TRY(updated, int_member(c, "updated_at", 0, kMaxDateMs, 0, "chat"));
        out.title = title.substr(0, 200);
        out.created_at = created;
        out.updated_at = updated;
    }
    size_t i = 0;
    for (const auto& j : doc["messages"]) {
        const std::string where = "messages[" + std::to_string(i++) + "]";
        if (!j.is_object() || !j.contains("role") || !j["role"].is_string() || !j.contains("content") ||
            !j["content"].is_string()) {
            return fail(ErrorCode::InvalidInput, where + " needs a 'role' and a 'content' string", "messages");
        }
        Message m;
        m.role = j["role"];
        if (m.role != "user" && m.role != "assistant" && m.role != "system") {
            return fail(ErrorCode::InvalidInput, where + ": unknown role '" + m.role.substr(0, 40) + "'", "messages");
        }
        m.content = j["content"];
        if (j.contains("swipes") && j["swipes"].is_array()) {
            if (j["swipes"].size() > kMaxImportSwipes) return fail(ErrorCode::TooLarge, where + ": too many swipes", "messages");
            for (const auto& s : j["swipes"]) {
                if (!s.is_string()) return fail(ErrorCode::InvalidInput, where + ": swipes must be strings", "messages");
                m.swipes.push_back(s);
            }
        }
        const int64_t max_swipe = m.swipes.empty() ? 0 : static_cast<int64_t>(m.swipes.size()) - 1;
        MC_TRY(swipe_id, int_member(j, "swipe_id", 0, max_swipe, 0, where));
        m.swipe_id = static_cast<int>(swipe_id);
        MC_TRY(status, str_member(j, "status", "complete", where));
        m.status = status == "partial" || status == "error" ? status : "complete";
        MC_TRY(created, int_member(j, "created_at", 0, kMaxDateMs, 0, where));
        m.created_at = created;
        if (j.contains("media") && j["media"].is_array()) m.media = j["media"];
        out.messages.push_back(std::move(m));
    }
    const Json no_list = Json::array();
    const Json& summaries = doc.contains("summaries") && doc["summaries"].is_array() ? doc["summaries"] : no_list;
    const Json& facts = doc.contains("facts") && doc["facts"].is_array() ? doc["facts"] : no_list;
    if (summaries.size() > kMaxImportSummaries) return fail(ErrorCode::TooLarge, "too many summaries", "summaries");
    if (facts.size() > kMaxImportFacts) return fail(ErrorCode::TooLarge, "too many facts", "facts");
    std::set<int64_t> versions;
    i = 0;
    for (const auto& j : summaries) {
        const std::string where = "summaries[" + std::to_string(i++) + "]";
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) continue;
        Summary s;
        MC_TRY(v, int_member(j, "version", 1, 1000000, static_cast<int64_t>(out.summaries.size()) + 1, where));
        if (!versions.insert(v).second) {
            return fail(ErrorCode::InvalidInput, where + ": version " + std::to_string(v) + " appears twice", "summaries");
        }
        s.version = static_cast<int>(v);
        s.text = j["text"];
        MC_TRY(source, str_member(j, "source", "import", where));
        s.source = source == "auto" || source == "user" || source == "rollback" ? source : "import";
        MC_TRY(created, int_member(j, "created_at", 0, kMaxDateMs, 0, where));
        s.created_at = created;
        MC_TRY(covers, int_member(j, "covers_until_index", -1, static_cast<int64_t>(kMaxImportMessages), -1, where));
        out.summaries.emplace_back(s, covers);
    }
    i = 0;
    for (const auto& j : facts) {
        const std::string where = "facts[" + std::to_string(i++) + "]";
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) continue;
        Fact f;
        f.text = j["text"];
        MC_TRY(pinned, bool_member(j, "pinned", false, where));
        f.pinned = pinned;
        MC_TRY(source, str_member(j, "source", "import", where));
        f.source = source == "user" || source == "auto" ? source : "import";
        MC_TRY(created, int_member(j, "created_at", 0, kMaxDateMs, 0, where));
        MC_TRY(updated, int_member(j, "updated_at", 0, kMaxDateMs, created, where));
        f.created_at = created;
        f.updated_at = updated;
        out.facts.push_back(std::move(f));
    }
    return out;
}

// SillyTavern chat files: a header line, then one message per line.
Result<ImportedChat> parse_jsonl(const std::string& body) {
    ImportedChat out;
    size_t start = 0, line_no = 0;
    while (start < body.size()) {
        size_t end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        const std::string_view line(body.data() + start, end - start);
        start = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = "line " + std::to_string(line_no);
        auto parsed = parse_json(line, where, where);
        if (!parsed) return std::unexpected(parsed.error());
        Json j = std::move(*parsed);
        if (!j.is_object()) return fail(ErrorCode::InvalidInput, where + " is not a JSON object", where);
        if (!j.contains("mes")) {
            if (out.messages.empty() && (j.contains("user_name") || j.contains("character_name") || j.contains("chat_metadata"))) {
                continue;  // The header.
            }
            return fail(ErrorCode::InvalidInput, where + " has no 'mes'", where);
        }
        if (!j["mes"].is_string()) return fail(ErrorCode::InvalidInput, where + ": 'mes' must be a string", where);
        if (out.messages.size() >= kMaxImportMessages) {
            return fail(ErrorCode::TooLarge, "the file holds more than " + std::to_string(kMaxImportMessages) + " messages", "body");
        }
        Message m;
        MC_TRY(is_user, bool_member(j, "is_user", false, where));
        MC_TRY(is_system, bool_member(j, "is_system", false, where));
        m.role = is_user ? "user" : is_system ? "system" : "assistant";
        m.content = j["mes"];
        if (j.contains("swipes") && j["swipes"].is_array()) {
            if (j["swipes"].size() > kMaxImportSwipes) return fail(ErrorCode::TooLarge, where + ": too many swipes", where);
            for (const auto& s : j["swipes"]) {
                if (s.is_string()) m.swipes.push_back(s);
            }
        }
        const auto sid = j.find("swipe_id");
        int64_t swipe_id = 0;
        if (sid != j.end() && sid->is_number_integer() && !sid->is_number_unsigned()) swipe_id = sid->get<int64_t>();
        if (sid != j.end() && sid->is_number_unsigned() && sid->get<uint64_t>() < kMaxImportSwipes) {
            swipe_id = static_cast<int64_t>(sid->get<uint64_t>());
        }
        if (swipe_id < 0 || swipe_id >= static_cast<int64_t>(m.swipes.size())) swipe_id = 0;
        m.swipe_id = static_cast<int>(swipe_id);
        if (!m.swipes.empty() && m.swipes[static_cast<size_t>(m.swipe_id)] != m.content) {
            m.swipes[static_cast<size_t>(m.swipe_id)] = m.content;  // "mes" is what was shown.
        }
        if (j.contains("send_date")) m.created_at = parse_date(j["send_date"]);
        out.messages.push_back(std::move(m));
    }
    if (out.messages.empty()) return fail(ErrorCode::InvalidInput, "the file holds no messages", "body");
    return out;
}

#undef MC_TRY

}  // namespace

Result<ImportedChat> parse_chat_file(const std::string& text) {
    if (text.empty()) return fail(ErrorCode::InvalidInput, "the request body is empty", "body");
    // Our format is one JSON object; anything else is read as JSONL, line by line.
    if (text.find_first_not_of(" \t\r\n") != std::string::npos && text[text.find_first_not_of(" \t\r\n")] == '{') {
        auto doc = parse_json(text, "the chat file", "body");
        if (doc && doc->is_object() && doc->contains("format") && (*doc)["format"] == "mycandy-chat") {
            return parse_our_json(*doc);
        }
        if (!doc && doc.error().message.find("nests deeper") != std::string::npos) return std::unexpected(doc.error());
    }
    return parse_jsonl(text);
}

Json export_chat_json(const Chat& chat, const Character& character, const std::vector<Message>& messages,
                      const std::vector<Summary>& summaries, const std::vector<Fact>& facts) {
    std::map<int64_t, int64_t> index_of;  // Message id -> position in the export.
    Json out = {{"format", "mycandy-chat"},
                {"version", 1},
                {"character", {{"id", character.id}, {"name", character.name}}},
                {"chat", {{"title", chat.title}, {"created_at", chat.created_at}, {"updated_at", chat.updated_at}}},
                {"messages", Json::array()},
                {"summaries", Json::array()},
                {"facts", Json::array()}};
    for (const auto& m : messages) {
        index_of[m.id] = static_cast<int64_t>(out["messages"].size());
        out["messages"].push_back({{"role", m.role}, {"content", m.content}, {"swipes", m.swipes},
                                   {"swipe_id", m.swipe_id}, {"status", m.status}, {"created_at", m.created_at},
                                   {"media", m.media}});
    }
    for (auto it = summaries.rbegin(); it != summaries.rend(); ++it) {
        // Which message a summary covers, as a position in this file (-1: none).
        int64_t covers = -1;
        for (const auto& [id, index] : index_of) {
            if (id <= it->covers_until_message_id) covers = index;
        }
        out["summaries"].push_back({{"version", it->version}, {"text", it->text}, {"covers_until_index", covers},
                                    {"source", it->source}, {"created_at", it->created_at}});
    }
    for (const auto& f : facts) {
        out["facts"].push_back({{"text", f.text}, {"pinned", f.pinned}, {"source", f.source},
                                {"created_at", f.created_at}, {"updated_at", f.updated_at}});
    }
    return out;
}

std::string export_chat_jsonl(const Chat& chat, const Character& character, const std::vector<Message>& messages,
                              const std::string& user_name) {
    auto dump = [](const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; };
    std::string out = dump({{"user_name", user_name}, {"character_name", character.name},
                            {"create_date", iso_date(chat.created_at)}, {"chat_metadata", Json::object()}});
    for (const auto& m : messages) {
        Json line = {{"name", m.role == "user" ? user_name : m.role == "assistant" ? character.name : "System"},
                     {"is_user", m.role == "user"},
                     {"is_system", m.role == "system"},
                     {"send_date", iso_date(m.created_at)},
                     {"mes", m.content},
                     {"extra", Json::object()}};
        if (m.role == "assistant") {
            line["swipes"] = m.swipes;
            line["swipe_id"] = m.swipe_id;
            line["swipe_info"] = Json::array();
        }
        out += dump(line);
    }
    return out;
}

std::string iso_date(int64_t ms) {
    const std::time_t t = static_cast<std::time_t>(std::clamp<int64_t>(ms, 0, kMaxDateMs) / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int64_t parse_date(const Json& v) {
    if (v.is_number_integer() && !v.is_number_unsigned()) {
        const int64_t n = v.get<int64_t>();
        if (n < 0 || n > kMaxDateMs) return 0;
        return n < 100000000000LL ? n * 1000 : n;  // Seconds or milliseconds.
    }
    if (v.is_number_unsigned()) {
        const uint64_t n = v.get<uint64_t>();
        if (n > static_cast<uint64_t>(kMaxDateMs)) return 0;
        return n < 100000000000ULL ? static_cast<int64_t>(n) * 1000 : static_cast<int64_t>(n);
    }
    if (v.is_string()) {
        std::tm tm{};
        const std::string s = v.get<std::string>();
        if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) {
            const int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
            return ms < 0 || ms > kMaxDateMs ? 0 : ms;
        }
    }
    return 0;
}

}  // namespace mc::chat
