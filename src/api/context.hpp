// api/context: what the route handlers reach — the stores, settings and paths the app built.
// Thread safety: every member is itself safe to use from handler threads.
#pragma once

#include <string>

#include "chat/chat_service.hpp"
#include "chat/memory.hpp"
#include "jobs/job_runner.hpp"
#include "core/settings.hpp"
#include "llm/engine.hpp"
#include "store/blob_store.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/db.hpp"
#include "store/lorebook_store.hpp"
#include "store/memory_store.hpp"
#include "image/image_service.hpp"
#include "call/call.hpp"
#include "voice/rvc.hpp"
#include "voice/tts_service.hpp"
#include "stt/stt_service.hpp"

namespace mc::http {
class Server;
}

namespace mc::api {

struct Context {
    std::string version;
    std::string data_dir;
    SettingsStore& settings;
    store::Db& db;
    store::CharacterStore& characters;
    store::ChatStore& chats;
    store::BlobStore& blobs;
    chat::ChatService& chat;
    store::MemoryStore& memory;
    jobs::JobRunner& jobs;
    // The active text engine (null when none is configured) and its state for /api/health.
    std::function<std::shared_ptr<llm::Engine>()> engine;
    std::function<llm::EngineStatus()> engine_status;
    // Called after settings changed through the API (the app rebuilds the engine when needed).
    std::function<void()> settings_changed;
    // True once shutdown began: streams end.
    std::function<bool()> stopping;
    // Speech out (set by the app; null in tools that build routes without it).
    voice::TtsService* tts = nullptr;
    // Pictures (set by the app; null in tools that build routes without it).
    image::ImageService* images = nullptr;
    // Speech in (set by the app; null in tools that build routes without it).
    stt::SttService* stt = nullptr;
    // Lorebooks (set by the app; null in tools that build routes without it).
    store::LorebookStore* lorebooks = nullptr;
    // RVC voice training (set by the app; null in tools that build routes without it).
    voice::VoiceTrainer* trainer = nullptr;
    // Voice calls (set by the app after the context is built; null in tools without them).
    call::CallService* calls = nullptr;
    // /api/health's "server": scheme, the certificate's fingerprint in https mode, and the
    // addresses other devices can open (set by the app).
    Json server_info = Json::object();
};

// Registers every /api route on `server`.
void register_routes(http::Server& server, Context& ctx);

}  // namespace mc::api
