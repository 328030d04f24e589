#include "core/settings.hpp"

#include "core/json.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

namespace mc {
namespace {

enum class Type { String, Integer, Number, Boolean };

struct Spec {
    const char* path;
    Type type;
    Json fallback;
    double min = 0;
    double max = 0;  // min == max == 0: no range check.
    std::vector<std::string> choices = {};
    bool secret = false;
    // A string's format: the error (without the key's name), or empty when the value is fine.
    std::string (*check)(const std::string&) = nullptr;
};

std::string check_rpc_servers(const std::string& value) {
    auto list = parse_rpc_servers(value);
    return list ? std::string() : list.error().message;
}

// The schema. The seed's keys first (llm.llama_cpp_url ... media.snac_model_id), then ours.
const std::vector<Spec>& schema() {
    static const std::vector<Spec> specs = {
        {"llm.llama_cpp_url", Type::String, "http://127.0.0.1:8080"},
        {"llm.model_path", Type::String, "models/llm/L3-8B-Stheno-v3.2-Q5_K_M.gguf"},
        {"media.tts_enabled", Type::Boolean, true},
        {"media.tts_port", Type::Integer, 8020, 1, 65535},
        {"media.comfyui_url", Type::String, "http://127.0.0.1:8188"},
        {"media.rvc_cli_path", Type::String, ""},
        {"media.rvc_webui_dir", Type::String, ""},
        {"media.vc_train_script", Type::String, "vc_train_tool.py"},
        {"media.vc_script", Type::String, "rvc_infer.py"},
        {"media.snac_model_id", Type::String, "hubertsiuzdak/snac_24khz"},
        // Ours.
        {"server.api_token", Type::String, "", 0, 0, {}, true},
        {"server.ui_dir", Type::String, ""},
        {"server.allowed_hosts", Type::String, ""},    // Comma-separated extra names for the Host check.
        {"server.allowed_origins", Type::String, ""},  // Comma-separated origins allowed to send changes.
        {"server.https", Type::Boolean, false},        // Serve https (a phone's microphone needs it); at start.
        {"server.tls_cert", Type::String, ""},         // PEM files of one's own; empty = self-signed in data/tls.
        {"server.tls_key", Type::String, ""},
        {"llm.backend", Type::String, "embedded", 0, 0, {"embedded", "remote"}},
        {"llm.remote_mode", Type::String, "chat", 0, 0, {"chat", "completion"}},
        // The model a remote server is asked for ("model"); empty = the first one it lists
        // (Ollama and LM Studio need a name; llama.cpp's server takes any).
        {"llm.remote_model", Type::String, "", 0, 200},
        {"llm.api_key", Type::String, "", 0, 0, {}, true},
        {"llm.context_size", Type::Integer, 8192, 256, 1048576},
        {"llm.threads", Type::Integer, 0, 0, 512},
        {"llm.kv_cache_disk_mb", Type::Integer, 4096, 0, 1048576},
        // The KV cache's type: q8_0 halves its memory and saved states, q4_0 nearly quarters them.
        {"llm.kv_cache_type", Type::String, "f16", 0, 0, {"f16", "q8_0", "q4_0"}},
        // Speculative decoding (embedded engine): a small model of the same vocabulary (e.g. a 1B of
        // the 8B's family) guesses up to draft_max tokens while it is at least draft_p_min sure;
        // fewer than draft_min guesses are not checked. Empty path: off. Relative: to the data folder.
        {"llm.draft_model_path", Type::String, "", 0, 4096},
        {"llm.draft_max", Type::Integer, 8, 1, 32},
        {"llm.draft_min", Type::Integer, 0, 0, 32},
        {"llm.draft_p_min", Type::Number, 0.5, 0, 1},
        // Guess only as many as pay off on this machine (measured); false: always draft_max.
        {"llm.draft_adaptive", Type::Boolean, true},
        // Replies of different chats decoded together in one batch (embedded engine); 1 = in turn.
        {"llm.parallel", Type::Integer, 4, 1, 8},
        // The model's weights in 2 MiB pages (embedded engine, on the CPU): decode a few per cent
        // faster, loading reads the file; false: mapped from the file.
        {"llm.huge_pages", Type::Boolean, true},
        {"llm.max_tokens", Type::Integer, 400, 1, 32768},
        {"llm.max_message_chars", Type::Integer, 16000, 1, 1000000},
        {"llm.temperature", Type::Number, 0.8, 0, 5},
        {"llm.top_k", Type::Integer, 40, 0, 1000},
        {"llm.top_p", Type::Number, 0.95, 0, 1},
        {"llm.min_p", Type::Number, 0.05, 0, 1},
        {"llm.repeat_penalty", Type::Number, 1.1, 0, 5},
        // GPUs and clusters (a GPU build: make run GPU=vulkan|cuda). -1 = every layer the devices take.
        {"llm.gpu_layers", Type::Integer, -1, -1, 999},
        // "host:port,host:port": ggml-rpc-server processes that hold the model's layers (llm/cluster_engine).
        {"llm.rpc_servers", Type::String, "", 0, 4096, {}, false, check_rpc_servers},
        {"llm.llama_server_path", Type::String, "", 0, 4096},  // Empty: the llama-server built beside mycandy.
        // Speech (extends the seed's media.tts_enabled / media.tts_port).
        {"media.tts_engine", Type::String, "espeak", 0, 0, {"espeak", "embedded", "http"}},
        {"media.tts_max_chars", Type::Integer, 4000, 1, 100000},
        {"media.espeak_path", Type::String, "espeak-ng"},
        {"media.tts_url", Type::String, ""},  // Empty: http://127.0.0.1:<media.tts_port>.
        {"media.tts_model", Type::String, "tts-1"},
        {"media.tts_voice", Type::String, ""},
        {"media.tts_api_key", Type::String, "", 0, 0, {}, true},
        {"media.tts_model_file", Type::String, ""},   // Embedded: the TTS backbone GGUF.
        {"media.tts_mmproj_file", Type::String, ""},  // Embedded: its mmproj GGUF.
        {"media.tts_gpu_layers", Type::Integer, -1, -1, 999},  // Embedded, GPU build: -1 = all.
        // Pictures: ComfyUI (the seed's), an A1111/Forge/SD.Next server, or off.
        {"media.image_backend", Type::String, "comfyui", 0, 0, {"comfyui", "a1111", "off"}},
        {"media.image_instruct", Type::Boolean, true},  // Tell the model how to ask for a picture.
        {"media.a1111_url", Type::String, "http://127.0.0.1:7860"},
        {"media.image_workflow", Type::String, "default", 1, 64},  // "default" or data/workflows/<name>.json.
        {"media.image_checkpoint", Type::String, "ponyDiffusionV6XL_v6StartWithThisOne.safetensors", 0, 255},
        {"media.image_quality_tags", Type::String, "score_9, score_8_up, score_7_up", 0, 4000},
        {"media.image_negative", Type::String,
         "score_4, score_5, score_6, worst quality, low quality, lowres, bad anatomy, bad hands, text, watermark, signature", 0, 4000},
        {"media.image_width", Type::Integer, 832, 64, 2048},
        {"media.image_height", Type::Integer, 1216, 64, 2048},
        {"media.image_steps", Type::Integer, 25, 1, 150},
        {"media.image_cfg", Type::Number, 6.5, 1, 30},
        {"media.image_sampler", Type::String, "euler_ancestral", 1, 64},
        {"media.image_scheduler", Type::String, "normal", 1, 64},
        {"media.image_likeness", Type::Boolean, true},  // IPAdapter fed the character's avatar (ComfyUI).
        {"media.image_likeness_weight", Type::Number, 0.7, 0, 2},
        {"media.image_max_mb", Type::Integer, 32, 1, 200},
        {"media.image_timeout_s", Type::Integer, 600, 10, 7200},
        // A voice of their own (voice/rvc): the person's RVC tools as command templates (no shell).
        {"media.vc_train_command", Type::String,
         "python3 {vc_train_script} --sample {sample} --output {output} --epochs {epochs} --name {name}", 0, 4096},
        {"media.vc_command", Type::String, "python3 {vc_script} --input {input} --output {output} --model {model}", 0, 4096},
        {"media.vc_train_epochs", Type::Integer, 20, 1, 1000},
        {"media.vc_train_timeout_s", Type::Integer, 21600, 5, 172800},
        {"media.vc_timeout_s", Type::Integer, 60, 1, 3600},
        {"media.vc_convert", Type::Boolean, true},  // Trained voices convert spoken replies.
        // Speech to text (stt/): whisper.cpp in-process, an OpenAI-compatible server, or off.
        {"stt.engine", Type::String, "embedded", 0, 0, {"embedded", "http", "off"}},
        {"stt.model_path", Type::String, "models/stt/ggml-base.bin", 0, 4096},
        {"stt.vad_model_path", Type::String, "models/stt/ggml-silero-v5.1.2.bin", 0, 4096},  // "": no VAD.
        {"stt.vad_threshold", Type::Number, 0.5, 0.01, 0.99},
        {"stt.language", Type::String, "auto", 0, 0, {"auto", "de", "en"}},
        {"stt.max_seconds", Type::Integer, 1800, 1, 14400},
        {"stt.threads", Type::Integer, 0, 0, 512},
        {"stt.use_gpu", Type::Boolean, true},  // A GPU build runs whisper.cpp on the GPU.
        {"stt.url", Type::String, ""},  // http engine: the server's base URL.
        {"stt.model", Type::String, "whisper-1", 0, 200},
        {"stt.api_key", Type::String, "", 0, 0, {}, true},
        {"stt.auto_send", Type::Boolean, false},  // UI: send the recognized text at once.
        // Voice calls (call/): when an utterance ends, what counts as speech, how long a dropped
        // connection keeps its call.
        {"call.silence_ms", Type::Integer, 600, 200, 5000},
        {"call.min_speech_ms", Type::Integer, 160, 32, 2000},
        {"call.max_utterance_s", Type::Integer, 30, 3, 120},
        {"call.reconnect_s", Type::Integer, 20, 0, 600},
        {"chat.user_name", Type::String, "User", 0, 100},
        {"memory.auto_summary", Type::Boolean, true},
        {"memory.summary_min_messages", Type::Integer, 6, 2, 10000},
        {"memory.summary_max_tokens", Type::Integer, 300, 32, 4096},
        {"memory.summary_instruction", Type::String, "", 0, 16000},
        {"memory.auto_facts", Type::Boolean, true},
        {"memory.facts_token_budget", Type::Integer, 200, 0, 8192},
        {"ui.language", Type::String, "auto", 0, 0, {"auto", "en", "de"}},
        {"logging.level", Type::String, "info", 0, 0, {"debug", "info", "warn", "error"}},
    };
    return specs;
}

const char* type_name(Type type) {
    switch (type) {
        case Type::String: return "a string";
        case Type::Integer: return "an integer";
        case Type::Number: return "a number";
        case Type::Boolean: return "true or false";
    }
    return "?";
}

// The same for a client that translates it.
const char* type_kind(Type type) {
    switch (type) {
        case Type::String: return "string";
        case Type::Integer: return "integer";
        case Type::Number: return "number";
        case Type::Boolean: return "boolean";
    }
    return "?";
}

bool type_ok(Type type, const Json& v) {
    switch (type) {
        case Type::String: return v.is_string();
        case Type::Integer: return v.is_number_integer() || v.is_number_unsigned();
        case Type::Number: return v.is_number();
        case Type::Boolean: return v.is_boolean();
    }
    return false;
}

Json::json_pointer pointer(const char* dotted) {
    std::string p = "/";
    for (const char* c = dotted; *c; ++c) p += (*c == '.') ? '/' : *c;
    return Json::json_pointer(p);
}

const Spec* find_spec(const std::string& dotted) {
    for (const auto& s : schema()) {
        if (dotted == s.path) return &s;
    }
    return nullptr;
}

bool is_known_prefix(const std::string& dotted) {
    for (const auto& s : schema()) {
        std::string p = s.path;
        if (p.size() > dotted.size() && p.compare(0, dotted.size(), dotted) == 0 && p[dotted.size()] == '.') {
            return true;
        }
    }
    return false;
}

// Walks a document; every leaf must be a known key, every object a known section.
void collect_unknown(const Json& node, const std::string& prefix, std::vector<std::string>& unknown) {
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
        if (find_spec(key)) continue;
        if (it->is_object() && is_known_prefix(key)) {
            collect_unknown(*it, key, unknown);
        } else {
            unknown.push_back(key);
        }
    }
}

}  // namespace

Result<std::vector<std::string>> parse_rpc_servers(std::string_view list) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= list.size()) {
        size_t end = list.find(',', start);
        if (end == std::string_view::npos) end = list.size();
        std::string_view item = list.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        start = end + 1;
        if (item.empty()) {
            if (end == list.size()) break;
            continue;
        }
        const size_t colon = item.rfind(':');
        const std::string shown(item.substr(0, 80));
        if (colon == std::string_view::npos || colon == 0) {
            return fail(ErrorCode::InvalidInput, "'" + shown + "' is not host:port");
        }
        std::string_view host = item.substr(0, colon);
        const std::string_view port = item.substr(colon + 1);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        bool host_ok = host.size() <= 253;
        for (char c : host) {
            host_ok = host_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':');
        }
        if (!host_ok || host.empty()) return fail(ErrorCode::InvalidInput, "'" + shown + "' has no valid host name or address");
        int p = 0;
        bool port_ok = !port.empty() && port.size() <= 5;
        for (char c : port) {
            port_ok = port_ok && c >= '0' && c <= '9';
            if (port_ok) p = p * 10 + (c - '0');
        }
        if (!port_ok || p < 1 || p > 65535) return fail(ErrorCode::InvalidInput, "'" + shown + "' needs a port between 1 and 65535");
        if (out.size() == 16) return fail(ErrorCode::InvalidInput, "at most 16 RPC servers");
        out.emplace_back(item);
    }
    return out;
}

Settings::Settings() {
    for (const auto& s : schema()) m_doc[pointer(s.path)] = s.fallback;
}

Json Settings::redacted() const {
    Json out = m_doc;
    for (const auto& s : schema()) {
        if (s.secret && !out[pointer(s.path)].get<std::string>().empty()) out[pointer(s.path)] = kRedacted;
    }
    return out;
}

std::string Settings::str(const char* path) const { return m_doc.at(pointer(path)).get<std::string>(); }
long long Settings::integer(const char* path) const { return m_doc.at(pointer(path)).get<long long>(); }
double Settings::number(const char* path) const { return m_doc.at(pointer(path)).get<double>(); }
bool Settings::boolean(const char* path) const { return m_doc.at(pointer(path)).get<bool>(); }

Result<SettingsLoad> validate_settings(const Json& doc) {
    if (!doc.is_object()) return fail(ErrorCode::InvalidInput, "settings must be a JSON object");
    SettingsLoad out;
    Json result = Settings().json();
    // Every problem is collected, so the settings panel can mark each bad field at once.
    Problems problems;
    auto figure = [](double x) {
        std::ostringstream o;
        o << std::setprecision(15) << x;  // 1048576 reads as such, not as 1.04858e+06.
        return o.str();
    };
    std::set<std::string> bad_sections;
    for (const auto& s : schema()) {
        const auto ptr = pointer(s.path);
        // A section that is present but not an object ("llm": 5) is a type error on the section.
        std::string section = s.path;
        section = section.substr(0, section.find('.'));
        if (doc.contains(section) && !doc[section].is_object()) {
            if (bad_sections.insert(section).second) {
                problems.invalid(section, "settings key '" + section + "' must be an object (got " + json_kind(doc[section]) + ")", "type",
                        {{"expected", "object"}, {"got", json_type_word(doc[section])}});
            }
            continue;
        }
        if (!doc.contains(ptr)) continue;
        const Json& v = doc.at(ptr);
        if (!type_ok(s.type, v)) {
            problems.invalid(s.path, std::string("settings key '") + s.path + "' must be " + type_name(s.type) + " (got " + json_kind(v) + ")",
                    "type", {{"expected", type_kind(s.type)}, {"got", json_type_word(v)}});
            continue;
        }
        if (s.type == Type::String) {
            // Strings: `max` is a length in bytes (default 4096), so a name or path cannot grow
            // without bound (the user's name becomes a stop string of every turn).
            const size_t limit = s.max != 0 ? static_cast<size_t>(s.max) : 4096;
            if (v.get_ref<const std::string&>().size() > limit) {
                problems.invalid(s.path, std::string("settings key '") + s.path + "' must be at most " + std::to_string(limit) + " bytes long",
                        "too_long", {{"max", std::to_string(limit)}, {"unit", "bytes"}});
                continue;
            }
            if (v.get_ref<const std::string&>().size() < static_cast<size_t>(s.min)) {
                problems.invalid(s.path, std::string("settings key '") + s.path + "' must not be empty", "empty");
                continue;
            }
        } else if ((s.min != 0 || s.max != 0) && (v.get<double>() < s.min || v.get<double>() > s.max)) {
            problems.invalid(s.path, std::string("settings key '") + s.path + "' must be between " + figure(s.min) + " and " + figure(s.max),
                    "range", {{"min", figure(s.min)}, {"max", figure(s.max)}});
            continue;
        }
        if (s.check) {
            if (const std::string why = s.check(v.get<std::string>()); !why.empty()) {
                problems.invalid(s.path, std::string("settings key '") + s.path + "': " + why, "invalid", {{"detail", why}});
                continue;
            }
        }
        if (!s.choices.empty()) {
            bool found = false;
            for (const auto& c : s.choices) found = found || v.get<std::string>() == c;
            if (!found) {
                std::string list;
                for (const auto& c : s.choices) list += (list.empty() ? "" : ", ") + c;
                problems.invalid(s.path, std::string("settings key '") + s.path + "' must be one of: " + list, "choice", {{"choices", list}});
                continue;
            }
        }
        result[ptr] = v;
    }
    if (!problems.empty()) return std::unexpected(problems.error());
    std::vector<std::string> unknown;
    collect_unknown(doc, "", unknown);
    for (const auto& k : unknown) out.warnings.push_back("unknown settings key '" + k + "' is ignored");
    out.settings = Settings(std::move(result));
    return out;
}

Result<SettingsLoad> load_settings_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (!std::filesystem::exists(path)) return validate_settings(Json::object());
        return fail(ErrorCode::Io, "cannot read settings file " + path);
    }
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string text = buf.str();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return validate_settings(Json::object());
    auto parsed = parse_json(text, "settings file " + path, "");
    if (!parsed) return std::unexpected(parsed.error());
    const Json doc = std::move(*parsed);
    auto loaded = validate_settings(doc);
    if (!loaded) {
        loaded.error().message = "settings file " + path + ": " + loaded.error().message;
    }
    return loaded;
}

SettingsStore::SettingsStore(std::string path, Settings initial)
    : m_path(std::move(path)), m_current(std::make_shared<const Settings>(std::move(initial))) {}

std::shared_ptr<const Settings> SettingsStore::current() const {
    std::lock_guard lock(m_mutex);
    return m_current;
}

Result<std::shared_ptr<const Settings>> SettingsStore::patch(const Json& patch) {
    if (!patch.is_object()) return fail(ErrorCode::InvalidInput, "settings patch must be a JSON object");
    std::vector<std::string> unknown;
    collect_unknown(patch, "", unknown);
    if (!unknown.empty()) {
        return fail_because(ErrorCode::InvalidInput, "unknown settings key '" + unknown.front() + "'", unknown.front(), "unknown_field");
    }
    std::lock_guard lock(m_mutex);
    Json doc = m_current->json();
    Json p = patch;
    // A secret sent back redacted means "unchanged"; null means "back to the default".
    for (const auto& s : schema()) {
        const auto ptr = pointer(s.path);
        if (!p.contains(ptr)) continue;
        if (s.secret && p.at(ptr).is_string() && p.at(ptr).get<std::string>() == kRedacted) {
            p[ptr] = doc.at(ptr);
        } else if (p.at(ptr).is_null()) {
            p[ptr] = s.fallback;
        }
    }
    doc.merge_patch(p);
    auto loaded = validate_settings(doc);
    if (!loaded) return std::unexpected(loaded.error());
    if (auto w = write_file_atomic(m_path, loaded->settings.json().dump(2) + "\n"); !w) {
        return std::unexpected(w.error());
    }
    m_current = std::make_shared<const Settings>(std::move(loaded->settings));
    return m_current;
}

Result<void> write_file_atomic(const std::string& path, const std::string& content) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path target(path);
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(ErrorCode::Io, "cannot write " + tmp + ": " + std::strerror(errno));
    size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const std::string why = std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            return fail(ErrorCode::Io, "cannot write " + tmp + ": " + why);
        }
        done += static_cast<size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        return fail(ErrorCode::Io, "cannot replace " + path + ": " + why);
    }
    return {};
}

}  // namespace mc
