// image/a1111: the AUTOMATIC1111 / Forge / SD.Next web API (`--api`): POST /sdapi/v1/txt2img answers
// the pictures as base64 when done; a second thread polls /sdapi/v1/progress meanwhile and asks
// /sdapi/v1/interrupt on cancel. LoRAs go into the prompt as <lora:name:weight>. Likeness needs
// ComfyUI (an IP-Adapter through the ControlNet extension is not driven here).
#include <openssl/evp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/json.hpp"
#include "core/media_type.hpp"
#include "core/text.hpp"
#include "http/client.hpp"
#include "image/image_backend.hpp"

namespace mc::image {
namespace {

std::string base64_decode(std::string_view in) {
    if (const size_t comma = in.find(','); in.rfind("data:", 0) == 0 && comma != std::string_view::npos) in.remove_prefix(comma + 1);
    std::string clean;
    clean.reserve(in.size());
    for (char c : in) {
        if (c != '\n' && c != '\r' && c != ' ') clean += c;
    }
    if (clean.empty() || clean.size() % 4 != 0) return {};
    std::string out(clean.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(clean.data()),
                                  static_cast<int>(clean.size()));
    if (n < 0) return {};
    size_t len = static_cast<size_t>(n);
    if (clean.ends_with("==")) len -= 2;
    else if (clean.ends_with("=")) len -= 1;
    out.resize(len);
    return out;
}

class A1111 : public ImageBackend {
public:
    explicit A1111(BackendOptions o) : m_o(std::move(o)) {}

    Result<RenderResult> render(const RenderRequest& request, const ProgressFn& progress, const std::atomic<bool>& cancel) override {
        const ImageParams& p = request.params;
        std::string prompt = p.prompt;
        for (const auto& lora : p.loras) {
            std::string name = lora.name;
            if (const size_t dot = name.rfind('.'); dot != std::string::npos) name.resize(dot);
            prompt += " <lora:" + name + ":" + Json(lora.weight).dump() + ">";
        }
        Json body = {{"prompt", prompt}, {"negative_prompt", p.negative_prompt}, {"seed", p.seed}, {"width", p.width},
                     {"height", p.height}, {"steps", p.steps}, {"cfg_scale", p.scale}, {"batch_size", 1}, {"n_iter", 1},
                     {"send_images", true}, {"save_images", false}};
        if (!p.checkpoint.empty()) body["override_settings"] = {{"sd_model_checkpoint", p.checkpoint}};

        // The poller: progress while txt2img runs, and the interrupt on cancel.
        std::mutex mu;  // Guards done.
        std::condition_variable cv;
        bool done = false;
        std::thread poller([&] {
            std::unique_lock lock(mu);
            bool interrupted = false;
            while (!cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return done; })) {
                lock.unlock();
                if (cancel.load() && !interrupted) {
                    (void)call("POST", "/sdapi/v1/interrupt", "{}", "application/json", 1u << 16, 2000);
                    interrupted = true;
                } else if (!interrupted) {
                    if (auto r = call("GET", "/sdapi/v1/progress?skip_current_image=true", "", "", 1u << 20, 2000); r && r->status == 200) {
                        const Json j = Json::parse(r->body, nullptr, false);
                        const double f = json_number_or(j, "progress", 0);
                        if (f > 0 && f < 1) progress(0.05 + 0.9 * f);
                    }
                }
                lock.lock();
            }
        });
        auto r = call("POST", "/sdapi/v1/txt2img", body.dump(), "application/json", m_o.max_bytes / 3 * 4 + (1u << 16),
                      m_o.timeout_s * 1000);
        {
            std::lock_guard lock(mu);
            done = true;
        }
        cv.notify_all();
        poller.join();
        if (cancel.load()) return fail(ErrorCode::Conflict, "cancelled");
        if (!r) return std::unexpected(r.error());
        if (r->status != 200) {
            const Json j = Json::parse(r->body, nullptr, false);
            std::string why = json_string_or(j, "detail", json_string_or(j, "error", ""));
            if (why.empty()) why = utf8_prefix(sanitize_utf8(r->body), 300);
            return fail(r->status < 500 ? ErrorCode::InvalidInput : ErrorCode::Unavailable,
                        "the image server at " + m_o.url + " refused txt2img (HTTP " + std::to_string(r->status) + "): " + why);
        }
        const Json j = Json::parse(r->body, nullptr, false);
        if (!j.is_object() || !j.contains("images") || !j["images"].is_array() || j["images"].empty() || !j["images"][0].is_string()) {
            return fail(ErrorCode::UnsupportedMedia, "the image server's txt2img answer has no images");
        }
        std::string bytes = base64_decode(j["images"][0].get<std::string>());
        const std::string ext = image_ext(bytes);
        if (ext.empty()) return fail(ErrorCode::UnsupportedMedia, "the image server sent something that is not a PNG, JPEG or WebP picture");
        if (bytes.size() > m_o.max_bytes) return fail(ErrorCode::TooLarge, "the picture is larger than media.image_max_mb");
        progress(1.0);
        return RenderResult{std::move(bytes), ext, std::move(body)};
    }

    Json health(const Json&, const std::string& checkpoint) override {
        auto r = call("GET", "/sdapi/v1/sd-models", "", "", 8u << 20, 10000);
        if (!r || r->status != 200) {
            return Json{{"state", "unavailable"},
                        {"detail", "the A1111/Forge server is not reachable at " + m_o.url +
                                       (r ? " (HTTP " + std::to_string(r->status) + ")" : "") +
                                       ": start it with --api, or correct media.a1111_url"}};
        }
        const Json models = Json::parse(r->body, nullptr, false);
        if (!checkpoint.empty() && models.is_array()) {
            bool found = false;
            for (const auto& m : models) {
                const std::string title = json_string_or(m, "title", ""), name = json_string_or(m, "model_name", "");
                found = found || title == checkpoint || name == checkpoint || title.rfind(checkpoint, 0) == 0;
            }
            if (!found) {
                return Json{{"state", "error"},
                            {"detail", "the image server has no checkpoint '" + checkpoint + "': set media.image_checkpoint to one it lists, or empty for its current one"}};
            }
        }
        return Json{{"state", "ready"}, {"detail", "A1111-style server at " + m_o.url + " (likeness from the avatar needs ComfyUI)"}};
    }

private:
    Result<http::ClientResponse> call(const std::string& method, const std::string& path, const std::string& body,
                                      const std::string& type, size_t cap, int read_timeout_ms) {
        return call_image_server(m_o, {"the image server", "start it with --api, or correct media.a1111_url", "media.a1111_url"}, method,
                                 path, body, type, cap, read_timeout_ms);
    }
    BackendOptions m_o;
};

}  // namespace

std::unique_ptr<ImageBackend> make_a1111_backend(BackendOptions options) { return std::make_unique<A1111>(std::move(options)); }

std::string image_ext(std::string_view bytes) {
    const auto type = sniff_image(bytes);
    return type ? type->ext : std::string();
}

}  // namespace mc::image
