// api/routes: one registration function per group of routes; context.hpp's register_routes calls all.
#pragma once

#include <string>

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
// The `model_download` job (before the runner starts): downloads land in <data_dir>/models/llm/.
void register_model_jobs(jobs::JobRunner& runner, const std::string& data_dir);

}  // namespace mc::api
