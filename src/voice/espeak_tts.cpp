#include "voice/espeak_tts.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/process.hpp"
#include "core/text.hpp"
#include "voice/wav.hpp"

namespace mc::voice {
namespace {

constexpr auto kTimeout = std::chrono::seconds(30);
// Lower than the chat model's threads, so speaking a sentence takes only idle CPU from decoding.
constexpr int kNice = 5;

bool only_voice_chars(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '/')) return false;
    }
    return true;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

int espeak_rate(double speed) {
    if (!std::isfinite(speed)) speed = 1.0;
    return std::clamp(static_cast<int>(std::lround(175.0 * speed)), 80, 450);
}

Result<EspeakTts::Voices> EspeakTts::voices() {
    std::lock_guard lock(m_mu);
    if (m_loaded) return m_voices;
    ProcessOptions quick;
    quick.timeout = kTimeout;
    auto list = run_process({m_program, "--voices"}, quick);
    if (!list) return fail(ErrorCode::Unavailable, "espeak-ng is not installed or cannot run (" + list.error().message + ")");
    auto variants = run_process({m_program, "--voices=variant"}, quick);
    if (!variants) return fail(ErrorCode::Unavailable, "espeak-ng cannot list its variants (" + variants.error().message + ")");
    Voices v;
    // Rows: "Pty Language Age/Gender VoiceName File Other-languages". MBROLA voices need extra
    // packages: left out.
    std::istringstream rows(list->out);
    std::string line;
    std::getline(rows, line);
    while (std::getline(rows, line)) {
        std::istringstream cols(line);
        std::string pty, language, gender, voice_name, file;
        if (!(cols >> pty >> language >> gender >> voice_name >> file)) continue;
        if (file.rfind("mb/", 0) == 0) continue;
        v.languages.insert(lower(language));
        v.languages.insert(lower(file.substr(file.find('/') + 1)));
    }
    std::istringstream vrows(variants->out);
    std::getline(vrows, line);
    while (std::getline(vrows, line)) {
        std::istringstream cols(line);
        std::string pty, language, gender, voice_name, file;
        if (!(cols >> pty >> language >> gender >> voice_name >> file)) continue;
        if (file.rfind("!v/", 0) == 0) v.variants.insert(lower(file.substr(3)));
    }
    if (v.languages.empty()) return fail(ErrorCode::Unavailable, "espeak-ng lists no voices (is espeak-ng-data installed?)");
    m_voices = v;
    m_loaded = true;
    return m_voices;
}

Result<std::string> EspeakTts::voice_for(const TtsRequest& request) {
    std::string spec = request.voice.empty() ? request.language : request.voice;
    if (spec.empty()) spec = "en";
    auto installed = voices();
    if (!installed) return std::unexpected(installed.error());
    const size_t plus = spec.find('+');
    const std::string base = lower(spec.substr(0, plus));
    const std::string variant = plus == std::string::npos ? "" : lower(spec.substr(plus + 1));
    if (!only_voice_chars(base) || !installed->languages.contains(base)) {
        return fail(ErrorCode::InvalidInput, "espeak-ng has no voice '" + spec + "'", "voice");
    }
    if (plus != std::string::npos && (!only_voice_chars(variant) || !installed->variants.contains(variant))) {
        return fail(ErrorCode::InvalidInput, "espeak-ng has no voice variant '" + spec.substr(plus + 1) + "' (voice '" + spec + "')", "voice");
    }
    return variant.empty() ? base : base + "+" + variant;
}

Result<Audio> EspeakTts::synthesize(const TtsRequest& request) {
    if (trim(request.text).empty()) return fail(ErrorCode::InvalidInput, "there is nothing to speak", "text");
    auto voice = voice_for(request);
    if (!voice) return std::unexpected(voice.error());
    const int pitch = std::clamp(request.pitch, 0, 99);
    // Text goes in on stdin (never as an argument), UTF-8 (-b 1); the WAV comes back on stdout.
    ProcessOptions po;
    po.input = request.text;
    po.timeout = kTimeout;
    po.nice = kNice;
    po.cancel = request.cancel;
    auto run = run_process({m_program, "-v", *voice, "-s", std::to_string(espeak_rate(request.speed)), "-p",
                            std::to_string(pitch), "-b", "1", "--stdin", "--stdout"},
                           po);
    if (!run) return std::unexpected(run.error());
    if (run->exit_code != 0 || run->out.empty()) {
        std::string why = trim(run->err);
        return fail(ErrorCode::Unavailable, "espeak-ng failed" + (why.empty() ? std::string() : ": " + why.substr(0, 300)));
    }
    auto audio = parse_wav(run->out);
    if (!audio) return fail(ErrorCode::Unavailable, "espeak-ng wrote no usable WAV: " + audio.error().message);
    return audio;
}

TtsHealth EspeakTts::health() {
    auto v = voices();
    if (!v) return {"unavailable", v.error().message + " — install it: apt-get install espeak-ng, or set media.espeak_path"};
    return {"ok", "espeak-ng with " + std::to_string(v->languages.size()) + " voices"};
}

}  // namespace mc::voice
