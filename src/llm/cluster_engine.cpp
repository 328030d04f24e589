#include "llm/cluster_engine.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/log.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "llm/llama_engine.hpp"
#include "llm/openai_engine.hpp"

namespace mc::llm {
namespace {

using namespace std::chrono_literals;

// Splits "host:port" / "[v6]:port" (already checked by parse_rpc_servers).
std::pair<std::string, std::string> split_host_port(const std::string& server) {
    const size_t colon = server.rfind(':');
    std::string host = server.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return {host, server.substr(colon + 1)};
}

// "" when a TCP connection to host:port opens within `timeout_ms`, else why not.
std::string try_connect(const std::string& server, int timeout_ms) {
    const auto [host, port] = split_host_port(server);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        return std::string("cannot resolve the name (") + gai_strerror(rc) + ")";
    }
    std::string why = "no address";
    for (addrinfo* a = found; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            why = std::strerror(errno);
            continue;
        }
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, timeout_ms);
            if (rc == 1) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err == 0 ? 0 : -1;
                errno = err;
            } else {
                errno = rc == 0 ? ETIMEDOUT : errno;
                rc = -1;
            }
        }
        const int saved = errno;
        ::close(fd);
        if (rc == 0) {
            freeaddrinfo(found);
            return "";
        }
        why = std::strerror(saved);
    }
    freeaddrinfo(found);
    return why;
}

// Writes `content` to `path` readable by us only; the error, or "".
std::string write_private_file(const std::string& path, const std::string& content) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return "cannot write " + path + ": " + std::strerror(errno);
    ::fchmod(fd, 0600);
    const bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    return ok ? std::string() : "cannot write " + path;
}

int free_local_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
    return out;
}

bool looks_like_error(std::string_view line) {
    for (const char* w : {"error", "Error", "ERROR", "failed", "Failed", "abort", "Abort", "crashed", "GGML_ASSERT"}) {
        if (line.find(w) != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace

std::vector<std::string> unreachable_servers(const std::vector<std::string>& servers, int timeout_ms) {
    std::vector<std::string> out;
    for (const auto& s : servers) {
        if (std::string why = try_connect(s, timeout_ms); !why.empty()) out.push_back(s + " (" + why + ")");
    }
    return out;
}

ClusterEngine::ClusterEngine(ClusterEngineOptions options) : m_opt(std::move(options)) {
    if (auto v = ModelVocab::load(m_opt.model_path, m_opt.fallback_template)) {
        m_vocab = *v;
    } else {
        m_vocab_error = v.error().message;
    }
    m_thread = std::thread([this] { supervise(); });
}

ClusterEngine::~ClusterEngine() { shutdown(); }

void ClusterEngine::shutdown() {
    {
        std::lock_guard lock(m_mu);
        m_quit = true;
        m_cv.notify_all();
    }
    m_stop->store(true);  // Ends the child (SIGTERM to its group, SIGKILL after the grace).
    std::lock_guard join(m_join_mu);
    if (m_thread.joinable()) m_thread.join();
}

void ClusterEngine::set_state(const std::string& state, const std::string& detail) {
    std::lock_guard lock(m_mu);
    set_state_locked(state, detail);
}

void ClusterEngine::set_state_locked(const std::string& state, const std::string& detail) {
    if (state == "error" && (m_state != "error" || m_detail != detail)) log::error("text engine (RPC): ", detail);
    if (state == "error") ++m_failures;
    m_state = state;
    m_detail = detail;
    m_cv.notify_all();
}

std::string ClusterEngine::last_error_line() const {
    for (auto it = m_last_lines.rbegin(); it != m_last_lines.rend(); ++it) {
        if (looks_like_error(*it)) return *it;
    }
    return m_last_lines.empty() ? std::string() : m_last_lines.back();
}

void ClusterEngine::supervise() {
    if (!m_vocab) return set_state("error", m_vocab_error);
    if (m_opt.rpc_servers.empty()) return set_state("error", "llm.rpc_servers lists no server");
    auto backoff = 1000ms;
    const std::string model_name = std::filesystem::path(m_opt.model_path).filename().string();
    while (true) {
        {
            std::lock_guard lock(m_mu);
            if (m_quit) return;
            m_retry_now = false;
        }
        // ggml's RPC client aborts on a server it cannot reach: check each first, and name it.
        const auto down = unreachable_servers(m_opt.rpc_servers, m_opt.connect_timeout_ms);
        if (!down.empty()) {
            set_state("error", "RPC server " + join(down, ", ") +
                                   " cannot be reached: start ggml-rpc-server there (see the README) or fix llm.rpc_servers");
        } else {
            const int port = free_local_port();
            const std::string key = random_hex(16);
            if (auto w = write_private_file(m_opt.key_file, key); !w.empty()) {
                set_state("error", w);
                std::unique_lock lock(m_mu);
                m_cv.wait_for(lock, backoff, [this] { return m_quit || m_retry_now; });
                continue;
            }
            const int threads = m_opt.threads > 0 ? m_opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
            std::vector<std::string> argv = {m_opt.llama_server, "--model", m_opt.model_path, "--host", "127.0.0.1",
                                             "--port", std::to_string(port), "--ctx-size", std::to_string(m_opt.context_size),
                                             "--threads", std::to_string(threads), "--n-gpu-layers",
                                             std::to_string(m_opt.gpu_layers < 0 ? 999 : m_opt.gpu_layers), "--rpc",
                                             join(m_opt.rpc_servers, ","), "--parallel", "1", "--no-webui", "--no-warmup",
                                             "--cache-reuse", "64", "--fit", "off", "--api-key-file",
                                             m_opt.key_file, "--cache-type-k", m_opt.kv_type, "--cache-type-v", m_opt.kv_type};
            if (m_opt.kv_type != "f16") {  // A quantized V cache needs flash attention.
                argv.push_back("--flash-attn");
                argv.push_back("on");
            }
            {
                std::lock_guard lock(m_mu);
                m_port = port;
                m_key = key;
                m_ready = false;
                ++m_generation;
                m_last_lines.clear();
            }
            set_state("loading", "loading " + model_name + " onto " + std::to_string(m_opt.rpc_servers.size()) +
                                     " RPC server(s): " + join(m_opt.rpc_servers, ", "));
            log::info("text engine (RPC): starting ", join(argv, " "));
            const auto started = std::chrono::steady_clock::now();
            ProcessOptions po;
            po.timeout = std::chrono::hours(24 * 365 * 10);
            po.cancel = m_stop;
            po.own_group = true;
            po.die_with_parent = true;
            po.on_line = [this, &model_name, started](std::string_view line) {
                log::debug("llama-server: ", line);
                std::lock_guard lock(m_mu);
                m_last_lines.emplace_back(line);
                if (m_last_lines.size() > 40) m_last_lines.pop_front();
                if (!m_ready && line.find("listening on ") != std::string_view::npos) {
                    m_ready = true;
                    m_state = "ready";
                    m_detail = "model " + model_name + " on RPC servers " + join(m_opt.rpc_servers, ", ");
                    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
                    log::info("text engine (RPC): ready in ", ms.count(), " ms (", m_detail, ")");
                    m_cv.notify_all();
                }
            };
            auto r = run_process(argv, po);
            {
                std::lock_guard lock(m_mu);
                m_ready = false;
                if (m_quit) return;
                std::string why;
                const std::string last = last_error_line();
                if (!r) why = r.error().message;
                else if (r->term_signal) why = "it ended by signal " + std::to_string(r->term_signal);
                else why = "it exited with code " + std::to_string(r->exit_code);
                if (!last.empty()) why += "; its last words: " + last.substr(0, 300);
                set_state_locked("error", "the RPC text engine (llama-server) stopped: " + why);
            }
            if (std::chrono::steady_clock::now() - started > 30s) backoff = 1000ms;  // It ran a while: retry soon.
        }
        // Try again after a pause (longer each time it fails at once), or at once when a turn asks.
        std::unique_lock lock(m_mu);
        m_cv.wait_for(lock, backoff, [this] { return m_quit || m_retry_now; });
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30000ms);
    }
}

Result<GenerateResult> ClusterEngine::generate(const GenerateRequest& request) {
    int port = 0;
    std::string key;
    uint64_t generation = 0;
    {
        std::unique_lock lock(m_mu);
        // A turn waits while the model loads onto the servers (minutes for a big model). A failed
        // child is tried again at once for it; when that attempt fails too, the turn says why.
        bool asked = false;
        uint64_t asked_at = 0;
        while (!m_quit && !m_ready) {
            if (request.cancel && request.cancel->load()) {
                GenerateResult cancelled;
                cancelled.finish = FinishReason::Cancelled;
                return cancelled;
            }
            if (m_state == "error") {
                if (asked && m_failures > asked_at) return fail(ErrorCode::Unavailable, m_detail);
                if (!asked) {
                    asked = true;
                    asked_at = m_failures;
                    m_retry_now = true;
                    m_cv.notify_all();
                }
            }
            m_cv.wait_for(lock, 100ms);
        }
        if (m_quit) return fail(ErrorCode::Unavailable, "the server is shutting down");
        port = m_port;
        key = m_key;
        generation = m_generation;
    }
    OpenAiEngineOptions o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port);
    o.mode = "completion";
    o.api_key = key;
    o.chat_template = m_vocab->chat_template();
    o.context_size = m_opt.context_size;
    OpenAiEngine child(o);
    auto r = child.generate(request);
    if (r) return r;
    // Did the child die under this reply (an RPC server went away)? Its exit is seen a moment
    // after the connection drops.
    std::unique_lock lock(m_mu);
    m_cv.wait_for(lock, 3s, [&] { return m_quit || m_generation != generation || !m_ready; });
    if (!m_ready || m_generation != generation) return fail(ErrorCode::Unavailable, "the reply stopped: " + m_detail);
    return r;
}

EngineStatus ClusterEngine::status() const {
    std::lock_guard lock(m_mu);
    EngineStatus st;
    st.state = m_state;
    st.detail = m_detail;
    st.model = std::filesystem::path(m_opt.model_path).filename().string();
    st.backend = "rpc";
    return st;
}

int ClusterEngine::count_tokens(std::string_view text) const {
    return m_vocab ? m_vocab->count_tokens(text) : static_cast<int>(text.size() / 3 + 1);
}

std::string ClusterEngine::format_prompt(const std::vector<ChatMessage>& messages, bool add_assistant) const {
    if (m_vocab) return m_vocab->format_prompt(messages, add_assistant);
    auto r = apply_template(m_opt.fallback_template, messages, add_assistant);
    return r ? *r : std::string();
}

std::optional<int> ClusterEngine::prompt_size(const GenerateRequest& request) const {
    return m_vocab ? m_vocab->prompt_size(request) : std::nullopt;
}

Result<std::vector<int32_t>> ClusterEngine::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    if (!m_vocab) return fail(ErrorCode::Unavailable, m_vocab_error);
    return m_vocab->tokenize(text, add_special, parse_special);
}

Result<std::string> ClusterEngine::detokenize(const std::vector<int32_t>& tokens) const {
    if (!m_vocab) return fail(ErrorCode::Unavailable, m_vocab_error);
    return m_vocab->detokenize(tokens);
}

std::string ClusterEngine::chat_template() const { return m_vocab ? m_vocab->chat_template() : m_opt.fallback_template; }

}  // namespace mc::llm
