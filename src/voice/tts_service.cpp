#include "voice/tts_service.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <thread>

#include "chat/text_stream.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "voice/embedded_tts.hpp"
#include "voice/espeak_tts.hpp"
#include "voice/rvc.hpp"
#include "voice/http_tts.hpp"
#include "voice/wav.hpp"

namespace mc::voice {
namespace {

namespace fs = std::filesystem;

// Speech runs below the chat model's priority: a sentence takes idle CPU, not decoding time.
constexpr int kSpeechNice = 10;

bool valid_language(const std::string& l) {
    // "de", "en", "pt-br", "en-us": letters and one optional region.
    if (l.size() < 2 || l.size() > 8) return false;
    for (size_t i = 0; i < l.size(); ++i) {
        const char c = l[i];
        if (!((c >= 'a' && c <= 'z') || (c == '-' && i >= 2 && i + 1 < l.size()))) return false;
    }
    return true;
}

bool valid_voice_name(const std::string& v) {
    if (v.size() > 100) return false;
    for (char c : v) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    }
    return true;
}

// The calling thread only (Linux: nice is per thread).
void lower_this_threads_priority() {
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    ::setpriority(PRIO_PROCESS, tid, ::getpriority(PRIO_PROCESS, tid) + kSpeechNice);
}

// Speaks one turn's sentences, in order, on its own thread while the model goes on writing.
class TurnSpeaker : public chat::SpeechSink {
public:
    TurnSpeaker(TtsService& service, TtsService::Prepared prepared, std::function<void(chat::TurnEvent)> emit,
                std::shared_ptr<std::atomic<bool>> cancel)
        : m_service(service), m_prepared(std::move(prepared)), m_emit(std::move(emit)), m_cancel(std::move(cancel)) {
        m_prepared.request.cancel = m_cancel;
        m_thread = std::thread([this] { work(); });
    }
    ~TurnSpeaker() override { finish(); }

    void sentence(int index, const std::string& text) override {
        std::lock_guard lock(m_mu);
        m_queue.emplace_back(index, text);
        m_cv.notify_all();
    }

    Json finish() override {
        {
            std::lock_guard lock(m_mu);
            m_closed = true;
            m_cv.notify_all();
        }
        if (m_thread.joinable()) m_thread.join();
        return m_media;
    }

private:
    void work() {
        // In-process synthesis runs on this thread: below the chat model. (espeak-ng sets its own
        // child's priority; the wait here costs nothing.)
        if (m_prepared.engine->name() == "embedded") lower_this_threads_priority();
        bool given_up = false;
        for (;;) {
            std::pair<int, std::string> item;
            {
                std::unique_lock lock(m_mu);
                m_cv.wait(lock, [&] { return m_closed || !m_queue.empty(); });
                if (m_queue.empty()) return;
                item = std::move(m_queue.front());
                m_queue.pop_front();
            }
            // After a stop, or once the engine failed, the rest is dropped (the text goes on).
            if (given_up || (m_cancel && m_cancel->load())) continue;
            TtsRequest req = m_prepared.request;
            req.text = item.second;
            auto audio = m_prepared.engine->synthesize(req);
            if (m_cancel && m_cancel->load()) continue;
            if (audio && !m_prepared.rvc_model.empty() && !m_convert_failed) {
                auto converted = m_service.convert(m_prepared.rvc_model, *audio, m_cancel);
                if (m_cancel && m_cancel->load()) continue;
                if (converted) {
                    audio = std::move(converted);
                } else {
                    // The unconverted voice plays; the reason is said once, not per sentence.
                    m_convert_failed = true;
                    log::warn("voice conversion failed at sentence ", item.first, ": ", converted.error().message);
                    Error e = converted.error();
                    e.message += " (playing the voice without conversion)";
                    m_emit(chat::AudioErrorEvent{item.first, e});
                }
            }
            Result<std::string> url = audio ? m_service.store_audio(*audio) : std::unexpected(audio.error());
            if (!url) {
                log::warn("speech stopped at sentence ", item.first, ": ", url.error().message);
                m_emit(chat::AudioErrorEvent{item.first, url.error()});
                // One reason is enough: an engine that failed once would fail, slowly, for each
                // sentence after it.
                given_up = url.error().code != ErrorCode::InvalidInput;
                continue;
            }
            m_media.push_back({{"kind", "audio"}, {"index", item.first}, {"url", *url},
                               {"seconds", std::round(audio->seconds() * 100) / 100}});
            m_emit(chat::AudioEvent{item.first, *url});
        }
    }

    TtsService& m_service;
    TtsService::Prepared m_prepared;
    std::function<void(chat::TurnEvent)> m_emit;
    std::shared_ptr<std::atomic<bool>> m_cancel;
    std::mutex m_mu;  // Guards m_queue and m_closed.
    std::condition_variable m_cv;
    std::deque<std::pair<int, std::string>> m_queue;
    bool m_closed = false;
    bool m_convert_failed = false;  // Worker only.
    Json m_media = Json::array();  // Written by the worker only; read after join.
    std::thread m_thread;          // Joined by finish() (or the destructor).
};

}  // namespace

std::string media_url(const std::string& blob_name) { return "/api/media/" + blob_name; }

Result<VoiceSpec> voice_spec_from_json(const Json& j) {
    VoiceSpec v;
    if (j.is_null()) return v;
    if (!j.is_object()) return fail_because(ErrorCode::InvalidInput, "voice must be an object", "voice", "type", {{"expected", "object"}});
    // Every problem is collected (the editor marks each field at once).
    Problems problems;
    auto str = [&](const char* key, std::string& into, size_t max) {
        if (!j.contains(key) || j[key].is_null()) return false;
        const std::string field = std::string("voice.") + key;
        if (!j[key].is_string()) {
            problems.invalid(field, field + " must be a string", "type", {{"expected", "string"}});
            return false;
        }
        into = j[key].get<std::string>();
        if (into.size() > max) {
            problems.invalid(field, field + " is longer than " + std::to_string(max) + " bytes", "too_long",
                    {{"max", std::to_string(max)}, {"unit", "bytes"}});
            into.clear();
            return false;
        }
        return true;
    };
    if (str("engine", v.engine, 16) && v.engine != "espeak" && v.engine != "embedded" && v.engine != "http" && !v.engine.empty()) {
        problems.invalid("voice.engine", "voice.engine must be espeak, embedded or http (or empty for the default)", "choice",
                {{"choices", "espeak, embedded, http"}});
    }
    if (str("voice", v.voice, 100) && !valid_voice_name(v.voice)) {
        problems.invalid("voice.voice", "voice.voice contains control characters", "invalid");
    }
    if (str("language", v.language, 8)) {
        for (auto& c : v.language) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!v.language.empty() && !valid_language(v.language)) {
            problems.invalid("voice.language", "voice.language must be a language code such as en or de", "language");
        }
    }
    if (j.contains("speed") && !j["speed"].is_null()) {
        if (!j["speed"].is_number() || !std::isfinite(j["speed"].get<double>()) || j["speed"].get<double>() < 0.5 ||
            j["speed"].get<double>() > 2.0) {
            problems.invalid("voice.speed", "voice.speed must be a number from 0.5 to 2", "range", {{"min", "0.5"}, {"max", "2"}});
        } else {
            v.speed = j["speed"].get<double>();
        }
    }
    if (j.contains("pitch") && !j["pitch"].is_null()) {
        if (!j["pitch"].is_number_integer() || j["pitch"].get<int64_t>() < 0 || j["pitch"].get<int64_t>() > 99) {
            problems.invalid("voice.pitch", "voice.pitch must be an integer from 0 to 99", "range", {{"min", "0"}, {"max", "99"}});
        } else {
            v.pitch = j["pitch"].get<int>();
        }
    }
    for (const char* key : {"clone", "convert"}) {
        if (!j.contains(key) || j[key].is_null()) continue;
        const std::string field = std::string("voice.") + key;
        if (!j[key].is_boolean()) {
            problems.invalid(field, field + " must be true or false", "type", {{"expected", "boolean"}});
        } else {
            (std::string(key) == "clone" ? v.clone : v.convert) = j[key].get<bool>();
        }
    }
    if (!problems.empty()) return std::unexpected(problems.error());
    return v;
}

TtsService::TtsService(SettingsStore& settings, store::BlobStore& blobs, std::string data_dir)
    : m_settings(settings), m_blobs(blobs), m_data_dir(std::move(data_dir)) {}

TtsService::~TtsService() = default;

bool TtsService::enabled() const { return m_settings.current()->boolean("media.tts_enabled"); }

size_t TtsService::max_chars() const { return static_cast<size_t>(m_settings.current()->integer("media.tts_max_chars")); }

std::string TtsService::resolve(const std::string& path) const {
    if (path.empty() || path[0] == '/') return path;
    return m_data_dir + "/" + path;
}

std::shared_ptr<TtsEngine> TtsService::engine_named(const std::string& name, const Settings& s) {
    if (name == "http") {
        HttpTtsOptions o;
        o.base_url = s.str("media.tts_url");
        if (o.base_url.empty()) o.base_url = "http://127.0.0.1:" + std::to_string(s.integer("media.tts_port"));
        o.model = s.str("media.tts_model");
        o.voice = s.str("media.tts_voice");
        o.api_key = s.str("media.tts_api_key");
        return std::make_shared<HttpTts>(o);
    }
    std::lock_guard lock(m_mu);
    if (name == "embedded") {
        const std::string model = resolve(s.str("media.tts_model_file"));
        const std::string mmproj = resolve(s.str("media.tts_mmproj_file"));
        const int threads = static_cast<int>(s.integer("llm.threads"));
        const int gpu_layers = static_cast<int>(s.integer("media.tts_gpu_layers"));
        const std::string key = model + "\n" + mmproj + "\n" + std::to_string(threads) + "\n" + std::to_string(gpu_layers);
        if (!m_embedded || key != m_embedded_key) {
            m_embedded = std::make_shared<EmbeddedTts>(model, mmproj, threads, gpu_layers);
            m_embedded_key = key;
        }
        return m_embedded;
    }
    const std::string program = s.str("media.espeak_path");
    if (!m_espeak || program != m_espeak_key) {
        m_espeak = std::make_shared<EspeakTts>(program);
        m_espeak_key = program;
    }
    return m_espeak;
}

Result<TtsService::Prepared> TtsService::prepare(const Character* character, const std::optional<Json>& override_voice) {
    auto settings = m_settings.current();
    Json merged = character ? character->voice : Json::object();
    if (!merged.is_object()) merged = Json::object();
    if (override_voice) {
        if (!override_voice->is_object()) return fail(ErrorCode::InvalidInput, "voice must be an object", "voice");
        for (auto it = override_voice->begin(); it != override_voice->end(); ++it) merged[it.key()] = it.value();
    }
    auto spec = voice_spec_from_json(merged);
    if (!spec) return std::unexpected(spec.error());
    Prepared p;
    const std::string engine = spec->engine.empty() ? settings->str("media.tts_engine") : spec->engine;
    p.engine = engine_named(engine, *settings);
    p.request.voice = spec->voice;
    p.request.language = spec->language.empty() ? "en" : spec->language;
    p.request.speed = spec->speed;
    p.request.pitch = spec->pitch;
    if (spec->clone) {
        if (!character || !character->voice_sample_file) {
            return fail(ErrorCode::InvalidInput, "voice.clone needs a voice sample: upload one to the character first", "voice.clone");
        }
        p.request.speaker_clip = m_blobs.path_of(*character->voice_sample_for_engines());
    }
    if (character && spec->convert && settings->boolean("media.vc_convert") && character->voice_status == "done") {
        if (auto model = trained_model(m_data_dir, character->id)) p.rvc_model = *model;
    }
    return p;
}

Result<Audio> TtsService::convert(const std::string& model, const Audio& audio, std::shared_ptr<std::atomic<bool>> cancel) {
    return rvc_convert(*m_settings.current(), m_data_dir, model, audio, std::move(cancel));
}

Result<Audio> TtsService::speak(const Character* character, const std::optional<Json>& override_voice, const std::string& text,
                                std::shared_ptr<std::atomic<bool>> cancel) {
    if (text.size() > max_chars() && utf8_length(sanitize_utf8(text)) > max_chars()) {
        return fail(ErrorCode::TooLarge, "text is longer than " + std::to_string(max_chars()) + " characters (media.tts_max_chars)", "text");
    }
    std::string spoken = trim(chat::speakable(text));
    if (spoken.empty()) return fail(ErrorCode::InvalidInput, "there is nothing to speak in text (emotes and markup are not spoken)", "text");
    auto p = prepare(character, override_voice);
    if (!p) return std::unexpected(p.error());
    p->request.text = std::move(spoken);
    p->request.cancel = cancel;
    auto audio = p->engine->synthesize(p->request);
    if (!audio || p->rvc_model.empty()) return audio;
    auto converted = convert(p->rvc_model, *audio, std::move(cancel));
    if (converted) return converted;
    // The voice without conversion, rather than no voice; the log says why.
    log::warn("voice conversion failed: ", converted.error().message);
    return audio;
}

Result<std::string> TtsService::store_audio(const Audio& audio) {
    auto name = m_blobs.put("audio", "wav", encode_wav(audio));
    if (!name) return std::unexpected(name.error());
    return media_url(*name);
}

Json TtsService::health() {
    auto s = m_settings.current();
    const std::string chosen = s->str("media.tts_engine");
    Json engines = Json::object();
    for (const char* name : kEngineNames) {
        // A remote server is only asked when it is the one in use or was set up (asking a port
        // nobody listens on would only say so).
        if (std::string(name) == "http" && chosen != "http" && s->str("media.tts_url").empty()) {
            engines[name] = {{"state", "not_configured"}, {"detail", "set media.tts_url to an OpenAI-compatible /v1/audio/speech server"}};
            continue;
        }
        TtsHealth h = engine_named(name, *s)->health();
        engines[name] = {{"state", h.state == "ok" ? "ready" : h.state}, {"detail", h.detail}};
    }
    Json out = engines[chosen];
    if (!s->boolean("media.tts_enabled")) out = {{"state", "disabled"}, {"detail", "media.tts_enabled is false"}};
    out["engine"] = chosen;
    out["engines"] = engines;
    return out;
}

Json TtsService::voices() {
    auto s = m_settings.current();
    auto engine = std::dynamic_pointer_cast<EspeakTts>(engine_named("espeak", *s));
    Json out = {{"espeak", {{"languages", Json::array()}, {"variants", Json::array()}}}};
    if (engine) {
        if (auto v = engine->voices()) {
            out["espeak"]["languages"] = v->languages;
            out["espeak"]["variants"] = v->variants;
        }
    }
    return out;
}

chat::SpeakerFactory TtsService::speaker_factory() {
    return [this](const Character& character, std::function<void(chat::TurnEvent)> emit,
                  std::shared_ptr<std::atomic<bool>> cancel) -> std::unique_ptr<chat::SpeechSink> {
        auto p = prepare(&character, std::nullopt);
        if (!p) {
            emit(chat::AudioErrorEvent{0, p.error()});
            return nullptr;
        }
        return std::make_unique<TurnSpeaker>(*this, std::move(*p), std::move(emit), std::move(cancel));
    };
}

}  // namespace mc::voice
