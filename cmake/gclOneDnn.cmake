# Defines gcl::onednn (oneDNN's library plus GCL_CPU_CONV_ONEDNN, which makes float convolutions
# on the CPU run on oneDNN) when oneDNN is found. Used in the build tree and by the installed
# package config alike.
if(NOT TARGET gcl::onednn)
    find_package(dnnl CONFIG QUIET)
    if(TARGET DNNL::dnnl)
        add_library(gcl::onednn INTERFACE IMPORTED)
        target_link_libraries(gcl::onednn INTERFACE DNNL::dnnl)
        target_compile_definitions(gcl::onednn INTERFACE GCL_CPU_CONV_ONEDNN=1)
    endif()
endif()
