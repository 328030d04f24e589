// Where a weight matrix starts within a cache line, and what it costs the CPU's matrix kernels.
//
// llama.cpp's own CPU buffers start 64 bytes into a page (posix_memalign), so with load mode
// "none" every tensor of a model whose tensor sizes are multiples of 64 starts at 0 mod 64; mapped
// from the file, it starts where the file puts it (bench/out/1b-q8_0.gguf: 32 mod 64).
// llm/weight_memory.cpp places them as the file does. This times ggml's q8_0 matrix
// multiplication (16 matrices of 2048 x 8192, 285 MB, more than any cache) times 1, 2, 4 and 8
// columns, the weights at each of the four 16-byte offsets in a cache line, the offsets taking
// turns in a shuffled order each round, and prints each offset's median time over that of 32.
//
// Usage: weight_phase_bench [rounds=15] [threads=2]
#include "ggml-cpu.h"
#include "ggml.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 15;
    const int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 2;
    constexpr int K = 2048, M = 8192, L = 16;
    const std::vector<long> phases = {0, 16, 32, 48};
    std::printf("q8_0 %d x %d x %d matrices, %d threads, %d rounds: median time at each offset in a cache line / at 32\n", K, M, L,
                threads, rounds);
    std::printf("%8s %10s %10s %10s %10s\n", "columns", "0 mod 64", "16", "32", "48");
    std::mt19937 rng(7);
    const size_t matrix = size_t(M) * (K / 32) * 34;
    const size_t region = (matrix + 8192) * L;
    char* mem = static_cast<char*>(mmap(nullptr, region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mem == MAP_FAILED) return 1;
    for (size_t i = 0; i + 4 <= region; i += 4) *reinterpret_cast<uint32_t*>(mem + i) = static_cast<uint32_t>(rng());
    ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    ggml_threadpool* pool = ggml_threadpool_new(&tpp);
    for (int n : {1, 2, 4, 8}) {
        ggml_init_params ip = {size_t(16) << 20, nullptr, true};
        ggml_context* ctx = ggml_init(ip);
        ggml_tensor* b = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, n);
        std::vector<float> bv(size_t(K) * n);
        for (auto& x : bv) x = static_cast<float>(rng() % 2001) / 1000.0f - 1.0f;
        b->data = bv.data();
        ggml_cgraph* gf = ggml_new_graph_custom(ctx, 64, false);
        std::vector<ggml_tensor*> as;
        for (int i = 0; i < L; ++i) {
            as.push_back(ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, K, M));
            ggml_build_forward_expand(gf, ggml_mul_mat(ctx, as.back(), b));
        }
        std::vector<float> out(size_t(M) * n * L);
        for (int i = 0; i < L; ++i) ggml_graph_node(gf, i)->data = out.data() + size_t(M) * n * i;
        ggml_cplan plan = ggml_graph_plan(gf, threads, pool);
        std::vector<uint8_t> work(plan.work_size + 64);
        plan.work_data = work.data();
        std::vector<std::vector<double>> times(phases.size());
        for (int r = 0; r < rounds; ++r) {
            std::vector<size_t> order = {0, 1, 2, 3};
            std::shuffle(order.begin(), order.end(), rng);
            for (size_t p : order) {
                for (int i = 0; i < L; ++i) {
                    char* at = mem + (matrix + 8192) * i;
                    at = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(at) + 4095) & ~uintptr_t(4095)) + phases[p];
                    as[i]->data = at;
                    for (size_t blk = 0; blk < matrix; blk += 34) *reinterpret_cast<uint16_t*>(at + blk) = 0x2400;  // d = 1/64.
                }
                const auto t0 = std::chrono::steady_clock::now();
                for (int rep = 0; rep < 3; ++rep) ggml_graph_compute(gf, &plan);
                times[p].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
        }
        std::vector<double> med;
        for (auto& t : times) {
            std::sort(t.begin(), t.end());
            med.push_back(t[t.size() / 2]);
        }
        std::printf("%8d %10.3f %10.3f %10.3f %10.3f\n", n, med[0] / med[2], med[1] / med[2], 1.0, med[3] / med[2]);
        ggml_free(ctx);
    }
    ggml_threadpool_free(pool);
    munmap(mem, region);
    return 0;
}
