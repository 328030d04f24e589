// voice/embedded_tts: the in-process text-to-speech engine "embedded": llama.cpp's libmtmd speech
// generation (Qwen3-TTS or Pocket TTS: a backbone GGUF plus an mmproj GGUF), loaded once on first
// use and kept; one generation per sentence; 24 kHz mono 16-bit output. The only voice file that
// includes llama.h.
// Thread safety: synthesize(), load() and health() may be called from any thread; one synthesis
// runs at a time (an internal mutex guards the loaded model and contexts).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "voice/tts_engine.hpp"

namespace mc::voice {

class EmbeddedTts : public TtsEngine {
public:
    // threads <= 0: every hardware thread.
    // gpu_layers: layers of the backbone on a GPU (GPU builds); -1 = all, 0 = none.
    EmbeddedTts(std::string model_path, std::string mmproj_path, int threads, int gpu_layers = 0);
    ~EmbeddedTts() override;
    EmbeddedTts(const EmbeddedTts&) = delete;
    EmbeddedTts& operator=(const EmbeddedTts&) = delete;

    std::string name() const override { return "embedded"; }
    // Errors: InvalidInput (empty text; field "text"; unsupported language, field "language"; Pocket
    // TTS without a voice sample, field "speaker_clip"), Unavailable (model missing or not a TTS
    // model, generation failed, cancelled), Io (the voice sample cannot be read).
    Result<Audio> synthesize(const TtsRequest& request) override;
    // "ok" when loaded, or when both files exist and are a TTS pair (checked from their GGUF headers,
    // without loading); "unavailable" with the problem and the fix otherwise.
    TtsHealth health() override;
    // Loads the model and the mmproj now (synthesize() does it on first use). Errors: Unavailable.
    Result<void> load();

    // The most frames (12.5 per second) one generation of `text` may produce: random or confused
    // weights that never emit end-of-speech stop there.
    static int max_frames(std::string_view text);
    // How many times a voice sample was read and decoded (once per sample file, not per sentence).
    int speaker_loads() const { return m_speaker_loads.load(); }

private:
    struct Loaded;
    Result<void> load_locked();

    const std::string m_model_path;
    const std::string m_mmproj_path;
    const int m_threads;
    const int m_gpu_layers;
    std::mutex m_mu;                  // Guards m_loaded and m_load_error; held for a whole synthesis.
    std::unique_ptr<Loaded> m_loaded;  // Model, contexts and generation helper once loaded.
    std::string m_load_error;         // Why the last load failed (health reports it).
    std::atomic<int> m_speaker_loads{0};
};

}  // namespace mc::voice
