// store/memory_store: a chat's memory — versioned summaries (never overwritten: edits and rollbacks
// add versions), facts with FTS5 retrieval, and full-text search over the chat's messages.
// User text only ever reaches FTS5 as quoted terms, so SQL or FTS syntax in it is just text.
// Thread safety: safe from any thread (serialized through Db).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/db.hpp"
#include "store/types.hpp"

namespace mc::store {

// The words of `text` worth searching for (letters/digits, 3+ characters, no stop words), each as
// a quoted FTS5 string, joined with `op` ("OR" / "AND"). Empty when nothing is left.
std::string fts_query(const std::string& text, const char* op);

class MemoryStore {
public:
    explicit MemoryStore(Db& db) : m_db(db) {}

    // The newest summary version, if any.
    Result<std::optional<Summary>> summary(const std::string& chat_id);
    Result<std::vector<Summary>> summaries(const std::string& chat_id);  // Newest first.
    // Stores `text` as the next version.
    Result<Summary> add_summary(const std::string& chat_id, const std::string& text, int64_t covers_until,
                                const std::string& source);
    Result<Summary> summary_version(const std::string& chat_id, int version);
    // Restores exported memory as it was (versions, sources, times).
    Result<void> import_memory(const std::string& chat_id, const std::vector<Summary>& summaries,
                               const std::vector<Fact>& facts);

    Result<std::vector<Fact>> facts(const std::string& chat_id);
    Result<Fact> add_fact(const std::string& chat_id, const std::string& text, bool pinned, const std::string& source);
    Result<Fact> fact(int64_t id);
    Result<Fact> update_fact(const Fact& f);
    Result<void> remove_fact(int64_t id);
    // Unpinned facts whose words occur in `text`, best match first.
    Result<std::vector<Fact>> relevant_facts(const std::string& chat_id, const std::string& text, int limit);

    // Messages of the chat containing all words of `query`, newest first.
    Result<std::vector<SearchHit>> search_messages(const std::string& chat_id, const std::string& query, int limit);

private:
    Db& m_db;
};

}  // namespace mc::store
