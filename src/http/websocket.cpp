#include "http/websocket.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>

namespace mc::http {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string base64(const unsigned char* data, size_t len) {
    std::string out(4 * ((len + 2) / 3), '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

// Waits until `fd` is readable (or writable); false on timeout.
bool wait_fd(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int r = ::poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        if (!wait_fd(fd, POLLOUT, 10000)) return false;
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

}  // namespace

std::string websocket_accept_key(std::string_view client_key) {
    std::string joined(client_key);
    joined += kGuid;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
    return base64(digest, sizeof digest);
}

std::string websocket_frame(WsOpcode op, std::string_view payload, std::optional<uint32_t> mask) {
    std::string f;
    f.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(op)));
    const uint8_t mask_bit = mask ? 0x80 : 0;
    const size_t n = payload.size();
    if (n < 126) {
        f.push_back(static_cast<char>(mask_bit | n));
    } else if (n <= 0xFFFF) {
        f.push_back(static_cast<char>(mask_bit | 126));
        f.push_back(static_cast<char>(n >> 8));
        f.push_back(static_cast<char>(n & 0xFF));
    } else {
        f.push_back(static_cast<char>(mask_bit | 127));
        for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xFF));
    }
    if (!mask) {
        f.append(payload);
        return f;
    }
    unsigned char key[4] = {static_cast<unsigned char>(*mask >> 24), static_cast<unsigned char>(*mask >> 16),
                            static_cast<unsigned char>(*mask >> 8), static_cast<unsigned char>(*mask)};
    f.append(reinterpret_cast<const char*>(key), 4);
    for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ key[i % 4]));
    return f;
}

Result<std::vector<WsMessage>> WsReader::push(std::string_view bytes) {
    m_buf.append(bytes);
    std::vector<WsMessage> out;
    size_t pos = 0;
    for (;;) {
        const size_t avail = m_buf.size() - pos;
        if (avail < 2) break;
        const auto* p = reinterpret_cast<const unsigned char*>(m_buf.data() + pos);
        const bool fin = p[0] & 0x80;
        if (p[0] & 0x70) return fail(ErrorCode::InvalidInput, "WebSocket frame with reserved bits set (no extension was agreed)");
        const auto op = static_cast<WsOpcode>(p[0] & 0x0F);
        const bool masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7F;
        size_t head = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = (uint64_t{p[2]} << 8) | p[3];
            head = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
            head = 10;
        }
        if (len > m_max) return fail(ErrorCode::TooLarge, "WebSocket message larger than " + std::to_string(m_max) + " bytes");
        const size_t mask_len = masked ? 4 : 0;
        if (avail < head + mask_len + len) break;
        std::string payload(m_buf, pos + head + mask_len, static_cast<size_t>(len));
        if (masked) {
            const unsigned char* key = p + head;
            for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(static_cast<unsigned char>(payload[i]) ^ key[i % 4]);
        }
        pos += head + mask_len + static_cast<size_t>(len);
        const auto code = static_cast<uint8_t>(op);
        if (code >= 8) {  // Control frames: never fragmented, at most 125 bytes.
            if (!fin || len > 125 || (op != WsOpcode::Close && op != WsOpcode::Ping && op != WsOpcode::Pong)) {
                return fail(ErrorCode::InvalidInput, "malformed WebSocket control frame");
            }
            out.push_back({op, std::move(payload)});
            continue;
        }
        if (op == WsOpcode::Continuation) {
            if (!m_fragment_op) return fail(ErrorCode::InvalidInput, "WebSocket continuation without a first frame");
            if (m_fragments.size() + payload.size() > m_max) {
                return fail(ErrorCode::TooLarge, "WebSocket message larger than " + std::to_string(m_max) + " bytes");
            }
            m_fragments += payload;
            if (fin) {
                out.push_back({*m_fragment_op, std::move(m_fragments)});
                m_fragments.clear();
                m_fragment_op.reset();
            }
        } else if (op == WsOpcode::Text || op == WsOpcode::Binary) {
            if (m_fragment_op) return fail(ErrorCode::InvalidInput, "WebSocket message started inside another");
            if (fin) {
                out.push_back({op, std::move(payload)});
            } else {
                m_fragment_op = op;
                m_fragments = std::move(payload);
            }
        } else {
            return fail(ErrorCode::InvalidInput, "unknown WebSocket opcode " + std::to_string(code));
        }
    }
    m_buf.erase(0, pos);
    return out;
}

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::connect(const std::string& base_url, const std::string& path_and_query,
                                                                  int timeout_ms, size_t max_message,
                                                                  const std::string& extra_headers) {
    std::string rest = base_url;
    for (std::string_view scheme : {"http://", "ws://"}) {
        if (rest.rfind(scheme, 0) == 0) rest = rest.substr(scheme.size());
    }
    if (rest.size() == base_url.size()) {
        return fail(ErrorCode::InvalidInput, "WebSocket URL must start with http:// or ws:// (got '" + base_url + "')", "url");
    }
    std::string prefix;
    if (const size_t slash = rest.find('/'); slash != std::string::npos) {
        prefix = rest.substr(slash);
        rest.resize(slash);
        while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    }
    const std::string host_port = rest;
    std::string host = rest, port = "80";
    if (!host.empty() && host[0] == '[') {  // [v6]:port
        const size_t close = host.find(']');
        if (close == std::string::npos) return fail(ErrorCode::InvalidInput, "invalid URL '" + base_url + "'", "url");
        if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
        host = host.substr(1, close - 1);
    } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
        port = host.substr(colon + 1);
        host.resize(colon);
    }
    const std::string url = "ws://" + host_port + prefix + path_and_query;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        return fail(ErrorCode::Unavailable, "cannot reach " + url + ": " + gai_strerror(rc));
    }
    int fd = -1;
    std::string why = "connection refused";
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, remaining_ms(deadline))) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err == 0) break;
            why = std::strerror(err);
        } else {
            why = errno == EINPROGRESS ? "timed out" : std::strerror(errno);
        }
        ::close(fd);
        fd = -1;
    }
    ::freeaddrinfo(found);
    if (fd < 0) return fail(ErrorCode::Unavailable, "cannot reach " + url + ": " + why);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::unique_ptr<WebSocketClient> client(new WebSocketClient(fd, max_message));
    client->m_url = url;

    unsigned char nonce[16];
    RAND_bytes(nonce, sizeof nonce);
    const std::string key = base64(nonce, sizeof nonce);
    const std::string hello = "GET " + (prefix + path_and_query) + " HTTP/1.1\r\nHost: " + host_port +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                              "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: MyCandyLocal\r\n" + extra_headers + "\r\n";
    if (!send_all(fd, hello)) return fail(ErrorCode::Unavailable, "cannot reach " + url + ": the handshake could not be sent");
    std::string head;
    size_t end = std::string::npos;
    while (end == std::string::npos) {
        if (head.size() > 16384) return fail(ErrorCode::Unavailable, url + " answered the WebSocket handshake with an oversized header");
        if (!wait_fd(fd, POLLIN, remaining_ms(deadline))) {
            return fail(ErrorCode::Unavailable, url + " did not answer the WebSocket handshake within " + std::to_string(timeout_ms) + " ms");
        }
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return fail(ErrorCode::Unavailable, url + " closed the connection during the WebSocket handshake");
        head.append(buf, static_cast<size_t>(n));
        end = head.find("\r\n\r\n");
    }
    const std::string status_line = head.substr(0, head.find("\r\n"));
    if (status_line.rfind("HTTP/1.1 101", 0) != 0) {
        return fail(ErrorCode::Unavailable, url + " refused the WebSocket upgrade (" + status_line + "): " + head.substr(end + 4, 400));
    }
    const std::string headers = lower(head.substr(0, end));
    const std::string want = "\r\nsec-websocket-accept: " + lower(websocket_accept_key(key));
    if (headers.find(want) == std::string::npos) {
        return fail(ErrorCode::Unavailable, url + " answered the WebSocket handshake with a wrong Sec-WebSocket-Accept");
    }
    if (auto first = client->m_reader.push(std::string_view(head).substr(end + 4)); !first) {
        return std::unexpected(first.error());
    } else {
        client->m_pending = std::move(*first);
    }
    return client;
}

WebSocketClient::~WebSocketClient() {
    if (m_fd >= 0) ::close(m_fd);
}

bool WebSocketClient::send_frame(WsOpcode op, std::string_view payload) {
    uint32_t mask = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&mask), sizeof mask);
    return m_fd >= 0 && send_all(m_fd, websocket_frame(op, payload, mask));
}

Result<std::optional<WsMessage>> WebSocketClient::read(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        while (!m_pending.empty()) {
            WsMessage m = std::move(m_pending.front());
            m_pending.erase(m_pending.begin());
            if (m.op == WsOpcode::Ping) {
                send_frame(WsOpcode::Pong, m.payload);
                continue;
            }
            if (m.op == WsOpcode::Pong) continue;
            if (m.op == WsOpcode::Close) {
                send_frame(WsOpcode::Close, m.payload.substr(0, 2));
                ::close(m_fd);
                m_fd = -1;
                return fail(ErrorCode::Unavailable, m_url + " closed the WebSocket");
            }
            return std::optional<WsMessage>(std::move(m));
        }
        if (m_fd < 0) return fail(ErrorCode::Unavailable, m_url + " is closed");
        if (!wait_fd(m_fd, POLLIN, remaining_ms(deadline))) return std::optional<WsMessage>();
        char buf[65536];
        const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            ::close(m_fd);
            m_fd = -1;
            return fail(ErrorCode::Unavailable, m_url + " dropped the WebSocket connection");
        }
        auto msgs = m_reader.push(std::string_view(buf, static_cast<size_t>(n)));
        if (!msgs) {
            close();
            return fail(ErrorCode::Unavailable, m_url + ": " + msgs.error().message);
        }
        for (auto& m : *msgs) m_pending.push_back(std::move(m));
    }
}

bool WebSocketClient::send(WsOpcode op, std::string_view payload) { return send_frame(op, payload); }

void WebSocketClient::close(uint16_t code) {
    if (m_fd < 0) return;
    send_frame(WsOpcode::Close, std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)});
    ::close(m_fd);
    m_fd = -1;
}

void WebSocketClient::drop() {
    if (m_fd < 0) return;
    ::close(m_fd);
    m_fd = -1;
}

}  // namespace mc::http
