// api/routes_openai: the OpenAI-compatible surface (/v1/models, /v1/chat/completions, streaming and
// not) over the active engine, so existing clients can use mycandy as their backend.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

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

Response openai_error(int status, const std::string& message, const std::string& param = "") {
    Json e = {{"message", message},
              {"type", status >= 500 ? "server_error" : "invalid_request_error"},
              {"code", status == 404 ? "not_found" : status == 503 ? "unavailable" : "invalid_request"}};
    e["param"] = param.empty() ? Json(nullptr) : Json(param);
    return json_response(status, {{"error", e}});
}

Response openai_error(const Error& e) { return openai_error(http_status(e.code), e.message, e.field); }

// Each message's text is capped by llm.max_message_chars (bytes), as for chat turns.
Result<std::vector<llm::ChatMessage>> parse_messages(const Json& body, size_t max_chars) {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
        return fail(ErrorCode::InvalidInput, "'messages' must be a non-empty array", "messages");
    }
    if (body["messages"].size() > 10000) return fail(ErrorCode::TooLarge, "'messages' holds more than 10000 messages", "messages");
    std::vector<llm::ChatMessage> out;
    for (const auto& m : body["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
            return fail(ErrorCode::InvalidInput, "each message needs a 'role'", "messages");
        }
        std::string role = m["role"].get<std::string>();
        if (role == "developer") role = "system";
        if (role != "system" && role != "user" && role != "assistant") {
            return fail(ErrorCode::InvalidInput, "unsupported role '" + role + "'", "messages");
        }
        std::string content;
        const Json c = m.contains("content") ? m["content"] : Json(nullptr);
        if (c.is_string()) {
            content = c.get<std::string>();
        } else if (c.is_array()) {  // Content parts: the text ones.
            for (const auto& part : c) {
                if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") &&
                    part["text"].is_string()) {
                    content += part["text"].get<std::string>();
                }
            }
        } else if (!c.is_null()) {
            return fail(ErrorCode::InvalidInput, "message 'content' must be a string or an array of parts", "messages");
        }
        if (content.size() > max_chars) {
            return fail(ErrorCode::TooLarge, "a message is longer than " + std::to_string(max_chars) +
                                                 " bytes (llm.max_message_chars)", "messages");
        }
        out.push_back({role, content});
    }
    return out;
}

Json chunk(const std::string& id, int64_t created, const std::string& model, const Json& delta, const Json& finish) {
    return Json{{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model},
                {"choices", Json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
}

std::string data_line(const Json& j) { return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

// Hands generated text from the engine's thread to the HTTP thread.
struct Pipe {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> pieces;
    bool done = false;
    Result<llm::GenerateResult> result = fail(ErrorCode::Internal, "not finished");
};

}  // namespace

void register_openai_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/v1/models", [&ctx](const Request&) {
        Json data = Json::array();
        if (auto engine = ctx.engine ? ctx.engine() : nullptr) {
            data.push_back({{"id", engine->status().model}, {"object", "model"}, {"created", now_ms() / 1000},
                            {"owned_by", "mycandy"}});
        }
        return json_response(200, {{"object", "list"}, {"data", data}});
    });

    server.route(Method::Post, "/v1/chat/completions", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return openai_error(body.error());
        auto messages = parse_messages(*body, static_cast<size_t>(ctx.settings.current()->integer("llm.max_message_chars")));
        if (!messages) return openai_error(messages.error());
        Fields f(*body);
        const bool stream = f.boolean_or("stream", false);
        bool usage = false;
        if (const Json* so = f.object("stream_options")) {
            Fields o(*so, "stream_options.");
            usage = o.boolean_or("include_usage", false);
            if (o.error()) return openai_error(*o.error());
        }
        (void)f.opt_string("model", 1000);  // Any model name is accepted; there is one model.
        if (f.error()) return openai_error(*f.error());
        Json samplers = Json::object();
        for (const char* k : {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "presence_penalty",
                              "frequency_penalty", "seed", "stop"}) {
            if (body->contains(k)) samplers[k] = (*body)[k];
        }
        if (body->contains("max_completion_tokens")) samplers["max_tokens"] = (*body)["max_completion_tokens"];
        if (body->contains("max_tokens")) samplers["max_tokens"] = (*body)["max_tokens"];
        auto sampling = sampling_from_json(samplers, ctx.chat.default_sampling());
        if (!sampling) return openai_error(sampling.error());
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return openai_error(503, "no language model is configured");
        const std::string model = engine->status().model;
        const std::string id = "chatcmpl-" + random_hex(12);
        const int64_t created = now_ms() / 1000;

        auto request = std::make_shared<llm::GenerateRequest>();
        request->cache_key = "openai";  // Consecutive requests from a client share their prefix.
        request->messages = std::move(*messages);
        request->sampling = *sampling;
        request->cancel = std::make_shared<std::atomic<bool>>(false);

        auto usage_json = [](const llm::GenerateResult& r) {
            return Json{{"prompt_tokens", r.prompt_tokens + r.cached_tokens},
                        {"completion_tokens", r.predicted_tokens},
                        {"total_tokens", r.prompt_tokens + r.cached_tokens + r.predicted_tokens}};
        };
        if (!stream) {
            auto r = engine->generate(*request);
            if (!r) return openai_error(r.error());
            return json_response(
                200, {{"id", id},
                      {"object", "chat.completion"},
                      {"created", created},
                      {"model", model},
                      {"choices", Json::array({{{"index", 0},
                                                {"message", {{"role", "assistant"}, {"content", r->text}}},
                                                {"finish_reason", r->finish == llm::FinishReason::Length ? "length" : "stop"}}})},
                      {"usage", usage_json(*r)}});
        }
        auto pipe = std::make_shared<Pipe>();
        request->on_text = [pipe](std::string_view s) {
            std::lock_guard lock(pipe->mu);
            pipe->pieces.emplace_back(s);
            pipe->cv.notify_all();
            return true;
        };
        Response res;
        res.content_type = "text/event-stream";
        res.headers = {{"Cache-Control", "no-cache"}};
        res.stream = [=, &ctx](http::StreamSink& sink) {
            // The generation runs on a thread this stream owns and joins before it returns; the
            // HTTP thread only writes, so a slow client never holds up the inference thread.
            std::jthread generator([engine, request, pipe] {
                auto r = engine->generate(*request);
                std::lock_guard lock(pipe->mu);
                pipe->result = std::move(r);
                pipe->done = true;
                pipe->cv.notify_all();
            });
            bool connected = sink.write(data_line(chunk(id, created, model, {{"role", "assistant"}, {"content", ""}}, nullptr)));
            while (true) {
                std::unique_lock lock(pipe->mu);
                pipe->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !pipe->pieces.empty() || pipe->done; });
                std::deque<std::string> pieces;
                pieces.swap(pipe->pieces);
                const bool done = pipe->done;
                lock.unlock();
                for (const auto& p : pieces) {
                    if (connected) connected = sink.write(data_line(chunk(id, created, model, {{"content", p}}, nullptr)));
                }
                if (!connected || (ctx.stopping && ctx.stopping())) request->cancel->store(true);
                if (!done) continue;
                if (!pipe->result) {
                    const Error& e = pipe->result.error();
                    sink.write(data_line({{"error", {{"message", e.message}, {"type", "server_error"}, {"code", error_code_name(e.code)}}}}));
                } else {
                    const auto& r = *pipe->result;
                    sink.write(data_line(chunk(id, created, model, Json::object(),
                                               r.finish == llm::FinishReason::Length ? "length" : "stop")));
                    if (usage) {
                        sink.write(data_line({{"id", id}, {"object", "chat.completion.chunk"}, {"created", created},
                                              {"model", model}, {"choices", Json::array()}, {"usage", usage_json(r)}}));
                    }
                }
                sink.write("data: [DONE]\n\n");
                break;
            }
        };
        return res;
    });
}

}  // namespace mc::api
