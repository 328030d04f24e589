#include "stt/stt_service.hpp"

#include <filesystem>

#include "stt/http_stt.hpp"
#include "stt/whisper_stt.hpp"

namespace mc::stt {

SttService::SttService(SettingsStore& settings, std::string data_dir) : m_settings(settings), m_data_dir(std::move(data_dir)) {}

SttService::~SttService() = default;

double SttService::max_seconds() const { return static_cast<double>(m_settings.current()->integer("stt.max_seconds")); }

std::string SttService::resolve(const std::string& path) const {
    if (path.empty() || path[0] == '/') return path;
    return m_data_dir + "/" + path;
}

std::string SttService::vad_model_path() const {
    const std::string path = resolve(m_settings.current()->str("stt.vad_model_path"));
    std::error_code ec;
    return !path.empty() && std::filesystem::is_regular_file(path, ec) ? path : std::string();
}

std::shared_ptr<SttEngine> SttService::engine(const Settings& s, std::string& vad_note) {
    const std::string kind = s.str("stt.engine");
    if (kind == "off") return nullptr;
    if (kind == "http") {
        HttpSttOptions o;
        o.base_url = s.str("stt.url");
        o.api_key = s.str("stt.api_key");
        o.model = s.str("stt.model");
        return std::make_shared<HttpStt>(o);
    }
    WhisperOptions o;
    o.model_path = resolve(s.str("stt.model_path"));
    o.vad_path = resolve(s.str("stt.vad_model_path"));
    o.threads = static_cast<int>(s.integer("stt.threads"));
    o.vad_threshold = static_cast<float>(s.number("stt.vad_threshold"));
    o.use_gpu = s.boolean("stt.use_gpu");
    // A VAD model that is not there yet is not fatal: silence is then cut by loudness.
    std::error_code ec;
    if (!o.vad_path.empty() && !std::filesystem::exists(o.vad_path, ec)) {
        vad_note = "no VAD model at " + o.vad_path + ": download ggml-silero-v5.1.2.bin there for better silence trimming";
        o.vad_path.clear();
    }
    const std::string key = o.model_path + "\n" + o.vad_path + "\n" + std::to_string(o.threads) + "\n" + std::to_string(o.vad_threshold) + "\n" + (o.use_gpu ? "gpu" : "cpu");
    std::lock_guard lock(m_mu);
    if (!m_engine || key != m_key) {
        m_engine = std::make_shared<WhisperStt>(o);
        m_key = key;
    }
    return m_engine;
}

Result<Transcript> SttService::transcribe(std::string_view recording, const SttOptions& options) {
    auto pcm = decode_audio(recording, max_seconds());
    if (!pcm) return std::unexpected(pcm.error());
    return transcribe_pcm(std::move(pcm->samples), options);
}

Result<Transcript> SttService::transcribe_pcm(std::vector<float> samples, const SttOptions& options) {
    auto s = m_settings.current();
    std::string note;
    auto e = engine(*s, note);
    if (!e) return fail(ErrorCode::Unavailable, "speech-to-text is off (stt.engine is \"off\")");
    SttRequest req;
    req.samples = std::move(samples);
    req.language = options.language.empty() ? s->str("stt.language") : options.language;
    req.prompt = options.prompt;
    req.cancel = options.cancel;
    return e->transcribe(req);
}

Json SttService::health() {
    auto s = m_settings.current();
    const std::string kind = s->str("stt.engine");
    std::string note;
    auto e = engine(*s, note);
    if (!e) return {{"state", "disabled"}, {"detail", "stt.engine is \"off\""}, {"engine", kind}, {"model", nullptr}};
    SttHealth h = e->health();
    Json out = {{"state", h.state}, {"detail", h.detail}, {"engine", kind}, {"model", h.model.empty() ? Json(nullptr) : Json(h.model)},
                {"language", s->str("stt.language")}};
    if (kind == "embedded") {
        out["whisper_cpp"] = WhisperStt::version();
        out["vad"] = note.empty() ? Json(s->str("stt.vad_model_path").empty() ? "off" : "ready") : Json(note);
    }
    return out;
}

}  // namespace mc::stt
