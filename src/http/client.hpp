// http/client: outgoing HTTP requests (remote model servers, ComfyUI, downloads), with streaming
// of the response body. Wraps cpp-httplib's client so that only http/ includes it.
// Thread safety: each call is independent; safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace mc::http {

struct ClientOptions {
    int connect_timeout_ms = 2000;
    int read_timeout_ms = 300000;
    std::vector<std::pair<std::string, std::string>> headers;
};

struct ClientResponse {
    int status = 0;
    std::string body;  // Empty when a 2xx body went to on_data.
    std::string content_type;
    int64_t content_length = -1;  // -1 when the server did not say.
};

// `base_url` is "http://host:port" (optionally with a path prefix); `path` starts with '/'.
// With `on_data`, a 2xx body is handed over in pieces as it arrives (return false to abort);
// other statuses collect the body for the error message. Unreachable servers fail with
// ErrorCode::Unavailable naming the URL and the reason.
// `on_headers` sees the status and headers before any body arrives.
Result<ClientResponse> fetch(const std::string& method, const std::string& base_url, const std::string& path,
                             const std::string& body, const std::string& content_type, const ClientOptions& options,
                             const std::function<bool(std::string_view)>& on_data = {},
                             const std::function<void(const ClientResponse&)>& on_headers = {});

// A server's own error text from an error body, short: {"error":{"message"}} (OpenAI style),
// {"detail"} (FastAPI) or the body itself; "no details" when empty.
std::string server_error_text(const std::string& body);

// Splits an SSE byte stream into events' data payloads (comments and other fields ignored).
class SseParser {
public:
    // Returns the complete "data:" payloads in `chunk` (joined across lines per event).
    std::vector<std::string> push(std::string_view chunk);

private:
    std::string m_buf;
    std::string m_data;
    bool m_has_data = false;
};

}  // namespace mc::http
