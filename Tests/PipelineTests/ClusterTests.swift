import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import PostgresNIO
import Synchronization
import Testing

/// The pipeline on a 3-node RabbitMQ cluster (quorum queues) and a PostgreSQL primary with a streaming
/// replica: a steady stream of events while the node leading the scorer's queue is killed with -9. Every
/// event that got a 202 is processed once; ingest answers 503 at most for the seconds of the election; the
/// services carry on with the survivors; the killed node rejoins. lead-admin reads from the replica.
@Suite struct ClusterTests {
    static let stack = "test-brokers/cluster"
    static let base = 5684
    static let pgPort = 5453
    static let events = Int(ProcessInfo.processInfo.environment["CLUSTER_EVENTS"] ?? "") ?? 300

    func servers(_ arguments: [String]) async throws -> String {
        let output = TestEnvironment.testDir + "/logs/cluster-servers.log"
        if !FileManager.default.fileExists(atPath: output) { FileManager.default.createFile(atPath: output, contents: nil) }
        let capture = TestEnvironment.testDir + "/logs/cluster-\(UUID().uuidString.prefix(6)).out"
        FileManager.default.createFile(atPath: capture, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: capture))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [TestEnvironment.repositoryRoot + "/scripts/servers.sh"] + arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let status = try await process.exited()
        try? handle.close()
        let text = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        guard status == 0 else { throw TestFailure("servers.sh \(arguments.joined(separator: " ")) failed: \(text.suffix(800))") }
        return text
    }

    /// The node that leads the queue, from `rabbitmqctl list_queues name leader`.
    func leader(of queue: String) async throws -> Int? {
        let text = try await servers(["rabbit-ctl", "\(Self.stack)/rabbit-\(Self.base)", "list_queues", "name", "leader", "--no-table-headers", "-q"])
        for line in text.split(separator: "\n") where line.hasPrefix(queue + "\t") || line.hasPrefix(queue + " ") {
            for port in Self.base..<(Self.base + 3) where line.contains("leads-\(port)@") { return port }
        }
        return nil
    }

    @Test func killingTheLeaderNodeLosesNothing() async throws {
        try? FileManager.default.removeItem(atPath: TestEnvironment.repositoryRoot + "/.run/\(Self.stack)")
        _ = try await servers(["cluster-start", Self.stack, "\(Self.base)", "\(Self.pgPort)"])
        let urls = (Self.base..<(Self.base + 3)).map { "amqp://guest:guest@127.0.0.1:\($0)/%2F" }.joined(separator: ",")
        let primary = "postgres://leads:leads@127.0.0.1:\(Self.pgPort)/leads"
        let replica = "postgres://leads:leads@127.0.0.1:\(Self.pgPort + 1)/leads"
        let common = ["AMQP_URL": urls, "DATABASE_URL": primary, "QUEUE_TYPE": "quorum"]
        let scorerPort = TestEnvironment.freePort()
        let scorer = try await ServiceProcess.start(
            "lead-scorer", environment: common.merging(["SCORER_METRICS_PORT": "\(scorerPort)"]) { $1 }, readyPort: scorerPort, label: "cluster-scorer"
        )
        let ingestPort = TestEnvironment.freePort()
        let ingest = try await ServiceProcess.start(
            "lead-ingest", environment: common.merging(["INGEST_PORT": "\(ingestPort)", "INGEST_METRICS_PORT": "\(TestEnvironment.freePort())"]) { $1 },
            readyPort: ingestPort, label: "cluster-ingest"
        )
        let adminPort = TestEnvironment.freePort()
        let admin = try await ServiceProcess.start(
            "lead-admin", environment: common.merging(["ADMIN_PORT": "\(adminPort)", "ADMIN_DATABASE_URL": replica]) { $1 },
            readyPort: adminPort, label: "cluster-admin"
        )
        let victim = try #require(try await leader(of: LeadTopology.scorerQueue), "no leader found for \(LeadTopology.scorerQueue)")

        let tag = "cl\(UUID().uuidString.prefix(6).lowercased())"
        var accepted: [UUID] = []
        var sent = 0
        var unavailableSince: ContinuousClock.Instant?
        var window: Duration = .zero
        for index in 0..<Self.events {
            if index == Self.events / 3 {
                _ = try await servers(["rabbit-kill", "\(Self.stack)/rabbit-\(victim)"])
            }
            let id = UUID()
            var event: [String: Any] = ["event_id": id.uuidString.lowercased(), "session_id": "\(tag)-\(index % 40)", "type": "page_view"]
            if index % 10 == 0 {
                event["type"] = "face_analysis"
                event["contact"] = ["name": "Cluster \(index)", "email": "\(tag)-\(index)@example.com"]
            }
            sent += 1
            var attempts = 0
            while true {
                let status = (try? await HTTP.postJSON("http://127.0.0.1:\(ingestPort)/v1/interactions", event).status) ?? 0
                if status == 202 {
                    if let since = unavailableSince { window += ContinuousClock.now - since }
                    unavailableSince = nil
                    accepted.append(id)
                    break
                }
                if unavailableSince == nil { unavailableSince = ContinuousClock.now }
                attempts += 1
                if attempts > 600 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let database = PostgresClient(configuration: try DatabaseConfiguration(url: primary).clientConfiguration, backgroundLogger: Logger(label: "test-db"))
        let runner = Task.detached { await database.run() }
        defer { runner.cancel() }
        _ = try? await eventually("every accepted event stored", timeout: .seconds(120), every: .milliseconds(250)) { () -> Bool? in
            try await database.count("SELECT count(*) FROM user_interactions WHERE event_id = ANY(\(accepted))") == accepted.count ? true : nil
        }
        let processed = try await database.count("SELECT count(*) FROM user_interactions WHERE event_id = ANY(\(accepted))")
        let duplicated = try await database.count(
            "SELECT COALESCE(sum(n - 1), 0)::int8 FROM (SELECT count(*) AS n FROM leads WHERE email_normalized LIKE \("\(tag)-%") GROUP BY email_normalized) x"
        )
        print("cluster | killed node \(victim) | sent \(sent) | accepted \(accepted.count) | processed \(processed) | lost \(accepted.count - processed) | duplicated \(duplicated) | 503 window \(window)")
        #expect(accepted.count == sent)
        #expect(processed == accepted.count)
        #expect(duplicated == 0)
        #expect(window < .seconds(30), "ingest refused events for \(window)")

        // The killed node rejoins, and the replica serves lead-admin's reads.
        _ = try await servers(["rabbit-start", "\(Self.stack)/rabbit-\(victim)", "\(victim)"])
        let running = try await servers(["rabbit-ctl", "\(Self.stack)/rabbit-\(Self.base + (victim == Self.base ? 1 : 0))", "cluster_status"])
        #expect(running.contains("leads-\(victim)@localhost"))
        let leads = try await eventually("the replica lists the leads", timeout: .seconds(30)) { () -> Int? in
            let body = try await HTTP.get("http://127.0.0.1:\(adminPort)/v1/leads?q=Cluster&limit=500", headers: [("Authorization", "Bearer dev-admin-token")]).json
            let count = (body?["leads"] as? [Any])?.count ?? 0
            return count >= Self.events / 10 ? count : nil
        }
        #expect(leads == Self.events / 10)
        let readOnly = try await HTTP.get("http://127.0.0.1:\(adminPort)/readyz")
        #expect((readOnly.json?["checks"] as? [String: Bool])?["replica"] == true)

        for process in [ingest, scorer, admin] { try? await process.terminate() }
        _ = try? await servers(["cluster-stop", Self.stack])
    }
}
