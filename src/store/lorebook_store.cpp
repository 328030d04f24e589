#include "store/lorebook_store.hpp"

#include "core/json.hpp"
#include "core/text.hpp"

namespace mc::store {
namespace {

Lorebook read_row(const Stmt& s) {
    Lorebook b;
    b.id = s.text(0);
    b.data = Json::parse(s.text(1), nullptr, false);
    if (b.data.is_discarded() || !b.data.is_object()) b.data = Json{{"name", ""}, {"entries", Json::array()}};
    b.created_at = s.integer(2);
    b.updated_at = s.integer(3);
    return b;
}

}  // namespace

void LorebookStore::read_links(Lorebook& b) {
    Stmt s(m_db, "SELECT character_id, chat_id FROM lorebook_links WHERE lorebook_id = ?1 ORDER BY rowid");
    s.bind(1, b.id);
    while (s.step()) {
        if (!s.is_null(0)) b.character_ids.push_back(s.text(0));
        if (!s.is_null(1)) b.chat_ids.push_back(s.text(1));
    }
}

void LorebookStore::write_links(const Lorebook& b) {
    Stmt d(m_db, "DELETE FROM lorebook_links WHERE lorebook_id = ?1");
    d.bind(1, b.id);
    d.run();
    for (const auto& id : b.character_ids) {
        Stmt s(m_db, "INSERT INTO lorebook_links (lorebook_id, character_id) VALUES (?1, ?2)");
        s.bind(1, b.id).bind(2, id);
        s.run();
    }
    for (const auto& id : b.chat_ids) {
        Stmt s(m_db, "INSERT INTO lorebook_links (lorebook_id, chat_id) VALUES (?1, ?2)");
        s.bind(1, b.id).bind(2, id);
        s.run();
    }
}

Result<std::vector<Lorebook>> LorebookStore::select(const std::string& where, const std::vector<std::string>& args) {
    return m_db.transaction([&] {
        std::vector<Lorebook> out;
        Stmt s(m_db, "SELECT id, data, created_at, updated_at FROM lorebooks " + where);
        for (size_t i = 0; i < args.size(); ++i) s.bind(static_cast<int>(i + 1), args[i]);
        while (s.step()) out.push_back(read_row(s));
        for (auto& b : out) read_links(b);
        return out;
    });
}

Result<std::vector<Lorebook>> LorebookStore::list() { return select("ORDER BY updated_at DESC, id", {}); }

Result<Lorebook> LorebookStore::get(const std::string& id) {
    auto found = select("WHERE id = ?1", {id});
    if (!found) return std::unexpected(found.error());
    if (found->empty()) return fail(ErrorCode::NotFound, "no lorebook with id '" + id + "'", "id");
    return std::move(found->front());
}

Result<std::vector<Lorebook>> LorebookStore::for_chat(const std::string& chat_id, const std::string& character_id) {
    return select("WHERE id IN (SELECT lorebook_id FROM lorebook_links WHERE chat_id = ?1 OR character_id = ?2) "
                  "ORDER BY created_at, id",
                  {chat_id, character_id});
}

Result<std::vector<Lorebook>> LorebookStore::for_character(const std::string& character_id) {
    return select("WHERE id IN (SELECT lorebook_id FROM lorebook_links WHERE character_id = ?1) ORDER BY created_at, id",
                  {character_id});
}

// Links name rows that must exist: a missing character or chat is NotFound, checked first so the
// foreign key error never reaches the caller as an internal one.
static Result<void> check_links(Db& db, const Lorebook& b) {
    auto missing = db.transaction([&]() -> std::optional<std::pair<std::string, std::string>> {
        for (const auto& id : b.character_ids) {
            Stmt s(db, "SELECT 1 FROM characters WHERE id = ?1");
            s.bind(1, id);
            if (!s.step()) return std::make_pair(std::string("character_ids"), id);
        }
        for (const auto& id : b.chat_ids) {
            Stmt s(db, "SELECT 1 FROM chats WHERE id = ?1");
            s.bind(1, id);
            if (!s.step()) return std::make_pair(std::string("chat_ids"), id);
        }
        return std::nullopt;
    });
    if (!missing) return std::unexpected(missing.error());
    if (*missing) {
        return fail(ErrorCode::NotFound, "'" + (*missing)->first + "' names '" + utf8_prefix((*missing)->second, 64) + "', which does not exist",
                    (*missing)->first);
    }
    return {};
}

Result<Lorebook> LorebookStore::create(Lorebook b) {
    b.id = random_hex(8);
    b.created_at = b.updated_at = now_ms();
    auto done = m_db.transaction([&]() -> Result<void> {
        if (auto ok = check_links(m_db, b); !ok) return ok;
        Stmt s(m_db, "INSERT INTO lorebooks (id, name, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)");
        s.bind(1, b.id).bind(2, json_string_or(b.data, "name", "")).bind(3, b.data.dump()).bind(4, b.created_at).bind(5, b.updated_at);
        s.run();
        write_links(b);
        return {};
    });
    if (!done) return std::unexpected(done.error());
    if (!*done) return std::unexpected(done->error());
    return b;
}

Result<Lorebook> LorebookStore::update(Lorebook b) {
    b.updated_at = std::max(now_ms(), b.created_at);
    auto done = m_db.transaction([&]() -> Result<void> {
        if (auto ok = check_links(m_db, b); !ok) return ok;
        Stmt s(m_db, "UPDATE lorebooks SET name = ?2, data = ?3, updated_at = ?4 WHERE id = ?1");
        s.bind(1, b.id).bind(2, json_string_or(b.data, "name", "")).bind(3, b.data.dump()).bind(4, b.updated_at);
        s.run();
        if (m_db.changes() == 0) return fail(ErrorCode::NotFound, "no lorebook with id '" + b.id + "'", "id");
        write_links(b);
        return {};
    });
    if (!done) return std::unexpected(done.error());
    if (!*done) return std::unexpected(done->error());
    return b;
}

Result<void> LorebookStore::remove(const std::string& id) {
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "DELETE FROM lorebooks WHERE id = ?1");
        s.bind(1, id);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no lorebook with id '" + id + "'", "id");
    return {};
}

}  // namespace mc::store
