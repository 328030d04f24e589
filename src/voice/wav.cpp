#include "voice/wav.hpp"

#include <opusenc.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mc::voice {
namespace {

uint32_t u32(std::string_view b, size_t at) {
    return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}
uint16_t u16(std::string_view b, size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
void put32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put16(std::string& s, uint16_t v) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>(v >> 8));
}

// One sample as a float in [-1, 1].
float sample_at(std::string_view data, size_t at, int bits, bool is_float) {
    if (is_float) {
        if (bits == 32) {
            uint32_t raw = u32(data, at);
            float f;
            std::memcpy(&f, &raw, 4);
            return std::isfinite(f) ? f : 0.0f;
        }
        uint64_t raw = static_cast<uint64_t>(u32(data, at)) | static_cast<uint64_t>(u32(data, at + 4)) << 32;
        double d;
        std::memcpy(&d, &raw, 8);
        return std::isfinite(d) ? static_cast<float>(d) : 0.0f;
    }
    switch (bits) {
        case 8: return (static_cast<uint8_t>(data[at]) - 128) / 128.0f;
        case 16: return static_cast<int16_t>(u16(data, at)) / 32768.0f;
        case 24: {
            const uint32_t raw = static_cast<uint32_t>(static_cast<uint8_t>(data[at])) |
                                 static_cast<uint32_t>(static_cast<uint8_t>(data[at + 1])) << 8 |
                                 static_cast<uint32_t>(static_cast<uint8_t>(data[at + 2])) << 16;
            const int32_t v = static_cast<int32_t>(raw << 8) >> 8;  // Sign-extend 24 bits.
            return static_cast<float>(v) / 8388608.0f;
        }
        default: return static_cast<int32_t>(u32(data, at)) / 2147483648.0f;
    }
}

}  // namespace

Result<Audio> parse_wav(std::string_view b) {
    if (b.size() < 12 || b.substr(0, 4) != "RIFF" || b.substr(8, 4) != "WAVE") {
        return fail(ErrorCode::InvalidInput, "not a WAV file (no RIFF/WAVE header)");
    }
    size_t at = 12;
    int channels = 0, bits = 0, rate = 0;
    bool is_float = false, have_fmt = false;
    while (at + 8 <= b.size()) {
        const std::string_view id = b.substr(at, 4);
        uint64_t size = u32(b, at + 4);
        at += 8;
        if (id == "fmt ") {
            if (size < 16 || at + 16 > b.size()) return fail(ErrorCode::InvalidInput, "WAV format chunk is truncated");
            uint16_t format = u16(b, at);
            channels = u16(b, at + 2);
            rate = static_cast<int>(u32(b, at + 4));
            bits = u16(b, at + 14);
            if (format == 0xFFFE && size >= 40 && at + 26 <= b.size()) format = u16(b, at + 24);  // Extensible.
            if (format != 1 && format != 3) return fail(ErrorCode::InvalidInput, "WAV is compressed (format " + std::to_string(format) + "); PCM or float expected");
            is_float = format == 3;
            have_fmt = true;
        } else if (id == "data") {
            if (!have_fmt) return fail(ErrorCode::InvalidInput, "WAV data comes before its format");
            if (channels < 1 || channels > 16 || rate < 1000 || rate > 384000 ||
                !(is_float ? (bits == 32 || bits == 64) : (bits == 8 || bits == 16 || bits == 24 || bits == 32))) {
                return fail(ErrorCode::InvalidInput, "WAV format not supported (" + std::to_string(channels) + " channels, " +
                                                         std::to_string(rate) + " Hz, " + std::to_string(bits) + " bits)");
            }
            // Streaming writers put 0xFFFFFFFF-ish sizes in: the data runs to the end of the file.
            const size_t avail = b.size() - at;
            const size_t len = std::min<uint64_t>(size, avail);
            const size_t frame = static_cast<size_t>(channels) * (bits / 8);
            Audio audio;
            audio.sample_rate = rate;
            audio.samples.reserve(len / frame);
            if (bits == 16 && !is_float) {
                // The common case, exactly: 16-bit samples averaged over the channels.
                for (size_t f = 0; f + frame <= len; f += frame) {
                    int32_t sum = 0;
                    for (int c = 0; c < channels; ++c) sum += static_cast<int16_t>(u16(b, at + f + static_cast<size_t>(c) * 2));
                    audio.samples.push_back(static_cast<int16_t>(sum / channels));
                }
                return audio;
            }
            for (size_t f = 0; f + frame <= len; f += frame) {
                float sum = 0;
                for (int c = 0; c < channels; ++c) sum += sample_at(b, at + f + static_cast<size_t>(c) * (bits / 8), bits, is_float);
                const float v = std::clamp(sum / static_cast<float>(channels), -1.0f, 1.0f);
                audio.samples.push_back(static_cast<int16_t>(std::lround(v * 32767.0f)));
            }
            return audio;
        }
        at += size + (size & 1);
    }
    return fail(ErrorCode::InvalidInput, "WAV has no data chunk");
}

std::string encode_wav(const Audio& audio) {
    const uint32_t data_bytes = static_cast<uint32_t>(audio.samples.size() * 2);
    std::string s;
    s.reserve(44 + data_bytes);
    s += "RIFF";
    put32(s, 36 + data_bytes);
    s += "WAVEfmt ";
    put32(s, 16);
    put16(s, 1);
    put16(s, 1);
    put32(s, static_cast<uint32_t>(audio.sample_rate));
    put32(s, static_cast<uint32_t>(audio.sample_rate) * 2);
    put16(s, 2);
    put16(s, 16);
    s += "data";
    put32(s, data_bytes);
    for (int16_t v : audio.samples) put16(s, static_cast<uint16_t>(v));
    return s;
}

Result<std::string> encode_ogg_opus(const Audio& audio) {
    if (audio.sample_rate < 8000 || audio.sample_rate > 192000) return fail(ErrorCode::Internal, "no audio to encode");
    std::string out;
    OpusEncCallbacks callbacks{
        [](void* user, const unsigned char* data, opus_int32 len) {
            static_cast<std::string*>(user)->append(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
            return 0;
        },
        [](void*) { return 0; }};
    OggOpusComments* comments = ope_comments_create();
    if (!comments) return fail(ErrorCode::Internal, "cannot create Opus comments");
    ope_comments_add(comments, "ENCODER", "mycandy");
    int error = OPE_OK;
    // libopusenc resamples any input rate to Opus's 48 kHz itself.
    OggOpusEnc* enc = ope_encoder_create_callbacks(&callbacks, &out, comments, audio.sample_rate, 1, 0, &error);
    ope_comments_destroy(comments);
    if (!enc || error != OPE_OK) return fail(ErrorCode::Internal, "cannot create the Opus encoder (" + std::to_string(error) + ")");
    ope_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    ope_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    error = ope_encoder_write(enc, audio.samples.data(), static_cast<int>(audio.samples.size()));
    if (error == OPE_OK) error = ope_encoder_drain(enc);
    ope_encoder_destroy(enc);
    if (error != OPE_OK) return fail(ErrorCode::Internal, "Opus encoding failed (" + std::to_string(error) + ")");
    return out;
}

}  // namespace mc::voice
