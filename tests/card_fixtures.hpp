// Test helper: character cards written by hand and by a generator, in every version and container
// (V1/V2/V3 JSON, PNG with chara/ccv3 chunks, CHARX zip), plus zip files with chosen trouble
// (bombs, traversal names). Written independently of src/cards so tests do not check our code
// against itself: PNG chunks, CRCs, base64 and zip records are built here from the formats' specs.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/png_util.hpp"

namespace mc::test {

using Json = nlohmann::json;

inline std::string b64(const std::string& in) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < in.size(); i += 3) {
        uint32_t v = uint32_t(uint8_t(in[i])) << 16;
        if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
        if (i + 2 < in.size()) v |= uint8_t(in[i + 2]);
        out += a[(v >> 18) & 63];
        out += a[(v >> 12) & 63];
        out += i + 1 < in.size() ? a[(v >> 6) & 63] : '=';
        out += i + 2 < in.size() ? a[v & 63] : '=';
    }
    return out;
}

// A lorebook with every entry field set, `n` entries.
inline Json full_book(int seed, size_t n = 3) {
    Json entries = Json::array();
    for (size_t i = 0; i < n; ++i) {
        entries.push_back({{"keys", {"key" + std::to_string(i), "Schlüssel" + std::to_string(seed)}},
                           {"content", "Entry " + std::to_string(i) + " of book " + std::to_string(seed) + ": {{char}} knows."},
                           {"extensions", {{"depth", 4}, {"selectiveLogic", 0}, {"unknown_tool", {{"x", i}}}}},
                           {"enabled", i % 2 == 0},
                           {"insertion_order", 100 + static_cast<int>(i)},
                           {"case_sensitive", i % 3 == 0},
                           {"name", "entry " + std::to_string(i)},
                           {"priority", static_cast<int>(i) * 10},
                           {"id", static_cast<int>(i)},
                           {"comment", "comment " + std::to_string(i)},
                           {"selective", true},
                           {"secondary_keys", {"sec" + std::to_string(i)}},
                           {"constant", i == 1},
                           {"position", i % 2 ? "after_char" : "before_char"},
                           {"use_regex", false}});
    }
    return {{"name", "Book " + std::to_string(seed)},
            {"description", "A world."},
            {"scan_depth", 3},
            {"token_budget", 500},
            {"recursive_scanning", true},
            {"extensions", {{"custom", {{"a", {1, 2, 3}}}}}},
            {"entries", entries}};
}

// The `data` of a V3 card with every field of the spec set (values depend on `seed`).
inline Json full_data(int seed) {
    const std::string s = std::to_string(seed);
    return {{"name", "Aria " + s},
            {"description", "Beschreibung mit Ümlauten " + s + " und 😀"},
            {"personality", "curious " + s},
            {"scenario", "a space station " + s},
            {"first_mes", "*waves* Hello {{user}}! " + s},
            {"mes_example", "<START>\n{{user}}: Hi\n{{char}}: Hello " + s},
            {"creator_notes", "notes " + s},
            {"system_prompt", "You are {{char}}. " + s},
            {"post_history_instructions", "Stay in character. " + s},
            {"alternate_greetings", {"Hey " + s, "Moin " + s}},
            {"tags", {"sci-fi", "tag" + s}},
            {"creator", "creator" + s},
            {"character_version", "1." + s},
            {"extensions", {{"talkativeness", "0.5"}, {"depth_prompt", {{"prompt", "x"}, {"depth", 4}}},
                            {"vendor_" + s, {{"nested", {{"deep", true}}}}},
                            {"mycandy", {{"voice", {{"engine", "espeak"}, {"language", "en"}}},
                                         {"appearance", "1girl, silver hair " + s},
                                         {"image", {{"steps", 20}}}}}}},
            {"character_book", full_book(seed)},
            {"group_only_greetings", {"Hello everyone " + s}},
            {"nickname", "Ari" + s},
            {"creator_notes_multilingual", {{"en", "notes " + s}, {"de", "Notizen " + s}}},
            {"source", {"https://example.org/card/" + s}},
            {"creation_date", 1700000000 + seed},
            {"modification_date", 1710000000 + seed},
            {"assets", {{{"type", "icon"}, {"uri", "ccdefault:"}, {"name", "main"}, {"ext", "png"}}}}};
}

inline Json v3_card(const Json& data) { return {{"spec", "chara_card_v3"}, {"spec_version", "3.0"}, {"data", data}}; }
inline Json v2_card(Json data) {
    for (const char* k : {"group_only_greetings", "nickname", "creator_notes_multilingual", "source", "creation_date",
                          "modification_date", "assets"}) {
        data.erase(k);
    }
    return {{"spec", "chara_card_v2"}, {"spec_version", "2.0"}, {"data", data}};
}
inline Json v1_card(const Json& data) {
    Json out;
    for (const char* k : {"name", "description", "personality", "scenario", "first_mes", "mes_example"}) out[k] = data[k];
    return out;
}

inline std::string png_chunk(const std::string& type, const std::string& data) {
    auto be32 = [](uint32_t v) {
        std::string s(4, '\0');
        for (int i = 0; i < 4; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
        return s;
    };
    return be32(static_cast<uint32_t>(data.size())) + type + data + be32(png_crc(type + data));
}

// `png` with tEXt chunks (keyword, text) inserted right after IHDR, as some writers place them.
inline std::string with_text_chunks(const std::string& png, const std::vector<std::pair<std::string, std::string>>& chunks) {
    const size_t after_ihdr = 8 + 8 + 13 + 4;
    std::string out = png.substr(0, after_ihdr);
    for (const auto& [k, t] : chunks) out += png_chunk("tEXt", k + std::string(1, '\0') + t);
    return out + png.substr(after_ihdr);
}

// The chunk types of a PNG in order, with the keyword of each tEXt chunk ("tEXt:chara").
inline std::vector<std::string> chunk_list(const std::string& png) {
    std::vector<std::string> out;
    size_t at = 8;
    while (at + 12 <= png.size()) {
        const uint32_t len = (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
                             (uint32_t(uint8_t(png[at + 2])) << 8) | uint8_t(png[at + 3]);
        std::string type = png.substr(at + 4, 4);
        if (type == "tEXt") {
            type += ':';
            type += png.substr(at + 8, png.find('\0', at + 8) - at - 8);
        }
        out.push_back(type);
        at += 12 + len;
    }
    return out;
}

// The text of a PNG's tEXt chunk with `keyword` ("" when none).
inline std::string text_chunk(const std::string& png, const std::string& keyword) {
    size_t at = 8;
    while (at + 12 <= png.size()) {
        const uint32_t len = (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
                             (uint32_t(uint8_t(png[at + 2])) << 8) | uint8_t(png[at + 3]);
        if (png.compare(at + 4, 4, "tEXt") == 0 && png.compare(at + 8, keyword.size() + 1, keyword + std::string(1, '\0')) == 0) {
            return png.substr(at + 8 + keyword.size() + 1, len - keyword.size() - 1);
        }
        at += 12 + len;
    }
    return "";
}

struct ZipEntry {
    std::string name;
    std::string data;
    bool deflate = false;
};

// A zip file (stored or raw-deflated entries, no data descriptors).
inline std::string make_zip(const std::vector<ZipEntry>& entries) {
    auto le16 = [](std::string& s, uint16_t v) { s.push_back(char(v & 0xFF)); s.push_back(char(v >> 8)); };
    auto le32 = [](std::string& s, uint32_t v) { for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xFF)); };
    std::string out, central;
    for (const auto& e : entries) {
        const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), static_cast<uInt>(e.data.size())));
        std::string body = e.data;
        if (e.deflate) {
            z_stream z{};
            deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
            body.assign(deflateBound(&z, static_cast<uLong>(e.data.size())), '\0');
            z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(e.data.data()));
            z.avail_in = static_cast<uInt>(e.data.size());
            z.next_out = reinterpret_cast<Bytef*>(body.data());
            z.avail_out = static_cast<uInt>(body.size());
            deflate(&z, Z_FINISH);
            body.resize(z.total_out);
            deflateEnd(&z);
        }
        const uint32_t offset = static_cast<uint32_t>(out.size());
        std::string local;
        le32(local, 0x04034b50); le16(local, 20); le16(local, 0); le16(local, e.deflate ? 8 : 0); le16(local, 0); le16(local, 0);
        le32(local, crc); le32(local, static_cast<uint32_t>(body.size())); le32(local, static_cast<uint32_t>(e.data.size()));
        le16(local, static_cast<uint16_t>(e.name.size())); le16(local, 0);
        out += local + e.name + body;
        le32(central, 0x02014b50); le16(central, 20); le16(central, 20); le16(central, 0); le16(central, e.deflate ? 8 : 0);
        le16(central, 0); le16(central, 0); le32(central, crc); le32(central, static_cast<uint32_t>(body.size()));
        le32(central, static_cast<uint32_t>(e.data.size())); le16(central, static_cast<uint16_t>(e.name.size()));
        le16(central, 0); le16(central, 0); le16(central, 0); le16(central, 0); le32(central, 0); le32(central, offset);
        central += e.name;
    }
    const uint32_t cd_offset = static_cast<uint32_t>(out.size());
    out += central;
    std::string end;
    le32(end, 0x06054b50); le16(end, 0); le16(end, 0); le16(end, static_cast<uint16_t>(entries.size()));
    le16(end, static_cast<uint16_t>(entries.size())); le32(end, static_cast<uint32_t>(central.size())); le32(end, cd_offset); le16(end, 0);
    return out + end;
}

// A CHARX: card.json plus its icon at assets/icon/main.png.
inline std::string make_charx(Json card, const std::string& icon) {
    card["data"]["assets"] = Json::array({{{"type", "icon"}, {"uri", "embeded://assets/icon/main.png"}, {"name", "main"}, {"ext", "png"}}});
    return make_zip({{"card.json", card.dump(), true}, {"assets/icon/main.png", icon, false}});
}

}  // namespace mc::test
