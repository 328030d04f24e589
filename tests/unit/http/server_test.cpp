// http::Server lifecycle: a stop that comes before the server listens still stops it.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <httplib.h>

#include "http/server.hpp"
#include "http/tls.hpp"

namespace mc::http {
namespace {

// Regression (issue 9, item 7): a SIGTERM during start-up reached stop() before listen, which
// httplib ignored, and the server then ran until SIGKILL.
TEST(HttpServer, AStopBeforeRunMakesRunReturn) {
    Server server(ServerOptions{});
    ASSERT_TRUE(server.bind("127.0.0.1", 0));
    server.stop();
    auto ran = std::async(std::launch::async, [&] { server.run(); });
    EXPECT_EQ(ran.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "run() kept serving after stop()";
    if (ran.wait_for(std::chrono::seconds(0)) != std::future_status::ready) std::abort();  // Would hang the suite.
}

TEST(HttpServer, AStopWhileStartingStopsItWhicheverComesFirst) {
    for (int i = 0; i < 50; ++i) {
        Server server(ServerOptions{});
        ASSERT_TRUE(server.bind("127.0.0.1", 0));
        auto ran = std::async(std::launch::async, [&] { server.run(); });
        if (i % 2) std::this_thread::yield();
        server.stop();
        ASSERT_EQ(ran.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "round " << i;
    }
}

}  // namespace
}  // namespace mc::http

namespace mc::http {
namespace {

int connect_to(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return;
        done += static_cast<size_t>(n);
    }
}

// A long computation (a transcription) learns that its client went away: without it, a closed
// tab or a cancelled recording kept the recognizer busy for the whole clip (issue 13).
TEST(HttpServer, AHandlerSeesItsClientGoAway) {
    Server server(ServerOptions{});
    std::promise<std::pair<bool, bool>> seen;  // (gone at the start, gone while waiting)
    std::promise<void> started;
    server.route(Method::Post, "/slow", [&](const Request& req) {
        const bool at_start = req.client_gone();
        started.set_value();
        auto flag = std::make_shared<std::atomic<bool>>(false);
        {
            ClientWatch watch(req, flag);
            for (int i = 0; i < 1000 && !flag->load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        seen.set_value({at_start, flag->load()});
        return Response{};
    });
    ASSERT_TRUE(server.bind("127.0.0.1", 0));
    std::thread runner([&] { server.run(); });
    const int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    send_all(fd, "POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
    // The handler runs while the client waits; then the client gives up.
    ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    ::close(fd);
    auto result = seen.get_future();
    ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the handler never learned that its client left";
    const auto [at_start, later] = result.get();
    EXPECT_FALSE(at_start) << "a waiting client was taken for gone";
    EXPECT_TRUE(later);
    server.stop();
    runner.join();
}

std::string temp_dir() {
    char tmpl[] = "/tmp/mc-tls-XXXXXX";
    return mkdtemp(tmpl);
}

// https mode's own certificate: made once, kept across starts (a phone's exception stays
// valid), made again when a name it must carry is missing; the key is private to the user.
TEST(Tls, TheSelfSignedCertificateIsKeptAndNamesThisMachine) {
    const std::string dir = temp_dir() + "/tls";
    auto first = ensure_self_signed(dir, {"phone-test.lan", "192.168.77.5"});
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(first->generated);
    EXPECT_EQ(first->fingerprint.size(), 32u * 3 - 1) << first->fingerprint;
    struct stat st{};
    ASSERT_EQ(::stat(first->key_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto again = ensure_self_signed(dir, {"phone-test.lan", "192.168.77.5"});
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->generated);
    EXPECT_EQ(again->fingerprint, first->fingerprint);
    auto more = ensure_self_signed(dir, {"phone-test.lan", "10.1.2.3"});
    ASSERT_TRUE(more);
    EXPECT_TRUE(more->generated) << "a certificate that does not name 10.1.2.3 was kept";
    EXPECT_NE(more->fingerprint, first->fingerprint);
    // A damaged file is replaced, not served.
    { std::ofstream(more->cert_file) << "garbage"; }
    auto repaired = ensure_self_signed(dir, {});
    ASSERT_TRUE(repaired);
    EXPECT_TRUE(repaired->generated);
    EXPECT_TRUE(check_certificate(repaired->cert_file, repaired->key_file));
    auto wrong_key = check_certificate(repaired->cert_file, more->cert_file);
    ASSERT_FALSE(wrong_key);
    EXPECT_EQ(wrong_key.error().field, "server.tls_key");
}

// The server speaks TLS with it, and a client that trusts exactly this certificate verifies the
// connection by name (what a phone does once the person accepted it).
TEST(Tls, TheServerAnswersOverHttpsWithAVerifiableCertificate) {
    auto files = ensure_self_signed(temp_dir() + "/tls", {});
    ASSERT_TRUE(files) << files.error().message;
    ServerOptions options;
    options.tls_cert_file = files->cert_file;
    options.tls_key_file = files->key_file;
    Server server(options);
    server.route(Method::Get, "/hello", [](const Request&) { return Response{200, "text/plain", "hi", {}, {}}; });
    ASSERT_TRUE(server.bind("127.0.0.1", 0));
    std::thread runner([&] { server.run(); });
    httplib::SSLClient tls("127.0.0.1", server.port());
    tls.set_ca_cert_path(files->cert_file.c_str());
    tls.enable_server_certificate_verification(true);
    auto r = tls.Get("/hello");
    ASSERT_TRUE(r) << "TLS request failed: " << httplib::to_string(r.error()) << " (verify result " << tls.get_openssl_verify_result() << ")";
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hi");
    httplib::Client plain("127.0.0.1", server.port());
    plain.set_read_timeout(2, 0);
    auto p = plain.Get("/hello");
    EXPECT_TRUE(!p || p->status != 200) << "plain http was answered on the https port";
    server.stop();
    runner.join();
}

TEST(Tls, AnUnusableCertificateIsRefusedAtBind) {
    const std::string dir = temp_dir();
    { std::ofstream(dir + "/c.pem") << "not a certificate"; }
    ServerOptions options;
    options.tls_cert_file = dir + "/c.pem";
    options.tls_key_file = dir + "/c.pem";
    Server server(options);
    auto bound = server.bind("127.0.0.1", 0);
    ASSERT_FALSE(bound);
    EXPECT_NE(bound.error().message.find("certificate"), std::string::npos) << bound.error().message;
}

}  // namespace
}  // namespace mc::http
