#include <gtest/gtest.h>

#include <filesystem>

#include "core/text.hpp"
#include "store/blob_store.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/db.hpp"

namespace mc::store {
namespace {

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = (std::filesystem::temp_directory_path() / ("mc-store-" + random_hex(6))).string();
        std::filesystem::create_directories(m_dir);
        auto db = Db::open(m_dir + "/characters.db");
        ASSERT_TRUE(db) << db.error().message;
        m_db = std::move(*db);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    int count(const char* table) {
        auto guard = m_db->lock();
        Stmt s(*m_db, std::string("SELECT count(*) FROM ") + table);
        s.step();
        return static_cast<int>(s.integer(0));
    }

    std::string m_dir;
    std::unique_ptr<Db> m_db;
};

TEST_F(StoreTest, MigrationsSetTheSchemaVersionWalAndForeignKeys) {
    auto guard = m_db->lock();
    EXPECT_EQ(m_db->user_version(), schema_version());
    Stmt wal(*m_db, "PRAGMA journal_mode");
    wal.step();
    EXPECT_EQ(wal.text(0), "wal");
    Stmt fk(*m_db, "PRAGMA foreign_keys");
    fk.step();
    EXPECT_EQ(fk.integer(0), 1);
}

TEST_F(StoreTest, ReopeningKeepsDataAndDoesNotMigrateAgain) {
    CharacterStore chars(*m_db);
    Character c;
    c.name = "Mia";
    ASSERT_TRUE(chars.create(c));
    m_db.reset();
    auto db = Db::open(m_dir + "/characters.db");
    ASSERT_TRUE(db);
    CharacterStore again(**db);
    EXPECT_EQ(again.list()->size(), 1u);
}

TEST_F(StoreTest, NewerDatabaseIsRefusedClearly) {
    m_db->exec("PRAGMA user_version = 999");
    m_db.reset();
    auto db = Db::open(m_dir + "/characters.db");
    ASSERT_FALSE(db);
    EXPECT_NE(db.error().message.find("newer"), std::string::npos);
    EXPECT_NE(db.error().message.find("999"), std::string::npos);
}

TEST_F(StoreTest, CharacterCrudKeepsEveryField) {
    CharacterStore chars(*m_db);
    Character c;
    c.name = "Lena";
    c.description = "Eine Künstlerin aus Hamburg";
    c.alternate_greetings = {"Hi!", "Moin!"};
    c.tags = {"artist"};
    c.extensions = Json{{"depth_prompt", {{"depth", 4}}}};
    auto created = chars.create(c);
    ASSERT_TRUE(created);
    EXPECT_EQ(created->id.size(), 16u);
    EXPECT_GT(created->created_at, 0);

    auto got = chars.get(created->id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->description, c.description);
    EXPECT_EQ(got->alternate_greetings, c.alternate_greetings);
    EXPECT_EQ(got->extensions, c.extensions);

    got->personality = "warm";
    ASSERT_TRUE(chars.update(*got));
    EXPECT_EQ(chars.get(created->id)->personality, "warm");

    EXPECT_EQ(chars.get("nope").error().code, ErrorCode::NotFound);
    Character ghost;
    ghost.id = "nope";
    ghost.name = "x";
    EXPECT_EQ(chars.update(ghost).error().code, ErrorCode::NotFound);
}

TEST_F(StoreTest, DeletingACharacterCascadesToChatsMessagesAndJobs) {
    CharacterStore chars(*m_db);
    ChatStore chats(*m_db);
    Character c;
    c.name = "Mia";
    c.avatar_file = "avatars/0123456789abcdef0123456789abcdef.png";
    auto created = chars.create(c);
    ASSERT_TRUE(created);
    Character other;
    other.name = "Other";
    auto kept = chars.create(other);
    ASSERT_TRUE(kept);

    auto chat = chats.create(created->id, {"Hallo!", "Moin!"});
    ASSERT_TRUE(chat);
    ASSERT_EQ(chat->second.size(), 1u);
    EXPECT_EQ(chat->second[0].swipes.size(), 2u);
    Message m;
    m.chat_id = chat->first.id;
    m.role = "user";
    m.content = "Wie geht's?";
    ASSERT_TRUE(chats.add_message(m));
    ASSERT_TRUE(chats.create(kept->id, {}));
    m_db->exec("INSERT INTO jobs (id, kind, status, character_id, created_at, updated_at) VALUES ('j1', 'voice_training', "
               "'queued', '" + created->id + "', 0, 0)");

    auto files = chars.remove(created->id);
    ASSERT_TRUE(files);
    EXPECT_EQ(*files, std::vector<std::string>{"avatars/0123456789abcdef0123456789abcdef.png"});
    EXPECT_EQ(count("characters"), 1);
    EXPECT_EQ(count("chats"), 1);  // The other character's chat stays.
    EXPECT_EQ(count("messages"), 0);
    EXPECT_EQ(count("jobs"), 0);
    EXPECT_EQ(chars.remove(created->id).error().code, ErrorCode::NotFound);
}

TEST_F(StoreTest, MessagesPageBackwardsOldestFirst) {
    CharacterStore chars(*m_db);
    ChatStore chats(*m_db);
    Character c;
    c.name = "Mia";
    auto chat = chats.create(chars.create(c)->id, {});
    ASSERT_TRUE(chat);
    std::vector<int64_t> ids;
    for (int i = 0; i < 10; ++i) {
        Message m;
        m.chat_id = chat->first.id;
        m.role = i % 2 ? "assistant" : "user";
        m.content = std::string("m").append(std::to_string(i));
        ids.push_back(chats.add_message(m)->id);
    }
    auto last3 = chats.messages(chat->first.id, std::nullopt, 3);
    ASSERT_TRUE(last3);
    ASSERT_EQ(last3->size(), 3u);
    EXPECT_EQ((*last3)[0].content, "m7");
    EXPECT_EQ((*last3)[2].content, "m9");
    auto before = chats.messages(chat->first.id, (*last3)[0].id, 3);
    EXPECT_EQ((*before)[2].content, "m6");
    EXPECT_EQ((*before)[0].content, "m4");
}

TEST_F(StoreTest, RoleIsCheckedByTheSchema) {
    CharacterStore chars(*m_db);
    ChatStore chats(*m_db);
    Character c;
    c.name = "Mia";
    auto chat = chats.create(chars.create(c)->id, {});
    Message m;
    m.chat_id = chat->first.id;
    m.role = "hacker";
    m.content = "x";
    EXPECT_FALSE(chats.add_message(m));
    EXPECT_EQ(count("messages"), 0);
}

TEST(BlobStore, OnlyOwnNamesAreAccepted) {
    EXPECT_TRUE(BlobStore::valid_name("avatars/0123456789abcdef0123456789abcdef.png"));
    EXPECT_FALSE(BlobStore::valid_name("avatars/../../etc/passwd"));
    EXPECT_FALSE(BlobStore::valid_name("../0123456789abcdef0123456789abcdef.png"));
    EXPECT_FALSE(BlobStore::valid_name("avatars/0123456789abcdef0123456789abcdeF.png"));
    EXPECT_FALSE(BlobStore::valid_name("/etc/0123456789abcdef0123456789abcdef.png"));
}

TEST(BlobStore, PutReadRemove) {
    const auto dir = (std::filesystem::temp_directory_path() / ("mc-blob-" + random_hex(6))).string();
    BlobStore blobs(dir);
    auto name = blobs.put("avatars", "png", "bytes");
    ASSERT_TRUE(name);
    EXPECT_TRUE(BlobStore::valid_name(*name));
    EXPECT_EQ(*blobs.read(*name), "bytes");
    blobs.remove(*name);
    EXPECT_FALSE(blobs.read(*name));
    std::filesystem::remove_all(dir);
}

// A branched chat's picture is a second name for the same file: removing either keeps the other.
TEST(BlobStore, ALinkOutlivesTheOriginalAndTheOriginalOutlivesTheLink) {
    const auto dir = (std::filesystem::temp_directory_path() / ("mc-blob-" + random_hex(6))).string();
    BlobStore blobs(dir);
    auto name = blobs.put("images", "png", "picture");
    ASSERT_TRUE(name);
    auto copy = blobs.link(*name);
    ASSERT_TRUE(copy);
    EXPECT_NE(*copy, *name);
    EXPECT_TRUE(BlobStore::valid_name(*copy));
    EXPECT_TRUE(copy->starts_with("images/") && copy->ends_with(".png"));
    blobs.remove(*name);
    EXPECT_EQ(*blobs.read(*copy), "picture");
    auto again = blobs.link(*copy);
    ASSERT_TRUE(again);
    blobs.remove(*again);
    EXPECT_EQ(*blobs.read(*copy), "picture");
    EXPECT_FALSE(blobs.link("images/../../etc/passwd"));
    EXPECT_FALSE(blobs.link(*name));  // Gone: nothing to link.
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mc::store

namespace mc::store {
namespace {

// Issue 9, item 11: chat import was four transactions; now the route composes store calls in one
// transaction (nested calls become savepoints), and a failure anywhere rolls all of it back.
TEST_F(StoreTest, StoreCallsInsideOneTransactionRollBackTogether) {
    CharacterStore characters(*m_db);
    ChatStore chats(*m_db);
    Character c;
    c.name = "Mia";
    auto mia = characters.create(c);
    ASSERT_TRUE(mia);
    const int before = count("chats");
    auto r = m_db->transaction([&] {
        auto created = value_or_throw(chats.create(mia->id, {"Hallo!"}));
        Message m;
        m.role = "user";
        m.content = "Hi";
        value_or_throw(chats.import_messages(created.first.id, {m}));
        throw StoreFailure(Error{ErrorCode::InvalidInput, "the file's third part was bad", "facts"});
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "the file's third part was bad");  // The inner error, not a SQLite text.
    EXPECT_EQ(r.error().field, "facts");
    EXPECT_EQ(count("chats"), before);
    EXPECT_EQ(count("messages"), 0);
    // And a nested transaction that succeeds commits with its outer one.
    auto ok = m_db->transaction([&] { return value_or_throw(chats.create(mia->id, {})).first.id; });
    ASSERT_TRUE(ok);
    EXPECT_EQ(count("chats"), before + 1);
}

}  // namespace
}  // namespace mc::store
