// image/workflow: ComfyUI workflows in API format ("Save (API format)") as templates. Placeholders
// in string inputs are filled from an ImageParams: a value that is exactly "%seed%", "%width%",
// "%height%", "%steps%", "%scale%", "%denoise%" or "%likeness_weight%" becomes a number; "%prompt%",
// "%negative_prompt%", "%checkpoint%" (alias "%model%"), "%sampler%", "%scheduler%" and
// "%char_avatar%" are replaced inside strings (SillyTavern's convention). The graph is edited as
// JSON, never as text, so a prompt cannot change its structure. LoRAs are chained after the
// checkpoint loader (any number, each with its weight), so templates need no LoRA placeholder.
// Thread safety: pure functions.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/types.hpp"

namespace mc::image {

struct Lora {
    std::string name;  // File name as the image server lists it.
    double weight = 0.8;
};

// Everything one picture needs, assembled from the settings, the character and the model's prompt.
struct ImageParams {
    std::string prompt;           // Full positive prompt (quality tags, appearance, the model's words).
    std::string negative_prompt;
    int64_t seed = 0;             // 0 .. 2^53.
    int width = 832;
    int height = 1216;
    int steps = 25;
    double scale = 6.5;           // CFG.
    std::string sampler = "euler_ancestral";
    std::string scheduler = "normal";
    std::string checkpoint;
    std::vector<Lora> loras;
    std::string reference_image;  // The uploaded avatar's name on the image server ("" = none).
    double likeness_weight = 0.7;
};

// The built-in SDXL/Pony graph; `likeness` adds the IPAdapter nodes fed by %char_avatar%.
Json default_workflow(bool likeness);

// Checks a template: an object of nodes, each {"class_type": string, "inputs": object}, links
// ["<node id>", <output>] pointing at existing nodes, a %prompt% placeholder, at most 1000 nodes.
Result<void> validate_workflow(const Json& graph);

// True when some string input mentions %char_avatar%.
bool needs_reference(const Json& graph);

// A filled copy of `graph`. Fails when LoRAs are asked for but the graph has no checkpoint loader,
// or it needs a reference image and none is given.
Result<Json> fill_workflow(const Json& graph, const ImageParams& params);

// The node types a graph uses (for the health check against ComfyUI's /object_info).
std::set<std::string> node_types(const Json& graph);

}  // namespace mc::image
