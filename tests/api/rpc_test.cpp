// A model bigger than one machine: llm.rpc_servers spreads the tiny model's layers over two
// ggml-rpc-server processes on loopback ports (as they would run on other machines); mycandy's
// cluster engine runs llama-server with --rpc as its child. A turn streams, the cache is reused,
// an RPC server that dies mid-reply ends that reply with a clear error and mycandy lives on.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

bool accepts(int port) {
    const int fd = connect_loopback(port);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
}

// ggml-rpc-server from the same build on a loopback port.
class RpcServer {
public:
    explicit RpcServer(int port = 0) : m_port(port ? port : free_port()) {
        m_log = make_temp_dir("mc-rpc-server") + "/log.txt";
        start();
    }
    ~RpcServer() { stop(); }
    void start() {
        m_pid = fork();
        if (m_pid == 0) {
            const int fd = ::open(m_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            const std::string port = std::to_string(m_port);
            execl(MYCANDY_RPC_SERVER, MYCANDY_RPC_SERVER, "-H", "127.0.0.1", "-p", port.c_str(), "-t", "1",
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 500 && !accepts(m_port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    void stop() {
        if (m_pid > 0) {
            kill(m_pid, SIGKILL);
            waitpid(m_pid, nullptr, 0);
            m_pid = -1;
        }
    }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(m_port); }
    int port() const { return m_port; }

private:
    int m_port;
    pid_t m_pid = -1;
    std::string m_log;
};

Json rpc_settings(const RpcServer& a, const RpcServer& b, int max_tokens) {
    return Json{{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"rpc_servers", a.endpoint() + "," + b.endpoint()},
                         {"context_size", 2048}, {"threads", 1}, {"max_tokens", max_tokens}}},
                {"memory", {{"auto_summary", false}, {"auto_facts", false}}}};
}

// /api/health once the text engine has left "loading" (the child loads the model over RPC).
Json ready_health(const ServerProcess& server) {
    Json h;
    for (int i = 0; i < 600; ++i) {
        h = body_json(server.client().Get("/api/health"));
        if (h["components"]["llm"]["state"] != "loading") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return h;
}

std::string new_chat(ServerProcess& s) {
    auto c = s.client();
    const std::string character =
        body_json(c.Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json"))["id"];
    return body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
}

std::string error_of(const SseResult& t) {
    return t.last("error") ? t.last("error")->data["error"]["message"].get<std::string>() : std::string();
}

TEST(RpcEngine, ATurnStreamsThroughTwoRpcServersAndTheNextReusesTheCache) {
    RpcServer a, b;
    ServerProcess server(rpc_settings(a, b, 8));
    const Json h = ready_health(server);
    const Json& llm = h["components"]["llm"];
    ASSERT_EQ(llm["state"], "ready") << h.dump();
    EXPECT_EQ(llm["backend"], "rpc");
    EXPECT_NE(llm["detail"].get<std::string>().find(b.endpoint()), std::string::npos) << llm.dump();
    EXPECT_EQ(llm["rpc_servers"], a.endpoint() + "," + b.endpoint());

    const std::string chat = new_chat(server);
    // Greedy: llama-server parses even /completion output and may refuse some random-weight text.
    const SseResult t1 = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                  R"({"content":"Hallo Mia!","sampling":{"temperature":0}})");
    ASSERT_NE(t1.last("done"), nullptr) << error_of(t1) << t1.body;
    EXPECT_GT(t1.count("token"), 0u);
    EXPECT_EQ(t1.last("done")->data["timings"]["predicted_tokens"], 8);
    EXPECT_EQ(t1.last("done")->data["message"]["status"], "complete");
    const int first_prompt = t1.last("done")->data["timings"]["prompt_tokens"];
    // Prompt size is counted here with the model's own tokenizer (no weights loaded in mycandy).
    auto preview = body_json(server.client().Get("/api/chats/" + chat + "/prompt"));
    EXPECT_GT(preview["tokens"]["total"].get<int>(), 10) << preview.dump();

    const SseResult t2 = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                  R"({"content":"Und jetzt?","sampling":{"temperature":0}})");
    ASSERT_NE(t2.last("done"), nullptr) << error_of(t2) << t2.body;

    // The child listens on a loopback port: without its key (which only mycandy knows) a web page
    // or another program gets nothing from it.
    const std::string log = read_file(server.log_path());
    const size_t at = log.find("--port ");
    ASSERT_NE(at, std::string::npos) << log;
    httplib::Client child("127.0.0.1", std::stoi(log.substr(at + 7)));
    auto stolen = child.Post("/completion", R"({"prompt":"Hallo","n_predict":4})", "application/json");
    ASSERT_TRUE(stolen);
    EXPECT_EQ(stolen->status, 401) << stolen->body;
    const Json& timings = t2.last("done")->data["timings"];
    EXPECT_GT(timings["cached_tokens"].get<int>(), first_prompt / 2) << timings.dump();
    EXPECT_LT(timings["prompt_tokens"].get<int>(), first_prompt) << timings.dump();
}

TEST(RpcEngine, AnRpcServerThatDiesMidReplyEndsItClearlyAndTheServerLivesOn) {
    RpcServer a, b;
    ServerProcess server(rpc_settings(a, b, 1500));
    ASSERT_EQ(ready_health(server)["components"]["llm"]["state"], "ready");
    const std::string chat = new_chat(server);
    // The second server goes away after the reply's fifth token.
    int tokens = 0;
    const SseResult t = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                 R"({"content":"Erzähl mir eine lange Geschichte.","sampling":{"temperature":0,"max_tokens":1500}})",
                                 [&](const SseEvent& e) {
                                     if (e.event == "token" && ++tokens == 5) b.stop();
                                     return false;
                                 });
    ASSERT_GE(tokens, 5) << error_of(t) << t.body;
    ASSERT_NE(t.last("error"), nullptr) << "the reply went on without its RPC server";
    const std::string message = error_of(t);
    EXPECT_NE(message.find("stopped"), std::string::npos) << message;
    // What arrived is kept as a partial reply.
    auto messages = body_json(server.client().Get("/api/chats/" + chat + "/messages"))["messages"];
    ASSERT_TRUE(messages.is_array() && !messages.empty()) << messages.dump();
    EXPECT_EQ(messages.back()["role"], "assistant");
    EXPECT_EQ(messages.back()["status"], "partial");

    // mycandy answers, and names the server that is gone.
    const Json h = body_json(server.client().Get("/api/health"));
    EXPECT_EQ(h["status"], "ok");
    const SseResult t2 = post_sse(server.port(), "/api/chats/" + chat + "/messages", R"({"content":"Bist du noch da?"})");
    ASSERT_NE(t2.last("error"), nullptr) << t2.body;
    EXPECT_NE(error_of(t2).find(b.endpoint() + " ("), std::string::npos) << error_of(t2);
    EXPECT_NE(error_of(t2).find("cannot be reached"), std::string::npos) << error_of(t2);

    // The server comes back on its port: the next turn is answered again.
    b.start();
    const SseResult t3 = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                  R"({"content":"Und jetzt?","sampling":{"temperature":0,"max_tokens":4}})");
    ASSERT_NE(t3.last("done"), nullptr) << error_of(t3) << t3.body;
    EXPECT_EQ(t3.last("done")->data["timings"]["predicted_tokens"], 4);
}

TEST(RpcEngine, AnUnreachableServerIsNamedAndBadListsAreRefused) {
    RpcServer a;
    const int nobody = free_port();
    ServerProcess server(Json{{"llm", {{"model_path", MYCANDY_TINY_MODEL},
                                       {"rpc_servers", a.endpoint() + ", 127.0.0.1:" + std::to_string(nobody)}}}});
    const Json h = ready_health(server);
    EXPECT_EQ(h["components"]["llm"]["state"], "error") << h.dump();
    const std::string detail = h["components"]["llm"]["detail"];
    EXPECT_NE(detail.find("127.0.0.1:" + std::to_string(nobody) + " ("), std::string::npos) << detail;
    EXPECT_EQ(detail.find(a.endpoint()), std::string::npos) << "the reachable one is not blamed: " << detail;

    auto c = server.client();
    for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host name:50052", ":50052", "a:b"}) {
        auto r = c.Patch("/api/settings", Json{{"llm", {{"rpc_servers", bad}}}}.dump(), "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << bad;
        EXPECT_EQ(body_json(r)["error"]["field"], "llm.rpc_servers") << r->body;
    }
    auto ok = c.Patch("/api/settings", R"({"llm":{"rpc_servers":"[::1]:50052, gpu-box.local:50052"}})", "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
}

}  // namespace
}  // namespace mc::test
