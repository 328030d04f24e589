// chat::ChatService with a real SQLite store and a stand-in engine that holds its reply until told:
// edits and turns in one chat exclude each other (issue 9, item 11), and turn threads are joined.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "chat/chat_service.hpp"
#include "core/text.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/db.hpp"

namespace mc::chat {
namespace {

class HeldEngine : public llm::Engine {
public:
    Result<llm::GenerateResult> generate(const llm::GenerateRequest& r) override {
        std::unique_lock lock(m_mu);
        m_started = true;
        m_cv.notify_all();
        m_cv.wait(lock, [&] { return m_release || (r.cancel && r.cancel->load()); });
        if (r.on_text) r.on_text("Gern!");
        llm::GenerateResult g;
        g.text = "Gern!";
        return g;
    }
    llm::EngineStatus status() const override { return {"ready", "", "held", "embedded"}; }
    int count_tokens(std::string_view t) const override { return static_cast<int>(t.size() / 4 + 1); }
    std::string format_prompt(const std::vector<llm::ChatMessage>& messages, bool) const override {
        std::string s;
        for (const auto& m : messages) s += m.role + ": " + m.content + "\n";
        return s;
    }
    int context_size() const override { return 2048; }
    void wait_started() {
        std::unique_lock lock(m_mu);
        m_cv.wait(lock, [&] { return m_started; });
    }
    void release() {
        std::lock_guard lock(m_mu);
        m_release = true;
        m_cv.notify_all();
    }

private:
    std::mutex m_mu;
    std::condition_variable m_cv;
    bool m_started = false;
    bool m_release = false;
};

class ChatServiceTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir = (std::filesystem::temp_directory_path() / ("mc-chatsvc-" + random_hex(6))).string();
        std::filesystem::create_directories(dir);
        db = std::move(*store::Db::open(dir + "/characters.db"));
        characters = std::make_unique<store::CharacterStore>(*db);
        chats = std::make_unique<store::ChatStore>(*db);
        settings = std::make_unique<SettingsStore>(dir + "/settings.json", Settings());
        engine = std::make_shared<HeldEngine>();
        service = std::make_unique<ChatService>(*chats, *characters, *settings, [this] { return engine; });
        Character c;
        c.name = "Mia";
        const std::string id = characters->create(c)->id;
        chat = chats->create(id, {"Hallo!"})->first.id;
    }
    void TearDown() override {
        engine->release();
        service.reset();
        std::filesystem::remove_all(dir);
    }
    size_t message_count() { return chats->messages(chat, std::nullopt, 1000)->size(); }

    std::string dir, chat;
    std::unique_ptr<store::Db> db;
    std::unique_ptr<store::CharacterStore> characters;
    std::unique_ptr<store::ChatStore> chats;
    std::unique_ptr<SettingsStore> settings;
    std::shared_ptr<HeldEngine> engine;
    std::unique_ptr<ChatService> service;
};

TEST_F(ChatServiceTest, NoTurnStartsWhileAMessageIsBeingChangedAndNothingIsStored) {
    std::promise<void> entered, leave;
    std::thread editor([&] {
        (void)service->while_idle(chat, [&]() -> Result<void> {
            entered.set_value();
            leave.get_future().wait();
            return {};
        });
    });
    entered.get_future().wait();
    auto refused = service->start(chat, TurnRequest{TurnKind::Send, "Hallo Mia", std::nullopt});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::Conflict);
    EXPECT_EQ(message_count(), 1u);  // The user's message was not stored.
    leave.set_value();
    editor.join();
}

TEST_F(ChatServiceTest, NoChangeRunsWhileATurnRunsAndTheTurnsThreadIsJoined) {
    auto turn = service->start(chat, TurnRequest{TurnKind::Send, "Hallo Mia", std::nullopt});
    ASSERT_TRUE(turn) << turn.error().message;
    engine->wait_started();
    bool ran = false;
    auto refused = service->while_idle(chat, [&]() -> Result<void> {
        ran = true;
        return {};
    });
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::Conflict);
    EXPECT_FALSE(ran);
    engine->release();
    bool ended = false;
    while (!ended) (void)(*turn)->next(std::chrono::milliseconds(100), ended);
    // cancel_all joins every turn thread (the destructor does too); after it, changes run.
    service->cancel_all();
    EXPECT_TRUE(service->while_idle(chat, [&]() -> Result<void> {
        ran = true;
        return {};
    }));
    EXPECT_TRUE(ran);
    EXPECT_EQ(message_count(), 3u);  // Greeting, the user's message, the reply.
}

TEST_F(ChatServiceTest, TheServersOwnStopStringIsCheckedBeforeTheMessageIsStored) {
    llm::Sampling s;
    for (size_t i = 0; i < llm::kMaxClientStops; ++i) {
        std::string stop = "<stop";
        stop += std::to_string(i);
        s.stop.push_back(stop);
    }
    auto turn = service->start(chat, TurnRequest{TurnKind::Send, "Hallo", s});
    ASSERT_TRUE(turn) << turn.error().message;  // 16 of the client's plus the server's own.
    engine->release();
    bool ended = false;
    while (!ended) (void)(*turn)->next(std::chrono::milliseconds(100), ended);
}

}  // namespace
}  // namespace mc::chat
