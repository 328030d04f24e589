# Brings whisper.cpp 1.9.3 into the build from the npm package @fugood/whisper.node@1.1.3
# (deps/whisper.node, fetched by scripts/setup.sh with `npm pack`, checksum pinned). Its own ggml copy is
# incomplete, and two ggml copies in one binary would collide: whisper.cpp's sources are compiled
# here against the llama.cpp bundle's ggml (target `ggml`, cmake/llama.cmake), so the binary holds
# one ggml. Only the library and, for bench/, the command-line tool are built, on demand.
set(MYCANDY_WHISPER_PKG ${CMAKE_SOURCE_DIR}/deps/whisper.node)
set(MYCANDY_WHISPER_SRC ${MYCANDY_WHISPER_PKG}/whisper.cpp)
if(NOT EXISTS ${MYCANDY_WHISPER_SRC}/src/whisper.cpp)
  message(FATAL_ERROR "whisper.cpp sources not found at ${MYCANDY_WHISPER_SRC}: run scripts/setup.sh first")
endif()
file(READ ${MYCANDY_WHISPER_PKG}/package.json _whisper_pkg)
string(JSON MYCANDY_WHISPER_PKG_VERSION GET "${_whisper_pkg}" version)
file(STRINGS ${MYCANDY_WHISPER_SRC}/CMakeLists.txt _wv REGEX "set\\(WHISPER_VERSION_(MAJOR|MINOR|PATCH) [0-9]+\\)")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3" MYCANDY_WHISPER_VERSION "${_wv}")

add_library(whisper STATIC EXCLUDE_FROM_ALL ${MYCANDY_WHISPER_SRC}/src/whisper.cpp)
target_include_directories(whisper SYSTEM PUBLIC ${MYCANDY_WHISPER_SRC}/include)
target_include_directories(whisper PRIVATE ${MYCANDY_WHISPER_SRC}/src)
target_compile_definitions(whisper PRIVATE WHISPER_VERSION="${MYCANDY_WHISPER_VERSION}")
target_compile_features(whisper PUBLIC cxx_std_11)
target_compile_options(whisper PRIVATE -w)
target_link_libraries(whisper PUBLIC ggml Threads::Threads)

# whisper.cpp's own command-line tool from the same sources: bench/ compares /api/stt with it.
add_executable(whisper-cli EXCLUDE_FROM_ALL
  ${MYCANDY_WHISPER_SRC}/examples/cli/cli.cpp
  ${MYCANDY_WHISPER_SRC}/examples/common.cpp
  ${MYCANDY_WHISPER_SRC}/examples/common-ggml.cpp
  ${MYCANDY_WHISPER_SRC}/examples/common-whisper.cpp
  ${MYCANDY_WHISPER_SRC}/examples/grammar-parser.cpp)
target_include_directories(whisper-cli PRIVATE ${MYCANDY_WHISPER_SRC}/examples)
target_compile_options(whisper-cli PRIVATE -w)
target_link_libraries(whisper-cli PRIVATE whisper ${CMAKE_DL_LIBS})
set_target_properties(whisper-cli PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
