import Foundation
import Synchronization

/// What `make test` (scripts/test.sh) provides: the test servers' URLs and where the built binaries are.
enum TestEnvironment {
    static let environment = ProcessInfo.processInfo.environment

    static var amqpURL: String { required("AMQP_URL") }
    static var databaseURL: String { required("DATABASE_URL") }
    static var binDir: String { required("LEAD_BIN_DIR") }
    static var testDir: String { environment["TEST_DIR"] ?? repositoryRoot + "/.run/test" }

    static let repositoryRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .path

    private static func required(_ name: String) -> String {
        guard let value = environment[name], !value.isEmpty else {
            fatalError("\(name) is not set: run the integration tests through `make test`")
        }
        return value
    }

    private static let nextPort = Atomic<Int>(18_200)

    /// A port no other test in this run uses.
    static func freePort() -> Int {
        nextPort.add(1, ordering: .relaxed).newValue
    }
}

/// Waits until `condition` holds, polling; fails the test with `message` at the deadline. No fixed sleeps.
@discardableResult
func eventually<T>(
    _ message: @autoclosure () -> String,
    timeout: Duration = .seconds(20),
    every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    var lastError: (any Error)?
    while true {
        do {
            if let value = try await condition() { return value }
        } catch {
            lastError = error
        }
        if ContinuousClock.now >= deadline {
            throw TestFailure("timed out after \(timeout): \(message())\(lastError.map { " (last error: \($0))" } ?? "")")
        }
        try await Task.sleep(for: interval)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
