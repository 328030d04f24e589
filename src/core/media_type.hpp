// core/media_type: decides a file's type from its bytes (magic numbers), never from a name.
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mc {

struct MediaType {
    std::string mime;  // "image/png"
    std::string ext;   // "png"
};

std::optional<MediaType> sniff_image(std::string_view bytes);  // PNG, JPEG, WebP.
std::optional<MediaType> sniff_audio(std::string_view bytes);  // WAV, MP3, FLAC, OGG.
// The mime type for one of the extensions above ("" when unknown).
std::string mime_for_ext(std::string_view ext);

}  // namespace mc
