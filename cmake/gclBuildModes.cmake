# Build modes of gcl's own tests, examples and benchmarks (never of the gcl::gcl target, whose
# users choose their own flags).
#
# GCL_NATIVE_ARCH  -march=native: fastest on this machine; floating-point results can differ on
#                  another CPU (vector width and fused multiply-adds change summation orders).
# GCL_PORTABLE     the x86-64 baseline ISA, -ffp-contract=off, no fast-math: the same binary
#                  arithmetic on every x86-64 machine, so seeded figures repeat across machines
#                  (for a fixed thread count). Overrides GCL_NATIVE_ARCH.
# GCL_SANITIZE     a comma list of address, undefined, leak, thread: instrumented programs that
#                  stop at the first finding.

if(GCL_PORTABLE)
    if(GCL_NATIVE_ARCH)
        message(STATUS "gcl: GCL_PORTABLE=ON, so gcl's programs are not built with -march=native")
    endif()
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off> $<$<COMPILE_LANGUAGE:CXX>:-fno-fast-math>)
    add_compile_definitions(GCL_PORTABLE_BUILD=1)
elseif(GCL_NATIVE_ARCH)
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()

if(GCL_SANITIZE)
    string(REPLACE "," ";" gcl_sanitizers "${GCL_SANITIZE}")
    foreach(s IN LISTS gcl_sanitizers)
        if(NOT s MATCHES "^(address|undefined|leak|thread)$")
            message(FATAL_ERROR "gcl: GCL_SANITIZE: unknown sanitizer '${s}' (use address, undefined, leak, thread)")
        endif()
    endforeach()
    if("thread" IN_LIST gcl_sanitizers)
        if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
            # libgomp is not built with ThreadSanitizer: every OpenMP barrier would be reported
            # as a race. LLVM's libomp with its Archer tool annotates them.
            message(FATAL_ERROR "gcl: GCL_SANITIZE=thread needs clang++ with LLVM's libomp and Archer "
                                "(CXX=clang++; run with OMP_TOOL_LIBRARIES=libarcher.so); GCC's libgomp is not instrumented")
        endif()
        if("address" IN_LIST gcl_sanitizers OR "leak" IN_LIST gcl_sanitizers)
            message(FATAL_ERROR "gcl: GCL_SANITIZE: thread cannot be combined with address or leak")
        endif()
    endif()
    string(REPLACE ";" "," gcl_sanitize_list "${gcl_sanitizers}")
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${gcl_sanitize_list}>
                        $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=all>
                        $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
    add_link_options(-fsanitize=${gcl_sanitize_list})
    add_compile_definitions(GCL_SANITIZED_BUILD=1)
    message(STATUS "gcl: sanitizers ${gcl_sanitize_list} in gcl's tests, examples and benchmarks")
endif()
