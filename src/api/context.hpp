// api/context: what the route handlers reach — the stores, settings and paths the app built.
// Thread safety: every member is itself safe to use from handler threads.
#pragma once

#include <string>

#include "core/settings.hpp"
#include "store/blob_store.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/db.hpp"

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
};

// Registers every /api route on `server`.
void register_routes(http::Server& server, Context& ctx);

}  // namespace mc::api
