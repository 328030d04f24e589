// llm/thread_tuner: how many threads a decode step should use, by measuring. On a machine whose
// cores are busy with other work, llama.cpp's threads wait for each other at every barrier of the
// graph and decode slows far more than the lost core explains (2 cores, one taken: 2 threads 8.6
// tokens/s, 1 thread 21). So the tuner runs on all threads and tries half of them for `probe_steps`
// steps (a probe) when that may pay:
//   - once, after the first 14 steps;
//   - when steps on all threads turn slow: `kRisingSteps` steps in a row over 1.25 times their
//     usual time (a slowly following average), as when another program starts — noticed within a
//     few steps, while a single slow step (this VM's jitter) does not count;
//   - every `check_every` steps regardless (a slowdown too gradual to notice);
//   - while on half the threads, every `probe_every` steps and when a reply starts: all threads
//     get their cores back only by trying them (a step on half of them takes as long whether the
//     machine is busy or not).
// Whichever was faster (by 10 %) in the last probe, against the steps just before it, runs the
// steps between. On a quiet machine a probe costs 2 steps at ~1.45 times a step's time, once per
// `check_every` (1024) steps: ~0.1 % of decode.
// Thread safety: none (the inference thread owns it).
#pragma once

#include <algorithm>

namespace mc::llm {

class ThreadTuner {
public:
    static constexpr int kFirstProbeAfter = 14;
    static constexpr int kRisingSteps = 4;
    static constexpr double kRising = 1.25;

    explicit ThreadTuner(int threads, int probe_every = 128, int probe_steps = 2, int check_every = 1024)
        : m_all(std::max(1, threads)), m_fewer(std::max(1, threads / 2)), m_every(probe_every), m_probe(probe_steps),
          m_check(check_every), m_choice(m_all) {}

    // Threads for the next decode step.
    int next() {
        if (m_all == m_fewer) return m_all;
        const int other = m_choice == m_all ? m_fewer : m_all;
        if (m_probe_left > 0) {
            --m_probe_left;
            return other;
        }
        ++m_since_probe;
        const bool due = m_choice == m_all ? (!m_probed && m_since_probe > kFirstProbeAfter) ||
                                                 m_rising >= kRisingSteps || m_since_probe > m_check
                                           : m_since_probe > m_every;
        if (!due) return m_choice;
        m_probed = m_in_probe = true;
        m_since_probe = 0;
        m_rising = 0;
        m_probe_left = m_probe - 1;
        return other;
    }

    // A reply starts: the machine may have changed while nothing decoded, and on half the threads
    // only a probe can tell that it is quiet again, so its first step is one.
    void reply_starts() {
        if (m_choice != m_all && m_probe_left == 0 && !m_in_probe) m_since_probe = m_every;
    }

    // The step that ran on `threads` took `ms`.
    void record(int threads, double ms) {
        double& e = threads == m_all ? m_ms_all : m_ms_fewer;
        // The first step after a switch replaces a figure that may be many steps old.
        e = e == 0 || threads != m_last ? ms : 0.5 * e + 0.5 * ms;
        m_last = threads;
        if (m_in_probe) {
            if (m_probe_left > 0) return;
            // The probe's steps against the steps just before it: only here does the choice change
            // (one slow step, as this VM has now and then, is no reason to leave all threads).
            m_choice = m_ms_fewer > 0 && m_ms_all > 0 && m_ms_fewer < 0.9 * m_ms_all ? m_fewer : m_all;
            m_in_probe = false;
            // Staying on (or returning to) all threads: what they took at the probe is the new
            // usual (the context grew, or the machine's load changed and the probe answered it).
            m_usual = m_ms_all;
            m_rising = 0;
            return;
        }
        if (threads != m_all) return;
        // Steps on all threads outside a probe: their usual time, and whether they turned slow.
        if (m_usual == 0) {
            m_usual = ms;
            return;
        }
        m_rising = ms > kRising * m_usual ? m_rising + 1 : 0;
        m_usual += (ms - m_usual) / 32;
    }

    // What runs between probes: all threads unless half of them were at least 10 % faster in the
    // last probe.
    int best() const { return m_choice; }

    int all() const { return m_all; }

private:
    int m_all, m_fewer, m_every, m_probe, m_check;
    int m_choice;           // Threads between probes.
    int m_since_probe = 0;  // Steps since the last probe ended (or since the start).
    int m_probe_left = 0;   // Steps of the running probe still to come.
    bool m_probed = false;  // The first probe has run.
    bool m_in_probe = false;
    int m_rising = 0;       // Steps on all threads in a row that took over kRising times the usual.
    int m_last = 0;         // Threads of the step recorded last.
    double m_ms_all = 0, m_ms_fewer = 0;  // Recent ms per step on each.
    double m_usual = 0;                   // Slowly following ms per step on all threads.
};

}  // namespace mc::llm
