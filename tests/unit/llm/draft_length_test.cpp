// How many guesses speculative decoding asks for (llm/draft_length), on costs measured on real
// machines: this project's 2-core CPU (bench/speculative) and a GPU-like one where a batch of 9
// costs little more than one token.
#include "llm/draft_length.hpp"

#include <gtest/gtest.h>

namespace mc::llm {
namespace {

// A 1B Q8_0 model on 2 CPU cores: a batch of m tokens in ms (index = m), measured with llama.cpp.
std::vector<double> cpu() {
    std::vector<double> b(34, 0.0);
    const double measured[] = {0, 29.1, 66.8, 78.1, 80.0, 126.6, 130, 135, 140, 147.7};
    for (int m = 1; m <= 9; ++m) b[static_cast<size_t>(m)] = measured[m];
    return b;
}

// A GPU: batches up to 9 cost 10 % more than one token.
std::vector<double> gpu() {
    std::vector<double> b(34, 0.0);
    for (int m = 1; m <= 9; ++m) b[static_cast<size_t>(m)] = 10.0 + 0.125 * (m - 1);
    return b;
}

TEST(DraftLength, OnACpuOnlyADraftThatIsNearlyAlwaysRightAndCheapPays) {
    // The draft guesses right every time and costs a quarter of a token: the longest draft.
    EXPECT_EQ(best_draft_length(cpu(), 7.5, 1.0, 8, 0), 8);
    // A draft as slow as the model itself never pays, even when always right.
    EXPECT_EQ(best_draft_length(cpu(), 29.1, 1.0, 8, 0), 0);
    // A real draft kept 70 % of the time: checking batches costs too much here.
    EXPECT_EQ(best_draft_length(cpu(), 7.5, 0.7, 8, 0), 0);
    // Always wrong: never.
    EXPECT_EQ(best_draft_length(cpu(), 1.0, 0.0, 8, 0), 0);
}

TEST(DraftLength, OnAGpuAGoodDraftGuessesSeveral) {
    const int n = best_draft_length(gpu(), 1.0, 0.7, 8, 0);
    EXPECT_GE(n, 3);
    EXPECT_LE(n, 8);
    EXPECT_EQ(best_draft_length(gpu(), 1.0, 0.95, 8, 0), 8);
    EXPECT_EQ(best_draft_length(gpu(), 1.0, 0.05, 8, 0), 0);
    // No more than the limit, and never fewer than draft_min when guessing at all.
    EXPECT_EQ(best_draft_length(gpu(), 1.0, 0.95, 3, 0), 3);
    EXPECT_EQ(best_draft_length(gpu(), 1.0, 0.3, 8, 6), 0);
}

TEST(DraftLength, BatchSizesNotYetMeasuredAreTriedAsCheapAsTheLargestMeasured) {
    std::vector<double> b(34, 0.0);
    b[1] = 29.1;  // Only one token measured: a right, cheap draft looks worth the longest batch.
    EXPECT_EQ(best_draft_length(b, 7.5, 1.0, 8, 0), 8);
    b[9] = 147.7;  // Measured, and dearer than it looked: the unmeasured 8 gets its try.
    EXPECT_EQ(best_draft_length(b, 7.5, 1.0, 8, 0), 7);
    b = cpu();  // All measured: 9 tokens in 147.7 + 8 x 7.5 ms beat 9 x 29.1.
    EXPECT_EQ(best_draft_length(b, 7.5, 1.0, 8, 0), 8);
    b[9] = 400;  // A slow batch of 9: the best of the rest.
    EXPECT_EQ(best_draft_length(b, 7.5, 1.0, 8, 0), 7);
    // Nothing measured: no guessing (the first step measures one token).
    EXPECT_EQ(best_draft_length(std::vector<double>(34, 0.0), 1.0, 1.0, 8, 0), 0);
}

}  // namespace
}  // namespace mc::llm
