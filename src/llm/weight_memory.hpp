#pragma once
// The model's weights in memory of the engine's own, at the offsets the file gives them.
//
// With llm.huge_pages the engine reads the weights into anonymous memory (llm/huge_pages.hpp)
// instead of mapping the file. llama.cpp allocates its CPU buffers with posix_memalign, which
// places a large buffer 64 bytes into a page, so every tensor then starts at another offset
// within its cache line than in the mapped file. That offset matters: llamafile's q8_0 kernel for
// 2-8 columns (the replies of several chats decoded together) ran 15-25 % slower on this project's
// Zen 5 machine with the rows at 0 mod 64 than at 32 mod 64, where the benchmark's GGUF file puts
// them; one column (a single reply) was not affected (bench/README.md, "sixth look"). So the
// weights llama.cpp would keep in a plain CPU buffer go into a buffer type of ours (llama.cpp's
// tensor_buft_overrides) whose memory starts at the file's data offset within a page, and is
// advised into 2 MiB pages and faulted in on the engine's threads before the loader reads into it.
// A tensor llama.cpp repacks for this processor (an extra buffer type of the CPU backend: q4_0 and
// q4_K with AVX2, for instance) is left to llama.cpp: an override would cost it the repacking.
//
// Thread safety: one WeightMemory per model load; llama.cpp calls its allocator on the loading
// thread. It must outlive the model (the model's buffers point into its mappings).

#include "ggml-backend.h"
#include "llama.h"
#include "llm/huge_pages.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mc::llm::weight_memory {

struct TensorInfo {
    std::string name;
    ggml_type type = GGML_TYPE_F32;
    std::array<int64_t, 4> ne = {1, 1, 1, 1};
};

// The names of those tensors that llama.cpp would keep in a plain CPU buffer on this processor:
// every one no extra buffer type of the CPU backend takes for a matrix multiplication.
std::vector<std::string> plain_cpu_tensors(const std::vector<TensorInfo>& tensors);

// Regular expressions for llama.cpp's tensor_buft_overrides that together match exactly `names`
// among `all` (every tensor name of the model): one per family of layer tensors
// ("blk.N.ffn_down.weight" for a set of N) and one per other name, since llama.cpp compiles each
// pattern again for every tensor.
std::vector<std::string> name_patterns(const std::vector<std::string>& names, const std::vector<std::string>& all);

class WeightMemory {
public:
    // Reads the GGUF's header (not its weights). threads: how many fault the pages in.
    WeightMemory(const std::string& gguf_path, int threads);
    ~WeightMemory();
    WeightMemory(const WeightMemory&) = delete;
    WeightMemory& operator=(const WeightMemory&) = delete;

    // For llama_model_params::tensor_buft_overrides: null-terminated; nullptr when there is
    // nothing to place (an unreadable header, or every weight repacked).
    const llama_model_tensor_buft_override* overrides() const;
    // The file's data offset within a 4 KiB page: where each buffer of ours starts within its page.
    size_t phase() const { return m_phase; }
    size_t tensors_placed() const { return m_names; }
    // The buffers the loader took from us (their weights' bytes).
    const std::vector<huge_pages::Range>& buffers() const { return m_buffers; }

private:
    static ggml_backend_buffer_t alloc(ggml_backend_buffer_type_t buft, size_t size);

    int m_threads;
    size_t m_phase = 0;
    size_t m_names = 0;
    std::vector<std::string> m_patterns;
    std::vector<llama_model_tensor_buft_override> m_overrides;
    struct Mapping {
        void* base;
        size_t length;
    };
    std::vector<Mapping> m_mappings;            // Unmapped by the destructor.
    std::vector<huge_pages::Range> m_buffers;
    void* m_buft = nullptr;  // Our ggml_backend_buffer_type (ggml-backend-impl.h), owned.
};

}  // namespace mc::llm::weight_memory
