// llm/gguf_write: what our random-weight model writers share (llm/test_model.cpp for the chat model,
// voice/tts_test_model.cpp for speech models): a reproducible generator and owners for gguf/ggml
// contexts. Include only where ggml.h and gguf.h may be included.
// Thread safety: plain values.
#pragma once

#include <ggml.h>
#include <gguf.h>

#include <cstdint>

namespace mc::llm {

// A fast generator: the weights only have to be finite, vary and be reproducible.
struct XorShift {
    uint64_t s;
    uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    float uniform() { return static_cast<float>(next() >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f; }
};

struct GgufDeleter {
    void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlDeleter {
    void operator()(ggml_context* c) const { ggml_free(c); }
};

}  // namespace mc::llm
