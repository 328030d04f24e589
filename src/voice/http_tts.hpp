// voice/http_tts: any OpenAI-compatible speech server (Kokoro-FastAPI, Orpheus-FastAPI,
// openedai-speech, LocalAI, the seed's own TTS server): POST {url}/v1/audio/speech, WAV back.
// Thread safety: immutable after construction; safe from any thread.
#pragma once

#include <string>

#include "voice/tts_engine.hpp"

namespace mc::voice {

struct HttpTtsOptions {
    std::string base_url;  // "http://host:port" or ".../v1".
    std::string model = "tts-1";
    std::string voice;     // Used when the request names none.
    std::string api_key;
    int connect_timeout_ms = 2000;  // A server that is down is reported within this.
    int read_timeout_ms = 60000;
};

class HttpTts : public TtsEngine {
public:
    explicit HttpTts(HttpTtsOptions options);
    std::string name() const override { return "http"; }
    Result<Audio> synthesize(const TtsRequest& request) override;
    // Asks the server's /v1/models (any answer counts as reachable).
    TtsHealth health() override;

private:
    HttpTtsOptions m_opt;
};

}  // namespace mc::voice
