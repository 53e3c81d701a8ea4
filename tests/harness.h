// harness.h - a real anvil server, workers and a client for one test.
//
// harness_start() gives a test a fresh temporary directory, an anvild
// running in-process on an ipc:// URL inside it with its database there, and
// an open client. harness_stop() undoes all of it: workers it started (in
// process or as child processes), the server, the client and the directory.
// Child processes (anvild, anvil-worker) are spawned from ANVIL_BIN_DIR, the
// binaries of the flavor the test was built with.
//
// Nothing here waits a fixed time: every wait polls a condition against a
// deadline. The harness never calls cmocka asserts, so it can live in any
// test binary; functions report failure through their return values and a
// line on stderr. A struct harness belongs to the test thread.
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <anvil/anvil.h>
#include <anvil/worker.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../server/server.h"

#define HARNESS_MAX_PROCS 8
#define HARNESS_MAX_WORKERS 8

// How long calls through h->client wait for a reply.
#define HARNESS_CLIENT_TIMEOUT_MS 5000

// How long harness_spawn_anvild() waits for Health to answer.
#define HARNESS_SPAWN_TIMEOUT_MS 20000

struct harness_proc {
    pid_t pid;
    char  out[128]; // file holding the child's stdout
    char  log[128]; // file holding the child's stderr
};

struct harness {
    char dir[64];  // "/tmp/anvil-XXXXXX"
    char url[128]; // "ipc:///tmp/anvil-XXXXXX/s"
    char db[128];  // "/tmp/anvil-XXXXXX/anvil.db"
    // With ANVIL_TEST_STORE=postgresql (pg_harness.h): the conninfo of a
    // fresh database that servers use instead of db (--store); else "".
    char                 store[256];
    struct server_config cfg;    // what the in-process server runs with
    struct server       *server; // NULL unless started in-process
    anvil_client        *client; // open for the whole test
    struct harness_proc  procs[HARNESS_MAX_PROCS];
    int                  n_procs;
    anvil_worker        *workers[HARNESS_MAX_WORKERS];
    int                  n_workers;
    // LSAN_OPTIONS before harness_expect_nng_listener_leak, put back by
    // harness_stop (lsan_had: it was set).
    bool lsan_changed, lsan_had;
    char lsan_was[512];
};

// Creates the directory, fills url and db, and opens h->client, without
// starting a server (for tests that spawn anvild themselves). Returns 0, or
// -1 with a line on stderr.
int harness_open(struct harness *h);

// harness_open() plus an in-process server with the default config. Returns
// once the server listens: 0, or -1 with a line on stderr.
int harness_start(struct harness *h);

// As harness_start(), with cfg's limits (listen_url and db_path are
// replaced by the harness's own). cfg may be NULL.
int harness_start_with(struct harness *h, const struct server_config *cfg);

// Stops in-process workers, child processes (SIGTERM, then SIGKILL after a
// deadline), the in-process server and the client, then removes the
// directory. Safe on a harness that failed to start. Returns 0, or -1 if a
// child did not exit cleanly (its log is printed): teardowns return this,
// so a crash or sanitizer report in a child fails the test.
int harness_stop(struct harness *h);

// Stops the in-process server alone (the client and workers stay).
void harness_stop_server(struct harness *h);

// Forks and execs ANVIL_BIN_DIR/<prog> with argv (argv[0] first, NULL
// last), stdout and stderr in files of the directory, stdin /dev/null.
// Returns at once: the pid, or -1. The harness reaps it in harness_stop().
pid_t harness_spawn(struct harness *h, const char *prog, char *const argv[]);

// Forks and execs ANVIL_BIN_DIR/anvild --listen h->url --db h->db (or
// --store h->store when the tests run on PostgreSQL), followed
// by the extra arguments (a NULL-terminated list of strings), with its
// stderr in a file of the directory, and waits until Health answers.
// Returns the child's pid, or -1 if it could not start or exited early.
pid_t harness_spawn_anvild(struct harness *h, ...);

// Forks and execs ANVIL_BIN_DIR/anvil-worker --server h->url --slots slots
// with stdout in a file of the directory (see harness_proc_out()). Returns
// the pid, or -1.
pid_t harness_spawn_worker(struct harness *h, int slots);

// Sends sig to pid and waits for it to exit. Returns its wait status, or -1
// if it could not be reaped within HARNESS_SPAWN_TIMEOUT_MS.
int harness_kill(pid_t pid, int sig);

// Waits up to timeout_ms for pid to exit. Returns its wait status, or -1.
int harness_wait_exit(pid_t pid, int timeout_ms);

// The stdout file of a child spawned by this harness; NULL if unknown.
const char *harness_proc_out(const struct harness *h, pid_t pid);

// Starts an in-process worker with `slots` slots on h->url, serving the
// queue "default". The variable arguments are triples
// (const char *type, anvil_handler_fn fn, void *arg) ended by a NULL type.
// The harness owns the worker (harness_stop stops and frees it). Returns
// the worker, or NULL with a line on stderr.
anvil_worker *harness_start_worker(struct harness *h, int slots, ...);

// As harness_start_worker(), serving the n_queues queues given.
anvil_worker *harness_start_worker_on(struct harness *h, int slots,
    const char *const *queues, size_t n_queues, ...);

// Stops and frees one in-process worker started by this harness.
void harness_stop_worker(struct harness *h, anvil_worker *w);

// Calls cond(arg) until it returns true or timeout_ms passes, pausing a few
// milliseconds between calls. Returns the last result of cond.
bool harness_wait_for(bool (*cond)(void *), void *arg, int timeout_ms);

// Reads a whole file into a NUL-terminated buffer the caller frees; *len
// (may be NULL) gets its length. NULL if it cannot be read.
char *harness_read_file(const char *path, size_t *len);

// True if the file holds a line equal to `line` (without its newline).
bool harness_file_has_line(const char *path, const char *line);

// Waits up to timeout_ms for the file to hold that line.
bool harness_wait_for_line(const char *path, const char *line, int timeout_ms);

// Opens a req0 socket dialled to url, with recv_ms receive and
// HARNESS_CLIENT_TIMEOUT_MS send timeouts and a receive limit of recv_max
// bytes. Returns 0, or an nng error with *s closed and reset.
int harness_req_open(
    nng_socket *s, const char *url, int recv_ms, size_t recv_max);

// Writes all len bytes to fd (a socket; no SIGPIPE): 0, or -1.
int harness_write_all(int fd, const void *buf, size_t len);

// Reads exactly len bytes from fd: 1, 0 at end of stream, or -1 on error or
// timeout (errno says which).
int harness_read_all(int fd, void *buf, size_t len);

// Big-endian 64-bit integers, as SP frame headers carry their length.
void     harness_put_be64(uint8_t *p, uint64_t v);
uint64_t harness_get_be64(const uint8_t *p);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
// released), or -1.
int harness_free_tcp_port(void);

// n peers that connect to the Unix socket at path, send the SP greeting
// of a REQ socket and close at once (what stops nng 1.5.2's listener:
// server/listen_guard.h). 0, or -1 if the path is too long for one.
int harness_greet_and_leave(const char *path, int n);

// For a test that stops an anvild's nng listener on purpose: the anvild
// processes it spawns from now on tell LeakSanitizer (under
// -fsanitize=address) to expect leaks inside libnng, which never frees a
// listener stopped that way (server/listen_guard.h). Scoped to the calling
// test (harness_stop puts LSAN_OPTIONS back): elsewhere the pattern would
// hide leaks of anvild's own objects made in nng callbacks. 0 or -1.
int harness_expect_nng_listener_leak(struct harness *h);

// Removes path and everything below it, without following symlinks.
void harness_remove_tree(const char *path);

// A fresh directory and store per test, for cmocka setup and teardown.
struct store;
struct harness_store {
    char          dir[64];
    char          path[256]; // <dir>/anvil.db, or a PostgreSQL conninfo
    bool          pg;        // the store is PostgreSQL's (harness_pg())
    struct store *st;
};

// True when the tests run on the PostgreSQL backend
// (ANVIL_TEST_STORE=postgresql, see pg_harness.h).
bool harness_pg(void);

// cmocka fixtures for tests that spawn anvild themselves: *state becomes a
// new struct harness after harness_open() (0, or -1 after a line on
// stderr); the teardown stops it, frees it and returns harness_stop()'s
// result, so a child that did not exit cleanly fails the test.
int harness_open_setup(void **state);
int harness_open_teardown(void **state);

// Makes *state a new struct harness_store: a temporary directory and a
// store opened at `synchronous` (1 NORMAL, 2 FULL); with harness_pg(), a
// new database on the private PostgreSQL cluster instead. 0, or -1 after
// a line on stderr.
int harness_store_setup(void **state, int synchronous);

// A fresh place for a store: with harness_pg(), a new database on the
// private PostgreSQL cluster (its conninfo), else "<dir>/<name>". 0, or -1
// after a line on stderr.
int harness_store_new_path(
    const char *dir, const char *name, char *buf, size_t len);

// Opens the store at path: a PostgreSQL conninfo (store_open_pg) or an
// SQLite file (store_open at `synchronous`).
int harness_store_open_at(const char *path, int synchronous, struct store **st,
    struct anvil_error *err);

// Clears the store's test hooks, closes the store, removes the directory
// and frees *state. Returns 0.
int harness_store_teardown(void **state);

// Closes and opens f's store again. 0, or -1 with a line on stderr.
int harness_store_reopen(struct harness_store *f);

// An older database at path: today's schema holding one QUEUED job of
// type "t" in `queue`, then `downgrade` (SQL that drops what later
// versions added and sets the old user_version). 0, or -1.
int harness_store_old(
    const char *path, const char *queue, const char *downgrade);

// A failed migration leaves the database as it was: puts `blocker` (SQL
// in the way of the step) into the database at path, then checks that
// store_open fails naming the migration and that the schema version is
// still `version` with `jobs` jobs. 0, or -1 with a line on stderr.
int harness_failed_migration(
    const char *path, const char *blocker, int version, int64_t jobs);

// SQL that takes a database of today's schema back to version N's tables
// (the tests of older versions build their databases from today's): each
// drops what the versions after N added, newest first; the caller sets
// the user_version. A new schema version adds its own line here.
#define HARNESS_SQL_BACK_TO_V11 "ALTER TABLE schedules DROP COLUMN workflow;"
#define HARNESS_SQL_BACK_TO_V10 \
    HARNESS_SQL_BACK_TO_V11 "DROP TABLE queue_limits;"
#define HARNESS_SQL_BACK_TO_V9 HARNESS_SQL_BACK_TO_V10 "DROP TABLE schedules;"
#define HARNESS_SQL_BACK_TO_V8                      \
    HARNESS_SQL_BACK_TO_V9                          \
    "ALTER TABLE jobs DROP COLUMN concurrency_key;" \
    "ALTER TABLE jobs DROP COLUMN concurrency_limit;"
#define HARNESS_SQL_BACK_TO_V7                       \
    HARNESS_SQL_BACK_TO_V8                           \
    "ALTER TABLE jobs DROP COLUMN progress_percent;" \
    "ALTER TABLE jobs DROP COLUMN progress_message;" \
    "ALTER TABLE events DROP COLUMN progress;"
#define HARNESS_SQL_BACK_TO_V6 \
    HARNESS_SQL_BACK_TO_V7 "DROP TABLE paused_queues;"

// Runs sql on a second connection to the database at path (a file, or a
// PostgreSQL conninfo such as harness_store's path on PostgreSQL): its first
// row's first column as an integer (-1 if the statement yields no row or
// fails), or as text into buf (0, or -1 when there is no row), or, for
// harness_sql_exec, 0 when the whole script ran (else -1 after a line on
// stderr).
int64_t harness_sql_int(const char *path, const char *sql);
int harness_sql_text(const char *path, const char *sql, char *buf, size_t len);
int harness_sql_exec(const char *path, const char *sql);

// Runs shell command cmd in directory dir, its output appended to
// dir/openssl.log. Returns its exit status, or -1.
int harness_run_in(const char *dir, const char *cmd);

// Makes a P-256 key and certificate dir/name.{key,crt} for subject with
// the openssl command line, signed by dir/ca.{crt,key} (ca NULL: self
// signed, a CA); ext, if not NULL, is one x509v3 extension line.
// Returns 0, or non-zero (openssl's output is in dir/openssl.log).
int harness_make_cert(const char *dir, const char *name, const char *subject,
    const char *ca, const char *ext);

// Builds "<dir>/<name>" into buf. Returns buf.
char *harness_path(
    const struct harness *h, const char *name, char *buf, size_t len);

#endif
