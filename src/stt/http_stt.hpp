// stt/http_stt: speech recognition by an OpenAI-compatible server (faster-whisper-server,
// whisper.cpp's server, LocalAI): POST <url>/v1/audio/transcriptions, multipart, the recording sent
// as 16 kHz WAV.
// Thread safety: every call is independent.
#pragma once

#include <string>

#include "stt/stt_engine.hpp"

namespace mc::stt {

struct HttpSttOptions {
    std::string base_url;  // "http://127.0.0.1:8080" (a trailing /v1 is dropped).
    std::string api_key;
    std::string model = "whisper-1";
    int connect_timeout_ms = 2000;
    int read_timeout_ms = 600000;
};

class HttpStt : public SttEngine {
public:
    explicit HttpStt(HttpSttOptions options);
    std::string name() const override { return "http"; }
    Result<Transcript> transcribe(const SttRequest& request) override;
    SttHealth health() override;

    // The multipart/form-data body of a transcription request (also used by tests and bench/).
    static std::string multipart(const std::string& boundary, const std::string& wav, const std::string& model,
                                 const std::string& language, const std::string& prompt, const std::string& response_format);

private:
    HttpSttOptions m_opt;
};

}  // namespace mc::stt
