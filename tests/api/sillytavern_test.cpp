// SillyTavern chat files through the real server (issue 15 item 3): imported in each date form it
// writes, hidden messages never in the prompt, narration kept as narration, and the export giving
// back the file it came from, apart from what was changed here.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(MYCANDY_TEST_DATA) + "/sillytavern/" + name, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<Json> lines_of(const std::string& text) {
    std::vector<Json> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) out.push_back(Json::parse(line));
    }
    return out;
}

class SillyTavernChats : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_server = new ServerProcess(Json{
            {"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", 4}, {"threads", 2}}}});
        settled_health(*s_server);
    }
    static void TearDownTestSuite() {
        delete s_server;
        s_server = nullptr;
    }
    void SetUp() override {
        auto r = c().Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json");
        character = body_json(r)["id"];
    }
    httplib::Client c() const {
        auto client = s_server->client();
        client.set_read_timeout(60, 0);
        return client;
    }
    Json import(const std::string& text) {
        auto r = c().Post(("/api/characters/" + character + "/chats/import").c_str(), text, "application/jsonl");
        EXPECT_TRUE(r);
        EXPECT_EQ(r->status, 201) << r->body.substr(0, 400);
        return body_json(r);
    }
    std::string export_jsonl(const std::string& chat) {
        auto r = c().Get(("/api/chats/" + chat + "/export?format=jsonl").c_str());
        EXPECT_EQ(r->status, 200);
        return r->body;
    }
    Json prompt(const std::string& chat) { return body_json(c().Get(("/api/chats/" + chat + "/prompt?message=Hi").c_str())); }

    static ServerProcess* s_server;
    std::string character;
};

ServerProcess* SillyTavernChats::s_server = nullptr;

TEST_F(SillyTavernChats, EachDateFormImportsAndExportsBackUnchanged) {
    for (const char* file : {"iso.jsonl", "epoch_ms.jsonl", "humanized.jsonl", "at_hms.jsonl", "file_name.jsonl"}) {
        SCOPED_TRACE(file);
        const std::string text = fixture(file);
        const Json imported = import(text);
        const Json msgs = imported["messages"];
        ASSERT_EQ(msgs.size(), 6u);
        EXPECT_GE(msgs[0]["created_at"].get<int64_t>(), 1727518500000LL);
        EXPECT_LE(msgs[0]["created_at"].get<int64_t>(), 1727518502123LL);
        EXPECT_EQ(msgs[5]["created_at"].get<int64_t>() - msgs[0]["created_at"].get<int64_t>(), 300000);
        EXPECT_EQ(msgs[2]["role"], "system");
        EXPECT_EQ(msgs[2]["name"], "System");
        EXPECT_EQ(msgs[3]["hidden"], true);
        EXPECT_EQ(msgs[3]["role"], "assistant");
        EXPECT_EQ(msgs[4]["hidden"], true);
        EXPECT_EQ(msgs[1]["name"], "Jonas");
        // The chat's times are the file's, not the import's.
        EXPECT_EQ(imported["chat"]["created_at"], msgs[0]["created_at"]);
        const auto got = lines_of(export_jsonl(imported["chat"]["id"]));
        const auto want = lines_of(text);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "line " << i + 1;
    }
}

TEST_F(SillyTavernChats, HiddenMessagesNeverReachThePromptAndNarrationDoes) {
    const Json imported = import(fixture("iso.jsonl"));
    const std::string chat = imported["chat"]["id"];
    Json p = prompt(chat);
    ASSERT_TRUE(p.contains("text")) << p;
    EXPECT_EQ(p["text"].get<std::string>().find("GEHEIM-VERSTECKT"), std::string::npos) << p["text"];
    EXPECT_EQ(p["text"].get<std::string>().find("VERSTECKT-AUCH"), std::string::npos) << p["text"];
    bool narration = false;
    for (const auto& m : p["messages"]) {
        if (m["content"] == "Draußen beginnt es zu regnen.") narration = m["role"] == "system";
        EXPECT_NE(m["content"], "GEHEIM-VERSTECKT: diese Antwort ist ausgeblendet.");
    }
    EXPECT_TRUE(narration) << p["messages"];
    // Unhide it here: it is in the prompt, and the export says so.
    const std::string hidden_id = imported["messages"][3]["id"];
    auto r = c().Patch(("/api/messages/" + hidden_id).c_str(), R"({"hidden":false})", "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["hidden"], false);
    p = prompt(chat);
    EXPECT_NE(p["text"].get<std::string>().find("GEHEIM-VERSTECKT"), std::string::npos);
    auto lines = lines_of(export_jsonl(chat));
    EXPECT_EQ(lines[4]["is_system"], false);
    EXPECT_EQ(lines[4]["gen_finished"], "2024-09-28T10:18:02.123Z") << "the rest of the line is kept";
    // And hide one of ours.
    const std::string user_id = imported["messages"][1]["id"];
    ASSERT_EQ(c().Patch(("/api/messages/" + user_id).c_str(), R"({"hidden":true})", "application/json")->status, 200);
    p = prompt(chat);
    EXPECT_EQ(p["text"].get<std::string>().find("Wie war dein Tag?"), std::string::npos);
    r = c().Patch(("/api/messages/" + user_id).c_str(), R"({"hidden":"yes"})", "application/json");
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["field"], "hidden");
}

TEST_F(SillyTavernChats, ATurnAfterTheImportIsAddedAndTheFileStaysTheSame) {
    const std::string text = fixture("humanized.jsonl");
    const Json imported = import(text);
    const std::string chat = imported["chat"]["id"];
    auto turn = post_sse(s_server->port(), "/api/chats/" + chat + "/messages", R"({"content":"Erzähl mir mehr."})");
    ASSERT_EQ(turn.count("done"), 1u) << turn.body;
    const auto got = lines_of(export_jsonl(chat));
    const auto want = lines_of(text);
    ASSERT_EQ(got.size(), want.size() + 2);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "line " << i + 1;
    EXPECT_EQ(got[want.size()]["name"], "Jonas") << "the file's persona";
    EXPECT_EQ(got[want.size()]["is_user"], true);
    EXPECT_EQ(got[want.size()]["mes"], "Erzähl mir mehr.");
    EXPECT_EQ(got[want.size() + 1]["name"], "Mia");
    EXPECT_EQ(got[want.size() + 1]["is_user"], false);
    // Our own JSON keeps the SillyTavern parts: imported again, it still exports the same file.
    auto ours = c().Get(("/api/chats/" + chat + "/export?format=json").c_str());
    ASSERT_EQ(ours->status, 200);
    const Json again = import(ours->body);
    EXPECT_EQ(lines_of(export_jsonl(again["chat"]["id"])), got);
}

}  // namespace
}  // namespace mc::test
