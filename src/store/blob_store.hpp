// store/blob_store: files we keep for the user (avatars, voice samples, generated media) under
// data-dir/outputs/<kind>/ with names we generate. A name from a client is only ever looked up,
// after checking it matches our own pattern, so nothing a client sends becomes a path.
// Thread safety: safe from any thread (each write goes to a fresh name, then renames).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace mc::store {

class BlobStore {
public:
    explicit BlobStore(std::string outputs_dir) : m_root(std::move(outputs_dir)) {}

    // Stores bytes as "<kind>/<random>.<ext>" and returns that name. `kind` and `ext` come from us.
    Result<std::string> put(std::string_view kind, std::string_view ext, std::string_view bytes);
    Result<std::string> read(const std::string& name) const;
    void remove(const std::string& name) const;
    // A second name for the same file (a hard link, a copy where the file system has none), so a
    // branched chat owns its pictures and audio: removing either name leaves the other intact.
    Result<std::string> link(const std::string& name);
    // True when `name` has the shape put() produces.
    static bool valid_name(std::string_view name);
    // The names of our files that a message's `media` array (JSON text) points at
    // ("/api/media/<name>"), appended to `out`; anything else in it is ignored.
    static void media_files(std::string_view media_json, std::vector<std::string>& out);
    std::string path_of(const std::string& name) const { return m_root + "/" + name; }

private:
    std::string m_root;
};

}  // namespace mc::store
