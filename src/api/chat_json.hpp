// api/chat_json: chats, messages, samplers and turn events <-> JSON.
// Thread safety: pure functions.
#pragma once

#include "api/json_io.hpp"
#include "chat/chat_service.hpp"
#include "llm/engine.hpp"
#include "store/types.hpp"

namespace mc::api {

Json message_to_json(const Message& m);
Json chat_to_json(const Chat& c);
// Reads sampler fields from `j` on top of `base`. Unknown keys and wrong types name the field.
// `prefix` names where the object sits ("extensions.mycandy.sampling.") in error fields.
Result<llm::Sampling> sampling_from_json(const Json& j, llm::Sampling base, const std::string& prefix = "");
// A character's own samplers (extensions.mycandy.sampling), or null when it has none.
const Json* character_sampling(const Json& extensions);
// One turn event's name and data ("token", {"text": ...}): the turn stream's and a call's words.
std::pair<std::string, Json> turn_event_json(const chat::TurnEvent& e);
// One turn event as SSE bytes ("event: token\ndata: {...}\n\n").
std::string turn_event_sse(const chat::TurnEvent& e);
Json timings_json(const llm::GenerateResult& r);
Json summary_to_json(const Summary& s);
Json fact_to_json(const Fact& f);
Json job_to_json(const Job& j);
// A message id from a path or query ("17"); anything else is NotFound naming `field`.
Result<int64_t> parse_id(const std::string& s, const char* what, const char* field = "id");

}  // namespace mc::api
