// llm/cluster_engine: a model bigger than one machine. The model's layers live on ggml-rpc-server
// processes on other machines (llm.rpc_servers); llama.cpp's RPC client runs in a child process —
// llama-server from the same bundle with --rpc — because ggml's RPC client aborts its whole process
// when a server goes away mid-computation (GGML_ABORT in ggml-rpc.cpp): in a child, that ends one
// reply with a clear error instead of ending mycandy. We talk to the child through the remote
// engine's /completion path (llama-server keeps the chat's cache between turns) and format prompts
// and count tokens ourselves with the model's own tokenizer (ModelVocab, no weights loaded here).
// A child that dies is started again for the next turn; an RPC server that cannot be reached is
// named in the engine's status.
// Thread safety: all public members may be called from any thread. m_mu guards the child's state
// (m_state, m_detail, m_port, m_ready, m_generation, m_failures, m_last_lines, m_retry_now, m_quit); one supervisor thread
// (m_thread, joined by shutdown()) owns the child process.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llm/engine.hpp"

namespace mc::llm {

class ModelVocab;
class OpenAiEngine;

struct ClusterEngineOptions {
    std::string llama_server;              // The llama-server binary.
    std::string model_path;
    std::vector<std::string> rpc_servers;  // "host:port" each.
    int context_size = 8192;
    std::string kv_type = "f16";  // llm.kv_cache_type, passed as --cache-type-k/-v (quantized: with flash attention).
    int threads = 0;       // 0 = all cores.
    int gpu_layers = -1;   // -1 = all (onto the RPC servers and local GPUs).
    std::string fallback_template = "llama3";
    int connect_timeout_ms = 2000;  // Per RPC server, before the child starts.
    // Where the child's API key is written (0600) for --api-key-file: the child listens on a
    // loopback port, and without a key any web page the person opens could send it requests.
    std::string key_file;
};

// Each "host:port" that does not accept a TCP connection within `timeout_ms`, with the reason.
std::vector<std::string> unreachable_servers(const std::vector<std::string>& servers, int timeout_ms);

class ClusterEngine : public Engine {
public:
    // Returns at once; the child starts on the supervisor thread (status "loading" until it listens).
    explicit ClusterEngine(ClusterEngineOptions options);
    ~ClusterEngine() override;

    Result<GenerateResult> generate(const GenerateRequest& request) override;
    EngineStatus status() const override;
    int count_tokens(std::string_view text) const override;
    std::string format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const override;
    int context_size() const override { return m_opt.context_size; }
    std::optional<int> prompt_size(const GenerateRequest& request) const override;
    Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special, bool parse_special) const override;
    Result<std::string> detokenize(const std::vector<int32_t>& tokens) const override;
    std::string chat_template() const override;
    void shutdown() override;

private:
    void supervise();
    void set_state(const std::string& state, const std::string& detail);
    void set_state_locked(const std::string& state, const std::string& detail);  // Under m_mu.
    std::string last_error_line() const;  // Under m_mu.

    ClusterEngineOptions m_opt;
    std::shared_ptr<const ModelVocab> m_vocab;  // Null when the model file cannot be read.
    std::string m_vocab_error;

    mutable std::mutex m_mu;
    std::condition_variable m_cv;
    std::string m_state = "loading";
    std::string m_detail;
    int m_port = 0;
    std::string m_key;  // The running child's API key.
    bool m_ready = false;
    uint64_t m_generation = 0;  // Counts children started; a turn knows whether its child died.
    std::deque<std::string> m_last_lines;  // The child's last output lines (for error messages).
    uint64_t m_failures = 0;    // Counts failed starts and exits (a turn waits for one attempt).
    bool m_retry_now = false;   // A turn asks for a new child at once.
    bool m_quit = false;
    std::shared_ptr<std::atomic<bool>> m_stop = std::make_shared<std::atomic<bool>>(false);
    std::thread m_thread;
    std::mutex m_join_mu;  // Serializes joining m_thread.
};

}  // namespace mc::llm
