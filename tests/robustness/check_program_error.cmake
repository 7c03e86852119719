# Runs PROGRAM with ARGS (a ;-list) and checks that it fails the way a user should see it: a
# non-zero exit, output matching EXPECT, and no uncaught-exception text (std::terminate, a bare
# std:: what() such as "stoull").
execute_process(COMMAND ${PROGRAM} ${ARGS} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
if(status EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} ${ARGS} exited with 0; expected a failure. Output:\n${all}")
endif()
if(NOT all MATCHES "${EXPECT}")
    message(FATAL_ERROR "${PROGRAM} ${ARGS}: the output does not match '${EXPECT}':\n${all}")
endif()
if(all MATCHES "terminate called|what\\(\\)|^stou?ll?|Aborted" OR NOT status MATCHES "^[0-9]+$")
    message(FATAL_ERROR "${PROGRAM} ${ARGS} died of an uncaught exception (status ${status}):\n${all}")
endif()
message(STATUS "${PROGRAM} failed as expected (exit ${status}): ${all}")
