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
    ThreadTuner t(2, 128, 2);
    EXPECT_EQ(run(t, 1280, 33, 48), 1280 - 20);  // 2 probe steps in every 128.
    EXPECT_EQ(t.best(), 2);
}

TEST(ThreadTuner, ABusyMachineMovesToFewerThreadsAndBackWhenItQuietens) {
    ThreadTuner t(2, 128, 2);
    run(t, 128, 116, 48);  // Busy: the first probe finds 1 thread faster.
    EXPECT_EQ(t.best(), 1);
    const int on_all = run(t, 1280, 116, 48);
    EXPECT_EQ(on_all, 20);  // Only the probes of all threads.
    run(t, 128, 33, 48);  // Quiet again: the next probe of 2 threads wins them back.
    EXPECT_EQ(t.best(), 2);
}

TEST(ThreadTuner, HalfAsManyAndNeverFewerThanOne) {
    ThreadTuner eight(8, 16, 2);
    run(eight, 16, 100, 50);
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
