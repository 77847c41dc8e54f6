// Linux calls the Glibc module map leaves out: epoll, eventfd, accept4, prctl.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

// accept4 is declared only under _GNU_SOURCE, which the Glibc module is built without.
extern int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);

static inline int cepoll_accept4(int fd, int flags) {
    return accept4(fd, 0, 0, flags);
}

#include <sys/prctl.h>

// Names the calling thread (shown by top -H, at most 15 bytes).
static inline void cepoll_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

#include <unistd.h>
#include <sys/syscall.h>

// The calling thread's CPU affinity mask (sched_getaffinity(2) as a raw system
// call: glibc's wrapper and CPU_COUNT need _GNU_SOURCE). Returns the bytes of
// the mask the kernel wrote, or -1 with errno set.
static inline long cepoll_affinity(unsigned char *mask, unsigned long bytes) {
    return syscall(SYS_sched_getaffinity, 0, bytes, mask);
}
