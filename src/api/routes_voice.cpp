// api/routes_voice: speech out — POST /api/tts, GET /api/tts/voices, the OpenAI-compatible
// POST /v1/audio/speech — and GET /api/media/{kind}/{file} for the audio (and images) we keep.
#include <map>

#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "core/json.hpp"
#include "core/media_type.hpp"
#include "core/text.hpp"
#include "voice/tts_service.hpp"
#include "voice/wav.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

// Bounds what a text field may hold before media.tts_max_chars is checked (memory, not policy).
constexpr size_t kMaxBodyText = 1u << 20;

Response audio_response(const voice::Audio& audio, const std::string& format) {
    Response r;
    if (format == "ogg" || format == "opus") {
        auto ogg = voice::encode_ogg_opus(audio);
        if (!ogg) return error_response(ogg.error());
        r.content_type = "audio/ogg";
        r.body = std::move(*ogg);
    } else if (format == "pcm") {
        // OpenAI's "pcm": raw 16-bit little-endian mono samples, no header.
        r.content_type = "audio/pcm";
        r.body.assign(reinterpret_cast<const char*>(audio.samples.data()), audio.samples.size() * 2);
    } else {
        r.content_type = "audio/wav";
        r.body = voice::encode_wav(audio);
    }
    r.headers.emplace_back("X-Sample-Rate", std::to_string(audio.sample_rate));
    return r;
}

// The character a request names by id, or null when it names none.
Result<std::optional<Character>> named_character(Context& ctx, const std::optional<std::string>& id) {
    if (!id) return std::optional<Character>();
    auto c = ctx.characters.get(*id);
    if (!c) return std::unexpected(c.error());
    return std::optional<Character>(std::move(*c));
}

}  // namespace

void register_voice_routes(http::Server& server, Context& ctx) {
    server.route(Method::Post, "/api/tts", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"text", "character_id", "voice", "format"});
        const std::string text = f.string("text", kMaxBodyText);
        const auto character_id = f.opt_string("character_id", 64);
        const std::string format = f.string_or("format", 8, "wav");
        std::optional<Json> override_voice;
        if (f.has("voice")) {
            // A voice name ("de+f3"), or a whole voice object (the editor tests unsaved choices).
            const Json& v = (*body)["voice"];
            if (v.is_string()) {
                if (v.get<std::string>().size() > 100) f.reject(ErrorCode::InvalidInput, "voice", "'voice' is longer than 100 bytes");
                override_voice = Json{{"voice", v}};
            } else if (v.is_object()) {
                override_voice = v;
            } else {
                f.reject(ErrorCode::InvalidInput, "voice", "'voice' must be a voice name or a voice object");
            }
        }
        if (format != "wav" && format != "pcm" && format != "ogg") f.reject(ErrorCode::InvalidInput, "format", "'format' must be wav, ogg or pcm");
        if (f.error()) return error_response(*f.error());
        auto character = named_character(ctx, character_id);
        if (!character) return error_response(character.error());
        if (!ctx.tts) return error_response({ErrorCode::Unavailable, "text-to-speech is not available", ""});
        auto audio = ctx.tts->speak(*character ? &**character : nullptr, override_voice, text);
        if (!audio) return error_response(audio.error());
        return audio_response(*audio, format);
    });

    // The seed's "Train": an RVC training of the character's voice sample, as a job (voice/rvc).
    server.route(Method::Post, "/api/characters/{id}/train_voice", [&ctx](const Request& req) {
        std::optional<int> epochs;
        if (!req.body.empty()) {  // The seed posts no body; ours may name the epochs.
            auto body = parse_object(req);
            if (!body) return error_response(body.error());
            Fields f(*body);
            f.only({"epochs"});
            if (auto e = f.opt_integer("epochs", 1, 1000)) epochs = static_cast<int>(*e);
            if (f.error()) return error_response(*f.error());
        }
        if (!ctx.trainer) return error_response({ErrorCode::Unavailable, "voice training is not available", ""});
        auto job = ctx.trainer->train(req.param("id"), epochs);
        if (!job) return error_response(job.error());
        return json_response(202, {{"job", job_to_json(*job)}});
    });

    // The editor finds the character's training (to follow a running one after a reload).
    server.route(Method::Get, "/api/characters/{id}/train_voice", [&ctx](const Request& req) {
        if (!ctx.trainer) return error_response({ErrorCode::Unavailable, "voice training is not available", ""});
        auto job = ctx.trainer->latest(req.param("id"));
        if (!job) return error_response(job.error());
        return json_response(200, {{"job", *job ? job_to_json(**job) : Json(nullptr)}});
    });

    server.route(Method::Get, "/api/tts/voices", [&ctx](const Request&) {
        if (!ctx.tts) return error_response({ErrorCode::Unavailable, "text-to-speech is not available", ""});
        Json out = ctx.tts->voices();
        out["engines"] = Json::array({"espeak", "embedded", "http"});
        return json_response(200, out);
    });

    // OpenAI's shape: {"model","input","voice","response_format","speed"}. `voice` is one of our
    // characters (id or exact name: its voice), else a voice name for the default engine.
    server.route(Method::Post, "/v1/audio/speech", [&ctx](const Request& req) {
        auto body = parse_object(req);
        if (!body) return error_response(body.error());
        Fields f(*body);
        f.only({"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"});
        const std::string input = f.string("input", kMaxBodyText);
        const std::string voice_name = f.string_or("voice", 100, "");
        f.opt_string("model", 200);
        f.opt_string("instructions", 4000);
        const std::string format = f.string_or("response_format", 8, "wav");
        const double speed = f.opt_number("speed", 0.25, 4.0).value_or(1.0);
        if (format != "wav" && format != "pcm" && format != "opus") {
            f.reject(ErrorCode::InvalidInput, "response_format", "response_format '" + format + "' is not supported: use wav, opus or pcm");
        }
        if (f.error()) return error_response(*f.error());
        if (!ctx.tts) return error_response({ErrorCode::Unavailable, "text-to-speech is not available", ""});
        std::optional<Character> character;
        if (!voice_name.empty()) {
            if (auto c = ctx.characters.get(voice_name)) {
                character = std::move(*c);
            } else if (auto all = ctx.characters.list()) {
                for (auto& c : *all) {
                    if (c.name == voice_name) {
                        character = std::move(c);
                        break;
                    }
                }
            }
        }
        Json override_voice = {{"speed", std::clamp(speed, 0.5, 2.0)}};
        if (!character && !voice_name.empty()) override_voice["voice"] = voice_name;
        auto audio = ctx.tts->speak(character ? &*character : nullptr, override_voice, input);
        if (!audio) return error_response(audio.error());
        return audio_response(*audio, format);
    });

    // The media panel: what the character's replies carry, newest first. A reply's sentences are one
    // audio entry (played back to back); each picture is its own entry.
    server.route(Method::Get, "/api/characters/{id}/media", [&ctx](const Request& req) {
        if (auto c = ctx.characters.get(req.param("id")); !c) return error_response(c.error());
        auto list = ctx.chats.messages_with_media(req.param("id"), 200);
        if (!list) return error_response(list.error());
        Json out = Json::array();
        for (const auto& m : *list) {
            std::map<int64_t, Json> audio_by_swipe;
            int image = 0;
            for (const auto& e : m.media) {
                // Media may come from an imported chat: nothing about its shape is trusted.
                const std::string url = json_string_or(e, "url", "");
                if (url.rfind("/api/media/", 0) != 0) continue;
                const std::string kind = json_string_or(e, "kind", "");
                if (kind == "audio") {
                    const int64_t swipe = json_int_or(e, "swipe", 0);
                    Json& a = audio_by_swipe[swipe];
                    if (a.is_null()) {
                        const std::string text = swipe >= 0 && static_cast<uint64_t>(swipe) < m.swipes.size() ? m.swipes[static_cast<size_t>(swipe)] : m.content;
                        a = {{"id", std::to_string(m.id) + "." + std::to_string(swipe)}, {"kind", "audio"}, {"url", url},
                             {"urls", Json::array()}, {"seconds", 0.0}, {"text", utf8_prefix(text, 200)},
                             {"message_id", std::to_string(m.id)}, {"chat_id", m.chat_id}, {"created_at", m.created_at}};
                    }
                    a["urls"].push_back(url);
                    a["seconds"] = a["seconds"].get<double>() + json_number_or(e, "seconds", 0.0);
                } else if (kind == "image") {
                    out.push_back({{"id", std::to_string(m.id) + ".i" + std::to_string(image++)}, {"kind", "image"}, {"url", url},
                                   {"prompt", json_string_or(e, "prompt", "")}, {"job", json_string_or(e, "job", "")},
                                   {"message_id", std::to_string(m.id)}, {"chat_id", m.chat_id}, {"created_at", m.created_at}});
                }
            }
            for (auto& [swipe, a] : audio_by_swipe) out.push_back(std::move(a));
        }
        return json_response(200, {{"media", out}});
    });

    // What turns and jobs stored: "/api/media/audio/<32 hex>.wav". Only names of our own shape are
    // looked up; nothing in the path becomes a file path.
    server.route(Method::Get, "/api/media/{kind}/{file}", [&ctx](const Request& req) {
        const std::string kind = req.param("kind");
        const std::string name = kind + "/" + req.param("file");
        if ((kind != "audio" && kind != "images") || !store::BlobStore::valid_name(name)) {
            return error_response({ErrorCode::NotFound, "no such media file", ""});
        }
        auto bytes = ctx.blobs.read(name);
        if (!bytes) return error_response(bytes.error());
        Response r;
        r.content_type = mime_for_ext(name.substr(name.rfind('.') + 1));
        r.body = std::move(*bytes);
        // Names are random and never reused: the browser may keep the file.
        r.headers.emplace_back("Cache-Control", "private, max-age=31536000, immutable");
        return r;
    });
}

}  // namespace mc::api
