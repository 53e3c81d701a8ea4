// harness.c - see harness.h. Child processes are started with fork/exec;
// everything the child needs (argv, paths) is prepared before fork, so the
// child only calls async-signal-safe functions before execv.
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../server/store.h"
#include "pg_harness.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/log.h"

#ifndef ANVIL_BIN_DIR
#error "ANVIL_BIN_DIR must name the directory of the anvil binaries"
#endif

#define MAX_ARGS 32

static pthread_once_t once = PTHREAD_ONCE_INIT;

// Runs once per process: nng_fini at exit keeps LeakSanitizer quiet about
// nng's global state; ANVIL_TEST_LOG=debug shows the in-process server's
// and workers' log lines on stderr.
static void
process_init(void)
{
    const char *level = getenv("ANVIL_TEST_LOG");
    int         lv;

    atexit(nng_fini);
    if (level != NULL && av_log_parse_level(level, &lv) == 0) {
        av_log_set_level(lv);
        av_log_set_component("test");
        av_log_to_stderr();
    }
}

static void
pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool
harness_wait_for(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = av_mono_ms() + timeout_ms;

    for (;;) {
        if (cond(arg))
            return true;
        if (av_mono_ms() >= deadline)
            return cond(arg);
        pause_ms(5);
    }
}

char *
harness_path(const struct harness *h, const char *name, char *buf, size_t len)
{
    // Through a local copy: buf may lie inside *h (a proc's log path).
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", h->dir, name);
    size_t n = strlen(path) < len ? strlen(path) : len - 1;
    memcpy(buf, path, n);
    buf[n] = '\0';
    return buf;
}

int
harness_open(struct harness *h)
{
    struct anvil_error err = { 0 };
    int                rv;

    pthread_once(&once, process_init);
    memset(h, 0, sizeof(*h));
    server_config_init(&h->cfg);
    snprintf(h->dir, sizeof(h->dir), "/tmp/anvil-XXXXXX");
    if (mkdtemp(h->dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        h->dir[0] = '\0';
        return -1;
    }
    snprintf(h->url, sizeof(h->url), "ipc://%s/s", h->dir);
    snprintf(h->db, sizeof(h->db), "%s/anvil.db", h->dir);
    if (harness_pg() && pg_harness_new_db(h->store, sizeof(h->store)) != 0)
        return -1;
    rv = anvil_client_open(&h->client, h->url, &err);
    if (rv != ANVIL_OK) {
        fprintf(stderr, "harness: client_open %s: %s: %s\n", h->url,
            anvil_code_name(rv), err.msg);
        return -1;
    }
    anvil_client_set_timeout(h->client, HARNESS_CLIENT_TIMEOUT_MS, NULL);
    return 0;
}

int
harness_start_with(struct harness *h, const struct server_config *cfg)
{
    struct anvil_error err = { 0 };
    int                rv;

    if (harness_open(h) != 0)
        return -1;
    if (cfg != NULL)
        h->cfg = *cfg;
    h->cfg.listen_url = h->url;
    h->cfg.db_path    = h->db;
    h->cfg.store_url  = h->store[0] != '\0' ? h->store : NULL;
    rv                = server_start(&h->cfg, &h->server, &err);
    if (rv != ANVIL_OK) {
        fprintf(stderr, "harness: server_start %s: %s: %s\n", h->url,
            anvil_code_name(rv), err.msg);
        h->server = NULL;
        return -1;
    }
    return 0;
}

int
harness_start(struct harness *h)
{
    return harness_start_with(h, NULL);
}

void
harness_stop_server(struct harness *h)
{
    server_stop(h->server);
    h->server = NULL;
}

void
harness_remove_tree(const char *path)
{
    struct stat    st;
    DIR           *d;
    struct dirent *e;
    char           sub[512];

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            harness_remove_tree(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

// Prints a child's stderr file, to explain why it failed.
static void
dump_log(const char *path)
{
    char *text = harness_read_file(path, NULL);

    fprintf(stderr, "harness: --- %s ---\n%s\n", path, text ? text : "");
    free(text);
}

// True if the child has exited (and is now reaped) or was reaped before.
static bool
proc_gone(pid_t pid, int *status)
{
    pid_t r = waitpid(pid, status, WNOHANG);

    return r == pid || (r < 0 && errno == ECHILD);
}

int
harness_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = av_mono_ms() + timeout_ms;
    int     status   = 0;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (av_mono_ms() >= deadline)
            return -1;
        pause_ms(5);
    }
}

int
harness_kill(pid_t pid, int sig)
{
    if (pid <= 0)
        return -1;
    if (kill(pid, sig) != 0 && errno != ESRCH)
        return -1;
    return harness_wait_exit(pid, HARNESS_SPAWN_TIMEOUT_MS);
}

// Stops the children still running, newest first. Returns how many did not
// exit cleanly (status 0 after SIGTERM, or on their own), with their logs
// on stderr: a sanitizer report in a child shows up here.
static int
stop_procs(struct harness *h)
{
    int unclean = 0;

    for (int i = h->n_procs - 1; i >= 0; i--) {
        struct harness_proc *p = &h->procs[i];
        int                  status;
        pid_t                r;

        if (p->pid <= 0)
            continue;
        r = waitpid(p->pid, &status, WNOHANG);
        if (r < 0)
            continue; // the test reaped it
        if (r == 0) {
            status = harness_kill(p->pid, SIGTERM);
            if (status == -1) {
                fprintf(
                    stderr, "harness: pid %d ignored SIGTERM\n", (int) p->pid);
                harness_kill(p->pid, SIGKILL);
            }
        }
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "harness: pid %d ended with status 0x%x\n",
                (int) p->pid, (unsigned) status);
            dump_log(p->log);
            unclean++;
        }
    }
    h->n_procs = 0;
    return unclean;
}

int
harness_stop(struct harness *h)
{
    int unclean;

    while (h->n_workers > 0)
        harness_stop_worker(h, h->workers[h->n_workers - 1]);
    unclean = stop_procs(h);
    harness_stop_server(h);
    anvil_client_close(h->client);
    h->client = NULL;
    if (h->lsan_changed) { // harness_expect_nng_listener_leak's, undone
        if (h->lsan_had)
            setenv("LSAN_OPTIONS", h->lsan_was, 1);
        else
            unsetenv("LSAN_OPTIONS");
        h->lsan_changed = false;
    }
    if (h->dir[0] == '\0')
        return unclean ? -1 : 0;
    if (getenv("ANVIL_TEST_KEEP") != NULL)
        fprintf(stderr, "harness: keeping %s\n", h->dir);
    else
        harness_remove_tree(h->dir);
    h->dir[0] = '\0';
    return unclean ? -1 : 0;
}

const char *
harness_proc_out(const struct harness *h, pid_t pid)
{
    for (int i = 0; i < h->n_procs; i++) {
        if (h->procs[i].pid == pid)
            return h->procs[i].out;
    }
    return NULL;
}

static void
redirect(int fd, int to)
{
    if (fd < 0)
        return;
    dup2(fd, to);
    if (fd != to)
        close(fd);
}

// The child between fork and exec: async-signal-safe calls only.
static void
child_exec(
    const char *path, char *const argv[], const char *out, const char *log)
{
    sigset_t none;
    int      fd;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fd = open("/dev/null", O_RDONLY);
    redirect(fd, 0);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    redirect(fd, 1);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    redirect(fd, 2);
    execv(path, argv);
    _exit(127);
}

pid_t
harness_spawn(struct harness *h, const char *prog, char *const argv[])
{
    struct harness_proc *p;
    char                 path[256];
    char                 name[64];
    pid_t                pid;

    if (h->n_procs >= HARNESS_MAX_PROCS) {
        fprintf(stderr, "harness: too many child processes\n");
        return -1;
    }
    p = &h->procs[h->n_procs];
    snprintf(path, sizeof(path), "%s/%s", ANVIL_BIN_DIR, prog);
    snprintf(name, sizeof(name), "%s-%d.out", prog, h->n_procs);
    harness_path(h, name, p->out, sizeof(p->out));
    snprintf(name, sizeof(name), "%s-%d.log", prog, h->n_procs);
    harness_path(h, name, p->log, sizeof(p->log));
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0)
        child_exec(path, argv, p->out, p->log);
    p->pid = pid;
    h->n_procs++;
    return pid;
}

static bool
health_answers(anvil_client *c)
{
    struct anvil_health *hl = NULL;
    int                  rv = anvil_health_get(c, &hl, NULL);
    bool                 ok = rv == ANVIL_OK;

    anvil_health_free(hl);
    return ok;
}

pid_t
harness_spawn_anvild(struct harness *h, ...)
{
    char   *argv[MAX_ARGS];
    int     n = 0;
    va_list ap;
    pid_t   pid;
    int64_t deadline;

    argv[n++] = "anvild";
    argv[n++] = "--listen";
    argv[n++] = h->url;
    argv[n++] = h->store[0] != '\0' ? "--store" : "--db";
    argv[n++] = h->store[0] != '\0' ? h->store : h->db;
    va_start(ap, h);
    for (char *a = va_arg(ap, char *); a != NULL; a = va_arg(ap, char *)) {
        if (n < MAX_ARGS - 1)
            argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    pid     = harness_spawn(h, "anvild", argv);
    if (pid < 0)
        return -1;
    deadline = av_mono_ms() + HARNESS_SPAWN_TIMEOUT_MS;
    while (!health_answers(h->client)) {
        int status;

        if (proc_gone(pid, &status)) {
            fprintf(stderr, "harness: anvild exited (status %d)\n", status);
            dump_log(h->procs[h->n_procs - 1].log);
            return -1;
        }
        if (av_mono_ms() >= deadline) {
            fprintf(stderr, "harness: anvild gave no Health in %d ms\n",
                HARNESS_SPAWN_TIMEOUT_MS);
            dump_log(h->procs[h->n_procs - 1].log);
            return -1;
        }
        pause_ms(10);
    }
    return pid;
}

pid_t
harness_spawn_worker(struct harness *h, int slots)
{
    char  slots_s[16];
    char *argv[]
        = { "anvil-worker", "--server", h->url, "--slots", slots_s, NULL };

    snprintf(slots_s, sizeof(slots_s), "%d", slots);
    return harness_spawn(h, "anvil-worker", argv);
}

static anvil_worker *
start_worker(struct harness *h, int slots, const char *const *queues,
    size_t n_queues, va_list ap)
{
    struct anvil_worker_opts opts = { 0 };
    struct anvil_error       err  = { 0 };
    anvil_worker            *w    = NULL;
    int                      rv;

    if (h->n_workers >= HARNESS_MAX_WORKERS) {
        fprintf(stderr, "harness: too many workers\n");
        return NULL;
    }
    opts.url          = h->url;
    opts.slots        = slots;
    opts.queues       = queues;
    opts.n_queues     = n_queues;
    opts.poll_wait_ms = 500; // bounds how long a stop waits for a poll
    opts.heartbeat_ms = 1000;
    rv                = anvil_worker_new(&w, &opts, &err);
    if (rv != ANVIL_OK)
        goto fail;
    for (const char *type = va_arg(ap, const char *); type != NULL;
         type             = va_arg(ap, const char *)) {
        anvil_handler_fn fn  = va_arg(ap, anvil_handler_fn);
        void            *arg = va_arg(ap, void *);

        rv = anvil_worker_add_handler(w, type, fn, arg, &err);
        if (rv != ANVIL_OK)
            goto fail;
    }
    rv = anvil_worker_start(w, &err);
    if (rv != ANVIL_OK)
        goto fail;
    h->workers[h->n_workers++] = w;
    return w;
fail:
    fprintf(stderr, "harness: worker: %s: %s\n", anvil_code_name(rv), err.msg);
    anvil_worker_free(w);
    return NULL;
}

anvil_worker *
harness_start_worker(struct harness *h, int slots, ...)
{
    anvil_worker *w;
    va_list       ap;

    va_start(ap, slots);
    w = start_worker(h, slots, NULL, 0, ap);
    va_end(ap);
    return w;
}

anvil_worker *
harness_start_worker_on(struct harness *h, int slots, const char *const *queues,
    size_t n_queues, ...)
{
    anvil_worker *w;
    va_list       ap;

    va_start(ap, n_queues);
    w = start_worker(h, slots, queues, n_queues, ap);
    va_end(ap);
    return w;
}

void
harness_stop_worker(struct harness *h, anvil_worker *w)
{
    for (int i = 0; i < h->n_workers; i++) {
        if (h->workers[i] != w)
            continue;
        h->workers[i] = h->workers[h->n_workers - 1];
        h->n_workers--;
        break;
    }
    anvil_worker_stop(w, 5000);
    anvil_worker_free(w);
}

char *
harness_read_file(const char *path, size_t *len)
{
    char  *buf = NULL;
    size_t n   = 0;

    if (av_read_file(path, SIZE_MAX - 1, &buf, &n, NULL) != ANVIL_OK)
        return NULL;
    if (len != NULL)
        *len = n;
    return buf;
}

bool
harness_file_has_line(const char *path, const char *line)
{
    char  *text  = harness_read_file(path, NULL);
    size_t want  = strlen(line);
    bool   found = false;

    for (char *p = text; p != NULL && *p != '\0' && !found;) {
        char  *nl  = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);

        if (len > 0 && p[len - 1] == '\r')
            len--;
        found = len == want && memcmp(p, line, want) == 0;
        p     = nl ? nl + 1 : NULL;
    }
    free(text);
    return found;
}

struct line_wait {
    const char *path;
    const char *line;
};

static bool
line_present(void *arg)
{
    struct line_wait *lw = arg;

    return harness_file_has_line(lw->path, lw->line);
}

bool
harness_wait_for_line(const char *path, const char *line, int timeout_ms)
{
    struct line_wait lw = { path, line };

    return harness_wait_for(line_present, &lw, timeout_ms);
}

int
harness_free_tcp_port(void)
{
    struct sockaddr_in sa   = { .sin_family = AF_INET };
    socklen_t          len  = sizeof(sa);
    int                fd   = socket(AF_INET, SOCK_STREAM, 0);
    int                port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0
        && getsockname(fd, (struct sockaddr *) &sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int
harness_req_open(nng_socket *s, const char *url, int recv_ms, size_t recv_max)
{
    int rv = nng_req0_open(s);

    if (rv != 0)
        return rv;
    rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, recv_ms);
    if (rv == 0)
        rv = nng_socket_set_ms(
            *s, NNG_OPT_SENDTIMEO, HARNESS_CLIENT_TIMEOUT_MS);
    if (rv == 0)
        rv = nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, recv_max);
    if (rv == 0)
        rv = nng_dial(*s, url, NULL, 0);
    if (rv != 0) {
        nng_close(*s);
        *s = (nng_socket) NNG_SOCKET_INITIALIZER;
    }
    return rv;
}

int
harness_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

int
harness_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        p += n;
        len -= (size_t) n;
    }
    return 1;
}

void
harness_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t) (v & 0xff);
        v >>= 8;
    }
}

uint64_t
harness_get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int
harness_open_setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    if (h == NULL || harness_open(h) != 0) {
        if (h != NULL)
            harness_stop(h);
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

int
harness_open_teardown(void **state)
{
    struct harness *h  = *state;
    int             rv = harness_stop(h);
    free(h);
    return rv;
}

bool
harness_pg(void)
{
    return pg_harness_wanted();
}

int
harness_store_new_path(const char *dir, const char *name, char *buf, size_t len)
{
    if (harness_pg())
        return pg_harness_new_db(buf, len);
    snprintf(buf, len, "%s/%s", dir, name);
    return 0;
}

int
harness_store_open_at(const char *path, int synchronous, struct store **st,
    struct anvil_error *err)
{
    if (pg_harness_is_conninfo(path))
        return store_open_pg(path, st, err);
    return store_open(path, synchronous, st, err);
}

int
harness_store_setup(void **state, int synchronous)
{
    struct harness_store *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/anvil-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/anvil.db", f->dir);
    struct anvil_error err = { 0 };
    f->pg                  = harness_pg();
    if (f->pg && pg_harness_new_db(f->path, sizeof(f->path)) != 0) {
        harness_remove_tree(f->dir);
        free(f);
        return -1;
    }
    if ((f->pg ? store_open_pg(f->path, &f->st, &err)
               : store_open(f->path, synchronous, &f->st, &err))
        != ANVIL_OK) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        harness_remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int
harness_store_teardown(void **state)
{
    struct harness_store *f = *state;
    store_hook_step         = NULL;
    store_hook_fdatasync    = NULL;
    store_close(f->st);
    harness_remove_tree(f->dir);
    free(f);
    return 0;
}

int
harness_run_in(const char *dir, const char *cmd)
{
    char line[1200];
    snprintf(line, sizeof(line), "cd '%s' && %s >>openssl.log 2>&1", dir, cmd);
    int st = system(line);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

int
harness_make_cert(const char *dir, const char *name, const char *subject,
    const char *ca, const char *ext)
{
    char cmd[900];
    snprintf(cmd, sizeof(cmd),
        "openssl ecparam -name prime256v1 -genkey -noout -out %s.key", name);
    if (harness_run_in(dir, cmd) != 0)
        return -1;
    if (ca == NULL) {
        snprintf(cmd, sizeof(cmd),
            "openssl req -x509 -new -key %s.key -sha256 -days 30 -subj '%s' "
            "-out %s.crt",
            name, subject, name);
        return harness_run_in(dir, cmd);
    }
    snprintf(cmd, sizeof(cmd),
        "openssl req -new -key %s.key -subj '%s' -out %s.csr", name, subject,
        name);
    if (harness_run_in(dir, cmd) != 0)
        return -1;
    char extfile[64] = "";
    if (ext != NULL) {
        snprintf(cmd, sizeof(cmd), "printf '%%s\\n' '%s' > %s.ext", ext, name);
        if (harness_run_in(dir, cmd) != 0)
            return -1;
        snprintf(extfile, sizeof(extfile), "-extfile %s.ext", name);
    }
    snprintf(cmd, sizeof(cmd),
        "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key "
        "-CAcreateserial -days 30 -sha256 %s -out %s.crt",
        name, ca, ca, extfile, name);
    return harness_run_in(dir, cmd);
}

int
harness_sql_text(const char *path, const char *sql, char *buf, size_t len)
{
    if (pg_harness_is_conninfo(path))
        return pg_harness_sql_text(path, sql, buf, len);
    sqlite3      *db = NULL;
    sqlite3_stmt *s  = NULL;
    int           rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK
        && sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(buf, len, "%s", t != NULL ? (const char *) t : "");
        rc = 0;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int64_t
harness_sql_int(const char *path, const char *sql)
{
    char buf[32];
    if (harness_sql_text(path, sql, buf, sizeof(buf)) != 0)
        return -1;
    return strtoll(buf, NULL, 10);
}

int
harness_sql_exec(const char *path, const char *sql)
{
    if (pg_harness_is_conninfo(path))
        return pg_harness_sql_exec(path, sql);
    sqlite3 *db  = NULL;
    char    *msg = NULL;
    int      rc  = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(
            stderr, "harness_sql_exec: %s\n", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

int
harness_failed_migration(
    const char *path, const char *blocker, int version, int64_t jobs)
{
    struct store      *st  = NULL;
    struct anvil_error err = { 0 };
    if (harness_sql_exec(path, blocker) != 0)
        return -1;
    int rc = store_open(path, 1, &st, &err);
    if (rc == ANVIL_OK || st != NULL || strstr(err.msg, "migrating") == NULL) {
        fprintf(stderr, "store_open: %d '%s', want a failed migration\n", rc,
            err.msg);
        store_close(st);
        return -1;
    }
    int64_t v = harness_sql_int(path, "PRAGMA user_version");
    int64_t n = harness_sql_int(path, "SELECT COUNT(*) FROM jobs");
    if (v != version || n != jobs) {
        fprintf(stderr, "after the failed migration: version %lld, %lld jobs\n",
            (long long) v, (long long) n);
        return -1;
    }
    return 0;
}

int
harness_store_reopen(struct harness_store *f)
{
    struct anvil_error err = { 0 };
    store_close(f->st);
    f->st = NULL;
    if ((f->pg ? store_open_pg(f->path, &f->st, &err)
               : store_open(f->path, 1, &f->st, &err))
        == ANVIL_OK)
        return 0;
    fprintf(stderr, "store_open: %s\n", err.msg);
    return -1;
}

int
harness_store_old(const char *path, const char *queue, const char *downgrade)
{
    struct store        *st  = NULL;
    struct anvil_error   err = { 0 };
    struct store_new_job nj  = {
         .type        = "t",
         .queue       = queue,
         .payload     = (const uint8_t *) "{}",
         .payload_len = 2,
         .state       = ANVIL_JOB_QUEUED,
         .retry       = { .max_attempts = 3 },
         .created_at  = 10,
         .run_at      = 10,
    };
    int64_t id = 0;
    int     rc = store_open(path, 1, &st, &err);
    if (rc == ANVIL_OK)
        rc = store_job_insert(st, &nj, &id, &err);
    store_close(st);
    if (rc != ANVIL_OK) {
        fprintf(stderr, "harness_store_old: %s\n", err.msg);
        return -1;
    }
    return harness_sql_exec(path, downgrade);
}

int
harness_greet_and_leave(const char *path, int n)
{
    static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
    struct sockaddr_un         sa       = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
            (void) !write(fd, hello, sizeof(hello));
        close(fd);
    }
    return 0;
}

int
harness_expect_nng_listener_leak(struct harness *h)
{
    char supp[160], opts[512];
    snprintf(supp, sizeof(supp), "%s/lsan.supp", h->dir);
    FILE *fp = fopen(supp, "w");
    if (fp == NULL)
        return -1;
    fputs("leak:libnng.so.1\n", fp);
    fclose(fp);
    const char *was = getenv("LSAN_OPTIONS");
    if (!h->lsan_changed) {
        h->lsan_changed = true;
        h->lsan_had     = was != NULL;
        snprintf(h->lsan_was, sizeof(h->lsan_was), "%s", was ? was : "");
    }
    snprintf(opts, sizeof(opts), "%s%ssuppressions=%s:print_suppressions=0",
        was != NULL ? was : "", was != NULL && was[0] != '\0' ? ":" : "", supp);
    return setenv("LSAN_OPTIONS", opts, 1);
}
