// pg_harness.h - a private PostgreSQL 15 cluster for the tests that run on
// the PostgreSQL backend.
//
// ANVIL_TEST_STORE=postgresql makes the harness (harness.h) give each test
// a fresh, empty place on this cluster (a schema of its own in database
// `anvil`) instead of an SQLite file: the store
// tests open it with store_open_pg, in-process servers and spawned anvilds
// with --store. The cluster is started once per test process, on first
// use: initdb into a temporary directory, then pg_ctl start with
// listen_addresses='' (a Unix socket in that directory only) and
// fsync=on. It is stopped (immediate mode) and its directory removed when
// the process that started it exits. PostgreSQL refuses to run as root:
// as root, the cluster runs as the system user `postgres` (runuser);
// otherwise as the current user.
//
// The binaries come from ANVIL_PG_BIN, else /usr/lib/postgresql/15/bin.
// When they are missing, pg_harness_new_db fails and says which command
// installs them: the tests fail rather than pass without having run.
// Test thread only.
#ifndef TESTS_PG_HARNESS_H
#define TESTS_PG_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

// True when ANVIL_TEST_STORE asks for PostgreSQL ("postgresql" or "pg").
bool pg_harness_wanted(void);

// Starts the cluster (and its database `anvil`) if it is not running yet,
// creates a new empty schema there and writes the libpq connection string
// that works in it into buf ("host=<dir> dbname=anvil user=postgres
// options='-c search_path=<schema>'"). 0, or -1 after a line on stderr.
int pg_harness_new_db(char *buf, size_t len);

// The cluster's libpq connection string to database `db` (for a test that
// runs SQL of its own). 0, or -1 when the cluster is not running.
int pg_harness_conninfo(const char *db, char *buf, size_t len);

// Restarts the cluster (pg_ctl restart -m fast: every connection is cut)
// and waits until it accepts connections again. 0, or -1 after a line on
// stderr.
int pg_harness_restart(void);

// Whether a harness path is a PostgreSQL conninfo rather than a file.
bool pg_harness_is_conninfo(const char *path);

// As harness_sql_text and harness_sql_exec (harness.h), on the database
// conninfo names.
int pg_harness_sql_text(
    const char *conninfo, const char *sql, char *buf, size_t len);
int pg_harness_sql_exec(const char *conninfo, const char *sql);

#endif
