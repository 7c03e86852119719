# The compile-fail source with its device view turned into a host view must compile: the
# rejection is then due to the device, nothing else.
file(READ ${SOURCE} text)
string(REPLACE "gcl::cuda" "gcl::cpu" text "${text}")
file(WRITE ${WORK}/host_element_access.cpp "${text}")
execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only -I${INCLUDE} ${WORK}/host_element_access.cpp
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the host version does not compile:\n${err}")
endif()
