import ChatTesting
import Foundation
import Testing

/// The test suite's own child-process runner: every test that runs a program depends on it.
@Suite struct ChildProcessTests {
    @Test func outputIsCompleteOnceTheStatusIsKnown() async throws {
        for _ in 0..<5 {
            let child = try ChildProcess(["sh", "-c", "head -c 300000 /dev/zero | tr '\\\\0' x; echo; echo done >&2; exit 3"], output: .separate)
            #expect(await child.exitStatus(timeout: 10) == 3)
            #expect(child.output.count == 300_001)
            #expect(child.errors == "done\n")
        }
    }

    @Test func theChildStartsWithNoSignalBlockedOrIgnoredAndOnlyThreeDescriptors() throws {
        let (status, output) = ChildProcess.run(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
        #expect(status == 0)
        #expect(output.contains("SigBlk:\t0000000000000000"), "\(output)")
        // Signals 1 to 31 at their defaults (glibc keeps its own 32 and 33 out of reach).
        let ignored = output.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
        #expect(ignored.map { $0 & 0x7fff_ffff } == 0, "\(output)")
        // ls's own listing of the folder adds one descriptor of its own (3).
        let descriptors = ChildProcess.run(["ls", "/proc/self/fd"]).output.split(separator: "\n")
        #expect(descriptors == ["0", "1", "2", "3"], "descriptors: \(descriptors)")
    }

    @Test func inputReachesTheChildAndItsEndIsSeen() async throws {
        let child = try ChildProcess(["cat"], input: true)
        child.write("one line\n")
        child.closeInput()
        #expect(await child.exitStatus(timeout: 10) == 0)
        #expect(child.output == "one line\n")
    }

    @Test func aChildThatDoesNotEndIsKilledAtTheDeadline() {
        let started = Date()
        let (status, _) = ChildProcess.run(["sleep", "30"], timeout: 0.5)
        #expect(status == 128 + SIGKILL)
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func aMissingProgramIsAnError() {
        #expect(throws: ChildProcess.Failure.self) { try ChildProcess(["no-such-program-securechat"]) }
    }
}
