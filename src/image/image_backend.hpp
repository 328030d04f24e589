// image/image_backend: one picture from an image server. Two kinds: ComfyUI (the seed's; a workflow
// graph, progress over its WebSocket) and the A1111 / Forge / SD.Next web API (txt2img).
// Thread safety: a backend is made per job and used by that job's thread only.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "http/client.hpp"
#include "image/workflow.hpp"

namespace mc::image {

struct RenderRequest {
    ImageParams params;
    Json workflow;                 // ComfyUI: the template (filled by the backend).
    std::string reference_bytes;   // The character's avatar for likeness ("" = none).
    std::string reference_name;    // A stable name for it (character id + content hash).
};

struct RenderResult {
    std::string bytes;  // PNG, JPEG or WebP (checked by content).
    std::string ext;    // "png" | "jpg" | "webp"
    Json workflow;      // What was submitted (the filled graph, or the txt2img body).
};

using ProgressFn = std::function<void(double fraction)>;

class ImageBackend {
public:
    virtual ~ImageBackend() = default;
    // Renders one picture. Fails with Unavailable naming the server when it cannot be reached,
    // InvalidInput with the server's own words when it refuses the request, and Conflict
    // ("cancelled") when `cancel` was set.
    virtual Result<RenderResult> render(const RenderRequest& request, const ProgressFn& progress,
                                        const std::atomic<bool>& cancel) = 0;
    // {"state","detail"} for /api/health: reachable, and whether what `workflow` needs is there.
    virtual Json health(const Json& workflow, const std::string& checkpoint) = 0;
};

struct BackendOptions {
    std::string url;
    size_t max_bytes = 32u << 20;   // Largest picture accepted.
    int timeout_s = 600;            // Whole render.
    int connect_timeout_ms = 2000;
};

std::unique_ptr<ImageBackend> make_comfyui_backend(BackendOptions options);
std::unique_ptr<ImageBackend> make_a1111_backend(BackendOptions options);

// Who a request goes to, for its error messages: "ComfyUI is not reachable at <url> (<why>): <fix>".
struct ServerName {
    std::string name;     // "ComfyUI"
    std::string fix;      // "start ComfyUI or correct media.comfyui_url"
    std::string setting;  // The field named in the error: "media.comfyui_url"
};

// One request to an image server: a 2xx body of at most `cap` bytes (TooLarge beyond, naming
// media.image_max_mb); other statuses keep their body for the error. Unreachable: Unavailable.
Result<http::ClientResponse> call_image_server(const BackendOptions& o, const ServerName& who, const std::string& method,
                                               const std::string& path, const std::string& body, const std::string& type,
                                               size_t cap, int read_timeout_ms);

// "image/png" bytes check; returns the extension or "" when `bytes` is not an image we keep.
std::string image_ext(std::string_view bytes);

}  // namespace mc::image
