// chat::ChatService with a real SQLite store and a stand-in engine that holds its reply until told:
// edits and turns in one chat exclude each other (issue 9, item 11), and turn threads are joined.
#include <gtest/gtest.h>

#include <algorithm>
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
    llm::EngineStatus status() const override { return {"ready", "", "held", "embedded", {}, {}, false}; }
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

TEST_F(ChatServiceTest, APictureAttachedWhileTheReplyIsRegeneratedIsKept) {
    // The greeting carries a picture that is still rendering.
    auto greeting = chats->messages(chat, std::nullopt, 10)->front();
    greeting.media = Json::array({{{"kind", "image"}, {"job", "j1"}, {"status", "queued"}, {"swipe", 0}}});
    ASSERT_TRUE(chats->update_message(greeting).has_value());
    TurnRequest req;
    req.kind = TurnKind::Regenerate;
    auto turn = service->start(chat, req);
    ASSERT_TRUE(turn.has_value());
    engine->wait_started();
    // The picture finishes while the new swipe is being written.
    auto edited = chats->edit_media(chat, "j1", [](Json& e) {
        e["status"] = "done";
        e["url"] = "/api/media/images/x.png";
        return true;
    });
    ASSERT_TRUE(edited.has_value() && edited->has_value());
    engine->release();
    for (bool ended = false; !ended;) (*turn)->next(std::chrono::milliseconds(5000), ended);
    const Message stored = *chats->get_message(greeting.id);
    ASSERT_EQ(stored.swipes.size(), 2u);
    ASSERT_EQ(stored.media.size(), 1u);
    EXPECT_EQ(stored.media[0]["status"], "done");
    EXPECT_EQ(stored.media[0]["url"], "/api/media/images/x.png");
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

namespace mc::chat {
namespace {

// Writes its reply in the given pieces, as a model's tokens arrive.
class PiecesEngine : public llm::Engine {
public:
    explicit PiecesEngine(std::vector<std::string> pieces) : m_pieces(std::move(pieces)) {}
    Result<llm::GenerateResult> generate(const llm::GenerateRequest& r) override {
        llm::GenerateResult g;
        for (const auto& p : m_pieces) {
            if (r.on_text) r.on_text(p);
            g.text += p;
        }
        return g;
    }
    llm::EngineStatus status() const override { return {"ready", "", "pieces", "embedded", {}, {}, false}; }
    int count_tokens(std::string_view t) const override { return static_cast<int>(t.size() / 4 + 1); }
    std::string format_prompt(const std::vector<llm::ChatMessage>& messages, bool) const override {
        std::string s;
        for (const auto& m : messages) s += m.role + ": " + m.content + "\n";
        return s;
    }
    int context_size() const override { return 2048; }

private:
    std::vector<std::string> m_pieces;
};

// Records what the turn asked for and when the reply was stored.
struct ImageLog {
    std::mutex mu;
    std::vector<std::string> prompts;
    int64_t stored_message = 0;
};

class RecordingImages : public ImageSink {
public:
    explicit RecordingImages(ImageLog& log) : m_log(log) {}
    std::optional<ImageEvent> request(const std::string& prompt) override {
        std::lock_guard lock(m_log.mu);
        m_log.prompts.push_back(prompt);
        const std::string job = "job" + std::to_string(m_log.prompts.size());
        m_entries.push_back({{"kind", "image"}, {"job", job}, {"prompt", prompt}, {"status", "queued"}});
        return ImageEvent{job, prompt};
    }
    Json entries() override { return m_entries; }
    void stored(const Message& m) override {
        std::lock_guard lock(m_log.mu);
        m_log.stored_message = m.id;
    }

private:
    ImageLog& m_log;
    Json m_entries = Json::array();
};

TEST(ChatServiceImages, ATagSplitAcrossTokensStartsItsPictureBeforeTheTextAfterItAndIsStoredWithTheReply) {
    const std::string dir = (std::filesystem::temp_directory_path() / ("mc-chatimg-" + random_hex(6))).string();
    std::filesystem::create_directories(dir);
    {
        auto db = std::move(*store::Db::open(dir + "/characters.db"));
        store::CharacterStore characters(*db);
        store::ChatStore chats(*db);
        SettingsStore settings(dir + "/settings.json", Settings());
        auto engine = std::make_shared<PiecesEngine>(std::vector<std::string>{
            "Look", " [GEN", "ERATE_IM", "AGE] smi", "ling, red", "\nafter", " that [GENERATE_IMAGE]", "\n", "[GENERATE_IMAGE] second"});
        ChatService service(chats, characters, settings, [engine] { return engine; });
        ImageLog log;
        service.set_imager([&log](const Character&, const std::string&) { return std::make_unique<RecordingImages>(log); },
                           [] { return std::string("Pictures: write [GENERATE_IMAGE] <words>."); });
        Character c;
        c.name = "Mia";
        const std::string chat = chats.create(characters.create(c)->id, {})->first.id;

        auto preview = service.preview(chat, std::string("hi"));
        ASSERT_TRUE(preview.has_value());
        EXPECT_NE(preview->text.find("Pictures: write [GENERATE_IMAGE]"), std::string::npos);

        TurnRequest req;
        req.content = "A picture?";
        auto turn = service.start(chat, req);
        ASSERT_TRUE(turn.has_value());
        std::vector<std::string> order;
        std::string shown;
        std::optional<Message> done;
        for (bool ended = false; !ended;) {
            auto e = (*turn)->next(std::chrono::milliseconds(5000), ended);
            if (!e) continue;
            if (auto* t = std::get_if<TokenEvent>(&*e)) {
                shown += t->text;
                order.push_back("token:" + t->text);
            } else if (auto* i = std::get_if<ImageEvent>(&*e)) {
                order.push_back("image:" + i->prompt);
            } else if (auto* d = std::get_if<DoneEvent>(&*e)) {
                done = d->message;
            }
        }
        ASSERT_TRUE(done.has_value());
        EXPECT_EQ(log.prompts, (std::vector<std::string>{"smiling, red", "second"}));
        EXPECT_EQ(shown.find("GENERATE"), std::string::npos) << shown;
        // The first picture is announced before the piece that completed its tag is shown.
        const auto image_at = std::find(order.begin(), order.end(), "image:smiling, red");
        const auto after_at = std::find_if(order.begin(), order.end(), [](const std::string& s) { return s.find("after") != std::string::npos; });
        ASSERT_NE(image_at, order.end());
        ASSERT_NE(after_at, order.end());
        EXPECT_LT(image_at, after_at);
        // The reply is stored with both entries (its swipe noted) and the sink hears which message it is.
        ASSERT_EQ(done->media.size(), 2u);
        EXPECT_EQ(done->media[0]["job"], "job1");
        EXPECT_EQ(done->media[0]["swipe"], 0);
        EXPECT_EQ(done->media[1]["prompt"], "second");
        EXPECT_EQ(log.stored_message, done->id);
        EXPECT_EQ(chats.get_message(done->id)->media, done->media);
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mc::chat
