// api/routes_chats: chats, messages, and turns streamed as Server-Sent Events.
#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "chat/prompt.hpp"
#include "core/log.hpp"
#include "core/text.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

// How a stream treats its client going away.
enum class OnDisconnect {
    Cancel,    // The turn stops and stores its partial reply; the stream drains to the turn's end.
    Continue,  // The turn goes on (and is stored whole); the stream ends. A reloaded page attaches again.
};

// Streams a turn's events. `replay`: this reader attached later and starts from the turn's first
// event (after a `turn` event saying what kind of turn it is).
Response stream_turn(Context& ctx, std::shared_ptr<chat::Turn> turn, OnDisconnect on_disconnect, bool replay = false) {
    Response r;
    r.content_type = "text/event-stream";
    r.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    r.stream = [turn, &ctx, on_disconnect, replay](http::StreamSink& sink) {
        bool connected = true;
        size_t cursor = 0;
        if (replay) {
            const chat::TurnKind kind = turn->kind();
            const char* name = kind == chat::TurnKind::Send ? "messages" : kind == chat::TurnKind::Regenerate ? "regenerate" : "continue";
            const int64_t target = turn->target_id();
            connected = sink.write(http::sse_event("turn", Json{{"kind", name}, {"target_id", target ? Json(std::to_string(target)) : Json(nullptr)}}.dump()));
        }
        auto idle_since = std::chrono::steady_clock::now();
        auto gone = [&] {
            if (on_disconnect == OnDisconnect::Cancel) turn->cancel();
            return on_disconnect == OnDisconnect::Continue;  // Nothing more to do here.
        };
        if (!connected && gone()) return;
        while (true) {
            bool ended = false;
            auto e = replay ? turn->next_from(cursor, std::chrono::milliseconds(200), ended) : turn->next(std::chrono::milliseconds(200), ended);
            if (e) {
                if (connected && !sink.write(turn_event_sse(*e))) {
                    connected = false;
                    if (gone()) return;
                }
                idle_since = std::chrono::steady_clock::now();
                continue;
            }
            if (ended) break;
            if (ctx.stopping && ctx.stopping()) turn->cancel();
            if (connected && std::chrono::steady_clock::now() - idle_since > std::chrono::seconds(5)) {
                // A comment line keeps proxies and browsers from timing out during a long prompt,
                // and finds out whether the client is still there.
                connected = sink.write(": keep-alive\n\n");
                idle_since = std::chrono::steady_clock::now();
            }
            if (!connected && gone()) return;
        }
    };
    return r;
}

// The samplers a turn in this chat starts from: the settings', with the character's own over them
// (extensions.mycandy.sampling, checked when the character was saved; set into `t` when it has any).
llm::Sampling character_turn_sampling(Context& ctx, const std::string& chat_id, chat::TurnRequest& t) {
    llm::Sampling base = ctx.chat.default_sampling();
    auto chat = ctx.chats.get(chat_id);
    if (!chat) return base;
    auto character = ctx.characters.get(chat->character_id);
    if (!character) return base;
    if (const Json* mine = character_sampling(character->extensions)) {
        if (auto s = sampling_from_json(*mine, base, "extensions.mycandy.sampling.")) {
            t.sampling = *s;
            return *s;
        } else {
            log::warn("character ", character->id, ": its samplers are ignored: ", s.error().message);
        }
    }
    return base;
}

// Bounds what a text field may hold before its own limit is checked (memory, not policy).
constexpr size_t kMaxBodyText = 16u << 20;

Response start_turn(Context& ctx, const Request& req, chat::TurnKind kind) {
    chat::TurnRequest t;
    t.kind = kind;
    Json body = Json::object();
    if (!req.body.empty() || kind == chat::TurnKind::Send) {
        auto parsed = parse_object(req);
        if (!parsed) return error_response(parsed.error());
        body = std::move(*parsed);
    }
    Fields f(body);
    if (kind == chat::TurnKind::Send) {
        f.only({"content", "sampling", "speak", "on_disconnect"});
        // The length limit (llm.max_message_chars) is the chat service's; this only bounds memory.
        t.content = f.string("content", kMaxBodyText);
    } else {
        f.only({"sampling", "speak", "on_disconnect"});
    }
    const auto on_disconnect = f.opt_string("on_disconnect", 16);
    if (on_disconnect && *on_disconnect != "cancel" && *on_disconnect != "continue") {
        f.reject(ErrorCode::InvalidInput, "on_disconnect", "'on_disconnect' must be \"cancel\" (the default) or \"continue\"");
    }
    // Speaking is on by default when text-to-speech is (media.tts_enabled); the UI's speaker toggle
    // sends its own choice.
    t.speak = f.opt_boolean("speak").value_or(ctx.settings.current()->boolean("media.tts_enabled"));
    if (f.error()) return error_response(*f.error());
    // The settings' samplers, the character's own over them, the request's over both.
    const llm::Sampling base = character_turn_sampling(ctx, req.param("id"), t);
    if (body.contains("sampling") && !body["sampling"].is_null()) {
        auto s = sampling_from_json(body["sampling"], base);
        if (!s) return error_response(s.error());
        t.sampling = *s;
    }
    auto turn = ctx.chat.start(req.param("id"), std::move(t));
    if (!turn) return error_response(turn.error());
    return stream_turn(ctx, *turn, on_disconnect.value_or("cancel") == "continue" ? OnDisconnect::Continue : OnDisconnect::Cancel);
}

}  // namespace

Result<std::shared_ptr<chat::Turn>> start_spoken_turn(Context& ctx, const std::string& chat_id, const std::string& text) {
    chat::TurnRequest t;
    t.kind = chat::TurnKind::Send;
    t.content = text;
    t.speak = true;
    character_turn_sampling(ctx, chat_id, t);
    return ctx.chat.start(chat_id, std::move(t));
}

void register_chat_routes(http::Server& server, Context& ctx) {
    server.route(Method::Post, "/api/chats", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"character_id"});
        const std::string character_id = f.string("character_id", 100);
        if (f.error()) return error_response(*f.error());
        auto c = ctx.characters.get(character_id);
        if (!c) {
            Error e = c.error();
            e.field = "character_id";
            return error_response(e);
        }
        // Stored as written: {{user}} and {{char}} are filled in when the chat is shown and when a
        // prompt is built, so renaming yourself (chat.user_name) or the character applies at once.
        std::vector<std::string> greetings;
        if (!c->first_mes.empty()) greetings.push_back(c->first_mes);
        for (const auto& g : c->alternate_greetings) {
            if (!g.empty()) greetings.push_back(g);
        }
        auto created = ctx.chats.create(c->id, greetings);
        if (!created) return error_response(created.error());
        Json messages = Json::array();
        for (const auto& m : created->second) messages.push_back(message_to_json(m));
        return json_response(201, {{"chat", chat_to_json(created->first)}, {"messages", messages}});
    });

    server.route(Method::Get, "/api/characters/{id}/chats", [&ctx](const Request& req) {
        if (auto c = ctx.characters.get(req.param("id")); !c) return error_response(c.error());
        auto list = ctx.chats.overview_for_character(req.param("id"));
        if (!list) return error_response(list.error());
        Json out = Json::array();
        for (const auto& o : *list) {
            Json j = chat_to_json(o.chat);
            j["message_count"] = o.message_count;
            if (o.last) {
                // What the list shows of the newest message: its first 200 bytes (whole characters).
                const std::string& text = o.last->content;
                j["last_message"] = {{"id", std::to_string(o.last->id)}, {"role", o.last->role}, {"created_at", o.last->created_at},
                                     {"excerpt", utf8_prefix(text, 200)}, {"truncated", text.size() > 200}};
            } else {
                j["last_message"] = nullptr;
            }
            out.push_back(std::move(j));
        }
        return json_response(200, {{"chats", out}});
    });

    // Attaches to the reply being written in a chat (a page reloaded mid-reply): the turn so far,
    // then what follows. The reader going away does not stop the turn.
    server.route(Method::Get, "/api/chats/{id}/turn", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        auto turn = ctx.chat.running_turn(req.param("id"));
        if (!turn) return error_response({ErrorCode::NotFound, "no reply is being generated in this chat", "chat_id"});
        return stream_turn(ctx, turn, OnDisconnect::Continue, true);
    });

    server.route(Method::Get, "/api/chats/{id}", [&ctx](const Request& req) {
        auto c = ctx.chats.get(req.param("id"));
        if (!c) return error_response(c.error());
        Json j = chat_to_json(*c);
        j["generating"] = ctx.chat.running(c->id);
        // A voice call in this chat (another tab or device may hold it): {"id","connected"} or null.
        j["call"] = ctx.calls ? ctx.calls->status(c->id) : Json(nullptr);
        return json_response(200, j);
    });

    server.route(Method::Patch, "/api/chats/{id}", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"title"});
        const std::string title = f.string("title", 200);
        if (f.error()) return error_response(*f.error());
        auto c = ctx.chats.rename(req.param("id"), title);
        if (!c) return error_response(c.error());
        return json_response(200, chat_to_json(*c));
    });

    server.route(Method::Delete, "/api/chats/{id}", [&ctx](const Request& req) {
        // No turn can start while the chat is being deleted.
        std::vector<std::string> files;
        auto r = ctx.chat.while_idle(req.param("id"), [&]() -> Result<void> {
            auto removed = ctx.chats.remove(req.param("id"));
            if (!removed) return std::unexpected(removed.error());
            files = std::move(*removed);
            return {};
        });
        if (!r) return error_response(r.error());
        for (const auto& f : files) ctx.blobs.remove(f);  // Its spoken replies and pictures.
        if (auto engine = ctx.engine ? ctx.engine() : nullptr) {
            // The chat's KV state, and those its memory jobs keep (chat/memory.cpp).
            for (const char* prefix : {"", "summary:", "facts:"}) engine->forget(prefix + req.param("id"));
        }
        return json_response(200, {{"deleted", req.param("id")}});
    });

    server.route(Method::Get, "/api/chats/{id}/messages", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        std::optional<int64_t> before;
        int limit = 50;
        if (auto b = req.query_param("before")) {
            auto id = parse_id(*b, "message");
            if (!id) return error_response({ErrorCode::InvalidInput, "'before' must be a message id", "before"});
            before = *id;
        }
        if (auto l = req.query_param("limit")) {
            if (l->empty() || l->size() > 4 || l->find_first_not_of("0123456789") != std::string::npos ||
                std::stoi(*l) < 1 || std::stoi(*l) > 500) {
                return error_response({ErrorCode::InvalidInput, "'limit' must be a number from 1 to 500", "limit"});
            }
            limit = std::stoi(*l);
        }
        auto list = ctx.chats.messages(req.param("id"), before, limit);
        if (!list) return error_response(list.error());
        Json out = Json::array();
        for (const auto& m : *list) out.push_back(message_to_json(m));
        return json_response(200, {{"messages", out}});
    });

    server.route(Method::Post, "/api/chats/{id}/messages",
                 [&ctx](const Request& req) { return start_turn(ctx, req, chat::TurnKind::Send); });
    server.route(Method::Post, "/api/chats/{id}/regenerate",
                 [&ctx](const Request& req) { return start_turn(ctx, req, chat::TurnKind::Regenerate); });
    server.route(Method::Post, "/api/chats/{id}/continue",
                 [&ctx](const Request& req) { return start_turn(ctx, req, chat::TurnKind::Continue); });
    server.route(Method::Post, "/api/chats/{id}/stop", [&ctx](const Request& req) {
        if (auto c = ctx.chats.get(req.param("id")); !c) return error_response(c.error());
        if (auto r = ctx.chat.stop(req.param("id")); !r) return error_response(r.error());
        return json_response(200, {{"stopped", req.param("id")}});
    });

    server.route(Method::Patch, "/api/messages/{id}", [&ctx](const Request& req) {
        auto id = parse_id(req.param("id"), "message");
        if (!id) return error_response(id.error());
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"content", "swipe_id", "hidden"});
        const auto limit = static_cast<size_t>(ctx.settings.current()->integer("llm.max_message_chars")) * 4;
        const auto content = f.opt_string("content", limit);
        const auto swipe_id = f.opt_integer("swipe_id", 0, kMaxSafeInteger);
        const auto hidden = f.opt_boolean("hidden");
        if (f.error()) return error_response(*f.error());
        auto m = ctx.chats.get_message(*id);
        if (!m) return error_response(m.error());
        // Read, check and write while no turn can start in the chat: an edit is never lost to a
        // turn that read the message just before.
        Result<Message> saved = fail(ErrorCode::Internal, "not saved");
        auto changed = ctx.chat.while_idle(m->chat_id, [&]() -> Result<void> {
            auto current = ctx.chats.get_message(*id);
            if (!current) return std::unexpected(current.error());
            if (swipe_id) {
                if (*swipe_id >= static_cast<int64_t>(current->swipes.size())) {
                    return fail(ErrorCode::InvalidInput,
                                "'swipe_id' must be from 0 to " + std::to_string(current->swipes.size() - 1), "swipe_id");
                }
                current->swipe_id = static_cast<int>(*swipe_id);
            }
            if (content) {
                current->swipes[static_cast<size_t>(current->swipe_id)] = *content;
                current->status = "complete";
            }
            if (hidden) current->hidden = *hidden;
            saved = ctx.chats.update_message(*current);
            if (!saved) return std::unexpected(saved.error());
            return {};
        });
        if (!changed) return error_response(changed.error());
        return json_response(200, message_to_json(*saved));
    });

    server.route(Method::Delete, "/api/messages/{id}", [&ctx](const Request& req) {
        auto id = parse_id(req.param("id"), "message");
        if (!id) return error_response(id.error());
        auto m = ctx.chats.get_message(*id);
        if (!m) return error_response(m.error());
        std::vector<std::string> files;
        auto r = ctx.chat.while_idle(m->chat_id, [&]() -> Result<void> {
            auto removed = ctx.chats.remove_message(*id);
            if (!removed) return std::unexpected(removed.error());
            files = std::move(*removed);
            return {};
        });
        if (!r) return error_response(r.error());
        for (const auto& f : files) ctx.blobs.remove(f);
        return json_response(200, {{"deleted", req.param("id")}});
    });
}

}  // namespace mc::api
