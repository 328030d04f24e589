#include "stt/audio_decode.hpp"

#include <opus/opus.h>
#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "voice/wav.hpp"

namespace mc::stt {
namespace {

bool starts(std::string_view b, std::string_view magic, size_t at = 0) {
    return b.size() >= at + magic.size() && b.substr(at, magic.size()) == magic;
}

// ---- libsndfile over a memory buffer ----

struct MemFile {
    std::string_view data;
    sf_count_t pos = 0;
};

sf_count_t mem_len(void* u) { return static_cast<sf_count_t>(static_cast<MemFile*>(u)->data.size()); }
sf_count_t mem_seek(sf_count_t offset, int whence, void* u) {
    auto* m = static_cast<MemFile*>(u);
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : static_cast<sf_count_t>(m->data.size());
    const sf_count_t to = base + offset;
    if (to < 0 || to > static_cast<sf_count_t>(m->data.size())) return -1;
    m->pos = to;
    return m->pos;
}
sf_count_t mem_read(void* ptr, sf_count_t count, void* u) {
    auto* m = static_cast<MemFile*>(u);
    const sf_count_t left = static_cast<sf_count_t>(m->data.size()) - m->pos;
    const sf_count_t n = std::clamp<sf_count_t>(count, 0, std::max<sf_count_t>(left, 0));
    if (n > 0) std::memcpy(ptr, m->data.data() + m->pos, static_cast<size_t>(n));
    m->pos += n;
    return n;
}
sf_count_t mem_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t mem_tell(void* u) { return static_cast<MemFile*>(u)->pos; }

Result<Pcm> decode_sndfile(std::string_view bytes, const std::string& format, double max_seconds, int rate) {
    MemFile mem{bytes, 0};
    SF_VIRTUAL_IO io{mem_len, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info{};
    SNDFILE* f = sf_open_virtual(&io, SFM_READ, &info, &mem);
    if (!f) return fail(ErrorCode::InvalidInput, "the " + format + " audio cannot be read: " + sf_strerror(nullptr), "file");
    struct Closer {
        SNDFILE* f;
        ~Closer() { sf_close(f); }
    } closer{f};
    if (info.channels < 1 || info.channels > 64 || info.samplerate < 1000 || info.samplerate > 384000) {
        return fail(ErrorCode::InvalidInput, "the " + format + " audio has an impossible layout (" + std::to_string(info.channels) +
                                                 " channels at " + std::to_string(info.samplerate) + " Hz)", "file");
    }
    const double max_frames = max_seconds * info.samplerate;
    if (info.frames > 0 && static_cast<double>(info.frames) > max_frames + info.samplerate) {
        return fail(ErrorCode::TooLarge, "the recording is " + std::to_string(static_cast<long long>(info.frames / info.samplerate)) +
                                             " s long; at most " + std::to_string(static_cast<long long>(max_seconds)) + " s are accepted", "file");
    }
    std::vector<float> mono;
    std::vector<float> buf(4096 * static_cast<size_t>(info.channels));
    while (true) {
        const sf_count_t got = sf_readf_float(f, buf.data(), 4096);
        if (got <= 0) break;
        for (sf_count_t i = 0; i < got; ++i) {
            float sum = 0;
            for (int c = 0; c < info.channels; ++c) sum += buf[static_cast<size_t>(i * info.channels + c)];
            const float v = sum / static_cast<float>(info.channels);
            mono.push_back(std::isfinite(v) ? std::clamp(v, -1.0f, 1.0f) : 0.0f);
        }
        if (static_cast<double>(mono.size()) > max_frames + info.samplerate) {
            return fail(ErrorCode::TooLarge, "the recording is longer than " + std::to_string(static_cast<long long>(max_seconds)) +
                                                 " s, the most that is accepted", "file");
        }
    }
    if (mono.empty()) return fail(ErrorCode::InvalidInput, "the " + format + " file holds no audio", "file");
    auto out = resample(mono, info.samplerate, rate);
    if (!out) return std::unexpected(out.error());
    return Pcm{std::move(*out), format, info.samplerate, rate};
}

// ---- WebM / Matroska (EBML) ----

// Element ids (with their length marker bits, as Matroska writes them).
constexpr uint32_t kEbml = 0x1A45DFA3, kSegment = 0x18538067, kCluster = 0x1F43B675, kTracks = 0x1654AE6B,
                   kTrackEntry = 0xAE, kTrackNumber = 0xD7, kCodecId = 0x86, kCodecPrivate = 0x63A2, kAudio = 0xE1,
                   kChannels = 0x9F, kSimpleBlock = 0xA3, kBlockGroup = 0xA0, kBlock = 0xA1, kTimecode = 0xE7;

struct Reader {
    std::string_view b;
    size_t pos = 0;
    bool at_end() const { return pos >= b.size(); }
};

// An EBML variable-size integer. `keep_marker`: ids keep their length bits. Unknown sizes (all
// value bits set) come back as UINT64_MAX.
bool read_vint(Reader& r, uint64_t& out, bool keep_marker) {
    if (r.at_end()) return false;
    const auto first = static_cast<uint8_t>(r.b[r.pos]);
    int len = 1;
    while (len <= 8 && !(first & (0x80 >> (len - 1)))) ++len;
    if (len > 8 || r.pos + static_cast<size_t>(len) > r.b.size()) return false;
    uint64_t v = keep_marker ? first : (first & (0xFF >> len));
    bool all_ones = (first & (0xFF >> len)) == (0xFF >> len);
    for (int i = 1; i < len; ++i) {
        const auto c = static_cast<uint8_t>(r.b[r.pos + static_cast<size_t>(i)]);
        v = (v << 8) | c;
        all_ones = all_ones && c == 0xFF;
    }
    r.pos += static_cast<size_t>(len);
    out = (!keep_marker && all_ones) ? UINT64_MAX : v;
    return true;
}

uint64_t read_uint(std::string_view d) {
    uint64_t v = 0;
    for (size_t i = 0; i < d.size() && i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(d[i]);
    return v;
}

void put_id(std::string& s, uint32_t id) {
    int n = id > 0xFFFFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1;
    for (int i = n - 1; i >= 0; --i) s.push_back(static_cast<char>((id >> (8 * i)) & 0xFF));
}
void put_size(std::string& s, uint64_t size) {  // Always 8 bytes: simple and valid.
    s.push_back(static_cast<char>(0x01));
    for (int i = 6; i >= 0; --i) s.push_back(static_cast<char>((size >> (8 * i)) & 0xFF));
}
void put_element(std::string& s, uint32_t id, std::string_view payload) {
    put_id(s, id);
    put_size(s, payload.size());
    s.append(payload);
}
std::string uint_bytes(uint64_t v, int n) {
    std::string s;
    for (int i = n - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return s;
}

// Splits a (Simple)Block's payload into its frames (no lacing, Xiph, fixed-size or EBML lacing).
bool block_frames(std::string_view d, uint64_t want_track, std::vector<std::string>& out) {
    Reader r{d};
    uint64_t track = 0;
    if (!read_vint(r, track, false)) return false;
    if (r.pos + 3 > d.size()) return false;
    const auto flags = static_cast<uint8_t>(d[r.pos + 2]);
    r.pos += 3;
    if (track != want_track) return true;
    const int lacing = (flags >> 1) & 3;
    if (lacing == 0) {
        out.emplace_back(d.substr(r.pos));
        return true;
    }
    if (r.at_end()) return false;
    const size_t count = static_cast<uint8_t>(d[r.pos++]) + 1u;
    std::vector<uint64_t> sizes;
    if (lacing == 1) {  // Xiph: each size as a run of 255s plus the rest.
        for (size_t i = 0; i + 1 < count; ++i) {
            uint64_t s = 0;
            while (true) {
                if (r.at_end()) return false;
                const auto c = static_cast<uint8_t>(d[r.pos++]);
                s += c;
                if (c != 255) break;
            }
            sizes.push_back(s);
        }
    } else if (lacing == 3) {  // EBML: first size, then signed differences.
        uint64_t first = 0;
        if (!read_vint(r, first, false) || first == UINT64_MAX) return false;
        sizes.push_back(first);
        int64_t prev = static_cast<int64_t>(first);
        for (size_t i = 1; i + 1 < count; ++i) {
            const size_t start = r.pos;
            uint64_t raw = 0;
            if (!read_vint(r, raw, false) || raw == UINT64_MAX) return false;
            const int len = static_cast<int>(r.pos - start);
            const int64_t bias = (int64_t{1} << (7 * len - 1)) - 1;
            prev += static_cast<int64_t>(raw) - bias;
            if (prev < 0) return false;
            sizes.push_back(static_cast<uint64_t>(prev));
        }
    }
    uint64_t used = 0;
    for (auto s : sizes) used += s;
    const uint64_t left = d.size() - r.pos;
    if (lacing == 2) {
        if (left % count) return false;
        sizes.assign(count, left / count);
    } else {
        if (used > left) return false;
        sizes.push_back(left - used);
    }
    for (auto s : sizes) {
        out.emplace_back(d.substr(r.pos, static_cast<size_t>(s)));
        r.pos += static_cast<size_t>(s);
    }
    return true;
}

Result<Pcm> decode_webm(std::string_view bytes, double max_seconds, int rate) {
    // Opus packets are at most 120 ms, at least 2.5 ms; MediaRecorder writes 20 ms ones.
    const auto max_packets = static_cast<size_t>(max_seconds / 0.0025) + 1000;
    auto webm = demux_webm_opus(bytes, max_packets);
    if (!webm) return std::unexpected(webm.error());
    if (webm->channels < 1 || webm->channels > 2) {
        return fail(ErrorCode::InvalidInput, "the WebM Opus track has " + std::to_string(webm->channels) + " channels (1 or 2 are read)", "file");
    }
    // The length from the packets' own headers first: two hours of Opus are refused before decoding.
    int64_t total = 0;
    for (const auto& p : webm->packets) {
        const int n = opus_packet_get_nb_samples(reinterpret_cast<const unsigned char*>(p.data()), static_cast<opus_int32>(p.size()), 48000);
        if (n > 0) total += n;
    }
    if (static_cast<double>(total) > (max_seconds + 1) * 48000) {
        return fail(ErrorCode::TooLarge, "the recording is " + std::to_string(total / 48000) + " s long; at most " +
                                             std::to_string(static_cast<long long>(max_seconds)) + " s are accepted", "file");
    }
    int pre_skip = 0;
    if (webm->codec_private.size() >= 12 && webm->codec_private.starts_with("OpusHead")) {
        pre_skip = static_cast<uint8_t>(webm->codec_private[10]) | static_cast<uint8_t>(webm->codec_private[11]) << 8;
    }
    int err = 0;
    OpusDecoder* dec = opus_decoder_create(48000, webm->channels, &err);
    if (!dec) return fail(ErrorCode::Internal, "the Opus decoder could not start");
    struct Free {
        OpusDecoder* d;
        ~Free() { opus_decoder_destroy(d); }
    } free_dec{dec};
    std::vector<float> mono;
    std::vector<float> frame(5760 * 2);
    size_t bad = 0;
    for (const auto& p : webm->packets) {
        const int n = opus_decode_float(dec, reinterpret_cast<const unsigned char*>(p.data()), static_cast<opus_int32>(p.size()),
                                        frame.data(), 5760, 0);
        if (n < 0) {
            ++bad;
            continue;
        }
        for (int i = 0; i < n; ++i) {
            float v = frame[static_cast<size_t>(i * webm->channels)];
            if (webm->channels == 2) v = 0.5f * (v + frame[static_cast<size_t>(i * 2 + 1)]);
            mono.push_back(std::clamp(v, -1.0f, 1.0f));
        }
        if (static_cast<double>(mono.size()) > (max_seconds + 1) * 48000) {
            return fail(ErrorCode::TooLarge, "the recording is longer than " + std::to_string(static_cast<long long>(max_seconds)) +
                                                 " s, the most that is accepted", "file");
        }
    }
    if (bad * 2 > webm->packets.size()) {
        return fail(ErrorCode::InvalidInput, "the WebM file's Opus packets are damaged (" + std::to_string(bad) + " of " +
                                                 std::to_string(webm->packets.size()) + " could not be decoded)", "file");
    }
    mono.erase(mono.begin(), mono.begin() + std::min(mono.size(), static_cast<size_t>(pre_skip)));
    if (mono.empty()) return fail(ErrorCode::InvalidInput, "the WebM file holds no audio", "file");
    auto out = resample(mono, 48000, rate);
    if (!out) return std::unexpected(out.error());
    return Pcm{std::move(*out), "webm", 48000, rate};
}

}  // namespace

std::string sniff_recording(std::string_view b) {
    if (starts(b, "RIFF") && starts(b, "WAVE", 8)) return "wav";
    if (starts(b, "fLaC")) return "flac";
    if (starts(b, "OggS")) return "ogg";
    if (starts(b, "\x1A\x45\xDF\xA3")) return "webm";
    if (starts(b, "ID3")) return "mp3";
    if (b.size() >= 4) {
        const auto c0 = static_cast<unsigned char>(b[0]);
        const auto c1 = static_cast<unsigned char>(b[1]);
        if (c0 == 0xFF && (c1 & 0xE0) == 0xE0 && (c1 & 0x18) != 0x08 && (c1 & 0x06) != 0) return "mp3";
    }
    return "";
}

Result<std::vector<float>> resample(const std::vector<float>& in, int rate_in, int rate_out) {
    if (rate_in == rate_out || in.empty()) return in;
    const double ratio = static_cast<double>(rate_out) / rate_in;
    std::vector<float> out(static_cast<size_t>(std::ceil(static_cast<double>(in.size()) * ratio)) + 16);
    SRC_DATA d{};
    d.data_in = in.data();
    d.input_frames = static_cast<long>(in.size());
    d.data_out = out.data();
    d.output_frames = static_cast<long>(out.size());
    d.src_ratio = ratio;
    const int rc = src_simple(&d, SRC_SINC_FASTEST, 1);
    if (rc != 0) return fail(ErrorCode::Internal, std::string("resampling failed: ") + src_strerror(rc));
    out.resize(static_cast<size_t>(d.output_frames_gen));
    for (auto& v : out) v = std::clamp(v, -1.0f, 1.0f);
    return out;
}

namespace {
Result<Pcm> decode_any(std::string_view bytes, double max_seconds, int rate);
}

Result<Pcm> decode_audio(std::string_view bytes, double max_seconds, int rate, const std::string& field) {
    if (rate < 8000 || rate > 48000) return fail(ErrorCode::Internal, "decode_audio: unsupported rate " + std::to_string(rate));
    auto r = decode_any(bytes, max_seconds, rate);
    if (!r && field != "file") {
        Error e = r.error();
        if (e.field == "file") e.field = field;
        return std::unexpected(e);
    }
    return r;
}

namespace {
Result<Pcm> decode_any(std::string_view bytes, double max_seconds, int rate) {
    if (bytes.empty()) return fail(ErrorCode::InvalidInput, "the recording is empty", "file");
    const std::string format = sniff_recording(bytes);
    if (format.empty()) {
        return fail(ErrorCode::UnsupportedMedia, "not a recording this server reads: send WAV, MP3, FLAC, Ogg (Opus/Vorbis) or WebM (Opus)", "file");
    }
    if (format == "webm") return decode_webm(bytes, max_seconds, rate);
    if (format == "wav") {
        // Our reader first: it also takes the "unknown length" headers streaming writers produce.
        if (auto wav = voice::parse_wav(bytes)) {
            if (wav->samples.empty()) return fail(ErrorCode::InvalidInput, "the WAV file holds no audio", "file");
            if (wav->seconds() > max_seconds + 1) {
                return fail(ErrorCode::TooLarge, "the recording is " + std::to_string(static_cast<long long>(wav->seconds())) +
                                                     " s long; at most " + std::to_string(static_cast<long long>(max_seconds)) + " s are accepted", "file");
            }
            std::vector<float> f(wav->samples.size());
            for (size_t i = 0; i < f.size(); ++i) f[i] = wav->samples[i] / 32768.0f;
            auto out = resample(f, wav->sample_rate, rate);
            if (!out) return std::unexpected(out.error());
            return Pcm{std::move(*out), "wav", wav->sample_rate, rate};
        }
    }
    return decode_sndfile(bytes, format, max_seconds, rate);
}
}  // namespace

Result<WebmOpus> demux_webm_opus(std::string_view bytes, size_t max_packets) {
    Reader r{bytes};
    WebmOpus out;
    struct Track {
        uint64_t number = 0;
        std::string codec;
        std::string priv;
        int channels = 1;
    };
    std::vector<Track> tracks;
    uint64_t opus_track = 0;
    bool saw_header = false;
    auto pick_track = [&]() {
        if (opus_track) return;
        for (const auto& t : tracks) {
            if (t.codec == "A_OPUS") {
                opus_track = t.number;
                out.codec_private = t.priv;
                out.channels = t.channels;
                return;
            }
        }
    };
    while (!r.at_end()) {
        uint64_t id = 0, size = 0;
        if (!read_vint(r, id, true) || !read_vint(r, size, false)) {
            if (!out.packets.empty()) break;  // A recording cut short: keep what arrived.
            return fail(ErrorCode::InvalidInput, "the WebM file is damaged (bad element header at byte " + std::to_string(r.pos) + ")", "file");
        }
        if (id == kEbml) {
            saw_header = true;
        } else if (!saw_header) {
            return fail(ErrorCode::InvalidInput, "not a WebM file (no EBML header)", "file");
        }
        // Masters we read inside: their children follow (also when the size is unknown, as in a
        // live recording).
        if (id == kSegment || id == kCluster || id == kTracks || id == kBlockGroup || id == kAudio) {
            if (id == kCluster) pick_track();
            continue;
        }
        if (id == kTrackEntry) {
            tracks.emplace_back();
            continue;
        }
        if (size == UINT64_MAX || size > bytes.size() - r.pos) {
            if (!out.packets.empty() && (id == kSimpleBlock || id == kBlock)) break;  // Cut short: keep what arrived.
            return fail(ErrorCode::InvalidInput, "the WebM file is damaged (an element runs past the end)", "file");
        }
        const std::string_view d = bytes.substr(r.pos, static_cast<size_t>(size));
        r.pos += static_cast<size_t>(size);
        if (id == kEbml) continue;
        if (!tracks.empty()) {
            if (id == kTrackNumber) tracks.back().number = read_uint(d);
            if (id == kCodecId) tracks.back().codec = std::string(d.substr(0, d.find('\0')));
            if (id == kCodecPrivate) tracks.back().priv = std::string(d);
            if (id == kChannels) tracks.back().channels = static_cast<int>(std::min<uint64_t>(read_uint(d), 255));
        }
        if (id == kSimpleBlock || id == kBlock) {
            pick_track();
            if (!opus_track) {
                return fail(ErrorCode::UnsupportedMedia, "the WebM file has no Opus audio track (only Opus is read)", "file");
            }
            if (!block_frames(d, opus_track, out.packets)) {
                return fail(ErrorCode::InvalidInput, "the WebM file is damaged (a block's frames do not fit)", "file");
            }
            if (out.packets.size() > max_packets) return fail(ErrorCode::TooLarge, "the recording is too long to transcribe", "file");
        }
        (void)kTimecode;
    }
    if (!saw_header) return fail(ErrorCode::InvalidInput, "not a WebM file (no EBML header)", "file");
    pick_track();
    if (!opus_track) return fail(ErrorCode::UnsupportedMedia, "the WebM file has no Opus audio track (only Opus is read)", "file");
    if (out.packets.empty()) return fail(ErrorCode::InvalidInput, "the WebM file holds no audio", "file");
    return out;
}

std::string mux_webm_opus(const std::string& head, const std::vector<std::string>& packets, int packet_ms) {
    std::string s;
    std::string ebml;
    put_element(ebml, 0x4286, uint_bytes(1, 1));  // EBMLVersion
    put_element(ebml, 0x42F7, uint_bytes(1, 1));  // EBMLReadVersion
    put_element(ebml, 0x42F2, uint_bytes(4, 1));  // EBMLMaxIDLength
    put_element(ebml, 0x42F3, uint_bytes(8, 1));  // EBMLMaxSizeLength
    put_element(ebml, 0x4282, "webm");            // DocType
    put_element(ebml, 0x4287, uint_bytes(4, 1));  // DocTypeVersion
    put_element(ebml, 0x4285, uint_bytes(2, 1));  // DocTypeReadVersion
    put_element(s, kEbml, ebml);
    // Segment of unknown size, as a live recorder writes it.
    put_id(s, kSegment);
    s.append("\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8);
    std::string info;
    put_element(info, 0x2AD7B1, uint_bytes(1000000, 3));  // TimecodeScale: 1 ms
    put_element(s, 0x1549A966, info);                    // Info
    std::string audio;
    put_element(audio, 0xB5, std::string("\x40\xE7\x70\x00\x00\x00\x00\x00", 8));  // SamplingFrequency 48000.0 (double)
    put_element(audio, kChannels, uint_bytes(1, 1));
    std::string entry;
    put_element(entry, kTrackNumber, uint_bytes(1, 1));
    put_element(entry, 0x73C5, uint_bytes(1, 1));  // TrackUID
    put_element(entry, 0x83, uint_bytes(2, 1));    // TrackType: audio
    put_element(entry, kCodecId, "A_OPUS");
    put_element(entry, kCodecPrivate, head);
    put_element(entry, kAudio, audio);
    std::string tracks;
    put_element(tracks, kTrackEntry, entry);
    put_element(s, kTracks, tracks);
    for (size_t c = 0; c < packets.size(); c += 50) {
        std::string cluster;
        put_element(cluster, kTimecode, uint_bytes(static_cast<uint64_t>(c) * static_cast<uint64_t>(packet_ms), 4));
        for (size_t i = c; i < std::min(packets.size(), c + 50); ++i) {
            std::string block = "\x81";  // Track 1.
            block += uint_bytes(static_cast<uint64_t>((i - c) * static_cast<size_t>(packet_ms)), 2);
            block.push_back(static_cast<char>(0x80));  // Keyframe, no lacing.
            block += packets[i];
            put_element(cluster, kSimpleBlock, block);
        }
        // Clusters of unknown size, as MediaRecorder writes them.
        put_id(s, kCluster);
        s.append("\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8);
        s += cluster;
    }
    return s;
}

namespace {

constexpr double kMinSampleSeconds = 3.0;
constexpr double kMaxSampleSeconds = 600.0;
constexpr int kSampleWavRate = 24000;
constexpr size_t kWaveformPoints = 160;

std::string decimal1(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

}  // namespace

Result<VoiceSample> analyze_voice_sample(std::string_view bytes) {
    auto pcm = decode_audio(bytes, kMaxSampleSeconds, kSampleWavRate, "voice_sample");
    if (!pcm) return std::unexpected(pcm.error());
    const double seconds = pcm->seconds();
    auto one_decimal = [](double v) { return std::round(v * 10) / 10; };
    if (seconds < kMinSampleSeconds) {
        return fail(ErrorCode::InvalidInput, "voice_sample is " + decimal1(seconds) + " s long; at least 3 s are needed (10–30 s of clear speech clone best)",
                    "voice_sample");
    }
    double peak = 0, sum = 0;
    for (float v : pcm->samples) {
        peak = std::max(peak, static_cast<double>(std::abs(v)));
        sum += static_cast<double>(v) * v;
    }
    if (peak < 1e-4) return fail(ErrorCode::InvalidInput, "voice_sample is silent", "voice_sample");
    const double rms = std::sqrt(sum / static_cast<double>(pcm->samples.size()));
    auto db = [&](double v) { return one_decimal(20 * std::log10(std::max(v, 1e-9))); };
    // The waveform the editor draws: the loudest point of each slice, as sent.
    Json waveform = Json::array();
    const size_t n = pcm->samples.size();
    for (size_t i = 0; i < kWaveformPoints; ++i) {
        const size_t a = i * n / kWaveformPoints, b = std::max(a + 1, (i + 1) * n / kWaveformPoints);
        float m = 0;
        for (size_t k = a; k < b && k < n; ++k) m = std::max(m, std::abs(pcm->samples[k]));
        waveform.push_back(std::round(m * 1000) / 1000);
    }
    // Peak-normalized to -1 dBFS (at most +20 dB), so quiet recordings clone as well as loud ones.
    const double gain = std::min(0.891 / peak, 10.0);
    voice::Audio audio;
    audio.sample_rate = kSampleWavRate;
    audio.samples.reserve(n);
    for (float v : pcm->samples) {
        audio.samples.push_back(static_cast<int16_t>(std::lround(std::clamp(v * gain, -1.0, 1.0) * 32767)));
    }
    VoiceSample out;
    out.ext = pcm->format;
    out.wav = voice::encode_wav(audio);
    out.info = {{"seconds", std::round(seconds * 100) / 100}, {"sample_rate", pcm->source_rate}, {"format", pcm->format},
                {"loudness_db", db(rms)}, {"peak_db", db(peak)}, {"waveform", std::move(waveform)}};
    return out;
}

}  // namespace mc::stt
