// bench/soak_bench: a long run of real turns against one server process, watching for leaks.
//   soak_bench <mycandy> <tiny model.gguf> [turns=1000]
// Turns rotate over 8 chats (so KV states are stashed, restored and saved), with a prompt preview,
// a message edit and a settings read between turns, as a busy UI would. RSS and open file
// descriptors of the server are read from /proc at checkpoints. Warm-up ends at 30% of the run
// (turn 300 of 1000): by then every chat's history has outgrown the 1024-token context, so prompts,
// KV states and SQLite's page cache have reached their working size.
// Goal (issue 9): RSS growth after warm-up <= 5%, no growth in open descriptors.

#include <dirent.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

using bench::Json;

namespace {

long rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

// Resident memory by kind, from /proc/PID/smaps: thread stacks (8 MiB mappings: each HTTP worker
// touches its stack when it serves; workers start as connections need them, idle ones end), the malloc heap
// ([heap] and glibc's 64 MiB arenas), and the rest (code, model, SQLite's mappings).
struct Breakdown {
    long stacks_kb = 0, heap_kb = 0, other_kb = 0;
};

Breakdown rss_breakdown(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
    std::string line, name;
    long size = 0;
    Breakdown b;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string first;
        f >> first;
        const bool header = first.find('-') != std::string::npos &&
                            first.find_first_not_of("0123456789abcdef-") == std::string::npos;
        if (header) {
            std::string perms, offset, dev, inode;
            f >> perms >> offset >> dev >> inode;
            name.clear();
            f >> name;
            continue;
        }
        if (first == "Size:") f >> size;
        if (first == "Rss:") {
            long rss = 0;
            f >> rss;
            if (size == 8192) b.stacks_kb += rss;
            else if (name == "[heap]" || (name.empty() && size > 60000 && size <= 65536)) b.heap_kb += rss;
            else b.other_kb += rss;
        }
    }
    return b;
}

int open_fds(pid_t pid) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        (void)e;
        ++n;
    }
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: soak_bench <mycandy> <tiny model.gguf> [turns]\n");
        return 2;
    }
    const int turns = argc > 3 ? std::max(200, std::atoi(argv[3])) : 1000;
    const std::string dir = std::filesystem::temp_directory_path() / ("mc-soak-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir + "/config");
    bench::write_text(dir + "/config/settings.json",
                      Json{{"llm", {{"model_path", std::filesystem::absolute(argv[2]).string()}, {"context_size", 1024}, {"max_tokens", 24}, {"threads", 2}}},
                           {"memory", {{"auto_facts", false}}}}
                          .dump());
    bench::Process server;
    server.port = bench::free_port();
    server.pid = bench::spawn({argv[1], "serve", "--port", std::to_string(server.port), "--data-dir", dir + "/data",
                               "--config", dir + "/config/settings.json"},
                              dir + "/server.log");
    if (!bench::wait_ready(server.port, "/api/health")) {
        std::fprintf(stderr, "soak: the server did not start (see %s/server.log)\n", dir.c_str());
        return 1;
    }
    httplib::Client c("127.0.0.1", server.port);
    const std::string character =
        Json::parse(c.Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json")->body)["id"];
    std::vector<std::string> chats;
    for (int i = 0; i < 8; ++i) {
        chats.push_back(Json::parse(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json")->body)["chat"]["id"]);
    }
    long rss_warm = 0, rss_peak = 0;
    int fds_warm = 0, fds_peak = 0, failed = 0;
    const int warm_up = turns * 3 / 10;
    const auto started = bench::Clock::now();
    for (int t = 1; t <= turns; ++t) {
        const std::string& chat = chats[static_cast<size_t>(t) % chats.size()];
        auto r = bench::stream_post(server.port, "/api/chats/" + chat + "/messages",
                                    Json{{"content", "Erzähl mir etwas über Runde " + std::to_string(t)}, {"speak", false}}, "mycandy");
        if (!r.final.is_object() || !r.final.contains("message")) ++failed;
        (void)c.Get(("/api/chats/" + chat + "/prompt").c_str());
        (void)c.Get("/api/settings");
        if (r.final.is_object() && r.final.contains("message")) {
            (void)c.Patch(("/api/messages/" + r.final["message"]["id"].get<std::string>()).c_str(),
                          Json{{"content", "bearbeitet " + std::to_string(t)}}.dump(), "application/json");
        }
        if (t % (turns / 10) == 0) {
            const Breakdown b = rss_breakdown(server.pid);
            std::printf("  turn %4d: RSS %.1f MB (thread stacks %.1f, heap %.1f, other %.1f), %d open descriptors\n", t,
                        rss_kb(server.pid) / 1024.0, b.stacks_kb / 1024.0, b.heap_kb / 1024.0, b.other_kb / 1024.0,
                        open_fds(server.pid));
            std::fflush(stdout);
        }
        if (t == warm_up) {
            rss_warm = rss_kb(server.pid);
            fds_warm = open_fds(server.pid);
        }
        if (t > warm_up) {
            rss_peak = std::max(rss_peak, rss_kb(server.pid));
            fds_peak = std::max(fds_peak, open_fds(server.pid));
        }
    }
    const long rss_end = rss_kb(server.pid);
    const int fds_end = open_fds(server.pid);
    const double seconds = bench::ms_since(started) / 1000;
    std::printf("soak: %d turns over 8 chats in %.0f s (%d failed)\n", turns, seconds, failed);
    std::printf("  RSS after warm-up (turn %d) %.1f MB, at the end %.1f MB, peak %.1f MB: growth %.3f (goal <= 0.05)\n",
                warm_up, rss_warm / 1024.0, rss_end / 1024.0, rss_peak / 1024.0,
                static_cast<double>(rss_end - rss_warm) / static_cast<double>(rss_warm));
    std::printf("  open descriptors after warm-up %d, at the end %d, peak %d (goal: no growth)\n", fds_warm, fds_end, fds_peak);
    server.stop();
    std::filesystem::remove_all(dir);
    return failed == 0 ? 0 : 1;
}
