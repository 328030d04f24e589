#include "http/client.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/text.hpp"

namespace mc::http {
namespace {

// "http://host:port/prefix" -> ("http://host:port", "/prefix")
std::pair<std::string, std::string> split_url(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    const size_t scheme = url.find("://");
    const size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (slash == std::string::npos) return {url, ""};
    return {url.substr(0, slash), url.substr(slash)};
}

}  // namespace

Result<ClientResponse> fetch(const std::string& method, const std::string& base_url, const std::string& path,
                             const std::string& body, const std::string& content_type, const ClientOptions& options,
                             const std::function<bool(std::string_view)>& on_data,
                             const std::function<void(const ClientResponse&)>& on_headers) {
    const auto [origin, prefix] = split_url(base_url);
    if (origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) {
        return fail(ErrorCode::InvalidInput, "URL must start with http:// or https:// (got '" + base_url + "')", "url");
    }
    httplib::Client client(origin);
    if (!client.is_valid()) return fail(ErrorCode::InvalidInput, "invalid URL '" + base_url + "'", "url");
    client.set_connection_timeout(options.connect_timeout_ms / 1000, (options.connect_timeout_ms % 1000) * 1000);
    client.set_read_timeout(options.read_timeout_ms / 1000, (options.read_timeout_ms % 1000) * 1000);
    client.set_write_timeout(30, 0);
    client.set_keep_alive(false);

    httplib::Request req;
    req.method = method;
    req.path = prefix + path;
    for (const auto& [k, v] : options.headers) req.headers.emplace(k, v);
    if (!body.empty() || method == "POST" || method == "PUT") {
        req.body = body;
        req.headers.emplace("Content-Type", content_type);
    }
    ClientResponse out;
    bool streaming = false;
    req.response_handler = [&](const httplib::Response& r) {
        out.status = r.status;
        out.content_type = r.get_header_value("Content-Type");
        const std::string length = r.get_header_value("Content-Length");
        if (!length.empty() && length.find_first_not_of("0123456789") == std::string::npos) out.content_length = std::stoll(length);
        streaming = on_data && r.status >= 200 && r.status < 300;
        if (on_headers) on_headers(out);
        return true;
    };
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
        if (streaming) return on_data(std::string_view(data, len));
        if (out.body.size() < (1u << 20)) out.body.append(data, len);
        return true;
    };
    httplib::Result res{nullptr, httplib::Error::Unknown};
    try {
        res = client.send(req);
    } catch (const std::exception& e) {  // httplib parses what the server sent; a bad answer throws.
        return fail(ErrorCode::Unavailable, base_url + " sent a response that could not be read (" + e.what() + ")");
    }
    if (!res) {
        if (res.error() == httplib::Error::Canceled && out.status >= 200 && out.status < 300) return out;
        return fail(ErrorCode::Unavailable, "cannot reach " + base_url + ": " + httplib::to_string(res.error()));
    }
    out.status = res->status;
    return out;
}

std::string server_error_text(const std::string& body) {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object()) {
        if (j.contains("error") && j["error"].is_object() && j["error"].value("message", nlohmann::json()).is_string()) {
            return j["error"]["message"].get<std::string>().substr(0, 300);
        }
        if (j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>().substr(0, 300);
    }
    std::string s = trim(sanitize_utf8(body.substr(0, 300)));
    return s.empty() ? std::string("no details") : s;
}

std::vector<std::string> SseParser::push(std::string_view chunk) {
    std::vector<std::string> out;
    m_buf += chunk;
    size_t start = 0;
    while (true) {
        const size_t nl = m_buf.find('\n', start);
        if (nl == std::string::npos) break;
        std::string_view line(m_buf.data() + start, nl - start);
        start = nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) {  // End of an event.
            if (m_has_data) out.push_back(std::move(m_data));
            m_data.clear();
            m_has_data = false;
            continue;
        }
        if (line[0] == ':') continue;  // Comment (keep-alive).
        if (line.rfind("data:", 0) == 0) {
            std::string_view v = line.substr(5);
            if (!v.empty() && v[0] == ' ') v.remove_prefix(1);
            if (m_has_data) m_data += '\n';
            m_data += v;
            m_has_data = true;
        }
    }
    m_buf.erase(0, start);
    return out;
}

}  // namespace mc::http
