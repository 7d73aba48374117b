import Foundation
import NIOHTTP1
import PostgresNIO
import Testing

/// lead-ingest answers 503 (with Retry-After) while its broker is down and 202 again once it is back,
/// without a restart. Runs on a private RabbitMQ node so other tests keep their broker.
@Suite(.serialized) struct BrokerOutageTests {
    @Test func brokerDownMeans503AndBackMeans202() async throws {
        let broker = try await PrivateBroker.start(name: "outage", port: 5690)
        let port = TestEnvironment.freePort()
        let ingest = try await ServiceProcess.start(
            "lead-ingest",
            environment: ["AMQP_URL": broker.url, "INGEST_PORT": "\(port)"],
            readyPort: port
        )
        let url = "http://127.0.0.1:\(port)/v1/interactions"
        let event = ["session_id": "outage", "type": "page_view"]
        #expect(try await HTTP.postJSON(url, event).status == 202)

        try await broker.stop()
        let stoppedAt = ContinuousClock.now
        let unavailable = try await eventually("503 once the broker is down", timeout: .seconds(5)) {
            let response = try await HTTP.postJSON(url, event)
            return response.status == 503 ? response : nil
        }
        #expect(ContinuousClock.now - stoppedAt < .seconds(2))
        #expect(unavailable.headers.first(name: "Retry-After") != nil)
        #expect((unavailable.json?["error"] as? [String: Any])?["code"] as? String == "unavailable")
        #expect(try await HTTP.get("http://127.0.0.1:\(port)/readyz").status == 503)

        try await broker.start()
        try await eventually("202 again after the broker is back", timeout: .seconds(30)) {
            try await HTTP.postJSON(url, event).status == 202 ? true : nil
        }
        try await ingest.terminate()
        #expect(ingest.exitStatus == 0)
        try await broker.stop()
    }
}

/// A RabbitMQ node of its own, started and stopped through scripts/servers.sh.
struct PrivateBroker {
    let name: String
    let port: Int
    var url: String { "amqp://guest:guest@127.0.0.1:\(port)/%2F" }

    /// Starts a fresh node: whatever an earlier run left in its directory (queues, messages, a database
    /// full of old alerts) is wiped first, so a test never passes or fails on another run's data.
    static func start(name: String, port: Int) async throws -> PrivateBroker {
        let broker = PrivateBroker(name: name, port: port)
        try await broker.script("stop")
        try? FileManager.default.removeItem(atPath: "\(TestEnvironment.repositoryRoot)/.run/test-brokers/\(name)")
        try await broker.start()
        return broker
    }

    func start() async throws { try await script("rabbit-start") }
    func stop() async throws { try await script("rabbit-stop") }
    func kill() async throws { try await script("rabbit-kill") }

    /// `rabbitmqctl` on this node (fault injection).
    func ctl(_ arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [TestEnvironment.repositoryRoot + "/scripts/servers.sh", "rabbit-ctl", "test-brokers/\(name)"] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard try await process.exited() == 0 else { throw TestFailure("rabbitmqctl \(arguments.joined(separator: " ")) failed") }
    }

    fileprivate func script(_ command: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [TestEnvironment.repositoryRoot + "/scripts/servers.sh", command, "test-brokers/\(name)", "\(port)"]
        try process.run()
        guard try await process.exited() == 0 else { throw TestFailure("servers.sh \(command) failed") }
    }
}
