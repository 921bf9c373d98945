#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// glibc allocator settings for servers that move a lot of TLS data.
///
/// glibc hands freed memory back to the kernel as soon as 128 KiB are free at the top of a heap,
/// so a busy connection keeps page-faulting on fresh pages for its record buffers (measured: half
/// of a bulk transfer's CPU time went to page faults; see BENCHMARKS.md). Raising the trim and
/// mmap thresholds keeps that memory for reuse.
///
/// glibc also gives threads arenas of their own (up to 8 per core). A connection's TLS state is
/// made partly on an event loop and partly on a handshake thread, and the memory freed between
/// the two kinds of arena stays scattered: 5–7 KiB more per idle connection (measured with
/// `chat-bench idle`). One arena keeps it together; small allocations still come from each
/// thread's own cache without a lock, and fan-out throughput did not change in the same run. An
/// operator's `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` wins. Process-wide: call once at start-up.
enum MallocTuning {
    @_silgen_name("mallopt")
    private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

    private static let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
    private static let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
    private static let arenaMax: Int32 = -8  // M_ARENA_MAX

    /// Keeps up to `trim` bytes free at the top of each heap, serves allocations below `mmap`
    /// bytes from the heap and uses at most `arenas` arenas (unless the environment sets them).
    /// Returns false if glibc refused (other C libraries).
    @discardableResult
    static func apply(trim: Int32 = 32 << 20, mmap: Int32 = 1 << 20, arenas: Int32 = 1) -> Bool {
        #if os(Linux)
        let environment = ProcessInfo.processInfo.environment
        let arenasChosen = environment["MALLOC_ARENA_MAX"] != nil || environment["GLIBC_TUNABLES"] != nil
        return mallopt(trimThreshold, trim) == 1 && mallopt(mmapThreshold, mmap) == 1
            && (arenasChosen || mallopt(arenaMax, arenas) == 1)
        #else
        return false
        #endif
    }

    @_silgen_name("malloc_trim")
    private static func malloc_trim(_ pad: Int) -> Int32

    /// Gives the kernel back the free pages that start-up left in the heap (reading the config,
    /// the users file and the certificate): with the trim threshold above, glibc would keep them.
    /// 0.6 MiB of a fresh process's 5 MiB of anonymous memory with 2,200 accounts (BENCHMARKS.md).
    static func releaseStartupGarbage() {
        #if os(Linux)
        _ = malloc_trim(0)
        #endif
    }
}
