// bench/call_bench: a voice call's own overhead, measured against the real server with the test
// models (tiny random llama, random Whisper tiny, the loudness VAD model, espeak-ng).
//   call_bench <mycandy> <llm.gguf> <whisper.bin> <vad.bin> [utterances]
// A WebSocket client streams espeak-ng speech in real time, 40 ms frames, as a browser does. Prints:
// 1. The pipeline's own overhead per answer: end of speech found → the first sentence's audio queued
//    for the client, minus the time inside speech recognition, the model's first sentence and its
//    synthesis (the server's figures from the `done` event's `pipeline`), p50 and max. Goal ≤ 100 ms
//    at p50. Also the client's view: `utterance_end` received → first audio byte received.
// 2. Barge-in: speech streamed while the reply is spoken; speech found → reply stopped and stored
//    (the server's `stop_ms`), and the client's `speech_start` → `done` time. Goal ≤ 200 ms. The
//    VAD's confirmation (call.min_speech_ms of speech before it counts) comes before this and is
//    printed beside it.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "bench_util.hpp"
#include "core/process.hpp"
#include "http/websocket.hpp"

namespace {

using bench::Clock;
using bench::Json;
using mc::http::WsOpcode;

std::vector<int16_t> say(const std::string& text, double lead, double tail) {
    auto r = mc::run_process({"espeak-ng", "-v", "en", "--stdout", text});
    std::vector<int16_t> out(static_cast<size_t>(lead * 16000), 0);
    if (!r || r->exit_code != 0 || r->out.size() < 44) return {};
    const std::string& w = r->out;
    const int rate = static_cast<uint8_t>(w[24]) | static_cast<uint8_t>(w[25]) << 8;
    const size_t n = (w.size() - 44) / 2;
    for (size_t k = 0;; ++k) {
        const size_t i = static_cast<size_t>(static_cast<double>(k) * rate / 16000);
        if (i >= n) break;
        out.push_back(static_cast<int16_t>(static_cast<uint8_t>(w[44 + 2 * i]) | static_cast<uint8_t>(w[45 + 2 * i]) << 8));
    }
    out.resize(out.size() + static_cast<size_t>(tail * 16000), 0);
    return out;
}

struct Event {
    Json json;
    Clock::time_point at;
    size_t binary = 0;
};

class Caller {
public:
    explicit Caller(std::unique_ptr<mc::http::WebSocketClient> ws) : m_ws(std::move(ws)) {}
    std::vector<Event> events;
    Clock::time_point first_binary{};

    void pump(int timeout_ms) {
        auto m = m_ws->read(timeout_ms);
        if (!m || !*m) return;
        if ((*m)->op == WsOpcode::Binary) {
            if (!events.empty()) events.back().binary = (*m)->payload.size();
            return;
        }
        events.push_back({Json::parse((*m)->payload, nullptr, false), Clock::now(), 0});
    }
    void stream(const std::vector<int16_t>& pcm) {
        const auto t0 = Clock::now();
        for (size_t at = 0, i = 0; at < pcm.size(); at += 640, ++i) {
            const size_t n = std::min<size_t>(640, pcm.size() - at);
            m_ws->send(WsOpcode::Binary, std::string_view(reinterpret_cast<const char*>(pcm.data() + at), n * 2));
            const auto due = t0 + std::chrono::milliseconds(40 * (i + 1));
            while (Clock::now() < due) pump(static_cast<int>(std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count())));
        }
    }
    // Index of the first event of `type` at or after `from` (reading on until `timeout_ms`).
    size_t wait(const std::string& type, size_t from, int timeout_ms = 120000) {
        const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            for (size_t i = from; i < events.size(); ++i) {
                if (events[i].json.value("type", "") == type) return i;
            }
            if (Clock::now() > until) return SIZE_MAX;
            pump(100);
        }
    }
    void send_text(const std::string& s) { m_ws->send(WsOpcode::Text, s); }

private:
    std::unique_ptr<mc::http::WebSocketClient> m_ws;
};

double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: call_bench <mycandy> <llm.gguf> <whisper.bin> <vad.bin> [utterances]\n");
        return 2;
    }
    const int rounds = argc > 5 ? std::atoi(argv[5]) : 6;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    char tmpl[] = "/tmp/mc-call-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    auto abs = [](const char* p) { return std::filesystem::absolute(p).string(); };
    const Json settings = {{"llm", {{"model_path", abs(argv[2])}, {"max_tokens", 32}, {"threads", 1}}},
                           {"stt", {{"model_path", abs(argv[3])}, {"vad_model_path", abs(argv[4])}, {"threads", 1}}},
                           {"media", {{"tts_enabled", true}, {"tts_engine", "espeak"}, {"image_backend", "off"}}},
                           {"memory", {{"auto_summary", false}}}};
    bench::write_text(dir + "/settings.json", settings.dump());
    bench::Process server;
    server.port = bench::free_port();
    server.pid = bench::spawn({argv[1], "serve", "--port", std::to_string(server.port), "--data-dir", dir + "/data", "--config",
                               dir + "/settings.json"},
                              dir + "/server.log");
    if (!bench::wait_ready(server.port, "/api/health")) {
        std::fprintf(stderr, "the server did not start (log: %s/server.log)\n", dir.c_str());
        return 1;
    }
    httplib::Client c("127.0.0.1", server.port);
    const Json character = Json::parse(c.Post("/api/characters", Json{{"name", "Mia"}}.dump(), "application/json")->body);
    const Json chat = Json::parse(c.Post("/api/chats", Json{{"character_id", character["id"]}}.dump(), "application/json")->body);
    const std::string chat_id = chat["chat"]["id"];
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port);
    auto open = [&]() -> std::unique_ptr<Caller> {
        auto ws = mc::http::WebSocketClient::connect(base, "/api/chats/" + chat_id + "/call", 5000);
        if (!ws) {
            std::fprintf(stderr, "call refused: %s\n", ws.error().message.c_str());
            return nullptr;
        }
        return std::make_unique<Caller>(std::move(*ws));
    };
    const std::vector<std::string> lines = {"Hello Mia, how was your day?", "Tell me about the harbour.", "What are you painting now?",
                                            "Do you like the rain?", "Shall we go for a walk?", "Good night, sleep well."};

    // 1. Overhead per answer.
    std::vector<double> overhead, end_to_audio, client_view, stt, first_sentence, tts, vad;
    {
        auto call = open();
        if (!call) return 1;
        size_t from = 0;
        for (int r = 0; r < rounds; ++r) {
            call->stream(say(lines[static_cast<size_t>(r) % lines.size()], 0.3, 0.8));
            const size_t end = call->wait("utterance_end", from);
            const size_t done = call->wait("done", from);
            if (end == SIZE_MAX || done == SIZE_MAX) {
                std::fprintf(stderr, "round %d: no answer\n", r);
                continue;
            }
            const Json p = call->events[done].json.value("pipeline", Json());
            size_t audio = SIZE_MAX;
            for (size_t i = end; i < done && audio == SIZE_MAX; ++i) {
                if (call->events[i].json.value("type", "") == "audio") audio = i;
            }
            from = done + 1;
            if (!p.is_object() || audio == SIZE_MAX) continue;
            const double total = p.value("end_to_audio_ms", 0.0);
            const double parts = p.value("stt_ms", 0.0) + p.value("first_sentence_ms", 0.0) + p.value("tts_ms", 0.0);
            overhead.push_back(total - parts);
            end_to_audio.push_back(total);
            stt.push_back(p.value("stt_ms", 0.0));
            first_sentence.push_back(p.value("first_sentence_ms", 0.0));
            tts.push_back(p.value("tts_ms", 0.0));
            vad.push_back(p.value("vad_ms", 0.0));
            client_view.push_back(ms(call->events[end].at, call->events[audio].at));
        }
        call->send_text(R"({"type":"hangup"})");
        call->wait("ended", 0, 5000);
    }
    std::printf("Voice call, test models (tiny llama, Whisper tiny shape, loudness VAD, espeak-ng), %zu answers\n", overhead.size());
    std::printf("| measure | p50 | range | goal |\n|---|---|---|---|\n");
    std::printf("| end of speech found -> first audio queued, ms | %.1f | %s | |\n", bench::median(end_to_audio), bench::range(end_to_audio, "%.1f").c_str());
    std::printf("|   inside speech recognition, ms | %.1f | %s | |\n", bench::median(stt), bench::range(stt, "%.1f").c_str());
    std::printf("|   inside the model's first sentence, ms | %.1f | %s | |\n", bench::median(first_sentence), bench::range(first_sentence, "%.1f").c_str());
    std::printf("|   inside its synthesis, ms | %.1f | %s | |\n", bench::median(tts), bench::range(tts, "%.1f").c_str());
    std::printf("| **pipeline's own overhead**, ms | **%.1f** | %s | <= 100 |\n", bench::median(overhead), bench::range(overhead, "%.1f").c_str());
    std::printf("| VAD inference for the utterance (before the end was found), ms | %.1f | %s | |\n", bench::median(vad), bench::range(vad, "%.1f").c_str());
    std::printf("| client: utterance_end received -> first audio received, ms | %.1f | %s | |\n", bench::median(client_view), bench::range(client_view, "%.1f").c_str());

    // 2. Barge-in during a long spoken reply.
    c.Patch("/api/settings", Json{{"llm", {{"max_tokens", 1500}}}}.dump(), "application/json");
    std::vector<double> stop_ms, client_stop;
    for (int r = 0; r < rounds; ++r) {
        // A call per round: hanging up stops the answer to the interruption, which would be long.
        auto call = open();
        if (!call) return 1;
        call->stream(say("Tell me a long story, please.", 0.3, 0.8));
        const size_t audio = call->wait("audio", 0, 30000);
        if (audio == SIZE_MAX) std::fprintf(stderr, "round %d: the reply had no sentence to speak (the random model ended it)\n", r);
        if (audio != SIZE_MAX) {
            call->stream(say("Wait, stop.", 0.0, 0.3));
            const size_t barge = call->wait("speech_start", audio, 10000);
            const size_t stopped = barge == SIZE_MAX ? SIZE_MAX : call->wait("done", barge, 10000);
            if (stopped != SIZE_MAX && call->events[stopped].json.value("interrupted", false)) {
                stop_ms.push_back(call->events[stopped].json.value("stop_ms", 0.0));
                client_stop.push_back(ms(call->events[barge].at, call->events[stopped].at));
            } else {
                std::fprintf(stderr, "round %d: the reply was not interrupted\n", r);
            }
        }
        call->send_text(R"({"type":"hangup"})");
        call->wait("ended", 0, 10000);
        for (int i = 0; i < 200; ++i) {  // Until the chat has no call (the hang-up's end runs on the server).
            auto st = c.Get(("/api/chats/" + chat_id).c_str());
            if (st && Json::parse(st->body, nullptr, false).value("call", Json(1)).is_null()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    const Json s = Json::parse(c.Get("/api/settings")->body, nullptr, false);
    std::printf("\nBarge-in, %zu interruptions of a spoken reply\n| measure | p50 | range | goal |\n|---|---|---|---|\n", stop_ms.size());
    std::printf("| speech found -> reply stopped and stored (server), ms | %.1f | %s | <= 200 |\n", bench::median(stop_ms), bench::range(stop_ms, "%.1f").c_str());
    std::printf("| client: speech_start received -> done received, ms | %.1f | %s | |\n", bench::median(client_stop), bench::range(client_stop, "%.1f").c_str());
    std::printf("| before that: speech must last call.min_speech_ms to count, ms | %d | | |\n",
                s.is_object() && s.contains("call") ? s["call"].value("min_speech_ms", 0) : 0);
    server.stop();
    std::system(("rm -rf " + dir).c_str());
    return overhead.empty() || stop_ms.empty() ? 1 : 0;
}
