// Our compatibility shim for building llama.cpp's Vulkan backend against Debian bookworm's Vulkan
// headers (1.3.239), which predate VK_EXT_layer_settings (Vulkan 1.3.261+). ggml-vulkan.cpp only
// uses that extension's structures to ask the validation layer for best-practice checks; here they
// are declared as the Vulkan specification defines them (VK_EXT_layer_settings, extension 497).
// Force-included (-include) into ggml-vulkan.cpp by cmake/llama.cmake; with newer headers it does
// nothing. Only the C header is included here: ggml-vulkan.cpp sets vulkan.hpp's macros itself.
#pragma once
#include <vulkan/vulkan_core.h>

#if defined(__cplusplus) && !defined(VK_EXT_layer_settings)
#include <cstdint>
#include <vector>

namespace vk {

enum class LayerSettingTypeEXT : int32_t {
    eBool32 = 0,
    eInt32 = 1,
    eInt64 = 2,
    eUint32 = 3,
    eUint64 = 4,
    eFloat32 = 5,
    eFloat64 = 6,
    eString = 7,
};

struct LayerSettingEXT {
    const char* pLayerName;
    const char* pSettingName;
    LayerSettingTypeEXT type;
    uint32_t valueCount;
    const void* pValues;
};

struct LayerSettingsCreateInfoEXT {
    explicit LayerSettingsCreateInfoEXT(const std::vector<LayerSettingEXT>& settings)
        : settingCount(static_cast<uint32_t>(settings.size())), pSettings(settings.data()) {}
    VkStructureType sType = static_cast<VkStructureType>(1000496000);  // VK_STRUCTURE_TYPE_LAYER_SETTINGS_CREATE_INFO_EXT
    const void* pNext = nullptr;
    uint32_t settingCount;
    const LayerSettingEXT* pSettings;
};

}  // namespace vk
#endif
