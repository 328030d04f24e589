// stt/whisper_files: whisper.cpp's legacy ggml model files (".bin": Whisper models and the Silero
// VAD) — a check of a file's whole structure before whisper.cpp's loader, which trusts its input,
// sees it (a damaged download or a GGUF given by mistake is an error naming the problem, not a
// crash), and writers of test models: a random-weight Whisper model of any shape, and a Silero-
// shaped VAD whose weights are set by hand to detect energy (random VAD weights would decide
// speech at random, so nothing about segment times could be tested).
// Thread safety: pure functions of their arguments (they read or write one file).
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace mc::stt {

struct WhisperModelInfo {
    int n_vocab = 0;
    int n_audio_layer = 0;
    int n_text_layer = 0;
    int n_state = 0;
    int n_mels = 0;
    int ftype = 0;
    int tensors = 0;
    bool multilingual = false;  // 51,865+ tokens: 99 (100 for v3) languages; else English only.
    std::string type;           // "tiny" | "base" | "small" | "medium" | "large" | "unknown"
};

// Errors: NotFound (no file), InvalidInput (a GGUF file, a VAD model, damaged or cut short: says which).
Result<WhisperModelInfo> inspect_whisper_model(const std::string& path);
// Checks a Silero VAD file the same way. Errors as above.
Result<void> inspect_vad_model(const std::string& path);

struct WhisperTestModelOptions {
    std::string out;
    bool multilingual = true;  // false: the 51,864-token English-only vocabulary.
    int n_state = 64;
    int n_head = 2;
    int n_layer = 1;           // Encoder and decoder each.
    uint64_t seed = 42;
};
// A random-weight Whisper model in the layout whisper.cpp's loader reads (F16 weights).
Result<void> write_whisper_test_model(const WhisperTestModelOptions& options);
// A Silero-VAD-shaped model that marks a 32 ms window as speech when its spectral energy is above
// silence (see the .cpp for how the weights do that).
Result<void> write_vad_test_model(const std::string& out);

}  // namespace mc::stt
