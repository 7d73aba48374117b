import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import PostgresNIO

/// Runs every measurement in order on one stack, so ratios compare figures from the same machine state.
struct Bench {
    let configuration: ServiceConfiguration
    let binDir: String
    let logDir: String
    let report: Report
    let logger = Logger(label: "lead-bench")

    static let ingestPort = 8090
    static let adminPort = 8091
    static let apiKey = "bench-key"

    var serviceEnvironment: [String: String] {
        [
            "INGEST_PORT": "\(Self.ingestPort)", "ADMIN_PORT": "\(Self.adminPort)", "INGEST_API_KEYS": Self.apiKey,
            "CONVERSION_METRICS_PORT": "9112", "ALERTS_METRICS_PORT": "9113", "LOG_LEVEL": "warning",
        ]
    }

    func run(options: LeadBench) async throws {
        let database = Database(configuration: configuration.database, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.client.run() }
            defer { group.cancelAll() }
            try await database.checkReachable(within: .seconds(10), logger: logger)
            try await Migrator(client: database.client, logger: logger).migrate()
            try await runAll(options: options, database: database.client)
        }
        report.printTable()
    }

    func start(_ binary: String, label: String, port: Int, extra: [String: String] = [:]) async throws -> BenchProcess {
        let process = try launch(binary, label: label, port: port, extra: extra)
        try await process.waitReady()
        return process
    }

    /// Starts a service without waiting for it to be ready (`waitReady`), so that several start together.
    func launch(_ binary: String, label: String, port: Int, extra: [String: String] = [:]) throws -> BenchProcess {
        if BenchProcess.answers(on: port) {
            throw BenchError("port \(port) already answers: a service left from an earlier run? Stop it first")
        }
        return try BenchProcess(
            name: label, binary: binary, binDir: binDir, logDir: logDir,
            environment: serviceEnvironment.merging(extra) { $1 }, readyPort: port
        )
    }

    private func runAll(options: LeadBench, database: PostgresClient) async throws {
        log("micro-benchmarks of the pure parts")
        for result in try MicroBench.run() {
            report.emit(
                "micro.\(result.name)",
                ["ns_per_op_p50": result.p50, "ns_per_op_p99": result.p99, "operations": result.operations],
                summary: "\(Int(result.p50)) ns per event (p50 of batches of 1,000), p99 \(Int(result.p99)) ns"
            )
        }
        log("starting services")
        let ingest = try await start("lead-ingest", label: "ingest", port: Self.ingestPort)
        let admin = try await start("lead-admin", label: "admin", port: Self.adminPort)
        let webhooks = WebhookSink(port: 9199)
        defer { webhooks.stop() }
        let alertsEnvironment = ["ALERT_WEBHOOK_URLS": webhooks.url, "ALERT_WEBHOOK_SECRET": "bench-secret", "HIGH_SCORE_THRESHOLD": "80"]
        let alerts = try await start("lead-alerts", label: "alerts", port: 9113, extra: alertsEnvironment)
        let conversion = try await start("lead-conversion", label: "conversion", port: 9112)
        let firstScorer = try await start("lead-scorer", label: "scorer-0", port: 9111, extra: ["SCORER_METRICS_PORT": "9111"])
        var peakRSS: [String: Double] = [:]
        func notePeak(_ process: BenchProcess, as name: String) { peakRSS[name] = max(peakRSS[name] ?? 0, process.peakRSS) }
        let idle = ["ingest": ingest.currentRSS, "admin": admin.currentRSS, "alerts": alerts.currentRSS,
                    "conversion": conversion.currentRSS, "scorer": firstScorer.currentRSS]
        report.emit("rss.idle", idle.mapValues { $0 as Any }.merging(["unit": "MiB"]) { $1 },
                    summary: idle.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value) MiB" }.joined(separator: ", "))

        let broker = try await BrokerTools(configuration: configuration)
        let sample = Self.sampleEvent().encoded()

        // Ingest and its ceiling are measured alike: published to `leads.interactions` (two quorum queues bound),
        // both queues drained by plain consumers, the workers stopped so they do not compete for the 2 cores.
        // lead-alerts stays stopped through the scorer runs too: their leads would raise tens of thousands of
        // alerts and webhooks, work that competes with the scorer and, left queued, delays the end-to-end run.
        await conversion.stop()
        notePeak(alerts, as: "alerts")
        await alerts.stop()
        notePeak(firstScorer, as: "scorer")
        await firstScorer.stop()
        let drained = [LeadTopology.scorerQueue, LeadTopology.conversionQueue]
        let drains = try await broker.drain(drained)
        log("broker ceiling")
        let brokerPIDs = ProcessCPU.pids(named: "beam.smp")
        let (brokerCeiling, ceilingMessages, brokerMicroseconds) = try await measureCeiling(
            broker, seconds: options.seconds, body: sample, window: 1000, pids: brokerPIDs
        )
        report.emit(
            "ceiling.broker_publish",
            ["msgs_per_s": rounded(brokerCeiling, 0), "messages": ceilingMessages, "seconds": options.seconds, "body_bytes": sample.count,
             "queue_type": configuration.queueType.rawValue, "confirms": "pipelined", "broker_cpu_us_per_msg": brokerMicroseconds],
            summary: "\(Int(brokerCeiling)) msg/s persistent, pipelined confirms, \(configuration.queueType.rawValue) queue, \(sample.count) B; broker \(Int(brokerMicroseconds)) µs CPU a message"
        )
        log("database ceiling")
        let databaseCeiling = try await DatabaseCeiling(client: database, logger: logger).measure(rows: options.databaseRows)
        report.emit(
            "ceiling.database_insert",
            ["rows_per_s": rounded(databaseCeiling, 0), "rows": options.databaseRows, "statement_rows": 100, "clients": 1],
            summary: "\(Int(databaseCeiling)) rows/s, 100-row unnest INSERTs, 1 client"
        )

        if options.scorerOnly {
            await drains.stop()
            _ = try await runScorer(
                options: options, database: database, broker: broker, databaseCeiling: databaseCeiling, notePeak: notePeak
            )
            for process in [ingest, admin] { await process.stop() }
            await broker.close()
            return
        }

        // Ingest and the scorer (skipped by --e2e-only, and with them the cluster phase that compares to them).
        var singleNode: SingleNodeFigures?
        if options.e2eOnly {
            await drains.stop()
        } else {
            // Ingest.
            // What wrk's 64 connections allow: at most 64 messages unconfirmed (one request each), where the
            // ceiling has 1,000. The broker's CPU a message depends on how many it handles at once.
            // Each run starts with the drains caught up, so no backlog of the run before competes for the cores.
            try await broker.waitUntilEmpty(drained, timeout: .seconds(120))
            let (narrowCeiling, narrowMessages, narrowMicroseconds) = try await measureCeiling(
                broker, seconds: options.seconds, body: sample, window: 64, pids: brokerPIDs
            )
            report.emit(
                "ceiling.broker_publish_64",
                ["msgs_per_s": rounded(narrowCeiling, 0), "messages": narrowMessages, "window": 64,
                 "broker_cpu_us_per_msg": narrowMicroseconds, "ratio_to_broker_ceiling": rounded(narrowCeiling / brokerCeiling)],
                summary: "\(Int(narrowCeiling)) msg/s with at most 64 unconfirmed (\(rounded(narrowCeiling / brokerCeiling, 2))× the ceiling); broker \(Int(narrowMicroseconds)) µs CPU a message"
            )
            let wrk = Wrk(url: "http://127.0.0.1:\(Self.ingestPort)", apiKey: Self.apiKey, seconds: options.seconds)
            try await broker.waitUntilEmpty(drained, timeout: .seconds(120))
            log("ingest, single events")
            let (ingestCPUBefore, brokerCPUBefore, machineBefore) = (ProcessCPU.seconds(ingest.pid), ProcessCPU.seconds(brokerPIDs), CPUTimes.read())
            let single = try await wrk.run(kind: .single, connections: 64)
            // Where the 2 cores went: lead-ingest's and the broker's CPU per request (the rest is wrk and the drains).
            let requests = single.requestsPerSecond * Double(options.seconds)
            let ingestMicroseconds = rounded((ProcessCPU.seconds(ingest.pid) - ingestCPUBefore) * 1e6 / requests, 0)
            let brokerPerRequest = rounded((ProcessCPU.seconds(brokerPIDs) - brokerCPUBefore) * 1e6 / requests, 0)
            let busy = CPUTimes.read().busyPercent(since: machineBefore)
            notePeak(ingest, as: "ingest")
            try await broker.waitUntilEmpty(drained, timeout: .seconds(120))
            log("ingest, batches of 100")
            let batch = try await wrk.run(kind: .batch(100), connections: 16)
            let eventsPerSecond = batch.requestsPerSecond * 100
            notePeak(ingest, as: "ingest")
            // The ceiling again, once the ingest runs' messages are drained: the machine's speed drifts by ±10 %
            // within minutes here, so the ingest figures are compared with the mean of the ceilings either side.
            try await broker.waitUntilEmpty(drained, timeout: .seconds(120))
            log("broker ceiling again")
            let (ceilingAfter, afterMessages, afterMicroseconds) = try await measureCeiling(
                broker, seconds: options.seconds, body: sample, window: 1000, pids: brokerPIDs
            )
            let bracket = (brokerCeiling + ceilingAfter) / 2
            report.emit(
                "ceiling.broker_publish_after_ingest",
                ["msgs_per_s": rounded(ceilingAfter, 0), "messages": afterMessages, "broker_cpu_us_per_msg": afterMicroseconds,
                 "ratio_to_broker_ceiling": rounded(ceilingAfter / brokerCeiling), "mean_msgs_per_s": rounded(bracket, 0)],
                summary: "\(Int(ceilingAfter)) msg/s after the ingest runs (\(rounded(ceilingAfter / brokerCeiling, 2))× the first); the ingest ratios below are to the mean, \(Int(bracket)) msg/s"
            )
            report.emit(
                "ingest.single",
                ["req_per_s": rounded(single.requestsPerSecond, 0), "p50_ms": single.p50, "p99_ms": single.p99,
                 "non_2xx": single.errors, "connections": 64, "ratio_to_broker_ceiling": rounded(single.requestsPerSecond / bracket),
                 "ratio_to_64_unconfirmed": rounded(single.requestsPerSecond / narrowCeiling),
                 "ingest_cpu_us_per_req": ingestMicroseconds, "broker_cpu_us_per_req": brokerPerRequest, "cpu_busy_percent": busy],
                summary: "\(Int(single.requestsPerSecond)) req/s, p50 \(single.p50) ms, p99 \(single.p99) ms, \(single.errors) non-2xx, \(rounded(single.requestsPerSecond / bracket, 2))× broker ceiling (\(rounded(single.requestsPerSecond / narrowCeiling, 2))× the publisher with 64 unconfirmed); CPU a request: ingest \(Int(ingestMicroseconds)) µs, broker \(Int(brokerPerRequest)) µs (CPUs \(busy) % busy)"
            )
            report.emit(
                "ingest.batch",
                ["events_per_s": rounded(eventsPerSecond, 0), "req_per_s": rounded(batch.requestsPerSecond, 0), "events_per_request": 100,
                 "p50_ms": batch.p50, "p99_ms": batch.p99, "non_2xx": batch.errors, "connections": 16,
                 "ratio_to_broker_ceiling": rounded(eventsPerSecond / bracket)],
                summary: "\(Int(eventsPerSecond)) events/s (\(Int(batch.requestsPerSecond)) req/s × 100), p99 \(batch.p99) ms, \(rounded(eventsPerSecond / bracket, 2))× broker ceiling"
            )
            if options.ingestOnly {
                await drains.stop()
                for process in [ingest, admin] { await process.stop() }
                await broker.close()
                report.emit("rss.peak", ["ingest": peakRSS["ingest"] ?? 0, "unit": "MiB"], summary: "ingest \(peakRSS["ingest"] ?? 0) MiB")
                return
            }

            try await broker.waitUntilEmpty(drained, timeout: .seconds(120))
            await drains.stop()

            let plainRate = try await runScorer(
                options: options, database: database, broker: broker, databaseCeiling: databaseCeiling, notePeak: notePeak
            )
            singleNode = SingleNodeFigures(
                brokerCeiling: bracket, ingestSingle: single.requestsPerSecond, ingestBatchEvents: eventsPerSecond,
                scorer: plainRate
            )
            // The scorer phases' rows vacuumed now, not by autovacuum during the end-to-end run (ScorerBench.vacuum).
            log("vacuuming the scorer phases' tables")
            let vacuumStarted = ContinuousClock.now
            try await ScorerBench(database: database, broker: broker, logger: logger).vacuum()
            log("vacuumed in \(ContinuousClock.now - vacuumStarted)")
        }

        try await runEndToEnd(
            options: options, database: database, broker: broker, services: (ingest, admin), webhooks: webhooks,
            alertsEnvironment: alertsEnvironment, notePeak: notePeak
        )
        report.emit("rss.peak", peakRSS.mapValues { $0 as Any }.merging(["unit": "MiB"]) { $1 },
                    summary: peakRSS.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value) MiB" }.joined(separator: ", "))

        for process in [ingest, admin] { await process.stop() }
        await broker.close()

        if let singleNode {
            try await runCluster(options: options, database: database, single: singleNode)
        }
    }

    /// End to end, everything running, from a quiet start (the scorer runs' alert backlog dropped): 202 → lead
    /// row and → `lead.scored`, `lead.scored` → alert and → webhook, consultation → prompt, at `--e2e-rate`.
    private func runEndToEnd(
        options: LeadBench, database: PostgresClient, broker: BrokerTools, services: (ingest: BenchProcess, admin: BenchProcess),
        webhooks: WebhookSink, alertsEnvironment: [String: String], notePeak: (BenchProcess, String) -> Void
    ) async throws {
        try await broker.purge(LeadTopology.alertsQueue)
        // Deliveries an earlier run left pending on this database (an --e2e-only run on a used stack) would go
        // out first and delay every webhook of this run; they are marked failed, with the reason.
        try await database.query(
            """
            UPDATE webhook_deliveries SET status = 'failed', last_error = 'set aside by lead-bench before its end-to-end run'
            WHERE status = 'pending'
            """,
            logger: logger
        )
        let alerts = try await start("lead-alerts", label: "alerts-e2e", port: 9113, extra: alertsEnvironment)
        let scorer = try await start("lead-scorer", label: "scorer-e2e", port: 9111, extra: ["SCORER_METRICS_PORT": "9111"])
        let conversion = try await start("lead-conversion", label: "conversion-e2e", port: 9112)
        log("end to end at \(options.e2eRate) events/s")
        // Autovacuum passes that ran during the run: after the scorer phases' bulk of rows they compete for the CPUs.
        let autovacuumsBefore = try await autovacuumCount(database)
        // Each process's CPU over the run (sending and draining), to say where a lead's CPU goes.
        let processes: [(String, [Int32])] = [
            ("broker", ProcessCPU.pids(named: "beam.smp")), ("ingest", [services.ingest.pid]), ("scorer", [scorer.pid]),
            ("conversion", [conversion.pid]), ("alerts", [alerts.pid]), ("bench", [getpid()]),
        ]
        let cpuBefore = processes.map { ProcessCPU.seconds($0.1) }
        let postgresBefore = ProcessCPU.snapshot(named: "postgres")
        let e2e = try await EndToEnd(
            ingestPort: Self.ingestPort, apiKey: Self.apiKey, database: database,
            configuration: configuration, webhooks: webhooks, logger: logger
        ).run(rate: options.e2eRate, seconds: options.seconds)
        let autovacuums = try await autovacuumCount(database) - autovacuumsBefore
        var cpuPerLead: [String: Double] = [:]
        for ((name, pids), before) in zip(processes, cpuBefore) {
            cpuPerLead[name] = rounded((ProcessCPU.seconds(pids) - before) * 1e6 / Double(max(e2e.count, 1)), 0)
        }
        cpuPerLead["postgres"] = rounded(ProcessCPU.seconds(named: "postgres", since: postgresBefore) * 1e6 / Double(max(e2e.count, 1)), 0)
        report.emit(
            "e2e.lead",
            ["rate_per_s": options.e2eRate, "leads": e2e.count, "missing": e2e.missing,
             "row_p50_ms": e2e.rowP50, "row_p99_ms": e2e.rowP99, "bus_p50_ms": e2e.busP50, "bus_p99_ms": e2e.busP99,
             "cpu_busy_percent": e2e.cpuBusyPercent, "autovacuum_passes": autovacuums, "sender_connections": e2e.senderConnections],
            summary: "202 → lead row p50 \(e2e.rowP50) ms p99 \(e2e.rowP99) ms; 202 → lead.scored on the bus p50 \(e2e.busP50) ms p99 \(e2e.busP99) ms (\(e2e.count) leads, \(e2e.missing) missing, over \(e2e.senderConnections) connections; CPUs \(e2e.cpuBusyPercent) % busy while sending; \(autovacuums) autovacuum/autoanalyze passes finished meanwhile)"
        )
        let cpuOrder = ["broker", "postgres", "ingest", "scorer", "conversion", "alerts", "bench"]
        report.emit(
            "e2e.cpu",
            cpuPerLead.mapValues { $0 as Any }.merging(["unit": "µs per lead", "leads": e2e.count]) { $1 },
            summary: "CPU a lead over the run: " + cpuOrder.map { "\($0) \(Int(cpuPerLead[$0] ?? 0)) µs" }.joined(separator: ", ")
        )
        report.emit(
            "alerts.latency",
            ["rate_per_s": options.e2eRate, "alerts": e2e.alerts, "publish_p50_ms": e2e.alertP50, "publish_p99_ms": e2e.alertP99,
             "webhook_p50_ms": e2e.webhookP50, "webhook_p99_ms": e2e.webhookP99,
             "alert_row_p50_ms": e2e.alertRowP50, "alert_row_p99_ms": e2e.alertRowP99],
            summary: "lead.scored → alert.high_score p50 \(e2e.alertP50) ms p99 \(e2e.alertP99) ms; → signed webhook received p50 \(e2e.webhookP50) ms p99 \(e2e.webhookP99) ms (\(e2e.alerts) alerts; alert row p50 \(e2e.alertRowP50) ms p99 \(e2e.alertRowP99) ms)"
        )

        report.emit(
            "conversion.latency",
            ["rate_per_s": options.e2eRate / 4, "sessions": e2e.sessions, "prompted": e2e.prompted,
             "prompt_p50_ms": e2e.promptP50, "prompt_p99_ms": e2e.promptP99],
            summary: "anonymous consultation 202 → conversion.prompt p50 \(e2e.promptP50) ms p99 \(e2e.promptP99) ms (\(e2e.prompted) of \(e2e.sessions) sessions prompted)"
        )

        notePeak(services.ingest, "ingest")
        notePeak(services.admin, "admin")
        notePeak(alerts, "alerts")
        notePeak(conversion, "conversion")
        notePeak(scorer, "scorer")
        for process in [alerts, conversion, scorer] { await process.stop() }
    }

    /// Autovacuum and autoanalyze passes finished so far on the project's tables.
    private func autovacuumCount(_ database: PostgresClient) async throws -> Int {
        let query: PostgresQuery = "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::int8 FROM pg_stat_user_tables"
        for try await count in try await database.query(query, logger: logger).decode(Int.self) { return count }
        return 0
    }

    /// Scorer: a pre-filled queue, then 1 and 2 scorers, then one with an active model; returns the rate of one
    /// without a model.
    private func runScorer(
        options: LeadBench, database: PostgresClient, broker: BrokerTools, databaseCeiling: Double,
        notePeak: (BenchProcess, String) -> Void
    ) async throws -> Double {
        /// Stops scorers after a run, noting their peak memory; drops what they left for lead-conversion.
        func stop(_ scorers: [BenchProcess]) async throws {
            for scorer in scorers {
                notePeak(scorer, "scorer")
                await scorer.stop()
            }
            try await broker.purge(LeadTopology.conversionQueue)
        }
        // An unmeasured warm-up pass first: on empty tables the first run came out 20-30 % slower than the
        // later ones, which skewed every comparison with it.
        let scorerBench = ScorerBench(database: database, broker: broker, logger: logger)
        log("scorer warm-up: \(options.scorerEvents / 5) events, not measured")
        let warmBaseline = try await scorerBench.fill(events: options.scorerEvents / 5, tag: "benchw-\(UUID().uuidString.prefix(6))")
        let warmStarted = ContinuousClock.now
        let warmScorer = try await start("lead-scorer", label: "scorer-warm-up", port: 9121, extra: ["SCORER_METRICS_PORT": "9121"])
        _ = try await scorerBench.measure(events: options.scorerEvents / 5, baseline: warmBaseline, since: warmStarted)
        try await stop([warmScorer])
        // The batch function's database time an event without a model (x1), for the model run's difference.
        var plainTimes: ScorerBench.FunctionTimes?
        for count in [1, 2] {
            log("scorer x\(count): filling the queue with \(options.scorerEvents) events")
            let baseline = try await scorerBench.fill(events: options.scorerEvents, tag: "bench\(count)-\(UUID().uuidString.prefix(6))")
            try await scorerBench.analyze()
            let started = ContinuousClock.now
            // Where the 2 cores go: the machine's busy share, and each party's CPU an event.
            let machineBefore = CPUTimes.read()
            let brokerPIDs = ProcessCPU.pids(named: "beam.smp")
            let brokerBefore = ProcessCPU.seconds(brokerPIDs)
            let postgresBefore = ProcessCPU.snapshot(named: "postgres")
            let timesBefore = try await scorerBench.functionTimes()
            // All the scorers start at once. Started one after another (each ready before the next was launched,
            // and a 2 s port probe before each launch), the first ran alone for the 2-2.5 s the second took to
            // join it, about a fifth of the two-scorer run's measured time (pg_stat_activity samples).
            let scorers = try (0..<count).map { index in
                try launch("lead-scorer", label: "scorer-\(count)-\(index)", port: 9121 + index, extra: ["SCORER_METRICS_PORT": "\(9121 + index)"])
            }
            for scorer in scorers { try await scorer.waitReady() }
            let rate = try await scorerBench.measure(events: options.scorerEvents, baseline: baseline, since: started)
            let busy = CPUTimes.read().busyPercent(since: machineBefore)
            let perEvent = { (seconds: Double) in rounded(seconds * 1e6 / Double(options.scorerEvents), 0) }
            let scorerCPU = perEvent(scorers.reduce(0) { $0 + ProcessCPU.seconds($1.pid) })
            let brokerCPU = perEvent(ProcessCPU.seconds(brokerPIDs) - brokerBefore)
            let postgresCPU = perEvent(ProcessCPU.seconds(named: "postgres", since: postgresBefore))
            report.emit(
                "scorer.x\(count)",
                ["events_per_s": rounded(rate, 0), "events": options.scorerEvents, "scorers": count, "contact_share": 0.3,
                 "ratio_to_database_ceiling": rounded(rate / databaseCeiling), "cpu_busy_percent": busy,
                 "scorer_cpu_us_per_event": scorerCPU, "postgres_cpu_us_per_event": postgresCPU, "broker_cpu_us_per_event": brokerCPU],
                summary: "\(Int(rate)) events/s with \(count) scorer(s), \(rounded(rate / databaseCeiling, 2))× database ceiling; CPU an event: postgres \(Int(postgresCPU)) µs, scorer \(Int(scorerCPU)) µs, broker \(Int(brokerCPU)) µs (CPUs \(busy) % busy)"
            )
            try await stop(scorers)
            if count == 1 {
                plainTimes = try await scorerBench.functionTimes(after: timesBefore).since(timesBefore)
            }
        }

        // The scorer with an active prediction model: what computing conversion_probability costs.
        let width = try await PredictionStore.featureNames(client: database, logger: logger).count
        let model = LogisticRegression(
            means: Array(repeating: 0, count: width), scales: Array(repeating: 1, count: width),
            weights: (0..<width).map { Double($0 % 5) / 10 - 0.2 }, intercept: -1
        )
        let modelID = try await PredictionStore.save(
            model, features: try await PredictionStore.featureNames(client: database, logger: logger),
            metrics: .object(["bench": .bool(true)]), window: .object(["bench": .bool(true)]), client: database, logger: logger
        )
        _ = try await PredictionStore.activate(modelID, client: database, logger: logger)
        log("scorer x1 with a model: filling the queue with \(options.scorerEvents) events")
        let modelTag = "benchm-\(UUID().uuidString.prefix(6))"
        let modelBaseline = try await scorerBench.fill(events: options.scorerEvents, tag: modelTag)
        try await scorerBench.analyze()
        let predictionBefore = try await scorerBench.functionTimes()
        let modelStarted = ContinuousClock.now
        let modelScorer = try await start("lead-scorer", label: "scorer-model", port: 9121, extra: ["SCORER_METRICS_PORT": "9121"])
        let modelRate = try await scorerBench.measure(events: options.scorerEvents, baseline: modelBaseline, since: modelStarted)
        try await PredictionStore.deactivate(client: database, logger: logger)
        let plainRate = report.value("scorer.x1", "events_per_s") ?? modelRate
        let overhead = max(0, 1 / modelRate - 1 / plainRate) * 1_000_000
        // Per lead scored: the events that joined a lead are the ones that needed a probability.
        let leadEvents = try await scorerBench.leadEvents(after: modelBaseline)
        let perLead = overhead * Double(options.scorerEvents) / Double(max(1, leadEvents))
        // From PostgreSQL's function statistics (flushed when the scorer's connections close): the prediction
        // step's own time (lead_predict_batch: features, probability, the row's write and the messages), and the
        // batch function's database time an event against the x1 run's, both per event that joined a lead (since
        // migration 026 the probability is an inlined SQL expression, so no function call counts predictions).
        try await stop([modelScorer])
        let prediction = try await scorerBench.functionTimes(after: predictionBefore).since(predictionBefore)
        let abRounds = 200
        // The same, controlled: the model's cost A/B on identical batches (the two runs above are minutes apart
        // on a database that grew in between, and their difference swung by ±40 µs a lead from run to run).
        let ab = try await scorerBench.modelAB(modelID: modelID, tag: modelTag, persons: options.scorerEvents / 4, rounds: abRounds, size: 100)
        let abPerLeadEvent = (ab.with - ab.without) * 1e6 / Double(max(1, ab.leadEvents))
        let stepPerLeadEvent = (prediction["lead_predict_batch"]?.milliseconds ?? 0) * 1000 / Double(max(1, leadEvents))
        let batchPerEvent = { (times: ScorerBench.FunctionTimes?) in
            (times?["lead_process_events"]?.milliseconds ?? 0) * 1000 / Double(options.scorerEvents)
        }
        let databasePerLeadEvent = (batchPerEvent(prediction) - batchPerEvent(plainTimes)) * Double(options.scorerEvents) / Double(max(1, leadEvents))
        report.emit(
            "scorer.x1.model",
            ["events_per_s": rounded(modelRate, 0), "overhead_us_per_event": rounded(overhead, 1),
             "events_with_a_lead": leadEvents, "overhead_us_per_lead_event": rounded(perLead, 1),
             "prediction_step_us_per_lead_event": rounded(stepPerLeadEvent, 1),
             "batch_db_us_per_event": rounded(batchPerEvent(prediction), 1),
             "batch_db_us_per_event_without_model": rounded(batchPerEvent(plainTimes), 1),
             "db_overhead_us_per_lead_event": rounded(databasePerLeadEvent, 1),
             "ab_batches": abRounds, "ab_ms_with_model": rounded(ab.with * 1000, 1), "ab_ms_without_model": rounded(ab.without * 1000, 1),
             "ab_lead_events": ab.leadEvents, "ab_overhead_us_per_lead_event": rounded(abPerLeadEvent, 1),
             "ratio_to_scorer_without_model": rounded(modelRate / plainRate)],
            summary: "\(Int(modelRate)) events/s with an active model: +\(rounded(overhead, 1)) µs per event, "
                + "+\(rounded(perLead, 1)) µs per event that joined a lead; the prediction step (features, probability, "
                + "row and messages) \(rounded(stepPerLeadEvent, 1)) µs per event that joined a lead (\(leadEvents)); the batch "
                + "function's database time \(rounded(batchPerEvent(prediction), 1)) µs an event against \(rounded(batchPerEvent(plainTimes), 1)) "
                + "without a model: \(rounded(databasePerLeadEvent, 1)) µs per event that joined a lead; A/B on \(abRounds) identical batches: "
                + "+\(rounded(abPerLeadEvent, 1)) µs per event that joined a lead (\(rounded(ab.with * 1000, 0)) ms against "
                + "\(rounded(ab.without * 1000, 0)) ms)"
        )
        return plainRate
    }

    static func sampleEvent() -> InteractionEvent {
        InteractionEvent(
            sessionID: "s-81f2a9c0", userID: 42, type: .faceAnalysis, sourcePage: "/face-analysis",
            contact: .init(name: "Asha Rao", phone: "+91 98765 43210", email: "asha@example.com"),
            consent: .init(marketing: true),
            data: ["recommendations": .array([.object(["procedure": .string("Rhinoplasty")])]), "urgency": .string("immediate")]
        )
    }

    /// The raw publisher's rate with at most `window` unconfirmed over `seconds` (as long as a wrk run, so that
    /// both take in the broker's pauses alike: a quorum queue's write-ahead log rolls over every 512 MB), the
    /// messages it published and the broker's own CPU a message: what a message costs the machine before any
    /// client's share.
    private func measureCeiling(
        _ broker: BrokerTools, seconds: Int, body: Data, window: Int, pids: [Int32]
    ) async throws -> (rate: Double, messages: Int, cpu: Double) {
        let cpuBefore = ProcessCPU.seconds(pids)
        let (messages, rate) = try await broker.publishCeiling(duration: .seconds(seconds), body: body, window: window)
        return (rate, messages, rounded((ProcessCPU.seconds(pids) - cpuBefore) * 1e6 / Double(messages), 0))
    }

    func log(_ message: String) {
        FileHandle.standardError.write(Data("[bench] \(message)\n".utf8))
    }
}
