// bench/voice_bench: speech during a turn, measured in one run against the real server.
//   voice_bench <mycandy> <model.gguf> <threads> [turns]
// Prints: the speech lag (a sentence's `speech` event — sent right after its last token — to its
// `audio` event: synthesized and stored), per sentence, with espeak-ng; and the chat model's decode
// speed with speech on ÷ off (same prompts and seeds, turns alternated so drift hits both).
#include <cstdio>
#include <map>

#include "bench_util.hpp"

namespace {

using bench::Clock;
using bench::Json;

struct Turn {
    double decode_tps = 0;  // From the done event's timings (the server's own count).
    std::vector<double> lag_ms;
    std::vector<size_t> sentence_chars;
    int audio_errors = 0;
};

Turn run_turn(int port, const std::string& chat, const std::string& content, bool speak, int seed) {
    Turn out;
    std::map<int, Clock::time_point> spoken_at;
    const Json body = {{"content", content}, {"speak", speak}, {"sampling", {{"seed", seed}}}};
    bench::stream_post(port, "/api/chats/" + chat + "/messages", body, "mycandy", [&](const std::string& event, const Json& j) {
        if (event == "speech") {
            spoken_at[j.value("index", 0)] = Clock::now();
            out.sentence_chars.push_back(j.value("text", "").size());
        } else if (event == "audio") {
            auto it = spoken_at.find(j.value("index", -1));
            if (it != spoken_at.end()) out.lag_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - it->second).count());
        } else if (event == "audio_error") {
            out.audio_errors++;
        } else if (event == "done") {
            const Json& t = j["timings"];
            const double ms = t.value("predicted_ms", 0.0);
            if (ms > 0) out.decode_tps = t.value("predicted_tokens", 0) * 1000.0 / ms;
        }
    });
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: voice_bench <mycandy> <model.gguf> <threads> [turns]\n");
        return 2;
    }
    const std::string binary = argv[1], model = argv[2], threads = argv[3];
    const int turns = argc > 4 ? std::atoi(argv[4]) : 6;
    char tmpl[] = "/tmp/mc-voice-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    bench::write_text(dir + "/settings.json",
                      Json{{"llm", {{"model_path", model}, {"context_size", 4096}, {"max_tokens", 128}, {"threads", std::stoi(threads)}}},
                           {"media", {{"tts_engine", "espeak"}}}}
                          .dump());
    bench::Process server;
    server.port = bench::free_port();
    server.pid = bench::spawn({binary, "serve", "--port", std::to_string(server.port), "--data-dir", dir + "/data", "--config",
                               dir + "/settings.json"},
                              dir + "/server.log");
    if (!bench::wait_ready(server.port, "/api/health")) {
        std::fprintf(stderr, "voice_bench: the server did not become ready (see %s/server.log)\n", dir.c_str());
        return 1;
    }
    httplib::Client c("127.0.0.1", server.port);
    const Json character = Json::parse(c.Post("/api/characters", Json{{"name", "Mia"}, {"voice", {{"language", "en"}}}}.dump(),
                                              "application/json")->body);
    auto new_chat = [&] {
        const Json chat = Json::parse(c.Post("/api/chats", Json{{"character_id", character["id"]}}.dump(), "application/json")->body);
        return chat.contains("id") ? chat["id"].get<std::string>() : chat["chat"]["id"].get<std::string>();
    };
    const char* prompts[] = {"Tell me about your day at the harbour.", "What did you paint this morning?",
                             "Describe the city at night.", "What is your favourite food?"};
    // Warm-up (model pages, espeak's voice data).
    run_turn(server.port, new_chat(), prompts[0], true, 1);

    std::vector<double> on_tps, off_tps, lags;
    std::vector<double> chars;
    int errors = 0;
    for (int i = 0; i < turns; ++i) {
        const std::string prompt = prompts[i % 4];
        // Same prompt and seed both ways, each in a fresh chat; the order alternates.
        for (bool speak : {i % 2 == 0, i % 2 != 0}) {
            Turn t = run_turn(server.port, new_chat(), prompt, speak, 100 + i);
            (speak ? on_tps : off_tps).push_back(t.decode_tps);
            if (speak) {
                lags.insert(lags.end(), t.lag_ms.begin(), t.lag_ms.end());
                for (size_t n : t.sentence_chars) chars.push_back(static_cast<double>(n));
                errors += t.audio_errors;
            }
        }
    }
    server.stop();
    std::printf("speech during a turn (espeak-ng, %s threads, %d turns each way, model %s)\n", threads.c_str(), turns, model.c_str());
    std::printf("  speech lag, sentence complete -> audio ready: median %.0f ms (range %s ms, %zu sentences of %s chars; goal median <= 150 ms)\n",
                bench::median(lags), bench::range(lags, "%.0f").c_str(), lags.size(), bench::range(chars, "%.0f").c_str());
    std::printf("  decode tokens/s with speech on %.2f / off %.2f = %.3f (goal >= 0.9)\n", bench::median(on_tps), bench::median(off_tps),
                bench::median(off_tps) > 0 ? bench::median(on_tps) / bench::median(off_tps) : 0.0);
    if (errors) std::printf("  audio errors: %d\n", errors);
    return 0;
}
