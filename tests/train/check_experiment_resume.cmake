# Runs gcl_experiment on a tiny protocol, checks the files it writes, then runs it again with the
# same --out and checks that it resumes: every run already finished is skipped, none is repeated.
# With -DMPIRUN="<mpirun;flags;-np;N>" both runs are data-parallel jobs (rank 0 writes, every rank resumes).
# cmake -DPROGRAM=<gcl_experiment> -DOUT=<dir> -DPYTHON=<python3> [-DMPIRUN=...] -P check_experiment_resume.cmake
file(REMOVE_RECURSE ${OUT})
set(args --out ${OUT} --methods random-init gcl-representation --seeds 1 --labelled 1 2
         --pretrain-steps 3 --finetune-steps 11 --pretrain-patients 4 --probe-patients 2 --test-patients 1 --size 32)
execute_process(COMMAND ${MPIRUN} ${PROGRAM} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_experiment exited with ${rc}: ${err}")
endif()
foreach(f results.json results.csv report.md figures/dice_scanner0.png figures/pretrain_loss_phase.png
          figures/predictions_scanner1.png pretrain/gcl-representation-seed1.json pretrain/gcl-representation-seed1.ckpt)
    if(NOT EXISTS ${OUT}/${f})
        message(FATAL_ERROR "gcl_experiment did not write ${f}")
    endif()
endforeach()
execute_process(COMMAND ${MPIRUN} ${PROGRAM} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE again ERROR_VARIABLE err)
message("${again}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_experiment (resumed) exited with ${rc}: ${err}")
endif()
if(NOT again MATCHES "resuming: 4 runs" OR NOT again MATCHES "gcl-representation, seed 1: done")
    message(FATAL_ERROR "the second run did not resume from the first one's results")
endif()
if(again MATCHES "pre-training\n")
    message(FATAL_ERROR "the resumed run pre-trained again")
endif()
execute_process(COMMAND ${PYTHON} -c "import json,sys; r=json.load(open(sys.argv[1]))['runs']; \
keys=[(x['method'],x['labelled_patients'],x['seed']) for x in r]; \
sys.exit(0 if len(keys)==4 and len(set(keys))==4 and all(x['pretrain'] for x in r if x['method']!='random-init') else 1)"
    ${OUT}/results.json RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "results.json does not hold each of the 4 runs exactly once")
endif()
# A bad flag value exits with 2 and names the flag.
execute_process(COMMAND ${PROGRAM} --seeds abc RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "--seeds")
    message(FATAL_ERROR "gcl_experiment --seeds abc: exit ${rc}, message '${err}'")
endif()
