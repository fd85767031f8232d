#include "CInetSupport.h"

#include <sys/timex.h>

int inetkit_clock_state(long *max_error_us, long *estimated_error_us) {
    struct timex tx = {0};
    int state = adjtimex(&tx);
    if (max_error_us) *max_error_us = tx.maxerror;
    if (estimated_error_us) *estimated_error_us = tx.esterror;
    return state;
}
