import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import PostgresNIO

/// The last phase of `make bench`: the broker-bound figures again on a 3-node RabbitMQ cluster (quorum queues
/// replicated three ways, confirms only once a quorum has each message), beside the single node's from the
/// same run. PostgreSQL stays the same single server, so the ratios isolate the broker.
extension Bench {
    struct SingleNodeFigures {
        var brokerCeiling: Double
        var ingestSingle: Double
        var ingestBatchEvents: Double
        var scorer: Double
    }

    func runCluster(options: LeadBench, database: PostgresClient, single: SingleNodeFigures) async throws {
        guard !options.clusterStack.isEmpty else { return }
        log("starting a 3-node RabbitMQ cluster (\(options.clusterStack), ports \(options.clusterBasePort)-\(options.clusterBasePort + 2))")
        try runServersScript(["rabbit-cluster-start", options.clusterStack, "\(options.clusterBasePort)"])
        defer {
            log("stopping the cluster")
            try? runServersScript(["rabbit-cluster-stop", options.clusterStack])
        }
        let urls = (0..<3).map { "amqp://guest:guest@127.0.0.1:\(options.clusterBasePort + $0)/%2F" }.joined(separator: ",")
        var environment = ProcessInfo.processInfo.environment
        environment["AMQP_URL"] = urls
        environment["AMQP_URLS"] = nil
        let cluster = try ServiceConfiguration(environment: environment)
        let broker = try await BrokerTools(configuration: cluster)
        let sample = Self.sampleEvent().encoded()
        let queues = [LeadTopology.scorerQueue, LeadTopology.conversionQueue]

        log("cluster: broker ceiling")
        let drains = try await broker.drain(queues)
        let messages = max(1000, options.brokerMessages / 2)
        let ceiling = try await broker.publishCeiling(messages: messages, body: sample).rate
        emitRatio("cluster.broker_publish", value: ceiling, unit: "msgs_per_s", single: single.brokerCeiling, extra: ["messages": messages, "nodes": 3])

        let ingest = try await start("lead-ingest", label: "cluster-ingest", port: Self.ingestPort, extra: ["AMQP_URL": urls])
        let wrk = Wrk(url: "http://127.0.0.1:\(Self.ingestPort)", apiKey: Self.apiKey, seconds: options.seconds)
        log("cluster: ingest, single events")
        let singleEvents = try await wrk.run(kind: .single, connections: 64)
        emitRatio(
            "cluster.ingest.single", value: singleEvents.requestsPerSecond, unit: "req_per_s", single: single.ingestSingle,
            extra: ["p50_ms": singleEvents.p50, "p99_ms": singleEvents.p99, "non_2xx": singleEvents.errors, "connections": 64]
        )
        log("cluster: ingest, batches of 100")
        let batch = try await wrk.run(kind: .batch(100), connections: 16)
        emitRatio(
            "cluster.ingest.batch", value: batch.requestsPerSecond * 100, unit: "events_per_s", single: single.ingestBatchEvents,
            extra: ["p99_ms": batch.p99, "non_2xx": batch.errors, "connections": 16]
        )
        await ingest.stop()
        try await broker.waitUntilEmpty(queues, timeout: .seconds(120))
        await drains.stop()

        let events = max(1000, options.scorerEvents / 2)
        log("cluster: scorer x1, filling the queue with \(events) events")
        let scorerBench = ScorerBench(database: database, broker: broker, logger: logger)
        let baseline = try await scorerBench.fill(events: events, tag: "benchc-\(UUID().uuidString.prefix(6))")
        let started = ContinuousClock.now
        let scorer = try await start(
            "lead-scorer", label: "cluster-scorer", port: 9121, extra: ["AMQP_URL": urls, "SCORER_METRICS_PORT": "9121"]
        )
        let rate = try await scorerBench.measure(events: events, baseline: baseline, since: started)
        emitRatio("cluster.scorer.x1", value: rate, unit: "events_per_s", single: single.scorer, extra: ["events": events])
        await scorer.stop()
        try? await broker.purge(LeadTopology.conversionQueue)
        await broker.close()
    }

    private func emitRatio(_ name: String, value: Double, unit: String, single: Double, extra: [String: Any]) {
        let ratio = single > 0 ? rounded(value / single) : 0
        report.emit(
            name,
            extra.merging([unit: rounded(value, 0), "single_node": rounded(single, 0), "ratio_to_single_node": ratio]) { $1 },
            summary: "\(Int(value)) \(unit.replacingOccurrences(of: "_per_s", with: "/s")) on 3 nodes, \(ratio)× the single node's \(Int(single))"
        )
    }

    /// `scripts/servers.sh <arguments>`, its output on our stderr.
    private func runServersScript(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["scripts/servers.sh"] + arguments
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("scripts/servers.sh \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }
}
