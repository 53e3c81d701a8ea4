// report.c - what anvil-bench prints: the machine, then per workload a
// table for people or one JSON object per line (jansson).
#include "bench.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

struct machine {
    long nproc;
    char cpu[128];
    char kernel[200];
    char load[64]; // /proc/loadavg's 1, 5 and 15 minute averages
};

static void
machine_get(struct machine *m)
{
    memset(m, 0, sizeof(*m));
    m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(m->cpu, sizeof(m->cpu), "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char  line[256];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || colon == NULL)
            continue;
        colon += strspn(colon + 1, " \t") + 1;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(m->cpu, sizeof(m->cpu), "%s", colon);
        break;
    }
    if (f != NULL)
        fclose(f);
    snprintf(m->load, sizeof(m->load), "unknown");
    f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        char one[16], five[16], fifteen[16];
        if (fscanf(f, "%15s %15s %15s", one, five, fifteen) == 3)
            snprintf(m->load, sizeof(m->load), "%s %s %s", one, five, fifteen);
        fclose(f);
    }
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%.60s %.60s %.60s", u.sysname,
            u.release, u.machine);
}

void
report_machine(const struct bench_opts *o)
{
    if (o->json)
        return; // every JSON object carries the machine
    struct machine m;
    machine_get(&m);
    printf("anvil-bench %s: %ld CPUs, %s, %s, load average %s\n", ANVIL_VERSION,
        m.nproc, m.cpu, m.kernel, m.load);
    printf("server: %s, durability %s%s, jobs submitted over %s\n",
        o->server_url != NULL ? o->server_url : "own anvild on tcp loopback",
        o->durability,
        o->server_url != NULL ? " (as that server was started)" : "",
        strcmp(o->workload, "http") == 0 ? "nng and http" : o->transport);
    fflush(stdout);
}

void
report_median(const struct result *runs, int n, struct result *med)
{
    double *v = calloc((size_t) n, sizeof(double));
    *med      = runs[0];
    for (int i = 0; i < med->n; i++) {
        for (int j = 0; j < n && v != NULL; j++)
            v[j] = i < runs[j].n ? runs[j].figs[i].v : NAN;
        med->figs[i].v = v != NULL ? bench_median(v, (size_t) n) : NAN;
    }
    free(v);
}

static const char *
fmt_value(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (fabs(v) >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.3f", v);
    return buf;
}

static void
print_table(const struct result *r, int runs)
{
    char buf[64];
    int  width = 46; // the longest label, at least this
    for (int i = 0; i < r->n; i++) {
        int len = (int) strlen(r->figs[i].label);
        width   = len > width ? len : width;
    }
    printf("\n== %s (%s of %d run%s) ==\n", r->workload,
        runs > 1 ? "medians" : "one run", runs, runs > 1 ? "s" : "");
    printf("sizes: %s\n", r->sizes);
    for (int i = 0; i < r->n; i++) {
        const struct fig *f = &r->figs[i];
        printf("  %-*s %12s %s\n", width, f->label,
            fmt_value(buf, sizeof(buf), f->v), f->unit);
    }
    printf("how: %s\n", r->notes);
    fflush(stdout);
}

// "jobs=100000 payload=32B" -> {"jobs": 100000, "payload": "32B"}.
static json_t *
sizes_json(const char *sizes)
{
    json_t *o = json_object();
    char    copy[sizeof(((struct result *) 0)->sizes)];
    char   *save = NULL;
    snprintf(copy, sizeof(copy), "%s", sizes);
    for (char *t = strtok_r(copy, " ", &save); t != NULL;
         t       = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        if (eq == NULL)
            continue;
        *eq++ = '\0';
        char *end;
        long  n = strtol(eq, &end, 10);
        json_object_set_new(o, t,
            *end == '\0' && end != eq ? json_integer(n) : json_string(eq));
    }
    return o;
}

static void
print_json(const struct bench_opts *o, const struct result *r, int runs)
{
    struct machine m;
    machine_get(&m);
    json_t *j = json_object();
    json_object_set_new(j, "workload", json_string(r->workload));
    json_object_set_new(j, "runs", json_integer(runs));
    json_object_set_new(j, "durability", json_string(o->durability));
    json_object_set_new(j, "transport",
        json_string(
            strcmp(r->workload, "http") == 0 ? "nng+http" : o->transport));
    json_object_set_new(j, "server",
        json_string(o->server_url != NULL ? o->server_url : "own"));
    json_object_set_new(j, "sizes", sizes_json(r->sizes));
    for (int i = 0; i < r->n; i++) {
        const struct fig *f = &r->figs[i];
        json_object_set_new(
            j, f->key, isnan(f->v) ? json_null() : json_real(f->v));
    }
    json_t *mj = json_object();
    json_object_set_new(mj, "nproc", json_integer(m.nproc));
    json_object_set_new(mj, "cpu", json_string(m.cpu));
    json_object_set_new(mj, "kernel", json_string(m.kernel));
    json_object_set_new(mj, "loadavg", json_string(m.load));
    json_object_set_new(j, "machine", mj);
    json_object_set_new(j, "notes", json_string(r->notes));
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(j);
    fflush(stdout);
}

void
report_result(const struct bench_opts *o, const struct result *med, int runs)
{
    if (o->json)
        print_json(o, med, runs);
    else
        print_table(med, runs);
}
