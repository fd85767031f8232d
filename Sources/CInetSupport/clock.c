#include "CInetSupport.h"

#include <sys/timex.h>
#include <time.h>

int inetkit_clock_state(long *max_error_us, long *estimated_error_us) {
    struct timex tx = {0};
    int state = adjtimex(&tx);
    if (max_error_us) *max_error_us = tx.maxerror;
    if (estimated_error_us) *estimated_error_us = tx.esterror;
    return state;
}

void inetkit_log_timestamp(unsigned char *out) {
    // The calendar part is worked out once a second per thread (gmtime_r takes glibc's
    // time-zone lock and costs more than the rest of a log line's timestamp).
    static __thread time_t cached_second = (time_t)-1;
    static __thread unsigned char cached[20];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != cached_second) {
        struct tm parts;
        time_t seconds = now.tv_sec;
        gmtime_r(&seconds, &parts);
        int values[6] = { parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec };
        int widths[6] = { 4, 2, 2, 2, 2, 2 };
        const char separators[6] = { '-', '-', 'T', ':', ':', '.' };
        int position = 0;
        for (int part = 0; part < 6; part++) {
            int value = values[part] < 0 ? 0 : values[part];
            for (int digit = widths[part] - 1; digit >= 0; digit--) {
                cached[position + digit] = (unsigned char)('0' + value % 10);
                value /= 10;
            }
            position += widths[part];
            cached[position++] = (unsigned char)separators[part];
        }
        cached_second = now.tv_sec;
    }
    for (int i = 0; i < 20; i++) out[i] = cached[i];
    int milliseconds = (int)(now.tv_nsec / 1000000);
    out[20] = (unsigned char)('0' + milliseconds / 100 % 10);
    out[21] = (unsigned char)('0' + milliseconds / 10 % 10);
    out[22] = (unsigned char)('0' + milliseconds % 10);
    out[23] = 'Z';
}
