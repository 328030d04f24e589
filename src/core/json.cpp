#include "core/json.hpp"

namespace mc {
namespace {

struct TooDeep {};

}  // namespace

const char* json_kind(const Json& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
    if (v.is_number()) return "a number";
    if (v.is_object()) return "an object";
    if (v.is_array()) return "an array";
    return "null";
}

const char* json_type_word(const Json& v) {
    const char* kind = json_kind(v);
    if (kind[0] == 'a' && kind[1] == 'n' && kind[2] == ' ') return kind + 3;
    if (kind[0] == 'a' && kind[1] == ' ') return kind + 2;
    return kind;
}

Result<Json> parse_json(std::string_view text, const std::string& what, const std::string& field, int max_depth) {
    try {
        return Json::parse(text, [max_depth](int depth, Json::parse_event_t, Json&) {
            if (depth > max_depth) throw TooDeep{};
            return true;
        });
    } catch (const TooDeep&) {
        return fail(ErrorCode::InvalidInput, what + " nests deeper than " + std::to_string(max_depth) + " levels", field);
    } catch (const Json::exception& e) {
        // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> "parse error at ...".
        std::string detail = e.what();
        if (const auto at = detail.find("] "); detail.starts_with("[json.exception") && at != std::string::npos) {
            detail.erase(0, at + 2);
        }
        return fail(ErrorCode::InvalidInput, what + " is not valid JSON: " + detail, field);
    }
}

std::string json_string_or(const Json& obj, const char* key, const std::string& fallback) {
    if (!obj.is_object()) return fallback;
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int64_t json_int_or(const Json& obj, const char* key, int64_t fallback) {
    if (!obj.is_object()) return fallback;
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    if (it->is_number_integer()) return it->get<int64_t>();
    if (it->is_number_unsigned() && it->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(it->get<uint64_t>());
    return fallback;
}

double json_number_or(const Json& obj, const char* key, double fallback) {
    if (!obj.is_object()) return fallback;
    auto it = obj.find(key);
    return it != obj.end() && it->is_number() ? it->get<double>() : fallback;
}

}  // namespace mc
