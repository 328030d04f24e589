// Fuzz target: a remote model server's SSE byte stream, split at arbitrary points (the first byte
// of the input chooses the chunk size), through our parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/client.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t step = 1 + data[0] % 64;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    mc::http::SseParser parser;
    size_t total = 0;
    while (!rest.empty()) {
        const auto piece = rest.substr(0, step);
        rest.remove_prefix(piece.size());
        for (const auto& payload : parser.push(piece)) total += payload.size();
    }
    return total > size * 2 ? 1 : 0;
}
