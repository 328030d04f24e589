#include "stt/whisper_files.hpp"

#include <ggml.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace mc::stt {
namespace {

constexpr uint32_t kGgmlMagic = 0x67676d6c;  // "ggml", as whisper.cpp's files start.

class In {
public:
    explicit In(const std::string& path) : m_f(path, std::ios::binary) {
        std::error_code ec;
        m_size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
        if (ec) m_size = -1;
    }
    bool ok() const { return static_cast<bool>(m_f); }
    int64_t size() const { return m_size; }
    int64_t pos() { return static_cast<int64_t>(m_f.tellg()); }
    template <class T>
    bool read(T& v) {
        m_f.read(reinterpret_cast<char*>(&v), sizeof(T));
        return static_cast<bool>(m_f);
    }
    bool skip(int64_t n) {
        if (n < 0 || pos() + n > m_size) return false;
        m_f.seekg(n, std::ios::cur);
        return static_cast<bool>(m_f);
    }
    bool at_end() { return m_f.peek() == std::char_traits<char>::eof(); }

private:
    std::ifstream m_f;
    int64_t m_size = -1;
};

Error bad(const std::string& path, const std::string& what) {
    return Error{ErrorCode::InvalidInput, std::filesystem::path(path).filename().string() + " is not a usable model: " + what, ""};
}

// Opens `path` and checks its magic, telling GGUF (llama.cpp) and other files apart.
Result<void> check_magic(In& in, const std::string& path, const char* expected) {
    if (!in.ok() || in.size() < 0) return fail(ErrorCode::NotFound, "no model file at " + path);
    char head[4] = {};
    uint32_t magic = 0;
    if (!in.read(head)) return std::unexpected(bad(path, "the file is shorter than a header"));
    std::memcpy(&magic, head, 4);
    if (std::memcmp(head, "GGUF", 4) == 0) {
        return std::unexpected(bad(path, std::string("it is a GGUF file (a llama.cpp model); ") + expected +
                                             " comes in whisper.cpp's ggml .bin format (for example ggml-base.bin)"));
    }
    if (magic != kGgmlMagic) return std::unexpected(bad(path, std::string("it is not a ggml file (") + expected + " expected)"));
    return {};
}

// The tensor records that follow the header: n_dims, name length, type, shape, name, data.
Result<int> scan_tensors(In& in, const std::string& path) {
    int count = 0;
    while (!in.at_end()) {
        int32_t n_dims = 0, length = 0, ttype = 0;
        if (!in.read(n_dims) || !in.read(length) || !in.read(ttype)) return std::unexpected(bad(path, "the file is cut short (tensor header)"));
        if (n_dims < 0 || n_dims > 4) return std::unexpected(bad(path, "a tensor has " + std::to_string(n_dims) + " dimensions"));
        if (length < 1 || length > 512) return std::unexpected(bad(path, "a tensor name is " + std::to_string(length) + " bytes long"));
        if (ttype < 0 || ttype >= GGML_TYPE_COUNT || ggml_type_size(static_cast<ggml_type>(ttype)) == 0 ||
            ggml_blck_size(static_cast<ggml_type>(ttype)) <= 0) {
            return std::unexpected(bad(path, "a tensor has unknown type " + std::to_string(ttype)));
        }
        int64_t n = 1;
        int32_t ne0 = 1;
        for (int i = 0; i < n_dims; ++i) {
            int32_t ne = 0;
            if (!in.read(ne)) return std::unexpected(bad(path, "the file is cut short (tensor shape)"));
            if (ne < 1 || ne > (1 << 24)) return std::unexpected(bad(path, "a tensor has dimension " + std::to_string(ne)));
            if (i == 0) ne0 = ne;
            n *= ne;
            if (n > (int64_t{1} << 31) - 1) return std::unexpected(bad(path, "a tensor is too large"));  // whisper.cpp counts in int32.
        }
        const auto type = static_cast<ggml_type>(ttype);
        const int64_t blck = ggml_blck_size(type);
        if (ne0 % blck) return std::unexpected(bad(path, "a tensor's row does not fit its block size"));
        if (!in.skip(length)) return std::unexpected(bad(path, "the file is cut short (tensor name)"));
        const int64_t bytes = n / blck * static_cast<int64_t>(ggml_type_size(type));
        if (!in.skip(bytes)) return std::unexpected(bad(path, "the file is cut short (tensor data): a download that did not finish?"));
        ++count;
    }
    return count;
}

}  // namespace

Result<WhisperModelInfo> inspect_whisper_model(const std::string& path) {
    In in(path);
    if (auto m = check_magic(in, path, "a Whisper model"); !m) return std::unexpected(m.error());
    int32_t hp[11] = {};
    for (auto& v : hp) {
        if (!in.read(v)) return std::unexpected(bad(path, "the file is cut short (hyperparameters)"));
    }
    WhisperModelInfo info;
    info.n_vocab = hp[0];
    const int n_audio_ctx = hp[1], n_audio_state = hp[2], n_audio_head = hp[3];
    info.n_audio_layer = hp[4];
    const int n_text_ctx = hp[5], n_text_state = hp[6], n_text_head = hp[7];
    info.n_text_layer = hp[8];
    info.n_mels = hp[9];
    info.ftype = hp[10];
    info.n_state = n_audio_state;
    // A Silero VAD file starts with the length of its type name ("silero-16k" and the like).
    if (info.n_vocab > 0 && info.n_vocab < 64) {
        return std::unexpected(bad(path, "it looks like a voice activity (VAD) model, not a Whisper model: set it as stt.vad_model_path"));
    }
    auto in_range = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
    if (!in_range(info.n_vocab, 100, 1000000) || !in_range(n_audio_ctx, 1, 100000) || !in_range(n_audio_state, 1, 16384) ||
        !in_range(n_audio_head, 1, 1024) || !in_range(info.n_audio_layer, 1, 256) || !in_range(n_text_ctx, 1, 100000) ||
        n_text_state != n_audio_state || !in_range(n_text_head, 1, 1024) || !in_range(info.n_text_layer, 1, 256) ||
        !in_range(info.n_mels, 1, 512) || n_audio_state % n_audio_head || n_text_state % n_text_head) {
        return std::unexpected(bad(path, "its hyperparameters are not a Whisper model's"));
    }
    const int ft = info.ftype % GGML_QNT_VERSION_FACTOR;
    if (info.ftype < 0 || ft > 30) return std::unexpected(bad(path, "it has unknown weight type " + std::to_string(info.ftype)));
    int32_t n_mel = 0, n_fft = 0;
    if (!in.read(n_mel) || !in.read(n_fft) || !in_range(n_mel, 1, 512) || !in_range(n_fft, 1, 4096)) {
        return std::unexpected(bad(path, "its mel filter bank is damaged"));
    }
    if (!in.skip(int64_t{n_mel} * n_fft * 4)) return std::unexpected(bad(path, "the file is cut short (mel filters)"));
    int32_t n_words = 0;
    if (!in.read(n_words) || !in_range(n_words, 0, info.n_vocab)) return std::unexpected(bad(path, "its vocabulary is damaged"));
    for (int i = 0; i < n_words; ++i) {
        uint32_t len = 0;
        if (!in.read(len) || len > 1024 || !in.skip(len)) return std::unexpected(bad(path, "its vocabulary is damaged or cut short"));
    }
    auto tensors = scan_tensors(in, path);
    if (!tensors) return std::unexpected(tensors.error());
    const int expected = 11 + 15 * info.n_audio_layer + 24 * info.n_text_layer;
    if (*tensors != expected) {
        return std::unexpected(bad(path, "it holds " + std::to_string(*tensors) + " tensors, a Whisper model of this shape " +
                                             std::to_string(expected)));
    }
    info.tensors = *tensors;
    info.multilingual = info.n_vocab >= 51865;
    switch (info.n_audio_layer) {
        case 4: info.type = "tiny"; break;
        case 6: info.type = "base"; break;
        case 12: info.type = "small"; break;
        case 24: info.type = "medium"; break;
        case 32: info.type = "large"; break;
        default: info.type = "unknown";
    }
    return info;
}

Result<void> inspect_vad_model(const std::string& path) {
    In in(path);
    if (auto m = check_magic(in, path, "a Silero VAD model"); !m) return std::unexpected(m.error());
    int32_t name_len = 0;
    if (!in.read(name_len) || name_len < 1 || name_len > 63) {
        return std::unexpected(bad(path, "it is not a Silero VAD model (a Whisper model? set it as stt.model_path)"));
    }
    if (!in.skip(name_len)) return std::unexpected(bad(path, "the file is cut short"));
    int32_t v[5] = {};
    for (auto& x : v) {
        if (!in.read(x)) return std::unexpected(bad(path, "the file is cut short (header)"));
    }
    const int n_window = v[3];
    if (n_window < 64 || n_window > 16384 || v[4] < 0 || v[4] > 16384) return std::unexpected(bad(path, "its window sizes are not a VAD's"));
    int32_t n_layers = 0;
    if (!in.read(n_layers) || n_layers != 4) return std::unexpected(bad(path, "it does not have the 4 encoder layers of Silero VAD"));
    for (int i = 0; i < n_layers * 3; ++i) {
        int32_t x = 0;
        if (!in.read(x)) return std::unexpected(bad(path, "the file is cut short (encoder shape)"));
    }
    int32_t lstm[4] = {};
    for (auto& x : lstm) {
        if (!in.read(x)) return std::unexpected(bad(path, "the file is cut short (LSTM shape)"));
    }
    // The graph is built with Silero's fixed widths: 128-wide LSTM input and state.
    if (lstm[0] != 128 || lstm[1] != 128 || lstm[2] != 128 || lstm[3] != 1) return std::unexpected(bad(path, "its LSTM is not Silero's shape"));
    auto tensors = scan_tensors(in, path);
    if (!tensors) return std::unexpected(tensors.error());
    if (*tensors != 15) return std::unexpected(bad(path, "it holds " + std::to_string(*tensors) + " tensors, Silero VAD 15"));
    return {};
}

namespace {

class Out {
public:
    explicit Out(const std::string& path) : m_f(path, std::ios::binary | std::ios::trunc) {}
    bool ok() const { return static_cast<bool>(m_f); }
    template <class T>
    void put(T v) {
        m_f.write(reinterpret_cast<const char*>(&v), sizeof(T));
    }
    void bytes(const void* p, size_t n) { m_f.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); }
    // One tensor record; `values` in ggml order (ne0 fastest), stored as F32 or F16.
    void tensor(const std::string& name, std::vector<int32_t> ne, const std::vector<float>& values, bool f16) {
        put<int32_t>(static_cast<int32_t>(ne.size()));
        put<int32_t>(static_cast<int32_t>(name.size()));
        put<int32_t>(f16 ? GGML_TYPE_F16 : GGML_TYPE_F32);
        for (auto n : ne) put<int32_t>(n);
        bytes(name.data(), name.size());
        if (f16) {
            std::vector<ggml_fp16_t> h(values.size());
            ggml_fp32_to_fp16_row(values.data(), h.data(), static_cast<int64_t>(values.size()));
            bytes(h.data(), h.size() * sizeof(ggml_fp16_t));
        } else {
            bytes(values.data(), values.size() * sizeof(float));
        }
    }
    bool close() {
        m_f.close();
        return !m_f.fail();
    }

private:
    std::ofstream m_f;
};

size_t count(const std::vector<int32_t>& ne) {
    size_t n = 1;
    for (auto v : ne) n *= static_cast<size_t>(v);
    return n;
}

}  // namespace

Result<void> write_whisper_test_model(const WhisperTestModelOptions& o) {
    if (o.n_state < 8 || o.n_head < 1 || o.n_state % o.n_head || o.n_layer < 1 || o.n_layer > 64) {
        return fail(ErrorCode::InvalidInput, "impossible Whisper test model shape");
    }
    Out out(o.out);
    if (!out.ok()) return fail(ErrorCode::Io, "cannot write " + o.out);
    const int n_vocab = o.multilingual ? 51865 : 51864;
    const int n_audio_ctx = 1500, n_text_ctx = 448, n_mels = 80, n_state = o.n_state;
    out.put<uint32_t>(kGgmlMagic);
    for (int32_t v : {n_vocab, n_audio_ctx, n_state, o.n_head, o.n_layer, n_text_ctx, n_state, o.n_head, o.n_layer, n_mels, 1}) out.put(v);
    // Mel filters: triangles over the 201 FFT bins (shape only; the weights are random anyway).
    const int n_fft = 201;
    out.put<int32_t>(n_mels);
    out.put<int32_t>(n_fft);
    for (int m = 0; m < n_mels; ++m) {
        const double center = 1.0 + m * (n_fft - 2.0) / n_mels;
        for (int k = 0; k < n_fft; ++k) out.put(static_cast<float>(std::max(0.0, 1.0 - std::abs(k - center) / 2.5)));
    }
    // The text tokens (ids below the end-of-text token): pronounceable ASCII syllables, so random
    // output is readable text and valid UTF-8. The loader adds the special tokens after them.
    const int n_text_tokens = 50257;
    out.put<int32_t>(n_text_tokens);
    static const char* kCons[] = {"b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "sch", "ch", "st"};
    static const char* kVow[] = {"a", "e", "i", "o", "u", "ei", "au", "ie"};
    for (int i = 0; i < n_text_tokens; ++i) {
        // The first 95: every printable ASCII character, the space included (whisper.cpp looks up
        // " " to suppress blanks, and tokenizes a prompt down to single characters).
        if (i < 95) {
            out.put<uint32_t>(1);
            out.put(static_cast<char>(32 + i));
            continue;
        }
        std::string w = (i % 3 == 0) ? " " : "";
        w += kCons[i % 19];
        w += kVow[(i / 19) % 8];
        if ((i / 152) % 2) w += kCons[(i / 304) % 19];
        out.put<uint32_t>(static_cast<uint32_t>(w.size()));
        out.bytes(w.data(), w.size());
    }
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    auto random = [&](const std::vector<int32_t>& ne) {
        std::vector<float> v(count(ne));
        for (auto& x : v) x = normal(rng);
        return v;
    };
    auto filled = [&](const std::vector<int32_t>& ne, float value) { return std::vector<float>(count(ne), value); };
    auto weight = [&](const std::string& name, std::vector<int32_t> ne) { out.tensor(name, ne, random(ne), true); };
    auto f32 = [&](const std::string& name, std::vector<int32_t> ne, float value) { out.tensor(name, ne, filled(ne, value), false); };
    auto f32_random = [&](const std::string& name, std::vector<int32_t> ne) { out.tensor(name, ne, random(ne), false); };

    f32_random("encoder.positional_embedding", {n_state, n_audio_ctx});
    weight("encoder.conv1.weight", {3, n_mels, n_state});
    f32("encoder.conv1.bias", {1, n_state}, 0.0f);
    weight("encoder.conv2.weight", {3, n_state, n_state});
    f32("encoder.conv2.bias", {1, n_state}, 0.0f);
    f32("encoder.ln_post.weight", {n_state}, 1.0f);
    f32("encoder.ln_post.bias", {n_state}, 0.0f);
    auto block = [&](const std::string& p, bool cross) {
        f32(p + "mlp_ln.weight", {n_state}, 1.0f);
        f32(p + "mlp_ln.bias", {n_state}, 0.0f);
        weight(p + "mlp.0.weight", {n_state, 4 * n_state});
        f32(p + "mlp.0.bias", {4 * n_state}, 0.0f);
        weight(p + "mlp.2.weight", {4 * n_state, n_state});
        f32(p + "mlp.2.bias", {n_state}, 0.0f);
        for (std::string a : cross ? std::vector<std::string>{"attn", "cross_attn"} : std::vector<std::string>{"attn"}) {
            f32(p + a + "_ln.weight", {n_state}, 1.0f);
            f32(p + a + "_ln.bias", {n_state}, 0.0f);
            weight(p + a + ".query.weight", {n_state, n_state});
            f32(p + a + ".query.bias", {n_state}, 0.0f);
            weight(p + a + ".key.weight", {n_state, n_state});
            weight(p + a + ".value.weight", {n_state, n_state});
            f32(p + a + ".value.bias", {n_state}, 0.0f);
            weight(p + a + ".out.weight", {n_state, n_state});
            f32(p + a + ".out.bias", {n_state}, 0.0f);
        }
    };
    for (int i = 0; i < o.n_layer; ++i) block("encoder.blocks." + std::to_string(i) + ".", false);
    f32_random("decoder.positional_embedding", {n_state, n_text_ctx});
    weight("decoder.token_embedding.weight", {n_state, n_vocab});
    f32("decoder.ln.weight", {n_state}, 1.0f);
    f32("decoder.ln.bias", {n_state}, 0.0f);
    for (int i = 0; i < o.n_layer; ++i) block("decoder.blocks." + std::to_string(i) + ".", true);
    if (!out.close()) return fail(ErrorCode::Io, "cannot write " + o.out);
    return {};
}

// The VAD graph (whisper.cpp): a 512-sample window → STFT magnitudes (129 bins × 4 frames) → four
// ReLU convolutions (128, 64, 64, 128 channels) → the first frame → one LSTM step → ReLU → a 1×128
// convolution → sigmoid. Here: the STFT basis is a real Hann-windowed DFT; channel 0 of every
// convolution sums channel 0 (the first one: the bins' mean magnitude) over all its taps, so it
// ends as the window's spectral energy minus a threshold (ReLU keeps it at 0 in silence); the LSTM
// passes it through (input and output gates open, forget gate shut) with a gain, and the last
// layer maps "above the threshold" to a probability near 1, silence to one near 0.
Result<void> write_vad_test_model(const std::string& path) {
    Out out(path);
    if (!out.ok()) return fail(ErrorCode::Io, "cannot write " + path);
    out.put<uint32_t>(kGgmlMagic);
    const std::string name = "silero-16k";
    out.put<int32_t>(static_cast<int32_t>(name.size()));
    out.bytes(name.data(), name.size());
    for (int32_t v : {5, 1, 2}) out.put(v);  // Version 5.1.2, like ggml-silero-v5.1.2.bin.
    out.put<int32_t>(512);                   // n_window
    out.put<int32_t>(64);                    // n_context
    out.put<int32_t>(4);                     // Encoder layers: in, out, kernel.
    const int32_t enc[4][3] = {{129, 128, 3}, {128, 64, 3}, {64, 64, 3}, {64, 128, 3}};
    for (const auto& l : enc) {
        for (int32_t v : l) out.put(v);
    }
    for (int32_t v : {128, 128, 128, 1}) out.put(v);  // LSTM input, hidden; final conv in, out.

    constexpr double kPi = 3.14159265358979323846;
    std::vector<float> basis(256 * 258);
    for (int k = 0; k < 129; ++k) {
        for (int n = 0; n < 256; ++n) {
            const double w = 0.5 - 0.5 * std::cos(2 * kPi * n / 256);
            basis[static_cast<size_t>(k) * 256 + static_cast<size_t>(n)] = static_cast<float>(w * std::cos(2 * kPi * k * n / 256));
            basis[static_cast<size_t>(k + 129) * 256 + static_cast<size_t>(n)] = static_cast<float>(-w * std::sin(2 * kPi * k * n / 256));
        }
    }
    out.tensor("_model.stft.forward_basis_buffer", {256, 1, 258}, basis, true);
    const float kThreshold = 0.02f;  // Mean magnitude summed over the taps: digital silence is 0.
    for (int l = 0; l < 4; ++l) {
        const int in_ch = enc[l][0], out_ch = enc[l][1], k = enc[l][2];
        std::vector<float> w(static_cast<size_t>(k * in_ch * out_ch), 0.0f);
        // Output channel 0 (slowest index) from every input channel (layer 0: every bin, averaged)
        // or from channel 0 (later layers), every tap.
        for (int c = 0; c < (l == 0 ? in_ch : 1); ++c) {
            for (int t = 0; t < k; ++t) w[static_cast<size_t>(c * k + t)] = l == 0 ? 1.0f / static_cast<float>(in_ch) : 1.0f;
        }
        std::vector<float> b(static_cast<size_t>(out_ch), 0.0f);
        if (l == 3) b[0] = -kThreshold;
        out.tensor("_model.encoder." + std::to_string(l) + ".reparam_conv.weight", {k, in_ch, out_ch}, w, true);
        out.tensor("_model.encoder." + std::to_string(l) + ".reparam_conv.bias", {out_ch}, b, false);
    }
    // LSTM: gates i, f, g, o in rows of 128. Row r, column c at r * 128 + c.
    std::vector<float> ih(128 * 512, 0.0f), hh(128 * 512, 0.0f), bih(512, 0.0f), bhh(512, 0.0f);
    ih[256 * 128 + 0] = 100.0f;  // Cell input g = tanh(100 · energy above the threshold).
    for (int r = 0; r < 128; ++r) {
        bih[static_cast<size_t>(r)] = 10.0f;         // Input gate open.
        bih[static_cast<size_t>(128 + r)] = -10.0f;  // Forget gate shut: no memory between windows.
        bih[static_cast<size_t>(384 + r)] = 10.0f;   // Output gate open.
    }
    out.tensor("_model.decoder.rnn.weight_ih", {128, 512}, ih, false);
    out.tensor("_model.decoder.rnn.weight_hh", {128, 512}, hh, false);
    out.tensor("_model.decoder.rnn.bias_ih", {512}, bih, false);
    out.tensor("_model.decoder.rnn.bias_hh", {512}, bhh, false);
    std::vector<float> fw(128, 0.0f);
    fw[0] = 15.0f;
    out.tensor("_model.decoder.decoder.2.weight", {128, 1}, fw, true);
    out.tensor("_model.decoder.decoder.2.bias", {1}, {-5.0f}, false);
    if (!out.close()) return fail(ErrorCode::Io, "cannot write " + path);
    return {};
}

}  // namespace mc::stt
