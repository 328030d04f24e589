// Test helper: runs the real build/mycandy binary on a free port with a temporary data folder.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace mc::test {

using Json = nlohmann::json;

// A free TCP port on 127.0.0.1 (the kernel's choice; released before returning).
int free_port();
// A TCP connection to 127.0.0.1:`port` for raw bytes (-1 when refused); the caller closes it.
int connect_loopback(int port);
std::string make_temp_dir(const std::string& prefix);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

struct RunResult {
    int exit_code = -1;
    std::string output;  // stdout + stderr
};
// Runs mycandy with `args` to completion (for starts that must fail), with a time limit.
RunResult run_mycandy(const std::vector<std::string>& args, int timeout_ms = 10000);

class ServerProcess {
public:
    // Starts `mycandy serve` with a fresh data dir and the given settings document, and waits
    // until /api/health answers.
    explicit ServerProcess(const Json& settings = Json::object(), std::vector<std::string> extra_args = {});
    ~ServerProcess();

    httplib::Client client() const;  // http, or https when the server was started in https mode.
    bool https() const { return m_https; }
    int port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    const std::string& data_dir() const { return m_data_dir; }
    const std::string& config_path() const { return m_config; }
    const std::string& log_path() const { return m_log; }
    // Sends `signal` and waits for the exit; returns the exit code.
    int stop(int signal = 15);
    // Starts again on the same data dir and config (after stop()).
    void restart();

private:
    void start();
    int m_port = 0;
    bool m_https = false;  // `--https` or server.https: clients speak TLS.
    pid_t m_pid = -1;
    std::string m_root, m_data_dir, m_config, m_log;
    std::vector<std::string> m_extra;
};

// Convenience: parse a response body as JSON (null when absent or not JSON).
Json body_json(const httplib::Result& r);
// /api/health once the text engine is no longer "loading" (polls; gives up after 10 s).
Json settled_health(const ServerProcess& server);

}  // namespace mc::test
