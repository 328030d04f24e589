#include "http/worker_pool.hpp"

#include <exception>
#include <system_error>

#include "core/log.hpp"

namespace mc::http {

WorkerPool::WorkerPool(size_t max, size_t spare, std::chrono::milliseconds idle_timeout)
    : m_max(max > 0 ? max : 1), m_spare(spare), m_idle_timeout(idle_timeout) {}

WorkerPool::~WorkerPool() { shutdown(); }

void WorkerPool::submit(std::function<void()> job) {
    std::vector<std::thread> ended;
    {
        std::lock_guard lock(m_mu);
        if (m_shutdown) return;
        m_jobs.push_back(std::move(job));
        ended.swap(m_ended);
        // More jobs in line than idle threads to take them (a woken thread counts as idle until it
        // runs): one more thread, below the limit.
        bool started = false;
        if (m_jobs.size() > m_idle && m_threads.size() < m_max) {
            try {
                m_threads.emplace_back([this] { work(); });
                started = true;
            } catch (const std::system_error& e) {  // Resource limits: the job waits for a thread.
                log::warn("http: cannot start a worker thread (", e.what(), "); ", m_threads.size(), " serve the line");
            }
        }
        if (!started) m_wake.notify_one();
    }
    for (auto& t : ended) t.join();
}

void WorkerPool::work() {
    std::unique_lock lock(m_mu);
    for (;;) {
        if (m_jobs.empty() && !m_shutdown) {
            ++m_idle;
            const bool woken = m_wake.wait_for(lock, m_idle_timeout, [&] { return !m_jobs.empty() || m_shutdown; });
            --m_idle;
            // Idle for the whole timeout while enough others wait: this one is not needed.
            if (!woken && m_idle >= m_spare) break;
            continue;
        }
        if (m_jobs.empty()) break;  // Shutting down, nothing left in line.
        auto job = std::move(m_jobs.front());
        m_jobs.pop_front();
        lock.unlock();
        try {
            job();
        } catch (const std::exception& e) {
            log::error("http: a connection's worker failed: ", e.what());
        } catch (...) {
            log::error("http: a connection's worker failed");
        }
        lock.lock();
    }
    // Hand this thread's handle to whoever joins next (shutdown() may have taken it already).
    const auto self = std::this_thread::get_id();
    for (auto it = m_threads.begin(); it != m_threads.end(); ++it) {
        if (it->get_id() == self) {
            m_ended.push_back(std::move(*it));
            m_threads.erase(it);
            break;
        }
    }
}

void WorkerPool::shutdown() {
    std::list<std::thread> alive;
    std::vector<std::thread> ended;
    {
        std::lock_guard lock(m_mu);
        m_shutdown = true;
        alive.swap(m_threads);
        ended.swap(m_ended);
    }
    m_wake.notify_all();
    for (auto& t : alive) t.join();
    for (auto& t : ended) t.join();
}

size_t WorkerPool::threads() const {
    std::lock_guard lock(m_mu);
    return m_threads.size();
}

size_t WorkerPool::idle() const {
    std::lock_guard lock(m_mu);
    return m_idle;
}

}  // namespace mc::http
