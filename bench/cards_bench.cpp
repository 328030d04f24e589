// cards_bench: character cards and lorebooks.
// 1. Import of a 1 MB PNG card: parsing alone (cards::import_card) and the whole route
//    (POST /api/characters/import: parse, checks, avatar file, database rows).
// 2. Lorebook activation scan per turn, 1,000 entries (2 keys each), the last 4 messages scanned.
// 3. Tokens evaluated per turn in a chat whose fired entries change every turn (each message names
//    two random keys), with no lorebook, 200 entries and 1,000 entries, against the prompt size:
//    fired entries sit after the stable part (and at depth), so a change re-evaluates only what
//    follows them, not the whole prompt.
// Usage: cards_bench <mycandy> <model.gguf>
#include <zlib.h>

#include <filesystem>
#include <random>

#include "bench_util.hpp"
#include "cards/card.hpp"
#include "cards/lorebook.hpp"
#include "cards/png.hpp"

namespace {

using bench::Clock;
using bench::Json;
using bench::ms_since;

std::string chunk(const std::string& type, const std::string& data) {
    auto be32 = [](uint32_t v) {
        std::string s(4, '\0');
        for (int i = 0; i < 4; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
        return s;
    };
    std::string body = type + data;
    return be32(static_cast<uint32_t>(data.size())) + body + be32(mc::cards::crc32(body));
}

// A PNG of about `bytes` (noise compresses badly, so the file is about its raw size).
std::string noise_png(size_t bytes) {
    const uint32_t side = static_cast<uint32_t>(std::sqrt(static_cast<double>(bytes) / 3));
    std::mt19937 rng(1);
    std::string raw;
    for (uint32_t y = 0; y < side; ++y) {
        raw.push_back('\0');
        for (uint32_t x = 0; x < side * 3; ++x) raw.push_back(static_cast<char>(rng() & 0xFF));
    }
    uLongf n = compressBound(static_cast<uLong>(raw.size()));
    std::string z(n, '\0');
    compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 1);
    z.resize(n);
    std::string ihdr;
    for (uint32_t v : {side, side}) {
        for (int i = 3; i >= 0; --i) ihdr.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    }
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);
    return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", "");
}

const std::vector<std::string>& words() {
    static const std::vector<std::string> w = [] {
        std::vector<std::string> out;
        std::mt19937 rng(5);
        const char* syll[] = {"ka", "lo", "mi", "ren", "sa", "tor", "vel", "an", "is", "or", "um", "ex"};
        for (int i = 0; i < 400; ++i) out.push_back(std::string(syll[rng() % 12]) + syll[rng() % 12] + syll[rng() % 12]);
        return out;
    }();
    return w;
}

std::string sentence(std::mt19937& rng, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += words()[rng() % words().size()] + (i + 1 < n ? " " : ".");
    return s;
}

// Entries with keys relicN and placeN; without whole words, "relic123" also fires relic1 and relic12.
Json lorebook(int entries, std::mt19937& rng, bool whole_words = false) {
    Json list = Json::array();
    for (int i = 0; i < entries; ++i) {
        list.push_back({{"keys", {"relic" + std::to_string(i), "place" + std::to_string(i)}},
                        {"content", "Relic " + std::to_string(i) + ": " + sentence(rng, 30)},
                        {"insertion_order", i % 50},
                        {"extensions", {{"match_whole_words", whole_words}}}});
    }
    return {{"name", "World"}, {"scan_depth", 2}, {"entries", list}};
}

void bench_import(const std::string& binary, const std::string& dir) {
    std::mt19937 rng(3);
    Json card = {{"spec", "chara_card_v3"}, {"spec_version", "3.0"},
                 {"data", {{"name", "Aria"}, {"description", sentence(rng, 300)}, {"first_mes", "Hello."}, {"extensions", Json::object()},
                           {"group_only_greetings", Json::array()}, {"character_book", lorebook(50, rng)}}}};
    auto png = mc::cards::png_with_text_chunks(noise_png(1u << 20), {{"ccv3", mc::cards::base64_encode(card.dump())}});
    if (!png) std::exit(1);
    std::vector<double> parse_ms;
    for (int i = 0; i < 30; ++i) {
        const auto t = Clock::now();
        auto r = mc::cards::import_card(*png);
        parse_ms.push_back(ms_since(t));
        if (!r) std::exit(1);
    }
    bench::write_text(dir + "/settings.json", "{}");
    bench::Process server;
    server.port = bench::free_port();
    server.pid = bench::spawn({binary, "serve", "--port", std::to_string(server.port), "--data-dir", dir + "/data", "--config",
                               dir + "/settings.json"},
                              dir + "/server.log");
    bench::wait_ready(server.port, "/api/characters");
    httplib::Client c("127.0.0.1", server.port);
    std::vector<double> route_ms;
    for (int i = 0; i < 20; ++i) {
        const auto t = Clock::now();
        auto r = c.Post("/api/characters/import", *png, "image/png");
        route_ms.push_back(ms_since(t));
        if (!r || r->status != 201) std::exit(2);
    }
    std::printf("%-60s %8.2f ms  (%s)\n", ("card import, " + std::to_string(png->size() / 1024) + " KB PNG: parse").c_str(),
                bench::median(parse_ms), bench::range(parse_ms).c_str());
    std::printf("%-60s %8.2f ms  (%s)\n", "card import, same PNG: POST /api/characters/import", bench::median(route_ms),
                bench::range(route_ms).c_str());
}

void bench_scan() {
    std::mt19937 rng(9);
    auto book = mc::cards::normalize_lorebook(lorebook(1000, rng));
    if (!book) std::exit(3);
    (*book)["scan_depth"] = 4;
    auto compiled = mc::cards::compile_lorebook("b", *book);
    if (!compiled) std::exit(3);
    std::vector<double> ms;
    size_t fired = 0;
    for (int turn = 0; turn < 200; ++turn) {
        std::vector<std::string> recent;
        for (int m = 0; m < 4; ++m) recent.push_back(sentence(rng, 100) + " relic" + std::to_string(rng() % 1000) + ".");
        const auto t = Clock::now();
        auto a = mc::cards::activate({*compiled}, recent, 100000, [](const std::string& s) { return static_cast<int>(s.size() / 4); });
        ms.push_back(ms_since(t));
        fired += a.fired.size();
    }
    std::printf("%-60s %8.3f ms  (%s; %.1f entries fired per turn)  goal <= 5 ms\n",
                "lorebook scan, 1,000 entries, 4 messages of ~100 words", bench::median(ms), bench::range(ms, "%.3f").c_str(),
                static_cast<double>(fired) / 200.0);
}

Json turn(int port, const std::string& chat, const std::string& content) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(600, 0);
    auto r = c.Post(("/api/chats/" + chat + "/messages").c_str(), Json{{"content", content}, {"sampling", {{"seed", 1}}}}.dump(),
                    "application/json");
    if (!r || r->status != 200) return nullptr;
    const size_t at = r->body.rfind("event: done\ndata: ");
    if (at == std::string::npos) return nullptr;
    return Json::parse(r->body.substr(at + 18, r->body.find('\n', at + 18) - at - 18))["timings"];
}

void bench_tokens(const std::string& binary, const std::string& model, const std::string& dir) {
    bench::write_text(dir + "/settings2.json",
                      Json{{"llm", {{"model_path", model}, {"context_size", 4096}, {"max_tokens", 24}, {"threads", 2}}},
                           {"memory", {{"auto_facts", false}}}, {"media", {{"image_instruct", false}}}}
                          .dump());
    bench::Process server;
    server.port = bench::free_port();
    server.pid = bench::spawn({binary, "serve", "--port", std::to_string(server.port), "--data-dir", dir + "/data2", "--config",
                               dir + "/settings2.json"},
                              dir + "/server2.log");
    if (!bench::wait_ready(server.port, "/api/health")) std::exit(4);
    httplib::Client c("127.0.0.1", server.port);
    for (int entries : {0, 200, 1000}) {
        std::mt19937 rng(11);
        const std::string character = Json::parse(c.Post("/api/characters",
                                                          Json{{"name", "Mia"}, {"description", sentence(rng, 120)}, {"first_mes", "Hallo!"}}.dump(),
                                                          "application/json")->body)["id"];
        if (entries > 0) {
            Json b = lorebook(entries, rng, true);
            b["character_ids"] = {character};
            auto r = c.Post("/api/lorebooks", b.dump(), "application/json");
            if (!r || r->status != 201) std::exit(5);
        }
        const std::string chat = Json::parse(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json")->body)["chat"]["id"];
        std::vector<double> evaluated, prompt, lore;
        for (int i = 0; i < 14; ++i) {
            const std::string msg = sentence(rng, 25) + " relic" + std::to_string(rng() % std::max(entries, 1)) + " and place" +
                                    std::to_string(rng() % std::max(entries, 1)) + ".";
            // The entries this message fires, in tokens (what must be evaluated wherever they go).
            std::string q;
            for (char ch : msg) q += ch == ' ' ? std::string("%20") : std::string(1, ch);
            auto preview = c.Get(("/api/chats/" + chat + "/prompt?message=" + q).c_str());
            const double lore_tokens = preview && preview->status == 200 ? Json::parse(preview->body)["tokens"]["world_info"].get<double>() : 0;
            const Json t = turn(server.port, chat, msg);
            if (t.is_null()) std::exit(6);
            if (i < 2) continue;  // The first turns fill the cache.
            evaluated.push_back(t["prompt_tokens"].get<double>());
            prompt.push_back(t["prompt_tokens"].get<double>() + t["cached_tokens"].get<double>());
            lore.push_back(lore_tokens);
        }
        double e = 0, p = 0, l = 0;
        for (size_t i = 0; i < evaluated.size(); ++i) {
            e += evaluated[i];
            p += prompt[i];
            l += lore[i];
        }
        e /= static_cast<double>(evaluated.size());
        p /= static_cast<double>(prompt.size());
        l /= static_cast<double>(lore.size());
        char label[96];
        std::snprintf(label, sizeof label, "tokens evaluated per turn, lorebook of %d entries", entries);
        std::printf("%-60s %8.0f of %6.0f prompt tokens (%.2f; %s); fired entries %.0f\n", label, e, p, e / p,
                    bench::range(evaluated, "%.0f").c_str(), l);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: cards_bench <mycandy> <model.gguf>\n");
        return 2;
    }
    const std::string dir = std::filesystem::temp_directory_path() / ("cards-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    bench_import(argv[1], dir);
    bench_scan();
    bench_tokens(argv[1], std::filesystem::absolute(argv[2]).string(), dir);
    std::filesystem::remove_all(dir);
    return 0;
}
