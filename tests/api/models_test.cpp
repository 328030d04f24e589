// Models: a user's GGUF files in data/models, loading one, and downloading one with progress,
// resume after a dropped connection and a SHA-256 check — from a local HTTP server.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

std::string sha256_hex(const std::string& data) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", d[i]);
        out += b;
    }
    return out;
}

// Serves files with Range support; /flaky/... drops the connection halfway the first time.
class FileServer {
public:
    explicit FileServer(std::string model) : m_model(std::move(model)) {
        // httplib answers Range requests itself (206 + Content-Range) from this provider.
        auto serve = [this](const httplib::Request& req, httplib::Response& res, bool flaky) {
            const std::string& data = req.path.ends_with(".gguf") ? m_model : m_junk;
            const bool drop = flaky && m_requests++ == 0;
            res.set_content_provider(data.size(), "application/octet-stream",
                                     [&data, drop](size_t offset, size_t length, httplib::DataSink& sink) {
                                         if (drop && offset >= data.size() / 2) return false;  // Hang up.
                                         sink.write(data.data() + offset, std::min<size_t>(length, 64 * 1024));
                                         return true;
                                     });
        };
        m_server.Get("/models/(.*)", [serve](const httplib::Request& req, httplib::Response& res) { serve(req, res, false); });
        m_server.Get("/flaky/(.*)", [serve](const httplib::Request& req, httplib::Response& res) { serve(req, res, true); });
        m_server.Get("/junk/(.*)", [serve](const httplib::Request& req, httplib::Response& res) { serve(req, res, false); });
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread([this] { m_server.listen_after_bind(); });
    }
    ~FileServer() {
        m_server.stop();
        m_thread.join();
    }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }
    int requests() const { return m_requests; }

private:
    std::string m_model;
    std::string m_junk = std::string(4096, 'x');
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
    std::atomic<int> m_requests{0};
};

Json wait_job(httplib::Client& c, const std::string& id) {
    Json j;
    for (int i = 0; i < 3000; ++i) {
        j = body_json(c.Get(("/api/jobs/" + id).c_str()));
        if (j["status"] == "done" || j["status"] == "failed" || j["status"] == "cancelled") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return j;
}

TEST(Models, DownloadListLoadAndChat) {
    const std::string model = read_file(MYCANDY_TINY_MODEL);
    FileServer files(model);
    ServerProcess server(Json{{"llm", {{"max_tokens", 4}, {"context_size", 1024}}}});
    auto c = server.client();
    EXPECT_TRUE(body_json(c.Get("/api/models"))["models"].empty());
    auto r = c.Post("/api/models/download", Json{{"url", files.url("/models/Stheno-test.gguf")}, {"sha256", sha256_hex(model)}}.dump(),
                    "application/json");
    ASSERT_EQ(r->status, 202) << r->body;
    const Json job = wait_job(c, body_json(r)["job"]["id"]);
    ASSERT_EQ(job["status"], "done") << job.dump();
    EXPECT_EQ(job["progress"], 1.0);
    EXPECT_EQ(job["result"]["name"], "llm/Stheno-test.gguf");
    EXPECT_EQ(read_file(server.data_dir() + "/models/llm/Stheno-test.gguf"), model);

    const Json list = body_json(c.Get("/api/models"));
    ASSERT_EQ(list["models"].size(), 1u);
    EXPECT_EQ(list["models"][0]["name"], "llm/Stheno-test.gguf");
    EXPECT_EQ(list["models"][0]["loaded"], false);
    r = c.Post("/api/models/load", R"({"path":"llm/Stheno-test.gguf"})", "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    const Json llm = settled_health(server)["components"]["llm"];
    EXPECT_EQ(llm["state"], "ready");
    // A size llama.cpp has no name for is said as a count ("llama 4.2M Q8_0"), not "llama ?B".
    EXPECT_EQ(llm["detail"].get<std::string>().find("?B"), std::string::npos) << llm.dump();
    EXPECT_NE(llm["detail"].get<std::string>().find("M "), std::string::npos) << llm.dump();
    // Nothing generating or waiting; up to llm.parallel (4) replies decode together.
    EXPECT_EQ(llm["streams"], (Json{{"decoding", 0}, {"queued", 0}, {"parallel", 4}})) << llm.dump();
    // The weights in 2 MiB pages (llm.huge_pages, on by default; llm_tests check how many), and
    // the kernel's setting beside them.
    EXPECT_GE(llm["huge_pages"].value("weights_mb", -1), 0) << llm.dump();
    EXPECT_TRUE(llm["huge_pages"]["kernel"].is_string() || llm["huge_pages"]["kernel"].is_null()) << llm.dump();
    EXPECT_EQ(body_json(c.Get("/api/models"))["loaded"], "llm/Stheno-test.gguf");
    const std::string character = body_json(c.Post("/api/characters", R"({"name":"Mia"})", "application/json"))["id"];
    const std::string chat = body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
    EXPECT_NE(post_sse(server.port(), "/api/chats/" + chat + "/messages", R"({"content":"Hi"})").last("done"), nullptr);
}

TEST(Models, ADroppedDownloadResumesWhereItStopped) {
    const std::string model = read_file(MYCANDY_TINY_MODEL);
    FileServer files(model);
    ServerProcess server;
    auto c = server.client();
    auto r = c.Post("/api/models/download", Json{{"url", files.url("/flaky/tiny.gguf")}}.dump(), "application/json");
    ASSERT_EQ(r->status, 202);
    const Json job = wait_job(c, body_json(r)["job"]["id"]);
    ASSERT_EQ(job["status"], "done") << job.dump();
    EXPECT_EQ(files.requests(), 2);  // The second request asked only for the rest.
    EXPECT_EQ(read_file(server.data_dir() + "/models/llm/tiny.gguf"), model);
    EXPECT_FALSE(std::filesystem::exists(server.data_dir() + "/models/llm/tiny.gguf.part"));
}

TEST(Models, BadDownloadsFailClearlyAndLeaveNothing) {
    const std::string model = read_file(MYCANDY_TINY_MODEL);
    FileServer files(model);
    ServerProcess server;
    auto c = server.client();
    auto post = [&](const Json& body) { return c.Post("/api/models/download", body.dump(), "application/json"); };
    EXPECT_EQ(post({{"url", "file:///etc/passwd"}})->status, 400);
    EXPECT_EQ(post({{"url", files.url("/models/weights.bin")}})->status, 400);
    EXPECT_EQ(post({{"url", files.url("/models/x.gguf")}, {"sha256", "abc"}})->status, 400);
    // A name with a path in it becomes a plain file name inside the models folder.
    auto r = post({{"url", files.url("/models/x.gguf")}, {"name", "../../../tmp/evil.gguf"}});
    ASSERT_EQ(r->status, 202);
    EXPECT_EQ(wait_job(c, body_json(r)["job"]["id"])["result"]["name"], "llm/tmpevil.gguf");
    // The wrong checksum: failed, nothing kept.
    r = post({{"url", files.url("/models/tiny.gguf")}, {"sha256", std::string(64, '0')}, {"name", "wrong.gguf"}});
    Json job = wait_job(c, body_json(r)["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("SHA-256 mismatch"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(server.data_dir() + "/models/llm/wrong.gguf"));
    // Not a model at all.
    r = post({{"url", files.url("/junk/file")}, {"name", "junk.gguf"}});
    job = wait_job(c, body_json(r)["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("not a GGUF"), std::string::npos);
    // Loading only takes names from the listing.
    EXPECT_EQ(c.Post("/api/models/load", R"({"path":"../../etc/passwd"})", "application/json")->status, 404);
    EXPECT_EQ(c.Post("/api/models/load", R"({"path":"llm/junk.gguf"})", "application/json")->status, 404);
    const Json list = body_json(c.Get("/api/models"))["models"];
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["name"], "llm/tmpevil.gguf");
}

}  // namespace
TEST(Models, TheKvCacheTypeIsASettingThatReloadsTheModelAndSaysWhenItCannot) {
    ServerProcess server(Json{{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}}}});
    ASSERT_EQ(settled_health(server)["components"]["llm"].value("state", ""), "ready");
    auto c = server.client();
    auto bad = c.Patch("/api/settings", Json{{"llm", {{"kv_cache_type", "q3_k"}}}}.dump(), "application/json");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(body_json(bad)["error"].value("field", ""), "llm.kv_cache_type");
    // The tiny model's 16-wide heads cannot hold q8_0's 32-value blocks: the model reloads and
    // health says what to set, instead of a crash.
    auto q8 = c.Patch("/api/settings", Json{{"llm", {{"kv_cache_type", "q8_0"}}}}.dump(), "application/json");
    ASSERT_TRUE(q8);
    EXPECT_EQ(q8->status, 200);
    const Json llm = settled_health(server)["components"]["llm"];
    EXPECT_EQ(llm.value("state", ""), "error") << llm;
    EXPECT_NE(llm.value("detail", "").find("llm.kv_cache_type"), std::string::npos) << llm;
    c.Patch("/api/settings", Json{{"llm", {{"kv_cache_type", "f16"}}}}.dump(), "application/json");
    EXPECT_EQ(settled_health(server)["components"]["llm"].value("state", ""), "ready");
}

}  // namespace mc::test
