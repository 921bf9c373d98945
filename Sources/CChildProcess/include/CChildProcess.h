// GNU additions to posix_spawn that Swift's Glibc module does not show (they need _GNU_SOURCE),
// for ChatTesting's ChildProcess.
#pragma once
#include <spawn.h>

/// pipe2(fds, O_CLOEXEC): both ends close on exec, with no window for another thread's spawn.
int cchild_pipe_cloexec(int fds[2]);
/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `low` up.
int cchild_addclosefrom(posix_spawn_file_actions_t *actions, int low);
/// posix_spawn_file_actions_addchdir_np: the child starts in `path`.
int cchild_addchdir(posix_spawn_file_actions_t *actions, const char *path);
