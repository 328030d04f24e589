// llm/llama_engine: the in-process llama.cpp engine. The only file that includes llama.h.
// One inference thread owns the llama context; requests queue FIFO (fair across chats), and
// requests of other chats that arrive while a reply is generating decode beside it, one token of
// each per batch (LlamaEngineOptions::parallel). Each chat
// (cache key) keeps its KV state: the active one in the context, recent ones in memory, all of them
// on disk under the cache folder, so a chat resumes after a restart without re-evaluating history.
// A turn evaluates only the tokens after the longest prefix it shares with the chat's cache; when
// older turns were dropped from the prompt, the cache is shifted instead of re-evaluated.
// Thread safety: all public members may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llm/engine.hpp"

struct llama_model;  // llama.h, included by llama_engine.cpp only.

namespace mc::llm {

struct RuntimeInfo {
    std::string release;         // llama.cpp release we built, e.g. "v0.4.0".
    std::string backend;         // The ggml device llama.cpp chose, e.g. "CPU".
    std::string backend_detail;  // Its description (the CPU model).
    std::string system_info;     // llama_print_system_info(): the CPU features compiled in.
    struct Device {
        std::string name, description, type;  // type: cpu | gpu | igpu | accel
        uint64_t memory_total = 0, memory_free = 0;  // Bytes, as the device reports them at start.
    };
    std::vector<Device> devices;  // Every ggml device this build has (CPU, GPUs; RPC ones join when used).
    std::vector<std::string> gpu_backends;  // GPU backends that found a device (Vulkan, CUDA).
    std::string gpu_build;  // "vulkan" or "cuda" for a GPU build (make run GPU=...), "" for a CPU one.
};

// Initializes llama.cpp's backend on first call and routes its log to ours.
const RuntimeInfo& runtime_info();

struct LlamaEngineOptions {
    std::string model_path;
    int context_size = 8192;
    int threads = 0;  // 0 = all cores.
    int batch_size = 512;
    // The KV cache's element type: "f16" (llama.cpp's default), "q8_0" (half the bytes) or "q4_0"
    // (about a quarter). Quantized caches run with flash attention (llama.cpp needs it for a
    // quantized V cache). Saved chat states only fit the type they were made with.
    std::string kv_type = "f16";
    std::string cache_dir;  // Where chats' KV states are saved ("" = not saved).
    size_t hot_cache_bytes = size_t(1) << 30;  // In-memory states of recently used chats.
    // Saved states on disk (all models and context sizes together); least recently used go first.
    // 0 = never save.
    uint64_t disk_cache_bytes = uint64_t(4) << 30;
    std::string fallback_template = "llama3";  // When the model has no usable template.
    int gpu_layers = -1;  // Layers offloaded to a GPU (GPU builds); -1 = all, 0 = none.
    // Weights read into memory of our own in 2 MiB pages (llm/huge_pages.hpp) where they stay on
    // the CPU; false: mapped from the file (llama.cpp's default).
    bool huge_pages = true;
    // Speculative decoding: a small model of the same vocabulary guesses up to draft_max tokens
    // (greedily, while its top token's probability is at least draft_p_min); the model checks them
    // in one batch and keeps those it would have sampled itself. Guesses shorter than draft_min are
    // not checked. "" = off. A model whose vocabulary differs is not used (the status says why).
    std::string draft_model_path;
    int draft_max = 8;
    int draft_min = 0;
    double draft_p_min = 0.5;
    // Guess as many as pay off by measured costs and hit rate (llm/draft_length), up to draft_max;
    // false: always draft_max.
    bool draft_adaptive = true;
    // Replies decoded together: requests of other chats that arrive while one is generating join
    // its batch (one token of each per step) while the context has room for their prompt and
    // reply; 1 = one after another.
    int parallel = 4;
};

// Formats `messages` with a named or Jinja template (llama3, chatml, mistral, alpaca, or a
// model's template text). Fails for a template llama.cpp does not know.
Result<std::string> apply_template(const std::string& tmpl, const std::vector<ChatMessage>& messages, bool add_assistant);

// A model's tokenizer and chat template without its weights (llama.cpp's vocab_only load): exact
// token counts and the model's own prompt format for engines whose weights live in another
// process (llm/cluster_engine). Thread safety: const members may be called from any thread.
class ModelVocab {
public:
    static Result<std::shared_ptr<const ModelVocab>> load(const std::string& model_path, const std::string& fallback_template);
    ~ModelVocab();
    ModelVocab(const ModelVocab&) = delete;
    ModelVocab& operator=(const ModelVocab&) = delete;

    int count_tokens(std::string_view text) const;
    std::string format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const;
    std::optional<int> prompt_size(const GenerateRequest& request) const;
    Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special, bool parse_special) const;
    Result<std::string> detokenize(const std::vector<int32_t>& tokens) const;
    const std::string& chat_template() const { return m_template; }

private:
    ModelVocab() = default;
    ::llama_model* m_model = nullptr;
    std::string m_template;
};

class LlamaEngine : public Engine {
public:
    // Returns at once; the model loads on the inference thread (status "loading" until done).
    explicit LlamaEngine(LlamaEngineOptions options);
    ~LlamaEngine() override;

    Result<GenerateResult> generate(const GenerateRequest& request) override;
    EngineStatus status() const override;
    int count_tokens(std::string_view text) const override;
    std::string format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const override;
    int context_size() const override;
    std::optional<int> prompt_size(const GenerateRequest& request) const override;
    Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special, bool parse_special) const override;
    Result<std::string> detokenize(const std::vector<int32_t>& tokens) const override;
    std::string chat_template() const override;
    void shutdown() override;
    void forget(const std::string& key) override;
    // Blocks until the model finished loading (or failed). For tests and benchmarks.
    void wait_loaded() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace mc::llm
