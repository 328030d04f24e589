// http/worker_pool: the threads that serve connections. One thread per connection at a time (an
// open SSE stream or keep-alive connection holds its thread), started when a connection finds none
// idle, up to `max`; above `spare` idle ones, a thread idle for `idle_timeout` ends.
//
// Why not a fixed pool of `max` threads: idle threads all wait on one futex, and Linux (6.16 and
// later) gives a process a private futex hash of only a few buckets on a small machine. Every
// futex call that hashes to the bucket of 256 sleepers walks them, and libgomp's barrier ends in a
// futex wake some 200 times per decode step: with a fixed pool of 256, decode ran 2-3 % slower
// than llama-server (bench/README.md, "fourth look").
//
// Thread safety: all public members may be called from any thread. Every thread is joined: an
// ended one by the next submit() or by shutdown(), the rest by shutdown().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace mc::http {

class WorkerPool {
public:
    WorkerPool(size_t max, size_t spare, std::chrono::milliseconds idle_timeout);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Runs `job` on an idle thread, or a new one below `max`; with `max` busy it waits in line.
    void submit(std::function<void()> job);
    // Runs the jobs in line, then ends and joins every thread. Later submits are dropped.
    void shutdown();

    size_t threads() const;  // Alive now (busy and idle).
    size_t idle() const;     // Waiting for a job.

private:
    void work();

    const size_t m_max, m_spare;
    const std::chrono::milliseconds m_idle_timeout;
    mutable std::mutex m_mu;  // Guards everything below.
    std::condition_variable m_wake;  // A job came in line, or shutdown.
    std::list<std::function<void()>> m_jobs;
    std::list<std::thread> m_threads;     // Alive.
    std::vector<std::thread> m_ended;     // Returned from work(), not yet joined.
    size_t m_idle = 0;
    bool m_shutdown = false;
};

}  // namespace mc::http
