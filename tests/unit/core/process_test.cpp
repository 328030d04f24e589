// core/process: child programs run without a shell, with input, output, time limit and cancel.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "core/process.hpp"

namespace mc {
namespace {

TEST(Process, FeedsStdinAndCollectsStdoutWithoutAShell) {
    ProcessOptions o;
    o.input = "$(touch /tmp/mc-process-test-injected); `id` -v xx\n";
    auto r = run_process({"cat"}, o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 0);
    EXPECT_EQ(r->out, o.input);  // Passed through as bytes, never interpreted.
    auto args = run_process({"printf", "%s|", "a b", "$(id)", ";rm -rf /"});
    ASSERT_TRUE(args);
    EXPECT_EQ(args->out, "a b|$(id)|;rm -rf /|");
}

TEST(Process, LargeInputAndOutputDoNotDeadlock) {
    ProcessOptions o;
    o.input = std::string(3u << 20, 'x');  // More than any pipe buffer, both ways.
    auto r = run_process({"cat"}, o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->out.size(), o.input.size());
}

TEST(Process, ReportsExitCodesStderrAndMissingPrograms) {
    auto r = run_process({"sh", "-c", "echo oops >&2; exit 3"});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->exit_code, 3);
    EXPECT_EQ(r->err, "oops\n");
    auto missing = run_process({"mycandy-no-such-program"});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::Unavailable);
    EXPECT_NE(missing.error().message.find("mycandy-no-such-program"), std::string::npos);
    EXPECT_FALSE(find_program("/nonexistent/bin/espeak-ng"));
}

TEST(Process, TimeoutCancelAndOutputCapKillTheChild) {
    ProcessOptions slow;
    slow.timeout = std::chrono::milliseconds(200);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_process({"sleep", "10"}, slow);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Unavailable);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));

    ProcessOptions cancelled;
    cancelled.cancel = std::make_shared<std::atomic<bool>>(false);
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        cancelled.cancel->store(true);
    });
    const auto t1 = std::chrono::steady_clock::now();
    auto c = run_process({"sleep", "10"}, cancelled);
    stopper.join();
    ASSERT_FALSE(c);
    EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::seconds(3));

    ProcessOptions capped;
    capped.max_output = 1000;
    auto big = run_process({"head", "-c", "100000", "/dev/zero"}, capped);
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().code, ErrorCode::TooLarge);
}


// Long tools (voice training): lines as they come, from both streams, and kills that reach the
// tool's own children.
TEST(Process, LinesArriveAsTheyAreWrittenFromBothStreams) {
    std::vector<std::string> lines;
    ProcessOptions o;
    o.on_line = [&](std::string_view l) { lines.emplace_back(l); };
    auto r = run_process({"sh", "-c", "echo 'epoch 1/3'; echo warn >&2; printf '%05000d\\n' 7; printf 'a\\r\\nb'"}, o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 0);
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_EQ(lines[0], "epoch 1/3");
    EXPECT_TRUE(std::find(lines.begin(), lines.end(), "warn") != lines.end());
    EXPECT_EQ(lines.back(), "b");  // The last line, without a newline.
    EXPECT_TRUE(std::find(lines.begin(), lines.end(), "a") != lines.end());  // CR LF ends one line.
    size_t longest = 0;
    for (const auto& l : lines) longest = std::max(longest, l.size());
    EXPECT_EQ(longest, 4096u);  // A 5000-character line is cut.
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST(Process, ACancelKillsTheToolsChildrenTooEvenWhenTheyIgnoreSigterm) {
    const std::string pidfile = ::testing::TempDir() + "mc-process-grandchild.pid";
    std::remove(pidfile.c_str());
    ProcessOptions o;
    o.own_group = true;
    o.kill_grace = std::chrono::milliseconds(300);
    o.cancel = std::make_shared<std::atomic<bool>>(false);
    o.on_line = [&](std::string_view l) {
        if (l == "started") o.cancel->store(true);
    };
    // The tool starts a child that ignores SIGTERM and writes its pid; then both wait.
    auto r = run_process({"sh", "-c", "trap '' TERM; (trap '' TERM; echo $$ > '" + pidfile + "'; exec sleep 30) & sleep 0.2; echo started; wait"}, o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "cancelled");
    std::FILE* f = std::fopen(pidfile.c_str(), "r");
    ASSERT_NE(f, nullptr);
    long pid = 0;
    ASSERT_EQ(std::fscanf(f, "%ld", &pid), 1);
    std::fclose(f);
    // SIGKILL reached the whole group; the grandchild is gone (or a zombie of init, not running).
    for (int i = 0; i < 100 && alive(static_cast<pid_t>(pid)); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_FALSE(alive(static_cast<pid_t>(pid)));
}

TEST(Process, AToolThatExitsWhileItsChildHoldsTheOutputOpenReturnsPromptly) {
    ProcessOptions o;
    o.own_group = true;
    o.timeout = std::chrono::seconds(20);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_process({"sh", "-c", "sleep 30 & echo done; exit 4"}, o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 4);
    EXPECT_EQ(r->out, "done\n");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(Process, AWorkingDirectoryIsUsedOrNamedWhenItIsMissing) {
    ProcessOptions o;
    o.working_dir = "/tmp";
    auto r = run_process({"pwd"}, o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->out, "/tmp\n");
    o.working_dir = "/nonexistent-mycandy-dir";
    auto bad = run_process({"pwd"}, o);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("/nonexistent-mycandy-dir"), std::string::npos);
}

}  // namespace
}  // namespace mc
