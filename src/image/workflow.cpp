#include "image/workflow.hpp"

#include <algorithm>
#include <map>

namespace mc::image {
namespace {

constexpr size_t kMaxNodes = 1000;

bool is_link(const Json& v) {
    return v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_number_integer();
}

bool contains_text(const Json& v, std::string_view needle) {
    if (v.is_string()) return v.get_ref<const std::string&>().find(needle) != std::string::npos;
    if (v.is_array() || v.is_object()) {
        for (const auto& item : v) {
            if (contains_text(item, needle)) return true;
        }
    }
    return false;
}

std::string number_text(double v) {
    Json j = v;
    if (v == static_cast<double>(static_cast<int64_t>(v))) j = static_cast<int64_t>(v);
    return j.dump();
}

void fill_value(Json& v, const std::map<std::string, Json>& numbers, const std::map<std::string, std::string>& texts) {
    if (v.is_string()) {
        std::string s = v.get<std::string>();
        if (s.find('%') == std::string::npos) return;
        if (auto it = numbers.find(s); it != numbers.end()) {
            v = it->second;
            return;
        }
        // One pass: what was put in is never scanned again (a prompt saying "%seed%" stays words).
        std::string out;
        for (size_t i = 0; i < s.size();) {
            bool replaced = false;
            if (s[i] == '%') {
                for (const auto& [key, value] : numbers) {
                    if (s.compare(i, key.size(), key) == 0) {
                        out += number_text(value.get<double>());
                        i += key.size();
                        replaced = true;
                        break;
                    }
                }
                for (auto it = texts.begin(); !replaced && it != texts.end(); ++it) {
                    if (s.compare(i, it->first.size(), it->first) == 0) {
                        out += it->second;
                        i += it->first.size();
                        replaced = true;
                    }
                }
            }
            if (!replaced) out += s[i++];
        }
        v = std::move(out);
    } else if (v.is_array()) {
        if (is_link(v)) return;
        for (auto& item : v) fill_value(item, numbers, texts);
    } else if (v.is_object()) {
        for (auto& [key, item] : v.items()) fill_value(item, numbers, texts);
    }
}

}  // namespace

Json default_workflow(bool likeness) {
    Json g = {
        {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "%checkpoint%"}}}}},
        {"5", {{"class_type", "EmptyLatentImage"}, {"inputs", {{"width", "%width%"}, {"height", "%height%"}, {"batch_size", 1}}}}},
        {"6", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", "%prompt%"}, {"clip", {"4", 1}}}}}},
        {"7", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", "%negative_prompt%"}, {"clip", {"4", 1}}}}}},
        {"3", {{"class_type", "KSampler"},
               {"inputs", {{"seed", "%seed%"}, {"steps", "%steps%"}, {"cfg", "%scale%"}, {"sampler_name", "%sampler%"},
                           {"scheduler", "%scheduler%"}, {"denoise", 1}, {"model", {"4", 0}}, {"positive", {"6", 0}},
                           {"negative", {"7", 0}}, {"latent_image", {"5", 0}}}}}},
        {"8", {{"class_type", "VAEDecode"}, {"inputs", {{"samples", {"3", 0}}, {"vae", {"4", 2}}}}}},
        {"9", {{"class_type", "SaveImage"}, {"inputs", {{"filename_prefix", "mycandy"}, {"images", {"8", 0}}}}}},
    };
    if (likeness) {
        // ComfyUI_IPAdapter_plus: the character's avatar steers the face.
        g["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "%char_avatar%"}}}};
        g["11"] = {{"class_type", "IPAdapterUnifiedLoader"}, {"inputs", {{"model", {"4", 0}}, {"preset", "PLUS FACE (portraits)"}}}};
        g["12"] = {{"class_type", "IPAdapter"},
                   {"inputs", {{"model", {"11", 0}}, {"ipadapter", {"11", 1}}, {"image", {"10", 0}}, {"weight", "%likeness_weight%"},
                               {"start_at", 0}, {"end_at", 1}, {"weight_type", "standard"}}}};
        g["3"]["inputs"]["model"] = {"12", 0};
    }
    return g;
}

Result<void> validate_workflow(const Json& graph) {
    if (!graph.is_object() || graph.empty()) {
        return fail(ErrorCode::InvalidInput,
                    "a workflow must be a JSON object of nodes in ComfyUI's API format (\"Save (API format)\")", "workflow");
    }
    if (graph.contains("nodes") && graph.contains("links")) {
        return fail(ErrorCode::InvalidInput,
                    "this is ComfyUI's UI format; export the workflow with \"Save (API format)\" (enable dev mode options)", "workflow");
    }
    if (graph.size() > kMaxNodes) {
        return fail(ErrorCode::TooLarge, "a workflow may have at most " + std::to_string(kMaxNodes) + " nodes", "workflow");
    }
    for (const auto& [id, node] : graph.items()) {
        if (!node.is_object() || !node.contains("class_type") || !node["class_type"].is_string() ||
            node["class_type"].get_ref<const std::string&>().empty()) {
            return fail(ErrorCode::InvalidInput, "node " + id + " has no \"class_type\"", "workflow");
        }
        if (!node.contains("inputs") || !node["inputs"].is_object()) {
            return fail(ErrorCode::InvalidInput, "node " + id + " has no \"inputs\" object", "workflow");
        }
        for (const auto& [name, value] : node["inputs"].items()) {
            if (!is_link(value)) continue;
            const std::string target = value[0].get<std::string>();
            if (!graph.contains(target)) {
                return fail(ErrorCode::InvalidInput, "input '" + name + "' of node " + id + " links to node " + target +
                                                         ", which the workflow does not have", "workflow");
            }
            if (value[1].get<int64_t>() < 0 || value[1].get<int64_t>() > 64) {
                return fail(ErrorCode::InvalidInput, "input '" + name + "' of node " + id + " links to an invalid output", "workflow");
            }
        }
    }
    if (!contains_text(graph, "%prompt%")) {
        return fail(ErrorCode::InvalidInput, "the workflow has no %prompt% placeholder: put \"%prompt%\" in the positive prompt's text",
                    "workflow");
    }
    return {};
}

bool needs_reference(const Json& graph) { return contains_text(graph, "%char_avatar%"); }

Result<Json> fill_workflow(const Json& graph, const ImageParams& p) {
    if (auto ok = validate_workflow(graph); !ok) return std::unexpected(ok.error());
    if (needs_reference(graph) && p.reference_image.empty()) {
        return fail(ErrorCode::InvalidInput,
                    "this workflow needs the character's picture (%char_avatar%): give the character an avatar, or turn likeness off",
                    "workflow");
    }
    Json g = graph;
    if (!p.loras.empty()) {
        std::string ckpt;
        int next_id = 0;
        for (const auto& [id, node] : g.items()) {
            const std::string& type = node["class_type"].get_ref<const std::string&>();
            if (ckpt.empty() && (type == "CheckpointLoaderSimple" || type == "CheckpointLoader")) ckpt = id;
            try {
                next_id = std::max(next_id, std::stoi(id) + 1);
            } catch (...) {
            }
        }
        if (ckpt.empty()) {
            return fail(ErrorCode::InvalidInput, "LoRAs need a CheckpointLoaderSimple node in the workflow to attach to", "loras");
        }
        std::string prev = ckpt;
        std::vector<std::string> added;
        for (const auto& lora : p.loras) {
            const std::string id = std::to_string(next_id++);
            g[id] = {{"class_type", "LoraLoader"},
                     {"inputs", {{"model", {prev, 0}}, {"clip", {prev, 1}}, {"lora_name", lora.name},
                                 {"strength_model", lora.weight}, {"strength_clip", lora.weight}}}};
            added.push_back(id);
            prev = id;
        }
        // Everything that took the model or CLIP from the checkpoint now takes it through the LoRAs.
        for (auto& [id, node] : g.items()) {
            if (std::find(added.begin(), added.end(), id) != added.end()) continue;
            for (auto& [name, value] : node["inputs"].items()) {
                if (is_link(value) && value[0] == ckpt && (value[1] == 0 || value[1] == 1)) value[0] = prev;
            }
        }
    }
    const std::map<std::string, Json> numbers = {
        {"%seed%", p.seed}, {"%width%", p.width}, {"%height%", p.height}, {"%steps%", p.steps},
        {"%scale%", p.scale}, {"%denoise%", 1.0}, {"%likeness_weight%", p.likeness_weight},
    };
    const std::map<std::string, std::string> texts = {
        {"%negative_prompt%", p.negative_prompt}, {"%prompt%", p.prompt}, {"%checkpoint%", p.checkpoint},
        {"%model%", p.checkpoint}, {"%sampler%", p.sampler}, {"%scheduler%", p.scheduler}, {"%char_avatar%", p.reference_image},
    };
    for (auto& [id, node] : g.items()) {
        for (auto& [name, value] : node["inputs"].items()) fill_value(value, numbers, texts);
    }
    return g;
}

std::set<std::string> node_types(const Json& graph) {
    std::set<std::string> out;
    if (!graph.is_object()) return out;
    for (const auto& [id, node] : graph.items()) {
        if (node.is_object() && node.contains("class_type") && node["class_type"].is_string()) out.insert(node["class_type"].get<std::string>());
    }
    return out;
}

}  // namespace mc::image
