// llm/engine_manager: the active text engine, built from the llm.* settings and rebuilt when they
// change. Callers take a shared_ptr per use, so an engine replaced while a turn or a prompt preview
// uses it stays alive (model and vocabulary included) until that caller lets go.
// Only the settings that shape the engine (backend, model, URL, key, mode, context, threads, KV
// budget, GPU layers, RPC servers) rebuild it; samplers and limits apply per turn.
// Thread safety: all members may be called from any thread. m_configure_mu serializes whole
// reconfigurations; m_mu guards m_engine, m_missing, m_key, m_swapping and is never held while an
// engine starts or stops.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/settings.hpp"
#include "llm/engine.hpp"

namespace mc::llm {

class EngineManager {
public:
    explicit EngineManager(std::string data_dir) : m_data_dir(std::move(data_dir)) {}
    ~EngineManager() { shutdown(); }

    // The active engine, or null when none is configured.
    std::shared_ptr<Engine> get();
    EngineStatus status();
    // (Re)builds the engine when the settings it depends on changed. The old engine is stopped
    // outside the lock: its running request is cancelled and queued ones fail at once, so health
    // checks and new turns never wait for it.
    void configure(const Settings& s);
    void shutdown();

private:
    std::string m_data_dir;
    std::mutex m_configure_mu;
    std::mutex m_mu;
    std::shared_ptr<Engine> m_engine;
    EngineStatus m_missing;
    Json m_key;
    bool m_swapping = false;  // Between stopping the old engine and installing the new one.
};

}  // namespace mc::llm
