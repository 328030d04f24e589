#include "cards/card.hpp"

#include <zip.h>

#include <algorithm>
#include <map>
#include <memory>

#include "cards/lorebook.hpp"
#include "cards/png.hpp"
#include "core/json.hpp"
#include "core/text.hpp"

namespace mc::cards {
namespace {

const char* const kTextFields[] = {"name", "description", "personality", "scenario", "first_mes", "mes_example",
                                   "system_prompt", "post_history_instructions", "creator_notes", "creator",
                                   "character_version", "nickname"};
const char* const kV1Fields[] = {"name", "description", "personality", "scenario", "first_mes", "mes_example"};
const char* const kListFields[] = {"alternate_greetings", "tags", "group_only_greetings", "source"};

Error bad(const std::string& field, const std::string& message, ErrorCode code = ErrorCode::InvalidInput) {
    return Error{code, "'" + field + "' " + message, field};
}

Result<Json> read_data(const Json& data, int spec, const std::string& prefix) {
    Json f = Json::object();
    for (const char* key : kTextFields) {
        if (spec == 1 && std::find(std::begin(kV1Fields), std::end(kV1Fields), std::string(key)) == std::end(kV1Fields)) continue;
        if (!data.contains(key) || data[key].is_null()) continue;
        if (!data[key].is_string()) return std::unexpected(bad(prefix + key, "must be a string"));
        f[key] = data[key];
    }
    if (spec == 1) return f;
    for (const char* key : kListFields) {
        if (!data.contains(key) || data[key].is_null()) continue;
        const Json& v = data[key];
        if (!v.is_array()) return std::unexpected(bad(prefix + key, "must be an array of strings"));
        for (const auto& s : v) {
            if (!s.is_string()) return std::unexpected(bad(prefix + key, "must be an array of strings"));
        }
        f[key] = v;
    }
    if (data.contains("extensions") && !data["extensions"].is_null()) {
        if (!data["extensions"].is_object()) return std::unexpected(bad(prefix + "extensions", "must be an object"));
        Json ext = data["extensions"];
        // Our own fields travel in extensions.mycandy; voice and appearance are character fields here.
        if (ext.contains("mycandy") && ext["mycandy"].is_object()) {
            Json& mine = ext["mycandy"];
            // Only values of the shape a character has; anything else stays extension data, so
            // it is neither lost nor turned into a voice (an array there broke the round trip).
            if (mine.contains("voice") && mine["voice"].is_object() && !mine["voice"].empty()) {
                f["voice"] = mine["voice"];
                mine.erase("voice");
            }
            if (mine.contains("appearance") && mine["appearance"].is_string() && !mine["appearance"].get_ref<const std::string&>().empty()) {
                f["appearance"] = mine["appearance"];
                mine.erase("appearance");
            }
            if (mine.empty()) ext.erase("mycandy");
        }
        f["extensions"] = std::move(ext);
    }
    if (data.contains("creator_notes_multilingual") && !data["creator_notes_multilingual"].is_null()) {
        const Json& v = data["creator_notes_multilingual"];
        if (!v.is_object()) return std::unexpected(bad(prefix + "creator_notes_multilingual", "must be an object"));
        for (const auto& s : v) {
            if (!s.is_string()) return std::unexpected(bad(prefix + "creator_notes_multilingual", "must map languages to strings"));
        }
        f["creator_notes_multilingual"] = v;
    }
    if (data.contains("assets") && !data["assets"].is_null()) {
        const Json& v = data["assets"];
        if (!v.is_array()) return std::unexpected(bad(prefix + "assets", "must be an array"));
        for (const auto& a : v) {
            if (!a.is_object()) return std::unexpected(bad(prefix + "assets", "must be an array of objects"));
        }
        f["assets"] = v;
    }
    for (const char* key : {"creation_date", "modification_date"}) {
        if (!data.contains(key) || data[key].is_null()) continue;
        const Json& v = data[key];
        if (!v.is_number()) return std::unexpected(bad(prefix + key, "must be a number (unix seconds)"));
        const double d = v.get<double>();
        if (!(d >= 0 && d <= 1e13)) return std::unexpected(bad(prefix + key, "must be between 0 and 10000000000000"));
        f[key] = static_cast<int64_t>(d);
    }
    return f;
}

// Reads a CHARX zip: card.json and the main icon. Limits: entry count, each entry's and the total
// uncompressed size (as declared and as actually read), entry names without "..", absolute paths
// or backslashes.
Result<CardImport> import_charx(std::string_view bytes) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
    if (!src) return fail(ErrorCode::InvalidInput, "the CHARX file cannot be read", "file");
    zip_t* za = zip_open_from_source(src, ZIP_RDONLY, &err);
    if (!za) {
        zip_source_free(src);
        zip_error_fini(&err);
        return fail(ErrorCode::InvalidInput, "the CHARX file is not a valid zip archive", "file");
    }
    std::unique_ptr<zip_t, decltype(&zip_discard)> archive(za, &zip_discard);
    const zip_int64_t n = zip_get_num_entries(za, 0);
    if (n < 0 || static_cast<size_t>(n) > kMaxCharxEntries) {
        return fail(ErrorCode::TooLarge, "the CHARX file has more than " + std::to_string(kMaxCharxEntries) + " entries", "file");
    }
    uint64_t declared = 0;
    std::optional<zip_uint64_t> card_index;
    for (zip_int64_t i = 0; i < n; ++i) {
        zip_stat_t st;
        if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0) {
            return fail(ErrorCode::InvalidInput, "the CHARX file has an unreadable entry", "file");
        }
        const std::string name = st.name ? st.name : "";
        if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos || name.find("..") != std::string::npos ||
            name.find(':') != std::string::npos || !utf8_valid(name)) {
            return fail(ErrorCode::InvalidInput, "the CHARX file has an unsafe entry name (absolute, '..' or a drive)", "file");
        }
        declared += st.size;
        if (declared > kMaxCharxUnpackedBytes) {
            return fail(ErrorCode::TooLarge, "the CHARX file unpacks to more than 64 MB", "file");
        }
        if (name == "card.json") card_index = static_cast<zip_uint64_t>(i);
    }
    if (!card_index) return fail(ErrorCode::InvalidInput, "the CHARX file has no card.json at its root", "file");
    uint64_t read_total = 0;
    auto read_entry = [&](zip_uint64_t index, size_t max) -> Result<std::string> {
        zip_file_t* zf = zip_fopen_index(za, index, 0);
        if (!zf) return fail(ErrorCode::InvalidInput, "the CHARX file has an entry that cannot be unpacked", "file");
        std::string out;
        char buf[65536];
        while (true) {
            const zip_int64_t got = zip_fread(zf, buf, sizeof buf);
            if (got < 0) {
                zip_fclose(zf);
                return fail(ErrorCode::InvalidInput, "the CHARX file has a broken entry", "file");
            }
            if (got == 0) break;
            out.append(buf, static_cast<size_t>(got));
            read_total += static_cast<uint64_t>(got);
            // Declared sizes can lie: the bytes actually unpacked are capped too.
            if (out.size() > max || read_total > kMaxCharxUnpackedBytes) {
                zip_fclose(zf);
                return fail(ErrorCode::TooLarge, "the CHARX file unpacks to more than its limits allow", "file");
            }
        }
        zip_fclose(zf);
        return out;
    };
    auto text = read_entry(*card_index, kMaxCardJsonBytes);
    if (!text) return std::unexpected(text.error());
    auto doc = parse_json(*text, "card.json", "file");
    if (!doc) return std::unexpected(doc.error());
    auto card = card_from_json(*doc);
    if (!card) return card;
    card->format = "charx";
    // The main icon: assets[type=icon, name=main] (else the first icon) with an embeded:// uri.
    if (card->fields.contains("assets")) {
        const Json* icon = nullptr;
        for (const auto& a : card->fields["assets"]) {
            if (json_string_or(a, "type", "") != "icon") continue;
            if (!icon || json_string_or(a, "name", "") == "main") icon = &a;
        }
        const std::string uri = icon ? json_string_or(*icon, "uri", "") : "";
        for (const char* scheme : {"embeded://", "embedded://"}) {
            if (!uri.starts_with(scheme)) continue;
            const std::string path = uri.substr(std::string(scheme).size());
            const zip_int64_t at = zip_name_locate(za, path.c_str(), 0);
            if (at < 0) break;
            auto img = read_entry(static_cast<zip_uint64_t>(at), kMaxPngBytes);
            if (!img) return std::unexpected(img.error());
            card->image = std::move(*img);
        }
    }
    return card;
}

Json mycandy_extensions(const Json& character) {
    Json ext = character.contains("extensions") && character["extensions"].is_object() ? character["extensions"] : Json::object();
    const bool voice = character.contains("voice") && character["voice"].is_object() && !character["voice"].empty();
    const bool looks = character.contains("appearance") && character["appearance"].is_string() &&
                       !character["appearance"].get_ref<const std::string&>().empty();
    if (voice || looks) {
        if (!ext.contains("mycandy") || !ext["mycandy"].is_object()) ext["mycandy"] = Json::object();
        if (voice) ext["mycandy"]["voice"] = character["voice"];
        if (looks) ext["mycandy"]["appearance"] = character["appearance"];
    }
    return ext;
}

std::string str(const Json& c, const char* key) { return json_string_or(c, key, ""); }
Json list(const Json& c, const char* key) { return c.contains(key) && c[key].is_array() ? c[key] : Json::array(); }

}  // namespace

Result<CardImport> card_from_json(const Json& card) {
    if (!card.is_object()) return fail(ErrorCode::InvalidInput, "a character card must be a JSON object", "file");
    CardImport out;
    out.format = "json";
    const std::string spec = json_string_or(card, "spec", "");
    const Json* data = &card;
    std::string prefix;
    if (spec == "chara_card_v3" || spec == "chara_card_v2") {
        if (!card.contains("data") || !card["data"].is_object()) return fail(ErrorCode::InvalidInput, "'data' must be an object", "data");
        data = &card["data"];
        prefix = "data.";
        out.spec = spec == "chara_card_v3" ? 3 : 2;
        if (out.spec == 3) {
            // spec_version is compared as a number: 3.x is accepted.
            double v = 3.0;
            if (card.contains("spec_version")) {
                const Json& sv = card["spec_version"];
                try {
                    v = sv.is_number() ? sv.get<double>() : sv.is_string() ? std::stod(sv.get<std::string>()) : 0.0;
                } catch (...) {
                    v = 0;
                }
            }
            if (!(v >= 3.0 && v < 4.0)) return fail(ErrorCode::UnsupportedMedia, "'spec_version' must be 3.x for a V3 card", "spec_version");
        }
    } else if (!spec.empty()) {
        return fail(ErrorCode::UnsupportedMedia, "'spec' '" + utf8_prefix(spec, 64) + "' is not a character card spec this server reads", "spec");
    } else if (!card.contains("name")) {
        return fail(ErrorCode::InvalidInput, "not a character card: no 'spec' and no 'name'", "file");
    }
    auto fields = read_data(*data, out.spec, prefix);
    if (!fields) return std::unexpected(fields.error());
    out.fields = std::move(*fields);
    if (!out.fields.contains("name")) return fail(ErrorCode::InvalidInput, "'" + prefix + "name' is required", prefix + "name");
    if (out.spec >= 2 && data->contains("character_book") && !(*data)["character_book"].is_null()) {
        auto book = normalize_lorebook((*data)["character_book"], prefix + "character_book.");
        if (!book) return std::unexpected(book.error());
        out.book = std::move(*book);
    }
    return out;
}

Result<CardImport> import_card(std::string_view bytes) {
    if (bytes.empty()) return fail(ErrorCode::InvalidInput, "the card file is empty", "file");
    if (bytes.size() > kMaxImportBytes) return fail(ErrorCode::TooLarge, "the card file is larger than 32 MB", "file");
    if (is_png(bytes)) {
        auto chunks = png_text_chunks(bytes);
        if (!chunks) return std::unexpected(chunks.error());
        // ccv3 (V3) wins over chara (V2) when both are there.
        const char* key = chunks->contains("ccv3") ? "ccv3" : chunks->contains("chara") ? "chara" : nullptr;
        if (!key) return fail(ErrorCode::InvalidInput, "the PNG has no character card in it (no 'chara' or 'ccv3' text chunk)", "file");
        auto json_text = base64_decode(chunks->at(key));
        if (!json_text) return fail(ErrorCode::InvalidInput, std::string("the PNG's '") + key + "' chunk is not base64", "file");
        if (json_text->size() > kMaxCardJsonBytes) {
            return fail(ErrorCode::TooLarge, "the card's JSON is larger than 4 MB", "file");
        }
        if (!utf8_valid(*json_text)) return fail(ErrorCode::InvalidInput, std::string("the PNG's '") + key + "' chunk is not UTF-8 text", "file");
        auto doc = parse_json(*json_text, std::string("the '") + key + "' chunk", "file");
        if (!doc) return std::unexpected(doc.error());
        auto card = card_from_json(*doc);
        if (!card) return card;
        card->format = "png";
        auto image = png_strip_card_chunks(bytes);
        if (!image) return std::unexpected(image.error());
        card->image = std::move(*image);
        return card;
    }
    if (bytes.size() >= 4 && bytes.substr(0, 4) == std::string_view("PK\x03\x04", 4)) return import_charx(bytes);
    // Anything else must be a JSON card (optionally after a UTF-8 byte order mark).
    std::string_view text = bytes;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos || text[first] != '{') {
        return fail(ErrorCode::UnsupportedMedia, "the file is not a character card (PNG, JSON or CHARX, decided by its content)", "file");
    }
    if (text.size() > kMaxCardJsonBytes) return fail(ErrorCode::TooLarge, "the card's JSON is larger than 4 MB", "file");
    if (!utf8_valid(text)) return fail(ErrorCode::InvalidInput, "the card's JSON is not valid UTF-8", "file");
    auto doc = parse_json(text, "the card", "file");
    if (!doc) return std::unexpected(doc.error());
    return card_from_json(*doc);
}

Json card_v2(const Json& c, const std::optional<Json>& book) {
    Json data = {
        {"name", str(c, "name")},
        {"description", str(c, "description")},
        {"personality", str(c, "personality")},
        {"scenario", str(c, "scenario")},
        {"first_mes", str(c, "first_mes")},
        {"mes_example", str(c, "mes_example")},
        {"creator_notes", str(c, "creator_notes")},
        {"system_prompt", str(c, "system_prompt")},
        {"post_history_instructions", str(c, "post_history_instructions")},
        {"alternate_greetings", list(c, "alternate_greetings")},
        {"tags", list(c, "tags")},
        {"creator", str(c, "creator")},
        {"character_version", str(c, "character_version")},
        {"extensions", mycandy_extensions(c)},
    };
    if (book) data["character_book"] = *book;
    return Json{{"spec", "chara_card_v2"}, {"spec_version", "2.0"}, {"data", std::move(data)}};
}

Json card_v3(const Json& c, const std::optional<Json>& book) {
    Json card = card_v2(c, book);
    card["spec"] = "chara_card_v3";
    card["spec_version"] = "3.0";
    Json& data = card["data"];
    data["group_only_greetings"] = list(c, "group_only_greetings");
    if (!str(c, "nickname").empty()) data["nickname"] = str(c, "nickname");
    if (c.contains("creator_notes_multilingual") && c["creator_notes_multilingual"].is_object() &&
        !c["creator_notes_multilingual"].empty()) {
        data["creator_notes_multilingual"] = c["creator_notes_multilingual"];
    }
    if (!list(c, "source").empty()) data["source"] = list(c, "source");
    if (!list(c, "assets").empty()) data["assets"] = list(c, "assets");
    for (const char* key : {"creation_date", "modification_date"}) {
        if (c.contains(key) && c[key].is_number_integer()) data[key] = c[key];
    }
    if (book && !data["character_book"].empty()) {
        // V3 requires use_regex on every entry (normalize_lorebook sets it).
        for (auto& e : data["character_book"]["entries"]) {
            if (!e.contains("use_regex")) e["use_regex"] = false;
        }
    }
    return card;
}

Result<std::string> card_png(const Json& character, const std::optional<Json>& book, const std::optional<std::string>& image) {
    const std::string base = image && is_png(*image) ? *image : placeholder_png();
    const std::map<std::string, std::string> chunks = {
        {"chara", base64_encode(card_v2(character, book).dump())},
        {"ccv3", base64_encode(card_v3(character, book).dump())},
    };
    return png_with_text_chunks(base, chunks);
}

}  // namespace mc::cards
