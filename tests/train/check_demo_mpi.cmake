# Runs gcl_demo on a tiny protocol as one process and under mpirun with RANKS ranks, and checks
# that the data-parallel run says so, that rank 0 alone printed, and that both runs agree: the
# same probe accuracies, final losses within 1e-2 and mean Dice within 0.02. The ranks sum in
# another order than one process; GradFilter's top-k ranking turns those last-bit differences
# into a different choice of pixel pairs now and then, and a barely trained network's argmax
# flips pixels, so the runs match closely but not to float rounding (tests/dist checks the
# data-parallel steps themselves to 1e-5). Ranks that contrasted their own share alone would differ
# by far more in the losses.
# cmake -DPROGRAM=<gcl_demo> "-DMPIRUN=<mpirun;flags;-np>" -DRANKS=<n> -DOUT=<dir> -DPYTHON=<python3> -P check_demo_mpi.cmake
file(REMOVE_RECURSE ${OUT})
set(args --seed 2 --pretrain-steps 4 --finetune-steps 4 --pretrain-patients 6 --probe-patients 2 --test-patients 1
         --size 32 --pretrain-batch 8)
execute_process(COMMAND ${PROGRAM} ${args} --out ${OUT}/single RESULT_VARIABLE rc OUTPUT_VARIABLE single ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_demo (one process) exited with ${rc}: ${single} ${err}")
endif()
execute_process(COMMAND ${MPIRUN} ${RANKS} ${PROGRAM} ${args} --out ${OUT}/ranks RESULT_VARIABLE rc OUTPUT_VARIABLE ranks
                ERROR_VARIABLE err)
message("${ranks}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpirun -np ${RANKS} gcl_demo exited with ${rc}: ${err}")
endif()
if(NOT ranks MATCHES "data-parallel on ${RANKS} ranks" OR NOT ranks MATCHES "pre-train gcl-parameters. data-parallel"
   OR NOT ranks MATCHES "fine-tune random-init. data-parallel")
    message(FATAL_ERROR "gcl_demo under mpirun -np ${RANKS} did not run data-parallel")
endif()
string(REGEX MATCHALL "gcl_demo mean_dice" summaries "${ranks}")
list(LENGTH summaries printed)
if(NOT printed EQUAL 1)
    message(FATAL_ERROR "the summary line was printed ${printed} times: only rank 0 prints")
endif()
get_filename_component(here ${CMAKE_CURRENT_LIST_FILE} DIRECTORY)
execute_process(COMMAND ${PYTHON} ${here}/compare_demo_runs.py
    ${OUT}/single/results.json ${OUT}/ranks/results.json RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_demo under mpirun -np ${RANKS} does not match one process")
endif()
