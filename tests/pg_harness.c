// pg_harness.c - the private PostgreSQL cluster of the tests (see
// pg_harness.h).
#include "pg_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_DEFAULT_BIN "/usr/lib/postgresql/15/bin"

static struct {
    bool  started;
    bool  failed; // a first start failed: do not try again
    pid_t owner;  // the process that stops it
    char  dir[64];
    char  bin[256];
    char  user[64];
    int   n_dbs;
} cluster;

bool
pg_harness_wanted(void)
{
    const char *s = getenv("ANVIL_TEST_STORE");
    return s != NULL && (strcmp(s, "postgresql") == 0 || strcmp(s, "pg") == 0);
}

// Runs a shell command as the cluster's user, its output appended to
// <dir>/harness.log. Returns its exit status, or -1.
static int
run_as(const char *cmd)
{
    char line[1536];
    if (geteuid() == 0)
        snprintf(line, sizeof(line),
            "cd / && runuser -u %s -- sh -c '%s' >>%s/harness.log 2>&1",
            cluster.user, cmd, cluster.dir);
    else
        snprintf(line, sizeof(line), "cd / && sh -c '%s' >>%s/harness.log 2>&1",
            cmd, cluster.dir);
    int rc = system(line);
    return rc == -1 ? -1 : (rc >> 8) & 0xff;
}

static void
show_log(void)
{
    char  path[128];
    char  buf[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/harness.log", cluster.dir);
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(buf, sizeof(buf), f) != NULL)
        fprintf(stderr, "pg_harness: %s", buf);
    fclose(f);
}

static void
stop(void)
{
    char cmd[512];
    if (!cluster.started || getpid() != cluster.owner)
        return;
    snprintf(cmd, sizeof(cmd), "%s/pg_ctl -D %s/data -m immediate -w stop",
        cluster.bin, cluster.dir);
    (void) run_as(cmd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cluster.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pg_harness: could not remove %s\n", cluster.dir);
    cluster.started = false;
}

// A test that aborts (a failed assert under CMOCKA_TEST_ABORT, a crash, a
// kill) runs no atexit handler. So a watchdog process, forked before the
// cluster starts, blocks on a pipe whose write end only the test process
// holds (close-on-exec: not anvild's), and when it reads end of file,
// however the test process ended, stops the cluster if it still runs.
static void
watchdog(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return; // atexit alone
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[1]);
        (void) setsid(); // outlives a signal to the test's process group
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        char    c;
        ssize_t r;
        do
            r = read(fds[0], &c, 1);
        while (r > 0 || (r < 0 && errno == EINTR));
        cluster.owner = getpid();
        if (access(cluster.dir, F_OK) == 0)
            stop();
        _exit(0);
    }
    close(fds[0]);
    (void) fcntl(fds[1], F_SETFD, FD_CLOEXEC);
}

// Which user runs the cluster; as root, `postgres`, which owns dir.
static int
pick_user(void)
{
    if (geteuid() != 0) {
        struct passwd *pw = getpwuid(geteuid());
        snprintf(cluster.user, sizeof(cluster.user), "%s",
            pw != NULL ? pw->pw_name : "postgres");
        return 0;
    }
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        fprintf(stderr,
            "pg_harness: running as root and there is no `postgres` user to "
            "run PostgreSQL as: install it with `apt-get install "
            "postgresql`\n");
        return -1;
    }
    snprintf(cluster.user, sizeof(cluster.user), "postgres");
    if (chown(cluster.dir, pw->pw_uid, pw->pw_gid) != 0) {
        fprintf(
            stderr, "pg_harness: chown %s: %s\n", cluster.dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int
start(void)
{
    const char *bin = getenv("ANVIL_PG_BIN");
    char        path[320], cmd[1024];
    snprintf(
        cluster.bin, sizeof(cluster.bin), "%s", bin ? bin : PG_DEFAULT_BIN);
    snprintf(path, sizeof(path), "%s/initdb", cluster.bin);
    if (access(path, X_OK) != 0) {
        fprintf(stderr,
            "pg_harness: PostgreSQL 15 is not installed (%s: %s): install it "
            "with `apt-get install postgresql` (or set ANVIL_PG_BIN to the "
            "directory holding initdb and pg_ctl)\n",
            path, strerror(errno));
        return -1;
    }
    snprintf(cluster.dir, sizeof(cluster.dir), "/tmp/anvil-pg-XXXXXX");
    if (mkdtemp(cluster.dir) == NULL) {
        fprintf(stderr, "pg_harness: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    chmod(cluster.dir, 0755);
    if (pick_user() != 0)
        return -1;
    snprintf(cmd, sizeof(cmd),
        "%s/initdb -D %s/data -U postgres -A trust -E UTF8 --locale=C "
        "--no-sync",
        cluster.bin, cluster.dir);
    if (run_as(cmd) != 0) {
        fprintf(stderr, "pg_harness: initdb failed:\n");
        show_log();
        return -1;
    }
    // The socket and the server's log in dir; fsync on, as in production.
    snprintf(cmd, sizeof(cmd),
        "%s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \""
        "-c listen_addresses= -c unix_socket_directories=%s -c fsync=on "
        "-c max_connections=200\" start",
        cluster.bin, cluster.dir, cluster.dir, cluster.dir);
    cluster.owner   = getpid();
    cluster.started = true;
    atexit(stop);
    watchdog();
    if (run_as(cmd) != 0) {
        fprintf(stderr, "pg_harness: pg_ctl start failed:\n");
        show_log();
        snprintf(path, sizeof(path), "%s/server.log", cluster.dir);
        fprintf(stderr, "pg_harness: (server log: %s)\n", path);
        return -1;
    }
    return 0;
}

int
pg_harness_restart(void)
{
    char cmd[1024];
    if (!cluster.started)
        return -1;
    snprintf(cmd, sizeof(cmd),
        "%s/pg_ctl -D %s/data -l %s/server.log -m fast -w -t 60 restart",
        cluster.bin, cluster.dir, cluster.dir);
    if (run_as(cmd) != 0) {
        fprintf(stderr, "pg_harness: pg_ctl restart failed:\n");
        show_log();
        return -1;
    }
    return 0;
}

int
pg_harness_conninfo(const char *db, char *buf, size_t len)
{
    if (!cluster.started)
        return -1;
    snprintf(buf, len, "host=%s dbname=%s user=postgres", cluster.dir, db);
    return 0;
}

// Runs sql on database db of the cluster. 0, or -1 after a line on stderr.
static int
admin(const char *db, const char *sql)
{
    char conninfo[160];
    pg_harness_conninfo(db, conninfo, sizeof(conninfo));
    PGconn *c  = PQconnectdb(conninfo);
    int     rc = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_harness: connecting to %s: %s", conninfo,
            PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            rc = 0;
        else
            fprintf(stderr, "pg_harness: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

// Each test gets a schema of its own in database `anvil`, named in the
// conninfo's search_path: as empty and independent as a new database,
// for 20 ms instead of the 270 ms a CREATE DATABASE takes with fsync on
// (it writes the whole template through the WAL).
int
pg_harness_new_db(char *buf, size_t len)
{
    if (cluster.failed)
        return -1;
    if (!cluster.started
        && (start() != 0 || admin("postgres", "CREATE DATABASE anvil") != 0)) {
        cluster.failed = true;
        return -1;
    }
    char name[64], sql[128];
    snprintf(name, sizeof(name), "t%d_%d", (int) getpid(), ++cluster.n_dbs);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
    if (admin("anvil", sql) != 0)
        return -1;
    snprintf(buf, len,
        "host=%s dbname=anvil user=postgres options='-c search_path=%s'",
        cluster.dir, name);
    return 0;
}

bool
pg_harness_is_conninfo(const char *path)
{
    return strncmp(path, "host=", 5) == 0
        || strncmp(path, "postgresql://", 13) == 0;
}

int
pg_harness_sql_text(
    const char *conninfo, const char *sql, char *buf, size_t len)
{
    PGconn   *c  = PQconnectdb(conninfo);
    PGresult *r  = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int       rc = -1;
    if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
        rc = 0;
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

int
pg_harness_sql_exec(const char *conninfo, const char *sql)
{
    PGconn        *c  = PQconnectdb(conninfo);
    PGresult      *r  = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "pg_harness_sql_exec: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}
