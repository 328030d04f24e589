// api/routes_characters: /api/characters — CRUD, avatar and voice-sample upload/download, card
// import (PNG, JSON, CHARX; V1-V3) and export (PNG with V2+V3 chunks, V3 JSON).
#include "api/character_json.hpp"
#include "cards/card.hpp"
#include "core/text.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "core/log.hpp"
#include "core/media_type.hpp"
#include "core/json.hpp"
#include "stt/audio_decode.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace mc::api {
namespace {

constexpr size_t kMaxAvatarBytes = 10u << 20;
constexpr size_t kMaxVoiceSampleBytes = 50u << 20;

using http::Method;
using http::Request;
using http::Response;

// An uploaded file slot on a character: the avatar or the voice sample.
struct FileSlot {
    const char* field;
    const char* kind;  // Blob folder.
    size_t max_bytes;
    std::optional<MediaType> (*sniff)(std::string_view);
    const char* accepted;
    std::optional<std::string> Character::*member;
};

const FileSlot kAvatar{"avatar", "avatars", kMaxAvatarBytes, sniff_image, "PNG, JPEG or WebP",
                       &Character::avatar_file};
const FileSlot kVoiceSample{"voice_sample", "voices", kMaxVoiceSampleBytes, nullptr, "", &Character::voice_sample_file};

// A voice sample is kept twice: as sent (played back in the editor) and as the normalized WAV the
// speech engines clone from and trainers learn from (stt::analyze_voice_sample).
Response put_voice_sample(Context& ctx, const Request& req) {
    auto c = ctx.characters.get(req.param("id"));
    if (!c) return error_response(c.error());
    const std::string& bytes = req.upload();
    if (bytes.size() > kMaxVoiceSampleBytes) {
        return error_response({ErrorCode::TooLarge, "voice_sample is larger than " + std::to_string(kMaxVoiceSampleBytes >> 20) + " MB", "voice_sample"});
    }
    if (bytes.empty()) return error_response({ErrorCode::InvalidInput, "voice_sample is empty", "voice_sample"});
    auto analyzed = stt::analyze_voice_sample(bytes);
    if (!analyzed) return error_response(analyzed.error());
    auto name = ctx.blobs.put("voices", analyzed->ext, bytes);
    if (!name) return error_response(name.error());
    auto wav = ctx.blobs.put("voices", "wav", analyzed->wav);
    if (!wav) {
        ctx.blobs.remove(*name);
        return error_response(wav.error());
    }
    const std::optional<std::string> old = c->voice_sample_file;
    const std::string old_wav = json_string_or(c->voice_sample_info, "wav", "");
    c->voice_sample_file = *name;
    c->voice_sample_info = analyzed->info;
    c->voice_sample_info["wav"] = *wav;
    // A new sample ends a training of the old one (its job is cancelled: its result would be stale).
    if (ctx.trainer) ctx.trainer->cancel_for(c->id);
    auto saved = ctx.characters.update(std::move(*c));
    if (!saved) {
        ctx.blobs.remove(*name);
        ctx.blobs.remove(*wav);
        return error_response(saved.error());
    }
    // ... and a voice trained on the old sample no longer speaks for this one.
    if (auto st = ctx.characters.set_voice_status(saved->id, "none", ""); st) {
        saved->voice_status = "none";
        saved->voice_error.clear();
    }
    if (old) ctx.blobs.remove(*old);
    if (!old_wav.empty()) ctx.blobs.remove(old_wav);
    log::info("voice sample of ", saved->id, ": ", analyzed->info["format"].get<std::string>(), ", ",
              analyzed->info["seconds"].get<double>(), " s");
    return json_response(200, character_to_json(*saved));
}

Response put_file(Context& ctx, const FileSlot& slot, const Request& req) {
    auto c = ctx.characters.get(req.param("id"));
    if (!c) return error_response(c.error());
    const std::string& bytes = req.upload();  // Raw body or one form part, whatever the Content-Type.
    if (bytes.size() > slot.max_bytes) {
        return error_response({ErrorCode::TooLarge,
                               std::string(slot.field) + " is larger than " + std::to_string(slot.max_bytes >> 20) + " MB",
                               slot.field});
    }
    if (bytes.empty()) return error_response({ErrorCode::InvalidInput, std::string(slot.field) + " is empty", slot.field});
    const auto type = slot.sniff(bytes);
    if (!type) {
        return error_response({ErrorCode::UnsupportedMedia,
                               std::string(slot.field) + " must be " + slot.accepted + " (decided by the file's content)",
                               slot.field});
    }
    auto name = ctx.blobs.put(slot.kind, type->ext, bytes);
    if (!name) return error_response(name.error());
    const std::optional<std::string> old = (*c).*slot.member;
    (*c).*slot.member = *name;
    auto saved = ctx.characters.update(std::move(*c));
    if (!saved) {
        ctx.blobs.remove(*name);
        return error_response(saved.error());
    }
    if (old) ctx.blobs.remove(*old);
    return json_response(200, character_to_json(*saved));
}

Response get_file(Context& ctx, const FileSlot& slot, const Request& req) {
    auto c = ctx.characters.get(req.param("id"));
    if (!c) return error_response(c.error());
    const auto& name = (*c).*slot.member;
    if (!name) return error_response({ErrorCode::NotFound, std::string("character has no ") + slot.field, slot.field});
    auto bytes = ctx.blobs.read(*name);
    if (!bytes) return error_response(bytes.error());
    Response r;
    r.content_type = mime_for_ext(name->substr(name->rfind('.') + 1));
    r.body = std::move(*bytes);
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
}

// "Name", or "Name (2)", "Name (3)"... when a character of that name exists.
Result<std::string> unique_name(Context& ctx, const std::string& name) {
    auto list = ctx.characters.list();
    if (!list) return std::unexpected(list.error());
    std::set<std::string> taken;
    for (const auto& c : *list) taken.insert(c.name);
    if (!taken.contains(name)) return name;
    for (int n = 2;; ++n) {
        const std::string suffix = " (" + std::to_string(n) + ")";
        std::string base = name;
        // Stays within the name limit: the base is shortened by whole characters.
        while (utf8_length(base) + suffix.size() > kMaxNameChars) base = utf8_prefix(base, base.size() - 1);
        std::string candidate = base;
        candidate += suffix;
        if (!taken.contains(candidate)) return candidate;
    }
}

// A file name made of the character's name: ASCII letters, digits, '-' and '_' only.
std::string file_stem(const std::string& name) {
    std::string out;
    for (unsigned char ch : name) {
        if (std::isalnum(ch) || ch == '-' || ch == '_') out.push_back(static_cast<char>(ch));
        else if (ch == ' ' && !out.empty() && out.back() != '_') out.push_back('_');
        if (out.size() >= 60) break;
    }
    return out.empty() ? std::string("character") : out;
}

Response import_card(Context& ctx, const Request& req) {
    const std::string& bytes = req.upload();
    auto card = cards::import_card(bytes);
    if (!card) return error_response(card.error());
    Character c;
    if (auto ok = apply_character_fields(c, card->fields, true); !ok) return error_response(ok.error());
    auto name = unique_name(ctx, c.name);
    if (!name) return error_response(name.error());
    c.name = *name;
    // The card's picture becomes the avatar when it is an image we serve.
    std::optional<std::string> avatar;
    if (card->image && card->image->size() <= kMaxAvatarBytes) {
        if (const auto type = sniff_image(*card->image)) {
            auto stored = ctx.blobs.put(kAvatar.kind, type->ext, *card->image);
            if (!stored) return error_response(stored.error());
            avatar = *stored;
            c.avatar_file = avatar;
        }
    }
    auto created = ctx.characters.create(std::move(c));
    if (!created) {
        if (avatar) ctx.blobs.remove(*avatar);
        return error_response(created.error());
    }
    Json book = nullptr;
    if (card->book && ctx.lorebooks) {
        Lorebook b;
        b.data = *card->book;
        if (trim(json_string_or(b.data, "name", "")).empty()) b.data["name"] = created->name;
        b.character_ids.push_back(created->id);
        auto saved = ctx.lorebooks->create(std::move(b));
        if (!saved) {
            if (auto files = ctx.characters.remove(created->id)) {
                for (const auto& f : *files) ctx.blobs.remove(f);
            }
            return error_response(saved.error());
        }
        book = {{"id", saved->id}, {"name", saved->data["name"]}, {"entry_count", saved->data["entries"].size()}};
    }
    log::info("character imported: ", created->id, " (", created->name, ") from a V", card->spec, " ", card->format, " card");
    return json_response(201, {{"character", character_to_json(*created)},
                               {"lorebook", book},
                               {"format", card->format},
                               {"spec", card->spec}});
}

Response export_card(Context& ctx, const Request& req) {
    auto c = ctx.characters.get(req.param("id"));
    if (!c) return error_response(c.error());
    const std::string format = req.query_param("format").value_or("png");
    if (format != "png" && format != "json") return error_response({ErrorCode::InvalidInput, "'format' must be png or json", "format"});
    // The character's first attached lorebook (its card's own, when it came with one) is its character_book.
    std::optional<Json> book;
    if (ctx.lorebooks) {
        auto books = ctx.lorebooks->for_character(c->id);
        if (!books) return error_response(books.error());
        if (!books->empty()) book = books->front().data;
    }
    const Json fields = character_to_json(*c);
    const std::string stem = file_stem(c->name);
    if (format == "json") {
        Response r = json_response(200, cards::card_v3(fields, book));
        r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + stem + ".json\"");
        return r;
    }
    std::optional<std::string> image;
    if (c->avatar_file) {
        auto bytes = ctx.blobs.read(*c->avatar_file);
        if (bytes) image = std::move(*bytes);  // A JPEG or WebP avatar: the placeholder carries the card.
    }
    auto png = cards::card_png(fields, book, image);
    if (!png) return error_response(png.error());
    Response r;
    r.content_type = "image/png";
    r.body = std::move(*png);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + stem + ".png\"");
    return r;
}

}  // namespace

void register_character_routes(http::Server& server, Context& ctx) {
    server.route(Method::Get, "/api/characters", [&ctx](const Request&) {
        auto list = ctx.characters.list();
        if (!list) return error_response(list.error());
        Json out = Json::array();
        for (const auto& c : *list) out.push_back(character_to_json(c));
        return json_response(200, {{"characters", out}});
    });

    server.route(Method::Post, "/api/characters", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Character c;
        if (auto ok = apply_character_fields(c, *body, true); !ok) return error_response(ok.error());
        auto created = ctx.characters.create(std::move(c));
        if (!created) return error_response(created.error());
        log::info("character created: ", created->id, " (", created->name, ")");
        return json_response(201, character_to_json(*created));
    });

    server.route(Method::Post, "/api/characters/import", [&ctx](const Request& req) { return import_card(ctx, req); });
    server.route(Method::Get, "/api/characters/{id}/export", [&ctx](const Request& req) { return export_card(ctx, req); });

    server.route(Method::Get, "/api/characters/{id}", [&ctx](const Request& req) {
        auto c = ctx.characters.get(req.param("id"));
        if (!c) return error_response(c.error());
        return json_response(200, character_to_json(*c));
    });

    server.route(Method::Patch, "/api/characters/{id}", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        auto c = ctx.characters.get(req.param("id"));
        if (!c) return error_response(c.error());
        if (auto ok = apply_character_fields(*c, *body, false); !ok) return error_response(ok.error());
        auto saved = ctx.characters.update(std::move(*c));
        if (!saved) return error_response(saved.error());
        return json_response(200, character_to_json(*saved));
    });

    server.route(Method::Delete, "/api/characters/{id}", [&ctx](const Request& req) {
        // A training of this character stops first (its process group is killed), then its files go.
        if (ctx.trainer) ctx.trainer->cancel_for(req.param("id"));
        auto files = ctx.characters.remove(req.param("id"));
        if (!files) return error_response(files.error());
        for (const auto& f : *files) ctx.blobs.remove(f);
        if (ctx.trainer) ctx.trainer->remove_files(req.param("id"));
        log::info("character deleted: ", req.param("id"));
        return json_response(200, {{"deleted", req.param("id")}});
    });

    server.route(Method::Put, "/api/characters/{id}/avatar",
                 [&ctx](const Request& req) { return put_file(ctx, kAvatar, req); });
    server.route(Method::Get, "/api/characters/{id}/avatar",
                 [&ctx](const Request& req) { return get_file(ctx, kAvatar, req); });
    server.route(Method::Put, "/api/characters/{id}/voice_sample",
                 [&ctx](const Request& req) { return put_voice_sample(ctx, req); });
    server.route(Method::Post, "/api/characters/{id}/voice_sample",  // The seed's form upload.
                 [&ctx](const Request& req) { return put_voice_sample(ctx, req); });
    server.route(Method::Get, "/api/characters/{id}/voice_sample",
                 [&ctx](const Request& req) { return get_file(ctx, kVoiceSample, req); });
}

}  // namespace mc::api
