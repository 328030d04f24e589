#include "store/db.hpp"

#include <sqlite3.h>

#include <stdexcept>
#include <vector>

#include "core/log.hpp"

namespace mc::store {
namespace {

// Migrations, applied in order; index + 1 is the schema version after applying one. Never edit a
// migration that has shipped: add a new one.
const std::vector<const char*>& migrations() {
    static const std::vector<const char*> list = {
        // 1: characters, chats, messages (with swipes), jobs.
        R"sql(
        CREATE TABLE characters (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            personality TEXT NOT NULL DEFAULT '',
            scenario TEXT NOT NULL DEFAULT '',
            first_mes TEXT NOT NULL DEFAULT '',
            alternate_greetings TEXT NOT NULL DEFAULT '[]',
            mes_example TEXT NOT NULL DEFAULT '',
            system_prompt TEXT NOT NULL DEFAULT '',
            post_history_instructions TEXT NOT NULL DEFAULT '',
            creator_notes TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            appearance TEXT NOT NULL DEFAULT '',
            voice TEXT NOT NULL DEFAULT '{}',
            avatar_file TEXT,
            voice_sample_file TEXT,
            voice_status TEXT NOT NULL DEFAULT 'none',
            voice_error TEXT NOT NULL DEFAULT '',
            extensions TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE chats (
            id TEXT PRIMARY KEY,
            character_id TEXT NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
            title TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX chats_by_character ON chats(character_id, updated_at);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            content TEXT NOT NULL,
            swipes TEXT NOT NULL DEFAULT '[]',
            swipe_id INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'partial', 'error')),
            media TEXT NOT NULL DEFAULT '[]',
            created_at INTEGER NOT NULL
        );
        CREATE INDEX messages_by_chat ON messages(chat_id, id);
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            progress REAL NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL DEFAULT '{}',
            result TEXT NOT NULL DEFAULT '{}',
            character_id TEXT REFERENCES characters(id) ON DELETE CASCADE,
            chat_id TEXT REFERENCES chats(id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX jobs_by_status ON jobs(status, created_at);
        )sql",
        // 2: memory — versioned summaries, facts with full-text search, full-text search of messages.
        R"sql(
        CREATE TABLE summaries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            text TEXT NOT NULL,
            covers_until_message_id INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'user', 'rollback', 'import')),
            created_at INTEGER NOT NULL,
            UNIQUE (chat_id, version)
        );
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            pinned INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'auto', 'import')),
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX facts_by_chat ON facts(chat_id, id);
        CREATE VIRTUAL TABLE facts_fts USING fts5(text, content='facts', content_rowid='id',
                                                  tokenize='unicode61 remove_diacritics 2');
        CREATE TRIGGER facts_fts_insert AFTER INSERT ON facts BEGIN
            INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER facts_fts_delete AFTER DELETE ON facts BEGIN
            INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER facts_fts_update AFTER UPDATE OF text ON facts BEGIN
            INSERT INTO facts_fts(facts_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO facts_fts(rowid, text) VALUES (new.id, new.text);
        END;
        -- chat_id is indexed as a token, so a search intersects the chat's posting list with the
        -- words' instead of filtering every match of a common word in every chat.
        CREATE VIRTUAL TABLE messages_fts USING fts5(content, chat_id, content='messages', content_rowid='id',
                                                     tokenize='unicode61 remove_diacritics 2');
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content, chat_id) VALUES (new.id, new.content, new.chat_id);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, chat_id) VALUES ('delete', old.id, old.content, old.chat_id);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, chat_id) VALUES ('delete', old.id, old.content, old.chat_id);
            INSERT INTO messages_fts(rowid, content, chat_id) VALUES (new.id, new.content, new.chat_id);
        END;
        INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
        )sql",
        // 3: character card fields (V2/V3 extras as one JSON object), lorebooks and what they are
        // attached to.
        R"sql(
        ALTER TABLE characters ADD COLUMN card TEXT NOT NULL DEFAULT '{}';
        CREATE TABLE lorebooks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE lorebook_links (
            lorebook_id TEXT NOT NULL REFERENCES lorebooks(id) ON DELETE CASCADE,
            character_id TEXT REFERENCES characters(id) ON DELETE CASCADE,
            chat_id TEXT REFERENCES chats(id) ON DELETE CASCADE,
            CHECK ((character_id IS NULL) != (chat_id IS NULL))
        );
        CREATE INDEX lorebook_links_by_book ON lorebook_links(lorebook_id);
        CREATE INDEX lorebook_links_by_character ON lorebook_links(character_id);
        CREATE INDEX lorebook_links_by_chat ON lorebook_links(chat_id);
        )sql",
        // 4: SillyTavern chat files kept whole — hidden messages (never in a prompt), the speaker's
        // name, and what an imported line or header holds that we do not model, verbatim (JSON).
        R"sql(
        ALTER TABLE messages ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE messages ADD COLUMN st_fields TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE chats ADD COLUMN st_header TEXT NOT NULL DEFAULT '{}';
        )sql",
        // 5: what a voice sample is (length, rate, loudness, waveform) and its normalized copy.
        R"sql(
        ALTER TABLE characters ADD COLUMN voice_sample_info TEXT NOT NULL DEFAULT '{}';
        )sql",
        // 6: how each swipe of a reply was generated (tokens, times), for the chat's per-message line.
        R"sql(
        ALTER TABLE messages ADD COLUMN gen TEXT NOT NULL DEFAULT '[]';
        )sql",
    };
    return list;
}

}  // namespace

int schema_version() { return static_cast<int>(migrations().size()); }

Error db_error(const std::exception& e) {
    if (const auto* f = dynamic_cast<const StoreFailure*>(&e)) return f->error;
    // SQLite's own text names our schema, not the caller's mistake: it goes to the log only.
    log::error("database: ", e.what());
    return Error{ErrorCode::Internal, "database error (details in the server log)", {}};
}

Stmt::Stmt(Db& db, std::string_view sql) : m_db(db) {
    if (sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &m_stmt, nullptr) != SQLITE_OK) {
        throw std::runtime_error("prepare failed: " + db.last_error());
    }
}

Stmt::~Stmt() { sqlite3_finalize(m_stmt); }

Stmt& Stmt::bind(int index, std::string_view value) {
    sqlite3_bind_text(m_stmt, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    return *this;
}
Stmt& Stmt::bind(int index, int64_t value) {
    sqlite3_bind_int64(m_stmt, index, value);
    return *this;
}
Stmt& Stmt::bind(int index, double value) {
    sqlite3_bind_double(m_stmt, index, value);
    return *this;
}
Stmt& Stmt::bind_null(int index) {
    sqlite3_bind_null(m_stmt, index);
    return *this;
}
Stmt& Stmt::bind(int index, const std::optional<std::string>& value) {
    return value ? bind(index, std::string_view(*value)) : bind_null(index);
}

bool Stmt::step() {
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(m_db.last_error());
}

void Stmt::run() {
    while (step()) {
    }
}

void Stmt::reset() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
}

std::string Stmt::text(int col) const {
    const auto* p = sqlite3_column_text(m_stmt, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(m_stmt, col)))
             : std::string();
}
int64_t Stmt::integer(int col) const { return sqlite3_column_int64(m_stmt, col); }
double Stmt::real(int col) const { return sqlite3_column_double(m_stmt, col); }
bool Stmt::is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }

Result<std::unique_ptr<Db>> Db::open(const std::string& path) {
    std::unique_ptr<Db> db(new Db());
    db->m_path = path;
    if (sqlite3_open_v2(path.c_str(), &db->m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        return fail(ErrorCode::Io, "cannot open database " + path + ": " + db->last_error());
    }
    sqlite3_busy_timeout(db->m_db, 5000);
    try {
        db->exec("PRAGMA journal_mode = WAL");
        db->exec("PRAGMA synchronous = NORMAL");
        db->exec("PRAGMA foreign_keys = ON");
    } catch (const std::exception& e) {
        return fail(ErrorCode::Io, "cannot use database " + path + ": " + e.what());
    }
    if (auto m = db->migrate(); !m) return std::unexpected(m.error());
    return db;
}

Db::~Db() {
    if (m_db) sqlite3_close_v2(m_db);
}

void Db::exec(std::string_view sql) {
    char* err = nullptr;
    const std::string s(sql);
    if (sqlite3_exec(m_db, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string message = err ? err : "unknown error";
        sqlite3_free(err);
        throw std::runtime_error(message);
    }
}

int64_t Db::last_insert_id() const { return sqlite3_last_insert_rowid(m_db); }
int Db::changes() const { return sqlite3_changes(m_db); }
std::string Db::last_error() const { return m_db ? sqlite3_errmsg(m_db) : "out of memory"; }

int Db::user_version() {
    Stmt s(*this, "PRAGMA user_version");
    s.step();
    return static_cast<int>(s.integer(0));
}

Result<void> Db::migrate() {
    auto guard = lock();
    int version = 0;
    try {
        version = user_version();
    } catch (const std::exception& e) {
        return fail(ErrorCode::Io, "cannot read database " + m_path + ": " + e.what());
    }
    const int target = schema_version();
    if (version > target) {
        return fail(ErrorCode::Conflict, "database " + m_path + " has schema version " + std::to_string(version) +
                                             ", newer than this mycandy supports (" + std::to_string(target) +
                                             "); use a newer mycandy or another --data-dir");
    }
    for (int v = version; v < target; ++v) {
        try {
            exec("BEGIN IMMEDIATE");
            exec(migrations()[static_cast<size_t>(v)]);
            exec("PRAGMA user_version = " + std::to_string(v + 1));
            exec("COMMIT");
            log::info("database migrated to schema version ", v + 1);
        } catch (const std::exception& e) {
            try { exec("ROLLBACK"); } catch (...) {}
            return fail(ErrorCode::Internal, "database migration " + std::to_string(v + 1) + " failed: " + e.what());
        }
    }
    return {};
}

}  // namespace mc::store
