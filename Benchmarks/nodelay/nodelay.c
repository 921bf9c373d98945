// LD_PRELOAD shim: sets TCP_NODELAY on every accepted socket, so that a server that leaves
// Nagle's algorithm on (ngIRCd, InspIRCd) can be measured with the same socket options as
// SecureChat. Benchmarks only.
//   cc -shared -fPIC -O2 -o /tmp/nodelay.so Benchmarks/nodelay/nodelay.c -ldl
//   LD_PRELOAD=/tmp/nodelay.so ngircd ...
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void nodelay(int fd) {
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on non-TCP
    }
}

int accept(int fd, struct sockaddr *address, socklen_t *length) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    int client = real(fd, address, length);
    nodelay(client);
    return client;
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int client = real(fd, address, length, flags);
    nodelay(client);
    return client;
}
