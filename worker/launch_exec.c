// launch_exec.c - exec handlers (see launch_exec.h).
//
// Why the pieces look as they do:
// - pipe2(O_CLOEXEC): slot threads spawn concurrently, and a pipe end
//   leaked into a sibling's child would keep our read end from ever seeing
//   EOF. The child's ends are dup2'ed onto 0/1/2 by posix_spawn.
// - The child gets an empty signal mask and default SIGPIPE/SIGINT/SIGTERM/
//   SIGHUP: anvil-worker blocks or ignores those, and exec keeps both.
// - We never wait for EOF: a program's background children inherit stdout,
//   so the loop ends when the program itself is reaped, then drains what is
//   buffered and kills what is left of the group.
// - SIGPIPE is blocked on this thread while the payload is written, so a
//   program that exits without reading stdin gives EPIPE, not a dead
//   process; a pending SIGPIPE is consumed before the mask is restored.
#define _GNU_SOURCE // pipe2
#include "launch_exec.h"

#include "progress_line.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct exec_handler {
    const struct handler_config *cfg;
    int                          kill_grace_ms;
    pthread_mutex_t              mu;      // guards running
    pthread_cond_t               cv;      // (monotonic) a run ended
    int                          running; // programs running now
};

enum stop_reason {
    STOP_NONE,
    STOP_HANDLER_TIMEOUT,
    STOP_JOB_TIMEOUT,
    STOP_CANCELED
};

// One run of the program.
struct run {
    pid_t                   pid;
    int                     in_fd; // parent ends; -1 once closed
    int                     out_fd;
    int                     err_fd;
    const uint8_t          *payload;
    size_t                  payload_len;
    size_t                  written;
    char                   *out; // stdout, EXEC_RESULT_MAX at most
    size_t                  out_len;
    bool                    out_over;
    char                    err[2 * EXEC_STDERR_TAIL + 1]; // the end of stderr
    size_t                  err_len;
    int                     status;
    bool                    reaped;
    int                     stop;    // enum stop_reason
    int64_t                 kill_at; // monotonic; when SIGKILL follows SIGTERM
    bool                    killed;
    const struct exec_stop *hooks; // canceled, progress
    const char             *job_id;
    struct progress_scan    scan; // stderr's progress lines
};

// ---- the outcome of a wait status (pure) ----

// Copies the last lines of tail (at most EXEC_STDERR_TAIL bytes) to out,
// control characters but newlines and tabs as '?'.
static void
tail_text(const char *tail, char *out, size_t cap)
{
    size_t n     = tail != NULL ? strlen(tail) : 0;
    size_t start = n > EXEC_STDERR_TAIL ? n - EXEC_STDERR_TAIL : 0;
    while (n > start && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        n--;
    if (start > 0) { // begin at a line if one starts soon enough
        const char *nl = memchr(tail + start, '\n', n - start);
        if (nl != NULL && (size_t) (nl - tail) < n)
            start = (size_t) (nl - tail) + 1;
    }
    size_t k = 0;
    for (size_t i = start; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char) tail[i];
        out[k++] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?'
                                                                     : (char) c;
    }
    out[k] = '\0';
}

void
exec_status_to_outcome(
    int wait_status, const char *stderr_tail, struct exec_outcome *out)
{
    char tail[EXEC_STDERR_TAIL + 1];
    char what[96];
    tail_text(stderr_tail, tail, sizeof(tail));
    out->ok        = false;
    out->retryable = false;
    if (WIFEXITED(wait_status)) {
        int code       = WEXITSTATUS(wait_status);
        out->ok        = code == 0;
        out->retryable = code == EXEC_TEMPFAIL;
        snprintf(what, sizeof(what), "exit status %d%s", code,
            code == EXEC_TEMPFAIL ? " (temporary failure)" : "");
    } else if (WIFSIGNALED(wait_status)) {
        int sig        = WTERMSIG(wait_status);
        out->retryable = true;
        snprintf(what, sizeof(what), "killed by signal %d (%s)", sig,
            strsignal(sig));
    } else {
        snprintf(what, sizeof(what), "unknown wait status %d", wait_status);
    }
    if (out->ok)
        out->msg[0] = '\0';
    else if (tail[0] != '\0')
        snprintf(out->msg, sizeof(out->msg), "%s: %s", what, tail);
    else
        snprintf(out->msg, sizeof(out->msg), "%s", what);
}

// ---- handler objects ----

int
exec_handler_new(const struct handler_config *hc, struct exec_handler **out)
{
    *out                    = NULL;
    struct exec_handler *eh = calloc(1, sizeof(*eh));
    if (eh == NULL)
        return ANVIL_RESOURCE_EXHAUSTED;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&eh->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        free(eh);
        return ANVIL_INTERNAL;
    }
    pthread_mutex_init(&eh->mu, NULL);
    eh->cfg           = hc;
    eh->kill_grace_ms = EXEC_KILL_GRACE_MS;
    *out              = eh;
    return ANVIL_OK;
}

void
exec_handler_free(struct exec_handler *eh)
{
    if (eh == NULL)
        return;
    pthread_cond_destroy(&eh->cv);
    pthread_mutex_destroy(&eh->mu);
    free(eh);
}

void
exec_handler_set_kill_grace(struct exec_handler *eh, int ms)
{
    eh->kill_grace_ms = ms > 0 ? ms : EXEC_KILL_GRACE_MS;
}

// Takes one of the handler's slots; false if the job was canceled first.
static bool
take_slot(struct exec_handler *eh, struct anvil_job_ctx *ctx)
{
    bool ok = true;
    pthread_mutex_lock(&eh->mu);
    while (eh->cfg->slots > 0 && eh->running >= eh->cfg->slots) {
        if (anvil_job_ctx_is_canceled(ctx)) {
            ok = false;
            break;
        }
        struct timespec ts = av_deadline_in(CLOCK_MONOTONIC, EXEC_TICK_MS);
        pthread_cond_timedwait(&eh->cv, &eh->mu, &ts);
    }
    if (ok)
        eh->running++;
    pthread_mutex_unlock(&eh->mu);
    return ok;
}

static void
give_slot(struct exec_handler *eh)
{
    pthread_mutex_lock(&eh->mu);
    eh->running--;
    pthread_cond_broadcast(&eh->cv);
    pthread_mutex_unlock(&eh->mu);
}

// ---- environment and parent results ----

static void
strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

// Appends "KEY=value" (formatted) to env at *n.
static bool
env_add(char **env, size_t *n, const char *key, const char *value)
{
    size_t len = strlen(key) + strlen(value) + 2;
    char  *kv  = malloc(len);
    if (kv == NULL)
        return false;
    snprintf(kv, len, "%s=%s", key, value);
    env[(*n)++] = kv;
    return true;
}

static bool
env_copy(char **env, size_t *n, const char *kv)
{
    env[*n] = strdup(kv);
    return env[(*n)++] != NULL;
}

// True if env[0..n) sets the variable of "KEY=value" entry kv.
static bool
env_sets(char *const *env, size_t n, const char *kv)
{
    const char *eq  = strchr(kv, '=');
    size_t      len = eq != NULL ? (size_t) (eq - kv) : strlen(kv);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(env[i], kv, len) == 0 && env[i][len] == '=')
            return true;
    }
    return false;
}

// The program's environment: handler env and ANVIL_* first, then the
// worker's own variables that those do not override. NULL on OOM.
static char **
build_env(const struct handler_config *hc, const struct anvil_job *job,
    const char *parents_file)
{
    size_t n_environ = 0;
    while (environ != NULL && environ[n_environ] != NULL)
        n_environ++;
    char **env = calloc(hc->n_env + n_environ + 8, sizeof(char *));
    size_t n   = 0;
    char   attempt[16];
    snprintf(attempt, sizeof(attempt), "%u", job->attempt);
    bool ok = env != NULL && env_add(env, &n, "ANVIL_JOB_ID", job->id)
        && env_add(env, &n, "ANVIL_JOB_TYPE", job->type)
        && env_add(env, &n, "ANVIL_ATTEMPT", attempt);
    if (ok && job->workflow_id[0] != '\0')
        ok = env_add(env, &n, "ANVIL_WORKFLOW_ID", job->workflow_id)
            && env_add(env, &n, "ANVIL_STEP", job->step);
    if (ok && parents_file != NULL)
        ok = env_add(env, &n, "ANVIL_PARENT_RESULTS_FILE", parents_file);
    for (size_t i = 0; ok && i < hc->n_env; i++) {
        if (!env_sets(env, n, hc->env[i])) // ANVIL_* win
            ok = env_copy(env, &n, hc->env[i]);
    }
    size_t own = n;
    for (size_t i = 0; ok && i < n_environ; i++) {
        if (!env_sets(env, own, environ[i]))
            ok = env_copy(env, &n, environ[i]);
    }
    if (!ok) {
        strv_free(env);
        return NULL;
    }
    return env;
}

// Writes the parents' results of a step as {"step": "result", ...} to a
// new temporary file, whose path goes to path (cap bytes). Results that
// are not UTF-8 text are null.
static int
write_parents(const struct anvil_lease *l, char *path, size_t cap,
    struct anvil_error *err)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, cap, "%s/anvil-parents-XXXXXX",
        dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    json_t *obj = json_object();
    for (size_t i = 0; obj != NULL && i < l->n_parents; i++) {
        const struct anvil_parent_result *p = &l->parents[i];
        json_t *v = json_stringn((const char *) p->result, p->result_len);
        json_object_set_new(obj, p->step, v != NULL ? v : json_null());
    }
    int fd = obj != NULL ? mkstemp(path) : -1;
    if (fd < 0) {
        json_decref(obj);
        return av_error_set(err, ANVIL_INTERNAL,
            "cannot create the parent results file %s: %s", path,
            strerror(errno));
    }
    int rc = json_dumpfd(obj, fd, JSON_COMPACT);
    json_decref(obj);
    if (close(fd) != 0 || rc != 0) {
        unlink(path);
        return av_error_set(err, ANVIL_INTERNAL,
            "cannot write the parent results file %s", path);
    }
    return ANVIL_OK;
}

// ---- spawning ----

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int
spawn_attrs(posix_spawnattr_t *attr)
{
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGQUIT);
    int rc = posix_spawnattr_init(attr);
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr,
            POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &defaults);
    return rc;
}

// Starts the program with pipes on 0/1/2; fills r->pid and the parent ends.
static int
spawn(const struct handler_config *hc, char **env, struct run *r,
    struct anvil_error *err)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0
        || pipe2(er, O_CLOEXEC) != 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&in[i]);
            close_fd(&out[i]);
            close_fd(&er[i]);
        }
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED,
            "cannot create pipes: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t          attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    int rc = spawn_attrs(&attr);
    if (rc == 0)
        rc = posix_spawnp(&r->pid, hc->argv[0], &fa, &attr, hc->argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&er[1]);
    r->in_fd  = in[1];
    r->out_fd = out[0];
    r->err_fd = er[0];
    fcntl(r->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(r->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(r->err_fd, F_SETFL, O_NONBLOCK);
    if (rc != 0)
        return av_error_set(err, ANVIL_UNAVAILABLE, "cannot run %.150s: %s",
            hc->argv[0], strerror(rc));
    return ANVIL_OK;
}

// ---- the run loop ----

static void
feed_stdin(struct run *r)
{
    while (r->in_fd >= 0 && r->written < r->payload_len) {
        ssize_t n = write(
            r->in_fd, r->payload + r->written, r->payload_len - r->written);
        if (n > 0) {
            r->written += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close_fd(&r->in_fd); // EPIPE: the program does not read it all
    }
    close_fd(&r->in_fd); // all written: EOF for the program
}

static void
keep_stderr(struct run *r, const char *buf, size_t n)
{
    if (n >= EXEC_STDERR_TAIL) {
        memcpy(r->err, buf + n - EXEC_STDERR_TAIL, EXEC_STDERR_TAIL);
        r->err_len = EXEC_STDERR_TAIL;
        return;
    }
    if (r->err_len + n > 2 * EXEC_STDERR_TAIL) {
        size_t keep = EXEC_STDERR_TAIL - n;
        memmove(r->err, r->err + r->err_len - keep, keep);
        r->err_len = keep;
    }
    memcpy(r->err + r->err_len, buf, n);
    r->err_len += n;
}

static void
keep_stdout(struct run *r, const char *buf, size_t n)
{
    if (r->out_over || r->out_len + n > EXEC_RESULT_MAX) {
        r->out_over = true; // the rest is read and dropped
        return;
    }
    if (r->out == NULL)
        r->out = malloc(EXEC_RESULT_MAX + 1);
    if (r->out == NULL) {
        r->out_over = true;
        return;
    }
    memcpy(r->out + r->out_len, buf, n);
    r->out_len += n;
}

static void
pass_stderr(void *arg, const char *buf, size_t n)
{
    keep_stderr(arg, buf, n);
}

static void
report_progress(void *arg, int percent, const char *message)
{
    struct run *r = arg;
    if (r->hooks->progress != NULL)
        r->hooks->progress(r->hooks->arg, percent, message);
}

static void
malformed_progress(void *arg, const char *line, size_t len)
{
    struct run *r = arg;
    (void) line;
    AV_DEBUG("worker.exec.progress_malformed",
        "id=%s len=%zu msg=\"a line starting " PROGRESS_KEYWORD
        " is not '" PROGRESS_KEYWORD " <0-100> <message>': kept as stderr\"",
        r->job_id, len);
}

static void
scan_stderr(struct run *r, const char *buf, size_t n, bool end)
{
    struct progress_sink sink
        = { pass_stderr, report_progress, malformed_progress, r };
    if (end)
        progress_scan_end(&r->scan, &sink);
    else
        progress_scan_feed(&r->scan, buf, n, &sink);
}

// Reads what fd has now; closes it at EOF.
static void
drain(struct run *r, int *fd, bool is_stdout)
{
    char buf[16384];
    while (*fd >= 0) {
        ssize_t n = read(*fd, buf, sizeof(buf));
        if (n > 0) {
            if (is_stdout)
                keep_stdout(r, buf, (size_t) n);
            else
                scan_stderr(r, buf, (size_t) n, false);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN)
            close_fd(fd);
        return;
    }
}

static void
wait_io(struct run *r)
{
    struct pollfd fds[3];
    nfds_t        n = 0;
    if (r->in_fd >= 0)
        fds[n++] = (struct pollfd) { .fd = r->in_fd, .events = POLLOUT };
    if (r->out_fd >= 0)
        fds[n++] = (struct pollfd) { .fd = r->out_fd, .events = POLLIN };
    if (r->err_fd >= 0)
        fds[n++] = (struct pollfd) { .fd = r->err_fd, .events = POLLIN };
    if (n > 0) {
        poll(fds, n, EXEC_TICK_MS);
    } else {
        struct timespec ts = { 0, EXEC_TICK_MS * 1000000L };
        nanosleep(&ts, NULL);
    }
}

// Why the program must stop now, if it must.
static int
stop_reason(const struct handler_config *hc, const struct exec_stop *stop,
    const struct anvil_lease *l, int64_t elapsed)
{
    if (hc->timeout_ms > 0 && elapsed >= hc->timeout_ms)
        return STOP_HANDLER_TIMEOUT;
    if (l->job.timeout_ms > 0 && elapsed >= l->job.timeout_ms)
        return STOP_JOB_TIMEOUT;
    if (stop->canceled == NULL || !stop->canceled(stop->arg))
        return STOP_NONE;
    if (l->job.timeout_ms > 0 && elapsed >= l->job.timeout_ms)
        return STOP_JOB_TIMEOUT;
    return STOP_CANCELED;
}

static void
run_loop(const struct handler_config *hc, const struct exec_stop *stop,
    const struct anvil_lease *l, struct run *r)
{
    int64_t start = av_mono_ms();
    while (!r->reaped) {
        wait_io(r);
        feed_stdin(r);
        drain(r, &r->out_fd, true);
        drain(r, &r->err_fd, false);
        if (waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
            r->reaped = true;
            break;
        }
        int64_t now = av_mono_ms();
        if (r->stop == STOP_NONE) {
            r->stop = stop_reason(hc, stop, l, now - start);
            if (r->stop != STOP_NONE) {
                kill(-r->pid, SIGTERM);
                r->kill_at = now
                    + (stop->kill_grace_ms > 0 ? stop->kill_grace_ms
                                               : EXEC_KILL_GRACE_MS);
            }
        } else if (!r->killed && now >= r->kill_at) {
            kill(-r->pid, SIGKILL);
            r->killed = true;
        }
    }
    drain(r, &r->out_fd, true);
    drain(r, &r->err_fd, false);
    scan_stderr(r, NULL, 0, true);
    kill(-r->pid, SIGKILL); // whatever the program left running
}

// Turns a finished run into the job's outcome.
static int
outcome(const struct handler_config *hc, const struct anvil_lease *l,
    struct run *r, struct exec_result *res)
{
    r->err[r->err_len] = '\0'; // err has room: see keep_stderr
    res->retryable     = true;
    if (r->stop == STOP_CANCELED) {
        snprintf(res->msg, sizeof(res->msg), "canceled");
        return ANVIL_CANCELLED;
    }
    if (r->stop != STOP_NONE) {
        int64_t ms = r->stop == STOP_HANDLER_TIMEOUT ? hc->timeout_ms
                                                     : l->job.timeout_ms;
        snprintf(res->msg, sizeof(res->msg), "timed out after %lld ms",
            (long long) ms);
        return ANVIL_DEADLINE_EXCEEDED;
    }
    struct exec_outcome o;
    exec_status_to_outcome(r->status, r->err, &o);
    res->retryable = o.retryable;
    if (o.ok && r->out_over) {
        snprintf(res->msg, sizeof(res->msg), "result over 1 MiB");
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    if (!o.ok) {
        snprintf(res->msg, sizeof(res->msg), "%s", o.msg);
        return ANVIL_ABORTED;
    }
    res->out     = r->out != NULL ? r->out : calloc(1, 1);
    res->out_len = r->out_len;
    r->out       = NULL;
    if (res->out == NULL) {
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        return ANVIL_RESOURCE_EXHAUSTED;
    }
    res->out[res->out_len] = '\0';
    return ANVIL_OK;
}

// Spawns, runs and judges, with SIGPIPE blocked on this thread.
static int
run_program(const struct handler_config *hc, const struct exec_stop *stop,
    const struct anvil_lease *l, char **env, struct exec_result *res)
{
    struct run r  = { .in_fd = -1, .out_fd = -1, .err_fd = -1 };
    r.hooks       = stop;
    r.job_id      = l->job.id;
    r.payload     = l->job.payload;
    r.payload_len = l->job.payload_len;
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    struct anvil_error e  = { 0 };
    int                rc = spawn(hc, env, &r, &e);
    if (rc == ANVIL_OK) {
        AV_DEBUG("worker.exec.start", "id=%s pid=%ld", l->job.id, (long) r.pid);
        run_loop(hc, stop, l, &r);
        rc = outcome(hc, l, &r, res);
    } else {
        res->retryable = true;
        snprintf(res->msg, sizeof(res->msg), "%s", e.msg);
    }
    close_fd(&r.in_fd);
    close_fd(&r.out_fd);
    close_fd(&r.err_fd);
    free(r.out);
    struct timespec zero    = { 0, 0 };
    bool            pending = !sigismember(&old, SIGPIPE);
    while (pending)
        pending = sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int
exec_run(const struct handler_config *hc, const struct exec_stop *stop,
    const struct anvil_lease *lease, struct exec_result *res)
{
    struct anvil_error e = { 0 };
    char               parents[256];
    bool               step = lease->job.workflow_id[0] != '\0';
    *res                    = (struct exec_result) { .rc = ANVIL_OK };
    int rc
        = step ? write_parents(lease, parents, sizeof(parents), &e) : ANVIL_OK;
    if (rc != ANVIL_OK) {
        res->retryable = true;
        snprintf(res->msg, sizeof(res->msg), "%s", e.msg);
        res->rc = rc;
        return rc;
    }
    char **env = build_env(hc, &lease->job, step ? parents : NULL);
    if (env == NULL) {
        res->retryable = true;
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        rc = ANVIL_RESOURCE_EXHAUSTED;
    } else {
        rc = run_program(hc, stop, lease, env, res);
    }
    strv_free(env);
    if (step)
        unlink(parents);
    res->rc = rc;
    return rc;
}

void
exec_result_fini(struct exec_result *res)
{
    if (res == NULL)
        return;
    free(res->out);
    res->out     = NULL;
    res->out_len = 0;
}

static bool
ctx_canceled(void *arg)
{
    return anvil_job_ctx_is_canceled(arg);
}

static void
ctx_progress(void *arg, int percent, const char *message)
{
    (void) anvil_job_ctx_set_progress(arg, percent, message); // parsed: valid
}

int
exec_handler_run(
    void *arg, const struct anvil_lease *lease, struct anvil_job_ctx *ctx)
{
    struct exec_handler *eh = arg;
    if (!take_slot(eh, ctx)) {
        anvil_job_ctx_set_error(ctx, true, "canceled");
        return ANVIL_CANCELLED;
    }
    struct exec_stop stop
        = { eh->kill_grace_ms, ctx_canceled, ctx, ctx_progress };
    struct exec_result res;
    int                rc = exec_run(eh->cfg, &stop, lease, &res);
    give_slot(eh);
    if (rc == ANVIL_OK)
        rc = anvil_job_ctx_set_result(ctx, res.out, res.out_len);
    else
        anvil_job_ctx_set_error(ctx, res.retryable, "%s", res.msg);
    exec_result_fini(&res);
    return rc;
}
