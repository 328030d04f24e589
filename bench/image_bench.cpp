// bench/image_bench: pictures during a turn, measured in one run against the real server and the
// tests' stand-in ComfyUI (our real client talks to it over HTTP and its WebSocket).
//   image_bench <mycandy> <model.gguf> <threads> [turns]
// Prints: (1) the time from the token that completes a [GENERATE_IMAGE] tag (the newline after its
// prompt, written by a stand-in model that then pauses) to ComfyUI receiving /prompt; (2) the chat
// model's decode speed while a picture renders ÷ without (same prompts and seeds, order alternated;
// the stand-in sends ComfyUI's progress messages every 100 ms meanwhile).
#include <cstdio>
#include <mutex>

#include "bench_util.hpp"
#include "standin_comfyui.hpp"

namespace {

using bench::Clock;
using bench::Json;

// A remote model that writes a reply with a picture tag, noting when the tag's newline was sent.
class TagModel {
public:
    TagModel() {
        m_server.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(R"({"object":"list","data":[{"id":"standin","object":"model"}]})", "application/json");
        });
        m_server.Post("/v1/chat/completions", [this](const httplib::Request&, httplib::Response& res) {
            res.set_chunked_content_provider("text/event-stream", [this](size_t, httplib::DataSink& sink) {
                auto piece = [&](const std::string& text) {
                    const Json chunk = {{"choices", {{{"index", 0}, {"delta", {{"content", text}}}}}}};
                    const std::string s = "data: " + chunk.dump() + "\n\n";
                    return sink.write(s.data(), s.size());
                };
                for (const char* w : {"Look", " at", " this!", " [GENERATE", "_IMAGE]", " smiling,", " waving,", " red", " dress"}) piece(w);
                {
                    std::lock_guard lock(m_mu);
                    m_newline_at = Clock::now();
                }
                piece("\n");
                std::this_thread::sleep_for(std::chrono::milliseconds(200));  // The model "thinks" on.
                piece("Do you like it?");
                const std::string end = "data: " + Json{{"choices", {{{"index", 0}, {"delta", Json::object()}, {"finish_reason", "stop"}}}}}.dump() +
                                        "\n\ndata: [DONE]\n\n";
                sink.write(end.data(), end.size());
                sink.done();
                return true;
            });
        });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
    }
    ~TagModel() {
        m_server.stop();
        m_thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    Clock::time_point newline_at() {
        std::lock_guard lock(m_mu);
        return m_newline_at;
    }

private:
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
    std::mutex m_mu;  // Guards m_newline_at.
    Clock::time_point m_newline_at{};
};

struct Server {
    bench::Process process;
    std::string dir;
    bool start(const std::string& binary, const Json& settings, const char* name) {
        char tmpl[] = "/tmp/mc-image-bench-XXXXXX";
        dir = mkdtemp(tmpl);
        bench::write_text(dir + "/settings.json", settings.dump());
        process.port = bench::free_port();
        process.pid = bench::spawn({binary, "serve", "--port", std::to_string(process.port), "--data-dir", dir + "/data", "--config",
                                    dir + "/settings.json"},
                                   dir + "/server.log");
        if (!bench::wait_ready(process.port, "/api/health")) {
            std::fprintf(stderr, "image_bench: the %s server did not become ready (see %s/server.log)\n", name, dir.c_str());
            return false;
        }
        return true;
    }
    std::string chat(httplib::Client& c, const std::string& character) {
        const Json j = Json::parse(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json")->body);
        return j["chat"]["id"];
    }
};

Json get(httplib::Client& c, const std::string& path) { return Json::parse(c.Get(path.c_str())->body, nullptr, false); }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: image_bench <mycandy> <model.gguf> <threads> [turns]\n");
        return 2;
    }
    const std::string binary = argv[1], model = argv[2], threads = argv[3];
    const int turns = argc > 4 ? std::atoi(argv[4]) : 6;

    // (1) Tag -> submission.
    std::vector<double> latency;
    {
        TagModel llm;
        mc::test::StandinComfyUi::Options o;
        o.steps = 1;
        mc::test::StandinComfyUi comfy(o);
        Server s;
        // Memory jobs off: they would ask the stand-in model too and move its newline time.
        if (!s.start(binary, Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm.url()}}},
                                  {"memory", {{"auto_summary", false}, {"auto_facts", false}}},
                                  {"media", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}, {"tts_enabled", false}}}},
                     "remote")) {
            return 1;
        }
        httplib::Client c("127.0.0.1", s.process.port);
        const std::string character = Json::parse(c.Post("/api/characters", R"({"name":"Mia","appearance":"1girl"})", "application/json")->body)["id"];
        for (int i = 0; i < 20 + 1; ++i) {
            const size_t before = comfy.prompt_times().size();
            bench::stream_post(s.process.port, "/api/chats/" + s.chat(c, character) + "/messages", Json{{"content", "A picture?"}}, "mycandy");
            const auto times = comfy.prompt_times();
            if (times.size() != before + 1) {
                std::fprintf(stderr, "image_bench: no /prompt for turn %d (see %s/server.log)\n", i, s.dir.c_str());
                return 1;
            }
            if (i > 0) latency.push_back(std::chrono::duration<double, std::milli>(times.back() - llm.newline_at()).count());  // 0: warm-up.
        }
        s.process.stop();
    }

    // (2) Decode with a picture rendering meanwhile ÷ without.
    std::vector<double> on_tps, off_tps;
    {
        mc::test::StandinComfyUi::Options o;
        o.steps = 1000000;
        o.step_time = std::chrono::milliseconds(100);
        mc::test::StandinComfyUi comfy(o);
        Server s;
        if (!s.start(binary, Json{{"llm", {{"model_path", model}, {"context_size", 4096}, {"max_tokens", 128}, {"threads", std::stoi(threads)}}},
                                  {"memory", {{"auto_summary", false}, {"auto_facts", false}}},
                                  {"media", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}, {"tts_enabled", false},
                                             {"image_instruct", false}}}},
                     "embedded")) {
            return 1;
        }
        httplib::Client c("127.0.0.1", s.process.port);
        const std::string character = Json::parse(c.Post("/api/characters", R"({"name":"Mia","appearance":"1girl"})", "application/json")->body)["id"];
        const char* prompts[] = {"Tell me about your day at the harbour.", "What did you paint this morning?",
                                 "Describe the city at night.", "What is your favourite food?"};
        auto decode = [&](const std::string& prompt, int seed) {
            double tps = 0;
            bench::stream_post(s.process.port, "/api/chats/" + s.chat(c, character) + "/messages",
                               Json{{"content", prompt}, {"sampling", {{"seed", seed}}}}, "mycandy", [&](const std::string& event, const Json& j) {
                                   if (event != "done") return;
                                   const double ms = j["timings"].value("predicted_ms", 0.0);
                                   if (ms > 0) tps = j["timings"].value("predicted_tokens", 0) * 1000.0 / ms;
                               });
            return tps;
        };
        decode(prompts[0], 1);  // Warm-up.
        for (int i = 0; i < turns; ++i) {
            for (bool rendering : {i % 2 == 0, i % 2 != 0}) {
                std::string job;
                if (rendering) {
                    const Json r = Json::parse(c.Post("/api/images", Json{{"character_id", character}, {"prompt", "waving"}}.dump(), "application/json")->body);
                    job = r["job"]["id"];
                    // Wait until ComfyUI reports progress: the job is following its socket.
                    const auto until = Clock::now() + std::chrono::seconds(30);
                    while (get(c, "/api/jobs/" + job).value("progress", 0.0) <= 0.05 && Clock::now() < until) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    }
                }
                (rendering ? on_tps : off_tps).push_back(decode(prompts[i % 4], 100 + i));
                if (rendering) {
                    if (get(c, "/api/jobs/" + job).value("status", "") != "running") std::fprintf(stderr, "image_bench: the picture stopped early\n");
                    c.Post(("/api/jobs/" + job + "/cancel").c_str(), "{}", "application/json");
                    const auto until = Clock::now() + std::chrono::seconds(30);
                    while (get(c, "/api/jobs/" + job).value("status", "") != "cancelled" && Clock::now() < until) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    }
                }
            }
        }
        s.process.stop();
    }
    std::printf("pictures during a turn (stand-in ComfyUI; %s threads, %d turns each way, model %s)\n", threads.c_str(), turns, model.c_str());
    std::printf("  tag's last token -> ComfyUI /prompt: median %.1f ms (range %s ms, %zu turns; goal <= 50 ms)\n", bench::median(latency),
                bench::range(latency, "%.1f").c_str(), latency.size());
    std::printf("  decode tokens/s while a picture renders %.2f / without %.2f = %.3f (goal >= 0.95)\n", bench::median(on_tps),
                bench::median(off_tps), bench::median(off_tps) > 0 ? bench::median(on_tps) / bench::median(off_tps) : 0.0);
    return 0;
}
