#include "store/chat_store.hpp"

#include "store/blob_store.hpp"

#include <algorithm>
#include <cstdint>

#include "core/text.hpp"

namespace mc::store {
namespace {

Chat read_chat(const Stmt& s) {
    return Chat{s.text(0), s.text(1), s.text(2), s.integer(3), s.integer(4)};
}

}  // namespace

Message read_message(const Stmt& s) {
    Message m;
    m.id = s.integer(0);
    m.chat_id = s.text(1);
    m.role = s.text(2);
    m.content = s.text(3);
    Json swipes = Json::parse(s.text(4), nullptr, false);
    if (swipes.is_array()) m.swipes = swipes.get<std::vector<std::string>>();
    m.swipe_id = static_cast<int>(s.integer(5));
    m.status = s.text(6);
    Json media = Json::parse(s.text(7), nullptr, false);
    m.media = media.is_array() ? media : Json::array();
    m.created_at = s.integer(8);
    m.hidden = s.integer(9) != 0;
    m.name = s.text(10);
    Json st = Json::parse(s.text(11), nullptr, false);
    m.st_fields = st.is_object() ? st : Json::object();
    Json gen = Json::parse(s.text(12), nullptr, false);
    m.gen = gen.is_array() ? gen : Json::array();
    return m;
}

namespace {

constexpr const char* kInsertMessage =
    "INSERT INTO messages (chat_id, role, content, swipes, swipe_id, status, media, created_at, hidden, name, st_fields, gen) "
    "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)";

// Runs a prepared kInsertMessage for `m` and sets its id.
void insert_message(Db& db, Stmt& s, Message& m) {
    s.bind(1, m.chat_id).bind(2, m.role).bind(3, m.content).bind(4, Json(m.swipes).dump());
    s.bind(5, m.swipe_id).bind(6, m.status).bind(7, m.media.dump()).bind(8, m.created_at);
    s.bind(9, m.hidden ? 1 : 0).bind(10, m.name).bind(11, m.st_fields.dump(-1, ' ', false, Json::error_handler_t::replace));
    s.bind(12, (m.gen.is_array() ? m.gen : Json::array()).dump());
    s.run();
    s.reset();
    m.id = db.last_insert_id();
}

// The content column mirrors the selected swipe so listing and search need not parse JSON.
void normalize(Message& m) {
    if (m.swipes.empty()) m.swipes.push_back(m.content);
    if (m.swipe_id < 0 || m.swipe_id >= static_cast<int>(m.swipes.size())) m.swipe_id = 0;
    m.content = m.swipes[static_cast<size_t>(m.swipe_id)];
}

}  // namespace

Result<std::pair<Chat, std::vector<Message>>> ChatStore::create(const std::string& character_id,
                                                                const std::vector<std::string>& greetings) {
    Chat chat{random_hex(8), character_id, "", now_ms(), now_ms()};
    return m_db.transaction([&] {
        Stmt c(m_db, "INSERT INTO chats (id, character_id, title, created_at, updated_at) VALUES (?1,?2,?3,?4,?5)");
        c.bind(1, chat.id).bind(2, chat.character_id).bind(3, chat.title).bind(4, chat.created_at).bind(5, chat.updated_at);
        c.run();
        std::vector<Message> messages;
        if (!greetings.empty()) {
            Message m;
            m.chat_id = chat.id;
            m.role = "assistant";
            m.swipes = greetings;
            m.created_at = chat.created_at;
            normalize(m);
            Stmt s(m_db, kInsertMessage);
            insert_message(m_db, s, m);
            messages.push_back(std::move(m));
        }
        return std::make_pair(chat, messages);
    });
}

Result<Chat> ChatStore::get(const std::string& id) {
    auto found = m_db.transaction([&]() -> std::optional<Chat> {
        Stmt s(m_db, "SELECT id, character_id, title, created_at, updated_at FROM chats WHERE id = ?1");
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_chat(s);
    });
    if (!found) return std::unexpected(found.error());
    if (!*found) return fail(ErrorCode::NotFound, "no chat with id '" + id + "'", "id");
    return std::move(**found);
}

Result<std::vector<Chat>> ChatStore::list_for_character(const std::string& character_id) {
    return m_db.transaction([&] {
        std::vector<Chat> out;
        Stmt s(m_db, "SELECT id, character_id, title, created_at, updated_at FROM chats WHERE character_id = ?1 "
                     "ORDER BY updated_at DESC, id");
        s.bind(1, character_id);
        while (s.step()) out.push_back(read_chat(s));
        return out;
    });
}

Result<std::vector<ChatOverview>> ChatStore::overview_for_character(const std::string& character_id) {
    auto listed = m_db.transaction([&] {
        std::vector<std::pair<ChatOverview, int64_t>> out;  // With the newest message's id.
        Stmt s(m_db,
               "SELECT c.id, c.character_id, c.title, c.created_at, c.updated_at, "
               "(SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id), "
               "(SELECT MAX(id) FROM messages m WHERE m.chat_id = c.id) "
               "FROM chats c WHERE c.character_id = ?1 ORDER BY c.updated_at DESC, c.id");
        s.bind(1, character_id);
        while (s.step()) {
            ChatOverview o;
            o.chat = read_chat(s);
            o.message_count = s.integer(5);
            out.emplace_back(std::move(o), s.is_null(6) ? 0 : s.integer(6));
        }
        return out;
    });
    if (!listed) return std::unexpected(listed.error());
    std::vector<ChatOverview> out;
    for (auto& [o, last] : *listed) {
        if (last > 0) {
            if (auto m = get_message(last)) o.last = std::move(*m);
        }
        out.push_back(std::move(o));
    }
    return out;
}

Result<int64_t> ChatStore::count_until(const std::string& chat_id, int64_t until_id) {
    return m_db.transaction([&] {
        Stmt s(m_db, "SELECT COUNT(*) FROM messages WHERE chat_id = ?1 AND id <= ?2");
        s.bind(1, chat_id).bind(2, until_id);
        return s.step() ? s.integer(0) : int64_t{0};
    });
}

Result<Chat> ChatStore::rename(const std::string& id, const std::string& title) {
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "UPDATE chats SET title = ?2, updated_at = ?3 WHERE id = ?1");
        s.bind(1, id).bind(2, title).bind(3, now_ms());
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no chat with id '" + id + "'", "id");
    return get(id);
}

Result<std::vector<std::string>> ChatStore::remove(const std::string& id) {
    std::vector<std::string> files;
    auto changed = m_db.transaction([&] {
        Stmt m(m_db, "SELECT media FROM messages WHERE chat_id = ?1 AND media != '[]'");
        m.bind(1, id);
        while (m.step()) BlobStore::media_files(m.text(0), files);
        Stmt s(m_db, "DELETE FROM chats WHERE id = ?1");
        s.bind(1, id);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no chat with id '" + id + "'", "id");
    return files;
}

Result<void> ChatStore::set_times(const std::string& id, int64_t created_at, int64_t updated_at) {
    return m_db.transaction([&] {
        Stmt s(m_db, "UPDATE chats SET created_at = ?2, updated_at = ?3 WHERE id = ?1");
        s.bind(1, id).bind(2, created_at).bind(3, updated_at);
        s.run();
    });
}

Result<void> ChatStore::set_st_header(const std::string& id, const Json& header) {
    return m_db.transaction([&] {
        Stmt s(m_db, "UPDATE chats SET st_header = ?2 WHERE id = ?1");
        s.bind(1, id).bind(2, header.dump(-1, ' ', false, Json::error_handler_t::replace));
        s.run();
    });
}

Result<Json> ChatStore::st_header(const std::string& id) {
    return m_db.transaction([&] {
        Stmt s(m_db, "SELECT st_header FROM chats WHERE id = ?1");
        s.bind(1, id);
        Json header = Json::object();
        if (s.step()) {
            Json j = Json::parse(s.text(0), nullptr, false);
            if (j.is_object()) header = std::move(j);
        }
        return header;
    });
}

Result<std::vector<Message>> ChatStore::messages(const std::string& chat_id, std::optional<int64_t> before, int limit) {
    return m_db.transaction([&] {
        // Newest `limit` below `before`, then reversed to oldest first.
        Stmt s(m_db, std::string("SELECT ") + kMessageColumns +
                         " FROM messages WHERE chat_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3");
        s.bind(1, chat_id).bind(2, before.value_or(INT64_MAX)).bind(3, limit);
        std::vector<Message> out;
        while (s.step()) out.push_back(read_message(s));
        std::reverse(out.begin(), out.end());
        return out;
    });
}

Result<std::vector<Message>> ChatStore::messages_between(const std::string& chat_id, int64_t after_id, int64_t until_id,
                                                         int limit) {
    return m_db.transaction([&] {
        Stmt s(m_db, std::string("SELECT ") + kMessageColumns +
                         " FROM messages WHERE chat_id = ?1 AND id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4");
        s.bind(1, chat_id).bind(2, after_id).bind(3, until_id).bind(4, limit);
        std::vector<Message> out;
        while (s.step()) out.push_back(read_message(s));
        return out;
    });
}

Result<std::vector<Message>> ChatStore::messages_with_media(const std::string& character_id, int limit) {
    return m_db.transaction([&] {
        Stmt s(m_db, std::string("SELECT ") + kMessageColumns +
                         " FROM messages WHERE media != '[]' AND chat_id IN (SELECT id FROM chats WHERE character_id = ?1)"
                         " ORDER BY id DESC LIMIT ?2");
        s.bind(1, character_id).bind(2, limit);
        std::vector<Message> out;
        while (s.step()) out.push_back(read_message(s));
        return out;
    });
}

Result<Message> ChatStore::add_message(Message m) {
    normalize(m);
    if (m.created_at == 0) m.created_at = now_ms();
    return m_db.transaction([&] {
        Stmt s(m_db, kInsertMessage);
        insert_message(m_db, s, m);
        Stmt t(m_db, "UPDATE chats SET updated_at = ?2 WHERE id = ?1");
        t.bind(1, m.chat_id).bind(2, m.created_at);
        t.run();
        return m;
    });
}

Result<std::vector<Message>> ChatStore::import_messages(const std::string& chat_id, std::vector<Message> messages) {
    return m_db.transaction([&] {
        Stmt s(m_db, kInsertMessage);
        for (auto& m : messages) {
            m.chat_id = chat_id;
            normalize(m);
            if (m.created_at == 0) m.created_at = now_ms();
            insert_message(m_db, s, m);
        }
        return messages;
    });
}

Result<Message> ChatStore::get_message(int64_t id) {
    auto found = m_db.transaction([&]() -> std::optional<Message> {
        Stmt s(m_db, std::string("SELECT ") + kMessageColumns + " FROM messages WHERE id = ?1");
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_message(s);
    });
    if (!found) return std::unexpected(found.error());
    if (!*found) return fail(ErrorCode::NotFound, "no message with id '" + std::to_string(id) + "'", "id");
    return std::move(**found);
}

Result<Message> ChatStore::update_message(const Message& in) {
    return update_message(in, [&in](const Json&) { return in.media; });
}

Result<std::optional<Message>> ChatStore::edit_media(const std::string& chat_id, const std::string& job_id,
                                                     const std::function<bool(Json& entry)>& edit) {
    return m_db.transaction([&]() -> std::optional<Message> {
        // Job ids are ours (hex), so the LIKE pattern is only a pre-filter; entries are matched exactly below.
        Stmt s(m_db, std::string("SELECT ") + kMessageColumns + " FROM messages WHERE chat_id = ?1 AND media LIKE ?2");
        s.bind(1, chat_id).bind(2, std::string("%") + job_id + "%");
        std::optional<Message> found;
        while (s.step()) {
            Message m = read_message(s);
            bool changed = false;
            Json kept = Json::array();
            for (auto& e : m.media) {
                if (e.is_object() && e.contains("job") && e["job"] == job_id) {
                    changed = true;
                    if (!edit(e)) continue;
                }
                kept.push_back(std::move(e));
            }
            m.media = std::move(kept);
            if (changed) {
                found = std::move(m);
                break;
            }
        }
        if (!found) return std::nullopt;
        Stmt u(m_db, "UPDATE messages SET media = ?2 WHERE id = ?1");
        u.bind(1, found->id).bind(2, found->media.dump());
        u.run();
        return found;
    });
}

Result<Message> ChatStore::update_message(const Message& in, const std::function<Json(const Json& stored_media)>& media) {
    Message m = in;
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "SELECT media FROM messages WHERE id = ?1");
        s.bind(1, m.id);
        if (!s.step()) return 0;
        Json stored = Json::parse(s.text(0), nullptr, false);
        m.media = media(stored.is_array() ? stored : Json::array());
        normalize(m);
        Stmt u(m_db, "UPDATE messages SET content=?2, swipes=?3, swipe_id=?4, status=?5, media=?6, hidden=?7, gen=?8 WHERE id=?1");
        u.bind(1, m.id).bind(2, m.content).bind(3, Json(m.swipes).dump()).bind(4, m.swipe_id);
        u.bind(5, m.status).bind(6, m.media.dump()).bind(7, m.hidden ? 1 : 0).bind(8, (m.gen.is_array() ? m.gen : Json::array()).dump());
        u.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no message with id '" + std::to_string(m.id) + "'", "id");
    return m;
}

Result<std::vector<std::string>> ChatStore::remove_message(int64_t id) {
    std::vector<std::string> files;
    auto changed = m_db.transaction([&] {
        Stmt m(m_db, "SELECT media FROM messages WHERE id = ?1");
        m.bind(1, id);
        if (m.step()) BlobStore::media_files(m.text(0), files);
        Stmt s(m_db, "DELETE FROM messages WHERE id = ?1");
        s.bind(1, id);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no message with id '" + std::to_string(id) + "'", "id");
    return files;
}

}  // namespace mc::store
