#include "sse_client.hpp"

#include <httplib.h>

namespace mc::test {

std::string SseResult::text_of(const std::string& event, const std::string& field) const {
    std::string out;
    for (const auto& e : events) {
        if (e.event == event) out += e.data[field].get<std::string>();
    }
    return out;
}

const SseEvent* SseResult::last(const std::string& event) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
        if (it->event == event) return &*it;
    }
    return nullptr;
}

size_t SseResult::count(const std::string& event) const {
    size_t n = 0;
    for (const auto& e : events) n += e.event == event;
    return n;
}

namespace {

SseResult stream_sse(const std::string& method, int port, const std::string& path, const std::string& body,
                     const std::function<bool(const SseEvent&)>& stop_after) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    SseResult out;
    std::string buf, event, data;
    bool hung_up = false;
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.body = body;
    if (method == "POST") req.headers.emplace("Content-Type", "application/json");
    req.response_handler = [&](const httplib::Response& r) {
        out.status = r.status;
        return true;
    };
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
        if (out.status != 200) {
            out.body.append(d, n);
            return true;
        }
        buf.append(d, n);
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (line.empty()) {
                if (!event.empty() || !data.empty()) {
                    SseEvent e{event.empty() ? "message" : event, nlohmann::json::parse(data, nullptr, false)};
                    out.events.push_back(e);
                    event.clear();
                    data.clear();
                    if (stop_after && stop_after(out.events.back())) {
                        hung_up = true;
                        return false;
                    }
                }
            } else if (line.rfind("event: ", 0) == 0) {
                event = line.substr(7);
            } else if (line.rfind("data: ", 0) == 0) {
                data += line.substr(6);
            }
        }
        return true;
    };
    c.send(req);
    (void)hung_up;
    return out;
}

}  // namespace

SseResult post_sse(int port, const std::string& path, const std::string& body,
                   const std::function<bool(const SseEvent&)>& stop_after) {
    return stream_sse("POST", port, path, body, stop_after);
}

SseResult get_sse(int port, const std::string& path, const std::function<bool(const SseEvent&)>& stop_after) {
    return stream_sse("GET", port, path, "", stop_after);
}

}  // namespace mc::test
