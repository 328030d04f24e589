// http/websocket: the WebSocket protocol (RFC 6455) as far as we need it — a client that follows a
// server's event stream (ComfyUI's /ws progress), and the frame codec and handshake key that both
// ends use (the tests' stand-in servers speak it with the same functions; a unit test pins them to
// the RFC's own examples). Debian's cpp-httplib (0.11) has no WebSocket support.
// Thread safety: the free functions are pure; a WebSocketClient is used by one thread at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mc::http {

enum class WsOpcode : uint8_t { Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 };

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (base64 SHA-1 of key + the RFC's GUID).
std::string websocket_accept_key(std::string_view client_key);

// One frame, unfragmented. Clients must mask (`mask` set), servers must not.
std::string websocket_frame(WsOpcode op, std::string_view payload, std::optional<uint32_t> mask = std::nullopt);

struct WsMessage {
    WsOpcode op = WsOpcode::Text;  // Text, Binary, Close, Ping or Pong (continuations are joined).
    std::string payload;
};

// Turns received bytes into whole messages (unmasking, joining fragments). Refuses frames over
// `max_payload` bytes and malformed ones (the connection must then be closed).
class WsReader {
public:
    explicit WsReader(size_t max_payload) : m_max(max_payload) {}
    Result<std::vector<WsMessage>> push(std::string_view bytes);

private:
    size_t m_max;
    std::string m_buf;
    std::string m_fragments;
    std::optional<WsOpcode> m_fragment_op;
};

// A client connection to ws://host:port/path (an http:// base URL is accepted: same server).
class WebSocketClient {
public:
    ~WebSocketClient();
    WebSocketClient(const WebSocketClient&) = delete;
    WebSocketClient& operator=(const WebSocketClient&) = delete;

    // Connects and completes the handshake within `timeout_ms`. Unavailable names the URL.
    // `extra_headers`: whole header lines, each ending in \r\n ("Origin: http://x\r\n").
    // A refused upgrade is Unavailable naming the status line and the start of the body.
    static Result<std::unique_ptr<WebSocketClient>> connect(const std::string& base_url, const std::string& path_and_query,
                                                            int timeout_ms, size_t max_message = 16u << 20,
                                                            const std::string& extra_headers = "");
    // The next text or binary message, answering pings on the way. nullopt: nothing within
    // `timeout_ms`. An error: the connection closed or broke (it is then unusable).
    Result<std::optional<WsMessage>> read(int timeout_ms);
    // Sends one message (masked, as a client must); false when the connection is closed or broke.
    bool send(WsOpcode op, std::string_view payload);
    // Sends a close frame with `code` (best effort) and closes the socket.
    void close(uint16_t code = 1000);
    // Closes the socket without a close frame: a connection that broke.
    void drop();

private:
    explicit WebSocketClient(int fd, size_t max_message) : m_fd(fd), m_reader(max_message) {}
    bool send_frame(WsOpcode op, std::string_view payload);
    int m_fd;
    WsReader m_reader;
    std::vector<WsMessage> m_pending;
    std::string m_url;
};

}  // namespace mc::http
