// api/routes_memory: a chat's memory (summary versions, facts), full-text search, the prompt the
// next turn would use, and chat export/import (our lossless JSON and SillyTavern JSONL).
#include <chrono>
#include <ctime>
#include <thread>
#include <map>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "core/text.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

constexpr size_t kMaxFactChars = 1000;
constexpr size_t kMaxSummaryChars = 16000;
constexpr size_t kMaxImportMessages = 200000;

Result<std::string> text_field(const Json& body, const char* key, size_t max_chars) {
    if (!body.contains(key) || !body[key].is_string()) {
        return fail(ErrorCode::InvalidInput, std::string("'") + key + "' (a string) is required", key);
    }
    std::string t = body[key].get<std::string>();
    if (t.find_first_not_of(" \t\r\n") == std::string::npos) {
        return fail(ErrorCode::InvalidInput, std::string("'") + key + "' must not be empty", key);
    }
    if (utf8_length(t) > max_chars) {
        return fail(ErrorCode::TooLarge, std::string("'") + key + "' is longer than " + std::to_string(max_chars) + " characters", key);
    }
    return t;
}

Json memory_json(Context& ctx, const std::string& chat_id) {
    Json out = {{"summary", nullptr}, {"summaries_history", Json::array()}, {"facts", Json::array()}, {"jobs", Json::array()}};
    if (auto jobs = ctx.jobs.active_for_chat(chat_id)) {
        for (const auto& j : *jobs) out["jobs"].push_back(job_to_json(j));  // Summaries being written, facts sought.
    }
    if (auto list = ctx.memory.summaries(chat_id); list && !list->empty()) {
        out["summary"] = summary_to_json(list->front());
        for (const auto& s : *list) out["summaries_history"].push_back(summary_to_json(s));
    }
    if (auto facts = ctx.memory.facts(chat_id)) {
        for (const auto& f : *facts) out["facts"].push_back(fact_to_json(f));
    }
    return out;
}

std::string iso_date(int64_t ms) {
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int64_t parse_date(const Json& v) {
    if (v.is_number_integer()) {
        const int64_t n = v.get<int64_t>();
        return n < 100000000000LL ? n * 1000 : n;  // Seconds or milliseconds.
    }
    if (v.is_string()) {
        std::tm tm{};
        const std::string s = v.get<std::string>();
        if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return static_cast<int64_t>(timegm(&tm)) * 1000;
    }
    return 0;
}

Json export_json(Context& ctx, const Chat& chat, const Character& character) {
    auto messages = ctx.chats.messages(chat.id, std::nullopt, 1000000000);
    std::map<int64_t, int64_t> index_of;  // Message id -> position in the export.
    Json out = {{"format", "mycandy-chat"},
                {"version", 1},
                {"character", {{"id", character.id}, {"name", character.name}}},
                {"chat", {{"title", chat.title}, {"created_at", chat.created_at}, {"updated_at", chat.updated_at}}},
                {"messages", Json::array()},
                {"summaries", Json::array()},
                {"facts", Json::array()}};
    if (messages) {
        for (const auto& m : *messages) {
            index_of[m.id] = static_cast<int64_t>(out["messages"].size());
            out["messages"].push_back({{"role", m.role}, {"content", m.content}, {"swipes", m.swipes},
                                       {"swipe_id", m.swipe_id}, {"status", m.status}, {"created_at", m.created_at},
                                       {"media", m.media}});
        }
    }
    if (auto list = ctx.memory.summaries(chat.id)) {
        for (auto it = list->rbegin(); it != list->rend(); ++it) {
            // Which message a summary covers, as a position in this file (-1: none).
            int64_t covers = -1;
            for (const auto& [id, index] : index_of) {
                if (id <= it->covers_until_message_id) covers = index;
            }
            out["summaries"].push_back({{"version", it->version}, {"text", it->text}, {"covers_until_index", covers},
                                        {"source", it->source}, {"created_at", it->created_at}});
        }
    }
    if (auto facts = ctx.memory.facts(chat.id)) {
        for (const auto& f : *facts) {
            out["facts"].push_back({{"text", f.text}, {"pinned", f.pinned}, {"source", f.source},
                                    {"created_at", f.created_at}, {"updated_at", f.updated_at}});
        }
    }
    return out;
}

std::string export_jsonl(Context& ctx, const Chat& chat, const Character& character) {
    const std::string user = ctx.settings.current()->str("chat.user_name");
    auto dump = [](const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; };
    std::string out = dump({{"user_name", user}, {"character_name", character.name},
                            {"create_date", iso_date(chat.created_at)}, {"chat_metadata", Json::object()}});
    auto messages = ctx.chats.messages(chat.id, std::nullopt, 1000000000);
    if (!messages) return out;
    for (const auto& m : *messages) {
        Json line = {{"name", m.role == "user" ? user : m.role == "assistant" ? character.name : "System"},
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

struct Imported {
    std::vector<Message> messages;
    std::vector<std::pair<Summary, int64_t>> summaries;  // With the covered message's position.
    std::vector<Fact> facts;
    std::string title;
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

Result<Imported> parse_our_json(const Json& doc) {
    Imported out;
    if (doc.value("version", 0) != 1) return fail(ErrorCode::InvalidInput, "unsupported mycandy-chat version", "version");
    if (!doc.contains("messages") || !doc["messages"].is_array()) {
        return fail(ErrorCode::InvalidInput, "'messages' must be an array", "messages");
    }
    if (doc.contains("chat") && doc["chat"].is_object()) {
        out.title = doc["chat"].value("title", "");
        out.created_at = doc["chat"].value("created_at", int64_t{0});
        out.updated_at = doc["chat"].value("updated_at", int64_t{0});
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
            return fail(ErrorCode::InvalidInput, where + ": unknown role '" + m.role + "'", "messages");
        }
        m.content = j["content"];
        if (j.contains("swipes") && j["swipes"].is_array()) {
            for (const auto& s : j["swipes"]) {
                if (!s.is_string()) return fail(ErrorCode::InvalidInput, where + ": swipes must be strings", "messages");
                m.swipes.push_back(s);
            }
        }
        m.swipe_id = j.value("swipe_id", 0);
        m.status = j.value("status", "complete");
        if (m.status != "complete" && m.status != "partial" && m.status != "error") m.status = "complete";
        m.created_at = j.value("created_at", int64_t{0});
        if (j.contains("media") && j["media"].is_array()) m.media = j["media"];
        out.messages.push_back(std::move(m));
    }
    for (const auto& j : doc.value("summaries", Json::array())) {
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) continue;
        Summary s;
        s.version = j.value("version", static_cast<int>(out.summaries.size()) + 1);
        s.text = j["text"];
        s.source = j.value("source", "import");
        if (s.source != "auto" && s.source != "user" && s.source != "rollback") s.source = "import";
        s.created_at = j.value("created_at", int64_t{0});
        out.summaries.emplace_back(s, j.value("covers_until_index", int64_t{-1}));
    }
    for (const auto& j : doc.value("facts", Json::array())) {
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) continue;
        Fact f;
        f.text = j["text"];
        f.pinned = j.value("pinned", false);
        f.source = j.value("source", "import");
        if (f.source != "user" && f.source != "auto") f.source = "import";
        f.created_at = j.value("created_at", int64_t{0});
        f.updated_at = j.value("updated_at", f.created_at);
        out.facts.push_back(std::move(f));
    }
    return out;
}

// SillyTavern chat files: a header line, then one message per line.
Result<Imported> parse_jsonl(const std::string& body) {
    Imported out;
    size_t start = 0, line_no = 0;
    while (start < body.size()) {
        size_t end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        std::string line = body.substr(start, end - start);
        start = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = "line " + std::to_string(line_no);
        Json j = Json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            return fail(ErrorCode::InvalidInput, where + " is not a JSON object", "line " + std::to_string(line_no));
        }
        if (!j.contains("mes")) {
            if (out.messages.empty() && (j.contains("user_name") || j.contains("character_name") || j.contains("chat_metadata"))) {
                continue;  // The header.
            }
            return fail(ErrorCode::InvalidInput, where + " has no 'mes'", "line " + std::to_string(line_no));
        }
        if (!j["mes"].is_string()) return fail(ErrorCode::InvalidInput, where + ": 'mes' must be a string", "line " + std::to_string(line_no));
        Message m;
        m.role = j.value("is_user", false) ? "user" : j.value("is_system", false) ? "system" : "assistant";
        m.content = j["mes"];
        if (j.contains("swipes") && j["swipes"].is_array()) {
            for (const auto& s : j["swipes"]) {
                if (s.is_string()) m.swipes.push_back(s);
            }
        }
        m.swipe_id = j.contains("swipe_id") && j["swipe_id"].is_number_integer() ? j["swipe_id"].get<int>() : 0;
        if (!m.swipes.empty() && (m.swipe_id < 0 || m.swipe_id >= static_cast<int>(m.swipes.size()))) m.swipe_id = 0;
        if (!m.swipes.empty() && m.swipes[static_cast<size_t>(m.swipe_id)] != m.content) {
            m.swipes[static_cast<size_t>(m.swipe_id)] = m.content;  // "mes" is what was shown.
        }
        if (j.contains("send_date")) m.created_at = parse_date(j["send_date"]);
        out.messages.push_back(std::move(m));
        if (out.messages.size() > kMaxImportMessages) return fail(ErrorCode::TooLarge, "too many messages", "body");
    }
    if (out.messages.empty()) return fail(ErrorCode::InvalidInput, "the file holds no messages", "body");
    return out;
}

}  // namespace

void register_memory_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/api/chats/{id}/memory", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        return json_response(200, memory_json(ctx, req.param("id")));
    });

    server.route(Method::Post, "/api/chats/{id}/memory/facts", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        auto text = text_field(*body, "text", kMaxFactChars);
        if (!text) return error_response(text.error());
        if (body->contains("pinned") && !(*body)["pinned"].is_boolean()) {
            return error_response({ErrorCode::InvalidInput, "'pinned' must be true or false", "pinned"});
        }
        auto f = ctx.memory.add_fact(req.param("id"), *text, body->value("pinned", true), "user");
        if (!f) return error_response(f.error());
        return json_response(201, fact_to_json(*f));
    });

    server.route(Method::Patch, "/api/memory/facts/{id}", [&ctx](const Request& req) {
        auto id = parse_id(req.param("id"), "fact");
        if (!id) return error_response(id.error());
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        auto f = ctx.memory.fact(*id);
        if (!f) return error_response(f.error());
        for (auto it = body->begin(); it != body->end(); ++it) {
            if (it.key() == "text") {
                auto text = text_field(*body, "text", kMaxFactChars);
                if (!text) return error_response(text.error());
                f->text = *text;
            } else if (it.key() == "pinned") {
                if (!it->is_boolean()) return error_response({ErrorCode::InvalidInput, "'pinned' must be true or false", "pinned"});
                f->pinned = it->get<bool>();
            } else {
                return error_response({ErrorCode::InvalidInput, "unknown field '" + it.key() + "'", it.key()});
            }
        }
        auto saved = ctx.memory.update_fact(*f);
        if (!saved) return error_response(saved.error());
        return json_response(200, fact_to_json(*saved));
    });

    server.route(Method::Delete, "/api/memory/facts/{id}", [&ctx](const Request& req) {
        auto id = parse_id(req.param("id"), "fact");
        if (!id) return error_response(id.error());
        if (auto r = ctx.memory.remove_fact(*id); !r) return error_response(r.error());
        return json_response(200, {{"deleted", req.param("id")}});
    });

    server.route(Method::Put, "/api/chats/{id}/memory/summary", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        auto text = text_field(*body, "text", kMaxSummaryChars);
        if (!text) return error_response(text.error());
        int64_t covers = 0;
        if (auto s = ctx.memory.summary(req.param("id")); s && *s) covers = (*s)->covers_until_message_id;
        auto saved = ctx.memory.add_summary(req.param("id"), *text, covers, "user");
        if (!saved) return error_response(saved.error());
        return json_response(200, summary_to_json(*saved));
    });

    server.route(Method::Post, "/api/chats/{id}/memory/summary/rollback", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        if (!body->contains("version") || !(*body)["version"].is_number_integer()) {
            return error_response({ErrorCode::InvalidInput, "'version' (an integer) is required", "version"});
        }
        auto old = ctx.memory.summary_version(req.param("id"), (*body)["version"].get<int>());
        if (!old) return error_response(old.error());
        // A rollback is a new version with the old text, so nothing is lost.
        auto saved = ctx.memory.add_summary(req.param("id"), old->text, old->covers_until_message_id, "rollback");
        if (!saved) return error_response(saved.error());
        return json_response(200, summary_to_json(*saved));
    });

    // Summarize now (a button in the UI): covers everything but the newest `keep` messages.
    server.route(Method::Post, "/api/chats/{id}/memory/summarize", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        Json body = Json::object();
        if (!req.body.empty()) {
            auto parsed = parse_object(req);
            if (!parsed) return error_response(parsed.error());
            body = *parsed;
        }
        if (body.contains("keep") && (!body["keep"].is_number_integer() || body["keep"].get<int64_t>() < 0)) {
            return error_response({ErrorCode::InvalidInput, "'keep' must be a number of messages (0 or more)", "keep"});
        }
        const int keep = static_cast<int>(body.value("keep", int64_t{4}));
        auto recent = ctx.chats.messages(req.param("id"), std::nullopt, keep + 1);
        if (!recent) return error_response(recent.error());
        if (static_cast<int>(recent->size()) <= keep) {
            return error_response({ErrorCode::Conflict, "there is nothing to summarize yet", "keep"});
        }
        auto job = ctx.jobs.submit_unique("summary", Json{{"until", recent->front().id}}, req.param("id"));
        if (!job) return error_response(job.error());
        return json_response(202, {{"job", job_to_json(*job)}});
    });

    server.route(Method::Get, "/api/chats/{id}/search", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        const auto q = req.query_param("q");
        if (!q || q->find_first_not_of(" \t") == std::string::npos) {
            return error_response({ErrorCode::InvalidInput, "'q' is required", "q"});
        }
        if (q->size() > 500) return error_response({ErrorCode::InvalidInput, "'q' is longer than 500 bytes", "q"});
        auto hits = ctx.memory.search_messages(req.param("id"), *q, 50);
        if (!hits) return error_response(hits.error());
        Json out = Json::array();
        for (const auto& h : *hits) out.push_back({{"message", message_to_json(h.message)}, {"snippet", h.snippet}});
        return json_response(200, {{"results", out}});
    });

    server.route(Method::Get, "/api/chats/{id}/prompt", [&ctx](const Request& req) {
        auto p = ctx.chat.preview(req.param("id"), req.query_param("message"));
        if (!p) return error_response(p.error());
        Json messages = Json::array();
        for (const auto& m : p->prompt.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
        Json facts = Json::array();
        for (auto id : p->prompt.fact_ids) facts.push_back(std::to_string(id));
        return json_response(200, {{"text", p->text},
                                   {"messages", messages},
                                   {"tokens",
                                    {{"total", p->total_tokens},
                                     {"system", p->prompt.system_tokens},
                                     {"memory", p->prompt.memory_tokens},
                                     {"history", p->prompt.history_tokens},
                                     {"post_history", p->prompt.post_tokens},
                                     {"reply_reserved", p->reply_tokens},
                                     {"context", p->context_size}}},
                                   {"history_used", p->prompt.history_used},
                                   {"history_dropped", p->prompt.history_dropped},
                                   {"fact_ids", facts}});
    });

    server.route(Method::Get, "/api/chats/{id}/export", [&ctx](const Request& req) {
        auto chat = ctx.chats.get(req.param("id"));
        if (!chat) return error_response(chat.error());
        auto character = ctx.characters.get(chat->character_id);
        if (!character) return error_response(character.error());
        const std::string format = req.query_param("format").value_or("json");
        Response r;
        if (format == "json") {
            r = json_response(200, export_json(ctx, *chat, *character));
            r.headers.emplace_back("Content-Disposition", "attachment; filename=\"chat-" + chat->id + ".json\"");
        } else if (format == "jsonl") {
            r.content_type = "application/jsonl";
            r.body = export_jsonl(ctx, *chat, *character);
            r.headers.emplace_back("Content-Disposition", "attachment; filename=\"chat-" + chat->id + ".jsonl\"");
        } else {
            return error_response({ErrorCode::InvalidInput, "'format' must be json or jsonl", "format"});
        }
        return r;
    });

    server.route(Method::Post, "/api/characters/{id}/chats/import", [&ctx](const Request& req) {
        auto character = ctx.characters.get(req.param("id"));
        if (!character) return error_response(character.error());
        if (req.body.empty()) return error_response({ErrorCode::InvalidInput, "the request body is empty", "body"});
        Result<Imported> parsed = fail(ErrorCode::InvalidInput, "unreadable", "body");
        Json doc = Json::parse(req.body, nullptr, false);
        if (doc.is_object() && doc.value("format", "") == "mycandy-chat") parsed = parse_our_json(doc);
        else parsed = parse_jsonl(req.body);
        if (!parsed) return error_response(parsed.error());
        auto created = ctx.chats.create(character->id, {});
        if (!created) return error_response(created.error());
        const std::string chat_id = created->first.id;
        if (!parsed->title.empty()) (void)ctx.chats.rename(chat_id, parsed->title);
        auto stored = ctx.chats.import_messages(chat_id, std::move(parsed->messages));
        if (!stored) {
            (void)ctx.chats.remove(chat_id);
            return error_response(stored.error());
        }
        std::vector<Summary> summaries;
        for (auto& [s, index] : parsed->summaries) {
            s.covers_until_message_id = index >= 0 && index < static_cast<int64_t>(stored->size())
                                            ? (*stored)[static_cast<size_t>(index)].id
                                            : 0;
            summaries.push_back(s);
        }
        if (auto m = ctx.memory.import_memory(chat_id, summaries, parsed->facts); !m) {
            (void)ctx.chats.remove(chat_id);
            return error_response(m.error());
        }
        if (parsed->created_at > 0) {
            (void)ctx.chats.set_times(chat_id, parsed->created_at, std::max(parsed->updated_at, parsed->created_at));
        } else if (!stored->empty()) {
            (void)ctx.chats.set_times(chat_id, stored->front().created_at, stored->back().created_at);
        }
        auto chat = ctx.chats.get(chat_id);
        Json messages = Json::array();
        for (const auto& m : *stored) messages.push_back(message_to_json(m));
        return json_response(201, {{"chat", chat_to_json(*chat)}, {"messages", messages}});
    });
}

void register_job_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/api/jobs/{id}", [&ctx](const Request& req) {
        auto j = ctx.jobs.get(req.param("id"));
        if (!j) return error_response(j.error());
        return json_response(200, job_to_json(*j));
    });
    server.route(Method::Post, "/api/jobs/{id}/cancel", [&ctx](const Request& req) {
        auto j = ctx.jobs.cancel(req.param("id"));
        if (!j) return error_response(j.error());
        return json_response(200, job_to_json(*j));
    });
    // Progress as SSE: an event each time the job changes, until it has ended.
    server.route(Method::Get, "/api/jobs/{id}/events", [&ctx](const Request& req) {
        auto j = ctx.jobs.get(req.param("id"));
        if (!j) return error_response(j.error());
        Response r;
        r.content_type = "text/event-stream";
        r.headers = {{"Cache-Control", "no-cache"}};
        const std::string id = req.param("id");
        r.stream = [&ctx, id](http::StreamSink& sink) {
            int64_t seen = -1;
            std::string last_status;
            for (int i = 0; i < 36000 && !(ctx.stopping && ctx.stopping()); ++i) {
                auto job = ctx.jobs.get(id);
                if (!job) break;
                if (job->updated_at != seen || job->status != last_status) {
                    seen = job->updated_at;
                    last_status = job->status;
                    if (!sink.write(http::sse_event("job", job_to_json(*job).dump()))) return;
                }
                if (job->status == "done" || job->status == "failed" || job->status == "cancelled") return;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        };
        return r;
    });
}

}  // namespace mc::api
