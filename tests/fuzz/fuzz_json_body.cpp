// Fuzz target: a JSON request body through the typed field reader and the sampler parser, as the
// routes read them. Any crash, sanitizer report or escaped exception is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/chat_json.hpp"
#include "api/json_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto body = mc::api::parse_object_text(text);
    if (!body) return 0;
    mc::api::Fields f(*body);
    f.only({"content", "keep", "url", "stop", "pinned", "sampling"});
    (void)f.string("content", 1 << 20);
    (void)f.integer_or("keep", 0, 100000, 4);
    (void)f.opt_integer("version", -5, mc::api::kMaxSafeInteger);
    (void)f.opt_number("temperature", 0, 5);
    (void)f.string_or("url", 2000, "");
    (void)f.strings("stop", 16, 256);
    (void)f.boolean_or("pinned", false);
    if (const mc::api::Json* o = f.object("stream_options")) {
        mc::api::Fields inner(*o, "stream_options.");
        (void)inner.boolean_or("include_usage", false);
    }
    (void)f.array("messages", 10000);
    if (body->contains("sampling")) (void)mc::api::sampling_from_json((*body)["sampling"], mc::llm::Sampling{});
    return 0;
}
