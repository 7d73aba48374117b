import AsyncHTTPClient
import Foundation

/// One of the project's binaries running as a real process, with its own environment and log file.
final class ServiceProcess: Sendable {
    let name: String
    let pid: Int32
    let logPath: String
    private let process: Process
    private let pidFile: String

    private init(name: String, process: Process, logPath: String, pidFile: String) {
        self.name = name
        self.process = process
        self.pid = process.processIdentifier
        self.logPath = logPath
        self.pidFile = pidFile
    }

    /// Starts `binary` (e.g. `lead-ingest`) with the test servers' URLs plus `environment`, and waits until
    /// `GET <readyPath>` on `readyPort` answers 200 (`/healthz` for a service meant to start unready).
    static func start(
        _ binary: String,
        environment: [String: String],
        readyPort: Int,
        readyPath: String = "/readyz",
        label: String? = nil
    ) async throws -> ServiceProcess {
        let label = label ?? "\(binary)-\(readyPort)"
        let logs = TestEnvironment.testDir + "/logs"
        let pids = TestEnvironment.testDir + "/pids"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: pids, withIntermediateDirectories: true)
        let logPath = "\(logs)/\(label).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestEnvironment.binDir + "/" + binary)
        var env = ProcessInfo.processInfo.environment
        env["AMQP_URL"] = TestEnvironment.amqpURL
        env["DATABASE_URL"] = TestEnvironment.databaseURL
        env["LOG_LEVEL"] = env["TEST_SERVICE_LOG_LEVEL"] ?? "info"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let pidFile = "\(pids)/\(label).pid"
        try "\(process.processIdentifier)".write(toFile: pidFile, atomically: true, encoding: .utf8)
        let service = ServiceProcess(name: label, process: process, logPath: logPath, pidFile: pidFile)
        do {
            try await eventually("\(label) ready on :\(readyPort) (log: \(logPath))", timeout: .seconds(60), every: .milliseconds(100)) {
                guard process.exitCode == nil else { throw TestFailure("\(label) exited: \(service.logTail())") }
                return try await HTTP.get("http://127.0.0.1:\(readyPort)\(readyPath)").status == 200 ? true : nil
            }
        } catch {
            service.kill()
            throw error
        }
        return service
    }

    var isRunning: Bool { process.exitCode == nil }

    /// SIGTERM, then waits for the exit (graceful shutdown).
    func terminate(timeout: Duration = .seconds(20)) async throws {
        guard isRunning else { return }
        process.terminate()
        try await eventually("\(name) to exit after SIGTERM", timeout: timeout) { process.exitCode.map { _ in true } }
        try? FileManager.default.removeItem(atPath: pidFile)
    }

    /// kill -9: no chance to finish anything.
    func kill() {
        if isRunning { Foundation.kill(pid, SIGKILL) }
        // Polls the kernel's state: `waitUntilExit` can wait for as long as some other child lives.
        while process.exitCode == nil { usleep(10_000) }
        try? FileManager.default.removeItem(atPath: pidFile)
    }

    var exitStatus: Int32? { process.exitCode }

    func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }
}
