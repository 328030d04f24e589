// core/result: the error type every fallible function of ours returns (Result<T> = std::expected).
// Thread safety: plain values, no shared state.
#pragma once

#include <expected>
#include <string>
#include <utility>
#include <vector>

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

// A problem with a value, told so that a client can say it in the person's language: `reason`
// names the kind of problem and `params` its figures, e.g. reason "range" with {"min":"0","max":"2"}.
// Reasons: required, type (expected), range (min, max), too_long (max, unit: bytes|characters), too_many (max: items),
// empty, choice (choices: comma-separated), unknown_field, multiple_of (n), invalid (only `message`
// says more). Empty when no client needs to tell it apart.
struct Error {
    Error() = default;
    Error(ErrorCode c, std::string msg, std::string f = {}) : code(c), message(std::move(msg)), field(std::move(f)) {}

    ErrorCode code = ErrorCode::Internal;
    std::string message;
    std::string field;  // The request field at fault, when one is.
    std::string reason;
    std::vector<std::pair<std::string, std::string>> params;
    // Further problems found in the same request (a form with several invalid fields is answered
    // with all of them at once); each has its own field, reason and message.
    std::vector<Error> more;

    Error& because(std::string why, std::vector<std::pair<std::string, std::string>> figures = {}) {
        reason = std::move(why);
        params = std::move(figures);
        return *this;
    }
};

template <class T>
using Result = std::expected<T, Error>;

// Builds the unexpected side of a Result: `return fail(ErrorCode::NotFound, "no such chat");`
inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string field = {}) {
    return std::unexpected<Error>(Error{code, std::move(message), std::move(field)});
}

// The same with the reason a client can translate: `return fail_because(ErrorCode::InvalidInput,
// "'speed' must be ...", "voice.speed", "range", {{"min", "0.5"}, {"max", "2"}});`
inline std::unexpected<Error> fail_because(ErrorCode code, std::string message, std::string field, std::string reason,
                                           std::vector<std::pair<std::string, std::string>> params = {}) {
    Error e{code, std::move(message), std::move(field)};
    e.because(std::move(reason), std::move(params));
    return std::unexpected<Error>(std::move(e));
}

// Collects the problems of one request so all are answered at once: the first becomes the error,
// the rest its `more`.
class Problems {
public:
    // An error that carries further problems adds each of them too.
    void add(Error e) {
        std::vector<Error> rest = std::move(e.more);
        e.more.clear();
        m_all.push_back(std::move(e));
        for (auto& r : rest) add(std::move(r));
    }
    // An invalid field: its name, what is wrong, the reason and its figures (see Error).
    void invalid(std::string field, std::string message, std::string reason,
                 std::vector<std::pair<std::string, std::string>> params = {}, ErrorCode code = ErrorCode::InvalidInput) {
        Error e{code, std::move(message), std::move(field)};
        e.because(std::move(reason), std::move(params));
        m_all.push_back(std::move(e));
    }
    bool empty() const { return m_all.empty(); }
    size_t size() const { return m_all.size(); }
    // The first problem with the others attached; precondition: !empty().
    Error error() const {
        Error first = m_all.front();
        first.more.assign(m_all.begin() + 1, m_all.end());
        return first;
    }

private:
    std::vector<Error> m_all;
};

// The wire name of a code as API.md spells it ("invalid_input", "not_found", ...).
const char* error_code_name(ErrorCode code);

}  // namespace mc
