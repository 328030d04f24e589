// Black-box tests of the server process: start, stop, health, settings, UI serving, failed starts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>

#include "server_process.hpp"

namespace mc::test {
namespace {

TEST(Cli, HelpAndVersion) {
    auto help = run_mycandy({"--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.output.find("--data-dir"), std::string::npos);
    auto version = run_mycandy({"--version"});
    EXPECT_EQ(version.exit_code, 0);
    EXPECT_NE(version.output.find("llama.cpp v0.4.0"), std::string::npos) << version.output;
    auto bad = run_mycandy({"serve", "--port", "eighty"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.output.find("--port"), std::string::npos);
}

TEST(Health, ReportsComponentsAndTheLlamaCppBuild) {
    ServerProcess server;
    auto r = server.client().Get("/api/health");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const Json h = body_json(r);
    EXPECT_EQ(h["status"], "ok");
    EXPECT_TRUE(h["version"].is_string());
    EXPECT_EQ(h["components"]["db"]["state"], "ready");
    // Speech out works out of the box with the system voice (espeak-ng, installed by setup).
    EXPECT_EQ(h["components"]["tts"]["state"], "ready");
    EXPECT_EQ(h["components"]["tts"]["engine"], "espeak");
    EXPECT_EQ(h["components"]["tts"]["engines"]["embedded"]["state"], "unavailable");
    EXPECT_EQ(h["components"]["stt"]["state"], "not_configured");
    EXPECT_FALSE(h["components"]["stt"]["detail"].get<std::string>().empty());
    // Pictures: ComfyUI at the prototype's address, which nothing answers here: named, with the fix.
    EXPECT_EQ(h["components"]["image"]["state"], "unavailable");
    EXPECT_NE(h["components"]["image"]["detail"].get<std::string>().find("http://127.0.0.1:8188"), std::string::npos);
    const Json& llm = h["components"]["llm"];
    EXPECT_EQ(llm["backend"], "embedded");
    EXPECT_EQ(llm["llama_cpp"]["release"], "v0.4.0");
    EXPECT_EQ(llm["llama_cpp"]["device"], "CPU");
    // No model in a fresh data dir: the detail names the path and the fix.
    EXPECT_EQ(llm["state"], "not_configured");
    EXPECT_NE(llm["detail"].get<std::string>().find("L3-8B-Stheno"), std::string::npos);
}

TEST(Health, AModelPathThatIsNotGgufIsReported) {
    const std::string dir = make_temp_dir("mc-model");
    write_file(dir + "/fake.gguf", "this is not a model");
    ServerProcess server(Json{{"llm", {{"model_path", dir + "/fake.gguf"}}}});
    const Json h = settled_health(server);
    EXPECT_EQ(h["components"]["llm"]["state"], "error");
    EXPECT_NE(h["components"]["llm"]["detail"].get<std::string>().find("fake.gguf: not a readable GGUF model"),
              std::string::npos) << h.dump();
}

TEST(Lifecycle, SigtermAndSigintStopCleanlyAndLogToTheDataDir) {
    for (int sig : {SIGTERM, SIGINT}) {
        ServerProcess server;
        EXPECT_EQ(server.stop(sig), 0);
        const std::string log = read_file(server.data_dir() + "/logs/mycandy.log");
        EXPECT_NE(log.find("serving http://127.0.0.1:"), std::string::npos) << log;
        EXPECT_NE(log.find("stopped"), std::string::npos) << log;
    }
}

TEST(Lifecycle, PortInUseFailsWithOneClearLine) {
    // Hold a port with a listening socket, then ask mycandy for it.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const std::string port = std::to_string(ntohs(addr.sin_port));
    const std::string dir = make_temp_dir("mc-port");
    auto r = run_mycandy({"serve", "--port", port, "--data-dir", dir + "/data", "--config", dir + "/none.json"});
    ::close(fd);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("cannot listen on 127.0.0.1:" + port + ": Address already in use"), std::string::npos)
        << r.output;
}

TEST(Lifecycle, SecondServerOnTheSamePortIsRefused) {
    ServerProcess first;
    const std::string dir = make_temp_dir("mc-port2");
    auto r = run_mycandy({"serve", "--port", std::to_string(first.port()), "--data-dir", dir, "--config", dir + "/x.json"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("Address already in use"), std::string::npos) << r.output;
    EXPECT_TRUE(first.client().Get("/api/health"));
}

TEST(Lifecycle, UnwritableDataDirFailsNamingIt) {
    const std::string dir = make_temp_dir("mc-dd");
    write_file(dir + "/file", "a file, not a folder");
    auto r = run_mycandy({"serve", "--port", "0", "--data-dir", dir + "/file/data", "--config", dir + "/none.json"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("data dir " + dir + "/file/data"), std::string::npos) << r.output;
}

TEST(Lifecycle, InvalidSettingsFailNamingTheKey) {
    const std::string dir = make_temp_dir("mc-cfg");
    write_file(dir + "/settings.json", R"({"llm":{"context_size":"large"}})");
    auto r = run_mycandy({"serve", "--port", "0", "--data-dir", dir + "/data", "--config", dir + "/settings.json"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("llm.context_size"), std::string::npos) << r.output;

    write_file(dir + "/broken.json", "{\"llm\": ");
    r = run_mycandy({"serve", "--port", "0", "--data-dir", dir + "/data", "--config", dir + "/broken.json"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;
}

TEST(Lifecycle, UnknownSettingsKeysOnlyWarn) {
    ServerProcess server(Json{{"llm", {{"modle_path", "typo.gguf"}}}});
    EXPECT_NE(read_file(server.log_path()).find("unknown settings key 'llm.modle_path'"), std::string::npos);
}

TEST(Lifecycle, NewerDatabaseRefusesToStart) {
    const std::string dir = make_temp_dir("mc-newdb");
    {
        ServerProcess server(Json::object(), {});
        server.stop();
        std::filesystem::copy(server.data_dir(), dir + "/data", std::filesystem::copy_options::recursive);
    }
    // Bump the schema version with the sqlite3 command line tool, as a newer mycandy would have.
    ASSERT_EQ(std::system(("sqlite3 " + dir + "/data/characters.db 'PRAGMA user_version = 99'").c_str()), 0);
    auto r = run_mycandy({"serve", "--port", "0", "--data-dir", dir + "/data", "--config", dir + "/none.json"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("schema version 99, newer than this mycandy"), std::string::npos) << r.output;
}

TEST(Access, ListeningBeyondThisMachineNeedsAToken) {
    const std::string dir = make_temp_dir("mc-host");
    auto r = run_mycandy({"serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", dir + "/data", "--config", dir + "/none.json"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("refusing to listen on 0.0.0.0 without an access token: set server.api_token"), std::string::npos)
        << r.output;
}

TEST(Access, WithATokenEveryRequestMustCarryIt) {
    ServerProcess server(Json{{"server", {{"api_token", "s3cret-token"}}}}, {"--host", "0.0.0.0"});
    auto c = server.client();
    auto r = c.Get("/api/health");
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(body_json(r)["error"]["field"], "token");
    EXPECT_EQ(c.Get("/v1/models")->status, 401);
    EXPECT_EQ(c.Get("/api/health", {{"Authorization", "Bearer wrong-token!"}})->status, 401);
    EXPECT_EQ(c.Get("/api/health", {{"Authorization", "Bearer s3cret-token"}})->status, 200);
    // A browser opens /ui/?token=... once and gets a cookie.
    r = c.Get("/ui/?token=s3cret-token");
    ASSERT_EQ(r->status, 302);
    EXPECT_NE(r->get_header_value("Set-Cookie").find("mycandy_token=s3cret-token; Path=/; HttpOnly"), std::string::npos);
    EXPECT_EQ(c.Get("/api/characters", {{"Cookie", "theme=dark; mycandy_token=s3cret-token"}})->status, 200);
    EXPECT_EQ(c.Get("/ui/?token=nope")->status, 401);
    // The settings never show it.
    EXPECT_EQ(body_json(c.Get("/api/settings", {{"Authorization", "Bearer s3cret-token"}}))["server"]["api_token"], "********");
}

TEST(Settings, GetRedactsAndPatchValidatesAndPersists) {
    ServerProcess server;
    auto c = server.client();
    auto got = body_json(c.Get("/api/settings"));
    EXPECT_EQ(got["llm"]["llama_cpp_url"], "http://127.0.0.1:8080");
    EXPECT_EQ(got["media"]["comfyui_url"], "http://127.0.0.1:8188");

    auto r = c.Patch("/api/settings", R"({"llm":{"temperature":1.1,"api_key":"sk-local"}})", "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["llm"]["api_key"], "********");
    const Json on_disk = Json::parse(read_file(server.config_path()));
    EXPECT_EQ(on_disk["llm"]["api_key"], "sk-local");
    EXPECT_DOUBLE_EQ(on_disk["llm"]["temperature"].get<double>(), 1.1);

    r = c.Patch("/api/settings", R"({"media":{"tts_port":"8020"}})", "application/json");
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["field"], "media.tts_port");
    r = c.Patch("/api/settings", R"({"llm":{"nonsense":1}})", "application/json");
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["field"], "llm.nonsense");
    r = c.Patch("/api/settings", "{not json", "application/json");
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["code"], "invalid_input");
    // Failed patches left the file as it was.
    EXPECT_EQ(Json::parse(read_file(server.config_path())), on_disk);

    // The settings survive a restart.
    server.stop();
    server.restart();
    EXPECT_DOUBLE_EQ(body_json(server.client().Get("/api/settings"))["llm"]["temperature"].get<double>(), 1.1);
}

TEST(Ui, ServesTheBuiltUiWithClientSideRoutesAndRedirectsRoot) {
    const std::string ui = make_temp_dir("mc-ui");
    write_file(ui + "/index.html", "<!doctype html><div id=root></div>");
    write_file(ui + "/assets/app-1234.js", "console.log(1)");
    ServerProcess server(Json{{"server", {{"ui_dir", ui}}}});
    auto c = server.client();
    auto root = c.Get("/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->status, 302);
    EXPECT_EQ(root->get_header_value("Location"), "/ui/");
    auto index = c.Get("/ui/");
    EXPECT_EQ(index->status, 200);
    EXPECT_NE(index->body.find("id=root"), std::string::npos);
    auto js = c.Get("/ui/assets/app-1234.js");
    EXPECT_EQ(js->status, 200);
    EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos);
    EXPECT_EQ(c.Get("/ui/chats/abc")->body, index->body);  // Client-side route.
    EXPECT_EQ(c.Get("/ui/missing.js")->status, 404);
    EXPECT_EQ(c.Get("/ui/../../etc/passwd")->status, 404);
    EXPECT_EQ(c.Get("/ui/%2e%2e/%2e%2e/etc/passwd")->status, 404);
}

// https mode (issue 13: a phone's browser allows the microphone only on https): the UI, the API
// and the health's fingerprint over TLS, with a self-signed certificate the server made for this
// machine and keeps across restarts; plain http on that port gets nothing.
TEST(Https, ServesTheUiAndApiWithItsOwnCertificateKeptAcrossRestarts) {
    const std::string ui = make_temp_dir("mc-ui");
    write_file(ui + "/index.html", "<!doctype html><div id=root></div>");
    ServerProcess server(Json{{"server", {{"ui_dir", ui}, {"https", true}}}});
    const std::string cert = server.data_dir() + "/tls/cert.pem";
    ASSERT_TRUE(std::filesystem::exists(cert)) << read_file(server.log_path());
    // A client that trusts exactly this certificate, checking the name as a browser does.
    httplib::SSLClient tls("127.0.0.1", server.port());
    tls.set_ca_cert_path(cert.c_str());
    tls.enable_server_certificate_verification(true);
    auto index = tls.Get("/ui/");
    ASSERT_TRUE(index) << httplib::to_string(index.error()) << " verify " << tls.get_openssl_verify_result();
    EXPECT_EQ(index->status, 200);
    EXPECT_NE(index->body.find("id=root"), std::string::npos);
    httplib::SSLClient by_name("localhost", server.port());
    by_name.set_ca_cert_path(cert.c_str());
    by_name.enable_server_certificate_verification(true);
    auto health = by_name.Get("/api/health");
    ASSERT_TRUE(health) << httplib::to_string(health.error());
    const Json h = body_json(health);
    EXPECT_EQ(h["server"]["scheme"], "https");
    const std::string fingerprint = h["server"]["tls_fingerprint"].get<std::string>();
    EXPECT_EQ(fingerprint.size(), 95u) << fingerprint;
    EXPECT_NE(read_file(server.log_path()).find(fingerprint), std::string::npos) << "the log shows the fingerprint to compare";
    // Changes from the UI's own origin pass the origin check over https.
    auto created = tls.Post("/api/characters", {{"Origin", "https://127.0.0.1:" + std::to_string(server.port())}},
                            R"({"name":"Mia"})", "application/json");
    ASSERT_TRUE(created);
    EXPECT_EQ(created->status, 201) << created->body;
    // Plain http on the https port is not served.
    httplib::Client plain("127.0.0.1", server.port());
    plain.set_read_timeout(3, 0);
    auto p = plain.Get("/api/health");
    EXPECT_TRUE(!p || p->status != 200);
    // A restart keeps the certificate: the browser's exception stays valid.
    server.stop();
    server.restart();
    EXPECT_EQ(body_json(server.client().Get("/api/health"))["server"]["tls_fingerprint"], fingerprint);
    const Json plain_health = body_json(ServerProcess().client().Get("/api/health"));
    EXPECT_EQ(plain_health["server"]["scheme"], "http");
    EXPECT_TRUE(plain_health["server"]["tls_fingerprint"].is_null());
}

TEST(Https, OwnCertificateFilesAreCheckedAtStart) {
    const std::string dir = make_temp_dir("mc-tls");
    write_file(dir + "/cert.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    write_file(dir + "/settings.json", Json{{"server", {{"tls_cert", dir + "/cert.pem"}, {"tls_key", dir + "/key.pem"}}}}.dump());
    auto r = run_mycandy({"serve", "--https", "--port", "0", "--data-dir", dir + "/data", "--config", dir + "/settings.json"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("server.tls_cert: " + dir + "/cert.pem is not a readable PEM certificate"), std::string::npos) << r.output;
    write_file(dir + "/half.json", Json{{"server", {{"https", true}, {"tls_cert", dir + "/cert.pem"}}}}.dump());
    r = run_mycandy({"serve", "--port", "0", "--data-dir", dir + "/data", "--config", dir + "/half.json"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("server.tls_cert and server.tls_key go together"), std::string::npos) << r.output;
}

TEST(Errors, UnknownRoutesAndOversizeBodiesAreJson) {
    ServerProcess server;
    auto c = server.client();
    auto r = c.Get("/api/nothing-here");
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(body_json(r)["error"]["code"], "not_found");
    std::string huge(70u << 20, 'x');
    r = c.Post("/api/characters", huge, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(body_json(r)["error"]["code"], "too_large");
    EXPECT_EQ(c.Get("/api/health")->status, 200);
}

}  // namespace
}  // namespace mc::test
