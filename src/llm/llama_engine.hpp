// llm/llama_engine: the in-process llama.cpp engine. The only file that includes llama.h.
// For now it owns the process-wide llama.cpp backend and reports what it runs on; model loading
// and generation arrive with the chat issue.
// Thread safety: runtime_info() is safe from any thread (the backend is initialized once).
#pragma once

#include <string>

namespace mc::llm {

struct RuntimeInfo {
    std::string release;       // llama.cpp release we built, e.g. "v0.4.0".
    std::string backend;       // The ggml device llama.cpp chose, e.g. "CPU".
    std::string backend_detail;  // Its description (the CPU model).
    std::string system_info;   // llama_print_system_info(): the CPU features compiled in.
};

// Initializes llama.cpp's backend on first call and routes its log to ours.
const RuntimeInfo& runtime_info();
// Releases the backend at shutdown.
void shutdown();

}  // namespace mc::llm
