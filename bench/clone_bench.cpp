// clone_bench: instant voice cloning with the embedded engine (random-weight Qwen3-TTS, tiny shape),
// measured in one run:
//   (1) a 30 s voice sample checked, measured and normalized (what an upload costs the server);
//   (2) the speaker reference: reading and decoding the sample once (first sentence after an upload)
//       and libmtmd's speaker encoder, which its helper runs for every sentence (no API takes a
//       precomputed embedding) — from sentence times with a cold sample, a kept one, and none;
//   (3) upload to the first cloned sentence: (1) + writing the normalized copy + the first sentence.
// usage: clone_bench [--dir DIR] [--reps N] [--threads N] [--text T]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "stt/audio_decode.hpp"
#include "voice/embedded_tts.hpp"
#include "voice/tts_test_model.hpp"
#include "voice/wav.hpp"

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2.0;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// 30 s of a voice-like signal at 44.1 kHz: a gliding tone with syllable-rate loudness and pauses.
std::string sample_wav(double seconds) {
    mc::voice::Audio a;
    a.sample_rate = 44100;
    const auto n = static_cast<size_t>(seconds * a.sample_rate);
    for (size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / a.sample_rate;
        const double env = std::max(0.0, std::sin(2 * M_PI * 3.0 * t)) * (std::fmod(t, 4.0) < 3.2 ? 1.0 : 0.0);
        const double f = 140 + 40 * std::sin(2 * M_PI * 0.5 * t);
        a.samples.push_back(static_cast<int16_t>(9000 * env * std::sin(2 * M_PI * f * t)));
    }
    return mc::voice::encode_wav(a);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = MYCANDY_BENCH_OUT, text = "Ja.";
    int reps = 3, threads = 2;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (a == "--dir") dir = next();
        else if (a == "--reps") reps = std::max(1, std::atoi(next().c_str()));
        else if (a == "--threads") threads = std::max(1, std::atoi(next().c_str()));
        else if (a == "--text") text = next();
        else {
            std::fprintf(stderr, "usage: clone_bench [--dir DIR] [--reps N] [--threads N] [--text T]\n");
            return 2;
        }
    }
    fs::create_directories(dir);
    mc::voice::TtsTestModelOptions tiny{"qwen3tts", dir + "/qwen3tts-tiny.gguf", dir + "/qwen3tts-tiny-mmproj.gguf", "tiny", 42};
    if (auto r = mc::voice::write_tts_test_model(tiny); !r) {
        std::fprintf(stderr, "cannot write the tiny model: %s\n", r.error().message.c_str());
        return 1;
    }
    mc::voice::EmbeddedTts tts(tiny.out, tiny.mmproj, threads);
    if (auto r = tts.load(); !r) {
        std::fprintf(stderr, "load failed: %s\n", r.error().message.c_str());
        return 1;
    }
    const std::string upload = sample_wav(30.0);
    mc::voice::TtsRequest req;
    req.text = text;
    req.language = "de";
    std::vector<double> analyze_s, cold_s, warm_s, none_s, upload_s;
    for (int i = 0; i < reps; ++i) {
        // (1) and (3): the upload's work, then the first sentence with a sample the engine never read.
        const auto t0 = Clock::now();
        auto sample = mc::stt::analyze_voice_sample(upload);
        if (!sample) {
            std::fprintf(stderr, "analysis failed: %s\n", sample.error().message.c_str());
            return 1;
        }
        analyze_s.push_back(since(t0));
        const std::string clip = dir + "/clone-sample-" + std::to_string(i) + ".wav";
        std::ofstream(clip, std::ios::binary) << sample->wav;
        req.speaker_clip = clip;
        const auto t1 = Clock::now();
        auto first = tts.synthesize(req);
        if (!first) {
            std::fprintf(stderr, "synthesis failed: %s\n", first.error().message.c_str());
            return 1;
        }
        cold_s.push_back(since(t1));
        upload_s.push_back(since(t0));
        // (2): the same sample kept, and no sample at all.
        const auto t2 = Clock::now();
        if (!tts.synthesize(req)) return 1;
        warm_s.push_back(since(t2));
        mc::voice::TtsRequest plain = req;
        plain.speaker_clip.clear();
        const auto t3 = Clock::now();
        if (!tts.synthesize(plain)) return 1;
        none_s.push_back(since(t3));
        fs::remove(clip);
        std::printf("  rep %d: analyze %.3f s, sentence cold %.3f s / kept %.3f s / no sample %.3f s\n", i + 1, analyze_s.back(),
                    cold_s.back(), warm_s.back(), none_s.back());
    }
    std::printf("clone_bench: tiny Qwen3-TTS, \"%s\" (de), %d threads, %d reps (medians); sample reads: %d\n", text.c_str(), threads,
                reps, tts.speaker_loads());
    std::printf("(1) 30 s sample (44.1 kHz WAV) checked, measured, normalized to 24 kHz: %.1f ms\n", median(analyze_s) * 1000);
    std::printf("(2) speaker reference of a 30 s sample: read + decoded once per sample %.1f ms (cold - kept); "
                "encoded per sentence by libmtmd %.1f ms (kept - none)\n",
                (median(cold_s) - median(warm_s)) * 1000, (median(warm_s) - median(none_s)) * 1000);
    std::printf("(3) upload to first cloned sentence: %.3f s (of which the sentence itself %.3f s)\n", median(upload_s), median(cold_s));
    return 0;
}
