// core/result: the error type every fallible function of ours returns (Result<T> = std::expected).
// Thread safety: plain values, no shared state.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace mc {

// Stable error codes. api/error_map.cpp is the one place that turns them into HTTP statuses.
enum class ErrorCode {
    InvalidInput,
    NotFound,
    Conflict,
    TooLarge,
    UnsupportedMedia,
    Unavailable,
    Unauthorized,  // No or a wrong access token.
    Forbidden,     // Refused whoever asks this way (another site, another host name).
    Io,
    Internal,
};

struct Error {
    ErrorCode code = ErrorCode::Internal;
    std::string message;
    std::string field;  // The request field at fault, when one is.
};

template <class T>
using Result = std::expected<T, Error>;

// Builds the unexpected side of a Result: `return fail(ErrorCode::NotFound, "no such chat");`
inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string field = {}) {
    return std::unexpected<Error>(Error{code, std::move(message), std::move(field)});
}

// The wire name of a code as API.md spells it ("invalid_input", "not_found", ...).
const char* error_code_name(ErrorCode code);

}  // namespace mc
