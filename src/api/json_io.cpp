#include "api/json_io.hpp"

#include <cmath>

#include "core/json.hpp"

namespace mc::api {

int http_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidInput: return 400;
        case ErrorCode::NotFound: return 404;
        case ErrorCode::Conflict: return 409;
        case ErrorCode::TooLarge: return 413;
        case ErrorCode::UnsupportedMedia: return 415;
        case ErrorCode::Unavailable: return 503;
        case ErrorCode::Unauthorized: return 401;
        case ErrorCode::Forbidden: return 403;
        case ErrorCode::Io: return 500;
        case ErrorCode::Internal: return 500;
    }
    return 500;
}

http::Response json_response(int status, const Json& body) {
    http::Response r;
    r.status = status;
    r.content_type = "application/json";
    r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    return r;
}

namespace {

Json problem_json(const Error& error) {
    Json e = {{"code", error_code_name(error.code)}, {"message", error.message}};
    if (!error.field.empty()) e["field"] = error.field;
    if (!error.reason.empty()) {
        e["reason"] = error.reason;
        Json params = Json::object();
        for (const auto& [k, v] : error.params) params[k] = v;
        e["params"] = std::move(params);
    }
    return e;
}

}  // namespace

Json error_json(const Error& error) {
    Json e = problem_json(error);
    if (!error.more.empty()) {
        // Every problem, the first included, so a form can mark each field at once.
        Json all = Json::array({problem_json(error)});
        for (const auto& m : error.more) all.push_back(problem_json(m));
        e["errors"] = std::move(all);
    }
    return Json{{"error", e}};
}

http::Response error_response(const Error& error) { return json_response(http_status(error.code), error_json(error)); }

Result<Json> parse_object_text(const std::string& text, const char* field) {
    const std::string what = std::string(field) == "body" ? "request body" : field;
    if (text.empty()) return fail(ErrorCode::InvalidInput, what + " must be a JSON object; it is empty", field);
    auto doc = parse_json(text, what, field);
    if (!doc) return doc;
    if (!doc->is_object()) return fail(ErrorCode::InvalidInput, what + " must be a JSON object", field);
    return doc;
}

Result<Json> parse_object(const http::Request& req) {
    if (!req.parts.empty()) {
        return fail(ErrorCode::UnsupportedMedia, "request body must be JSON (Content-Type: application/json), not a form",
                    "body");
    }
    if (req.body.empty()) return fail(ErrorCode::InvalidInput, "request body must be a JSON object; it is empty", "body");
    const std::string type = req.media_type();
    if (type != "application/json" && !(type.starts_with("application/") && type.ends_with("+json"))) {
        return fail(ErrorCode::UnsupportedMedia,
                    "request body must be sent as Content-Type: application/json (got " +
                        (type.empty() ? std::string("none") : "'" + type.substr(0, 100) + "'") + ")",
                    "body");
    }
    return parse_object_text(req.body, "body");
}

namespace {

// "an integer" -> "integer": the kind a client translates.
std::string expected_kind(const char* phrase) {
    std::string s = phrase;
    if (s.starts_with("an ")) return s.substr(3);
    if (s.starts_with("a ")) return s.substr(2);
    if (s == "true or false") return "boolean";
    return s;
}

}  // namespace

Fields::Fields(const Json& object, std::string prefix) : m_obj(object), m_prefix(std::move(prefix)) {}

void Fields::reject(ErrorCode code, const std::string& key, const std::string& message, std::string reason,
                    std::vector<std::pair<std::string, std::string>> params) {
    Error e{code, message, key};
    e.because(std::move(reason), std::move(params));
    if (!m_error) {
        m_error = std::move(e);
    } else if (m_error->more.size() < kMaxProblems) {
        m_error->more.push_back(std::move(e));
    }
}

void Fields::wrong_type(const char* key, const char* expected, const Json& got) {
    reject(ErrorCode::InvalidInput, name(key), "'" + name(key) + "' must be " + expected + " (got " + json_kind(got) + ")",
           "type", {{"expected", expected_kind(expected)}, {"got", json_type_word(got)}});
}

const Json* Fields::get(const char* key) {
    if (!m_obj.is_object()) return nullptr;
    const auto it = m_obj.find(key);
    if (it == m_obj.end() || it->is_null()) return nullptr;
    return &*it;
}

bool Fields::has(const char* key) const {
    if (!m_obj.is_object()) return false;
    const auto it = m_obj.find(key);
    return it != m_obj.end() && !it->is_null();
}

std::optional<std::string> Fields::opt_string(const char* key, size_t max_bytes) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
        wrong_type(key, "a string", *v);
        return std::nullopt;
    }
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) {
        reject(ErrorCode::TooLarge, name(key),
               "'" + name(key) + "' is longer than " + std::to_string(max_bytes) + " bytes (" + std::to_string(s.size()) + ")",
               "too_long", {{"max", std::to_string(max_bytes)}, {"unit", "bytes"}});
        return std::nullopt;
    }
    return s;
}

std::string Fields::string(const char* key, size_t max_bytes) {
    if (!get(key)) {
        reject(ErrorCode::InvalidInput, name(key), "'" + name(key) + "' (a string) is required", "required");
        return {};
    }
    return opt_string(key, max_bytes).value_or("");
}

std::string Fields::string_or(const char* key, size_t max_bytes, std::string fallback) {
    auto v = opt_string(key, max_bytes);
    return v ? *v : fallback;
}

std::optional<int64_t> Fields::opt_integer(const char* key, int64_t min, int64_t max) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    auto range = [&] {
        reject(ErrorCode::InvalidInput, name(key),
               "'" + name(key) + "' must be an integer from " + std::to_string(min) + " to " + std::to_string(max), "range",
               {{"min", std::to_string(min)}, {"max", std::to_string(max)}});
        return std::nullopt;
    };
    if (v->is_number_unsigned()) {
        // nlohmann stores every non-negative literal as unsigned: check both ends.
        const auto u = v->get<uint64_t>();
        if (max < 0 || u > static_cast<uint64_t>(max) || static_cast<int64_t>(u) < min) return range();
        return static_cast<int64_t>(u);
    }
    if (v->is_number_integer()) {
        const auto i = v->get<int64_t>();
        if (i < min || i > max) return range();
        return i;
    }
    if (v->is_number_float()) {
        // 5.0 is 5; 5.5 is not an integer.
        const double d = v->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= static_cast<double>(kMaxSafeInteger)) {
            const auto i = static_cast<int64_t>(d);
            if (i < min || i > max) return range();
            return i;
        }
    }
    wrong_type(key, "an integer", *v);
    return std::nullopt;
}

int64_t Fields::integer(const char* key, int64_t min, int64_t max) {
    if (!get(key)) {
        reject(ErrorCode::InvalidInput, name(key), "'" + name(key) + "' (an integer) is required", "required");
        return min;
    }
    return opt_integer(key, min, max).value_or(min);
}

int64_t Fields::integer_or(const char* key, int64_t min, int64_t max, int64_t fallback) {
    return opt_integer(key, min, max).value_or(fallback);
}

std::optional<double> Fields::opt_number(const char* key, double min, double max) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
        wrong_type(key, "a number", *v);
        return std::nullopt;
    }
    const double d = v->get<double>();
    if (!std::isfinite(d) || d < min || d > max) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "' must be a number from %.15g to %.15g", min, max);
        char lo[32], hi[32];
        std::snprintf(lo, sizeof lo, "%.15g", min);
        std::snprintf(hi, sizeof hi, "%.15g", max);
        reject(ErrorCode::InvalidInput, name(key), "'" + name(key) + buf, "range", {{"min", lo}, {"max", hi}});
        return std::nullopt;
    }
    return d;
}

std::optional<bool> Fields::opt_boolean(const char* key) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
        wrong_type(key, "true or false", *v);
        return std::nullopt;
    }
    return v->get<bool>();
}

bool Fields::boolean_or(const char* key, bool fallback) { return opt_boolean(key).value_or(fallback); }

const Json* Fields::object(const char* key) {
    const Json* v = get(key);
    if (!v) return nullptr;
    if (!v->is_object()) {
        wrong_type(key, "an object", *v);
        return nullptr;
    }
    return v;
}

const Json* Fields::array(const char* key, size_t max_items) {
    const Json* v = get(key);
    if (!v) return nullptr;
    if (!v->is_array()) {
        wrong_type(key, "an array", *v);
        return nullptr;
    }
    if (v->size() > max_items) {
        reject(ErrorCode::InvalidInput, name(key), "'" + name(key) + "' may hold at most " + std::to_string(max_items) + " items",
               "too_many", {{"max", std::to_string(max_items)}});
        return nullptr;
    }
    return v;
}

std::vector<std::string> Fields::strings(const char* key, size_t max_items, size_t max_bytes_each) {
    std::vector<std::string> out;
    const Json* v = get(key);
    if (!v) return out;
    if (v->is_string()) {  // One string stands for a list of one.
        if (auto s = opt_string(key, max_bytes_each)) out.push_back(*s);
        return out;
    }
    const Json* a = array(key, max_items);
    if (!a) return out;
    for (const auto& item : *a) {
        if (!item.is_string()) {
            wrong_type(key, "a string or an array of strings", item);
            return {};
        }
        if (item.get_ref<const std::string&>().size() > max_bytes_each) {
            reject(ErrorCode::TooLarge, name(key),
                   "each of '" + name(key) + "' must be at most " + std::to_string(max_bytes_each) + " bytes", "too_long",
                   {{"max", std::to_string(max_bytes_each)}, {"unit", "bytes"}});
            return {};
        }
        out.push_back(item.get<std::string>());
    }
    return out;
}

void Fields::only(std::initializer_list<const char*> known) {
    if (!m_obj.is_object()) return;
    for (auto it = m_obj.begin(); it != m_obj.end(); ++it) {
        bool ok = false;
        for (const char* k : known) ok = ok || it.key() == k;
        if (!ok) {
            reject(ErrorCode::InvalidInput, name(it.key().c_str()), "unknown field '" + name(it.key().c_str()).substr(0, 100) + "'",
                   "unknown_field");
        }
    }
}

}  // namespace mc::api
