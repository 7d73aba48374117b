import AMQP
import Foundation
import Histogram
import LeadCore
import LeadService
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import Synchronization

/// Latency from lead-ingest's 202 to the lead row (its transaction time) and to `lead.scored` on the bus,
/// for new people arriving at a steady rate; beside them, anonymous visitors (one per four people) whose
/// consultation should prompt them for contact details: 202 → `conversion.prompt` on the bus.
struct EndToEnd {
    struct Result {
        var count: Int
        var missing: Int
        var rowP50: Double
        var rowP99: Double
        var busP50: Double
        var busP99: Double
        /// `lead.scored` → `alert.high_score` on the bus, and → the webhook's arrival (ms), over `alerts` leads.
        var alerts: Int
        var alertP50: Double
        var alertP99: Double
        var webhookP50: Double
        var webhookP99: Double
        /// `lead.scored` → the alert row (its transaction's time): the first of the alert's two hops, the
        /// consume and commit, beside the second (the outbox relay's publish).
        var alertRowP50: Double
        var alertRowP99: Double
        /// Anonymous sessions sent, prompts seen for them, and 202 → `conversion.prompt` (ms).
        var sessions: Int
        var prompted: Int
        var promptP50: Double
        var promptP99: Double
        /// How busy the machine's CPUs were while the traffic was sent (user + system + irq + steal, %).
        var cpuBusyPercent: Double
        /// Connections the sender opened to lead-ingest (each kept alive for the run).
        var senderConnections: Int
    }

    let ingestPort: Int
    let apiKey: String
    let database: PostgresClient
    let configuration: ServiceConfiguration
    let webhooks: WebhookSink
    let logger: Logger

    func run(rate: Int, seconds: Int) async throws -> Result {
        let tapQueue = "bench.tap.\(UUID.random().lowercasedString.prefix(6))"
        var topology = LeadTopology.exchanges
        topology.queues.append(.init(name: tapQueue, type: .classic))
        topology.bindings.append(.init(queue: tapQueue, exchange: LeadTopology.eventsExchange, routingKey: "lead.scored"))
        topology.bindings.append(.init(queue: tapQueue, exchange: LeadTopology.eventsExchange, routingKey: "alert.high_score"))
        topology.bindings.append(.init(queue: tapQueue, exchange: LeadTopology.eventsExchange, routingKey: "conversion.prompt"))
        let tap = AMQPConnection(configuration: configuration.amqp, name: "bench-tap", topology: topology, logger: logger)
        guard await tap.waitUntilConnected(timeout: .seconds(10)) else { throw BenchError("tap cannot connect") }
        let deliveries = tap.consume(queue: tapQueue, prefetch: 1000)
        let arrivals = Stamps()
        let scored = Stamps()
        let alerted = Stamps()
        let prompts = Stamps()
        let tapTask = Task {
            while let batch = await deliveries.nextBatch(max: 1000) {
                let now = Date()
                // The project's own parser: Foundation's JSONSerialization took ~4 % of this process's CPU here.
                for delivery in batch {
                    guard case .object(let object)? = try? JSONParser.parse(delivery.body) else { continue }
                    if delivery.routingKey == "conversion.prompt", let session = object["session_id"]?.stringValue {
                        prompts.values.withLock { if $0[session] == nil { $0[session] = now } }
                    } else if delivery.routingKey == "alert.high_score", case .int(let lead)? = object["lead_id"] {
                        alerted.values.withLock { if $0["\(lead)"] == nil { $0["\(lead)"] = now } }
                    } else if case .null? = object["previous_score"], let eventID = object["event_id"]?.stringValue {
                        arrivals.values.withLock { $0[eventID] = now }
                        if case .int(let lead)? = object["lead_id"] { scored.values.withLock { $0["\(lead)"] = now } }
                    }
                }
                tap.ack(batch.last!, multiple: true)
            }
        }

        // Send: one new person per event, at a fixed rate.
        let accepted = Stamps()
        let anonymous = Stamps()
        // Kept-alive connections, as a web tier holds them, on NIO directly (see `IngestSender`).
        let sender = IngestSender(host: "127.0.0.1", port: ingestPort, path: "/v1/interactions", apiKey: apiKey)
        /// When the 202's head arrived, or nil for any other answer.
        @Sendable func post(_ body: String) async -> Date? {
            guard let answer = await sender.post(body), answer.status == .accepted else { return nil }
            return answer.headAt
        }
        let total = rate * seconds
        let interval = Duration.seconds(1) / rate
        let started = ContinuousClock.now
        let cpuBefore = CPUTimes.read()
        let run = UUID.random().lowercasedString.prefix(8)
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                let due = started.advanced(by: interval * index)
                group.addTask {
                    try? await Task.sleep(until: due)
                    let eventID = UUID.random().lowercasedString
                    let body = #"{"event_id":"\#(eventID)","session_id":"e2e-\#(run)-\#(index)","type":"face_analysis","contact":{"email":"e2e-\#(run)-\#(index)@bench.example.com"},"data":{"recommendations":[{"procedure":"Botox"}]}}"#
                    if let now = await post(body) {
                        accepted.values.withLock { $0[eventID] = now }
                    }
                    guard index % 4 == 0 else { return }
                    let session = "e2e-anon-\(run)-\(index)"
                    let visit = #"{"event_id":"\#(UUID.random().lowercasedString)","session_id":"\#(session)","type":"consultation","data":{"procedure":"Rhinoplasty"}}"#
                    if let now = await post(visit) {
                        anonymous.values.withLock { $0[session] = now }
                    }
                }
            }
        }
        let cpuBusy = CPUTimes.read().busyPercent(since: cpuBefore)
        let connections = sender.connectionsOpened
        await sender.close()
        let sent = accepted.values.withLock { $0 }
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while arrivals.values.withLock({ $0.count }) < sent.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        // Lead rows: the transaction time of the lead's creation.
        var rows: [String: Date] = [:]
        let ids = sent.keys.compactMap { UUID(uuidString: $0) }
        let query: PostgresQuery = """
            SELECT ui.event_id, l.created_at FROM leads l JOIN user_interactions ui ON ui.id = l.interaction_id
            WHERE ui.event_id = ANY(\(ids))
            """
        for try await (eventID, createdAt) in try await database.query(query, logger: logger).decode((UUID, Date).self) {
            rows[eventID.lowercasedString] = createdAt
        }

        var row = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var bus = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        let arrived = arrivals.values.withLock { $0 }
        for (eventID, acceptedAt) in sent {
            if let createdAt = rows[eventID] { row.record(UInt64(max(0, createdAt.timeIntervalSince(acceptedAt)) * 1_000_000)) }
            if let busAt = arrived[eventID] { bus.record(UInt64(max(0, busAt.timeIntervalSince(acceptedAt)) * 1_000_000)) }
        }
        // Alerts: every new lead scores 80 (a face analysis), the high-score threshold; give the alerts a moment.
        let alertDeadline = ContinuousClock.now.advanced(by: .seconds(30))
        let leads = scored.values.withLock { $0 }
        while ContinuousClock.now < alertDeadline,
            webhooks.arrivals.values.withLock({ $0.count }) < leads.count || alerted.values.withLock({ $0.count }) < leads.count
        {
            try await Task.sleep(for: .milliseconds(100))
        }
        let visitors = anonymous.values.withLock { $0 }
        while ContinuousClock.now < alertDeadline, prompts.values.withLock({ $0.count }) < visitors.count {
            try await Task.sleep(for: .milliseconds(100))
        }
        // The tap stays until the alerts and prompts are in (closing it earlier lost the slowest alerts).
        deliveries.interrupt()
        tapTask.cancel()
        try? await tap.deleteQueue(tapQueue)
        await tap.close()
        var promptLatency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        let prompted = prompts.values.withLock { $0 }
        for (session, acceptedAt) in visitors {
            if let at = prompted[session] { promptLatency.record(UInt64(max(0, at.timeIntervalSince(acceptedAt)) * 1_000_000)) }
        }
        var alertRows: [String: Date] = [:]
        let leadIDs = leads.keys.compactMap { Int64($0) }
        let alertQuery: PostgresQuery = "SELECT lead_id, created_at FROM alerts WHERE kind = 'high_score' AND lead_id = ANY(\(leadIDs))"
        for try await (lead, createdAt) in try await database.query(alertQuery, logger: logger).decode((Int64, Date).self) {
            alertRows["\(lead)"] = createdAt
        }
        var alertRowLatency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var alertLatency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var webhookLatency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        let alerts = alerted.values.withLock { $0 }
        let hooks = webhooks.arrivals.values.withLock { $0 }
        for (lead, scoredAt) in leads {
            if let at = alertRows[lead] { alertRowLatency.record(UInt64(max(0, at.timeIntervalSince(scoredAt)) * 1_000_000)) }
            if let at = alerts[lead] { alertLatency.record(UInt64(max(0, at.timeIntervalSince(scoredAt)) * 1_000_000)) }
            if let at = hooks[lead] { webhookLatency.record(UInt64(max(0, at.timeIntervalSince(scoredAt)) * 1_000_000)) }
        }
        func ms(_ value: UInt64) -> Double { rounded(Double(value) / 1000, 2) }
        return Result(
            count: sent.count,
            missing: sent.count - arrived.keys.filter { sent[$0] != nil }.count,
            rowP50: ms(row.valueAtPercentile(50)), rowP99: ms(row.valueAtPercentile(99)),
            busP50: ms(bus.valueAtPercentile(50)), busP99: ms(bus.valueAtPercentile(99)),
            alerts: alerts.count,
            alertP50: ms(alertLatency.valueAtPercentile(50)), alertP99: ms(alertLatency.valueAtPercentile(99)),
            webhookP50: ms(webhookLatency.valueAtPercentile(50)), webhookP99: ms(webhookLatency.valueAtPercentile(99)),
            alertRowP50: ms(alertRowLatency.valueAtPercentile(50)), alertRowP99: ms(alertRowLatency.valueAtPercentile(99)),
            sessions: visitors.count, prompted: visitors.keys.filter { prompted[$0] != nil }.count,
            promptP50: ms(promptLatency.valueAtPercentile(50)), promptP99: ms(promptLatency.valueAtPercentile(99)),
            cpuBusyPercent: cpuBusy, senderConnections: connections
        )
    }
}

/// Times keyed by event id, shared between the sending tasks and the tap.
final class Stamps: Sendable {
    let values = Mutex<[String: Date]>([:])
}

/// The machine's CPU time counters (`/proc/stat`, all CPUs), to say how busy it was during a measurement.
struct CPUTimes {
    var busy: UInt64 = 0
    var total: UInt64 = 0

    static func read() -> CPUTimes {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return CPUTimes() }
        // user nice system idle iowait irq softirq steal (guest time is already in user)
        let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard fields.count == 8 else { return CPUTimes() }
        let total = fields.reduce(0, +)
        return CPUTimes(busy: total - fields[3] - fields[4], total: total)
    }

    func busyPercent(since start: CPUTimes) -> Double {
        guard total > start.total else { return 0 }
        return rounded(Double(busy - start.busy) / Double(total - start.total) * 100, 1)
    }
}

/// CPU time (user + system, seconds) used so far by processes, from `/proc/<pid>/stat`.
enum ProcessCPU {
    static func seconds(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The ids of running processes whose command name is `name` (RabbitMQ's VM is `beam.smp`).
    static func pids(named name: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name
            else { return nil }
            return pid
        }
    }

    static func seconds(_ pids: [Int32]) -> Double { pids.reduce(0) { $0 + seconds($1) } }

    /// The CPU seconds of each process named `name` so far, for `seconds(named:since:)`.
    static func snapshot(named name: String) -> [Int32: Double] {
        Dictionary(uniqueKeysWithValues: pids(named: name).map { ($0, seconds($0)) })
    }

    /// The CPU seconds the processes named `name` used since `snapshot` (PostgreSQL's backends come and go:
    /// one started meanwhile counts whole, one that ended does not count).
    static func seconds(named name: String, since snapshot: [Int32: Double]) -> Double {
        pids(named: name).reduce(0) { $0 + seconds($1) - (snapshot[$1] ?? 0) }
    }
}
