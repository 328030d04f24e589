// core/process: runs another program (espeak-ng, and later RVC tools) as a child process — never
// through a shell: the arguments go to execv as they are — feeding it stdin and collecting stdout.
// GPL programs stay out of our binary's link this way.
// Thread safety: each call is independent; safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mc {

struct ProcessOptions {
    std::string input;                                    // Written to the child's stdin, then closed.
    std::chrono::milliseconds timeout{30000};             // Killed (SIGKILL) after this.
    size_t max_output = 64u << 20;                        // Larger stdout: killed, TooLarge.
    int nice = 0;                                         // Added to the child's nice value (lower priority).
    std::shared_ptr<std::atomic<bool>> cancel;            // Optional: set to kill the child early.
    // Long-running tools (voice training): each line the child writes, stdout and stderr alike, as
    // it arrives (without the newline; a line longer than 4 KB is cut there). When set, `out` keeps
    // only the last 64 KB of stdout and max_output does not apply.
    std::function<void(std::string_view line)> on_line;
    // Runs the child in a process group of its own, and a kill (timeout, cancel) goes to the whole
    // group: SIGTERM, then SIGKILL after `kill_grace` — so the tool's own children go too.
    bool own_group = false;
    std::chrono::milliseconds kill_grace{2000};
    std::string working_dir;                              // Empty: ours.
    // Long-lived children (the RPC engine's llama-server): killed by the kernel when the thread that
    // started them ends, so a crashed or SIGKILLed mycandy leaves nothing running.
    bool die_with_parent = false;
};

struct ProcessResult {
    int exit_code = 0;        // -1 when killed by a signal (term_signal says which).
    int term_signal = 0;
    std::string out;          // stdout.
    std::string err;          // stderr (first 64 KB).
};

// The absolute path of `program` (a path with a '/' as it is, else searched in $PATH), or nullopt.
std::optional<std::string> find_program(const std::string& program);

// Runs argv[0] (resolved with find_program) with `argv`. Errors: Unavailable (program not found or
// could not start; timed out; cancelled — the message says which), TooLarge (output over the limit).
// A non-zero exit is not an error here: the caller reads exit_code and err.
Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

}  // namespace mc
