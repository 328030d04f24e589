// Crash consistency (issue 9): the server is killed with SIGKILL in the middle of streamed replies,
// again and again. After each restart the database passes SQLite's integrity check, every user
// message that got its `user` event is there, a partial reply is either there (whole and readable)
// or absent, and saved KV states are either valid or ignored: the chat goes on.
// MYCANDY_CRASH_ROUNDS sets the number of kills (default 20; bench/ runs more).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <set>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

std::string integrity_check(const std::string& db_path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return "cannot open";
    std::string out;
    sqlite3_exec(
        db, "PRAGMA integrity_check",
        [](void* o, int, char** values, char**) {
            *static_cast<std::string*>(o) += values[0] ? values[0] : "";
            return 0;
        },
        &out, nullptr);
    sqlite3_close(db);
    return out;
}

TEST(CrashConsistency, KilledMidStreamLosesNothingTheUserWasShownAndLeavesNoCorruption) {
    const char* env = std::getenv("MYCANDY_CRASH_ROUNDS");
    const int rounds = env ? std::max(1, std::atoi(env)) : 20;
    ServerProcess server(Json{{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", 200},
                                       {"threads", 2}}}});
    settled_health(server);
    auto c = server.client();
    const std::string character =
        body_json(c.Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json"))["id"];
    const std::string chat =
        body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
    std::set<std::string> shown_user_ids;  // User messages whose `user` event reached the client.
    int partial_kept = 0;
    for (int round = 0; round < rounds; ++round) {
        const size_t kill_after_tokens = static_cast<size_t>(round % 6);  // 0: right after the user event.
        size_t tokens = 0;
        bool killed = false;
        auto turn = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                             Json{{"content", "Runde " + std::to_string(round) + ": erzähl mir was"}}.dump(),
                             [&](const SseEvent& e) {
                                 if (e.event == "user") shown_user_ids.insert(e.data["message"]["id"].get<std::string>());
                                 if (e.event == "token") ++tokens;
                                 if ((e.event == "user" && kill_after_tokens == 0) ||
                                     (e.event == "token" && tokens >= kill_after_tokens)) {
                                     server.stop(SIGKILL);
                                     killed = true;
                                     return true;
                                 }
                                 return false;
                             });
        ASSERT_TRUE(killed || turn.count("done") == 1) << "round " << round << ": " << turn.body;
        if (!killed) server.stop(SIGKILL);

        EXPECT_EQ(integrity_check(server.data_dir() + "/characters.db"), "ok") << "round " << round;
        server.restart();
        settled_health(server);
        auto listed = server.client().Get(("/api/chats/" + chat + "/messages?limit=500").c_str());
        ASSERT_TRUE(listed) << "round " << round;
        ASSERT_EQ(listed->status, 200) << listed->body;
        const Json messages = body_json(listed)["messages"];
        std::set<std::string> present;
        for (const auto& m : messages) {
            present.insert(m["id"].get<std::string>());
            const std::string status = m["status"];
            EXPECT_TRUE(status == "complete" || status == "partial" || status == "error") << m.dump();
            EXPECT_EQ(m["content"], m["swipes"][m["swipe_id"].get<size_t>()]) << m.dump();
            if (m["role"] == "assistant" && status == "partial") ++partial_kept;
        }
        for (const auto& id : shown_user_ids) EXPECT_TRUE(present.contains(id)) << "user message " << id << " lost in round " << round;
    }
    // Whatever KV states the kills left behind, the chat goes on.
    auto turn = post_sse(server.port(), "/api/chats/" + chat + "/messages", Json{{"content", "Bist du noch da?"}}.dump());
    EXPECT_EQ(turn.count("done"), 1u) << turn.body;
    EXPECT_EQ(integrity_check(server.data_dir() + "/characters.db"), "ok");
    std::printf("crash consistency: %d kills, %zu user messages shown and kept, %d partial replies kept\n", rounds,
                shown_user_ids.size(), partial_kept);
}

}  // namespace
}  // namespace mc::test
