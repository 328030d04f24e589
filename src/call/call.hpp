// call/call: hands-free voice calls. A call listens to a chat's microphone stream (16 kHz PCM),
// finds each utterance with the streaming VAD (stt/vad_stream), transcribes it, sends it as the
// person's message, and hands the reply's events — text, and each sentence's audio as soon as it is
// spoken — to the connection. When the person starts speaking while the character talks, the reply
// stops at once (stored as partial, marked interrupted) and playback is told to stop.
// Every event has a sequence number and is kept while the call lasts, so a connection that broke
// reconnects and receives what it missed; a call whose connection broke without a close ends after
// call.reconnect_s.
// Threads: each call owns one worker thread (transcription and turns, in order); the service joins
// ended calls' workers when the next call starts and in its destructor. audio() runs on the
// connection's thread.
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
#include <vector>

#include "chat/chat_service.hpp"
#include "core/json.hpp"
#include "core/result.hpp"
#include "core/settings.hpp"
#include "store/blob_store.hpp"
#include "stt/stt_service.hpp"
#include "stt/vad_stream.hpp"
#include "voice/tts_service.hpp"

namespace mc::call {

// One event for the connection: JSON text (with "type" and "seq"), and for "audio" the sentence's
// WAV, sent as a binary message right after it.
struct CallEvent {
    int64_t seq = 0;
    std::string text;
    std::string binary;
};

// What a call needs from the API layer: starting a turn as a typed message would (the character's
// samplers and the settings apply the same way), and the turn's events in the turn stream's words.
using CallTurnStarter = std::function<Result<std::shared_ptr<chat::Turn>>(const std::string& chat_id, const std::string& text)>;
using CallEventWords = std::function<std::pair<std::string, Json>(const chat::TurnEvent& event)>;

// Where the time of one answer went (for the pipeline's own overhead: bench/call_bench).
struct CallTimings {
    double vad_ms = 0;          // Inside the VAD for the utterance (its windows, from first to last).
    double stt_ms = 0;          // Transcribing it.
    double first_sentence_ms = 0;  // Turn started → the reply's first sentence complete.
    double tts_ms = 0;          // That sentence complete → its audio ready.
    double end_to_audio_ms = 0;    // End of speech found → the first audio queued for the client.
};

class Call {
public:
    ~Call();
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    const std::string& id() const { return m_id; }
    const std::string& chat_id() const { return m_chat_id; }
    // Microphone audio: 16-bit samples, 16 kHz mono, in order. Errors: InvalidInput reason
    // "too_fast" when the stream runs more than 2 s ahead of real time (the call then ends).
    Result<void> audio(const int16_t* samples, size_t count);
    // The connection: replays every event after `after_seq` through `sink`, then hands it each new
    // event as it happens (from the call's threads; the sink must only queue). Returns the
    // connection's number, or 0 when the call has ended. A connection that attaches takes the call
    // over from one still attached (a phone that came back before the server saw its old
    // connection die): the old one sees attached() change and leaves.
    uint64_t attach(int64_t after_seq, std::function<void(const CallEvent&)> sink);
    // The connection numbered `connection` is gone (its sink is dropped, if it still held the call).
    // A call still on waits call.reconnect_s for another connection, then ends.
    void detach(uint64_t connection);
    // The number of the connection holding the call (0: none).
    uint64_t attached() const;
    // For the log: seconds of audio received, and the highest speech probability seen.
    std::pair<double, float> heard();
    // Tells the connection about a problem with what it sent (an `error` event; the call goes on).
    void reject(const Error& problem);
    // The client stopped playback when the person spoke (speech_start) and says how much of the
    // reply they heard: its first `sentences` sentences. The reply is cut to that
    // (chat::ChatService::cut_to_heard) and a `heard` event carries it. Without `message_id` it is
    // the reply being written (cut once it is stored, before the next turn can start), else the
    // latest one. Errors (answered with an `error` event by the caller): InvalidInput reason
    // "bad_heard" when `message_id` is not the latest reply of this call or there is none;
    // Conflict while a turn runs.
    Result<void> heard(std::optional<int64_t> message_id, size_t sentences);
    // Ends the call: the reply being written stops (stored as partial), an `ended` event goes out.
    void hangup(const std::string& reason);
    bool ended() const { return m_ended.load(); }
    // Whether a connection is attached (false while waiting for a reconnect).
    bool connected() const;
    // The timings of the last answer that reached its first audio.
    std::optional<CallTimings> last_timings() const;

private:
    friend class CallService;
    struct Utterance {
        std::vector<float> samples;
        std::chrono::steady_clock::time_point found_at;
        double vad_ms = 0;
        double stt_ms = 0;
    };
    Call(std::string id, std::string chat_id) : m_id(std::move(id)), m_chat_id(std::move(chat_id)) {}
    void emit(const std::string& type, Json data, std::string binary = {});
    void work();
    void answer(const std::string& text, const Utterance& last);
    void end_locked(const std::string& reason);
    Result<void> cut_to_heard(int64_t message_id, size_t sentences);

    const std::string m_id;
    const std::string m_chat_id;
    // Set by CallService before the worker starts; then only read.
    stt::SttService* m_stt = nullptr;
    store::BlobStore* m_blobs = nullptr;
    CallTurnStarter m_start_turn;
    CallEventWords m_words;
    chat::ChatService* m_chat = nullptr;
    std::unique_ptr<stt::VadModel> m_vad;
    std::optional<stt::UtteranceSegmenter> m_segmenter;
    int m_reconnect_s = 20;
    std::string m_language;

    std::mutex m_audio_mu;  // Guards the stream's state below (one connection's thread at a time; two meet at a takeover).
    std::vector<float> m_window;
    double m_vad_ms = 0;  // VAD time since the utterance began.
    std::chrono::steady_clock::time_point m_first_audio{};
    int64_t m_samples_in = 0;
    float m_max_probability = 0;

    std::atomic<bool> m_ended{false};
    std::atomic<bool> m_speaking{false};  // The person is speaking (between speech start and utterance end).
    std::shared_ptr<std::atomic<bool>> m_stop = std::make_shared<std::atomic<bool>>(false);
    mutable std::mutex m_mu;  // Guards everything below.
    std::condition_variable m_cv;
    std::vector<CallEvent> m_log;  // Every event so far (the oldest dropped past kMaxLogBytes).
    size_t m_log_bytes = 0;
    int64_t m_seq = 0;
    std::function<void(const CallEvent&)> m_sink;  // The attached connection, if any.
    uint64_t m_connection = 0;                     // Its number (0: none).
    uint64_t m_connections = 0;                    // Connections so far.
    std::optional<std::chrono::steady_clock::time_point> m_detached_at;
    std::deque<Utterance> m_utterances;  // Found, not yet transcribed.
    std::shared_ptr<chat::Turn> m_turn;  // The reply being written, if any.
    bool m_interrupted = false;          // m_turn was stopped by the person speaking.
    int64_t m_last_reply = 0;            // The id of the newest reply this call stored (0: none yet).
    std::optional<size_t> m_heard;       // Sentences heard of m_turn's reply, to cut it to once stored.
    std::chrono::steady_clock::time_point m_interrupted_at{};
    std::optional<CallTimings> m_timings;
    std::thread m_worker;
};

class CallService {
public:
    CallService(SettingsStore& settings, stt::SttService& stt, voice::TtsService& tts, chat::ChatService& chat,
                store::BlobStore& blobs, CallTurnStarter start_turn, CallEventWords words);
    ~CallService();

    // A new call to a chat. Errors: Conflict reason "call_active" (a call is on in this chat, or
    // waiting for its connection) or "turn_running" (a typed reply is being written), Unavailable
    // reason "stt_off" / "tts_off" / "vad" naming what to set up.
    Result<std::shared_ptr<Call>> start(const std::string& chat_id);
    // The call `call_id` of this chat, for a connection that broke. NotFound reason "call_ended".
    Result<std::shared_ptr<Call>> find(const std::string& chat_id, const std::string& call_id);
    // The chat's call for GET /api/chats/{id}: {"id","connected"}, or null when none is on. Never
    // waits for a worker.
    Json status(const std::string& chat_id);
    // Ends every call (shutdown) and joins their workers.
    void end_all(const std::string& reason);

private:
    void reap();
    SettingsStore& m_settings;
    stt::SttService& m_stt;
    voice::TtsService& m_tts;
    chat::ChatService& m_chat;
    store::BlobStore& m_blobs;
    CallTurnStarter m_start_turn;
    CallEventWords m_words;
    std::mutex m_mu;  // Guards m_calls and m_done.
    std::unordered_map<std::string, std::shared_ptr<Call>> m_calls;  // Chat id -> its call (live or waiting).
    std::vector<std::shared_ptr<Call>> m_done;                       // Ended calls whose worker is not joined yet.
};

}  // namespace mc::call
