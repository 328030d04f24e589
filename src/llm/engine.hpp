// llm/engine: the interface every text engine implements — in-process llama.cpp (llama_engine)
// and remote OpenAI-compatible servers (openai_engine) — plus sampler settings and their checks.
// Thread safety: Engine implementations are safe to call from any thread; generate() blocks the
// caller until the request is done and calls the request's callbacks on the engine's own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mc::llm {

struct ChatMessage {
    std::string role;  // system | user | assistant
    std::string content;
};

struct Sampling {
    double temperature = 0.8;
    int top_k = 40;
    double top_p = 0.95;
    double min_p = 0.05;
    double repeat_penalty = 1.1;
    int repeat_last_n = 64;
    double presence_penalty = 0.0;
    double frequency_penalty = 0.0;
    double dry_multiplier = 0.0;  // 0 = DRY off.
    double dry_base = 1.75;
    int dry_allowed_length = 2;
    int dry_last_n = -1;  // -1 = whole context.
    int64_t seed = -1;    // -1 = random.
    int max_tokens = 400;
    std::vector<std::string> stop;
};

// Stop strings: a client may send kMaxClientStops of at most kMaxStopBytes each; the server adds its
// own (the user's name starting a line), so the engine takes a few more and longer ones.
constexpr size_t kMaxClientStops = 16;
constexpr size_t kMaxStopBytes = 256;
constexpr size_t kMaxStops = kMaxClientStops + 4;
constexpr size_t kMaxServerStopBytes = 512;

// Checks every value's range; the error names the field ("temperature", "top_p", ...).
Result<void> validate(const Sampling& s);

enum class FinishReason { Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);

// Interactive requests (chat turns) go first; a background request (a summary) that is running
// when an interactive one arrives is cancelled so the turn waits at most one token.
enum class Priority { Interactive, Background };

struct GenerateRequest {
    Priority priority = Priority::Interactive;
    // Identifies whose KV state this is (a chat id); turns with the same key reuse the cache.
    std::string cache_key;
    // false: the state under cache_key is kept in memory only, never written to disk (background
    // jobs: a preempted one resumes from it, and nothing of it outlives the process).
    bool save_state = true;
    std::vector<ChatMessage> messages;
    // Text the reply continues from (for "continue"): appended after the assistant header.
    std::string assistant_prefix;
    // Text completion (/completion, /v1/completions): the whole prompt as the client wrote it, no
    // chat template; `messages` and `assistant_prefix` are then ignored.
    std::optional<std::string> raw_prompt;
    Sampling sampling;
    // Called with each piece of generated text (control tokens already removed). Return false to stop.
    std::function<bool(std::string_view)> on_text;
    // Embedded engine: called after each batch of the prompt with the tokens read so far (cached
    // ones included) and the prompt's length.
    std::function<void(size_t read, size_t total)> on_prompt_progress;
    // Set by another thread to stop the generation: the embedded engine stops within one step of
    // its computation (mid-batch: what the cache holds so far is kept for the next request).
    std::shared_ptr<std::atomic<bool>> cancel;
};

struct GenerateResult {
    std::string text;
    FinishReason finish = FinishReason::Stop;
    int prompt_tokens = 0;  // Evaluated this turn.
    int cached_tokens = 0;  // Reused from the cache.
    int predicted_tokens = 0;
    double prompt_ms = 0;
    double predicted_ms = 0;
    std::string stop_word;  // The stop string that ended the reply (empty for EOS, length, cancel).
    int draft_tokens = 0;     // Speculative decoding: tokens the draft model guessed,
    int accepted_tokens = 0;  // and how many of them the model kept.
    int draft_evaluated = 0;  // Tokens the draft model read this turn (catching up with the chat, guessing).
    int batched_tokens = 0;   // Tokens decoded in one batch with other replies' (concurrent requests).
};

struct EngineStatus {
    std::string state;  // ready | loading | unavailable | not_configured | error
    std::string detail;
    std::string model;
    std::string backend;  // embedded | remote
    std::string draft;         // The draft model's file name ("" = no speculative decoding configured).
    std::string draft_detail;  // "" when it drafts; else why it does not (vocabulary differs, unreadable).
    bool draft_paused = false;  // It fits but does not pay on this machine (draft_detail says why).
    // Embedded engine: replies being decoded now (together, in one batch), requests waiting, and
    // how many may decode together (llm.parallel). -1: the engine does not say.
    int decoding = -1, queued = -1, parallel = -1;
    // Embedded engine with the weights on the CPU: bytes of them in 2 MiB pages (llm.huge_pages),
    // and what the kernel allows ("madvise", "always", "never"; "" = no such kernel setting).
    // -1: not said (other engines, weights on a GPU).
    int64_t weights_huge_page_bytes = -1;
    std::string huge_pages_kernel = "";
};

class Engine {
public:
    virtual ~Engine() = default;
    virtual Result<GenerateResult> generate(const GenerateRequest& request) = 0;
    virtual EngineStatus status() const = 0;
    // Tokens `text` takes (exact for the embedded engine, an estimate for remote ones).
    virtual int count_tokens(std::string_view text) const = 0;
    // The formatted prompt for `messages` (what the model sees), for budgeting and debugging.
    virtual std::string format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const = 0;
    virtual int context_size() const = 0;
    // The prompt `request` would evaluate, in tokens, when the engine can say exactly (the embedded
    // one); nullopt when only the remote server knows. Lets a route refuse an oversized prompt
    // before a stream starts.
    virtual std::optional<int> prompt_size(const GenerateRequest& request) const {
        (void)request;
        return std::nullopt;
    }
    // The model's tokenizer (/tokenize, /detokenize). `add_special` adds BOS as the model wants it;
    // with `parse_special`, special-token text ("<|eot_id|>") becomes the special token. Engines without one here
    // (remote) answer Unavailable naming why; detokenize refuses ids outside the vocabulary
    // (InvalidInput, field "tokens").
    virtual Result<std::vector<int32_t>> tokenize(std::string_view text, bool add_special, bool parse_special) const {
        (void)text;
        (void)add_special;
        (void)parse_special;
        return fail(ErrorCode::Unavailable, "the remote text engine has no tokenizer here (llm.backend is remote); "
                                            "ask the model server itself");
    }
    virtual Result<std::string> detokenize(const std::vector<int32_t>& tokens) const {
        (void)tokens;
        return fail(ErrorCode::Unavailable, "the remote text engine has no tokenizer here (llm.backend is remote); "
                                            "ask the model server itself");
    }
    // The chat template the engine applies (the model's Jinja text, or a fallback's name).
    virtual std::string chat_template() const { return {}; }
    // Drops what is cached for `key` (a deleted chat).
    virtual void forget(const std::string& key) { (void)key; }
    // Persists caches before shutdown.
    virtual void shutdown() {}
};

}  // namespace mc::llm
