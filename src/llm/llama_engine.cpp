#include "llm/llama_engine.hpp"

#include <ggml-backend.h>
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/log.hpp"
#include "core/text.hpp"
#include "llm/draft_length.hpp"
#include "llm/huge_pages.hpp"
#include "llm/weight_memory.hpp"
#include "llm/kv_files.hpp"
#include "llm/thread_tuner.hpp"

#ifndef MYCANDY_LLAMA_RELEASE
#define MYCANDY_LLAMA_RELEASE "unknown"
#endif

namespace mc::llm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void forward_log(ggml_log_level level, const char* text, void*) {
    std::string_view t(text ? text : "");
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
    if (t.empty()) return;
    // llama.cpp is chatty at info level; keep its info lines at our debug level.
    if (level == GGML_LOG_LEVEL_ERROR) log::error("llama.cpp: ", t);
    else if (level == GGML_LOG_LEVEL_WARN) log::warn("llama.cpp: ", t);
    else log::debug("llama.cpp: ", t);
}

// Length of the longest prefix of `s` that is complete UTF-8 (a piece may end mid-character).
size_t complete_utf8_prefix(std::string_view s) {
    size_t i = s.size();
    size_t back = 0;
    while (i > 0 && back < 4) {
        const auto c = static_cast<unsigned char>(s[i - 1]);
        if ((c & 0xC0) == 0x80) { --i; ++back; continue; }
        if (c < 0x80) return s.size();
        const size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        return back + 1 >= need ? s.size() : i - 1;
    }
    return s.size();
}

// Alpaca has no built-in template in llama.cpp; it is simple enough to write out.
std::string format_alpaca(const std::vector<ChatMessage>& messages, bool add_assistant) {
    std::string out;
    for (const auto& m : messages) {
        if (m.role == "system") out += m.content + "\n\n";
        else if (m.role == "user") out += "### Instruction:\n" + m.content + "\n\n";
        else out += "### Response:\n" + m.content + "\n\n";
    }
    if (add_assistant) out += "### Response:\n";
    return out;
}

std::string safe_file_name(const std::string& key) {
    std::string out;
    for (unsigned char c : key) {
        if (std::isalnum(c) || c == '-' || c == '_') out += static_cast<char>(c);
        else {
            static const char* hex = "0123456789abcdef";
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

}  // namespace

const RuntimeInfo& runtime_info() {
    static std::once_flag once;
    static RuntimeInfo info;
    std::call_once(once, [] {
        llama_log_set(forward_log, nullptr);
        llama_backend_init();
        info.release = MYCANDY_LLAMA_RELEASE;
        info.gpu_build = MYCANDY_GPU_BUILD;
        info.system_info = llama_print_system_info();
        for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
            ggml_backend_dev_t dev = ggml_backend_dev_get(i);
            const auto type = ggml_backend_dev_type(dev);
            if (i == 0 || type == GGML_BACKEND_DEVICE_TYPE_GPU) {
                info.backend = ggml_backend_dev_name(dev);
                info.backend_detail = ggml_backend_dev_description(dev);
            }
            RuntimeInfo::Device d;
            d.name = ggml_backend_dev_name(dev);
            d.description = ggml_backend_dev_description(dev);
            d.type = type == GGML_BACKEND_DEVICE_TYPE_GPU    ? "gpu"
                     : type == GGML_BACKEND_DEVICE_TYPE_IGPU ? "igpu"
                     : type == GGML_BACKEND_DEVICE_TYPE_ACCEL ? "accel"
                                                              : "cpu";
            size_t free_b = 0, total_b = 0;
            ggml_backend_dev_memory(dev, &free_b, &total_b);
            d.memory_free = free_b;
            d.memory_total = total_b;
            info.devices.push_back(std::move(d));
        }
        for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
            const std::string reg = ggml_backend_reg_name(ggml_backend_reg_get(i));
            if (reg != "CPU" && reg != "RPC" && reg != "BLAS") info.gpu_backends.push_back(reg);
        }
        while (!info.system_info.empty() && (info.system_info.back() == ' ' || info.system_info.back() == '|')) {
            info.system_info.pop_back();
        }
    });
    return info;
}

Result<std::string> apply_template(const std::string& tmpl, const std::vector<ChatMessage>& messages, bool add_assistant) {
    if (tmpl == "alpaca") return format_alpaca(messages, add_assistant);
    const std::string name = tmpl == "mistral" ? "mistral-v7" : tmpl;
    std::vector<llama_chat_message> chat;
    size_t total = 0;
    for (const auto& m : messages) {
        chat.push_back({m.role.c_str(), m.content.c_str()});
        total += m.content.size() + m.role.size();
    }
    std::string buf(total * 2 + 256, '\0');
    int32_t n = llama_chat_apply_template(name.c_str(), chat.data(), chat.size(), add_assistant, buf.data(),
                                          static_cast<int32_t>(buf.size()));
    if (n > static_cast<int32_t>(buf.size())) {
        buf.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(name.c_str(), chat.data(), chat.size(), add_assistant, buf.data(), n);
    }
    if (n < 0) return fail(ErrorCode::InvalidInput, "unsupported chat template '" + tmpl.substr(0, 40) + "'");
    buf.resize(static_cast<size_t>(n));
    return buf;
}

static std::vector<llama_token> tokenize_with(const llama_vocab* vocab, std::string_view text, bool add_special,
                                              bool parse_special = true) {
    std::vector<llama_token> out(text.size() + 8);
    int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                           static_cast<int32_t>(out.size()), add_special, parse_special);
    if (n < 0) {
        out.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                           static_cast<int32_t>(out.size()), add_special, parse_special);
    }
    out.resize(static_cast<size_t>(std::max(n, 0)));
    return out;
}

static Result<std::string> detokenize_with(const llama_vocab* vocab, const std::vector<int32_t>& tokens) {
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            return fail(ErrorCode::InvalidInput, "'tokens[" + std::to_string(i) + "]' is " + std::to_string(tokens[i]) +
                                                     ", not a token of this model (0 to " + std::to_string(n_vocab - 1) + ")",
                        "tokens");
        }
    }
    if (tokens.empty()) return std::string();
    std::string out(tokens.size() * 8 + 16, '\0');
    const auto n_tokens = static_cast<int32_t>(tokens.size());
    int32_t n = llama_detokenize(vocab, tokens.data(), n_tokens, out.data(), static_cast<int32_t>(out.size()), false, true);
    if (n < 0) {
        out.resize(static_cast<size_t>(-n));
        n = llama_detokenize(vocab, tokens.data(), n_tokens, out.data(), static_cast<int32_t>(out.size()), false, true);
    }
    out.resize(static_cast<size_t>(std::max(n, 0)));
    return out;
}

// Tokens of the prompt `request` would evaluate when nothing is cached (with the model's BOS).
static std::optional<int> prompt_tokens_with(const llama_vocab* vocab, const std::string& tmpl, const GenerateRequest& request) {
    std::string text;
    if (request.raw_prompt) {
        text = *request.raw_prompt;
    } else {
        auto t = apply_template(tmpl, request.messages, true);
        if (!t) return std::nullopt;
        text = *t + request.assistant_prefix;
    }
    return static_cast<int>(tokenize_with(vocab, text, true).size());
}

// The model's own chat template when llama.cpp can apply it, else `fallback`.
static std::string template_of(const llama_model* model, const std::string& fallback) {
    const char* t = llama_model_chat_template(model, nullptr);
    std::string tmpl = t ? t : "";
    if (tmpl.empty() || !apply_template(tmpl, {{"user", "x"}}, true)) {
        log::warn("model has no chat template llama.cpp supports; using '", fallback, "'");
        tmpl = fallback;
    }
    return tmpl;
}


// Lock coverage: `mu` guards the queue, to_forget, running, quit, loaded, state, detail,
// draft_detail, draft_paused, and the fields other threads read after loading (vocab, tmpl,
// model_name, state_dir, weights_huge_bytes, huge_pages_kernel, draft_name: written once under
// mu, then only read). Everything else (ctx, the draft model's context, the active chat, the hot
// cache) belongs to the inference thread alone. The model is freed by the destructor, after the
// thread is joined and when no caller holds the engine any more, so the vocabulary stays valid
// for count_tokens().
struct LlamaEngine::Impl {
    LlamaEngineOptions opt;
    llama_model* model = nullptr;
    llama_context* ctx = nullptr;
    // The weights' memory of our own (llm/weight_memory.hpp) when llm.huge_pages is in force: the
    // model's buffers point into it, so it goes after the model (the destructor frees the models).
    std::unique_ptr<weight_memory::WeightMemory> weights, draft_weights;
    const llama_vocab* vocab = nullptr;
    std::string tmpl;  // The model's template text, or a fallback name.
    std::string model_name;
    std::string state_dir;
    int64_t weights_huge_bytes = -1;  // Weight bytes in 2 MiB pages after the load (llm/huge_pages.hpp); -1: on a GPU.
    std::string huge_pages_kernel;  // The kernel's transparent_hugepage setting at the load.

    mutable std::mutex mu;
    mutable std::condition_variable cv;
    struct Job {
        const GenerateRequest* request;
        std::promise<Result<GenerateResult>> done;
    };
    std::deque<Job*> queue;
    std::vector<std::string> to_forget;  // Chats deleted: drop their states on the inference thread.
    const GenerateRequest* running = nullptr;  // The request being served (under mu).
    bool quit = false;
    bool loaded = false;
    std::string state = "loading";
    std::string detail;
    std::thread worker;     // The inference thread; joined by shutdown().
    std::mutex join_mu;     // Serializes joining the worker (shutdown from several threads).

    // The running request's cancel flag, read by llama.cpp's abort callback between graph nodes
    // (on its compute threads: hence atomic), so a cancel stops a long batch within milliseconds.
    std::atomic<const std::atomic<bool>*> abort_flag{nullptr};
    static bool should_abort(void* data) {
        const auto* f = static_cast<Impl*>(data)->abort_flag.load(std::memory_order_relaxed);
        return f && f->load(std::memory_order_relaxed);
    }

    // Threads per step: all, or half of them while the machine is so busy that fewer decode faster.
    ThreadTuner tuner{1};
    int threads_now = 0;  // What the contexts run with.
    void use_threads(int n) {
        if (n == threads_now) return;
        llama_set_n_threads(ctx, n, n);
        if (dctx) llama_set_n_threads(dctx, n, n);
        threads_now = n;
    }

    // The chat whose state is in the context (sequence 0), and what it holds.
    std::string active_key;
    bool active_on_disk = true;  // Its request allows writing its state to disk (save_state).
    std::vector<llama_token> active_tokens;
    std::vector<uint32_t> active_lens;  // Bytes of text each token stands for.
    std::string active_text;
    bool active_dirty = false;

    // Speculative decoding: the draft model and its context, whose sequence 0 follows the active
    // chat (draft_cached: the tokens it holds). draft_name and draft_detail are read under mu.
    llama_model* draft_model = nullptr;
    llama_context* dctx = nullptr;
    std::string draft_name, draft_detail;
    bool draft_paused = false;  // Loaded and fitting, but not worth using here (draft_detail says why).
    std::string draft_state_dir;
    std::vector<llama_token> draft_cached;
    int n_vocab_common = 0;  // Tokens both vocabularies have (the draft never guesses beyond).
    // How many guesses pay off (choose_guesses): measured decode times of the model by batch size
    // (0 = not yet measured), the draft's time per guess, and decayed counts of guesses kept and
    // of steps whose guesses ended in a wrong one (the chance a guess is kept: hits / (hits + misses)).
    static constexpr int kMaxBatch = 33;
    std::vector<double> batch_ms = std::vector<double>(kMaxBatch + 1, 0.0);
    double guess_ms = 0;      // A guess with its share of catching up with the chat.
    double one_guess_ms = 0;  // One guess alone (the draft's decode time for one token).
    bool never_pays = false;  // The draft guesses no faster than the model answers: stop trying.
    double hits = 4, misses = 1;
    int spec_skip = 0;     // Steps left without guessing while guessing does not pay,
    int spec_backoff = 0;  // and how long the next such pause lasts.

    // Recently used chats' states, in memory (most recent first).
    struct Hot {
        std::vector<llama_token> tokens;
        std::vector<uint8_t> state;
        std::vector<llama_token> draft_tokens;  // The draft context's, when speculative decoding is on.
        std::vector<uint8_t> draft_state;
    };
    std::list<std::string> lru;
    std::unordered_map<std::string, Hot> hot;
    size_t hot_bytes = 0;
    std::set<std::string> unsaved;  // Keys whose newest state is only in `hot` (save_unsaved).

    static constexpr llama_seq_id kParked = 1;     // See reuse_cache.
    static constexpr llama_seq_id kFirstSide = 2;  // Sequences of replies decoded beside the active chat.

    // What a reply hands out as it is generated: stop strings end it, text that may still become
    // one (or a split UTF-8 character) waits, and clients get valid UTF-8.
    struct Reply {
        const GenerateRequest& req;
        GenerateResult result;
        std::string pending;  // Generated text not yet handed out.
        size_t max_stop = 0;
        explicit Reply(const GenerateRequest& r) : req(r) {
            for (const auto& s : req.sampling.stop) max_stop = std::max(max_stop, s.size());
            result.finish = FinishReason::Length;
        }
        bool emit(std::string_view s) {
            // Random or confused models can produce bytes that are not UTF-8; clients get valid text.
            const std::string clean = sanitize_utf8(s);
            result.text += clean;
            return !req.on_text || req.on_text(clean);
        }
        // One generated token's text (`control`: a control token, not shown); false when the reply
        // ends with it.
        bool take(bool control, const std::string& p) {
            ++result.predicted_tokens;
            if (!control) pending += p;
            // A stop string ends the reply before it.
            bool stopped = false;
            for (const auto& s : req.sampling.stop) {
                if (const size_t at = pending.find(s); at != std::string::npos) {
                    pending.resize(at);
                    stopped = true;
                    result.stop_word = s;
                }
            }
            // Hand out what can no longer be part of a stop string or a split character.
            size_t safe = stopped ? pending.size() : complete_utf8_prefix(pending);
            if (!stopped && max_stop > 0) {
                size_t hold = 0;
                for (const auto& s : req.sampling.stop) {
                    for (size_t k = std::min(s.size() - 1, pending.size()); k > hold; --k) {
                        if (pending.compare(pending.size() - k, k, s, 0, k) == 0) {
                            hold = k;
                            break;
                        }
                    }
                }
                safe = std::min(safe, pending.size() - hold);
            }
            if (safe > 0) {
                const bool go_on = emit(std::string_view(pending).substr(0, safe));
                pending.erase(0, safe);
                if (!go_on) {
                    result.finish = FinishReason::Cancelled;
                    return false;
                }
            }
            if (stopped) {
                result.finish = FinishReason::Stop;
                return false;
            }
            return true;
        }
        // The reply has ended: what was held back goes out (not after a cancel).
        void flush() {
            if (!pending.empty() && result.finish != FinishReason::Cancelled) emit(pending);
            pending.clear();
        }
    };

    // A reply decoded beside the active chat's: a request for another chat that arrived while the
    // active one was generating (admit_sides). It has a sequence of its own (kFirstSide and up) in
    // the shared cache, and each step decodes its next token in the same batch as the others'.
    struct Side {
        Job* job = nullptr;
        std::string key;
        bool keep = true;  // Its state goes to the memory cache when it ends (false: the chat was deleted).
        llama_seq_id seq = 0;
        size_t reserve = 0;               // Cells it may come to hold: prompt and reply.
        std::vector<llama_token> tokens;  // What its sequence holds.
        llama_sampler* smpl = nullptr;
        std::unique_ptr<Reply> reply;
        llama_token next = 0;  // Sampled and handed out; decoded in the next step.
        int32_t out = -1;      // Its token's index in the step's batch.
        Clock::time_point t_gen;
        ~Side() {
            if (smpl) llama_sampler_free(smpl);
        }
    };
    std::vector<std::unique_ptr<Side>> sides;  // Only the inference thread uses it.
    size_t active_reserve = 0;  // Cells the active chat's running reply may come to hold (0: none running).
    bool stopping = false;      // `quit` as the inference thread last read it: replies beside it stop.
    std::vector<const Job*> too_big;  // Queued requests that found no room beside the others (until a reply ends).
    std::atomic<int> n_sides{0};      // sides.size(), for status() on other threads.

    // --- model ---

    void load() {
        runtime_info();
        const auto started = Clock::now();
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers = opt.gpu_layers < 0 ? 999 : opt.gpu_layers;
        const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        huge_pages::WeightPages pages(threads);
        const bool on_cpu = opt.gpu_layers == 0 || std::none_of(runtime_info().devices.begin(), runtime_info().devices.end(),
                                                                [](const auto& d) { return d.type == "gpu" || d.type == "igpu"; });
        const std::string thp = huge_pages::kernel_mode();
        if (opt.huge_pages && on_cpu && (thp == "madvise" || thp == "always")) {
            // Weights in memory of our own, in 2 MiB pages (llm/huge_pages.hpp): decode reads them
            // all each step, and a mapped file's 4 KiB pages cost it page-table walks.
            mp.load_mode = LLAMA_LOAD_MODE_NONE;
            // At the offsets the file gives them, where llama.cpp would not repack them.
            weights = std::make_unique<weight_memory::WeightMemory>(opt.model_path, threads);
            mp.tensor_buft_overrides = weights->overrides();
            mp.progress_callback = [](float, void* p) {
                static_cast<huge_pages::WeightPages*>(p)->on_progress();
                return true;
            };
            mp.progress_callback_user_data = &pages;
        }
        model = llama_model_load_from_file(opt.model_path.c_str(), mp);
        if (!model) weights.reset();
        if (!model) return set_state("error", "cannot load " + opt.model_path + ": not a readable GGUF model (see the log)");
        std::vector<huge_pages::Range> weight_ranges = pages.advised();
        if (weights) weight_ranges.insert(weight_ranges.end(), weights->buffers().begin(), weights->buffers().end());
        const size_t huge = huge_pages::huge_bytes(weight_ranges);
        const llama_vocab* loaded_vocab = llama_model_get_vocab(model);
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = static_cast<uint32_t>(opt.context_size);
        cp.n_batch = static_cast<uint32_t>(opt.batch_size);
        cp.n_ubatch = static_cast<uint32_t>(opt.batch_size);
        // Sequence 0 holds the active chat; sequence 1 parks a run of it while the cache is
        // rearranged (see reuse_cache); sequences 2 and up hold replies decoded beside it (Side).
        // One unified cache: copying between them is free, and they share its cells.
        // The last one is scratch space for writing a state kept in memory to disk (save_hot).
        cp.n_seq_max = static_cast<uint32_t>(kFirstSide + opt.parallel);
        cp.kv_unified = true;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        cp.no_perf = true;
        const ggml_type kv = opt.kv_type == "q8_0" ? GGML_TYPE_Q8_0 : opt.kv_type == "q4_0" ? GGML_TYPE_Q4_0 : GGML_TYPE_F16;
        cp.type_k = kv;
        cp.type_v = kv;
        if (kv != GGML_TYPE_F16) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;  // A quantized V cache needs it.
        ctx = llama_init_from_model(model, cp);
        if (!ctx && kv != GGML_TYPE_F16) {
            return set_state("error", "cannot create a context with a " + opt.kv_type + " KV cache for " + opt.model_path +
                                          " (this backend or model cannot quantize its cache: set llm.kv_cache_type to f16)");
        }
        if (!ctx) return set_state("error", "cannot create a context of " + std::to_string(opt.context_size) +
                                                " tokens for " + opt.model_path + " (out of memory?)");
        llama_set_abort_callback(ctx, should_abort, this);
        tuner = ThreadTuner(threads);
        threads_now = threads;
        std::string model_tmpl = template_of(model, opt.fallback_template);
        char desc_buf[256] = {};
        llama_model_desc(model, desc_buf, sizeof desc_buf);
        // llama.cpp writes "?B" for sizes it has no name for (small or unusual models): the count instead.
        std::string desc = desc_buf;
        if (const size_t q = desc.find("?B"); q != std::string::npos) {
            const double n = static_cast<double>(llama_model_n_params(model));
            char count[32];
            if (n >= 1e9) std::snprintf(count, sizeof count, "%.1fB", n / 1e9);
            else if (n >= 1e6) std::snprintf(count, sizeof count, "%.1fM", n / 1e6);
            else std::snprintf(count, sizeof count, "%.0fK", n / 1e3);
            desc.replace(q, 2, count);
        }
        const std::string name = std::filesystem::path(opt.model_path).filename().string();
        std::string states;
        if (!opt.cache_dir.empty()) {
            // States only fit the model and context they were made with.
            std::error_code ec;
            const auto size = std::filesystem::file_size(opt.model_path, ec);
            states = opt.cache_dir + "/" + safe_file_name(name) + "-" + std::to_string(size) + "-" +
                     std::to_string(opt.context_size) + (opt.kv_type == "f16" ? "" : "-" + opt.kv_type);
            std::filesystem::create_directories(states, ec);
            // Folders of other models or context sizes shrink under the budget and go when empty.
            kv_files::enforce_budget(opt.cache_dir, opt.disk_cache_bytes, states + "/");
        }
        {
            // Readers on other threads (count_tokens, format_prompt) see these under mu.
            std::lock_guard lock(mu);
            vocab = loaded_vocab;
            tmpl = std::move(model_tmpl);
            model_name = name;
            state_dir = states;
            weights_huge_bytes = on_cpu ? static_cast<int64_t>(huge) : -1;
            huge_pages_kernel = thp;
        }
        log::info("model loaded: ", model_name, " (", desc, "), context ", opt.context_size, " (", opt.kv_type, " KV cache), ", threads,
                  " threads, in ", static_cast<int>(ms_since(started)), " ms; weights in 2 MiB pages: ", huge >> 20, " MiB");
        load_draft(mp, cp, states);
        set_state("ready", "model " + model_name + " (" + desc + ") loaded");
    }

    // Why the draft model's tokens cannot stand for the model's ("" when they can): llama.cpp's
    // rules for a draft (same tokenizer type, BOS and EOS, at most 128 tokens more or fewer, the
    // same text for every token both have from id 5 on).
    static std::string vocab_mismatch(const llama_vocab* t, const llama_vocab* d) {
        if (llama_vocab_type(t) != llama_vocab_type(d)) return "its tokenizer is of another type";
        if (llama_vocab_get_add_bos(t) != llama_vocab_get_add_bos(d) ||
            (llama_vocab_get_add_bos(t) && llama_vocab_bos(t) != llama_vocab_bos(d))) {
            return "its begin-of-text token differs";
        }
        if (llama_vocab_get_add_eos(t) != llama_vocab_get_add_eos(d) ||
            (llama_vocab_get_add_eos(t) && llama_vocab_eos(t) != llama_vocab_eos(d))) {
            return "its end-of-text token differs";
        }
        const int nt = llama_vocab_n_tokens(t), nd = llama_vocab_n_tokens(d);
        if (std::abs(nt - nd) > 128) {
            return "its vocabulary has " + std::to_string(nd) + " tokens, the model's " + std::to_string(nt);
        }
        for (int i = 5; i < std::min(nt, nd); ++i) {
            if (std::strcmp(llama_vocab_get_text(t, i), llama_vocab_get_text(d, i)) != 0) {
                return "token " + std::to_string(i) + " is '" + sanitize_utf8(llama_vocab_get_text(d, i)) + "' there and '" +
                       sanitize_utf8(llama_vocab_get_text(t, i)) + "' in the model";
            }
        }
        return "";
    }

    void load_draft(const llama_model_params& mp, const llama_context_params& cp, const std::string& states) {
        if (opt.draft_model_path.empty()) return;
        const std::string name = std::filesystem::path(opt.draft_model_path).filename().string();
        auto refuse = [&](const std::string& why) {
            log::error("speculative decoding is off: ", why);
            std::lock_guard lock(mu);
            draft_name = name;
            draft_detail = why;
        };
        llama_model_params draft_mp = mp;
        huge_pages::WeightPages pages(cp.n_threads);  // As the model's (load), when its load asks for them.
        if (draft_mp.progress_callback_user_data) {
            draft_mp.progress_callback_user_data = &pages;
            draft_weights = std::make_unique<weight_memory::WeightMemory>(opt.draft_model_path, cp.n_threads);
            draft_mp.tensor_buft_overrides = draft_weights->overrides();
        }
        draft_model = llama_model_load_from_file(opt.draft_model_path.c_str(), draft_mp);
        if (!draft_model) draft_weights.reset();
        if (!draft_model) return refuse("cannot load the draft model " + opt.draft_model_path + ": not a readable GGUF model (see the log)");
        if (const std::string why = vocab_mismatch(vocab, llama_model_get_vocab(draft_model)); !why.empty()) {
            llama_model_free(draft_model);
            draft_model = nullptr;
            draft_weights.reset();
            return refuse("the draft model " + name + " does not fit " + model_name + ": " + why + " (llm.draft_model_path)");
        }
        dctx = llama_init_from_model(draft_model, cp);  // Same context size, threads and cache type.
        if (!dctx) {
            llama_model_free(draft_model);
            draft_model = nullptr;
            draft_weights.reset();
            return refuse("cannot create a context of " + std::to_string(opt.context_size) + " tokens for the draft model " + name +
                          " (out of memory?)");
        }
        llama_set_abort_callback(dctx, should_abort, this);
        n_vocab_common = std::min(llama_vocab_n_tokens(vocab), llama_vocab_n_tokens(llama_model_get_vocab(draft_model)));
        if (!states.empty()) {
            std::error_code ec;
            const auto size = std::filesystem::file_size(opt.draft_model_path, ec);
            draft_state_dir = states + "-draft-" + safe_file_name(name) + "-" + std::to_string(size);
            std::filesystem::create_directories(draft_state_dir, ec);
        }
        log::info("speculative decoding: ", name, " guesses up to ", opt.draft_max, " tokens (draft_min ", opt.draft_min,
                  ", draft_p_min ", opt.draft_p_min, ")");
        std::lock_guard lock(mu);
        draft_name = name;
        draft_detail.clear();
    }

    void set_state(const std::string& s, const std::string& d) {
        std::lock_guard lock(mu);
        state = s;
        detail = d;
        loaded = true;
        if (s == "error") log::error(d);
        cv.notify_all();
    }

    std::vector<llama_token> tokenize(std::string_view text, bool add_special) const {
        return tokenize_with(vocab, text, add_special);
    }

    std::string piece(llama_token t) const {
        char buf[256];
        int n = llama_token_to_piece(vocab, t, buf, sizeof buf, 0, true);
        if (n < 0) {
            std::string big(static_cast<size_t>(-n), '\0');
            llama_token_to_piece(vocab, t, big.data(), -n, 0, true);
            return big;
        }
        return std::string(buf, static_cast<size_t>(n));
    }

    // The text each token stands for; a BOS token added by the tokenizer stands for nothing.
    std::vector<uint32_t> lens_of(const std::vector<llama_token>& tokens, size_t from, bool leading_bos_is_empty) const {
        std::vector<uint32_t> lens;
        for (size_t i = from; i < tokens.size(); ++i) {
            if (i == 0 && leading_bos_is_empty && tokens[0] == llama_vocab_bos(vocab)) lens.push_back(0);
            else lens.push_back(static_cast<uint32_t>(piece(tokens[i]).size()));
        }
        return lens;
    }

    // --- cache of chats' states ---

    std::string state_path(const std::string& key) const {
        return state_dir.empty() ? "" : state_dir + "/" + safe_file_name(key) + ".state";
    }

    std::string draft_state_path(const std::string& key) const {
        return draft_state_dir.empty() ? "" : draft_state_dir + "/" + safe_file_name(key) + ".state";
    }

    void clear_active() {
        // Sequences 0 and 1 only: replies decoded beside it keep theirs.
        llama_memory_seq_rm(llama_get_memory(ctx), 0, -1, -1);
        llama_memory_seq_rm(llama_get_memory(ctx), kParked, -1, -1);
        active_tokens.clear();
        active_lens.clear();
        active_text.clear();
        clear_draft();
    }

    void clear_draft() {
        if (dctx) llama_memory_clear(llama_get_memory(dctx), true);
        draft_cached.clear();
    }

    // Sequence `seq` of `c` holding `tokens`, to `path` (atomically: a crash leaves the old file).
    static bool save_seq(llama_context* c, const std::string& path, const std::vector<llama_token>& tokens, llama_seq_id seq = 0) {
        const std::string tmp = path + ".tmp";
        if (llama_state_seq_save_file(c, tmp.c_str(), seq, tokens.data(), tokens.size()) == 0) return false;
        std::error_code ec;
        std::filesystem::rename(tmp, path, ec);
        return !ec;
    }

    // The tokens of a saved sequence now in sequence `seq` of `c`; nullopt (and the file gone) when
    // it does not load (cut off by a crash, another build). A reply decoded beside the active chat
    // loads only states of at most `room` tokens and keeps a file it could not load.
    std::optional<std::vector<llama_token>> load_seq(llama_context* c, const std::string& path, llama_seq_id seq = 0,
                                                     size_t room = 0) const {
        std::vector<llama_token> tokens(room > 0 ? room : static_cast<size_t>(opt.context_size));
        size_t n = 0;
        if (llama_state_seq_load_file(c, path.c_str(), seq, tokens.data(), tokens.size(), &n) > 0) {
            tokens.resize(n);
            kv_files::touch(path);  // Recently used: the budget keeps it longest.
            return tokens;
        }
        std::error_code ec;
        if (room == 0) std::filesystem::remove(path, ec);
        llama_memory_seq_rm(llama_get_memory(c), seq, -1, -1);
        return std::nullopt;
    }

    // The text cached tokens stand for, and each one's share of it.
    void text_of(const std::vector<llama_token>& tokens, std::vector<uint32_t>& lens, std::string& text) const {
        lens = lens_of(tokens, 0, true);
        text.clear();
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (lens[i]) text += piece(tokens[i]);
        }
    }

    void rebuild_text() { text_of(active_tokens, active_lens, active_text); }

    void save_active_to_disk() {
        if (!active_dirty || active_key.empty() || state_dir.empty() || active_tokens.empty() || !active_on_disk) return;
        if (opt.disk_cache_bytes == 0) return;
        const auto started = Clock::now();
        const std::string path = state_path(active_key);
        if (!save_seq(ctx, path, active_tokens)) {
            log::warn("could not save the KV state of chat ", active_key);
            return;
        }
        if (dctx && !draft_state_dir.empty() && !draft_cached.empty() && !save_seq(dctx, draft_state_path(active_key), draft_cached)) {
            log::warn("could not save the draft model's KV state of chat ", active_key);
        }
        active_dirty = false;
        const auto trimmed = kv_files::enforce_budget(opt.cache_dir, opt.disk_cache_bytes, path);
        if (trimmed.removed_files > 0) {
            log::info("KV state cache: removed ", trimmed.removed_files, " least recently used file(s), ",
                      trimmed.kept_bytes >> 20, " MB kept (llm.kv_cache_disk_mb)");
        }
        log::debug("saved KV state of chat ", active_key, " (", active_tokens.size(), " tokens) in ",
                   static_cast<int>(ms_since(started)), " ms");
    }

    void stash_active() {
        if (active_key.empty()) return;
        save_active_to_disk();
        if (active_tokens.empty()) return;
        Hot h = hot_of(0, active_tokens);
        if (dctx && !draft_cached.empty()) {
            h.draft_tokens = draft_cached;
            h.draft_state.resize(llama_state_seq_get_size(dctx, 0));
            h.draft_state.resize(llama_state_seq_get_data(dctx, h.draft_state.data(), h.draft_state.size(), 0));
        }
        put_hot(active_key, std::move(h));
    }

    // Sequence `seq` of the context, holding `tokens`, as a state kept in memory.
    Hot hot_of(llama_seq_id seq, const std::vector<llama_token>& tokens) const {
        Hot h;
        h.tokens = tokens;
        h.state.resize(llama_state_seq_get_size(ctx, seq));
        h.state.resize(llama_state_seq_get_data(ctx, h.state.data(), h.state.size(), seq));
        return h;
    }

    void put_hot(const std::string& key, Hot h) {
        hot_bytes += h.state.size() + h.draft_state.size();
        lru.remove(key);
        lru.push_front(key);
        if (auto it = hot.find(key); it != hot.end()) hot_bytes -= it->second.state.size() + it->second.draft_state.size();
        hot[key] = std::move(h);
        while (hot_bytes > opt.hot_cache_bytes && !lru.empty()) {
            const std::string victim = lru.back();
            lru.pop_back();
            // Only here (a chat decoded beside the active one): to disk before it goes.
            if (unsaved.erase(victim) > 0 && !save_hot(victim, hot[victim])) {
                log::warn("KV state of chat ", victim, " left the memory cache unsaved (no room to write it now)");
            }
            hot_bytes -= hot[victim].state.size() + hot[victim].draft_state.size();
            hot.erase(victim);
        }
    }

    // States of replies decoded beside the active chat are kept in memory when they end and
    // written to disk once the engine is idle (writing them at once would stall the others).
    void save_unsaved() {
        for (auto key = unsaved.begin(); key != unsaved.end();) {
            const auto it = hot.find(*key);
            if (it == hot.end() || save_hot(*key, it->second)) key = unsaved.erase(key);
            else ++key;  // No room now: later.
        }
    }

    // A state kept in memory, to its file, through the scratch sequence; false when the cells the
    // other sequences leave cannot hold it now.
    bool save_hot(const std::string& key, const Hot& h) {
        if (state_dir.empty() || opt.disk_cache_bytes == 0) return true;
        const size_t cells = static_cast<size_t>(opt.context_size);
        const size_t used = std::max(active_reserve, active_tokens.size()) + reserved() - active_reserve;
        if (used + h.tokens.size() > cells) return false;
        const llama_seq_id scratch = kFirstSide + opt.parallel - 1;
        const std::string path = state_path(key);
        bool ok = llama_state_seq_set_data(ctx, h.state.data(), h.state.size(), scratch) > 0 && save_seq(ctx, path, h.tokens, scratch);
        llama_memory_seq_rm(llama_get_memory(ctx), scratch, -1, -1);
        if (ok) kv_files::enforce_budget(opt.cache_dir, opt.disk_cache_bytes, path);
        else log::warn("could not save the KV state of chat ", key);
        return true;
    }

    void switch_to(const std::string& key) {
        if (key == active_key && !key.empty()) return;
        stash_active();
        clear_active();
        active_key = key;
        active_dirty = false;
        if (key.empty()) return;
        if (auto it = hot.find(key); it != hot.end()) {
            if (llama_state_seq_set_data(ctx, it->second.state.data(), it->second.state.size(), 0) > 0) {
                active_tokens = it->second.tokens;
                rebuild_text();
                // Decoded beside another chat and not yet on disk: it is saved as the active chat.
                active_dirty = unsaved.erase(key) > 0;
                if (dctx && !it->second.draft_state.empty() &&
                    llama_state_seq_set_data(dctx, it->second.draft_state.data(), it->second.draft_state.size(), 0) > 0) {
                    draft_cached = it->second.draft_tokens;
                } else {
                    clear_draft();
                }
                return;
            }
            clear_active();
        }
        const std::string path = state_path(key);
        if (path.empty() || !std::filesystem::exists(path)) return;
        const auto started = Clock::now();
        // Beside replies of other chats, only what fits in the cells they leave (a state too long
        // for them now is kept on disk, not dropped as unreadable).
        const size_t room = sides.empty() ? 0 : std::max<size_t>(1, static_cast<size_t>(opt.context_size) - std::min(reserved(), static_cast<size_t>(opt.context_size)));
        if (auto tokens = load_seq(ctx, path, 0, room)) {
            active_tokens = std::move(*tokens);
            rebuild_text();
            log::debug("restored KV state of chat ", key, " (", active_tokens.size(), " tokens) in ", static_cast<int>(ms_since(started)), " ms");
            // The draft's cache comes back with it; without it, the draft rereads the chat when it next guesses.
            const std::string dpath = draft_state_path(key);
            if (dctx && !dpath.empty() && std::filesystem::exists(dpath)) {
                if (auto d = load_seq(dctx, dpath)) draft_cached = std::move(*d);
                else log::warn("the draft model's KV state of chat ", key, " could not be read; the draft rereads the chat");
            }
        } else {
            // A state that does not load is dropped, not retried.
            log::warn("KV state of chat ", key, " could not be read; it is rebuilt from the chat");
            clear_active();
        }
    }

    void forget(const std::string& key) {
        if (key == active_key) {
            clear_active();
            active_key.clear();
        }
        if (auto it = hot.find(key); it != hot.end()) {
            hot_bytes -= it->second.state.size() + it->second.draft_state.size();
            hot.erase(it);
            lru.remove(key);
        }
        unsaved.erase(key);
        for (auto& side : sides) {
            if (side->key == key) side->keep = false;  // Still decoding: its state is dropped when it ends.
        }
        std::error_code ec;
        if (!state_dir.empty()) std::filesystem::remove(state_path(key), ec);
        if (!draft_state_dir.empty()) std::filesystem::remove(draft_state_path(key), ec);
    }

    // --- one request ---

    llama_sampler* make_sampler(const Sampling& s) const {
        llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        const int n_vocab = llama_vocab_n_tokens(vocab);
        if (s.repeat_penalty != 1.0 || s.frequency_penalty != 0.0 || s.presence_penalty != 0.0) {
            llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, s.repeat_last_n == -1 ? opt.context_size : s.repeat_last_n,
                                                                        static_cast<float>(s.repeat_penalty),
                                                                        static_cast<float>(s.frequency_penalty),
                                                                        static_cast<float>(s.presence_penalty)));
        }
        if (s.dry_multiplier > 0) {
            static const char* breakers[] = {"\n", ":", "\"", "*"};
            llama_sampler_chain_add(chain, llama_sampler_init_dry(vocab, static_cast<float>(s.dry_multiplier),
                                                                  static_cast<float>(s.dry_base), s.dry_allowed_length,
                                                                  s.dry_last_n == -1 ? opt.context_size : s.dry_last_n,
                                                                  breakers, 4));
        }
        if (s.temperature <= 0) {
            llama_sampler_chain_add(chain, llama_sampler_init_greedy());
            return chain;
        }
        if (s.top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(s.top_k));
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(static_cast<float>(s.top_p), 1));
        llama_sampler_chain_add(chain, llama_sampler_init_min_p(static_cast<float>(s.min_p), 1));
        llama_sampler_chain_add(chain, llama_sampler_init_temp(static_cast<float>(s.temperature)));
        const uint32_t seed = s.seed < 0 ? LLAMA_DEFAULT_SEED : static_cast<uint32_t>(s.seed);
        llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
        return chain;
    }

    // What of the context a prompt can keep: tokens [0, n_past) as they are, and one chunk of the
    // cache moved to prompt positions [gap_end, chunk_end). Tokens [n_past, gap_end) and
    // [chunk_end, end) must be evaluated.
    struct ReusePlan {
        size_t n_past = 0;
        size_t gap_end = 0;
        size_t chunk_end = 0;
    };

    // Reuses what the context holds for this prompt: the longest common prefix, then the longest
    // run of cached tokens that reappears later in the prompt (older turns dropped, a summary or
    // memory note changed before the history, a message edited). That run is moved to its new
    // positions (llama_memory_seq_add shifts RoPE positions); what lies before it in the prompt is
    // evaluated into the gap at its own positions (the causal mask goes by position, so those
    // tokens see only what precedes them). The moved run keeps the values computed with its old
    // preceding text, the same approximation llama.cpp's context shift makes.
    static constexpr int kBackgroundBatch = 128;

    // `c` is the model's context (cached: active_tokens) or the draft's (draft_cached); `seq` is
    // 0, or a reply's decoded beside the active chat (Side), which keeps only the common prefix.
    static ReusePlan reuse_cache(llama_context* c, const std::vector<llama_token>& active_tokens, const std::vector<llama_token>& tokens,
                                 llama_seq_id seq = 0) {
        llama_memory_t mem = llama_get_memory(c);
        ReusePlan plan;
        size_t& n_past = plan.n_past;
        while (n_past < active_tokens.size() && n_past < tokens.size() && active_tokens[n_past] == tokens[n_past]) ++n_past;
        constexpr size_t kMinChunk = 16;
        size_t best_len = 0, best_c = 0, best_q = 0;
        if (seq == 0 && n_past + kMinChunk <= active_tokens.size() && n_past + kMinChunk <= tokens.size() &&
            llama_memory_can_shift(mem)) {
            auto hash = [](const llama_token* t) {
                uint64_t h = 1469598103934665603ull;
                for (size_t k = 0; k < kMinChunk; ++k) h = (h ^ static_cast<uint32_t>(t[k])) * 1099511628211ull;
                return h;
            };
            std::unordered_map<uint64_t, std::vector<size_t>> where;
            for (size_t c = n_past; c + kMinChunk <= active_tokens.size(); ++c) {
                auto& list = where[hash(&active_tokens[c])];
                if (list.size() < 8) list.push_back(c);  // Repetitive text: a few candidates suffice.
            }
            for (size_t q = n_past; q + kMinChunk <= tokens.size(); ++q) {
                auto it = where.find(hash(&tokens[q]));
                if (it == where.end()) continue;
                size_t longest_here = 0;
                for (size_t c : it->second) {
                    size_t len = 0;
                    while (c + len < active_tokens.size() && q + len < tokens.size() && active_tokens[c + len] == tokens[q + len]) ++len;
                    longest_here = std::max(longest_here, len);
                    if (len > best_len) {
                        best_len = len;
                        best_c = c;
                        best_q = q;
                    }
                }
                // The suffixes of a match are shorter matches: skip them.
                if (longest_here > 1) q += longest_here - 1;
            }
        }
        if (best_len >= kMinChunk) {
            // The last prompt token must be evaluated for logits: never let the chunk end the prompt.
            if (best_q + best_len == tokens.size()) --best_len;
            const auto P = [](size_t v) { return static_cast<llama_pos>(v); };
            bool ok = llama_memory_seq_rm(mem, 0, P(n_past), P(best_c)) &&
                      llama_memory_seq_rm(mem, 0, P(best_c + best_len), -1);
            if (ok) {
                // llama.cpp only accepts a batch that continues a sequence, so the run waits in
                // sequence 1 (already at its new positions) while the gap is evaluated.
                llama_memory_seq_cp(mem, 0, kParked, P(best_c), P(best_c + best_len));
                llama_memory_seq_rm(mem, 0, P(best_c), P(best_c + best_len));
                llama_memory_seq_add(mem, kParked, P(best_c), P(best_c + best_len), P(best_q) - P(best_c));
                plan.gap_end = best_q;
                plan.chunk_end = best_q + best_len;
                return plan;
            }
        }
        if (n_past == tokens.size() && n_past > 0) --n_past;  // The last token must be evaluated for logits.
        if (!llama_memory_seq_rm(mem, seq, static_cast<llama_pos>(n_past), -1)) {
            llama_memory_seq_rm(mem, seq, -1, -1);
            if (seq == 0) llama_memory_seq_rm(mem, kParked, -1, -1);
            n_past = 0;
        }
        plan.gap_end = plan.chunk_end = n_past;
        return plan;
    }

    // Evaluates what `plan` left of `tokens` into `c`; logits only for the last token. On failure
    // or cancel, `valid` is how many of the first tokens the cache still holds as they are.
    bool evaluate(llama_context* c, const std::vector<llama_token>& tokens, const ReusePlan& plan, const GenerateRequest& req,
                  size_t& valid, llama_seq_id seq = 0) {
        llama_memory_t mem = llama_get_memory(c);
        size_t done = plan.n_past;
        if (!decode_range(c, tokens, plan.n_past, plan.gap_end, req, done, seq)) {
            llama_memory_seq_rm(mem, kParked, -1, -1);  // The parked run cannot rejoin a gap not filled.
            valid = done;
            return false;
        }
        if (plan.chunk_end > plan.gap_end) {
            // The moved run rejoins the chat's sequence right after the gap.
            llama_memory_seq_cp(mem, kParked, 0, -1, -1);
            llama_memory_seq_rm(mem, kParked, -1, -1);
        }
        done = plan.chunk_end;
        const bool ok = decode_range(c, tokens, plan.chunk_end, tokens.size(), req, done, seq);
        valid = done;
        return ok;
    }

    // Evaluates tokens [from, to) at their own positions; logits only for the prompt's last token.
    // `done`: where evaluation got to (a batch that fails or is cancelled leaves nothing in the cache).
    bool decode_range(llama_context* c, const std::vector<llama_token>& tokens, size_t from, size_t to, const GenerateRequest& req,
                      size_t& done, llama_seq_id seq) {
        // Background work reads in smaller batches: a cancel stops llama.cpp between two nodes of
        // its graph, and a node of a 512-token batch can take a large share of a second on a CPU.
        const size_t step = static_cast<size_t>(req.priority == Priority::Background ? std::min(opt.batch_size, kBackgroundBatch)
                                                                                      : opt.batch_size);
        llama_batch batch = llama_batch_init(static_cast<int32_t>(step), 0, 1);
        bool ok = true;
        for (size_t i = from; ok && i < to; i += step) {
            if (req.cancel && req.cancel->load()) {
                ok = false;
                break;
            }
            const size_t n = std::min(step, to - i);
            batch.n_tokens = static_cast<int32_t>(n);
            for (size_t k = 0; k < n; ++k) {
                batch.token[k] = tokens[i + k];
                batch.pos[k] = static_cast<llama_pos>(i + k);
                batch.n_seq_id[k] = 1;
                batch.seq_id[k][0] = seq;
                batch.logits[k] = (i + k + 1 == tokens.size());
            }
            const int rc = llama_decode(c, batch);
            // 2: stopped by the abort callback (a cancel), which llama.cpp undoes for this batch.
            if (rc != 0 && rc != 2) log::warn("llama_decode returned ", rc, " for prompt tokens [", i, ", ", i + n, ") of ", tokens.size());
            ok = rc == 0;
            if (ok) done = i + n;
            if (ok && c == ctx && req.on_prompt_progress) req.on_prompt_progress(done, tokens.size());
        }
        llama_batch_free(batch);
        return ok;
    }

    // Appends a token the context now holds to the active chat's lists.
    void commit(llama_token t, const std::string& text) {
        active_tokens.push_back(t);
        active_lens.push_back(static_cast<uint32_t>(text.size()));
        active_text += text;
        active_dirty = true;
    }

    // Up to `n` guesses of the draft model for what follows the chat and `tok`: its most likely
    // token each time, while that token's probability is at least draft_p_min. Empty when there is
    // no draft model, while backing off after wrong guesses, or with fewer than draft_min guesses.
    std::vector<llama_token> make_draft(llama_token tok, int n, const GenerateRequest& req, GenerateResult& result) {
        const auto started = Clock::now();
        std::vector<llama_token> out;
        if (!dctx || n <= 0) return out;
        std::vector<llama_token> want = active_tokens;
        want.push_back(tok);
        const ReusePlan plan = reuse_cache(dctx, draft_cached, want);
        result.draft_evaluated += static_cast<int>(want.size() - plan.n_past - (plan.chunk_end - plan.gap_end));
        draft_cached.clear();
        size_t valid = 0;
        if (!evaluate(dctx, want, plan, req, valid)) {
            clear_draft();
            return out;
        }
        draft_cached = std::move(want);
        const auto guessing = Clock::now();
        int decoded = 0;
        for (int k = 0; k < n; ++k) {
            const float* logits = llama_get_logits_ith(dctx, -1);
            int best = 0;
            for (int i = 1; i < n_vocab_common; ++i) {
                if (logits[i] > logits[best]) best = i;
            }
            double sum = 0;
            for (int i = 0; i < n_vocab_common; ++i) sum += std::exp(static_cast<double>(logits[i] - logits[best]));
            if (1.0 / sum < opt.draft_p_min) break;
            out.push_back(best);
            if (llama_vocab_is_eog(vocab, best) || k + 1 == n) break;
            if (llama_decode(dctx, llama_batch_get_one(&out.back(), 1)) != 0) {
                clear_draft();
                break;
            }
            draft_cached.push_back(best);
            ++result.draft_evaluated;
            ++decoded;
        }
        if (decoded > 0) {
            const double one = ms_since(guessing) / decoded;
            one_guess_ms = one_guess_ms == 0 ? one : 0.8 * one_guess_ms + 0.2 * one;
        }
        // Catching up with the chat counts as part of guessing: it is what guessing costs.
        const double per_guess = ms_since(started) / std::max<double>(1, static_cast<double>(out.size()));
        guess_ms = guess_ms == 0 ? per_guess : 0.8 * guess_ms + 0.2 * per_guess;
        if (static_cast<int>(out.size()) < opt.draft_min) out.clear();
        return out;
    }

    // How many guesses to ask for, at most `limit` (llm/draft_length: the most tokens per
    // millisecond by the measured costs and the chance a guess is kept; 0 when plain decoding is
    // faster). Where checking a batch costs nearly what one token costs (GPUs, many cores) that is
    // many; on a CPU whose batches cost almost per token, only drafts that are nearly always right
    // pay. While guessing does not pay, a probe every 16, 32 ... 256 steps keeps the chance
    // current. Without adapting: always opt.draft_max.
    int choose_guesses(int limit) {
        if (!dctx || limit <= 0) return 0;
        if (!opt.draft_adaptive) return limit;
        if (batch_ms[1] == 0 || never_pays) return 0;  // First, what one token costs.
        if (one_guess_ms > 0 && best_draft_length(batch_ms, one_guess_ms, 1.0, limit, opt.draft_min) == 0) {
            // Even if every guess were right, checking them would cost more than it saves: a draft
            // this slow next to this model never pays on this machine. Stop (until the next load).
            never_pays = true;
            const std::string why = "paused: a guess takes " + std::to_string(static_cast<int>(one_guess_ms + 0.5)) +
                                    " ms and the model answers a token in " + std::to_string(static_cast<int>(batch_ms[1] + 0.5)) +
                                    " ms; even always-right guesses would not pay here (a smaller draft model would)";
            log::warn("speculative decoding ", why);
            std::lock_guard lock(mu);
            draft_detail = why;
            draft_paused = true;
            return 0;
        }
        if (spec_skip > 0) {
            --spec_skip;
            return spec_skip == 0 ? std::min(limit, std::max(1, opt.draft_min)) : 0;
        }
        const int best = best_draft_length(batch_ms, guess_ms, hits / (hits + misses), limit, opt.draft_min);
        if (best == 0) {
            spec_backoff = std::min(256, std::max(16, spec_backoff * 2));
            spec_skip = spec_backoff;
        } else {
            spec_backoff = 0;
        }
        return best;
    }

    // How much of the cache the new prompt text repeats: the number of cached tokens to keep and
    // the offset in `text` where their text ends. Differences the template or the chat layer
    // introduce into a stored reply are tolerated: whitespace trimmed at either side, and invalid
    // UTF-8 bytes the client received as U+FFFD.
    std::pair<size_t, size_t> align_with_cache(const std::string& text, const std::vector<uint32_t>& cached_lens,
                                               const std::string& cached) const {
        size_t i = 0, j = 0, tok = 0, cum = 0;
        size_t best_k = 0, best_i = 0;
        auto record = [&] {
            while (tok < cached_lens.size() && cum + cached_lens[tok] <= j) {
                cum += cached_lens[tok];
                ++tok;
                if (cum == j) {
                    best_k = tok;
                    best_i = i;
                }
            }
        };
        record();
        while (j < cached.size()) {
            const auto cj = static_cast<unsigned char>(cached[j]);
            if (i < text.size() && text[i] == cached[j]) {
                ++i;
                ++j;
            } else if (std::isspace(cj)) {
                ++j;
            } else if (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) {
                ++i;
                continue;
            } else if (cj >= 0x80 && text.compare(i, 3, "\xEF\xBF\xBD") == 0 && sanitize_utf8(cached.substr(j, 4)).starts_with("\xEF\xBF\xBD")) {
                i += 3;
                ++j;
            } else {
                break;
            }
            record();
        }
        return {best_k, best_i};
    }

    // Cached tokens [from, to) whose text is the prompt's text [text_from, text_to).
    struct CachedRun {
        size_t from = 0, to = 0, text_from = 0, text_to = 0;
    };

    // The longest run of whole cached tokens (from `keep` on, at least kMinRun of them) whose text
    // reappears in `text` after `text_pos`. Windows of 32 bytes of the prompt are looked up by hash
    // at each cached token's start, so the search is linear in both lengths.
    std::optional<CachedRun> find_moved_run(const std::string& text, size_t text_pos, size_t keep, const std::vector<uint32_t>& cached_lens,
                                            const std::string& cached_text) const {
        constexpr size_t kWindow = 32, kMinRun = 16;
        if (keep + kMinRun > cached_lens.size() || text.size() < text_pos + kWindow) return std::nullopt;
        std::vector<size_t> off(cached_lens.size() + 1, 0);
        for (size_t k = 0; k < cached_lens.size(); ++k) off[k + 1] = off[k] + cached_lens[k];
        const std::string_view t(text), c(cached_text);
        std::unordered_map<size_t, std::vector<size_t>> where;
        const std::hash<std::string_view> hash;
        for (size_t q = text_pos; q + kWindow <= t.size(); ++q) {
            auto& list = where[hash(t.substr(q, kWindow))];
            if (list.size() < 8) list.push_back(q);  // Repetitive text: a few candidates suffice.
        }
        CachedRun best;
        for (size_t k = keep; k < cached_lens.size();) {
            if (cached_lens[k] == 0 || off[k] + kWindow > c.size()) {
                ++k;
                continue;
            }
            size_t longest = 0;
            if (auto it = where.find(hash(c.substr(off[k], kWindow))); it != where.end()) {
                for (size_t q : it->second) {
                    size_t j = k, p = q;
                    while (j < cached_lens.size() && t.compare(p, cached_lens[j], c.substr(off[j], cached_lens[j])) == 0) p += cached_lens[j++];
                    if (j - k > longest) longest = j - k;
                    if (j - k > best.to - best.from) best = {k, j, q, p};
                }
            }
            k += std::max<size_t>(1, longest);  // The suffixes of a run are shorter runs.
        }
        if (best.to - best.from < kMinRun) return std::nullopt;
        return best;
    }


    // A prompt's tokens beside what the cache holds (`cached_*`: its tokens, each one's text, the
    // text): the cached tokens whose text the prompt repeats stay as they are (re-tokenizing a reply
    // can split it differently), and only the rest is tokenized.
    struct PromptTokens {
        std::vector<llama_token> tokens;
        std::vector<uint32_t> lens;
        std::string text;
    };
    PromptTokens tokens_for(const std::string& text, const std::vector<llama_token>& cached_tokens, const std::vector<uint32_t>& cached_lens,
                            const std::string& cached_text) const {
        const auto [keep, text_pos0] = align_with_cache(text, cached_lens, cached_text);
        PromptTokens out;
        std::vector<llama_token>& tokens = out.tokens;
        tokens.assign(cached_tokens.begin(), cached_tokens.begin() + static_cast<std::ptrdiff_t>(keep));
        std::vector<uint32_t>& lens = out.lens;
        lens.assign(cached_lens.begin(), cached_lens.begin() + static_cast<std::ptrdiff_t>(keep));
        size_t kept_bytes = 0;
        for (auto l : lens) kept_bytes += l;
        std::string& token_text = out.text;
        token_text = cached_text.substr(0, kept_bytes);
        auto append_tokenized = [&](size_t from, size_t to, bool add_special) {
            auto rest = tokenize(std::string_view(text).substr(from, to - from), add_special);
            auto rest_lens = lens_of(rest, 0, add_special);
            for (size_t k = 0; k < rest.size(); ++k) {
                if (rest_lens[k]) token_text += piece(rest[k]);
            }
            tokens.insert(tokens.end(), rest.begin(), rest.end());
            lens.insert(lens.end(), rest_lens.begin(), rest_lens.end());
        };
        // Past the common prefix, the longest run of cached text the prompt repeats (the history after
        // dropped turns or a changed note) keeps its cached tokens too, so reuse_cache moves it whole:
        // re-tokenizing it would split a generated reply differently and read it again.
        if (const auto run = keep > 0 ? find_moved_run(text, text_pos0, keep, cached_lens, cached_text) : std::nullopt) {
            append_tokenized(text_pos0, run->text_from, false);
            tokens.insert(tokens.end(), cached_tokens.begin() + static_cast<std::ptrdiff_t>(run->from),
                          cached_tokens.begin() + static_cast<std::ptrdiff_t>(run->to));
            lens.insert(lens.end(), cached_lens.begin() + static_cast<std::ptrdiff_t>(run->from),
                        cached_lens.begin() + static_cast<std::ptrdiff_t>(run->to));
            token_text.append(text, run->text_from, run->text_to - run->text_from);
            append_tokenized(run->text_to, text.size(), false);
        } else {
            append_tokenized(text_pos0, text.size(), keep == 0);
        }
        return out;
    }

    // --- replies decoded together ---

    Result<std::string> prompt_text(const GenerateRequest& req) const {
        if (req.raw_prompt) return *req.raw_prompt;  // Text completion: the client's prompt as it is.
        auto prompt = apply_template(tmpl, req.messages, true);
        if (!prompt) return std::unexpected(prompt.error());
        return *prompt + req.assistant_prefix;
    }

    // Cells the replies being generated may come to hold (each its prompt and reply).
    size_t reserved() const {
        size_t n = active_reserve;
        for (const auto& side : sides) n += side->reserve;
        return n;
    }

    bool held_by_side(const std::string& key) const {
        return !key.empty() && std::any_of(sides.begin(), sides.end(), [&](const auto& side) { return side->key == key; });
    }

    // Interactive requests for other chats that arrive while a reply is generating join it: up to
    // llm.parallel replies, while the cache has room for each one's prompt and reply. A request
    // of the active chat, or of a chat already decoding, waits its turn.
    void admit_sides() {
        while (static_cast<int>(sides.size()) + 1 < opt.parallel) {
            Job* job = nullptr;
            size_t at = 0;  // Its place in the queue.
            {
                std::lock_guard lock(mu);
                stopping = quit;
                if (quit) return;
                std::set<std::string> passed;  // Chats with an earlier request waiting: theirs go in order.
                for (auto it = queue.begin(); it != queue.end(); ++it) {
                    const GenerateRequest& r = *(*it)->request;
                    if (r.priority == Priority::Interactive && (r.cache_key.empty() || r.cache_key != active_key) &&
                        !held_by_side(r.cache_key) && !passed.contains(r.cache_key) &&
                        std::find(too_big.begin(), too_big.end(), *it) == too_big.end()) {
                        job = *it;
                        at = static_cast<size_t>(it - queue.begin());
                        queue.erase(it);
                        break;
                    }
                    if (!r.cache_key.empty()) passed.insert(r.cache_key);
                }
            }
            if (!job) return;
            bool started = false;
            try {
                started = start_side(job);
            } catch (const std::exception& e) {
                // It left the queue: its caller must hear of it (start_side sets no result before it ends).
                job->done.set_value(fail(ErrorCode::Internal, std::string("generation failed: ") + e.what()));
                continue;
            }
            if (!started) {
                // Back where it was, until a reply ends and frees room.
                std::unique_lock lock(mu);
                if (quit) {  // The queue was emptied for a shutdown meanwhile.
                    lock.unlock();
                    job->done.set_value(fail(ErrorCode::Unavailable, "the language model was unloaded (settings changed or the server is stopping)"));
                    return;
                }
                too_big.push_back(job);
                queue.insert(queue.begin() + static_cast<std::ptrdiff_t>(std::min(at, queue.size())), job);
            }
        }
    }

    // Reads a joining request's prompt into a sequence of its own and samples its first token;
    // false (the job untouched) when its prompt and reply do not fit beside the others.
    bool start_side(Job* job) {
        const GenerateRequest& req = *job->request;
        const size_t cells = static_cast<size_t>(opt.context_size);
        auto prompt = prompt_text(req);
        if (!prompt) {
            job->done.set_value(std::unexpected(prompt.error()));
            return true;
        }
        std::vector<llama_token> tokens = tokenize(*prompt, true);
        if (tokens.size() >= cells) {
            job->done.set_value(fail(ErrorCode::InvalidInput, "the prompt has " + std::to_string(tokens.size()) +
                                                                  " tokens; the context holds " + std::to_string(cells)));
            return true;
        }
        const size_t used = reserved();
        auto side = std::make_unique<Side>();
        side->reserve = std::min(cells, tokens.size() + static_cast<size_t>(req.sampling.max_tokens));
        if (used + side->reserve > cells) return false;
        side->job = job;
        side->key = req.cache_key;
        for (llama_seq_id s = kFirstSide;; ++s) {
            if (std::none_of(sides.begin(), sides.end(), [&](const auto& o) { return o->seq == s; })) {
                side->seq = s;
                break;
            }
        }
        // The chat's saved state, where it fits in the free cells (it is cut to the prompt's
        // common prefix at once); else the prompt is read whole.
        const size_t room = cells - used;
        std::error_code ec;
        if (!side->key.empty()) {
            if (const auto it = hot.find(side->key); it != hot.end()) {
                if (it->second.tokens.size() <= room &&
                    llama_state_seq_set_data(ctx, it->second.state.data(), it->second.state.size(), side->seq) > 0) {
                    side->tokens = it->second.tokens;
                }
            } else if (const std::string path = state_path(side->key); !path.empty() && std::filesystem::exists(path, ec)) {
                if (auto t = load_seq(ctx, path, side->seq, room)) side->tokens = std::move(*t);
            }
        }
        // As for the active chat: the cached tokens whose text the prompt repeats stay (a reply
        // re-tokenized would split differently and be read again).
        if (!side->tokens.empty()) {
            std::vector<uint32_t> cached_lens;
            std::string cached_text;
            text_of(side->tokens, cached_lens, cached_text);
            tokens = tokens_for(*prompt, side->tokens, cached_lens, cached_text).tokens;
            side->reserve = std::min(cells, tokens.size() + static_cast<size_t>(req.sampling.max_tokens));
            if (tokens.size() >= cells || used + side->reserve > cells) {  // Split otherwise: a few tokens more.
                llama_memory_seq_rm(llama_get_memory(ctx), side->seq, -1, -1);
                return false;
            }
        }
        const auto t_prompt = Clock::now();
        const ReusePlan plan = reuse_cache(ctx, side->tokens, tokens, side->seq);
        side->tokens.clear();
        side->reply = std::make_unique<Reply>(req);
        GenerateResult& result = side->reply->result;
        result.cached_tokens = static_cast<int>(plan.n_past);
        // Its own cancel stops its prompt mid-batch; then the running reply's again.
        const auto* running_cancel = abort_flag.exchange(req.cancel.get());
        size_t valid = 0;
        const bool ok = evaluate(ctx, tokens, plan, req, valid, side->seq);
        abort_flag.store(running_cancel);
        if (!ok) {
            llama_memory_seq_rm(llama_get_memory(ctx), side->seq, -1, -1);
            if (req.cancel && req.cancel->load()) {
                result.finish = FinishReason::Cancelled;
                result.prompt_ms = ms_since(t_prompt);
                GenerateResult r = std::move(result);
                side.reset();
                job->done.set_value(std::move(r));
            } else {
                side.reset();
                job->done.set_value(fail(ErrorCode::Internal, "llama_decode failed while reading the prompt"));
            }
            return true;
        }
        result.prompt_tokens = static_cast<int>(tokens.size() - plan.n_past);
        result.prompt_ms = ms_since(t_prompt);
        side->tokens = std::move(tokens);
        side->smpl = make_sampler(req.sampling);
        side->t_gen = Clock::now();
        side->next = llama_sampler_sample(side->smpl, ctx, -1);  // Now: the next decode replaces the logits.
        if (!side_takes(*side)) {
            finish_side(std::move(side));
            return true;
        }
        log::debug("a reply for chat '", side->key, "' decodes beside ", 1 + sides.size(), " other(s)");
        sides.push_back(std::move(side));
        n_sides.store(static_cast<int>(sides.size()));
        return true;
    }

    // Replies whose request was cancelled (or the engine is stopping) end before the next step.
    void settle_sides() {
        for (auto it = sides.begin(); it != sides.end();) {
            const GenerateRequest& req = *(*it)->job->request;
            if (stopping || (req.cancel && req.cancel->load())) {
                (*it)->reply->result.finish = FinishReason::Cancelled;
                auto side = std::move(*it);
                it = sides.erase(it);
                finish_side(std::move(side));
            } else {
                ++it;
            }
        }
        n_sides.store(static_cast<int>(sides.size()));
    }

    // Each side's next token joins the step's batch.
    void add_sides(llama_batch& batch) {
        for (auto& side : sides) {
            const int32_t k = batch.n_tokens++;
            batch.token[k] = side->next;
            batch.pos[k] = static_cast<llama_pos>(side->tokens.size());
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = side->seq;
            batch.logits[k] = 1;
            side->out = k;
        }
    }

    // A side's next token was sampled: its text goes out now, before the step that decodes it.
    // False when the reply ends with it (end of text, a stop string, the limit, a full context):
    // then it is not decoded at all.
    bool side_takes(Side& side) {
        Reply& reply = *side.reply;
        if (llama_vocab_is_eog(vocab, side.next)) {
            reply.result.finish = FinishReason::Stop;
            return false;
        }
        return reply.take(llama_vocab_is_control(vocab, side.next), piece(side.next)) &&
               reply.result.predicted_tokens < reply.req.sampling.max_tokens &&
               side.tokens.size() < static_cast<size_t>(opt.context_size);
    }

    // After a step decoded the sides' tokens: each samples its next one and hands it out.
    void sides_decoded(bool shared) {
        for (auto it = sides.begin(); it != sides.end();) {
            Side& side = **it;
            Reply& reply = *side.reply;
            side.tokens.push_back(side.next);
            if (shared) ++reply.result.batched_tokens;
            side.next = llama_sampler_sample(side.smpl, ctx, side.out);
            if (side_takes(side)) {
                ++it;
            } else {
                auto done = std::move(*it);
                it = sides.erase(it);
                finish_side(std::move(done));
            }
        }
        n_sides.store(static_cast<int>(sides.size()));
    }

    // A side's reply is done: its state goes to the memory cache (to disk when the engine is
    // idle), its cells are freed, and its caller gets the result.
    void finish_side(std::unique_ptr<Side> side) {
        Reply& reply = *side->reply;
        reply.flush();
        reply.result.predicted_ms = ms_since(side->t_gen);
        std::optional<Hot> state;
        if (side->keep && !side->key.empty() && !side->tokens.empty()) state = hot_of(side->seq, side->tokens);
        llama_memory_seq_rm(llama_get_memory(ctx), side->seq, -1, -1);  // Before put_hot may write another state.
        if (state) {
            // Marked first: if the memory cache cannot keep it, put_hot writes it as it drops it.
            if (side->job->request->save_state) unsaved.insert(side->key);
            else unsaved.erase(side->key);
            put_hot(side->key, std::move(*state));
        }
        too_big.clear();  // Room was freed.
        Job* job = side->job;
        GenerateResult result = std::move(reply.result);
        side.reset();  // Its reply refers to the request, which ends with the result.
        job->done.set_value(std::move(result));
    }

    void fail_sides(const std::string& why) {
        for (auto& side : sides) {
            llama_memory_seq_rm(llama_get_memory(ctx), side->seq, -1, -1);
            Job* job = side->job;
            side.reset();
            job->done.set_value(fail(ErrorCode::Internal, why));
        }
        sides.clear();
        n_sides.store(0);
    }

    // One step of the sides alone (no reply of the active chat is generating).
    void step_sides() {
        settle_sides();
        if (sides.empty()) return;
        llama_batch batch = llama_batch_init(static_cast<int32_t>(sides.size()), 0, 1);
        batch.n_tokens = 0;
        add_sides(batch);
        const bool single = batch.n_tokens == 1;
        use_threads(single ? tuner.next() : tuner.best());
        const auto started = Clock::now();
        const int rc = llama_decode(ctx, batch);
        if (rc == 0 && single) tuner.record(threads_now, ms_since(started));
        const bool shared = !single;
        llama_batch_free(batch);
        if (rc != 0) return fail_sides("llama_decode failed while generating");
        sides_decoded(shared);
    }

    // Steps the sides until `need` cells fit beside them; false when `req` is cancelled or the
    // engine stops meanwhile (the sides are then cancelled too).
    bool wait_for_room(size_t need, const GenerateRequest& req) {
        size_t sides_reserve = 0;
        auto fits = [&] {
            sides_reserve = 0;
            for (const auto& side : sides) sides_reserve += side->reserve;
            return sides_reserve + need <= static_cast<size_t>(opt.context_size);
        };
        while (!sides.empty() && !fits()) {
            {
                std::lock_guard lock(mu);
                stopping = quit;
            }
            if (req.cancel && req.cancel->load()) return false;
            step_sides();
        }
        return !stopping;
    }

    Result<GenerateResult> run(const GenerateRequest& req) {
        if (!ctx) return fail(ErrorCode::Unavailable, detail.empty() ? "no model loaded" : detail);
        auto prompt = prompt_text(req);
        if (!prompt) return std::unexpected(prompt.error());
        const std::string& text = *prompt;
        const size_t cells = static_cast<size_t>(opt.context_size);
        if (!sides.empty()) {
            // Replies of other chats are decoding beside this one and keep their cells: this chat's
            // state and reply must fit beside them, else they finish first.
            size_t need = tokenize(text, true).size() + static_cast<size_t>(req.sampling.max_tokens);
            if (!req.cache_key.empty() && req.cache_key == active_key) {
                need = std::max(need, active_tokens.size());
            } else if (const auto it = hot.find(req.cache_key); it != hot.end()) {
                need = std::max(need, it->second.tokens.size());
            } else if (std::error_code ec; !req.cache_key.empty() && !state_path(req.cache_key).empty() &&
                                           std::filesystem::exists(state_path(req.cache_key), ec)) {
                need = cells;  // A saved state of unknown length.
            }
            if (!wait_for_room(std::min(need, cells), req)) {
                GenerateResult cancelled;
                cancelled.finish = FinishReason::Cancelled;
                return cancelled;
            }
        }
        switch_to(req.cache_key);
        active_on_disk = req.save_state;
        // Cancelling this request stops llama.cpp mid-batch (the abort callback); cleared on return.
        abort_flag.store(req.cancel.get());
        struct ClearAbort {
            std::atomic<const std::atomic<bool>*>& flag;
            ~ClearAbort() { flag.store(nullptr); }
        } clear_abort{abort_flag};

        PromptTokens prompt_tokens = tokens_for(text, active_tokens, active_lens, active_text);
        std::vector<llama_token>& tokens = prompt_tokens.tokens;
        std::vector<uint32_t>& lens = prompt_tokens.lens;
        std::string& token_text = prompt_tokens.text;
        const int n_ctx = opt.context_size;
        if (static_cast<int>(tokens.size()) >= n_ctx) {
            return fail(ErrorCode::InvalidInput, "the prompt has " + std::to_string(tokens.size()) +
                                                     " tokens; the context holds " + std::to_string(n_ctx));
        }
        // Its tokens can be a few more than the estimate above (kept tokens split differently).
        active_reserve = std::min(cells, tokens.size() + static_cast<size_t>(req.sampling.max_tokens));
        if (!sides.empty() && !wait_for_room(active_reserve, req)) {
            GenerateResult cancelled;
            cancelled.finish = FinishReason::Cancelled;
            active_reserve = 0;
            return cancelled;
        }
        Reply reply(req);
        GenerateResult& result = reply.result;
        // Until it ends, other chats' replies join only where the cache has room for this one's.
        struct EndReserve {
            Impl& impl;
            ~EndReserve() {
                impl.active_reserve = 0;
                impl.too_big.clear();
            }
        } end_reserve{*this};
        const auto t_prompt = Clock::now();
        const ReusePlan plan = reuse_cache(ctx, active_tokens, tokens);
        result.cached_tokens = static_cast<int>(plan.n_past + (plan.chunk_end - plan.gap_end));
        // Until the prompt is in, the context matches no token list: forget it on any failure.
        active_tokens.clear();
        active_lens.clear();
        active_text.clear();
        active_dirty = true;
        size_t valid = 0;
        use_threads(tuner.best());
        if (!evaluate(ctx, tokens, plan, req, valid)) {
            if (req.cancel && req.cancel->load()) {
                // Stopped midway (an interactive turn preempting a background job): keep what was
                // read, so the request resumes there when it runs again.
                size_t bytes = 0;
                for (size_t k = 0; k < valid; ++k) bytes += lens[k];
                active_tokens.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(valid));
                active_lens.assign(lens.begin(), lens.begin() + static_cast<std::ptrdiff_t>(valid));
                active_text = token_text.substr(0, bytes);
                llama_memory_seq_rm(llama_get_memory(ctx), 0, static_cast<llama_pos>(valid), -1);
                result.finish = FinishReason::Cancelled;
                result.prompt_ms = ms_since(t_prompt);
                return std::move(result);
            }
            clear_active();
            return fail(ErrorCode::Internal, "llama_decode failed while reading the prompt");
        }
        active_tokens = tokens;
        active_lens = lens;
        active_text = token_text;
        const size_t n_past = static_cast<size_t>(result.cached_tokens);
        result.prompt_tokens = static_cast<int>(tokens.size() - n_past);
        result.prompt_ms = ms_since(t_prompt);

        const auto t_gen = Clock::now();
        tuner.reply_starts();
        llama_sampler* smpl = make_sampler(req.sampling);
        // Each step decodes the sampled token together with the draft model's guesses for the tokens
        // after it, in one batch. The guesses are then checked in order by sampling from the model's
        // logits at each of them, exactly as without guesses: a guess stays while it is what the
        // model sampled, and the first sample that differs is the next token. With a greedy draft
        // this is the standard acceptance rule (accept with the model's probability of the guess,
        // else draw from the rest), so the reply follows the model's distribution, and it draws the
        // same random numbers: a seed gives the same reply with and without a draft model.
        // Other chats' replies decoding beside this one add a token each (sides).
        const int batch_cap = std::max(1, opt.draft_max + 1) + std::max(0, opt.parallel - 1);
        llama_batch batch = llama_batch_init(batch_cap, 0, 1);
        llama_memory_t mem = llama_get_memory(ctx);
        std::optional<llama_token> next;  // Sampled while checking guesses, not yet handed out.
        bool failed = false;
        while (result.predicted_tokens < req.sampling.max_tokens) {
            if (req.cancel && req.cancel->load()) {
                result.finish = FinishReason::Cancelled;
                break;
            }
            if (static_cast<int>(active_tokens.size()) >= n_ctx) break;  // Context full: "length".
            const llama_token tok = next ? *next : llama_sampler_sample(smpl, ctx, -1);
            next.reset();
            if (llama_vocab_is_eog(vocab, tok)) {
                result.finish = FinishReason::Stop;
                break;
            }
            // The token's text goes out now, before the step that decodes it (the first one a
            // step sooner). A reply that ends with it (a stop string, the limit, the client gone)
            // does not decode it: nothing needs its cache entry, and the next turn reads it with
            // its prompt if the chat goes on.
            const std::string p = piece(tok);
            if (!reply.take(llama_vocab_is_control(vocab, tok), p) || result.predicted_tokens >= req.sampling.max_tokens) break;
            // Requests of other chats join this step (their prompts are read first); the draft
            // model and the thread tuner work for a reply decoded alone.
            if (req.priority == Priority::Interactive) admit_sides();
            settle_sides();
            const int room = std::min(req.sampling.max_tokens - result.predicted_tokens,
                                      n_ctx - static_cast<int>(active_tokens.size()) - 1);
            const int want_guesses = sides.empty() ? choose_guesses(std::min(opt.draft_max, room)) : 0;
            const std::vector<llama_token> draft = make_draft(tok, want_guesses, req, result);
            const llama_pos base = static_cast<llama_pos>(active_tokens.size());
            batch.n_tokens = static_cast<int32_t>(draft.size() + 1);
            for (int32_t k = 0; k < batch.n_tokens; ++k) {
                batch.token[k] = k == 0 ? tok : draft[static_cast<size_t>(k - 1)];
                batch.pos[k] = base + k;
                batch.n_seq_id[k] = 1;
                batch.seq_id[k][0] = 0;
                batch.logits[k] = 1;
            }
            const int32_t n_own = batch.n_tokens;
            add_sides(batch);
            // A single token's step is what the thread tuner measures (batches run on its pick).
            const bool single = batch.n_tokens == 1;
            use_threads(single ? tuner.next() : tuner.best());
            const auto decode_started = Clock::now();
            if (const int rc = llama_decode(ctx, batch); rc != 0) {
                if (rc == 2 && req.cancel && req.cancel->load()) {  // Cancelled mid-batch: nothing of it stays.
                    result.finish = FinishReason::Cancelled;
                    break;
                }
                failed = true;
                break;
            }
            if (single) tuner.record(threads_now, ms_since(decode_started));
            if (n_own < batch.n_tokens) result.batched_tokens += n_own;
            if (dctx && opt.draft_adaptive && n_own == batch.n_tokens) {
                double& m = batch_ms[static_cast<size_t>(std::min(batch.n_tokens, kMaxBatch))];
                m = m == 0 ? ms_since(decode_started) : 0.8 * m + 0.2 * ms_since(decode_started);
            }
            commit(tok, p);
            bool go_on = true;
            size_t accepted = 0;
            for (size_t k = 0; go_on && k < draft.size(); ++k) {
                const llama_token s = llama_sampler_sample(smpl, ctx, static_cast<int32_t>(k));
                if (s != draft[k]) {
                    next = s;
                    break;
                }
                ++accepted;
                if (llama_vocab_is_eog(vocab, s)) {
                    result.finish = FinishReason::Stop;
                    go_on = false;
                    break;
                }
                const std::string ps = piece(s);
                commit(s, ps);
                go_on = reply.take(llama_vocab_is_control(vocab, s), ps) && result.predicted_tokens < req.sampling.max_tokens;
            }
            if (!draft.empty()) {
                result.draft_tokens += static_cast<int>(draft.size());
                result.accepted_tokens += static_cast<int>(accepted);
                // The chance a guess is kept, from recent steps (older ones count less).
                hits = 0.95 * hits + static_cast<double>(accepted);
                misses = 0.95 * misses + (accepted < draft.size() ? 1.0 : 0.0);
                // The context keeps what was taken, not the rest of the guesses. (With every guess
                // taken, the next step samples the last guess's logits, the batch's last output.)
                llama_memory_seq_rm(mem, 0, static_cast<llama_pos>(active_tokens.size()), -1);
            }
            // The next token is sampled now, from this batch's logits (the output after what was
            // taken), before any other decode: a reply joining next step reads its prompt first.
            if (go_on && !next) next = llama_sampler_sample(smpl, ctx, static_cast<int32_t>(accepted));
            sides_decoded(n_own < batch.n_tokens);
            if (!go_on) break;
        }
        llama_batch_free(batch);
        if (failed) {
            llama_sampler_free(smpl);
            clear_active();
            fail_sides("llama_decode failed while generating");
            return fail(ErrorCode::Internal, "llama_decode failed while generating");
        }
        reply.flush();
        llama_sampler_free(smpl);
        result.predicted_ms = ms_since(t_gen);
        return std::move(result);
    }

    void loop() {
        load();
        std::unique_lock lock(mu);
        while (true) {
            // Idle for a while with unsaved state: write it to disk off the hot path. (Not while
            // replies are decoding beside the active chat: they step on.)
            if (sides.empty()) {
                cv.wait_for(lock, std::chrono::seconds(2), [&] { return quit || !queue.empty() || !to_forget.empty(); });
            }
            stopping = quit;
            if (!to_forget.empty()) {
                auto keys = std::move(to_forget);
                to_forget.clear();
                lock.unlock();
                if (ctx) for (const auto& k : keys) forget(k);
                lock.lock();
                continue;
            }
            // Interactive requests first, each class in arrival order. While replies decode beside
            // the active chat, only interactive requests of other chats start (and they join them).
            auto pick = std::find_if(queue.begin(), queue.end(), [&](const Job* j) {
                return j->request->priority == Priority::Interactive && !held_by_side(j->request->cache_key);
            });
            if (pick == queue.end() && sides.empty() && !queue.empty()) pick = queue.begin();
            if (pick == queue.end()) {
                if (!sides.empty()) {
                    lock.unlock();
                    try {
                        step_sides();
                    } catch (const std::exception& e) {
                        fail_sides(std::string("generation failed: ") + e.what());
                    }
                    lock.lock();
                    continue;
                }
                if (quit) break;
                if (ctx && (active_dirty || !unsaved.empty())) {
                    lock.unlock();
                    save_active_to_disk();
                    save_unsaved();
                    lock.lock();
                }
                continue;
            }
            Job* job = *pick;
            queue.erase(pick);
            running = job->request;
            lock.unlock();
            Result<GenerateResult> r = fail(ErrorCode::Internal, "generation failed");
            try {
                r = run(*job->request);
            } catch (const std::exception& e) {
                r = fail(ErrorCode::Internal, std::string("generation failed: ") + e.what());
            }
            // The caller's request dies once it has its result: stop pointing at it first.
            lock.lock();
            running = nullptr;
            lock.unlock();
            job->done.set_value(std::move(r));
            lock.lock();
        }
        lock.unlock();
        if (ctx) {
            save_active_to_disk();
            clear_active();  // Room for the states only the memory cache holds.
            save_unsaved();
        }
        if (dctx) llama_free(dctx);
        dctx = nullptr;
        if (ctx) llama_free(ctx);
        ctx = nullptr;
    }
};

LlamaEngine::LlamaEngine(LlamaEngineOptions options) : m_impl(std::make_unique<Impl>()) {
    m_impl->opt = std::move(options);
    m_impl->opt.parallel = std::clamp(m_impl->opt.parallel, 1, 16);
    m_impl->worker = std::thread([this] { m_impl->loop(); });
}

LlamaEngine::~LlamaEngine() {
    shutdown();
    if (m_impl->model) llama_model_free(m_impl->model);
    m_impl->model = nullptr;
    if (m_impl->draft_model) llama_model_free(m_impl->draft_model);
    m_impl->draft_model = nullptr;
}

void LlamaEngine::shutdown() {
    std::deque<Impl::Job*> dropped;
    {
        std::lock_guard lock(m_impl->mu);
        if (!m_impl->quit) {
            m_impl->quit = true;
            // Queued requests fail at once and the running one stops within a token, so a
            // settings change or a stop never waits for a queue of turns to finish.
            dropped.swap(m_impl->queue);
            if (m_impl->running && m_impl->running->cancel) m_impl->running->cancel->store(true);
            m_impl->cv.notify_all();
        }
    }
    for (auto* job : dropped) {
        job->done.set_value(fail(ErrorCode::Unavailable, "the language model was unloaded (settings changed or the server is stopping)"));
    }
    std::lock_guard join_lock(m_impl->join_mu);
    if (m_impl->worker.joinable()) m_impl->worker.join();
}

void LlamaEngine::wait_loaded() const {
    std::unique_lock lock(m_impl->mu);
    m_impl->cv.wait(lock, [&] { return m_impl->loaded; });
}

Result<GenerateResult> LlamaEngine::generate(const GenerateRequest& request) {
    if (auto ok = validate(request.sampling); !ok) return std::unexpected(ok.error());
    Impl::Job job{&request, {}};
    auto future = job.done.get_future();
    {
        std::lock_guard lock(m_impl->mu);
        if (m_impl->quit) return fail(ErrorCode::Unavailable, "the server is shutting down");
        if (m_impl->loaded && m_impl->state != "ready") return fail(ErrorCode::Unavailable, m_impl->detail);
        m_impl->queue.push_back(&job);
        const GenerateRequest* running = m_impl->running;
        if (request.priority == Priority::Interactive && running && running->priority == Priority::Background &&
            running->cancel) {
            running->cancel->store(true);  // Preempt background work; it will be retried.
        }
        m_impl->cv.notify_all();
    }
    return future.get();
}

void LlamaEngine::forget(const std::string& key) {
    std::lock_guard lock(m_impl->mu);
    m_impl->to_forget.push_back(key);
    m_impl->cv.notify_all();
}

EngineStatus LlamaEngine::status() const {
    std::lock_guard lock(m_impl->mu);
    EngineStatus st{m_impl->state, m_impl->detail, std::filesystem::path(m_impl->opt.model_path).filename().string(),
                    "embedded", m_impl->draft_name, m_impl->draft_detail, m_impl->draft_paused};
    st.decoding = (m_impl->running ? 1 : 0) + m_impl->n_sides.load();
    st.queued = static_cast<int>(m_impl->queue.size());
    st.parallel = m_impl->opt.parallel;
    st.weights_huge_page_bytes = m_impl->weights_huge_bytes;
    st.huge_pages_kernel = m_impl->huge_pages_kernel;
    return st;
}

int LlamaEngine::count_tokens(std::string_view text) const {
    const llama_vocab* vocab = nullptr;
    {
        std::lock_guard lock(m_impl->mu);
        vocab = m_impl->vocab;
    }
    if (!vocab) return static_cast<int>(text.size() / 3 + 1);
    return static_cast<int>(tokenize_with(vocab, text, false).size());
}

std::string LlamaEngine::format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const {
    std::string tmpl;
    {
        std::lock_guard lock(m_impl->mu);
        tmpl = m_impl->tmpl.empty() ? m_impl->opt.fallback_template : m_impl->tmpl;
    }
    auto r = apply_template(tmpl, messages, add_assistant);
    return r ? *r : std::string();
}

int LlamaEngine::context_size() const { return m_impl->opt.context_size; }

std::optional<int> LlamaEngine::prompt_size(const GenerateRequest& request) const {
    const llama_vocab* vocab = nullptr;
    std::string tmpl;
    {
        std::lock_guard lock(m_impl->mu);
        vocab = m_impl->vocab;
        tmpl = m_impl->tmpl;
    }
    if (!vocab) return std::nullopt;  // Still loading: the engine checks when it runs.
    return prompt_tokens_with(vocab, tmpl, request);
}

Result<std::vector<int32_t>> LlamaEngine::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    const llama_vocab* vocab = nullptr;
    {
        std::lock_guard lock(m_impl->mu);
        vocab = m_impl->vocab;
    }
    if (!vocab) return fail(ErrorCode::Unavailable, "the language model is not loaded yet");
    auto tokens = tokenize_with(vocab, text, add_special, parse_special);
    return std::vector<int32_t>(tokens.begin(), tokens.end());
}

Result<std::string> LlamaEngine::detokenize(const std::vector<int32_t>& tokens) const {
    const llama_vocab* vocab = nullptr;
    {
        std::lock_guard lock(m_impl->mu);
        vocab = m_impl->vocab;
    }
    if (!vocab) return fail(ErrorCode::Unavailable, "the language model is not loaded yet");
    return detokenize_with(vocab, tokens);
}

std::string LlamaEngine::chat_template() const {
    std::lock_guard lock(m_impl->mu);
    return m_impl->tmpl.empty() ? m_impl->opt.fallback_template : m_impl->tmpl;
}

// --- ModelVocab ---

Result<std::shared_ptr<const ModelVocab>> ModelVocab::load(const std::string& model_path, const std::string& fallback_template) {
    runtime_info();
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    mp.n_gpu_layers = 0;
    llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) return fail(ErrorCode::InvalidInput, "cannot read " + model_path + ": not a readable GGUF model (see the log)");
    std::shared_ptr<ModelVocab> v(new ModelVocab());
    v->m_model = model;
    v->m_template = template_of(model, fallback_template);
    return std::shared_ptr<const ModelVocab>(std::move(v));
}

ModelVocab::~ModelVocab() {
    if (m_model) llama_model_free(m_model);
}

int ModelVocab::count_tokens(std::string_view text) const {
    return static_cast<int>(tokenize_with(llama_model_get_vocab(m_model), text, false).size());
}

std::string ModelVocab::format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const {
    auto r = apply_template(m_template, messages, add_assistant);
    return r ? *r : std::string();
}

std::optional<int> ModelVocab::prompt_size(const GenerateRequest& request) const {
    return prompt_tokens_with(llama_model_get_vocab(m_model), m_template, request);
}

Result<std::vector<int32_t>> ModelVocab::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    auto tokens = tokenize_with(llama_model_get_vocab(m_model), text, add_special, parse_special);
    return std::vector<int32_t>(tokens.begin(), tokens.end());
}

Result<std::string> ModelVocab::detokenize(const std::vector<int32_t>& tokens) const {
    return detokenize_with(llama_model_get_vocab(m_model), tokens);
}

}  // namespace mc::llm
