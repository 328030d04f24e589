// stt/stt_service: speech to text as the API uses it — decodes a recording (stt/audio_decode),
// picks and keeps the engine the settings name (stt.engine: embedded whisper.cpp, an HTTP server,
// or off), and reports its health with the fix when something is missing.
// Thread safety: all public members may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/json.hpp"
#include "core/result.hpp"
#include "core/settings.hpp"
#include "stt/audio_decode.hpp"
#include "stt/stt_engine.hpp"

namespace mc::stt {

struct SttOptions {
    std::string language;  // "" → stt.language; else auto | de | en.
    std::string prompt;    // ≤ 1000 bytes (checked by the caller).
    std::shared_ptr<std::atomic<bool>> cancel;
};

class SttService {
public:
    SttService(SettingsStore& settings, std::string data_dir);
    ~SttService();

    // Errors: as decode_audio (InvalidInput, UnsupportedMedia, TooLarge: field "file"), InvalidInput
    // for a language the model cannot do (field "language"), Unavailable (off, no model, server down).
    Result<Transcript> transcribe(std::string_view recording, const SttOptions& options);
    // The same for audio that is already 16 kHz mono.
    Result<Transcript> transcribe_pcm(std::vector<float> samples, const SttOptions& options);
    // /api/health's "stt" component: {"state","detail","engine","model",...}.
    Json health();
    // The longest recording transcribed (stt.max_seconds).
    double max_seconds() const;
    // The Silero VAD model file the settings name, when it exists ("" otherwise: go by loudness).
    std::string vad_model_path() const;

private:
    std::shared_ptr<SttEngine> engine(const Settings& s, std::string& vad_note);
    std::string resolve(const std::string& path) const;

    SettingsStore& m_settings;
    std::string m_data_dir;
    std::mutex m_mu;  // Guards the cached engine and its key.
    std::shared_ptr<SttEngine> m_engine;
    std::string m_key;
};

}  // namespace mc::stt
