#include "llm/weight_memory.hpp"

#include "core/log.hpp"
#include "ggml-backend-impl.h"  // To define a buffer type (llama.cpp's pinned release; see cmake/llama.cmake).
#include "ggml.h"
#include "gguf.h"

#include <sys/mman.h>

#include <algorithm>
#include <map>
#include <set>

namespace mc::llm::weight_memory {
namespace {

constexpr uintptr_t kHuge = uintptr_t(2) << 20;
constexpr size_t kAlignment = 32;  // ggml's TENSOR_ALIGNMENT, as the CPU buffer type.

// Whether an extra buffer type of the CPU backend takes `t` for a matrix multiplication, asked as
// llama.cpp's loader asks (weight_buft_supported): the op with the weight in a dummy buffer of it.
bool taken_by_extra(const TensorInfo& t, ggml_backend_dev_t dev, const std::vector<ggml_backend_buffer_type_t>& extras) {
    if (t.ne[1] <= 1) return false;  // Norms and biases: no matrix multiplication.
    ggml_init_params p = {ggml_tensor_overhead() * 8, nullptr, true};
    ggml_context* ctx = ggml_init(p);
    if (!ctx) return false;
    ggml_tensor* w = ggml_new_tensor(ctx, t.type, 4, t.ne.data());
    std::vector<ggml_tensor*> ops;
    ops.push_back(ggml_mul_mat(ctx, w, ggml_new_tensor_4d(ctx, GGML_TYPE_F32, t.ne[0], 512, t.ne[2], t.ne[3])));
    if (t.ne[2] > 1 && t.ne[3] == 1) {  // Experts: llama.cpp asks for their own op.
        ggml_tensor* b = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, t.ne[0], 1, 512);
        ggml_tensor* ids = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, 1, 512);
        ops.push_back(ggml_mul_mat_id(ctx, w, b, ids));
    }
    bool taken = false;
    for (ggml_backend_buffer_type_t buft : extras) {
        w->buffer = ggml_backend_buft_alloc_buffer(buft, 0);
        for (ggml_tensor* op : ops) taken = taken || ggml_backend_dev_supports_op(dev, op);
        ggml_backend_buffer_free(w->buffer);
        w->buffer = nullptr;
        if (taken) break;
    }
    ggml_free(ctx);
    return taken;
}

std::string escaped(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) out += '\\';
        out += c;
    }
    return out;
}

// "blk.12.ffn_down.weight" -> {12, "ffn_down.weight"}; {-1, ""} for other names.
std::pair<long, std::string> layer_of(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return {-1, ""};
    size_t i = 4;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
    if (i == 4 || i - 4 > 6 || i >= name.size() || name[i] != '.') return {-1, ""};
    return {std::stol(name.substr(4, i - 4)), name.substr(i + 1)};
}

const char* buft_name(ggml_backend_buffer_type_t) { return "MYCANDY_WEIGHTS"; }
size_t buft_alignment(ggml_backend_buffer_type_t) { return kAlignment; }
bool buft_is_host(ggml_backend_buffer_type_t) { return true; }

}  // namespace

std::vector<std::string> plain_cpu_tensors(const std::vector<TensorInfo>& tensors) {
    std::vector<std::string> out;
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!dev) return out;
    std::vector<ggml_backend_buffer_type_t> extras;
    auto get_extras = reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(
        ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts"));
    if (get_extras) {
        for (ggml_backend_buffer_type_t* b = get_extras(dev); b && *b; ++b) extras.push_back(*b);
    }
    for (const auto& t : tensors) {
        if (!taken_by_extra(t, dev, extras)) out.push_back(t.name);
    }
    return out;
}

std::vector<std::string> name_patterns(const std::vector<std::string>& names, const std::vector<std::string>& all) {
    std::map<std::string, std::set<long>> chosen, present;  // Layer tensor family -> its layers.
    for (const auto& n : all) {
        if (auto [layer, rest] = layer_of(n); layer >= 0) present[rest].insert(layer);
    }
    std::vector<std::string> out;
    for (const auto& n : names) {
        if (auto [layer, rest] = layer_of(n); layer >= 0) {
            chosen[rest].insert(layer);
        } else {
            std::string p = "^";
            p += escaped(n);
            p += '$';
            out.push_back(std::move(p));
        }
    }
    for (const auto& [rest, layers] : chosen) {
        std::string which;
        if (layers == present[rest]) {
            which = "[0-9]+";
        } else {
            for (long l : layers) which += (which.empty() ? "(?:" : "|") + std::to_string(l);
            which += ")";
        }
        out.push_back("^blk\\." + which + "\\." + escaped(rest) + "$");
    }
    return out;
}

WeightMemory::WeightMemory(const std::string& gguf_path, int threads) : m_threads(std::max(threads, 1)) {
    ggml_context* meta = nullptr;
    gguf_init_params gp = {true, &meta};
    gguf_context* g = gguf_init_from_file(gguf_path.c_str(), gp);
    if (!g) return;  // llama.cpp's load then says what is wrong with the file.
    std::vector<TensorInfo> tensors;
    std::vector<std::string> all;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
        const char* name = gguf_get_tensor_name(g, i);
        const ggml_tensor* t = meta ? ggml_get_tensor(meta, name) : nullptr;
        if (!t) continue;
        tensors.push_back({name, t->type, {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}});
        all.push_back(name);
    }
    m_phase = (gguf_get_data_offset(g) % 4096) / kAlignment * kAlignment;
    gguf_free(g);
    if (meta) ggml_free(meta);
    const std::vector<std::string> plain = plain_cpu_tensors(tensors);
    m_names = plain.size();
    if (plain.empty()) return;
    m_patterns = name_patterns(plain, all);
    auto* buft = new ggml_backend_buffer_type{
        {buft_name, &WeightMemory::alloc, buft_alignment, nullptr, nullptr, buft_is_host},
        ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU),
        this};
    m_buft = buft;
    for (const auto& p : m_patterns) m_overrides.push_back({p.c_str(), buft});
    m_overrides.push_back({nullptr, nullptr});
}

WeightMemory::~WeightMemory() {
    for (const auto& m : m_mappings) munmap(m.base, m.length);
    delete static_cast<ggml_backend_buffer_type*>(m_buft);
}

const llama_model_tensor_buft_override* WeightMemory::overrides() const {
    return m_overrides.empty() ? nullptr : m_overrides.data();
}

ggml_backend_buffer_t WeightMemory::alloc(ggml_backend_buffer_type_t buft, size_t size) {
    auto* self = static_cast<WeightMemory*>(buft->context);
    // A 2 MiB-aligned run of whole huge pages; the buffer starts `phase` bytes into it.
    const size_t span = (self->m_phase + size + kHuge - 1) & ~(kHuge - 1);
    const size_t length = span + kHuge;
    void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        log::error("cannot map ", size >> 20, " MiB for the model's weights");
        return nullptr;
    }
    self->m_mappings.push_back({base, length});
    const uintptr_t start = (reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1);
    const std::vector<huge_pages::Range> run = {{start, start + span}};
    huge_pages::advise(run);
    huge_pages::populate(run, self->m_threads);
    void* data = reinterpret_cast<void*>(start + self->m_phase);
    self->m_buffers.push_back({start + self->m_phase, start + self->m_phase + size});
    log::debug("weights: ", size >> 20, " MiB of our own at ", data, " (", self->m_phase, " bytes into a page, as in the file)");
    return ggml_backend_cpu_buffer_from_ptr(data, size);
}

}  // namespace mc::llm::weight_memory
