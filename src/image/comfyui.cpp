// image/comfyui: the ComfyUI client (facts in shared/reference/comfyui-api.md). A job uploads the
// character's avatar (/upload/image, for the IPAdapter), submits the filled graph (/prompt with a
// client id), follows its progress on /ws?clientId= (falling back to polling /history when no
// socket opens), fetches the picture (/view) and interrupts the server (/interrupt) on cancel.
#include <chrono>
#include <set>
#include <thread>

#include "core/json.hpp"
#include "core/text.hpp"
#include "http/client.hpp"
#include "http/websocket.hpp"
#include "image/image_backend.hpp"

namespace mc::image {
namespace {

using Clock = std::chrono::steady_clock;

std::string url_encode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// ComfyUI's 400 answer to /prompt, in words: its message, then each node's errors.
std::string describe_prompt_error(const std::string& body) {
    const Json j = Json::parse(body, nullptr, false);
    if (!j.is_object()) return "ComfyUI refused the workflow: " + utf8_prefix(sanitize_utf8(body), 400);
    std::string out = "ComfyUI refused the workflow";
    if (j.contains("error") && j["error"].is_object()) {
        const std::string message = json_string_or(j["error"], "message", "");
        const std::string details = json_string_or(j["error"], "details", "");
        if (!message.empty()) out += ": " + message;
        if (!details.empty()) out += " (" + details + ")";
    } else if (j.contains("error") && j["error"].is_string()) {
        out += ": " + j["error"].get<std::string>();
    }
    if (j.contains("node_errors") && j["node_errors"].is_object()) {
        for (const auto& [id, ne] : j["node_errors"].items()) {
            out += "; node " + id;
            if (ne.is_object()) {
                const std::string type = json_string_or(ne, "class_type", "");
                if (!type.empty()) out += " (" + type + ")";
                if (ne.contains("errors") && ne["errors"].is_array()) {
                    for (const auto& e : ne["errors"]) {
                        out += ": " + json_string_or(e, "message", "error");
                        const std::string d = json_string_or(e, "details", "");
                        if (!d.empty()) out += " — " + d;
                    }
                }
            }
        }
    }
    return utf8_prefix(out, 2000);
}

class ComfyUi : public ImageBackend {
public:
    explicit ComfyUi(BackendOptions o) : m_o(std::move(o)) {}

    Result<RenderResult> render(const RenderRequest& request, const ProgressFn& progress, const std::atomic<bool>& cancel) override {
        const auto deadline = Clock::now() + std::chrono::seconds(m_o.timeout_s);
        const std::string client_id = random_hex(16);
        // The socket first, so no progress message is missed; without it, /history is polled.
        std::unique_ptr<http::WebSocketClient> ws;
        if (auto opened = http::WebSocketClient::connect(m_o.url, "/ws?clientId=" + client_id, m_o.connect_timeout_ms)) {
            ws = std::move(*opened);
        } else if (opened.error().message.find("cannot reach") != std::string::npos) {
            return std::unexpected(Error{ErrorCode::Unavailable,
                                         "ComfyUI is not reachable at " + m_o.url + " (" + opened.error().message +
                                             "): start ComfyUI or correct media.comfyui_url", "media.comfyui_url"});
        }
        ImageParams params = request.params;
        if (!request.reference_bytes.empty() && needs_reference(request.workflow)) {
            auto uploaded = upload(request.reference_bytes, request.reference_name);
            if (!uploaded) return std::unexpected(uploaded.error());
            params.reference_image = *uploaded;
        }
        auto graph = fill_workflow(request.workflow, params);
        if (!graph) return std::unexpected(graph.error());
        const Json body = {{"prompt", *graph}, {"client_id", client_id}};
        auto sent = call("POST", "/prompt", body.dump(), "application/json");
        if (!sent) return std::unexpected(sent.error());
        if (sent->status == 400) return fail(ErrorCode::InvalidInput, describe_prompt_error(sent->body), "workflow");
        if (sent->status != 200) return fail(ErrorCode::Unavailable, "ComfyUI answered /prompt with HTTP " + std::to_string(sent->status));
        const Json answer = Json::parse(sent->body, nullptr, false);
        const std::string prompt_id = json_string_or(answer, "prompt_id", "");
        if (prompt_id.empty()) return fail(ErrorCode::Unavailable, "ComfyUI's /prompt answer has no prompt_id");
        if (answer.is_object() && answer.contains("node_errors") && answer["node_errors"].is_object() && !answer["node_errors"].empty()) {
            return fail(ErrorCode::InvalidInput, describe_prompt_error(sent->body), "workflow");
        }

        auto interrupt = [&] { (void)call("POST", "/interrupt", Json{{"prompt_id", prompt_id}}.dump(), "application/json"); };
        bool finished = false;
        while (!finished) {
            if (cancel.load()) {
                interrupt();
                return fail(ErrorCode::Conflict, "cancelled");
            }
            if (Clock::now() > deadline) {
                interrupt();
                return fail(ErrorCode::Unavailable, "ComfyUI did not finish the picture within " + std::to_string(m_o.timeout_s) +
                                                        " s (media.image_timeout_s)");
            }
            if (ws) {
                auto msg = ws->read(200);
                if (!msg) {
                    ws.reset();  // Dropped: go on by polling.
                    continue;
                }
                if (!*msg || (*msg)->op != http::WsOpcode::Text) continue;
                const Json m = Json::parse((*msg)->payload, nullptr, false);
                if (!m.is_object() || !m.contains("data") || !m["data"].is_object()) continue;
                const Json& data = m["data"];
                if (json_string_or(data, "prompt_id", "") != prompt_id) continue;
                const std::string type = json_string_or(m, "type", "");
                if (type == "progress") {
                    const double max = json_number_or(data, "max", 0);
                    if (max > 0) progress(0.05 + 0.9 * std::clamp(json_number_or(data, "value", 0) / max, 0.0, 1.0));
                } else if (type == "executing" && data.contains("node") && data["node"].is_null()) {
                    finished = true;
                } else if (type == "execution_success") {
                    finished = true;
                } else if (type == "execution_error") {
                    return fail(ErrorCode::InvalidInput,
                                "ComfyUI failed in node " + json_string_or(data, "node_id", "?") + " (" +
                                    json_string_or(data, "node_type", "?") + "): " +
                                    utf8_prefix(json_string_or(data, "exception_message", "unknown error"), 1000), "workflow");
                } else if (type == "execution_interrupted") {
                    return fail(ErrorCode::Conflict, "ComfyUI's run was interrupted (someone pressed Cancel in ComfyUI?)");
                }
            } else {
                auto done = history(prompt_id);
                if (!done) return std::unexpected(done.error());
                if (*done) {
                    finished = true;
                } else {
                    for (int i = 0; i < 5 && !cancel.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            }
        }
        if (ws) ws->close();
        // The outputs are in the history entry (also when the socket told us first).
        auto entry = history_entry(prompt_id);
        if (!entry) return std::unexpected(entry.error());
        const Json* image = nullptr;
        if (entry->contains("outputs") && (*entry)["outputs"].is_object()) {
            for (const auto& [node, out] : (*entry)["outputs"].items()) {
                if (!out.is_object() || !out.contains("images") || !out["images"].is_array()) continue;
                for (const auto& img : out["images"]) {
                    if (!img.is_object()) continue;
                    if (!image || json_string_or(img, "type", "") == "output") image = &img;
                }
            }
        }
        if (!image) return fail(ErrorCode::InvalidInput, "the ComfyUI workflow finished without an image output (add a SaveImage node)", "workflow");
        const std::string path = "/view?filename=" + url_encode(json_string_or(*image, "filename", "")) +
                                 "&subfolder=" + url_encode(json_string_or(*image, "subfolder", "")) +
                                 "&type=" + url_encode(json_string_or(*image, "type", "output"));
        auto got = call("GET", path, "", "", m_o.max_bytes);
        if (!got) return std::unexpected(got.error());
        if (got->status != 200) return fail(ErrorCode::Unavailable, "ComfyUI answered /view with HTTP " + std::to_string(got->status));
        const std::string ext = image_ext(got->body);
        if (ext.empty()) return fail(ErrorCode::UnsupportedMedia, "ComfyUI's /view sent something that is not a PNG, JPEG or WebP picture");
        progress(1.0);
        return RenderResult{std::move(got->body), ext, std::move(*graph)};
    }

    Json health(const Json& workflow, const std::string& checkpoint) override {
        auto stats = call("GET", "/system_stats", "", "");
        if (!stats || stats->status != 200) {
            return Json{{"state", "unavailable"},
                        {"detail", "ComfyUI is not reachable at " + m_o.url + (stats ? " (HTTP " + std::to_string(stats->status) + ")" : "") +
                                       ": start ComfyUI (python main.py --listen 127.0.0.1 --port 8188) or correct media.comfyui_url"}};
        }
        auto info = call("GET", "/object_info", "", "", 64u << 20);
        if (!info || info->status != 200) {
            return Json{{"state", "error"}, {"detail", "ComfyUI at " + m_o.url + " answers, but /object_info did not"}};
        }
        const Json nodes = Json::parse(info->body, nullptr, false);
        if (!nodes.is_object()) return Json{{"state", "error"}, {"detail", "ComfyUI's /object_info is not JSON"}};
        std::vector<std::string> missing;
        for (const auto& type : node_types(workflow)) {
            if (!nodes.contains(type)) missing.push_back(type);
        }
        if (!missing.empty()) {
            std::string list;
            bool ipadapter = false;
            for (const auto& m : missing) {
                list += (list.empty() ? "" : ", ") + m;
                ipadapter = ipadapter || m.rfind("IPAdapter", 0) == 0;
            }
            std::string fix = ipadapter ? "install the ComfyUI_IPAdapter_plus custom nodes (with its models), or turn likeness off"
                                        : "install the custom nodes the workflow uses, or choose another workflow";
            return Json{{"state", "error"}, {"detail", "ComfyUI at " + m_o.url + " lacks node types " + list + ": " + fix},
                        {"missing_nodes", missing}};
        }
        if (!checkpoint.empty() && nodes.contains("CheckpointLoaderSimple")) {
            const Json& c = nodes["CheckpointLoaderSimple"];
            const Json* list = nullptr;
            if (c.contains("input") && c["input"].contains("required") && c["input"]["required"].contains("ckpt_name") &&
                c["input"]["required"]["ckpt_name"].is_array() && !c["input"]["required"]["ckpt_name"].empty() &&
                c["input"]["required"]["ckpt_name"][0].is_array()) {
                list = &c["input"]["required"]["ckpt_name"][0];
            }
            if (list && std::find(list->begin(), list->end(), Json(checkpoint)) == list->end()) {
                return Json{{"state", "error"},
                            {"detail", "ComfyUI has no checkpoint '" + checkpoint + "': put it in ComfyUI/models/checkpoints/ or set media.image_checkpoint to one of " +
                                           std::to_string(list->size()) + " installed"},
                            {"checkpoints", *list}};
            }
        }
        return Json{{"state", "ready"}, {"detail", "ComfyUI at " + m_o.url + " has every node the workflow uses"}};
    }

private:
    // A request to ComfyUI; bodies up to `cap` bytes. Unreachable: Unavailable naming the URL.
    Result<http::ClientResponse> call(const std::string& method, const std::string& path, const std::string& body,
                                      const std::string& type, size_t cap = 1u << 20) {
        return call_image_server(m_o, {"ComfyUI", "start ComfyUI or correct media.comfyui_url", "media.comfyui_url"}, method, path, body,
                                 type, cap, 60000);
    }

    Result<std::string> upload(const std::string& bytes, const std::string& name) {
        const std::string boundary = "mycandy" + random_hex(12);
        const std::string ext = image_ext(bytes);
        const std::string file = "mycandy_" + name + "." + (ext.empty() ? "png" : ext);
        std::string body;
        auto field = [&](const std::string& key, const std::string& value) {
            body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + key + "\"\r\n\r\n" + value + "\r\n";
        };
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + file +
                "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
        body += bytes;
        body += "\r\n";
        field("type", "input");
        field("subfolder", "mycandy");
        field("overwrite", "true");
        body += "--" + boundary + "--\r\n";
        auto r = call("POST", "/upload/image", body, "multipart/form-data; boundary=" + boundary);
        if (!r) return std::unexpected(r.error());
        if (r->status != 200) {
            return fail(ErrorCode::Unavailable, "ComfyUI refused the character's picture (/upload/image, HTTP " + std::to_string(r->status) +
                                                    "): " + utf8_prefix(sanitize_utf8(r->body), 300));
        }
        const Json j = Json::parse(r->body, nullptr, false);
        const std::string got = json_string_or(j, "name", "");
        if (got.empty()) return fail(ErrorCode::Unavailable, "ComfyUI's /upload/image answer has no name");
        const std::string sub = json_string_or(j, "subfolder", "");
        return sub.empty() ? got : sub + "/" + got;
    }

    // The /history entry of a finished prompt (an error when it failed or is missing).
    Result<Json> history_entry(const std::string& prompt_id) {
        auto r = call("GET", "/history/" + prompt_id, "", "", 8u << 20);
        if (!r) return std::unexpected(r.error());
        const Json j = Json::parse(r->body, nullptr, false);
        if (r->status != 200 || !j.is_object() || !j.contains(prompt_id) || !j[prompt_id].is_object()) {
            return fail(ErrorCode::Unavailable, "ComfyUI's /history has no entry for prompt " + prompt_id);
        }
        return j[prompt_id];
    }

    // Polling: true once the prompt is in /history (finished); an error when it failed.
    Result<bool> history(const std::string& prompt_id) {
        auto r = call("GET", "/history/" + prompt_id, "", "", 8u << 20);
        if (!r) return std::unexpected(r.error());
        const Json j = Json::parse(r->body, nullptr, false);
        if (r->status != 200 || !j.is_object() || !j.contains(prompt_id)) return false;
        const Json& e = j[prompt_id];
        if (e.is_object() && e.contains("status") && e["status"].is_object() &&
            json_string_or(e["status"], "status_str", "") == "error") {
            std::string why = "ComfyUI reported an error while running the workflow";
            if (e["status"].contains("messages") && e["status"]["messages"].is_array()) {
                for (const auto& m : e["status"]["messages"]) {
                    if (m.is_array() && m.size() == 2 && m[0] == "execution_error" && m[1].is_object()) {
                        why = "ComfyUI failed in node " + json_string_or(m[1], "node_id", "?") + " (" + json_string_or(m[1], "node_type", "?") +
                              "): " + utf8_prefix(json_string_or(m[1], "exception_message", ""), 1000);
                    }
                }
            }
            return fail(ErrorCode::InvalidInput, why, "workflow");
        }
        return true;
    }

    BackendOptions m_o;
};

}  // namespace

std::unique_ptr<ImageBackend> make_comfyui_backend(BackendOptions options) { return std::make_unique<ComfyUi>(std::move(options)); }

}  // namespace mc::image
