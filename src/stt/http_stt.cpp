#include "stt/http_stt.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/json.hpp"
#include "core/text.hpp"
#include "http/client.hpp"
#include "stt/audio_decode.hpp"
#include "voice/wav.hpp"

namespace mc::stt {
namespace {


void add_field(std::string& b, const std::string& boundary, const std::string& name, const std::string& value) {
    b += "--";
    b += boundary;
    b += "\r\nContent-Disposition: form-data; name=\"";
    b += name;
    b += "\"\r\n\r\n";
    b += value;
    b += "\r\n";
}

}  // namespace

HttpStt::HttpStt(HttpSttOptions options) : m_opt(std::move(options)) {
    while (!m_opt.base_url.empty() && m_opt.base_url.back() == '/') m_opt.base_url.pop_back();
    if (m_opt.base_url.size() > 3 && m_opt.base_url.ends_with("/v1")) m_opt.base_url.resize(m_opt.base_url.size() - 3);
}

std::string HttpStt::multipart(const std::string& boundary, const std::string& wav, const std::string& model,
                               const std::string& language, const std::string& prompt, const std::string& response_format) {
    std::string b;
    b += "--";
    b += boundary;
    b += "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"speech.wav\"\r\nContent-Type: audio/wav\r\n\r\n";
    b += wav;
    b += "\r\n";
    add_field(b, boundary, "model", model);
    if (!language.empty() && language != "auto") add_field(b, boundary, "language", language);
    if (!prompt.empty()) add_field(b, boundary, "prompt", prompt);
    add_field(b, boundary, "response_format", response_format);
    b += "--";
    b += boundary;
    b += "--\r\n";
    return b;
}

Result<Transcript> HttpStt::transcribe(const SttRequest& req) {
    if (m_opt.base_url.empty()) return fail(ErrorCode::Unavailable, "no speech-to-text server URL is set: set stt.url");
    const auto t0 = std::chrono::steady_clock::now();
    voice::Audio a;
    a.sample_rate = kSampleRate;
    a.samples.resize(req.samples.size());
    for (size_t i = 0; i < a.samples.size(); ++i) {
        a.samples[i] = static_cast<int16_t>(std::lrint(std::clamp(req.samples[i], -1.0f, 1.0f) * 32767.0f));
    }
    const std::string boundary = "mycandy-" + random_hex(12);
    const std::string body = multipart(boundary, voice::encode_wav(a), m_opt.model, req.language, req.prompt, "verbose_json");
    http::ClientOptions co;
    co.connect_timeout_ms = m_opt.connect_timeout_ms;
    co.read_timeout_ms = m_opt.read_timeout_ms;
    if (!m_opt.api_key.empty()) co.headers.emplace_back("Authorization", std::string("Bearer ") + m_opt.api_key);
    auto r = http::fetch("POST", m_opt.base_url, "/v1/audio/transcriptions", body, "multipart/form-data; boundary=" + boundary, co);
    if (req.cancel && req.cancel->load()) return fail(ErrorCode::Unavailable, "cancelled");
    if (!r) return fail(ErrorCode::Unavailable, "speech-to-text server: " + r.error().message);
    if (r->status < 200 || r->status >= 300) {
        return fail(ErrorCode::Unavailable, "the speech-to-text server at " + m_opt.base_url + " answered HTTP " + std::to_string(r->status) +
                                                ": " + http::server_error_text(r->body));
    }
    const Json j = Json::parse(r->body, nullptr, false);
    Transcript out;
    out.duration = static_cast<double>(req.samples.size()) / kSampleRate;
    out.speech_seconds = out.duration;
    if (j.is_object() && j.contains("text") && j["text"].is_string()) {
        out.text = trim(sanitize_utf8(j["text"].get<std::string>()));
        out.language = json_string_or(j, "language", req.language == "auto" ? "" : req.language);
        if (j.contains("segments") && j["segments"].is_array()) {
            for (const auto& s : j["segments"]) {
                if (!s.is_object()) continue;
                const std::string text = trim(sanitize_utf8(json_string_or(s, "text", "")));
                if (text.empty()) continue;
                out.segments.push_back({json_number_or(s, "start", 0.0), json_number_or(s, "end", 0.0), text});
            }
        }
    } else if (!j.is_discarded() && !j.is_object()) {
        return fail(ErrorCode::Unavailable, "the speech-to-text server did not answer with a transcript");
    } else {
        // A server that ignores response_format and answers plain text.
        out.text = trim(sanitize_utf8(r->body));
        out.language = req.language == "auto" ? "" : req.language;
    }
    if (out.segments.empty() && !out.text.empty()) out.segments.push_back({0.0, out.duration, out.text});
    if (out.language.size() > 16) out.language = out.language.substr(0, 16);
    // Servers answer "german"/"english" too.
    if (out.language == "german") out.language = "de";
    if (out.language == "english") out.language = "en";
    out.decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

SttHealth HttpStt::health() {
    if (m_opt.base_url.empty()) return {"not_configured", "no speech-to-text server URL is set: set stt.url", m_opt.model};
    http::ClientOptions co;
    co.connect_timeout_ms = m_opt.connect_timeout_ms;
    co.read_timeout_ms = 2000;
    if (!m_opt.api_key.empty()) co.headers.emplace_back("Authorization", std::string("Bearer ") + m_opt.api_key);
    auto r = http::fetch("GET", m_opt.base_url, "/v1/models", "", "", co);
    if (!r) return {"unavailable", r.error().message + " — start the speech-to-text server or fix stt.url", m_opt.model};
    return {"ready", "speech-to-text server at " + m_opt.base_url + " (model " + m_opt.model + ")", m_opt.model};
}

}  // namespace mc::stt
