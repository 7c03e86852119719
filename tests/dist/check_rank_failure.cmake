# Runs dist_rank_failure under mpirun: it must exit non-zero, within the test's timeout, with the
# failing rank's message.
execute_process(COMMAND ${MPIRUN} ${PROGRAM} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 90)
message("${out}${err}")
if(rc EQUAL 0)
    message(FATAL_ERROR "the job exited 0 although rank 1 failed")
endif()
if(rc MATCHES "timeout")
    message(FATAL_ERROR "the job hung after rank 1 failed")
endif()
if(NOT "${out}${err}" MATCHES "gcl::dist: rank 1 of 3 failed: gcl::dist_rank_failure: rank 1 cannot read its shard")
    message(FATAL_ERROR "the failing rank's message is missing")
endif()
message(STATUS "the job ended with code ${rc} and rank 1's message")
