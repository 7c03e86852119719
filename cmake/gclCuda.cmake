# Defines gcl::cuda (gcl::gcl + CUDA runtime, cuBLAS, cuDNN) when the CUDA toolkit and cuDNN are
# found. Used in the build tree and by the installed package config alike.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND NOT TARGET gcl::cuda)
    find_library(GCL_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
    if(GCL_CUDNN_LIBRARY)
        add_library(gcl::cuda INTERFACE IMPORTED)
        target_link_libraries(gcl::cuda INTERFACE gcl::gcl CUDA::cudart CUDA::cublas ${GCL_CUDNN_LIBRARY})
        # What nvcc needs for gcl's headers; CMake 3.25 does not know nvcc 13's C++20 flag, so it
        # is given directly.
        target_compile_options(gcl::cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr>)
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

# gcl::nccl: gcl::cuda plus NCCL, for dist/nccl_communicator.cuh (the CUDA toolkit's NCCL).
if(TARGET gcl::cuda AND NOT TARGET gcl::nccl)
    find_library(GCL_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/lib)
    find_path(GCL_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/include)
    if(GCL_NCCL_LIBRARY AND GCL_NCCL_INCLUDE_DIR)
        add_library(gcl::nccl INTERFACE IMPORTED)
        target_link_libraries(gcl::nccl INTERFACE gcl::cuda ${GCL_NCCL_LIBRARY})
        target_include_directories(gcl::nccl SYSTEM INTERFACE ${GCL_NCCL_INCLUDE_DIR})
    endif()
endif()
