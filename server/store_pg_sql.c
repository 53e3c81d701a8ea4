// store_pg_sql.c - the SQL of the PostgreSQL backend's prepared statements.
//
// The statements mirror the SQLite backend's (store_sqlite.c) with three
// differences PostgreSQL makes cheap: a lease, a workflow's step count and
// a step's parent count are one UPDATE ... RETURNING each (one round trip
// instead of a read and a write); `IS NOT` is `IS DISTINCT FROM`; and
// INSERT OR IGNORE / OR REPLACE are ON CONFLICT clauses. A parameter whose
// type PostgreSQL cannot infer from a column carries a cast.
#include "store_pg.h"

// ListJobs' filter (store_list_filter), shared by RetryJobs and CancelJobs.
#define PG_JOB_FILTER                                                     \
    "($1::bigint = 0 OR state = $1) AND ($2::text IS NULL OR type = $2) " \
    "AND ($3::text IS NULL OR queue = $3) AND id < $4 "                   \
    "AND created_at >= $6 AND created_at < $7"

// A job's row is as its kept brief says (store_pg_brief.c): its state,
// attempt, max_attempts, lease deadline, start, run_at, cancel flag and
// lease token are parameters n1...n8.
#define PG_BRIEF_IS(n1, n2, n3, n4, n5, n6, n7, n8)                         \
    "state = $" n1 " AND attempt = $" n2 " AND max_attempts = $" n3         \
    " AND coalesce(lease_deadline, 0) = $" n4                               \
    " AND coalesce(started_at, 0) = $" n5 " AND coalesce(run_at, 0) = $" n6 \
    " AND cancel_requested = $" n7 " AND lease_token = $" n8

// An UPDATE that must change n rows (an SQL expression), else fails with
// division_by_zero, which pg_error reads as "the row changed outside this
// server". The failure is PostgreSQL's own, so the statement and its
// transaction (or its command's savepoint) fail there: nothing of a batch
// that decided on a row changed elsewhere is committed.
#define PG_CHECKED(update, n)                                        \
    PG_CHECKED_HEAD update " RETURNING 1) SELECT 1 / (count(*) = " n \
                           ")::int FROM w"

const char *const pg_stmt_sql[PG_STMT_COUNT] = {
    [PG_JOB_INSERT]  = "INSERT INTO jobs(type, queue, payload, priority, "
                       "state, max_attempts, created_at, run_at, "
                       "timeout_ms, lease_ms, idem_key, request_id, "
                       "workflow_id, step, pending_parents, "
                       "backoff_initial_ms, backoff_max_ms, "
                       "backoff_multiplier, id, concurrency_key, "
                       "concurrency_limit) "
                       "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                       "$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
                       "$21)",
    [PG_JOB_BY_RID]  = "SELECT id FROM jobs WHERE request_id = $1",
    [PG_JOB_BY_RIDS] = "SELECT request_id, id FROM jobs "
                       "WHERE request_id >= $1 AND request_id < $2",
    [PG_JOB_BY_KEY]  = "SELECT id FROM jobs WHERE idem_key = $1",
    [PG_JOB_GET]     = "SELECT " PG_JOB_COLS " FROM jobs WHERE id = $1",
    // $6: the ready queue's "queue\x1ftype", NULL = any. "state + 0"
    // keeps the planner on the primary key: "state = 3" implies
    // jobs_active's predicate, and on a young table (its statistics
    // those of a few rows) the cached plan took that index and walked
    // every queued job's entry for each lease.
    [PG_JOB_LEASE] = "UPDATE jobs SET state = 4, attempt = attempt + 1, "
                     "started_at = $2, lease_deadline = $2 + CASE WHEN "
                     "lease_ms > 0 THEN lease_ms ELSE $3 END, "
                     "worker_id = $4, lease_token = $5, "
                     "finished_at = NULL, progress_percent = NULL, "
                     "progress_message = NULL WHERE id = $1 AND state + 0 = 3 "
                     "AND ($6::text IS NULL OR queue || E'\\x1f' || type = $6) "
                     "RETURNING " PG_JOB_COLS,
    // The same, queued (store_pg_lease.c): also only at attempt $7. It
    // must change one row, else it fails (PG_CHECKED) and so does the
    // transaction, unless its command's savepoint undoes it.
    [PG_JOB_LEASE_QUEUED]
    = PG_CHECKED("UPDATE jobs SET state = 4, attempt = attempt + 1, "
                 "started_at = $2, lease_deadline = $2 + CASE WHEN "
                 "lease_ms > 0 THEN lease_ms ELSE $3 END, "
                 "worker_id = $4, lease_token = $5, "
                 "finished_at = NULL, progress_percent = NULL, "
                 "progress_message = NULL WHERE id = $1 AND state + 0 = 3 "
                 "AND attempt = $7 "
                 "AND ($6::text IS NULL OR queue || E'\\x1f' || type = $6)",
        "1"),
    [PG_JOB_FINISH] = "UPDATE jobs SET state = $2, result = $3, error = $4, "
                      "finished_at = $5, lease_deadline = NULL "
                      "WHERE id = $1",
    // PG_JOB_FINISH and PG_JOB_BRIEF_CHECK in one (store_pg_brief.c).
    [PG_JOB_FINISH_CHECKED]
    = PG_CHECKED("UPDATE jobs SET state = $2, result = $3, "
                 "error = $4, finished_at = $5, lease_deadline = NULL "
                 "WHERE id = $1 AND " PG_BRIEF_IS(
                     "6", "7", "8", "9", "10", "11", "12", "13"),
        "1"),
    [PG_JOB_REQUEUE]    = "UPDATE jobs SET state = $2, run_at = $3, "
                          "error = $4, lease_deadline = NULL WHERE id = $1",
    [PG_JOB_MAKE_READY] = "UPDATE jobs SET state = 3 "
                          "WHERE id = $1 AND state BETWEEN 1 AND 2",
    [PG_JOB_EXTEND]     = "UPDATE jobs SET lease_deadline = $2 WHERE id = $1",
    [PG_JOB_CANCEL_REQ] = "UPDATE jobs SET cancel_requested = 1 "
                          "WHERE id = $1",
    [PG_JOB_BRIEF] = "SELECT state, attempt, max_attempts, lease_deadline, "
                     "started_at, timeout_ms, lease_ms, run_at, priority, "
                     "cancel_requested, workflow_id, backoff_initial_ms, "
                     "backoff_max_ms, backoff_multiplier, lease_token, "
                     "queue, type, step, concurrency_key, "
                     "concurrency_limit FROM jobs WHERE id = $1",
    // Fails unless the row is as its kept brief says (store_pg_brief.c).
    [PG_JOB_BRIEF_CHECK]
    = "SELECT 1 / count(*)::int FROM jobs WHERE id = $1 AND " PG_BRIEF_IS(
        "2", "3", "4", "5", "6", "7", "8", "9"),
    [PG_JOB_LIST] = "SELECT " PG_JOB_COLS " FROM jobs WHERE " PG_JOB_FILTER
                    " ORDER BY id DESC LIMIT $5",
    [PG_JOB_IDS] = "SELECT id FROM jobs WHERE " PG_JOB_FILTER
                   " AND ($8::bigint = 0 OR workflow_id IS NULL)"
                   " ORDER BY id DESC LIMIT $5",
    [PG_SCAN_ACTIVE]
    = "SELECT id, type, queue, priority, state, attempt, "
      "run_at, lease_deadline, started_at, timeout_ms, "
      "concurrency_key, concurrency_limit FROM jobs "
      "WHERE " PG_JOBS_ACTIVE " ORDER BY state, queue, type, id",
    [PG_DEPTHS]            = "SELECT state, queue, type, COUNT(*) FROM jobs "
                             "WHERE " PG_JOBS_ACTIVE " GROUP BY state, queue, type",
    [PG_RUNNING_BY_WORKER] = "SELECT worker_id, COUNT(*) FROM jobs "
                             "WHERE " PG_JOBS_ACTIVE " AND state = 4 "
                             "GROUP BY worker_id",
    [PG_JOB_RETRY]    = "UPDATE jobs SET state = $2, pending_parents = $3, "
                        "max_attempts = $4, result = NULL, "
                        "finished_at = NULL, lease_deadline = NULL, "
                        "lease_token = 0, worker_id = NULL, "
                        "cancel_requested = 0 "
                        "WHERE id = $1 AND state BETWEEN 6 AND 7",
    [PG_JOB_PROGRESS] = "UPDATE jobs SET progress_percent = $2, "
                        "progress_message = $3 WHERE id = $1 AND "
                        "(progress_percent IS DISTINCT FROM $2::bigint OR "
                        "progress_message IS DISTINCT FROM $3::text)",
    [PG_WF_INSERT]    = "INSERT INTO workflows(name, state, on_failure, "
                        "created_at, timeout_ms, idem_key, request_id, "
                        "n_steps, id) VALUES($1, 1, $2, $3, $4, $5, $6, $7, "
                        "$8)",
    [PG_WF_BY_RID]    = "SELECT id FROM workflows WHERE request_id = $1",
    [PG_WF_BY_KEY]    = "SELECT id FROM workflows WHERE idem_key = $1",
    [PG_WF_GET]       = "SELECT " PG_WF_COLS " FROM workflows WHERE id = $1",
    [PG_WF_STEPS] = "SELECT " PG_JOB_COLS " FROM jobs WHERE workflow_id = $1 "
                    "ORDER BY id",
    [PG_WF_EDGES] = "SELECT e.child, p.step FROM jobs p "
                    "JOIN edges e ON e.parent = p.id "
                    "WHERE p.workflow_id = $1 ORDER BY e.child, p.id",
    [PG_WF_LIST]  = "SELECT " PG_WF_COLS " FROM workflows "
                    "WHERE ($1::bigint = 0 OR state = $1) "
                    "AND ($2::text IS NULL OR name = $2) "
                    "AND id < $3 ORDER BY id DESC LIMIT $4",
    [PG_WF_SETTLE]
    = "UPDATE workflows SET n_settled = n_settled + 1, "
      "n_succeeded = n_succeeded + $2, n_failed = n_failed + $3 "
      "WHERE id = $1 RETURNING state, on_failure, n_steps, n_settled, "
      "n_succeeded, n_failed",
    [PG_WF_FINISH]      = "UPDATE workflows SET state = $2, error = $3, "
                          "finished_at = $4 WHERE id = $1 AND state = 1",
    [PG_WF_UNFINISHED]  = "SELECT id FROM jobs WHERE workflow_id = $1 "
                          "AND state BETWEEN 1 AND 4 ORDER BY id",
    [PG_WF_SCAN_ACTIVE] = "SELECT id, GREATEST(created_at, retried_at) + "
                          "timeout_ms FROM workflows "
                          "WHERE state = 1 AND timeout_ms > 0",
    [PG_WF_REOPEN]      = "UPDATE workflows SET state = 1, error = NULL, "
                          "finished_at = NULL, n_settled = n_succeeded, "
                          "n_failed = 0, retried_at = $2 "
                          "WHERE id = $1 AND state BETWEEN 3 AND 4",
    [PG_EDGE_INSERT]    = "INSERT INTO edges(parent, child) VALUES($1, $2)",
    [PG_CHILDREN]       = "SELECT child FROM edges WHERE parent = $1",
    [PG_PARENT_RESULTS] = "SELECT p.step, p.result FROM edges e "
                          "JOIN jobs p ON p.id = e.parent "
                          "WHERE e.child = $1 ORDER BY e.parent",
    [PG_PARENT_DONE] = "UPDATE jobs SET pending_parents = pending_parents - 1 "
                       "WHERE id = $1 AND state = 1 RETURNING pending_parents",
    [PG_SWEEP_JOBS]  = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs "
                       "WHERE " PG_JOBS_FINAL " AND finished_at < $1 "
                       "LIMIT $2)",
    [PG_SWEEP_FLOWS] = "SELECT id FROM workflows WHERE " PG_FLOWS_FINAL
                       " AND finished_at < $1 AND n_settled >= n_steps "
                       "LIMIT $2",
    [PG_SWEEP_FLOW_EDGES] = "DELETE FROM edges WHERE child IN "
                            "(SELECT id FROM jobs WHERE workflow_id = $1)",
    [PG_SWEEP_FLOW_STEPS] = "DELETE FROM jobs WHERE workflow_id = $1",
    [PG_SWEEP_FLOW]       = "DELETE FROM workflows WHERE id = $1",
    [PG_META_HWM]         = "UPDATE meta SET value = $2 "
                            "WHERE key = $1 AND value < $2",
    [PG_TOKEN_INSERT]     = "INSERT INTO tokens(name, role, hash, created_at, "
                            "expires_at) VALUES($1, $2, $3, $4, $5) RETURNING id",
    [PG_TOKEN_LIST]       = "SELECT id, name, role, hash, created_at, "
                            "expires_at, revoked_at FROM tokens ORDER BY id",
    [PG_TOKEN_REVOKE]     = "UPDATE tokens SET revoked_at = $2 WHERE id = $1 "
                            "AND revoked_at = 0",
    // The seq from sequence events_seq (store_pg_events.c).
    [PG_EVENT_INSERT]
    = "INSERT INTO events(" PG_EV_COLS ") VALUES("
      "nextval('events_seq'), $1, $2, $3, $4, $5, $6, $7, "
      "$8, $9, $10, $11) RETURNING seq", // Events as arrays, one per column
                                         // (store_pg_evbuf.c): unnest yields
    // them, and nextval numbers them, in order.
    [PG_EVENT_INSERT_MANY]
    = "INSERT INTO events(" PG_EV_COLS ") SELECT nextval('events_seq'), * "
      "FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], "
      "$5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], "
      "$10::bytea[], $11::int8[])",
    // $2 NULL: no LIMIT.
    [PG_EVENTS_SCAN]    = "SELECT " PG_EV_COLS " FROM events WHERE seq > $1 "
                          "ORDER BY seq LIMIT $2",
    [PG_EVENTS_BY_JOB]  = "SELECT " PG_EV_COLS " FROM events "
                          "WHERE job_id = $3 AND seq > $1 ORDER BY seq "
                          "LIMIT $2",
    [PG_EVENTS_BY_FLOW] = "SELECT " PG_EV_COLS " FROM events "
                          "WHERE workflow_id = $3 AND seq > $1 "
                          "ORDER BY seq LIMIT $2",
    [PG_EVENTS_BOUNDS]
    = "SELECT coalesce((SELECT min(seq) FROM events), 0), "
      "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
      "FROM events_seq)",
    [PG_SWEEP_EVENTS_SCAN] = "SELECT seq, at FROM events ORDER BY seq "
                             "LIMIT $1",
    [PG_SWEEP_EVENTS]      = "DELETE FROM events WHERE seq <= $1",
    // A queue paused twice keeps the time it was first paused.
    [PG_QUEUE_PAUSE]   = "INSERT INTO paused_queues(queue, paused_at) "
                         "VALUES($1, $2) ON CONFLICT (queue) DO NOTHING",
    [PG_QUEUE_RESUME]  = "DELETE FROM paused_queues WHERE queue = $1",
    [PG_QUEUES_PAUSED] = "SELECT queue FROM paused_queues "
                         "ORDER BY queue COLLATE \"C\"",
    [PG_LIMIT_SET]     = "INSERT INTO queue_limits(queue, rate, burst, "
                         "tokens, at_ms) VALUES($1, $2, $3, $4, $5) "
                         "ON CONFLICT (queue) DO UPDATE SET "
                         "rate = EXCLUDED.rate, burst = EXCLUDED.burst, "
                         "tokens = EXCLUDED.tokens, at_ms = EXCLUDED.at_ms",
    [PG_LIMIT_DELETE]  = "DELETE FROM queue_limits WHERE queue = $1",
    [PG_LIMIT_SAVE]    = "UPDATE queue_limits SET tokens = $2, at_ms = $3 "
                         "WHERE queue = $1",
    [PG_LIMITS]        = "SELECT queue, rate, burst, tokens, at_ms FROM "
                         "queue_limits ORDER BY queue COLLATE \"C\"",
    [PG_LIMIT_GET]     = "SELECT queue, rate, burst, tokens, at_ms FROM "
                         "queue_limits WHERE queue = $1",
    [PG_SCHED_INSERT]
    = "INSERT INTO schedules(name, expr, tz, type, queue, payload, "
      "priority, max_attempts, backoff_initial_ms, backoff_max_ms, "
      "backoff_multiplier, timeout_ms, lease_ms, overlap, catch_up, "
      "catch_up_limit, paused, next_fire_at, last_fire_at, last_job_id, "
      "fired, skipped, created_at, request_id, workflow) VALUES($1, $2, $3, "
      "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
      "$19, $20, $21, $22, $23, $24, $25) RETURNING id",
    [PG_SCHED_GET] = "SELECT " PG_SCHED_COLS " FROM schedules WHERE id = $1",
    [PG_SCHED_GET_NAME]
    = "SELECT " PG_SCHED_COLS " FROM schedules WHERE name = $1",
    [PG_SCHED_LIST] = "SELECT " PG_SCHED_COLS " FROM schedules "
                      "ORDER BY name COLLATE \"C\"",
    [PG_SCHED_UPDATE]
    = "UPDATE schedules SET paused = $2, next_fire_at = $3, last_fire_at = $4, "
      "last_job_id = $5, fired = $6, skipped = $7 WHERE id = $1",
    [PG_SCHED_DELETE] = "DELETE FROM schedules WHERE id = $1",
    // The merged writes (store_pg_merge.c): $i is an array of the single
    // statement's $i. The UPDATEs find their rows by id = ANY($1) (the
    // primary key) and compare state + 0, never an index of state.
    [PG_JOB_INSERT_MANY]
    = "INSERT INTO jobs(type, queue, payload, priority, state, "
      "max_attempts, created_at, run_at, timeout_ms, lease_ms, idem_key, "
      "request_id, workflow_id, step, pending_parents, backoff_initial_ms, "
      "backoff_max_ms, backoff_multiplier, id, concurrency_key, "
      "concurrency_limit) SELECT * FROM unnest($1::text[], $2::text[], "
      "$3::bytea[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], "
      "$8::int8[], $9::int8[], $10::int8[], $11::bytea[], $12::int8[], "
      "$13::int8[], $14::text[], $15::int8[], $16::int8[], $17::int8[], "
      "$18::float8[], $19::int8[], $20::text[], $21::int8[])",
    [PG_JOB_LEASE_QUEUED_MANY] = PG_CHECKED(
        "UPDATE jobs j SET state = 4, attempt = j.attempt + 1, "
        "started_at = u.started, lease_deadline = u.started + CASE WHEN "
        "j.lease_ms > 0 THEN j.lease_ms ELSE u.lease END, "
        "worker_id = u.worker, lease_token = u.token, finished_at = NULL, "
        "progress_percent = NULL, progress_message = NULL "
        "FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[], "
        "$5::int8[], $6::text[], $7::int8[]) "
        "AS u(id, started, lease, worker, token, qkey, attempt) "
        "WHERE j.id = ANY($1::int8[]) AND j.id = u.id AND j.state + 0 = 3 "
        "AND j.attempt = u.attempt "
        "AND (u.qkey IS NULL OR j.queue || E'\\x1f' || j.type = u.qkey)",
        "cardinality($1::int8[])"),
    [PG_JOB_FINISH_MANY]
    = "UPDATE jobs j SET state = u.state, result = u.result, "
      "error = u.error, finished_at = u.finished, lease_deadline = NULL "
      "FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::bytea[], "
      "$5::int8[]) AS u(id, state, result, error, finished) "
      "WHERE j.id = ANY($1::int8[]) AND j.id = u.id",
    [PG_JOB_FINISH_CHECKED_MANY] = PG_CHECKED(
        "UPDATE jobs j SET state = u.state, result = u.result, "
        "error = u.error, finished_at = u.finished, lease_deadline = NULL "
        "FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::bytea[], "
        "$5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], "
        "$10::int8[], $11::int8[], $12::int8[], $13::int8[]) "
        "AS u(id, state, result, error, finished, was, attempt, "
        "max_attempts, lease_deadline, started_at, run_at, "
        "cancel_requested, lease_token) "
        "WHERE j.id = ANY($1::int8[]) AND j.id = u.id "
        "AND j.state + 0 = u.was AND j.attempt = u.attempt "
        "AND j.max_attempts = u.max_attempts "
        "AND coalesce(j.lease_deadline, 0) = u.lease_deadline "
        "AND coalesce(j.started_at, 0) = u.started_at "
        "AND coalesce(j.run_at, 0) = u.run_at "
        "AND j.cancel_requested = u.cancel_requested "
        "AND j.lease_token = u.lease_token",
        "cardinality($1::int8[])"),
};

// The writes merged (store_pg_merge.c), the type of each parameter's
// array (i int8, f float8, t text, b bytea) and whether $1 names the job
// an UPDATE changes.
const struct pg_merge_spec pg_merge_specs[] = {
    { PG_JOB_INSERT, PG_JOB_INSERT_MANY, "ttbiiiiiiibiitiiifiti", false },
    { PG_JOB_LEASE_QUEUED, PG_JOB_LEASE_QUEUED_MANY, "iiititi", true },
    { PG_JOB_FINISH, PG_JOB_FINISH_MANY, "iibbi", true },
    { PG_JOB_FINISH_CHECKED, PG_JOB_FINISH_CHECKED_MANY, "iibbiiiiiiiii",
        true },
};
const int pg_merge_nspecs = sizeof(pg_merge_specs) / sizeof(pg_merge_specs[0]);
