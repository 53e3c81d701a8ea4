// dashboard_table.h - the table of the dashboard's embedded files. The
// definition is generated at build time by tools/embed.c from web/ (into
// build/<flavor>/gen/dashboard_files.c, never committed); dashboard.c is
// its only reader. Read-only data: any thread.
#ifndef SERVER_DASHBOARD_TABLE_H
#define SERVER_DASHBOARD_TABLE_H

#include "dashboard.h"

#include <stddef.h>

// Every file under web/, sorted by path as the Makefile lists them.
extern const struct dashboard_file dashboard_files[];
extern const size_t                dashboard_files_n;

#endif
