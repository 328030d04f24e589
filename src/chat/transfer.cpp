#include "chat/transfer.hpp"

#include "core/json.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <set>

namespace mc::chat {
namespace {

constexpr size_t kMaxNameBytes = 1000;

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
        if (c.contains("st_header") && c["st_header"].is_object()) out.st_header = c["st_header"];
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
        MC_TRY(hidden, bool_member(j, "hidden", false, where));
        m.hidden = hidden;
        MC_TRY(name, str_member(j, "name", "", where));
        if (name.size() > kMaxNameBytes) return fail(ErrorCode::TooLarge, where + ": 'name' is longer than 1000 bytes", "messages");
        m.name = name;
        if (j.contains("st_fields") && j["st_fields"].is_object()) m.st_fields = j["st_fields"];
        // Generation figures per swipe: kept when they are what we write (objects or null), else dropped.
        if (j.contains("gen") && j["gen"].is_array() && j["gen"].size() <= m.swipes.size() + 1) {
            bool ok = true;
            for (const auto& g : j["gen"]) ok = ok && (g.is_null() || g.is_object());
            if (ok) m.gen = j["gen"];
        }
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
            if (out.messages.empty() && out.st_header.empty() &&
                (j.contains("user_name") || j.contains("character_name") || j.contains("chat_metadata"))) {
                out.st_header = std::move(j);  // The header, kept as it is.
                continue;
            }
            return fail(ErrorCode::InvalidInput, where + " has no 'mes'", where);
        }
        if (!j["mes"].is_string()) return fail(ErrorCode::InvalidInput, where + ": 'mes' must be a string", where);
        if (out.messages.size() >= kMaxImportMessages) {
            return fail(ErrorCode::TooLarge, "the file holds more than " + std::to_string(kMaxImportMessages) + " messages", "body");
        }
        Message m;
        MC_TRY(is_user, bool_member(j, "is_user", false, where));
        // is_system is SillyTavern's "hidden": shown greyed, never sent to the model. Whose
        // message it is says is_user, and extra.type (narrator and SillyTavern's own notes).
        MC_TRY(is_system, bool_member(j, "is_system", false, where));
        MC_TRY(name, str_member(j, "name", "", where));
        if (name.size() > kMaxNameBytes) return fail(ErrorCode::TooLarge, where + ": 'name' is longer than 1000 bytes", where);
        std::string type;
        if (const auto extra = j.find("extra"); extra != j.end() && extra->is_object()) {
            if (const auto t = extra->find("type"); t != extra->end() && t->is_string()) type = t->get<std::string>();
        }
        m.role = is_user ? "user" : !type.empty() ? "system" : "assistant";
        m.hidden = is_system;
        m.name = name;
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
        // Everything else on the line, as it came (swipe_id stays as the mark that the line
        // had swipes; the export writes the current one over it).
        for (const char* k : {"name", "is_user", "is_system", "mes", "swipes"}) j.erase(k);
        m.st_fields = std::move(j);
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
                      const std::vector<Summary>& summaries, const std::vector<Fact>& facts, const Json& st_header) {
    std::map<int64_t, int64_t> index_of;  // Message id -> position in the export.
    Json out = {{"format", "mycandy-chat"},
                {"version", 1},
                {"character", {{"id", character.id}, {"name", character.name}}},
                {"chat", {{"title", chat.title}, {"created_at", chat.created_at}, {"updated_at", chat.updated_at}}},
                {"messages", Json::array()},
                {"summaries", Json::array()},
                {"facts", Json::array()}};
    if (st_header.is_object() && !st_header.empty()) out["chat"]["st_header"] = st_header;
    for (const auto& m : messages) {
        index_of[m.id] = static_cast<int64_t>(out["messages"].size());
        Json j = {{"role", m.role}, {"content", m.content}, {"swipes", m.swipes},       {"swipe_id", m.swipe_id},
                  {"status", m.status}, {"created_at", m.created_at}, {"media", m.media}, {"hidden", m.hidden}};
        if (!m.name.empty()) j["name"] = m.name;
        if (m.st_fields.is_object() && !m.st_fields.empty()) j["st_fields"] = m.st_fields;
        if (m.gen.is_array() && !m.gen.empty()) j["gen"] = m.gen;
        out["messages"].push_back(std::move(j));
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
                              const std::string& user_name, const Json& st_header) {
    auto dump = [](const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; };
    Json header = st_header.is_object() ? st_header : Json::object();
    if (!header.contains("user_name")) header["user_name"] = user_name;
    if (!header.contains("character_name")) header["character_name"] = character.name;
    if (!header.contains("create_date")) header["create_date"] = iso_date(chat.created_at);
    if (!header.contains("chat_metadata")) header["chat_metadata"] = Json::object();
    std::string out = dump(header);
    // The user's name in messages written here: the file's persona when it came from one.
    const std::string user = header["user_name"].is_string() ? header["user_name"].get<std::string>() : user_name;
    for (const auto& m : messages) {
        // The line as it came (nothing for messages written here), then what we know over it.
        Json line = m.st_fields.is_object() ? m.st_fields : Json::object();
        const bool imported = !line.empty();
        const bool with_swipes = imported ? line.contains("swipe_id") || m.swipes.size() > 1 : m.role == "assistant";
        line["name"] = !m.name.empty() ? m.name : m.role == "user" ? user : m.role == "assistant" ? character.name : "System";
        line["is_user"] = m.role == "user";
        line["is_system"] = m.hidden;
        if (!line.contains("send_date")) line["send_date"] = iso_date(m.created_at);
        line["mes"] = m.content;
        if (!line.contains("extra") || !line["extra"].is_object()) line["extra"] = Json::object();
        if (m.role == "system" && !line["extra"].contains("type")) line["extra"]["type"] = "narrator";
        if (with_swipes) {
            line["swipes"] = m.swipes;
            line["swipe_id"] = m.swipe_id;
            if (line.contains("swipe_info") && line["swipe_info"].is_array()) {
                // One entry per swipe: swipes added here get a date and an empty extra.
                Json& info = line["swipe_info"];
                while (info.size() < m.swipes.size()) info.push_back({{"send_date", iso_date(m.created_at)}, {"extra", Json::object()}});
            } else if (!imported) {
                line["swipe_info"] = Json::array();
            }
        } else {
            line.erase("swipe_id");
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

namespace {

// Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

// A cursor over a date text.
struct Scan {
    std::string_view s;
    size_t i = 0;
    bool end() const { return i >= s.size(); }
    char peek() const { return end() ? '\0' : s[i]; }
    bool eat(char c) {
        if (peek() != c) return false;
        ++i;
        return true;
    }
    void spaces() {
        while (peek() == ' ' || peek() == '\t') ++i;
    }
    // 1 to `max_digits` digits.
    bool number(int64_t& out, size_t max_digits) {
        size_t n = 0;
        out = 0;
        while (n < max_digits && std::isdigit(static_cast<unsigned char>(peek()))) {
            out = out * 10 + (s[i++] - '0');
            ++n;
        }
        return n > 0;
    }
    bool word(std::string& out) {
        out.clear();
        while (std::isalpha(static_cast<unsigned char>(peek()))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i++])));
        return !out.empty();
    }
};

int64_t compose(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t sec, int64_t ms, int64_t offset_min) {
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > static_cast<int64_t>(days_in_month(y, static_cast<unsigned>(mo))) ||
        h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60 || ms < 0 || ms > 999) {
        return 0;
    }
    if (sec == 60) sec = 59;  // A leap second.
    const int64_t t = ((days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 24 + h) * 60 + mi - offset_min) * 60 + sec;
    const int64_t out = t * 1000 + ms;
    return out < 0 || out > kMaxDateMs ? 0 : out;
}

// Milliseconds from a fraction's digits (".5" = 500, ".123456" = 123).
int64_t fraction_ms(Scan& sc) {
    int64_t ms = 0;
    int n = 0;
    while (std::isdigit(static_cast<unsigned char>(sc.peek()))) {
        if (n < 3) ms = ms * 10 + (sc.s[sc.i] - '0');
        ++sc.i;
        ++n;
    }
    for (; n < 3; ++n) ms *= 10;
    return ms;
}

// "September 28, 2024 10:15am", "Sep 28, 2024 10:15:02 PM", "September 28, 2024".
int64_t parse_humanized(Scan sc) {
    static const char* months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    std::string w;
    if (!sc.word(w) || w.size() < 3) return 0;
    int64_t mo = 0;
    for (int k = 0; k < 12; ++k) {
        if (w.compare(0, 3, months[k]) == 0) mo = k + 1;
    }
    if (mo == 0) return 0;
    int64_t d = 0, y = 0, h = 0, mi = 0, sec = 0;
    sc.spaces();
    if (!sc.number(d, 2)) return 0;
    sc.eat(',');
    sc.spaces();
    if (!sc.number(y, 4)) return 0;
    sc.spaces();
    if (!sc.end()) {
        if (!sc.number(h, 2) || !sc.eat(':') || !sc.number(mi, 2)) return 0;
        if (sc.eat(':') && !sc.number(sec, 2)) return 0;
        sc.spaces();
        if (sc.word(w)) {
            if ((w != "am" && w != "pm") || h < 1 || h > 12) return 0;
            h = h % 12 + (w == "pm" ? 12 : 0);
        }
        sc.spaces();
        if (!sc.end()) return 0;
    }
    return compose(y, mo, d, h, mi, sec, 0, 0);
}

// ISO 8601 and SillyTavern's "2024-09-28@10h15m02s" / "2024-9-28 @10h 15m 2s 123ms".
int64_t parse_numeric(Scan sc) {
    int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0, offset = 0;
    if (!sc.number(y, 4) || !sc.eat('-') || !sc.number(mo, 2) || !sc.eat('-') || !sc.number(d, 2)) return 0;
    if (sc.end()) return compose(y, mo, d, 0, 0, 0, 0, 0);
    const size_t mark = sc.i;
    sc.spaces();
    if (sc.eat('@')) {
        sc.spaces();
        if (!sc.number(h, 2) || !sc.eat('h')) return 0;
        sc.spaces();
        if (!sc.number(mi, 2) || !sc.eat('m')) return 0;
        sc.spaces();
        if (!sc.number(sec, 2) || !sc.eat('s')) return 0;
        sc.spaces();
        if (!sc.end()) {
            if (!sc.number(ms, 3) || !sc.eat('m') || !sc.eat('s')) return 0;
            sc.spaces();
        }
        return sc.end() ? compose(y, mo, d, h, mi, sec, ms, 0) : 0;
    }
    sc.i = mark;
    if (!sc.eat('T') && !sc.eat('t') && !sc.eat(' ')) return 0;
    if (!sc.number(h, 2) || !sc.eat(':') || !sc.number(mi, 2)) return 0;
    if (sc.eat(':')) {
        if (!sc.number(sec, 2)) return 0;
        if (sc.eat('.') || sc.eat(',')) ms = fraction_ms(sc);
    }
    if (sc.eat('Z') || sc.eat('z')) {
        offset = 0;
    } else if (sc.peek() == '+' || sc.peek() == '-') {
        const int sign = sc.s[sc.i++] == '-' ? -1 : 1;
        int64_t oh = 0, om = 0;
        if (!sc.number(oh, 2)) return 0;
        sc.eat(':');
        sc.number(om, 2);
        if (oh > 23 || om > 59) return 0;
        offset = sign * (oh * 60 + om);
    }
    return sc.end() ? compose(y, mo, d, h, mi, sec, ms, offset) : 0;
}

int64_t from_epoch(uint64_t n) {
    if (n > static_cast<uint64_t>(kMaxDateMs)) return 0;
    return n < 100000000000ULL ? static_cast<int64_t>(n) * 1000 : static_cast<int64_t>(n);  // Seconds or milliseconds.
}

}  // namespace

int64_t parse_date_text(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    if (text.empty() || text.size() > 64) return 0;
    if (text.find_first_not_of("0123456789") == std::string_view::npos) {
        if (text.size() > 15) return 0;
        return from_epoch(std::stoull(std::string(text)));
    }
    Scan sc{text};
    if (std::isalpha(static_cast<unsigned char>(text.front()))) return parse_humanized(sc);
    return parse_numeric(sc);
}

int64_t parse_date(const Json& v) {
    if (v.is_number_unsigned()) return from_epoch(v.get<uint64_t>());
    if (v.is_number_integer()) {
        const int64_t n = v.get<int64_t>();
        return n < 0 ? 0 : from_epoch(static_cast<uint64_t>(n));
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        return d >= 0 && d <= static_cast<double>(kMaxDateMs) ? from_epoch(static_cast<uint64_t>(d)) : 0;
    }
    if (v.is_string()) return parse_date_text(v.get_ref<const std::string&>());
    return 0;
}

}  // namespace mc::chat
