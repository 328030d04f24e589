// bench/memory_bench: the memory goals of issue 4, measured in one run.
//   memory_bench <mycandy> <tiny model.gguf>
// 1. A database with 1,000,000 stored messages (100 chats x 10,000, two-language text): time to
//    open a chat's last 50 messages and to full-text search a chat (median and max of 200 each).
// 2. 220 turns in a chat whose history far outgrows a 2048-token context (summaries on): tokens
//    evaluated per turn over the last 200 turns, as a fraction of the context (mean and max).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/db.hpp"
#include "store/memory_store.hpp"

using bench::Clock;
using bench::Json;
using bench::ms_since;

namespace {

struct Stats {
    double median, max, mean;
};
Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    return {v[v.size() / 2], v.back(), sum / static_cast<double>(v.size())};
}

const std::vector<std::string>& words() {
    static std::vector<std::string> w;
    if (w.empty()) {
        const char* base[] = {"harbour", "ship", "gull", "lighthouse", "keeper", "painting", "morning", "coffee", "rain",
                              "Hamburg", "market", "fish", "sailor", "storm", "letter", "garden", "music", "dance",
                              "Hafen", "Schiff", "Möwe", "Leuchtturm", "Malerei", "Morgen", "Kaffee", "Regen", "Markt",
                              "Brief", "Garten", "Musik", "Sturm", "Abend", "smiles", "laughs", "whispers", "lächelt"};
        for (const char* b : base) w.emplace_back(b);
        // Plus a long tail of rarer words, like real text.
        for (int i = 0; i < 4000; ++i) w.push_back("word" + std::to_string(i));
    }
    return w;
}

std::string sentence(std::mt19937& rng, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        // Skewed towards the common words.
        const size_t k = static_cast<size_t>(std::pow(std::uniform_real_distribution<double>(0, 1)(rng), 3) * words().size());
        s += (i ? " " : "") + words()[std::min(k, words().size() - 1)];
    }
    return s;
}

void bench_store(const std::string& dir) {
    using namespace mc;
    auto db = store::Db::open(dir + "/characters.db");
    if (!db) {
        std::fprintf(stderr, "%s\n", db.error().message.c_str());
        std::exit(1);
    }
    store::CharacterStore characters(**db);
    store::ChatStore chats(**db);
    store::MemoryStore memory(**db);
    Character c;
    c.name = "Mia";
    const std::string character = characters.create(c)->id;
    std::mt19937 rng(42);
    std::vector<std::string> chat_ids;
    const auto t0 = Clock::now();
    for (int chat = 0; chat < 100; ++chat) {
        const std::string id = chats.create(character, {})->first.id;
        chat_ids.push_back(id);
        std::vector<Message> batch;
        for (int i = 0; i < 10000; ++i) {
            Message m;
            m.role = i % 2 ? "assistant" : "user";
            m.content = sentence(rng, 24);
            m.created_at = 1700000000000LL + i;
            batch.push_back(std::move(m));
        }
        if (!chats.import_messages(id, std::move(batch))) std::exit(1);
    }
    const double fill_s = ms_since(t0) / 1000;
    std::vector<double> open_ms, search_ms;
    for (int i = 0; i < 200; ++i) {
        const std::string& id = chat_ids[rng() % chat_ids.size()];
        auto t = Clock::now();
        auto page = chats.messages(id, std::nullopt, 50);
        open_ms.push_back(ms_since(t));
        if (!page || page->size() != 50) std::exit(1);
        const std::string q = words()[rng() % 36] + " " + words()[rng() % 300];
        t = Clock::now();
        auto hits = memory.search_messages(id, q, 50);
        search_ms.push_back(ms_since(t));
        if (!hits) std::exit(1);
    }
    const Stats open = stats(open_ms), search = stats(search_ms);
    std::printf("store: 1,000,000 messages in 100 chats written in %.1f s (%.1f MB database)\n", fill_s,
                static_cast<double>(std::filesystem::file_size(dir + "/characters.db")) / 1e6);
    std::printf("%-52s %8.2f ms  max %8.2f ms   goal < 20 ms\n", "open a chat's last 50 messages, median", open.median, open.max);
    std::printf("%-52s %8.2f ms  max %8.2f ms   goal < 20 ms\n", "full-text search in a chat (2 words), median", search.median,
                search.max);
}

Json turn(int port, const std::string& chat, const std::string& content) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(600, 0);
    auto r = c.Post(("/api/chats/" + chat + "/messages").c_str(), Json{{"content", content}}.dump(), "application/json");
    if (!r || r->status != 200) return nullptr;
    const size_t at = r->body.rfind("event: done\ndata: ");
    if (at == std::string::npos) return nullptr;
    return Json::parse(r->body.substr(at + 18, r->body.find('\n', at + 18) - at - 18))["timings"];
}

void bench_overflow(const std::string& binary, const std::string& model, const std::string& dir) {
    constexpr int kContext = 2048;
    {
        FILE* f = std::fopen((dir + "/settings.json").c_str(), "w");
        std::fprintf(f, "%s", Json{{"llm", {{"model_path", model}, {"context_size", kContext}, {"max_tokens", 48}, {"threads", 2}}},
                                   {"memory", {{"auto_facts", false}}}}.dump().c_str());
        std::fclose(f);
    }
    bench::Process server;
    server.port = bench::free_port();
    const int port = server.port;
    server.pid = bench::spawn({binary, "serve", "--port", std::to_string(port), "--data-dir", dir + "/data", "--config",
                               dir + "/settings.json"},
                              dir + "/server.log");
    bench::wait_ready(port, "/api/health");
    httplib::Client c("127.0.0.1", port);
    const std::string character =
        Json::parse(c.Post("/api/characters", R"({"name":"Mia","description":"A painter from Hamburg who loves the sea.","first_mes":"Hallo!"})",
                           "application/json")->body)["id"];
    const std::string chat =
        Json::parse(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json")->body)["chat"]["id"];
    std::mt19937 rng(7);
    std::vector<double> evaluated, total;
    int summaries = 0;
    for (int i = 0; i < 220; ++i) {
        const Json t = turn(port, chat, sentence(rng, 30 + static_cast<int>(rng() % 30)));
        if (t.is_null()) {
            std::fprintf(stderr, "turn %d failed\n", i);
            break;
        }
        if (i >= 20) {
            evaluated.push_back(t["prompt_tokens"].get<double>() / kContext);
            total.push_back((t["prompt_tokens"].get<double>() + t["cached_tokens"].get<double>()) / kContext);
        }
        // The user reads the reply before writing again: background memory work runs meanwhile
        // (back to back, every turn would preempt it).
        for (int k = 0; k < 2000; ++k) {
            auto m = c.Get(("/api/chats/" + chat + "/memory").c_str());
            if (!m || Json::parse(m->body)["jobs"].empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    auto mem = c.Get(("/api/chats/" + chat + "/memory").c_str());
    if (mem) summaries = static_cast<int>(Json::parse(mem->body)["summaries_history"].size());
    server.stop();
    if (evaluated.empty()) return;
    const Stats e = stats(evaluated), t = stats(total);
    std::printf("overflow: 220 turns, context %d tokens, the last %zu turns measured, %d summary versions written\n", kContext,
                evaluated.size(), summaries);
    std::printf("%-52s %8.3f      max %8.3f       goal mean <= 0.25\n", "evaluated prompt tokens per turn / context, mean",
                e.mean, e.max);
    std::printf("%-52s %8.3f      max %8.3f\n", "whole prompt per turn / context (no reuse), mean", t.mean, t.max);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: memory_bench <mycandy> <tiny model.gguf>\n");
        return 2;
    }
    const std::string dir = std::filesystem::temp_directory_path() / ("mc-membench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    bench_store(dir);
    bench_overflow(argv[1], std::filesystem::absolute(argv[2]).string(), dir);
    std::filesystem::remove_all(dir);
    return 0;
}
