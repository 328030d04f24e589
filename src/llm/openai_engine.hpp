// llm/openai_engine: the remote engine — streams a turn from an OpenAI-compatible server (the
// seed's llama.cpp server on :8080, Ollama, LM Studio, KoboldCpp). Two modes: "chat" posts
// /v1/chat/completions; "completion" posts llama.cpp's raw /completion with a prompt we template
// ourselves (llama-server parses chat output and may refuse text it cannot parse).
// Thread safety: all members may be called from any thread; requests run on the caller's thread.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "llm/engine.hpp"

namespace mc::llm {

struct OpenAiEngineOptions {
    std::string base_url = "http://127.0.0.1:8080";
    std::string api_key;
    std::string mode = "chat";  // chat | completion
    std::string model;          // Sent as "model"; empty = the server's default.
    std::string chat_template = "llama3";  // For completion mode.
    int context_size = 8192;
    int connect_timeout_ms = 2000;
};

// What an OpenAI-compatible server at `base_url` answers on /v1/models (llama.cpp's server, Ollama,
// LM Studio, KoboldCpp, vLLM all serve it): the model ids it offers, or an error that says what is
// wrong (not reachable, HTTP status and the server's own message, not an OpenAI-style answer).
// Short timeouts: a person is waiting on "Test connection".
struct RemoteProbe {
    bool reachable = false;  // Something answered HTTP at that address.
    bool ok = false;         // ... with a model list.
    std::string detail;      // Why not, when not.
    std::vector<std::string> models;
};
RemoteProbe probe_remote(const std::string& base_url, const std::string& api_key);

class OpenAiEngine : public Engine {
public:
    explicit OpenAiEngine(OpenAiEngineOptions options);
    Result<GenerateResult> generate(const GenerateRequest& request) override;
    EngineStatus status() const override;
    int count_tokens(std::string_view text) const override;
    std::string format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const override;
    int context_size() const override { return m_opt.context_size; }

private:
    // The "model" to send: llm.remote_model, else the first the server lists, else none.
    std::string model_name() const;

    OpenAiEngineOptions m_opt;
    mutable std::mutex m_mu;
    mutable EngineStatus m_status;
    mutable std::chrono::steady_clock::time_point m_checked{};
};

}  // namespace mc::llm
