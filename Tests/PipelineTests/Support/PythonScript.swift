import Foundation

/// Runs one of the repository's Python checks (Tests/browser, Tests/contract) and returns its exit status
/// (nil when it ran past `timeout` and was stopped) with its output.
enum PythonScript {
    static func run(_ script: String, _ arguments: [String], label: String, timeout: Duration = .seconds(180)) async throws -> (status: Int32?, output: String) {
        let output = TestEnvironment.testDir + "/logs/\(label).log"
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestEnvironment.repositoryRoot + "/" + script] + arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask { try await process.exited() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if status == nil { process.terminate() }
        try? handle.close()
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}
