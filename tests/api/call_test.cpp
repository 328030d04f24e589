// Black-box tests of voice calls: a WebSocket client streams espeak-ng speech in real time, as a
// microphone would, to the real server running whisper.cpp (random-weight Whisper and a
// Silero-shaped VAD), the embedded llama.cpp (tiny random-weight model) and espeak-ng; the events
// must come in the order a person hears them. Barge-in, reconnecting, hanging up, and every kind of
// bad input the issue lists.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

#include "../stt_audio.hpp"
#include "http/websocket.hpp"
#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

using Clock = std::chrono::steady_clock;
using http::WsOpcode;

Json call_settings(int max_tokens = 24) {
    return {{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 4096}, {"max_tokens", max_tokens}, {"threads", 1}}},
            {"stt", {{"model_path", MYCANDY_WHISPER_MODEL}, {"vad_model_path", MYCANDY_VAD_MODEL}, {"threads", 1}}},
            {"media", {{"tts_enabled", true}, {"tts_engine", "espeak"}, {"image_backend", "off"}}},
            {"memory", {{"auto_summary", false}}}};
}

// One connection to a call: streams audio in real time and keeps every event it receives (an
// audio event gets "_wav" = the size of the binary message after it, "_riff" = whether it is a WAV).
class CallClient {
public:
    static std::unique_ptr<CallClient> open(int port, const std::string& chat, const std::string& query = "") {
        auto ws = http::WebSocketClient::connect("http://127.0.0.1:" + std::to_string(port), "/api/chats/" + chat + "/call" + query, 5000);
        if (!ws) {
            ADD_FAILURE() << ws.error().message;
            return nullptr;
        }
        auto c = std::unique_ptr<CallClient>(new CallClient(std::move(*ws)));
        c->hello = c->next(5000);
        c->events.clear();  // The greeting of every connection (seq 0) is not part of the call's events.
        c->times.clear();
        return c;
    }

    // The next event (null when none came within `timeout_ms`; "closed" when the server closed).
    Json next(int timeout_ms) {
        auto m = ws->read(timeout_ms);
        if (!m) {
            closed = true;
            return Json{{"type", "_closed"}};
        }
        if (!*m) return nullptr;
        if ((*m)->op == WsOpcode::Binary) {
            if (!events.empty()) {
                events.back()["_wav"] = (*m)->payload.size();
                events.back()["_riff"] = (*m)->payload.compare(0, 4, "RIFF") == 0;
            }
            return next(timeout_ms);
        }
        Json j = Json::parse((*m)->payload, nullptr, false);
        events.push_back(j);
        times.push_back(Clock::now());
        if (on_event) on_event(j);
        return j;
    }
    // The first event after the last one a wait returned that satisfies `want` (already received,
    // or read now); null when none came within `timeout_ms`.
    Json wait_for(const std::function<bool(const Json&)>& want, int timeout_ms = 60000) {
        const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            for (; cursor < events.size(); ++cursor) {
                if (want(events[cursor])) return events[cursor++];
            }
            if (Clock::now() >= until || closed) return nullptr;
            next(100);
        }
    }
    Json wait_type(const std::string& type, int timeout_ms = 60000) {
        return wait_for([&](const Json& e) { return e.value("type", "") == type; }, timeout_ms);
    }
    // Streams 16 kHz samples as a microphone does: 40 ms frames at real time, reading events between.
    void stream(const std::vector<int16_t>& pcm) {
        constexpr size_t kFrame = 640;
        const auto t0 = Clock::now();
        for (size_t at = 0, i = 0; at < pcm.size(); at += kFrame, ++i) {
            const size_t n = std::min(kFrame, pcm.size() - at);
            ws->send(WsOpcode::Binary, std::string_view(reinterpret_cast<const char*>(pcm.data() + at), n * 2));
            const auto due = t0 + std::chrono::milliseconds(40 * (i + 1));
            while (Clock::now() < due) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count();
                if (next(static_cast<int>(std::max<long>(left, 0))).is_null()) continue;
            }
        }
    }
    std::vector<std::string> types() const {
        std::vector<std::string> t;
        for (const auto& e : events) t.push_back(e.value("type", ""));
        return t;
    }
    size_t index_of(const std::string& type, size_t from = 0) const {
        for (size_t i = from; i < events.size(); ++i) {
            if (events[i].value("type", "") == type) return i;
        }
        return SIZE_MAX;
    }

    std::unique_ptr<http::WebSocketClient> ws;
    Json hello;
    std::vector<Json> events;
    std::vector<Clock::time_point> times;
    bool closed = false;
    size_t cursor = 0;  // Events before this were looked at by a wait.
    std::function<void(const Json&)> on_event;  // Sees each event as it arrives (a client's reaction).

private:
    explicit CallClient(std::unique_ptr<http::WebSocketClient> w) : ws(std::move(w)) {}
};

std::vector<int16_t> speech(const std::string& text, double lead, double tail) {
    auto r = run_process({"espeak-ng", "-v", "en", "--stdout", text});
    if (!r || r->exit_code != 0) ADD_FAILURE() << "espeak-ng failed: " << (r ? r->err : r.error().message);
    auto pcm = pcm_16k(spoken_clip(text, "en", lead, tail));
    EXPECT_GT(pcm.size(), 16000u * lead) << "no speech for '" << text << "'";
    return pcm;
}

std::vector<int16_t> silence(double seconds) { return std::vector<int16_t>(static_cast<size_t>(seconds * 16000), 0); }

class CallApi : public ::testing::Test {
protected:
    void start(const Json& settings = call_settings()) {
        if (spoken_clip("hello", "en", 0, 0).wav.empty()) GTEST_SKIP() << "espeak-ng is not installed";
        server = std::make_unique<ServerProcess>(settings);
        settled_health(*server);
        auto c = body_json(server->client().Post("/api/characters", Json{{"name", "Mia"}}.dump(), "application/json"));
        auto chat = body_json(server->client().Post("/api/chats", Json{{"character_id", c["id"]}}.dump(), "application/json"));
        chat_id = chat["chat"]["id"];
    }
    // The chat's call as GET /api/chats/{id} tells it ({"id","connected"} or null).
    Json call_status() { return body_json(server->client().Get(("/api/chats/" + chat_id).c_str()))["call"]; }
    // Waits until the chat has no call (a hang-up's end runs on the server's side).
    bool call_over() {
        for (int i = 0; i < 100; ++i) {
            if (call_status().is_null()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }
    Json messages() { return body_json(server->client().Get(("/api/chats/" + chat_id + "/messages").c_str()))["messages"]; }
    // The answer to an upgrade that is refused: status and error body.
    std::pair<int, Json> refused(const std::string& query = "", const std::string& chat = "", httplib::Headers extra = {}) {
        httplib::Headers h = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                              {"Sec-WebSocket-Version", "13"}};
        for (auto& kv : extra) h.insert(kv);
        auto r = server->client().Get(("/api/chats/" + (chat.empty() ? chat_id : chat) + "/call" + query).c_str(), h);
        if (!r) return {0, nullptr};
        return {r->status, body_json(r)};
    }
    void TearDown() override {
        if (HasFailure() && server) {  // The server's side of a failure.
            const std::string log = read_file(server->log_path());
            std::fprintf(stderr, "--- server log (end) ---\n%s\n", log.substr(log.size() > 8000 ? log.size() - 8000 : 0).c_str());
        }
    }
    std::unique_ptr<ServerProcess> server;
    std::string chat_id;
};

TEST_F(CallApi, AnUtteranceIsHeardStoredAndAnsweredAloudInOrder) {
    start();
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->hello.value("type", ""), "call") << call->hello;
    EXPECT_EQ(call->hello.value("resumed", true), false);
    EXPECT_EQ(call->hello.value("sample_rate", 0), 16000);
    call->stream(speech("Hello Mia, how was your day?", 0.5, 1.0));
    const Json done = call->wait_type("done");
    ASSERT_FALSE(done.is_null()) << Json(call->events).dump();

    // The order a person lives it: heard, ended, understood, stored, answered, spoken.
    const size_t start = call->index_of("speech_start"), end = call->index_of("utterance_end"), heard = call->index_of("transcript"),
                 user = call->index_of("user"), sentence = call->index_of("speech"), audio = call->index_of("audio"),
                 last = call->index_of("done");
    ASSERT_LT(start, end);
    ASSERT_LT(end, heard);
    ASSERT_LT(heard, user) << "the random-weight Whisper heard nothing: " << call->events[heard];
    ASSERT_LT(user, sentence);
    ASSERT_LT(sentence, audio);
    ASSERT_LT(audio, last);
    EXPECT_EQ(call->events[start].value("interrupted", true), false);
    EXPECT_NEAR(call->events[start].value("at_ms", 0) / 1000.0, 0.5, 0.15);
    EXPECT_GT(call->events[end].value("duration_ms", 0), 800);
    EXPECT_EQ(call->events[audio].value("index", -1), 0);
    EXPECT_TRUE(call->events[audio].value("_riff", false)) << call->events[audio];
    EXPECT_EQ(call->events[audio].value("_wav", 0), call->events[audio].value("bytes", 1));
    EXPECT_EQ(done.value("interrupted", true), false);
    EXPECT_EQ(done["message"].value("status", ""), "complete");
    // Numbered 1, 2, 3 ... without a gap.
    for (size_t i = 0; i < call->events.size(); ++i) EXPECT_EQ(call->events[i].value("seq", -1), static_cast<int64_t>(i) + 1);

    // Stored as a typed exchange would be, the reply with its audio.
    const Json m = messages();
    ASSERT_GE(m.size(), 2u);
    const Json& said = m[m.size() - 2];
    EXPECT_EQ(said.value("role", ""), "user");
    EXPECT_EQ(said.value("content", ""), call->events[heard].value("text", "-"));
    EXPECT_EQ(said.value("id", ""), call->events[user]["message"].value("id", "-"));
    const Json& reply = m.back();
    EXPECT_EQ(reply.value("role", ""), "assistant");
    size_t audio_entries = 0;
    for (const auto& e : reply["media"]) audio_entries += e.value("kind", "") == "audio";
    const auto types = call->types();
    EXPECT_EQ(audio_entries, static_cast<size_t>(std::count(types.begin(), types.end(), "audio")));

    // Hanging up says so and closes.
    call->ws->send(WsOpcode::Text, R"({"type":"hangup"})");
    const Json ended = call->wait_type("ended", 5000);
    ASSERT_FALSE(ended.is_null());
    EXPECT_EQ(ended.value("reason", ""), "hangup");
    call->wait_type("_closed", 5000);
    EXPECT_TRUE(call->closed);
}

TEST_F(CallApi, SpeakingDuringTheReplyStopsItAsInterruptedAndIsAnsweredNext) {
    start(call_settings(1500));  // A long reply, spoken sentence by sentence.
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    call->stream(speech("Tell me a long story please.", 0.4, 0.9));
    ASSERT_FALSE(call->wait_type("audio").is_null()) << Json(call->types()).dump();
    // The person talks over the character; the client stops playback and says it had heard the
    // first sentence (no message id: the reply is still being written).
    call->on_event = [&](const Json& e) {
        if (e.value("type", "") == "speech_start" && e.value("interrupted", false)) {
            call->ws->send(WsOpcode::Text, Json{{"type", "heard"}, {"sentences", 1}}.dump());
        }
    };
    call->stream(speech("Wait, stop, I have a question.", 0.0, 1.0));
    const size_t barge = call->index_of("speech_start", call->index_of("audio"));
    ASSERT_NE(barge, SIZE_MAX) << Json(call->types()).dump();
    EXPECT_EQ(call->events[barge].value("interrupted", false), true);
    const size_t stopped = call->index_of("done", barge);
    ASSERT_NE(stopped, SIZE_MAX) << Json(call->types()).dump();
    EXPECT_EQ(call->events[stopped].value("interrupted", false), true);
    EXPECT_EQ(call->events[stopped]["message"].value("status", ""), "partial");
    const double ms = std::chrono::duration<double, std::milli>(call->times[stopped] - call->times[barge]).count();
    std::printf("barge-in: speech_start -> reply stopped and stored in %.0f ms\n", ms);
    // Nothing more of the old reply after it was stopped.
    for (size_t i = stopped + 1; i < call->events.size() && call->events[i].value("type", "") != "user"; ++i) {
        EXPECT_NE(call->events[i].value("type", ""), "audio") << call->events[i];
    }
    // The new utterance is handled: heard, stored, answered.
    const Json second = call->wait_for([&](const Json& e) { return e.value("type", "") == "done" && !e.value("interrupted", true); }, 120000);
    ASSERT_FALSE(second.is_null()) << Json(call->types()).dump();
    // The stopped reply was cut to its first sentence once stored, before the next turn began.
    const size_t cut = call->index_of("heard", stopped);
    ASSERT_NE(cut, SIZE_MAX) << Json(call->types()).dump();
    EXPECT_LT(cut, call->index_of("user", stopped));
    const Json& kept = call->events[cut]["message"];
    EXPECT_EQ(kept["id"], call->events[stopped]["message"]["id"]);
    const std::string partial = call->events[stopped]["message"]["content"];
    const Json& g = kept["gen"][kept["swipe_id"].get<size_t>()];
    EXPECT_EQ(kept["content"].get<std::string>() + g.value("unheard", std::string()), partial);
    EXPECT_EQ(g.value("heard_sentences", 0), 1);

    const Json m = messages();
    bool marked = false;
    for (const auto& msg : m) {
        if (msg.value("role", "") == "assistant" && msg.value("status", "") == "partial") {
            for (const auto& g : msg["gen"]) marked |= g.is_object() && g.value("interrupted", false);
        }
    }
    EXPECT_TRUE(marked) << m.dump();
    call->ws->close(1000);
}

// Talking over a reply that was already complete (its text written, its sentences still playing):
// the client stops playback and says how many sentences the person heard; the reply keeps those, so
// the next prompt holds what was heard, and the rest stays in its gen entry.
TEST_F(CallApi, TalkingOverAFinishedReplyCutsItToWhatWasHeard) {
    start(call_settings(300));
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    call->stream(speech("Tell me about your day please.", 0.4, 0.9));
    const Json done = call->wait_type("done", 120000);
    ASSERT_FALSE(done.is_null()) << Json(call->types()).dump();
    const auto types = call->types();
    ASSERT_GE(std::count(types.begin(), types.end(), "audio"), 2) << "the reply needs two spoken sentences";
    const std::string whole = done["message"]["content"];
    const std::string id = done["message"]["id"];
    const std::string user_id = call->events[call->index_of("user")]["message"]["id"];

    // What is not this call's latest reply, or no count, is refused by name; the call goes on.
    call->ws->send(WsOpcode::Text, Json{{"type", "heard"}, {"message_id", user_id}, {"sentences", 1}}.dump());
    Json refused = call->wait_type("error", 5000);
    ASSERT_FALSE(refused.is_null());
    EXPECT_EQ(refused["error"]["reason"], "bad_heard") << refused;
    EXPECT_EQ(refused["error"]["field"], "message_id") << refused;
    call->ws->send(WsOpcode::Text, Json{{"type", "heard"}, {"message_id", id}, {"sentences", -1}}.dump());
    refused = call->wait_type("error", 5000);
    ASSERT_FALSE(refused.is_null());
    EXPECT_EQ(refused["error"]["field"], "sentences") << refused;

    call->ws->send(WsOpcode::Text, Json{{"type", "heard"}, {"message_id", id}, {"sentences", 1}}.dump());
    const Json heard = call->wait_type("heard", 5000);
    ASSERT_FALSE(heard.is_null()) << Json(call->types()).dump();
    const Json& cut = heard["message"];
    EXPECT_EQ(cut["id"], id);
    const std::string kept = cut["content"];
    ASSERT_FALSE(kept.empty());
    EXPECT_LT(kept.size(), whole.size());
    EXPECT_EQ(cut["status"], "partial");
    const Json& g = cut["gen"][cut["swipe_id"].get<size_t>()];
    EXPECT_EQ(g.value("interrupted", false), true) << g;
    EXPECT_EQ(g.value("heard_sentences", 0), 1) << g;
    EXPECT_EQ(kept + g.value("unheard", std::string()), whole) << "nothing of the reply is lost";
    // Stored so, and the next turn's prompt holds only what was heard.
    const Json m = messages();
    EXPECT_EQ(m.back()["content"], kept);
    const std::string prompt = body_json(server->client().Get(("/api/chats/" + chat_id + "/prompt").c_str()))["text"];
    EXPECT_NE(prompt.find(kept), std::string::npos);
    EXPECT_EQ(prompt.find(whole), std::string::npos);
    call->ws->close(1000);
}

TEST_F(CallApi, ADroppedConnectionResumesWithNothingLost) {
    start();
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    const std::string id = call->hello.value("call_id", "");
    ASSERT_FALSE(id.empty());
    call->stream(speech("Hello Mia, are you there?", 0.4, 0.9));
    const Json user = call->wait_type("user");
    ASSERT_FALSE(user.is_null()) << Json(call->types()).dump();
    const int64_t seen = user.value("seq", 0);
    call->ws->drop();  // The phone left the Wi-Fi: no close frame.

    // A new call is refused meanwhile: this one waits for its connection.
    for (int i = 0; i < 100 && call_status().value("connected", true); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(call_status().value("connected", true), false);
    EXPECT_EQ(call_status().value("id", ""), id);
    EXPECT_EQ(refused().first, 409);
    EXPECT_EQ(refused().second["error"].value("reason", ""), "call_active");

    auto again = CallClient::open(server->port(), chat_id, "?resume=" + id + "&after=" + std::to_string(seen));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->hello.value("resumed", false), true);
    EXPECT_EQ(again->hello.value("call_id", ""), id);
    ASSERT_FALSE(again->wait_type("done").is_null()) << Json(again->types()).dump();
    // Every event after the last one seen, in order, none twice.
    for (size_t i = 0; i < again->events.size(); ++i) EXPECT_EQ(again->events[i].value("seq", -1), seen + 1 + static_cast<int64_t>(i));
    EXPECT_NE(again->index_of("audio"), SIZE_MAX);

    // Closing the tab (1001) ends the call: a new one may start at once.
    again->ws->close(1001);
    ASSERT_TRUE(call_over());
    EXPECT_EQ(refused("?resume=" + id).second["error"].value("reason", ""), "call_ended");
    auto next = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(next);
    EXPECT_NE(next->hello.value("call_id", ""), id);
}

TEST_F(CallApi, AReconnectTakesTheCallOverFromAConnectionNotYetSeenDead) {
    // A phone that changed networks comes back before the server has noticed its old connection
    // died (no FIN, no close frame): the new connection gets the call, the old one is closed.
    start();
    auto old = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(old);
    const std::string id = old->hello.value("call_id", "");
    old->stream(speech("Hello Mia, can you hear me?", 0.4, 0.9));
    const Json user = old->wait_type("user");
    ASSERT_FALSE(user.is_null()) << Json(old->types()).dump();
    auto fresh = CallClient::open(server->port(), chat_id, "?resume=" + id + "&after=" + std::to_string(user.value("seq", 0)));
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->hello.value("resumed", false), true);
    old->wait_type("_closed", 5000);
    EXPECT_TRUE(old->closed) << "the old connection still holds the call";
    ASSERT_FALSE(fresh->wait_type("done").is_null()) << Json(fresh->types()).dump();
    EXPECT_EQ(fresh->events.front().value("seq", 0), user.value("seq", 0) + 1);
    EXPECT_EQ(call_status().value("connected", false), true);
    // The call is still on and listens to the new connection.
    fresh->stream(speech("Good.", 0.3, 0.9));
    EXPECT_FALSE(fresh->wait_type("utterance_end", 10000).is_null());
}

TEST_F(CallApi, ClosingTheTabStopsTheReplyAndKeepsWhatWasSaid) {
    start(call_settings(1500));
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    call->stream(speech("Tell me everything about Hamburg.", 0.4, 0.9));
    ASSERT_FALSE(call->wait_type("token").is_null());
    call->ws->close(1001);
    bool generating = true;
    for (int i = 0; i < 100 && generating; ++i) {
        generating = body_json(server->client().Get(("/api/chats/" + chat_id).c_str())).value("generating", true);
        if (generating) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_FALSE(generating) << "the reply went on after the tab closed";
    const Json m = messages();
    ASSERT_GE(m.size(), 2u);
    EXPECT_EQ(m[m.size() - 2].value("role", ""), "user");
    EXPECT_EQ(m.back().value("status", ""), "partial");
}

TEST_F(CallApi, RefusesWhatCannotWorkByName) {
    start(call_settings(3000));
    // Not a WebSocket.
    auto plain = server->client().Get(("/api/chats/" + chat_id + "/call").c_str());
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->status, 426);
    // Another site's page may not open a call (browsers send no preflight for WebSockets).
    EXPECT_EQ(refused("", "", {{"Origin", "http://evil.example"}}).first, 403);
    EXPECT_EQ(refused("", "nope").first, 404);
    EXPECT_EQ(refused("?resume=abc").second["error"].value("reason", ""), "call_ended");
    auto bad_after = refused("?resume=abc&after=-1");
    EXPECT_EQ(bad_after.first, 400);
    EXPECT_EQ(bad_after.second["error"].value("field", ""), "after");

    // Two calls to one chat.
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    auto second = refused();
    EXPECT_EQ(second.first, 409);
    EXPECT_EQ(second.second["error"].value("reason", ""), "call_active");
    call->ws->close(1000);
    ASSERT_TRUE(call_over());

    // A typed reply being written.
    std::thread typed([&] { post_sse(server->port(), "/api/chats/" + chat_id + "/messages", Json{{"content", "Hi"}, {"speak", false}}.dump()); });
    bool running = false;
    for (int i = 0; i < 100 && !running; ++i) {
        running = body_json(server->client().Get(("/api/chats/" + chat_id).c_str())).value("generating", false);
        if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(running);
    auto busy = refused();
    EXPECT_EQ(busy.first, 409);
    EXPECT_EQ(busy.second["error"].value("reason", ""), "turn_running");
    server->client().Post(("/api/chats/" + chat_id + "/stop").c_str(), "", "application/json");
    typed.join();

    // Speech in or out switched off: the answer says which, before any audio is sent.
    server->client().Patch("/api/settings", Json{{"stt", {{"engine", "off"}}}}.dump(), "application/json");
    auto no_stt = refused();
    EXPECT_EQ(no_stt.first, 503);
    EXPECT_EQ(no_stt.second["error"].value("reason", ""), "stt_off");
    server->client().Patch("/api/settings", Json{{"stt", {{"engine", "embedded"}}}, {"media", {{"tts_enabled", false}}}}.dump(),
                           "application/json");
    auto no_tts = refused();
    EXPECT_EQ(no_tts.first, 503);
    EXPECT_EQ(no_tts.second["error"].value("reason", ""), "tts_off");
}

TEST_F(CallApi, GarbageFramesAreNamedAndTheCallGoesOn) {
    start();
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    call->ws->send(WsOpcode::Binary, std::string("\x01\x02\x03", 3));
    call->ws->send(WsOpcode::Text, "not json");
    call->ws->send(WsOpcode::Text, R"({"type":"dance"})");
    call->ws->send(WsOpcode::Binary, std::string(40000, '\0'));  // Over 1 s in one message.
    for (int i = 0; i < 4; ++i) {
        const Json e = call->wait_type("error", 5000);
        ASSERT_FALSE(e.is_null()) << i;
        EXPECT_EQ(e["error"].value("reason", ""), i == 0 || i == 3 ? "bad_audio_frame" : "bad_message") << e;
    }
    // Still listening.
    call->stream(speech("Are you still there?", 0.3, 0.9));
    EXPECT_FALSE(call->wait_type("utterance_end", 10000).is_null()) << Json(call->events).dump();
    // A message over the WebSocket limit closes the connection, and that ends the call.
    call->ws->send(WsOpcode::Binary, std::string(70000, '\0'));
    call->wait_type("_closed", 5000);
    EXPECT_TRUE(call->closed);
    EXPECT_TRUE(call_over());
}

TEST_F(CallApi, AStreamFasterThanRealTimeOrWithoutPausesIsBounded) {
    Json s = call_settings();
    s["call"] = {{"max_utterance_s", 3}};
    start(s);
    auto call = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(call);
    // Someone who never pauses: a steady tone for 4 s is cut at 3 s and handled.
    std::vector<int16_t> tone(16000 * 4);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = static_cast<int16_t>(8000 * std::sin(2 * 3.14159265 * 220 * static_cast<double>(i) / 16000));
    call->stream(tone);
    const Json cut = call->wait_type("utterance_end", 5000);
    ASSERT_FALSE(cut.is_null()) << Json(call->types()).dump();
    EXPECT_EQ(cut.value("cut", false), true);
    EXPECT_NEAR(cut.value("duration_ms", 0), 3000, 100);
    call->ws->close(1000);
    ASSERT_TRUE(call_over());

    // Five seconds of audio in one burst is not a microphone.
    auto fast = CallClient::open(server->port(), chat_id);
    ASSERT_TRUE(fast);
    const auto quiet = silence(1.0);
    for (int i = 0; i < 5; ++i) fast->ws->send(WsOpcode::Binary, std::string_view(reinterpret_cast<const char*>(quiet.data()), quiet.size() * 2));
    const Json ended = fast->wait_type("ended", 5000);
    ASSERT_FALSE(ended.is_null()) << Json(fast->types()).dump();
    EXPECT_EQ(ended.value("reason", ""), "too_fast");
    fast->wait_type("_closed", 5000);
    EXPECT_TRUE(fast->closed);
    EXPECT_TRUE(call_over());
}

}  // namespace
}  // namespace mc::test
