// Test helper: a streaming POST that collects Server-Sent Events as (event, data JSON) pairs, and
// can hang up after a given event to act as a client that disconnects.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mc::test {

struct SseEvent {
    std::string event;
    nlohmann::json data;
};

struct SseResult {
    int status = 0;
    std::string body;  // For non-2xx answers.
    std::vector<SseEvent> events;
    std::string text_of(const std::string& event, const std::string& field = "text") const;
    const SseEvent* last(const std::string& event) const;
    size_t count(const std::string& event) const;
};

// POSTs `body` to `path` and reads events until the stream ends or `stop_after` returns true.
SseResult post_sse(int port, const std::string& path, const std::string& body,
                   const std::function<bool(const SseEvent&)>& stop_after = {});
// The same for a GET (attaching to a running turn).
SseResult get_sse(int port, const std::string& path, const std::function<bool(const SseEvent&)>& stop_after = {});

}  // namespace mc::test
