// Black-box tests of chats and streamed turns: the real server, the real embedded llama.cpp and a
// generated tiny random-weight model.
#include <gtest/gtest.h>

#include <set>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"
#include "standin_llm.hpp"

namespace mc::test {
namespace {

class ChatApi : public ::testing::Test {
protected:
    static void SetUpTestSuite() { s_model_dir = make_temp_dir("mc-chat-model"); }
    static void TearDownTestSuite() { std::filesystem::remove_all(s_model_dir); }

    static Json settings(int max_tokens = 24) {
        return Json{{"llm",
                     {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", max_tokens},
                      {"threads", 2}}}};
    }

    void start(Json s = settings()) {
        server = std::make_unique<ServerProcess>(s);
        wait_ready();
    }
    void wait_ready() { settled_health(*server); }
    std::string new_character(const Json& extra = Json::object()) {
        Json body = {{"name", "Mia"}, {"description", "A painter from Hamburg."}, {"first_mes", "*winkt* Hallo {{user}}!"}};
        body.update(extra);
        return body_json(server->client().Post("/api/characters", body.dump(), "application/json"))["id"];
    }
    Json new_chat(const std::string& character) {
        auto r = server->client().Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json");
        EXPECT_EQ(r->status, 201) << r->body;
        return body_json(r);
    }
    SseResult send(const std::string& chat, const std::string& text, const std::function<bool(const SseEvent&)>& stop = {}) {
        return post_sse(server->port(), "/api/chats/" + chat + "/messages", Json{{"content", text}}.dump(), stop);
    }
    // A turn with a fixed seed: the same text every run, for tests that count tokens.
    SseResult send_seeded(const std::string& chat, const std::string& text, int seed = 5) {
        return post_sse(server->port(), "/api/chats/" + chat + "/messages",
                        Json{{"content", text}, {"sampling", {{"seed", seed}}}}.dump());
    }
    Json messages(const std::string& chat) {
        return body_json(server->client().Get(("/api/chats/" + chat + "/messages").c_str()))["messages"];
    }
    // Waits (by polling the API) until the chat has no running turn.
    void wait_idle(const std::string& chat) {
        for (int i = 0; i < 1000; ++i) {
            if (!body_json(server->client().Get(("/api/chats/" + chat).c_str()))["generating"].get<bool>()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        FAIL() << "the turn did not end";
    }

    static inline std::string s_model_dir;
    std::unique_ptr<ServerProcess> server;
};

// A character's own samplers sit between the settings' and the request's; its note (SillyTavern's
// extensions.depth_prompt) goes into the prompt at its depth; both are checked when saved.
TEST_F(ChatApi, ACharactersOwnSamplersAndNoteShapeItsTurns) {
    start();
    auto c = server->client();
    auto bad = c.Post("/api/characters",
                      Json{{"name", "Ida"},
                           {"extensions", {{"mycandy", {{"sampling", {{"temperature", 9}, {"max_tokens", 0}}}}}, {"depth_prompt", {{"depth", -1}}}}}}
                          .dump(),
                      "application/json");
    ASSERT_EQ(bad->status, 400) << bad->body;
    std::set<std::string> fields;
    const Json refused = body_json(bad);
    for (const auto& e : refused["error"]["errors"]) fields.insert(e["field"].get<std::string>());
    EXPECT_EQ(fields, (std::set<std::string>{"extensions.mycandy.sampling.temperature", "extensions.mycandy.sampling.max_tokens",
                                             "extensions.depth_prompt.depth"}))
        << bad->body;

    const std::string ida = new_character({{"name", "Ida"},
                                           {"extensions",
                                            {{"mycandy", {{"sampling", {{"max_tokens", 5}, {"temperature", 0.2}}}}},
                                             {"depth_prompt", {{"prompt", "{{char}} always mentions the sea."}, {"depth", 1}, {"role", "system"}}}}}});
    const std::string chat = new_chat(ida)["chat"]["id"];
    SseResult turn = send(chat, "Hallo Ida!");
    ASSERT_EQ(turn.events.back().event, "done") << turn.body;
    EXPECT_EQ(turn.events.back().data["timings"]["predicted_tokens"], 5);  // The character's, not the settings' 24.
    turn = post_sse(server->port(), "/api/chats/" + chat + "/messages", Json{{"content", "Und?"}, {"sampling", {{"max_tokens", 7}}}}.dump());
    ASSERT_EQ(turn.events.back().event, "done") << turn.body;
    EXPECT_EQ(turn.events.back().data["timings"]["predicted_tokens"], 7);  // The request's over the character's.
    // The note: one message from the end (before the newest message), {{char}} filled in.
    const Json p = body_json(c.Get(("/api/chats/" + chat + "/prompt").c_str()));
    const Json& msgs = p["messages"];
    ASSERT_GE(msgs.size(), 3u) << p.dump();
    EXPECT_EQ(msgs[msgs.size() - 2]["role"], "system") << p.dump();
    EXPECT_EQ(msgs[msgs.size() - 2]["content"], "Ida always mentions the sea.") << p.dump();
    // Another character keeps the settings' samplers.
    const std::string other = new_chat(new_character())["chat"]["id"];
    turn = send(other, "Hallo Mia!");
    EXPECT_EQ(turn.events.back().data["timings"]["predicted_tokens"], 24);
}

TEST_F(ChatApi, NewChatStartsWithTheGreetingAndAlternatesAsSwipes) {
    start();
    const Json chat = new_chat(new_character({{"alternate_greetings", {"Moin {{user}}!", "Na?"}}}));
    ASSERT_EQ(chat["messages"].size(), 1u);
    const Json& greeting = chat["messages"][0];
    EXPECT_EQ(greeting["role"], "assistant");
    // Kept as written: {{user}} is filled in when shown and when the prompt is built.
    EXPECT_EQ(greeting["content"], "*winkt* Hallo {{user}}!");
    EXPECT_EQ(greeting["swipes"], Json::array({"*winkt* Hallo {{user}}!", "Moin {{user}}!", "Na?"}));
    const std::string chat_id = chat["chat"]["id"];
    auto preview = [&] { return server->client().Get(("/api/chats/" + chat_id + "/prompt").c_str())->body; };
    EXPECT_NE(preview().find("Hallo User!"), std::string::npos);
    // Renaming yourself later reaches the greeting too.
    auto named = server->client().Patch("/api/settings", R"({"chat":{"user_name":"Alex"}})", "application/json");
    ASSERT_EQ(named->status, 200) << named->body;
    EXPECT_NE(preview().find("Hallo Alex!"), std::string::npos);
    EXPECT_EQ(preview().find("{{user}}"), std::string::npos);
    // Choosing another greeting is a swipe.
    auto r = server->client().Patch(("/api/messages/" + greeting["id"].get<std::string>()).c_str(), R"({"swipe_id":1})",
                                    "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["content"], "Moin {{user}}!");
    EXPECT_NE(preview().find("Moin Alex!"), std::string::npos);
}

TEST_F(ChatApi, AStreamedTurnYieldsEventsInOrderAndStoresTheReply) {
    start();
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const SseResult turn = send(chat, "Hallo Mia, wie geht's dir heute?");
    ASSERT_EQ(turn.status, 200) << turn.body;
    ASSERT_GE(turn.events.size(), 3u);
    EXPECT_EQ(turn.events.front().event, "user");
    EXPECT_EQ(turn.events.front().data["message"]["content"], "Hallo Mia, wie geht's dir heute?");
    EXPECT_EQ(turn.events.back().event, "done");
    EXPECT_GT(turn.count("token"), 0u);
    const Json done = turn.events.back().data;
    EXPECT_EQ(done["finish_reason"], "length");
    EXPECT_EQ(done["message"]["status"], "complete");
    EXPECT_GT(done["timings"]["prompt_tokens"].get<int>(), 20);
    EXPECT_EQ(done["timings"]["predicted_tokens"], 24);
    // The stored reply is the streamed display text.
    std::string streamed = turn.text_of("token");
    const auto b = streamed.find_first_not_of(" \n\t"), e = streamed.find_last_not_of(" \n\t");
    EXPECT_EQ(done["message"]["content"], b == std::string::npos ? "" : streamed.substr(b, e - b + 1));
    const Json stored = messages(chat);
    ASSERT_EQ(stored.size(), 3u);  // Greeting, user, reply.
    EXPECT_EQ(stored[1]["role"], "user");
    EXPECT_EQ(stored[2], done["message"]);
    // Speech events never carry emotes or template markers.
    for (const auto& ev : turn.events) {
        if (ev.event == "speech" || ev.event == "token") {
            EXPECT_EQ(ev.data["text"].get<std::string>().find("<|"), std::string::npos);
        }
        if (ev.event == "speech") {
            EXPECT_EQ(ev.data["text"].get<std::string>().find('*'), std::string::npos);
        }
    }
}

TEST_F(ChatApi, TheSecondTurnEvaluatesOnlyItsNewTokens) {
    start(settings(12));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const Json t1 = send_seeded(chat, "Erzähl mir von Hamburg.").last("done")->data["timings"];
    const Json t2 = send_seeded(chat, "Und dann?").last("done")->data["timings"];
    // All of turn 1's prompt is reused, and what is evaluated is the short new message with its
    // template markers (plus the previous reply when the template reformats it).
    EXPECT_GE(t2["cached_tokens"].get<int>(), t1["prompt_tokens"].get<int>() + t1["cached_tokens"].get<int>());
    EXPECT_LT(t2["prompt_tokens"].get<int>(), 20);
    EXPECT_LT(t2["prompt_tokens"].get<int>(), t1["prompt_tokens"].get<int>());
}

TEST_F(ChatApi, AfterARestartTheNextTurnReusesTheSavedCache) {
    start(settings(12));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const Json t1 = send_seeded(chat, "Guten Morgen!").last("done")->data["timings"];
    ASSERT_EQ(server->stop(), 0);
    server->restart();
    wait_ready();
    const Json t2 = send_seeded(chat, "Wie war die Nacht?").last("done")->data["timings"];
    EXPECT_GE(t2["cached_tokens"].get<int>(), t1["prompt_tokens"].get<int>());
    EXPECT_LT(t2["prompt_tokens"].get<int>(), 20);
}

TEST_F(ChatApi, StopStoresThePartialReply) {
    start(settings(4000));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    int port = server->port();
    std::string chat_id = chat;
    const SseResult turn = send(chat, "Erzähl eine lange Geschichte.", [&](const SseEvent& e) {
        if (e.event == "token") {
            // Ask the server to stop while the reply streams; keep reading to the end.
            static bool sent = false;
            if (!sent) {
                sent = true;
                httplib::Client c("127.0.0.1", port);
                EXPECT_EQ(c.Post(("/api/chats/" + chat_id + "/stop").c_str(), "", "application/json")->status, 200);
            }
        }
        return false;
    });
    const SseEvent* done = turn.last("done");
    ASSERT_NE(done, nullptr);
    EXPECT_EQ(done->data["finish_reason"], "cancelled");
    EXPECT_EQ(done->data["message"]["status"], "partial");
    EXPECT_LT(done->data["timings"]["predicted_tokens"].get<int>(), 4000);
    EXPECT_EQ(messages(chat).back()["status"], "partial");
    // Nothing runs any more: stopping again is a 404.
    EXPECT_EQ(server->client().Post(("/api/chats/" + chat + "/stop").c_str(), "", "application/json")->status, 404);
}

TEST_F(ChatApi, AClientThatDisconnectsLosesNothingAndGenerationStops) {
    start(settings(4000));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    int tokens = 0;
    const SseResult turn = send(chat, "Erzähl eine lange Geschichte.", [&](const SseEvent& e) {
        return e.event == "token" && ++tokens == 3;  // Hang up after three tokens.
    });
    EXPECT_EQ(turn.last("done"), nullptr);
    wait_idle(chat);
    const Json stored = messages(chat);
    ASSERT_EQ(stored.size(), 3u);
    EXPECT_EQ(stored[1]["content"], "Erzähl eine lange Geschichte.");
    EXPECT_EQ(stored[2]["role"], "assistant");
    EXPECT_EQ(stored[2]["status"], "partial");
}

TEST_F(ChatApi, ASecondTurnInARunningChatIsAConflict) {
    start(settings(4000));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    int port = server->port();
    const SseResult turn = send(chat, "Erzähl eine lange Geschichte.", [&](const SseEvent& e) {
        if (e.event != "token") return false;
        static bool tried = false;
        if (!tried) {
            tried = true;
            httplib::Client c("127.0.0.1", port);
            auto r = c.Post(("/api/chats/" + chat + "/messages").c_str(), R"({"content":"noch was"})", "application/json");
            EXPECT_EQ(r->status, 409);
            EXPECT_EQ(body_json(r)["error"]["code"], "conflict");
            c.Post(("/api/chats/" + chat + "/stop").c_str(), "", "application/json");
        }
        return false;
    });
    ASSERT_NE(turn.last("done"), nullptr);
    EXPECT_EQ(messages(chat).size(), 3u);  // The refused message was not stored.
}

TEST_F(ChatApi, RegenerateAddsASwipeAndContinueExtendsTheReply) {
    start(settings(8));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const Json first = send(chat, "Hi!").last("done")->data["message"];
    const SseResult regen = post_sse(server->port(), "/api/chats/" + chat + "/regenerate", "");
    ASSERT_EQ(regen.status, 200) << regen.body;
    EXPECT_EQ(regen.count("user"), 0u);
    const Json swiped = regen.last("done")->data["message"];
    EXPECT_EQ(swiped["id"], first["id"]);
    ASSERT_EQ(swiped["swipes"].size(), 2u);
    EXPECT_EQ(swiped["swipes"][0], first["content"]);
    EXPECT_EQ(swiped["swipe_id"], 1);
    EXPECT_EQ(swiped["content"], swiped["swipes"][1]);

    const SseResult cont = post_sse(server->port(), "/api/chats/" + chat + "/continue", "{}");
    const Json longer = cont.last("done")->data["message"];
    EXPECT_EQ(longer["id"], first["id"]);
    EXPECT_TRUE(longer["content"].get<std::string>().starts_with(swiped["content"].get<std::string>()));
    EXPECT_GT(longer["content"].get<std::string>().size(), swiped["content"].get<std::string>().size());
    EXPECT_EQ(messages(chat).size(), 3u);  // Still one reply, with two swipes.
}

TEST_F(ChatApi, EachSwipeKeepsHowItWasGeneratedAlsoAfterARestart) {
    start(settings(8));
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const SseResult t1 = send(chat, "Hi!");
    ASSERT_NE(t1.last("done"), nullptr) << t1.body;
    const Json timings = t1.last("done")->data["timings"];
    const SseResult regen = post_sse(server->port(), "/api/chats/" + chat + "/regenerate", "");
    ASSERT_NE(regen.last("done"), nullptr) << regen.body;
    server->stop();
    server->restart();
    wait_ready();
    const Json list = messages(chat);
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0]["gen"], Json::array());  // The greeting was not generated.
    EXPECT_EQ(list[1]["gen"], Json::array());  // Nor was the user's message.
    const Json& gen = list[2]["gen"];
    ASSERT_EQ(gen.size(), 2u) << gen.dump();   // One per swipe.
    EXPECT_EQ(gen[0]["predicted_tokens"], timings["predicted_tokens"]);
    EXPECT_EQ(gen[0]["prompt_tokens"], timings["prompt_tokens"]);
    EXPECT_EQ(gen[0]["cached_tokens"], timings["cached_tokens"]);
    EXPECT_GT(gen[0]["predicted_ms"].get<double>(), 0);
    EXPECT_EQ(gen[1]["predicted_tokens"], regen.last("done")->data["timings"]["predicted_tokens"]);
    // The regenerated swipe read the prompt from the cache.
    EXPECT_GT(gen[1]["cached_tokens"].get<int>(), 0) << gen.dump();
}

TEST_F(ChatApi, EditAndDeleteMessages) {
    start();
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const Json reply = send(chat, "Hi!").last("done")->data["message"];
    const std::string path = "/api/messages/" + reply["id"].get<std::string>();
    auto r = server->client().Patch(path.c_str(), R"({"content":"*lächelt* Schön, dich zu sehen."})", "application/json");
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(messages(chat).back()["content"], "*lächelt* Schön, dich zu sehen.");
    EXPECT_EQ(server->client().Patch(path.c_str(), R"({"swipe_id":5})", "application/json")->status, 400);
    EXPECT_EQ(server->client().Patch(path.c_str(), R"({"colour":1})", "application/json")->status, 400);
    EXPECT_EQ(server->client().Delete(path.c_str())->status, 200);
    EXPECT_EQ(messages(chat).size(), 2u);
    EXPECT_EQ(server->client().Delete(path.c_str())->status, 404);
    EXPECT_EQ(server->client().Delete("/api/messages/../../x")->status, 404);
}

TEST_F(ChatApi, BadTurnsAreRefusedClearlyAndStoreNothing) {
    Json s = settings();
    s["llm"]["max_message_chars"] = 100;
    start(s);
    const std::string chat = new_chat(new_character())["chat"]["id"];
    auto c = server->client();
    auto post = [&](const std::string& body) {
        return c.Post(("/api/chats/" + chat + "/messages").c_str(), body, "application/json");
    };
    auto expect = [&](const httplib::Result& r, int status, const std::string& field) {
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << r->body;
        EXPECT_EQ(body_json(r)["error"]["field"], field) << r->body;
    };
    expect(post(R"({"content":""})"), 400, "content");
    expect(post(R"({"content":"   "})"), 400, "content");
    expect(post(R"({"content":42})"), 400, "content");
    expect(post(R"({})"), 400, "content");
    expect(post("not json"), 400, "body");
    expect(post(Json{{"content", std::string(101, 'x')}}.dump()), 413, "content");
    expect(post(R"({"content":"hi","sampling":{"top_p":1.5}})"), 400, "top_p");
    expect(post(R"({"content":"hi","sampling":{"temperature":"hot"}})"), 400, "temperature");
    expect(post(R"({"content":"hi","sampling":{"max_tokens":0}})"), 400, "max_tokens");
    expect(post(R"({"content":"hi","sampling":{"mirostat":2}})"), 400, "mirostat");
    expect(c.Post("/api/chats/nope/messages", R"({"content":"hi"})", "application/json"), 404, "id");
    expect(c.Post("/api/chats", R"({"character_id":"nope"})", "application/json"), 404, "character_id");
    EXPECT_EQ(messages(chat).size(), 1u);  // Only the greeting.
    // Valid samplers are accepted.
    const SseResult ok = post_sse(server->port(), "/api/chats/" + chat + "/messages",
                                  R"({"content":"hi","sampling":{"temperature":0,"max_tokens":3,"seed":1}})");
    EXPECT_EQ(ok.last("done")->data["timings"]["predicted_tokens"].get<int>(), 3);
}

TEST_F(ChatApi, AMissingModelIsAnErrorEventAndTheServerKeepsServing) {
    start(Json{{"llm", {{"model_path", "/nonexistent/model.gguf"}}}});
    const Json h = body_json(server->client().Get("/api/health"));
    EXPECT_EQ(h["components"]["llm"]["state"], "not_configured");
    EXPECT_NE(h["components"]["llm"]["detail"].get<std::string>().find("/nonexistent/model.gguf"), std::string::npos);
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const SseResult turn = send(chat, "Hallo?");
    ASSERT_EQ(turn.status, 200);
    EXPECT_EQ(turn.events.front().event, "user");
    ASSERT_EQ(turn.events.back().event, "error");
    EXPECT_EQ(turn.events.back().data["error"]["code"], "unavailable");
    EXPECT_EQ(messages(chat).size(), 2u);  // The user's message is kept for a retry.
    EXPECT_EQ(server->client().Get("/api/health")->status, 200);
}

TEST_F(ChatApi, AFileThatIsNotAModelIsReportedAndTurnsSaySo) {
    write_file(s_model_dir + "/broken.gguf", "GGUF but not really a model");
    start(Json{{"llm", {{"model_path", s_model_dir + "/broken.gguf"}}}});
    const Json h = settled_health(*server);
    EXPECT_EQ(h["components"]["llm"]["state"], "error");
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const SseResult turn = send(chat, "Hallo?");
    ASSERT_EQ(turn.events.back().event, "error");
    EXPECT_NE(turn.events.back().data["error"]["message"].get<std::string>().find("broken.gguf"), std::string::npos);
}

TEST_F(ChatApi, AChatLongerThanTheContextKeepsAnsweringByShiftingTheCache) {
    Json s = settings(16);
    s["llm"]["context_size"] = 512;
    start(s);
    const std::string chat = new_chat(new_character())["chat"]["id"];
    const std::string message = "Tell me more about the harbour, the ships, the gulls and the old lighthouse keeper.";
    Json last;
    int evaluated_late = 0;
    for (int turn = 0; turn < 14; ++turn) {
        const SseResult t = send(chat, message + " (" + std::to_string(turn) + ")");
        ASSERT_NE(t.last("done"), nullptr) << "turn " << turn << ": " << (t.last("error") ? t.last("error")->data.dump() : "")
                                           << "\nserver log:\n" << read_file(server->log_path());
        last = t.last("done")->data["timings"];
        EXPECT_LE(last["cached_tokens"].get<int>() + last["prompt_tokens"].get<int>() + 16, 512) << "turn " << turn;
        if (turn >= 10) evaluated_late += last["prompt_tokens"].get<int>();
    }
    // The history (14 turns of ~40 tokens) no longer fits, yet each late turn still reuses most of
    // its prompt from the cache instead of reading it again.
    std::printf("overflow: last cached %d evaluated %d, late mean evaluated %d\n", last["cached_tokens"].get<int>(), last["prompt_tokens"].get<int>(), evaluated_late / 4);
    EXPECT_GT(last["cached_tokens"].get<int>(), 250);
    EXPECT_LT(evaluated_late / 4, 120);
    EXPECT_EQ(messages(chat).size(), 1u + 2 * 14);  // Nothing was deleted.
}

TEST_F(ChatApi, TurnsInDifferentChatsRunSideBySide) {
    start(settings(16));
    const std::string character = new_character();
    std::vector<std::string> chats;
    for (int i = 0; i < 3; ++i) chats.push_back(new_chat(character)["chat"]["id"]);
    std::vector<SseResult> results(chats.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < chats.size(); ++i) {
        threads.emplace_back([&, i] { results[i] = send(chats[i], "Hallo aus Chat " + std::to_string(i)); });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < chats.size(); ++i) {
        ASSERT_NE(results[i].last("done"), nullptr) << i;
        EXPECT_EQ(results[i].last("done")->data["message"]["chat_id"], chats[i]);
        EXPECT_EQ(messages(chats[i]).size(), 3u);
    }
}

TEST_F(ChatApi, DeletingACharacterDeletesItsChats) {
    start();
    const std::string character = new_character();
    const std::string chat = new_chat(character)["chat"]["id"];
    send(chat, "Hi!");
    EXPECT_EQ(body_json(server->client().Get(("/api/characters/" + character + "/chats").c_str()))["chats"].size(), 1u);
    EXPECT_EQ(server->client().Delete(("/api/characters/" + character).c_str())->status, 200);
    EXPECT_EQ(server->client().Get(("/api/chats/" + chat).c_str())->status, 404);
    EXPECT_EQ(server->client().Get(("/api/chats/" + chat + "/messages").c_str())->status, 404);
}

}  // namespace
}  // namespace mc::test

namespace mc::test {
namespace {

// Ollama and LM Studio need the model named in each request: with llm.remote_model empty the first
// one the server lists is sent; a name in the settings is sent as it is.
TEST(RemoteModel, TheModelIsNamedInEachRequestTheServersFirstUnlessOneIsSet) {
    std::mutex mu;
    std::vector<std::string> asked;
    StandinLlm llm([&](const Json& body) {
        std::lock_guard lock(mu);
        asked.push_back(body.value("model", "(none)"));
        return std::string("Hallo.");
    });
    // No background summaries or facts: only the turns ask the model.
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm.url()}}},
                              {"memory", {{"auto_summary", false}, {"auto_facts", false}}},
                              {"media", {{"image_backend", "off"}, {"tts_enabled", false}}}});
    auto c = server.client();
    const std::string character = body_json(c.Post("/api/characters", R"({"name":"Mia"})", "application/json"))["id"];
    const std::string chat = body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
    ASSERT_EQ(post_sse(server.port(), "/api/chats/" + chat + "/messages", R"({"content":"Hi"})").events.back().event, "done");
    ASSERT_EQ(c.Patch("/api/settings", R"({"llm":{"remote_model":"llama3.1:8b"}})", "application/json")->status, 200);
    ASSERT_EQ(post_sse(server.port(), "/api/chats/" + chat + "/messages", R"({"content":"Und?"})").events.back().event, "done");
    std::lock_guard lock(mu);
    EXPECT_EQ(asked, (std::vector<std::string>{"standin", "llama3.1:8b"}));
}

// A page reloaded while a reply is written (issue 17 item 5): the UI's turns ask the server to go
// on when the page goes away; the reloaded page attaches to the running turn, replays what was
// written so far and follows it to the end — the reply is stored whole, not "(cancelled)".
TEST(TurnAttach, AReloadedPageAttachesToTheRunningReplyWhichFinishes) {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    StandinLlm llm([&](const Json&) {
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::seconds(30), [&] { return open; });
        return std::string("Hello there, my friend.");
    });
    ServerProcess server(Json{{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm.url()}}}, {"media", {{"image_backend", "off"}, {"tts_enabled", false}}}});
    auto c = server.client();
    const std::string character = body_json(c.Post("/api/characters", R"({"name":"Mia"})", "application/json"))["id"];
    const std::string chat = body_json(c.Post("/api/chats", Json{{"character_id", character}}.dump(), "application/json"))["chat"]["id"];
    const std::string path = "/api/chats/" + chat;
    EXPECT_EQ(c.Get((path + "/turn").c_str())->status, 404) << "nothing runs yet";
    auto bad = c.Post((path + "/messages").c_str(), R"({"content":"hi","on_disconnect":"maybe"})", "application/json");
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(body_json(bad)["error"]["field"], "on_disconnect");

    // The page sends, sees its message stored, and goes away (a reload).
    auto first = post_sse(server.port(), path + "/messages", R"({"content":"Tell me a story","on_disconnect":"continue"})",
                          [](const SseEvent& e) { return e.event == "user"; });
    ASSERT_EQ(first.status, 200);
    ASSERT_EQ(first.count("user"), 1u);
    EXPECT_TRUE(body_json(c.Get(path.c_str()))["generating"].get<bool>()) << "the reply stopped with its page";

    // The reloaded page attaches: what kind of turn, the turn so far (the user's message), then the rest.
    // The model answers once the attached reader has replayed the user's message.
    auto attached = get_sse(server.port(), path + "/turn", [&](const SseEvent& e) {
        if (e.event == "user") {
            std::lock_guard lock(mu);
            open = true;
            cv.notify_all();
        }
        return false;
    });
    ASSERT_EQ(attached.status, 200) << attached.body;
    ASSERT_FALSE(attached.events.empty());
    EXPECT_EQ(attached.events.front().event, "turn");
    EXPECT_EQ(attached.events.front().data["kind"], "messages");
    EXPECT_EQ(attached.count("user"), 1u);
    EXPECT_EQ(attached.text_of("token"), "Hello there, my friend.");
    const SseEvent* done = attached.last("done");
    ASSERT_NE(done, nullptr);
    EXPECT_EQ(done->data["message"]["status"], "complete");
    auto messages = body_json(c.Get((path + "/messages").c_str()))["messages"];
    ASSERT_TRUE(messages.is_array()) << messages.dump();
    EXPECT_EQ(messages.back()["content"], "Hello there, my friend.");
    EXPECT_EQ(messages.back()["status"], "complete");
    EXPECT_FALSE(body_json(c.Get(path.c_str()))["generating"].get<bool>());
    EXPECT_EQ(c.Get((path + "/turn").c_str())->status, 404);
}

}  // namespace
}  // namespace mc::test
