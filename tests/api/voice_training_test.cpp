// Black-box tests of a voice of their own (issue: RVC training and conversion): the seed's "Train"
// runs the person's trainer as a job (queued → running with progress → done | failed | cancelled),
// the character's voice_status follows, and a trained voice converts every spoken sentence.
// The trainer and converter are stand-in shell scripts written here (RVC cannot run on these
// machines); the server runs them as real child processes from its command templates.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"
#include "standin_llm.hpp"
#include "standin_tts.hpp"

namespace mc::test {
namespace {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& text, bool executable = false) {
    std::ofstream(path, std::ios::binary) << text;
    if (executable) ::chmod(path.c_str(), 0755);
}

// Waits for a condition the server reaches on its own (a job's state); fails after `limit`.
bool poll_until(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
}

bool alive(long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0; }

class VoiceTraining : public ::testing::Test {
protected:
    void SetUp() override {
        dir = fs::temp_directory_path() / ("mc-vt-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    void TearDown() override {
        server.reset();
        fs::remove_all(dir);
    }
    void start(Json media) {
        llm = std::make_unique<StandinLlm>([](const Json&) { return std::string("Hello there. How are you today? I missed you."); });
        media["image_backend"] = "off";
        Json s = {{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm->url()}}}, {"media", std::move(media)}};
        server = std::make_unique<ServerProcess>(s);
        settled_health(*server);
    }
    Json character_with_sample(const std::string& name = "Mia") {
        auto c = body_json(server->client().Post("/api/characters", Json{{"name", name}}.dump(), "application/json"));
        auto up = server->client().Put(("/api/characters/" + c["id"].get<std::string>() + "/voice_sample").c_str(), tone_wav(4.0),
                                       "audio/wav");
        EXPECT_EQ(up->status, 200) << up->body;
        return body_json(up);
    }
    httplib::Result post(const std::string& path, const Json& body) {
        return server->client().Post(path.c_str(), body.dump(), "application/json");
    }
    Json job(const std::string& id) { return body_json(server->client().Get(("/api/jobs/" + id).c_str())); }
    Json character(const std::string& id) { return body_json(server->client().Get(("/api/characters/" + id).c_str())); }
    bool job_ended(const std::string& id) {
        const std::string s = job(id).value("status", "");
        return s == "done" || s == "failed" || s == "cancelled";
    }
    void patch_media(const Json& media) {
        auto r = server->client().Patch("/api/settings", Json{{"media", media}}.dump(), "application/json");
        ASSERT_EQ(r->status, 200) << r->body;
    }
    // A trainer that says where it is, waits for the test's "go" after the first epoch (so the test
    // sees it running), checks it was given a WAV, and writes a model naming the character.
    std::string trainer_script() {
        const std::string path = (dir / "train.sh").string();
        write_file(path,
                   "#!/bin/sh\n"
                   "printf '%s\\n' \"$@\" > '" + (dir / "args").string() + "'\n"
                   "head -c 4 \"$1\" | grep -q RIFF || { echo 'the sample is not a WAV' >&2; exit 5; }\n"
                   "i=1\n"
                   "while [ $i -le \"$3\" ]; do\n"
                   "  echo \"Epoch $i/$3 loss=0.25\"\n"
                   "  if [ $i -eq 1 ]; then while [ ! -e '" + (dir / "go").string() + "' ]; do sleep 0.05; done; fi\n"
                   "  i=$((i+1))\n"
                   "done\n"
                   "printf 'model of %s' \"$4\" > \"$2\"\n",
                   true);
        return path;
    }
    fs::path dir;
    std::unique_ptr<StandinLlm> llm;
    std::unique_ptr<ServerProcess> server;
};

TEST_F(VoiceTraining, TrainingReportsProgressAndItsModelConvertsEverySpokenSentence) {
    StandinTts tts;  // Speaks 24 kHz WAVs.
    const std::string train = trainer_script();
    const std::string convert = (dir / "convert.sh").string();
    // The converter records its model and answers with a 16 kHz WAV of its own: a converted sentence
    // is recognisable by its rate.
    write_file((dir / "converted.wav").string(), tone_wav(0.5, 16000));
    write_file(convert,
               "#!/bin/sh\n"
               "echo \"$3\" >> '" + (dir / "converted").string() + "'\n"
               "head -c 4 \"$1\" | grep -q RIFF || exit 7\n"
               "cp '" + (dir / "converted.wav").string() + "' \"$2\"\n",
               true);
    // A space inside quotes stays in one argument; nothing is run by a shell.
    start({{"tts_engine", "http"}, {"tts_url", tts.url()},
           {"vc_train_command", train + " {sample} {output} {epochs} {name} \"two words\" $(id)"},
           {"vc_command", convert + " {input} {output} {model}"}});
    const Json c = character_with_sample();
    const std::string id = c["id"];
    EXPECT_EQ(c["voice_status"], "none");
    EXPECT_TRUE(body_json(server->client().Get(("/api/characters/" + id + "/train_voice").c_str()))["job"].is_null());

    auto r = post("/api/characters/" + id + "/train_voice", {{"epochs", 3}});
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job_id = body_json(r)["job"]["id"];
    EXPECT_EQ(body_json(r)["job"]["kind"], "voice_training");
    // The editor finds it again (after a reload) from the character.
    EXPECT_EQ(body_json(server->client().Get(("/api/characters/" + id + "/train_voice").c_str()))["job"]["id"], job_id);
    // A second "Train" while this one is queued or running is refused, naming the job.
    auto again = server->client().Post(("/api/characters/" + id + "/train_voice").c_str(), "", "application/json");
    EXPECT_EQ(again->status, 409) << again->body;
    EXPECT_NE(again->body.find(job_id), std::string::npos);

    // Running, with the first epoch's progress read from the trainer's output.
    ASSERT_TRUE(poll_until([&] { return job(job_id)["progress"].get<double>() > 0.3; })) << job(job_id).dump();
    EXPECT_EQ(job(job_id)["status"], "running");
    EXPECT_EQ(character(id)["voice_status"], "running");
    EXPECT_NEAR(job(job_id)["progress"].get<double>(), 1.0 / 3, 0.01);
    write_file((dir / "go").string(), "");
    ASSERT_TRUE(poll_until([&] { return job_ended(job_id); }));
    const Json done = job(job_id);
    ASSERT_EQ(done["status"], "done") << done.dump();
    EXPECT_EQ(done["progress"], 1.0);
    EXPECT_EQ(done["result"]["model"], "outputs/models/" + id + ".pth");
    EXPECT_EQ(character(id)["voice_status"], "done");
    EXPECT_EQ(character(id)["voice_error"], "");
    // The seed's layout; the arguments as the template said, each one whole.
    EXPECT_EQ(read_file(server->data_dir() + "/outputs/models/" + id + ".pth"), "model of " + id);
    const std::string args = read_file((dir / "args").string());
    EXPECT_NE(args.find("\n3\n" + id + "\ntwo words\n$(id)\n"), std::string::npos) << args;
    // The trainer's output is kept in its log.
    EXPECT_NE(read_file(server->data_dir() + "/logs/voice-training-" + id + ".log").find("Epoch 2/3 loss=0.25"), std::string::npos);

    // Every spoken sentence of a reply goes through the converter with this model.
    auto chat = body_json(post("/api/chats", {{"character_id", id}}));
    const std::string chat_id = chat.contains("id") ? chat["id"] : chat["chat"]["id"];
    auto turn = post_sse(server->port(), "/api/chats/" + chat_id + "/messages", Json{{"content", "Hi"}, {"speak", true}}.dump());
    ASSERT_EQ(turn.status, 200) << turn.body;
    EXPECT_EQ(turn.count("audio_error"), 0u);
    const auto spoken = static_cast<long>(turn.count("audio"));
    ASSERT_GE(spoken, 2);
    for (const auto& e : turn.events) {
        if (e.event != "audio") continue;
        auto a = server->client().Get(e.data["url"].get<std::string>().c_str());
        ASSERT_EQ(a->status, 200);
        EXPECT_EQ(a->body, tone_wav(0.5, 16000)) << "sentence " << e.data["index"] << " was not converted";
    }
    const std::string converted = read_file((dir / "converted").string());
    EXPECT_EQ(std::count(converted.begin(), converted.end(), '\n'), spoken);
    EXPECT_NE(converted.find("/outputs/models/" + id + ".pth"), std::string::npos);

    // The editor's "Test voice" (/api/tts) speaks the trained voice too.
    auto tested = post("/api/tts", {{"text", "Just me."}, {"character_id", id}});
    ASSERT_EQ(tested->status, 200) << tested->body;
    EXPECT_EQ(tested->body, tone_wav(0.5, 16000));
    auto lines = [&] {
        const std::string t = read_file((dir / "converted").string());
        return std::count(t.begin(), t.end(), '\n');
    };
    EXPECT_EQ(lines(), spoken + 1);

    // voice.convert false: the engine's own voice again (24 kHz), the converter not asked.
    auto patched = server->client().Patch(("/api/characters/" + id).c_str(), Json{{"voice", {{"convert", false}}}}.dump(), "application/json");
    ASSERT_EQ(patched->status, 200) << patched->body;
    EXPECT_EQ(body_json(patched)["voice_status"], "done");  // An edit keeps the training state.
    auto plain = post("/api/tts", {{"text", "Just me."}, {"character_id", id}});
    ASSERT_EQ(plain->status, 200) << plain->body;
    ASSERT_GT(plain->body.size(), 44u);
    EXPECT_EQ(plain->body.substr(24, 4), std::string("\xc0\x5d\x00\x00", 4));  // 24000 Hz.
    EXPECT_EQ(lines(), spoken + 1);

    // A new sample: the old voice no longer applies.
    auto up = server->client().Put(("/api/characters/" + id + "/voice_sample").c_str(), tone_wav(5.0), "audio/wav");
    ASSERT_EQ(up->status, 200);
    EXPECT_EQ(body_json(up)["voice_status"], "none");
}

TEST_F(VoiceTraining, AMissingFailingOrHangingTrainerFailsTheJobSayingWhy) {
    start({{"vc_train_command", "/nonexistent/rvc/train {sample} {output}"}, {"vc_train_timeout_s", 5}});
    const std::string id = character_with_sample()["id"];
    auto run = [&](const std::string& what) {
        auto r = post("/api/characters/" + id + "/train_voice", Json::object());
        EXPECT_EQ(r->status, 202) << what << ": " << r->body;
        const std::string job_id = body_json(r)["job"]["id"];
        EXPECT_TRUE(poll_until([&] { return job_ended(job_id); }, std::chrono::seconds(40))) << what;
        const Json j = job(job_id);
        EXPECT_EQ(j["status"], "failed") << what;
        const Json c = character(id);
        EXPECT_EQ(c["voice_status"], "failed") << what;
        EXPECT_EQ(c["voice_error"], j["error"]) << what;
        return j["error"].get<std::string>();
    };
    // Not there: fails at once, naming it.
    EXPECT_NE(run("missing").find("/nonexistent/rvc/train"), std::string::npos);
    // There but not executable.
    write_file((dir / "noexec.sh").string(), "#!/bin/sh\nexit 0\n");
    patch_media({{"vc_train_command", (dir / "noexec.sh").string() + " {sample}"}});
    EXPECT_NE(run("not executable").find("is not executable"), std::string::npos);
    // The seed's script setting, used in the template, missing in the WebUI folder: named.
    patch_media({{"vc_train_command", "sh {vc_train_script} {sample}"}, {"rvc_webui_dir", dir.string()}, {"vc_train_script", "vc_train_tool.py"}});
    EXPECT_NE(run("script").find("media.vc_train_script 'vc_train_tool.py' was not found in " + dir.string()), std::string::npos);
    patch_media({{"rvc_webui_dir", ""}});
    // Exits non-zero after printing garbage: the exit code and its last words.
    write_file((dir / "crash.sh").string(), "#!/bin/sh\nhead -c 3000 /dev/urandom\necho\necho 'CUDA out of memory' >&2\nexit 3\n", true);
    patch_media({{"vc_train_command", (dir / "crash.sh").string() + " {sample}"}});
    const std::string crashed = run("crash");
    EXPECT_NE(crashed.find("exited with code 3: CUDA out of memory"), std::string::npos) << crashed;
    // Exits 0 without writing the model.
    write_file((dir / "lazy.sh").string(), "#!/bin/sh\necho done\n", true);
    patch_media({{"vc_train_command", (dir / "lazy.sh").string() + " {output}"}});
    EXPECT_NE(run("no model").find("wrote no model"), std::string::npos);
    EXPECT_FALSE(fs::exists(server->data_dir() + "/outputs/models/" + id + ".pth"));
    // Hangs, ignoring SIGTERM: killed at media.vc_train_timeout_s.
    write_file((dir / "hang.sh").string(), "#!/bin/sh\ntrap '' TERM\necho 'epoch 1/100'\nwhile true; do sleep 1; done\n", true);
    patch_media({{"vc_train_command", (dir / "hang.sh").string()}});
    EXPECT_NE(run("hang").find("did not finish within media.vc_train_timeout_s (5 s)"), std::string::npos);
    // A placeholder the server does not know is named.
    patch_media({{"vc_train_command", (dir / "lazy.sh").string() + " {sampel}"}});
    EXPECT_NE(run("typo").find("{sampel}"), std::string::npos);

    // Bad requests: no sample, epochs out of range, an unknown field, no such character.
    auto bare = body_json(post("/api/characters", {{"name", "NoSample"}}));
    auto r = post("/api/characters/" + bare["id"].get<std::string>() + "/train_voice", Json::object());
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["field"], "voice_sample");
    r = post("/api/characters/" + id + "/train_voice", {{"epochs", 0}});
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(body_json(r)["error"]["field"], "epochs");
    r = post("/api/characters/" + id + "/train_voice", {{"epochs", 4294967297LL}});
    EXPECT_EQ(r->status, 400);
    r = post("/api/characters/" + id + "/train_voice", {{"epoch", 3}});
    EXPECT_EQ(r->status, 400);
    r = post("/api/characters/nope/train_voice", Json::object());
    EXPECT_EQ(r->status, 404);
}

TEST_F(VoiceTraining, AFailingConverterLeavesTheVoiceUnconvertedAndSaysSoOnce) {
    StandinTts tts;
    write_file((dir / "quick.sh").string(), "#!/bin/sh\necho 'epoch 1/1'\nprintf model > \"$1\"\n", true);
    write_file((dir / "broken.sh").string(), "#!/bin/sh\necho 'model broken: wrong version' >&2\nexit 1\n", true);
    start({{"tts_engine", "http"}, {"tts_url", tts.url()}, {"vc_train_command", (dir / "quick.sh").string() + " {output}"},
           {"vc_command", (dir / "broken.sh").string() + " {input} {output}"}});
    const std::string id = character_with_sample()["id"];
    auto r = post("/api/characters/" + id + "/train_voice", Json::object());
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job_id = body_json(r)["job"]["id"];
    ASSERT_TRUE(poll_until([&] { return job_ended(job_id); }));
    ASSERT_EQ(character(id)["voice_status"], "done") << job(job_id).dump();
    auto chat = body_json(post("/api/chats", {{"character_id", id}}));
    const std::string chat_id = chat.contains("id") ? chat["id"] : chat["chat"]["id"];
    auto turn = post_sse(server->port(), "/api/chats/" + chat_id + "/messages", Json{{"content", "Hi"}, {"speak", true}}.dump());
    ASSERT_EQ(turn.status, 200) << turn.body;
    // Every sentence still speaks (the engine's own voice); the reason comes once.
    EXPECT_GE(turn.count("audio"), 2u);
    ASSERT_EQ(turn.count("audio_error"), 1u);
    const std::string why = turn.last("audio_error")->data.dump();
    EXPECT_NE(why.find("model broken: wrong version"), std::string::npos) << why;
    EXPECT_NE(why.find("without conversion"), std::string::npos) << why;
    for (const auto& e : turn.events) {
        if (e.event != "audio") continue;
        auto a = server->client().Get(e.data["url"].get<std::string>().c_str());
        ASSERT_EQ(a->status, 200);
        EXPECT_EQ(a->body.substr(24, 4), std::string("\xc0\x5d\x00\x00", 4));  // The engine's 24 kHz.
    }
}

// A trainer that starts a helper process which ignores SIGTERM, and says both pids.
std::string stubborn_trainer(const fs::path& dir) {
    const std::string path = (dir / "stubborn.sh").string();
    write_file(path,
               "#!/bin/sh\n"
               "trap '' TERM\n"
               "(trap '' TERM; while true; do sleep 1; done) &\n"
               "echo $$ $! > '" + (dir / "pids").string() + "'\n"
               "echo 'epoch 1/10'\n"
               "printf partial > \"$1\"\n"
               "wait\n",
               true);
    return path;
}

std::pair<long, long> read_pids(const fs::path& dir) {
    std::ifstream f(dir / "pids");
    long a = 0, b = 0;
    f >> a >> b;
    return {a, b};
}

TEST_F(VoiceTraining, CancellingOrDeletingStopsTheTrainerAndEverythingItStarted) {
    start({{"vc_train_command", stubborn_trainer(dir) + " {output}"}});
    const std::string id = character_with_sample()["id"];
    auto r = post("/api/characters/" + id + "/train_voice", Json::object());
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job_id = body_json(r)["job"]["id"];
    ASSERT_TRUE(poll_until([&] { return job(job_id)["progress"].get<double>() > 0; }));
    auto [pid, child] = read_pids(dir);
    ASSERT_TRUE(alive(pid) && alive(child));
    auto c = post("/api/jobs/" + job_id + "/cancel", Json::object());
    ASSERT_EQ(c->status, 200) << c->body;
    EXPECT_EQ(body_json(c)["status"], "cancelled");
    // SIGTERM is ignored; SIGKILL follows to the whole group.
    EXPECT_TRUE(poll_until([&] { return !alive(pid) && !alive(child); }, std::chrono::seconds(10)));
    EXPECT_TRUE(poll_until([&] { return character(id)["voice_error"] == "training cancelled"; }));
    EXPECT_EQ(character(id)["voice_status"], "none");
    EXPECT_EQ(job(job_id)["status"], "cancelled");
    EXPECT_FALSE(fs::exists(server->data_dir() + "/outputs/models/" + id + ".training.pth"));

    // Deleting the character while its training runs: stopped, its files gone.
    fs::remove(dir / "pids");
    r = post("/api/characters/" + id + "/train_voice", Json::object());
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job2 = body_json(r)["job"]["id"];
    ASSERT_TRUE(poll_until([&] { return fs::exists(dir / "pids") && job(job2)["progress"].get<double>() > 0; }));
    std::tie(pid, child) = read_pids(dir);
    write_file(server->data_dir() + "/outputs/models/" + id + ".pth", "an older model");
    auto d = server->client().Delete(("/api/characters/" + id).c_str());
    ASSERT_EQ(d->status, 200) << d->body;
    EXPECT_TRUE(poll_until([&] { return !alive(pid) && !alive(child); }, std::chrono::seconds(10)));
    EXPECT_FALSE(fs::exists(server->data_dir() + "/outputs/models/" + id + ".pth"));
    EXPECT_TRUE(poll_until([&] { return !fs::exists(server->data_dir() + "/outputs/models/" + id + ".training.pth"); }));
    EXPECT_EQ(server->client().Get(("/api/jobs/" + job2).c_str())->status, 404);
    // The server is fine, and the next training can run.
    EXPECT_EQ(server->client().Get("/api/health")->status, 200);
}

TEST_F(VoiceTraining, ATrainingCutOffByARestartStartsOverAndFinishes) {
    const std::string train = trainer_script();
    start({{"vc_train_command", train + " {sample} {output} {epochs} {name}"}});
    const std::string id = character_with_sample()["id"];
    auto r = post("/api/characters/" + id + "/train_voice", {{"epochs", 2}});
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job_id = body_json(r)["job"]["id"];
    ASSERT_TRUE(poll_until([&] { return job(job_id)["progress"].get<double>() > 0; }));
    // A crash (SIGKILL): nothing is written on the way out.
    server->stop(SIGKILL);
    write_file((dir / "go").string(), "");
    server->restart();
    ASSERT_TRUE(poll_until([&] { return job_ended(job_id); }));
    EXPECT_EQ(job(job_id)["status"], "done") << job(job_id).dump();
    EXPECT_EQ(character(id)["voice_status"], "done");

    // A clean stop while it runs: queued again (not failed), and it runs at the next start.
    fs::remove(dir / "go");
    r = post("/api/characters/" + id + "/train_voice", {{"epochs", 2}});
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job2 = body_json(r)["job"]["id"];
    ASSERT_TRUE(poll_until([&] { return job(job2)["progress"].get<double>() > 0; }));
    EXPECT_EQ(server->stop(SIGTERM), 0);
    server->restart();
    EXPECT_NE(job(job2)["status"], "failed");
    write_file((dir / "go").string(), "");
    ASSERT_TRUE(poll_until([&] { return job_ended(job2); }));
    EXPECT_EQ(job(job2)["status"], "done") << job(job2).dump();
}

}  // namespace
}  // namespace mc::test
