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

    /// A broker that stops reading (its process frozen: a stall, a resource alarm) must not hold requests. A
    /// burst of batches fills the socket towards it, so the connection's thread waits in `send(2)`: it gives up at
    /// the confirm timeout, every request gets 503 within seconds, and once the broker runs again, 202.
    @Test func frozenBrokerMeans503WithinTheConfirmTimeout() async throws {
        let broker = try await PrivateBroker.start(name: "frozen", port: 5698)
        let port = TestEnvironment.freePort()
        let ingest = try await ServiceProcess.start(
            "lead-ingest",
            environment: ["AMQP_URL": broker.url, "INGEST_PORT": "\(port)", "INGEST_CONFIRM_TIMEOUT_MS": "1500"],
            readyPort: port
        )
        let url = "http://127.0.0.1:\(port)/v1/interactions"
        #expect(try await HTTP.postJSON(url, ["session_id": "frozen", "type": "page_view"]).status == 202)

        try await broker.signal("STOP")
        let frozenAt = ContinuousClock.now
        // 24 batches of 100 events with 8 KB of data each: ~20 MB, far more than the socket buffers hold.
        let blob = String(repeating: "x", count: 8000)
        let batch = try JSONSerialization.data(withJSONObject: [
            "events": (0..<100).map { ["session_id": "frozen-\($0)", "type": "page_view", "data": ["blob": blob]] }
        ])
        let headers = [("Content-Type", "application/json"), ("Authorization", "Bearer dev-ingest-key")]
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<24 { group.addTask { try await HTTP.post(url + "/batch", body: batch, headers: headers).status } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let answeredIn = ContinuousClock.now - frozenAt
        try await broker.signal("CONT")
        #expect(statuses.allSatisfy { $0 == 503 }, "every batch refused while the broker is frozen: \(statuses)")
        #expect(answeredIn < .seconds(10), "answered in \(answeredIn)")

        try await eventually("202 again once the broker runs", timeout: .seconds(60)) {
            try await HTTP.postJSON(url, ["session_id": "frozen", "type": "page_view"]).status == 202 ? true : nil
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

    /// Sends a signal (`STOP`, `CONT`) to the node's Erlang VM, whose pid scripts/servers.sh keeps.
    func signal(_ name: String) async throws {
        let pidFile = "\(TestEnvironment.repositoryRoot)/.run/test-brokers/\(self.name)/rabbitmq/rabbitmq.pid"
        let pid = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/kill")
        process.arguments = ["-\(name)", pid]
        try process.run()
        guard try await process.exited() == 0 else { throw TestFailure("kill -\(name) \(pid) failed") }
    }

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
