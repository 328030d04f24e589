// store/types: the domain records the store persists and the other modules pass around.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mc {

using Json = nlohmann::json;

struct Character {
    std::string id;
    std::string name;
    std::string description;
    std::string personality;
    std::string scenario;
    std::string first_mes;
    std::vector<std::string> alternate_greetings;
    std::string mes_example;
    std::string system_prompt;
    std::string post_history_instructions;
    std::string creator_notes;
    std::vector<std::string> tags;
    std::string appearance;
    Json voice = Json::object();
    std::optional<std::string> avatar_file;        // Generated blob name, never a client's path.
    std::optional<std::string> voice_sample_file;  // Generated blob name.
    // What the sample is: {"wav": blob name of its normalized copy (24 kHz mono 16-bit WAV, what the
    // engines and trainers read), "seconds", "sample_rate", "format", "loudness_db", "peak_db",
    // "waveform": [0..1 peaks]}; {} for a sample stored before these were measured.
    Json voice_sample_info = Json::object();
    // The sample file engines and trainers read: its normalized copy, else the file as sent.
    std::optional<std::string> voice_sample_for_engines() const {
        if (!voice_sample_file) return std::nullopt;
        const auto it = voice_sample_info.find("wav");
        if (voice_sample_info.is_object() && it != voice_sample_info.end() && it->is_string()) return it->get<std::string>();
        return voice_sample_file;
    }
    std::string voice_status = "none";
    std::string voice_error;
    Json extensions = Json::object();
    // Card fields (V2/V3) with no use in the prompt, kept so an export gives back what was imported.
    std::string creator;
    std::string character_version;
    std::string nickname;
    std::vector<std::string> group_only_greetings;
    std::vector<std::string> source;
    Json creator_notes_multilingual = Json::object();
    Json assets = Json::array();
    std::optional<int64_t> creation_date;      // Unix seconds, as the card says.
    std::optional<int64_t> modification_date;  // Unix seconds, as the card says.
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

// A lorebook (world info): `data` is the V2 character_book object (cards/lorebook.hpp), attached
// to characters and chats. A chat's turn uses the books of its character and of the chat itself.
struct Lorebook {
    std::string id;
    Json data = Json::object();
    std::vector<std::string> character_ids;
    std::vector<std::string> chat_ids;
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

struct Chat {
    std::string id;
    std::string character_id;
    std::string title;
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

struct Message {
    int64_t id = 0;
    std::string chat_id;
    std::string role;  // user | assistant | system
    std::string content;  // == swipes[swipe_id]
    std::vector<std::string> swipes;
    int swipe_id = 0;
    std::string status = "complete";  // complete | partial | error
    Json media = Json::array();
    int64_t created_at = 0;
    // Hidden from the model (SillyTavern's is_system): shown, never in a prompt.
    bool hidden = false;
    // The speaker's name as an imported file gave it ("" = the character's or the user's).
    std::string name;
    // The fields of an imported SillyTavern line we do not model (send_date as written,
    // swipe_info, gen_started, gen_finished, extra, force_avatar, ...), verbatim, so an export
    // gives them back.
    Json st_fields = Json::object();
    // Per swipe (same index): how that text was generated — {"prompt_tokens","cached_tokens",
    // "predicted_tokens","prompt_ms","predicted_ms"} — or null (typed, imported, or from before).
    Json gen = Json::array();
};

struct Summary {
    std::string chat_id;
    int version = 0;
    std::string text;
    int64_t covers_until_message_id = 0;  // The last message the summary covers.
    std::string source = "auto";          // auto | user | rollback | import
    int64_t created_at = 0;
};

struct Fact {
    int64_t id = 0;
    std::string chat_id;
    std::string text;
    bool pinned = false;
    std::string source = "user";  // user | auto | import
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

// A message found by full-text search, with the matching part marked.
struct SearchHit {
    Message message;
    std::string snippet;
};

struct Job {
    std::string id;
    std::string kind;
    std::string status = "queued";
    double progress = 0;
    std::string error;
    Json payload = Json::object();
    Json result = Json::object();
    std::optional<std::string> character_id;
    std::optional<std::string> chat_id;
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

}  // namespace mc
