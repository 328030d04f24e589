// voice/tts_engine: the one interface every text-to-speech engine implements (espeak-ng as a child
// process, llama.cpp's libmtmd speech generation in-process, an OpenAI-compatible HTTP server), and
// the audio type they return.
// Thread safety: every engine's synthesize() and health() may be called from any thread; an engine
// serializes internally what it cannot run in parallel.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mc::voice {

// Mono 16-bit PCM.
struct Audio {
    int sample_rate = 0;
    std::vector<int16_t> samples;
    double seconds() const { return sample_rate > 0 ? static_cast<double>(samples.size()) / sample_rate : 0.0; }
};

struct TtsRequest {
    std::string text;              // Plain text to speak (emotes and markup already removed).
    std::string voice;             // Engine-specific voice name ("de+f3", "af_bella"); empty: default.
    std::string language = "en";  // ISO 639-1 ("en", "de", ...).
    double speed = 1.0;            // 0.5 .. 2.0
    int pitch = 50;                // 0 .. 99 (espeak only).
    std::string speaker_clip;      // Absolute path of a voice sample to clone (embedded only); empty: none.
    uint64_t seed = 42;
    std::shared_ptr<std::atomic<bool>> cancel;  // Optional: set to stop early (the result is then Unavailable).
};

// What /api/health shows for an engine: usable or not, and the fix when not.
struct TtsHealth {
    std::string state;  // "ok" | "unavailable" | "disabled"
    std::string detail; // Why not, and what to do about it.
};

class TtsEngine {
public:
    virtual ~TtsEngine() = default;
    virtual std::string name() const = 0;  // "espeak" | "embedded" | "http"
    // Errors: InvalidInput (unknown voice or language, empty text; field named), Unavailable
    // (engine missing, server down, model not a TTS model: message says why), Io.
    virtual Result<Audio> synthesize(const TtsRequest& request) = 0;
    virtual TtsHealth health() = 0;
};

}  // namespace mc::voice
