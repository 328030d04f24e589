#include "store/memory_store.hpp"

#include <cctype>
#include <set>

#include "core/text.hpp"
#include "store/chat_store.hpp"

namespace mc::store {
namespace {

Summary read_summary(const Stmt& s) {
    Summary out;
    out.chat_id = s.text(0);
    out.version = static_cast<int>(s.integer(1));
    out.text = s.text(2);
    out.covers_until_message_id = s.integer(3);
    out.source = s.text(4);
    out.created_at = s.integer(5);
    return out;
}

Fact read_fact(const Stmt& s) {
    return Fact{s.integer(0), s.text(1), s.text(2), s.integer(3) != 0, s.text(4), s.integer(5), s.integer(6)};
}

constexpr const char* kSummaryColumns = "chat_id, version, text, covers_until_message_id, source, created_at";
constexpr const char* kFactColumns = "id, chat_id, text, pinned, source, created_at, updated_at";

const std::set<std::string>& stop_words() {
    static const std::set<std::string> words = {
        // English
        "the", "and", "you", "your", "are", "was", "were", "for", "with", "that", "this", "have", "has", "had",
        "not", "but", "what", "who", "how", "why", "when", "where", "she", "her", "him", "his", "they", "them",
        "our", "out", "can", "will", "would", "could", "should", "about", "from", "into", "just", "then", "than",
        "there", "here", "all", "any", "some", "yes", "did", "does", "too", "very", "its", "it's", "i'm",
        // German
        "der", "die", "das", "den", "dem", "des", "und", "ich", "du", "wir", "ihr", "sie", "ist", "bin", "bist",
        "sind", "war", "ein", "eine", "einen", "einem", "einer", "mit", "von", "für", "auf", "aus", "bei", "nicht",
        "auch", "aber", "wie", "was", "wer", "wo", "wann", "warum", "noch", "schon", "mal", "hat", "habe", "hast",
        "haben", "mich", "mir", "dich", "dir", "uns", "euch", "sich", "dass", "oder", "wenn", "denn", "doch", "ja",
        "nein", "sehr", "hier", "dort", "jetzt", "dann", "mein", "meine", "dein", "deine",
    };
    return words;
}

}  // namespace

std::string fts_query(const std::string& text, const char* op) {
    std::vector<std::string> words;
    std::set<std::string> seen;
    std::string word;
    auto flush = [&] {
        if (utf8_length(word) >= 3 && !stop_words().contains(word) && seen.insert(word).second && words.size() < 32) {
            words.push_back(word);
        }
        word.clear();
    };
    for (unsigned char c : text) {
        if (c >= 0x80 || std::isalnum(c)) word += static_cast<char>(c >= 0x80 ? c : std::tolower(c));
        else flush();
    }
    flush();
    std::string q;
    for (const auto& w : words) {
        if (!q.empty()) q += std::string(" ") + op + " ";
        q += "\"" + w + "\"";  // Letters and digits only: nothing in it can be FTS syntax.
    }
    return q;
}

Result<std::optional<Summary>> MemoryStore::summary(const std::string& chat_id) {
    return m_db.transaction([&]() -> std::optional<Summary> {
        Stmt s(m_db, std::string("SELECT ") + kSummaryColumns +
                         " FROM summaries WHERE chat_id = ?1 ORDER BY version DESC LIMIT 1");
        s.bind(1, chat_id);
        if (!s.step()) return std::nullopt;
        return read_summary(s);
    });
}

Result<std::vector<Summary>> MemoryStore::summaries(const std::string& chat_id) {
    return m_db.transaction([&] {
        std::vector<Summary> out;
        Stmt s(m_db, std::string("SELECT ") + kSummaryColumns + " FROM summaries WHERE chat_id = ?1 ORDER BY version DESC");
        s.bind(1, chat_id);
        while (s.step()) out.push_back(read_summary(s));
        return out;
    });
}

Result<Summary> MemoryStore::add_summary(const std::string& chat_id, const std::string& text, int64_t covers_until,
                                         const std::string& source) {
    return m_db.transaction([&] {
        Stmt v(m_db, "SELECT coalesce(max(version), 0) FROM summaries WHERE chat_id = ?1");
        v.bind(1, chat_id);
        v.step();
        Summary out{chat_id, static_cast<int>(v.integer(0)) + 1, text, covers_until, source, now_ms()};
        Stmt s(m_db, "INSERT INTO summaries (chat_id, version, text, covers_until_message_id, source, created_at) "
                     "VALUES (?1,?2,?3,?4,?5,?6)");
        s.bind(1, chat_id).bind(2, out.version).bind(3, text).bind(4, covers_until).bind(5, source).bind(6, out.created_at);
        s.run();
        return out;
    });
}

Result<Summary> MemoryStore::summary_version(const std::string& chat_id, int version) {
    auto found = m_db.transaction([&]() -> std::optional<Summary> {
        Stmt s(m_db, std::string("SELECT ") + kSummaryColumns + " FROM summaries WHERE chat_id = ?1 AND version = ?2");
        s.bind(1, chat_id).bind(2, version);
        if (!s.step()) return std::nullopt;
        return read_summary(s);
    });
    if (!found) return std::unexpected(found.error());
    if (!*found) return fail(ErrorCode::NotFound, "this chat has no summary version " + std::to_string(version), "version");
    return std::move(**found);
}

Result<void> MemoryStore::import_memory(const std::string& chat_id, const std::vector<Summary>& summaries,
                                       const std::vector<Fact>& facts) {
    return m_db.transaction([&] {
        Stmt s(m_db, "INSERT INTO summaries (chat_id, version, text, covers_until_message_id, source, created_at) "
                     "VALUES (?1,?2,?3,?4,?5,?6)");
        for (const auto& x : summaries) {
            s.bind(1, chat_id).bind(2, x.version).bind(3, x.text).bind(4, x.covers_until_message_id).bind(5, x.source);
            s.bind(6, x.created_at);
            s.run();
            s.reset();
        }
        Stmt f(m_db, "INSERT INTO facts (chat_id, text, pinned, source, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6)");
        for (const auto& x : facts) {
            f.bind(1, chat_id).bind(2, x.text).bind(3, x.pinned ? 1 : 0).bind(4, x.source).bind(5, x.created_at);
            f.bind(6, x.updated_at);
            f.run();
            f.reset();
        }
    });
}

Result<std::vector<Fact>> MemoryStore::facts(const std::string& chat_id) {
    return m_db.transaction([&] {
        std::vector<Fact> out;
        Stmt s(m_db, std::string("SELECT ") + kFactColumns + " FROM facts WHERE chat_id = ?1 ORDER BY pinned DESC, id");
        s.bind(1, chat_id);
        while (s.step()) out.push_back(read_fact(s));
        return out;
    });
}

Result<Fact> MemoryStore::add_fact(const std::string& chat_id, const std::string& text, bool pinned,
                                   const std::string& source) {
    return m_db.transaction([&] {
        Fact f{0, chat_id, text, pinned, source, now_ms(), now_ms()};
        Stmt s(m_db, "INSERT INTO facts (chat_id, text, pinned, source, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6)");
        s.bind(1, chat_id).bind(2, text).bind(3, pinned ? 1 : 0).bind(4, source).bind(5, f.created_at).bind(6, f.updated_at);
        s.run();
        f.id = m_db.last_insert_id();
        return f;
    });
}

Result<Fact> MemoryStore::fact(int64_t id) {
    auto found = m_db.transaction([&]() -> std::optional<Fact> {
        Stmt s(m_db, std::string("SELECT ") + kFactColumns + " FROM facts WHERE id = ?1");
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_fact(s);
    });
    if (!found) return std::unexpected(found.error());
    if (!*found) return fail(ErrorCode::NotFound, "no fact with id '" + std::to_string(id) + "'", "id");
    return std::move(**found);
}

Result<Fact> MemoryStore::update_fact(const Fact& in) {
    Fact f = in;
    f.updated_at = now_ms();
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "UPDATE facts SET text = ?2, pinned = ?3, updated_at = ?4 WHERE id = ?1");
        s.bind(1, f.id).bind(2, f.text).bind(3, f.pinned ? 1 : 0).bind(4, f.updated_at);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no fact with id '" + std::to_string(f.id) + "'", "id");
    return f;
}

Result<void> MemoryStore::remove_fact(int64_t id) {
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "DELETE FROM facts WHERE id = ?1");
        s.bind(1, id);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no fact with id '" + std::to_string(id) + "'", "id");
    return {};
}

Result<std::vector<Fact>> MemoryStore::relevant_facts(const std::string& chat_id, const std::string& text, int limit) {
    const std::string q = fts_query(text, "OR");
    if (q.empty()) return std::vector<Fact>{};
    return m_db.transaction([&] {
        std::vector<Fact> out;
        Stmt s(m_db, "SELECT f.id, f.chat_id, f.text, f.pinned, f.source, f.created_at, f.updated_at FROM facts_fts "
                     "JOIN facts f ON f.id = facts_fts.rowid WHERE facts_fts MATCH ?1 AND f.chat_id = ?2 "
                     "AND f.pinned = 0 ORDER BY bm25(facts_fts) LIMIT ?3");
        s.bind(1, q).bind(2, chat_id).bind(3, limit);
        while (s.step()) out.push_back(read_fact(s));
        return out;
    });
}

Result<std::vector<SearchHit>> MemoryStore::search_messages(const std::string& chat_id, const std::string& query,
                                                            int limit) {
    const std::string words = fts_query(query, "AND");
    if (words.empty()) return std::vector<SearchHit>{};
    // Chat ids are hex (ours) but are quoted like any other text all the same.
    std::string id;
    for (char ch : chat_id) {
        if (std::isalnum(static_cast<unsigned char>(ch))) id += ch;
    }
    const std::string q = "chat_id:\"" + id + "\" AND content:(" + words + ")";
    return m_db.transaction([&] {
        std::vector<SearchHit> out;
        // Newest first straight from the index (rowid order), stopping at the limit.
        Stmt s(m_db, "SELECT m.id, m.chat_id, m.role, m.content, m.swipes, m.swipe_id, m.status, m.media, m.created_at, "
                     "m.hidden, m.name, m.st_fields, m.gen, "
                     "snippet(messages_fts, 0, '[', ']', '…', 12) FROM messages_fts JOIN messages m "
                     "ON m.id = messages_fts.rowid WHERE messages_fts MATCH ?1 AND m.chat_id = ?2 "
                     "ORDER BY messages_fts.rowid DESC LIMIT ?3");
        s.bind(1, q).bind(2, chat_id).bind(3, limit);
        while (s.step()) {
            SearchHit h;
            h.message = read_message(s);
            h.snippet = s.text(13);
            out.push_back(std::move(h));
        }
        return out;
    });
}

}  // namespace mc::store
