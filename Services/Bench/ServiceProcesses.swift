import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A service binary started by the benchmark.
final class BenchProcess: @unchecked Sendable {
    let name: String
    let process: Process
    let readyPort: Int

    init(name: String, binary: String, binDir: String, logDir: String, environment: [String: String], readyPort: Int) throws {
        self.name = name
        self.readyPort = readyPort
        process = Process()
        process.executableURL = URL(fileURLWithPath: "\(binDir)/\(binary)")
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true)
        let logPath = "\(logDir)/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    func waitReady(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw BenchError("\(name) exited during start-up") }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(readyPort)/readyz")
            request.method = .GET
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status == .ok {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("\(name) not ready within \(timeout)")
    }

    /// Peak resident set size so far (VmHWM), in MiB.
    var peakRSS: Double { memory("VmHWM") }
    /// Current resident set size (VmRSS), in MiB.
    var currentRSS: Double { memory("VmRSS") }

    private func memory(_ field: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        let kilobytes = Double(line.split(separator: " ").dropFirst().first { Double($0) != nil } ?? "0") ?? 0
        return rounded(kilobytes / 1024, 1)
    }

    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(pid, SIGKILL) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
