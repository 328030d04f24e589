#include "store/job_store.hpp"

#include <algorithm>

#include "core/text.hpp"

namespace mc::store {
namespace {

constexpr const char* kColumns =
    "id, kind, status, progress, error, payload, result, character_id, chat_id, created_at, updated_at";

Job read_job(const Stmt& s) {
    Job j;
    j.id = s.text(0);
    j.kind = s.text(1);
    j.status = s.text(2);
    j.progress = s.real(3);
    j.error = s.text(4);
    j.payload = Json::parse(s.text(5), nullptr, false);
    if (j.payload.is_discarded()) j.payload = Json::object();
    j.result = Json::parse(s.text(6), nullptr, false);
    if (j.result.is_discarded()) j.result = Json::object();
    if (!s.is_null(7)) j.character_id = s.text(7);
    if (!s.is_null(8)) j.chat_id = s.text(8);
    j.created_at = s.integer(9);
    j.updated_at = s.integer(10);
    return j;
}

}  // namespace

Result<Job> JobStore::create(const std::string& kind, const Json& payload, std::optional<std::string> character_id,
                             std::optional<std::string> chat_id) {
    Job j;
    j.id = random_hex(8);
    j.kind = kind;
    j.payload = payload;
    j.character_id = std::move(character_id);
    j.chat_id = std::move(chat_id);
    j.created_at = j.updated_at = now_ms();
    auto done = m_db.transaction([&] {
        Stmt s(m_db, std::string("INSERT INTO jobs (") + kColumns + ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
        s.bind(1, j.id).bind(2, j.kind).bind(3, j.status).bind(4, j.progress).bind(5, j.error).bind(6, j.payload.dump());
        s.bind(7, j.result.dump()).bind(8, j.character_id).bind(9, j.chat_id).bind(10, j.created_at).bind(11, j.updated_at);
        s.run();
    });
    if (!done) return std::unexpected(done.error());
    return j;
}

Result<Job> JobStore::get(const std::string& id) {
    auto found = m_db.transaction([&]() -> std::optional<Job> {
        Stmt s(m_db, std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?1");
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_job(s);
    });
    if (!found) return std::unexpected(found.error());
    if (!*found) return fail(ErrorCode::NotFound, "no job with id '" + id + "'", "id");
    return std::move(**found);
}

Result<Job> JobStore::update(const Job& in) {
    Job j = in;
    j.updated_at = now_ms();
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "UPDATE jobs SET status = ?2, progress = ?3, error = ?4, result = ?5, updated_at = ?6 WHERE id = ?1");
        s.bind(1, j.id).bind(2, j.status).bind(3, j.progress).bind(4, j.error).bind(5, j.result.dump()).bind(6, j.updated_at);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no job with id '" + j.id + "'", "id");
    return j;
}

Result<bool> JobStore::update_if(const Job& in, const std::vector<std::string>& from) {
    return m_db.transaction([&] {
        Stmt check(m_db, "SELECT status FROM jobs WHERE id = ?1");
        check.bind(1, in.id);
        if (!check.step()) return false;
        const std::string status = check.text(0);
        if (std::find(from.begin(), from.end(), status) == from.end()) return false;
        Stmt s(m_db, "UPDATE jobs SET status = ?2, progress = ?3, error = ?4, result = ?5, updated_at = ?6 WHERE id = ?1");
        s.bind(1, in.id).bind(2, in.status).bind(3, in.progress).bind(4, in.error).bind(5, in.result.dump()).bind(6, now_ms());
        s.run();
        return true;
    });
}

Result<void> JobStore::set_progress(const std::string& id, double progress) {
    return m_db.transaction([&] {
        Stmt s(m_db, "UPDATE jobs SET progress = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'running'");
        s.bind(1, id).bind(2, progress).bind(3, now_ms());
        s.run();
    });
}

namespace {

// " AND kind [NOT] IN (?2, ?3, ...)" for a filter; the kinds are bound from `first` on.
std::string kind_clause(const KindFilter& f, int first) {
    if (f.kinds.empty()) return f.include ? " AND 0" : "";
    std::string out = f.include ? " AND kind IN (" : " AND kind NOT IN (";
    for (size_t i = 0; i < f.kinds.size(); ++i) out += std::string(i ? ", ?" : "?") + std::to_string(first + static_cast<int>(i));
    return out + ")";
}

void bind_kinds(Stmt& s, const KindFilter& f, int first) {
    for (size_t i = 0; i < f.kinds.size(); ++i) s.bind(first + static_cast<int>(i), f.kinds[i]);
}

}  // namespace

Result<std::optional<Job>> JobStore::next_queued(const KindFilter& filter) {
    return m_db.transaction([&]() -> std::optional<Job> {
        Stmt s(m_db, std::string("SELECT ") + kColumns + " FROM jobs WHERE status = 'queued'" + kind_clause(filter, 1) +
                         " ORDER BY created_at, id LIMIT 1");
        bind_kinds(s, filter, 1);
        if (!s.step()) return std::nullopt;
        return read_job(s);
    });
}

Result<std::optional<Job>> JobStore::active(const std::string& kind, const std::string& chat_id) {
    return m_db.transaction([&]() -> std::optional<Job> {
        Stmt s(m_db, std::string("SELECT ") + kColumns +
                         " FROM jobs WHERE kind = ?1 AND chat_id = ?2 AND status IN ('queued', 'running') LIMIT 1");
        s.bind(1, kind).bind(2, chat_id);
        if (!s.step()) return std::nullopt;
        return read_job(s);
    });
}

Result<std::vector<Job>> JobStore::active_for_chat(const std::string& chat_id) {
    return m_db.transaction([&] {
        std::vector<Job> out;
        Stmt s(m_db, std::string("SELECT ") + kColumns +
                         " FROM jobs WHERE chat_id = ?1 AND status IN ('queued', 'running') ORDER BY created_at, id");
        s.bind(1, chat_id);
        while (s.step()) out.push_back(read_job(s));
        return out;
    });
}

Result<std::vector<Job>> JobStore::active_of_kind(const std::string& kind, const std::string& character_id) {
    return m_db.transaction([&] {
        std::vector<Job> out;
        Stmt s(m_db, std::string("SELECT ") + kColumns +
                         " FROM jobs WHERE kind = ?1 AND (?2 = '' OR character_id = ?2) AND status IN ('queued', 'running')"
                         " ORDER BY created_at, id");
        s.bind(1, kind).bind(2, character_id);
        while (s.step()) out.push_back(read_job(s));
        return out;
    });
}

Result<std::optional<Job>> JobStore::latest_of_kind(const std::string& kind, const std::string& character_id) {
    return m_db.transaction([&]() -> std::optional<Job> {
        Stmt s(m_db, std::string("SELECT ") + kColumns +
                         " FROM jobs WHERE kind = ?1 AND character_id = ?2 ORDER BY created_at DESC, rowid DESC LIMIT 1");
        s.bind(1, kind).bind(2, character_id);
        if (!s.step()) return std::nullopt;
        return read_job(s);
    });
}

Result<int> JobStore::requeue_running(const KindFilter& filter) {
    return m_db.transaction([&] {
        Stmt s(m_db, std::string("UPDATE jobs SET status = 'queued', progress = 0 WHERE status = 'running'") + kind_clause(filter, 1));
        bind_kinds(s, filter, 1);
        s.run();
        return m_db.changes();
    });
}

}  // namespace mc::store
