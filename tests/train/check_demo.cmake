# Runs gcl_demo in its quick mode and checks that it finishes, prints its summary line, and that
# both fine-tuned networks segment at least MINIMUM mean foreground Dice.
# cmake -DPROGRAM=<gcl_demo> -DMINIMUM=<dice> -P check_demo.cmake
execute_process(COMMAND ${PROGRAM} --quick RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_demo --quick exited with ${rc}: ${err}")
endif()
if(NOT out MATCHES "gcl_demo mean_dice random ([0-9.]+) gcl ([0-9.]+)\n?$")
    message(FATAL_ERROR "gcl_demo did not end with its summary line")
endif()
set(random ${CMAKE_MATCH_1})
set(gcl ${CMAKE_MATCH_2})
if(random LESS MINIMUM OR gcl LESS MINIMUM)
    message(FATAL_ERROR "mean foreground Dice below ${MINIMUM}: random ${random}, gcl ${gcl}")
endif()
