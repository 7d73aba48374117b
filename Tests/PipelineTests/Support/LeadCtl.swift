import Foundation

/// Runs `leadctl` against a database and returns its exit status and output.
enum LeadCtl {
    static func run(_ arguments: [String], databaseURL: String = TestEnvironment.databaseURL, label: String) async throws -> (status: Int32, output: String) {
        let output = TestEnvironment.testDir + "/logs/leadctl-\(label).log"
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestEnvironment.binDir + "/leadctl")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DATABASE_URL"] = databaseURL
        environment["AMQP_URL"] = TestEnvironment.amqpURL
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = try await process.exited()
        try? handle.close()
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// The last line of the output that parses as a JSON object.
    static func lastJSON(_ output: String) -> [String: Any]? {
        for line in output.split(separator: "\n").reversed() {
            if let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] { return object }
        }
        return nil
    }
}
