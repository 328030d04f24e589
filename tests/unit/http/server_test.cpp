// http::Server lifecycle: a stop that comes before the server listens still stops it.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "http/server.hpp"

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
