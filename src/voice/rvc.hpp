// voice/rvc: the seed's voice of their own — RVC training jobs and RVC conversion of spoken
// sentences — through the person's own RVC tools, run as child programs (core/process: no shell,
// arguments as a list, a process group of their own that a cancel or timeout kills whole).
//
// The command lines are templates in settings (`media.vc_train_command`, `media.vc_command`): split
// into arguments at spaces (double quotes keep spaces), then `{placeholder}`s replaced inside each
// argument — so a path with spaces stays one argument and nothing is ever parsed by a shell.
// Training: `{sample}` (the character's normalized voice sample, WAV), `{output}` (where the model
// must be written), `{epochs}`, `{name}` (the character id), `{vc_train_script}`, `{rvc_cli_path}`,
// `{rvc_webui_dir}`; it runs in `media.rvc_webui_dir` when that is set. A finished model lands at
// data/outputs/models/<character id>.pth (the seed's layout); a failed or cancelled retraining
// leaves the previous model in place. Conversion: `{input}`, `{output}` (WAV files), `{model}`,
// `{vc_script}`, `{rvc_cli_path}`, `{rvc_webui_dir}`.
//
// Job states (API.md's Job): queued → running (progress read from the trainer's output: "epoch
// 3/20", "45%", "progress: 0.45") → done | failed (error says why: the program, its exit code and
// its last line) | cancelled. The character's voice_status follows (none | queued | running | done
// | failed, voice_error). One training runs at a time (the trainer's own runner); a second request
// for a character whose training is queued or running is refused (Conflict). A training cut off
// by a shutdown or a crash is queued again and starts over at the next start. The trainer's output goes to
// data/logs/voice-training-<character id>.log.
// Threads: one runner thread (owned by the JobRunner member, joined by stop()/the destructor).
// Thread safety: all public members may be called from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/settings.hpp"
#include "jobs/job_runner.hpp"
#include "store/character_store.hpp"
#include "store/job_store.hpp"
#include "voice/tts_engine.hpp"

namespace mc::voice {

// Splits a command template into arguments (spaces separate; "..." keeps spaces, \" and \\ inside
// quotes). Errors: InvalidInput naming `field` (unbalanced quote, empty).
Result<std::vector<std::string>> split_command(const std::string& command, const std::string& field);
// Replaces every {key} of `values` inside each argument. Errors: InvalidInput naming `field` for a
// {placeholder} that is not one of `values`.
Result<std::vector<std::string>> fill_command(const std::vector<std::string>& args, const std::map<std::string, std::string>& values,
                                              const std::string& field);
// A fraction 0..1 from a trainer's output line, when it reports one.
std::optional<double> training_progress(std::string_view line);

class VoiceTrainer {
public:
    VoiceTrainer(SettingsStore& settings, store::CharacterStore& characters, store::JobStore& jobs, std::string data_dir,
                 std::function<std::string(const std::string& blob)> blob_path);
    ~VoiceTrainer();

    void start();  // Re-queued jobs' characters show "queued"; the runner starts.
    void stop();   // Cancels a running training (its process group is killed) and joins.

    // Queues a training of the character's voice sample. Errors: NotFound, InvalidInput (no voice
    // sample; epochs out of range), Conflict (one is queued or running for this character).
    Result<Job> train(const std::string& character_id, std::optional<int> epochs);
    // The character's newest training job (null when it never trained). Errors: NotFound.
    Result<std::optional<Job>> latest(const std::string& character_id);
    // Cancels one training job (POST /api/jobs/{id}/cancel). Errors: NotFound, Conflict (ended).
    Result<Job> cancel(const std::string& job_id);
    // Cancels the character's queued or running trainings (the sample changed; it is being deleted).
    void cancel_for(const std::string& character_id);
    // Removes the character's model files (after it was deleted).
    void remove_files(const std::string& character_id);
    // The trained model of this character, when there is one.
    std::optional<std::string> model_path(const std::string& character_id) const;

private:
    jobs::Outcome run(const Job& job, jobs::JobContext& ctx);
    std::string models_dir() const;

    SettingsStore& m_settings;
    store::CharacterStore& m_characters;
    store::JobStore& m_jobs;
    const std::string m_data_dir;
    std::function<std::string(const std::string&)> m_blob_path;
    jobs::JobRunner m_runner;
};

// The trained RVC model of a character (data/outputs/models/<id>.pth), when there is one.
std::optional<std::string> trained_model(const std::string& data_dir, const std::string& character_id);

// Converts one sentence's audio with the character's RVC model (media.vc_command). Errors:
// Unavailable (not set up, the program failed, timed out or was cancelled: says which and the
// program's last line), InvalidInput (it wrote no WAV).
Result<Audio> rvc_convert(const Settings& settings, const std::string& data_dir, const std::string& model, const Audio& input,
                          std::shared_ptr<std::atomic<bool>> cancel);

}  // namespace mc::voice
