#include "call/call.hpp"

#include <cmath>
#include <utility>

#include "core/log.hpp"
#include "core/text.hpp"

namespace mc::call {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Events kept for a reconnecting connection: the newest, up to this many bytes (audio included).
constexpr size_t kMaxLogBytes = 32u << 20;
// A stream may run this far ahead of real time (a connection catching up after a stall).
constexpr int64_t kAheadMs = 2000;

}  // namespace

Call::~Call() {
    {
        std::lock_guard lock(m_mu);
        end_locked("closed");
    }
    if (m_worker.joinable()) m_worker.join();
}

void Call::emit(const std::string& type, Json data, std::string binary) {
    std::lock_guard lock(m_mu);
    data["type"] = type;
    data["seq"] = ++m_seq;
    CallEvent e{m_seq, data.dump(-1, ' ', false, Json::error_handler_t::replace), std::move(binary)};
    m_log_bytes += e.text.size() + e.binary.size();
    m_log.push_back(std::move(e));
    size_t drop = 0;
    while (m_log_bytes > kMaxLogBytes && drop + 1 < m_log.size()) {
        m_log_bytes -= m_log[drop].text.size() + m_log[drop].binary.size();
        ++drop;
    }
    if (drop) m_log.erase(m_log.begin(), m_log.begin() + static_cast<std::ptrdiff_t>(drop));
    if (m_sink) m_sink(m_log.back());
}

Result<void> Call::audio(const int16_t* samples, size_t count) {
    if (m_ended.load()) return fail(ErrorCode::Conflict, "the call has ended");
    std::lock_guard audio_lock(m_audio_mu);
    const auto now = Clock::now();
    if (m_samples_in == 0) m_first_audio = now;
    m_samples_in += static_cast<int64_t>(count);
    // Real time: the audio received may not run more than kAheadMs ahead of the clock.
    const int64_t heard_ms = m_samples_in * 1000 / 16000;
    const auto elapsed_ms = static_cast<int64_t>(ms_between(m_first_audio, now));
    if (heard_ms > elapsed_ms + kAheadMs) {
        Error e{ErrorCode::InvalidInput, "audio arrives faster than real time (" + std::to_string(heard_ms) + " ms of audio in " +
                                             std::to_string(elapsed_ms) + " ms): a call takes a live microphone"};
        e.because("too_fast");
        {
            std::lock_guard lock(m_mu);
            end_locked("too_fast");
        }
        return std::unexpected(e);
    }
    for (size_t i = 0; i < count; ++i) {
        m_window.push_back(static_cast<float>(samples[i]) / 32768.0f);
        if (m_window.size() < static_cast<size_t>(stt::kVadWindow)) continue;
        const auto t0 = Clock::now();
        const float p = m_vad->probability(m_window.data());
        m_max_probability = std::max(m_max_probability, p);
        m_vad_ms += ms_between(t0, Clock::now());
        for (auto& ev : m_segmenter->push(m_window.data(), p)) {
            if (ev.kind == stt::VadEvent::Kind::SpeechStart) {
                m_speaking = true;
                bool interrupted = false;
                {
                    // Barge-in: the reply stops now (stored as partial, marked interrupted).
                    std::lock_guard lock(m_mu);
                    if (m_turn && !m_interrupted) {
                        m_turn->interrupt();
                        m_interrupted = true;
                        m_interrupted_at = Clock::now();
                        interrupted = true;
                    }
                }
                emit("speech_start", {{"at_ms", ev.at_ms}, {"interrupted", interrupted}});
            } else {
                emit("utterance_end", {{"at_ms", ev.at_ms}, {"duration_ms", ev.duration_ms}, {"cut", ev.cut}});
                {
                    std::lock_guard lock(m_mu);
                    m_utterances.push_back({std::move(ev.samples), Clock::now(), m_vad_ms});
                    m_speaking = false;
                }
                m_cv.notify_all();
                m_vad_ms = 0;
                m_vad->reset();  // Silero's advice for streams: a fresh state per utterance.
            }
        }
        m_window.clear();
    }
    return {};
}

uint64_t Call::attach(int64_t after_seq, std::function<void(const CallEvent&)> sink) {
    std::lock_guard lock(m_mu);
    if (m_ended.load()) return 0;
    for (const auto& e : m_log) {
        if (e.seq > after_seq) sink(e);
    }
    m_sink = std::move(sink);
    m_connection = ++m_connections;
    m_detached_at.reset();
    return m_connection;
}

void Call::detach(uint64_t connection) {
    {
        std::lock_guard lock(m_mu);
        if (connection != m_connection) return;  // Taken over by a newer connection.
        m_sink = nullptr;
        m_connection = 0;
        m_detached_at = Clock::now();
        if (m_reconnect_s == 0) end_locked("closed");
    }
    m_cv.notify_all();
}

std::pair<double, float> Call::heard() {
    std::lock_guard audio_lock(m_audio_mu);
    return {static_cast<double>(m_samples_in) / 16000.0, m_max_probability};
}

uint64_t Call::attached() const {
    std::lock_guard lock(m_mu);
    return m_connection;
}

void Call::reject(const Error& problem) {
    auto [type, data] = m_words(chat::ErrorEvent{problem});
    emit(type, std::move(data));
}

Result<void> Call::heard(std::optional<int64_t> message_id, size_t sentences) {
    int64_t target = 0;
    {
        std::lock_guard lock(m_mu);
        if (!message_id && m_turn) {
            m_heard = sentences;  // answer() cuts the reply once it is stored.
            return {};
        }
        target = message_id.value_or(m_last_reply);
        if (target <= 0 || target != m_last_reply) {
            Error e{ErrorCode::InvalidInput,
                    "'message_id' " + std::to_string(target) + " is not the latest reply of this call" +
                        (m_last_reply ? " (" + std::to_string(m_last_reply) + ")" : " (none yet)"),
                    "message_id"};
            return std::unexpected(e.because("bad_heard"));
        }
    }
    return cut_to_heard(target, sentences);
}

Result<void> Call::cut_to_heard(int64_t message_id, size_t sentences) {
    auto cut = m_chat->cut_to_heard(message_id, sentences);
    if (!cut) return std::unexpected(cut.error());
    auto [type, data] = m_words(chat::DoneEvent{*cut, llm::FinishReason::Stop, {}});
    emit("heard", {{"message", data["message"]}, {"sentences", sentences}});
    return {};
}

void Call::hangup(const std::string& reason) {
    {
        std::lock_guard lock(m_mu);
        end_locked(reason);
    }
    m_cv.notify_all();
}

bool Call::connected() const {
    std::lock_guard lock(m_mu);
    return static_cast<bool>(m_sink);
}

std::optional<CallTimings> Call::last_timings() const {
    std::lock_guard lock(m_mu);
    return m_timings;
}

void Call::end_locked(const std::string& reason) {
    if (m_ended.load()) return;
    m_ended = true;
    m_stop->store(true);
    if (m_turn) m_turn->cancel();
    Json data = {{"type", "ended"}, {"seq", ++m_seq}, {"reason", reason}};
    m_log.push_back({m_seq, data.dump(), {}});
    if (m_sink) m_sink(m_log.back());
    m_cv.notify_all();
}

void Call::work() {
    std::string pending;  // What the person said and has not been answered yet.
    Utterance last;       // The last of it (its timings; no samples).
    std::unique_lock lock(m_mu);
    while (!m_ended.load()) {
        m_cv.wait_for(lock, std::chrono::milliseconds(250), [&] {
            return m_ended.load() || !m_utterances.empty() || (!pending.empty() && !m_speaking.load());
        });
        if (m_ended.load()) break;
        if (m_detached_at && Clock::now() - *m_detached_at > std::chrono::seconds(m_reconnect_s)) {
            end_locked("closed");
            break;
        }
        if (!m_utterances.empty()) {
            Utterance u = std::move(m_utterances.front());
            m_utterances.pop_front();
            lock.unlock();
            stt::SttOptions o;
            o.language = m_language;
            o.cancel = m_stop;
            const auto t0 = Clock::now();
            auto heard = m_stt->transcribe_pcm(std::move(u.samples), o);
            const double stt_ms = ms_between(t0, Clock::now());
            if (!heard) {
                if (!m_ended.load()) reject(heard.error());
            } else {
                const std::string text = trim(heard->text);
                emit("transcript", {{"text", text}, {"language", heard->language}, {"stt_ms", std::round(stt_ms)}});
                if (!text.empty()) {
                    pending += pending.empty() ? text : " " + text;
                    last = Utterance{{}, u.found_at, u.vad_ms, stt_ms};
                }
            }
            lock.lock();
            continue;
        }
        // Answer once the person has finished: nothing left to transcribe and not speaking again.
        if (!pending.empty() && !m_speaking.load()) {
            const std::string text = std::move(pending);
            pending.clear();
            lock.unlock();
            answer(text, last);
            lock.lock();
        }
    }
}

void Call::answer(const std::string& text, const Utterance& last) {
    auto started = m_start_turn(m_chat_id, text);
    if (!started) {
        Error e = started.error();
        if (e.code == ErrorCode::NotFound) {  // The chat was deleted during the call.
            hangup("chat_deleted");
            return;
        }
        if (e.code == ErrorCode::Conflict && e.reason.empty()) e.because("turn_running");
        reject(e);
        return;
    }
    auto turn = *started;
    {
        std::lock_guard lock(m_mu);
        m_turn = turn;
        m_interrupted = false;
        m_heard.reset();
        if (m_ended.load()) turn->cancel();
    }
    const auto turn_started = Clock::now();
    std::optional<Clock::time_point> first_sentence, first_audio;
    int64_t stored_reply = 0;  // The reply's id once its done event came.
    bool ended = false;
    while (true) {
        auto e = turn->next(std::chrono::milliseconds(100), ended);
        if (!e) {
            if (ended) break;
            if (m_ended.load()) turn->cancel();
            continue;
        }
        auto [type, data] = m_words(*e);
        std::string wav;
        if (const auto* s = std::get_if<chat::SpeechEvent>(&*e); s && !first_sentence) first_sentence = Clock::now();
        if (const auto* a = std::get_if<chat::AudioEvent>(&*e)) {
            const std::string prefix = "/api/media/";
            if (a->url.rfind(prefix, 0) == 0) {
                if (auto bytes = m_blobs->read(a->url.substr(prefix.size()))) wav = std::move(*bytes);
            }
            data["bytes"] = wav.size();
            if (!first_audio && !wav.empty()) {
                first_audio = Clock::now();
                CallTimings t;
                t.vad_ms = last.vad_ms;
                t.stt_ms = last.stt_ms;
                t.first_sentence_ms = first_sentence ? ms_between(turn_started, *first_sentence) : 0;
                t.tts_ms = first_sentence ? ms_between(*first_sentence, *first_audio) : 0;
                t.end_to_audio_ms = ms_between(last.found_at, *first_audio);
                std::lock_guard lock(m_mu);
                m_timings = t;
            }
        }
        if (std::holds_alternative<chat::DoneEvent>(*e)) {
            // Where the time went, for the person's settings and bench/call_bench: the reply's
            // first audio (end of speech found → audio queued, and its parts), or how long the
            // reply took to stop after the person began to speak.
            std::lock_guard lock(m_mu);
            m_last_reply = stored_reply = std::get<chat::DoneEvent>(*e).message.id;
            data["interrupted"] = m_interrupted;
            if (m_interrupted) data["stop_ms"] = std::round(ms_between(m_interrupted_at, Clock::now()) * 10) / 10;
            if (m_timings && first_audio) {
                const CallTimings& t = *m_timings;
                data["pipeline"] = {{"vad_ms", std::round(t.vad_ms * 10) / 10}, {"stt_ms", std::round(t.stt_ms * 10) / 10},
                                    {"first_sentence_ms", std::round(t.first_sentence_ms * 10) / 10},
                                    {"tts_ms", std::round(t.tts_ms * 10) / 10},
                                    {"end_to_audio_ms", std::round(t.end_to_audio_ms * 10) / 10}};
            }
        }
        emit(type, std::move(data), std::move(wav));
    }
    std::optional<size_t> heard;
    {
        std::lock_guard lock(m_mu);
        m_turn.reset();
        heard = std::exchange(m_heard, std::nullopt);
    }
    // Talked over while it was written: cut to what was heard before the next turn can start.
    if (heard && stored_reply > 0) {
        if (auto r = cut_to_heard(stored_reply, *heard); !r) reject(r.error());
    }
}

CallService::CallService(SettingsStore& settings, stt::SttService& stt, voice::TtsService& tts, chat::ChatService& chat,
                         store::BlobStore& blobs, CallTurnStarter start_turn, CallEventWords words)
    : m_settings(settings), m_stt(stt), m_tts(tts), m_chat(chat), m_blobs(blobs), m_start_turn(std::move(start_turn)),
      m_words(std::move(words)) {}

CallService::~CallService() { end_all("server_stopping"); }

void CallService::reap() {
    std::vector<std::shared_ptr<Call>> done;
    {
        std::lock_guard lock(m_mu);
        for (auto it = m_calls.begin(); it != m_calls.end();) {
            if (it->second->ended()) {
                m_done.push_back(it->second);
                it = m_calls.erase(it);
            } else {
                ++it;
            }
        }
        done.swap(m_done);
    }
    for (auto& c : done) {
        if (c->m_worker.joinable()) c->m_worker.join();
    }
}

Result<std::shared_ptr<Call>> CallService::start(const std::string& chat_id) {
    reap();
    const Json stt = m_stt.health();
    if (stt.value("state", "") != "ready") {
        return fail_because(ErrorCode::Unavailable,
                            "a call needs speech to text, and it is not ready: " + stt.value("detail", std::string("stt.engine is off")),
                            "stt", "stt_off");
    }
    if (!m_tts.enabled()) {
        return fail_because(ErrorCode::Unavailable, "a call needs the character's voice: text to speech is off (media.tts_enabled)", "tts",
                            "tts_off");
    }
    const auto s = m_settings.current();
    auto vad = stt::VadModel::open(m_stt.vad_model_path(), 1);
    if (!vad) {
        Error e = vad.error();
        e.because("vad");
        return std::unexpected(e);
    }
    std::lock_guard lock(m_mu);
    if (auto it = m_calls.find(chat_id); it != m_calls.end() && !it->second->ended()) {
        return fail_because(ErrorCode::Conflict, "this chat already has a call; hang up there first (or reconnect with its call id)",
                            "chat_id", "call_active");
    }
    if (m_chat.running(chat_id)) {
        return fail_because(ErrorCode::Conflict, "a reply is being written in this chat; wait for it or stop it, then call", "chat_id",
                            "turn_running");
    }
    std::shared_ptr<Call> call(new Call(random_hex(12), chat_id));
    call->m_stt = &m_stt;
    call->m_blobs = &m_blobs;
    call->m_start_turn = m_start_turn;
    call->m_words = m_words;
    call->m_chat = &m_chat;
    call->m_vad = std::move(*vad);
    stt::SegmenterOptions o;
    o.threshold = static_cast<float>(s->number("stt.vad_threshold"));
    o.silence_ms = static_cast<int>(s->integer("call.silence_ms"));
    o.min_speech_ms = static_cast<int>(s->integer("call.min_speech_ms"));
    o.max_utterance_ms = static_cast<int>(s->integer("call.max_utterance_s")) * 1000;
    if (!call->m_vad->is_model()) o.threshold = 0.5f;  // Loudness gives 0 or 1.
    call->m_segmenter.emplace(o);
    call->m_reconnect_s = static_cast<int>(s->integer("call.reconnect_s"));
    // Until a connection attaches (10 s for the upgrade to finish): a failed upgrade leaves no call behind.
    call->m_detached_at = Clock::now() + std::chrono::seconds(10);
    try {
        call->m_worker = std::thread([c = call.get()] { c->work(); });
    } catch (const std::system_error& e) {
        return fail(ErrorCode::Unavailable, std::string("cannot start the call: ") + e.what());
    }
    if (auto it = m_calls.find(chat_id); it != m_calls.end()) m_done.push_back(it->second);
    m_calls[chat_id] = call;
    log::info("call ", call->id(), " started in chat ", chat_id, call->m_vad->is_model() ? " (Silero VAD)" : " (VAD by loudness)");
    return call;
}

Result<std::shared_ptr<Call>> CallService::find(const std::string& chat_id, const std::string& call_id) {
    reap();
    std::lock_guard lock(m_mu);
    auto it = m_calls.find(chat_id);
    if (it == m_calls.end() || it->second->id() != call_id || it->second->ended()) {
        return fail_because(ErrorCode::NotFound, "that call has ended; start a new one", "resume", "call_ended");
    }
    return it->second;
}

Json CallService::status(const std::string& chat_id) {
    // No reaping here: a chat's page asks often, and joining a call that just ended may wait for
    // its stopped reply's last sentence. The next call's start() joins it.
    std::lock_guard lock(m_mu);
    auto it = m_calls.find(chat_id);
    if (it == m_calls.end() || it->second->ended()) return nullptr;
    return {{"id", it->second->id()}, {"connected", it->second->connected()}};
}

void CallService::end_all(const std::string& reason) {
    {
        std::lock_guard lock(m_mu);
        for (auto& [id, c] : m_calls) c->hangup(reason);
    }
    reap();
}

}  // namespace mc::call
