// server.c - the anvild a benchmark run talks to: started with fork/exec on
// a free loopback port and a temporary database, watched through /proc
// (CPU time, peak memory), stopped with SIGTERM. Everything the child needs
// is prepared before fork, so the child only makes async-signal-safe calls.
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 30000

// What an interrupt must clean up: the anvild we started and its files,
// as paths built beforehand (the handler may only make async-signal-safe
// calls: kill, unlink, rmdir, _exit).
static volatile sig_atomic_t live_pid;
static char                  live_paths[6][160]; // files, then the dir
static volatile sig_atomic_t live_n;

static int wait_serving(struct bench_server *s, const char *when);

static void
nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

// A loopback port nobody listens on: bind port 0, read it, close. Another
// process could take it before anvild does; then anvild fails to start and
// we say so.
static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { 0 };
    a.sin_family         = AF_INET;
    a.sin_addr.s_addr    = htonl(INADDR_LOOPBACK);
    a.sin_port           = 0;
    socklen_t len        = sizeof(a);
    int       port       = -1;
    if (bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0
        && getsockname(fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void
child_exec(const char *path, char *const argv[], const char *log)
{
    sigset_t none;
    signal(SIGINT, SIG_DFL); // not our cleanup handler
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        close(fd);
    }
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    execv(path, argv);
    _exit(127);
}

// Prints the first lines of anvild's log to stderr, prefixed.
static void
dump_log(const char *path, int max_lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[512];
    int  n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (n++ < max_lines)
            fprintf(stderr, "anvild: %s", line);
    }
    if (n > max_lines)
        fprintf(stderr, "anvild: ... (%d lines in all)\n", n);
    fclose(f);
}

static bool
health_ok(const char *url)
{
    anvil_client *c = NULL;
    if (anvil_client_open(&c, url, NULL) != ANVIL_OK)
        return false;
    anvil_client_set_timeout(c, 500, NULL);
    struct anvil_health *h  = NULL;
    bool                 ok = anvil_health_get(c, &h, NULL) == ANVIL_OK;
    anvil_health_free(h);
    anvil_client_close(c);
    return ok;
}

static int
spawn(const struct bench_opts *o, struct bench_server *s)
{
    char db[96];
    snprintf(db, sizeof(db), "%s/anvil.db", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/anvild.log", s->dir);
    char *argv[14]
        = { "anvild", "--listen", s->url, o->store != NULL ? "--store" : "--db",
              o->store != NULL ? (char *) o->store : db, "--log-level", "warn",
              "--durability", (char *) o->durability, NULL };
    int argc = 9;
    if (s->http_port > 0) {
        argv[argc++] = "--http";
        argv[argc++] = s->http_url;
    }
    if (o->no_metrics)
        argv[argc++] = "--no-metrics";
    if (o->no_events)
        argv[argc++] = "--no-events";
    argv[argc] = NULL;
    if (access(o->anvild, X_OK) != 0) {
        fprintf(stderr,
            "anvil-bench: %s: %s (build it with make, or pass "
            "--anvild PATH)\n",
            o->anvild, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "anvil-bench: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0)
        child_exec(o->anvild, argv, s->log);
    s->pid = pid;
    return 0;
}

// Our anvild serves HTTP too when a workload wants it: on a second free
// loopback port.
static int
pick_http_port(const struct bench_opts *o, struct bench_server *s)
{
    s->http_port   = 0;
    s->http_url[0] = '\0';
    if (!o->serve_http && strcmp(o->transport, "http") != 0)
        return 0;
    int port = free_port();
    if (port <= 0 || port == s->port) {
        fprintf(stderr, "anvil-bench: no free loopback port for HTTP\n");
        return -1;
    }
    s->http_port = port;
    snprintf(s->http_url, sizeof(s->http_url), "http://127.0.0.1:%d", port);
    return 0;
}

static void
on_interrupt(int sig)
{
    if (live_pid > 0) {
        // Up to 3 s for a clean stop, then SIGKILL.
        struct timespec nap = { 0, 10000000 };
        kill((pid_t) live_pid, SIGTERM);
        for (int i = 0; i < 300; i++) {
            if (waitpid((pid_t) live_pid, NULL, WNOHANG) != 0)
                break;
            nanosleep(&nap, NULL);
        }
        kill((pid_t) live_pid, SIGKILL);
        waitpid((pid_t) live_pid, NULL, 0);
    }
    for (int i = 0; i < live_n; i++) {
        if (i < live_n - 1)
            unlink(live_paths[i]);
        else
            rmdir(live_paths[i]);
    }
    _exit(128 + sig);
}

static void
track(const struct bench_server *s)
{
    static const char *const names[] = { "anvil.db", "anvil.db-wal",
        "anvil.db-shm", "anvil.db-journal", "anvild.log" };
    struct sigaction         sa      = { 0 };
    live_n                           = 0;
    for (int i = 0; i < 5; i++)
        snprintf(
            live_paths[i], sizeof(live_paths[i]), "%s/%s", s->dir, names[i]);
    snprintf(live_paths[5], sizeof(live_paths[5]), "%s", s->dir);
    live_n        = 6;
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int
bench_server_start(const struct bench_opts *o, struct bench_server *s)
{
    memset(s, 0, sizeof(*s));
    if (o->server_url != NULL) {
        snprintf(s->url, sizeof(s->url), "%s", o->server_url);
        if (o->http_url != NULL)
            snprintf(s->http_url, sizeof(s->http_url), "%s", o->http_url);
        if (health_ok(s->url))
            return 0;
        fprintf(stderr, "anvil-bench: no Health reply from %s\n", s->url);
        return -1;
    }
    snprintf(s->dir, sizeof(s->dir), "/tmp/anvil-bench-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "anvil-bench: mkdtemp: %s\n", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    track(s);
    int port = free_port();
    if (port <= 0) {
        fprintf(stderr, "anvil-bench: no free loopback port: %s\n",
            strerror(errno));
        bench_server_stop(s);
        return -1;
    }
    s->port = port;
    snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", port);
    int rc = pick_http_port(o, s);
    if (rc == 0)
        rc = spawn(o, s);
    live_pid = s->pid;
    if (rc != 0 || wait_serving(s, "start") != 0) {
        bench_server_stop(s);
        return -1;
    }
    return 0;
}

// Removes the files track() listed, then the directory.
static void
remove_dir(const char *dir)
{
    live_n = 0; // the handler must not race us
    for (int i = 0; i < 5; i++)
        unlink(live_paths[i]);
    if (rmdir(dir) != 0)
        fprintf(stderr, "anvil-bench: could not remove %s: %s\n", dir,
            strerror(errno));
}

// Waits for the child up to STOP_TIMEOUT_MS, then kills it.
static int
reap(pid_t pid)
{
    int64_t deadline = bench_now_ns() + (int64_t) STOP_TIMEOUT_MS * 1000000;
    int     status   = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (bench_now_ns() >= deadline) {
            fprintf(stderr,
                "anvil-bench: anvild did not stop in %d ms; "
                "killing it\n",
                STOP_TIMEOUT_MS);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nap_ms(5);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "anvil-bench: anvild exited with status %d\n", status);
    return -1;
}

int
bench_server_stop(struct bench_server *s)
{
    int rc = 0;
    if (s->pid > 0) {
        live_pid = 0;
        kill(s->pid, SIGTERM);
        rc     = reap(s->pid);
        s->pid = 0;
    }
    if (s->dir[0] != '\0') {
        if (s->log[0] != '\0')
            dump_log(s->log, 5); // warnings or worse, if any
        remove_dir(s->dir);
        s->dir[0] = '\0';
    }
    return rc;
}

double
bench_server_cpu_s(const struct bench_server *s)
{
    if (s->pid <= 0)
        return NAN;
    char path[64];
    char buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int) s->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NAN;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    // Fields after "(comm)": state is field 3; utime and stime are 14, 15.
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return NAN;
    unsigned long long ut = 0;
    unsigned long long st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
            &ut, &st)
        != 2)
        return NAN;
    return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

double
bench_server_status_kb(const struct bench_server *s, const char *field)
{
    if (s->pid <= 0)
        return NAN;
    char   path[64];
    char   line[256];
    size_t flen = strlen(field);
    snprintf(path, sizeof(path), "/proc/%d/status", (int) s->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NAN;
    double kb = NAN;
    while (fgets(line, sizeof(line), f) != NULL) {
        long v;
        if (strncmp(line, field, flen) == 0 && line[flen] == ':'
            && sscanf(line + flen + 1, "%ld kB", &v) == 1) {
            kb = (double) v;
            break;
        }
    }
    fclose(f);
    return kb;
}

double
bench_server_peak_rss_kb(const struct bench_server *s)
{
    return bench_server_status_kb(s, "VmHWM");
}

// ---- restart ----

// True once a socket listens on the IPv4 loopback port, as the kernel's
// /proc/net/tcp lists it: a probe cheap enough to run every millisecond,
// and one anvild does not see. (A client's Health call redials only every
// 100 ms; a bare TCP connect that closes before nng's handshake makes nng
// 1.5.2's listener pause its accepts for 100 ms.)
static bool
port_listening(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char  line[256];
    bool  found = false;
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        unsigned int addr;
        unsigned int lport;
        unsigned int state;
        if (sscanf(line, " %*u: %8X:%4X %*8X:%*4X %2X", &addr, &lport, &state)
            == 3)
            found = lport == (unsigned int) port && state == 0x0A; // LISTEN
    }
    fclose(f);
    return found;
}

// Waits until anvild answers Health, or exits, or the time is up. It
// checks every millisecond whether anvild listens yet, and sends a Health
// only then: a restart is timed to the millisecond, and a connect to a
// port nobody listens on makes nng back off for 100 ms.
static int
wait_serving(struct bench_server *s, const char *when)
{
    int64_t deadline    = bench_now_ns() + (int64_t) START_TIMEOUT_MS * 1000000;
    struct timespec nap = { 0, 1000000 };
    for (;;) {
        // HTTP listens after nng: wait for both.
        if (port_listening(s->port)
            && (s->http_port == 0 || port_listening(s->http_port))
            && health_ok(s->url))
            return 0;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "anvil-bench: anvild exited at %s (status %d)\n",
                when, status);
            s->pid   = 0;
            live_pid = 0;
            dump_log(s->log, 20);
            return -1;
        }
        if (bench_now_ns() >= deadline) {
            fprintf(stderr, "anvil-bench: anvild gave no Health in %d ms\n",
                START_TIMEOUT_MS);
            dump_log(s->log, 20);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
}

int
bench_server_restart(const struct bench_opts *o, struct bench_server *s,
    double *stop_ms, double *start_ms)
{
    if (s->pid <= 0 || s->dir[0] == '\0') {
        fprintf(stderr, "anvil-bench: restart needs an anvild of our own\n");
        return -1;
    }
    int64_t t0 = bench_now_ns();
    live_pid   = 0;
    kill(s->pid, SIGTERM);
    int rc   = reap(s->pid);
    *stop_ms = (double) (bench_now_ns() - t0) / 1e6;
    s->pid   = 0;
    dump_log(s->log, 5); // warnings or worse, before spawn truncates it
    int port = free_port();
    if (rc != 0 || port <= 0) {
        fprintf(stderr,
            "anvil-bench: anvild did not stop cleanly, or no "
            "free port: not restarting\n");
        return -1;
    }
    s->port = port;
    snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", port);
    if (pick_http_port(o, s) != 0)
        return -1;
    t0       = bench_now_ns();
    rc       = spawn(o, s);
    live_pid = s->pid;
    if (rc != 0 || wait_serving(s, "restart") != 0)
        return -1;
    *start_ms = (double) (bench_now_ns() - t0) / 1e6;
    return 0;
}
