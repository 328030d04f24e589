// llm/draft_length: how many tokens a draft model should guess in speculative decoding, from what
// guessing and checking cost on this machine and how often guesses are kept.
// Thread safety: a pure function.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace mc::llm {

// batch_ms[m]: the model's measured decode time for a batch of m tokens (index 0 unused; 0 = not
// measured; batch_ms[1], one token, must be measured). guess_ms: the draft's time per guess.
// p_keep: the chance that a guess is kept, given the ones before it were. Returns the number of
// guesses n (draft_min <= n <= limit) that yields the most tokens per millisecond, or 0 when
// decoding one token at a time is as fast (within 2 %).
//
// A step with n guesses yields 1 + p + p^2 + ... + p^n tokens and costs a batch of n + 1 plus n
// guesses. A batch size not yet measured is taken as cheap as the largest smaller one measured
// (a lower bound when larger batches never cost less), so it gets tried once.
inline int best_draft_length(const std::vector<double>& batch_ms, double guess_ms, double p_keep, int limit, int draft_min) {
    if (batch_ms.size() < 2 || batch_ms[1] <= 0) return 0;
    limit = std::min(limit, static_cast<int>(batch_ms.size()) - 2);
    int best = 0;
    double best_rate = 1.0 / batch_ms[1];
    double expected = 1, pk = 1, batch_cost = batch_ms[1];
    for (int n = 1; n <= limit; ++n) {
        pk *= p_keep;
        expected += pk;
        batch_cost = std::max(batch_cost, batch_ms[static_cast<size_t>(n + 1)]);
        const double rate = expected / (batch_cost + n * guess_ms);
        if (n >= draft_min && rate > best_rate * 1.02) {
            best = n;
            best_rate = rate;
        }
    }
    return best;
}

}  // namespace mc::llm
