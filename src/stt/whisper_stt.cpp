#include "stt/whisper_stt.hpp"

#include <whisper.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "core/log.hpp"
#include "core/text.hpp"
#include "stt/audio_decode.hpp"

namespace mc::stt {
namespace {

void forward_log(ggml_log_level level, const char* text, void*) {
    std::string_view t(text ? text : "");
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
    if (t.empty()) return;
    if (level == GGML_LOG_LEVEL_ERROR) log::error("whisper.cpp: ", t);
    else if (level == GGML_LOG_LEVEL_WARN) log::warn("whisper.cpp: ", t);
    else log::debug("whisper.cpp: ", t);
}

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// Root mean square of a stretch of samples.
double rms(const float* s, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += static_cast<double>(s[i]) * s[i];
    return n ? std::sqrt(sum / static_cast<double>(n)) : 0.0;
}

struct Region {
    size_t start = 0;  // Samples.
    size_t end = 0;
};

// Without a VAD model: the stretch from the first to the last 30 ms window louder than a whisper
// of noise (-50 dBFS), or nothing.
std::vector<Region> energy_regions(const std::vector<float>& s) {
    constexpr size_t kWin = 480;
    size_t first = SIZE_MAX, last = 0;
    for (size_t i = 0; i + 1 <= s.size(); i += kWin) {
        const size_t n = std::min(kWin, s.size() - i);
        if (rms(s.data() + i, n) > 0.00316) {
            first = std::min(first, i);
            last = i + n;
        }
    }
    if (first == SIZE_MAX) return {};
    return {{first, last}};
}

}  // namespace

void route_whisper_log() {
    static std::once_flag once;
    std::call_once(once, [] { whisper_log_set(forward_log, nullptr); });
}

WhisperStt::WhisperStt(WhisperOptions options) : m_opt(std::move(options)) { route_whisper_log(); }

WhisperStt::~WhisperStt() {
    if (m_vad) whisper_vad_free(m_vad);
    if (m_ctx) whisper_free(m_ctx);
}

std::string WhisperStt::version() { return whisper_version(); }

Result<void> WhisperStt::load() {
    std::lock_guard lock(m_mu);
    return load_locked();
}

Result<void> WhisperStt::load_locked() {
    if (m_ctx) return {};
    // Not remembered: the next request tries again (the person may have put the file in place).
    auto remember = [](Error e) { return std::unexpected(std::move(e)); };
    if (m_opt.model_path.empty()) {
        return remember({ErrorCode::Unavailable, "no Whisper model is set: put a ggml Whisper model (ggml-base.bin) in data/models/stt/ and set stt.model_path", ""});
    }
    // whisper.cpp's loader trusts the file: its structure is checked first.
    auto info = inspect_whisper_model(m_opt.model_path);
    if (!info) {
        const bool missing = info.error().code == ErrorCode::NotFound;
        return remember({ErrorCode::Unavailable,
                         missing ? "no Whisper model at " + m_opt.model_path +
                                       ": download a ggml Whisper model (ggml-base.bin, ggml-large-v3-turbo.bin) there or set stt.model_path"
                                 : info.error().message + " (stt.model_path)",
                         ""});
    }
    whisper_context_params cp = whisper_context_default_params();
    cp.use_gpu = m_opt.use_gpu;
    whisper_context* ctx = whisper_init_from_file_with_params(m_opt.model_path.c_str(), cp);
    if (!ctx) return remember({ErrorCode::Unavailable, "whisper.cpp could not load " + file_name(m_opt.model_path) + " (details in the server log)", ""});
    whisper_vad_context* vad = nullptr;
    if (!m_opt.vad_path.empty()) {
        if (auto v = inspect_vad_model(m_opt.vad_path); !v) {
            whisper_free(ctx);
            const bool missing = v.error().code == ErrorCode::NotFound;
            return remember({ErrorCode::Unavailable,
                             missing ? "no VAD model at " + m_opt.vad_path +
                                           ": download ggml-silero-v5.1.2.bin there, or set stt.vad_model_path to \"\" to go without"
                                     : v.error().message + " (stt.vad_model_path)",
                             ""});
        }
        whisper_vad_context_params vp = whisper_vad_default_context_params();
        vp.n_threads = 1;
        vp.use_gpu = m_opt.use_gpu;
        vad = whisper_vad_init_from_file_with_params(m_opt.vad_path.c_str(), vp);
        if (!vad) {
            whisper_free(ctx);
            return remember({ErrorCode::Unavailable, "whisper.cpp could not load the VAD model " + file_name(m_opt.vad_path) + " (details in the server log)", ""});
        }
    }
    m_ctx = ctx;
    m_vad = vad;
    {
        std::lock_guard state(m_state_mu);
        m_info = *info;
    }
    log::info("speech-to-text: loaded ", file_name(m_opt.model_path), " (", info->type, ", ",
              info->multilingual ? "multilingual" : "English only", ")", vad ? " with VAD " + file_name(m_opt.vad_path) : std::string());
    return {};
}

Result<Transcript> WhisperStt::transcribe(const SttRequest& req) {
    std::lock_guard lock(m_mu);
    // Waited for the one recognition before this one: its client may have gone meanwhile.
    if (req.cancel && req.cancel->load()) return fail(ErrorCode::Unavailable, "cancelled");
    if (auto l = load_locked(); !l) return std::unexpected(l.error());
    const auto t0 = std::chrono::steady_clock::now();
    Transcript out;
    out.duration = static_cast<double>(req.samples.size()) / kSampleRate;
    std::string lang = req.language.empty() ? "auto" : req.language;
    const WhisperModelInfo info = *m_info;  // Written once, before m_ctx was set, under this lock too.
    if (!info.multilingual) {
        if (lang != "auto" && lang != "en") {
            return fail(ErrorCode::InvalidInput,
                        "the Whisper model " + file_name(m_opt.model_path) + " is English-only and cannot transcribe language '" + lang +
                            "': use a multilingual model (a file name without .en, such as ggml-base.bin) or language en",
                        "language");
        }
        lang = "en";
    } else if (lang != "auto" && whisper_lang_id(lang.c_str()) < 0) {
        return fail(ErrorCode::InvalidInput, "Whisper does not know language '" + lang + "'", "language");
    }
    out.language = lang == "auto" ? "" : lang;

    // Where the speech is.
    std::vector<Region> regions;
    if (m_vad) {
        whisper_vad_params vp = whisper_vad_default_params();
        vp.threshold = m_opt.vad_threshold;
        vp.max_speech_duration_s = static_cast<float>(m_opt.max_region_s);
        whisper_vad_segments* segs =
            whisper_vad_segments_from_samples(m_vad, vp, req.samples.data(), static_cast<int>(req.samples.size()));
        if (!segs) return fail(ErrorCode::Unavailable, "the voice activity detector failed (details in the server log)");
        for (int i = 0; i < whisper_vad_segments_n_segments(segs); ++i) {
            // Centiseconds.
            const auto a = static_cast<size_t>(std::max(0.0f, whisper_vad_segments_get_segment_t0(segs, i)) * kSampleRate / 100);
            const auto b = static_cast<size_t>(std::max(0.0f, whisper_vad_segments_get_segment_t1(segs, i)) * kSampleRate / 100);
            if (b > a) regions.push_back({std::min(a, req.samples.size()), std::min(b, req.samples.size())});
        }
        whisper_vad_free_segments(segs);
    } else {
        regions = energy_regions(req.samples);
    }
    for (const auto& r : regions) out.speech_seconds += static_cast<double>(r.end - r.start) / kSampleRate;

    const int threads = m_opt.threads > 0 ? m_opt.threads : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
    for (const auto& r : regions) {
        if (req.cancel && req.cancel->load()) return fail(ErrorCode::Unavailable, "cancelled");
        // whisper.cpp skips input shorter than a second: pad short regions with silence.
        std::vector<float> audio(req.samples.begin() + static_cast<std::ptrdiff_t>(r.start), req.samples.begin() + static_cast<std::ptrdiff_t>(r.end));
        if (audio.size() < kSampleRate * 11 / 10) audio.resize(kSampleRate * 11 / 10, 0.0f);
        whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
        p.n_threads = threads;
        p.print_progress = false;
        p.print_realtime = false;
        p.print_timestamps = false;
        p.print_special = false;
        p.no_context = true;
        p.language = lang.c_str();
        p.initial_prompt = req.prompt.empty() ? nullptr : req.prompt.c_str();
        p.suppress_blank = true;
        if (req.cancel) {
            p.abort_callback = [](void* flag) { return static_cast<std::atomic<bool>*>(flag)->load(); };
            p.abort_callback_user_data = req.cancel.get();
        }
        const int rc = whisper_full(m_ctx, p, audio.data(), static_cast<int>(audio.size()));
        if (req.cancel && req.cancel->load()) return fail(ErrorCode::Unavailable, "cancelled");
        if (rc != 0) return fail(ErrorCode::Unavailable, "whisper.cpp failed to transcribe (code " + std::to_string(rc) + ", details in the server log)");
        std::string text;
        for (int i = 0; i < whisper_full_n_segments(m_ctx); ++i) text += whisper_full_get_segment_text(m_ctx, i);
        text = trim(sanitize_utf8(text));
        if (out.language.empty()) {
            const int id = whisper_full_lang_id(m_ctx);
            if (id >= 0) out.language = whisper_lang_str(id);
        }
        if (text.empty()) continue;
        out.segments.push_back({static_cast<double>(r.start) / kSampleRate, static_cast<double>(r.end) / kSampleRate, text});
        if (!out.text.empty()) out.text += ' ';
        out.text += text;
    }
    if (out.language.empty()) out.language = lang == "auto" ? (info.multilingual ? "" : "en") : lang;
    out.decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

SttHealth WhisperStt::health() {
    const std::string model = m_opt.model_path.empty() ? "" : file_name(m_opt.model_path);
    {
        std::lock_guard state(m_state_mu);
        if (m_info) {
            return {"ready",
                    "whisper.cpp " + std::string(whisper_version()) + ", model " + model + " (" + m_info->type + ", " +
                        (m_info->multilingual ? "multilingual" : "English only") + ")" +
                        (!m_opt.vad_path.empty() ? ", VAD " + file_name(m_opt.vad_path) : std::string(", no VAD model (silence is cut by loudness)")),
                    model};
        }
    }
    if (m_opt.model_path.empty()) return {"not_configured", "no Whisper model is set: set stt.model_path", model};
    auto info = inspect_whisper_model(m_opt.model_path);
    if (!info) {
        if (info.error().code == ErrorCode::NotFound) {
            return {"not_configured",
                    "no Whisper model at " + m_opt.model_path +
                        ": download a ggml Whisper model (ggml-base.bin; ggml-large-v3-turbo.bin for best German) there or set stt.model_path",
                    model};
        }
        return {"error", info.error().message + " (stt.model_path)", model};
    }
    if (!m_opt.vad_path.empty()) {
        if (auto v = inspect_vad_model(m_opt.vad_path); !v) {
            if (v.error().code == ErrorCode::NotFound) {
                return {"error", "no VAD model at " + m_opt.vad_path + ": download ggml-silero-v5.1.2.bin there, or set stt.vad_model_path to \"\"", model};
            }
            return {"error", v.error().message + " (stt.vad_model_path)", model};
        }
    }
    return {"ready",
            "whisper.cpp " + std::string(whisper_version()) + ", model " + model + " (" + info->type + ", " +
                (info->multilingual ? "multilingual" : "English only") + "; loads on first use)",
            model};
}

}  // namespace mc::stt
