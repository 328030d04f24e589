// voice/wav: RIFF/WAVE reading and writing for what the engines return and what we serve, and
// Ogg Opus encoding for smaller answers.
// Reads PCM 8/16/24/32-bit and IEEE float, any channel count (mixed down to mono), and the
// "unknown length" headers streaming writers such as espeak-ng produce.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "voice/tts_engine.hpp"

namespace mc::voice {

// Errors: InvalidInput naming what is wrong with the bytes.
Result<Audio> parse_wav(std::string_view bytes);
// 16-bit mono PCM WAV.
std::string encode_wav(const Audio& audio);
// Ogg Opus (libopusenc; speech bitrate), a tenth of the WAV's size for phones on the LAN.
// Errors: Internal when the encoder refuses the input.
Result<std::string> encode_ogg_opus(const Audio& audio);

}  // namespace mc::voice
