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

    static let ingestPort = 18_080
    static let adminPort = 18_081

    func start() async throws -> Endpoints {
        if let starting { return try await starting.value }
        let task = Task { try await launch() }
        starting = task
        return try await task.value
    }

    private func launch() async throws -> Endpoints {
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
