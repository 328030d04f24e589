// core/process: child programs run without a shell, with input, output, time limit and cancel.
#include <gtest/gtest.h>

#include <chrono>
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

}  // namespace
}  // namespace mc
