#include "api/access_guard.hpp"

#include <algorithm>
#include <cctype>

#include "api/json_io.hpp"

namespace mc::api {
namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The host name of a Host header value: "[::1]:8000" -> "::1", "Localhost:8000" -> "localhost".
std::string host_name(const std::string& host_header) {
    std::string h = lower(host_header);
    if (!h.empty() && h[0] == '[') {
        const auto end = h.find(']');
        return end == std::string::npos ? h : h.substr(1, end - 1);
    }
    return h.substr(0, h.find(':'));
}

// Compares without returning early, so the time taken says nothing about the token.
bool same_secret(const std::string& given, const std::string& token) {
    if (given.size() != token.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < token.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ token[i]);
    return diff == 0;
}

http::Response refuse(ErrorCode code, const std::string& message, const char* field) {
    return error_response({code, message, field});
}

// Requests that write: every method but GET and HEAD, and WebSocket upgrades (a voice call stores
// what is said; browsers send no CORS preflight for a WebSocket, so its Origin is all there is).
bool state_changing(const http::Request& req) {
    return (req.method != "GET" && req.method != "HEAD") || lower(req.header("Upgrade")) == "websocket";
}

}  // namespace

std::vector<std::string> split_list(const std::string& csv) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= csv.size()) {
        size_t end = csv.find(',', start);
        if (end == std::string::npos) end = csv.size();
        std::string item = csv.substr(start, end - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) out.push_back(item);
        start = end + 1;
    }
    return out;
}

std::optional<http::Response> check_access(const http::Request& req, const AccessPolicy& policy) {
    const std::string host_header = req.header("Host");
    if (policy.loopback_only && !host_header.empty()) {
        const std::string name = host_name(host_header);
        const bool local = name == "127.0.0.1" || name == "localhost" || name == "::1";
        const bool allowed = std::any_of(policy.allowed_hosts.begin(), policy.allowed_hosts.end(),
                                         [&](const std::string& h) { return lower(h) == name; });
        if (!local && !allowed) {
            return refuse(ErrorCode::Forbidden, "requests for host '" + host_header.substr(0, 100) +
                                   "' are refused: this server answers to 127.0.0.1 and localhost "
                                   "(add other names to server.allowed_hosts)",
                          "Host");
        }
    }
    if (state_changing(req)) {
        const std::string origin = req.header("Origin");
        if (!origin.empty()) {
            const std::string o = lower(origin);
            const std::string h = lower(host_header);
            const bool same = !h.empty() && (o == "http://" + h || o == "https://" + h);
            const bool allowed = std::any_of(policy.allowed_origins.begin(), policy.allowed_origins.end(),
                                             [&](const std::string& a) { return lower(a) == o; });
            if (!same && !allowed) {
                return refuse(ErrorCode::Forbidden, "cross-origin request from '" + origin.substr(0, 100) +
                                       "' refused (allow it in server.allowed_origins)",
                              "Origin");
            }
        } else if (lower(req.header("Sec-Fetch-Site")) == "cross-site") {
            return refuse(ErrorCode::Forbidden, "cross-site request refused", "Origin");
        }
    }
    if (policy.token.empty()) return std::nullopt;
    if (auto q = req.query_param("token"); q && same_secret(*q, policy.token) && req.path.rfind("/ui", 0) == 0) {
        http::Response r;
        r.status = 302;
        r.content_type = "text/plain";
        r.headers = {{"Location", "/ui/"},
                     {"Set-Cookie", "mycandy_token=" + policy.token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000"}};
        return r;
    }
    const std::string auth = req.header("Authorization");
    if (auth.rfind("Bearer ", 0) == 0 && same_secret(auth.substr(7), policy.token)) return std::nullopt;
    const std::string cookies = req.header("Cookie");
    for (size_t at = cookies.find("mycandy_token="); at != std::string::npos; at = cookies.find("mycandy_token=", at + 1)) {
        const size_t start = at + 14;
        if (same_secret(cookies.substr(start, cookies.find(';', start) - start), policy.token)) return std::nullopt;
    }
    return refuse(ErrorCode::Unauthorized, "an access token is required: send Authorization: Bearer <token> or open /ui/?token=<token> once",
                  "token");
}

}  // namespace mc::api
