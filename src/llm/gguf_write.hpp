// llm/gguf_write: what our random-weight model writers share (llm/test_model.cpp for the chat model,
// voice/tts_test_model.cpp for speech models): a reproducible generator and owners for gguf/ggml
// contexts. Include only where ggml.h and gguf.h may be included.
// Thread safety: plain values.
#pragma once

#include <ggml.h>
#include <gguf.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

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

// Writes t's data (ggml_nbytes(t) bytes, then the padding to the next tensor): F32 and F16 values from
// `value`; Q8_0 blocks of random int8 with the scale `q8_scale` / 127. False on a write error.
inline bool write_tensor_data(FILE* f, const ggml_tensor* t, const std::function<float()>& value, float q8_scale, XorShift& rng) {
    const size_t n = static_cast<size_t>(ggml_nelements(t));
    std::vector<uint8_t> buf;
    constexpr size_t kChunk = 1 << 20;  // Values per write (a multiple of the Q8_0 block).
    for (size_t done = 0; done < n; done += kChunk) {
        const size_t count = std::min(kChunk, n - done);
        if (t->type == GGML_TYPE_F32) {
            buf.resize(count * 4);
            auto* p = reinterpret_cast<float*>(buf.data());
            for (size_t i = 0; i < count; ++i) p[i] = value();
        } else if (t->type == GGML_TYPE_F16) {
            buf.resize(count * 2);
            auto* p = reinterpret_cast<ggml_fp16_t*>(buf.data());
            for (size_t i = 0; i < count; ++i) p[i] = ggml_fp32_to_fp16(value());
        } else {  // Q8_0: blocks of {fp16 scale, 32 x int8}; random bytes are uniform int8.
            const size_t blocks = count / 32;
            buf.resize(blocks * 34);
            const ggml_fp16_t d = ggml_fp32_to_fp16(q8_scale / 127.0f);
            for (size_t b = 0; b < blocks; ++b) {
                uint8_t* blk = buf.data() + b * 34;
                std::memcpy(blk, &d, 2);
                for (int i = 0; i < 32; i += 8) {
                    const uint64_t r = rng.next();
                    std::memcpy(blk + 2 + i, &r, 8);
                }
            }
        }
        if (std::fwrite(buf.data(), 1, buf.size(), f) != buf.size()) return false;
    }
    const size_t pad = GGML_PAD(ggml_nbytes(t), GGUF_DEFAULT_ALIGNMENT) - ggml_nbytes(t);
    static const char zeros[GGUF_DEFAULT_ALIGNMENT] = {};
    return std::fwrite(zeros, 1, pad, f) == pad;
}

}  // namespace mc::llm
