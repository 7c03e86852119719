# Defines gcl::cuda (gcl::gcl + CUDA runtime, cuBLAS, cuDNN) when the CUDA toolkit and cuDNN are
# found. Used in the build tree and by the installed package config alike.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND NOT TARGET gcl::cuda)
    find_library(GCL_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
    if(GCL_CUDNN_LIBRARY)
        add_library(gcl::cuda INTERFACE IMPORTED)
        target_link_libraries(gcl::cuda INTERFACE gcl::gcl CUDA::cudart CUDA::cublas ${GCL_CUDNN_LIBRARY})
        # CUDA 13 keeps CUB and Thrust under include/cccl.
        foreach(dir IN LISTS CUDAToolkit_INCLUDE_DIRS)
            if(EXISTS ${dir}/cccl)
                target_include_directories(gcl::cuda SYSTEM INTERFACE ${dir}/cccl)
            endif()
        endforeach()
    else()
        message(STATUS "gcl: cuDNN not found, gcl::cuda is not defined")
    endif()
endif()
