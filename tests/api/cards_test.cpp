// Black-box tests of character cards and lorebooks: import of every card version and container,
// export as PNG and JSON, the round trip import -> export -> import compared field by field,
// duplicates, limits and bad files; lorebooks imported, attached, and firing in the prompt preview.
#include <gtest/gtest.h>

#include "../card_fixtures.hpp"
#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

// Every field of a character that a card carries (not the id, times, urls or voice status).
const char* const kCardFields[] = {"name", "description", "personality", "scenario", "first_mes", "mes_example",
                                   "creator_notes", "system_prompt", "post_history_instructions", "alternate_greetings",
                                   "tags", "creator", "character_version", "extensions", "group_only_greetings", "nickname",
                                   "creator_notes_multilingual", "source", "creation_date", "modification_date", "assets",
                                   "voice", "appearance"};

class CardsApi : public ::testing::Test {
protected:
    void start(Json settings = Json::object()) {
        server = std::make_unique<ServerProcess>(settings);
        c = std::make_unique<httplib::Client>(server->client());
    }
    void SetUp() override { start(); }
    httplib::Result import(const std::string& bytes, const std::string& type = "application/octet-stream") {
        return c->Post("/api/characters/import", bytes, type.c_str());
    }
    Json imported(const std::string& bytes) {
        auto r = import(bytes);
        EXPECT_TRUE(r);
        EXPECT_EQ(r->status, 201) << r->body;
        return body_json(r);
    }
    std::string export_card(const std::string& id, const std::string& format) {
        auto r = c->Get(("/api/characters/" + id + "/export?format=" + format).c_str());
        EXPECT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
        return r ? r->body : "";
    }
    Json book_of(const Json& import_answer) {
        if (import_answer["lorebook"].is_null()) return nullptr;
        Json b = body_json(c->Get(("/api/lorebooks/" + import_answer["lorebook"]["id"].get<std::string>()).c_str()));
        for (const char* k : {"id", "character_ids", "chat_ids", "created_at", "updated_at"}) b.erase(k);
        return b;
    }
    void expect_error(const httplib::Result& r, int status, const std::string& field = "file") {
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << r->body;
        const Json e = body_json(r)["error"];
        EXPECT_FALSE(e["message"].get<std::string>().empty()) << r->body;
        if (!field.empty()) {
            EXPECT_EQ(e["field"], field) << r->body;
        }
    }
    std::unique_ptr<ServerProcess> server;
    std::unique_ptr<httplib::Client> c;
};

TEST_F(CardsApi, ImportEveryFormatAndVersion) {
    const Json data = full_data(1);
    const std::string png = make_png(32, 32);
    struct Case {
        const char* what;
        std::string bytes;
        int spec;
        bool has_avatar;
    };
    const Case cases[] = {
        {"V1 JSON", v1_card(data).dump(), 1, false},
        {"V2 JSON", v2_card(data).dump(), 2, false},
        {"V3 JSON", v3_card(data).dump(), 3, false},
        {"PNG chara", with_text_chunks(png, {{"chara", b64(v2_card(data).dump())}}), 2, true},
        {"PNG ccv3", with_text_chunks(png, {{"ccv3", b64(v3_card(data).dump())}}), 3, true},
        {"PNG V1 in chara", with_text_chunks(png, {{"chara", b64(v1_card(data).dump())}}), 1, true},
        {"CHARX", make_charx(v3_card(data), png), 3, true},
    };
    for (const auto& k : cases) {
        const Json r = imported(k.bytes);
        EXPECT_EQ(r["spec"], k.spec) << k.what;
        const Json& ch = r["character"];
        EXPECT_TRUE(ch["name"].get<std::string>().starts_with("Aria 1")) << k.what;
        EXPECT_EQ(ch["first_mes"], data["first_mes"]) << k.what;
        EXPECT_EQ(!ch["avatar_url"].is_null(), k.has_avatar) << k.what;
        if (k.spec >= 2) {
            EXPECT_EQ(ch["extensions"]["vendor_1"], data["extensions"]["vendor_1"]) << k.what;
            EXPECT_EQ(ch["voice"], data["extensions"]["mycandy"]["voice"]) << k.what;
            EXPECT_EQ(r["lorebook"]["entry_count"], 3) << k.what;
        }
        if (k.spec == 3) {
            EXPECT_EQ(ch["nickname"], data["nickname"]) << k.what;
            EXPECT_EQ(ch["creation_date"], data["creation_date"]) << k.what;
        }
        if (k.has_avatar) {
            // The avatar is the card's picture without the card chunks.
            auto a = c->Get((ch["avatar_url"].get<std::string>()).c_str());
            ASSERT_TRUE(a);
            EXPECT_EQ(a->body, png) << k.what;
        }
    }
}

TEST_F(CardsApi, RoundTripKeepsEveryField) {
    for (int seed = 0; seed < 3; ++seed) {
        const Json first = imported(v3_card(full_data(seed)).dump());
        const std::string id = first["character"]["id"];
        const Json first_book = book_of(first);
        for (const std::string format : {"json", "png"}) {
            const std::string file = export_card(id, format);
            const Json again = imported(file);
            EXPECT_EQ(again["spec"], 3);
            for (const char* k : kCardFields) {
                if (std::string(k) == "name") continue;  // "Aria 0 (2)": a duplicate.
                EXPECT_EQ(again["character"][k], first["character"][k]) << format << " " << k;
            }
            EXPECT_EQ(book_of(again), first_book) << format;
            // The exported file of the second import is the same card (the name apart).
            Json a = Json::parse(export_card(again["character"]["id"], "json"));
            Json b = Json::parse(export_card(id, "json"));
            a["data"].erase("name");
            b["data"].erase("name");
            a["data"]["character_book"].erase("name");
            b["data"]["character_book"].erase("name");
            EXPECT_EQ(a, b) << format;
        }
        // Every field as the card had it.
        const Json d = full_data(seed);
        for (const char* k : kCardFields) {
            if (std::string(k) == "voice" || std::string(k) == "appearance" || std::string(k) == "extensions") continue;
            EXPECT_EQ(first["character"][k], d[k]) << k;
        }
        EXPECT_EQ(first["character"]["appearance"], d["extensions"]["mycandy"]["appearance"]);
    }
}

TEST_F(CardsApi, ExportPngCarriesBothChunksBeforeIendInTheAvatar) {
    const std::string avatar = make_png(24, 24, 90);
    const Json r = imported(with_text_chunks(avatar, {{"chara", b64(v2_card(full_data(4)).dump())}}));
    const std::string png = export_card(r["character"]["id"], "png");
    const auto chunks = chunk_list(png);
    ASSERT_GE(chunks.size(), 4u);
    EXPECT_EQ(chunks.back(), "IEND");
    EXPECT_EQ(std::count(chunks.begin(), chunks.end(), "tEXt:chara"), 1);
    EXPECT_EQ(std::count(chunks.begin(), chunks.end(), "tEXt:ccv3"), 1);
    EXPECT_TRUE(chunks[chunks.size() - 2].starts_with("tEXt:") && chunks[chunks.size() - 3].starts_with("tEXt:"));
    // The avatar's own chunks are unchanged (same IHDR/IDAT).
    const auto original = chunk_list(avatar);
    EXPECT_EQ(std::vector<std::string>(chunks.begin(), chunks.begin() + 2), std::vector<std::string>(original.begin(), original.begin() + 2));
    // A character without an avatar exports on a generated picture.
    const Json plain = body_json(c->Post("/api/characters", R"({"name":"Plain"})", "application/json"));
    const std::string generated = export_card(plain["id"], "png");
    EXPECT_EQ(chunk_list(generated).back(), "IEND");
    EXPECT_EQ(imported(generated)["character"]["name"], "Plain (2)");
    expect_error(c->Get(("/api/characters/" + plain["id"].get<std::string>() + "/export?format=gif").c_str()), 400, "format");
}

TEST_F(CardsApi, DuplicatesGetNumberedNames) {
    const std::string card = v2_card(full_data(5)).dump();
    EXPECT_EQ(imported(card)["character"]["name"], "Aria 5");
    EXPECT_EQ(imported(card)["character"]["name"], "Aria 5 (2)");
    EXPECT_EQ(imported(card)["character"]["name"], "Aria 5 (3)");
    EXPECT_EQ(body_json(c->Get("/api/characters"))["characters"].size(), 3u);
    // A 100-character name still fits with its number.
    Json long_name = v2_card(full_data(5));
    long_name["data"]["name"] = std::string(100, 'n');
    imported(long_name.dump());
    EXPECT_EQ(imported(long_name.dump())["character"]["name"], std::string(96, 'n') + " (2)");
}

TEST_F(CardsApi, BadFilesAre4xxNamingTheProblem) {
    const std::string png = make_png(8, 8);
    expect_error(import(png), 400);  // No card chunk.
    expect_error(import(with_text_chunks(png, {{"chara", "%%%"}})), 400);
    expect_error(import(with_text_chunks(png, {{"chara", b64("{not json")}})), 400);
    expect_error(import(with_text_chunks(png, {{"ccv3", b64("{\"spec\":\"chara_card_v3\",\"data\":{\"name\":\"\xff\"}}")}})), 400);
    expect_error(import(""), 400);
    expect_error(import("GIF89a...."), 415);
    Json big = v3_card(full_data(6));
    big["data"]["description"] = std::string(5 << 20, 'x');
    expect_error(import(big.dump()), 413);
    Json many = v3_card(full_data(6));
    many["data"]["character_book"]["entries"] = Json::array();
    for (int i = 0; i < 10000; ++i) many["data"]["character_book"]["entries"].push_back({{"keys", {"k"}}, {"content", "c"}});
    expect_error(import(many.dump()), 413, "data.character_book.entries");
    expect_error(import(make_zip({{"card.json", v3_card(full_data(6)).dump(), true},
                                  {"bomb.bin", std::string(100u << 20, '\0'), true}})), 413);
    expect_error(import(make_zip({{"card.json", v3_card(full_data(6)).dump(), false}, {"../evil", "x", false}})), 400);
    Json lookbehind = v3_card(full_data(6));
    lookbehind["data"]["character_book"]["entries"][0]["keys"] = {"/(?<=a)b/"};
    expect_error(import(lookbehind.dump()), 400, "data.character_book.entries[0].keys[0]");
    Json wrong = v3_card(full_data(6));
    wrong["data"]["alternate_greetings"] = 5;
    expect_error(import(wrong.dump()), 400, "data.alternate_greetings");
    Json bad_voice = v3_card(full_data(6));
    bad_voice["data"]["extensions"]["mycandy"]["voice"] = {{"engine", "nonsense"}};
    expect_error(import(bad_voice.dump()), 400, "");
    // Nothing was created by any of these.
    EXPECT_EQ(body_json(c->Get("/api/characters"))["characters"].size(), 0u);
    EXPECT_EQ(body_json(c->Get("/api/lorebooks"))["lorebooks"].size(), 0u);
    // The server is still fine.
    EXPECT_EQ(c->Get("/api/health")->status, 200);
}

TEST_F(CardsApi, LorebooksImportEditAttachAndLimits) {
    const Json st = {{"entries", {{"0", {{"uid", 0}, {"key", {"castle"}}, {"content", "The castle is old."}, {"order", 5}}}}}};
    auto r = c->Post("/api/lorebooks/import", st.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    const Json book = body_json(r);
    EXPECT_EQ(book["name"], "Imported lorebook");
    EXPECT_EQ(book["entries"][0]["keys"], Json({"castle"}));
    EXPECT_EQ(book["entries"][0]["insertion_order"], 5);
    const std::string id = book["id"];
    const Json ch = body_json(c->Post("/api/characters", R"({"name":"Mia"})", "application/json"));
    auto p = c->Patch(("/api/lorebooks/" + id).c_str(),
                      Json{{"name", "Castle"}, {"character_ids", {ch["id"]}}, {"scan_depth", 3}}.dump(), "application/json");
    ASSERT_EQ(p->status, 200) << p->body;
    EXPECT_EQ(body_json(p)["character_ids"], Json({ch["id"]}));
    EXPECT_EQ(body_json(p)["scan_depth"], 3);
    expect_error(c->Patch(("/api/lorebooks/" + id).c_str(), R"({"scan_depth":-1})", "application/json"), 400, "scan_depth");
    expect_error(c->Patch(("/api/lorebooks/" + id).c_str(), R"({"character_ids":["nope"]})", "application/json"), 404, "character_ids");
    expect_error(c->Patch(("/api/lorebooks/" + id).c_str(), R"({"entries":[{"keys":"x"}]})", "application/json"), 400, "entries[0].keys");
    expect_error(c->Patch(("/api/lorebooks/" + id).c_str(), R"({"colour":"red"})", "application/json"), 400, "colour");
    // The character's export carries the attached book as its character_book.
    const Json card = Json::parse(export_card(ch["id"], "json"));
    EXPECT_EQ(card["data"]["character_book"]["entries"][0]["content"], "The castle is old.");
    // Deleting the character keeps the book, without the link.
    c->Delete(("/api/characters/" + ch["id"].get<std::string>()).c_str());
    EXPECT_EQ(body_json(c->Get(("/api/lorebooks/" + id).c_str()))["character_ids"].size(), 0u);
    EXPECT_EQ(c->Delete(("/api/lorebooks/" + id).c_str())->status, 200);
    EXPECT_EQ(c->Get(("/api/lorebooks/" + id).c_str())->status, 404);
    expect_error(c->Post("/api/lorebooks/import", "{\"entries\":[{\"content\":\"\xff\"}]}", "application/json"), 400);
}

TEST(CardsPrompt, FiredEntriesShowInThePreviewWithReasonsAndPositions) {
    ServerProcess server(Json{{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", 8}, {"threads", 2}}},
                              {"media", {{"image_instruct", false}}}});
    settled_health(server);
    auto c = server.client();
    Json card = v3_card(full_data(9));
    card["data"]["post_history_instructions"] = "";
    card["data"]["character_book"] = {
        {"name", "World"},
        {"scan_depth", 2},
        {"entries",
         {{{"keys", {"castle"}}, {"content", "LORE-CASTLE"}, {"insertion_order", 1}},
          {{"keys", {"never"}}, {"content", "LORE-NEVER"}},
          {{"keys", {}}, {"content", "LORE-ALWAYS"}, {"constant", true}, {"position", "after_char"}},
          {{"keys", {"/dr[a-z]+n/i"}}, {"content", "LORE-DEEP"}, {"extensions", {{"position", 4}, {"depth", 0}}}}}}};
    const Json r = body_json(c.Post("/api/characters/import", card.dump(), "application/json"));
    const Json chat = body_json(c.Post("/api/chats", Json{{"character_id", r["character"]["id"]}}.dump(), "application/json"));
    const std::string chat_id = chat["chat"]["id"];
    const Json p = body_json(c.Get(("/api/chats/" + chat_id + "/prompt?message=The%20castle%20has%20a%20Dragon").c_str()));
    const std::string text = p["text"];
    EXPECT_NE(text.find("LORE-CASTLE"), std::string::npos);
    EXPECT_NE(text.find("LORE-ALWAYS"), std::string::npos);
    EXPECT_NE(text.find("LORE-DEEP"), std::string::npos);
    EXPECT_EQ(text.find("LORE-NEVER"), std::string::npos);
    // Constant entries sit in the stable system part; keyword entries after it; depth 0 after the last message.
    const Json& m = p["messages"];
    EXPECT_NE(m[0]["content"].get<std::string>().find("LORE-ALWAYS"), std::string::npos);
    EXPECT_EQ(m[0]["content"].get<std::string>().find("LORE-CASTLE"), std::string::npos);
    EXPECT_NE(m[1]["content"].get<std::string>().find("LORE-CASTLE"), std::string::npos);
    EXPECT_EQ(m.back()["content"], "LORE-DEEP");
    ASSERT_EQ(p["world_info"].size(), 3u);
    std::map<std::string, std::string> reasons;
    for (const auto& w : p["world_info"]) reasons[w["position"]] = w["reason"];
    EXPECT_EQ(reasons["before_char"], "key 'castle'");
    EXPECT_EQ(reasons["after_char"], "constant");
    EXPECT_EQ(reasons["at_depth"], "key '/dr[a-z]+n/i'");
    EXPECT_GT(p["tokens"]["world_info"].get<int>(), 0);
    // Attached to the chat only: a second book fires in this chat.
    auto b = c.Post("/api/lorebooks", Json{{"name", "Chat book"}, {"chat_ids", {chat_id}},
                                           {"entries", {{{"keys", {"castle"}}, {"content", "LORE-CHAT"}}}}}.dump(),
                    "application/json");
    ASSERT_EQ(b->status, 201) << b->body;
    const Json p2 = body_json(c.Get(("/api/chats/" + chat_id + "/prompt?message=castle").c_str()));
    EXPECT_NE(p2["text"].get<std::string>().find("LORE-CHAT"), std::string::npos);
}

// The stable-prefix design: entries that change between turns sit after the cached part, so a turn
// reads only them and the new message again, not the history.
TEST(CardsPrompt, ChangedEntriesCostOnlyThemselvesNotTheHistory) {
    ServerProcess server(Json{{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 2048}, {"max_tokens", 12}, {"threads", 2}}},
                              {"chat", {{"user_name", "Jonas"}}}, {"media", {{"image_instruct", false}}}});
    settled_health(server);
    auto c = server.client();
    Json card = v2_card(full_data(3));
    card["data"]["post_history_instructions"] = "";
    // No character's note: a note sits `depth` messages from the end, so it moves every turn and
    // those messages are read again (docs/api.md, "Characters"); this test is about the entries.
    card["data"]["extensions"].erase("depth_prompt");
    card["data"]["character_book"] = {
        {"name", "Harbour"},
        {"scan_depth", 1},
        {"entries",
         {{{"keys", {"harbour"}}, {"content", "The harbour has twelve piers, a fish market and a red crane from 1920."}},
          {{"keys", {"lighthouse"}}, {"content", "The lighthouse keeper is called Ole; he has kept the light for forty years."}}}}};
    const Json r = body_json(c.Post("/api/characters/import", card.dump(), "application/json"));
    const std::string chat =
        body_json(c.Post("/api/chats", Json{{"character_id", r["character"]["id"]}}.dump(), "application/json"))["chat"]["id"];
    auto send = [&](const std::string& text) {
        return post_sse(server.port(), "/api/chats/" + chat + "/messages", Json{{"content", text}, {"sampling", {{"seed", 3}}}}.dump());
    };
    for (const char* m : {"Tell me about the harbour, please.", "And the lighthouse?", "What else is at the harbour?"}) {
        ASSERT_NE(send(m).last("done"), nullptr) << m;
    }
    const std::string next = "Who keeps the lighthouse?";
    const Json p = body_json(c.Get(("/api/chats/" + chat + "/prompt?message=Who%20keeps%20the%20lighthouse%3F").c_str()));
    ASSERT_EQ(p["world_info"].size(), 1u);
    EXPECT_EQ(p["world_info"][0]["reason"], "key 'lighthouse'");
    const auto done = send(next);
    ASSERT_NE(done.last("done"), nullptr);
    const Json t = done.last("done")->data["timings"];
    EXPECT_GE(t["cached_tokens"].get<int>(), p["tokens"]["system"].get<int>() + p["tokens"]["history"].get<int>() - 40) << t.dump();
    EXPECT_LE(t["prompt_tokens"].get<int>(), p["tokens"]["world_info"].get<int>() + 40) << t.dump();
}

}  // namespace
}  // namespace mc::test
