#include "core/settings.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/text.hpp"

namespace mc {
namespace {

std::string temp_dir() {
    auto dir = std::filesystem::temp_directory_path() / ("mc-settings-" + random_hex(6));
    std::filesystem::create_directories(dir);
    return dir.string();
}

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(Settings, EmptyDocumentGivesEveryDefault) {
    auto loaded = validate_settings(Json::object());
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->settings.str("llm.llama_cpp_url"), "http://127.0.0.1:8080");
    EXPECT_EQ(loaded->settings.str("media.comfyui_url"), "http://127.0.0.1:8188");
    EXPECT_EQ(loaded->settings.integer("media.tts_port"), 8020);
    EXPECT_TRUE(loaded->settings.boolean("media.tts_enabled"));
    EXPECT_EQ(loaded->settings.str("llm.backend"), "embedded");
    EXPECT_TRUE(loaded->warnings.empty());
}

TEST(Settings, SeedFileLoadsAsIs) {
    const Json seed = Json::parse(R"({"llm":{"llama_cpp_url":"http://127.0.0.1:8080",
        "model_path":"models/llm/L3-8B-Stheno-v3.2-Q5_K_M.gguf"},
        "media":{"tts_enabled":true,"tts_port":8020,"snac_model_id":"hubertsiuzdak/snac_24khz",
        "comfyui_url":"http://127.0.0.1:8188","rvc_cli_path":"path/to/rvc_cli.py",
        "rvc_webui_dir":"path/to/Retrieval-based-Voice-Conversion-WebUI","vc_train_script":"vc_train_tool.py",
        "vc_script":"rvc_infer.py"}})");
    auto loaded = validate_settings(seed);
    ASSERT_TRUE(loaded);
    EXPECT_TRUE(loaded->warnings.empty());
    EXPECT_EQ(loaded->settings.str("media.rvc_cli_path"), "path/to/rvc_cli.py");
}

TEST(Settings, WrongTypeNamesTheKeyPath) {
    auto loaded = validate_settings(Json::parse(R"({"llm":{"context_size":"big"}})"));
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().field, "llm.context_size");
    EXPECT_NE(loaded.error().message.find("llm.context_size"), std::string::npos);
    EXPECT_NE(loaded.error().message.find("integer"), std::string::npos);
}

TEST(Settings, SectionThatIsNotAnObjectIsRejected) {
    auto loaded = validate_settings(Json::parse(R"({"media":5})"));
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().field, "media");
}

TEST(Settings, OutOfRangeAndBadChoiceAreRejected) {
    auto range = validate_settings(Json::parse(R"({"media":{"tts_port":70000}})"));
    ASSERT_FALSE(range);
    EXPECT_EQ(range.error().field, "media.tts_port");
    auto choice = validate_settings(Json::parse(R"({"llm":{"backend":"cloud"}})"));
    ASSERT_FALSE(choice);
    EXPECT_EQ(choice.error().field, "llm.backend");
    EXPECT_NE(choice.error().message.find("embedded, remote"), std::string::npos);
}

TEST(Settings, UnknownKeysWarnButLoad) {
    auto loaded = validate_settings(Json::parse(R"({"llm":{"modle_path":"x"},"colour":"red"})"));
    ASSERT_TRUE(loaded);
    ASSERT_EQ(loaded->warnings.size(), 2u);
    const std::string all = loaded->warnings[0] + "\n" + loaded->warnings[1];
    EXPECT_NE(all.find("'llm.modle_path'"), std::string::npos);
    EXPECT_NE(all.find("'colour'"), std::string::npos);
}

TEST(Settings, MissingAndEmptyFilesGiveDefaults) {
    const auto dir = temp_dir();
    EXPECT_TRUE(load_settings_file(dir + "/none.json"));
    std::ofstream(dir + "/empty.json") << "  \n";
    auto empty = load_settings_file(dir + "/empty.json");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->settings.integer("llm.context_size"), 8192);
}

TEST(Settings, InvalidJsonFileSaysWhere) {
    const auto dir = temp_dir();
    std::ofstream(dir + "/bad.json") << "{\"llm\": {\n  \"model_path\": }\n}";
    auto loaded = load_settings_file(dir + "/bad.json");
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.error().message.find("bad.json"), std::string::npos);
    EXPECT_NE(loaded.error().message.find("line 2"), std::string::npos);
}

TEST(SettingsStore, PatchMergesValidatesAndWritesAtomically) {
    const auto dir = temp_dir();
    const auto path = dir + "/config/settings.json";
    SettingsStore store(path, Settings());
    auto patched = store.patch(Json::parse(R"({"llm":{"temperature":1.2}})"));
    ASSERT_TRUE(patched);
    EXPECT_DOUBLE_EQ((*patched)->number("llm.temperature"), 1.2);
    EXPECT_EQ((*patched)->str("llm.backend"), "embedded");  // Untouched keys stay.
    const Json on_disk = Json::parse(read(path));
    EXPECT_DOUBLE_EQ(on_disk["llm"]["temperature"].get<double>(), 1.2);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

    auto bad = store.patch(Json::parse(R"({"llm":{"temperature":"hot"}})"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().field, "llm.temperature");
    EXPECT_DOUBLE_EQ(store.current()->number("llm.temperature"), 1.2);  // Unchanged after a bad patch.

    auto unknown = store.patch(Json::parse(R"({"llm":{"temprature":1}})"));
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().field, "llm.temprature");
}

TEST(SettingsStore, SecretsAreRedactedAndKeptWhenSentBackRedacted) {
    const auto dir = temp_dir();
    SettingsStore store(dir + "/s.json", Settings());
    ASSERT_TRUE(store.patch(Json::parse(R"({"llm":{"api_key":"sk-secret"}})")));
    const Json shown = store.current()->redacted();
    EXPECT_EQ(shown["llm"]["api_key"], kRedacted);
    EXPECT_EQ(shown.dump().find("sk-secret"), std::string::npos);
    // A client that echoes the redacted document back must not overwrite the secret.
    ASSERT_TRUE(store.patch(shown));
    EXPECT_EQ(store.current()->str("llm.api_key"), "sk-secret");
    // null puts a key back to its default.
    ASSERT_TRUE(store.patch(Json::parse(R"({"llm":{"api_key":null}})")));
    EXPECT_EQ(store.current()->str("llm.api_key"), "");
}

}  // namespace
}  // namespace mc

namespace mc {
namespace {

TEST(Settings, RpcServerListsAreHostPortPairs) {
    auto ok = parse_rpc_servers(" 192.168.1.20:50052, gpu-box.local:50052 ,[::1]:1,");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(*ok, (std::vector<std::string>{"192.168.1.20:50052", "gpu-box.local:50052", "[::1]:1"}));
    EXPECT_TRUE(parse_rpc_servers("")->empty());
    for (const char* bad : {"192.168.1.20", "host:", ":50052", "host:0", "host:65536", "host:5x", "two words:1", "a;b:1",
                            "host:123456"}) {
        auto r = parse_rpc_servers(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find('\''), std::string::npos) << "names the entry: " << r.error().message;
    }
    std::string seventeen;
    for (int i = 0; i < 17; ++i) {
        seventeen += 'h';
        seventeen += std::to_string(i);
        seventeen += ":1,";
    }
    EXPECT_FALSE(parse_rpc_servers(seventeen));
    // Through the settings: the key is named.
    auto s = validate_settings(Json{{"llm", {{"rpc_servers", "localhost"}}}});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().field, "llm.rpc_servers");
}

}  // namespace
}  // namespace mc
