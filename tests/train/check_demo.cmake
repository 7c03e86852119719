# Runs gcl_demo in its quick mode and checks that it finishes, prints its summary line, that both
# fine-tuned networks segment at least MINIMUM mean foreground Dice, and that its results.json
# shows every pre-trained run's probe above chance for every label and the losses of patient and
# position below collapse (check_demo_results.py; phase's loss reported).
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
# Every label's probe and the losses of patient and position are enforced. The cardiac phase's loss
# is reported: on the phantom it is a binary label whose floor is log(B - 1) and whose signal a
# single slice of a low-ejection-fraction patient barely carries, so within the quick demo's
# budget it ends above log(2B - 1) - 0.5 (docs/training.md, "The cardiac phase").
execute_process(COMMAND ${PYTHON} ${here}/check_demo_results.py ${OUT}/results.json --loss-reported phase
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_demo --quick: a pre-training did not learn a meta label (probe or loss), see above")
endif()
