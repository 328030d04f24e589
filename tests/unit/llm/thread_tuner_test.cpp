// How many threads a decode step uses (llm/thread_tuner), on step times like those measured on this
// project's 2-core machine: 33 ms on 2 threads and 48 on 1 when quiet; 116 and 48 with one core
// taken by another program.
#include "llm/thread_tuner.hpp"

#include <gtest/gtest.h>

namespace mc::llm {
namespace {

// Runs `steps` steps with the given step times; returns how many ran on all threads.
int run(ThreadTuner& t, int steps, double ms_all, double ms_fewer) {
    int on_all = 0;
    for (int i = 0; i < steps; ++i) {
        const int n = t.next();
        on_all += n == t.all();
        t.record(n, n == t.all() ? ms_all : ms_fewer);
    }
    return on_all;
}

TEST(ThreadTuner, AQuietMachineKeepsAllThreadsBarTheProbes) {
    ThreadTuner t(2, 128, 2, 1024);
    // The first probe after 14 steps, then one check in 1024 steps (it was 2 steps in every 128:
    // 0.7 % of a quiet machine's decode; now 0.1 %).
    EXPECT_EQ(run(t, 1280, 33, 48), 1280 - 4);
    EXPECT_EQ(t.best(), 2);
}

TEST(ThreadTuner, SingleSlowStepsOfAJitteryMachineDoNotProbe) {
    ThreadTuner t(2, 128, 2, 1024);
    run(t, 20, 33, 48);  // The first probe.
    int on_all = 0;
    for (int i = 0; i < 1000; ++i) {
        const int n = t.next();
        on_all += n == t.all();
        // Every 8th step is slow (a neighbour's burst), and three in a row now and then.
        const bool slow = i % 8 == 0 || i % 200 < 3;
        t.record(n, n == t.all() ? (slow ? 80 : 33) : 48);
    }
    EXPECT_EQ(on_all, 1000);
    EXPECT_EQ(t.best(), 2);
}

TEST(ThreadTuner, AMachineThatTurnsBusyIsNoticedWithinAFewSteps) {
    ThreadTuner t(2, 128, 2, 1024);
    run(t, 300, 33, 48);  // Quiet, past the first probe.
    ASSERT_EQ(t.best(), 2);
    int steps = 0;
    while (t.best() == 2 && steps < 200) {
        const int n = t.next();
        t.record(n, n == t.all() ? 116 : 48);  // Another program took a core.
        ++steps;
    }
    EXPECT_EQ(t.best(), 1);
    // 4 slow steps in a row, then the 2-step probe (the check in 1024 would have taken ~750).
    EXPECT_EQ(steps, ThreadTuner::kRisingSteps + 2);
}

TEST(ThreadTuner, ASlowerStepThatFewerThreadsDoNotHelpIsTheNewUsual) {
    ThreadTuner t(2, 128, 2, 1024);
    run(t, 300, 33, 48);
    // The context grew (or memory got slower): all threads take 45 ms, half of them 66. One
    // probe answers it; the steps after it are not probed again.
    EXPECT_EQ(run(t, 500, 45, 66), 500 - 2);
    EXPECT_EQ(t.best(), 2);
}

TEST(ThreadTuner, ABusyMachineMovesToFewerThreadsAndBackWhenItQuietens) {
    ThreadTuner t(2, 128, 2, 1024);
    run(t, 128, 116, 48);  // Busy from the start: the first probe finds 1 thread faster.
    EXPECT_EQ(t.best(), 1);
    const int on_all = run(t, 1310, 116, 48);
    EXPECT_EQ(on_all, 20);  // Only the probes of all threads: 2 steps in every 131.
    run(t, 131, 33, 48);  // Quiet again: the next probe of 2 threads wins them back.
    EXPECT_EQ(t.best(), 2);
}

TEST(ThreadTuner, AReplyStartingOnHalfTheThreadsTriesAllOfThemFirst) {
    ThreadTuner t(2, 128, 2, 1024);
    run(t, 40, 116, 48);  // The last reply ran while another program kept a core.
    ASSERT_EQ(t.best(), 1);
    t.reply_starts();  // That program has ended since.
    EXPECT_EQ(run(t, 2, 33, 48), 2);  // Not after up to 128 steps on one thread.
    EXPECT_EQ(t.best(), 2);
    // Still busy: two steps on all threads, then back to half.
    run(t, 40, 116, 48);
    ASSERT_EQ(t.best(), 1);
    t.reply_starts();
    EXPECT_EQ(run(t, 10, 116, 48), 2);
    EXPECT_EQ(t.best(), 1);
    // On all threads a new reply changes nothing.
    ThreadTuner quiet(2, 128, 2, 1024);
    run(quiet, 40, 33, 48);
    quiet.reply_starts();
    EXPECT_EQ(run(quiet, 40, 33, 48), 40);
}

TEST(ThreadTuner, HalfAsManyAndNeverFewerThanOne) {
    ThreadTuner eight(8, 16, 2);
    run(eight, 16, 100, 50);  // The first probe: steps 15 and 16.
    EXPECT_EQ(eight.best(), 4);
    ThreadTuner one(1);
    EXPECT_EQ(run(one, 500, 10, 5), 500);
    EXPECT_EQ(one.best(), 1);
    // A difference under 10 % does not move it.
    ThreadTuner close(2, 16, 2);
    run(close, 160, 50, 46);
    EXPECT_EQ(close.best(), 2);
}

}  // namespace
}  // namespace mc::llm
