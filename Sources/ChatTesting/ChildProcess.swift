import CChildProcess
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests, started with `posix_spawnp` and reaped with `waitpid`.
///
/// Not Foundation's `Process`: on Linux its `waitUntilExit()` relies on a SIGCHLD that a test
/// runner without SIGCHLD blocked on its main thread can lose, and then it spins for ever (seen in CI,
/// with tmux as the child). Here every wait has a deadline, the child starts with no signal blocked
/// and every signal at its default (the test runner's threads block most signals and ignore
/// SIGPIPE, and a tmux server that inherits that never reaps its own children), and only
/// standard input, output and error are passed on.
public final class ChildProcess: @unchecked Sendable {
    /// Where the child's standard output and standard error go.
    public enum Output: Sendable {
        /// Both into one captured stream, read with `output`.
        case merged
        /// Each captured on its own: `output` and `errors`.
        case separate
        /// To /dev/null.
        case discard
    }

    public let pid: pid_t
    private let collected = Collected()
    private var inputFD: Int32 = -1
    private var exit: Int32?
    private let lock = NSLock()

    /// Starts `arguments[0]` (looked up on PATH) with the rest as its arguments.
    /// - Parameters:
    ///   - environment: the child's whole environment; nil passes this process's on.
    ///   - directory: the child's working directory; nil keeps this process's.
    ///   - input: true gives the child a pipe to `write` to; false gives it /dev/null.
    public init(_ arguments: [String], environment: [String: String]? = nil, directory: String? = nil, input: Bool = false, output: Output = .merged) throws {
        precondition(!arguments.isEmpty, "ChildProcess needs a program name")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var parentEnds: [Int32] = []  // closed here if spawning fails
        var childEnds: [Int32] = []  // closed here once the child has its copies
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard cchild_pipe_cloexec(&fds) == 0 else { throw Failure(what: "pipe2", code: errno) }
            return (fds[0], fds[1])
        }
        defer { childEnds.forEach { close($0) } }

        if input {
            let pipe = try makePipe()
            posix_spawn_file_actions_adddup2(&actions, pipe.read, 0)
            childEnds.append(pipe.read)
            parentEnds.append(pipe.write)
            inputFD = pipe.write
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        var readers: [(fd: Int32, isError: Bool)] = []
        switch output {
        case .discard:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        case .merged:
            let pipe = try makePipe()
            posix_spawn_file_actions_adddup2(&actions, pipe.write, 1)
            posix_spawn_file_actions_adddup2(&actions, pipe.write, 2)
            childEnds.append(pipe.write)
            parentEnds.append(pipe.read)
            readers.append((pipe.read, false))
        case .separate:
            for (target, isError) in [(Int32(1), false), (Int32(2), true)] {
                let pipe = try makePipe()
                posix_spawn_file_actions_adddup2(&actions, pipe.write, target)
                childEnds.append(pipe.write)
                parentEnds.append(pipe.read)
                readers.append((pipe.read, isError))
            }
        }
        // Nothing but 0, 1 and 2 reaches the child, whatever this process has open.
        cchild_addclosefrom(&actions, 3)
        if let directory { cchild_addchdir(&actions, directory) }

        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in Int32(1)..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }

        var child: pid_t = 0
        let result = argv.withUnsafeBufferPointer { argvBuffer in
            if let envp {
                return envp.withUnsafeBufferPointer { posix_spawnp(&child, arguments[0], &actions, &attributes, argvBuffer.baseAddress!, $0.baseAddress!) }
            }
            return posix_spawnp(&child, arguments[0], &actions, &attributes, argvBuffer.baseAddress!, environ)
        }
        guard result == 0 else {
            parentEnds.forEach { close($0) }
            throw Failure(what: "starting \(arguments[0])", code: result)
        }
        pid = child
        for reader in readers {
            let collected = self.collected
            let thread = Thread { collected.read(reader.fd, isError: reader.isError) }
            thread.name = "ChildProcess reader"
            collected.started()
            thread.start()
        }
    }

    deinit {
        if inputFD >= 0 { close(inputFD) }
        if exit == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        collected.stop()
    }

    /// Everything captured from standard output (and standard error when merged) so far.
    public var output: String { collected.text(isError: false) }
    /// Everything captured from standard error so far (`.separate` only).
    public var errors: String { collected.text(isError: true) }

    /// Writes `text` to the child's standard input (started with `input: true`).
    public func write(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        guard inputFD >= 0 else { return }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(inputFD, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue }; return }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Closes the child's standard input: it reads end of file.
    public func closeInput() {
        lock.lock(); defer { lock.unlock() }
        if inputFD >= 0 { close(inputFD); inputFD = -1 }
    }

    /// Sends `signal` to the child, if it has not been reaped yet.
    public func signal(_ signal: Int32) {
        lock.lock(); defer { lock.unlock() }
        if exit == nil { kill(pid, signal) }
    }

    /// The exit status if the child has ended (128 + the signal's number if a signal ended it).
    public var status: Int32? {
        lock.lock(); defer { lock.unlock() }
        if let exit { return exit }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        let signal = raw & 0x7f
        exit = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        return exit
    }

    /// Waits up to `timeout` seconds for the child to end; nil if it is still running. Once it has
    /// ended, waits for its output to be read too, up to a second more.
    public func exitStatus(timeout: Double = 15) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while status == nil && Date() < deadline { try? await Task.sleep(nanoseconds: 10_000_000) }
        guard let status else { return nil }
        let drained = Date().addingTimeInterval(1)
        while collected.reading && Date() < drained { try? await Task.sleep(nanoseconds: 5_000_000) }
        return status
    }

    /// Waits up to `timeout` seconds for the child to end, then kills it; returns its status
    /// (128 + 9 if it had to be killed). For async callers: the wait sleeps, it does not block.
    public func waitForExit(timeout: Double = 15) async -> Int32 {
        if let status = await exitStatus(timeout: timeout) { return status }
        return finish(timeout: 0)
    }

    /// Waits up to `timeout` seconds for the child to end, then kills it; returns its status.
    /// Waits for its output to be read too, up to a second more.
    @discardableResult
    public func finish(timeout: Double = 15) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while status == nil && Date() < deadline { usleep(10_000) }
        if status == nil {
            kill(pid, SIGKILL)
            while status == nil { usleep(1_000) }
        }
        collected.waitForReaders(until: Date().addingTimeInterval(1))
        return status!
    }

    /// Runs a command to its end, bounded in time; its output is standard output and error together.
    @discardableResult
    public static func run(_ arguments: [String], timeout: Double = 20) -> (status: Int32, output: String) {
        do {
            let child = try ChildProcess(arguments)
            let status = child.finish(timeout: timeout)
            return (status, child.output)
        } catch {
            return (-1, "\(error)")
        }
    }

    /// `run` on a thread of its own, for long commands in async tests: a blocking wait on one of
    /// the concurrency pool's threads (two on a two-core machine) would stall every other test.
    public static func runDetached(_ arguments: [String], timeout: Double = 20) async -> (status: Int32, output: String) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: run(arguments, timeout: timeout)) }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let what: String
        public let code: Int32
        public var description: String { "\(what): \(String(cString: strerror(code)))" }
    }

    /// The captured bytes, shared with the reader threads (which must not keep the child alive).
    // @unchecked Sendable: every stored `var` is only touched with `condition` locked.
    private final class Collected: @unchecked Sendable {
        private let condition = NSCondition()
        private var out = Data()
        private var err = Data()
        private var running = 0
        private var stopping = false

        func started() { condition.lock(); running += 1; condition.unlock() }

        /// Whether a reader has yet to see end of file.
        var reading: Bool { condition.lock(); defer { condition.unlock() }; return running > 0 }

        func read(_ fd: Int32, isError: Bool) {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            defer {
                close(fd)
                condition.lock(); running -= 1; condition.broadcast(); condition.unlock()
            }
            while true {
                var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, 100)
                if ready == 0 {
                    condition.lock(); let stop = stopping; condition.unlock()
                    if stop { return }
                    continue
                }
                if ready < 0 { if errno == EINTR { continue }; return }
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count == 0 { return }
                if count < 0 { if errno == EINTR || errno == EAGAIN { continue }; return }
                condition.lock()
                if isError { err.append(contentsOf: buffer[0..<count]) } else { out.append(contentsOf: buffer[0..<count]) }
                condition.unlock()
            }
        }

        func text(isError: Bool) -> String {
            condition.lock(); defer { condition.unlock() }
            return String(decoding: isError ? err : out, as: UTF8.self)
        }

        /// Waits until every reader has seen end of file, or `deadline`.
        func waitForReaders(until deadline: Date) {
            condition.lock(); defer { condition.unlock() }
            while running > 0 && condition.wait(until: deadline) {}
        }

        /// Readers still waiting (a grandchild may hold the pipe) stop within 100 ms.
        func stop() { condition.lock(); stopping = true; condition.unlock() }
    }
}
