// api/routes_images: pictures on request, retry and removal, and the ComfyUI workflow templates.
// The pictures themselves are served by GET /api/media/images/{file} (routes_voice).
#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;

constexpr size_t kMaxWorkflowBody = 1u << 20;

Result<image::ImageService*> service(Context& ctx) {
    if (!ctx.images) return fail(ErrorCode::Unavailable, "pictures are not available in this server");
    return ctx.images;
}

}  // namespace

void register_image_routes(http::Server& server, Context& ctx) {
    // "Send me a picture": {"character_id","prompt","chat_id"?}. With a chat, the picture arrives
    // as the character's message there.
    server.route(Method::Post, "/api/images", [&ctx](const Request& req) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"character_id", "prompt", "chat_id"});
        const std::string character_id = f.string("character_id", 64);
        const std::string prompt = f.string("prompt", 100000);
        const auto chat_id = f.opt_string("chat_id", 64);
        if (auto e = f.error()) return error_response(*e);
        auto job = (*svc)->request(character_id, prompt, chat_id);
        if (!job) return error_response(job.error());
        return json_response(202, {{"job", job_to_json(*job)}});
    });
    server.route(Method::Post, "/api/images/{job}/retry", [&ctx](const Request& req) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        auto job = (*svc)->retry(req.param("job"));
        if (!job) return error_response(job.error());
        return json_response(202, {{"job", job_to_json(*job)}});
    });
    server.route(Method::Delete, "/api/images/{job}", [&ctx](const Request& req) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        if (auto done = (*svc)->remove(req.param("job")); !done) return error_response(done.error());
        return json_response(200, {{"deleted", req.param("job")}});
    });

    server.route(Method::Get, "/api/images/workflows", [&ctx](const Request&) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        return json_response(200, {{"workflows", (*svc)->workflow_names()},
                                   {"active", ctx.settings.current()->str("media.image_workflow")}});
    });
    server.route(Method::Get, "/api/images/workflows/{name}", [&ctx](const Request& req) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        auto graph = (*svc)->workflow(req.param("name"));
        if (!graph) return error_response(graph.error());
        return json_response(200, {{"name", req.param("name")}, {"workflow", *graph}});
    });
    // A workflow exported from ComfyUI with "Save (API format)", checked before it is kept.
    server.route(Method::Put, "/api/images/workflows/{name}", [&ctx](const Request& req) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        if (req.body.size() > kMaxWorkflowBody) return error_response({ErrorCode::TooLarge, "a workflow may be at most 1 MB", "workflow"});
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        if (auto saved = (*svc)->save_workflow(req.param("name"), *body); !saved) return error_response(saved.error());
        return json_response(200, {{"name", req.param("name")}, {"workflows", (*svc)->workflow_names()}});
    });
    server.route(Method::Delete, "/api/images/workflows/{name}", [&ctx](const Request& req) {
        auto svc = service(ctx);
        if (!svc) return error_response(svc.error());
        if (auto done = (*svc)->delete_workflow(req.param("name")); !done) return error_response(done.error());
        return json_response(200, {{"workflows", (*svc)->workflow_names()}});
    });
}

}  // namespace mc::api
