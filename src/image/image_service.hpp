// image/image_service: pictures of a character. A reply's [GENERATE_IMAGE] tag (through the turn's
// ImageSink) or POST /api/images starts an "image" job; the service's own job runner renders it on
// the backend the settings name (ComfyUI or A1111-style), keeps the picture under
// data/outputs/images/, and attaches it to the message that asked (its media entry goes
// queued -> done with "url", or failed with "error"). Workflow templates live in data/workflows/.
// Threads: one runner thread (owned by the JobRunner member, joined by stop()/the destructor).
// Thread safety: all public members may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chat/chat_service.hpp"
#include "core/result.hpp"
#include "core/settings.hpp"
#include "image/workflow.hpp"
#include "jobs/job_runner.hpp"
#include "store/blob_store.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/job_store.hpp"

namespace mc::image {

// A character's own picture settings (extensions.mycandy.image); unset fields use the settings'.
struct CharacterImage {
    std::optional<int64_t> seed;  // -1 or unset: a new seed each picture.
    std::optional<int> width, height, steps;
    std::optional<bool> likeness;
    std::string checkpoint;
    std::string negative;  // Added to the global negative prompt.
    std::vector<Lora> loras;
};
// Reads and checks extensions.mycandy.image of a character's `extensions` (absent: all unset).
// Errors name the field ("extensions.mycandy.image.width").
Result<CharacterImage> character_image_from_extensions(const Json& extensions);

// A prompt from a client or the model: control characters and runs of spaces removed; longer than
// `max_chars` is TooLarge (the model's prompts are cut instead).
Result<std::string> clean_prompt(std::string_view prompt, size_t max_chars);
inline constexpr size_t kMaxPromptChars = 2000;

class ImageService {
public:
    ImageService(SettingsStore& settings, store::BlobStore& blobs, store::CharacterStore& characters, store::ChatStore& chats,
                 store::JobStore& jobs, std::string data_dir);
    ~ImageService();

    void start();
    void stop();

    // Starts a picture of `character_id`. With `chat_id`, a new assistant message in that chat
    // carries it (the "send me a picture" button). Errors: NotFound, InvalidInput/TooLarge
    // (prompt), Unavailable (pictures are off).
    Result<Job> request(const std::string& character_id, const std::string& prompt, const std::optional<std::string>& chat_id);
    // Renders the prompt of an ended image job again, in the same place of its message.
    Result<Job> retry(const std::string& job_id);
    // Removes a picture from its message and deletes its file (a running job is cancelled).
    Result<void> remove(const std::string& job_id);
    Result<Job> cancel(const std::string& job_id);

    // For the chat service: the turn's sink and the system prompt's instruction.
    chat::ImagerFactory imager_factory();
    std::string instruction() const;

    // {"state","detail",...} for /api/health (cached for a few seconds: ComfyUI's /object_info is large).
    Json health();

    // Workflow templates: "default" is built in; others are data/workflows/<name>.json.
    std::vector<std::string> workflow_names() const;
    Result<Json> workflow(const std::string& name) const;
    Result<void> save_workflow(const std::string& name, const Json& graph);
    Result<void> delete_workflow(const std::string& name);
    static bool valid_workflow_name(const std::string& name);

private:
    class Sink;
    jobs::Outcome render(const Job& job, jobs::JobContext& ctx);
    // Writes a finished (or failed) job's fields into its message, or keeps them until the
    // message is stored (attach_pending). False when the message is gone (deleted meanwhile).
    bool attach(const std::string& chat_id, const std::string& job_id, const Json& fields);
    void attach_pending(const std::string& chat_id, const std::vector<std::string>& job_ids);
    void forget_pending(const std::vector<std::string>& job_ids);
    // Submits and, with a chat, notes the job as awaiting its message (one step under m_attach_mu).
    Result<Job> submit(const Character& character, const std::string& prompt, const std::optional<std::string>& chat_id);

    SettingsStore& m_settings;
    store::BlobStore& m_blobs;
    store::CharacterStore& m_characters;
    store::ChatStore& m_chats;
    store::JobStore& m_jobs;
    std::string m_workflow_dir;
    jobs::JobRunner m_runner;
    std::mutex m_attach_mu;                          // Guards m_awaiting, m_unattached; held across the store writes.
    std::set<std::string> m_awaiting;                 // Jobs whose message is not stored yet.
    std::map<std::string, Json> m_unattached;         // Job id -> fields, for messages not stored yet.
    std::mutex m_health_mu;                           // Guards m_health, m_health_key, m_health_at.
    Json m_health;
    std::string m_health_key;
    std::chrono::steady_clock::time_point m_health_at{};
};

}  // namespace mc::image
