#include "store/blob_store.hpp"

#include "core/json.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/settings.hpp"
#include "core/text.hpp"

namespace mc::store {

void BlobStore::media_files(std::string_view media_json, std::vector<std::string>& out) {
    const Json media = Json::parse(media_json, nullptr, false);
    if (!media.is_array()) return;
    constexpr std::string_view kPrefix = "/api/media/";
    for (const auto& e : media) {
        const std::string url = json_string_or(e, "url", "");
        if (url.size() > kPrefix.size() && url.compare(0, kPrefix.size(), kPrefix) == 0 && valid_name(url.substr(kPrefix.size()))) {
            out.push_back(url.substr(kPrefix.size()));
        }
    }
}

bool BlobStore::valid_name(std::string_view name) {
    // kind "/" 32 hex "." ext, with kind and ext lowercase letters only.
    const size_t slash = name.find('/');
    const size_t dot = name.rfind('.');
    if (slash == std::string_view::npos || slash == 0 || dot == std::string_view::npos || dot != slash + 33) return false;
    auto lower = [](std::string_view s) {
        if (s.empty() || s.size() > 16) return false;
        for (char c : s) if (c < 'a' || c > 'z') return false;
        return true;
    };
    if (!lower(name.substr(0, slash)) || !lower(name.substr(dot + 1))) return false;
    for (char c : name.substr(slash + 1, 32)) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

Result<std::string> BlobStore::put(std::string_view kind, std::string_view ext, std::string_view bytes) {
    std::error_code ec;
    std::filesystem::create_directories(m_root + "/" + std::string(kind), ec);
    const std::string name = std::string(kind) + "/" + random_hex(16) + "." + std::string(ext);
    if (auto w = write_file_atomic(path_of(name), std::string(bytes)); !w) return std::unexpected(w.error());
    return name;
}

Result<std::string> BlobStore::read(const std::string& name) const {
    if (!valid_name(name)) return fail(ErrorCode::NotFound, "no such file");
    std::ifstream in(path_of(name), std::ios::binary);
    if (!in) return fail(ErrorCode::NotFound, "file " + name + " is missing from the data folder");
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

Result<std::string> BlobStore::link(const std::string& name) {
    if (!valid_name(name)) return fail(ErrorCode::NotFound, "no such file");
    const size_t slash = name.find('/');
    const std::string copy = name.substr(0, slash) + "/" + random_hex(16) + name.substr(name.rfind('.'));
    std::error_code ec;
    std::filesystem::create_hard_link(path_of(name), path_of(copy), ec);
    if (ec) {
        // A file system without hard links: a real copy.
        ec.clear();
        std::filesystem::copy_file(path_of(name), path_of(copy), ec);
        if (ec) return fail(ErrorCode::Io, "cannot copy " + name + ": " + ec.message());
    }
    return copy;
}

void BlobStore::remove(const std::string& name) const {
    if (!valid_name(name)) return;
    std::error_code ec;
    std::filesystem::remove(path_of(name), ec);
}

}  // namespace mc::store
