// fuzz_workflow_json.c - libFuzzer target: the workflow definition parser
// behind `anvil workflow submit FILE` (anvil_workflow_spec_parse_json).
#include <anvil/workflow.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    anvil_workflow_spec *wf  = NULL;
    struct anvil_error   err = { 0 };
    if (anvil_workflow_spec_parse_json((const char *) data, size, &wf, &err)
        == ANVIL_OK)
        anvil_workflow_spec_free(wf);
    return 0;
}
