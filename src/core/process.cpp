#include "core/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace mc {
namespace {

// A pipe whose ends close themselves.
struct Pipe {
    int fd[2] = {-1, -1};
    bool open() { return ::pipe2(fd, O_CLOEXEC) == 0; }
    void close_end(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
    ~Pipe() { close_end(0); close_end(1); }
};

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

}  // namespace

std::optional<std::string> find_program(const std::string& program) {
    if (program.empty()) return std::nullopt;
    if (program.find('/') != std::string::npos) return executable(program) ? std::optional(program) : std::nullopt;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string dir = dirs.substr(start, end - start);
        if (!dir.empty()) {
            std::string candidate = dir + "/" + program;
            if (executable(candidate)) return candidate;
        }
        start = end + 1;
    }
    return std::nullopt;
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    if (argv.empty()) return fail(ErrorCode::Internal, "no program to run");
    // A child that exits before reading all its input must not kill us with SIGPIPE (the server
    // ignores it too; this covers tools and tests that use run_process directly).
    static const bool sigpipe_ignored = (::signal(SIGPIPE, SIG_IGN), true);
    (void)sigpipe_ignored;
    const auto program = find_program(argv[0]);
    if (!program) return fail(ErrorCode::Unavailable, "program '" + argv[0] + "' was not found");

    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    Pipe in, out, err;
    if (!in.open() || !out.open() || !err.open()) return fail(ErrorCode::Unavailable, "cannot create pipes");

    const char* workdir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
    const pid_t pid = ::fork();
    if (pid < 0) return fail(ErrorCode::Unavailable, std::string("cannot start ") + argv[0] + ": " + std::strerror(errno));
    if (pid == 0) {
        if (options.own_group) ::setpgid(0, 0);
        // Dies with the thread that started it (a server killed with SIGKILL leaves no child behind).
        if (options.die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(in.fd[0], 0);
        ::dup2(out.fd[1], 1);
        ::dup2(err.fd[1], 2);
        if (options.nice > 0) ::setpriority(PRIO_PROCESS, 0, ::getpriority(PRIO_PROCESS, 0) + options.nice);
        if (workdir && ::chdir(workdir) != 0) ::_exit(126);
        ::execv(program->c_str(), args.data());
        ::_exit(127);
    }
    if (options.own_group) ::setpgid(pid, pid);  // Also here: no window where a kill misses the group.
    in.close_end(0);
    out.close_end(1);
    err.close_end(1);
    ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);

    ProcessResult result;
    size_t written = 0;
    if (options.input.empty()) in.close_end(1);
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::optional<Error> failure;
    char buf[65536];
    // Line mode: the unfinished line of each stream.
    std::string partial[2];
    constexpr size_t kMaxLine = 4096, kTail = 65536;
    auto emit_lines = [&](int stream, const char* data, size_t n, bool flush) {
        std::string& p = partial[stream];
        for (size_t i = 0; i < n; ++i) {
            const char c = data[i];
            if (c == '\n' || c == '\r') {
                if (!p.empty()) options.on_line(p);
                p.clear();
            } else if (p.size() < kMaxLine) {
                p.push_back(c);
            }
        }
        if (flush && !p.empty()) {
            options.on_line(p);
            p.clear();
        }
    };
    // The child, once reaped here (the loop notices an exit while a grandchild keeps the pipes open).
    int status = 0;
    bool reaped = false;
    std::optional<std::chrono::steady_clock::time_point> drain_until;
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        if (options.cancel && options.cancel->load()) {
            failure = Error{ErrorCode::Unavailable, "cancelled", {}};
            break;
        }
        const auto now = std::chrono::steady_clock::now();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        if (left.count() <= 0) {
            failure = Error{ErrorCode::Unavailable, argv[0] + " did not finish within " + std::to_string(options.timeout.count()) + " ms", {}};
            break;
        }
        if (options.own_group && !reaped) {
            pid_t w = ::waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                drain_until = now + std::chrono::milliseconds(500);
            }
        }
        // The tool has exited but something it started still holds its output open: stop reading.
        if (drain_until && now > *drain_until) break;
        pollfd fds[3];
        int n = 0;
        int idx_out = -1, idx_err = -1, idx_in = -1;
        if (out.fd[0] >= 0) { idx_out = n; fds[n++] = {out.fd[0], POLLIN, 0}; }
        if (err.fd[0] >= 0) { idx_err = n; fds[n++] = {err.fd[0], POLLIN, 0}; }
        if (in.fd[1] >= 0) { idx_in = n; fds[n++] = {in.fd[1], POLLOUT, 0}; }
        // Short waits so a cancel is noticed quickly.
        const int rc = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<long long>(left.count(), 50)));
        if (rc < 0 && errno != EINTR) break;
        if (rc <= 0) continue;
        if (idx_in >= 0 && (fds[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const ssize_t w = ::write(in.fd[1], options.input.data() + written, options.input.size() - written);
            if (w > 0) written += static_cast<size_t>(w);
            if (w < 0 && errno != EAGAIN && errno != EINTR) written = options.input.size();  // Child closed stdin.
            if (written >= options.input.size()) in.close_end(1);
        }
        auto drain = [&](int idx, int stream, Pipe& p, std::string& into, size_t cap, bool hard_cap) {
            if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
            const ssize_t r = ::read(p.fd[0], buf, sizeof buf);
            if (r > 0) {
                if (options.on_line) {
                    emit_lines(stream, buf, static_cast<size_t>(r), false);
                    into.append(buf, static_cast<size_t>(r));
                    if (into.size() > kTail) into.erase(0, into.size() - kTail);
                } else if (into.size() + static_cast<size_t>(r) > cap) {
                    if (hard_cap) failure = Error{ErrorCode::TooLarge, argv[0] + " wrote more than " + std::to_string(cap >> 20) + " MB", {}};
                    into.append(buf, cap - std::min(cap, into.size()));
                } else {
                    into.append(buf, static_cast<size_t>(r));
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                p.close_end(0);
            }
        };
        drain(idx_out, 0, out, result.out, options.max_output, true);
        drain(idx_err, 1, err, result.err, 65536, false);
        if (failure) break;
    }
    if (options.on_line) {
        emit_lines(0, nullptr, 0, true);
        emit_lines(1, nullptr, 0, true);
    }
    if (options.own_group) {
        if (failure && !reaped) {
            // Ask first, so a tool can clean up; then make sure.
            ::kill(-pid, SIGTERM);
            const auto grace_end = std::chrono::steady_clock::now() + options.kill_grace;
            while (std::chrono::steady_clock::now() < grace_end) {
                if (::waitpid(pid, &status, WNOHANG) == pid) {
                    reaped = true;
                    break;
                }
                ::usleep(10000);
            }
        }
        ::kill(-pid, SIGKILL);  // Whatever of the group is left (also after a normal exit).
    } else if (failure) {
        ::kill(pid, SIGKILL);
    }
    if (!reaped) {
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (failure) return std::unexpected(*failure);
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
        if (result.exit_code == 127 && result.out.empty()) {
            return fail(ErrorCode::Unavailable, "cannot run " + *program);
        }
        if (result.exit_code == 126 && workdir && result.out.empty()) {
            return fail(ErrorCode::Unavailable, "cannot run " + *program + " in " + options.working_dir);
        }
    } else {
        result.exit_code = -1;
        if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
    }
    return result;
}

}  // namespace mc
