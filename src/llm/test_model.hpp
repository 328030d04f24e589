// llm/test_model: writes llama-architecture GGUF files with random weights (tests and benchmarks
// cannot download real models). Tokenizer: the Llama-3 BPE vocabulary from llama.cpp's
// models/ggml-vocab-llama-bpe.gguf; chat template: Llama-3's (as L3-8B-Stheno uses).
// Thread safety: a pure function of its options (writes one file).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace mc::llm {

struct TestModelOptions {
    std::string out;
    std::string size = "tiny";  // tiny | small (32-wide heads: quantized KV caches) | 1b (Llama-3.2-1B's shape)
    std::string type = "q8_0";  // q8_0 | f16 (matrices; norms are f32)
    std::string vocab;          // Defaults to the bundle's ggml-vocab-llama-bpe.gguf.
    uint64_t seed = 42;
    int layers = 0;  // 0 = the size's own.
    // "zero": every block adds nothing (zero output projections) and the output is sharpened, so
    // the next token depends on the last one only and a model of fewer layers with the same size
    // and seed predicts it exactly: a draft whose guesses are all right, for speculative decoding.
    std::string blocks = "random";
    // "tied": the output matrix is the token embedding (as Llama-3.2-1B); "random": one of its own,
    // so a --blocks zero model is sure of a next token that is not the last one again.
    std::string output = "tied";
};

// The Llama-3 instruct chat template written into the file's tokenizer.chat_template.
extern const char* const kLlama3Template;
// The vocabulary file found at build time.
std::string default_vocab_path();

Result<void> write_test_model(const TestModelOptions& options);

}  // namespace mc::llm
