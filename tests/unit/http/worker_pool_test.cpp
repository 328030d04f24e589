// http::WorkerPool: threads as connections need them, idle ones beyond the spares end, every
// thread joined.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "http/worker_pool.hpp"

namespace mc::http {
namespace {

using namespace std::chrono_literals;

// Jobs that hold their thread until released, as an open connection does.
class Holds {
public:
    std::function<void()> job() {
        return [this] {
            std::unique_lock lock(m_mu);
            ++m_running;
            m_cv.notify_all();
            m_cv.wait(lock, [&] { return m_released; });
            --m_running;
            ++m_done;
            m_cv.notify_all();
        };
    }
    // Waits until `n` run at once (false after 10 s).
    bool running(int n) {
        std::unique_lock lock(m_mu);
        return m_cv.wait_for(lock, 10s, [&] { return m_running == n; });
    }
    bool done(int n) {
        std::unique_lock lock(m_mu);
        return m_cv.wait_for(lock, 10s, [&] { return m_done == n; });
    }
    void release() {
        std::lock_guard lock(m_mu);
        m_released = true;
        m_cv.notify_all();
    }
    int now() {
        std::lock_guard lock(m_mu);
        return m_running;
    }

private:
    std::mutex m_mu;
    std::condition_variable m_cv;
    int m_running = 0, m_done = 0;
    bool m_released = false;
};

bool eventually(const std::function<bool()>& what) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!what()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// A fixed pool of 256 kept 256 idle threads on one futex for the server's life, and decode ran
// 2-3 % slower for it (see worker_pool.hpp).
TEST(WorkerPool, StartsThreadsAsConnectionsNeedThemAndLetsIdleOnesGo) {
    WorkerPool pool(256, 2, 50ms);
    EXPECT_EQ(pool.threads(), 0u);
    Holds holds;
    for (int i = 0; i < 20; ++i) pool.submit(holds.job());
    ASSERT_TRUE(holds.running(20)) << "only " << holds.now() << " of 20 connections are served at once";
    EXPECT_EQ(pool.threads(), 20u);
    holds.release();
    ASSERT_TRUE(holds.done(20));
    EXPECT_TRUE(eventually([&] { return pool.threads() == 2; })) << pool.threads() << " threads stay";
    EXPECT_EQ(pool.idle(), 2u);
    // The spares take the next connections; more come as needed.
    Holds again;
    for (int i = 0; i < 5; ++i) pool.submit(again.job());
    ASSERT_TRUE(again.running(5));
    EXPECT_EQ(pool.threads(), 5u);
    again.release();
    ASSERT_TRUE(again.done(5));
}

TEST(WorkerPool, BeyondTheLimitConnectionsWaitInLine) {
    WorkerPool pool(3, 1, 10s);
    Holds holds;
    for (int i = 0; i < 6; ++i) pool.submit(holds.job());
    ASSERT_TRUE(holds.running(3));
    EXPECT_EQ(pool.threads(), 3u);
    holds.release();
    EXPECT_TRUE(holds.done(6));
    EXPECT_EQ(pool.threads(), 3u);  // Idle, within the timeout.
}

TEST(WorkerPool, ShutdownRunsWhatIsInLineAndJoinsEveryThread) {
    std::atomic<int> ran{0};
    Holds holds;
    {
        WorkerPool pool(2, 0, 10s);
        pool.submit(holds.job());
        pool.submit(holds.job());
        ASSERT_TRUE(holds.running(2));
        for (int i = 0; i < 10; ++i) pool.submit([&] { ++ran; });  // In line behind the two.
        holds.release();
        pool.shutdown();
        EXPECT_EQ(ran.load(), 10);
        EXPECT_EQ(pool.threads(), 0u);
        pool.submit([&] { ++ran; });  // After shutdown: dropped.
    }
    EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace mc::http
