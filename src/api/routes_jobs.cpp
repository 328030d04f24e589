// api/routes_jobs: background jobs (summaries, downloads, ...) — status, cancel, and progress as SSE.
#include <chrono>
#include <thread>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

bool ended(const std::string& status) { return status == "done" || status == "failed" || status == "cancelled"; }

}  // namespace

void register_job_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/api/jobs/{id}", [&ctx](const Request& req) {
        auto j = ctx.jobs.get(req.param("id"));
        if (!j) return error_response(j.error());
        return json_response(200, job_to_json(*j));
    });
    server.route(Method::Post, "/api/jobs/{id}/cancel", [&ctx](const Request& req) {
        // Pictures run on the image service's own runner, which must hear of the cancel.
        auto found = ctx.jobs.get(req.param("id"));
        if (!found) return error_response(found.error());
        // So do voice trainings (their process group is killed).
        auto j = found->kind == "image" && ctx.images                ? ctx.images->cancel(req.param("id"))
                 : found->kind == "voice_training" && ctx.trainer ? ctx.trainer->cancel(req.param("id"))
                                                                  : ctx.jobs.cancel(req.param("id"));
        if (!j) return error_response(j.error());
        return json_response(200, job_to_json(*j));
    });
    // Progress as SSE: an event each time the job changes, until it has ended. A comment line every
    // few seconds finds out whether the client is still there, so a stream whose client left
    // releases its thread within seconds, not when the job ends.
    server.route(Method::Get, "/api/jobs/{id}/events", [&ctx](const Request& req) {
        auto j = ctx.jobs.get(req.param("id"));
        if (!j) return error_response(j.error());
        Response r;
        r.content_type = "text/event-stream";
        r.headers = {{"Cache-Control", "no-cache"}};
        const std::string id = req.param("id");
        r.stream = [&ctx, id](http::StreamSink& sink) {
            using Clock = std::chrono::steady_clock;
            int64_t seen = -1;
            std::string last_status;
            auto last_write = Clock::now();
            while (!(ctx.stopping && ctx.stopping())) {
                auto job = ctx.jobs.get(id);
                if (!job) return;
                if (job->updated_at != seen || job->status != last_status) {
                    seen = job->updated_at;
                    last_status = job->status;
                    const std::string data = job_to_json(*job).dump(-1, ' ', false, Json::error_handler_t::replace);
                    if (!sink.write(http::sse_event("job", data))) return;
                    last_write = Clock::now();
                }
                if (ended(job->status)) return;
                if (Clock::now() - last_write > std::chrono::seconds(2)) {
                    if (!sink.write(": keep-alive\n\n")) return;
                    last_write = Clock::now();
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        };
        return r;
    });
}

}  // namespace mc::api
