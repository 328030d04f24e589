// voice/tts_service: picks and keeps the speech engines the settings name, turns a character's voice
// (its `voice` object) into a synthesis request, and speaks a chat turn's sentences in order while
// the model is still writing (TurnSpeaker, the chat service's SpeechSink).
// Thread safety: all public members may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "chat/chat_service.hpp"
#include "core/json.hpp"
#include "core/result.hpp"
#include "core/settings.hpp"
#include "store/blob_store.hpp"
#include "store/types.hpp"
#include "voice/tts_engine.hpp"

namespace mc::voice {

inline constexpr const char* kEngineNames[] = {"espeak", "embedded", "http"};

// A character's voice, as stored in its `voice` object. Empty strings mean "the settings' default".
struct VoiceSpec {
    std::string engine;    // espeak | embedded | http | "" (media.tts_engine)
    std::string voice;     // espeak voice ("de+f3"), HTTP server voice ("af_bella"), or "" (engine default)
    std::string language;  // ISO 639-1 ("de"); "" → "en"
    double speed = 1.0;    // 0.5 .. 2.0
    int pitch = 50;        // 0 .. 99 (espeak)
    bool clone = false;    // Clone the character's voice sample (embedded engine).
    bool convert = true;   // Convert with the character's trained RVC model, when it has one.
};

// Reads and checks a `voice` object (unknown keys are kept by the caller but ignored here).
// Errors: InvalidInput naming the field ("voice.speed").
Result<VoiceSpec> voice_spec_from_json(const Json& voice);

class TtsService {
public:
    TtsService(SettingsStore& settings, store::BlobStore& blobs, std::string data_dir);
    ~TtsService();

    bool enabled() const;
    // The longest text one request may speak (media.tts_max_chars).
    size_t max_chars() const;
    // Speaks `text` as `character` would (its voice, merged over by `override_spec` when given).
    // Emotes, markup and image tags are removed first; nothing left is InvalidInput. Errors: TooLarge
    // (text), InvalidInput (voice, language: field named), Unavailable (engine: why and the fix).
    Result<Audio> speak(const Character* character, const std::optional<Json>& override_voice, const std::string& text,
                        std::shared_ptr<std::atomic<bool>> cancel = nullptr);
    // /api/health's "tts" component: the default engine's state plus each engine's.
    Json health();
    // The chat service's speaker: a TurnSpeaker per turn.
    chat::SpeakerFactory speaker_factory();
    // Installed espeak-ng voices and variants (for the editor's picker).
    Json voices();

    struct Prepared {
        std::shared_ptr<TtsEngine> engine;
        TtsRequest request;
        std::string rvc_model;  // Non-empty: each sentence is converted with this model.
    };
    // The engine and request for `character` (+ overrides); the text is filled in by the caller.
    Result<Prepared> prepare(const Character* character, const std::optional<Json>& override_voice);
    // Converts synthesized audio with an RVC model (media.vc_command). Errors: see rvc_convert.
    Result<Audio> convert(const std::string& model, const Audio& audio, std::shared_ptr<std::atomic<bool>> cancel);
    // Stores audio as a WAV blob and returns its URL (/api/media/audio/<name>.wav).
    Result<std::string> store_audio(const Audio& audio);

private:
    std::shared_ptr<TtsEngine> engine_named(const std::string& name, const Settings& s);
    std::string resolve(const std::string& path) const;

    SettingsStore& m_settings;
    store::BlobStore& m_blobs;
    std::string m_data_dir;
    std::mutex m_mu;  // Guards the cached engines and their keys below.
    std::shared_ptr<TtsEngine> m_espeak;
    std::string m_espeak_key;
    std::shared_ptr<TtsEngine> m_embedded;
    std::string m_embedded_key;
};

// The URL a stored blob is served at.
std::string media_url(const std::string& blob_name);

}  // namespace mc::voice
