// readyq_rate.c - the ready queues' rate limits (readyq.h): a sorted
// array of the limited queues, each with its token bucket. readyq.c's
// takes skip a queue whose bucket holds less than one token and spend one
// per take; this file refills, sets, lists and refunds them.
#include "readyq_impl.h"

#include <stdlib.h>
#include <string.h>

// Where queue is in the sorted rates, or where it would go.
static size_t
rate_at(const struct readyq *q, const char *queue, bool *found)
{
    size_t lo = 0, hi = q->n_rates;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int    c   = strcmp(q->rates[mid].queue, queue);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

struct rate *
readyq_rate_find(struct readyq *q, const char *queue)
{
    bool   found;
    size_t at = rate_at(q, queue, &found);
    return found ? &q->rates[at] : NULL;
}

void
readyq_rate_refill(struct readyq_rate *r, int64_t now)
{
    if (now <= r->at)
        return;
    double t  = r->tokens + (double) (now - r->at) * r->rate / 1000.0;
    r->tokens = t < (double) r->burst ? t : (double) r->burst;
    r->at     = now;
}

void
readyq_clock(struct readyq *q, int64_t now_ms)
{
    q->now = now_ms;
    for (size_t i = 0; i < q->n_rates; i++)
        readyq_rate_refill(&q->rates[i].r, now_ms);
}

int
readyq_rate_set(
    struct readyq *q, const char *queue, const struct readyq_rate *r)
{
    bool   found;
    size_t at = rate_at(q, queue, &found);
    if (r == NULL || r->rate <= 0) {
        if (found) {
            free(q->rates[at].queue);
            memmove(&q->rates[at], &q->rates[at + 1],
                (q->n_rates - at - 1) * sizeof(*q->rates));
            q->n_rates--;
        }
        return 0;
    }
    if (found) {
        q->rates[at].r = *r;
        return 0;
    }
    if (q->n_rates == q->cap_rates) {
        size_t       cap = q->cap_rates ? q->cap_rates * 2 : 8;
        struct rate *v   = realloc(q->rates, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        q->rates     = v;
        q->cap_rates = cap;
    }
    char *name = strdup(queue);
    if (name == NULL)
        return -1;
    memmove(&q->rates[at + 1], &q->rates[at],
        (q->n_rates - at) * sizeof(*q->rates));
    q->rates[at] = (struct rate) { .queue = name, .r = *r };
    q->n_rates++;
    return 0;
}

bool
readyq_rate_get(struct readyq *q, const char *queue, struct readyq_rate *out)
{
    const struct rate *r = readyq_rate_find(q, queue);
    if (r != NULL)
        *out = r->r;
    return r != NULL;
}

size_t
readyq_rate_count(const struct readyq *q)
{
    return q->n_rates;
}

const char *
readyq_rate_name(
    const struct readyq *q, size_t i, struct readyq_rate *out, bool *dirty)
{
    if (i >= q->n_rates)
        return NULL;
    *out   = q->rates[i].r;
    *dirty = q->rates[i].dirty;
    return q->rates[i].queue;
}

void
readyq_rate_clean(struct readyq *q)
{
    for (size_t i = 0; i < q->n_rates; i++)
        q->rates[i].dirty = false;
}

void
readyq_rate_refund(struct readyq *q, const char *key)
{
    if (q->n_rates == 0)
        return;
    char        name[300];
    const char *sep = strchr(key, '\x1f');
    size_t      len = sep != NULL ? (size_t) (sep - key) : strlen(key);
    if (len >= sizeof(name))
        return;
    memcpy(name, key, len);
    name[len]      = '\0';
    struct rate *r = readyq_rate_find(q, name);
    if (r == NULL)
        return;
    r->r.tokens += 1.0;
    if (r->r.tokens > (double) r->r.burst)
        r->r.tokens = (double) r->r.burst;
    r->dirty = true;
}

int64_t
readyq_rate_next(const struct readyq *q)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < q->n_rates; i++) {
        const struct readyq_rate *r = &q->rates[i].r;
        if (r->tokens >= 1.0)
            continue;
        // Rounded up: at that millisecond the token is whole.
        double  wait = (1.0 - r->tokens) * 1000.0 / r->rate;
        int64_t at   = r->at + (int64_t) wait + 1;
        if (at < next)
            next = at;
    }
    return next;
}
