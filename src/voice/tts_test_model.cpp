#include "voice/tts_test_model.hpp"

#include <ggml.h>
#include <gguf.h>

#include "llm/gguf_write.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mc::voice {

namespace {

using llm::GgmlDeleter;
using llm::GgufDeleter;
using llm::XorShift;

// How a tensor's values are made.
enum class Fill {
    Random,    // uniform in [-scale, scale]
    Constant,  // every value = scale (norm weights 1, biases that must keep a head silent)
};

// Collects tensor metadata in a gguf context, then streams random data after the header.
class GgufWriter {
public:
    GgufWriter() : m_gguf(gguf_init_empty()) {
        ggml_init_params ip{kMaxTensors * ggml_tensor_overhead(), nullptr, true};
        m_ctx.reset(ggml_init(ip));
    }
    gguf_context* gguf() { return m_gguf.get(); }

    // dims as ggml orders them (ne0 first). scale 0: 1/sqrt(fan-in), fan-in being every dim but the last.
    void add(const std::string& name, ggml_type type, std::vector<int64_t> dims, Fill fill = Fill::Random,
             float scale = 0.0f) {
        // Quantized/half types need whole blocks along ne0; small or odd rows stay f32.
        if (type == GGML_TYPE_Q8_0 && dims[0] % 32 != 0) type = GGML_TYPE_F16;
        if (dims.size() == 1) type = GGML_TYPE_F32;
        ggml_tensor* t = nullptr;
        switch (dims.size()) {
            case 1: t = ggml_new_tensor_1d(m_ctx.get(), type, dims[0]); break;
            case 2: t = ggml_new_tensor_2d(m_ctx.get(), type, dims[0], dims[1]); break;
            default: t = ggml_new_tensor_3d(m_ctx.get(), type, dims[0], dims[1], dims[2]); break;
        }
        if (fill == Fill::Random && scale == 0.0f) {
            int64_t fan_in = 1;
            for (size_t i = 0; i + 1 < dims.size(); ++i) fan_in *= dims[i];
            scale = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(fan_in, 1)));
        }
        ggml_set_name(t, name.c_str());
        gguf_add_tensor(m_gguf.get(), t);
        m_entries.push_back({t, fill, scale});
    }

    Result<void> write(const std::string& path, uint64_t seed) {
        const std::string tmp = path + ".tmp";
        FILE* f = std::fopen(tmp.c_str(), "wb");
        if (!f) return fail(ErrorCode::Io, "cannot write " + tmp + ": " + std::strerror(errno), "out");
        std::vector<uint8_t> meta(gguf_get_meta_size(m_gguf.get()));
        gguf_get_meta_data(m_gguf.get(), meta.data());
        bool ok = std::fwrite(meta.data(), 1, meta.size(), f) == meta.size();
        XorShift rng{seed * 0x9E3779B97F4A7C15ull + 1};
        for (const auto& e : m_entries) ok = ok && write_tensor(f, e, rng);
        ok = (std::fclose(f) == 0) && ok;
        if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
            std::remove(tmp.c_str());
            return fail(ErrorCode::Io, "cannot write " + path, "out");
        }
        return {};
    }

private:
    static constexpr size_t kMaxTensors = 4096;
    struct Entry {
        ggml_tensor* t;
        Fill fill;
        float scale;
    };

    static bool write_tensor(FILE* f, const Entry& e, XorShift& rng) {
        return llm::write_tensor_data(
            f, e.t, [&] { return e.fill == Fill::Constant ? e.scale : rng.uniform() * e.scale; }, e.scale, rng);
    }

    std::unique_ptr<gguf_context, GgufDeleter> m_gguf;
    std::unique_ptr<ggml_context, GgmlDeleter> m_ctx;
    std::vector<Entry> m_entries;
};

// SentencePiece token types as llama.cpp reads them.
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;

// An SPM vocabulary of <unk> <s> </s>, the 256 byte tokens and the given specials (in order):
// the tokenizer falls back to bytes for every character, which is all a random model needs.
struct Vocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    void push(std::string text, int32_t type) {
        tokens.push_back(std::move(text));
        scores.push_back(0.0f);
        types.push_back(type);
    }
    int32_t size() const { return static_cast<int32_t>(tokens.size()); }
    int32_t find(const std::string& text) const {
        for (size_t i = 0; i < tokens.size(); ++i)
            if (tokens[i] == text) return static_cast<int32_t>(i);
        return -1;
    }
    void write(gguf_context* g) const {
        std::vector<const char*> ptrs;
        for (const auto& t : tokens) ptrs.push_back(t.c_str());
        gguf_set_val_str(g, "tokenizer.ggml.model", "llama");
        gguf_set_val_str(g, "tokenizer.ggml.pre", "default");
        gguf_set_arr_str(g, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
        gguf_set_arr_data(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
        gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
        gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", 0);
        gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", 1);
        gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", false);
        gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
    }
};

Vocab byte_vocab() {
    Vocab v;
    v.push("<unk>", kTypeUnknown);
    v.push("<s>", kTypeControl);
    v.push("</s>", kTypeControl);
    char piece[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(piece, sizeof piece, "<0x%02X>", b);
        v.push(piece, kTypeByte);
    }
    v.push("\xE2\x96\x81", kTypeNormal);  // "▁", SentencePiece's word-boundary piece.
    return v;
}

// ---------------------------------------------------------------------------------------------
// Qwen3-TTS
// ---------------------------------------------------------------------------------------------

struct Qwen3Shape {
    // Talker (backbone).
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff;
    int32_t rope_sections[4];
    // Code predictor.
    int64_t p_embd, p_layer, p_head, p_head_kv, p_head_dim, p_ff;
    // Speaker encoder (ECAPA-TDNN): channels, squeeze-excite, aggregation, attention.
    int64_t s_ch, s_se, s_mfa, s_attn;
    // Code2wav: codebook dim, quantizer out, latent, transformer width/q width/ff, DAC widths.
    int64_t c_cb, c_hidden, c_latent, c_tfm, c_tfm_q, c_tfm_ff, c_up_ff;
    int64_t dac[5];
};

// Fixed by libmtmd (clip.cpp) and by the codec itself.
constexpr int64_t kQwenCodecVocab = 3072;  // Talker codec rows, the output head's size.
constexpr int64_t kQwenCodebook = 2048;    // Entries per RVQ codebook.
constexpr int64_t kQwenAcoustic = 15;      // Codebooks after the semantic one.
constexpr int kQwenWavLayers = 8, kQwenWavHeads = 16, kQwenDacBlocks = 4;
constexpr int kQwenDacStrides[kQwenDacBlocks] = {8, 5, 4, 3};
constexpr int kQwenMelBins = 128;

// Talker codec rows with a meaning (the *_id fields of Qwen3-TTS-12Hz-1.7B-Base's talker_config).
const std::pair<const char*, int> kQwenCodecSpecials[] = {
    {"<|codec_pad|>", 2148},       {"<|codec_bos|>", 2149},        {"<|codec_eos_token|>", 2150},
    {"<|codec_think|>", 2154},     {"<|codec_nothink|>", 2155},    {"<|codec_think_bos|>", 2156},
    {"<|codec_think_eos|>", 2157}, {"<|codec_language_english|>", 2050}, {"<|codec_language_german|>", 2053},
    {"<|codec_language_spanish|>", 2054}, {"<|codec_language_chinese|>", 2055},
    {"<|codec_language_japanese|>", 2058}, {"<|codec_language_french|>", 2061},
    {"<|codec_language_korean|>", 2064},   {"<|codec_language_russian|>", 2069},
    {"<|codec_language_italian|>", 2070},  {"<|codec_language_portuguese|>", 2071},
};

Qwen3Shape qwen3_shape(const std::string& size) {
    if (size == "1.7b") {
        // Qwen3-TTS-12Hz-1.7B-Base: talker 28 x 2048 (16 heads, 8 KV, head 128, ff 6144); code
        // predictor 5 x 1024 (16 heads, 8 KV, head 128, ff 3072); ECAPA 512/128/1536/128; tokenizer
        // decoder codebook 256 -> 512, latent 1024, 8 layers of 512 (16 heads of 64, ff 1024), DAC 1536.
        return {2048, 28, 16, 8, 6144, {24, 20, 20, 0},
                1024, 5, 16, 8, 128, 3072,
                512, 128, 1536, 128,
                256, 512, 1024, 512, 1024, 1024, 4096,
                {1536, 768, 384, 192, 96}};
    }
    return {64, 2, 4, 2, 128, {4, 2, 2, 0},
            32, 1, 2, 1, 16, 64,
            16, 8, 48, 8,
            8, 16, 32, 16, 64, 32, 64,
            {16, 8, 8, 8, 8}};
}

Result<void> write_qwen3(const TtsTestModelOptions& o) {
    const Qwen3Shape s = qwen3_shape(o.size);
    const bool big = o.size == "1.7b";
    const ggml_type wtype = big ? GGML_TYPE_Q8_0 : GGML_TYPE_F32;  // Backbone matrices.
    const ggml_type mtype = big ? GGML_TYPE_F16 : GGML_TYPE_F32;   // mmproj matrices.

    // Vocabulary: text tokens first, then the 3,072 codec rows (the output head covers only those).
    Vocab v = byte_vocab();
    for (const char* t : {"<|im_start|>", "<|im_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>"})
        v.push(t, kTypeControl);
    const int32_t n_text = v.size();
    std::vector<std::string> codec(kQwenCodecVocab);
    for (int64_t i = 0; i < kQwenCodecVocab; ++i) codec[i] = "<|codec_" + std::to_string(i) + "|>";
    for (const auto& [name, id] : kQwenCodecSpecials) codec[id] = name;
    for (auto& c : codec) v.push(c, kTypeControl);
    const int32_t n_vocab = v.size();
    const int32_t codec_eos = n_text + 2150;
    // Only codec 0..2047 and EOS may be sampled (what the converter writes).
    std::vector<int32_t> suppress;
    for (int32_t i = n_vocab - 1024; i < n_vocab; ++i)
        if (i != codec_eos) suppress.push_back(i);

    {
        GgufWriter w;
        gguf_context* g = w.gguf();
        gguf_set_val_str(g, "general.architecture", "qwen3tts");
        gguf_set_val_str(g, "general.name", ("mycandy-random-qwen3tts-" + o.size).c_str());
        gguf_set_val_u32(g, "qwen3tts.context_length", 32768);
        gguf_set_val_u32(g, "qwen3tts.embedding_length", static_cast<uint32_t>(s.n_embd));
        gguf_set_val_u32(g, "qwen3tts.feed_forward_length", static_cast<uint32_t>(s.n_ff));
        gguf_set_val_u32(g, "qwen3tts.block_count", static_cast<uint32_t>(s.n_layer));
        gguf_set_val_u32(g, "qwen3tts.attention.head_count", static_cast<uint32_t>(s.n_head));
        gguf_set_val_u32(g, "qwen3tts.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
        gguf_set_val_f32(g, "qwen3tts.attention.layer_norm_rms_epsilon", 1e-6f);
        gguf_set_val_f32(g, "qwen3tts.rope.freq_base", 1000000.0f);
        gguf_set_arr_data(g, "qwen3tts.rope.dimension_sections", GGUF_TYPE_INT32, s.rope_sections, 4);
        v.write(g);
        gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", static_cast<uint32_t>(codec_eos));
        gguf_set_arr_data(g, "tokenizer.ggml.suppress_tokens", GGUF_TYPE_INT32, suppress.data(), suppress.size());

        const int64_t hd = s.n_embd / s.n_head;
        w.add("token_embd.weight", wtype, {s.n_embd, n_vocab}, Fill::Random, 0.5f);
        w.add("output_norm.weight", GGML_TYPE_F32, {s.n_embd}, Fill::Constant, 1.0f);
        w.add("output.weight", wtype, {s.n_embd, kQwenCodecVocab});
        for (int64_t l = 0; l < s.n_layer; ++l) {
            const std::string b = "blk." + std::to_string(l) + ".";
            w.add(b + "attn_norm.weight", GGML_TYPE_F32, {s.n_embd}, Fill::Constant, 1.0f);
            w.add(b + "attn_q.weight", wtype, {s.n_embd, s.n_head * hd});
            w.add(b + "attn_k.weight", wtype, {s.n_embd, s.n_head_kv * hd});
            w.add(b + "attn_v.weight", wtype, {s.n_embd, s.n_head_kv * hd});
            w.add(b + "attn_output.weight", wtype, {s.n_head * hd, s.n_embd});
            w.add(b + "attn_q_norm.weight", GGML_TYPE_F32, {hd}, Fill::Constant, 1.0f);
            w.add(b + "attn_k_norm.weight", GGML_TYPE_F32, {hd}, Fill::Constant, 1.0f);
            w.add(b + "ffn_norm.weight", GGML_TYPE_F32, {s.n_embd}, Fill::Constant, 1.0f);
            w.add(b + "ffn_gate.weight", wtype, {s.n_embd, s.n_ff});
            w.add(b + "ffn_up.weight", wtype, {s.n_embd, s.n_ff});
            w.add(b + "ffn_down.weight", wtype, {s.n_ff, s.n_embd});
        }
        if (auto r = w.write(o.out, o.seed); !r) return r;
    }

    GgufWriter w;
    gguf_context* g = w.gguf();
    gguf_set_val_str(g, "general.architecture", "clip");
    gguf_set_val_str(g, "general.name", ("mycandy-random-qwen3tts-" + o.size + "-mmproj").c_str());
    gguf_set_val_bool(g, "clip.has_audio_encoder", true);
    gguf_set_val_bool(g, "clip.has_gen_audio_encoder", true);
    gguf_set_val_str(g, "clip.audio.projector_type", "qwen3tts_spkenc");
    gguf_set_val_str(g, "clip.gen.audio.projector_type", "qwen3tts_gen");
    gguf_set_val_u32(g, "clip.audio.num_mel_bins", kQwenMelBins);
    gguf_set_val_u32(g, "clip.audio.embedding_length", static_cast<uint32_t>(s.s_mfa));
    gguf_set_val_u32(g, "clip.audio.attention.head_count", 1);
    gguf_set_val_u32(g, "clip.audio.feed_forward_length", static_cast<uint32_t>(s.s_mfa));
    gguf_set_val_u32(g, "clip.audio.block_count", 3);
    gguf_set_val_u32(g, "clip.audio.projection_dim", static_cast<uint32_t>(s.n_embd));
    gguf_set_val_f32(g, "clip.audio.attention.layer_norm_epsilon", 1e-5f);
    gguf_set_val_u32(g, "clip.gen.audio.embedding_length", static_cast<uint32_t>(s.p_embd));
    gguf_set_val_u32(g, "clip.gen.audio.feed_forward_length", static_cast<uint32_t>(s.p_ff));
    gguf_set_val_u32(g, "clip.gen.audio.block_count", static_cast<uint32_t>(s.p_layer));
    gguf_set_val_u32(g, "clip.gen.audio.attention.head_count", static_cast<uint32_t>(s.p_head));
    gguf_set_val_u32(g, "clip.gen.audio.attention.head_count_kv", static_cast<uint32_t>(s.p_head_kv));
    gguf_set_val_u32(g, "clip.gen.audio.projection_dim", static_cast<uint32_t>(s.n_embd));
    gguf_set_val_f32(g, "clip.gen.audio.attention.layer_norm_epsilon", 1e-6f);

    const auto F32 = GGML_TYPE_F32;
    const auto ones = [&](const std::string& name, int64_t n) { w.add(name, F32, {n}, Fill::Constant, 1.0f); };
    const auto bias = [&](const std::string& name, int64_t n) { w.add(name, F32, {n}, Fill::Random, 0.02f); };

    // Speaker encoder (ECAPA-TDNN). Convolutions are [kernel, in, out].
    w.add("a.conv1d.0.weight", F32, {5, kQwenMelBins, s.s_ch});
    bias("a.conv1d.0.bias", s.s_ch);
    const int64_t res2 = s.s_ch / 8;
    for (int bid = 1; bid <= 3; ++bid) {
        const std::string b = "a.blk." + std::to_string(bid) + ".";
        w.add(b + "conv_pw1.weight", F32, {1, s.s_ch, s.s_ch});
        bias(b + "conv_pw1.bias", s.s_ch);
        w.add(b + "conv_pw2.weight", F32, {1, s.s_ch, s.s_ch});
        bias(b + "conv_pw2.bias", s.s_ch);
        w.add(b + "se_conv1.weight", F32, {1, s.s_ch, s.s_se});
        bias(b + "se_conv1.bias", s.s_se);
        w.add(b + "se_conv2.weight", F32, {1, s.s_se, s.s_ch});
        bias(b + "se_conv2.bias", s.s_ch);
        for (int x = 0; x < 7; ++x) {
            w.add(b + "res2." + std::to_string(x) + ".weight", F32, {3, res2, res2});
            bias(b + "res2." + std::to_string(x) + ".bias", res2);
        }
    }
    w.add("a.conv_out.weight", F32, {1, 3 * s.s_ch, s.s_mfa});
    bias("a.conv_out.bias", s.s_mfa);
    w.add("a.asp_tdnn.weight", F32, {1, 3 * s.s_mfa, s.s_attn});
    bias("a.asp_tdnn.bias", s.s_attn);
    w.add("a.asp_attn.weight", F32, {1, s.s_attn, s.s_mfa});
    bias("a.asp_attn.bias", s.s_mfa);
    w.add("mm.a.fc.weight", F32, {1, 2 * s.s_mfa, s.n_embd});
    bias("mm.a.fc.bias", s.n_embd);

    // Code predictor.
    for (int64_t l = 0; l < s.p_layer; ++l) {
        const std::string b = "a.gen.code.blk." + std::to_string(l) + ".";
        ones(b + "ln1.weight", s.p_embd);
        ones(b + "ln2.weight", s.p_embd);
        w.add(b + "attn_q.weight", mtype, {s.p_embd, s.p_head * s.p_head_dim});
        w.add(b + "attn_k.weight", mtype, {s.p_embd, s.p_head_kv * s.p_head_dim});
        w.add(b + "attn_v.weight", mtype, {s.p_embd, s.p_head_kv * s.p_head_dim});
        w.add(b + "attn_out.weight", mtype, {s.p_head * s.p_head_dim, s.p_embd});
        ones(b + "attn_q_norm.weight", s.p_head_dim);
        ones(b + "attn_k_norm.weight", s.p_head_dim);
        w.add(b + "ffn_gate.weight", mtype, {s.p_embd, s.p_ff});
        w.add(b + "ffn_up.weight", mtype, {s.p_embd, s.p_ff});
        w.add(b + "ffn_down.weight", mtype, {s.p_ff, s.p_embd});
    }
    if (s.p_embd != s.n_embd) {
        w.add("a.gen.code.proj_in.weight", mtype, {s.n_embd, s.p_embd});
        bias("a.gen.code.proj_in.bias", s.p_embd);
    }
    w.add("a.gen.code.embd.weight", mtype, {s.n_embd, kQwenCodebook, kQwenAcoustic}, Fill::Random, 0.5f);
    w.add("a.gen.code.head.weight", mtype, {s.p_embd, kQwenCodebook, kQwenAcoustic}, Fill::Random,
          1.0f / std::sqrt(static_cast<float>(s.p_embd)));
    w.add("a.gen.code.out_embd.weight", mtype, {s.n_embd, kQwenCodecVocab}, Fill::Random, 0.5f);
    ones("a.gen.code.output_norm.weight", s.p_embd);

    // Code2wav: RVQ decode, pre-transformer, 2 ConvNeXt upsamplers, DAC decoder.
    w.add("a.gen.wav.quant.first.codebook.weight", F32, {s.c_cb, kQwenCodebook}, Fill::Random, 1.0f);
    w.add("a.gen.wav.quant.first.out_proj.weight", mtype, {s.c_cb, s.c_hidden});
    w.add("a.gen.wav.quant.rest.codebook.weight", F32, {s.c_cb, kQwenCodebook, kQwenAcoustic}, Fill::Random, 0.3f);
    w.add("a.gen.wav.quant.rest.in_proj.weight", mtype, {s.c_hidden, s.c_cb});
    w.add("a.gen.wav.quant.first.in_proj.weight", mtype, {s.c_hidden, s.c_cb});
    w.add("a.gen.wav.quant.rest.out_proj.weight", mtype, {s.c_cb, s.c_hidden});
    w.add("a.gen.wav.pre_conv.weight", F32, {3, s.c_hidden, s.c_latent});
    bias("a.gen.wav.pre_conv.bias", s.c_latent);
    w.add("a.gen.wav.tfm.in_proj.weight", mtype, {s.c_latent, s.c_tfm});
    bias("a.gen.wav.tfm.in_proj.bias", s.c_tfm);
    w.add("a.gen.wav.tfm.out_proj.weight", mtype, {s.c_tfm, s.c_latent});
    bias("a.gen.wav.tfm.out_proj.bias", s.c_latent);
    ones("a.gen.wav.tfm.output_norm.weight", s.c_tfm);
    for (int l = 0; l < kQwenWavLayers; ++l) {
        const std::string b = "a.gen.wav.tfm.blk." + std::to_string(l) + ".";
        w.add(b + "attn_q.weight", mtype, {s.c_tfm, s.c_tfm_q});
        w.add(b + "attn_k.weight", mtype, {s.c_tfm, s.c_tfm_q});
        w.add(b + "attn_v.weight", mtype, {s.c_tfm, s.c_tfm_q});
        w.add(b + "attn_out.weight", mtype, {s.c_tfm_q, s.c_tfm});
        ones(b + "ln1.weight", s.c_tfm);
        ones(b + "ln2.weight", s.c_tfm);
        w.add(b + "ls1.weight", F32, {s.c_tfm}, Fill::Constant, 0.1f);
        w.add(b + "ls2.weight", F32, {s.c_tfm}, Fill::Constant, 0.1f);
        w.add(b + "ffn_gate.weight", mtype, {s.c_tfm, s.c_tfm_ff});
        w.add(b + "ffn_up.weight", mtype, {s.c_tfm, s.c_tfm_ff});
        w.add(b + "ffn_down.weight", mtype, {s.c_tfm_ff, s.c_tfm});
    }
    for (int l = 0; l < 2; ++l) {
        const std::string b = "a.gen.wav.up.blk." + std::to_string(l) + ".";
        w.add(b + "conv.weight", F32, {2, s.c_latent, s.c_latent}, Fill::Random,
              1.0f / std::sqrt(static_cast<float>(s.c_latent)));
        bias(b + "conv.bias", s.c_latent);
        w.add(b + "dwconv.weight", F32, {7, 1, s.c_latent});
        bias(b + "dwconv.bias", s.c_latent);
        ones(b + "norm.weight", s.c_latent);
        bias(b + "norm.bias", s.c_latent);
        w.add(b + "pw1.weight", mtype, {s.c_latent, s.c_up_ff});
        bias(b + "pw1.bias", s.c_up_ff);
        w.add(b + "pw2.weight", mtype, {s.c_up_ff, s.c_latent});
        bias(b + "pw2.bias", s.c_latent);
        w.add("a.gen.wav.up.blk." + std::to_string(l) + ".gamma", F32, {s.c_latent}, Fill::Constant, 0.1f);
    }
    w.add("a.gen.wav.dac.entry.weight", F32, {7, s.c_latent, s.dac[0]});
    bias("a.gen.wav.dac.entry.bias", s.dac[0]);
    for (int l = 0; l < kQwenDacBlocks; ++l) {
        const std::string b = "a.gen.wav.dac.blk." + std::to_string(l) + ".";
        const int64_t in = s.dac[l], out = s.dac[l + 1];
        ones(b + "snake.alpha", in);
        ones(b + "snake.beta", in);
        // Transposed convolution: [kernel, out, in].
        w.add(b + "conv.weight", F32, {2 * kQwenDacStrides[l], out, in}, Fill::Random,
              1.0f / std::sqrt(static_cast<float>(in)));
        bias(b + "conv.bias", out);
        for (int r = 0; r < 3; ++r) {
            const std::string rb = b + "res." + std::to_string(r) + ".";
            ones(rb + "act1.alpha", out);
            ones(rb + "act1.beta", out);
            w.add(rb + "conv1.weight", F32, {7, out, out});
            bias(rb + "conv1.bias", out);
            ones(rb + "act2.alpha", out);
            ones(rb + "act2.beta", out);
            w.add(rb + "conv2.weight", F32, {1, out, out});
            bias(rb + "conv2.bias", out);
        }
    }
    ones("a.gen.wav.dac.post_snake.alpha", s.dac[kQwenDacBlocks]);
    ones("a.gen.wav.dac.post_snake.beta", s.dac[kQwenDacBlocks]);
    w.add("a.gen.wav.dac.post_conv.weight", F32, {7, s.dac[kQwenDacBlocks], 1});
    bias("a.gen.wav.dac.post_conv.bias", 1);
    return w.write(o.mmproj, o.seed + 1);
}

// ---------------------------------------------------------------------------------------------
// Pocket TTS (tiny only)
// ---------------------------------------------------------------------------------------------

Result<void> write_pocket(const TtsTestModelOptions& o) {
    // Backbone width, layers, heads, ff; latent; flow width; mimi width/heads/ff; SEANet base.
    constexpr int64_t n_embd = 32, n_layer = 2, n_head = 2, n_ff = 64;
    constexpr int64_t n_latent = 32, flow = 32, mimi = 16, mimi_ff = 32, sea = 4;
    constexpr int mimi_heads = 2, sea_ratios[3] = {4, 5, 6}, mimi_down = 16;

    Vocab v = byte_vocab();
    v.push("<|audio_bos|>", kTypeControl);
    const int32_t n_vocab = v.size();
    {
        GgufWriter w;
        gguf_context* g = w.gguf();
        gguf_set_val_str(g, "general.architecture", "pockettts");
        gguf_set_val_str(g, "general.name", "mycandy-random-pockettts-tiny");
        gguf_set_val_u32(g, "pockettts.context_length", 4096);
        gguf_set_val_u32(g, "pockettts.embedding_length", n_embd);
        gguf_set_val_u32(g, "pockettts.feed_forward_length", n_ff);
        gguf_set_val_u32(g, "pockettts.block_count", n_layer);
        gguf_set_val_u32(g, "pockettts.attention.head_count", n_head);
        gguf_set_val_u32(g, "pockettts.attention.head_count_kv", n_head);
        gguf_set_val_f32(g, "pockettts.attention.layer_norm_epsilon", 1e-5f);
        v.write(g);
        gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", 2);

        w.add("token_embd.weight", GGML_TYPE_F32, {n_embd, n_vocab}, Fill::Random, 0.5f);
        w.add("output_norm.weight", GGML_TYPE_F32, {n_embd}, Fill::Constant, 1.0f);
        w.add("output_norm.bias", GGML_TYPE_F32, {n_embd}, Fill::Random, 0.02f);
        for (int64_t l = 0; l < n_layer; ++l) {
            const std::string b = "blk." + std::to_string(l) + ".";
            w.add(b + "attn_norm.weight", GGML_TYPE_F32, {n_embd}, Fill::Constant, 1.0f);
            w.add(b + "attn_norm.bias", GGML_TYPE_F32, {n_embd}, Fill::Random, 0.02f);
            w.add(b + "attn_q.weight", GGML_TYPE_F32, {n_embd, n_embd});
            w.add(b + "attn_k.weight", GGML_TYPE_F32, {n_embd, n_embd});
            w.add(b + "attn_v.weight", GGML_TYPE_F32, {n_embd, n_embd});
            w.add(b + "attn_output.weight", GGML_TYPE_F32, {n_embd, n_embd});
            w.add(b + "ffn_norm.weight", GGML_TYPE_F32, {n_embd}, Fill::Constant, 1.0f);
            w.add(b + "ffn_norm.bias", GGML_TYPE_F32, {n_embd}, Fill::Random, 0.02f);
            w.add(b + "ffn_up.weight", GGML_TYPE_F32, {n_embd, n_ff});
            w.add(b + "ffn_down.weight", GGML_TYPE_F32, {n_ff, n_embd});
        }
        if (auto r = w.write(o.out, o.seed); !r) return r;
    }

    GgufWriter w;
    gguf_context* g = w.gguf();
    gguf_set_val_str(g, "general.architecture", "clip");
    gguf_set_val_str(g, "general.name", "mycandy-random-pockettts-tiny-mmproj");
    gguf_set_val_bool(g, "clip.has_audio_encoder", true);
    gguf_set_val_bool(g, "clip.has_gen_audio_encoder", true);
    gguf_set_val_str(g, "clip.audio.projector_type", "pockettts_spkenc");
    gguf_set_val_str(g, "clip.gen.audio.projector_type", "pockettts_gen");
    gguf_set_val_u32(g, "clip.audio.num_mel_bins", 1);
    for (const char* p : {"audio", "gen.audio"}) {
        const std::string k = std::string("clip.") + p + ".";
        gguf_set_val_u32(g, (k + "embedding_length").c_str(), mimi);
        gguf_set_val_u32(g, (k + "attention.head_count").c_str(), mimi_heads);
        gguf_set_val_u32(g, (k + "feed_forward_length").c_str(), mimi_ff);
        gguf_set_val_u32(g, (k + "block_count").c_str(), 1);
        gguf_set_val_u32(g, (k + "projection_dim").c_str(), n_embd);
        gguf_set_val_f32(g, (k + "attention.layer_norm_epsilon").c_str(), 1e-5f);
    }

    const auto F32 = GGML_TYPE_F32;
    const auto ones = [&](const std::string& name, int64_t n) { w.add(name, F32, {n}, Fill::Constant, 1.0f); };
    const auto bias = [&](const std::string& name, int64_t n) { w.add(name, F32, {n}, Fill::Random, 0.02f); };
    const auto tfm_layer = [&](const std::string& b) {
        ones(b + "ln1.weight", mimi);
        bias(b + "ln1.bias", mimi);
        ones(b + "ln2.weight", mimi);
        bias(b + "ln2.bias", mimi);
        w.add(b + "attn_q.weight", F32, {mimi, mimi});
        w.add(b + "attn_k.weight", F32, {mimi, mimi});
        w.add(b + "attn_v.weight", F32, {mimi, mimi});
        w.add(b + "attn_out.weight", F32, {mimi, mimi});
        w.add(b + "ls1.weight", F32, {mimi}, Fill::Constant, 0.1f);
        w.add(b + "ls2.weight", F32, {mimi}, Fill::Constant, 0.1f);
        w.add(b + "ffn_up.weight", F32, {mimi, mimi_ff});
        w.add(b + "ffn_down.weight", F32, {mimi_ff, mimi});
    };
    // SEANet: channels double per encoder stage (sea, 2 sea, 4 sea, 8 sea); the decoder mirrors it.
    const auto seanet = [&](const std::string& p, bool decoder) {
        if (!decoder) {
            w.add(p + "conv_in.weight", F32, {7, 1, sea});
            bias(p + "conv_in.bias", sea);
            w.add(p + "conv_out.weight", F32, {3, 8 * sea, mimi});
            bias(p + "conv_out.bias", mimi);
        } else {
            w.add(p + "conv_in.weight", F32, {7, mimi, 8 * sea});
            bias(p + "conv_in.bias", 8 * sea);
            w.add(p + "conv_out.weight", F32, {3, sea, 1});
            bias(p + "conv_out.bias", 1);
        }
        for (int i = 0; i < 3; ++i) {
            const std::string b = p + "blk." + std::to_string(i) + ".";
            // Encoder stage i runs at sea << i and doubles it; decoder stage i halves 8 sea >> i.
            const int64_t ch = decoder ? (8 * sea) >> (i + 1) : sea << i;
            const int ratio = decoder ? sea_ratios[2 - i] : sea_ratios[i];
            w.add(b + "res_conv1.weight", F32, {3, ch, ch / 2});
            bias(b + "res_conv1.bias", ch / 2);
            w.add(b + "res_conv2.weight", F32, {1, ch / 2, ch});
            bias(b + "res_conv2.bias", ch);
            if (!decoder) {
                w.add(b + "scale_conv.weight", F32, {2 * ratio, ch, 2 * ch});
                bias(b + "scale_conv.bias", 2 * ch);
            } else {  // Transposed: [kernel, out, in].
                w.add(b + "scale_conv.weight", F32, {2 * ratio, ch, 2 * ch}, Fill::Random,
                      1.0f / std::sqrt(static_cast<float>(2 * ch)));
                bias(b + "scale_conv.bias", ch);
            }
        }
    };

    // Voice encoder: SEANet, one transformer layer, 16x downsample, projection to the backbone.
    seanet("a.seanet.", false);
    tfm_layer("a.blk.0.");
    w.add("a.downsample.conv.weight", F32, {2 * mimi_down, mimi, mimi});
    w.add("a.speaker_proj.weight", F32, {mimi, n_embd});

    // Flow net.
    w.add("a.gen.flow.input_proj.weight", F32, {n_latent, flow});
    bias("a.gen.flow.input_proj.bias", flow);
    w.add("a.gen.flow.cond_embd.weight", F32, {n_embd, flow});
    bias("a.gen.flow.cond_embd.bias", flow);
    for (int i = 0; i < 2; ++i) {
        const std::string b = "a.gen.flow.time." + std::to_string(i) + ".";
        w.add(b + "freqs", F32, {flow / 2}, Fill::Random, 1.0f);
        w.add(b + "up.weight", F32, {flow, flow});
        bias(b + "up.bias", flow);
        w.add(b + "down.weight", F32, {flow, flow});
        bias(b + "down.bias", flow);
        ones(b + "norm", flow);
    }
    {
        const std::string b = "a.gen.flow.blk.0.";
        ones(b + "norm.weight", flow);
        bias(b + "norm.bias", flow);
        w.add(b + "up.weight", F32, {flow, flow});
        bias(b + "up.bias", flow);
        w.add(b + "down.weight", F32, {flow, flow});
        bias(b + "down.bias", flow);
        w.add(b + "ada.weight", F32, {flow, 3 * flow});
        bias(b + "ada.bias", 3 * flow);
    }
    w.add("a.gen.flow.final.ada.weight", F32, {flow, 2 * flow});
    bias("a.gen.flow.final.ada.bias", 2 * flow);
    w.add("a.gen.flow.final.proj.weight", F32, {flow, n_latent});
    bias("a.gen.flow.final.proj.bias", n_latent);
    // The end-of-speech head never fires (bias far below the threshold), so a generation's length
    // is the helper's per-chunk budget: deterministic for tests.
    w.add("a.gen.out_eos.weight", F32, {n_embd, 1}, Fill::Random, 0.01f);
    w.add("a.gen.out_eos.bias", F32, {1}, Fill::Constant, -100.0f);
    w.add("a.gen.input_linear.weight", F32, {n_latent, n_embd});
    w.add("a.gen.emb_mean", F32, {n_latent}, Fill::Random, 0.1f);
    ones("a.gen.emb_std", n_latent);

    // Mimi decoder: latent -> mimi width, 16x depthwise upsample, one transformer layer, SEANet.
    w.add("a.gen.wav.quant_out.weight", F32, {n_latent, mimi});
    w.add("a.gen.wav.upsample.weight", F32, {2 * mimi_down, 1, mimi}, Fill::Random, 0.2f);
    tfm_layer("a.gen.wav.tfm.blk.0.");
    seanet("a.gen.wav.seanet.", true);
    return w.write(o.mmproj, o.seed + 1);
}

}  // namespace

Result<void> write_tts_test_model(const TtsTestModelOptions& o) {
    if (o.kind != "qwen3tts" && o.kind != "pockettts")
        return fail(ErrorCode::InvalidInput, "--kind must be qwen3tts or pockettts (got '" + o.kind + "')", "kind");
    if (o.size != "tiny" && !(o.size == "1.7b" && o.kind == "qwen3tts"))
        return fail(ErrorCode::InvalidInput,
                    "--size must be tiny" + std::string(o.kind == "qwen3tts" ? " or 1.7b" : "") + " (got '" + o.size + "')",
                    "size");
    if (o.out.empty()) return fail(ErrorCode::InvalidInput, "--out FILE is required", "out");
    if (o.mmproj.empty()) return fail(ErrorCode::InvalidInput, "--mmproj FILE is required for TTS models", "mmproj");
    return o.kind == "qwen3tts" ? write_qwen3(o) : write_pocket(o);
}

}  // namespace mc::voice
