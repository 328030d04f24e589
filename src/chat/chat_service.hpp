// chat/chat_service: the turn pipeline. A turn stores the user's message, builds the prompt, runs
// the engine on its own thread, turns the token stream into display and speech events, and stores
// the reply when done — or as `partial` on stop, error or a client that went away.
// One turn per chat at a time (a second one is a Conflict); turns in different chats queue in the
// engine in arrival order.
// Threads: each turn runs on a thread this service owns; finished ones are joined when the next
// turn starts, the rest by cancel_all() and the destructor.
// Thread safety: all public members may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/result.hpp"
#include "core/settings.hpp"
#include "chat/prompt.hpp"
#include "llm/engine.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/lorebook_store.hpp"

namespace mc::chat {

struct UserEvent { Message message; };
struct TokenEvent { std::string text; };
struct SpeechEvent { int index; std::string text; };
struct DoneEvent {
    Message message;
    llm::FinishReason finish;
    llm::GenerateResult timings;
};
struct ErrorEvent { Error error; };
// Sentence `index` has been spoken: its audio is at `url`.
struct AudioEvent { int index; std::string url; };
// Speech stopped at sentence `index` (the text goes on): why, for the person.
struct AudioErrorEvent { int index; Error error; };
// The reply asked for a picture ([GENERATE_IMAGE] <prompt>): `job_id` is the image job started for it.
struct ImageEvent { std::string job_id; std::string prompt; };
using TurnEvent = std::variant<UserEvent, TokenEvent, SpeechEvent, DoneEvent, ErrorEvent, AudioEvent, AudioErrorEvent, ImageEvent>;

// Speaks a turn's sentences while the model is still writing (voice/ implements it, so chat/ does
// not depend on any speech engine). Owned by the turn's thread: sentence() and finish() are called
// from it only; events may be emitted from the sink's own thread.
class SpeechSink {
public:
    virtual ~SpeechSink() = default;
    // Queues one sentence; returns at once.
    virtual void sentence(int index, const std::string& text) = 0;
    // Waits until every queued sentence is spoken (or given up after a cancel) and returns the
    // message's media entries for them ({"kind":"audio","index","url"}).
    virtual Json finish() = 0;
};
// Makes the sink for one turn. `emit` hands events to the turn; `cancel` is the turn's stop flag.
// Returns null when this character's speech is unavailable (the reason was emitted).
using SpeakerFactory = std::function<std::unique_ptr<SpeechSink>(const Character& character,
                                                                  std::function<void(TurnEvent)> emit,
                                                                  std::shared_ptr<std::atomic<bool>> cancel)>;

// Starts the pictures a reply asks for while it streams (image/ implements it). Owned by the turn's
// thread: all members are called from it only.
class ImageSink {
public:
    virtual ~ImageSink() = default;
    // Starts a job for the model's prompt; nullopt when it is ignored (the reason is logged).
    virtual std::optional<ImageEvent> request(const std::string& prompt) = 0;
    // The reply's media entries for the jobs started ({"kind":"image","job","prompt","status"}).
    virtual Json entries() = 0;
    // The reply was stored as `message`: pictures that finished meanwhile are attached now.
    virtual void stored(const Message& message) = 0;
};
// Makes the sink for one turn; null when pictures are off.
using ImagerFactory = std::function<std::unique_ptr<ImageSink>(const Character& character, const std::string& chat_id)>;
// The system prompt's words on how to ask for a picture ("" when pictures are off).
using ImageInstruction = std::function<std::string()>;

enum class TurnKind { Send, Regenerate, Continue };

// The events of one running turn, handed from the turn's thread to whoever streams them. Every
// event is kept until the turn ends, so a reader that comes later (a page reloaded mid-reply)
// replays the turn so far and then follows it.
class Turn {
public:
    explicit Turn(TurnKind kind = TurnKind::Send) : m_kind(kind) {}
    // The next event for the request that started the turn. Waits up to `wait`; nullopt with
    // `ended` set: the turn is over and every event was read.
    std::optional<TurnEvent> next(std::chrono::milliseconds wait, bool& ended) { return next_from(m_first_reader, wait, ended); }
    // The same for another reader, who keeps its own position (start at 0 for the whole turn).
    std::optional<TurnEvent> next_from(size_t& cursor, std::chrono::milliseconds wait, bool& ended);
    void cancel() { m_cancel->store(true); }
    bool cancelled() const { return m_cancel->load(); }
    // Stops the turn because the person began to speak (a voice call): the reply is stored as
    // partial with "interrupted": true in its generation figures.
    void interrupt() {
        m_interrupted = true;
        cancel();
    }
    bool interrupted() const { return m_interrupted.load(); }
    TurnKind kind() const { return m_kind; }
    // Regenerate / continue: the reply being replaced or extended (0 until known, and for Send).
    int64_t target_id() const { return m_target_id.load(); }

private:
    friend class ChatService;
    void push(TurnEvent e);
    void end();
    const TurnKind m_kind;
    std::atomic<int64_t> m_target_id{0};
    std::atomic<bool> m_interrupted{false};
    std::mutex m_mu;  // Guards m_events, m_ended, m_first_reader.
    std::condition_variable m_cv;
    std::vector<TurnEvent> m_events;
    size_t m_first_reader = 0;
    bool m_ended = false;
    std::shared_ptr<std::atomic<bool>> m_cancel = std::make_shared<std::atomic<bool>>(false);
};

struct TurnRequest {
    TurnKind kind = TurnKind::Send;
    std::string content;                 // Send only.
    std::optional<llm::Sampling> sampling;  // Overrides the settings' samplers.
    bool speak = false;                  // Speak the reply's sentences as they complete (audio events).
};

using EngineGetter = std::function<std::shared_ptr<llm::Engine>()>;

class ChatService {
public:
    ChatService(store::ChatStore& chats, store::CharacterStore& characters, SettingsStore& settings, EngineGetter engine);
    ~ChatService();

    // Validates, stores the user's message (Send), and starts the turn. Errors: NotFound (chat),
    // Conflict (a turn is running in this chat), InvalidInput/TooLarge (content, samplers).
    Result<std::shared_ptr<Turn>> start(const std::string& chat_id, TurnRequest request);
    // Stops the running turn of a chat; NotFound when none runs.
    Result<void> stop(const std::string& chat_id);
    bool running(const std::string& chat_id);
    // The chat's running turn (null when none runs), for a reader that attaches to it.
    std::shared_ptr<Turn> running_turn(const std::string& chat_id);
    // Runs `change` (an edit or delete in the chat) while no turn can start in it: Conflict when a
    // turn runs. Changes to the same chat may run together; a turn starting meanwhile is refused.
    // Makes "check no turn runs, then write" atomic.
    Result<void> while_idle(const std::string& chat_id, const std::function<Result<void>()>& change);
    // A spoken reply the person talked over (a voice call's barge-in, also after the reply was
    // complete): they heard its first `sentences` spoken sentences (the one playing counts). The
    // reply keeps that much, so the next prompt holds what was heard; the rest goes into its gen
    // entry as "unheard" (never lost), marked "interrupted" with "heard_sentences". Nothing is cut
    // when nothing or everything was heard. Errors: NotFound, InvalidInput (not an assistant
    // message), Conflict (a turn runs in the chat).
    Result<Message> cut_to_heard(int64_t message_id, size_t sentences);
    // Cancels every turn and waits until all have stored what they had (shutdown).
    void cancel_all();
    // The samplers from the settings.
    llm::Sampling default_sampling() const;
    void set_memory(MemoryService* memory) { m_memory = memory; }
    // Set once at start-up, before any turn: lorebooks attached to characters and chats.
    void set_lorebooks(store::LorebookStore* lorebooks) { m_lorebooks = lorebooks; }
    // The lorebook entries the history fires (newest messages last), for a chat of `character`.
    cards::Activation world_info(const std::string& chat_id, const Character& character, const std::vector<Message>& history,
                                 const llm::Engine& engine);
    // Set once at start-up, before any turn.
    void set_speaker(SpeakerFactory speaker) { m_speaker = std::move(speaker); }
    // Set once at start-up, before any turn.
    void set_imager(ImagerFactory imager, ImageInstruction instruction) {
        m_imager = std::move(imager);
        m_image_instruction = std::move(instruction);
    }

    // The prompt the next turn would use (with `message` as the user's next message, if given).
    struct Preview {
        BuiltPrompt prompt;
        std::string text;  // Formatted with the engine's chat template.
        int total_tokens = 0;
        int reply_tokens = 0;
        int context_size = 0;
    };
    Result<Preview> preview(const std::string& chat_id, const std::optional<std::string>& message);

private:
    void run(std::shared_ptr<Turn> turn, std::string chat_id, TurnRequest request, llm::Sampling sampling,
             Character character, std::vector<Message> history, std::optional<Message> target);
    // The samplers a turn uses: the request's or the settings', plus the stop at the user's name.
    Result<llm::Sampling> turn_sampling(const TurnRequest& request) const;
    void join_finished();
    BuiltPrompt build(const std::string& chat_id, const Character& character, const std::vector<Message>& history,
                      const llm::Engine& engine, int reply_tokens);
    store::ChatStore& m_chats;
    store::CharacterStore& m_characters;
    MemoryService* m_memory = nullptr;
    store::LorebookStore* m_lorebooks = nullptr;
    std::mutex m_lore_mu;  // Guards m_lore_cache.
    // Compiled lorebooks by id, with the updated_at they were compiled from (regexes compile once).
    std::unordered_map<std::string, std::pair<int64_t, std::shared_ptr<const cards::CompiledBook>>> m_lore_cache;
    SettingsStore& m_settings;
    EngineGetter m_engine;
    SpeakerFactory m_speaker;
    ImagerFactory m_imager;
    ImageInstruction m_image_instruction;
    std::mutex m_mu;  // Guards m_active, m_changing, m_threads, m_finished, m_next_thread.
    std::condition_variable m_idle;
    std::unordered_map<std::string, std::shared_ptr<Turn>> m_active;  // Chat id -> its running turn.
    std::unordered_map<std::string, int> m_changing;                  // Chats being edited (while_idle).
    std::unordered_map<uint64_t, std::thread> m_threads;               // Turn threads, not yet joined.
    std::vector<uint64_t> m_finished;                                  // Ids of threads that have ended.
    uint64_t m_next_thread = 0;
};

}  // namespace mc::chat
