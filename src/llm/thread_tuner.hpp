// llm/thread_tuner: how many threads a decode step should use, by measuring. On a machine whose
// cores are busy with other work, llama.cpp's threads wait for each other at every barrier of the
// graph and decode slows far more than the lost core explains (2 cores, one taken: 2 threads 8.6
// tokens/s, 1 thread 21). So the tuner runs on all threads, and every `probe_every` steps tries half
// of them for `probe_steps` steps (the first time after 14 steps); whichever was faster lately (by
// 10 %) runs the steps between.
// Thread safety: none (the inference thread owns it).
#pragma once

#include <algorithm>

namespace mc::llm {

class ThreadTuner {
public:
    explicit ThreadTuner(int threads, int probe_every = 128, int probe_steps = 2)
        : m_all(std::max(1, threads)), m_fewer(std::max(1, threads / 2)), m_every(probe_every), m_probe(probe_steps),
          m_step(std::max(0, probe_every - probe_steps - 14)) {}  // The first probe comes after 14 steps.

    // Threads for the next decode step.
    int next() {
        if (m_all == m_fewer) return m_all;
        const int phase = m_step++ % m_every;
        const int best = this->best();
        if (phase >= m_every - m_probe) return best == m_all ? m_fewer : m_all;  // Probing the other.
        return best;
    }

    // The step that ran on `threads` took `ms`.
    void record(int threads, double ms) {
        double& e = threads == m_all ? m_ms_all : m_ms_fewer;
        // The first step after a switch replaces a figure that may be many steps old.
        e = e == 0 || threads != m_last ? ms : 0.5 * e + 0.5 * ms;
        m_last = threads;
    }

    // The faster lately: all threads unless half of them were at least 10 % faster.
    int best() const {
        if (m_ms_fewer > 0 && m_ms_all > 0 && m_ms_fewer < 0.9 * m_ms_all) return m_fewer;
        return m_all;
    }

    int all() const { return m_all; }

private:
    int m_all, m_fewer, m_every, m_probe;
    int m_step;
    int m_last = 0;  // Threads of the step recorded last.
    double m_ms_all = 0, m_ms_fewer = 0;  // Recent ms per step on each.
};

}  // namespace mc::llm
