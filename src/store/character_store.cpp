#include "store/character_store.hpp"

#include "store/blob_store.hpp"

#include "core/json.hpp"
#include "core/text.hpp"

namespace mc::store {
namespace {

constexpr const char* kColumns =
    "id, name, description, personality, scenario, first_mes, alternate_greetings, mes_example, system_prompt, "
    "post_history_instructions, creator_notes, tags, appearance, voice, avatar_file, voice_sample_file, "
    "voice_status, voice_error, extensions, created_at, updated_at, card, voice_sample_info";

Json parse_or(const std::string& text, Json fallback) {
    Json v = Json::parse(text, nullptr, false);
    return v.is_discarded() ? fallback : v;
}

Character read_row(const Stmt& s) {
    Character c;
    c.id = s.text(0);
    c.name = s.text(1);
    c.description = s.text(2);
    c.personality = s.text(3);
    c.scenario = s.text(4);
    c.first_mes = s.text(5);
    c.alternate_greetings = parse_or(s.text(6), Json::array()).get<std::vector<std::string>>();
    c.mes_example = s.text(7);
    c.system_prompt = s.text(8);
    c.post_history_instructions = s.text(9);
    c.creator_notes = s.text(10);
    c.tags = parse_or(s.text(11), Json::array()).get<std::vector<std::string>>();
    c.appearance = s.text(12);
    c.voice = parse_or(s.text(13), Json::object());
    if (!s.is_null(14)) c.avatar_file = s.text(14);
    if (!s.is_null(15)) c.voice_sample_file = s.text(15);
    c.voice_status = s.text(16);
    c.voice_error = s.text(17);
    c.extensions = parse_or(s.text(18), Json::object());
    c.created_at = s.integer(19);
    c.updated_at = s.integer(20);
    const Json card = parse_or(s.text(21), Json::object());
    c.creator = json_string_or(card, "creator", "");
    c.character_version = json_string_or(card, "character_version", "");
    c.nickname = json_string_or(card, "nickname", "");
    auto strings = [&](const char* key) {
        std::vector<std::string> out;
        if (card.contains(key) && card[key].is_array()) {
            for (const auto& v : card[key]) if (v.is_string()) out.push_back(v.get<std::string>());
        }
        return out;
    };
    c.group_only_greetings = strings("group_only_greetings");
    c.source = strings("source");
    if (card.contains("creator_notes_multilingual") && card["creator_notes_multilingual"].is_object()) {
        c.creator_notes_multilingual = card["creator_notes_multilingual"];
    }
    if (card.contains("assets") && card["assets"].is_array()) c.assets = card["assets"];
    c.voice_sample_info = parse_or(s.text(22), Json::object());
    if (card.contains("creation_date") && card["creation_date"].is_number_integer()) c.creation_date = card["creation_date"].get<int64_t>();
    if (card.contains("modification_date") && card["modification_date"].is_number_integer()) {
        c.modification_date = card["modification_date"].get<int64_t>();
    }
    return c;
}

void bind_all(Stmt& s, const Character& c) {
    s.bind(1, c.id).bind(2, c.name).bind(3, c.description).bind(4, c.personality).bind(5, c.scenario);
    s.bind(6, c.first_mes).bind(7, Json(c.alternate_greetings).dump()).bind(8, c.mes_example);
    s.bind(9, c.system_prompt).bind(10, c.post_history_instructions).bind(11, c.creator_notes);
    s.bind(12, Json(c.tags).dump()).bind(13, c.appearance).bind(14, c.voice.dump());
    s.bind(15, c.avatar_file).bind(16, c.voice_sample_file).bind(17, c.voice_status).bind(18, c.voice_error);
    s.bind(19, c.extensions.dump()).bind(20, c.created_at).bind(21, c.updated_at);
    Json card = {{"creator", c.creator}, {"character_version", c.character_version}, {"nickname", c.nickname},
                 {"group_only_greetings", c.group_only_greetings}, {"source", c.source},
                 {"creator_notes_multilingual", c.creator_notes_multilingual}, {"assets", c.assets}};
    if (c.creation_date) card["creation_date"] = *c.creation_date;
    if (c.modification_date) card["modification_date"] = *c.modification_date;
    s.bind(22, card.dump());
    s.bind(23, c.voice_sample_info.dump());
}

}  // namespace

Result<std::vector<Character>> CharacterStore::list() {
    return m_db.transaction([&] {
        std::vector<Character> out;
        Stmt s(m_db, std::string("SELECT ") + kColumns + " FROM characters ORDER BY updated_at DESC, id");
        while (s.step()) out.push_back(read_row(s));
        return out;
    });
}

Result<Character> CharacterStore::get(const std::string& id) {
    auto found = m_db.transaction([&]() -> std::optional<Character> {
        Stmt s(m_db, std::string("SELECT ") + kColumns + " FROM characters WHERE id = ?1");
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        return read_row(s);
    });
    if (!found) return std::unexpected(found.error());
    if (!*found) return fail(ErrorCode::NotFound, "no character with id '" + id + "'", "id");
    return std::move(**found);
}

Result<Character> CharacterStore::create(Character c) {
    c.id = random_hex(8);
    c.created_at = c.updated_at = now_ms();
    auto done = m_db.transaction([&] {
        Stmt s(m_db, std::string("INSERT INTO characters (") + kColumns +
                         ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23)");
        bind_all(s, c);
        s.run();
    });
    if (!done) return std::unexpected(done.error());
    return c;
}

Result<Character> CharacterStore::update(Character c) {
    c.updated_at = std::max(now_ms(), c.created_at);
    auto changed = m_db.transaction([&] {
        Stmt s(m_db,
               "UPDATE characters SET name=?2, description=?3, personality=?4, scenario=?5, first_mes=?6, "
               "alternate_greetings=?7, mes_example=?8, system_prompt=?9, post_history_instructions=?10, "
               "creator_notes=?11, tags=?12, appearance=?13, voice=?14, avatar_file=?15, voice_sample_file=?16, "
               "extensions=?19, created_at=?20, updated_at=?21, card=?22, voice_sample_info=?23 WHERE id=?1");
        bind_all(s, c);
        s.run();
        const int n = m_db.changes();
        // What the caller gets back carries the stored training state, not its own copy's.
        Stmt q(m_db, "SELECT voice_status, voice_error FROM characters WHERE id = ?1");
        q.bind(1, c.id);
        if (q.step()) {
            c.voice_status = q.text(0);
            c.voice_error = q.text(1);
        }
        return n;
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no character with id '" + c.id + "'", "id");
    return c;
}

Result<void> CharacterStore::set_voice_status(const std::string& id, const std::string& status, const std::string& error) {
    auto changed = m_db.transaction([&] {
        Stmt s(m_db, "UPDATE characters SET voice_status = ?2, voice_error = ?3 WHERE id = ?1");
        s.bind(1, id).bind(2, status).bind(3, error);
        s.run();
        return m_db.changes();
    });
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 0) return fail(ErrorCode::NotFound, "no character with id '" + id + "'", "id");
    return {};
}

Result<std::vector<std::string>> CharacterStore::remove(const std::string& id) {
    auto files = m_db.transaction([&]() -> std::optional<std::vector<std::string>> {
        Stmt q(m_db, "SELECT avatar_file, voice_sample_file, voice_sample_info FROM characters WHERE id = ?1");
        q.bind(1, id);
        if (!q.step()) return std::nullopt;
        std::vector<std::string> owned;
        if (!q.is_null(0)) owned.push_back(q.text(0));
        if (!q.is_null(1)) owned.push_back(q.text(1));
        const std::string wav = json_string_or(parse_or(q.text(2), Json::object()), "wav", "");
        if (!wav.empty()) owned.push_back(wav);
        // The spoken replies and pictures in its chats go with it.
        Stmt m(m_db, "SELECT media FROM messages WHERE media != '[]' AND chat_id IN (SELECT id FROM chats WHERE character_id = ?1)");
        m.bind(1, id);
        while (m.step()) BlobStore::media_files(m.text(0), owned);
        Stmt d(m_db, "DELETE FROM characters WHERE id = ?1");
        d.bind(1, id);
        d.run();
        return owned;
    });
    if (!files) return std::unexpected(files.error());
    if (!*files) return fail(ErrorCode::NotFound, "no character with id '" + id + "'", "id");
    return std::move(**files);
}

}  // namespace mc::store
