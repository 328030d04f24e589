// Black-box tests of /api/characters against the real server.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "server_process.hpp"
#include "standin_tts.hpp"

namespace mc::test {
namespace {

const std::string kPng = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16) + std::string(64, '\x01');
const std::string kWav = tone_wav(4.0, 22050);

class CharactersApi : public ::testing::Test {
protected:
    ServerProcess server;
    httplib::Client c = server.client();

    Json create(const Json& body, int expect = 201) {
        auto r = c.Post("/api/characters", body.dump(), "application/json");
        EXPECT_TRUE(r);
        EXPECT_EQ(r->status, expect) << r->body;
        return body_json(r);
    }
    size_t count() { return body_json(c.Get("/api/characters"))["characters"].size(); }
    size_t files_in(const std::string& sub) {
        const auto dir = server.data_dir() + "/outputs/" + sub;
        if (!std::filesystem::exists(dir)) return 0;
        return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
    }
    void expect_error(const httplib::Result& r, int status, const std::string& code, const std::string& field) {
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << r->body;
        const Json e = body_json(r)["error"];
        EXPECT_EQ(e["code"], code) << r->body;
        if (!field.empty()) {
            EXPECT_EQ(e["field"], field) << r->body;
        }
        EXPECT_FALSE(e["message"].get<std::string>().empty());
    }
};

TEST_F(CharactersApi, CreateListGetPatchDeleteRoundTrip) {
    const Json mia = create({{"name", "Mia"},
                             {"description", "Eine Künstlerin aus Hamburg."},
                             {"personality", "warm, neugierig"},
                             {"scenario", "Ein Café am Hafen"},
                             {"first_mes", "*winkt* Hallo {{user}}!"},
                             {"alternate_greetings", {"Moin!", "Na du?"}},
                             {"mes_example", "<START>\n{{user}}: Hi\n{{char}}: Hallo!"},
                             {"system_prompt", ""},
                             {"post_history_instructions", "Bleib in der Rolle."},
                             {"creator_notes", "test"},
                             {"tags", {"artist", "german"}},
                             {"appearance", "1girl, red hair, green eyes"},
                             {"voice", {{"engine", "espeak"}, {"language", "de"}}},
                             {"extensions", {{"talkativeness", "0.5"}}}});
    const std::string id = mia["id"];
    EXPECT_EQ(mia["name"], "Mia");
    EXPECT_EQ(mia["alternate_greetings"].size(), 2u);
    EXPECT_EQ(mia["voice_status"], "none");
    EXPECT_TRUE(mia["avatar_url"].is_null());
    EXPECT_GT(mia["created_at"].get<int64_t>(), 0);

    EXPECT_EQ(count(), 1u);
    EXPECT_EQ(body_json(c.Get(("/api/characters/" + id).c_str())), mia);

    auto r = c.Patch(("/api/characters/" + id).c_str(), R"({"personality":"verspielt","tags":["x"]})", "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    const Json patched = body_json(r);
    EXPECT_EQ(patched["personality"], "verspielt");
    EXPECT_EQ(patched["description"], mia["description"]);  // Untouched fields stay.
    EXPECT_EQ(patched["tags"], Json::array({"x"}));

    // A client may send back the whole object it received, read-only fields included.
    r = c.Patch(("/api/characters/" + id).c_str(), patched.dump(), "application/json");
    EXPECT_EQ(r->status, 200) << r->body;

    EXPECT_EQ(c.Delete(("/api/characters/" + id).c_str())->status, 200);
    EXPECT_EQ(count(), 0u);
    expect_error(c.Get(("/api/characters/" + id).c_str()), 404, "not_found", "");
}

TEST_F(CharactersApi, BadInputIsA4xxNamingTheFieldAndChangesNothing) {
    const Json mia = create({{"name", "Mia"}, {"description", "original"}});
    const std::string path = "/api/characters/" + mia["id"].get<std::string>();

    expect_error(c.Post("/api/characters", "{\"name\": ", "application/json"), 400, "invalid_input", "body");
    expect_error(c.Post("/api/characters", "[1,2]", "application/json"), 400, "invalid_input", "body");
    expect_error(c.Post("/api/characters", "{}", "application/json"), 400, "invalid_input", "name");
    expect_error(c.Post("/api/characters", R"({"name":"   "})", "application/json"), 400, "invalid_input", "name");
    expect_error(c.Post("/api/characters", Json{{"name", std::string(101, 'a')}}.dump(), "application/json"), 400,
                 "invalid_input", "name");
    expect_error(c.Post("/api/characters", R"({"name":42})", "application/json"), 400, "invalid_input", "name");
    expect_error(c.Post("/api/characters", R"({"name":"A","tags":"x"})", "application/json"), 400, "invalid_input", "tags");
    expect_error(c.Post("/api/characters", R"({"name":"A","tags":[1]})", "application/json"), 400, "invalid_input", "tags");
    expect_error(c.Post("/api/characters", R"({"name":"A","voice":"x"})", "application/json"), 400, "invalid_input", "voice");
    expect_error(c.Post("/api/characters", R"({"name":"A","colour":"red"})", "application/json"), 400, "invalid_input",
                 "colour");
    expect_error(c.Post("/api/characters", Json{{"name", "A"}, {"description", std::string(300000, 'x')}}.dump(),
                        "application/json"),
                 413, "too_large", "description");
    // Invalid UTF-8 inside a JSON string.
    expect_error(c.Post("/api/characters", "{\"name\":\"\xC3\x28\"}", "application/json"), 400, "invalid_input", "body");

    expect_error(c.Patch(path.c_str(), Json{{"name", std::string(101, 'b')}, {"description", "changed"}}.dump(),
                         "application/json"),
                 400, "invalid_input", "name");
    expect_error(c.Patch(path.c_str(), R"({"alternate_greetings":{}})", "application/json"), 400, "invalid_input",
                 "alternate_greetings");
    expect_error(c.Patch("/api/characters/unknown-id", R"({"name":"x"})", "application/json"), 404, "not_found", "id");
    expect_error(c.Delete("/api/characters/unknown-id"), 404, "not_found", "id");

    // 100 characters (umlauts count as one each) is fine.
    std::string hundred;
    for (int i = 0; i < 100; ++i) hundred += "ü";
    EXPECT_EQ(create({{"name", hundred}})["name"], hundred);

    // The first character is exactly as it was, and the server still serves.
    const Json now = body_json(c.Get(path.c_str()));
    EXPECT_EQ(now, mia);
    EXPECT_EQ(count(), 2u);
    EXPECT_EQ(c.Get("/api/health")->status, 200);
}

// A form with several bad fields is answered with all of them at once, each with a reason and
// figures a client can put in the person's language (the editor marks every field, in German too).
TEST_F(CharactersApi, EveryInvalidFieldIsAnsweredAtOnceWithItsReason) {
    const Json mia = create({{"name", "Mia"}, {"description", "original"}});
    const std::string path = "/api/characters/" + mia["id"].get<std::string>();
    const Json bad = {{"name", "   "},
                      {"description", "changed"},
                      {"tags", "x"},
                      {"voice", {{"speed", 9}, {"pitch", "high"}, {"language", "de_DE"}}},
                      {"extensions", {{"mycandy", {{"image", {{"steps", 0}, {"width", 100}}}}}}}};
    auto r = c.Patch(path.c_str(), bad.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    const Json e = body_json(r)["error"];
    ASSERT_TRUE(e.contains("errors")) << r->body;
    std::map<std::string, Json> by_field;
    for (const auto& p : e["errors"]) by_field[p["field"].get<std::string>()] = p;
    ASSERT_EQ(by_field.size(), 7u) << r->body;
    EXPECT_EQ(by_field["name"]["reason"], "empty");
    EXPECT_EQ(by_field["tags"]["reason"], "type");
    EXPECT_EQ(by_field["tags"]["params"]["expected"], "array");
    EXPECT_EQ(by_field["voice.speed"]["reason"], "range");
    EXPECT_EQ(by_field["voice.speed"]["params"], (Json{{"min", "0.5"}, {"max", "2"}}));
    EXPECT_EQ(by_field["voice.pitch"]["reason"], "range");
    EXPECT_EQ(by_field["voice.language"]["reason"], "language");
    EXPECT_EQ(by_field["extensions.mycandy.image.steps"]["params"], (Json{{"min", "1"}, {"max", "150"}}));
    EXPECT_EQ(by_field["extensions.mycandy.image.width"]["reason"], "multiple_of");
    EXPECT_EQ(by_field["extensions.mycandy.image.width"]["params"]["n"], "8");
    for (const auto& [field, p] : by_field) {
        EXPECT_EQ(p["code"], "invalid_input") << field;
        EXPECT_FALSE(p["message"].get<std::string>().empty()) << field;
    }
    // The top-level error is the first of them (older clients read only it).
    EXPECT_EQ(e["field"], e["errors"][0]["field"]);
    // Nothing was saved, not even the valid description.
    EXPECT_EQ(body_json(c.Get(path.c_str())), mia);

    // One bad field: no list, the reason is still there.
    r = c.Patch(path.c_str(), R"({"voice":{"pitch":120}})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_FALSE(body_json(r)["error"].contains("errors"));
    EXPECT_EQ(body_json(r)["error"]["reason"], "range");
    EXPECT_EQ(body_json(r)["error"]["params"]["max"], "99");
}

TEST_F(CharactersApi, EveryInvalidSettingIsAnsweredAtOnce) {
    const Json before = body_json(c.Get("/api/settings"));
    auto r = c.Patch("/api/settings", R"({"llm":{"context_size":"large","temperature":9,"top_p":0.5},"ui":{"language":"fr"}})",
                     "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    const Json e = body_json(r)["error"];
    std::map<std::string, Json> by_field;
    for (const auto& p : e["errors"]) by_field[p["field"].get<std::string>()] = p;
    ASSERT_EQ(by_field.size(), 3u) << r->body;
    EXPECT_EQ(by_field["llm.context_size"]["reason"], "type");
    EXPECT_EQ(by_field["llm.context_size"]["params"]["expected"], "integer");
    EXPECT_EQ(by_field["llm.temperature"]["reason"], "range");
    EXPECT_EQ(by_field["llm.temperature"]["params"], (Json{{"min", "0"}, {"max", "5"}}));
    EXPECT_EQ(by_field["ui.language"]["reason"], "choice");
    EXPECT_EQ(by_field["ui.language"]["params"]["choices"], "auto, en, de");
    // Nothing changed, not even the valid top_p.
    EXPECT_EQ(body_json(c.Get("/api/settings")), before);
}

TEST_F(CharactersApi, AvatarUploadIsTypeCheckedCappedAndReplacesTheOldFile) {
    const std::string id = create({{"name", "Mia"}})["id"];
    const std::string path = "/api/characters/" + id + "/avatar";
    expect_error(c.Get(path.c_str()), 404, "not_found", "avatar");

    auto r = c.Put(path.c_str(), kPng, "image/png");
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["avatar_url"], path);
    auto got = c.Get(path.c_str());
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(got->body, kPng);
    EXPECT_EQ(got->get_header_value("Content-Type"), "image/png");

    // The content decides, not the declared type or a file name.
    httplib::Headers named = {{"Content-Disposition", "attachment; filename=\"../../evil.png\""}};
    expect_error(c.Put(path.c_str(), named, "<svg onload=alert(1)>", "image/png"), 415, "unsupported_media", "avatar");
    expect_error(c.Put(path.c_str(), "", "image/png"), 400, "invalid_input", "avatar");
    std::string big = kPng + std::string((10u << 20), '\0');
    expect_error(c.Put(path.c_str(), big, "image/png"), 413, "too_large", "avatar");
    EXPECT_EQ(c.Get(path.c_str())->body, kPng);  // Still the first avatar.

    const std::string jpeg = std::string("\xFF\xD8\xFF\xE0", 4) + std::string(32, '\x02');
    r = c.Put(path.c_str(), named, jpeg, "application/octet-stream");
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(c.Get(path.c_str())->get_header_value("Content-Type"), "image/jpeg");
    EXPECT_EQ(files_in("avatars"), 1u);  // The PNG was removed when the JPEG replaced it.
    EXPECT_FALSE(std::filesystem::exists(server.data_dir() + "/../evil.png"));
    for (const auto& f : std::filesystem::recursive_directory_iterator(server.data_dir())) {
        EXPECT_EQ(f.path().filename().string().find("evil"), std::string::npos);
    }
    expect_error(c.Put("/api/characters/nope/avatar", kPng, "image/png"), 404, "not_found", "id");
}

TEST_F(CharactersApi, VoiceSampleUploadAndPlayback) {
    const std::string id = create({{"name", "Mia"}})["id"];
    const std::string path = "/api/characters/" + id + "/voice_sample";
    EXPECT_TRUE(create({{"name", "Nosample"}})["voice_sample_info"].is_null());
    expect_error(c.Put(path.c_str(), kPng, "audio/wav"), 415, "unsupported_media", "voice_sample");
    // Too short, silent, or not audio at all though it starts like an MP3: refused, nothing stored.
    expect_error(c.Put(path.c_str(), tone_wav(2.0), "audio/wav"), 400, "invalid_input", "voice_sample");
    expect_error(c.Post(path.c_str(), "ID3" + std::string(5000, 'x'), "audio/mpeg"), 400, "invalid_input", "voice_sample");
    EXPECT_EQ(files_in("voices"), 0u);
    auto r = c.Put(path.c_str(), kWav, "audio/wav");
    ASSERT_EQ(r->status, 200) << r->body;
    const Json ch = body_json(r);
    EXPECT_EQ(ch["voice_sample_url"], path);
    // What the editor shows: length, the file's rate, format, loudness and a waveform.
    const Json& info = ch["voice_sample_info"];
    EXPECT_NEAR(info["seconds"].get<double>(), 4.0, 0.01);
    EXPECT_EQ(info["sample_rate"], 22050);
    EXPECT_EQ(info["format"], "wav");
    EXPECT_TRUE(info["loudness_db"].is_number());
    EXPECT_EQ(info["waveform"].size(), 160u);
    EXPECT_FALSE(info.contains("wav"));  // The normalized copy's file stays inside.
    EXPECT_EQ(body_json(c.Get(("/api/characters/" + id).c_str()))["voice_sample_info"], info);
    EXPECT_EQ(files_in("voices"), 2u);  // As sent, and normalized for the engines.
    auto got = c.Get(path.c_str());
    EXPECT_EQ(got->body, kWav);
    EXPECT_EQ(got->get_header_value("Content-Type"), "audio/wav");
    std::string big = kWav + std::string(50u << 20, '\0');
    expect_error(c.Put(path.c_str(), big, "audio/wav"), 413, "too_large", "voice_sample");
    // A new sample replaces both files.
    ASSERT_EQ(c.Post(path.c_str(), tone_wav(6.0), "audio/wav")->status, 200);
    EXPECT_EQ(files_in("voices"), 2u);
    EXPECT_NEAR(body_json(c.Get(("/api/characters/" + id).c_str()))["voice_sample_info"]["seconds"].get<double>(), 6.0, 0.01);
}

TEST_F(CharactersApi, DeletingACharacterDeletesItsFiles) {
    const std::string id = create({{"name", "Mia"}})["id"];
    ASSERT_EQ(c.Put(("/api/characters/" + id + "/avatar").c_str(), kPng, "image/png")->status, 200);
    ASSERT_EQ(c.Put(("/api/characters/" + id + "/voice_sample").c_str(), kWav, "audio/wav")->status, 200);
    EXPECT_EQ(files_in("avatars"), 1u);
    EXPECT_EQ(files_in("voices"), 2u);
    EXPECT_EQ(c.Delete(("/api/characters/" + id).c_str())->status, 200);
    EXPECT_EQ(files_in("avatars"), 0u);
    EXPECT_EQ(files_in("voices"), 0u);
}

TEST_F(CharactersApi, PathTraversalInIdsFindsNothing) {
    create({{"name", "Mia"}});
    EXPECT_EQ(c.Get("/api/characters/../../etc/passwd/avatar")->status, 404);
    EXPECT_EQ(c.Get("/api/characters/..%2F..%2Fetc%2Fpasswd/avatar")->status, 404);
    EXPECT_EQ(c.Get("/api/health")->status, 200);
}

}  // namespace
}  // namespace mc::test
