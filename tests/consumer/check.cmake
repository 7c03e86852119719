# Installs gcl from BUILD_DIR into a temporary prefix, then configures, builds and runs the
# consumer project against that prefix. Run with: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -P
# Optional: -DCUDA_COMPILER=... and -DCUDA_ARCHITECTURES=... (handed to a CUDA consumer's
# configure step), -DPROGRAM=name (the program to run, default gcl_consumer; empty: build only).
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
    endif()
    message(STATUS "${out}")
endfunction()
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
if(NOT DEFINED PROGRAM)
    set(PROGRAM gcl_consumer)
endif()
set(cuda_args)
if(DEFINED CUDA_COMPILER)
    list(APPEND cuda_args -DCMAKE_CUDA_COMPILER=${CUDA_COMPILER} -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES})
endif()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
    ${cuda_args})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
if(PROGRAM)
    run("${WORK_DIR}/build/${PROGRAM}")
endif()
