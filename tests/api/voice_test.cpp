// Black-box tests of speech out: a turn speaks each sentence as it completes (audio events, stored
// as the message's media), emotes/markup/image tags never reach the synthesizer, a broken speech
// server never breaks the text, and /api/tts + /v1/audio/speech answer bad input clearly.
// Engines: real espeak-ng, and a stand-in OpenAI-compatible speech server our HTTP engine talks to.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "server_process.hpp"
#include "sse_client.hpp"
#include "standin_llm.hpp"
#include "standin_tts.hpp"

namespace mc::test {
namespace {

const char* kReply =
    "*smiles softly* Hello there, my friend. I painted **all day** today! [GENERATE_IMAGE] a sunset over the harbour\n"
    "*laughs* Do you want to see it? It is `blue` and gold.";

struct WavInfo {
    bool ok = false;
    int rate = 0;
    double seconds = 0;
};

WavInfo wav_info(const std::string& b) {
    WavInfo w;
    if (b.size() < 44 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WAVE") != 0) return w;
    auto u32 = [&](size_t at) {
        return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
               static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
    };
    w.rate = static_cast<int>(u32(24));
    const int channels = static_cast<uint8_t>(b[22]);
    const int bits = static_cast<uint8_t>(b[34]);
    w.ok = b.compare(36, 4, "data") == 0 && channels == 1 && bits == 16 && u32(40) == b.size() - 44;
    w.seconds = static_cast<double>(b.size() - 44) / 2.0 / w.rate;
    return w;
}

class VoiceApi : public ::testing::Test {
protected:
    // The model says `reply` (a stand-in remote model, so the words are known); speech goes to `tts`.
    void start(const std::string& reply, Json media) {
        llm = std::make_unique<StandinLlm>([reply](const Json&) { return reply; });
        // Pictures off: the reply's image tag must still never be spoken, and no picture entry
        // joins the audio ones these tests count.
        if (!media.contains("image_backend")) media["image_backend"] = "off";
        Json s = {{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm->url()}}}, {"media", std::move(media)}};
        server = std::make_unique<ServerProcess>(s);
        settled_health(*server);
    }
    std::string new_chat(const Json& character = Json{{"name", "Mia"}}) {
        auto c = body_json(server->client().Post("/api/characters", character.dump(), "application/json"));
        auto chat = body_json(server->client().Post("/api/chats", Json{{"character_id", c["id"]}}.dump(), "application/json"));
        character_id = c["id"];
        return chat.contains("id") ? chat["id"] : chat["chat"]["id"];
    }
    SseResult turn(const std::string& chat, const Json& body) {
        return post_sse(server->port(), "/api/chats/" + chat + "/messages", body.dump());
    }
    httplib::Result post(const std::string& path, const Json& body) {
        return server->client().Post(path.c_str(), body.dump(), "application/json");
    }
    std::unique_ptr<StandinLlm> llm;
    std::unique_ptr<ServerProcess> server;
    std::string character_id;
};

TEST_F(VoiceApi, TurnSpeaksEverySentenceInOrderAndNeverTheEmotesMarkupOrImageTags) {
    StandinTts tts;
    start(kReply, {{"tts_engine", "http"}, {"tts_url", tts.url()}, {"tts_voice", "af_bella"}, {"tts_api_key", "k3y"}});
    const std::string chat = new_chat();
    auto r = turn(chat, {{"content", "Hi!"}, {"speak", true}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_NE(r.last("done"), nullptr);

    std::vector<std::string> sentences;
    for (const auto& e : r.events) {
        if (e.event == "speech") sentences.push_back(e.data["text"]);
    }
    ASSERT_GE(sentences.size(), 2u);
    // One audio event per sentence, in sentence order, each a real WAV.
    std::vector<std::string> urls;
    for (const auto& e : r.events) {
        if (e.event == "audio") {
            EXPECT_EQ(e.data["index"], static_cast<int>(urls.size()));
            urls.push_back(e.data["url"]);
        }
    }
    ASSERT_EQ(urls.size(), sentences.size());
    EXPECT_EQ(r.count("audio_error"), 0u);
    for (const auto& url : urls) {
        auto a = server->client().Get(url.c_str());
        ASSERT_EQ(a->status, 200) << url;
        EXPECT_EQ(a->get_header_value("Content-Type"), "audio/wav");
        const WavInfo w = wav_info(a->body);
        EXPECT_TRUE(w.ok) << url;
        EXPECT_EQ(w.rate, 24000);
        EXPECT_GT(w.seconds, 0.1);
    }

    // What the synthesizer was asked to say: exactly the sentences, none of the emotes, markup or tags.
    auto asked = tts.requests();
    ASSERT_EQ(asked.size(), sentences.size());
    std::string all;
    for (size_t i = 0; i < asked.size(); ++i) {
        EXPECT_EQ(asked[i]["input"], sentences[i]);
        EXPECT_EQ(asked[i]["voice"], "af_bella");
        EXPECT_EQ(asked[i]["response_format"], "wav");
        all += asked[i]["input"].get<std::string>() + "\n";
    }
    for (const char* never : {"*", "smiles", "laughs", "GENERATE_IMAGE", "sunset", "harbour", "`"}) {
        EXPECT_EQ(all.find(never), std::string::npos) << never << " reached the synthesizer: " << all;
    }
    EXPECT_NE(all.find("Hello there, my friend."), std::string::npos) << all;
    EXPECT_NE(all.find("all day"), std::string::npos) << all;
    for (const auto& h : tts.auth_headers()) EXPECT_EQ(h, "Bearer k3y");

    // The reply keeps its audio: playing it later needs no new synthesis.
    const Json done = r.last("done")->data["message"];
    ASSERT_EQ(done["media"].size(), urls.size());
    auto listed = body_json(server->client().Get(("/api/chats/" + chat + "/messages").c_str()))["messages"];
    const Json stored = listed.back();
    ASSERT_EQ(stored["media"].size(), urls.size());
    for (size_t i = 0; i < urls.size(); ++i) {
        EXPECT_EQ(stored["media"][i]["kind"], "audio");
        EXPECT_EQ(stored["media"][i]["url"], urls[i]);
        EXPECT_EQ(stored["media"][i]["index"], static_cast<int>(i));
    }
    EXPECT_EQ(tts.requests().size(), sentences.size());

    // The media panel's list: the reply's sentences as one audio entry, in order.
    auto media = body_json(server->client().Get(("/api/characters/" + character_id + "/media").c_str()))["media"];
    ASSERT_EQ(media.size(), 1u) << media.dump();
    EXPECT_EQ(media[0]["kind"], "audio");
    EXPECT_EQ(media[0]["urls"].size(), urls.size());
    EXPECT_EQ(media[0]["urls"][0], urls[0]);
    EXPECT_GT(media[0]["seconds"].get<double>(), 0.2);
    EXPECT_EQ(server->client().Get("/api/characters/nope/media")->status, 404);

    // A regenerated reply speaks again, for its own swipe; the first swipe's audio stays.
    auto again = post_sse(server->port(), "/api/chats/" + chat + "/regenerate", Json{{"speak", true}}.dump());
    ASSERT_NE(again.last("done"), nullptr) << again.body;
    const Json regenerated = again.last("done")->data["message"];
    size_t swipe0 = 0, swipe1 = 0;
    for (const auto& m : regenerated["media"]) (m["swipe"] == 0 ? swipe0 : swipe1)++;
    EXPECT_EQ(swipe0, urls.size());
    EXPECT_EQ(swipe1, again.count("audio"));
}

TEST_F(VoiceApi, EspeakSpeaksTheTurnInTheCharactersLanguage) {
    start("*winkt* Hallo! Wie geht es dir heute? Ich habe den ganzen Tag am Hafen gemalt.", Json::object());
    const std::string chat = new_chat({{"name", "Mia"}, {"voice", {{"language", "de"}, {"voice", "de+f3"}, {"speed", 1.2}}}});
    auto r = turn(chat, {{"content", "Hallo"}, {"speak", true}});
    ASSERT_NE(r.last("done"), nullptr) << r.body;
    EXPECT_EQ(r.count("audio_error"), 0u);
    ASSERT_EQ(r.count("audio"), r.count("speech"));
    ASSERT_GE(r.count("audio"), 2u);
    for (const auto& e : r.events) {
        if (e.event != "audio") continue;
        const WavInfo w = wav_info(server->client().Get(e.data["url"].get<std::string>().c_str())->body);
        EXPECT_TRUE(w.ok);
        EXPECT_EQ(w.rate, 22050);  // espeak-ng's own rate.
        EXPECT_GT(w.seconds, 0.3);
    }
    // Without "speak" the default is media.tts_enabled (true); speak:false makes no audio.
    auto quiet = turn(chat, {{"content", "Noch einmal"}, {"speak", false}});
    ASSERT_NE(quiet.last("done"), nullptr);
    EXPECT_EQ(quiet.count("audio"), 0u);
    EXPECT_GE(quiet.count("speech"), 1u);
    EXPECT_TRUE(quiet.last("done")->data["message"]["media"].empty());
}

TEST_F(VoiceApi, ASpeechServerThatIsDownNeverBreaksTheTextAndSaysWhyQuickly) {
    const int dead = free_port();
    start(kReply, {{"tts_engine", "http"}, {"tts_url", "http://127.0.0.1:" + std::to_string(dead)}});
    auto health = body_json(server->client().Get("/api/health"));
    EXPECT_EQ(health["components"]["tts"]["state"], "unavailable");
    EXPECT_NE(health["components"]["tts"]["detail"].get<std::string>().find("media.tts_url"), std::string::npos);
    EXPECT_EQ(health["status"], "ok");  // Text chat is unaffected.

    const std::string chat = new_chat();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = turn(chat, {{"content", "Hi!"}, {"speak", true}});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_NE(r.last("done"), nullptr) << r.body;
    EXPECT_EQ(r.count("error"), 0u);
    EXPECT_EQ(r.count("audio"), 0u);
    ASSERT_EQ(r.count("audio_error"), 1u);  // One reason, not one per sentence.
    const Json err = r.last("audio_error")->data;
    EXPECT_EQ(err["error"]["code"], "unavailable");
    EXPECT_NE(err["error"]["message"].get<std::string>().find(std::to_string(dead)), std::string::npos) << err.dump();
    EXPECT_LT(seconds, 4.0);
    EXPECT_NE(r.last("done")->data["message"]["content"].get<std::string>().find("Hello there"), std::string::npos);
}

TEST_F(VoiceApi, AMissingSpeechModelNeverBreaksTheTurnAndIsNamed) {
    start(kReply, {{"tts_engine", "embedded"}, {"tts_model_file", "models/tts/nope.gguf"}, {"tts_mmproj_file", "models/tts/nope-mmproj.gguf"}});
    auto health = body_json(server->client().Get("/api/health"));
    EXPECT_EQ(health["components"]["tts"]["state"], "unavailable");
    EXPECT_NE(health["components"]["tts"]["detail"].get<std::string>().find("nope.gguf"), std::string::npos) << health.dump();
    auto r = turn(new_chat(), {{"content", "Hi!"}, {"speak", true}});
    ASSERT_NE(r.last("done"), nullptr) << r.body;
    EXPECT_EQ(r.count("error"), 0u);
    ASSERT_EQ(r.count("audio_error"), 1u);
    EXPECT_NE(r.last("audio_error")->data["error"]["message"].get<std::string>().find("nope.gguf"), std::string::npos)
        << r.last("audio_error")->data.dump();
    EXPECT_NE(r.last("done")->data["message"]["content"].get<std::string>().find("Hello there"), std::string::npos);
}

TEST_F(VoiceApi, ASpeechServerAnsweringGarbageOrErrorsIsNamed) {
    for (auto mode : {StandinTts::Mode::Garbage, StandinTts::Mode::Error500}) {
        StandinTts tts(mode);
        start(kReply, {{"tts_engine", "http"}, {"tts_url", tts.url()}});
        auto r = turn(new_chat(), {{"content", "Hi!"}, {"speak", true}});
        ASSERT_NE(r.last("done"), nullptr) << r.body;
        ASSERT_EQ(r.count("audio_error"), 1u);
        const std::string msg = r.last("audio_error")->data["error"]["message"];
        if (mode == StandinTts::Mode::Garbage) EXPECT_NE(msg.find("did not send WAV"), std::string::npos) << msg;
        else EXPECT_NE(msg.find("CUDA out of memory"), std::string::npos) << msg;
        server.reset();
    }
}

TEST_F(VoiceApi, TtsEndpointSpeaksAndRefusesBadInputByName) {
    StandinTts tts;
    start("Hi.", {{"tts_max_chars", 200}});
    new_chat({{"name", "Lena"}, {"voice", {{"language", "de"}}}});

    auto ok = post("/api/tts", {{"text", "*nods* Guten Morgen, wie war dein Tag?"}, {"character_id", character_id}});
    ASSERT_EQ(ok->status, 200) << ok->body;
    EXPECT_EQ(ok->get_header_value("Content-Type"), "audio/wav");
    const WavInfo w = wav_info(ok->body);
    EXPECT_TRUE(w.ok);
    EXPECT_EQ(w.rate, 22050);
    // Duration follows the text: a text four times as long takes clearly longer to say.
    auto longer = post("/api/tts", {{"text", "Guten Morgen, wie war dein Tag? Guten Morgen, wie war dein Tag? Guten Morgen, wie "
                                             "war dein Tag? Guten Morgen, wie war dein Tag?"},
                                    {"character_id", character_id}});
    ASSERT_EQ(longer->status, 200);
    EXPECT_GT(wav_info(longer->body).seconds, 2.5 * w.seconds);

    auto expect_error = [&](const httplib::Result& r, int status, const std::string& field) {
        ASSERT_EQ(r->status, status) << r->body;
        const Json e = body_json(r)["error"];
        EXPECT_EQ(e.value("field", ""), field) << r->body;
        EXPECT_FALSE(e["message"].get<std::string>().empty());
    };
    expect_error(post("/api/tts", {{"text", std::string(201, 'a')}}), 413, "text");
    expect_error(post("/api/tts", {{"text", "Hallo"}, {"voice", "klingon+f9"}}), 400, "voice");
    expect_error(post("/api/tts", {{"text", "*only an emote*"}}), 400, "text");
    expect_error(post("/api/tts", {{"text", "   "}}), 400, "text");
    expect_error(post("/api/tts", {{"text", "Hallo"}, {"format", "mp3"}}), 400, "format");
    // Ogg Opus for phones: a fraction of the WAV.
    auto ogg = post("/api/tts", {{"text", "*nods* Guten Morgen, wie war dein Tag?"}, {"character_id", character_id}, {"format", "ogg"}});
    ASSERT_EQ(ogg->status, 200) << ogg->body;
    EXPECT_EQ(ogg->get_header_value("Content-Type"), "audio/ogg");
    EXPECT_EQ(ogg->body.compare(0, 4, "OggS"), 0);
    EXPECT_LT(ogg->body.size() * 4, ok->body.size());
    expect_error(post("/api/tts", {{"text", "Hallo"}, {"voice", {{"speed", 7}}}}), 400, "voice.speed");
    expect_error(post("/api/tts", {{"text", 5}}), 400, "text");
    expect_error(post("/api/tts", {{"text", "Hallo"}, {"character_id", "nope"}}), 404, "id");
    auto plain = server->client().Post("/api/tts", "text=hi", "text/plain");
    EXPECT_EQ(plain->status, 415);
    // A voice clone needs a sample first.
    expect_error(post("/api/tts", {{"text", "Hallo"}, {"character_id", character_id}, {"voice", {{"clone", true}}}}), 400, "voice.clone");

    // The OpenAI-compatible endpoint: a character by name speaks with its voice; raw PCM on request.
    auto v1 = post("/v1/audio/speech", {{"model", "tts-1"}, {"input", "Hallo zusammen."}, {"voice", "Lena"}});
    ASSERT_EQ(v1->status, 200) << v1->body;
    EXPECT_TRUE(wav_info(v1->body).ok);
    auto pcm = post("/v1/audio/speech", {{"input", "Hello."}, {"voice", "en-us"}, {"response_format", "pcm"}});
    ASSERT_EQ(pcm->status, 200) << pcm->body;
    EXPECT_EQ(pcm->get_header_value("Content-Type"), "audio/pcm");
    EXPECT_GT(pcm->body.size(), 2000u);
    expect_error(post("/v1/audio/speech", {{"input", "Hello."}, {"response_format", "flac"}}), 400, "response_format");
    auto opus = post("/v1/audio/speech", {{"input", "Hello there."}, {"response_format", "opus"}});
    ASSERT_EQ(opus->status, 200) << opus->body;
    EXPECT_EQ(opus->body.compare(0, 4, "OggS"), 0);
    expect_error(post("/v1/audio/speech", {{"input", "Hello."}, {"speed", 9}}), 400, "speed");

    // The HTTP engine: the server's own refusal of a voice is a 400 naming the voice.
    auto patched = server->client().Patch("/api/settings", Json{{"media", {{"tts_engine", "http"}, {"tts_url", tts.url()}}}}.dump(),
                                          "application/json");
    ASSERT_EQ(patched->status, 200) << patched->body;
    expect_error(post("/api/tts", {{"text", "Hello"}, {"voice", "no_such_voice"}}), 400, "voice");
    auto via_http = post("/api/tts", {{"text", "Hello"}, {"voice", "af_sky"}});
    ASSERT_EQ(via_http->status, 200) << via_http->body;
    EXPECT_EQ(wav_info(via_http->body).rate, 24000);
}

TEST_F(VoiceApi, TheEmbeddedEngineSpeaksATurnAndClonesTheVoiceSample) {
    // A random-weight Qwen3-TTS pair written by our own tool, as a person would point settings at a
    // downloaded one.
    const std::string dir = make_temp_dir("mc-voice-embedded");
    auto made = run_mycandy({"make-test-model", "--kind", "qwen3tts", "--out", dir + "/tts.gguf", "--mmproj", dir + "/tts-mmproj.gguf"}, 60000);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    start("Hallo. Wie geht es dir?",
          {{"tts_engine", "embedded"}, {"tts_model_file", dir + "/tts.gguf"}, {"tts_mmproj_file", dir + "/tts-mmproj.gguf"}});
    auto patched = server->client().Patch("/api/settings", Json{{"llm", {{"threads", 1}}}}.dump(), "application/json");
    ASSERT_EQ(patched->status, 200) << patched->body;
    settled_health(*server);
    auto health = body_json(server->client().Get("/api/health"));
    EXPECT_EQ(health["components"]["tts"]["engines"]["embedded"]["state"], "ready") << health.dump();

    const std::string chat = new_chat({{"name", "Mia"}, {"voice", {{"language", "de"}}}});
    auto r = turn(chat, {{"content", "Hallo"}, {"speak", true}});
    ASSERT_NE(r.last("done"), nullptr) << r.body;
    EXPECT_EQ(r.count("audio_error"), 0u) << (r.last("audio_error") ? r.last("audio_error")->data.dump() : "");
    ASSERT_EQ(r.count("audio"), r.count("speech"));
    for (const auto& e : r.events) {
        if (e.event != "audio") continue;
        const WavInfo w = wav_info(server->client().Get(e.data["url"].get<std::string>().c_str())->body);
        EXPECT_TRUE(w.ok);
        EXPECT_EQ(w.rate, 24000);
        EXPECT_GT(w.seconds, 0.05);
    }

    // Cloning: the character's uploaded sample is the speaker reference.
    ASSERT_EQ(server->client().Put(("/api/characters/" + character_id + "/voice_sample").c_str(), tone_wav(4.0), "audio/wav")->status, 200);
    auto cloned = post("/api/tts", {{"text", "Hallo zusammen."}, {"character_id", character_id}, {"voice", {{"clone", true}}}});
    ASSERT_EQ(cloned->status, 200) << cloned->body;
    EXPECT_EQ(wav_info(cloned->body).rate, 24000);
    // A language the model does not speak is named.
    auto klingon = post("/api/tts", {{"text", "Hallo."}, {"voice", {{"language", "tlh"}}}});
    EXPECT_EQ(klingon->status, 400) << klingon->body;
    EXPECT_EQ(body_json(klingon)["error"]["field"], "language");
    std::filesystem::remove_all(dir);
}

TEST_F(VoiceApi, AnImportedChatWithStrangeMediaNeitherCrashesTurnsNorLeaksUrls) {
    StandinTts tts;
    start("Hello there, my friend. How was your day?", {{"tts_engine", "http"}, {"tts_url", tts.url()}});
    const std::string chat = new_chat();
    auto exported = body_json(server->client().Get(("/api/chats/" + chat + "/export?format=json").c_str()));
    ASSERT_TRUE(exported.contains("messages")) << exported.dump();
    // A file someone else wrote: media entries of every wrong shape, and URLs that are not ours.
    exported["messages"].push_back({{"role", "assistant"}, {"content", "Hi."}, {"swipes", {"Hi."}}, {"swipe_id", 0},
                                    {"status", "complete"}, {"created_at", 1700000000000},
                                    {"media", {1, "x", nullptr, Json::array(), {{"kind", 5}},
                                               {{"kind", "audio"}, {"swipe", "zero"}, {"index", "one"}, {"url", "/api/media/audio/x.wav"}},
                                               {{"kind", "audio"}, {"swipe", 0}, {"url", "https://tracker.example/ping.wav"}},
                                               {{"kind", "image"}, {"url", "javascript:alert(1)"}, {"prompt", 7}}}}});
    auto imported = server->client().Post(("/api/characters/" + character_id + "/chats/import").c_str(), exported.dump(),
                                          "application/json");
    ASSERT_EQ(imported->status, 201) << imported->body;
    const std::string chat2 = body_json(imported)["chat"]["id"];
    // The media list answers and shows only our own files.
    auto media = server->client().Get(("/api/characters/" + character_id + "/media").c_str());
    ASSERT_EQ(media->status, 200) << media->body;
    EXPECT_EQ(media->body.find("tracker.example"), std::string::npos) << media->body;
    EXPECT_EQ(media->body.find("javascript:"), std::string::npos) << media->body;
    // Regenerating that reply with speech keeps the strange entries aside and adds real audio.
    auto r = post_sse(server->port(), "/api/chats/" + chat2 + "/regenerate", Json{{"speak", true}}.dump());
    ASSERT_NE(r.last("done"), nullptr) << r.body;
    EXPECT_GE(r.count("audio"), 1u);
    EXPECT_EQ(server->client().Get("/api/health")->status, 200);
}

TEST_F(VoiceApi, DeletingAReplyAChatOrACharacterDeletesItsAudioFiles) {
    StandinTts tts;
    start("Hello there, my friend. How was your day today?", {{"tts_engine", "http"}, {"tts_url", tts.url()}});
    auto spoken_files = [&](const SseResult& r) {
        std::vector<std::string> files;
        for (const auto& e : r.events) {
            if (e.event == "audio") files.push_back(server->data_dir() + "/outputs/" + e.data["url"].get<std::string>().substr(11));
        }
        return files;
    };
    auto all_exist = [](const std::vector<std::string>& files, bool want) {
        for (const auto& f : files) {
            if (std::filesystem::exists(f) != want) return false;
        }
        return !files.empty();
    };
    // One reply deleted.
    const std::string chat = new_chat();
    auto first = turn(chat, {{"content", "Hi!"}, {"speak", true}});
    auto first_files = spoken_files(first);
    ASSERT_TRUE(all_exist(first_files, true));
    const std::string reply = first.last("done")->data["message"]["id"];
    ASSERT_EQ(server->client().Delete(("/api/messages/" + reply).c_str())->status, 200);
    EXPECT_TRUE(all_exist(first_files, false));
    // A chat deleted.
    auto second = turn(chat, {{"content", "Again!"}, {"speak", true}});
    auto second_files = spoken_files(second);
    ASSERT_TRUE(all_exist(second_files, true));
    ASSERT_EQ(server->client().Delete(("/api/chats/" + chat).c_str())->status, 200);
    EXPECT_TRUE(all_exist(second_files, false));
    // A character deleted, with the replies of all its chats.
    auto c = body_json(server->client().Post("/api/chats", Json{{"character_id", character_id}}.dump(), "application/json"));
    const std::string chat2 = c.contains("id") ? c["id"] : c["chat"]["id"];
    auto third = turn(chat2, {{"content", "Hi again!"}, {"speak", true}});
    auto third_files = spoken_files(third);
    ASSERT_TRUE(all_exist(third_files, true));
    ASSERT_EQ(server->client().Delete(("/api/characters/" + character_id).c_str())->status, 200);
    EXPECT_TRUE(all_exist(third_files, false));
}

TEST_F(VoiceApi, ACharactersVoiceIsCheckedWhenSaved) {
    start("Hi.", Json::object());
    new_chat();
    auto patch = [&](const Json& voice) {
        return server->client().Patch(("/api/characters/" + character_id).c_str(), Json{{"voice", voice}}.dump(), "application/json");
    };
    for (auto [voice, field] : std::vector<std::pair<Json, std::string>>{
             {{{"speed", 9}}, "voice.speed"},
             {{{"pitch", 120}}, "voice.pitch"},
             {{{"engine", "pyttsx3"}}, "voice.engine"},
             {{{"language", "deutsch!"}}, "voice.language"},
             {{{"clone", "yes"}}, "voice.clone"}}) {
        auto r = patch(voice);
        ASSERT_EQ(r->status, 400) << voice.dump();
        EXPECT_EQ(body_json(r)["error"]["field"], field);
    }
    auto ok = patch({{"engine", "espeak"}, {"voice", "de+f3"}, {"language", "de"}, {"speed", 0.9}, {"pitch", 60}});
    ASSERT_EQ(ok->status, 200) << ok->body;
    EXPECT_EQ(body_json(ok)["voice"]["voice"], "de+f3");
    auto voices = body_json(server->client().Get("/api/tts/voices"));
    EXPECT_TRUE(voices["espeak"]["languages"].size() > 50);
    bool has_de = false;
    for (const auto& l : voices["espeak"]["languages"]) has_de |= l == "de";
    EXPECT_TRUE(has_de);
}

}  // namespace
}  // namespace mc::test
