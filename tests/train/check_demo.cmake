# Runs gcl_demo in its quick mode and checks that it finishes, prints its summary line, that both
# fine-tuned networks segment at least MINIMUM mean foreground Dice, and that its results.json
# shows every pre-trained run's probe above chance and its image loss 0.5 below collapse for every
# meta label (check_demo_results.py).
# cmake -DPROGRAM=<gcl_demo> -DMINIMUM=<dice> -DOUT=<dir> -DPYTHON=<python3> -P check_demo.cmake
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${PROGRAM} --quick --out ${OUT} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
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
get_filename_component(here ${CMAKE_CURRENT_LIST_FILE} DIRECTORY)
execute_process(COMMAND ${PYTHON} ${here}/check_demo_results.py ${OUT}/results.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_demo --quick: a pre-training did not learn a meta label (probe or loss), see above")
endif()
