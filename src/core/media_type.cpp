#include "core/media_type.hpp"

namespace mc {
namespace {

bool starts(std::string_view b, std::string_view magic, size_t at = 0) {
    return b.size() >= at + magic.size() && b.substr(at, magic.size()) == magic;
}

}  // namespace

std::optional<MediaType> sniff_image(std::string_view b) {
    if (starts(b, "\x89PNG\r\n\x1a\n")) return MediaType{"image/png", "png"};
    if (starts(b, "\xFF\xD8\xFF")) return MediaType{"image/jpeg", "jpg"};
    if (starts(b, "RIFF") && starts(b, "WEBP", 8)) return MediaType{"image/webp", "webp"};
    return std::nullopt;
}

std::optional<MediaType> sniff_audio(std::string_view b) {
    if (starts(b, "RIFF") && starts(b, "WAVE", 8)) return MediaType{"audio/wav", "wav"};
    if (starts(b, "fLaC")) return MediaType{"audio/flac", "flac"};
    if (starts(b, "OggS")) return MediaType{"audio/ogg", "ogg"};
    if (starts(b, "ID3")) return MediaType{"audio/mpeg", "mp3"};
    // A bare MPEG audio frame: 11 sync bits, then a valid version (not reserved) and layer III.
    if (b.size() >= 4) {
        const auto c0 = static_cast<unsigned char>(b[0]);
        const auto c1 = static_cast<unsigned char>(b[1]);
        if (c0 == 0xFF && (c1 & 0xE0) == 0xE0 && (c1 & 0x18) != 0x08 && (c1 & 0x06) == 0x02) {
            return MediaType{"audio/mpeg", "mp3"};
        }
    }
    return std::nullopt;
}

std::string mime_for_ext(std::string_view ext) {
    if (ext == "png") return "image/png";
    if (ext == "jpg") return "image/jpeg";
    if (ext == "webp") return "image/webp";
    if (ext == "wav") return "audio/wav";
    if (ext == "flac") return "audio/flac";
    if (ext == "ogg") return "audio/ogg";
    if (ext == "mp3") return "audio/mpeg";
    if (ext == "webm") return "audio/webm";
    return "";
}

}  // namespace mc
