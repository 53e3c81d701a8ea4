// store_sync.c - the SQLite backend's deferred sync: COMMIT under
// synchronous=NORMAL, and sq_sync() (store_sync) fdatasync()s the -wal
// file, possibly on another thread while the engine runs the next batch.
//
// Why a COMMIT under synchronous=NORMAL followed by store_sync() is as
// durable as a COMMIT under synchronous=FULL (SQLite 3.40, WAL mode, the
// unix VFS), for everything committed before the store_sync() call:
//
// - COMMIT appends the transaction's frames, the last one marked as a
//   commit, to the -wal file with write(2). FULL then fsyncs the WAL;
//   NORMAL does not. store_sync() fdatasync()s the same inode through our
//   own descriptor, which writes back every page of it written so far, the
//   file size included: the frames are then on disk as FULL would have put
//   them. Recovery after a power loss replays the WAL up to the last
//   commit frame whose checksum chain holds, so a synced commit is
//   replayed; a commit after it that was only partly written is dropped,
//   as under FULL.
// - Checkpoints do not depend on the commit's mode: with NORMAL, SQLite
//   still syncs the WAL before copying frames into the database and syncs
//   the database before recording the copy (walCheckpoint with
//   CKPT_SYNC_FLAGS), so a checkpoint never leaves a commit only in pages
//   that are not on disk.
// - A WAL restart (the first commit after a complete checkpoint writes from
//   the start of the file again) happens only once every frame is in the
//   synced database; SQLite writes and syncs the new WAL header (new salts)
//   before any frame, under NORMAL too, so old frames are never taken for
//   new ones. The file is rewritten or truncated in place, never unlinked
//   while our connection is open (SQLite deletes it only when the last
//   connection closes); store_sync() checks the inode and reopens if that
//   ever changed, and fails if the file is gone.
// - A new WAL file's directory entry: under FULL, SQLite syncs the
//   directory on the WAL's first sync; we fsync it when we open our
//   descriptor (store_set_deferred_sync) and on any reopen.
// - FULL pads the last frame to a sector boundary when the file system may
//   tear writes beyond the bytes written (no SQLITE_IOCAP_POWERSAFE_
//   OVERWRITE); NORMAL never pads, so the next commit's frames could share
//   a sector with a synced commit frame and, torn by a power cut, damage
//   it. The unix VFS assumes power-safe overwrite by default (and then FULL
//   does not pad either); store_set_deferred_sync refuses to defer when it
//   is off.
// - A failed fdatasync may have dropped the dirty pages (Linux marks them
//   clean), so a later fdatasync would succeed without the data: a failure
//   is therefore sticky, and every later store_sync() fails.
// What the engine must do (and does): send no reply of a batch before a
// store_sync() that started after its COMMIT returned OK. Replies of
// batches applied after a commit that was not yet synced rest on it, so
// they wait for a sync too; a sync covers every commit before it.
// One difference that is not about acknowledged commits: under FULL other
// connections (a `sqlite3 .backup`) see a commit only once it is synced;
// deferred, they may copy one that a power cut then takes back.
//
// Never open the database or -shm file here: closing any descriptor of a
// file drops every POSIX lock this process holds on it, SQLite's included.
// SQLite takes no locks on the -wal file itself.

#include "store_sqlite.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// strerror(3) is not thread-safe, and store_sync runs on another thread.
static const char *
errtext(int e, char *buf, size_t len)
{
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
}

// Fsyncs the directory holding path (ignoring file systems that cannot).
static int
sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char        dir[1024];
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if ((size_t) (slash - path) >= sizeof(dir))
        return ENAMETOOLONG;
    else
        snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
    if (dir[0] == '\0')
        snprintf(dir, sizeof(dir), "/");
    int fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    close(fd);
    return rc;
}

// Opens our descriptor of the -wal file (sync_lock held, or no syncer).
static int
wal_open(struct sqlite_store *st, char *msg, size_t len)
{
    char        eb[96];
    int         fd = open(st->wal_path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(msg, len, "cannot open the WAL file %s: %s", st->wal_path,
            errtext(e, eb, sizeof(eb)));
        return -1;
    }
    int e = sync_dir(st->wal_path);
    if (e != 0) {
        close(fd);
        snprintf(msg, len, "cannot sync the directory of %s: %s", st->wal_path,
            errtext(e, eb, sizeof(eb)));
        return -1;
    }
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    st->wal_fd  = fd;
    st->wal_dev = sb.st_dev;
    st->wal_ino = sb.st_ino;
    return 0;
}

static int
datasync(int fd)
{
    if (store_hook_fdatasync != NULL)
        return store_hook_fdatasync(fd);
    return fdatasync(fd);
}

// The sync itself (sync_lock held). On failure, fills st->sync_msg.
static int
wal_sync(struct sqlite_store *st)
{
    char        eb[96];
    char       *msg = st->sync_msg;
    size_t      len = sizeof(st->sync_msg);
    struct stat sb;
    if (stat(st->wal_path, &sb) != 0) {
        snprintf(msg, len, "the WAL file %s is gone: %s", st->wal_path,
            errtext(errno, eb, sizeof(eb)));
        return -1;
    }
    if (sb.st_ino != st->wal_ino || sb.st_dev != st->wal_dev) {
        // Not seen with SQLite 3.40; sync both files to be safe.
        if (datasync(st->wal_fd) != 0) {
            snprintf(msg, len, "fdatasync of the old WAL file failed: %s",
                errtext(errno, eb, sizeof(eb)));
            return -1;
        }
        if (wal_open(st, msg, len) != 0)
            return -1;
    }
    if (datasync(st->wal_fd) != 0) {
        snprintf(msg, len, "fdatasync of %s failed: %s", st->wal_path,
            errtext(errno, eb, sizeof(eb)));
        return -1;
    }
    return 0;
}

static int
sq_sync(struct store *base, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    if (!atomic_load(&st->deferred))
        return ANVIL_OK; // every commit synced itself
    uint_least64_t want = atomic_load(&st->write_seq);
    if (atomic_load(&st->synced_seq) >= want)
        return ANVIL_OK; // nothing written since the last sync
    int rc = ANVIL_OK;
    pthread_mutex_lock(&st->sync_lock);
    if (atomic_load(&st->synced_seq) < want && st->wal_fd >= 0) {
        if (!st->sync_failed && wal_sync(st) != 0) {
            st->sync_failed = true;
            AV_ERR("store.sync", "err=\"%s\"", st->sync_msg);
        }
        if (st->sync_failed)
            rc = av_error_set(err, ANVIL_INTERNAL,
                "cannot make commits durable: %s", st->sync_msg);
        else
            atomic_store(&st->synced_seq, want);
    }
    pthread_mutex_unlock(&st->sync_lock);
    return rc;
}

static bool
sq_needs_sync(const struct store *base)
{
    const struct sqlite_store *st = (const struct sqlite_store *) base;
    return atomic_load(&st->deferred);
}

// Whether deferring keeps FULL's durability here (see above); logs why not.
static bool
can_defer(struct sqlite_store *st, const char **wal)
{
    int psow = -1;
    if (sqlite3_file_control(
            st->db, "main", SQLITE_FCNTL_POWERSAFE_OVERWRITE, &psow)
            != SQLITE_OK
        || psow != 1) {
        AV_WARN("store.sync",
            "msg=\"no power-safe overwrite: keeping "
            "synchronous=FULL\"");
        return false;
    }
    *wal = sqlite3_filename_wal(sqlite3_db_filename(st->db, "main"));
    if (*wal == NULL || (*wal)[0] == '\0') {
        AV_WARN("store.sync",
            "msg=\"no WAL file (a temporary database): "
            "keeping synchronous=FULL\"");
        return false;
    }
    return true;
}

static int
defer_on(struct sqlite_store *st, struct anvil_error *err)
{
    const char *wal = NULL;
    if (!can_defer(st, &wal))
        return ANVIL_OK;
    free(st->wal_path);
    st->wal_path = strdup(wal);
    if (st->wal_path == NULL)
        return av_error_set(err, ANVIL_RESOURCE_EXHAUSTED, "out of memory");
    pthread_mutex_lock(&st->sync_lock);
    int rc = wal_open(st, st->sync_msg, sizeof(st->sync_msg));
    pthread_mutex_unlock(&st->sync_lock);
    if (rc != 0)
        return av_error_set(err, ANVIL_INTERNAL, "%s", st->sync_msg);
    rc = sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_error(st, err, "deferring the sync");
    // Every earlier commit synced itself under FULL.
    atomic_store(&st->synced_seq, atomic_load(&st->write_seq));
    atomic_store(&st->deferred, true);
    AV_INFO("store.deferred_sync", "wal=%s", st->wal_path);
    return ANVIL_OK;
}

static int
defer_off(struct sqlite_store *st, struct anvil_error *err)
{
    int rc = sq_sync(&st->base, err);
    if (rc != ANVIL_OK)
        return rc;
    rc = sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_error(st, err, "restoring synchronous=FULL");
    atomic_store(&st->deferred, false);
    pthread_mutex_lock(&st->sync_lock);
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    st->wal_fd = -1;
    pthread_mutex_unlock(&st->sync_lock);
    return ANVIL_OK;
}

static int
sq_set_deferred_sync(struct store *base, bool on, struct anvil_error *err)
{
    struct sqlite_store *st = sq(base);
    if (st->synchronous < 2 || on == atomic_load(&st->deferred))
        return ANVIL_OK;
    if (!sqlite3_get_autocommit(st->db))
        return av_error_set(err, ANVIL_FAILED_PRECONDITION,
            "the sync mode can change only between transactions");
    return on ? defer_on(st, err) : defer_off(st, err);
}

void
sq_sync_fini(struct sqlite_store *st)
{
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    st->wal_fd = -1;
    pthread_mutex_destroy(&st->sync_lock);
    free(st->wal_path);
    st->wal_path = NULL;
}

void
sq_sync_ops(struct store_ops *o)
{
    o->sync              = sq_sync;
    o->needs_sync        = sq_needs_sync;
    o->set_deferred_sync = sq_set_deferred_sync;
}
