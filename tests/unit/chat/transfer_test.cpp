// chat::transfer: chat files from outside are read with limits on everything they can make us store.
#include <gtest/gtest.h>

#include "chat/transfer.hpp"

namespace mc::chat {
namespace {

std::string ours(const Json& messages, const Json& extra = Json::object()) {
    Json doc = {{"format", "mycandy-chat"}, {"version", 1}, {"messages", messages}};
    doc.update(extra);
    return doc.dump();
}

TEST(Transfer, OutOfRangeNumbersAreErrorsNamingTheEntry) {
    const Json msg = {{"role", "assistant"}, {"content", "hi"}, {"swipes", Json::array({"hi", "ho"})}};
    auto bad_swipe = msg;
    bad_swipe["swipe_id"] = 4294967295LL;
    auto r = parse_chat_file(ours(Json::array({msg, bad_swipe})));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("messages[1]"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("swipe_id"), std::string::npos);
    auto bad_date = msg;
    bad_date["created_at"] = -5;
    EXPECT_FALSE(parse_chat_file(ours(Json::array({bad_date}))));
    auto wrong_type = msg;
    wrong_type["swipe_id"] = "1";
    EXPECT_FALSE(parse_chat_file(ours(Json::array({wrong_type}))));
    // Two summaries with one version would break the store's uniqueness: a 400, not a 500.
    auto twice = parse_chat_file(ours(Json::array({msg}), {{"summaries", Json::array({Json{{"version", 2}, {"text", "a"}}, Json{{"version", 2}, {"text", "b"}}})}}));
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().message.find("appears twice"), std::string::npos);
    auto good = msg;
    good["swipe_id"] = 1;
    auto ok = parse_chat_file(ours(Json::array({good})));
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->messages[0].swipe_id, 1);
}

// Regression (issue 9, item 10): our JSON import had no message cap.
TEST(Transfer, TooManyMessagesAreRefusedInBothFormats) {
    Json many = Json::array();
    for (size_t i = 0; i <= kMaxImportMessages; ++i) many.push_back({{"role", "user"}, {"content", ""}});
    auto r = parse_chat_file(ours(many));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
    std::string jsonl;
    for (size_t i = 0; i <= kMaxImportMessages; ++i) jsonl += "{\"mes\":\"\"}\n";
    auto l = parse_chat_file(jsonl);
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code, ErrorCode::TooLarge);
}

TEST(Transfer, DatesOutsideTheCalendarAreDroppedNotOverflowed) {
    EXPECT_EQ(parse_date(Json(9223372036854775807LL)), 0);
    EXPECT_EQ(parse_date(Json(18446744073709551615ULL)), 0);
    EXPECT_EQ(parse_date(Json(-1)), 0);
    EXPECT_EQ(parse_date(Json(1700000000)), 1700000000000LL);
    EXPECT_EQ(parse_date(Json("2026-11-30T13:36:43Z")), 1796045803000LL);
    EXPECT_EQ(iso_date(1796045803000LL), "2026-11-30T13:36:43Z");
    auto st = parse_chat_file("{\"mes\":\"hi\",\"swipe_id\":18446744073709551615,\"swipes\":[\"hi\"],\"is_user\":\"yes\"}\n");
    ASSERT_FALSE(st);  // is_user must be a boolean.
    EXPECT_NE(st.error().message.find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace mc::chat

namespace mc::chat {
namespace {

TEST(Transfer, OurExportReadsBackWithSwipesSummariesAndFacts) {
    Chat chat{"c1", "k1", "Am Hafen", 1700000000000LL, 1700000500000LL};
    Character mia;
    mia.id = "k1";
    mia.name = "Mia";
    Message a;
    a.id = 10;
    a.role = "user";
    a.content = "Hallo";
    a.swipes = {"Hallo"};
    a.created_at = 1700000001000LL;
    Message b;
    b.id = 11;
    b.role = "assistant";
    b.content = "Hi";
    b.swipes = {"Hey", "Hi"};
    b.swipe_id = 1;
    b.status = "partial";
    b.created_at = 1700000002000LL;
    Summary s;
    s.version = 3;
    s.text = "Sie trafen sich.";
    s.covers_until_message_id = 10;
    s.source = "user";
    Fact f;
    f.text = "Jonas mag Hunde.";
    f.pinned = true;
    auto back = parse_chat_file(export_chat_json(chat, mia, {a, b}, {s}, {f}).dump());
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->messages.size(), 2u);
    EXPECT_EQ(back->messages[1].swipes, (std::vector<std::string>{"Hey", "Hi"}));
    EXPECT_EQ(back->messages[1].swipe_id, 1);
    EXPECT_EQ(back->messages[1].status, "partial");
    EXPECT_EQ(back->title, "Am Hafen");
    ASSERT_EQ(back->summaries.size(), 1u);
    EXPECT_EQ(back->summaries[0].first.version, 3);
    EXPECT_EQ(back->summaries[0].second, 0);  // Covers the first message of the file.
    ASSERT_EQ(back->facts.size(), 1u);
    EXPECT_TRUE(back->facts[0].pinned);
    auto tavern = parse_chat_file(export_chat_jsonl(chat, mia, {a, b}, "Jonas"));
    ASSERT_TRUE(tavern) << tavern.error().message;
    EXPECT_EQ(tavern->messages[0].role, "user");
    EXPECT_EQ(tavern->messages[1].content, "Hi");
    EXPECT_EQ(tavern->messages[1].created_at, 1700000002000LL);
}

}  // namespace
}  // namespace mc::chat
