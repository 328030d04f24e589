// Unit tests of cards/: card JSON in every version, PNG chunks (reading, placement, CRC checks),
// base64, CHARX limits, and round trips through the export functions.
#include <gtest/gtest.h>

#include <set>

#include "card_fixtures.hpp"
#include "cards/card.hpp"
#include "cards/png.hpp"

namespace mc::cards {
namespace {

using test::full_data;

TEST(CardJson, V3KeepsEveryFieldAndMovesOurOwnOutOfExtensions) {
    auto card = card_from_json(test::v3_card(full_data(1)));
    ASSERT_TRUE(card) << card.error().message;
    EXPECT_EQ(card->spec, 3);
    const Json& f = card->fields;
    const Json d = full_data(1);
    for (const char* k : {"name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
                          "system_prompt", "post_history_instructions", "alternate_greetings", "tags", "creator",
                          "character_version", "group_only_greetings", "nickname", "creator_notes_multilingual", "source",
                          "creation_date", "modification_date", "assets"}) {
        EXPECT_EQ(f[k], d[k]) << k;
    }
    EXPECT_EQ(f["voice"], d["extensions"]["mycandy"]["voice"]);
    EXPECT_EQ(f["appearance"], d["extensions"]["mycandy"]["appearance"]);
    EXPECT_FALSE(f["extensions"]["mycandy"].contains("voice"));
    EXPECT_EQ(f["extensions"]["mycandy"]["image"], d["extensions"]["mycandy"]["image"]);
    EXPECT_EQ(f["extensions"]["vendor_1"], d["extensions"]["vendor_1"]);
    ASSERT_TRUE(card->book);
    EXPECT_EQ((*card->book)["entries"].size(), 3u);
    EXPECT_EQ((*card->book)["entries"][0]["extensions"]["unknown_tool"], d["character_book"]["entries"][0]["extensions"]["unknown_tool"]);
}

TEST(CardJson, OurFieldsOfAnotherShapeStayExtensionDataAndRoundTrip) {
    // Found by fuzzing: "voice": [] became the character's voice, and the export dropped it.
    for (const Json& mine : {Json{{"voice", Json::array()}}, Json{{"voice", Json::object()}}, Json{{"voice", "alto"}},
                             Json{{"appearance", 5}}, Json{{"appearance", ""}}}) {
        Json d = full_data(4);
        d["extensions"]["mycandy"] = mine;
        auto card = card_from_json(test::v3_card(d));
        ASSERT_TRUE(card) << mine.dump() << ": " << card.error().message;
        EXPECT_FALSE(card->fields.contains("voice")) << mine.dump();
        EXPECT_FALSE(card->fields.contains("appearance")) << mine.dump();
        EXPECT_EQ(card->fields["extensions"]["mycandy"], mine);
        auto again = card_from_json(card_v3(card->fields, card->book));
        ASSERT_TRUE(again);
        EXPECT_EQ(again->fields, card->fields) << mine.dump();
    }
}

TEST(CardJson, V2AndV1) {
    auto v2 = card_from_json(test::v2_card(full_data(2)));
    ASSERT_TRUE(v2);
    EXPECT_EQ(v2->spec, 2);
    EXPECT_EQ(v2->fields["creator"], "creator2");
    EXPECT_FALSE(v2->fields.contains("nickname"));
    auto v1 = card_from_json(test::v1_card(full_data(3)));
    ASSERT_TRUE(v1);
    EXPECT_EQ(v1->spec, 1);
    EXPECT_EQ(v1->fields["first_mes"], full_data(3)["first_mes"]);
    EXPECT_FALSE(v1->fields.contains("tags"));
}

TEST(CardJson, WrongTypesNameTheField) {
    Json d = full_data(4);
    d["tags"] = "not a list";
    auto r = card_from_json(test::v3_card(d));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().field, "data.tags");
    Json v4 = test::v3_card(full_data(4));
    v4["spec_version"] = "4.0";
    EXPECT_FALSE(card_from_json(v4));
    v4["spec_version"] = "3.1";
    EXPECT_TRUE(card_from_json(v4));
    EXPECT_FALSE(card_from_json(Json{{"spec", "something_else"}, {"data", Json::object()}}));
    EXPECT_FALSE(card_from_json(Json{{"description", "no name"}}));
}

TEST(CardJson, ExportThenReadGivesTheSameFields) {
    for (int seed = 0; seed < 20; ++seed) {
        auto first = card_from_json(test::v3_card(full_data(seed)));
        ASSERT_TRUE(first);
        const Json v3 = card_v3(first->fields, first->book);
        auto again = card_from_json(v3);
        ASSERT_TRUE(again);
        EXPECT_EQ(again->fields, first->fields) << seed;
        EXPECT_EQ(*again->book, *first->book);
        // V2 carries the V2 subset.
        auto v2 = card_from_json(card_v2(first->fields, first->book));
        ASSERT_TRUE(v2);
        EXPECT_EQ(v2->fields["extensions"], first->fields["extensions"]);
        EXPECT_EQ(v2->fields["voice"], first->fields["voice"]);
    }
}

TEST(Base64, RoundTripAndStrictness) {
    for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
        EXPECT_EQ(base64_encode(s), test::b64(s));
        EXPECT_EQ(base64_decode(base64_encode(s)), s);
    }
    EXPECT_FALSE(base64_decode("ab$c"));
    EXPECT_FALSE(base64_decode("a"));
    EXPECT_FALSE(base64_decode("ab==cd"));
    EXPECT_EQ(base64_decode("YW\nJj"), "abc");
}

TEST(Png, CardChunksAreWrittenBeforeIendAndOldOnesRemoved) {
    const std::string avatar = test::with_text_chunks(test::make_png(16, 16), {{"chara", "old"}, {"Comment", "keep me"}});
    Json fields = card_from_json(test::v3_card(full_data(5)))->fields;
    auto png = card_png(fields, std::nullopt, avatar);
    ASSERT_TRUE(png);
    const auto chunks = test::chunk_list(*png);
    ASSERT_GE(chunks.size(), 5u);
    EXPECT_EQ(chunks.back(), "IEND");
    const std::set<std::string> last_two = {chunks[chunks.size() - 2], chunks[chunks.size() - 3]};
    EXPECT_EQ(last_two, (std::set<std::string>{"tEXt:chara", "tEXt:ccv3"}));
    EXPECT_EQ(std::count(chunks.begin(), chunks.end(), "tEXt:chara"), 1);
    EXPECT_EQ(std::count(chunks.begin(), chunks.end(), "tEXt:Comment"), 1);
    EXPECT_EQ(chunks.front(), "IHDR");
    // The chunks hold base64 JSON: V2 in chara, V3 in ccv3.
    EXPECT_EQ(Json::parse(*base64_decode(test::text_chunk(*png, "chara")))["spec"], "chara_card_v2");
    EXPECT_EQ(Json::parse(*base64_decode(test::text_chunk(*png, "ccv3")))["spec"], "chara_card_v3");
    // No avatar: a generated PNG carries the card.
    auto placeholder = card_png(fields, std::nullopt, std::nullopt);
    ASSERT_TRUE(placeholder);
    EXPECT_TRUE(import_card(*placeholder));
}

TEST(Png, PrefersCcv3AndChecksCrcs) {
    Json v2 = test::v2_card(full_data(6));
    v2["data"]["name"] = "From V2";
    const std::string png = test::with_text_chunks(test::make_png(8, 8), {{"chara", test::b64(v2.dump())},
                                                                           {"ccv3", test::b64(test::v3_card(full_data(6)).dump())}});
    auto card = import_card(png);
    ASSERT_TRUE(card) << card.error().message;
    EXPECT_EQ(card->fields["name"], "Aria 6");
    EXPECT_EQ(card->format, "png");
    ASSERT_TRUE(card->image);
    EXPECT_EQ(test::chunk_list(*card->image), test::chunk_list(test::make_png(8, 8)));  // Card chunks stripped.
    std::string broken = png;
    broken[40] ^= 1;  // Inside the first tEXt chunk: its CRC no longer matches.
    EXPECT_FALSE(import_card(broken));
}

TEST(Png, BadCardChunks) {
    const std::string plain = test::make_png(4, 4);
    auto none = import_card(plain);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("no character card"), std::string::npos);
    EXPECT_FALSE(import_card(test::with_text_chunks(plain, {{"chara", "!!!not base64!!!"}})));
    EXPECT_FALSE(import_card(test::with_text_chunks(plain, {{"chara", test::b64("not json")}})));
    EXPECT_FALSE(import_card(test::with_text_chunks(plain, {{"chara", test::b64("{\"name\":\"\xff\xfe\"}")}})));
    EXPECT_FALSE(import_card(plain.substr(0, plain.size() - 6)));  // Cut off.
    auto big = import_card(test::with_text_chunks(plain, {{"chara", test::b64(Json{{"name", "x"}, {"description", std::string(5 << 20, 'a')}}.dump())}}));
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().code, ErrorCode::TooLarge);
}

TEST(Charx, ReadsCardAndIcon) {
    const std::string icon = test::make_png(8, 8, 10);
    auto card = import_card(test::make_charx(test::v3_card(full_data(7)), icon));
    ASSERT_TRUE(card) << card.error().message;
    EXPECT_EQ(card->format, "charx");
    EXPECT_EQ(card->fields["name"], "Aria 7");
    ASSERT_TRUE(card->image);
    EXPECT_EQ(*card->image, icon);
}

TEST(Charx, RefusesBombsTraversalAndMissingCard) {
    const std::string card = test::v3_card(full_data(8)).dump();
    auto bomb = import_card(test::make_zip({{"card.json", card, true}, {"big.bin", std::string(100u << 20, '\0'), true}}));
    ASSERT_FALSE(bomb);
    EXPECT_EQ(bomb.error().code, ErrorCode::TooLarge);
    auto traversal = import_card(test::make_zip({{"card.json", card, false}, {"../../etc/passwd", "x", false}}));
    ASSERT_FALSE(traversal);
    EXPECT_NE(traversal.error().message.find("unsafe"), std::string::npos);
    EXPECT_FALSE(import_card(test::make_zip({{"/abs/card.json", card, false}})));
    EXPECT_FALSE(import_card(test::make_zip({{"other.json", card, false}})));
    std::vector<test::ZipEntry> many;
    for (int i = 0; i < 1100; ++i) {
        std::string name = "f";
        name += std::to_string(i);
        many.push_back({name, "x", false});
    }
    auto too_many = import_card(test::make_zip(many));
    ASSERT_FALSE(too_many);
    EXPECT_EQ(too_many.error().code, ErrorCode::TooLarge);
    EXPECT_FALSE(import_card(std::string("PK\x03\x04garbage", 11)));
}

TEST(CardFile, JsonByContentAndBadText) {
    EXPECT_TRUE(import_card("\xEF\xBB\xBF" + test::v2_card(full_data(9)).dump()));
    EXPECT_FALSE(import_card("not a card"));
    EXPECT_FALSE(import_card(""));
    EXPECT_FALSE(import_card("{\"name\":\"a\xc3\x28\"}"));  // Invalid UTF-8.
    Json big = test::v3_card(full_data(9));
    big["data"]["description"] = std::string(5 << 20, 'x');
    auto r = import_card(big.dump());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
}

}  // namespace
}  // namespace mc::cards
