// stt/stt_engine: the one interface every speech-to-text engine implements (whisper.cpp in-process,
// an OpenAI-compatible /v1/audio/transcriptions server), and the transcript they return.
// Thread safety: transcribe() and health() may be called from any thread; an engine serializes
// internally what it cannot run in parallel.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mc::stt {

struct SttRequest {
    std::vector<float> samples;     // 16 kHz mono.
    std::string language = "auto";  // "auto" | ISO 639-1 ("de", "en").
    std::string prompt;             // Words that help spelling (names, recent words); may be empty.
    std::shared_ptr<std::atomic<bool>> cancel;  // Optional: set to stop early (the result is then Unavailable).
};

struct Segment {
    double start = 0;  // Seconds from the start of the recording.
    double end = 0;
    std::string text;
};

struct Transcript {
    std::string text;
    std::string language;  // What was spoken (detected or as asked).
    std::vector<Segment> segments;
    double duration = 0;        // Seconds of audio received.
    double speech_seconds = 0;  // Seconds the voice activity detector kept (= duration without one).
    double decode_ms = 0;       // Time spent recognizing (after decoding the file).
};

struct SttHealth {
    std::string state;   // "ready" | "not_configured" | "unavailable" | "error"
    std::string detail;  // What it is, or why not and what to do about it.
    std::string model;   // The model's file name ("" when none).
};

class SttEngine {
public:
    virtual ~SttEngine() = default;
    virtual std::string name() const = 0;  // "embedded" | "http"
    // Errors: InvalidInput (language the model cannot do: field "language"), Unavailable (no model,
    // a damaged model, server down: the message says why and the fix).
    virtual Result<Transcript> transcribe(const SttRequest& request) = 0;
    virtual SttHealth health() = 0;
};

}  // namespace mc::stt
