#include "image/image_service.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/json.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "image/image_backend.hpp"

namespace mc::image {
namespace {

constexpr size_t kMaxPerReply = 4;       // More tags in one reply are ignored.
constexpr size_t kMaxWorkflowBytes = 1u << 20;
constexpr int64_t kMaxSeed = (int64_t{1} << 53);

const char* kInstructionEn =
    "{{char}} can send {{user}} pictures of themselves. When {{user}} asks for a picture, or the moment calls for one, "
    "write on a line of its own: [GENERATE_IMAGE] followed by a short, comma-separated description of the picture in "
    "English (what {{char}} is doing and wearing, the place, the framing), for example: [GENERATE_IMAGE] smiling, "
    "sitting on a bed, red dress, evening light. Do not describe {{char}}'s fixed looks; they are added automatically. "
    "Use it rarely, at most once per reply.";
const char* kInstructionDe =
    "{{char}} kann {{user}} Bilder von sich schicken. Wenn {{user}} um ein Bild bittet oder der Moment danach verlangt, "
    "schreibe in eine eigene Zeile: [GENERATE_IMAGE] und danach eine kurze, durch Kommas getrennte Beschreibung des "
    "Bildes auf Englisch (was {{char}} tut und trägt, der Ort, der Bildausschnitt), zum Beispiel: [GENERATE_IMAGE] "
    "smiling, sitting on a bed, red dress, evening light. Beschreibe nicht {{char}}s festes Aussehen; das wird "
    "automatisch ergänzt. Nutze es selten, höchstens einmal pro Antwort.";

std::string join_tags(std::initializer_list<std::string> parts) {
    std::string out;
    for (const auto& p : parts) {
        std::string t = trim(p);
        while (!t.empty() && t.back() == ',') t.pop_back();
        if (t.empty()) continue;
        if (!out.empty()) out += ", ";
        out += t;
    }
    return out;
}

Result<int> int_in(const Json& obj, const char* key, int lo, int hi, const std::string& path) {
    const Json& v = obj[key];
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
        return fail_because(ErrorCode::InvalidInput,
                            "'" + path + "." + key + "' must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi),
                            path + "." + key, "range", {{"min", std::to_string(lo)}, {"max", std::to_string(hi)}});
    }
    return static_cast<int>(v.get<int64_t>());
}

Result<std::string> name_in(const Json& v, const std::string& path) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty() || v.get_ref<const std::string&>().size() > 255) {
        return fail_because(ErrorCode::InvalidInput, "'" + path + "' must be a file name of 1 to 255 characters", path, "file_name");
    }
    const std::string& s = v.get_ref<const std::string&>();
    // The image server resolves these in its own model folders: no way out of them.
    if (s.find("..") != std::string::npos || s[0] == '/' || s[0] == '\\' || s.find(':') != std::string::npos ||
        std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
        return fail_because(ErrorCode::InvalidInput, "'" + path + "' must be a plain model file name (as the image server lists it)",
                            path, "file_name");
    }
    return s;
}

std::string url_of(const std::string& blob) { return "/api/media/" + blob; }

// "images/<file>" from "/api/media/images/<file>", if it is one of ours.
std::optional<std::string> blob_of(const std::string& url) {
    constexpr std::string_view prefix = "/api/media/";
    if (!url.starts_with(prefix)) return std::nullopt;
    std::string name = url.substr(prefix.size());
    if (!name.starts_with("images/") || !store::BlobStore::valid_name(name)) return std::nullopt;
    return name;
}

}  // namespace

Result<CharacterImage> character_image_from_extensions(const Json& extensions) {
    CharacterImage out;
    if (!extensions.is_object() || !extensions.contains("mycandy") || !extensions["mycandy"].is_object() ||
        !extensions["mycandy"].contains("image")) {
        return out;
    }
    const std::string path = "extensions.mycandy.image";
    const Json& j = extensions["mycandy"]["image"];
    if (!j.is_object()) return fail_because(ErrorCode::InvalidInput, "'" + path + "' must be an object", path, "type", {{"expected", "object"}});
    // Every problem is collected (the editor marks each field at once).
    Problems problems;
    for (const auto& [key, v] : j.items()) {
        if (key == "seed") {
            if (!v.is_number_integer() || v.get<int64_t>() < -1 || v.get<int64_t>() > kMaxSeed) {
                problems.invalid(path + ".seed", "'" + path + ".seed' must be -1 (a new one each picture) or a whole number up to 2^53", "range",
                        {{"min", "-1"}, {"max", std::to_string(kMaxSeed)}});
            } else if (v.get<int64_t>() >= 0) {
                out.seed = v.get<int64_t>();
            }
        } else if (key == "width" || key == "height") {
            auto n = int_in(j, key.c_str(), 64, 2048, path);
            if (!n) {
                problems.add(n.error());
            } else if (*n % 8 != 0) {
                problems.invalid(path + "." + key, "'" + path + "." + key + "' must be a multiple of 8", "multiple_of", {{"n", "8"}});
            } else {
                (key == "width" ? out.width : out.height) = *n;
            }
        } else if (key == "steps") {
            auto n = int_in(j, "steps", 1, 150, path);
            if (!n) {
                problems.add(n.error());
            } else {
                out.steps = *n;
            }
        } else if (key == "likeness") {
            if (!v.is_boolean()) {
                problems.invalid(path + ".likeness", "'" + path + ".likeness' must be true or false", "type", {{"expected", "boolean"}});
            } else {
                out.likeness = v.get<bool>();
            }
        } else if (key == "checkpoint") {
            if (v.is_string() && v.get_ref<const std::string&>().empty()) continue;
            auto n = name_in(v, path + ".checkpoint");
            if (!n) {
                problems.add(n.error());
            } else {
                out.checkpoint = *n;
            }
        } else if (key == "negative") {
            if (!v.is_string() || v.get_ref<const std::string&>().size() > 4000) {
                problems.invalid(path + ".negative", "'" + path + ".negative' must be text of at most 4000 bytes", "too_long",
                        {{"max", "4000"}, {"unit", "bytes"}});
            } else {
                out.negative = v.get<std::string>();
            }
        } else if (key == "loras") {
            if (!v.is_array() || v.size() > 8) {
                problems.invalid(path + ".loras", "'" + path + ".loras' must be a list of at most 8 {\"name\",\"weight\"}", "too_many",
                        {{"max", "8"}});
                continue;
            }
            for (size_t i = 0; i < v.size(); ++i) {
                const std::string at = path + ".loras[" + std::to_string(i) + "]";
                if (!v[i].is_object() || !v[i].contains("name")) {
                    problems.invalid(at, "'" + at + "' must be {\"name\",\"weight\"}", "invalid");
                    continue;
                }
                auto n = name_in(v[i]["name"], at + ".name");
                if (!n) {
                    problems.add(n.error());
                    continue;
                }
                Lora l{*n, 0.8};
                if (v[i].contains("weight")) {
                    const Json& w = v[i]["weight"];
                    if (!w.is_number() || !std::isfinite(w.get<double>()) || w.get<double>() < -5 || w.get<double>() > 5) {
                        problems.invalid(at + ".weight", "'" + at + ".weight' must be a number from -5 to 5", "range", {{"min", "-5"}, {"max", "5"}});
                        continue;
                    }
                    l.weight = w.get<double>();
                }
                out.loras.push_back(std::move(l));
            }
        } else {
            problems.invalid(path + "." + key.substr(0, 100), "unknown field '" + path + "." + key.substr(0, 100) + "'", "unknown_field");
        }
    }
    if (!problems.empty()) return std::unexpected(problems.error());
    return out;
}

Result<std::string> clean_prompt(std::string_view prompt, size_t max_chars) {
    const std::string valid = sanitize_utf8(prompt);
    std::string out;
    bool space = false;
    for (unsigned char c : valid) {
        if (c < 0x20 || c == 0x7f || c == ' ') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += static_cast<char>(c);
    }
    if (utf8_length(out) > max_chars) {
        return fail(ErrorCode::TooLarge, "'prompt' is longer than " + std::to_string(max_chars) + " characters", "prompt");
    }
    return out;
}

// ---------------------------------------------------------------- the turn's sink

class ImageService::Sink : public chat::ImageSink {
public:
    Sink(ImageService& service, Character character, std::string chat_id)
        : m_service(service), m_character(std::move(character)), m_chat_id(std::move(chat_id)) {}
    ~Sink() override {
        if (!m_stored) m_service.forget_pending(m_jobs);
    }

    std::optional<chat::ImageEvent> request(const std::string& raw) override {
        if (m_jobs.size() >= kMaxPerReply) {
            log::info("reply in chat ", m_chat_id, " asked for more than ", kMaxPerReply, " pictures; ignored the rest");
            return std::nullopt;
        }
        // The model's words are cut, not refused.
        auto prompt = clean_prompt(utf8_prefix(raw, kMaxPromptChars), kMaxPromptChars);
        if (!prompt || prompt->empty()) return std::nullopt;
        auto job = m_service.submit(m_character, *prompt, m_chat_id);
        if (!job) {
            log::warn("picture for chat ", m_chat_id, " not started: ", job.error().message);
            return std::nullopt;
        }
        m_jobs.push_back(job->id);
        m_entries.push_back({{"kind", "image"}, {"job", job->id}, {"prompt", *prompt}, {"status", "queued"}});
        return chat::ImageEvent{job->id, *prompt};
    }

    Json entries() override { return m_entries; }

    void stored(const Message&) override {
        m_stored = true;
        m_service.attach_pending(m_chat_id, m_jobs);
    }

private:
    ImageService& m_service;
    Character m_character;
    std::string m_chat_id;
    std::vector<std::string> m_jobs;
    Json m_entries = Json::array();
    bool m_stored = false;
};

// ---------------------------------------------------------------- service

ImageService::ImageService(SettingsStore& settings, store::BlobStore& blobs, store::CharacterStore& characters,
                           store::ChatStore& chats, store::JobStore& jobs, std::string data_dir)
    : m_settings(settings), m_blobs(blobs), m_characters(characters), m_chats(chats), m_jobs(jobs),
      m_workflow_dir(data_dir + "/workflows"), m_runner(jobs, store::KindFilter{{"image"}, true}) {
    m_runner.handle("image", [this](const Job& job, jobs::JobContext& ctx) { return render(job, ctx); });
}

ImageService::~ImageService() { stop(); }

void ImageService::start() { m_runner.start(); }
void ImageService::stop() { m_runner.stop(); }

chat::ImagerFactory ImageService::imager_factory() {
    return [this](const Character& character, const std::string& chat_id) -> std::unique_ptr<chat::ImageSink> {
        const auto s = m_settings.current();
        if (s->str("media.image_backend") == "off" || !s->boolean("media.image_instruct")) return nullptr;
        return std::make_unique<Sink>(*this, character, chat_id);
    };
}

std::string ImageService::instruction() const {
    const auto s = m_settings.current();
    if (s->str("media.image_backend") == "off" || !s->boolean("media.image_instruct")) return {};
    return s->str("ui.language") == "de" ? kInstructionDe : kInstructionEn;
}

Result<Job> ImageService::submit(const Character& character, const std::string& prompt, const std::optional<std::string>& chat_id) {
    if (m_settings.current()->str("media.image_backend") == "off") {
        return fail(ErrorCode::Unavailable, "pictures are off: choose an image server in the settings (media.image_backend)");
    }
    // Registered before the runner can finish it, so attach() knows its message is still coming.
    std::lock_guard lock(m_attach_mu);
    auto job = m_runner.submit("image", Json{{"prompt", prompt}}, character.id, chat_id);
    if (job && chat_id) m_awaiting.insert(job->id);
    return job;
}

Result<Job> ImageService::request(const std::string& character_id, const std::string& raw, const std::optional<std::string>& chat_id) {
    auto character = m_characters.get(character_id);
    if (!character) return std::unexpected(character.error());
    auto prompt = clean_prompt(raw, kMaxPromptChars);
    if (!prompt) return std::unexpected(prompt.error());
    if (prompt->empty()) return fail(ErrorCode::InvalidInput, "'prompt' must not be empty", "prompt");
    if (chat_id) {
        auto chat = m_chats.get(*chat_id);
        if (!chat) return std::unexpected(chat.error());
        if (chat->character_id != character_id) {
            return fail(ErrorCode::InvalidInput, "chat " + *chat_id + " belongs to another character", "chat_id");
        }
    }
    auto job = submit(*character, *prompt, chat_id);
    if (!job || !chat_id) return job;
    Message m;
    m.chat_id = *chat_id;
    m.role = "assistant";
    m.content = "*sends a picture*";
    m.media = Json::array({{{"kind", "image"}, {"job", job->id}, {"prompt", *prompt}, {"status", "queued"}, {"swipe", 0}}});
    if (auto stored = m_chats.add_message(m); !stored) {
        (void)m_runner.cancel(job->id);
        forget_pending({job->id});
        return std::unexpected(stored.error());
    }
    attach_pending(*chat_id, {job->id});
    return job;
}

Result<Job> ImageService::retry(const std::string& job_id) {
    auto job = m_jobs.get(job_id);
    if (!job) return job;
    if (job->kind != "image") return fail(ErrorCode::InvalidInput, "job " + job_id + " is not a picture", "id");
    if (job->status == "queued" || job->status == "running") {
        return fail(ErrorCode::Conflict, "the picture is still being made; cancel it first", "id");
    }
    // Under m_attach_mu from submit to the entry's new job id, so the new job cannot finish (and
    // look for its entry) before the entry carries its id.
    std::lock_guard lock(m_attach_mu);
    auto again = m_runner.submit("image", job->payload, job->character_id, job->chat_id);
    if (!again) return again;
    if (job->chat_id) {
        std::optional<std::string> old_file;
        auto edited = m_chats.edit_media(*job->chat_id, job_id, [&](Json& e) {
            old_file = blob_of(json_string_or(e, "url", ""));
            e["job"] = again->id;
            e["status"] = "queued";
            e.erase("url");
            e.erase("error");
            return true;
        });
        if (edited && *edited && old_file) m_blobs.remove(*old_file);
    }
    return again;
}

Result<void> ImageService::remove(const std::string& job_id) {
    auto job = m_jobs.get(job_id);
    if (!job) return std::unexpected(job.error());
    if (job->kind != "image") return fail(ErrorCode::InvalidInput, "job " + job_id + " is not a picture", "id");
    if (job->status == "queued" || job->status == "running") (void)m_runner.cancel(job_id);
    std::optional<std::string> file = blob_of(json_string_or(job->result, "url", ""));
    if (job->chat_id) {
        std::lock_guard lock(m_attach_mu);
        m_unattached.erase(job_id);
        auto edited = m_chats.edit_media(*job->chat_id, job_id, [&](Json& e) {
            if (!file) file = blob_of(json_string_or(e, "url", ""));
            return false;
        });
        if (!edited) return std::unexpected(edited.error());
    }
    if (file) m_blobs.remove(*file);
    return {};
}

Result<Job> ImageService::cancel(const std::string& job_id) { return m_runner.cancel(job_id); }

bool ImageService::attach(const std::string& chat_id, const std::string& job_id, const Json& fields) {
    if (chat_id.empty()) return true;
    std::lock_guard lock(m_attach_mu);
    auto edited = m_chats.edit_media(chat_id, job_id, [&](Json& e) {
        for (const auto& [k, v] : fields.items()) e[k] = v;
        return true;
    });
    if (!edited) {
        log::warn("picture ", job_id, " could not be attached to its message: ", edited.error().message);
        return true;
    }
    if (*edited) return true;
    if (m_awaiting.contains(job_id)) {
        m_unattached[job_id] = fields;  // The reply is still being written; stored() attaches it.
        return true;
    }
    return false;  // Its message was deleted.
}

void ImageService::attach_pending(const std::string& chat_id, const std::vector<std::string>& job_ids) {
    std::lock_guard lock(m_attach_mu);
    for (const auto& id : job_ids) {
        m_awaiting.erase(id);
        auto it = m_unattached.find(id);
        if (it == m_unattached.end()) continue;
        const Json fields = std::move(it->second);
        m_unattached.erase(it);
        (void)m_chats.edit_media(chat_id, id, [&](Json& e) {
            for (const auto& [k, v] : fields.items()) e[k] = v;
            return true;
        });
    }
}

void ImageService::forget_pending(const std::vector<std::string>& job_ids) {
    std::lock_guard lock(m_attach_mu);
    for (const auto& id : job_ids) {
        m_awaiting.erase(id);
        auto it = m_unattached.find(id);
        if (it == m_unattached.end()) continue;
        // No message will show it: the file goes too.
        if (auto file = blob_of(json_string_or(it->second, "url", ""))) m_blobs.remove(*file);
        m_unattached.erase(it);
    }
}

jobs::Outcome ImageService::render(const Job& job, jobs::JobContext& ctx) {
    const std::string chat_id = job.chat_id.value_or("");
    auto failed = [&](const std::string& why, const char* status = "failed") {
        attach(chat_id, job.id, Json{{"status", status}, {"error", why}});
        return jobs::Outcome::failed(why);
    };
    if (!job.character_id) return failed("the picture has no character");
    auto character = m_characters.get(*job.character_id);
    if (!character) return failed("the character was deleted");
    auto ci = character_image_from_extensions(character->extensions);
    if (!ci) return failed(ci.error().message);
    const auto s = m_settings.current();
    const std::string backend_name = s->str("media.image_backend");
    if (backend_name == "off") return failed("pictures are off: choose an image server in the settings (media.image_backend)");
    const std::string prompt = json_string_or(job.payload, "prompt", "");

    RenderRequest req;
    ImageParams& p = req.params;
    p.prompt = join_tags({s->str("media.image_quality_tags"), character->appearance, prompt});
    p.negative_prompt = join_tags({s->str("media.image_negative"), ci->negative});
    if (ci->seed) {
        p.seed = *ci->seed;
    } else {
        std::random_device rd;
        p.seed = (static_cast<int64_t>(rd()) << 16) ^ rd();
        p.seed &= (int64_t{1} << 48) - 1;
    }
    p.width = ci->width.value_or(static_cast<int>(s->integer("media.image_width")));
    p.height = ci->height.value_or(static_cast<int>(s->integer("media.image_height")));
    p.steps = ci->steps.value_or(static_cast<int>(s->integer("media.image_steps")));
    p.scale = s->number("media.image_cfg");
    p.sampler = s->str("media.image_sampler");
    p.scheduler = s->str("media.image_scheduler");
    p.checkpoint = ci->checkpoint.empty() ? s->str("media.image_checkpoint") : ci->checkpoint;
    p.loras = ci->loras;
    p.likeness_weight = s->number("media.image_likeness_weight");
    const bool likeness = ci->likeness.value_or(s->boolean("media.image_likeness")) && character->avatar_file.has_value();
    if (likeness) {
        auto avatar = m_blobs.read(*character->avatar_file);
        if (avatar) {
            req.reference_bytes = std::move(*avatar);
            // Stable per avatar file: ComfyUI keeps one copy per picture the character has had.
            std::string stem = character->avatar_file->substr(character->avatar_file->find('/') + 1);
            stem = stem.substr(0, stem.find('.'));
            req.reference_name = character->id + "_" + stem;
        }
    }
    BackendOptions o;
    o.max_bytes = static_cast<size_t>(s->integer("media.image_max_mb")) << 20;
    o.timeout_s = static_cast<int>(s->integer("media.image_timeout_s"));
    std::unique_ptr<ImageBackend> backend;
    if (backend_name == "a1111") {
        o.url = s->str("media.a1111_url");
        backend = make_a1111_backend(o);
    } else {
        o.url = s->str("media.comfyui_url");
        auto tpl = workflow(s->str("media.image_workflow"));
        if (!tpl) return failed(tpl.error().message);
        // The built-in graph drops its IPAdapter part when there is no picture to steer by.
        req.workflow = s->str("media.image_workflow") == "default" ? default_workflow(!req.reference_bytes.empty()) : std::move(*tpl);
        backend = make_comfyui_backend(o);
    }
    ctx.progress(0.02);
    auto cancel = ctx.cancel_flag();
    // Progress is written at most 4 times a second (ComfyUI may report every few milliseconds).
    auto last_progress = std::chrono::steady_clock::now();
    auto done = backend->render(req, [&](double f) {
        const auto now = std::chrono::steady_clock::now();
        if (f < 1.0 && now - last_progress < std::chrono::milliseconds(250)) return;
        last_progress = now;
        ctx.progress(f);
    }, *cancel);
    if (!done) {
        if (cancel->load()) return failed("cancelled", "cancelled");
        return failed(done.error().message);
    }
    auto name = m_blobs.put("images", done->ext, done->bytes);
    if (!name) return failed("the picture could not be saved: " + name.error().message);
    const std::string url = url_of(*name);
    if (!attach(chat_id, job.id, Json{{"status", "done"}, {"url", url}, {"seed", p.seed}, {"width", p.width}, {"height", p.height}})) {
        m_blobs.remove(*name);
        return jobs::Outcome::failed("the message the picture belonged to was deleted");
    }
    return jobs::Outcome::done(Json{{"url", url}, {"prompt", prompt}, {"full_prompt", p.prompt}, {"negative_prompt", p.negative_prompt},
                                    {"seed", p.seed}, {"width", p.width}, {"height", p.height}, {"steps", p.steps},
                                    {"backend", backend_name}, {"likeness", !req.reference_bytes.empty()}, {"workflow", done->workflow}});
}

Json ImageService::health() {
    const auto s = m_settings.current();
    const std::string backend_name = s->str("media.image_backend");
    if (backend_name == "off") {
        return Json{{"state", "not_configured"}, {"detail", "pictures are off: choose ComfyUI or an A1111-style server in the settings"},
                    {"backend", "off"}};
    }
    const std::string url = s->str(backend_name == "a1111" ? "media.a1111_url" : "media.comfyui_url");
    const std::string name = s->str("media.image_workflow");
    const std::string key = backend_name + "|" + url + "|" + name + "|" + s->str("media.image_checkpoint") + "|" +
                            (s->boolean("media.image_likeness") ? "1" : "0");
    {
        std::lock_guard lock(m_health_mu);
        if (key == m_health_key && std::chrono::steady_clock::now() - m_health_at < std::chrono::seconds(10)) return m_health;
    }
    Json out;
    BackendOptions o;
    o.url = url;
    if (backend_name == "a1111") {
        out = make_a1111_backend(o)->health(Json::object(), s->str("media.image_checkpoint"));
    } else {
        auto tpl = workflow(name);
        if (!tpl) {
            out = Json{{"state", "error"}, {"detail", tpl.error().message}};
        } else {
            const Json graph = name == "default" ? default_workflow(s->boolean("media.image_likeness")) : *tpl;
            out = make_comfyui_backend(o)->health(graph, s->str("media.image_checkpoint"));
        }
    }
    out["backend"] = backend_name;
    out["url"] = url;
    out["workflow"] = name;
    std::lock_guard lock(m_health_mu);
    m_health = out;
    m_health_key = key;
    m_health_at = std::chrono::steady_clock::now();
    return out;
}

bool ImageService::valid_workflow_name(const std::string& name) {
    return !name.empty() && name.size() <= 64 &&
           std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

std::vector<std::string> ImageService::workflow_names() const {
    std::vector<std::string> out = {"default"};
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(m_workflow_dir, ec)) {
        const auto path = e.path();
        if (path.extension() != ".json") continue;
        const std::string stem = path.stem().string();
        if (valid_workflow_name(stem) && stem != "default") out.push_back(stem);
    }
    std::sort(out.begin() + 1, out.end());
    return out;
}

Result<Json> ImageService::workflow(const std::string& name) const {
    if (name == "default") return default_workflow(true);
    if (!valid_workflow_name(name)) {
        return fail(ErrorCode::InvalidInput, "workflow names are 1-64 letters, digits, '-' or '_'", "name");
    }
    std::ifstream in(m_workflow_dir + "/" + name + ".json", std::ios::binary);
    if (!in) return fail(ErrorCode::NotFound, "no workflow '" + name + "' (data/workflows/" + name + ".json)", "name");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    if (text.size() > kMaxWorkflowBytes) return fail(ErrorCode::TooLarge, "workflow '" + name + "' is larger than 1 MB", "name");
    auto graph = parse_json(text, "workflow '" + name + "'", "workflow");
    if (!graph) return std::unexpected(graph.error());
    if (auto ok = validate_workflow(*graph); !ok) {
        return fail(ok.error().code, "workflow '" + name + "': " + ok.error().message, "workflow");
    }
    return *graph;
}

Result<void> ImageService::save_workflow(const std::string& name, const Json& graph) {
    if (!valid_workflow_name(name)) return fail(ErrorCode::InvalidInput, "workflow names are 1-64 letters, digits, '-' or '_'", "name");
    if (name == "default") return fail(ErrorCode::Conflict, "'default' is built in; save yours under another name", "name");
    if (auto ok = validate_workflow(graph); !ok) return ok;
    const std::string text = graph.dump(2);
    if (text.size() > kMaxWorkflowBytes) return fail(ErrorCode::TooLarge, "a workflow may be at most 1 MB", "workflow");
    std::error_code ec;
    std::filesystem::create_directories(m_workflow_dir, ec);
    return write_file_atomic(m_workflow_dir + "/" + name + ".json", text);
}

Result<void> ImageService::delete_workflow(const std::string& name) {
    if (!valid_workflow_name(name)) return fail(ErrorCode::InvalidInput, "workflow names are 1-64 letters, digits, '-' or '_'", "name");
    if (name == "default") return fail(ErrorCode::Conflict, "'default' is built in and cannot be deleted", "name");
    std::error_code ec;
    if (!std::filesystem::remove(m_workflow_dir + "/" + name + ".json", ec)) {
        return fail(ErrorCode::NotFound, "no workflow '" + name + "'", "name");
    }
    return {};
}

}  // namespace mc::image
