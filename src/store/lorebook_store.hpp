// store/lorebook_store: lorebooks (world info) in SQLite, with the characters and chats each is
// attached to. Deleting a book, character or chat removes its links (foreign keys).
// Thread safety: safe from any thread (serialized through Db).
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/db.hpp"
#include "store/types.hpp"

namespace mc::store {

class LorebookStore {
public:
    explicit LorebookStore(Db& db) : m_db(db) {}

    Result<std::vector<Lorebook>> list();
    Result<Lorebook> get(const std::string& id);
    // Assigns id and timestamps. Links to characters or chats that do not exist are NotFound.
    Result<Lorebook> create(Lorebook book);
    // Writes data and links of `book` (id must exist); bumps updated_at.
    Result<Lorebook> update(Lorebook book);
    Result<void> remove(const std::string& id);
    // The books a turn in this chat uses: those attached to the chat or to its character, oldest first.
    Result<std::vector<Lorebook>> for_chat(const std::string& chat_id, const std::string& character_id);
    // The books attached to a character, oldest first (its card's own book first).
    Result<std::vector<Lorebook>> for_character(const std::string& character_id);

private:
    void write_links(const Lorebook& book);
    void read_links(Lorebook& book);
    Result<std::vector<Lorebook>> select(const std::string& where, const std::vector<std::string>& args);
    Db& m_db;
};

}  // namespace mc::store
