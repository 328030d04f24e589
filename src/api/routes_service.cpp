// api/routes_service: /api/health and /api/settings.
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "llm/llama_engine.hpp"  // runtime_info() only.
#include "store/db.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;

Json component(const char* state, const std::string& detail) { return Json{{"state", state}, {"detail", detail}}; }

Json db_component(Context& ctx) {
    try {
        auto guard = ctx.db.lock();
        store::Stmt s(ctx.db, "SELECT count(*) FROM characters");
        s.step();
        return component("ready", "SQLite at " + ctx.db.path() + ", schema version " +
                                      std::to_string(store::schema_version()));
    } catch (const std::exception& e) {
        return component("error", std::string("database error: ") + e.what());
    }
}

Json llm_component(Context& ctx) {
    const auto& rt = llm::runtime_info();
    const llm::EngineStatus st = ctx.engine_status();
    Json c = component(st.state.c_str(), st.detail);
    c["model"] = st.model.empty() ? Json(nullptr) : Json(st.model);
    c["backend"] = st.backend;
    // Speculative decoding: the draft model, and whether it is used (detail says why not).
    c["draft"] = st.draft.empty() ? Json(nullptr)
                                  : Json{{"model", st.draft}, {"state", st.draft_detail.empty() ? "ready" : st.draft_paused ? "paused" : "error"},
                                         {"detail", st.draft_detail}};
    // Replies being generated now (together, in one batch), requests waiting, and how many may
    // decode together (llm.parallel): the embedded engine says; others do not.
    if (st.decoding >= 0) c["streams"] = {{"decoding", st.decoding}, {"queued", st.queued}, {"parallel", st.parallel}};
    // The weights in 2 MiB pages (llm.huge_pages), and what the kernel allows.
    if (st.weights_huge_page_bytes >= 0) {
        c["huge_pages"] = {{"weights_mb", st.weights_huge_page_bytes >> 20},
                           {"kernel", st.huge_pages_kernel.empty() ? Json(nullptr) : Json(st.huge_pages_kernel)}};
    }
    Json devices = Json::array();
    for (const auto& d : rt.devices) {
        devices.push_back({{"name", d.name}, {"description", d.description}, {"type", d.type},
                           {"memory_total", d.memory_total}, {"memory_free", d.memory_free}});
    }
    c["llama_cpp"] = {{"release", rt.release}, {"device", rt.backend}, {"device_detail", rt.backend_detail},
                      {"system_info", rt.system_info}, {"devices", devices}, {"gpu_backends", rt.gpu_backends},
                      {"gpu_build", rt.gpu_build.empty() ? Json(nullptr) : Json(rt.gpu_build)}};
    const auto settings = ctx.settings.current();
    c["gpu_layers"] = settings->integer("llm.gpu_layers");
    if (st.backend == "rpc") c["rpc_servers"] = settings->str("llm.rpc_servers");
    return c;
}

}  // namespace

void register_service_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/api/health", [&ctx](const Request&) {
        Json components = {
            {"db", db_component(ctx)},
            {"llm", llm_component(ctx)},
            {"tts", ctx.tts ? ctx.tts->health() : component("not_configured", "text-to-speech is not available")},
            {"stt", ctx.stt ? ctx.stt->health() : component("not_configured", "speech-to-text is not available")},
            {"image", ctx.images ? ctx.images->health() : component("not_configured", "pictures are not available")},
        };
        const bool db_ok = components["db"]["state"].get<std::string>() == "ready";
        return json_response(200, {{"status", db_ok ? "ok" : "degraded"}, {"version", ctx.version},
                                   {"server", ctx.server_info}, {"components", components}});
    });

    server.route(Method::Get, "/api/settings",
                 [&ctx](const Request&) { return json_response(200, ctx.settings.current()->redacted()); });

    server.route(Method::Patch, "/api/settings", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        auto updated = ctx.settings.patch(*body);
        if (!updated) return error_response(updated.error());
        if (ctx.settings_changed) ctx.settings_changed();
        return json_response(200, (*updated)->redacted());
    });
}

void register_routes(http::Server& server, Context& ctx) {
    register_service_routes(server, ctx);
    register_character_routes(server, ctx);
    register_lorebook_routes(server, ctx);
    register_chat_routes(server, ctx);
    register_openai_routes(server, ctx);
    register_memory_routes(server, ctx);
    register_job_routes(server, ctx);
    register_model_routes(server, ctx);
    register_voice_routes(server, ctx);
    register_image_routes(server, ctx);
    register_stt_routes(server, ctx);
    register_call_routes(server, ctx);
}

}  // namespace mc::api
