# oneadapt_add_plugin(<target>
#     SOURCES <file>...                 sources of the plugin
#     [LIBRARIES <lib>...]              further libraries to link (privately)
#     [OUTPUT_DIRECTORY <dir>]          where the .so goes (default: <build>/plugins)
#     [INSTALL_DESTINATION <dir>]       default: lib/oneadapt/plugins
#     [NO_INSTALL]                      do not install
#     [ALLOW_UNDEFINED])                do not fail the link on undefined symbols
#
# Builds a oneadapt plugin: a dlopen-only MODULE library named <target>.so, linked against the
# SDK only, with every symbol hidden except the one entry point (ONEADAPT_PLUGIN).
function(oneadapt_add_plugin target)
  cmake_parse_arguments(ARG "NO_INSTALL;ALLOW_UNDEFINED" "OUTPUT_DIRECTORY;INSTALL_DESTINATION"
                        "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "oneadapt_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE OneAdapt::sdk ${ARG_LIBRARIES})
  if(NOT ARG_OUTPUT_DIRECTORY)
    if(DEFINED ONEADAPT_PLUGIN_OUTPUT_DIR)
      set(ARG_OUTPUT_DIRECTORY ${ONEADAPT_PLUGIN_OUTPUT_DIR})
    else()
      set(ARG_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/plugins)
    endif()
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(NOT ARG_ALLOW_UNDEFINED)
    # An undefined symbol is a link error here rather than a load failure at the user's.
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
  if(NOT ARG_NO_INSTALL)
    if(NOT ARG_INSTALL_DESTINATION)
      set(ARG_INSTALL_DESTINATION lib/oneadapt/plugins)
    endif()
    install(TARGETS ${target} LIBRARY DESTINATION ${ARG_INSTALL_DESTINATION})
  endif()
endfunction()
