// llm/model_files: the GGUF models under data/models — listing them, and downloading one from a URL
// with resume (HTTP Range), progress and an optional SHA-256 check. A client names a model only by
// what the listing shows, and a download's file name is derived and sanitized here, so nothing a
// client sends becomes a path.
// Thread safety: functions are independent; a download runs on the caller's (job) thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace mc::llm {

struct ModelFile {
    std::string name;  // Path relative to the models folder ("llm/stheno.gguf").
    int64_t size = 0;
    std::string format = "gguf";  // "gguf" (llama.cpp) | "ggml" (whisper.cpp's .bin: Whisper, Silero VAD)
};

// GGUF files and whisper.cpp's ggml .bin files (each checked by its magic) under `models_dir`,
// sorted by name.
std::vector<ModelFile> list_models(const std::string& models_dir);
// The listing entry called `name`, or NotFound.
Result<ModelFile> find_model(const std::string& models_dir, const std::string& name);
// A file name for a download: the URL's last segment, sanitized, ending in .gguf (format "gguf")
// or .bin (format "ggml").
Result<std::string> download_name(const std::string& url, const std::string& requested, const std::string& format = "gguf");

struct DownloadRequest {
    std::string url;
    std::string sha256;  // Lowercase hex, optional.
    std::string target;  // Absolute path of the finished file.
    std::string format = "gguf";  // The magic the finished file must start with: "gguf" | "ggml".
    std::function<void(double)> progress;
    std::shared_ptr<std::atomic<bool>> cancel;
};

// Downloads to target + ".part", resuming a partial file with a Range request (also after a dropped
// connection, a few times), checks the format's magic and the SHA-256, then renames into place.
Result<int64_t> download_model(const DownloadRequest& request);

}  // namespace mc::llm
