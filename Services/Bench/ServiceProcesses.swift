import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The services the benchmark has started and not yet stopped, so that a benchmark stopped by SIGTERM or
/// SIGINT stops them too instead of leaving them holding their ports (the next run then measured them).
enum ChildProcesses {
    static let running = Mutex<Set<Int32>>([])

    /// Forwards SIGTERM and SIGINT to every running service, then exits.
    // Created once (a static let is initialised exactly once) and never changed; kept only so the sources live.
    nonisolated(unsafe) static let signalSources: [any DispatchSourceSignal] = [SIGTERM, SIGINT].map { signalNumber in
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler {
            let pids = running.withLock { $0 }
            FileHandle.standardError.write(Data("[bench] signal \(signalNumber): stopping \(pids.count) service(s)\n".utf8))
            for pid in pids { kill(pid, SIGTERM) }
            exit(128 + signalNumber)
        }
        source.resume()
        return source
    }

    static func installSignalHandlers() {
        _ = signalSources
    }
}

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
        ChildProcesses.running.withLock { _ = $0.insert(process.processIdentifier) }
    }

    var pid: Int32 { process.processIdentifier }

    /// Whether something already listens on `port` (a service left from an earlier run would pass the readiness
    /// check in place of the one just started). A plain TCP connect: AsyncHTTPClient retries a refused
    /// connection until the request's deadline, so an HTTP probe of a free port took its whole timeout (2 s).
    static func answers(on port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

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
        defer { ChildProcesses.running.withLock { _ = $0.remove(pid) } }
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
