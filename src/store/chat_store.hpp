// store/chat_store: chats and their messages (with swipes) in SQLite.
// Thread safety: safe from any thread (serialized through Db).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/db.hpp"
#include "store/types.hpp"

namespace mc::store {

class ChatStore {
public:
    explicit ChatStore(Db& db) : m_db(db) {}

    // Creates a chat; when `greeting` is given it becomes the first assistant message
    // (its swipes are the greeting followed by the alternates).
    Result<std::pair<Chat, std::vector<Message>>> create(const std::string& character_id,
                                                         const std::vector<std::string>& greetings);
    Result<Chat> get(const std::string& id);
    Result<std::vector<Chat>> list_for_character(const std::string& character_id);
    Result<Chat> rename(const std::string& id, const std::string& title);
    Result<void> remove(const std::string& id);

    // Messages oldest first; `before` (a message id) pages backwards, `limit` caps the count.
    Result<std::vector<Message>> messages(const std::string& chat_id, std::optional<int64_t> before, int limit);
    Result<Message> add_message(Message m);
    Result<Message> get_message(int64_t id);
    Result<Message> update_message(const Message& m);
    Result<void> remove_message(int64_t id);

private:
    Db& m_db;
};

}  // namespace mc::store
