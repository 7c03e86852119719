# gcl_demo --device: a bad value exits with status 2 naming the flag; --device cuda in a build
# without CUDA (or on a machine without a GPU) exits non-zero with the gcl::Error that names the
# flag; where a GPU runs it, a short run on cuda finishes and records the device in results.json.
# cmake -DPROGRAM=<gcl_demo> -DCUDA_BUILD=ON|OFF -DOUT=<dir> -P check_demo_device.cmake
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${PROGRAM} --device tpu RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "--device")
    message(FATAL_ERROR "gcl_demo --device tpu: expected exit 2 and a message naming --device, got ${rc}: ${err}")
endif()

set(short_run --quick --no-compare --size 32 --pretrain-patients 4 --probe-patients 2 --test-patients 1
    --pretrain-steps 2 --finetune-steps 2 --pretrain-batch 4)
execute_process(COMMAND ${PROGRAM} ${short_run} --device cuda --out ${OUT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT CUDA_BUILD)
    if(rc EQUAL 0 OR NOT err MATCHES "gcl::gcl_runs: --device cuda: this build has no CUDA backend")
        message(FATAL_ERROR "gcl_demo --device cuda without CUDA: expected a non-zero exit naming --device, got ${rc}")
    endif()
    if(EXISTS ${OUT}/results.json)
        message(FATAL_ERROR "gcl_demo --device cuda without CUDA wrote ${OUT}/results.json")
    endif()
elseif(NOT rc EQUAL 0)
    if(NOT err MATCHES "gcl::gcl_runs: --device cuda: no CUDA device is available")
        message(FATAL_ERROR "gcl_demo --device cuda exited with ${rc} but not for want of a GPU: ${err}")
    endif()
else()
    file(READ ${OUT}/results.json results)
    if(NOT results MATCHES "\"device\": \"cuda\"")
        message(FATAL_ERROR "gcl_demo --device cuda: results.json does not record the device")
    endif()
endif()
