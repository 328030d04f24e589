#include "llm/llama_engine.hpp"

#include <llama.h>
#include <ggml-backend.h>

#include <mutex>

#include "core/log.hpp"

#ifndef MYCANDY_LLAMA_RELEASE
#define MYCANDY_LLAMA_RELEASE "unknown"
#endif

namespace mc::llm {
namespace {

void forward_log(ggml_log_level level, const char* text, void*) {
    std::string_view t(text ? text : "");
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.remove_suffix(1);
    if (t.empty()) return;
    // llama.cpp is chatty at info level; keep its info lines at our debug level.
    if (level == GGML_LOG_LEVEL_ERROR) log::error("llama.cpp: ", t);
    else if (level == GGML_LOG_LEVEL_WARN) log::warn("llama.cpp: ", t);
    else log::debug("llama.cpp: ", t);
}

}  // namespace

const RuntimeInfo& runtime_info() {
    static std::once_flag once;
    static RuntimeInfo info;
    std::call_once(once, [] {
        llama_log_set(forward_log, nullptr);
        llama_backend_init();
        info.release = MYCANDY_LLAMA_RELEASE;
        info.system_info = llama_print_system_info();
        // The first device llama.cpp would offload to; on this build that is the CPU backend.
        for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
            ggml_backend_dev_t dev = ggml_backend_dev_get(i);
            if (i == 0 || ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) {
                info.backend = ggml_backend_dev_name(dev);
                info.backend_detail = ggml_backend_dev_description(dev);
            }
        }
        while (!info.system_info.empty() && (info.system_info.back() == ' ' || info.system_info.back() == '|')) {
            info.system_info.pop_back();
        }
    });
    return info;
}

void shutdown() { llama_backend_free(); }

}  // namespace mc::llm
