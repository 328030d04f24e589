#include "llm/openai_engine.hpp"

#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "core/text.hpp"
#include "http/client.hpp"
#include "llm/llama_engine.hpp"

namespace mc::llm {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The message a server put in its error body, or the body itself.
std::string server_message(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error")) {
        const Json& e = j["error"];
        if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
        if (e.is_string()) return e.get<std::string>();
    }
    return body.substr(0, 300);
}

}  // namespace

OpenAiEngine::OpenAiEngine(OpenAiEngineOptions options) : m_opt(std::move(options)) {
    // Accept both "http://host:8080" and "http://host:8080/v1".
    while (!m_opt.base_url.empty() && m_opt.base_url.back() == '/') m_opt.base_url.pop_back();
    if (m_opt.base_url.size() > 3 && m_opt.base_url.ends_with("/v1")) m_opt.base_url.resize(m_opt.base_url.size() - 3);
}

Result<GenerateResult> OpenAiEngine::generate(const GenerateRequest& req) {
    if (auto ok = validate(req.sampling); !ok) return std::unexpected(ok.error());
    const Sampling& s = req.sampling;
    const bool completion = m_opt.mode == "completion";
    Json body;
    std::string path;
    // A text completion (raw prompt) goes to llama.cpp's /completion in completion mode and to the
    // server's OpenAI /v1/completions in chat mode.
    const bool raw_v1 = req.raw_prompt && !completion;
    if (completion) {
        std::string prompt_text;
        if (req.raw_prompt) {
            prompt_text = *req.raw_prompt;
        } else {
            auto prompt = apply_template(m_opt.chat_template, req.messages, true);
            if (!prompt) return std::unexpected(prompt.error());
            prompt_text = *prompt + req.assistant_prefix;
        }
        body = {{"prompt", prompt_text}, {"n_predict", s.max_tokens}, {"stream", true},
                {"cache_prompt", true}, {"temperature", s.temperature}, {"top_k", s.top_k}, {"top_p", s.top_p},
                {"min_p", s.min_p}, {"repeat_penalty", s.repeat_penalty}, {"repeat_last_n", s.repeat_last_n},
                {"presence_penalty", s.presence_penalty}, {"frequency_penalty", s.frequency_penalty},
                {"dry_multiplier", s.dry_multiplier}, {"dry_base", s.dry_base},
                {"dry_allowed_length", s.dry_allowed_length}, {"stop", s.stop}};
        if (s.seed >= 0) body["seed"] = s.seed;
        path = "/completion";
    } else if (raw_v1) {
        body = {{"prompt", *req.raw_prompt}, {"stream", true}, {"max_tokens", s.max_tokens}, {"temperature", s.temperature},
                {"top_p", s.top_p}, {"top_k", s.top_k}, {"min_p", s.min_p}, {"repeat_penalty", s.repeat_penalty},
                {"presence_penalty", s.presence_penalty}, {"frequency_penalty", s.frequency_penalty},
                {"stream_options", {{"include_usage", true}}}};
        if (!s.stop.empty()) body["stop"] = s.stop;
        if (s.seed >= 0) body["seed"] = s.seed;
        if (const std::string model = model_name(); !model.empty()) body["model"] = model;
        path = "/v1/completions";
    } else {
        Json messages = Json::array();
        for (const auto& m : req.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
        if (!req.assistant_prefix.empty()) messages.push_back({{"role", "assistant"}, {"content", req.assistant_prefix}});
        body = {{"messages", messages}, {"stream", true}, {"max_tokens", s.max_tokens}, {"temperature", s.temperature},
                {"top_p", s.top_p}, {"top_k", s.top_k}, {"min_p", s.min_p}, {"repeat_penalty", s.repeat_penalty},
                {"presence_penalty", s.presence_penalty}, {"frequency_penalty", s.frequency_penalty},
                {"stream_options", {{"include_usage", true}}}, {"cache_prompt", true}};
        if (!s.stop.empty()) body["stop"] = s.stop;
        if (s.seed >= 0) body["seed"] = s.seed;
        if (const std::string model = model_name(); !model.empty()) body["model"] = model;
        path = "/v1/chat/completions";
    }
    http::ClientOptions co;
    co.connect_timeout_ms = m_opt.connect_timeout_ms;
    if (!m_opt.api_key.empty()) co.headers.emplace_back("Authorization", "Bearer " + m_opt.api_key);

    GenerateResult result;
    result.finish = FinishReason::Stop;
    http::SseParser sse;
    const auto started = Clock::now();
    Clock::time_point first_token{};
    bool cancelled = false;
    std::string stream_error;
    bool ended = false;  // The server said the reply is complete (a finish, stop, or [DONE]).
    auto on_data = [&](std::string_view chunk) {
        for (const auto& data : sse.push(chunk)) {
            if (data == "[DONE]") {
                ended = true;
                continue;
            }
            Json j = Json::parse(data, nullptr, false);
            if (!j.is_object()) continue;
            if (j.contains("error")) {
                stream_error = server_message(data);
                return false;
            }
            std::string piece;
            Json finish = nullptr;
            const Json* timings = j.contains("timings") ? &j["timings"] : nullptr;
            if (completion) {
                piece = j.value("content", "");
                if (j.value("stop", false)) ended = true;
                if (j.value("stop", false) && j.value("stop_type", "") == "limit") finish = "length";
            } else if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
                const Json& c = j["choices"][0];
                if (raw_v1 && c.contains("text") && c["text"].is_string()) piece = c["text"].get<std::string>();
                if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
                    c["delta"]["content"].is_string()) {
                    piece = c["delta"]["content"].get<std::string>();
                }
                if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
                    finish = c["finish_reason"];
                    ended = true;
                }
            }
            if (j.contains("usage") && j["usage"].is_object()) {
                result.predicted_tokens = j["usage"].value("completion_tokens", result.predicted_tokens);
                result.prompt_tokens = j["usage"].value("prompt_tokens", result.prompt_tokens);
            }
            if (timings && timings->is_object()) {
                // llama-server reports what it evaluated and what it reused.
                result.prompt_tokens = timings->value("prompt_n", result.prompt_tokens);
                result.cached_tokens = timings->value("cache_n", result.cached_tokens);
                result.predicted_tokens = timings->value("predicted_n", result.predicted_tokens);
            }
            if (finish.is_string() && finish.get<std::string>() == "length") result.finish = FinishReason::Length;
            if (!piece.empty()) {
                if (first_token == Clock::time_point{}) first_token = Clock::now();
                result.text += piece;
                if (req.on_text && !req.on_text(piece)) cancelled = true;
            }
            if (cancelled || (req.cancel && req.cancel->load())) {
                cancelled = true;
                return false;
            }
        }
        return true;
    };
    auto r = http::fetch("POST", m_opt.base_url, path, body.dump(), "application/json", co, on_data);
    if (!r) return std::unexpected(r.error());  // "cannot reach <url>: <reason>"

    if (r->status < 200 || r->status >= 300) {
        return fail(ErrorCode::Unavailable, "the model server at " + m_opt.base_url + path + " answered HTTP " +
                                                std::to_string(r->status) + ": " + server_message(r->body));
    }
    if (!stream_error.empty()) {
        return fail(ErrorCode::Unavailable, "the model server at " + m_opt.base_url + " reported an error: " + stream_error);
    }
    if (cancelled) result.finish = FinishReason::Cancelled;
    // A stream cut off mid-reply (the server crashed, a proxy dropped it) is an error, not a short
    // reply: the turn keeps what arrived as a partial message and says why.
    if (!cancelled && !ended) {
        return fail(ErrorCode::Unavailable, "the model server at " + m_opt.base_url +
                                                " stopped sending before the reply was complete (after " +
                                                std::to_string(result.text.size()) + " bytes of text)");
    }
    const auto t_first = first_token == Clock::time_point{} ? Clock::now() : first_token;
    result.prompt_ms = std::chrono::duration<double, std::milli>(t_first - started).count();
    result.predicted_ms = ms_since(t_first);
    return result;
}

RemoteProbe probe_remote(const std::string& url, const std::string& api_key) {
    RemoteProbe out;
    // ".../v1" (as Ollama's and LM Studio's guides write it) and a trailing slash mean the same server.
    std::string base_url = url;
    while (base_url.size() > 8 && base_url.ends_with("/")) base_url.pop_back();
    if (base_url.size() > 3 && base_url.ends_with("/v1")) base_url.resize(base_url.size() - 3);
    http::ClientOptions co;
    co.connect_timeout_ms = 1000;
    co.read_timeout_ms = 2000;
    if (!api_key.empty()) co.headers.emplace_back("Authorization", "Bearer " + api_key);
    auto r = http::fetch("GET", base_url, "/v1/models", "", "", co);
    if (!r) {
        out.detail = r.error().message;
        return out;
    }
    out.reachable = true;
    if (r->status != 200) {
        out.detail = base_url + "/v1/models answered HTTP " + std::to_string(r->status) + ": " + server_message(r->body);
        return out;
    }
    Json j = Json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
        out.detail = base_url + "/v1/models did not answer an OpenAI-style model list: is this the right address?";
        return out;
    }
    for (const auto& m : j["data"]) {
        if (m.is_object() && m.contains("id") && m["id"].is_string() && out.models.size() < 200) {
            out.models.push_back(utf8_prefix(m["id"].get<std::string>(), 200));
        }
    }
    out.ok = true;
    return out;
}

std::string OpenAiEngine::model_name() const {
    if (!m_opt.model.empty()) return m_opt.model;
    // None set: the first the server lists (status() asks it, at most every 3 s).
    return status().model;
}

EngineStatus OpenAiEngine::status() const {
    std::lock_guard lock(m_mu);
    if (Clock::now() - m_checked < std::chrono::seconds(3) && !m_status.state.empty()) return m_status;
    const RemoteProbe r = probe_remote(m_opt.base_url, m_opt.api_key);
    m_status.backend = "remote";
    m_status.model = m_opt.model;
    if (!r.reachable) {
        m_status.state = "unavailable";
        m_status.detail = r.detail + "; start the model server or change llm.llama_cpp_url";
    } else if (!r.ok) {
        m_status.state = "error";
        m_status.detail = r.detail;
    } else {
        if (m_status.model.empty() && !r.models.empty()) m_status.model = r.models.front();
        m_status.state = "ready";
        m_status.detail = "remote server " + m_opt.base_url + " (" + m_opt.mode + " mode)";
    }
    m_checked = Clock::now();
    return m_status;
}

int OpenAiEngine::count_tokens(std::string_view text) const {
    // No tokenizer here: about 3.5 bytes a token for English and German text.
    return static_cast<int>(text.size() * 2 / 7 + 1);
}

std::string OpenAiEngine::format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const {
    auto r = apply_template(m_opt.chat_template, messages, add_assistant);
    return r ? *r : std::string();
}

}  // namespace mc::llm
