// api/routes: one registration function per group of routes; context.hpp's register_routes calls all.
#pragma once

#include <memory>
#include <string>

#include "core/result.hpp"

namespace mc::chat {
class Turn;
}

namespace mc::http {
class Server;
}

namespace mc::jobs {
class JobRunner;
}

namespace mc::api {

struct Context;

void register_service_routes(http::Server& server, Context& ctx);
void register_character_routes(http::Server& server, Context& ctx);
void register_chat_routes(http::Server& server, Context& ctx);
void register_openai_routes(http::Server& server, Context& ctx);
void register_memory_routes(http::Server& server, Context& ctx);
void register_job_routes(http::Server& server, Context& ctx);
void register_model_routes(http::Server& server, Context& ctx);
void register_voice_routes(http::Server& server, Context& ctx);
void register_image_routes(http::Server& server, Context& ctx);
void register_stt_routes(http::Server& server, Context& ctx);
void register_lorebook_routes(http::Server& server, Context& ctx);
void register_call_routes(http::Server& server, Context& ctx);
// Sends `text` as the person's message in a chat and starts the reply, spoken, with the samplers a
// typed message would get (a voice call's turns). Errors as ChatService::start.
Result<std::shared_ptr<chat::Turn>> start_spoken_turn(Context& ctx, const std::string& chat_id, const std::string& text);
// The `model_download` job (before the runner starts): downloads land in <data_dir>/models/llm/.
void register_model_jobs(jobs::JobRunner& runner, const std::string& data_dir);

}  // namespace mc::api
