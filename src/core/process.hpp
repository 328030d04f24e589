// core/process: runs another program (espeak-ng, and later RVC tools) as a child process — never
// through a shell: the arguments go to execv as they are — feeding it stdin and collecting stdout.
// GPL programs stay out of our binary's link this way.
// Thread safety: each call is independent; safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mc {

struct ProcessOptions {
    std::string input;                                    // Written to the child's stdin, then closed.
    std::chrono::milliseconds timeout{30000};             // Killed (SIGKILL) after this.
    size_t max_output = 64u << 20;                        // Larger stdout: killed, TooLarge.
    int nice = 0;                                         // Added to the child's nice value (lower priority).
    std::shared_ptr<std::atomic<bool>> cancel;            // Optional: set to kill the child early.
};

struct ProcessResult {
    int exit_code = 0;        // -1 when killed by a signal.
    std::string out;          // stdout.
    std::string err;          // stderr (first 64 KB).
};

// The absolute path of `program` (a path with a '/' as it is, else searched in $PATH), or nullopt.
std::optional<std::string> find_program(const std::string& program);

// Runs argv[0] (resolved with find_program) with `argv`. Errors: Unavailable (program not found or
// could not start; timed out; cancelled), TooLarge (output over the limit). A non-zero exit is not an
// error here: the caller reads exit_code and err.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

}  // namespace mc
