// leader.h - the leader lease of anvild nodes sharing one PostgreSQL
// database: one row, anvil_leader (id 1), with a fencing number (epoch),
// the holder, its advertised URL and an expiry on the database's clock.
//
// A node takes the lease when it has expired (or is its own): the epoch
// goes up by one. The holder renews it every ttl/3 on its own connection
// (this module's). Every engine transaction of the holder starts with
// anvil_fence(epoch, ttl) (store_pg_fence.c): it renews the row and fails
// with SQLSTATE LEADER_FENCED_STATE once another node has taken the lease,
// so a deposed leader's late transaction cannot commit; the row lock it
// holds until COMMIT makes a takeover wait for that transaction. The
// fence also sets idle_in_transaction_session_timeout to the ttl for the
// transaction, so PostgreSQL ends the open transaction of a leader that
// stopped (SIGSTOP, a frozen VM) and the takeover can go ahead.
// docs/architecture.md ("Several nodes") explains the choice of a lease
// row over an advisory lock.
//
// Threads: a struct leader is used by one thread at a time (the server's
// node thread; tests).
#ifndef SERVER_LEADER_H
#define SERVER_LEADER_H

#include <anvil/anvil.h>
#include <stddef.h>
#include <stdint.h>

// The SQLSTATE anvil_fence raises when the epoch is no longer the leader's.
#define LEADER_FENCED_STATE "AN001"

// The default and bounds of --leader-ttl, ms.
#define LEADER_TTL_MS 2000
#define LEADER_TTL_MIN_MS 300
#define LEADER_TTL_MAX_MS 600000

struct leader;

// Connects to conninfo and creates the lease table and anvil_fence() if
// they do not exist. holder names this process (unique: host, pid, time),
// advertise the URL clients are sent to while it leads.
// Errors: UNAVAILABLE (cannot connect), INTERNAL.
int leader_open(const char *conninfo, const char *holder, const char *advertise,
    int64_t ttl_ms, struct leader **out, struct anvil_error *err);

void leader_close(struct leader *l);

// One try to take the lease. ANVIL_OK with *epoch set: taken. NOT_FOUND
// (err untouched): another node holds it; url (len bytes) receives its
// advertised URL ("" if none). UNAVAILABLE: the database is unreachable
// (the next call reconnects).
int leader_try(struct leader *l, int64_t *epoch, char *url, size_t len,
    struct anvil_error *err);

// Renews the lease of epoch. ANVIL_OK; FAILED_PRECONDITION: another node
// took it (this one is deposed); UNAVAILABLE: the database is unreachable.
// Renewal checks the epoch only, not the expiry: as long as nobody took
// the lease, it is still this node's.
int leader_renew(struct leader *l, int64_t epoch, struct anvil_error *err);

// Gives the lease of epoch up (a clean shutdown): it expires now, so a
// standby takes over at its next try. Errors are ignored.
void leader_release(struct leader *l, int64_t epoch);

#endif
