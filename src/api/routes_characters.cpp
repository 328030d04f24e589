// api/routes_characters: /api/characters — CRUD, avatar and voice-sample upload/download.
#include "api/character_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "core/log.hpp"
#include "core/media_type.hpp"

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
const FileSlot kVoiceSample{"voice_sample", "voices", kMaxVoiceSampleBytes, sniff_audio, "WAV, MP3, FLAC or OGG",
                            &Character::voice_sample_file};

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
    if (slot.member == &Character::voice_sample_file) {
        // A new sample invalidates a voice trained on the old one.
        c->voice_status = "none";
        c->voice_error.clear();
    }
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
        auto files = ctx.characters.remove(req.param("id"));
        if (!files) return error_response(files.error());
        for (const auto& f : *files) ctx.blobs.remove(f);
        log::info("character deleted: ", req.param("id"));
        return json_response(200, {{"deleted", req.param("id")}});
    });

    server.route(Method::Put, "/api/characters/{id}/avatar",
                 [&ctx](const Request& req) { return put_file(ctx, kAvatar, req); });
    server.route(Method::Get, "/api/characters/{id}/avatar",
                 [&ctx](const Request& req) { return get_file(ctx, kAvatar, req); });
    server.route(Method::Put, "/api/characters/{id}/voice_sample",
                 [&ctx](const Request& req) { return put_file(ctx, kVoiceSample, req); });
    server.route(Method::Get, "/api/characters/{id}/voice_sample",
                 [&ctx](const Request& req) { return get_file(ctx, kVoiceSample, req); });
}

}  // namespace mc::api
