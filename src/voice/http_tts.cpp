#include "voice/http_tts.hpp"

#include <algorithm>

#include "core/json.hpp"
#include "core/text.hpp"
#include "http/client.hpp"
#include "voice/wav.hpp"

namespace mc::voice {
namespace {

constexpr size_t kMaxAudioBytes = 64u << 20;


}  // namespace

HttpTts::HttpTts(HttpTtsOptions options) : m_opt(std::move(options)) {
    if (m_opt.base_url.size() > 3 && m_opt.base_url.ends_with("/v1")) m_opt.base_url.resize(m_opt.base_url.size() - 3);
    while (!m_opt.base_url.empty() && m_opt.base_url.back() == '/') m_opt.base_url.pop_back();
}

Result<Audio> HttpTts::synthesize(const TtsRequest& request) {
    if (trim(request.text).empty()) return fail(ErrorCode::InvalidInput, "there is nothing to speak", "text");
    if (m_opt.base_url.empty()) return fail(ErrorCode::Unavailable, "no TTS server URL is set (media.tts_url)");
    const std::string voice = request.voice.empty() ? m_opt.voice : request.voice;
    Json body = {{"model", m_opt.model}, {"input", request.text}, {"response_format", "wav"},
                 {"speed", std::clamp(request.speed, 0.25, 4.0)}};
    if (!voice.empty()) body["voice"] = voice;
    if (!request.language.empty()) body["language"] = request.language;  // Ignored by servers that do not know it.
    http::ClientOptions co;
    co.connect_timeout_ms = m_opt.connect_timeout_ms;
    co.read_timeout_ms = m_opt.read_timeout_ms;
    if (!m_opt.api_key.empty()) co.headers.emplace_back("Authorization", std::string("Bearer ") + m_opt.api_key);
    std::string audio_bytes;
    bool too_large = false;
    auto r = http::fetch("POST", m_opt.base_url, "/v1/audio/speech", body.dump(), "application/json", co,
                         [&](std::string_view piece) {
                             if (request.cancel && request.cancel->load()) return false;
                             if (audio_bytes.size() + piece.size() > kMaxAudioBytes) {
                                 too_large = true;
                                 return false;
                             }
                             audio_bytes.append(piece);
                             return true;
                         });
    if (too_large) return fail(ErrorCode::Unavailable, "the TTS server sent more than 64 MB of audio");
    if (request.cancel && request.cancel->load()) return fail(ErrorCode::Unavailable, "cancelled");
    if (!r) return fail(ErrorCode::Unavailable, "TTS server: " + r.error().message);
    if (r->status == 400 || r->status == 404 || r->status == 422) {
        // Usually an unknown voice or model: the caller's choice, named.
        return fail(ErrorCode::InvalidInput,
                    "the TTS server refused voice '" + voice + "' / model '" + m_opt.model + "': " + http::server_error_text(r->body),
                    "voice");
    }
    if (r->status < 200 || r->status >= 300) {
        return fail(ErrorCode::Unavailable, "the TTS server answered HTTP " + std::to_string(r->status) + ": " + http::server_error_text(r->body));
    }
    auto audio = parse_wav(audio_bytes);
    if (!audio) {
        return fail(ErrorCode::Unavailable, "the TTS server did not send WAV audio (" + audio.error().message +
                                                "; Content-Type " + (r->content_type.empty() ? std::string("none") : r->content_type) + ")");
    }
    return audio;
}

TtsHealth HttpTts::health() {
    if (m_opt.base_url.empty()) return {"unavailable", "no TTS server URL is set: set media.tts_url"};
    http::ClientOptions co;
    co.connect_timeout_ms = m_opt.connect_timeout_ms;
    co.read_timeout_ms = 2000;
    if (!m_opt.api_key.empty()) co.headers.emplace_back("Authorization", std::string("Bearer ") + m_opt.api_key);
    auto r = http::fetch("GET", m_opt.base_url, "/v1/models", "", "", co);
    if (!r) return {"unavailable", r.error().message + " — start the TTS server or fix media.tts_url"};
    return {"ok", "TTS server at " + m_opt.base_url + " (model " + m_opt.model + ")"};
}

}  // namespace mc::voice
