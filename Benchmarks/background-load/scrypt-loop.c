// Background load for the login-storm experiment in BENCHMARKS.md: scrypt at the server's default
// parameters (ln=15, r=8, p=3) in an endless loop, at SCHED_IDLE or at nice 19.
//
//   cc -O2 Benchmarks/background-load/scrypt-loop.c -o /tmp/scrypt-loop -lcrypto
//   /tmp/scrypt-loop idle    # or: /tmp/scrypt-loop nice19
//
// Run it next to a paced `chat-bench fanout` and compare the chat's p99 with and without it.
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
    int idle = argc == 2 && strcmp(argv[1], "idle") == 0;
    if (argc != 2 || (!idle && strcmp(argv[1], "nice19") != 0)) {
        fprintf(stderr, "usage: %s idle|nice19\n", argv[0]);
        return 2;
    }
    if (idle) {
        struct sched_param parameter = {0};
        if (sched_setscheduler(0, SCHED_IDLE, &parameter) != 0) { perror("sched_setscheduler"); return 1; }
    } else if (setpriority(PRIO_PROCESS, 0, 19) != 0) {
        perror("setpriority");
        return 1;
    }
    unsigned char out[32];
    for (;;) {
        if (!EVP_PBE_scrypt("x", 1, (const unsigned char *)"y", 1, 32768, 8, 3, 64 << 20, out, sizeof out)) {
            fprintf(stderr, "EVP_PBE_scrypt failed\n");
            return 1;
        }
    }
}
