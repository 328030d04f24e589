# Brings llama.cpp release v0.4.0 into the build from the npm package node-llama-cpp@3.21.1
# (deps/node_modules, installed by scripts/setup.sh with `npm ci`). The package carries the release
# source as a git bundle; we clone it once into the build folder and add it as a subproject whose
# targets are only built when something of ours links them (EXCLUDE_FROM_ALL).
set(MYCANDY_LLAMA_PKG ${CMAKE_SOURCE_DIR}/deps/node_modules/node-llama-cpp/llama)
set(MYCANDY_LLAMA_BUNDLE ${MYCANDY_LLAMA_PKG}/gitRelease.bundle)
# The checkout lives beside the build folders (deps/llama.cpp, ignored by git), so the build and
# the sanitizer build (build-asan) compile it with the same relative paths and the compiler cache
# serves the second from the first: llama.cpp is compiled once.
set(MYCANDY_LLAMA_SRC ${CMAKE_SOURCE_DIR}/deps/llama.cpp)

if(NOT EXISTS ${MYCANDY_LLAMA_BUNDLE})
  message(FATAL_ERROR "llama.cpp bundle not found at ${MYCANDY_LLAMA_BUNDLE}: run scripts/setup.sh (npm ci in deps/) first")
endif()

file(READ ${MYCANDY_LLAMA_PKG}/llama.cpp.info.json _llama_info)
string(JSON MYCANDY_LLAMA_RELEASE GET "${_llama_info}" tag)

if(NOT EXISTS ${MYCANDY_LLAMA_SRC}/CMakeLists.txt)
  message(STATUS "Cloning llama.cpp ${MYCANDY_LLAMA_RELEASE} from ${MYCANDY_LLAMA_BUNDLE}")
  execute_process(
    COMMAND git -c advice.detachedHead=false clone --quiet ${MYCANDY_LLAMA_BUNDLE} ${MYCANDY_LLAMA_SRC}
    RESULT_VARIABLE _clone_rc)
  if(NOT _clone_rc EQUAL 0)
    message(FATAL_ERROR "git clone of the llama.cpp bundle failed (${_clone_rc})")
  endif()
endif()

# A static, CPU-only llama.cpp and nothing that would reach the network at build time. The tools
# (llama-server, llama-bench) are configured too but, like everything here, only built on demand:
# the tests and bench/ use them as the reference we compare against.
set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_MTMD ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_UI OFF CACHE BOOL "" FORCE)
set(LLAMA_USE_PREBUILT_UI OFF CACHE BOOL "" FORCE)
set(LLAMA_OPENSSL OFF CACHE BOOL "" FORCE)
set(LLAMA_SUBPROCESS OFF CACHE BOOL "" FORCE)
set(LLAMA_ALL_WARNINGS OFF CACHE BOOL "" FORCE)
set(GGML_BACKEND_DL OFF CACHE BOOL "" FORCE)
# ggml's RPC backend: llm.rpc_servers spreads a model over `ggml-rpc-server` processes on other
# machines (llm/cluster_engine runs llama-server with --rpc as a child). Small: one source file.
set(GGML_RPC ON CACHE BOOL "" FORCE)
# GPUs: -DMYCANDY_GPU=vulkan|cuda (make run GPU=vulkan) builds llama.cpp's backend for them from the
# same bundle; every engine (text, speech, recognition) then offloads what its settings allow.
set(MYCANDY_GPU "" CACHE STRING "GPU backend for llama.cpp/whisper.cpp: empty (CPU only) | vulkan | cuda")
set_property(CACHE MYCANDY_GPU PROPERTY STRINGS "" vulkan cuda)
if(MYCANDY_GPU STREQUAL "vulkan")
  set(GGML_VULKAN ON CACHE BOOL "" FORCE)
elseif(MYCANDY_GPU STREQUAL "cuda")
  set(GGML_CUDA ON CACHE BOOL "" FORCE)
elseif(NOT MYCANDY_GPU STREQUAL "")
  message(FATAL_ERROR "MYCANDY_GPU must be empty, vulkan or cuda (got '${MYCANDY_GPU}')")
endif()
set(LLAMA_BUILD_NUMBER 0)
set(LLAMA_BUILD_COMMIT ${MYCANDY_LLAMA_RELEASE})

add_subdirectory(${MYCANDY_LLAMA_SRC} ${CMAKE_BINARY_DIR}/_deps/llama.cpp-build EXCLUDE_FROM_ALL SYSTEM)

# Debian bookworm's Vulkan headers are older than this llama.cpp expects in one place
# (VK_EXT_layer_settings); cmake/vulkan_compat.h declares what is missing.
if(TARGET ggml-vulkan)
  target_compile_options(ggml-vulkan PRIVATE -include ${CMAKE_SOURCE_DIR}/cmake/vulkan_compat.h)
endif()
