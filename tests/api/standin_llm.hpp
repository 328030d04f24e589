// Test helper: a stand-in for a remote OpenAI-compatible model server (what Ollama, LM Studio or a
// llama.cpp server answer), serving /v1/models and streaming /v1/chat/completions with replies the
// test chooses. It runs in the test process on a free port; our real remote engine talks to it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace mc::test {

class StandinLlm {
public:
    // `reply` gets the request body and returns the assistant's text.
    explicit StandinLlm(std::function<std::string(const nlohmann::json&)> reply) : m_reply(std::move(reply)) {
        m_server.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(R"({"object":"list","data":[{"id":"standin","object":"model","owned_by":"test"}]})",
                            "application/json");
        });
        m_server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
            const auto body = nlohmann::json::parse(req.body);
            const std::string text = m_reply(body);
            std::string out;
            // One chunk per word, the way servers stream.
            size_t start = 0;
            while (start < text.size()) {
                size_t end = text.find(' ', start + 1);
                if (end == std::string::npos) end = text.size();
                nlohmann::json chunk = {{"choices", {{{"index", 0}, {"delta", {{"content", text.substr(start, end - start)}}}}}}};
                out += "data: " + chunk.dump() + "\n\n";
                start = end;
            }
            out += "data: " + nlohmann::json{{"choices", {{{"index", 0}, {"delta", nlohmann::json::object()}, {"finish_reason", "stop"}}}}}.dump() + "\n\n";
            out += "data: [DONE]\n\n";
            res.set_content(out, "text/event-stream");
        });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
    }
    ~StandinLlm() {
        m_server.stop();
        m_thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

private:
    std::function<std::string(const nlohmann::json&)> m_reply;
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
};

}  // namespace mc::test
