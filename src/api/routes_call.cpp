// api/routes_call: GET /api/chats/{id}/call, the voice call's WebSocket (call/call does the
// listening and answering; this carries it). Microphone audio comes in as binary messages (16-bit
// PCM, 16 kHz mono), {"type":"heard",...} (how much of a reply talked over was heard) and
// {"type":"hangup"} as text; events go out as JSON text, each sentence's WAV as a
// binary message after its `audio` event. The protocol is in docs/api.md ("Voice calls").
#include <cstring>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "core/log.hpp"

namespace mc::api {
namespace {

using http::Request;
using http::WsOpcode;

constexpr size_t kMaxFrameBytes = 32000;  // 1 s of audio.
constexpr int kMaxBadMessages = 50;       // Then the connection is closed (1008).

void serve_call(Context& ctx, call::Call& call, http::WsConnection& ws, int64_t after, bool resumed);

// One connection of a call, and a line in the log when it ends.
void run_call(Context& ctx, call::Call& call, http::WsConnection& ws, int64_t after, bool resumed) {
    serve_call(ctx, call, ws, after, resumed);
    const auto [seconds, loudest] = call.heard();
    log::info("call ", call.id(), ": connection closed (", ws.close_code(), ")", call.ended() ? ", call ended" : ", call waits for a reconnect",
              "; ", static_cast<int>(seconds * 10) / 10.0, " s of audio so far, highest speech probability ", loudest);
}

void serve_call(Context& ctx, call::Call& call, http::WsConnection& ws, int64_t after, bool resumed) {
    const auto s = ctx.settings.current();
    Json hello = {{"type", "call"},
                  {"seq", 0},
                  {"call_id", call.id()},
                  {"chat_id", call.chat_id()},
                  {"resumed", resumed},
                  {"sample_rate", 16000},
                  {"silence_ms", s->integer("call.silence_ms")},
                  {"max_utterance_s", s->integer("call.max_utterance_s")},
                  {"reconnect_s", s->integer("call.reconnect_s")}};
    ws.send(WsOpcode::Text, hello.dump());
    const uint64_t me = call.attach(after, [&ws](const call::CallEvent& e) {
        ws.send(WsOpcode::Text, e.text);
        if (!e.binary.empty()) ws.send(WsOpcode::Binary, e.binary);
    });
    if (!me) {
        ws.close(1000, "call ended");
        return;
    }
    int bad = 0;
    std::vector<int16_t> pcm;
    auto reject = [&](std::string message, const char* reason) {
        call.reject(Error{ErrorCode::InvalidInput, std::move(message), "frame"}.because(reason));
        return ++bad <= kMaxBadMessages;
    };
    while (true) {
        if (ctx.stopping && ctx.stopping()) call.hangup("server_stopping");
        if (call.ended()) {
            call.detach(me);
            ws.close(1000, "call ended");
            return;
        }
        if (call.attached() != me) {  // A newer connection (the same person, back) has the call.
            ws.close(1008, "replaced by a newer connection");
            return;
        }
        auto m = ws.receive(250);
        if (!m) {
            // A close frame ends the call (hang up, tab closed); a broken connection leaves it
            // waiting for the client to come back.
            const int code = ws.close_code();
            if (code != 1006 && call.attached() == me) call.hangup(code == 1000 || code == 1001 || code == 1005 ? "closed" : "error");
            call.detach(me);
            return;
        }
        if (!*m) continue;
        const http::WsMessage& msg = **m;
        bool ok = true;
        if (msg.op == WsOpcode::Binary) {
            if (msg.payload.empty() || msg.payload.size() % 2 || msg.payload.size() > kMaxFrameBytes) {
                ok = reject("an audio message must hold 16-bit samples (an even number of bytes, 2 to " + std::to_string(kMaxFrameBytes) +
                                ": 16 kHz mono, at most 1 s); got " + std::to_string(msg.payload.size()) + " bytes",
                            "bad_audio_frame");
            } else {
                pcm.resize(msg.payload.size() / 2);
                std::memcpy(pcm.data(), msg.payload.data(), msg.payload.size());  // Little-endian, as the protocol says.
                if (auto heard = call.audio(pcm.data(), pcm.size()); !heard) {
                    if (heard.error().reason == "too_fast") {
                        call.detach(me);
                        ws.close(1008, "too fast");
                        return;
                    }
                    call.reject(heard.error());
                }
            }
        } else {
            auto j = parse_object_text(msg.payload, "message");
            const std::string type = j ? json_string_or(*j, "type", "") : "";
            if (type == "hangup") {
                call.hangup("hangup");
            } else if (type == "heard") {
                // Playback was stopped by the person speaking: how much of the latest reply they heard.
                Fields f(*j);
                f.only({"type", "message_id", "sentences"});
                const auto id_text = f.opt_string("message_id", 24);
                const int64_t sentences = f.integer("sentences", 0, 100000);
                Result<void> r = f.error() ? Result<void>(std::unexpected(*f.error())) : Result<void>{};
                if (r) {
                    std::optional<int64_t> id;
                    if (id_text) {
                        auto parsed = parse_id(*id_text, "message", "message_id");
                        if (parsed) id = *parsed;
                        else r = std::unexpected(parsed.error());
                    }
                    if (r) r = call.heard(id, static_cast<size_t>(sentences));
                }
                if (!r) {
                    Error e = r.error();
                    const bool busy = e.code == ErrorCode::Conflict;  // A turn runs: not the client's fault.
                    if (e.reason.empty()) e.because(busy ? "turn_running" : "bad_heard");
                    call.reject(e);
                    if (!busy) ok = ++bad <= kMaxBadMessages;
                }
            } else {
                ok = reject(j ? "unknown message type '" + type.substr(0, 40) +
                                    "' (the client sends audio, {\"type\":\"heard\",...} and {\"type\":\"hangup\"})"
                              : j.error().message,
                            "bad_message");
            }
        }
        if (!ok) {
            call.hangup("error");
            call.detach(me);
            ws.close(1008, "too many bad messages");
            return;
        }
    }
}

}  // namespace

void register_call_routes(http::Server& server, Context& ctx) {
    server.websocket(
        "/api/chats/{id}/call",
        [&ctx](const Request& req) -> http::WsAnswer {
            if (!ctx.calls) return error_response({ErrorCode::Unavailable, "voice calls are not available in this server"});
            auto chat = ctx.chats.get(req.param("id"));
            if (!chat) return error_response(chat.error());
            std::shared_ptr<call::Call> call;
            int64_t after = 0;
            const auto resume = req.query_param("resume");
            if (resume) {
                if (const auto a = req.query_param("after")) {
                    char* end = nullptr;
                    errno = 0;
                    const long long v = std::strtoll(a->c_str(), &end, 10);
                    if (a->empty() || *end || errno || v < 0 || v > 1'000'000'000'000LL) {
                        return error_response(
                            Error{ErrorCode::InvalidInput, "'after' must be the last event number received (0 or more)", "after"}.because(
                                "range", {{"min", "0"}}));
                    }
                    after = v;
                }
                auto found = ctx.calls->find(chat->id, resume->substr(0, 64));
                if (!found) return error_response(found.error());
                call = *found;
            } else {
                auto started = ctx.calls->start(chat->id);
                if (!started) return error_response(started.error());
                call = *started;
            }
            return http::WsSession([&ctx, call, after, resumed = resume.has_value()](http::WsConnection& ws) {
                run_call(ctx, *call, ws, after, resumed);
            });
        },
        64 * 1024);
}

}  // namespace mc::api
