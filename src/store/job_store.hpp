// store/job_store: background jobs (summaries, fact extraction, later voice training, images,
// downloads) persisted so they survive a restart.
// Thread safety: safe from any thread (serialized through Db).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/db.hpp"
#include "store/types.hpp"

namespace mc::store {

// Which kinds of job a runner takes: only `kinds` (include) or all but them (the default, with none:
// all).
struct KindFilter {
    std::vector<std::string> kinds;
    bool include = false;
};

class JobStore {
public:
    explicit JobStore(Db& db) : m_db(db) {}

    Result<Job> create(const std::string& kind, const Json& payload, std::optional<std::string> character_id,
                       std::optional<std::string> chat_id);
    Result<Job> get(const std::string& id);
    Result<Job> update(const Job& job);
    // Compare-and-set: writes status, progress, error and result only while the stored status is
    // one of `from`. Returns false (and writes nothing) when it was not, e.g. cancelled meanwhile.
    Result<bool> update_if(const Job& job, const std::vector<std::string>& from);
    // Writes only the progress, and only while the job is running (never resurrects a cancelled one).
    Result<void> set_progress(const std::string& id, double progress);
    // The oldest queued job, if any.
    Result<std::optional<Job>> next_queued(const KindFilter& filter = {});
    // A queued or running job of this kind for this chat, if any.
    Result<std::optional<Job>> active(const std::string& kind, const std::string& chat_id);
    // Queued and running jobs of a chat, oldest first.
    Result<std::vector<Job>> active_for_chat(const std::string& chat_id);
    // Queued and running jobs of this kind for a character (all characters when empty), oldest first.
    Result<std::vector<Job>> active_of_kind(const std::string& kind, const std::string& character_id = {});
    // The newest job of this kind for a character, whatever its status.
    Result<std::optional<Job>> latest_of_kind(const std::string& kind, const std::string& character_id);
    // At start: jobs left running by a previous process are queued again.
    Result<int> requeue_running(const KindFilter& filter = {});

private:
    Db& m_db;
};

}  // namespace mc::store
