#include "http/server.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "core/log.hpp"
#include "http/worker_pool.hpp"

namespace mc::http {
namespace {

const std::string kEmpty;

// When the request this worker thread handles began (set before routing, read by the logger that
// httplib calls once the response, streamed ones included, is written; reset after each request).
thread_local std::chrono::steady_clock::time_point t_request_started{};

std::string to_regex(const std::string& pattern, std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < pattern.size();) {
        if (pattern[i] == '{') {
            const size_t end = pattern.find('}', i);
            names.push_back(pattern.substr(i + 1, end - i - 1));
            out += "([^/]+)";
            i = end + 1;
        } else {
            const char c = pattern[i++];
            if (std::strchr(".+*?^$()[]|\\", c)) out += '\\';
            out += c;
        }
    }
    return out;
}

// httplib's queue of accepted connections, served by a WorkerPool (httplib's own ThreadPool starts
// all its threads at once and keeps them: see http/worker_pool.hpp).
class PoolQueue final : public httplib::TaskQueue {
public:
    PoolQueue(size_t max, size_t spare, std::chrono::milliseconds idle) : m_pool(max, spare, idle) {}
    void enqueue(std::function<void()> fn) override { m_pool.submit(std::move(fn)); }
    void shutdown() override { m_pool.shutdown(); }

private:
    WorkerPool m_pool;
};

class HttplibSink : public StreamSink {
public:
    explicit HttplibSink(httplib::DataSink& sink) : m_sink(sink) {}
    // A write fails once the client has gone. (httplib's is_writable() only says whether a write
    // would block right now: a slow reader is not a lost one.)
    bool write(std::string_view data) override {
        if (!m_ok) return false;
        m_ok = m_sink.write(data.data(), data.size());
        return m_ok;
    }
    bool connected() const override { return m_ok; }

private:
    httplib::DataSink& m_sink;
    bool m_ok = true;
};

std::string content_type_for(const std::string& path) {
    static const std::map<std::string, std::string> types = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".jpg", "image/jpeg"}, {".webp", "image/webp"}, {".ico", "image/x-icon"},
        {".woff2", "font/woff2"}, {".woff", "font/woff"}, {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"}, {".webmanifest", "application/manifest+json"},
    };
    const auto ext = std::filesystem::path(path).extension().string();
    const auto it = types.find(ext);
    return it == types.end() ? "application/octet-stream" : it->second;
}

// Only plain relative paths of [A-Za-z0-9._-/] whose segments do not start with '.'.
bool safe_relative(const std::string& rel) {
    if (rel.size() > 512) return false;
    for (char c : rel) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/')) return false;
    }
    std::stringstream ss(rel);
    std::string seg;
    while (std::getline(ss, seg, '/')) {
        if (!seg.empty() && seg[0] == '.') return false;
    }
    return true;
}

bool read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream buf;
    buf << in.rdbuf();
    out = buf.str();
    return true;
}

}  // namespace

const std::string& Request::param(const std::string& name) const {
    const auto it = params.find(name);
    return it == params.end() ? kEmpty : it->second;
}

std::optional<std::string> Request::query_param(const std::string& name) const {
    const auto it = query.find(name);
    if (it == query.end()) return std::nullopt;
    return it->second;
}

std::string Request::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    }
    return {};
}

const std::string& Request::upload() const {
    if (parts.empty()) return body;
    return parts.size() == 1 ? parts.front().data : kEmpty;
}

namespace {

// The port and numeric address of a socket's end (`peer` or our own).
bool socket_end(int fd, bool peer, int& port, std::string& addr) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if ((peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len)) != 0) return false;
    char host[NI_MAXHOST] = {};
    char serv[NI_MAXSERV] = {};
    if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return false;
    port = std::atoi(serv);
    addr = host;
    return true;
}

// The connected socket between our `local_port` and the client's address and port, or -1.
int find_socket(int local_port, int remote_port, const std::string& remote_addr) {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return -1;
    int found = -1;
    while (dirent* e = readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || fd < 0 || fd == dirfd(dir)) continue;
        struct stat st{};
        if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        int lp = 0, rp = 0;
        std::string la, ra;
        if (socket_end(static_cast<int>(fd), false, lp, la) && lp == local_port &&
            socket_end(static_cast<int>(fd), true, rp, ra) && rp == remote_port && ra == remote_addr) {
            found = static_cast<int>(fd);
            break;
        }
    }
    closedir(dir);
    return found;
}

}  // namespace

bool Request::client_gone() const {
    if (m_socket == -2) m_socket = local_port > 0 && remote_port > 0 ? find_socket(local_port, remote_port, remote_addr) : -1;
    if (m_socket < 0) return false;
    pollfd p{m_socket, POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

ClientWatch::ClientWatch(const Request& request, std::shared_ptr<std::atomic<bool>> flag) {
    // A copy of what finds the socket: the request may be moved while this watches.
    m_thread = std::thread([this, local = request.local_port, remote = request.remote_port, addr = request.remote_addr,
                            flag = std::move(flag)] {
        Request probe;
        probe.local_port = local;
        probe.remote_port = remote;
        probe.remote_addr = addr;
        std::unique_lock lock(m_mu);
        while (!m_done) {
            if (probe.client_gone()) {
                flag->store(true);
                return;
            }
            m_cv.wait_for(lock, std::chrono::milliseconds(100));
        }
    });
}

ClientWatch::~ClientWatch() {
    {
        std::lock_guard lock(m_mu);
        m_done = true;
    }
    m_cv.notify_all();
    m_thread.join();
}

std::string Request::media_type() const {
    std::string t = header("Content-Type");
    t = t.substr(0, t.find(';'));
    std::string out;
    for (char c : t) {
        if (c != ' ' && c != '\t') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

struct Server::Impl {
    // Plain, or httplib::SSLServer when ServerOptions names a certificate.
    std::unique_ptr<httplib::Server> owned;
    httplib::Server* server_ptr = nullptr;
    httplib::Server& server_ref() { return *server_ptr; }
    ServerOptions options;
    int listen_fd = -1;  // Seen in the socket-options hook, to raise the backlog after bind.
    // Access control (set_guard). Set before listening, then only read.
    std::function<std::optional<Response>(const Request&)> guard;
};

Server::Server(ServerOptions options) : m_impl(std::make_unique<Impl>()) {
    m_impl->options = std::move(options);
    if (!m_impl->options.tls_cert_file.empty()) {
        m_impl->owned = std::make_unique<httplib::SSLServer>(m_impl->options.tls_cert_file.c_str(),
                                                             m_impl->options.tls_key_file.c_str());
    } else {
        m_impl->owned = std::make_unique<httplib::Server>();
    }
    m_impl->server_ptr = m_impl->owned.get();
    auto& svr = m_impl->server_ref();
    const auto& o = m_impl->options;
    svr.new_task_queue = [max = o.worker_threads, spare = o.spare_workers, idle = o.worker_idle_timeout] {
        return new PoolQueue(static_cast<size_t>(max), static_cast<size_t>(spare), idle);
    };
    svr.set_payload_max_length(m_impl->options.max_body_bytes);
    svr.set_keep_alive_max_count(1000);
    // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would let two servers share
    // a port silently instead of the second one failing with "address in use".
    svr.set_socket_options([this](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        m_impl->listen_fd = sock;
    });
    auto make_error = [this](int status, const std::string& message) {
        if (m_impl->options.error_response) return m_impl->options.error_response(status, message);
        Response r;
        r.status = status;
        r.body = message;
        r.content_type = "text/plain";
        return r;
    };
    // One line per request: method, path (never the query string, which may carry the UI token),
    // status and duration. Bodies are never logged: they hold what people write.
    svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
        const auto started = t_request_started;
        t_request_started = {};
        if (started == std::chrono::steady_clock::time_point{}) {
            log::info("HTTP ", req.method, " ", req.path.substr(0, 200), " ", res.status);
            return;
        }
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
        log::info("HTTP ", req.method, " ", req.path.substr(0, 200), " ", res.status, " ", us / 1000, ".", (us / 100) % 10, " ms");
    });
    // Before routing: stamp the start, then the access guard for requests without a body (those
    // with one are checked by their route once it is read; see route()).
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        t_request_started = std::chrono::steady_clock::now();
        if (!m_impl->guard) return httplib::Server::HandlerResponse::Unhandled;
        if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE") {
            return httplib::Server::HandlerResponse::Unhandled;
        }
        Request r;
        r.method = req.method;
        r.path = req.path;
        r.remote_addr = req.remote_addr;
        for (const auto& [k, v] : req.params) r.query.emplace(k, v);
        for (const auto& [k, v] : req.headers) r.headers.emplace(k, v);
        auto out = m_impl->guard(r);
        if (!out) return httplib::Server::HandlerResponse::Unhandled;
        res.status = out->status;
        for (const auto& [k, v] : out->headers) res.set_header(k, v);
        res.set_content(out->body, out->content_type);
        return httplib::Server::HandlerResponse::Handled;
    });
    svr.set_error_handler(httplib::Server::HandlerWithResponse([make_error](const httplib::Request& req,
                                                                           httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string message;
        if (res.status == 404) message = "no route for " + req.method + " " + req.path;
        else if (res.status == 413) message = "request body too large";
        else if (res.status == 405) message = "method not allowed";
        else message = "request failed";
        const Response r = make_error(res.status, message);
        res.set_content(r.body, r.content_type);
        return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([make_error](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        // The library's text stays in the log: it names our internals, not the caller's mistake.
        log::error("unhandled exception in ", req.method, " ", req.path, ": ", what);
        const Response r = make_error(500, "internal error while handling " + req.method + " " + req.path +
                                               " (details in the server log)");
        res.status = 500;
        res.set_content(r.body, r.content_type);
    });
}

Server::~Server() = default;

namespace {

Request convert(const httplib::Request& req, const std::vector<std::string>& names) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    r.remote_addr = req.remote_addr;
    r.remote_port = req.remote_port;
    r.local_port = req.local_port;
    for (size_t i = 0; i < names.size() && i + 1 < req.matches.size(); ++i) r.params[names[i]] = req.matches[i + 1];
    for (const auto& [k, v] : req.params) r.query.emplace(k, v);
    for (const auto& [k, v] : req.headers) r.headers.emplace(k, v);
    return r;
}

void send(Response out, httplib::Response& res) {
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    if (out.stream) {
        auto fn = std::make_shared<std::function<void(StreamSink&)>>(std::move(out.stream));
        res.set_chunked_content_provider(out.content_type, [fn](size_t, httplib::DataSink& sink) {
            HttplibSink s(sink);
            (*fn)(s);
            sink.done();
            return true;
        });
    } else {
        res.set_content(out.body, out.content_type);
    }
}

}  // namespace

void Server::route(Method method, const std::string& pattern, Handler handler) {
    std::vector<std::string> names;
    const std::string regex = to_regex(pattern, names);
    auto& svr = m_impl->server_ref();
    if (method == Method::Get) {
        svr.Get(regex, [names, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
            send(handler(convert(req, names)), res);
        });
        return;
    }
    // Bodies are read here, not by httplib: its own reading parses form-encoded bodies (and refuses
    // those over 8 KB) and multipart ones, while our routes decide by content. httplib checks
    // Content-Length against the limit; chunked bodies are counted here.
    auto on_error = [this](int status) {
        return m_impl->options.error_response
                   ? m_impl->options.error_response(status, status == 413 ? "request body too large"
                                                                          : "request body could not be read")
                   : Response{status, "text/plain", "bad request body", {}, {}};
    };
    // The access guard runs after the body is read: a refused request's body must not stay on the
    // connection, where it would be read as the next request (and skip the guard).
    auto guarded = [this, handler](const Request& r, httplib::Response& res) {
        if (m_impl->guard) {
            if (auto refused = m_impl->guard(r)) {
                send(std::move(*refused), res);
                return;
            }
        }
        send(handler(r), res);
    };
    const size_t limit = m_impl->options.max_body_bytes;
    auto with_reader = [names, guarded, on_error, limit](const httplib::Request& req, httplib::Response& res,
                                                         const httplib::ContentReader& reader) {
        Request r = convert(req, names);
        size_t total = 0;
        bool too_large = false;
        auto count = [&](size_t n) {
            total += n;
            too_large = too_large || total > limit;
            return !too_large;
        };
        bool ok = true;
        if (req.is_multipart_form_data()) {
            ok = reader(
                [&r](const httplib::MultipartFormData& file) {
                    r.parts.push_back({file.name, file.filename, file.content_type, {}});
                    return r.parts.size() <= 100;
                },
                [&r, &count](const char* data, size_t n) {
                    if (r.parts.empty() || !count(n)) return false;
                    r.parts.back().data.append(data, n);
                    return true;
                });
        } else {
            ok = reader([&r, &count](const char* data, size_t n) {
                if (!count(n)) return false;
                r.body.append(data, n);
                return true;
            });
        }
        if (!ok || too_large) {
            send(on_error(too_large ? 413 : res.status >= 400 ? res.status : 400), res);
            return;
        }
        guarded(r, res);
    };
    // Not reached with httplib 0.11 (it reads every POST/PUT/PATCH/DELETE through the reader above);
    // kept so a library that dispatches bodiless requests differently still routes them, guarded.
    auto plain = [names, guarded](const httplib::Request& req, httplib::Response& res) {
        Request r = convert(req, names);
        r.body = req.body;
        guarded(r, res);
    };
    switch (method) {
        case Method::Get: break;
        case Method::Post: svr.Post(regex, with_reader); svr.Post(regex, plain); break;
        case Method::Put: svr.Put(regex, with_reader); svr.Put(regex, plain); break;
        case Method::Patch: svr.Patch(regex, with_reader); svr.Patch(regex, plain); break;
        case Method::Delete: svr.Delete(regex, with_reader); svr.Delete(regex, plain); break;
    }
}

namespace {

// A WebSocket on the socket of an upgraded request: plain, or through the request's TLS session.
// The socket is non-blocking while the session runs; all I/O happens in receive()'s thread.
class SocketWs final : public WsConnection {
public:
    SocketWs(int fd, SSL* ssl, size_t max_message) : m_fd(fd), m_ssl(ssl), m_reader(max_message) {
        m_wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        m_flags = ::fcntl(fd, F_GETFL);
        if (m_flags >= 0) ::fcntl(fd, F_SETFL, m_flags | O_NONBLOCK);
        m_last_heard = std::chrono::steady_clock::now();
    }
    ~SocketWs() override {
        if (m_wake >= 0) ::close(m_wake);
        if (m_flags >= 0) ::fcntl(m_fd, F_SETFL, m_flags);
    }

    // Writes the handshake's answer.
    bool accept(const std::string& key) {
        return write_all("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: " + websocket_accept_key(key) + "\r\n\r\n");
    }

    Result<std::optional<WsMessage>> receive(int timeout_ms) override {
        using Clock = std::chrono::steady_clock;
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (m_code.load()) return fail(ErrorCode::Unavailable, "the WebSocket is closed (" + std::to_string(m_code.load()) + ")");
            if (!flush()) return broken(1006);
            if (!m_inbox.empty()) {
                WsMessage m = std::move(m_inbox.front());
                m_inbox.pop_front();
                return std::optional<WsMessage>(std::move(m));
            }
            const auto now = Clock::now();
            // A client that has said nothing for a while is asked; one silent for 45 s is gone
            // (a phone that left the network sends no close frame and no TCP reset).
            if (now - m_last_heard > std::chrono::seconds(45)) return broken(1006);
            if (now - m_last_heard > std::chrono::seconds(15) && now - m_last_ping > std::chrono::seconds(15)) {
                m_last_ping = now;
                queue(websocket_frame(WsOpcode::Ping, "alive?"));
                continue;
            }
            const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
            if (left <= 0) return std::optional<WsMessage>();
            if (!(m_ssl && SSL_pending(m_ssl) > 0)) {
                pollfd p[2] = {{m_fd, POLLIN, 0}, {m_wake, POLLIN, 0}};
                const int r = ::poll(p, m_wake >= 0 ? 2 : 1, std::min(left, 1000));
                if (r < 0 && errno != EINTR) return broken(1006);
                if (r <= 0) continue;
                if (p[1].revents & POLLIN) {
                    uint64_t n = 0;
                    [[maybe_unused]] auto ignored = ::read(m_wake, &n, sizeof n);
                }
                if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            }
            char buf[16384];
            const long n = read_some(buf, sizeof buf);
            if (n == -1) continue;  // Nothing after all (a TLS record not yet whole).
            if (n <= 0) return broken(1006);
            m_last_heard = Clock::now();
            auto messages = m_reader.push(std::string_view(buf, static_cast<size_t>(n)));
            if (!messages) {
                const uint16_t code = messages.error().code == ErrorCode::TooLarge ? 1009 : 1002;
                close(code, messages.error().message);
                return std::unexpected(messages.error());
            }
            for (auto& m : *messages) {
                if (m.op == WsOpcode::Ping) {
                    queue(websocket_frame(WsOpcode::Pong, m.payload));
                } else if (m.op == WsOpcode::Close) {
                    const int code = m.payload.size() >= 2 ? (static_cast<unsigned char>(m.payload[0]) << 8) |
                                                                 static_cast<unsigned char>(m.payload[1])
                                                           : 1005;
                    queue(websocket_frame(WsOpcode::Close, m.payload.substr(0, 2)));
                    flush();
                    m_code = code;
                    return fail(ErrorCode::Unavailable, "the client closed the WebSocket (" + std::to_string(code) + ")");
                } else if (m.op == WsOpcode::Text || m.op == WsOpcode::Binary) {
                    m_inbox.push_back(std::move(m));
                }
            }
        }
    }

    bool send(WsOpcode op, std::string payload) override {
        if (m_code.load()) return false;
        queue(websocket_frame(op, payload));
        return true;
    }

    void close(uint16_t code, std::string_view reason) override {
        if (m_code.load()) return;
        std::string body{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
        body.append(reason.substr(0, 120));
        queue(websocket_frame(WsOpcode::Close, body));
        flush();
        m_code = code;
    }

    int close_code() const override { return m_code.load(); }
    size_t queued_bytes() const override {
        std::lock_guard lock(m_mu);
        return m_queued;
    }

private:
    Result<std::optional<WsMessage>> broken(int code) {
        if (!m_code.load()) m_code = code;
        return fail(ErrorCode::Unavailable, "the WebSocket connection broke");
    }
    void queue(std::string frame) {
        {
            std::lock_guard lock(m_mu);
            m_queued += frame.size();
            m_out.push_back(std::move(frame));
        }
        const uint64_t one = 1;
        if (m_wake >= 0) [[maybe_unused]] auto ignored = ::write(m_wake, &one, sizeof one);
    }
    // Writes every queued frame; false when the connection broke.
    bool flush() {
        for (;;) {
            std::string frame;
            {
                std::lock_guard lock(m_mu);
                if (m_out.empty()) return true;
                frame = std::move(m_out.front());
                m_out.pop_front();
                m_queued -= frame.size();
            }
            if (!write_all(frame)) return false;
        }
    }
    // >0 bytes read, 0 end of stream, -1 nothing yet, -2 error.
    long read_some(char* buf, size_t size) {
        if (m_ssl) {
            const int n = SSL_read(m_ssl, buf, static_cast<int>(size));
            if (n > 0) return n;
            const int e = SSL_get_error(m_ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
            return e == SSL_ERROR_ZERO_RETURN ? 0 : -2;
        }
        const ssize_t n = ::recv(m_fd, buf, size, 0);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
        return n;
    }
    bool write_all(std::string_view data) {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!data.empty()) {
            long n = 0;
            short want = POLLOUT;
            if (m_ssl) {
                const int w = SSL_write(m_ssl, data.data(), static_cast<int>(data.size()));
                if (w > 0) {
                    n = w;
                } else {
                    const int e = SSL_get_error(m_ssl, w);
                    if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return false;
                    want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                    n = -1;
                }
            } else {
                const ssize_t w = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
                n = w < 0 ? -1 : w;
            }
            if (n > 0) {
                data.remove_prefix(static_cast<size_t>(n));
                continue;
            }
            // A client that takes nothing for 10 s is gone.
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now()).count();
            if (left <= 0) return false;
            pollfd p{m_fd, want, 0};
            if (::poll(&p, 1, static_cast<int>(std::min<long>(left, 1000))) < 0 && errno != EINTR) return false;
        }
        return true;
    }

    const int m_fd;
    SSL* const m_ssl;
    int m_wake = -1;
    int m_flags = -1;
    WsReader m_reader;
    std::deque<WsMessage> m_inbox;  // Receive thread only.
    std::chrono::steady_clock::time_point m_last_heard;
    std::chrono::steady_clock::time_point m_last_ping{};
    std::atomic<int> m_code{0};
    mutable std::mutex m_mu;  // Guards m_out and m_queued (send() from any thread).
    std::deque<std::string> m_out;
    size_t m_queued = 0;
};

bool header_has(const httplib::Request& req, const char* name, const char* token) {
    std::string v = req.get_header_value(name);
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v.find(token) != std::string::npos;
}

}  // namespace

void Server::websocket(const std::string& pattern, WsHandler handler, size_t max_message) {
    std::vector<std::string> names;
    const std::string regex = to_regex(pattern, names);
    auto make_error = [this](int status, const std::string& message) {
        return m_impl->options.error_response ? m_impl->options.error_response(status, message)
                                              : Response{status, "text/plain", message, {}, {}};
    };
    m_impl->server_ref().Get(regex, [names, handler = std::move(handler), max_message, make_error](const httplib::Request& req,
                                                                                                 httplib::Response& res) {
        const std::string key = req.get_header_value("Sec-WebSocket-Key");
        if (!header_has(req, "Upgrade", "websocket") || !header_has(req, "Connection", "upgrade") || key.empty()) {
            Response r = make_error(426, "this address is a WebSocket: connect with ws:// or wss://");
            r.headers.emplace_back("Upgrade", "websocket");
            send(std::move(r), res);
            return;
        }
        if (req.get_header_value("Sec-WebSocket-Version") != "13") {
            Response r = make_error(426, "WebSocket version 13 is required");
            r.headers.emplace_back("Sec-WebSocket-Version", "13");
            send(std::move(r), res);
            return;
        }
        Request r = convert(req, names);
        WsAnswer answer = handler(r);
        if (auto* refused = std::get_if<Response>(&answer)) {
            send(std::move(*refused), res);
            return;
        }
        // Take the connection over: the request's socket (and TLS session), which this worker
        // thread owns until the handler returns. The client sends nothing before our 101, so no
        // bytes of the session sit in httplib's read buffer.
        const int fd = find_socket(req.local_port, req.remote_port, req.remote_addr);
        if (fd < 0) {
            send(make_error(500, "the WebSocket's socket was not found"), res);
            return;
        }
        SSL* ssl = const_cast<SSL*>(req.ssl);
        {
            SocketWs ws(fd, ssl, max_message);
            if (ws.accept(key)) std::get<WsSession>(answer)(ws);
            if (!ws.close_code()) ws.close(1001, "server going away");
        }
        // httplib still writes a response after this handler; with both directions shut, that
        // write fails and it closes the connection.
        ::shutdown(fd, SHUT_RDWR);
        res.status = 101;
    });
}

void Server::serve_static(const std::string& prefix, const std::string& dir) {
    auto handler = [prefix, dir, this](const Request& req) {
        std::string rel = req.path.size() > prefix.size() ? req.path.substr(prefix.size()) : "";
        while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
        if (rel.empty()) rel = "index.html";
        Response res;
        if (!safe_relative(rel)) {
            res = m_impl->options.error_response ? m_impl->options.error_response(404, "no such file")
                                                 : Response{404, "text/plain", "no such file", {}, {}};
            return res;
        }
        std::string body;
        std::string path = dir + "/" + rel;
        bool is_index = false;
        if (!std::filesystem::is_regular_file(path) && std::filesystem::path(rel).extension().empty()) {
            path = dir + "/index.html";  // Client-side route.
            is_index = true;
        }
        if (!read_file(path, body)) {
            return m_impl->options.error_response ? m_impl->options.error_response(404, "no such file: " + rel)
                                                  : Response{404, "text/plain", "no such file", {}, {}};
        }
        res.body = std::move(body);
        res.content_type = content_type_for(path);
        // Vite puts a content hash in asset names, so those can be cached for good.
        const bool hashed = rel.rfind("assets/", 0) == 0;
        res.headers.emplace_back("Cache-Control", hashed && !is_index ? "public, max-age=31536000, immutable" : "no-cache");
        return res;
    };
    route(Method::Get, prefix, handler);
    // httplib matches the whole path, so a second route takes everything below the prefix.
    m_impl->server_ref().Get(prefix + "/(.*)", [handler](const httplib::Request& req, httplib::Response& res) {
        Request r;
        r.method = req.method;
        r.path = req.path;
        const Response out = handler(r);
        res.status = out.status;
        for (const auto& [k, v] : out.headers) res.set_header(k, v);
        res.set_content(out.body, out.content_type);
    });
}

void Server::set_guard(std::function<std::optional<Response>(const Request&)> guard) {
    // Requests with a body are checked by their route once the body is read (see route()); the
    // others (GET, HEAD, OPTIONS, and anything no route takes) by the pre-routing handler.
    m_impl->guard = std::move(guard);
}

void Server::redirect(const std::string& from, const std::string& to) {
    m_impl->server_ref().Get(from, [to](const httplib::Request&, httplib::Response& res) { res.set_redirect(to, 302); });
}

Result<void> Server::bind(const std::string& host, int port) {
    if (!m_impl->server_ref().is_valid()) {
        return fail(ErrorCode::InvalidInput, "the https certificate or key cannot be used: " + m_impl->options.tls_cert_file + ", " +
                                                 m_impl->options.tls_key_file, "server.tls_cert");
    }
    // Probe first with the same options httplib will use, so the error can say why.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* info = nullptr;
    const std::string where = host + ":" + std::to_string(port);
    if (const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &info); rc != 0) {
        return fail(ErrorCode::InvalidInput, "cannot listen on " + where + ": " + gai_strerror(rc), "host");
    }
    const int fd = ::socket(info->ai_family, info->ai_socktype, info->ai_protocol);
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    const int rc = ::bind(fd, info->ai_addr, info->ai_addrlen);
    const int err = errno;
    ::close(fd);
    freeaddrinfo(info);
    if (rc != 0) {
        return fail(ErrorCode::Unavailable, "cannot listen on " + where + ": " + std::strerror(err) +
                                                (err == EADDRINUSE ? " (another program uses this port; try --port)" : ""));
    }
    if (port == 0) {
        m_port = m_impl->server_ref().bind_to_any_port(host);
        if (m_port <= 0) return fail(ErrorCode::Unavailable, "cannot listen on " + where);
    } else {
        if (!m_impl->server_ref().bind_to_port(host, port)) {
            return fail(ErrorCode::Unavailable, "cannot listen on " + where + ": " + std::strerror(errno));
        }
        m_port = port;
    }
    // httplib listens with a backlog of 5: dozens of clients connecting at once (a UI, streams,
    // the phone) would see SYNs dropped and a second's delay. Listening again raises it.
    if (m_impl->listen_fd >= 0) ::listen(m_impl->listen_fd, 1024);
    return {};
}

// stop() and run() may race (a signal during start-up): run() announces itself before it checks
// for a stop, and stop() announces itself before it checks whether run() began. Whichever comes
// second sees the other, so either run() returns at once or stop() waits until httplib listens and
// then stops it (httplib ignores a stop before it listens).
void Server::run() {
    m_run_entered = true;
    if (!m_stopping) m_impl->server_ref().listen_after_bind();
    m_run_left = true;
}

void Server::stop() {
    m_stopping = true;
    if (!m_run_entered) return;
    while (!m_impl->server_ref().is_running() && !m_run_left) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    m_impl->server_ref().stop();
}

std::string sse_event(std::string_view event, std::string_view data) {
    std::string out;
    out.reserve(event.size() + data.size() + 16);
    out += "event: ";
    out += event;
    out += "\ndata: ";
    // A newline inside data would end the field; JSON we send has none, but be safe.
    for (char c : data) {
        if (c == '\n') out += "\ndata: ";
        else out += c;
    }
    out += "\n\n";
    return out;
}

}  // namespace mc::http
