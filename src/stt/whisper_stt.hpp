// stt/whisper_stt: speech recognition in-process with whisper.cpp (built against llama.cpp's ggml),
// with its Silero voice activity detector cutting away silence first: only the speech regions are
// recognized (silence alone gives an empty transcript without running the model), long recordings
// are split at pauses, and each region is one segment with its times in the recording.
// Thread safety: transcribe() and health() may be called from any thread; one recognition runs at a
// time (a whisper context holds one decoding state).
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "stt/stt_engine.hpp"
#include "stt/whisper_files.hpp"

struct whisper_context;
struct whisper_vad_context;

namespace mc::stt {

struct WhisperOptions {
    std::string model_path;  // Absolute path of a ggml Whisper model (ggml-base.bin, ...).
    std::string vad_path;    // Absolute path of a Silero VAD model; empty: no VAD (energy check only).
    int threads = 0;         // 0: the machine's cores (at most 8).
    float vad_threshold = 0.5f;
    double max_region_s = 30;  // A region of speech longer than this is split.
    bool use_gpu = true;       // A GPU build (make run GPU=...) runs recognition there.
};

// Sends whisper.cpp's messages to our log (its chatter at debug level), once per process.
void route_whisper_log();

class WhisperStt : public SttEngine {
public:
    explicit WhisperStt(WhisperOptions options);
    ~WhisperStt() override;
    std::string name() const override { return "embedded"; }
    Result<Transcript> transcribe(const SttRequest& request) override;
    SttHealth health() override;
    // Loads the models now (the first transcription does it otherwise). Errors as transcribe().
    Result<void> load();

    // whisper.cpp and the ggml version it is built with ("1.9.3").
    static std::string version();

private:
    Result<void> load_locked();

    WhisperOptions m_opt;
    std::mutex m_mu;  // Guards the two contexts: loading them, and one recognition at a time.
    whisper_context* m_ctx = nullptr;
    whisper_vad_context* m_vad = nullptr;
    mutable std::mutex m_state_mu;  // Guards m_info (set once loaded), read by health() while a recognition runs.
    std::optional<WhisperModelInfo> m_info;
};

}  // namespace mc::stt
