// Test helper: a stand-in for an OpenAI-compatible speech server (Kokoro-FastAPI, openedai-speech,
// LocalAI: POST /v1/audio/speech -> audio bytes, GET /v1/models), recording what it was asked to say.
// It runs in the test process on a free port; our real HTTP speech engine talks to it.
#pragma once

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace mc::test {

// A 16-bit mono WAV of `seconds` of a quiet tone.
inline std::string tone_wav(double seconds, int rate = 24000) {
    const uint32_t n = static_cast<uint32_t>(seconds * rate);
    std::string s = "RIFF";
    auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff)); };
    auto put16 = [&](uint16_t v) { s.push_back(static_cast<char>(v & 0xff)); s.push_back(static_cast<char>(v >> 8)); };
    put32(36 + n * 2);
    s += "WAVEfmt ";
    put32(16); put16(1); put16(1); put32(static_cast<uint32_t>(rate)); put32(static_cast<uint32_t>(rate) * 2); put16(2); put16(16);
    s += "data";
    put32(n * 2);
    for (uint32_t i = 0; i < n; ++i) put16(static_cast<uint16_t>(static_cast<int16_t>(3000 * std::sin(i * 0.05))));
    return s;
}

class StandinTts {
public:
    enum class Mode { Wav, Garbage, Error500 };
    explicit StandinTts(Mode mode = Mode::Wav) : m_mode(mode) {
        m_server.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(R"({"object":"list","data":[{"id":"kokoro","object":"model"}]})", "application/json");
        });
        m_server.Post("/v1/audio/speech", [this](const httplib::Request& req, httplib::Response& res) {
            const auto body = nlohmann::json::parse(req.body, nullptr, false);
            {
                std::lock_guard lock(m_mu);
                m_requests.push_back(body);
                m_auth.push_back(req.get_header_value("Authorization"));
            }
            if (body.value("voice", "") == "no_such_voice") {
                res.status = 400;
                res.set_content(R"({"detail":"Voice no_such_voice not found"})", "application/json");
                return;
            }
            switch (m_mode) {
                case Mode::Wav: {
                    // Length roughly proportional to the text, as a real voice.
                    const double seconds = 0.06 * static_cast<double>(body.value("input", "").size()) + 0.1;
                    res.set_content(tone_wav(seconds), "audio/wav");
                    break;
                }
                case Mode::Garbage: res.set_content("<html>not audio</html>", "text/html"); break;
                case Mode::Error500:
                    res.status = 500;
                    res.set_content(R"({"detail":"CUDA out of memory"})", "application/json");
                    break;
            }
        });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
    }
    ~StandinTts() {
        m_server.stop();
        m_thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    // What our engine asked it to say, in order.
    std::vector<nlohmann::json> requests() {
        std::lock_guard lock(m_mu);
        return m_requests;
    }
    std::vector<std::string> auth_headers() {
        std::lock_guard lock(m_mu);
        return m_auth;
    }

private:
    Mode m_mode;
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
    std::mutex m_mu;  // Guards m_requests and m_auth (handler threads write, the test reads).
    std::vector<nlohmann::json> m_requests;
    std::vector<std::string> m_auth;
};

}  // namespace mc::test
