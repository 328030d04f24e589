// The bad-input corpus (issue 9): every route gets malformed JSON, wrong types, huge and negative
// numbers, empty and 10 MB strings, invalid UTF-8, unknown and path-like ids, and the wrong
// Content-Type. Each answer must be a 4xx JSON error that names the problem (or, where the input
// happens to be valid, a success) — never a 5xx, never a dead server.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "server_process.hpp"

namespace mc::test {
namespace {

struct Route {
    std::string method;
    std::string path;  // With {character}, {chat}, {message}, {fact}, {job} placeholders.
    bool upload = false;  // Decided by content (any Content-Type), or takes no body at all.
    bool string_error = false;  // Answers errors in Ollama's shape: {"error":"<message>","field"}.
};

const std::vector<Route> kRoutes = {
    {"GET", "/api/health"}, {"GET", "/api/settings"}, {"PATCH", "/api/settings"}, {"GET", "/api/characters"},
    {"POST", "/api/characters"}, {"GET", "/api/characters/{character}"}, {"PATCH", "/api/characters/{character}"},
    {"GET", "/api/characters/{character}/avatar"}, {"PUT", "/api/characters/{character}/avatar", true},
    {"GET", "/api/characters/{character}/voice_sample"}, {"PUT", "/api/characters/{character}/voice_sample", true},
    {"GET", "/api/characters/{character}/chats"}, {"POST", "/api/characters/{character}/chats/import", true},
    {"POST", "/api/chats"}, {"GET", "/api/chats/{chat}"}, {"PATCH", "/api/chats/{chat}"},
    {"GET", "/api/chats/{chat}/messages"}, {"POST", "/api/chats/{chat}/messages"}, {"POST", "/api/chats/{chat}/regenerate"},
    {"POST", "/api/chats/{chat}/continue"}, {"POST", "/api/chats/{chat}/stop", true}, {"GET", "/api/chats/{chat}/memory"},
    {"POST", "/api/chats/{chat}/memory/facts"}, {"PUT", "/api/chats/{chat}/memory/summary"},
    {"POST", "/api/chats/{chat}/memory/summary/rollback"}, {"POST", "/api/chats/{chat}/memory/summarize"},
    {"GET", "/api/chats/{chat}/search"}, {"GET", "/api/chats/{chat}/prompt"}, {"GET", "/api/chats/{chat}/export"},
    {"PATCH", "/api/messages/{message}"}, {"PATCH", "/api/memory/facts/{fact}"}, {"GET", "/api/jobs/{job}"},
    {"POST", "/api/jobs/{job}/cancel", true}, {"GET", "/api/models"}, {"POST", "/api/models/load"},
    {"POST", "/api/models/download"}, {"POST", "/api/models/test_remote"}, {"POST", "/api/chats/{chat}/branch"}, {"GET", "/v1/models"}, {"POST", "/v1/chat/completions"},
    {"POST", "/api/tts"}, {"GET", "/api/tts/voices"}, {"POST", "/v1/audio/speech"}, {"GET", "/api/characters/{character}/media"},
    {"GET", "/api/media/audio/{character}.wav"}, {"POST", "/api/images"}, {"POST", "/api/images/{job}/retry", true},
    {"GET", "/api/images/workflows"}, {"GET", "/api/images/workflows/{character}"}, {"PUT", "/api/images/workflows/{character}"},
    {"GET", "/api/media/images/{character}.png"}, {"POST", "/api/stt", true}, {"POST", "/v1/audio/transcriptions", true},
    {"POST", "/api/characters/import", true}, {"GET", "/api/characters/{character}/export"}, {"GET", "/api/lorebooks"},
    {"POST", "/api/lorebooks"}, {"POST", "/api/lorebooks/import", true}, {"GET", "/api/lorebooks/{lorebook}"},
    {"PATCH", "/api/lorebooks/{lorebook}"}, {"GET", "/api/lorebooks/{lorebook}/export"},
    {"POST", "/v1/completions"}, {"POST", "/completion"}, {"POST", "/tokenize"}, {"POST", "/detokenize"}, {"GET", "/props"},
    {"GET", "/health"}, {"GET", "/api/version"}, {"GET", "/api/tags"}, {"POST", "/api/chat", false, true},
    {"GET", "/api/extra/version"}, {"GET", "/api/v1/model"}, {"POST", "/api/v1/generate"},
    {"POST", "/api/characters/{character}/train_voice"}, {"GET", "/api/characters/{character}/train_voice"},
    {"POST", "/api/characters/{character}/voice_sample", true},
    // Deletes last, and only with ids that do not exist (the corpus must keep its chat).
    {"DELETE", "/api/memory/facts/{fact}"}, {"DELETE", "/api/messages/{message}"}, {"DELETE", "/api/chats/{chat}"},
    {"DELETE", "/api/images/{job}"}, {"DELETE", "/api/lorebooks/{lorebook}"}, {"DELETE", "/api/images/workflows/{character}"}, {"DELETE", "/api/characters/{character}"},
};

// Every field any route reads.
const std::vector<std::string> kFields = {
    "name", "description", "first_mes", "alternate_greetings", "tags", "voice", "extensions", "character_id", "title",
    "content", "swipe_id", "sampling", "text", "pinned", "version", "keep", "url", "sha256", "path", "messages", "message_id", "api_key",
    "stream", "stream_options", "max_tokens", "top_k", "seed", "stop", "temperature", "llm", "chat", "memory", "model",
    "entries", "character_ids", "chat_ids", "scan_depth", "token_budget", "recursive_scanning", "creator", "nickname",
    "creation_date", "assets", "source", "group_only_greetings", "creator_notes_multilingual",
    "prompt", "n_predict", "n", "tokens", "add_special", "with_pieces", "cache_prompt", "echo", "suffix",
    "options", "max_length", "stop_sequence"};

const std::string kInvalidUtf8 = "\xff\xfe\xc3(";

std::vector<Json> bad_values() {
    return {Json(4294967295LL), Json(18446744073709551615ULL), Json(-9223372036854775807LL - 1), Json(-1), Json(1e308),
            Json(0.5), Json(""), Json("../../etc/passwd"), Json::array(), Json::array({1, "x", nullptr}), Json::object(),
            Json{{"top_k", -5}}, Json(true), Json(nullptr), Json(std::string(70000, 'y'))};
}

class BadInput : public ::testing::Test {
protected:
    void SetUp() override {
        server = std::make_unique<ServerProcess>(Json{
            {"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", 1024}, {"max_tokens", 4}, {"threads", 2}}}});
        settled_health(*server);
        auto c = server->client();
        ids["character"] = body_json(c.Post("/api/characters", R"({"name":"Mia","first_mes":"Hallo!"})", "application/json"))["id"];
        const Json chat = body_json(c.Post("/api/chats", Json{{"character_id", ids["character"]}}.dump(), "application/json"));
        ids["chat"] = chat["chat"]["id"];
        ids["message"] = chat["messages"][0]["id"];
        ids["fact"] = body_json(c.Post(("/api/chats/" + ids["chat"] + "/memory/facts").c_str(), R"({"text":"Mia malt."})",
                                       "application/json"))["id"];
        ids["job"] = "0123456789abcdef";
        ids["lorebook"] = body_json(c.Post("/api/lorebooks", R"({"name":"World","entries":[{"keys":["x"],"content":"X."}]})",
                                           "application/json"))["id"];
    }

    std::string fill(std::string path, const std::string& id_override = "") const {
        for (const auto& [key, value] : ids) {
            const std::string ph = "{" + key + "}";
            for (size_t at = path.find(ph); at != std::string::npos; at = path.find(ph)) {
                path.replace(at, ph.size(), id_override.empty() ? value : id_override);
            }
        }
        return path;
    }

    httplib::Result send(const std::string& method, const std::string& path, const std::string& body,
                         const std::string& type) {
        auto c = server->client();
        c.set_read_timeout(30, 0);
        if (method == "GET") return c.Get(path.c_str());
        if (method == "DELETE") return c.Delete(path.c_str(), body, type.c_str());
        if (method == "POST") return c.Post(path.c_str(), body, type.c_str());
        if (method == "PUT") return c.Put(path.c_str(), body, type.c_str());
        return c.Patch(path.c_str(), body, type.c_str());
    }

    // Never a 5xx or a dead server; a 4xx is JSON that says what is wrong.
    void check(const httplib::Result& r, const std::string& what, bool string_error = false) {
        ++sent;
        ASSERT_TRUE(r) << "no answer to " << what << " (the server died?)";
        ASSERT_LT(r->status, 500) << what << " -> " << r->body.substr(0, 300);
        if (r->status >= 400) {
            ++refused;
            const Json e = body_json(r)["error"];
            if (string_error && e.is_string()) {
                ASSERT_FALSE(e.get<std::string>().empty()) << what;
                return;
            }
            ASSERT_TRUE(e.is_object()) << what << " -> " << r->body.substr(0, 300);
            ASSERT_TRUE(e.contains("message") && e["message"].is_string() && !e["message"].get<std::string>().empty()) << what;
            EXPECT_EQ(r->body.find("json.exception"), std::string::npos) << what << " -> " << r->body.substr(0, 300);
        }
    }

    std::unique_ptr<ServerProcess> server;
    std::map<std::string, std::string> ids;
    int sent = 0, refused = 0;
};

TEST_F(BadInput, EveryRouteAnswersBadInputWithA4xxJsonErrorAndStaysUp) {
    const std::vector<std::string> malformed = {"{", "[]", "null", "\"x\"", "{\"a\":}", "{\"name\":\"" + kInvalidUtf8 + "\"}",
                                                "{\"a\":1}{\"b\":2}", std::string(1, '\0'), "{\"name\":\"x\",\"name\":5}"};
    const std::string huge = Json{{"name", std::string(10 << 20, 'n')}, {"content", std::string(10 << 20, 'c')},
                                  {"text", std::string(10 << 20, 't')}}.dump();
    for (const auto& route : kRoutes) {
        const bool deletes = route.method == "DELETE";
        // Unknown and path-like ids.
        for (const std::string& id : std::vector<std::string>{"nope", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "-1", "99999999999999999999", "%00x",
                                     std::string(300, 'i')}) {
            if (route.path.find('{') == std::string::npos) break;
            const std::string path = fill(route.path, id);
            const bool with_body = route.method != "GET" && route.method != "DELETE";
            check(send(route.method, path, with_body ? "{}" : "", "application/json"), route.method + " " + path, route.string_error);
        }
        if (deletes || route.method == "GET") continue;
        const std::string path = fill(route.path);
        const std::string what = route.method + " " + route.path;
        for (const auto& body : malformed) check(send(route.method, path, body, "application/json"), what + " " + body, route.string_error);
        check(send(route.method, path, huge, "application/json"), what + " with 10 MB strings", route.string_error);
        for (const auto& field : kFields) {
            for (const auto& v : bad_values()) {
                check(send(route.method, path, Json{{field, v}}.dump(), "application/json"), what + " " + field + "=" + v.dump().substr(0, 40),
                      route.string_error);
            }
        }
        // JSON routes refuse other types; uploads decide by content (and "{}" is no image or chat).
        auto wrong_type = send(route.method, path, R"({"name":"x"})", "text/plain");
        check(wrong_type, what + " as text/plain", route.string_error);
        if (!route.upload) {
            EXPECT_EQ(wrong_type->status, 415) << what << " " << wrong_type->body;
        }
    }
    for (const auto& route : kRoutes) {  // The GETs, with bad query parameters.
        if (route.method != "GET") continue;
        for (const char* q : {"?limit=-1", "?limit=99999999999", "?before=abc", "?q=%ff%fe", "?format=../x", "?message=%00",
                              "?limit=1e3&before=-5"}) {
            check(send("GET", fill(route.path) + q, "", ""), "GET " + route.path + q, route.string_error);
        }
    }
    auto health = server->client().Get("/api/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    // The corpus is mostly refusals: a route that accepted most of it would be suspicious.
    EXPECT_GT(refused, sent * 8 / 10) << refused << " of " << sent << " refused";
    std::printf("bad-input corpus: %d requests, %d refused with a 4xx\n", sent, refused);
}

}  // namespace
}  // namespace mc::test
