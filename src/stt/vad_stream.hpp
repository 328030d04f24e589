// stt/vad_stream: voice activity on a live stream (a voice call). VadModel gives one speech
// probability per 32 ms window — whisper.cpp's Silero VAD with its LSTM state carried from window to
// window, or loudness when no VAD model is set — and UtteranceSegmenter turns those probabilities
// into "speech started" and "utterance ended" with the utterance's audio.
// Thread safety: one stream, one thread; each object belongs to its call.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"

struct whisper_vad_context;

namespace mc::stt {

inline constexpr int kVadWindow = 512;  // Samples per window at 16 kHz: 32 ms (Silero's window).

class VadModel {
public:
    ~VadModel();
    VadModel(const VadModel&) = delete;
    VadModel& operator=(const VadModel&) = delete;
    // `path` empty: loudness above a whisper of noise (-50 dBFS) counts as speech. Errors:
    // Unavailable naming the file and the fix.
    static Result<std::unique_ptr<VadModel>> open(const std::string& path, int threads);
    // The probability that `window` (kVadWindow samples, 16 kHz) holds speech.
    float probability(const float* window);
    // Forgets the stream so far (between utterances, Silero's own advice for streaming).
    void reset();
    bool is_model() const { return m_ctx != nullptr; }

private:
    VadModel() = default;
    whisper_vad_context* m_ctx = nullptr;
};

struct SegmenterOptions {
    float threshold = 0.5f;       // Probability at or above which a window is speech.
    int min_speech_ms = 160;      // Speech must last this long to count (a cough or click does not).
    int silence_ms = 600;         // This much silence after speech ends the utterance.
    int max_utterance_ms = 30000; // An utterance is cut here (someone who never pauses).
    int pad_ms = 250;             // Audio kept before the speech began (its first sound).
};

struct VadEvent {
    enum class Kind { SpeechStart, UtteranceEnd } kind;
    int64_t at_ms = 0;           // Position in the stream: where speech began / where it ended.
    int64_t duration_ms = 0;     // UtteranceEnd: length of `samples`.
    bool cut = false;            // UtteranceEnd: max_utterance_ms was reached.
    std::vector<float> samples;  // UtteranceEnd: the utterance's audio (16 kHz).
};

class UtteranceSegmenter {
public:
    explicit UtteranceSegmenter(SegmenterOptions options);
    // One window: its kVadWindow samples and their speech probability.
    std::vector<VadEvent> push(const float* window, float probability);
    bool in_speech() const { return m_state == State::Speech; }
    int64_t position_ms() const;

private:
    enum class State { Idle, Rising, Speech };
    SegmenterOptions m_opt;
    State m_state = State::Idle;
    int64_t m_windows = 0;          // Windows seen.
    int64_t m_speech_windows = 0;   // Rising: consecutive speech windows.
    int64_t m_silent_windows = 0;   // Speech: consecutive silent windows.
    int64_t m_start_window = 0;     // Where the current speech began.
    std::deque<std::vector<float>> m_preroll;  // Idle/Rising: the last windows (pad + rising).
    std::vector<float> m_utterance;            // Speech: audio so far.
};

}  // namespace mc::stt
