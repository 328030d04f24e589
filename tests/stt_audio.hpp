// Test helper: real speech made at test time with espeak-ng (run as a separate program), placed
// between stretches of digital silence, as 16-bit mono WAV — and where the speech really starts and
// ends in it (the first and last sample louder than -40 dBFS).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/process.hpp"

namespace mc::test {

struct SpokenClip {
    std::string wav;  // 16-bit mono WAV at `rate`.
    int rate = 0;
    double speech_start = 0;  // Seconds.
    double speech_end = 0;
    double seconds = 0;
};

inline void put_le(std::string& s, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::string wav_bytes(const std::vector<int16_t>& samples, int rate) {
    std::string w = "RIFF";
    put_le(w, static_cast<uint32_t>(36 + samples.size() * 2), 4);
    w += "WAVEfmt ";
    put_le(w, 16, 4);
    put_le(w, 1, 2);
    put_le(w, 1, 2);
    put_le(w, static_cast<uint32_t>(rate), 4);
    put_le(w, static_cast<uint32_t>(rate * 2), 4);
    put_le(w, 2, 2);
    put_le(w, 16, 2);
    w += "data";
    put_le(w, static_cast<uint32_t>(samples.size() * 2), 4);
    w.append(reinterpret_cast<const char*>(samples.data()), samples.size() * 2);
    return w;
}

// espeak-ng says `text` with `voice`; `lead` and `tail` seconds of silence around it. Empty wav
// when espeak-ng is missing.
inline SpokenClip spoken_clip(const std::string& text, const std::string& voice, double lead, double tail) {
    SpokenClip c;
    auto r = run_process({"espeak-ng", "-v", voice, "--stdout", text});
    if (!r || r->exit_code != 0) return c;
    const std::string& w = r->out;
    const size_t data = w.find("data");
    if (w.size() < 44 || data == std::string::npos || data + 8 > w.size()) return c;
    c.rate = static_cast<int>(static_cast<uint8_t>(w[24]) | static_cast<uint8_t>(w[25]) << 8 | static_cast<uint8_t>(w[26]) << 16);
    std::vector<int16_t> speech((w.size() - data - 8) / 2);
    for (size_t i = 0; i < speech.size(); ++i) {
        speech[i] = static_cast<int16_t>(static_cast<uint8_t>(w[data + 8 + 2 * i]) | static_cast<uint8_t>(w[data + 9 + 2 * i]) << 8);
    }
    size_t first = speech.size(), last = 0;
    for (size_t i = 0; i < speech.size(); ++i) {
        if (std::abs(static_cast<int>(speech[i])) > 328) {
            first = std::min(first, i);
            last = i;
        }
    }
    std::vector<int16_t> all(static_cast<size_t>(lead * c.rate), 0);
    all.insert(all.end(), speech.begin(), speech.end());
    all.resize(all.size() + static_cast<size_t>(tail * c.rate), 0);
    c.speech_start = lead + static_cast<double>(first) / c.rate;
    c.speech_end = lead + static_cast<double>(last) / c.rate;
    c.seconds = static_cast<double>(all.size()) / c.rate;
    c.wav = wav_bytes(all, c.rate);
    return c;
}

// A clip's samples at 16 kHz (the nearest sample for each 16 kHz position), as a microphone
// stream to a call carries them.
inline std::vector<int16_t> pcm_16k(const SpokenClip& clip) {
    std::vector<int16_t> out;
    if (clip.wav.size() < 44 || clip.rate <= 0) return out;
    const size_t n = (clip.wav.size() - 44) / 2;
    for (size_t k = 0;; ++k) {
        const size_t i = static_cast<size_t>(static_cast<double>(k) * clip.rate / 16000);
        if (i >= n) break;
        out.push_back(static_cast<int16_t>(static_cast<uint8_t>(clip.wav[44 + 2 * i]) | static_cast<uint8_t>(clip.wav[45 + 2 * i]) << 8));
    }
    return out;
}

// `seconds` of digital silence as WAV.
inline std::string silence_wav(double seconds, int rate = 16000) {
    return wav_bytes(std::vector<int16_t>(static_cast<size_t>(seconds * rate), 0), rate);
}

}  // namespace mc::test
