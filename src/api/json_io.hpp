// api/json_io: JSON in and out of HTTP — request body parsing, the typed field reader every route
// reads its fields through, error bodies, and the one mapping from ErrorCode to HTTP status.
// Thread safety: pure functions; a Fields reader belongs to one request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json.hpp"
#include "core/result.hpp"
#include "http/server.hpp"

namespace mc::api {

using Json = nlohmann::json;

int http_status(ErrorCode code);
http::Response json_response(int status, const Json& body);
http::Response error_response(const Error& error);
// The body of an error: {"error":{"code","message","field"?,"reason"?,"params"?,"errors"?:[...]}};
// `errors` lists every problem (the first too) when there is more than one.
Json error_json(const Error& error);
// Parses the request body as a JSON object; errors name the line and column. A body that is not
// sent as application/json (or a +json type) is refused with 415, so a web page cannot post JSON
// as a "simple" cross-site form.
Result<Json> parse_object(const http::Request& req);
// Parses any JSON text as an object (bodies of uploads decided by content, import files).
Result<Json> parse_object_text(const std::string& text, const char* field = "body");
// The largest integer a client may send anywhere (JavaScript's safe integer range).
constexpr int64_t kMaxSafeInteger = 9007199254740991LL;

// Reads the fields of a JSON object with the type and range each must have. Every problem is kept
// (name of the field, the type or range expected, as message and as reason + params); the first is
// the error, the others ride along in its `more`. Reads after a problem return their fallback, so a
// route reads all fields and then checks error() once:
//   Fields f(*body);
//   auto keep = f.integer("keep", 0, 100000, 4);
//   if (auto e = f.error()) return error_response(*e);
class Fields {
public:
    // `prefix` names nested objects in messages ("sampling." -> "'sampling.top_k' must be ...").
    explicit Fields(const Json& object, std::string prefix = "");
    Fields(Json&&, std::string = "") = delete;  // Holds a reference: the object must outlive the reader.

    bool has(const char* key) const;  // Present and not null.
    // Required fields fail when missing; optional ones return `fallback` (or nullopt).
    std::string string(const char* key, size_t max_bytes);
    std::string string_or(const char* key, size_t max_bytes, std::string fallback);
    std::optional<std::string> opt_string(const char* key, size_t max_bytes);
    int64_t integer(const char* key, int64_t min, int64_t max);
    int64_t integer_or(const char* key, int64_t min, int64_t max, int64_t fallback);
    std::optional<int64_t> opt_integer(const char* key, int64_t min, int64_t max);
    std::optional<double> opt_number(const char* key, double min, double max);
    bool boolean_or(const char* key, bool fallback);
    std::optional<bool> opt_boolean(const char* key);
    // Present, not null, and of the given JSON kind ("object", "array"); returns the value.
    const Json* object(const char* key);
    const Json* array(const char* key, size_t max_items);
    std::vector<std::string> strings(const char* key, size_t max_items, size_t max_bytes_each);
    // Fails when the object has a key not in `known` (a typo is an error, not silently ignored).
    void only(std::initializer_list<const char*> known);
    // Records a problem found by the route itself. The first one is the error; later ones are
    // attached to it (`more`, up to kMaxProblems) so a client can mark every bad field at once.
    void reject(ErrorCode code, const std::string& key, const std::string& message, std::string reason = "invalid",
                std::vector<std::pair<std::string, std::string>> params = {});
    static constexpr size_t kMaxProblems = 50;

    const std::optional<Error>& error() const { return m_error; }

private:
    const Json* get(const char* key);
    void wrong_type(const char* key, const char* expected, const Json& got);
    std::string name(const char* key) const { return m_prefix + key; }

    const Json& m_obj;
    std::string m_prefix;
    std::optional<Error> m_error;
};

using mc::json_kind;

}  // namespace mc::api
