// tts_bench: the embedded speech engine (voice/embedded_tts) against llama.cpp's own `llama-tts` on
// the same random-weight Qwen3-TTS pair, text, seed, sampling and frame cap; then the real-time
// factor at Qwen3-TTS-12Hz-1.7B-Base's shape.
// usage: tts_bench [--dir DIR] [--reps N] [--threads N] [--skip-1.7b] [--text TEXT] [--big-text TEXT]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "voice/embedded_tts.hpp"
#include "voice/tts_test_model.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2.0;
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

struct RefRun {
    double total_s = -1;  // llama-tts's own "prompt eval + generation + vocoder" total.
    int frames = -1;
    long samples = -1;
};

// Runs llama-tts and reads its own timing line and the WAV it wrote.
RefRun run_llama_tts(const std::string& model, const std::string& mmproj, const std::string& text, const std::string& lang,
                     int threads, int frames, const std::string& wav) {
    const std::string cmd = std::string(MYCANDY_LLAMA_TTS) + " -m " + shell_quote(model) + " --mmproj " + shell_quote(mmproj) +
                            " -p " + shell_quote(text) + " -o " + shell_quote(wav) + " -t " + std::to_string(threads) +
                            " -n " + std::to_string(frames) + " --tts-lang " + lang +
                            " -s 42 --top-k 50 --top-p 1.0 --temp 0.9 --min-p 0 -c 4096 2>&1";
    RefRun r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char line[4096];
    while (std::fgets(line, sizeof line, p)) {
        const std::string l = line;
        if (auto at = l.find("= total "); at != std::string::npos) r.total_s = std::atof(l.c_str() + at + 8);
        if (auto at = l.find("generated "); at != std::string::npos && l.find(" frames,") != std::string::npos)
            r.frames = std::atoi(l.c_str() + at + 10);
    }
    pclose(p);
    std::error_code ec;
    const auto size = fs::file_size(wav, ec);
    if (!ec && size >= 44) r.samples = static_cast<long>((size - 44) / 2);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = MYCANDY_BENCH_OUT, text = "Hallo Welt, wie geht es dir heute?", big_text = "Guten Tag.";
    int reps = 3, threads = 2;
    bool skip_big = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (a == "--dir") dir = next();
        else if (a == "--reps") reps = std::max(1, std::atoi(next().c_str()));
        else if (a == "--threads") threads = std::max(1, std::atoi(next().c_str()));
        else if (a == "--skip-1.7b") skip_big = true;
        else if (a == "--text") text = next();
        else if (a == "--big-text") big_text = next();
        else {
            std::fprintf(stderr, "usage: tts_bench [--dir DIR] [--reps N] [--threads N] [--skip-1.7b] [--text T] [--big-text T]\n");
            return 2;
        }
    }
    fs::create_directories(dir);
    using mc::voice::EmbeddedTts;
    using mc::voice::TtsRequest;

    // (a) Us vs llama-tts, tiny Qwen3-TTS pair.
    mc::voice::TtsTestModelOptions tiny{"qwen3tts", dir + "/qwen3tts-tiny.gguf", dir + "/qwen3tts-tiny-mmproj.gguf", "tiny", 42};
    if (auto r = mc::voice::write_tts_test_model(tiny); !r) {
        std::fprintf(stderr, "cannot write the tiny model: %s\n", r.error().message.c_str());
        return 1;
    }
    const int cap = EmbeddedTts::max_frames(text);
    EmbeddedTts ours(tiny.out, tiny.mmproj, threads);
    if (auto r = ours.load(); !r) {
        std::fprintf(stderr, "load failed: %s\n", r.error().message.c_str());
        return 1;
    }
    TtsRequest req;
    req.text = text;
    req.language = "de";
    std::vector<double> ours_s, ref_s;
    long ours_samples = -1;
    RefRun last_ref;
    // Interleaved, so load changes on the machine hit both sides alike.
    for (int i = 0; i < reps; ++i) {
        const auto t0 = Clock::now();
        auto a = ours.synthesize(req);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (!a) {
            std::fprintf(stderr, "synthesis failed: %s\n", a.error().message.c_str());
            return 1;
        }
        ours_s.push_back(s);
        ours_samples = static_cast<long>(a->samples.size());
        last_ref = run_llama_tts(tiny.out, tiny.mmproj, text, "de", threads, cap, dir + "/llama-tts.wav");
        if (last_ref.total_s < 0) {
            std::fprintf(stderr, "llama-tts gave no timing line (%s)\n", MYCANDY_LLAMA_TTS);
            return 1;
        }
        ref_s.push_back(last_ref.total_s);
        std::printf("  rep %d: ours %.3f s (%ld samples), llama-tts %.3f s (%d frames, %ld samples)\n", i + 1, s, ours_samples,
                    last_ref.total_s, last_ref.frames, last_ref.samples);
    }
    const double ratio = median(ours_s) / median(ref_s);
    std::printf("(a) tiny Qwen3-TTS, \"%s\" (de), %d threads, frame cap %d, %d reps (medians)\n", text.c_str(), threads, cap, reps);
    std::printf("    ours %.3f s, llama-tts %.3f s: ratio %.3f (goal <= 1.05: %s)\n", median(ours_s), median(ref_s), ratio,
                ratio <= 1.05 ? "met" : "NOT met");
    std::printf("    audio: ours %ld samples (%.2f s), llama-tts %ld samples (%.2f s)%s\n", ours_samples, ours_samples / 24000.0,
                last_ref.samples, last_ref.samples / 24000.0,
                ours_samples == last_ref.samples ? " - same length" : " - LENGTHS DIFFER (unfair ratio)");

    // (b) Real-time factor at the 1.7B shape.
    if (!skip_big) {
        mc::voice::TtsTestModelOptions big{"qwen3tts", dir + "/qwen3tts-1.7b.gguf", dir + "/qwen3tts-1.7b-mmproj.gguf", "1.7b", 42};
        std::error_code ec;
        if (!fs::exists(big.out, ec) || !fs::exists(big.mmproj, ec)) {
            const auto t0 = Clock::now();
            if (auto r = mc::voice::write_tts_test_model(big); !r) {
                std::fprintf(stderr, "cannot write the 1.7b model: %s\n", r.error().message.c_str());
                return 1;
            }
            std::printf("    wrote the 1.7B-shaped pair in %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
        }
        EmbeddedTts e(big.out, big.mmproj, threads);
        const auto l0 = Clock::now();
        if (auto r = e.load(); !r) {
            std::fprintf(stderr, "1.7b load failed: %s\n", r.error().message.c_str());
            return 1;
        }
        const double load_s = std::chrono::duration<double>(Clock::now() - l0).count();
        TtsRequest b;
        b.text = big_text;
        b.language = "de";
        const auto t0 = Clock::now();
        auto a = e.synthesize(b);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (!a) {
            std::fprintf(stderr, "1.7b synthesis failed: %s\n", a.error().message.c_str());
            return 1;
        }
        std::printf("(b) Qwen3-TTS 1.7B shape (random, backbone q8_0, mmproj f16), \"%s\" (de), %d threads, one run\n",
                    big_text.c_str(), threads);
        std::printf("    load %.1f s; synthesis %.2f s for %.2f s of audio: real-time factor %.2f\n", load_s, s, a->seconds(),
                    a->seconds() > 0 ? s / a->seconds() : 0.0);
    }
    return 0;
}
