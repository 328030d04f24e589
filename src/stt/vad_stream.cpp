#include "stt/vad_stream.hpp"

#include <whisper.h>

#include <cmath>
#include <filesystem>

#include "stt/whisper_files.hpp"
#include "stt/whisper_stt.hpp"

namespace mc::stt {
namespace {

constexpr int kWindowMs = kVadWindow * 1000 / 16000;  // 32

int windows_for(int ms) { return std::max(1, (ms + kWindowMs - 1) / kWindowMs); }

}  // namespace

VadModel::~VadModel() {
    if (m_ctx) whisper_vad_free(m_ctx);
}

Result<std::unique_ptr<VadModel>> VadModel::open(const std::string& path, int threads) {
    std::unique_ptr<VadModel> m(new VadModel());
    if (path.empty()) return m;
    if (auto v = inspect_vad_model(path); !v) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
            return fail(ErrorCode::Unavailable, "no VAD model at " + path +
                                                    ": download ggml-silero-v5.1.2.bin there, or set stt.vad_model_path to \"\" to go by loudness");
        }
        return fail(ErrorCode::Unavailable, v.error().message + " (stt.vad_model_path)");
    }
    route_whisper_log();
    whisper_vad_context_params p = whisper_vad_default_context_params();
    p.n_threads = threads > 0 ? threads : 1;
    p.use_gpu = false;  // One 32 ms window at a time: a GPU round trip costs more than the window.
    m->m_ctx = whisper_vad_init_from_file_with_params(path.c_str(), p);
    if (!m->m_ctx) return fail(ErrorCode::Unavailable, "whisper.cpp could not load the VAD model " + path + " (details in the server log)");
    return m;
}

float VadModel::probability(const float* window) {
    if (!m_ctx) {
        double sum = 0;
        for (int i = 0; i < kVadWindow; ++i) sum += static_cast<double>(window[i]) * window[i];
        const double rms = std::sqrt(sum / kVadWindow);
        return rms > 0.00316 ? 1.0f : 0.0f;  // -50 dBFS, as the recordings' loudness check.
    }
    if (!whisper_vad_detect_speech_no_reset(m_ctx, window, kVadWindow) || whisper_vad_n_probs(m_ctx) < 1) return 0.0f;
    return whisper_vad_probs(m_ctx)[0];
}

void VadModel::reset() {
    if (m_ctx) whisper_vad_reset_state(m_ctx);
}

UtteranceSegmenter::UtteranceSegmenter(SegmenterOptions options) : m_opt(options) {}

int64_t UtteranceSegmenter::position_ms() const { return m_windows * kWindowMs; }

std::vector<VadEvent> UtteranceSegmenter::push(const float* window, float probability) {
    std::vector<VadEvent> out;
    const int64_t here = m_windows++;
    const bool speech = probability >= m_opt.threshold;
    const size_t pad = static_cast<size_t>(windows_for(m_opt.pad_ms));
    if (m_state != State::Speech) {
        m_preroll.emplace_back(window, window + kVadWindow);
        if (speech) {
            if (m_state == State::Idle) {
                m_state = State::Rising;
                m_start_window = here;
                m_speech_windows = 0;
            }
            ++m_speech_windows;
        } else {
            m_state = State::Idle;
            m_speech_windows = 0;
        }
        // Keep the padding before the rising speech, and the rising speech itself.
        const size_t keep = pad + static_cast<size_t>(m_speech_windows);
        while (m_preroll.size() > keep) m_preroll.pop_front();
        if (m_state == State::Rising && m_speech_windows >= windows_for(m_opt.min_speech_ms)) {
            m_state = State::Speech;
            m_silent_windows = 0;
            m_utterance.clear();
            for (const auto& w : m_preroll) m_utterance.insert(m_utterance.end(), w.begin(), w.end());
            m_preroll.clear();
            out.push_back({VadEvent::Kind::SpeechStart, m_start_window * kWindowMs, 0, false, {}});
        }
        return out;
    }
    m_utterance.insert(m_utterance.end(), window, window + kVadWindow);
    m_silent_windows = speech ? 0 : m_silent_windows + 1;
    const bool ended = m_silent_windows >= windows_for(m_opt.silence_ms);
    const bool cut = !ended && static_cast<int64_t>(m_utterance.size()) * 1000 / 16000 >= m_opt.max_utterance_ms;
    if (ended || cut) {
        VadEvent e{VadEvent::Kind::UtteranceEnd, 0, 0, cut, {}};
        if (ended) {
            // The silence that ended it, bar a little padding, is not part of the utterance.
            const size_t trailing = static_cast<size_t>(std::max<int64_t>(0, m_silent_windows - static_cast<int64_t>(pad))) * kVadWindow;
            m_utterance.resize(m_utterance.size() - std::min(trailing, m_utterance.size()));
        }
        e.at_ms = (here + 1 - (ended ? m_silent_windows : 0)) * kWindowMs;
        e.duration_ms = static_cast<int64_t>(m_utterance.size()) * 1000 / 16000;
        e.samples = std::move(m_utterance);
        m_utterance.clear();
        m_state = State::Idle;
        m_speech_windows = 0;
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace mc::stt
