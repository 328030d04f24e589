#include "llm/engine_manager.hpp"

#include <filesystem>

#include "core/log.hpp"
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
        if (!m_engine) return m_missing;
        e = m_engine;
    }
    return e->status();
}

void EngineManager::configure(const Settings& s) {
    Json key = s.json()["llm"];
    std::shared_ptr<Engine> old;
    std::shared_ptr<Engine> created;
    EngineStatus missing;
    {
        std::lock_guard lock(m_mu);
        if (key == m_key) return;
        m_key = key;
        old = std::move(m_engine);
    }
    const std::string backend = s.str("llm.backend");
    if (backend == "remote") {
        OpenAiEngineOptions o;
        o.base_url = s.str("llm.llama_cpp_url");
        o.api_key = s.str("llm.api_key");
        o.mode = s.str("llm.remote_mode");
        o.context_size = static_cast<int>(s.integer("llm.context_size"));
        created = std::make_shared<OpenAiEngine>(o);
        log::info("text engine: remote ", o.base_url, " (", o.mode, " mode)");
    } else {
        std::string path = s.str("llm.model_path");
        if (!path.empty() && path[0] != '/') path = m_data_dir + "/" + path;
        missing = {"not_configured",
                   "no model file at " + path + "; put a GGUF model there or set llm.model_path in the settings",
                   fs::path(path).filename().string(), "embedded"};
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) {
            log::warn(missing.detail);
        } else {
            LlamaEngineOptions o;
            o.model_path = path;
            o.context_size = static_cast<int>(s.integer("llm.context_size"));
            o.threads = static_cast<int>(s.integer("llm.threads"));
            o.cache_dir = m_data_dir + "/cache/kv";
            o.disk_cache_bytes = static_cast<uint64_t>(s.integer("llm.kv_cache_disk_mb")) << 20;
            // The old model's memory goes before the new one loads (an 8B model twice may not fit).
            if (old) old->shutdown();
            created = std::make_shared<LlamaEngine>(o);
            log::info("text engine: embedded llama.cpp, loading ", path);
        }
    }
    {
        std::lock_guard lock(m_mu);
        // A later configure() may have run meanwhile; the newest settings win.
        if (key == m_key) {
            m_engine = created;
            m_missing = missing;
            created.reset();
        }
    }
    if (created) created->shutdown();
    if (old) old->shutdown();
}

void EngineManager::shutdown() {
    std::shared_ptr<Engine> e = get();
    if (e) e->shutdown();
}

}  // namespace mc::llm
