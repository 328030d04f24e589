// bench/chat_bench: measures our chat path against a raw libllama decode loop on the same model,
// threads and context, in one run. Prints ratios; see bench/README.md.
//   chat_bench <mycandy> <model.gguf> [threads]
// 1. Raw decode: llama_decode one token at a time, greedy, N tokens -> tokens/s.
// 2. Our SSE path: mycandy serve with the same model; a turn of N tokens read as SSE by a client
//    -> tokens/s between the first and the last token event.
// 3. TTFT: time from POST to the first token event at turn 1, and at a turn whose history holds
//    about 4k tokens (built with long user messages), with the same short message.
#include <fcntl.h>
#include <llama.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kDecodeTokens = 128;
constexpr int kContext = 8192;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

void quiet_log(ggml_log_level, const char*, void*) {}

// Tokens/s of a plain decode loop: the ceiling for any server on this machine.
double raw_decode(const std::string& model_path, int threads) {
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model* model = llama_model_load_from_file(model_path.c_str(), llama_model_default_params());
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = kContext;
    cp.n_batch = 512;
    cp.n_threads = cp.n_threads_batch = threads;
    llama_context* ctx = llama_init_from_model(model, cp);
    const llama_vocab* vocab = llama_model_get_vocab(model);
    std::vector<llama_token> prompt(64);
    const std::string text = "Hello, this is a short prompt to start decoding from.";
    prompt.resize(static_cast<size_t>(llama_tokenize(vocab, text.c_str(), static_cast<int32_t>(text.size()), prompt.data(),
                                                     64, true, true)));
    llama_decode(ctx, llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size())));
    llama_sampler* greedy = llama_sampler_init_greedy();
    const auto t0 = Clock::now();
    for (int i = 0; i < kDecodeTokens; ++i) {
        llama_token t = llama_sampler_sample(greedy, ctx, -1);
        llama_decode(ctx, llama_batch_get_one(&t, 1));
    }
    const double tps = kDecodeTokens / seconds_since(t0);
    llama_sampler_free(greedy);
    llama_free(ctx);
    llama_model_free(model);
    return tps;
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

struct Turn {
    double ttft = 0;        // POST -> first token event.
    double decode_tps = 0;  // Between the first and the last token events.
    int tokens = 0;
    Json timings;
};

Turn turn(int port, const std::string& chat, const std::string& content, int max_tokens) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(600, 0);
    Turn out;
    std::string buf, event;
    Clock::time_point first{}, last{};
    const auto start = Clock::now();
    int token_events = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/chats/" + chat + "/messages";
    req.body = Json{{"content", content}, {"sampling", {{"max_tokens", max_tokens}, {"temperature", 0.8}, {"seed", 1}}}}.dump();
    req.headers.emplace("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
        buf.append(d, n);
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (line.rfind("event: ", 0) == 0) {
                event = line.substr(7);
            } else if (line.rfind("data: ", 0) == 0) {
                if (event == "token") {
                    const auto now = Clock::now();
                    if (token_events++ == 0) first = now;
                    last = now;
                } else if (event == "done") {
                    out.timings = Json::parse(line.substr(6))["timings"];
                } else if (event == "error") {
                    std::fprintf(stderr, "chat_bench: the turn failed: %s\n", line.c_str());
                    std::exit(1);
                }
            }
        }
        return true;
    };
    auto res = c.send(req);
    if (!res || res->status != 200 || out.timings.is_null()) {
        std::fprintf(stderr, "chat_bench: turn failed (HTTP %d)\n", res ? res->status : 0);
        std::exit(1);
    }
    out.ttft = std::chrono::duration<double>(first - start).count();
    out.tokens = out.timings.value("predicted_tokens", 0);
    // The first token event carries the first token; the rate counts the ones after it.
    const double span = std::chrono::duration<double>(last - first).count();
    out.decode_tps = span > 0 ? (out.tokens - 1) / span : 0;
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: chat_bench <mycandy> <model.gguf> [threads]\n");
        return 2;
    }
    const std::string binary = argv[1];
    const std::string model = std::filesystem::absolute(argv[2]).string();
    const int threads = argc > 3 ? std::atoi(argv[3]) : static_cast<int>(std::thread::hardware_concurrency());

    std::vector<double> raw;
    for (int i = 0; i < 3; ++i) raw.push_back(raw_decode(model, threads));

    const std::string dir = std::filesystem::temp_directory_path() / ("mc-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    {
        FILE* f = std::fopen((dir + "/settings.json").c_str(), "w");
        std::fprintf(f, "%s", Json{{"llm", {{"model_path", model}, {"context_size", kContext}, {"threads", threads},
                                            {"repeat_penalty", 1.0}}}}.dump().c_str());
        std::fclose(f);
    }
    const int port = free_port();
    const pid_t pid = fork();
    if (pid == 0) {
        const int fd = ::open((dir + "/server.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execl(binary.c_str(), binary.c_str(), "serve", "--port", std::to_string(port).c_str(), "--data-dir",
              (dir + "/data").c_str(), "--config", (dir + "/settings.json").c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 3000; ++i) {
        auto r = c.Get("/api/health");
        if (r && r->status == 200 && Json::parse(r->body)["components"]["llm"]["state"] == "ready") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string character =
        Json::parse(c.Post("/api/characters", R"({"name":"Mia","description":"A painter from Hamburg.","first_mes":"Hi!"})",
                           "application/json")->body)["id"];
    auto new_chat = [&] {
        return Json::parse(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json")->body)["chat"]["id"]
            .get<std::string>();
    };

    // Decode through SSE: three fresh chats.
    std::vector<double> sse;
    for (int i = 0; i < 3; ++i) sse.push_back(turn(port, new_chat(), "Tell me a long story.", kDecodeTokens).decode_tps);

    // TTFT at turn 1 vs at ~4k tokens of history, three chats.
    std::string filler;
    for (int i = 0; i < 40; ++i) filler += "The harbour was quiet that morning and the gulls circled over the water. ";
    std::vector<double> ttft1, ttft4k, history_tokens, evaluated_4k;
    for (int run = 0; run < 3; ++run) {
        const std::string chat = new_chat();
        const Turn first = turn(port, chat, "How are you today?", 16);
        ttft1.push_back(first.ttft);
        Turn t;
        do {
            t = turn(port, chat, filler, 16);
        } while (t.timings["cached_tokens"].get<int>() + t.timings["prompt_tokens"].get<int>() < 4000);
        const Turn at4k = turn(port, chat, "How are you today?", 16);
        ttft4k.push_back(at4k.ttft);
        history_tokens.push_back(at4k.timings["cached_tokens"].get<int>() + at4k.timings["prompt_tokens"].get<int>());
        evaluated_4k.push_back(at4k.timings["prompt_tokens"].get<int>());
    }
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(dir);

    auto range = [](const std::vector<double>& v) {
        char b[64];
        std::snprintf(b, sizeof b, "%.2f-%.2f", *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
        return std::string(b);
    };
    std::printf("model %s, %d threads, context %d, median of 3 (min-max)\n", std::filesystem::path(model).filename().c_str(),
                threads, kContext);
    std::printf("%-48s %10s %14s\n", "measure", "median", "min-max");
    std::printf("%-48s %10.2f %14s\n", "raw libllama decode, tokens/s", median(raw), range(raw).c_str());
    std::printf("%-48s %10.2f %14s\n", "our SSE turn decode, tokens/s", median(sse), range(sse).c_str());
    std::printf("%-48s %10.3f %14s   goal >= 0.97\n", "ratio SSE / raw", median(sse) / median(raw), "");
    std::printf("%-48s %10.3f %14s\n", "TTFT turn 1, s", median(ttft1), range(ttft1).c_str());
    std::printf("%-48s %10.3f %14s\n", "TTFT with ~4k tokens of history, s", median(ttft4k), range(ttft4k).c_str());
    std::printf("%-48s %10.0f %14s\n", "  history tokens in that prompt", median(history_tokens), range(history_tokens).c_str());
    std::printf("%-48s %10.0f %14s\n", "  tokens evaluated for that turn", median(evaluated_4k), range(evaluated_4k).c_str());
    std::printf("%-48s %10.3f %14s   goal <= 1.3\n", "ratio TTFT 4k / TTFT turn 1", median(ttft4k) / median(ttft1), "");
    return 0;
}
