// voice/tts_test_model: writes random-weight text-to-speech GGUF pairs (backbone + mmproj) in the
// layouts llama.cpp's libmtmd speech generation loads (Qwen3-TTS, Pocket TTS), so tests and
// benchmarks can run the embedded engine without downloading real models.
// Thread safety: a pure function of its options (writes two files).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace mc::voice {

struct TtsTestModelOptions {
    std::string kind;           // "qwen3tts" | "pockettts"
    std::string out;            // Backbone GGUF to write.
    std::string mmproj;         // mmproj GGUF to write (speaker encoder, code predictor/flow net, vocoder).
    std::string size = "tiny";  // tiny | 1.7b (qwen3tts only: Qwen3-TTS-12Hz-1.7B-Base's shape)
    uint64_t seed = 42;
};

Result<void> write_tts_test_model(const TtsTestModelOptions& options);

}  // namespace mc::voice
