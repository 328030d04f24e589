#include "voice/embedded_tts.hpp"

#include <ggml.h>
#include <gguf.h>
#include <llama.h>
#include <mtmd-helper.h>
#include <mtmd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "core/log.hpp"

namespace mc::voice {

namespace {

namespace fs = std::filesystem;

// Output of both model families: 24 kHz, 12.5 frames per second.
constexpr double kFramesPerSecond = 12.5;
// Frame cap per generation: fast speech is ~15 characters a second, so 0.3 s per character plus
// 2 s is generous for real models and bounds random weights that never say end-of-speech.
constexpr double kCapSecondsPerChar = 0.3;
constexpr double kCapExtraSeconds = 2.0;
// Context of the backbone: the longest prompt (a sentence chunk, a voice clip) plus its frames.
constexpr uint32_t kContextSize = 4096;
// Sentences longer than this (bytes) are cut at a space: one generation stays inside the context.
constexpr size_t kMaxChunkBytes = 400;
// Backbone sampling for Qwen3-TTS (its generation_config: top-k 50, top-p 1.0, temperature 0.9);
// top-k/top-p also go to the code predictor.
constexpr int32_t kTopK = 50;
constexpr float kTopP = 1.0f;
constexpr float kTemperature = 0.9f;

// ISO 639-1 codes the Qwen3-TTS helper knows, with the codec language token's name.
constexpr std::pair<const char*, const char*> kQwenLanguages[] = {
    {"zh", "chinese"}, {"en", "english"}, {"de", "german"}, {"it", "italian"}, {"pt", "portuguese"},
    {"es", "spanish"}, {"ja", "japanese"}, {"ko", "korean"}, {"fr", "french"}, {"ru", "russian"},
};

void forward_log(ggml_log_level level, const char* text, void*) {
    std::string t(text ? text : "");
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    if (t.empty()) return;
    if (level == GGML_LOG_LEVEL_ERROR) log::error("llama.cpp (tts): ", t);
    else if (level == GGML_LOG_LEVEL_WARN) log::warn("llama.cpp (tts): ", t);
    else log::debug("llama.cpp (tts): ", t);
}

void init_backend_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(forward_log, nullptr);
        mtmd_helper_log_set(forward_log, nullptr);
        llama_backend_init();
    });
}

struct GgufDeleter {
    void operator()(gguf_context* c) const { gguf_free(c); }
};

std::string gguf_string(const gguf_context* g, const char* key) {
    const int64_t k = gguf_find_key(g, key);
    if (k < 0 || gguf_get_kv_type(g, k) != GGUF_TYPE_STRING) return {};
    return gguf_get_val_str(g, k);
}

// Checks the pair from the GGUF headers alone (no tensor data read): both files exist, the backbone's
// architecture is a TTS one, the mmproj generates audio. Returns the architecture.
Result<std::string> check_files(const std::string& model, const std::string& mmproj) {
    const std::string fix = "set media.tts_model_file and media.tts_mmproj_file";
    if (model.empty() || mmproj.empty())
        return fail(ErrorCode::Unavailable, "no speech model configured: " + fix + " (a Qwen3-TTS or Pocket TTS GGUF pair)");
    for (const auto* path : {&model, &mmproj}) {
        std::error_code ec;
        if (!fs::is_regular_file(*path, ec))
            return fail(ErrorCode::Unavailable, "file " + *path + " not found: " + fix);
    }
    gguf_init_params p{true, nullptr};
    std::unique_ptr<gguf_context, GgufDeleter> g(gguf_init_from_file(model.c_str(), p));
    if (!g) return fail(ErrorCode::Unavailable, "file " + model + " is not a GGUF model: " + fix);
    const std::string arch = gguf_string(g.get(), "general.architecture");
    if (arch != "qwen3tts" && arch != "pockettts")
        return fail(ErrorCode::Unavailable, "file " + model + " is not a TTS model (architecture " +
                                                (arch.empty() ? "unknown" : arch) + "): " + fix);
    std::unique_ptr<gguf_context, GgufDeleter> m(gguf_init_from_file(mmproj.c_str(), p));
    if (!m) return fail(ErrorCode::Unavailable, "file " + mmproj + " is not a GGUF file: " + fix);
    const std::string gen = gguf_string(m.get(), "clip.gen.audio.projector_type");
    const std::string want = arch == "qwen3tts" ? "qwen3tts_gen" : "pockettts_gen";
    if (gen != want)
        return fail(ErrorCode::Unavailable, "file " + mmproj + " is not the " + arch + " mmproj (speech generator " +
                                                (gen.empty() ? "none" : gen) + "): " + fix);
    return arch;
}

size_t utf8_chars(std::string_view s) {
    return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// One generation per sentence: Qwen3's vocoder must not be read mid-generation, and short
// generations keep the backbone in the length it was trained on.
std::vector<std::string> split_sentences(std::string_view text) {
    std::vector<std::string> out;
    auto push = [&](std::string_view s) {
        s = trim(s);
        while (s.size() > kMaxChunkBytes) {
            size_t cut = s.rfind(' ', kMaxChunkBytes);
            if (cut == std::string_view::npos || cut == 0) {
                cut = kMaxChunkBytes;
                while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // Not inside a character.
            }
            out.emplace_back(trim(s.substr(0, cut)));
            s = trim(s.substr(cut));
        }
        if (!s.empty()) out.emplace_back(s);
    };
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool end_mark = c == '.' || c == '!' || c == '?' || c == '\n';
        const bool boundary = i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n' || text[i + 1] == '\t';
        if (end_mark && boundary) {
            push(text.substr(start, i + 1 - start));
            start = i + 1;
        }
    }
    if (start < text.size()) push(text.substr(start));
    return out;
}

struct ModelDeleter {
    void operator()(llama_model* m) const { llama_model_free(m); }
};
struct ContextDeleter {
    void operator()(llama_context* c) const { llama_free(c); }
};
struct SamplerDeleter {
    void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};

}  // namespace

struct EmbeddedTts::Loaded {
    std::unique_ptr<llama_model, ModelDeleter> model;
    std::unique_ptr<llama_context, ContextDeleter> ctx;
    mtmd::context_ptr mtmd;
    mtmd_helper::gen_audio_ptr gen;
    mtmd_gen_audio_type type = MTMD_GEN_AUDIO_TYPE_NONE;
    std::string variant;  // Pocket TTS weight pack ("english", "french_24l"), may be empty.
    int sample_rate = 24000;
    // libllama does not apply the model's suppressed tokens (llama-common's sampler does): they
    // become -inf biases, so Qwen3 samples only codec codes and end-of-speech.
    std::vector<llama_logit_bias> suppress;
    // The last voice sample, decoded once and kept while its file stays the same (path, size, mtime):
    // a character's clip is read once, not for every sentence it speaks.
    mtmd::bitmap_ptr speaker;
    std::string speaker_key;
};

EmbeddedTts::EmbeddedTts(std::string model_path, std::string mmproj_path, int threads, int gpu_layers)
    : m_model_path(std::move(model_path)),
      m_mmproj_path(std::move(mmproj_path)),
      m_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      m_gpu_layers(gpu_layers) {}

EmbeddedTts::~EmbeddedTts() = default;

int EmbeddedTts::max_frames(std::string_view text) {
    const double seconds = kCapSecondsPerChar * static_cast<double>(utf8_chars(text)) + kCapExtraSeconds;
    return static_cast<int>(std::ceil(seconds * kFramesPerSecond));
}

Result<void> EmbeddedTts::load() {
    std::lock_guard lock(m_mu);
    return load_locked();
}

Result<void> EmbeddedTts::load_locked() {
    if (m_loaded) return {};
    auto arch = check_files(m_model_path, m_mmproj_path);
    if (!arch) {
        m_load_error = arch.error().message;
        return std::unexpected(arch.error());
    }
    init_backend_once();
    auto failed = [&](std::string message) {
        m_load_error = message;
        return fail(ErrorCode::Unavailable, std::move(message));
    };
    auto l = std::make_unique<Loaded>();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = m_gpu_layers < 0 ? 999 : m_gpu_layers;
    l->model.reset(llama_model_load_from_file(m_model_path.c_str(), mp));
    if (!l->model) return failed("cannot load the speech model " + m_model_path + " (see the log)");

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = kContextSize;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_seq_max = 1;
    cp.n_threads = m_threads;
    cp.n_threads_batch = m_threads;
    cp.embeddings = true;  // The generator reads the backbone's hidden state after every step.
    cp.no_perf = true;
    l->ctx.reset(llama_init_from_model(l->model.get(), cp));
    if (!l->ctx) return failed("cannot create a context for the speech model " + m_model_path);

    mtmd_context_params mtp = mtmd_context_params_default();
    mtp.use_gpu = m_gpu_layers != 0;
    mtp.print_timings = false;
    mtp.n_threads = m_threads;
    l->mtmd.reset(mtmd_init_from_file(m_mmproj_path.c_str(), l->model.get(), mtp));
    if (!l->mtmd) return failed("cannot load the speech mmproj " + m_mmproj_path + " (see the log)");
    const mtmd_gen_audio_info info = mtmd_gen_audio_get_info(l->mtmd.get());
    l->type = info.type;
    const bool qwen = *arch == "qwen3tts";
    if (info.type != (qwen ? MTMD_GEN_AUDIO_TYPE_QWEN3TTS : MTMD_GEN_AUDIO_TYPE_POCKETTTS))
        return failed("file " + m_mmproj_path + " does not generate speech for a " + *arch + " model");
    l->sample_rate = info.sample_rate > 0 ? info.sample_rate : 24000;
    l->variant = info.model_variant ? info.model_variant : "";
    l->gen.reset(mtmd_helper_gen_audio_init(l->ctx.get(), l->mtmd.get()));
    if (!l->gen) return failed("cannot start speech generation for " + m_model_path);

    int32_t n_suppress = 0;
    const llama_token* suppress = llama_vocab_get_suppress_tokens(llama_model_get_vocab(l->model.get()), &n_suppress);
    for (int32_t i = 0; i < n_suppress; ++i)
        l->suppress.push_back({suppress[i], -std::numeric_limits<float>::infinity()});

    log::info("speech model loaded: ", m_model_path, " (", *arch, l->variant.empty() ? "" : ", " + l->variant, "), ",
              m_threads, " threads");
    m_loaded = std::move(l);
    m_load_error.clear();
    return {};
}

TtsHealth EmbeddedTts::health() {
    std::lock_guard lock(m_mu);
    if (m_loaded) return {"ok", "speech model loaded"};
    if (auto arch = check_files(m_model_path, m_mmproj_path); !arch) return {"unavailable", arch.error().message};
    if (!m_load_error.empty()) return {"unavailable", m_load_error};
    return {"ok", "speech model ready (loads on first use)"};
}

Result<Audio> EmbeddedTts::synthesize(const TtsRequest& request) {
    const std::vector<std::string> sentences = split_sentences(request.text);
    if (sentences.empty()) return fail(ErrorCode::InvalidInput, "text is empty", "text");

    std::lock_guard lock(m_mu);
    if (auto loaded = load_locked(); !loaded) return std::unexpected(loaded.error());
    Loaded& l = *m_loaded;
    const bool qwen = l.type == MTMD_GEN_AUDIO_TYPE_QWEN3TTS;
    const llama_vocab* vocab = llama_model_get_vocab(l.model.get());

    // The language as the helper wants it: Qwen3 a code it maps to a codec language token the model
    // has; Pocket TTS speaks its weight pack's language only.
    std::string lang;
    if (qwen) {
        for (const auto& [code, name] : kQwenLanguages) {
            if (request.language != code) continue;
            const std::string piece = std::string("<|codec_language_") + name + "|>";
            llama_token t = LLAMA_TOKEN_NULL;
            std::vector<llama_token> ids(8);
            const int n = llama_tokenize(vocab, piece.c_str(), static_cast<int32_t>(piece.size()), ids.data(),
                                         static_cast<int32_t>(ids.size()), false, true);
            if (n == 1) t = ids[0];
            if (t != LLAMA_TOKEN_NULL) lang = code;
        }
        if (lang.empty())
            return fail(ErrorCode::InvalidInput, "language '" + request.language + "' is not supported by this Qwen3-TTS model",
                        "language");
    } else {
        const std::string pack_lang = l.variant.rfind("french", 0) == 0 ? "fr" : l.variant.rfind("english", 0) == 0 ? "en" : "";
        if (!pack_lang.empty() && request.language != pack_lang)
            return fail(ErrorCode::InvalidInput,
                        "language '" + request.language + "' is not supported by this Pocket TTS voice pack (" + l.variant + ")",
                        "language");
        if (request.speaker_clip.empty())
            return fail(ErrorCode::InvalidInput, "Pocket TTS needs a voice sample to speak (set the character's voice clip)",
                        "speaker_clip");
    }

    mtmd_bitmap* speaker = nullptr;
    if (!request.speaker_clip.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(request.speaker_clip, ec))
            return fail(ErrorCode::Io, "voice sample " + request.speaker_clip + " not found", "speaker_clip");
        const auto size = fs::file_size(request.speaker_clip, ec);
        const auto mtime = fs::last_write_time(request.speaker_clip, ec).time_since_epoch().count();
        const std::string key = request.speaker_clip + "\n" + std::to_string(size) + "\n" + std::to_string(mtime);
        if (!l.speaker || l.speaker_key != key) {
            auto wrapper = mtmd_helper_bitmap_init_from_file(l.mtmd.get(), request.speaker_clip.c_str(), false,
                                                             mtmd_helper_init_opt_default());
            if (!wrapper.bitmap)
                return fail(ErrorCode::InvalidInput, "voice sample " + request.speaker_clip + " is not audio this engine can read",
                            "speaker_clip");
            l.speaker.reset(wrapper.bitmap);
            l.speaker_key = key;
            m_speaker_loads.fetch_add(1);
        }
        speaker = l.speaker.get();
    }

    auto cancelled = [&] { return request.cancel && request.cancel->load(); };
    const int n_batch = static_cast<int>(llama_n_batch(l.ctx.get()));
    const int n_embd = llama_model_n_embd(l.model.get());
    Audio audio;
    audio.sample_rate = l.sample_rate;
    for (size_t si = 0; si < sentences.size(); ++si) {
        const std::string& sentence = sentences[si];
        llama_memory_clear(llama_get_memory(l.ctx.get()), true);
        mtmd_helper_gen_audio_inp inp{};
        inp.seq_id = 0;
        inp.prompt = sentence.c_str();
        inp.prompt_len = sentence.size();
        inp.speaker_ref = speaker;
        inp.lang = qwen ? lang.c_str() : nullptr;
        inp.top_k = kTopK;
        inp.top_p = kTopP;
        // Each sentence its own seed, so repeated sentences in one text do not sound identical.
        inp.seed = static_cast<uint32_t>(request.seed + si);
        inp.out_type = MTMD_HELPER_GEN_AUDIO_OUTTYPE_PCM;
        if (mtmd_helper_gen_audio_set_input(l.gen.get(), &inp) != 0)
            return fail(ErrorCode::Unavailable, "speech generation could not start (see the log)");
        for (;;) {
            if (cancelled()) return fail(ErrorCode::Unavailable, "speech synthesis cancelled");
            const int32_t left = mtmd_helper_gen_audio_step_prompt(l.gen.get(), n_batch);
            if (left < 0) return fail(ErrorCode::Unavailable, "speech generation failed on the prompt (see the log)");
            if (left == 0) break;
        }

        std::unique_ptr<llama_sampler, SamplerDeleter> sampler;
        if (qwen) {
            sampler.reset(llama_sampler_chain_init(llama_sampler_chain_default_params()));
            if (!l.suppress.empty())
                llama_sampler_chain_add(sampler.get(), llama_sampler_init_logit_bias(llama_vocab_n_tokens(vocab),
                                                                                   static_cast<int32_t>(l.suppress.size()),
                                                                                   l.suppress.data()));
            llama_sampler_chain_add(sampler.get(), llama_sampler_init_top_k(kTopK));
            llama_sampler_chain_add(sampler.get(), llama_sampler_init_top_p(kTopP, 1));
            llama_sampler_chain_add(sampler.get(), llama_sampler_init_temp(kTemperature));
            llama_sampler_chain_add(sampler.get(), llama_sampler_init_dist(inp.seed));
        }
        // Qwen3 samples a codec token per frame; Pocket TTS has none (the flow net reads the state).
        auto next_token = [&]() -> llama_token {
            return sampler ? llama_sampler_sample(sampler.get(), l.ctx.get(), -1) : LLAMA_TOKEN_NULL;
        };

        // The frames must fit in the context after the prompt (and the voice rows) just decoded.
        const int room = static_cast<int>(kContextSize) - 8 -
                         static_cast<int>(llama_memory_seq_pos_max(llama_get_memory(l.ctx.get()), 0));
        const int cap = std::max(1, std::min(max_frames(sentence), room));
        llama_token token = next_token();
        const float* state = llama_get_embeddings_ith(l.ctx.get(), -1);
        if (!state || n_embd <= 0) return fail(ErrorCode::Unavailable, "the speech model gave no hidden state");
        int frames = 0;
        bool stop = false;
        while (!stop && frames < cap) {
            if (cancelled()) return fail(ErrorCode::Unavailable, "speech synthesis cancelled");
            const float* next = nullptr;
            if (mtmd_helper_gen_audio_step_gen(l.gen.get(), token, state, &next, &stop) != 0)
                return fail(ErrorCode::Unavailable, "speech generation failed at frame " + std::to_string(frames));
            if (!next) break;
            ++frames;
            state = next;
            token = next_token();
        }

        int32_t rate = 0;
        const char* data = nullptr;
        size_t bytes = 0;
        int64_t n_samples = 0;
        if (mtmd_helper_gen_audio_get_output(l.gen.get(), &rate, &data, &bytes, &n_samples) != 0)
            return fail(ErrorCode::Unavailable, "the vocoder failed (see the log)");
        if (rate > 0) audio.sample_rate = rate;
        const auto* pcm = reinterpret_cast<const float*>(data);
        const size_t n = bytes / sizeof(float);
        audio.samples.reserve(audio.samples.size() + n);
        for (size_t i = 0; i < n; ++i) {
            const float v = std::clamp(pcm[i], -1.0f, 1.0f);
            audio.samples.push_back(static_cast<int16_t>(std::lround(v * 32767.0f)));
        }
        log::debug("speech: sentence ", si + 1, "/", sentences.size(), ": ", frames, " frames, ", n, " samples");
    }
    return audio;
}

}  // namespace mc::voice
