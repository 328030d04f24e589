#include "llm/test_model.hpp"

#include <ggml.h>
#include <gguf.h>

#include "llm/gguf_write.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#ifndef MYCANDY_VOCAB_GGUF
#define MYCANDY_VOCAB_GGUF ""
#endif

namespace mc::llm {

const char* const kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

std::string default_vocab_path() { return MYCANDY_VOCAB_GGUF; }

namespace {

struct Shape {
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
    float rope_base;
};


// Writes ggml_nbytes(t) bytes of random values of t's type; norms (kind 'n') are all 1, sharpening
// norms ('N', for --blocks zero) all 16.
bool write_tensor(FILE* f, const ggml_tensor* t, char kind, float scale, XorShift& rng) {
    return write_tensor_data(f, t, [&] { return kind == 'n' ? 1.0f : kind == 'N' ? 16.0f : rng.uniform() * scale; }, scale, rng);
}

}  // namespace

Result<void> write_test_model(const TestModelOptions& o) {
    Shape shape{};
    if (o.size == "tiny") shape = {64, 2, 4, 2, 128, 8192, 500000.0f};
    // small: tiny with 32-wide attention heads, the least a quantized KV cache (32-value blocks) takes.
    else if (o.size == "small") shape = {128, 2, 4, 2, 256, 8192, 500000.0f};
    else if (o.size == "1b") shape = {2048, 16, 32, 8, 8192, 131072, 500000.0f};
    else return fail(ErrorCode::InvalidInput, "--size must be tiny, small or 1b (got '" + o.size + "')", "size");
    if (o.layers < 0 || o.layers > 256) return fail(ErrorCode::InvalidInput, "--layers must be 1 to 256", "layers");
    if (o.layers > 0) shape.n_layer = o.layers;
    if (o.blocks != "random" && o.blocks != "zero") {
        return fail(ErrorCode::InvalidInput, "--blocks must be random or zero (got '" + o.blocks + "')", "blocks");
    }
    const bool zero = o.blocks == "zero";
    if (o.output != "tied" && o.output != "random") {
        return fail(ErrorCode::InvalidInput, "--output must be tied or random (got '" + o.output + "')", "output");
    }
    ggml_type wtype;
    if (o.type == "q8_0") wtype = GGML_TYPE_Q8_0;
    else if (o.type == "f16") wtype = GGML_TYPE_F16;
    else return fail(ErrorCode::InvalidInput, "--type must be q8_0 or f16 (got '" + o.type + "')", "type");
    if (o.out.empty()) return fail(ErrorCode::InvalidInput, "--out FILE is required", "out");

    const std::string vocab_path = o.vocab.empty() ? default_vocab_path() : o.vocab;
    gguf_init_params vp{true, nullptr};
    std::unique_ptr<gguf_context, GgufDeleter> vocab(gguf_init_from_file(vocab_path.c_str(), vp));
    if (!vocab) return fail(ErrorCode::NotFound, "cannot read the vocabulary " + vocab_path, "vocab");
    const int64_t tok_key = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
    if (tok_key < 0) return fail(ErrorCode::InvalidInput, vocab_path + " has no tokenizer.ggml.tokens", "vocab");
    const int64_t n_vocab = static_cast<int64_t>(gguf_get_arr_n(vocab.get(), tok_key));

    std::unique_ptr<gguf_context, GgufDeleter> g(gguf_init_empty());
    gguf_set_kv(g.get(), vocab.get());  // Tokenizer and whatever else the vocab file carries.
    gguf_set_val_str(g.get(), "general.architecture", "llama");
    gguf_set_val_str(g.get(), "general.name", ("mycandy-random-" + o.size).c_str());
    gguf_set_val_u32(g.get(), "general.file_type", wtype == GGML_TYPE_Q8_0 ? 7 : 1);
    gguf_set_val_u32(g.get(), "llama.vocab_size", static_cast<uint32_t>(n_vocab));
    gguf_set_val_u32(g.get(), "llama.context_length", static_cast<uint32_t>(shape.n_ctx_train));
    gguf_set_val_u32(g.get(), "llama.embedding_length", static_cast<uint32_t>(shape.n_embd));
    gguf_set_val_u32(g.get(), "llama.block_count", static_cast<uint32_t>(shape.n_layer));
    gguf_set_val_u32(g.get(), "llama.feed_forward_length", static_cast<uint32_t>(shape.n_ff));
    gguf_set_val_u32(g.get(), "llama.attention.head_count", static_cast<uint32_t>(shape.n_head));
    gguf_set_val_u32(g.get(), "llama.attention.head_count_kv", static_cast<uint32_t>(shape.n_head_kv));
    gguf_set_val_u32(g.get(), "llama.rope.dimension_count", static_cast<uint32_t>(shape.n_embd / shape.n_head));
    gguf_set_val_f32(g.get(), "llama.rope.freq_base", shape.rope_base);
    gguf_set_val_f32(g.get(), "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_str(g.get(), "tokenizer.chat_template", kLlama3Template);

    // Tensor metadata only; the data is streamed to the file below.
    const int64_t n_tensors = 3 + shape.n_layer * 9;
    ggml_init_params ip{static_cast<size_t>(n_tensors + 1) * ggml_tensor_overhead(), nullptr, true};
    std::unique_ptr<ggml_context, GgmlDeleter> ctx(ggml_init(ip));
    struct Entry {
        ggml_tensor* t;
        char kind;  // 'n' norm, 'w' weight
        float scale;
    };
    std::vector<Entry> entries;
    auto add = [&](const std::string& name, ggml_type type, int64_t ne0, int64_t ne1, char kind, float scale) {
        ggml_tensor* t = ne1 ? ggml_new_tensor_2d(ctx.get(), type, ne0, ne1) : ggml_new_tensor_1d(ctx.get(), type, ne0);
        ggml_set_name(t, name.c_str());
        gguf_add_tensor(g.get(), t);
        entries.push_back({t, kind, scale});
    };
    const int64_t head_dim = shape.n_embd / shape.n_head;
    const int64_t n_embd_kv = head_dim * shape.n_head_kv;
    const float s_embd = 1.0f / std::sqrt(static_cast<float>(shape.n_embd));
    const float s_ff = 1.0f / std::sqrt(static_cast<float>(shape.n_ff));
    // Small embeddings keep the logits close together, so sampling gives varied (random) text.
    add("token_embd.weight", wtype, shape.n_embd, n_vocab, 'w', 0.05f);  // Tied: also the output matrix.
    add("output_norm.weight", GGML_TYPE_F32, shape.n_embd, 0, zero ? 'N' : 'n', 1.0f);
    if (o.output == "random") add("output.weight", wtype, shape.n_embd, n_vocab, 'w', 0.05f);
    for (int64_t l = 0; l < shape.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        add(b + "attn_norm.weight", GGML_TYPE_F32, shape.n_embd, 0, 'n', 1.0f);
        add(b + "attn_q.weight", wtype, shape.n_embd, shape.n_embd, 'w', s_embd);
        add(b + "attn_k.weight", wtype, shape.n_embd, n_embd_kv, 'w', s_embd);
        add(b + "attn_v.weight", wtype, shape.n_embd, n_embd_kv, 'w', s_embd);
        add(b + "attn_output.weight", wtype, shape.n_embd, shape.n_embd, 'w', zero ? 0.0f : s_embd);
        add(b + "ffn_norm.weight", GGML_TYPE_F32, shape.n_embd, 0, 'n', 1.0f);
        add(b + "ffn_gate.weight", wtype, shape.n_embd, shape.n_ff, 'w', s_embd);
        add(b + "ffn_up.weight", wtype, shape.n_embd, shape.n_ff, 'w', s_embd);
        add(b + "ffn_down.weight", wtype, shape.n_ff, shape.n_embd, 'w', zero ? 0.0f : s_ff);
    }

    const std::string tmp = o.out + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return fail(ErrorCode::Io, "cannot write " + tmp + ": " + std::strerror(errno), "out");
    std::vector<uint8_t> meta(gguf_get_meta_size(g.get()));
    gguf_get_meta_data(g.get(), meta.data());
    bool ok = std::fwrite(meta.data(), 1, meta.size(), f) == meta.size();
    XorShift rng{o.seed * 0x9E3779B97F4A7C15ull + 1};
    for (const auto& e : entries) ok = ok && write_tensor(f, e.t, e.kind, e.scale, rng);
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), o.out.c_str()) != 0) {
        std::remove(tmp.c_str());
        return fail(ErrorCode::Io, "cannot write " + o.out, "out");
    }
    return {};
}

}  // namespace mc::llm
