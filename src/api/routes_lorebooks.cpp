// api/routes_lorebooks: /api/lorebooks — lorebooks (world info) listed, created, edited, attached to
// characters and chats, imported from SillyTavern world-info JSON, a V2 character_book or a V3
// lorebook, and exported as a V2 character_book.
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "cards/lorebook.hpp"
#include "core/log.hpp"
#include "core/text.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

constexpr size_t kMaxLinks = 256;
constexpr size_t kMaxIdBytes = 64;

Json lorebook_json(const Lorebook& b, bool with_entries) {
    Json j = b.data;
    if (!with_entries) {
        j["entry_count"] = b.data.contains("entries") ? b.data["entries"].size() : 0;
        j.erase("entries");
    }
    j["id"] = b.id;
    j["character_ids"] = b.character_ids;
    j["chat_ids"] = b.chat_ids;
    j["created_at"] = b.created_at;
    j["updated_at"] = b.updated_at;
    return j;
}

// Applies a create/PATCH body to `b`: book fields replace the stored ones, `entries` replaces
// all entries; the result is checked as a whole (cards::normalize_lorebook).
Result<void> apply_lorebook_fields(Lorebook& b, const Json& body, bool creating) {
    Fields f(body);
    f.only({"id", "created_at", "updated_at", "entry_count", "name", "description", "scan_depth", "token_budget",
            "recursive_scanning", "extensions", "entries", "character_ids", "chat_ids"});
    if (creating) f.string("name", 1024);
    if (f.has("character_ids")) b.character_ids = f.strings("character_ids", kMaxLinks, kMaxIdBytes);
    if (f.has("chat_ids")) b.chat_ids = f.strings("chat_ids", kMaxLinks, kMaxIdBytes);
    if (auto e = f.error()) return std::unexpected(*e);
    Json data = b.data;
    for (const char* key : {"name", "description", "scan_depth", "token_budget", "recursive_scanning", "extensions", "entries"}) {
        if (!body.contains(key)) continue;
        if (body[key].is_null()) data.erase(key);
        else data[key] = body[key];
    }
    if (!data.contains("entries")) data["entries"] = Json::array();
    if (!data["entries"].is_array()) return fail(ErrorCode::InvalidInput, "'entries' must be an array", "entries");
    auto normalized = cards::normalize_lorebook(data);
    if (!normalized) return std::unexpected(normalized.error());
    if (trim(json_string_or(*normalized, "name", "")).empty()) return fail(ErrorCode::InvalidInput, "'name' must not be empty", "name");
    b.data = std::move(*normalized);
    return {};
}

}  // namespace

void register_lorebook_routes(http::Server& server, Context& ctx) {
    if (!ctx.lorebooks) return;
    store::LorebookStore& books = *ctx.lorebooks;

    server.route(Method::Get, "/api/lorebooks", [&books](const Request&) {
        auto list = books.list();
        if (!list) return error_response(list.error());
        Json out = Json::array();
        for (const auto& b : *list) out.push_back(lorebook_json(b, false));
        return json_response(200, {{"lorebooks", out}});
    });

    server.route(Method::Post, "/api/lorebooks", [&books](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Lorebook b;
        if (auto ok = apply_lorebook_fields(b, *body, true); !ok) return error_response(ok.error());
        auto created = books.create(std::move(b));
        if (!created) return error_response(created.error());
        return json_response(201, lorebook_json(*created, true));
    });

    server.route(Method::Post, "/api/lorebooks/import", [&books](const Request& req) {
        const std::string& bytes = req.upload();
        if (bytes.size() > cards::kMaxLoreBookBytes) {
            return error_response({ErrorCode::TooLarge, "the lorebook file is larger than 4 MB", "file"});
        }
        if (!utf8_valid(bytes)) return error_response({ErrorCode::InvalidInput, "the lorebook file is not valid UTF-8", "file"});
        auto doc = parse_object_text(bytes, "file");
        if (!doc) return error_response(doc.error());
        auto data = cards::normalize_lorebook(*doc);
        if (!data) return error_response(data.error());
        Lorebook b;
        b.data = std::move(*data);
        if (trim(json_string_or(b.data, "name", "")).empty()) b.data["name"] = "Imported lorebook";
        // Attach on import: ?character_id= or ?chat_id=.
        if (auto id = req.query_param("character_id")) b.character_ids.push_back(utf8_prefix(*id, kMaxIdBytes));
        if (auto id = req.query_param("chat_id")) b.chat_ids.push_back(utf8_prefix(*id, kMaxIdBytes));
        auto created = books.create(std::move(b));
        if (!created) return error_response(created.error());
        log::info("lorebook imported: ", created->id, " (", created->data["entries"].size(), " entries)");
        return json_response(201, lorebook_json(*created, true));
    });

    server.route(Method::Get, "/api/lorebooks/{id}", [&books](const Request& req) {
        auto b = books.get(req.param("id"));
        if (!b) return error_response(b.error());
        return json_response(200, lorebook_json(*b, true));
    });

    server.route(Method::Get, "/api/lorebooks/{id}/export", [&books](const Request& req) {
        auto b = books.get(req.param("id"));
        if (!b) return error_response(b.error());
        Response r = json_response(200, b->data);
        r.headers.emplace_back("Content-Disposition", "attachment; filename=\"lorebook-" + b->id + ".json\"");
        return r;
    });

    server.route(Method::Patch, "/api/lorebooks/{id}", [&books](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        auto b = books.get(req.param("id"));
        if (!b) return error_response(b.error());
        if (auto ok = apply_lorebook_fields(*b, *body, false); !ok) return error_response(ok.error());
        auto saved = books.update(std::move(*b));
        if (!saved) return error_response(saved.error());
        return json_response(200, lorebook_json(*saved, true));
    });

    server.route(Method::Delete, "/api/lorebooks/{id}", [&books](const Request& req) {
        if (auto ok = books.remove(req.param("id")); !ok) return error_response(ok.error());
        return json_response(200, {{"deleted", req.param("id")}});
    });
}

}  // namespace mc::api
