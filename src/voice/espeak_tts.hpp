// voice/espeak_tts: the system voice that always works — espeak-ng run as a separate program per
// sentence (it is GPL-3, so it stays out of our binary's link), at a lower CPU priority than the
// chat model. Voices are "<language or voice>[+<variant>]" as espeak-ng spells them ("de",
// "en-us+f3", "de+Alicia"), checked against the installed lists before use.
// Thread safety: safe from any thread (each call is its own process; the voice lists are guarded).
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "voice/tts_engine.hpp"

namespace mc::voice {

class EspeakTts : public TtsEngine {
public:
    explicit EspeakTts(std::string program = "espeak-ng") : m_program(std::move(program)) {}
    std::string name() const override { return "espeak"; }
    Result<Audio> synthesize(const TtsRequest& request) override;
    TtsHealth health() override;
    // The voice espeak-ng would use for `request`, checked: InvalidInput (field "voice") naming it.
    Result<std::string> voice_for(const TtsRequest& request);
    // Installed voices and variants, for the UI's pickers.
    struct Voices { std::set<std::string> languages; std::set<std::string> variants; };
    Result<Voices> voices();

private:
    std::string m_program;
    std::mutex m_mu;  // Guards m_voices and m_loaded.
    Voices m_voices;
    bool m_loaded = false;
};

// espeak-ng's words per minute for a speed factor (1.0 = 175 wpm), clamped to what it accepts.
int espeak_rate(double speed);

}  // namespace mc::voice
