#include "store/memory_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/text.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"

namespace mc::store {
namespace {

class MemoryStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = (std::filesystem::temp_directory_path() / ("mc-mem-" + random_hex(6))).string();
        std::filesystem::create_directories(m_dir);
        m_db = std::move(*Db::open(m_dir + "/characters.db"));
        Character c;
        c.name = "Mia";
        auto character = CharacterStore(*m_db).create(c);
        m_chat = ChatStore(*m_db).create(character->id, {})->first.id;
        m_other = ChatStore(*m_db).create(character->id, {})->first.id;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::string m_dir, m_chat, m_other;
    std::unique_ptr<Db> m_db;
};

TEST(FtsQuery, QuotesWordsAndDropsStopWordsAndSyntax) {
    EXPECT_EQ(fts_query("How is your dog Bello?", "OR"), "\"dog\" OR \"bello\"");
    EXPECT_EQ(fts_query("Robert'); DROP TABLE facts;--", "AND"), "\"robert\" AND \"drop\" AND \"table\" AND \"facts\"");
    EXPECT_EQ(fts_query("\"NEAR(a b)\" OR x* AND NOT", "OR"), "\"near\"");
    EXPECT_EQ(fts_query("Grüße aus Köln", "OR"), "\"grüße\" OR \"köln\"");
    EXPECT_EQ(fts_query("ja, ok", "OR"), "");
}

TEST_F(MemoryStoreTest, RelevantFactsAreFoundAndIrrelevantOnesAreNot) {
    MemoryStore m(*m_db);
    ASSERT_TRUE(m.add_fact(m_chat, "Jonas has a dog called Bello", false, "auto"));
    ASSERT_TRUE(m.add_fact(m_chat, "Jonas works as a nurse in Hamburg", false, "auto"));
    ASSERT_TRUE(m.add_fact(m_chat, "Jonas's dog loves the beach", true, "user"));  // Pinned: always in the prompt.
    ASSERT_TRUE(m.add_fact(m_other, "Another chat's dog", false, "auto"));
    auto hits = m.relevant_facts(m_chat, "How is Bello, your dog?", 10);
    ASSERT_TRUE(hits);
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ(hits->front().text, "Jonas has a dog called Bello");
    EXPECT_TRUE(m.relevant_facts(m_chat, "Tell me about the weather.", 10)->empty());
}

TEST_F(MemoryStoreTest, SqlAndFtsSyntaxInFactsAndQueriesIsJustText) {
    MemoryStore m(*m_db);
    const std::string nasty = "x'); DROP TABLE facts; -- \"NEAR(a b)\" OR dog*";
    auto f = m.add_fact(m_chat, nasty, false, "user");
    ASSERT_TRUE(f);
    EXPECT_EQ(m.fact(f->id)->text, nasty);
    EXPECT_TRUE(m.relevant_facts(m_chat, nasty, 10));
    EXPECT_TRUE(m.relevant_facts(m_chat, "\"unbalanced", 10));
    EXPECT_TRUE(m.search_messages(m_chat, "NEAR( OR AND *", 10));
    EXPECT_EQ(m.facts(m_chat)->size(), 1u);
}

TEST_F(MemoryStoreTest, SummariesAreVersionedAndNeverOverwritten) {
    MemoryStore m(*m_db);
    EXPECT_FALSE(*m.summary(m_chat));
    ASSERT_EQ(m.add_summary(m_chat, "first", 10, "auto")->version, 1);
    ASSERT_EQ(m.add_summary(m_chat, "second", 20, "user")->version, 2);
    EXPECT_EQ((*m.summary(m_chat))->text, "second");
    EXPECT_EQ(m.summary_version(m_chat, 1)->text, "first");
    EXPECT_EQ(m.summary_version(m_chat, 9).error().code, ErrorCode::NotFound);
    EXPECT_EQ(m.summaries(m_chat)->size(), 2u);
    EXPECT_FALSE(*m.summary(m_other));
}

TEST_F(MemoryStoreTest, MessageSearchFollowsEditsAndDeletes) {
    MemoryStore m(*m_db);
    ChatStore chats(*m_db);
    Message msg;
    msg.chat_id = m_chat;
    msg.role = "user";
    msg.content = "Wir haben uns in Hamburg getroffen";
    auto stored = chats.add_message(msg);
    ASSERT_TRUE(stored);
    auto hits = m.search_messages(m_chat, "hamburg", 10);
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_NE(hits->front().snippet.find("[Hamburg]"), std::string::npos);
    stored->swipes = {"Wir haben uns in Köln getroffen"};
    ASSERT_TRUE(chats.update_message(*stored));
    EXPECT_TRUE(m.search_messages(m_chat, "hamburg", 10)->empty());
    EXPECT_EQ(m.search_messages(m_chat, "Köln", 10)->size(), 1u);
    EXPECT_TRUE(m.search_messages(m_other, "Köln", 10)->empty());
    ASSERT_TRUE(chats.remove_message(stored->id));
    EXPECT_TRUE(m.search_messages(m_chat, "Köln", 10)->empty());
}

TEST_F(MemoryStoreTest, DeletingAChatDeletesItsMemory) {
    MemoryStore m(*m_db);
    ASSERT_TRUE(m.add_fact(m_chat, "fact", true, "user"));
    ASSERT_TRUE(m.add_summary(m_chat, "summary", 0, "user"));
    ASSERT_TRUE(ChatStore(*m_db).remove(m_chat));
    EXPECT_TRUE(m.facts(m_chat)->empty());
    EXPECT_FALSE(*m.summary(m_chat));
    EXPECT_TRUE(m.relevant_facts(m_chat, "fact", 10)->empty());
}

}  // namespace
}  // namespace mc::store
