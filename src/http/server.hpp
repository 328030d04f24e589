// http/server: our HTTP layer — routes with {param} segments, plain and streamed (SSE) responses,
// static files for the UI. The only place in src/ that includes cpp-httplib.
// Thread safety: register routes before listen(); handlers run on a pool of worker threads and
// must be safe to call concurrently; stop() may be called from any thread.
#pragma once

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <functional>
#include <variant>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "http/websocket.hpp"

namespace mc::http {

enum class Method { Get, Post, Put, Patch, Delete };

// One part of a multipart/form-data body.
struct Part {
    std::string name;
    std::string filename;
    std::string content_type;
    std::string data;
};

struct Request {
    std::string method;
    std::string path;
    // The raw body, whatever its Content-Type (form-encoded bodies are not parsed, so JSON sent with
    // curl's default type arrives whole); empty for multipart/form-data, whose parts are in `parts`.
    std::string body;
    std::vector<Part> parts;
    std::map<std::string, std::string> params;             // From {name} segments of the route.
    std::multimap<std::string, std::string> query;         // Decoded query string.
    std::multimap<std::string, std::string> headers;       // As received (httplib compares case-insensitively).
    std::string remote_addr;
    int remote_port = -1;
    int local_port = -1;

    const std::string& param(const std::string& name) const;
    std::optional<std::string> query_param(const std::string& name) const;
    std::string header(const std::string& name) const;
    // The media type of the body, lower-cased, without parameters ("application/json").
    std::string media_type() const;
    // An uploaded file: the raw body, or the one part of a multipart/form-data body (curl -F,
    // an HTML form). Empty when a form holds no part or more than one.
    const std::string& upload() const;
    // Whether the client has closed its side of the connection (it went away, or gave up waiting):
    // for handlers that compute long before they answer. Linux: finds the request's socket once
    // and asks the kernel; false when it cannot tell.
    bool client_gone() const;

private:
    mutable int m_socket = -2;  // -2: not looked up yet; -1: not found.
};

// Sets `flag` once the request's client has gone, checking every 100 ms until destroyed — so a
// long computation (a transcription) can stop when nobody waits for it. Owns one thread, joined
// in the destructor.
class ClientWatch {
public:
    ClientWatch(const Request& request, std::shared_ptr<std::atomic<bool>> flag);
    ~ClientWatch();
    ClientWatch(const ClientWatch&) = delete;
    ClientWatch& operator=(const ClientWatch&) = delete;

private:
    std::mutex m_mu;  // Guards m_done (the watcher waits on m_cv for it).
    std::condition_variable m_cv;
    bool m_done = false;
    std::thread m_thread;
};

// Where a streamed response writes. write() returns false once the client has gone.
class StreamSink {
public:
    virtual ~StreamSink() = default;
    virtual bool write(std::string_view data) = 0;
    virtual bool connected() const = 0;
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    // When set, the body is produced by this function writing to the sink (chunked transfer);
    // it runs on the worker thread and returns when the stream is over.
    std::function<void(StreamSink&)> stream;
};

using Handler = std::function<Response(const Request&)>;

// A WebSocket connection taken over from an HTTP request (RFC 6455, server side). Every socket read
// and write happens on the thread that calls receive() (the request's worker: TLS sessions are not
// thread-safe); send() may be called from any thread: it queues the message and wakes receive(),
// which writes it.
class WsConnection {
public:
    virtual ~WsConnection() = default;
    // Waits up to `timeout_ms` for the client's next text or binary message, writing queued messages
    // and answering pings meanwhile. nullopt: nothing yet. An error: the connection is over (see
    // close_code()) — closed by the client, broken, silent for 45 s, or a malformed frame.
    virtual Result<std::optional<WsMessage>> receive(int timeout_ms) = 0;
    // Queues a message; false once the connection is over.
    virtual bool send(WsOpcode op, std::string payload) = 0;
    // Writes what is queued, then a close frame with `code`, and ends the connection.
    virtual void close(uint16_t code, std::string_view reason) = 0;
    // 0 while open; then the close code: the client's (1000 normal, 1001 tab closed, ...), ours when we
    // closed, 1006 when the connection broke without a close frame, 1002/1009 for bad frames.
    virtual int close_code() const = 0;
    // Bytes queued by send() and not yet written (a slow client).
    virtual size_t queued_bytes() const = 0;
};
// Runs one WebSocket session on the request's worker thread; the connection ends when it returns.
using WsSession = std::function<void(WsConnection&)>;
// A WebSocket route's answer to the upgrade request: a refusal (any HTTP response) or the session.
using WsAnswer = std::variant<Response, WsSession>;
using WsHandler = std::function<WsAnswer(const Request&)>;

struct ServerOptions {
    size_t max_body_bytes = 64u << 20;
    int worker_threads = 256;  // At most: open SSE streams (and keep-alive connections) each hold one.
    int spare_workers = 4;     // Idle ones kept for the next connections; more end after the timeout.
    std::chrono::milliseconds worker_idle_timeout{10000};
    // Builds the response for errors the layer itself detects (no route, body too large, exception).
    std::function<Response(int status, const std::string& message)> error_response;
    // https: PEM certificate and key files (see http/tls); empty = plain http.
    std::string tls_cert_file;
    std::string tls_key_file;
};

class Server {
public:
    explicit Server(ServerOptions options);
    ~Server();

    // Pattern segments like "{id}" match one non-empty path segment without '/'.
    void route(Method method, const std::string& pattern, Handler handler);
    // Serves files under `dir` at `prefix`; unknown paths without an extension get index.html
    // (single-page app). Paths with "..", hidden segments or odd characters are refused.
    void serve_static(const std::string& prefix, const std::string& dir);
    void redirect(const std::string& from, const std::string& to);
    // A WebSocket route (GET with Upgrade: websocket; the access guard has run). Requests that are
    // not an upgrade get 426. Messages over `max_message` bytes end the connection (1009).
    void websocket(const std::string& pattern, WsHandler handler, size_t max_message = 1u << 20);
    // Access control: a returned response is sent instead of the route's. Runs before routing for
    // requests without a body, and after the body is read for POST/PUT/PATCH/DELETE (so a refused
    // body never stays on a keep-alive connection). Set before bind().
    void set_guard(std::function<std::optional<Response>(const Request&)> guard);

    // Binds the socket. Fails with a message naming the address and the reason (e.g. in use).
    Result<void> bind(const std::string& host, int port);
    int port() const { return m_port; }
    // Serves until stop(). Returns after in-flight requests are done, and at once when stop() came
    // first (a signal during start-up).
    void run();
    // Stops the server whenever it is called: before, during or after run() began listening.
    void stop();
    bool stopping() const { return m_stopping.load(); }

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
    int m_port = 0;
    std::atomic<bool> m_stopping{false};
    std::atomic<bool> m_run_entered{false};
    std::atomic<bool> m_run_left{false};
};

// The SSE wire form of one event.
std::string sse_event(std::string_view event, std::string_view data);

}  // namespace mc::http
