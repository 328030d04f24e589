// store/chat_store: chats and their messages (with swipes) in SQLite.
// Thread safety: safe from any thread (serialized through Db).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/db.hpp"
#include "store/types.hpp"

namespace mc::store {

// The columns read_message() expects, in order.
inline constexpr const char* kMessageColumns =
    "id, chat_id, role, content, swipes, swipe_id, status, media, created_at, hidden, name, st_fields, gen";
// A message from a row selected with kMessageColumns (prefixed by a table alias or not).
Message read_message(const Stmt& s);

struct ChatOverview {
    Chat chat;
    int64_t message_count = 0;
    std::optional<Message> last;
};

class ChatStore {
public:
    explicit ChatStore(Db& db) : m_db(db) {}

    // Creates a chat; when `greeting` is given it becomes the first assistant message
    // (its swipes are the greeting followed by the alternates).
    Result<std::pair<Chat, std::vector<Message>>> create(const std::string& character_id,
                                                         const std::vector<std::string>& greetings);
    Result<Chat> get(const std::string& id);
    Result<std::vector<Chat>> list_for_character(const std::string& character_id);
    // The same with each chat's message count and newest message (the chat list shows them).
    Result<std::vector<ChatOverview>> overview_for_character(const std::string& character_id);
    // How many of a chat's messages have an id up to `until_id` (what a summary covers).
    Result<int64_t> count_until(const std::string& chat_id, int64_t until_id);
    Result<Chat> rename(const std::string& id, const std::string& title);
    // Deletes the chat with its messages; returns the media files its messages pointed at (the
    // caller removes them once the rows are gone).
    Result<std::vector<std::string>> remove(const std::string& id);
    // Restores a chat's times (import).
    Result<void> set_times(const std::string& id, int64_t created_at, int64_t updated_at);
    // The header line of an imported SillyTavern file (user_name, character_name, create_date,
    // chat_metadata, ...), verbatim; an empty object for chats begun here.
    Result<void> set_st_header(const std::string& id, const Json& header);
    Result<Json> st_header(const std::string& id);

    // Messages oldest first; `before` (a message id) pages backwards, `limit` caps the count.
    Result<std::vector<Message>> messages(const std::string& chat_id, std::optional<int64_t> before, int limit);
    // Messages with after_id < id <= until_id, oldest first, at most `limit`.
    Result<std::vector<Message>> messages_between(const std::string& chat_id, int64_t after_id, int64_t until_id, int limit);
    // The newest `limit` messages of any of the character's chats that carry media (audio, images),
    // newest first.
    Result<std::vector<Message>> messages_with_media(const std::string& character_id, int limit);
    Result<Message> add_message(Message m);
    // Adds many messages in one transaction, keeping their created_at; returns them with ids.
    Result<std::vector<Message>> import_messages(const std::string& chat_id, std::vector<Message> messages);
    Result<Message> get_message(int64_t id);
    // Writes content, swipes, swipe_id, status, media and hidden (name and st_fields stay).
    Result<Message> update_message(const Message& m);
    // Like update_message, but the media written is `media(the stored media)`, read in the same
    // transaction: what was attached meanwhile (a picture finishing during a regenerate) is kept.
    Result<Message> update_message(const Message& m, const std::function<Json(const Json& stored_media)>& media);
    // Edits the media entry whose "job" is `job_id` in the chat's messages (a picture finished or
    // failed after its message was stored, or is retried); `edit` returning false removes the
    // entry. Returns the changed message, or nullopt when no message carries that job (yet).
    Result<std::optional<Message>> edit_media(const std::string& chat_id, const std::string& job_id,
                                              const std::function<bool(Json& entry)>& edit);
    // Deletes one message; returns the media files it pointed at.
    Result<std::vector<std::string>> remove_message(int64_t id);

private:
    Db& m_db;
};

}  // namespace mc::store
