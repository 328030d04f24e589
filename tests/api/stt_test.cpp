// Black-box tests of speech in: the real server with whisper.cpp on random-weight models (written
// by `mycandy make-test-model --kind whisper|whisper-en|vad` at build time), real speech made with
// espeak-ng between silences. /api/stt (raw body and multipart), the OpenAI-compatible
// /v1/audio/transcriptions in its three response formats, health, and every kind of bad input the
// issue lists: not audio, empty, too long (413), silence (empty text), a GGUF or damaged model, an
// English-only model asked for German.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "../stt_audio.hpp"
#include "server_process.hpp"

namespace mc::test {
namespace {

Json stt_settings(const std::string& model, const std::string& vad = MYCANDY_VAD_MODEL) {
    return {{"stt", {{"model_path", model}, {"vad_model_path", vad}, {"max_seconds", 20}, {"threads", 2}}},
            {"media", {{"image_backend", "off"}}}};
}

class SttApi : public ::testing::Test {
protected:
    void start(const Json& settings = stt_settings(MYCANDY_WHISPER_MODEL)) {
        server = std::make_unique<ServerProcess>(settings);
        settled_health(*server);
    }
    httplib::Client c() const {
        auto client = server->client();
        client.set_read_timeout(120, 0);
        return client;
    }
    httplib::Result post_audio(const std::string& path, const std::string& bytes, const std::string& type = "audio/wav") {
        return c().Post(path.c_str(), bytes, type.c_str());
    }
    Json stt_health() { return body_json(c().Get("/api/health"))["components"]["stt"]; }
    std::unique_ptr<ServerProcess> server;
};

void expect_error(const httplib::Result& r, int status, const std::string& field, const std::string& words) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const Json e = body_json(r)["error"];
    ASSERT_TRUE(e.is_object()) << r->body;
    if (!field.empty()) {
        EXPECT_EQ(e.value("field", ""), field) << r->body;
    }
    EXPECT_NE(e.value("message", "").find(words), std::string::npos) << r->body;
}

TEST_F(SttApi, RawRecordingGivesTextLanguageAndSegmentsWhereTheSpeechIs) {
    start();
    const Json h = stt_health();
    EXPECT_EQ(h["state"], "ready") << h.dump();
    EXPECT_EQ(h["engine"], "embedded");
    EXPECT_EQ(h["model"], std::filesystem::path(MYCANDY_WHISPER_MODEL).filename().string());
    EXPECT_EQ(h["whisper_cpp"], "1.9.3");

    const auto clip = spoken_clip("Hallo Mia, wie geht es dir heute?", "de", 1.5, 2.0);
    ASSERT_FALSE(clip.wav.empty()) << "espeak-ng is needed";
    auto r = post_audio("/api/stt?language=de&prompt=Mia", clip.wav);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = body_json(r);
    EXPECT_TRUE(j["text"].is_string());
    EXPECT_FALSE(j["text"].get<std::string>().empty());
    EXPECT_EQ(j["language"], "de");
    EXPECT_NEAR(j["duration"].get<double>(), clip.seconds, 0.01);
    ASSERT_TRUE(j["segments"].is_array());
    ASSERT_FALSE(j["segments"].empty());
    EXPECT_NEAR(j["segments"].front()["start"].get<double>(), clip.speech_start, 0.15);
    EXPECT_NEAR(j["segments"].back()["end"].get<double>(), clip.speech_end, 0.25);
    EXPECT_LT(j["speech_seconds"].get<double>(), j["duration"].get<double>() - 3.0);
    std::string joined;
    for (const auto& s : j["segments"]) {
        if (!joined.empty()) joined += ' ';
        joined += s["text"].get<std::string>();
    }
    EXPECT_EQ(joined, j["text"]);

    // The same as a multipart form (what the browser sends).
    httplib::MultipartFormDataItems form = {{"file", clip.wav, "speech.wav", "audio/wav"}, {"language", "de", "", ""}};
    auto m = c().Post("/api/stt", form);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->status, 200) << m->body;
    EXPECT_EQ(body_json(m)["segments"].size(), j["segments"].size());
}

// A client that goes away (a closed tab, a cancelled recording) stops its recognition instead of
// keeping the recognizer busy for the whole clip; the next request is served as usual.
TEST_F(SttApi, ARecognitionStopsWhenItsClientGoesAway) {
    start();
    const auto clip = spoken_clip("Hallo Mia, wie geht es dir heute? Ich erzähle dir jetzt eine lange Geschichte "
                                  "über den Wald, die Berge und das Meer, und du hörst mir einfach zu.", "de", 0.5, 0.5);
    ASSERT_FALSE(clip.wav.empty()) << "espeak-ng is needed";
    for (const char* path : {"/api/stt", "/v1/audio/transcriptions"}) {
        std::string body, type = "audio/wav";
        if (std::string(path) == "/api/stt") {
            body = clip.wav;
        } else {
            const std::string b = "mcboundary";
            body = "--" + b + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--" + b +
                   "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n" +
                   clip.wav + "\r\n--" + b + "--\r\n";
            type = "multipart/form-data; boundary=" + b;
        }
        const size_t before = read_file(server->log_path()).size();
        // Send the whole request, then leave without reading the answer.
        const int fd = connect_loopback(server->port());
        ASSERT_GE(fd, 0);
        const std::string request = std::string("POST ") + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + type +
                                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        for (size_t done = 0; done < request.size();) {
            const ssize_t n = ::send(fd, request.data() + done, request.size() - done, MSG_NOSIGNAL);
            ASSERT_GT(n, 0);
            done += static_cast<size_t>(n);
        }
        ::close(fd);
        std::string log;
        for (int i = 0; i < 500; ++i) {
            log = read_file(server->log_path()).substr(before);
            if (log.find("went away") != std::string::npos) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        EXPECT_NE(log.find(std::string("speech-to-text: stopped after")), std::string::npos) << path << ": " << log;
        EXPECT_NE(log.find(std::string("the client of ") + path + " went away"), std::string::npos) << log;
    }
    auto r = post_audio("/api/stt", clip.wav);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(SttApi, SilenceIsAnEmptyTranscriptNotAnError) {
    start();
    auto r = post_audio("/api/stt", silence_wav(3.0), "application/octet-stream");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["text"], "");
    EXPECT_TRUE(body_json(r)["segments"].empty());
}

TEST_F(SttApi, OpenAiTranscriptionsAnswerJsonTextAndVerboseJson) {
    start();
    const auto clip = spoken_clip("Good evening, how are you?", "en", 1.0, 1.0);
    ASSERT_FALSE(clip.wav.empty());
    auto ask = [&](const std::string& format) {
        httplib::MultipartFormDataItems form = {{"file", clip.wav, "speech.wav", "audio/wav"}, {"model", "whisper-1", "", ""},
                                                {"language", "en", "", ""}};
        if (!format.empty()) form.push_back({"response_format", format, "", ""});
        return c().Post("/v1/audio/transcriptions", form);
    };
    auto json = ask("");
    ASSERT_TRUE(json);
    ASSERT_EQ(json->status, 200) << json->body;
    const Json j = body_json(json);
    ASSERT_TRUE(j["text"].is_string());
    EXPECT_EQ(j.size(), 1u) << json->body;

    auto text = ask("text");
    ASSERT_TRUE(text);
    ASSERT_EQ(text->status, 200);
    EXPECT_EQ(text->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
    EXPECT_EQ(text->body, j["text"].get<std::string>() + "\n");

    auto verbose = ask("verbose_json");
    ASSERT_TRUE(verbose);
    ASSERT_EQ(verbose->status, 200);
    const Json v = body_json(verbose);
    EXPECT_EQ(v["task"], "transcribe");
    EXPECT_EQ(v["language"], "en");
    EXPECT_EQ(v["text"], j["text"]);
    ASSERT_FALSE(v["segments"].empty());
    EXPECT_EQ(v["segments"][0]["id"], 0);
    EXPECT_NEAR(v["segments"][0]["start"].get<double>(), clip.speech_start, 0.15);

    expect_error(ask("srt"), 400, "response_format", "json, text or verbose_json");
    httplib::MultipartFormDataItems no_file = {{"model", "whisper-1", "", ""}};
    expect_error(c().Post("/v1/audio/transcriptions", no_file), 400, "file", "required");
    httplib::MultipartFormDataItems typo = {{"file", clip.wav, "a.wav", "audio/wav"}, {"modle", "x", "", ""}};
    expect_error(c().Post("/v1/audio/transcriptions", typo), 400, "modle", "unknown field");
    httplib::MultipartFormDataItems hot = {{"file", clip.wav, "a.wav", "audio/wav"}, {"temperature", "7", "", ""}};
    expect_error(c().Post("/v1/audio/transcriptions", hot), 400, "temperature", "0 to 1");
    expect_error(post_audio("/v1/audio/transcriptions", clip.wav), 415, "body", "multipart");
}

TEST_F(SttApi, BadRecordingsAndValuesAreRefusedByName) {
    start();
    expect_error(post_audio("/api/stt", "this is not audio"), 415, "file", "not a recording");
    expect_error(post_audio("/api/stt", ""), 400, "file", "empty");
    expect_error(post_audio("/api/stt", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(64, '\0')), 415, "file", "WAV");
    // Longer than stt.max_seconds (20 here): 413 before any recognition.
    expect_error(post_audio("/api/stt", silence_wav(30.0)), 413, "file", "20 s");
    expect_error(post_audio("/api/stt?language=fr", silence_wav(1.0)), 400, "language", "auto, de or en");
    expect_error(post_audio("/api/stt?lang=de", silence_wav(1.0)), 400, "lang", "unknown query parameter");
    expect_error(post_audio("/api/stt?prompt=" + std::string(1200, 'p'), silence_wav(1.0)), 400, "prompt", "1000 bytes");
    expect_error(post_audio("/api/stt?prompt=%ff%fe", silence_wav(1.0)), 400, "prompt", "UTF-8");
    expect_error(post_audio("/api/stt", R"({"audio":"x"})", "application/json"), 415, "body", "not JSON");
    httplib::MultipartFormDataItems two = {{"file", silence_wav(1.0), "a.wav", "audio/wav"}, {"file", silence_wav(1.0), "b.wav", "audio/wav"}};
    expect_error(c().Post("/api/stt", two), 400, "file", "more than one");
    // Still serving.
    auto ok = post_audio("/api/stt", silence_wav(1.0));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
}

TEST_F(SttApi, WrongModelsAreNamedInHealthAndAnswers) {
    // A llama.cpp GGUF where a Whisper model belongs.
    start(stt_settings(MYCANDY_TINY_MODEL));
    Json h = stt_health();
    EXPECT_EQ(h["state"], "error") << h.dump();
    EXPECT_NE(h["detail"].get<std::string>().find("GGUF"), std::string::npos) << h.dump();
    const auto clip = spoken_clip("Hallo", "de", 0.5, 0.5);
    expect_error(post_audio("/api/stt", clip.wav), 503, "", "GGUF");

    // No model at all: the fix is in the detail.
    auto patch = c().Patch("/api/settings", Json{{"stt", {{"model_path", server->data_dir() + "/models/stt/none.bin"}}}}.dump(), "application/json");
    ASSERT_TRUE(patch);
    ASSERT_EQ(patch->status, 200) << patch->body;
    h = stt_health();
    EXPECT_EQ(h["state"], "not_configured") << h.dump();
    EXPECT_NE(h["detail"].get<std::string>().find("download a ggml Whisper model"), std::string::npos) << h.dump();
    expect_error(post_audio("/api/stt", clip.wav), 503, "", "no Whisper model");

    // An English-only model asked for German.
    patch = c().Patch("/api/settings", Json{{"stt", {{"model_path", MYCANDY_WHISPER_EN_MODEL}}}}.dump(), "application/json");
    ASSERT_EQ(patch->status, 200) << patch->body;
    expect_error(post_audio("/api/stt?language=de", clip.wav), 400, "language", "English-only");
    auto en = post_audio("/api/stt?language=auto", clip.wav);
    ASSERT_EQ(en->status, 200) << en->body;
    EXPECT_EQ(body_json(en)["language"], "en");

    // Off.
    patch = c().Patch("/api/settings", Json{{"stt", {{"engine", "off"}}}}.dump(), "application/json");
    ASSERT_EQ(patch->status, 200) << patch->body;
    EXPECT_EQ(stt_health()["state"], "disabled");
    expect_error(post_audio("/api/stt", clip.wav), 503, "", "off");
    // Settings are range-checked.
    auto bad = c().Patch("/api/settings", Json{{"stt", {{"language", "fr"}}}}.dump(), "application/json");
    expect_error(bad, 400, "stt.language", "");
    bad = c().Patch("/api/settings", Json{{"stt", {{"max_seconds", 0}}}}.dump(), "application/json");
    expect_error(bad, 400, "stt.max_seconds", "");
}

// Whisper and VAD files go through the models API like GGUF ones: downloaded (kind "stt", checked
// for whisper.cpp's magic), listed with their kind, and loaded into the stt settings.
TEST_F(SttApi, WhisperModelsAreDownloadedListedAndLoadedThroughTheModelsApi) {
    start(stt_settings("models/stt/missing.bin", ""));
    const std::string whisper = read_file(MYCANDY_WHISPER_MODEL);
    httplib::Server files;
    files.Get("/ggml-tiny-test.bin", [&](const httplib::Request&, httplib::Response& res) { res.set_content(whisper, "application/octet-stream"); });
    files.Get("/fake.bin", [](const httplib::Request&, httplib::Response& res) { res.set_content("GGUF" + std::string(5000, '\1'), "application/octet-stream"); });
    const int port = files.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { files.listen_after_bind(); });
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    auto wait_job = [&](const std::string& id) {
        Json j;
        for (int i = 0; i < 3000; ++i) {  // Polls the job's state (the API has no push for jobs).
            j = body_json(c().Get(("/api/jobs/" + id).c_str()));
            if (j["status"] == "done" || j["status"] == "failed") break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return j;
    };
    auto r = c().Post("/api/models/download", Json{{"url", base + "/ggml-tiny-test.bin"}, {"kind", "stt"}}.dump(), "application/json");
    ASSERT_EQ(r->status, 202) << r->body;
    Json job = wait_job(body_json(r)["job"]["id"]);
    EXPECT_EQ(job["status"], "done") << job.dump();
    EXPECT_EQ(job["result"]["name"], "stt/ggml-tiny-test.bin");
    r = c().Post("/api/models/download", Json{{"url", base + "/fake.bin"}, {"kind", "stt"}}.dump(), "application/json");
    ASSERT_EQ(r->status, 202) << r->body;
    job = wait_job(body_json(r)["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job.dump().find("not a whisper.cpp ggml model"), std::string::npos) << job.dump();
    expect_error(c().Post("/api/models/download", Json{{"url", base + "/x.gguf"}, {"kind", "stt"}}.dump(), "application/json"), 400, "url", ".bin");
    expect_error(c().Post("/api/models/download", Json{{"url", base + "/x.bin"}, {"kind", "tts"}}.dump(), "application/json"), 400, "kind", "stt");
    files.stop();
    serving.join();

    write_file(server->data_dir() + "/models/stt/vad.bin", read_file(MYCANDY_VAD_MODEL));
    const Json list = body_json(c().Get("/api/models"));
    ASSERT_EQ(list["models"].size(), 2u) << list.dump();
    for (const auto& m : list["models"]) {
        EXPECT_EQ(m["kind"], "stt");
        EXPECT_EQ(m["format"], "ggml");
        EXPECT_EQ(m["loaded"], false);
    }
    r = c().Post("/api/models/load", R"({"path":"stt/ggml-tiny-test.bin"})", "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["stt"]["state"], "ready") << r->body;
    r = c().Post("/api/models/load", R"({"path":"stt/vad.bin"})", "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    const Json settings = body_json(c().Get("/api/settings"));
    EXPECT_EQ(settings["stt"]["model_path"], "models/stt/ggml-tiny-test.bin");
    EXPECT_EQ(settings["stt"]["vad_model_path"], "models/stt/vad.bin");
    const Json loaded = body_json(c().Get("/api/models"));  // Named: a range-for over a temporary's member dangles.
    for (const auto& m : loaded["models"]) EXPECT_EQ(m["loaded"], true) << m.dump();
    const auto clip = spoken_clip("Guten Morgen", "de", 1.0, 1.0);
    auto t = post_audio("/api/stt", clip.wav);
    ASSERT_EQ(t->status, 200) << t->body;
    ASSERT_FALSE(body_json(t)["segments"].empty());
    EXPECT_NEAR(body_json(t)["segments"][0]["start"].get<double>(), clip.speech_start, 0.15);
}

// The http engine: an OpenAI-compatible transcription server (a stand-in here, in this process)
// gets the recording as 16 kHz WAV in a multipart form with the language, prompt and key; its
// verbose_json comes back in our shape; a server that is down is a 503 naming it.
TEST_F(SttApi, RemoteEngineSendsTheRecordingToAnOpenAiCompatibleServer) {
    struct Seen {
        std::string file, content_type, model, language, prompt, format, auth;
    };
    std::mutex mu;  // Guards `seen` (written on the stand-in's thread, read here after the request).
    std::vector<Seen> seen;
    httplib::Server standin;
    standin.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) { res.set_content(R"({"data":[]})", "application/json"); });
    standin.Post("/v1/audio/transcriptions", [&](const httplib::Request& req, httplib::Response& res) {
        Seen s;
        s.file = req.get_file_value("file").content;
        s.content_type = req.get_file_value("file").content_type;
        s.model = req.get_file_value("model").content;
        s.language = req.get_file_value("language").content;
        s.prompt = req.get_file_value("prompt").content;
        s.format = req.get_file_value("response_format").content;
        s.auth = req.get_header_value("Authorization");
        {
            std::lock_guard lock(mu);
            seen.push_back(s);
        }
        res.set_content(R"({"text":" Hallo Mia. ","language":"german","duration":2.5,"segments":[{"id":0,"start":0.5,"end":1.9,"text":" Hallo Mia."}]})",
                        "application/json");
    });
    const int port = standin.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { standin.listen_after_bind(); });
    Json settings = stt_settings(MYCANDY_WHISPER_MODEL);
    settings["stt"]["engine"] = "http";
    settings["stt"]["url"] = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    settings["stt"]["api_key"] = "s3cret";
    settings["stt"]["model"] = "Systran/faster-whisper-small";
    start(settings);
    EXPECT_EQ(stt_health()["state"], "ready") << stt_health().dump();
    const auto clip = spoken_clip("Hallo Mia", "de", 0.5, 0.5);
    auto r = post_audio("/api/stt?language=de&prompt=Mia", clip.wav);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = body_json(r);
    EXPECT_EQ(j["text"], "Hallo Mia.");
    EXPECT_EQ(j["language"], "de");
    ASSERT_EQ(j["segments"].size(), 1u);
    EXPECT_EQ(j["segments"][0]["start"], 0.5);
    {
        std::lock_guard lock(mu);
        ASSERT_EQ(seen.size(), 1u);
        EXPECT_EQ(seen[0].file.substr(0, 4), "RIFF");
        // Resampled to 16 kHz, 16-bit mono (within a few samples of the resampler's edges).
        EXPECT_NEAR(static_cast<double>(seen[0].file.size()), 44 + clip.seconds * 16000 * 2, 64);
        EXPECT_EQ(seen[0].content_type, "audio/wav");
        EXPECT_EQ(seen[0].model, "Systran/faster-whisper-small");
        EXPECT_EQ(seen[0].language, "de");
        EXPECT_EQ(seen[0].prompt, "Mia");
        EXPECT_EQ(seen[0].format, "verbose_json");
        EXPECT_EQ(seen[0].auth, "Bearer s3cret");
    }
    standin.stop();
    serving.join();
    expect_error(post_audio("/api/stt", clip.wav), 503, "", "127.0.0.1:" + std::to_string(port));
    EXPECT_EQ(stt_health()["state"], "unavailable");
}

}  // namespace
}  // namespace mc::test
