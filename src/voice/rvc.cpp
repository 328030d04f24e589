#include "voice/rvc.hpp"

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/log.hpp"
#include "core/process.hpp"
#include "core/text.hpp"
#include "voice/wav.hpp"

namespace mc::voice {
namespace fs = std::filesystem;

namespace {

constexpr const char* kKind = "voice_training";

// Character ids are generated hex; anything else never becomes a file name.
bool safe_id(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    return true;
}

// The folder a relative tool path is found from: the RVC WebUI folder when set.
std::string resolve_in(const std::string& dir, const std::string& path) {
    if (path.empty() || dir.empty() || fs::path(path).is_absolute()) return path;
    return (fs::path(dir) / path).string();
}

std::map<std::string, std::string> tool_values(const Settings& s) {
    return {{"vc_train_script", s.str("media.vc_train_script")},
            {"vc_script", s.str("media.vc_script")},
            {"rvc_cli_path", s.str("media.rvc_cli_path")},
            {"rvc_webui_dir", s.str("media.rvc_webui_dir")}};
}

// The command, filled, with its program and the tool files it names checked: a missing or
// non-executable trainer fails at once, naming it.
Result<std::vector<std::string>> build_command(const Settings& s, const char* key, std::map<std::string, std::string> values) {
    const std::string templ = s.str(key);
    if (trim(templ).empty()) {
        return fail(ErrorCode::Unavailable, std::string(key) + " is empty: set it to the command that runs your RVC tool", key);
    }
    auto args = split_command(templ, key);
    if (!args) return std::unexpected(args.error());
    const std::string webui = s.str("media.rvc_webui_dir");
    if (!webui.empty()) {
        std::error_code ec;
        if (!fs::is_directory(webui, ec)) {
            return fail(ErrorCode::Unavailable, "media.rvc_webui_dir '" + webui + "' is not a folder", "media.rvc_webui_dir");
        }
    }
    // Tool files the template uses must exist (relative ones in the WebUI folder).
    for (const char* tool : {"vc_train_script", "vc_script", "rvc_cli_path"}) {
        const std::string ph = std::string("{") + tool + "}";
        bool used = false;
        for (const auto& a : *args) used = used || a.find(ph) != std::string::npos;
        if (!used) continue;
        const std::string path = values[tool];
        std::error_code ec;
        if (path.empty() || !fs::is_regular_file(resolve_in(webui, path), ec)) {
            return fail(ErrorCode::Unavailable,
                        std::string("media.") + tool + " '" + path + "' was not found" + (webui.empty() ? "" : " in " + webui),
                        std::string("media.") + tool);
        }
    }
    auto filled = fill_command(*args, values, key);
    if (!filled) return std::unexpected(filled.error());
    const std::string program = (*filled)[0];
    std::string resolved = program;
    if (program.find('/') != std::string::npos) resolved = resolve_in(webui, program);
    if (!find_program(resolved)) {
        std::error_code ec;
        const bool exists = program.find('/') != std::string::npos && fs::exists(resolved, ec);
        return fail(ErrorCode::Unavailable,
                    "the program '" + program + "' in " + key + (exists ? " is not executable" : " was not found"), key);
    }
    (*filled)[0] = resolved;
    return filled;
}

// The last non-empty line of a tool's output, shortened, for an error message.
std::string last_line(const std::string& text) {
    size_t end = text.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return {};
    size_t start = text.find_last_of("\r\n", end);
    std::string line = text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
    return sanitize_utf8(utf8_prefix(line, 300));
}

std::string describe_exit(const std::string& program, const ProcessResult& r) {
    std::string why = r.exit_code >= 0 ? "exited with code " + std::to_string(r.exit_code)
                                       : "was killed by signal " + std::to_string(r.term_signal);
    std::string last = last_line(r.err);
    if (last.empty()) last = last_line(r.out);
    return fs::path(program).filename().string() + " " + why + (last.empty() ? "" : ": " + last);
}

}  // namespace

Result<std::vector<std::string>> split_command(const std::string& command, const std::string& field) {
    std::vector<std::string> out;
    std::string cur;
    bool in_quotes = false, have = false;
    for (size_t i = 0; i < command.size(); ++i) {
        const char c = command[i];
        if (in_quotes) {
            if (c == '"') {
                in_quotes = false;
            } else if (c == '\\' && i + 1 < command.size() && (command[i + 1] == '"' || command[i + 1] == '\\')) {
                cur.push_back(command[++i]);
            } else {
                cur.push_back(c);
            }
        } else if (c == '"') {
            in_quotes = true;
            have = true;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (have) out.push_back(std::move(cur));
            cur.clear();
            have = false;
        } else {
            cur.push_back(c);
            have = true;
        }
    }
    if (in_quotes) return fail(ErrorCode::InvalidInput, field + " has a quote that is not closed", field);
    if (have) out.push_back(std::move(cur));
    if (out.empty()) return fail(ErrorCode::InvalidInput, field + " is empty", field);
    return out;
}

Result<std::vector<std::string>> fill_command(const std::vector<std::string>& args, const std::map<std::string, std::string>& values,
                                              const std::string& field) {
    std::vector<std::string> out;
    out.reserve(args.size());
    for (const auto& a : args) {
        std::string r;
        size_t i = 0;
        while (i < a.size()) {
            const size_t open = a.find('{', i);
            if (open == std::string::npos) {
                r.append(a, i);
                break;
            }
            const size_t close = a.find('}', open);
            if (close == std::string::npos) {
                r.append(a, i);
                break;
            }
            r.append(a, i, open - i);
            const std::string key = a.substr(open + 1, close - open - 1);
            auto it = values.find(key);
            if (it == values.end()) {
                std::string known;
                for (const auto& [k, v] : values) known += (known.empty() ? "{" : ", {") + k + "}";
                return fail(ErrorCode::InvalidInput, field + " uses {" + sanitize_utf8(utf8_prefix(key, 40)) + "}, which is not one of " + known, field);
            }
            r += it->second;
            i = close + 1;
        }
        out.push_back(std::move(r));
    }
    return out;
}

namespace {

// Case-insensitive search for a lower-case word.
size_t find_word(std::string_view s, std::string_view word, size_t from = 0) {
    for (size_t i = from; i + word.size() <= s.size(); ++i) {
        size_t k = 0;
        while (k < word.size() && std::tolower(static_cast<unsigned char>(s[i + k])) == word[k]) ++k;
        if (k == word.size()) return i;
    }
    return std::string_view::npos;
}

void skip_spaces(std::string_view s, size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// A non-negative decimal number at i ("12", "0.45", ".5"); advances i past it.
std::optional<double> number_at(std::string_view s, size_t& i) {
    const size_t start = i;
    bool digits = false, dot = false;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || (s[i] == '.' && !dot))) {
        if (s[i] == '.') dot = true;
        else digits = true;
        ++i;
    }
    if (!digits || i - start > 15) {
        i = start;
        return std::nullopt;
    }
    return std::strtod(std::string(s.substr(start, i - start)).c_str(), nullptr);
}

}  // namespace

std::optional<double> training_progress(std::string_view line) {
    const std::string_view s = line.substr(0, 1000);
    // "epoch 3/20", "Epoch: 3 / 20", "epoch 3 of 20"
    for (size_t at = find_word(s, "epoch"); at != std::string_view::npos; at = find_word(s, "epoch", at + 5)) {
        size_t i = at + 5;
        if (i < s.size() && (s[i] == 's' || s[i] == 'S')) ++i;
        skip_spaces(s, i);
        if (i < s.size() && (s[i] == ':' || s[i] == '=')) ++i;
        skip_spaces(s, i);
        const auto a = number_at(s, i);
        if (!a) continue;
        skip_spaces(s, i);
        if (i < s.size() && s[i] == '/') ++i;
        else if (find_word(s.substr(i, 2), "of") == 0) i += 2;
        else continue;
        skip_spaces(s, i);
        const auto b = number_at(s, i);
        if (b && *b > 0 && *a <= *b) return *a / *b;
        return std::nullopt;
    }
    // "progress: 0.45", "progress=45"
    if (size_t at = find_word(s, "progress"); at != std::string_view::npos) {
        size_t i = at + 8;
        skip_spaces(s, i);
        if (i < s.size() && (s[i] == ':' || s[i] == '=')) {
            ++i;
            skip_spaces(s, i);
            if (const auto v = number_at(s, i)) {
                if (*v <= 1.0) return *v;
                if (*v <= 100.0) return *v / 100.0;
                return std::nullopt;
            }
        }
    }
    // "45%", "45.5 %"
    for (size_t pct = s.find('%'); pct != std::string_view::npos; pct = s.find('%', pct + 1)) {
        size_t end = pct;
        while (end > 0 && s[end - 1] == ' ') --end;
        size_t start = end;
        while (start > 0 && (std::isdigit(static_cast<unsigned char>(s[start - 1])) || s[start - 1] == '.')) --start;
        if (start == end) continue;
        size_t i = start;
        const auto v = number_at(s, i);
        if (v && i == end && *v <= 100.0) return *v / 100.0;
    }
    return std::nullopt;
}

VoiceTrainer::VoiceTrainer(SettingsStore& settings, store::CharacterStore& characters, store::JobStore& jobs, std::string data_dir,
                           std::function<std::string(const std::string&)> blob_path)
    : m_settings(settings), m_characters(characters), m_jobs(jobs), m_data_dir(std::move(data_dir)),
      m_blob_path(std::move(blob_path)), m_runner(jobs, store::KindFilter{{kKind}, true}) {
    m_runner.handle(kKind, [this](const Job& job, jobs::JobContext& ctx) { return run(job, ctx); });
}

VoiceTrainer::~VoiceTrainer() { stop(); }

void VoiceTrainer::start() {
    // The runner queues jobs a previous process left running; their characters say so too.
    if (auto active = m_jobs.active_of_kind(kKind)) {
        for (const auto& j : *active) {
            if (j.character_id) (void)m_characters.set_voice_status(*j.character_id, "queued", "");
        }
    }
    m_runner.start();
}

void VoiceTrainer::stop() { m_runner.stop(); }

std::string VoiceTrainer::models_dir() const { return m_data_dir + "/outputs/models"; }

std::optional<std::string> trained_model(const std::string& data_dir, const std::string& character_id) {
    if (!safe_id(character_id)) return std::nullopt;
    const std::string p = data_dir + "/outputs/models/" + character_id + ".pth";
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0) return p;
    return std::nullopt;
}

std::optional<std::string> VoiceTrainer::model_path(const std::string& character_id) const {
    return trained_model(m_data_dir, character_id);
}

Result<Job> VoiceTrainer::train(const std::string& character_id, std::optional<int> epochs) {
    auto c = m_characters.get(character_id);
    if (!c) return std::unexpected(c.error());
    if (!c->voice_sample_file) {
        return fail(ErrorCode::InvalidInput, "the character has no voice sample: upload one first", "voice_sample");
    }
    if (epochs && (*epochs < 1 || *epochs > 1000)) return fail(ErrorCode::InvalidInput, "epochs must be between 1 and 1000", "epochs");
    if (!safe_id(character_id)) return fail(ErrorCode::InvalidInput, "character id cannot name a model file", "id");
    auto active = m_jobs.active_of_kind(kKind, character_id);
    if (!active) return std::unexpected(active.error());
    if (!active->empty()) {
        return fail(ErrorCode::Conflict, "a voice training for this character is already " + active->front().status + " (job " +
                                             active->front().id + "): cancel it first", "job");
    }
    const int n = epochs ? *epochs : static_cast<int>(m_settings.current()->integer("media.vc_train_epochs"));
    // Before the job exists: the runner may start (and end) it at once, and its state must win.
    if (auto st = m_characters.set_voice_status(character_id, "queued", ""); !st) return std::unexpected(st.error());
    auto job = m_runner.submit(kKind, Json{{"epochs", n}, {"sample", *c->voice_sample_for_engines()}}, character_id, std::nullopt);
    if (!job) {
        (void)m_characters.set_voice_status(character_id, c->voice_status, c->voice_error);
        return job;
    }
    log::info("voice training queued for character ", character_id, " (job ", job->id, ", ", n, " epochs)");
    return job;
}

Result<std::optional<Job>> VoiceTrainer::latest(const std::string& character_id) {
    auto c = m_characters.get(character_id);
    if (!c) return std::unexpected(c.error());
    return m_jobs.latest_of_kind(kKind, character_id);
}

Result<Job> VoiceTrainer::cancel(const std::string& job_id) {
    auto before = m_jobs.get(job_id);
    if (!before) return before;
    const bool active = before->status == "queued" || before->status == "running";
    const std::string id = before->character_id.value_or("");
    // The character says so before the job does: whoever sees the job cancelled (the editor's
    // progress stream) and reads the character finds it settled, not still "running".
    if (active && !id.empty()) (void)m_characters.set_voice_status(id, model_path(id) ? "done" : "none", "training cancelled");
    auto j = m_runner.cancel(job_id);
    if (!j && active && !id.empty()) {
        // It ended on its own meanwhile: its own outcome stands.
        if (auto now = m_jobs.get(job_id); now && now->status == "done") (void)m_characters.set_voice_status(id, "done", "");
        else if (now && now->status == "failed") (void)m_characters.set_voice_status(id, "failed", now->error);
    }
    return j;
}

void VoiceTrainer::cancel_for(const std::string& character_id) {
    auto active = m_jobs.active_of_kind(kKind, character_id);
    if (!active) return;
    for (const auto& j : *active) (void)cancel(j.id);
}

void VoiceTrainer::remove_files(const std::string& character_id) {
    if (!safe_id(character_id)) return;
    std::error_code ec;
    fs::remove(models_dir() + "/" + character_id + ".pth", ec);
    fs::remove(models_dir() + "/" + character_id + ".training.pth", ec);
}

jobs::Outcome VoiceTrainer::run(const Job& job, jobs::JobContext& ctx) {
    const std::string id = job.character_id.value_or("");
    auto finish = [&](const std::string& status, const std::string& error) {
        // The character may be gone (deleted while its training ran): nothing to update then.
        (void)m_characters.set_voice_status(id, status, error);
    };
    auto failed = [&](const std::string& why) {
        log::warn("voice training of character ", id, " failed: ", why);
        finish("failed", why);
        return jobs::Outcome::failed(why);
    };
    auto c = m_characters.get(id);
    if (!c) return jobs::Outcome::failed("the character was deleted");
    if (!safe_id(id)) return failed("character id cannot name a model file");
    const std::string sample_blob = job.payload.value("sample", std::string());
    if (!c->voice_sample_file || c->voice_sample_for_engines() != sample_blob) {
        return failed("the voice sample changed after this training was queued: train again");
    }
    finish("running", "");
    const auto settings = m_settings.current();
    std::error_code ec;
    fs::create_directories(models_dir(), ec);
    fs::create_directories(m_data_dir + "/logs", ec);
    const std::string output = models_dir() + "/" + id + ".training.pth";
    fs::remove(output, ec);
    auto values = tool_values(*settings);
    values["sample"] = m_blob_path(sample_blob);
    values["output"] = output;
    values["epochs"] = std::to_string(job.payload.value("epochs", 20));
    values["name"] = id;
    auto argv = build_command(*settings, "media.vc_train_command", values);
    if (!argv) return failed(argv.error().message);

    const std::string log_path = m_data_dir + "/logs/voice-training-" + id + ".log";
    std::ofstream log_file(log_path, std::ios::app);
    log_file << "---- job " << job.id << ": " << (*argv)[0];
    for (size_t i = 1; i < argv->size(); ++i) log_file << " '" << (*argv)[i] << "'";
    log_file << "\n";
    log_file.flush();

    ProcessOptions o;
    o.own_group = true;
    o.timeout = std::chrono::seconds(settings->integer("media.vc_train_timeout_s"));
    o.cancel = ctx.cancel_flag();
    o.nice = 10;  // Below the chat: a training takes hours, a reply must not wait for it.
    o.working_dir = settings->str("media.rvc_webui_dir");
    double last = -1;
    o.on_line = [&](std::string_view line) {
        log_file << line << "\n";
        log_file.flush();
        if (auto p = training_progress(line); p && std::abs(*p - last) >= 0.001) {
            last = *p;
            ctx.progress(std::min(0.99, *p));  // 1.0 only once the model is there.
        }
    };
    log::info("voice training of character ", id, " started: ", (*argv)[0], " (log: ", log_path, ")");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run_process(*argv, o);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_file << "---- " << (r ? "exit " + std::to_string(r->exit_code) : r.error().message) << " after "
             << static_cast<long long>(seconds) << " s\n";
    if (ctx.cancelled()) {
        fs::remove(output, ec);
        // The server is stopping (the job was not cancelled by anyone): it starts over next time.
        if (auto now = m_jobs.get(job.id); now && now->status == "running") {
            log::info("voice training of character ", id, " interrupted by shutdown; it starts again at the next start");
            finish("queued", "");
            return jobs::Outcome::retry();
        }
        log::info("voice training of character ", id, " cancelled");
        finish(model_path(id) ? "done" : "none", "training cancelled");
        return jobs::Outcome::failed("cancelled");
    }
    if (!r) {
        fs::remove(output, ec);
        const std::string why = r.error().message.find("did not finish") != std::string::npos
                                    ? "the trainer did not finish within media.vc_train_timeout_s (" +
                                          std::to_string(settings->integer("media.vc_train_timeout_s")) + " s)"
                                    : r.error().message;
        return failed(why);
    }
    if (r->exit_code != 0) {
        fs::remove(output, ec);
        return failed(describe_exit((*argv)[0], *r) + " (log: " + log_path + ")");
    }
    if (!fs::is_regular_file(output, ec) || fs::file_size(output, ec) == 0) {
        return failed(fs::path((*argv)[0]).filename().string() + " finished but wrote no model to {output} (log: " + log_path + ")");
    }
    const std::string final_path = models_dir() + "/" + id + ".pth";
    fs::rename(output, final_path, ec);
    if (ec) return failed("cannot store the model at " + final_path + ": " + ec.message());
    finish("done", "");
    log::info("voice training of character ", id, " done in ", static_cast<long long>(seconds), " s");
    return jobs::Outcome::done(Json{{"model", "outputs/models/" + id + ".pth"}, {"seconds", std::round(seconds * 10) / 10}});
}

Result<Audio> rvc_convert(const Settings& settings, const std::string& data_dir, const std::string& model, const Audio& input,
                          std::shared_ptr<std::atomic<bool>> cancel) {
    std::error_code ec;
    const std::string dir = data_dir + "/tmp";
    fs::create_directories(dir, ec);
    const std::string stem = dir + "/vc-" + random_hex(8);
    const std::string in_path = stem + "-in.wav", out_path = stem + "-out.wav";
    struct Cleanup {
        std::string a, b;
        ~Cleanup() {
            std::error_code e;
            fs::remove(a, e);
            fs::remove(b, e);
        }
    } cleanup{in_path, out_path};
    {
        std::ofstream f(in_path, std::ios::binary);
        const std::string bytes = encode_wav(input);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!f) return fail(ErrorCode::Io, "cannot write " + in_path);
    }
    auto values = tool_values(settings);
    values["input"] = in_path;
    values["output"] = out_path;
    values["model"] = model;
    auto argv = build_command(settings, "media.vc_command", values);
    if (!argv) return fail(ErrorCode::Unavailable, argv.error().message, argv.error().field);
    ProcessOptions o;
    o.own_group = true;
    o.timeout = std::chrono::seconds(settings.integer("media.vc_timeout_s"));
    o.cancel = std::move(cancel);
    o.working_dir = settings.str("media.rvc_webui_dir");
    o.max_output = 1u << 20;
    auto r = run_process(*argv, o);
    if (!r) return fail(ErrorCode::Unavailable, "voice conversion: " + r.error().message);
    if (r->exit_code != 0) return fail(ErrorCode::Unavailable, "voice conversion: " + describe_exit((*argv)[0], *r));
    std::ifstream f(out_path, std::ios::binary);
    if (!f) return fail(ErrorCode::InvalidInput, "voice conversion wrote no file at {output}");
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto wav = parse_wav(bytes);
    if (!wav) return fail(ErrorCode::InvalidInput, "voice conversion wrote no WAV: " + wav.error().message);
    if (wav->samples.empty()) return fail(ErrorCode::InvalidInput, "voice conversion wrote an empty WAV");
    return wav;
}

}  // namespace mc::voice
