// RPC: decode speed of the same model with its layers on two ggml-rpc-server processes on loopback
// ports (llm.rpc_servers; loopback shows the protocol's own cost, not a network's) against the
// in-process engine, in one run; and the time from the settings change to the model being ready.
#include "bench_util.hpp"

#include <cstdio>
#include <filesystem>

using namespace bench;

namespace {

struct Run {
    std::vector<double> decode_tps, ttft_ms;
    double ready_ms = 0;
    std::string error;
};

// One mycandy with `llm` settings; `turns` greedy turns of `tokens` each in fresh chats.
Run measure(const std::string& binary, const std::string& dir, const Json& llm, int turns, int tokens) {
    Run out;
    std::filesystem::create_directories(dir);
    write_text(dir + "/settings.json", Json{{"llm", llm}, {"memory", {{"auto_summary", false}, {"auto_facts", false}}},
                                            {"media", {{"tts_enabled", false}}}}
                                           .dump());
    Process server;
    server.port = free_port();
    const auto started = Clock::now();
    server.pid = spawn({binary, "serve", "--port", std::to_string(server.port), "--data-dir", dir + "/data", "--config",
                        dir + "/settings.json"},
                       dir + "/server.log");
    if (!wait_ready(server.port, "/api/health", 300)) {
        out.error = "not ready (see " + dir + "/server.log)";
        return out;
    }
    out.ready_ms = ms_since(started);
    httplib::Client c("127.0.0.1", server.port);
    const Json character = Json::parse(c.Post("/api/characters", R"({"name":"Mia"})", "application/json")->body);
    for (int i = 0; i <= turns; ++i) {  // Turn 0 warms up.
        const Json chat = Json::parse(c.Post("/api/chats", Json{{"character_id", character["id"]}}.dump(), "application/json")->body);
        const StreamResult r = stream_post(server.port, "/api/chats/" + chat["chat"]["id"].get<std::string>() + "/messages",
                                           Json{{"content", "Tell me a long story about the harbour."},
                                                {"sampling", {{"temperature", 0}, {"max_tokens", tokens}}}},
                                           "mycandy");
        if (!r.final.contains("timings")) {
            out.error = r.final.dump() + r.raw;
            return out;
        }
        if (i == 0) continue;
        const Json& t = r.final["timings"];
        const double ms = t.value("predicted_ms", 0.0);
        const int n = t.value("predicted_tokens", 0);
        out.decode_tps.push_back(ms > 0 && n > 1 ? (n - 1) * 1000.0 / ms : r.decode_tps);
        out.ttft_ms.push_back(r.ttft_ms);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: rpc_bench <mycandy> <ggml-rpc-server> <model.gguf> <threads> [turns] [tokens]\n");
        return 2;
    }
    const std::string binary = argv[1], rpc = argv[2], model = argv[3];
    const int threads = std::atoi(argv[4]);
    const int turns = argc > 5 ? std::atoi(argv[5]) : 3;
    const int tokens = argc > 6 ? std::atoi(argv[6]) : 64;
    char tmpl[] = "/tmp/mc-rpc-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);

    const Json base = {{"model_path", model}, {"context_size", 2048}, {"threads", threads}, {"max_tokens", tokens}};
    const Run local = measure(binary, dir + "/local", base, turns, tokens);

    // Two servers with a thread each (with `threads` cores, as the local engine has).
    Process a, b;
    a.port = free_port();
    b.port = free_port();
    const std::string t_each = std::to_string(std::max(1, threads / 2));
    a.pid = spawn({rpc, "-H", "127.0.0.1", "-p", std::to_string(a.port), "-t", t_each}, dir + "/rpc-a.log");
    b.pid = spawn({rpc, "-H", "127.0.0.1", "-p", std::to_string(b.port), "-t", t_each}, dir + "/rpc-b.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Json over = base;
    over["rpc_servers"] = "127.0.0.1:" + std::to_string(a.port) + ",127.0.0.1:" + std::to_string(b.port);
    const Run remote = measure(binary, dir + "/rpc", over, turns, tokens);

    std::printf("models over RPC (%s, %d turns of %d tokens, greedy; local: %d threads; RPC: two ggml-rpc-server on loopback, %s thread(s) each)\n",
                model.c_str(), turns, tokens, threads, t_each.c_str());
    if (!local.error.empty() || !remote.error.empty()) {
        std::printf("  error: local %s / rpc %s\n", local.error.c_str(), remote.error.c_str());
        return 1;
    }
    std::printf("  decode tokens/s: local %.2f (%s), through two RPC servers %.2f (%s) = %.3f of local\n", median(local.decode_tps),
                range(local.decode_tps).c_str(), median(remote.decode_tps), range(remote.decode_tps).c_str(),
                median(remote.decode_tps) / median(local.decode_tps));
    std::printf("  time to first token: local %.0f ms, RPC %.0f ms; start to ready: local %.0f ms, RPC %.0f ms (model sent to the servers)\n",
                median(local.ttft_ms), median(remote.ttft_ms), local.ready_ms, remote.ready_ms);
    return 0;
}
