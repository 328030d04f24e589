#include "api/json_io.hpp"

namespace mc::api {

int http_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidInput: return 400;
        case ErrorCode::NotFound: return 404;
        case ErrorCode::Conflict: return 409;
        case ErrorCode::TooLarge: return 413;
        case ErrorCode::UnsupportedMedia: return 415;
        case ErrorCode::Unavailable: return 503;
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

Json error_json(const Error& error) {
    Json e = {{"code", error_code_name(error.code)}, {"message", error.message}};
    if (!error.field.empty()) e["field"] = error.field;
    return Json{{"error", e}};
}

http::Response error_response(const Error& error) { return json_response(http_status(error.code), error_json(error)); }

Result<Json> parse_object(const http::Request& req) {
    if (req.body.empty()) return fail(ErrorCode::InvalidInput, "request body must be a JSON object; it is empty", "body");
    try {
        Json doc = Json::parse(req.body);
        if (!doc.is_object()) return fail(ErrorCode::InvalidInput, "request body must be a JSON object", "body");
        return doc;
    } catch (const Json::parse_error& e) {
        return fail(ErrorCode::InvalidInput, std::string("request body is not valid JSON: ") + e.what(), "body");
    }
}

}  // namespace mc::api
