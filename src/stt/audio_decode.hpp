// stt/audio_decode: turns the bytes of a recording into what speech recognition reads — 16 kHz mono
// float samples. Formats are decided by content, never by a name or a Content-Type: WAV (our own
// reader, voice/wav), MP3, FLAC and Ogg (Vorbis or Opus) through libsndfile (LGPL, linked
// dynamically), and the WebM/Matroska Opus that browsers' MediaRecorder produces through our own
// demuxer and libopus. Resampling: libsamplerate.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.hpp"
#include "core/result.hpp"

namespace mc::stt {

inline constexpr int kSampleRate = 16000;

struct Pcm {
    std::vector<float> samples;  // Mono, [-1, 1], at `rate` (16 kHz unless asked otherwise).
    std::string format;          // "wav" | "mp3" | "flac" | "ogg" | "webm"
    int source_rate = 0;         // The recording's own sample rate.
    int rate = kSampleRate;
    double seconds() const { return static_cast<double>(samples.size()) / rate; }
};

// The container a recording's first bytes announce ("wav", "mp3", "flac", "ogg", "webm"), or "".
std::string sniff_recording(std::string_view bytes);

// Decodes and resamples to `rate` (16 kHz for recognition; 24 kHz for voice samples). Errors:
// InvalidInput (empty, no audio in it, damaged: says which format and what), UnsupportedMedia (not
// one of the formats above), TooLarge (longer than max_seconds; found before decoding where the
// container says its length). Messages name the field `field`.
Result<Pcm> decode_audio(std::string_view bytes, double max_seconds, int rate = kSampleRate, const std::string& field = "file");

// A character's voice sample, checked and measured: 3 s to 10 min of sound in any format above.
struct VoiceSample {
    std::string ext;  // The container of the file as sent ("wav", "mp3", "flac", "ogg", "webm").
    std::string wav;  // Its normalized copy: 24 kHz mono 16-bit WAV, peak at -1 dBFS (at most +20 dB).
    Json info;        // {"seconds","sample_rate" (the file's own),"format","loudness_db" (RMS dBFS),
                      //  "peak_db","waveform": [160 peaks 0..1]}
};
// Errors (field "voice_sample"): UnsupportedMedia (not audio), InvalidInput (damaged; shorter than
// 3 s; silent), TooLarge (longer than 10 min).
Result<VoiceSample> analyze_voice_sample(std::string_view bytes);

// Resamples mono float audio (libsamplerate). rate_in == rate_out returns the input.
Result<std::vector<float>> resample(const std::vector<float>& in, int rate_in, int rate_out);

// A WebM/Matroska file's Opus track: the codec header and the packets in order.
struct WebmOpus {
    std::string codec_private;  // OpusHead.
    int channels = 0;
    std::vector<std::string> packets;
};
// Demuxes the first Opus audio track. Errors: InvalidInput naming what is missing or damaged.
// Stops (TooLarge) once more than `max_packets` packets were found.
Result<WebmOpus> demux_webm_opus(std::string_view bytes, size_t max_packets);

// Writes a WebM file holding `packets` of Opus (tests, and the format the UI records). `head` is
// the OpusHead; one cluster per 50 packets; no lacing, like MediaRecorder.
std::string mux_webm_opus(const std::string& head, const std::vector<std::string>& packets, int packet_ms);

}  // namespace mc::stt
