# Runs gcl_experiment --pretrain-only with the pre-training variant flags on a tiny protocol and
# checks that each flag reaches the pre-training: the contrasted labels and their order, the
# per-label temperatures (they change the losses), the head's batch norm (it changes the number
# of parameters, so the checkpoint's size), the optimizer (AdamW by default, SGD when asked: the
# same first step, other steps after it), and that a bad combination fails with a clear message.
# cmake -DPROGRAM=<gcl_experiment> -DOUT=<dir> -DPYTHON=<python3> -P check_experiment_variants.cmake
file(REMOVE_RECURSE ${OUT})
set(common --pretrain-only --methods random-init summed-no-surgery --seeds 1 --labels phase position
           --pretrain-augment geometric --no-pixel-contrast --pretrain-batch 8 --per-patient 4
           --pretrain-steps 3 --pretrain-patients 4 --probe-patients 2 --test-patients 1 --size 32)
execute_process(COMMAND ${PROGRAM} ${common} --out ${OUT}/a --temperature 0.3 0.7 --head-norm none
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gcl_experiment (variant a) exited with ${rc}: ${out} ${err}")
endif()
foreach(variant "b;0.3;0.3;adamw" "c;0.3;0.7;adamw" "e;0.3;0.3;sgd")
    list(GET variant 0 name)
    list(SUBLIST variant 1 2 temperatures)
    list(GET variant 3 optimizer)
    execute_process(COMMAND ${PROGRAM} ${common} --out ${OUT}/${name} --temperature ${temperatures}
                            --pretrain-optimizer ${optimizer}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "gcl_experiment (variant ${name}) exited with ${rc}: ${out} ${err}")
    endif()
endforeach()
if(EXISTS ${OUT}/a/pretrain/random-init-seed1.json)
    message(FATAL_ERROR "--pretrain-only pre-trained random-init")
endif()
file(READ ${OUT}/a/report.md report)
foreach(phrase "labels phase position" "images per patient 4" "image temperature 0.3 / 0.7" "head batch norm none"
               "augmentation geometric \\+ intensity" "no pixel contrast")
    if(NOT report MATCHES "${phrase}")
        message(FATAL_ERROR "report.md does not name the variant: '${phrase}' missing")
    endif()
endforeach()
# b and c differ only in position's temperature: their first step's phase losses are equal, the
# position losses are not.
execute_process(COMMAND ${PYTHON} -c "import json,sys; \
b=json.load(open(sys.argv[1])); c=json.load(open(sys.argv[2])); runs=json.load(open(sys.argv[3]))['runs']; \
first=lambda r: r['image_loss_curve'][0]; \
ok=b['labels']==['phase','position'] and c['labels']==['phase','position'] and runs==[] \
   and first(b)[0]==first(c)[0] and first(b)[1]!=first(c)[1]; \
sys.exit(0 if ok else 1)"
    ${OUT}/b/pretrain/summed-no-surgery-seed1.json ${OUT}/c/pretrain/summed-no-surgery-seed1.json ${OUT}/a/results.json
    RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the labels or per-label temperatures did not reach the pre-training (or results.json holds runs)")
endif()
# b (AdamW at its default 0.003) and e (SGD at its default 0.05) take the same first step and part after it.
execute_process(COMMAND ${PYTHON} -c "import json,sys; \
b=json.load(open(sys.argv[1])); e=json.load(open(sys.argv[2])); \
ok=(b['optimizer'],b['learning_rate'])==('adamw',0.003) and (e['optimizer'],e['learning_rate'])==('sgd',0.05) \
   and b['image_loss_curve'][0]==e['image_loss_curve'][0] and b['image_loss_curve'][1]!=e['image_loss_curve'][1]; \
sys.exit(0 if ok else 1)"
    ${OUT}/b/pretrain/summed-no-surgery-seed1.json ${OUT}/e/pretrain/summed-no-surgery-seed1.json RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "--pretrain-optimizer did not reach the pre-training")
endif()
file(READ ${OUT}/e/report.md report)
if(NOT report MATCHES "\\(sgd, lr 0.05\\)")
    message(FATAL_ERROR "report.md does not name the optimizer: '(sgd, lr 0.05)' missing")
endif()
file(SIZE ${OUT}/a/pretrain/summed-no-surgery-seed1.ckpt without_norm)
file(SIZE ${OUT}/c/pretrain/summed-no-surgery-seed1.ckpt with_norm)
if(NOT without_norm LESS with_norm)
    message(FATAL_ERROR "--head-norm none did not remove the head's batch norm (checkpoints ${without_norm} and ${with_norm} bytes)")
endif()
# Three temperatures for two labels: a gcl::Error naming the mismatch, exit 1.
execute_process(COMMAND ${PROGRAM} ${common} --out ${OUT}/d --temperature 0.1 0.2 0.3
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "one per contrasted label \\(2\\), got 3")
    message(FATAL_ERROR "three temperatures for two labels: exit ${rc}, message '${err}'")
endif()
execute_process(COMMAND ${PROGRAM} --head-norm bogus RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "--head-norm")
    message(FATAL_ERROR "gcl_experiment --head-norm bogus: exit ${rc}, message '${err}'")
endif()
execute_process(COMMAND ${PROGRAM} --pretrain-optimizer lbfgs RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "--pretrain-optimizer")
    message(FATAL_ERROR "gcl_experiment --pretrain-optimizer lbfgs: exit ${rc}, message '${err}'")
endif()
