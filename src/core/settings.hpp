// core/settings: config/settings.json — the schema (every key with a default), validation that names
// the key at fault, merge patches from the API, atomic writes, and redaction of secrets.
// Thread safety: SettingsStore is safe to use from any thread; snapshots are immutable.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace mc {

using Json = nlohmann::json;

// The value shown instead of a secret; a PATCH that sends it back leaves the secret unchanged.
inline constexpr const char* kRedacted = "********";

// A complete, validated settings document: every known key present.
class Settings {
public:
    Settings();  // All defaults.
    explicit Settings(Json doc) : m_doc(std::move(doc)) {}

    const Json& json() const { return m_doc; }
    Json redacted() const;

    std::string str(const char* path) const;
    long long integer(const char* path) const;
    double number(const char* path) const;
    bool boolean(const char* path) const;

private:
    Json m_doc;
};

struct SettingsLoad {
    Settings settings;
    std::vector<std::string> warnings;  // Unknown keys, one line each.
};

// Parses and validates a settings document. Missing keys take defaults; unknown keys warn;
// a wrong type or out-of-range value fails with the key's dotted path in Error::field.
Result<SettingsLoad> validate_settings(const Json& doc);

// llm.rpc_servers: "host:port, host:port" (IPv6 in brackets) → the list; at most 16; an empty
// string is an empty list. The error names the entry that is wrong.
Result<std::vector<std::string>> parse_rpc_servers(std::string_view list);

// Reads a settings file. A missing or empty file gives the defaults.
Result<SettingsLoad> load_settings_file(const std::string& path);

// Owns the settings file at runtime: current snapshot, PATCH, atomic write (temp file + rename).
class SettingsStore {
public:
    SettingsStore(std::string path, Settings initial);

    std::shared_ptr<const Settings> current() const;
    // Applies an RFC 7386 merge patch. Unknown keys are rejected (unlike the file, where they warn).
    Result<std::shared_ptr<const Settings>> patch(const Json& patch);
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
    mutable std::mutex m_mutex;
    std::shared_ptr<const Settings> m_current;
};

// Writes `content` to `path` atomically: a temporary file in the same folder, fsync, rename.
Result<void> write_file_atomic(const std::string& path, const std::string& content);

}  // namespace mc
