// fuzz_dag.c - libFuzzer target: workflow graph validation. Each input
// line is one step, "name:parent,parent,...".
#include "../../server/dag.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS 512
#define MAX_AFTER 16

struct parsed {
    struct dag_step steps[MAX_STEPS];
    const char     *after[MAX_STEPS][MAX_AFTER];
    size_t          n;
};

static void
parse_line(struct parsed *p, char *line)
{
    struct dag_step *s     = &p->steps[p->n];
    char            *colon = strchr(line, ':');
    s->name                = line;
    s->after               = p->after[p->n];
    s->n_after             = 0;
    if (colon != NULL) {
        *colon = '\0';
        for (char *tok = strtok(colon + 1, ",");
             tok != NULL && s->n_after < MAX_AFTER; tok = strtok(NULL, ","))
            p->after[p->n][s->n_after++] = tok;
    }
    p->n++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size]       = '\0';
    struct parsed *p = calloc(1, sizeof(*p));
    char          *save;
    for (char *line                             = strtok_r(text, "\n", &save);
         line != NULL && p->n < MAX_STEPS; line = strtok_r(NULL, "\n", &save))
        parse_line(p, line);
    struct dag        *d   = NULL;
    struct anvil_error err = { 0 };
    if (dag_build(p->steps, p->n, &d, &err) == ANVIL_OK)
        dag_free(d);
    free(p);
    free(text);
    return 0;
}
