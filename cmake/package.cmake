# Install layout and the Debian package (CPack). Everything of ours is installed as the component
# `mycandy`; llama.cpp's own install rules (its static libraries and headers, configured with the
# subproject, for targets that are mostly never built) belong to another component and are left
# out: install with `--component mycandy`.
#
#   make install PREFIX=/opt/mycandy      # = cmake --install build --component mycandy --prefix /opt/mycandy
#   make deb                              # build/mycandy_<version>_<arch>.deb (cpack -G DEB in build/)
#
# Layout under the prefix:
#   bin/mycandy                           the server
#   share/mycandy/ui/dist/                the built web UI (find_ui_dir looks at <exe>/../share/mycandy/ui/dist)
#   share/mycandy/settings.json           the default settings (the package copies it to /etc/mycandy)
#   lib/systemd/system/mycandy.service    the service (ExecStart names <prefix>/bin/mycandy)
#   lib/mycandy/                          helper programs from MYCANDY_INSTALL_TOOLS
include(GNUInstallDirs)

install(TARGETS mycandy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT mycandy)
# The UI is built by the `ui` target (part of ALL) into the source tree's ui/dist.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/ui/dist/ DESTINATION ${CMAKE_INSTALL_DATADIR}/mycandy/ui/dist COMPONENT mycandy)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/settings.json DESTINATION ${CMAKE_INSTALL_DATADIR}/mycandy COMPONENT mycandy)
# The unit names the installed binary, so it is written at install time, when the prefix is known
# (cpack installs under /usr, `cmake --install --prefix X` under X).
install(CODE "
  set(MYCANDY_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  configure_file(\"${CMAKE_SOURCE_DIR}/packaging/mycandy.service.in\"
    \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/mycandy.service\" @ONLY)
  message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/mycandy.service\")"
  COMPONENT mycandy)

# ---- Helper programs installed beside the server -------------------------------------------------
# llama.cpp's `llama-server` (the RPC engine runs it as a child: llm/cluster_engine, found at
# <exe>/../lib/mycandy/llama-server) and `ggml-rpc-server` (what other machines run to hold a share
# of a big model; copy it from here). Installed into lib/mycandy/, private to mycandy, so /usr/bin
# never clashes with a distribution's llama.cpp.
set(MYCANDY_INSTALL_TOOLS "llama-server;ggml-rpc-server" CACHE STRING "CMake targets installed into lib/mycandy beside mycandy (;-list)")
set(MYCANDY_INSTALL_TOOLS_DIR ${CMAKE_INSTALL_LIBDIR}/mycandy)
set(_mycandy_tools "")
foreach(tool IN LISTS MYCANDY_INSTALL_TOOLS)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${MYCANDY_INSTALL_TOOLS_DIR} COMPONENT mycandy)
    list(APPEND _mycandy_tools ${tool})
  else()
    message(STATUS "MYCANDY_INSTALL_TOOLS: no target '${tool}', not installed")
  endif()
endforeach()
if(_mycandy_tools)
  add_custom_target(mycandy_install_tools ALL DEPENDS ${_mycandy_tools})
endif()

# ---- The Debian package ----------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mycandy)
set(CPACK_PACKAGE_VENDOR "MyCandyLocal")
set(CPACK_PACKAGE_CONTACT "MyCandyLocal maintainers <mycandy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Local AI companion server: chat, voice and pictures on your own machine")
set(CPACK_PACKAGE_DESCRIPTION "mycandy serves a web UI and an HTTP API on 127.0.0.1:8000: characters you
talk to by text and voice, with memory, embedded llama.cpp and whisper.cpp, no account, no cloud.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Only our component: not llama.cpp's libraries and headers.
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};${PROJECT_NAME};mycandy;/")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES TRUE)
# postinst creates the system user with adduser; espeak-ng is the default voice, run as a program.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "espeak-ng")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
  ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
  ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
