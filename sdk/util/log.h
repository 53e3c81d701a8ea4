// log.h - levelled log lines: "ts level component event key=value ...".
//
// One process-wide sink, level and format, set by a program's main() (or by
// anvil_logger_set() for library users) before threads start; reads of the
// level are then lock-free. Library code never prints: with no sink set,
// lines are discarded. The level is tested before any formatting.
#ifndef AV_LOG_H
#define AV_LOG_H

#include <stdbool.h>

enum av_log_level {
    AV_LOG_ERROR = 0,
    AV_LOG_WARN  = 1,
    AV_LOG_INFO  = 2,
    AV_LOG_DEBUG = 3,
};

// "error", "warn", "info", "debug" -> level. 0 on success, -1 if unknown.
int av_log_parse_level(const char *name, int *level);

void av_log_set_level(int level);

// json=true writes JSON lines: {"ts":..,"level":..,"component":..,
// "event":..,"key":"value",...}.
void av_log_set_json(bool json);

// Names the program in every line ("anvild", "worker").
void av_log_set_component(const char *name);

// Sends lines to stderr (programs' main() calls this).
void av_log_to_stderr(void);

bool av_log_enabled(int level);

// fmt yields space-separated key=value fields; values with spaces must be
// quoted by the caller ("err=\"%s\"").
void av_log_write(int level, const char *event, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define AV_LOG(level, event, ...)                                        \
    do {                                                                 \
        if (av_log_enabled(level))                                       \
            av_log_write(level, event, __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define AV_ERR(event, ...) AV_LOG(AV_LOG_ERROR, event, __VA_ARGS__)
#define AV_WARN(event, ...) AV_LOG(AV_LOG_WARN, event, __VA_ARGS__)
#define AV_INFO(event, ...) AV_LOG(AV_LOG_INFO, event, __VA_ARGS__)
#define AV_DEBUG(event, ...) AV_LOG(AV_LOG_DEBUG, event, __VA_ARGS__)

#endif
