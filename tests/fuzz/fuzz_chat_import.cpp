// Fuzz target: a chat file to import (our JSON or SillyTavern JSONL), with the limits it must keep.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "chat/transfer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto r = mc::chat::parse_chat_file(text);
    if (!r) return 0;
    if (r->messages.size() > mc::chat::kMaxImportMessages) std::abort();
    for (const auto& m : r->messages) {
        // A swipe index the store would use must point into the swipes (or there are none).
        if (!m.swipes.empty() && (m.swipe_id < 0 || m.swipe_id >= static_cast<int>(m.swipes.size()))) std::abort();
        if (m.created_at < 0 || m.created_at > mc::chat::kMaxDateMs) std::abort();
    }
    (void)mc::chat::iso_date(r->created_at);
    return 0;
}
