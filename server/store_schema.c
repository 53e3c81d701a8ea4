// store_schema.c - the SQLite backend's DDL, schema version and migrations.
//
// Schema changes: bump STORE_SCHEMA_VERSION, append one migration step to
// migrations[] that takes version N-1 to N (never edit a shipped step; a
// new database runs every step from 6 on after SCHEMA_V5, so it needs
// nothing more), add a unit test that opens a database of the previous
// version (and a HARNESS_SQL_BACK_TO_V line in tests/harness.h), and
// describe the change in docs/architecture.md.
//
#include "store_sqlite.h"

#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Version 5's tables, written once for the 4 -> 5 step and a new database,
// so that a migrated database and a new one are the same.
#define JOBS_TABLE_V5                                                         \
    "CREATE TABLE jobs ("                                                     \
    " id INTEGER PRIMARY KEY,"                                                \
    " type TEXT NOT NULL,"                                                    \
    " queue TEXT NOT NULL,"                                                   \
    " payload BLOB NOT NULL,"                                                 \
    " priority INTEGER NOT NULL DEFAULT 0,"                                   \
    " state INTEGER NOT NULL,"                                                \
    " attempt INTEGER NOT NULL DEFAULT 0,"                                    \
    " max_attempts INTEGER NOT NULL,"                                         \
    " result BLOB,"                                                           \
    " error TEXT,"                                                            \
    " created_at INTEGER NOT NULL,"                                           \
    " started_at INTEGER,"                                                    \
    " finished_at INTEGER,"                                                   \
    " run_at INTEGER NOT NULL DEFAULT 0,"                                     \
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"                                 \
    " lease_ms INTEGER NOT NULL DEFAULT 0,"                                   \
    " lease_deadline INTEGER,"                                                \
    " worker_id TEXT,"                                                        \
    " idem_key TEXT,"                                                         \
    " request_id INTEGER,"                                                    \
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"                           \
    " workflow_id INTEGER,"                                                   \
    " step TEXT,"                                                             \
    " pending_parents INTEGER NOT NULL DEFAULT 0,"                            \
    " backoff_initial_ms INTEGER NOT NULL DEFAULT 1000,"                      \
    " backoff_max_ms INTEGER NOT NULL DEFAULT 60000,"                         \
    " backoff_multiplier REAL NOT NULL DEFAULT 2.0,"                          \
    " lease_token INTEGER NOT NULL DEFAULT 0);"                               \
    "CREATE UNIQUE INDEX jobs_idem_key ON jobs(idem_key)"                     \
    " WHERE idem_key IS NOT NULL;"                                            \
    "CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id)"                 \
    " WHERE request_id IS NOT NULL;"                                          \
    "CREATE INDEX jobs_active ON jobs(state, queue, type) WHERE " JOBS_ACTIVE \
    ";"                                                                       \
    "CREATE INDEX jobs_workflow ON jobs(workflow_id, id)"                     \
    " WHERE workflow_id IS NOT NULL;"                                         \
    "CREATE INDEX jobs_finished ON jobs(finished_at)"                         \
    " WHERE " JOBS_FINAL ";"

#define FLOWS_TABLE_V5                                                  \
    "CREATE TABLE workflows ("                                          \
    " id INTEGER PRIMARY KEY,"                                          \
    " name TEXT NOT NULL,"                                              \
    " state INTEGER NOT NULL,"                                          \
    " on_failure INTEGER NOT NULL,"                                     \
    " created_at INTEGER NOT NULL,"                                     \
    " finished_at INTEGER,"                                             \
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"                           \
    " error TEXT,"                                                      \
    " idem_key TEXT,"                                                   \
    " request_id INTEGER,"                                              \
    " n_steps INTEGER NOT NULL,"                                        \
    " n_settled INTEGER NOT NULL DEFAULT 0,"                            \
    " n_succeeded INTEGER NOT NULL DEFAULT 0,"                          \
    " n_failed INTEGER NOT NULL DEFAULT 0);"                            \
    "CREATE UNIQUE INDEX workflows_idem_key ON workflows(idem_key)"     \
    " WHERE idem_key IS NOT NULL;"                                      \
    "CREATE UNIQUE INDEX workflows_request_id ON workflows(request_id)" \
    " WHERE request_id IS NOT NULL;"                                    \
    "CREATE INDEX workflows_state ON workflows(state, id);"             \
    "CREATE INDEX workflows_finished ON workflows(finished_at)"         \
    " WHERE " FLOWS_FINAL ";"

// Unchanged since version 4, which added it.
#define TOKENS_TABLE                          \
    "CREATE TABLE tokens ("                   \
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"  \
    " name TEXT NOT NULL,"                    \
    " role INTEGER NOT NULL,"                 \
    " hash BLOB NOT NULL UNIQUE,"             \
    " created_at INTEGER NOT NULL,"           \
    " expires_at INTEGER NOT NULL DEFAULT 0," \
    " revoked_at INTEGER NOT NULL DEFAULT 0);"

#define META_TABLE_V5        \
    "CREATE TABLE meta ("    \
    " key TEXT PRIMARY KEY," \
    " value INTEGER NOT NULL) WITHOUT ROWID;"

#define JOB_COLS_V4                                                      \
    "id, type, queue, payload, priority, state, attempt, max_attempts, " \
    "result, error, created_at, started_at, finished_at, run_at, "       \
    "timeout_ms, lease_ms, lease_deadline, worker_id, idem_key, "        \
    "request_id, cancel_requested, workflow_id, step, pending_parents, " \
    "backoff_initial_ms, backoff_max_ms, backoff_multiplier, lease_token"

#define WF_COLS_V4                                                       \
    "id, name, state, on_failure, created_at, finished_at, timeout_ms, " \
    "error, idem_key, request_id, n_steps, n_settled, n_succeeded, "     \
    "n_failed"

// The highest id a table ever had: AUTOINCREMENT's counter, or a larger
// id still present.
#define HWM_V4(table)                                                    \
    "max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '" table \
    "'), 0), coalesce((SELECT max(id) FROM " table "), 0))"

// 4 -> 5: keep each table's highest id ever in meta, then rebuild jobs
// and workflows without AUTOINCREMENT and with the range predicates.
// clang-format off
#define MIGRATE_4_TO_5                                                     \
    META_TABLE_V5                                                          \
    "INSERT INTO meta(key, value)"                                         \
    " VALUES('" HWM_JOBS "', " HWM_V4("jobs") "),"                         \
    " ('" HWM_FLOWS "', " HWM_V4("workflows") ");"                         \
    "ALTER TABLE jobs RENAME TO jobs_v4;"                                  \
    "ALTER TABLE workflows RENAME TO workflows_v4;"                        \
    "DROP INDEX jobs_idem_key; DROP INDEX jobs_request_id;"                \
    "DROP INDEX jobs_active; DROP INDEX jobs_workflow;"                    \
    "DROP INDEX jobs_finished; DROP INDEX workflows_idem_key;"             \
    "DROP INDEX workflows_request_id; DROP INDEX workflows_state;"         \
    "DROP INDEX workflows_finished;"                                       \
    JOBS_TABLE_V5                                                          \
    FLOWS_TABLE_V5                                                         \
    "INSERT INTO jobs(" JOB_COLS_V4 ") SELECT " JOB_COLS_V4                \
    " FROM jobs_v4;"                                                       \
    "INSERT INTO workflows(" WF_COLS_V4 ") SELECT " WF_COLS_V4             \
    " FROM workflows_v4;"                                                  \
    "DROP TABLE jobs_v4; DROP TABLE workflows_v4;"
// clang-format on

// 5 -> 6: the event stream, and the time a workflow was last retried
// (store_workflow_scan_active counts its timeout from the later of
// created_at and retried_at). seq is AUTOINCREMENT so that sqlite_sequence
// keeps the highest seq ever stored after retention deleted the newest
// events: it is where the counter restarts (store_sqlite.c) and what
// store_events_bounds() reports. Every state change writes an event, so
// the table has only the two partial indexes a job's or a workflow's
// history needs; retention sweeps by seq, not by an index on `at`.
#define MIGRATE_5_TO_6                                             \
    "ALTER TABLE workflows ADD COLUMN retried_at INTEGER NOT NULL" \
    " DEFAULT 0;"                                                  \
    "CREATE TABLE events ("                                        \
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"                      \
    " kind INTEGER NOT NULL,"                                      \
    " at INTEGER NOT NULL,"                                        \
    " job_id INTEGER,"                                             \
    " workflow_id INTEGER,"                                        \
    " step TEXT,"                                                  \
    " type TEXT,"                                                  \
    " queue TEXT,"                                                 \
    " worker TEXT,"                                                \
    " attempt INTEGER NOT NULL DEFAULT 0,"                         \
    " message TEXT);"                                              \
    "CREATE INDEX events_job ON events(job_id, seq)"               \
    " WHERE job_id IS NOT NULL;"                                   \
    "CREATE INDEX events_workflow ON events(workflow_id, seq)"     \
    " WHERE workflow_id IS NOT NULL;"

// 6 -> 7: the queues an operator paused (PauseQueue): one row per paused
// queue, deleted when it is resumed. A queue needs no row of its own
// otherwise (queues exist by being named), so a queue that has never had a
// job can be paused before its first submit.
#define MIGRATE_6_TO_7             \
    "CREATE TABLE paused_queues (" \
    " queue TEXT PRIMARY KEY,"     \
    " paused_at INTEGER NOT NULL) WITHOUT ROWID;"

// 7 -> 8: job progress. A job's last reported progress (NULL percent = none
// reported), cleared when an attempt is leased and kept once it is final;
// a JOB_PROGRESS event's percent.
#define MIGRATE_7_TO_8                                      \
    "ALTER TABLE jobs ADD COLUMN progress_percent INTEGER;" \
    "ALTER TABLE jobs ADD COLUMN progress_message TEXT;"    \
    "ALTER TABLE events ADD COLUMN progress INTEGER;"

// 8 -> 9: concurrency limits. A job's key and limit (NULL and 0 = none),
// stored with it so that the engine rebuilds each key's running count and
// its set-aside jobs from the active rows on start.
#define MIGRATE_8_TO_9                                      \
    "ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;"     \
    "ALTER TABLE jobs ADD COLUMN concurrency_limit INTEGER" \
    " NOT NULL DEFAULT 0;"

// 9 -> 10: cron schedules (CreateSchedule): the job template, the policies
// and where the ticks stand. AUTOINCREMENT: a deleted schedule's id is
// never handed out again. No index on next_fire_at: the engine reads the
// table once at start and keeps the timers in memory.
#define MIGRATE_9_TO_10                         \
    "CREATE TABLE schedules ("                  \
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"    \
    " name TEXT NOT NULL UNIQUE,"               \
    " expr TEXT NOT NULL,"                      \
    " tz TEXT NOT NULL,"                        \
    " type TEXT NOT NULL,"                      \
    " queue TEXT NOT NULL,"                     \
    " payload BLOB NOT NULL,"                   \
    " priority INTEGER NOT NULL,"               \
    " max_attempts INTEGER NOT NULL,"           \
    " backoff_initial_ms INTEGER NOT NULL,"     \
    " backoff_max_ms INTEGER NOT NULL,"         \
    " backoff_multiplier REAL NOT NULL,"        \
    " timeout_ms INTEGER NOT NULL,"             \
    " lease_ms INTEGER NOT NULL,"               \
    " overlap INTEGER NOT NULL,"                \
    " catch_up INTEGER NOT NULL,"               \
    " catch_up_limit INTEGER NOT NULL,"         \
    " paused INTEGER NOT NULL DEFAULT 0,"       \
    " next_fire_at INTEGER NOT NULL,"           \
    " last_fire_at INTEGER NOT NULL DEFAULT 0," \
    " last_job_id INTEGER NOT NULL DEFAULT 0,"  \
    " fired INTEGER NOT NULL DEFAULT 0,"        \
    " skipped INTEGER NOT NULL DEFAULT 0,"      \
    " created_at INTEGER NOT NULL,"             \
    " request_id INTEGER);"

// 10 -> 11: queue rate limits (SetQueueLimit): one row per limited queue,
// with its token bucket as of at_ms, written in the transaction of every
// lease that takes a token, so a restart refills it from there (no second
// burst).
#define MIGRATE_10_TO_11          \
    "CREATE TABLE queue_limits (" \
    " queue TEXT PRIMARY KEY,"    \
    " rate REAL NOT NULL,"        \
    " burst INTEGER NOT NULL,"    \
    " tokens REAL NOT NULL,"      \
    " at_ms INTEGER NOT NULL) WITHOUT ROWID;"

// 11 -> 12: a schedule's workflow template (CreateSchedule with
// spec.workflow): the WorkflowSpec's .proto wire form, NULL for a job
// template. A workflow schedule's last_job_id holds its last workflow.
#define MIGRATE_11_TO_12 "ALTER TABLE schedules ADD COLUMN workflow BLOB;"

// A new database: version 5's tables, then every step from 6 on in the
// same transaction (so a new and a migrated database cannot differ).
static const char SCHEMA_V5[] = JOBS_TABLE_V5 FLOWS_TABLE_V5
    "CREATE TABLE edges ("
    " parent INTEGER NOT NULL,"
    " child INTEGER NOT NULL,"
    " PRIMARY KEY (parent, child)) WITHOUT ROWID;"
    "CREATE INDEX edges_child ON edges(child, parent);" TOKENS_TABLE
        META_TABLE_V5 "INSERT INTO meta(key, value) VALUES('" HWM_JOBS
    "', 0), ('" HWM_FLOWS "', 0);";

// Migration i takes the schema from version i to i + 1.
static const char *const migrations[] = {
    "CREATE TABLE jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " type TEXT NOT NULL,"
    " queue TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " state INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL,"
    " result BLOB,"
    " error TEXT,"
    " created_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " run_at INTEGER NOT NULL DEFAULT 0,"
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " lease_ms INTEGER NOT NULL DEFAULT 0,"
    " lease_deadline INTEGER,"
    " worker_id TEXT,"
    " idem_key TEXT,"
    " request_id INTEGER,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX jobs_idem_key ON jobs(idem_key)"
    " WHERE idem_key IS NOT NULL;"
    "CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id)"
    " WHERE request_id IS NOT NULL;"
    "CREATE INDEX jobs_active ON jobs(state) WHERE state IN (2, 3, 4);",

    "CREATE TABLE workflows ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " on_failure INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " finished_at INTEGER,"
    " timeout_ms INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " idem_key TEXT,"
    " request_id INTEGER,"
    " n_steps INTEGER NOT NULL,"
    " n_settled INTEGER NOT NULL DEFAULT 0,"
    " n_succeeded INTEGER NOT NULL DEFAULT 0,"
    " n_failed INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX workflows_idem_key ON workflows(idem_key)"
    " WHERE idem_key IS NOT NULL;"
    "CREATE UNIQUE INDEX workflows_request_id ON workflows(request_id)"
    " WHERE request_id IS NOT NULL;"
    "CREATE INDEX workflows_state ON workflows(state, id);"
    "ALTER TABLE jobs ADD COLUMN workflow_id INTEGER;"
    "ALTER TABLE jobs ADD COLUMN step TEXT;"
    "ALTER TABLE jobs ADD COLUMN pending_parents INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX jobs_workflow ON jobs(workflow_id, id)"
    " WHERE workflow_id IS NOT NULL;"
    "CREATE TABLE edges ("
    " parent INTEGER NOT NULL,"
    " child INTEGER NOT NULL,"
    " PRIMARY KEY (parent, child)) WITHOUT ROWID;"
    "CREATE INDEX edges_child ON edges(child, parent);",

    "ALTER TABLE jobs ADD COLUMN backoff_initial_ms INTEGER NOT NULL"
    " DEFAULT 1000;"
    "ALTER TABLE jobs ADD COLUMN backoff_max_ms INTEGER NOT NULL"
    " DEFAULT 60000;"
    "ALTER TABLE jobs ADD COLUMN backoff_multiplier REAL NOT NULL"
    " DEFAULT 2.0;"
    "CREATE INDEX jobs_finished ON jobs(finished_at)"
    " WHERE state IN (5, 6, 7) AND workflow_id IS NULL;"
    "CREATE INDEX workflows_finished ON workflows(finished_at)"
    " WHERE state IN (2, 3, 4);",

    TOKENS_TABLE
    "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;",

    MIGRATE_4_TO_5,

    MIGRATE_5_TO_6,

    MIGRATE_6_TO_7,

    MIGRATE_7_TO_8,

    MIGRATE_8_TO_9,

    MIGRATE_9_TO_10,

    MIGRATE_10_TO_11,

    MIGRATE_11_TO_12,
};

// One step per version: bumping STORE_SCHEMA_VERSION without a step would
// read past the table.
_Static_assert(
    sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
    "one migration step per schema version");

// Runs first (NULL: nothing), then migrations[from] to migrations[to - 1],
// and sets the schema version to `to`, all in one transaction.
static int
migrate_step(struct sqlite_store *st, const char *first, int from, int to,
    const char *event, struct anvil_error *err)
{
    char version[64];
    snprintf(version, sizeof(version), "PRAGMA user_version = %d", to);
    int rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK && first != NULL)
        rc = sqlite3_exec(st->db, first, NULL, NULL, NULL);
    for (int i = from; rc == SQLITE_OK && i < to; i++)
        rc = sqlite3_exec(st->db, migrations[i], NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, version, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = sq_error(st, err, "migrating the schema");
        if (!sqlite3_get_autocommit(st->db)
            && sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
            AV_ERR("store.rollback", "err=\"%s\"", sqlite3_errmsg(st->db));
        return code;
    }
    AV_INFO(event, "version=%d", to);
    return ANVIL_OK;
}

static int
read_version(struct sqlite_store *st, int *version, struct anvil_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    (void) sqlite3_finalize(s); // repeats the step's result, handled
    if (rc != SQLITE_ROW)
        return sq_error(st, err, "reading the schema version");
    return ANVIL_OK;
}

int
sq_migrate(struct sqlite_store *st, struct anvil_error *err)
{
    int version = 0;
    int rc      = read_version(st, &version, err);
    if (rc != ANVIL_OK)
        return rc;
    if (version > STORE_SCHEMA_VERSION)
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "database schema version %d is newer than this anvild's (%d); "
            "upgrade anvild",
            version, STORE_SCHEMA_VERSION);
    if (version == 0)
        return migrate_step(
            st, SCHEMA_V5, 5, STORE_SCHEMA_VERSION, "store.created", err);
    for (; rc == ANVIL_OK && version < STORE_SCHEMA_VERSION; version++)
        rc = migrate_step(
            st, NULL, version, version + 1, "store.migrated", err);
    return rc;
}
