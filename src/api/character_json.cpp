#include "api/character_json.hpp"

#include <set>

#include "api/chat_json.hpp"
#include "core/text.hpp"
#include "image/image_service.hpp"
#include "voice/tts_service.hpp"

namespace mc::api {
namespace {

const std::set<std::string> kReadOnly = {"id", "avatar_url", "voice_sample_url", "voice_sample_info", "voice_status",
                                         "voice_error", "created_at", "updated_at"};

// What the editor shows of a voice sample (the normalized copy's blob name stays inside).
Json sample_info(const Character& c) {
    if (!c.voice_sample_file) return nullptr;
    Json out = c.voice_sample_info.is_object() ? c.voice_sample_info : Json::object();
    out.erase("wav");
    return out;
}

Result<std::string> text_field(const Json& body, const std::string& key) {
    const Json& v = body.at(key);
    if (!v.is_string()) {
        return fail_because(ErrorCode::InvalidInput, "'" + key + "' must be a string", key, "type", {{"expected", "string"}});
    }
    std::string s = v.get<std::string>();
    if (s.size() > kMaxTextBytes) {
        return fail_because(ErrorCode::TooLarge, "'" + key + "' is longer than " + std::to_string(kMaxTextBytes) + " bytes", key,
                            "too_long", {{"max", std::to_string(kMaxTextBytes)}, {"unit", "bytes"}});
    }
    return s;
}

Result<std::vector<std::string>> list_field(const Json& body, const std::string& key) {
    const Json& v = body.at(key);
    if (!v.is_array()) {
        return fail_because(ErrorCode::InvalidInput, "'" + key + "' must be an array of strings", key, "type",
                            {{"expected", "array"}});
    }
    if (v.size() > kMaxListItems) {
        return fail_because(ErrorCode::TooLarge, "'" + key + "' has more than " + std::to_string(kMaxListItems) + " items", key,
                            "too_many", {{"max", std::to_string(kMaxListItems)}});
    }
    std::vector<std::string> out;
    size_t bytes = 0;
    for (const auto& item : v) {
        if (!item.is_string()) {
            return fail_because(ErrorCode::InvalidInput, "'" + key + "' must be an array of strings", key, "type",
                                {{"expected", "array"}});
        }
        out.push_back(item.get<std::string>());
        bytes += out.back().size();
    }
    if (bytes > kMaxTextBytes) {
        return fail_because(ErrorCode::TooLarge, "'" + key + "' is longer than " + std::to_string(kMaxTextBytes) + " bytes", key,
                            "too_long", {{"max", std::to_string(kMaxTextBytes)}, {"unit", "bytes"}});
    }
    return out;
}

}  // namespace

Json character_to_json(const Character& c) {
    const std::string base = "/api/characters/" + c.id;
    return Json{
        {"id", c.id},
        {"name", c.name},
        {"description", c.description},
        {"personality", c.personality},
        {"scenario", c.scenario},
        {"first_mes", c.first_mes},
        {"alternate_greetings", c.alternate_greetings},
        {"mes_example", c.mes_example},
        {"system_prompt", c.system_prompt},
        {"post_history_instructions", c.post_history_instructions},
        {"creator_notes", c.creator_notes},
        {"tags", c.tags},
        {"appearance", c.appearance},
        {"voice", c.voice},
        {"avatar_url", c.avatar_file ? Json(base + "/avatar") : Json(nullptr)},
        {"voice_sample_url", c.voice_sample_file ? Json(base + "/voice_sample") : Json(nullptr)},
        {"voice_sample_info", sample_info(c)},
        {"voice_status", c.voice_status},
        {"voice_error", c.voice_error},
        {"created_at", c.created_at},
        {"updated_at", c.updated_at},
        {"extensions", c.extensions},
        {"creator", c.creator},
        {"character_version", c.character_version},
        {"nickname", c.nickname},
        {"group_only_greetings", c.group_only_greetings},
        {"source", c.source},
        {"creator_notes_multilingual", c.creator_notes_multilingual},
        {"assets", c.assets},
        {"creation_date", c.creation_date ? Json(*c.creation_date) : Json(nullptr)},
        {"modification_date", c.modification_date ? Json(*c.modification_date) : Json(nullptr)},
    };
}

Result<void> apply_character_fields(Character& c, const Json& body, bool creating) {
    // Every problem is collected, so the editor can mark each bad field at once.
    Problems problems;
    auto problem = [&](ErrorCode code, std::string message, std::string key, std::string reason,
                       std::vector<std::pair<std::string, std::string>> params = {}) {
        problems.invalid(std::move(key), std::move(message), std::move(reason), std::move(params), code);
    };
    if (creating && !body.contains("name")) problem(ErrorCode::InvalidInput, "'name' is required", "name", "required");
    std::string* text_targets[] = {&c.name, &c.description, &c.personality, &c.scenario, &c.first_mes,
                                   &c.mes_example, &c.system_prompt, &c.post_history_instructions,
                                   &c.creator_notes, &c.appearance, &c.creator, &c.character_version, &c.nickname};
    const char* text_keys[] = {"name", "description", "personality", "scenario", "first_mes", "mes_example",
                               "system_prompt", "post_history_instructions", "creator_notes", "appearance",
                               "creator", "character_version", "nickname"};
    for (auto it = body.begin(); it != body.end(); ++it) {
        const std::string& key = it.key();
        bool handled = kReadOnly.contains(key);
        for (size_t i = 0; !handled && i < std::size(text_keys); ++i) {
            if (key != text_keys[i]) continue;
            handled = true;
            auto s = text_field(body, key);
            if (!s) {
                problems.add(s.error());
                continue;
            }
            *text_targets[i] = std::move(*s);
        }
        if (handled) continue;
        if (key == "alternate_greetings" || key == "tags" || key == "group_only_greetings" || key == "source") {
            auto list = list_field(body, key);
            if (!list) {
                problems.add(list.error());
                continue;
            }
            (key == "tags"                   ? c.tags
             : key == "alternate_greetings" ? c.alternate_greetings
             : key == "source"              ? c.source
                                            : c.group_only_greetings) = std::move(*list);
        } else if (key == "creation_date" || key == "modification_date") {
            std::optional<int64_t>& target = key == "creation_date" ? c.creation_date : c.modification_date;
            if (it->is_null()) {
                target.reset();
                continue;
            }
            if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxSafeInteger) {
                problem(ErrorCode::InvalidInput,
                        "'" + key + "' must be an integer between 0 and 9007199254740991 (unix seconds) or null", key, "range",
                        {{"min", "0"}, {"max", std::to_string(kMaxSafeInteger)}});
                continue;
            }
            target = it->get<int64_t>();
        } else if (key == "creator_notes_multilingual") {
            bool ok = it->is_object();
            for (const auto& v : ok ? *it : Json::object()) ok = ok && v.is_string();
            if (!ok) {
                problem(ErrorCode::InvalidInput, "'" + key + "' must be an object of language -> text", key, "type",
                        {{"expected", "object"}});
            } else if (it->dump().size() > kMaxTextBytes) {
                problem(ErrorCode::TooLarge, "'" + key + "' is too large", key, "too_long", {{"max", std::to_string(kMaxTextBytes)}, {"unit", "bytes"}});
            } else {
                c.creator_notes_multilingual = *it;
            }
        } else if (key == "assets") {
            bool ok = it->is_array() && it->size() <= kMaxListItems;
            for (const auto& a : ok ? *it : Json::array()) ok = ok && a.is_object();
            if (!ok) {
                problem(ErrorCode::InvalidInput,
                        "'assets' must be an array of at most " + std::to_string(kMaxListItems) + " objects", key, "invalid");
            } else if (it->dump().size() > kMaxTextBytes) {
                problem(ErrorCode::TooLarge, "'assets' is too large", key, "too_long", {{"max", std::to_string(kMaxTextBytes)}, {"unit", "bytes"}});
            } else {
                c.assets = *it;
            }
        } else if (key == "voice" || key == "extensions") {
            if (!it->is_object()) {
                problem(ErrorCode::InvalidInput, "'" + key + "' must be an object", key, "type", {{"expected", "object"}});
                continue;
            }
            if (it->dump().size() > kMaxTextBytes) {
                problem(ErrorCode::TooLarge, "'" + key + "' is too large", key, "too_long", {{"max", std::to_string(kMaxTextBytes)}, {"unit", "bytes"}});
                continue;
            }
            if (key == "voice") {
                // Engine, voice, language, speed, pitch, clone: checked here so a bad voice is
                // refused when saved, not when the first reply is spoken.
                if (auto v = voice::voice_spec_from_json(*it); !v) {
                    problems.add(v.error());
                    continue;
                }
            }
            if (key == "extensions") {
                // Our own picture settings (extensions.mycandy.image), the character's own samplers
                // (extensions.mycandy.sampling) and its note (SillyTavern's extensions.depth_prompt)
                // are checked when saved.
                const size_t before = problems.size();
                if (auto v = image::character_image_from_extensions(*it); !v) problems.add(v.error());
                if (const Json* mine = character_sampling(*it)) {
                    if (auto v = sampling_from_json(*mine, llm::Sampling{}, "extensions.mycandy.sampling."); !v) problems.add(v.error());
                }
                if (it->contains("depth_prompt") && !(*it)["depth_prompt"].is_null()) {
                    const Json& d = (*it)["depth_prompt"];
                    const std::string at = "extensions.depth_prompt";
                    if (!d.is_object()) {
                        problem(ErrorCode::InvalidInput, "'" + at + "' must be an object {prompt, depth, role}", at, "type", {{"expected", "object"}});
                    } else {
                        if (d.contains("prompt") && !d["prompt"].is_string()) {
                            problem(ErrorCode::InvalidInput, "'" + at + ".prompt' must be text", at + ".prompt", "type", {{"expected", "string"}});
                        }
                        if (d.contains("depth") && (!d["depth"].is_number_integer() || d["depth"].get<int64_t>() < 0 || d["depth"].get<int64_t>() > 1000)) {
                            problem(ErrorCode::InvalidInput, "'" + at + ".depth' must be a whole number from 0 to 1000", at + ".depth", "range",
                                    {{"min", "0"}, {"max", "1000"}});
                        }
                    }
                }
                if (problems.size() != before) continue;
            }
            (key == "voice" ? c.voice : c.extensions) = *it;
        } else {
            problem(ErrorCode::InvalidInput, "unknown field '" + key.substr(0, 100) + "'", key.substr(0, 100), "unknown_field");
        }
        if (problems.size() > 50) break;
    }
    // Names: 1-100 characters, not only whitespace.
    const size_t len = utf8_length(c.name);
    if (!body.contains("name") || body["name"].is_string()) {
        if (c.name.find_first_not_of(" \t\r\n") == std::string::npos) {
            if (body.contains("name")) problem(ErrorCode::InvalidInput, "'name' must not be empty", "name", "empty");
        } else if (len > kMaxNameChars) {
            problem(ErrorCode::InvalidInput,
                    "'name' must be at most " + std::to_string(kMaxNameChars) + " characters (got " + std::to_string(len) + ")",
                    "name", "too_long", {{"max", std::to_string(kMaxNameChars)}, {"unit", "characters"}});
        }
    }
    if (!problems.empty()) return std::unexpected(problems.error());
    return {};
}

}  // namespace mc::api
