// api/routes_memory: a chat's memory (summary versions, facts), full-text search, the prompt the
// next turn would use, chat export/import (our lossless JSON and SillyTavern JSONL) and branches
// (a new chat that copies one up to a message, with its memory).
#include <chrono>
#include <ctime>
#include <thread>
#include <limits>
#include <map>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "chat/transfer.hpp"
#include "core/log.hpp"
#include "core/text.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

constexpr size_t kMaxFactChars = 1000;
constexpr size_t kMaxSummaryChars = 16000;

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
        Fields fields(*body);
        fields.only({"text", "pinned"});
        const bool pinned = fields.boolean_or("pinned", true);
        if (fields.error()) return error_response(*fields.error());
        auto text = text_field(*body, "text", kMaxFactChars);
        if (!text) return error_response(text.error());
        auto f = ctx.memory.add_fact(req.param("id"), *text, pinned, "user");
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
        Fields f(*body);
        f.only({"version"});
        const auto version = f.integer("version", 1, 1000000);
        if (f.error()) return error_response(*f.error());
        auto old = ctx.memory.summary_version(req.param("id"), static_cast<int>(version));
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
        Fields f(body);
        f.only({"keep"});
        const int keep = static_cast<int>(f.integer_or("keep", 0, 100000, 4));
        if (f.error()) return error_response(*f.error());
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
        // Lorebook entries: which fired and why, and those matched but left out.
        Json world = Json::array();
        auto lore_json = [](const cards::FiredEntry& f, bool fired) {
            const char* pos = f.position == cards::LorePosition::AtDepth     ? "at_depth"
                              : f.position == cards::LorePosition::AfterChar ? "after_char"
                                                                             : "before_char";
            Json j{{"lorebook_id", f.lorebook_id}, {"entry", f.entry}, {"name", f.name}, {"fired", fired},
                   {"reason", f.reason}, {"position", pos}, {"order", f.order}, {"tokens", f.tokens}};
            if (f.position == cards::LorePosition::AtDepth) j["depth"] = f.depth;
            return j;
        };
        for (const auto& f : p->prompt.world_fired) world.push_back(lore_json(f, true));
        for (const auto& f : p->prompt.world_dropped) world.push_back(lore_json(f, false));
        // What the summary in the memory note covers (the context bar says so).
        Json summary = nullptr;
        if (auto s = ctx.memory.summary(req.param("id")); s && *s) {
            int64_t covered = 0;
            if ((*s)->covers_until_message_id > 0) {
                if (auto n = ctx.chats.count_until(req.param("id"), (*s)->covers_until_message_id)) covered = *n;
            }
            summary = {{"version", (*s)->version}, {"covers_messages", covered},
                       {"covers_until_message_id", std::to_string((*s)->covers_until_message_id)}};
        }
        return json_response(200, {{"text", p->text},
                                   {"summary", summary},
                                   {"world_info", world},
                                   {"messages", messages},
                                   {"tokens",
                                    {{"total", p->total_tokens},
                                     {"system", p->prompt.system_tokens},
                                     {"memory", p->prompt.memory_tokens},
                                     {"world_info", p->prompt.world_tokens},
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
        if (format != "json" && format != "jsonl") {
            return error_response({ErrorCode::InvalidInput, "'format' must be json or jsonl", "format"});
        }
        auto listed = ctx.chats.messages(chat->id, std::nullopt, 1000000000);
        if (!listed) return error_response(listed.error());
        const std::vector<Message>& messages = *listed;
        std::vector<Summary> summaries;
        if (auto list = ctx.memory.summaries(chat->id)) summaries = std::move(*list);
        std::vector<Fact> facts;
        if (auto list = ctx.memory.facts(chat->id)) facts = std::move(*list);
        auto st_header = ctx.chats.st_header(chat->id);
        if (!st_header) return error_response(st_header.error());
        Response r;
        if (format == "json") {
            r = json_response(200, chat::export_chat_json(*chat, *character, messages, summaries, facts, *st_header));
            r.headers.emplace_back("Content-Disposition", "attachment; filename=\"chat-" + chat->id + ".json\"");
        } else if (format == "jsonl") {
            r.content_type = "application/jsonl";
            r.body = chat::export_chat_jsonl(*chat, *character, messages, ctx.settings.current()->str("chat.user_name"), *st_header);
            r.headers.emplace_back("Content-Disposition", "attachment; filename=\"chat-" + chat->id + ".jsonl\"");
        } else {
            return error_response({ErrorCode::InvalidInput, "'format' must be json or jsonl", "format"});
        }
        return r;
    });

    // A branch: a new chat of the same character with the messages up to and including one (every
    // swipe, hidden flag, generation figures and picture as they are), the facts, and the summary
    // versions that cover no later message. The source chat is not changed.
    server.route(Method::Post, "/api/chats/{id}/branch", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"message_id", "title"});
        const std::string message_ref = f.string("message_id", 32);  // Ids are strings, as everywhere.
        const auto title = f.opt_string("title", 200);
        if (f.error()) return error_response(*f.error());
        auto parsed_id = parse_id(message_ref, "message", "message_id");
        if (!parsed_id) return error_response(parsed_id.error());
        const int64_t message_id = *parsed_id;
        const std::string source_id = req.param("id");
        auto source = ctx.chats.get(source_id);
        if (!source) return error_response(source.error());
        Chat branch;
        std::vector<Message> stored;
        std::vector<std::string> linked;  // Files made for the branch: removed again if it fails.
        // No turn writes into the source while it is copied (409 while one runs).
        auto copied = ctx.chat.while_idle(source_id, [&]() -> Result<void> {
            auto at = ctx.chats.get_message(message_id);
            if (!at || at->chat_id != source_id) {
                return fail(ErrorCode::NotFound, "no message " + std::to_string(message_id) + " in this chat", "message_id");
            }
            auto done = ctx.db.transaction([&] {
                auto created = store::value_or_throw(ctx.chats.create(source->character_id, {}));
                const std::string id = created.first.id;
                const std::string name = title ? *title : source->title;
                if (!name.empty()) store::value_or_throw(ctx.chats.rename(id, name));
                const Json header = store::value_or_throw(ctx.chats.st_header(source_id));
                if (!header.empty()) store::value_or_throw(ctx.chats.set_st_header(id, header));
                auto messages = store::value_or_throw(
                    ctx.chats.messages_between(source_id, 0, message_id, std::numeric_limits<int>::max()));
                std::vector<int64_t> old_ids;
                for (auto& m : messages) {
                    old_ids.push_back(m.id);
                    m.id = 0;
                    // Its pictures and spoken audio get names of their own (hard links): deleting
                    // one chat's picture leaves the other's.
                    if (!m.media.is_array()) continue;
                    for (auto& entry : m.media) {
                        std::vector<std::string> files;
                        store::BlobStore::media_files(Json::array({entry}).dump(), files);
                        if (files.empty()) continue;
                        auto copy = ctx.blobs.link(files.front());
                        if (!copy) continue;  // A missing file stays missing in both.
                        linked.push_back(*copy);
                        entry["url"] = "/api/media/" + *copy;
                    }
                }
                stored = store::value_or_throw(ctx.chats.import_messages(id, std::move(messages)));
                std::map<int64_t, int64_t> new_id;
                for (size_t i = 0; i < stored.size() && i < old_ids.size(); ++i) new_id[old_ids[i]] = stored[i].id;
                std::vector<Summary> summaries;
                for (auto s : store::value_or_throw(ctx.memory.summaries(source_id))) {
                    if (s.covers_until_message_id > message_id) continue;
                    auto it = new_id.find(s.covers_until_message_id);
                    s.covers_until_message_id = it == new_id.end() ? 0 : it->second;
                    summaries.insert(summaries.begin(), s);  // Oldest first.
                }
                store::value_or_throw(ctx.memory.import_memory(id, summaries, store::value_or_throw(ctx.memory.facts(source_id))));
                return store::value_or_throw(ctx.chats.get(id));
            });
            if (!done) {
                for (const auto& f : linked) ctx.blobs.remove(f);
                return std::unexpected(done.error());
            }
            branch = std::move(*done);
            return {};
        });
        if (!copied) return error_response(copied.error());
        log::info("chat ", branch.id, " branched from ", source_id, " at message ", message_id, " (", stored.size(), " messages)");
        Json messages = Json::array();
        for (const auto& m : stored) messages.push_back(message_to_json(m));
        return json_response(201, {{"chat", chat_to_json(branch)}, {"messages", messages}});
    });

    server.route(Method::Post, "/api/characters/{id}/chats/import", [&ctx](const Request& req) {
        auto character = ctx.characters.get(req.param("id"));
        if (!character) return error_response(character.error());
        // An upload: decided by content (our JSON or SillyTavern JSONL), whatever its Content-Type.
        auto parsed = chat::parse_chat_file(req.upload());
        if (!parsed) return error_response(parsed.error());
        // One transaction: a failure anywhere leaves no half-imported chat behind.
        std::vector<Message> stored;
        auto done = ctx.db.transaction([&] {
            auto created = store::value_or_throw(ctx.chats.create(character->id, {}));
            const std::string id = created.first.id;
            if (!parsed->title.empty()) store::value_or_throw(ctx.chats.rename(id, parsed->title));
            if (!parsed->st_header.empty()) store::value_or_throw(ctx.chats.set_st_header(id, parsed->st_header));
            stored = store::value_or_throw(ctx.chats.import_messages(id, std::move(parsed->messages)));
            std::vector<Summary> summaries;
            for (auto& [s, index] : parsed->summaries) {
                s.covers_until_message_id =
                    index >= 0 && index < static_cast<int64_t>(stored.size()) ? stored[static_cast<size_t>(index)].id : 0;
                summaries.push_back(s);
            }
            store::value_or_throw(ctx.memory.import_memory(id, summaries, parsed->facts));
            if (parsed->created_at > 0) {
                store::value_or_throw(ctx.chats.set_times(id, parsed->created_at, std::max(parsed->updated_at, parsed->created_at)));
            } else if (!stored.empty()) {
                store::value_or_throw(ctx.chats.set_times(id, stored.front().created_at, stored.back().created_at));
            }
            return id;
        });
        if (!done) return error_response(done.error());
        const std::string chat_id = *done;
        auto chat = ctx.chats.get(chat_id);
        if (!chat) return error_response(chat.error());
        Json messages = Json::array();
        for (const auto& m : stored) messages.push_back(message_to_json(m));
        return json_response(201, {{"chat", chat_to_json(*chat)}, {"messages", messages}});
    });
}

}  // namespace mc::api
