#include "server_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace mc::test {

int connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string make_temp_dir(const std::string& prefix) {
    std::random_device rd;
    auto dir = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    return dir.string();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, const std::string& content) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
}

namespace {

pid_t spawn(const std::vector<std::string>& args, const std::string& output_path) {
    std::vector<char*> argv;
    std::string bin = MYCANDY_BINARY;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        const int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

// Waits for the child up to `timeout_ms`; kills it when it overstays. Returns the exit code.
int wait_exit(pid_t pid, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

RunResult run_mycandy(const std::vector<std::string>& args, int timeout_ms) {
    const std::string out = make_temp_dir("mc-run") + "/output.txt";
    const pid_t pid = spawn(args, out);
    RunResult r;
    r.exit_code = wait_exit(pid, timeout_ms);
    r.output = read_file(out);
    return r;
}

ServerProcess::ServerProcess(const Json& settings, std::vector<std::string> extra_args) : m_extra(std::move(extra_args)) {
    m_root = make_temp_dir("mc-api");
    m_data_dir = m_root + "/data";
    m_config = m_root + "/config/settings.json";
    m_log = m_root + "/server-output.txt";
    write_file(m_config, settings.dump(2));
    m_https = std::find(m_extra.begin(), m_extra.end(), "--https") != m_extra.end() ||
              (settings.contains("server") && settings["server"].value("https", false));
    start();
}

ServerProcess::~ServerProcess() {
    if (m_pid > 0) stop(SIGKILL);
    std::error_code ec;
    std::filesystem::remove_all(m_root, ec);
}

void ServerProcess::start() {
    m_port = free_port();
    std::vector<std::string> args = {"serve", "--port", std::to_string(m_port), "--data-dir", m_data_dir,
                                     "--config", m_config};
    args.insert(args.end(), m_extra.begin(), m_extra.end());
    m_pid = spawn(args, m_log);
    // Poll until the server answers; give up after 15 s with the server's output in the error.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        httplib::Client c = client();
        c.set_connection_timeout(0, 200000);
        if (auto r = c.Get("/api/health"); r && (r->status == 200 || r->status == 401)) return;  // 401: up, with a token.
        int status = 0;
        if (waitpid(m_pid, &status, WNOHANG) == m_pid) {
            m_pid = -1;
            throw std::runtime_error("mycandy exited during start: " + read_file(m_log));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("mycandy did not answer /api/health: " + read_file(m_log));
}

void ServerProcess::restart() { start(); }

int ServerProcess::stop(int signal) {
    if (m_pid <= 0) return -1;
    kill(m_pid, signal);
    const int code = wait_exit(m_pid, 10000);
    m_pid = -1;
    return code;
}

httplib::Client ServerProcess::client() const {
    httplib::Client c((m_https ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(m_port));
    // In https mode the server's certificate is its own self-signed one (checked by Https.* tests).
    c.enable_server_certificate_verification(false);
    c.set_read_timeout(60, 0);
    return c;
}

Json body_json(const httplib::Result& r) {
    if (!r) return nullptr;
    Json j = Json::parse(r->body, nullptr, false);
    return j.is_discarded() ? Json(nullptr) : j;
}

Json settled_health(const ServerProcess& server) {
    auto c = server.client();
    Json h;
    for (int i = 0; i < 1000; ++i) {
        h = body_json(c.Get("/api/health"));
        if (h["components"]["llm"]["state"] != "loading") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return h;
}

}  // namespace mc::test
