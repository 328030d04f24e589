// Fuzz target: uploaded bytes through content sniffing (images, audio), and request headers
// through the access guard (Host, Origin, token cookie).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/access_guard.hpp"
#include "core/media_type.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (auto t = mc::sniff_image(bytes)) (void)mc::mime_for_ext(t->ext);
    if (auto t = mc::sniff_audio(bytes)) (void)mc::mime_for_ext(t->ext);
    // Headers: the input split at NUL bytes into Host, Origin, Cookie, Authorization and a method.
    std::string fields[5];
    size_t i = 0;
    for (char c : bytes) {
        if (c == '\0') {
            if (++i == 5) break;
        } else {
            fields[i] += c;
        }
    }
    mc::http::Request req;
    req.method = fields[4].empty() ? "POST" : fields[4];
    req.path = "/api/characters";
    req.headers.emplace("Host", fields[0]);
    req.headers.emplace("Origin", fields[1]);
    req.headers.emplace("Cookie", fields[2]);
    req.headers.emplace("Authorization", fields[3]);
    mc::api::AccessPolicy policy;
    policy.token = "t0ken";
    policy.allowed_hosts = mc::api::split_list(fields[2]);
    (void)mc::api::check_access(req, policy);
    return 0;
}
