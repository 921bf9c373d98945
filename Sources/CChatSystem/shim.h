#ifndef CCHATSYSTEM_SHIM_H
#define CCHATSYSTEM_SHIM_H
// What Swift's Glibc module does not show (full Foundation used to bring it in).
#include <pthread.h>
#include <sys/resource.h>

#ifdef __linux__
// A GNU extension (declared by <pthread.h> only with _GNU_SOURCE, which would make these
// headers differ from the Glibc module's).
extern int pthread_setname_np(pthread_t thread, const char *name);
#endif

/// Names the calling thread (at most 15 bytes), as `top -H` and debuggers show it.
static inline int chat_name_this_thread(const char *name) {
#ifdef __linux__
    return pthread_setname_np(pthread_self(), name);
#else
    return pthread_setname_np(name);
#endif
}

/// Sets the calling thread's nice value (Linux: `who` 0 is the calling thread alone).
static inline int chat_nice_this_thread(int value) {
    return setpriority(PRIO_PROCESS, 0, value);
}

#endif
