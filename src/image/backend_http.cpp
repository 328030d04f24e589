// image/backend_http: the request helper both image server clients share.
#include "core/text.hpp"
#include "image/image_backend.hpp"

namespace mc::image {

Result<http::ClientResponse> call_image_server(const BackendOptions& o, const ServerName& who, const std::string& method,
                                               const std::string& path, const std::string& body, const std::string& type,
                                               size_t cap, int read_timeout_ms) {
    http::ClientOptions options;
    options.connect_timeout_ms = o.connect_timeout_ms;
    options.read_timeout_ms = read_timeout_ms;
    std::string collected;
    bool too_big = false;
    auto r = http::fetch(method, o.url, path, body, type, options, [&](std::string_view piece) {
        if (collected.size() + piece.size() > cap) {
            too_big = true;
            return false;
        }
        collected.append(piece);
        return true;
    });
    if (too_big) {
        return fail(ErrorCode::TooLarge, who.name + "'s answer to " + path.substr(0, path.find('?')) + " is larger than " +
                                             std::to_string(cap >> 20) + " MB (media.image_max_mb)");
    }
    if (!r) {
        return std::unexpected(Error{ErrorCode::Unavailable,
                                     who.name + " is not reachable at " + o.url + " (" + r.error().message + "): " + who.fix, who.setting});
    }
    if (r->status >= 200 && r->status < 300) r->body = std::move(collected);
    return r;
}

}  // namespace mc::image
