#include "llm/model_files.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "http/client.hpp"

namespace mc::llm {
namespace fs = std::filesystem;
namespace {

// whisper.cpp's legacy files start with the uint32 0x67676d6c ("ggml") in little-endian order.
bool is_ggml(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && std::string_view(magic, 4) == "lmgg";
}

bool is_gguf(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

std::string hex(const unsigned char* d, unsigned n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += digits[d[i] >> 4];
        out += digits[d[i] & 15];
    }
    return out;
}

Result<std::string> sha256_file(const std::string& path) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(ErrorCode::Io, "cannot read " + path);
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &n);
    return hex(digest, n);
}

}  // namespace

std::vector<ModelFile> list_models(const std::string& models_dir) {
    std::vector<ModelFile> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(models_dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        std::string format;
        if (it->path().extension() == ".gguf" && is_gguf(it->path())) format = "gguf";
        else if (it->path().extension() == ".bin" && is_ggml(it->path())) format = "ggml";
        else continue;
        out.push_back({fs::relative(it->path(), models_dir, ec).generic_string(), static_cast<int64_t>(it->file_size(ec)), format});
    }
    std::sort(out.begin(), out.end(), [](const ModelFile& a, const ModelFile& b) { return a.name < b.name; });
    return out;
}

Result<ModelFile> find_model(const std::string& models_dir, const std::string& name) {
    for (auto& m : list_models(models_dir)) {
        if (m.name == name) return m;
    }
    return fail(ErrorCode::NotFound, "no model '" + name.substr(0, 200) + "' in the models folder (see GET /api/models)", "path");
}

Result<std::string> download_name(const std::string& url, const std::string& requested, const std::string& format) {
    std::string name = requested;
    if (name.empty()) {
        std::string path = url.substr(0, url.find_first_of("?#"));
        name = path.substr(path.rfind('/') + 1);
    }
    std::string clean;
    for (char c : name) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') clean += c;
    }
    while (!clean.empty() && clean[0] == '.') clean.erase(0, 1);
    const std::string ext = format == "ggml" ? ".bin" : ".gguf";
    if (clean.size() < ext.size() + 1 || clean.size() > 200 || !clean.ends_with(ext)) {
        return fail(ErrorCode::InvalidInput, "the file to download must be a " + ext + " file (got '" + name.substr(0, 100) + "')", "url");
    }
    return clean;
}

Result<int64_t> download_model(const DownloadRequest& r) {
    const std::string part = r.target + ".part";
    std::error_code ec;
    fs::create_directories(fs::path(r.target).parent_path(), ec);
    int64_t total = -1;
    std::string last_error;
    for (int attempt = 0; attempt < 5; ++attempt) {
        const int64_t have = fs::exists(part, ec) ? static_cast<int64_t>(fs::file_size(part, ec)) : 0;
        if (total >= 0 && have >= total) break;
        http::ClientOptions co;
        co.connect_timeout_ms = 10000;
        co.read_timeout_ms = 60000;
        if (have > 0) co.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
        std::ofstream out;
        int64_t written = have;
        bool opened = false;
        http::ClientResponse head;
        auto res = http::fetch("GET", r.url.substr(0, r.url.find('/', r.url.find("://") + 3)),
                               r.url.substr(r.url.find('/', r.url.find("://") + 3)), "", "", co,
                               [&](std::string_view data) {
                                   if (!opened) {
                                       opened = true;
                                       // 206: the server continues our file; 200: it starts over.
                                       const bool resumed = head.status == 206;
                                       out.open(part, std::ios::binary | (resumed ? std::ios::app : std::ios::trunc));
                                       if (!resumed) written = 0;
                                   }
                                   out.write(data.data(), static_cast<std::streamsize>(data.size()));
                                   written += static_cast<int64_t>(data.size());
                                   if (r.progress && total > 0) r.progress(static_cast<double>(written) / static_cast<double>(total));
                                   return !(r.cancel && r.cancel->load());
                               },
                               [&](const http::ClientResponse& h) {
                                   head = h;
                                   if (h.content_length >= 0) total = (h.status == 206 ? have : 0) + h.content_length;
                               });
        out.close();
        if (r.cancel && r.cancel->load()) return fail(ErrorCode::Conflict, "download cancelled");
        if (!res) {
            last_error = res.error().message;
            continue;  // A dropped connection: try again from where we are.
        }
        if (res->status == 416 && have > 0) break;  // We already have all of it.
        if (res->status != 200 && res->status != 206) {
            return fail(ErrorCode::Unavailable, r.url + " answered HTTP " + std::to_string(res->status));
        }
        if (total < 0 || written >= total) break;
        last_error = "the connection ended after " + std::to_string(written) + " of " + std::to_string(total) + " bytes";
    }
    const int64_t size = fs::exists(part, ec) ? static_cast<int64_t>(fs::file_size(part, ec)) : 0;
    if (total >= 0 && size != total) {
        return fail(ErrorCode::Unavailable, "download incomplete (" + std::to_string(size) + " of " + std::to_string(total) +
                                                " bytes): " + last_error + "; starting it again resumes");
    }
    if (r.format == "ggml" ? !is_ggml(part) : !is_gguf(part)) {
        fs::remove(part, ec);
        return fail(ErrorCode::UnsupportedMedia, r.url + (r.format == "ggml" ? " is not a whisper.cpp ggml model file" : " is not a GGUF model file"));
    }
    if (!r.sha256.empty()) {
        auto digest = sha256_file(part);
        if (!digest) return std::unexpected(digest.error());
        if (*digest != r.sha256) {
            fs::remove(part, ec);
            return fail(ErrorCode::InvalidInput, "SHA-256 mismatch: expected " + r.sha256 + ", got " + *digest, "sha256");
        }
    }
    fs::rename(part, r.target, ec);
    if (ec) return fail(ErrorCode::Io, "cannot move the download into place: " + ec.message());
    if (r.progress) r.progress(1.0);
    return size;
}

}  // namespace mc::llm
