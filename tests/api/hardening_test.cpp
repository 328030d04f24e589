// Black-box hardening tests (issue 9): each test is named for what an outsider did to the server
// before it was fixed, against the real server and the tiny random-weight model.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

Json model_settings(Json extra = Json::object()) {
    Json s = {{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", 12}, {"threads", 2}}}};
    s.merge_patch(extra);
    return s;
}

class Hardening : public ::testing::Test {
protected:
    void start(Json s = model_settings()) {
        server = std::make_unique<ServerProcess>(s);
        settled_health(*server);
    }
    httplib::Client c() const { return server->client(); }
    std::string character() {
        auto r = c().Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json");
        return body_json(r)["id"];
    }
    std::string chat(const std::string& character_id) {
        return body_json(c().Post("/api/chats", Json{{"character_id", character_id}}.dump(), "application/json"))["chat"]["id"];
    }
    void expect_alive() {
        auto h = c().Get("/api/health");
        ASSERT_TRUE(h) << "the server died";
        EXPECT_EQ(h->status, 200);
    }
    // A 4xx JSON error naming `field`, whose message is ours (no library exception text).
    static void expect_error(const httplib::Result& r, int status, const std::string& field) {
        ASSERT_TRUE(r) << "no answer (server down?)";
        EXPECT_EQ(r->status, status) << r->body;
        const Json e = body_json(r)["error"];
        ASSERT_TRUE(e.is_object()) << r->body;
        EXPECT_EQ(e.value("field", ""), field) << r->body;
        EXPECT_EQ(r->body.find("json.exception"), std::string::npos) << r->body;
        EXPECT_EQ(r->body.find("type_error"), std::string::npos) << r->body;
    }
    void TearDown() override {
        if (HasFailure() && server) {  // The server's side of a failure.
            const std::string log = read_file(server->log_path());
            std::fprintf(stderr, "--- server log (end) ---\n%s\n", log.substr(log.size() > 8000 ? log.size() - 8000 : 0).c_str());
        }
    }
    std::unique_ptr<ServerProcess> server;
};

// Item 2: {"keep":4294967295} was cast to int and the server died.
TEST_F(Hardening, SummarizeWithAHugeKeepIsA400AndTheServerLives) {
    start();
    const std::string id = chat(character());
    for (const char* body : {R"({"keep":4294967295})", R"({"keep":-1})", R"({"keep":1e30})", R"({"keep":"4"})"}) {
        expect_error(c().Post(("/api/chats/" + id + "/memory/summarize").c_str(), body, "application/json"), 400, "keep");
    }
    expect_error(c().Post(("/api/chats/" + id + "/memory/summary/rollback").c_str(), R"({"version":4294967297})",
                          "application/json"),
                 400, "version");
    expect_alive();
}

// Item 3: a wrong JSON type answered 500 with the JSON library's exception text.
TEST_F(Hardening, WrongJsonTypesAreA400NamingTheFieldAndTheType) {
    start();
    const std::string id = chat(character());
    auto r = c().Post("/api/models/download", R"({"url":5})", "application/json");
    expect_error(r, 400, "url");
    EXPECT_NE(r->body.find("must be a string (got an integer)"), std::string::npos) << r->body;
    expect_error(c().Post("/api/chats", R"({"character_id":5})", "application/json"), 400, "character_id");
    expect_error(c().Post(("/api/chats/" + id + "/memory/facts").c_str(), R"({"text":"x","pinned":"yes"})", "application/json"),
                 400, "pinned");
    expect_error(c().Post(("/api/chats/" + id + "/messages").c_str(), R"({"content":"hi","sampling":{"top_k":4294967295}})",
                          "application/json"),
                 400, "top_k");
    auto v1 = c().Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"stream":"yes"})",
                       "application/json");
    ASSERT_TRUE(v1);
    EXPECT_EQ(v1->status, 400) << v1->body;
    EXPECT_EQ(body_json(v1)["error"]["param"], "stream") << v1->body;
    v1 = c().Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":1}})",
                  "application/json");
    EXPECT_EQ(body_json(v1)["error"]["param"], "stream_options.include_usage") << v1->body;
    // Item 10: /v1 skipped llm.max_message_chars.
    ASSERT_EQ(c().Patch("/api/settings", R"({"llm":{"max_message_chars":100}})", "application/json")->status, 200);
    v1 = c().Post("/v1/chat/completions", Json{{"messages", {{{"role", "user"}, {"content", std::string(101, 'x')}}}}}.dump(),
                  "application/json");
    ASSERT_TRUE(v1);
    EXPECT_EQ(v1->status, 413) << v1->body;
    EXPECT_EQ(body_json(v1)["error"]["param"], "messages") << v1->body;
    expect_alive();
}

// Item 4: the server added its own stop string after validation, so 16 client stops (or a long
// user name) made every turn fail after the user's message was stored.
TEST_F(Hardening, SixteenStopStringsAndALongUserNameStillGetAReply) {
    start();
    const std::string id = chat(character());
    Json stops = Json::array();
    for (int i = 0; i < 16; ++i) stops.push_back("<<stop" + std::to_string(i) + ">>");
    auto turn = post_sse(server->port(), "/api/chats/" + id + "/messages",
                         Json{{"content", "Hallo"}, {"sampling", {{"stop", stops}}}}.dump());
    EXPECT_EQ(turn.count("done"), 1u) << turn.body;
    EXPECT_EQ(turn.count("error"), 0u);
    stops.push_back("one too many");
    auto refused = c().Post(("/api/chats/" + id + "/messages").c_str(),
                            Json{{"content", "Hallo"}, {"sampling", {{"stop", stops}}}}.dump(), "application/json");
    expect_error(refused, 400, "stop");
    expect_error(c().Patch("/api/settings", Json{{"chat", {{"user_name", std::string(255, 'u')}}}}.dump(), "application/json"),
                 400, "chat.user_name");
    ASSERT_EQ(c().Patch("/api/settings", Json{{"chat", {{"user_name", std::string(100, 'u')}}}}.dump(), "application/json")->status,
              200);
    const size_t before = body_json(c().Get(("/api/chats/" + id + "/messages").c_str()))["messages"].size();
    turn = post_sse(server->port(), "/api/chats/" + id + "/messages", Json{{"content", "Noch einmal"}}.dump());
    EXPECT_EQ(turn.count("done"), 1u) << turn.body;
    EXPECT_EQ(body_json(c().Get(("/api/chats/" + id + "/messages").c_str()))["messages"].size(), before + 2);
}

// Item 5: a text/plain POST with Origin: http://evil.example created a character.
TEST_F(Hardening, OtherWebsitesCannotWriteAndForeignHostNamesAreRefused) {
    start();
    auto count = [&] { return body_json(c().Get("/api/characters"))["characters"].size(); };
    const size_t before = count();
    httplib::Headers evil = {{"Origin", "http://evil.example"}};
    expect_error(c().Post("/api/characters", evil, R"({"name":"Pwned"})", "text/plain"), 403, "Origin");
    expect_error(c().Post("/api/characters", evil, R"({"name":"Pwned"})", "application/json"), 403, "Origin");
    expect_error(c().Delete("/api/characters/x", evil), 403, "Origin");
    // Without an Origin (curl, scripts) a text/plain body is still not JSON: 415 naming the type.
    auto plain = c().Post("/api/characters", R"({"name":"Pwned"})", "text/plain");
    expect_error(plain, 415, "body");
    EXPECT_NE(plain->body.find("application/json"), std::string::npos);
    EXPECT_EQ(count(), before);
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 cannot even read.
    expect_error(c().Get("/api/characters", {{"Host", "evil.example:" + std::to_string(server->port())}}), 403, "Host");
    // The UI (same origin) keeps working.
    const std::string self = "http://127.0.0.1:" + std::to_string(server->port());
    auto ok = c().Post("/api/characters", {{"Origin", self}}, R"({"name":"Lena"})", "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 201) << ok->body;
}

// Sends raw bytes on one connection and returns what came back within a moment of quiet.
std::string raw_exchange(int port, const std::string& bytes) {
    const int fd = connect_loopback(port);
    if (fd < 0) return "";
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

// Found in review: the guard refused a cross-site POST before its body was read, and the unread
// body stayed on the keep-alive connection, where it was parsed as the next request — one that
// carried no Origin and passed the guard.
TEST_F(Hardening, ARefusedRequestsBodyIsNotRunAsASecondRequest) {
    start();
    const std::string host = "127.0.0.1:" + std::to_string(server->port());
    const std::string evil = R"({"name":"Evil"})";
    const std::string inner = "POST /api/characters HTTP/1.1\r\nHost: " + host +
                              "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(evil.size()) +
                              "\r\n\r\n" + evil;
    for (size_t pad : {size_t(0), size_t(3000), size_t(5000), size_t(7000)}) {
        const std::string outer = "PATCH /api/settings HTTP/1.1\r\nHost: " + host +
                                  "\r\nOrigin: http://evil.example\r\nX-Pad: " + std::string(pad, 'p') +
                                  "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(inner.size()) +
                                  "\r\n\r\n" + inner;
        const std::string answer = raw_exchange(server->port(), outer);
        EXPECT_NE(answer.find("403"), std::string::npos) << answer.substr(0, 200);
    }
    const Json list = body_json(c().Get("/api/characters"))["characters"];
    for (const auto& ch : list) EXPECT_NE(ch["name"], "Evil") << "the smuggled request ran";
    expect_alive();
}

// Found in review: nlohmann copies and dumps values recursively, so a body nested 200,000 deep
// (a 400 KB request) overflowed a worker thread's stack once a route copied or dumped it.
TEST_F(Hardening, DeeplyNestedJsonIsRefusedNotACrash) {
    start();
    const std::string deep = std::string(200000, '[') + std::string(200000, ']');
    const std::string id = character();
    expect_error(c().Patch(("/api/characters/" + id).c_str(), "{\"extensions\":{\"x\":" + deep + "}}", "application/json"),
                 400, "body");
    auto v1 = c().Post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":" + deep + "}]}",
                       "application/json");
    ASSERT_TRUE(v1) << "the server died";
    EXPECT_EQ(v1->status, 400);
    auto imported = c().Post(("/api/characters/" + id + "/chats/import").c_str(),
                             "{\"format\":\"mycandy-chat\",\"version\":1,\"messages\":[],\"x\":" + deep + "}",
                             "application/json");
    ASSERT_TRUE(imported) << "the server died";
    EXPECT_EQ(imported->status, 400) << imported->body.substr(0, 200);
    EXPECT_NE(imported->body.find("nests deeper"), std::string::npos) << imported->body.substr(0, 200);
    expect_alive();
}

// Found in review: bodies sent chunked (no Content-Length) were not held to the 64 MB limit.
TEST_F(Hardening, AChunkedBodyOverTheLimitIsRefused) {
    start();
    std::signal(SIGPIPE, SIG_IGN);  // The server may hang up while we still write.
    auto client = c();
    size_t sent = 0;
    const std::string piece(1 << 20, 'x');
    auto r = client.Post(
        "/api/characters",
        [&](size_t, httplib::DataSink& sink) {
            if (sent >= (70u << 20)) {
                sink.done();
                return true;
            }
            sent += piece.size();
            return sink.write(piece.data(), piece.size());
        },
        "application/json");
    if (r) {  // (Or the server hung up on it.)
        EXPECT_EQ(r->status, 413) << r->body.substr(0, 200);
    }
    expect_alive();
}

// Item 6: any body over 8 KB with curl's default form type got 413 from the HTTP library.
TEST_F(Hardening, BodiesOverEightKilobytesAreJudgedByContentNotByCurlsDefaultType) {
    start();
    const std::string big_json = Json{{"name", "Mia"}, {"description", std::string(20000, 'd')}}.dump();
    auto r = c().Post("/api/characters", big_json, "application/x-www-form-urlencoded");
    expect_error(r, 415, "body");
    EXPECT_NE(r->body.find("application/json"), std::string::npos) << r->body;
    r = c().Post("/api/characters", big_json, "application/json");
    ASSERT_EQ(r->status, 201) << r->body;
    const std::string id = body_json(r)["id"];
    // An avatar (a PNG of 20 KB) sent as curl --data-binary sends it.
    std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89", 33);
    png += std::string(20000, '\0');
    auto put = c().Put(("/api/characters/" + id + "/avatar").c_str(), png, "application/x-www-form-urlencoded");
    ASSERT_EQ(put->status, 200) << put->body;
    EXPECT_EQ(c().Get(("/api/characters/" + id + "/avatar").c_str())->body.size(), png.size());
    // ... and as a form upload (curl -F file=@avatar.png).
    httplib::MultipartFormDataItems form = {{"file", png, "avatar.png", "image/png"}};
    auto multipart = c().Put(("/api/characters/" + id + "/avatar").c_str(), form);
    ASSERT_TRUE(multipart);
    EXPECT_EQ(multipart->status, 200) << multipart->body;
    expect_alive();
}

// Item 1: 4 prompt previews during a PATCH of llm.context_size ended in SIGSEGV (the model was
// freed under count_tokens).
TEST_F(Hardening, ChangingTheModelSettingsWhilePreviewsAndTurnsRunIsSafe) {
    start();
    const std::string id = chat(character());
    std::atomic<bool> done{false};
    std::atomic<int> answered{0}, bad{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            auto client = c();
            while (!done) {
                auto r = client.Get(("/api/chats/" + id + "/prompt?message=Wie%20geht%27s").c_str());
                if (!r || (r->status != 200 && r->status != 503)) ++bad;
                ++answered;
            }
        });
    }
    std::thread talker([&] {
        while (!done) (void)post_sse(server->port(), "/api/chats/" + id + "/messages", Json{{"content", "Hallo"}}.dump());
    });
    bool died = false;
    for (int i = 0; i < 12 && !died; ++i) {
        auto r = c().Patch("/api/settings", Json{{"llm", {{"context_size", i % 2 ? 2048 : 1024}}}}.dump(), "application/json");
        died = !r;
        EXPECT_TRUE(r) << "no answer to change " << i << ": " << httplib::to_string(r.error());
        if (r) {
            EXPECT_EQ(r->status, 200) << r->body;
        }
        // Let readers hit the engine while it loads and right after.
        for (int k = answered + 8; answered < k && !bad;) std::this_thread::yield();
    }
    done = true;
    for (auto& t : readers) t.join();
    talker.join();
    ASSERT_FALSE(died);
    EXPECT_EQ(bad, 0);
    expect_alive();
    // The engine of the last settings serves turns.
    settled_health(*server);
    auto turn = post_sse(server->port(), "/api/chats/" + id + "/messages", Json{{"content", "Bist du da?"}}.dump());
    EXPECT_EQ(turn.count("done"), 1u) << turn.body;
}

// Serves one file slowly: the first chunk, then nothing until open() (a download in progress).
class GatedFileServer {
public:
    explicit GatedFileServer(size_t size) : m_data(size, 'g') {
        m_server.Get("/slow/(.*)", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content_provider(m_data.size(), "application/octet-stream",
                                     [this](size_t offset, size_t length, httplib::DataSink& sink) {
                                         // A small first piece (it arrives whole), then 64 KB pieces
                                         // once open: each is several percent of progress.
                                         while (offset > 0 && !m_open) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                                         return sink.write(m_data.data() + offset, std::min<size_t>(length, offset ? 64 * 1024 : 1000));
                                     });
        });
        m_server.Get("/fast/(.*)", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(std::string(1000, 'f'), "application/octet-stream");
        });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
    }
    ~GatedFileServer() {
        m_open = true;
        m_server.stop();
        m_thread.join();
    }
    void open() { m_open = true; }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }

private:
    std::string m_data;
    std::atomic<bool> m_open{false};
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
};

// Item 9: a progress update rewrote the row as running over a cancel, so the download ended failed.
TEST_F(Hardening, ACancelledDownloadStaysCancelled) {
    start(Json::object());
    GatedFileServer files(100 * 1000);  // The client reads 4 KB at a time: 4% of progress each.
    auto submit = [&](const std::string& path) {
        auto r = c().Post("/api/models/download", Json{{"url", files.url(path)}}.dump(), "application/json");
        EXPECT_EQ(r->status, 202) << r->body;
        return body_json(r)["job"]["id"].get<std::string>();
    };
    const std::string slow = submit("/slow/big.gguf");
    Json j;
    for (int i = 0; i < 2000; ++i) {  // Until the first chunk has arrived.
        j = body_json(c().Get(("/api/jobs/" + slow).c_str()));
        if (j["status"] == "running" && j["progress"].get<double>() > 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(j["status"], "running") << j.dump();
    auto cancelled = c().Post(("/api/jobs/" + slow + "/cancel").c_str(), "", "application/json");
    ASSERT_EQ(cancelled->status, 200) << cancelled->body;
    files.open();  // More data arrives: progress is reported once more, then the download stops.
    // Jobs run one at a time: once a later one is done, the cancelled one has finished.
    const std::string fast = submit("/fast/small.gguf");
    for (int i = 0; i < 2000 && body_json(c().Get(("/api/jobs/" + fast).c_str()))["status"] != "failed" &&
                    body_json(c().Get(("/api/jobs/" + fast).c_str()))["status"] != "done";
         ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const Json final_state = body_json(c().Get(("/api/jobs/" + slow).c_str()));
    EXPECT_EQ(final_state["status"], "cancelled") << final_state.dump();
    expect_error(c().Post(("/api/jobs/" + slow + "/cancel").c_str(), "", "application/json"), 409, "id");
}

// Item 10: one KV state file per chat without a budget (~1 GiB each for an 8B model).
TEST_F(Hardening, SavedKvStatesStayWithinTheirDiskBudget) {
    start(model_settings({{"llm", {{"kv_cache_disk_mb", 1}}}}));
    const std::string mia = character();
    std::vector<std::string> chats;
    for (int i = 0; i < 8; ++i) {
        chats.push_back(chat(mia));
        // Each turn switches the engine to another chat, which saves the previous chat's state;
        // ~800 tokens make each state ~200 KB (the tiny model's KV is 256 bytes a token).
        std::string story;
        for (int w = 0; story.size() < 3000; ++w) story += "Wort" + std::to_string(w * 7919 % 1000) + " ";
        auto turn = post_sse(server->port(), "/api/chats/" + chats.back() + "/messages",
                             Json{{"content", "Runde " + std::to_string(i) + ": " + story}}.dump());
        ASSERT_EQ(turn.count("done"), 1u) << turn.body;
    }
    namespace fs = std::filesystem;
    uint64_t total = 0, largest = 0;
    int files = 0;
    for (const auto& e : fs::recursive_directory_iterator(server->data_dir() + "/cache/kv")) {
        if (!e.is_regular_file() || e.path().extension() != ".state") continue;
        total += e.file_size();
        largest = std::max<uint64_t>(largest, e.file_size());
        ++files;
    }
    ASSERT_GE(files, 1) << "no state was saved";
    EXPECT_LT(files, 7) << "the budget removed nothing";
    // Within the budget, except that the newest file is always kept.
    EXPECT_LE(total, std::max<uint64_t>(1u << 20, largest)) << files << " files, " << total << " bytes";
}

int threads_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    }
    return -1;
}

// Issue 18: the server started 256 connection threads at once and kept them idle on one futex;
// every futex wake that hashed to their bucket walked all 256, libgomp's barriers among them, and
// decode ran 2-3 % slower than llama-server. Now threads start as connections need them.
TEST_F(Hardening, AnIdleServerHoldsFewThreadsAndStillServesManyConnectionsAtOnce) {
    start();
    const int at_rest = threads_of(server->pid());
    EXPECT_GT(at_rest, 0);
    EXPECT_LT(at_rest, 48) << "threads of an idle server";

    // 40 keep-alive connections at once, each holding its worker thread: all are answered.
    std::vector<int> fds;
    const std::string get = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server->port()) +
                            "\r\nConnection: keep-alive\r\n\r\n";
    for (int i = 0; i < 40; ++i) {
        const int fd = connect_loopback(server->port());
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::send(fd, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
        fds.push_back(fd);
    }
    int answered = 0;
    for (int fd : fds) {
        timeval tv{3, 0};  // Under httplib's 5 s keep-alive: a connection waiting for a thread would miss it.
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[64] = {};
        const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
        answered += n > 12 && std::string(buf, 12) == "HTTP/1.1 200";
    }
    EXPECT_EQ(answered, 40);
    EXPECT_GE(threads_of(server->pid()), at_rest + 36) << "40 open connections, each with its thread";
    for (int fd : fds) ::close(fd);
    expect_alive();
}

// Connections to `port` whose client has hung up but the server has not closed (TCP CLOSE_WAIT).
int half_closed_connections(int port) {
    std::ifstream in("/proc/net/tcp");
    std::string line;
    int n = 0;
    char want[8];
    std::snprintf(want, sizeof want, ":%04X", port);
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string slot, local, remote, state;
        f >> slot >> local >> remote >> state;
        if (local.size() > 5 && local.substr(local.size() - 5) == want && state == "08") ++n;
    }
    return n;
}

// Item 10: /api/jobs/{id}/events only wrote when the job changed, so a stream whose client had
// left held its thread and socket until the job ended (up to an hour).
TEST_F(Hardening, AJobEventStreamWhoseClientLeftIsClosedWhileTheJobRuns) {
    start(Json::object());
    GatedFileServer files(100 * 1000);  // Stays running until open().
    auto r = c().Post("/api/models/download", Json{{"url", files.url("/slow/held.gguf")}}.dump(), "application/json");
    const std::string job = body_json(r)["job"]["id"];
    for (int i = 0; i < 2000; ++i) {  // Until the download's own connection is open (it holds an fd).
        const Json j = body_json(c().Get(("/api/jobs/" + job).c_str()));
        if (j["status"] == "running" && j["progress"].get<double>() > 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    {
        httplib::Client events("127.0.0.1", server->port());
        bool got_event = false;
        (void)events.Get(("/api/jobs/" + job + "/events").c_str(), [&](const char* data, size_t n) {
            got_event = std::string(data, n).find("event: job") != std::string::npos;
            return !got_event;  // Hang up after the first event.
        });
        ASSERT_TRUE(got_event);
    }
    // Our side has hung up: the server's socket waits in CLOSE_WAIT until the server notices, at
    // its next keep-alive write (every 2 s), and closes it.
    bool closed = false;
    for (int i = 0; i < 1000 && !closed; ++i) {
        closed = half_closed_connections(server->port()) == 0;
        if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(closed) << "the stream's connection is still held by the server";
    EXPECT_EQ(body_json(c().Get(("/api/jobs/" + job).c_str()))["status"], "running");
    files.open();
}

}  // namespace
}  // namespace mc::test
