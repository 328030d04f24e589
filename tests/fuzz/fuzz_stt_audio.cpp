// Fuzz target: recordings a client uploads to /api/stt — content sniffing, the WAV reader, the
// WebM/Matroska demuxer and Opus decoding, libsndfile's readers (MP3, FLAC, Ogg) and resampling;
// voice sample analysis (PUT /api/characters/{id}/voice_sample).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stt/audio_decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    (void)mc::stt::sniff_recording(bytes);
    (void)mc::stt::demux_webm_opus(bytes, 10000);
    (void)mc::stt::decode_audio(bytes, 30);
    (void)mc::stt::analyze_voice_sample(bytes);  // Voice sample uploads.
    return 0;
}
