// api/routes_models: the models under data/models (GGUF for text, whisper.cpp .bin for speech in) —
// list, load (switch the embedded engine to
// one), and download from a URL as a background job with progress and resume.
#include <cctype>
#include <filesystem>
#include <memory>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "llm/model_files.hpp"
#include "llm/openai_engine.hpp"
#include "stt/whisper_files.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;

// The listing name of the model the settings point at (`key`), if it lies in the models folder.
std::string loaded_name(Context& ctx, const char* key = "llm.model_path") {
    std::string path = ctx.settings.current()->str(key);
    if (!path.empty() && path[0] != '/') path = ctx.data_dir + "/" + path;
    std::error_code ec;
    const auto rel = std::filesystem::relative(path, ctx.data_dir + "/models", ec);
    return ec || rel.empty() || rel.string().starts_with("..") ? "" : rel.generic_string();
}

}  // namespace

void register_model_jobs(jobs::JobRunner& runner, const std::string& data_dir) {
    // Names are made safe by llm::download_name; the URL was checked when the job was submitted.
    runner.handle("model_download", [data_dir](const Job& job, jobs::JobContext& jc) {
        llm::DownloadRequest d;
        d.url = job.payload.value("url", "");
        d.sha256 = job.payload.value("sha256", "");
        // "llm": GGUF into models/llm/; "stt": whisper.cpp's ggml .bin into models/stt/.
        const std::string kind = job.payload.value("kind", "llm") == "stt" ? "stt" : "llm";
        d.format = kind == "stt" ? "ggml" : "gguf";
        auto name = llm::download_name(d.url, job.payload.value("name", ""), d.format);
        if (!name) return jobs::Outcome::failed(name.error().message);
        d.target = data_dir + "/models/" + kind + "/" + *name;
        auto reported = std::make_shared<double>(-1.0);
        d.progress = [&jc, reported](double f) {
            if (f - *reported >= 0.01 || f >= 1.0) {  // Every 1%, not every chunk.
                *reported = f;
                jc.progress(f);
            }
        };
        d.cancel = jc.cancel_flag();
        auto size = llm::download_model(d);
        if (!size) return jobs::Outcome::failed(size.error().message);
        return jobs::Outcome::done({{"name", kind + "/" + *name}, {"size", *size}});
    });
}

void register_model_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/api/models", [&ctx](const Request&) {
        const std::string loaded = loaded_name(ctx);
        const std::string stt_model = loaded_name(ctx, "stt.model_path");
        const std::string vad_model = loaded_name(ctx, "stt.vad_model_path");
        Json list = Json::array();
        for (const auto& m : llm::list_models(ctx.data_dir + "/models")) {
            // A ggml .bin is whisper.cpp's: speech recognition or its voice activity detector.
            const bool ggml = m.format == "ggml";
            list.push_back({{"name", m.name}, {"size", m.size}, {"format", m.format}, {"kind", ggml ? "stt" : "llm"},
                            {"loaded", ggml ? (m.name == stt_model || m.name == vad_model) : m.name == loaded}});
        }
        return json_response(200, {{"models", list},
                                   {"loaded", loaded.empty() ? Json(nullptr) : Json(loaded)},
                                   {"models_dir", ctx.data_dir + "/models"}});
    });

    server.route(Method::Post, "/api/models/load", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"path"});
        const std::string path = f.string("path", 1000);
        if (f.error()) return error_response(*f.error());
        auto model = llm::find_model(ctx.data_dir + "/models", path);
        if (!model) return error_response(model.error());
        if (model->format == "ggml") {
            // A Whisper model becomes stt.model_path, a Silero VAD stt.vad_model_path.
            const std::string file = ctx.data_dir + "/models/" + model->name;
            const char* key = "model_path";
            if (auto w = stt::inspect_whisper_model(file); !w) {
                if (auto v = stt::inspect_vad_model(file); !v) return error_response({ErrorCode::InvalidInput, w.error().message, "path"});
                key = "vad_model_path";
            }
            auto updated = ctx.settings.patch({{"stt", {{"engine", "embedded"}, {key, "models/" + model->name}}}});
            if (!updated) return error_response(updated.error());
            if (ctx.settings_changed) ctx.settings_changed();
            return json_response(200, {{"loaded", model->name}, {"stt", ctx.stt ? ctx.stt->health() : Json(nullptr)}});
        }
        auto updated = ctx.settings.patch({{"llm", {{"backend", "embedded"}, {"model_path", "models/" + model->name}}}});
        if (!updated) return error_response(updated.error());
        if (ctx.settings_changed) ctx.settings_changed();
        const llm::EngineStatus st = ctx.engine_status();
        return json_response(200, {{"loaded", model->name}, {"llm", {{"state", st.state}, {"detail", st.detail}}}});
    });

    server.route(Method::Post, "/api/models/download", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"url", "sha256", "name", "kind"});
        const std::string url = f.string("url", 2000);
        const std::string kind = f.string_or("kind", 8, "llm");
        if (kind != "llm" && kind != "stt") f.reject(ErrorCode::InvalidInput, "kind", "'kind' must be llm (a GGUF model) or stt (a whisper.cpp .bin model)");
        std::string sha = f.string_or("sha256", 64, "");
        const std::string wanted_name = f.string_or("name", 255, "");
        if (f.error()) return error_response(*f.error());
        if (!(url.starts_with("http://") || url.starts_with("https://")) || url.size() > 2000 ||
            url.find_first_of(" \r\n\t") != std::string::npos) {
            return error_response({ErrorCode::InvalidInput, "'url' must be an http:// or https:// URL", "url"});
        }
        for (auto& c : sha) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!sha.empty() && (sha.size() != 64 || sha.find_first_not_of("0123456789abcdef") != std::string::npos)) {
            return error_response({ErrorCode::InvalidInput, "'sha256' must be 64 hex digits", "sha256"});
        }
        auto name = llm::download_name(url, wanted_name, kind == "stt" ? "ggml" : "gguf");
        if (!name) return error_response(name.error());
        auto job = ctx.jobs.submit("model_download", {{"url", url}, {"sha256", sha}, {"name", *name}, {"kind", kind}}, std::nullopt, std::nullopt);
        if (!job) return error_response(job.error());
        return json_response(202, {{"job", job_to_json(*job)}});
    });

    // "Test connection" for a model server somewhere else (llama.cpp's server, Ollama, LM Studio,
    // KoboldCpp, vLLM): asks it for its models without changing any setting. An empty api_key
    // means the one in the settings (the UI never sees it).
    server.route(Method::Post, "/api/models/test_remote", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"url", "api_key"});
        const std::string url = f.string("url", 2000);
        std::string key = f.string_or("api_key", 4096, "");
        if (f.error()) return error_response(*f.error());
        if (!(url.starts_with("http://") || url.starts_with("https://")) || url.find_first_of(" \r\n\t") != std::string::npos) {
            return error_response(Error{ErrorCode::InvalidInput, "'url' must be an http:// or https:// address", "url"}.because("url"));
        }
        if (key.empty()) key = ctx.settings.current()->str("llm.api_key");
        const llm::RemoteProbe probe = llm::probe_remote(url, key);
        return json_response(200, {{"ok", probe.ok}, {"reachable", probe.reachable}, {"models", probe.models},
                                   {"detail", probe.ok ? url + " offers " + std::to_string(probe.models.size()) + " model(s)" : probe.detail}});
    });
}

}  // namespace mc::api
