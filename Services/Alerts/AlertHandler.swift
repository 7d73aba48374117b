import AMQP
import Foundation
import LeadCore
import LeadService
import LeadStore
import Logging
import Metrics

/// Turns `lead.scored` and `conversion.prompt` messages into alerts, in one transaction per batch.
struct AlertHandler: DeliveryHandler {
    struct Message: Sendable {
        var routingKey: String
        var body: JSONValue
    }

    let rules: AlertRules
    let webhookURLs: [String]
    let connection: DedicatedConnection
    let deliveriesSignal: WakeSignal
    private let raised = Counter(label: "alerts_raised_total")

    init(rules: AlertRules, webhookURLs: [String], connection: DedicatedConnection, deliveriesSignal: WakeSignal) {
        self.rules = rules
        self.webhookURLs = webhookURLs
        self.connection = connection
        self.deliveriesSignal = deliveriesSignal
    }

    func decode(_ delivery: Delivery) throws(PermanentFailure) -> Message {
        do {
            return Message(routingKey: delivery.routingKey, body: try JSONParser.parse(delivery.body))
        } catch {
            throw PermanentFailure("not JSON: \(error)")
        }
    }

    func shutdown() async {
        await connection.close()
    }

    func handle(_ messages: [Message], logger: Logger) async throws {
        let alerts: [Alert] = messages.compactMap { message in
            switch message.routingKey {
            case "lead.scored": rules.highScore(from: message.body)
            case "conversion.prompt": rules.opportunity(from: message.body)
            default: nil
            }
        }
        guard !alerts.isEmpty else { return }
        let webhookURLs = self.webhookURLs
        let fresh = try await connection.withTransaction(logger: logger) { connection in
            try await AlertStore.record(alerts, webhookURLs: webhookURLs, on: connection, logger: logger)
        }
        for alert in fresh {
            logger.info(
                "alert raised",
                metadata: ["alert.id": "\(alert.id)", "alert.kind": "\(alert.kind.rawValue)", "lead.id": "\(alert.leadID.map(String.init) ?? "-")"]
            )
        }
        raised.increment(by: fresh.count)
        if !fresh.isEmpty, !webhookURLs.isEmpty { deliveriesSignal.notify() }
    }
}
