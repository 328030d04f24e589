// Black-box tests of memory: summaries, facts, retrieval into the prompt, search, export/import.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"
#include "standin_llm.hpp"

namespace mc::test {
namespace {

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char ch : s) {
        if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.') {
            out += static_cast<char>(ch);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", ch);
            out += buf;
        }
    }
    return out;
}

class MemoryApi : public ::testing::Test {
protected:
    void start(Json extra = Json::object()) {
        // No picture instruction: these token counts were set for the tiny model's replies to this
        // exact prompt; a longer system prompt changes the random replies, and a sampled reply whose
        // tokens are not the canonical tokenization of its text re-tokenizes differently, which
        // moves the figures (not the caching of the stable part, which the instruction is in).
        Json s = {{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", 12}, {"threads", 2}}},
                  {"chat", {{"user_name", "Jonas"}}}, {"media", {{"image_instruct", false}}}};
        s.merge_patch(extra);
        server = std::make_unique<ServerProcess>(s);
        settled_health(*server);
        c = std::make_unique<httplib::Client>(server->client());
        character = body_json(c->Post("/api/characters", R"({"name":"Mia","description":"A painter.","first_mes":"Hallo!"})",
                                      "application/json"))["id"];
        chat = body_json(c->Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
    }
    SseResult send(const std::string& text) {
        return post_sse(server->port(), "/api/chats/" + chat + "/messages",
                        Json{{"content", text}, {"sampling", {{"seed", 3}}}}.dump());
    }
    Json get(const std::string& path) { return body_json(c->Get(path.c_str())); }
    httplib::Result post(const std::string& path, const Json& body) {
        return c->Post(path.c_str(), body.dump(), "application/json");
    }
    Json prompt(const std::string& message = "") {
        return get("/api/chats/" + chat + "/prompt" + (message.empty() ? "" : "?message=" + url_encode(message)));
    }
    // Polls a job until it has ended.
    Json wait_job(const std::string& id) {
        Json j;
        for (int i = 0; i < 3000; ++i) {
            j = get("/api/jobs/" + id);
            if (j["status"] == "done" || j["status"] == "failed" || j["status"] == "cancelled") break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return j;
    }

    std::unique_ptr<ServerProcess> server;
    std::unique_ptr<httplib::Client> c;
    std::string character, chat;
};

TEST_F(MemoryApi, PinnedFactsAreInTheStablePartOfEveryPrompt) {
    start();
    auto r = post("/api/chats/" + chat + "/memory/facts", {{"text", "{{user}}'s birthday is on the 3rd of May"}, {"pinned", true}});
    ASSERT_EQ(r->status, 201) << r->body;
    const Json p = prompt("Hallo!");
    const std::string system = p["messages"][0]["content"];
    EXPECT_NE(system.find("Facts to always remember:\n- Jonas's birthday is on the 3rd of May"), std::string::npos) << system;
    EXPECT_NE(p["text"].get<std::string>().find("3rd of May"), std::string::npos);
    EXPECT_GT(p["tokens"]["system"].get<int>(), 10);
    EXPECT_EQ(p["tokens"]["context"], 2048);
}

TEST_F(MemoryApi, ARelevantFactIsRetrievedAndAnIrrelevantOneIsNot) {
    start();
    ASSERT_EQ(post("/api/chats/" + chat + "/memory/facts", {{"text", "Jonas has a dog called Bello"}, {"pinned", false}})->status, 201);
    ASSERT_EQ(post("/api/chats/" + chat + "/memory/facts", {{"text", "Jonas works night shifts as a nurse"}, {"pinned", false}})->status, 201);
    const std::string about_dog = prompt("How is Bello doing?")["text"];
    EXPECT_NE(about_dog.find("Jonas has a dog called Bello"), std::string::npos) << about_dog;
    EXPECT_EQ(about_dog.find("nurse"), std::string::npos);
    const std::string about_work = prompt("Were the night shifts hard?")["text"];
    EXPECT_NE(about_work.find("nurse"), std::string::npos);
    EXPECT_EQ(about_work.find("Bello"), std::string::npos);
}

TEST_F(MemoryApi, FactsAreValidatedAndSyntaxInThemIsJustText) {
    start();
    const std::string base = "/api/chats/" + chat + "/memory/facts";
    EXPECT_EQ(post(base, {{"text", ""}})->status, 400);
    EXPECT_EQ(post(base, {{"text", 5}})->status, 400);
    EXPECT_EQ(post(base, {{"text", "x"}, {"pinned", "yes"}})->status, 400);
    EXPECT_EQ(post(base, {{"text", std::string(1001, 'a')}})->status, 413);
    auto r = post(base, {{"text", "x'); DROP TABLE facts;-- \"NEAR(dog cat)\" OR dog*"}, {"pinned", false}});
    ASSERT_EQ(r->status, 201);
    const std::string id = body_json(r)["id"];
    EXPECT_EQ(prompt("dog NEAR( \"unbalanced")["text"].get<std::string>().find("DROP TABLE facts") != std::string::npos, true);
    auto p = c->Patch(("/api/memory/facts/" + id).c_str(), R"({"pinned":true,"text":"Jonas likes cats"})", "application/json");
    ASSERT_EQ(p->status, 200);
    EXPECT_EQ(body_json(p)["pinned"], true);
    EXPECT_EQ(c->Patch(("/api/memory/facts/" + id).c_str(), R"({"colour":1})", "application/json")->status, 400);
    EXPECT_EQ(c->Delete(("/api/memory/facts/" + id).c_str())->status, 200);
    EXPECT_EQ(c->Delete(("/api/memory/facts/" + id).c_str())->status, 404);
    EXPECT_EQ(c->Delete("/api/memory/facts/..%2F1")->status, 404);
    EXPECT_EQ(get("/api/chats/" + chat + "/memory")["facts"].size(), 0u);
}

// A branch copies the chat up to a message (swipes, figures), its facts and only the summaries
// that cover nothing later; the source stays as it was; the chat list shows each chat's newest
// message and count.
TEST_F(MemoryApi, ABranchCopiesTheChatUpToAMessageAndLeavesTheSourceAsItWas) {
    // A short summary: this test is about what a branch copies, and the random model writes all
    // 300 default tokens — over 30 s when another test's server shares the two cores (CI failed so).
    start(Json{{"memory", {{"summary_max_tokens", 32}}}});
    ASSERT_NE(send("Hallo Mia!").last("done"), nullptr);
    ASSERT_NE(post_sse(server->port(), "/api/chats/" + chat + "/regenerate", "").last("done"), nullptr);
    ASSERT_NE(send("Wie geht's?").last("done"), nullptr);
    ASSERT_EQ(post("/api/chats/" + chat + "/memory/facts", {{"text", "Jonas likes tea"}, {"pinned", true}})->status, 201);
    // Version 1 covers no message; version 2 (a summary job, keeping the last message out) covers
    // Jonas's second message, which the branch below does not have.
    ASSERT_EQ(c->Put(("/api/chats/" + chat + "/memory/summary").c_str(), R"({"text":"Early events."})", "application/json")->status, 200);
    auto job = post("/api/chats/" + chat + "/memory/summarize", {{"keep", 1}});
    ASSERT_EQ(job->status, 202) << job->body;
    ASSERT_EQ(wait_job(body_json(job)["job"]["id"])["status"], "done");
    ASSERT_EQ(get("/api/chats/" + chat + "/memory")["summaries_history"].size(), 2u);
    // The prompt preview says what the newest summary covers: the greeting and Jonas's first three.
    EXPECT_EQ(prompt()["summary"]["version"], 2);
    EXPECT_EQ(prompt()["summary"]["covers_messages"], 4);
    const std::string before = c->Get(("/api/chats/" + chat + "/export?format=json").c_str())->body;
    const Json source = get("/api/chats/" + chat + "/messages")["messages"];
    ASSERT_EQ(source.size(), 5u);
    const Json at = source[2];  // Mia's first reply, with two swipes.
    ASSERT_EQ(at["swipes"].size(), 2u);

    auto r = post("/api/chats/" + chat + "/branch", {{"message_id", at["id"]}, {"title", "What if"}});
    ASSERT_EQ(r->status, 201) << r->body;
    const Json branch = body_json(r);
    const std::string id = branch["chat"]["id"];
    EXPECT_NE(id, chat);
    EXPECT_EQ(branch["chat"]["title"], "What if");
    EXPECT_EQ(branch["chat"]["character_id"], character);
    const Json copied = get("/api/chats/" + id + "/messages")["messages"];
    ASSERT_EQ(copied.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_NE(copied[i]["id"], source[i]["id"]);
        for (const char* k : {"role", "content", "swipes", "swipe_id", "gen", "hidden", "created_at"}) {
            EXPECT_EQ(copied[i][k], source[i][k]) << i << " " << k;
        }
    }
    const Json memory = get("/api/chats/" + id + "/memory");
    ASSERT_EQ(memory["facts"].size(), 1u);
    EXPECT_EQ(memory["facts"][0]["text"], "Jonas likes tea");
    // Only the summary that covers nothing after the branch point came along.
    EXPECT_EQ(memory["summary"]["text"], "Early events.") << memory.dump();
    EXPECT_EQ(memory["summaries_history"].size(), 1u) << memory.dump();
    // The source is exactly as it was, and the branch goes on on its own.
    EXPECT_EQ(c->Get(("/api/chats/" + chat + "/export?format=json").c_str())->body, before);
    ASSERT_NE(post_sse(server->port(), "/api/chats/" + id + "/messages", Json{{"content", "Und sonst?"}}.dump()).last("done"), nullptr);
    EXPECT_EQ(get("/api/chats/" + id + "/messages")["messages"].size(), 5u);
    EXPECT_EQ(get("/api/chats/" + chat + "/messages")["messages"].size(), 5u);

    // The list: newest first, each with its count and newest message.
    const Json list = get("/api/characters/" + character + "/chats")["chats"];
    ASSERT_EQ(list.size(), 2u);
    std::map<std::string, Json> by_id;
    for (const auto& ch : list) by_id[ch["id"].get<std::string>()] = ch;
    EXPECT_EQ(by_id[id]["message_count"], 5);
    EXPECT_EQ(by_id[chat]["message_count"], 5);
    EXPECT_EQ(by_id[chat]["last_message"]["id"], source[4]["id"]);
    EXPECT_EQ(by_id[chat]["last_message"]["role"], "assistant");
    const std::string excerpt = by_id[chat]["last_message"]["excerpt"];
    EXPECT_EQ(source[4]["content"].get<std::string>().substr(0, excerpt.size()), excerpt);
    EXPECT_LE(excerpt.size(), 200u);

    // Errors: a message of another chat, a wrong type, an unknown chat; deleting the source keeps the branch.
    EXPECT_EQ(post("/api/chats/" + id + "/branch", {{"message_id", source[4]["id"]}})->status, 404);
    auto bad = post("/api/chats/" + chat + "/branch", {{"message_id", 5}});  // Ids are strings.
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(body_json(bad)["error"]["field"], "message_id");
    EXPECT_EQ(body_json(bad)["error"]["params"]["got"], "integer");
    EXPECT_EQ(post("/api/chats/" + chat + "/branch", {{"message_id", "x"}})->status, 404);
    EXPECT_EQ(post("/api/chats/nope/branch", {{"message_id", "1"}})->status, 404);
    ASSERT_EQ(c->Delete(("/api/chats/" + chat).c_str())->status, 200);
    EXPECT_EQ(get("/api/chats/" + id + "/messages")["messages"].size(), 5u);
}

TEST_F(MemoryApi, SummaryEditsAndRollbacksAreVersions) {
    start();
    const std::string base = "/api/chats/" + chat + "/memory/summary";
    ASSERT_EQ(c->Put(base.c_str(), R"({"text":"They met at the harbour."})", "application/json")->status, 200);
    ASSERT_EQ(c->Put(base.c_str(), R"({"text":"They met at the harbour and went sailing."})", "application/json")->status, 200);
    EXPECT_EQ(c->Put(base.c_str(), Json{{"text", std::string(16001, 'a')}}.dump(), "application/json")->status, 413);
    EXPECT_EQ(c->Put(base.c_str(), R"({"text":" "})", "application/json")->status, 400);
    auto r = post(base + "/rollback", {{"version", 1}});
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["version"], 3);
    EXPECT_EQ(post(base + "/rollback", {{"version", 42}})->status, 404);
    const Json m = get("/api/chats/" + chat + "/memory");
    EXPECT_EQ(m["summary"]["text"], "They met at the harbour.");
    EXPECT_EQ(m["summary"]["source"], "rollback");
    EXPECT_EQ(m["summaries_history"].size(), 3u);
    // The summary is in the prompt, after the stable part and before the history.
    const Json p = prompt("Und dann?");
    EXPECT_EQ(p["messages"][1]["role"], "system");
    EXPECT_NE(p["messages"][1]["content"].get<std::string>().find("[Summary of earlier events]\nThey met at the harbour."),
              std::string::npos);
    EXPECT_GT(p["tokens"]["memory"].get<int>(), 5);
}

TEST_F(MemoryApi, AfterASummaryUpdateTheCachedPromptIsStillReused) {
    start();
    for (const char* m : {"Erzähl mir vom Hafen.", "Und vom Leuchtturm?"}) ASSERT_NE(send(m).last("done"), nullptr);
    ASSERT_EQ(c->Put(("/api/chats/" + chat + "/memory/summary").c_str(), R"({"text":"Jonas and Mia talked about the harbour, its lighthouse and the old keeper."})",
                     "application/json")->status, 200);
    const Json p = prompt("Was noch?");
    const Json t = send("Was noch?").last("done")->data["timings"];
    // The stable part and the whole history come from the cache; only the new summary note and
    // the new message are read.
    EXPECT_GE(t["cached_tokens"].get<int>(), p["tokens"]["system"].get<int>() + p["tokens"]["history"].get<int>() - 40);
    EXPECT_LE(t["prompt_tokens"].get<int>(), p["tokens"]["memory"].get<int>() + 40);
}

TEST_F(MemoryApi, ASummaryJobRunsInTheBackgroundAndItsTextIsInTheNextPrompt) {
    start(Json{{"llm", {{"context_size", 512}, {"max_tokens", 12}}}, {"memory", {{"summary_min_messages", 2}, {"auto_facts", false}}}});
    const std::string filler = "Tell me about the harbour, the ships, the gulls and the old lighthouse keeper, please.";
    for (int i = 0; i < 12; ++i) ASSERT_NE(send(filler + " " + std::to_string(i)).last("done"), nullptr) << i;
    // The history no longer fits: a summary job was queued after a turn. Wait for a summary.
    Json m;
    for (int i = 0; i < 3000 && m["summary"].is_null(); ++i) {
        m = get("/api/chats/" + chat + "/memory");
        if (m["summary"].is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_FALSE(m["summary"].is_null());
    EXPECT_EQ(m["summary"]["source"], "auto");
    EXPECT_GT(std::stoll(m["summary"]["covers_until_message_id"].get<std::string>()), 0);
    const std::string text = m["summary"]["text"];
    ASSERT_FALSE(text.empty());
    const std::string next = prompt("Und jetzt?")["text"];
    EXPECT_NE(next.find(text.substr(0, std::min<size_t>(text.size(), 40))), std::string::npos);
    // Summarizing deleted nothing: every message is still there and searchable.
    EXPECT_EQ(get("/api/chats/" + chat + "/messages?limit=500")["messages"].size(), 1u + 2 * 12);
    EXPECT_GE(get("/api/chats/" + chat + "/search?q=lighthouse")["results"].size(), 12u);
}

// The summary grows by chapters appended at its end, so a new version costs the next turn only
// the chapter's tokens; when the next chapter would pass summary_max_tokens, the whole summary is
// rewritten to half of it.
TEST_F(MemoryApi, SummariesGrowByChaptersAndAreRewrittenShorterWhenFull) {
    constexpr int kBudget = 96;
    start(Json{{"llm", {{"context_size", 512}, {"max_tokens", 12}}},
               {"memory", {{"summary_min_messages", 2}, {"summary_max_tokens", kBudget}, {"auto_facts", false}}}});
    auto tokens = [&](const std::string& text) {
        return static_cast<int>(body_json(post("/tokenize", {{"content", text}}))["tokens"].size());
    };
    auto note = [&]() -> std::string {
        const Json m = get("/api/chats/" + chat + "/memory");
        return m["summary"].is_null() ? "" : m["summary"]["text"].get<std::string>();
    };
    const std::string filler = "Tell me about the harbour, the ships, the gulls and the old lighthouse keeper, please.";
    int chapters = 0, rewrites = 0, cheap_turns = 0;
    std::string before = note();
    for (int i = 0; i < 60 && (chapters < 3 || rewrites < 1); ++i) {
        const std::string text = filler + " " + std::to_string(i);
        ASSERT_NE(send(text).last("done"), nullptr) << i;
        Json m;  // Let the background summary finish, as a reader pauses between turns.
        for (int k = 0; k < 3000; ++k) {
            m = get("/api/chats/" + chat + "/memory");
            if (m["jobs"].empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        const std::string after = note();
        if (after == before) continue;
        EXPECT_EQ(m["summary"]["source"], "auto");
        if (!before.empty() && after.rfind(before + "\n\n", 0) == 0) {
            ++chapters;
            EXPECT_LE(tokens(after), kBudget + 8) << after;
            // The next turn reads the chapter, its own message and little else: the stable part and
            // the history come from the cache.
            const int added = tokens(after) - tokens(before);
            const SseResult next = send(filler + " again " + std::to_string(i));
            ASSERT_NE(next.last("done"), nullptr);
            EXPECT_LE(next.last("done")->data["timings"]["prompt_tokens"].get<int>(), added + 60) << "chapter of " << added << " tokens";
            ++cheap_turns;
            for (int k = 0; k < 3000 && !get("/api/chats/" + chat + "/memory")["jobs"].empty(); ++k) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            before = note();
            continue;
        }
        if (!before.empty()) {
            ++rewrites;
            // Rewritten only when a chapter no longer fit, and to about half the budget.
            EXPECT_GT(tokens(before), kBudget - kBudget / 3) << before;
            EXPECT_LE(tokens(after), kBudget / 2 + 8) << after;
        }
        before = after;
    }
    EXPECT_GE(chapters, 3);
    EXPECT_GE(rewrites, 1);
    EXPECT_GE(cheap_turns, 3);
}

TEST_F(MemoryApi, AFailedSummaryJobKeepsTheOldSummaryAndSaysWhy) {
    start();
    for (int i = 0; i < 4; ++i) ASSERT_NE(send("Nachricht " + std::to_string(i)).last("done"), nullptr);
    ASSERT_EQ(c->Put(("/api/chats/" + chat + "/memory/summary").c_str(), R"({"text":"The old summary."})", "application/json")->status, 200);
    // Point the engine at a server that is not there.
    const std::string url = "http://127.0.0.1:" + std::to_string(free_port());
    ASSERT_EQ(c->Patch("/api/settings", Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", url}}}}.dump(), "application/json")->status, 200);
    auto r = post("/api/chats/" + chat + "/memory/summarize", {{"keep", 2}});
    ASSERT_EQ(r->status, 202) << r->body;
    const Json job = wait_job(body_json(r)["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find(url), std::string::npos) << job.dump();
    const Json m = get("/api/chats/" + chat + "/memory");
    EXPECT_EQ(m["summary"]["text"], "The old summary.");
    EXPECT_EQ(m["summaries_history"].size(), 1u);
}

TEST_F(MemoryApi, SearchFindsOldMessagesAndSyntaxIsJustText) {
    start();
    ASSERT_NE(send("Mein Hund heißt Bello und liebt den Strand.").last("done"), nullptr);
    ASSERT_NE(send("Morgen fahre ich nach Köln.").last("done"), nullptr);
    const Json hits = get("/api/chats/" + chat + "/search?q=bello");
    ASSERT_EQ(hits["results"].size(), 1u);
    EXPECT_NE(hits["results"][0]["snippet"].get<std::string>().find("[Bello]"), std::string::npos);
    EXPECT_EQ(get("/api/chats/" + chat + "/search?q=koln")["results"].size(), 1u);  // Diacritics folded.
    EXPECT_EQ(c->Get(("/api/chats/" + chat + "/search?q=%22NEAR(%20OR%20*").c_str())->status, 200);
    EXPECT_EQ(c->Get(("/api/chats/" + chat + "/search").c_str())->status, 400);
    EXPECT_EQ(c->Get("/api/chats/nope/search?q=x")->status, 404);
}

TEST_F(MemoryApi, ExportThenImportRoundTripsExactly) {
    start();
    ASSERT_NE(send("Hallo Mia!").last("done"), nullptr);
    ASSERT_NE(post_sse(server->port(), "/api/chats/" + chat + "/regenerate", "").last("done"), nullptr);
    ASSERT_NE(send("Wie geht's?").last("done"), nullptr);
    ASSERT_EQ(post("/api/chats/" + chat + "/memory/facts", {{"text", "Jonas likes tea"}, {"pinned", true}})->status, 201);
    ASSERT_EQ(c->Put(("/api/chats/" + chat + "/memory/summary").c_str(), R"({"text":"A greeting."})", "application/json")->status, 200);
    auto exported = c->Get(("/api/chats/" + chat + "/export?format=json").c_str());
    ASSERT_EQ(exported->status, 200);
    Json first = Json::parse(exported->body);
    ASSERT_EQ(first["messages"].size(), 5u);
    EXPECT_EQ(first["messages"][2]["swipes"].size(), 2u);
    auto imported = c->Post(("/api/characters/" + character + "/chats/import").c_str(), exported->body, "application/json");
    ASSERT_EQ(imported->status, 201) << imported->body;
    const std::string copy = body_json(imported)["chat"]["id"];
    Json second = Json::parse(c->Get(("/api/chats/" + copy + "/export?format=json").c_str())->body);
    EXPECT_EQ(second, first);
    EXPECT_EQ(get("/api/chats/" + copy + "/memory")["summary"]["text"], "A greeting.");
}

TEST_F(MemoryApi, SillyTavernJsonlImportKeepsSwipesAndExportReadsBack) {
    start();
    const std::string jsonl =
        "{\"user_name\":\"Jonas\",\"character_name\":\"Mia\",\"create_date\":\"2024-05-01@10h00m00s\",\"chat_metadata\":{}}\n"
        "{\"name\":\"Mia\",\"is_user\":false,\"is_system\":false,\"send_date\":1714557600000,\"mes\":\"*winkt* Hallo!\","
        "\"extra\":{},\"swipes\":[\"Moin!\",\"*winkt* Hallo!\"],\"swipe_id\":1}\n"
        "{\"name\":\"Jonas\",\"is_user\":true,\"is_system\":false,\"send_date\":\"2024-05-01T10:01:00Z\",\"mes\":\"Hi Mia\",\"extra\":{}}\n"
        "{\"name\":\"Mia\",\"is_user\":false,\"mes\":\"Schön, dich zu sehen.\",\"swipes\":[\"Schön, dich zu sehen.\",\"Na du!\",\"Hey.\"],\"swipe_id\":0}\n";
    auto r = c->Post(("/api/characters/" + character + "/chats/import").c_str(), jsonl, "application/jsonl");
    ASSERT_EQ(r->status, 201) << r->body;
    const Json msgs = body_json(r)["messages"];
    ASSERT_EQ(msgs.size(), 3u);
    EXPECT_EQ(msgs[0]["swipes"], Json::array({"Moin!", "*winkt* Hallo!"}));
    EXPECT_EQ(msgs[0]["swipe_id"], 1);
    EXPECT_EQ(msgs[0]["content"], "*winkt* Hallo!");
    EXPECT_EQ(msgs[0]["created_at"], 1714557600000LL);
    EXPECT_EQ(msgs[1]["role"], "user");
    EXPECT_EQ(msgs[1]["created_at"], 1714557660000LL);
    EXPECT_EQ(msgs[2]["swipes"].size(), 3u);
    // Exported back as JSONL, the swipes survive.
    const std::string copy = body_json(r)["chat"]["id"];
    auto out = c->Get(("/api/chats/" + copy + "/export?format=jsonl").c_str());
    ASSERT_EQ(out->status, 200);
    EXPECT_NE(out->body.find("\"swipes\":[\"Moin!\",\"*winkt* Hallo!\"]"), std::string::npos) << out->body;
    auto again = c->Post(("/api/characters/" + character + "/chats/import").c_str(), out->body, "application/jsonl");
    ASSERT_EQ(again->status, 201);
    EXPECT_EQ(body_json(again)["messages"].size(), 3u);
}

TEST_F(MemoryApi, AnImportThatIsNotValidJsonlNamesTheLine) {
    start();
    const std::string base = "/api/characters/" + character + "/chats/import";
    auto r = c->Post(base.c_str(), "{\"user_name\":\"J\"}\n{\"mes\":\"ok\",\"is_user\":true}\n{not json\n", "application/jsonl");
    ASSERT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["field"], "line 3");
    r = c->Post(base.c_str(), "{\"mes\":42}\n", "application/jsonl");
    EXPECT_EQ(body_json(r)["error"]["field"], "line 1");
    EXPECT_EQ(c->Post(base.c_str(), "", "application/jsonl")->status, 400);
    EXPECT_EQ(c->Post("/api/characters/nope/chats/import", "{\"mes\":\"x\"}", "application/jsonl")->status, 404);
    // Nothing half-imported: still only the first chat.
    EXPECT_EQ(get("/api/characters/" + character + "/chats")["chats"].size(), 1u);
}

// Facts the model proposes: a stand-in model server answers the fact request with a list.
TEST(MemoryFacts, FactsTheModelProposesAboutTheUserAreStoredAndRetrieved) {
    StandinLlm llm([](const Json& body) -> std::string {
        const std::string system = body["messages"][0]["content"];
        if (system.find("facts about Jonas") != std::string::npos) {
            return "- Jonas has a dog called Bello\n- Jonas lives in Hamburg\nNONE";
        }
        return "*lächelt* Wie schön!";
    });
    for (bool enabled : {true, false}) {
        ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm.url()}}},
                                  {"chat", {{"user_name", "Jonas"}}},
                                  {"memory", {{"auto_facts", enabled}}}});
        auto c = server.client();
        const std::string character = body_json(c.Post("/api/characters", R"({"name":"Mia"})", "application/json"))["id"];
        const std::string chat =
            body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
        const SseResult t = post_sse(server.port(), "/api/chats/" + chat + "/messages",
                                     R"({"content":"Ich habe einen Hund namens Bello und wohne in Hamburg."})");
        ASSERT_NE(t.last("done"), nullptr);
        EXPECT_EQ(t.last("done")->data["message"]["content"], "*lächelt* Wie schön!");
        Json m;
        for (int i = 0; i < 1000; ++i) {
            m = body_json(c.Get(("/api/chats/" + chat + "/memory").c_str()));
            if (m["jobs"].empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!enabled) {
            EXPECT_TRUE(m["facts"].empty()) << m.dump();
            continue;
        }
        ASSERT_EQ(m["facts"].size(), 2u) << m.dump();
        EXPECT_EQ(m["facts"][0]["text"], "Jonas has a dog called Bello");
        EXPECT_EQ(m["facts"][0]["source"], "auto");
        EXPECT_EQ(m["facts"][0]["pinned"], false);
        const std::string prompt = body_json(c.Get(("/api/chats/" + chat + "/prompt?message=Wie%20geht%20es%20Bello%3F").c_str()))["text"];
        EXPECT_NE(prompt.find("- Jonas has a dog called Bello"), std::string::npos) << prompt;
        EXPECT_EQ(prompt.find("Jonas lives in Hamburg"), std::string::npos);
        // The same message again proposes nothing new.
        post_sse(server.port(), "/api/chats/" + chat + "/messages", R"({"content":"Bello ist süß."})");
        for (int i = 0; i < 1000; ++i) {
            m = body_json(c.Get(("/api/chats/" + chat + "/memory").c_str()));
            if (m["jobs"].empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        EXPECT_EQ(m["facts"].size(), 2u);
    }
}

// A model that writes more than it was asked for (a remote server that ignores max_tokens, or a
// reply whose tokens read back as more) cannot take the summary past its budget: the note costs every
// turn its tokens. The summary is the model's text cut at a sentence's end.
TEST(MemorySummary, ASummaryLongerThanAskedIsCutToItsBudgetAtASentencesEnd) {
    std::string essay;
    for (int i = 0; i < 80; ++i) essay += "Mia and Jonas walked along harbour number " + std::to_string(i) + " and talked. ";
    StandinLlm llm([&](const Json& body) -> std::string {
        const std::string system = body["messages"][0]["content"];
        if (system.find("memory of a long roleplay chat") != std::string::npos) return essay;
        return "*lächelt* Erzähl weiter.";
    });
    constexpr int kBudget = 64;
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm.url()}}},
                              {"chat", {{"user_name", "Jonas"}}},
                              {"memory", {{"summary_max_tokens", kBudget}, {"auto_facts", false}}}});
    auto c = server.client();
    const std::string character = body_json(c.Post("/api/characters", R"({"name":"Mia"})", "application/json"))["id"];
    const std::string chat = body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
    auto prompt_memory_tokens = [&] {
        return body_json(c.Get(("/api/chats/" + chat + "/prompt").c_str()))["tokens"]["memory"].get<int>();
    };
    const int empty_note = prompt_memory_tokens();
    std::vector<std::string> seen;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 3; ++i) {
            ASSERT_NE(post_sse(server.port(), "/api/chats/" + chat + "/messages",
                               Json{{"content", "Wir gehen zum Hafen " + std::to_string(round) + "." + std::to_string(i)}}.dump())
                          .last("done"),
                      nullptr);
        }
        auto r = c.Post(("/api/chats/" + chat + "/memory/summarize").c_str(), R"({"keep":1})", "application/json");
        ASSERT_EQ(r->status, 202) << r->body;
        Json m;
        for (int k = 0; k < 1000; ++k) {
            m = body_json(c.Get(("/api/chats/" + chat + "/memory").c_str()));
            if (m["jobs"].empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ASSERT_FALSE(m["summary"].is_null()) << m.dump();
        const std::string text = m["summary"]["text"];
        seen.push_back(text);
        // Every paragraph is the start of what the model wrote, ending with a whole sentence.
        size_t start = 0;
        while (start < text.size()) {
            size_t end = text.find("\n\n", start);
            if (end == std::string::npos) end = text.size();
            const std::string paragraph = text.substr(start, end - start);
            EXPECT_EQ(essay.rfind(paragraph, 0), 0u) << paragraph;
            EXPECT_EQ(paragraph.back(), '.') << paragraph;
            start = end + 2;
        }
        EXPECT_LT(text.size(), essay.size() / 4);
        // What the next turn pays for the note stays within the budget (and the note's own frame).
        EXPECT_LE(prompt_memory_tokens() - empty_note, kBudget + 24) << text;
    }
    // Three versions, each within the budget: chapters were appended or the whole was rewritten.
    EXPECT_NE(seen[0], seen[1]);
    EXPECT_NE(seen[1], seen[2]);
}

}  // namespace
}  // namespace mc::test
