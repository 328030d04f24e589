// chat::transfer: chat files from outside are read with limits on everything they can make us store.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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

// Issue 15: SillyTavern chat files — every date form it writes, hidden (is_system) and narrator
// messages, names, and everything else on a line kept so an export gives the file back.
namespace mc::chat {
namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(MYCANDY_TEST_DATA) + "/sillytavern/" + name, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<Json> lines_of(const std::string& text) {
    std::vector<Json> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) out.push_back(Json::parse(line));
    }
    return out;
}

// What the store does to a message it keeps (ids, a swipe list for messages without one).
std::vector<Message> as_stored(std::vector<Message> messages) {
    int64_t id = 100;
    for (auto& m : messages) {
        m.id = ++id;
        if (m.swipes.empty()) m.swipes.push_back(m.content);
    }
    return messages;
}

TEST(SillyTavernDates, EveryFormItWritesIsRead) {
    const int64_t t = 1727518502123LL;  // 2024-09-28T10:15:02.123Z
    EXPECT_EQ(parse_date_text("2024-09-28T10:15:02.123Z"), t);
    EXPECT_EQ(parse_date_text("2024-09-28T12:15:02.123+02:00"), t);
    EXPECT_EQ(parse_date_text("2024-09-28T05:15:02.123-0500"), t);
    EXPECT_EQ(parse_date_text("2024-09-28T10:15:02.123456Z"), t);
    EXPECT_EQ(parse_date_text("2024-09-28T10:15:02"), t - 123);  // No zone: read as UTC.
    EXPECT_EQ(parse_date_text("2024-09-28 10:15:02"), t - 123);
    EXPECT_EQ(parse_date_text("2024-09-28T10:15"), t - 2123);
    EXPECT_EQ(parse_date_text("2024-09-28"), t - (10 * 3600 + 15 * 60 + 2) * 1000LL - 123);
    EXPECT_EQ(parse_date(Json(t)), t);
    EXPECT_EQ(parse_date(Json(1727518502)), t - 123);  // Seconds.
    EXPECT_EQ(parse_date_text("1727518502123"), t);
    EXPECT_EQ(parse_date_text("September 28, 2024 10:15am"), t - 2123);
    EXPECT_EQ(parse_date_text("Sep 28, 2024 10:15 AM"), t - 2123);
    EXPECT_EQ(parse_date_text("September 28, 2024 10:15:02pm"), t - 123 + 12 * 3600000LL);
    EXPECT_EQ(parse_date_text("September 28, 2024 12:05am"), t - (10 * 3600 + 10 * 60 + 2) * 1000LL - 123);
    EXPECT_EQ(parse_date_text("September 28, 2024 12:05pm"), t + 6597877);
    EXPECT_EQ(parse_date_text("2024-09-28@10h15m02s"), t - 123);
    EXPECT_EQ(parse_date_text("2024-9-28@10h15m2s"), t - 123);
    EXPECT_EQ(parse_date_text("2024-9-28 @10h 15m 2s 123ms"), t);
    EXPECT_EQ(parse_date_text("2024-09-28 @10h 15m 02s"), t - 123);
    EXPECT_EQ(parse_date_text("  2024-09-28T10:15:02.123Z \n"), t);
}

TEST(SillyTavernDates, NonsenseIsZeroNotAGuess) {
    for (const char* bad : {"", "yesterday", "2024-13-01", "2024-02-30", "2023-02-29T00:00:00Z", "February 30, 2024 10:00am",
                            "September 28, 2024 13:15pm", "September 28, 2024 10:61am", "2024-09-28@25h00m00s",
                            "2024-09-28T10:15:02Zjunk", "1969-12-31T23:59:59Z", "10000-01-01", "99999999999999999999",
                            "Smarch 3, 2024 10:00am", "2024-09-28T10:15:02+25:00", "2024-9-28 @10h 15m 2s 123", "2024-9-28 @"}) {
        EXPECT_EQ(parse_date_text(bad), 0) << bad;
    }
    EXPECT_EQ(parse_date_text("2024-02-29T00:00:00Z"), 1709164800000LL);  // A leap day is a day.
    EXPECT_EQ(parse_date(Json(-5)), 0);
    EXPECT_EQ(parse_date(Json::array()), 0);
}

TEST(SillyTavernFiles, EachDateFormReadsHiddenNarratorNamesAndTimes) {
    const std::vector<std::pair<std::string, int64_t>> files = {{"iso.jsonl", 1727518502123LL},
                                                                {"epoch_ms.jsonl", 1727518502123LL},
                                                                {"humanized.jsonl", 1727518500000LL},
                                                                {"at_hms.jsonl", 1727518502000LL},
                                                                {"file_name.jsonl", 1727518502123LL}};
    for (const auto& [file, first] : files) {
        SCOPED_TRACE(file);
        auto chat = parse_chat_file(fixture(file));
        ASSERT_TRUE(chat) << chat.error().message;
        ASSERT_EQ(chat->messages.size(), 6u);
        EXPECT_EQ(chat->st_header["user_name"], "Jonas");
        EXPECT_EQ(chat->st_header["chat_metadata"]["integrity"], "4b3f1c2e-7d1a-4c3e-9f6a-2b8e5d7c1a90");
        const auto& m = chat->messages;
        for (size_t i = 0; i < m.size(); ++i) EXPECT_EQ(m[i].created_at, first + static_cast<int64_t>(i) * 60000) << i;
        EXPECT_EQ(m[0].role, "assistant");
        EXPECT_EQ(m[0].name, "Mia");
        EXPECT_EQ(m[1].role, "user");
        EXPECT_EQ(m[1].name, "Jonas");
        // The narrator is narration, not the character.
        EXPECT_EQ(m[2].role, "system");
        EXPECT_FALSE(m[2].hidden);
        EXPECT_EQ(m[2].st_fields["extra"]["type"], "narrator");
        // Hidden: still the character's (and the user's) message, but hidden.
        EXPECT_EQ(m[3].role, "assistant");
        EXPECT_TRUE(m[3].hidden);
        EXPECT_EQ(m[4].role, "user");
        EXPECT_TRUE(m[4].hidden);
        EXPECT_FALSE(m[5].hidden);
        EXPECT_EQ(m[5].swipe_id, 1);
        EXPECT_EQ(m[5].content, "Mein Tag war schön, danke! Und deiner?");
        EXPECT_EQ(m[5].st_fields["gen_started"], "2024-09-28T10:19:57.123Z");
        EXPECT_EQ(m[5].st_fields["swipe_info"].size(), 2u);
    }
}

TEST(SillyTavernFiles, ImportThenExportGivesTheFileBack) {
    Chat chat{"c1", "k1", "", 1800000000000LL, 1800000000000LL};
    Character mia;
    mia.id = "k1";
    mia.name = "Mia (renamed here)";
    for (const char* file : {"iso.jsonl", "epoch_ms.jsonl", "humanized.jsonl", "at_hms.jsonl", "file_name.jsonl"}) {
        SCOPED_TRACE(file);
        const std::string text = fixture(file);
        auto parsed = parse_chat_file(text);
        ASSERT_TRUE(parsed) << parsed.error().message;
        const std::string back = export_chat_jsonl(chat, mia, as_stored(parsed->messages), "Someone else", parsed->st_header);
        const auto want = lines_of(text);
        const auto got = lines_of(back);
        ASSERT_EQ(got.size(), want.size()) << back;
        for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "line " << i + 1;
    }
}

TEST(SillyTavernFiles, WhatChangedHereIsWrittenOverTheLine) {
    Chat chat{"c1", "k1", "", 1800000000000LL, 1800000000000LL};
    Character mia;
    mia.name = "Mia";
    auto parsed = parse_chat_file(fixture("iso.jsonl"));
    ASSERT_TRUE(parsed);
    auto messages = as_stored(parsed->messages);
    messages[0].swipe_id = 1;  // Another greeting chosen.
    messages[0].content = messages[0].swipes[1];
    messages[3].hidden = false;  // Unhidden here.
    messages[5].swipes.push_back("Eine dritte Antwort.");  // Regenerated here.
    messages[5].swipe_id = 2;
    messages[5].content = "Eine dritte Antwort.";
    Message narration;  // Written here: narration and a reply.
    narration.role = "system";
    narration.content = "Es wird Abend.";
    narration.swipes = {narration.content};
    narration.created_at = 1800000000000LL;
    Message reply;
    reply.role = "assistant";
    reply.content = "Gute Nacht!";
    reply.swipes = {reply.content};
    reply.created_at = 1800000001000LL;
    messages.push_back(narration);
    messages.push_back(reply);
    const auto got = lines_of(export_chat_jsonl(chat, mia, messages, "Jonas", parsed->st_header));
    ASSERT_EQ(got.size(), 9u);
    EXPECT_EQ(got[1]["swipe_id"], 1);
    EXPECT_EQ(got[1]["mes"], "Na du? *lächelt*");
    EXPECT_EQ(got[4]["is_system"], false);
    EXPECT_EQ(got[4]["gen_started"], "2024-09-28T10:18:00.123Z");  // Kept.
    EXPECT_EQ(got[6]["swipes"].size(), 3u);
    EXPECT_EQ(got[6]["swipe_info"].size(), 3u);
    EXPECT_EQ(got[6]["mes"], "Eine dritte Antwort.");
    EXPECT_EQ(got[7]["extra"]["type"], "narrator");
    EXPECT_EQ(got[7]["is_user"], false);
    EXPECT_EQ(got[7]["send_date"], "2027-01-15T08:00:00Z");
    EXPECT_EQ(got[8]["name"], "Mia");
    EXPECT_EQ(got[8]["swipes"], Json::array({"Gute Nacht!"}));
    // Read back, narration stays narration and the unhidden message is visible.
    std::string text;
    for (const auto& l : got) text += l.dump() + "\n";
    auto again = parse_chat_file(text);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->messages[6].role, "system");
    EXPECT_FALSE(again->messages[3].hidden);
}

TEST(SillyTavernFiles, OurJsonKeepsTheSillyTavernPartsToo) {
    Chat chat{"c1", "k1", "", 1800000000000LL, 1800000000000LL};
    Character mia;
    mia.name = "Mia";
    auto parsed = parse_chat_file(fixture("humanized.jsonl"));
    ASSERT_TRUE(parsed);
    const auto stored = as_stored(parsed->messages);
    auto ours_back = parse_chat_file(export_chat_json(chat, mia, stored, {}, {}, parsed->st_header).dump());
    ASSERT_TRUE(ours_back) << ours_back.error().message;
    EXPECT_EQ(ours_back->st_header, parsed->st_header);
    ASSERT_EQ(ours_back->messages.size(), stored.size());
    EXPECT_TRUE(ours_back->messages[3].hidden);
    EXPECT_EQ(ours_back->messages[2].name, "System");
    EXPECT_EQ(ours_back->messages[5].st_fields, stored[5].st_fields);
    // And from there to SillyTavern's file: still the file it was.
    const auto got = lines_of(export_chat_jsonl(chat, mia, as_stored(ours_back->messages), "x", ours_back->st_header));
    EXPECT_EQ(got, lines_of(fixture("humanized.jsonl")));
}

}  // namespace
}  // namespace mc::chat
