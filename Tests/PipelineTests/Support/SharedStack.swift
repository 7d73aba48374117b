import Foundation

/// The five services started once for the whole test run, against the test servers.
/// Tests that need a private process (own broker, a killed scorer) start their own.
actor SharedStack {
    static let shared = SharedStack()

    struct Endpoints: Sendable {
        var ingest: String
        var admin: String
    }

    private var starting: Task<Endpoints, any Error>?
    private var processes: [ServiceProcess] = []

    static func isListening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    static let ingestPort = 18_080
    static let adminPort = 18_081

    func start() async throws -> Endpoints {
        if let starting { return try await starting.value }
        let task = Task { try await launch() }
        starting = task
        return try await task.value
    }

    private func launch() async throws -> Endpoints {
        // A service left running by an interrupted run would answer the readiness checks in place of ours.
        for port in [Self.ingestPort, Self.adminPort, 19101, 19102, 19103] where Self.isListening(port) {
            throw TestFailure("port \(port) is already in use (a service left from an earlier run?); stop it first")
        }
        let common = [
            "SCORER_METRICS_PORT": "19101", "CONVERSION_METRICS_PORT": "19102", "ALERTS_METRICS_PORT": "19103",
            "INGEST_PORT": "\(Self.ingestPort)", "ADMIN_PORT": "\(Self.adminPort)",
            "SOURCE_COSTS": "Face Analysis=3000", "INGEST_DEMO": "true",
            "INGEST_ALLOWED_ORIGINS": "https://shop.example",
        ]
        // The scorer first: it migrates the database the others read.
        processes.append(try await ServiceProcess.start("lead-scorer", environment: common, readyPort: 19101, label: "shared-scorer"))
        async let ingest = ServiceProcess.start("lead-ingest", environment: common, readyPort: Self.ingestPort, label: "shared-ingest")
        async let conversion = ServiceProcess.start("lead-conversion", environment: common, readyPort: 19102, label: "shared-conversion")
        async let alerts = ServiceProcess.start("lead-alerts", environment: common, readyPort: 19103, label: "shared-alerts")
        async let admin = ServiceProcess.start("lead-admin", environment: common, readyPort: Self.adminPort, label: "shared-admin")
        processes += try await [ingest, conversion, alerts, admin]
        return Endpoints(ingest: "http://127.0.0.1:\(Self.ingestPort)", admin: "http://127.0.0.1:\(Self.adminPort)")
    }
}
