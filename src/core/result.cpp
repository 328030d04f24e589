#include "core/result.hpp"

namespace mc {

const char* error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidInput: return "invalid_input";
        case ErrorCode::NotFound: return "not_found";
        case ErrorCode::Conflict: return "conflict";
        case ErrorCode::TooLarge: return "too_large";
        case ErrorCode::UnsupportedMedia: return "unsupported_media";
        case ErrorCode::Unavailable: return "unavailable";
        case ErrorCode::Unauthorized: return "unauthorized";
        case ErrorCode::Forbidden: return "forbidden";
        case ErrorCode::Io: return "internal";
        case ErrorCode::Internal: return "internal";
    }
    return "internal";
}

}  // namespace mc
