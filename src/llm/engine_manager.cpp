#include "llm/engine_manager.hpp"

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "llm/cluster_engine.hpp"
#include "llm/llama_engine.hpp"
#include "llm/openai_engine.hpp"

namespace mc::llm {

namespace fs = std::filesystem;

std::shared_ptr<Engine> EngineManager::get() {
    std::lock_guard lock(m_mu);
    return m_engine;
}

EngineStatus EngineManager::status() {
    std::shared_ptr<Engine> e;
    {
        std::lock_guard lock(m_mu);
        if (m_swapping) return {"loading", "switching to the new llm settings", m_missing.model, m_missing.backend, {}, {}, false};
        if (!m_engine) return m_missing;
        e = m_engine;
    }
    return e->status();
}

namespace {

// The settings an engine is built from; changing any other llm.* key (samplers, limits) must not
// reload the model.
Json engine_key(const Settings& s) {
    Json key = Json::object();
    const Json& llm = s.json().at("llm");
    for (const char* k : {"backend", "model_path", "llama_cpp_url", "api_key", "remote_mode", "remote_model", "context_size", "threads",
                          "kv_cache_disk_mb", "kv_cache_type", "gpu_layers", "rpc_servers", "llama_server_path", "draft_model_path",
                          "draft_max", "draft_min", "draft_p_min", "draft_adaptive", "parallel", "huge_pages"}) {
        key[k] = llm.at(k);
    }
    return key;
}

// llama-server for the RPC engine: the setting, else the one installed or built beside mycandy.
std::string find_llama_server(const Settings& s) {
    if (!s.str("llm.llama_server_path").empty()) return s.str("llm.llama_server_path");
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    std::vector<fs::path> candidates;
    if (!ec) {
        candidates.push_back(exe.parent_path() / "llama-server");
        candidates.push_back(exe.parent_path() / "bin" / "llama-server");  // The build folder's layout.
        candidates.push_back(exe.parent_path().parent_path() / "lib" / "mycandy" / "llama-server");  // Installed.
    }
#ifdef MYCANDY_LLAMA_SERVER_BUILT
    candidates.emplace_back(MYCANDY_LLAMA_SERVER_BUILT);
#endif
    for (const auto& c : candidates) {
        if (fs::is_regular_file(c, ec)) return c.string();
    }
    return candidates.empty() ? std::string("llama-server") : candidates.front().string();
}

}  // namespace

void EngineManager::configure(const Settings& s) {
    std::lock_guard serial(m_configure_mu);
    const Json key = engine_key(s);
    std::shared_ptr<Engine> old;
    {
        std::lock_guard lock(m_mu);
        if (key == m_key) return;
        m_key = key;
        old = std::move(m_engine);
        m_swapping = true;
    }
    // The old engine stops first (its running request is cancelled, queued ones fail at once), and
    // its model is freed before the new one loads: an 8B model twice may not fit. Callers still
    // holding it (a prompt preview) let go within moments; the wait for them is bounded.
    if (old) {
        old->shutdown();
        std::weak_ptr<Engine> gone = old;
        old.reset();
        for (int i = 0; i < 500 && !gone.expired(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::shared_ptr<Engine> created;
    EngineStatus missing;
    if (s.str("llm.backend") == "remote") {
        OpenAiEngineOptions o;
        o.base_url = s.str("llm.llama_cpp_url");
        o.api_key = s.str("llm.api_key");
        o.mode = s.str("llm.remote_mode");
        o.model = s.str("llm.remote_model");
        o.context_size = static_cast<int>(s.integer("llm.context_size"));
        created = std::make_shared<OpenAiEngine>(o);
        log::info("text engine: remote ", o.base_url, " (", o.mode, " mode)");
    } else {
        std::string path = s.str("llm.model_path");
        if (!path.empty() && path[0] != '/') path = m_data_dir + "/" + path;
        missing = {"not_configured",
                   "no model file at " + path + "; put a GGUF model there or set llm.model_path in the settings",
                   fs::path(path).filename().string(), "embedded", {}, {}, false};
        std::error_code ec;
        auto rpc = parse_rpc_servers(s.str("llm.rpc_servers"));  // Checked when the settings were read.
        if (!fs::is_regular_file(path, ec)) {
            log::warn(missing.detail);
        } else if (rpc && !rpc->empty()) {
            ClusterEngineOptions o;
            o.llama_server = find_llama_server(s);
            o.model_path = path;
            o.rpc_servers = *rpc;
            o.context_size = static_cast<int>(s.integer("llm.context_size"));
            o.threads = static_cast<int>(s.integer("llm.threads"));
            o.gpu_layers = static_cast<int>(s.integer("llm.gpu_layers"));
            o.kv_type = s.str("llm.kv_cache_type");
            o.key_file = m_data_dir + "/cache/rpc-engine.key";
            created = std::make_shared<ClusterEngine>(o);
            log::info("text engine: llama.cpp over RPC servers ", s.str("llm.rpc_servers"), ", loading ", path);
        } else {
            LlamaEngineOptions o;
            o.model_path = path;
            o.context_size = static_cast<int>(s.integer("llm.context_size"));
            o.threads = static_cast<int>(s.integer("llm.threads"));
            o.cache_dir = m_data_dir + "/cache/kv";
            o.disk_cache_bytes = static_cast<uint64_t>(s.integer("llm.kv_cache_disk_mb")) << 20;
            o.kv_type = s.str("llm.kv_cache_type");
            o.gpu_layers = static_cast<int>(s.integer("llm.gpu_layers"));
            o.draft_model_path = s.str("llm.draft_model_path");
            if (!o.draft_model_path.empty() && o.draft_model_path[0] != '/') o.draft_model_path = m_data_dir + "/" + o.draft_model_path;
            o.draft_max = static_cast<int>(s.integer("llm.draft_max"));
            o.draft_min = static_cast<int>(s.integer("llm.draft_min"));
            o.draft_p_min = s.number("llm.draft_p_min");
            o.draft_adaptive = s.boolean("llm.draft_adaptive");
            o.parallel = static_cast<int>(s.integer("llm.parallel"));
            o.huge_pages = s.boolean("llm.huge_pages");
            created = std::make_shared<LlamaEngine>(o);
            log::info("text engine: embedded llama.cpp, loading ", path);
        }
    }
    std::lock_guard lock(m_mu);
    m_engine = std::move(created);
    m_missing = missing;
    m_swapping = false;
}

void EngineManager::shutdown() {
    std::shared_ptr<Engine> e = get();
    if (e) e->shutdown();
}

}  // namespace mc::llm
