// api/json_io: JSON in and out of HTTP — request body parsing, error bodies, and the one mapping
// from ErrorCode to HTTP status.
// Thread safety: pure functions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "http/server.hpp"

namespace mc::api {

using Json = nlohmann::json;

int http_status(ErrorCode code);
http::Response json_response(int status, const Json& body);
http::Response error_response(const Error& error);
// The body of an error: {"error":{"code","message","field"?}}.
Json error_json(const Error& error);
// Parses the request body as a JSON object; errors name the line and column.
Result<Json> parse_object(const http::Request& req);

}  // namespace mc::api
