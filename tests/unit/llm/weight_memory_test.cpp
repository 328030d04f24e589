// The weights' memory of our own (llm/weight_memory): which tensors it takes, the override
// patterns that select them, and that llama.cpp loads a model's weights into it at the file's
// offsets within a page.
#include "llm/weight_memory.hpp"

#include "ggml-cpu.h"
#include "gguf.h"
#include "llm/test_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>

namespace mc::llm::weight_memory {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(WeightMemory, TensorsLlamaCppRepacksForThisProcessorAreLeftToIt) {
    const std::vector<TensorInfo> tensors = {
        {"blk.0.attn_norm.weight", GGML_TYPE_F32, {2048, 1, 1, 1}},
        {"blk.0.attn_q.weight", GGML_TYPE_Q8_0, {2048, 2048, 1, 1}},
        {"blk.0.ffn_up.weight", GGML_TYPE_Q4_0, {2048, 8192, 1, 1}},
        {"blk.0.ffn_down.weight", GGML_TYPE_F16, {8192, 2048, 1, 1}},
    };
    const auto plain = plain_cpu_tensors(tensors);
    EXPECT_TRUE(contains(plain, "blk.0.attn_norm.weight"));  // No matrix multiplication.
    EXPECT_TRUE(contains(plain, "blk.0.ffn_down.weight"));   // f16: no repacking for it.
    if (ggml_cpu_has_avx2()) {
        // llama.cpp repacks q4_0 matrices into 8x8 blocks with AVX2: moving it would cost that.
        EXPECT_FALSE(contains(plain, "blk.0.ffn_up.weight"));
    }
    if (!ggml_cpu_has_amx_int8() && (ggml_cpu_has_avx2() || ggml_cpu_has_avx512())) {
        EXPECT_TRUE(contains(plain, "blk.0.attn_q.weight"));  // q8_0 is not repacked on x86 without AMX.
    }
}

TEST(WeightMemory, PatternsMatchExactlyTheChosenNames) {
    std::vector<std::string> all = {"token_embd.weight", "output_norm.weight", "output.weight"};
    for (int l = 0; l < 12; ++l) {
        for (const char* f : {"attn_q.weight", "ffn_down.weight", "ffn_up.weight"}) all.push_back("blk." + std::to_string(l) + "." + f);
    }
    // Every attn_q, the ffn_down of layers 1 and 3 only (not 11, 13 or 31), no ffn_up, two others.
    std::vector<std::string> chosen = {"token_embd.weight", "output_norm.weight", "blk.1.ffn_down.weight", "blk.3.ffn_down.weight"};
    for (int l = 0; l < 12; ++l) chosen.push_back("blk." + std::to_string(l) + ".attn_q.weight");
    const auto patterns = name_patterns(chosen, all);
    EXPECT_LE(patterns.size(), 4u);  // One per family and per other name.
    all.push_back("blk.31.ffn_down.weight");  // Not in the model: not matched either.
    all.push_back("token_embdXweight");       // The dot is no wildcard.
    for (const auto& name : all) {
        const bool matched = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
            return std::regex_search(name, std::regex(p));  // As llama.cpp's loader matches them.
        });
        EXPECT_EQ(matched, contains(chosen, name)) << name;
    }
}

// llama.cpp, given our overrides and load mode none, puts every weight of a q8_0 model into our
// buffers, each starting where the file's data starts within a page; the model then answers as
// the mapped one does (LlamaEngineTest.WeightsInHugePagesAnswerAsWeightsMappedFromTheFile).
TEST(WeightMemory, AModelsWeightsLoadIntoItAtTheFilesOffsetsWithinAPage) {
    const std::string dir = (std::filesystem::temp_directory_path() / "mc-weight-memory").string();
    std::filesystem::create_directories(dir);
    TestModelOptions m;
    m.out = dir + "/tiny-q8_0.gguf";
    ASSERT_TRUE(write_test_model(m));
    gguf_init_params gp = {true, nullptr};
    gguf_context* g = gguf_init_from_file(m.out.c_str(), gp);
    ASSERT_NE(g, nullptr);
    const size_t data_offset = gguf_get_data_offset(g);
    size_t tensor_bytes = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) tensor_bytes += gguf_get_tensor_size(g, i);
    gguf_free(g);

    WeightMemory wm(m.out, 2);
    ASSERT_NE(wm.overrides(), nullptr);
    EXPECT_EQ(wm.phase(), data_offset % 4096);
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.load_mode = LLAMA_LOAD_MODE_NONE;
    mp.tensor_buft_overrides = wm.overrides();
    llama_model* model = llama_model_load_from_file(m.out.c_str(), mp);
    ASSERT_NE(model, nullptr);
    size_t ours = 0;
    for (const auto& b : wm.buffers()) {
        EXPECT_EQ(b.begin % 4096, data_offset % 4096);
        ours += b.size();
    }
    // Every tensor (tied output: the embedding is there twice), each padded to 32 bytes at most.
    EXPECT_GE(ours, tensor_bytes);
    llama_model_free(model);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mc::llm::weight_memory
