// Fuzz target: a settings document (config/settings.json or a PATCH /api/settings body) through
// validation: every key's type, range, length and choices.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/settings.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto doc = mc::Json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size,
                                     nullptr, false);
    if (doc.is_discarded()) return 0;
    auto r = mc::validate_settings(doc);
    if (r) (void)r->settings.redacted();
    return 0;
}
