// bench/stt_bench: speech to text, measured against the real server.
//   stt_bench <mycandy> <whisper-cli> <whisper model (base shape)> <whisper model (tiny shape)> <VAD model> <threads> [reps]
// Prints:
// 1. Our POST /api/stt on a 30 s clip of continuous speech ÷ whisper.cpp's own command-line tool
//    (built from the same sources) on the same model, audio, threads, language and greedy decoding.
//    The server is warm (model loaded); whisper-cli's figure is its own "total time" minus its
//    "load time" (both printed by whisper.cpp), and its wall time is shown beside it.
// 2. Time from the end of speech to the text for a 5 s utterance (the request's round trip: the
//    recording is sent when the speaker stops), tiny random shape, with the VAD.
// 3. The share of audio the VAD skipped on a clip with silence around and between sentences, and
//    the share that really was silence.
#include <cmath>
#include <cstdio>
#include <regex>

#include "bench_util.hpp"
#include "core/process.hpp"
#include "stt/audio_decode.hpp"
#include "voice/wav.hpp"

namespace {

using bench::Clock;
using bench::Json;

// espeak-ng's speech at 16 kHz mono.
std::vector<float> say(const std::string& text, const std::string& voice) {
    auto r = mc::run_process({"espeak-ng", "-v", voice, "--stdout", text});
    if (!r || r->exit_code != 0) return {};
    auto pcm = mc::stt::decode_audio(r->out, 600);
    return pcm ? pcm->samples : std::vector<float>();
}

std::string wav16(const std::vector<float>& s) {
    mc::voice::Audio a;
    a.sample_rate = mc::stt::kSampleRate;
    for (float v : s) a.samples.push_back(static_cast<int16_t>(std::lrint(std::clamp(v, -1.0f, 1.0f) * 32767)));
    return mc::voice::encode_wav(a);
}

void append_silence(std::vector<float>& s, double seconds) { s.resize(s.size() + static_cast<size_t>(seconds * mc::stt::kSampleRate), 0.0f); }

struct Server {
    bench::Process proc;
    std::string dir;
};

bool start(Server& s, const std::string& binary, const Json& settings) {
    char tmpl[] = "/tmp/mc-stt-bench-XXXXXX";
    s.dir = mkdtemp(tmpl);
    bench::write_text(s.dir + "/settings.json", settings.dump());
    s.proc.port = bench::free_port();
    s.proc.pid = bench::spawn({binary, "serve", "--port", std::to_string(s.proc.port), "--data-dir", s.dir + "/data", "--config",
                               s.dir + "/settings.json"},
                              s.dir + "/server.log");
    httplib::Client c("127.0.0.1", s.proc.port);
    for (int i = 0; i < 3000; ++i) {  // Polls until the server answers (start-up has no other signal).
        auto r = c.Get("/api/health");
        if (r && r->status == 200) return Json::parse(r->body, nullptr, false)["components"]["stt"]["state"] == "ready";
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

// POSTs a recording to /api/stt; returns the round trip in ms and the answer.
double post_stt(int port, const std::string& wav, const std::string& query, Json& answer) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(3600, 0);
    const auto t0 = Clock::now();
    auto r = c.Post(("/api/stt" + query).c_str(), wav, "audio/wav");
    const double ms = bench::ms_since(t0);
    answer = r && r->status == 200 ? Json::parse(r->body, nullptr, false) : Json{{"error", r ? r->body : "no answer"}};
    return ms;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 7) {
        std::fprintf(stderr, "usage: stt_bench <mycandy> <whisper-cli> <model base.bin> <model tiny.bin> <vad.bin> <threads> [reps]\n");
        return 2;
    }
    const std::string binary = argv[1], cli = argv[2], base_model = argv[3], tiny_model = argv[4], vad = argv[5], threads = argv[6];
    const int reps = argc > 7 ? std::atoi(argv[7]) : 3;
    const char* sentences[] = {"Hallo Mia, wie war dein Tag am Hafen?", "Ich habe heute Morgen ein Bild vom Meer gemalt.",
                               "Am Abend gehen wir zusammen an der Elbe spazieren.", "Erzähl mir bitte etwas über deine Familie.",
                               "Das Wetter in Hamburg ist heute grau und windig.", "Was möchtest du morgen unternehmen?"};

    // 1. The 30 s clip: sentences back to back (short pauses), cut at 30 s.
    std::vector<float> clip;
    for (int i = 0; clip.size() < 30u * mc::stt::kSampleRate; ++i) {
        auto s = say(sentences[i % 6], "de");
        if (s.empty()) {
            std::fprintf(stderr, "stt_bench: espeak-ng is needed\n");
            return 1;
        }
        clip.insert(clip.end(), s.begin(), s.end());
    }
    clip.resize(30u * mc::stt::kSampleRate);
    // Cut to whole 30 ms windows from the first to the last loud one: the server's loudness gate
    // (no VAD) then keeps every sample, so whisper-cli and we recognize exactly the same audio.
    {
        constexpr size_t kWin = 480;
        size_t first = SIZE_MAX, last = 0;
        for (size_t w = 0; (w + 1) * kWin <= clip.size(); ++w) {
            double sum = 0;
            for (size_t k = w * kWin; k < (w + 1) * kWin; ++k) sum += static_cast<double>(clip[k]) * clip[k];
            if (std::sqrt(sum / kWin) > 0.00316) first = std::min(first, w), last = w;
        }
        clip = std::vector<float>(clip.begin() + static_cast<std::ptrdiff_t>(first * kWin), clip.begin() + static_cast<std::ptrdiff_t>((last + 1) * kWin));
    }
    const std::string clip_wav = wav16(clip);
    Server ours;
    // No VAD for the comparison: whisper-cli runs the whole 30 s window once, and so do we.
    if (!start(ours, binary, {{"stt", {{"model_path", base_model}, {"vad_model_path", ""}, {"threads", std::stoi(threads)}}}})) {
        std::fprintf(stderr, "stt_bench: the server did not become ready (see %s/server.log)\n", ours.dir.c_str());
        return 1;
    }
    bench::write_text(ours.dir + "/clip.wav", clip_wav);
    Json answer;
    post_stt(ours.proc.port, clip_wav, "?language=de", answer);  // Warm-up: loads the model.
    std::vector<double> our_ms, cli_ms, cli_wall;
    std::string our_text, cli_text;
    const std::regex total_re(R"(total time\s*=\s*([0-9.]+) ms)"), load_re(R"(load time\s*=\s*([0-9.]+) ms)");
    for (int i = 0; i < reps; ++i) {
        // Alternated so drift hits both.
        our_ms.push_back(post_stt(ours.proc.port, clip_wav, "?language=de", answer));
        our_text = answer.value("text", answer.dump());
        const auto t0 = Clock::now();
        auto r = mc::run_process({cli, "-m", base_model, "-f", ours.dir + "/clip.wav", "-t", threads, "-l", "de", "-bs", "1"},
                                 {"", std::chrono::milliseconds(3600000), 64u << 20, 0, nullptr});
        cli_wall.push_back(bench::ms_since(t0));
        if (!r || r->exit_code != 0) {
            std::fprintf(stderr, "stt_bench: whisper-cli failed: %s\n", r ? r->err.substr(0, 400).c_str() : r.error().message.c_str());
            return 1;
        }
        std::smatch mt, ml;
        const std::string& log = r->err;
        if (std::regex_search(log, mt, total_re) && std::regex_search(log, ml, load_re)) {
            cli_ms.push_back(std::stod(mt[1]) - std::stod(ml[1]));
        }
        cli_text = r->out;
    }
    // whisper-cli prints "[from --> to]  text" lines: the text alone, to compare with ours.
    std::string cli_plain;
    for (size_t at = 0; at < cli_text.size();) {
        size_t nl = cli_text.find('\n', at);
        if (nl == std::string::npos) nl = cli_text.size();
        std::string line = cli_text.substr(at, nl - at);
        at = nl + 1;
        const size_t close = line.find(']');
        if (line.starts_with("[") && close != std::string::npos) line = line.substr(close + 1);
        const size_t b = line.find_first_not_of(' ');
        if (b == std::string::npos) continue;
        if (!cli_plain.empty()) cli_plain += ' ';
        cli_plain += line.substr(b);
    }
    ours.proc.stop();
    std::printf("speech to text (whisper.cpp %s, %s threads, %d runs; random-weight models: speed does not depend on the weights)\n",
                "1.9.3", threads.c_str(), reps);
    const double ratio = bench::median(cli_ms) > 0 ? bench::median(our_ms) / bench::median(cli_ms) : 0.0;
    std::printf("  %.1f s clip, base shape, greedy, de: our /api/stt %.0f ms (%s) / whisper-cli %.0f ms (%s; wall incl. load %.0f ms) = %.3f (goal <= 1.05)\n",
                static_cast<double>(clip.size()) / mc::stt::kSampleRate, bench::median(our_ms), bench::range(our_ms, "%.0f").c_str(),
                bench::median(cli_ms), bench::range(cli_ms, "%.0f").c_str(), bench::median(cli_wall), ratio);
    // Segments are joined with or without a space (the random tokens may lack one): compared without.
    auto squeeze = [](std::string t) {
        std::erase(t, ' ');
        return t;
    };
    std::printf("    same text (so the same work): %s (ours \"%s\", whisper-cli \"%s\")\n", squeeze(our_text) == squeeze(cli_plain) ? "yes" : "NO",
                our_text.substr(0, 60).c_str(), cli_plain.substr(0, 60).c_str());

    // 2. End of speech -> text, 5 s utterance (speech then the 0.3 s a recorder keeps after it).
    std::vector<float> five;
    for (int i = 0; five.size() < 5u * mc::stt::kSampleRate; ++i) {
        auto s = say(sentences[(i + 2) % 6], "de");
        five.insert(five.end(), s.begin(), s.end());
    }
    five.resize(5u * mc::stt::kSampleRate);
    append_silence(five, 0.3);
    Server tiny;
    if (!start(tiny, binary, {{"stt", {{"model_path", tiny_model}, {"vad_model_path", vad}, {"threads", std::stoi(threads)}}}})) {
        std::fprintf(stderr, "stt_bench: the server did not become ready (see %s/server.log)\n", tiny.dir.c_str());
        return 1;
    }
    const std::string five_wav = wav16(five);
    post_stt(tiny.proc.port, five_wav, "?language=de", answer);
    std::vector<double> latency;
    for (int i = 0; i < std::max(reps, 5); ++i) latency.push_back(post_stt(tiny.proc.port, five_wav, "?language=de", answer));
    std::printf("  end of speech -> text, 5 s utterance, tiny shape + VAD: median %.0f ms (%s ms)\n", bench::median(latency),
                bench::range(latency, "%.0f").c_str());

    // 3. A clip with silence: 3 s before, 1.5 s between the sentences, 4 s after.
    std::vector<float> sparse;
    append_silence(sparse, 3.0);
    double spoken = 0;
    for (int i = 0; i < 4; ++i) {
        auto s = say(sentences[i], "de");
        size_t first = s.size(), last = 0;
        for (size_t k = 0; k < s.size(); ++k) {
            if (std::abs(s[k]) > 0.01f) first = std::min(first, k), last = k;
        }
        spoken += static_cast<double>(last - first) / mc::stt::kSampleRate;
        sparse.insert(sparse.end(), s.begin(), s.end());
        append_silence(sparse, i < 3 ? 1.5 : 4.0);
    }
    post_stt(tiny.proc.port, wav16(sparse), "?language=de", answer);
    tiny.proc.stop();
    const double dur = answer.value("duration", 0.0), kept = answer.value("speech_seconds", 0.0);
    std::printf("  VAD on a %.1f s clip with silence: skipped %.1f%% of the audio (silence in it: %.1f%%; %zu segments)\n", dur,
                dur > 0 ? 100.0 * (1.0 - kept / dur) : 0.0, dur > 0 ? 100.0 * (1.0 - spoken / dur) : 0.0,
                answer.contains("segments") ? answer["segments"].size() : 0u);
    return 0;
}
