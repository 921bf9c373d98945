/// glibc allocator settings for servers that move a lot of TLS data.
///
/// glibc hands freed memory back to the kernel as soon as 128 KiB are free at the top of a heap,
/// so a busy connection keeps page-faulting on fresh pages for its record buffers (measured: half
/// of a bulk transfer's CPU time went to page faults; see BENCHMARKS.md). Raising the trim and
/// mmap thresholds keeps that memory for reuse. Process-wide: call once at start-up.
public enum MallocTuning {
    @_silgen_name("mallopt")
    private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

    private static let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
    private static let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD

    /// Keeps up to `trim` bytes free at the top of each heap and serves allocations below
    /// `mmap` bytes from the heap. Returns false if glibc refused (other C libraries).
    @discardableResult
    public static func apply(trim: Int32 = 32 << 20, mmap: Int32 = 1 << 20) -> Bool {
        #if os(Linux)
        return mallopt(trimThreshold, trim) == 1 && mallopt(mmapThreshold, mmap) == 1
        #else
        return false
        #endif
    }
}
