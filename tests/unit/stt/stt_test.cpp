// Speech to text below the HTTP layer: recordings in every format we read decode to 16 kHz mono
// (files written at test time by libsndfile, libopusenc and our WebM muxer over libopus), bad bytes
// are refused by name, model files are checked before whisper.cpp sees them, and whisper.cpp's real
// loader, VAD and decoder run on random-weight models with espeak-ng speech between silences.
#include <gtest/gtest.h>

#include <opus/opus.h>
#include <sndfile.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "../../stt_audio.hpp"
#include "stt/audio_decode.hpp"
#include "stt/whisper_files.hpp"
#include "stt/whisper_stt.hpp"
#include "voice/wav.hpp"

namespace mc::stt {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "mc_stt_XXXXXX").string();
    return mkdtemp(tmpl.data()) ? tmpl : std::string();
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// A 440 Hz tone of `seconds` between `lead` seconds of silence and the same after, at `rate`.
std::vector<float> tone(double seconds, double lead, int rate) {
    const auto n_lead = static_cast<size_t>(lead * rate);
    std::vector<float> s(n_lead * 2 + static_cast<size_t>(seconds * rate), 0.0f);
    for (size_t i = n_lead; i < s.size() - n_lead; ++i) s[i] = 0.5f * static_cast<float>(std::sin(2 * M_PI * 440.0 * static_cast<double>(i) / rate));
    return s;
}

// Seconds from the start to the first sample louder than -20 dBFS.
double onset(const std::vector<float>& s, int rate) {
    for (size_t i = 0; i < s.size(); ++i) {
        if (std::abs(s[i]) > 0.1f) return static_cast<double>(i) / rate;
    }
    return -1;
}

// Writes `samples` through libsndfile in `format` (into memory via a temporary file).
std::string sndfile_bytes(const std::vector<float>& samples, int rate, int format, int channels = 1) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/a.bin";
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = channels;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!f) return "";
    sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size() / static_cast<size_t>(channels)));
    sf_close(f);
    std::string out = read_all(path);
    fs::remove_all(dir);
    return out;
}

voice::Audio to_audio(const std::vector<float>& s, int rate) {
    voice::Audio a;
    a.sample_rate = rate;
    for (float v : s) a.samples.push_back(static_cast<int16_t>(std::lrint(v * 32767)));
    return a;
}

// WebM as MediaRecorder writes it: 20 ms Opus packets of 48 kHz mono `src` in clusters of unknown size.
std::string webm_bytes(const std::vector<float>& src) {
    int err = 0;
    OpusEncoder* enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    if (!enc) return "";
    std::vector<std::string> packets;
    for (size_t i = 0; i + 960 <= src.size(); i += 960) {
        unsigned char buf[4000];
        const int n = opus_encode_float(enc, src.data() + i, 960, buf, sizeof buf);
        if (n <= 0) {
            opus_encoder_destroy(enc);
            return "";
        }
        packets.emplace_back(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
    }
    opus_int32 lookahead = 0;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
    opus_encoder_destroy(enc);
    std::string head = "OpusHead";
    head += '\x01';
    head += '\x01';
    head += static_cast<char>(lookahead & 0xff);
    head += static_cast<char>(lookahead >> 8);
    head += std::string("\x80\xbb\x00\x00\x00\x00\x00", 7);  // 48000 Hz, gain 0, mapping 0.
    return mux_webm_opus(head, packets, 20);
}

TEST(AudioDecode, WavFlacOggAndWebmDecodeTo16kMonoWithTheSoundInThePlace) {
    const auto src = tone(1.0, 0.5, 48000);
    std::map<std::string, std::string> files;
    files["wav"] = voice::encode_wav(to_audio(src, 48000));
    files["flac"] = sndfile_bytes(src, 48000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    files["ogg"] = *voice::encode_ogg_opus(to_audio(src, 48000));
    files["webm"] = webm_bytes(src);
    ASSERT_FALSE(files["webm"].empty());

    for (const auto& [format, bytes] : files) {
        SCOPED_TRACE(format);
        ASSERT_FALSE(bytes.empty());
        EXPECT_EQ(sniff_recording(bytes), format);
        auto pcm = decode_audio(bytes, 60);
        ASSERT_TRUE(pcm) << pcm.error().message;
        EXPECT_EQ(pcm->format, format);
        EXPECT_NEAR(pcm->seconds(), 2.0, 0.05);
        EXPECT_NEAR(onset(pcm->samples, kSampleRate), 0.5, 0.03);
        // The tone's loudness survives decoding and resampling (RMS of a 0.5 sine: 0.354).
        double sum = 0;
        const size_t a = 8000 + 1600, b = 24000 - 1600;
        for (size_t i = a; i < b; ++i) sum += static_cast<double>(pcm->samples[i]) * pcm->samples[i];
        EXPECT_NEAR(std::sqrt(sum / static_cast<double>(b - a)), 0.354, 0.05);
    }
}

// A character's voice sample: any format people have, measured for the editor, and a normalized
// 24 kHz mono copy for the engines.
TEST(VoiceSample, EveryFormatIsMeasuredAndNormalizedTo24kMono) {
    auto quiet = [](int rate) {
        auto s = tone(4.0, 0.5, rate);
        for (auto& v : s) v *= 0.2f;  // Peak 0.1: -20 dBFS.
        return s;
    };
    std::map<std::string, std::pair<std::string, int>> files;  // format -> bytes, the file's rate
    std::vector<float> stereo;
    for (float v : quiet(44100)) {
        stereo.push_back(v);
        stereo.push_back(v);
    }
    files["wav"] = {sndfile_bytes(stereo, 44100, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2), 44100};
    files["mp3"] = {sndfile_bytes(quiet(48000), 48000, SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III), 48000};
    files["flac"] = {sndfile_bytes(quiet(48000), 48000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16), 48000};
    files["ogg"] = {*voice::encode_ogg_opus(to_audio(quiet(48000), 48000)), 48000};
    files["webm"] = {webm_bytes(quiet(48000)), 48000};
    for (const auto& [format, file] : files) {
        SCOPED_TRACE(format);
        ASSERT_FALSE(file.first.empty());
        auto sample = analyze_voice_sample(file.first);
        ASSERT_TRUE(sample) << sample.error().message;
        EXPECT_EQ(sample->ext, format);
        const Json& info = sample->info;
        EXPECT_EQ(info["format"], format);
        EXPECT_EQ(info["sample_rate"], file.second);
        EXPECT_NEAR(info["seconds"].get<double>(), 5.0, 0.1);
        EXPECT_NEAR(info["peak_db"].get<double>(), -20.0, 1.5);
        // RMS of a 0.1 sine over 4 of 5 seconds: 0.0632, -24 dBFS.
        EXPECT_NEAR(info["loudness_db"].get<double>(), -24.0, 1.5);
        ASSERT_EQ(info["waveform"].size(), 160u);
        EXPECT_LT(info["waveform"][2].get<double>(), 0.01);     // The lead's silence...
        EXPECT_NEAR(info["waveform"][80].get<double>(), 0.1, 0.02);  // ... then the tone.
        auto wav = voice::parse_wav(sample->wav);
        ASSERT_TRUE(wav);
        EXPECT_EQ(wav->sample_rate, 24000);
        EXPECT_NEAR(wav->seconds(), 5.0, 0.1);
        int peak = 0;
        for (int16_t v : wav->samples) peak = std::max(peak, std::abs(static_cast<int>(v)));
        EXPECT_NEAR(peak / 32767.0, 0.891, 0.04);  // Raised to -1 dBFS.
    }
}

TEST(VoiceSample, TooShortTooLongSilentDamagedOrNotAudioIsRefusedByName) {
    auto expect = [](Result<VoiceSample> r, ErrorCode code, const std::string& words) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, code) << r.error().message;
        EXPECT_EQ(r.error().field, "voice_sample");
        EXPECT_NE(r.error().message.find(words), std::string::npos) << r.error().message;
    };
    expect(analyze_voice_sample(voice::encode_wav(to_audio(tone(1.5, 0.25, 16000), 16000))), ErrorCode::InvalidInput,
           "2.0 s long; at least 3 s");
    expect(analyze_voice_sample(voice::encode_wav(to_audio(std::vector<float>(8000 * 605, 0.3f), 8000))), ErrorCode::TooLarge, "600 s");
    expect(analyze_voice_sample(voice::encode_wav(to_audio(std::vector<float>(16000 * 5, 0.0f), 16000))), ErrorCode::InvalidInput, "silent");
    expect(analyze_voice_sample(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(500, 'x')), ErrorCode::UnsupportedMedia, "WAV, MP3");
    // Text named .mp3 that starts like one, and a FLAC cut short.
    expect(analyze_voice_sample("ID3" + std::string(3000, 'z')), ErrorCode::InvalidInput, "mp3");
    const std::string flac = sndfile_bytes(tone(4.0, 0.5, 48000), 48000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    auto cut = analyze_voice_sample(flac.substr(0, 60));
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error().field, "voice_sample");
}

TEST(AudioDecode, BadBytesAreRefusedByName) {
    auto empty = decode_audio("", 60);
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code, ErrorCode::InvalidInput);
    EXPECT_NE(empty.error().message.find("empty"), std::string::npos);

    auto text = decode_audio("hello, this is no recording", 60);
    ASSERT_FALSE(text);
    EXPECT_EQ(text.error().code, ErrorCode::UnsupportedMedia);

    auto png = decode_audio(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, 'x'), 60);
    ASSERT_FALSE(png);
    EXPECT_EQ(png.error().code, ErrorCode::UnsupportedMedia);

    auto flac = decode_audio("fLaC" + std::string(200, '\x07'), 60);
    ASSERT_FALSE(flac);
    EXPECT_EQ(flac.error().code, ErrorCode::InvalidInput);
    EXPECT_NE(flac.error().message.find("flac"), std::string::npos) << flac.error().message;

    auto webm = decode_audio(std::string("\x1a\x45\xdf\xa3\x88", 5) + std::string(50, '\xff'), 60);
    ASSERT_FALSE(webm);
    EXPECT_EQ(webm.error().code, ErrorCode::InvalidInput);
    EXPECT_NE(webm.error().message.find("WebM"), std::string::npos) << webm.error().message;

    // Too long: refused before recognition (413 at the API).
    const auto ten_s = tone(9.0, 0.5, 16000);
    auto longer = decode_audio(voice::encode_wav(to_audio(ten_s, 16000)), 5);
    ASSERT_FALSE(longer);
    EXPECT_EQ(longer.error().code, ErrorCode::TooLarge);
    auto longer_flac = decode_audio(sndfile_bytes(ten_s, 16000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16), 5);
    ASSERT_FALSE(longer_flac);
    EXPECT_EQ(longer_flac.error().code, ErrorCode::TooLarge);
    // Two hours of (silent, 20 ms) Opus in WebM: 6 MB, refused from the packet headers.
    const std::string head = std::string("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00", 19);
    const std::vector<std::string> two_hours(360000, std::string("\xf8\xff\xfe", 3));
    const auto t0 = std::chrono::steady_clock::now();
    auto hours = decode_audio(mux_webm_opus(head, two_hours, 20), 1800);
    ASSERT_FALSE(hours);
    EXPECT_EQ(hours.error().code, ErrorCode::TooLarge);
    EXPECT_NE(hours.error().message.find("7200 s"), std::string::npos) << hours.error().message;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

class WhisperModels : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir = temp_dir();
        ASSERT_TRUE(write_whisper_test_model({dir + "/multi.bin", true, 64, 2, 1, 42}));
        ASSERT_TRUE(write_whisper_test_model({dir + "/en.bin", false, 64, 2, 1, 42}));
        ASSERT_TRUE(write_vad_test_model(dir + "/vad.bin"));
    }
    static void TearDownTestSuite() { fs::remove_all(dir); }
    static inline std::string dir;
};

TEST_F(WhisperModels, TestModelsPassTheChecksAndDamagedOrForeignFilesAreNamed) {
    auto multi = inspect_whisper_model(dir + "/multi.bin");
    ASSERT_TRUE(multi) << multi.error().message;
    EXPECT_TRUE(multi->multilingual);
    EXPECT_EQ(multi->n_vocab, 51865);
    EXPECT_EQ(multi->tensors, 11 + 15 + 24);
    auto en = inspect_whisper_model(dir + "/en.bin");
    ASSERT_TRUE(en);
    EXPECT_FALSE(en->multilingual);
    EXPECT_TRUE(inspect_vad_model(dir + "/vad.bin"));

    auto missing = inspect_whisper_model(dir + "/nope.bin");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::NotFound);

    std::ofstream(dir + "/model.gguf", std::ios::binary) << "GGUF" << std::string(100, '\0');
    auto gguf = inspect_whisper_model(dir + "/model.gguf");
    ASSERT_FALSE(gguf);
    EXPECT_NE(gguf.error().message.find("GGUF"), std::string::npos) << gguf.error().message;

    const std::string bytes = read_all(dir + "/multi.bin");
    std::ofstream(dir + "/cut.bin", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    auto cut = inspect_whisper_model(dir + "/cut.bin");
    ASSERT_FALSE(cut);
    EXPECT_NE(cut.error().message.find("cut short"), std::string::npos) << cut.error().message;

    std::string garbled = bytes;
    for (size_t i = 8; i < 40; ++i) garbled[i] = '\x7f';  // The hyperparameters.
    std::ofstream(dir + "/garbled.bin", std::ios::binary) << garbled;
    EXPECT_FALSE(inspect_whisper_model(dir + "/garbled.bin"));

    auto vad_as_whisper = inspect_whisper_model(dir + "/vad.bin");
    ASSERT_FALSE(vad_as_whisper);
    EXPECT_NE(vad_as_whisper.error().message.find("VAD"), std::string::npos) << vad_as_whisper.error().message;
    EXPECT_FALSE(inspect_vad_model(dir + "/multi.bin"));
}

std::vector<float> decoded(const std::string& wav) {
    auto pcm = decode_audio(wav, 600);
    return pcm ? pcm->samples : std::vector<float>();
}

TEST_F(WhisperModels, VadKeepsOnlyTheSpeechAndWhisperDecodesIt) {
    const auto clip = test::spoken_clip("Hallo Mia, wie geht es dir heute?", "de", 2.0, 3.0);
    ASSERT_FALSE(clip.wav.empty()) << "espeak-ng is needed";
    WhisperStt stt({dir + "/multi.bin", dir + "/vad.bin", 2, 0.5f, 30});
    SttRequest req;
    req.samples = decoded(clip.wav);
    req.language = "de";
    auto t = stt.transcribe(req);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_NEAR(t->duration, clip.seconds, 0.01);
    ASSERT_FALSE(t->segments.empty()) << "the random model wrote nothing";
    // The detector skips the leading and trailing silence (within its 32 ms windows and 30 ms pads).
    EXPECT_NEAR(t->segments.front().start, clip.speech_start, 0.15);
    EXPECT_NEAR(t->segments.back().end, clip.speech_end, 0.25);
    EXPECT_LT(t->speech_seconds, clip.speech_end - clip.speech_start + 0.4);
    EXPECT_GT(t->speech_seconds, (clip.speech_end - clip.speech_start) * 0.6);
    EXPECT_EQ(t->language, "de");
    EXPECT_FALSE(t->text.empty());
    for (const auto& s : t->segments) {
        EXPECT_LE(s.start, s.end);
        EXPECT_FALSE(s.text.empty());
    }

    // Silence only: nothing recognized, not an error.
    SttRequest quiet;
    quiet.samples = std::vector<float>(16000 * 4, 0.0f);
    auto q = stt.transcribe(quiet);
    ASSERT_TRUE(q) << q.error().message;
    EXPECT_EQ(q->text, "");
    EXPECT_TRUE(q->segments.empty());
    EXPECT_EQ(q->speech_seconds, 0.0);
}

TEST_F(WhisperModels, WithoutAVadModelLoudnessDecidesAndSilenceStaysEmpty) {
    const auto clip = test::spoken_clip("Good morning", "en", 1.0, 1.0);
    ASSERT_FALSE(clip.wav.empty());
    WhisperStt stt({dir + "/multi.bin", "", 2, 0.5f, 30});
    SttRequest req;
    req.samples = decoded(clip.wav);
    req.language = "en";
    auto t = stt.transcribe(req);
    ASSERT_TRUE(t) << t.error().message;
    ASSERT_EQ(t->segments.size(), 1u);
    EXPECT_NEAR(t->segments[0].start, clip.speech_start, 0.05);
    SttRequest quiet;
    quiet.samples = std::vector<float>(16000 * 2, 0.0f);
    auto q = stt.transcribe(quiet);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->text, "");
}

TEST_F(WhisperModels, EnglishOnlyModelRefusesGermanByNameAndAnswersAutoInEnglish) {
    WhisperStt stt({dir + "/en.bin", dir + "/vad.bin", 2, 0.5f, 30});
    const auto clip = test::spoken_clip("Hello there", "en", 0.5, 0.5);
    SttRequest req;
    req.samples = decoded(clip.wav);
    req.language = "de";
    auto de = stt.transcribe(req);
    ASSERT_FALSE(de);
    EXPECT_EQ(de.error().code, ErrorCode::InvalidInput);
    EXPECT_EQ(de.error().field, "language");
    EXPECT_NE(de.error().message.find("English-only"), std::string::npos) << de.error().message;
    req.language = "auto";
    auto en = stt.transcribe(req);
    ASSERT_TRUE(en) << en.error().message;
    EXPECT_EQ(en->language, "en");
}

TEST_F(WhisperModels, GgufAndDamagedModelsAreUnavailableWithTheReasonNotACrash) {
    std::ofstream(dir + "/llm.gguf", std::ios::binary) << "GGUF" << std::string(4000, '\x01');
    const auto clip = test::spoken_clip("Hallo", "de", 0.5, 0.5);
    SttRequest req;
    req.samples = decoded(clip.wav);
    for (const char* name : {"llm.gguf", "cut.bin", "garbled.bin", "nope.bin"}) {
        SCOPED_TRACE(name);
        if (std::string(name) != "llm.gguf" && std::string(name) != "nope.bin" && !fs::exists(dir + "/" + name)) {
            const std::string bytes = read_all(dir + "/multi.bin");
            std::string b = std::string(name) == "cut.bin" ? bytes.substr(0, bytes.size() - 1000) : bytes;
            if (std::string(name) == "garbled.bin") {
                for (size_t i = 8; i < 40; ++i) b[i] = '\x7f';
            }
            std::ofstream(dir + "/" + name, std::ios::binary) << b;
        }
        WhisperStt stt({dir + "/" + name, "", 1, 0.5f, 30});
        auto t = stt.transcribe(req);
        ASSERT_FALSE(t);
        EXPECT_EQ(t.error().code, ErrorCode::Unavailable);
        EXPECT_NE(t.error().message.find(name), std::string::npos) << t.error().message;
        const SttHealth h = stt.health();
        EXPECT_NE(h.state, "ready") << h.detail;
    }
    WhisperStt good({dir + "/multi.bin", dir + "/vad.bin", 1, 0.5f, 30});
    EXPECT_EQ(good.health().state, "ready") << good.health().detail;
}

}  // namespace
}  // namespace mc::stt
