// The remote engine: mycandy streaming turns from llama.cpp's own server (llama-server from the
// same release, started here with the tiny model) and failing clearly when a server is missing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

// llama-server on a free port with the tiny model.
class LlamaServer {
public:
    explicit LlamaServer(int context = 2048) {
        m_port = free_port();
        m_log = make_temp_dir("mc-llama-server") + "/log.txt";
        m_pid = fork();
        if (m_pid == 0) {
            const int fd = ::open(m_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            const std::string port = std::to_string(m_port);
            execl(MYCANDY_LLAMA_SERVER, MYCANDY_LLAMA_SERVER, "-m", MYCANDY_TINY_MODEL, "--host", "127.0.0.1", "--port",
                  port.c_str(), "-c", std::to_string(context).c_str(), "-t", "2", "-np", "1", "--no-warmup", static_cast<char*>(nullptr));
            _exit(127);
        }
        httplib::Client c("127.0.0.1", m_port);
        for (int i = 0; i < 1500; ++i) {
            if (auto r = c.Get("/health"); r && r->status == 200) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "llama-server did not start: " << read_file(m_log);
    }
    ~LlamaServer() {
        kill(m_pid, SIGTERM);
        waitpid(m_pid, nullptr, 0);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

private:
    int m_port = 0;
    pid_t m_pid = -1;
    std::string m_log;
};

std::string new_chat(ServerProcess& s) {
    auto c = s.client();
    const std::string character =
        body_json(c.Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json"))["id"];
    return body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
}

TEST(RemoteEngine, StreamsTurnsFromLlamaServersCompletionEndpoint) {
    LlamaServer llama;
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llama.url()}, {"remote_mode", "completion"},
                                       {"max_tokens", 8}}}});
    const Json h = body_json(server.client().Get("/api/health"));
    EXPECT_EQ(h["components"]["llm"]["backend"], "remote");
    EXPECT_EQ(h["components"]["llm"]["state"], "ready") << h.dump();
    const std::string chat = new_chat(server);
    // Greedy sampling: llama-server parses even /completion output in this release and refuses
    // some random-weight text; a fixed reply keeps this test about our client, not about luck.
    const SseResult t1 = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                  R"({"content":"Hallo Mia!","sampling":{"temperature":0}})");
    ASSERT_NE(t1.last("done"), nullptr) << (t1.last("error") ? t1.last("error")->data.dump() : t1.body);
    EXPECT_GT(t1.count("token"), 0u);
    EXPECT_EQ(t1.last("done")->data["timings"]["predicted_tokens"], 8);
    EXPECT_EQ(t1.last("done")->data["message"]["status"], "complete");
    // llama-server reuses its cache for the shared prefix, and says so.
    const SseResult t2 = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                  R"({"content":"Und jetzt?","sampling":{"temperature":0}})");
    ASSERT_NE(t2.last("done"), nullptr) << (t2.last("error") ? t2.last("error")->data.dump() : t2.body);
    EXPECT_GT(t2.last("done")->data["timings"]["cached_tokens"].get<int>(), 10);
}

TEST(RemoteEngine, StreamsTurnsFromLlamaServersChatEndpoint) {
    LlamaServer llama;
    // The URL may be given with /v1, as other apps want it.
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llama.url() + "/v1"}, {"max_tokens", 8}}}});
    const std::string chat = new_chat(server);
    const SseResult t = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                 R"({"content":"Hallo Mia!","sampling":{"temperature":0}})");
    ASSERT_EQ(t.status, 200);
    ASSERT_NE(t.last("done"), nullptr) << (t.last("error") ? t.last("error")->data.dump() : t.body);
    EXPECT_GT(t.count("token"), 0u);
    EXPECT_EQ(t.last("done")->data["timings"]["predicted_tokens"], 8);
}

TEST(RemoteEngine, AnErrorFromTheServerIsAnErrorEventWithItsStatusAndMessage) {
    // A context far too small for the prompt: llama-server refuses the request.
    LlamaServer llama(64);
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llama.url()}, {"remote_mode", "completion"}}}});
    const std::string chat = new_chat(server);
    const SseResult t = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                 Json{{"content", std::string(2000, 'a') + " long message"}}.dump());
    ASSERT_FALSE(t.events.empty());
    ASSERT_EQ(t.events.back().event, "error") << t.events.back().data.dump();
    const std::string message = t.events.back().data["error"]["message"];
    EXPECT_NE(message.find(llama.url() + "/completion answered HTTP "), std::string::npos) << message;
    EXPECT_NE(message.find("context"), std::string::npos) << message;  // llama-server's own words.
    EXPECT_EQ(t.events.front().event, "user");  // The user's message is kept.
}

TEST(RemoteEngine, ARefusedConnectionIsAnErrorNamingTheUrlWithinTwoSeconds) {
    const std::string url = "http://127.0.0.1:" + std::to_string(free_port());
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", url}}}});
    const Json h = body_json(server.client().Get("/api/health"));
    EXPECT_EQ(h["components"]["llm"]["state"], "unavailable");
    EXPECT_NE(h["components"]["llm"]["detail"].get<std::string>().find(url), std::string::npos);
    const std::string chat = new_chat(server);
    const auto started = std::chrono::steady_clock::now();
    const SseResult t = post_sse(server.port(), "/api/chats/" + chat + "/messages", R"({"content":"Hallo?"})");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_FALSE(t.events.empty());
    EXPECT_EQ(t.events.front().event, "user");
    ASSERT_EQ(t.events.back().event, "error");
    const std::string message = t.events.back().data["error"]["message"];
    EXPECT_NE(message.find("cannot reach " + url), std::string::npos) << message;
    EXPECT_NE(message.find("onnection"), std::string::npos) << message;
    EXPECT_LT(elapsed, std::chrono::seconds(2));
}

// "Test connection" in the settings and the first-run screen: llama.cpp's own server offers its
// model; a closed port is unreachable; an address that answers something else says so; nothing
// of the settings changes.
TEST(RemoteEngine, TestConnectionNamesTheModelsOrWhatIsWrongAndChangesNoSetting) {
    LlamaServer llama;
    ServerProcess server;
    auto c = server.client();
    const Json before = body_json(c.Get("/api/settings"));
    auto r = c.Post("/api/models/test_remote", Json{{"url", llama.url()}}.dump(), "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    Json j = body_json(r);
    EXPECT_TRUE(j["ok"].get<bool>()) << r->body;
    EXPECT_TRUE(j["reachable"].get<bool>());
    ASSERT_FALSE(j["models"].empty()) << r->body;
    // As Ollama's and LM Studio's guides write it: with /v1 (and a slash).
    j = body_json(c.Post("/api/models/test_remote", Json{{"url", llama.url() + "/v1/"}}.dump(), "application/json"));
    EXPECT_TRUE(j["ok"].get<bool>()) << j.dump();

    const std::string closed = "http://127.0.0.1:" + std::to_string(free_port());
    j = body_json(c.Post("/api/models/test_remote", Json{{"url", closed}}.dump(), "application/json"));
    EXPECT_FALSE(j["ok"].get<bool>());
    EXPECT_FALSE(j["reachable"].get<bool>());
    EXPECT_NE(j["detail"].get<std::string>().find(closed), std::string::npos) << j.dump();

    // Our own server's /api has no /v1/models: it answers, but not a model list.
    const std::string wrong = "http://127.0.0.1:" + std::to_string(server.port()) + "/api";
    j = body_json(c.Post("/api/models/test_remote", Json{{"url", wrong}}.dump(), "application/json"));
    EXPECT_FALSE(j["ok"].get<bool>());
    EXPECT_TRUE(j["reachable"].get<bool>());
    EXPECT_NE(j["detail"].get<std::string>().find("HTTP 404"), std::string::npos) << j.dump();

    auto bad = c.Post("/api/models/test_remote", R"({"url":"file:///etc/passwd"})", "application/json");
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(body_json(bad)["error"]["field"], "url");
    EXPECT_EQ(body_json(c.Get("/api/settings")), before);
}

}  // namespace
}  // namespace mc::test
