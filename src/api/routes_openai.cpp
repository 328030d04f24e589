// api/routes_openai: the compatible surfaces over the active engine, so existing clients can use
// mycandy as their backend: OpenAI's /v1/models, /v1/chat/completions and /v1/completions
// (streaming and not, n choices), llama.cpp server's /completion, /tokenize, /detokenize, /props
// and /health (SillyTavern's "llama.cpp" text completion, KoboldAI-Lite-style clients), Ollama's
// /api/tags, /api/chat and /api/version, and KoboldCpp's /api/v1/generate, /api/v1/model and
// /api/extra/version.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "chat/transfer.hpp"
#include "core/text.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

// At most this many choices (`n`) per request; they are generated one after another.
constexpr int64_t kMaxChoices = 16;

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

Json chunk(const std::string& id, int64_t created, const std::string& model, const Json& delta, const Json& finish,
           int index = 0) {
    return Json{{"id", id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model},
                {"choices", Json::array({{{"index", index}, {"delta", delta}, {"finish_reason", finish}}})}};
}

std::string data_line(const Json& j) { return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

const char* openai_finish(llm::FinishReason f) { return f == llm::FinishReason::Length ? "length" : "stop"; }

// Hands generated text from the engine's thread to the HTTP thread.
struct Pipe {
    std::mutex mu;  // Guards everything below.
    std::condition_variable cv;
    std::deque<std::string> pieces;
    bool done = false;
    Result<llm::GenerateResult> result = fail(ErrorCode::Internal, "not finished");
};

// Runs one generation on a thread this call owns and joins before it returns, and hands each
// piece of text to `write` on the calling HTTP thread, so a slow client never holds up the
// inference thread. A client that has gone (`write` returned false) or a stopping server cancels
// the generation within a token; the engine keeps its queue order and priority.
Result<llm::GenerateResult> stream_generation(const std::shared_ptr<llm::Engine>& engine,
                                              const std::shared_ptr<llm::GenerateRequest>& request, Context& ctx,
                                              const std::function<bool(const std::string&)>& write) {
    auto pipe = std::make_shared<Pipe>();
    request->on_text = [pipe](std::string_view s) {
        std::lock_guard lock(pipe->mu);
        pipe->pieces.emplace_back(s);
        pipe->cv.notify_all();
        return true;
    };
    if (!request->cancel) request->cancel = std::make_shared<std::atomic<bool>>(false);
    std::jthread generator([engine, request, pipe] {
        auto r = engine->generate(*request);
        std::lock_guard lock(pipe->mu);
        pipe->result = std::move(r);
        pipe->done = true;
        pipe->cv.notify_all();
    });
    bool connected = true;
    while (true) {
        std::unique_lock lock(pipe->mu);
        pipe->cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !pipe->pieces.empty() || pipe->done; });
        std::deque<std::string> pieces;
        pieces.swap(pipe->pieces);
        const bool done = pipe->done;
        lock.unlock();
        for (const auto& p : pieces) {
            if (connected) connected = write(p);
        }
        if (!connected || (ctx.stopping && ctx.stopping())) request->cancel->store(true);
        if (done) break;
    }
    generator.join();
    std::lock_guard lock(pipe->mu);
    return std::move(pipe->result);
}

// The engine's exact count of the prompt's tokens, when it has one, against the context: an
// oversized prompt is the caller's mistake (400 naming `field`), found before any stream starts.
std::optional<Error> prompt_too_large(const llm::Engine& engine, const llm::GenerateRequest& request, const char* field) {
    const auto n = engine.prompt_size(request);
    const int n_ctx = engine.context_size();
    if (!n || *n < n_ctx) return std::nullopt;
    return Error{ErrorCode::InvalidInput,
                 "the prompt has " + std::to_string(*n) + " tokens; the context holds " + std::to_string(n_ctx) +
                     " (llm.context_size), and the reply needs room too",
                 field};
}

// The samplers llama.cpp's server and OpenAI-style text clients send (SillyTavern sends dozens).
// Those we use are checked for type and range (400 naming the field); the ones we do not
// implement (mirostat, typical_p, tfs_z, xtc_*, grammar, logit_bias...) are ignored, as
// llama-server ignores fields it does not know. top_k <= 0 means off; empty stop strings are skipped.
Result<llm::Sampling> text_samplers(const Json& body, llm::Sampling s) {
    Fields f(body);
    auto number = [&](const char* key, double& out, double lo, double hi) {
        if (auto v = f.opt_number(key, lo, hi)) out = *v;
    };
    auto integer = [&](const char* key, auto& out, int64_t lo, int64_t hi) {
        if (auto v = f.opt_integer(key, lo, hi)) out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    };
    number("temperature", s.temperature, 0, 5);
    number("top_p", s.top_p, 0, 1);
    number("min_p", s.min_p, 0, 1);
    number("repeat_penalty", s.repeat_penalty, 0, 5);
    number("presence_penalty", s.presence_penalty, -2, 2);
    number("frequency_penalty", s.frequency_penalty, -2, 2);
    number("dry_multiplier", s.dry_multiplier, 0, 10);
    number("dry_base", s.dry_base, 1, 10);
    integer("top_k", s.top_k, -1, 100000);
    if (s.top_k < 0) s.top_k = 0;
    integer("repeat_last_n", s.repeat_last_n, -1, 1048576);
    integer("dry_allowed_length", s.dry_allowed_length, 0, 1000);
    integer("dry_penalty_last_n", s.dry_last_n, -1, 1048576);
    integer("seed", s.seed, -1, 4294967295LL);
    if (f.has("stop")) {
        s.stop.clear();
        for (auto& stop : f.strings("stop", 64, llm::kMaxStopBytes)) {
            if (!stop.empty()) s.stop.push_back(std::move(stop));
        }
        if (!f.error() && s.stop.size() > llm::kMaxClientStops) {
            f.reject(ErrorCode::InvalidInput, "stop",
                     "'stop' may hold at most " + std::to_string(llm::kMaxClientStops) + " non-empty strings");
        }
    }
    if (f.error()) return std::unexpected(*f.error());
    if (auto ok = llm::validate(s); !ok) return std::unexpected(ok.error());
    return s;
}

// The reply's length limit: `key` from -1 (as long as the context allows) to 32768.
Result<int> read_max_tokens(const Json& body, const char* key, int fallback) {
    Fields f(body);
    const auto v = f.opt_integer(key, -1, 32768);
    if (f.error()) return std::unexpected(*f.error());
    if (!v) return fallback;
    if (*v == 0) return fail(ErrorCode::InvalidInput, std::string("'") + key + "' must be -1 or from 1 to 32768", key);
    return *v < 0 ? 32768 : static_cast<int>(*v);
}

// 1 MB of text is about 250,000 tokens, more than any context; tokenizing more would only keep a
// worker busy (a 2 MB run of one letter takes seconds).
constexpr size_t kMaxPromptBytes = 1u << 20;
constexpr size_t kMaxPromptTokens = 1u << 20;

// A text-completion prompt: a string, an array of token ids, or an array holding one of these
// (llama-server and OpenAI accept several prompts; we answer one, else 400 naming `prompt`).
Result<std::string> read_prompt(const Json& body, const llm::Engine& engine) {
    if (!body.contains("prompt") || body["prompt"].is_null()) return fail(ErrorCode::InvalidInput, "'prompt' (a string) is required", "prompt");
    const Json* p = &body["prompt"];
    if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
    if (p->is_string()) {
        const auto& s = p->get_ref<const std::string&>();
        if (s.size() > kMaxPromptBytes) return fail(ErrorCode::TooLarge, "'prompt' is longer than 1 MB", "prompt");
        if (s.empty()) return fail(ErrorCode::InvalidInput, "'prompt' must not be empty", "prompt");
        return s;
    }
    if (!p->is_array() || p->empty()) {
        return fail(ErrorCode::InvalidInput, "'prompt' must be a string or an array of token ids (got " + std::string(json_kind(*p)) + ")",
                    "prompt");
    }
    if (p->size() > kMaxPromptTokens) return fail(ErrorCode::TooLarge, "'prompt' holds more than 1048576 tokens", "prompt");
    std::vector<int32_t> tokens;
    tokens.reserve(p->size());
    for (const auto& t : *p) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX) {
            return fail(ErrorCode::InvalidInput, "'prompt' must be one string or one array of token ids (non-negative integers); "
                                                 "several prompts in one request are not supported",
                        "prompt");
        }
        tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    auto text = engine.detokenize(tokens);
    if (!text) {
        Error e = text.error();
        if (e.field == "tokens") e.field = "prompt";
        return std::unexpected(e);
    }
    return *text;
}

// llama.cpp server's error body: {"error":{"code":<status>,"message","type"}} (plus our `field`).
Response llama_error(const Error& e) {
    const int status = http_status(e.code);
    Json err = {{"code", status},
                {"message", e.message},
                {"type", status == 503 ? "unavailable_error" : status >= 500 ? "server_error" : "invalid_request_error"}};
    if (!e.field.empty()) err["field"] = e.field;
    return json_response(status, {{"error", err}});
}

const char* stop_type(const llm::GenerateResult& r) {
    switch (r.finish) {
        case llm::FinishReason::Length: return "limit";
        case llm::FinishReason::Cancelled: return "none";
        case llm::FinishReason::Stop: return r.stop_word.empty() ? "eos" : "word";
    }
    return "eos";
}

Json llama_timings(const llm::GenerateResult& r) {
    auto per = [](double ms, int n) { return n > 0 ? ms / n : 0.0; };
    auto rate = [](double ms, int n) { return ms > 0 ? 1000.0 * n / ms : 0.0; };
    Json t{{"cache_n", r.cached_tokens},
                {"prompt_n", r.prompt_tokens},
                {"prompt_ms", r.prompt_ms},
                {"prompt_per_token_ms", per(r.prompt_ms, r.prompt_tokens)},
                {"prompt_per_second", rate(r.prompt_ms, r.prompt_tokens)},
                {"predicted_n", r.predicted_tokens},
                {"predicted_ms", r.predicted_ms},
                {"predicted_per_token_ms", per(r.predicted_ms, r.predicted_tokens)},
                {"predicted_per_second", rate(r.predicted_ms, r.predicted_tokens)}};
    if (r.draft_tokens > 0) t["draft_n"] = r.draft_tokens, t["draft_n_accepted"] = r.accepted_tokens;
    // Tokens decoded in one batch with other chats' replies (llm.parallel).
    if (r.batched_tokens > 0) t["batched_n"] = r.batched_tokens;
    return t;
}

// The sampler settings in llama-server's names (/props, a completion's generation_settings).
Json generation_settings(const llm::Sampling& s, int n_ctx) {
    return Json{{"n_ctx", n_ctx},
                {"n_predict", s.max_tokens},
                {"temperature", s.temperature},
                {"top_k", s.top_k},
                {"top_p", s.top_p},
                {"min_p", s.min_p},
                {"repeat_penalty", s.repeat_penalty},
                {"repeat_last_n", s.repeat_last_n},
                {"presence_penalty", s.presence_penalty},
                {"frequency_penalty", s.frequency_penalty},
                {"dry_multiplier", s.dry_multiplier},
                {"dry_base", s.dry_base},
                {"dry_allowed_length", s.dry_allowed_length},
                {"dry_penalty_last_n", s.dry_last_n},
                {"seed", s.seed},
                {"stop", s.stop},
                {"stream", false},
                {"cache_prompt", true}};
}

// The usage block both OpenAI routes answer: prompt tokens (evaluated + reused) once, the
// completion tokens of every choice.
Json usage_of(const std::vector<llm::GenerateResult>& results) {
    int prompt = results.empty() ? 0 : results.front().prompt_tokens + results.front().cached_tokens;
    int completion = 0;
    for (const auto& r : results) completion += r.predicted_tokens;
    return Json{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

// Choice i of n: its own seed when the client fixed one, so the choices differ but repeat.
llm::Sampling choice_sampling(llm::Sampling s, int i) {
    if (s.seed >= 0) s.seed = (s.seed + i) % 4294967296LL;
    return s;
}

// The samplers Ollama (in `options`) and KoboldCpp send, under their own names: each read with its
// type and range (400 naming the field as the client wrote it, with `prefix`); a null name is not
// read. Fields these APIs have and we do not implement are ignored, as llama-server does.
struct SamplerNames {
    const char* temperature = "temperature";
    const char* top_p = "top_p";
    const char* top_k = "top_k";
    const char* min_p = "min_p";
    const char* repeat_penalty = "repeat_penalty";
    const char* repeat_last_n = "repeat_last_n";
    const char* presence_penalty = "presence_penalty";
    const char* frequency_penalty = "frequency_penalty";
    const char* seed = "seed";
    const char* stop = "stop";
};

void read_named_samplers(Fields& f, const std::string& prefix, const SamplerNames& n, llm::Sampling& s) {
    auto number = [&](const char* key, double& out, double lo, double hi) {
        if (!key) return;
        if (auto v = f.opt_number(key, lo, hi)) out = *v;
    };
    auto integer = [&](const char* key, auto& out, int64_t lo, int64_t hi) {
        if (!key) return;
        if (auto v = f.opt_integer(key, lo, hi)) out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    };
    number(n.temperature, s.temperature, 0, 5);
    number(n.top_p, s.top_p, 0, 1);
    number(n.min_p, s.min_p, 0, 1);
    number(n.repeat_penalty, s.repeat_penalty, 0, 5);
    number(n.presence_penalty, s.presence_penalty, -2, 2);
    number(n.frequency_penalty, s.frequency_penalty, -2, 2);
    integer(n.top_k, s.top_k, -1, 100000);
    if (s.top_k < 0) s.top_k = 0;
    integer(n.repeat_last_n, s.repeat_last_n, -1, 1048576);
    integer(n.seed, s.seed, -1, 4294967295LL);
    if (n.stop && f.has(n.stop)) {
        s.stop.clear();
        for (auto& stop : f.strings(n.stop, 64, llm::kMaxStopBytes)) {
            if (!stop.empty()) s.stop.push_back(std::move(stop));
        }
        if (!f.error() && s.stop.size() > llm::kMaxClientStops) {
            f.reject(ErrorCode::InvalidInput, prefix + n.stop,
                     "'" + prefix + n.stop + "' may hold at most " + std::to_string(llm::kMaxClientStops) + " non-empty strings");
        }
    }
}

// Ollama's error body: {"error":"<message>"} (plus our `field`, naming the field at fault).
Response ollama_error(const Error& e) {
    Json body = {{"error", e.message}};
    if (!e.field.empty()) body["field"] = e.field;
    return json_response(http_status(e.code), body);
}

// Ollama's model entry (/api/tags): the one model, by the name the engine gives it.
Json ollama_model(const std::string& name) {
    return Json{{"name", name},
                {"model", name},
                {"modified_at", chat::iso_date(now_ms())},
                {"size", 0},
                {"digest", ""},
                {"details", {{"parent_model", ""}, {"format", "gguf"}, {"family", ""}, {"families", nullptr},
                             {"parameter_size", ""}, {"quantization_level", ""}}}};
}

// The closing object of an Ollama reply: why it ended and its counts, durations in nanoseconds.
Json ollama_done(const std::string& model, const std::string& content, const llm::GenerateResult& r, int64_t started_ms) {
    const auto ns = [](double ms) { return static_cast<int64_t>(ms * 1e6); };
    return Json{{"model", model},
                {"created_at", chat::iso_date(now_ms())},
                {"message", {{"role", "assistant"}, {"content", content}}},
                {"done", true},
                {"done_reason", r.finish == llm::FinishReason::Length ? "length" : "stop"},
                {"total_duration", (now_ms() - started_ms) * 1000000},
                {"load_duration", 0},
                {"prompt_eval_count", r.prompt_tokens + r.cached_tokens},
                {"prompt_eval_duration", ns(r.prompt_ms)},
                {"eval_count", r.predicted_tokens},
                {"eval_duration", ns(r.predicted_ms)}};
}

// KoboldCpp's error body: ours ({"error":{code,message,field}}) and the KoboldAI API's `detail`.
Response kobold_error(const Error& e) {
    Json body = error_json(e);
    body["detail"] = {{"msg", e.message}, {"type", http_status(e.code) == 503 ? "service_unavailable" : "bad_input"}};
    return json_response(http_status(e.code), body);
}

// The version KoboldCpp clients read to choose features: 1.0 asks for nothing beyond
// /api/v1/generate (no /api/extra/generate/stream, token counting or grammar, which we lack).
constexpr const char* kKoboldVersion = "1.0";
// The Ollama API version whose /api/chat, /api/tags and /api/version these routes follow.
constexpr const char* kOllamaVersion = "0.6.0";

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
        const int n = static_cast<int>(f.integer_or("n", 1, kMaxChoices, 1));
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
        // Before any stream starts: a prompt the context cannot hold is the client's mistake.
        if (auto e = prompt_too_large(*engine, *request, "messages")) return openai_error(*e);

        if (!stream) {
            Json choices = Json::array();
            std::vector<llm::GenerateResult> results;
            for (int i = 0; i < n; ++i) {
                request->sampling = choice_sampling(*sampling, i);
                auto r = engine->generate(*request);
                if (!r) return openai_error(r.error());
                choices.push_back({{"index", i},
                                   {"message", {{"role", "assistant"}, {"content", r->text}}},
                                   {"finish_reason", openai_finish(r->finish)}});
                results.push_back(std::move(*r));
            }
            return json_response(200, {{"id", id},
                                       {"object", "chat.completion"},
                                       {"created", created},
                                       {"model", model},
                                       {"choices", choices},
                                       {"usage", usage_of(results)}});
        }
        Response res;
        res.content_type = "text/event-stream";
        res.headers = {{"Cache-Control", "no-cache"}};
        const llm::Sampling base = *sampling;
        res.stream = [=, &ctx](http::StreamSink& sink) {
            std::vector<llm::GenerateResult> results;
            for (int i = 0; i < n; ++i) {
                if (!sink.write(data_line(chunk(id, created, model, {{"role", "assistant"}, {"content", ""}}, nullptr, i)))) return;
                request->sampling = choice_sampling(base, i);
                auto r = stream_generation(engine, request, ctx, [&](const std::string& p) {
                    return sink.write(data_line(chunk(id, created, model, {{"content", p}}, nullptr, i)));
                });
                if (!r) {
                    const Error& e = r.error();
                    sink.write(data_line({{"error", {{"message", e.message}, {"type", "server_error"}, {"code", error_code_name(e.code)}}}}));
                    sink.write("data: [DONE]\n\n");
                    return;
                }
                if (!sink.write(data_line(chunk(id, created, model, Json::object(), openai_finish(r->finish), i)))) return;
                results.push_back(std::move(*r));
            }
            if (usage) {
                sink.write(data_line({{"id", id}, {"object", "chat.completion.chunk"}, {"created", created},
                                      {"model", model}, {"choices", Json::array()}, {"usage", usage_of(results)}}));
            }
            sink.write("data: [DONE]\n\n");
        };
        return res;
    });

    // OpenAI's legacy text completions: the prompt as the client wrote it, no chat template.
    server.route(Method::Post, "/v1/completions", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return openai_error(body.error());
        Fields f(*body);
        const bool stream = f.boolean_or("stream", false);
        bool usage = false;
        if (const Json* so = f.object("stream_options")) {
            Fields o(*so, "stream_options.");
            usage = o.boolean_or("include_usage", false);
            if (o.error()) return openai_error(*o.error());
        }
        (void)f.opt_string("model", 1000);
        const int n = static_cast<int>(f.integer_or("n", 1, kMaxChoices, 1));
        const bool echo = f.boolean_or("echo", false);
        if (auto suffix = f.opt_string("suffix", 1000); suffix && !suffix->empty()) {
            f.reject(ErrorCode::InvalidInput, "suffix", "'suffix' (insertion) is not supported");
        }
        (void)f.integer_or("best_of", 0, kMaxChoices, 1);  // Accepted; each choice is one sample.
        if (f.error()) return openai_error(*f.error());
        auto max_tokens = read_max_tokens(*body, "max_tokens", ctx.chat.default_sampling().max_tokens);
        if (!max_tokens) return openai_error(max_tokens.error());
        auto sampling = text_samplers(*body, ctx.chat.default_sampling());
        if (!sampling) return openai_error(sampling.error());
        sampling->max_tokens = *max_tokens;
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return openai_error(503, "no language model is configured");
        auto prompt = read_prompt(*body, *engine);
        if (!prompt) return openai_error(prompt.error());
        const std::string model = engine->status().model;
        const std::string id = "cmpl-" + random_hex(12);
        const int64_t created = now_ms() / 1000;
        auto request = std::make_shared<llm::GenerateRequest>();
        request->cache_key = "completion";
        request->raw_prompt = *prompt;
        request->sampling = *sampling;
        request->cancel = std::make_shared<std::atomic<bool>>(false);
        if (auto e = prompt_too_large(*engine, *request, "prompt")) return openai_error(*e);
        auto text_chunk = [id, created, model](const std::string& text, int index, const Json& finish) {
            return Json{{"id", id},
                        {"object", "text_completion"},
                        {"created", created},
                        {"model", model},
                        {"choices", Json::array({{{"text", text}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", finish}}})}};
        };
        if (!stream) {
            Json choices = Json::array();
            std::vector<llm::GenerateResult> results;
            for (int i = 0; i < n; ++i) {
                request->sampling = choice_sampling(*sampling, i);
                auto r = engine->generate(*request);
                if (!r) return openai_error(r.error());
                choices.push_back({{"text", echo ? *prompt + r->text : r->text},
                                   {"index", i},
                                   {"logprobs", nullptr},
                                   {"finish_reason", openai_finish(r->finish)}});
                results.push_back(std::move(*r));
            }
            return json_response(200, {{"id", id},
                                       {"object", "text_completion"},
                                       {"created", created},
                                       {"model", model},
                                       {"choices", choices},
                                       {"usage", usage_of(results)}});
        }
        Response res;
        res.content_type = "text/event-stream";
        res.headers = {{"Cache-Control", "no-cache"}};
        const llm::Sampling base = *sampling;
        const std::string prompt_text = *prompt;
        res.stream = [=, &ctx](http::StreamSink& sink) {
            std::vector<llm::GenerateResult> results;
            for (int i = 0; i < n; ++i) {
                if (echo && !sink.write(data_line(text_chunk(prompt_text, i, nullptr)))) return;
                request->sampling = choice_sampling(base, i);
                auto r = stream_generation(engine, request, ctx,
                                           [&](const std::string& p) { return sink.write(data_line(text_chunk(p, i, nullptr))); });
                if (!r) {
                    const Error& e = r.error();
                    sink.write(data_line({{"error", {{"message", e.message}, {"type", "server_error"}, {"code", error_code_name(e.code)}}}}));
                    sink.write("data: [DONE]\n\n");
                    return;
                }
                if (!sink.write(data_line(text_chunk("", i, openai_finish(r->finish))))) return;
                results.push_back(std::move(*r));
            }
            if (usage) {
                sink.write(data_line({{"id", id}, {"object", "text_completion"}, {"created", created},
                                      {"model", model}, {"choices", Json::array()}, {"usage", usage_of(results)}}));
            }
            sink.write("data: [DONE]\n\n");
        };
        return res;
    });

    // --- llama.cpp server's own routes (SillyTavern's "llama.cpp" text completion and others) ---

    server.route(Method::Get, "/health", [&ctx](const Request&) {
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return llama_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        const auto st = engine->status();
        if (st.state == "ready") return json_response(200, {{"status", "ok"}});
        return llama_error({ErrorCode::Unavailable, st.state == "loading" ? "Loading model" : st.detail, ""});
    });

    server.route(Method::Get, "/props", [&ctx](const Request&) {
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return llama_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        const int n_ctx = engine->context_size();
        const llm::Sampling s = ctx.chat.default_sampling();
        Json settings = generation_settings(s, n_ctx);
        settings["params"] = generation_settings(s, n_ctx);  // Newer llama-server nests them here.
        return json_response(200, {{"default_generation_settings", settings},
                                   {"total_slots", 1},
                                   {"model_path", engine->status().model},
                                   {"chat_template", engine->chat_template()},
                                   {"modalities", {{"vision", false}, {"audio", false}}},
                                   {"build_info", "mycandy " + ctx.version}});
    });

    server.route(Method::Post, "/tokenize", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return llama_error(body.error());
        Fields f(*body);
        const std::string content = f.string("content", kMaxPromptBytes);
        const bool add_special = f.boolean_or("add_special", false);
        const bool parse_special = f.boolean_or("parse_special", true);
        const bool with_pieces = f.boolean_or("with_pieces", false);
        if (f.error()) return llama_error(*f.error());
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return llama_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        auto tokens = engine->tokenize(content, add_special, parse_special);
        if (!tokens) return llama_error(tokens.error());
        if (!with_pieces) return json_response(200, {{"tokens", *tokens}});
        Json out = Json::array();
        for (int32_t t : *tokens) {
            auto piece = engine->detokenize({t});
            if (!piece) return llama_error(piece.error());
            // A piece that is part of a character is given as its bytes, as llama-server does.
            if (sanitize_utf8(*piece) == *piece) {
                out.push_back({{"id", t}, {"piece", *piece}});
            } else {
                Json bytes = Json::array();
                for (unsigned char c : *piece) bytes.push_back(static_cast<int>(c));
                out.push_back({{"id", t}, {"piece", bytes}});
            }
        }
        return json_response(200, {{"tokens", out}});
    });

    server.route(Method::Post, "/detokenize", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return llama_error(body.error());
        Fields f(*body);
        const Json* tokens = f.array("tokens", kMaxPromptTokens);
        if (f.error()) return llama_error(*f.error());
        std::vector<int32_t> ids;
        if (tokens) {
            for (size_t i = 0; i < tokens->size(); ++i) {
                const Json& t = (*tokens)[i];
                if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX) {
                    return llama_error({ErrorCode::InvalidInput, "'tokens[" + std::to_string(i) + "]' must be a token id (a non-negative integer)",
                                        "tokens"});
                }
                ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
            }
        }
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return llama_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        auto text = engine->detokenize(ids);
        if (!text) return llama_error(text.error());
        return json_response(200, {{"content", *text}});
    });

    server.route(Method::Post, "/completion", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return llama_error(body.error());
        Fields f(*body);
        const bool stream = f.boolean_or("stream", false);
        const bool cache_prompt = f.boolean_or("cache_prompt", true);
        if (f.error()) return llama_error(*f.error());
        const char* limit_key = body->contains("n_predict") ? "n_predict" : "max_tokens";
        auto max_tokens = read_max_tokens(*body, limit_key, ctx.chat.default_sampling().max_tokens);
        if (!max_tokens) return llama_error(max_tokens.error());
        auto sampling = text_samplers(*body, ctx.chat.default_sampling());
        if (!sampling) return llama_error(sampling.error());
        sampling->max_tokens = *max_tokens;
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return llama_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        auto prompt = read_prompt(*body, *engine);
        if (!prompt) return llama_error(prompt.error());
        auto request = std::make_shared<llm::GenerateRequest>();
        // cache_prompt false: evaluate the whole prompt again (no key keeps no state).
        request->cache_key = cache_prompt ? "completion" : "";
        request->raw_prompt = *prompt;
        request->sampling = *sampling;
        request->cancel = std::make_shared<std::atomic<bool>>(false);
        if (auto e = prompt_too_large(*engine, *request, "prompt")) return llama_error(*e);
        const std::string model = engine->status().model;
        const int n_ctx = engine->context_size();
        const llm::Sampling used = *sampling;
        auto final_json = [model, n_ctx, used, cache_prompt](const llm::GenerateResult& r, const std::string& content,
                                                              const std::string& prompt_text, bool streamed) {
            Json settings = generation_settings(used, n_ctx);
            settings["stream"] = streamed;
            settings["cache_prompt"] = cache_prompt;
            return Json{{"index", 0},
                        {"content", content},
                        {"tokens", Json::array()},
                        {"id_slot", 0},
                        {"stop", true},
                        {"model", model},
                        {"tokens_predicted", r.predicted_tokens},
                        {"tokens_evaluated", r.prompt_tokens + r.cached_tokens},
                        {"tokens_cached", r.cached_tokens + r.predicted_tokens},
                        {"generation_settings", settings},
                        {"prompt", prompt_text},
                        {"has_new_line", content.find('\n') != std::string::npos},
                        {"truncated", false},
                        {"stop_type", stop_type(r)},
                        {"stopping_word", r.stop_word},
                        {"timings", llama_timings(r)}};
        };
        if (!stream) {
            auto r = engine->generate(*request);
            if (!r) return llama_error(r.error());
            return json_response(200, final_json(*r, r->text, *prompt, false));
        }
        Response res;
        res.content_type = "text/event-stream";
        res.headers = {{"Cache-Control", "no-cache"}};
        const std::string prompt_text = *prompt;
        res.stream = [=, &ctx](http::StreamSink& sink) {
            int pieces = 0;
            auto r = stream_generation(engine, request, ctx, [&](const std::string& p) {
                ++pieces;
                return sink.write(data_line({{"index", 0}, {"content", p}, {"tokens", Json::array()}, {"stop", false},
                                             {"id_slot", -1}, {"tokens_predicted", pieces}}));
            });
            if (!r) {
                const Error& e = r.error();
                sink.write(data_line({{"error", {{"code", http_status(e.code)}, {"message", e.message}, {"type", "server_error"}}}}));
                return;
            }
            Json last = final_json(*r, "", prompt_text, true);
            sink.write(data_line(last));
        };
        return res;
    });

    // --- Ollama (/api/tags, /api/chat, /api/version): Open WebUI, the ollama libraries, ... ---

    server.route(Method::Get, "/api/version", [&ctx](const Request&) {
        return json_response(200, {{"version", kOllamaVersion}, {"mycandy", ctx.version}});
    });

    server.route(Method::Get, "/api/tags", [&ctx](const Request&) {
        Json models = Json::array();
        if (auto engine = ctx.engine ? ctx.engine() : nullptr) models.push_back(ollama_model(engine->status().model));
        return json_response(200, {{"models", models}});
    });

    // A chat reply from `messages` through the model's chat template. Streamed by default as
    // NDJSON (one object a line, the last with done:true and the counts); stream:false answers one
    // object. Any model name is accepted (there is one model).
    server.route(Method::Post, "/api/chat", [&ctx](const Request& req) {
        const int64_t started = now_ms();
        auto body = parse_object(req);
        if (!body) return ollama_error(body.error());
        Fields f(*body);
        (void)f.opt_string("model", 1000);
        const bool stream = f.boolean_or("stream", true);
        if (f.has("format") && !((*body)["format"].is_string() && (*body)["format"].get_ref<const std::string&>().empty())) {
            f.reject(ErrorCode::InvalidInput, "format", "'format' (structured output) is not supported");
        }
        if (const Json* tools = f.array("tools", 1000); tools && !tools->empty()) {
            f.reject(ErrorCode::InvalidInput, "tools", "'tools' (tool calls) are not supported");
        }
        llm::Sampling sampling = ctx.chat.default_sampling();
        if (const Json* options = f.object("options")) {
            Fields o(*options, "options.");
            read_named_samplers(o, "options.", SamplerNames{}, sampling);
            // -1 (no limit) and -2 (fill the context): as long as the context allows.
            if (auto n = o.opt_integer("num_predict", -2, 32768)) {
                if (*n == 0) o.reject(ErrorCode::InvalidInput, "options.num_predict", "'options.num_predict' must be -2, -1 or from 1 to 32768");
                sampling.max_tokens = *n < 0 ? 32768 : static_cast<int>(*n);
            }
            (void)o.opt_integer("num_ctx", 1, 1048576);  // The context is llm.context_size.
            if (o.error()) return ollama_error(*o.error());
        }
        if (f.error()) return ollama_error(*f.error());
        auto messages = parse_messages(*body, static_cast<size_t>(ctx.settings.current()->integer("llm.max_message_chars")));
        if (!messages) return ollama_error(messages.error());
        if (auto ok = llm::validate(sampling); !ok) return ollama_error(ok.error());
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return ollama_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        const std::string model = engine->status().model;
        auto request = std::make_shared<llm::GenerateRequest>();
        request->cache_key = "openai";  // Chat clients: consecutive requests share their prefix.
        request->messages = std::move(*messages);
        request->sampling = sampling;
        request->cancel = std::make_shared<std::atomic<bool>>(false);
        if (auto e = prompt_too_large(*engine, *request, "messages")) return ollama_error(*e);
        if (!stream) {
            auto r = engine->generate(*request);
            if (!r) return ollama_error(r.error());
            return json_response(200, ollama_done(model, r->text, *r, started));
        }
        Response res;
        res.content_type = "application/x-ndjson";
        res.headers = {{"Cache-Control", "no-cache"}};
        res.stream = [=, &ctx](http::StreamSink& sink) {
            auto line = [](const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"; };
            auto r = stream_generation(engine, request, ctx, [&](const std::string& p) {
                return sink.write(line({{"model", model},
                                        {"created_at", chat::iso_date(now_ms())},
                                        {"message", {{"role", "assistant"}, {"content", p}}},
                                        {"done", false}}));
            });
            if (!r) {
                sink.write(line({{"error", r.error().message}}));
                return;
            }
            sink.write(line(ollama_done(model, "", *r, started)));
        };
        return res;
    });

    // --- KoboldCpp (/api/v1/generate, /api/v1/model, /api/extra/version): KoboldAI Lite, ... ---

    server.route(Method::Get, "/api/extra/version", [&ctx](const Request&) {
        return json_response(200, {{"result", "KoboldCpp"}, {"version", kKoboldVersion}, {"mycandy", ctx.version}});
    });

    server.route(Method::Get, "/api/v1/model", [&ctx](const Request&) {
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return kobold_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        return json_response(200, {{"result", "koboldcpp/" + engine->status().model}});
    });

    // Text completion of `prompt` as written (no chat template): {"results":[{"text"}]}.
    server.route(Method::Post, "/api/v1/generate", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return kobold_error(body.error());
        Fields f(*body);
        llm::Sampling sampling = ctx.chat.default_sampling();
        sampling.max_tokens = static_cast<int>(f.integer_or("max_length", 1, 32768, sampling.max_tokens));
        (void)f.opt_integer("max_context_length", 1, 1048576);  // The context is llm.context_size.
        SamplerNames names;
        names.repeat_penalty = "rep_pen";
        names.repeat_last_n = "rep_pen_range";
        names.seed = "sampler_seed";
        names.stop = "stop_sequence";
        names.presence_penalty = "presence_penalty";
        names.frequency_penalty = nullptr;
        read_named_samplers(f, "", names, sampling);
        if (f.error()) return kobold_error(*f.error());
        if (auto ok = llm::validate(sampling); !ok) return kobold_error(ok.error());
        const Json* prompt = body->contains("prompt") ? &(*body)["prompt"] : nullptr;
        if (!prompt || !prompt->is_string()) {
            return kobold_error({ErrorCode::InvalidInput,
                                 "'prompt' must be a string (got " + std::string(prompt ? json_kind(*prompt) : "nothing") + ")", "prompt"});
        }
        if (prompt->get_ref<const std::string&>().size() > kMaxPromptBytes) {
            return kobold_error({ErrorCode::TooLarge, "'prompt' is longer than 1 MB", "prompt"});
        }
        if (prompt->get_ref<const std::string&>().empty()) return kobold_error({ErrorCode::InvalidInput, "'prompt' must not be empty", "prompt"});
        auto engine = ctx.engine ? ctx.engine() : nullptr;
        if (!engine) return kobold_error({ErrorCode::Unavailable, "no language model is configured (llm.model_path)", ""});
        llm::GenerateRequest request;
        request.cache_key = "completion";
        request.raw_prompt = prompt->get<std::string>();
        request.sampling = sampling;
        request.cancel = std::make_shared<std::atomic<bool>>(false);
        if (auto e = prompt_too_large(*engine, request, "prompt")) return kobold_error(*e);
        auto r = engine->generate(request);
        if (!r) return kobold_error(r.error());
        return json_response(200, {{"results", Json::array({{{"text", r->text},
                                                             {"finish_reason", r->finish == llm::FinishReason::Length ? "length" : "stop"},
                                                             {"logprobs", nullptr},
                                                             {"prompt_tokens", r->prompt_tokens + r->cached_tokens},
                                                             {"completion_tokens", r->predicted_tokens}}})}});
    });
}

}  // namespace mc::api
