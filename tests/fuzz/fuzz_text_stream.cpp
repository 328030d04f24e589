// Fuzz target: model output split into pieces, through the display filter (emotes, markers) and
// the speech splitter (sentences, emotes never spoken), as a turn streams it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/text_stream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t step = 1 + data[0] % 16;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    mc::chat::DisplayFilter display;
    mc::chat::SpeechSplitter speech;
    while (!rest.empty()) {
        const auto piece = rest.substr(0, step);
        rest.remove_prefix(piece.size());
        (void)speech.push(display.push(piece));
    }
    (void)speech.push(display.finish());
    (void)speech.finish();
    return 0;
}
