// store/character_store: characters in SQLite. Deleting a character cascades to its chats,
// messages and jobs (foreign keys) and reports the blob files the caller must remove.
// Thread safety: safe from any thread (serialized through Db).
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/db.hpp"
#include "store/types.hpp"

namespace mc::store {

class CharacterStore {
public:
    explicit CharacterStore(Db& db) : m_db(db) {}

    Result<std::vector<Character>> list();
    Result<Character> get(const std::string& id);
    // Assigns id and timestamps.
    Result<Character> create(Character c);
    // Writes every field of `c` (id must exist) but the voice training state; bumps updated_at.
    Result<Character> update(Character c);
    // Writes only the voice training state (voice_status, voice_error): the training job's own
    // column, so an edit saved meanwhile neither loses nor undoes it. Errors: NotFound.
    Result<void> set_voice_status(const std::string& id, const std::string& status, const std::string& error);
    // Returns the blob names the character owned, for the caller to delete.
    Result<std::vector<std::string>> remove(const std::string& id);

private:
    Db& m_db;
};

}  // namespace mc::store
