// bench/bench_util: what the benchmark programs share — starting servers, reading SSE turns,
// medians. Header-only; benchmarks are small programs.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace bench {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

inline std::string range(const std::vector<double>& v, const char* fmt = "%.2f") {
    if (v.empty()) return "-";
    char a[32], b[32];
    std::snprintf(a, sizeof a, fmt, *std::min_element(v.begin(), v.end()));
    std::snprintf(b, sizeof b, fmt, *std::max_element(v.begin(), v.end()));
    return std::string(a) + "-" + b;
}

inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// A child process (mycandy or llama-server) with its stderr in `log`.
struct Process {
    pid_t pid = -1;
    int port = 0;
    void stop() {
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, nullptr, 0);
        }
        pid = -1;
    }
    ~Process() { stop(); }
};

inline pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
    const pid_t pid = fork();
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    return pid;
}

// Waits until GET `path` answers 200 (and, for mycandy, the model is loaded).
inline bool wait_ready(int port, const std::string& path, int seconds = 120) {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < seconds * 50; ++i) {
        auto r = c.Get(path.c_str());
        if (r && r->status == 200) {
            if (path != "/api/health") return true;
            const Json h = Json::parse(r->body, nullptr, false);
            if (h.is_object() && h["components"]["llm"]["state"] == "ready") return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

inline void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

struct StreamResult {
    double ttft_ms = 0;    // Request sent -> first text.
    double total_ms = 0;   // Request sent -> stream ended.
    double decode_tps = 0;  // Text events after the first, per second.
    int pieces = 0;
    Json final;             // mycandy: the done event's data; llama-server: the last chunk.
    std::string text;
    std::string raw;  // The first bytes of the body (for error reports).
};

// POSTs and reads an SSE stream. `kind` = "mycandy" (event: token/done) or "llama" (data-only
// /completion chunks with "content" and, at the end, "timings").
// `on_event` sees every event (name, data) as it arrives.
inline StreamResult stream_post(int port, const std::string& path, const Json& body, const std::string& kind,
                                const std::function<void(const std::string&, const Json&)>& on_event = {}) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(3600, 0);
    StreamResult out;
    std::string buf, event;
    Clock::time_point first{}, last{};
    const auto start = Clock::now();
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.headers.emplace("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
        if (out.raw.size() < 400) out.raw.append(d, std::min(n, 400 - out.raw.size()));
        buf.append(d, n);
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (line.rfind("event: ", 0) == 0) {
                event = line.substr(7);
                continue;
            }
            if (line.rfind("data: ", 0) != 0) continue;
            const Json j = Json::parse(line.substr(6), nullptr, false);
            if (j.is_discarded()) continue;
            if (on_event) on_event(event, j);
            std::string piece;
            if (kind == "mycandy") {
                if (event == "token") piece = j.value("text", "");
                else if (event == "done" || event == "error") out.final = j;
            } else {
                piece = j.value("content", "");
                if (j.contains("timings")) out.final = j;
            }
            if (!piece.empty()) {
                const auto now = Clock::now();
                if (out.pieces++ == 0) first = now;
                last = now;
                out.text += piece;
            }
        }
        return true;
    };
    c.send(req);
    out.total_ms = ms_since(start);
    if (out.pieces > 0) {
        out.ttft_ms = std::chrono::duration<double, std::milli>(first - start).count();
        const double span = std::chrono::duration<double>(last - first).count();
        out.decode_tps = span > 0 ? (out.pieces - 1) / span : 0;
    }
    return out;
}

}  // namespace bench
